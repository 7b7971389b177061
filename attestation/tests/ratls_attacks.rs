//! Channel attacks on RA-TLS certificates, each refused with its specific error. Structural
//! attacks need no TEE; the transplant attacks use REAL evidence from `../shared/vectors`
//! (authentic, but made for other claims); the rest use the simulated TEE (feature `sim`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]

mod ratls_common;

use std::sync::Arc;

use cocoon_attestation::claims::{Claims, ClaimsPlatform};
use cocoon_attestation::policy::Policy;
use cocoon_attestation::ratls::{
    issue_certificate, issue_with_extensions, CarriedEvidence, CertificateParams, EvidenceFormat,
    ExtensionOid, RaTlsCertificate, RaTlsVerifier, RawExtension, StaticCollateral, VerifierConfig,
    MAX_CERTIFICATE_SIZE, MAX_EVIDENCE_EXTENSION_SIZE,
};
use cocoon_attestation::Error;
use ratls_common::*;

const NOW: i64 = 1_767_225_600;

/// Evidence that is never looked at (the certificate is refused before).
fn junk_evidence() -> CarriedEvidence {
    CarriedEvidence {
        format: EvidenceFormat::TdxQuote,
        evidence: vec![0x5A; 64],
        certificates: vec![],
    }
}

fn extensions_for(key: &rcgen::KeyPair) -> Vec<RawExtension> {
    let claims = claims_for(key, ClaimsPlatform::Tdx, NOW);
    vec![
        RawExtension::evidence(&junk_evidence()),
        RawExtension::claims(&claims.to_bytes()),
    ]
}

fn parse_err(der: &[u8]) -> Error {
    RaTlsCertificate::parse(der).unwrap_err()
}

fn default_verifier() -> RaTlsVerifier {
    RaTlsVerifier::new(VerifierConfig::default()).unwrap()
}

// ------------------------------------------------------------------ structure

#[test]
fn certificate_without_evidence_is_refused() {
    let key = p256();
    let mut exts = extensions_for(&key);
    exts.remove(0);
    let der = issue_with_extensions(&key, &exts, &params(NOW)).unwrap();
    assert!(matches!(
        parse_err(&der),
        Error::RaTlsExtensionMissing {
            extension: "evidence"
        }
    ));
    assert!(matches!(
        default_verifier().verify_certificate(&der, NOW),
        Err(Error::RaTlsExtensionMissing {
            extension: "evidence"
        })
    ));
}

#[test]
fn certificate_without_claims_is_refused() {
    let key = p256();
    let mut exts = extensions_for(&key);
    exts.pop();
    let der = issue_with_extensions(&key, &exts, &params(NOW)).unwrap();
    assert!(matches!(
        parse_err(&der),
        Error::RaTlsExtensionMissing {
            extension: "claims"
        }
    ));
}

#[test]
fn plain_certificate_without_any_extension_of_ours_is_refused() {
    let key = p256();
    let der = issue_with_extensions(&key, &[], &params(NOW)).unwrap();
    assert!(matches!(
        parse_err(&der),
        Error::RaTlsExtensionMissing {
            extension: "evidence"
        }
    ));
}

