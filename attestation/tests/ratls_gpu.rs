//! GPU evidence in RA-TLS certificates and fresh attestations (issue #8): the claims commit to
//! the GPUs (`Claims::gpu`), each GPU report signs the nonce derived from the claims, and the
//! verifier checks count, binding, chain and the policy's `[gpu]` table. Simulated TEE and GPU.
#![cfg(feature = "sim")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]

mod ratls_common;

use cocoon_attestation::claims::{Claims, ClaimsPlatform, ExecutionProvider, GpuCommitment, Nonce};
use cocoon_attestation::policy::Policy;
use cocoon_attestation::ratls::*;
use cocoon_attestation::sim::gpu::SimGpu;
use cocoon_attestation::Error;
use ratls_common::sim::*;
use ratls_common::*;

fn gpu_claims(key: &rcgen::KeyPair) -> Claims {
    Claims {
        gpu: Some(GpuCommitment {
            count: 1,
            execution_provider: ExecutionProvider::Cpu,
        }),
        ..claims_for(key, ClaimsPlatform::SimulatedTdx, SIM_NOW)
    }
}

fn gpu_report(claims: &Claims, index: u8) -> CarriedGpuEvidence {
    let sim = SimGpu::new().unwrap();
    CarriedGpuEvidence {
        report: sim.report(claims.gpu_nonce(index)),
        certificates: sim.chain_der(),
    }
}

fn policy(toml: &str) -> Policy {
    Policy::from_toml(&format!("version = 1\nallow_simulated = true\n{toml}")).unwrap()
}

fn verifier_with(policy: Policy) -> RaTlsVerifier {
    RaTlsVerifier::new(config(policy)).unwrap()
}

/// A certificate with exactly these extensions (to build what an honest issuer refuses to).
fn cert_with(key: &rcgen::KeyPair, claims: &Claims, gpus: &[CarriedGpuEvidence]) -> Vec<u8> {
    let mut ext = vec![
        RawExtension::evidence(&tdx_evidence(claims)),
        RawExtension::claims(&claims.to_bytes()),
    ];
    if !gpus.is_empty() {
        ext.push(RawExtension::gpu_evidence(gpus));
    }
    issue_with_extensions(key, &ext, &params(SIM_NOW)).unwrap()
}

/// An honest issuer's certificate: claims committing to one GPU and its report.
fn issued_with_gpu(key: &rcgen::KeyPair) -> (Claims, Vec<u8>) {
    let claims = gpu_claims(key);
    let der = issue_certificate_with_gpus(
        key,
        &claims,
        &tdx_evidence(&claims),
        &[gpu_report(&claims, 0)],
        &params(SIM_NOW),
    )
    .unwrap();
    (claims, der)
}

#[test]
fn a_certificate_with_its_gpu_verifies_and_names_the_gpu() {
    let key = p256();
    let (claims, der) = issued_with_gpu(&key);
    assert_eq!(
        RaTlsCertificate::parse(&der).unwrap().gpu_evidence().len(),
        1
    );
    let required = policy(
        "[gpu]\nrequired = true\narchitectures = [\"hopper\"]\nmin_driver_version = \"550.0\"\n",
    );
    let peer = verifier_with(required)
        .verify_certificate(&der, SIM_NOW)
        .unwrap();
    assert_eq!(peer.gpus.len(), 1);
    let gpu = &peer.gpus[0];
    assert!(gpu.simulated);
    assert_eq!(gpu.nonce, claims.gpu_nonce(0));
    assert_eq!(gpu.claims_json()["arch"], "Hopper");
    assert_eq!(peer.claims.as_ref().unwrap().gpu, claims.gpu);
}

#[test]
fn the_issuer_refuses_a_gpu_count_other_than_the_commitment() {
    let key = p256();
    let claims = gpu_claims(&key);
    assert!(matches!(
        issue_certificate_with_gpus(&key, &claims, &tdx_evidence(&claims), &[], &params(SIM_NOW)),
        Err(Error::GpuEvidenceCountMismatch {
            committed: 1,
            carried: 0
        })
    ));
}

