//! The simulated TDX platform end to end: sim quote + collateral → `Quote::parse` →
//! `TdxVerifier` (Intel root + sim root) → `Policy`. Simulated evidence verifies like real
//! evidence, names `TrustRoot::Simulated`, and only a policy with `allow_simulated` accepts it.
#![cfg(feature = "sim")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]

use cocoon_attestation::policy::Policy;
use cocoon_attestation::sim::tdx::{self, SimCollateralOptions, SimTdReport, SimTdx};
use cocoon_attestation::sim::{SIM_NOW, SIM_VALID_FROM, SIM_VALID_UNTIL};
use cocoon_attestation::tdx::{Collateral, Quote, TcbStatus, TdxVerifier, VerifiedQuote};
use cocoon_attestation::{Error, Subject, TrustRoot};

fn sim() -> SimTdx {
    SimTdx::new().unwrap()
}

fn verifier() -> TdxVerifier {
    TdxVerifier::with_roots(tdx::anchors_with_intel())
}

fn verify(quote: &[u8], collateral: &Collateral, now: i64) -> Result<VerifiedQuote, Error> {
    let quote = Quote::parse(quote)?;
    verifier().verify(&quote, collateral, now)
}

fn issue(td: &SimTdReport) -> (Vec<u8>, Collateral) {
    let sim = sim();
    (sim.issue_quote(td).unwrap(), sim.collateral().unwrap())
}

fn allow_simulated() -> Policy {
    Policy::from_toml("version = 1\nallow_simulated = true\n").unwrap()
}

#[test]
fn sim_quote_verifies_up_to_date_under_the_sim_root() {
    let td = SimTdReport::default().report_data([0x42; 64]);
    let (quote, collateral) = issue(&td);
    let verified = verify(&quote, &collateral, SIM_NOW).unwrap();
    assert_eq!(verified.root, TrustRoot::Simulated);
    assert_eq!(verified.tcb_status, TcbStatus::UpToDate);
    assert!(verified.advisory_ids.is_empty());
    assert_eq!(verified.fmspc, tdx::SIM_FMSPC);
    assert_eq!(verified.pce_id, tdx::SIM_PCE_ID);
}

#[test]
fn sim_quote_parses_into_the_fields_it_was_issued_with() {
    let mut td = SimTdReport::default().report_data([0x11; 64]);
    td.mr_td = [0x22; 48];
    td.rt_mr = [[1; 48], [2; 48], [3; 48], [4; 48]];
    td.mr_config_id = [5; 48];
    td.mr_owner = [6; 48];
    td.mr_owner_config = [7; 48];
    let (quote, _) = issue(&td);
    let parsed = Quote::parse(&quote).unwrap();
    assert_eq!(parsed.header.version, 4);
    assert_eq!(parsed.header.attestation_key_type, 2);
    assert_eq!(
        parsed.header.tee_type,
        cocoon_attestation::tdx::TEE_TYPE_TDX
    );
    assert_eq!(parsed.header.qe_vendor_id, tdx::INTEL_QE_VENDOR_ID);
    assert_eq!(parsed.trailing_zero_padding, 0);
    let body = parsed.td_report().unwrap();
    assert_eq!(body.mr_td, td.mr_td);
    assert_eq!(body.rt_mr, td.rt_mr);
    assert_eq!(body.mr_config_id, td.mr_config_id);
    assert_eq!(body.mr_owner, td.mr_owner);
    assert_eq!(body.mr_owner_config, td.mr_owner_config);
    assert_eq!(body.report_data, td.report_data);
    assert_eq!(body.td_attributes, td.td_attributes);
    assert_eq!(body.xfam, td.xfam);
    assert_eq!(body.tee_tcb_svn, td.tee_tcb_svn);
    assert_eq!(parsed.signature.certification_data.cert_type, 5);
}

#[test]
fn default_policy_rejects_sim_quote_as_simulated() {
    let (quote, collateral) = issue(&SimTdReport::default());
    let verified = verify(&quote, &collateral, SIM_NOW).unwrap();
    let decision = Policy::default().evaluate_tdx(&verified);
    assert!(!decision.accepted());
    assert!(
        matches!(
            decision.failures.as_slice(),
            [Error::SimulatedEvidenceNotAllowed]
        ),
        "{:?}",
        decision.failures
    );
}

