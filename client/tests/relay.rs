//! Encrypted prompts through an untrusted relay (issue #5): local client → `cocoon gateway`
//! (relayed upstream: plain HTTP) → a relay that terminates TLS and logs every byte it forwards
//! → the enclave (simulated TDX, successor model, HPKE key in its claims).
//!
//! The relay sees the whole HTTP exchange in plaintext — request lines, headers, the
//! attestation fetch — but no prompt or answer text; a flipped ciphertext byte in either
//! direction is a clean error; replaying a captured request is refused by the enclave.
#![cfg(feature = "sim")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]

mod common;
mod model_enclave;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use cocoon_client::gateway::Upstream;
use cocoon_enclave::config::HpkeMode;
use cocoon_enclave::identity::IdentityConfig;
use cocoon_enclave::openai::ApiConfig;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use model_enclave::{
    ort_available, start_gateway, start_with_api, Api, RunningGateway, SIM_POLICY, STEP,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The successor model continues the alphabet: these strings are the prompt and the start of
/// its greedy answer, long enough never to appear in ciphertext by chance.
const PROMPT: &str = "klmnopqrst";
const ANSWER: &str = "uvwxy";

/// What the relay does to the traffic besides logging it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tamper {
    Nothing,
    /// Change one byte of the first `POST` body (client → enclave), inside the ciphertext.
    RequestBody,
    /// Change one byte of the body of the response to the first `POST` (enclave → client).
    ResponseBody,
}

#[derive(Default)]
struct Log {
    to_enclave: Vec<u8>,
    to_client: Vec<u8>,
}

struct Relay {
    addr: SocketAddr,
    log: Arc<Mutex<Log>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn tls_to(enclave: SocketAddr) -> tokio_rustls::client::TlsStream<TcpStream> {
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])
    .unwrap()
    .dangerous()
    .with_custom_certificate_verifier(Arc::new(common::AcceptAnything))
    .with_no_client_auth();
    let tcp = TcpStream::connect(enclave).await.unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect("localhost".try_into().unwrap(), tcp)
        .await
        .unwrap()
}

