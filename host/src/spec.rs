//! VM specs: TOML, one VM per file or a fleet file (`[[vm]]`), validated completely before
//! anything starts (docs/host.md has the reference).
//!
//! Measured vs unmeasured: everything that decides what the VM runs (platform, images, model,
//! `config_dir`, HPKE mode, attester) is either measured by the TEE or published in the claims
//! (`config_dir`'s tree hash becomes the claims' `config_digest`). `[runtime]` holds the only
//! UNMEASURED values — an allowlist of non-security knobs (log filter, thread and queue sizes) that
//! a client cannot see and that must not be able to change what the enclave does with a prompt.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, SpecReason};

/// Largest spec file read.
pub const MAX_SPEC_BYTES: u64 = 1024 * 1024;

/// Where a VM runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    /// The enclave binary as a local process with the simulated TEE.
    Process,
    /// A plain QEMU guest (KVM when /dev/kvm works, otherwise software emulation) booting an
    /// `images/build` image with the simulated TEE inside.
    Vm,
    /// AMD SEV-SNP under QEMU (not yet supported by this build).
    Snp,
    /// Intel TDX under QEMU (not yet supported by this build).
    Tdx,
}

/// The simulated TEE a `process` VM attests with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Attester {
    #[default]
    #[serde(rename = "sim-tdx")]
    SimTdx,
    #[serde(rename = "sim-snp")]
    SimSnp,
}

impl Attester {
    /// The `cocoon-enclave --attester` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SimTdx => "sim-tdx",
            Self::SimSnp => "sim-snp",
        }
    }
}

/// GPU evidence of a `process` VM (the enclave's `--gpu`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum GpuMode {
    #[default]
    Off,
    Sim,
}

impl GpuMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Sim => "sim",
        }
    }
}

/// HPKE-sealed bodies (the enclave's `--hpke`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum HpkeMode {
    Off,
    Optional,
    #[default]
    Required,
}

impl HpkeMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Optional => "optional",
            Self::Required => "required",
        }
    }
}

/// `[boot]`: direct boot of the `vm`/`snp`/`tdx` platforms (measured).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Boot {
    pub firmware: Option<PathBuf>,
    pub kernel: Option<PathBuf>,
    pub initrd: Option<PathBuf>,
    pub cmdline: Option<String>,
}

/// `[rootfs]`: the root file system image and its dm-verity root (measured via the cmdline).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rootfs {
    pub image: Option<PathBuf>,
    /// The image's dm-verity hash device (default: `image` with extension `.verity`).
    pub verity_image: Option<PathBuf>,
    pub verity_root: Option<String>,
}

/// `[model]`: a folder (`process`) or a dm-verity image (VM platforms).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    pub dir: Option<PathBuf>,
    pub image: Option<PathBuf>,
    /// The image's dm-verity hash device (VM platforms; default: `image` with extension `.verity`).
    pub verity_image: Option<PathBuf>,
    pub verity_root: Option<String>,
}

/// `[gpu]`: a PCI device passed through with VFIO (VM platforms).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gpu {
    pub pci: Option<String>,
    /// Attach through iommufd (QEMU >= 9.0, Linux >= 6.8) instead of the legacy VFIO container.
    pub iommufd: Option<bool>,
}

/// `[qemu]`: how the `vm`/`snp`/`tdx` platforms run QEMU (see `qemu.rs` and docs/host.md).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QemuSpec {
    /// The QEMU binary (default `qemu-system-x86_64` from PATH).
    pub binary: Option<PathBuf>,
    /// `-cpu` model (default: `EPYC-v4` for snp, `host` for tdx and vm with KVM, `qemu64` with TCG).
    pub cpu: Option<String>,
    /// Guest CID of a `vhost-vsock-pci` device (3 ..= 0xFFFF_FFFE); none without it.
    pub vsock_cid: Option<u32>,
    /// `user` (default: QEMU's user-mode network, the API port forwarded) or `tap:IFNAME`.
    pub network: Option<String>,
    /// snp: the `host-data` of the launch (base64 of 32 bytes, 44 characters), in the report.
    pub host_data: Option<String>,
    /// tdx: the unix socket of the host's quote generation service (QGS).
    pub quote_generation_socket: Option<PathBuf>,
    /// vm: `auto` (default: KVM when /dev/kvm opens read-write, else software emulation),
    /// `kvm` or `tcg`.
    pub accel: Option<String>,
    /// Seconds a stop waits for the guest to power off after QMP `system_powerdown` (ACPI)
    /// before SIGTERM (default 10, at most 300).
    pub powerdown_timeout_secs: Option<u64>,
}

