//! Load run against a live enclave on the simulated TEE (issue #4 benchmark): N concurrent
//! clients, each on its own attested connection (kept alive), send streaming chat completions
//! for a fixed time. Counts completed requests, errors by kind and streamed chunks; prints one
//! JSON object. `scripts/bench` starts the enclave, runs this and reads the server's peak RSS.
//!
//! ```text
//! cargo run --release -p cocoon-client --features sim --example load -- ADDR [--streams 64] [--seconds 60] [--max-tokens 16]
//! ```
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cocoon_client::{Connector, Timeouts};
use sim::sim_connector;

#[path = "common/sim.rs"]
mod sim;
use http::{Method, Request};
use http_body_util::Full;

#[derive(Default)]
struct Tally {
    ok: u64,
    chunks: u64,
    errors: BTreeMap<String, u64>,
    latencies_ms: Vec<f64>,
}

async fn worker(
    connector: Connector,
    addr: String,
    model: String,
    max_tokens: usize,
    until: Instant,
    id: usize,
) -> Tally {
    let timeouts = Timeouts {
        connect: Duration::from_secs(10),
        handshake: Duration::from_secs(30),
        request: Duration::from_secs(120),
    };
    let mut tally = Tally::default();
    let mut conn = None;
    let mut n = 0usize;
    while Instant::now() < until {
        if conn.is_none() {
            match connector.connect(&addr, timeouts).await {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    *tally.errors.entry(format!("connect: {e}")).or_default() += 1;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            }
        }
        let c = conn.as_mut().unwrap();
        n += 1;
        let body = serde_json::json!({
            "model": model,
            "messages": [{"role": "user", "content": format!("Tell me fact number {} about {} cats.", n, id)}],
            "max_tokens": max_tokens,
            "temperature": 0,
            "stream": true,
        });
        let request = Request::builder()
            .method(Method::POST)
            .uri("/v1/chat/completions")
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.to_string())))
            .unwrap();
        let start = Instant::now();
        match c.request(request).await {
            Ok(response) if response.status().is_success() => {
                let text = String::from_utf8_lossy(response.body());
                if text.trim_end().ends_with("data: [DONE]") {
                    tally.ok += 1;
                    tally.chunks += text.matches("data: {").count() as u64;
                    tally.latencies_ms.push(start.elapsed().as_secs_f64() * 1e3);
                } else {
                    *tally
                        .errors
                        .entry("stream without [DONE]".into())
                        .or_default() += 1;
                    conn = None;
                }
            }
            Ok(response) => {
                *tally
                    .errors
                    .entry(format!("HTTP {}", response.status()))
                    .or_default() += 1;
                conn = None;
            }
            Err(e) => {
                *tally.errors.entry(format!("request: {e}")).or_default() += 1;
                conn = None;
            }
        }
    }
    tally
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let addr = args
        .next()
        .expect("usage: load ADDR [--streams N] [--seconds S] [--max-tokens N]");
    let (mut streams, mut seconds, mut max_tokens) = (64usize, 60u64, 16usize);
    while let Some(flag) = args.next() {
        let value = args.next().expect("flag value");
        match flag.as_str() {
            "--streams" => streams = value.parse().unwrap(),
            "--seconds" => seconds = value.parse().unwrap(),
            "--max-tokens" => max_tokens = value.parse().unwrap(),
            other => panic!("unknown flag {other}"),
        }
    }
    let connector = sim_connector();
    let timeouts = Timeouts {
        connect: Duration::from_secs(10),
        handshake: Duration::from_secs(10),
        request: Duration::from_secs(30),
    };
    let mut probe = connector.connect(&addr, timeouts).await.expect("connect");
    // 503 while the model loads.
    let loading_since = Instant::now();
    while !probe
        .get("/health")
        .await
        .expect("GET /health")
        .0
        .is_success()
    {
        assert!(
            loading_since.elapsed() < Duration::from_secs(300),
            "the model did not load within 300 s"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let (status, models) = probe.get("/v1/models").await.expect("GET /v1/models");
    assert!(status.is_success(), "GET /v1/models: {status}");
    let models: serde_json::Value = serde_json::from_slice(&models).unwrap();
    let model = models["data"][0]["id"]
        .as_str()
        .expect("a model id")
        .to_owned();
    drop(probe);

    let start = Instant::now();
    let until = start + Duration::from_secs(seconds);
    let tasks: Vec<_> = (0..streams)
        .map(|id| {
            tokio::spawn(worker(
                connector.clone(),
                addr.clone(),
                model.clone(),
                max_tokens,
                until,
                id,
            ))
        })
        .collect();
    let mut total = Tally::default();
    for task in tasks {
        let t = task.await.unwrap();
        total.ok += t.ok;
        total.chunks += t.chunks;
        total.latencies_ms.extend(t.latencies_ms);
        for (k, v) in t.errors {
            *total.errors.entry(k).or_default() += v;
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    total.latencies_ms.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| -> f64 {
        if total.latencies_ms.is_empty() {
            return 0.0;
        }
        let i = ((total.latencies_ms.len() - 1) as f64 * p).round() as usize;
        total.latencies_ms[i]
    };
    let errors: u64 = total.errors.values().sum();
    println!(
        "{}",
        serde_json::json!({
            "model": model,
            "streams": streams,
            "seconds": elapsed,
            "requests_ok": total.ok,
            "errors": errors,
            "errors_by_kind": total.errors,
            "chunks": total.chunks,
            "chunks_per_s": total.chunks as f64 / elapsed,
            "latency_ms_p50": pct(0.5),
            "latency_ms_p99": pct(0.99),
        })
    );
}