#[test]
fn policy_allowing_simulated_accepts_sim_quote() {
    let (quote, collateral) = issue(&SimTdReport::default());
    let verified = verify(&quote, &collateral, SIM_NOW).unwrap();
    let decision = allow_simulated().evaluate_tdx(&verified);
    assert!(decision.accepted(), "{:?}", decision.failures);
}

#[test]
fn sim_quote_is_untrusted_by_the_production_verifier() {
    let (quote, collateral) = issue(&SimTdReport::default());
    let parsed = Quote::parse(&quote).unwrap();
    let err = TdxVerifier::new()
        .verify(&parsed, &collateral, SIM_NOW)
        .unwrap_err();
    assert!(matches!(err, Error::UntrustedRoot { .. }), "{err:?}");
}

#[test]
fn sim_quote_with_flipped_report_data_is_rejected() {
    let (mut quote, collateral) = issue(&SimTdReport::default());
    // REPORTDATA is the last 64 bytes of the 584-byte body after the 48-byte header.
    quote[48 + 584 - 1] ^= 0x01;
    let err = verify(&quote, &collateral, SIM_NOW).unwrap_err();
    assert!(matches!(err, Error::QuoteSignatureInvalid), "{err:?}");
}

#[test]
fn sim_quote_with_flipped_mrtd_is_rejected() {
    let (mut quote, collateral) = issue(&SimTdReport::default());
    quote[48 + 136] ^= 0x80; // MRTD starts at body offset 136
    let err = verify(&quote, &collateral, SIM_NOW).unwrap_err();
    assert!(matches!(err, Error::QuoteSignatureInvalid), "{err:?}");
}

#[test]
fn sim_quote_with_flipped_qe_report_is_rejected() {
    let (mut quote, collateral) = issue(&SimTdReport::default());
    // Signature data: len(4) sig(64) key(64) type(2) size(4), then the QE report; flip its
    // ISVSVN byte (offset 258).
    let qe_report = 48 + 584 + 4 + 64 + 64 + 2 + 4;
    quote[qe_report + 258] ^= 0x01;
    let err = verify(&quote, &collateral, SIM_NOW).unwrap_err();
    assert!(matches!(err, Error::QeReportSignatureInvalid), "{err:?}");
}

#[test]
fn debug_sim_td_is_rejected_by_a_policy_allowing_simulated() {
    let (quote, collateral) = issue(&SimTdReport::default().debug(true));
    let verified = verify(&quote, &collateral, SIM_NOW).unwrap();
    let decision = allow_simulated().evaluate_tdx(&verified);
    assert!(
        decision
            .failures
            .iter()
            .any(|e| matches!(e, Error::DebugNotAllowed)),
        "{:?}",
        decision.failures
    );
}

#[test]
fn debug_sim_td_is_rejected_by_the_default_policy() {
    let (quote, collateral) = issue(&SimTdReport::default().debug(true));
    let verified = verify(&quote, &collateral, SIM_NOW).unwrap();
    let failures = Policy::default().evaluate_tdx(&verified).failures;
    assert!(
        failures.iter().any(|e| matches!(e, Error::DebugNotAllowed)),
        "{failures:?}"
    );
    assert!(
        failures
            .iter()
            .any(|e| matches!(e, Error::SimulatedEvidenceNotAllowed)),
        "{failures:?}"
    );
}

#[test]
fn sim_td_without_sept_ve_disable_is_rejected_by_policy() {
    let (quote, collateral) = issue(&SimTdReport::default().sept_ve_disable(false));
    let verified = verify(&quote, &collateral, SIM_NOW).unwrap();
    let failures = allow_simulated().evaluate_tdx(&verified).failures;
    assert!(
        failures
            .iter()
            .any(|e| matches!(e, Error::SeptVeDisableRequired)),
        "{failures:?}"
    );
}

