//! The simulated SEV-SNP platform end to end: sim report + sim VCEK → `SnpReport::parse` →
//! `SnpVerifier` with the sim roots → `Policy`. Simulated evidence verifies like real evidence,
//! names `TrustRoot::Simulated`, and only a policy with `allow_simulated` accepts it.
#![cfg(feature = "sim")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]

use cocoon_attestation::policy::Policy;
use cocoon_attestation::sim::snp::{self, SimSnp, SimSnpReport, SimTcb, SIM_TCB};
use cocoon_attestation::sim::SIM_NOW;
use cocoon_attestation::snp::{Generation, SigningKey, SnpReport, SnpVerifier, VerifiedSnpReport};
use cocoon_attestation::{Error, Subject, TrustRoot};

fn issue(params: &SimSnpReport) -> Vec<u8> {
    SimSnp::new().unwrap().issue_report(params).unwrap()
}

fn verify(report: &[u8]) -> Result<VerifiedSnpReport, Error> {
    let report = SnpReport::parse(report)?;
    SnpVerifier::with_roots(snp::amd_roots()).verify(&report, snp::vcek_der(), None, SIM_NOW)
}

fn allow_simulated() -> Policy {
    Policy::from_toml("version = 1\nallow_simulated = true\n").unwrap()
}

#[test]
fn sim_report_verifies_under_the_sim_roots() {
    let verified = verify(&issue(&SimSnpReport::default().report_data([3; 64]))).unwrap();
    assert_eq!(verified.root, TrustRoot::Simulated);
    assert_eq!(verified.generation, Generation::Genoa);
    assert_eq!(verified.signing_key, SigningKey::Vcek);
    assert_eq!(verified.reported_tcb.bootloader, SIM_TCB.bootloader);
    assert_eq!(verified.reported_tcb.tee, SIM_TCB.tee);
    assert_eq!(verified.reported_tcb.snp, SIM_TCB.snp);
    assert_eq!(verified.reported_tcb.microcode, SIM_TCB.microcode);
    assert_eq!(verified.report.report_data, [3; 64]);
}

#[test]
fn sim_report_verifies_with_the_sim_chain_given_as_pem() {
    let report = SnpReport::parse(&issue(&SimSnpReport::default())).unwrap();
    let chain = snp::cert_chain_pem();
    let verified = SnpVerifier::with_roots(snp::amd_roots())
        .verify(&report, snp::vcek_der(), Some(chain.as_bytes()), SIM_NOW)
        .unwrap();
    assert_eq!(verified.root, TrustRoot::Simulated);
}

#[test]
fn sim_report_parses_into_the_fields_it_was_issued_with() {
    let params = SimSnpReport {
        measurement: [0x33; 48],
        host_data: [0x44; 32],
        report_data: [0x55; 64],
        guest_svn: 7,
        family_id: [1; 16],
        image_id: [2; 16],
        ..SimSnpReport::default()
    };
    let report = SnpReport::parse(&issue(&params)).unwrap();
    assert_eq!(report.version, 3);
    assert_eq!(report.measurement, params.measurement);
    assert_eq!(report.host_data, params.host_data);
    assert_eq!(report.report_data, params.report_data);
    assert_eq!(report.guest_svn, 7);
    assert_eq!(report.family_id, [1; 16]);
    assert_eq!(report.image_id, [2; 16]);
    assert_eq!(report.vmpl, 0);
    assert_eq!(report.policy.0, params.policy);
    assert!(!report.policy.debug_allowed());
    assert_eq!(report.chip_id, snp::chip_id());
    assert_eq!(report.reported_tcb.raw, SIM_TCB.raw());
    assert_eq!(
        (report.cpuid_fam_id, report.cpuid_mod_id, report.cpuid_step),
        (Some(0x19), Some(0x11), Some(0x01))
    );
}

#[test]
fn default_policy_rejects_sim_report_as_simulated() {
    let verified = verify(&issue(&SimSnpReport::default())).unwrap();
    let failures = Policy::default().evaluate_snp(&verified).failures;
    assert!(
        matches!(failures.as_slice(), [Error::SimulatedEvidenceNotAllowed]),
        "{failures:?}"
    );
}

