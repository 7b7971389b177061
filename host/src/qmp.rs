//! A minimal QMP (QEMU Machine Protocol) client: enough to ask a guest to power off.
//!
//! Written here because the exchange is three JSON lines on a unix socket (greeting,
//! `qmp_capabilities`, one command) and no maintained Rust QMP crate is in this workspace's
//! dependency set; everything is bounded (line length, number of lines, time).

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use crate::error::{Error, Result};

/// Longest QMP line read (QEMU's greeting and replies are a few hundred bytes).
const MAX_LINE: usize = 64 * 1024;
/// Most lines read while waiting for one reply (asynchronous events may come first).
const MAX_LINES: usize = 64;

fn err(socket: &Path, detail: impl std::fmt::Display) -> Error {
    Error::Qmp(format!("{}: {detail}", socket.display()))
}

/// Reads lines until one is a reply (`return` or `error`); events are skipped.
fn reply(reader: &mut BufReader<UnixStream>, socket: &Path) -> Result<serde_json::Value> {
    for _ in 0..MAX_LINES {
        let mut line = String::new();
        let n = Read::by_ref(reader)
            .take(u64::try_from(MAX_LINE).unwrap_or(u64::MAX))
            .read_line(&mut line)
            .map_err(|e| err(socket, e))?;
        if n == 0 {
            return Err(err(socket, "QEMU closed the QMP connection"));
        }
        if !line.ends_with('\n') {
            return Err(err(socket, "QMP line too long"));
        }
        let value: serde_json::Value =
            serde_json::from_str(&line).map_err(|e| err(socket, format!("not JSON: {e}")))?;
        if value.get("event").is_some() {
            continue;
        }
        if let Some(error) = value.get("error") {
            return Err(err(socket, format!("QEMU refused: {error}")));
        }
        return Ok(value);
    }
    Err(err(socket, "no reply among the first QMP messages"))
}

/// Connects, negotiates capabilities and executes `command` (no arguments); returns its reply.
pub fn execute(socket: &Path, command: &str, timeout: Duration) -> Result<serde_json::Value> {
    let stream = UnixStream::connect(socket).map_err(|e| err(socket, e))?;
    stream
        .set_read_timeout(Some(timeout))
        .and_then(|()| stream.set_write_timeout(Some(timeout)))
        .map_err(|e| err(socket, e))?;
    let mut writer = stream.try_clone().map_err(|e| err(socket, e))?;
    let mut reader = BufReader::new(stream);
    let greeting = reply(&mut reader, socket)?;
    if greeting.get("QMP").is_none() {
        return Err(err(socket, "no QMP greeting"));
    }
    for cmd in ["qmp_capabilities", command] {
        let line = serde_json::json!({ "execute": cmd }).to_string();
        writer
            .write_all(format!("{line}\n").as_bytes())
            .map_err(|e| err(socket, e))?;
        let answer = reply(&mut reader, socket)?;
        if answer.get("return").is_none() {
            return Err(err(socket, format!("unexpected reply to {cmd}: {answer}")));
        }
        if cmd == command {
            return Ok(answer);
        }
    }
    Err(err(socket, "unreachable"))
}

/// ACPI power button: the guest shuts itself down (if its OS handles the event).
pub fn system_powerdown(socket: &Path) -> Result<()> {
    execute(socket, "system_powerdown", Duration::from_secs(2)).map(|_| ())
}
