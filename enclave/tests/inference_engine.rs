//! The inference engine end to end on the committed test models: exact greedy output of the
//! successor model, batching that does not change outputs, seeded sampling, stop strings,
//! limits, cancellation, deadlines and shutdown.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]

mod inference_support;

use std::time::{Duration, Instant};

use cocoon_enclave::inference::{
    ChatMessage, Engine, FinishReason, GenerationEvent, GenerationRequest, InferenceError,
    SamplingParams,
};
use inference_support::*;

const SUCCESSOR: &str = "successor";
const TINY_GPT: &str = "tiny-gpt";

/// The successor model's greedy continuation of `last`: last+1, last+2, ... (mod vocab).
fn successors(last: u32, n: usize, vocab: usize) -> Vec<u32> {
    let v = vocab as u64;
    (1..=n as u64)
        .map(|k| ((u64::from(last) + k) % v) as u32)
        .collect()
}

/// A prompt for the successor model whose continuation stays clear of EOS for `n` tokens.
fn successor_prompt(engine: &Engine, n: usize) -> Vec<u32> {
    let prompt = engine.tokenize("abc").unwrap();
    let cont = successors(*prompt.last().unwrap(), n, engine.info().vocab_size);
    assert!(
        cont.iter()
            .all(|t| !engine.info().eos_token_ids.contains(t)),
        "the test prompt must not run into EOS"
    );
    prompt
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn successor_greedy_output_is_each_next_token_with_exact_text() {
    if !ort_available() {
        return;
    }
    let engine = load(SUCCESSOR, 4, 16);
    let prompt = successor_prompt(&engine, 5);
    assert_eq!(prompt, engine.tokenize("abc").unwrap());
    let out = generate(&engine, prompt.clone(), greedy(5)).await;
    assert_eq!(
        out.ids,
        successors(*prompt.last().unwrap(), 5, engine.info().vocab_size)
    );
    assert_eq!(out.text, "defgh");
    assert_eq!(out.reason, FinishReason::Length);
    assert_eq!(out.prompt_tokens, prompt.len());
    assert_eq!(out.completion_tokens, 5);
    let stats = engine.stats();
    assert_eq!(stats.finished_length, 1);
    assert_eq!(stats.completion_tokens_total, 5);
    assert_eq!(stats.prompt_tokens_total, prompt.len() as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_concurrent_successor_generations_equal_the_solo_result() {
    if !ort_available() {
        return;
    }
    let engine = load(SUCCESSOR, 16, 16);
    let prompt = successor_prompt(&engine, 12);
    let solo = generate(&engine, prompt.clone(), greedy(12)).await;
    let streams: Vec<_> = (0..16)
        .map(|_| engine.submit(request(prompt.clone(), greedy(12))).unwrap())
        .collect();
    let handles: Vec<_> = streams
        .into_iter()
        .map(|s| tokio::spawn(collect(s)))
        .collect();
    for h in handles {
        assert_eq!(h.await.unwrap(), solo);
    }
    assert_eq!(solo.text, "defghijklmno");
    assert!(
        engine.stats().decode_rows_total > engine.stats().decode_steps,
        "some decode steps carried more than one sequence"
    );
}

/// Prompts of different lengths so that batched pasts are ragged (left padding).
fn tiny_prompts(engine: &Engine) -> Vec<Vec<u32>> {
    let texts = [
        "a",
        "hello world",
        "The quick brown fox",
        "xyz",
        "0123456789",
        "Paris?",
        "ab",
        "{[()]}",
        "tiny gpt test prompt",
        "q",
        "mixed Case 42",
        "!!",
        "zzzzzzzz",
        "lorem ipsum",
        "k",
        "end.",
    ];
    texts.iter().map(|t| engine.tokenize(t).unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiny_gpt_batched_greedy_token_ids_equal_solo() {
    if !ort_available() {
        return;
    }
    let engine = load(TINY_GPT, 16, 16);
    let prompts = tiny_prompts(&engine);
    let mut solo = Vec::new();
    for p in &prompts {
        solo.push(generate(&engine, p.clone(), greedy(20)).await);
    }
    // All sixteen at once: they join between steps and decode in shared batched runs.
    let streams: Vec<_> = prompts
        .iter()
        .map(|p| engine.submit(request(p.clone(), greedy(20))).unwrap())
        .collect();
    let handles: Vec<_> = streams
        .into_iter()
        .map(|s| tokio::spawn(collect(s)))
        .collect();
    for (h, want) in handles.into_iter().zip(&solo) {
        let got = h.await.unwrap();
        assert_eq!(got.ids, want.ids);
        assert_eq!(got.text, want.text);
        assert_eq!(got.reason, want.reason);
    }
    let stats = engine.stats();
    assert!(stats.decode_rows_total > stats.decode_steps);
    // Once all sixteen were in, steps reused the previous step's batch tensors.
    assert!(stats.decode_steps_reusing_batch > 0);
    // Not a degenerate model: different prompts lead to different continuations.
    let distinct: std::collections::HashSet<_> = solo.iter().map(|o| o.ids.clone()).collect();
    assert!(distinct.len() > 1);
}

fn sampled(seed: u64) -> SamplingParams {
    SamplingParams {
        max_tokens: 24,
        temperature: 1.5,
        top_p: 0.95,
        top_k: 50,
        seed: Some(seed),
        stop: Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeded_sampling_is_reproducible_and_seeds_differ() {
    if !ort_available() {
        return;
    }
    let engine = load(TINY_GPT, 4, 16);
    let prompt = engine.tokenize("hello world").unwrap();
    let a = generate(&engine, prompt.clone(), sampled(7)).await;
    let b = generate(&engine, prompt.clone(), sampled(7)).await;
    let c = generate(&engine, prompt.clone(), sampled(8)).await;
    assert_eq!(a.ids, b.ids);
    assert_eq!(a.text, b.text);
    assert_ne!(a.ids, c.ids);
    let greedy_out = generate(&engine, prompt, greedy(24)).await;
    assert_ne!(a.ids, greedy_out.ids, "temperature 1.5 is not greedy");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_string_spanning_tokens_ends_generation_and_is_not_returned() {
    if !ort_available() {
        return;
    }
    let engine = load(SUCCESSOR, 4, 16);
    let prompt = successor_prompt(&engine, 10);
    let params = SamplingParams {
        stop: vec!["zz".to_owned(), "fgh".to_owned()],
        ..greedy(10)
    };
    let out = generate(&engine, prompt, params).await;
    assert_eq!(out.text, "de");
    assert_eq!(out.reason, FinishReason::Stop);
    // d, e, f, g, h: the stop string completes at the fifth token.
    assert_eq!(out.completion_tokens, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_held_for_a_possible_stop_string_is_released_at_length() {
    if !ort_available() {
        return;
    }
    let engine = load(SUCCESSOR, 4, 16);
    let prompt = successor_prompt(&engine, 3);
    let params = SamplingParams {
        stop: vec!["fgX".to_owned()],
        ..greedy(3)
    };
    let out = generate(&engine, prompt, params).await;
    assert_eq!(out.text, "def");
    assert_eq!(out.reason, FinishReason::Length);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_tokens_finishes_with_length() {
    if !ort_available() {
        return;
    }
    let engine = load(TINY_GPT, 4, 16);
    let out = generate(&engine, engine.tokenize("ab").unwrap(), greedy(7)).await;
    assert_eq!(out.reason, FinishReason::Length);
    assert_eq!(out.completion_tokens, 7);
    assert_eq!(out.ids.len(), 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eos_finishes_with_stop_and_yields_no_text() {
    if !ort_available() {
        return;
    }
    let engine = load(SUCCESSOR, 4, 16);
    let eos = engine.info().eos_token_ids[0];
    let vocab = engine.info().vocab_size as u32;
    // The successor of the token before EOS is EOS.
    let before = (eos + vocab - 1) % vocab;
    let out = generate(&engine, vec![before], greedy(10)).await;
    assert_eq!(out.ids, vec![eos]);
    assert_eq!(out.text, "");
    assert_eq!(out.reason, FinishReason::Stop);
    assert_eq!(out.completion_tokens, 1);
    assert_eq!(engine.stats().finished_stop, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_queue_refuses_with_queue_full() {
    if !ort_available() {
        return;
    }
    let engine = load(SUCCESSOR, 1, 1);
    let prompt = successor_prompt(&engine, 8);
    engine.pause_decoding(true);
    // A takes the only slot (prefilled: its first token arrives), B waits, C is refused.
    let mut a = engine.submit(request(prompt.clone(), greedy(8))).unwrap();
    assert!(matches!(
        a.next().await,
        Some(GenerationEvent::Token { .. })
    ));
    let b = engine.submit(request(prompt.clone(), greedy(8))).unwrap();
    let c = engine.submit(request(prompt.clone(), greedy(8)));
    assert!(matches!(c, Err(InferenceError::QueueFull { capacity: 1 })));
    assert_eq!(engine.stats().queue_depth, 1);
    assert_eq!(engine.stats().active_sequences, 1);
    assert_eq!(engine.stats().requests_rejected_queue_full, 1);
    engine.pause_decoding(false);
    let out_b = collect(b).await;
    assert_eq!(out_b.text, "defghijk");
    drop(a);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompt_plus_max_tokens_beyond_context_is_prompt_too_long() {
    if !ort_available() {
        return;
    }
    let engine = load(SUCCESSOR, 1, 1);
    let ctx = engine.info().context_length;
    let prompt = vec![5_u32; ctx - 3];
    let r = engine.submit(request(prompt.clone(), greedy(4)));
    match r {
        Err(InferenceError::PromptTooLong {
            prompt_tokens,
            max_tokens,
            context_length,
        }) => {
            assert_eq!(prompt_tokens, ctx - 3);
            assert_eq!(max_tokens, 4);
            assert_eq!(context_length, ctx);
        }
        other => panic!("expected PromptTooLong, got {other:?}"),
    }
    // Exactly at the limit is accepted, and the whole context is used.
    let out = generate(&engine, prompt, greedy(3)).await;
    assert_eq!(out.completion_tokens, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_context_caps_the_model_context() {
    if !ort_available() {
        return;
    }
    let mut cfg = config(SUCCESSOR, 1, 1);
    cfg.max_context = Some(8);
    let engine = Engine::load(cfg).unwrap();
    assert_eq!(engine.info().context_length, 8);
    assert!(matches!(
        engine.submit(request(vec![5; 5], greedy(4))),
        Err(InferenceError::PromptTooLong {
            prompt_tokens: 5,
            max_tokens: 4,
            context_length: 8
        })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_are_refused_with_their_own_errors() {
    if !ort_available() {
        return;
    }
    let engine = load(SUCCESSOR, 1, 4);
    let vocab = engine.info().vocab_size;
    assert!(matches!(
        engine.submit(request(vec![], greedy(4))),
        Err(InferenceError::EmptyPrompt)
    ));
    assert!(matches!(
        engine.submit(request(vec![vocab as u32], greedy(4))),
        Err(InferenceError::InvalidTokenId { token_id, vocab_size }) if token_id == vocab as u32 && vocab_size == vocab
    ));
    for bad in [
        SamplingParams {
            max_tokens: 0,
            ..greedy(1)
        },
        SamplingParams {
            temperature: -1.0,
            ..greedy(1)
        },
        SamplingParams {
            temperature: f32::NAN,
            ..greedy(1)
        },
        SamplingParams {
            top_p: 0.0,
            ..greedy(1)
        },
        SamplingParams {
            stop: vec!["x".to_owned(); 17],
            ..greedy(1)
        },
    ] {
        assert!(matches!(
            engine.submit(request(vec![5], bad)),
            Err(InferenceError::InvalidParams { .. })
        ));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_running_stream_frees_its_slot_for_a_queued_request() {
    if !ort_available() {
        return;
    }
    let engine = load(SUCCESSOR, 1, 1);
    let prompt = successor_prompt(&engine, 8);
    engine.pause_decoding(true);
    let mut a = engine.submit(request(prompt.clone(), greedy(8))).unwrap();
    assert!(matches!(
        a.next().await,
        Some(GenerationEvent::Token { .. })
    ));
    let mut b = engine.submit(request(prompt.clone(), greedy(8))).unwrap();
    drop(a);
    // Decoding is still held: B gets its first token only because A's slot was freed.
    let first = tokio::time::timeout(Duration::from_secs(10), b.next())
        .await
        .expect("B admitted after A was dropped");
    assert!(matches!(first, Some(GenerationEvent::Token { .. })));
    assert_eq!(engine.stats().finished_cancelled, 1);
    engine.pause_decoding(false);
    let rest = collect(b).await;
    assert_eq!(rest.completion_tokens, 8);
    assert_eq!(rest.reason, FinishReason::Length);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_queued_stream_frees_its_queue_place() {
    if !ort_available() {
        return;
    }
    let engine = load(SUCCESSOR, 1, 1);
    let prompt = successor_prompt(&engine, 4);
    engine.pause_decoding(true);
    let mut a = engine.submit(request(prompt.clone(), greedy(4))).unwrap();
    assert!(a.next().await.is_some());
    let b = engine.submit(request(prompt.clone(), greedy(4))).unwrap();
    assert!(matches!(
        engine.submit(request(prompt.clone(), greedy(4))),
        Err(InferenceError::QueueFull { .. })
    ));
    drop(b);
    let c = engine.submit(request(prompt.clone(), greedy(4))).unwrap();
    engine.pause_decoding(false);
    assert_eq!(collect(c).await.text, "defg");
    drop(a);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passed_deadline_finishes_with_deadline() {
    if !ort_available() {
        return;
    }
    let engine = load(SUCCESSOR, 2, 4);
    let prompt = successor_prompt(&engine, 8);
    // Already expired when admitted: no tokens.
    let expired = GenerationRequest {
        deadline: Some(Instant::now()),
        ..request(prompt.clone(), greedy(8))
    };
    let out = collect(engine.submit(expired).unwrap()).await;
    assert_eq!(out.reason, FinishReason::Deadline);
    assert_eq!(out.completion_tokens, 0);
    // Expires while in flight (decoding held so it cannot finish first).
    engine.pause_decoding(true);
    let soon = GenerationRequest {
        deadline: Some(Instant::now() + Duration::from_millis(300)),
        ..request(prompt, greedy(8))
    };
    let out = collect(engine.submit(soon).unwrap()).await;
    assert_eq!(out.reason, FinishReason::Deadline);
    assert_eq!(out.completion_tokens, 1);
    assert_eq!(engine.stats().finished_deadline, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_refuses_new_requests_and_drains_running_ones() {
    if !ort_available() {
        return;
    }
    let engine = load(SUCCESSOR, 2, 4);
    let prompt = successor_prompt(&engine, 6);
    engine.pause_decoding(true);
    let mut a = engine.submit(request(prompt.clone(), greedy(6))).unwrap();
    assert!(a.next().await.is_some());
    engine.shutdown();
    assert!(matches!(
        engine.submit(request(prompt.clone(), greedy(6))),
        Err(InferenceError::ShuttingDown)
    ));
    engine.pause_decoding(false);
    let rest = collect(a).await;
    assert_eq!(rest.reason, FinishReason::Length);
    assert_eq!(rest.completion_tokens, 6);
    let e2 = engine.clone();
    tokio::task::spawn_blocking(move || e2.wait_stopped())
        .await
        .unwrap();
    assert!(engine.is_stopped());
}

#[test]
fn loading_checks_the_onnx_digest_recorded_in_model_json() {
    if !ort_available() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let src = model_dir(SUCCESSOR);
    for f in ["model.onnx", "tokenizer.json", "model.json"] {
        std::fs::copy(src.join(f), tmp.path().join(f)).unwrap();
    }
    let json = std::fs::read_to_string(tmp.path().join("model.json")).unwrap();
    let mut meta: serde_json::Value = serde_json::from_str(&json).unwrap();
    let real = meta["onnx_sha256"].as_str().unwrap().to_owned();
    meta["onnx_sha256"] = serde_json::Value::String("00".repeat(32));
    std::fs::write(tmp.path().join("model.json"), meta.to_string()).unwrap();
    let mut cfg = config(SUCCESSOR, 1, 1);
    cfg.model_dir = tmp.path().to_path_buf();
    match Engine::load(cfg) {
        Err(InferenceError::DigestMismatch {
            file,
            expected,
            actual,
        }) => {
            assert_eq!(file, "model.onnx");
            assert_eq!(expected, "00".repeat(32));
            assert_eq!(actual, real);
        }
        other => panic!("expected DigestMismatch, got {other:?}"),
    }
}

#[test]
fn loading_a_missing_model_directory_names_the_file() {
    let mut cfg = config(SUCCESSOR, 1, 1);
    cfg.model_dir = "/nonexistent/model".into();
    assert!(matches!(
        Engine::load(cfg),
        Err(InferenceError::ModelFile { path, .. }) if path.ends_with("model.json")
    ));
}

#[test]
fn zero_max_sequences_is_an_invalid_config() {
    let cfg = config(SUCCESSOR, 0, 1);
    assert!(matches!(
        Engine::load(cfg),
        Err(InferenceError::InvalidConfig { .. })
    ));
}

#[test]
fn engine_info_reports_the_loaded_digests() {
    if !ort_available() {
        return;
    }
    let engine = load(SUCCESSOR, 1, 1);
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(model_dir(SUCCESSOR).join("model.json")).unwrap())
            .unwrap();
    assert_eq!(
        engine.info().onnx_sha256,
        meta["onnx_sha256"].as_str().unwrap()
    );
    assert_eq!(
        engine.info().tokenizer_sha256,
        meta["tokenizer_sha256"].as_str().unwrap()
    );
    assert_eq!(engine.info().name, meta["name"].as_str().unwrap());
    let lib = &engine.info().ort_library;
    assert_eq!(lib.path, cocoon_enclave::inference::ort_library_path());
    use sha2::Digest;
    assert_eq!(
        lib.sha256,
        hex::encode(sha2::Sha256::digest(std::fs::read(&lib.path).unwrap()))
    );
    if std::env::var_os("ORT_DYLIB_PATH").is_none() {
        assert_eq!(lib.sha256, cocoon_enclave::inference::ORT_LIBRARY_SHA256);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn successor_text_runs_into_eos_after_tilde() {
    if !ort_available() {
        return;
    }
    let engine = load(SUCCESSOR, 2, 4);
    let out = generate(&engine, engine.tokenize("x").unwrap(), greedy(20)).await;
    assert_eq!(out.text, "yz{|}~");
    assert_eq!(out.ids.last(), Some(&engine.info().eos_token_ids[0]));
    assert_eq!(out.reason, FinishReason::Stop);
    assert_eq!(out.completion_tokens, 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_messages_go_through_the_template_tokenizer_and_model() {
    if !ort_available() {
        return;
    }
    let engine = load(SUCCESSOR, 2, 4);
    let messages = vec![ChatMessage {
        role: "user".to_owned(),
        content: "Hello, w".to_owned(),
    }];
    let prompt_text = engine.apply_chat_template(&messages, true).unwrap();
    assert_eq!(prompt_text, "Hello, w");
    let out = generate(&engine, engine.tokenize(&prompt_text).unwrap(), greedy(3)).await;
    assert_eq!(out.text, "xyz");

    let tiny = load(TINY_GPT, 1, 1);
    assert_eq!(
        tiny.apply_chat_template(&messages, true).unwrap(),
        "<|im_start|>user\nHello, w<|im_end|>\n<|im_start|>assistant\n"
    );
    // Special tokens written by the template are single tokens.
    let ids = tiny.tokenize("<|im_start|>user").unwrap();
    assert_eq!(ids[0], 281);
}

#[test]
fn engine_and_streams_cross_threads_and_tasks() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<Engine>();
    send_sync::<std::sync::Arc<Engine>>();
    send::<cocoon_enclave::inference::GenerationStream>();
    send_sync::<InferenceError>();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_count_requests_tokens_and_batches() {
    if !ort_available() {
        return;
    }
    let engine = load(SUCCESSOR, 4, 8);
    let prompt = successor_prompt(&engine, 6);
    let streams: Vec<_> = (0..3)
        .map(|_| engine.submit(request(prompt.clone(), greedy(6))).unwrap())
        .collect();
    for s in streams {
        assert_eq!(collect(s).await.completion_tokens, 6);
    }
    let stats = engine.stats();
    assert_eq!(stats.requests_submitted, 3);
    assert_eq!(stats.finished_length, 3);
    assert_eq!(stats.prefill_runs, 3);
    assert_eq!(stats.completion_tokens_total, 18);
    assert_eq!(stats.prompt_tokens_total, 3 * prompt.len() as u64);
    // Each sequence's first token comes from its prefill, the other five from decode rows.
    assert_eq!(stats.decode_rows_total, 15);
    assert_eq!(stats.queue_depth, 0);
    assert_eq!(stats.max_sequences, 4);
    assert_eq!(stats.queue_capacity, 8);
    assert!(stats.session_micros_total <= stats.run_micros_total);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequences_leaving_and_joining_mid_batch_keep_their_solo_outputs() {
    if !ort_available() {
        return;
    }
    let engine = load(TINY_GPT, 8, 16);
    let prompts = tiny_prompts(&engine);
    let lengths = [5, 9, 13, 17, 21, 25];
    let mut solo = Vec::new();
    for (p, &n) in prompts.iter().zip(&lengths) {
        solo.push(generate(&engine, p.clone(), greedy(n)).await);
    }
    let late_prompt = prompts[7].clone();
    let late_solo = generate(&engine, late_prompt.clone(), greedy(15)).await;

    // Rows leave at different steps (their max_tokens differ); one joins while others run.
    let mut streams: Vec<_> = prompts
        .iter()
        .zip(&lengths)
        .map(|(p, &n)| engine.submit(request(p.clone(), greedy(n))).unwrap())
        .collect();
    let mut firsts = Vec::new();
    for s in &mut streams {
        firsts.push(s.next().await.unwrap());
    }
    let late = engine.submit(request(late_prompt, greedy(15))).unwrap();
    let late_handle = tokio::spawn(collect(late));
    for ((s, first), want) in streams.into_iter().zip(firsts).zip(&solo) {
        let rest = collect(s).await;
        let GenerationEvent::Token { token_id, text } = first else {
            panic!("first event is a token")
        };
        let mut ids = vec![token_id];
        ids.extend(&rest.ids);
        assert_eq!(ids, want.ids);
        assert_eq!(text + &rest.text, want.text);
        assert_eq!(rest.reason, want.reason);
    }
    assert_eq!(late_handle.await.unwrap(), late_solo);
    let stats = engine.stats();
    assert!(stats.decode_steps_reusing_batch > 0);
    assert!(stats.decode_steps_reusing_batch < stats.decode_steps);
}

#[test]
fn the_cuda_provider_on_the_cpu_library_is_an_error_not_a_silent_cpu_fallback() {
    if !ort_available() {
        return;
    }
    // scripts/setup installs the CPU build of ONNX Runtime (the `onnxruntime` wheel): CUDA
    // cannot register, and since the provider is part of the claims, loading must fail.
    let mut config = config(SUCCESSOR, 1, 4);
    config.execution_provider = cocoon_enclave::inference::ExecutionProvider::Cuda;
    match Engine::load(config) {
        Err(InferenceError::ExecutionProviderUnavailable {
            provider, message, ..
        }) => {
            assert_eq!(provider, "cuda");
            assert!(!message.is_empty());
        }
        Err(other) => panic!("expected ExecutionProviderUnavailable, got {other}"),
        Ok(_) => panic!("the CUDA provider registered on the CPU library"),
    }
}
