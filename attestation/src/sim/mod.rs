//! The simulated TEE (feature `sim`): a deterministic test CA issuing evidence in the real
//! formats. NOT HARDWARE: accepted only by a policy naming the simulated root.
//!
//! - [`tdx`]: TDX v4 quotes (TD 1.0 body) with the full DCAP collateral (TCB info, QE identity,
//!   CRLs, issuer chains) under a simulated Intel-style root ([`tdx::root_anchor`]).
//! - [`snp`]: SEV-SNP v3 attestation reports (Genoa) signed by a simulated VCEK, whose chain
//!   VCEK → ASK → ARK uses AMD's algorithms and extensions ([`snp::amd_roots`]).
//! - [`gpu`]: NVIDIA H100-format GPU evidence signed by a simulated device key whose chain
//!   ends in "COCOON SIMULATED GPU ROOT (NOT HARDWARE)" (`scripts/gen-sim-gpu-ca`).
//!
//! Every certificate, CRL and private key is a committed TEST file in `src/sim/keys/`, made by
//! `scripts/gen-sim-ca` (which documents each value). At run time the sim only signs — quotes, QE
//! reports, TCB info and QE identity JSON with P-256, SNP reports with P-384 — using RFC 6979
//! deterministic ECDSA, so the same input always gives the same bytes.
//!
//! Trust: the keys are public, so simulated evidence proves nothing about hardware. The verifiers
//! only accept it when the caller passes the simulated anchors explicitly, the result then names
//! [`crate::TrustRoot::Simulated`], and the policy rejects that root unless it sets
//! `allow_simulated = true`.
//!
//! ```
//! use cocoon_attestation::policy::Policy;
//! use cocoon_attestation::sim::{tdx::{SimTdReport, SimTdx}, SIM_NOW};
//! use cocoon_attestation::tdx::{Quote, RootAnchor, TdxVerifier};
//!
//! # fn main() -> Result<(), cocoon_attestation::Error> {
//! let sim = SimTdx::new()?;
//! let quote = sim.issue_quote(&SimTdReport::default().report_data([0x42; 64]))?;
//! let collateral = sim.collateral()?;
//!
//! let verifier = TdxVerifier::with_roots(vec![RootAnchor::intel(), sim.root_anchor()]);
//! let verified = verifier.verify(&Quote::parse(&quote)?, &collateral, SIM_NOW)?;
//! assert!(!Policy::default().evaluate_tdx(&verified).accepted());
//! let sim_policy = Policy::from_toml("version = 1\nallow_simulated = true\n")?;
//! assert!(sim_policy.evaluate_tdx(&verified).accepted());
//! # Ok(())
//! # }
//! ```

pub mod gpu;
pub mod snp;
pub mod tdx;

use crate::error::{Error, Result, Subject};

/// Start of every simulated certificate's, CRL's and collateral item's validity:
/// 2025-01-01T00:00:00Z.
pub const SIM_VALID_FROM: i64 = 1_735_689_600;

/// End of every simulated certificate's, CRL's and (default) collateral item's validity:
/// 2049-12-31T23:59:59Z (the last instant an X.509 UTCTime can express). It is the CRLs'
/// `nextUpdate`, which verifiers treat as exclusive: the last second at which simulated TDX
/// evidence verifies is `SIM_VALID_UNTIL - 1`.
pub const SIM_VALID_UNTIL: i64 = 2_524_607_999;

/// A verification time inside the window, for tests and demos: 2026-01-01T00:00:00Z.
pub const SIM_NOW: i64 = 1_767_225_600;

/// Maps a failure inside the simulator (only possible if the committed keys were corrupted).
fn sim_error(what: &str, err: impl std::fmt::Display) -> Error {
    Error::Malformed {
        subject: Subject::SimulatedEvidence,
        reason: format!("{what}: {err}"),
    }
}

/// Formats unix seconds as Intel's collateral dates (`2025-01-01T00:00:00Z`).
fn rfc3339(unix: i64) -> Result<String> {
    let t = time::OffsetDateTime::from_unix_timestamp(unix).map_err(|e| sim_error("date", e))?;
    t.format(&time::format_description::well_known::Rfc3339)
        .map_err(|e| sim_error("date", e))
}

/// Writes `src` at `offset` of `buf` (a fixed layout; out of range is an internal error).
fn put(buf: &mut [u8], offset: usize, src: &[u8]) -> Result<()> {
    let end = offset
        .checked_add(src.len())
        .ok_or_else(|| sim_error("layout", "offset overflow"))?;
    buf.get_mut(offset..end)
        .ok_or_else(|| sim_error("layout", "field outside the structure"))?
        .copy_from_slice(src);
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn validity_constants_are_the_documented_dates() {
        assert_eq!(rfc3339(SIM_VALID_FROM).unwrap(), "2025-01-01T00:00:00Z");
        assert_eq!(rfc3339(SIM_VALID_UNTIL).unwrap(), "2049-12-31T23:59:59Z");
        assert_eq!(rfc3339(SIM_NOW).unwrap(), "2026-01-01T00:00:00Z");
    }
}
