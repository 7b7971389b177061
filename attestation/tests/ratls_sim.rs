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

// ------------------------------------------------------------------ attacks on the sim TEE

use std::sync::Arc;

use cocoon_attestation::claims::{Claims, Nonce};
use cocoon_attestation::policy::Policy;
use cocoon_attestation::sim::snp::SimSnpReport;
use cocoon_attestation::sim::tdx::SimTdReport;
use cocoon_attestation::Error;

fn policy(toml: &str) -> Policy {
    Policy::from_toml(&format!("version = 1\nallow_simulated = true\n{toml}")).unwrap()
}

fn verifier_with(policy: Policy) -> RaTlsVerifier {
    RaTlsVerifier::new(config(policy)).unwrap()
}

#[test]
fn altered_claims_fail_the_binding() {
    let key = p256();
    let claims = claims_for(&key, ClaimsPlatform::SimulatedTdx, SIM_NOW);
    let evidence = tdx_evidence(&claims);
    let mut altered = claims.clone();
    altered.config_digest = [0xDD; 32];
    let der = issue_certificate(&key, &altered, &evidence, &params(SIM_NOW)).unwrap();
    assert!(matches!(
        verifier().verify_certificate(&der, SIM_NOW),
        Err(Error::ReportDataMismatch { .. })
    ));
}

#[test]
fn genuine_sim_evidence_copied_with_its_claims_into_a_certificate_with_another_key_is_refused() {
    // The attacker copies the victim's evidence and claims (which name the victim's key).
    let victim = p256();
    let claims = claims_for(&victim, ClaimsPlatform::SimulatedSnp, SIM_NOW);
    let evidence = snp_evidence(&claims);
    let attacker = p256();
    let exts = vec![
        RawExtension::evidence(&evidence),
        RawExtension::claims(&claims.to_bytes()),
        RawExtension::platform_certificates(&evidence.certificates),
    ];
    let der = issue_with_extensions(&attacker, &exts, &params(SIM_NOW)).unwrap();
    assert!(matches!(
        verifier().verify_certificate(&der, SIM_NOW),
        Err(Error::CertificateKeyMismatch { .. })
    ));
}

#[test]
fn sim_evidence_under_the_default_policy_is_refused() {
    let strict = RaTlsVerifier::new(config(Policy::default())).unwrap();
    assert!(matches!(
        strict.verify_certificate(&tdx_cert(&p256()), SIM_NOW),
        Err(Error::SimulatedEvidenceNotAllowed)
    ));
}

