use super::*;
use x509_parser::prelude::FromDer;

/// 2026-01-01T00:00:00Z (the simulator's `SIM_NOW`), repeated so that default builds have it.
const NOW: i64 = 1_767_225_600;

/// An Ed25519 key from a fixed seed (PKCS#8 v1), so certificates are reproducible.
fn key(seed: u8) -> rcgen::KeyPair {
    let mut pkcs8 = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    pkcs8.extend_from_slice(&[seed; 32]);
    rcgen::KeyPair::try_from(pkcs8.as_slice()).unwrap()
}

fn issue(key: &rcgen::KeyPair, quote: &[u8]) -> Vec<u8> {
    issue_cocoon_certificate(key, quote, NOW, NOW + COCOON_CERT_VALIDITY_SECS).unwrap()
}

/// Parameters of a well-formed certificate, for tests that then break one thing.
fn params(key: &rcgen::KeyPair, quote: &[u8]) -> rcgen::CertificateParams {
    cocoon_params(
        key.public_key_raw(),
        quote,
        NOW,
        NOW + COCOON_CERT_VALIDITY_SECS,
    )
    .unwrap()
}

fn ext(arcs: &[u64], critical: bool, content: &[u8]) -> rcgen::CustomExtension {
    let mut e = rcgen::CustomExtension::from_oid_content(arcs, content.to_vec());
    e.set_criticality(critical);
    e
}

fn real_quote() -> Vec<u8> {
    crate::test_vectors::read("tdx/tdx_quote")
}

#[test]
fn issued_certificate_has_cocoons_layout_and_parses() {
    let key = key(7);
    let quote = b"not a real quote, parse does not look inside".to_vec();
    let der = issue(&key, &quote);
    assert!(is_cocoon_certificate(&der));

    let cert = CocoonCertificate::parse(&der).unwrap();
    assert_eq!(cert.quote, quote);
    assert_eq!(cert.public_key.as_slice(), key.public_key_raw());
    assert_eq!(cert.user_claims, key.public_key_raw());
    assert_eq!(cert.not_before, NOW);
    assert_eq!(cert.not_after, NOW + 86_400);
    assert_eq!(cert.serial.len(), 16);
    assert_eq!(
        cert.subject,
        "C=AE, ST=DUBAI, O=TDLib Development, OU=Security, CN=localhost"
    );
    assert_eq!(
        cert.spki_sha256,
        <[u8; 32]>::from(Sha256::digest(key.public_key_der()))
    );

    // COCOON's extension order and criticality.
    let (_, x509) = X509Certificate::from_der(&der).unwrap();
    let exts: Vec<(String, bool)> = x509
        .extensions()
        .iter()
        .map(|e| (e.oid.to_id_string(), e.critical))
        .collect();
    let expected = [
        (COCOON_QUOTE_OID, true),
        (COCOON_USER_CLAIMS_OID, true),
        ("2.5.29.19", true),
        ("2.5.29.15", true),
        ("2.5.29.37", true),
        ("2.5.29.14", false),
        ("2.5.29.17", false),
    ];
    assert_eq!(
        exts,
        expected
            .iter()
            .map(|(o, c)| (o.to_string(), *c))
            .collect::<Vec<_>>()
    );
    // The standard extensions decode to what COCOON's OpenSSL calls write.
    for e in x509.extensions() {
        match e.parsed_extension() {
            ParsedExtension::BasicConstraints(bc) => assert!(!bc.ca),
            ParsedExtension::KeyUsage(ku) => assert_eq!(ku.flags, 1),
            ParsedExtension::ExtendedKeyUsage(eku) => {
                assert!(eku.server_auth && eku.client_auth && eku.other.is_empty())
            }
            ParsedExtension::SubjectKeyIdentifier(ski) => assert_eq!(
                ski.0,
                ring::digest::digest(
                    &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
                    key.public_key_raw()
                )
                .as_ref()
            ),
            ParsedExtension::SubjectAlternativeName(san) => {
                let names: Vec<String> = san.general_names.iter().map(|n| n.to_string()).collect();
                assert_eq!(names.len(), 3, "{names:?}");
                assert!(names[0].contains("localhost"));
                assert!(names[1].contains("127.0.0.1"));
            }
            ParsedExtension::UnsupportedExtension { .. } => {}
            other => panic!("unexpected extension {other:?}"),
        }
    }
}

