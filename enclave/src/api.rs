//! The built-in routes: `GET /v1/attestation?nonce=HEX` and `GET /v1/identity`, and the JSON
//! forms they use.

use std::sync::Arc;

use cocoon_attestation::claims::{Claims, MAX_NONCE_LEN};
use cocoon_attestation::ratls::VerifiedPeer;
use http::header::CONTENT_TYPE;
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use serde_json::{json, Value};
use tokio::sync::Semaphore;

use crate::server::{full, ConnectionInfo, ResponseBody};
use crate::Attester;

pub const ATTESTATION_PATH: &str = "/v1/attestation";
pub const IDENTITY_PATH: &str = "/v1/identity";

/// A JSON response.
pub fn json_response(status: StatusCode, body: Vec<u8>) -> Response<ResponseBody> {
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

/// `{"error": {"kind": KIND, "message": MESSAGE}}` with `status`.
pub fn error(status: StatusCode, kind: &str, message: &str) -> Response<ResponseBody> {
    let body = json!({"error": {"kind": kind, "message": message}});
    json_response(status, body.to_string().into_bytes())
}

/// The nonce of `?nonce=HEX`: exactly one, hex, 1..=64 bytes.
pub fn parse_nonce(query: Option<&str>) -> Result<Vec<u8>, String> {
    let mut found = None;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if key != "nonce" {
            continue;
        }
        if found.is_some() {
            return Err("nonce given more than once".into());
        }
        found = Some(value);
    }
    let hex_nonce = found.ok_or("missing query parameter nonce=HEX")?;
    if hex_nonce.len() > MAX_NONCE_LEN.saturating_mul(2) {
        return Err(format!("nonce longer than {MAX_NONCE_LEN} bytes"));
    }
    let nonce = hex::decode(hex_nonce).map_err(|e| format!("nonce is not hex: {e}"))?;
    if nonce.is_empty() {
        return Err("nonce is empty".into());
    }
    Ok(nonce)
}

/// `GET /v1/attestation?nonce=HEX`: new evidence for this connection's claims plus the nonce.
pub async fn attestation(
    request: Request<Incoming>,
    attester: Arc<dyn Attester>,
    limit: Arc<Semaphore>,
) -> Response<ResponseBody> {
    let nonce = match parse_nonce(request.uri().query()) {
        Ok(nonce) => nonce,
        Err(message) => return error(StatusCode::BAD_REQUEST, "bad_nonce", &message),
    };
    let Some(info) = request.extensions().get::<ConnectionInfo>().cloned() else {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "no connection",
        );
    };
    let Ok(_permit) = limit.acquire_owned().await else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "shutting down",
        );
    };
    let fresh = tokio::task::spawn_blocking(move || {
        info.identity.fresh_attestation(attester.as_ref(), &nonce)
    })
    .await;
    match fresh {
        Ok(Ok(fresh)) => json_response(StatusCode::OK, fresh.to_json().into()),
        Ok(Err(e)) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "attester_failed",
            &e.to_string(),
        ),
        Err(_) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "attestation task failed",
        ),
    }
}

/// `GET /v1/identity`: this connection's claims and, in mutual mode, the verified client's.
pub async fn identity(request: Request<Incoming>) -> Response<ResponseBody> {
    let Some(info) = request.extensions().get::<ConnectionInfo>() else {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "no connection",
        );
    };
    let body = json!({
        "claims": info.identity.claims().to_json(),
        "certificate_spki_sha256": hex::encode(info.identity.spki_sha256()),
        "peer": info.peer.as_deref().map(peer_json),
    });
    json_response(StatusCode::OK, body.to_string().into_bytes())
}

/// A verified peer as JSON.
pub fn peer_json(peer: &VerifiedPeer) -> Value {
    json!({
        "claims": peer.claims.as_ref().map(Claims::to_json),
        "spki_sha256": hex::encode(peer.spki_sha256),
        "measurements": peer.measurements,
        "platform": peer.platform.as_str(),
        "simulated": peer.simulated,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn nonce_of_one_to_sixty_four_hex_bytes_is_accepted() {
        assert_eq!(parse_nonce(Some("nonce=00")).unwrap(), vec![0]);
        let max = "ab".repeat(64);
        assert_eq!(
            parse_nonce(Some(&format!("nonce={max}"))).unwrap().len(),
            64
        );
        assert_eq!(parse_nonce(Some("other=1&nonce=0102")).unwrap(), vec![1, 2]);
    }

    #[test]
    fn missing_empty_odd_non_hex_duplicate_or_long_nonces_are_refused() {
        let long = format!("nonce={}", "ab".repeat(65));
        for query in [
            None,
            Some(""),
            Some("nonce="),
            Some("nonce"),
            Some("nonce=abc"),
            Some("nonce=zz"),
            Some("nonce=01&nonce=01"),
            Some(long.as_str()),
        ] {
            assert!(parse_nonce(query).is_err(), "{query:?}");
        }
    }

    #[test]
    fn error_responses_are_json_with_kind_and_message() {
        let response = error(StatusCode::BAD_REQUEST, "bad_nonce", "nonce is empty");
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            response.headers().get(CONTENT_TYPE).unwrap(),
            "application/json"
        );
    }
}
