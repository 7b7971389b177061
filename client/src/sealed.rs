//! Requests whose bodies are sealed to the enclave's attested HPKE key, and the sealed answers
//! opened again (`docs/hpke.md`, "HTTP carriage (v1)").
//!
//! [`AttestedConnection::send`] is the one way the CLI and the gateway talk to an enclave: it
//! seals a `POST` body when the verified claims advertise a key (always on a relayed
//! connection), sends it, and hands the caller the response head and then the *opened* body
//! as it arrives — for a streamed answer, chunk by chunk, each checked in order, and the end
//! checked for truncation. A success that should have been sealed and is not is refused
//! ([`ClientError::SealedResponseMissing`]); refusals from before the enclave opened the
//! envelope (400/403/409/… with an OpenAI-style JSON error) are passed on as they are.

use base64::Engine as _;
use bytes::Bytes;
use cocoon_attestation::bodies::{RequestAad, RequestSealer, ResponseOpener, MAX_SEALED_CHUNK};
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;

use crate::{
    random_bytes, unix_now, within, AttestedConnection, ClientError, Result, SseDataLines,
};

pub use cocoon_attestation::bodies::http::{
    INNER_CONTENT_TYPE_HEADER, REQUEST_ID_HEADER, SEALED_CONTENT_TYPE, TIMESTAMP_HEADER,
};

/// Longest `data:` line of a sealed stream: the base64 of the largest sealed chunk.
const MAX_SEALED_SSE_LINE: usize = MAX_SEALED_CHUNK / 3 * 4 + 64;

/// When [`AttestedConnection::send`] seals a request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sealing {
    /// `POST` bodies are sealed when the enclave's verified claims advertise an HPKE key; on a
    /// relayed connection they always are (connecting required a key).
    #[default]
    Auto,
    /// Every `POST` body is sealed; no key is [`ClientError::HpkeKeyMissing`].
    Required,
    /// Nothing is sealed (an enclave in `required` mode refuses with 403).
    Off,
}

/// A request to send: the body is the plaintext (sealed on the way when it applies).
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub method: Method,
    /// Path and query, as sent on the request line (and bound into the AAD).
    pub path: String,
    /// Headers to send; `Host` is set when absent, and sealing replaces `Content-Type`.
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Outgoing {
    /// A `POST` of a JSON body.
    pub fn post_json(path: &str, body: impl Into<Bytes>) -> Self {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        Self {
            method: Method::POST,
            path: path.to_owned(),
            headers,
            body: body.into(),
        }
    }

    /// A `GET` (never sealed: no body).
    pub fn get(path: &str) -> Self {
        Self {
            method: Method::GET,
            path: path.to_owned(),
            headers: HeaderMap::new(),
            body: Bytes::new(),
        }
    }
}

/// The response head as the enclave's handler produced it: for a sealed answer, the inner
/// `Content-Type`, without the sealing headers or a `Content-Length`.
#[derive(Debug, Clone)]
pub struct Head {
    pub status: StatusCode,
    pub headers: HeaderMap,
    /// The body was sealed (and what the caller receives was opened and checked).
    pub sealed: bool,
}

impl Head {
    /// The `Content-Type` value, if any.
    pub fn content_type(&self) -> Option<&str> {
        self.headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok())
    }
}

impl AttestedConnection {
    /// Whether [`send`](Self::send) seals a request with `method` under `sealing`.
    pub fn seals(&self, method: &Method, sealing: Sealing) -> Result<bool> {
        if method != Method::POST {
            return Ok(false);
        }
        let has_key = self.hpke_key().is_some();
        match sealing {
            Sealing::Off if self.is_relayed() => Err(ClientError::HpkeKeyMissing),
            Sealing::Off => Ok(false),
            Sealing::Auto if self.is_relayed() && !has_key => Err(ClientError::HpkeKeyMissing),
            Sealing::Auto => Ok(has_key),
            Sealing::Required if !has_key => Err(ClientError::HpkeKeyMissing),
            Sealing::Required => Ok(true),
        }
    }

