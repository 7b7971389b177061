//! Real evidence, fully verified at its pinned time, then judged by policies: the default one and
//! the documented examples in `docs/examples`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use cocoon_attestation::policy::Policy;
use cocoon_attestation::snp::{SnpVerifier, VerifiedSnpReport};
use cocoon_attestation::tdx::{Collateral, Quote, TcbStatus, TdxVerifier, VerifiedQuote};
use cocoon_attestation::Error;

fn vector(relative: &str) -> Vec<u8> {
    let p = format!(
        "{}/../../shared/vectors/{relative}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

fn example(name: &str) -> Policy {
    let p = format!("{}/../docs/examples/{name}", env!("CARGO_MANIFEST_DIR"));
    Policy::from_toml(&std::fs::read_to_string(&p).unwrap()).unwrap()
}

fn policy(text: &str) -> Policy {
    Policy::from_toml(text).unwrap()
}

fn verified_quote(quote: &str, collateral: &str, now: i64) -> VerifiedQuote {
    let quote = Quote::parse(&vector(&format!("tdx/{quote}"))).unwrap();
    let collateral = Collateral::from_json(&vector(&format!("tdx/{collateral}"))).unwrap();
    TdxVerifier::new().verify(&quote, &collateral, now).unwrap()
}

fn verified_report(report: &str, vcek: &str, now: i64) -> VerifiedSnpReport {
    SnpVerifier::new()
        .verify_bytes(
            &vector(&format!("snp/{report}")),
            &vector(&format!("snp/{vcek}")),
            None,
            now,
        )
        .unwrap()
}

// Pinned times from shared/vectors/README.md.
const TDX_AT: i64 = 1752919234;
const SGX_AT: i64 = 1752919277;
const TDX_QUOTE_4_AT: i64 = 1688173200;
// Inside the validity of the Milan VCEKs (2023-11-14) and of the Genoa VCEK (2025-10-09).
const T_MILAN: i64 = 1_700_000_000;
const T_GENOA: i64 = 1_760_000_000;

#[test]
fn verified_tdx_quote_is_accepted_by_default_and_example_policies() {
    let v = verified_quote("tdx_quote", "tdx_quote_collateral.json", TDX_AT);
    assert_eq!(v.tcb_status, TcbStatus::UpToDate);
    assert_eq!(Policy::default().evaluate_tdx(&v).failures, vec![]);
    assert_eq!(example("policy.toml").evaluate_tdx(&v).failures, vec![]);
    assert_eq!(example("tdx.toml").evaluate_tdx(&v).failures, vec![]);
    assert_eq!(
        example("snp.toml").evaluate_tdx(&v).failures,
        vec![Error::PlatformNotAllowed {
            platform: "TDX".into()
        }]
    );
}

#[test]
fn verified_debug_td_is_rejected_by_default_policy_and_accepted_when_debug_is_allowed() {
    let v = verified_quote(
        "tdx_quote_4.dat",
        "DERIVED_dcapqvl_collateral_SPR_E4.json",
        TDX_QUOTE_4_AT,
    );
    assert_eq!(
        Policy::default().evaluate_tdx(&v).failures,
        vec![Error::DebugNotAllowed]
    );
    let debug = policy("version = 1\n[tdx]\nallow_debug = true\n");
    assert_eq!(debug.evaluate_tdx(&v).failures, vec![]);
    // The full example pins another platform's values: every failed check comes back, in order.
    let failures = example("policy.toml").evaluate_tdx(&v).failures;
    let fields: Vec<_> = failures
        .iter()
        .map(|f| match f {
            Error::BelowMinimum { field, .. } | Error::MeasurementNotAllowed { field, .. } => {
                field.to_string()
            }
            other => other.kind(),
        })
        .collect();
    assert_eq!(
        fields,
        [
            "tdx.min_tcb_evaluation_data_number",
            "debug_not_allowed",
            "tdx.min_tee_tcb_svn",
            "tdx.mrtd",
            "tdx.rtmr0",
            "tdx.rtmr1",
            "tdx.rtmr2",
            "tdx.xfam",
            "tdx.td_attributes",
        ],
        "{failures:?}"
    );
}

#[test]
fn verified_sgx_quote_meets_the_sgx_examples_and_fails_a_no_advisory_policy() {
    let v = verified_quote("sgx_quote", "sgx_quote_collateral.json", SGX_AT);
    assert_eq!(Policy::default().evaluate_tdx(&v).failures, vec![]);
    assert_eq!(example("policy.toml").evaluate_tdx(&v).failures, vec![]);
    assert_eq!(example("sgx.toml").evaluate_tdx(&v).failures, vec![]);
    let strict = policy("version = 1\n[sgx]\nallowed_advisory_ids = []\n");
    let ids: Vec<_> = strict
        .evaluate_tdx(&v)
        .failures
        .into_iter()
        .map(|f| match f {
            Error::AdvisoryNotAllowed { id } => id,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(ids, v.advisory_ids);
    assert!(!ids.is_empty());
}

#[test]
fn verified_snp_debug_report_is_rejected_by_default_policy() {
    let v = verified_report("attestation.bin", "vcek.testcer", T_MILAN);
    assert_eq!(
        Policy::default().evaluate_snp(&v).failures,
        vec![Error::DebugNotAllowed]
    );
    let debug = policy("version = 1\n[snp]\nallow_debug = true\n");
    assert_eq!(debug.evaluate_snp(&v).failures, vec![]);
}

#[test]
fn verified_snp_report_meets_the_full_example_policy() {
    let v = verified_report("test-report.bin", "test-vcek.der", T_MILAN);
    assert_eq!(Policy::default().evaluate_snp(&v).failures, vec![]);
    assert_eq!(example("policy.toml").evaluate_snp(&v).failures, vec![]);
}

#[test]
fn verified_genoa_report_is_accepted_by_default_and_refused_by_a_tdx_only_policy() {
    let v = verified_report(
        "DERIVED_e2e_snp_report.bin",
        "DERIVED_e2e_snp_vcek.der",
        T_GENOA,
    );
    assert_eq!(Policy::default().evaluate_snp(&v).failures, vec![]);
    assert_eq!(
        example("tdx.toml").evaluate_snp(&v).failures,
        vec![Error::PlatformNotAllowed {
            platform: "SEV-SNP".into()
        }]
    );
}
