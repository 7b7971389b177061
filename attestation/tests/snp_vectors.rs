//! SEV-SNP reports and VCEK chains from real hardware (../shared/vectors/snp, see its README):
//! expected verdicts, the README's byte flips and time edges, and our own negative cases.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]

use cocoon_attestation::snp::{Generation, SigningKey, SnpReport, SnpVerifier, TcbParts};
use cocoon_attestation::{Error, Subject, TrustRoot};
use proptest::prelude::*;
use std::sync::OnceLock;
use x509_cert_02::der::Decode;

fn vector(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../../shared/vectors/snp/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn verifier() -> &'static SnpVerifier {
    static V: OnceLock<SnpVerifier> = OnceLock::new();
    V.get_or_init(SnpVerifier::new)
}

/// report_milan.hex is hex text; the others are binary.
fn milan_report() -> Vec<u8> {
    let text = vector("report_milan.hex");
    let compact: Vec<u8> = text
        .into_iter()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    hex::decode(compact).unwrap()
}

// Times inside every certificate's validity window (README): 2023-11-14 for the Milan
// vectors, 2025-10-09 for the Genoa and Turin VCEKs.
const T_MILAN: i64 = 1_700_000_000;
const T_GENOA: i64 = 1_760_000_000;

/// (not_before, not_after) of a DER certificate, read with x509-cert.
fn validity(der: &[u8]) -> (i64, i64) {
    let cert = x509_cert_02::Certificate::from_der(der).unwrap();
    let v = cert.tbs_certificate.validity;
    (
        v.not_before.to_unix_duration().as_secs() as i64,
        v.not_after.to_unix_duration().as_secs() as i64,
    )
}

fn verify(report: &[u8], vcek: &[u8], chain: Option<&[u8]>, now: i64) -> Result<(), Error> {
    verifier()
        .verify_bytes(report, vcek, chain, now)
        .map(|_| ())
}

fn set_u32(bytes: &mut [u8], offset: usize, value: u32) {
    bytes[offset..offset + 4].copy_from_slice(&value.to_le_bytes());
}

// ------------------------------------------------------------------ valid vectors

#[test]
fn milan_v2_report_with_its_vcek_is_valid() {
    let v = verifier()
        .verify_bytes(&milan_report(), &vector("vcek_milan.der"), None, T_MILAN)
        .unwrap();
    assert_eq!(v.generation, Generation::Milan);
    assert_eq!(v.root, TrustRoot::Amd);
    assert_eq!(v.signing_key, SigningKey::Vcek);
    assert_eq!(v.report.version, 2);
    assert_eq!(v.report.policy.0, 0x30000);
    assert_eq!(v.report.vmpl, 0);
    // vcek_milan.der SPLs (openssl -text): bl 3, tee 0, snp 8, ucode 0x73.
    assert_eq!(
        v.reported_tcb,
        TcbParts {
            fmc: None,
            bootloader: 3,
            tee: 0,
            snp: 8,
            microcode: 0x73
        }
    );
}

#[test]
fn milan_report_parses_from_hex_text() {
    let text = vector("report_milan.hex");
    assert_eq!(
        SnpReport::parse_hex(&text).unwrap(),
        SnpReport::parse(&milan_report()).unwrap()
    );
}

#[test]
fn go_sev_guest_debug_report_is_authentic() {
    // Guest policy 0xB0000 has DEBUG (bit 19): authentic evidence; the policy rejects it later.
    let v = verifier()
        .verify_bytes(
            &vector("attestation.bin"),
            &vector("vcek.testcer"),
            None,
            T_MILAN,
        )
        .unwrap();
    assert!(v.report.policy.debug_allowed());
    assert_eq!(v.report.report_data[..6], [1, 2, 3, 4, 5, 0]);
    assert_eq!(v.generation, Generation::Milan);
}

#[test]
fn go_sev_guest_report_is_valid_with_its_kds_chain() {
    let chain = vector("milan.testcer");
    verify(
        &vector("attestation.bin"),
        &vector("vcek.testcer"),
        Some(&chain),
        T_MILAN,
    )
    .unwrap();
}

#[test]
fn go_sev_guest_report_is_valid_on_the_day_its_vcek_was_issued() {
    let vcek = vector("vcek.testcer");
    let (not_before, _) = validity(&vcek);
    verify(&vector("attestation.bin"), &vcek, None, not_before).unwrap();
}

#[test]
fn trustee_report_is_valid_and_current_tcb_is_above_reported() {
    let v = verifier()
        .verify_bytes(
            &vector("test-report.bin"),
            &vector("test-vcek.der"),
            None,
            T_MILAN,
        )
        .unwrap();
    assert_eq!(v.report.policy.0, 0x3001F);
    assert!(!v.report.policy.debug_allowed());
    assert!(v.report.policy.smt_allowed());
    assert_eq!(v.reported_tcb.microcode, 0x73);
    assert_eq!(v.current_tcb.microcode, 0xCE);
    assert_eq!(v.committed_tcb, v.reported_tcb);
}

