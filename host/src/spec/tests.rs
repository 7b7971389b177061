use super::*;

struct Fixture {
    dir: tempfile::TempDir,
    options: Validation,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("model")).unwrap();
    std::fs::create_dir(dir.path().join("conf")).unwrap();
    std::fs::write(dir.path().join("enclave"), "").unwrap();
    let options = Validation {
        limits: HostLimits {
            cpus: 4,
            memory_mib: 8192,
        },
        default_enclave: Some(dir.path().join("enclave")),
    };
    Fixture { dir, options }
}

const GOOD: &str = r#"
name = "vm-1"
platform = "process"
vcpus = 2
memory_mib = 2048
config_dir = "conf"
[model]
dir = "model"
[ports]
api = 18443
[runtime]
threads = 2
log_filter = "info"
"#;

fn check(f: &Fixture, text: &str) -> Result<Vec<Vm>> {
    let file = f.dir.path().join("spec.toml");
    std::fs::write(&file, text).unwrap();
    load(&[file], &f.options)
}

fn refused(f: &Fixture, text: &str) -> (String, SpecReason) {
    match check(f, text) {
        Err(Error::Spec { key, reason, .. }) => (key, reason),
        other => panic!("expected a spec error, got {other:?}"),
    }
}

#[test]
fn a_good_spec_resolves_paths_and_fills_defaults() {
    let f = fixture();
    let vms = check(&f, GOOD).unwrap();
    assert_eq!(vms.len(), 1);
    let vm = &vms[0];
    assert_eq!(vm.name, "vm-1");
    assert_eq!(vm.model_dir(), Some(f.dir.path().join("model").as_path()));
    assert_eq!(vm.config_dir, Some(f.dir.path().join("conf")));
    assert_eq!(vm.hpke, HpkeMode::Required);
    assert_eq!(vm.attester, Some(Attester::SimTdx));
    assert!(
        matches!(&vm.launch, Launch::Process { enclave_binary, .. } if *enclave_binary == f.dir.path().join("enclave"))
    );
    assert_eq!(vm.stop_timeout_secs, 10);
}

#[test]
fn a_fleet_file_holds_several_vms() {
    let f = fixture();
    let text = r#"
[[vm]]
name = "a"
platform = "process"
model.dir = "model"
ports.api = 1
[[vm]]
name = "b"
platform = "process"
model.dir = "model"
ports.api = 2
enclave.attester = "sim-snp"
enclave.hpke = "off"
"#;
    let vms = check(&f, text).unwrap();
    assert_eq!(vms.len(), 2);
    assert_eq!(vms[1].attester, Some(Attester::SimSnp));
    assert_eq!(vms[1].hpke, HpkeMode::Off);
}

#[test]
fn unknown_keys_are_refused_by_name() {
    let f = fixture();
    assert_eq!(
        refused(&f, &format!("vcpu = 3\n{GOOD}")),
        ("vcpu".to_owned(), SpecReason::UnknownKey)
    );
    let f = fixture();
    assert_eq!(
        refused(&f, &format!("{GOOD}secret_key = \"x\"\n")),
        ("secret_key".to_owned(), SpecReason::UnknownKey)
    );
}