#[test]
fn sim_td_with_an_old_tdx_module_is_out_of_date() {
    let mut td = SimTdReport::default();
    td.tee_tcb_svn[0] = 3; // below the module identity's UpToDate ISVSVN 4
    let (quote, collateral) = issue(&td);
    let verified = verify(&quote, &collateral, SIM_NOW).unwrap();
    assert_eq!(verified.tcb_status, TcbStatus::OutOfDate);
    assert_eq!(verified.advisory_ids, [tdx::SIM_ADVISORY]);
}

#[test]
fn sim_td_with_an_old_late_microcode_svn_is_out_of_date() {
    let mut td = SimTdReport::default();
    td.tee_tcb_svn[2] = 2;
    let (quote, collateral) = issue(&td);
    let verified = verify(&quote, &collateral, SIM_NOW).unwrap();
    assert_eq!(verified.tcb_status, TcbStatus::OutOfDate);
}

#[test]
fn sim_td_below_every_tcb_level_is_rejected() {
    let mut td = SimTdReport::default();
    td.tee_tcb_svn[2] = 1;
    let (quote, collateral) = issue(&td);
    let err = verify(&quote, &collateral, SIM_NOW).unwrap_err();
    assert!(matches!(err, Error::TcbLevelNotFound), "{err:?}");
}

#[test]
fn sim_collateral_marking_the_tcb_revoked_is_rejected() {
    let sim = sim();
    let quote = sim.issue_quote(&SimTdReport::default()).unwrap();
    let collateral = sim
        .collateral_with(&SimCollateralOptions {
            tcb_status: TcbStatus::Revoked,
            ..SimCollateralOptions::default()
        })
        .unwrap();
    let err = verify(&quote, &collateral, SIM_NOW).unwrap_err();
    assert!(matches!(err, Error::TcbRevoked), "{err:?}");
}

