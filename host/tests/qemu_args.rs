//! Golden tests of the QEMU command lines (`host/src/qemu.rs`).
//!
//! Each case's argv is compared, one argument per line, with `tests/data/qemu/CASE.args`.
//! After an intended change, regenerate them with
//! `COCOON_UPDATE_GOLDEN=1 cargo test -p cocoon-host --test qemu_args` and review the diff.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use cocoon_host::qemu::{argv, used_types, Accel, HostPaths, QemuVm};
use cocoon_host::spec::{self, Platform};
use cocoon_host::{Error, SpecReason};

const SPEC_FILE: &str = "/srv/cocoon/vm.toml";

const BASE: &str = r#"
vcpus = 2
memory_mib = 1024
[boot]
FIRMWARE
kernel = "images/vmlinuz"
initrd = "images/initrd.img"
cmdline = "console=ttyS0 panic=-1 cocoon.model_verity=5f3c cocoon.model_blocks=42 cocoon.port=8443"
[model]
image = "images/model.img"
verity_root = "5f3c"
[ports]
api = 9443
"#;

/// The base spec; snp and tdx get their OVMF build.
fn spec_text(name: &str, platform: &str, extra: &str) -> String {
    let firmware = match platform {
        "snp" => "firmware = \"/usr/share/ovmf/OVMF.amdsev.fd\"",
        "tdx" => "firmware = \"/usr/share/ovmf/OVMF.inteltdx.fd\"",
        _ => "",
    };
    format!(
        "name = {name:?}\nplatform = {platform:?}\n{}\n{extra}",
        BASE.replace("FIRMWARE", firmware)
    )
}

fn qemu_vm(name: &str, platform: &str, extra: &str) -> QemuVm {
    let text = spec_text(name, platform, extra);
    let specs = spec::parse(Path::new(SPEC_FILE), &text).unwrap();
    QemuVm::from_spec(Path::new(SPEC_FILE), &specs[0]).unwrap()
}

fn refusal(platform: &str, extra: &str) -> (String, SpecReason) {
    let text = spec_text("bad", platform, extra);
    let specs = spec::parse(Path::new(SPEC_FILE), &text).unwrap();
    match QemuVm::from_spec(Path::new(SPEC_FILE), &specs[0]) {
        Err(Error::Spec { key, reason, .. }) => (key, reason),
        other => panic!("expected a spec refusal, got {other:?}"),
    }
}

fn host(name: &str) -> HostPaths {
    HostPaths::in_state_dir(Path::new("/var/lib/cocoon-host"), name)
}

fn golden(case: &str, args: &[OsString]) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/qemu")
        .join(format!("{case}.args"));
    let mut text = String::new();
    for arg in args {
        text.push_str(arg.to_str().expect("utf-8 in goldens"));
        text.push('\n');
    }
    if std::env::var_os("COCOON_UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &text).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (COCOON_UPDATE_GOLDEN=1 writes it)", path.display()));
    assert_eq!(
        text,
        expected,
        "{} differs (COCOON_UPDATE_GOLDEN=1 regenerates it; review the diff)",
        path.display()
    );
}

/// Every golden case: name, the argv.
pub fn cases() -> Vec<(&'static str, Vec<OsString>)> {
    let c = |case: &'static str, platform: &str, extra: &str, accel: Accel| {
        let vm = qemu_vm(case, platform, extra);
        (case, argv(&vm, &host(case), accel))
    };
    vec![
        c("vm-tcg", "vm", "", Accel::Tcg),
        c(
            "vm-kvm-vsock-rootfs",
            "vm",
            "[rootfs]\nimage = \"/srv/rootfs.img\"\nverity_root = \"aa\"\n[qemu]\nvsock_cid = 42\n",
            Accel::Kvm,
        ),
        c(
            "vm-tap",
            "vm",
            "[qemu]\nnetwork = \"tap:cocoon0\"\nbinary = \"/opt/qemu/bin/qemu-system-x86_64\"\n",
            Accel::Kvm,
        ),
        c("snp", "snp", "", Accel::Tcg),
        c(
            "snp-gpu-iommufd-vsock",
            "snp",
            "[gpu]\npci = \"0000:41:00.0\"\niommufd = true\n[qemu]\nvsock_cid = 3\nhost_data = \"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\"\n",
            Accel::Kvm,
        ),
        c("tdx", "tdx", "", Accel::Tcg),
        c(
            "tdx-qgs-gpu",
            "tdx",
            "[gpu]\npci = \"0000:9A:00.0\"\n[qemu]\nquote_generation_socket = \"/run/tdx-qgs/qgs.socket\"\n",
            Accel::Kvm,
        ),
    ]
}

