//! Verification of SEV-SNP reports: signature over the raw bytes, VCEK/VLEK → ASK/ASVK → ARK.

use super::report::SnpReport;
use super::{Generation, TcbParts};
use crate::TrustRoot;

/// Verified claims of an SNP report: only [`verify`](self) functions construct this.
#[derive(Debug, Clone, PartialEq, Eq)]
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
