//! Verification of RA-TLS certificates and fresh attestations, with a bounded cache.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::parse::RaTlsCertificate;
use super::{CarriedEvidence, CarriedGpuEvidence, EvidenceFormat};
use crate::claims::{Claims, ClaimsPlatform};
use crate::error::{Error, Result, Subject};
use crate::policy::Policy;
use crate::snp::{SnpVerifier, VerifiedSnpReport};
use crate::tdx::{Collateral, Quote, QuoteBody, TdxVerifier, VerifiedQuote};
use crate::TrustRoot;

/// Default [`VerifierConfig::max_lifetime_secs`]: 24 hours.
pub const DEFAULT_MAX_LIFETIME_SECS: i64 = 24 * 60 * 60;
/// Default [`VerifierConfig::cache_capacity`].
pub const DEFAULT_CACHE_CAPACITY: usize = 1024;
/// Largest [`FreshAttestation`] JSON accepted, in bytes.
pub const MAX_FRESH_ATTESTATION_JSON: usize = 256 * 1024;

/// Domain separation of the cache key.
const CACHE_DOMAIN: &[u8] = b"cocoon-ratls-cache-v1\0";

/// Where TDX collateral comes from. Implementations must not block for long: verification runs
/// inside TLS handshakes. A fetching implementation should cache and refresh in the background.
pub trait CollateralSource: Send + Sync + std::fmt::Debug {
    fn tdx_collateral(&self, quote: &Quote) -> Result<Arc<Collateral>>;
}

/// Collateral given up front (one per FMSPC); picks the one whose TCB info FMSPC is the quote
/// PCK certificate's.
#[derive(Debug, Clone)]
pub struct StaticCollateral {
    entries: Vec<([u8; 6], Arc<Collateral>)>,
}

fn collateral_fmspc(collateral: &Collateral) -> Result<[u8; 6]> {
    #[derive(Deserialize)]
    struct Info {
        fmspc: String,
    }
    let info: Info =
        serde_json::from_str(collateral.tcb_info_json()).map_err(|e| Error::Malformed {
            subject: Subject::TcbInfo,
            reason: format!("TCB info JSON: {e}"),
        })?;
    let bytes = hex::decode(&info.fmspc).map_err(|e| Error::Malformed {
        subject: Subject::TcbInfo,
        reason: format!("fmspc: {e}"),
    })?;
    <[u8; 6]>::try_from(bytes.as_slice()).map_err(|_| Error::Malformed {
        subject: Subject::TcbInfo,
        reason: format!("fmspc has {} bytes, expected 6", bytes.len()),
    })
}

impl StaticCollateral {
    /// One or more collaterals (each for the FMSPC of its TCB info).
    pub fn new(collaterals: Vec<Collateral>) -> Result<Self> {
        let entries = collaterals
            .into_iter()
            .map(|c| Ok((collateral_fmspc(&c)?, Arc::new(c))))
            .collect::<Result<Vec<_>>>()?;
        if entries.is_empty() {
            return Err(Error::CollateralNotFound {
                reason: "no collateral given".into(),
            });
        }
        Ok(Self { entries })
    }

    /// From dcap-qvl collateral JSON (as `cocoon-verify tdx --collateral` reads it).
    pub fn from_json(text: &str) -> Result<Self> {
        Self::new(vec![Collateral::from_json(text.as_bytes())?])
    }

    /// From several dcap-qvl collateral JSON documents.
    pub fn from_json_many(texts: &[&str]) -> Result<Self> {
        Self::new(
            texts
                .iter()
                .map(|t| Collateral::from_json(t.as_bytes()))
                .collect::<Result<Vec<_>>>()?,
        )
    }
}

impl CollateralSource for StaticCollateral {
    fn tdx_collateral(&self, quote: &Quote) -> Result<Arc<Collateral>> {
        let chain = quote.pck_chain_der()?;
        let leaf = chain.first().ok_or_else(|| Error::CollateralNotFound {
            reason: "the quote carries no PCK certificate".into(),
        })?;
        let ext = dcap_qvl::intel::parse_pck_extension(leaf).map_err(|e| {
            Error::CertificateMalformed {
                subject: Subject::PckCertificate,
                reason: format!("{e:#}"),
            }
        })?;
        self.entries
            .iter()
            .find(|(fmspc, _)| *fmspc == ext.fmspc)
            .map(|(_, c)| c.clone())
            .ok_or_else(|| Error::CollateralNotFound {
                reason: format!("none for FMSPC {}", hex::encode_upper(ext.fmspc)),
            })
    }
}

/// How an [`RaTlsVerifier`] judges certificates.
#[derive(Debug, Clone)]
pub struct VerifierConfig {
    pub policy: Policy,
    /// TDX collateral; `None` refuses TDX evidence ([`Error::CollateralNotFound`]).
    pub collateral: Option<Arc<dyn CollateralSource>>,
    /// Longest certificate lifetime accepted (notAfter − notBefore), default 24 h.
    pub max_lifetime_secs: i64,
    /// Most verification results kept (at least 1).
    pub cache_capacity: usize,
}