#[test]
fn sim_pck_listed_in_the_pck_crl_is_rejected_as_revoked() {
    let sim = sim();
    let quote = sim.issue_quote(&SimTdReport::default()).unwrap();
    let collateral = sim
        .collateral_with(&SimCollateralOptions {
            revoke_pck: true,
            ..SimCollateralOptions::default()
        })
        .unwrap();
    let err = verify(&quote, &collateral, SIM_NOW).unwrap_err();
    assert!(
        matches!(
            err,
            Error::CertificateRevoked {
                subject: Subject::PckCertificate,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn sim_collateral_status_and_advisories_are_reported() {
    let sim = sim();
    let quote = sim.issue_quote(&SimTdReport::default()).unwrap();
    let collateral = sim
        .collateral_with(&SimCollateralOptions {
            tcb_status: TcbStatus::SWHardeningNeeded,
            advisory_ids: vec!["SIM-SA-00042".into()],
            ..SimCollateralOptions::default()
        })
        .unwrap();
    let verified = verify(&quote, &collateral, SIM_NOW).unwrap();
    assert_eq!(verified.tcb_status, TcbStatus::SWHardeningNeeded);
    assert_eq!(verified.advisory_ids, ["SIM-SA-00042"]);
}

#[test]
fn expired_sim_collateral_is_rejected_with_its_dates() {
    let sim = sim();
    let quote = sim.issue_quote(&SimTdReport::default()).unwrap();
    let collateral = sim
        .collateral_with(&SimCollateralOptions {
            next_update: SIM_NOW - 1,
            ..SimCollateralOptions::default()
        })
        .unwrap();
    let err = verify(&quote, &collateral, SIM_NOW).unwrap_err();
    assert!(
        matches!(
            err,
            Error::CollateralExpired { next_update, now, .. } if next_update == SIM_NOW - 1 && now == SIM_NOW
        ),
        "{err:?}"
    );
}

#[test]
fn not_yet_valid_sim_collateral_is_rejected() {
    let sim = sim();
    let quote = sim.issue_quote(&SimTdReport::default()).unwrap();
    let collateral = sim
        .collateral_with(&SimCollateralOptions {
            issue_date: SIM_NOW + 1,
            ..SimCollateralOptions::default()
        })
        .unwrap();
    let err = verify(&quote, &collateral, SIM_NOW).unwrap_err();
    assert!(
        matches!(err, Error::CollateralNotYetValid { issue_date, .. } if issue_date == SIM_NOW + 1),
        "{err:?}"
    );
}

#[test]
fn sim_evidence_is_valid_from_the_first_to_the_last_second_before_its_crls_next_update() {
    let (quote, collateral) = issue(&SimTdReport::default());
    verify(&quote, &collateral, SIM_VALID_FROM).unwrap();
    // A CRL's nextUpdate is exclusive (webpki, dcap-qvl): the last valid second is one before.
    verify(&quote, &collateral, SIM_VALID_UNTIL - 1).unwrap();
}

#[test]
fn sim_evidence_at_its_crls_next_update_is_rejected() {
    let (quote, collateral) = issue(&SimTdReport::default());
    let err = verify(&quote, &collateral, SIM_VALID_UNTIL).unwrap_err();
    assert!(
        matches!(err, Error::CrlExpired { next_update, .. } if next_update == SIM_VALID_UNTIL),
        "{err:?}"
    );
}

#[test]
fn sim_evidence_before_its_window_is_rejected() {
    let (quote, collateral) = issue(&SimTdReport::default());
    let err = verify(&quote, &collateral, SIM_VALID_FROM - 1).unwrap_err();
    assert!(
        matches!(err, Error::CollateralNotYetValid { subject: Subject::TcbInfo, issue_date, .. }
            if issue_date == SIM_VALID_FROM),
        "{err:?}"
    );
}

#[test]
fn sim_evidence_after_its_window_is_rejected() {
    let (quote, collateral) = issue(&SimTdReport::default());
    let err = verify(&quote, &collateral, SIM_VALID_UNTIL + 1).unwrap_err();
    assert!(
        matches!(err, Error::CollateralExpired { subject: Subject::TcbInfo, next_update, .. }
            if next_update == SIM_VALID_UNTIL),
        "{err:?}"
    );
}

#[test]
fn issuing_the_same_td_twice_gives_identical_bytes() {
    let td = SimTdReport::default().report_data([9; 64]);
    let a = sim().issue_quote(&td).unwrap();
    let b = sim().issue_quote(&td).unwrap();
    assert_eq!(a, b);
    assert_eq!(sim().collateral().unwrap(), sim().collateral().unwrap());
}

#[test]
fn different_report_data_gives_a_different_quote_signature() {
    let a = sim().issue_quote(&SimTdReport::default()).unwrap();
    let b = sim()
        .issue_quote(&SimTdReport::default().report_data([1; 64]))
        .unwrap();
    assert_ne!(a[632..700], b[632..700]);
}

#[test]
fn sim_certificates_say_simulated() {
    let chain = tdx::pck_chain_pem();
    let anchor = tdx::root_anchor();
    assert_eq!(anchor.kind(), TrustRoot::Simulated);
    // Every subject carries the warning; the root's DER contains it verbatim.
    let needle = b"COCOON SIMULATED SGX Root CA - NOT HARDWARE";
    assert!(anchor.der().windows(needle.len()).any(|w| w == needle));
    assert_eq!(chain.matches("-----BEGIN CERTIFICATE-----").count(), 3);
}

fn collateral_with(options: SimCollateralOptions) -> (Vec<u8>, Collateral) {
    let sim = sim();
    let quote = sim.issue_quote(&SimTdReport::default()).unwrap();
    (quote, sim.collateral_with(&options).unwrap())
}

/// The sim collateral with one field of dcap-qvl's structure changed after signing.
fn tampered_collateral(
    edit: impl FnOnce(&mut dcap_qvl::QuoteCollateralV3),
) -> (Vec<u8>, Collateral) {
    let (quote, collateral) = issue(&SimTdReport::default());
    let mut inner = collateral.into_inner();
    edit(&mut inner);
    (quote, Collateral::from_inner(inner).unwrap())
}

#[test]
fn sim_quote_with_flipped_qe_auth_data_is_rejected() {
    let (mut quote, collateral) = issue(&SimTdReport::default());
    // QE report (384) and its signature (64), then the auth data length (2) and data.
    let auth_data = 48 + 584 + 4 + 64 + 64 + 2 + 4 + 384 + 64 + 2;
    quote[auth_data] ^= 0x01;
    let err = verify(&quote, &collateral, SIM_NOW).unwrap_err();
    assert!(matches!(err, Error::QeReportDataMismatch), "{err:?}");
}

#[test]
fn sim_tcb_info_with_flipped_signature_is_rejected() {
    let (quote, collateral) = tampered_collateral(|c| c.tcb_info_signature[5] ^= 0x01);
    let err = verify(&quote, &collateral, SIM_NOW).unwrap_err();
    assert!(
        matches!(
            err,
            Error::CollateralSignatureInvalid {
                subject: Subject::TcbInfo
            }
        ),
        "{err:?}"
    );
}

#[test]
fn sim_qe_identity_with_flipped_signature_is_rejected() {
    let (quote, collateral) = tampered_collateral(|c| c.qe_identity_signature[5] ^= 0x01);
    let err = verify(&quote, &collateral, SIM_NOW).unwrap_err();
    assert!(
        matches!(
            err,
            Error::CollateralSignatureInvalid {
                subject: Subject::QeIdentity
            }
        ),
        "{err:?}"
    );
}

#[test]
fn sim_tcb_info_edited_after_signing_is_rejected() {
    let (quote, collateral) = tampered_collateral(|c| {
        c.tcb_info = c.tcb_info.replacen("\"OutOfDate\"", "\"UpToDate\"", 1);
    });
    let err = verify(&quote, &collateral, SIM_NOW).unwrap_err();
    assert!(
        matches!(
            err,
            Error::CollateralSignatureInvalid {
                subject: Subject::TcbInfo
            }
        ),
        "{err:?}"
    );
}

#[test]
fn sim_tcb_info_for_another_fmspc_is_rejected() {
    let (quote, collateral) = collateral_with(SimCollateralOptions {
        fmspc: [0x53, 0x49, 0x4d, 0, 0, 1],
        ..SimCollateralOptions::default()
    });
    let err = verify(&quote, &collateral, SIM_NOW).unwrap_err();
    assert!(
        matches!(&err, Error::FmspcMismatch { pck, tcb_info }
            if pck.eq_ignore_ascii_case("53494d000000") && tcb_info.eq_ignore_ascii_case("53494d000001")),
        "{err:?}"
    );
}

#[test]
fn sim_tcb_info_for_another_pce_id_is_rejected() {
    let (quote, collateral) = collateral_with(SimCollateralOptions {
        pce_id: [0, 1],
        ..SimCollateralOptions::default()
    });
    let err = verify(&quote, &collateral, SIM_NOW).unwrap_err();
    assert!(matches!(err, Error::PceIdMismatch { .. }), "{err:?}");
}

#[test]
fn sim_qe_identity_expecting_another_qe_signer_is_rejected() {
    let (quote, collateral) = collateral_with(SimCollateralOptions {
        qe_mr_signer: [0xaa; 32],
        ..SimCollateralOptions::default()
    });
    let err = verify(&quote, &collateral, SIM_NOW).unwrap_err();
    assert!(matches!(err, Error::QeIdentityMismatch { .. }), "{err:?}");
}

#[test]
fn sim_td_with_another_tdx_module_signer_is_rejected() {
    let td = SimTdReport {
        mr_signer_seam: [1; 48],
        ..SimTdReport::default()
    };
    let (quote, collateral) = issue(&td);
    let err = verify(&quote, &collateral, SIM_NOW).unwrap_err();
    assert!(
        matches!(err, Error::TdxModuleIdentityMismatch { .. }),
        "{err:?}"
    );
}

#[test]
fn sim_td_with_unexpected_seam_attributes_is_rejected() {
    let td = SimTdReport {
        seam_attributes: [0, 0, 0, 0, 0, 0, 0, 0x80],
        ..SimTdReport::default()
    };
    let (quote, collateral) = issue(&td);
    let err = verify(&quote, &collateral, SIM_NOW).unwrap_err();
    assert!(
        matches!(err, Error::TdxModuleIdentityMismatch { .. }),
        "{err:?}"
    );
}

#[test]
fn sim_collateral_with_the_crls_swapped_is_rejected() {
    let (quote, collateral) =
        tampered_collateral(|c| std::mem::swap(&mut c.root_ca_crl, &mut c.pck_crl));
    let err = verify(&quote, &collateral, SIM_NOW).unwrap_err();
    assert!(matches!(err, Error::CrlInvalid { .. }), "{err:?}");
}

/// A policy as the enclave's auditors would write it for a simulated deployment.
fn pinned_policy(td: &SimTdReport) -> Policy {
    Policy::from_toml(&format!(
        "version = 1\nallow_simulated = true\n[tdx]\nmrtd = [\"{}\"]\nrtmr0 = [\"{}\"]\n",
        hex::encode(td.mr_td),
        hex::encode(td.rt_mr[0]),
    ))
    .unwrap()
}

#[test]
fn sim_td_with_the_pinned_measurements_is_accepted() {
    let td = SimTdReport {
        rt_mr: [[0x10; 48], [0; 48], [0; 48], [0; 48]],
        ..SimTdReport::default()
    };
    let (quote, collateral) = issue(&td);
    let verified = verify(&quote, &collateral, SIM_NOW).unwrap();
    let decision = pinned_policy(&td).evaluate_tdx(&verified);
    assert!(decision.accepted(), "{:?}", decision.failures);
}

#[test]
fn sim_td_with_another_mrtd_and_rtmr0_fails_both_pins() {
    let pinned = SimTdReport::default();
    let other = SimTdReport {
        mr_td: [0xee; 48],
        rt_mr: [[0xdd; 48], [0; 48], [0; 48], [0; 48]],
        ..SimTdReport::default()
    };
    let (quote, collateral) = issue(&other);
    let verified = verify(&quote, &collateral, SIM_NOW).unwrap();
    let failures = pinned_policy(&pinned).evaluate_tdx(&verified).failures;
    assert!(
        matches!(
            failures.as_slice(),
            [
                Error::MeasurementNotAllowed { .. },
                Error::MeasurementNotAllowed { .. }
            ]
        ),
        "{failures:?}"
    );
}

/// Real TDX evidence (dcap-qvl sample, UpToDate at its pinned time; shared/vectors/README.md).
fn real_tdx() -> (Quote, Collateral, i64) {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/vectors/tdx/");
    let quote = std::fs::read(format!("{dir}tdx_quote")).unwrap();
    let collateral = std::fs::read(format!("{dir}tdx_quote_collateral.json")).unwrap();
    (
        Quote::parse(&quote).unwrap(),
        Collateral::from_json(&collateral).unwrap(),
        1_752_919_234,
    )
}

#[test]
fn real_quote_is_untrusted_by_a_sim_only_verifier() {
    let (quote, collateral, now) = real_tdx();
    let err = TdxVerifier::with_roots(vec![tdx::root_anchor()])
        .verify(&quote, &collateral, now)
        .unwrap_err();
    assert!(matches!(err, Error::UntrustedRoot { .. }), "{err:?}");
}

#[test]
fn adding_the_sim_root_keeps_real_evidence_intel() {
    let (quote, collateral, now) = real_tdx();
    let verified = verifier().verify(&quote, &collateral, now).unwrap();
    assert_eq!(verified.root, TrustRoot::Intel);
    assert_eq!(verified.tcb_status, TcbStatus::UpToDate);
}

#[test]
fn sim_quote_with_real_intel_collateral_is_rejected() {
    let (_, real_collateral, now) = real_tdx();
    let (quote, _) = issue(&SimTdReport::default());
    let err = verify(&quote, &real_collateral, now).unwrap_err();
    // The PCK chain must end in the anchor that signed the collateral.
    assert!(
        matches!(
            err,
            Error::UntrustedRoot {
                subject: Subject::PckCertChain
            }
        ),
        "{err:?}"
    );
}

#[test]
fn real_quote_with_sim_collateral_is_rejected() {
    let (quote, _, _) = real_tdx();
    let (_, sim_collateral) = issue(&SimTdReport::default());
    let err = verifier()
        .verify(&quote, &sim_collateral, SIM_NOW)
        .unwrap_err();
    // The PCK chain must end in the anchor that signed the collateral.
    assert!(
        matches!(
            err,
            Error::UntrustedRoot {
                subject: Subject::PckCertChain
            }
        ),
        "{err:?}"
    );
}
