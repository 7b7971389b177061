//! The OpenAI-compatible API over the RA-TLS server (`docs/api.md`).
//!
//! [`mount`] adds to a [`Router`]: `POST /v1/chat/completions`, `POST /v1/completions`
//! (JSON or SSE streaming), `GET /v1/models`, `GET /health`, `GET /metrics`. The routes are
//! served from the moment the listener is up; the model loads in the background
//! ([`OpenAi::load`]) and until it is ready `/health` and the generation routes answer 503.
//!
//! Limits: the body size ([`ApiConfig::max_body_bytes`], 413), the prompt against the context
//! (400 with the numbers), the engine's sequence slots and bounded queue (429 with
//! `Retry-After`), a per-request deadline, and a client that goes away: its response body is
//! dropped by hyper, which drops the [`GenerationStream`] and so cancels the sequence.
//!
//! HPKE-sealed bodies (docs/hpke.md): a `POST` with `Content-Type: application/cocoon-hpke` is
//! opened with the per-boot [`RequestOpener`] and answered sealed (`sealed.rs`);
//! [`ApiConfig::hpke_mode`] makes them optional, required or refused.

mod error;
pub mod metrics;
mod request;
mod sealed;
mod sse;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde_json::{json, Value};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use cocoon_attestation::bodies::{ReplayCache, RequestOpener};
use cocoon_attestation::claims::HpkePublicKey;

pub use error::ApiError;
pub use metrics::Metrics;
pub use request::{parse, Common, Endpoint, ParsedRequest, Prompt};
pub use sealed::{
    INNER_CONTENT_TYPE_HEADER, REQUEST_ID_HEADER, SEALED_CONTENT_TYPE, TIMESTAMP_HEADER,
};

use crate::api::json_response;
use crate::config::{HpkeMode, DEFAULT_REPLAY_CAPACITY, DEFAULT_REPLAY_WINDOW_SECS};
use crate::inference::{
    Engine, EngineConfig, FinishReason, GenerationEvent, GenerationRequest, GenerationStream,
    InferenceError, SamplingParams,
};
use crate::server::{full, ConnectionInfo, ResponseBody, Router};

pub const CHAT_PATH: &str = "/v1/chat/completions";
pub const COMPLETIONS_PATH: &str = "/v1/completions";
pub const MODELS_PATH: &str = "/v1/models";
pub const HEALTH_PATH: &str = "/health";
pub const METRICS_PATH: &str = "/metrics";

/// The API's limits and names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiConfig {
    /// The id clients name; `None`: the model's own name (`model.json`).
    pub model_id: Option<String>,
    /// Other accepted values of the `model` field.
    pub aliases: Vec<String>,
    /// Largest request body (413 beyond).
    pub max_body_bytes: usize,
    /// The body must arrive within this (408 otherwise).
    pub body_timeout: Duration,
    /// Each generation's deadline from the request's arrival.
    pub request_timeout: Duration,
    /// `max_tokens` when the request gives none (capped by the room left in the context).
    pub default_max_tokens: usize,
    /// Largest `max_tokens` accepted (400 beyond); `None`: the context is the limit.
    pub max_tokens_limit: Option<usize>,
    /// `Retry-After` of a 429, seconds.
    pub retry_after_secs: u64,
    /// Request bodies read and parsed at once (bounds their memory: this many times
    /// `max_body_bytes`); more wait, within `body_timeout`.
    pub max_concurrent_bodies: usize,
    /// HPKE-sealed request bodies: off, optional (default) or required (docs/hpke.md).
    pub hpke_mode: HpkeMode,
    /// A sealed request's timestamp must lie within now ± this many seconds.
    pub replay_window_secs: u64,
    /// Sealed request ids remembered within the window (503 `replay_cache_full` beyond).
    pub replay_capacity: usize,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            model_id: None,
            aliases: Vec::new(),
            max_body_bytes: 1024 * 1024,
            body_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(600),
            default_max_tokens: 256,
            max_tokens_limit: None,
            retry_after_secs: 1,
            max_concurrent_bodies: 64,
            hpke_mode: HpkeMode::default(),
            replay_window_secs: DEFAULT_REPLAY_WINDOW_SECS,
            replay_capacity: DEFAULT_REPLAY_CAPACITY,
        }
    }
}

