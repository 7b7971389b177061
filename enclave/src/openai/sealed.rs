//! HPKE-sealed request and response bodies over HTTP (docs/hpke.md, "HTTP carriage (v1)").
//!
//! A `POST` whose `Content-Type` is [`SEALED_CONTENT_TYPE`] carries an envelope sealed to the
//! enclave's per-boot key ([`cocoon_attestation::bodies::RequestOpener`]); the AAD binds the
//! request line's method and path-and-query and the `Cocoon-Request-Id` / `Cocoon-Timestamp`
//! headers. Refusals before the envelope opens are plain JSON (they reveal nothing secret);
//! from then on every response is sealed: a buffered body as one final chunk, an SSE body as one
//! `data: <base64 chunk>` event per inner frame and a final empty chunk when the inner body ends.
//!
//! Cancellation: [`SealedEvents`] owns the inner SSE body; when the client goes away hyper drops
//! it, which closes the generation's channel and so cancels the sequence (see `sse.rs`).

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bytes::Bytes;
use cocoon_attestation::bodies::{
    RequestAad, ResponseSealer, HEADER_LEN, MAX_CHUNK_PLAINTEXT, MAX_SEALED_REQUEST, TAG_LEN,
};
use cocoon_attestation::Error as BodyError;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response};
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming};

pub use cocoon_attestation::bodies::http::{
    INNER_CONTENT_TYPE_HEADER, REQUEST_ID_HEADER, SEALED_CONTENT_TYPE, TIMESTAMP_HEADER,
};

use super::{answer, read_body, ApiError, Endpoint, OpenAi};
use crate::server::{full, BoxError, ResponseBody};

/// Whether the request's `Content-Type` is [`SEALED_CONTENT_TYPE`] (parameters ignored).
pub(super) fn is_sealed(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(SEALED_CONTENT_TYPE))
}

fn headers_invalid(message: impl Into<String>) -> ApiError {
    ApiError::SealedRequestInvalid {
        code: "sealed_headers_invalid",
        message: message.into(),
    }
}

/// The one value of header `name`.
fn single<'a>(headers: &'a HeaderMap, name: &str) -> Result<&'a str, ApiError> {
    let mut values = headers.get_all(name).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err(headers_invalid(format!(
            "a sealed request needs exactly one {name} header"
        )));
    };
    value
        .to_str()
        .map_err(|_| headers_invalid(format!("{name} is not visible ASCII")))
}

/// `Cocoon-Request-Id`: 32 lowercase hex digits.
pub(super) fn request_id(headers: &HeaderMap) -> Result<[u8; 16], ApiError> {
    let text = single(headers, REQUEST_ID_HEADER)?;
    let lower_hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
    if text.len() != 32 || !text.bytes().all(lower_hex) {
        return Err(headers_invalid(format!(
            "{REQUEST_ID_HEADER} must be 32 lowercase hex digits"
        )));
    }
    let bytes = hex::decode(text).map_err(|_| {
        headers_invalid(format!(
            "{REQUEST_ID_HEADER} must be 32 lowercase hex digits"
        ))
    })?;
    <[u8; 16]>::try_from(bytes.as_slice()).map_err(|_| {
        headers_invalid(format!(
            "{REQUEST_ID_HEADER} must be 32 lowercase hex digits"
        ))
    })
}

/// `Cocoon-Timestamp`: decimal unix seconds, an i64.
pub(super) fn timestamp(headers: &HeaderMap) -> Result<i64, ApiError> {
    let text = single(headers, TIMESTAMP_HEADER)?;
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.is_empty() || digits.len() > 19 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(headers_invalid(format!(
            "{TIMESTAMP_HEADER} must be decimal unix seconds"
        )));
    }
    text.parse::<i64>().map_err(|_| {
        headers_invalid(format!(
            "{TIMESTAMP_HEADER} must be decimal unix seconds (an i64)"
        ))
    })
}