#[test]
fn policy_allowing_simulated_accepts_sim_report() {
    let verified = verify(&issue(&SimSnpReport::default())).unwrap();
    let decision = allow_simulated().evaluate_snp(&verified);
    assert!(decision.accepted(), "{:?}", decision.failures);
}

#[test]
fn debug_sim_guest_is_rejected_by_a_policy_allowing_simulated() {
    let verified = verify(&issue(&SimSnpReport::default().debug(true))).unwrap();
    let failures = allow_simulated().evaluate_snp(&verified).failures;
    assert!(
        failures.iter().any(|e| matches!(e, Error::DebugNotAllowed)),
        "{failures:?}"
    );
}

#[test]
fn sim_report_with_flipped_report_data_is_rejected() {
    let mut bytes = issue(&SimSnpReport::default());
    bytes[0x50] ^= 0x01;
    let err = verify(&bytes).unwrap_err();
    assert!(matches!(err, Error::ReportSignatureInvalid), "{err:?}");
}

#[test]
fn sim_report_with_flipped_measurement_is_rejected() {
    let mut bytes = issue(&SimSnpReport::default());
    bytes[0x90 + 47] ^= 0x80;
    let err = verify(&bytes).unwrap_err();
    assert!(matches!(err, Error::ReportSignatureInvalid), "{err:?}");
}

#[test]
fn sim_report_with_flipped_signature_is_rejected() {
    let mut bytes = issue(&SimSnpReport::default());
    bytes[0x2A0] ^= 0x01;
    let err = verify(&bytes).unwrap_err();
    assert!(matches!(err, Error::ReportSignatureInvalid), "{err:?}");
}

#[test]
fn sim_report_claiming_another_tcb_than_the_vcek_is_rejected() {
    let newer = SimTcb {
        snp: SIM_TCB.snp + 1,
        ..SIM_TCB
    };
    let params = SimSnpReport {
        reported_tcb: newer,
        current_tcb: newer,
        committed_tcb: newer,
        launch_tcb: newer,
        ..SimSnpReport::default()
    };
    let err = verify(&issue(&params)).unwrap_err();
    assert!(
        matches!(err, Error::TcbVersionMismatch { field: "snp", report, certificate }
            if report == newer.snp && certificate == SIM_TCB.snp),
        "{err:?}"
    );
}

#[test]
fn sim_report_from_another_chip_is_rejected() {
    let mut chip_id = snp::chip_id();
    chip_id[0] ^= 0xff;
    let params = SimSnpReport {
        chip_id,
        ..SimSnpReport::default()
    };
    let err = verify(&issue(&params)).unwrap_err();
    assert!(matches!(err, Error::ChipIdMismatch), "{err:?}");
}

#[test]
fn issuing_the_same_report_twice_gives_identical_bytes() {
    let params = SimSnpReport::default().report_data([8; 64]);
    assert_eq!(issue(&params), issue(&params));
}

#[test]
fn sim_certificates_say_simulated() {
    let needle = b"COCOON SIMULATED";
    for der in [snp::vcek_der(), snp::ask_der(), snp::ark_der()] {
        assert!(der.windows(needle.len()).any(|w| w == needle));
    }
}

fn allow_simulated_failures(params: &SimSnpReport) -> Vec<Error> {
    let verified = verify(&issue(params)).unwrap();
    allow_simulated().evaluate_snp(&verified).failures
}

#[test]
fn sim_report_from_vmpl_1_is_rejected_by_the_default_vmpl_allowlist() {
    let failures = allow_simulated_failures(&SimSnpReport {
        vmpl: 1,
        ..SimSnpReport::default()
    });
    assert!(
        matches!(failures.as_slice(), [Error::MeasurementNotAllowed { field: "snp.vmpl", actual }] if actual == "1"),
        "{failures:?}"
    );
}

#[test]
fn sim_guest_allowing_a_migration_agent_is_rejected_by_policy() {
    let failures = allow_simulated_failures(&SimSnpReport {
        policy: SimSnpReport::default().policy | snp::POLICY_MIGRATE_MA,
        ..SimSnpReport::default()
    });
    assert!(
        matches!(failures.as_slice(), [Error::FeatureNotAllowed { .. }]),
        "{failures:?}"
    );
}

