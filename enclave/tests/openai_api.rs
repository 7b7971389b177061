//! The OpenAI-compatible API through the whole stack: the simulated TEE, RA-TLS (verified by
//! `cocoon-client`), HTTP/1.1, the engine running the committed test models.
#![cfg(feature = "sim")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]

mod inference_support;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cocoon_attestation::ratls::RaTlsVerifier;
use cocoon_client::{AttestedConnection, Connector, Timeouts};
use cocoon_enclave::identity::{Identity, IdentityConfig};
use cocoon_enclave::inference::{Engine, EngineConfig};
use cocoon_enclave::openai::{self, ApiConfig, OpenAi};
use cocoon_enclave::rotation::IdentityResolver;
use cocoon_enclave::server::{serve, Enclave, Router, ServerHandle, ServerOptions};
use cocoon_enclave::sim::SimAttester;
use cocoon_enclave::Attester;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use inference_support::{model_dir, ort_available};
use serde_json::{json, Value};
use tokio::net::TcpListener;

const STEP: Duration = Duration::from_secs(60);

struct Api {
    handle: ServerHandle,
    state: Arc<OpenAi>,
    connector: Connector,
}

impl Api {
    fn engine(&self) -> &Arc<Engine> {
        self.state.engine().unwrap()
    }

    async fn connect(&self) -> AttestedConnection {
        let timeouts = Timeouts {
            connect: STEP,
            handshake: STEP,
            request: STEP,
        };
        tokio::time::timeout(
            STEP,
            self.connector
                .connect_addr(self.handle.local_addr(), timeouts),
        )
        .await
        .expect("connect in time")
        .expect("attested connection")
    }
}

fn verifier() -> Arc<RaTlsVerifier> {
    inference_support::sim_verifier()
}

/// A server whose state has no engine yet.
async fn start_empty(api: ApiConfig) -> Api {
    let attester: Arc<dyn Attester> = Arc::new(SimAttester::tdx().unwrap());
    let identity = Identity::issue_now(attester.as_ref(), &IdentityConfig::default()).unwrap();
    let resolver = Arc::new(IdentityResolver::new(identity));
    let state = OpenAi::new(api);
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
    Api {
        handle,
        state,
        connector: Connector::new(verifier(), None).unwrap(),
    }
}

async fn start_with(
    model: &str,
    max_sequences: usize,
    queue_capacity: usize,
    api: ApiConfig,
) -> Api {
    let server = start_empty(api).await;
    let engine = Engine::load(EngineConfig {
        model_dir: model_dir(model),
        threads: 1,
        max_sequences,
        queue_capacity,
        max_context: None,
        execution_provider: cocoon_enclave::inference::ExecutionProvider::Cpu,
    })
    .unwrap();
    server.state.set_engine(engine);
    server
}

async fn start(model: &str) -> Api {
    start_with(model, 16, 64, ApiConfig::default()).await
}

struct Reply {
    status: StatusCode,
    headers: http::HeaderMap,
    body: Bytes,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    fn text(&self) -> String {
        String::from_utf8(self.body.to_vec()).unwrap()
    }
}

async fn send(conn: &mut AttestedConnection, method: &str, path: &str, body: Vec<u8>) -> Reply {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let response = tokio::time::timeout(STEP, conn.request(request))
        .await
        .expect("response in time")
        .expect("response");
    Reply {
        status: response.status(),
        headers: response.headers().clone(),
        body: response.into_body(),
    }
}

async fn post(conn: &mut AttestedConnection, path: &str, body: &Value) -> Reply {
    send(conn, "POST", path, body.to_string().into_bytes()).await
}

async fn get(conn: &mut AttestedConnection, path: &str) -> Reply {
    send(conn, "GET", path, Vec::new()).await
}

