//! Unit tests of `tdx::verify` on the real vectors (the integration tests cover them too) and,
//! with a P-256 test CA that re-signs modified collateral, the logic behind the signatures.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]

use super::*;
use crate::test_vectors;

pub(super) fn parse_quote(raw: &[u8]) -> Quote {
    Quote::parse(raw).unwrap()
}

pub(super) fn collateral(name: &str) -> Collateral {
    let json = test_vectors::read(&format!("tdx/{name}"));
    Collateral::from_json(&json).unwrap()
}

const TDX_AT: i64 = 1752919234;
const SGX_AT: i64 = 1752919277;

#[test]
fn tdx_quote_is_up_to_date_at_its_pinned_time() {
    let quote = parse_quote(&test_vectors::read("tdx/tdx_quote"));
    let v = TdxVerifier::new()
        .verify(&quote, &collateral("tdx_quote_collateral.json"), TDX_AT)
        .unwrap();
    assert_eq!(v.tcb_status, TcbStatus::UpToDate);
    assert!(v.advisory_ids.is_empty());
    assert_eq!(hex::encode_upper(v.fmspc), "B0C06F000000");
    assert_eq!(v.root, TrustRoot::Intel);
    assert!(v.collateral_valid_from <= TDX_AT && TDX_AT <= v.collateral_valid_until);
}

#[test]
fn sgx_quote_needs_configuration_and_sw_hardening() {
    let quote = parse_quote(&test_vectors::read("tdx/sgx_quote"));
    let v = TdxVerifier::new()
        .verify(&quote, &collateral("sgx_quote_collateral.json"), SGX_AT)
        .unwrap();
    assert_eq!(v.tcb_status, TcbStatus::ConfigurationAndSWHardeningNeeded);
    assert_eq!(v.advisory_ids, ["INTEL-SA-00289", "INTEL-SA-00615"]);
}

#[test]
fn warm_verification_uses_the_cache_and_agrees_with_cold() {
    let quote = parse_quote(&test_vectors::read("tdx/tdx_quote"));
    let coll = collateral("tdx_quote_collateral.json");
    let verifier = TdxVerifier::new();
    let cold = verifier.verify(&quote, &coll, TDX_AT).unwrap();
    assert_eq!(verifier.cache.len(), (1, 1));
    let warm = verifier.verify(&quote, &coll, TDX_AT).unwrap();
    assert_eq!(cold, warm);
    verifier.clear_cache();
    assert_eq!(verifier.cache.len(), (0, 0));
}

#[test]
fn cold_verification_checks_nine_signatures_and_warm_only_the_quotes_two() {
    let quote = parse_quote(&test_vectors::read("tdx/tdx_quote"));
    let coll = collateral("tdx_quote_collateral.json");
    let verifier = TdxVerifier::new();
    chain::counting::take();
    verifier.verify(&quote, &coll, TDX_AT).unwrap();
    // Root CA CRL, TCB signer, TCB info, QE identity, PCK CA, PCK, PCK CRL, QE report, quote:
    // as many as dcap-qvl.
    assert_eq!(chain::counting::take(), 9);
    verifier.verify(&quote, &coll, TDX_AT).unwrap();
    // QE report and quote signatures only.
    assert_eq!(chain::counting::take(), 2);
}

#[test]
fn a_quote_edited_after_parsing_is_refused() {
    let coll = collateral("tdx_quote_collateral.json");
    let verifier = TdxVerifier::new();
    let mut quote = parse_quote(&test_vectors::read("tdx/tdx_quote"));
    if let QuoteBody::Td10(td) = &mut quote.body {
        td.mr_td[0] ^= 1;
    }
    let err = verifier.verify(&quote, &coll, TDX_AT).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Malformed {
                subject: Subject::QuoteBody,
                ..
            }
        ),
        "{err:?}"
    );
    let mut quote = parse_quote(&test_vectors::read("tdx/sgx_quote"));
    quote.header.user_data[0] ^= 1;
    let err = verifier.verify(&quote, &coll, TDX_AT).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Malformed {
                subject: Subject::QuoteBody,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn quote_without_a_pck_chain_and_collateral_without_one_is_unsupported() {
    let coll = collateral("tdx_quote_collateral.json");
    let mut quote = parse_quote(&test_vectors::read("tdx/tdx_quote"));
    // Type 3: encrypted PPID — the PCK certificate must then come with the collateral.
    quote.signature.certification_data.cert_type = 3;
    let err = TdxVerifier::new()
        .verify(&quote, &coll, TDX_AT)
        .unwrap_err();
    assert!(
        matches!(err, Error::UnsupportedCertificationDataType(3)),
        "{err:?}"
    );
}

#[test]
fn pck_chain_from_the_collateral_replaces_a_missing_one_in_the_quote() {
    let mut coll = collateral("tdx_quote_collateral.json").inner;
    let mut quote = parse_quote(&test_vectors::read("tdx/tdx_quote"));
    coll.pck_certificate_chain =
        Some(String::from_utf8(quote.pck_chain_pem().unwrap().to_vec()).unwrap());
    quote.signature.certification_data.cert_type = 3;
    quote.signature.certification_data.data = vec![0; 16];
    let v = TdxVerifier::new()
        .verify(&quote, &Collateral::from_inner(coll).unwrap(), TDX_AT)
        .unwrap();
    assert_eq!(v.tcb_status, TcbStatus::UpToDate);
}

#[test]
fn td_qe_identity_version_3_is_accepted_for_tdx() {
    let mut f = Fixture::new();
    f.qe_identity["version"] = 3.into();
    assert_eq!(run(&f).unwrap().tcb_status, TcbStatus::UpToDate);
    f.qe_identity["version"] = 4.into();
    let err = run(&f).unwrap_err();
    assert!(
        matches!(
            err,
            Error::CollateralMismatch {
                subject: Subject::QeIdentity,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn verifier_is_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<TdxVerifier>();
    let quote = parse_quote(&test_vectors::read("tdx/tdx_quote"));
    let coll = collateral("tdx_quote_collateral.json");
    let verifier = TdxVerifier::new();
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| verifier.verify(&quote, &coll, TDX_AT).unwrap());
        }
    });
    assert_eq!(verifier.cache.len(), (1, 1));
}

#[test]
fn the_cache_is_bounded() {
    let f = Fixture::new();
    let verifier = f.verifier();
    let quote = f.quote();
    let mut f = f;
    for i in 0..(cache::CAPACITY + 6) {
        // Each collateral differs in its (signed) TCB evaluation data number.
        f.tcb_info["tcbEvaluationDataNumber"] = (i as u64 + 1).into();
        verifier.verify(&quote, &f.collateral(), AT).unwrap();
    }
    assert_eq!(verifier.cache.len(), (cache::CAPACITY, cache::CAPACITY));
}

