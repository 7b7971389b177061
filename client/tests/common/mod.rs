//! Shared setup for the end-to-end tests: an enclave server on loopback with a simulated TEE,
//! and clients with RA-TLS verifiers trusting the simulated roots.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic,
    dead_code
)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use cocoon_attestation::policy::Policy;
use cocoon_attestation::ratls::{RaTlsVerifier, StaticCollateral, VerifierConfig};
use cocoon_attestation::sim::tdx::{SimTdReport, SimTdx};
use cocoon_client::{AttestedConnection, ClientError, Connector, Timeouts};
use cocoon_enclave::identity::{Identity, IdentityConfig};
use cocoon_enclave::rotation::IdentityResolver;
use cocoon_enclave::server::{serve, Enclave, Router, ServerHandle, ServerOptions};
use cocoon_enclave::sim::SimAttester;
use cocoon_enclave::Attester;
use tokio::net::TcpListener;

/// Every network step of a test is bounded by this.
pub const STEP: Duration = Duration::from_secs(10);

pub const SIM_POLICY: &str = "version = 1\nallow_simulated = true\n";

pub fn timeouts() -> Timeouts {
    Timeouts {
        connect: STEP,
        handshake: STEP,
        request: STEP,
    }
}

/// A verifier trusting the simulated roots, with the simulated TDX collateral.
pub fn verifier(policy_toml: &str) -> Arc<RaTlsVerifier> {
    let policy = Policy::from_toml(policy_toml).unwrap();
    let collateral = SimTdx::new().unwrap().collateral().unwrap();
    let mut config = VerifierConfig::new(policy);
    config.collateral = Some(Arc::new(StaticCollateral::new(vec![collateral]).unwrap()));
    Arc::new(RaTlsVerifier::new(config).unwrap())
}

pub fn sim_verifier() -> Arc<RaTlsVerifier> {
    verifier(SIM_POLICY)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tee {
    Tdx,
    Snp,
}

pub fn attester(tee: Tee) -> Arc<dyn Attester> {
    match tee {
        Tee::Tdx => Arc::new(SimAttester::tdx().unwrap()),
        Tee::Snp => Arc::new(SimAttester::snp().unwrap()),
    }
}

pub fn tdx_attester_with(td: SimTdReport) -> Arc<dyn Attester> {
    Arc::new(SimAttester::tdx_with(td).unwrap())
}

pub fn identity_config() -> IdentityConfig {
    IdentityConfig {
        model: cocoon_attestation::claims::ModelIdentity {
            blake3: [0x22; 32],
            dm_verity_root: Some([0x33; 32]),
        },
        config_digest: [0x44; 32],
        ..IdentityConfig::default()
    }
}

pub fn resolver(attester: &dyn Attester, config: &IdentityConfig) -> Arc<IdentityResolver> {
    Arc::new(IdentityResolver::new(
        Identity::issue_now(attester, config).unwrap(),
    ))
}

pub struct TestServer {
    pub handle: ServerHandle,
    pub resolver: Arc<IdentityResolver>,
    pub attester: Arc<dyn Attester>,
}

impl TestServer {
    pub fn addr(&self) -> SocketAddr {
        self.handle.local_addr()
    }
}

/// A server on `addr` (port 0: any free port).
pub async fn start_on(
    addr: SocketAddr,
    attester: Arc<dyn Attester>,
    client_verifier: Option<Arc<RaTlsVerifier>>,
    router: Router,
    options: ServerOptions,
    config: &IdentityConfig,
) -> TestServer {
    let resolver = resolver(attester.as_ref(), config);
    let listener = TcpListener::bind(addr).await.unwrap();
    let handle = serve(
        listener,
        Enclave {
            attester: Arc::clone(&attester),
            resolver: Arc::clone(&resolver),
            client_verifier,
        },
        router,
        options,
    )
    .unwrap();
    TestServer {
        handle,
        resolver,
        attester,
    }
}

pub async fn start(tee: Tee, client_verifier: Option<Arc<RaTlsVerifier>>) -> TestServer {
    start_on(
        "127.0.0.1:0".parse().unwrap(),
        attester(tee),
        client_verifier,
        Router::new(),
        ServerOptions::default(),
        &identity_config(),
    )
    .await
}

pub async fn connect(
    server: &TestServer,
    verifier: Arc<RaTlsVerifier>,
    identity: Option<Arc<IdentityResolver>>,
) -> Result<AttestedConnection, ClientError> {
    let identity = identity.map(|r| r as Arc<dyn rustls::client::ResolvesClientCert>);
    let connector = Connector::new(verifier, identity).unwrap();
    tokio::time::timeout(
        STEP * 2,
        connector.connect(&server.addr().to_string(), timeouts()),
    )
    .await
    .expect("connect within the deadline")
}

/// `GET path` as JSON.
pub async fn get_json(conn: &mut AttestedConnection, path: &str) -> (u16, serde_json::Value) {
    let (status, body) = tokio::time::timeout(STEP * 2, conn.get(path))
        .await
        .expect("request within the deadline")
        .unwrap();
    let json = serde_json::from_slice(&body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&body)));
    (status.as_u16(), json)
}

/// Accepts any certificate (a TLS client that must fail for another reason than trust, or a
/// relay that terminates TLS without checking the enclave).
#[derive(Debug)]
pub struct AcceptAnything;

impl rustls::client::danger::ServerCertVerifier for AcceptAnything {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }
    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}
