//! `cocoon gateway`: a plain-HTTP OpenAI API on loopback that forwards every request to an
//! attested enclave, so unmodified OpenAI clients and SDKs get confidential inference.
//!
//! Upstreams:
//! - `https://HOST:PORT` (or `HOST:PORT`): RA-TLS. Each new upstream connection is verified
//!   in its handshake under the policy (the verifier's cache makes repeats cheap); request
//!   bodies are also sealed to the enclave's HPKE key when its claims advertise one.
//! - `http://HOST:PORT`: a relay that terminates TLS in front of the enclave. Each new
//!   connection is verified by a detached attestation with a fresh nonce, the claims must
//!   advertise an HPKE key, and every body is sealed: the relay sees only ciphertext.
//!
//! Each client connection gets its own upstream connection, opened (and verified) at its first
//! request and re-verified when the verified claims expire. Nothing of a request is sent before
//! the upstream is verified; a refusal is an OpenAI-style error (`502`, `x-should-retry:
//! false`, `error.code` naming the failed check). Responses stream through as they arrive
//! (sealed chunks are opened one by one); a client that goes away cancels the upstream request.
//!
//! Only `content-type`, `accept` and `authorization` are forwarded (other headers describe the
//! client's software); with an API key configured, `authorization` is replaced by it.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cocoon_attestation::Error as AttestationError;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::{Body, Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, Mutex};

use crate::sealed::{Head, Outgoing, Sealing};
use crate::{unix_now, AttestedConnection, ClientError, Connector, Timeouts};

/// Largest request body accepted from a local client.
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024;
/// Largest response body read from the enclave per request.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;
/// A local client must send its request body within this.
const BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// Where the gateway sends requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upstream {
    /// RA-TLS straight to the enclave (`HOST:PORT`).
    RaTls(String),
    /// Plain HTTP to a relay that terminates TLS (`HOST:PORT`); bodies always sealed.
    Relayed(String),
}

impl Upstream {
    /// `https://HOST:PORT`, `HOST:PORT` (RA-TLS) or `http://HOST:PORT` (relayed); a trailing
    /// `/` or `/v1` is accepted and dropped.
    pub fn parse(url: &str) -> Result<Self, String> {
        let (relayed, rest) = match url.split_once("://") {
            Some(("https", rest)) => (false, rest),
            Some(("http", rest)) => (true, rest),
            Some((scheme, _)) => {
                return Err(format!(
                    "upstream {url}: scheme {scheme} is not supported (https://HOST:PORT for \
                     RA-TLS, http://HOST:PORT for a relay that terminates TLS)"
                ))
            }
            None => (false, url),
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let rest = rest.strip_suffix("/v1").unwrap_or(rest);
        let valid = rest
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if !valid || rest.contains('/') {
            return Err(format!(
                "upstream {url}: expected [https://|http://]HOST:PORT"
            ));
        }
        Ok(if relayed {
            Self::Relayed(rest.to_owned())
        } else {
            Self::RaTls(rest.to_owned())
        })
    }

    pub fn addr(&self) -> &str {
        match self {
            Self::RaTls(a) | Self::Relayed(a) => a,
        }
    }
}

/// The gateway's settings.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    pub upstream: Upstream,
    /// Verifies the enclave (policy, collateral, trust anchors).
    pub connector: Connector,
    /// Sent upstream as `Authorization: Bearer KEY`, replacing the local client's.
    pub api_key: Option<String>,
    pub timeouts: Timeouts,
    /// Accept simulated evidence (the policy must also allow it).
    pub trust_simulated: bool,
    pub sealing: Sealing,
    pub max_request_bytes: usize,
    pub max_response_bytes: usize,
}

/// Counters, for logs and tests.
#[derive(Debug, Default)]
pub struct GatewayStats {
    /// Upstream connections verified and opened.
    pub upstream_connections: AtomicU64,
    /// Upstream connections refused (attestation, policy, missing HPKE key).
    pub refusals: AtomicU64,
    /// Requests forwarded (a request line sent to a verified upstream).
    pub forwarded: AtomicU64,
    /// Requests whose body was sealed.
    pub sealed: AtomicU64,
}

/// A running gateway's shared state.
#[derive(Debug)]
pub struct Gateway {
    config: GatewayConfig,
    pub stats: GatewayStats,
}

impl Gateway {
    pub fn new(config: GatewayConfig) -> Arc<Self> {
        Arc::new(Self {
            config,
            stats: GatewayStats::default(),
        })
    }

    pub fn config(&self) -> &GatewayConfig {
        &self.config
    }

