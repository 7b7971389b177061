//! The auditor's verifier CLI. Exit codes: 0 accepted, 1 rejected, 2 bad input or usage.
//!
//! The binary is a thin wrapper over [`run`]; the checks themselves are in
//! [`cocoon_attestation`]. This crate only reads files, picks the time, and renders reports.

pub mod bench;
pub mod cert;
pub mod endpoint;
pub mod eventlog;
pub mod gpu;
#[cfg(feature = "sim")]
pub mod handshake_bench;
pub mod measure;
pub mod measure_ids;
pub mod measure_verity;
pub mod report;
pub mod snp;
pub mod tdx;

use clap::{Args, Parser, Subcommand};
use cocoon_attestation::encoding::{der_or_pem_certificate, pem_certificates};
use cocoon_attestation::policy::Policy;
use cocoon_attestation::snp::SnpVerifier;
use cocoon_attestation::tdx::{Collateral, TdxVerifier};
use cocoon_attestation::Subject;
use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Exit code of an accepted verification.
pub const EXIT_ACCEPTED: u8 = 0;
/// Exit code of rejected evidence (verification error or policy failure).
pub const EXIT_REJECTED: u8 = 1;
/// Exit code when the check could not run (usage, unreadable or malformed input files).
pub const EXIT_BAD_INPUT: u8 = 2;

/// Largest file read; evidence and collateral are far smaller.
const MAX_FILE: u64 = 16 * 1024 * 1024;

const EXIT_CODES: &str = "\
Exit codes:
  0  accepted: the evidence verified to a vendor root and the policy holds
  1  rejected: the evidence was checked and failed (it does not parse, a signature, chain,
     CRL, collateral or TCB check fails, or a policy check fails); every reason is printed
  2  the check could not run: usage error, unreadable file, or a malformed policy,
     collateral or certificate file (the input the auditor supplies, not the evidence)

QUOTE and REPORT may be raw binary or hex text (whitespace and a 0x prefix allowed).
Without --policy the default policy applies (written out in docs/examples/default.toml):
authentic evidence, TCB not Revoked, no debug, SEPT_VE_DISABLE set on TDX, VMPL 0 and no
migration agent on SEV-SNP, no simulated evidence.";

#[derive(Debug, Parser)]
#[command(
    name = "cocoon-verify",
    version,
    about = "Verify Intel TDX/SGX quotes and AMD SEV-SNP reports against vendor roots and a policy",
    after_help = EXIT_CODES
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Verify an Intel DCAP quote (TDX v4/v5 or SGX v3) with its collateral.
    #[command(after_help = EXIT_CODES)]
    Tdx(TdxArgs),
    /// Verify an AMD SEV-SNP attestation report with its VCEK or VLEK.
    #[command(after_help = EXIT_CODES)]
    Snp(SnpArgs),
    /// Verify an RA-TLS certificate (PEM or DER): evidence, claims, binding, times, policy.
    #[command(after_help = EXIT_CODES)]
    Cert(CertArgs),
    /// Verify NVIDIA GPU evidence (SPDM GET_MEASUREMENTS) with its device certificate chain.
    #[command(after_help = EXIT_CODES)]
    Gpu(gpu::GpuArgs),
    /// Connect to a live RA-TLS server and verify it (and, with --nonce, its freshness).
    #[command(after_help = EXIT_CODES)]
    Endpoint(EndpointArgs),
    /// Measure verification throughput.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Parse a TDX event log (CCEL), replay it to RTMR0-3, compare with a quote's RTMRs.
    Eventlog(eventlog::EventlogArgs),
    /// Recompute reference values from image files.
    #[command(subcommand)]
    Measure(MeasureCommand),
}

#[derive(Debug, Subcommand)]
enum MeasureCommand {
    /// dm-verity root hash of an image (veritysetup format 1, sha256, 4096/4096).
    Verity(measure_verity::VerityArgs),
    /// Git SHA-256 tree hash of a configuration folder (COCOON's spec.tree).
    Config(measure_ids::ConfigArgs),
    /// The model identity (model_blake3) of a model directory.
    Model(measure_ids::ModelArgs),
    /// SEV-SNP launch digest and TDX MRTD/RTMRs (`measure snp`, `measure tdx`).
    #[command(flatten)]
    Launch(measure::MeasureCommand),
}

