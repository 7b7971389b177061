//! Verification of SEV-SNP reports: signature over the raw bytes, VCEK/VLEK → ASK/ASVK → ARK.

use super::report::SnpReport;
use super::{Generation, TcbParts};
use crate::error::{Error, Result, Subject};
use crate::TrustRoot;

/// Verified claims of an SNP report: only [`verify`](self) functions construct this.
/// `non_exhaustive` seals it: other crates cannot construct verified claims.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifiedSnpReport {
    pub report: SnpReport,
    pub generation: Generation,
    /// VCEK or VLEK.
    pub signing_key: super::SigningKey,
    pub root: TrustRoot,
    pub reported_tcb: TcbParts,
    pub current_tcb: TcbParts,
    pub committed_tcb: TcbParts,
    pub launch_tcb: TcbParts,
}

/// The AMD roots (ARK, with ASK and ASVK) of each generation. Fields are private: production code
/// gets the embedded roots; the simulated roots exist only with feature `sim`.
#[derive(Debug, Clone)]
pub struct AmdRoots {
    sets: Vec<AmdRootSet>,
}

/// One generation's root set: the self-signed ARK, the ASK (VCEK issuer) and optionally the ASVK
/// (VLEK issuer), all DER.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmdRootSet {
    pub(crate) kind: TrustRoot,
    pub(crate) generation: Generation,
    pub(crate) ark_der: Vec<u8>,
    pub(crate) ask_der: Vec<u8>,
    pub(crate) asvk_der: Option<Vec<u8>>,
}

impl AmdRoots {
    /// The ARK/ASK/ASVK of Milan, Genoa and Turin embedded in this crate.
    pub fn embedded() -> Self {
        Self { sets: Vec::new() }
    }

    /// Crate-internal: roots from explicit sets (the `sim` module adds its simulated set).
    #[allow(dead_code)]
    pub(crate) fn from_sets(sets: Vec<AmdRootSet>) -> Self {
        Self { sets }
    }

    /// The root sets, for reports.
    pub fn sets(&self) -> &[AmdRootSet] {
        &self.sets
    }
}

/// Verifies SEV-SNP reports against the AMD roots.
#[derive(Debug, Clone)]
pub struct SnpVerifier {
    roots: AmdRoots,
}

impl Default for SnpVerifier {
    fn default() -> Self {
        Self::new()
    }
}

impl SnpVerifier {
    pub fn new() -> Self {
        Self::with_roots(AmdRoots::embedded())
    }

    pub fn with_roots(roots: AmdRoots) -> Self {
        Self { roots }
    }

    /// Verify `report` signed by the VCEK/VLEK `signer_der` at `now` (unix seconds).
    /// `chain_pem` optionally gives the ASK/ASVK (+ ARK) as PEM; otherwise the embedded ones
    /// of the certificate's generation are used.
    pub fn verify(
        &self,
        report: &SnpReport,
        signer_der: &[u8],
        chain_pem: Option<&[u8]>,
        now: i64,
    ) -> Result<VerifiedSnpReport> {
        let _ = (report, signer_der, chain_pem, now, &self.roots);
        Err(Error::Malformed {
            subject: Subject::SnpReport,
            reason: "verification not yet implemented".into(),
        })
    }
}
