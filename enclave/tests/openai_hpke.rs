//! HPKE-sealed bodies through the whole stack (docs/hpke.md, "HTTP carriage (v1)"): the
//! simulated TEE, RA-TLS (verified by `cocoon-client`), HTTP/1.1, the engine running the
//! committed `successor` test model. The client side is `cocoon_attestation::bodies`.
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

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bytes::Bytes;
use cocoon_attestation::bodies::{RequestAad, RequestSealer, ResponseOpener};
use cocoon_attestation::claims::HpkePublicKey;
use cocoon_attestation::ratls::RaTlsVerifier;
use cocoon_client::{AttestedConnection, Connector, Timeouts};
use cocoon_enclave::config::HpkeMode;
use cocoon_enclave::identity::{Identity, IdentityConfig};
use cocoon_enclave::inference::{Engine, EngineConfig};
use cocoon_enclave::openai::{
    self, ApiConfig, OpenAi, INNER_CONTENT_TYPE_HEADER, REQUEST_ID_HEADER, SEALED_CONTENT_TYPE,
    TIMESTAMP_HEADER,
};
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
const CHAT: &str = "/v1/chat/completions";
const COMPLETIONS: &str = "/v1/completions";

struct Api {
    handle: ServerHandle,
    state: Arc<OpenAi>,
    connector: Connector,
}

impl Api {
    fn engine(&self) -> &Arc<Engine> {
        self.state.engine().unwrap()
    }

