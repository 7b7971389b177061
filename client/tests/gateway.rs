//! The gateway end to end: a plain-HTTP client on loopback → `cocoon_client::gateway` →
//! RA-TLS → the in-process enclave (simulated TDX) serving the successor model.
#![cfg(feature = "sim")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]

mod model_enclave;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use cocoon_client::gateway::Upstream;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use model_enclave::{
    ort_available, start, start_gateway as gateway_to, Api, RunningGateway, OTHER_MRTD_POLICY,
    SIM_POLICY, STEP,
};
use tokio::net::{TcpListener, TcpStream};

async fn gateway_for(api: &Api, policy: &str) -> RunningGateway {
    gateway_to(Upstream::RaTls(api.addr()), policy, true).await
}

/// One plain HTTP/1.1 request to the gateway: status, content type, body.
async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<serde_json::Value>,
) -> (u16, String, http::HeaderMap, Bytes) {
    let mut sender = open(addr).await;
    let mut request = http::Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string());
    if body.is_some() {
        request = request.header("content-type", "application/json");
    }
    let request = request
        .body(Full::new(Bytes::from(
            body.map(|b| b.to_string()).unwrap_or_default(),
        )))
        .unwrap();
    let response = tokio::time::timeout(STEP, async {
        let response = sender.send_request(request).await.unwrap();
        let (parts, body) = response.into_parts();
        (parts, body.collect().await.unwrap().to_bytes())
    })
    .await
    .expect("the gateway answered in time");
    let (parts, body) = response;
    let content_type = parts
        .headers
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (parts.status.as_u16(), content_type, parts.headers, body)
}

/// A plain HTTP/1.1 client connection to the gateway.
async fn open(addr: SocketAddr) -> hyper::client::conn::http1::SendRequest<Full<Bytes>> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    sender
}

/// A streamed chat completion request for "abc".
fn chat_request() -> http::Request<Full<Bytes>> {
    http::Request::post("/v1/chat/completions")
        .header("host", "localhost")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(chat(true).to_string())))
        .unwrap()
}

fn chat(stream: bool) -> serde_json::Value {
    serde_json::json!({
        "model": "successor",
        "messages": [{"role": "user", "content": "abc"}],
        "max_tokens": 5,
        "temperature": 0,
        "stream": stream,
    })
}

