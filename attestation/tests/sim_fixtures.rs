//! Simulated evidence committed in `tests/data/sim/` (see its README.md) and what a build
//! WITHOUT the `sim` feature does with it: the production verifiers reject it as untrusted and
//! a policy cannot even ask for it. With the feature, the fixtures must equal what the sim
//! issues today (deterministic sim), and an ignored test rewrites them:
//!
//! `cargo test -p cocoon-attestation --features sim --test sim_fixtures -- --ignored`
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]

use cocoon_attestation::snp::{SnpReport, SnpVerifier};
use cocoon_attestation::tdx::{Collateral, Quote, TdxVerifier};
use cocoon_attestation::{Error, Subject};

/// 2026-01-01T00:00:00Z, inside the sim's validity window (`sim::SIM_NOW`).
const SIM_NOW: i64 = 1_767_225_600;

fn fixture_path(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data/sim")
        .join(name)
}

fn fixture(name: &str) -> Vec<u8> {
    let path = fixture_path(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn tdx_fixture() -> (Quote, Collateral) {
    let quote = Quote::parse(&fixture("tdx_quote.bin")).unwrap();
    let collateral = Collateral::from_json(&fixture("tdx_collateral.json")).unwrap();
    (quote, collateral)
}

#[test]
fn production_tdx_verifier_rejects_the_sim_quote_as_untrusted() {
    let (quote, collateral) = tdx_fixture();
    let err = TdxVerifier::new()
        .verify(&quote, &collateral, SIM_NOW)
        .unwrap_err();
    assert!(matches!(err, Error::UntrustedRoot { .. }), "{err:?}");
}

#[test]
fn production_snp_verifier_rejects_the_sim_report() {
    let report = SnpReport::parse(&fixture("snp_report.bin")).unwrap();
    let err = SnpVerifier::new()
        .verify(&report, &fixture("snp_vcek.der"), None, SIM_NOW)
        .unwrap_err();
    // No embedded ASK issued the sim VCEK.
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
fn production_snp_verifier_rejects_the_sim_ark_given_as_chain() {
    let report = SnpReport::parse(&fixture("snp_report.bin")).unwrap();
    let chain = fixture("snp_cert_chain.pem");
    let err = SnpVerifier::new()
        .verify(&report, &fixture("snp_vcek.der"), Some(&chain), SIM_NOW)
        .unwrap_err();
    // A chain given by the caller must still end in an embedded ARK.
    assert!(
        matches!(
            err,
            Error::UntrustedRoot {
                subject: Subject::Ark
            }
        ),
        "{err:?}"
    );
}

#[cfg(not(feature = "sim"))]
#[test]
fn a_build_without_sim_refuses_a_policy_allowing_simulated_evidence() {
    let err =
        cocoon_attestation::policy::Policy::from_toml("version = 1\nallow_simulated = true\n")
            .unwrap_err();
    // Refused for the missing feature, not for the form of the file.
    assert!(
        matches!(&err, Error::PolicyInvalid { reason } if reason.contains("`sim`")),
        "{err:?}"
    );
}

#[cfg(feature = "sim")]
mod with_sim {
    use super::*;
    use cocoon_attestation::sim::snp::{self, SimSnp, SimSnpReport};
    use cocoon_attestation::sim::tdx::{SimTdReport, SimTdx};

    /// REPORTDATA / REPORT_DATA of the fixtures: "cocoon sim fixture", zero-padded.
    fn fixture_report_data() -> [u8; 64] {
        let mut data = [0u8; 64];
        let text = b"cocoon sim fixture";
        data[..text.len()].copy_from_slice(text);
        data
    }

    /// Every fixture file and its bytes as the sim issues them now.
    fn fixtures() -> Vec<(&'static str, Vec<u8>)> {
        let tdx = SimTdx::new().unwrap();
        let quote = tdx
            .issue_quote(&SimTdReport::default().report_data(fixture_report_data()))
            .unwrap();
        let collateral = tdx.collateral().unwrap();
        let mut collateral_json = collateral.to_json().into_bytes();
        collateral_json.push(b'\n');
        let report = SimSnp::new()
            .unwrap()
            .issue_report(&SimSnpReport::default().report_data(fixture_report_data()))
            .unwrap();
        vec![
            ("tdx_quote.bin", quote),
            ("tdx_collateral.json", collateral_json),
            (
                "tdx_root_ca.der",
                cocoon_attestation::sim::tdx::root_ca_der().to_vec(),
            ),
            ("snp_report.bin", report),
            ("snp_vcek.der", snp::vcek_der().to_vec()),
            ("snp_cert_chain.pem", snp::cert_chain_pem().into_bytes()),
        ]
    }

    #[test]
    fn committed_fixtures_equal_what_the_sim_issues() {
        for (name, bytes) in fixtures() {
            assert!(
                fixture(name) == bytes,
                "tests/data/sim/{name} is stale: regenerate with --ignored"
            );
        }
    }

    #[test]
    #[ignore = "rewrites tests/data/sim; run after scripts/gen-sim-ca"]
    fn regenerate_sim_fixtures() {
        for (name, bytes) in fixtures() {
            std::fs::write(fixture_path(name), bytes).unwrap();
        }
    }
}