/// The API's state: the engine once loaded, the metrics, draining.
#[derive(Debug)]
pub struct OpenAi {
    config: ApiConfig,
    engine: OnceLock<Arc<Engine>>,
    model_id: OnceLock<String>,
    load_error: Mutex<Option<String>>,
    draining: AtomicBool,
    loaded_at: AtomicU64,
    bodies: Arc<Semaphore>,
    /// The per-boot HPKE key; `None` when [`ApiConfig::hpke_mode`] is off.
    opener: Option<RequestOpener>,
    replay: Mutex<ReplayCache>,
    pub metrics: Metrics,
}

impl OpenAi {
    /// The API's state with a fresh per-boot HPKE key unless `config.hpke_mode` is off (a key
    /// that cannot be generated leaves HPKE unavailable: sealed bodies get 415, and in
    /// required mode plaintext ones 403; [`OpenAi::with_opener`] reports the failure instead).
    pub fn new(config: ApiConfig) -> Arc<Self> {
        let opener = match config.hpke_mode {
            HpkeMode::Off => None,
            HpkeMode::Optional | HpkeMode::Required => match RequestOpener::generate() {
                Ok(opener) => Some(opener),
                Err(e) => {
                    tracing::error!(error = %e.message(), "generating the HPKE key failed");
                    None
                }
            },
        };
        Self::with_opener(config, opener)
    }

    /// The API's state with the given HPKE key (ignored when `config.hpke_mode` is off).
    pub fn with_opener(config: ApiConfig, opener: Option<RequestOpener>) -> Arc<Self> {
        let opener = opener.filter(|_| config.hpke_mode != HpkeMode::Off);
        let window = i64::try_from(config.replay_window_secs).unwrap_or(i64::MAX);
        Arc::new(Self {
            bodies: Arc::new(Semaphore::new(config.max_concurrent_bodies.max(1))),
            replay: Mutex::new(ReplayCache::new(config.replay_capacity, window)),
            opener,
            config,
            engine: OnceLock::new(),
            model_id: OnceLock::new(),
            load_error: Mutex::new(None),
            draining: AtomicBool::new(false),
            loaded_at: AtomicU64::new(0),
            metrics: Metrics::default(),
        })
    }

    pub fn config(&self) -> &ApiConfig {
        &self.config
    }

    /// The HPKE public key to publish in the claims (`hpke_public_key`); `None` when off.
    pub fn hpke_public_key(&self) -> Option<&HpkePublicKey> {
        self.opener.as_ref().map(RequestOpener::public_key)
    }

    /// Serves `engine` from now on (once; later calls are ignored).
    pub fn set_engine(&self, engine: Arc<Engine>) {
        let id = self
            .config
            .model_id
            .clone()
            .unwrap_or_else(|| engine.info().name.clone());
        let _ = self.model_id.set(id);
        self.loaded_at.store(unix_secs(), Ordering::Relaxed);
        let _ = self.engine.set(engine);
    }

    /// Loads the model off the async threads and serves it; on failure `/health` says why.
    pub async fn load(&self, config: EngineConfig) -> Result<(), InferenceError> {
        let dir = config.model_dir.display().to_string();
        tracing::info!(model_dir = %dir, "loading the model");
        let started = Instant::now();
        let loaded = tokio::task::spawn_blocking(move || Engine::load(config))
            .await
            .map_err(|e| InferenceError::InvalidConfig {
                message: format!("the loading task failed: {e}"),
            })
            .and_then(|r| r);
        match loaded {
            Ok(engine) => {
                tracing::info!(
                    model = %engine.info().name,
                    onnx_sha256 = %engine.info().onnx_sha256,
                    tokenizer_sha256 = %engine.info().tokenizer_sha256,
                    ort_library_sha256 = %engine.info().ort_library.sha256,
                    context_length = engine.info().context_length,
                    secs = started.elapsed().as_secs_f64(),
                    "model loaded"
                );
                self.set_engine(engine);
                Ok(())
            }
            Err(e) => {
                tracing::error!(error = %e, "loading the model failed");
                if let Ok(mut slot) = self.load_error.lock() {
                    *slot = Some(e.to_string());
                }
                Err(e)
            }
        }
    }

