//! The management API: HTTP/1.1 with JSON bodies on a unix socket (`STATE_DIR/host.sock`, mode
//! 0600 in a 0700 folder). Routes (docs/host.md):
//!
//! | method | path | answer |
//! |---|---|---|
//! | GET | `/v1/vms` | `[VmState]` |
//! | GET | `/v1/vms/NAME` | `VmState` |
//! | POST | `/v1/vms/NAME/start` \| `stop` \| `restart` | `VmState` |
//! | GET | `/v1/vms/NAME/logs?lines=N` | `{"lines": [..]}` |
//! | GET | `/v1/vms/NAME/health` | `{"status": CODE, "body": ..}` |
//! | GET | `/v1/vms/NAME/measurements` | `Measurements` |
//! | GET | `/v1/vms/NAME/policy` | `{"policy": "TOML"}` |
//!
//! Errors: `{"error": "..."}` with 404 (unknown VM or route), 409 (a start refused), 502 (health).
//!
//! Optionally the same API on a loopback TCP port (`serve --api-listen 127.0.0.1:PORT`) for tools
//! that cannot reach a unix socket: plain HTTP (loopback only), every request must carry
//! `Authorization: Bearer TOKEN` with the token of `--api-token-file` (created 0600 with 32 random
//! bytes when absent); anything else is 401.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::net::{TcpListener, UnixListener, UnixStream};

use crate::error::{Error, Result};
use crate::measure;
use crate::supervisor::Supervisor;

/// The socket's file name in the state folder.
pub const SOCKET_NAME: &str = "host.sock";
/// Largest answer a CLI reads.
const MAX_ANSWER_BYTES: usize = 16 * 1024 * 1024;
/// Default `logs` lines.
pub const DEFAULT_LOG_LINES: usize = 100;

/// `STATE_DIR/host.sock`.
pub fn socket_path(state_dir: &Path) -> PathBuf {
    state_dir.join(SOCKET_NAME)
}

fn reply(status: StatusCode, value: &impl Serialize) -> Response<Full<Bytes>> {
    let body = serde_json::to_vec_pretty(value).unwrap_or_default();
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

fn error_reply(e: &Error) -> Response<Full<Bytes>> {
    let status = match e {
        Error::UnknownVm(_) => StatusCode::NOT_FOUND,
        Error::Health(_) => StatusCode::BAD_GATEWAY,
        Error::MeasurementChanged { .. }
        | Error::Spawn { .. }
        | Error::Measure { .. }
        | Error::ImageChanged { .. }
        | Error::ImageInvalid { .. } => StatusCode::CONFLICT,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    reply(status, &json!({ "error": e.to_string() }))
}

fn respond<T: Serialize>(result: Result<T>) -> Response<Full<Bytes>> {
    match result {
        Ok(value) => reply(StatusCode::OK, &value),
        Err(e) => error_reply(&e),
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Api(format!("task: {e}")))?
}

async fn route(sup: Arc<Supervisor>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    let method = req.method().clone();
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (method, parts.as_slice()) {
        (Method::GET, ["v1", "vms"]) => reply(StatusCode::OK, &sup.list()),
        (Method::GET, ["v1", "vms", name]) => respond(sup.status(name)),
        (Method::POST, ["v1", "vms", name, action @ ("start" | "stop" | "restart")]) => {
            let (name, action) = ((*name).to_owned(), (*action).to_owned());
            let s = Arc::clone(&sup);
            respond(
                blocking(move || match action.as_str() {
                    "start" => s.start(&name),
                    "stop" => s.stop(&name),
                    _ => s.restart(&name),
                })
                .await,
            )
        }
        (Method::GET, ["v1", "vms", name, "logs"]) => {
            let lines = query
                .split('&')
                .find_map(|kv| kv.strip_prefix("lines="))
                .and_then(|n| n.parse().ok())
                .unwrap_or(DEFAULT_LOG_LINES);
            respond(sup.logs(name, lines).map(|lines| json!({ "lines": lines })))
        }
        (Method::GET, ["v1", "vms", name, "measurements"]) => respond(sup.measurements(name)),
        (Method::GET, ["v1", "vms", name, "policy"]) => respond(
            sup.measurements(name)
                .map(|m| json!({ "policy": measure::policy_toml(&m) })),
        ),
        (Method::GET, ["v1", "vms", name, "health"]) => match sup.port(name) {
            Ok(port) => respond(crate::health::check(port).await),
            Err(e) => error_reply(&e),
        },
        _ => reply(
            StatusCode::NOT_FOUND,
            &json!({ "error": format!("no route {path}") }),
        ),
    }
}

/// Binds the socket (replacing a stale one: the caller holds the state folder's lock).
pub fn bind(state_dir: &Path) -> Result<UnixListener> {
    use std::os::unix::fs::PermissionsExt;
    let path = socket_path(state_dir);
    match std::fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::Io { path, source: e }),
    }
    let listener = UnixListener::bind(&path).map_err(crate::error::io(&path))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
        .map_err(crate::error::io(&path))?;
    Ok(listener)
}

