//! The configuration file: the committed example parses to the documented values; the binary
//! refuses a bad file naming the key; `serve --config` with a model serves the OpenAI API and
//! drains on SIGTERM.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]

use std::path::PathBuf;
use std::process::{Command, Output};

use cocoon_enclave::config::{ConfigError, EnclaveConfig};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cocoon-enclave"))
        .args(args)
        .output()
        .expect("running cocoon-enclave")
}

#[test]
fn the_example_config_parses_to_the_documented_values() {
    let path = root().join("docs/examples/enclave.toml");
    let config = EnclaveConfig::load(&path).unwrap();
    assert_eq!(config.listen, Some("0.0.0.0:8443".parse().unwrap()));
    assert_eq!(
        config.model.dir,
        Some(
            root()
                .join("docs/examples")
                .join("../../.cache/models/smollm2-135m-instruct")
        )
    );
    assert_eq!(config.model.id.as_deref(), Some("smollm2-135m-instruct"));
    assert_eq!(config.model.aliases, vec!["smollm2".to_owned()]);
    assert_eq!(config.model.threads, Some(2));
    assert_eq!(config.model.max_context, None);
    let l = &config.limits;
    assert_eq!(l.max_body_bytes, Some(1_048_576));
    assert_eq!(l.max_sequences, Some(8));
    assert_eq!(l.queue_capacity, Some(64));
    assert_eq!(l.request_timeout_secs, Some(600));
    assert_eq!(l.default_max_tokens, Some(256));
    assert_eq!(l.max_tokens_limit, Some(2048));
    assert_eq!(l.retry_after_secs, Some(1));
    assert_eq!(l.shutdown_grace_secs, Some(30));
    assert_eq!(l.max_connections, Some(4096));
    assert_eq!(l.max_concurrent_bodies, Some(64));
    let a = &config.attestation;
    assert_eq!(a.attester.as_deref(), Some("auto"));
    assert_eq!(a.cert_lifetime_secs, Some(86400));
    assert_eq!(a.key.as_deref(), Some("ecdsa-p256"));
    assert_eq!(a.subject_alt_names, Some(vec!["localhost".to_owned()]));
    assert_eq!(config.tls.mutual, Some(false));
    assert_eq!(config.tls.policy, None);
    assert_eq!(config.log.filter.as_deref(), Some("info"));
    assert_eq!(config.log.format.as_deref(), Some("text"));
    let h = &config.hpke;
    assert_eq!(h.mode, Some(cocoon_enclave::config::HpkeMode::Optional));
    assert_eq!(h.replay_window_secs, Some(300));
    assert_eq!(h.replay_capacity, Some(262_144));
}

#[test]
fn a_config_file_over_the_size_limit_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.toml");
    std::fs::write(&path, "#".repeat(2 * 1024 * 1024)).unwrap();
    assert!(matches!(
        EnclaveConfig::load(&path),
        Err(ConfigError::TooLarge { .. })
    ));
}

#[test]
fn serve_refuses_a_config_with_an_unknown_key_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("enclave.toml");
    std::fs::write(
        &path,
        "listen = \"127.0.0.1:0\"\n[limits]\nqueue_size = 3\n",
    )
    .unwrap();
    let output = run(&["serve", "--config", path.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("queue_size"), "{stderr}");
}