/// The concatenated content deltas of an SSE body, and whether it ended with `[DONE]`.
fn stream_text(body: &[u8]) -> (String, bool) {
    let mut parser = cocoon_client::SseDataLines::new(1 << 20);
    let mut text = String::new();
    let mut done = false;
    for data in parser.push(body).unwrap() {
        if data == "[DONE]" {
            done = true;
            continue;
        }
        let event: serde_json::Value = serde_json::from_str(&data).unwrap();
        if let Some(t) = event["choices"][0]["delta"]["content"].as_str() {
            text.push_str(t);
        }
    }
    (text, done)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_through_the_gateway_answers_exactly_as_the_enclave() {
    if !ort_available() {
        return;
    }
    let api = start().await;
    let gw = gateway_for(&api, SIM_POLICY).await;
    let (status, content_type, _, body) =
        http(gw.addr, "POST", "/v1/chat/completions", Some(chat(false))).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["choices"][0]["message"]["content"], "defgh");
    assert_eq!(json["object"], "chat.completion");
    assert_eq!(
        gw.gateway
            .stats
            .upstream_connections
            .load(Ordering::Relaxed),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_chat_passes_through_the_gateway_as_server_sent_events() {
    if !ort_available() {
        return;
    }
    let api = start().await;
    let gw = gateway_for(&api, SIM_POLICY).await;
    let (status, content_type, _, body) =
        http(gw.addr, "POST", "/v1/chat/completions", Some(chat(true))).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert!(
        content_type.starts_with("text/event-stream"),
        "{content_type}"
    );
    assert_eq!(stream_text(&body), ("defgh".to_owned(), true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_are_listed_through_the_gateway() {
    if !ort_available() {
        return;
    }
    let api = start().await;
    let gw = gateway_for(&api, SIM_POLICY).await;
    let (status, _, _, body) = http(gw.addr, "GET", "/v1/models", None).await;
    assert_eq!(status, 200);
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["object"], "list");
    assert!(json["data"][0]["id"].is_string(), "{json}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_pinning_another_measurement_is_refused_and_nothing_reaches_the_enclave() {
    if !ort_available() {
        return;
    }
    let api = start().await;
    let gw = gateway_for(&api, OTHER_MRTD_POLICY).await;
    let (status, _, headers, body) =
        http(gw.addr, "POST", "/v1/chat/completions", Some(chat(false))).await;
    assert_eq!(status, 502);
    assert_eq!(headers["x-should-retry"], "false");
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["error"]["code"], "policy_rejected", "{json}");
    assert_eq!(json["error"]["type"], "attestation_error");
    assert!(
        json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("tdx.mrtd"),
        "{json}"
    );
    assert_eq!(gw.gateway.stats.refusals.load(Ordering::Relaxed), 1);
    assert_eq!(gw.gateway.stats.forwarded.load(Ordering::Relaxed), 0);
    assert_eq!(api.chat_requests().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_pinning_another_model_digest_is_refused() {
    if !ort_available() {
        return;
    }
    let api = start().await;
    let policy = format!(
        "{SIM_POLICY}[claims]\nmodel_blake3 = [\"{}\"]\n",
        "cd".repeat(32)
    );
    let gw = gateway_for(&api, &policy).await;
    let (status, _, _, body) =
        http(gw.addr, "POST", "/v1/chat/completions", Some(chat(true))).await;
    assert_eq!(status, 502);
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["error"]["code"], "policy_rejected", "{json}");
    assert!(
        json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("claims.model_blake3"),
        "{json}"
    );
    assert_eq!(api.chat_requests().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulated_evidence_is_refused_unless_the_gateway_trusts_it() {
    if !ort_available() {
        return;
    }
    let api = start().await;
    let gw = gateway_to(Upstream::RaTls(api.addr()), SIM_POLICY, false).await;
    let (status, _, _, body) =
        http(gw.addr, "POST", "/v1/chat/completions", Some(chat(false))).await;
    assert_eq!(status, 502);
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        json["error"]["code"], "simulated_evidence_refused",
        "{json}"
    );
    assert_eq!(api.chat_requests().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_upstream_is_a_clean_502() {
    let free = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = free.local_addr().unwrap().to_string();
    drop(free);
    let gw = gateway_to(Upstream::RaTls(addr), SIM_POLICY, true).await;
    let (status, _, _, body) =
        http(gw.addr, "POST", "/v1/chat/completions", Some(chat(false))).await;
    assert_eq!(status, 502);
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["error"]["code"], "upstream_unreachable", "{json}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paths_outside_the_api_are_not_forwarded() {
    let gw = gateway_to(Upstream::RaTls("127.0.0.1:9".into()), SIM_POLICY, true).await;
    let (status, _, _, body) = http(gw.addr, "GET", "/admin", None).await;
    assert_eq!(status, 404);
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["error"]["code"], "not_found");
    assert_eq!(gw.gateway.stats.forwarded.load(Ordering::Relaxed), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_client_connection_reuses_its_verified_upstream_connection() {
    if !ort_available() {
        return;
    }
    let api = start().await;
    let gw = gateway_for(&api, SIM_POLICY).await;
    let mut sender = open(gw.addr).await;
    for _ in 0..3 {
        sender.ready().await.unwrap();
        let response = tokio::time::timeout(STEP, sender.send_request(chat_request()))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(response.status(), 200);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(stream_text(&body), ("defgh".to_owned(), true));
    }
    assert_eq!(
        gw.gateway
            .stats
            .upstream_connections
            .load(Ordering::Relaxed),
        1
    );
    assert_eq!(gw.gateway.stats.forwarded.load(Ordering::Relaxed), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_answer_reaches_the_client_event_by_event_not_buffered() {
    if !ort_available() {
        return;
    }
    let api = start().await;
    let gw = gateway_for(&api, SIM_POLICY).await;
    let mut sender = open(gw.addr).await;
    let response = tokio::time::timeout(STEP, sender.send_request(chat_request()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    let mut frames = Vec::new();
    while let Some(frame) = tokio::time::timeout(STEP, body.frame()).await.unwrap() {
        if let Ok(data) = frame.unwrap().into_data() {
            frames.push(data);
        }
    }
    // role, five content deltas, the finish event and [DONE]: several frames, each holding
    // whole events, in order.
    assert!(frames.len() >= 5, "{} frames", frames.len());
    let whole: Vec<u8> = frames.concat();
    assert_eq!(stream_text(&whole), ("defgh".to_owned(), true));
    assert!(frames.iter().all(|f| f.ends_with(b"\n\n")), "{frames:?}");
}
