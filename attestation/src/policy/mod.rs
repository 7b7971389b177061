//! Policy: reference values a user pins per platform, and their evaluation against verified
//! evidence. Evaluation returns every failed check, not only the first.
//!
//! A policy is a TOML document (schema and defaults: `docs/policy.md`; a full commented example:
//! `docs/examples/policy.toml`). Parsing validates every value (hex lengths, names, ranges) and
//! refuses unknown keys, so a typo cannot silently drop a constraint. Semantics that hold for
//! every platform:
//!
//! - an absent key puts no constraint on its field; a present but **empty** allowlist denies
//!   everything ([`Error::EmptyAllowlist`]);
//! - a policy with at least one platform section (`[tdx]`, `[sgx]`, `[snp]`) rejects evidence
//!   of a platform without a section ([`Error::PlatformNotAllowed`]); the default policy has no
//!   section and applies each platform's default checks;
//! - evidence signed by the simulated TEE's root is accepted only with `allow_simulated = true`,
//!   which only a build with the cargo feature `sim` can parse.

mod claims;
mod gpu;
mod snp;
mod tdx;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_real;

use std::borrow::Cow;
use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Subject};
use crate::TrustRoot;

pub use claims::ClaimsPolicy;
pub use gpu::GpuPolicy;
pub use snp::{GenerationName, SnpPolicy, TcbMinimum};
pub use tdx::{SgxPolicy, TdxPolicy};

/// The policy format version this crate reads and writes.
pub const POLICY_VERSION: u32 = 1;

/// Largest policy document accepted, in bytes.
pub const MAX_POLICY_SIZE: usize = 1024 * 1024;

/// Domain separation for [`Policy::digest`].
const DIGEST_DOMAIN: &[u8] = b"cocoon-policy-digest-v1\0";

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
/// policy: authentic evidence, TCB not Revoked, no debug, SEPT_VE_DISABLE set on TDX, VMPL 0 on
/// SEV-SNP, no simulated evidence, any platform.
///
/// The platform sections are public types with public fields so that code can build policies
/// (e.g. from published reference values); `allow_simulated` can only be set by a build with
/// the `sim` feature.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    allow_simulated: bool,
    tdx: Option<TdxPolicy>,
    sgx: Option<SgxPolicy>,
    snp: Option<SnpPolicy>,
    claims: Option<ClaimsPolicy>,
    gpu: Option<GpuPolicy>,
}

/// The TOML document as written; converted to [`Policy`] after validation.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    version: u32,
    #[serde(default)]
    allow_simulated: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tdx: Option<tdx::TdxFile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sgx: Option<tdx::SgxFile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    snp: Option<snp::SnpFile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    claims: Option<claims::ClaimsFile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gpu: Option<gpu::GpuFile>,
}

impl Policy {
    /// Parse a TOML policy (unknown keys are errors).
    pub fn from_toml(text: &str) -> crate::Result<Self> {
        if text.len() > MAX_POLICY_SIZE {
            return Err(Error::InputTooLarge {
                subject: Subject::Policy,
                size: text.len(),
                limit: MAX_POLICY_SIZE,
            });
        }
        let file: PolicyFile = toml::from_str(text).map_err(|e| Error::PolicyInvalid {
            reason: e.to_string(),
        })?;
        Self::from_file(file)
    }

    fn from_file(file: PolicyFile) -> crate::Result<Self> {
        if file.version != POLICY_VERSION {
            return Err(invalid(format!(
                "version = {}: this build reads policy version {POLICY_VERSION}",
                file.version
            )));
        }
        if file.allow_simulated && !cfg!(feature = "sim") {
            return Err(invalid(
                "allow_simulated = true: this build has no simulated TEE (cargo feature `sim` is off)"
                    .into(),
            ));
        }
        Ok(Self {
            allow_simulated: file.allow_simulated,
            tdx: file.tdx.map(TdxPolicy::from_file).transpose()?,
            sgx: file.sgx.map(SgxPolicy::from_file).transpose()?,
            snp: file.snp.map(SnpPolicy::from_file).transpose()?,
            claims: file.claims.map(ClaimsPolicy::from_file).transpose()?,
            gpu: file.gpu.map(GpuPolicy::from_file).transpose()?,
        })
    }

    fn to_file(&self) -> PolicyFile {
        PolicyFile {
            version: POLICY_VERSION,
            allow_simulated: self.allow_simulated,
            tdx: self.tdx.as_ref().map(TdxPolicy::to_file),
            sgx: self.sgx.as_ref().map(SgxPolicy::to_file),
            snp: self.snp.as_ref().map(SnpPolicy::to_file),
            claims: self.claims.as_ref().map(ClaimsPolicy::to_file),
            gpu: self.gpu.as_ref().map(GpuPolicy::to_file),
        }
    }