#[test]
fn serve_without_a_listen_address_anywhere_says_where_to_give_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("enclave.toml");
    std::fs::write(&path, "[model]\nthreads = 1\n").unwrap();
    let output = run(&["serve", "--config", path.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--listen"), "{stderr}");
}

#[test]
fn mutual_mode_from_the_file_requires_a_policy() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("enclave.toml");
    std::fs::write(&path, "listen = \"127.0.0.1:0\"\n[tls]\nmutual = true\n").unwrap();
    let output = run(&["serve", "--config", path.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("policy"), "{stderr}");
}

/// The whole binary: config file with the successor model and the simulated TEE, a completion
/// over RA-TLS, a sealed completion to the HPKE key the certificate's claims publish, the same
/// key after the certificate rotated, then SIGTERM: a clean exit.
#[cfg(feature = "sim")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_with_a_config_file_serves_completions_and_exits_cleanly_on_sigterm() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    use std::sync::Arc;
    use std::time::Duration;

    use bytes::Bytes;
    use cocoon_attestation::policy::Policy;
    use cocoon_attestation::ratls::{RaTlsVerifier, StaticCollateral, VerifierConfig};
    use cocoon_attestation::sim::tdx::SimTdx;
    use cocoon_client::{Connector, Timeouts};
    use http_body_util::Full;

    let ort = cocoon_enclave::inference::ort_library_path();
    if !ort.is_file() {
        assert!(
            std::env::var_os("COCOON_REQUIRE_ORT").is_none(),
            "COCOON_REQUIRE_ORT is set but {} is missing",
            ort.display()
        );
        eprintln!("\n!!!!!!!! SKIPPED: ONNX Runtime library not found at {} — run scripts/setup !!!!!!!!\n", ort.display());
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("enclave.toml");
    let model = root().join("tests/data/models/successor");
    std::fs::write(
        &path,
        format!(
            "listen = \"127.0.0.1:0\"\n[model]\ndir = {:?}\nid = \"succ\"\nthreads = 1\n\
             [limits]\nmax_sequences = 2\nshutdown_grace_secs = 5\n\
             [attestation]\nattester = \"sim-tdx\"\ncert_lifetime_secs = 6\n\
             [log]\nformat = \"json\"\n[hpke]\nmode = \"optional\"\nreplay_window_secs = 60\n",
            model.display().to_string()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_cocoon-enclave"))
        .args(["serve", "--config", path.to_str().unwrap()])
        .env("ORT_DYLIB_PATH", &ort)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(Duration::from_secs(30));
    let guard = scopeguard(child.id());
    let line = line.expect("a startup line");
    let addr = line
        .strip_prefix("cocoon-enclave: listening on ")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("{line}"))
        .to_owned();

    let policy = Policy::from_toml("version = 1\nallow_simulated = true\n").unwrap();
    let mut config = VerifierConfig::new(policy);
    config.collateral = Some(Arc::new(
        StaticCollateral::new(vec![SimTdx::new().unwrap().collateral().unwrap()]).unwrap(),
    ));
    let connector = Connector::new(Arc::new(RaTlsVerifier::new(config).unwrap()), None).unwrap();
    let step = Duration::from_secs(30);
    let mut conn = connector
        .connect(
            &addr,
            Timeouts {
                connect: step,
                handshake: step,
                request: step,
            },
        )
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (status, _) = conn.get("/health").await.unwrap();
        if status == http::StatusCode::OK {
            break;
        }
        assert_eq!(status, http::StatusCode::SERVICE_UNAVAILABLE);
        assert!(std::time::Instant::now() < deadline, "model never loaded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let request = http::Request::post("/v1/completions")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(
            r#"{"model":"succ","prompt":"abc","max_tokens":5,"temperature":0}"#,
        )))
        .unwrap();
    let response = conn.request(request).await.unwrap();
    assert_eq!(response.status(), http::StatusCode::OK);
    let v: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
    assert_eq!(v["choices"][0]["text"], "defgh");
    assert_eq!(v["model"], "succ");

    // Sealed to the key in the certificate's claims.
    use cocoon_attestation::bodies::{http as sealed, RequestAad, RequestSealer};
    let key = conn.peer().claims.as_ref().unwrap().hpke_public_key.clone();
    let key = key.expect("the claims publish an HPKE key");
    let aad = RequestAad {
        method: "POST".into(),
        path: "/v1/completions".into(),
        request_id: [0x5a; 16],
        timestamp: cocoon_client::unix_now(),
    };
    let (envelope, mut opener) = RequestSealer::seal_request(
        &key,
        br#"{"model":"succ","prompt":"abc","max_tokens":5,"temperature":0}"#,
        &aad,
    )
    .unwrap();
    let request = http::Request::post("/v1/completions")
        .header("content-type", sealed::SEALED_CONTENT_TYPE)
        .header(sealed::REQUEST_ID_HEADER, hex::encode(aad.request_id))
        .header(sealed::TIMESTAMP_HEADER, aad.timestamp.to_string())
        .body(Full::new(Bytes::from(envelope.0)))
        .unwrap();
    let response = conn.request(request).await.unwrap();
    assert_eq!(response.status(), http::StatusCode::OK);
    let plain = opener.open_chunk(response.body()).unwrap();
    opener.finish().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&plain).unwrap();
    assert_eq!(v["choices"][0]["text"], "defgh");
    let first_spki = conn.peer().claims.as_ref().unwrap().tls_spki_sha256;
    drop(conn);

    // The certificate rotates (lifetime 6 s, renewed after 4 s); the HPKE key stays.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let conn = connector
            .connect(
                &addr,
                Timeouts {
                    connect: step,
                    handshake: step,
                    request: step,
                },
            )
            .await
            .unwrap();
        let claims = conn.peer().claims.clone().unwrap();
        if claims.tls_spki_sha256 != first_spki {
            assert_eq!(claims.hpke_public_key.as_ref(), Some(&key));
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never rotated");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    let exit = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("exits within 30 s of SIGTERM")
        .unwrap();
    std::mem::forget(guard);
    assert_eq!(exit.code(), Some(0));
}

/// Kills the process if the test fails before it exits on its own.
#[cfg(feature = "sim")]
fn scopeguard(pid: u32) -> impl Drop {
    struct Kill(u32);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = Command::new("kill")
                .args(["-KILL", &self.0.to_string()])
                .status();
        }
    }
    Kill(pid)
}