    /// Opens and verifies one upstream connection.
    pub async fn connect(&self) -> Result<AttestedConnection, ClientError> {
        let c = &self.config;
        let result = match &c.upstream {
            Upstream::RaTls(addr) => c.connector.connect(addr, c.timeouts).await,
            Upstream::Relayed(addr) => c.connector.connect_relayed(addr, c.timeouts).await,
        };
        let mut conn = match result {
            Ok(conn) => conn,
            Err(e) => {
                if refusal(&e) {
                    self.stats.refusals.fetch_add(1, Ordering::Relaxed);
                }
                return Err(e);
            }
        };
        if conn.peer().simulated && !c.trust_simulated {
            self.stats.refusals.fetch_add(1, Ordering::Relaxed);
            return Err(ClientError::Attestation(
                AttestationError::SimulatedEvidenceNotAllowed,
            ));
        }
        conn.set_max_response_bytes(c.max_response_bytes);
        self.stats
            .upstream_connections
            .fetch_add(1, Ordering::Relaxed);
        Ok(conn)
    }
}

/// Whether an error is a refusal of the upstream's identity (not a network failure).
fn refusal(error: &ClientError) -> bool {
    matches!(
        error,
        ClientError::Attestation(_) | ClientError::HpkeKeyMissing
    )
}

/// Serves local clients on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, gateway: Arc<Gateway>) -> io::Result<()> {
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            // Out of descriptors and the like: keep serving the others.
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        tokio::spawn(serve_connection(tcp, peer, Arc::clone(&gateway)));
    }
}

async fn serve_connection(tcp: TcpStream, peer: SocketAddr, gateway: Arc<Gateway>) {
    let _ = tcp.set_nodelay(true);
    let slot: Arc<Mutex<Option<AttestedConnection>>> = Arc::new(Mutex::new(None));
    let service = service_fn(move |request| {
        let gateway = Arc::clone(&gateway);
        let slot = Arc::clone(&slot);
        async move { Ok::<_, Infallible>(handle(request, gateway, slot).await) }
    });
    if let Err(e) = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(tcp), service)
        .await
    {
        tracing::debug!(client = %peer, error = %e, "client connection ended with an error");
    }
}

async fn handle(
    request: Request<Incoming>,
    gateway: Arc<Gateway>,
    slot: Arc<Mutex<Option<AttestedConnection>>>,
) -> Response<GatewayBody> {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "/".into());
    let response = forward(request, &gateway, slot).await;
    tracing::info!(
        %method,
        path = %path.split('?').next().unwrap_or_default(),
        status = response.status().as_u16(),
        head_ms = started.elapsed().as_millis() as u64,
        "request"
    );
    response
}

async fn forward(
    request: Request<Incoming>,
    gateway: &Arc<Gateway>,
    slot: Arc<Mutex<Option<AttestedConnection>>>,
) -> Response<GatewayBody> {
    let path = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "/".into());
    let route = path.split('?').next().unwrap_or_default();
    if !(route.starts_with("/v1/") || route == "/health") {
        return error(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "not_found",
            &format!("no route {route} (the gateway serves /v1/… and /health)"),
        );
    }
    let method = request.method().clone();
    if method != Method::GET && method != Method::POST {
        return error(
            StatusCode::METHOD_NOT_ALLOWED,
            "invalid_request_error",
            "method_not_allowed",
            &format!("method {method} is not forwarded"),
        );
    }
    let (parts, body) = request.into_parts();
    let limit = gateway.config.max_request_bytes;
    let body = match tokio::time::timeout(BODY_TIMEOUT, Limited::new(body, limit).collect()).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "invalid_request_error",
                "request_too_large",
                &format!("the request body is larger than {limit} bytes"),
            )
        }
        Ok(Err(e)) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "bad_request_body",
                &format!("reading the request body: {e}"),
            )
        }
        Err(_) => {
            return error(
                StatusCode::REQUEST_TIMEOUT,
                "invalid_request_error",
                "request_timeout",
                "the request body did not arrive in time",
            )
        }
    };
    let outgoing = Outgoing {
        method,
        path,
        headers: forwarded_headers(&parts.headers, gateway.config.api_key.as_deref()),
        body,
    };

    let (head_tx, head_rx) = oneshot::channel();
    let (body_tx, body_rx) = mpsc::unbounded_channel();
    tokio::spawn(exchange(
        Arc::clone(gateway),
        slot,
        outgoing,
        head_tx,
        body_tx,
    ));
    match head_rx.await {
        Ok(Ok(head)) => {
            let mut response = Response::new(GatewayBody::Channel(body_rx));
            *response.status_mut() = head.status;
            for (name, value) in &head.headers {
                if !hop_by_hop(name) && name != CONTENT_LENGTH {
                    response.headers_mut().append(name.clone(), value.clone());
                }
            }
            response
        }
        Ok(Err(e)) => upstream_error(&e),
        Err(_) => error(
            StatusCode::BAD_GATEWAY,
            "upstream_error",
            "gateway_internal",
            "the upstream exchange ended without an answer",
        ),
    }
}

