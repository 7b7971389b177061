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
    Quote::parse(raw).unwrap_or_else(|_| quote_from_dcap(raw))
}

/// Until `Quote::parse` lands: build our `Quote` from dcap-qvl's parser (test only).
fn quote_from_dcap(raw: &[u8]) -> Quote {
    use super::super::quote::{
        CertificationData, QuoteHeader, QuoteSignature, TdReport10, TdReport15,
    };
    let q = dcap_qvl::quote::Quote::parse(raw).unwrap();
    let header = QuoteHeader {
        version: q.header.version,
        attestation_key_type: q.header.attestation_key_type,
        tee_type: q.header.tee_type,
        qe_svn: q.header.qe_svn,
        pce_svn: q.header.pce_svn,
        qe_vendor_id: q.header.qe_vendor_id,
        user_data: q.header.user_data,
    };
    let td10 = |r: &dcap_qvl::quote::TDReport10| TdReport10 {
        tee_tcb_svn: r.tee_tcb_svn,
        mr_seam: r.mr_seam,
        mr_signer_seam: r.mr_signer_seam,
        seam_attributes: r.seam_attributes,
        td_attributes: r.td_attributes,
        xfam: r.xfam,
        mr_td: r.mr_td,
        mr_config_id: r.mr_config_id,
        mr_owner: r.mr_owner,
        mr_owner_config: r.mr_owner_config,
        rt_mr: [r.rt_mr0, r.rt_mr1, r.rt_mr2, r.rt_mr3],
        report_data: r.report_data,
    };
    let enclave = |r: &dcap_qvl::quote::EnclaveReport| EnclaveReport {
        cpu_svn: r.cpu_svn,
        misc_select: r.misc_select,
        attributes: r.attributes,
        mr_enclave: r.mr_enclave,
        mr_signer: r.mr_signer,
        isv_prod_id: r.isv_prod_id,
        isv_svn: r.isv_svn,
        report_data: r.report_data,
    };
    let (body, body_type) = match &q.report {
        dcap_qvl::quote::Report::SgxEnclave(r) => (QuoteBody::SgxEnclave(enclave(r)), 1),
        dcap_qvl::quote::Report::TD10(r) => (QuoteBody::Td10(td10(r)), 2),
        dcap_qvl::quote::Report::TD15(r) => (
            QuoteBody::Td15(TdReport15 {
                base: td10(&r.base),
                tee_tcb_svn2: r.tee_tcb_svn2,
                mr_service_td: r.mr_service_td,
            }),
            3,
        ),
        _ => panic!("unsupported body"),
    };
    let auth = q.auth_data.clone().into_v3();
    let qe_report = qe_report_from_raw(&auth.qe_report).unwrap();
    Quote {
        header,
        body_type,
        body,
        signature: QuoteSignature {
            ecdsa_signature: auth.ecdsa_signature,
            attestation_key: auth.ecdsa_attestation_key,
            qe_report,
            qe_report_raw: auth.qe_report.to_vec(),
            qe_report_signature: auth.qe_report_signature,
            qe_auth_data: auth.qe_auth_data.data.clone(),
            certification_data: CertificationData {
                cert_type: auth.certification_data.cert_type,
                data: auth.certification_data.body.data.clone(),
            },
        },
        signed_bytes: raw[..q.signed_length()].to_vec(),
        trailing_zero_padding: 0,
    }
}

pub(super) fn collateral(name: &str) -> Collateral {
    let json = test_vectors::read(&format!("tdx/{name}"));
    Collateral {
        inner: serde_json::from_slice(&json).unwrap(),
    }
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

#[test]
#[ignore = "benchmark: cargo test --release -p cocoon-attestation bench_ -- --ignored --nocapture"]
fn bench_tdx_quote_against_dcap_qvl() {
    let raw = test_vectors::read("tdx/tdx_quote");
    let coll = collateral("tdx_quote_collateral.json");
    let n = 200;
    let t = std::time::Instant::now();
    for _ in 0..n {
        dcap_qvl::verify::verify(&raw, &coll.inner, TDX_AT as u64).unwrap();
    }
    let dcap = t.elapsed().as_secs_f64() / n as f64;
    let verifier = TdxVerifier::new();
    let t = std::time::Instant::now();
    for _ in 0..n {
        verifier.clear_cache();
        let q = parse_quote(&raw);
        verifier.verify(&q, &coll, TDX_AT).unwrap();
    }
    let cold = t.elapsed().as_secs_f64() / n as f64;
    let t = std::time::Instant::now();
    for _ in 0..n {
        let q = parse_quote(&raw);
        verifier.verify(&q, &coll, TDX_AT).unwrap();
    }
    let warm = t.elapsed().as_secs_f64() / n as f64;
    println!(
        "dcap-qvl {:.0}/s, cold {:.0}/s ({:.2}x), warm {:.0}/s ({:.2}x)",
        1.0 / dcap,
        1.0 / cold,
        dcap / cold,
        1.0 / warm,
        dcap / warm
    );
}
