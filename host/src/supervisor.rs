//! Supervision of `process` VMs: start, stop, restart; restarts with exponential backoff and a
//! crash-loop breaker; state persisted per VM; re-adoption of running VMs after an agent restart;
//! a lock file per VM so that two agents never manage one VM.

use std::collections::{BTreeMap, VecDeque};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rustix::process::{kill_process, Pid, Signal};

use crate::error::{io, Error, Result};
use crate::measure::{self, Measurements};
use crate::spec::Vm;
use crate::state::{self, Status, VmState};

/// First restart delay; doubles per exit up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// Longest restart delay.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// This many exits within [`CRASH_WINDOW`] → `failed`.
pub const CRASH_LIMIT: usize = 5;
/// The crash-loop window.
pub const CRASH_WINDOW: Duration = Duration::from_secs(60);
/// A process that ran this long resets the backoff.
pub const STABLE_AFTER: Duration = Duration::from_secs(60);
/// How often processes are checked.
pub const TICK: Duration = Duration::from_millis(200);
/// Most log lines returned at once.
pub const MAX_LOG_LINES: usize = 10_000;
/// Most log bytes read for a tail.
const MAX_LOG_TAIL_BYTES: u64 = 1024 * 1024;

/// Tuning of the restart policy (tests shorten it).
#[derive(Debug, Clone, Copy)]
pub struct RestartPolicy {
    pub first_backoff: Duration,
    pub max_backoff: Duration,
    pub crash_limit: usize,
    pub crash_window: Duration,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        Self {
            first_backoff: FIRST_BACKOFF,
            max_backoff: MAX_BACKOFF,
            crash_limit: CRASH_LIMIT,
            crash_window: CRASH_WINDOW,
        }
    }
}

struct Slot {
    vm: Vm,
    measurements: Measurements,
    state: VmState,
    /// Our child (None for a re-adopted process).
    child: Option<Child>,
    exits: VecDeque<Instant>,
    backoff: Duration,
    next_restart: Option<Instant>,
    started_at: Option<Instant>,
    /// Held for the agent's life: the per-VM lock.
    _lock: File,
}

/// The supervisor of every VM of an agent.
pub struct Supervisor {
    dir: PathBuf,
    policy: RestartPolicy,
    slots: Mutex<BTreeMap<String, Slot>>,
}

impl std::fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervisor")
            .field("dir", &self.dir)
            .finish()
    }
}

/// `STATE_DIR/NAME.log`: the VM's stdout and stderr.
pub fn log_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.log"))
}

/// Takes an exclusive lock on `path` (created if needed) or fails with [`Error::Locked`].
pub fn lock_file(path: &Path) -> Result<File> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(io(path))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::Locked {
            path: path.to_path_buf(),
        }),
        Err(std::fs::TryLockError::Error(e)) => Err(Error::Io {
            path: path.to_path_buf(),
            source: e,
        }),
    }
}

fn signal(pid: u32, start: Option<u64>, sig: Signal) {
    // Never signal a pid that is no longer our process (pid reuse).
    if let Some(start) = start {
        if !state::is_same_process(pid, start) {
            return;
        }
    }
    if let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) {
        let _ = kill_process(pid, sig);
    }
}

