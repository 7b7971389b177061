//! The inference engine's error type: one variant per way a load or a request fails.

use std::fmt;
use std::path::PathBuf;

/// Every way that loading a model or serving a request can fail.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum InferenceError {
    /// The ONNX Runtime library is not where it was looked for.
    OrtLibraryMissing { path: PathBuf },
    /// The ONNX Runtime library exists but could not be loaded (wrong file, wrong version).
    OrtLibraryLoad { path: PathBuf, message: String },
    /// The execution provider could not be registered: the library lacks it (the CPU build) or
    /// no device is usable.
    ExecutionProviderUnavailable {
        provider: &'static str,
        library: PathBuf,
        message: String,
    },
    /// An ONNX Runtime call failed (`op` says which).
    Ort { op: &'static str, message: String },
    /// A file of the model directory could not be read.
    ModelFile { path: PathBuf, message: String },
    /// `model.json` is malformed or inconsistent (`message` says how).
    ModelMetadata { message: String },
    /// A file's SHA-256 differs from the one `model.json` records.
    DigestMismatch {
        file: &'static str,
        expected: String,
        actual: String,
    },
    /// The ONNX graph lacks an input or output of the decoder-with-past interface.
    ModelInterface { message: String },
    /// `tokenizer.json` could not be parsed.
    Tokenizer { message: String },
    /// Tokenizing or detokenizing failed.
    Tokenize { message: String },
    /// The model has no chat template.
    NoChatTemplate,
    /// The chat template failed to compile or render (including its own `raise_exception`).
    ChatTemplate { message: String },
    /// The engine configuration is unusable.
    InvalidConfig { message: String },
    /// The request's prompt holds no tokens.
    EmptyPrompt,
    /// A prompt token id is not in the vocabulary.
    InvalidTokenId { token_id: u32, vocab_size: usize },
    /// Sampling parameters out of range.
    InvalidParams { message: String },
    /// The prompt plus `max_tokens` exceed the context.
    PromptTooLong {
        prompt_tokens: usize,
        max_tokens: usize,
        context_length: usize,
    },
    /// The bounded queue is full; retry later.
    QueueFull { capacity: usize },
    /// The engine is shutting down (or has stopped) and accepts no new requests.
    ShuttingDown,
    /// The scheduler thread is gone (it failed); the engine cannot serve.
    SchedulerGone,
}

impl fmt::Display for InferenceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OrtLibraryMissing { path } => write!(
                f,
                "ONNX Runtime library not found at {}: run scripts/setup (or set ORT_DYLIB_PATH)",
                path.display()
            ),
            Self::OrtLibraryLoad { path, message } => write!(
                f,
                "cannot load the ONNX Runtime library {}: {message} (run scripts/setup)",
                path.display()
            ),
            Self::ExecutionProviderUnavailable {
                provider,
                library,
                message,
            } => write!(
                f,
                "the {provider} execution provider is not usable with {} ({message}); the CUDA \
                 build of ONNX Runtime (the onnxruntime-gpu wheel's library) and a GPU are needed",
                library.display()
            ),
            Self::Ort { op, message } => write!(f, "ONNX Runtime {op} failed: {message}"),
            Self::ModelFile { path, message } => {
                write!(f, "cannot read {}: {message}", path.display())
            }
            Self::ModelMetadata { message } => write!(f, "model.json: {message}"),
            Self::DigestMismatch {
                file,
                expected,
                actual,
            } => write!(
                f,
                "{file}: sha256 {actual} differs from the {expected} recorded in model.json"
            ),
            Self::ModelInterface { message } => write!(f, "model interface: {message}"),
            Self::Tokenizer { message } => write!(f, "tokenizer.json: {message}"),
            Self::Tokenize { message } => write!(f, "tokenizer: {message}"),
            Self::NoChatTemplate => write!(f, "the model has no chat template"),
            Self::ChatTemplate { message } => write!(f, "chat template: {message}"),
            Self::InvalidConfig { message } => write!(f, "engine configuration: {message}"),
            Self::EmptyPrompt => write!(f, "the prompt is empty"),
            Self::InvalidTokenId {
                token_id,
                vocab_size,
            } => write!(
                f,
                "token id {token_id} is outside the vocabulary of {vocab_size}"
            ),
            Self::InvalidParams { message } => write!(f, "sampling parameters: {message}"),
            Self::PromptTooLong {
                prompt_tokens,
                max_tokens,
                context_length,
            } => write!(
                f,
                "the prompt ({prompt_tokens} tokens) plus max_tokens ({max_tokens}) exceed the context length ({context_length})"
            ),
            Self::QueueFull { capacity } => {
                write!(f, "the request queue is full ({capacity} waiting)")
            }
            Self::ShuttingDown => write!(f, "the engine is shutting down"),
            Self::SchedulerGone => write!(f, "the inference scheduler has stopped"),
        }
    }
}

impl std::error::Error for InferenceError {}

impl InferenceError {
    pub(crate) fn ort(op: &'static str, e: impl fmt::Display) -> Self {
        Self::Ort {
            op,
            message: e.to_string(),
        }
    }
}