impl Default for VerifierConfig {
    fn default() -> Self {
        Self {
            policy: Policy::default(),
            collateral: None,
            max_lifetime_secs: DEFAULT_MAX_LIFETIME_SECS,
            cache_capacity: DEFAULT_CACHE_CAPACITY,
        }
    }
}

impl VerifierConfig {
    pub fn new(policy: Policy) -> Self {
        Self {
            policy,
            ..Self::default()
        }
    }

    pub fn with_collateral(mut self, collateral: Arc<dyn CollateralSource>) -> Self {
        self.collateral = Some(collateral);
        self
    }
}

/// Which certificate format a peer presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CertificateKind {
    /// COCOON's RA-TLS certificate (interop): TDX quote + user claims, no claims of ours.
    Cocoon,
    /// Ours (`docs/ratls.md`).
    Ours,
    /// No certificate: our evidence and claims verified outside any TLS handshake
    /// ([`RaTlsVerifier::verify_detached`]), e.g. fetched through a relay that terminates TLS.
    /// Nothing binds the channel to the enclave; only the claims' HPKE key reaches it.
    Detached,
}

/// The outcome of a successful verification: what the evidence, bound to the certificate's
/// key, says about the peer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifiedPeer {
    pub kind: CertificateKind,
    /// Our claims (bound to the evidence); `None` for COCOON certificates.
    pub claims: Option<Claims>,
    /// The platform of the evidence (simulated platforms are distinct).
    pub platform: ClaimsPlatform,
    pub simulated: bool,
    /// TDX: Intel's TCB status; SNP: `None`.
    pub tcb_status: Option<String>,
    pub advisory_ids: Vec<String>,
    /// Measured values, hex by name (the names of `cocoon-verify --json`): TDX `mrtd`,
    /// `rtmr0`..`rtmr3`, `mr_config_id`, `mr_owner`, `mr_owner_config`, `td_attributes`, `xfam`,
    /// `mr_seam`, `mr_signer_seam`, `seam_attributes`, `tee_tcb_svn` (+ `tee_tcb_svn2`,
    /// `mr_service_td` for TD 1.5); SGX `mr_enclave`, `mr_signer`, `attributes`; SNP
    /// `measurement`, `host_data`, `family_id`, `image_id`, `id_key_digest`,
    /// `author_key_digest`.
    pub measurements: BTreeMap<String, String>,
    /// REPORT_DATA of the evidence.
    pub report_data: [u8; 64],
    /// SHA-256 of the certificate's SubjectPublicKeyInfo.
    pub spki_sha256: [u8; 32],
    /// SHA-256 of the raw evidence (quote or report).
    pub evidence_sha256: [u8; 32],
    /// COCOON certificates: their user claims bytes.
    pub user_claims: Option<Vec<u8>>,
    /// The GPUs the claims commit to, each report verified to NVIDIA's root (or, with `sim` and
    /// `allow_simulated`, the simulated one) and bound to the claims by its SPDM nonce.
    pub gpus: Vec<crate::gpu::VerifiedGpu>,
    pub not_before: i64,
    pub not_after: i64,
    /// The result holds for `valid_from <= now <= valid_until` (certificate, claims and
    /// collateral windows intersected); the cache serves it only then.
    pub valid_from: i64,
    pub valid_until: i64,
}

impl VerifiedPeer {
    /// The verified GPUs as a human report: one `  gpu N  …` line each (empty without GPUs).
    pub fn gpus_text(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        for (i, g) in self.gpus.iter().enumerate() {
            let _ = writeln!(
                out,
                "  gpu {i:<13} {} driver {} vbios {} fwid {}{}",
                g.arch.name(),
                g.driver_version,
                g.vbios_version,
                hex::encode(&g.fwid),
                if g.simulated {
                    " (SIMULATED, not hardware)"
                } else {
                    ""
                }
            );
        }
        out
    }

    /// The verified GPUs in NVIDIA's claims shape (`VerifiedGpu::claims_json`).
    pub fn gpus_json(&self) -> serde_json::Value {
        serde_json::Value::Array(self.gpus.iter().map(|g| g.claims_json()).collect())
    }

    /// The first measurement that differs from `other`'s (by name), as an error.
    pub fn check_same_measurements(&self, other: &VerifiedPeer) -> Result<()> {
        check_same_measurements(&self.measurements, &other.measurements)
    }
}

fn check_same_measurements(
    before: &BTreeMap<String, String>,
    after: &BTreeMap<String, String>,
) -> Result<()> {
    for (name, old) in before {
        let new = after.get(name);
        if new != Some(old) {
            return Err(Error::MeasurementChanged {
                field: name.clone(),
                before: old.clone(),
                after: new.cloned().unwrap_or_else(|| "(absent)".into()),
            });
        }
    }
    for (name, new) in after {
        if !before.contains_key(name) {
            return Err(Error::MeasurementChanged {
                field: name.clone(),
                before: "(absent)".into(),
                after: new.clone(),
            });
        }
    }
    Ok(())
}