/// Where, in one direction's bytes so far, the byte to change is (if it is known yet):
/// `offset` bytes into the body of the first message after a `POST` request line.
fn tamper_position(bytes: &[u8], response: bool, offset: usize) -> Option<usize> {
    let post = find(bytes, b"POST ");
    let from = if response {
        // The response to the POST: the first head after the enclave's earlier answers
        // (the relayed attestation fetch is answered first).
        let heads: Vec<usize> = all(bytes, b"HTTP/1.1 ");
        *heads.get(1)?
    } else {
        post?
    };
    let end = find(&bytes[from..], b"\r\n\r\n")? + from + 4;
    Some(end + offset)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn all(hay: &[u8], needle: &[u8]) -> Vec<usize> {
    hay.windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .map(|(i, _)| i)
        .collect()
}

/// Copies one direction, logging every byte and changing the one `tamper` aims at.
async fn pump(
    mut from: impl tokio::io::AsyncRead + Unpin,
    mut to: impl tokio::io::AsyncWrite + Unpin,
    log: Arc<Mutex<Log>>,
    to_enclave: bool,
    tamper: Tamper,
) {
    let aim = match tamper {
        Tamper::RequestBody if to_enclave => Some(false),
        Tamper::ResponseBody if !to_enclave => Some(true),
        _ => None,
    };
    let mut done = false;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let chunk = &mut buf[..n];
        {
            let mut log = log.lock().unwrap();
            let seen = if to_enclave {
                &mut log.to_enclave
            } else {
                &mut log.to_client
            };
            let start = seen.len();
            seen.extend_from_slice(chunk);
            if let (Some(response), false) = (aim, done) {
                // 60 bytes in: past the envelope header (39 bytes) or a chunk header and the
                // `data: ` of a sealed event, i.e. inside ciphertext or its base64.
                if let Some(at) = tamper_position(seen, response, 60) {
                    if at >= start && at < start + n {
                        let b = &mut chunk[at - start];
                        *b = if *b == b'A' { b'B' } else { b'A' };
                        done = true;
                    }
                }
            }
        }
        if to.write_all(chunk).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

/// A relay on loopback: plain TCP in, TLS (checking nothing) to the enclave, every byte logged.
async fn relay(enclave: SocketAddr, tamper: Tamper) -> Relay {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let log = Arc::new(Mutex::new(Log::default()));
    let shared = Arc::clone(&log);
    let task = tokio::spawn(async move {
        loop {
            let (client, _) = listener.accept().await.unwrap();
            let upstream = tls_to(enclave).await;
            let (cr, cw) = tokio::io::split(client);
            let (ur, uw) = tokio::io::split(upstream);
            tokio::spawn(pump(cr, uw, Arc::clone(&shared), true, tamper));
            tokio::spawn(pump(ur, cw, Arc::clone(&shared), false, tamper));
        }
    });
    Relay { addr, log, task }
}

async fn gateway_through(relay: &Relay) -> RunningGateway {
    start_gateway(Upstream::Relayed(relay.addr.to_string()), SIM_POLICY, true).await
}

async fn enclave(mode: HpkeMode) -> Api {
    start_with_api(
        IdentityConfig::default(),
        ApiConfig {
            hpke_mode: mode,
            ..ApiConfig::default()
        },
    )
    .await
}

async fn post_chat(addr: SocketAddr, stream: bool) -> (u16, Bytes) {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    let body = serde_json::json!({
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": 5,
        "temperature": 0,
        "stream": stream,
    });
    let request = http::Request::post("/v1/chat/completions")
        .header("host", "localhost")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    tokio::time::timeout(STEP, async {
        let response = sender.send_request(request).await.unwrap();
        let status = response.status().as_u16();
        (
            status,
            response.into_body().collect().await.unwrap().to_bytes(),
        )
    })
    .await
    .expect("answered in time")
}

fn answer_of(body: &[u8], stream: bool) -> String {
    if !stream {
        let json: serde_json::Value = serde_json::from_slice(body).unwrap();
        return json["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .to_owned();
    }
    let mut parser = cocoon_client::SseDataLines::new(1 << 20);
    let mut text = String::new();
    for data in parser.push(body).unwrap() {
        if data != "[DONE]" {
            let event: serde_json::Value = serde_json::from_str(&data).unwrap();
            if let Some(t) = event["choices"][0]["delta"]["content"].as_str() {
                text.push_str(t);
            }
        }
    }
    text
}

fn assert_no_secret_in(log: &Log) {
    for (name, bytes) in [
        ("to the enclave", &log.to_enclave),
        ("to the client", &log.to_client),
    ] {
        for secret in [PROMPT, ANSWER] {
            assert!(
                find(bytes, secret.as_bytes()).is_none(),
                "the relay saw {secret:?} in the bytes {name}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logging_relay_sees_no_prompt_and_no_answer() {
    if !ort_available() {
        return;
    }
    let api = enclave(HpkeMode::Required).await;
    let relay = relay(api.handle.local_addr(), Tamper::Nothing).await;
    let gw = gateway_through(&relay).await;
    for stream in [false, true] {
        let (status, body) = post_chat(gw.addr, stream).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        assert!(
            answer_of(&body, stream).starts_with(ANSWER),
            "stream {stream}"
        );
    }
    let log = relay.log.lock().unwrap();
    // The relay did carry the exchange: attestation fetches and sealed requests in the clear.
    assert!(find(&log.to_enclave, b"GET /v1/attestation?nonce=").is_some());
    assert!(find(&log.to_enclave, b"POST /v1/chat/completions").is_some());
    assert!(find(&log.to_enclave, b"application/cocoon-hpke").is_some());
    assert!(find(&log.to_client, b"cocoon-content-type").is_some());
    assert_no_secret_in(&log);
    assert_eq!(gw.gateway.stats.sealed.load(Ordering::Relaxed), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flipped_request_ciphertext_byte_is_refused_by_the_enclave_and_nothing_runs() {
    if !ort_available() {
        return;
    }
    let api = enclave(HpkeMode::Required).await;
    let relay = relay(api.handle.local_addr(), Tamper::RequestBody).await;
    let gw = gateway_through(&relay).await;
    let (status, body) = post_chat(gw.addr, false).await;
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        json["error"]["code"], "sealed_body_decrypt_failed",
        "{json}"
    );
    assert!(api.metrics().await.contains("sealed_body_decrypt_failed"));
    assert_no_secret_in(&relay.log.lock().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flipped_response_ciphertext_byte_is_a_clean_error_and_never_shown() {
    if !ort_available() {
        return;
    }
    for stream in [false, true] {
        let api = enclave(HpkeMode::Required).await;
        let relay = relay(api.handle.local_addr(), Tamper::ResponseBody).await;
        let gw = gateway_through(&relay).await;
        let (status, body) = post_chat(gw.addr, stream).await;
        let text = String::from_utf8_lossy(&body).into_owned();
        assert!(!text.contains(ANSWER), "stream {stream}: {text}");
        if stream {
            // The head was already relayed: the stream ends in an OpenAI error event, no [DONE].
            assert_eq!(status, 200, "{text}");
            assert!(
                text.contains("\"code\":\"sealed_response_invalid\""),
                "{text}"
            );
            assert!(!text.contains("[DONE]"), "{text}");
        } else {
            assert_eq!(status, 502, "{text}");
            let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(json["error"]["code"], "sealed_response_invalid", "{json}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_request_is_refused_by_the_enclave() {
    if !ort_available() {
        return;
    }
    let api = enclave(HpkeMode::Required).await;
    let relay = relay(api.handle.local_addr(), Tamper::Nothing).await;
    let gw = gateway_through(&relay).await;
    let (status, _) = post_chat(gw.addr, false).await;
    assert_eq!(status, 200);
    let captured = {
        let log = relay.log.lock().unwrap();
        let post = find(&log.to_enclave, b"POST ").unwrap();
        log.to_enclave[post..].to_vec()
    };
    // The relay sends the captured request again on a connection of its own.
    let mut tls = tls_to(api.handle.local_addr()).await;
    tls.write_all(&captured).await.unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    let read = tokio::time::timeout(STEP, async {
        while !answer.windows(4).any(|w| w == b"\r\n\r\n")
            || find(&answer, b"request_replayed").is_none()
        {
            let n = tls.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&buf[..n]);
        }
    })
    .await;
    assert!(read.is_ok(), "no answer to the replay");
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 409"), "{text}");
    assert!(text.contains("request_replayed"), "{text}");
    assert_eq!(api.chat_requests_ok().await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enclave_without_an_hpke_key_is_refused_through_a_relay_and_nothing_is_sent() {
    if !ort_available() {
        return;
    }
    let api = enclave(HpkeMode::Off).await;
    let relay = relay(api.handle.local_addr(), Tamper::Nothing).await;
    let gw = gateway_through(&relay).await;
    let (status, body) = post_chat(gw.addr, false).await;
    assert_eq!(status, 502);
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["error"]["code"], "hpke_key_missing", "{json}");
    let log = relay.log.lock().unwrap();
    assert!(
        find(&log.to_enclave, b"POST ").is_none(),
        "a request went through"
    );
    assert_no_secret_in(&log);
}
