//! `cocoon-client`: talk to a cocoon enclave over RA-TLS.
//!
//! [`connect`] opens TCP, runs a TLS 1.3 handshake whose certificate verifier is a
//! [`RaTlsVerifier`] (evidence, claims, binding, times and policy are all checked before the
//! handshake completes, so no application byte reaches an unverified peer), and returns an
//! [`AttestedConnection`] exposing the [`VerifiedPeer`]. [`fresh_attestation`] then asks the
//! enclave, over that same connection, for new evidence binding its claims plus a random nonce
//! (`GET /v1/attestation?nonce=HEX`) and verifies it: proof that the key is live now.
//!
//! Every network operation runs under a deadline ([`Timeouts`]); responses are read up to a
//! size cap. Failures are one enum, [`ClientError`]; when an attestation check failed,
//! [`ClientError::attestation`] gives the exact `cocoon_attestation::Error`.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use cocoon_attestation::ratls::{
    attestation_error, client_config, FreshAttestation, RaTlsVerifier, VerifiedPeer,
    MAX_FRESH_ATTESTATION_JSON,
};
use http::header::HOST;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use rustls::client::ResolvesClientCert;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

pub use cocoon_attestation::ratls;
pub use transport::Transport;

pub mod cli;
pub mod gateway;
pub mod sealed;
mod transport;

/// Largest response body read by default (an attestation response is a few KiB).
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// How much of an error response's body [`AttestedConnection::request_streaming`] keeps.
const ERROR_BODY_BYTES: usize = 4096;

/// Nonce length [`fresh_attestation`] uses.
pub const NONCE_LEN: usize = 32;

/// Deadlines for each network step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Resolving the name and opening TCP.
    pub connect: Duration,
    /// The TLS handshake, including the peer's verification.
    pub handshake: Duration,
    /// One HTTP request: sending it and reading the whole response.
    pub request: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(10),
            handshake: Duration::from_secs(10),
            request: Duration::from_secs(30),
        }
    }
}

/// Every way a client operation fails.
#[derive(Debug)]
#[non_exhaustive]
pub enum ClientError {
    /// The address did not parse or resolve.
    Address { addr: String, reason: String },
    /// TCP connect failed.
    Connect { addr: String, source: io::Error },
    /// A step did not finish in time.
    Timeout { op: &'static str, after: Duration },
    /// The peer's attestation was refused: its certificate, evidence, claims, binding, times
    /// or policy (during the handshake), or a fresh attestation (after it). The error names
    /// the exact check.
    Attestation(cocoon_attestation::Error),
    /// The TLS handshake or connection failed for another reason (including alerts the
    /// server sent, e.g. `CertificateRequired` when mutual mode wants our certificate).
    Tls(rustls::Error),
    /// An I/O error outside TLS.
    Io(io::Error),
    /// Building the TLS configuration failed.
    Config(cocoon_attestation::Error),
    /// HTTP framing failed.
    Http(hyper::Error),
    /// The server answered with an error status.
    Status { status: u16, body: String },
    /// The response body is larger than accepted.
    ResponseTooLarge { limit: usize },
    /// The handshake finished without a verified peer (the verifier was not consulted).
    NoVerifiedPeer,
    /// No randomness for the nonce.
    Random(String),
    /// Sealing a request or opening a sealed response failed (`docs/hpke.md`): a tampered,
    /// reordered or truncated response, or a key that cannot be used. Names the exact check.
    Sealed(cocoon_attestation::Error),
    /// We sealed the request and the answer is a success that is not sealed: something
    /// between us and the enclave answered in its place.
    SealedResponseMissing { status: u16 },
    /// The enclave's verified claims advertise no HPKE key, and this path needs one (a relay
    /// that terminates TLS only ever sees sealed bodies).
    HpkeKeyMissing,
    /// The receiver of a streamed response went away.
    Cancelled,
}

impl ClientError {
    /// The attestation check that failed, if that is why.
    pub fn attestation(&self) -> Option<&cocoon_attestation::Error> {
        match self {
            Self::Attestation(e) => Some(e),
            _ => None,
        }
    }

    /// Maps an I/O error from the TLS stream: the verifier's error when the handshake failed
    /// on the peer's attestation, else the TLS error, else I/O.
    fn from_tls_io(error: io::Error) -> Self {
        let Some(tls) = error
            .get_ref()
            .and_then(|e| e.downcast_ref::<rustls::Error>())
        else {
            return Self::Io(error);
        };
        match attestation_error(tls) {
            Some(attestation) => Self::Attestation(attestation.clone()),
            None => Self::Tls(tls.clone()),
        }
    }

