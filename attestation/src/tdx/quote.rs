//! Intel DCAP quote formats: SGX v3, TDX v4 (TD 1.0 body) and v5 (TD 1.0 / TD 1.5 bodies),
//! following Intel's "TDX DCAP Quoting Library API" (rev. 1.5, 2023) and the SGX ECDSA quote
//! library reference (v3). Parsing yields an unverified [`Quote`]; only
//! [`crate::tdx::TdxVerifier::verify`] turns it into verified claims.
//!
//! # Layout (all integers little-endian)
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0x000 | 2 | version (3, 4 or 5) |
//! | 0x002 | 2 | attestation key type (2 = ECDSA-256 with P-256) |
//! | 0x004 | 4 | TEE type (0 = SGX, 0x81 = TDX) |
//! | 0x008 | 2 | v3: QE SVN; v4/v5: reserved |
//! | 0x00A | 2 | v3: PCE SVN; v4/v5: reserved |
//! | 0x00C | 16 | QE vendor id (Intel: `939A7233F79C4CA9940A0DB3957F0607`) |
//! | 0x01C | 20 | user data |
//! | 0x030 | – | v5 only: body descriptor, u16 type (2 = TD 1.0, 3 = TD 1.5) + u32 size |
//! | 0x030 / 0x036 (v5) | 384 / 584 / 648 | body: SGX enclave report / TD 1.0 / TD 1.5 report |
//! | after the body | 4 | signature data length *L* |
//! | +4 | *L* | signature data |
//! | after | – | zero padding only |
//!
//! Signature data: ECDSA r‖s (64) ‖ attestation key x‖y (64) ‖ then
//! - v3: QE report (384) ‖ QE report signature (64) ‖ u16 QE auth data length + data ‖
//!   certification data (u16 type + u32 size + data; type 5 = PEM PCK chain);
//! - v4/v5: certification data of type 6 whose data is QE report (384) ‖ QE report
//!   signature (64) ‖ u16 QE auth data length + data ‖ certification data (type 5).
//!
//! SGX enclave report (384): CPUSVN 0x00 (16), MISCSELECT 0x10 (4), reserved 0x14 (28),
//! ATTRIBUTES 0x30 (16), MRENCLAVE 0x40 (32), reserved 0x60 (32), MRSIGNER 0x80 (32),
//! reserved 0xA0 (96), ISVPRODID 0x100 (2), ISVSVN 0x102 (2), reserved 0x104 (60),
//! REPORTDATA 0x140 (64).
//!
//! TD 1.0 report (584): TEE_TCB_SVN 0x00 (16), MRSEAM 0x10 (48), MRSIGNERSEAM 0x40 (48),
//! SEAMATTRIBUTES 0x70 (8), TDATTRIBUTES 0x78 (8), XFAM 0x80 (8), MRTD 0x88 (48),
//! MRCONFIGID 0xB8 (48), MROWNER 0xE8 (48), MROWNERCONFIG 0x118 (48), RTMR0..3 0x148 (4 × 48),
//! REPORTDATA 0x208 (64). TD 1.5 (648) appends TEE_TCB_SVN2 0x248 (16), MRSERVICETD 0x258 (48).

use crate::error::{Error, Result, Subject};

/// Header (48 bytes, all quote versions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuoteHeader {
    pub version: u16,
    pub attestation_key_type: u16,
    pub tee_type: u32,
    /// v3: QE SVN; v4/v5: reserved.
    pub qe_svn: u16,
    /// v3: PCE SVN; v4/v5: reserved.
    pub pce_svn: u16,
    pub qe_vendor_id: [u8; 16],
    pub user_data: [u8; 20],
}

/// SGX enclave report (384 bytes): the body of an SGX quote and the QE report of every quote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnclaveReport {
    pub cpu_svn: [u8; 16],
    pub misc_select: u32,
    pub attributes: [u8; 16],
    pub mr_enclave: [u8; 32],
    pub mr_signer: [u8; 32],
    pub isv_prod_id: u16,
    pub isv_svn: u16,
    pub report_data: [u8; 64],
}

/// TD report body, TDX 1.0 (584 bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TdReport10 {
    pub tee_tcb_svn: [u8; 16],
    pub mr_seam: [u8; 48],
    pub mr_signer_seam: [u8; 48],
    pub seam_attributes: [u8; 8],
    pub td_attributes: [u8; 8],
    pub xfam: [u8; 8],
    pub mr_td: [u8; 48],
    pub mr_config_id: [u8; 48],
    pub mr_owner: [u8; 48],
    pub mr_owner_config: [u8; 48],
    pub rt_mr: [[u8; 48]; 4],
    pub report_data: [u8; 64],
}

/// TD report body, TDX 1.5 (648 bytes): the 1.0 body plus the current TCB and MRSERVICETD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TdReport15 {
    pub base: TdReport10,
    pub tee_tcb_svn2: [u8; 16],
    pub mr_service_td: [u8; 48],
}

/// The attested body of a quote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuoteBody {
    SgxEnclave(EnclaveReport),
    Td10(TdReport10),
    Td15(TdReport15),
}

/// Certification data: a type and its bytes (type 5 = PEM PCK chain, type 6 = QE report
/// certification data, which this parser unpacks into [`QuoteSignature`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificationData {
    pub cert_type: u16,
    pub data: Vec<u8>,
}

/// The ECDSA-256 quote signature data (v3 layout; v4/v5 type-6 certification data is
/// unpacked into the same fields).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuoteSignature {
    /// r ‖ s over header ‖ body.
    pub ecdsa_signature: [u8; 64],
    /// Raw P-256 public key x ‖ y.
    pub attestation_key: [u8; 64],
    pub qe_report: EnclaveReport,
    /// The 384 raw bytes of the QE report, as signed by the PCK key.
    pub qe_report_raw: Vec<u8>,
    /// r ‖ s over `qe_report_raw` by the PCK key.
    pub qe_report_signature: [u8; 64],
    pub qe_auth_data: Vec<u8>,
    /// The innermost certification data (type 5: PEM PCK chain leaf-first).
    pub certification_data: CertificationData,
}

/// A parsed, **unverified** DCAP quote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quote {
    pub header: QuoteHeader,
    /// For v5: the body type of the descriptor (2 = TD 1.0, 3 = TD 1.5); v3: 1 (SGX); v4: 2.
    pub body_type: u16,
    pub body: QuoteBody,
    pub signature: QuoteSignature,
    /// The raw signed bytes (header ‖ [v5 body descriptor ‖] body).
    pub signed_bytes: Vec<u8>,
    /// How many zero bytes followed the quote (real quotes carry padding).
    pub trailing_zero_padding: usize,
}

impl Quote {
    /// Upper bound on a quote's size; anything larger is refused before parsing.
    pub const MAX_SIZE: usize = 64 * 1024;

