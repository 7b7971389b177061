//! Issue #5's benchmark: time to first token through `cocoon gateway` + RA-TLS (warm: the
//! verification is cached) + HPKE, against a direct in-process call to the same engine; and
//! streamed throughput with sealed bodies against plaintext bodies. Everything runs in this one
//! process, side by side, on the same loaded model.
//!
//! `gateway_bench MODEL_DIR [--runs N] [--tokens N]` (run by `scripts/bench`, BENCH=gateway).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic,
    clippy::print_stdout
)]

#[path = "common/sim.rs"]
mod sim;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cocoon_attestation::bodies::{ReplayCache, RequestAad, RequestOpener, RequestSealer};
use cocoon_client::gateway::{
    serve as serve_gateway, Gateway, GatewayConfig, Upstream, DEFAULT_MAX_REQUEST_BYTES,
    DEFAULT_MAX_RESPONSE_BYTES,
};
use cocoon_client::sealed::Sealing;
use cocoon_client::{SseDataLines, Timeouts};
use cocoon_enclave::identity::{Identity, IdentityConfig};
use cocoon_enclave::inference::{
    ChatMessage, Engine, EngineConfig, GenerationEvent, GenerationRequest, SamplingParams,
};
use cocoon_enclave::openai::{self, ApiConfig, OpenAi};
use cocoon_enclave::rotation::IdentityResolver;
use cocoon_enclave::server::{serve, Enclave, Router, ServerOptions};
use cocoon_enclave::sim::SimAttester;
use cocoon_enclave::Attester;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

const QUESTION: &str = "What is the capital of France?";
const STORY: &str = "Write a long story about a dragon who learns to bake bread.";

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Time from submit to the first generated token, straight on the engine.
fn direct_ttft(engine: &Engine, prompt: &[u32]) -> Duration {
    let started = Instant::now();
    let mut stream = engine
        .submit(GenerationRequest {
            prompt_tokens: prompt.to_vec(),
            params: SamplingParams {
                max_tokens: 4,
                temperature: 0.0,
                ..SamplingParams::default()
            },
            deadline: None,
        })
        .unwrap();
    let mut first = None;
    while let Some(event) = stream.blocking_next() {
        if let GenerationEvent::Token { .. } = event {
            first.get_or_insert_with(|| started.elapsed());
        } else {
            break;
        }
    }
    first.expect("a token")
}

struct Client {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
}

impl Client {
    async fn open(addr: SocketAddr) -> Self {
        let tcp = TcpStream::connect(addr).await.unwrap();
        tcp.set_nodelay(true).unwrap();
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .unwrap();
        tokio::spawn(conn);
        Self { sender }
    }

    /// A streamed chat: (time to the first content delta, content deltas, total time).
    async fn chat(&mut self, content: &str, max_tokens: usize) -> (Duration, usize, Duration) {
        let body = serde_json::json!({
            "messages": [{"role": "user", "content": content}],
            "max_tokens": max_tokens,
            "temperature": 0,
            "stream": true,
        });
        self.sender.ready().await.unwrap();
        let request = http::Request::post("/v1/chat/completions")
            .header("host", "localhost")
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.to_string())))
            .unwrap();
        let started = Instant::now();
        let response = self.sender.send_request(request).await.unwrap();
        assert_eq!(response.status(), 200);
        let mut body = response.into_body();
        let mut lines = SseDataLines::new(1 << 20);
        let mut first = None;
        let mut deltas = 0;
        while let Some(frame) = body.frame().await {
            let Ok(data) = frame.unwrap().into_data() else {
                continue;
            };
            for event in lines.push(&data).unwrap() {
                if event == "[DONE]" {
                    continue;
                }
                let json: serde_json::Value = serde_json::from_str(&event).unwrap();
                // The first event is the role delta (empty content): count text only.
                if json["choices"][0]["delta"]["content"]
                    .as_str()
                    .is_some_and(|t| !t.is_empty())
                {
                    first.get_or_insert_with(|| started.elapsed());
                    deltas += 1;
                }
            }
        }
        (first.expect("a content delta"), deltas, started.elapsed())
    }
}