/// The upstream side of one request, in its own task (it holds the client connection's
/// upstream slot until the answer is fully relayed): connect and verify if needed, send,
/// pass the head and the body on. A stale kept-alive upstream connection that fails before
/// any answer is replaced once, verified again.
async fn exchange(
    gateway: Arc<Gateway>,
    slot: Arc<Mutex<Option<AttestedConnection>>>,
    outgoing: Outgoing,
    head_tx: oneshot::Sender<Result<Head, ClientError>>,
    body_tx: mpsc::UnboundedSender<Result<Bytes, io::Error>>,
) {
    let mut guard = slot.lock_owned().await;
    let mut head_tx = Some(head_tx);
    let mut attempt = 0u32;
    loop {
        attempt = attempt.saturating_add(1);
        // Verified claims run out: verify again on a new connection.
        if guard
            .as_ref()
            .is_some_and(|c| c.peer().valid_until < unix_now())
        {
            *guard = None;
        }
        let fresh = guard.is_none();
        if fresh {
            match gateway.connect().await {
                Ok(conn) => *guard = Some(conn),
                Err(e) => {
                    log_refusal(&gateway, &e);
                    if let Some(tx) = head_tx.take() {
                        let _ = tx.send(Err(e));
                    }
                    return;
                }
            }
        }
        let Some(conn) = guard.as_mut() else { return };
        let sealing = gateway.config.sealing;
        if conn.seals(&outgoing.method, sealing).unwrap_or(false) {
            gateway.stats.sealed.fetch_add(1, Ordering::Relaxed);
        }
        gateway.stats.forwarded.fetch_add(1, Ordering::Relaxed);
        let mut answered = false;
        let mut event_stream = false;
        let tx = body_tx.clone();
        let result = conn
            .send(
                outgoing.clone(),
                sealing,
                |head| {
                    answered = true;
                    event_stream = head
                        .content_type()
                        .is_some_and(|t| t.starts_with("text/event-stream"));
                    if let Some(head_tx) = head_tx.take() {
                        head_tx
                            .send(Ok(head.clone()))
                            .map_err(|_| ClientError::Cancelled)?;
                    }
                    Ok(())
                },
                |chunk| tx.send(Ok(chunk)).map_err(|_| ClientError::Cancelled),
            )
            .await;
        match result {
            Ok(_) => return,
            Err(e) => {
                *guard = None;
                let stale = !fresh
                    && !answered
                    && attempt == 1
                    && matches!(
                        e,
                        ClientError::Http(_) | ClientError::Io(_) | ClientError::Tls(_)
                    );
                if stale {
                    tracing::debug!(error = %e, "kept-alive upstream connection failed; reconnecting");
                    continue;
                }
                if matches!(e, ClientError::Cancelled) {
                    tracing::info!("the client went away; upstream request cancelled");
                    return;
                }
                tracing::warn!(error = %e, "upstream exchange failed");
                if let Some(head_tx) = head_tx.take() {
                    let _ = head_tx.send(Err(e));
                } else if event_stream {
                    // OpenAI SDKs raise an APIError on an error event; no `[DONE]` follows.
                    let body = error_body("upstream_error", code_of(&e), &e.to_string());
                    let _ = body_tx.send(Ok(Bytes::from(format!("data: {body}\n\n"))));
                } else {
                    let _ = body_tx.send(Err(io::Error::other(e.to_string())));
                }
                return;
            }
        }
    }
}

fn log_refusal(gateway: &Gateway, e: &ClientError) {
    if refusal(e) {
        tracing::warn!(upstream = %gateway.config.upstream.addr(), reason = %e, "upstream refused; nothing sent");
    } else {
        tracing::warn!(upstream = %gateway.config.upstream.addr(), error = %e, "upstream unreachable");
    }
}

/// The headers forwarded upstream (an allowlist) with the configured API key.
fn forwarded_headers(headers: &HeaderMap, api_key: Option<&str>) -> HeaderMap {
    let mut out = HeaderMap::new();
    for name in [CONTENT_TYPE, ACCEPT] {
        if let Some(value) = headers.get(&name) {
            out.insert(name, value.clone());
        }
    }
    match api_key {
        Some(key) => {
            if let Ok(value) = HeaderValue::from_str(&format!("Bearer {key}")) {
                out.insert(AUTHORIZATION, value);
            }
        }
        None => {
            if let Some(value) = headers.get(AUTHORIZATION) {
                out.insert(AUTHORIZATION, value.clone());
            }
        }
    }
    out
}

fn hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
    )
}

