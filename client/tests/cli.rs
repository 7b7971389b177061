//! The `cocoon` binary against an in-process enclave (simulated TDX, RA-TLS on a loopback port)
//! serving the committed successor model (greedy "abc" -> "defgh").
#![cfg(feature = "sim")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use cocoon_attestation::policy::Policy;
use cocoon_attestation::ratls::{RaTlsVerifier, StaticCollateral, VerifierConfig};
use cocoon_attestation::sim::tdx::SimTdx;
use cocoon_client::{Connector, Timeouts};
use cocoon_enclave::identity::{Identity, IdentityConfig};
use cocoon_enclave::inference::{ort_library_path, workspace_root, Engine, EngineConfig};
use cocoon_enclave::openai::{self, ApiConfig, OpenAi};
use cocoon_enclave::rotation::IdentityResolver;
use cocoon_enclave::server::{serve, Enclave, Router, ServerHandle, ServerOptions};
use cocoon_enclave::sim::SimAttester;
use cocoon_enclave::Attester;
use tokio::net::TcpListener;

/// Every wait of a test (the binary's own network steps get `--timeout 10`).
const STEP: Duration = Duration::from_secs(30);

const SIM_POLICY: &str = "version = 1\nallow_simulated = true\n";

fn ort_available() -> bool {
    let path = ort_library_path();
    if path.is_file() {
        return true;
    }
    if std::env::var_os("COCOON_REQUIRE_ORT").is_some() {
        panic!(
            "COCOON_REQUIRE_ORT is set but the ONNX Runtime library is missing at {} (run scripts/setup)",
            path.display()
        );
    }
    use std::io::Write;
    let _ = std::io::stderr().write_all(
        format!(
            "\n!!!!!!!! SKIPPED: ONNX Runtime library not found at {} — run scripts/setup !!!!!!!!\n",
            path.display()
        )
        .as_bytes(),
    );
    false
}

struct Api {
    handle: ServerHandle,
}

impl Api {
    fn addr(&self) -> String {
        self.handle.local_addr().to_string()
    }

    /// The enclave's /metrics, read over a verified connection of our own.
    async fn metrics(&self) -> String {
        let policy = Policy::from_toml(SIM_POLICY).unwrap();
        let mut config = VerifierConfig::new(policy);
        let collateral = SimTdx::new().unwrap().collateral().unwrap();
        config.collateral = Some(Arc::new(StaticCollateral::new(vec![collateral]).unwrap()));
        let connector =
            Connector::new(Arc::new(RaTlsVerifier::new(config).unwrap()), None).unwrap();
        let timeouts = Timeouts {
            connect: STEP,
            handshake: STEP,
            request: STEP,
        };
        let mut conn = tokio::time::timeout(
            STEP,
            connector.connect_addr(self.handle.local_addr(), timeouts),
        )
        .await
        .expect("connect in time")
        .expect("attested connection");
        let (status, body) = conn.get("/metrics").await.unwrap();
        assert!(status.is_success());
        String::from_utf8(body.to_vec()).unwrap()
    }
}

async fn start() -> Api {
    let attester: Arc<dyn Attester> = Arc::new(SimAttester::tdx().unwrap());
    let identity = Identity::issue_now(attester.as_ref(), &IdentityConfig::default()).unwrap();
    let resolver = Arc::new(IdentityResolver::new(identity));
    let state = OpenAi::new(ApiConfig::default());
    let engine = Engine::load(EngineConfig {
        model_dir: workspace_root().join("tests/data/models/successor"),
        threads: 1,
        max_sequences: 4,
        queue_capacity: 16,
        max_context: None,
    })
    .unwrap();
    state.set_engine(engine);
    let router = openai::mount(Router::new(), Arc::clone(&state));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let handle = serve(
        listener,
        Enclave {
            attester,
            resolver,
            client_verifier: None,
        },
        router,
        ServerOptions::default(),
    )
    .unwrap();
    Api { handle }
}

/// A policy file in a fresh temporary directory (one per call: tests run in parallel).
fn policy_file(toml: &str) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("cocoon-cli-test-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("policy.toml");
    std::fs::write(&path, toml).unwrap();
    path
}

/// A policy allowing simulated evidence but pinning an MRTD the simulated TD does not have.
fn other_mrtd_policy() -> PathBuf {
    policy_file(&format!(
        "version = 1\nallow_simulated = true\n[tdx]\nmrtd = [\"{}\"]\n",
        "ab".repeat(48)
    ))
}