impl Supervisor {
    /// Locks every VM (fails if another agent holds one) and re-adopts the VMs whose recorded
    /// process is still alive with the recorded start time. Starts nothing.
    pub fn new(dir: &Path, vms: Vec<(Vm, Measurements)>, policy: RestartPolicy) -> Result<Self> {
        let mut slots = BTreeMap::new();
        for (vm, measurements) in vms {
            let lock = lock_file(&dir.join(format!("{}.lock", vm.name)))?;
            let previous = state::load(dir, &vm.name)?;
            // Whatever the recorded status (an agent may have died mid-stop), a live process with
            // the recorded start time is ours: adopt it rather than start a second copy.
            let adopted = previous.as_ref().and_then(|s| match (s.pid, s.start_time) {
                (Some(pid), Some(start)) if state::is_same_process(pid, start) => {
                    Some((pid, start))
                }
                _ => None,
            });
            let state = VmState {
                name: vm.name.clone(),
                status: if adopted.is_some() {
                    Status::Running
                } else {
                    Status::Stopped
                },
                pid: adopted.map(|(pid, _)| pid),
                start_time: adopted.map(|(_, start)| start),
                port: vm.api_port,
                restarts: previous.as_ref().map_or(0, |s| s.restarts),
                last_exit: previous.and_then(|s| s.last_exit),
            };
            state::save(dir, &state)?;
            slots.insert(
                vm.name.clone(),
                Slot {
                    vm,
                    measurements,
                    state,
                    child: None,
                    exits: VecDeque::new(),
                    backoff: policy.first_backoff,
                    next_restart: None,
                    started_at: adopted.map(|_| Instant::now()),
                    _lock: lock,
                },
            );
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            policy,
            slots: Mutex::new(slots),
        })
    }

    fn slots(&self) -> MutexGuard<'_, BTreeMap<String, Slot>> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The state folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Names of the VMs.
    pub fn names(&self) -> Vec<String> {
        self.slots().keys().cloned().collect()
    }

    /// Every VM's state.
    pub fn list(&self) -> Vec<VmState> {
        self.slots().values().map(|s| s.state.clone()).collect()
    }

    /// One VM's state.
    pub fn status(&self, name: &str) -> Result<VmState> {
        self.slots()
            .get(name)
            .map(|s| s.state.clone())
            .ok_or_else(|| Error::UnknownVm(name.to_owned()))
    }

    /// One VM's published measurements.
    pub fn measurements(&self, name: &str) -> Result<Measurements> {
        self.slots()
            .get(name)
            .map(|s| s.measurements.clone())
            .ok_or_else(|| Error::UnknownVm(name.to_owned()))
    }

    /// One VM's port.
    pub fn port(&self, name: &str) -> Result<u16> {
        self.slots()
            .get(name)
            .map(|s| s.vm.api_port)
            .ok_or_else(|| Error::UnknownVm(name.to_owned()))
    }

    /// Starts every VM that is not running (agent start-up).
    pub fn start_all(&self) -> Vec<(String, Error)> {
        let mut failures = Vec::new();
        for name in self.names() {
            if let Err(e) = self.start(&name) {
                failures.push((name, e));
            }
        }
        failures
    }

    /// Starts a VM (an explicit start also clears `failed` and the crash history). A running VM
    /// is left as it is.
    pub fn start(&self, name: &str) -> Result<VmState> {
        let mut slots = self.slots();
        let slot = slots
            .get_mut(name)
            .ok_or_else(|| Error::UnknownVm(name.to_owned()))?;
        if matches!(slot.state.status, Status::Running | Status::Stopping) {
            return Ok(slot.state.clone());
        }
        slot.exits.clear();
        slot.backoff = self.policy.first_backoff;
        slot.next_restart = None;
        slot.state.restarts = 0;
        let result = self.spawn(slot);
        if let Err(e) = &result {
            slot.state.status = Status::Failed;
            slot.state.last_exit = Some(e.to_string());
            state::save(&self.dir, &slot.state)?;
        }
        result.map(|()| slot.state.clone())
    }

    /// Checks the images against the published measurements, then launches the enclave.
    fn spawn(&self, slot: &mut Slot) -> Result<()> {
        let vm = &slot.vm;
        let model = measure::model_digest(vm)?;
        if hex::encode(model) != slot.measurements.claims.model_blake3 {
            return Err(Error::MeasurementChanged { what: "model.dir" });
        }
        let config = measure::config_digest(vm)?;
        if config.map(hex::encode) != slot.measurements.claims.config_digest {
            return Err(Error::MeasurementChanged { what: "config_dir" });
        }
        // A port taken by another process would only show up as a crash loop.
        if let Err(e) = std::net::TcpListener::bind(("127.0.0.1", vm.api_port)) {
            return Err(Error::Spawn {
                name: vm.name.clone(),
                detail: format!("port {} is not free: {e}", vm.api_port),
            });
        }
        let log = log_path(&self.dir, &vm.name);
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(io(&log))?;
        let err = out.try_clone().map_err(io(&log))?;
        let mut cmd = Command::new(&vm.enclave_binary);
        cmd.arg("serve")
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", vm.api_port))
            .arg("--attester")
            .arg(vm.attester.as_str())
            .arg("--model-dir")
            .arg(&vm.model_dir)
            .arg("--hpke")
            .arg(vm.hpke.as_str())
            .arg("--model-blake3")
            .arg(hex::encode(model));
        if let Some(config) = config {
            cmd.arg("--config-digest").arg(hex::encode(config));
        }
        let r = &vm.runtime;
        for (flag, value) in [
            ("--threads", r.threads),
            ("--max-sequences", r.max_sequences),
            ("--queue-capacity", r.queue_capacity),
        ] {
            if let Some(v) = value {
                cmd.arg(flag).arg(v.to_string());
            }
        }
        if let Some(filter) = &r.log_filter {
            cmd.env("RUST_LOG", filter);
        }
        // Own process group: a Ctrl-C to the agent does not reach the VM, which outlives the agent
        // for re-adoption.
        cmd.stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0);
        let child = cmd.spawn().map_err(|e| Error::Spawn {
            name: vm.name.clone(),
            detail: format!("{}: {e}", vm.enclave_binary.display()),
        })?;
        let pid = child.id();
        slot.state.status = Status::Running;
        slot.state.pid = Some(pid);
        slot.state.start_time = state::start_time(pid);
        slot.child = Some(child);
        slot.started_at = Some(Instant::now());
        slot.next_restart = None;
        state::save(&self.dir, &slot.state)
    }

    /// One supervision pass: reaps exits, schedules and performs restarts.
    pub fn tick(&self) {
        let now = Instant::now();
        let mut slots = self.slots();
        for slot in slots.values_mut() {
            match slot.state.status {
                Status::Running => {
                    let exit = match (&mut slot.child, slot.state.pid, slot.state.start_time) {
                        (Some(child), _, _) => match child.try_wait() {
                            Ok(Some(status)) => Some(format!("exited: {status}")),
                            Ok(None) => None,
                            Err(e) => Some(format!("wait failed: {e}")),
                        },
                        (None, Some(pid), Some(start)) => (!state::is_same_process(pid, start))
                            .then(|| "re-adopted process exited".to_owned()),
                        (None, _, _) => Some("no process".to_owned()),
                    };
                    if let Some(reason) = exit {
                        let reason = match last_line(&log_path(&self.dir, &slot.vm.name)) {
                            Some(line) => format!("{reason}; last log line: {line}"),
                            None => reason,
                        };
                        self.exited(slot, now, reason);
                    }
                }
                Status::Restarting if slot.next_restart.is_some_and(|t| now >= t) => {
                    slot.state.restarts = slot.state.restarts.saturating_add(1);
                    if let Err(e) = self.spawn(slot) {
                        self.exited(slot, now, e.to_string());
                    }
                }
                _ => {}
            }
        }
    }

    fn exited(&self, slot: &mut Slot, now: Instant, reason: String) {
        slot.child = None;
        slot.state.pid = None;
        slot.state.start_time = None;
        slot.state.last_exit = Some(reason);
        if slot
            .started_at
            .is_some_and(|t| now.saturating_duration_since(t) >= STABLE_AFTER)
        {
            slot.backoff = self.policy.first_backoff;
        }
        slot.exits.push_back(now);
        while slot
            .exits
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) > self.policy.crash_window)
        {
            slot.exits.pop_front();
        }
        if slot.exits.len() >= self.policy.crash_limit {
            slot.state.status = Status::Failed;
            slot.next_restart = None;
        } else {
            slot.state.status = Status::Restarting;
            slot.next_restart = now.checked_add(slot.backoff);
            slot.backoff = slot.backoff.saturating_mul(2).min(self.policy.max_backoff);
        }
        let _ = state::save(&self.dir, &slot.state);
    }

    /// Stops a VM: the platform's powerdown request (none for `process`; ACPI powerdown over QMP
    /// for the QEMU platforms later), then SIGTERM, then SIGKILL after the spec's timeout.
    pub fn stop(&self, name: &str) -> Result<VmState> {
        let (mut child, pid, start, timeout) = {
            let mut slots = self.slots();
            let slot = slots
                .get_mut(name)
                .ok_or_else(|| Error::UnknownVm(name.to_owned()))?;
            if slot.state.status == Status::Stopping {
                return Ok(slot.state.clone());
            }
            slot.state.status = Status::Stopping;
            slot.next_restart = None;
            state::save(&self.dir, &slot.state)?;
            (
                slot.child.take(),
                slot.state.pid,
                slot.state.start_time,
                Duration::from_secs(slot.vm.stop_timeout_secs),
            )
        };
        if let Some(pid) = pid {
            let gone = |child: &mut Option<Child>| match child {
                Some(c) => !matches!(c.try_wait(), Ok(None)),
                None => start.is_none_or(|s| !state::is_same_process(pid, s)),
            };
            if !request_powerdown(pid) {
                signal(pid, start, Signal::TERM);
            }
            let deadline = Instant::now().checked_add(timeout);
            while !gone(&mut child) && deadline.is_some_and(|d| Instant::now() < d) {
                std::thread::sleep(Duration::from_millis(50));
            }
            if !gone(&mut child) {
                signal(pid, start, Signal::KILL);
                if let Some(c) = child.as_mut() {
                    let _ = c.wait();
                }
            }
        }
        let mut slots = self.slots();
        let slot = slots
            .get_mut(name)
            .ok_or_else(|| Error::UnknownVm(name.to_owned()))?;
        slot.state.status = Status::Stopped;
        slot.state.pid = None;
        slot.state.start_time = None;
        slot.state.last_exit = Some("stopped on request".to_owned());
        state::save(&self.dir, &slot.state)?;
        Ok(slot.state.clone())
    }

    /// Stop, then start.
    pub fn restart(&self, name: &str) -> Result<VmState> {
        self.stop(name)?;
        self.start(name)
    }

    /// Stops every VM (agent exit with `--stop-vms-on-exit`).
    pub fn stop_all(&self) {
        for name in self.names() {
            let _ = self.stop(&name);
        }
    }

    /// The last `lines` lines of the VM's log.
    pub fn logs(&self, name: &str, lines: usize) -> Result<Vec<String>> {
        self.status(name)?;
        let path = log_path(&self.dir, name);
        let mut file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::Io { path, source: e }),
        };
        let len = file.metadata().map_err(io(&path))?.len();
        let from = len.saturating_sub(MAX_LOG_TAIL_BYTES);
        file.seek(SeekFrom::Start(from)).map_err(io(&path))?;
        let mut bytes = Vec::new();
        file.take(MAX_LOG_TAIL_BYTES)
            .read_to_end(&mut bytes)
            .map_err(io(&path))?;
        let text = String::from_utf8_lossy(&bytes);
        let all: Vec<&str> = text.lines().collect();
        let n = lines.min(MAX_LOG_LINES);
        Ok(all
            .iter()
            .skip(all.len().saturating_sub(n))
            .map(|l| (*l).to_owned())
            .collect())
    }

    /// Runs [`Supervisor::tick`] every [`TICK`] on a thread until `stop` is set.
    pub fn spawn_monitor(self: &Arc<Self>, stop: Arc<std::sync::atomic::AtomicBool>) {
        let sup = Arc::clone(self);
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                sup.tick();
                std::thread::sleep(TICK);
            }
        });
    }
}

/// The last non-empty line of a log (at most 4 KiB read, 512 characters kept).
fn last_line(path: &Path) -> Option<String> {
    let mut file = File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    file.seek(SeekFrom::Start(len.saturating_sub(4096))).ok()?;
    let mut bytes = Vec::new();
    file.take(4096).read_to_end(&mut bytes).ok()?;
    let text = String::from_utf8_lossy(&bytes);
    let line = text.lines().rev().find(|l| !l.trim().is_empty())?;
    Some(line.chars().take(512).collect())
}

/// The platform's graceful powerdown; `process` has none (the hook for QEMU's ACPI powerdown).
fn request_powerdown(_pid: u32) -> bool {
    false
}
