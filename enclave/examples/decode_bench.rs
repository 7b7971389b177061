//! Decode throughput of the engine on a model directory: single-stream decode tokens/s (first
//! token to last, so prefill is excluded), time to first token, and the aggregate tokens/s of
//! N concurrent streams. Prints one JSON object.
//!
//! ```text
//! cargo run --release -p cocoon-enclave --example decode_bench -- MODEL_DIR [--threads 2] [--tokens 128] [--streams 8] [--prompt TEXT] [--chat]
//! ```
//!
//! `--chat` wraps the prompt in the model's chat template as a user message.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use cocoon_enclave::inference::{
    ChatMessage, Engine, EngineConfig, GenerationEvent, GenerationRequest, SamplingParams,
};

struct Run {
    ttft: Duration,
    decode: Duration,
    tokens: usize,
}

fn one_stream(engine: &Engine, prompt: &[u32], tokens: usize) -> Run {
    let start = Instant::now();
    let mut stream = engine
        .submit(GenerationRequest {
            prompt_tokens: prompt.to_vec(),
            params: SamplingParams {
                max_tokens: tokens,
                temperature: 0.0,
                ..SamplingParams::default()
            },
            deadline: None,
        })
        .expect("submitted");
    let mut first: Option<Instant> = None;
    let mut n = 0;
    while let GenerationEvent::Token { .. } =
        stream.blocking_next().expect("stream ends with Finished")
    {
        n += 1;
        first.get_or_insert_with(Instant::now);
    }
    let end = Instant::now();
    let first = first.unwrap_or(end);
    Run {
        ttft: first - start,
        decode: end - first,
        tokens: n,
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut model_dir = None;
    let mut threads = 2;
    let mut tokens = 128;
    let mut streams = 8;
    let mut prompt_text = "The capital of France is".to_owned();
    let mut chat = false;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--threads" => threads = args.next().unwrap().parse().unwrap(),
            "--tokens" => tokens = args.next().unwrap().parse().unwrap(),
            "--streams" => streams = args.next().unwrap().parse().unwrap(),
            "--prompt" => prompt_text = args.next().unwrap(),
            "--chat" => chat = true,
            _ => model_dir = Some(a),
        }
    }
    let model_dir = model_dir.expect(
        "usage: decode_bench MODEL_DIR [--threads N] [--tokens N] [--streams N] [--prompt TEXT]",
    );
    let engine = Engine::load(EngineConfig {
        model_dir: model_dir.into(),
        threads,
        max_sequences: streams.max(1),
        queue_capacity: streams.max(1) * 2,
        max_context: None,
        execution_provider: cocoon_enclave::inference::ExecutionProvider::Cpu,
    })
    .unwrap_or_else(|e| panic!("load: {e}"));
    if chat {
        prompt_text = engine
            .apply_chat_template(
                &[ChatMessage {
                    role: "user".to_owned(),
                    content: prompt_text,
                }],
                true,
            )
            .expect("chat template");
    }
    let prompt = engine.tokenize(&prompt_text).expect("tokenize");
    let tokens = tokens.min(engine.info().context_length - prompt.len());

    // Warm-up, then the single stream.
    let _ = one_stream(&engine, &prompt, 4.min(tokens));
    let single = one_stream(&engine, &prompt, tokens);
    let single_tps = (single.tokens.saturating_sub(1)) as f64 / single.decode.as_secs_f64();

    let before = engine.stats();
    // N streams at once; aggregate = all tokens / wall time from submit to the last finish.
    let start = Instant::now();
    let handles: Vec<_> = (0..streams)
        .map(|_| {
            let e = Arc::clone(&engine);
            let p = prompt.clone();
            std::thread::spawn(move || one_stream(&e, &p, tokens))
        })
        .collect();
    let runs: Vec<Run> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let wall = start.elapsed();
    let total: usize = runs.iter().map(|r| r.tokens).sum();
    let agg_tps = total as f64 / wall.as_secs_f64();
    let stats = engine.stats();
    let steps = (stats.decode_steps + stats.prefill_runs)
        .saturating_sub(before.decode_steps + before.prefill_runs)
        .max(1) as f64;
    let run_ms = (stats.run_micros_total - before.run_micros_total) as f64 / 1e3;
    let session_ms = (stats.session_micros_total - before.session_micros_total) as f64 / 1e3;
    println!(
        "{{\"model\":{:?},\"threads\":{threads},\"prompt_tokens\":{},\"tokens\":{tokens},\"single_ttft_ms\":{:.2},\"single_decode_tps\":{:.2},\"streams\":{streams},\"aggregate_tps\":{:.2},\"aggregate_over_single\":{:.3},\"mean_ttft_ms\":{:.2},\"decode_steps\":{},\"decode_rows\":{},\"multi_mean_run_ms\":{:.2},\"multi_mean_session_run_ms\":{:.2}}}",
        engine.info().name,
        prompt.len(),
        single.ttft.as_secs_f64() * 1e3,
        single_tps,
        agg_tps,
        agg_tps / single_tps,
        runs.iter().map(|r| r.ttft.as_secs_f64()).sum::<f64>() / runs.len().max(1) as f64 * 1e3,
        stats.decode_steps,
        stats.decode_rows_total,
        run_ms / steps,
        session_ms / steps,
    );
    engine.shutdown();
    engine.wait_stopped();
}
