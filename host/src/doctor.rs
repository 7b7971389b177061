//! `cocoon-host doctor`: what this host has and lacks for each platform (`process`, `vm`, `snp`,
//! `tdx`, `gpu`), each missing piece with its fix.
//!
//! Every file read goes through [`HostFs`], rooted at a folder (`/` in production, a fake `/sys`
//! and `/proc` tree in tests). Outputs of programs (`qemu-system-x86_64 --version`,
//! `nvidia-smi conf-compute -f`) are gathered by [`Options::for_this_host`] and passed in, so
//! [`examine`] itself runs nothing.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::qemu::{valid_pci, DEFAULT_BINARY};

/// Largest file read (sysfs/procfs files are small).
const MAX_READ: u64 = 1024 * 1024;
/// Largest prefix of the enclave binary searched for the `sim` feature's marker.
const MAX_BINARY: u64 = 1024 * 1024 * 1024;

/// The platforms doctor judges.
pub const PLATFORMS: [&str; 5] = ["process", "vm", "snp", "tdx", "gpu"];

/// Read-only access to a host's files under a root folder.
#[derive(Debug, Clone)]
pub struct HostFs {
    root: PathBuf,
}

impl HostFs {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// `abs` (an absolute host path) under the root.
    pub fn path(&self, abs: &str) -> PathBuf {
        self.root.join(abs.trim_start_matches('/'))
    }

    /// The file's text (at most 1 MiB), trimmed; `None` when unreadable.
    pub fn read(&self, abs: &str) -> Option<String> {
        let file = std::fs::File::open(self.path(abs)).ok()?;
        let mut text = String::new();
        file.take(MAX_READ).read_to_string(&mut text).ok()?;
        Some(text.trim().to_owned())
    }

    pub fn exists(&self, abs: &str) -> bool {
        self.path(abs).exists()
    }

    /// Names in a folder (sorted), `None` when it cannot be listed.
    pub fn list(&self, abs: &str) -> Option<Vec<String>> {
        let mut names: Vec<String> = std::fs::read_dir(self.path(abs))
            .ok()?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        Some(names)
    }

    /// The last component of a symlink's target (e.g. a device's driver).
    pub fn link_name(&self, abs: &str) -> Option<String> {
        let target = std::fs::read_link(self.path(abs)).ok()?;
        Some(target.file_name()?.to_string_lossy().into_owned())
    }

    /// Whether the device node opens read-write (KVM needs both).
    pub fn opens_rw(&self, abs: &str) -> bool {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(self.path(abs))
            .is_ok()
    }
}

/// Inputs that are not files.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `qemu-system-x86_64 --version` output; `None` when it did not run.
    pub qemu_version: Option<String>,
    /// `nvidia-smi conf-compute -f` output; `None` when the tool is missing.
    pub nvidia_cc: Option<String>,
    /// The enclave binary the `process` platform runs.
    pub enclave: Option<PathBuf>,
    /// A GPU (PCI address) to check for passthrough.
    pub gpu: Option<String>,
}

fn command_output(program: &str, args: &[&str]) -> Option<String> {
    let out = std::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .ok()?;
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    Some(text)
}

impl Options {
    /// Runs the programs of this host (QEMU's `--version`, `nvidia-smi`).
    pub fn for_this_host(gpu: Option<&str>) -> Self {
        let enclave = std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(|dir| dir.join("cocoon-enclave")));
        Self {
            qemu_version: command_output(DEFAULT_BINARY, &["--version"]),
            nvidia_cc: command_output("nvidia-smi", &["conf-compute", "-f"]),
            enclave,
            gpu: gpu.map(str::to_owned),
        }
    }
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Missing,
    /// Could not be decided here (e.g. no tool to ask).
    Unknown,
    /// Informational or degraded (works, but slower or smaller).
    Warn,
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub status: Status,
    pub detail: String,
    /// How to fix it (absent when ok).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
    /// The platforms that need it to be ok.
    pub needed_by: Vec<&'static str>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub ready: bool,
    /// Names of the checks that keep it from being ready.
    pub missing: Vec<&'static str>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub checks: Vec<Check>,
    pub platforms: BTreeMap<&'static str, Verdict>,
}

impl Report {
    /// Whether `platform` can run here.
    pub fn ready(&self, platform: &str) -> bool {
        self.platforms.get(platform).is_some_and(|v| v.ready)
    }

