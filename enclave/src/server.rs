//! The enclave's RA-TLS server: TCP, a TLS 1.3 handshake under a deadline, then HTTP/1.1.
//!
//! - Handshakes run under [`ServerOptions::handshake_timeout`] and at most
//!   [`ServerOptions::max_concurrent_handshakes`] at once; a connection over the cap is closed
//!   at once, so a client that opens connections and sends nothing (slowloris) holds a slot for
//!   at most the timeout and never blocks the accept loop.
//! - Each connection is pinned to the identity current when it was accepted (see
//!   [`crate::rotation`]): `GET /v1/attestation` on it binds that connection's key.
//! - In mutual mode the client's RA-TLS certificate is verified by the handshake; the verified
//!   peer is in every request's extensions ([`ConnectionInfo`]), for the application.
//! - Routes: `GET /v1/attestation?nonce=HEX` and `GET /v1/identity` built in; more are mounted
//!   with [`Router::route`] (an application route replaces a built-in one of the same method
//!   and path).
//! - [`ServerHandle::shutdown`] stops accepting, lets requests in flight finish (HTTP/1.1
//!   graceful close) within [`ServerOptions::shutdown_grace`], then drops the rest.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use cocoon_attestation::ratls::{peer_of_at, server_config, RaTlsVerifier, VerifiedPeer};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use rustls::server::ResolvesServerCert;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use crate::api;
use crate::error::AttestError;
use crate::identity::{unix_now, Identity};
use crate::rotation::{FixedIdentity, IdentityResolver};
use crate::Attester;

/// Errors a handler's body may fail with.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body of every response.
pub type ResponseBody = http_body_util::combinators::BoxBody<Bytes, BoxError>;

/// What a handler returns.
pub type HandlerFuture = Pin<Box<dyn Future<Output = Response<ResponseBody>> + Send>>;

/// A request handler; implemented for `Fn(Request<Incoming>) -> impl Future<Output = Response>`.
pub trait Handler: Send + Sync + 'static {
    fn call(&self, request: Request<Incoming>) -> HandlerFuture;
}

impl<F, Fut> Handler for F
where
    F: Fn(Request<Incoming>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response<ResponseBody>> + Send + 'static,
{
    fn call(&self, request: Request<Incoming>) -> HandlerFuture {
        Box::pin(self(request))
    }
}

/// What the server knows about a connection, in every request's extensions.
#[derive(Debug, Clone)]
pub struct ConnectionInfo {
    pub remote_addr: SocketAddr,
    /// The client's verified identity (mutual mode); `None` in server-auth mode.
    pub peer: Option<Arc<VerifiedPeer>>,
    /// The identity (key, claims, certificate) this connection was accepted with.
    pub identity: Arc<Identity>,
}

/// Exact-path routes by method.
#[derive(Clone, Default)]
pub struct Router {
    routes: BTreeMap<(String, String), Arc<dyn Handler>>,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.routes.keys()).finish()
    }
}

impl Router {
    pub fn new() -> Self {
        Self::default()
    }

    /// Mounts `handler` at `method path` (exact match, query ignored).
    pub fn route(mut self, method: Method, path: &str, handler: impl Handler) -> Self {
        self.routes.insert(
            (method.as_str().to_owned(), path.to_owned()),
            Arc::new(handler),
        );
        self
    }

    fn route_if_absent(mut self, method: Method, path: &str, handler: impl Handler) -> Self {
        self.routes
            .entry((method.as_str().to_owned(), path.to_owned()))
            .or_insert_with(|| Arc::new(handler));
        self
    }

    /// Routes one request.
    pub async fn dispatch(&self, request: Request<Incoming>) -> Response<ResponseBody> {
        let key = (
            request.method().as_str().to_owned(),
            request.uri().path().to_owned(),
        );
        if let Some(handler) = self.routes.get(&key) {
            return handler.call(request).await;
        }
        if self.routes.keys().any(|(_, path)| *path == key.1) {
            return api::error(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "method not allowed",
            );
        }
        api::error(StatusCode::NOT_FOUND, "not_found", "no such route")
    }
}

/// A response body from bytes.
pub fn full(bytes: impl Into<Bytes>) -> ResponseBody {
    Full::new(bytes.into()).map_err(|e| match e {}).boxed()
}