#[test]
fn stripped_gpu_evidence_is_refused() {
    let key = p256();
    let claims = gpu_claims(&key);
    let der = cert_with(&key, &claims, &[]);
    assert!(matches!(
        verifier().verify_certificate(&der, SIM_NOW),
        Err(Error::GpuEvidenceCountMismatch {
            committed: 1,
            carried: 0
        })
    ));
}

#[test]
fn gpu_evidence_the_claims_do_not_commit_to_is_refused() {
    let key = p256();
    let claims = claims_for(&key, ClaimsPlatform::SimulatedTdx, SIM_NOW);
    let der = cert_with(&key, &claims, &[gpu_report(&gpu_claims(&key), 0)]);
    assert!(matches!(
        verifier().verify_certificate(&der, SIM_NOW),
        Err(Error::GpuEvidenceCountMismatch {
            committed: 0,
            carried: 1
        })
    ));
}

#[test]
fn a_gpu_report_for_other_claims_is_refused_by_its_nonce() {
    let key = p256();
    let claims = gpu_claims(&key);
    // A genuine report, but bound to another enclave's claims (a replayed GPU report).
    let other = gpu_claims(&p256());
    let der = cert_with(&key, &claims, &[gpu_report(&other, 0)]);
    assert!(matches!(
        verifier().verify_certificate(&der, SIM_NOW),
        Err(Error::GpuNonceMismatch { .. })
    ));
}

#[test]
fn a_policy_requiring_a_gpu_refuses_an_enclave_without_one() {
    let key = p256();
    let der = tdx_cert(&key);
    match verifier_with(policy(
        "[gpu]\nrequired = true\narchitectures = [\"hopper\"]\n",
    ))
    .verify_certificate(&der, SIM_NOW)
    {
        Err(Error::PolicyRejected { failures }) => assert!(
            failures
                .iter()
                .any(|f| matches!(f, Error::GpuEvidenceRequired)),
            "{failures:?}"
        ),
        other => panic!("expected PolicyRejected, got {other:?}"),
    }
}

#[test]
fn a_policy_with_another_architecture_refuses_the_gpu() {
    let key = p256();
    let claims = gpu_claims(&key);
    let der = cert_with(&key, &claims, &[gpu_report(&claims, 0)]);
    match verifier_with(policy(
        "[gpu]\nrequired = true\narchitectures = [\"blackwell\"]\n",
    ))
    .verify_certificate(&der, SIM_NOW)
    {
        Err(Error::PolicyRejected { failures }) => assert!(
            failures
                .iter()
                .any(|f| matches!(f, Error::GpuPolicyViolation { .. })),
            "{failures:?}"
        ),
        other => panic!("expected PolicyRejected, got {other:?}"),
    }
}

#[test]
fn a_fresh_attestation_carries_new_gpu_reports_for_the_nonce() {
    let key = p256();
    let (claims, der) = issued_with_gpu(&key);
    let v = verifier();
    let peer = v.verify_certificate(&der, SIM_NOW).unwrap();
    let mut with_nonce = claims.clone();
    with_nonce.nonce = Some(Nonce::new(b"n-1".to_vec()).unwrap());
    let fresh = FreshAttestation {
        evidence: tdx_evidence(&with_nonce),
        claims: with_nonce.to_bytes(),
        gpus: vec![gpu_report(&with_nonce, 0)],
    };
    let again = v.verify_fresh(&peer, &fresh, b"n-1", SIM_NOW).unwrap();
    assert_eq!(again.gpus.len(), 1);
    assert_eq!(again.gpus[0].nonce, with_nonce.gpu_nonce(0));
    // The certificate's GPU report replayed into a fresh answer does not sign the new nonce.
    let replayed = FreshAttestation {
        gpus: vec![gpu_report(&claims, 0)],
        ..fresh.clone()
    };
    assert!(matches!(
        v.verify_fresh(&peer, &replayed, b"n-1", SIM_NOW),
        Err(Error::GpuNonceMismatch { .. })
    ));
    let stripped = FreshAttestation {
        gpus: vec![],
        ..fresh
    };
    assert!(matches!(
        v.verify_fresh(&peer, &stripped, b"n-1", SIM_NOW),
        Err(Error::GpuEvidenceCountMismatch { .. })
    ));
}