    pub fn engine(&self) -> Option<&Arc<Engine>> {
        self.engine.get()
    }

    /// The served model id, once loaded.
    pub fn model_id(&self) -> Option<&str> {
        self.model_id.get().map(String::as_str)
    }

    /// Refuses new generations (503) and makes `/health` answer 503; requests in flight go on.
    pub fn begin_drain(&self) {
        self.draining.store(true, Ordering::Release);
        if let Some(engine) = self.engine() {
            engine.shutdown();
        }
    }

    /// [`Self::begin_drain`], then waits until every admitted sequence has finished.
    pub async fn drain(&self) {
        self.begin_drain();
        if let Some(engine) = self.engine().cloned() {
            let _ = tokio::task::spawn_blocking(move || engine.wait_stopped()).await;
        }
    }

    fn available(&self) -> Result<&Arc<Engine>, ApiError> {
        if self.draining.load(Ordering::Acquire) {
            return Err(ApiError::Unavailable {
                code: "shutting_down",
                message: "the server is shutting down".into(),
            });
        }
        match self.engine() {
            Some(engine) => Ok(engine),
            None => Err(match self.load_error.lock().ok().and_then(|e| e.clone()) {
                Some(message) => ApiError::Unavailable {
                    code: "model_failed",
                    message: format!("the model failed to load: {message}"),
                },
                None => ApiError::Unavailable {
                    code: "model_loading",
                    message: "the model is loading; retry shortly".into(),
                },
            }),
        }
    }

    fn check_model(&self, requested: Option<&str>) -> Result<(), ApiError> {
        let Some(requested) = requested else {
            return Ok(());
        };
        if self.model_id() == Some(requested) || self.config.aliases.iter().any(|a| a == requested)
        {
            return Ok(());
        }
        Err(ApiError::ModelNotFound {
            model: requested.to_owned(),
        })
    }
}

/// Mounts the API's routes on `router`.
pub fn mount(router: Router, state: Arc<OpenAi>) -> Router {
    let route = |router: Router, method: Method, path: &'static str| {
        let state = Arc::clone(&state);
        router.route(method, path, move |request: Request<Incoming>| {
            let state = Arc::clone(&state);
            let started = Instant::now();
            let remote = request
                .extensions()
                .get::<ConnectionInfo>()
                .map(|c| c.remote_addr);
            async move {
                let response = match path {
                    CHAT_PATH => generate(&state, request, Endpoint::Chat).await,
                    COMPLETIONS_PATH => generate(&state, request, Endpoint::Completions).await,
                    MODELS_PATH => models(&state),
                    HEALTH_PATH => health(&state),
                    _ => metrics(&state),
                };
                let status = response.status().as_u16();
                state.metrics.request(path, status);
                tracing::info!(
                    route = path,
                    status,
                    remote = ?remote,
                    ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                    "request"
                );
                response
            }
        })
    };
    let router = route(router, Method::POST, CHAT_PATH);
    let router = route(router, Method::POST, COMPLETIONS_PATH);
    let router = route(router, Method::GET, MODELS_PATH);
    let router = route(router, Method::GET, HEALTH_PATH);
    route(router, Method::GET, METRICS_PATH)
}

fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn json_value(status: StatusCode, value: &Value) -> Response<ResponseBody> {
    json_response(status, value.to_string().into_bytes())
}

fn health(state: &OpenAi) -> Response<ResponseBody> {
    match state.available() {
        Ok(_) => json_value(
            StatusCode::OK,
            &json!({"status": "ok", "model": state.model_id()}),
        ),
        Err(ApiError::Unavailable { code, message }) => json_value(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"status": code, "message": message}),
        ),
        Err(other) => other.response(),
    }
}

