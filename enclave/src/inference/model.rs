//! The model directory (`model.json`, `model.onnx`), the ONNX Runtime library and one batched
//! run of the decoder-with-past graph.

use cocoon_attestation::claims::ExecutionProvider;
use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use ort::session::builder::GraphOptimizationLevel;
use ort::session::{Session, SessionInputValue};
use ort::value::{DynValue, Tensor};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::error::InferenceError;

/// The largest `model.json` accepted.
const MAX_METADATA_BYTES: u64 = 1 << 20;
/// The largest `tokenizer.json` accepted.
pub(crate) const MAX_TOKENIZER_BYTES: u64 = 64 << 20;
/// The largest `model.onnx` accepted (SmolLM2-135M in fp32 is about 540 MB).
const MAX_ONNX_BYTES: u64 = 8 << 30;

/// The pinned library's file name (from the `onnxruntime==1.31.1` wheel).
pub const ORT_LIBRARY_NAME: &str = "libonnxruntime.so.1.31.1";

/// `model.json`, our metadata next to the ONNX file.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ModelMeta {
    pub name: String,
    pub num_layers: usize,
    pub num_kv_heads: usize,
    pub head_dim: usize,
    pub vocab_size: usize,
    pub context_length: usize,
    #[serde(default)]
    pub bos_token_id: Option<u32>,
    #[serde(default)]
    pub eos_token_ids: Vec<u32>,
    #[serde(default)]
    pub chat_template: Option<String>,
    pub onnx_sha256: String,
    pub tokenizer_sha256: String,
}

impl ModelMeta {
    pub(crate) fn parse(bytes: &[u8]) -> Result<Self, InferenceError> {
        let meta: Self =
            serde_json::from_slice(bytes).map_err(|e| InferenceError::ModelMetadata {
                message: e.to_string(),
            })?;
        let bad = |message: &str| {
            Err(InferenceError::ModelMetadata {
                message: message.to_owned(),
            })
        };
        if meta.num_layers == 0 || meta.num_layers > 1024 {
            return bad("num_layers must be in 1..=1024");
        }
        if meta.num_kv_heads == 0 || meta.num_kv_heads > 1024 {
            return bad("num_kv_heads must be in 1..=1024");
        }
        if meta.head_dim == 0 || meta.head_dim > 4096 {
            return bad("head_dim must be in 1..=4096");
        }
        if meta.vocab_size == 0 || meta.vocab_size > (1 << 24) {
            return bad("vocab_size must be in 1..=2^24");
        }
        if meta.context_length < 2 || meta.context_length > (1 << 20) {
            return bad("context_length must be in 2..=2^20");
        }
        if meta
            .eos_token_ids
            .iter()
            .any(|&t| usize::try_from(t).map_or(true, |t| t >= meta.vocab_size))
        {
            return bad("an eos_token_id is outside the vocabulary");
        }
        Ok(meta)
    }
}

/// Reads a file of at most `limit` bytes.
pub(crate) fn read_limited(path: &Path, limit: u64) -> Result<Vec<u8>, InferenceError> {
    use std::io::Read;
    let err = |e: std::io::Error| InferenceError::ModelFile {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let file = std::fs::File::open(path).map_err(err)?;
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(err)?;
    if u64::try_from(bytes.len()).map_or(true, |n| n > limit) {
        return Err(InferenceError::ModelFile {
            path: path.to_path_buf(),
            message: format!("larger than the {limit}-byte limit"),
        });
    }
    Ok(bytes)
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Where the ONNX Runtime library is looked for: `ORT_DYLIB_PATH` if set and non-empty, else
/// `<workspace root>/.cache/ort/libonnxruntime.so.1.31.1`.
pub fn ort_library_path() -> PathBuf {
    match std::env::var_os("ORT_DYLIB_PATH") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => workspace_root().join(".cache/ort").join(ORT_LIBRARY_NAME),
    }
}

/// The workspace root: the parent of this crate's manifest directory at build time.
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// The ONNX Runtime library this process loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrtLibrary {
    pub path: PathBuf,
    /// SHA-256 (hex) of the file as read before loading it (the pinned 1.31.1 library is
    /// [`ORT_LIBRARY_SHA256`]).
    pub sha256: String,
}

