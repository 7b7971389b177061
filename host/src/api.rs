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
use tokio::net::{UnixListener, UnixStream};

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
        Error::MeasurementChanged { .. } | Error::Spawn { .. } | Error::Measure { .. } => {
            StatusCode::CONFLICT
        }
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

/// Serves the API until `shutdown` resolves.
pub async fn serve(
    listener: UnixListener,
    sup: Arc<Supervisor>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
        };
        let sup = Arc::clone(&sup);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let sup = Arc::clone(&sup);
                async move { Ok::<_, std::convert::Infallible>(route(sup, req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
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