    /// The policy as TOML in canonical form: every default written out, allowlists sorted and
    /// deduplicated, hex in lower case. `Policy::from_toml(&p.to_toml()?) == p`.
    pub fn to_toml(&self) -> crate::Result<String> {
        toml::to_string(&self.to_file()).map_err(|e| Error::PolicyInvalid {
            reason: e.to_string(),
        })
    }

    /// SHA-256 over a domain tag and the canonical encoding of the policy (compact JSON of the
    /// canonical form, see [`Policy::to_toml`]). Two policies with the same meaning written
    /// differently (key order, list order, duplicates, hex case, defaults spelled out) have the
    /// same digest; any change of meaning changes it. Caches of decisions key on it.
    pub fn digest(&self) -> [u8; 32] {
        let mut hasher = Sha256::new();
        hasher.update(DIGEST_DOMAIN);
        match serde_json::to_vec(&self.to_file()) {
            Ok(encoded) => hasher.update(encoded),
            // Unreachable (the canonical form has only string keys); still distinct per policy.
            Err(_) => hasher.update(format!("debug:{self:?}").as_bytes()),
        }
        hasher.finalize().into()
    }

    /// Whether evidence signed by the simulated TEE's root is accepted.
    pub fn allow_simulated(&self) -> bool {
        self.allow_simulated
    }

    /// The default policy plus `allow_simulated = true` (only with feature `sim`).
    #[cfg(feature = "sim")]
    pub fn simulated() -> Self {
        Self {
            allow_simulated: true,
            ..Self::default()
        }
    }

    /// Accept or refuse simulated evidence (only with feature `sim`).
    #[cfg(feature = "sim")]
    pub fn with_allow_simulated(mut self, allow: bool) -> Self {
        self.allow_simulated = allow;
        self
    }

    pub fn tdx(&self) -> Option<&TdxPolicy> {
        self.tdx.as_ref()
    }
    pub fn sgx(&self) -> Option<&SgxPolicy> {
        self.sgx.as_ref()
    }
    pub fn snp(&self) -> Option<&SnpPolicy> {
        self.snp.as_ref()
    }
    pub fn claims(&self) -> Option<&ClaimsPolicy> {
        self.claims.as_ref()
    }
    pub fn gpu(&self) -> Option<&GpuPolicy> {
        self.gpu.as_ref()
    }

    /// Set or remove the `[gpu]` section.
    pub fn with_gpu(mut self, gpu: Option<GpuPolicy>) -> Self {
        self.gpu = gpu;
        self
    }

    /// Set or remove the `[tdx]` section.
    pub fn with_tdx(mut self, tdx: Option<TdxPolicy>) -> Self {
        self.tdx = tdx;
        self
    }
    /// Set or remove the `[sgx]` section.
    pub fn with_sgx(mut self, sgx: Option<SgxPolicy>) -> Self {
        self.sgx = sgx;
        self
    }
    /// Set or remove the `[snp]` section.
    pub fn with_snp(mut self, snp: Option<SnpPolicy>) -> Self {
        self.snp = snp;
        self
    }
    /// Set or remove the `[claims]` section.
    pub fn with_claims(mut self, claims: Option<ClaimsPolicy>) -> Self {
        self.claims = claims;
        self
    }

    fn has_sections(&self) -> bool {
        self.tdx.is_some() || self.sgx.is_some() || self.snp.is_some()
    }

    /// The root check shared by every platform.
    fn check_root(&self, root: TrustRoot, failures: &mut Vec<Error>) {
        if root == TrustRoot::Simulated && !self.allow_simulated {
            failures.push(Error::SimulatedEvidenceNotAllowed);
        }
    }