    /// Sends `outgoing` (sealed as [`seals`](Self::seals) says), calls `on_head` with the
    /// response head, then `on_chunk` with each piece of the (opened) body as it arrives.
    /// The exchange runs under the request timeout and the raw body under the response cap.
    /// An error from a callback stops reading; the connection should then be dropped.
    ///
    /// A sealed answer is delivered only after each chunk opened in order: a non-streamed
    /// one is opened whole before `on_head` is called; a stream ends with
    /// [`ClientError::Sealed`]`(ResponseTruncated)` when its final chunk is missing.
    pub async fn send<H, C>(
        &mut self,
        outgoing: Outgoing,
        sealing: Sealing,
        on_head: H,
        on_chunk: C,
    ) -> Result<Head>
    where
        H: FnOnce(&Head) -> Result<()>,
        C: FnMut(Bytes) -> Result<()>,
    {
        let seal = self.seals(&outgoing.method, sealing)?;
        let Outgoing {
            method,
            path,
            mut headers,
            body,
        } = outgoing;
        let (body, opener) = if seal {
            let key = self.hpke_key().ok_or(ClientError::HpkeKeyMissing)?.clone();
            let request_id: [u8; 16] = random_bytes()?;
            let timestamp = unix_now();
            let aad = RequestAad {
                method: method.as_str().to_owned(),
                path: path.clone(),
                request_id,
                timestamp,
            };
            let (sealed, opener) =
                RequestSealer::seal_request(&key, &body, &aad).map_err(ClientError::Sealed)?;
            headers.insert(CONTENT_TYPE, HeaderValue::from_static(SEALED_CONTENT_TYPE));
            headers.insert(REQUEST_ID_HEADER, header_value(&hex::encode(request_id))?);
            headers.insert(TIMESTAMP_HEADER, header_value(&timestamp.to_string())?);
            (Bytes::from(sealed.0), Some(opener))
        } else {
            (body, None)
        };
        headers.remove(CONTENT_LENGTH);
        let mut request = Request::builder()
            .method(method)
            .uri(path.as_str())
            .body(Full::new(body))
            .map_err(|e| ClientError::Address {
                addr: path.clone(),
                reason: e.to_string(),
            })?;
        *request.headers_mut() = headers;
        self.set_host(&mut request)?;

        let limit = self.max_response_bytes;
        let timeout = self.timeouts.request;
        let io = TokioIo::new(&mut self.stream);
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
                let reader = BodyReader {
                    body,
                    received: 0,
                    limit,
                };
                match opener {
                    None => {
                        let head = Head {
                            status: parts.status,
                            headers: parts.headers,
                            sealed: false,
                        };
                        deliver_plain(head, reader, on_head, on_chunk).await
                    }
                    Some(opener) => deliver_sealed(parts, reader, opener, on_head, on_chunk).await,
                }
            };
            // The connection task ends once the exchange drops its sender; the stream stays open.
            let (result, parts) = tokio::join!(exchange, conn.without_shutdown());
            let head = result?;
            parts.map_err(ClientError::from_hyper)?;
            Ok(head)
        })
        .await
    }

    /// [`send`](Self::send) with the whole (opened) body collected, up to the response cap.
    pub async fn send_buffered(
        &mut self,
        outgoing: Outgoing,
        sealing: Sealing,
    ) -> Result<(Head, Bytes)> {
        let mut body = Vec::new();
        let head = self
            .send(
                outgoing,
                sealing,
                |_| Ok(()),
                |chunk| {
                    body.extend_from_slice(&chunk);
                    Ok(())
                },
            )
            .await?;
        Ok((head, Bytes::from(body)))
    }
}

fn header_value(text: &str) -> Result<HeaderValue> {
    HeaderValue::from_str(text).map_err(|e| ClientError::Address {
        addr: text.to_owned(),
        reason: e.to_string(),
    })
}

/// The response body, frame by frame, under the size cap.
struct BodyReader {
    body: Incoming,
    received: usize,
    limit: usize,
}