/// `[ports]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ports {
    /// Host TCP port of the enclave's RA-TLS API (on 127.0.0.1 for `process`).
    pub api: Option<u16>,
}

/// `[runtime]`: UNMEASURED knobs. Only non-security values belong here: nothing in it can change
/// which model runs, which configuration applies, or how prompts are protected.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Runtime {
    /// Log filter of the enclave (`RUST_LOG` syntax).
    pub log_filter: Option<String>,
    /// ONNX Runtime intra-op threads.
    pub threads: Option<u32>,
    /// Sequences decoded at once.
    pub max_sequences: Option<u32>,
    /// Requests waiting for a slot.
    pub queue_capacity: Option<u32>,
}

/// `[enclave]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnclaveSpec {
    /// The `cocoon-enclave` binary (default: next to `cocoon-host`).
    pub binary: Option<PathBuf>,
    /// HPKE mode (default `required`).
    pub hpke: Option<HpkeMode>,
    /// `process` platform: the simulated TEE (default `sim-tdx`).
    pub attester: Option<Attester>,
    /// `process` platform: GPU evidence in the identity: `off` (default) or `sim` (one simulated
    /// H100; the enclave's `--gpu sim`).
    pub gpu: Option<GpuMode>,
    /// Seconds between SIGTERM and SIGKILL on stop (default 10, at most 300).
    pub stop_timeout_secs: Option<u64>,
}

/// One VM as written in the file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VmSpec {
    pub name: String,
    pub platform: Platform,
    #[serde(default = "one")]
    pub vcpus: u32,
    #[serde(default = "default_memory")]
    pub memory_mib: u64,
    /// MEASURED configuration folder: its tree hash is the claims' `config_digest`.
    pub config_dir: Option<PathBuf>,
    /// `vm`: a guest image folder built by `images/build` (kernel, initrd, cmdline, model volume
    /// and its dm-verity hash device, manifest.json).
    pub image: Option<PathBuf>,
    #[serde(default)]
    pub boot: Boot,
    #[serde(default)]
    pub rootfs: Rootfs,
    #[serde(default)]
    pub model: ModelSpec,
    #[serde(default)]
    pub gpu: Gpu,
    #[serde(default)]
    pub ports: Ports,
    #[serde(default)]
    pub runtime: Runtime,
    #[serde(default)]
    pub enclave: EnclaveSpec,
    #[serde(default)]
    pub qemu: QemuSpec,
}

fn one() -> u32 {
    1
}
fn default_memory() -> u64 {
    1024
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Fleet {
    vm: Vec<VmSpec>,
}

/// A validated VM: every path absolute and checked, defaults filled.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Vm {
    pub name: String,
    pub platform: Platform,
    pub vcpus: u32,
    pub memory_mib: u64,
    pub config_dir: Option<PathBuf>,
    pub api_port: u16,
    pub runtime: Runtime,
    pub hpke: HpkeMode,
    /// The simulated TEE the enclave attests with; `None` for `snp`/`tdx` (the hardware).
    pub attester: Option<Attester>,
    /// GPU evidence in the enclave's identity.
    pub gpu: GpuMode,
    /// Seconds between SIGTERM and SIGKILL on stop.
    pub stop_timeout_secs: u64,
    /// How the VM is launched.
    pub launch: Launch,
    /// The file it came from.
    pub spec_file: PathBuf,
}

/// How a VM runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Launch {
    /// `cocoon-enclave serve` as a local process.
    Process {
        model_dir: PathBuf,
        enclave_binary: PathBuf,
    },
    /// QEMU booting a guest image.
    Qemu(Box<QemuLaunch>),
}

/// `vm`: the checked QEMU command-line inputs and the image they boot.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QemuLaunch {
    #[serde(skip)]
    pub qemu: crate::qemu::QemuVm,
    pub image: crate::image::GuestImage,
    pub accel: AccelChoice,
    pub powerdown_timeout_secs: u64,
}

/// `qemu.accel`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AccelChoice {
    Auto,
    Kvm,
    Tcg,
}

impl AccelChoice {
    /// The accelerator to launch with now (`auto`: whether /dev/kvm opens read-write).
    pub fn resolve(self) -> crate::qemu::Accel {
        match self {
            Self::Auto => crate::qemu::Accel::detect(Path::new("/")),
            Self::Kvm => crate::qemu::Accel::Kvm,
            Self::Tcg => crate::qemu::Accel::Tcg,
        }
    }
}