#[test]
fn an_unknown_key_error_names_its_line() {
    let f = fixture();
    match check(
        &f,
        &GOOD.replace("threads = 2", "threads = 2\ncolor = true"),
    ) {
        Err(Error::Spec { key, detail, .. }) => {
            assert_eq!(key, "color");
            assert!(detail.contains("(line 13)"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn bad_names_and_path_traversal_are_refused() {
    for name in ["../etc", "a/b", "", "-a", "A", ".x", &"a".repeat(64)] {
        let f = fixture();
        let text = GOOD.replace("\"vm-1\"", &format!("{name:?}"));
        assert_eq!(
            refused(&f, &text),
            ("name".to_owned(), SpecReason::BadName),
            "{name}"
        );
    }
    assert!(valid_name(&"a".repeat(63)));
}

#[test]
fn resources_over_the_host_limits_are_refused() {
    let f = fixture();
    assert_eq!(
        refused(&f, &GOOD.replace("vcpus = 2", "vcpus = 5")),
        ("vcpus".to_owned(), SpecReason::OverHostLimit)
    );
    assert_eq!(
        refused(&f, &GOOD.replace("memory_mib = 2048", "memory_mib = 8193")),
        ("memory_mib".to_owned(), SpecReason::OverHostLimit)
    );
}

#[test]
fn missing_folders_and_binaries_are_refused() {
    let f = fixture();
    assert_eq!(
        refused(&f, &GOOD.replace("dir = \"model\"", "dir = \"nope\"")),
        ("model.dir".to_owned(), SpecReason::MissingPath)
    );
    assert_eq!(
        refused(
            &f,
            &GOOD.replace("config_dir = \"conf\"", "config_dir = \"nope\"")
        ),
        ("config_dir".to_owned(), SpecReason::MissingPath)
    );
    assert_eq!(
        refused(&f, &format!("{GOOD}[enclave]\nbinary = \"nope\"\n")),
        ("enclave.binary".to_owned(), SpecReason::MissingPath)
    );
}

fn hardware_image(f: &Fixture) {
    let manifest = f.dir.path().join("image/manifest.json");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, text.replace("\"sim-tdx\"", "\"auto\"")).unwrap();
    std::fs::write(f.dir.path().join("OVMF.fd"), b"firmware").unwrap();
}

#[test]
fn snp_and_tdx_boot_a_hardware_image_with_their_firmware() {
    for platform in ["snp", "tdx"] {
        let f = vm_fixture();
        hardware_image(&f);
        let text = VM.replace("\"vm\"", &format!("{platform:?}"));
        let with_firmware = format!("{text}boot.firmware = \"OVMF.fd\"\n");
        let vm = &check(&f, &with_firmware).unwrap()[0];
        assert_eq!(vm.attester, None, "{platform}: the hardware attests");
        let Launch::Qemu(q) = &vm.launch else {
            panic!("not a QEMU launch")
        };
        assert_eq!(q.qemu.firmware, Some(f.dir.path().join("OVMF.fd")));
        assert_eq!(
            refused(&f, &text),
            ("boot.firmware".to_owned(), SpecReason::Required),
            "{platform}"
        );
    }
}

#[test]
fn a_simulated_image_is_not_an_snp_guest_and_a_hardware_image_is_not_a_vm() {
    let f = vm_fixture();
    let snp = format!(
        "{}boot.firmware = \"OVMF.fd\"\n",
        VM.replace("\"vm\"", "\"snp\"")
    );
    std::fs::write(f.dir.path().join("OVMF.fd"), b"firmware").unwrap();
    assert_eq!(
        refused(&f, &snp),
        ("image".to_owned(), SpecReason::BadValue)
    );
    hardware_image(&f);
    assert_eq!(refused(&f, VM), ("image".to_owned(), SpecReason::BadValue));
    assert_eq!(
        refused(&f, &format!("{VM}boot.firmware = \"OVMF.fd\"\n")),
        ("boot.firmware".to_owned(), SpecReason::NotForPlatform)
    );
}

const VM: &str = r#"
name = "guest"
platform = "vm"
image = "image"
vcpus = 2
memory_mib = 1024
ports.api = 18444
"#;

fn vm_fixture() -> Fixture {
    let f = fixture();
    crate::image::test_image(&f.dir.path().join("image"));
    f
}

#[test]
fn a_vm_spec_takes_boot_and_model_from_the_image_manifest() {
    let f = vm_fixture();
    let vms = check(&f, &format!("{VM}qemu.accel = \"tcg\"\n")).unwrap();
    let vm = &vms[0];
    assert_eq!(vm.platform, Platform::Vm);
    assert_eq!(vm.api_port, 18444);
    assert_eq!(vm.attester, Some(Attester::SimTdx));
    assert_eq!(vm.hpke, HpkeMode::Required);
    assert_eq!(vm.model_dir(), None);
    let Launch::Qemu(q) = &vm.launch else {
        panic!("not a QEMU launch")
    };
    let image = f.dir.path().join("image");
    assert_eq!(q.accel, AccelChoice::Tcg);
    assert_eq!(q.powerdown_timeout_secs, 10);
    assert_eq!(q.qemu.kernel, image.join("vmlinuz"));
    assert_eq!(q.qemu.initrd, image.join("initrd.img"));
    assert_eq!(q.qemu.model_image, image.join("model.img"));
    assert_eq!(q.qemu.model_verity, image.join("model.verity"));
    assert_eq!(
        q.qemu.rootfs,
        Some((image.join("rootfs.img"), image.join("rootfs.verity")))
    );
    assert_eq!(q.qemu.cmdline, q.image.cmdline);
    assert!(q.qemu.cmdline.contains(&format!(
        "cocoon.model_verity={}",
        q.image.model_verity_root
    )));
    assert_eq!(vm.image().map(|i| i.dir.clone()), Some(image));
}

#[test]
fn vm_specs_are_refused_with_the_key_at_fault() {
    let f = vm_fixture();
    let cases = [
        (
            VM.replace("image = \"image\"\n", ""),
            "image",
            SpecReason::Required,
        ),
        (
            VM.replace("\"image\"", "\"nope\""),
            "image",
            SpecReason::MissingPath,
        ),
        (
            format!("{VM}boot.kernel = \"image/vmlinuz\"\n"),
            "boot",
            SpecReason::NotForPlatform,
        ),
        (
            format!("{VM}model.dir = \"model\"\n"),
            "model",
            SpecReason::NotForPlatform,
        ),
        (
            format!("{VM}config_dir = \"conf\"\n"),
            "config_dir",
            SpecReason::NotForPlatform,
        ),
        (
            format!("{VM}runtime.threads = 2\n"),
            "runtime",
            SpecReason::NotForPlatform,
        ),
        (
            format!("{VM}enclave.hpke = \"off\"\n"),
            "enclave.hpke",
            SpecReason::NotForPlatform,
        ),
        (
            format!("{VM}enclave.binary = \"enclave\"\n"),
            "enclave.binary",
            SpecReason::NotForPlatform,
        ),
        (
            format!("{VM}qemu.accel = \"hvf\"\n"),
            "qemu.accel",
            SpecReason::BadValue,
        ),
        (
            format!("{VM}qemu.powerdown_timeout_secs = 0\n"),
            "qemu.powerdown_timeout_secs",
            SpecReason::BadValue,
        ),
        (
            VM.replace("memory_mib = 1024", "memory_mib = 128"),
            "memory_mib",
            SpecReason::BadValue,
        ),
        (
            VM.replace("memory_mib = 1024", "memory_mib = 9000"),
            "memory_mib",
            SpecReason::OverHostLimit,
        ),
    ];
    for (text, key, reason) in cases {
        assert_eq!(refused(&f, &text), (key.to_owned(), reason), "{text}");
    }
}

#[test]
fn a_vm_image_with_a_missing_file_is_refused() {
    let f = vm_fixture();
    std::fs::remove_file(f.dir.path().join("image/model.verity")).unwrap();
    assert_eq!(
        refused(&f, VM),
        ("model.verity_image".to_owned(), SpecReason::MissingPath)
    );
}

#[test]
fn the_image_key_is_refused_on_process() {
    let f = vm_fixture();
    assert_eq!(
        refused(&f, &format!("image = \"image\"\n{GOOD}")),
        ("image".to_owned(), SpecReason::NotForPlatform)
    );
}

#[test]
fn vm_platform_keys_are_refused_on_process() {
    let f = fixture();
    assert_eq!(
        refused(&f, &format!("{GOOD}[gpu]\npci = \"0000:01:00.0\"\n")),
        ("gpu".to_owned(), SpecReason::NotForPlatform)
    );
    assert_eq!(
        refused(&f, &format!("{GOOD}[qemu]\nvsock_cid = 3\n")),
        ("qemu".to_owned(), SpecReason::NotForPlatform)
    );
}

#[test]
fn duplicate_names_and_ports_are_refused() {
    let f = fixture();
    let two = |a: &str, pa: u16, b: &str, pb: u16| {
        format!(
            "[[vm]]\nname = \"{a}\"\nplatform = \"process\"\nmodel.dir = \"model\"\nports.api = {pa}\n\
             [[vm]]\nname = \"{b}\"\nplatform = \"process\"\nmodel.dir = \"model\"\nports.api = {pb}\n"
        )
    };
    assert_eq!(
        refused(&f, &two("a", 1, "a", 2)),
        ("name".to_owned(), SpecReason::Duplicate)
    );
    assert_eq!(
        refused(&f, &two("a", 1, "b", 1)),
        ("ports.api".to_owned(), SpecReason::Duplicate)
    );
}

#[test]
fn runtime_values_are_an_allowlist_with_ranges() {
    let f = fixture();
    assert_eq!(
        refused(&f, &GOOD.replace("threads = 2", "threads = 0")),
        ("runtime.threads".to_owned(), SpecReason::BadValue)
    );
    assert_eq!(
        refused(&f, &GOOD.replace("threads = 2", "hpke = \"off\"")),
        ("hpke".to_owned(), SpecReason::UnknownKey)
    );
    assert_eq!(
        refused(&f, &GOOD.replace("\"info\"", "\"info --x\"")),
        ("runtime.log_filter".to_owned(), SpecReason::BadValue)
    );
}

#[test]
fn a_missing_port_and_bad_toml_are_refused() {
    let f = fixture();
    assert_eq!(
        refused(&f, &GOOD.replace("api = 18443", "")),
        ("ports.api".to_owned(), SpecReason::Required)
    );
    assert_eq!(refused(&f, "name = "), ("-".to_owned(), SpecReason::Syntax));
    assert_eq!(
        refused(&f, "name = \"x\"\n"),
        ("platform".to_owned(), SpecReason::Required)
    );
}

#[test]
fn meminfo_total_is_read_in_mib() {
    let text = "MemTotal:       16318412 kB\nMemFree:         1 kB\n";
    assert_eq!(mem_total_mib(text), Some(15935));
    assert_eq!(mem_total_mib("garbage"), None);
}
