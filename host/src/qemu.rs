//! QEMU command lines of the `vm`, `snp` and `tdx` platforms.
//!
//! [`QemuVm::from_spec`] checks the VM-platform keys of a parsed spec (no file system access, so
//! golden tests are stable); [`QemuVm::check_paths`] then checks that the files exist; [`argv`] is
//! a pure function from a [`QemuVm`] plus host paths and the accelerator to QEMU's argv — a list of
//! `OsString`s, never a shell string, so no path or value is ever interpreted by a shell.
//!
//! Values that QEMU parses as `key=value,…` option lists (`-drive file=…`) have their commas
//! doubled (QEMU's escape); `-kernel`, `-initrd`, `-append`, `-bios` and `-serial file:` take the
//! rest of the argument verbatim.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result, SpecReason};
use crate::spec::{valid_name, Platform, VmSpec};

/// The guest port of the enclave's RA-TLS API (`cocoon.port=8443` in the image's cmdline).
pub const GUEST_API_PORT: u16 = 8443;

/// The QEMU binary used when the spec names none.
pub const DEFAULT_BINARY: &str = "qemu-system-x86_64";

/// How the `vm` platform runs the guest: decided by the caller (doctor / supervisor: whether
/// /dev/kvm opens read-write), never read inside [`argv`]. `snp` and `tdx` always use KVM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    Kvm,
    Tcg,
}

impl Accel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Kvm => "kvm",
            Self::Tcg => "tcg",
        }
    }

    /// KVM when `/dev/kvm` under `root` opens read-write, else TCG.
    pub fn detect(root: &Path) -> Self {
        let kvm = root.join("dev/kvm");
        match std::fs::OpenOptions::new().read(true).write(true).open(kvm) {
            Ok(_) => Self::Kvm,
            Err(_) => Self::Tcg,
        }
    }
}

/// Guest networking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Network {
    /// QEMU's user-mode network; `127.0.0.1:API_PORT` on the host forwards to the guest's 8443.
    User,
    /// A tap interface the operator created (bridged/routed outside QEMU; no port forwarding:
    /// clients reach the guest's own address on port 8443).
    Tap(String),
}

/// A GPU passed through with VFIO.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpuPassthrough {
    /// `DDDD:BB:DD.F`.
    pub pci: String,
    pub iommufd: bool,
}

/// The VM-platform part of a spec, checked; paths absolute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QemuVm {
    pub name: String,
    pub platform: Platform,
    pub vcpus: u32,
    pub memory_mib: u64,
    pub binary: PathBuf,
    /// `-bios` (required for snp and tdx; optional for vm, where QEMU's SeaBIOS boots the kernel).
    pub firmware: Option<PathBuf>,
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    pub cmdline: String,
    pub model_image: PathBuf,
    pub model_verity: PathBuf,
    /// Root file system image and its hash device.
    pub rootfs: Option<(PathBuf, PathBuf)>,
    pub gpu: Option<GpuPassthrough>,
    pub vsock_cid: Option<u32>,
    pub network: Network,
    pub api_port: u16,
    pub cpu: Option<String>,
    pub host_data: Option<String>,
    pub quote_generation_socket: Option<PathBuf>,
}

/// Where the host keeps this VM's files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPaths {
    /// The agent's state folder (the QMP socket `NAME.qmp` lives there).
    pub state_dir: PathBuf,
    /// The guest's serial console is written to this file.
    pub serial_log: PathBuf,
}

impl HostPaths {
    /// The agent's layout: `STATE/NAME.qmp`, `STATE/logs/NAME.serial.log`.
    pub fn in_state_dir(state_dir: &Path, name: &str) -> Self {
        Self {
            state_dir: state_dir.to_path_buf(),
            serial_log: state_dir.join("logs").join(format!("{name}.serial.log")),
        }
    }

    pub fn qmp_socket(&self, name: &str) -> PathBuf {
        self.state_dir.join(format!("{name}.qmp"))
    }
}

