//! `cocoon-enclave`: the enclave's command line (the binary is a thin wrapper over [`run`]).

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::str::FromStr;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use cocoon_attestation::bodies::RequestOpener;
use cocoon_attestation::claims::ModelIdentity;
use cocoon_attestation::policy::Policy;
use cocoon_attestation::ratls::{RaTlsVerifier, StaticCollateral, VerifierConfig};
use cocoon_attestation::tdx::Collateral;

use std::time::Duration;

use crate::config::{EnclaveConfig, HpkeMode};
use crate::error::AttestError;
use crate::identity::{IdentityConfig, KeyAlgorithm, DEFAULT_LIFETIME_SECS, MAX_LIFETIME_SECS};
use crate::inference::{EngineConfig, ExecutionProvider};
use crate::openai::{self, ApiConfig, OpenAi};
use crate::rotation::{initial, spawn_rotation, RotationConfig};
use crate::select::{select, Backend, HostPaths, SelectOptions};
use crate::server::{bind, Enclave, Router, ServerOptions};
use crate::Attester;

#[derive(Debug, Parser)]
#[command(
    name = "cocoon-enclave",
    version,
    about = "The cocoon enclave: attested TLS (RA-TLS) server"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve RA-TLS: GET /v1/attestation?nonce=HEX and GET /v1/identity, and with a model the
    /// OpenAI-compatible API (docs/api.md).
    Serve(Box<ServeArgs>),
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// TOML configuration file (docs/api.md); flags given on the command line override it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address to listen on, e.g. 0.0.0.0:8443 (required here or in the file).
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Evidence source: auto, tsm, sev-guest, tdx-guest (sim-tdx, sim-snp with feature `sim`)
    /// [default: auto].
    #[arg(long)]
    attester: Option<String>,
    /// GPU evidence bound into the identity: off, or sim (one simulated H100 attesting with the
    /// simulated NVIDIA root; feature `sim`) [default: off].
    #[arg(long, value_name = "MODE")]
    gpu: Option<String>,
    /// Certificate lifetime in seconds (at most 86400); renewed after two thirds of it
    /// [default: 86400].
    #[arg(long, value_name = "SECS")]
    cert_lifetime: Option<u64>,
    /// Require clients to present RA-TLS certificates of their own, checked against --policy.
    #[arg(long, requires = "policy")]
    mutual: bool,
    /// Policy TOML for clients' evidence (mutual mode).
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// DCAP collateral JSON for clients' TDX quotes (mutual mode; in a `sim` build with a
    /// simulated attester, the simulated collateral when absent).
    #[arg(long, value_name = "FILE")]
    collateral: Option<PathBuf>,
    /// BLAKE3 digest of the served model (hex, 32 bytes), put in the claims.
    #[arg(long, value_name = "HEX", value_parser = hex32)]
    model_blake3: Option<[u8; 32]>,
    /// dm-verity root hash of the model volume (hex, 32 bytes), put in the claims.
    #[arg(long, value_name = "HEX", value_parser = hex32)]
    dm_verity_root: Option<[u8; 32]>,
    /// Digest of the measured configuration (hex, 32 bytes), put in the claims.
    #[arg(long, value_name = "HEX", value_parser = hex32)]
    config_digest: Option<[u8; 32]>,
    /// The TLS key type: ecdsa-p256 or ed25519 [default: ecdsa-p256].
    #[arg(long, value_name = "TYPE", value_parser = key_type)]
    key: Option<KeyAlgorithm>,
    /// Subject alternative names of the certificate (informational) [default: localhost].
    #[arg(long = "san", value_name = "NAME")]
    subject_alt_names: Vec<String>,
    /// Model directory (model.onnx, tokenizer.json, model.json): serves the OpenAI API.
    #[arg(long, value_name = "DIR")]
    model_dir: Option<PathBuf>,
    /// The model id of the API (default: model.json's name).
    #[arg(long, value_name = "ID")]
    model_id: Option<String>,
    /// ONNX Runtime intra-op threads [default: 2].
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// Where inference runs: cpu, or cuda (the CUDA build of ONNX Runtime and an attested GPU:
    /// --gpu must not be off) [default: cpu]. Part of the claims.
    #[arg(long, value_name = "PROVIDER")]
    execution_provider: Option<String>,
    /// Sequences decoded at once [default: 8].
    #[arg(long, value_name = "N")]
    max_sequences: Option<usize>,
    /// Requests waiting for a slot; 429 beyond [default: 64].
    #[arg(long, value_name = "N")]
    queue_capacity: Option<usize>,
    /// HPKE-sealed request bodies (docs/hpke.md): optional, required or off [default:
    /// optional]. Unless off, a fresh key per boot is published in the claims.
    #[arg(long, value_name = "MODE", value_parser = hpke_mode)]
    hpke: Option<HpkeMode>,
}