#[test]
fn duplicated_evidence_extension_is_refused() {
    let key = p256();
    let mut exts = extensions_for(&key);
    exts.push(RawExtension::evidence(&junk_evidence()));
    let der = issue_with_extensions(&key, &exts, &params(NOW)).unwrap();
    match parse_err(&der) {
        Error::DuplicateExtension { oid } => {
            assert_eq!(oid, cocoon_attestation::ratls::EVIDENCE_OID)
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn duplicated_foreign_extension_is_refused() {
    let key = p256();
    let mut exts = extensions_for(&key);
    for _ in 0..2 {
        exts.push(RawExtension {
            oid: ExtensionOid::Other(vec![1, 3, 6, 1, 4, 1, 99999, 7]),
            critical: false,
            value: vec![0x05, 0x00],
        });
    }
    let der = issue_with_extensions(&key, &exts, &params(NOW)).unwrap();
    assert!(matches!(
        parse_err(&der),
        Error::DuplicateExtension { oid } if oid == "1.3.6.1.4.1.99999.7"
    ));
}

#[test]
fn unknown_critical_extension_is_refused() {
    let key = p256();
    let mut exts = extensions_for(&key);
    exts.push(RawExtension {
        oid: ExtensionOid::Other(vec![1, 3, 6, 1, 4, 1, 99999, 1]),
        critical: true,
        value: vec![0x05, 0x00],
    });
    let der = issue_with_extensions(&key, &exts, &params(NOW)).unwrap();
    assert!(matches!(
        parse_err(&der),
        Error::UnknownCriticalExtension { oid } if oid == "1.3.6.1.4.1.99999.1"
    ));
}

#[test]
fn unknown_non_critical_extension_is_ignored() {
    let key = p256();
    let mut exts = extensions_for(&key);
    exts.push(RawExtension {
        oid: ExtensionOid::Other(vec![1, 3, 6, 1, 4, 1, 99999, 2]),
        critical: false,
        value: vec![0x05, 0x00],
    });
    let der = issue_with_extensions(&key, &exts, &params(NOW)).unwrap();
    let cert = RaTlsCertificate::parse(&der).unwrap();
    assert_eq!(cert.evidence().evidence, junk_evidence().evidence);
}

#[test]
fn non_critical_evidence_extension_is_refused() {
    let key = p256();
    let mut exts = extensions_for(&key);
    exts[0].critical = false;
    let der = issue_with_extensions(&key, &exts, &params(NOW)).unwrap();
    assert!(matches!(
        parse_err(&der),
        Error::RaTlsExtensionNotCritical {
            extension: "evidence"
        }
    ));
}

#[test]
fn p384_key_is_an_unexpected_key_type() {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
    let der = issue_with_extensions(&key, &extensions_for(&key), &params(NOW)).unwrap();
    assert!(matches!(
        parse_err(&der),
        Error::UnsupportedKeyType { algorithm } if algorithm.contains("1.3.132.0.34")
    ));
    // The issuer refuses it too.
    let claims = claims_for(&key, ClaimsPlatform::Tdx, NOW);
    assert!(matches!(
        issue_certificate(&key, &claims, &junk_evidence(), &params(NOW)),
        Err(Error::UnsupportedKeyType { .. })
    ));
}

#[test]
fn rsa_key_is_an_unexpected_key_type() {
    let pem = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/data/ratls/rsa2048.test-key.pem"
    ))
    .unwrap();
    let key = rcgen::KeyPair::from_pem(&pem).unwrap();
    let der = issue_with_extensions(&key, &extensions_for(&key), &params(NOW)).unwrap();
    assert!(matches!(
        parse_err(&der),
        Error::UnsupportedKeyType { algorithm } if algorithm == "1.2.840.113549.1.1.1"
    ));
}

#[test]
fn tampered_certificate_fails_its_self_signature() {
    let key = p256();
    let mut der = issue_with_extensions(&key, &extensions_for(&key), &params(NOW)).unwrap();
    // Flip a byte of the junk evidence inside the signed part.
    let pos = der.windows(8).position(|w| w == [0x5A; 8]).unwrap();
    der[pos] ^= 1;
    assert!(matches!(parse_err(&der), Error::SelfSignatureInvalid));
}

#[test]
fn certificate_signed_by_another_key_is_refused() {
    // Subject key A, signed by B: rcgen's signed_by with an issuer of the same name.
    let subject = p256();
    let issuer_key = ed25519();
    let der_a = issue_with_extensions(&subject, &extensions_for(&subject), &params(NOW)).unwrap();
    // Take A's certificate and replace its signature by one from B over the same TBS: the
    // signature algorithm no longer fits the key, or the signature does not verify.
    let cert = RaTlsCertificate::parse(&der_a).unwrap();
    assert_eq!(cert.spki_sha256(), spki_sha256(&subject));
    let issuer_params = rcgen::CertificateParams::new(vec!["x".to_string()]).unwrap();
    let issuer = issuer_params.self_signed(&issuer_key).unwrap();
    let mut params_b = rcgen::CertificateParams::new(vec!["x".to_string()]).unwrap();
    params_b.distinguished_name = issuer.params().distinguished_name.clone();
    let signed = params_b.signed_by(&subject, &issuer, &issuer_key).unwrap();
    let err = parse_err(signed.der());
    assert!(
        matches!(
            err,
            Error::UnsupportedKeyType { .. } | Error::SelfSignatureInvalid
        ),
        "{err:?}"
    );
}

#[test]
fn trailing_bytes_after_the_certificate_are_refused() {
    let key = p256();
    let mut der = issue_with_extensions(&key, &extensions_for(&key), &params(NOW)).unwrap();
    der.push(0);
    assert!(matches!(
        parse_err(&der),
        Error::TrailingBytes { count: 1, .. }
    ));
}

#[test]
fn oversized_certificate_is_refused_before_parsing() {
    let key = p256();
    let mut exts = extensions_for(&key);
    exts.push(RawExtension {
        oid: ExtensionOid::Other(vec![1, 3, 6, 1, 4, 1, 99999, 3]),
        critical: false,
        value: vec![0x04; MAX_CERTIFICATE_SIZE],
    });
    let der = issue_with_extensions(&key, &exts, &params(NOW)).unwrap();
    assert!(der.len() > MAX_CERTIFICATE_SIZE);
    assert!(matches!(
        parse_err(&der),
        Error::InputTooLarge { size, limit: MAX_CERTIFICATE_SIZE, .. } if size == der.len()
    ));
    assert!(matches!(
        default_verifier().verify_certificate(&der, NOW),
        Err(Error::InputTooLarge { .. })
    ));
    assert!(default_verifier().peer(&der).is_none());
}

#[test]
fn oversized_evidence_extension_is_refused() {
    let key = p256();
    let mut exts = extensions_for(&key);
    exts[0] = RawExtension::evidence(&CarriedEvidence {
        format: EvidenceFormat::TdxQuote,
        evidence: vec![1; MAX_EVIDENCE_EXTENSION_SIZE],
        certificates: vec![],
    });
    let der = issue_with_extensions(&key, &exts, &params(NOW)).unwrap();
    assert!(der.len() <= MAX_CERTIFICATE_SIZE);
    assert!(matches!(
        parse_err(&der),
        Error::RaTlsExtensionTooLarge {
            extension: "evidence",
            limit: MAX_EVIDENCE_EXTENSION_SIZE,
            ..
        }
    ));
}

#[test]
fn malformed_claims_inside_the_extension_are_refused() {
    let key = p256();
    let mut exts = extensions_for(&key);
    exts[1] = RawExtension::claims(b"CCLM\x00\x01\x00\x00");
    let der = issue_with_extensions(&key, &exts, &params(NOW)).unwrap();
    assert!(matches!(parse_err(&der), Error::ClaimsMalformed { .. }));
}

#[test]
fn snp_evidence_without_platform_certificates_is_refused() {
    let key = p256();
    let mut exts = extensions_for(&key);
    exts[0] = RawExtension::evidence(&CarriedEvidence {
        format: EvidenceFormat::SnpReport,
        evidence: vec![1; 1184],
        certificates: vec![],
    });
    let der = issue_with_extensions(&key, &exts, &params(NOW)).unwrap();
    assert!(matches!(
        parse_err(&der),
        Error::RaTlsExtensionMissing {
            extension: "platform-certificates"
        }
    ));
}

// ------------------------------------------------------------------ times, lifetime, key

fn verify_junk(key: &rcgen::KeyPair, p: &CertificateParams, now: i64) -> Error {
    let der = issue_with_extensions(key, &extensions_for(key), p).unwrap();
    default_verifier()
        .verify_certificate(&der, now)
        .unwrap_err()
}

#[test]
fn lifetime_over_24_hours_is_refused() {
    let key = p256();
    let p = CertificateParams {
        not_before: NOW - 60,
        not_after: NOW - 60 + 24 * 3600 + 1,
        subject_alt_names: vec![],
    };
    assert!(matches!(
        verify_junk(&key, &p, NOW),
        Error::CertificateLifetimeTooLong {
            lifetime_secs: 86401,
            max_secs: 86400
        }
    ));
}

#[test]
fn expired_certificate_is_refused() {
    let key = p256();
    let p = params(NOW);
    assert!(matches!(
        verify_junk(&key, &p, p.not_after + 1),
        Error::CertificateExpired { not_after, .. } if not_after == p.not_after
    ));
}

#[test]
fn not_yet_valid_certificate_is_refused() {
    let key = p256();
    let p = params(NOW);
    assert!(matches!(
        verify_junk(&key, &p, p.not_before - 1),
        Error::CertificateNotYetValid { not_before, .. } if not_before == p.not_before
    ));
}

#[test]
fn claims_naming_another_key_are_refused_before_the_evidence() {
    let key = p256();
    let other = p256();
    let claims = claims_for(&other, ClaimsPlatform::Tdx, NOW);
    let exts = vec![
        RawExtension::evidence(&junk_evidence()),
        RawExtension::claims(&claims.to_bytes()),
    ];
    let der = issue_with_extensions(&key, &exts, &params(NOW)).unwrap();
    assert!(matches!(
        default_verifier().verify_certificate(&der, NOW),
        Err(Error::CertificateKeyMismatch { .. })
    ));
    // The issuer refuses to make such a certificate.
    assert!(matches!(
        issue_certificate(&key, &claims, &junk_evidence(), &params(NOW)),
        Err(Error::CertificateKeyMismatch { .. })
    ));
}

#[test]
fn tdx_evidence_without_a_collateral_source_is_refused() {
    let key = p256();
    let err = verify_junk(&key, &params(NOW), NOW);
    // The junk quote does not even parse; with a real quote the collateral is missing.
    assert!(
        matches!(err, Error::UnsupportedQuoteVersion(0x5A5A)),
        "{err:?}"
    );
    let claims = claims_for(&key, ClaimsPlatform::Tdx, TDX_AT);
    let evidence = CarriedEvidence {
        format: EvidenceFormat::TdxQuote,
        evidence: vector("tdx/tdx_quote"),
        certificates: vec![],
    };
    let der = issue_certificate(&key, &claims, &evidence, &params(TDX_AT)).unwrap();
    assert!(matches!(
        default_verifier().verify_certificate(&der, TDX_AT),
        Err(Error::CollateralNotFound { .. })
    ));
}

// ------------------------------------------------------------------ transplanted REAL evidence

/// A certificate for a fresh key of ours carrying genuine evidence made for someone else.
fn transplant(evidence: CarriedEvidence, platform: ClaimsPlatform, at: i64) -> (Vec<u8>, Claims) {
    let key = p256();
    let claims = claims_for(&key, platform, at);
    let der = issue_certificate(&key, &claims, &evidence, &params(at)).unwrap();
    (der, claims)
}

fn real_tdx_verifier() -> RaTlsVerifier {
    let collateral =
        std::fs::read_to_string(ratls_common::vector_path("tdx/tdx_quote_collateral.json"))
            .unwrap();
    RaTlsVerifier::new(
        VerifierConfig::default()
            .with_collateral(Arc::new(StaticCollateral::from_json(&collateral).unwrap())),
    )
    .unwrap()
}

#[test]
fn genuine_tdx_quote_transplanted_into_our_certificate_fails_the_binding() {
    let quote = vector("tdx/tdx_quote");
    let (der, _) = transplant(
        CarriedEvidence {
            format: EvidenceFormat::TdxQuote,
            evidence: quote.clone(),
            certificates: vec![],
        },
        ClaimsPlatform::Tdx,
        TDX_AT,
    );
    // Authenticity passes (the quote and its collateral verify at the pinned time) ...
    let parsed = cocoon_attestation::tdx::Quote::parse(&quote).unwrap();
    let collateral =
        cocoon_attestation::tdx::Collateral::from_json(&vector("tdx/tdx_quote_collateral.json"))
            .unwrap();
    cocoon_attestation::tdx::TdxVerifier::new()
        .verify(&parsed, &collateral, TDX_AT)
        .unwrap();
    // ... the binding does not: REPORT_DATA is someone else's.
    match real_tdx_verifier().verify_certificate(&der, TDX_AT) {
        Err(Error::ReportDataMismatch { actual, .. }) => {
            assert_eq!(actual, hex::encode(parsed.report_data()))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn genuine_snp_report_transplanted_into_our_certificate_fails_the_binding() {
    let (der, _) = transplant(
        CarriedEvidence {
            format: EvidenceFormat::SnpReport,
            evidence: hex_vector("snp/report_milan.hex"),
            certificates: vec![vector("snp/vcek_milan.der")],
        },
        ClaimsPlatform::SevSnp,
        MILAN_AT,
    );
    let err = default_verifier()
        .verify_certificate(&der, MILAN_AT)
        .unwrap_err();
    assert!(matches!(err, Error::ReportDataMismatch { .. }), "{err:?}");
}

#[test]
fn genuine_snp_report_with_its_full_chain_transplanted_fails_the_binding() {
    let chain = vector("snp/ask_ark_milan.pem");
    let ders: Vec<Vec<u8>> = pem::parse_many(&chain)
        .unwrap()
        .into_iter()
        .map(|p| p.into_contents())
        .collect();
    let mut certificates = vec![vector("snp/vcek_milan.der")];
    certificates.extend(ders);
    let (der, _) = transplant(
        CarriedEvidence {
            format: EvidenceFormat::SnpReport,
            evidence: hex_vector("snp/report_milan.hex"),
            certificates,
        },
        ClaimsPlatform::SevSnp,
        MILAN_AT,
    );
    let err = default_verifier()
        .verify_certificate(&der, MILAN_AT)
        .unwrap_err();
    assert!(matches!(err, Error::ReportDataMismatch { .. }), "{err:?}");
}

#[test]
fn genuine_snp_report_with_a_corrupted_signature_is_a_signature_error_not_a_binding_error() {
    // The control: a transplant is refused on the binding only because authenticity held.
    let mut report = hex_vector("snp/report_milan.hex");
    report[0x2A0] ^= 1;
    let (der, _) = transplant(
        CarriedEvidence {
            format: EvidenceFormat::SnpReport,
            evidence: report,
            certificates: vec![vector("snp/vcek_milan.der")],
        },
        ClaimsPlatform::SevSnp,
        MILAN_AT,
    );
    let err = default_verifier()
        .verify_certificate(&der, MILAN_AT)
        .unwrap_err();
    assert!(matches!(err, Error::ReportSignatureInvalid), "{err:?}");
}

#[test]
fn real_evidence_with_claims_for_another_platform_is_refused() {
    let (der, _) = transplant(
        CarriedEvidence {
            format: EvidenceFormat::SnpReport,
            evidence: hex_vector("snp/report_milan.hex"),
            certificates: vec![vector("snp/vcek_milan.der")],
        },
        ClaimsPlatform::Tdx,
        MILAN_AT,
    );
    assert!(matches!(
        default_verifier().verify_certificate(&der, MILAN_AT),
        Err(Error::ClaimsPlatformMismatch {
            claims: "tdx",
            evidence: "sev-snp"
        })
    ));
}

#[test]
fn sim_policy_does_not_matter_for_real_evidence_binding() {
    // Policy evaluation comes after the binding: a policy that would refuse the platform does
    // not mask the binding error.
    let policy = Policy::default().with_tdx(Some(Default::default()));
    let verifier = RaTlsVerifier::new(VerifierConfig::new(policy)).unwrap();
    let (der, _) = transplant(
        CarriedEvidence {
            format: EvidenceFormat::SnpReport,
            evidence: hex_vector("snp/report_milan.hex"),
            certificates: vec![vector("snp/vcek_milan.der")],
        },
        ClaimsPlatform::SevSnp,
        MILAN_AT,
    );
    assert!(matches!(
        verifier.verify_certificate(&der, MILAN_AT),
        Err(Error::ReportDataMismatch { .. })
    ));
}
