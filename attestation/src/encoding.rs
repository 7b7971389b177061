//! Input encodings of evidence and certificates as they arrive from files: raw binary or hex text
//! for quotes and reports, DER or PEM for certificates. Size limits are checked before decoding.

use crate::error::{Error, Result, Subject};

/// Largest encoded input accepted (hex text of a 64 KiB quote with generous whitespace).
pub const MAX_INPUT: usize = 256 * 1024;

/// Largest PEM bundle or DER certificate accepted.
pub const MAX_CERTIFICATE_INPUT: usize = 64 * 1024;

/// Most certificates accepted in one PEM bundle (AMD's bundles hold 2–3, Intel's chains 3).
pub const MAX_CERTIFICATES: usize = 8;

/// Decodes evidence given either as raw bytes or as hex text.
///
/// Hex text is recognised when every byte is an ASCII hex digit or whitespace, after an optional
/// `0x` prefix; whitespace (including newlines) anywhere is ignored. Anything else is taken as raw
/// binary and returned as is: binary evidence always contains non-hex bytes in its fixed header
/// (DCAP quotes start with a 16-bit version, SNP reports with a 32-bit one), so the two cannot be
/// confused. An odd number of hex digits is [`Error::Malformed`]; input over [`MAX_INPUT`] is
/// [`Error::InputTooLarge`].
pub fn binary_or_hex(input: &[u8], subject: Subject) -> Result<Vec<u8>> {
    if input.len() > MAX_INPUT {
        return Err(Error::InputTooLarge {
            subject,
            size: input.len(),
            limit: MAX_INPUT,
        });
    }
    let text = strip_hex_prefix(trim_ascii_start(input));
    let is_hex_text = !text.is_empty()
        && text
            .iter()
            .all(|b| b.is_ascii_hexdigit() || b.is_ascii_whitespace())
        && text.iter().any(|b| b.is_ascii_hexdigit());
    if !is_hex_text {
        return Ok(input.to_vec());
    }
    let digits: Vec<u8> = text
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    hex::decode(&digits).map_err(|e| Error::Malformed {
        subject,
        reason: format!("hex text: {e}"),
    })
}

fn trim_ascii_start(input: &[u8]) -> &[u8] {
    let start = input
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(input.len());
    input.get(start..).unwrap_or_default()
}

fn strip_hex_prefix(input: &[u8]) -> &[u8] {
    input
        .strip_prefix(b"0x")
        .or_else(|| input.strip_prefix(b"0X"))
        .unwrap_or(input)
}

/// True when the input starts like PEM text (after leading whitespace).
fn looks_like_pem(input: &[u8]) -> bool {
    trim_ascii_start(input).starts_with(b"-----BEGIN ")
}

/// One certificate given as DER or as PEM (exactly one `CERTIFICATE` block), returned as DER.
///
/// DER is recognised by its leading SEQUENCE tag (0x30); the certificate itself is not parsed
/// here: the verifier that uses it does.
pub fn der_or_pem_certificate(input: &[u8], subject: Subject) -> Result<Vec<u8>> {
    if input.len() > MAX_CERTIFICATE_INPUT {
        return Err(Error::InputTooLarge {
            subject,
            size: input.len(),
            limit: MAX_CERTIFICATE_INPUT,
        });
    }
    if input.first() == Some(&0x30) {
        return Ok(input.to_vec());
    }
    if !looks_like_pem(input) {
        return Err(Error::Malformed {
            subject,
            reason: "neither DER (SEQUENCE) nor PEM (-----BEGIN CERTIFICATE-----)".into(),
        });
    }
    let mut certificates = pem_certificates(input, subject)?;
    match (certificates.pop(), certificates.is_empty()) {
        (Some(der), true) => Ok(der),
        _ => Err(Error::Malformed {
            subject,
            reason: "expected one certificate, the PEM text holds several".into(),
        }),
    }
}

/// Every certificate of a PEM bundle, in file order, as DER. Blocks other than `CERTIFICATE`,
/// an empty bundle, or more than [`MAX_CERTIFICATES`] blocks are [`Error::Malformed`].
pub fn pem_certificates(input: &[u8], subject: Subject) -> Result<Vec<Vec<u8>>> {
    if input.len() > MAX_CERTIFICATE_INPUT {
        return Err(Error::InputTooLarge {
            subject,
            size: input.len(),
            limit: MAX_CERTIFICATE_INPUT,
        });
    }
    let blocks = pem::parse_many(input).map_err(|e| Error::Malformed {
        subject,
        reason: format!("PEM: {e}"),
    })?;
    if blocks.is_empty() {
        return Err(Error::Malformed {
            subject,
            reason: "no PEM certificate found".into(),
        });
    }
    if blocks.len() > MAX_CERTIFICATES {
        return Err(Error::LengthOutOfRange {
            subject,
            length: blocks.len(),
            limit: MAX_CERTIFICATES,
        });
    }
    blocks
        .into_iter()
        .map(|block| {
            if block.tag() == "CERTIFICATE" {
                Ok(block.into_contents())
            } else {
                Err(Error::Malformed {
                    subject,
                    reason: format!("unexpected PEM block {:?}", block.tag()),
                })
            }
        })
        .collect()
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]
mod tests {
    use super::*;
    use crate::test_vectors;