    fn from_hyper(error: hyper::Error) -> Self {
        use std::error::Error as _;
        let mut source = error.source();
        while let Some(cause) = source {
            if let Some(io) = cause.downcast_ref::<io::Error>() {
                if let Some(tls) = io.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()) {
                    return Self::Tls(tls.clone());
                }
            }
            source = cause.source();
        }
        Self::Http(error)
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Address { addr, reason } => write!(f, "address {addr}: {reason}"),
            Self::Connect { addr, source } => write!(f, "connecting to {addr}: {source}"),
            Self::Timeout { op, after } => write!(f, "{op} did not finish within {after:?}"),
            Self::Attestation(e) => {
                write!(f, "attestation refused: [{}] {}", e.kind(), e.message())
            }
            Self::Tls(e) => write!(f, "TLS: {e}"),
            Self::Io(e) => write!(f, "I/O: {e}"),
            Self::Config(e) => write!(f, "TLS configuration: [{}] {}", e.kind(), e.message()),
            Self::Http(e) => write!(f, "HTTP: {e}"),
            Self::Status { status, body } => write!(f, "HTTP status {status}: {body}"),
            Self::ResponseTooLarge { limit } => {
                write!(f, "response larger than {limit} bytes")
            }
            Self::NoVerifiedPeer => f.write_str("the handshake finished without a verified peer"),
            Self::Random(e) => write!(f, "no randomness for the nonce: {e}"),
            Self::Sealed(e) => write!(f, "sealed body: [{}] {}", e.kind(), e.message()),
            Self::SealedResponseMissing { status } => write!(
                f,
                "the request was sealed but the HTTP {status} answer is not: refusing it \
                 (something between us and the enclave answered)"
            ),
            Self::HpkeKeyMissing => f.write_str(
                "the enclave's verified claims advertise no HPKE key, needed to send through \
                 a relay",
            ),
            Self::Cancelled => f.write_str("the receiver of the response went away"),
        }
    }
}

impl std::error::Error for ClientError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Connect { source, .. } | Self::Io(source) => Some(source),
            Self::Attestation(e) | Self::Config(e) | Self::Sealed(e) => Some(e),
            Self::Tls(e) => Some(e),
            Self::Http(e) => Some(e),
            _ => None,
        }
    }
}

pub type Result<T, E = ClientError> = std::result::Result<T, E>;

/// A reusable RA-TLS client configuration.
#[derive(Clone)]
pub struct Connector {
    verifier: Arc<RaTlsVerifier>,
    tls: TlsConnector,
}

impl fmt::Debug for Connector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connector").finish_non_exhaustive()
    }
}

impl Connector {
    /// `client_identity`: our own RA-TLS certificate for mutual mode.
    pub fn new(
        verifier: Arc<RaTlsVerifier>,
        client_identity: Option<Arc<dyn ResolvesClientCert>>,
    ) -> Result<Self> {
        let config =
            client_config(Arc::clone(&verifier), client_identity).map_err(ClientError::Config)?;
        Ok(Self {
            verifier,
            tls: TlsConnector::from(Arc::new(config)),
        })
    }

    /// The verifier this connector checks peers with.
    pub fn verifier(&self) -> &Arc<RaTlsVerifier> {
        &self.verifier
    }

    /// Connects to `addr` (`HOST:PORT`) and verifies the peer.
    pub async fn connect(&self, addr: &str, timeouts: Timeouts) -> Result<AttestedConnection> {
        let (host, _) = split_host_port(addr)?;
        let tcp = within(timeouts.connect, "connect", async {
            TcpStream::connect(addr)
                .await
                .map_err(|source| ClientError::Connect {
                    addr: addr.to_owned(),
                    source,
                })
        })
        .await?;
        self.handshake(tcp, &host, timeouts).await
    }

    /// Connects to a socket address (no name resolution).
    pub async fn connect_addr(
        &self,
        addr: SocketAddr,
        timeouts: Timeouts,
    ) -> Result<AttestedConnection> {
        let tcp = within(timeouts.connect, "connect", async {
            TcpStream::connect(addr)
                .await
                .map_err(|source| ClientError::Connect {
                    addr: addr.to_string(),
                    source,
                })
        })
        .await?;
        self.handshake(tcp, &addr.ip().to_string(), timeouts).await
    }