#[test]
fn every_platform_argv_matches_its_golden_file() {
    for (case, args) in cases() {
        golden(case, &args);
    }
}

#[test]
fn snp_and_tdx_run_under_kvm_whatever_accelerator_is_passed() {
    for (case, args) in cases() {
        let accel = args.iter().position(|a| a == "-accel").unwrap();
        if case.starts_with("snp") || case.starts_with("tdx") {
            assert_eq!(args[accel + 1], "kvm", "{case}");
        }
    }
}

#[test]
fn snp_line_measures_kernel_initrd_and_cmdline_with_amdsev_firmware() {
    let vm = qemu_vm("s", "snp", "");
    let args: Vec<String> = argv(&vm, &host("s"), Accel::Kvm)
        .into_iter()
        .map(|a| a.into_string().unwrap())
        .collect();
    let after = |flag: &str| {
        let i = args.iter().position(|a| a == flag).unwrap();
        args[i + 1].clone()
    };
    assert_eq!(
        after("-machine"),
        "q35,confidential-guest-support=sev0,memory-backend=ram1"
    );
    assert!(args.contains(
        &"sev-snp-guest,id=sev0,cbitpos=51,reduced-phys-bits=1,kernel-hashes=on".to_owned()
    ));
    assert!(args
        .contains(&"memory-backend-memfd,id=ram1,size=1024M,share=true,prealloc=false".to_owned()));
    assert_eq!(after("-bios"), "/usr/share/ovmf/OVMF.amdsev.fd");
    assert_eq!(after("-kernel"), "/srv/cocoon/images/vmlinuz");
    assert_eq!(after("-cpu"), "EPYC-v4");
}

#[test]
fn commas_in_drive_paths_are_doubled_so_qemu_cannot_read_them_as_options() {
    let mut vm = qemu_vm("c", "vm", "");
    vm.model_image = PathBuf::from("/srv/a,format=qcow2/model.img");
    let args = argv(&vm, &host("c"), Accel::Tcg);
    assert!(args.contains(&OsString::from(
        "file=/srv/a,,format=qcow2/model.img,if=none,id=model,format=raw,readonly=on"
    )));
}

#[test]
fn used_types_reads_plain_and_json_objects() {
    let vm = qemu_vm(
        "t",
        "tdx",
        "[qemu]\nquote_generation_socket = \"/run/q.sock\"\n",
    );
    let used = used_types(&argv(&vm, &host("t"), Accel::Kvm));
    assert!(used
        .iter()
        .any(|(k, t, p)| k == "object" && t == "tdx-guest" && p == &["quote-generation-socket"]));
    assert!(used
        .iter()
        .any(|(k, t, p)| k == "device" && t == "virtio-blk-pci" && p == &["drive"]));
}

#[test]
fn bad_vm_platform_keys_are_refused_with_the_key_and_reason() {
    let cases: &[(&str, &str, &str, SpecReason)] = &[
        (
            "vm",
            "[gpu]\npci = \"41:00.0\"\n",
            "gpu.pci",
            SpecReason::BadValue,
        ),
        (
            "vm",
            "[gpu]\niommufd = true\n",
            "gpu.iommufd",
            SpecReason::Required,
        ),
        (
            "vm",
            "[qemu]\nvsock_cid = 2\n",
            "qemu.vsock_cid",
            SpecReason::BadValue,
        ),
        (
            "vm",
            "[qemu]\nnetwork = \"bridge\"\n",
            "qemu.network",
            SpecReason::BadValue,
        ),
        (
            "vm",
            "[qemu]\ncpu = \"host,+sev\"\n",
            "qemu.cpu",
            SpecReason::BadValue,
        ),
        (
            "tdx",
            "[qemu]\nhost_data = \"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\"\n",
            "qemu.host_data",
            SpecReason::NotForPlatform,
        ),
        (
            "snp",
            "[qemu]\nhost_data = \"short\"\n",
            "qemu.host_data",
            SpecReason::BadValue,
        ),
        (
            "snp",
            "[qemu]\nquote_generation_socket = \"/run/q\"\n",
            "qemu.quote_generation_socket",
            SpecReason::NotForPlatform,
        ),
        (
            "vm",
            "[enclave]\nattester = \"sim-snp\"\n",
            "enclave.attester",
            SpecReason::NotForPlatform,
        ),
        ("process", "", "platform", SpecReason::NotForPlatform),
    ];
    for (platform, extra, key, reason) in cases {
        let (got_key, got_reason) = refusal(platform, extra);
        assert_eq!((got_key.as_str(), got_reason), (*key, *reason), "{extra}");
    }
}