#[test]
fn sim_report_on_provisional_firmware_is_rejected_by_policy() {
    let failures = allow_simulated_failures(&SimSnpReport {
        current_firmware: (41, 55, 1),
        ..SimSnpReport::default()
    });
    assert!(
        matches!(failures.as_slice(), [Error::ProvisionalFirmwareNotAllowed]),
        "{failures:?}"
    );
}

#[test]
fn sim_report_with_committed_tcb_above_current_is_rejected() {
    let older = SimTcb {
        snp: SIM_TCB.snp - 1,
        ..SIM_TCB
    };
    let err = verify(&issue(&SimSnpReport {
        current_tcb: older,
        launch_tcb: older,
        ..SimSnpReport::default()
    }))
    .unwrap_err();
    assert!(matches!(err, Error::TcbOrderingViolated { .. }), "{err:?}");
}

#[test]
fn sim_report_with_launch_tcb_above_current_is_rejected() {
    let newer = SimTcb {
        microcode: SIM_TCB.microcode + 1,
        ..SIM_TCB
    };
    let err = verify(&issue(&SimSnpReport {
        launch_tcb: newer,
        ..SimSnpReport::default()
    }))
    .unwrap_err();
    assert!(matches!(err, Error::TcbOrderingViolated { .. }), "{err:?}");
}

#[test]
fn sim_report_claiming_a_vlek_signature_is_rejected_with_a_vcek() {
    let err = verify(&issue(&SimSnpReport {
        signing_key: 1,
        ..SimSnpReport::default()
    }))
    .unwrap_err();
    assert!(matches!(err, Error::SigningKeyMismatch { .. }), "{err:?}");
}

#[test]
fn sim_report_naming_a_milan_cpu_is_rejected_with_the_genoa_chain() {
    let err = verify(&issue(&SimSnpReport {
        cpuid: (0x19, 0x01, 0x01),
        ..SimSnpReport::default()
    }))
    .unwrap_err();
    assert!(matches!(err, Error::GenerationMismatch { .. }), "{err:?}");
}

fn shared_vector(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../../shared/vectors/snp/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Real Genoa evidence (trustee e2e, see shared/vectors/README.md) and its pinned-valid time.
fn real_genoa() -> (SnpReport, Vec<u8>, i64) {
    let report = SnpReport::parse(&shared_vector("DERIVED_e2e_snp_report.bin")).unwrap();
    (report, shared_vector("DERIVED_e2e_snp_vcek.der"), SIM_NOW)
}

#[test]
fn real_report_is_untrusted_by_a_sim_only_verifier() {
    let (report, vcek, now) = real_genoa();
    let err = SnpVerifier::with_roots(snp::amd_roots())
        .verify(&report, &vcek, None, now)
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::UntrustedRoot {
                subject: Subject::Vcek
            }
        ),
        "{err:?}"
    );
}

#[test]
fn adding_the_sim_roots_keeps_real_evidence_amd_and_sim_evidence_simulated() {
    let verifier = SnpVerifier::with_roots(snp::amd_roots_with_embedded());
    let (report, vcek, now) = real_genoa();
    let real = verifier.verify(&report, &vcek, None, now).unwrap();
    assert_eq!(real.root, TrustRoot::Amd);
    let sim = SnpReport::parse(&issue(&SimSnpReport::default())).unwrap();
    let sim = verifier
        .verify(&sim, snp::vcek_der(), None, SIM_NOW)
        .unwrap();
    assert_eq!(sim.root, TrustRoot::Simulated);
}

#[test]
fn sim_vcek_with_the_real_genoa_chain_is_rejected() {
    let report = SnpReport::parse(&issue(&SimSnpReport::default())).unwrap();
    let real_chain = shared_vector("ask_ark_genoa.pem");
    let err = SnpVerifier::with_roots(snp::amd_roots_with_embedded())
        .verify(&report, snp::vcek_der(), Some(&real_chain), SIM_NOW)
        .unwrap_err();
    // The given chain has no certificate named as the sim VCEK's issuer.
    assert!(
        matches!(
            err,
            Error::CertificateChainInvalid {
                subject: Subject::Vcek,
                ..
            }
        ),
        "{err:?}"
    );
}