    /// Connects over plain TCP to `addr`, a relay that terminates TLS in front of the
    /// enclave, and verifies the enclave with a detached attestation: `GET
    /// /v1/attestation?nonce=<random>`, checked by [`RaTlsVerifier::verify_detached`] under
    /// the policy. The claims must advertise an HPKE key ([`ClientError::HpkeKeyMissing`]):
    /// on this connection only sealed bodies ([`sealed`]) are private.
    pub async fn connect_relayed(
        &self,
        addr: &str,
        timeouts: Timeouts,
    ) -> Result<AttestedConnection> {
        split_host_port(addr)?;
        let tcp = within(timeouts.connect, "connect", async {
            TcpStream::connect(addr)
                .await
                .map_err(|source| ClientError::Connect {
                    addr: addr.to_owned(),
                    source,
                })
        })
        .await?;
        let _ = tcp.set_nodelay(true);
        let mut stream = Transport::Plain(tcp);
        let authority = addr.to_owned();
        let nonce = random_nonce()?;
        let request = Request::get(format!("/v1/attestation?nonce={}", hex::encode(nonce)))
            .header(HOST, authority.as_str())
            .body(Full::new(Bytes::new()))
            .map_err(|e| ClientError::Address {
                addr: authority.clone(),
                reason: e.to_string(),
            })?;
        let response = exchange_buffered(
            &mut stream,
            request,
            MAX_FRESH_ATTESTATION_JSON,
            timeouts.request,
        )
        .await?;
        if response.status() != StatusCode::OK {
            return Err(ClientError::Status {
                status: response.status().as_u16(),
                body: String::from_utf8_lossy(response.body())
                    .chars()
                    .take(512)
                    .collect(),
            });
        }
        let fresh = parse_fresh(response.body())?;
        let peer = self
            .verifier
            .verify_detached(&fresh, &nonce, unix_now())
            .map_err(ClientError::Attestation)?;
        if peer
            .claims
            .as_ref()
            .and_then(|c| c.hpke_public_key.as_ref())
            .is_none()
        {
            return Err(ClientError::HpkeKeyMissing);
        }
        Ok(AttestedConnection {
            stream,
            peer,
            verifier: Arc::clone(&self.verifier),
            timeouts,
            authority,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
        })
    }

    async fn handshake(
        &self,
        tcp: TcpStream,
        host: &str,
        timeouts: Timeouts,
    ) -> Result<AttestedConnection> {
        let _ = tcp.set_nodelay(true);
        let authority = host.to_owned();
        // RA-TLS authenticates the key through evidence, not names; the name is only sent as SNI.
        let name = ServerName::try_from(host.to_owned()).map_err(|e| ClientError::Address {
            addr: host.to_owned(),
            reason: e.to_string(),
        })?;
        let stream = within(timeouts.handshake, "TLS handshake", async {
            self.tls
                .connect(name, tcp)
                .await
                .map_err(ClientError::from_tls_io)
        })
        .await?;
        // The handshake verified the certificate; this reads the result (verifying again only
        // if it was evicted from the cache meanwhile).
        let peer = match ratls::peer_of_at(&self.verifier, stream.get_ref().1, unix_now()) {
            Some(Ok(peer)) => peer,
            Some(Err(e)) => return Err(ClientError::Attestation(e)),
            None => return Err(ClientError::NoVerifiedPeer),
        };
        Ok(AttestedConnection {
            stream: Transport::Tls(Box::new(stream)),
            peer,
            verifier: Arc::clone(&self.verifier),
            timeouts,
            authority,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
        })
    }
}

/// Connects to `addr` (`HOST:PORT`), verifying the enclave with `verifier`; with
/// `client_identity`, presents our own RA-TLS certificate (mutual mode).
pub async fn connect(
    addr: &str,
    verifier: Arc<RaTlsVerifier>,
    client_identity: Option<Arc<dyn ResolvesClientCert>>,
    timeouts: Timeouts,
) -> Result<AttestedConnection> {
    Connector::new(verifier, client_identity)?
        .connect(addr, timeouts)
        .await
}

/// A TLS connection to a verified enclave.
pub struct AttestedConnection {
    stream: Transport,
    peer: Arc<VerifiedPeer>,
    verifier: Arc<RaTlsVerifier>,
    timeouts: Timeouts,
    authority: String,
    max_response_bytes: usize,
}

impl fmt::Debug for AttestedConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AttestedConnection")
            .field("authority", &self.authority)
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}

