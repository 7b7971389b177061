//! The `cocoon` command line: `attest` verifies an enclave over RA-TLS and prints its verified
//! identity; `chat` verifies it the same way and only then sends one chat completion (its body
//! sealed to the enclave's HPKE key when the claims advertise one), printing the answer as it
//! streams; `gateway` serves a plain-HTTP OpenAI API on loopback that forwards to a verified
//! enclave (`crate::gateway`).
//!
//! Exit status: 0 verified (and, for `chat`, answered), 1 refused (the attestation check that
//! failed is printed) or the enclave answered an error, 2 bad input (arguments, files, address,
//! network).

use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use cocoon_attestation::policy::Policy;
use cocoon_attestation::ratls::{RaTlsVerifier, StaticCollateral, VerifiedPeer, VerifierConfig};
use cocoon_attestation::tdx::Collateral;

use crate::gateway::{
    code_of, Gateway, GatewayConfig, Upstream, DEFAULT_MAX_REQUEST_BYTES,
    DEFAULT_MAX_RESPONSE_BYTES,
};
use crate::sealed::{Outgoing, Sealing};
use crate::{
    fresh_attestation_random, AttestedConnection, ClientError, Connector, SseDataLines, Timeouts,
};

pub const EXIT_VERIFIED: u8 = 0;
pub const EXIT_REFUSED: u8 = 1;
pub const EXIT_BAD_INPUT: u8 = 2;

/// Largest policy or collateral file read.
const MAX_FILE: u64 = 4 * 1024 * 1024;
/// Largest streamed answer read.
const MAX_ANSWER_BYTES: usize = 16 * 1024 * 1024;
/// Largest single SSE line.
const MAX_SSE_LINE: usize = 1024 * 1024;

#[derive(Debug, Parser)]
#[command(
    name = "cocoon",
    about = "Verify a cocoon enclave over RA-TLS, then talk to it",
    after_help = "Exit status: 0 verified, 1 refused (the failed check is printed), 2 bad input."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Connect, verify the enclave under the policy, print its verified identity.
    Attest {
        #[command(flatten)]
        common: Common,
        /// Also ask for a fresh attestation with a random nonce (proof the key is live now).
        #[arg(long)]
        nonce: bool,
        /// Print JSON (keys verdict, platform, tcb_status, measurements, claims).
        #[arg(long)]
        json: bool,
    },
    /// Verify the enclave, then send one chat completion and print the answer as it streams.
    Chat {
        #[command(flatten)]
        common: Common,
        /// While the enclave's model is still loading (/health 503), wait up to this many
        /// seconds before sending.
        #[arg(long, default_value_t = 300)]
        wait_ready: u64,
        /// Send the prompt in plaintext inside RA-TLS even when the enclave offers an HPKE
        /// key (sealed by default).
        #[arg(long)]
        no_seal: bool,
        /// A system message before the prompt.
        #[arg(long)]
        system: Option<String>,
        #[arg(long, default_value_t = 256)]
        max_tokens: u32,
        #[arg(long, default_value_t = 0.0)]
        temperature: f64,
        /// The user's message.
        prompt: String,
    },
    /// Serve a plain-HTTP OpenAI API on loopback that forwards every request to the enclave
    /// after verifying it (on each new upstream connection); point OpenAI SDKs at
    /// http://LISTEN/v1.
    Gateway {
        /// Where local clients connect (loopback only, unless
        /// --danger-listen-non-loopback); port 0 picks a free port.
        #[arg(long)]
        listen: std::net::SocketAddr,
        /// The enclave: https://HOST:PORT (RA-TLS) or http://HOST:PORT (a relay that
        /// terminates TLS: verified by a detached attestation, bodies always sealed).
        #[arg(long)]
        upstream: String,
        #[command(flatten)]
        trust: TrustArgs,
        /// Sent upstream as `Authorization: Bearer KEY` (replacing the local client's).
        #[arg(long, env = "COCOON_API_KEY", hide_env_values = true)]
        api_key: Option<String>,
        /// Seconds allowed for connecting and the handshake.
        #[arg(long, default_value_t = 30)]
        timeout: u64,
        /// Seconds allowed for one whole request, streamed answer included.
        #[arg(long, default_value_t = 900)]
        request_timeout: u64,
        /// Serve on a non-loopback address: prompts then cross the network in plaintext
        /// before they reach the gateway.
        #[arg(long)]
        danger_listen_non_loopback: bool,
    },
}