/// A response to a freshness request: new evidence for the peer's claims plus the client's
/// nonce.
///
/// JSON (`to_json`/`from_json`, at most [`MAX_FRESH_ATTESTATION_JSON`] bytes, unknown fields
/// refused): `{"version":1,"format":"tdx-quote"|"snp-report","evidence":B64,
/// "certificates":[B64,...],"claims":B64}` with standard padded base64.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FreshAttestation {
    pub evidence: CarriedEvidence,
    /// Canonical claims bytes, including the nonce.
    pub claims: Vec<u8>,
    /// The GPU reports these claims commit to (each signing their [`Claims::gpu_nonce`]).
    pub gpus: Vec<CarriedGpuEvidence>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct GpuJson {
    report: String,
    certificates: Vec<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FreshJson {
    version: u32,
    format: String,
    evidence: String,
    #[serde(default)]
    certificates: Vec<String>,
    claims: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    gpus: Vec<GpuJson>,
}

impl FreshAttestation {
    pub fn to_json(&self) -> String {
        let b64 = base64::engine::general_purpose::STANDARD;
        let doc = FreshJson {
            version: 1,
            format: self.evidence.format.as_str().into(),
            evidence: b64.encode(&self.evidence.evidence),
            certificates: self
                .evidence
                .certificates
                .iter()
                .map(|c| b64.encode(c))
                .collect(),
            claims: b64.encode(&self.claims),
            gpus: self
                .gpus
                .iter()
                .map(|g| GpuJson {
                    report: b64.encode(&g.report),
                    certificates: g.certificates.iter().map(|c| b64.encode(c)).collect(),
                })
                .collect(),
        };
        serde_json::to_string(&doc).unwrap_or_default()
    }

    pub fn from_json(text: &str) -> Result<Self> {
        if text.len() > MAX_FRESH_ATTESTATION_JSON {
            return Err(Error::InputTooLarge {
                subject: Subject::FreshAttestation,
                size: text.len(),
                limit: MAX_FRESH_ATTESTATION_JSON,
            });
        }
        let bad = |reason: String| Error::Malformed {
            subject: Subject::FreshAttestation,
            reason,
        };
        let doc: FreshJson = serde_json::from_str(text).map_err(|e| bad(format!("JSON: {e}")))?;
        if doc.version != 1 {
            return Err(bad(format!("version {} (this build reads 1)", doc.version)));
        }
        let format = EvidenceFormat::from_name(&doc.format)
            .ok_or_else(|| bad(format!("unknown format {:?}", doc.format)))?;
        if doc.certificates.len() > super::MAX_PLATFORM_CERTIFICATES {
            return Err(bad(format!(
                "{} certificates (at most {})",
                doc.certificates.len(),
                super::MAX_PLATFORM_CERTIFICATES
            )));
        }
        let b64 = base64::engine::general_purpose::STANDARD;
        let decode = |field: &str, v: &str| {
            b64.decode(v)
                .map_err(|e| bad(format!("{field}: base64: {e}")))
        };
        if doc.gpus.len() > super::MAX_GPU_REPORTS
            || doc.gpus.iter().any(|g| {
                g.certificates.is_empty() || g.certificates.len() > super::MAX_GPU_CERTIFICATES
            })
        {
            return Err(bad(format!(
                "gpus: at most {} reports, each with 1..={} certificates",
                super::MAX_GPU_REPORTS,
                super::MAX_GPU_CERTIFICATES
            )));
        }
        let mut gpus = Vec::with_capacity(doc.gpus.len());
        for g in &doc.gpus {
            gpus.push(CarriedGpuEvidence {
                report: decode("gpus.report", &g.report)?,
                certificates: g
                    .certificates
                    .iter()
                    .map(|c| decode("gpus.certificates", c))
                    .collect::<Result<Vec<_>>>()?,
            });
        }
        Ok(Self {
            gpus,
            evidence: CarriedEvidence {
                format,
                evidence: decode("evidence", &doc.evidence)?,
                certificates: doc
                    .certificates
                    .iter()
                    .map(|c| decode("certificates", c))
                    .collect::<Result<Vec<_>>>()?,
            },
            claims: decode("claims", &doc.claims)?,
        })
    }
}

// ------------------------------------------------------------------ cache

type CacheKey = ([u8; 32], [u8; 32]);

#[derive(Debug)]
struct CacheInner {
    map: HashMap<CacheKey, Arc<VerifiedPeer>>,
    order: VecDeque<CacheKey>,
}

/// A bounded cache of verification results keyed by (SHA-256 of the certificate, which holds
/// the evidence, the claims and the key; the policy digest). Entries are served only inside
/// their validity window; when full the oldest entry goes. Verifiers with different policies
/// may share one ([`RaTlsVerifier::with_policy`]): the policy digest keeps their results apart.
#[derive(Debug)]
pub struct VerificationCache {
    capacity: usize,
    inner: Mutex<CacheInner>,
}

impl VerificationCache {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            inner: Mutex::new(CacheInner {
                map: HashMap::new(),
                order: VecDeque::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, CacheInner> {
        match self.inner.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    fn get(&self, key: &CacheKey) -> Option<Arc<VerifiedPeer>> {
        self.lock().map.get(key).cloned()
    }

    fn put(&self, key: CacheKey, peer: Arc<VerifiedPeer>) {
        let mut inner = self.lock();
        if inner.map.insert(key, peer).is_none() {
            inner.order.push_back(key);
        }
        while inner.map.len() > self.capacity {
            match inner.order.pop_front() {
                Some(old) => {
                    inner.map.remove(&old);
                }
                None => break,
            }
        }
    }

    /// Number of cached results.
    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn clear(&self) {
        let mut inner = self.lock();
        inner.map.clear();
        inner.order.clear();
    }
}

// ------------------------------------------------------------------ verifier

/// The evidence verifiers (with their warm caches), shared by verifiers of different policies.
#[derive(Debug)]
struct Engines {
    tdx: TdxVerifier,
    snp: SnpVerifier,
    gpu: crate::gpu::GpuTrustAnchors,
}

impl Engines {
    fn new() -> Result<Self> {
        #[cfg(feature = "sim")]
        {
            Ok(Self {
                tdx: TdxVerifier::with_roots(crate::sim::tdx::anchors_with_intel()),
                snp: SnpVerifier::with_roots(crate::sim::snp::amd_roots_with_embedded()),
                gpu: crate::gpu::GpuTrustAnchors::with_simulated_root()?,
            })
        }
        #[cfg(not(feature = "sim"))]
        {
            Ok(Self {
                tdx: TdxVerifier::new(),
                snp: SnpVerifier::new(),
                gpu: crate::gpu::GpuTrustAnchors::nvidia()?,
            })
        }
    }
}

/// Evidence verified for authenticity (not yet judged by a policy).
enum Verified {
    Tdx(Box<VerifiedQuote>),
    Snp(Box<VerifiedSnpReport>),
}

impl Verified {
    fn root(&self) -> TrustRoot {
        match self {
            Self::Tdx(q) => q.root,
            Self::Snp(r) => r.root,
        }
    }

    fn platform(&self) -> ClaimsPlatform {
        let simulated = self.root() == TrustRoot::Simulated;
        match (self, simulated) {
            (Self::Tdx(q), false) if matches!(q.quote.body, QuoteBody::SgxEnclave(_)) => {
                ClaimsPlatform::Sgx
            }
            (Self::Tdx(_), false) => ClaimsPlatform::Tdx,
            (Self::Tdx(_), true) => ClaimsPlatform::SimulatedTdx,
            (Self::Snp(_), false) => ClaimsPlatform::SevSnp,
            (Self::Snp(_), true) => ClaimsPlatform::SimulatedSnp,
        }
    }

    fn report_data(&self) -> [u8; 64] {
        match self {
            Self::Tdx(q) => *q.quote.report_data(),
            Self::Snp(r) => r.report.report_data,
        }
    }

    /// Start and end of the window in which the evidence verified as it did.
    fn window(&self) -> (i64, i64) {
        match self {
            Self::Tdx(q) => (q.collateral_valid_from, q.collateral_valid_until),
            Self::Snp(_) => (i64::MIN, i64::MAX),
        }
    }

    fn check_claims(&self, claims: &Claims, now: i64, nonce: Option<&[u8]>) -> Result<()> {
        match self {
            Self::Tdx(q) => claims.check_tdx(q, now, nonce),
            Self::Snp(r) => claims.check_snp(r, now, nonce),
        }
    }

    /// The policy on the evidence and, for our certificates, on the claims (its `[claims]`
    /// section); every failure of both in one error.
    fn evaluate(&self, policy: &Policy, claims: Option<&Claims>) -> Result<()> {
        let mut failures = match self {
            Self::Tdx(q) => policy.evaluate_tdx(q),
            Self::Snp(r) => policy.evaluate_snp(r),
        }
        .failures;
        match claims {
            Some(claims) => failures.extend(policy.evaluate_claims(claims).failures),
            None if policy.claims().is_some() => failures.push(Error::UnsupportedEvidence {
                reason: "the policy has a [claims] section and the peer carries no claims \
                         of ours (COCOON certificate)"
                    .into(),
            }),
            None => {}
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(Error::PolicyRejected { failures })
        }
    }

    fn tcb(&self) -> (Option<String>, Vec<String>) {
        match self {
            Self::Tdx(q) => (Some(q.tcb_status.as_str().into()), q.advisory_ids.clone()),
            Self::Snp(_) => (None, Vec::new()),
        }
    }

    fn measurements(&self) -> BTreeMap<String, String> {
        let mut m = BTreeMap::new();
        let mut put = |name: &str, value: &[u8]| {
            m.insert(name.to_string(), hex::encode(value));
        };
        match self {
            Self::Tdx(q) => match &q.quote.body {
                QuoteBody::SgxEnclave(r) => {
                    put("mr_enclave", &r.mr_enclave);
                    put("mr_signer", &r.mr_signer);
                    put("attributes", &r.attributes);
                }
                body => {
                    if let Some(r) = q.quote.td_report() {
                        let names = ["rtmr0", "rtmr1", "rtmr2", "rtmr3"];
                        put("mrtd", &r.mr_td);
                        for (name, rtmr) in names.iter().zip(r.rt_mr.iter()) {
                            put(name, rtmr);
                        }
                        put("mr_config_id", &r.mr_config_id);
                        put("mr_owner", &r.mr_owner);
                        put("mr_owner_config", &r.mr_owner_config);
                        put("td_attributes", &r.td_attributes);
                        put("xfam", &r.xfam);
                        put("mr_seam", &r.mr_seam);
                        put("mr_signer_seam", &r.mr_signer_seam);
                        put("seam_attributes", &r.seam_attributes);
                        put("tee_tcb_svn", &r.tee_tcb_svn);
                    }
                    if let QuoteBody::Td15(r) = body {
                        put("tee_tcb_svn2", &r.tee_tcb_svn2);
                        put("mr_service_td", &r.mr_service_td);
                    }
                }
            },
            Self::Snp(r) => {
                let r = &r.report;
                put("measurement", &r.measurement);
                put("host_data", &r.host_data);
                put("family_id", &r.family_id);
                put("image_id", &r.image_id);
                put("id_key_digest", &r.id_key_digest);
                put("author_key_digest", &r.author_key_digest);
            }
        }
        m
    }
}

/// Verifies RA-TLS certificates against a policy and caches the results.
///
/// `Send + Sync`; share it in an `Arc` (the rustls verifiers do). Time is always an argument.
#[derive(Debug)]
pub struct RaTlsVerifier {
    policy: Policy,
    /// SHA-256 over the policy digest and the lifetime limit: the second half of cache keys.
    policy_digest: [u8; 32],
    collateral: Option<Arc<dyn CollateralSource>>,
    max_lifetime_secs: i64,
    engines: Arc<Engines>,
    cache: Arc<VerificationCache>,
}

fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// What decides a verdict besides the certificate: the policy and the lifetime limit.
fn judgement_digest(policy: &Policy, max_lifetime_secs: i64) -> [u8; 32] {
    sha256(&[
        b"cocoon-ratls-judgement-v1\0",
        &policy.digest(),
        &max_lifetime_secs.to_be_bytes(),
    ])
}

impl RaTlsVerifier {
    pub fn new(config: VerifierConfig) -> Result<Self> {
        let cache = Arc::new(VerificationCache::new(config.cache_capacity));
        Self::with_cache(config, cache)
    }

    /// A verifier using (and filling) a cache shared with other verifiers. Keys include the
    /// policy digest and the lifetime limit; verifiers sharing a cache must use the same
    /// collateral source.
    pub fn with_cache(config: VerifierConfig, cache: Arc<VerificationCache>) -> Result<Self> {
        if config.max_lifetime_secs <= 0 {
            return Err(Error::PolicyInvalid {
                reason: format!(
                    "max_lifetime_secs must be positive, is {}",
                    config.max_lifetime_secs
                ),
            });
        }
        Ok(Self {
            policy_digest: judgement_digest(&config.policy, config.max_lifetime_secs),
            policy: config.policy,
            collateral: config.collateral,
            max_lifetime_secs: config.max_lifetime_secs,
            engines: Arc::new(Engines::new()?),
            cache,
        })
    }

    /// The same verifier (collateral, lifetime, evidence caches, result cache) with another
    /// policy: results verified under the old policy are not served for the new one.
    pub fn with_policy(&self, policy: Policy) -> Self {
        Self {
            policy_digest: judgement_digest(&policy, self.max_lifetime_secs),
            policy,
            collateral: self.collateral.clone(),
            max_lifetime_secs: self.max_lifetime_secs,
            engines: self.engines.clone(),
            cache: self.cache.clone(),
        }
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    pub fn cache(&self) -> &Arc<VerificationCache> {
        &self.cache
    }

    pub fn max_lifetime_secs(&self) -> i64 {
        self.max_lifetime_secs
    }

    fn cache_key(&self, der: &[u8]) -> CacheKey {
        (sha256(&[CACHE_DOMAIN, der]), self.policy_digest)
    }

    /// Verify an RA-TLS certificate (ours or COCOON's) at `now` (unix seconds); see
    /// `docs/ratls.md` for the steps in order. Results are cached by (certificate hash, policy
    /// digest) and served only inside their validity window.
    pub fn verify_certificate(&self, end_entity_der: &[u8], now: i64) -> Result<Arc<VerifiedPeer>> {
        if end_entity_der.len() > super::MAX_CERTIFICATE_SIZE {
            return Err(Error::InputTooLarge {
                subject: Subject::RaTlsCertificate,
                size: end_entity_der.len(),
                limit: super::MAX_CERTIFICATE_SIZE,
            });
        }
        let key = self.cache_key(end_entity_der);
        if let Some(hit) = self.cache.get(&key) {
            if hit.valid_from <= now && now <= hit.valid_until {
                return Ok(hit);
            }
        }
        let peer = Arc::new(self.verify_uncached(end_entity_der, now)?);
        self.cache.put(key, peer.clone());
        Ok(peer)
    }

    /// The result of a successful [`verify_certificate`](Self::verify_certificate) of this
    /// certificate under this verifier's policy, while it is cached (what the application
    /// reads after a handshake; see [`super::peer_of`]).
    pub fn peer(&self, end_entity_der: &[u8]) -> Option<Arc<VerifiedPeer>> {
        if end_entity_der.len() > super::MAX_CERTIFICATE_SIZE {
            return None;
        }
        self.cache.get(&self.cache_key(end_entity_der))
    }

    fn verify_uncached(&self, der: &[u8], now: i64) -> Result<VerifiedPeer> {
        if super::cocoon::is_cocoon_certificate(der) {
            return self.verify_cocoon(der, now);
        }
        let cert = RaTlsCertificate::parse(der)?;

        // Certificate times and lifetime.
        let lifetime = cert.not_after().saturating_sub(cert.not_before());
        if lifetime > self.max_lifetime_secs {
            return Err(Error::CertificateLifetimeTooLong {
                lifetime_secs: lifetime,
                max_secs: self.max_lifetime_secs,
            });
        }
        if now < cert.not_before() {
            return Err(Error::CertificateNotYetValid {
                subject: Subject::RaTlsCertificate,
                not_before: cert.not_before(),
                now,
            });
        }
        if now > cert.not_after() {
            return Err(Error::CertificateExpired {
                subject: Subject::RaTlsCertificate,
                not_after: cert.not_after(),
                now,
            });
        }

        // The claims must name this certificate's key (cheap; before the evidence).
        let claims = cert.claims();
        if claims.tls_spki_sha256 != cert.spki_sha256() {
            return Err(Error::CertificateKeyMismatch {
                claims: hex::encode(claims.tls_spki_sha256),
                certificate: hex::encode(cert.spki_sha256()),
            });
        }

        // Evidence authenticity, then binding and claims times, then policy.
        let verified = self.verify_evidence(cert.evidence(), now)?;
        if verified.root() == TrustRoot::Simulated && !self.policy.allow_simulated() {
            return Err(Error::SimulatedEvidenceNotAllowed);
        }
        verified.check_claims(claims, now, None)?;
        verified.evaluate(&self.policy, Some(claims))?;
        let gpus = self.verify_gpus(claims, cert.gpu_evidence(), now)?;

        let (tcb_status, advisory_ids) = verified.tcb();
        let (evidence_from, evidence_until) = verified.window();
        // Claims are valid for created_at <= t < expires_at.
        let claims_until = claims.expires_at.saturating_sub(1);
        Ok(VerifiedPeer {
            kind: super::CertificateKind::Ours,
            platform: verified.platform(),
            simulated: verified.root() == TrustRoot::Simulated,
            tcb_status,
            advisory_ids,
            measurements: verified.measurements(),
            report_data: verified.report_data(),
            spki_sha256: cert.spki_sha256(),
            evidence_sha256: sha256(&[&cert.evidence().evidence]),
            user_claims: None,
            gpus,
            not_before: cert.not_before(),
            not_after: cert.not_after(),
            valid_from: cert.not_before().max(claims.created_at).max(evidence_from),
            valid_until: cert.not_after().min(claims_until).min(evidence_until),
            claims: Some(claims.clone()),
        })
    }

    /// COCOON interop: structure and self-signature ([`super::cocoon::CocoonCertificate::parse`]),
    /// lifetime and times, the quote with our TDX path, the binding (REPORT_DATA =
    /// SHA-512(user claims), user claims = the certificate's Ed25519 key), then the policy.
    fn verify_cocoon(&self, der: &[u8], now: i64) -> Result<VerifiedPeer> {
        let cert = super::cocoon::CocoonCertificate::parse(der)?;
        let lifetime = cert.not_after.saturating_sub(cert.not_before);
        if lifetime > self.max_lifetime_secs {
            return Err(Error::CertificateLifetimeTooLong {
                lifetime_secs: lifetime,
                max_secs: self.max_lifetime_secs,
            });
        }
        cert.check_time(now)?;
        let evidence = CarriedEvidence {
            format: EvidenceFormat::TdxQuote,
            evidence: cert.quote.clone(),
            certificates: Vec::new(),
        };
        let verified = self.verify_evidence(&evidence, now)?;
        if verified.root() == TrustRoot::Simulated && !self.policy.allow_simulated() {
            return Err(Error::SimulatedEvidenceNotAllowed);
        }
        cert.check_binding(&verified.report_data())?;
        verified.evaluate(&self.policy, None)?;
        // COCOON certificates carry no GPU evidence: a policy requiring a GPU refuses them.
        let failures = self.policy.evaluate_gpus(&[]).failures;
        if !failures.is_empty() {
            return Err(Error::PolicyRejected { failures });
        }
        let (tcb_status, advisory_ids) = verified.tcb();
        let (evidence_from, evidence_until) = verified.window();
        Ok(VerifiedPeer {
            kind: super::CertificateKind::Cocoon,
            claims: None,
            platform: verified.platform(),
            simulated: verified.root() == TrustRoot::Simulated,
            tcb_status,
            advisory_ids,
            measurements: verified.measurements(),
            report_data: verified.report_data(),
            spki_sha256: cert.spki_sha256,
            evidence_sha256: sha256(&[&cert.quote]),
            user_claims: Some(cert.user_claims.clone()),
            gpus: Vec::new(),
            not_before: cert.not_before,
            not_after: cert.not_after,
            valid_from: cert.not_before.max(evidence_from),
            valid_until: cert.not_after.min(evidence_until),
        })
    }

    /// Evidence authenticity (no policy): TDX with collateral from the source, SNP through the
    /// carried VCEK/VLEK (and ASK/ARK if carried, else the embedded ones).
    fn verify_evidence(&self, evidence: &CarriedEvidence, now: i64) -> Result<Verified> {
        match evidence.format {
            EvidenceFormat::TdxQuote => {
                let quote = Quote::parse(&evidence.evidence)?;
                let source = self
                    .collateral
                    .as_ref()
                    .ok_or_else(|| Error::CollateralNotFound {
                        reason: "the verifier has no collateral source".into(),
                    })?;
                let collateral = source.tdx_collateral(&quote)?;
                let verified = self.engines.tdx.verify(&quote, &collateral, now)?;
                Ok(Verified::Tdx(Box::new(verified)))
            }
            EvidenceFormat::SnpReport => {
                let (signer, chain) =
                    evidence
                        .certificates
                        .split_first()
                        .ok_or(Error::RaTlsExtensionMissing {
                            extension: super::format::PLATFORM_CERTIFICATES_NAME,
                        })?;
                let chain_pem = if chain.is_empty() {
                    None
                } else {
                    Some(
                        chain
                            .iter()
                            .map(|der| pem::encode(&pem::Pem::new("CERTIFICATE", der.clone())))
                            .collect::<String>(),
                    )
                };
                let verified = self.engines.snp.verify_bytes(
                    &evidence.evidence,
                    signer,
                    chain_pem.as_deref().map(str::as_bytes),
                    now,
                )?;
                Ok(Verified::Snp(Box::new(verified)))
            }
        }
    }

    /// Verify a fresh attestation from `peer` (verified before) answering `nonce`: the new
    /// evidence is authentic and accepted by the policy, its REPORT_DATA binds `response.claims`,
    /// those claims carry `nonce` and equal the peer's in every other field, and the
    /// measurements are the peer's.
    pub fn verify_fresh(
        &self,
        peer: &VerifiedPeer,
        response: &FreshAttestation,
        nonce: &[u8],
        now: i64,
    ) -> Result<Arc<VerifiedPeer>> {
        let before = peer
            .claims
            .as_ref()
            .ok_or_else(|| Error::UnsupportedEvidence {
                reason: "freshness requests need our claims (not a COCOON peer)".into(),
            })?;
        let claims = Claims::from_bytes(&response.claims)?;
        let verified = self.verify_evidence(&response.evidence, now)?;
        if verified.root() == TrustRoot::Simulated && !self.policy.allow_simulated() {
            return Err(Error::SimulatedEvidenceNotAllowed);
        }
        verified.check_claims(&claims, now, Some(nonce))?;
        check_same_claims(before, &claims)?;
        let measurements = verified.measurements();
        check_same_measurements(&peer.measurements, &measurements)?;
        verified.evaluate(&self.policy, Some(&claims))?;
        let gpus = self.verify_gpus(&claims, &response.gpus, now)?;
        let (tcb_status, advisory_ids) = verified.tcb();
        let (evidence_from, evidence_until) = verified.window();
        Ok(Arc::new(VerifiedPeer {
            kind: super::CertificateKind::Ours,
            platform: verified.platform(),
            simulated: verified.root() == TrustRoot::Simulated,
            tcb_status,
            advisory_ids,
            measurements,
            report_data: verified.report_data(),
            spki_sha256: peer.spki_sha256,
            evidence_sha256: sha256(&[&response.evidence.evidence]),
            user_claims: None,
            gpus,
            not_before: peer.not_before,
            not_after: peer.not_after,
            valid_from: peer.valid_from.max(evidence_from),
            valid_until: peer.valid_until.min(evidence_until),
            claims: Some(claims),
        }))
    }
}

impl RaTlsVerifier {
    /// Verifies a fresh attestation on its own, without a TLS peer: for clients that reach
    /// the enclave through a relay that terminates TLS (`docs/hpke.md`). The evidence is
    /// authentic and accepted by the policy, its REPORT_DATA binds `response.claims`, those
    /// claims carry `nonce` and are within their validity window at `now`. The result's
    /// `spki_sha256` is the claims' TLS key hash (no certificate was seen), its window the
    /// claims' and the evidence's intersected.
    ///
    /// Such a peer authenticates only what the claims name: the caller must seal request
    /// bodies to the claims' HPKE key, since the channel itself reaches whoever answered.
    pub fn verify_detached(
        &self,
        response: &FreshAttestation,
        nonce: &[u8],
        now: i64,
    ) -> Result<Arc<VerifiedPeer>> {
        let claims = Claims::from_bytes(&response.claims)?;
        let verified = self.verify_evidence(&response.evidence, now)?;
        if verified.root() == TrustRoot::Simulated && !self.policy.allow_simulated() {
            return Err(Error::SimulatedEvidenceNotAllowed);
        }
        verified.check_claims(&claims, now, Some(nonce))?;
        verified.evaluate(&self.policy, Some(&claims))?;
        let gpus = self.verify_gpus(&claims, &response.gpus, now)?;
        let (tcb_status, advisory_ids) = verified.tcb();
        let (evidence_from, evidence_until) = verified.window();
        let claims_until = claims.expires_at.saturating_sub(1);
        Ok(Arc::new(VerifiedPeer {
            kind: super::CertificateKind::Detached,
            platform: verified.platform(),
            simulated: verified.root() == TrustRoot::Simulated,
            tcb_status,
            advisory_ids,
            measurements: verified.measurements(),
            report_data: verified.report_data(),
            spki_sha256: claims.tls_spki_sha256,
            evidence_sha256: sha256(&[&response.evidence.evidence]),
            user_claims: None,
            gpus,
            not_before: claims.created_at,
            not_after: claims.expires_at,
            valid_from: claims.created_at.max(evidence_from),
            valid_until: claims_until.min(evidence_until),
            claims: Some(claims),
        }))
    }
}

impl RaTlsVerifier {
    /// The GPU reports `claims` commit to (`claims.gpu.count` of them, GPU `i` signing
    /// `claims.gpu_nonce(i)`), each verified to its root at `now`, then the policy's `[gpu]`.
    fn verify_gpus(
        &self,
        claims: &Claims,
        gpus: &[CarriedGpuEvidence],
        now: i64,
    ) -> Result<Vec<crate::gpu::VerifiedGpu>> {
        let committed = claims.gpu.map_or(0, |g| usize::from(g.count));
        if gpus.len() != committed {
            return Err(Error::GpuEvidenceCountMismatch {
                committed,
                carried: gpus.len(),
            });
        }
        let mut verified = Vec::with_capacity(gpus.len());
        for (i, gpu) in gpus.iter().enumerate() {
            let index = u8::try_from(i).map_err(|_| Error::GpuEvidenceCountMismatch {
                committed,
                carried: gpus.len(),
            })?;
            let v = crate::gpu::verify(
                &gpu.report,
                &gpu.certificates,
                &self.engines.gpu,
                Some(&claims.gpu_nonce(index)),
                now,
            )?;
            if v.simulated && !self.policy.allow_simulated() {
                return Err(Error::SimulatedEvidenceNotAllowed);
            }
            verified.push(v);
        }
        let failures = self.policy.evaluate_gpus(&verified).failures;
        if !failures.is_empty() {
            return Err(Error::PolicyRejected { failures });
        }
        Ok(verified)
    }
}

/// Every field but the nonce must be equal.
fn check_same_claims(before: &Claims, after: &Claims) -> Result<()> {
    let changed = if before.platform != after.platform {
        Some("platform")
    } else if before.tls_spki_sha256 != after.tls_spki_sha256 {
        Some("tls_spki_sha256")
    } else if before.hpke_public_key != after.hpke_public_key {
        Some("hpke_public_key")
    } else if before.model != after.model {
        Some("model")
    } else if before.config_digest != after.config_digest {
        Some("config_digest")
    } else if before.created_at != after.created_at {
        Some("created_at")
    } else if before.expires_at != after.expires_at {
        Some("expires_at")
    } else if before.gpu != after.gpu {
        Some("gpu")
    } else {
        None
    };
    match changed {
        Some(field) => Err(Error::FreshClaimsChanged { field }),
        None => Ok(()),
    }
}
