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

mod model_enclave;

use std::process::{Command, Output};

use cocoon_client::Connector;
use model_enclave::{
    ort_available, policy_file, start, PolicyFile, OTHER_MRTD_POLICY, SIM_POLICY, STEP,
};

fn other_mrtd_policy() -> PolicyFile {
    policy_file(OTHER_MRTD_POLICY)
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
    assert_eq!(
        json["claims"]["model"]["blake3"].as_str().unwrap().len(),
        64
    );
    assert_eq!(json["claims"]["hpke_public_key"]["kem_id"], 0x20);
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
    // The claims advertise an HPKE key: the prompt went sealed.
    assert!(
        metrics.contains("cocoon_sealed_requests_total 1\n"),
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
    let connector = Connector::new(model_enclave::sim_verifier(SIM_POLICY), None).unwrap();
    let mut conn = connector
        .connect_addr(api.handle.local_addr(), model_enclave::timeouts())
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attest_prints_a_human_report_naming_the_model_and_the_sealing_key() {
    if !ort_available() {
        return;
    }
    let api = start().await;
    let policy = policy_file(SIM_POLICY);
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
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let report = text(&out.stdout);
    let key = hex::encode(api.state.hpke_public_key().unwrap().key());
    for expected in [
        "verified: platform sim-tdx (simulated)",
        "tcb status: UpToDate",
        "  mrtd ",
        "  model_blake3 ",
        &format!("  hpke_public_key   kem 0x0020 {key}"),
        "sealing: prompts are sealed to the HPKE key above",
    ] {
        assert!(
            report.contains(expected),
            "missing {expected:?} in:\n{report}"
        );
    }
    assert!(!report.contains("fresh attestation"), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attest_checks_tdx_evidence_against_the_collateral_file_given() {
    use cocoon_attestation::sim::tdx::{SimCollateralOptions, SimTdx};
    use cocoon_attestation::tdx::TcbStatus;
    if !ort_available() {
        return;
    }
    let api = start().await;
    let policy = policy_file(SIM_POLICY);
    let dir = policy.parent().unwrap();
    let sim = SimTdx::new().unwrap();
    let good = dir.join("collateral.json");
    std::fs::write(&good, sim.collateral().unwrap().to_json()).unwrap();
    let out_of_date = dir.join("out-of-date.json");
    let options = SimCollateralOptions {
        tcb_status: TcbStatus::OutOfDate,
        ..SimCollateralOptions::default()
    };
    std::fs::write(
        &out_of_date,
        sim.collateral_with(&options).unwrap().to_json(),
    )
    .unwrap();
    let run = |collateral: std::path::PathBuf| {
        args(&[
            "attest",
            &api.addr(),
            "--policy",
            policy.to_str().unwrap(),
            "--trust-simulated-root",
            "--collateral",
            collateral.to_str().unwrap(),
            "--timeout",
            "10",
        ])
    };
    let out = cocoon(run(good)).await;
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert!(text(&out.stdout).contains("tcb status: UpToDate"));
    // The same enclave judged with collateral that calls its TCB out of date: the report
    // follows the file given.
    let out = cocoon(run(out_of_date)).await;
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("tcb status: OutOfDate"),
        "{}",
        text(&out.stdout)
    );
}
