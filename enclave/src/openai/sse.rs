//! Server-sent events: `data: {chunk}\n\n` per event, `data: [DONE]\n\n` last.
//!
//! A task moves the engine's events into a bounded channel the response body reads. When the
//! client goes away hyper drops the body, the channel closes, the task sees it (at once, not
//! only at its next write) and drops the [`GenerationStream`], which cancels the sequence.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, Response};
use http_body_util::BodyExt;
use hyper::body::{Body, Frame};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::{finish_reason, new_id, unix_secs, usage, Admitted, Endpoint, OpenAi, Timing};
use crate::inference::GenerationEvent;
use crate::server::{BoxError, ResponseBody};

/// Events buffered between the generation and a slow client.
const CHANNEL_CAPACITY: usize = 64;

/// A body fed by a channel.
pub(super) struct ChannelBody {
    pub(super) rx: mpsc::Receiver<Bytes>,
}

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.rx.poll_recv(cx).map(|b| b.map(|b| Ok(Frame::data(b))))
    }
}

fn event(value: &Value) -> Bytes {
    Bytes::from(format!("data: {value}\n\n"))
}

const DONE: &[u8] = b"data: [DONE]\n\n";

/// The streaming response of an admitted generation.
pub(super) fn respond(state: Arc<OpenAi>, admitted: Admitted) -> Response<ResponseBody> {
    let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
    tokio::spawn(pump(state, admitted, tx));
    let mut response = Response::new(ChannelBody { rx }.boxed());
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

struct Chunks {
    id: String,
    created: u64,
    model: String,
    endpoint: Endpoint,
    include_usage: bool,
}

impl Chunks {
    fn chunk(&self, choice: Value) -> Value {
        let object = match self.endpoint {
            Endpoint::Chat => "chat.completion.chunk",
            Endpoint::Completions => "text_completion",
        };
        let mut value = json!({
            "id": self.id,
            "object": object,
            "created": self.created,
            "model": self.model,
            "choices": [choice],
        });
        if self.include_usage {
            if let Some(map) = value.as_object_mut() {
                map.insert("usage".into(), Value::Null);
            }
        }
        value
    }

    fn text(&self, text: &str) -> Value {
        self.chunk(match self.endpoint {
            Endpoint::Chat => json!({"index": 0, "delta": {"content": text}, "logprobs": null, "finish_reason": null}),
            Endpoint::Completions => json!({"index": 0, "text": text, "logprobs": null, "finish_reason": null}),
        })
    }

    fn first(&self) -> Option<Value> {
        match self.endpoint {
            Endpoint::Chat => Some(self.chunk(json!({
                "index": 0,
                "delta": {"role": "assistant", "content": ""},
                "logprobs": null,
                "finish_reason": null,
            }))),
            Endpoint::Completions => None,
        }
    }

    fn finish(&self, reason: &str) -> Value {
        self.chunk(match self.endpoint {
            Endpoint::Chat => {
                json!({"index": 0, "delta": {}, "logprobs": null, "finish_reason": reason})
            }
            Endpoint::Completions => {
                json!({"index": 0, "text": "", "logprobs": null, "finish_reason": reason})
            }
        })
    }

    fn usage(&self, prompt: usize, completion: usize) -> Value {
        let object = match self.endpoint {
            Endpoint::Chat => "chat.completion.chunk",
            Endpoint::Completions => "text_completion",
        };
        json!({
            "id": self.id,
            "object": object,
            "created": self.created,
            "model": self.model,
            "choices": [],
            "usage": usage(prompt, completion),
        })
    }
}

async fn pump(state: Arc<OpenAi>, admitted: Admitted, tx: mpsc::Sender<Bytes>) {
    let Admitted {
        engine,
        mut stream,
        model,
        include_usage,
        endpoint,
        arrived,
    } = admitted;
    let chunks = Chunks {
        id: new_id(endpoint),
        created: unix_secs(),
        model,
        endpoint,
        include_usage,
    };
    let mut timing = Timing {
        arrived,
        last: None,
    };
    if let Some(first) = chunks.first() {
        if tx.send(event(&first)).await.is_err() {
            return;
        }
    }
    loop {
        let next = tokio::select! {
            // The client went away: dropping `stream` cancels the sequence.
            () = tx.closed() => {
                tracing::debug!(request = stream.id(), "client disconnected; cancelling");
                return;
            }
            next = stream.next() => next,
        };
        let out = match next {
            Some(GenerationEvent::Token { text, .. }) => {
                timing.token(&state.metrics);
                if text.is_empty() {
                    continue;
                }
                vec![event(&chunks.text(&text))]
            }
            Some(GenerationEvent::Finished {
                reason,
                prompt_tokens,
                completion_tokens,
            }) => {
                timing.finish(&state.metrics, prompt_tokens, completion_tokens);
                let mut out = match finish_reason(reason) {
                    Ok(finish) => vec![event(&chunks.finish(finish))],
                    Err(e) => vec![event(&e.body())],
                };
                if include_usage {
                    out.push(event(&chunks.usage(prompt_tokens, completion_tokens)));
                }
                out.push(Bytes::from_static(DONE));
                for bytes in out {
                    if tx.send(bytes).await.is_err() {
                        break;
                    }
                }
                drop(engine);
                return;
            }
            None => {
                let error = super::ApiError::Internal {
                    message: "the engine stopped before the generation finished".into(),
                };
                let _ = tx.send(event(&error.body())).await;
                let _ = tx.send(Bytes::from_static(DONE)).await;
                return;
            }
        };
        for bytes in out {
            if tx.send(bytes).await.is_err() {
                return;
            }
        }
    }
}
