//! Verification of SEV-SNP reports: signature over the raw bytes, VCEK/VLEK → ASK/ASVK → ARK.
//!
//! Positions in [`Error::CertificateSignatureInvalid`]: 0 = VCEK/VLEK, 1 = ASK/ASVK, 2 = ARK.

use p384::ecdsa::signature::DigestVerifier;
use sha2::{Digest, Sha384};
use std::sync::OnceLock;

use super::certs::Cert;
use super::report::{SnpReport, REPORT_LEN, SIGNED_LEN};
use super::{Generation, SigningKey, TcbParts};
use crate::error::{Error, Result, Subject};
use crate::TrustRoot;

/// Verified claims of an SNP report: only [`verify`](self) functions construct this.
/// `non_exhaustive` seals it: other crates cannot construct verified claims.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
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

/// The AMD roots (ARK, with ASK and ASVK) of each generation. Fields are private: production code
/// gets the embedded roots; the simulated roots exist only with feature `sim`.
#[derive(Debug, Clone)]
pub struct AmdRoots {
    sets: Vec<AmdRootSet>,
}

/// One generation's root set: the self-signed ARK, the ASK (VCEK issuer) and optionally the ASVK
/// (VLEK issuer), all DER.
///
/// Requirements on a set (checked when a verifier is built, reported when it is used): the ARK
/// is self-signed, the ASK/ASVK are signed by it, all with RSASSA-PSS SHA-384 (salt 48) and
/// RSA keys of at most 4096 bits; ARK and ASK/ASVK carry basicConstraints cA=TRUE (keyUsage,
/// where present, with keyCertSign). Leaves must be P-384; a leaf's productName extension,
/// where present, must name `generation` (`Milan-B0`, `Genoa`, `Turin`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmdRootSet {
    pub(crate) kind: TrustRoot,
    pub(crate) generation: Generation,
    pub(crate) ark_der: Vec<u8>,
    pub(crate) ask_der: Vec<u8>,
    pub(crate) asvk_der: Option<Vec<u8>>,
}

impl AmdRootSet {
    pub fn kind(&self) -> TrustRoot {
        self.kind
    }
    pub fn generation(&self) -> Generation {
        self.generation
    }
    pub fn ark_der(&self) -> &[u8] {
        &self.ark_der
    }
    pub fn ask_der(&self) -> &[u8] {
        &self.ask_der
    }
    pub fn asvk_der(&self) -> Option<&[u8]> {
        self.asvk_der.as_deref()
    }
}

impl AmdRoots {
    /// The ARK/ASK/ASVK of Milan, Genoa and Turin embedded in this crate.
    pub fn embedded() -> Self {
        Self {
            sets: super::roots::EMBEDDED
                .iter()
                .map(|e| AmdRootSet {
                    kind: TrustRoot::Amd,
                    generation: e.generation,
                    ark_der: e.ark.to_vec(),
                    ask_der: e.ask.to_vec(),
                    asvk_der: Some(e.asvk.to_vec()),
                })
                .collect(),
        }
    }

    /// Crate-internal: roots from explicit sets (the `sim` module adds its simulated set).
    #[allow(dead_code)]
    pub(crate) fn from_sets(sets: Vec<AmdRootSet>) -> Self {
        Self { sets }
    }

    /// The root sets, for reports.
    pub fn sets(&self) -> &[AmdRootSet] {
        &self.sets
    }
}

/// A parsed CA certificate (ARK, ASK, ASVK) with its RSA-PSS verifying key.
#[derive(Debug, Clone)]
struct CaCert {
    cert: Cert,
    key: rsa::pss::VerifyingKey<Sha384>,
}

impl CaCert {
    fn parse(der: &[u8], subject: Subject) -> Result<Self> {
        let cert = Cert::from_der(der, subject)?;
        let key = cert.rsa_pss_key(subject)?;
        Ok(Self { cert, key })
    }
}

/// Which CA issued the leaf, and so what the leaf is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// ASK → VCEK.
    Ask,
    /// ASVK → VLEK.
    Asvk,
}

impl Role {
    fn ca_subject(self) -> Subject {
        match self {
            Self::Ask => Subject::Ask,
            Self::Asvk => Subject::Asvk,
        }
    }
    fn leaf_subject(self) -> Subject {
        match self {
            Self::Ask => Subject::Vcek,
            Self::Asvk => Subject::Vlek,
        }
    }
    fn signing_key(self) -> SigningKey {
        match self {
            Self::Ask => SigningKey::Vcek,
            Self::Asvk => SigningKey::Vlek,
        }
    }
}

/// A root set parsed when the verifier is built; its signatures and CA profiles are checked
/// on first use and the outcome kept (they do not depend on time, so a verifier built once
/// pays for them once, and one built per call only for the generation it meets).
#[derive(Debug, Clone)]
struct PreparedSet {
    kind: TrustRoot,
    generation: Generation,
    ark: CaCert,
    ask: CaCert,
    asvk: Option<CaCert>,
    ark_checked: OnceLock<Result<()>>,
    ask_checked: OnceLock<Result<()>>,
    asvk_checked: OnceLock<Result<()>>,
}