async fn gateway(upstream: SocketAddr, sealing: Sealing) -> SocketAddr {
    let gateway = Gateway::new(GatewayConfig {
        upstream: Upstream::RaTls(upstream.to_string()),
        connector: sim::sim_connector(),
        api_key: None,
        timeouts: Timeouts {
            connect: Duration::from_secs(10),
            handshake: Duration::from_secs(10),
            request: Duration::from_secs(600),
        },
        trust_simulated: true,
        sealing,
        max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
        max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve_gateway(listener, gateway));
    addr
}

/// Seal + open of `events` typical SSE events (one chunk each) per second, in memory.
fn chunk_rate(event: &[u8], events: usize) -> f64 {
    let opener = RequestOpener::generate().unwrap();
    let aad = RequestAad {
        method: "POST".into(),
        path: "/v1/chat/completions".into(),
        request_id: [7; 16],
        timestamp: 1_800_000_000,
    };
    let (sealed, mut response_opener) =
        RequestSealer::seal_request(opener.public_key(), b"{}", &aad).unwrap();
    let mut replay = ReplayCache::new(16, 300);
    let (_, mut sealer) = opener
        .open_request(sealed.as_bytes(), &aad, 1_800_000_000, &mut replay)
        .unwrap();
    let started = Instant::now();
    for _ in 0..events {
        let chunk = sealer.seal_chunk(event).unwrap();
        let plain = response_opener.open_chunk(&chunk).unwrap();
        assert_eq!(plain.len(), event.len());
    }
    events as f64 / started.elapsed().as_secs_f64()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let mut model_dir = None;
    let mut runs = 15usize;
    let mut tokens = 96usize;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--runs" => runs = args.next().unwrap().parse().unwrap(),
            "--tokens" => tokens = args.next().unwrap().parse().unwrap(),
            _ => model_dir = Some(a),
        }
    }
    let model_dir = model_dir.expect("usage: gateway_bench MODEL_DIR [--runs N] [--tokens N]");
    let engine = Engine::load(EngineConfig {
        model_dir: model_dir.into(),
        threads: 2,
        max_sequences: 4,
        queue_capacity: 16,
        max_context: None,
        execution_provider: cocoon_enclave::inference::ExecutionProvider::Cpu,
    })
    .unwrap();

    // The enclave: the same engine behind the OpenAI API, RA-TLS, an HPKE key in the claims.
    let attester: Arc<dyn Attester> = Arc::new(SimAttester::tdx().unwrap());
    let state = OpenAi::new(ApiConfig::default());
    let identity = IdentityConfig {
        hpke_public_key: state.hpke_public_key().cloned(),
        ..IdentityConfig::default()
    };
    let resolver = Arc::new(IdentityResolver::new(
        Identity::issue_now(attester.as_ref(), &identity).unwrap(),
    ));
    state.set_engine(Arc::clone(&engine));
    let router = openai::mount(Router::new(), Arc::clone(&state));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = serve(
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
    let enclave = server.local_addr();
    let sealed_gw = gateway(enclave, Sealing::Auto).await;
    let plain_gw = gateway(enclave, Sealing::Off).await;

    let prompt_text = engine
        .apply_chat_template(
            &[ChatMessage {
                role: "user".into(),
                content: QUESTION.into(),
            }],
            true,
        )
        .unwrap();
    let prompt = engine.tokenize(&prompt_text).unwrap();

    // Warm-up: the model, the verification cache, the connections.
    let e = Arc::clone(&engine);
    let p = prompt.clone();
    tokio::task::spawn_blocking(move || direct_ttft(&e, &p))
        .await
        .unwrap();
    let mut kept = Client::open(sealed_gw).await;
    kept.chat(QUESTION, 4).await;
    Client::open(sealed_gw).await.chat(QUESTION, 4).await;

    // TTFT, interleaved: direct engine call / gateway on a kept-alive connection / gateway on a
    // new connection per request (a new RA-TLS handshake whose verification is cached).
    let (mut direct, mut reused, mut fresh) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        let e = Arc::clone(&engine);
        let p = prompt.clone();
        direct.push(
            tokio::task::spawn_blocking(move || direct_ttft(&e, &p))
                .await
                .unwrap(),
        );
        reused.push(kept.chat(QUESTION, 4).await.0);
        fresh.push(Client::open(sealed_gw).await.chat(QUESTION, 4).await.0);
    }
    let (direct, reused, fresh) = (median(direct), median(reused), median(fresh));

    // Streamed throughput, sealed vs plaintext bodies, interleaved, same greedy answer.
    let rounds = 5;
    let (mut sealed_tps, mut plain_tps) = (Vec::new(), Vec::new());
    let mut sealed_client = Client::open(sealed_gw).await;
    let mut plain_client = Client::open(plain_gw).await;
    for _ in 0..rounds {
        let (first, n, total) = sealed_client.chat(STORY, tokens).await;
        sealed_tps.push((n.saturating_sub(1)) as f64 / (total - first).as_secs_f64());
        let (first, n, total) = plain_client.chat(STORY, tokens).await;
        plain_tps.push((n.saturating_sub(1)) as f64 / (total - first).as_secs_f64());
    }
    sealed_tps.sort_by(f64::total_cmp);
    plain_tps.sort_by(f64::total_cmp);
    let (sealed_tps, plain_tps) = (sealed_tps[rounds / 2], plain_tps[rounds / 2]);
    let event = br#"data: {"id":"chatcmpl-0123456789abcdef","object":"chat.completion.chunk","created":1800000000,"model":"smollm2-135m-instruct","choices":[{"index":0,"delta":{"content":" bread"},"finish_reason":null}]}

"#;
    let rate = chunk_rate(event, 200_000);

    println!("| measurement | ours | baseline | ratio / overhead |");
    println!("|---|---|---|---|");
    println!(
        "| TTFT, gateway + RA-TLS + HPKE, kept-alive connection (median of {runs}) | {:.1} ms | direct engine call {:.1} ms | +{:.1} ms (target ≤ 15 ms) |",
        ms(reused),
        ms(direct),
        ms(reused) - ms(direct)
    );
    println!(
        "| TTFT, gateway + new RA-TLS connection (verification cached) + HPKE (median of {runs}) | {:.1} ms | direct engine call {:.1} ms | +{:.1} ms (target ≤ 15 ms) |",
        ms(fresh),
        ms(direct),
        ms(fresh) - ms(direct)
    );
    println!(
        "| streamed decode through the gateway, HPKE-sealed vs plaintext bodies ({tokens} tokens, median of {rounds}) | {sealed_tps:.1} tok/s | {plain_tps:.1} tok/s | {:.3}× |",
        sealed_tps / plain_tps
    );
    println!(
        "| seal + open of one {}-byte SSE event (ChaCha20-Poly1305 chunk), in memory | {:.0} events/s | — | {:.0}× the decode rate |",
        event.len(),
        rate,
        rate / plain_tps
    );
    server.shutdown().await;
}