/// The bearer token of the TCP API, kept as its SHA-256 so the comparison below takes the same
/// time whatever the presented token is.
#[derive(Clone)]
pub struct ApiToken(Arc<[u8; 32]>);

impl std::fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiToken(..)")
    }
}

/// Shortest token accepted from a token file.
pub const MIN_TOKEN_CHARS: usize = 32;

impl ApiToken {
    pub fn new(token: &str) -> Self {
        Self(Arc::new(Sha256::digest(token.as_bytes()).into()))
    }

    /// Whether `Authorization` is `Bearer TOKEN` with this token (constant time over the digests).
    pub fn accepts(&self, authorization: Option<&http::HeaderValue>) -> bool {
        let presented = authorization
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        digest
            .iter()
            .zip(self.0.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }

    /// Reads the token of `path`, or creates the file (0600, atomically) with 32 random bytes in
    /// hex when it does not exist. A token file readable by group or others is refused.
    pub fn load_or_create(path: &Path) -> Result<Self> {
        use std::io::Read;
        use std::os::unix::fs::PermissionsExt;
        match std::fs::metadata(path) {
            Ok(meta) => {
                if meta.permissions().mode() & 0o077 != 0 {
                    return Err(Error::Api(format!(
                        "{}: the token file must not be readable by group or others (chmod 600)",
                        path.display()
                    )));
                }
                let mut text = String::new();
                std::fs::File::open(path)
                    .and_then(|f| f.take(4096).read_to_string(&mut text))
                    .map_err(crate::error::io(path))?;
                let token = text.trim();
                if token.len() < MIN_TOKEN_CHARS || token.contains(char::is_whitespace) {
                    return Err(Error::Api(format!(
                        "{}: the token must be one word of at least {MIN_TOKEN_CHARS} characters",
                        path.display()
                    )));
                }
                Ok(Self::new(token))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut bytes = [0u8; 32];
                std::fs::File::open("/dev/urandom")
                    .and_then(|mut f| f.read_exact(&mut bytes))
                    .map_err(crate::error::io("/dev/urandom"))?;
                let token = hex::encode(bytes);
                crate::state::write_atomic(path, format!("{token}\n").as_bytes())?;
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                    .map_err(crate::error::io(path))?;
                Ok(Self::new(&token))
            }
            Err(e) => Err(Error::Io {
                path: path.to_path_buf(),
                source: e,
            }),
        }
    }
}

/// Binds the TCP API; only loopback addresses (the API is plain HTTP).
pub async fn bind_tcp(addr: std::net::SocketAddr) -> Result<TcpListener> {
    if !addr.ip().is_loopback() {
        return Err(Error::Api(format!(
            "--api-listen {addr}: only a loopback address (127.0.0.1, ::1); the API has no TLS"
        )));
    }
    TcpListener::bind(addr)
        .await
        .map_err(|e| Error::Api(format!("--api-listen {addr}: {e}")))
}

fn serve_connection<S>(stream: S, sup: Arc<Supervisor>, token: Option<ApiToken>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let service = hyper::service::service_fn(move |req: Request<Incoming>| {
            let sup = Arc::clone(&sup);
            let token = token.clone();
            async move {
                if let Some(token) = token {
                    if !token.accepts(req.headers().get(http::header::AUTHORIZATION)) {
                        let mut r = reply(
                            StatusCode::UNAUTHORIZED,
                            &json!({ "error": "missing or wrong bearer token" }),
                        );
                        r.headers_mut().insert(
                            http::header::WWW_AUTHENTICATE,
                            http::HeaderValue::from_static("Bearer"),
                        );
                        return Ok::<_, std::convert::Infallible>(r);
                    }
                }
                Ok(route(sup, req).await)
            }
        });
        let _ = hyper::server::conn::http1::Builder::new()
            .header_read_timeout(Duration::from_secs(30))
            .timer(hyper_util::rt::TokioTimer::new())
            .serve_connection(TokioIo::new(stream), service)
            .await;
    });
}