#[test]
fn snp_without_firmware_is_refused() {
    let text = format!(
        "name = \"nofw\"\nplatform = \"snp\"\n{}",
        BASE.replace("FIRMWARE", "")
    );
    let specs = spec::parse(Path::new(SPEC_FILE), &text).unwrap();
    assert_eq!(specs[0].platform, Platform::Snp);
    let e = QemuVm::from_spec(Path::new(SPEC_FILE), &specs[0]).unwrap_err();
    assert!(
        matches!(e, Error::Spec { ref key, reason: SpecReason::Required, .. } if key == "boot.firmware"),
        "{e:?}"
    );
}

#[test]
fn missing_boot_files_are_refused_by_check_paths() {
    let vm = qemu_vm("m", "vm", "");
    let e = vm.check_paths(Path::new(SPEC_FILE)).unwrap_err();
    assert!(
        matches!(e, Error::Spec { ref key, reason: SpecReason::MissingPath, .. } if key == "boot.kernel"),
        "{e:?}"
    );
}

/// (type, property or "" for the type itself, the first QEMU version that has it).
const NEWER_THAN_SOME_QEMU: &[(&str, &str, (u32, u32))] = &[
    ("sev-snp-guest", "", (9, 1)),
    ("tdx-guest", "", (10, 1)),
    ("iommufd", "", (9, 0)),
    ("vfio-pci", "iommufd", (9, 0)),
];

fn qemu_output(args: &[&str]) -> Option<String> {
    let out = std::process::Command::new("qemu-system-x86_64")
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .ok()?;
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    Some(text)
}

/// `-object help` lists "  TYPE" lines; `-device help` lists `name "TYPE", …`.
fn listed(help: &str, ty: &str) -> bool {
    help.lines().any(|l| {
        let l = l.trim();
        l == ty || l.starts_with(&format!("name \"{ty}\""))
    })
}

/// Object properties that QEMU adds per instance, so `-object TYPE,help` does not list them
/// (sev-common's `cbitpos` and `reduced-phys-bits` in QEMU 10.0): checked by creating the object
/// with every such property set (values QEMU accepts) under `-machine none -S` and quitting.
const INSTANCE_PROPERTIES: &[(&str, &str, &str)] = &[
    ("sev-snp-guest", "cbitpos", "51"),
    ("sev-snp-guest", "reduced-phys-bits", "1"),
];

/// Whether QEMU creates `-object TY,id=probe,PROPS` (then quits); the error text otherwise.
fn object_accepts(ty: &str, props: &[(&str, &str)]) -> Result<(), String> {
    use std::io::Write as _;
    let mut spec = format!("{ty},id=probe");
    for (k, v) in props {
        spec.push_str(&format!(",{k}={v}"));
    }
    let mut child = std::process::Command::new("qemu-system-x86_64")
        .args(["-machine", "none", "-nodefaults", "-display", "none", "-S"])
        .args(["-monitor", "stdio", "-object", &spec])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let _ = child.stdin.take().unwrap().write_all(b"quit\n");
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    if out.status.success() && !text.contains("not found") {
        Ok(())
    } else {
        Err(text)
    }
}

#[test]
fn the_instance_property_probe_rejects_an_invented_property() {
    if qemu_output(&["--version"]).is_none() {
        println!("SKIPPED: qemu-system-x86_64 is not installed");
        return;
    }
    // A control for the probe: an object QEMU 7.2+ has, with a property nobody has.
    assert!(object_accepts("memory-backend-ram", &[("size", "1M")]).is_ok());
    assert!(object_accepts(
        "memory-backend-ram",
        &[("size", "1M"), ("no-such-prop", "1")]
    )
    .is_err());
}

/// `-object TYPE,help` / `-device TYPE,help` list "  PROP=<type>".
fn has_property(help: &str, prop: &str) -> bool {
    help.lines()
        .any(|l| l.trim_start().starts_with(&format!("{prop}=")))
}