fn models(state: &OpenAi) -> Response<ResponseBody> {
    let Some(id) = state.model_id() else {
        return match state.available() {
            Err(e) => e.response(),
            Ok(_) => ApiError::Internal {
                message: "no model id".into(),
            }
            .response(),
        };
    };
    let created = state.loaded_at.load(Ordering::Relaxed);
    let model = |name: &str| {
        let mut entry =
            json!({"id": name, "object": "model", "created": created, "owned_by": "cocoon"});
        // Extensions: what is loaded (the attested claims are what bind it; see docs/api.md).
        if let (Some(engine), Some(map)) = (state.engine(), entry.as_object_mut()) {
            let info = engine.info();
            map.insert("context_length".into(), json!(info.context_length));
            map.insert("onnx_sha256".into(), json!(info.onnx_sha256));
            map.insert("tokenizer_sha256".into(), json!(info.tokenizer_sha256));
            map.insert("ort_library_sha256".into(), json!(info.ort_library.sha256));
        }
        entry
    };
    let mut data = vec![model(id)];
    for alias in &state.config.aliases {
        data.push(model(alias));
    }
    json_value(StatusCode::OK, &json!({"object": "list", "data": data}))
}

fn metrics(state: &OpenAi) -> Response<ResponseBody> {
    let stats = state.engine().map(|e| e.stats());
    let text = state.metrics.render(stats.as_ref(), stats.is_some());
    let mut response = Response::new(full(text));
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

async fn read_body(
    config: &ApiConfig,
    bodies: &Arc<Semaphore>,
    request: Request<Incoming>,
    limit: usize,
) -> Result<(Bytes, OwnedSemaphorePermit), ApiError> {
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > u64::try_from(limit).unwrap_or(u64::MAX)) {
        return Err(ApiError::BodyTooLarge { limit });
    }
    let collect = async {
        let permit = Arc::clone(bodies).acquire_owned().await;
        let body = Limited::new(request.into_body(), limit).collect().await;
        (permit, body)
    };
    match tokio::time::timeout(config.body_timeout, collect).await {
        Err(_) => Err(ApiError::BodyTimeout),
        Ok((Err(_), _)) => Err(ApiError::Internal {
            message: "the body semaphore is closed".into(),
        }),
        Ok((Ok(permit), Ok(collected))) => Ok((collected.to_bytes(), permit)),
        Ok((_, Err(e))) if e.is::<http_body_util::LengthLimitError>() => {
            Err(ApiError::BodyTooLarge { limit })
        }
        Ok((_, Err(e))) => Err(ApiError::InvalidRequest {
            message: format!("reading the body failed: {e}"),
            param: None,
            code: "bad_body",
        }),
    }
}

/// One admitted generation, ready to be answered.
struct Admitted {
    engine: Arc<Engine>,
    stream: GenerationStream,
    model: String,
    include_usage: bool,
    endpoint: Endpoint,
    arrived: Instant,
}

async fn generate(
    state: &Arc<OpenAi>,
    request: Request<Incoming>,
    endpoint: Endpoint,
) -> Response<ResponseBody> {
    let arrived = Instant::now();
    let now = i64::try_from(unix_secs()).unwrap_or(i64::MAX);
    if sealed::is_sealed(request.headers()) {
        return sealed::generate(state, request, endpoint, arrived, now).await;
    }
    if state.config.hpke_mode == HpkeMode::Required {
        let e = ApiError::EncryptionRequired;
        state.metrics.sealed_refused(e.code());
        return e.response();
    }
    let read = async {
        state.available()?;
        read_body(
            &state.config,
            &state.bodies,
            request,
            state.config.max_body_bytes,
        )
        .await
    };
    match read.await {
        Ok((body, permit)) => answer(state, body, permit, endpoint, arrived, false).await,
        Err(e) => {
            tracing::debug!(error = ?e, "request refused");
            e.response()
        }
    }
}

/// Answers a request's (plaintext) JSON body. `sealed`: the body came sealed, so logs name
/// only error codes (messages may quote the plaintext).
async fn answer(
    state: &Arc<OpenAi>,
    body: Bytes,
    permit: OwnedSemaphorePermit,
    endpoint: Endpoint,
    arrived: Instant,
    sealed: bool,
) -> Response<ResponseBody> {
    let (admitted, streaming) = match admit(state, &body, permit, endpoint, arrived).await {
        Ok(admitted) => admitted,
        Err(e) => {
            if sealed {
                tracing::debug!(code = e.code(), "sealed request refused");
            } else {
                tracing::debug!(error = ?e, "request refused");
            }
            return e.response();
        }
    };
    if streaming {
        sse::respond(Arc::clone(state), admitted)
    } else {
        match collect(state, admitted).await {
            Ok(value) => json_value(StatusCode::OK, &value),
            Err(e) => e.response(),
        }
    }
}