impl AttestedConnection {
    /// The enclave's verified identity (from the handshake).
    pub fn peer(&self) -> &Arc<VerifiedPeer> {
        &self.peer
    }

    /// The byte stream, for protocols of the caller's own.
    pub fn stream(&mut self) -> &mut Transport {
        &mut self.stream
    }

    pub fn into_stream(self) -> Transport {
        self.stream
    }

    /// Whether the enclave was verified through a relay (detached attestation, plain TCP)
    /// rather than by an RA-TLS handshake.
    pub fn is_relayed(&self) -> bool {
        matches!(self.stream, Transport::Plain(_))
    }

    /// The enclave's certificate (DER) from the RA-TLS handshake; `None` when relayed.
    pub fn peer_certificate_der(&self) -> Option<&[u8]> {
        self.stream
            .tls()
            .and_then(|s| s.get_ref().1.peer_certificates())
            .and_then(|c| c.first())
            .map(|c| c.as_ref())
    }

    /// The HPKE key of the enclave's verified claims, if it advertises one.
    pub fn hpke_key(&self) -> Option<&cocoon_attestation::claims::HpkePublicKey> {
        self.peer
            .claims
            .as_ref()
            .and_then(|c| c.hpke_public_key.as_ref())
    }

    /// The verifier this connection was checked with.
    pub fn verifier(&self) -> &Arc<RaTlsVerifier> {
        &self.verifier
    }

    pub fn timeouts(&self) -> Timeouts {
        self.timeouts
    }

    /// Sets the response size cap of [`get`](Self::get).
    pub fn set_max_response_bytes(&mut self, limit: usize) {
        self.max_response_bytes = limit;
    }

    /// `GET path_and_query` over this connection (HTTP/1.1, kept alive): status and body,
    /// the body at most the response cap.
    pub async fn get(&mut self, path_and_query: &str) -> Result<(StatusCode, Bytes)> {
        self.get_limited(path_and_query, self.max_response_bytes)
            .await
    }

    async fn get_limited(
        &mut self,
        path_and_query: &str,
        limit: usize,
    ) -> Result<(StatusCode, Bytes)> {
        let request = Request::get(path_and_query)
            .body(Full::new(Bytes::new()))
            .map_err(|e| ClientError::Address {
                addr: path_and_query.to_owned(),
                reason: e.to_string(),
            })?;
        let response = self.request_limited(request, limit).await?;
        Ok((response.status(), response.into_body()))
    }

    /// Sets `Host` to the address this connection was made to, unless the request has one.
    fn set_host<B>(&self, request: &mut Request<B>) -> Result<()> {
        if !request.headers().contains_key(HOST) {
            let host =
                http::HeaderValue::from_str(&self.authority).map_err(|e| ClientError::Address {
                    addr: self.authority.clone(),
                    reason: e.to_string(),
                })?;
            request.headers_mut().insert(HOST, host);
        }
        Ok(())
    }

    /// Sends `request` over this connection (HTTP/1.1, kept alive; `Host` is set when absent)
    /// and reads the whole response, the body at most the response cap.
    pub async fn request(&mut self, request: Request<Full<Bytes>>) -> Result<Response<Bytes>> {
        self.request_limited(request, self.max_response_bytes).await
    }

    async fn request_limited(
        &mut self,
        mut request: Request<Full<Bytes>>,
        limit: usize,
    ) -> Result<Response<Bytes>> {
        self.set_host(&mut request)?;
        exchange_buffered(&mut self.stream, request, limit, self.timeouts.request).await
    }
}

/// One HTTP/1.1 exchange on `stream` (kept open afterwards), the body read up to `limit`.
async fn exchange_buffered(
    stream: &mut Transport,
    request: Request<Full<Bytes>>,
    limit: usize,
    timeout: Duration,
) -> Result<Response<Bytes>> {
    let io = TokioIo::new(stream);
    within(timeout, "HTTP request", async move {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(ClientError::from_hyper)?;
        let exchange = async move {
            let response = sender
                .send_request(request)
                .await
                .map_err(ClientError::from_hyper)?;
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, limit)
                .collect()
                .await
                .map_err(|e| {
                    if e.is::<http_body_util::LengthLimitError>() {
                        ClientError::ResponseTooLarge { limit }
                    } else {
                        match e.downcast::<hyper::Error>() {
                            Ok(h) => ClientError::from_hyper(*h),
                            Err(other) => ClientError::Io(io::Error::other(other)),
                        }
                    }
                })?
                .to_bytes();
            Ok::<_, ClientError>(Response::from_parts(parts, body))
        };
        // The connection task ends once the exchange drops its sender; the stream stays open.
        let (result, parts) = tokio::join!(exchange, conn.without_shutdown());
        let result = result?;
        parts.map_err(ClientError::from_hyper)?;
        Ok(result)
    })
    .await
}