/// Runs the real binary with `args` (off the runtime's threads, bounded by [`STEP`]).
async fn cocoon(args: Vec<String>) -> Output {
    let run = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_cocoon"))
            .args(&args)
            .output()
            .unwrap()
    });
    tokio::time::timeout(STEP, run)
        .await
        .expect("cocoon finished in time")
        .unwrap()
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attest_prints_the_verified_identity_as_json_and_exits_0() {
    if !ort_available() {
        return;
    }
    let api = start().await;
    let policy = policy_file(SIM_POLICY);
    let out = cocoon(args(&[
        "attest",
        &format!("https://{}", api.addr()),
        "--policy",
        policy.to_str().unwrap(),
        "--trust-simulated-root",
        "--nonce",
        "--json",
        "--timeout",
        "10",
    ]))
    .await;
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for key in [
        "verdict",
        "platform",
        "tcb_status",
        "measurements",
        "claims",
    ] {
        assert!(json.get(key).is_some(), "missing {key}: {json}");
    }
    assert_eq!(json["verdict"], "verified");
    assert_eq!(json["measurements"]["mrtd"].as_str().unwrap().len(), 96);
    assert_eq!(json["claims"]["model_blake3"].as_str().unwrap().len(), 64);
    assert_eq!(json["fresh"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attest_under_a_policy_pinning_another_mrtd_exits_1_naming_the_mrtd() {
    if !ort_available() {
        return;
    }
    let api = start().await;
    let policy = other_mrtd_policy();
    let out = cocoon(args(&[
        "attest",
        &api.addr(),
        "--policy",
        policy.to_str().unwrap(),
        "--trust-simulated-root",
        "--timeout",
        "10",
    ]))
    .await;
    assert_eq!(out.status.code(), Some(1), "stdout: {}", text(&out.stdout));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("refused"), "{stderr}");
    assert!(stderr.contains("tdx.mrtd"), "{stderr}");
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_prints_exactly_the_greedy_answer_of_the_successor_model() {
    if !ort_available() {
        return;
    }
    let api = start().await;
    let policy = policy_file(SIM_POLICY);
    let out = cocoon(args(&[
        "chat",
        &api.addr(),
        "--policy",
        policy.to_str().unwrap(),
        "--trust-simulated-root",
        "--max-tokens",
        "5",
        "--temperature",
        "0",
        "--timeout",
        "10",
        "abc",
    ]))
    .await;
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "defgh\n");
    let metrics = api.metrics().await;
    assert!(
        metrics
            .contains("cocoon_requests_total{route=\"/v1/chat/completions\",status=\"200\"} 1\n"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_refused_by_the_policy_sends_no_request_and_exits_1() {
    if !ort_available() {
        return;
    }
    let api = start().await;
    let policy = other_mrtd_policy();
    let out = cocoon(args(&[
        "chat",
        &api.addr(),
        "--policy",
        policy.to_str().unwrap(),
        "--trust-simulated-root",
        "--timeout",
        "10",
        "abc",
    ]))
    .await;
    assert_eq!(out.status.code(), Some(1), "stdout: {}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains("tdx.mrtd"),
        "{}",
        text(&out.stderr)
    );
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    let metrics = api.metrics().await;
    assert!(!metrics.contains("/v1/chat/completions"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_without_trusting_the_simulated_root_is_refused() {
    if !ort_available() {
        return;
    }
    let api = start().await;
    let policy = policy_file(SIM_POLICY);
    let out = cocoon(args(&[
        "chat",
        &api.addr(),
        "--policy",
        policy.to_str().unwrap(),
        "--timeout",
        "10",
        "abc",
    ]))
    .await;
    assert_eq!(out.status.code(), Some(1), "stdout: {}", text(&out.stdout));
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    let metrics = api.metrics().await;
    assert!(!metrics.contains("/v1/chat/completions"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_address_exits_2() {
    let policy = policy_file(SIM_POLICY);
    for addr in ["no-port-here", "http://127.0.0.1:1", "127.0.0.1:notaport"] {
        let out = cocoon(args(&[
            "attest",
            addr,
            "--policy",
            policy.to_str().unwrap(),
            "--timeout",
            "5",
        ]))
        .await;
        assert_eq!(out.status.code(), Some(2), "{addr}: {}", text(&out.stderr));
        assert!(
            text(&out.stderr).contains("address"),
            "{}",
            text(&out.stderr)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_streaming_hands_over_the_answer_in_several_chunks_as_it_is_generated() {
    if !ort_available() {
        return;
    }
    let api = start().await;
    let policy = Policy::from_toml(SIM_POLICY).unwrap();
    let mut config = VerifierConfig::new(policy);
    let collateral = SimTdx::new().unwrap().collateral().unwrap();
    config.collateral = Some(Arc::new(StaticCollateral::new(vec![collateral]).unwrap()));
    let connector = Connector::new(Arc::new(RaTlsVerifier::new(config).unwrap()), None).unwrap();
    let timeouts = Timeouts {
        connect: STEP,
        handshake: STEP,
        request: STEP,
    };
    let mut conn = connector
        .connect_addr(api.handle.local_addr(), timeouts)
        .await
        .unwrap();
    let body = serde_json::json!({
        "messages": [{"role": "user", "content": "abc"}],
        "max_tokens": 5,
        "temperature": 0,
        "stream": true,
    });
    let request = http::Request::post("/v1/chat/completions")
        .header("content-type", "application/json")
        .body(http_body_util::Full::new(bytes::Bytes::from(
            body.to_string(),
        )))
        .unwrap();
    let mut chunks = 0;
    let mut lines = cocoon_client::SseDataLines::new(1 << 20);
    let mut answer = String::new();
    let status = conn
        .request_streaming(request, |chunk| {
            chunks += 1;
            for data in lines.push(chunk)? {
                if data != "[DONE]" {
                    let event: serde_json::Value = serde_json::from_str(&data).unwrap();
                    if let Some(t) = event["choices"][0]["delta"]["content"].as_str() {
                        answer.push_str(t);
                    }
                }
            }
            Ok(())
        })
        .await
        .unwrap();
    assert!(status.is_success());
    assert_eq!(answer, "defgh");
    assert!(chunks >= 2, "the body came in {chunks} chunk(s)");
}
