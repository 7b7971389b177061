//! LLM inference inside the enclave: ONNX Runtime (loaded at run time from the pinned
//! `onnxruntime==1.31.1` library), a decoder-with-past ONNX model, its tokenizer and chat
//! template, and a continuous-batching scheduler.
//!
//! [`Engine::load`] reads a model directory (`model.onnx`, `tokenizer.json`, `model.json`),
//! checks both files against the SHA-256 digests `model.json` records, and starts one
//! scheduler thread. [`Engine::submit`] queues a [`GenerationRequest`] (bounded queue) and
//! returns a [`GenerationStream`] of [`GenerationEvent`]s; dropping the stream cancels the
//! sequence. Each scheduler step runs ONE batched session run over every active sequence;
//! new sequences are prefilled on their own and join between steps. Every sequence's
//! key/value cache is private to it: nothing computed for one request is reused for another
//! (a shared prompt cache would let one user time another's prompts). See
//! `docs/inference.md`.

mod error;
mod model;
mod sampling;
mod scheduler;
mod text;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use tokio::sync::mpsc;

pub use cocoon_attestation::claims::ExecutionProvider;
pub use error::InferenceError;
pub use model::{
    init_onnx_runtime, ort_library_path, workspace_root, OrtLibrary, ORT_LIBRARY_NAME,
    ORT_LIBRARY_SHA256,
};
pub use sampling::{SamplingParams, MAX_STOP_BYTES, MAX_STOP_STRINGS};
pub use text::{render_chat_template, ChatMessage};

use model::{Model, ModelFiles};
use text::TextCodec;

/// How to load and run a model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    /// Directory with `model.onnx`, `tokenizer.json`, `model.json`.
    pub model_dir: PathBuf,
    /// ONNX Runtime intra-op threads (0 = ONNX Runtime's default).
    pub threads: usize,
    /// Most sequences decoded concurrently (the batch size limit), at least 1.
    pub max_sequences: usize,
    /// Most requests waiting for a slot; beyond it `submit` returns `QueueFull`.
    pub queue_capacity: usize,
    /// Caps the model's context length (prompt + generated tokens) when set.
    pub max_context: Option<usize>,
    /// Where ONNX Runtime runs the model. `Cuda` must register (the library must be the CUDA
    /// build, e.g. from the `onnxruntime-gpu` wheel, and a GPU present), else loading fails:
    /// never a silent fall back to the CPU, since the provider is part of the claims.
    pub execution_provider: ExecutionProvider,
}

impl EngineConfig {
    /// A configuration with defaults: 2 threads, 8 sequences, a queue of 64, full context.
    pub fn new(model_dir: impl Into<PathBuf>) -> Self {
        Self {
            model_dir: model_dir.into(),
            threads: 2,
            max_sequences: 8,
            queue_capacity: 64,
            max_context: None,
            execution_provider: ExecutionProvider::Cpu,
        }
    }
}

/// What was loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelInfo {
    /// `model.json` name.
    pub name: String,
    /// The effective context length (the model's, capped by `max_context`).
    pub context_length: usize,
    /// Logit width.
    pub vocab_size: usize,
    /// SHA-256 (hex) of the `model.onnx` bytes loaded.
    pub onnx_sha256: String,
    /// SHA-256 (hex) of the `tokenizer.json` bytes loaded.
    pub tokenizer_sha256: String,
    pub num_layers: usize,
    pub num_kv_heads: usize,
    pub head_dim: usize,
    pub bos_token_id: Option<u32>,
    pub eos_token_ids: Vec<u32>,
    pub has_chat_template: bool,
    /// The engine's limits, for the API layer.
    pub max_sequences: usize,
    pub queue_capacity: usize,
    /// The ONNX Runtime library loaded (path and SHA-256, for the enclave's claims).
    pub ort_library: OrtLibrary,
}

/// A request for generation.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerationRequest {
    pub prompt_tokens: Vec<u32>,
    pub params: SamplingParams,
    /// When reached, the sequence ends with [`FinishReason::Deadline`] (checked between steps,
    /// also while queued).
    pub deadline: Option<Instant>,
}

/// Why a sequence ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FinishReason {
    /// An EOS token or a stop string.
    Stop,
    /// `max_tokens` generated.
    Length,
    /// The stream was dropped (only counted in stats: nobody receives it).
    Cancelled,
    /// The request's deadline passed.
    Deadline,
    /// The model run failed (ONNX Runtime error); the request cannot continue.
    Error,
}

impl FinishReason {
    /// The OpenAI-style name (`stop`, `length`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stop => "stop",
            Self::Length => "length",
            Self::Cancelled => "cancelled",
            Self::Deadline => "deadline",
            Self::Error => "error",
        }
    }
}

