//! `cocoon-enclave`: the enclave's command line (the binary is a thin wrapper over [`run`]).

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::str::FromStr;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use cocoon_attestation::claims::ModelIdentity;
use cocoon_attestation::policy::Policy;
use cocoon_attestation::ratls::{RaTlsVerifier, StaticCollateral, VerifierConfig};
use cocoon_attestation::tdx::Collateral;

use crate::error::AttestError;
use crate::identity::{IdentityConfig, KeyAlgorithm, DEFAULT_LIFETIME_SECS, MAX_LIFETIME_SECS};
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
    /// Serve RA-TLS: GET /v1/attestation?nonce=HEX and GET /v1/identity.
    Serve {
        /// Address to listen on, e.g. 0.0.0.0:8443.
        #[arg(long, value_name = "ADDR")]
        listen: SocketAddr,
        /// Evidence source: auto, tsm, sev-guest, tdx-guest (sim-tdx, sim-snp with feature `sim`).
        #[arg(long, default_value = "auto")]
        attester: String,
        /// Certificate lifetime in seconds (at most 86400); renewed after two thirds of it.
        #[arg(long, value_name = "SECS", default_value_t = DEFAULT_LIFETIME_SECS)]
        cert_lifetime: u64,
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
        /// The TLS key type: ecdsa-p256 or ed25519.
        #[arg(long, value_name = "TYPE", default_value = "ecdsa-p256", value_parser = key_type)]
        key: KeyAlgorithm,
        /// Subject alternative names of the certificate (informational).
        #[arg(long = "san", value_name = "NAME", default_value = "localhost")]
        subject_alt_names: Vec<String>,
    },
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
    match start(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("cocoon-enclave: {message}");
            ExitCode::from(2)
        }
    }
}

fn start(command: Command) -> Result<(), String> {
    let Command::Serve {
        listen,
        attester,
        cert_lifetime,
        mutual,
        policy,
        collateral,
        model_blake3,
        dm_verity_root,
        config_digest,
        subject_alt_names,
        key,
    } = command;
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
    let identity = IdentityConfig {
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
        let server = bind(listen, enclave, Router::new(), ServerOptions::default())
            .await
            .map_err(|e: AttestError| e.to_string())?;
        println!(
            "cocoon-enclave: listening on {} ({}, key sha256:{}, {} mode)",
            server.local_addr(),
            current.claims().platform.as_str(),
            hex::encode(current.spki_sha256()),
            if mutual { "mutual" } else { "server-auth" }
        );
        let stop = server.shutdown_sender();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                let _ = stop.send(true);
            }
        });
        server.wait().await;
        rotation.abort();
        Ok(())
    })
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