fn resolve(base: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    }
}

/// `DDDD:BB:DD.F` in lowercase or uppercase hex (the sysfs form).
pub fn valid_pci(addr: &str) -> bool {
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|c| c.is_ascii_hexdigit());
    let mut parts = addr.split(':');
    let (Some(domain), Some(bus), Some(rest), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let Some((dev, func)) = rest.split_once('.') else {
        return false;
    };
    hex(domain, 4)
        && hex(bus, 2)
        && hex(dev, 2)
        && func.len() == 1
        && func.bytes().all(|c| (b'0'..=b'7').contains(&c))
}

fn default_verity(image: &Path) -> PathBuf {
    image.with_extension("verity")
}

impl QemuVm {
    /// Checks the VM-platform keys of `spec` (from `file`; relative paths are relative to its
    /// folder). Does not touch the file system: see [`Self::check_paths`].
    pub fn from_spec(file: &Path, spec: &VmSpec) -> Result<Self> {
        let err = |key: &str, reason: SpecReason, detail: String| Error::Spec {
            file: file.to_path_buf(),
            vm: Some(spec.name.clone()),
            key: key.to_owned(),
            reason,
            detail,
        };
        if !valid_name(&spec.name) {
            return Err(Error::Spec {
                file: file.to_path_buf(),
                vm: None,
                key: "name".to_owned(),
                reason: SpecReason::BadName,
                detail: format!("{:?} is not [a-z0-9][a-z0-9-]{{0,62}}", spec.name),
            });
        }
        if spec.platform == Platform::Process {
            return Err(err(
                "platform",
                SpecReason::NotForPlatform,
                "the process platform runs no QEMU".to_owned(),
            ));
        }
        if spec.vcpus == 0 || spec.vcpus > 288 {
            return Err(err(
                "vcpus",
                SpecReason::BadValue,
                format!("{} not in 1..=288", spec.vcpus),
            ));
        }
        // At least 256 MiB: the initramfs, the enclave and ONNX Runtime live in guest RAM.
        if spec.memory_mib < 256 || spec.memory_mib > 16 * 1024 * 1024 {
            return Err(err(
                "memory_mib",
                SpecReason::BadValue,
                format!("{} MiB not in 256..=16777216", spec.memory_mib),
            ));
        }
        for (key, set) in [
            ("model.dir", spec.model.dir.is_some()),
            ("enclave.attester", spec.enclave.attester.is_some()),
            ("enclave.binary", spec.enclave.binary.is_some()),
        ] {
            if set {
                return Err(err(
                    key,
                    SpecReason::NotForPlatform,
                    "the enclave and its model are inside the guest image".to_owned(),
                ));
            }
        }
        let base = file.parent().unwrap_or(Path::new("."));
        let required = |key: &str, value: Option<&PathBuf>| {
            value.map(|p| resolve(base, p)).ok_or_else(|| {
                err(
                    key,
                    SpecReason::Required,
                    format!("the {:?} platform needs it", spec.platform),
                )
            })
        };
        let kernel = required("boot.kernel", spec.boot.kernel.as_ref())?;
        let initrd = required("boot.initrd", spec.boot.initrd.as_ref())?;
        let model_image = required("model.image", spec.model.image.as_ref())?;
        let model_verity = spec
            .model
            .verity_image
            .as_ref()
            .map(|p| resolve(base, p))
            .unwrap_or_else(|| default_verity(&model_image));
        let firmware = match (spec.platform, &spec.boot.firmware) {
            (_, Some(p)) => Some(resolve(base, p)),
            (Platform::Snp | Platform::Tdx, None) => {
                return Err(err(
                    "boot.firmware",
                    SpecReason::Required,
                    "snp needs OVMF built with AmdSev (OVMF.amdsev.fd), tdx OVMF.inteltdx.fd"
                        .to_owned(),
                ))
            }
            _ => None,
        };
        let cmdline = spec.boot.cmdline.clone().ok_or_else(|| {
            err(
                "boot.cmdline",
                SpecReason::Required,
                "the measured kernel command line (the image's cmdline.txt)".to_owned(),
            )
        })?;
        if cmdline.len() > 4096 || cmdline.contains(['\n', '\0']) {
            return Err(err(
                "boot.cmdline",
                SpecReason::BadValue,
                "one line of at most 4096 bytes".to_owned(),
            ));
        }
        let rootfs = spec.rootfs.image.as_ref().map(|image| {
            let image = resolve(base, image);
            let verity = spec
                .rootfs
                .verity_image
                .as_ref()
                .map(|p| resolve(base, p))
                .unwrap_or_else(|| default_verity(&image));
            (image, verity)
        });
        let gpu = match &spec.gpu.pci {
            Some(pci) if valid_pci(pci) => Some(GpuPassthrough {
                pci: pci.to_ascii_lowercase(),
                iommufd: spec.gpu.iommufd.unwrap_or(false),
            }),
            Some(pci) => {
                return Err(err(
                    "gpu.pci",
                    SpecReason::BadValue,
                    format!("{pci:?} is not a PCI address DDDD:BB:DD.F"),
                ))
            }
            None if spec.gpu.iommufd.is_some() => {
                return Err(err(
                    "gpu.iommufd",
                    SpecReason::Required,
                    "gpu.pci names the device".to_owned(),
                ))
            }
            None => None,
        };
        let q = &spec.qemu;
        if let Some(cid) = q.vsock_cid {
            // 0, 1 and 2 are the hypervisor, loopback and host; u32::MAX is VMADDR_CID_ANY.
            if !(3..u32::MAX).contains(&cid) {
                return Err(err(
                    "qemu.vsock_cid",
                    SpecReason::BadValue,
                    format!("{cid} not in 3..=4294967294"),
                ));
            }
        }
        let network = match q.network.as_deref() {
            None | Some("user") => Network::User,
            Some(other) => match other.strip_prefix("tap:") {
                Some(ifname)
                    if !ifname.is_empty()
                        && ifname.len() < 16
                        && ifname
                            .bytes()
                            .all(|c| c.is_ascii_alphanumeric() || b"_-.".contains(&c)) =>
                {
                    Network::Tap(ifname.to_owned())
                }
                _ => {
                    return Err(err(
                        "qemu.network",
                        SpecReason::BadValue,
                        format!("{other:?}: \"user\" or \"tap:IFNAME\""),
                    ))
                }
            },
        };
        let api_port = match spec.ports.api {
            Some(0) | None => {
                return Err(err(
                    "ports.api",
                    SpecReason::Required,
                    "the host port of the enclave's API (not 0)".to_owned(),
                ))
            }
            Some(port) => port,
        };
        if let Some(cpu) = &q.cpu {
            let ok = !cpu.is_empty()
                && cpu.len() <= 64
                && cpu
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b"_-.".contains(&c));
            if !ok {
                return Err(err(
                    "qemu.cpu",
                    SpecReason::BadValue,
                    "a CPU model name ([A-Za-z0-9_.-], no options)".to_owned(),
                ));
            }
        }
        if q.host_data.is_some() && spec.platform != Platform::Snp {
            return Err(err(
                "qemu.host_data",
                SpecReason::NotForPlatform,
                "only snp has host data".to_owned(),
            ));
        }
        if let Some(data) = &q.host_data {
            let ok = data.len() == 44
                && data.ends_with('=')
                && data
                    .bytes()
                    .take(43)
                    .all(|c| c.is_ascii_alphanumeric() || c == b'+' || c == b'/');
            if !ok {
                return Err(err(
                    "qemu.host_data",
                    SpecReason::BadValue,
                    "base64 of 32 bytes (44 characters)".to_owned(),
                ));
            }
        }
        if q.quote_generation_socket.is_some() && spec.platform != Platform::Tdx {
            return Err(err(
                "qemu.quote_generation_socket",
                SpecReason::NotForPlatform,
                "only tdx quotes through the host's QGS".to_owned(),
            ));
        }
        Ok(Self {
            name: spec.name.clone(),
            platform: spec.platform,
            vcpus: spec.vcpus,
            memory_mib: spec.memory_mib,
            binary: q
                .binary
                .as_ref()
                .map(|p| {
                    // A bare name is looked up in PATH; a path is relative to the spec's folder.
                    if p.components().count() == 1 {
                        p.clone()
                    } else {
                        resolve(base, p)
                    }
                })
                .unwrap_or_else(|| PathBuf::from(DEFAULT_BINARY)),
            firmware,
            kernel,
            initrd,
            cmdline,
            model_image,
            model_verity,
            rootfs,
            gpu,
            vsock_cid: q.vsock_cid,
            network,
            api_port,
            cpu: q.cpu.clone(),
            host_data: q.host_data.clone(),
            quote_generation_socket: q.quote_generation_socket.as_ref().map(|p| resolve(base, p)),
        })
    }

    /// Every file the VM boots from must exist (the error names the key).
    pub fn check_paths(&self, file: &Path) -> Result<()> {
        let mut files = vec![
            ("boot.kernel", &self.kernel),
            ("boot.initrd", &self.initrd),
            ("model.image", &self.model_image),
            ("model.verity_image", &self.model_verity),
        ];
        if let Some(fw) = &self.firmware {
            files.push(("boot.firmware", fw));
        }
        if let Some((image, verity)) = &self.rootfs {
            files.push(("rootfs.image", image));
            files.push(("rootfs.verity_image", verity));
        }
        for (key, path) in files {
            if !path.is_file() {
                return Err(Error::Spec {
                    file: file.to_path_buf(),
                    vm: Some(self.name.clone()),
                    key: key.to_owned(),
                    reason: SpecReason::MissingPath,
                    detail: format!("{} is not a file", path.display()),
                });
            }
        }
        Ok(())
    }
}