/// What the enclave is verified against.
#[derive(Debug, Args)]
struct TrustArgs {
    /// The attestation policy (TOML).
    #[arg(long)]
    policy: PathBuf,
    /// Collateral JSON for TDX evidence (dcap-qvl QuoteCollateralV3 layout).
    #[arg(long)]
    collateral: Option<PathBuf>,
    /// Also trust the simulated TEE's test roots (builds with feature `sim` only); without
    /// --collateral, TDX evidence is checked with the simulated collateral.
    #[cfg(feature = "sim")]
    #[arg(long)]
    trust_simulated_root: bool,
}

impl TrustArgs {
    #[cfg(feature = "sim")]
    fn trust_simulated(&self) -> bool {
        self.trust_simulated_root
    }

    #[cfg(not(feature = "sim"))]
    fn trust_simulated(&self) -> bool {
        false
    }
}

#[derive(Debug, Args)]
struct Common {
    /// The enclave: HOST:PORT or https://HOST:PORT.
    addr: String,
    #[command(flatten)]
    trust: TrustArgs,
    /// Seconds allowed for connecting, the handshake, and each request.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
}

impl Common {
    fn trust_simulated(&self) -> bool {
        self.trust.trust_simulated()
    }
}

/// Why a command stopped: the exit status and what to print on stderr.
#[derive(Debug)]
struct Stop {
    code: u8,
    message: String,
}

fn bad(message: impl Into<String>) -> Stop {
    Stop {
        code: EXIT_BAD_INPUT,
        message: message.into(),
    }
}

fn refused(message: impl Into<String>) -> Stop {
    Stop {
        code: EXIT_REFUSED,
        message: message.into(),
    }
}

/// A client error: refused when the peer was checked and failed (attestation, TLS), else bad
/// input (address, network, timeouts).
fn stop_for(error: ClientError) -> Stop {
    match error {
        ClientError::Attestation(_)
        | ClientError::Tls(_)
        | ClientError::HpkeKeyMissing
        | ClientError::Sealed(_)
        | ClientError::SealedResponseMissing { .. } => refused(format!("refused: {error}")),
        other => bad(other.to_string()),
    }
}

/// Runs the CLI on `args` (the program name first), writing results to `out` and diagnostics
/// to `err`; returns the exit status.
pub fn run<I, T>(args: I, out: &mut dyn Write, err: &mut dyn Write) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() {
                EXIT_BAD_INPUT
            } else {
                EXIT_VERIFIED
            };
            let text = e.render().to_string();
            if e.use_stderr() {
                let _ = write!(err, "{text}");
            } else {
                let _ = write!(out, "{text}");
            }
            return code;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = writeln!(err, "cocoon: starting the runtime: {e}");
            return EXIT_BAD_INPUT;
        }
    };
    if matches!(cli.command, Command::Gateway { .. }) {
        init_logging();
    }
    match runtime.block_on(execute(cli.command, out)) {
        Ok(()) => EXIT_VERIFIED,
        Err(stop) => {
            let _ = writeln!(err, "cocoon: {}", stop.message);
            stop.code
        }
    }
}

async fn execute(command: Command, out: &mut dyn Write) -> Result<(), Stop> {
    match command {
        Command::Attest {
            common,
            nonce,
            json,
        } => {
            let mut conn = verified_connection(&common).await?;
            let mut peer = Arc::clone(conn.peer());
            if nonce {
                peer = fresh_attestation_random(&mut conn)
                    .await
                    .map_err(stop_for)?;
            }
            let text = if json {
                identity_json(&peer, nonce).to_string()
            } else {
                identity_text(&peer, nonce)
            };
            let _ = writeln!(out, "{}", text.trim_end());
            Ok(())
        }
        Command::Chat {
            common,
            wait_ready,
            no_seal,
            system,
            max_tokens,
            temperature,
            prompt,
        } => {
            let mut conn = verified_connection(&common).await?;
            let mut messages = Vec::new();
            if let Some(system) = system {
                messages.push(serde_json::json!({"role": "system", "content": system}));
            }
            messages.push(serde_json::json!({"role": "user", "content": prompt}));
            let body = serde_json::json!({
                "messages": messages,
                "max_tokens": max_tokens,
                "temperature": temperature,
                "stream": true,
            });
            wait_until_ready(&mut conn, Duration::from_secs(wait_ready)).await?;
            let sealing = if no_seal { Sealing::Off } else { Sealing::Auto };
            chat(&mut conn, body, sealing, out).await
        }
        Command::Gateway {
            listen,
            upstream,
            trust,
            api_key,
            timeout,
            request_timeout,
            danger_listen_non_loopback,
        } => {
            gateway(
                GatewayArgs {
                    listen,
                    upstream,
                    api_key,
                    timeout,
                    request_timeout,
                    danger_listen_non_loopback,
                },
                &trust,
                out,
            )
            .await
        }
    }
}