async fn admit(
    state: &OpenAi,
    body: &[u8],
    // The permit bounds the memory of bodies being parsed and tokenized; released once the
    // request is queued.
    _permit: OwnedSemaphorePermit,
    endpoint: Endpoint,
    arrived: Instant,
) -> Result<(Admitted, bool), ApiError> {
    let engine = Arc::clone(state.available()?);
    let parsed = parse(body, endpoint)?;
    state.check_model(parsed.common.model.as_deref())?;
    // Template rendering and tokenization are CPU work proportional to the body: off the
    // async threads.
    let prompt_tokens = {
        let engine = Arc::clone(&engine);
        let prompt = parsed.prompt.clone();
        tokio::task::spawn_blocking(move || tokenize(&engine, &prompt))
            .await
            .map_err(|e| ApiError::Internal {
                message: format!("tokenizing failed: {e}"),
            })??
    };
    let max_tokens = max_tokens(
        state,
        endpoint,
        &engine,
        prompt_tokens.len(),
        parsed.common.max_tokens,
    )?;
    let Common {
        temperature,
        top_p,
        top_k,
        seed,
        stop,
        stream,
        include_usage,
        ..
    } = parsed.common;
    let params = SamplingParams {
        max_tokens,
        temperature,
        top_p,
        top_k,
        seed,
        stop,
    };
    let generation = engine
        .submit(GenerationRequest {
            prompt_tokens,
            params,
            deadline: arrived.checked_add(state.config.request_timeout),
        })
        .map_err(|e| submit_error(state, endpoint, e))?;
    let model = state.model_id().unwrap_or_default().to_owned();
    Ok((
        Admitted {
            engine,
            stream: generation,
            model,
            include_usage,
            endpoint,
            arrived,
        },
        stream,
    ))
}

/// The prompt's tokens: chat messages through the model's chat template.
fn tokenize(engine: &Engine, prompt: &Prompt) -> Result<Vec<u32>, ApiError> {
    let (text, param) = match prompt {
        Prompt::Text(text) => (text.clone(), "prompt"),
        Prompt::Chat(messages) => (
            engine
                .apply_chat_template(messages, true)
                .map_err(|e| match e {
                    InferenceError::NoChatTemplate => ApiError::unsupported(
                        "messages",
                        "the model has no chat template; use /v1/completions",
                    ),
                    other => ApiError::invalid("messages", other.to_string()),
                })?,
            "messages",
        ),
    };
    engine
        .tokenize(&text)
        .map_err(|e| ApiError::invalid(param, e.to_string()))
}

/// The field a prompt-length error names.
fn prompt_param(endpoint: Endpoint) -> &'static str {
    match endpoint {
        Endpoint::Chat => "messages",
        Endpoint::Completions => "prompt",
    }
}

fn max_tokens(
    state: &OpenAi,
    endpoint: Endpoint,
    engine: &Engine,
    prompt: usize,
    requested: Option<usize>,
) -> Result<usize, ApiError> {
    let context = engine.info().context_length;
    let room = context.saturating_sub(prompt);
    if room == 0 {
        return Err(ApiError::ContextLengthExceeded {
            message: format!(
                "This model's maximum context length is {context} tokens; the prompt has {prompt} tokens, leaving no room for a completion"
            ),
            param: prompt_param(endpoint),
        });
    }
    match requested {
        None => Ok(state.config.default_max_tokens.min(room)),
        Some(n) => {
            if let Some(limit) = state.config.max_tokens_limit {
                if n > limit {
                    return Err(ApiError::invalid(
                        "max_tokens",
                        format!("max_tokens is {n}; this server allows at most {limit}"),
                    ));
                }
            }
            if n > room {
                return Err(ApiError::ContextLengthExceeded {
                    message: format!(
                        "This model's maximum context length is {context} tokens; the prompt has {prompt} tokens and max_tokens is {n} ({} in total)",
                        prompt.saturating_add(n)
                    ),
                    param: prompt_param(endpoint),
                });
            }
            Ok(n)
        }
    }
}

