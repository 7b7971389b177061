//! Intel DCAP quote formats: SGX v3, TDX v4 (TD 1.0 body) and v5 (TD 1.0 / TD 1.5 bodies),
//! following Intel's "TDX DCAP Quoting Library API" (rev. 1.5, 2023) and the SGX ECDSA quote
//! library reference (v3). Parsing yields an unverified [`Quote`]; only
//! [`crate::tdx::TdxVerifier::verify`] turns it into verified claims.

use crate::error::{Error, Result};

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
        let _ = bytes;
        Err(Error::Malformed {
            subject: crate::error::Subject::Quote,
            reason: "parser not yet implemented".into(),
        })
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
