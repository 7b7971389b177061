//! Verify-then-send on the simulated TEE (used by `scripts/demo`): connects to an enclave over
//! RA-TLS, prints the identity the handshake verified, proves freshness with a random nonce,
//! then asks one chat question and prints the streamed answer. The `cocoon chat` CLI of issue #5
//! replaces this.
//!
//! ```text
//! cargo run --release -p cocoon-client --features sim --example chat -- ADDR "What is the capital of France?"
//! ```
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::time::Duration;

use bytes::Bytes;
use cocoon_client::{fresh_attestation_random, Timeouts};
use http::{Method, Request};
use http_body_util::Full;
use sim::sim_connector;

#[path = "common/sim.rs"]
mod sim;

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let addr = args.next().expect("usage: chat ADDR PROMPT");
    let prompt = args.next().expect("usage: chat ADDR PROMPT");
    let timeouts = Timeouts {
        connect: Duration::from_secs(10),
        handshake: Duration::from_secs(10),
        request: Duration::from_secs(300),
    };
    let mut conn = match sim_connector().connect(&addr, timeouts).await {
        Ok(conn) => conn,
        Err(e) => {
            eprintln!("chat: refused before sending anything: {e}");
            std::process::exit(1);
        }
    };
    let peer = conn.peer().clone();
    println!("verified enclave: platform {}", peer.platform.as_str());
    for name in ["mrtd", "rtmr0", "measurement"] {
        if let Some(value) = peer.measurements.get(name) {
            println!("  {name}: {value}");
        }
    }
    if let Some(claims) = &peer.claims {
        println!("  tls key sha256: {}", hex::encode(claims.tls_spki_sha256));
        println!("  model blake3:   {}", hex::encode(claims.model.blake3));
    }
    let fresh = fresh_attestation_random(&mut conn)
        .await
        .expect("fresh attestation");
    println!(
        "fresh attestation with a random nonce: verified (same key, same measurements: {})",
        fresh.spki_sha256 == peer.spki_sha256
    );
    // The API answers 503 while the model loads; the attestation routes work before that.
    let loading_since = std::time::Instant::now();
    loop {
        let (status, _) = conn.get("/health").await.expect("GET /health");
        if status.is_success() {
            break;
        }
        if loading_since.elapsed() > Duration::from_secs(300) {
            eprintln!("chat: the model did not load within 300 s (/health: {status})");
            std::process::exit(1);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let body = serde_json::json!({
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": 64,
        "temperature": 0,
        "stream": true,
    });
    let request = Request::builder()
        .method(Method::POST)
        .uri("/v1/chat/completions")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let response = conn.request(request).await.expect("chat request");
    if !response.status().is_success() {
        eprintln!(
            "chat: HTTP {}: {}",
            response.status(),
            String::from_utf8_lossy(response.body())
        );
        std::process::exit(1);
    }
    let text = String::from_utf8_lossy(response.body());
    let mut answer = String::new();
    for line in text.lines() {
        let Some(data) = line.strip_prefix("data: ") else {
            continue;
        };
        if data == "[DONE]" {
            break;
        }
        let chunk: serde_json::Value = serde_json::from_str(data).expect("SSE chunk");
        if let Some(delta) = chunk["choices"][0]["delta"]["content"].as_str() {
            answer.push_str(delta);
        }
    }
    println!("user: {prompt}");
    println!("assistant: {answer}");
}