/// The `data:` payloads of an SSE body, checking the framing; the last must be `[DONE]`.
fn sse_events(body: &str) -> Vec<Value> {
    assert!(body.ends_with("data: [DONE]\n\n"), "{body:?}");
    let mut events = Vec::new();
    let frames: Vec<&str> = body.split_terminator("\n\n").collect();
    for (i, frame) in frames.iter().enumerate() {
        let payload = frame
            .strip_prefix("data: ")
            .unwrap_or_else(|| panic!("not an SSE data line: {frame:?}"));
        if i + 1 == frames.len() {
            assert_eq!(payload, "[DONE]");
        } else {
            events.push(serde_json::from_str(payload).unwrap());
        }
    }
    events
}

/// The text of streamed chunks (chat deltas or completion texts) and the finish reason.
fn reassemble(events: &[Value]) -> (String, Option<String>) {
    let mut text = String::new();
    let mut finish = None;
    for event in events {
        for choice in event["choices"].as_array().unwrap() {
            if let Some(t) = choice["delta"]["content"].as_str() {
                text.push_str(t);
            }
            if let Some(t) = choice["text"].as_str() {
                text.push_str(t);
            }
            if let Some(f) = choice["finish_reason"].as_str() {
                assert!(finish.is_none(), "one finish_reason");
                finish = Some(f.to_owned());
            }
        }
    }
    (text, finish)
}

