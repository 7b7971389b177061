//! The QMP client (`cocoon_host::qmp`) against a real QEMU: capability negotiation, a command's
//! reply, QEMU's refusal of an unknown command, ACPI powerdown accepted by a q35 machine, and a
//! socket nobody listens on. Skipped (printed) without qemu-system-x86_64; .ci/run installs it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cocoon_host::{qmp, Error};

struct Qemu {
    child: Child,
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Qemu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// QEMU with only a QMP socket: `-machine none` (or q35 with no boot media, which sits in the
/// firmware), TCG, no devices. None when QEMU is not installed.
fn qemu(machine: &str) -> Option<Qemu> {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("q.qmp");
    let child = Command::new("qemu-system-x86_64")
        .args([
            "-machine",
            machine,
            "-accel",
            "tcg",
            "-nodefaults",
            "-display",
            "none",
        ])
        .args(["-monitor", "none", "-serial", "none", "-m", "64M"])
        .arg("-qmp")
        .arg(format!("unix:{},server=on,wait=off", socket.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while !socket.exists() {
        assert!(Instant::now() < deadline, "QEMU made no QMP socket in 20 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    Some(Qemu {
        child,
        socket,
        _dir: dir,
    })
}

fn skipped() -> bool {
    let installed = Command::new("qemu-system-x86_64")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !installed {
        println!("SKIPPED: qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)");
    }
    !installed
}

#[test]
fn a_command_gets_its_reply_after_capability_negotiation() {
    if skipped() {
        return;
    }
    let q = qemu("none").unwrap();
    let reply = qmp::execute(&q.socket, "query-status", Duration::from_secs(5)).unwrap();
    assert!(reply["return"]["status"].is_string(), "{reply}");
}

#[test]
fn qemu_refusing_a_command_is_an_error_with_its_class() {
    if skipped() {
        return;
    }
    let q = qemu("none").unwrap();
    match qmp::execute(&q.socket, "no-such-command", Duration::from_secs(5)) {
        Err(Error::Qmp(detail)) => assert!(detail.contains("CommandNotFound"), "{detail}"),
        other => panic!("expected Error::Qmp, got {other:?}"),
    }
}

#[test]
fn a_q35_machine_accepts_the_acpi_power_button() {
    if skipped() {
        return;
    }
    // No guest OS handles the event here: the point is that QEMU accepts the request (the
    // POWERDOWN event that precedes the reply is skipped); tests/e2e/host-vm.sh checks that the
    // cocoon guest image powers off on it.
    let mut q = qemu("q35").unwrap();
    qmp::system_powerdown(&q.socket).unwrap();
    assert!(q.child.try_wait().unwrap().is_none(), "QEMU exited");
}

#[test]
fn no_listener_is_an_error_not_a_hang() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("absent.qmp");
    match qmp::execute(Path::new(&socket), "query-status", Duration::from_secs(1)) {
        Err(Error::Qmp(detail)) => assert!(detail.contains("absent.qmp"), "{detail}"),
        other => panic!("expected Error::Qmp, got {other:?}"),
    }
}