#[test]
fn genoa_v3_report_is_valid_and_generation_comes_from_cpuid() {
    let v = verifier()
        .verify_bytes(
            &vector("DERIVED_e2e_snp_report.bin"),
            &vector("DERIVED_e2e_snp_vcek.der"),
            None,
            T_GENOA,
        )
        .unwrap();
    assert_eq!(v.report.version, 3);
    assert_eq!(
        (
            v.report.cpuid_fam_id,
            v.report.cpuid_mod_id,
            v.report.cpuid_step
        ),
        (Some(0x19), Some(0xA0), Some(0x02))
    );
    assert_eq!(v.report.cpuid_generation(), Some(Generation::Genoa));
    assert_eq!(v.generation, Generation::Genoa);
    // DERIVED_e2e_snp_vcek.der SPLs: bl 0x0A, tee 0, snp 0x17, ucode 0x19.
    assert_eq!(
        v.reported_tcb,
        TcbParts {
            fmc: None,
            bootloader: 0x0A,
            tee: 0,
            snp: 0x17,
            microcode: 0x19
        }
    );
}

#[test]
fn milan_report_is_valid_with_each_form_of_the_kds_chain() {
    for chain in [
        "cert_chain_milan",
        "ask_ark_milan.pem",
        "milan_ask_ark_asvk.pem",
        "milan.testcer",
    ] {
        verify(
            &milan_report(),
            &vector("vcek_milan.der"),
            Some(&vector(chain)),
            T_MILAN,
        )
        .unwrap_or_else(|e| panic!("{chain}: {e:?}"));
    }
}

#[test]
fn vcek_with_a_vlek_bundle_uses_the_embedded_ask_under_the_pinned_ark() {
    // milanvlek.testcer holds ASVK + ARK-Milan: the ARK pins the Milan set, whose own ASK
    // issued the VCEK.
    verify(
        &milan_report(),
        &vector("vcek_milan.der"),
        Some(&vector("milanvlek.testcer")),
        T_MILAN,
    )
    .unwrap();
}

#[test]
fn turin_vcek_chain_is_valid_with_fmc_spl_and_8_byte_hwid() {
    let chain = verifier()
        .verify_chain(&vector("vcek_turin.der"), None, T_GENOA)
        .unwrap();
    assert_eq!(chain.generation, Generation::Turin);
    assert_eq!(chain.key_type, SigningKey::Vcek);
    assert_eq!(chain.root, TrustRoot::Amd);
    assert_eq!(chain.hw_id.as_deref().map(<[u8]>::len), Some(8));
    assert_eq!(chain.certified_tcb.fmc, Some(0));
    assert_eq!(chain.certified_tcb.microcode, 9);
    for bundle in [
        "cert_chain_turin",
        "ask_ark_turin_vcek.pem",
        "turin_ask_ark_asvk.pem",
    ] {
        let via_pem = verifier()
            .verify_chain(&vector("vcek_turin.der"), Some(&vector(bundle)), T_GENOA)
            .unwrap_or_else(|e| panic!("{bundle}: {e:?}"));
        assert_eq!(via_pem, chain);
    }
}

#[test]
fn turin_tcb_layout_puts_fmc_first() {
    let tcb = cocoon_attestation::snp::TcbVersion {
        raw: u64::from_le_bytes([1, 2, 3, 4, 0, 0, 0, 9]),
    };
    assert_eq!(
        tcb.parts(Generation::Turin),
        TcbParts {
            fmc: Some(1),
            bootloader: 2,
            tee: 3,
            snp: 4,
            microcode: 9
        }
    );
    assert_eq!(
        tcb.parts(Generation::Milan),
        TcbParts {
            fmc: None,
            bootloader: 1,
            tee: 2,
            snp: 0,
            microcode: 9
        }
    );
}

// ------------------------------------------------------------------ README byte flips

#[test]
fn milan_report_with_byte_21_flipped_has_an_invalid_signature() {
    let mut r = milan_report();
    r[21] ^= 0x80;
    assert_eq!(
        verify(&r, &vector("vcek_milan.der"), None, T_MILAN),
        Err(Error::ReportSignatureInvalid)
    );
}

#[test]
fn milan_vcek_with_byte_40_flipped_fails_its_signature_by_the_ask() {
    // Byte 40 lies in the TBS signature algorithm (the SHA-384 OID): the TBS no longer
    // matches the ASK's signature.
    let mut vcek = vector("vcek_milan.der");
    vcek[40] ^= 0xFF;
    assert_eq!(
        verify(&milan_report(), &vcek, None, T_MILAN),
        Err(Error::CertificateSignatureInvalid {
            subject: Subject::Vcek,
            position: 0
        })
    );
}

#[test]
fn trustee_report_with_byte_42_incremented_has_an_invalid_signature() {
    let mut r = vector("test-report.bin");
    r[42] = r[42].wrapping_add(1);
    assert_eq!(
        verify(&r, &vector("test-vcek.der"), None, T_MILAN),
        Err(Error::ReportSignatureInvalid)
    );
}

