//! Policy evaluation on real evidence from `../shared/vectors`. Full verification is tested
//! elsewhere; here the verified claims are built directly from the parsed real bytes with the
//! TCB status and advisories the vectors' README gives for them.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use super::*;
use crate::tdx::{Quote, QuoteBody, TcbStatus, VerifiedQuote};
use crate::test_vectors;

fn verified(file: &str, tcb_status: TcbStatus, advisories: &[&str]) -> VerifiedQuote {
    let bytes = test_vectors::read(file);
    // go-tdx-guest appended a line of text to its production quote; the quote is the prefix.
    let quote = if file.ends_with("SPR_E4.dat") {
        Quote::parse_prefix(&bytes).map(|(q, _)| q)
    } else {
        Quote::parse(&bytes)
    }
    .unwrap_or_else(|e| panic!("{file}: {e}"));
    let td15 = matches!(quote.body, QuoteBody::Td15(_));
    VerifiedQuote {
        quote,
        tcb_status,
        advisory_ids: advisories.iter().map(|s| s.to_string()).collect(),
        fmspc: [0; 6],
        pce_id: [0; 2],
        root: TrustRoot::Intel,
        collateral_valid_from: 0,
        collateral_valid_until: 0,
        tcb_date: String::new(),
        // What the vectors' collateral JSON files carry.
        tcb_evaluation_data_number: 17,
        current_tcb_status: td15.then_some(tcb_status),
        relaunch_advised: false,
        qe_tcb_status: TcbStatus::UpToDate,
    }
}