#[derive(Debug, Args)]
struct CertArgs {
    /// The RA-TLS certificate (PEM or DER).
    #[arg(value_name = "CERT")]
    cert: PathBuf,
    /// Policy TOML (default: the built-in default policy).
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Collateral JSON for TDX evidence (dcap-qvl QuoteCollateralV3 layout).
    #[arg(long, value_name = "FILE")]
    collateral: Option<PathBuf>,
    /// Verification time in unix seconds (default: now).
    #[arg(long, value_name = "UNIX_SECONDS", allow_negative_numbers = true)]
    at: Option<i64>,
    /// Also trust the simulated TEE's test roots (builds with feature `sim` only); without
    /// --collateral, TDX evidence is checked with the simulated collateral.
    #[cfg(feature = "sim")]
    #[arg(long)]
    trust_simulated_root: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct EndpointArgs {
    /// The server, HOST:PORT.
    #[arg(value_name = "HOST:PORT")]
    address: String,
    /// Policy TOML (default: the built-in default policy).
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Collateral JSON for TDX evidence (dcap-qvl QuoteCollateralV3 layout).
    #[arg(long, value_name = "FILE")]
    collateral: Option<PathBuf>,
    /// Also ask for a fresh attestation binding a random nonce (GET /v1/attestation).
    #[arg(long)]
    nonce: bool,
    /// Deadline for each network step, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=300))]
    timeout: u64,
    /// Also trust the simulated TEE's test roots (builds with feature `sim` only); without
    /// --collateral, TDX evidence is checked with the simulated collateral.
    #[cfg(feature = "sim")]
    #[arg(long)]
    trust_simulated_root: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct TdxArgs {
    /// The quote (raw binary or hex text).
    #[arg(value_name = "QUOTE")]
    quote: PathBuf,
    /// Collateral JSON (dcap-qvl QuoteCollateralV3 layout).
    #[arg(long, value_name = "FILE")]
    collateral: PathBuf,
    /// Verification time in unix seconds (default: now).
    #[arg(long, value_name = "UNIX_SECONDS", allow_negative_numbers = true)]
    at: Option<i64>,
    /// Policy TOML (default: the built-in default policy).
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Also trust the simulated TEE's test root (builds with feature `sim` only). Its evidence
    /// is reported as SIMULATED and only a policy with `allow_simulated = true` accepts it.
    #[cfg(feature = "sim")]
    #[arg(long)]
    trust_simulated_root: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct SnpArgs {
    /// The attestation report (raw binary or hex text).
    report: PathBuf,
    /// The VCEK or VLEK certificate that signed the report (DER or PEM).
    #[arg(long, visible_alias = "vlek", value_name = "CERT")]
    vcek: PathBuf,
    /// PEM bundle with the ASK/ASVK (and ARK); default: the embedded AMD roots.
    #[arg(long, value_name = "PEM")]
    chain: Option<PathBuf>,
    /// Verification time in unix seconds (default: now).
    #[arg(long, value_name = "UNIX_SECONDS", allow_negative_numbers = true)]
    at: Option<i64>,
    /// Policy TOML (default: the built-in default policy).
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Also trust the simulated TEE's test root (builds with feature `sim` only). Its evidence
    /// is reported as SIMULATED and only a policy with `allow_simulated = true` accepts it.
    #[cfg(feature = "sim")]
    #[arg(long)]
    trust_simulated_root: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// TDX/SGX quote verifications per second, cold (empty cache) and warm (cache filled).
    Tdx {
        /// The quote (raw binary or hex text).
        quote: PathBuf,
        /// Collateral JSON (dcap-qvl QuoteCollateralV3 layout).
        #[arg(long, value_name = "FILE")]
        collateral: PathBuf,
        /// Verification time in unix seconds (default: now).
        #[arg(long, value_name = "UNIX_SECONDS", allow_negative_numbers = true)]
        at: Option<i64>,
        /// Timed verifications per measurement.
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
        iterations: u32,
    },
    /// SEV-SNP report verifications per second.
    Snp {
        /// The attestation report (raw binary or hex text).
        report: PathBuf,
        /// The VCEK or VLEK certificate (DER or PEM).
        #[arg(long, visible_alias = "vlek", value_name = "CERT")]
        vcek: PathBuf,
        /// PEM bundle with the ASK/ASVK (and ARK); default: the embedded AMD roots.
        #[arg(long, value_name = "PEM")]
        chain: Option<PathBuf>,
        /// Verification time in unix seconds (default: now).
        #[arg(long, value_name = "UNIX_SECONDS", allow_negative_numbers = true)]
        at: Option<i64>,
        /// Timed verifications per measurement.
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
        iterations: u32,
    },
    /// NVIDIA GPU evidence verifications per second.
    Gpu {
        /// The evidence: request ‖ response (raw binary or hex text).
        evidence: PathBuf,
        /// The device certificate chain (PEM, leaf first).
        #[arg(long, value_name = "CERTS")]
        chain: PathBuf,
        /// Verification time in unix seconds (default: now).
        #[arg(long, value_name = "UNIX_SECONDS", allow_negative_numbers = true)]
        at: Option<i64>,
        /// Timed verifications per measurement.
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
        iterations: u32,
    },
    /// TLS 1.3 handshakes: RA-TLS (cached and cold verification) vs plain rustls, in memory,
    /// interleaved (feature `sim`: the RA-TLS side uses simulated TDX evidence).
    #[cfg(feature = "sim")]
    Handshake {
        /// Timed handshakes per round for plain and cached (a tenth of it for cold).
        #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..))]
        iterations: u32,
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
        rounds: u32,
    },
    /// Ours vs dcap-qvl and sev in one process, interleaved (used by scripts/bench).
    #[command(hide = true)]
    Compare {
        /// The shared/vectors directory.
        #[arg(long)]
        vectors: PathBuf,
        #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..))]
        iterations: u32,
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
        rounds: u32,
    },
}

/// Why the check could not run (exit 2).
#[derive(Debug)]
pub struct BadInput(pub String);

/// Runs the CLI with the given arguments (the first is the program name).
pub fn run<I: IntoIterator<Item = OsString>>(args: I) -> ExitCode {
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    let code = run_with(args, &mut stdout.lock(), &mut stderr.lock());
    ExitCode::from(code)
}

/// [`run`] writing to the given streams; returns the exit code.
pub fn run_with<I: IntoIterator<Item = OsString>>(
    args: I,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8 {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version are not errors; clap's own exit code says which (0 or 2).
            let text = e.render().to_string();
            if e.use_stderr() {
                let _ = err.write_all(text.as_bytes());
            } else {
                let _ = out.write_all(text.as_bytes());
            }
            return u8::try_from(e.exit_code()).unwrap_or(EXIT_BAD_INPUT);
        }
    };
    let outcome = match cli.command {
        Command::Measure(MeasureCommand::Verity(args)) => {
            use std::io::IsTerminal;
            let tty = std::io::stderr().is_terminal();
            measure_verity::run(&args, out, if tty { Some(err) } else { None })
        }
        command => dispatch(command, out),
    };
    match outcome {
        Ok(code) => code,
        Err(BadInput(message)) => {
            let _ = writeln!(err, "cocoon-verify: {message}");
            EXIT_BAD_INPUT
        }
    }
}

fn dispatch(command: Command, out: &mut dyn Write) -> Result<u8, BadInput> {
    match command {
        Command::Tdx(args) => {
            let quote = read_file(&args.quote, "quote")?;
            let collateral = load_collateral(&args.collateral)?;
            let policy = load_policy(args.policy.as_deref())?;
            let now = args.at.unwrap_or_else(unix_now);
            let report = tdx::check(&tdx_verifier(&args), &quote, &collateral, &policy, now);
            Ok(emit(&report, args.json, out))
        }
        Command::Snp(args) => {
            let report = read_file(&args.report, "report")?;
            let signer = load_certificate(&args.vcek)?;
            let chain = args.chain.as_deref().map(load_chain).transpose()?;
            let policy = load_policy(args.policy.as_deref())?;
            let now = args.at.unwrap_or_else(unix_now);
            let report = snp::check(
                &snp_verifier(&args),
                &report,
                &signer,
                chain.as_deref(),
                &policy,
                now,
            );
            Ok(emit(&report, args.json, out))
        }
        Command::Cert(args) => {
            let bytes = read_file(&args.cert, "certificate")?;
            let der = der_or_pem_certificate(&bytes, Subject::Certificate).map_err(|e| {
                BadInput(format!(
                    "certificate file {}: [{}] {}",
                    args.cert.display(),
                    e.kind(),
                    e.message()
                ))
            })?;
            let verifier = ratls_verifier(
                load_policy(args.policy.as_deref())?,
                args.collateral.as_deref(),
                trust_simulated(&args),
            )?;
            let now = args.at.unwrap_or_else(unix_now);
            let mut report = cert::check(&verifier, &der, now);
            report.refuse_simulated_unless(trust_simulated(&args));
            Ok(emit_identity(&report, args.json, out))
        }
        Command::Endpoint(args) => {
            let verifier = ratls_verifier(
                load_policy(args.policy.as_deref())?,
                args.collateral.as_deref(),
                trust_simulated_endpoint(&args),
            )?;
            let mut report = endpoint::check(
                std::sync::Arc::new(verifier),
                &args.address,
                args.nonce,
                std::time::Duration::from_secs(args.timeout),
                unix_now(),
            )?;
            report.refuse_simulated_unless(trust_simulated_endpoint(&args));
            Ok(emit_identity(&report, args.json, out))
        }
        Command::Gpu(args) => gpu::run(&args, out),
        Command::Bench(bench) => run_bench(bench, out),
        Command::Measure(MeasureCommand::Launch(command)) => measure::run(command, out),
        Command::Eventlog(args) => eventlog::run(&args, unix_now(), out),
        Command::Measure(MeasureCommand::Config(args)) => measure_ids::config(&args, out),
        Command::Measure(MeasureCommand::Model(args)) => measure_ids::model(&args, out),
        Command::Measure(MeasureCommand::Verity(args)) => measure_verity::run(&args, out, None),
    }
}

#[cfg(feature = "sim")]
fn trust_simulated(args: &CertArgs) -> bool {
    args.trust_simulated_root
}

#[cfg(not(feature = "sim"))]
fn trust_simulated(_: &CertArgs) -> bool {
    false
}

#[cfg(feature = "sim")]
fn trust_simulated_endpoint(args: &EndpointArgs) -> bool {
    args.trust_simulated_root
}

#[cfg(not(feature = "sim"))]
fn trust_simulated_endpoint(_: &EndpointArgs) -> bool {
    false
}

/// The RA-TLS verifier for `cert` and `endpoint`.
fn ratls_verifier(
    policy: Policy,
    collateral: Option<&Path>,
    trust_simulated: bool,
) -> Result<cocoon_attestation::ratls::RaTlsVerifier, BadInput> {
    use cocoon_attestation::ratls::{RaTlsVerifier, StaticCollateral, VerifierConfig};
    let collateral = match collateral {
        Some(path) => Some(load_collateral(path)?),
        None => simulated_collateral(trust_simulated)?,
    };
    let mut config = VerifierConfig::new(policy);
    if let Some(collateral) = collateral {
        let source = StaticCollateral::new(vec![collateral])
            .map_err(|e| BadInput(format!("collateral: [{}] {}", e.kind(), e.message())))?;
        config.collateral = Some(std::sync::Arc::new(source));
    }
    RaTlsVerifier::new(config)
        .map_err(|e| BadInput(format!("verifier: [{}] {}", e.kind(), e.message())))
}

#[cfg(feature = "sim")]
fn simulated_collateral(trust_simulated: bool) -> Result<Option<Collateral>, BadInput> {
    if !trust_simulated {
        return Ok(None);
    }
    let sim = cocoon_attestation::sim::tdx::SimTdx::new()
        .map_err(|e| BadInput(format!("simulated TEE: {}", e.message())))?;
    sim.collateral()
        .map(Some)
        .map_err(|e| BadInput(format!("simulated collateral: {}", e.message())))
}

#[cfg(not(feature = "sim"))]
fn simulated_collateral(_: bool) -> Result<Option<Collateral>, BadInput> {
    Ok(None)
}

fn emit_identity(report: &cert::IdentityReport, json: bool, out: &mut dyn Write) -> u8 {
    let text = if json {
        report.to_json()
    } else {
        report.to_human()
    };
    let _ = writeln!(out, "{}", text.trim_end());
    if report.accepted() {
        EXIT_ACCEPTED
    } else {
        EXIT_REJECTED
    }
}

/// The production verifier: the pinned Intel root only.
#[cfg(not(feature = "sim"))]
fn tdx_verifier(_: &TdxArgs) -> TdxVerifier {
    TdxVerifier::new()
}

/// With `--trust-simulated-root`, the simulated root beside Intel's (feature `sim`).
#[cfg(feature = "sim")]
fn tdx_verifier(args: &TdxArgs) -> TdxVerifier {
    if args.trust_simulated_root {
        TdxVerifier::with_roots(cocoon_attestation::sim::tdx::anchors_with_intel())
    } else {
        TdxVerifier::new()
    }
}

/// The production verifier: the embedded AMD roots only.
#[cfg(not(feature = "sim"))]
fn snp_verifier(_: &SnpArgs) -> SnpVerifier {
    SnpVerifier::new()
}

/// With `--trust-simulated-root`, the simulated AMD roots beside the embedded ones (feature `sim`).
#[cfg(feature = "sim")]
fn snp_verifier(args: &SnpArgs) -> SnpVerifier {
    if args.trust_simulated_root {
        SnpVerifier::with_roots(cocoon_attestation::sim::snp::amd_roots_with_embedded())
    } else {
        SnpVerifier::new()
    }
}

fn run_bench(command: BenchCommand, out: &mut dyn Write) -> Result<u8, BadInput> {
    match command {
        BenchCommand::Tdx {
            quote,
            collateral,
            at,
            iterations,
        } => {
            let quote = read_file(&quote, "quote")?;
            let collateral = load_collateral(&collateral)?;
            let now = at.unwrap_or_else(unix_now);
            match bench::tdx(&quote, &collateral, now, iterations) {
                Ok(result) => {
                    let _ = writeln!(out, "cold {:.0} verifications/s", result.cold);
                    let _ = writeln!(out, "warm {:.0} verifications/s", result.warm);
                    Ok(EXIT_ACCEPTED)
                }
                Err(e) => {
                    let _ = writeln!(out, "verification failed: [{}] {}", e.kind(), e.message());
                    Ok(EXIT_REJECTED)
                }
            }
        }
        BenchCommand::Snp {
            report,
            vcek,
            chain,
            at,
            iterations,
        } => {
            let report = read_file(&report, "report")?;
            let signer = load_certificate(&vcek)?;
            let chain = chain.as_deref().map(load_chain).transpose()?;
            let now = at.unwrap_or_else(unix_now);
            match bench::snp(&report, &signer, chain.as_deref(), now, iterations) {
                Ok(rate) => {
                    let _ = writeln!(out, "verify {rate:.0} verifications/s");
                    Ok(EXIT_ACCEPTED)
                }
                Err(e) => {
                    let _ = writeln!(out, "verification failed: [{}] {}", e.kind(), e.message());
                    Ok(EXIT_REJECTED)
                }
            }
        }
        BenchCommand::Gpu {
            evidence,
            chain,
            at,
            iterations,
        } => gpu::run_bench(&evidence, &chain, at, iterations, out),
        BenchCommand::Compare {
            vectors,
            iterations,
            rounds,
        } => bench::compare(&vectors, iterations, rounds, out).map_err(BadInput),
        #[cfg(feature = "sim")]
        BenchCommand::Handshake { iterations, rounds } => {
            handshake_bench::run(iterations, rounds, out).map_err(BadInput)
        }
    }
}

fn emit(report: &report::Report, json: bool, out: &mut dyn Write) -> u8 {
    let text = if json {
        report.to_json()
    } else {
        report.to_human()
    };
    let _ = writeln!(out, "{}", text.trim_end());
    if report.accepted() {
        EXIT_ACCEPTED
    } else {
        EXIT_REJECTED
    }
}

/// The current time: only the CLI reads the clock, the library takes it as an argument.
fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Reads a whole file of at most [`MAX_FILE`] bytes.
pub fn read_file(path: &Path, what: &str) -> Result<Vec<u8>, BadInput> {
    let file = std::fs::File::open(path)
        .map_err(|e| BadInput(format!("cannot read {what} file {}: {e}", path.display())))?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| BadInput(format!("cannot read {what} file {}: {e}", path.display())))?;
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > MAX_FILE {
        return Err(BadInput(format!(
            "{what} file {} is larger than {MAX_FILE} bytes",
            path.display()
        )));
    }
    Ok(bytes)
}

fn load_collateral(path: &Path) -> Result<Collateral, BadInput> {
    let bytes = read_file(path, "collateral")?;
    Collateral::from_json(&bytes).map_err(|e| {
        BadInput(format!(
            "collateral file {}: [{}] {}",
            path.display(),
            e.kind(),
            e.message()
        ))
    })
}

fn load_policy(path: Option<&Path>) -> Result<Policy, BadInput> {
    let Some(path) = path else {
        return Ok(Policy::default());
    };
    let bytes = read_file(path, "policy")?;
    let text = String::from_utf8(bytes)
        .map_err(|_| BadInput(format!("policy file {} is not UTF-8", path.display())))?;
    Policy::from_toml(&text).map_err(|e| {
        BadInput(format!(
            "policy file {}: [{}] {}",
            path.display(),
            e.kind(),
            e.message()
        ))
    })
}

fn load_certificate(path: &Path) -> Result<Vec<u8>, BadInput> {
    let bytes = read_file(path, "certificate")?;
    der_or_pem_certificate(&bytes, Subject::Vcek).map_err(|e| {
        BadInput(format!(
            "certificate file {}: [{}] {}",
            path.display(),
            e.kind(),
            e.message()
        ))
    })
}

/// Reads a PEM chain and checks that it holds only certificates; the verifier gets the text.
fn load_chain(path: &Path) -> Result<Vec<u8>, BadInput> {
    let bytes = read_file(path, "chain")?;
    pem_certificates(&bytes, Subject::Ask).map_err(|e| {
        BadInput(format!(
            "chain file {}: [{}] {}",
            path.display(),
            e.kind(),
            e.message()
        ))
    })?;
    Ok(bytes)
}