/// SHA-256 of `libonnxruntime.so.1.31.1` from the `onnxruntime==1.31.1` manylinux_2_28 x86_64
/// wheel, the library `scripts/setup` installs.
pub const ORT_LIBRARY_SHA256: &str =
    "fc44112fbe06d7d689c57e11d3862031f64711007e4ee020f8eed5185fd2c1d3";

/// The largest library file accepted.
const MAX_ORT_LIBRARY_BYTES: u64 = 512 << 20;

#[derive(Clone)]
struct OrtState {
    env: ort::environment::Environment,
    library: OrtLibrary,
}

/// The process-wide ONNX Runtime environment (ONNX Runtime allows one per process).
static ORT: OnceLock<Result<OrtState, InferenceError>> = OnceLock::new();

fn build_env(path: &Path) -> Result<OrtState, InferenceError> {
    if !path.is_file() {
        return Err(InferenceError::OrtLibraryMissing {
            path: path.to_path_buf(),
        });
    }
    let sha256 = sha256_hex(&read_limited(path, MAX_ORT_LIBRARY_BYTES)?);
    let builder = ort::init_from(path).map_err(|e| InferenceError::OrtLibraryLoad {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let env = builder
        .with_name("cocoon-inference")
        .with_telemetry(false)
        .build()
        .map_err(|e| InferenceError::ort("environment", e))?;
    Ok(OrtState {
        env,
        library: OrtLibrary {
            path: path.to_path_buf(),
            sha256,
        },
    })
}

/// Loads the ONNX Runtime library from `path` for this process. Optional: without it, the
/// first [`crate::inference::Engine::load`] loads [`ort_library_path`]. The first call in a
/// process decides; later calls return its result whatever their path.
pub fn init_onnx_runtime(path: &Path) -> Result<OrtLibrary, InferenceError> {
    ORT.get_or_init(|| build_env(path))
        .as_ref()
        .map(|s| s.library.clone())
        .map_err(Clone::clone)
}

/// Loads the library (once per process) and returns the environment.
pub(crate) fn ort_environment(
) -> Result<(ort::environment::Environment, OrtLibrary), InferenceError> {
    ORT.get_or_init(|| build_env(&ort_library_path()))
        .as_ref()
        .map(|s| (s.env.clone(), s.library.clone()))
        .map_err(Clone::clone)
}

/// Builds a session. `SessionBuilder` errors are not `Send`, so the builder lives here and
/// only `ort::Error` leaves.
fn build_session(
    env: &ort::environment::Environment,
    onnx: &[u8],
    threads: usize,
    provider: ExecutionProvider,
) -> ort::Result<Session> {
    let mut builder = Session::builder(env)?;
    if provider == ExecutionProvider::Cuda {
        // error_on_failure: a CPU-only library or no GPU is an error, not a silent CPU fallback.
        builder = builder
            .with_execution_providers([ort::ep::CUDA::default().build().error_on_failure()])?;
    }
    let session = builder
        .with_optimization_level(GraphOptimizationLevel::All)?
        .with_intra_threads(threads)?
        .with_inter_threads(1)?
        .with_parallel_execution(false)?
        .commit_from_memory(onnx)?;
    Ok(session)
}

/// One layer's keys (or values) of one sequence: `len` positions per KV head.
///
/// - `Host`: floats `[num_kv_heads, len, head_dim]` (copied out of a batch);
/// - `Ort`: the `[1, num_kv_heads, len, head_dim]` output of a single-row run, kept as ONNX
///   Runtime returned it so that the next single-row run takes it without a copy;
/// - `Batch`: row `row` of a `[B, num_kv_heads, pad + len, head_dim]` output of a batched run,
///   shared by the rows of that run (each reads only its own row, after its `pad`). While the
///   batch keeps the same rows in the same order, the next step takes the tensor as it is.
pub(crate) enum KvTensor {
    Host(Vec<f32>),
    Ort(DynValue),
    Batch {
        tensor: Arc<DynValue>,
        row: usize,
        pad: usize,
    },
}

impl KvTensor {
    /// The `len × head_dim` floats of KV head `h`.
    fn head(&self, h: usize, len: usize, dim: usize) -> Result<&[f32], InferenceError> {
        let n = mul(len, dim)?;
        let (data, from) = match self {
            Self::Host(v) => (v.as_slice(), mul(h, n)?),
            Self::Ort(v) => (
                v.try_extract_tensor::<f32>()
                    .map_err(|e| InferenceError::ort("cache", e))?
                    .1,
                mul(h, n)?,
            ),
            Self::Batch { tensor, row, pad } => {
                let (shape, data) = tensor
                    .try_extract_tensor::<f32>()
                    .map_err(|e| InferenceError::ort("cache", e))?;
                let heads = dim_at(shape, 1)?;
                let total = dim_at(shape, 2)?;
                if add(*pad, len)? != total {
                    return Err(overflow());
                }
                (
                    data,
                    mul(add(mul(add(mul(*row, heads)?, h)?, total)?, *pad)?, dim)?,
                )
            }
        };
        data.get(from..add(from, n)?).ok_or_else(overflow)
    }
}

fn dim_at(shape: &[i64], i: usize) -> Result<usize, InferenceError> {
    shape
        .get(i)
        .and_then(|&d| usize::try_from(d).ok())
        .ok_or_else(overflow)
}

/// One sequence's private key/value cache, per layer.
pub(crate) struct KvCache {
    pub len: usize,
    pub keys: Vec<KvTensor>,
    pub values: Vec<KvTensor>,
}

impl KvCache {
    pub(crate) fn empty(layers: usize) -> Self {
        Self {
            len: 0,
            keys: (0..layers).map(|_| KvTensor::Host(Vec::new())).collect(),
            values: (0..layers).map(|_| KvTensor::Host(Vec::new())).collect(),
        }
    }

    fn layer(&self, layer: usize, pick: u8) -> Result<&KvTensor, InferenceError> {
        if pick == 0 {
            self.keys.get(layer)
        } else {
            self.values.get(layer)
        }
        .ok_or_else(overflow)
    }
}

/// One row of a batched run: the new tokens of a sequence and its cache so far.
pub(crate) struct RowInput<'a> {
    pub tokens: &'a [u32],
    pub cache: &'a KvCache,
}

/// One row's results: the logits at its last new position and its extended cache.
pub(crate) struct RowOutput {
    pub logits: Vec<f32>,
    pub cache: KvCache,
}

/// The loaded graph.
pub(crate) struct Model {
    pub meta: ModelMeta,
    /// Microseconds inside `Session::run` (the rest of a run is building and splitting the
    /// batch tensors).
    pub session_micros: u64,
    /// Batched runs that took the previous batched run's output tensors as their past
    /// without copying.
    pub reused_batch_runs: u64,
    session: Session,
    input_names: Vec<String>,
}

fn overflow() -> InferenceError {
    InferenceError::ModelInterface {
        message: "tensor sizes overflow".to_owned(),
    }
}

fn mul(a: usize, b: usize) -> Result<usize, InferenceError> {
    a.checked_mul(b).ok_or_else(overflow)
}

fn add(a: usize, b: usize) -> Result<usize, InferenceError> {
    a.checked_add(b).ok_or_else(overflow)
}

fn sub(a: usize, b: usize) -> Result<usize, InferenceError> {
    a.checked_sub(b).ok_or_else(overflow)
}

fn to_i64(n: usize) -> Result<i64, InferenceError> {
    i64::try_from(n).map_err(|_| overflow())
}

impl Model {
    /// Creates the session from the (already hashed) ONNX bytes and checks its interface.
    pub(crate) fn new(
        meta: ModelMeta,
        onnx: &[u8],
        threads: usize,
        provider: ExecutionProvider,
    ) -> Result<Self, InferenceError> {
        let (env, library) = ort_environment()?;
        let session = build_session(&env, onnx, threads, provider).map_err(|e| {
            if provider == ExecutionProvider::Cpu {
                InferenceError::ort("session", e)
            } else {
                InferenceError::ExecutionProviderUnavailable {
                    provider: provider.as_str(),
                    library: library.path.clone(),
                    message: e.to_string(),
                }
            }
        })?;
        let input_names: Vec<String> = session
            .inputs()
            .iter()
            .map(|i| i.name().to_owned())
            .collect();
        let output_names: Vec<String> = session
            .outputs()
            .iter()
            .map(|o| o.name().to_owned())
            .collect();
        let mut want_in = vec![
            "input_ids".to_owned(),
            "attention_mask".to_owned(),
            "position_ids".to_owned(),
        ];
        let mut want_out = vec!["logits".to_owned()];
        for i in 0..meta.num_layers {
            want_in.push(format!("past_key_values.{i}.key"));
            want_in.push(format!("past_key_values.{i}.value"));
            want_out.push(format!("present.{i}.key"));
            want_out.push(format!("present.{i}.value"));
        }
        for w in &want_in {
            if !input_names.contains(w) {
                return Err(InferenceError::ModelInterface {
                    message: format!("the graph has no input {w}"),
                });
            }
        }
        for n in &input_names {
            if !want_in.contains(n) {
                return Err(InferenceError::ModelInterface {
                    message: format!("the graph has an unexpected input {n}"),
                });
            }
        }
        for w in &want_out {
            if !output_names.contains(w) {
                return Err(InferenceError::ModelInterface {
                    message: format!("the graph has no output {w}"),
                });
            }
        }
        Ok(Self {
            meta,
            session_micros: 0,
            reused_batch_runs: 0,
            session,
            input_names,
        })
    }

    /// One session run over `rows`, which must all bring the same number of new tokens.
    /// Pasts are left-padded to the longest with attention-mask zeros; position ids are each
    /// row's own.
    pub(crate) fn run(&mut self, rows: &[RowInput<'_>]) -> Result<Vec<RowOutput>, InferenceError> {
        let batch = rows.len();
        let seq = rows.first().map_or(0, |r| r.tokens.len());
        if batch == 0 || seq == 0 || rows.iter().any(|r| r.tokens.len() != seq) {
            return Err(InferenceError::ModelInterface {
                message: "a run needs rows with the same, non-zero number of new tokens".to_owned(),
            });
        }
        let layers = self.meta.num_layers;
        let heads = self.meta.num_kv_heads;
        let dim = self.meta.head_dim;
        let vocab = self.meta.vocab_size;
        let past = rows.iter().map(|r| r.cache.len).max().unwrap_or(0);
        let total = add(past, seq)?;

        let mut input_ids = Vec::with_capacity(mul(batch, seq)?);
        let mut position_ids = Vec::with_capacity(mul(batch, seq)?);
        let mut mask = Vec::with_capacity(mul(batch, total)?);
        for r in rows {
            let pad = sub(past, r.cache.len)?;
            for (j, &t) in r.tokens.iter().enumerate() {
                input_ids.push(i64::from(t));
                position_ids.push(to_i64(add(r.cache.len, j)?)?);
            }
            mask.extend(std::iter::repeat_n(0_i64, pad));
            mask.extend(std::iter::repeat_n(1_i64, sub(total, pad)?));
        }
        let b64 = to_i64(batch)?;
        let s64 = to_i64(seq)?;
        let mut inputs: Vec<(Cow<'_, str>, SessionInputValue<'_>)> = Vec::new();
        let t = |e| InferenceError::ort("tensor", e);
        inputs.push((
            "input_ids".into(),
            Tensor::from_array((vec![b64, s64], input_ids))
                .map_err(t)?
                .into(),
        ));
        inputs.push((
            "attention_mask".into(),
            Tensor::from_array((vec![b64, to_i64(total)?], mask))
                .map_err(t)?
                .into(),
        ));
        inputs.push((
            "position_ids".into(),
            Tensor::from_array((vec![b64, s64], position_ids))
                .map_err(t)?
                .into(),
        ));
        let past_shape = vec![b64, to_i64(heads)?, to_i64(past)?, to_i64(dim)?];
        let past_elems = mul(mul(batch, heads)?, mul(past, dim)?)?;
        let single = match rows {
            [only] => Some(only),
            _ => None,
        };
        for layer in 0..layers {
            for (kind, pick) in [("key", 0_u8), ("value", 1_u8)] {
                let name: Cow<'_, str> = format!("past_key_values.{layer}.{kind}").into();
                if let Some(KvTensor::Ort(v)) =
                    single.map(|r| r.cache.layer(layer, pick)).transpose()?
                {
                    // One row: last run's output tensor is this run's input, no copy.
                    inputs.push((name, v.into()));
                    continue;
                }
                if let Some(v) = same_batch(rows, layer, pick, past)? {
                    if layer == 0 && pick == 0 {
                        self.reused_batch_runs = self.reused_batch_runs.saturating_add(1);
                    }
                    // The same rows as the last batched run, in the same order: its output
                    // tensor is this run's input as it is (padding and all), no copy.
                    inputs.push((name, v.into()));
                    continue;
                }
                let mut buf = vec![0.0_f32; past_elems];
                if past > 0 {
                    for (b, r) in rows.iter().enumerate() {
                        let src = r.cache.layer(layer, pick)?;
                        let len = r.cache.len;
                        let pad = sub(past, len)?;
                        for h in 0..heads {
                            let n = mul(len, dim)?;
                            let to = mul(add(mul(add(mul(b, heads)?, h)?, past)?, pad)?, dim)?;
                            let s = src.head(h, len, dim)?;
                            buf.get_mut(to..add(to, n)?)
                                .ok_or_else(overflow)?
                                .copy_from_slice(s);
                        }
                    }
                }
                inputs.push((
                    name,
                    Tensor::from_array((past_shape.clone(), buf))
                        .map_err(t)?
                        .into(),
                ));
            }
        }
        // Keep the graph's input order.
        inputs.sort_by_key(|(n, _)| {
            self.input_names
                .iter()
                .position(|x| x.as_str() == n.as_ref())
                .unwrap_or(usize::MAX)
        });

        let started = std::time::Instant::now();
        let mut outputs = self
            .session
            .run(inputs)
            .map_err(|e| InferenceError::ort("run", e))?;
        self.session_micros = self
            .session_micros
            .saturating_add(u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX));

        let logits_value = outputs
            .get("logits")
            .ok_or_else(|| InferenceError::ModelInterface {
                message: "no logits output".to_owned(),
            })?;
        let (shape, logits) = logits_value
            .try_extract_tensor::<f32>()
            .map_err(|e| InferenceError::ort("logits", e))?;
        let want = [b64, s64, to_i64(vocab)?];
        if shape.as_ref() != want.as_slice() {
            return Err(InferenceError::ModelInterface {
                message: format!("logits shape {shape:?}, expected {want:?}"),
            });
        }
        let mut out: Vec<RowOutput> = Vec::with_capacity(batch);
        for (b, r) in rows.iter().enumerate() {
            let from = mul(add(mul(b, seq)?, sub(seq, 1)?)?, vocab)?;
            let l = logits
                .get(from..add(from, vocab)?)
                .ok_or_else(overflow)?
                .to_vec();
            out.push(RowOutput {
                logits: l,
                cache: KvCache {
                    len: add(r.cache.len, seq)?,
                    keys: Vec::with_capacity(layers),
                    values: Vec::with_capacity(layers),
                },
            });
        }
        let present_shape = [b64, to_i64(heads)?, to_i64(total)?, to_i64(dim)?];
        for layer in 0..layers {
            for (kind, pick) in [("key", 0_u8), ("value", 1_u8)] {
                let name = format!("present.{layer}.{kind}");
                let missing = || InferenceError::ModelInterface {
                    message: format!("no {name} output"),
                };
                {
                    let v = outputs.get(&name).ok_or_else(missing)?;
                    let shape = v
                        .try_extract_tensor::<f32>()
                        .map_err(|e| InferenceError::ort("present", e))?
                        .0;
                    if shape.as_ref() != present_shape.as_slice() {
                        return Err(InferenceError::ModelInterface {
                            message: format!("{name} shape {shape:?}, expected {present_shape:?}"),
                        });
                    }
                }
                let tensor = outputs.remove(&name).ok_or_else(missing)?;
                let tensors: Vec<KvTensor> = if batch == 1 {
                    // One row without padding: keep ONNX Runtime's tensor as it is.
                    vec![KvTensor::Ort(tensor)]
                } else {
                    // Shared by the rows; each keeps its own padding offset.
                    let shared = Arc::new(tensor);
                    rows.iter()
                        .enumerate()
                        .map(|(b, r)| {
                            Ok(KvTensor::Batch {
                                tensor: Arc::clone(&shared),
                                row: b,
                                pad: sub(past, r.cache.len)?,
                            })
                        })
                        .collect::<Result<_, InferenceError>>()?
                };
                for (o, tensor) in out.iter_mut().zip(tensors) {
                    if pick == 0 {
                        o.cache.keys.push(tensor);
                    } else {
                        o.cache.values.push(tensor);
                    }
                }
            }
        }
        Ok(out)
    }
}

/// The shared output tensor of the previous batched run when `rows` are exactly its rows, in
/// order, each one token further (so its padded length is this run's `past`).
fn same_batch<'a>(
    rows: &[RowInput<'a>],
    layer: usize,
    pick: u8,
    past: usize,
) -> Result<Option<&'a DynValue>, InferenceError> {
    let mut shared: Option<&'a Arc<DynValue>> = None;
    if rows.len() < 2 {
        return Ok(None);
    }
    for (b, r) in rows.iter().enumerate() {
        match r.cache.layer(layer, pick)? {
            KvTensor::Batch { tensor, row, pad }
                if *row == b && add(*pad, r.cache.len)? == past =>
            {
                match shared {
                    None => shared = Some(tensor),
                    Some(s) if Arc::ptr_eq(s, tensor) => {}
                    Some(_) => return Ok(None),
                }
            }
            _ => return Ok(None),
        }
    }
    let Some(tensor) = shared else {
        return Ok(None);
    };
    let shape = tensor
        .try_extract_tensor::<f32>()
        .map_err(|e| InferenceError::ort("cache", e))?
        .0;
    if dim_at(shape, 0)? != rows.len() || dim_at(shape, 2)? != past {
        return Ok(None);
    }
    Ok(Some(tensor.as_ref()))
}

