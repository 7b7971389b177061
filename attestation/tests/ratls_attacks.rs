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
    // Same name as issuer and subject, same algorithm, but signed by another P-256 key.
    let subject = p256();
    let issuer_key = p256();
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::CommonName, "cocoon RA-TLS");
    let mut issuer_params = rcgen::CertificateParams::new(vec![]).unwrap();
    issuer_params.distinguished_name = dn.clone();
    let issuer = issuer_params.self_signed(&issuer_key).unwrap();
    let mut subject_params = rcgen::CertificateParams::new(vec![]).unwrap();
    subject_params.distinguished_name = dn;
    let signed = subject_params
        .signed_by(&subject, &issuer, &issuer_key)
        .unwrap();
    assert!(matches!(
        parse_err(signed.der()),
        Error::SelfSignatureInvalid
    ));
}

#[test]
fn certificate_whose_issuer_is_not_its_subject_is_refused() {
    let subject = p256();
    let issuer_key = p256();
    let mut issuer_params = rcgen::CertificateParams::new(vec![]).unwrap();
    issuer_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "some CA");
    let issuer = issuer_params.self_signed(&issuer_key).unwrap();
    let signed = rcgen::CertificateParams::new(vec![])
        .unwrap()
        .signed_by(&subject, &issuer, &issuer_key)
        .unwrap();
    assert!(matches!(
        parse_err(signed.der()),
        Error::CertificateMalformed { reason, .. } if reason.contains("self-issued")
    ));
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

#[test]
fn transplanted_real_tdx_quote_fails_the_binding_inside_a_tls_handshake() {
    // rustls's clock is pinned to the vector's time: the quote and its collateral verify.
    let key = p256();
    let claims = claims_for(&key, ClaimsPlatform::Tdx, TDX_AT);
    let evidence = CarriedEvidence {
        format: EvidenceFormat::TdxQuote,
        evidence: vector("tdx/tdx_quote"),
        certificates: vec![],
    };
    let der = issue_certificate(&key, &claims, &evidence, &params(TDX_AT)).unwrap();
    let verifier = Arc::new(real_tdx_verifier());
    let cc = cocoon_attestation::ratls::client_config_with_time_provider(
        verifier.clone(),
        None,
        fixed(TDX_AT),
    )
    .unwrap();
    let sc = cocoon_attestation::ratls::server_config_with_time_provider(
        server_resolver(&der, &key),
        None,
        fixed(TDX_AT),
    )
    .unwrap();
    let (mut c, mut s) = connect(cc, sc);
    match handshake(&mut c, &mut s) {
        Err(Failure::Client(e)) => assert!(
            matches!(
                cocoon_attestation::ratls::attestation_error(&e),
                Some(Error::ReportDataMismatch { .. })
            ),
            "{e:?}"
        ),
        other => panic!("{other:?}"),
    }
}

// ------------------------------------------------------------------ collateral selection

fn vector_text(relative: &str) -> String {
    String::from_utf8(vector(relative)).unwrap()
}

#[test]
fn static_collateral_picks_the_collateral_of_the_quotes_fmspc() {
    use cocoon_attestation::ratls::CollateralSource;
    let source = StaticCollateral::from_json_many(&[
        &vector_text("tdx/tdx_quote_outdated_collateral.json"),
        &vector_text("tdx/tdx_quote_collateral.json"),
        &vector_text("tdx/sgx_quote_collateral.json"),
    ])
    .unwrap();
    let quote = cocoon_attestation::tdx::Quote::parse(&vector("tdx/tdx_quote")).unwrap();
    let picked = source.tdx_collateral(&quote).unwrap();
    let expected =
        cocoon_attestation::tdx::Collateral::from_json(&vector("tdx/tdx_quote_collateral.json"))
            .unwrap();
    assert_eq!(*picked, expected);
}

#[test]
fn static_collateral_without_the_quotes_fmspc_is_not_found() {
    use cocoon_attestation::ratls::CollateralSource;
    let source =
        StaticCollateral::from_json(&vector_text("tdx/tdx_quote_outdated_collateral.json"))
            .unwrap();
    let quote = cocoon_attestation::tdx::Quote::parse(&vector("tdx/tdx_quote")).unwrap();
    assert!(matches!(
        source.tdx_collateral(&quote),
        Err(Error::CollateralNotFound { reason }) if reason.contains("B0C06F000000")
    ));
}

