#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]

use sha2::Digest;

use super::*;
use crate::error::Subject;
use crate::test_vectors;

/// Inside every H100 vector certificate's validity (2026-01-01).
const NOW: i64 = 1_767_225_600;
const NONCE: &str = "931d8dd0add203ac3d8b4fbde75e115278eefcdceac5b87671a748f32364dfcb";

fn report() -> Vec<u8> {
    let text = test_vectors::read("gpu/hopperAttestationReport.txt");
    hex::decode(String::from_utf8(text).unwrap().trim()).unwrap()
}

fn chain(case: u8) -> Vec<Vec<u8>> {
    parse_pem_chain(&test_vectors::read(&format!(
        "gpu/hopper_cert_chain_case{case}.txt"
    )))
    .unwrap()
}

fn nonce() -> [u8; 32] {
    hex::decode(NONCE).unwrap().try_into().unwrap()
}

fn anchors() -> GpuTrustAnchors {
    GpuTrustAnchors::nvidia().unwrap()
}

fn verify_report(report: &[u8]) -> Result<VerifiedGpu> {
    verify(report, &chain(1), &anchors(), Some(&nonce()), NOW)
}

fn find(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap()
}

#[test]
fn embedded_nvidia_root_is_the_nvtrust_file() {
    assert_eq!(
        hex::encode(sha2::Sha256::digest(NVIDIA_DEVICE_ROOT_PEM)),
        "6e6e91e84068cb7de2c715ca73d6df168a16b23d96a895b42e553b297a471bfc"
    );
    assert_eq!(
        NVIDIA_DEVICE_ROOT_PEM,
        test_vectors::read("gpu/nvidia_device_root.pem").as_slice()
    );
}

#[test]
fn h100_vector_parses_to_its_fields() {
    let report = report();
    assert_eq!(report.len(), 4117);
    let ev = GpuEvidence::parse(&report).unwrap();
    assert_eq!(ev.request.nonce, nonce());
    assert_eq!(ev.request.param1, 0x01);
    assert_eq!(ev.request.param2, 0xff);
    assert_eq!(ev.blocks.len(), 64);
    assert!(ev.blocks.iter().all(|b| b.value.len() == 48));
    assert_eq!(ev.opaque_bytes(3), Some(&b"550.90.07\0"[..]));
}

#[test]
fn h100_vector_verifies_and_claims_equal_the_golden_file() {
    let mut verified = verify_report(&report()).unwrap();
    assert_eq!(verified.arch, GpuArch::Hopper);
    assert_eq!(verified.driver_version, "550.90.07");
    assert_eq!(verified.vbios_version, "96.00.9f.00.01");
    assert_eq!(verified.nonce, nonce());
    assert!(!verified.simulated);
    assert_eq!(verified.measurements.len(), 64);
    assert_eq!(verified.leaf_common_name, "GH100 A01 GSP FMC LF");

    // The report carries no UUID: the golden claims take it from trustee's evidence envelope.
    verified.uuid = Some("1111-2222-33333-444444-555555".into());
    let golden: serde_json::Value = serde_json::from_slice(&test_vectors::read(
        "gpu/hopperAttestationReport-claims.txt",
    ))
    .unwrap();
    assert_eq!(verified.claims_json(), golden);
}

#[test]
fn h100_vector_verifies_without_an_expected_nonce() {
    let verified = verify(&report(), &chain(1), &anchors(), None, NOW).unwrap();
    assert_eq!(verified.nonce, nonce());
}

#[test]
fn chain_of_only_the_root_is_rejected() {
    let err = verify(&report(), &chain(2), &anchors(), None, NOW).unwrap_err();
    assert!(matches!(err, Error::GpuChainInvalid { .. }), "{err:?}");
}

#[test]
fn chain_missing_an_intermediate_is_rejected() {
    let err = verify(&report(), &chain(3), &anchors(), None, NOW).unwrap_err();
    assert!(matches!(err, Error::GpuChainInvalid { .. }), "{err:?}");
}

#[test]
fn chain_missing_the_leaf_has_no_fwid() {
    let err = verify(&report(), &chain(4), &anchors(), None, NOW).unwrap_err();
    assert!(matches!(err, Error::GpuFwidMissing { .. }), "{err:?}");
}

#[test]
fn chain_without_its_root_still_ends_at_the_anchor() {
    let mut c = chain(1);
    c.pop();
    assert!(verify(&report(), &c, &anchors(), Some(&nonce()), NOW).is_ok());
}

