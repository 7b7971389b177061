//! The real model: SmolLM2-135M-Instruct (converted by `scripts/setup` into
//! `.cache/models/smollm2-135m-instruct/`) answers the Paris question through the engine,
//! alone and batched with other requests. Skips loudly without `scripts/setup`'s outputs unless
//! `COCOON_REQUIRE_ORT` is set (CI), which makes their absence a failure.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]

mod inference_support;

use cocoon_enclave::inference::{workspace_root, ChatMessage, Engine, EngineConfig, FinishReason};
use inference_support::*;

fn smollm2_dir() -> Option<std::path::PathBuf> {
    let dir = workspace_root().join(".cache/models/smollm2-135m-instruct");
    if dir.join("model.onnx").is_file() {
        return Some(dir);
    }
    if std::env::var_os("COCOON_REQUIRE_ORT").is_some() {
        panic!(
            "COCOON_REQUIRE_ORT is set but {} is missing (run scripts/setup)",
            dir.display()
        );
    }
    loud(&format!(
        "\n!!!!!!!! SKIPPED: SmolLM2 not found at {} — run scripts/setup !!!!!!!!\n",
        dir.display()
    ));
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smollm2_answers_paris_alone_and_batched_identically() {
    if !ort_available() {
        return;
    }
    let Some(dir) = smollm2_dir() else { return };
    let engine = Engine::load(EngineConfig {
        model_dir: dir,
        threads: 2,
        max_sequences: 4,
        queue_capacity: 8,
        max_context: None,
        execution_provider: cocoon_enclave::inference::ExecutionProvider::Cpu,
    })
    .unwrap();
    assert_eq!(engine.info().num_layers, 30);
    assert_eq!(engine.info().vocab_size, 49152);
    let ask = |q: &str| {
        let text = engine
            .apply_chat_template(
                &[ChatMessage {
                    role: "user".to_owned(),
                    content: q.to_owned(),
                }],
                true,
            )
            .unwrap();
        engine.tokenize(&text).unwrap()
    };
    let paris = ask("What is the capital of France?");
    let solo = generate(&engine, paris.clone(), greedy(24)).await;
    assert!(solo.text.contains("Paris"), "answer: {:?}", solo.text);
    assert!(matches!(
        solo.reason,
        FinishReason::Stop | FinishReason::Length
    ));

    // Batched with other questions of other lengths (ragged pasts): the same tokens.
    let others = [
        "Name a primary color.",
        "What is 2 + 2? Answer with a number only, please.",
        "hi",
    ];
    let mut streams = vec![engine.submit(request(paris.clone(), greedy(24))).unwrap()];
    for q in others {
        streams.push(engine.submit(request(ask(q), greedy(24))).unwrap());
    }
    let handles: Vec<_> = streams
        .into_iter()
        .map(|s| tokio::spawn(collect(s)))
        .collect();
    let mut outs = Vec::new();
    for h in handles {
        outs.push(h.await.unwrap());
    }
    assert_eq!(outs[0].ids, solo.ids);
    assert_eq!(outs[0].text, solo.text);
    assert!(engine.stats().decode_rows_total > engine.stats().decode_steps);
}
