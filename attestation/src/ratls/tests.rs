//! Unit tests of the extension encodings and the OID substitution.

use super::format::*;
use super::*;
use crate::error::Error;

#[test]
fn placeholder_oids_have_the_encoded_length_of_the_real_ones() {
    for sub in 1..=4u8 {
        assert_eq!(
            placeholder_oid(sub).len(),
            real_oid(sub).len(),
            "sub-arc {sub}"
        );
        assert_ne!(placeholder_oid(sub), real_oid(sub));
    }
}

#[test]
fn real_oid_is_the_documented_uuid_arc() {
    // 2.25.<UUID as integer>: the integer is the UUID's 128 bits.
    let uuid = u128::from_str_radix(&OID_ARC_UUID.replace('-', ""), 16).unwrap();
    assert_eq!(OID_ARC, format!("2.25.{uuid}"));
    assert_eq!(EVIDENCE_OID, format!("{OID_ARC}.1"));
    assert_eq!(
        hex::encode(real_oid(1)),
        "69839b94f6ffa68182afa99db79da4abc7fcb90e01"
    );
}

#[test]
fn oid_encoding_matches_known_encodings() {
    // 1.2.840.10045.2.1 (id-ecPublicKey).
    assert_eq!(
        encode_oid(&[1, 2, 840, 10045, 2, 1]),
        vec![0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01]
    );
}

#[test]
fn evidence_extension_round_trips() {
    let ev = CarriedEvidence {
        format: EvidenceFormat::SnpReport,
        evidence: vec![7; 300],
        certificates: vec![],
    };
    let (format, bytes) = decode_evidence(&encode_evidence(&ev)).unwrap();
    assert_eq!(format, EvidenceFormat::SnpReport);
    assert_eq!(bytes, ev.evidence);
}

#[test]
fn claims_and_platform_certificates_round_trip() {
    assert_eq!(decode_claims(&encode_claims(b"abc")).unwrap(), b"abc");
    let certs = vec![vec![1u8; 200], vec![2u8; 1500]];
    assert_eq!(
        decode_platform_certificates(&encode_platform_certificates(&certs)).unwrap(),
        certs
    );
}

#[test]
fn extension_version_two_is_unsupported() {
    let mut v = encode_claims(b"abc");
    // SEQUENCE, len, INTEGER, 1, <version>
    v[4] = 2;
    assert!(matches!(
        decode_claims(&v),
        Err(Error::UnsupportedRaTlsVersion { version: 2, .. })
    ));
}

#[test]
fn trailing_bytes_in_an_extension_are_malformed() {
    let mut v = encode_claims(b"abc");
    v.push(0);
    assert!(matches!(
        decode_claims(&v),
        Err(Error::RaTlsExtensionMalformed {
            extension: "claims",
            ..
        })
    ));
}

#[test]
fn non_minimal_length_is_malformed() {
    // OCTET STRING with length 3 written in long form (0x81 0x03).
    let inner = [0x02, 0x01, 0x01, 0x04, 0x81, 0x03, b'a', b'b', b'c'];
    let mut v = vec![0x30, inner.len() as u8];
    v.extend_from_slice(&inner);
    assert!(matches!(
        decode_claims(&v),
        Err(Error::RaTlsExtensionMalformed { .. })
    ));
}

#[test]
fn unknown_evidence_format_is_malformed() {
    let mut v = encode_evidence(&CarriedEvidence {
        format: EvidenceFormat::TdxQuote,
        evidence: vec![1, 2, 3],
        certificates: vec![],
    });
    // SEQUENCE len INTEGER 1 1 ENUMERATED 1 <format>
    v[7] = 9;
    assert!(matches!(
        decode_evidence(&v),
        Err(Error::RaTlsExtensionMalformed {
            extension: "evidence",
            ..
        })
    ));
}

#[test]
fn oversized_extension_value_is_refused_before_decoding() {
    let v = encode_evidence(&CarriedEvidence {
        format: EvidenceFormat::TdxQuote,
        evidence: vec![0; MAX_EVIDENCE_EXTENSION_SIZE],
        certificates: vec![],
    });
    assert!(matches!(
        decode_evidence(&v),
        Err(Error::RaTlsExtensionTooLarge {
            extension: "evidence",
            ..
        })
    ));
}

#[test]
fn five_platform_certificates_are_too_many() {
    let certs = vec![vec![1u8; 10]; 5];
    assert!(matches!(
        decode_platform_certificates(&encode_platform_certificates(&certs)),
        Err(Error::RaTlsExtensionMalformed { .. })
    ));
}

#[test]
fn fresh_attestation_json_round_trips() {
    let fresh = FreshAttestation {
        evidence: CarriedEvidence {
            format: EvidenceFormat::SnpReport,
            evidence: vec![1, 2, 3],
            certificates: vec![vec![4, 5]],
        },
        claims: vec![6, 7],
        gpus: Vec::new(),
    };
    assert_eq!(
        FreshAttestation::from_json(&fresh.to_json()).unwrap(),
        fresh
    );
}

