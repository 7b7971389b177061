//! Expected measurements of a VM, computed by the host from what it launches, and the policy a
//! client can use directly (docs/policy.md).
//!
//! `process` platform: the simulated TEE's fixed report fields (exactly what
//! `cocoon_attestation::sim::{tdx::SimTdReport, snp::SimSnpReport}::default()` put in the
//! evidence that `cocoon-enclave --attester sim-*` issues; a `sim`-feature test checks they agree)
//! plus the claims the enclave is told to publish: the model's BLAKE3 digest
//! (`cocoon_attestation::model_digest`), the measured configuration's tree hash
//! (`cocoon_attestation::config_tree`) and whether an HPKE key is required.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha384};

use crate::error::{Error, Result};
use std::path::Path;

use crate::spec::{Attester, GpuMode, HpkeMode, Launch, Platform, QemuLaunch, Vm};

/// MRTD of the simulated TD.
pub const SIM_TD_MRTD_INPUT: &[u8] = b"COCOON SIMULATED TD (NOT HARDWARE)";
/// MEASUREMENT of the simulated SNP guest.
pub const SIM_SNP_MEASUREMENT_INPUT: &[u8] = b"COCOON SIMULATED SNP GUEST (NOT HARDWARE)";
/// XFAM of the simulated TD (raw little-endian bytes).
const SIM_TD_XFAM: u64 = 0x0006_02e7;
/// TDATTRIBUTES of the simulated TD: SEPT_VE_DISABLE (bit 28) only.
const SIM_TD_ATTRIBUTES: u64 = 1 << 28;

/// TDX reference values (hex as in `cocoon-verify --json`). A hardware TD publishes MRTD (fixed
/// by the firmware); the RTMRs depend on the firmware's event log and QEMU's ACPI tables and are
/// left to the auditor's event-log replay (`cocoon-verify eventlog`), so they are absent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TdxValues {
    pub mrtd: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtmr0: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtmr1: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtmr2: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtmr3: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xfam: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub td_attributes: Option<String>,
}

/// SEV-SNP reference values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnpValues {
    pub measurement: String,
}

/// What the enclave's claims must say.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimValues {
    pub model_blake3: String,
    /// Absent when the spec has no `config_dir`.
    pub config_digest: Option<String>,
    /// GPUs the enclave's claims commit to (0: none); with any, the policy requires GPU evidence
    /// of these architectures.
    #[serde(default)]
    pub gpus: u8,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gpu_architectures: Vec<String>,
    /// `vm`: the dm-verity root of the model volume (the enclave's `--dm-verity-root`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_dm_verity_root: Option<String>,
    pub require_hpke_key: bool,
}

/// The published reference values of one VM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Measurements {
    pub name: String,
    pub platform: Platform,
    /// `simulated-tdx` or `simulated-snp` on `process`: NOT hardware.
    pub tee: String,
    pub simulated: bool,
    pub tdx: Option<TdxValues>,
    pub snp: Option<SnpValues>,
    pub claims: ClaimValues,
}

/// The model digest (BLAKE3 over the folder).
pub fn model_digest(model_dir: &Path) -> Result<[u8; 32]> {
    cocoon_attestation::model_digest::model_blake3(model_dir).map_err(|e| Error::Measure {
        what: "model.dir",
        detail: e.to_string(),
    })
}

/// The measured configuration's tree hash, if the spec has a `config_dir`.
pub fn config_digest(vm: &Vm) -> Result<Option<[u8; 32]>> {
    vm.config_dir
        .as_deref()
        .map(|dir| {
            cocoon_attestation::config_tree::tree_hash(dir)
                .map(|t| t.tree_hash)
                .map_err(|e| Error::Measure {
                    what: "config_dir",
                    detail: e.to_string(),
                })
        })
        .transpose()
}