impl BodyReader {
    async fn next(&mut self) -> Result<Option<Bytes>> {
        while let Some(frame) = self.body.frame().await {
            let frame = frame.map_err(ClientError::from_hyper)?;
            if let Ok(data) = frame.into_data() {
                self.received = self.received.saturating_add(data.len());
                if self.received > self.limit {
                    return Err(ClientError::ResponseTooLarge { limit: self.limit });
                }
                return Ok(Some(data));
            }
        }
        Ok(None)
    }

    async fn collect(&mut self, limit: usize) -> Result<Vec<u8>> {
        let mut all = Vec::new();
        while let Some(data) = self.next().await? {
            if all.len().saturating_add(data.len()) > limit {
                return Err(ClientError::ResponseTooLarge { limit });
            }
            all.extend_from_slice(&data);
        }
        Ok(all)
    }
}

async fn deliver_plain<H, C>(
    head: Head,
    mut reader: BodyReader,
    on_head: H,
    mut on_chunk: C,
) -> Result<Head>
where
    H: FnOnce(&Head) -> Result<()>,
    C: FnMut(Bytes) -> Result<()>,
{
    on_head(&head)?;
    while let Some(data) = reader.next().await? {
        on_chunk(data)?;
    }
    Ok(head)
}

async fn deliver_sealed<H, C>(
    parts: http::response::Parts,
    mut reader: BodyReader,
    mut opener: ResponseOpener,
    on_head: H,
    mut on_chunk: C,
) -> Result<Head>
where
    H: FnOnce(&Head) -> Result<()>,
    C: FnMut(Bytes) -> Result<()>,
{
    let outer_type = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|t| {
            t.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    let inner_type = parts.headers.get(INNER_CONTENT_TYPE_HEADER).cloned();
    let status = parts.status;
    let inner_head = |mut headers: HeaderMap| {
        headers.remove(INNER_CONTENT_TYPE_HEADER);
        headers.remove(CONTENT_LENGTH);
        match &inner_type {
            Some(t) => {
                headers.insert(CONTENT_TYPE, t.clone());
            }
            None => {
                headers.remove(CONTENT_TYPE);
            }
        }
        Head {
            status,
            headers,
            sealed: true,
        }
    };
    if outer_type == SEALED_CONTENT_TYPE {
        let raw = reader.collect(MAX_SEALED_CHUNK).await?;
        let plain = opener.open_chunk(&raw).map_err(ClientError::Sealed)?;
        opener.finish().map_err(ClientError::Sealed)?;
        let head = inner_head(parts.headers);
        on_head(&head)?;
        if !plain.is_empty() {
            on_chunk(Bytes::from(plain))?;
        }
        return Ok(head);
    }
    if outer_type == "text/event-stream" && inner_type.is_some() {
        let head = inner_head(parts.headers);
        on_head(&head)?;
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut lines = SseDataLines::new(MAX_SEALED_SSE_LINE);
        while let Some(data) = reader.next().await? {
            for line in lines.push(&data)? {
                let raw = b64.decode(line.as_bytes()).map_err(|_| {
                    ClientError::Sealed(cocoon_attestation::Error::SealedBodyMalformed {
                        reason: "a sealed stream event is not base64",
                    })
                })?;
                let plain = opener.open_chunk(&raw).map_err(ClientError::Sealed)?;
                if !plain.is_empty() {
                    on_chunk(Bytes::from(plain))?;
                }
            }
        }
        opener.finish().map_err(ClientError::Sealed)?;
        return Ok(head);
    }
    if status.is_client_error() || status.is_server_error() {
        // A refusal from before the envelope was opened (or from a relay): plain, and it
        // carries nothing of ours.
        let head = Head {
            status,
            headers: parts.headers,
            sealed: false,
        };
        return deliver_plain(head, reader, on_head, on_chunk).await;
    }
    Err(ClientError::SealedResponseMissing {
        status: status.as_u16(),
    })
}