#[test]
fn fresh_attestation_json_with_unknown_field_is_malformed() {
    let text = r#"{"version":1,"format":"tdx-quote","evidence":"AQ==","claims":"AQ==","x":1}"#;
    assert!(matches!(
        FreshAttestation::from_json(text),
        Err(Error::Malformed { .. })
    ));
}

#[test]
fn oversized_fresh_attestation_json_is_refused() {
    let text = " ".repeat(MAX_FRESH_ATTESTATION_JSON + 1);
    assert!(matches!(
        FreshAttestation::from_json(&text),
        Err(Error::InputTooLarge { .. })
    ));
}

#[test]
fn oid_strings_decode_wide_arcs() {
    assert_eq!(oid_string(&real_oid(2)), CLAIMS_OID);
    assert_eq!(
        oid_string(&encode_oid(&[1, 3, 6, 1, 4, 1, 12345, 1])),
        "1.3.6.1.4.1.12345.1"
    );
    assert!(oid_string(&[0x81]).starts_with("oid:"));
}

fn gpu(n: u8) -> CarriedGpuEvidence {
    CarriedGpuEvidence {
        report: vec![n; 4000],
        certificates: vec![vec![n; 900], vec![n.wrapping_add(1); 800]],
    }
}

#[test]
fn gpu_evidence_extension_round_trips() {
    let gpus = vec![gpu(1), gpu(2)];
    assert_eq!(
        decode_gpu_evidence(&encode_gpu_evidence(&gpus)).unwrap(),
        gpus
    );
    assert_eq!(GPU_EVIDENCE_OID, format!("{OID_ARC}.4"));
}

#[test]
fn gpu_evidence_extension_limits_and_defects_are_malformed() {
    let name = |r: crate::Result<Vec<CarriedGpuEvidence>>| match r {
        Err(Error::RaTlsExtensionMalformed { extension, reason }) => {
            assert_eq!(extension, "gpu-evidence");
            reason
        }
        Err(Error::RaTlsExtensionTooLarge { extension, .. }) => {
            assert_eq!(extension, "gpu-evidence");
            "too large".into()
        }
        Err(other) => panic!("expected a gpu-evidence error, got {other:?}"),
        Ok(gpus) => panic!("expected a gpu-evidence error, got {} GPUs", gpus.len()),
    };
    assert!(name(decode_gpu_evidence(&encode_gpu_evidence(&[]))).contains("no GPU report"));
    let no_chain = CarriedGpuEvidence {
        report: vec![1; 10],
        certificates: vec![],
    };
    assert!(name(decode_gpu_evidence(&encode_gpu_evidence(&[no_chain]))).contains("chain"));
    let empty_report = CarriedGpuEvidence {
        report: vec![],
        certificates: vec![vec![1]],
    };
    assert!(name(decode_gpu_evidence(&encode_gpu_evidence(&[empty_report]))).contains("empty"));
    let small = |n: u8| CarriedGpuEvidence {
        report: vec![n; 10],
        certificates: vec![vec![n; 10]],
    };
    let nine: Vec<_> = (0..9).map(small).collect();
    assert!(name(decode_gpu_evidence(&encode_gpu_evidence(&nine))).contains("more than 8"));
    let many_certs = CarriedGpuEvidence {
        report: vec![1; 10],
        certificates: vec![vec![1; 10]; 9],
    };
    assert!(name(decode_gpu_evidence(&encode_gpu_evidence(&[many_certs]))).contains("more than 8"));
    let huge: Vec<_> = (0..8)
        .map(|n| CarriedGpuEvidence {
            report: vec![n; 7000],
            certificates: vec![vec![n; 100]],
        })
        .collect();
    assert_eq!(
        name(decode_gpu_evidence(&encode_gpu_evidence(&huge))),
        "too large"
    );
    let mut trailing = encode_gpu_evidence(&[gpu(1)]);
    trailing.push(0);
    assert!(name(decode_gpu_evidence(&trailing)).contains("trailing"));
}

#[test]
fn fresh_attestation_json_carries_gpu_reports() {
    let fresh = FreshAttestation {
        evidence: CarriedEvidence {
            format: EvidenceFormat::TdxQuote,
            evidence: vec![1, 2, 3],
            certificates: vec![],
        },
        claims: vec![4, 5],
        gpus: vec![gpu(3)],
    };
    let json = fresh.to_json();
    assert!(json.contains("\"gpus\""));
    assert_eq!(FreshAttestation::from_json(&json).unwrap(), fresh);
    let without = FreshAttestation {
        gpus: vec![],
        ..fresh.clone()
    };
    assert!(!without.to_json().contains("gpus"), "absent when empty");
    let chainless = json.replace(
        &format!(
            "\"certificates\":[\"{}\",\"{}\"]",
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, vec![3u8; 900]),
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, vec![4u8; 800])
        ),
        "\"certificates\":[]",
    );
    assert_ne!(chainless, json);
    assert!(matches!(
        FreshAttestation::from_json(&chainless),
        Err(Error::Malformed { .. })
    ));
}
