//! Property: flipping any bit of the signed part of simulated evidence — header ‖ TD report of a
//! TDX quote, bytes 0..0x2A0 of an SNP report — makes verification fail.
#![cfg(feature = "sim")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]

use std::sync::OnceLock;

use cocoon_attestation::sim::snp::{self, SimSnp, SimSnpReport};
use cocoon_attestation::sim::tdx::{self, SimTdReport, SimTdx};
use cocoon_attestation::sim::SIM_NOW;
use cocoon_attestation::snp::{SnpReport, SnpVerifier};
use cocoon_attestation::tdx::{Collateral, Quote, RootAnchor, TdxVerifier};
use cocoon_attestation::Error;
use proptest::prelude::*;

struct Tdx {
    quote: Vec<u8>,
    collateral: Collateral,
}

fn tdx_case() -> &'static Tdx {
    static CASE: OnceLock<Tdx> = OnceLock::new();
    CASE.get_or_init(|| {
        let sim = SimTdx::new().unwrap();
        Tdx {
            quote: sim
                .issue_quote(&SimTdReport::default().report_data([0x5a; 64]))
                .unwrap(),
            collateral: sim.collateral().unwrap(),
        }
    })
}

fn snp_report() -> &'static Vec<u8> {
    static REPORT: OnceLock<Vec<u8>> = OnceLock::new();
    REPORT.get_or_init(|| {
        SimSnp::new()
            .unwrap()
            .issue_report(&SimSnpReport::default().report_data([0xa5; 64]))
            .unwrap()
    })
}

fn verify_tdx(quote: &[u8]) -> Result<(), Error> {
    let case = tdx_case();
    let quote = Quote::parse(quote)?;
    TdxVerifier::with_roots(vec![RootAnchor::intel(), tdx::root_anchor()])
        .verify(&quote, &case.collateral, SIM_NOW)
        .map(|_| ())
}

fn verify_snp(report: &[u8]) -> Result<(), Error> {
    let report = SnpReport::parse(report)?;
    SnpVerifier::with_roots(snp::amd_roots())
        .verify(&report, snp::vcek_der(), None, SIM_NOW)
        .map(|_| ())
}

#[test]
fn unmodified_sim_evidence_verifies() {
    verify_tdx(&tdx_case().quote).unwrap();
    verify_snp(snp_report()).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_bit_flip_in_the_signed_part_of_a_sim_quote_is_rejected(
        offset in 0usize..(48 + 584),
        bit in 0u8..8,
    ) {
        let mut quote = tdx_case().quote.clone();
        quote[offset] ^= 1 << bit;
        prop_assert!(verify_tdx(&quote).is_err());
    }

    #[test]
    fn any_bit_flip_in_the_signed_part_of_a_sim_report_is_rejected(
        offset in 0usize..0x2A0,
        bit in 0u8..8,
    ) {
        let mut report = snp_report().clone();
        report[offset] ^= 1 << bit;
        prop_assert!(verify_snp(&report).is_err());
    }

    #[test]
    fn a_bit_flip_in_the_td_report_is_a_quote_signature_failure(
        offset in 48usize..(48 + 584),
        bit in 0u8..8,
    ) {
        let mut quote = tdx_case().quote.clone();
        quote[offset] ^= 1 << bit;
        let err = verify_tdx(&quote).unwrap_err();
        prop_assert!(matches!(err, Error::QuoteSignatureInvalid), "{:?}", err);
    }
}