impl Vm {
    /// The model folder of a `process` VM.
    pub fn model_dir(&self) -> Option<&Path> {
        match &self.launch {
            Launch::Process { model_dir, .. } => Some(model_dir),
            Launch::Qemu(_) => None,
        }
    }

    /// The guest image of a `vm` VM.
    pub fn image(&self) -> Option<&crate::image::GuestImage> {
        match &self.launch {
            Launch::Qemu(q) => Some(&q.image),
            Launch::Process { .. } => None,
        }
    }
}

/// What the host offers (checked against vCPUs and memory).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostLimits {
    pub cpus: u32,
    pub memory_mib: u64,
}

impl HostLimits {
    /// This machine: `available_parallelism` and `MemTotal` of /proc/meminfo.
    pub fn detect() -> Self {
        let cpus = std::thread::available_parallelism()
            .map(|n| u32::try_from(n.get()).unwrap_or(u32::MAX))
            .unwrap_or(1);
        let memory_mib = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|text| mem_total_mib(&text))
            .unwrap_or(u64::MAX);
        Self { cpus, memory_mib }
    }
}

/// `MemTotal:` of /proc/meminfo in MiB.
pub fn mem_total_mib(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}

/// Options of validation.
#[derive(Debug, Clone)]
pub struct Validation {
    pub limits: HostLimits,
    /// Default enclave binary (`cocoon-enclave` next to the running `cocoon-host`).
    pub default_enclave: Option<PathBuf>,
}

impl Validation {
    pub fn for_this_host() -> Self {
        let default_enclave = std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(|dir| dir.join("cocoon-enclave")));
        Self {
            limits: HostLimits::detect(),
            default_enclave,
        }
    }
}

/// `[a-z0-9][a-z0-9-]{0,62}`: safe as a file name (no `/`, no `..`, no leading dot or dash).
pub fn valid_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    match bytes.first() {
        Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit() => {}
        _ => return false,
    }
    bytes.len() <= 63
        && bytes
            .iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

fn err(file: &Path, vm: Option<&str>, key: &str, reason: SpecReason, detail: String) -> Error {
    Error::Spec {
        file: file.to_path_buf(),
        vm: vm.map(str::to_owned),
        key: key.to_owned(),
        reason,
        detail,
    }
}

/// Parses one file: a single VM, or a fleet (`[[vm]]`).
pub fn parse(file: &Path, text: &str) -> Result<Vec<VmSpec>> {
    let table: toml::Table = toml::from_str(text)
        .map_err(|e| err(file, None, "-", SpecReason::Syntax, e.to_string()))?;
    let fleet = table.contains_key("vm");
    let result = if fleet {
        toml::from_str::<Fleet>(text).map(|f| f.vm)
    } else {
        toml::from_str::<VmSpec>(text).map(|v| vec![v])
    };
    result.map_err(|e| {
        let line = e
            .span()
            .and_then(|span| text.get(..span.start))
            .map(|before| before.matches('\n').count().saturating_add(1));
        let message = match line {
            Some(line) => format!("{} (line {line})", e.message()),
            None => e.message().to_owned(),
        };
        match message
            .strip_prefix("unknown field `")
            .and_then(|rest| rest.split('`').next())
        {
            Some(key) => err(file, None, key, SpecReason::UnknownKey, message.clone()),
            None => {
                let key = message
                    .strip_prefix("missing field `")
                    .and_then(|rest| rest.split('`').next());
                match key {
                    Some(key) => err(file, None, key, SpecReason::Required, message.clone()),
                    None => err(file, None, "-", SpecReason::Syntax, message.clone()),
                }
            }
        }
    })
}

/// Reads, parses and validates spec files; every VM of every file, or the first refusal.
pub fn load(files: &[PathBuf], options: &Validation) -> Result<Vec<Vm>> {
    let mut vms = Vec::new();
    for file in files {
        let meta = std::fs::metadata(file).map_err(crate::error::io(file))?;
        if meta.len() > MAX_SPEC_BYTES {
            return Err(err(
                file,
                None,
                "-",
                SpecReason::BadValue,
                format!("spec file over {MAX_SPEC_BYTES} bytes"),
            ));
        }
        let text = std::fs::read_to_string(file).map_err(crate::error::io(file))?;
        for spec in parse(file, &text)? {
            vms.push(validate(file, spec, options)?);
        }
    }
    check_unique(&vms)?;
    Ok(vms)
}