impl PreparedSet {
    fn new(set: &AmdRootSet) -> Result<Self> {
        let ark = CaCert::parse(&set.ark_der, Subject::Ark)?;
        if !ark.cert.is_self_issued() {
            return Err(Error::CertificateChainInvalid {
                subject: Subject::Ark,
                reason: "the ARK is not self-issued".into(),
            });
        }
        let ask = CaCert::parse(&set.ask_der, Subject::Ask)?;
        let asvk = set
            .asvk_der
            .as_deref()
            .map(|der| CaCert::parse(der, Subject::Asvk))
            .transpose()?;
        Ok(Self {
            kind: set.kind,
            generation: set.generation,
            ark,
            ask,
            asvk,
            ark_checked: OnceLock::new(),
            ask_checked: OnceLock::new(),
            asvk_checked: OnceLock::new(),
        })
    }

    /// The ARK: a CA, self-signed.
    fn check_ark(&self) -> Result<()> {
        self.ark_checked
            .get_or_init(|| {
                let ark = &self.ark;
                ark.cert.require_ca(Subject::Ark, 2)?;
                ark.cert
                    .verify_issued_by(&ark.cert, &ark.key, Subject::Ark, 2)
            })
            .clone()
    }

    /// The set's own ASK or ASVK (and the ARK above it).
    fn check_own(&self, role: Role) -> Result<()> {
        self.check_ark()?;
        match role {
            Role::Ask => self
                .ask_checked
                .get_or_init(|| check_ca_under(&self.ask.cert, &self.ark, Subject::Ask))
                .clone(),
            Role::Asvk => match &self.asvk {
                Some(asvk) => self
                    .asvk_checked
                    .get_or_init(|| check_ca_under(&asvk.cert, &self.ark, Subject::Asvk))
                    .clone(),
                None => Err(Error::UntrustedRoot {
                    subject: Subject::Asvk,
                }),
            },
        }
    }

    /// The set's own ASK or ASVK whose subject issued `leaf` (by name only).
    fn issuer_of(&self, leaf: &Cert) -> Option<(&CaCert, Role)> {
        if self.ask.cert.subject_name() == leaf.issuer_name() {
            return Some((&self.ask, Role::Ask));
        }
        self.asvk
            .as_ref()
            .filter(|asvk| asvk.cert.subject_name() == leaf.issuer_name())
            .map(|asvk| (asvk, Role::Asvk))
    }
}

/// An ASK/ASVK: a CA signed by the ARK.
fn check_ca_under(cert: &Cert, ark: &CaCert, subject: Subject) -> Result<()> {
    cert.require_ca(subject, 1)?;
    cert.verify_issued_by(&ark.cert, &ark.key, subject, 1)
}

/// Upper bound for `chain_pem` (a KDS bundle is ~7 KiB).
const MAX_CHAIN_PEM_LEN: usize = 64 * 1024;
/// A KDS bundle holds ASK, ARK and possibly ASVK.
const MAX_CHAIN_CERTS: usize = 3;

/// Split a PEM bundle into DER certificates: only CERTIFICATE blocks and whitespace.
fn pem_certificates(pem: &[u8]) -> Result<Vec<Vec<u8>>> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let bad = |reason: &str| Error::Malformed {
        subject: Subject::Certificate,
        reason: format!("certificate chain PEM: {reason}"),
    };
    if pem.len() > MAX_CHAIN_PEM_LEN {
        return Err(Error::InputTooLarge {
            subject: Subject::Certificate,
            size: pem.len(),
            limit: MAX_CHAIN_PEM_LEN,
        });
    }
    let mut rest = std::str::from_utf8(pem).map_err(|_| bad("not UTF-8"))?;
    let mut out = Vec::new();
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            break;
        }
        if !rest.starts_with(BEGIN) {
            return Err(bad("text outside CERTIFICATE blocks"));
        }
        let end = rest
            .find(END)
            .and_then(|i| i.checked_add(END.len()))
            .ok_or_else(|| bad("missing END CERTIFICATE"))?;
        let (block, tail) = (
            rest.get(..end).ok_or_else(|| bad("bad block"))?,
            rest.get(end..).ok_or_else(|| bad("bad block"))?,
        );
        let (label, der) = x509_cert_02::der::pem::decode_vec(block.as_bytes())
            .map_err(|e| bad(&format!("invalid PEM block: {e}")))?;
        if label != "CERTIFICATE" {
            return Err(bad("not a CERTIFICATE block"));
        }
        out.push(der);
        if out.len() > MAX_CHAIN_CERTS {
            return Err(bad("more than 3 certificates"));
        }
        rest = tail;
    }
    if out.is_empty() {
        return Err(bad("no certificate"));
    }
    Ok(out)
}

/// A VCEK/VLEK given as PEM (as KDS tools save it) instead of DER: its DER, or `None` when
/// the input does not start with a PEM boundary.
fn single_pem_certificate(input: &[u8]) -> Result<Option<Vec<u8>>> {
    let trimmed = input.trim_ascii_start();
    if !trimmed.starts_with(b"-----BEGIN") {
        return Ok(None);
    }
    let mut certs = pem_certificates(trimmed)?;
    match (certs.pop(), certs.is_empty()) {
        (Some(der), true) => Ok(Some(der)),
        _ => Err(Error::Malformed {
            subject: Subject::Certificate,
            reason: "expected one VCEK/VLEK certificate".into(),
        }),
    }
}

