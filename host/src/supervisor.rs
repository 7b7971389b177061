//! Supervision of VMs (`process`: the enclave as a local process; `vm`: QEMU booting a guest
//! image): start, stop, restart; restarts with exponential backoff and a crash-loop breaker; state
//! persisted per VM; re-adoption of running VMs after an agent restart; a lock file per VM so that
//! two agents never manage one VM.

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
use crate::qemu::HostPaths;
use crate::spec::{AccelChoice, Launch, Vm};
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
/// `qemu.accel = "auto"`: a KVM guest whose console shows no kernel output this long after its
/// launch is relaunched with software emulation (nested KVM on some cloud machines opens but
/// never runs the guest's kernel).
pub const KVM_BOOT_PROBE: Duration = Duration::from_secs(30);
/// Console text that proves the guest's kernel runs (Linux prints it first on `console=ttyS0`).
const KERNEL_BANNER: &[u8] = b"Linux version";
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
    /// `auto` chose KVM: when to check that the guest's kernel runs.
    kvm_probe: Option<Instant>,
    /// KVM failed that check: this slot launches with TCG from now on.
    kvm_unusable: bool,
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

/// `STATE_DIR/NAME.log`: the VM's stdout and stderr (QEMU's own messages for `vm`).
pub fn log_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.log"))
}