#[test]
fn tampered_intermediate_signature_is_rejected() {
    let mut c = chain(1);
    let last = c[2].len() - 1;
    c[2][last] ^= 0x01; // the last byte of the signature's s
    let err = verify(&report(), &c, &anchors(), None, NOW).unwrap_err();
    assert!(
        matches!(err, Error::GpuChainSignatureInvalid { position: 2 }),
        "{err:?}"
    );
}

#[test]
fn flipped_request_byte_breaks_the_signature() {
    let mut r = report();
    r[10] ^= 0x01; // inside the requester nonce
    let err = verify(&r, &chain(1), &anchors(), None, NOW).unwrap_err();
    assert!(matches!(err, Error::GpuSignatureInvalid), "{err:?}");
}

#[test]
fn flipped_measurement_byte_breaks_the_signature() {
    let mut r = report();
    r[REQUEST_LEN + 8 + 7 + 5] ^= 0x01; // block 1's value
    let err = verify_report(&r).unwrap_err();
    assert!(matches!(err, Error::GpuSignatureInvalid), "{err:?}");
}

#[test]
fn flipped_opaque_byte_breaks_the_signature() {
    let mut r = report();
    let at = find(&r, b"550.90.07");
    r[at + 2] = b'1';
    let err = verify_report(&r).unwrap_err();
    assert!(matches!(err, Error::GpuSignatureInvalid), "{err:?}");
}

#[test]
fn flipped_signature_byte_is_rejected() {
    let mut r = report();
    let last = r.len() - 1;
    r[last] ^= 0x01;
    let err = verify_report(&r).unwrap_err();
    assert!(matches!(err, Error::GpuSignatureInvalid), "{err:?}");
}

#[test]
fn changed_report_fwid_mismatches_the_certificate() {
    let mut r = report();
    let fwid = hex::decode("f5c384aebb579217a2c66b17ed0f28e6").unwrap();
    let at = find(&r, &fwid);
    r[at] ^= 0x01;
    let err = verify_report(&r).unwrap_err();
    assert!(matches!(err, Error::GpuFwidMismatch { .. }), "{err:?}");
}

#[test]
fn wrong_expected_nonce_is_rejected() {
    let err = verify(&report(), &chain(1), &anchors(), Some(&[0u8; 32]), NOW).unwrap_err();
    assert!(matches!(err, Error::GpuNonceMismatch { .. }), "{err:?}");
}

#[test]
fn time_after_the_certificates_is_expired() {
    // 10000-01-01T00:00:00Z: after the chain's notAfter 9999-12-31T23:59:59Z.
    let err = verify(&report(), &chain(1), &anchors(), None, 253_402_300_800).unwrap_err();
    assert!(
        matches!(err, Error::GpuCertificateExpired { .. }),
        "{err:?}"
    );
}

#[test]
fn time_before_the_leaf_is_not_yet_valid() {
    // 2020-09-13: before the leaf's notBefore 2020-10-17.
    let err = verify(&report(), &chain(1), &anchors(), None, 1_600_000_000).unwrap_err();
    assert!(
        matches!(err, Error::GpuCertificateNotYetValid { position: 0, .. }),
        "{err:?}"
    );
}

#[test]
fn truncated_report_is_rejected() {
    let r = report();
    for len in [0, 1, 36, 37, 44, 1000, r.len() - 97, r.len() - 1] {
        let err = GpuEvidence::parse(&r[..len]).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Truncated {
                    subject: Subject::GpuEvidence,
                    ..
                }
            ),
            "{len}: {err:?}"
        );
    }
}

#[test]
fn trailing_byte_is_rejected() {
    let mut r = report();
    r.push(0);
    let err = GpuEvidence::parse(&r).unwrap_err();
    assert!(
        matches!(
            err,
            Error::TrailingBytes {
                subject: Subject::GpuEvidence,
                count: 1
            }
        ),
        "{err:?}"
    );
}

#[test]
fn oversized_report_is_rejected() {
    let err = GpuEvidence::parse(&vec![0u8; MAX_REPORT_LEN + 1]).unwrap_err();
    assert!(matches!(err, Error::InputTooLarge { .. }), "{err:?}");
}

#[test]
fn wrong_codes_and_versions_are_rejected() {
    for (offset, value, field) in [
        (0, 0x10, "request SPDM version"),
        (1, 0xE1, "request code"),
        (REQUEST_LEN, 0x12, "response SPDM version"),
        (REQUEST_LEN + 1, 0x61, "response code"),
        (REQUEST_LEN + 8 + 1, 0x02, "measurement specification"),
    ] {
        let mut r = report();
        r[offset] = value;
        let err = GpuEvidence::parse(&r).unwrap_err();
        assert!(
            matches!(err, Error::GpuUnexpectedValue { field: f, .. } if f == field),
            "{field}: {err:?}"
        );
    }
}