#[test]
fn issuing_is_deterministic_and_the_serial_follows_the_content() {
    let key = key(7);
    assert_eq!(issue(&key, b"q1"), issue(&key, b"q1"));
    let a = CocoonCertificate::parse(&issue(&key, b"q1")).unwrap();
    let b = CocoonCertificate::parse(&issue(&key, b"q2")).unwrap();
    assert_ne!(a.serial, b.serial);
}

#[test]
fn binding_holds_when_report_data_is_sha512_of_the_key() {
    let key = key(3);
    let cert = CocoonCertificate::parse(&issue(&key, b"quote")).unwrap();
    let report_data = cocoon_report_data(key.public_key_raw());
    assert_eq!(cert.expected_report_data(), report_data);
    cert.check_binding(&report_data).unwrap();
}

#[test]
fn real_quote_transplanted_into_a_cocoon_certificate_is_authentic_but_not_bound() {
    let quote_bytes = real_quote();
    let cert = CocoonCertificate::parse(&issue(&key(9), &quote_bytes)).unwrap();
    assert_eq!(cert.quote, quote_bytes);

    let collateral = crate::tdx::Collateral::from_json(&crate::test_vectors::read(
        "tdx/tdx_quote_collateral.json",
    ))
    .unwrap();
    let quote = crate::tdx::Quote::parse(&cert.quote).unwrap();
    let verified = crate::tdx::TdxVerifier::new()
        .verify(&quote, &collateral, 1_752_919_234)
        .unwrap();
    let err = cert
        .check_binding(verified.quote.report_data())
        .unwrap_err();
    assert!(
        matches!(err, Error::CocoonReportDataMismatch { ref expected, ref actual }
            if *expected == hex::encode(cocoon_report_data(&cert.public_key))
            && *actual == hex::encode(verified.quote.report_data())),
        "{err:?}"
    );
    // COCOON's image hash is defined for the verified TD.
    assert!(CocoonCertificate::image_hash(&verified.quote).is_some());
}

#[test]
fn user_claims_that_are_not_the_key_are_refused() {
    let key = key(4);
    let other = [0xee; 32];
    let mut p = params(&key, b"quote");
    p.custom_extensions[1] = ext(&CLAIMS_OID_ARCS, true, &other);
    let cert = CocoonCertificate::parse(&sign(p, &key).unwrap()).unwrap();
    assert_eq!(cert.user_claims, other);
    // The quote vouches for the claims, but the claims are not the certificate's key.
    let err = cert.check_binding(&cocoon_report_data(&other)).unwrap_err();
    assert!(matches!(err, Error::CocoonClaimsMismatch { .. }), "{err:?}");
    // And a quote bound to the key does not vouch for these claims.
    let err = cert
        .check_binding(&cocoon_report_data(key.public_key_raw()))
        .unwrap_err();
    assert!(
        matches!(err, Error::CocoonReportDataMismatch { .. }),
        "{err:?}"
    );
}

#[test]
fn certificate_without_quote_extension_is_refused() {
    let key = key(5);
    let mut p = params(&key, b"quote");
    p.custom_extensions.remove(0);
    let der = sign(p, &key).unwrap();
    assert!(!is_cocoon_certificate(&der));
    let err = CocoonCertificate::parse(&der).unwrap_err();
    assert!(
        matches!(err, Error::CocoonExtensionMissing { oid } if oid == COCOON_QUOTE_OID),
        "{err:?}"
    );
}

#[test]
fn certificate_without_user_claims_extension_is_refused() {
    let key = key(5);
    let mut p = params(&key, b"quote");
    p.custom_extensions.remove(1);
    let err = CocoonCertificate::parse(&sign(p, &key).unwrap()).unwrap_err();
    assert!(
        matches!(err, Error::CocoonExtensionMissing { oid } if oid == COCOON_USER_CLAIMS_OID),
        "{err:?}"
    );
}

#[test]
fn duplicated_quote_extension_is_refused() {
    let key = key(6);
    let mut p = params(&key, b"quote one");
    p.custom_extensions
        .insert(1, ext(&QUOTE_OID_ARCS, true, b"quote two"));
    let err = CocoonCertificate::parse(&sign(p, &key).unwrap()).unwrap_err();
    assert!(
        matches!(err, Error::CocoonDuplicateExtension { ref oid } if oid == COCOON_QUOTE_OID),
        "{err:?}"
    );
}

