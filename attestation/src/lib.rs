//! Evidence parsing, verification and policy for confidential-computing attestation.
//!
//! Trust boundary: everything handed to this crate (quotes, reports, certificates, collateral,
//! policies) is untrusted input. Parsers reject truncation and trailing garbage and never panic;
//! parsing yields unverified types and only verification yields verified claims. The current
//! time, the trust anchors and the reference values are arguments: nothing here reads the clock,
//! the environment or the network.
//!
//! - [`tdx`]: Intel DCAP quotes (SGX v3, TDX v4/v5) verified with collateral to the pinned
//!   Intel SGX Root CA.
//! - [`snp`]: AMD SEV-SNP reports verified through VCEK/VLEK chains to the embedded AMD roots.
//! - [`gpu`]: NVIDIA GPU evidence (SPDM 1.1 GET_MEASUREMENTS) verified through the device
//!   chain to the embedded NVIDIA Device Identity CA.
//! - [`policy`]: reference values and their evaluation, returning every failed check.
//! - `sim` (feature `sim`, never in production builds): a simulated TEE issuing evidence in the
//!   real formats under a test root that only a policy naming it accepts.

pub mod bodies;
pub mod claims;
pub mod config_tree;
pub mod encoding;
pub mod error;
pub mod eventlog;
pub mod gpu;
pub mod measure;
pub mod model_digest;
pub mod policy;
pub mod ratls;
pub mod snp;
pub mod tdx;
pub mod verity;

#[cfg(feature = "sim")]
pub mod sim;

#[cfg(test)]
pub(crate) mod test_vectors;

pub use error::{Error, Result, Subject};

/// Which trust anchor a verified chain ended in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TrustRoot {
    /// Intel SGX Root CA (pinned by key id).
    Intel,
    /// An AMD ARK embedded in this crate.
    Amd,
    /// The simulated TEE's test root. Only constructible by the `sim` feature's anchors;
    /// only accepted by a policy that names it.
    Simulated,
}

impl TrustRoot {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Intel => "Intel SGX Root CA",
            Self::Amd => "AMD ARK",
            Self::Simulated => "simulated TEE root (NOT HARDWARE)",
        }
    }
}