/// Verifies SEV-SNP reports against the AMD roots.
#[derive(Debug, Clone)]
pub struct SnpVerifier {
    roots: AmdRoots,
    /// Each root set parsed and its signatures checked once (signatures do not depend on
    /// time; validity is checked on every verification).
    prepared: Vec<Result<PreparedSet>>,
}

impl Default for SnpVerifier {
    fn default() -> Self {
        Self::new()
    }
}

/// A VCEK/VLEK chain verified without a report ([`SnpVerifier::verify_chain`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifiedChain {
    pub generation: Generation,
    /// [`SigningKey::Vcek`] when issued by an ASK, [`SigningKey::Vlek`] by an ASVK.
    pub key_type: SigningKey,
    pub root: TrustRoot,
    /// The SPLs in the certificate (missing ones read as 0).
    pub certified_tcb: TcbParts,
    /// The VCEK's hwID (64 bytes Milan/Genoa, 8 bytes Turin); `None` for a VLEK.
    pub hw_id: Option<Vec<u8>>,
    pub not_before: i64,
    pub not_after: i64,
}

/// A leaf verified up to a root set.
struct CheckedChain<'a> {
    set: &'a PreparedSet,
    role: Role,
    leaf: Cert,
    ext: super::certs::VekExtensions,
}

/// The chain a leaf was matched to.
struct ResolvedChain<'a> {
    set: &'a PreparedSet,
    /// The ASK/ASVK: the set's own, or an equal or newer one from `chain_pem`.
    issuer: std::borrow::Cow<'a, CaCert>,
    role: Role,
}

impl SnpVerifier {
    pub fn new() -> Self {
        Self::with_roots(AmdRoots::embedded())
    }

    pub fn with_roots(roots: AmdRoots) -> Self {
        let prepared = roots.sets.iter().map(PreparedSet::new).collect();
        Self { roots, prepared }
    }

    /// The roots this verifier trusts.
    pub fn roots(&self) -> &AmdRoots {
        &self.roots
    }

    /// Parse `report_bytes` (binary, exactly 0x4A0 bytes) and [`verify`](Self::verify) it.
    pub fn verify_bytes(
        &self,
        report_bytes: &[u8],
        signer_der: &[u8],
        chain_pem: Option<&[u8]>,
        now: i64,
    ) -> Result<VerifiedSnpReport> {
        let report = SnpReport::parse(report_bytes)?;
        self.verify(&report, signer_der, chain_pem, now)
    }

    /// Verify `report` signed by the VCEK/VLEK `signer_der` at `now` (unix seconds).
    /// `signer_der` is DER (as KDS serves it); a single PEM certificate is accepted too.
    /// `chain_pem` optionally gives the ASK/ASVK (+ ARK) as PEM; otherwise the embedded ones
    /// of the certificate's generation are used.
    ///
    /// With `chain_pem`, its ARK must be byte-equal to the ARK of one of the verifier's root
    /// sets ([`Error::UntrustedRoot`] otherwise); its ASK/ASVK is then checked under that ARK.
    pub fn verify(
        &self,
        report: &SnpReport,
        signer_der: &[u8],
        chain_pem: Option<&[u8]>,
        now: i64,
    ) -> Result<VerifiedSnpReport> {
        // The public fields of `report` could disagree with its signed bytes; every check
        // below uses the report as re-read from the bytes the signature covers.
        let report = reparse(report)?;
        let leaf_subject = match report.signing_key {
            SigningKey::Vlek => Subject::Vlek,
            SigningKey::Vcek | SigningKey::None => Subject::Vcek,
        };
        let checked = self.check_chain(signer_der, chain_pem, now, leaf_subject)?;
        let generation = checked.set.generation;
        let leaf_subject = checked.role.leaf_subject();

        if let (Some(family), Some(model)) = (report.cpuid_fam_id, report.cpuid_mod_id) {
            let named = Generation::from_cpuid(family, model).ok_or_else(|| {
                Error::UnknownProcessorGeneration {
                    reason: format!("CPUID family {family:#x} model {model:#x}"),
                }
            })?;
            check_generation(generation, named)?;
        }

        // The report must name the key type the chain certifies.
        if report.signing_key != checked.role.signing_key() {
            return Err(Error::SigningKeyMismatch {
                reason: format!(
                    "the report's SIGNING_KEY is {:?} but the certificate is a {leaf_subject}",
                    report.signing_key
                ),
            });
        }

        // MASK_CHIP_KEY = 1: the firmware writes zeros instead of signing (ABI spec,
        // SNP_CONFIG/SNP_INIT_EX MASK_CHIP_KEY), so no key signed this report.
        if report.mask_chip_key {
            return Err(Error::SigningKeyMismatch {
                reason: "MASK_CHIP_KEY is set: the firmware does not sign such reports".into(),
            });
        }

        let reported_tcb = report.reported_tcb.parts(generation);
        check_tcb_against_certificate(&reported_tcb, &checked.ext, generation, leaf_subject)?;

        // CHIP_ID is all zeros when the platform sets MASK_CHIP_ID; the signature by the
        // chip-unique VCEK still binds the report to the chip. A VLEK has no hwID.
        if checked.role == Role::Ask && report.chip_id != [0u8; 64] {
            check_chip_id(&report.chip_id, &checked.ext, generation)?;
        }

        let current_tcb = report.current_tcb.parts(generation);
        let committed_tcb = report.committed_tcb.parts(generation);
        let launch_tcb = report.launch_tcb.parts(generation);
        if let Some((name, a, b)) = committed_tcb.first_component_above(&current_tcb) {
            return Err(Error::TcbOrderingViolated {
                reason: format!("committed TCB {name} {a} > current TCB {name} {b}"),
            });
        }
        if let Some((name, a, b)) = launch_tcb.first_component_above(&current_tcb) {
            return Err(Error::TcbOrderingViolated {
                reason: format!("launch TCB {name} {a} > current TCB {name} {b}"),
            });
        }

        verify_report_signature(&report, &checked.leaf, leaf_subject)?;

        Ok(VerifiedSnpReport {
            generation,
            signing_key: report.signing_key,
            root: checked.set.kind,
            reported_tcb,
            current_tcb,
            committed_tcb,
            launch_tcb,
            report,
        })
    }