/// The API error of a failed open (docs/hpke.md, the table of errors before the envelope opened).
pub(super) fn open_error(e: &BodyError, retry_after_secs: u64) -> ApiError {
    let invalid = |code: &'static str| ApiError::SealedRequestInvalid {
        code,
        message: e.message(),
    };
    match e {
        BodyError::SealedBodyMalformed { .. } => invalid("sealed_body_malformed"),
        BodyError::SealedBodyUnsupported { .. } => invalid("sealed_body_unsupported"),
        BodyError::SealedBodyDecryptFailed => invalid("sealed_body_decrypt_failed"),
        BodyError::RequestTimestampOutOfWindow { .. } => invalid("request_timestamp_out_of_window"),
        // The request line's method or path cannot be bound into the AAD.
        BodyError::RequestAadInvalid { .. } => invalid("sealed_headers_invalid"),
        BodyError::RequestReplayed => ApiError::RequestReplayed,
        BodyError::RequestReplayCacheFull { .. } => ApiError::ReplayCacheFull { retry_after_secs },
        BodyError::SealedBodyTooLarge { limit, .. } => ApiError::BodyTooLarge { limit: *limit },
        _ => ApiError::Internal {
            message: "opening the sealed body failed".into(),
        },
    }
}

/// Largest sealed envelope read: the plaintext limit plus the envelope's overhead, at most
/// [`MAX_SEALED_REQUEST`].
pub(super) fn envelope_limit(max_body_bytes: usize) -> usize {
    max_body_bytes
        .saturating_add(HEADER_LEN + TAG_LEN)
        .min(MAX_SEALED_REQUEST)
}

/// A sealed `POST`: checks the headers, reads and opens the envelope, answers the plaintext
/// like a plain request and seals the answer. `now` is the enclave's unix time in seconds.
pub(super) async fn generate(
    state: &Arc<OpenAi>,
    request: Request<Incoming>,
    endpoint: Endpoint,
    arrived: Instant,
    now: i64,
) -> Response<ResponseBody> {
    match open(state, request, now).await {
        Err(e) => {
            state.metrics.sealed_refused(e.code());
            tracing::debug!(code = e.code(), error = ?e, "sealed request refused before opening");
            e.response()
        }
        Ok((body, permit, sealer)) => {
            state.metrics.sealed_opened();
            let response = answer(state, body, permit, endpoint, arrived, true).await;
            seal_response(response, sealer).await
        }
    }
}

type Opened = (Bytes, tokio::sync::OwnedSemaphorePermit, ResponseSealer);

async fn open(
    state: &Arc<OpenAi>,
    request: Request<Incoming>,
    now: i64,
) -> Result<Opened, ApiError> {
    if state.opener.is_none() {
        return Err(ApiError::EncryptionUnavailable);
    }
    let headers = request.headers();
    let request_id = request_id(headers)?;
    let timestamp = timestamp(headers)?;
    let method = request.method().as_str().to_owned();
    let path = request.uri().path_and_query().map_or_else(
        || request.uri().path().to_owned(),
        |p| p.as_str().to_owned(),
    );
    let aad = RequestAad {
        method,
        path,
        request_id,
        timestamp,
    };
    // Model availability before reading: a loading model answers 503 without the body.
    state.available()?;
    let limit = envelope_limit(state.config.max_body_bytes);
    let (envelope, permit) = read_body(&state.config, &state.bodies, request, limit).await?;
    let state = Arc::clone(state);
    // X25519 and an AEAD pass over up to 8 MiB: off the async threads.
    let opened = tokio::task::spawn_blocking(move || {
        let opener = state
            .opener
            .as_ref()
            .ok_or(ApiError::EncryptionUnavailable)?;
        let mut replay = state.replay.lock().map_err(|_| ApiError::Internal {
            message: "the replay cache lock is poisoned".into(),
        })?;
        opener
            .open_request(&envelope, &aad, now, &mut replay)
            .map_err(|e| open_error(&e, state.config.retry_after_secs))
    })
    .await
    .map_err(|e| ApiError::Internal {
        message: format!("the opening task failed: {e}"),
    })??;
    let (plaintext, sealer) = opened;
    Ok((Bytes::from(plaintext), permit, sealer))
}

