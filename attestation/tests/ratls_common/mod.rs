//! Helpers shared by the `ratls_*` integration tests: keys, claims, certificates over simulated
//! and real evidence, and in-memory TLS connections.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]

use std::path::PathBuf;
use std::sync::Arc;

use cocoon_attestation::claims::{Claims, ClaimsPlatform, ModelIdentity};
use cocoon_attestation::ratls::CertificateParams;
use sha2::{Digest, Sha256};

/// Pinned verification times of the real vectors (shared/vectors/README.md).
pub const TDX_AT: i64 = 1_752_919_234;
pub const MILAN_AT: i64 = 1_700_000_000;

pub fn vector_path(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/vectors")
        .join(relative)
}

pub fn vector(relative: &str) -> Vec<u8> {
    let p = vector_path(relative);
    std::fs::read(&p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
}

pub fn hex_vector(relative: &str) -> Vec<u8> {
    let text: Vec<u8> = vector(relative)
        .into_iter()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    hex::decode(text).unwrap()
}

pub fn p256() -> rcgen::KeyPair {
    rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap()
}

pub fn ed25519() -> rcgen::KeyPair {
    rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap()
}

pub fn spki_sha256(key: &rcgen::KeyPair) -> [u8; 32] {
    Sha256::digest(key.public_key_der()).into()
}

/// Claims for `key`, valid one hour around `now`.
pub fn claims_for(key: &rcgen::KeyPair, platform: ClaimsPlatform, now: i64) -> Claims {
    Claims {
        platform,
        tls_spki_sha256: spki_sha256(key),
        hpke_public_key: None,
        model: ModelIdentity {
            blake3: [0xBB; 32],
            dm_verity_root: None,
        },
        config_digest: [0xCC; 32],
        created_at: now - 600,
        expires_at: now + 3600,
        nonce: None,
        gpu: None,
    }
}

/// A 2-hour certificate around `now`.
pub fn params(now: i64) -> CertificateParams {
    CertificateParams {
        not_before: now - 600,
        not_after: now + 6600,
        subject_alt_names: vec!["enclave.test".into()],
    }
}

#[cfg(feature = "sim")]
pub mod sim {
    use super::*;
    use cocoon_attestation::policy::Policy;
    use cocoon_attestation::ratls::{
        issue_certificate, CarriedEvidence, EvidenceFormat, RaTlsVerifier, StaticCollateral,
        VerifierConfig,
    };
    use cocoon_attestation::sim::snp::{SimSnp, SimSnpReport};
    use cocoon_attestation::sim::tdx::{SimTdReport, SimTdx};
    pub use cocoon_attestation::sim::SIM_NOW;

    pub fn tdx_evidence(claims: &Claims) -> CarriedEvidence {
        let sim = SimTdx::new().unwrap();
        CarriedEvidence {
            format: EvidenceFormat::TdxQuote,
            evidence: sim
                .issue_quote(&SimTdReport::default().report_data(claims.report_data()))
                .unwrap(),
            certificates: vec![],
        }
    }

    pub fn tdx_evidence_with(claims: &Claims, td: SimTdReport) -> CarriedEvidence {
        let sim = SimTdx::new().unwrap();
        CarriedEvidence {
            format: EvidenceFormat::TdxQuote,
            evidence: sim
                .issue_quote(&td.report_data(claims.report_data()))
                .unwrap(),
            certificates: vec![],
        }
    }

    pub fn snp_evidence(claims: &Claims) -> CarriedEvidence {
        snp_evidence_with(claims, SimSnpReport::default())
    }

    pub fn snp_evidence_with(claims: &Claims, report: SimSnpReport) -> CarriedEvidence {
        let sim = SimSnp::new().unwrap();
        CarriedEvidence {
            format: EvidenceFormat::SnpReport,
            evidence: sim
                .issue_report(&report.report_data(claims.report_data()))
                .unwrap(),
            certificates: vec![sim.vcek_der().to_vec()],
        }
    }

    /// A certificate for `key` with simulated TDX evidence at SIM_NOW.
    pub fn tdx_cert(key: &rcgen::KeyPair) -> Vec<u8> {
        let claims = claims_for(key, ClaimsPlatform::SimulatedTdx, SIM_NOW);
        issue_certificate(key, &claims, &tdx_evidence(&claims), &params(SIM_NOW)).unwrap()
    }

    /// A certificate for `key` with simulated SNP evidence at SIM_NOW.
    pub fn snp_cert(key: &rcgen::KeyPair) -> Vec<u8> {
        let claims = claims_for(key, ClaimsPlatform::SimulatedSnp, SIM_NOW);
        issue_certificate(key, &claims, &snp_evidence(&claims), &params(SIM_NOW)).unwrap()
    }

    pub fn collateral() -> Arc<StaticCollateral> {
        Arc::new(StaticCollateral::new(vec![SimTdx::new().unwrap().collateral().unwrap()]).unwrap())
    }

    pub fn config(policy: Policy) -> VerifierConfig {
        VerifierConfig::new(policy).with_collateral(collateral())
    }

    /// A verifier accepting simulated evidence under the default checks.
    pub fn verifier() -> Arc<RaTlsVerifier> {
        Arc::new(RaTlsVerifier::new(config(Policy::simulated())).unwrap())
    }
}

// ------------------------------------------------------------------ in-memory TLS

/// A fixed clock for rustls.
#[derive(Debug)]
pub struct FixedTime(pub i64);

impl rustls::time_provider::TimeProvider for FixedTime {
    fn current_time(&self) -> Option<rustls::pki_types::UnixTime> {
        Some(rustls::pki_types::UnixTime::since_unix_epoch(
            std::time::Duration::from_secs(self.0 as u64),
        ))
    }
}

pub fn fixed(now: i64) -> Arc<FixedTime> {
    Arc::new(FixedTime(now))
}

/// A resolver presenting `der` with `key`.
pub fn certified_key(der: &[u8], key: &rcgen::KeyPair) -> Arc<rustls::sign::CertifiedKey> {
    let key_der = rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap();
    let signing = rustls::crypto::ring::sign::any_supported_type(&key_der).unwrap();
    Arc::new(rustls::sign::CertifiedKey::new(
        vec![rustls::pki_types::CertificateDer::from(der.to_vec())],
        signing,
    ))
}

pub fn server_resolver(
    der: &[u8],
    key: &rcgen::KeyPair,
) -> Arc<dyn rustls::server::ResolvesServerCert> {
    Arc::new(rustls::sign::SingleCertAndKey::from(certified_key(
        der, key,
    )))
}

pub fn client_resolver(
    der: &[u8],
    key: &rcgen::KeyPair,
) -> Arc<dyn rustls::client::ResolvesClientCert> {
    Arc::new(rustls::sign::SingleCertAndKey::from(certified_key(
        der, key,
    )))
}

pub fn connect(
    client: rustls::ClientConfig,
    server: rustls::ServerConfig,
) -> (rustls::ClientConnection, rustls::ServerConnection) {
    let name = rustls::pki_types::ServerName::try_from("enclave.test").unwrap();
    (
        rustls::ClientConnection::new(Arc::new(client), name).unwrap(),
        rustls::ServerConnection::new(Arc::new(server)).unwrap(),
    )
}

/// Moves TLS records from `from` to `to` until `from` has nothing to send; returns the
/// number of bytes moved, or the error `to` raised while processing them.
fn transfer(
    from: &mut impl std::ops::DerefMut<Target = rustls::ConnectionCommon<impl rustls::SideData>>,
    to: &mut impl std::ops::DerefMut<Target = rustls::ConnectionCommon<impl rustls::SideData>>,
) -> Result<usize, rustls::Error> {
    let mut buf = Vec::new();
    while from.wants_write() {
        from.write_tls(&mut buf).unwrap();
    }
    let mut moved = 0;
    let mut slice = buf.as_slice();
    while !slice.is_empty() {
        let n = to.read_tls(&mut slice).unwrap();
        moved += n;
        to.process_new_packets()?;
    }
    Ok(moved)
}

/// Which side failed a handshake, and how.
#[derive(Debug)]
pub enum Failure {
    Client(rustls::Error),
    Server(rustls::Error),
}

/// Runs the handshake to completion or to the first error.
pub fn handshake(
    client: &mut rustls::ClientConnection,
    server: &mut rustls::ServerConnection,
) -> Result<(), Failure> {
    for _ in 0..20 {
        let a = transfer(client, server).map_err(Failure::Server)?;
        let b = transfer(server, client).map_err(Failure::Client)?;
        if !client.is_handshaking() && !server.is_handshaking() && a == 0 && b == 0 {
            return Ok(());
        }
    }
    panic!("handshake did not finish");
}

/// Sends `data` from client to server over an established pair; returns what the server read.
pub fn send_to_server(
    client: &mut rustls::ClientConnection,
    server: &mut rustls::ServerConnection,
    data: &[u8],
) -> Vec<u8> {
    use std::io::{Read, Write};
    client.writer().write_all(data).unwrap();
    transfer(client, server).unwrap();
    let mut out = Vec::new();
    let _ = server.reader().read_to_end(&mut out);
    out
}
