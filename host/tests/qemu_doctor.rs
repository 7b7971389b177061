//! `cocoon-host doctor` against fake host trees (a `/sys`, `/proc` and `/dev` under a temp dir).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]

use std::path::{Path, PathBuf};

use cocoon_host::doctor::{examine, parse_qemu_version, HostFs, Options, Status};

const QEMU_10: &str = "QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-1~bpo12+1)\n";
const QEMU_7: &str = "QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)\n";
const QEMU_11: &str = "QEMU emulator version 11.1.3\n";

fn fake_host(case: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("doctor")
        .join(case);
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    write(
        &root,
        "proc/meminfo",
        "MemTotal: 65536000 kB\nMemAvailable: 32768000 kB\nHugePages_Total: 0\nHugepagesize: 2048 kB\n",
    );
    root
}

fn write(root: &Path, rel: &str, text: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn snp_host(case: &str) -> PathBuf {
    let root = fake_host(case);
    write(&root, "dev/kvm", "");
    write(&root, "dev/sev", "");
    write(
        &root,
        "proc/cpuinfo",
        "processor : 0\nflags : fpu sme sev sev_es sev_snp\n",
    );
    write(&root, "sys/module/kvm_amd/parameters/sev_snp", "Y\n");
    root
}

/// A stand-in enclave binary inside the case's own tree (tests run in parallel).
fn enclave(root: &Path, sim: bool) -> PathBuf {
    let path = root.join(if sim { "enclave-sim" } else { "enclave-plain" });
    let mut bytes = vec![0u8; 3 << 20];
    if sim {
        // The marker straddles the 1 MiB read boundary.
        let at = (1 << 20) - 5;
        bytes[at..at + 22].copy_from_slice(b"simulated collateral: ");
    }
    std::fs::write(&path, bytes).unwrap();
    path
}

fn options(root: &Path, qemu: Option<&str>) -> Options {
    Options {
        qemu_version: qemu.map(str::to_owned),
        nvidia_cc: None,
        enclave: Some(enclave(root, true)),
        gpu: None,
    }
}

#[test]
fn snp_ready_host_is_ready_for_snp_but_not_tdx() {
    let root = snp_host("snp-ready");
    let report = examine(&HostFs::new(&root), &options(&root, Some(QEMU_10)));
    assert!(report.ready("snp"), "{}", report.to_text());
    assert!(report.ready("vm"));
    assert!(report.ready("process"));
    assert!(!report.ready("tdx"));
    assert_eq!(
        report.platforms["tdx"].missing,
        vec!["qemu-tdx", "kvm_intel.tdx"]
    );
    assert!(report
        .check("qemu")
        .unwrap()
        .detail
        .contains("snp (sev-snp-guest)"));
}

#[test]
fn snp_host_with_bookworm_qemu_lacks_only_a_newer_qemu() {
    let root = snp_host("snp-old-qemu");
    let report = examine(&HostFs::new(&root), &options(&root, Some(QEMU_7)));
    assert_eq!(report.platforms["snp"].missing, vec!["qemu-snp"]);
    assert!(report
        .check("qemu-snp")
        .unwrap()
        .fix
        .as_deref()
        .unwrap()
        .contains("backports"));
}

#[test]
fn snp_firmware_not_initialised_is_reported_with_its_fix() {
    let root = snp_host("snp-param-off");
    write(&root, "sys/module/kvm_amd/parameters/sev_snp", "N\n");
    std::fs::remove_file(root.join("dev/sev")).unwrap();
    let report = examine(&HostFs::new(&root), &options(&root, Some(QEMU_10)));
    assert_eq!(
        report.platforms["snp"].missing,
        vec!["kvm_amd.sev_snp", "/dev/sev"]
    );
    let check = report.check("kvm_amd.sev_snp").unwrap();
    assert_eq!(check.status, Status::Missing);
    assert!(check.fix.as_deref().unwrap().contains("sev_snp=1"));
}

#[test]
fn tdx_host_with_the_module_and_qemu_11_is_ready_for_tdx() {
    let root = fake_host("tdx-ready");
    write(&root, "dev/kvm", "");
    write(&root, "sys/module/kvm_intel/parameters/tdx", "Y\n");
    let report = examine(&HostFs::new(&root), &options(&root, Some(QEMU_11)));
    assert!(report.ready("tdx"), "{}", report.to_text());
    assert!(!report.ready("snp"));
}

#[test]
fn tdx_missing_module_names_kvm_intel_tdx() {
    let root = fake_host("tdx-missing");
    write(&root, "dev/kvm", "");
    write(&root, "sys/module/kvm_intel/parameters/tdx", "N\n");
    let report = examine(&HostFs::new(&root), &options(&root, Some(QEMU_10)));
    assert_eq!(
        report.platforms["tdx"].missing,
        vec!["qemu-tdx", "kvm_intel.tdx"]
    );
    assert_eq!(
        report.check("kvm_intel.tdx").unwrap().detail,
        "kvm_intel tdx=N"
    );
}

#[test]
fn host_without_kvm_still_runs_vm_and_process_but_no_tee() {
    let root = fake_host("no-kvm");
    let report = examine(&HostFs::new(&root), &options(&root, Some(QEMU_10)));
    assert_eq!(report.check("kvm").unwrap().status, Status::Missing);
    assert!(report.ready("vm"), "vm falls back to TCG");
    assert!(report.ready("process"));
    assert!(report.platforms["snp"].missing.contains(&"kvm"));
    assert!(report.platforms["tdx"].missing.contains(&"kvm"));
}

#[test]
fn host_without_qemu_is_not_ready_for_vm() {
    let root = fake_host("no-qemu");
    let report = examine(&HostFs::new(&root), &options(&root, None));
    assert!(!report.ready("vm"));
    assert!(report.platforms["vm"].missing.contains(&"qemu"));
}

#[test]
fn enclave_built_without_sim_keeps_process_from_ready() {
    let root = fake_host("no-sim");
    let mut opts = options(&root, Some(QEMU_10));
    opts.enclave = Some(enclave(&root, false));
    let report = examine(&HostFs::new(&root), &opts);
    assert_eq!(report.platforms["process"].missing, vec!["enclave"]);
    assert!(report
        .check("enclave")
        .unwrap()
        .fix
        .as_deref()
        .unwrap()
        .contains("--features sim"));
}

#[test]
fn gpu_bound_to_vfio_in_an_iommu_group_is_ready_for_passthrough() {
    let root = snp_host("gpu-vfio");
    let dev = root.join("sys/bus/pci/devices/0000:41:00.0");
    std::fs::create_dir_all(&dev).unwrap();
    std::fs::create_dir_all(root.join("sys/bus/pci/drivers/vfio-pci")).unwrap();
    std::fs::create_dir_all(root.join("sys/kernel/iommu_groups/17")).unwrap();
    std::os::unix::fs::symlink("../../../bus/pci/drivers/vfio-pci", dev.join("driver")).unwrap();
    std::os::unix::fs::symlink("../../../kernel/iommu_groups/17", dev.join("iommu_group")).unwrap();
    let mut opts = options(&root, Some(QEMU_10));
    opts.gpu = Some("0000:41:00.0".to_owned());
    let report = examine(&HostFs::new(&root), &opts);
    assert!(report.ready("gpu"), "{}", report.to_text());
    assert_eq!(
        report.check("gpu-cc-mode").unwrap().detail,
        "unknown: needs nvidia-smi conf-compute"
    );
    assert_eq!(
        report.check("gpu-iommu-group").unwrap().detail,
        "0000:41:00.0 in IOMMU group 17"
    );
}

#[test]
fn gpu_bound_to_nvidia_driver_gets_the_vfio_rebind_fix() {
    let root = snp_host("gpu-nvidia");
    let dev = root.join("sys/bus/pci/devices/0000:41:00.0");
    std::fs::create_dir_all(&dev).unwrap();
    std::fs::create_dir_all(root.join("sys/kernel/iommu_groups/17")).unwrap();
    std::os::unix::fs::symlink("../../../bus/pci/drivers/nvidia", dev.join("driver")).unwrap();
    let mut opts = options(&root, Some(QEMU_10));
    opts.gpu = Some("0000:41:00.0".to_owned());
    opts.nvidia_cc = Some("CC status: ON\n".to_owned());
    let report = examine(&HostFs::new(&root), &opts);
    assert_eq!(
        report.platforms["gpu"].missing,
        vec!["gpu-vfio", "gpu-iommu-group"]
    );
    let vfio = report.check("gpu-vfio").unwrap();
    assert_eq!(vfio.detail, "0000:41:00.0 bound to nvidia");
    assert!(vfio.fix.as_deref().unwrap().contains("driver_override"));
    assert_eq!(report.check("gpu-cc-mode").unwrap().status, Status::Ok);
}

#[test]
fn qemu_versions_parse_from_debian_banners() {
    assert_eq!(parse_qemu_version(QEMU_7), Some((7, 2)));
    assert_eq!(parse_qemu_version(QEMU_10), Some((10, 0)));
    assert_eq!(parse_qemu_version("qemu: command not found"), None);
}

#[test]
fn doctor_json_names_every_platform() {
    let root = fake_host("json");
    let report = examine(&HostFs::new(&root), &options(&root, Some(QEMU_7)));
    let json = serde_json::to_value(&report).unwrap();
    for p in ["process", "vm", "snp", "tdx", "gpu"] {
        assert!(json["platforms"][p]["ready"].is_boolean(), "{p}");
    }
}