/// Server limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerOptions {
    /// The whole TLS handshake must finish within this.
    pub handshake_timeout: Duration,
    /// Handshakes in progress at once; connections beyond are closed immediately.
    pub max_concurrent_handshakes: usize,
    /// Connections open at once (handshaking or established); beyond, closed immediately.
    pub max_connections: usize,
    /// A request's headers must arrive within this, also the next request's on an idle
    /// keep-alive connection (which is closed when it passes).
    pub header_read_timeout: Duration,
    /// Largest request head buffered (bytes).
    pub max_header_bytes: usize,
    /// Fresh attestations computed at once (the attester is slow on hardware); more wait.
    pub max_concurrent_attestations: usize,
    /// How long [`ServerHandle::shutdown`] lets connections finish.
    pub shutdown_grace: Duration,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            handshake_timeout: Duration::from_secs(10),
            max_concurrent_handshakes: 256,
            max_connections: 4096,
            header_read_timeout: Duration::from_secs(30),
            max_header_bytes: 64 * 1024,
            max_concurrent_attestations: 4,
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// Handshake outcomes, for monitoring and tests.
#[derive(Debug, Default)]
pub struct ServerStats {
    pub handshakes_ok: AtomicU64,
    pub handshakes_failed: AtomicU64,
    pub handshakes_timed_out: AtomicU64,
    /// Connections closed because `max_concurrent_handshakes` were in progress or
    /// `max_connections` were open.
    pub over_capacity: AtomicU64,
    last_failure: Mutex<Option<rustls::Error>>,
}

impl ServerStats {
    /// The TLS error of the last failed handshake (`None` if it failed outside TLS).
    pub fn last_failure(&self) -> Option<rustls::Error> {
        self.last_failure.lock().ok().and_then(|e| e.clone())
    }

    pub fn count(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Acquire)
    }
}

/// Everything the server serves from.
#[derive(Debug, Clone)]
pub struct Enclave {
    pub attester: Arc<dyn Attester>,
    pub resolver: Arc<IdentityResolver>,
    /// Mutual mode: verifies the client's RA-TLS certificate (required).
    pub client_verifier: Option<Arc<RaTlsVerifier>>,
}

struct Shared {
    enclave: Enclave,
    tls: rustls::ServerConfig,
    router: Router,
    options: ServerOptions,
    stats: Arc<ServerStats>,
}

/// A running server.
#[derive(Debug)]
pub struct ServerHandle {
    local_addr: SocketAddr,
    stats: Arc<ServerStats>,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl ServerHandle {
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn stats(&self) -> &Arc<ServerStats> {
        &self.stats
    }

    /// Stops accepting and waits for connections to finish (at most the grace period).
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
    }

    /// Waits until the server stops (it stops only through [`shutdown`](Self::shutdown)).
    pub async fn wait(self) {
        let _ = self.task.await;
    }

    /// A sender that stops the server when `true` is sent (for signal handlers).
    pub fn shutdown_sender(&self) -> watch::Sender<bool> {
        self.shutdown.clone()
    }
}

/// Binds `addr` and serves `enclave` with the built-in routes and `router`'s.
pub async fn bind(
    addr: SocketAddr,
    enclave: Enclave,
    router: Router,
    options: ServerOptions,
) -> Result<ServerHandle, AttestError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| AttestError::Network {
            op: "bind",
            addr: addr.to_string(),
            source,
        })?;
    serve(listener, enclave, router, options)
}

