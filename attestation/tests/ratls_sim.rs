//! RA-TLS end to end on the simulated TEE: certificates issued, parsed and verified; TLS
//! handshakes (server auth and mutual) in memory; claims visible to the application.
#![cfg(feature = "sim")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]

mod ratls_common;

use cocoon_attestation::claims::ClaimsPlatform;
use cocoon_attestation::ratls::*;
use ratls_common::sim::*;
use ratls_common::*;

#[test]
fn sim_tdx_certificate_parses_with_its_claims_and_evidence() {
    let key = p256();
    let der = tdx_cert(&key);
    let cert = RaTlsCertificate::parse(&der).unwrap();
    assert_eq!(cert.claims().platform, ClaimsPlatform::SimulatedTdx);
    assert_eq!(cert.evidence().format, EvidenceFormat::TdxQuote);
    assert_eq!(cert.spki_sha256(), spki_sha256(&key));
    assert_eq!(cert.not_after() - cert.not_before(), 7200);
}

#[test]
fn sim_tdx_certificate_verifies() {
    let key = p256();
    let peer = verifier()
        .verify_certificate(&tdx_cert(&key), SIM_NOW)
        .unwrap();
    assert_eq!(peer.kind, CertificateKind::Ours);
    assert_eq!(peer.platform, ClaimsPlatform::SimulatedTdx);
    assert!(peer.simulated);
    assert_eq!(peer.tcb_status.as_deref(), Some("UpToDate"));
    assert_eq!(peer.spki_sha256, spki_sha256(&key));
    assert!(peer.measurements.contains_key("mrtd"));
    assert_eq!(
        peer.claims.as_ref().unwrap().tls_spki_sha256,
        spki_sha256(&key)
    );
}

#[test]
fn sim_snp_certificate_with_ed25519_key_verifies() {
    let key = ed25519();
    let peer = verifier()
        .verify_certificate(&snp_cert(&key), SIM_NOW)
        .unwrap();
    assert_eq!(peer.platform, ClaimsPlatform::SimulatedSnp);
    assert!(peer.measurements.contains_key("measurement"));
    assert_eq!(peer.tcb_status, None);
}
