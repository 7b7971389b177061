//! `cocoon-verify bench handshake` (feature `sim`): TLS 1.3 handshake latency and rate, RA-TLS
//! vs plain rustls with the same key type, in one process, interleaved round by round.
//!
//! Every series runs complete handshakes between a rustls client and server connected in
//! memory (no sockets, so the numbers are the TLS and verification work only), both with the
//! ring provider, TLS 1.3, resumption off, P-256 server keys:
//!
//! - plain: a self-signed P-256 certificate without extensions, and a client verifier that
//!   accepts exactly that certificate and checks the handshake signature;
//! - RA-TLS cached: the enclave's certificate (simulated TDX quote and claims in critical
//!   extensions) checked by `RaTlsVerifier`, whose result cache a first handshake filled;
//! - RA-TLS cold: the same with a new verifier (empty caches) for every handshake, so the
//!   quote, its collateral, the binding and the policy are verified each time.
//!
//! Each timed handshake creates both connection objects and runs until both sides finish.
//!
//! Two more series run over loopback TCP, timed at the client from `connect` to the end of its
//! handshake: plain (a tokio-rustls acceptor with the plain configuration) and RA-TLS cached
//! against the enclave's real server (`cocoon_enclave::server`, which also pins the identity
//! per connection and hands the stream to HTTP). Sockets add their own cost and noise; the
//! in-memory lines are the comparison of TLS work.

use std::hint::black_box;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cocoon_attestation::policy::Policy;
use cocoon_attestation::ratls::{
    client_config, server_config, RaTlsVerifier, StaticCollateral, VerifierConfig,
};
use cocoon_attestation::sim::tdx::SimTdx;
use cocoon_enclave::identity::{unix_now, Identity, IdentityConfig, KeyAlgorithm};
use cocoon_enclave::rotation::IdentityResolver;
use cocoon_enclave::sim::SimAttester;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls13_signature, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::{
    ClientConfig, ClientConnection, DigitallySignedStruct, ServerConfig, ServerConnection,
};
use rustls::{Connection, SignatureScheme};

/// Accepts exactly one certificate (the plain baseline's "pinned key" verifier).
#[derive(Debug)]
struct PinnedCertificate {
    der: Vec<u8>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for PinnedCertificate {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.der.as_slice() && intermediates.is_empty() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::PeerIncompatible(
            rustls::PeerIncompatible::Tls13RequiredForQuic,
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ECDSA_NISTP256_SHA256]
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The plain TLS 1.3 pair: a P-256 self-signed certificate and a verifier pinning it.
fn plain_configs() -> Result<(Arc<ServerConfig>, Arc<ClientConfig>), String> {
    let key =
        rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(|e| e.to_string())?;
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .and_then(|p| p.self_signed(&key))
        .map_err(|e| e.to_string())?;
    let der = cert.der().to_vec();
    let mut server = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(der.clone())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .map_err(|e| e.to_string())?;
    server.send_tls13_tickets = 0;
    server.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    let mut client = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PinnedCertificate {
            der,
            algorithms: rustls::crypto::ring::default_provider().signature_verification_algorithms,
        }))
        .with_no_client_auth();
    client.resumption = rustls::client::Resumption::disabled();
    Ok((Arc::new(server), Arc::new(client)))
}

fn ratls_verifier() -> Result<Arc<RaTlsVerifier>, String> {
    let policy =
        Policy::from_toml("version = 1\nallow_simulated = true\n").map_err(|e| e.message())?;
    let collateral = SimTdx::new()
        .and_then(|sim| sim.collateral())
        .map_err(|e| e.message())?;
    let source = StaticCollateral::new(vec![collateral]).map_err(|e| e.message())?;
    let mut config = VerifierConfig::new(policy);
    config.collateral = Some(Arc::new(source));
    RaTlsVerifier::new(config)
        .map(Arc::new)
        .map_err(|e| e.message())
}

fn ratls_client(verifier: Arc<RaTlsVerifier>) -> Result<Arc<ClientConfig>, String> {
    client_config(verifier, None)
        .map(Arc::new)
        .map_err(|e| e.message())
}