impl AttestedConnection {
    /// Sends `request` over this connection (as [`request`](Self::request), nothing sealed) and
    /// hands each body chunk to `on_chunk` as it arrives, instead of buffering the whole
    /// response: for streamed (`text/event-stream`) answers. The whole exchange runs under the
    /// request timeout and the body under the response cap; an error from `on_chunk` stops
    /// reading. Returns the (successful) response status; an error status is
    /// [`ClientError::Status`] with the start of its body, and `on_chunk` is not called.
    /// Built on [`send`](Self::send), which also seals.
    pub async fn request_streaming<F>(
        &mut self,
        request: Request<Full<Bytes>>,
        mut on_chunk: F,
    ) -> Result<StatusCode>
    where
        F: FnMut(&[u8]) -> Result<()>,
    {
        let (parts, body) = request.into_parts();
        let body = match body.collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(never) => match never {},
        };
        let outgoing = sealed::Outgoing {
            method: parts.method,
            path: parts
                .uri
                .path_and_query()
                .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned()),
            headers: parts.headers,
            body,
        };
        let failed = std::cell::Cell::new(false);
        let mut error_body = Vec::new();
        let head = self
            .send(
                outgoing,
                sealed::Sealing::Off,
                |head| {
                    failed.set(!head.status.is_success());
                    Ok(())
                },
                |chunk| {
                    if !failed.get() {
                        return on_chunk(&chunk);
                    }
                    let room = ERROR_BODY_BYTES.saturating_sub(error_body.len());
                    error_body
                        .extend_from_slice(chunk.get(..room.min(chunk.len())).unwrap_or_default());
                    Ok(())
                },
            )
            .await?;
        if failed.get() {
            return Err(ClientError::Status {
                status: head.status.as_u16(),
                body: String::from_utf8_lossy(&error_body).into_owned(),
            });
        }
        Ok(head.status)
    }
}

/// Splits a `text/event-stream` body, fed in chunks of any size, into the payloads of its
/// `data:` lines. A chunk boundary may fall anywhere, inside a line or a UTF-8 character; a
/// line longer than the cap is an error ([`ClientError::ResponseTooLarge`]).
#[derive(Debug)]
pub struct SseDataLines {
    pending: Vec<u8>,
    max_line: usize,
}

impl SseDataLines {
    pub fn new(max_line: usize) -> Self {
        Self {
            pending: Vec::new(),
            max_line,
        }
    }

    /// Feeds `chunk`; returns the `data:` payloads of the lines it completed, in order.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let mut rest = chunk;
        while let Some(end) = rest.iter().position(|&b| b == b'\n') {
            let (line, after) = rest.split_at(end);
            self.pending.extend_from_slice(line);
            rest = after.get(1..).unwrap_or_default();
            self.check_len()?;
            let line = std::mem::take(&mut self.pending);
            let line = line.strip_suffix(b"\r").unwrap_or(&line);
            if let Some(data) = line.strip_prefix(b"data:") {
                let data = data.strip_prefix(b" ").unwrap_or(data);
                out.push(String::from_utf8_lossy(data).into_owned());
            }
        }
        self.pending.extend_from_slice(rest);
        self.check_len()?;
        Ok(out)
    }

    fn check_len(&self) -> Result<()> {
        if self.pending.len() > self.max_line {
            return Err(ClientError::ResponseTooLarge {
                limit: self.max_line,
            });
        }
        Ok(())
    }
}

/// Asks the enclave for evidence binding its claims plus a new random nonce, over `conn`,
/// and verifies it against the peer of the handshake. Returns the freshly verified peer.
pub async fn fresh_attestation(
    conn: &mut AttestedConnection,
    nonce: &[u8],
) -> Result<Arc<VerifiedPeer>> {
    let limit = conn.max_response_bytes.min(MAX_FRESH_ATTESTATION_JSON);
    let (status, body) = conn
        .get_limited(
            &format!("/v1/attestation?nonce={}", hex::encode(nonce)),
            limit,
        )
        .await?;
    if status != StatusCode::OK {
        return Err(ClientError::Status {
            status: status.as_u16(),
            body: String::from_utf8_lossy(&body).chars().take(512).collect(),
        });
    }
    verify_fresh_response(conn, &body, nonce, unix_now())
}