#[test]
fn installed_qemu_knows_every_object_device_and_property_we_emit() {
    let Some(version) = qemu_output(&["--version"]) else {
        println!(
            "SKIPPED: qemu-system-x86_64 is not installed; nothing was checked \
             (apt-get install qemu-system-x86; .ci/run installs it)"
        );
        return;
    };
    let (major, minor) = version
        .split("version ")
        .nth(1)
        .and_then(|v| {
            let mut parts = v.split(|c: char| !c.is_ascii_digit());
            Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
        })
        .unwrap_or_else(|| panic!("cannot read the version in {version:?}"));
    let objects = qemu_output(&["-object", "help"]).unwrap();
    let devices = qemu_output(&["-device", "help"]).unwrap();
    let mut checked = 0;
    let mut absent = Vec::new();
    let mut failures = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for (case, args) in cases() {
        for (kind, ty, props) in used_types(&args) {
            if !seen.insert((kind.clone(), ty.clone(), props.clone())) {
                continue;
            }
            let newer = |prop: &str| {
                NEWER_THAN_SOME_QEMU
                    .iter()
                    .find(|(t, p, _)| *t == ty && *p == prop)
                    .map(|(_, _, v)| *v)
            };
            let list = if kind == "object" { &objects } else { &devices };
            if !listed(list, &ty) {
                match newer("") {
                    Some(need) if (major, minor) < need => absent.push(format!(
                        "{kind} {ty} ({case}): QEMU {major}.{minor} predates it (needs {}.{})",
                        need.0, need.1
                    )),
                    _ => failures.push(format!(
                        "{kind} {ty} ({case}) unknown to QEMU {major}.{minor}"
                    )),
                }
                continue;
            }
            checked += 1;
            let help = qemu_output(&[&format!("-{kind}"), &format!("{ty},help")]).unwrap();
            for prop in props {
                // `bus` is a generic qdev option, not a listed property.
                if prop == "bus" {
                    continue;
                }
                if has_property(&help, &prop) {
                    checked += 1;
                    continue;
                }
                if kind == "object" {
                    let probe: Vec<(&str, &str)> = INSTANCE_PROPERTIES
                        .iter()
                        .filter(|(t, _, _)| *t == ty)
                        .map(|(_, k, v)| (*k, *v))
                        .collect();
                    if probe.iter().any(|(k, _)| *k == prop) {
                        match object_accepts(&ty, &probe) {
                            Ok(()) => {
                                checked += 1;
                                continue;
                            }
                            // Created objects can still fail for want of hardware (/dev/sev):
                            // only an unknown property counts against us.
                            Err(e) if !e.contains("not found") && !e.contains("is missing") => {
                                println!("probe of {ty}.{prop}: QEMU created no object here ({}) — the property itself was not refused", e.trim());
                                checked += 1;
                                continue;
                            }
                            Err(_) => {}
                        }
                    }
                }
                match newer(&prop) {
                    Some(need) if (major, minor) < need => absent.push(format!(
                        "{kind} {ty} property {prop} ({case}): QEMU {major}.{minor} predates it (needs {}.{})",
                        need.0, need.1
                    )),
                    _ => failures.push(format!(
                        "{kind} {ty} has no property {prop} in QEMU {major}.{minor} ({case})"
                    )),
                }
            }
        }
    }
    println!("QEMU {major}.{minor}: {checked} types and properties accepted");
    for line in &absent {
        println!("NOT CHECKED (this QEMU cannot run it): {line}");
    }
    assert!(failures.is_empty(), "{failures:#?}");
    assert!(checked >= 10, "only {checked} checks ran");
}

/// Starts the `vm` argv (without `-kernel/-initrd/-append`, which need a real image: QEMU loads
/// the kernel at machine creation) paused with `-S`, then quits through `-monitor stdio`: QEMU
/// itself parses every option, creates every device and opens every drive.
#[test]
fn vm_argv_starts_paused_under_the_installed_qemu() {
    use std::io::Write;
    if qemu_output(&["--version"]).is_none() {
        println!("SKIPPED: qemu-system-x86_64 is not installed; the vm argv was not started");
        return;
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("qemu-dry");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("logs")).unwrap();
    for f in ["model.img", "model.verity", "rootfs.img", "rootfs.verity"] {
        std::fs::write(dir.join(f), vec![0u8; 4096]).unwrap();
    }
    // A free port for the forward.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let d = dir.display();
    let text = spec_text(
        "dry",
        "vm",
        &format!("[rootfs]\nimage = \"{d}/rootfs.img\"\n"),
    )
    .replace("images/model.img", &format!("{d}/model.img"))
    .replace("api = 9443", &format!("api = {port}"));
    let specs = spec::parse(Path::new(SPEC_FILE), &text).unwrap();
    let vm = QemuVm::from_spec(Path::new(SPEC_FILE), &specs[0]).unwrap();
    let args = argv(&vm, &HostPaths::in_state_dir(&dir, "dry"), Accel::Tcg);
    let mut kept = Vec::new();
    let mut iter = args.into_iter().skip(1);
    while let Some(a) = iter.next() {
        if a == "-kernel" || a == "-initrd" || a == "-append" {
            iter.next();
            continue;
        }
        kept.push(a);
    }
    let mut child = std::process::Command::new("qemu-system-x86_64")
        .args(&kept)
        .args(["-S", "-monitor", "stdio"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"quit\n").unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("QEMU did not quit within 30 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "QEMU refused the vm argv: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // QEMU opened the serial chardev: the log file exists.
    assert!(dir.join("logs/dry.serial.log").is_file());
}
