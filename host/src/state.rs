//! The state folder: one JSON file per VM, written atomically (temp file, fsync, rename, fsync of
//! the folder), so a crash or a full disk leaves the previous file intact; and the process
//! identity checks (pid + start time from /proc/PID/stat) that make re-adoption safe.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{io, Error, Result};

/// Largest state file read back.
const MAX_STATE_BYTES: u64 = 64 * 1024;

/// The supervision state of a VM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Running (started by this agent or re-adopted).
    Running,
    /// Exited unexpectedly; restarts after the backoff.
    Restarting,
    /// Being stopped.
    Stopping,
    /// Stopped on request (or never started).
    Stopped,
    /// Crash loop (or a launch check failed): no restarts until an explicit start.
    Failed,
}

/// The persisted state of one VM (`STATE_DIR/NAME.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmState {
    pub name: String,
    pub status: Status,
    pub pid: Option<u32>,
    /// Field 22 of /proc/PID/stat (clock ticks since boot) when the process was started.
    pub start_time: Option<u64>,
    pub port: u16,
    /// Restarts after unexpected exits since the last explicit start.
    pub restarts: u32,
    /// Why the process last exited (or why a start was refused).
    pub last_exit: Option<String>,
    /// Stopped by an operator (`stop`): a restarted agent leaves it stopped until `start`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub held: bool,
    /// QEMU VMs: the accelerator of the running guest (`kvm` or `tcg`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accel: Option<String>,
}

/// `STATE_DIR/NAME.json`.
pub fn state_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.json"))
}

/// Writes `bytes` to `path` atomically: the old content stays if anything fails.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let result = (|| {
        let mut file = std::fs::File::create(&tmp).map_err(io(&tmp))?;
        file.write_all(bytes).map_err(io(&tmp))?;
        file.sync_all().map_err(io(&tmp))?;
        std::fs::rename(&tmp, path).map_err(io(path))?;
        if let Some(dir) = path.parent() {
            // The rename is durable once the folder is synced.
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io(dir))?;
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Saves a VM's state.
pub fn save(dir: &Path, state: &VmState) -> Result<()> {
    let json = serde_json::to_vec_pretty(state).map_err(|e| Error::StateCorrupt {
        path: state_path(dir, &state.name),
        detail: e.to_string(),
    })?;
    write_atomic(&state_path(dir, &state.name), &json)
}

/// Reads a VM's state back; `None` when there is none.
pub fn load(dir: &Path, name: &str) -> Result<Option<VmState>> {
    let path = state_path(dir, name);
    let meta = match std::fs::metadata(&path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::Io { path, source: e }),
    };
    if meta.len() > MAX_STATE_BYTES {
        return Err(Error::StateCorrupt {
            path,
            detail: "too large".into(),
        });
    }
    let text = std::fs::read(&path).map_err(io(&path))?;
    let state: VmState = serde_json::from_slice(&text).map_err(|e| Error::StateCorrupt {
        path: path.clone(),
        detail: e.to_string(),
    })?;
    if state.name != name {
        return Err(Error::StateCorrupt {
            path,
            detail: format!("names VM {:?}", state.name),
        });
    }
    Ok(Some(state))
}

/// State (field 3) and start time (field 22) of a /proc/PID/stat line. The command name (field
/// 2) is in parentheses and may hold spaces and parentheses: fields are counted after the last `)`.
pub fn parse_stat(stat: &str) -> Option<(char, u64)> {
    let rest = stat.get(stat.rfind(')')?.checked_add(1)?..)?;
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    // Field 3 was just read; field 22 is 19 further on.
    let start = fields.nth(18)?.parse().ok()?;
    Some((state, start))
}

/// State and start time of a live process.
pub fn proc_stat(pid: u32) -> Option<(char, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
}

/// Start time of process `pid`, if it exists.
pub fn start_time(pid: u32) -> Option<u64> {
    proc_stat(pid).map(|(_, start)| start)
}

/// True when `pid` is a live (not zombie) process that started at `start`: the same process,
/// not a later one that reuses the pid.
pub fn is_same_process(pid: u32, start: u64) -> bool {
    matches!(proc_stat(pid), Some((state, s)) if s == start && state != 'Z' && state != 'X')
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

    fn state(name: &str) -> VmState {
        VmState {
            accel: None,
            held: false,
            name: name.into(),
            status: Status::Running,
            pid: Some(42),
            start_time: Some(7),
            port: 8443,
            restarts: 1,
            last_exit: None,
        }
    }

    #[test]
    fn state_round_trips_through_its_file() {
        let dir = tempfile::tempdir().unwrap();
        save(dir.path(), &state("a")).unwrap();
        assert_eq!(load(dir.path(), "a").unwrap(), Some(state("a")));
        assert_eq!(load(dir.path(), "b").unwrap(), None);
        assert!(!dir.path().join("a.json.tmp").exists());
    }

    #[test]
    fn a_failed_write_leaves_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        save(dir.path(), &state("a")).unwrap();
        // The temp path is taken by a folder: creating the temp file fails, as on a full disk.
        std::fs::create_dir(dir.path().join("a.json.tmp")).unwrap();
        let mut changed = state("a");
        changed.status = Status::Failed;
        assert!(matches!(save(dir.path(), &changed), Err(Error::Io { .. })));
        assert_eq!(load(dir.path(), "a").unwrap(), Some(state("a")));
    }

    #[test]
    fn a_state_file_naming_another_vm_is_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        save(dir.path(), &state("a")).unwrap();
        std::fs::rename(dir.path().join("a.json"), dir.path().join("b.json")).unwrap();
        assert!(matches!(
            load(dir.path(), "b"),
            Err(Error::StateCorrupt { .. })
        ));
        std::fs::write(dir.path().join("c.json"), "{").unwrap();
        assert!(matches!(
            load(dir.path(), "c"),
            Err(Error::StateCorrupt { .. })
        ));
    }

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        let line = "1234 (a) b) (c) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 987654 23 24";
        assert_eq!(parse_stat(line), Some(('S', 987654)));
        assert_eq!(parse_stat("garbage"), None);
        assert_eq!(parse_stat("1 (x) S 1 2"), None);
    }

    #[test]
    fn this_process_is_itself_and_a_wrong_start_time_is_not() {
        let pid = std::process::id();
        let start = start_time(pid).unwrap();
        assert!(is_same_process(pid, start));
        assert!(!is_same_process(pid, start + 1));
    }

    #[test]
    fn an_exited_child_is_not_alive() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let start = start_time(pid);
        child.wait().unwrap();
        assert!(start.is_none_or(|s| !is_same_process(pid, s)));
    }
}
