//! RA-TLS: self-signed X.509 certificates that carry attestation evidence and the enclave's
//! claims in critical extensions, and their verification (also inside rustls handshakes).
//!
//! The format (OID arc, extension encodings, a byte-level example) and the verification steps
//! in order are documented in `docs/ratls.md`. In short:
//!
//! - [`issue_certificate`] makes a self-signed certificate (ECDSA P-256 or Ed25519) with three
//!   **critical** extensions under our arc `2.25.273265026061647071373149336998156115086`
//!   ([`OID_ARC`]): `.1` evidence (format + raw quote/report), `.2` claims (the canonical
//!   claims of [`crate::claims`]), `.3` platform certificates (SNP: VCEK/VLEK DER, then
//!   optionally ASK and ARK).
//! - [`RaTlsCertificate::parse`] parses one with size limits and structural checks. The result
//!   is UNVERIFIED.
//! - [`RaTlsVerifier::verify_certificate`] verifies the evidence (TDX with collateral from a
//!   [`CollateralSource`], SEV-SNP through its VCEK chain), the binding (REPORT_DATA =
//!   SHA-512(tag ‖ claims), claims name the certificate's key), the times and the policy, and
//!   caches the result ([`VerifiedPeer`]).
//! - [`RaTlsVerifier::verify_fresh`] checks a [`FreshAttestation`] (new evidence for the same
//!   claims plus the client's nonce) against a peer verified before.
//! - [`RaTlsVerifier::verify_detached`] checks such a response with no TLS peer (through a
//!   relay that terminates TLS; only the claims' HPKE key then reaches the enclave).
//! - [`rustls`](self::rustls) module: certificate verifiers for rustls 0.23 (TLS 1.3 only, no
//!   resumption) and ready-made client/server configurations.

pub mod cocoon;
mod format;
mod issue;
mod parse;
pub mod rustls;
mod verify;

pub use format::{
    ExtensionOid, RawExtension, CLAIMS_OID, EVIDENCE_OID, GPU_EVIDENCE_OID, MAX_CERTIFICATE_SIZE,
    MAX_CLAIMS_EXTENSION_SIZE, MAX_EVIDENCE_EXTENSION_SIZE, MAX_GPU_CERTIFICATES,
    MAX_GPU_EVIDENCE_EXTENSION_SIZE, MAX_GPU_REPORTS, MAX_PLATFORM_CERTIFICATES,
    MAX_PLATFORM_CERTIFICATES_EXTENSION_SIZE, OID_ARC, OID_ARC_UUID, PLATFORM_CERTIFICATES_OID,
    RATLS_EXTENSION_VERSION,
};
pub use issue::{issue_certificate, issue_certificate_with_gpus, issue_with_extensions};
pub use parse::{KeyType, RaTlsCertificate};
pub use verify::{
    CertificateKind, CollateralSource, FreshAttestation, RaTlsVerifier, StaticCollateral,
    VerificationCache, VerifiedPeer, VerifierConfig, DEFAULT_CACHE_CAPACITY,
    DEFAULT_MAX_LIFETIME_SECS, MAX_FRESH_ATTESTATION_JSON,
};

pub use self::rustls::{
    attestation_error, client_config, client_config_with_time_provider, peer_of, peer_of_at,
    server_config, server_config_with_time_provider, RaTlsClientCertVerifier,
    RaTlsServerCertVerifier,
};

/// The kind of evidence an RA-TLS certificate carries. Simulated evidence uses the same
/// formats (and is told apart by its trust root).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EvidenceFormat {
    /// An Intel DCAP quote (TDX v4/v5; SGX v3 is accepted by the TDX path as well).
    TdxQuote,
    /// An AMD SEV-SNP attestation report (0x4A0 bytes).
    SnpReport,
}

impl EvidenceFormat {
    /// The code in the evidence extension.
    pub fn code(self) -> u8 {
        match self {
            Self::TdxQuote => 1,
            Self::SnpReport => 2,
        }
    }

    pub fn from_code(code: u64) -> Option<Self> {
        match code {
            1 => Some(Self::TdxQuote),
            2 => Some(Self::SnpReport),
            _ => None,
        }
    }

    /// The name used in JSON (`tdx-quote`, `snp-report`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TdxQuote => "tdx-quote",
            Self::SnpReport => "snp-report",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "tdx-quote" => Some(Self::TdxQuote),
            "snp-report" => Some(Self::SnpReport),
            _ => None,
        }
    }
}

/// Evidence as an RA-TLS certificate (or a fresh attestation) carries it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CarriedEvidence {
    pub format: EvidenceFormat,
    /// The raw quote or report.
    pub evidence: Vec<u8>,
    /// SEV-SNP: the VCEK or VLEK (DER) first, then optionally the ASK/ASVK and ARK (DER).
    /// TDX: empty (the PCK chain is inside the quote).
    pub certificates: Vec<Vec<u8>>,
}

/// One GPU's attestation report as a certificate (or a fresh attestation) carries it
/// (docs/gpu.md): the SPDM GET_MEASUREMENTS request ‖ response, and the device certificate
/// chain (DER, leaf first) that signed it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CarriedGpuEvidence {
    pub report: Vec<u8>,
    pub certificates: Vec<Vec<u8>>,
}

/// Validity and names of a certificate to issue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateParams {
    /// Unix seconds.
    pub not_before: i64,
    /// Unix seconds (inclusive, as X.509 notAfter).
    pub not_after: i64,
    /// DNS names or IP addresses. Informational: verifiers do not match them (the identity is
    /// the attested claims; see `docs/ratls.md`).
    pub subject_alt_names: Vec<String>,
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]
mod tests;