#[test]
fn a_cached_collateral_does_not_outlive_its_window() {
    let quote = parse_quote(&test_vectors::read("tdx/tdx_quote"));
    let coll = collateral("tdx_quote_collateral.json");
    let verifier = TdxVerifier::new();
    let v = verifier.verify(&quote, &coll, TDX_AT).unwrap();
    let after = v.collateral_valid_until + 1;
    let err = verifier.verify(&quote, &coll, after).unwrap_err();
    assert!(
        matches!(
            err,
            Error::CollateralExpired { .. } | Error::CrlExpired { .. }
        ),
        "{err:?}"
    );
    // And the window's last second still verifies from the cache.
    verifier
        .verify(&quote, &coll, v.collateral_valid_until)
        .unwrap();
}

/// Best-of-rounds time per call of `f` (the minimum is robust to a loaded machine).
fn best_per_call(rounds: usize, n: usize, mut f: impl FnMut()) -> f64 {
    (0..rounds)
        .map(|_| {
            let t = std::time::Instant::now();
            for _ in 0..n {
                f();
            }
            t.elapsed().as_secs_f64() / n as f64
        })
        .fold(f64::INFINITY, f64::min)
}

#[test]
#[ignore = "benchmark: cargo test --release -p cocoon-attestation --lib bench_ -- --ignored --nocapture"]
fn bench_tdx_quote_against_dcap_qvl() {
    let raw = test_vectors::read("tdx/tdx_quote");
    let coll = collateral("tdx_quote_collateral.json");
    let verifier = TdxVerifier::new();
    let (rounds, n) = (15, 40);
    let (mut dcap, mut cold, mut warm) = (f64::INFINITY, f64::INFINITY, f64::INFINITY);
    // Interleave the three so a burst of load hits them alike.
    for _ in 0..rounds {
        dcap = dcap.min(best_per_call(1, n, || {
            dcap_qvl::verify::verify(&raw, &coll.inner, TDX_AT as u64).unwrap();
        }));
        cold = cold.min(best_per_call(1, n, || {
            verifier.clear_cache();
            verifier.verify(&parse_quote(&raw), &coll, TDX_AT).unwrap();
        }));
        warm = warm.min(best_per_call(1, n, || {
            verifier.verify(&parse_quote(&raw), &coll, TDX_AT).unwrap();
        }));
    }
    println!(
        "dcap-qvl {:.0}/s, cold {:.0}/s ({:.2}x), warm {:.0}/s ({:.2}x)",
        1.0 / dcap,
        1.0 / cold,
        dcap / cold,
        1.0 / warm,
        dcap / warm
    );
    // The warm target of issue #2 (the margin is large; cold is at parity, within noise).
    assert!(dcap / warm >= 2.0, "warm only {:.2}x", dcap / warm);
}

// ------------------------------------------------------------------ test CA: logic behind signatures

use super::testca::{self, crl, edit_extension, Fixture, Spec, AT};

const DAY: i64 = 86_400;

/// dcap-qvl on the same case, with the test root: its status or its error text.
fn dcap_verdict(f: &Fixture, raw: &[u8], coll: &Collateral, now: i64) -> Result<String, String> {
    dcap_qvl::verify::QuoteVerifier::new(f.root_der())
        .verify(raw, &coll.inner, now as u64)
        .map(|r| r.status)
        .map_err(|e| format!("{e:#}"))
}

/// Our result on `raw` + `coll`, after checking that dcap-qvl reaches the same verdict and
/// status — or, where `stricter` names why, that dcap-qvl accepts what we reject.
fn verify_both(
    f: &Fixture,
    raw: &[u8],
    coll: &Collateral,
    now: i64,
    stricter: Option<&str>,
) -> Result<VerifiedQuote> {
    let ours = f.verifier().verify(&Quote::parse(raw).unwrap(), coll, now);
    let theirs = dcap_verdict(f, raw, coll, now);
    match stricter {
        None => {
            assert_eq!(
                ours.is_ok(),
                theirs.is_ok(),
                "verdicts differ: ours {ours:?}, dcap-qvl {theirs:?}"
            );
            if let (Ok(o), Ok(t)) = (&ours, &theirs) {
                assert_eq!(o.tcb_status.as_str(), t);
            }
        }
        Some(why) => {
            assert!(ours.is_err(), "we should reject ({why})");
            assert!(theirs.is_ok(), "dcap-qvl rejects too ({why}): {theirs:?}");
        }
    }
    ours
}

fn run(f: &Fixture) -> Result<VerifiedQuote> {
    verify_both(f, &f.quote_bytes(), &f.collateral(), AT, None)
}

fn run_stricter(f: &Fixture, why: &str) -> Error {
    verify_both(f, &f.quote_bytes(), &f.collateral(), AT, Some(why)).unwrap_err()
}

#[test]
fn test_pki_reissue_of_tdx_quote_collateral_verifies_up_to_date() {
    let f = Fixture::new();
    let v = run(&f).unwrap();
    assert_eq!(v.tcb_status, TcbStatus::UpToDate);
    assert_eq!(v.root, TrustRoot::Simulated);
    assert_eq!(hex::encode_upper(v.fmspc), "B0C06F000000");
}

#[test]
fn test_pki_collateral_is_untrusted_under_the_intel_root() {
    let f = Fixture::new();
    let err = TdxVerifier::new()
        .verify(&f.quote(), &f.collateral(), AT)
        .unwrap_err();
    assert!(matches!(err, Error::UntrustedRoot { .. }), "{err:?}");
}

#[test]
fn intel_anchor_with_another_key_fails_the_root_key_id_check() {
    let f = Fixture::new();
    let verifier = TdxVerifier::with_roots(vec![RootAnchor::new(TrustRoot::Intel, f.root_der())]);
    let err = verifier
        .verify(&f.quote(), &f.collateral(), AT)
        .unwrap_err();
    assert!(matches!(err, Error::RootKeyIdMismatch { .. }), "{err:?}");
}

