//! Policy: reference values a user pins per platform, and their evaluation against verified
//! evidence. Evaluation returns every failed check, not only the first.

use crate::error::Error;

/// The outcome of evaluating a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Every failed check, in evaluation order; empty means accepted.
    pub failures: Vec<Error>,
}

impl Decision {
    pub fn accepted(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Reference values and requirements for each platform. `Policy::default()` is the default
/// policy: authentic evidence, TCB not Revoked, no debug, SEPT_VE_DISABLE set on TDX, no
/// simulated evidence.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    _private: (),
}

impl Policy {
    /// Parse a TOML policy (unknown keys are errors).
    pub fn from_toml(text: &str) -> crate::Result<Self> {
        let _ = text;
        Err(Error::PolicyInvalid {
            reason: "policy parsing not yet implemented".into(),
        })
    }

    /// Evaluate a verified TDX/SGX quote.
    pub fn evaluate_tdx(&self, verified: &crate::tdx::VerifiedQuote) -> Decision {
        let _ = verified;
        Decision {
            failures: vec![Error::PolicyInvalid {
                reason: "not yet implemented".into(),
            }],
        }
    }

    /// Evaluate a verified SEV-SNP report.
    pub fn evaluate_snp(&self, verified: &crate::snp::VerifiedSnpReport) -> Decision {
        let _ = verified;
        Decision {
            failures: vec![Error::PolicyInvalid {
                reason: "not yet implemented".into(),
            }],
        }
    }
}