#[test]
fn trustee_report_with_byte_384_incremented_mismatches_the_vcek_tcb() {
    // 0x180 = reported_tcb byte 0, the bootloader SPL (3 in the VCEK).
    let mut r = vector("test-report.bin");
    r[384] = r[384].wrapping_add(1);
    assert_eq!(
        verify(&r, &vector("test-vcek.der"), None, T_MILAN),
        Err(Error::TcbVersionMismatch {
            field: "bootloader",
            report: 4,
            certificate: 3
        })
    );
}

#[test]
fn reported_microcode_spl_mismatch_is_named() {
    let mut r = vector("test-report.bin");
    r[0x187] = 0x74;
    assert_eq!(
        verify(&r, &vector("test-vcek.der"), None, T_MILAN),
        Err(Error::TcbVersionMismatch {
            field: "microcode",
            report: 0x74,
            certificate: 0x73
        })
    );
}

#[test]
fn synthetic_legacy_vcek_with_raw_hwid_fails_its_signature_by_the_ask() {
    assert_eq!(
        verify(
            &vector("test-report.bin"),
            &vector("test-vcek-invalid-legacy.der"),
            None,
            T_MILAN
        ),
        Err(Error::CertificateSignatureInvalid {
            subject: Subject::Vcek,
            position: 0
        })
    );
}

#[test]
fn synthetic_new_vcek_with_wrapped_hwid_fails_its_signature_by_the_ask() {
    assert_eq!(
        verify(
            &vector("test-report.bin"),
            &vector("test-vcek-invalid-new.der"),
            None,
            T_MILAN
        ),
        Err(Error::CertificateSignatureInvalid {
            subject: Subject::Vcek,
            position: 0
        })
    );
}

// ------------------------------------------------------------------ time edges

#[test]
fn vcek_is_valid_exactly_at_not_before_and_not_a_second_earlier() {
    let vcek = vector("vcek_milan.der");
    let (not_before, _) = validity(&vcek);
    verify(&milan_report(), &vcek, None, not_before).unwrap();
    assert_eq!(
        verify(&milan_report(), &vcek, None, not_before - 1),
        Err(Error::CertificateNotYetValid {
            subject: Subject::Vcek,
            not_before,
            now: not_before - 1
        })
    );
}

#[test]
fn vcek_is_valid_exactly_at_not_after_and_expired_a_second_later() {
    let vcek = vector("vcek_milan.der");
    let (_, not_after) = validity(&vcek);
    verify(&milan_report(), &vcek, None, not_after).unwrap();
    assert_eq!(
        verify(&milan_report(), &vcek, None, not_after + 1),
        Err(Error::CertificateExpired {
            subject: Subject::Vcek,
            not_after,
            now: not_after + 1
        })
    );
}

#[test]
fn genoa_vcek_time_edges_are_inclusive() {
    let vcek = vector("DERIVED_e2e_snp_vcek.der");
    let report = vector("DERIVED_e2e_snp_report.bin");
    let (not_before, not_after) = validity(&vcek);
    verify(&report, &vcek, None, not_before).unwrap();
    verify(&report, &vcek, None, not_after).unwrap();
    assert!(matches!(
        verify(&report, &vcek, None, not_before - 1),
        Err(Error::CertificateNotYetValid {
            subject: Subject::Vcek,
            ..
        })
    ));
    assert!(matches!(
        verify(&report, &vcek, None, not_after + 1),
        Err(Error::CertificateExpired {
            subject: Subject::Vcek,
            ..
        })
    ));
}

// ------------------------------------------------------------------ chains and generations

#[test]
fn milan_vcek_with_the_genoa_ask_and_ark_is_a_generation_mismatch() {
    assert_eq!(
        verify(
            &milan_report(),
            &vector("vcek_milan.der"),
            Some(&vector("ask_ark_genoa.pem")),
            T_MILAN
        ),
        Err(Error::GenerationMismatch {
            expected: "Genoa".into(),
            actual: "Milan".into()
        })
    );
}

#[test]
fn genoa_v3_report_with_a_milan_vcek_is_a_generation_mismatch() {
    assert_eq!(
        verify(
            &vector("DERIVED_e2e_snp_report.bin"),
            &vector("vcek_milan.der"),
            None,
            T_MILAN
        ),
        Err(Error::GenerationMismatch {
            expected: "Milan".into(),
            actual: "Genoa".into()
        })
    );
}

#[test]
fn v3_report_with_an_unknown_cpu_model_is_rejected() {
    let mut r = vector("DERIVED_e2e_snp_report.bin");
    r[0x189] = 0x70; // family 0x19 model 0x70: no SEV-SNP EPYC
    assert!(matches!(
        verify(&r, &vector("DERIVED_e2e_snp_vcek.der"), None, T_GENOA),
        Err(Error::UnknownProcessorGeneration { .. })
    ));
}