/// Runs the CLI; returns 0 after a clean shutdown, 2 on a startup error.
pub fn run<I: IntoIterator<Item = OsString>>(args: I) -> ExitCode {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    let Command::Serve(args) = cli.command;
    match start(*args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("cocoon-enclave: {message}");
            ExitCode::from(2)
        }
    }
}

/// Everything `serve` runs with: the file's values, overridden by the flags, defaults filled.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub listen: SocketAddr,
    pub attester: String,
    /// `off` or `sim`.
    pub gpu: String,
    pub cert_lifetime: u64,
    pub key: KeyAlgorithm,
    pub subject_alt_names: Vec<String>,
    pub mutual: bool,
    pub policy: Option<PathBuf>,
    pub collateral: Option<PathBuf>,
    pub model_blake3: Option<[u8; 32]>,
    pub dm_verity_root: Option<[u8; 32]>,
    pub config_digest: Option<[u8; 32]>,
    /// `None`: no model, only the attestation routes.
    pub engine: Option<EngineConfig>,
    pub api: ApiConfig,
    pub server: ServerOptions,
    pub log_filter: String,
    pub log_json: bool,
}

fn hex32_field(key: &str, value: Option<&String>) -> Result<Option<[u8; 32]>, String> {
    value
        .map(|v| hex32(v).map_err(|e| format!("{key}: {e}")))
        .transpose()
}

/// Merges the configuration file and the flags.
fn settings(args: ServeArgs) -> Result<Settings, String> {
    let file = match &args.config {
        Some(path) => EnclaveConfig::load(path).map_err(|e| format!("config: {e}"))?,
        None => EnclaveConfig::default(),
    };
    let listen = args
        .listen
        .or(file.listen)
        .ok_or("no listen address: give --listen or `listen` in the --config file")?;
    let a = &file.attestation;
    let key = match (args.key, a.key.as_deref()) {
        (Some(key), _) => key,
        (None, Some(name)) => key_type(name).map_err(|e| format!("attestation.key: {e}"))?,
        (None, None) => KeyAlgorithm::EcdsaP256,
    };
    let subject_alt_names = if !args.subject_alt_names.is_empty() {
        args.subject_alt_names
    } else {
        a.subject_alt_names
            .clone()
            .unwrap_or_else(|| vec!["localhost".to_owned()])
    };
    let mutual = args.mutual || file.tls.mutual.unwrap_or(false);
    let policy = args.policy.or(file.tls.policy.clone());
    if mutual && policy.is_none() {
        return Err("mutual mode requires a policy (--policy or [tls] policy)".into());
    }
    let l = &file.limits;
    let execution_provider = match args
        .execution_provider
        .as_deref()
        .or(file.model.execution_provider.as_deref())
        .unwrap_or("cpu")
    {
        "cpu" => ExecutionProvider::Cpu,
        "cuda" => ExecutionProvider::Cuda,
        other => return Err(format!("--execution-provider {other:?}: cpu or cuda")),
    };
    let model_dir = args.model_dir.or(file.model.dir.clone());
    let defaults = EngineConfig::new(PathBuf::new());
    let engine = model_dir.map(|dir| EngineConfig {
        model_dir: dir,
        threads: args
            .threads
            .or(file.model.threads)
            .unwrap_or(defaults.threads),
        max_sequences: args
            .max_sequences
            .or(l.max_sequences)
            .unwrap_or(defaults.max_sequences),
        queue_capacity: args
            .queue_capacity
            .or(l.queue_capacity)
            .unwrap_or(defaults.queue_capacity),
        max_context: file.model.max_context,
        execution_provider,
    });
    let api_defaults = ApiConfig::default();
    let api = ApiConfig {
        model_id: args.model_id.or(file.model.id.clone()),
        aliases: file.model.aliases.clone(),
        max_body_bytes: l.max_body_bytes.unwrap_or(api_defaults.max_body_bytes),
        body_timeout: api_defaults.body_timeout,
        request_timeout: l
            .request_timeout_secs
            .map_or(api_defaults.request_timeout, Duration::from_secs),
        default_max_tokens: l
            .default_max_tokens
            .unwrap_or(api_defaults.default_max_tokens),
        max_tokens_limit: l.max_tokens_limit,
        retry_after_secs: l.retry_after_secs.unwrap_or(api_defaults.retry_after_secs),
        max_concurrent_bodies: l
            .max_concurrent_bodies
            .unwrap_or(api_defaults.max_concurrent_bodies),
        hpke_mode: args.hpke.or(file.hpke.mode).unwrap_or_default(),
        replay_window_secs: file
            .hpke
            .replay_window_secs
            .unwrap_or(api_defaults.replay_window_secs),
        replay_capacity: file
            .hpke
            .replay_capacity
            .unwrap_or(api_defaults.replay_capacity),
    };
    let server_defaults = ServerOptions::default();
    let server = ServerOptions {
        shutdown_grace: l
            .shutdown_grace_secs
            .map_or(Duration::from_secs(30), Duration::from_secs),
        max_connections: l.max_connections.unwrap_or(server_defaults.max_connections),
        ..server_defaults
    };
    Ok(Settings {
        listen,
        attester: args
            .attester
            .or(a.attester.clone())
            .unwrap_or_else(|| "auto".to_owned()),
        gpu: args
            .gpu
            .or(a.gpu.clone())
            .unwrap_or_else(|| "off".to_owned()),
        cert_lifetime: args
            .cert_lifetime
            .or(a.cert_lifetime_secs)
            .unwrap_or(DEFAULT_LIFETIME_SECS),
        key,
        subject_alt_names,
        mutual,
        policy,
        collateral: args.collateral.or(file.tls.collateral.clone()),
        model_blake3: args.model_blake3.or(hex32_field(
            "attestation.model_blake3",
            a.model_blake3.as_ref(),
        )?),
        dm_verity_root: args.dm_verity_root.or(hex32_field(
            "attestation.dm_verity_root",
            a.dm_verity_root.as_ref(),
        )?),
        config_digest: args.config_digest.or(hex32_field(
            "attestation.config_digest",
            a.config_digest.as_ref(),
        )?),
        engine,
        api,
        server,
        log_filter: file.log.filter.clone().unwrap_or_else(|| "info".to_owned()),
        log_json: file.log.format.as_deref() == Some("json"),
    })
}