#[test]
fn duplicated_standard_extension_is_refused() {
    let key = key(6);
    let mut p = params(&key, b"quote");
    p.custom_extensions
        .push(ext(&[2, 5, 29, 19], true, &[0x30, 0x00]));
    let err = CocoonCertificate::parse(&sign(p, &key).unwrap()).unwrap_err();
    assert!(
        matches!(err, Error::CocoonDuplicateExtension { ref oid } if oid == "2.5.29.19"),
        "{err:?}"
    );
}

#[test]
fn unknown_critical_extension_is_refused() {
    let key = key(8);
    let mut p = params(&key, b"quote");
    // COCOON's SEV-SNP report extension is unknown to the TDX path.
    p.custom_extensions
        .push(ext(&[1, 3, 6, 1, 4, 1, 12345, 101], true, b"report"));
    let err = CocoonCertificate::parse(&sign(p, &key).unwrap()).unwrap_err();
    assert!(
        matches!(err, Error::CocoonUnknownCriticalExtension { ref oid } if oid == "1.3.6.1.4.1.12345.101"),
        "{err:?}"
    );
}

#[test]
fn unknown_non_critical_extension_is_ignored() {
    let key = key(8);
    let mut p = params(&key, b"quote");
    p.custom_extensions
        .push(ext(&[1, 3, 6, 1, 4, 1, 12345, 99], false, b"whatever"));
    let cert = CocoonCertificate::parse(&sign(p, &key).unwrap()).unwrap();
    assert_eq!(cert.quote, b"quote");
}

#[test]
fn non_critical_quote_extension_is_refused() {
    let key = key(8);
    let mut p = params(&key, b"quote");
    p.custom_extensions[0] = ext(&QUOTE_OID_ARCS, false, b"quote");
    let err = CocoonCertificate::parse(&sign(p, &key).unwrap()).unwrap_err();
    assert!(
        matches!(err, Error::CertificateMalformed { subject: Subject::Certificate, ref reason }
            if reason.contains("not marked critical")),
        "{err:?}"
    );
}

#[test]
fn ca_certificate_is_refused() {
    let key = key(8);
    let mut p = params(&key, b"quote");
    // basicConstraints cA = TRUE.
    p.custom_extensions[2] = ext(&[2, 5, 29, 19], true, &[0x30, 0x03, 0x01, 0x01, 0xff]);
    let err = CocoonCertificate::parse(&sign(p, &key).unwrap()).unwrap_err();
    assert!(
        matches!(err, Error::CertificateMalformed { ref reason, .. } if reason.contains("CA")),
        "{err:?}"
    );
}

#[test]
fn non_ed25519_key_is_refused() {
    let p256 = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let p = cocoon_params(&[0x11; 32], b"quote", NOW, NOW + 86_400).unwrap();
    let err = CocoonCertificate::parse(&sign(p, &p256).unwrap()).unwrap_err();
    assert!(
        matches!(err, Error::CocoonUnsupportedKey { ref algorithm } if algorithm == "1.2.840.10045.2.1"),
        "{err:?}"
    );
    // Nor does the issuer accept one.
    let err = issue_cocoon_certificate(&p256, b"quote", NOW, NOW + 86_400).unwrap_err();
    assert!(matches!(err, Error::CocoonUnsupportedKey { .. }), "{err:?}");
}

#[test]
fn oversized_quote_extension_is_refused() {
    let key = key(2);
    let big = vec![0x5a; MAX_COCOON_QUOTE_SIZE + 1];
    let der = sign(params(&key, &big), &key).unwrap();
    let err = CocoonCertificate::parse(&der).unwrap_err();
    assert!(
        matches!(
            err,
            Error::InputTooLarge { subject: Subject::Quote, size, limit: MAX_COCOON_QUOTE_SIZE }
                if size == MAX_COCOON_QUOTE_SIZE + 1
        ),
        "{err:?}"
    );
    let err = issue_cocoon_certificate(&key, &big, NOW, NOW + 1).unwrap_err();
    assert!(
        matches!(
            err,
            Error::InputTooLarge {
                subject: Subject::Quote,
                ..
            }
        ),
        "{err:?}"
    );
    // Exactly at the cap is fine.
    let at_cap = vec![0x5a; MAX_COCOON_QUOTE_SIZE];
    assert_eq!(
        CocoonCertificate::parse(&issue(&key, &at_cap))
            .unwrap()
            .quote
            .len(),
        MAX_COCOON_QUOTE_SIZE
    );
}