/// One event of a generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GenerationEvent {
    /// A generated token (every generated token yields exactly one, EOS included) and the text
    /// it releases: UTF-8 safe across tokens, empty while a character is incomplete or while
    /// the text might begin a stop string. Stop strings and EOS never appear in `text`.
    Token { token_id: u32, text: String },
    /// The last event.
    Finished {
        reason: FinishReason,
        prompt_tokens: usize,
        completion_tokens: usize,
    },
}

/// The events of one generation. Dropping it cancels the sequence and frees its slot.
#[derive(Debug)]
pub struct GenerationStream {
    rx: mpsc::UnboundedReceiver<GenerationEvent>,
    id: u64,
}

impl GenerationStream {
    /// The next event; `None` after `Finished` (or if the engine stopped abruptly).
    pub async fn next(&mut self) -> Option<GenerationEvent> {
        self.rx.recv().await
    }

    /// Blocking variant of [`Self::next`] for threads outside an async runtime.
    pub fn blocking_next(&mut self) -> Option<GenerationEvent> {
        self.rx.blocking_recv()
    }

    /// The request's engine-local id (for logs).
    pub fn id(&self) -> u64 {
        self.id
    }
}

/// Counters and gauges for `/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// Requests waiting for a slot.
    pub queue_depth: usize,
    /// Sequences being decoded.
    pub active_sequences: usize,
    /// Rows of the last batched decode run.
    pub last_batch_size: usize,
    pub max_sequences: usize,
    pub queue_capacity: usize,
    pub requests_submitted: u64,
    pub requests_rejected_queue_full: u64,
    pub finished_stop: u64,
    pub finished_length: u64,
    pub finished_cancelled: u64,
    pub finished_deadline: u64,
    pub finished_error: u64,
    /// Prompt tokens prefilled.
    pub prompt_tokens_total: u64,
    /// Tokens generated.
    pub completion_tokens_total: u64,
    /// Prefill runs (one per admitted request).
    pub prefill_runs: u64,
    /// Batched decode runs.
    pub decode_steps: u64,
    /// Sum of decode batch sizes (tokens decoded in batched runs).
    pub decode_rows_total: u64,
    /// Time in model runs (prefill + decode, batch assembly included), microseconds.
    pub run_micros_total: u64,
    /// Of which inside ONNX Runtime's `Session::run`, microseconds.
    pub session_micros_total: u64,
    /// Decode steps whose batch had the same rows as the step before, so that the previous
    /// outputs were the inputs without any copy.
    pub decode_steps_reusing_batch: u64,
}

#[derive(Debug, Default)]
struct Counters {
    submitted: AtomicU64,
    rejected: AtomicU64,
    stop: AtomicU64,
    length: AtomicU64,
    cancelled: AtomicU64,
    deadline: AtomicU64,
    error: AtomicU64,
    prompt_tokens: AtomicU64,
    completion_tokens: AtomicU64,
    prefills: AtomicU64,
    decode_steps: AtomicU64,
    decode_rows: AtomicU64,
    run_micros: AtomicU64,
    session_micros: AtomicU64,
    reused_batch_runs: AtomicU64,
    active: AtomicUsize,
    last_batch: AtomicUsize,
}

