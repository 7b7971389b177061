//! `cocoon-verify measure snp|tdx` on the firmware in `shared/vectors/measure`: digests, JSON
//! keys, exit codes, and sev-snp-measure itself as an oracle on the Debian kernel.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]

use std::path::PathBuf;
use std::process::{Command, Output};

mod support;
use support::{code, json, run};

fn vector(relative: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/vectors/measure")
        .join(relative);
    assert!(path.exists(), "missing test vector {}", path.display());
    path.to_string_lossy().into_owned()
}

fn temp_file(name: &str, contents: &[u8]) -> String {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("cocoon-measure-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path.to_string_lossy().into_owned()
}

/// The Debian kernel from scripts/fetch-kernel, or `None` with the reason printed (a failure
/// under COCOON_REQUIRE_KERNEL=1).
fn kernel_path() -> Option<String> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.cache/kernel/vmlinuz");
    if path.exists() {
        return Some(path.to_string_lossy().into_owned());
    }
    if std::env::var("COCOON_REQUIRE_KERNEL").as_deref() == Ok("1") {
        panic!(
            "COCOON_REQUIRE_KERNEL=1 and no {} (run scripts/fetch-kernel)",
            path.display()
        );
    }
    eprintln!(
        "skipped: no Debian kernel at {}; run scripts/fetch-kernel",
        path.display()
    );
    None
}

const AMDSEV: &str = "firmware/OVMF.amdsev.fd.sid-2026.08+ds-2";
const BOOKWORM: &str = "tdx/OVMF.fd.bookworm-2022.11-6+deb12u2";
const INTELTDX: &str = "firmware/OVMF.inteltdx.ms.fd.sid-2026.08+ds-2";
const SID_2VCPU: &str = "0d943a54de4697d47fb1307df51df66c1f852c16d61a5751903063d29a05ebf479cb82bdcbf0eaa0fc22e7581bc4c79a";

fn amdsev_direct_boot(extra: &[&str]) -> Output {
    let (ovmf, kernel, initrd) = (
        vector(AMDSEV),
        vector("dm-verity/d8.img"),
        vector("dm-verity/d8.nosalt.verity"),
    );
    let mut args = vec![
        "measure",
        "snp",
        "--ovmf",
        &ovmf,
        "--kernel",
        &kernel,
        "--initrd",
        &initrd,
        "--append",
        "console=ttyS0 root=/dev/vda",
    ];
    args.extend_from_slice(extra);
    run(&args)
}

#[test]
fn snp_direct_boot_digest_matches_sev_snp_measure_vectors() {
    let out = amdsev_direct_boot(&["--vcpus", "2", "--json"]);
    assert_eq!(code(&out), 0);
    let report = json(&out);
    assert_eq!(report["measurement"], SID_2VCPU);
    assert_eq!(
        report["ovmf_hash"],
        "9d0dd8be18c86e3fe3bf0038ed75ebf5340bee69fd2632c8ff9409964575960ae1f7e84be387d2e3467bc3508d1e4806"
    );
    let out = amdsev_direct_boot(&[
        "--vcpus",
        "4",
        "--vcpu-type",
        "EPYC-Genoa",
        "--guest-features",
        "0x21",
        "--json",
    ]);
    assert_eq!(json(&out)["measurement"], "ba41f2b8a54d5ca677766b15416db8fe425f7153dedc3d1ce8004d90db3d6d0246ff4a748489f651af023e2e678a2ddc");
    let out = amdsev_direct_boot(&["--vcpus", "2", "--vmm", "ec2", "--json"]);
    assert_eq!(json(&out)["measurement"], "98b0ad84ced26ab2968ec0c2e85bec5a3744ae8ee29216cb9c27bab4a8373a1a2a06f90837044d33a50a1fe919c13e81");
}

#[test]
fn snp_human_output_shows_the_digest() {
    let out = amdsev_direct_boot(&["--vcpus", "2"]);
    assert_eq!(code(&out), 0);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("SEV-SNP launch digest"), "{text}");
    assert!(text.contains(SID_2VCPU), "{text}");
}