    pub fn check(&self, name: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.name == name)
    }

    /// Human-readable report.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for c in &self.checks {
            let mark = match c.status {
                Status::Ok => "ok     ",
                Status::Missing => "MISSING",
                Status::Unknown => "unknown",
                Status::Warn => "warn   ",
            };
            out.push_str(&format!("{mark} {:<18} {}\n", c.name, c.detail));
            if let Some(fix) = &c.fix {
                out.push_str(&format!("        {:<18} fix: {fix}\n", ""));
            }
        }
        out.push('\n');
        for (platform, v) in &self.platforms {
            if v.ready {
                out.push_str(&format!("{platform:<8} ready\n"));
            } else {
                out.push_str(&format!(
                    "{platform:<8} NOT READY: {}\n",
                    v.missing.join(", ")
                ));
            }
        }
        out
    }
}

/// `(major, minor)` of `QEMU emulator version X.Y.Z …`.
pub fn parse_qemu_version(text: &str) -> Option<(u32, u32)> {
    let rest = text.split("version ").nth(1)?;
    let mut parts = rest.split(|c: char| !c.is_ascii_digit());
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

fn param_on(fs: &HostFs, abs: &str) -> Option<bool> {
    fs.read(abs)
        .map(|v| matches!(v.as_str(), "Y" | "y" | "1" | "on"))
}

fn meminfo_kib(meminfo: &str, key: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Whether `file` contains `needle` within its first [`MAX_BINARY`] bytes.
fn file_contains(file: &Path, needle: &[u8]) -> Option<bool> {
    let f = std::fs::File::open(file).ok()?;
    let mut reader = f.take(MAX_BINARY);
    let mut window: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = reader.read(&mut buf).ok()?;
        if n == 0 {
            return Some(false);
        }
        window.extend_from_slice(buf.get(..n)?);
        if window.windows(needle.len()).any(|w| w == needle) {
            return Some(true);
        }
        let keep = needle.len().saturating_sub(1);
        let drop = window.len().saturating_sub(keep);
        window.drain(..drop);
    }
}

/// A string only the `sim` build of `cocoon-enclave` contains (its simulated collateral error).
const SIM_MARKER: &[u8] = b"simulated collateral: ";

struct Builder {
    checks: Vec<Check>,
}

impl Builder {
    fn add(
        &mut self,
        name: &'static str,
        status: Status,
        detail: impl Into<String>,
        fix: Option<&str>,
        needed_by: &[&'static str],
    ) {
        let fix = if status == Status::Ok {
            None
        } else {
            fix.map(str::to_owned)
        };
        self.checks.push(Check {
            name,
            status,
            detail: detail.into(),
            fix,
            needed_by: needed_by.to_vec(),
        });
    }
}

fn ok_or(ok: bool, other: Status) -> Status {
    if ok {
        Status::Ok
    } else {
        other
    }
}

/// Examines the host under `fs` (see [`Options`] for the rest).
pub fn examine(fs: &HostFs, options: &Options) -> Report {
    let mut b = Builder { checks: Vec::new() };

    // process: the enclave binary, built with the simulated TEE.
    match &options.enclave {
        Some(path) if path.is_file() => match file_contains(path, SIM_MARKER) {
            Some(true) => b.add(
                "enclave",
                Status::Ok,
                format!("{} (built with sim)", path.display()),
                None,
                &["process"],
            ),
            _ => b.add(
                "enclave",
                Status::Missing,
                format!("{} was built without the sim feature", path.display()),
                Some("cargo build -p cocoon-enclave --features sim"),
                &["process"],
            ),
        },
        other => b.add(
            "enclave",
            Status::Missing,
            format!(
                "no cocoon-enclave at {}",
                other
                    .as_deref()
                    .map_or_else(|| "-".to_owned(), |p| p.display().to_string())
            ),
            Some("cargo build -p cocoon-enclave --features sim (next to cocoon-host)"),
            &["process"],
        ),
    }

    // KVM: snp and tdx need it; vm falls back to TCG (slow) without it.
    let kvm = fs.opens_rw("/dev/kvm");
    let kvm_detail = if kvm {
        "/dev/kvm opens read-write".to_owned()
    } else if fs.exists("/dev/kvm") {
        "/dev/kvm exists but does not open read-write".to_owned()
    } else {
        "no /dev/kvm (vm falls back to TCG emulation)".to_owned()
    };
    b.add(
        "kvm",
        ok_or(kvm, Status::Missing),
        kvm_detail,
        Some("enable virtualization in the BIOS, modprobe kvm_amd or kvm_intel, add the user to group kvm"),
        &["snp", "tdx", "gpu"],
    );

    // QEMU and which platforms its version supports.
    let version = options.qemu_version.as_deref().and_then(parse_qemu_version);
    let qemu_at_least = |need: (u32, u32)| version.is_some_and(|v| v >= need);
    match version {
        Some((major, minor)) => {
            let mut runs = vec!["vm"];
            if qemu_at_least((9, 1)) {
                runs.push("snp (sev-snp-guest)");
            }
            if qemu_at_least((10, 1)) {
                runs.push("tdx (tdx-guest)");
            }
            if qemu_at_least((9, 0)) {
                runs.push("iommufd");
            }
            b.add(
                "qemu",
                Status::Ok,
                format!("QEMU {major}.{minor}: {}", runs.join(", ")),
                None,
                &["vm", "gpu"],
            );
        }
        None => b.add(
            "qemu",
            Status::Missing,
            "qemu-system-x86_64 not found (or its version unreadable)",
            Some("apt-get install qemu-system-x86"),
            &["vm", "gpu"],
        ),
    }
    b.add(
        "qemu-snp",
        ok_or(qemu_at_least((9, 1)), Status::Missing),
        "sev-snp-guest needs QEMU >= 9.1",
        Some("apt-get install -t bookworm-backports qemu-system-x86 (10.0)"),
        &["snp"],
    );
    b.add(
        "qemu-tdx",
        ok_or(qemu_at_least((10, 1)), Status::Missing),
        "tdx-guest needs QEMU >= 10.1",
        Some("QEMU 11.1 from trixie-backports/sid in a trixie userland (docs/host.md)"),
        &["tdx"],
    );

    // SEV-SNP: the CPU, the firmware (kvm_amd enables sev_snp only after the PSP initialised SNP),
    // and /dev/sev for the host's firmware/certificate commands.
    let cpuinfo = fs.read("/proc/cpuinfo").unwrap_or_default();
    let cpu_flag = |flag: &str| {
        cpuinfo
            .lines()
            .filter(|l| l.starts_with("flags"))
            .any(|l| l.split_whitespace().any(|f| f == flag))
    };
    let snp_cpu = cpu_flag("sev_snp");
    b.add(
        "snp-cpu",
        ok_or(snp_cpu, Status::Missing),
        if snp_cpu {
            "CPU flag sev_snp"
        } else {
            "no sev_snp CPU flag (not an SNP-capable EPYC, or SNP off in the BIOS)"
        },
        Some("an AMD EPYC 7003+ with SEV-SNP, SMEE and SNP enabled in the BIOS"),
        &["snp"],
    );
    let sev_snp = param_on(fs, "/sys/module/kvm_amd/parameters/sev_snp");
    b.add(
        "kvm_amd.sev_snp",
        ok_or(sev_snp == Some(true), Status::Missing),
        match sev_snp {
            Some(true) => "kvm_amd sev_snp=Y (SNP firmware initialised)".to_owned(),
            Some(false) => "kvm_amd sev_snp=N".to_owned(),
            None => "kvm_amd not loaded".to_owned(),
        },
        Some("kernel >= 6.11 with SNP host support, SEV firmware >= 1.55 (linux-firmware amd/amd_sev_*), modprobe kvm_amd sev_snp=1"),
        &["snp"],
    );
    let dev_sev = fs.exists("/dev/sev");
    b.add(
        "/dev/sev",
        ok_or(dev_sev, Status::Missing),
        if dev_sev { "present" } else { "absent" },
        Some("load the ccp driver (modprobe ccp); the PSP must be visible to the host"),
        &["snp"],
    );

    // TDX.
    let tdx = param_on(fs, "/sys/module/kvm_intel/parameters/tdx");
    b.add(
        "kvm_intel.tdx",
        ok_or(tdx == Some(true), Status::Missing),
        match tdx {
            Some(true) => "kvm_intel tdx=Y (TDX module loaded)".to_owned(),
            Some(false) => "kvm_intel tdx=N".to_owned(),
            None => "kvm_intel not loaded or without the tdx parameter".to_owned(),
        },
        Some("Xeon 4th gen+ with TDX enabled in the BIOS (and the TDX module), kernel >= 6.16, modprobe kvm_intel tdx=1"),
        &["tdx"],
    );

    // GPU passthrough: IOMMU groups, the device bound to vfio-pci, NVIDIA CC mode.
    let groups = fs
        .list("/sys/kernel/iommu_groups")
        .map_or(0, |names| names.len());
    b.add(
        "iommu",
        ok_or(groups > 0, Status::Missing),
        format!("{groups} IOMMU groups"),
        Some("enable VT-d/AMD-Vi in the BIOS; kernel parameter intel_iommu=on or amd_iommu=on iommu=pt"),
        &["gpu"],
    );
    match options.gpu.as_deref() {
        Some(pci) if valid_pci(pci) => {
            let pci = pci.to_ascii_lowercase();
            let dev = format!("/sys/bus/pci/devices/{pci}");
            let driver = fs.link_name(&format!("{dev}/driver"));
            let present = fs.exists(&dev);
            let bound = driver.as_deref() == Some("vfio-pci");
            b.add(
                "gpu-vfio",
                ok_or(bound, Status::Missing),
                match (&driver, present) {
                    (_, false) => format!("no PCI device {pci}"),
                    (Some(d), true) => format!("{pci} bound to {d}"),
                    (None, true) => format!("{pci} bound to no driver"),
                },
                Some(&format!(
                    "echo {pci} > /sys/bus/pci/devices/{pci}/driver/unbind; echo vfio-pci > /sys/bus/pci/devices/{pci}/driver_override; echo {pci} > /sys/bus/pci/drivers_probe"
                )),
                &["gpu"],
            );
            let group = fs.link_name(&format!("{dev}/iommu_group"));
            b.add(
                "gpu-iommu-group",
                ok_or(group.is_some(), Status::Missing),
                match &group {
                    Some(g) => format!("{pci} in IOMMU group {g}"),
                    None => format!("{pci} has no IOMMU group"),
                },
                Some("enable the IOMMU (see iommu)"),
                &["gpu"],
            );
        }
        Some(pci) => b.add(
            "gpu-vfio",
            Status::Missing,
            format!("{pci:?} is not a PCI address DDDD:BB:DD.F"),
            Some("pass --gpu 0000:41:00.0 (lspci -D)"),
            &["gpu"],
        ),
        None => b.add(
            "gpu-vfio",
            Status::Missing,
            "no GPU named",
            Some("pass --gpu PCI (lspci -D -d 10de:)"),
            &["gpu"],
        ),
    }
    match options.nvidia_cc.as_deref() {
        None => b.add(
            "gpu-cc-mode",
            Status::Unknown,
            "unknown: needs nvidia-smi conf-compute",
            Some("install the NVIDIA driver tools; nvidia-smi conf-compute -srs 1 (H100+)"),
            &[],
        ),
        Some(out) => {
            let on = out.to_ascii_uppercase().contains("CC STATUS: ON");
            b.add(
                "gpu-cc-mode",
                ok_or(on, Status::Warn),
                out.lines().next().unwrap_or_default().trim().to_owned(),
                Some("nvidia-smi conf-compute -srs 1 (then reset the GPU)"),
                &[],
            );
        }
    }

    // Memory.
    let meminfo = fs.read("/proc/meminfo").unwrap_or_default();
    let available_mib = meminfo_kib(&meminfo, "MemAvailable:").map(|k| k / 1024);
    let enough = available_mib.is_some_and(|m| m >= 1024);
    b.add(
        "free-memory",
        ok_or(enough, Status::Missing),
        match available_mib {
            Some(m) => format!("{m} MiB available (a VM needs its memory_mib, at least 1024)"),
            None => "MemAvailable unreadable".to_owned(),
        },
        Some("stop other VMs or lower memory_mib"),
        &["vm", "snp", "tdx"],
    );
    let huge = meminfo_kib(&meminfo, "HugePages_Total:").unwrap_or(0);
    let huge_size = meminfo_kib(&meminfo, "Hugepagesize:").unwrap_or(0);
    b.add(
        "hugepages",
        ok_or(huge > 0, Status::Warn),
        format!("{huge} huge pages of {huge_size} KiB (optional; guests use normal pages)"),
        Some("sysctl vm.nr_hugepages=N for fewer TLB misses (not needed)"),
        &[],
    );

    let mut platforms = BTreeMap::new();
    for platform in PLATFORMS {
        let missing: Vec<&'static str> = b
            .checks
            .iter()
            .filter(|c| c.needed_by.contains(&platform) && c.status != Status::Ok)
            .map(|c| c.name)
            .collect();
        platforms.insert(
            platform,
            Verdict {
                ready: missing.is_empty(),
                missing,
            },
        );
    }
    Report {
        checks: b.checks,
        platforms,
    }
}