/// The log `cocoon-host logs` shows: the enclave's output — the process's stdout and stderr, or
/// the guest's serial console (`STATE_DIR/logs/NAME.serial.log`; the previous boot's in
/// `NAME.serial.log.1`).
pub fn console_log_path(dir: &Path, vm: &Vm) -> PathBuf {
    match vm.launch {
        Launch::Process { .. } => log_path(dir, &vm.name),
        Launch::Qemu(_) => HostPaths::in_state_dir(dir, &vm.name).serial_log,
    }
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
                // An operator's stop outlives the agent; a running (re-adopted) VM is not held.
                held: adopted.is_none() && previous.as_ref().is_some_and(|s| s.held),
                accel: if adopted.is_some() {
                    previous.as_ref().and_then(|s| s.accel.clone())
                } else {
                    None
                },
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
                    kvm_probe: None,
                    kvm_unusable: false,
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

    /// Starts every VM that is not running (agent start-up), except those an operator stopped
    /// (`held`: they wait for an explicit `start`).
    pub fn start_all(&self) -> Vec<(String, Error)> {
        let mut failures = Vec::new();
        for name in self.names() {
            if self.status(&name).is_ok_and(|s| s.held) {
                continue;
            }
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
        slot.state.held = false;
        let result = self.spawn(slot);
        if let Err(e) = &result {
            slot.state.status = Status::Failed;
            slot.state.last_exit = Some(e.to_string());
            state::save(&self.dir, &slot.state)?;
        }
        result.map(|()| slot.state.clone())
    }

    /// Checks the images against the published measurements, then launches the VM.
    fn spawn(&self, slot: &mut Slot) -> Result<()> {
        let vm = &slot.vm;
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
        let (mut cmd, program) = match &vm.launch {
            Launch::Process {
                model_dir,
                enclave_binary,
            } => (
                self.enclave_command(vm, &slot.measurements, model_dir, enclave_binary)?,
                enclave_binary.clone(),
            ),
            Launch::Qemu(q) => {
                // The files are checked again: one swapped since the measurements were
                // published is refused, not booted.
                q.image.check_files()?;
                let host = HostPaths::in_state_dir(&self.dir, &vm.name);
                if let Some(logs) = host.serial_log.parent() {
                    std::fs::create_dir_all(logs).map_err(io(logs))?;
                }
                // QEMU truncates the serial file: keep the previous boot's console for diagnosis.
                let previous = host.serial_log.with_extension("log.1");
                if host.serial_log.exists() {
                    std::fs::rename(&host.serial_log, &previous).map_err(io(&previous))?;
                }
                let qmp = host.qmp_socket(&vm.name);
                match std::fs::remove_file(&qmp) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        return Err(io(&qmp)(e));
                    }
                    _ => {}
                }
                let accel = if slot.kvm_unusable {
                    crate::qemu::Accel::Tcg
                } else {
                    q.accel.resolve()
                };
                slot.kvm_probe = (q.accel == AccelChoice::Auto && accel == crate::qemu::Accel::Kvm)
                    .then(|| Instant::now().checked_add(KVM_BOOT_PROBE))
                    .flatten();
                slot.state.accel = Some(accel.as_str().to_owned());
                let argv = crate::qemu::argv(&q.qemu, &host, accel);
                let (program, args) = argv.split_first().ok_or_else(|| Error::Spawn {
                    name: vm.name.clone(),
                    detail: "empty QEMU command line".to_owned(),
                })?;
                let mut cmd = Command::new(program);
                cmd.args(args);
                (cmd, PathBuf::from(program))
            }
        };
        // Own process group: a Ctrl-C to the agent does not reach the VM, which outlives the agent
        // for re-adoption.
        cmd.stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0);
        let child = cmd.spawn().map_err(|e| Error::Spawn {
            name: vm.name.clone(),
            detail: format!("{}: {e}", program.display()),
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

    /// `cocoon-enclave serve …` of a `process` VM, after checking its model and configuration
    /// against the published measurements.
    fn enclave_command(
        &self,
        vm: &Vm,
        measurements: &Measurements,
        model_dir: &Path,
        enclave_binary: &Path,
    ) -> Result<Command> {
        let model = measure::model_digest(model_dir)?;
        if hex::encode(model) != measurements.claims.model_blake3 {
            return Err(Error::MeasurementChanged { what: "model.dir" });
        }
        let config = measure::config_digest(vm)?;
        if config.map(hex::encode) != measurements.claims.config_digest {
            return Err(Error::MeasurementChanged { what: "config_dir" });
        }
        let mut cmd = Command::new(enclave_binary);
        cmd.arg("serve")
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", vm.api_port))
            .arg("--attester")
            .arg(vm.attester.unwrap_or_default().as_str())
            .arg("--model-dir")
            .arg(model_dir)
            .arg("--hpke")
            .arg(vm.hpke.as_str())
            .arg("--gpu")
            .arg(vm.gpu.as_str())
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
        Ok(cmd)
    }

    /// One supervision pass: reaps exits, schedules and performs restarts.
    pub fn tick(&self) {
        let now = Instant::now();
        let mut slots = self.slots();
        for slot in slots.values_mut() {
            match slot.state.status {
                Status::Running if slot.kvm_probe.is_some_and(|t| now >= t) => {
                    slot.kvm_probe = None;
                    let console = console_log_path(&self.dir, &slot.vm);
                    if !file_contains(&console, KERNEL_BANNER) {
                        self.kvm_fallback(slot);
                    }
                }
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
                        let last = last_line(&console_log_path(&self.dir, &slot.vm))
                            .or_else(|| last_line(&log_path(&self.dir, &slot.vm.name)));
                        let reason = match last {
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

    /// The KVM guest never ran its kernel: kill it and relaunch with TCG (not a crash: the
    /// backoff and crash history are untouched).
    fn kvm_fallback(&self, slot: &mut Slot) {
        if let Some(mut child) = slot.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        } else if let Some(pid) = slot.state.pid {
            signal(pid, slot.state.start_time, Signal::KILL);
        }
        slot.kvm_unusable = true;
        let note = format!(
            "KVM guest printed no kernel output in {} s: relaunched with software emulation (tcg)",
            KVM_BOOT_PROBE.as_secs()
        );
        eprintln!("cocoon-host: {}: {note}", slot.vm.name);
        slot.state.last_exit = Some(note);
        if let Err(e) = self.spawn(slot) {
            self.exited(slot, Instant::now(), e.to_string());
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

    /// Stops a VM: for QEMU VMs first the ACPI power button over QMP (`system_powerdown`) and
    /// `qemu.powerdown_timeout_secs` for the guest to power off; then SIGTERM, then SIGKILL after
    /// `enclave.stop_timeout_secs`.
    pub fn stop(&self, name: &str) -> Result<VmState> {
        self.stop_with(name, true)
    }

    /// [`Supervisor::stop`]; `hold` records an operator's stop (`held`: a restarted agent leaves
    /// the VM stopped), which an agent's own shutdown (`stop_all`) is not.
    fn stop_with(&self, name: &str, hold: bool) -> Result<VmState> {
        let (mut child, pid, start, timeout, powerdown) = {
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
                match &slot.vm.launch {
                    Launch::Qemu(q) => Some((
                        HostPaths::in_state_dir(&self.dir, name).qmp_socket(name),
                        Duration::from_secs(q.powerdown_timeout_secs),
                    )),
                    Launch::Process { .. } => None,
                },
            )
        };
        let mut how = "stopped on request";
        if let Some(pid) = pid {
            let gone = |child: &mut Option<Child>| match child {
                Some(c) => !matches!(c.try_wait(), Ok(None)),
                None => start.is_none_or(|s| !state::is_same_process(pid, s)),
            };
            let wait = |child: &mut Option<Child>, timeout: Duration| {
                let deadline = Instant::now().checked_add(timeout);
                while !gone(child) && deadline.is_some_and(|d| Instant::now() < d) {
                    std::thread::sleep(Duration::from_millis(50));
                }
                gone(child)
            };
            let powered_off = match &powerdown {
                Some((qmp, grace)) => {
                    crate::qmp::system_powerdown(qmp).is_ok() && wait(&mut child, *grace)
                }
                None => false,
            };
            if powered_off {
                how = "stopped on request (ACPI powerdown)";
            } else {
                signal(pid, start, Signal::TERM);
                if !wait(&mut child, timeout) {
                    signal(pid, start, Signal::KILL);
                    how = "stopped on request (SIGKILL after the stop timeout)";
                }
            }
            if let Some(c) = child.as_mut() {
                let _ = c.wait();
            }
        }
        let mut slots = self.slots();
        let slot = slots
            .get_mut(name)
            .ok_or_else(|| Error::UnknownVm(name.to_owned()))?;
        slot.state.status = Status::Stopped;
        slot.state.pid = None;
        slot.state.start_time = None;
        slot.state.last_exit = Some(how.to_owned());
        slot.state.accel = None;
        slot.state.held = hold;
        state::save(&self.dir, &slot.state)?;
        Ok(slot.state.clone())
    }

    /// Stop, then start.
    pub fn restart(&self, name: &str) -> Result<VmState> {
        self.stop(name)?;
        self.start(name)
    }

    /// Stops every VM (agent exit with `--stop-vms-on-exit`); the next agent starts them again.
    pub fn stop_all(&self) {
        for name in self.names() {
            let _ = self.stop_with(&name, false);
        }
    }

    /// The last `lines` lines of the VM's log (the guest's serial console for QEMU VMs).
    pub fn logs(&self, name: &str, lines: usize) -> Result<Vec<String>> {
        let path = {
            let slots = self.slots();
            let slot = slots
                .get(name)
                .ok_or_else(|| Error::UnknownVm(name.to_owned()))?;
            console_log_path(&self.dir, &slot.vm)
        };
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
    let text = strip_ansi(&String::from_utf8_lossy(&bytes));
    let line = text.lines().rev().find(|l| !l.trim().is_empty())?;
    Some(line.chars().take(512).collect())
}

/// Whether the first [`MAX_LOG_TAIL_BYTES`] of a file contain `needle`.
fn file_contains(path: &Path, needle: &[u8]) -> bool {
    let Ok(file) = File::open(path) else {
        return false;
    };
    let mut bytes = Vec::new();
    if file
        .take(MAX_LOG_TAIL_BYTES)
        .read_to_end(&mut bytes)
        .is_err()
    {
        return false;
    }
    bytes.windows(needle.len()).any(|w| w == needle)
}

/// Removes ANSI escape sequences (`ESC [ … letter`: the enclave's colored log on a serial
/// console) and other control characters but tab and newline.
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
        } else if !c.is_control() || c == '\n' || c == '\t' {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn console_colors_and_control_characters_are_stripped() {
        let line = "\u{1b}[2m2026\u{1b}[0m \u{1b}[32m INFO\u{1b}[0m listening\r\u{7}\tok\n";
        assert_eq!(strip_ansi(line), "2026  INFO listening\tok\n");
        assert_eq!(strip_ansi("plain"), "plain");
        // A lone ESC or an unterminated sequence does not eat the text before it.
        assert_eq!(strip_ansi("a\u{1b}b"), "ab");
        assert_eq!(strip_ansi("a\u{1b}[12"), "a");
    }

    #[test]
    fn the_kernel_banner_probe_reads_the_console_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.log");
        assert!(!file_contains(&path, KERNEL_BANNER));
        std::fs::write(&path, "SeaBIOS\nProbing EDD (edd=off to disable)... ok\n").unwrap();
        assert!(!file_contains(&path, KERNEL_BANNER));
        std::fs::write(&path, "[    0.000000] Linux version 6.1.0-56-amd64\n").unwrap();
        assert!(file_contains(&path, KERNEL_BANNER));
    }
}
