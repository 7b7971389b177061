//! The agent end to end with stand-in enclaves (shell scripts that ignore their arguments):
//! supervision, restarts, the crash-loop breaker, re-adoption, locks and spec refusals through the
//! real `cocoon-host` binary. The real enclave and client are in tests/e2e/host.sh.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const HOST: &str = env!("CARGO_BIN_EXE_cocoon-host");

fn successor() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/models/successor")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Setup {
    dir: tempfile::TempDir,
    spec: PathBuf,
    state: PathBuf,
}

/// A spec for VM "t" whose enclave is `script` (a shell script body).
fn setup(script: &str, extra: &str) -> Setup {
    let dir = tempfile::Builder::new()
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    let enclave = dir.path().join("fake-enclave");
    std::fs::write(&enclave, format!("#!/bin/sh\n{script}\n")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&enclave, std::fs::Permissions::from_mode(0o755)).unwrap();
    let spec = dir.path().join("t.toml");
    std::fs::write(
        &spec,
        format!(
            "name = \"t\"\nplatform = \"process\"\n[model]\ndir = {:?}\n[ports]\napi = {}\n[enclave]\nbinary = {:?}\nstop_timeout_secs = 2\n{extra}",
            successor(),
            free_port(),
            enclave
        ),
    )
    .unwrap();
    let state = dir.path().join("state");
    Setup { dir, spec, state }
}

fn host(args: &[&str]) -> Output {
    Command::new(HOST).args(args).output().unwrap()
}