/// Serves on an already bound listener.
pub fn serve(
    listener: TcpListener,
    enclave: Enclave,
    router: Router,
    options: ServerOptions,
) -> Result<ServerHandle, AttestError> {
    if options.max_concurrent_handshakes == 0
        || options.max_connections == 0
        || options.max_concurrent_attestations == 0
    {
        return Err(AttestError::InvalidConfig {
            reason: "handshake, connection and attestation limits must be at least 1".into(),
        });
    }
    let local_addr = listener
        .local_addr()
        .map_err(|source| AttestError::Network {
            op: "local_addr",
            addr: String::new(),
            source,
        })?;
    let resolver: Arc<dyn ResolvesServerCert> = Arc::clone(&enclave.resolver) as _;
    let tls = server_config(resolver, enclave.client_verifier.clone())
        .map_err(AttestError::Certificate)?;
    let attestations = Arc::new(Semaphore::new(options.max_concurrent_attestations));
    let router = router
        .route_if_absent(Method::GET, api::ATTESTATION_PATH, {
            let attester = Arc::clone(&enclave.attester);
            move |request: Request<Incoming>| {
                api::attestation(request, Arc::clone(&attester), Arc::clone(&attestations))
            }
        })
        .route_if_absent(Method::GET, api::IDENTITY_PATH, api::identity);
    let stats = Arc::new(ServerStats::default());
    let shared = Arc::new(Shared {
        enclave,
        tls,
        router,
        options,
        stats: Arc::clone(&stats),
    });
    let (shutdown, watcher) = watch::channel(false);
    let task = tokio::spawn(accept_loop(listener, shared, watcher));
    Ok(ServerHandle {
        local_addr,
        stats,
        shutdown,
        task,
    })
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let handshakes = Arc::new(Semaphore::new(shared.options.max_concurrent_handshakes));
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() {
                    break;
                }
            }
            accepted = listener.accept() => match accepted {
                Ok((tcp, remote)) => {
                    if connections.len() >= shared.options.max_connections {
                        shared.stats.over_capacity.fetch_add(1, Ordering::AcqRel);
                        drop(tcp);
                        continue;
                    }
                    let Ok(permit) = Arc::clone(&handshakes).try_acquire_owned() else {
                        shared.stats.over_capacity.fetch_add(1, Ordering::AcqRel);
                        drop(tcp);
                        continue;
                    };
                    connections.spawn(connection(
                        Arc::clone(&shared),
                        tcp,
                        remote,
                        permit,
                        stop.clone(),
                    ));
                }
                // Out of descriptors and the like: wait instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    let drain = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(shared.options.shutdown_grace, drain)
        .await
        .is_err()
    {
        connections.abort_all();
    }
}

async fn connection(
    shared: Arc<Shared>,
    tcp: TcpStream,
    remote_addr: SocketAddr,
    permit: OwnedSemaphorePermit,
    mut stop: watch::Receiver<bool>,
) {
    let _ = tcp.set_nodelay(true);
    let stats = &shared.stats;
    // Pin the identity: a rotation during or after the handshake does not change this
    // connection's key, so its fresh attestations bind the key it really uses.
    let identity = shared.enclave.resolver.current();
    let mut tls = shared.tls.clone();
    tls.cert_resolver = Arc::new(FixedIdentity(Arc::clone(identity.certified_key())));
    let acceptor = TlsAcceptor::from(Arc::new(tls));
    let stream =
        match tokio::time::timeout(shared.options.handshake_timeout, acceptor.accept(tcp)).await {
            Err(_) => {
                stats.handshakes_timed_out.fetch_add(1, Ordering::AcqRel);
                return;
            }
            Ok(Err(e)) => {
                stats.handshakes_failed.fetch_add(1, Ordering::AcqRel);
                if let Ok(mut last) = stats.last_failure.lock() {
                    *last = tls_error(&e).cloned();
                }
                return;
            }
            Ok(Ok(stream)) => stream,
        };
    drop(permit);
    let peer = match &shared.enclave.client_verifier {
        Some(verifier) => match unix_now()
            .ok()
            .and_then(|now| peer_of_at(verifier, stream.get_ref().1, now))
        {
            Some(Ok(peer)) => Some(peer),
            // The handshake required a verified client certificate; never serve without one.
            Some(Err(_)) | None => {
                stats.handshakes_failed.fetch_add(1, Ordering::AcqRel);
                return;
            }
        },
        None => None,
    };
    stats.handshakes_ok.fetch_add(1, Ordering::AcqRel);
    let info = ConnectionInfo {
        remote_addr,
        peer,
        identity,
    };
    let router = shared.router.clone();
    let service = service_fn(move |mut request: Request<Incoming>| {
        request.extensions_mut().insert(info.clone());
        let router = router.clone();
        async move { Ok::<_, Infallible>(router.dispatch(request).await) }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(shared.options.header_read_timeout)
        .max_buf_size(shared.options.max_header_bytes.max(8192));
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = stop.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

/// The rustls error inside an I/O error from tokio-rustls.
pub fn tls_error(error: &std::io::Error) -> Option<&rustls::Error> {
    error.get_ref()?.downcast_ref::<rustls::Error>()
}
