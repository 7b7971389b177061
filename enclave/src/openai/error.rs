//! OpenAI-style error responses: `{"error": {"message", "type", "param", "code"}}`.

use http::header::RETRY_AFTER;
use http::{HeaderValue, Response, StatusCode};
use serde_json::json;

use crate::api::json_response;
use crate::server::ResponseBody;

/// Every way the API refuses a request (one status and code each; see `docs/api.md`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ApiError {
    /// 400 `invalid_request_error`: a field is malformed or has an unsupported value.
    InvalidRequest {
        message: String,
        param: Option<&'static str>,
        code: &'static str,
    },
    /// 400 `context_length_exceeded`: the prompt (plus `max_tokens`) does not fit.
    ContextLengthExceeded {
        message: String,
        param: &'static str,
    },
    /// 404 `model_not_found`.
    ModelNotFound { model: String },
    /// 408 `body_timeout`: the request body did not arrive in time.
    BodyTimeout,
    /// 413 `request_too_large`.
    BodyTooLarge { limit: usize },
    /// 429 `queue_full`, with `Retry-After`.
    QueueFull { retry_after_secs: u64 },
    /// 503 `model_loading` / `model_failed` / `shutting_down`.
    Unavailable { code: &'static str, message: String },
    /// 504 `deadline_exceeded`: the per-request deadline passed (non-streaming).
    DeadlineExceeded,
    /// 500 `internal_error`.
    Internal { message: String },
    /// 400, before a sealed body opened (docs/hpke.md): `sealed_headers_invalid`,
    /// `sealed_body_malformed`, `sealed_body_unsupported`, `sealed_body_decrypt_failed` or
    /// `request_timestamp_out_of_window`.
    SealedRequestInvalid { code: &'static str, message: String },
    /// 409 `request_replayed`: the sealed request's id was seen within the replay window.
    RequestReplayed,
    /// 503 `replay_cache_full`, with `Retry-After`: too many request ids within the window.
    ReplayCacheFull { retry_after_secs: u64 },
    /// 403 `encryption_required`: a plaintext body while the enclave requires sealed bodies.
    EncryptionRequired,
    /// 415 `encryption_unavailable`: a sealed body while HPKE is off.
    EncryptionUnavailable,
}

impl ApiError {
    pub fn invalid(param: &'static str, message: impl Into<String>) -> Self {
        Self::InvalidRequest {
            message: message.into(),
            param: Some(param),
            code: "invalid_value",
        }
    }

    pub fn unsupported(param: &'static str, message: impl Into<String>) -> Self {
        Self::InvalidRequest {
            message: message.into(),
            param: Some(param),
            code: "unsupported_value",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::InvalidRequest { .. } | Self::ContextLengthExceeded { .. } => {
                StatusCode::BAD_REQUEST
            }
            Self::ModelNotFound { .. } => StatusCode::NOT_FOUND,
            Self::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::QueueFull { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
            Self::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            Self::SealedRequestInvalid { .. } => StatusCode::BAD_REQUEST,
            Self::RequestReplayed => StatusCode::CONFLICT,
            Self::ReplayCacheFull { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::EncryptionRequired => StatusCode::FORBIDDEN,
            Self::EncryptionUnavailable => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        }
    }

    /// The `code` of the error object.
    pub fn code(&self) -> &'static str {
        self.parts().3
    }

    /// The `error` object.
    pub fn body(&self) -> serde_json::Value {
        let (message, kind, param, code) = self.parts();
        json!({"error": {"message": message, "type": kind, "param": param, "code": code}})
    }

    /// Message, type, param and code.
    fn parts(&self) -> (String, &'static str, Option<&'static str>, &'static str) {
        match self {
            Self::InvalidRequest {
                message,
                param,
                code,
            } => (message.clone(), "invalid_request_error", *param, *code),
            Self::ContextLengthExceeded { message, param } => (
                message.clone(),
                "invalid_request_error",
                Some(*param),
                "context_length_exceeded",
            ),
            Self::ModelNotFound { model } => (
                format!("The model `{model}` does not exist; GET /v1/models lists the served one"),
                "invalid_request_error",
                Some("model"),
                "model_not_found",
            ),
            Self::BodyTimeout => (
                "the request body did not arrive in time".to_owned(),
                "invalid_request_error",
                None,
                "body_timeout",
            ),
            Self::BodyTooLarge { limit } => (
                format!("the request body is larger than {limit} bytes"),
                "invalid_request_error",
                None,
                "request_too_large",
            ),
            Self::QueueFull { retry_after_secs } => (
                format!(
                    "the server is at capacity (every sequence slot busy and the queue full); retry after {retry_after_secs} s"
                ),
                "rate_limit_error",
                None,
                "queue_full",
            ),
            Self::Unavailable { code, message } => {
                (message.clone(), "service_unavailable_error", None, *code)
            }
            Self::DeadlineExceeded => (
                "the request's deadline passed before generation finished".to_owned(),
                "timeout_error",
                None,
                "deadline_exceeded",
            ),
            Self::Internal { message } => (message.clone(), "server_error", None, "internal_error"),
            Self::SealedRequestInvalid { code, message } => {
                (message.clone(), "invalid_request_error", None, *code)
            }
            Self::RequestReplayed => (
                "the request id was already used within the replay window".to_owned(),
                "invalid_request_error",
                None,
                "request_replayed",
            ),
            Self::ReplayCacheFull { retry_after_secs } => (
                format!(
                    "too many sealed requests within the replay window; retry after {retry_after_secs} s"
                ),
                "service_unavailable_error",
                None,
                "replay_cache_full",
            ),
            Self::EncryptionRequired => (
                "this server requires HPKE-sealed request bodies (Content-Type: application/cocoon-hpke, docs/hpke.md)".to_owned(),
                "invalid_request_error",
                None,
                "encryption_required",
            ),
            Self::EncryptionUnavailable => (
                "this server does not accept HPKE-sealed request bodies (HPKE is off); send plaintext JSON".to_owned(),
                "invalid_request_error",
                None,
                "encryption_unavailable",
            ),
        }
    }

    pub fn response(&self) -> Response<ResponseBody> {
        let mut response = json_response(self.status(), self.body().to_string().into_bytes());
        if let Self::QueueFull { retry_after_secs } | Self::ReplayCacheFull { retry_after_secs } =
            self
        {
            if let Ok(value) = HeaderValue::from_str(&retry_after_secs.to_string()) {
                response.headers_mut().insert(RETRY_AFTER, value);
            }
        }
        response
    }
}