impl Counters {
    fn finished(&self, reason: FinishReason) {
        let c = match reason {
            FinishReason::Stop => &self.stop,
            FinishReason::Length => &self.length,
            FinishReason::Cancelled => &self.cancelled,
            FinishReason::Deadline => &self.deadline,
            FinishReason::Error => &self.error,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }
}

/// A queued request.
struct Pending {
    prompt: Vec<u32>,
    params: SamplingParams,
    deadline: Option<Instant>,
    tx: mpsc::UnboundedSender<GenerationEvent>,
}

#[derive(Default)]
struct QueueState {
    waiting: VecDeque<Pending>,
    shutting_down: bool,
    stopped: bool,
    decode_paused: bool,
    next_id: u64,
}

struct Shared {
    queue: Mutex<QueueState>,
    wake: Condvar,
    counters: Counters,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, QueueState> {
        self.queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The inference engine: a loaded model and its scheduler thread.
pub struct Engine {
    info: ModelInfo,
    codec: Arc<TextCodec>,
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("info", &self.info).finish()
    }
}

impl Engine {
    /// Loads the model directory, checks digests and the graph's interface, and starts the
    /// scheduler thread.
    pub fn load(config: EngineConfig) -> Result<Arc<Engine>, InferenceError> {
        if config.max_sequences == 0 {
            return Err(InferenceError::InvalidConfig {
                message: "max_sequences must be at least 1".to_owned(),
            });
        }
        if config.threads > 1024 {
            return Err(InferenceError::InvalidConfig {
                message: "threads must be at most 1024".to_owned(),
            });
        }
        if config.max_context.is_some_and(|c| c < 2) {
            return Err(InferenceError::InvalidConfig {
                message: "max_context must be at least 2".to_owned(),
            });
        }
        let files = ModelFiles::read(&config.model_dir)?;
        let meta = files.meta.clone();
        let codec = Arc::new(TextCodec::new(
            &files.tokenizer,
            meta.chat_template.clone(),
            meta.bos_token_id,
            meta.eos_token_ids.first().copied(),
        )?);
        if codec.vocab_size() > meta.vocab_size {
            return Err(InferenceError::ModelMetadata {
                message: format!(
                    "the tokenizer's vocabulary ({}) exceeds the model's vocab_size ({})",
                    codec.vocab_size(),
                    meta.vocab_size
                ),
            });
        }
        let (_, ort_library) = model::ort_environment()?;
        let context_length = config
            .max_context
            .map_or(meta.context_length, |c| c.min(meta.context_length));
        let info = ModelInfo {
            name: meta.name.clone(),
            context_length,
            vocab_size: meta.vocab_size,
            onnx_sha256: files.onnx_sha256.clone(),
            tokenizer_sha256: files.tokenizer_sha256.clone(),
            num_layers: meta.num_layers,
            num_kv_heads: meta.num_kv_heads,
            head_dim: meta.head_dim,
            bos_token_id: meta.bos_token_id,
            eos_token_ids: meta.eos_token_ids.clone(),
            has_chat_template: meta.chat_template.is_some(),
            max_sequences: config.max_sequences,
            queue_capacity: config.queue_capacity,
            ort_library,
        };
        let shared = Arc::new(Shared {
            queue: Mutex::new(QueueState::default()),
            wake: Condvar::new(),
            counters: Counters::default(),
        });
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let onnx = files.onnx;
        let threads = config.threads;
        let provider = config.execution_provider;
        let max_sequences = config.max_sequences;
        let thread_shared = Arc::clone(&shared);
        let thread_codec = Arc::clone(&codec);
        let handle = std::thread::Builder::new()
            .name("cocoon-inference".to_owned())
            .spawn(move || {
                let model = match Model::new(meta, &onnx, threads, provider) {
                    Ok(m) => m,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                drop(onnx);
                let _ = ready_tx.send(Ok(()));
                scheduler::run(model, &thread_codec, &thread_shared, max_sequences);
            })
            .map_err(|e| InferenceError::InvalidConfig {
                message: format!("cannot start the scheduler thread: {e}"),
            })?;
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                let _ = handle.join();
                return Err(e);
            }
            Err(_) => {
                let _ = handle.join();
                return Err(InferenceError::SchedulerGone);
            }
        }
        Ok(Arc::new(Engine {
            info,
            codec,
            shared,
            thread: Mutex::new(Some(handle)),
        }))
    }

    /// What was loaded.
    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// Renders the model's chat template (HF conventions: `messages`, `add_generation_prompt`,
    /// `bos_token`, `eos_token`, `raise_exception`).
    pub fn apply_chat_template(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
    ) -> Result<String, InferenceError> {
        self.codec
            .apply_chat_template(messages, add_generation_prompt)
    }

    /// Token ids of `text`: special tokens written in the text are recognised, none are added
    /// (chat templates write their own).
    pub fn tokenize(&self, text: &str) -> Result<Vec<u32>, InferenceError> {
        self.codec.encode(text)
    }

    /// Text of `ids` (special tokens skipped).
    pub fn detokenize(&self, ids: &[u32]) -> Result<String, InferenceError> {
        self.codec.decode(ids)
    }