/// Computes the reference values of `vm`: `process` reads and hashes the model and the config
/// folder; `vm` checks every image file against its manifest and recomputes the model volume's
/// dm-verity root, then publishes the manifest's model digest and that root.
pub fn compute(vm: &Vm) -> Result<Measurements> {
    let (model, verity_root) = match &vm.launch {
        Launch::Process { model_dir, .. } => (hex::encode(model_digest(model_dir)?), None),
        Launch::Qemu(q) => {
            q.image.check_files()?;
            q.image.check_verity_root()?;
            (
                q.image.model_blake3.clone(),
                Some(q.image.model_verity_root.clone()),
            )
        }
    };
    let config = config_digest(vm)?;
    let zero48 = Some(hex::encode([0u8; 48]));
    let (tee, tdx, snp) = match (vm.attester, &vm.launch) {
        (Some(Attester::SimTdx), _) => (
            "simulated-tdx",
            Some(TdxValues {
                mrtd: hex::encode(Sha384::digest(SIM_TD_MRTD_INPUT)),
                rtmr0: zero48.clone(),
                rtmr1: zero48.clone(),
                rtmr2: zero48.clone(),
                rtmr3: zero48,
                xfam: Some(hex::encode(SIM_TD_XFAM.to_le_bytes())),
                td_attributes: Some(hex::encode(SIM_TD_ATTRIBUTES.to_le_bytes())),
            }),
            None,
        ),
        (Some(Attester::SimSnp), _) => (
            "simulated-snp",
            None,
            Some(SnpValues {
                measurement: hex::encode(Sha384::digest(SIM_SNP_MEASUREMENT_INPUT)),
            }),
        ),
        (None, Launch::Qemu(q)) if vm.platform == Platform::Snp => (
            "sev-snp",
            None,
            Some(SnpValues {
                measurement: hex::encode(snp_launch_digest(vm, q)?),
            }),
        ),
        (None, Launch::Qemu(q)) if vm.platform == Platform::Tdx => (
            "tdx",
            Some(TdxValues {
                mrtd: hex::encode(tdx_mrtd(q)?),
                rtmr0: None,
                rtmr1: None,
                rtmr2: None,
                rtmr3: None,
                xfam: None,
                td_attributes: None,
            }),
            None,
        ),
        _ => {
            return Err(Error::Measure {
                what: "platform",
                detail: "no reference values for this platform and attester".to_owned(),
            })
        }
    };
    Ok(Measurements {
        name: vm.name.clone(),
        platform: vm.platform,
        tee: tee.to_owned(),
        simulated: vm.attester.is_some(),
        tdx,
        snp,
        claims: ClaimValues {
            model_blake3: model,
            config_digest: config.map(hex::encode),
            model_dm_verity_root: verity_root,
            gpus: match vm.gpu {
                GpuMode::Off => 0,
                GpuMode::Sim => 1,
            },
            gpu_architectures: match vm.gpu {
                GpuMode::Off => Vec::new(),
                // The simulated GPU reports an H100 (Hopper), as the hardware would.
                GpuMode::Sim => vec!["hopper".to_owned()],
            },
            require_hpke_key: vm.hpke != HpkeMode::Off,
        },
    })
}

/// Largest firmware image read (OVMF builds are 2–4 MiB).
const MAX_FIRMWARE_BYTES: u64 = 64 * 1024 * 1024;

fn firmware_bytes(q: &QemuLaunch) -> Result<Vec<u8>> {
    let path = q.qemu.firmware.as_ref().ok_or(Error::Measure {
        what: "boot.firmware",
        detail: "snp and tdx need the OVMF image".to_owned(),
    })?;
    let file = std::fs::File::open(path).map_err(crate::error::io(path))?;
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(
        &mut std::io::Read::take(file, MAX_FIRMWARE_BYTES.saturating_add(1)),
        &mut bytes,
    )
    .map_err(crate::error::io(path))?;
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > MAX_FIRMWARE_BYTES {
        return Err(Error::Measure {
            what: "boot.firmware",
            detail: format!("over {MAX_FIRMWARE_BYTES} bytes"),
        });
    }
    Ok(bytes)
}

fn measure_err(what: &'static str) -> impl Fn(cocoon_attestation::Error) -> Error {
    move |e| Error::Measure {
        what,
        detail: e.to_string(),
    }
}