fn cli(s: &Setup, args: &[&str]) -> serde_json::Value {
    let mut all = args.to_vec();
    let state = s.state.to_str().unwrap();
    all.extend(["--state", state]);
    let out = host(&all);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

struct Agent(Child);

impl Agent {
    fn start(s: &Setup) -> Agent {
        Self::start_with(s, &[])
    }

    /// `cocoon-host serve EXTRA… --state … SPEC`, once its socket exists.
    fn start_with(s: &Setup, extra: &[&str]) -> Agent {
        let child = Command::new(HOST)
            .arg("serve")
            .args(extra)
            .arg("--state")
            .arg(&s.state)
            .arg(&s.spec)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let agent = Agent(child);
        wait_for(Duration::from_secs(20), || {
            s.state.join("host.sock").exists()
        });
        agent
    }

    /// SIGTERM: the agent leaves its VMs running.
    fn terminate(mut self) {
        let pid = self.0.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let start = Instant::now();
        while self.0.try_wait().unwrap().is_none() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "agent did not exit"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        std::mem::forget(self);
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for(limit: Duration, mut ok: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < limit, "condition not met in {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    start.elapsed()
}

fn status(s: &Setup) -> serde_json::Value {
    cli(s, &["status", "t"])
}

fn alive(pid: u64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

fn kill9(pid: u64) {
    Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
}

fn starts(s: &Setup) -> usize {
    std::fs::read_to_string(s.dir.path().join("starts"))
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

/// A stand-in that records each launch and runs until killed.
fn sleeper(s_dir: &str) -> String {
    format!("echo $$ >> {s_dir}/starts\nexec sleep 600")
}

fn sleeping_setup() -> Setup {
    let s = setup("", "");
    let script = sleeper(s.dir.path().to_str().unwrap());
    std::fs::write(
        s.dir.path().join("fake-enclave"),
        format!("#!/bin/sh\n{script}\n"),
    )
    .unwrap();
    s
}

fn stop_vm(s: &Setup) {
    let st = cli(s, &["stop", "t"]);
    assert_eq!(st["status"], "stopped");
}

#[test]
fn a_killed_vm_is_restarted_within_5_seconds() {
    let s = sleeping_setup();
    let agent = Agent::start(&s);
    let first = status(&s);
    assert_eq!(first["status"], "running");
    let pid = first["pid"].as_u64().unwrap();
    kill9(pid);
    let took = wait_for(Duration::from_secs(5), || {
        let st = status(&s);
        st["status"] == "running" && st["pid"].as_u64().is_some_and(|p| p != pid)
    });
    assert!(took < Duration::from_secs(5));
    let st = status(&s);
    assert_eq!(st["restarts"], 1);
    assert_eq!(starts(&s), 2);
    stop_vm(&s);
    drop(agent);
}

#[test]
fn a_restarted_agent_readopts_the_running_vm_without_a_second_copy() {
    let s = sleeping_setup();
    let agent = Agent::start(&s);
    let pid = status(&s)["pid"].as_u64().unwrap();
    agent.terminate();
    assert!(alive(pid), "the VM must outlive the agent");
    let agent = Agent::start(&s);
    let st = status(&s);
    assert_eq!(st["status"], "running");
    assert_eq!(st["pid"].as_u64(), Some(pid));
    assert_eq!(starts(&s), 1, "no second copy was launched");
    // The adopted process is not the agent's child: its death is seen through /proc.
    kill9(pid);
    wait_for(Duration::from_secs(5), || {
        let st = status(&s);
        st["status"] == "running" && st["pid"].as_u64().is_some_and(|p| p != pid)
    });
    assert!(status(&s)["last_exit"]
        .as_str()
        .unwrap()
        .contains("re-adopted process exited"));
    let new = status(&s)["pid"].as_u64().unwrap();
    stop_vm(&s);
    assert!(!alive(new));
    drop(agent);
}

#[test]
fn a_vm_stopped_by_the_operator_stays_stopped_across_an_agent_restart() {
    let s = sleeping_setup();
    let agent = Agent::start(&s);
    stop_vm(&s);
    assert_eq!(status(&s)["held"], true);
    agent.terminate();
    let agent = Agent::start(&s);
    let st = status(&s);
    assert_eq!(st["status"], "stopped", "{st}");
    assert_eq!(starts(&s), 1, "the restarted agent must not start it");
    let st = cli(&s, &["start", "t"]);
    assert_eq!(st["status"], "running");
    assert!(
        st.get("held").is_none(),
        "an explicit start releases it: {st}"
    );
    stop_vm(&s);
    drop(agent);
}

#[test]
fn stop_vms_on_exit_stops_them_without_holding_them() {
    let s = sleeping_setup();
    let agent = Agent::start_with(&s, &["--stop-vms-on-exit"]);
    wait_for(Duration::from_secs(10), || {
        status(&s)["status"] == "running"
    });
    let pid = status(&s)["pid"].as_u64().unwrap();
    agent.terminate();
    assert!(!alive(pid), "--stop-vms-on-exit stops the VM");
    // The agent's own shutdown is not an operator's stop: the next agent starts it again.
    let agent = Agent::start(&s);
    wait_for(Duration::from_secs(10), || {
        status(&s)["status"] == "running"
    });
    assert_eq!(starts(&s), 2);
    stop_vm(&s);
    drop(agent);
}

#[test]
fn a_reused_pid_is_not_adopted() {
    let s = sleeping_setup();
    std::fs::create_dir_all(&s.state).unwrap();
    // A state file naming a live process (this test) with another start time.
    let me = std::process::id();
    std::fs::write(
        s.state.join("t.json"),
        format!(
            "{{\"name\":\"t\",\"status\":\"running\",\"pid\":{me},\"start_time\":1,\"port\":1,\"restarts\":0,\"last_exit\":null}}"
        ),
    )
    .unwrap();
    let agent = Agent::start(&s);
    let st = status(&s);
    assert_eq!(st["status"], "running");
    assert_ne!(st["pid"].as_u64(), Some(u64::from(me)));
    assert_eq!(starts(&s), 1);
    stop_vm(&s);
    drop(agent);
}

#[test]
fn a_crash_loop_ends_in_failed_until_an_explicit_start() {
    let s = setup("echo 'model: cannot load' >&2\nexit 3", "");
    let agent = Agent::start(&s);
    // Exits at about 0, 1, 3, 7 and 15 s (backoff 1, 2, 4, 8 s): the fifth in 60 s trips the breaker.
    wait_for(Duration::from_secs(40), || status(&s)["status"] == "failed");
    let st = status(&s);
    assert_eq!(st["restarts"], 4);
    let last_exit = st["last_exit"].as_str().unwrap();
    assert!(last_exit.contains("exit status: 3"), "{last_exit}");
    assert!(
        last_exit.contains("last log line: model: cannot load"),
        "{last_exit}"
    );
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(status(&s)["status"], "failed", "no restart after failed");
    // An explicit start clears the breaker.
    let st = cli(&s, &["start", "t"]);
    assert_eq!(st["restarts"], 0);
    assert!(st["status"] == "running" || st["status"] == "restarting");
    stop_vm(&s);
    drop(agent);
}

#[test]
fn stop_sends_sigkill_after_the_timeout_when_sigterm_is_ignored() {
    let s = setup("trap '' TERM\nwhile true; do sleep 0.1; done", "");
    let agent = Agent::start(&s);
    let pid = status(&s)["pid"].as_u64().unwrap();
    std::thread::sleep(Duration::from_millis(300)); // the trap is set
    let start = Instant::now();
    stop_vm(&s);
    let took = start.elapsed();
    assert!(
        took >= Duration::from_secs(2),
        "waited for the timeout: {took:?}"
    );
    assert!(took < Duration::from_secs(6), "{took:?}");
    assert!(!alive(pid));
    drop(agent);
}

#[test]
fn a_second_agent_on_the_same_state_is_refused() {
    let s = sleeping_setup();
    let agent = Agent::start(&s);
    let out = host(&[
        "serve",
        "--state",
        s.state.to_str().unwrap(),
        s.spec.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is locked"));
    assert_eq!(starts(&s), 1);
    stop_vm(&s);
    drop(agent);
}

#[test]
fn logs_measurements_and_policy_are_served() {
    let s = setup("echo hello from the enclave\nexec sleep 600", "");
    let agent = Agent::start(&s);
    wait_for(Duration::from_secs(5), || {
        let out = host(&["logs", "t", "--state", s.state.to_str().unwrap()]);
        String::from_utf8_lossy(&out.stdout).contains("hello from the enclave")
    });
    let m = cli(&s, &["measure", "t"]);
    let model = cocoon_attestation_model(&successor());
    assert_eq!(m["claims"]["model_blake3"], model);
    assert_eq!(m["tee"], "simulated-tdx");
    let out = host(&["policy", "t", "--state", s.state.to_str().unwrap()]);
    let policy = String::from_utf8(out.stdout).unwrap();
    assert!(policy.contains(&format!("model_blake3 = [\"{model}\"]")));
    assert!(policy.contains("allow_simulated = true"));
    // The fake enclave serves no TLS: health is a clear error, not a hang.
    let out = host(&["health", "t", "--state", s.state.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("health"));
    let out = host(&["status", "nope", "--state", s.state.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no VM named"));
    stop_vm(&s);
    drop(agent);
}

/// The digest the host publishes, from the library it uses.
fn cocoon_attestation_model(dir: &Path) -> String {
    hex::encode(cocoon_attestation::model_digest::model_blake3(dir).unwrap())
}

#[test]
fn check_refuses_each_bad_spec_with_its_key_and_reason() {
    let s = sleeping_setup();
    let good = std::fs::read_to_string(&s.spec).unwrap();
    let out = host(&["check", s.spec.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cases: Vec<(String, &str)> = vec![
        (
            good.replace("name = \"t\"", "name = \"../t\""),
            "name: bad name",
        ),
        (format!("vpcus = 2\n{good}"), "vpcus: unknown key"),
        (format!("vcpus = 100000\n{good}"), "vcpus: over host limit"),
        (
            format!("memory_mib = 1000000000\n{good}"),
            "memory_mib: over host limit",
        ),
        (
            good.replace("platform = \"process\"", "platform = \"snp\""),
            "image: required",
        ),
        (
            good.replace(&format!("{:?}", successor()), "\"/nonexistent/model\""),
            "model.dir: missing path",
        ),
    ];
    for (text, reason) in cases {
        std::fs::write(&s.spec, &text).unwrap();
        let out = host(&["check", s.spec.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1), "{reason}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(reason), "{reason}: {stderr}");
    }
    // Duplicates across files.
    std::fs::write(&s.spec, &good).unwrap();
    let out = host(&["check", s.spec.to_str().unwrap(), s.spec.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("name: duplicate"));
    // `serve` refuses the same way before starting anything.
    std::fs::write(&s.spec, format!("vpcus = 2\n{good}")).unwrap();
    let out = host(&[
        "serve",
        "--state",
        s.state.to_str().unwrap(),
        s.spec.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(starts(&s), 0);
    assert!(!s.state.exists(), "nothing was created");
}

#[test]
fn a_model_changed_on_disk_after_publication_is_not_launched() {
    let s = sleeping_setup();
    let model = s.dir.path().join("model");
    std::fs::create_dir(&model).unwrap();
    for f in ["model.json", "model.onnx", "tokenizer.json"] {
        std::fs::copy(successor().join(f), model.join(f)).unwrap();
    }
    let spec = std::fs::read_to_string(&s.spec)
        .unwrap()
        .replace(&format!("{:?}", successor()), &format!("{model:?}"));
    std::fs::write(&s.spec, spec).unwrap();
    let agent = Agent::start(&s);
    assert_eq!(status(&s)["status"], "running");
    let published = cli(&s, &["measure", "t"])["claims"]["model_blake3"].clone();
    assert_eq!(published, cocoon_attestation_model(&model));
    stop_vm(&s);
    // The host swaps the weights: the next launch is refused, not run under the old digest.
    std::fs::write(model.join("model.onnx"), b"other weights").unwrap();
    let out = host(&["start", "t", "--state", s.state.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("model.dir changed on disk"));
    let st = status(&s);
    assert_eq!(st["status"], "failed");
    assert_eq!(starts(&s), 1);
    drop(agent);
}

#[test]
fn concurrent_restarts_leave_exactly_one_process() {
    let s = sleeping_setup();
    let agent = Agent::start(&s);
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                let out = host(&["restart", "t", "--state", s.state.to_str().unwrap()]);
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
            });
        }
    });
    wait_for(Duration::from_secs(10), || {
        status(&s)["status"] == "running"
    });
    let pid = status(&s)["pid"].as_u64().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let launched = std::fs::read_to_string(s.dir.path().join("starts")).unwrap();
    let live: Vec<u64> = launched
        .lines()
        .map(|l| l.trim().parse().unwrap())
        .filter(|p| alive(*p))
        .collect();
    assert_eq!(live, vec![pid]);
    stop_vm(&s);
    drop(agent);
}

#[test]
fn a_taken_port_is_a_clear_start_error() {
    let s = sleeping_setup();
    let spec = std::fs::read_to_string(&s.spec).unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let spec: String = spec
        .lines()
        .map(|l| {
            if l.starts_with("api = ") {
                format!("api = {port}\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    std::fs::write(&s.spec, spec).unwrap();
    let agent = Agent::start(&s);
    let st = status(&s);
    assert_eq!(st["status"], "failed");
    assert!(st["last_exit"]
        .as_str()
        .unwrap()
        .contains(&format!("port {port} is not free")));
    assert_eq!(starts(&s), 0);
    drop(agent);
}

/// One plain HTTP/1.1 request on loopback; (status code, body).
fn http_get(port: u16, path: &str, authorization: Option<&str>) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let auth = authorization
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    let status = text.split(' ').nth(1).unwrap().parse().unwrap();
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
    (status, body)
}

#[test]
fn the_loopback_api_needs_the_bearer_token() {
    let s = setup("exec sleep 600", "");
    let port = free_port();
    let token_file = s.dir.path().join("api.token");
    let listen = format!("127.0.0.1:{port}");
    let token_arg = token_file.to_str().unwrap();
    let _agent = Agent::start_with(
        &s,
        &["--api-listen", &listen, "--api-token-file", token_arg],
    );
    let token = std::fs::read_to_string(&token_file).unwrap();
    let token = token.trim();
    let (status, body) = http_get(port, "/v1/vms", None);
    assert_eq!(status, 401, "{body}");
    let (status, _) = http_get(
        port,
        "/v1/vms",
        Some("Bearer wrong-token-wrong-token-wrong-token"),
    );
    assert_eq!(status, 401);
    let (status, body) = http_get(port, "/v1/vms", Some(&format!("Bearer {token}")));
    assert_eq!(status, 200, "{body}");
    let vms: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(vms[0]["name"], "t");
    let (status, body) = http_get(port, "/v1/vms/t/policy", Some(&format!("Bearer {token}")));
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("model_blake3"));
    cli(&s, &["stop", "t"]);
}

#[test]
fn a_non_loopback_api_address_is_refused_before_any_vm_starts() {
    let s = setup("exec sleep 600", "");
    let out = Command::new(HOST)
        .args(["serve", "--api-listen", "0.0.0.0:0", "--state"])
        .arg(&s.state)
        .arg(&s.spec)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("loopback"), "{stderr}");
    assert!(!s.state.join("t.json").exists(), "a VM was started");
}
