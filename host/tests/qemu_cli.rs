//! The `qemu-args` and `doctor` subcommands of the `cocoon-host` binary.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]

use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_cocoon-host");

fn spec_file(case: &str, text: &str) -> std::path::PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("qemu-cli")
        .join(case);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("fleet.toml");
    std::fs::write(&file, text).unwrap();
    file
}

const FLEET: &str = r#"
[[vm]]
name = "plain"
platform = "vm"
[vm.boot]
kernel = "/img/vmlinuz"
initrd = "/img/initrd.img"
cmdline = "console=ttyS0 cocoon.port=8443"
[vm.model]
image = "/img/model.img"
[vm.ports]
api = 9443

[[vm]]
name = "conf"
platform = "snp"
[vm.boot]
firmware = "/fw/OVMF.amdsev.fd"
kernel = "/img/vmlinuz"
initrd = "/img/initrd.img"
cmdline = "console=ttyS0"
[vm.model]
image = "/img/model.img"
[vm.ports]
api = 9444
"#;

#[test]
fn qemu_args_prints_one_argument_per_line_for_the_named_vm() {
    let file = spec_file("ok", FLEET);
    let out = Command::new(BIN)
        .args(["qemu-args", "conf"])
        .arg(&file)
        .args(["--state", "/st", "--accel", "tcg"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "qemu-system-x86_64");
    assert!(
        lines.contains(&"sev-snp-guest,id=sev0,cbitpos=51,reduced-phys-bits=1,kernel-hashes=on")
    );
    assert!(lines.contains(&"file:/st/logs/conf.serial.log"));
    assert!(lines.contains(&"console=ttyS0"), "-append is one argument");
    assert!(lines.contains(&"file=/img/model.verity,if=none,id=modelverity,format=raw,readonly=on"));
}

#[test]
fn qemu_args_refuses_an_unknown_name_and_a_bad_key() {
    let file = spec_file("bad", FLEET);
    let out = Command::new(BIN)
        .args(["qemu-args", "nope"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no VM named \"nope\""));
    let file = spec_file(
        "badkey",
        &FLEET.replace("api = 9443", "api = 9443\n[vm.gpu]\npci = \"x\""),
    );
    let out = Command::new(BIN)
        .args(["qemu-args", "plain"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("gpu.pci"));
}

#[test]
fn doctor_exit_status_follows_the_asked_platform() {
    for platform in ["process", "vm", "snp", "tdx", "gpu"] {
        let out = Command::new(BIN)
            .args(["doctor", "--json", "--platform", platform])
            .output()
            .unwrap();
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let ready = report["platforms"][platform]["ready"].as_bool().unwrap();
        assert_eq!(
            out.status.code(),
            Some(if ready { 0 } else { 1 }),
            "{platform}"
        );
    }
}
