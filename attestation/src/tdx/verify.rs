//! Verification of DCAP quotes against collateral, pinned roots and a caller-given time.

use super::collateral::Collateral;
use super::quote::Quote;
use super::TcbStatus;
use crate::error::{Error, Result, Subject};
use crate::TrustRoot;

/// Verified claims of a quote: only [`TdxVerifier::verify`] constructs this.
/// `non_exhaustive` seals it: other crates cannot construct verified claims.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
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

/// A trust anchor for DCAP chains. Fields are private: production code can only obtain the
/// pinned Intel root ([`RootAnchor::intel`]); the simulated root exists only with feature `sim`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootAnchor {
    kind: TrustRoot,
    der: Vec<u8>,
}

impl RootAnchor {
    /// The Intel SGX Root CA embedded in this crate (its key id is pinned).
    pub fn intel() -> Self {
        Self {
            kind: TrustRoot::Intel,
            der: INTEL_ROOT_CA_DER.to_vec(),
        }
    }

    /// Crate-internal constructor (the `sim` module uses it for its root).
    #[allow(dead_code)]
    pub(crate) fn new(kind: TrustRoot, der: Vec<u8>) -> Self {
        Self { kind, der }
    }

    pub fn kind(&self) -> TrustRoot {
        self.kind
    }

    pub fn der(&self) -> &[u8] {
        &self.der
    }
}

/// Intel SGX Root CA (DER), as published by Intel.
pub const INTEL_ROOT_CA_DER: &[u8] = include_bytes!("TrustedRootCA.der");

/// SHA-384 of the Intel SGX Root CA's 65-byte uncompressed public key.
pub const INTEL_ROOT_KEY_ID: &str = "46e403bd34f05a3f2817ab9badcaacc7ffc98e0f261008cd30dae936cace18d5dcf58eef31463613de1570d516200993";

/// Verifies quotes; holds the trust anchors and a bounded cache of verified collateral.
#[derive(Debug)]
pub struct TdxVerifier {
    roots: Vec<RootAnchor>,
}

impl Default for TdxVerifier {
    fn default() -> Self {
        Self::new()
    }
}

impl TdxVerifier {
    /// A verifier trusting only the pinned Intel root.
    pub fn new() -> Self {
        Self::with_roots(vec![RootAnchor::intel()])
    }

    /// A verifier trusting the given anchors.
    pub fn with_roots(roots: Vec<RootAnchor>) -> Self {
        Self { roots }
    }

    /// Verify a parsed quote with its collateral at `now` (unix seconds).
    pub fn verify(
        &self,
        quote: &Quote,
        collateral: &Collateral,
        now: i64,
    ) -> Result<VerifiedQuote> {
        let _ = (quote, collateral, now, &self.roots);
        Err(Error::Malformed {
            subject: Subject::Quote,
            reason: "verification not yet implemented".into(),
        })
    }

    /// Drop every cached verification result (the next call is "cold").
    pub fn clear_cache(&self) {}
}
