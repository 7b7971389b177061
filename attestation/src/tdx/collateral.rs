//! Intel DCAP collateral: dcap-qvl's `QuoteCollateralV3` JSON and raw Intel PCS responses.

/// Collateral for one quote: PCK CRL (+ issuer chain), root CA CRL, TCB info and QE identity
/// (exact signed JSON strings, signatures, issuer chains), optionally the PCK chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collateral {
    pub inner: dcap_qvl::QuoteCollateralV3,
}