    /// Parse a binary quote. Rejects truncation, unknown versions/types and trailing bytes
    /// other than zero padding.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let (mut quote, consumed) = Self::parse_prefix(bytes)?;
        let rest = bytes.get(consumed..).unwrap_or_default();
        // Zero bytes after the quote are accepted on purpose: quote generators hand out
        // fixed-size buffers (dcap-qvl's sample and Azure's quotes carry 70 zero bytes).
        // They are outside the signed data and carry no information; anything else is refused.
        if rest.iter().any(|&b| b != 0) {
            return Err(Error::TrailingBytes {
                subject: Subject::Quote,
                count: rest.len(),
            });
        }
        quote.trailing_zero_padding = rest.len();
        Ok(quote)
    }

    /// Parse a quote at the start of `bytes` and return it with its length, ignoring
    /// whatever follows (the caller decides; [`Quote::parse`] accepts only zero padding).
    /// `trailing_zero_padding` of the result is 0.
    pub fn parse_prefix(bytes: &[u8]) -> Result<(Self, usize)> {
        if bytes.len() > Self::MAX_SIZE {
            return Err(Error::InputTooLarge {
                subject: Subject::Quote,
                size: bytes.len(),
                limit: Self::MAX_SIZE,
            });
        }
        let mut r = Reader::new(bytes, Subject::QuoteHeader);
        let header = parse_header(&mut r)?;

        r.subject = Subject::QuoteBody;
        let (body_type, body) = match header.version {
            3 => (
                BODY_TYPE_SGX,
                QuoteBody::SgxEnclave(parse_enclave_report(&mut r)?),
            ),
            4 => (BODY_TYPE_TD10, QuoteBody::Td10(parse_td10(&mut r)?)),
            _ => {
                // v5 (the header check admits nothing else): body descriptor.
                let body_type = r.u16()?;
                let size = r.u32()?;
                let expected = match body_type {
                    BODY_TYPE_TD10 => TD10_LEN,
                    BODY_TYPE_TD15 => TD15_LEN,
                    other => return Err(Error::UnsupportedBodyType(other)),
                };
                if usize::try_from(size).ok() != Some(expected) {
                    return Err(Error::Malformed {
                        subject: Subject::QuoteBody,
                        reason: format!(
                            "body size {size} does not match {expected} of body type {body_type}"
                        ),
                    });
                }
                let body = if body_type == BODY_TYPE_TD10 {
                    QuoteBody::Td10(parse_td10(&mut r)?)
                } else {
                    let base = parse_td10(&mut r)?;
                    QuoteBody::Td15(TdReport15 {
                        base,
                        tee_tcb_svn2: r.array()?,
                        mr_service_td: r.array()?,
                    })
                };
                (body_type, body)
            }
        };
        let signed_len = r.pos;
        let signed_bytes = bytes
            .get(..signed_len)
            .ok_or(Error::Truncated {
                subject: Subject::Quote,
                needed: signed_len,
                available: bytes.len(),
            })?
            .to_vec();

        r.subject = Subject::QuoteSignatureData;
        let sig_len = r.len_u32()?;
        let sig_bytes = r.take(sig_len)?;
        let signature = parse_signature_data(sig_bytes, header.version)?;
        let consumed = r.pos;

        Ok((
            Quote {
                header,
                body_type,
                body,
                signature,
                signed_bytes,
                trailing_zero_padding: 0,
            },
            consumed,
        ))
    }

    /// The PEM PCK certificate chain (certification data type 5) exactly as the quote
    /// carries it (real quotes end it with a NUL byte).
    pub fn pck_chain_pem(&self) -> Result<&[u8]> {
        let cert = &self.signature.certification_data;
        if cert.cert_type != CERT_TYPE_PCK_CHAIN {
            return Err(Error::UnsupportedCertificationDataType(cert.cert_type));
        }
        Ok(&cert.data)
    }

    /// The PCK certificate chain as DER certificates, leaf first (as the quote orders them).
    pub fn pck_chain_der(&self) -> Result<Vec<Vec<u8>>> {
        pem_chain_to_der(self.pck_chain_pem()?, Subject::PckCertChain)
    }

    /// The TD report (1.0 fields) of a TDX quote, `None` for SGX.
    pub fn td_report(&self) -> Option<&TdReport10> {
        match &self.body {
            QuoteBody::Td10(r) => Some(r),
            QuoteBody::Td15(r) => Some(&r.base),
            QuoteBody::SgxEnclave(_) => None,
        }
    }

    /// REPORTDATA of the body (TD or enclave).
    pub fn report_data(&self) -> &[u8; 64] {
        match &self.body {
            QuoteBody::Td10(r) => &r.report_data,
            QuoteBody::Td15(r) => &r.base.report_data,
            QuoteBody::SgxEnclave(r) => &r.report_data,
        }
    }
}

/// The most certificates accepted in a PEM chain (Intel's PCK chains have 3).
pub const MAX_CHAIN_CERTS: usize = 8;

/// Decode a PEM certificate chain into DER certificates, in order. Only `CERTIFICATE`
/// blocks; at least one, at most [`MAX_CHAIN_CERTS`].
pub(crate) fn pem_chain_to_der(pem_bytes: &[u8], subject: Subject) -> Result<Vec<Vec<u8>>> {
    let pems = pem::parse_many(pem_bytes).map_err(|e| Error::Malformed {
        subject,
        reason: format!("PEM: {e}"),
    })?;
    if pems.is_empty() {
        return Err(Error::Malformed {
            subject,
            reason: "no PEM certificate".into(),
        });
    }
    if pems.len() > MAX_CHAIN_CERTS {
        return Err(Error::LengthOutOfRange {
            subject,
            length: pems.len(),
            limit: MAX_CHAIN_CERTS,
        });
    }
    pems.into_iter()
        .map(|p| {
            if p.tag() == "CERTIFICATE" {
                Ok(p.into_contents())
            } else {
                Err(Error::Malformed {
                    subject,
                    reason: format!("unexpected PEM block {:?}", p.tag()),
                })
            }
        })
        .collect()
}

/// Intel's QE vendor id.
pub const INTEL_QE_VENDOR_ID: [u8; 16] = [
    0x93, 0x9A, 0x72, 0x33, 0xF7, 0x9C, 0x4C, 0xA9, 0x94, 0x0A, 0x0D, 0xB3, 0x95, 0x7F, 0x06, 0x07,
];
/// Attestation key type 2: ECDSA-256 with P-256.
pub const ATTESTATION_KEY_TYPE_ECDSA_P256: u16 = 2;
/// Body types (v5 descriptor; 1 for v3 and 2 for v4 by this crate's convention).
pub const BODY_TYPE_SGX: u16 = 1;
pub const BODY_TYPE_TD10: u16 = 2;
pub const BODY_TYPE_TD15: u16 = 3;
/// Certification data types: 1–4 identify the platform (PPID in clear / RSA-2048 / RSA-3072
/// encrypted, PCK leaf), 5 the PEM PCK chain, 6 the QE report certification data.
pub const CERT_TYPE_PCK_CHAIN: u16 = 5;
pub const CERT_TYPE_QE_REPORT: u16 = 6;

pub const HEADER_LEN: usize = 48;
pub const ENCLAVE_REPORT_LEN: usize = 384;
pub const TD10_LEN: usize = 584;
pub const TD15_LEN: usize = 648;

/// A bounds-checked little-endian cursor. Hand-written: the crates at hand (scale, binrw,
/// nom) either copy into their own types or lose the exact error (which subject, how many
/// bytes needed/available) that the error enum reports.
struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    subject: Subject,
}

impl<'a> Reader<'a> {
    fn new(data: &'a [u8], subject: Subject) -> Self {
        Self {
            data,
            pos: 0,
            subject,
        }
    }