    #[test]
    fn hex_text_quote_decodes_to_the_same_bytes_as_hex_crate() {
        let text = test_vectors::read("tdx/quote_hex.txt");
        let decoded = binary_or_hex(&text, Subject::Quote).unwrap();
        let expected = hex::decode(String::from_utf8(text).unwrap().trim()).unwrap();
        assert_eq!(decoded, expected);
        assert_eq!(&decoded[..2], &[4, 0], "a TDX v4 quote");
    }

    #[test]
    fn hex_snp_report_decodes_to_a_full_report() {
        let text = test_vectors::read("snp/report_milan.hex");
        let decoded = binary_or_hex(&text, Subject::SnpReport).unwrap();
        assert_eq!(decoded.len(), crate::snp::report::REPORT_LEN);
    }

    #[test]
    fn binary_quote_is_returned_unchanged() {
        let raw = test_vectors::read("tdx/tdx_quote");
        assert_eq!(binary_or_hex(&raw, Subject::Quote).unwrap(), raw);
        let raw = test_vectors::read("snp/attestation.bin");
        assert_eq!(binary_or_hex(&raw, Subject::SnpReport).unwrap(), raw);
    }

    #[test]
    fn hex_with_prefix_whitespace_and_newlines_is_accepted() {
        let decoded = binary_or_hex(b"  0xDE ad\nbe\r\n\tEF\n", Subject::Quote).unwrap();
        assert_eq!(decoded, vec![0xde, 0xad, 0xbe, 0xef]);
        let decoded = binary_or_hex(b"0X0102", Subject::Quote).unwrap();
        assert_eq!(decoded, vec![1, 2]);
    }

    #[test]
    fn hex_with_odd_digit_count_is_malformed() {
        let err = binary_or_hex(b"abc\n", Subject::SnpReport).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Malformed {
                    subject: Subject::SnpReport,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn oversized_input_is_refused_before_decoding() {
        let big = vec![b'0'; MAX_INPUT + 2];
        let err = binary_or_hex(&big, Subject::Quote).unwrap_err();
        assert!(
            matches!(
                err,
                Error::InputTooLarge {
                    subject: Subject::Quote,
                    size,
                    limit: MAX_INPUT
                } if size == MAX_INPUT + 2
            ),
            "{err:?}"
        );
    }

    #[test]
    fn empty_or_whitespace_input_is_passed_on_as_binary_for_the_parser_to_reject() {
        assert_eq!(
            binary_or_hex(b"", Subject::Quote).unwrap(),
            Vec::<u8>::new()
        );
        assert_eq!(binary_or_hex(b" \n", Subject::Quote).unwrap(), b" \n");
    }

    #[test]
    fn der_certificate_is_returned_unchanged() {
        let der = test_vectors::read("snp/vcek_milan.der");
        assert_eq!(der_or_pem_certificate(&der, Subject::Vcek).unwrap(), der);
    }

    #[test]
    fn pem_certificate_decodes_to_its_der() {
        let der = test_vectors::read("tdx/TrustedRootCA.der");
        let pem_text = test_vectors::read("tdx/trusted_root.pem");
        assert_eq!(
            der_or_pem_certificate(&pem_text, Subject::Certificate).unwrap(),
            der
        );
    }

    #[test]
    fn pem_bundle_where_one_certificate_is_expected_is_malformed() {
        let bundle = test_vectors::read("snp/ask_ark_milan.pem");
        let err = der_or_pem_certificate(&bundle, Subject::Vcek).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Malformed {
                    subject: Subject::Vcek,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn garbage_certificate_is_malformed() {
        let err = der_or_pem_certificate(b"hello", Subject::Vcek).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Malformed {
                    subject: Subject::Vcek,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn amd_bundle_yields_ask_then_ark_as_der() {
        let certs =
            pem_certificates(&test_vectors::read("snp/ask_ark_milan.pem"), Subject::Ask).unwrap();
        assert_eq!(certs.len(), 2);
        assert!(certs.iter().all(|c| c.first() == Some(&0x30)));
        let asvk = pem_certificates(
            &test_vectors::read("snp/milan_ask_ark_asvk.pem"),
            Subject::Ask,
        )
        .unwrap();
        assert_eq!(asvk.len(), 3);
    }

    #[test]
    fn pem_block_that_is_not_a_certificate_is_malformed() {
        let text = b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        let err = pem_certificates(text, Subject::Certificate).unwrap_err();
        assert!(matches!(err, Error::Malformed { .. }), "{err:?}");
    }

    #[test]
    fn text_without_pem_blocks_is_malformed() {
        let err = pem_certificates(b"no certificates here", Subject::Ark).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Malformed {
                    subject: Subject::Ark,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn bundle_with_too_many_certificates_is_refused() {
        let one = test_vectors::read("tdx/trusted_root.pem");
        let many: Vec<u8> = std::iter::repeat_n(one, MAX_CERTIFICATES + 1)
            .flatten()
            .collect();
        let err = pem_certificates(&many, Subject::PckCertChain).unwrap_err();
        assert!(
            matches!(err, Error::LengthOutOfRange { length, .. } if length == MAX_CERTIFICATES + 1),
            "{err:?}"
        );
    }
}
