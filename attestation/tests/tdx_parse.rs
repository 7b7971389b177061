//! The DCAP quote parser and collateral loaders through the crate's public API.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use cocoon_attestation::tdx::collateral::PcsResponses;
use cocoon_attestation::tdx::{Collateral, Quote, QuoteBody};
use cocoon_attestation::{Error, Subject};

fn vector(relative: &str) -> Vec<u8> {
    let p = format!(
        "{}/../../shared/vectors/{relative}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

#[test]
fn quotes_and_their_collateral_load_through_the_public_api() {
    for (quote, collateral, sgx) in [
        ("tdx/tdx_quote", "tdx/tdx_quote_collateral.json", false),
        ("tdx/sgx_quote", "tdx/sgx_quote_collateral.json", true),
        (
            "tdx/tdx_quote_outdated",
            "tdx/tdx_quote_outdated_collateral.json",
            false,
        ),
    ] {
        let q = Quote::parse(&vector(quote)).unwrap();
        assert_eq!(matches!(q.body, QuoteBody::SgxEnclave(_)), sgx, "{quote}");
        assert_eq!(q.td_report().is_none(), sgx, "{quote}");
        assert_eq!(q.pck_chain_der().unwrap().len(), 3, "{quote}");
        let c = Collateral::from_json(&vector(collateral)).unwrap();
        assert_eq!(c.content_hash(), c.clone().content_hash());
    }
}

#[test]
fn go_tdx_guest_quote_parses_only_as_a_prefix() {
    let raw = vector("tdx/tdx_prod_quote_SPR_E4.dat");
    let err = Quote::parse(&raw).unwrap_err();
    assert!(
        matches!(
            err,
            Error::TrailingBytes {
                subject: Subject::Quote,
                count: 39
            }
        ),
        "{err:?}"
    );
    let (q, len) = Quote::parse_prefix(&raw).unwrap();
    assert_eq!(q, Quote::parse(&raw[..len]).unwrap());
}

#[test]
fn pcs_responses_build_the_same_collateral_as_the_derived_json() {
    let d: serde_json::Value =
        serde_json::from_slice(&vector("tdx/DERIVED_dcapqvl_collateral_SPR_E4.json")).unwrap();
    let chain = |k: &str| d[k].as_str().unwrap().as_bytes().to_vec();
    let r = PcsResponses {
        tcb_info_response: vector("tdx/sample_tcbInfo_response"),
        tcb_info_issuer_chain: chain("tcb_info_issuer_chain"),
        qe_identity_response: vector("tdx/sample_qeIdentity_response"),
        qe_identity_issuer_chain: chain("qe_identity_issuer_chain"),
        pck_crl: vector("tdx/pckcrl"),
        pck_crl_issuer_chain: chain("pck_crl_issuer_chain"),
        root_ca_crl: vector("tdx/rootcrl.der"),
        pck_certificate_chain: None,
    };
    let from_pcs = Collateral::from_pcs(&r).unwrap();
    let from_json =
        Collateral::from_json(&vector("tdx/DERIVED_dcapqvl_collateral_SPR_E4.json")).unwrap();
    assert_eq!(from_pcs, from_json);
    assert_eq!(from_pcs.content_hash(), from_json.content_hash());
}
