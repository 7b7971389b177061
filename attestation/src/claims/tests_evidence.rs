//! Claims checked against verified evidence: real hardware evidence (genuine, but made for
//! someone else's claims) and, with feature `sim`, evidence the simulated TEE makes for ours.

use super::*;
use crate::snp::SnpVerifier;
use crate::tdx::{Collateral, Quote, TdxVerifier};
use crate::test_vectors;

/// Pinned verification times of the vectors (shared/vectors/README.md).
const TDX_AT: i64 = 1_752_919_234;
const MILAN_AT: i64 = 1_700_000_000;

fn claims(platform: ClaimsPlatform, now: i64) -> Claims {
    Claims {
        platform,
        tls_spki_sha256: [0xAA; 32],
        hpke_public_key: None,
        model: ModelIdentity {
            blake3: [0xBB; 32],
            dm_verity_root: None,
        },
        config_digest: [0xCC; 32],
        created_at: now - 60,
        expires_at: now + 60,
        nonce: None,
        gpu: None,
    }
}

fn real_tdx() -> crate::tdx::VerifiedQuote {
    let quote = Quote::parse(&test_vectors::read("tdx/tdx_quote")).unwrap();
    let collateral =
        Collateral::from_json(&test_vectors::read("tdx/tdx_quote_collateral.json")).unwrap();
    TdxVerifier::new()
        .verify(&quote, &collateral, TDX_AT)
        .unwrap()
}

fn real_snp() -> crate::snp::VerifiedSnpReport {
    let text = test_vectors::read("snp/report_milan.hex");
    let compact: Vec<u8> = text
        .into_iter()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    let report = hex::decode(compact).unwrap();
    SnpVerifier::new()
        .verify_bytes(
            &report,
            &test_vectors::read("snp/vcek_milan.der"),
            None,
            MILAN_AT,
        )
        .unwrap()
}

// Genuine evidence always carries someone else's REPORT_DATA here: making claims that hash to
// it would take a SHA-512 preimage. That is exactly the transplant attack: authentic evidence,
// presented with our claims (our TLS key), must fail on the binding.