    /// Queues a request. Fails with `QueueFull` when the bounded queue is full, `PromptTooLong`
    /// when prompt + `max_tokens` exceed the context, `ShuttingDown` after [`Self::shutdown`].
    pub fn submit(&self, request: GenerationRequest) -> Result<GenerationStream, InferenceError> {
        let GenerationRequest {
            prompt_tokens,
            params,
            deadline,
        } = request;
        if prompt_tokens.is_empty() {
            return Err(InferenceError::EmptyPrompt);
        }
        if let Some(&bad) = prompt_tokens
            .iter()
            .find(|&&t| usize::try_from(t).map_or(true, |t| t >= self.info.vocab_size))
        {
            return Err(InferenceError::InvalidTokenId {
                token_id: bad,
                vocab_size: self.info.vocab_size,
            });
        }
        params
            .check()
            .map_err(|message| InferenceError::InvalidParams { message })?;
        if prompt_tokens
            .len()
            .checked_add(params.max_tokens)
            .is_none_or(|n| n > self.info.context_length)
        {
            return Err(InferenceError::PromptTooLong {
                prompt_tokens: prompt_tokens.len(),
                max_tokens: params.max_tokens,
                context_length: self.info.context_length,
            });
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let mut q = self.shared.lock();
        if q.shutting_down {
            return Err(InferenceError::ShuttingDown);
        }
        if q.stopped {
            return Err(InferenceError::SchedulerGone);
        }
        // Requests whose streams were dropped while waiting do not hold queue places.
        q.waiting.retain(|p| !p.tx.is_closed());
        if q.waiting.len() >= self.info.queue_capacity {
            self.shared
                .counters
                .rejected
                .fetch_add(1, Ordering::Relaxed);
            return Err(InferenceError::QueueFull {
                capacity: self.info.queue_capacity,
            });
        }
        let id = q.next_id;
        q.next_id = q.next_id.wrapping_add(1);
        q.waiting.push_back(Pending {
            prompt: prompt_tokens,
            params,
            deadline,
            tx,
        });
        drop(q);
        self.shared
            .counters
            .submitted
            .fetch_add(1, Ordering::Relaxed);
        self.shared.wake.notify_all();
        Ok(GenerationStream { rx, id })
    }

    /// Current gauges and counters.
    pub fn stats(&self) -> EngineStats {
        let queue_depth = self.shared.lock().waiting.len();
        let c = &self.shared.counters;
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        EngineStats {
            queue_depth,
            active_sequences: c.active.load(Ordering::Relaxed),
            last_batch_size: c.last_batch.load(Ordering::Relaxed),
            max_sequences: self.info.max_sequences,
            queue_capacity: self.info.queue_capacity,
            requests_submitted: l(&c.submitted),
            requests_rejected_queue_full: l(&c.rejected),
            finished_stop: l(&c.stop),
            finished_length: l(&c.length),
            finished_cancelled: l(&c.cancelled),
            finished_deadline: l(&c.deadline),
            finished_error: l(&c.error),
            prompt_tokens_total: l(&c.prompt_tokens),
            completion_tokens_total: l(&c.completion_tokens),
            prefill_runs: l(&c.prefills),
            decode_steps: l(&c.decode_steps),
            decode_rows_total: l(&c.decode_rows),
            run_micros_total: l(&c.run_micros),
            session_micros_total: l(&c.session_micros),
            decode_steps_reusing_batch: l(&c.reused_batch_runs),
        }
    }

    /// Starts draining: new requests are refused with `ShuttingDown`; running and already
    /// queued requests finish. Returns at once; [`Self::wait_stopped`] waits for the drain.
    pub fn shutdown(&self) {
        self.shared.lock().shutting_down = true;
        self.shared.wake.notify_all();
    }

    /// Holds (or releases) decode steps: while held, queued requests are still admitted and
    /// prefilled (each gets its first token) and dropped streams and deadlines are still
    /// processed, but no batched decode step runs. For operations (quiescing) and for tests
    /// that need a sequence to stay in flight deterministically.
    pub fn pause_decoding(&self, paused: bool) {
        self.shared.lock().decode_paused = paused;
        self.shared.wake.notify_all();
    }

    /// Blocks until the scheduler thread has exited (after [`Self::shutdown`], once drained).
    pub fn wait_stopped(&self) {
        let handle = self
            .thread
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(h) = handle {
            let _ = h.join();
        }
    }

    /// Whether the scheduler thread has exited.
    pub fn is_stopped(&self) -> bool {
        self.shared.lock().stopped
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The files of a model directory that make up its identity, in digest order.
pub use cocoon_attestation::model_digest::MODEL_IDENTITY_FILES;

/// The model's identity for the enclave's claims (`model_blake3`, docs/claims.md): the digest
/// of [`cocoon_attestation::model_digest::model_blake3`] (BLAKE3 over, for each of
/// [`MODEL_IDENTITY_FILES`] in order, the file name, a zero byte, the file length as u64
/// little-endian and the file's bytes), which auditors recompute with `cocoon-verify measure
/// model DIR`. The enclave reads the files again when loading; in a deployment they sit on a
/// dm-verity volume whose root is in the claims too, so they cannot change between the two
/// reads.
pub fn model_blake3(dir: &std::path::Path) -> Result<[u8; 32], InferenceError> {
    use cocoon_attestation::Error;
    cocoon_attestation::model_digest::model_blake3(dir).map_err(|e| match e {
        Error::Io { path, reason, .. } => InferenceError::ModelFile {
            path: path.into(),
            message: reason,
        },
        Error::FileChangedWhileHashed {
            path,
            expected,
            actual,
        } => InferenceError::ModelFile {
            path: path.into(),
            message: format!("changed while hashed ({expected} bytes, then {actual})"),
        },
        other => InferenceError::ModelFile {
            path: dir.to_path_buf(),
            message: other.message(),
        },
    })
}