/// The SEV-SNP launch digest of this launch: the AmdSev OVMF, `kernel-hashes=on` over the
/// image's kernel, initrd and cmdline (their SHA-256s are the manifest's, checked against the
/// files just before), the spec's vCPU count and the vCPU model QEMU is given (`qemu.cpu`, default
/// EPYC-v4), guest features 0x1 (SNP active) — the same computation as `cocoon-verify measure snp`.
fn snp_launch_digest(vm: &Vm, q: &QemuLaunch) -> Result<[u8; 48]> {
    use cocoon_attestation::measure::ovmf::Ovmf;
    use cocoon_attestation::measure::snp;
    let bytes = firmware_bytes(q)?;
    let ovmf = Ovmf::parse(&bytes).map_err(measure_err("boot.firmware"))?;
    let hash = |name: &str| {
        q.image.sha256_of(name).ok_or(Error::Measure {
            what: "image",
            detail: format!("no sha256 of {name} in the manifest"),
        })
    };
    let kernel_hashes = snp::KernelHashes::from_hashes(
        hash(crate::image::KERNEL)?,
        hash(crate::image::INITRD)?,
        Some(&q.qemu.cmdline),
    );
    let vcpu_type = q.qemu.cpu.as_deref().unwrap_or("EPYC-v4");
    let params = snp::SnpParams {
        vcpus: vm.vcpus,
        vcpu_sig: snp::vcpu_signature(vcpu_type).map_err(measure_err("qemu.cpu"))?,
        vmm: snp::Vmm::Qemu,
        guest_features: 0x1,
        kernel_hashes: Some(kernel_hashes),
    };
    snp::snp_launch_digest(snp::Firmware::Image(&ovmf), &params)
        .map_err(measure_err("snp launch digest"))
}

/// The TD's MRTD: the TDVF's measured pages (single-pass page order, QEMU's).
fn tdx_mrtd(q: &QemuLaunch) -> Result<[u8; 48]> {
    use cocoon_attestation::measure::ovmf::Ovmf;
    use cocoon_attestation::measure::tdx::{mrtd, PageOrder};
    let bytes = firmware_bytes(q)?;
    let ovmf = Ovmf::parse(&bytes).map_err(measure_err("boot.firmware"))?;
    mrtd(&ovmf, PageOrder::SinglePass).map_err(measure_err("tdx mrtd"))
}

/// A policy TOML (format 1) that accepts exactly this VM's measurements.
pub fn policy_toml(m: &Measurements) -> String {
    let mut out = format!(
        "# Policy for cocoon-host VM {:?} ({} platform), from its published measurements.\nversion = 1\n",
        m.name,
        match m.platform {
            Platform::Process => "process",
            Platform::Vm => "vm",
            Platform::Snp => "snp",
            Platform::Tdx => "tdx",
        }
    );
    if m.simulated {
        out.push_str("# SIMULATED TEE: test keys, not hardware. Never use for real secrets.\nallow_simulated = true\n");
    }
    if let Some(t) = &m.tdx {
        out.push_str(&format!("\n[tdx]\nmrtd = [\"{}\"]\n", t.mrtd));
        for (key, value) in [
            ("rtmr0", &t.rtmr0),
            ("rtmr1", &t.rtmr1),
            ("rtmr2", &t.rtmr2),
            ("rtmr3", &t.rtmr3),
            ("xfam", &t.xfam),
            ("td_attributes", &t.td_attributes),
        ] {
            if let Some(v) = value {
                out.push_str(&format!("{key} = [\"{v}\"]\n"));
            }
        }
    }
    if let Some(s) = &m.snp {
        out.push_str(&format!("\n[snp]\nmeasurement = [\"{}\"]\n", s.measurement));
    }
    out.push_str(&format!(
        "\n[claims]\nmodel_blake3 = [\"{}\"]\n",
        m.claims.model_blake3
    ));
    if let Some(c) = &m.claims.config_digest {
        out.push_str(&format!("config_digest = [\"{c}\"]\n"));
    }
    if let Some(root) = &m.claims.model_dm_verity_root {
        out.push_str(&format!("model_dm_verity_root = [\"{root}\"]\n"));
    }
    out.push_str(&format!(
        "require_hpke_key = {}\n",
        m.claims.require_hpke_key
    ));
    if m.claims.gpus > 0 {
        let archs: Vec<String> = m
            .claims
            .gpu_architectures
            .iter()
            .map(|a| format!("\"{a}\""))
            .collect();
        out.push_str(&format!(
            "\n[gpu]\nrequired = true\narchitectures = [{}]\n",
            archs.join(", ")
        ));
    }
    out
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]
mod tests {
    use super::*;
    use crate::spec::Runtime;
    use std::path::{Path, PathBuf};