/// Reads and checks `model.json`, `model.onnx` (hashed as loaded: the bytes measured are the
/// bytes run) and `tokenizer.json`.
pub(crate) struct ModelFiles {
    pub meta: ModelMeta,
    pub onnx: Vec<u8>,
    pub onnx_sha256: String,
    pub tokenizer: Vec<u8>,
    pub tokenizer_sha256: String,
}

impl ModelFiles {
    pub(crate) fn read(dir: &Path) -> Result<Self, InferenceError> {
        let meta = ModelMeta::parse(&read_limited(&dir.join("model.json"), MAX_METADATA_BYTES)?)?;
        let onnx = read_limited(&dir.join("model.onnx"), MAX_ONNX_BYTES)?;
        let onnx_sha256 = sha256_hex(&onnx);
        if !onnx_sha256.eq_ignore_ascii_case(&meta.onnx_sha256) {
            return Err(InferenceError::DigestMismatch {
                file: "model.onnx",
                expected: meta.onnx_sha256.clone(),
                actual: onnx_sha256,
            });
        }
        let tokenizer = read_limited(&dir.join("tokenizer.json"), MAX_TOKENIZER_BYTES)?;
        let tokenizer_sha256 = sha256_hex(&tokenizer);
        if !tokenizer_sha256.eq_ignore_ascii_case(&meta.tokenizer_sha256) {
            return Err(InferenceError::DigestMismatch {
                file: "tokenizer.json",
                expected: meta.tokenizer_sha256.clone(),
                actual: tokenizer_sha256,
            });
        }
        Ok(Self {
            meta,
            onnx,
            onnx_sha256,
            tokenizer,
            tokenizer_sha256,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_ort_library_is_a_clear_error_naming_scripts_setup() {
        let path = Path::new("/nonexistent/libonnxruntime.so.1.31.1");
        let err = build_env(path).err().unwrap();
        assert_eq!(
            err,
            InferenceError::OrtLibraryMissing {
                path: path.to_path_buf()
            }
        );
        assert!(err.to_string().contains("scripts/setup"));
    }

    #[test]
    fn a_file_that_is_not_the_ort_library_is_refused() {
        let path = workspace_root().join("Cargo.toml");
        match build_env(&path) {
            Err(InferenceError::OrtLibraryLoad { path: p, .. }) => assert_eq!(p, path),
            other => panic!("expected OrtLibraryLoad, got {:?}", other.err()),
        }
    }

    #[test]
    fn model_json_out_of_range_values_are_refused() {
        let ok = r#"{"name":"m","num_layers":2,"num_kv_heads":2,"head_dim":8,"vocab_size":10,"context_length":16,"eos_token_ids":[9],"chat_template":null,"onnx_sha256":"","tokenizer_sha256":""}"#;
        assert!(ModelMeta::parse(ok.as_bytes()).is_ok());
        for (from, to) in [
            ("\"num_layers\":2", "\"num_layers\":0"),
            ("\"eos_token_ids\":[9]", "\"eos_token_ids\":[10]"),
            ("\"context_length\":16", "\"context_length\":1"),
            ("\"vocab_size\":10", "\"vocab_size\":-1"),
        ] {
            let bad = ok.replace(from, to);
            assert!(
                matches!(
                    ModelMeta::parse(bad.as_bytes()),
                    Err(InferenceError::ModelMetadata { .. })
                ),
                "{to}"
            );
        }
    }
}