#[test]
fn snp_expected_value_mismatch_exits_1_and_match_exits_0() {
    let out = amdsev_direct_boot(&["--vcpus", "2", "--expected", SID_2VCPU, "--json"]);
    assert_eq!(code(&out), 0);
    assert_eq!(json(&out)["matches_expected"]["measurement"], true);
    let mut wrong = SID_2VCPU.to_string();
    wrong.replace_range(0..1, "1");
    let out = amdsev_direct_boot(&["--vcpus", "2", "--expected", &wrong, "--json"]);
    assert_eq!(code(&out), 1);
    assert_eq!(json(&out)["matches_expected"]["measurement"], false);
}

#[test]
fn snp_hashes_instead_of_files_give_the_same_digest() {
    let kernel = std::fs::read(vector("dm-verity/d8.img")).unwrap();
    let initrd = std::fs::read(vector("dm-verity/d8.nosalt.verity")).unwrap();
    use sha2::Digest;
    let (k, i) = (
        hex::encode(sha2::Sha256::digest(&kernel)),
        hex::encode(sha2::Sha256::digest(&initrd)),
    );
    let ovmf = vector(AMDSEV);
    let out = run(&[
        "measure",
        "snp",
        "--ovmf",
        &ovmf,
        "--kernel-hash",
        &k,
        "--initrd-hash",
        &i,
        "--append",
        "console=ttyS0 root=/dev/vda",
        "--vcpus",
        "2",
        "--json",
    ]);
    assert_eq!(json(&out)["measurement"], SID_2VCPU);
}

#[test]
fn snp_ovmf_hash_and_metadata_file_replace_the_firmware() {
    // The metadata and OVMF hash come from a --json run over the firmware.
    let out = amdsev_direct_boot(&["--vcpus", "1", "--json"]);
    let report = json(&out);
    let meta = temp_file(
        "amdsev-metadata.json",
        report["ovmf_metadata"].to_string().as_bytes(),
    );
    let hash = report["ovmf_hash"].as_str().unwrap().to_string();
    let (kernel, initrd) = (
        vector("dm-verity/d8.img"),
        vector("dm-verity/d8.nosalt.verity"),
    );
    let out = run(&[
        "measure",
        "snp",
        "--ovmf-hash",
        &hash,
        "--ovmf-metadata",
        &meta,
        "--kernel",
        &kernel,
        "--initrd",
        &initrd,
        "--append",
        "console=ttyS0 root=/dev/vda",
        "--vcpus",
        "2",
        "--json",
    ]);
    assert_eq!(code(&out), 0);
    assert_eq!(json(&out)["measurement"], SID_2VCPU);
}

#[test]
fn snp_kernel_with_firmware_lacking_kernel_hashes_is_refused_with_exit_1() {
    let ovmf = vector(BOOKWORM);
    let kernel = vector("dm-verity/d8.img");
    let out = run(&[
        "measure", "snp", "--ovmf", &ovmf, "--kernel", &kernel, "--vcpus", "1", "--json",
    ]);
    assert_eq!(code(&out), 1);
    assert_eq!(json(&out)["error"]["kind"], "kernel_hashes_unsupported");
}

#[test]
fn snp_bookworm_firmware_without_kernel_matches_the_vectors_readme() {
    let ovmf = vector(BOOKWORM);
    let out = run(&[
        "measure",
        "snp",
        "--ovmf",
        &ovmf,
        "--vcpus",
        "1",
        "--vcpu-type",
        "EPYC-Milan",
        "--guest-features",
        "0x21",
        "--json",
    ]);
    assert_eq!(json(&out)["measurement"], "179c6ad39ad318c8c8d18444634df7217b63695830f1cde0b2f01fe53d2cd2f4d39207f50bf659554e2f5ec4ee0f72b6");
}

#[test]
fn snp_usage_errors_exit_2() {
    let ovmf = vector(AMDSEV);
    // No --vcpus.
    assert_eq!(code(&run(&["measure", "snp", "--ovmf", &ovmf])), 2);
    // Unknown vCPU type.
    assert_eq!(
        code(&run(&[
            "measure",
            "snp",
            "--ovmf",
            &ovmf,
            "--vcpus",
            "1",
            "--vcpu-type",
            "EPYC-Nope"
        ])),
        2
    );
    // Both firmware forms.
    assert_eq!(
        code(&run(&[
            "measure",
            "snp",
            "--ovmf",
            &ovmf,
            "--ovmf-hash",
            "00",
            "--vcpus",
            "1"
        ])),
        2
    );
    // An initrd without a kernel.
    assert_eq!(
        code(&run(&[
            "measure", "snp", "--ovmf", &ovmf, "--initrd", &ovmf, "--vcpus", "1"
        ])),
        2
    );
    // A kernel hash of the wrong length.
    assert_eq!(
        code(&run(&[
            "measure",
            "snp",
            "--ovmf",
            &ovmf,
            "--kernel-hash",
            "abcd",
            "--vcpus",
            "1"
        ])),
        2
    );
    // Not a firmware image with a footer: no SEV-ES reset block.
    let junk = temp_file("junk.fd", &vec![0u8; 8192]);
    assert_eq!(
        code(&run(&["measure", "snp", "--ovmf", &junk, "--vcpus", "1"])),
        2
    );
}