    /// Verify only the certificate chain of a VCEK/VLEK at `now` (as in
    /// [`verify`](Self::verify), without a report): which generation, which key type, which
    /// root, and the TCB the certificate was issued for.
    pub fn verify_chain(
        &self,
        signer_der: &[u8],
        chain_pem: Option<&[u8]>,
        now: i64,
    ) -> Result<VerifiedChain> {
        let checked = self.check_chain(signer_der, chain_pem, now, Subject::Vcek)?;
        let ext = &checked.ext;
        Ok(VerifiedChain {
            generation: checked.set.generation,
            key_type: checked.role.signing_key(),
            root: checked.set.kind,
            certified_tcb: TcbParts {
                fmc: ext.fmc_spl,
                bootloader: ext.bl_spl.unwrap_or(0),
                tee: ext.tee_spl.unwrap_or(0),
                snp: ext.snp_spl.unwrap_or(0),
                microcode: ext.ucode_spl.unwrap_or(0),
            },
            hw_id: ext.hw_id.clone(),
            not_before: checked.leaf.not_before,
            not_after: checked.leaf.not_after,
        })
    }

    /// The chain: leaf ← ASK/ASVK ← ARK (pinned), generation agreement of leaf and chain,
    /// signatures, then validity at `now` (leaf first).
    fn check_chain(
        &self,
        signer_der: &[u8],
        chain_pem: Option<&[u8]>,
        now: i64,
        leaf_subject: Subject,
    ) -> Result<CheckedChain<'_>> {
        let leaf = match single_pem_certificate(signer_der)? {
            Some(der) => Cert::from_der(&der, leaf_subject)?,
            None => Cert::from_der(signer_der, leaf_subject)?,
        };
        let ext = leaf.vek_extensions(leaf_subject)?;
        let chain = match chain_pem {
            Some(pem) => self.resolve_with_pem(&leaf, pem, leaf_subject)?,
            None => self.resolve_embedded(&leaf, leaf_subject)?,
        };
        // A fresh intermediate from `chain_pem` was checked under the ARK when resolved;
        // the set's own are checked (once) here.
        if let std::borrow::Cow::Borrowed(_) = chain.issuer {
            chain.set.check_own(chain.role)?;
        }
        let generation = chain.set.generation;
        let leaf_subject = chain.role.leaf_subject();

        // The chain's root set decides the generation; the leaf's product name and issuer
        // name must agree with it.
        if let Some(name) = &ext.product_name {
            let named = Generation::from_product_name(name).ok_or_else(|| {
                Error::UnknownProcessorGeneration {
                    reason: format!("{leaf_subject} productName {name:?}"),
                }
            })?;
            check_generation(generation, named)?;
        }
        if let Some(named) = leaf
            .issuer_cn()
            .as_deref()
            .and_then(Generation::from_ca_common_name)
        {
            check_generation(generation, named)?;
        }