    fn remaining(&self) -> usize {
        self.data.len().saturating_sub(self.pos)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let available = self.remaining();
        let end = self.pos.checked_add(n);
        match end.and_then(|end| self.data.get(self.pos..end).map(|s| (end, s))) {
            Some((end, s)) => {
                self.pos = end;
                Ok(s)
            }
            None => Err(Error::Truncated {
                subject: self.subject,
                needed: n,
                available,
            }),
        }
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let s = self.take(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(s);
        Ok(out)
    }

    fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    /// A u32 length as usize (lossless on the targets this crate builds for; saturates
    /// otherwise, which `take` then refuses).
    fn len_u32(&mut self) -> Result<usize> {
        Ok(usize::try_from(self.u32()?).unwrap_or(usize::MAX))
    }

    /// A length-prefixed field inside a container whose size is already known: a length
    /// beyond the container is an inconsistency, not a truncation of the input.
    fn take_inner(&mut self, len: usize) -> Result<&'a [u8]> {
        let limit = self.remaining();
        if len > limit {
            return Err(Error::LengthOutOfRange {
                subject: self.subject,
                length: len,
                limit,
            });
        }
        self.take(len)
    }

    /// Refuse bytes the container declared but its content does not use.
    fn finish(&self) -> Result<()> {
        match self.remaining() {
            0 => Ok(()),
            count => Err(Error::TrailingBytes {
                subject: self.subject,
                count,
            }),
        }
    }
}

fn parse_header(r: &mut Reader<'_>) -> Result<QuoteHeader> {
    let version = r.u16()?;
    if !matches!(version, 3..=5) {
        return Err(Error::UnsupportedQuoteVersion(version));
    }
    let header = QuoteHeader {
        version,
        attestation_key_type: r.u16()?,
        tee_type: r.u32()?,
        qe_svn: r.u16()?,
        pce_svn: r.u16()?,
        qe_vendor_id: r.array()?,
        user_data: r.array()?,
    };
    if header.attestation_key_type != ATTESTATION_KEY_TYPE_ECDSA_P256 {
        return Err(Error::UnsupportedAttestationKeyType(
            header.attestation_key_type,
        ));
    }
    let fits = match header.tee_type {
        super::TEE_TYPE_SGX => version == 3,
        super::TEE_TYPE_TDX => matches!(version, 4 | 5),
        other => return Err(Error::UnsupportedTeeType(other)),
    };
    if !fits {
        return Err(Error::QuoteVersionTeeTypeMismatch {
            version,
            tee_type: header.tee_type,
        });
    }
    if header.qe_vendor_id != INTEL_QE_VENDOR_ID {
        return Err(Error::UnknownQeVendorId(header.qe_vendor_id));
    }
    Ok(header)
}

fn parse_enclave_report(r: &mut Reader<'_>) -> Result<EnclaveReport> {
    let cpu_svn = r.array()?;
    let misc_select = r.u32()?;
    r.take(28)?;
    let attributes = r.array()?;
    let mr_enclave = r.array()?;
    r.take(32)?;
    let mr_signer = r.array()?;
    r.take(96)?;
    let isv_prod_id = r.u16()?;
    let isv_svn = r.u16()?;
    r.take(60)?;
    let report_data = r.array()?;
    Ok(EnclaveReport {
        cpu_svn,
        misc_select,
        attributes,
        mr_enclave,
        mr_signer,
        isv_prod_id,
        isv_svn,
        report_data,
    })
}

fn parse_td10(r: &mut Reader<'_>) -> Result<TdReport10> {
    Ok(TdReport10 {
        tee_tcb_svn: r.array()?,
        mr_seam: r.array()?,
        mr_signer_seam: r.array()?,
        seam_attributes: r.array()?,
        td_attributes: r.array()?,
        xfam: r.array()?,
        mr_td: r.array()?,
        mr_config_id: r.array()?,
        mr_owner: r.array()?,
        mr_owner_config: r.array()?,
        rt_mr: [r.array()?, r.array()?, r.array()?, r.array()?],
        report_data: r.array()?,
    })
}

/// Certification data header + data, inside a container.
fn parse_cert_data<'a>(r: &mut Reader<'a>) -> Result<(u16, &'a [u8])> {
    r.subject = Subject::CertificationData;
    let cert_type = r.u16()?;
    let size = r.len_u32()?;
    let data = r.take_inner(size)?;
    Ok((cert_type, data))
}

/// QE report ‖ QE report signature ‖ QE auth data ‖ certification data (v3 tail and the
/// data of type-6 certification data) completes the signature; consumes `r` entirely.
fn parse_qe_part(
    r: &mut Reader<'_>,
    container: Subject,
    ecdsa_signature: [u8; 64],
    attestation_key: [u8; 64],
) -> Result<QuoteSignature> {
    r.subject = Subject::QeReport;
    let qe_report_raw = r.take(ENCLAVE_REPORT_LEN)?;
    let qe_report = parse_enclave_report(&mut Reader::new(qe_report_raw, Subject::QeReport))?;
    let qe_report_signature = r.array()?;
    r.subject = Subject::QeAuthData;
    let auth_len = usize::from(r.u16()?);
    let qe_auth_data = r.take_inner(auth_len)?.to_vec();
    let (cert_type, data) = parse_cert_data(r)?;
    // Types 1–5 identify the PCK (only 5 carries the chain that verification needs); a
    // nested 6 or anything else is not a format Intel defines here.
    if !(1..=CERT_TYPE_PCK_CHAIN).contains(&cert_type) {
        return Err(Error::UnsupportedCertificationDataType(cert_type));
    }
    r.subject = container;
    r.finish()?;
    Ok(QuoteSignature {
        ecdsa_signature,
        attestation_key,
        qe_report,
        qe_report_raw: qe_report_raw.to_vec(),
        qe_report_signature,
        qe_auth_data,
        certification_data: CertificationData {
            cert_type,
            data: data.to_vec(),
        },
    })
}

