//! Verification of DCAP quotes against collateral, pinned roots and a caller-given time.

use super::quote::Quote;
use super::TcbStatus;
use crate::TrustRoot;

/// Verified claims of a quote: only [`TdxVerifier::verify`] constructs this.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedQuote {
    pub quote: Quote,
    pub tcb_status: TcbStatus,
    /// Advisory IDs of the matched platform, TDX module and QE TCB levels (merged, sorted).
    pub advisory_ids: Vec<String>,
    pub fmspc: [u8; 6],
    pub pce_id: [u8; 2],
    /// Which trust anchor the chains ended in.
    pub root: TrustRoot,
    /// The collateral window: latest issue date and earliest expiry (unix seconds) over
    /// TCB info, QE identity, CRLs and certificates.
    pub collateral_valid_from: i64,
    pub collateral_valid_until: i64,
    pub tcb_date: String,
    pub tcb_evaluation_data_number: u32,
}

/// Verifies quotes; holds the trust anchors and a bounded cache of verified collateral.
#[derive(Debug)]
pub struct TdxVerifier {
    _private: (),
}