        leaf.require_leaf(leaf_subject)?;
        leaf.verify_issued_by(&chain.issuer.cert, &chain.issuer.key, leaf_subject, 0)?;
        leaf.check_validity(now, leaf_subject)?;
        chain
            .issuer
            .cert
            .check_validity(now, chain.role.ca_subject())?;
        chain.set.ark.cert.check_validity(now, Subject::Ark)?;
        Ok(CheckedChain {
            set: chain.set,
            role: chain.role,
            leaf,
            ext,
        })
    }

    /// The first prepared set whose ASK/ASVK issued the leaf (by name); with several
    /// candidates, the first whose key verifies the leaf.
    fn resolve_embedded(&self, leaf: &Cert, leaf_subject: Subject) -> Result<ResolvedChain<'_>> {
        let mut first_error = None;
        let mut candidates = Vec::new();
        for prepared in &self.prepared {
            match prepared {
                Ok(set) => {
                    if let Some((ca, role)) = set.issuer_of(leaf) {
                        candidates.push(ResolvedChain {
                            set,
                            issuer: std::borrow::Cow::Borrowed(ca),
                            role,
                        });
                    }
                }
                Err(e) => {
                    first_error.get_or_insert_with(|| e.clone());
                }
            }
        }
        if candidates.len() > 1 {
            if let Some(i) = candidates.iter().position(|c| {
                leaf.verify_issued_by(&c.issuer.cert, &c.issuer.key, leaf_subject, 0)
                    .is_ok()
            }) {
                return Ok(candidates.swap_remove(i));
            }
        }
        candidates.into_iter().next().ok_or_else(|| {
            first_error.unwrap_or(Error::UntrustedRoot {
                subject: leaf_subject,
            })
        })
    }

    /// The chain from `chain_pem`: its ARK pinned to a root set; its ASK/ASVK (or the set's
    /// own) as the leaf's issuer.
    fn resolve_with_pem(
        &self,
        leaf: &Cert,
        pem: &[u8],
        leaf_subject: Subject,
    ) -> Result<ResolvedChain<'_>> {
        let certs = pem_certificates(pem)?
            .iter()
            .map(|der| Cert::from_der(der, Subject::Certificate))
            .collect::<Result<Vec<_>>>()?;
        let mut arks = certs.iter().filter(|c| c.is_self_issued());
        let ark = arks.next().ok_or_else(|| Error::CertificateChainInvalid {
            subject: Subject::Ark,
            reason: "the chain has no self-signed ARK".into(),
        })?;
        if arks.next().is_some() {
            return Err(Error::CertificateChainInvalid {
                subject: Subject::Ark,
                reason: "the chain has more than one self-signed certificate".into(),
            });
        }
        let set = self
            .prepared
            .iter()
            .filter_map(|p| p.as_ref().ok())
            .find(|set| set.ark.cert.der == ark.der)
            .ok_or(Error::UntrustedRoot {
                subject: Subject::Ark,
            })?;

        // A leaf of another generation than the pinned ARK is named as such before any
        // name or signature mismatch.
        if let Some(named) = leaf
            .vek_extensions(leaf_subject)?
            .product_name
            .as_deref()
            .and_then(Generation::from_product_name)
        {
            check_generation(set.generation, named)?;
        }

        let issuer = certs
            .iter()
            .filter(|c| !c.is_self_issued())
            .find(|c| c.subject_name() == leaf.issuer_name());
        let Some(issuer) = issuer else {
            // The bundle may carry only the ARK (or the other intermediate): use the set's.
            let (ca, role) = set
                .issuer_of(leaf)
                .ok_or_else(|| Error::CertificateChainInvalid {
                    subject: leaf_subject,
                    reason: format!(
                        "no certificate in the chain is the issuer {:?}",
                        leaf.issuer_cn().unwrap_or_default()
                    ),
                })?;
            return Ok(ResolvedChain {
                set,
                issuer: std::borrow::Cow::Borrowed(ca),
                role,
            });
        };
        if issuer.der == set.ask.cert.der {
            return Ok(ResolvedChain {
                set,
                issuer: std::borrow::Cow::Borrowed(&set.ask),
                role: Role::Ask,
            });
        }
        if let Some(asvk) = set.asvk.as_ref().filter(|a| a.cert.der == issuer.der) {
            return Ok(ResolvedChain {
                set,
                issuer: std::borrow::Cow::Borrowed(asvk),
                role: Role::Asvk,
            });
        }
        // An intermediate other than the embedded ones (a reissued ASK): check it under the
        // pinned ARK. AMD names the VLEK issuer `SEV-VLEK-<generation>`.
        let role = if issuer
            .subject_cn()
            .is_some_and(|cn| cn.to_ascii_uppercase().contains("VLEK"))
        {
            Role::Asvk
        } else {
            Role::Ask
        };
        set.check_ark()?;
        let fresh = CaCert::parse(&issuer.der, role.ca_subject())?;
        check_ca_under(&fresh.cert, &set.ark, role.ca_subject())?;
        Ok(ResolvedChain {
            set,
            issuer: std::borrow::Cow::Owned(fresh),
            role,
        })
    }
}

/// The report re-read from its signed bytes and signature, which must equal the given one.
fn reparse(report: &SnpReport) -> Result<SnpReport> {
    let mut bytes = Vec::with_capacity(REPORT_LEN);
    bytes.extend_from_slice(&report.signed_bytes);
    if bytes.len() != SIGNED_LEN {
        return Err(Error::Malformed {
            subject: Subject::SnpReport,
            reason: format!("signed bytes are {} bytes, not {SIGNED_LEN}", bytes.len()),
        });
    }
    bytes.extend_from_slice(&report.signature_r);
    bytes.extend_from_slice(&report.signature_s);
    bytes.resize(REPORT_LEN, 0);
    let reparsed = SnpReport::parse(&bytes)?;
    if reparsed != *report {
        return Err(Error::Malformed {
            subject: Subject::SnpReport,
            reason: "report fields differ from the signed bytes".into(),
        });
    }
    Ok(reparsed)
}