/// Names and host ports must be unique across all loaded specs.
pub fn check_unique(vms: &[Vm]) -> Result<()> {
    let mut names = BTreeSet::new();
    let mut ports = BTreeMap::new();
    for vm in vms {
        if !names.insert(vm.name.as_str()) {
            return Err(err(
                &vm.spec_file,
                Some(&vm.name),
                "name",
                SpecReason::Duplicate,
                format!("two VMs are named {:?}", vm.name),
            ));
        }
        if let Some(other) = ports.insert(vm.api_port, vm.name.as_str()) {
            return Err(err(
                &vm.spec_file,
                Some(&vm.name),
                "ports.api",
                SpecReason::Duplicate,
                format!("port {} is also used by {other:?}", vm.api_port),
            ));
        }
    }
    Ok(())
}

fn resolve(base: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    }
}

/// Validates one VM of `file` (relative paths are relative to the file's folder).
pub fn validate(file: &Path, spec: VmSpec, options: &Validation) -> Result<Vm> {
    if !valid_name(&spec.name) {
        return Err(err(
            file,
            None,
            "name",
            SpecReason::BadName,
            format!(
                "{:?} is not [a-z0-9][a-z0-9-]{{0,62}} (names become file names)",
                spec.name
            ),
        ));
    }
    let name = spec.name.clone();
    let e =
        |key: &str, reason: SpecReason, detail: String| err(file, Some(&name), key, reason, detail);
    let limits = options.limits;
    if spec.vcpus == 0 || spec.vcpus > limits.cpus {
        return Err(e(
            "vcpus",
            SpecReason::OverHostLimit,
            format!("{} vCPUs; this host has {}", spec.vcpus, limits.cpus),
        ));
    }
    if spec.memory_mib == 0 || spec.memory_mib > limits.memory_mib {
        return Err(e(
            "memory_mib",
            SpecReason::OverHostLimit,
            format!(
                "{} MiB; this host has {} MiB",
                spec.memory_mib, limits.memory_mib
            ),
        ));
    }
    if spec.platform != Platform::Process {
        return validate_vm(file, spec);
    }
    // Keys of the VM platforms refused on `process`, so nobody believes they took effect.
    let not_process = [
        ("image", spec.image.is_some()),
        ("boot", spec.boot != Boot::default()),
        ("rootfs", spec.rootfs != Rootfs::default()),
        ("gpu", spec.gpu != Gpu::default()),
        ("qemu", spec.qemu != QemuSpec::default()),
        ("model.verity_image", spec.model.verity_image.is_some()),
        ("model.image", spec.model.image.is_some()),
        ("model.verity_root", spec.model.verity_root.is_some()),
    ];
    if let Some((key, _)) = not_process.iter().find(|(_, set)| *set) {
        return Err(e(
            key,
            SpecReason::NotForPlatform,
            "only the vm, snp and tdx platforms use it".to_owned(),
        ));
    }
    let base = file.parent().unwrap_or(Path::new("."));
    let model_dir = spec.model.dir.as_deref().ok_or_else(|| {
        e(
            "model.dir",
            SpecReason::Required,
            "the process platform serves a model folder".to_owned(),
        )
    })?;
    let model_dir = resolve(base, model_dir);
    if !model_dir.is_dir() {
        return Err(e(
            "model.dir",
            SpecReason::MissingPath,
            format!("{} is not a folder", model_dir.display()),
        ));
    }
    let config_dir = match &spec.config_dir {
        Some(dir) => {
            let dir = resolve(base, dir);
            if !dir.is_dir() {
                return Err(e(
                    "config_dir",
                    SpecReason::MissingPath,
                    format!("{} is not a folder", dir.display()),
                ));
            }
            Some(dir)
        }
        None => None,
    };
    let api_port = match spec.ports.api {
        Some(0) => {
            return Err(e(
                "ports.api",
                SpecReason::BadValue,
                "port 0 is not a fixed port".to_owned(),
            ))
        }
        Some(port) => port,
        None => {
            return Err(e(
                "ports.api",
                SpecReason::Required,
                "the host port of the enclave's API".to_owned(),
            ))
        }
    };
    let r = &spec.runtime;
    for (key, value, max) in [
        ("runtime.threads", r.threads, 1024),
        ("runtime.max_sequences", r.max_sequences, 4096),
        ("runtime.queue_capacity", r.queue_capacity, 1_000_000),
    ] {
        if let Some(v) = value {
            if v == 0 || v > max {
                return Err(e(
                    key,
                    SpecReason::BadValue,
                    format!("{v} not in 1..={max}"),
                ));
            }
        }
    }
    if let Some(filter) = &r.log_filter {
        let ok = filter.len() <= 256
            && filter
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"_-=,:.".contains(&c));
        if !ok {
            return Err(e(
                "runtime.log_filter",
                SpecReason::BadValue,
                "at most 256 characters of [A-Za-z0-9_=,:.-]".to_owned(),
            ));
        }
    }
    let enclave_binary = match (&spec.enclave.binary, &options.default_enclave) {
        (Some(path), _) => resolve(base, path),
        (None, Some(path)) => path.clone(),
        (None, None) => {
            return Err(e(
                "enclave.binary",
                SpecReason::Required,
                "no cocoon-enclave next to cocoon-host".to_owned(),
            ))
        }
    };
    if !enclave_binary.is_file() {
        return Err(e(
            "enclave.binary",
            SpecReason::MissingPath,
            format!("{} is not a file", enclave_binary.display()),
        ));
    }
    let stop_timeout_secs = spec.enclave.stop_timeout_secs.unwrap_or(10);
    if stop_timeout_secs == 0 || stop_timeout_secs > 300 {
        return Err(e(
            "enclave.stop_timeout_secs",
            SpecReason::BadValue,
            format!("{stop_timeout_secs} not in 1..=300"),
        ));
    }
    Ok(Vm {
        name: spec.name.clone(),
        platform: spec.platform,
        vcpus: spec.vcpus,
        memory_mib: spec.memory_mib,
        config_dir,
        api_port,
        runtime: spec.runtime.clone(),
        hpke: spec.enclave.hpke.unwrap_or_default(),
        attester: Some(spec.enclave.attester.unwrap_or_default()),
        gpu: spec.enclave.gpu.unwrap_or_default(),
        stop_timeout_secs,
        launch: Launch::Process {
            model_dir,
            enclave_binary,
        },
        spec_file: file.to_path_buf(),
    })
}