const EVENT_STREAM: &str = "text/event-stream";

/// Seals a response to a request that opened: an SSE body event by event, any other body as
/// one final chunk. Status and headers other than the content type stay as they are.
pub(super) async fn seal_response(
    response: Response<ResponseBody>,
    mut sealer: ResponseSealer,
) -> Response<ResponseBody> {
    let (mut parts, body) = response.into_parts();
    let inner = parts
        .headers
        .get(CONTENT_TYPE)
        .cloned()
        .unwrap_or_else(|| HeaderValue::from_static("application/json"));
    parts.headers.remove(CONTENT_LENGTH);
    parts.headers.insert(
        HeaderName::from_static(INNER_CONTENT_TYPE_HEADER),
        inner.clone(),
    );
    let streamed = inner
        .to_str()
        .ok()
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(EVENT_STREAM));
    if streamed {
        let body = SealedEvents {
            inner: body,
            sealer,
            pending: VecDeque::new(),
            done: false,
        };
        return Response::from_parts(parts, body.boxed());
    }
    // Buffered bodies (JSON answers and errors) are complete already.
    let mut plaintext = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => too_large_or_failed("reading the response body failed"),
    };
    if plaintext.len() > MAX_CHUNK_PLAINTEXT {
        parts.status = http::StatusCode::INTERNAL_SERVER_ERROR;
        parts.headers.insert(
            HeaderName::from_static(INNER_CONTENT_TYPE_HEADER),
            HeaderValue::from_static("application/json"),
        );
        plaintext = too_large_or_failed("the response is larger than one sealed chunk (1 MiB)");
    }
    match sealer.seal_final(&plaintext) {
        Ok(chunk) => {
            parts
                .headers
                .insert(CONTENT_TYPE, HeaderValue::from_static(SEALED_CONTENT_TYPE));
            Response::from_parts(parts, full(chunk))
        }
        Err(e) => {
            // Not reachable (a fresh sealer, a plaintext within the chunk limit); never send
            // the plaintext.
            tracing::error!(error = %e.message(), "sealing a response failed");
            let mut response = Response::new(full(Bytes::new()));
            *response.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
            response
        }
    }
}

fn too_large_or_failed(message: &str) -> Bytes {
    Bytes::from(
        ApiError::Internal {
            message: message.to_owned(),
        }
        .body()
        .to_string(),
    )
}

/// One sealed chunk as an SSE event.
fn event(chunk: &[u8]) -> Bytes {
    Bytes::from(format!("data: {}\n\n", STANDARD.encode(chunk)))
}

/// An SSE body whose frames are sealed: each inner frame (split at 1 MiB) becomes one data
/// chunk sent as `data: <base64>\n\n`; the end of the inner body becomes a final empty chunk.
struct SealedEvents {
    inner: ResponseBody,
    sealer: ResponseSealer,
    pending: VecDeque<Bytes>,
    done: bool,
}

impl SealedEvents {
    fn fail(&mut self, e: &BodyError) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.done = true;
        self.pending.clear();
        Poll::Ready(Some(Err(BoxError::from(e.message()))))
    }
}