#[test]
fn pck_listed_in_the_pck_crl_is_revoked() {
    let mut f = Fixture::new();
    f.pck_crl = crl(&f.pck_ca, AT - DAY, AT + DAY, &[testca::PCK_SERIAL]);
    let err = run(&f).unwrap_err();
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
fn root_listed_in_its_own_crl_is_revoked() {
    let mut f = Fixture::new();
    f.root_crl = crl(&f.root, AT - DAY, AT + DAY, &[testca::ROOT_SERIAL]);
    let err = run(&f).unwrap_err();
    assert!(
        matches!(
            err,
            Error::CertificateRevoked {
                subject: Subject::Certificate,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn pck_ca_listed_in_the_root_crl_is_revoked() {
    let mut f = Fixture::new();
    f.root_crl = crl(&f.root, AT - DAY, AT + DAY, &[testca::PCK_CA_SERIAL]);
    let err = run(&f).unwrap_err();
    assert!(
        matches!(
            err,
            Error::CertificateRevoked {
                subject: Subject::PckCertChain,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn tcb_signer_listed_in_the_root_crl_is_revoked() {
    let mut f = Fixture::new();
    f.root_crl = crl(&f.root, AT - DAY, AT + DAY, &[testca::TCB_SIGNER_SERIAL]);
    let err = run(&f).unwrap_err();
    assert!(
        matches!(
            err,
            Error::CertificateRevoked {
                subject: Subject::TcbInfo,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn pck_crl_from_the_wrong_issuer_is_invalid() {
    let mut f = Fixture::new();
    // Issued (and validly signed) by the root, not by the PCK CA that issued the PCK.
    f.pck_crl = crl(&f.root, AT - DAY, AT + DAY, &[]);
    let err = run(&f).unwrap_err();
    assert!(
        matches!(
            err,
            Error::CrlInvalid {
                subject: Subject::PckCrl,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn pck_crl_signed_by_an_impostor_with_the_ca_name_is_invalid() {
    let mut f = Fixture::new();
    let impostor = Spec::new("Test SGX PCK Platform CA", true, 99).issued_by(&f.root);
    f.pck_crl = crl(&impostor, AT - DAY, AT + DAY, &[]);
    let err = run(&f).unwrap_err();
    assert!(
        matches!(
            err,
            Error::CrlInvalid {
                subject: Subject::PckCrl,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn root_crl_signed_by_another_key_is_invalid() {
    let mut f = Fixture::new();
    let other_root = Spec::new("Test SGX Root CA", true, ROOT_SERIAL_OTHER).self_signed();
    f.root_crl = crl(&other_root, AT - DAY, AT + DAY, &[]);
    let err = run(&f).unwrap_err();
    assert!(
        matches!(
            err,
            Error::CrlInvalid {
                subject: Subject::RootCaCrl,
                ..
            }
        ),
        "{err:?}"
    );
}
const ROOT_SERIAL_OTHER: u64 = 77;

#[test]
fn pck_crl_is_valid_until_the_second_before_next_update() {
    let mut f = Fixture::new();
    f.pck_crl = crl(&f.pck_ca, AT - DAY, AT + 1, &[]);
    verify_both(&f, &f.quote_bytes(), &f.collateral(), AT, None).unwrap();
    f.pck_crl = crl(&f.pck_ca, AT - DAY, AT, &[]);
    let err = run(&f).unwrap_err();
    assert!(
        matches!(
            err,
            Error::CrlExpired {
                subject: Subject::PckCrl,
                next_update: AT,
                now: AT
            }
        ),
        "{err:?}"
    );
}

#[test]
fn root_crl_past_next_update_is_expired() {
    let mut f = Fixture::new();
    f.root_crl = crl(&f.root, AT - 2 * DAY, AT - DAY, &[]);
    let err = run(&f).unwrap_err();
    assert!(
        matches!(
            err,
            Error::CrlExpired {
                subject: Subject::RootCaCrl,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn pck_crl_issued_after_the_verification_time_is_not_yet_valid() {
    // dcap-qvl (webpki) ignores thisUpdate; we do not accept a CRL from the future.
    let mut f = Fixture::new();
    f.pck_crl = crl(&f.pck_ca, AT + 1, AT + DAY, &[]);
    let err = run_stricter(&f, "CRL thisUpdate after the verification time");
    assert!(
        matches!(err, Error::CrlNotYetValid { subject: Subject::PckCrl, this_update, now: AT } if this_update == AT + 1),
        "{err:?}"
    );
    f.pck_crl = crl(&f.pck_ca, AT, AT + DAY, &[]);
    run(&f).unwrap();
}

#[test]
fn fmspc_of_the_pck_other_than_the_tcb_info_is_a_mismatch() {
    let mut f = Fixture::new();
    f.tcb_info["fmspc"] = "B0C06F000001".into();
    let err = run(&f).unwrap_err();
    assert!(matches!(err, Error::FmspcMismatch { .. }), "{err:?}");
}

#[test]
fn pck_with_another_fmspc_is_a_mismatch() {
    let ext = edit_extension(
        &testca::real_pck_extension(),
        testca::FMSPC_OID,
        &[0x00, 0x90, 0x6E, 0xA1, 0, 0],
    );
    let f = Fixture::with_pck_extension(ext);
    let err = run(&f).unwrap_err();
    assert!(
        matches!(&err, Error::FmspcMismatch { pck, tcb_info } if pck == "00906EA10000" && tcb_info == "B0C06F000000"),
        "{err:?}"
    );
}

#[test]
fn pce_id_of_the_pck_other_than_the_tcb_info_is_a_mismatch() {
    // dcap-qvl does not compare the PCE-ID: a gap we close.
    let ext = edit_extension(
        &testca::real_pck_extension(),
        testca::PCE_ID_OID,
        &[0x01, 0x00],
    );
    let f = Fixture::with_pck_extension(ext);
    let err = run_stricter(
        &f,
        "PCE-ID of the PCK certificate differs from the TCB info",
    );
    assert!(
        matches!(&err, Error::PceIdMismatch { pck, other } if pck == "0100" && other == "0000"),
        "{err:?}"
    );
}

#[test]
fn tcb_info_with_another_pce_id_is_a_mismatch() {
    let mut f = Fixture::new();
    f.tcb_info["pceId"] = "0001".into();
    let err = run_stricter(&f, "TCB info pceId differs from the PCK certificate");
    assert!(matches!(err, Error::PceIdMismatch { .. }), "{err:?}");
}

#[test]
fn qe_identity_with_another_mrsigner_is_a_mismatch() {
    let mut f = Fixture::new();
    f.qe_identity["mrsigner"] = "00".repeat(32).into();
    let err = run(&f).unwrap_err();
    assert!(
        matches!(err, Error::QeIdentityMismatch { field: "mrsigner" }),
        "{err:?}"
    );
}

#[test]
fn qe_identity_with_another_isvprodid_is_a_mismatch() {
    let mut f = Fixture::new();
    f.qe_identity["isvprodid"] = 1.into();
    let err = run(&f).unwrap_err();
    assert!(
        matches!(err, Error::QeIdentityMismatch { field: "isvprodid" }),
        "{err:?}"
    );
}

#[test]
fn qe_identity_with_another_miscselect_is_a_mismatch() {
    let mut f = Fixture::new();
    f.qe_identity["miscselect"] = "01000000".into();
    let err = run(&f).unwrap_err();
    assert!(
        matches!(
            err,
            Error::QeIdentityMismatch {
                field: "miscselect"
            }
        ),
        "{err:?}"
    );
}

#[test]
fn qe_identity_with_other_attributes_is_a_mismatch() {
    let mut f = Fixture::new();
    f.qe_identity["attributes"] = "13000000000000000000000000000000".into();
    let err = run(&f).unwrap_err();
    assert!(
        matches!(
            err,
            Error::QeIdentityMismatch {
                field: "attributes"
            }
        ),
        "{err:?}"
    );
}

#[test]
fn debug_qe_is_a_qe_identity_mismatch() {
    let f = Fixture::new();
    // ATTRIBUTES.DEBUG is bit 1 of the first attribute byte (REPORTBODY offset 48).
    let raw = f.quote_bytes_with(|report| report[48] |= 0x02);
    let err = verify_both(&f, &raw, &f.collateral(), AT, None).unwrap_err();
    assert!(
        matches!(err, Error::QeIdentityMismatch { field: "debug" }),
        "{err:?}"
    );
}

#[test]
fn qe_below_every_qe_tcb_level_is_rejected() {
    let mut f = Fixture::new();
    f.qe_identity["tcbLevels"][0]["tcb"]["isvsvn"] = 200.into();
    let err = run(&f).unwrap_err();
    assert!(
        matches!(err, Error::QeTcbLevelNotFound { isv_svn: 6 }),
        "{err:?}"
    );
}

#[test]
fn out_of_date_qe_makes_the_quote_out_of_date_with_its_advisories() {
    let mut f = Fixture::new();
    f.qe_identity["tcbLevels"][0]["tcbStatus"] = "OutOfDate".into();
    f.qe_identity["tcbLevels"][0]["advisoryIDs"] =
        serde_json::json!(["INTEL-SA-00999", "INTEL-SA-00001"]);
    let v = run(&f).unwrap();
    assert_eq!(v.tcb_status, TcbStatus::OutOfDate);
    assert_eq!(v.qe_tcb_status, TcbStatus::OutOfDate);
    assert_eq!(v.advisory_ids, ["INTEL-SA-00001", "INTEL-SA-00999"]);
}

#[test]
fn revoked_qe_is_rejected_as_revoked() {
    let mut f = Fixture::new();
    f.qe_identity["tcbLevels"][0]["tcbStatus"] = "Revoked".into();
    let err = run(&f).unwrap_err();
    assert!(matches!(err, Error::TcbRevoked), "{err:?}");
}

/// The index of the canonical TCB level `tdx_quote` matches (its JSON position).
fn matched_level(f: &Fixture) -> usize {
    let first_ok = run(f).unwrap();
    let levels = f.tcb_info["tcbLevels"].as_array().unwrap();
    levels
        .iter()
        .position(|l| l["tcbDate"] == first_ok.tcb_date.as_str())
        .unwrap()
}

#[test]
fn revoked_platform_tcb_level_is_rejected_as_revoked() {
    let mut f = Fixture::new();
    let i = matched_level(&f);
    f.tcb_info["tcbLevels"][i]["tcbStatus"] = "Revoked".into();
    let err = run(&f).unwrap_err();
    assert!(matches!(err, Error::TcbRevoked), "{err:?}");
}

#[test]
fn out_of_date_platform_passes_verification_with_that_status() {
    let mut f = Fixture::new();
    let i = matched_level(&f);
    f.tcb_info["tcbLevels"][i]["tcbStatus"] = "OutOfDate".into();
    f.tcb_info["tcbLevels"][i]["advisoryIDs"] = serde_json::json!(["INTEL-SA-00837"]);
    let v = run(&f).unwrap();
    assert_eq!(v.tcb_status, TcbStatus::OutOfDate);
    assert_eq!(v.advisory_ids, ["INTEL-SA-00837"]);
}

#[test]
fn sw_hardening_platform_with_out_of_date_qe_converges_to_out_of_date() {
    let mut f = Fixture::new();
    let i = matched_level(&f);
    f.tcb_info["tcbLevels"][i]["tcbStatus"] = "ConfigurationAndSWHardeningNeeded".into();
    f.qe_identity["tcbLevels"][0]["tcbStatus"] = "OutOfDate".into();
    let v = run(&f).unwrap();
    assert_eq!(v.tcb_status, TcbStatus::OutOfDateConfigurationNeeded);
}

#[test]
fn unknown_tcb_status_name_is_reported_as_such() {
    let mut f = Fixture::new();
    let i = matched_level(&f);
    f.tcb_info["tcbLevels"][i]["tcbStatus"] = "MostlyFine".into();
    let err = run(&f).unwrap_err();
    assert!(
        matches!(&err, Error::UnknownTcbStatus(s) if s == "MostlyFine"),
        "{err:?}"
    );
}

#[test]
fn relaunch_status_inside_a_tcb_level_is_not_a_platform_status() {
    let mut f = Fixture::new();
    let i = matched_level(&f);
    f.tcb_info["tcbLevels"][i]["tcbStatus"] = "TDRelaunchAdvised".into();
    let err = run(&f).unwrap_err();
    assert!(
        matches!(&err, Error::UnknownTcbStatus(s) if s == "TDRelaunchAdvised"),
        "{err:?}"
    );
}

#[test]
fn platform_below_every_tcb_level_is_not_supported() {
    let mut f = Fixture::new();
    for level in f.tcb_info["tcbLevels"].as_array_mut().unwrap() {
        level["pcesvn"] = 200.into();
        level["tcb"]["pcesvn"] = 200.into();
    }
    let err = run(&f).unwrap_err();
    assert!(matches!(err, Error::TcbLevelNotFound), "{err:?}");
}

#[test]
fn tdx_module_with_another_mrsigner_is_a_module_identity_mismatch() {
    let mut f = Fixture::new();
    let other = "11".repeat(48);
    f.tcb_info["tdxModule"]["mrsigner"] = other.clone().into();
    for id in f.tcb_info["tdxModuleIdentities"].as_array_mut().unwrap() {
        id["mrsigner"] = other.clone().into();
    }
    let err = run(&f).unwrap_err();
    assert!(
        matches!(
            err,
            Error::TdxModuleIdentityMismatch {
                field: "mr_signer_seam"
            }
        ),
        "{err:?}"
    );
}

#[test]
fn tdx_module_with_other_seam_attributes_is_a_module_identity_mismatch() {
    let mut f = Fixture::new();
    f.tcb_info["tdxModule"]["attributes"] = "0100000000000000".into();
    for id in f.tcb_info["tdxModuleIdentities"].as_array_mut().unwrap() {
        id["attributes"] = "0100000000000000".into();
    }
    let err = run(&f).unwrap_err();
    assert!(
        matches!(
            err,
            Error::TdxModuleIdentityMismatch {
                field: "seam_attributes"
            }
        ),
        "{err:?}"
    );
}

#[test]
fn tdx_module_version_without_an_identity_is_a_module_identity_mismatch() {
    let mut f = Fixture::new();
    f.tcb_info["tdxModuleIdentities"] = serde_json::json!([]);
    let err = run(&f).unwrap_err();
    assert!(
        matches!(
            err,
            Error::TdxModuleIdentityMismatch {
                field: "tdx_module_identity"
            }
        ),
        "{err:?}"
    );
}

#[test]
fn out_of_date_tdx_module_level_makes_the_platform_out_of_date() {
    let mut f = Fixture::new();
    for id in f.tcb_info["tdxModuleIdentities"].as_array_mut().unwrap() {
        for level in id["tcbLevels"].as_array_mut().unwrap() {
            level["tcbStatus"] = "OutOfDate".into();
            level["advisoryIDs"] = serde_json::json!(["INTEL-SA-01111"]);
        }
    }
    let v = run(&f).unwrap();
    assert_eq!(v.tcb_status, TcbStatus::OutOfDate);
    assert_eq!(v.advisory_ids, ["INTEL-SA-01111"]);
}

#[test]
fn sgx_tcb_info_for_a_tdx_quote_is_a_collateral_mismatch() {
    let mut f = Fixture::new();
    f.tcb_info["id"] = "SGX".into();
    let err = run(&f).unwrap_err();
    assert!(
        matches!(
            err,
            Error::CollateralMismatch {
                subject: Subject::TcbInfo,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn tcb_info_version_2_for_a_tdx_quote_is_a_collateral_mismatch() {
    let mut f = Fixture::new();
    f.tcb_info["version"] = 2.into();
    let err = run(&f).unwrap_err();
    assert!(
        matches!(
            err,
            Error::CollateralMismatch {
                subject: Subject::TcbInfo,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn sgx_qe_identity_for_a_tdx_quote_is_a_collateral_mismatch() {
    let mut f = Fixture::new();
    f.qe_identity["id"] = "QE".into();
    let err = run(&f).unwrap_err();
    assert!(
        matches!(
            err,
            Error::CollateralMismatch {
                subject: Subject::QeIdentity,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn rolled_back_tcb_evaluation_data_number_is_reported_not_rejected() {
    let mut f = Fixture::new();
    f.tcb_info["tcbEvaluationDataNumber"] = 3.into();
    let v = run(&f).unwrap();
    assert_eq!(v.tcb_evaluation_data_number, 3);
}

#[test]
fn tcb_info_signed_by_another_key_is_a_collateral_signature_error() {
    let mut f = Fixture::new();
    f.tcb_info_signer = Some(Spec::new("Test SGX TCB Signing", false, 50).issued_by(&f.root));
    let err = run(&f).unwrap_err();
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
fn qe_identity_signed_by_another_key_is_a_collateral_signature_error() {
    let mut f = Fixture::new();
    f.qe_identity_signer = Some(Spec::new("Test SGX TCB Signing", false, 51).issued_by(&f.root));
    let err = run(&f).unwrap_err();
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
fn qe_identity_with_its_own_signing_chain_verifies() {
    let mut f = Fixture::new();
    let signer = Spec::new("Test SGX QE Identity Signing", false, 52).issued_by(&f.root);
    f.qe_chain = Some(format!("{}{}", signer.pem(), f.root.pem()));
    f.qe_identity_signer = Some(signer);
    run(&f).unwrap();
}

#[test]
fn tcb_signer_below_an_intermediate_is_refused() {
    let mut f = Fixture::new();
    let signer = Spec::new("Test SGX TCB Signing", false, 53).issued_by(&f.pck_ca);
    f.tcb_chain = format!("{}{}{}", signer.pem(), f.pck_ca.pem(), f.root.pem());
    f.tcb_info_signer = Some(signer);
    let err = run(&f).unwrap_err();
    assert!(
        matches!(
            err,
            Error::CertificateChainInvalid {
                subject: Subject::TcbInfo,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn pck_chain_without_its_intermediate_is_too_short() {
    let mut f = Fixture::new();
    f.pck_chain = format!("{}{}", f.pck.pem(), f.root.pem());
    let err = run(&f).unwrap_err();
    assert!(
        matches!(err, Error::CertificateChainInvalid { .. }),
        "{err:?}"
    );
}

#[test]
fn pck_chain_of_only_the_leaf_is_too_short() {
    let mut f = Fixture::new();
    f.pck_chain = f.pck.pem();
    let err = run(&f).unwrap_err();
    assert!(
        matches!(
            err,
            Error::CertificateChainInvalid {
                subject: Subject::PckCertificate,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn leaf_certificate_used_as_a_ca_is_refused() {
    let mut f = Fixture::new();
    // A non-CA certificate (the TCB signer) issuing the PCK.
    let mut spec = Spec::new("Test SGX PCK Certificate", false, 60);
    spec.extension = Some(testca::real_pck_extension());
    let pck = spec.issued_by(&f.tcb_signer);
    f.pck_chain = format!("{}{}{}", pck.pem(), f.tcb_signer.pem(), f.root.pem());
    f.pck = pck;
    let err = run(&f).unwrap_err();
    assert!(
        matches!(
            err,
            Error::CertificateChainInvalid {
                subject: Subject::PckCertificate,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn pck_chain_in_the_wrong_order_is_refused() {
    let mut f = Fixture::new();
    f.pck_chain = format!("{}{}{}", f.pck.pem(), f.root.pem(), f.pck_ca.pem());
    let err = verify_both(
        &f,
        &f.quote_bytes(),
        &f.collateral(),
        AT,
        Some("chain order"),
    )
    .unwrap_err();
    assert!(
        matches!(err, Error::CertificateChainInvalid { .. }),
        "{err:?}"
    );
}

#[test]
fn pck_chain_to_a_foreign_root_with_the_same_name_is_untrusted() {
    let mut f = Fixture::new();
    let other_root = Spec::new("Test SGX Root CA", true, 70).self_signed();
    let other_ca = Spec::new("Test SGX PCK Platform CA", true, 71).issued_by(&other_root);
    let mut spec = Spec::new("Test SGX PCK Certificate", false, 72);
    spec.extension = Some(testca::real_pck_extension());
    let pck = spec.issued_by(&other_ca);
    f.pck_chain = format!("{}{}{}", pck.pem(), other_ca.pem(), other_root.pem());
    f.pck = pck;
    let err = run(&f).unwrap_err();
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
fn chains_under_two_trusted_roots_do_not_mix() {
    // Collateral under root A, PCK chain under root B, both anchors trusted: refused.
    let f = Fixture::new();
    let g = Fixture::new();
    let mut coll = f.collateral().inner;
    coll.pck_certificate_chain = Some(g.pck_chain.clone());
    let coll = Collateral::from_inner(coll).unwrap();
    let verifier = TdxVerifier::with_roots(vec![
        RootAnchor::new(TrustRoot::Simulated, f.root_der()),
        RootAnchor::new(TrustRoot::Simulated, g.root_der()),
    ]);
    let err = verifier.verify(&g.quote(), &coll, AT).unwrap_err();
    assert!(matches!(err, Error::UntrustedRoot { .. }), "{err:?}");
}

#[test]
fn pck_certificate_is_valid_from_not_before_to_not_after_inclusive() {
    let mut f = Fixture::new();
    let mut spec = Spec::new("Test SGX PCK Certificate", false, 80);
    spec.extension = Some(testca::real_pck_extension());
    spec.not_before = AT - 600;
    spec.not_after = AT + 600;
    let pck = spec.issued_by(&f.pck_ca);
    f.pck_chain = format!("{}{}{}", pck.pem(), f.pck_ca.pem(), f.root.pem());
    f.pck = pck;
    let raw = f.quote_bytes();
    let coll = f.collateral();
    verify_both(&f, &raw, &coll, AT - 600, None).unwrap();
    verify_both(&f, &raw, &coll, AT + 600, None).unwrap();
    let err = verify_both(&f, &raw, &coll, AT - 601, None).unwrap_err();
    assert!(
        matches!(err, Error::CertificateNotYetValid { subject: Subject::PckCertificate, not_before, .. } if not_before == AT - 600),
        "{err:?}"
    );
    let err = verify_both(&f, &raw, &coll, AT + 601, None).unwrap_err();
    assert!(
        matches!(err, Error::CertificateExpired { subject: Subject::PckCertificate, not_after, .. } if not_after == AT + 600),
        "{err:?}"
    );
}

#[test]
fn expired_pck_ca_is_reported_as_expired() {
    let mut f = Fixture::new();
    let mut spec = Spec::new("Test SGX PCK Platform CA", true, testca::PCK_CA_SERIAL);
    spec.not_after = AT - 1;
    let pck_ca = spec.issued_by(&f.root);
    let mut spec = Spec::new("Test SGX PCK Certificate", false, testca::PCK_SERIAL);
    spec.extension = Some(testca::real_pck_extension());
    let pck = spec.issued_by(&pck_ca);
    f.pck_chain = format!("{}{}{}", pck.pem(), pck_ca.pem(), f.root.pem());
    f.pck_crl = crl(&pck_ca, AT - DAY, AT + DAY, &[]);
    f.pck = pck;
    f.pck_ca = pck_ca;
    let err = run(&f).unwrap_err();
    assert!(
        matches!(
            err,
            Error::CertificateExpired {
                subject: Subject::PckCertChain,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn qe_report_signed_by_another_key_is_rejected() {
    let f = Fixture::new();
    // The original Intel signature no longer fits the test PCK key.
    let raw = f.raw_quote.clone();
    let err = verify_both(&f, &raw, &f.collateral(), AT, None).unwrap_err();
    assert!(matches!(err, Error::QeReportSignatureInvalid), "{err:?}");
}

#[test]
fn qe_report_data_not_binding_the_attestation_key_is_rejected() {
    let f = Fixture::new();
    let raw = f.quote_bytes_with(|report| report[320] ^= 0x01);
    let err = verify_both(&f, &raw, &f.collateral(), AT, None).unwrap_err();
    assert!(matches!(err, Error::QeReportDataMismatch), "{err:?}");
}

#[test]
fn tcb_info_signature_with_r_zero_is_malformed() {
    let f = Fixture::new();
    let mut coll = f.collateral().inner;
    coll.tcb_info_signature = [vec![0u8; 32], vec![1u8; 32]].concat();
    let coll = Collateral { inner: coll };
    let err = verify_both(&f, &f.quote_bytes(), &coll, AT, None).unwrap_err();
    assert!(
        matches!(
            err,
            Error::SignatureMalformed {
                subject: Subject::TcbInfo
            }
        ),
        "{err:?}"
    );
}

#[test]
fn a_cached_pck_chain_is_not_reused_under_a_crl_that_revokes_it() {
    let mut f = Fixture::new();
    let verifier = f.verifier();
    let quote = f.quote();
    verifier.verify(&quote, &f.collateral(), AT).unwrap();
    f.pck_crl = crl(&f.pck_ca, AT - DAY, AT + DAY, &[testca::PCK_SERIAL]);
    let err = verifier.verify(&quote, &f.collateral(), AT).unwrap_err();
    assert!(matches!(err, Error::CertificateRevoked { .. }), "{err:?}");
}

// ------------------------------------------------------------------ TD 1.5 (v5 quote)

const OUTDATED_AT: i64 = 1774003274;

/// `tdx_quote_outdated` (v5, TD 1.5 body: TEE_TCB_SVN 07 01 03, TEE_TCB_SVN2 0D 01 03) with its
/// collateral re-issued and the platform levels lowered so that its PCK meets the first one.
fn td15_fixture() -> Fixture {
    let mut f = Fixture::from_vector(
        "tdx/tdx_quote_outdated",
        "tdx/tdx_quote_outdated_collateral.json",
        OUTDATED_AT,
        testca::pck_extension_of("tdx/tdx_quote_outdated"),
    );
    let first = &mut f.tcb_info["tcbLevels"][0]["tcb"];
    for c in first["sgxtcbcomponents"].as_array_mut().unwrap() {
        c["svn"] = 0.into();
    }
    f
}

fn td15_run(f: &Fixture) -> (Result<VerifiedQuote>, Result<String, String>) {
    let raw = f.quote_bytes();
    let coll = f.collateral();
    (
        f.verifier()
            .verify(&Quote::parse(&raw).unwrap(), &coll, f.at),
        dcap_verdict(f, &raw, &coll, f.at),
    )
}

#[test]
fn td15_quote_meeting_a_level_is_up_to_date_for_launch_and_current_tcb() {
    let f = td15_fixture();
    let (ours, dcap) = td15_run(&f);
    let v = ours.unwrap();
    assert_eq!(v.tcb_status, TcbStatus::UpToDate);
    assert_eq!(v.current_tcb_status, Some(TcbStatus::UpToDate));
    assert!(!v.relaunch_advised);
    assert_eq!(dcap.as_deref(), Ok("UpToDate"));
}

#[test]
fn td15_with_an_out_of_date_launch_module_and_an_up_to_date_current_one_advises_relaunch() {
    let mut f = td15_fixture();
    // Module ISVSVN 7 at launch, 13 now: make 10 the first up-to-date module level.
    for id in f.tcb_info["tdxModuleIdentities"].as_array_mut().unwrap() {
        if id["id"] == "TDX_01" {
            id["tcbLevels"] = serde_json::json!([
                {"tcb": {"isvsvn": 10}, "tcbDate": "2025-01-01T00:00:00Z", "tcbStatus": "UpToDate"},
                {"tcb": {"isvsvn": 2}, "tcbDate": "2024-01-01T00:00:00Z", "tcbStatus": "OutOfDate",
                 "advisoryIDs": ["INTEL-SA-01234"]}
            ]);
        }
    }
    let (ours, dcap) = td15_run(&f);
    let v = ours.unwrap();
    // We keep Intel's seven names: the launch status with the relaunch flag beside it.
    assert_eq!(v.tcb_status, TcbStatus::OutOfDate);
    assert_eq!(v.current_tcb_status, Some(TcbStatus::UpToDate));
    assert!(v.relaunch_advised);
    assert_eq!(v.advisory_ids, ["INTEL-SA-01234"]);
    assert_eq!(dcap.as_deref(), Ok("TDRelaunchAdvised"));
}

#[test]
fn td15_whose_module_is_below_every_module_level_is_not_supported() {
    let mut f = td15_fixture();
    for id in f.tcb_info["tdxModuleIdentities"].as_array_mut().unwrap() {
        if id["id"] == "TDX_01" {
            // Module ISVSVN 7 at launch and 13 now are both below 14.
            id["tcbLevels"] = serde_json::json!([
                {"tcb": {"isvsvn": 14}, "tcbDate": "2025-01-01T00:00:00Z", "tcbStatus": "UpToDate"}
            ]);
        }
    }
    let (ours, dcap) = td15_run(&f);
    let err = ours.unwrap_err();
    assert!(matches!(err, Error::TcbLevelNotFound), "{err:?}");
    assert!(dcap.is_err(), "{dcap:?}");
}

#[test]
fn td15_with_a_revoked_current_module_is_revoked() {
    let mut f = td15_fixture();
    for id in f.tcb_info["tdxModuleIdentities"].as_array_mut().unwrap() {
        if id["id"] == "TDX_01" {
            id["tcbLevels"] = serde_json::json!([
                {"tcb": {"isvsvn": 10}, "tcbDate": "2025-01-01T00:00:00Z", "tcbStatus": "Revoked"},
                {"tcb": {"isvsvn": 2}, "tcbDate": "2024-01-01T00:00:00Z", "tcbStatus": "UpToDate"}
            ]);
        }
    }
    let (ours, dcap) = td15_run(&f);
    let err = ours.unwrap_err();
    assert!(matches!(err, Error::TcbRevoked), "{err:?}");
    assert!(dcap.is_err(), "{dcap:?}");
}

// ------------------------------------------------------------------ SGX (v3 quote)

fn sgx_fixture() -> Fixture {
    Fixture::from_vector(
        "tdx/sgx_quote",
        "tdx/sgx_quote_collateral.json",
        SGX_AT,
        testca::pck_extension_of("tdx/sgx_quote"),
    )
}

fn sgx_run(f: &Fixture) -> Result<VerifiedQuote> {
    verify_both(f, &f.quote_bytes(), &f.collateral(), f.at, None)
}

#[test]
fn sgx_quote_reissued_keeps_its_status_and_advisories() {
    let v = sgx_run(&sgx_fixture()).unwrap();
    assert_eq!(v.tcb_status, TcbStatus::ConfigurationAndSWHardeningNeeded);
    assert_eq!(v.advisory_ids, ["INTEL-SA-00289", "INTEL-SA-00615"]);
    assert_eq!(v.current_tcb_status, None);
}

#[test]
fn tdx_tcb_info_for_an_sgx_quote_is_a_collateral_mismatch() {
    let mut f = sgx_fixture();
    f.tcb_info["id"] = "TDX".into();
    let err = sgx_run(&f).unwrap_err();
    assert!(
        matches!(
            err,
            Error::CollateralMismatch {
                subject: Subject::TcbInfo,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn sgx_tcb_info_version_1_is_a_collateral_mismatch() {
    let mut f = sgx_fixture();
    f.tcb_info["version"] = 1.into();
    let err = sgx_run(&f).unwrap_err();
    assert!(
        matches!(
            err,
            Error::CollateralMismatch {
                subject: Subject::TcbInfo,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn td_qe_identity_for_an_sgx_quote_is_a_collateral_mismatch() {
    let mut f = sgx_fixture();
    f.qe_identity["id"] = "TD_QE".into();
    let err = sgx_run(&f).unwrap_err();
    assert!(
        matches!(
            err,
            Error::CollateralMismatch {
                subject: Subject::QeIdentity,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn sgx_platform_with_an_out_of_date_qe_becomes_out_of_date_configuration_needed() {
    let mut f = sgx_fixture();
    for level in f.qe_identity["tcbLevels"].as_array_mut().unwrap() {
        level["tcbStatus"] = "OutOfDate".into();
    }
    let v = sgx_run(&f).unwrap();
    assert_eq!(v.tcb_status, TcbStatus::OutOfDateConfigurationNeeded);
}

#[test]
fn sgx_pce_id_mismatch_is_refused() {
    let ext = edit_extension(
        &testca::pck_extension_of("tdx/sgx_quote"),
        testca::PCE_ID_OID,
        &[0, 7],
    );
    let f = Fixture::from_vector(
        "tdx/sgx_quote",
        "tdx/sgx_quote_collateral.json",
        SGX_AT,
        ext,
    );
    let err = verify_both(&f, &f.quote_bytes(), &f.collateral(), f.at, Some("PCE-ID")).unwrap_err();
    assert!(matches!(err, Error::PceIdMismatch { .. }), "{err:?}");
}

// ------------------------------------------------------------------ collateral form and dates

fn rfc3339(t: i64) -> String {
    crate::error::fmt_time(t)
}

#[test]
fn tcb_info_is_valid_through_its_next_update_second_and_expired_after() {
    let mut f = Fixture::new();
    f.tcb_info["nextUpdate"] = rfc3339(AT).into();
    let (raw, coll) = (f.quote_bytes(), f.collateral());
    verify_both(&f, &raw, &coll, AT, None).unwrap();
    let err = verify_both(&f, &raw, &coll, AT + 1, None).unwrap_err();
    assert!(
        matches!(err, Error::CollateralExpired { subject: Subject::TcbInfo, next_update: AT, now, .. } if now == AT + 1),
        "{err:?}"
    );
}

#[test]
fn tcb_info_is_valid_from_its_issue_second() {
    let mut f = Fixture::new();
    f.tcb_info["issueDate"] = rfc3339(AT).into();
    let (raw, coll) = (f.quote_bytes(), f.collateral());
    verify_both(&f, &raw, &coll, AT, None).unwrap();
    let err = verify_both(&f, &raw, &coll, AT - 1, None).unwrap_err();
    assert!(
        matches!(
            err,
            Error::CollateralNotYetValid {
                subject: Subject::TcbInfo,
                issue_date: AT,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn expired_qe_identity_is_reported_with_its_dates() {
    let mut f = Fixture::new();
    f.qe_identity["nextUpdate"] = rfc3339(AT - 1).into();
    let err = run(&f).unwrap_err();
    assert!(
        matches!(err, Error::CollateralExpired { subject: Subject::QeIdentity, next_update, .. } if next_update == AT - 1),
        "{err:?}"
    );
}

#[test]
fn tcb_info_that_is_not_json_is_malformed() {
    let f = Fixture::new();
    let mut coll = f.collateral().inner;
    coll.tcb_info = "{\"id\":".into();
    coll.tcb_info_signature = f.tcb_signer.sign(coll.tcb_info.as_bytes());
    let coll = Collateral { inner: coll };
    let err = verify_both(&f, &f.quote_bytes(), &coll, AT, None).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Malformed {
                subject: Subject::TcbInfo,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn tcb_info_with_a_short_fmspc_is_malformed() {
    let mut f = Fixture::new();
    f.tcb_info["fmspc"] = "B0C06F".into();
    let err = run(&f).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Malformed {
                subject: Subject::TcbInfo,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn empty_pck_chain_in_the_collateral_is_refused() {
    let mut f = Fixture::new();
    f.pck_chain = String::new();
    let coll = Collateral { inner: f.inner() };
    let err = verify_both(&f, &f.quote_bytes(), &coll, AT, None).unwrap_err();
    assert!(
        matches!(
            err,
            Error::CertificateChainInvalid {
                subject: Subject::PckCertChain,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn pck_chain_with_a_garbled_certificate_is_malformed() {
    let mut f = Fixture::new();
    f.pck_chain = f.pck_chain.replacen("MII", "MIX", 1);
    let err = run(&f).unwrap_err();
    assert!(matches!(err, Error::CertificateMalformed { .. }), "{err:?}");
}

#[test]
fn pck_crl_that_is_not_der_is_invalid() {
    let mut f = Fixture::new();
    f.pck_crl = b"not a CRL".to_vec();
    let coll = Collateral { inner: f.inner() };
    let err = verify_both(&f, &f.quote_bytes(), &coll, AT, None).unwrap_err();
    assert!(
        matches!(
            err,
            Error::CrlInvalid {
                subject: Subject::PckCrl,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn expired_tcb_signing_certificate_is_reported_as_expired() {
    let mut f = Fixture::new();
    let mut spec = Spec::new("Test SGX TCB Signing", false, 90);
    spec.not_after = AT - 1;
    let signer = spec.issued_by(&f.root);
    f.tcb_chain = format!("{}{}", signer.pem(), f.root.pem());
    f.tcb_signer = signer;
    let err = run(&f).unwrap_err();
    assert!(
        matches!(err, Error::CertificateExpired { subject: Subject::TcbInfo, not_after, .. } if not_after == AT - 1),
        "{err:?}"
    );
}

#[test]
fn tcb_chain_without_the_root_copy_still_reaches_the_anchor() {
    let mut f = Fixture::new();
    f.tcb_chain = f.tcb_signer.pem();
    run(&f).unwrap();
}

#[test]
fn tcb_chain_of_a_foreign_root_is_untrusted() {
    let mut f = Fixture::new();
    let other_root = Spec::new("Test SGX Root CA", true, 95).self_signed();
    let signer = Spec::new("Test SGX TCB Signing", false, 96).issued_by(&other_root);
    f.tcb_chain = format!("{}{}", signer.pem(), other_root.pem());
    f.tcb_signer = signer;
    let err = run(&f).unwrap_err();
    assert!(
        matches!(
            err,
            Error::UntrustedRoot {
                subject: Subject::TcbInfo
            }
        ),
        "{err:?}"
    );
}

// ------------------------------------------------------------------ re-signed quote bodies

/// TD_ATTRIBUTES of a v4 quote: body offset 120 (header 48).
const TD_ATTRIBUTES: usize = 48 + 120;

#[test]
fn resigned_quote_with_an_unchanged_body_verifies_under_the_test_pki() {
    let f = Fixture::new();
    let raw = f.resign(f.raw_quote.clone(), |_| {});
    let v = verify_both(&f, &raw, &f.collateral(), AT, None).unwrap();
    assert_eq!(v.tcb_status, TcbStatus::UpToDate);
}

#[test]
fn sept_ve_disable_clear_is_left_to_the_policy_while_dcap_qvl_rejects_it() {
    let f = Fixture::new();
    // SEPT_VE_DISABLE is TD_ATTRIBUTES bit 28 (byte 3, 0x10).
    let raw = f.resign(f.raw_quote.clone(), |b| b[TD_ATTRIBUTES + 3] &= !0x10);
    let coll = f.collateral();
    let v = f
        .verifier()
        .verify(&Quote::parse(&raw).unwrap(), &coll, AT)
        .unwrap();
    assert_eq!(v.quote.td_report().unwrap().td_attributes[3] & 0x10, 0);
    let d = dcap_verdict(&f, &raw, &coll, AT).unwrap_err();
    assert!(d.contains("SEPT_VE_DISABLE"), "{d}");
}

#[test]
fn debug_td_is_left_to_the_policy_while_dcap_qvl_rejects_it() {
    let f = Fixture::new();
    let raw = f.resign(f.raw_quote.clone(), |b| b[TD_ATTRIBUTES] |= 0x01);
    let coll = f.collateral();
    let v = f
        .verifier()
        .verify(&Quote::parse(&raw).unwrap(), &coll, AT)
        .unwrap();
    assert_eq!(v.tcb_status, TcbStatus::UpToDate);
    let d = dcap_verdict(&f, &raw, &coll, AT).unwrap_err();
    assert!(d.contains("Debug"), "{d}");
}

#[test]
fn td_module_signer_other_than_the_tcb_info_is_a_module_identity_mismatch() {
    let f = Fixture::new();
    // MRSIGNERSEAM: body offset 64.
    let raw = f.resign(f.raw_quote.clone(), |b| b[48 + 64] ^= 0x01);
    let err = verify_both(&f, &raw, &f.collateral(), AT, None).unwrap_err();
    assert!(
        matches!(
            err,
            Error::TdxModuleIdentityMismatch {
                field: "mr_signer_seam"
            }
        ),
        "{err:?}"
    );
}

#[test]
fn seam_attributes_outside_the_mask_are_a_module_identity_mismatch() {
    let mut f = Fixture::new();
    for id in f.tcb_info["tdxModuleIdentities"].as_array_mut().unwrap() {
        id["attributesMask"] = "FEFFFFFFFFFFFFFF".into();
    }
    // SEAMATTRIBUTES: body offset 112; bit 0 is outside the mask.
    let raw = f.resign(f.raw_quote.clone(), |b| b[48 + 112] |= 0x01);
    let err = verify_both(&f, &raw, &f.collateral(), AT, None).unwrap_err();
    assert!(
        matches!(
            err,
            Error::TdxModuleIdentityMismatch {
                field: "seam_attributes"
            }
        ),
        "{err:?}"
    );
}

#[test]
fn td_tcb_svn_below_every_level_is_not_supported() {
    let f = Fixture::new();
    // TEE_TCB_SVN[2] (a TDX component the platform levels judge) to 0.
    let raw = f.resign(f.raw_quote.clone(), |b| b[48 + 2] = 0);
    let err = verify_both(&f, &raw, &f.collateral(), AT, None).unwrap_err();
    assert!(matches!(err, Error::TcbLevelNotFound), "{err:?}");
}

#[test]
fn empty_qe_auth_data_is_accepted_here_while_dcap_qvl_wants_32_bytes() {
    // v4 tdx_quote: signature data length at 632, certification data size at 766, QE auth
    // data length at 1218 followed by its 32 bytes. Drop the 32 bytes and fix the sizes.
    let f = Fixture::new();
    let raw = &f.raw_quote;
    let mut short = raw[..1218].to_vec();
    short.extend_from_slice(&0u16.to_le_bytes());
    short.extend_from_slice(&raw[1252..]);
    for at in [632, 766] {
        let size = u32::from_le_bytes(short[at..at + 4].try_into().unwrap()) - 32;
        short[at..at + 4].copy_from_slice(&size.to_le_bytes());
    }
    let resigned = f.resign(short, |_| {});
    let quote = Quote::parse(&resigned).unwrap();
    assert!(quote.signature.qe_auth_data.is_empty());
    let coll = f.collateral();
    f.verifier().verify(&quote, &coll, AT).unwrap();
    let d = dcap_verdict(&f, &resigned, &coll, AT).unwrap_err();
    assert!(d.contains("auth data"), "{d}");
}

#[test]
fn a_cached_pck_chain_does_not_outlive_the_pck_certificate() {
    let mut f = Fixture::new();
    let mut spec = Spec::new("Test SGX PCK Certificate", false, 81);
    spec.extension = Some(testca::real_pck_extension());
    spec.not_after = AT + 100;
    let pck = spec.issued_by(&f.pck_ca);
    f.pck_chain = format!("{}{}{}", pck.pem(), f.pck_ca.pem(), f.root.pem());
    f.pck = pck;
    let verifier = f.verifier();
    let (quote, coll) = (f.quote(), f.collateral());
    verifier.verify(&quote, &coll, AT).unwrap();
    verifier.verify(&quote, &coll, AT + 100).unwrap();
    let err = verifier.verify(&quote, &coll, AT + 101).unwrap_err();
    assert!(
        matches!(
            err,
            Error::CertificateExpired {
                subject: Subject::PckCertificate,
                ..
            }
        ),
        "{err:?}"
    );
    // The collateral entry stays usable: only the PCK chain was re-verified (and failed).
    assert_eq!(verifier.cache.len(), (1, 1));
}