#[test]
fn tdx_mrtd_single_and_two_pass_match_the_vectors() {
    for (file, single, two) in [
        (BOOKWORM, "4c7206f0f483c524f12c366c711e9049030a8d47c471ee5aa9c4999a08de4057fb887fed0744d5631a212967fb231c47", "acccbcc870a381adab0d3919d90a7f268ac3b0364771f202ed4bb4e892d045b33db3b32e6924cba830a724eed443f7e1"),
        (INTELTDX, "a7a1f751abc454f9cbab198ca8d2edb2821935df525c74182b5e776cb0929e8c59aefecce725b0d08a5e9d3d3183bd08", "b90b236113eb4c0d4df4ef590568c14e6028a3a31d7e8ac63dee9845df5008d3ebf82d4f5974e933798f65d7a279b9a9"),
    ] {
        let ovmf = vector(file);
        let out = run(&["measure", "tdx", "--ovmf", &ovmf, "--json"]);
        assert_eq!(code(&out), 0);
        let report = json(&out);
        assert_eq!(report["mrtd"], single);
        assert!(report.get("rtmr1").is_none() && report.get("rtmr2").is_none());
        let out = run(&["measure", "tdx", "--ovmf", &ovmf, "--page-order", "two-pass", "--json"]);
        assert_eq!(json(&out)["mrtd"], two);
    }
}

#[test]
fn tdx_expected_mrtd_mismatch_exits_1() {
    let ovmf = vector(INTELTDX);
    let bookworm_mrtd = "4c7206f0f483c524f12c366c711e9049030a8d47c471ee5aa9c4999a08de4057fb887fed0744d5631a212967fb231c47";
    let out = run(&[
        "measure",
        "tdx",
        "--ovmf",
        &ovmf,
        "--expected-mrtd",
        bookworm_mrtd,
    ]);
    assert_eq!(code(&out), 1);
    assert!(String::from_utf8_lossy(&out.stdout).contains("MISMATCH"));
}

#[test]
fn tdx_rtmr1_and_rtmr2_of_the_debian_kernel_direct_boot() {
    let Some(kernel) = kernel_path() else { return };
    let ovmf = vector(INTELTDX);
    let initrd = vector("dm-verity/d8.img");
    let out = run(&[
        "measure",
        "tdx",
        "--ovmf",
        &ovmf,
        "--kernel",
        &kernel,
        "--initrd",
        &initrd,
        "--append",
        "console=hvc0",
        "--json",
    ]);
    assert_eq!(code(&out), 0);
    let report = json(&out);
    assert_eq!(
        report["kernel_authenticode_sha384"],
        "e494e71ba795e8fc3edc1b3cab678c8c8782a6efe14d2d5a25155dc948b53f7d1dab088ff7005b7e6f9b0534738660e2"
    );
    let rtmr1 = report["rtmr1"].as_str().unwrap().to_string();
    let rtmr2 = report["rtmr2"].as_str().unwrap().to_string();
    assert_eq!(rtmr1.len(), 96);
    // RTMR1 depends only on the kernel; RTMR2 on the cmdline and initrd.
    let out = run(&[
        "measure",
        "tdx",
        "--ovmf",
        &ovmf,
        "--kernel",
        &kernel,
        "--append",
        "console=hvc1",
        "--json",
    ]);
    let other = json(&out);
    assert_eq!(other["rtmr1"], rtmr1.as_str());
    assert_ne!(other["rtmr2"], rtmr2.as_str());
    // The QEMU-patched header (OVMF ≤ 2025.02) changes RTMR1, not RTMR2.
    let out = run(&[
        "measure",
        "tdx",
        "--ovmf",
        &ovmf,
        "--kernel",
        &kernel,
        "--initrd",
        &initrd,
        "--append",
        "console=hvc0",
        "--qemu-patched-header",
        "--memory",
        "2G",
        "--json",
    ]);
    assert_eq!(code(&out), 0);
    let patched = json(&out);
    assert_eq!(patched["qemu_patched_header"], true);
    assert_ne!(patched["rtmr1"], rtmr1.as_str());
    assert_eq!(patched["rtmr2"], rtmr2.as_str());
}

