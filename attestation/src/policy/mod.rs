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