/// Verifies a `/v1/attestation` response body for `nonce` against the connection's peer.
pub fn verify_fresh_response(
    conn: &AttestedConnection,
    body: &[u8],
    nonce: &[u8],
    now: i64,
) -> Result<Arc<VerifiedPeer>> {
    let fresh = parse_fresh(body)?;
    conn.verifier
        .verify_fresh(&conn.peer, &fresh, nonce, now)
        .map_err(ClientError::Attestation)
}

fn parse_fresh(body: &[u8]) -> Result<FreshAttestation> {
    let text = std::str::from_utf8(body).map_err(|_| {
        ClientError::Attestation(cocoon_attestation::Error::Malformed {
            subject: cocoon_attestation::Subject::FreshAttestation,
            reason: "the response is not UTF-8".into(),
        })
    })?;
    FreshAttestation::from_json(text).map_err(ClientError::Attestation)
}

/// [`fresh_attestation`] with a new random [`NONCE_LEN`]-byte nonce.
pub async fn fresh_attestation_random(conn: &mut AttestedConnection) -> Result<Arc<VerifiedPeer>> {
    let nonce = random_nonce()?;
    fresh_attestation(conn, &nonce).await
}

/// A random nonce from the operating system.
pub fn random_nonce() -> Result<[u8; NONCE_LEN]> {
    random_bytes()
}

/// `N` random bytes from the operating system.
pub(crate) fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut bytes = [0u8; N];
    getrandom::getrandom(&mut bytes).map_err(|e| ClientError::Random(e.to_string()))?;
    Ok(bytes)
}

/// Unix seconds now (0 if the clock is before 1970).
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

async fn within<T>(
    after: Duration,
    op: &'static str,
    fut: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    tokio::time::timeout(after, fut)
        .await
        .map_err(|_| ClientError::Timeout { op, after })?
}

/// `HOST:PORT` or `[V6]:PORT` to the host (brackets removed) and port.
fn split_host_port(addr: &str) -> Result<(String, u16)> {
    let bad = |reason: &str| ClientError::Address {
        addr: addr.to_owned(),
        reason: reason.to_owned(),
    };
    let (host, port) = addr
        .rsplit_once(':')
        .ok_or_else(|| bad("expected HOST:PORT"))?;
    let port = port.parse::<u16>().map_err(|_| bad("bad port"))?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.is_empty() {
        return Err(bad("empty host"));
    }
    Ok((host.to_owned(), port))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn host_and_port_split_ipv4_names_and_bracketed_ipv6() {
        assert_eq!(
            split_host_port("127.0.0.1:8443").unwrap(),
            ("127.0.0.1".into(), 8443)
        );
        assert_eq!(
            split_host_port("enclave.example:443").unwrap(),
            ("enclave.example".into(), 443)
        );
        assert_eq!(split_host_port("[::1]:1").unwrap(), ("::1".into(), 1));
    }

    #[test]
    fn address_without_port_is_refused() {
        assert!(matches!(
            split_host_port("localhost"),
            Err(ClientError::Address { .. })
        ));
        assert!(matches!(
            split_host_port("localhost:http"),
            Err(ClientError::Address { .. })
        ));
    }

    #[test]
    fn sse_lines_split_across_chunks_are_reassembled() {
        let body = "data: {\"a\":1}\n\ndata: h\u{e9}llo\r\n\n: comment\ndata: [DONE]\n\n";
        let bytes = body.as_bytes();
        let whole = SseDataLines::new(1024).push(bytes).unwrap();
        assert_eq!(whole, vec!["{\"a\":1}", "h\u{e9}llo", "[DONE]"]);
        for size in 1..bytes.len() {
            let mut parser = SseDataLines::new(1024);
            let mut got = Vec::new();
            for chunk in bytes.chunks(size) {
                got.extend(parser.push(chunk).unwrap());
            }
            assert_eq!(got, whole, "chunk size {size}");
        }
    }

    #[test]
    fn sse_line_over_the_cap_is_refused() {
        let mut parser = SseDataLines::new(8);
        assert!(parser
            .push(b"data: 1234")
            .is_err_and(|e| matches!(e, ClientError::ResponseTooLarge { limit: 8 })));
    }

    #[test]
    fn random_nonces_differ() {
        assert_ne!(random_nonce().unwrap(), random_nonce().unwrap());
    }
}