/// The `error.code` for a failure talking to the upstream.
pub fn code_of(e: &ClientError) -> &'static str {
    match e {
        ClientError::Attestation(AttestationError::SimulatedEvidenceNotAllowed) => {
            "simulated_evidence_refused"
        }
        ClientError::Attestation(AttestationError::PolicyRejected { .. }) => "policy_rejected",
        ClientError::Attestation(_) => "attestation_refused",
        ClientError::HpkeKeyMissing => "hpke_key_missing",
        ClientError::Sealed(_) => "sealed_response_invalid",
        ClientError::SealedResponseMissing { .. } => "sealed_response_missing",
        ClientError::Timeout { .. } => "upstream_timeout",
        ClientError::ResponseTooLarge { .. } => "upstream_response_too_large",
        ClientError::Tls(_) => "upstream_tls_error",
        _ => "upstream_unreachable",
    }
}

fn upstream_error(e: &ClientError) -> Response<GatewayBody> {
    let (status, kind) = if refusal(e) {
        (StatusCode::BAD_GATEWAY, "attestation_error")
    } else if matches!(e, ClientError::Timeout { .. }) {
        (StatusCode::GATEWAY_TIMEOUT, "upstream_error")
    } else {
        (StatusCode::BAD_GATEWAY, "upstream_error")
    };
    let message = if refusal(e) {
        format!("the gateway refused the upstream enclave, nothing was sent: {e}")
    } else {
        e.to_string()
    };
    let mut response = error(status, kind, code_of(e), &message);
    // Retrying cannot change a verdict on the enclave's identity or a tampered answer.
    if refusal(e)
        || matches!(
            e,
            ClientError::Sealed(_) | ClientError::SealedResponseMissing { .. }
        )
    {
        response
            .headers_mut()
            .insert("x-should-retry", HeaderValue::from_static("false"));
    }
    response
}

/// The OpenAI error object as JSON text.
fn error_body(kind: &str, code: &str, message: &str) -> String {
    serde_json::json!({
        "error": {"message": message, "type": kind, "param": null, "code": code}
    })
    .to_string()
}

/// An OpenAI-style error response.
fn error(status: StatusCode, kind: &str, code: &str, message: &str) -> Response<GatewayBody> {
    let body = error_body(kind, code, message);
    let mut response = Response::new(GatewayBody::Full(Some(Bytes::from(body))));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// A response body to a local client: all at once, or relayed as it arrives.
#[derive(Debug)]
pub enum GatewayBody {
    Full(Option<Bytes>),
    Channel(mpsc::UnboundedReceiver<Result<Bytes, io::Error>>),
}

impl Body for GatewayBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        match self.get_mut() {
            Self::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Self::Channel(rx) => match rx.poll_recv(cx) {
                Poll::Ready(Some(Ok(bytes))) => Poll::Ready(Some(Ok(Frame::data(bytes)))),
                Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e))),
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn upstream_urls_select_ratls_or_relayed() {
        assert_eq!(
            Upstream::parse("https://127.0.0.1:8443").unwrap(),
            Upstream::RaTls("127.0.0.1:8443".into())
        );
        assert_eq!(
            Upstream::parse("enclave.example:443").unwrap(),
            Upstream::RaTls("enclave.example:443".into())
        );
        assert_eq!(
            Upstream::parse("http://relay.internal:80/v1").unwrap(),
            Upstream::Relayed("relay.internal:80".into())
        );
        for bad in ["ftp://a:1", "https://a", "https://a:1/x", "http://:1"] {
            assert!(Upstream::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_allowlisted_headers_go_upstream_and_the_api_key_replaces_the_clients() {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(AUTHORIZATION, HeaderValue::from_static("Bearer local"));
        headers.insert("x-stainless-os", HeaderValue::from_static("Linux"));
        headers.insert("user-agent", HeaderValue::from_static("OpenAI/Python"));
        let out = forwarded_headers(&headers, Some("sk-upstream"));
        assert_eq!(out.len(), 2);
        assert_eq!(out[AUTHORIZATION], "Bearer sk-upstream");
        let out = forwarded_headers(&headers, None);
        assert_eq!(out[AUTHORIZATION], "Bearer local");
        assert!(out.get("x-stainless-os").is_none());
    }

    #[test]
    fn refusals_are_not_retried_and_name_the_check() {
        let e = ClientError::Attestation(AttestationError::SimulatedEvidenceNotAllowed);
        let response = upstream_error(&e);
        assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
        assert_eq!(response.headers()["x-should-retry"], "false");
        assert_eq!(code_of(&e), "simulated_evidence_refused");
        assert_eq!(code_of(&ClientError::HpkeKeyMissing), "hpke_key_missing");
    }
}