#[test]
fn v3_report_claiming_milan_cpuid_with_a_genoa_vcek_is_a_generation_mismatch() {
    let mut r = vector("DERIVED_e2e_snp_report.bin");
    r[0x189] = 0x01; // Milan model
    assert_eq!(
        verify(&r, &vector("DERIVED_e2e_snp_vcek.der"), None, T_GENOA),
        Err(Error::GenerationMismatch {
            expected: "Genoa".into(),
            actual: "Milan".into()
        })
    );
}

#[test]
fn v3_report_claiming_turin_cpuid_with_a_genoa_vcek_is_a_generation_mismatch() {
    let mut r = vector("DERIVED_e2e_snp_report.bin");
    r[0x188] = 0x1A; // family 0x1A
    r[0x189] = 0x02; // model 0x02: Turin
    assert_eq!(
        verify(&r, &vector("DERIVED_e2e_snp_vcek.der"), None, T_GENOA),
        Err(Error::GenerationMismatch {
            expected: "Genoa".into(),
            actual: "Turin".into()
        })
    );
}

#[test]
fn v2_milan_report_with_a_genoa_vcek_fails_on_the_certified_tcb() {
    // v2 carries no CPUID: the Genoa chain decides the generation, and the report's TCB is
    // not the one the Genoa VCEK certifies (bootloader 3 vs 0x0A).
    assert_eq!(
        verify(
            &milan_report(),
            &vector("DERIVED_e2e_snp_vcek.der"),
            None,
            T_GENOA
        ),
        Err(Error::TcbVersionMismatch {
            field: "bootloader",
            report: 3,
            certificate: 0x0A
        })
    );
}

#[test]
fn genoa_ask_under_the_milan_ark_is_a_generation_mismatch_for_a_genoa_vcek() {
    // The ARK (Milan) pins the set; the Genoa VCEK then does not belong to it.
    let bundle = [
        vector("builtin/genoa_ask.pem"),
        vector("builtin/milan_ark.pem"),
    ]
    .concat();
    assert_eq!(
        verify(
            &vector("DERIVED_e2e_snp_report.bin"),
            &vector("DERIVED_e2e_snp_vcek.der"),
            Some(&bundle),
            T_GENOA
        ),
        Err(Error::GenerationMismatch {
            expected: "Milan".into(),
            actual: "Genoa".into()
        })
    );
}

#[test]
fn milan_ask_under_the_genoa_ark_fails_the_name_chain() {
    // No generation named by the leaf differs (it is Milan, the bundle's ARK Genoa):
    // the product name check fires first.
    let bundle = [
        vector("builtin/milan_ask.pem"),
        vector("builtin/genoa_ark.pem"),
    ]
    .concat();
    assert_eq!(
        verify(
            &milan_report(),
            &vector("vcek_milan.der"),
            Some(&bundle),
            T_MILAN
        ),
        Err(Error::GenerationMismatch {
            expected: "Genoa".into(),
            actual: "Milan".into()
        })
    );
}