    fn key(&self) -> &HpkePublicKey {
        self.state.hpke_public_key().expect("an HPKE key")
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

    fn metric(&self, line_start: &str) -> u64 {
        let text = self
            .state
            .metrics
            .render(Some(&self.engine().stats()), true);
        let line = text
            .lines()
            .find(|l| l.starts_with(line_start))
            .unwrap_or_else(|| panic!("no metric {line_start}:\n{text}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    }

    fn refused(&self, reason: &str) -> u64 {
        self.metric(&format!(
            "cocoon_sealed_requests_refused_total{{reason=\"{reason}\"}} "
        ))
    }
}

fn verifier() -> Arc<RaTlsVerifier> {
    inference_support::sim_verifier()
}

/// A server with the `successor` model whose certificate's claims carry the API's HPKE key, as
/// `cocoon-enclave serve` builds it.
async fn start(mode: HpkeMode) -> Api {
    let api = ApiConfig {
        hpke_mode: mode,
        ..ApiConfig::default()
    };
    let state = OpenAi::new(api);
    let attester: Arc<dyn Attester> = Arc::new(SimAttester::tdx().unwrap());
    let identity = IdentityConfig {
        hpke_public_key: state.hpke_public_key().cloned(),
        ..IdentityConfig::default()
    };
    let identity = Identity::issue_now(attester.as_ref(), &identity).unwrap();
    let resolver = Arc::new(IdentityResolver::new(identity));
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
    let engine = Engine::load(EngineConfig {
        model_dir: model_dir("successor"),
        threads: 1,
        max_sequences: 4,
        queue_capacity: 16,
        max_context: None,
        execution_provider: cocoon_enclave::inference::ExecutionProvider::Cpu,
    })
    .unwrap();
    state.set_engine(engine);
    Api {
        handle,
        state,
        connector: Connector::new(verifier(), None).unwrap(),
    }
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

    /// The `error.code` of a plain OpenAI-style error.
    fn code(&self) -> String {
        let v = self.json();
        assert!(v["error"]["message"].is_string(), "{v}");
        assert!(v["error"]["type"].is_string(), "{v}");
        assert!(v["error"].get("param").is_some(), "{v}");
        v["error"]["code"].as_str().unwrap().to_owned()
    }
}

async fn send(conn: &mut AttestedConnection, request: Request<Full<Bytes>>) -> Reply {
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

fn now() -> i64 {
    cocoon_client::unix_now()
}

/// A sealed request: the envelope, its AAD and the opener of its response.
struct Sealed {
    envelope: Vec<u8>,
    aad: RequestAad,
    opener: ResponseOpener,
}

fn seal_for(key: &HpkePublicKey, path: &str, timestamp: i64, body: &Value) -> Sealed {
    let aad = RequestAad {
        method: "POST".into(),
        path: path.into(),
        request_id: rand::random(),
        timestamp,
    };
    let (envelope, opener) =
        RequestSealer::seal_request(key, body.to_string().as_bytes(), &aad).unwrap();
    Sealed {
        envelope: envelope.0,
        aad,
        opener,
    }
}

/// The HTTP request carrying `sealed` to `path`, with the AAD's headers.
fn sealed_request(sealed: &Sealed, path: &str) -> Request<Full<Bytes>> {
    Request::post(path)
        .header("content-type", SEALED_CONTENT_TYPE)
        .header(REQUEST_ID_HEADER, hex::encode(sealed.aad.request_id))
        .header(TIMESTAMP_HEADER, sealed.aad.timestamp.to_string())
        .body(Full::new(Bytes::from(sealed.envelope.clone())))
        .unwrap()
}

fn plain_request(path: &str, body: &Value) -> Request<Full<Bytes>> {
    Request::post(path)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

/// Opens a sealed non-streamed reply: one final chunk.
fn open_buffered(reply: &Reply, opener: &mut ResponseOpener) -> Value {
    assert_eq!(reply.headers["content-type"], SEALED_CONTENT_TYPE);
    assert_eq!(reply.headers[INNER_CONTENT_TYPE_HEADER], "application/json");
    let plain = opener.open_chunk(&reply.body).unwrap();
    opener.finish().unwrap();
    serde_json::from_slice(&plain).unwrap()
}

/// Opens a sealed SSE reply: `data: <base64 chunk>` events, the last one final and empty;
/// returns the inner SSE body.
fn open_stream(reply: &Reply, opener: &mut ResponseOpener) -> String {
    assert_eq!(reply.headers["content-type"], "text/event-stream");
    assert_eq!(
        reply.headers[INNER_CONTENT_TYPE_HEADER],
        "text/event-stream"
    );
    let text = std::str::from_utf8(&reply.body).unwrap();
    let mut inner = Vec::new();
    let events: Vec<&str> = text.split_terminator("\n\n").collect();
    assert!(events.len() >= 2, "{text:?}");
    for (i, event) in events.iter().enumerate() {
        let b64 = event
            .strip_prefix("data: ")
            .unwrap_or_else(|| panic!("not an SSE data line: {event:?}"));
        let plain = opener.open_chunk(&STANDARD.decode(b64).unwrap()).unwrap();
        if i + 1 == events.len() {
            assert!(plain.is_empty(), "the final chunk is empty");
            assert!(opener.is_finished());
        } else {
            assert!(!opener.is_finished());
        }
        inner.extend(plain);
    }
    opener.finish().unwrap();
    String::from_utf8(inner).unwrap()
}

/// The text of an inner SSE chat or completion stream, which must end with `[DONE]`.
fn streamed_text(body: &str) -> String {
    assert!(body.ends_with("data: [DONE]\n\n"), "{body:?}");
    let mut text = String::new();
    for frame in body.split_terminator("\n\n") {
        let payload = frame.strip_prefix("data: ").unwrap();
        if payload == "[DONE]" {
            continue;
        }
        let v: Value = serde_json::from_str(payload).unwrap();
        for choice in v["choices"].as_array().unwrap() {
            if let Some(t) = choice["delta"]["content"].as_str() {
                text.push_str(t);
            }
            if let Some(t) = choice["text"].as_str() {
                text.push_str(t);
            }
        }
    }
    text
}

fn chat_body(stream: bool) -> Value {
    json!({
        "model": "successor",
        "messages": [{"role": "system", "content": "Hel"}, {"role": "user", "content": "lo, w"}],
        "max_tokens": 3,
        "temperature": 0,
        "stream": stream,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sealed_chat_answers_equal_plaintext_ones_streamed_and_not() {
    if !ort_available() {
        return;
    }
    let api = start(HpkeMode::Optional).await;
    let mut conn = api.connect().await;

    let plain = send(&mut conn, plain_request(CHAT, &chat_body(false))).await;
    assert_eq!(plain.status, StatusCode::OK);
    let plain = plain.json();
    assert_eq!(plain["choices"][0]["message"]["content"], "xyz");

    let mut sealed = seal_for(api.key(), CHAT, now(), &chat_body(false));
    let reply = send(&mut conn, sealed_request(&sealed, CHAT)).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(
        !reply.body.windows(3).any(|w| w == b"xyz"),
        "the answer travels sealed"
    );
    let v = open_buffered(&reply, &mut sealed.opener);
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["choices"][0]["message"], plain["choices"][0]["message"]);
    assert_eq!(v["choices"][0]["finish_reason"], "length");
    assert_eq!(v["usage"], plain["usage"]);

    let plain_stream = send(&mut conn, plain_request(CHAT, &chat_body(true))).await;
    let plain_text = streamed_text(std::str::from_utf8(&plain_stream.body).unwrap());
    assert_eq!(plain_text, "xyz");
    let mut sealed = seal_for(api.key(), CHAT, now(), &chat_body(true));
    let reply = send(&mut conn, sealed_request(&sealed, CHAT)).await;
    assert_eq!(reply.status, StatusCode::OK);
    let inner = open_stream(&reply, &mut sealed.opener);
    assert_eq!(streamed_text(&inner), plain_text);

    assert_eq!(api.metric("cocoon_sealed_requests_total "), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sealed_completions_stream_and_buffered_equal_plaintext() {
    if !ort_available() {
        return;
    }
    let api = start(HpkeMode::Optional).await;
    let mut conn = api.connect().await;
    let body = json!({"prompt": "abc", "max_tokens": 5, "temperature": 0});
    let mut sealed = seal_for(api.key(), COMPLETIONS, now(), &body);
    let reply = send(&mut conn, sealed_request(&sealed, COMPLETIONS)).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        open_buffered(&reply, &mut sealed.opener)["choices"][0]["text"],
        "defgh"
    );
    let mut streaming = body.clone();
    streaming["stream"] = json!(true);
    let mut sealed = seal_for(api.key(), COMPLETIONS, now(), &streaming);
    let reply = send(&mut conn, sealed_request(&sealed, COMPLETIONS)).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        streamed_text(&open_stream(&reply, &mut sealed.opener)),
        "defgh"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_claims_in_the_certificate_at_identity_and_in_fresh_attestations_carry_the_openers_key()
{
    if !ort_available() {
        return;
    }
    let api = start(HpkeMode::Optional).await;
    let key = api.key().clone();
    assert_eq!(key.kem_id(), 0x0020);
    let mut conn = api.connect().await;
    let certificate_claims = conn.peer().claims.clone().unwrap();
    assert_eq!(certificate_claims.hpke_public_key.as_ref(), Some(&key));

    let reply = send(
        &mut conn,
        Request::get("/v1/identity")
            .body(Full::new(Bytes::new()))
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.json()["claims"]["hpke_public_key"],
        json!({"kem_id": 0x0020, "key": hex::encode(key.key())})
    );

    let fresh = cocoon_client::fresh_attestation_random(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        fresh.claims.as_ref().unwrap().hpke_public_key.as_ref(),
        Some(&key)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flipped_ciphertext_byte_is_400_decrypt_failed_and_runs_no_generation() {
    if !ort_available() {
        return;
    }
    let api = start(HpkeMode::Optional).await;
    let mut conn = api.connect().await;
    let mut sealed = seal_for(api.key(), COMPLETIONS, now(), &json!({"prompt": "a"}));
    let good = sealed.envelope.clone();
    let last = sealed.envelope.len() - 1;
    sealed.envelope[last] ^= 0x01;
    let reply = send(&mut conn, sealed_request(&sealed, COMPLETIONS)).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.headers["content-type"], "application/json");
    assert_eq!(reply.code(), "sealed_body_decrypt_failed");
    assert_eq!(api.refused("sealed_body_decrypt_failed"), 1);
    assert_eq!(api.metric("cocoon_sealed_requests_total "), 0);
    assert_eq!(api.engine().stats().requests_submitted, 0);

    // The forged ciphertext did not burn the request id: the genuine one still opens.
    sealed.envelope = good;
    let reply = send(&mut conn, sealed_request(&sealed, COMPLETIONS)).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(api.engine().stats().requests_submitted, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_sealed_request_sent_twice_is_409_request_replayed() {
    if !ort_available() {
        return;
    }
    let api = start(HpkeMode::Optional).await;
    let mut conn = api.connect().await;
    let body = json!({"prompt": "a", "max_tokens": 2, "temperature": 0});
    let sealed = seal_for(api.key(), COMPLETIONS, now(), &body);
    let first = send(&mut conn, sealed_request(&sealed, COMPLETIONS)).await;
    assert_eq!(first.status, StatusCode::OK);
    let again = send(&mut conn, sealed_request(&sealed, COMPLETIONS)).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.code(), "request_replayed");
    assert_eq!(api.refused("request_replayed"), 1);
    assert_eq!(api.engine().stats().requests_submitted, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stale_or_future_timestamp_is_400_out_of_window() {
    if !ort_available() {
        return;
    }
    let api = start(HpkeMode::Optional).await;
    let mut conn = api.connect().await;
    for timestamp in [now() - 3600, now() + 3600] {
        let sealed = seal_for(api.key(), COMPLETIONS, timestamp, &json!({"prompt": "a"}));
        let reply = send(&mut conn, sealed_request(&sealed, COMPLETIONS)).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST);
        assert_eq!(reply.code(), "request_timestamp_out_of_window");
    }
    assert_eq!(api.refused("request_timestamp_out_of_window"), 2);
    assert_eq!(api.engine().stats().requests_submitted, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_body_sealed_for_another_path_or_with_other_headers_fails_to_decrypt() {
    if !ort_available() {
        return;
    }
    let api = start(HpkeMode::Optional).await;
    let mut conn = api.connect().await;
    let body = json!({"model": "successor", "messages": [{"role": "user", "content": "a"}]});
    let sealed = seal_for(api.key(), COMPLETIONS, now(), &body);
    let reply = send(&mut conn, sealed_request(&sealed, CHAT)).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.code(), "sealed_body_decrypt_failed");

    // The query is part of the path.
    let reply = send(
        &mut conn,
        sealed_request(&sealed, &format!("{COMPLETIONS}?x=1")),
    )
    .await;
    assert_eq!(reply.code(), "sealed_body_decrypt_failed");

    // Another timestamp (within the window) or request id than the sealed one.
    let mut moved = sealed_request(&sealed, COMPLETIONS);
    moved.headers_mut().insert(
        TIMESTAMP_HEADER,
        (sealed.aad.timestamp - 1).to_string().parse().unwrap(),
    );
    let reply = send(&mut conn, moved).await;
    assert_eq!(reply.code(), "sealed_body_decrypt_failed");
    let mut moved = sealed_request(&sealed, COMPLETIONS);
    moved.headers_mut().insert(
        REQUEST_ID_HEADER,
        hex::encode([0xab_u8; 16]).parse().unwrap(),
    );
    let reply = send(&mut conn, moved).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.code(), "sealed_body_decrypt_failed");
    assert_eq!(api.refused("sealed_body_decrypt_failed"), 4);
    assert_eq!(api.engine().stats().requests_submitted, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn missing_or_malformed_sealing_headers_are_400_sealed_headers_invalid() {
    if !ort_available() {
        return;
    }
    let api = start(HpkeMode::Optional).await;
    let mut conn = api.connect().await;
    let sealed = seal_for(api.key(), COMPLETIONS, now(), &json!({"prompt": "a"}));
    let upper = hex::encode(sealed.aad.request_id).to_uppercase();
    let cases: Vec<(&str, Option<String>)> = vec![
        (REQUEST_ID_HEADER, None),
        (TIMESTAMP_HEADER, None),
        (REQUEST_ID_HEADER, Some(upper)),
        (REQUEST_ID_HEADER, Some("abcd".into())),
        (TIMESTAMP_HEADER, Some("yesterday".into())),
        (TIMESTAMP_HEADER, Some("1.5".into())),
    ];
    let n = cases.len() as u64;
    for (name, value) in cases {
        let mut request = sealed_request(&sealed, COMPLETIONS);
        match &value {
            None => {
                request.headers_mut().remove(name);
            }
            Some(v) => {
                request.headers_mut().insert(name, v.parse().unwrap());
            }
        }
        let reply = send(&mut conn, request).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{name}: {value:?}");
        assert_eq!(reply.code(), "sealed_headers_invalid", "{name}: {value:?}");
    }
    assert_eq!(api.refused("sealed_headers_invalid"), n);
    // A malformed envelope (shorter than its header) and another version.
    let mut short = seal_for(api.key(), COMPLETIONS, now(), &json!({"prompt": "a"}));
    short.envelope.truncate(20);
    let reply = send(&mut conn, sealed_request(&short, COMPLETIONS)).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.code(), "sealed_body_malformed");
    let mut v2 = seal_for(api.key(), COMPLETIONS, now(), &json!({"prompt": "a"}));
    v2.envelope[0] = 2;
    let reply = send(&mut conn, sealed_request(&v2, COMPLETIONS)).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.code(), "sealed_body_unsupported");
    assert_eq!(api.engine().stats().requests_submitted, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn errors_after_the_envelope_opened_are_sealed_with_their_status() {
    if !ort_available() {
        return;
    }
    let api = start(HpkeMode::Optional).await;
    let mut conn = api.connect().await;
    let mut sealed = seal_for(
        api.key(),
        COMPLETIONS,
        now(),
        &json!({"model": "no-such-model", "prompt": "a"}),
    );
    let reply = send(&mut conn, sealed_request(&sealed, COMPLETIONS)).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    let v = open_buffered(&reply, &mut sealed.opener);
    assert_eq!(v["error"]["code"], "model_not_found");

    let mut sealed = seal_for(api.key(), COMPLETIONS, now(), &json!({"prompt": 5}));
    let reply = send(&mut conn, sealed_request(&sealed, COMPLETIONS)).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let v = open_buffered(&reply, &mut sealed.opener);
    assert_eq!(v["error"]["param"], "prompt");
    assert_eq!(api.metric("cocoon_sealed_requests_total "), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn required_mode_refuses_plaintext_403_and_serves_sealed() {
    if !ort_available() {
        return;
    }
    let api = start(HpkeMode::Required).await;
    let mut conn = api.connect().await;
    let body = json!({"prompt": "abc", "max_tokens": 5, "temperature": 0});
    let reply = send(&mut conn, plain_request(COMPLETIONS, &body)).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(reply.code(), "encryption_required");
    assert_eq!(api.refused("encryption_required"), 1);
    assert_eq!(api.engine().stats().requests_submitted, 0);
    // GET routes stay plain.
    let models = send(
        &mut conn,
        Request::get("/v1/models")
            .body(Full::new(Bytes::new()))
            .unwrap(),
    )
    .await;
    assert_eq!(models.status, StatusCode::OK);
    let mut sealed = seal_for(api.key(), COMPLETIONS, now(), &body);
    let reply = send(&mut conn, sealed_request(&sealed, COMPLETIONS)).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        open_buffered(&reply, &mut sealed.opener)["choices"][0]["text"],
        "defgh"
    );
    assert_eq!(
        conn.peer()
            .claims
            .as_ref()
            .unwrap()
            .hpke_public_key
            .as_ref(),
        Some(api.key())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn off_mode_refuses_sealed_415_and_publishes_no_key() {
    if !ort_available() {
        return;
    }
    let api = start(HpkeMode::Off).await;
    assert!(api.state.hpke_public_key().is_none());
    let mut conn = api.connect().await;
    assert_eq!(conn.peer().claims.as_ref().unwrap().hpke_public_key, None);
    let identity = send(
        &mut conn,
        Request::get("/v1/identity")
            .body(Full::new(Bytes::new()))
            .unwrap(),
    )
    .await;
    assert_eq!(identity.json()["claims"]["hpke_public_key"], Value::Null);
    // Sealed to some key: the enclave has none.
    let other = cocoon_attestation::bodies::RequestOpener::generate().unwrap();
    let sealed = seal_for(
        other.public_key(),
        COMPLETIONS,
        now(),
        &json!({"prompt": "a"}),
    );
    let reply = send(&mut conn, sealed_request(&sealed, COMPLETIONS)).await;
    assert_eq!(reply.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(reply.code(), "encryption_unavailable");
    assert_eq!(api.refused("encryption_unavailable"), 1);
    // Plaintext is served.
    let reply = send(
        &mut conn,
        plain_request(
            COMPLETIONS,
            &json!({"prompt": "abc", "max_tokens": 5, "temperature": 0}),
        ),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json()["choices"][0]["text"], "defgh");
}

async fn eventually(what: &str, check: impl FnMut() -> bool) {
    inference_support::eventually(what, STEP, check).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_that_drops_a_sealed_stream_cancels_its_sequence() {
    if !ort_available() {
        return;
    }
    let api = start(HpkeMode::Optional).await;
    let engine = Arc::clone(api.engine());
    let conn = api.connect().await;
    let body = json!({"prompt": "a", "max_tokens": 20, "temperature": 0, "stream": true});
    let mut sealed = seal_for(api.key(), COMPLETIONS, now(), &body);
    let io = TokioIo::new(conn.into_stream());
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io).await.unwrap();
    let driver = tokio::spawn(async move {
        let _ = connection.await;
    });
    let mut request = sealed_request(&sealed, COMPLETIONS);
    request
        .headers_mut()
        .insert("host", "localhost".parse().unwrap());
    engine.pause_decoding(true);
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
    let event = std::str::from_utf8(frame.data_ref().unwrap()).unwrap();
    let chunk = STANDARD
        .decode(event.strip_prefix("data: ").unwrap().trim_end())
        .unwrap();
    assert!(sealed
        .opener
        .open_chunk(&chunk)
        .unwrap()
        .starts_with(b"data: "));
    assert_eq!(engine.stats().active_sequences, 1);
    drop(response);
    drop(sender);
    driver.abort();
    eventually("the sequence to be cancelled", || {
        engine.stats().finished_cancelled == 1
    })
    .await;
    engine.pause_decoding(false);
}