/// Logs to stderr: `info` unless `RUST_LOG` says otherwise; request bodies are never logged.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

struct GatewayArgs {
    listen: std::net::SocketAddr,
    upstream: String,
    api_key: Option<String>,
    timeout: u64,
    request_timeout: u64,
    danger_listen_non_loopback: bool,
}

async fn gateway(args: GatewayArgs, trust: &TrustArgs, out: &mut dyn Write) -> Result<(), Stop> {
    let upstream = Upstream::parse(&args.upstream).map_err(bad)?;
    if !args.listen.ip().is_loopback() && !args.danger_listen_non_loopback {
        return Err(bad(format!(
            "--listen {}: the gateway speaks plain HTTP and serves loopback addresses only \
             (127.0.0.1 / [::1]); --danger-listen-non-loopback overrides this",
            args.listen
        )));
    }
    let verifier = build_verifier(trust)?;
    let step = Duration::from_secs(args.timeout);
    let connector = Connector::new(verifier, None).map_err(|e| bad(e.to_string()))?;
    let gateway = Gateway::new(GatewayConfig {
        upstream: upstream.clone(),
        connector,
        api_key: args.api_key,
        timeouts: Timeouts {
            connect: step,
            handshake: step,
            request: Duration::from_secs(args.request_timeout),
        },
        trust_simulated: trust.trust_simulated(),
        sealing: Sealing::Auto,
        max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
        max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
    });
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| bad(format!("--listen {}: {e}", args.listen)))?;
    let local = listener
        .local_addr()
        .map_err(|e| bad(format!("--listen {}: {e}", args.listen)))?;
    let mode = match &upstream {
        Upstream::RaTls(_) => "RA-TLS, bodies sealed when the enclave offers an HPKE key",
        Upstream::Relayed(_) => "through a relay: detached attestation, every body sealed",
    };
    let _ = writeln!(
        out,
        "cocoon gateway: listening on http://{local}/v1 -> {} ({mode})",
        upstream.addr()
    );
    let _ = out.flush();
    // Verify once now so a wrong policy shows at start; requests are refused the same way
    // (and nothing is sent) until the enclave or the policy changes.
    match gateway.connect().await {
        Ok(conn) => {
            let peer = conn.peer();
            tracing::info!(
                platform = peer.platform.as_str(),
                simulated = peer.simulated,
                hpke = conn.hpke_key().is_some(),
                "upstream verified"
            );
        }
        Err(e) => {
            tracing::warn!(reason = %e, code = code_of(&e), "upstream not verified; requests are refused until it is")
        }
    }
    let serve = crate::gateway::serve(listener, gateway);
    tokio::select! {
        result = serve => result.map_err(|e| bad(format!("serving: {e}"))),
        _ = shutdown_signal() => {
            tracing::info!("shutting down");
            Ok(())
        }
    }
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// Polls `/health` while it answers 503 (the model is loading), up to `patience`.
async fn wait_until_ready(conn: &mut AttestedConnection, patience: Duration) -> Result<(), Stop> {
    let started = std::time::Instant::now();
    let mut told = false;
    loop {
        let (status, body) = conn.get("/health").await.map_err(stop_for)?;
        if status != http::StatusCode::SERVICE_UNAVAILABLE {
            return Ok(());
        }
        if started.elapsed() >= patience {
            return Err(refused(format!(
                "the enclave was not ready within {patience:?}: {}",
                String::from_utf8_lossy(&body)
                    .chars()
                    .take(300)
                    .collect::<String>()
            )));
        }
        if !told {
            eprintln!("cocoon: the enclave is loading its model; waiting…");
            told = true;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Builds the verifier from the arguments, connects, and checks the peer; nothing is sent
/// before this returns.
async fn verified_connection(common: &Common) -> Result<AttestedConnection, Stop> {
    let addr = normalize_addr(&common.addr)?;
    let verifier = build_verifier(&common.trust)?;
    let timeout = Duration::from_secs(common.timeout);
    let timeouts = Timeouts {
        connect: timeout,
        handshake: timeout,
        request: timeout,
    };
    let connector = Connector::new(verifier, None).map_err(|e| bad(e.to_string()))?;
    let conn = connector.connect(&addr, timeouts).await.map_err(stop_for)?;
    if conn.peer().simulated && !common.trust_simulated() {
        return Err(refused(
            "refused: the enclave presented simulated evidence (not trusted without \
             --trust-simulated-root in a build with feature `sim`)",
        ));
    }
    Ok(conn)
}

/// `HOST:PORT`, also accepting `https://HOST:PORT` (a trailing `/` is dropped).
fn normalize_addr(addr: &str) -> Result<String, Stop> {
    let rest = match addr.split_once("://") {
        Some(("https", rest)) => rest,
        Some((scheme, _)) => {
            return Err(bad(format!(
            "address {addr}: scheme {scheme} is not supported (use HOST:PORT or https://HOST:PORT)"
        )))
        }
        None => addr,
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let valid = rest
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
    if !valid || rest.contains('/') {
        return Err(bad(format!("address {addr}: expected HOST:PORT")));
    }
    Ok(rest.to_owned())
}

fn build_verifier(common: &TrustArgs) -> Result<Arc<RaTlsVerifier>, Stop> {
    let policy = load_policy(&common.policy)?;
    let collateral = match &common.collateral {
        Some(path) => Some(load_collateral(path)?),
        None => simulated_collateral(common.trust_simulated())?,
    };
    let mut config = VerifierConfig::new(policy);
    if let Some(collateral) = collateral {
        let source = StaticCollateral::new(vec![collateral])
            .map_err(|e| bad(format!("collateral: [{}] {}", e.kind(), e.message())))?;
        config.collateral = Some(Arc::new(source));
    }
    RaTlsVerifier::new(config)
        .map(Arc::new)
        .map_err(|e| bad(format!("verifier: [{}] {}", e.kind(), e.message())))
}

#[cfg(feature = "sim")]
fn simulated_collateral(trust: bool) -> Result<Option<Collateral>, Stop> {
    if !trust {
        return Ok(None);
    }
    let sim = cocoon_attestation::sim::tdx::SimTdx::new()
        .map_err(|e| bad(format!("simulated TEE: {}", e.message())))?;
    sim.collateral()
        .map(Some)
        .map_err(|e| bad(format!("simulated collateral: {}", e.message())))
}

#[cfg(not(feature = "sim"))]
fn simulated_collateral(_: bool) -> Result<Option<Collateral>, Stop> {
    Ok(None)
}

fn read_file(path: &Path, what: &str) -> Result<Vec<u8>, Stop> {
    let file = std::fs::File::open(path)
        .map_err(|e| bad(format!("cannot read {what} file {}: {e}", path.display())))?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| bad(format!("cannot read {what} file {}: {e}", path.display())))?;
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > MAX_FILE {
        return Err(bad(format!(
            "{what} file {} is larger than {MAX_FILE} bytes",
            path.display()
        )));
    }
    Ok(bytes)
}

fn load_policy(path: &Path) -> Result<Policy, Stop> {
    let text = String::from_utf8(read_file(path, "policy")?)
        .map_err(|_| bad(format!("policy file {} is not UTF-8", path.display())))?;
    Policy::from_toml(&text).map_err(|e| {
        bad(format!(
            "policy file {}: [{}] {}",
            path.display(),
            e.kind(),
            e.message()
        ))
    })
}

fn load_collateral(path: &Path) -> Result<Collateral, Stop> {
    let bytes = read_file(path, "collateral")?;
    Collateral::from_json(&bytes).map_err(|e| {
        bad(format!(
            "collateral file {}: [{}] {}",
            path.display(),
            e.kind(),
            e.message()
        ))
    })
}

fn identity_json(peer: &VerifiedPeer, fresh: bool) -> serde_json::Value {
    serde_json::json!({
        "verdict": "verified",
        "platform": peer.platform.as_str(),
        "simulated": peer.simulated,
        "tcb_status": peer.tcb_status,
        "advisory_ids": peer.advisory_ids,
        "measurements": peer.measurements,
        "claims": peer.claims.as_ref().map(|c| c.to_json()),
        "gpus": peer.gpus_json(),
        "fresh": fresh,
    })
}

fn identity_text(peer: &VerifiedPeer, fresh: bool) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let simulated = if peer.simulated { " (simulated)" } else { "" };
    let _ = writeln!(
        s,
        "verified: platform {}{simulated}",
        peer.platform.as_str()
    );
    let _ = writeln!(
        s,
        "tcb status: {}",
        peer.tcb_status.as_deref().unwrap_or("n/a")
    );
    if !peer.advisory_ids.is_empty() {
        let _ = writeln!(s, "advisories: {}", peer.advisory_ids.join(", "));
    }
    let _ = writeln!(s, "measurements:");
    for (name, value) in &peer.measurements {
        let _ = writeln!(s, "  {name:<17} {value}");
    }
    match &peer.claims {
        Some(c) => {
            let _ = writeln!(s, "claims:");
            s.push_str(&c.to_text());
            let sealing = if c.hpke_public_key.is_some() {
                "prompts are sealed to the HPKE key above"
            } else {
                "no HPKE key: prompts are protected by RA-TLS only"
            };
            let _ = writeln!(s, "sealing: {sealing}");
        }
        None => {
            let _ = writeln!(s, "claims: none");
        }
    }
    if !peer.gpus.is_empty() {
        let _ = writeln!(s, "gpus (verified, bound to the claims):");
        s.push_str(&peer.gpus_text());
    }
    if fresh {
        let _ = writeln!(s, "fresh attestation with a random nonce: verified");
    }
    s
}

/// POSTs the streaming completion (sealed under `sealing`) and prints each content delta as
/// it arrives.
async fn chat(
    conn: &mut AttestedConnection,
    body: serde_json::Value,
    sealing: Sealing,
    out: &mut dyn Write,
) -> Result<(), Stop> {
    let mut outgoing = Outgoing::post_json("/v1/chat/completions", body.to_string());
    outgoing.headers.insert(
        http::header::ACCEPT,
        http::HeaderValue::from_static("text/event-stream"),
    );
    conn.set_max_response_bytes(MAX_ANSWER_BYTES);
    let mut lines = SseDataLines::new(MAX_SSE_LINE);
    let mut failed = None;
    let mut done = false;
    let error_status = std::cell::Cell::new(None);
    let mut error_body = Vec::new();
    conn.send(
        outgoing,
        sealing,
        |head| {
            if !head.status.is_success() {
                error_status.set(Some(head.status.as_u16()));
            }
            Ok(())
        },
        |chunk| {
            if error_status.get().is_some() {
                if error_body.len() < 4096 {
                    error_body.extend_from_slice(&chunk);
                }
                return Ok(());
            }
            for data in lines.push(&chunk)? {
                if data == "[DONE]" {
                    done = true;
                    continue;
                }
                let event: serde_json::Value = match serde_json::from_str(&data) {
                    Ok(v) => v,
                    Err(e) => {
                        failed = Some(format!("bad event from the enclave ({e}): {data}"));
                        continue;
                    }
                };
                if let Some(message) = event.pointer("/error/message").and_then(|m| m.as_str()) {
                    failed = Some(format!("the enclave reported an error: {message}"));
                }
                let deltas = event
                    .get("choices")
                    .and_then(|c| c.as_array())
                    .into_iter()
                    .flatten()
                    .filter_map(|c| c.pointer("/delta/content").and_then(|t| t.as_str()));
                for text in deltas {
                    let _ = out.write_all(text.as_bytes());
                    let _ = out.flush();
                }
            }
            Ok(())
        },
    )
    .await
    .map_err(stop_for)?;
    if let Some(status) = error_status.get() {
        return Err(refused(format!(
            "the enclave answered HTTP {status}: {}",
            String::from_utf8_lossy(&error_body)
        )));
    }
    let _ = writeln!(out);
    let _ = out.flush();
    match failed {
        Some(message) => Err(refused(message)),
        None if !done => Err(refused("the answer stream ended before `data: [DONE]`")),
        None => Ok(()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn https_addresses_are_accepted_as_host_port() {
        assert_eq!(
            normalize_addr("https://127.0.0.1:8443").unwrap(),
            "127.0.0.1:8443"
        );
        assert_eq!(
            normalize_addr("https://enclave.example:443/").unwrap(),
            "enclave.example:443"
        );
        assert_eq!(normalize_addr("[::1]:1").unwrap(), "[::1]:1");
    }

    #[test]
    fn addresses_without_a_port_or_with_another_scheme_are_bad_input() {
        for addr in [
            "localhost",
            "http://a:1",
            "https://a:1/v1",
            ":443",
            "a:99999",
        ] {
            let stop = normalize_addr(addr).unwrap_err();
            assert_eq!(stop.code, EXIT_BAD_INPUT, "{addr}");
        }
    }
}