#[test]
fn oversized_user_claims_extension_is_refused() {
    let key = key(2);
    let mut p = params(&key, b"quote");
    p.custom_extensions[1] = ext(&CLAIMS_OID_ARCS, true, &vec![1; MAX_COCOON_CLAIMS_SIZE + 1]);
    let err = CocoonCertificate::parse(&sign(p, &key).unwrap()).unwrap_err();
    assert!(
        matches!(
            err,
            Error::InputTooLarge {
                subject: Subject::Claims,
                limit: MAX_COCOON_CLAIMS_SIZE,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn oversized_certificate_is_refused_before_parsing() {
    let err = CocoonCertificate::parse(&vec![0x30; MAX_COCOON_CERT_SIZE + 1]).unwrap_err();
    assert!(
        matches!(
            err,
            Error::InputTooLarge {
                subject: Subject::Certificate,
                limit: MAX_COCOON_CERT_SIZE,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(!is_cocoon_certificate(&vec![
        0x30;
        MAX_COCOON_CERT_SIZE + 1
    ]));
}

#[test]
fn tampered_signature_is_refused() {
    let mut der = issue(&key(1), b"quote");
    let last = der.len() - 1;
    der[last] ^= 0x01;
    let err = CocoonCertificate::parse(&der).unwrap_err();
    assert!(
        matches!(
            err,
            Error::CertificateSignatureInvalid {
                subject: Subject::Certificate,
                position: 0
            }
        ),
        "{err:?}"
    );
}

#[test]
fn tampered_quote_breaks_the_signature() {
    let quote = b"QUOTE-BYTES-0123456789".to_vec();
    let mut der = issue(&key(1), &quote);
    let at = der
        .windows(quote.len())
        .position(|w| w == quote.as_slice())
        .unwrap();
    der[at] ^= 0x20;
    let err = CocoonCertificate::parse(&der).unwrap_err();
    assert!(
        matches!(err, Error::CertificateSignatureInvalid { .. }),
        "{err:?}"
    );
}

#[test]
fn certificate_signed_by_another_key_is_refused() {
    // Certificate for key 1's public key, signed by key 2 (rcgen puts the signer's key in the
    // SPKI for self-signed certificates, so splice key 1's key into key 2's certificate).
    let der1 = issue(&key(1), b"quote");
    let der2 = issue(&key(2), b"quote");
    let pk1 = key(1).public_key_raw().to_vec();
    let pk2 = key(2).public_key_raw().to_vec();
    let mut forged = der2.clone();
    let at = forged
        .windows(32)
        .position(|w| w == pk2.as_slice())
        .unwrap();
    forged[at..at + 32].copy_from_slice(&pk1);
    assert_ne!(forged, der1);
    let err = CocoonCertificate::parse(&forged).unwrap_err();
    assert!(
        matches!(err, Error::CertificateSignatureInvalid { .. }),
        "{err:?}"
    );
}

#[test]
fn trailing_bytes_after_the_certificate_are_refused() {
    let mut der = issue(&key(1), b"quote");
    der.extend_from_slice(&[0, 0]);
    let err = CocoonCertificate::parse(&der).unwrap_err();
    assert!(
        matches!(
            err,
            Error::TrailingBytes {
                subject: Subject::Certificate,
                count: 2
            }
        ),
        "{err:?}"
    );
}

#[test]
fn garbage_is_refused_as_malformed() {
    let err = CocoonCertificate::parse(b"not DER at all").unwrap_err();
    assert!(
        matches!(
            err,
            Error::CertificateMalformed {
                subject: Subject::Certificate,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(!is_cocoon_certificate(b"not DER at all"));
}

#[test]
fn truncated_certificate_is_refused_at_every_length() {
    let der = issue(&key(1), b"quote");
    for len in [0, 1, 2, 10, der.len() / 2, der.len() - 1] {
        let err = CocoonCertificate::parse(&der[..len]).unwrap_err();
        assert!(
            matches!(err, Error::CertificateMalformed { .. }),
            "{len}: {err:?}"
        );
    }
}

#[test]
fn time_window_is_inclusive_at_both_ends() {
    let cert = CocoonCertificate::parse(&issue(&key(1), b"quote")).unwrap();
    cert.check_time(NOW).unwrap();
    cert.check_time(NOW + 86_400).unwrap();
    assert!(matches!(
        cert.check_time(NOW - 1).unwrap_err(),
        Error::CertificateNotYetValid {
            not_before: NOW,
            ..
        }
    ));
    assert!(matches!(
        cert.check_time(NOW + 86_401).unwrap_err(),
        Error::CertificateExpired { .. }
    ));
}

#[test]
fn issuing_refuses_an_empty_validity() {
    let err = issue_cocoon_certificate(&key(1), b"quote", NOW, NOW).unwrap_err();
    assert!(matches!(err, Error::CertificateMalformed { .. }), "{err:?}");
}

#[test]
fn image_hash_is_sha256_of_cocoons_tl_layout_without_report_data() {
    // The measurements of COCOON's own image-hash test (MRTD 0x12.., MRCONFIGID 0x34..,
    // MROWNER 0xAA.., MROWNERCONFIG 0xBB.., RTMRi = 'a'+i), in the real quote's body.
    let mut quote = crate::tdx::Quote::parse(&real_quote()).unwrap();
    let crate::tdx::QuoteBody::Td10(td) = &mut quote.body else {
        panic!("tdx_quote is a TD 1.0 quote");
    };
    td.mr_td = [0x12; 48];
    td.mr_config_id = [0x34; 48];
    td.mr_owner = [0xaa; 48];
    td.mr_owner_config = [0xbb; 48];
    td.rt_mr = [[b'a'; 48], [b'b'; 48], [b'c'; 48], [b'd'; 48]];
    td.report_data = [0xff; 64];

    let data = cocoon_image_data(&quote).unwrap();
    assert_eq!(data.len(), COCOON_IMAGE_DATA_LEN);
    assert_eq!(&data[..48], &[0x12; 48]);
    assert_eq!(&data[48..96], &[0x34; 48]);
    assert_eq!(&data[96..144], &[0xaa; 48]);
    assert_eq!(&data[144..192], &[0xbb; 48]);
    assert_eq!(&data[192..240], &[b'a'; 48]);
    assert_eq!(&data[336..384], &[b'd'; 48]);
    assert_eq!(&data[384..], &[0; 64]);
    // Computed independently: python3 -c "import hashlib; print(hashlib.sha256(
    //   b'\x12'*48+b'\x34'*48+b'\xaa'*48+b'\xbb'*48+b'a'*48+b'b'*48+b'c'*48+b'd'*48+b'\0'*64).hexdigest())"
    assert_eq!(
        hex::encode(CocoonCertificate::image_hash(&quote).unwrap()),
        IMAGE_HASH_OF_COCOON_TEST_DATA
    );

    // REPORT_DATA does not enter the hash; a measurement does.
    let before = CocoonCertificate::image_hash(&quote).unwrap();
    if let crate::tdx::QuoteBody::Td10(td) = &mut quote.body {
        td.report_data = [0; 64];
    }
    assert_eq!(CocoonCertificate::image_hash(&quote).unwrap(), before);
    if let crate::tdx::QuoteBody::Td10(td) = &mut quote.body {
        td.mr_td = [0x99; 48];
    }
    assert_ne!(CocoonCertificate::image_hash(&quote).unwrap(), before);
}

const IMAGE_HASH_OF_COCOON_TEST_DATA: &str =
    "36caf4e8958afa865b8ccc68f1c6f40bc7bddb11150bf437f6fed58b1ca26000";

#[test]
fn image_hash_is_none_for_sgx_quotes() {
    let quote = crate::tdx::Quote::parse(&crate::test_vectors::read("tdx/sgx_quote")).unwrap();
    assert_eq!(CocoonCertificate::image_hash(&quote), None);
}

/// The committed fixture parses in every build.
#[test]
fn committed_sim_fixture_parses_and_binds() {
    let der = std::fs::read(fixture_path()).unwrap();
    let cert = CocoonCertificate::parse(&der).unwrap();
    assert_eq!(
        cert.public_key.as_slice(),
        key(FIXTURE_SEED).public_key_raw()
    );
    let quote = crate::tdx::Quote::parse(&cert.quote).unwrap();
    cert.check_binding(quote.report_data()).unwrap();
    cert.check_time(NOW).unwrap();
}

const FIXTURE_SEED: u8 = 0x42;

fn fixture_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/ratls/cocoon_sim_cert.der")
}

#[cfg(feature = "sim")]
mod sim {
    use super::*;
    use crate::policy::Policy;
    use crate::sim::tdx::{SimTdReport, SimTdx};
    use crate::sim::SIM_NOW;
    use crate::tdx::{Quote, TdxVerifier};

    /// A COCOON certificate for `key` whose simulated quote binds its key.
    pub(super) fn sim_cert(key: &rcgen::KeyPair) -> Vec<u8> {
        let sim = SimTdx::new().unwrap();
        let report_data = cocoon_report_data(key.public_key_raw());
        let quote = sim
            .issue_quote(&SimTdReport::default().report_data(report_data))
            .unwrap();
        issue_cocoon_certificate(key, &quote, SIM_NOW, SIM_NOW + COCOON_CERT_VALIDITY_SECS).unwrap()
    }

    #[test]
    fn simulated_quote_bound_to_the_key_verifies_binds_and_passes_a_sim_policy() {
        assert_eq!(SIM_NOW, NOW);
        let key = key(FIXTURE_SEED);
        let cert = CocoonCertificate::parse(&sim_cert(&key)).unwrap();

        let sim = SimTdx::new().unwrap();
        let verifier = TdxVerifier::with_roots(vec![sim.root_anchor()]);
        let verified = verifier
            .verify(
                &Quote::parse(&cert.quote).unwrap(),
                &sim.collateral().unwrap(),
                SIM_NOW,
            )
            .unwrap();
        cert.check_binding(verified.quote.report_data()).unwrap();
        cert.check_time(SIM_NOW).unwrap();
        assert!(Policy::simulated().evaluate_tdx(&verified).accepted());
        assert!(!Policy::default().evaluate_tdx(&verified).accepted());
        assert!(CocoonCertificate::image_hash(&verified.quote).is_some());
    }

    #[test]
    fn simulated_quote_bound_to_another_key_does_not_bind() {
        let cert_for_1 = CocoonCertificate::parse(&sim_cert(&key(1))).unwrap();
        let quote = Quote::parse(&cert_for_1.quote).unwrap();
        // Key 2's certificate carrying key 1's (authentic) quote.
        let cert_for_2 = CocoonCertificate::parse(&issue(&key(2), &cert_for_1.quote)).unwrap();
        cert_for_1.check_binding(quote.report_data()).unwrap();
        let err = cert_for_2.check_binding(quote.report_data()).unwrap_err();
        assert!(
            matches!(err, Error::CocoonReportDataMismatch { .. }),
            "{err:?}"
        );
    }

    /// The committed fixture is exactly what the code issues today (guards determinism).
    #[test]
    fn committed_sim_fixture_is_reproducible() {
        let der = std::fs::read(fixture_path()).unwrap();
        assert_eq!(der, sim_cert(&key(FIXTURE_SEED)));
    }

    /// Rewrites `tests/data/ratls/cocoon_sim_cert.der`:
    /// `cargo test -p cocoon-attestation --features sim -- --ignored regenerate_cocoon_sim_fixture`.
    #[test]
    #[ignore = "writes the committed fixture"]
    fn regenerate_cocoon_sim_fixture() {
        std::fs::write(fixture_path(), sim_cert(&key(FIXTURE_SEED))).unwrap();
    }
}

/// A certificate made by the OpenSSL command line the way COCOON's generator makes it (same
/// extensions, order, criticality, subject, 128-bit random serial, one day), carrying the sim
/// fixture's quote and key: our parser reads what OpenSSL writes, not only what rcgen writes.
#[test]
fn openssl_made_certificate_in_cocoons_format_parses_and_binds() {
    let der = std::fs::read(fixture_path().with_file_name("cocoon_openssl_cert.der")).unwrap();
    assert!(is_cocoon_certificate(&der));
    let cert = CocoonCertificate::parse(&der).unwrap();
    let ours = CocoonCertificate::parse(&std::fs::read(fixture_path()).unwrap()).unwrap();
    assert_eq!(cert.public_key, ours.public_key);
    assert_eq!(cert.user_claims, ours.user_claims);
    assert_eq!(cert.quote, ours.quote);
    assert_eq!(cert.subject, ours.subject);
    assert_eq!(cert.not_after - cert.not_before, COCOON_CERT_VALIDITY_SECS);
    let quote = crate::tdx::Quote::parse(&cert.quote).unwrap();
    cert.check_binding(quote.report_data()).unwrap();
    cert.check_time(cert.not_before).unwrap();
}

/// Our certificate and OpenSSL's encode the same name the same way (PrintableString country,
/// UTF8String for the rest).
#[test]
fn subject_is_encoded_as_openssl_encodes_it() {
    let ours = issue(&key(FIXTURE_SEED), b"quote");
    let theirs = std::fs::read(fixture_path().with_file_name("cocoon_openssl_cert.der")).unwrap();
    let (_, a) = X509Certificate::from_der(&ours).unwrap();
    let (_, b) = X509Certificate::from_der(&theirs).unwrap();
    assert_eq!(a.subject().as_raw(), b.subject().as_raw());
}
