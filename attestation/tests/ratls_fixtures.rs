//! The committed RA-TLS vectors (`tests/data/ratls/ours_*`): they parse, verify on the
//! simulated TEE at SIM_NOW and carry the bytes `docs/ratls.md` shows. Regenerate with
//! `cargo test -p cocoon-attestation --features sim --test ratls_fixtures -- --ignored`.
#![cfg(feature = "sim")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]

mod ratls_common;

use cocoon_attestation::claims::{ClaimsPlatform, Nonce};
use cocoon_attestation::ratls::*;
use ratls_common::sim::*;
use ratls_common::*;

fn data(name: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data/ratls")
        .join(name)
}

/// Ed25519 key from a fixed seed (PKCS#8 v1 prefix ‖ seed).
fn seeded_ed25519(seed: u8) -> rcgen::KeyPair {
    let mut pkcs8 = hex::decode("302e020100300506032b657004220420").unwrap();
    pkcs8.extend_from_slice(&[seed; 32]);
    rcgen::KeyPair::try_from(pkcs8.as_slice()).unwrap()
}

fn build_snp() -> Vec<u8> {
    let key = seeded_ed25519(0x43);
    let claims = claims_for(&key, ClaimsPlatform::SimulatedSnp, SIM_NOW);
    issue_certificate(&key, &claims, &snp_evidence(&claims), &params(SIM_NOW)).unwrap()
}

fn build_tdx() -> Vec<u8> {
    let key = seeded_ed25519(0x44);
    let mut claims = claims_for(&key, ClaimsPlatform::SimulatedTdx, SIM_NOW);
    claims.nonce = Some(Nonce::new(b"example".to_vec()).unwrap());
    issue_certificate(&key, &claims, &tdx_evidence(&claims), &params(SIM_NOW)).unwrap()
}

#[test]
#[ignore = "writes the committed fixtures"]
fn regenerate_ratls_fixtures() {
    std::fs::write(data("ours_sim_snp_ed25519.der"), build_snp()).unwrap();
    std::fs::write(data("ours_sim_tdx_ed25519.der"), build_tdx()).unwrap();
}

#[test]
fn committed_sim_snp_vector_verifies() {
    let der = std::fs::read(data("ours_sim_snp_ed25519.der")).unwrap();
    let peer = verifier().verify_certificate(&der, SIM_NOW).unwrap();
    assert_eq!(peer.platform, ClaimsPlatform::SimulatedSnp);
    assert_eq!(peer.spki_sha256, spki_sha256(&seeded_ed25519(0x43)));
}

#[test]
fn committed_sim_tdx_vector_verifies() {
    let der = std::fs::read(data("ours_sim_tdx_ed25519.der")).unwrap();
    let peer = verifier().verify_certificate(&der, SIM_NOW).unwrap();
    assert_eq!(peer.platform, ClaimsPlatform::SimulatedTdx);
    let claims = peer.claims.as_ref().unwrap();
    assert_eq!(claims.nonce.as_ref().unwrap().as_bytes(), b"example");
}

#[test]
fn committed_vector_carries_the_documented_extension_bytes() {
    let der = std::fs::read(data("ours_sim_snp_ed25519.der")).unwrap();
    let cert = RaTlsCertificate::parse(&der).unwrap();
    // docs/ratls.md, "Byte-level example": the claims extension of this vector.
    let mut expected = hex::decode(concat!(
        "3081b1",                                         // Extension
        "061569839b94f6ffa68182afa99db79da4abc7fcb90e02", // OID 2.25.<uuid>.2
        "0101ff",                                         // critical
        "048194",                                         // extnValue
        "308191",                                         // RaTlsClaims
        "020101",                                         // version 1
        "04818b",                                         // claims (139 bytes)
    ))
    .unwrap();
    expected.extend_from_slice(cert.claims_bytes());
    assert_eq!(cert.claims_bytes().len(), 139);
    assert!(der
        .windows(expected.len())
        .any(|w| w == expected.as_slice()));
    // The evidence extension's header: SEQUENCE { INTEGER 1, ENUMERATED 2 (snpReport), ... }.
    let evidence_head = hex::decode(concat!(
        "061569839b94f6ffa68182afa99db79da4abc7fcb90e01",
        "0101ff",
        "048204ae",
        "308204aa",
        "020101",
        "0a0102",
        "048204a0",
    ))
    .unwrap();
    assert!(der
        .windows(evidence_head.len())
        .any(|w| w == evidence_head.as_slice()));
    assert_eq!(cert.evidence().evidence.len(), 0x4a0);
}