#[test]
fn tdx_patched_header_without_memory_is_a_usage_error() {
    let Some(kernel) = kernel_path() else { return };
    let ovmf = vector(INTELTDX);
    let out = run(&[
        "measure",
        "tdx",
        "--ovmf",
        &ovmf,
        "--kernel",
        &kernel,
        "--qemu-patched-header",
    ]);
    assert_eq!(code(&out), 2);
}

#[test]
fn snp_digest_of_the_debian_kernel_equals_sev_snp_measure() {
    // Oracle: virtee's sev-snp-measure (Python, pinned in scripts/requirements.txt) on the
    // same files; required when scripts/test ran setup (COCOON_REQUIRE_ORT=1).
    let Some(kernel) = kernel_path() else { return };
    // SEV_SNP_MEASURE overrides the venv's copy (as for scripts/bench_measure.py).
    let tool = std::env::var_os("SEV_SNP_MEASURE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.cache/venv/bin/sev-snp-measure")
        });
    if !tool.exists() {
        if std::env::var("COCOON_REQUIRE_ORT").as_deref() == Ok("1") {
            panic!("no {} (scripts/setup installs it)", tool.display());
        }
        eprintln!("skipped: no {}; run scripts/setup", tool.display());
        return;
    }
    let ovmf = vector(AMDSEV);
    let initrd = vector("dm-verity/d8.nosalt.verity");
    for (vmm, vcpus, features) in [
        ("QEMU", "2", "0x1"),
        ("ec2", "3", "0x21"),
        ("gce", "1", "0x1"),
    ] {
        let theirs = Command::new(&tool)
            .args([
                "--mode",
                "snp",
                "--vcpus",
                vcpus,
                "--vcpu-type",
                "EPYC-Milan",
                "--vmm-type",
                vmm,
            ])
            .args([
                "--guest-features",
                features,
                "--ovmf",
                &ovmf,
                "--kernel",
                &kernel,
            ])
            .args(["--initrd", &initrd, "--append", "console=ttyS0 quiet"])
            .output()
            .unwrap();
        assert!(
            theirs.status.success(),
            "{}",
            String::from_utf8_lossy(&theirs.stderr)
        );
        let theirs = String::from_utf8_lossy(&theirs.stdout).trim().to_string();
        let ours = run(&[
            "measure",
            "snp",
            "--vcpus",
            vcpus,
            "--vcpu-type",
            "EPYC-Milan",
            "--vmm",
            &vmm.to_lowercase(),
            "--guest-features",
            features,
            "--ovmf",
            &ovmf,
            "--kernel",
            &kernel,
            "--initrd",
            &initrd,
            "--append",
            "console=ttyS0 quiet",
            "--json",
        ]);
        assert_eq!(json(&ours)["measurement"], theirs.as_str(), "{vmm}");
    }
}

#[test]
fn seves_and_sev_modes_match_sev_snp_measure_vectors() {
    let fixture = vector("snp/ovmf_AmdSev_suffix.bin");
    let out = run(&[
        "measure",
        "snp",
        "--mode",
        "seves",
        "--ovmf",
        &fixture,
        "--kernel",
        "/dev/null",
        "--initrd",
        "/dev/null",
        "--append",
        "",
        "--vcpus",
        "4",
        "--json",
    ]);
    assert_eq!(code(&out), 0);
    assert_eq!(
        json(&out)["measurement"],
        "0dccbcaba8e90b261bd0d2e1863a2f9da714768b7b2a19363cd6ae35aa90de91"
    );
    let out = run(&[
        "measure",
        "snp",
        "--mode",
        "sev",
        "--ovmf",
        &fixture,
        "--kernel",
        "/dev/null",
        "--initrd",
        "/dev/null",
        "--append",
        "console=ttyS0 loglevel=7",
        "--json",
    ]);
    assert_eq!(code(&out), 0);
    assert_eq!(
        json(&out)["measurement"],
        "82a3ee5d537c3620628270c292ae30cb40c3c878666a7890ee7ef2a08fb535ff"
    );
}