#[test]
fn valid_evidence_with_a_measurement_outside_the_policy_is_refused() {
    let other = "00".repeat(48);
    let v = verifier_with(policy(&format!("[tdx]\nmrtd = [\"{other}\"]\n")));
    match v.verify_certificate(&tdx_cert(&p256()), SIM_NOW) {
        Err(Error::PolicyRejected { failures }) => {
            assert!(matches!(
                failures.as_slice(),
                [Error::MeasurementNotAllowed { field, .. }] if field.contains("mrtd")
            ));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn debug_td_is_refused_by_policy_with_every_failure_listed() {
    let key = p256();
    let claims = claims_for(&key, ClaimsPlatform::SimulatedTdx, SIM_NOW);
    let evidence = tdx_evidence_with(
        &claims,
        SimTdReport::default().debug(true).sept_ve_disable(false),
    );
    let der = issue_certificate(&key, &claims, &evidence, &params(SIM_NOW)).unwrap();
    match verifier().verify_certificate(&der, SIM_NOW) {
        Err(Error::PolicyRejected { failures }) => {
            assert!(failures.contains(&Error::DebugNotAllowed), "{failures:?}");
            assert!(
                failures.contains(&Error::SeptVeDisableRequired),
                "{failures:?}"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn snp_evidence_for_a_platform_the_policy_lacks_is_refused() {
    let v = verifier_with(policy("[tdx]\n"));
    match v.verify_certificate(&snp_cert(&p256()), SIM_NOW) {
        Err(Error::PolicyRejected { failures }) => assert!(matches!(
            failures.as_slice(),
            [Error::PlatformNotAllowed { .. }]
        )),
        other => panic!("{other:?}"),
    }
}

#[test]
fn claims_outside_the_policys_claims_section_are_refused() {
    let v = verifier_with(policy(&format!(
        "[claims]\nmodel_blake3 = [\"{}\"]\n",
        "ab".repeat(32)
    )));
    match v.verify_certificate(&tdx_cert(&p256()), SIM_NOW) {
        Err(Error::PolicyRejected { failures }) => assert!(
            matches!(failures.as_slice(), [Error::MeasurementNotAllowed { .. }]),
            "{failures:?}"
        ),
        other => panic!("{other:?}"),
    }
    // The claims the certificate carries are allowed by a matching section.
    let ok = verifier_with(policy(&format!(
        "[claims]\nmodel_blake3 = [\"{}\"]\n",
        "bb".repeat(32)
    )));
    ok.verify_certificate(&tdx_cert(&p256()), SIM_NOW).unwrap();
}

#[test]
fn snp_certificate_carrying_ask_and_ark_verifies() {
    let key = p256();
    let claims = claims_for(&key, ClaimsPlatform::SimulatedSnp, SIM_NOW);
    let mut evidence = snp_evidence(&claims);
    evidence
        .certificates
        .push(cocoon_attestation::sim::snp::ask_der().to_vec());
    evidence
        .certificates
        .push(cocoon_attestation::sim::snp::ark_der().to_vec());
    let der = issue_certificate(&key, &claims, &evidence, &params(SIM_NOW)).unwrap();
    let peer = verifier().verify_certificate(&der, SIM_NOW).unwrap();
    assert_eq!(peer.platform, ClaimsPlatform::SimulatedSnp);
}

#[test]
fn expired_claims_inside_a_valid_certificate_are_refused() {
    let key = p256();
    let mut claims = claims_for(&key, ClaimsPlatform::SimulatedTdx, SIM_NOW);
    claims.expires_at = SIM_NOW - 1;
    let der = issue_certificate(&key, &claims, &tdx_evidence(&claims), &params(SIM_NOW)).unwrap();
    assert!(matches!(
        verifier().verify_certificate(&der, SIM_NOW),
        Err(Error::ClaimsExpired { .. })
    ));
}

// ------------------------------------------------------------------ COCOON interop

fn cocoon_fixture() -> Vec<u8> {
    std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/data/ratls/cocoon_sim_cert.der"
    ))
    .unwrap()
}

#[test]
fn cocoon_certificate_with_sim_quote_verifies_as_cocoon_kind() {
    let peer = verifier()
        .verify_certificate(&cocoon_fixture(), SIM_NOW)
        .unwrap();
    assert_eq!(peer.kind, CertificateKind::Cocoon);
    assert_eq!(peer.claims, None);
    assert_eq!(peer.platform, ClaimsPlatform::SimulatedTdx);
    assert_eq!(peer.user_claims.as_ref().map(Vec::len), Some(32));
}

#[test]
fn cocoon_certificate_is_refused_by_a_policy_with_a_claims_section() {
    let v = verifier_with(policy("[claims]\nrequire_hpke_key = true\n"));
    match v.verify_certificate(&cocoon_fixture(), SIM_NOW) {
        Err(Error::PolicyRejected { failures }) => assert!(matches!(
            failures.as_slice(),
            [Error::UnsupportedEvidence { .. }]
        )),
        other => panic!("{other:?}"),
    }
}

#[test]
fn cocoon_certificate_after_its_day_is_expired() {
    assert!(matches!(
        verifier().verify_certificate(&cocoon_fixture(), SIM_NOW + 86_401),
        Err(Error::CertificateExpired { .. })
    ));
}

// ------------------------------------------------------------------ freshness

struct Enclave {
    key: rcgen::KeyPair,
    claims: Claims,
    der: Vec<u8>,
}

fn tdx_enclave() -> Enclave {
    let key = p256();
    let claims = claims_for(&key, ClaimsPlatform::SimulatedTdx, SIM_NOW);
    let der = issue_certificate(&key, &claims, &tdx_evidence(&claims), &params(SIM_NOW)).unwrap();
    Enclave { key, claims, der }
}

/// What the enclave answers to a freshness request with `nonce`.
fn fresh_tdx(claims: &Claims, nonce: &[u8], td: SimTdReport) -> FreshAttestation {
    let mut with_nonce = claims.clone();
    with_nonce.nonce = Some(Nonce::new(nonce.to_vec()).unwrap());
    FreshAttestation {
        evidence: tdx_evidence_with(&with_nonce, td),
        claims: with_nonce.to_bytes(),
        gpus: Vec::new(),
    }
}

#[test]
fn fresh_attestation_with_the_sent_nonce_verifies() {
    let e = tdx_enclave();
    let v = verifier();
    let peer = v.verify_certificate(&e.der, SIM_NOW).unwrap();
    let response = fresh_tdx(&e.claims, b"nonce-1", SimTdReport::default());
    // Through JSON, as the endpoint serves it.
    let response = FreshAttestation::from_json(&response.to_json()).unwrap();
    let fresh = v
        .verify_fresh(&peer, &response, b"nonce-1", SIM_NOW + 10)
        .unwrap();
    assert_eq!(
        fresh
            .claims
            .as_ref()
            .unwrap()
            .nonce
            .as_ref()
            .unwrap()
            .as_bytes(),
        b"nonce-1"
    );
    assert_eq!(fresh.spki_sha256, spki_sha256(&e.key));
    assert_ne!(fresh.evidence_sha256, peer.evidence_sha256);
}

#[test]
fn replayed_fresh_attestation_is_refused_for_a_new_nonce() {
    let e = tdx_enclave();
    let v = verifier();
    let peer = v.verify_certificate(&e.der, SIM_NOW).unwrap();
    let old = fresh_tdx(&e.claims, b"nonce-1", SimTdReport::default());
    v.verify_fresh(&peer, &old, b"nonce-1", SIM_NOW).unwrap();
    assert!(matches!(
        v.verify_fresh(&peer, &old, b"nonce-2", SIM_NOW),
        Err(Error::NonceMismatch)
    ));
}

#[test]
fn fresh_attestation_without_a_nonce_is_stale() {
    let e = tdx_enclave();
    let v = verifier();
    let peer = v.verify_certificate(&e.der, SIM_NOW).unwrap();
    let stale = FreshAttestation {
        evidence: tdx_evidence(&e.claims),
        claims: e.claims.to_bytes(),
        gpus: Vec::new(),
    };
    assert!(matches!(
        v.verify_fresh(&peer, &stale, b"nonce-3", SIM_NOW),
        Err(Error::NonceMismatch)
    ));
}

#[test]
fn fresh_attestation_with_changed_claims_is_refused() {
    let e = tdx_enclave();
    let v = verifier();
    let peer = v.verify_certificate(&e.der, SIM_NOW).unwrap();
    let mut changed = e.claims.clone();
    changed.model.blake3 = [0x11; 32];
    let response = fresh_tdx(&changed, b"n", SimTdReport::default());
    assert!(matches!(
        v.verify_fresh(&peer, &response, b"n", SIM_NOW),
        Err(Error::FreshClaimsChanged { field: "model" })
    ));
}

#[test]
fn fresh_attestation_from_a_tee_whose_measurement_changed_is_refused() {
    let e = tdx_enclave();
    let v = verifier();
    let peer = v.verify_certificate(&e.der, SIM_NOW).unwrap();
    let mut td = SimTdReport::default();
    td.rt_mr[3] = [0x77; 48];
    let response = fresh_tdx(&e.claims, b"n", td);
    match v.verify_fresh(&peer, &response, b"n", SIM_NOW) {
        Err(Error::MeasurementChanged { field, .. }) => assert_eq!(field, "rtmr3"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn fresh_attestation_whose_evidence_does_not_bind_its_claims_is_refused() {
    let e = tdx_enclave();
    let v = verifier();
    let peer = v.verify_certificate(&e.der, SIM_NOW).unwrap();
    let mut response = fresh_tdx(&e.claims, b"n", SimTdReport::default());
    // Claims for another nonce than the evidence binds.
    let mut other = e.claims.clone();
    other.nonce = Some(Nonce::new(b"m".to_vec()).unwrap());
    response.claims = other.to_bytes();
    assert!(matches!(
        v.verify_fresh(&peer, &response, b"m", SIM_NOW),
        Err(Error::ReportDataMismatch { .. })
    ));
}

#[test]
fn fresh_snp_attestation_verifies_and_a_changed_host_data_is_caught() {
    let key = p256();
    let claims = claims_for(&key, ClaimsPlatform::SimulatedSnp, SIM_NOW);
    let der = issue_certificate(&key, &claims, &snp_evidence(&claims), &params(SIM_NOW)).unwrap();
    let v = verifier();
    let peer = v.verify_certificate(&der, SIM_NOW).unwrap();
    let mut with_nonce = claims.clone();
    with_nonce.nonce = Some(Nonce::new(b"x".to_vec()).unwrap());
    let good = FreshAttestation {
        evidence: snp_evidence(&with_nonce),
        claims: with_nonce.to_bytes(),
        gpus: Vec::new(),
    };
    v.verify_fresh(&peer, &good, b"x", SIM_NOW).unwrap();
    let report = SimSnpReport {
        host_data: [9; 32],
        ..SimSnpReport::default()
    };
    let changed = FreshAttestation {
        evidence: snp_evidence_with(&with_nonce, report),
        claims: with_nonce.to_bytes(),
        gpus: Vec::new(),
    };
    assert!(matches!(
        v.verify_fresh(&peer, &changed, b"x", SIM_NOW),
        Err(Error::MeasurementChanged { field, .. }) if field == "host_data"
    ));
}

#[test]
fn peers_from_two_connections_with_different_measurements_are_told_apart() {
    let v = verifier();
    let a = v.verify_certificate(&tdx_cert(&p256()), SIM_NOW).unwrap();
    let key = p256();
    let claims = claims_for(&key, ClaimsPlatform::SimulatedTdx, SIM_NOW);
    let td = SimTdReport {
        mr_td: [0x42; 48],
        ..SimTdReport::default()
    };
    let der = issue_certificate(
        &key,
        &claims,
        &tdx_evidence_with(&claims, td),
        &params(SIM_NOW),
    )
    .unwrap();
    let b = v.verify_certificate(&der, SIM_NOW).unwrap();
    a.check_same_measurements(&a).unwrap();
    assert!(matches!(
        a.check_same_measurements(&b),
        Err(Error::MeasurementChanged { field, .. }) if field == "mrtd"
    ));
}

// ------------------------------------------------------------------ cache

#[test]
fn cached_result_is_not_served_after_the_certificate_expired() {
    let v = verifier();
    let der = tdx_cert(&p256());
    let not_after = RaTlsCertificate::parse(&der).unwrap().not_after();
    v.verify_certificate(&der, SIM_NOW).unwrap();
    assert_eq!(v.cache().len(), 1);
    // A second call within the window is served from the cache (same Arc).
    let a = v.verify_certificate(&der, SIM_NOW + 1).unwrap();
    let b = v.verify_certificate(&der, SIM_NOW + 2).unwrap();
    assert!(Arc::ptr_eq(&a, &b));
    assert!(matches!(
        v.verify_certificate(&der, not_after + 1),
        Err(Error::CertificateExpired { .. })
    ));
    assert!(
        v.peer(&der).is_some(),
        "the earlier result stays visible to peer()"
    );
}

#[test]
fn cached_result_is_not_served_under_another_policy() {
    let v = verifier();
    let der = tdx_cert(&p256());
    v.verify_certificate(&der, SIM_NOW).unwrap();
    let strict = v.with_policy(Policy::default());
    assert!(Arc::ptr_eq(strict.cache(), v.cache()));
    assert!(matches!(
        strict.verify_certificate(&der, SIM_NOW),
        Err(Error::SimulatedEvidenceNotAllowed)
    ));
    assert!(strict.peer(&der).is_none());
    assert!(v.peer(&der).is_some());
    // And the original policy still accepts it.
    v.verify_certificate(&der, SIM_NOW).unwrap();
}

#[test]
fn cache_is_bounded() {
    let v = RaTlsVerifier::new(VerifierConfig {
        cache_capacity: 2,
        ..config(Policy::simulated())
    })
    .unwrap();
    let certs: Vec<Vec<u8>> = (0..3).map(|_| tdx_cert(&p256())).collect();
    for c in &certs {
        v.verify_certificate(c, SIM_NOW).unwrap();
    }
    assert_eq!(v.cache().len(), 2);
    assert!(v.peer(&certs[0]).is_none(), "the oldest entry was evicted");
    assert!(v.peer(&certs[2]).is_some());
}

#[test]
fn failed_verifications_are_not_cached() {
    let strict = RaTlsVerifier::new(config(Policy::default())).unwrap();
    let der = tdx_cert(&p256());
    assert!(strict.verify_certificate(&der, SIM_NOW).is_err());
    assert!(strict.cache().is_empty());
}

#[test]
fn shared_cache_does_not_serve_a_result_to_a_verifier_with_a_shorter_lifetime_limit() {
    let cache = Arc::new(VerificationCache::new(16));
    let lenient = RaTlsVerifier::with_cache(config(Policy::simulated()), cache.clone()).unwrap();
    let short = RaTlsVerifier::with_cache(
        VerifierConfig {
            max_lifetime_secs: 3600,
            ..config(Policy::simulated())
        },
        cache.clone(),
    )
    .unwrap();
    let der = tdx_cert(&p256());
    lenient.verify_certificate(&der, SIM_NOW).unwrap();
    assert_eq!(cache.len(), 1);
    assert!(matches!(
        short.verify_certificate(&der, SIM_NOW),
        Err(Error::CertificateLifetimeTooLong {
            lifetime_secs: 7200,
            max_secs: 3600
        })
    ));
}

// ------------------------------------------------------------------ detached (relayed) verification

#[test]
fn detached_attestation_with_the_sent_nonce_verifies_without_a_certificate() {
    let e = tdx_enclave();
    let response = fresh_tdx(&e.claims, b"relay-nonce", SimTdReport::default());
    let response = FreshAttestation::from_json(&response.to_json()).unwrap();
    let peer = verifier()
        .verify_detached(&response, b"relay-nonce", SIM_NOW + 10)
        .unwrap();
    assert_eq!(peer.kind, CertificateKind::Detached);
    assert_eq!(peer.spki_sha256, e.claims.tls_spki_sha256);
    assert!(peer.measurements.contains_key("mrtd"));
    assert!(peer.valid_until < e.claims.expires_at);
}

#[test]
fn detached_attestation_for_another_nonce_or_without_one_is_refused() {
    let e = tdx_enclave();
    let v = verifier();
    let answered = fresh_tdx(&e.claims, b"old", SimTdReport::default());
    assert!(matches!(
        v.verify_detached(&answered, b"new", SIM_NOW),
        Err(Error::NonceMismatch)
    ));
    let stale = FreshAttestation {
        evidence: tdx_evidence(&e.claims),
        claims: e.claims.to_bytes(),
        gpus: Vec::new(),
    };
    assert!(matches!(
        v.verify_detached(&stale, b"new", SIM_NOW),
        Err(Error::NonceMismatch)
    ));
}

#[test]
fn detached_attestation_whose_evidence_does_not_bind_its_claims_is_refused() {
    let e = tdx_enclave();
    let mut response = fresh_tdx(&e.claims, b"n", SimTdReport::default());
    let mut other = e.claims.clone();
    other.model.blake3 = [0x33; 32];
    other.nonce = Some(Nonce::new(b"n".to_vec()).unwrap());
    response.claims = other.to_bytes();
    assert!(matches!(
        verifier().verify_detached(&response, b"n", SIM_NOW),
        Err(Error::ReportDataMismatch { .. })
    ));
}

#[test]
fn detached_attestation_is_held_to_the_policy() {
    let e = tdx_enclave();
    let response = fresh_tdx(&e.claims, b"n", SimTdReport::default());
    let strict = verifier_with(policy(&format!(
        "[claims]\nmodel_blake3 = [\"{}\"]\n",
        "ab".repeat(32)
    )));
    assert!(matches!(
        strict.verify_detached(&response, b"n", SIM_NOW),
        Err(Error::PolicyRejected { .. })
    ));
}