/// Structured logs to stderr: `RUST_LOG` if set, else the file's filter.
fn init_logging(settings: &Settings) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.log_filter))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if settings.log_json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

fn start(args: ServeArgs) -> Result<(), String> {
    let settings = settings(args)?;
    init_logging(&settings);
    let Settings {
        listen,
        attester,
        gpu,
        cert_lifetime,
        mutual,
        policy,
        collateral,
        model_blake3,
        dm_verity_root,
        config_digest,
        subject_alt_names,
        key,
        engine,
        api,
        server: server_options,
        ..
    } = settings;
    if cert_lifetime == 0 || cert_lifetime > MAX_LIFETIME_SECS {
        return Err(format!(
            "--cert-lifetime must be 1..={MAX_LIFETIME_SECS} seconds"
        ));
    }
    let backend = Backend::from_str(&attester).map_err(|e| e.to_string())?;
    let attester: Arc<dyn Attester> = Arc::from(
        select(backend, &HostPaths::default(), &SelectOptions::default())
            .map_err(|e| format!("attester: {e}"))?,
    );
    let provider = engine
        .as_ref()
        .map_or(ExecutionProvider::Cpu, |e| e.execution_provider);
    let attester =
        crate::gpu::with_gpu(attester, &gpu, provider).map_err(|e| format!("--gpu: {e}"))?;
    let client_verifier = if mutual {
        let policy = load_policy(policy.as_deref())?;
        let collateral = match collateral.as_deref() {
            Some(path) => Some(load_collateral(path)?),
            None => simulated_collateral(backend)?,
        };
        Some(Arc::new(verifier(policy, collateral)?))
    } else {
        None
    };
    // The claims name the served model: its digest is computed from the model directory; a
    // digest the operator gives must equal it (the enclave never claims a model it does not run).
    let model_blake3 = match engine.as_ref() {
        Some(engine) => {
            let computed = crate::inference::model_blake3(&engine.model_dir)
                .map_err(|e| format!("model digest: {e}"))?;
            if let Some(pinned) = model_blake3.filter(|pinned| *pinned != computed) {
                return Err(format!(
                    "--model-blake3 {} differs from the model directory's digest {}",
                    hex::encode(pinned),
                    hex::encode(computed)
                ));
            }
            Some(computed)
        }
        None => model_blake3,
    };
    // The API's state (and its per-boot HPKE key) exists before the first certificate, whose
    // claims publish the key; rotation re-uses `identity`, so the key lasts the process's life.
    let hpke_mode = api.hpke_mode;
    let api = match engine.as_ref() {
        Some(_) => {
            let opener = match hpke_mode {
                HpkeMode::Off => None,
                HpkeMode::Optional | HpkeMode::Required => Some(
                    RequestOpener::generate()
                        .map_err(|e| format!("generating the HPKE key: {}", e.message()))?,
                ),
            };
            Some(OpenAi::with_opener(api, opener))
        }
        None => None,
    };
    let mut identity = IdentityConfig {
        key_algorithm: key,
        lifetime_secs: cert_lifetime,
        model: ModelIdentity {
            blake3: model_blake3.unwrap_or([0; 32]),
            dm_verity_root,
        },
        config_digest: config_digest.unwrap_or([0; 32]),
        subject_alt_names,
        backdate_secs: crate::identity::DEFAULT_BACKDATE_SECS
            .min(MAX_LIFETIME_SECS.saturating_sub(cert_lifetime)),
        ..IdentityConfig::default()
    };
    identity.hpke_public_key = api
        .as_ref()
        .and_then(|state| state.hpke_public_key().cloned());
    let resolver = initial(attester.as_ref(), &identity)
        .map_err(|e| format!("issuing the first certificate: {e}"))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting the runtime: {e}"))?;
    runtime.block_on(async move {
        let rotation = spawn_rotation(
            Arc::clone(&resolver),
            Arc::clone(&attester),
            identity,
            RotationConfig::default(),
        );
        let current = resolver.current();
        let enclave = Enclave {
            attester,
            resolver,
            client_verifier,
        };
        let router = match &api {
            Some(state) => openai::mount(Router::new(), Arc::clone(state)),
            None => Router::new(),
        };
        let server = bind(listen, enclave, router, server_options)
            .await
            .map_err(|e: AttestError| e.to_string())?;
        println!(
            "cocoon-enclave: listening on {} ({}, key sha256:{}, {} mode)",
            server.local_addr(),
            current.claims().platform.as_str(),
            hex::encode(current.spki_sha256()),
            if mutual { "mutual" } else { "server-auth" }
        );
        tracing::info!(
            addr = %server.local_addr(),
            mutual,
            hpke = %if api.is_some() { hpke_mode.as_str() } else { "off" },
            "listening"
        );
        if let (Some(state), Some(engine)) = (&api, engine) {
            let state = Arc::clone(state);
            tokio::spawn(async move {
                let _ = state.load(engine).await;
            });
        }
        let stop = server.shutdown_sender();
        let draining = api.clone();
        tokio::spawn(async move {
            shutdown_signal().await;
            tracing::info!("shutting down: draining requests in flight");
            if let Some(state) = &draining {
                state.begin_drain();
            }
            let _ = stop.send(true);
        });
        server.wait().await;
        if let Some(state) = &api {
            state.drain().await;
        }
        tracing::info!("stopped");
        rotation.abort();
        Ok(())
    })
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

fn verifier(policy: Policy, collateral: Option<Collateral>) -> Result<RaTlsVerifier, String> {
    let mut config = VerifierConfig::new(policy);
    if let Some(collateral) = collateral {
        let source = StaticCollateral::new(vec![collateral])
            .map_err(|e| format!("collateral: {}", e.message()))?;
        config.collateral = Some(Arc::new(source));
    }
    RaTlsVerifier::new(config).map_err(|e| format!("verifier: {}", e.message()))
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>, String> {
    let bytes =
        std::fs::read(path).map_err(|e| format!("cannot read {what} {}: {e}", path.display()))?;
    if bytes.len() > 16 * 1024 * 1024 {
        return Err(format!("{what} {} is larger than 16 MiB", path.display()));
    }
    Ok(bytes)
}

fn load_policy(path: Option<&Path>) -> Result<Policy, String> {
    let Some(path) = path else {
        return Ok(Policy::default());
    };
    let text = String::from_utf8(read(path, "policy")?)
        .map_err(|_| format!("policy {} is not UTF-8", path.display()))?;
    Policy::from_toml(&text).map_err(|e| format!("policy {}: {}", path.display(), e.message()))
}

fn load_collateral(path: &Path) -> Result<Collateral, String> {
    Collateral::from_json(&read(path, "collateral")?)
        .map_err(|e| format!("collateral {}: {}", path.display(), e.message()))
}

fn hpke_mode(name: &str) -> Result<HpkeMode, String> {
    name.parse()
}

fn key_type(name: &str) -> Result<KeyAlgorithm, String> {
    match name {
        "ecdsa-p256" | "p256" => Ok(KeyAlgorithm::EcdsaP256),
        "ed25519" => Ok(KeyAlgorithm::Ed25519),
        other => Err(format!(
            "unknown key type {other:?} (ecdsa-p256 or ed25519)"
        )),
    }
}

fn hex32(text: &str) -> Result<[u8; 32], String> {
    let bytes = hex::decode(text).map_err(|e| format!("not hex: {e}"))?;
    <[u8; 32]>::try_from(bytes.as_slice())
        .map_err(|_| format!("{} bytes, expected 32", bytes.len()))
}

/// The simulated TEE's collateral when the enclave itself is simulated (its peers then are too).
#[cfg(feature = "sim")]
fn simulated_collateral(backend: Backend) -> Result<Option<Collateral>, String> {
    if !matches!(backend, Backend::SimTdx | Backend::SimSnp) {
        return Ok(None);
    }
    cocoon_attestation::sim::tdx::SimTdx::new()
        .and_then(|sim| sim.collateral())
        .map(Some)
        .map_err(|e| format!("simulated collateral: {}", e.message()))
}

#[cfg(not(feature = "sim"))]
fn simulated_collateral(_: Backend) -> Result<Option<Collateral>, String> {
    Ok(None)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Settings, String> {
        let cli =
            Cli::try_parse_from(std::iter::once("cocoon-enclave").chain(args.iter().copied()))
                .map_err(|e| e.to_string())?;
        let Command::Serve(args) = cli.command;
        settings(*args)
    }

    #[test]
    fn flags_override_the_file_and_defaults_fill_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("enclave.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:1\"\n[model]\ndir = \"m\"\nthreads = 3\n\
             [limits]\nmax_sequences = 5\nqueue_capacity = 7\nrequest_timeout_secs = 9\n\
             [attestation]\nattester = \"tsm\"\nkey = \"ed25519\"\n",
        )
        .unwrap();
        let s = parse(&[
            "serve",
            "--config",
            path.to_str().unwrap(),
            "--listen",
            "127.0.0.1:2",
            "--max-sequences",
            "4",
            "--attester",
            "auto",
        ])
        .unwrap();
        assert_eq!(s.listen, "127.0.0.1:2".parse().unwrap());
        assert_eq!(s.attester, "auto");
        assert_eq!(s.key, KeyAlgorithm::Ed25519);
        assert_eq!(s.cert_lifetime, DEFAULT_LIFETIME_SECS);
        assert_eq!(s.subject_alt_names, vec!["localhost".to_owned()]);
        let engine = s.engine.unwrap();
        assert_eq!(engine.model_dir, dir.path().join("m"));
        assert_eq!(engine.threads, 3);
        assert_eq!(engine.max_sequences, 4);
        assert_eq!(engine.queue_capacity, 7);
        assert_eq!(s.api.request_timeout, Duration::from_secs(9));
        assert_eq!(s.api.max_body_bytes, ApiConfig::default().max_body_bytes);
        assert_eq!(s.server.shutdown_grace, Duration::from_secs(30));
        assert!(!s.mutual);
    }

    #[test]
    fn hpke_defaults_to_optional_and_the_flag_overrides_the_file() {
        let s = parse(&["serve", "--listen", "127.0.0.1:0"]).unwrap();
        assert_eq!(s.api.hpke_mode, HpkeMode::Optional);
        assert_eq!(s.api.replay_window_secs, 300);
        assert_eq!(s.api.replay_capacity, 262_144);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("enclave.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:1\"\n[hpke]\nmode = \"off\"\nreplay_window_secs = 30\nreplay_capacity = 5\n",
        )
        .unwrap();
        let file = parse(&["serve", "--config", path.to_str().unwrap()]).unwrap();
        assert_eq!(file.api.hpke_mode, HpkeMode::Off);
        assert_eq!(file.api.replay_window_secs, 30);
        assert_eq!(file.api.replay_capacity, 5);
        let flag = parse(&[
            "serve",
            "--config",
            path.to_str().unwrap(),
            "--hpke",
            "required",
        ])
        .unwrap();
        assert_eq!(flag.api.hpke_mode, HpkeMode::Required);
        let err = parse(&["serve", "--listen", "127.0.0.1:0", "--hpke", "sometimes"]).unwrap_err();
        assert!(err.contains("sometimes"), "{err}");
    }

    #[test]
    fn without_a_model_only_attestation_is_served() {
        let s = parse(&["serve", "--listen", "127.0.0.1:0"]).unwrap();
        assert_eq!(s.engine, None);
        assert_eq!(s.attester, "auto");
    }

    #[test]
    fn a_bad_digest_in_the_file_names_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("enclave.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:1\"\n[attestation]\nconfig_digest = \"abcd\"\n",
        )
        .unwrap();
        let err = parse(&["serve", "--config", path.to_str().unwrap()]).unwrap_err();
        assert!(err.contains("attestation.config_digest"), "{err}");
    }
}