#[test]
fn genuine_tdx_quote_with_our_claims_fails_the_binding() {
    let verified = real_tdx();
    let err = claims(ClaimsPlatform::Tdx, TDX_AT)
        .check_tdx(&verified, TDX_AT, None)
        .unwrap_err();
    match err {
        Error::ReportDataMismatch { actual, .. } => {
            assert_eq!(actual, hex::encode(verified.quote.report_data()));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn genuine_snp_report_with_our_claims_fails_the_binding() {
    let verified = real_snp();
    let err = claims(ClaimsPlatform::SevSnp, MILAN_AT)
        .check_snp(&verified, MILAN_AT, None)
        .unwrap_err();
    assert!(matches!(err, Error::ReportDataMismatch { .. }), "{err:?}");
}

#[test]
fn claims_naming_another_platform_than_the_evidence_are_refused_first() {
    let tdx = real_tdx();
    for platform in [
        ClaimsPlatform::SevSnp,
        ClaimsPlatform::Sgx,
        ClaimsPlatform::SimulatedTdx,
    ] {
        assert_eq!(
            claims(platform, TDX_AT).check_tdx(&tdx, TDX_AT, None),
            Err(Error::ClaimsPlatformMismatch {
                claims: platform.as_str(),
                evidence: "tdx"
            })
        );
    }
    let snp = real_snp();
    assert_eq!(
        claims(ClaimsPlatform::SimulatedSnp, MILAN_AT).check_snp(&snp, MILAN_AT, None),
        Err(Error::ClaimsPlatformMismatch {
            claims: "sim-snp",
            evidence: "sev-snp"
        })
    );
}

#[cfg(feature = "sim")]
mod simulated {
    use super::*;
    use crate::sim::snp::{SimSnp, SimSnpReport};
    use crate::sim::tdx::{SimTdReport, SimTdx};
    use crate::sim::SIM_NOW;

    fn sim_tdx(report_data: [u8; 64]) -> crate::tdx::VerifiedQuote {
        let sim = SimTdx::new().unwrap();
        let quote = sim
            .issue_quote(&SimTdReport::default().report_data(report_data))
            .unwrap();
        TdxVerifier::with_roots(vec![sim.root_anchor()])
            .verify(
                &Quote::parse(&quote).unwrap(),
                &sim.collateral().unwrap(),
                SIM_NOW,
            )
            .unwrap()
    }

    fn sim_snp(report_data: [u8; 64]) -> crate::snp::VerifiedSnpReport {
        let sim = SimSnp::new().unwrap();
        let report = sim
            .issue_report(&SimSnpReport::default().report_data(report_data))
            .unwrap();
        SnpVerifier::with_roots(sim.amd_roots())
            .verify_bytes(&report, sim.vcek_der(), None, SIM_NOW)
            .unwrap()
    }

    #[test]
    fn sim_evidence_made_for_the_claims_passes_every_check() {
        let mut c = claims(ClaimsPlatform::SimulatedTdx, SIM_NOW);
        c.nonce = Some(Nonce::new(b"fresh".to_vec()).unwrap());
        c.check_tdx(&sim_tdx(c.report_data()), SIM_NOW, Some(b"fresh"))
            .unwrap();
        // A verifier that sent no nonce does not care that the claims carry one.
        c.check_tdx(&sim_tdx(c.report_data()), SIM_NOW, None)
            .unwrap();

        let c = claims(ClaimsPlatform::SimulatedSnp, SIM_NOW);
        c.check_snp(&sim_snp(c.report_data()), SIM_NOW, None)
            .unwrap();
    }

    #[test]
    fn hardware_claims_with_simulated_evidence_are_refused() {
        let c = claims(ClaimsPlatform::Tdx, SIM_NOW);
        assert_eq!(
            c.check_tdx(&sim_tdx(c.report_data()), SIM_NOW, None),
            Err(Error::ClaimsPlatformMismatch {
                claims: "tdx",
                evidence: "sim-tdx"
            })
        );
        let c = claims(ClaimsPlatform::SevSnp, SIM_NOW);
        assert_eq!(
            c.check_snp(&sim_snp(c.report_data()), SIM_NOW, None),
            Err(Error::ClaimsPlatformMismatch {
                claims: "sev-snp",
                evidence: "sim-snp"
            })
        );
    }

    #[test]
    fn bound_claims_outside_their_window_are_refused() {
        let c = claims(ClaimsPlatform::SimulatedTdx, SIM_NOW);
        let verified = sim_tdx(c.report_data());
        assert_eq!(
            c.check_tdx(&verified, c.expires_at, None),
            Err(Error::ClaimsExpired {
                expires_at: c.expires_at,
                now: c.expires_at
            })
        );
        assert_eq!(
            c.check_tdx(&verified, c.created_at - 1, None),
            Err(Error::ClaimsNotYetValid {
                created_at: c.created_at,
                now: c.created_at - 1
            })
        );
    }

    #[test]
    fn bound_claims_with_another_or_no_nonce_are_refused() {
        let mut c = claims(ClaimsPlatform::SimulatedSnp, SIM_NOW);
        let verified = sim_snp(c.report_data());
        assert_eq!(
            c.check_snp(&verified, SIM_NOW, Some(b"sent")),
            Err(Error::NonceMismatch)
        );
        c.nonce = Some(Nonce::new(b"old".to_vec()).unwrap());
        let verified = sim_snp(c.report_data());
        assert_eq!(
            c.check_snp(&verified, SIM_NOW, Some(b"sent")),
            Err(Error::NonceMismatch)
        );
    }

    #[test]
    fn altered_claims_with_genuine_sim_evidence_fail_the_binding() {
        let c = claims(ClaimsPlatform::SimulatedTdx, SIM_NOW);
        let verified = sim_tdx(c.report_data());
        let mut altered = c.clone();
        altered.config_digest[0] ^= 1;
        assert!(matches!(
            altered.check_tdx(&verified, SIM_NOW, None),
            Err(Error::ReportDataMismatch { .. })
        ));
    }
}
