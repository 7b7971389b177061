//! Shared helpers for the inference tests: where the test models are, whether ONNX Runtime is
//! there, and collecting a stream.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic,
    dead_code
)]

use std::path::PathBuf;
use std::sync::Arc;

use cocoon_enclave::inference::{
    ort_library_path, workspace_root, Engine, EngineConfig, FinishReason, GenerationEvent,
    GenerationRequest, GenerationStream, SamplingParams,
};

/// The committed test models (`COCOON_TEST_MODELS_DIR` overrides, for development).
pub fn model_dir(name: &str) -> PathBuf {
    match std::env::var_os("COCOON_TEST_MODELS_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d).join(name),
        _ => workspace_root().join("tests/data/models").join(name),
    }
}

/// Whether the ONNX Runtime library is present. Without it, tests skip loudly unless
/// `COCOON_REQUIRE_ORT` is set (CI sets it), in which case they fail.
pub fn ort_available() -> bool {
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
    loud(&format!(
        "\n!!!!!!!! SKIPPED: ONNX Runtime library not found at {} — run scripts/setup (set COCOON_REQUIRE_ORT=1 to make this a failure) !!!!!!!!\n",
        path.display()
    ));
    false
}

/// Writes straight to the process's stderr, past the test harness's output capture, so that a
/// skip is seen even when the test passes.
pub fn loud(message: &str) {
    use std::io::Write;
    let _ = std::io::stderr().write_all(message.as_bytes());
}

pub fn config(name: &str, max_sequences: usize, queue_capacity: usize) -> EngineConfig {
    EngineConfig {
        model_dir: model_dir(name),
        threads: 1,
        max_sequences,
        queue_capacity,
        max_context: None,
        execution_provider: cocoon_enclave::inference::ExecutionProvider::Cpu,
    }
}

pub fn load(name: &str, max_sequences: usize, queue_capacity: usize) -> Arc<Engine> {
    Engine::load(config(name, max_sequences, queue_capacity)).expect("engine loads")
}

pub fn greedy(max_tokens: usize) -> SamplingParams {
    SamplingParams {
        max_tokens,
        temperature: 0.0,
        ..SamplingParams::default()
    }
}

pub fn request(prompt: Vec<u32>, params: SamplingParams) -> GenerationRequest {
    GenerationRequest {
        prompt_tokens: prompt,
        params,
        deadline: None,
    }
}

/// Everything a finished stream said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub ids: Vec<u32>,
    pub text: String,
    pub reason: FinishReason,
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
}

pub async fn collect(mut stream: GenerationStream) -> Outcome {
    let mut ids = Vec::new();
    let mut text = String::new();
    loop {
        match stream.next().await.expect("stream ends with Finished") {
            GenerationEvent::Token { token_id, text: t } => {
                ids.push(token_id);
                text.push_str(&t);
            }
            GenerationEvent::Finished {
                reason,
                prompt_tokens,
                completion_tokens,
            } => {
                assert!(stream.next().await.is_none(), "nothing after Finished");
                return Outcome {
                    ids,
                    text,
                    reason,
                    prompt_tokens,
                    completion_tokens,
                };
            }
        }
    }
}

pub async fn generate(engine: &Engine, prompt: Vec<u32>, params: SamplingParams) -> Outcome {
    collect(engine.submit(request(prompt, params)).expect("submitted")).await
}

/// A verifier trusting the simulated roots (policy `allow_simulated = true`, the simulated TDX
/// collateral).
#[cfg(feature = "sim")]
pub fn sim_verifier() -> Arc<cocoon_attestation::ratls::RaTlsVerifier> {
    use cocoon_attestation::ratls::{RaTlsVerifier, StaticCollateral, VerifierConfig};
    let policy =
        cocoon_attestation::policy::Policy::from_toml("version = 1\nallow_simulated = true\n")
            .unwrap();
    let collateral = cocoon_attestation::sim::tdx::SimTdx::new()
        .unwrap()
        .collateral()
        .unwrap();
    let mut config = VerifierConfig::new(policy);
    config.collateral = Some(Arc::new(StaticCollateral::new(vec![collateral]).unwrap()));
    Arc::new(RaTlsVerifier::new(config).unwrap())
}

/// Polls `check` every 10 ms until it holds; fails the test after `within`.
pub async fn eventually(what: &str, within: std::time::Duration, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + within;
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}