/// QEMU's escape inside `key=value,…` option strings: `,` becomes `,,`.
fn escape_opt(value: &OsStr) -> OsString {
    let mut out = Vec::with_capacity(value.len());
    for &b in value.as_bytes() {
        out.push(b);
        if b == b',' {
            out.push(b',');
        }
    }
    OsString::from_vec(out)
}

fn cat(parts: &[&OsStr]) -> OsString {
    let mut out = OsString::new();
    for part in parts {
        out.push(part);
    }
    out
}

/// The QEMU argv (program first) that boots `vm`. Pure: reads nothing.
pub fn argv(vm: &QemuVm, host: &HostPaths, accel: Accel) -> Vec<OsString> {
    let mut a: Vec<OsString> = Vec::new();
    let mut push = |items: &[&str]| a.extend(items.iter().map(OsString::from));
    let mem = format!("{}M", vm.memory_mib);
    // snp and tdx only exist under KVM; the caller's choice applies to `vm` only.
    let accel = match vm.platform {
        Platform::Snp | Platform::Tdx => Accel::Kvm,
        _ => accel,
    };
    push(&["-name", &format!("{},debug-threads=on", vm.name)]);
    match vm.platform {
        Platform::Snp => {
            // The guest's RAM is a memfd backend so KVM can make it private (guest_memfd);
            // `share=true` lets shared (unencrypted) pages be mapped by QEMU for virtio,
            // `prealloc=false` so a large guest does not fault everything in at start.
            push(&[
                "-machine",
                "q35,confidential-guest-support=sev0,memory-backend=ram1",
            ]);
            push(&[
                "-object",
                &format!("memory-backend-memfd,id=ram1,size={mem},share=true,prealloc=false"),
            ]);
            // cbitpos=51 / reduced-phys-bits=1: the C-bit position and address-bit loss of every
            // SNP-capable EPYC (Milan, Genoa, Turin; CPUID 0x8000001F). kernel-hashes=on puts the
            // SHA-256 of kernel, initrd and cmdline into the AmdSev OVMF's hash table, so the
            // launch measurement covers them (measured direct boot).
            let mut snp = String::from(
                "sev-snp-guest,id=sev0,cbitpos=51,reduced-phys-bits=1,kernel-hashes=on",
            );
            if let Some(data) = &vm.host_data {
                snp.push_str(",host-data=");
                snp.push_str(data);
            }
            push(&["-object", &snp]);
        }
        Platform::Tdx => {
            // kernel-irqchip=split: TDX guests need the IOAPIC emulated in QEMU (KVM's in-kernel
            // one cannot inject into a TD).
            push(&[
                "-machine",
                "q35,kernel-irqchip=split,confidential-guest-support=tdx0",
            ]);
            // quote-generation-socket is a SocketAddress (a struct), which QEMU only accepts in
            // the JSON form of -object; without it the guest cannot get quotes through the host.
            match &vm.quote_generation_socket {
                Some(socket) => {
                    let object = serde_json::json!({
                        "qom-type": "tdx-guest",
                        "id": "tdx0",
                        "quote-generation-socket": {
                            "type": "unix",
                            "path": socket.to_string_lossy(),
                        },
                    });
                    push(&["-object", &object.to_string()]);
                }
                None => push(&["-object", "tdx-guest,id=tdx0"]),
            }
        }
        _ => push(&["-machine", "q35"]),
    }
    push(&["-accel", accel.as_str()]);
    // -cpu: EPYC-v4 for snp (a fixed, named model: the VMSA, hence the launch digest, depends on
    // the CPUID the guest sees, so `cocoon-verify measure snp --vcpu-type EPYC-v4` can recompute
    // it); `host` for tdx and for vm under KVM (TDX filters CPUID itself); qemu64 (QEMU's
    // default, what the image boot test uses) under TCG.
    let cpu = match (&vm.cpu, vm.platform, accel) {
        (Some(cpu), _, _) => cpu.as_str(),
        (None, Platform::Snp, _) => "EPYC-v4",
        (None, _, Accel::Kvm) => "host",
        (None, _, Accel::Tcg) => "qemu64",
    };
    push(&["-cpu", cpu]);
    push(&["-smp", &vm.vcpus.to_string(), "-m", &mem]);
    // No display, and the guest halts instead of rebooting (the supervisor restarts it with a
    // fresh launch: a reboot inside an SNP/TDX guest would not be re-measured).
    push(&["-nographic", "-no-reboot", "-monitor", "none"]);
    let mut a2 = a;
    {
        let mut pair = |flag: &str, value: OsString| {
            a2.push(OsString::from(flag));
            a2.push(value);
        };
        // QMP for ACPI powerdown on stop (`system_powerdown`), then SIGTERM/SIGKILL.
        pair(
            "-qmp",
            cat(&[
                OsStr::new("unix:"),
                &escape_opt(host.qmp_socket(&vm.name).as_os_str()),
                OsStr::new(",server=on,wait=off"),
            ]),
        );
        // The serial console (the kernel's console=ttyS0 and the enclave's log) goes to a file.
        pair(
            "-serial",
            cat(&[OsStr::new("file:"), host.serial_log.as_os_str()]),
        );
        if let Some(fw) = &vm.firmware {
            pair("-bios", fw.clone().into_os_string());
        }
        // Direct boot: with the AmdSev OVMF and kernel-hashes=on (snp) or in RTMRs (tdx) these
        // three are measured.
        pair("-kernel", vm.kernel.clone().into_os_string());
        pair("-initrd", vm.initrd.clone().into_os_string());
        pair("-append", OsString::from(&vm.cmdline));
        // Read-only virtio-blk drives in a fixed order: /dev/vda model.img, /dev/vdb its verity
        // hash device, then /dev/vdc rootfs and /dev/vdd its hash device. Integrity comes from
        // dm-verity inside the guest (roots on the measured cmdline); read-only keeps the host
        // files unchanged and lets several VMs share them.
        let mut drives = vec![
            ("model", &vm.model_image),
            ("modelverity", &vm.model_verity),
        ];
        if let Some((image, verity)) = &vm.rootfs {
            drives.push(("rootfs", image));
            drives.push(("rootfsverity", verity));
        }
        for (id, path) in drives {
            pair(
                "-drive",
                cat(&[
                    OsStr::new("file="),
                    &escape_opt(path.as_os_str()),
                    OsStr::new(&format!(",if=none,id={id},format=raw,readonly=on")),
                ]),
            );
            pair(
                "-device",
                OsString::from(format!("virtio-blk-pci,drive={id}")),
            );
        }
        // Networking: virtio-net. (QEMU forces VIRTIO_F_ACCESS_PLATFORM on every virtio device
        // of a confidential guest, so the same devices work under snp and tdx.)
        match &vm.network {
            Network::User => pair(
                "-netdev",
                OsString::from(format!(
                    "user,id=net0,hostfwd=tcp:127.0.0.1:{}-:{GUEST_API_PORT}",
                    vm.api_port
                )),
            ),
            Network::Tap(ifname) => pair(
                "-netdev",
                OsString::from(format!(
                    "tap,id=net0,ifname={ifname},script=no,downscript=no"
                )),
            ),
        }
        pair("-device", OsString::from("virtio-net-pci,netdev=net0"));
        if let Some(cid) = vm.vsock_cid {
            pair(
                "-device",
                OsString::from(format!("vhost-vsock-pci,guest-cid={cid}")),
            );
        }
        if let Some(gpu) = &vm.gpu {
            // The GPU sits behind its own PCIe root port (a GPU must be on a PCIe bus for its
            // extended config space), and OVMF gets a 256 GiB 64-bit MMIO window for its BARs.
            pair(
                "-device",
                OsString::from("pcie-root-port,id=gpurp0,bus=pcie.0,chassis=1"),
            );
            pair(
                "-fw_cfg",
                OsString::from("name=opt/ovmf/X-PciMmio64Mb,string=262144"),
            );
            if gpu.iommufd {
                // iommufd: the newer kernel interface (no VFIO container/group fds).
                pair("-object", OsString::from("iommufd,id=iommufd0"));
                pair(
                    "-device",
                    OsString::from(format!(
                        "vfio-pci,host={},bus=gpurp0,iommufd=iommufd0",
                        gpu.pci
                    )),
                );
            } else {
                pair(
                    "-device",
                    OsString::from(format!("vfio-pci,host={},bus=gpurp0", gpu.pci)),
                );
            }
        }
    }
    let mut out = Vec::with_capacity(a2.len().saturating_add(1));
    out.push(vm.binary.clone().into_os_string());
    out.extend(a2);
    out
}

/// The object and device types (and the properties we set on them) an argv uses, for checking
/// against a QEMU's own `-object help` / `-device TYPE,help`.
pub fn used_types(argv: &[OsString]) -> Vec<(String, String, Vec<String>)> {
    let mut out = Vec::new();
    let mut iter = argv.iter().map(|a| a.to_string_lossy().into_owned());
    while let Some(flag) = iter.next() {
        let kind = match flag.as_str() {
            "-object" => "object",
            "-device" => "device",
            _ => continue,
        };
        let Some(value) = iter.next() else { break };
        if let Ok(serde_json::Value::Object(map)) = serde_json::from_str(&value) {
            let ty = map
                .get("qom-type")
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_owned();
            let props = map
                .keys()
                .filter(|k| *k != "qom-type" && *k != "id")
                .cloned()
                .collect();
            out.push((kind.to_owned(), ty, props));
            continue;
        }
        let mut parts = value.split(',');
        let ty = parts.next().unwrap_or_default().to_owned();
        let props = parts
            .filter_map(|p| p.split_once('=').map(|(k, _)| k.to_owned()))
            .filter(|k| k != "id")
            .collect();
        out.push((kind.to_owned(), ty, props));
    }
    out
}