/// Reads the image folder `spec.image` names (relative to the spec file) and fills the spec's
/// `boot` and `model` keys from its manifest; they must be unset in the spec.
pub fn apply_image(file: &Path, spec: &mut VmSpec) -> Result<crate::image::GuestImage> {
    let name = spec.name.clone();
    let e =
        |key: &str, reason: SpecReason, detail: String| err(file, Some(&name), key, reason, detail);
    let base = file.parent().unwrap_or(Path::new("."));
    let image_dir = spec.image.as_deref().ok_or_else(|| {
        e(
            "image",
            SpecReason::Required,
            "the vm platform boots a guest image folder built by images/build".to_owned(),
        )
    })?;
    let image_dir = resolve(base, image_dir);
    if !image_dir.join("manifest.json").is_file() {
        return Err(e(
            "image",
            SpecReason::MissingPath,
            format!("{} has no manifest.json", image_dir.display()),
        ));
    }
    let image = crate::image::GuestImage::load(&image_dir)
        .map_err(|x| e("image", SpecReason::BadValue, x.to_string()))?;
    let firmware = spec.boot.firmware.clone();
    let boot_other_than_firmware = Boot {
        firmware: None,
        ..spec.boot.clone()
    } != Boot::default();
    if firmware.is_some() && spec.platform == Platform::Vm {
        return Err(e(
            "boot.firmware",
            SpecReason::NotForPlatform,
            "a vm guest boots with QEMU's own firmware; OVMF is for snp and tdx".to_owned(),
        ));
    }
    for (key, set) in [
        ("boot", boot_other_than_firmware),
        ("model", spec.model != ModelSpec::default()),
        ("rootfs", spec.rootfs != Rootfs::default()),
    ] {
        if set {
            return Err(e(
                key,
                SpecReason::NotForPlatform,
                "set by the image's manifest; remove it from the spec".to_owned(),
            ));
        }
    }
    if image.guest_port != crate::qemu::GUEST_API_PORT {
        return Err(e(
            "image",
            SpecReason::BadValue,
            format!(
                "the image's enclave listens on {}, the agent forwards to {}",
                image.guest_port,
                crate::qemu::GUEST_API_PORT
            ),
        ));
    }
    spec.boot = Boot {
        firmware,
        kernel: Some(image.kernel.clone()),
        initrd: Some(image.initrd.clone()),
        cmdline: Some(image.cmdline.clone()),
    };
    spec.rootfs = Rootfs {
        image: Some(image.rootfs_image.clone()),
        verity_image: Some(image.rootfs_verity.clone()),
        verity_root: Some(image.rootfs_verity_root.clone()),
    };
    spec.model = ModelSpec {
        dir: None,
        image: Some(image.model_image.clone()),
        verity_image: Some(image.model_verity.clone()),
        verity_root: Some(image.model_verity_root.clone()),
    };
    Ok(image)
}