fn error_code(reply: &Reply) -> (String, Value) {
    let v = reply.json();
    let e = &v["error"];
    assert!(e["message"].is_string(), "{v}");
    assert!(e["type"].is_string(), "{v}");
    assert!(e.get("param").is_some(), "{v}");
    (e["code"].as_str().unwrap().to_owned(), e["param"].clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn completions_return_the_exact_greedy_successor_text_and_usage() {
    if !ort_available() {
        return;
    }
    let api = start("successor").await;
    let mut conn = api.connect().await;
    let reply = post(
        &mut conn,
        "/v1/completions",
        &json!({"model": "successor", "prompt": "abc", "max_tokens": 5, "temperature": 0}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    let v = reply.json();
    assert_eq!(v["object"], "text_completion");
    assert!(v["id"].as_str().unwrap().starts_with("cmpl-"));
    assert!(v["created"].as_u64().unwrap() > 1_700_000_000);
    assert_eq!(v["model"], "successor");
    assert_eq!(v["choices"][0]["index"], 0);
    assert_eq!(v["choices"][0]["text"], "defgh");
    assert_eq!(v["choices"][0]["finish_reason"], "length");
    assert_eq!(
        v["usage"],
        json!({"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8})
    );

    // Runs into '~' then EOS: finish reason stop; EOS counts as a completion token.
    let reply = post(
        &mut conn,
        "/v1/completions",
        &json!({"prompt": ["x"], "max_tokens": 50, "temperature": 0}),
    )
    .await;
    let v = reply.json();
    assert_eq!(v["choices"][0]["text"], "yz{|}~");
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert_eq!(
        v["usage"],
        json!({"prompt_tokens": 1, "completion_tokens": 7, "total_tokens": 8})
    );

    // A stop string ends it before the string, which is not returned.
    let reply = post(
        &mut conn,
        "/v1/completions",
        &json!({"prompt": "a", "max_tokens": 20, "temperature": 0, "stop": ["fg", "zz"]}),
    )
    .await;
    let v = reply.json();
    assert_eq!(v["choices"][0]["text"], "bcde");
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chat_completions_return_the_exact_greedy_text_streamed_and_not() {
    if !ort_available() {
        return;
    }
    let api = start("successor").await;
    let mut conn = api.connect().await;
    let request = json!({
        "model": "successor",
        "messages": [{"role": "system", "content": "Hel"}, {"role": "user", "content": "lo, w"}],
        "max_tokens": 3,
        "temperature": 0,
    });
    let reply = post(&mut conn, "/v1/chat/completions", &request).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.headers["content-type"], "application/json");
    let v = reply.json();
    assert_eq!(v["object"], "chat.completion");
    assert!(v["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert_eq!(v["model"], "successor");
    assert_eq!(
        v["choices"][0]["message"],
        json!({"role": "assistant", "content": "xyz"})
    );
    assert_eq!(v["choices"][0]["finish_reason"], "length");
    assert_eq!(
        v["usage"],
        json!({"prompt_tokens": 8, "completion_tokens": 3, "total_tokens": 8 + 3})
    );

    let mut streaming = request.clone();
    streaming["stream"] = json!(true);
    let reply = post(&mut conn, "/v1/chat/completions", &streaming).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.headers["content-type"], "text/event-stream");
    let events = sse_events(&reply.text());
    assert_eq!(
        events[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": ""})
    );
    for e in &events {
        assert_eq!(e["object"], "chat.completion.chunk");
        assert_eq!(e["id"], events[0]["id"]);
        assert_eq!(e["model"], "successor");
        assert!(e.get("usage").is_none(), "no usage without include_usage");
    }
    for e in &events[1..] {
        assert!(e["choices"][0]["delta"].get("role").is_none());
    }
    let (text, finish) = reassemble(&events);
    assert_eq!(text, "xyz");
    assert_eq!(text, v["choices"][0]["message"]["content"]);
    assert_eq!(finish.as_deref(), Some("length"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn streamed_completions_with_include_usage_end_with_a_usage_chunk() {
    if !ort_available() {
        return;
    }
    let api = start("successor").await;
    let mut conn = api.connect().await;
    let reply = post(
        &mut conn,
        "/v1/completions",
        &json!({"prompt": "x", "max_tokens": 50, "temperature": 0, "stream": true,
                "stream_options": {"include_usage": true}}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    let events = sse_events(&reply.text());
    let (last, rest) = events.split_last().unwrap();
    assert_eq!(last["choices"], json!([]));
    assert_eq!(
        last["usage"],
        json!({"prompt_tokens": 1, "completion_tokens": 7, "total_tokens": 8})
    );
    for e in rest {
        assert_eq!(e["object"], "text_completion");
        assert_eq!(e["usage"], Value::Null);
    }
    let (text, finish) = reassemble(rest);
    assert_eq!(text, "yz{|}~");
    assert_eq!(finish.as_deref(), Some("stop"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn seeded_sampling_is_reproducible_through_the_api() {
    if !ort_available() {
        return;
    }
    let api = start("successor").await;
    let mut conn = api.connect().await;
    let sample = |seed: u64| json!({"prompt": "a", "max_tokens": 24, "temperature": 2.0, "top_p": 1.0, "seed": seed});
    let one = post(&mut conn, "/v1/completions", &sample(7)).await.json();
    let again = post(&mut conn, "/v1/completions", &sample(7)).await.json();
    let other = post(&mut conn, "/v1/completions", &sample(8)).await.json();
    assert_eq!(one["choices"][0]["text"], again["choices"][0]["text"]);
    assert_eq!(one["usage"], again["usage"]);
    assert_ne!(one["choices"][0]["text"], other["choices"][0]["text"]);
    // At temperature 2 the successor is far from certain: sampling really happened.
    assert_ne!(one["choices"][0]["text"], "bcdefghijklmnopqrstuvwxy");
}

async fn sixteen_concurrent_streams_equal_solo(model: &str) {
    let api = start(model).await;
    let prompts: Vec<String> = (0..16)
        .map(|i| "the quick brown fox jumps".chars().take(3 + i).collect())
        .collect();
    let body = |p: &str, stream: bool| json!({"prompt": p, "max_tokens": 12, "temperature": 0, "stream": stream});
    let mut solo = Vec::new();
    let mut conn = api.connect().await;
    for p in &prompts {
        let v = post(&mut conn, "/v1/completions", &body(p, false))
            .await
            .json();
        solo.push((
            v["choices"][0]["text"].as_str().unwrap().to_owned(),
            v["choices"][0]["finish_reason"]
                .as_str()
                .unwrap()
                .to_owned(),
        ));
    }
    let mut tasks = Vec::new();
    for p in prompts.clone() {
        let mut conn = api.connect().await;
        let request = body(&p, true);
        tasks.push(tokio::spawn(async move {
            let reply = post(&mut conn, "/v1/completions", &request).await;
            assert_eq!(reply.status, StatusCode::OK);
            let (text, finish) = reassemble(&sse_events(&reply.text()));
            (text, finish.unwrap())
        }));
    }
    for (task, expected) in tasks.into_iter().zip(solo) {
        assert_eq!(task.await.unwrap(), expected);
    }
    assert!(api.engine().stats().decode_steps > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_concurrent_successor_streams_complete_with_the_solo_text() {
    if !ort_available() {
        return;
    }
    sixteen_concurrent_streams_equal_solo("successor").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_concurrent_tiny_gpt_streams_complete_with_the_solo_text() {
    if !ort_available() {
        return;
    }
    sixteen_concurrent_streams_equal_solo("tiny-gpt").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn limits_answer_with_their_documented_status_codes() {
    if !ort_available() {
        return;
    }
    let api = start_with(
        "successor",
        4,
        4,
        ApiConfig {
            max_body_bytes: 2048,
            max_tokens_limit: Some(100),
            ..ApiConfig::default()
        },
    )
    .await;
    let mut conn = api.connect().await;

    // 413: the body is over the limit.
    let big = json!({"prompt": "a".repeat(4000)});
    let reply = post(&mut conn, "/v1/completions", &big).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error_code(&reply).0, "request_too_large");

    let mut conn = api.connect().await;
    // 400: the prompt alone fills the context (512).
    let reply = post(
        &mut conn,
        "/v1/completions",
        &json!({"prompt": "a".repeat(600), "max_tokens": 1}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        error_code(&reply),
        ("context_length_exceeded".into(), json!("prompt"))
    );
    let message = reply.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.contains("512") && message.contains("600"),
        "{message}"
    );

    // 400: prompt + max_tokens over the context, with the numbers.
    let reply = post(
        &mut conn,
        "/v1/completions",
        &json!({"prompt": "a".repeat(500), "max_tokens": 20}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let message = reply.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.contains("512") && message.contains("500") && message.contains("520"),
        "{message}"
    );

    // 400 with param: n = 2, max_tokens over the configured limit.
    let reply = post(
        &mut conn,
        "/v1/chat/completions",
        &json!({"messages": [{"role": "user", "content": "a"}], "n": 2}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&reply), ("unsupported_value".into(), json!("n")));
    assert_eq!(reply.json()["error"]["type"], "invalid_request_error");
    let reply = post(
        &mut conn,
        "/v1/completions",
        &json!({"prompt": "a", "max_tokens": 101}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        error_code(&reply),
        ("invalid_value".into(), json!("max_tokens"))
    );

    // 404: another model.
    let reply = post(
        &mut conn,
        "/v1/completions",
        &json!({"model": "gpt-4o", "prompt": "a"}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(
        error_code(&reply),
        ("model_not_found".into(), json!("model"))
    );

    // 400: not JSON.
    let reply = send(&mut conn, "POST", "/v1/completions", b"{nope".to_vec()).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&reply).0, "invalid_json");

    // 405: wrong method on an API path.
    let reply = get(&mut conn, "/v1/completions").await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);

    let metrics = get(&mut conn, "/metrics").await.text();
    assert!(
        metrics.contains("cocoon_requests_total{route=\"/v1/completions\",status=\"400\"} 4\n"),
        "{metrics}"
    );
    assert!(metrics.contains("cocoon_requests_total{route=\"/v1/completions\",status=\"413\"} 1\n"));
    assert!(metrics.contains("cocoon_requests_total{route=\"/v1/completions\",status=\"404\"} 1\n"));
}

/// Sends a streaming request on a raw HTTP/1.1 connection over the attested stream and
/// returns the response once its first event arrived; dropping the result closes the
/// connection.
async fn open_stream(
    conn: AttestedConnection,
    body: &Value,
) -> (
    hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    hyper::Response<hyper::body::Incoming>,
    tokio::task::JoinHandle<()>,
) {
    let io = TokioIo::new(conn.into_stream());
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io).await.unwrap();
    let task = tokio::spawn(async move {
        let _ = connection.await;
    });
    let request = Request::post("/v1/completions")
        .header("host", "localhost")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let mut response = tokio::time::timeout(STEP, sender.send_request(request))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let frame = tokio::time::timeout(STEP, response.body_mut().frame())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(frame.data_ref().unwrap().starts_with(b"data: "));
    (sender, response, task)
}

async fn eventually(what: &str, check: impl FnMut() -> bool) {
    inference_support::eventually(what, STEP, check).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_queue_answers_429_and_a_dropped_client_frees_its_slot() {
    if !ort_available() {
        return;
    }
    let api = start_with(
        "successor",
        1,
        1,
        ApiConfig {
            retry_after_secs: 3,
            ..ApiConfig::default()
        },
    )
    .await;
    let engine = Arc::clone(api.engine());
    // Decoding held: the running request stays in flight after its first token.
    engine.pause_decoding(true);
    let running = open_stream(
        api.connect().await,
        &json!({"prompt": "a", "max_tokens": 20, "temperature": 0, "stream": true}),
    )
    .await;
    assert_eq!(engine.stats().active_sequences, 1);

    // The queued one: sent on its own connection, waits for the slot.
    let mut queued_conn = api.connect().await;
    let queued = tokio::spawn(async move {
        post(
            &mut queued_conn,
            "/v1/completions",
            &json!({"prompt": "k", "max_tokens": 4, "temperature": 0, "stream": true}),
        )
        .await
    });
    eventually("the second request to queue", || {
        engine.stats().queue_depth == 1
    })
    .await;

    // Slot busy and queue full: 429 with Retry-After.
    let mut conn = api.connect().await;
    let reply = post(
        &mut conn,
        "/v1/completions",
        &json!({"prompt": "z", "max_tokens": 2, "temperature": 0}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(reply.headers["retry-after"], "3");
    let (code, _) = error_code(&reply);
    assert_eq!(code, "queue_full");
    assert_eq!(reply.json()["error"]["type"], "rate_limit_error");

    // The running client goes away: its sequence is cancelled and the queued one admitted.
    drop(running);
    eventually("the dropped sequence to be cancelled", || {
        engine.stats().finished_cancelled == 1
    })
    .await;
    engine.pause_decoding(false);
    let reply = tokio::time::timeout(STEP, queued).await.unwrap().unwrap();
    assert_eq!(reply.status, StatusCode::OK);
    let (text, finish) = reassemble(&sse_events(&reply.text()));
    assert_eq!(text, "lmno");
    assert_eq!(finish.as_deref(), Some("length"));
    let stats = engine.stats();
    assert_eq!(stats.finished_cancelled, 1);
    assert_eq!(stats.finished_length, 1);
    assert_eq!(stats.requests_rejected_queue_full, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn health_is_503_while_loading_then_200_and_models_lists_the_id() {
    if !ort_available() {
        return;
    }
    let api = start_empty(ApiConfig {
        model_id: Some("cocoon-successor".into()),
        aliases: vec!["successor-alias".into()],
        ..ApiConfig::default()
    })
    .await;
    let mut conn = api.connect().await;
    let reply = get(&mut conn, "/health").await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.json()["status"], "model_loading");
    let reply = post(&mut conn, "/v1/completions", &json!({"prompt": "a"})).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(error_code(&reply).0, "model_loading");
    // Attestation is served while the model loads.
    let (status, _) = conn.get("/v1/identity").await.unwrap();
    assert_eq!(status, StatusCode::OK);

    api.state
        .load(EngineConfig {
            threads: 1,
            ..EngineConfig::new(model_dir("successor"))
        })
        .await
        .unwrap();
    let reply = get(&mut conn, "/health").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.json(),
        json!({"status": "ok", "model": "cocoon-successor"})
    );

    let v = get(&mut conn, "/v1/models").await.json();
    assert_eq!(v["object"], "list");
    assert_eq!(v["data"][0]["id"], "cocoon-successor");
    assert_eq!(v["data"][0]["object"], "model");
    assert_eq!(v["data"][0]["owned_by"], "cocoon");
    assert_eq!(v["data"][0]["context_length"], 512);
    assert_eq!(
        v["data"][0]["onnx_sha256"],
        "82a40a0da0dae365a371d3f48582c7e006b24573488d3090bf8c35802a1c94fa"
    );
    assert_eq!(
        v["data"][0]["tokenizer_sha256"],
        "cef149945d0fd21a91aa1bf16f7ac71810a9c31c0ec6f3fff1eab3b8951fc998"
    );
    assert_eq!(
        v["data"][0]["ort_library_sha256"],
        "fc44112fbe06d7d689c57e11d3862031f64711007e4ee020f8eed5185fd2c1d3"
    );
    assert_eq!(v["data"][1]["id"], "successor-alias");
    assert_eq!(v["data"].as_array().unwrap().len(), 2);

    // The configured id and its alias are accepted; the model's own name is not.
    for (model, status) in [
        ("cocoon-successor", StatusCode::OK),
        ("successor-alias", StatusCode::OK),
        ("successor", StatusCode::NOT_FOUND),
    ] {
        let reply = post(
            &mut conn,
            "/v1/completions",
            &json!({"model": model, "prompt": "a", "max_tokens": 2, "temperature": 0}),
        )
        .await;
        assert_eq!(reply.status, status, "{model}");
    }
    let v = post(
        &mut conn,
        "/v1/completions",
        &json!({"model": "successor-alias", "prompt": "a", "max_tokens": 2, "temperature": 0}),
    )
    .await
    .json();
    assert_eq!(v["model"], "cocoon-successor");

    // Draining: 503 for new work and for /health.
    api.state.drain().await;
    let reply = get(&mut conn, "/health").await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.json()["status"], "shutting_down");
    let reply = post(&mut conn, "/v1/completions", &json!({"prompt": "a"})).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(error_code(&reply).0, "shutting_down");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn metrics_count_requests_tokens_and_latencies() {
    if !ort_available() {
        return;
    }
    let api = start("successor").await;
    let mut conn = api.connect().await;
    for stream in [false, true] {
        let reply = post(
            &mut conn,
            "/v1/completions",
            &json!({"prompt": "abc", "max_tokens": 5, "temperature": 0, "stream": stream}),
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK);
    }
    let _ = get(&mut conn, "/v1/models").await;
    // A sequence's last event reaches the client before the scheduler updates its gauge.
    let engine = Arc::clone(api.engine());
    eventually("the active-sequences gauge to drop to 0", || {
        engine.stats().active_sequences == 0
    })
    .await;
    let reply = get(&mut conn, "/metrics").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.headers["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = reply.text();
    for line in [
        "cocoon_requests_total{route=\"/v1/completions\",status=\"200\"} 2",
        "cocoon_requests_total{route=\"/v1/models\",status=\"200\"} 1",
        "cocoon_prompt_tokens_total 6",
        "cocoon_completion_tokens_total 10",
        "cocoon_time_to_first_token_seconds_count 2",
        // 5 tokens each: 4 gaps each.
        "cocoon_inter_token_latency_seconds_count 8",
        "cocoon_time_to_first_token_seconds_bucket{le=\"+Inf\"} 2",
        "cocoon_request_duration_seconds_count 2",
        "cocoon_model_loaded 1",
        "cocoon_queue_depth 0",
        "cocoon_active_sequences 0",
        "cocoon_max_sequences 16",
        "cocoon_engine_finished_total{reason=\"length\"} 2",
        "# TYPE cocoon_batch_size gauge",
        "# TYPE cocoon_time_to_first_token_seconds histogram",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
    assert!(text.lines().any(|l| l.starts_with("cocoon_batch_size ")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_passed_deadline_answers_504_or_ends_the_stream_with_an_error_event() {
    if !ort_available() {
        return;
    }
    let api = start_with(
        "successor",
        4,
        4,
        ApiConfig {
            request_timeout: Duration::from_millis(300),
            ..ApiConfig::default()
        },
    )
    .await;
    api.engine().pause_decoding(true);
    let mut conn = api.connect().await;
    let reply = post(
        &mut conn,
        "/v1/completions",
        &json!({"prompt": "a", "max_tokens": 10, "temperature": 0}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(error_code(&reply).0, "deadline_exceeded");

    let reply = post(
        &mut conn,
        "/v1/completions",
        &json!({"prompt": "a", "max_tokens": 10, "temperature": 0, "stream": true}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    let events = sse_events(&reply.text());
    let last = events.last().unwrap();
    assert_eq!(last["error"]["code"], "deadline_exceeded");
    assert_eq!(api.engine().stats().finished_deadline, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shutdown_stops_accepting_and_drains_the_stream_in_flight() {
    if !ort_available() {
        return;
    }
    let api = start("successor").await;
    let engine = Arc::clone(api.engine());
    engine.pause_decoding(true);
    let mut conn = api.connect().await;
    let in_flight = tokio::spawn(async move {
        post(
            &mut conn,
            "/v1/chat/completions",
            &json!({"messages": [{"role": "user", "content": "a"}], "max_tokens": 6,
                    "temperature": 0, "stream": true}),
        )
        .await
    });
    eventually("the request to start", || {
        engine.stats().active_sequences == 1
    })
    .await;
    let addr = api.handle.local_addr();
    let state = Arc::clone(&api.state);
    state.begin_drain();
    let shutdown = tokio::spawn(api.handle.shutdown());
    // The listener closes: new connections are refused.
    eventually("the listener to close", || {
        std::net::TcpStream::connect(addr).is_err()
    })
    .await;
    assert!(!shutdown.is_finished(), "waits for the request in flight");
    engine.pause_decoding(false);
    let reply = tokio::time::timeout(STEP, in_flight)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reply.status, StatusCode::OK);
    let (text, finish) = reassemble(&sse_events(&reply.text()));
    assert_eq!(text, "bcdefg");
    assert_eq!(finish.as_deref(), Some("length"));
    tokio::time::timeout(STEP, shutdown).await.unwrap().unwrap();
    tokio::time::timeout(STEP, state.drain()).await.unwrap();
    assert!(engine.is_stopped());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dropped_client_of_a_non_streaming_request_cancels_its_sequence() {
    if !ort_available() {
        return;
    }
    let api = start_with("successor", 1, 1, ApiConfig::default()).await;
    let engine = Arc::clone(api.engine());
    engine.pause_decoding(true);
    let conn = api.connect().await;
    let io = TokioIo::new(conn.into_stream());
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io).await.unwrap();
    let driver = tokio::spawn(async move {
        let _ = connection.await;
    });
    let request = Request::post("/v1/completions")
        .header("host", "localhost")
        .body(Full::new(Bytes::from(
            json!({"prompt": "a", "max_tokens": 20, "temperature": 0}).to_string(),
        )))
        .unwrap();
    let pending = tokio::spawn(async move { sender.send_request(request).await });
    eventually("the request to start", || {
        engine.stats().active_sequences == 1
    })
    .await;
    pending.abort();
    driver.abort();
    eventually("the sequence to be cancelled", || {
        engine.stats().finished_cancelled == 1
    })
    .await;
    // The gauge follows, though the scheduler has gone idle.
    eventually("the active-sequences gauge to drop to 0", || {
        engine.stats().active_sequences == 0
    })
    .await;
    // The slot is free: a new request runs to completion.
    engine.pause_decoding(false);
    let mut conn = api.connect().await;
    let reply = post(
        &mut conn,
        "/v1/completions",
        &json!({"prompt": "k", "max_tokens": 3, "temperature": 0}),
    )
    .await;
    assert_eq!(reply.json()["choices"][0]["text"], "lmn");
    assert_eq!(engine.stats().finished_cancelled, 1);
}

/// `scripts/setup`'s SmolLM2; absent: a loud skip, or a failure under `COCOON_REQUIRE_ORT`.
fn smollm2_dir() -> Option<std::path::PathBuf> {
    let dir =
        cocoon_enclave::inference::workspace_root().join(".cache/models/smollm2-135m-instruct");
    if dir.join("model.onnx").is_file() {
        return Some(dir);
    }
    assert!(
        std::env::var_os("COCOON_REQUIRE_ORT").is_none(),
        "COCOON_REQUIRE_ORT is set but {} is missing (run scripts/setup)",
        dir.display()
    );
    inference_support::loud(&format!(
        "\n!!!!!!!! SKIPPED: SmolLM2 not found at {} — run scripts/setup !!!!!!!!\n",
        dir.display()
    ));
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn smollm2_answers_the_paris_question_over_the_api_streamed_and_not() {
    if !ort_available() {
        return;
    }
    let Some(dir) = smollm2_dir() else { return };
    let api = start_empty(ApiConfig::default()).await;
    api.state
        .load(EngineConfig {
            model_dir: dir,
            threads: 2,
            max_sequences: 4,
            queue_capacity: 8,
            max_context: None,
            execution_provider: cocoon_enclave::inference::ExecutionProvider::Cpu,
        })
        .await
        .unwrap();
    let mut conn = api.connect().await;
    let id = get(&mut conn, "/v1/models").await.json()["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let request = json!({
        "model": id,
        "messages": [{"role": "user", "content": "What is the capital of France?"}],
        "max_tokens": 24,
        "temperature": 0,
    });
    let v = post(&mut conn, "/v1/chat/completions", &request)
        .await
        .json();
    let answer = v["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(answer.contains("Paris"), "answer: {answer:?}");
    assert!(v["usage"]["completion_tokens"].as_u64().unwrap() <= 24);
    let mut streaming = request.clone();
    streaming["stream"] = json!(true);
    let reply = post(&mut conn, "/v1/chat/completions", &streaming).await;
    let (text, finish) = reassemble(&sse_events(&reply.text()));
    assert_eq!(text, answer);
    assert_eq!(finish.as_deref(), v["choices"][0]["finish_reason"].as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_body_that_does_not_arrive_gets_408_and_holds_the_only_body_slot_until_then() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    if !ort_available() {
        return;
    }
    let api = start_with(
        "successor",
        2,
        2,
        ApiConfig {
            body_timeout: Duration::from_millis(800),
            max_concurrent_bodies: 1,
            ..ApiConfig::default()
        },
    )
    .await;
    let mut conn = api.connect().await;
    // A client announces 100 bytes and sends none: it holds the only body slot.
    let mut slow = api.connect().await;
    let started = std::time::Instant::now();
    slow.stream()
        .write_all(b"POST /v1/completions HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n")
        .await
        .unwrap();
    slow.stream().flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    // A complete request waits for the slot, then is served.
    let reply = post(
        &mut conn,
        "/v1/completions",
        &json!({"prompt": "a", "max_tokens": 2, "temperature": 0}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json()["choices"][0]["text"], "bc");
    assert!(
        started.elapsed() >= Duration::from_millis(700),
        "served after {:?}: did not wait for the slot",
        started.elapsed()
    );
    // The slow one got 408 body_timeout.
    let mut response = Vec::new();
    let mut buf = [0u8; 4096];
    while !response.ends_with(b"}}") {
        let n = tokio::time::timeout(STEP, slow.stream().read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "closed before the response: {response:?}");
        response.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8(response).unwrap();
    assert!(text.starts_with("HTTP/1.1 408 "), "{text}");
    assert!(text.contains("\"code\":\"body_timeout\""), "{text}");
}