#[test]
fn request_without_signature_bit_is_rejected() {
    let mut r = report();
    r[2] = 0x00;
    let err = GpuEvidence::parse(&r).unwrap_err();
    assert!(matches!(err, Error::GpuUnexpectedValue { .. }), "{err:?}");
}

#[test]
fn duplicate_block_index_is_rejected() {
    let mut r = report();
    r[REQUEST_LEN + 8 + 55] = 1; // block 2's index := 1
    let err = GpuEvidence::parse(&r).unwrap_err();
    assert!(
        matches!(err, Error::GpuDuplicateEntry { id: 1, .. }),
        "{err:?}"
    );
}

#[test]
fn duplicate_opaque_type_is_rejected() {
    let mut r = report();
    let at = find(&r, b"550.90.07");
    // The driver version TLV header (type 3) sits 4 bytes before its data: make it type 6.
    r[at - 4] = 6;
    let err = GpuEvidence::parse(&r).unwrap_err();
    assert!(
        matches!(err, Error::GpuDuplicateEntry { id: 6, .. }),
        "{err:?}"
    );
}

#[test]
fn block_value_size_mismatch_is_rejected() {
    let mut r = report();
    r[REQUEST_LEN + 8 + 5] = 47; // block 1's DMTF value size 48 -> 47
    let err = GpuEvidence::parse(&r).unwrap_err();
    assert!(
        matches!(err, Error::LengthOutOfRange { length: 47, .. }),
        "{err:?}"
    );
}

#[test]
fn record_length_mismatch_is_rejected() {
    let mut r = report();
    r[REQUEST_LEN + 4] = 63; // 63 blocks in a 64-block record
    let err = GpuEvidence::parse(&r).unwrap_err();
    assert!(
        matches!(
            err,
            Error::LengthOutOfRange {
                subject: Subject::GpuEvidence,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn default_anchors_refuse_the_simulated_chain() {
    let sim_chain = vec![
        include_bytes!("../sim/keys/gpu-leaf.cert.der").to_vec(),
        include_bytes!("../sim/keys/gpu-ica.cert.der").to_vec(),
        include_bytes!("../sim/keys/gpu-root.cert.der").to_vec(),
    ];
    let err = verify(&report(), &sim_chain, &anchors(), None, NOW).unwrap_err();
    assert!(matches!(err, Error::GpuRootUntrusted { .. }), "{err:?}");
}

#[test]
fn pem_chain_parses_in_order_and_rejects_garbage() {
    let c = chain(1);
    assert_eq!(c.len(), 5);
    assert_eq!(
        c[0],
        parse_pem_chain(&test_vectors::read("gpu/hopper_signing_cert.pem")).unwrap()[0]
    );
    let err = parse_pem_chain(b"not a certificate").unwrap_err();
    assert!(matches!(err, Error::GpuChainInvalid { .. }), "{err:?}");
}

#[test]
fn vbios_version_formats_like_nvtrust() {
    assert_eq!(
        parse::format_vbios(&[0x00, 0x9f, 0x00, 0x96, 0x01, 0, 0, 0]).unwrap(),
        "96.00.9f.00.01"
    );
    assert_eq!(parse::format_vbios(&[]), None);
}

#[test]
fn every_truncation_and_flip_of_the_vector_fails_without_panicking() {
    let r = report();
    for len in (0..r.len()).step_by(7) {
        let err = GpuEvidence::parse(&r[..len]).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Truncated { .. } | Error::LengthOutOfRange { .. }
            ),
            "{len}: {err:?}"
        );
    }
    for i in (0..r.len()).step_by(13) {
        let mut m = r.clone();
        m[i] ^= 0x80;
        let err = verify_report(&m).unwrap_err();
        assert!(
            matches!(
                err,
                Error::GpuSignatureInvalid
                    | Error::GpuUnexpectedValue { .. }
                    | Error::GpuDuplicateEntry { .. }
                    | Error::GpuFwidMismatch { .. }
                    | Error::GpuFwidMissing { .. }
                    | Error::GpuNonceMismatch { .. }
                    | Error::GpuEvidenceMalformed { .. }
                    | Error::Truncated { .. }
                    | Error::TrailingBytes { .. }
                    | Error::LengthOutOfRange { .. }
            ),
            "flip at {i}: {err:?}"
        );
    }
}