fn example(name: &str) -> Policy {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../docs/examples")
        .join(name);
    Policy::from_toml(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn real_debug_td_quote_is_rejected_by_default_policy_for_debug_only() {
    // trustee's tdx_quote_4.dat: TDATTRIBUTES = DEBUG | SEPT_VE_DISABLE.
    let v = verified("tdx/tdx_quote_4.dat", TcbStatus::UpToDate, &[]);
    assert_eq!(
        Policy::default().evaluate_tdx(&v).failures,
        vec![Error::DebugNotAllowed]
    );
}

#[test]
fn real_debug_td_quote_is_accepted_when_the_policy_allows_debug() {
    let v = verified("tdx/tdx_quote_4.dat", TcbStatus::UpToDate, &[]);
    let p = Policy::from_toml("version = 1\n[tdx]\nallow_debug = true\n").unwrap();
    assert_eq!(p.evaluate_tdx(&v).failures, vec![]);
}

#[test]
fn real_production_quote_without_sept_ve_disable_is_rejected() {
    // go-tdx-guest's tdx_prod_quote_SPR_E4.dat: TDATTRIBUTES = PKS only.
    let v = verified("tdx/tdx_prod_quote_SPR_E4.dat", TcbStatus::UpToDate, &[]);
    assert_eq!(
        Policy::default().evaluate_tdx(&v).failures,
        vec![Error::SeptVeDisableRequired]
    );
}

#[test]
fn real_azure_td_quote_without_sept_ve_disable_is_rejected() {
    let v = verified("tdx/az_td_quote.bin", TcbStatus::UpToDate, &[]);
    assert_eq!(
        Policy::default().evaluate_tdx(&v).failures,
        vec![Error::SeptVeDisableRequired]
    );
}

#[test]
fn real_tdx_quote_meets_the_documented_example_policy() {
    let v = verified("tdx/tdx_quote", TcbStatus::UpToDate, &[]);
    assert_eq!(example("policy.toml").evaluate_tdx(&v).failures, vec![]);
    assert_eq!(example("tdx.toml").evaluate_tdx(&v).failures, vec![]);
    assert_eq!(Policy::default().evaluate_tdx(&v).failures, vec![]);
}

#[test]
fn real_tdx_quote_with_another_mrtd_fails_the_example_policy_naming_mrtd() {
    let mut v = verified("tdx/tdx_quote", TcbStatus::UpToDate, &[]);
    let QuoteBody::Td10(td) = &mut v.quote.body else {
        panic!("tdx_quote is a TD 1.0 quote")
    };
    td.mr_td[47] ^= 1;
    let failures = example("policy.toml").evaluate_tdx(&v).failures;
    assert!(
        matches!(
            failures.as_slice(),
            [Error::MeasurementNotAllowed {
                field: "tdx.mrtd",
                ..
            }]
        ),
        "{failures:?}"
    );
}

#[test]
fn real_sgx_quote_meets_the_example_policy_with_its_status_and_advisories() {
    let v = verified(
        "tdx/sgx_quote",
        TcbStatus::ConfigurationAndSWHardeningNeeded,
        &["INTEL-SA-00289", "INTEL-SA-00615"],
    );
    assert_eq!(example("policy.toml").evaluate_tdx(&v).failures, vec![]);
    assert_eq!(example("sgx.toml").evaluate_tdx(&v).failures, vec![]);
    // The TDX-only example refuses SGX evidence.
    assert_eq!(
        example("tdx.toml").evaluate_tdx(&v).failures,
        vec![Error::PlatformNotAllowed {
            platform: "SGX".into()
        }]
    );
}

#[test]
fn real_sgx_quote_advisories_are_refused_by_a_policy_tolerating_none() {
    let v = verified(
        "tdx/sgx_quote",
        TcbStatus::ConfigurationAndSWHardeningNeeded,
        &["INTEL-SA-00289", "INTEL-SA-00615"],
    );
    let p = Policy::from_toml(
        "version = 1\n[sgx]\nallowed_advisory_ids = []\nallowed_tcb_statuses = [\"UpToDate\"]\n",
    )
    .unwrap();
    assert_eq!(
        p.evaluate_tdx(&v).failures,
        vec![
            Error::TcbStatusNotAllowed {
                status: "ConfigurationAndSWHardeningNeeded".into()
            },
            Error::AdvisoryNotAllowed {
                id: "INTEL-SA-00289".into()
            },
            Error::AdvisoryNotAllowed {
                id: "INTEL-SA-00615".into()
            },
        ]
    );
}

#[test]
fn real_td15_quote_is_checked_on_both_tee_tcb_svns() {
    // tdx_quote_outdated is a v5 quote with a TD 1.5 body.
    let v = verified("tdx/tdx_quote_outdated", TcbStatus::UpToDate, &[]);
    let QuoteBody::Td15(td) = &v.quote.body else {
        panic!("tdx_quote_outdated has a TD 1.5 body")
    };
    assert_eq!(Policy::default().evaluate_tdx(&v).failures, vec![]);
    // A minimum one above the launch SVN in byte 0 fails TEE_TCB_SVN (and SVN2 if it is not higher).
    let mut min = td.base.tee_tcb_svn;
    min[0] = min[0].saturating_add(1);
    let p = Policy::from_toml(&format!(
        "version = 1\n[tdx]\nmin_tee_tcb_svn = \"{}\"\n",
        hex::encode(min)
    ))
    .unwrap();
    let failures = p.evaluate_tdx(&v).failures;
    assert!(
        matches!(
            failures.first(),
            Some(Error::BelowMinimum {
                field: "tdx.min_tee_tcb_svn",
                ..
            })
        ),
        "{failures:?}"
    );
    let expected = if td.tee_tcb_svn2.iter().zip(min.iter()).any(|(a, m)| a < m) {
        2
    } else {
        1
    };
    assert_eq!(failures.len(), expected, "{failures:?}");
}

// ------------------------------------------------------------------ SEV-SNP

use crate::snp::{Generation, SnpReport, VerifiedSnpReport};

/// Verified claims from a real report; the generation is the one its VCEK names (README).
fn verified_snp(file: &str, generation: Generation) -> VerifiedSnpReport {
    let report =
        SnpReport::parse(&test_vectors::read(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    VerifiedSnpReport {
        generation,
        signing_key: report.signing_key,
        root: TrustRoot::Amd,
        reported_tcb: report.reported_tcb.parts(generation),
        current_tcb: report.current_tcb.parts(generation),
        committed_tcb: report.committed_tcb.parts(generation),
        launch_tcb: report.launch_tcb.parts(generation),
        report,
    }
}

#[test]
fn real_snp_report_with_debug_policy_is_rejected_by_default_policy_for_debug_only() {
    // go-sev-guest's attestation.bin: guest policy 0xB0000 (DEBUG bit 19).
    let v = verified_snp("snp/attestation.bin", Generation::Milan);
    assert_eq!(
        Policy::default().evaluate_snp(&v).failures,
        vec![Error::DebugNotAllowed]
    );
    let p = Policy::from_toml("version = 1\n[snp]\nallow_debug = true\n").unwrap();
    assert_eq!(p.evaluate_snp(&v).failures, vec![]);
}

#[test]
fn real_snp_report_meets_the_documented_example_policy() {
    // trustee's test-report.bin: current microcode SPL above the committed one (runtime load),
    // same firmware version: not provisional.
    let v = verified_snp("snp/test-report.bin", Generation::Milan);
    assert_ne!(v.current_tcb, v.committed_tcb);
    assert_eq!(Policy::default().evaluate_snp(&v).failures, vec![]);
    assert_eq!(example("policy.toml").evaluate_snp(&v).failures, vec![]);
}

#[test]
fn real_snp_report_with_smt_is_refused_by_the_no_smt_example() {
    let v = verified_snp("snp/test-report.bin", Generation::Milan);
    let failures = example("snp.toml").evaluate_snp(&v).failures;
    assert!(
        matches!(failures.as_slice(), [Error::FeatureNotAllowed { feature }] if feature.contains("SMT")),
        "{failures:?}"
    );
}

#[test]
fn real_snp_report_with_another_measurement_fails_naming_the_field() {
    let mut v = verified_snp("snp/test-report.bin", Generation::Milan);
    v.report.measurement[0] ^= 1;
    let failures = example("policy.toml").evaluate_snp(&v).failures;
    assert!(
        matches!(
            failures.as_slice(),
            [Error::MeasurementNotAllowed {
                field: "snp.measurement",
                ..
            }]
        ),
        "{failures:?}"
    );
}

#[test]
fn real_genoa_report_is_refused_by_a_milan_only_policy_and_by_a_tdx_only_policy() {
    let v = verified_snp("snp/DERIVED_e2e_snp_report.bin", Generation::Genoa);
    assert_eq!(Policy::default().evaluate_snp(&v).failures, vec![]);
    let milan =
        Policy::from_toml("version = 1\n[snp]\nallowed_generations = [\"Milan\"]\n").unwrap();
    assert_eq!(
        milan.evaluate_snp(&v).failures,
        vec![Error::MeasurementNotAllowed {
            field: "snp.allowed_generations",
            actual: "Genoa".into()
        }]
    );
    assert_eq!(
        example("tdx.toml").evaluate_snp(&v).failures,
        vec![Error::PlatformNotAllowed {
            platform: "SEV-SNP".into()
        }]
    );
}

#[test]
fn real_snp_report_below_a_raised_tcb_minimum_fails_per_component() {
    let v = verified_snp("snp/test-report.bin", Generation::Milan);
    let p = Policy::from_toml(
        "version = 1\n[snp.min_tcb]\nbootloader = 4\nsnp = 9\n[snp.min_launch_tcb]\nmicrocode = 200\n",
    )
    .unwrap();
    let fields: Vec<_> = p
        .evaluate_snp(&v)
        .failures
        .iter()
        .map(|f| match f {
            Error::BelowMinimum { field, .. } => *field,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        fields,
        vec![
            "snp.min_tcb.bootloader",
            "snp.min_tcb.snp",
            "snp.min_launch_tcb.microcode"
        ]
    );
}
