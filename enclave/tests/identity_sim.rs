//! The enclave's identity on the simulated TEE: certificates the RA-TLS verifier accepts for
//! both platforms and key types, fresh attestations, attester failures, and rotation with
//! retry.
#![cfg(feature = "sim")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cocoon_attestation::claims::{ClaimsPlatform, HpkePublicKey};
use cocoon_attestation::policy::Policy;
use cocoon_attestation::ratls::{
    RaTlsCertificate, RaTlsVerifier, StaticCollateral, VerifierConfig,
};
use cocoon_attestation::sim::tdx::SimTdx;
use cocoon_enclave::identity::{unix_now, Identity, IdentityConfig, KeyAlgorithm};
use cocoon_enclave::rotation::{spawn_rotation, IdentityResolver, RotationConfig};
use cocoon_enclave::sim::SimAttester;
use cocoon_enclave::{AttestError, Attester, Evidence};
use rustls::client::ResolvesClientCert;
use rustls::SignatureScheme;

fn verifier() -> RaTlsVerifier {
    let policy = Policy::from_toml("version = 1\nallow_simulated = true\n").unwrap();
    let collateral = SimTdx::new().unwrap().collateral().unwrap();
    let mut config = VerifierConfig::new(policy);
    config.collateral = Some(Arc::new(StaticCollateral::new(vec![collateral]).unwrap()));
    RaTlsVerifier::new(config).unwrap()
}

fn config(key_algorithm: KeyAlgorithm) -> IdentityConfig {
    IdentityConfig {
        key_algorithm,
        hpke_public_key: Some(HpkePublicKey::new(0x0020, vec![7; 32]).unwrap()),
        config_digest: [5; 32],
        ..IdentityConfig::default()
    }
}

#[test]
fn issued_certificates_verify_on_both_platforms_with_both_key_types() {
    let verifier = verifier();
    let now = unix_now().unwrap();
    for (attester, platform) in [
        (SimAttester::tdx().unwrap(), ClaimsPlatform::SimulatedTdx),
        (SimAttester::snp().unwrap(), ClaimsPlatform::SimulatedSnp),
    ] {
        for key in [KeyAlgorithm::EcdsaP256, KeyAlgorithm::Ed25519] {
            let identity = Identity::issue(&attester, &config(key), now).unwrap();
            assert_eq!(identity.claims().platform, platform);
            let parsed = RaTlsCertificate::parse(identity.certificate()).unwrap();
            assert_eq!(parsed.claims(), identity.claims());
            assert_eq!(parsed.spki_sha256(), identity.spki_sha256());
            assert_eq!(parsed.not_before(), now - 60);
            let peer = verifier
                .verify_certificate(identity.certificate(), now)
                .unwrap();
            assert_eq!(peer.claims.as_ref(), Some(identity.claims()));
            assert_eq!(peer.platform, platform);
            assert!(peer.simulated);
        }
    }
}

#[test]
fn fresh_attestation_binds_the_same_claims_plus_the_nonce() {
    let verifier = verifier();
    let attester = SimAttester::snp().unwrap();
    let now = unix_now().unwrap();
    let identity = Identity::issue(&attester, &config(KeyAlgorithm::EcdsaP256), now).unwrap();
    let peer = verifier
        .verify_certificate(identity.certificate(), now)
        .unwrap();
    let fresh = identity.fresh_attestation(&attester, b"nonce-1").unwrap();
    let verified = verifier
        .verify_fresh(&peer, &fresh, b"nonce-1", now)
        .unwrap();
    assert_eq!(
        verified
            .claims
            .as_ref()
            .unwrap()
            .nonce
            .as_ref()
            .unwrap()
            .as_bytes(),
        b"nonce-1"
    );
    assert!(matches!(
        verifier.verify_fresh(&peer, &fresh, b"nonce-2", now),
        Err(cocoon_attestation::Error::NonceMismatch)
    ));
}

