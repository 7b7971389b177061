//! Every Intel DCAP vector in `shared/vectors/tdx` gets its expected verdict, TCB status and
//! advisories at its pinned time; the README's byte flips and time edges fail with their own
//! error variant.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]

use cocoon_attestation::tdx::collateral::PcsResponses;
use cocoon_attestation::tdx::{Collateral, Quote, TcbStatus, TdxVerifier, VerifiedQuote};
use cocoon_attestation::{Error, Result, Subject, TrustRoot};

fn vector(relative: &str) -> Vec<u8> {
    let p = format!(
        "{}/../../shared/vectors/{relative}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

/// A quote file: binary, or hex text (`*.hex`, `quote_hex.txt`).
fn quote_bytes(name: &str) -> Vec<u8> {
    let raw = vector(&format!("tdx/{name}"));
    if name.ends_with(".hex") || name.ends_with(".txt") {
        let text = String::from_utf8(raw).unwrap();
        let text = text.trim();
        hex::decode(text.strip_prefix("0x").unwrap_or(text)).unwrap()
    } else {
        raw
    }
}

fn collateral(name: &str) -> Collateral {
    Collateral::from_json(&vector(&format!("tdx/{name}"))).unwrap()
}

fn verify_bytes(quote: &[u8], collateral: &Collateral, now: i64) -> Result<VerifiedQuote> {
    let quote = Quote::parse(quote)?;
    TdxVerifier::new().verify(&quote, collateral, now)
}

fn verify(quote: &str, coll: &str, now: i64) -> Result<VerifiedQuote> {
    verify_bytes(&quote_bytes(quote), &collateral(coll), now)
}

const TDX_AT: i64 = 1752919234;
const SGX_AT: i64 = 1752919277;
const OUTDATED_AT: i64 = 1774003274;
const NEAR_AT: i64 = 1759388630;
const SPR_E4_AT: i64 = 1688169600;
const TDX_QUOTE_4_AT: i64 = 1688173200;
const SPR_E4_COLLATERAL: &str = "DERIVED_dcapqvl_collateral_SPR_E4.json";

// ------------------------------------------------------------------ verdicts at pinned times

#[test]
fn tdx_quote_is_up_to_date_without_advisories() {
    let v = verify("tdx_quote", "tdx_quote_collateral.json", TDX_AT).unwrap();
    assert_eq!(v.tcb_status, TcbStatus::UpToDate);
    assert!(v.advisory_ids.is_empty());
    assert_eq!(hex::encode_upper(v.fmspc), "B0C06F000000");
    assert_eq!(v.pce_id, [0, 0]);
    assert_eq!(v.root, TrustRoot::Intel);
    assert_eq!(v.tcb_evaluation_data_number, 17);
    assert_eq!(v.tcb_date, "2024-03-13T00:00:00Z");
    assert_eq!(v.current_tcb_status, None);
    assert!(!v.relaunch_advised);
}

#[test]
fn sgx_quote_needs_configuration_and_sw_hardening_with_two_advisories() {
    let v = verify("sgx_quote", "sgx_quote_collateral.json", SGX_AT).unwrap();
    assert_eq!(v.tcb_status, TcbStatus::ConfigurationAndSWHardeningNeeded);
    assert_eq!(v.advisory_ids, ["INTEL-SA-00289", "INTEL-SA-00615"]);
    assert_eq!(v.root, TrustRoot::Intel);
    assert_eq!(&v.quote.report_data()[..13], b"Hello, world!");
}

#[test]
fn tdx_v5_quote_below_every_tcb_level_is_not_supported() {
    let err = verify(
        "tdx_quote_outdated",
        "tdx_quote_outdated_collateral.json",
        OUTDATED_AT,
    )
    .unwrap_err();
    assert!(matches!(err, Error::TcbLevelNotFound), "{err:?}");
}

#[test]
fn near_hex_quote_is_up_to_date() {
    let v = verify("quote_hex.txt", "quote_collateral.json", NEAR_AT).unwrap();
    assert_eq!(v.tcb_status, TcbStatus::UpToDate);
    assert_eq!(hex::encode_upper(v.fmspc), "20A06F000000");
}

#[test]
fn sample_hex_quotes_have_no_tcb_level_in_the_tdx_quote_collateral() {
    for name in ["tdx-quote.hex", "quote-from-tappd.hex"] {
        let err = verify(name, "tdx_quote_collateral.json", TDX_AT).unwrap_err();
        assert!(matches!(err, Error::TcbLevelNotFound), "{name}: {err:?}");
    }
}

#[test]
fn debug_td_quote_is_authentic_and_up_to_date_debug_is_for_the_policy() {
    let v = verify("tdx_quote_4.dat", SPR_E4_COLLATERAL, TDX_QUOTE_4_AT).unwrap();
    assert_eq!(v.tcb_status, TcbStatus::UpToDate);
    assert_eq!(hex::encode_upper(v.fmspc), "50806F000000");
    // TD_ATTRIBUTES.DEBUG (bit 0) is set: verification reports it, the policy refuses it.
    assert_eq!(v.quote.td_report().unwrap().td_attributes[0] & 0x01, 0x01);
}

#[test]
fn spr_e4_production_quote_has_no_matching_tcb_level() {
    let err = verify_spr_e4(&quote_bytes("tdx_prod_quote_SPR_E4.dat")).unwrap_err();
    assert!(matches!(err, Error::TcbLevelNotFound), "{err:?}");
}

fn intel_synthetic(tee: &str) -> (Vec<u8>, Collateral) {
    let f = |n: &str| vector(&format!("tdx/intel-synthetic/{tee}/{n}"));
    let mut pck = f("pckCert.pem");
    pck.extend(f("pckSignChain.pem"));
    let collateral = Collateral::from_pcs(&PcsResponses {
        tcb_info_response: f("tcbInfo.json"),
        tcb_info_issuer_chain: f("tcbSignChain.pem"),
        qe_identity_response: f("qeIdentity.json"),
        qe_identity_issuer_chain: f("tcbSignChain.pem"),
        pck_crl: f("intermediateCaCrl.der"),
        pck_crl_issuer_chain: f("pckSignChain.pem"),
        root_ca_crl: f("rootCaCrl.der"),
        pck_certificate_chain: Some(pck),
    })
    .unwrap();
    (f("quote.dat"), collateral)
}

#[test]
fn intel_synthetic_evidence_is_an_untrusted_root_under_the_production_root() {
    for tee in ["sgx", "tdx"] {
        let (quote, collateral) = intel_synthetic(tee);
        // Inside the synthetic TCB info's window (2021-08-06 .. 2029-09-05).
        let err = verify_bytes(&quote, &collateral, 1_700_000_000).unwrap_err();
        assert!(matches!(err, Error::UntrustedRoot { .. }), "{tee}: {err:?}");
    }
}

#[test]
fn intel_synthetic_root_has_intels_name_but_another_key() {
    let root = vector("tdx/intel-synthetic/tdx/trustedRootCaCert.pem");
    let text = String::from_utf8(root).unwrap();
    assert!(text.contains("BEGIN CERTIFICATE"));
    let (_, collateral) = intel_synthetic("tdx");
    assert!(collateral
        .inner
        .tcb_info_issuer_chain
        .contains("BEGIN CERTIFICATE"));
    let err = TdxVerifier::new()
        .verify(
            &Quote::parse(&intel_synthetic("tdx").0).unwrap(),
            &collateral,
            1_700_000_000,
        )
        .unwrap_err();
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

// ------------------------------------------------------------------ byte flips (README table)

/// go-tdx-guest appended "extra bytes(only for testing purpose)" to this quote: the quote
/// proper is its prefix (`Quote::parse` refuses the text, see below).
fn verify_spr_e4(raw: &[u8]) -> Result<VerifiedQuote> {
    let (quote, _) = Quote::parse_prefix(raw)?;
    TdxVerifier::new().verify(&quote, &collateral(SPR_E4_COLLATERAL), SPR_E4_AT)
}

fn spr_e4_with(offset: usize, edit: impl FnOnce(&mut u8)) -> Result<VerifiedQuote> {
    let mut raw = quote_bytes("tdx_prod_quote_SPR_E4.dat");
    edit(&mut raw[offset]);
    verify_spr_e4(&raw)
}

#[test]
fn spr_e4_quote_with_its_trailing_test_text_is_refused_by_parse() {
    let err = Quote::parse(&quote_bytes("tdx_prod_quote_SPR_E4.dat")).unwrap_err();
    assert!(
        matches!(err, Error::TrailingBytes { count: 39, .. }),
        "{err:?}"
    );
}

#[test]
fn spr_e4_version_set_to_3_is_refused() {
    let err = spr_e4_with(0x00, |b| *b = 3).unwrap_err();
    assert!(
        matches!(
            err,
            Error::QuoteVersionTeeTypeMismatch {
                version: 3,
                tee_type: 0x81
            }
        ),
        "{err:?}"
    );
}

#[test]
fn spr_e4_signature_data_size_changed_is_a_size_error() {
    let err = spr_e4_with(0x278, |b| *b = 0x10).unwrap_err();
    assert!(
        matches!(
            err,
            Error::LengthOutOfRange {
                subject: Subject::CertificationData,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn spr_e4_flip_in_the_pck_chain_breaks_the_chain() {
    // The flip lands in the PEM framing of the root copy: the chain no longer decodes.
    // (dcap-qvl's PEM reader drops the broken section and goes on without the root copy.)
    let err = spr_e4_with(0x1343, |b| *b ^= 0x01).unwrap_err();
    assert!(
        matches!(
            err,
            Error::CertificateMalformed {
                subject: Subject::PckCertChain,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn spr_e4_flip_in_the_root_certificate_signature_is_refused() {
    // The quote's copy of the root no longer carries a valid self-signature by the root key.
    let err = spr_e4_with(0x1329, |b| *b ^= 0x01).unwrap_err();
    assert!(
        matches!(
            err,
            Error::CertificateSignatureInvalid {
                position: 2,
                subject: Subject::PckCertChain
            }
        ),
        "{err:?}"
    );
}

#[test]
fn spr_e4_flip_in_the_intermediate_signature_is_refused() {
    let err = spr_e4_with(0xF5F, |b| *b ^= 0x01).unwrap_err();
    assert!(
        matches!(
            err,
            Error::CertificateSignatureInvalid {
                position: 1,
                subject: Subject::PckCertChain
            }
        ),
        "{err:?}"
    );
}

#[test]
fn spr_e4_flip_in_the_pck_signature_is_refused() {
    let err = spr_e4_with(0xB77, |b| *b ^= 0x01).unwrap_err();
    assert!(
        matches!(
            err,
            Error::CertificateSignatureInvalid {
                position: 0,
                subject: Subject::PckCertificate
            }
        ),
        "{err:?}"
    );
}

#[test]
fn spr_e4_flips_in_the_header_are_quote_signature_errors() {
    for offset in [0x1E, 0x3C] {
        let err = spr_e4_with(offset, |b| *b ^= 0x01).unwrap_err();
        assert!(
            matches!(err, Error::QuoteSignatureInvalid),
            "{offset:#x}: {err:?}"
        );
    }
}

/// `tdx_quote` with one byte flipped, verified at its pinned time.
fn tdx_quote_with_flip(offset: usize) -> Result<VerifiedQuote> {
    let mut raw = quote_bytes("tdx_quote");
    raw[offset] ^= 0x01;
    verify_bytes(&raw, &collateral("tdx_quote_collateral.json"), TDX_AT)
}

// v4 layout: header 0..48, TD report 48..632 (REPORTDATA at 568..632), signature data length
// 632..636, quote signature 636..700, attestation key 700..764, certification data header
// 764..770, QE report 770..1154, QE report signature 1154..1218, QE auth data length 1218..1220.

#[test]
fn tdx_quote_with_flipped_report_data_is_a_quote_signature_error() {
    let err = tdx_quote_with_flip(600).unwrap_err();
    assert!(matches!(err, Error::QuoteSignatureInvalid), "{err:?}");
}

#[test]
fn tdx_quote_with_flipped_header_user_data_is_a_quote_signature_error() {
    let err = tdx_quote_with_flip(30).unwrap_err();
    assert!(matches!(err, Error::QuoteSignatureInvalid), "{err:?}");
}

#[test]
fn tdx_quote_with_flipped_mrtd_is_a_quote_signature_error() {
    let err = tdx_quote_with_flip(48 + 136 + 5).unwrap_err();
    assert!(matches!(err, Error::QuoteSignatureInvalid), "{err:?}");
}

#[test]
fn tdx_quote_with_flipped_quote_signature_is_a_quote_signature_error() {
    let err = tdx_quote_with_flip(640).unwrap_err();
    assert!(matches!(err, Error::QuoteSignatureInvalid), "{err:?}");
}

#[test]
fn tdx_quote_with_flipped_attestation_key_is_a_qe_report_data_mismatch() {
    let err = tdx_quote_with_flip(710).unwrap_err();
    assert!(matches!(err, Error::QeReportDataMismatch), "{err:?}");
}

#[test]
fn tdx_quote_with_flipped_qe_report_is_a_qe_report_signature_error() {
    for offset in [770, 770 + 128, 770 + 320] {
        let err = tdx_quote_with_flip(offset).unwrap_err();
        assert!(
            matches!(err, Error::QeReportSignatureInvalid),
            "{offset}: {err:?}"
        );
    }
}

#[test]
fn tdx_quote_with_flipped_qe_report_signature_is_a_qe_report_signature_error() {
    let err = tdx_quote_with_flip(1160).unwrap_err();
    assert!(matches!(err, Error::QeReportSignatureInvalid), "{err:?}");
}

#[test]
fn tdx_quote_with_flipped_qe_auth_data_is_a_qe_report_data_mismatch() {
    let err = tdx_quote_with_flip(1225).unwrap_err();
    assert!(matches!(err, Error::QeReportDataMismatch), "{err:?}");
}

// ------------------------------------------------------------------ time edges

#[test]
fn outdated_collateral_before_its_tcb_info_is_not_yet_valid() {
    let err = verify(
        "tdx_quote_outdated",
        "tdx_quote_outdated_collateral.json",
        1771408799,
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            Error::CollateralNotYetValid {
                subject: Subject::TcbInfo,
                now: 1771408799,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn outdated_collateral_after_its_tcb_info_is_expired() {
    let err = verify(
        "tdx_quote_outdated",
        "tdx_quote_outdated_collateral.json",
        1774051200,
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            Error::CollateralExpired {
                subject: Subject::TcbInfo,
                next_update: 1774004331,
                ..
            }
        ),
        "{err:?}"
    );
}

/// tdx_quote's collateral: QE identity issued 2025-06-19T10:32:27Z (the latest start), PCK CRL
/// nextUpdate 2025-07-19T10:00:35Z (the earliest end, one second after the pinned time).
const TDX_WINDOW_START: i64 = 1750329147;
const TDX_PCK_CRL_NEXT_UPDATE: i64 = 1752919235;

#[test]
fn tdx_quote_collateral_window_is_qe_identity_issue_to_pck_crl_next_update() {
    let v = verify("tdx_quote", "tdx_quote_collateral.json", TDX_AT).unwrap();
    assert_eq!(v.collateral_valid_from, TDX_WINDOW_START);
    assert_eq!(v.collateral_valid_until, TDX_PCK_CRL_NEXT_UPDATE - 1);
}

#[test]
fn tdx_quote_verifies_at_the_first_second_of_its_collateral_window() {
    verify("tdx_quote", "tdx_quote_collateral.json", TDX_WINDOW_START).unwrap();
}

#[test]
fn tdx_quote_one_second_before_its_qe_identity_is_not_yet_valid() {
    let err = verify(
        "tdx_quote",
        "tdx_quote_collateral.json",
        TDX_WINDOW_START - 1,
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            Error::CollateralNotYetValid {
                subject: Subject::QeIdentity,
                issue_date: TDX_WINDOW_START,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn tdx_quote_at_the_pck_crl_next_update_is_a_crl_expiry() {
    let err = verify(
        "tdx_quote",
        "tdx_quote_collateral.json",
        TDX_PCK_CRL_NEXT_UPDATE,
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            Error::CrlExpired {
                subject: Subject::PckCrl,
                next_update: TDX_PCK_CRL_NEXT_UPDATE,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn tdx_quote_after_its_tcb_info_expired_reports_the_tcb_info() {
    // TCB info nextUpdate 2025-07-19T10:16:03Z.
    let err = verify("tdx_quote", "tdx_quote_collateral.json", 1752920164).unwrap_err();
    assert!(
        matches!(
            err,
            Error::CollateralExpired {
                subject: Subject::TcbInfo,
                next_update: 1752920163,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn spr_e4_collateral_window_matches_the_readme() {
    // README: window 2023-06-18T08:42:58Z (TCB info issue) .. 2023-07-08T07:24:59Z (QE identity).
    let v = verify("tdx_quote_4.dat", SPR_E4_COLLATERAL, TDX_QUOTE_4_AT).unwrap();
    assert_eq!(v.collateral_valid_from, 1687077778);
    assert_eq!(v.collateral_valid_until, 1688801099);
}

// ------------------------------------------------------------------ cache

#[test]
fn warm_and_cold_verification_agree_on_every_vector() {
    let verifier = TdxVerifier::new();
    for (q, c, t) in [
        ("tdx_quote", "tdx_quote_collateral.json", TDX_AT),
        ("sgx_quote", "sgx_quote_collateral.json", SGX_AT),
        ("quote_hex.txt", "quote_collateral.json", NEAR_AT),
        ("tdx_quote_4.dat", SPR_E4_COLLATERAL, TDX_QUOTE_4_AT),
    ] {
        let quote = Quote::parse(&quote_bytes(q)).unwrap();
        let coll = collateral(c);
        let cold = verifier.verify(&quote, &coll, t).unwrap();
        let warm = verifier.verify(&quote, &coll, t).unwrap();
        assert_eq!(cold, warm, "{q}");
        verifier.clear_cache();
    }
}

#[test]
fn warm_cache_still_rejects_a_flipped_quote() {
    let verifier = TdxVerifier::new();
    let coll = collateral("tdx_quote_collateral.json");
    let raw = quote_bytes("tdx_quote");
    verifier
        .verify(&Quote::parse(&raw).unwrap(), &coll, TDX_AT)
        .unwrap();
    let mut flipped = raw.clone();
    flipped[600] ^= 0x80;
    let err = verifier
        .verify(&Quote::parse(&flipped).unwrap(), &coll, TDX_AT)
        .unwrap_err();
    assert!(matches!(err, Error::QuoteSignatureInvalid), "{err:?}");
}

#[test]
fn warm_cache_still_rejects_the_same_quote_after_its_collateral_expired() {
    let verifier = TdxVerifier::new();
    let coll = collateral("tdx_quote_collateral.json");
    let quote = Quote::parse(&quote_bytes("tdx_quote")).unwrap();
    verifier.verify(&quote, &coll, TDX_AT).unwrap();
    let err = verifier
        .verify(&quote, &coll, TDX_PCK_CRL_NEXT_UPDATE)
        .unwrap_err();
    assert!(matches!(err, Error::CrlExpired { .. }), "{err:?}");
    let err = verifier
        .verify(&quote, &coll, TDX_WINDOW_START - 1)
        .unwrap_err();
    assert!(
        matches!(err, Error::CollateralNotYetValid { .. }),
        "{err:?}"
    );
}

#[test]
fn collateral_of_another_platform_is_an_fmspc_mismatch() {
    let err = verify("tdx_quote", "quote_collateral.json", NEAR_AT).unwrap_err();
    assert!(matches!(err, Error::FmspcMismatch { .. }), "{err:?}");
}

#[test]
fn sgx_collateral_for_a_tdx_quote_is_a_collateral_mismatch() {
    let err = verify("tdx_quote", "sgx_quote_collateral.json", SGX_AT).unwrap_err();
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
fn tdx_collateral_for_an_sgx_quote_is_a_collateral_mismatch() {
    let err = verify("sgx_quote", "tdx_quote_collateral.json", TDX_AT).unwrap_err();
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