#[test]
fn empty_static_collateral_is_refused() {
    assert!(matches!(
        StaticCollateral::new(vec![]),
        Err(Error::CollateralNotFound { .. })
    ));
}

// ------------------------------------------------------------------ issuer-side checks

#[test]
fn issuer_refuses_snp_evidence_without_its_vcek() {
    let key = ed25519();
    let claims = claims_for(&key, ClaimsPlatform::SevSnp, NOW);
    let evidence = CarriedEvidence {
        format: EvidenceFormat::SnpReport,
        evidence: vec![0; 1184],
        certificates: vec![],
    };
    assert!(matches!(
        issue_certificate(&key, &claims, &evidence, &params(NOW)),
        Err(Error::RaTlsExtensionMissing {
            extension: "platform-certificates"
        })
    ));
}

#[test]
fn issuer_refuses_platform_certificates_with_tdx_evidence() {
    let key = ed25519();
    let claims = claims_for(&key, ClaimsPlatform::Tdx, NOW);
    let mut evidence = junk_evidence();
    evidence.certificates.push(vec![1, 2, 3]);
    assert!(matches!(
        issue_certificate(&key, &claims, &evidence, &params(NOW)),
        Err(Error::RaTlsExtensionMalformed {
            extension: "platform-certificates",
            ..
        })
    ));
}

#[test]
fn issuer_refuses_an_empty_validity() {
    let key = ed25519();
    let claims = claims_for(&key, ClaimsPlatform::Tdx, NOW);
    let p = CertificateParams {
        not_before: NOW,
        not_after: NOW,
        subject_alt_names: vec![],
    };
    assert!(matches!(
        issue_certificate(&key, &claims, &junk_evidence(), &p),
        Err(Error::Malformed { .. })
    ));
}

#[test]
fn issued_certificate_has_a_random_serial_and_the_given_names() {
    let key = ed25519();
    let claims = claims_for(&key, ClaimsPlatform::Tdx, NOW);
    let a = issue_certificate(&key, &claims, &junk_evidence(), &params(NOW)).unwrap();
    let b = issue_certificate(&key, &claims, &junk_evidence(), &params(NOW)).unwrap();
    assert_ne!(a, b, "serials differ");
    let cert = RaTlsCertificate::parse(&a).unwrap();
    assert_eq!(cert.not_before(), NOW - 600);
    assert_eq!(cert.not_after(), NOW + 6600);
    assert_eq!(cert.key_type(), cocoon_attestation::ratls::KeyType::Ed25519);
    assert!(a.windows(12).any(|w| w == b"enclave.test"));
}

// ------------------------------------------------------------------ mutations never slip through

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

fn committed(name: &str) -> Vec<u8> {
    std::fs::read(
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/data/ratls")
            .join(name),
    )
    .unwrap()
}

#[test]
fn every_mutation_of_a_committed_certificate_is_refused_without_panicking() {
    // Ed25519 signatures are not malleable and DER is canonical: any change to the bytes must
    // be refused (by the DER parser, the caps, or the self-signature).
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    for name in ["ours_sim_snp_ed25519.der", "ours_sim_tdx_ed25519.der"] {
        let original = committed(name);
        RaTlsCertificate::parse(&original).unwrap();
        for round in 0..600 {
            let mut data = original.clone();
            match rng.below(5) {
                0 => {
                    for _ in 0..=rng.below(4) {
                        let i = rng.below(data.len());
                        data[i] ^= (rng.next() as u8) | 1;
                    }
                }
                1 => data.truncate(rng.below(data.len())),
                2 => data.extend((0..=rng.below(16)).map(|_| rng.next() as u8)),
                3 => {
                    let at = rng.below(data.len() + 1);
                    data.insert(at, rng.next() as u8);
                }
                _ => {
                    let start = rng.below(data.len());
                    let end = (start + 1 + rng.below(32)).min(data.len());
                    data.drain(start..end);
                }
            }
            if data == original {
                continue;
            }
            assert!(
                RaTlsCertificate::parse(&data).is_err(),
                "{name}: mutation {round} was accepted"
            );
        }
    }
}

#[test]
fn arbitrary_bytes_are_refused_without_panicking() {
    let mut rng = XorShift(42);
    for len in [0usize, 1, 2, 16, 200, 4096] {
        for _ in 0..50 {
            let data: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            assert!(RaTlsCertificate::parse(&data).is_err());
            assert!(default_verifier().verify_certificate(&data, NOW).is_err());
        }
    }
}