fn parse_signature_data(bytes: &[u8], version: u16) -> Result<QuoteSignature> {
    let mut r = Reader::new(bytes, Subject::QuoteSignatureData);
    let ecdsa_signature = r.array()?;
    let attestation_key = r.array()?;
    if version == 3 {
        return parse_qe_part(
            &mut r,
            Subject::QuoteSignatureData,
            ecdsa_signature,
            attestation_key,
        );
    }
    let (cert_type, data) = parse_cert_data(&mut r)?;
    if cert_type != CERT_TYPE_QE_REPORT {
        return Err(Error::UnsupportedCertificationDataType(cert_type));
    }
    r.subject = Subject::QuoteSignatureData;
    r.finish()?;
    parse_qe_part(
        &mut Reader::new(data, Subject::CertificationData),
        Subject::CertificationData,
        ecdsa_signature,
        attestation_key,
    )
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
    use p256::ecdsa::signature::Verifier;
    use proptest::prelude::*;
    use sha2::{Digest, Sha256};

    /// Binary quote vectors and hex-text quote vectors (decoded after trimming).
    const BINARY: &[&str] = &[
        "tdx/tdx_quote",
        "tdx/sgx_quote",
        "tdx/tdx_quote_outdated",
        "tdx/tdx_quote_4.dat",
        "tdx/occlum_quote.dat",
        "tdx/az_td_quote.bin",
        "tdx/intel-synthetic/sgx/quote.dat",
        "tdx/intel-synthetic/tdx/quote.dat",
    ];
    const HEX: &[&str] = &[
        "tdx/quote_hex.txt",
        "tdx/tdx-quote.hex",
        "tdx/quote-from-tappd.hex",
    ];
    /// go-tdx-guest's production quote; its test file appends 39 bytes of text.
    const SPR_E4: &str = "tdx/tdx_prod_quote_SPR_E4.dat";
    const SPR_E4_EXTRA: &[u8] = b"\nextra bytes(only for testing purpose)\n";

    fn hex_vector(name: &str) -> Vec<u8> {
        let text = String::from_utf8(test_vectors::read(name)).unwrap();
        let t = text.trim();
        hex::decode(t.strip_prefix("0x").unwrap_or(t)).unwrap()
    }

    fn all_vectors() -> Vec<(&'static str, Vec<u8>)> {
        let mut v: Vec<_> = BINARY.iter().map(|n| (*n, test_vectors::read(n))).collect();
        v.extend(HEX.iter().map(|n| (*n, hex_vector(n))));
        v
    }

    /// SPR_E4 without the text go-tdx-guest appended.
    fn spr_e4() -> Vec<u8> {
        let b = test_vectors::read(SPR_E4);
        b.strip_suffix(SPR_E4_EXTRA).unwrap().to_vec()
    }

    /// Length of the quote proper (without padding).
    fn quote_len(bytes: &[u8]) -> usize {
        Quote::parse_prefix(bytes).unwrap().1
    }

    /// Offset of the signature data (after its u32 length).
    fn sig_start(q: &Quote) -> usize {
        q.signed_bytes.len() + 4
    }

    fn set_u16(b: &mut [u8], off: usize, v: u16) {
        b[off..off + 2].copy_from_slice(&v.to_le_bytes());
    }
    fn set_u32(b: &mut [u8], off: usize, v: u32) {
        b[off..off + 4].copy_from_slice(&v.to_le_bytes());
    }
    fn get_u32(b: &[u8], off: usize) -> u32 {
        u32::from_le_bytes(b[off..off + 4].try_into().unwrap())
    }

    // ------------------------------------------------------------ golden values

    /// Values read from an insta snapshot of dcap-qvl's `Quote` Debug output: each
    /// `name: [ n, n, … ]` array, `name: n` number and `name: "…"` string, in file order.
    #[derive(Debug)]
    enum Golden {
        Bytes(Vec<u8>),
        Num(u64),
        Str(Vec<u8>),
    }

    fn read_snapshot(name: &str) -> Vec<(String, Golden)> {
        let text = String::from_utf8(test_vectors::read(name)).unwrap();
        let mut out = Vec::new();
        let mut current: Option<(String, Vec<u8>)> = None;
        for line in text.lines().map(str::trim) {
            if let Some((name, bytes)) = current.as_mut() {
                if line.starts_with(']') {
                    out.push((std::mem::take(name), Golden::Bytes(std::mem::take(bytes))));
                    current = None;
                } else {
                    bytes.push(line.trim_end_matches(',').parse().unwrap());
                }
                continue;
            }
            let Some((field, value)) = line.split_once(": ") else {
                continue;
            };
            if value == "[" {
                current = Some((field.to_string(), Vec::new()));
            } else if let Ok(n) = value.trim_end_matches(',').parse::<u64>() {
                out.push((field.to_string(), Golden::Num(n)));
            } else if let Some(s) = value.strip_prefix('"') {
                out.push((
                    field.to_string(),
                    Golden::Str(unescape(s.trim_end_matches("\","))),
                ));
            }
        }
        out
    }

    /// Undo Rust's Debug string escaping (enough for the PEM bodies: \n, \0, \\, \", \u{…}).
    fn unescape(s: &str) -> Vec<u8> {
        let mut out = String::new();
        let mut chars = s.chars();
        while let Some(c) = chars.next() {
            if c != '\\' {
                out.push(c);
                continue;
            }
            match chars.next().unwrap() {
                'n' => out.push('\n'),
                '0' => out.push('\0'),
                'r' => out.push('\r'),
                't' => out.push('\t'),
                '\\' => out.push('\\'),
                '"' => out.push('"'),
                'u' => {
                    let code: String = chars.by_ref().skip(1).take_while(|&c| c != '}').collect();
                    out.push(char::from_u32(u32::from_str_radix(&code, 16).unwrap()).unwrap());
                }
                other => panic!("escape \\{other}"),
            }
        }
        out.into_bytes()
    }

    /// The `nth` (0-based) occurrence of a field.
    fn golden<'a>(g: &'a [(String, Golden)], field: &str, nth: usize) -> &'a Golden {
        g.iter()
            .filter(|(n, _)| n == field)
            .nth(nth)
            .map(|(_, v)| v)
            .unwrap_or_else(|| panic!("no golden {field}#{nth}"))
    }
    fn gb<'a>(g: &'a [(String, Golden)], field: &str, nth: usize) -> &'a [u8] {
        match golden(g, field, nth) {
            Golden::Bytes(b) | Golden::Str(b) => b,
            other => panic!("{field}: {other:?}"),
        }
    }
    fn gn(g: &[(String, Golden)], field: &str) -> u64 {
        match golden(g, field, 0) {
            Golden::Num(n) => *n,
            other => panic!("{field}: {other:?}"),
        }
    }

    fn assert_header_matches(q: &Quote, g: &[(String, Golden)]) {
        assert_eq!(u64::from(q.header.version), gn(g, "version"));
        assert_eq!(
            u64::from(q.header.attestation_key_type),
            gn(g, "attestation_key_type")
        );
        assert_eq!(u64::from(q.header.tee_type), gn(g, "tee_type"));
        assert_eq!(u64::from(q.header.qe_svn), gn(g, "qe_svn"));
        assert_eq!(u64::from(q.header.pce_svn), gn(g, "pce_svn"));
        assert_eq!(q.header.qe_vendor_id, gb(g, "qe_vendor_id", 0));
        assert_eq!(q.header.user_data, gb(g, "user_data", 0));
    }

    /// The signature fields; `cert_nth` is the occurrence of the innermost cert data.
    fn assert_signature_matches(q: &Quote, g: &[(String, Golden)], cert_nth: usize) {
        let s = &q.signature;
        assert_eq!(s.ecdsa_signature, gb(g, "ecdsa_signature", 0));
        assert_eq!(s.attestation_key, gb(g, "ecdsa_attestation_key", 0));
        assert_eq!(s.qe_report_raw, gb(g, "qe_report", 0));
        assert_eq!(s.qe_report_signature, gb(g, "qe_report_signature", 0));
        assert_eq!(s.qe_auth_data, gb(g, "data", 0));
        let Golden::Num(cert_type) = golden(g, "cert_type", cert_nth) else {
            panic!("cert_type")
        };
        assert_eq!(u64::from(s.certification_data.cert_type), *cert_type);
        assert_eq!(s.certification_data.data, gb(g, "body", cert_nth));
        // The QE report fields are the raw bytes at Intel's offsets.
        let raw = &s.qe_report_raw;
        assert_eq!(s.qe_report.cpu_svn, raw[..16]);
        assert_eq!(s.qe_report.mr_enclave, raw[0x40..0x60]);
        assert_eq!(s.qe_report.mr_signer, raw[0x80..0xA0]);
        assert_eq!(s.qe_report.report_data, raw[0x140..]);
    }

    #[test]
    fn tdx_quote_matches_dcap_qvl_snapshot_field_by_field() {
        let g = read_snapshot("tdx/verify_quote__could_parse_tdx_quote.snap");
        let q = Quote::parse(&test_vectors::read("tdx/tdx_quote")).unwrap();
        assert_header_matches(&q, &g);
        assert_eq!(q.body_type, 2);
        let QuoteBody::Td10(r) = &q.body else {
            panic!("{:?}", q.body)
        };
        assert_eq!(r.tee_tcb_svn, gb(&g, "tee_tcb_svn", 0));
        assert_eq!(r.mr_seam, gb(&g, "mr_seam", 0));
        assert_eq!(r.mr_signer_seam, gb(&g, "mr_signer_seam", 0));
        assert_eq!(r.seam_attributes, gb(&g, "seam_attributes", 0));
        assert_eq!(r.td_attributes, gb(&g, "td_attributes", 0));
        assert_eq!(r.xfam, gb(&g, "xfam", 0));
        assert_eq!(r.mr_td, gb(&g, "mr_td", 0));
        assert_eq!(r.mr_config_id, gb(&g, "mr_config_id", 0));
        assert_eq!(r.mr_owner, gb(&g, "mr_owner", 0));
        assert_eq!(r.mr_owner_config, gb(&g, "mr_owner_config", 0));
        for (i, rtmr) in r.rt_mr.iter().enumerate() {
            assert_eq!(rtmr, gb(&g, &format!("rt_mr{i}"), 0));
        }
        assert_eq!(r.report_data, gb(&g, "report_data", 0));
        // The outer certification data is type 6 (unpacked); the innermost is the second.
        assert!(matches!(golden(&g, "cert_type", 0), Golden::Num(6)));
        assert_signature_matches(&q, &g, 1);
        assert_eq!(q.trailing_zero_padding, 70);
    }

    #[test]
    fn sgx_quote_matches_dcap_qvl_snapshot_field_by_field() {
        let g = read_snapshot("tdx/verify_quote__could_parse_sgx_quote.snap");
        let bytes = test_vectors::read("tdx/sgx_quote");
        let q = Quote::parse(&bytes).unwrap();
        assert_header_matches(&q, &g);
        assert_eq!(q.body_type, 1);
        let QuoteBody::SgxEnclave(r) = &q.body else {
            panic!("{:?}", q.body)
        };
        assert_eq!(r.cpu_svn, gb(&g, "cpu_svn", 0));
        assert_eq!(u64::from(r.misc_select), gn(&g, "misc_select"));
        assert_eq!(r.attributes, gb(&g, "attributes", 0));
        assert_eq!(r.mr_enclave, gb(&g, "mr_enclave", 0));
        assert_eq!(r.mr_signer, gb(&g, "mr_signer", 0));
        assert_eq!(u64::from(r.isv_prod_id), gn(&g, "isv_prod_id"));
        assert_eq!(u64::from(r.isv_svn), gn(&g, "isv_svn"));
        assert_eq!(r.report_data, gb(&g, "report_data", 0));
        assert!(r.report_data.starts_with(b"Hello, world!"));
        // The reserved fields dcap-qvl keeps are the bytes this parser skips.
        let body = &bytes[HEADER_LEN..HEADER_LEN + ENCLAVE_REPORT_LEN];
        assert_eq!(&body[20..48], gb(&g, "reserved1", 0));
        assert_eq!(&body[96..128], gb(&g, "reserved2", 0));
        assert_eq!(&body[160..256], gb(&g, "reserved3", 0));
        assert_eq!(&body[260..320], gb(&g, "reserved4", 0));
        assert_signature_matches(&q, &g, 0);
        assert_eq!(q.trailing_zero_padding, 0);
    }

    #[test]
    fn tdx_quote_4_matches_trustee_parsed_claims() {
        let expected: serde_json::Value =
            serde_json::from_slice(&test_vectors::read("tdx/parse_tdx_claims_expected.json"))
                .unwrap();
        let q = Quote::parse(&test_vectors::read("tdx/tdx_quote_4.dat")).unwrap();
        let h = &expected["quote"]["header"];
        let b = &expected["quote"]["body"];
        let hx = |v: &serde_json::Value| hex::decode(v.as_str().unwrap()).unwrap();
        assert_eq!(hx(&h["version"]), q.header.version.to_le_bytes());
        assert_eq!(
            hx(&h["att_key_type"]),
            q.header.attestation_key_type.to_le_bytes()
        );
        assert_eq!(hx(&h["tee_type"]), q.header.tee_type.to_le_bytes());
        let mut reserved = q.header.qe_svn.to_le_bytes().to_vec();
        reserved.extend(q.header.pce_svn.to_le_bytes());
        assert_eq!(hx(&h["reserved"]), reserved);
        assert_eq!(hx(&h["vendor_id"]), q.header.qe_vendor_id);
        assert_eq!(hx(&h["user_data"]), q.header.user_data);
        let r = q.td_report().unwrap();
        assert_eq!(hx(&b["tcb_svn"]), r.tee_tcb_svn);
        assert_eq!(hx(&b["mr_seam"]), r.mr_seam);
        assert_eq!(hx(&b["mrsigner_seam"]), r.mr_signer_seam);
        assert_eq!(hx(&b["seam_attributes"]), r.seam_attributes);
        assert_eq!(hx(&b["td_attributes"]), r.td_attributes);
        assert_eq!(hx(&b["xfam"]), r.xfam);
        assert_eq!(hx(&b["mr_td"]), r.mr_td);
        assert_eq!(hx(&b["mr_config_id"]), r.mr_config_id);
        assert_eq!(hx(&b["mr_owner"]), r.mr_owner);
        assert_eq!(hx(&b["mr_owner_config"]), r.mr_owner_config);
        for (i, rtmr) in r.rt_mr.iter().enumerate() {
            assert_eq!(hx(&b[format!("rtmr_{i}")]), rtmr);
        }
        assert_eq!(hx(&b["report_data"]), r.report_data);
        assert_eq!(hx(&expected["report_data"]), *q.report_data());
        // trustee: debug = true (TUD bit 0).
        assert_eq!(
            expected["td_attributes"]["debug"].as_bool(),
            Some(r.td_attributes[0] & 1 == 1)
        );
    }

    #[test]
    fn every_real_quote_parses_with_zero_padding_only() {
        for (name, bytes) in all_vectors() {
            let q = Quote::parse(&bytes).unwrap_or_else(|e| panic!("{name}: {e:?}"));
            assert_eq!(
                q.trailing_zero_padding,
                bytes.len() - quote_len(&bytes),
                "{name}"
            );
        }
    }

    #[test]
    fn padding_counts_are_those_of_the_files() {
        let count = |b: &[u8]| Quote::parse(b).unwrap().trailing_zero_padding;
        assert_eq!(count(&test_vectors::read("tdx/tdx_quote")), 70);
        assert_eq!(count(&test_vectors::read("tdx/az_td_quote.bin")), 70);
        assert_eq!(count(&hex_vector("tdx/quote_hex.txt")), 70);
        assert_eq!(count(&test_vectors::read("tdx/sgx_quote")), 0);
        assert_eq!(count(&test_vectors::read("tdx/tdx_quote_4.dat")), 0);
    }

    #[test]
    fn signed_bytes_verify_under_the_attestation_key_for_every_quote() {
        // Proves signed_bytes is exactly what the QE signed (header ‖ [descriptor ‖] body).
        let mut vectors = all_vectors();
        vectors.push((SPR_E4, spr_e4()));
        for (name, bytes) in vectors {
            let q = Quote::parse(&bytes).unwrap();
            let body_len = match q.body {
                QuoteBody::SgxEnclave(_) => ENCLAVE_REPORT_LEN,
                QuoteBody::Td10(_) => TD10_LEN,
                QuoteBody::Td15(_) => TD15_LEN,
            };
            let descriptor = if q.header.version == 5 { 6 } else { 0 };
            assert_eq!(q.signed_bytes.len(), HEADER_LEN + descriptor + body_len);
            assert_eq!(q.signed_bytes, bytes[..q.signed_bytes.len()]);
            let key = p256::EncodedPoint::from_untagged_bytes(&q.signature.attestation_key.into());
            let vk = p256::ecdsa::VerifyingKey::from_encoded_point(&key).unwrap();
            let sig = p256::ecdsa::Signature::from_slice(&q.signature.ecdsa_signature).unwrap();
            vk.verify(&q.signed_bytes, &sig)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }

    #[test]
    fn qe_report_data_binds_attestation_key_and_auth_data_for_every_quote() {
        // Proves the QE report, auth data and key were cut at the right offsets.
        for (name, bytes) in all_vectors() {
            let s = Quote::parse(&bytes).unwrap().signature;
            let mut h = Sha256::new();
            h.update(s.attestation_key);
            h.update(&s.qe_auth_data);
            assert_eq!(s.qe_report.report_data[..32], h.finalize()[..], "{name}");
        }
    }

    #[test]
    fn v5_quote_has_a_td15_body_and_descriptor_in_signed_bytes() {
        let bytes = test_vectors::read("tdx/tdx_quote_outdated");
        let q = Quote::parse(&bytes).unwrap();
        assert_eq!((q.header.version, q.body_type), (5, 3));
        let QuoteBody::Td15(r) = &q.body else {
            panic!("{:?}", q.body)
        };
        // Descriptor: type 3, size 648.
        assert_eq!(bytes[48..54], [3, 0, 0x88, 2, 0, 0]);
        assert_eq!(r.mr_service_td, bytes[54 + 0x258..54 + 0x288]);
        assert_eq!(r.tee_tcb_svn2, bytes[54 + 0x248..54 + 0x258]);
        assert_eq!(q.td_report(), Some(&r.base));
        assert_eq!(q.report_data(), &r.base.report_data);
        assert_eq!(q.signature.certification_data.cert_type, 5);
    }

    #[test]
    fn synthetic_sgx_quote_carries_a_ppid_not_a_chain() {
        let q = Quote::parse(&test_vectors::read("tdx/intel-synthetic/sgx/quote.dat")).unwrap();
        assert_eq!(q.signature.certification_data.cert_type, 1);
        assert!(q.signature.qe_auth_data.is_empty());
        let err = q.pck_chain_pem().unwrap_err();
        assert!(
            matches!(err, Error::UnsupportedCertificationDataType(1)),
            "{err:?}"
        );
        let err = q.pck_chain_der().unwrap_err();
        assert!(
            matches!(err, Error::UnsupportedCertificationDataType(1)),
            "{err:?}"
        );
    }

    #[test]
    fn pck_chain_der_is_leaf_first_and_ends_in_the_intel_root() {
        let root = test_vectors::read("tdx/TrustedRootCA.der");
        for name in ["tdx/tdx_quote", "tdx/sgx_quote", "tdx/tdx_quote_outdated"] {
            let q = Quote::parse(&test_vectors::read(name)).unwrap();
            let pem = q.pck_chain_pem().unwrap();
            assert!(pem.starts_with(b"-----BEGIN CERTIFICATE-----"), "{name}");
            let chain = q.pck_chain_der().unwrap();
            assert_eq!(chain.len(), 3, "{name}");
            assert_eq!(chain[2], root, "{name}");
            // The leaf is the "Intel SGX PCK Certificate".
            let leaf_cn = b"Intel SGX PCK Certificate";
            assert!(
                chain[0].windows(leaf_cn.len()).any(|w| w == leaf_cn),
                "{name}"
            );
        }
    }

    #[test]
    fn pem_chain_with_more_than_eight_certificates_is_refused() {
        let q = Quote::parse(&test_vectors::read("tdx/tdx_quote")).unwrap();
        let one = q.pck_chain_pem().unwrap();
        let end = b"-----END CERTIFICATE-----\n";
        let first_end = one.windows(end.len()).position(|w| w == end).unwrap() + end.len();
        let leaf = &one[..first_end];
        assert_eq!(
            pem_chain_to_der(&leaf.repeat(8), Subject::PckCertChain)
                .unwrap()
                .len(),
            8
        );
        let err = pem_chain_to_der(&leaf.repeat(9), Subject::PckCertChain).unwrap_err();
        assert!(
            matches!(
                err,
                Error::LengthOutOfRange {
                    subject: Subject::PckCertChain,
                    length: 9,
                    limit: 8
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn pem_chain_without_certificates_or_with_other_blocks_is_malformed() {
        for input in [
            &b""[..],
            b"\0",
            b"not pem",
            b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
        ] {
            let err = pem_chain_to_der(input, Subject::PckCertChain).unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::Malformed {
                        subject: Subject::PckCertChain,
                        ..
                    }
                ),
                "{err:?}"
            );
        }
    }

    // ------------------------------------------------------------ negative cases

    #[test]
    fn go_tdx_guest_production_quote_has_text_appended_and_is_refused_whole() {
        let raw = test_vectors::read(SPR_E4);
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
        // The quote itself is intact: parse_prefix reads it and stops at its end.
        let (q, len) = Quote::parse_prefix(&raw).unwrap();
        assert_eq!(len, raw.len() - SPR_E4_EXTRA.len());
        assert_eq!(Quote::parse(&raw[..len]).unwrap(), q);
        assert_eq!(q.signature.certification_data.cert_type, 5);
    }

    #[test]
    fn go_tdx_guest_flip_version_to_3_is_a_version_tee_mismatch() {
        // go-tdx-guest (v4 only) calls this an unsupported version; here v3 is supported
        // for SGX, so a TDX quote claiming v3 is the version/TEE-type mismatch.
        let mut b = spr_e4();
        b[0x00] = 3;
        let err = Quote::parse(&b).unwrap_err();
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
    fn unknown_quote_versions_are_unsupported() {
        for v in [0u16, 1, 2, 6, 0x0104, u16::MAX] {
            let mut b = spr_e4();
            set_u16(&mut b, 0, v);
            let err = Quote::parse(&b).unwrap_err();
            assert!(
                matches!(err, Error::UnsupportedQuoteVersion(x) if x == v),
                "{err:?}"
            );
        }
    }

    #[test]
    fn go_tdx_guest_flip_of_signature_data_length_is_a_size_error() {
        // 0x278 is the low byte of the signature data length: 4299 becomes 0x1010 = 4112,
        // so the type-6 certification data (4165 bytes) no longer fits its container.
        let mut b = spr_e4();
        assert_eq!(get_u32(&b, 0x278), 4299);
        b[0x278] = 0x10;
        let err = Quote::parse(&b).unwrap_err();
        assert!(
            matches!(
                err,
                Error::LengthOutOfRange {
                    subject: Subject::CertificationData,
                    length: 4165,
                    limit: 3978
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn every_truncation_of_real_quotes_is_truncated() {
        for name in ["tdx/tdx_quote", "tdx/sgx_quote", "tdx/tdx_quote_outdated"] {
            let bytes = test_vectors::read(name);
            let len = quote_len(&bytes);
            for cut in 0..len {
                let err = Quote::parse(&bytes[..cut]).unwrap_err();
                assert!(
                    matches!(err, Error::Truncated { available, needed, .. } if available < needed),
                    "{name} cut at {cut}: {err:?}"
                );
            }
            // Cutting into the padding only shortens the padding.
            for cut in len..=bytes.len() {
                assert_eq!(
                    Quote::parse(&bytes[..cut]).unwrap().trailing_zero_padding,
                    cut - len
                );
            }
        }
    }

    #[test]
    fn non_zero_byte_after_the_quote_is_trailing_bytes() {
        let mut b = test_vectors::read("tdx/tdx_quote");
        let last = b.len() - 1;
        b[last] = 1;
        let err = Quote::parse(&b).unwrap_err();
        assert!(
            matches!(
                err,
                Error::TrailingBytes {
                    subject: Subject::Quote,
                    count: 70
                }
            ),
            "{err:?}"
        );
        let mut b = test_vectors::read("tdx/sgx_quote");
        b.push(0xff);
        let err = Quote::parse(&b).unwrap_err();
        assert!(
            matches!(
                err,
                Error::TrailingBytes {
                    subject: Subject::Quote,
                    count: 1
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn unknown_tee_type_is_unsupported() {
        let mut b = test_vectors::read("tdx/tdx_quote");
        set_u32(&mut b, 4, 0x82);
        let err = Quote::parse(&b).unwrap_err();
        assert!(matches!(err, Error::UnsupportedTeeType(0x82)), "{err:?}");
    }

    #[test]
    fn attestation_key_types_other_than_p256_are_unsupported() {
        for kt in [0u16, 1, 3, 0xffff] {
            let mut b = test_vectors::read("tdx/tdx_quote");
            set_u16(&mut b, 2, kt);
            let err = Quote::parse(&b).unwrap_err();
            assert!(
                matches!(err, Error::UnsupportedAttestationKeyType(x) if x == kt),
                "{err:?}"
            );
        }
    }

    #[test]
    fn sgx_quote_claiming_v4_or_v5_is_a_version_tee_mismatch() {
        for v in [4u16, 5] {
            let mut b = test_vectors::read("tdx/sgx_quote");
            set_u16(&mut b, 0, v);
            let err = Quote::parse(&b).unwrap_err();
            assert!(
                matches!(err, Error::QuoteVersionTeeTypeMismatch { version, tee_type: 0 } if version == v),
                "{err:?}"
            );
        }
    }

    #[test]
    fn tdx_quote_claiming_v3_is_a_version_tee_mismatch() {
        let mut b = test_vectors::read("tdx/tdx_quote");
        set_u16(&mut b, 0, 3);
        let err = Quote::parse(&b).unwrap_err();
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
    fn non_intel_qe_vendor_id_is_refused() {
        let mut b = test_vectors::read("tdx/tdx_quote");
        b[12] ^= 1;
        let err = Quote::parse(&b).unwrap_err();
        assert!(
            matches!(err, Error::UnknownQeVendorId(id) if id[0] == 0x92 && id[1..] == INTEL_QE_VENDOR_ID[1..]),
            "{err:?}"
        );
    }

    #[test]
    fn v5_body_types_other_than_td10_and_td15_are_unsupported() {
        // 1 = SGX in v5 (SGX is accepted as v3 only), 4 = TD 1.5 "ex", others unknown.
        for t in [0u16, 1, 4, 0xffff] {
            let mut b = test_vectors::read("tdx/tdx_quote_outdated");
            set_u16(&mut b, 48, t);
            let err = Quote::parse(&b).unwrap_err();
            assert!(
                matches!(err, Error::UnsupportedBodyType(x) if x == t),
                "{err:?}"
            );
        }
    }

    #[test]
    fn v5_body_size_that_does_not_fit_its_type_is_malformed() {
        for size in [0u32, 584, 647, 649, u32::MAX] {
            let mut b = test_vectors::read("tdx/tdx_quote_outdated");
            set_u32(&mut b, 50, size);
            let err = Quote::parse(&b).unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::Malformed {
                        subject: Subject::QuoteBody,
                        ..
                    }
                ),
                "{size}: {err:?}"
            );
        }
        // Type 2 (TD 1.0) with the TD 1.5 size.
        let mut b = test_vectors::read("tdx/tdx_quote_outdated");
        set_u16(&mut b, 48, 2);
        let err = Quote::parse(&b).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Malformed {
                    subject: Subject::QuoteBody,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn v4_outer_certification_data_must_be_type_6() {
        let b0 = test_vectors::read("tdx/tdx_quote");
        let off = sig_start(&Quote::parse(&b0).unwrap()) + 128;
        for t in [1u16, 5, 7, 0xffff] {
            let mut b = b0.clone();
            set_u16(&mut b, off, t);
            let err = Quote::parse(&b).unwrap_err();
            assert!(
                matches!(err, Error::UnsupportedCertificationDataType(x) if x == t),
                "{err:?}"
            );
        }
    }

    #[test]
    fn innermost_certification_data_of_unknown_type_is_unsupported() {
        // v4: inner cert data after the type-6 header (6), QE report (384), signature (64)
        // and auth data (2 + 32).
        let b0 = test_vectors::read("tdx/tdx_quote");
        let q = Quote::parse(&b0).unwrap();
        let inner = sig_start(&q) + 128 + 6 + 384 + 64 + 2 + q.signature.qe_auth_data.len();
        assert_eq!(
            get_u32(&b0, inner + 2) as usize,
            q.signature.certification_data.data.len()
        );
        for t in [0u16, 6, 7] {
            let mut b = b0.clone();
            set_u16(&mut b, inner, t);
            let err = Quote::parse(&b).unwrap_err();
            assert!(
                matches!(err, Error::UnsupportedCertificationDataType(x) if x == t),
                "{err:?}"
            );
        }
        // v3: the certification data follows the auth data directly.
        let b0 = test_vectors::read("tdx/sgx_quote");
        let q = Quote::parse(&b0).unwrap();
        let inner = sig_start(&q) + 128 + 384 + 64 + 2 + q.signature.qe_auth_data.len();
        let mut b = b0.clone();
        set_u16(&mut b, inner, 6);
        let err = Quote::parse(&b).unwrap_err();
        assert!(
            matches!(err, Error::UnsupportedCertificationDataType(6)),
            "{err:?}"
        );
    }

    #[test]
    fn signature_data_length_longer_than_its_content_is_refused() {
        // Claim one more byte (a padding zero): the content no longer fills the length.
        let mut b = test_vectors::read("tdx/tdx_quote");
        let q = Quote::parse(&b).unwrap();
        let off = q.signed_bytes.len();
        let len = get_u32(&b, off);
        set_u32(&mut b, off, len + 1);
        let err = Quote::parse(&b).unwrap_err();
        assert!(
            matches!(
                err,
                Error::TrailingBytes {
                    subject: Subject::QuoteSignatureData,
                    count: 1
                }
            ),
            "{err:?}"
        );
        // Same for v3.
        let mut b = test_vectors::read("tdx/sgx_quote");
        let off = Quote::parse(&b).unwrap().signed_bytes.len();
        let len = get_u32(&b, off);
        set_u32(&mut b, off, len + 1);
        b.push(0);
        let err = Quote::parse(&b).unwrap_err();
        assert!(
            matches!(
                err,
                Error::TrailingBytes {
                    subject: Subject::QuoteSignatureData,
                    count: 1
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn signature_data_length_beyond_the_input_is_truncated() {
        let mut b = test_vectors::read("tdx/sgx_quote");
        let off = Quote::parse(&b).unwrap().signed_bytes.len();
        set_u32(&mut b, off, u32::MAX);
        let err = Quote::parse(&b).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Truncated {
                    subject: Subject::QuoteSignatureData,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn type_6_data_with_bytes_after_the_inner_certification_data_is_refused() {
        // Grow the type-6 size and the signature length by one and insert a byte at the
        // end of the type-6 data.
        let mut b = test_vectors::read("tdx/tdx_quote");
        let q = Quote::parse(&b).unwrap();
        let sig_len_off = q.signed_bytes.len();
        let type6 = sig_start(&q) + 128;
        let sig_len = get_u32(&b, sig_len_off);
        let t6_len = get_u32(&b, type6 + 2);
        set_u32(&mut b, sig_len_off, sig_len + 1);
        set_u32(&mut b, type6 + 2, t6_len + 1);
        b.insert(type6 + 6 + t6_len as usize, 0);
        let err = Quote::parse(&b).unwrap_err();
        assert!(
            matches!(
                err,
                Error::TrailingBytes {
                    subject: Subject::CertificationData,
                    count: 1
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn qe_auth_data_length_beyond_its_container_is_out_of_range() {
        let mut b = test_vectors::read("tdx/tdx_quote");
        let q = Quote::parse(&b).unwrap();
        let auth = sig_start(&q) + 128 + 6 + 384 + 64;
        set_u16(&mut b, auth, u16::MAX);
        let err = Quote::parse(&b).unwrap_err();
        assert!(
            matches!(
                err,
                Error::LengthOutOfRange {
                    subject: Subject::QeAuthData,
                    length: 65535,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn inner_certification_data_size_beyond_its_container_is_out_of_range() {
        let mut b = test_vectors::read("tdx/tdx_quote");
        let q = Quote::parse(&b).unwrap();
        let inner = sig_start(&q) + 128 + 6 + 384 + 64 + 2 + q.signature.qe_auth_data.len();
        let size = get_u32(&b, inner + 2);
        set_u32(&mut b, inner + 2, size + 1);
        let err = Quote::parse(&b).unwrap_err();
        assert!(
            matches!(
                err,
                Error::LengthOutOfRange {
                    subject: Subject::CertificationData,
                    limit,
                    ..
                } if limit == size as usize
            ),
            "{err:?}"
        );
    }

    #[test]
    fn input_above_max_size_is_refused_before_parsing() {
        let mut b = test_vectors::read("tdx/tdx_quote");
        b.resize(Quote::MAX_SIZE, 0);
        assert_eq!(
            Quote::parse(&b).unwrap().trailing_zero_padding,
            Quote::MAX_SIZE - quote_len(&b)
        );
        b.push(0);
        let err = Quote::parse(&b).unwrap_err();
        assert!(
            matches!(
                err,
                Error::InputTooLarge {
                    subject: Subject::Quote,
                    size,
                    limit: Quote::MAX_SIZE
                } if size == Quote::MAX_SIZE + 1
            ),
            "{err:?}"
        );
    }

    #[test]
    fn empty_input_is_truncated_header() {
        let err = Quote::parse(&[]).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Truncated {
                    subject: Subject::QuoteHeader,
                    needed: 2,
                    available: 0
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn header_without_body_is_a_truncated_body() {
        let b = test_vectors::read("tdx/tdx_quote");
        let err = Quote::parse(&b[..HEADER_LEN]).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Truncated {
                    subject: Subject::QuoteBody,
                    available: 0,
                    ..
                }
            ),
            "{err:?}"
        );
        // v5: the descriptor itself cut short.
        let b = test_vectors::read("tdx/tdx_quote_outdated");
        let err = Quote::parse(&b[..HEADER_LEN + 3]).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Truncated {
                    subject: Subject::QuoteBody,
                    needed: 4,
                    available: 1
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn v3_signature_data_too_short_for_the_qe_report_is_truncated_qe_report() {
        // Declare 128 + 100 bytes: key and signature fit, the QE report does not.
        let mut b = test_vectors::read("tdx/sgx_quote");
        let off = Quote::parse(&b).unwrap().signed_bytes.len();
        set_u32(&mut b, off, 228);
        let err = Quote::parse(&b).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Truncated {
                    subject: Subject::QeReport,
                    needed: 384,
                    available: 100
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn v4_signature_data_too_short_for_key_and_signature_is_truncated() {
        let mut b = test_vectors::read("tdx/tdx_quote");
        let off = Quote::parse(&b).unwrap().signed_bytes.len();
        set_u32(&mut b, off, 100);
        let err = Quote::parse(&b).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Truncated {
                    subject: Subject::QuoteSignatureData,
                    needed: 64,
                    available: 36
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn type_6_size_shorter_than_declared_signature_data_is_refused() {
        // The type-6 data no longer fills the signature data: the rest is unexplained.
        let mut b = test_vectors::read("tdx/tdx_quote");
        let type6 = sig_start(&Quote::parse(&b).unwrap()) + 128;
        let len = get_u32(&b, type6 + 2);
        set_u32(&mut b, type6 + 2, len - 10);
        let err = Quote::parse(&b).unwrap_err();
        assert!(
            matches!(
                err,
                Error::TrailingBytes {
                    subject: Subject::QuoteSignatureData,
                    count: 10
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn every_truncation_of_the_synthetic_quotes_is_truncated() {
        // Short QE auth data (0 bytes) and PPID certification data (type 1) paths.
        for name in [
            "tdx/intel-synthetic/sgx/quote.dat",
            "tdx/intel-synthetic/tdx/quote.dat",
        ] {
            let bytes = test_vectors::read(name);
            for cut in 0..bytes.len() {
                let err = Quote::parse(&bytes[..cut]).unwrap_err();
                assert!(
                    matches!(err, Error::Truncated { .. }),
                    "{name} cut at {cut}: {err:?}"
                );
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..6000)) {
            let _ = Quote::parse(&bytes);
        }

        #[test]
        fn random_mutations_of_real_quotes_never_panic(
            which in 0usize..3,
            edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
            cut in any::<usize>(),
        ) {
            let name = ["tdx/tdx_quote", "tdx/sgx_quote", "tdx/tdx_quote_outdated"][which];
            let mut b = test_vectors::read(name);
            for (pos, val) in edits {
                let i = pos % b.len();
                b[i] = val;
            }
            let keep = b.len() - cut % 64;
            b.truncate(keep);
            if let Ok(q) = Quote::parse(&b) {
                // Whatever parses is self-consistent.
                prop_assert_eq!(&q.signed_bytes[..], &b[..q.signed_bytes.len()]);
                let _ = q.pck_chain_der();
            }
        }

        #[test]
        fn mutated_length_fields_never_panic(
            which in 0usize..3,
            field in 0usize..4,
            value in any::<u32>(),
        ) {
            let name = ["tdx/tdx_quote", "tdx/sgx_quote", "tdx/tdx_quote_outdated"][which];
            let mut b = test_vectors::read(name);
            let q = Quote::parse(&b).unwrap();
            let s = sig_start(&q);
            let off = match field {
                0 => q.signed_bytes.len(),
                1 => s + 128,
                2 => s + 128 + 2,
                _ => s + 128 + 6 + 384 + 64,
            };
            b[off..off + 4].copy_from_slice(&value.to_le_bytes());
            let _ = Quote::parse(&b);
        }
    }
}