/// Serves the API until `shutdown` resolves: on the unix socket, and on `tcp` (loopback, bearer
/// token) when given.
pub async fn serve(
    listener: UnixListener,
    tcp: Option<(TcpListener, ApiToken)>,
    sup: Arc<Supervisor>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let (tcp_listener, token) = match tcp {
        Some((l, t)) => (Some(l), Some(t)),
        None => (None, None),
    };
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => {
                if let Ok((stream, _)) = accepted {
                    serve_connection(stream, Arc::clone(&sup), None);
                }
            }
            accepted = async {
                match &tcp_listener {
                    Some(l) => l.accept().await,
                    None => std::future::pending().await,
                }
            } => {
                if let Ok((stream, _)) = accepted {
                    serve_connection(stream, Arc::clone(&sup), token.clone());
                }
            }
        }
    }
}

/// One request to the agent of `state_dir`: the answer's status and JSON.
pub async fn call(
    state_dir: &Path,
    method: Method,
    path: &str,
) -> Result<(StatusCode, serde_json::Value)> {
    let socket = socket_path(state_dir);
    let stream = UnixStream::connect(&socket).await.map_err(|e| {
        Error::Api(format!(
            "{}: {e} (is `cocoon-host serve --state {}` running?)",
            socket.display(),
            state_dir.display()
        ))
    })?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| Error::Api(e.to_string()))?;
    tokio::spawn(conn);
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header(http::header::HOST, "cocoon-host")
        .body(Full::new(Bytes::new()))
        .map_err(|e| Error::Api(e.to_string()))?;
    let response = tokio::time::timeout(Duration::from_secs(600), sender.send_request(request))
        .await
        .map_err(|_| Error::Api("no answer in 600 s".into()))?
        .map_err(|e| Error::Api(e.to_string()))?;
    let status = response.status();
    let body = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
        .collect()
        .await
        .map_err(|e| Error::Api(e.to_string()))?
        .to_bytes();
    let value = serde_json::from_slice(&body).map_err(|e| Error::Api(e.to_string()))?;
    Ok((status, value))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_bearer_token_is_accepted() {
        let token = ApiToken::new("0123456789abcdef0123456789abcdef");
        let h = |v: &str| http::HeaderValue::from_str(v).unwrap();
        assert!(token.accepts(Some(&h("Bearer 0123456789abcdef0123456789abcdef"))));
        assert!(!token.accepts(Some(&h("Bearer 0123456789abcdef0123456789abcdeF"))));
        assert!(!token.accepts(Some(&h("Bearer 0123456789abcdef0123456789abcde"))));
        assert!(!token.accepts(Some(&h("bearer 0123456789abcdef0123456789abcdef"))));
        assert!(!token.accepts(Some(&h("0123456789abcdef0123456789abcdef"))));
        assert!(!token.accepts(Some(&h("Bearer "))));
        assert!(!token.accepts(None));
    }

    #[test]
    fn a_token_file_is_created_private_and_read_back() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("api.token");
        let created = ApiToken::load_or_create(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.trim().len(), 64);
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let header = http::HeaderValue::from_str(&format!("Bearer {}", text.trim())).unwrap();
        assert!(created.accepts(Some(&header)));
        assert!(ApiToken::load_or_create(&path)
            .unwrap()
            .accepts(Some(&header)));
    }

    #[test]
    fn weak_or_exposed_token_files_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let short = dir.path().join("short");
        std::fs::write(&short, "abc\n").unwrap();
        std::fs::set_permissions(&short, std::fs::Permissions::from_mode(0o600)).unwrap();
        match ApiToken::load_or_create(&short) {
            Err(Error::Api(detail)) => assert!(detail.contains("at least"), "{detail}"),
            other => panic!("expected Error::Api, got {other:?}"),
        }
        let open = dir.path().join("open");
        std::fs::write(&open, "x".repeat(40)).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o644)).unwrap();
        match ApiToken::load_or_create(&open) {
            Err(Error::Api(detail)) => assert!(detail.contains("chmod 600"), "{detail}"),
            other => panic!("expected Error::Api, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn the_tcp_api_binds_loopback_only() {
        match bind_tcp("0.0.0.0:0".parse().unwrap()).await {
            Err(Error::Api(detail)) => assert!(detail.contains("loopback"), "{detail}"),
            other => panic!("expected Error::Api, got {other:?}"),
        }
        assert!(bind_tcp("127.0.0.1:0".parse().unwrap()).await.is_ok());
    }
}