fn check_generation(chain: Generation, named: Generation) -> Result<()> {
    if chain != named {
        return Err(Error::GenerationMismatch {
            expected: chain.as_str().into(),
            actual: named.as_str().into(),
        });
    }
    Ok(())
}

/// reported_tcb must be the TCB the VCEK/VLEK was issued for: each SPL equal.
fn check_tcb_against_certificate(
    reported: &TcbParts,
    ext: &super::certs::VekExtensions,
    generation: Generation,
    subject: Subject,
) -> Result<()> {
    let missing = |name: &str| Error::CertificateMalformed {
        subject,
        reason: format!("missing {name} extension"),
    };
    let mut pairs = vec![
        (
            "bootloader",
            reported.bootloader,
            ext.bl_spl.ok_or_else(|| missing("blSPL"))?,
        ),
        (
            "tee",
            reported.tee,
            ext.tee_spl.ok_or_else(|| missing("teeSPL"))?,
        ),
        (
            "snp",
            reported.snp,
            ext.snp_spl.ok_or_else(|| missing("snpSPL"))?,
        ),
        (
            "microcode",
            reported.microcode,
            ext.ucode_spl.ok_or_else(|| missing("ucodeSPL"))?,
        ),
    ];
    if generation == Generation::Turin {
        pairs.insert(
            0,
            (
                "fmc",
                reported.fmc.unwrap_or(0),
                ext.fmc_spl.ok_or_else(|| missing("fmcSPL"))?,
            ),
        );
    }
    for (field, report, certificate) in pairs {
        if report != certificate {
            return Err(Error::TcbVersionMismatch {
                field,
                report,
                certificate,
            });
        }
    }
    Ok(())
}

/// CHIP_ID equals the VCEK's hwID: all 64 bytes on Milan/Genoa; on Turin the hwID is
/// 8 bytes and is compared with the first 8 bytes of CHIP_ID.
fn check_chip_id(
    chip_id: &[u8; 64],
    ext: &super::certs::VekExtensions,
    generation: Generation,
) -> Result<()> {
    let hw_id = ext.hw_id.as_deref().ok_or(Error::CertificateMalformed {
        subject: Subject::Vcek,
        reason: "missing hwID extension".into(),
    })?;
    let expected_len = match generation {
        Generation::Turin => 8,
        Generation::Milan | Generation::Genoa => 64,
    };
    if hw_id.len() != expected_len {
        return Err(Error::CertificateMalformed {
            subject: Subject::Vcek,
            reason: format!(
                "hwID is {} bytes; {} VCEKs carry {expected_len}",
                hw_id.len(),
                generation.as_str()
            ),
        });
    }
    if chip_id.get(..expected_len) != Some(hw_id) {
        return Err(Error::ChipIdMismatch);
    }
    Ok(())
}