#[test]
fn an_empty_or_oversized_nonce_is_refused_before_the_attester_runs() {
    let attester = SimAttester::tdx().unwrap();
    let identity = Identity::issue_now(&attester, &config(KeyAlgorithm::EcdsaP256)).unwrap();
    for nonce in [&[][..], &[0u8; 65][..]] {
        assert!(matches!(
            identity.fresh_attestation(&attester, nonce),
            Err(AttestError::Certificate(
                cocoon_attestation::Error::ClaimsMalformed { .. }
            ))
        ));
    }
}

/// An attester that lies about its platform.
#[derive(Debug)]
struct WrongPlatform(SimAttester);

impl Attester for WrongPlatform {
    fn platform(&self) -> ClaimsPlatform {
        ClaimsPlatform::SimulatedSnp
    }
    fn attest(&self, report_data: &[u8; 64]) -> Result<Evidence, AttestError> {
        self.0.attest(report_data)
    }
}

#[test]
fn evidence_from_another_platform_than_the_attester_names_is_refused() {
    let attester = WrongPlatform(SimAttester::tdx().unwrap());
    assert!(matches!(
        Identity::issue_now(&attester, &config(KeyAlgorithm::EcdsaP256)),
        Err(AttestError::PlatformMismatch {
            attester: "sim-snp",
            evidence: "sim-tdx"
        })
    ));
}

/// An attester that fails its first `failures` calls after being armed.
#[derive(Debug)]
struct Flaky {
    inner: SimAttester,
    failures_left: AtomicU32,
    calls: AtomicU32,
}

impl Attester for Flaky {
    fn platform(&self) -> ClaimsPlatform {
        self.inner.platform()
    }
    fn attest(&self, report_data: &[u8; 64]) -> Result<Evidence, AttestError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self
            .failures_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(AttestError::TdxQuoteUnavailable);
        }
        self.inner.attest(report_data)
    }
}

#[test]
fn the_attesters_error_is_returned_when_issuing_fails() {
    let attester = Flaky {
        inner: SimAttester::tdx().unwrap(),
        failures_left: AtomicU32::new(1),
        calls: AtomicU32::new(0),
    };
    assert!(matches!(
        Identity::issue_now(&attester, &config(KeyAlgorithm::EcdsaP256)),
        Err(AttestError::TdxQuoteUnavailable)
    ));
}

#[tokio::test]
async fn rotation_retries_with_backoff_while_the_attester_fails() {
    let attester = Arc::new(Flaky {
        inner: SimAttester::tdx().unwrap(),
        failures_left: AtomicU32::new(0),
        calls: AtomicU32::new(0),
    });
    let identity_config = IdentityConfig {
        lifetime_secs: 3,
        backdate_secs: 0,
        ..config(KeyAlgorithm::EcdsaP256)
    };
    let resolver = Arc::new(IdentityResolver::new(
        Identity::issue_now(attester.as_ref(), &identity_config).unwrap(),
    ));
    let first = resolver.current().spki_sha256();
    // The next two renewals fail.
    attester.failures_left.store(2, Ordering::SeqCst);
    let task = spawn_rotation(
        Arc::clone(&resolver),
        attester.clone(),
        identity_config,
        RotationConfig {
            min_backoff: Duration::from_millis(100),
            ..RotationConfig::default()
        },
    );
    tokio::time::timeout(Duration::from_secs(15), async {
        while resolver.generation() == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("renewed despite the failures");
    task.abort();
    assert_ne!(resolver.current().spki_sha256(), first);
    // 1 initial + 2 failures + 1 success.
    assert_eq!(attester.calls.load(Ordering::SeqCst), 4);
    assert_eq!(resolver.last_error(), None);
}

#[test]
fn the_client_certificate_is_offered_only_for_a_scheme_of_its_key() {
    let attester = SimAttester::tdx().unwrap();
    let resolver = IdentityResolver::new(
        Identity::issue_now(&attester, &config(KeyAlgorithm::EcdsaP256)).unwrap(),
    );
    assert!(
        ResolvesClientCert::resolve(&resolver, &[], &[SignatureScheme::ECDSA_NISTP256_SHA256])
            .is_some()
    );
    assert!(ResolvesClientCert::resolve(&resolver, &[], &[SignatureScheme::ED25519]).is_none());
    assert!(ResolvesClientCert::has_certs(&resolver));
}