    /// The section for a platform: the policy's own, the default one when the policy has no
    /// section at all, or `None` (platform not allowed).
    fn section<'a, T: Clone>(&self, own: &'a Option<T>, default: T) -> Option<Cow<'a, T>> {
        match own {
            Some(section) => Some(Cow::Borrowed(section)),
            None if !self.has_sections() => Some(Cow::Owned(default)),
            None => None,
        }
    }

    /// Evaluate a verified TDX/SGX quote. Order: simulated root, platform, then the section's
    /// checks (see `docs/policy.md`).
    pub fn evaluate_tdx(&self, verified: &crate::tdx::VerifiedQuote) -> Decision {
        let mut failures = Vec::new();
        self.check_root(verified.root, &mut failures);
        match &verified.quote.body {
            crate::tdx::QuoteBody::SgxEnclave(report) => {
                match self.section(&self.sgx, SgxPolicy::default()) {
                    Some(sgx) => sgx.evaluate(verified, report, &mut failures),
                    None => failures.push(Error::PlatformNotAllowed {
                        platform: "SGX".into(),
                    }),
                }
            }
            body => match self.section(&self.tdx, TdxPolicy::default()) {
                Some(tdx) => tdx.evaluate(verified, body, &mut failures),
                None => failures.push(Error::PlatformNotAllowed {
                    platform: "TDX".into(),
                }),
            },
        }
        Decision { failures }
    }

    /// Evaluate a verified SEV-SNP report. Order: simulated root, platform, then the section's
    /// checks (see `docs/policy.md`).
    pub fn evaluate_snp(&self, verified: &crate::snp::VerifiedSnpReport) -> Decision {
        let mut failures = Vec::new();
        self.check_root(verified.root, &mut failures);
        match self.section(&self.snp, SnpPolicy::default()) {
            Some(snp) => snp.evaluate(verified, &mut failures),
            None => failures.push(Error::PlatformNotAllowed {
                platform: "SEV-SNP".into(),
            }),
        }
        Decision { failures }
    }

    /// Evaluate verified GPUs (`crate::gpu::verify`): each simulated GPU needs
    /// `allow_simulated`, then the `[gpu]` section's checks (`required`, architectures, minimum
    /// driver and VBIOS versions, golden measurements) per GPU. Without a `[gpu]` section only
    /// the simulated-root check applies, and no GPU at all is acceptable.
    pub fn evaluate_gpus(&self, gpus: &[crate::gpu::VerifiedGpu]) -> Decision {
        let mut failures = Vec::new();
        self.evaluate_gpus_into(gpus, &mut failures);
        Decision { failures }
    }

    /// [`Policy::evaluate_gpus`] appending to an existing list of failures (to combine with
    /// the CPU decision).
    pub fn evaluate_gpus_into(&self, gpus: &[crate::gpu::VerifiedGpu], failures: &mut Vec<Error>) {
        for gpu in gpus {
            if gpu.simulated {
                self.check_root(TrustRoot::Simulated, failures);
            }
        }
        if let Some(rules) = &self.gpu {
            rules.evaluate(gpus, failures);
        }
    }

    /// Evaluate the enclave's claims (already bound to verified evidence) against the
    /// `[claims]` section; without one, nothing is checked. Order: model_blake3,
    /// model_dm_verity_root, config_digest, require_hpke_key, max_claims_lifetime_secs.
    pub fn evaluate_claims(&self, claims: &crate::claims::Claims) -> Decision {
        let mut failures = Vec::new();
        if let Some(rules) = &self.claims {
            rules.evaluate(claims, &mut failures);
        }
        Decision { failures }
    }
}

// ------------------------------------------------------------------ shared helpers

fn invalid(reason: String) -> Error {
    Error::PolicyInvalid { reason }
}

/// Decode `N` bytes of hex (no prefix, either case), naming the key in the error.
fn parse_hex<const N: usize>(key: &str, text: &str) -> crate::Result<[u8; N]> {
    let bytes = hex::decode(text).map_err(|e| invalid(format!("{key}: not hex ({e})")))?;
    <[u8; N]>::try_from(bytes.as_slice()).map_err(|_| {
        invalid(format!(
            "{key}: expected {N} bytes ({} hex digits), got {} bytes",
            N.saturating_mul(2),
            bytes.len()
        ))
    })
}

/// A list of hex values as an allowlist (sorted, deduplicated). `None` stays `None`.
fn parse_hex_list<const N: usize>(
    key: &str,
    list: Option<Vec<String>>,
) -> crate::Result<Option<BTreeSet<[u8; N]>>> {
    list.map(|items| {
        items
            .iter()
            .enumerate()
            .map(|(i, s)| parse_hex::<N>(&format!("{key}[{i}]"), s))
            .collect()
    })
    .transpose()
}

fn hex_list<const N: usize>(set: &Option<BTreeSet<[u8; N]>>) -> Option<Vec<String>> {
    set.as_ref().map(|s| s.iter().map(hex::encode).collect())
}

/// An allowlist check: absent → no constraint, empty → denies, else membership.
fn check_allowlist<T: Ord>(
    field: &'static str,
    allowlist: &Option<BTreeSet<T>>,
    actual: &T,
    show: impl Fn(&T) -> String,
    failures: &mut Vec<Error>,
) {
    match allowlist {
        None => {}
        Some(list) if list.is_empty() => failures.push(Error::EmptyAllowlist { field }),
        Some(list) if list.contains(actual) => {}
        Some(_) => failures.push(Error::MeasurementNotAllowed {
            field,
            actual: show(actual),
        }),
    }
}

fn check_hex_allowlist<const N: usize>(
    field: &'static str,
    allowlist: &Option<BTreeSet<[u8; N]>>,
    actual: &[u8; N],
    failures: &mut Vec<Error>,
) {
    check_allowlist(field, allowlist, actual, |v| hex::encode(v), failures);
}