    fn successor() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/models/successor")
    }

    fn vm(attester: Attester, config_dir: Option<PathBuf>) -> Vm {
        Vm {
            name: "t".into(),
            platform: Platform::Process,
            vcpus: 1,
            memory_mib: 1,
            config_dir,
            api_port: 1,
            runtime: Runtime::default(),
            hpke: HpkeMode::Required,
            attester: Some(attester),
            gpu: GpuMode::Off,
            stop_timeout_secs: 1,
            launch: Launch::Process {
                model_dir: successor(),
                enclave_binary: PathBuf::from("/bin/true"),
            },
            spec_file: PathBuf::from("x.toml"),
        }
    }

    #[test]
    fn measurements_carry_the_model_and_config_digests() {
        let conf = tempfile::tempdir().unwrap();
        std::fs::write(conf.path().join("a.toml"), "x = 1\n").unwrap();
        let m = compute(&vm(Attester::SimTdx, Some(conf.path().to_path_buf()))).unwrap();
        let model = cocoon_attestation::model_digest::model_blake3(&successor()).unwrap();
        assert_eq!(m.claims.model_blake3, hex::encode(model));
        let tree = cocoon_attestation::config_tree::tree_hash(conf.path()).unwrap();
        assert_eq!(m.claims.config_digest, Some(hex::encode(tree.tree_hash)));
        assert!(m.claims.require_hpke_key);
        assert!(m.tdx.is_some() && m.snp.is_none());
    }

    fn vm_from_image(dir: &std::path::Path) -> Vm {
        crate::image::test_image(&dir.join("image"));
        let file = dir.join("vm.toml");
        std::fs::write(
            &file,
            "name = \"g\"\nplatform = \"vm\"\nimage = \"image\"\nports.api = 19000\n",
        )
        .unwrap();
        let options = crate::spec::Validation {
            limits: crate::spec::HostLimits {
                cpus: 4,
                memory_mib: 4096,
            },
            default_enclave: None,
        };
        crate::spec::load(&[file], &options).unwrap().remove(0)
    }

    #[test]
    fn a_vm_publishes_the_manifest_model_and_the_recomputed_verity_root() {
        let dir = tempfile::tempdir().unwrap();
        let vm = vm_from_image(dir.path());
        let image = vm.image().unwrap().clone();
        let m = compute(&vm).unwrap();
        assert_eq!(m.platform, Platform::Vm);
        assert!(m.simulated && m.tdx.is_some());
        assert_eq!(m.claims.model_blake3, image.model_blake3);
        assert_eq!(
            m.claims.model_dm_verity_root.as_deref(),
            Some(image.model_verity_root.as_str())
        );
        assert_eq!(m.claims.config_digest, None);
        let policy = policy_toml(&m);
        assert!(policy.contains(&format!(
            "model_dm_verity_root = [\"{}\"]",
            image.model_verity_root
        )));
        // A build without `sim` refuses `allow_simulated` in any policy; with it, the policy loads.
        #[cfg(feature = "sim")]
        assert!(
            cocoon_attestation::policy::Policy::from_toml(&policy).is_ok(),
            "{policy}"
        );
    }

    fn shared_vector(relative: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/vectors")
            .join(relative)
    }

    /// A QEMU launch of `platform` with `firmware`, the given kernel/initrd files and cmdline;
    /// the image's manifest digests are those of the files.
    fn hardware_launch(
        platform: &str,
        firmware: &str,
        kernel: &Path,
        initrd: &Path,
        cmdline: &str,
        vcpus: u32,
    ) -> (Vm, QemuLaunch) {
        let text = format!(
            "name = \"hw\"\nplatform = \"{platform}\"\nvcpus = {vcpus}\nmemory_mib = 2048\n\
             ports.api = 19001\nboot.firmware = {:?}\nboot.kernel = {kernel:?}\n\
             boot.initrd = {initrd:?}\nboot.cmdline = {cmdline:?}\nmodel.image = {kernel:?}\n",
            shared_vector(firmware)
        );
        let file = Path::new("/nonexistent/hw.toml");
        let spec = crate::spec::parse(file, &text).unwrap().remove(0);
        let qemu = crate::qemu::QemuVm::from_spec(file, &spec).unwrap();
        let file_entry = |name: &str, path: &Path| crate::image::ImageFile {
            path: Path::new("/img").join(name),
            sha256: crate::image::sha256_file(path).unwrap(),
            size: std::fs::metadata(path).unwrap().len(),
        };
        let image = crate::image::GuestImage {
            dir: PathBuf::from("/img"),
            name: "hw".into(),
            kernel: kernel.to_path_buf(),
            initrd: initrd.to_path_buf(),
            model_image: kernel.to_path_buf(),
            model_verity: kernel.to_path_buf(),
            cmdline: cmdline.into(),
            model_blake3: "ab".repeat(32),
            model_verity_root: "cd".repeat(32),
            verity_salt: String::new(),
            verity_uuid: String::new(),
            verity_data_blocks: 0,
            rootfs_image: kernel.to_path_buf(),
            rootfs_verity: kernel.to_path_buf(),
            rootfs_verity_root: "ef".repeat(32),
            rootfs_verity_uuid: String::new(),
            rootfs_verity_data_blocks: 0,
            attester: "auto".into(),
            hpke: HpkeMode::Required,
            guest_port: 8443,
            files: vec![
                file_entry(crate::image::KERNEL, kernel),
                file_entry(crate::image::INITRD, initrd),
            ],
        };
        let launch = QemuLaunch {
            qemu,
            image,
            accel: crate::spec::AccelChoice::Auto,
            powerdown_timeout_secs: 10,
        };
        let mut vm = vm(Attester::SimTdx, None);
        vm.attester = None;
        vm.vcpus = vcpus;
        vm.platform = if platform == "snp" {
            Platform::Snp
        } else {
            Platform::Tdx
        };
        vm.launch = Launch::Qemu(Box::new(launch.clone()));
        (vm, launch)
    }

    #[test]
    fn an_snp_launch_digest_equals_sev_snp_measure_on_the_shared_vector() {
        // shared/vectors/README.md: AmdSev OVMF, kernel d8.img, initrd d8.nosalt.verity, append
        // "console=ttyS0 root=/dev/vda", 2 vCPUs EPYC-v4, guest features 0x1 — the value
        // virtee's sev-snp-measure computes.
        let (vm, q) = hardware_launch(
            "snp",
            "measure/firmware/OVMF.amdsev.fd.sid-2026.08+ds-2",
            &shared_vector("measure/dm-verity/d8.img"),
            &shared_vector("measure/dm-verity/d8.nosalt.verity"),
            "console=ttyS0 root=/dev/vda",
            2,
        );
        assert_eq!(
            hex::encode(snp_launch_digest(&vm, &q).unwrap()),
            "0d943a54de4697d47fb1307df51df66c1f852c16d61a5751903063d29a05ebf479cb82bdcbf0eaa0fc22e7581bc4c79a"
        );
    }

    #[test]
    fn a_tdx_launch_publishes_the_firmware_mrtd_only() {
        let (_, q) = hardware_launch(
            "tdx",
            "measure/firmware/OVMF.inteltdx.ms.fd.sid-2026.08+ds-2",
            &shared_vector("measure/dm-verity/d8.img"),
            &shared_vector("measure/dm-verity/d8.nosalt.verity"),
            "console=ttyS0",
            1,
        );
        assert_eq!(
            hex::encode(tdx_mrtd(&q).unwrap()),
            "a7a1f751abc454f9cbab198ca8d2edb2821935df525c74182b5e776cb0929e8c59aefecce725b0d08a5e9d3d3183bd08"
        );
        let m = Measurements {
            name: "hw".into(),
            platform: Platform::Tdx,
            tee: "tdx".into(),
            simulated: false,
            tdx: Some(TdxValues {
                mrtd: "aa".repeat(48),
                rtmr0: None,
                rtmr1: None,
                rtmr2: None,
                rtmr3: None,
                xfam: None,
                td_attributes: None,
            }),
            snp: None,
            claims: ClaimValues {
                model_blake3: "ab".repeat(32),
                config_digest: None,
                gpus: 0,
                gpu_architectures: vec![],
                model_dm_verity_root: None,
                require_hpke_key: true,
            },
        };
        let text = policy_toml(&m);
        assert!(text.contains("[tdx]\nmrtd = ["), "{text}");
        assert!(
            !text.contains("rtmr") && !text.contains("allow_simulated"),
            "{text}"
        );
        assert!(
            cocoon_attestation::policy::Policy::from_toml(&text).is_ok(),
            "{text}"
        );
    }

    #[test]
    fn a_vm_whose_model_image_changed_publishes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let vm = vm_from_image(dir.path());
        let path = dir.path().join("image/model.img");
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[0] ^= 1;
        std::fs::write(&path, bytes).unwrap();
        match compute(&vm) {
            Err(Error::ImageChanged { path: p, .. }) => assert_eq!(p, path),
            other => panic!("expected ImageChanged, got {other:?}"),
        }
    }

    #[test]
    fn a_sim_gpu_vm_publishes_a_policy_that_requires_its_gpu() {
        let mut with_gpu = vm(Attester::SimTdx, None);
        with_gpu.gpu = GpuMode::Sim;
        let m = compute(&with_gpu).unwrap();
        assert_eq!(m.claims.gpus, 1);
        let text = policy_toml(&m);
        assert!(
            text.contains("[gpu]\nrequired = true\narchitectures = [\"hopper\"]\n"),
            "{text}"
        );
        #[cfg(feature = "sim")]
        assert!(
            cocoon_attestation::policy::Policy::from_toml(&text).is_ok(),
            "{text}"
        );
        let without = policy_toml(&compute(&vm(Attester::SimTdx, None)).unwrap());
        assert!(!without.contains("[gpu]"));
    }

    #[test]
    fn the_policy_pins_the_platform_and_the_claims() {
        let m = compute(&vm(Attester::SimSnp, None)).unwrap();
        let text = policy_toml(&m);
        assert!(text.contains("allow_simulated = true"));
        assert!(text.contains(&m.snp.as_ref().unwrap().measurement));
        assert!(text.contains(&m.claims.model_blake3));
        assert!(!text.contains("config_digest"));
        assert!(text.contains("require_hpke_key = true"));
        let parsed: toml::Table = toml::from_str(&text).unwrap();
        assert_eq!(parsed["version"].as_integer(), Some(1));
    }

    #[cfg(feature = "sim")]
    #[test]
    fn simulated_values_equal_what_the_sim_attester_reports() {
        use cocoon_attestation::sim::{snp::SimSnpReport, tdx::SimTdReport};
        let td = SimTdReport::default();
        let m = compute(&vm(Attester::SimTdx, None)).unwrap();
        let t = m.tdx.unwrap();
        assert_eq!(t.mrtd, hex::encode(td.mr_td));
        assert_eq!(t.xfam, Some(hex::encode(td.xfam)));
        assert_eq!(t.td_attributes, Some(hex::encode(td.td_attributes)));
        for (i, r) in [t.rtmr0, t.rtmr1, t.rtmr2, t.rtmr3].iter().enumerate() {
            assert_eq!(r.as_deref(), Some(hex::encode(td.rt_mr[i]).as_str()));
        }
        let m = compute(&vm(Attester::SimSnp, None)).unwrap();
        assert_eq!(
            m.snp.unwrap().measurement,
            hex::encode(SimSnpReport::default().measurement)
        );
    }

    #[cfg(feature = "sim")]
    #[test]
    fn the_policy_parses_as_a_cocoon_policy() {
        for attester in [Attester::SimTdx, Attester::SimSnp] {
            let m = compute(&vm(attester, None)).unwrap();
            let policy = cocoon_attestation::policy::Policy::from_toml(&policy_toml(&m)).unwrap();
            assert!(policy.allow_simulated());
            assert!(policy.claims().unwrap().require_hpke_key);
        }
    }
}