fn stop_timeout(
    key: &str,
    value: Option<u64>,
    e: &dyn Fn(&str, SpecReason, String) -> Error,
) -> Result<u64> {
    let secs = value.unwrap_or(10);
    if secs == 0 || secs > 300 {
        return Err(e(
            key,
            SpecReason::BadValue,
            format!("{secs} not in 1..=300"),
        ));
    }
    Ok(secs)
}

/// The QEMU platforms (`vm`, `snp`, `tdx`): the image folder's manifest fills the boot and model
/// keys (which the spec must then leave out, but for `boot.firmware` of snp/tdx), and the
/// enclave's attester and HPKE mode come from the image (they are inside the measured initramfs,
/// not the host's choice). A `vm` boots an image built with the simulated TEE; `snp`/`tdx` need
/// an image whose enclave attests with the hardware.
fn validate_vm(file: &Path, mut spec: VmSpec) -> Result<Vm> {
    let name = spec.name.clone();
    let e =
        |key: &str, reason: SpecReason, detail: String| err(file, Some(&name), key, reason, detail);
    for (key, set) in [
        ("config_dir", spec.config_dir.is_some()),
        ("runtime", spec.runtime != Runtime::default()),
        ("enclave.hpke", spec.enclave.hpke.is_some()),
        ("enclave.gpu", spec.enclave.gpu.is_some()),
        ("gpu", spec.gpu != Gpu::default()),
    ] {
        if set {
            return Err(e(
                key,
                SpecReason::NotForPlatform,
                "a vm guest's configuration is inside its measured image (images/build)".to_owned(),
            ));
        }
    }
    let image = apply_image(file, &mut spec)?;
    let attester = image.simulated_attester();
    match (spec.platform, attester) {
        (Platform::Vm, None) => {
            return Err(e(
                "image",
                SpecReason::BadValue,
                format!(
                    "the image's enclave attests with {:?}; a vm guest has no TEE and needs an \
                     image built with the simulated one (images/build)",
                    image.attester
                ),
            ))
        }
        (Platform::Snp | Platform::Tdx, Some(sim)) => {
            return Err(e(
                "image",
                SpecReason::BadValue,
                format!(
                    "the image's enclave attests with the simulated TEE ({}): an {} guest needs \
                     an image whose enclave uses the hardware (images/build --attester auto)",
                    sim.as_str(),
                    if spec.platform == Platform::Snp {
                        "snp"
                    } else {
                        "tdx"
                    }
                ),
            ))
        }
        _ => {}
    }
    // vCPUs and memory were checked against the host's limits by the caller.
    let qemu = crate::qemu::QemuVm::from_spec(file, &spec)?;
    qemu.check_paths(file)?;
    let accel = match spec.qemu.accel.as_deref() {
        None | Some("auto") => AccelChoice::Auto,
        Some("kvm") => AccelChoice::Kvm,
        Some("tcg") => AccelChoice::Tcg,
        Some(other) => {
            return Err(e(
                "qemu.accel",
                SpecReason::BadValue,
                format!("{other:?}: \"auto\", \"kvm\" or \"tcg\""),
            ))
        }
    };
    let powerdown_timeout_secs = stop_timeout(
        "qemu.powerdown_timeout_secs",
        spec.qemu.powerdown_timeout_secs,
        &e,
    )?;
    let stop_timeout_secs = stop_timeout(
        "enclave.stop_timeout_secs",
        spec.enclave.stop_timeout_secs,
        &e,
    )?;
    Ok(Vm {
        name: spec.name.clone(),
        platform: spec.platform,
        vcpus: spec.vcpus,
        memory_mib: spec.memory_mib,
        config_dir: None,
        api_port: qemu.api_port,
        runtime: Runtime::default(),
        hpke: image.hpke,
        attester,
        gpu: GpuMode::Off,
        stop_timeout_secs,
        launch: Launch::Qemu(Box::new(QemuLaunch {
            qemu,
            image,
            accel,
            powerdown_timeout_secs,
        })),
        spec_file: file.to_path_buf(),
    })
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]
mod tests;