#[test]
fn chain_whose_ark_is_not_an_amd_root_is_untrusted() {
    // A self-signed root that is not AMD's (Intel's SGX root) in place of the ARK.
    let intel_root = std::fs::read(format!(
        "{}/../../shared/vectors/tdx/TrustedRootCA.der",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let pem = format!(
        "{}-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        String::from_utf8(vector("builtin/milan_ask.pem")).unwrap(),
        base64_lines(&intel_root)
    );
    assert_eq!(
        verify(
            &milan_report(),
            &vector("vcek_milan.der"),
            Some(pem.as_bytes()),
            T_MILAN
        ),
        Err(Error::UntrustedRoot {
            subject: Subject::Ark
        })
    );
}

fn base64_lines(der: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in der.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out.as_bytes()
        .chunks(64)
        .map(|l| std::str::from_utf8(l).unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn chain_without_a_self_signed_ark_is_invalid() {
    assert!(matches!(
        verify(
            &milan_report(),
            &vector("vcek_milan.der"),
            Some(&vector("builtin/milan_ask.pem")),
            T_MILAN
        ),
        Err(Error::CertificateChainInvalid {
            subject: Subject::Ark,
            ..
        })
    ));
}

#[test]
fn chain_pem_with_text_outside_certificate_blocks_is_malformed() {
    let mut pem = b"garbage\n".to_vec();
    pem.extend(vector("cert_chain_milan"));
    assert!(matches!(
        verify(
            &milan_report(),
            &vector("vcek_milan.der"),
            Some(&pem),
            T_MILAN
        ),
        Err(Error::Malformed {
            subject: Subject::Certificate,
            ..
        })
    ));
}

#[test]
fn empty_chain_pem_is_malformed() {
    assert!(matches!(
        verify(
            &milan_report(),
            &vector("vcek_milan.der"),
            Some(b"\n"),
            T_MILAN
        ),
        Err(Error::Malformed {
            subject: Subject::Certificate,
            ..
        })
    ));
}

#[test]
fn chain_pem_with_four_certificates_is_malformed() {
    let mut pem = vector("milan_ask_ark_asvk.pem");
    pem.extend(vector("builtin/milan_ask.pem"));
    assert!(matches!(
        verify(
            &milan_report(),
            &vector("vcek_milan.der"),
            Some(&pem),
            T_MILAN
        ),
        Err(Error::Malformed {
            subject: Subject::Certificate,
            ..
        })
    ));
}

/// cert_chain_milan with one base64 character of the ASK block changed at `pos`.
fn tamper_milan_chain_ask(pos: impl Fn(&[u8]) -> usize) -> Vec<u8> {
    let mut pem = vector("cert_chain_milan");
    let i = pos(&pem);
    pem[i] = if pem[i] == b'A' { b'B' } else { b'A' };
    pem
}

#[test]
fn chain_pem_with_a_tampered_ask_issuer_name_breaks_the_name_chain() {
    // Character 200 of the ASK's base64 lies in its issuer name.
    let pem = tamper_milan_chain_ask(|pem| pem.iter().position(|&b| b == b'\n').unwrap() + 200);
    assert!(matches!(
        verify(
            &milan_report(),
            &vector("vcek_milan.der"),
            Some(&pem),
            T_MILAN
        ),
        Err(Error::CertificateChainInvalid {
            subject: Subject::Ask,
            ..
        })
    ));
}

#[test]
fn chain_pem_with_a_tampered_ask_signature_fails_under_the_ark() {
    // 100 characters before the ASK's END line: inside its RSA signature.
    let pem = tamper_milan_chain_ask(|pem| {
        let end = pem.windows(8).position(|w| w == b"-----END").unwrap();
        end - 100
    });
    assert_eq!(
        verify(
            &milan_report(),
            &vector("vcek_milan.der"),
            Some(&pem),
            T_MILAN
        ),
        Err(Error::CertificateSignatureInvalid {
            subject: Subject::Ask,
            position: 1
        })
    );
}

#[test]
fn an_ask_given_as_the_vcek_is_not_a_leaf() {
    // The ASK is issued by the ARK, which is no ASK/ASVK subject: no chain to a root.
    let ask = cocoon_attestation_test_der(&vector("builtin/milan_ask.pem"));
    assert_eq!(
        verify(&milan_report(), &ask, None, T_MILAN),
        Err(Error::UntrustedRoot {
            subject: Subject::Vcek
        })
    );
}

fn cocoon_attestation_test_der(pem: &[u8]) -> Vec<u8> {
    use x509_cert_02::der::{DecodePem, Encode};
    x509_cert_02::Certificate::from_pem(pem)
        .unwrap()
        .to_der()
        .unwrap()
}

#[test]
fn vcek_given_as_pem_is_accepted_like_der() {
    let der = vector("vcek_milan.der");
    let pem = format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        base64_lines(&der)
    );
    verify(&milan_report(), pem.as_bytes(), None, T_MILAN).unwrap();
    let two = format!("{pem}{pem}");
    assert!(matches!(
        verify(&milan_report(), two.as_bytes(), None, T_MILAN),
        Err(Error::Malformed {
            subject: Subject::Certificate,
            ..
        })
    ));
}

#[test]
fn vcek_that_is_not_der_is_malformed() {
    assert!(matches!(
        verify(&milan_report(), b"not a certificate", None, T_MILAN),
        Err(Error::CertificateMalformed {
            subject: Subject::Vcek,
            ..
        })
    ));
    let mut vcek = vector("vcek_milan.der");
    vcek.push(0);
    assert!(matches!(
        verify(&milan_report(), &vcek, None, T_MILAN),
        Err(Error::CertificateMalformed {
            subject: Subject::Vcek,
            ..
        })
    ));
}

/// vcek_milan.der with its productName extension ("Milan-B0") replaced.
fn vcek_with_product_name(name: &[u8; 8]) -> Vec<u8> {
    let mut vcek = vector("vcek_milan.der");
    let at = vcek.windows(8).position(|w| w == b"Milan-B0").unwrap();
    vcek[at..at + 8].copy_from_slice(name);
    vcek
}

#[test]
fn vcek_naming_an_unknown_product_is_an_unknown_generation() {
    assert!(matches!(
        verify(
            &milan_report(),
            &vcek_with_product_name(b"Venus-B0"),
            None,
            T_MILAN
        ),
        Err(Error::UnknownProcessorGeneration { .. })
    ));
}

#[test]
fn vcek_naming_genoa_under_the_milan_ask_is_a_generation_mismatch() {
    assert_eq!(
        verify(
            &milan_report(),
            &vcek_with_product_name(b"Genoa-B0"),
            None,
            T_MILAN
        ),
        Err(Error::GenerationMismatch {
            expected: "Milan".into(),
            actual: "Genoa".into()
        })
    );
}

#[test]
fn oversized_vcek_is_refused_before_parsing() {
    assert!(matches!(
        verify(&milan_report(), &vec![0x30; 64 * 1024], None, T_MILAN),
        Err(Error::InputTooLarge {
            subject: Subject::Vcek,
            ..
        })
    ));
}

#[test]
fn vcek_chain_verifies_alone_and_reports_the_certified_tcb() {
    let chain = verifier()
        .verify_chain(&vector("vcek_milan.der"), None, T_MILAN)
        .unwrap();
    assert_eq!(chain.generation, Generation::Milan);
    assert_eq!(chain.key_type, SigningKey::Vcek);
    let report = SnpReport::parse(&milan_report()).unwrap();
    assert_eq!(chain.hw_id.as_deref(), Some(&report.chip_id[..]));
    assert_eq!(
        chain.certified_tcb,
        report.reported_tcb.parts(Generation::Milan)
    );
    let (not_before, not_after) = validity(&vector("vcek_milan.der"));
    assert_eq!((chain.not_before, chain.not_after), (not_before, not_after));
}

#[test]
fn vcek_of_another_chip_is_a_chip_id_mismatch() {
    // test-vcek.der is a real Milan VCEK of another chip with the same TCB (bl 3, tee 0,
    // snp 8, ucode 0x73) as report_milan: the chain holds, the hwID does not.
    assert_eq!(
        verify(&milan_report(), &vector("test-vcek.der"), None, T_MILAN),
        Err(Error::ChipIdMismatch)
    );
}

#[test]
fn report_with_a_changed_chip_id_is_a_chip_id_mismatch() {
    let mut r = milan_report();
    r[0x1A0 + 63] ^= 1;
    assert_eq!(
        verify(&r, &vector("vcek_milan.der"), None, T_MILAN),
        Err(Error::ChipIdMismatch)
    );
}

#[test]
fn masked_chip_id_skips_the_hwid_comparison_but_not_the_signature() {
    // MASK_CHIP_ID zeroes CHIP_ID: nothing to compare, the signature still decides.
    let mut r = milan_report();
    r[0x1A0..0x1E0].fill(0);
    assert_eq!(
        verify(&r, &vector("vcek_milan.der"), None, T_MILAN),
        Err(Error::ReportSignatureInvalid)
    );
}

#[test]
fn report_with_mask_chip_key_is_unsigned_and_rejected() {
    // MASK_CHIP_KEY = 1: the firmware writes zeros instead of a signature.
    let mut r = milan_report();
    r[0x48] |= 0b10;
    assert!(matches!(
        verify(&r, &vector("vcek_milan.der"), None, T_MILAN),
        Err(Error::SigningKeyMismatch { reason }) if reason.contains("MASK_CHIP_KEY")
    ));
}

#[test]
fn report_claiming_a_vlek_signature_with_a_vcek_is_a_signing_key_mismatch() {
    let mut r = milan_report();
    r[0x48] |= 1 << 2; // SIGNING_KEY = 1 (VLEK)
    assert!(matches!(
        verify(&r, &vector("vcek_milan.der"), None, T_MILAN),
        Err(Error::SigningKeyMismatch { .. })
    ));
}

#[test]
fn unsigned_report_is_a_signing_key_mismatch() {
    let mut r = milan_report();
    r[0x48] |= 7 << 2; // SIGNING_KEY = 7 (NONE)
    assert!(matches!(
        verify(&r, &vector("vcek_milan.der"), None, T_MILAN),
        Err(Error::SigningKeyMismatch { .. })
    ));
}

#[test]
fn committed_tcb_above_current_is_an_ordering_violation() {
    let mut r = vector("test-report.bin");
    r[0x1E0 + 7] = 0xFF; // committed microcode 0xFF > current 0xCE
    assert!(matches!(
        verify(&r, &vector("test-vcek.der"), None, T_MILAN),
        Err(Error::TcbOrderingViolated { reason }) if reason.contains("committed")
    ));
}

#[test]
fn launch_tcb_above_current_is_an_ordering_violation() {
    let mut r = vector("test-report.bin");
    r[0x1F0 + 6] = 9; // launch SNP SPL 9 > current 8
    assert!(matches!(
        verify(&r, &vector("test-vcek.der"), None, T_MILAN),
        Err(Error::TcbOrderingViolated { reason }) if reason.contains("launch")
    ));
}

#[test]
fn real_reports_satisfy_the_tcb_ordering_rules() {
    for name in [
        "attestation.bin",
        "test-report.bin",
        "DERIVED_e2e_snp_report.bin",
    ] {
        let r = SnpReport::parse(&vector(name)).unwrap();
        for tcb in [r.committed_tcb, r.launch_tcb, r.reported_tcb] {
            let g = r.cpuid_generation().unwrap_or(Generation::Milan);
            assert_eq!(
                tcb.parts(g).first_component_above(&r.current_tcb.parts(g)),
                None,
                "{name}"
            );
        }
    }
}

// ------------------------------------------------------------------ signature encoding

#[test]
fn zero_r_is_a_malformed_signature() {
    let mut r = milan_report();
    r[0x2A0..0x2A0 + 72].fill(0);
    assert_eq!(
        verify(&r, &vector("vcek_milan.der"), None, T_MILAN),
        Err(Error::SignatureMalformed {
            subject: Subject::SnpReport
        })
    );
}

#[test]
fn s_equal_to_the_group_order_is_a_malformed_signature() {
    let n = hex::decode(
        "ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973",
    )
    .unwrap();
    let mut r = milan_report();
    for (i, b) in n.iter().rev().enumerate() {
        r[0x2E8 + i] = *b;
    }
    assert_eq!(
        verify(&r, &vector("vcek_milan.der"), None, T_MILAN),
        Err(Error::SignatureMalformed {
            subject: Subject::SnpReport
        })
    );
}

#[test]
fn s_above_the_group_order_is_a_malformed_signature() {
    let mut r = milan_report();
    r[0x2E8..0x2E8 + 48].fill(0xFF);
    assert_eq!(
        verify(&r, &vector("vcek_milan.der"), None, T_MILAN),
        Err(Error::SignatureMalformed {
            subject: Subject::SnpReport
        })
    );
}

#[test]
fn non_zero_bytes_above_the_48_byte_scalars_are_rejected() {
    for offset in [0x2A0 + 48, 0x2A0 + 71, 0x2E8 + 48, 0x2E8 + 71] {
        let mut r = milan_report();
        r[offset] = 1;
        assert_eq!(
            SnpReport::parse(&r),
            Err(Error::SignatureMalformed {
                subject: Subject::SnpReport
            }),
            "offset {offset:#x}"
        );
    }
}

#[test]
fn non_zero_signature_reserved_tail_is_rejected() {
    for offset in [0x330, 0x400, 0x49F] {
        let mut r = milan_report();
        r[offset] = 1;
        assert!(
            matches!(
                SnpReport::parse(&r),
                Err(Error::ReservedFieldNonZero {
                    subject: Subject::SnpReport,
                    ..
                })
            ),
            "offset {offset:#x}"
        );
    }
}

// ------------------------------------------------------------------ parser

#[test]
fn report_truncated_at_every_length_is_rejected() {
    let r = milan_report();
    for len in 0..r.len() {
        assert_eq!(
            SnpReport::parse(&r[..len]),
            Err(Error::Truncated {
                subject: Subject::SnpReport,
                needed: 0x4A0,
                available: len
            })
        );
    }
}

#[test]
fn report_with_trailing_bytes_is_rejected_even_zeros() {
    for extra in [vec![0u8], vec![0u8; 70], vec![0xFF]] {
        let mut r = milan_report();
        r.extend(&extra);
        assert_eq!(
            SnpReport::parse(&r),
            Err(Error::TrailingBytes {
                subject: Subject::SnpReport,
                count: extra.len()
            })
        );
    }
}

#[test]
fn report_versions_other_than_2_to_5_are_rejected() {
    for version in [0, 1, 6, 0x100, u32::MAX] {
        let mut r = milan_report();
        set_u32(&mut r, 0, version);
        assert_eq!(
            SnpReport::parse(&r),
            Err(Error::UnsupportedReportVersion(version))
        );
    }
}

#[test]
fn signature_algorithms_other_than_ecdsa_p384_are_rejected() {
    for algo in [0, 2, 0x100] {
        let mut r = milan_report();
        set_u32(&mut r, 0x34, algo);
        assert_eq!(
            SnpReport::parse(&r),
            Err(Error::UnsupportedSignatureAlgorithm(algo))
        );
    }
}

#[test]
fn version_4_has_the_version_3_layout() {
    let mut r = vector("DERIVED_e2e_snp_report.bin");
    set_u32(&mut r, 0, 4);
    let p = SnpReport::parse(&r).unwrap();
    assert_eq!(p.cpuid_fam_id, Some(0x19));
    assert_eq!(p.launch_mit_vector, None);
    // The version is signed: changing it breaks the signature.
    assert_eq!(
        verify(&r, &vector("DERIVED_e2e_snp_vcek.der"), None, T_GENOA),
        Err(Error::ReportSignatureInvalid)
    );
}

#[test]
fn version_5_reads_the_mitigation_vectors_that_version_3_must_leave_zero() {
    let mut r = vector("DERIVED_e2e_snp_report.bin");
    r[0x1F8] = 0x11;
    r[0x200 + 7] = 0x22;
    assert!(matches!(
        SnpReport::parse(&r),
        Err(Error::ReservedFieldNonZero { .. })
    ));
    set_u32(&mut r, 0, 5);
    let p = SnpReport::parse(&r).unwrap();
    assert_eq!(p.launch_mit_vector, Some(0x11));
    assert_eq!(p.current_mit_vector, Some(0x22 << 56));
    r[0x208] = 1;
    assert!(matches!(
        SnpReport::parse(&r),
        Err(Error::ReservedFieldNonZero { .. })
    ));
}

#[test]
fn v2_report_has_no_cpuid_fields_and_rejects_bytes_there() {
    let r = milan_report();
    let p = SnpReport::parse(&r).unwrap();
    assert_eq!(
        (p.cpuid_fam_id, p.cpuid_mod_id, p.cpuid_step),
        (None, None, None)
    );
    let mut r2 = r.clone();
    r2[0x188] = 0x19;
    assert!(matches!(
        SnpReport::parse(&r2),
        Err(Error::ReservedFieldNonZero { .. })
    ));
}

#[test]
fn each_reserved_field_of_the_report_must_be_zero() {
    // (report, offset) inside each reserved region of table 23.
    let cases: &[(&str, usize)] = &[
        ("v2", 0x4C),
        ("v2", 0x4F),
        ("v2", 0x18B),
        ("v2", 0x19F),
        ("v3", 0x18B),
        ("v3", 0x19F),
        ("v2", 0x1EB),
        ("v2", 0x1EF),
        ("v2", 0x1F8),
        ("v2", 0x29F),
        ("v3", 0x208),
    ];
    for &(which, offset) in cases {
        let mut r = if which == "v2" {
            milan_report()
        } else {
            vector("DERIVED_e2e_snp_report.bin")
        };
        r[offset] = 0x01;
        assert!(
            matches!(
                SnpReport::parse(&r),
                Err(Error::ReservedFieldNonZero {
                    subject: Subject::SnpReport,
                    ..
                })
            ),
            "{which} {offset:#x}"
        );
    }
}

#[test]
fn reserved_flag_bits_and_signing_key_values_are_rejected() {
    let mut r = milan_report();
    r[0x48] |= 1 << 5;
    assert!(matches!(
        SnpReport::parse(&r),
        Err(Error::ReservedFieldNonZero { .. })
    ));
    for key in 2u8..=6 {
        let mut r = milan_report();
        r[0x48] |= key << 2;
        assert!(
            matches!(
                SnpReport::parse(&r),
                Err(Error::ReservedFieldNonZero { .. })
            ),
            "SIGNING_KEY {key}"
        );
    }
}

#[test]
fn parsed_fields_sit_at_their_table_23_offsets() {
    let r = vector("test-report.bin");
    let p = SnpReport::parse(&r).unwrap();
    assert_eq!(p.guest_svn, 4);
    assert_eq!(p.family_id[0], 1);
    assert_eq!(p.image_id[0], 2);
    assert_eq!(p.report_data[..], r[0x50..0x90]);
    assert_eq!(p.measurement[..], r[0x90..0xC0]);
    assert_eq!(p.host_data[..], r[0xC0..0xE0]);
    assert_eq!(p.id_key_digest[..], r[0xE0..0x110]);
    assert_eq!(p.author_key_digest[..], r[0x110..0x140]);
    assert_eq!(p.report_id[..], r[0x140..0x160]);
    assert_eq!(p.report_id_ma, [0xFF; 32]);
    assert_eq!(p.chip_id[..], r[0x1A0..0x1E0]);
    assert_eq!(
        (p.current_major, p.current_minor, p.current_build),
        (1, 0x34, 4)
    );
    assert_eq!(
        (p.committed_major, p.committed_minor, p.committed_build),
        (1, 0x34, 4)
    );
    assert_eq!(p.platform_info, 1);
    assert_eq!(p.signed_bytes[..], r[..0x2A0]);
    assert_eq!(p.signature_r[..], r[0x2A0..0x2E8]);
    assert_eq!(p.signature_s[..], r[0x2E8..0x330]);
}

#[test]
fn report_whose_fields_disagree_with_its_signed_bytes_is_rejected() {
    let mut p = SnpReport::parse(&milan_report()).unwrap();
    p.measurement = [0xAA; 48];
    assert!(matches!(
        verifier().verify(&p, &vector("vcek_milan.der"), None, T_MILAN),
        Err(Error::Malformed {
            subject: Subject::SnpReport,
            ..
        })
    ));
}

#[test]
fn hex_input_that_is_not_hex_is_malformed() {
    assert!(matches!(
        SnpReport::parse_hex(b"zz"),
        Err(Error::Malformed { .. })
    ));
    assert!(matches!(
        SnpReport::parse_hex(&vec![b'0'; 0x4A0 * 4 + 1]),
        Err(Error::InputTooLarge { .. })
    ));
}

// ------------------------------------------------------------------ property: byte flips

fn flip_targets() -> impl Strategy<Value = (usize, u8)> {
    // Every byte the signature covers, and the r/s fields themselves.
    (0usize..0x330, 1u8..=255)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn flipping_any_signed_or_signature_byte_of_a_real_report_is_rejected((offset, mask) in flip_targets()) {
        let mut r = milan_report();
        r[offset] ^= mask;
        let result = verify(&r, &vector("vcek_milan.der"), None, T_MILAN);
        prop_assert!(result.is_err(), "flip {offset:#x} ^ {mask:#x} accepted");
    }

    #[test]
    fn parser_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..0x4B0)) {
        let _ = SnpReport::parse(&bytes);
        let _ = SnpReport::parse_hex(&bytes);
    }
}

#[test]
fn parser_never_panics_on_mutated_real_reports() {
    // Exhaustive single-byte corruption of the parser's input (no signature work).
    let base = vector("DERIVED_e2e_snp_report.bin");
    for offset in 0..base.len() {
        for value in [0x00, 0x01, 0x80, 0xFF] {
            let mut r = base.clone();
            r[offset] = value;
            let _ = SnpReport::parse(&r);
        }
    }
}