/// Moves every pending TLS record from `from` to `to`, which processes them.
fn pump(from: &mut Connection, to: &mut Connection) -> Result<(), String> {
    let mut buf = Vec::new();
    while from.wants_write() {
        from.write_tls(&mut buf).map_err(|e| e.to_string())?;
    }
    let mut rest = buf.as_slice();
    while !rest.is_empty() {
        to.read_tls(&mut rest).map_err(|e| e.to_string())?;
        to.process_new_packets().map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// One complete handshake in memory.
fn handshake(server: &Arc<ServerConfig>, client: &Arc<ClientConfig>) -> Result<(), String> {
    let name = ServerName::try_from("localhost").map_err(|e| e.to_string())?;
    let mut c = Connection::Client(
        ClientConnection::new(Arc::clone(client), name).map_err(|e| e.to_string())?,
    );
    let mut s =
        Connection::Server(ServerConnection::new(Arc::clone(server)).map_err(|e| e.to_string())?);
    for _ in 0..16 {
        pump(&mut c, &mut s)?;
        pump(&mut s, &mut c)?;
        if !c.is_handshaking() && !s.is_handshaking() {
            black_box(&c);
            return Ok(());
        }
    }
    Err("the handshake did not finish".into())
}

fn time(iterations: u32, mut one: impl FnMut() -> Result<(), String>) -> Result<Duration, String> {
    let start = Instant::now();
    for _ in 0..iterations {
        one()?;
    }
    Ok(start.elapsed())
}

/// Runs the three series for `rounds` interleaved rounds of `iterations` handshakes each and
/// prints the table.
pub fn run(iterations: u32, rounds: u32, out: &mut dyn Write) -> Result<u8, String> {
    let (plain_server, plain_client) = plain_configs()?;
    let attester = SimAttester::tdx().map_err(|e| e.to_string())?;
    let identity = Identity::issue(
        &attester,
        &IdentityConfig {
            key_algorithm: KeyAlgorithm::EcdsaP256,
            ..IdentityConfig::default()
        },
        unix_now().map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    let cert_size = identity.certificate().len();
    let resolver = Arc::new(IdentityResolver::new(identity));
    let ratls_server = Arc::new(server_config(resolver, None).map_err(|e| e.message())?);
    let cached_verifier = ratls_verifier()?;
    let cached_client = ratls_client(Arc::clone(&cached_verifier))?;

    // Every series must succeed before it is timed; this also fills the cache.
    handshake(&plain_server, &plain_client).map_err(|e| format!("plain: {e}"))?;
    handshake(&ratls_server, &cached_client).map_err(|e| format!("RA-TLS: {e}"))?;
    if cached_verifier.cache().is_empty() {
        return Err("the RA-TLS handshake left no cached verification".into());
    }

    let mut plain = Duration::ZERO;
    let mut cached = Duration::ZERO;
    let mut cold = Duration::ZERO;
    // Cold handshakes are ~100x slower; a tenth of the iterations keeps the run short.
    let cold_iterations = (iterations / 10).max(1);
    for _ in 0..rounds {
        plain = plain.saturating_add(time(iterations, || {
            handshake(&plain_server, &plain_client)
        })?);
        cached = cached.saturating_add(time(iterations, || {
            handshake(&ratls_server, &cached_client)
        })?);
        cold = cold.saturating_add(time(cold_iterations, || {
            let client = ratls_client(ratls_verifier()?)?;
            handshake(&ratls_server, &client)
        })?);
    }
    let total = iterations.saturating_mul(rounds);
    let cold_total = cold_iterations.saturating_mul(rounds);
    let per = |d: Duration, n: u32| d.as_secs_f64() * 1e6 / f64::from(n.max(1));
    let plain_us = per(plain, total);
    let cached_us = per(cached, total);
    let cold_us = per(cold, cold_total);
    let (plain_tcp, ratls_tcp, tcp_total) = loopback(
        iterations,
        rounds,
        &plain_server,
        &plain_client,
        &cached_client,
    )?;
    let plain_tcp_us = per(plain_tcp, tcp_total);
    let ratls_tcp_us = per(ratls_tcp, tcp_total);
    let _ = writeln!(
        out,
        "TLS 1.3 handshakes in memory, P-256 server key, ring; {rounds} interleaved rounds \
         ({total} plain and cached, {cold_total} cold; {tcp_total} per loopback line, \
         the RA-TLS one against cocoon-enclave's server); RA-TLS certificate {cert_size} bytes \
         (simulated TDX quote)"
    );
    let _ = writeln!(
        out,
        "{:<18} {:>12} {:>14} {:>8} {:>12}",
        "series", "latency/us", "handshakes/s", "ratio", "target"
    );
    let target = 1.15;
    let rows = [
        ("plain TLS 1.3", plain_us, None),
        ("RA-TLS cached", cached_us, Some(target)),
        ("RA-TLS cold", cold_us, None),
    ];
    for (name, us, target, base) in rows
        .into_iter()
        .map(|(n, u, t)| (n, u, t, plain_us))
        .chain([
            ("plain, loopback", plain_tcp_us, None, plain_tcp_us),
            ("RA-TLS, loopback", ratls_tcp_us, None, plain_tcp_us),
        ])
    {
        let ratio = us / base;
        let verdict = match target {
            Some(t) if ratio <= t => format!("{t:.2}x (met)"),
            Some(t) => format!("{t:.2}x (MISSED)"),
            None => "-".into(),
        };
        let _ = writeln!(
            out,
            "{name:<18} {us:>12.1} {:>14.1} {ratio:>7.2}x {verdict:>12}",
            1e6 / us
        );
    }
    Ok(crate::EXIT_ACCEPTED)
}

/// Loopback series: `rounds` interleaved rounds of `iterations` connections to each server;
/// returns the plain and RA-TLS totals and the count per series.
fn loopback(
    iterations: u32,
    rounds: u32,
    plain_server: &Arc<ServerConfig>,
    plain_client: &Arc<ClientConfig>,
    ratls_client: &Arc<ClientConfig>,
) -> Result<(Duration, Duration, u32), String> {
    use cocoon_enclave::server::{serve, Enclave, Router, ServerOptions};
    use tokio::net::{TcpListener, TcpStream};
    use tokio::time::timeout;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let step = Duration::from_secs(10);
        // Plain: accept, handshake, wait for the client to close.
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| e.to_string())?;
        let plain_addr = listener.local_addr().map_err(|e| e.to_string())?;
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::clone(plain_server));
        let plain_task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let _ = tcp.set_nodelay(true);
                    if let Ok(Ok(mut stream)) = timeout(step, acceptor.accept(tcp)).await {
                        let mut buf = [0u8; 64];
                        let _ = timeout(step, tokio::io::AsyncReadExt::read(&mut stream, &mut buf))
                            .await;
                    }
                });
            }
        });
        // RA-TLS: the enclave's server.
        let attester: Arc<dyn cocoon_enclave::Attester> =
            Arc::new(SimAttester::tdx().map_err(|e| e.to_string())?);
        let identity = Identity::issue(
            attester.as_ref(),
            &IdentityConfig::default(),
            unix_now().map_err(|e| e.to_string())?,
        )
        .map_err(|e| e.to_string())?;
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| e.to_string())?;
        let server = serve(
            listener,
            Enclave {
                attester,
                resolver: Arc::new(IdentityResolver::new(identity)),
                client_verifier: None,
            },
            Router::new(),
            ServerOptions::default(),
        )
        .map_err(|e| e.to_string())?;
        let ratls_addr = server.local_addr();

        let name = ServerName::try_from("localhost").map_err(|e| e.to_string())?;
        let one = |addr: std::net::SocketAddr, config: Arc<ClientConfig>| {
            let name = name.clone();
            async move {
                let tcp = timeout(step, TcpStream::connect(addr))
                    .await
                    .map_err(|_| "connect timed out".to_string())?
                    .map_err(|e| e.to_string())?;
                let _ = tcp.set_nodelay(true);
                let stream = timeout(
                    step,
                    tokio_rustls::TlsConnector::from(config).connect(name, tcp),
                )
                .await
                .map_err(|_| "handshake timed out".to_string())?
                .map_err(|e| e.to_string())?;
                black_box(&stream);
                Ok::<_, String>(())
            }
        };
        // Both must work (and the RA-TLS cache is filled) before timing.
        one(plain_addr, Arc::clone(plain_client)).await?;
        one(ratls_addr, Arc::clone(ratls_client)).await?;
        let mut plain = Duration::ZERO;
        let mut ratls = Duration::ZERO;
        for _ in 0..rounds {
            let start = Instant::now();
            for _ in 0..iterations {
                one(plain_addr, Arc::clone(plain_client)).await?;
            }
            plain = plain.saturating_add(start.elapsed());
            let start = Instant::now();
            for _ in 0..iterations {
                one(ratls_addr, Arc::clone(ratls_client)).await?;
            }
            ratls = ratls.saturating_add(start.elapsed());
        }
        plain_task.abort();
        server.shutdown().await;
        Ok((plain, ratls, iterations.saturating_mul(rounds)))
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_series_completes_a_handshake() {
        let mut out = Vec::new();
        assert_eq!(run(2, 1, &mut out).unwrap(), crate::EXIT_ACCEPTED);
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("RA-TLS cached"), "{text}");
        assert!(text.contains("RA-TLS cold"), "{text}");
    }

    #[test]
    fn the_plain_baseline_refuses_another_certificate() {
        let (server, _) = plain_configs().unwrap();
        let (_, other_client) = plain_configs().unwrap();
        assert!(handshake(&server, &other_client).is_err());
    }
}