/// ECDSA P-384 over SHA-384 of the raw bytes 0x000..0x2A0.
fn verify_report_signature(report: &SnpReport, leaf: &Cert, subject: Subject) -> Result<()> {
    let key = leaf.p384_key(subject)?;
    let (r, s) = report.signature_scalars_be();
    let signature =
        p384::ecdsa::Signature::from_scalars(r, s).map_err(|_| Error::SignatureMalformed {
            subject: Subject::SnpReport,
        })?;
    key.verify_digest(Sha384::new_with_prefix(&report.signed_bytes), &signature)
        .map_err(|_| Error::ReportSignatureInvalid)
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
mod tests {
    use super::*;
    use crate::test_vectors;

    const T: i64 = 1_700_000_000;

    fn milan_report() -> SnpReport {
        SnpReport::parse_hex(&test_vectors::read("snp/report_milan.hex")).unwrap()
    }

    fn embedded_set(generation: Generation) -> AmdRootSet {
        AmdRoots::embedded()
            .sets
            .into_iter()
            .find(|s| s.generation == generation)
            .unwrap()
    }

    #[test]
    fn embedded_root_sets_parse_and_all_their_signatures_hold() {
        let verifier = SnpVerifier::new();
        assert_eq!(verifier.prepared.len(), 3);
        for prepared in &verifier.prepared {
            let set = prepared.as_ref().unwrap();
            assert_eq!(set.kind, TrustRoot::Amd);
            set.check_own(Role::Ask).unwrap();
            set.check_own(Role::Asvk).unwrap();
            assert_eq!(
                set.ark.cert.subject_cn().as_deref(),
                Some(format!("ARK-{}", set.generation.as_str()).as_str())
            );
            assert_eq!(
                set.ask.cert.subject_cn().as_deref(),
                Some(format!("SEV-{}", set.generation.as_str()).as_str())
            );
            assert_eq!(
                set.asvk.as_ref().unwrap().cert.subject_cn().as_deref(),
                Some(format!("SEV-VLEK-{}", set.generation.as_str()).as_str())
            );
        }
    }

    #[test]
    fn root_set_checks_run_once_on_first_use() {
        let verifier = SnpVerifier::new();
        let vcek = test_vectors::read("snp/vcek_milan.der");
        verifier.verify(&milan_report(), &vcek, None, T).unwrap();
        for set in verifier.prepared.iter().map(|p| p.as_ref().unwrap()) {
            let used = set.generation == Generation::Milan;
            assert_eq!(set.ark_checked.get().is_some(), used);
            assert_eq!(set.ask_checked.get().is_some(), used);
            assert!(set.asvk_checked.get().is_none());
        }
    }

    #[test]
    fn the_root_kind_of_the_matching_set_is_reported() {
        // The chain logic trusts whichever ARK a set holds and reports the set's kind: the
        // simulated TEE relies on this with its own ARK.
        let mut set = embedded_set(Generation::Milan);
        set.kind = TrustRoot::Simulated;
        let verifier = SnpVerifier::with_roots(AmdRoots::from_sets(vec![set]));
        let vcek = test_vectors::read("snp/vcek_milan.der");
        let v = verifier.verify(&milan_report(), &vcek, None, T).unwrap();
        assert_eq!(v.root, TrustRoot::Simulated);
        let v = SnpVerifier::new()
            .verify(&milan_report(), &vcek, None, T)
            .unwrap();
        assert_eq!(v.root, TrustRoot::Amd);
    }

    #[test]
    fn a_verifier_without_the_generations_roots_finds_no_trusted_root() {
        let vcek = test_vectors::read("snp/vcek_milan.der");
        for roots in [
            AmdRoots::from_sets(vec![]),
            AmdRoots::from_sets(vec![embedded_set(Generation::Genoa)]),
        ] {
            let verifier = SnpVerifier::with_roots(roots);
            assert_eq!(
                verifier.verify(&milan_report(), &vcek, None, T),
                Err(Error::UntrustedRoot {
                    subject: Subject::Vcek
                })
            );
        }
    }

    #[test]
    fn a_chain_pem_ark_outside_the_verifiers_sets_is_untrusted() {
        let verifier =
            SnpVerifier::with_roots(AmdRoots::from_sets(vec![embedded_set(Generation::Genoa)]));
        let vcek = test_vectors::read("snp/vcek_milan.der");
        let chain = test_vectors::read("snp/cert_chain_milan");
        assert_eq!(
            verifier.verify(&milan_report(), &vcek, Some(&chain), T),
            Err(Error::UntrustedRoot {
                subject: Subject::Ark
            })
        );
    }

    #[test]
    fn a_set_whose_ask_signature_is_broken_is_reported_when_used() {
        let mut set = embedded_set(Generation::Milan);
        let last = set.ask_der.len() - 1;
        set.ask_der[last] ^= 1;
        let verifier = SnpVerifier::with_roots(AmdRoots::from_sets(vec![set]));
        let vcek = test_vectors::read("snp/vcek_milan.der");
        assert_eq!(
            verifier.verify(&milan_report(), &vcek, None, T),
            Err(Error::CertificateSignatureInvalid {
                subject: Subject::Ask,
                position: 1
            })
        );
    }

    #[test]
    fn a_set_whose_ask_is_another_generations_is_not_the_vceks_issuer() {
        let mut set = embedded_set(Generation::Milan);
        set.ask_der = embedded_set(Generation::Genoa).ask_der;
        assert!(matches!(
            PreparedSet::new(&set).unwrap().check_own(Role::Ask),
            Err(Error::CertificateChainInvalid {
                subject: Subject::Ask,
                ..
            })
        ));
        let verifier = SnpVerifier::with_roots(AmdRoots::from_sets(vec![set]));
        let vcek = test_vectors::read("snp/vcek_milan.der");
        assert_eq!(
            verifier.verify(&milan_report(), &vcek, None, T),
            Err(Error::UntrustedRoot {
                subject: Subject::Vcek
            })
        );
    }

    #[test]
    fn a_set_whose_ark_is_not_self_issued_is_rejected() {
        let mut set = embedded_set(Generation::Milan);
        set.ark_der = set.ask_der.clone();
        assert!(matches!(
            PreparedSet::new(&set),
            Err(Error::CertificateChainInvalid {
                subject: Subject::Ark,
                ..
            })
        ));
    }

    #[test]
    fn a_set_whose_ark_signature_is_broken_is_rejected() {
        let mut set = embedded_set(Generation::Milan);
        let last = set.ark_der.len() - 1;
        set.ark_der[last] ^= 1;
        assert_eq!(
            PreparedSet::new(&set).unwrap().check_ark(),
            Err(Error::CertificateSignatureInvalid {
                subject: Subject::Ark,
                position: 2
            })
        );
    }

    #[test]
    fn a_vcek_is_not_accepted_as_a_ca() {
        let vcek =
            Cert::from_der(&test_vectors::read("snp/vcek_milan.der"), Subject::Vcek).unwrap();
        assert!(matches!(
            vcek.require_ca(Subject::Ask, 1),
            Err(Error::CertificateChainInvalid {
                subject: Subject::Ask,
                ..
            })
        ));
    }

    #[test]
    fn vcek_extensions_of_the_real_certificates_decode() {
        let milan = Cert::from_der(&test_vectors::read("snp/vcek_milan.der"), Subject::Vcek)
            .unwrap()
            .vek_extensions(Subject::Vcek)
            .unwrap();
        assert_eq!(milan.product_name.as_deref(), Some("Milan-B0"));
        assert_eq!(
            (milan.bl_spl, milan.tee_spl, milan.snp_spl, milan.ucode_spl),
            (Some(3), Some(0), Some(8), Some(0x73))
        );
        assert_eq!(milan.fmc_spl, None);
        assert_eq!(milan.hw_id.as_deref(), Some(&milan_report().chip_id[..]));
        // The synthetic trustee VCEKs: raw and OCTET STRING-wrapped 64-byte hwID, 2-byte
        // INTEGER SPL (0xA9 needs a leading zero in DER).
        for name in ["test-vcek-invalid-legacy.der", "test-vcek-invalid-new.der"] {
            let ext = Cert::from_der(&test_vectors::read(&format!("snp/{name}")), Subject::Vcek)
                .unwrap()
                .vek_extensions(Subject::Vcek)
                .unwrap();
            let hw: Vec<u8> = (0u8..64).collect();
            assert_eq!(ext.hw_id, Some(hw), "{name}");
        }
        let legacy = Cert::from_der(
            &test_vectors::read("snp/test-vcek-invalid-legacy.der"),
            Subject::Vcek,
        )
        .unwrap()
        .vek_extensions(Subject::Vcek)
        .unwrap();
        assert_eq!(legacy.ucode_spl, Some(0xA9));
    }

    fn turin_ext() -> super::super::certs::VekExtensions {
        Cert::from_der(&test_vectors::read("snp/vcek_turin.der"), Subject::Vcek)
            .unwrap()
            .vek_extensions(Subject::Vcek)
            .unwrap()
    }

    #[test]
    fn turin_chip_id_is_compared_on_its_first_8_bytes() {
        let ext = turin_ext();
        let hw = ext.hw_id.clone().unwrap();
        assert_eq!(hw.len(), 8);
        let mut chip_id = [0u8; 64];
        chip_id[..8].copy_from_slice(&hw);
        check_chip_id(&chip_id, &ext, Generation::Turin).unwrap();
        chip_id[7] ^= 1;
        assert_eq!(
            check_chip_id(&chip_id, &ext, Generation::Turin),
            Err(Error::ChipIdMismatch)
        );
    }

    #[test]
    fn an_8_byte_hwid_on_a_milan_chain_is_malformed() {
        let ext = turin_ext();
        assert!(matches!(
            check_chip_id(&[0u8; 64], &ext, Generation::Milan),
            Err(Error::CertificateMalformed {
                subject: Subject::Vcek,
                ..
            })
        ));
    }

    #[test]
    fn a_vcek_without_hwid_cannot_be_matched_to_a_chip() {
        let mut ext = turin_ext();
        ext.hw_id = None;
        assert!(matches!(
            check_chip_id(&[0u8; 64], &ext, Generation::Turin),
            Err(Error::CertificateMalformed {
                subject: Subject::Vcek,
                ..
            })
        ));
    }

    #[test]
    fn turin_reported_fmc_must_equal_the_fmc_spl() {
        let ext = turin_ext();
        // vcek_turin.der: fmc 0, bl 0, tee 0, snp 0, ucode 9.
        let ok = TcbParts {
            fmc: Some(0),
            bootloader: 0,
            tee: 0,
            snp: 0,
            microcode: 9,
        };
        check_tcb_against_certificate(&ok, &ext, Generation::Turin, Subject::Vcek).unwrap();
        let bad = TcbParts { fmc: Some(1), ..ok };
        assert_eq!(
            check_tcb_against_certificate(&bad, &ext, Generation::Turin, Subject::Vcek),
            Err(Error::TcbVersionMismatch {
                field: "fmc",
                report: 1,
                certificate: 0
            })
        );
    }

    #[test]
    fn a_certificate_missing_an_spl_extension_is_malformed() {
        let mut ext = turin_ext();
        ext.fmc_spl = None;
        let tcb = TcbParts {
            fmc: Some(0),
            bootloader: 0,
            tee: 0,
            snp: 0,
            microcode: 9,
        };
        assert!(matches!(
            check_tcb_against_certificate(&tcb, &ext, Generation::Turin, Subject::Vcek),
            Err(Error::CertificateMalformed {
                subject: Subject::Vcek,
                reason
            }) if reason.contains("fmcSPL")
        ));
        let mut ext = turin_ext();
        ext.snp_spl = None;
        assert!(matches!(
            check_tcb_against_certificate(&tcb, &ext, Generation::Milan, Subject::Vcek),
            Err(Error::CertificateMalformed { reason, .. }) if reason.contains("snpSPL")
        ));
    }

    #[test]
    fn pem_blocks_other_than_certificates_are_malformed() {
        let pem = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(matches!(
            pem_certificates(pem),
            Ok(v) if v.len() == 1
        ));
        let key = b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n";
        assert!(matches!(
            pem_certificates(key),
            Err(Error::Malformed { .. })
        ));
        let unterminated = b"-----BEGIN CERTIFICATE-----\nAAAA\n";
        assert!(matches!(
            pem_certificates(unterminated),
            Err(Error::Malformed { .. })
        ));
        assert!(matches!(
            pem_certificates(&vec![b' '; MAX_CHAIN_PEM_LEN + 1]),
            Err(Error::InputTooLarge { .. })
        ));
    }
}