impl Body for SealedEvents {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        loop {
            if let Some(bytes) = this.pending.pop_front() {
                return Poll::Ready(Some(Ok(Frame::data(bytes))));
            }
            if this.done {
                return Poll::Ready(None);
            }
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(frame))) => {
                    // Trailers: our SSE bodies have none; nothing to seal.
                    let Ok(data) = frame.into_data() else {
                        continue;
                    };
                    for piece in data.chunks(MAX_CHUNK_PLAINTEXT) {
                        match this.sealer.seal_chunk(piece) {
                            Ok(chunk) => this.pending.push_back(event(&chunk)),
                            Err(e) => return this.fail(&e),
                        }
                    }
                }
                Poll::Ready(Some(Err(e))) => {
                    // The client then sees no final chunk: `ResponseTruncated`.
                    this.done = true;
                    this.pending.clear();
                    return Poll::Ready(Some(Err(e)));
                }
                Poll::Ready(None) => {
                    this.done = true;
                    match this.sealer.seal_final(&[]) {
                        Ok(chunk) => this.pending.push_back(event(&chunk)),
                        Err(e) => return this.fail(&e),
                    }
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
mod tests {
    use super::*;
    use cocoon_attestation::bodies::{ReplayCache, RequestOpener, RequestSealer, ResponseOpener};

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        map
    }

    #[test]
    fn the_sealed_content_type_is_recognised_with_parameters_and_any_case() {
        assert!(is_sealed(&headers(&[(
            "content-type",
            "application/cocoon-hpke"
        )])));
        assert!(is_sealed(&headers(&[(
            "content-type",
            "Application/Cocoon-HPKE; v=1"
        )])));
        assert!(!is_sealed(&headers(&[(
            "content-type",
            "application/json"
        )])));
        assert!(!is_sealed(&HeaderMap::new()));
    }

    #[test]
    fn request_ids_must_be_exactly_32_lowercase_hex_digits() {
        let id = "00112233445566778899aabbccddeeff";
        assert_eq!(
            request_id(&headers(&[(REQUEST_ID_HEADER, id)])).unwrap(),
            <[u8; 16]>::try_from(hex::decode(id).unwrap()).unwrap()
        );
        let upper = id.to_uppercase();
        let short = &id[..30];
        let long = format!("{id}00");
        for bad in [
            upper.as_str(),
            short,
            long.as_str(),
            "",
            "zz112233445566778899aabbccddeeff",
        ] {
            let err = request_id(&headers(&[(REQUEST_ID_HEADER, bad)])).unwrap_err();
            assert_eq!(err.code(), "sealed_headers_invalid", "{bad:?}");
        }
        let missing = request_id(&HeaderMap::new()).unwrap_err();
        assert_eq!(missing.code(), "sealed_headers_invalid");
        let twice = request_id(&headers(&[
            (REQUEST_ID_HEADER, id),
            (REQUEST_ID_HEADER, id),
        ]))
        .unwrap_err();
        assert_eq!(twice.code(), "sealed_headers_invalid");
    }

    #[test]
    fn timestamps_are_decimal_i64_seconds() {
        assert_eq!(
            timestamp(&headers(&[(TIMESTAMP_HEADER, "1764130000")])).unwrap(),
            1_764_130_000
        );
        assert_eq!(
            timestamp(&headers(&[(TIMESTAMP_HEADER, "-5")])).unwrap(),
            -5
        );
        for bad in ["", "+5", "1.5", "0x10", "99999999999999999999", " 5", "-"] {
            let err = timestamp(&headers(&[(TIMESTAMP_HEADER, bad)])).unwrap_err();
            assert_eq!(err.code(), "sealed_headers_invalid", "{bad:?}");
        }
    }

    #[test]
    fn open_errors_map_to_the_documented_statuses_and_codes() {
        use http::StatusCode;
        let cases = [
            (
                BodyError::SealedBodyMalformed { reason: "x" },
                StatusCode::BAD_REQUEST,
                "sealed_body_malformed",
            ),
            (
                BodyError::SealedBodyUnsupported { reason: "x".into() },
                StatusCode::BAD_REQUEST,
                "sealed_body_unsupported",
            ),
            (
                BodyError::SealedBodyDecryptFailed,
                StatusCode::BAD_REQUEST,
                "sealed_body_decrypt_failed",
            ),
            (
                BodyError::RequestTimestampOutOfWindow {
                    timestamp: 0,
                    now: 1000,
                    window_secs: 300,
                },
                StatusCode::BAD_REQUEST,
                "request_timestamp_out_of_window",
            ),
            (
                BodyError::RequestReplayed,
                StatusCode::CONFLICT,
                "request_replayed",
            ),
            (
                BodyError::RequestReplayCacheFull { capacity: 1 },
                StatusCode::SERVICE_UNAVAILABLE,
                "replay_cache_full",
            ),
            (
                BodyError::SealedBodyTooLarge { size: 9, limit: 8 },
                StatusCode::PAYLOAD_TOO_LARGE,
                "request_too_large",
            ),
        ];
        for (error, status, code) in cases {
            let api = open_error(&error, 2);
            assert_eq!((api.status(), api.code()), (status, code), "{error:?}");
        }
        let full = open_error(&BodyError::RequestReplayCacheFull { capacity: 1 }, 2).response();
        assert_eq!(full.headers()["retry-after"], "2");
    }

    #[test]
    fn the_envelope_limit_adds_the_overhead_and_stops_at_eight_mebibytes() {
        assert_eq!(envelope_limit(1000), 1000 + HEADER_LEN + TAG_LEN);
        assert_eq!(envelope_limit(usize::MAX), MAX_SEALED_REQUEST);
    }

    fn pair() -> (ResponseSealer, ResponseOpener) {
        let opener = RequestOpener::generate().unwrap();
        let aad = RequestAad {
            method: "POST".into(),
            path: "/v1/completions".into(),
            request_id: [7; 16],
            timestamp: 100,
        };
        let (sealed, response_opener) =
            RequestSealer::seal_request(opener.public_key(), b"{}", &aad).unwrap();
        let (_, sealer) = opener
            .open_request(sealed.as_bytes(), &aad, 100, &mut ReplayCache::new(4, 300))
            .unwrap();
        (sealer, response_opener)
    }

    #[tokio::test]
    async fn a_buffered_response_becomes_one_final_chunk_with_status_and_headers_kept() {
        let (sealer, mut opener) = pair();
        let inner = ApiError::QueueFull {
            retry_after_secs: 3,
        }
        .response();
        let sealed = seal_response(inner, sealer).await;
        assert_eq!(sealed.status(), http::StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(sealed.headers()["retry-after"], "3");
        assert_eq!(sealed.headers()["content-type"], SEALED_CONTENT_TYPE);
        assert_eq!(
            sealed.headers()[INNER_CONTENT_TYPE_HEADER],
            "application/json"
        );
        let body = sealed.into_body().collect().await.unwrap().to_bytes();
        let plain = opener.open_chunk(&body).unwrap();
        opener.finish().unwrap();
        let v: serde_json::Value = serde_json::from_slice(&plain).unwrap();
        assert_eq!(v["error"]["code"], "queue_full");
    }

    #[tokio::test]
    async fn an_event_stream_is_sealed_frame_by_frame_and_ends_with_an_empty_final_chunk() {
        let (sealer, mut opener) = pair();
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tx.send(Bytes::from_static(b"data: {\"a\":1}\n\n"))
            .await
            .unwrap();
        tx.send(Bytes::from_static(b"data: [DONE]\n\n"))
            .await
            .unwrap();
        drop(tx);
        let inner = super::super::sse::ChannelBody { rx }.boxed();
        let mut response = Response::new(inner);
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(EVENT_STREAM));
        let sealed = seal_response(response, sealer).await;
        assert_eq!(sealed.headers()["content-type"], EVENT_STREAM);
        assert_eq!(sealed.headers()[INNER_CONTENT_TYPE_HEADER], EVENT_STREAM);
        let body = sealed.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8(body.to_vec()).unwrap();
        let mut plain = Vec::new();
        let events: Vec<&str> = text.split_terminator("\n\n").collect();
        assert_eq!(events.len(), 3);
        for e in events {
            let chunk = STANDARD.decode(e.strip_prefix("data: ").unwrap()).unwrap();
            plain.extend(opener.open_chunk(&chunk).unwrap());
        }
        opener.finish().unwrap();
        assert_eq!(plain, b"data: {\"a\":1}\n\ndata: [DONE]\n\n");
    }
}
