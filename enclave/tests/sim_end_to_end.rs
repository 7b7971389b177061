//! End to end on the simulated TEE: claims → REPORT_DATA → attester → evidence → parse and
//! verify with the simulated roots → policy → the claims' binding holds; and a binding made
//! for other claims does not.
#![cfg(feature = "sim")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use cocoon_attestation::claims::{Claims, ClaimsPlatform, ModelIdentity, Nonce};
use cocoon_attestation::policy::Policy;
use cocoon_attestation::sim::snp as sim_snp;
use cocoon_attestation::sim::tdx::SimTdx;
use cocoon_attestation::sim::SIM_NOW;
use cocoon_attestation::snp::SnpVerifier;
use cocoon_attestation::tdx::{Quote, TdxVerifier};
use cocoon_attestation::Error;
use cocoon_enclave::certtable::SnpCertKind;
use cocoon_enclave::select::{select, Backend, HostPaths, SelectOptions};
use cocoon_enclave::sim::SimAttester;
use cocoon_enclave::{Attester, EvidenceKind};

fn claims(platform: ClaimsPlatform) -> Claims {
    Claims {
        platform,
        tls_spki_sha256: [0x11; 32],
        hpke_public_key: None,
        model: ModelIdentity {
            blake3: [0x22; 32],
            dm_verity_root: Some([0x33; 32]),
        },
        config_digest: [0x44; 32],
        created_at: SIM_NOW - 60,
        expires_at: SIM_NOW + 3600,
        nonce: Some(Nonce::new(b"client nonce".to_vec()).unwrap()),
        gpu: None,
    }
}

fn sim_policy() -> Policy {
    Policy::from_toml("version = 1\nallow_simulated = true\n").unwrap()
}

#[test]
fn sim_tdx_evidence_verifies_and_binds_the_claims() {
    let enclave_claims = claims(ClaimsPlatform::SimulatedTdx);
    let attester = SimAttester::tdx().unwrap();
    assert_eq!(attester.platform(), enclave_claims.platform);
    let evidence = attester.attest(&enclave_claims.report_data()).unwrap();
    assert_eq!(evidence.kind, EvidenceKind::TdxQuote);

    // The verifier's side: claims and evidence arrive as bytes.
    let received = Claims::from_bytes(&enclave_claims.to_bytes()).unwrap();
    let sim = SimTdx::new().unwrap();
    let verified = TdxVerifier::with_roots(vec![sim.root_anchor()])
        .verify(
            &Quote::parse(&evidence.bytes).unwrap(),
            &sim.collateral().unwrap(),
            SIM_NOW,
        )
        .unwrap();
    assert!(sim_policy().evaluate_tdx(&verified).accepted());
    received
        .check_binding(verified.quote.report_data())
        .unwrap();
    received.check_time(SIM_NOW).unwrap();
    received.check_nonce(b"client nonce").unwrap();
}

#[test]
fn sim_snp_evidence_with_host_certificates_verifies_and_binds_the_claims() {
    let enclave_claims = claims(ClaimsPlatform::SimulatedSnp);
    let attester = select(
        Backend::SimSnp,
        &HostPaths::default(),
        &SelectOptions::default(),
    )
    .unwrap();
    let evidence = attester.attest(&enclave_claims.report_data()).unwrap();
    assert_eq!(evidence.kind, EvidenceKind::SnpReport);
    assert!(evidence.certificate(SnpCertKind::Ask).is_some());

    let received = Claims::from_bytes(&enclave_claims.to_bytes()).unwrap();
    let verified = SnpVerifier::with_roots(sim_snp::amd_roots())
        .verify_bytes(&evidence.bytes, evidence.vcek().unwrap(), None, SIM_NOW)
        .unwrap();
    assert!(sim_policy().evaluate_snp(&verified).accepted());
    received
        .check_binding(&verified.report.report_data)
        .unwrap();
}

#[test]
fn genuine_evidence_for_other_claims_is_a_binding_mismatch() {
    // Evidence made for one TLS key, presented with claims naming another key.
    let honest = claims(ClaimsPlatform::SimulatedTdx);
    let evidence = SimAttester::tdx()
        .unwrap()
        .attest(&honest.report_data())
        .unwrap();
    let sim = SimTdx::new().unwrap();
    let verified = TdxVerifier::with_roots(vec![sim.root_anchor()])
        .verify(
            &Quote::parse(&evidence.bytes).unwrap(),
            &sim.collateral().unwrap(),
            SIM_NOW,
        )
        .unwrap();
    let mut forged = honest.clone();
    forged.tls_spki_sha256 = [0x99; 32];
    let err = forged
        .check_binding(verified.quote.report_data())
        .unwrap_err();
    assert!(matches!(err, Error::ReportDataMismatch { .. }), "{err:?}");

    // The same for SNP, and for claims differing only in the nonce (a replay).
    let evidence = SimAttester::snp()
        .unwrap()
        .attest(&honest.report_data())
        .unwrap();
    let verified = SnpVerifier::with_roots(sim_snp::amd_roots())
        .verify_bytes(&evidence.bytes, evidence.vcek().unwrap(), None, SIM_NOW)
        .unwrap();
    let mut replayed = honest.clone();
    replayed.nonce = Some(Nonce::new(b"a new nonce".to_vec()).unwrap());
    assert!(matches!(
        replayed.check_binding(&verified.report.report_data),
        Err(Error::ReportDataMismatch { .. })
    ));
}

#[test]
fn simulated_evidence_is_refused_by_the_default_policy() {
    let c = claims(ClaimsPlatform::SimulatedSnp);
    let evidence = SimAttester::snp()
        .unwrap()
        .attest(&c.report_data())
        .unwrap();
    let verified = SnpVerifier::with_roots(sim_snp::amd_roots())
        .verify_bytes(&evidence.bytes, evidence.vcek().unwrap(), None, SIM_NOW)
        .unwrap();
    let decision = Policy::default().evaluate_snp(&verified);
    assert!(
        decision
            .failures
            .iter()
            .any(|f| matches!(f, Error::SimulatedEvidenceNotAllowed)),
        "{decision:?}"
    );
}