fn submit_error(state: &OpenAi, endpoint: Endpoint, e: InferenceError) -> ApiError {
    match e {
        InferenceError::QueueFull { .. } => ApiError::QueueFull {
            retry_after_secs: state.config.retry_after_secs,
        },
        InferenceError::PromptTooLong {
            prompt_tokens,
            max_tokens,
            context_length,
        } => ApiError::ContextLengthExceeded {
            message: format!(
                "This model's maximum context length is {context_length} tokens; the prompt has {prompt_tokens} tokens and max_tokens is {max_tokens}"
            ),
            param: prompt_param(endpoint),
        },
        InferenceError::ShuttingDown => ApiError::Unavailable {
            code: "shutting_down",
            message: "the server is shutting down".into(),
        },
        InferenceError::InvalidParams { message } => ApiError::InvalidRequest {
            message,
            param: None,
            code: "invalid_value",
        },
        InferenceError::EmptyPrompt | InferenceError::InvalidTokenId { .. } => {
            ApiError::InvalidRequest {
                message: e.to_string(),
                param: None,
                code: "invalid_prompt",
            }
        }
        other => ApiError::Internal {
            message: other.to_string(),
        },
    }
}

/// Per-request latency bookkeeping.
struct Timing {
    arrived: Instant,
    last: Option<Instant>,
}

impl Timing {
    fn token(&mut self, metrics: &Metrics) {
        let now = Instant::now();
        match self.last {
            None => metrics
                .time_to_first_token
                .observe(now.saturating_duration_since(self.arrived)),
            Some(last) => metrics
                .inter_token_latency
                .observe(now.saturating_duration_since(last)),
        }
        self.last = Some(now);
    }

    fn finish(&self, metrics: &Metrics, prompt: usize, completion: usize) {
        metrics.tokens(prompt, completion);
        metrics.request_duration.observe(self.arrived.elapsed());
    }
}

fn usage(prompt: usize, completion: usize) -> Value {
    json!({
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt.saturating_add(completion),
    })
}

fn new_id(endpoint: Endpoint) -> String {
    let prefix = match endpoint {
        Endpoint::Chat => "chatcmpl",
        Endpoint::Completions => "cmpl",
    };
    format!("{prefix}-{:032x}", rand::random::<u128>())
}

/// The OpenAI `finish_reason` of an engine's reason; `Err` for those that are errors.
fn finish_reason(reason: FinishReason) -> Result<&'static str, ApiError> {
    match reason {
        FinishReason::Stop => Ok("stop"),
        FinishReason::Length => Ok("length"),
        FinishReason::Deadline => Err(ApiError::DeadlineExceeded),
        other => Err(ApiError::Internal {
            message: format!("generation ended: {}", other.as_str()),
        }),
    }
}

async fn collect(state: &OpenAi, admitted: Admitted) -> Result<Value, ApiError> {
    let Admitted {
        engine,
        mut stream,
        model,
        endpoint,
        arrived,
        ..
    } = admitted;
    let mut timing = Timing {
        arrived,
        last: None,
    };
    let mut text = String::new();
    let (reason, prompt, completion) = loop {
        match stream.next().await {
            Some(GenerationEvent::Token { text: piece, .. }) => {
                timing.token(&state.metrics);
                text.push_str(&piece);
            }
            Some(GenerationEvent::Finished {
                reason,
                prompt_tokens,
                completion_tokens,
            }) => break (reason, prompt_tokens, completion_tokens),
            None => {
                return Err(ApiError::Internal {
                    message: "the engine stopped before the generation finished".into(),
                })
            }
        }
    };
    drop(engine);
    timing.finish(&state.metrics, prompt, completion);
    let finish = finish_reason(reason)?;
    let id = new_id(endpoint);
    let created = unix_secs();
    Ok(match endpoint {
        Endpoint::Chat => json!({
            "id": id,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "logprobs": null,
                "finish_reason": finish,
            }],
            "usage": usage(prompt, completion),
        }),
        Endpoint::Completions => json!({
            "id": id,
            "object": "text_completion",
            "created": created,
            "model": model,
            "choices": [{
                "index": 0,
                "text": text,
                "logprobs": null,
                "finish_reason": finish,
            }],
            "usage": usage(prompt, completion),
        }),
    })
}
