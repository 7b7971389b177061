//! Verification of DCAP quotes against collateral, pinned roots and a caller-given time.
//!
//! The orchestration is ours, on dcap-qvl's public parsing types and webpki (the fork dcap-qvl
//! uses), so that the quote-independent work can be cached: TCB info, QE identity and CRLs
//! are verified once per collateral (by content hash), PCK chains once per chain, and each call
//! repeats only the quote's own checks. Steps, in dcap-qvl's order (each with its own error):
//!
//! 1. collateral: TCB info and QE identity dates, root CA CRL (signed by the anchor) and PCK
//!    CRL dates, TCB info / QE identity issuer chains to the anchor and their signatures;
//! 2. QE identity id/version for the quote's TEE;
//! 3. PCK chain (from the collateral if it carries one, else the quote) to the same anchor with
//!    both CRLs, and its Intel SGX extension;
//! 4. QE report signature by the PCK key; QE report data = SHA-256(attestation key ‖ QE auth
//!    data); QE report vs QE identity and the QE TCB level;
//! 5. quote signature over the signed header and body by the attestation key;
//! 6. FMSPC and PCE-ID of the PCK certificate vs the TCB info (dcap-qvl does not compare the
//!    PCE-ID), TCB info id/version, platform TCB level, TDX module identity and TCB level, and
//!    for a TD 1.5 the level of its current TCB;
//! 7. status merging as Intel QVL; Revoked is an error.
//!
//! Debug, SEPT_VE_DISABLE and measurements are the policy's business, not checked here.
//!
//! Deliberate differences from `dcap_qvl::verify::verify`, each named in a test (unit tests
//! here and `tests/tdx_oracle.rs`):
//! - TD attributes (DEBUG, SEPT_VE_DISABLE, migratable, profiling, service TDs) are reported,
//!   not judged: the policy decides, so a debug TD verifies here and dcap-qvl refuses it;
//! - the PCE-ID of the PCK certificate must equal the TCB info's `pceId`;
//! - a CRL whose `thisUpdate` is after the verification time is not yet valid;
//! - a root copy in a chain must be the anchor or validly self-signed by the anchor's key, and
//!   a chain must be ordered (leaf first, or root first as in Intel's sample data); a PEM
//!   chain with a broken section is malformed (dcap-qvl's PEM reader drops the section);
//! - the QE authentication data may have any length (Intel's format; dcap-qvl wants 32 bytes);
//! - for a TD 1.5, Intel's `TDRelaunchAdvised…` statuses are reported as the launch status
//!   plus `relaunch_advised` (and `current_tcb_status`), keeping to Intel's seven names.
//!
//! Time semantics: certificates are valid from `notBefore` to `notAfter` inclusive, TCB info
//! and QE identity from `issueDate` to `nextUpdate` inclusive (as dcap-qvl), CRLs from
//! `thisUpdate` until the second before `nextUpdate` (as webpki).

mod cache;
mod chain;
mod tcb;
#[cfg(test)]
mod testca;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use sha2::{Digest as _, Sha256};

use self::cache::Cache;
use self::chain::{Anchor, Cert, ChainRole, Crl, Crls, Window};
use self::tcb::{CheckedQeIdentity, CheckedTcbInfo};
use super::collateral::Collateral;
use super::quote::{EnclaveReport, Quote, QuoteBody};
use super::{TcbStatus, TEE_TYPE_SGX, TEE_TYPE_TDX};
use crate::error::{Error, Result, Subject};
use crate::TrustRoot;

/// Verified claims of a quote: only [`TdxVerifier::verify`] constructs this.
/// `non_exhaustive` seals it: other crates cannot construct verified claims.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifiedQuote {
    pub quote: Quote,
    /// The merged status (platform, TDX module and QE). For a TD 1.5 this is the status of its
    /// launch TCB; see `current_tcb_status` and `relaunch_advised`.
    pub tcb_status: TcbStatus,
    /// Advisory IDs of the matched platform, TDX module and QE TCB levels (merged, sorted).
    pub advisory_ids: Vec<String>,
    pub fmspc: [u8; 6],
    pub pce_id: [u8; 2],
    /// Which trust anchor the chains ended in.
    pub root: TrustRoot,
    /// The collateral window: latest issue date and earliest expiry (unix seconds) over
    /// TCB info, QE identity, CRLs and certificates. Both ends inclusive: every input was valid
    /// at each `t` with `collateral_valid_from <= t <= collateral_valid_until`.
    pub collateral_valid_from: i64,
    pub collateral_valid_until: i64,
    pub tcb_date: String,
    /// The lower of the TCB info's and the QE identity's `tcbEvaluationDataNumber` (as Intel's
    /// QvE reports it). Reported, not judged: a rolled-back number is for the policy to refuse.
    pub tcb_evaluation_data_number: u32,
    /// TD 1.5 only: the merged status of the current TCB (`TEE_TCB_SVN2`).
    pub current_tcb_status: Option<TcbStatus>,
    /// TD 1.5 only: Intel's TDRelaunchAdvised — the launch TCB is out of date but the current
    /// TCB is not, so relaunching the TD would bring it up to date.
    pub relaunch_advised: bool,
    /// The QE's own TCB status (already merged into `tcb_status`).
    pub qe_tcb_status: TcbStatus,
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

/// Intel's QE vendor id (939A7233-F79C-4CA9-940A-0DB3957F0607).
const INTEL_QE_VENDOR_ID: [u8; 16] = [
    0x93, 0x9a, 0x72, 0x33, 0xf7, 0x9c, 0x4c, 0xa9, 0x94, 0x0a, 0x0d, 0xb3, 0x95, 0x7f, 0x06, 0x07,
];
/// Attestation key type 2: ECDSA-256 with P-256.
const ATTESTATION_KEY_ECDSA_P256: u16 = 2;
/// Certification data type 5: PEM PCK chain.
const CERT_DATA_PCK_CHAIN: u16 = 5;

/// Collateral verified once and cached by content hash.
#[derive(Debug)]
struct VerifiedCollateral {
    anchor: usize,
    tcb_info: CheckedTcbInfo,
    qe_identity: CheckedQeIdentity,
    root_crl: Crl,
    pck_crl: Crl,
    window: Window,
}

/// A PCK chain verified once (under one collateral's CRLs) and cached.
#[derive(Debug)]
struct VerifiedPck {
    public_key: Vec<u8>,
    fmspc: [u8; 6],
    pce_id: [u8; 2],
    cpu_svn: [u8; 16],
    pce_svn: u16,
    window: Window,
}

/// Verifies quotes; holds the trust anchors and a bounded cache of verified collateral.
///
/// `Send + Sync`: share one verifier (e.g. in an `Arc`) so that calls with the same collateral
/// hit its cache. A cache entry is used only at times inside the validity window of everything
/// it was built from; [`TdxVerifier::clear_cache`] empties it.
pub struct TdxVerifier {
    roots: Vec<RootAnchor>,
    /// The anchors that parsed, each with its kind and (for Intel) the key id check result.
    anchors: Vec<Anchor>,
    cache: Cache<VerifiedCollateral, VerifiedPck>,
}

impl std::fmt::Debug for TdxVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TdxVerifier")
            .field("roots", &self.roots)
            .finish_non_exhaustive()
    }
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

    /// A verifier trusting the given anchors. An anchor that does not parse can never match a
    /// chain; an Intel anchor without the pinned key makes every chain ending in it fail with
    /// [`Error::RootKeyIdMismatch`].
    pub fn with_roots(roots: Vec<RootAnchor>) -> Self {
        let anchors = roots
            .iter()
            .filter_map(|r| Anchor::prepare(r.kind, &r.der).ok())
            .collect();
        Self {
            roots,
            anchors,
            cache: Cache::default(),
        }
    }

    /// Verify a parsed quote with its collateral at `now` (unix seconds).
    ///
    /// The first call with a collateral verifies it completely ("cold"); later calls with the
    /// same collateral bytes at a time inside its window reuse the verified TCB info, QE
    /// identity, CRLs and PCK chain and repeat only the quote's own checks ("warm"). Both
    /// paths give the same result.
    pub fn verify(
        &self,
        quote: &Quote,
        collateral: &Collateral,
        now: i64,
    ) -> Result<VerifiedQuote> {
        let is_tdx = check_header(quote)?;
        let sig = &quote.signature;

        // 1. Collateral (cached by content hash; a hit is only valid inside its window).
        let collateral_key = collateral.content_hash();
        let coll = match self.cache.collateral(&collateral_key, now) {
            Some(hit) => hit,
            None => {
                let fresh = Arc::new(self.verify_collateral(collateral, now)?);
                self.cache
                    .put_collateral(collateral_key, fresh.window, fresh.clone());
                fresh
            }
        };
        let anchor = self.anchors.get(coll.anchor).ok_or(Error::UntrustedRoot {
            subject: Subject::Collateral,
        })?;

        // 2. The QE identity must be for this TEE's QE.
        tcb::check_qe_identity_type(&coll.qe_identity.identity, is_tdx)?;

        // 3. PCK chain: the collateral's if it carries one (dcap-qvl does the same), else the
        //    quote's certification data.
        let pck_pem: &[u8] = match &collateral.inner.pck_certificate_chain {
            Some(pem) => pem.as_bytes(),
            None => {
                let data = &sig.certification_data;
                if data.cert_type != CERT_DATA_PCK_CHAIN {
                    return Err(Error::UnsupportedCertificationDataType(data.cert_type));
                }
                &data.data
            }
        };
        let pck_key = {
            let mut h = Sha256::new();
            h.update(collateral_key);
            h.update(pck_pem);
            <[u8; 32]>::from(h.finalize())
        };
        let pck = match self.cache.pck(&pck_key, now) {
            Some(hit) => hit,
            None => {
                let fresh = Arc::new(verify_pck(anchor, &coll, pck_pem, now)?);
                self.cache
                    .put_pck(pck_key, fresh.window.and(coll.window), fresh.clone());
                fresh
            }
        };

        // 4. QE report: signed by the PCK key, bound to the attestation key, and the QE Intel
        //    says it is. Fields are read from the signed bytes themselves.
        if !chain::verify_raw_sig(
            &pck.public_key,
            &sig.qe_report_raw,
            &sig.qe_report_signature,
            Subject::QeReport,
        )? {
            return Err(Error::QeReportSignatureInvalid);
        }
        let qe_report = qe_report_from_raw(&sig.qe_report_raw)?;
        let mut h = Sha256::new();
        h.update(sig.attestation_key);
        h.update(&sig.qe_auth_data);
        let expected: [u8; 32] = h.finalize().into();
        if qe_report.report_data.get(..32) != Some(&expected[..]) {
            return Err(Error::QeReportDataMismatch);
        }
        let qe_level = tcb::match_qe_identity(&qe_report, &coll.qe_identity.identity)?;

        // 5. Quote signature by the attestation key.
        let mut attestation_key = [0x04u8; 65];
        if let Some(tail) = attestation_key.get_mut(1..) {
            tail.copy_from_slice(&sig.attestation_key);
        }
        if !chain::verify_raw_sig(
            &attestation_key,
            &quote.signed_bytes,
            &sig.ecdsa_signature,
            Subject::Quote,
        )? {
            return Err(Error::QuoteSignatureInvalid);
        }

        // 6. Platform TCB.
        let info = &coll.tcb_info;
        if pck.fmspc != info.fmspc {
            return Err(Error::FmspcMismatch {
                pck: hex::encode_upper(pck.fmspc),
                tcb_info: hex::encode_upper(info.fmspc),
            });
        }
        if pck.pce_id != info.pce_id {
            return Err(Error::PceIdMismatch {
                pck: hex::encode_upper(pck.pce_id),
                other: hex::encode_upper(info.pce_id),
            });
        }
        tcb::check_tcb_info_type(&info.info, is_tdx)?;
        let td = match &quote.body {
            QuoteBody::SgxEnclave(_) => None,
            QuoteBody::Td10(r) => Some((r, None)),
            QuoteBody::Td15(r) => Some((&r.base, Some(&r.tee_tcb_svn2))),
        };
        let platform = tcb::match_platform(&info.info, &pck.cpu_svn, pck.pce_svn, td)?;

        // 7. Merge as Intel QVL: platform (with module) and QE; the current TCB of a TD 1.5
        //    with the QE too. Revoked anywhere is final.
        let status = tcb::converge(platform.level.tcb_status, qe_level.tcb_status);
        let current = platform
            .current
            .as_ref()
            .map(|c| tcb::converge(c.tcb_status, qe_level.tcb_status));
        if status == dcap_qvl::TcbStatus::Revoked || current == Some(dcap_qvl::TcbStatus::Revoked) {
            return Err(Error::TcbRevoked);
        }
        let relaunch_advised = current.is_some_and(|c| tcb::relaunch_advised(status, c));
        let mut advisory_ids: Vec<String> = platform
            .level
            .advisory_ids
            .iter()
            .chain(qe_level.advisory_ids.iter())
            .cloned()
            .collect();
        advisory_ids.sort();
        advisory_ids.dedup();

        let window = coll.window.and(pck.window);
        Ok(VerifiedQuote {
            quote: quote.clone(),
            tcb_status: tcb::to_status(status)?,
            advisory_ids,
            fmspc: pck.fmspc,
            pce_id: pck.pce_id,
            root: anchor.kind,
            collateral_valid_from: window.start,
            collateral_valid_until: window.end,
            tcb_date: platform.level.tcb_date.clone(),
            tcb_evaluation_data_number: info
                .info
                .tcb_evaluation_data_number
                .min(coll.qe_identity.identity.tcb_evaluation_data_number),
            current_tcb_status: current.map(tcb::to_status).transpose()?,
            relaunch_advised,
            qe_tcb_status: tcb::to_status(qe_level.tcb_status)?,
        })
    }

    /// Drop every cached verification result (the next call is "cold").
    pub fn clear_cache(&self) {
        self.cache.clear();
    }

    /// The anchor a chain ends in.
    fn select_anchor(&self, certs: &[Cert], subject: Subject) -> Result<usize> {
        // A root copy anywhere in the chain decides by its key; otherwise the issuer name of
        // the top certificate does.
        let top = certs
            .iter()
            .find(|c| c.self_issued())
            .or(certs.last())
            .ok_or(Error::CertificateChainInvalid {
                subject,
                reason: "empty chain".into(),
            })?;
        let index = self
            .anchors
            .iter()
            .position(|a| a.ends(top))
            .ok_or(Error::UntrustedRoot { subject })?;
        if let Some(e) = self.anchors.get(index).and_then(|a| a.key_id_error.clone()) {
            return Err(e);
        }
        Ok(index)
    }

    /// Everything in the collateral that does not depend on the quote.
    fn verify_collateral(&self, collateral: &Collateral, now: i64) -> Result<VerifiedCollateral> {
        let c = &collateral.inner;

        // The TCB signing chain picks the anchor every other chain must end in: collateral
        // from a foreign root is reported as such before anything else.
        let tcb_chain =
            chain::parse_pem_chain(c.tcb_info_issuer_chain.as_bytes(), Subject::TcbInfo)?;
        let anchor_index = self.select_anchor(&tcb_chain, Subject::TcbInfo)?;
        let anchor = self.anchors.get(anchor_index).ok_or(Error::UntrustedRoot {
            subject: Subject::TcbInfo,
        })?;

        // Then dates, TCB info before QE identity before CRLs: expired or future collateral
        // is reported as such, with its dates.
        let tcb_info = tcb::parse_tcb_info(&c.tcb_info)?;
        check_collateral_time(tcb_info.window, Subject::TcbInfo, now)?;
        let qe_identity = tcb::parse_qe_identity(&c.qe_identity)?;
        check_collateral_time(qe_identity.window, Subject::QeIdentity, now)?;

        let root_crl = Crl::parse(&c.root_ca_crl, Subject::RootCaCrl, Some(anchor.spki()))?;
        root_crl.check_time(now, Subject::RootCaCrl)?;
        // The root itself must not be revoked by its own CRL (dcap-qvl checks this too).
        webpki::check_single_cert_revocation(
            anchor.cert.der.as_ref(),
            &[&root_crl.crl],
            &[chain::sig_algo()],
            chain::unix_time(now),
        )
        .map_err(|e| match e {
            webpki::Error::CertRevoked => Error::CertificateRevoked {
                subject: Subject::Certificate,
                serial: hex::encode(&anchor.cert.serial),
            },
            other => Error::CrlInvalid {
                subject: Subject::RootCaCrl,
                reason: format!("does not cover the root: {other:?}"),
            },
        })?;
        let pck_crl = Crl::parse(&c.pck_crl, Subject::PckCrl, None)?;
        pck_crl.check_time(now, Subject::PckCrl)?;
        let crls = Crls {
            root: &root_crl,
            pck: &pck_crl,
        };

        let mut window = tcb_info
            .window
            .and(qe_identity.window)
            .and(root_crl.window)
            .and(pck_crl.window);

        // TCB info: signer issued directly by the root (as dcap-qvl and Intel require).
        let role = ChainRole {
            leaf: Subject::TcbInfo,
            rest: Subject::TcbInfo,
        };
        window = window.and(verify_signer_chain(&tcb_chain, role, anchor, &crls, now)?);
        let tcb_signer = tcb_chain
            .first()
            .map(|c| c.public_key.as_slice())
            .unwrap_or(&[]);
        if !chain::verify_raw_sig(
            tcb_signer,
            c.tcb_info.as_bytes(),
            &c.tcb_info_signature,
            Subject::TcbInfo,
        )? {
            return Err(Error::CollateralSignatureInvalid {
                subject: Subject::TcbInfo,
            });
        }

        // QE identity: Intel signs it with the same certificate; verify its chain only if it
        // differs.
        let qe_signer_key = if c.qe_identity_issuer_chain == c.tcb_info_issuer_chain {
            tcb_signer.to_vec()
        } else {
            let qe_chain =
                chain::parse_pem_chain(c.qe_identity_issuer_chain.as_bytes(), Subject::QeIdentity)?;
            let role = ChainRole {
                leaf: Subject::QeIdentity,
                rest: Subject::QeIdentity,
            };
            window = window.and(verify_signer_chain(&qe_chain, role, anchor, &crls, now)?);
            qe_chain
                .first()
                .map(|c| c.public_key.clone())
                .unwrap_or_default()
        };
        if !chain::verify_raw_sig(
            &qe_signer_key,
            c.qe_identity.as_bytes(),
            &c.qe_identity_signature,
            Subject::QeIdentity,
        )? {
            return Err(Error::CollateralSignatureInvalid {
                subject: Subject::QeIdentity,
            });
        }

        Ok(VerifiedCollateral {
            anchor: anchor_index,
            tcb_info,
            qe_identity,
            root_crl,
            pck_crl,
            window,
        })
    }
}

/// A TCB info / QE identity signing chain: to the anchor, signer issued by the root itself.
fn verify_signer_chain(
    certs: &[Cert],
    role: ChainRole,
    anchor: &Anchor,
    crls: &Crls<'_>,
    now: i64,
) -> Result<Window> {
    let (length, window) = chain::verify_chain(certs, role, anchor, crls, now)?;
    if length != 1 {
        return Err(Error::CertificateChainInvalid {
            subject: role.leaf,
            reason: "the signing certificate must be issued by the root CA".into(),
        });
    }
    Ok(window)
}

/// The PCK chain to the collateral's anchor, with both CRLs, and its SGX extension.
fn verify_pck(
    anchor: &Anchor,
    coll: &VerifiedCollateral,
    pem: &[u8],
    now: i64,
) -> Result<VerifiedPck> {
    let certs = chain::parse_pem_chain(pem, Subject::PckCertChain)?;
    let role = ChainRole {
        leaf: Subject::PckCertificate,
        rest: Subject::PckCertChain,
    };
    let crls = Crls {
        root: &coll.root_crl,
        pck: &coll.pck_crl,
    };
    let (_, window) = chain::verify_chain(&certs, role, anchor, &crls, now)?;
    let leaf = certs.first().ok_or(Error::CertificateChainInvalid {
        subject: Subject::PckCertChain,
        reason: "empty chain".into(),
    })?;
    let malformed = |reason: String| Error::CertificateMalformed {
        subject: Subject::PckCertificate,
        reason,
    };
    let ext = dcap_qvl::intel::parse_pck_extension(leaf.der.as_ref())
        .map_err(|e| malformed(format!("SGX extension: {e:#}")))?;
    let pce_id = <[u8; 2]>::try_from(ext.pce_id.as_slice())
        .map_err(|_| malformed(format!("PCE-ID of {} bytes", ext.pce_id.len())))?;
    Ok(VerifiedPck {
        public_key: leaf.public_key.clone(),
        fmspc: ext.fmspc,
        pce_id,
        cpu_svn: ext.cpu_svn,
        pce_svn: ext.pce_svn,
        window,
    })
}

/// The header facts verification relies on (the parser checks them too; a hand-built
/// [`Quote`] must not slip past). Returns whether the quote is a TDX quote.
fn check_header(quote: &Quote) -> Result<bool> {
    let h = &quote.header;
    let is_tdx = match h.tee_type {
        TEE_TYPE_SGX => false,
        TEE_TYPE_TDX => true,
        other => return Err(Error::UnsupportedTeeType(other)),
    };
    let version_ok = match (is_tdx, h.version) {
        (false, 3) | (true, 4 | 5) => true,
        (_, 3..=5) => false,
        (_, v) => return Err(Error::UnsupportedQuoteVersion(v)),
    };
    if !version_ok {
        return Err(Error::QuoteVersionTeeTypeMismatch {
            version: h.version,
            tee_type: h.tee_type,
        });
    }
    let body_ok = matches!(
        (is_tdx, &quote.body),
        (false, QuoteBody::SgxEnclave(_)) | (true, QuoteBody::Td10(_) | QuoteBody::Td15(_))
    );
    if !body_ok {
        return Err(Error::UnsupportedBodyType(quote.body_type));
    }
    if h.attestation_key_type != ATTESTATION_KEY_ECDSA_P256 {
        return Err(Error::UnsupportedAttestationKeyType(h.attestation_key_type));
    }
    if h.qe_vendor_id != INTEL_QE_VENDOR_ID {
        return Err(Error::UnknownQeVendorId(h.qe_vendor_id));
    }
    if !fields_match_signed_bytes(quote) {
        return Err(Error::Malformed {
            subject: Subject::QuoteBody,
            reason: "header or body fields differ from the signed bytes".into(),
        });
    }
    Ok(is_tdx)
}

/// The claims we return are the parsed fields, the signature covers `signed_bytes`: check they
/// agree (always true for [`Quote::parse`] output; a `Quote` edited after parsing fails here).
fn fields_match_signed_bytes(quote: &Quote) -> bool {
    let h = &quote.header;
    let b = &quote.signed_bytes;
    let at = |base: usize, offset: usize, expected: &[u8]| {
        let start = base.checked_add(offset);
        let end = start.and_then(|s| s.checked_add(expected.len()));
        start.zip(end).and_then(|(s, e)| b.get(s..e)) == Some(expected)
    };
    let header_ok = at(0, 0, &h.version.to_le_bytes())
        && at(0, 2, &h.attestation_key_type.to_le_bytes())
        && at(0, 4, &h.tee_type.to_le_bytes())
        && at(0, 8, &h.qe_svn.to_le_bytes())
        && at(0, 10, &h.pce_svn.to_le_bytes())
        && at(0, 12, &h.qe_vendor_id)
        && at(0, 28, &h.user_data);
    // v5 puts a body descriptor (type u16, size u32) between header and body.
    let body_at = if h.version == 5 { 54 } else { 48 };
    let td10 = |r: &super::quote::TdReport10, o: usize| {
        at(o, 0, &r.tee_tcb_svn)
            && at(o, 16, &r.mr_seam)
            && at(o, 64, &r.mr_signer_seam)
            && at(o, 112, &r.seam_attributes)
            && at(o, 120, &r.td_attributes)
            && at(o, 128, &r.xfam)
            && at(o, 136, &r.mr_td)
            && at(o, 184, &r.mr_config_id)
            && at(o, 232, &r.mr_owner)
            && at(o, 280, &r.mr_owner_config)
            && r.rt_mr
                .iter()
                .zip((328..).step_by(48))
                .all(|(rtmr, off)| at(o, off, rtmr))
            && at(o, 520, &r.report_data)
    };
    let (body_ok, len) = match &quote.body {
        QuoteBody::SgxEnclave(r) => (
            at(body_at, 0, &r.cpu_svn)
                && at(body_at, 16, &r.misc_select.to_le_bytes())
                && at(body_at, 48, &r.attributes)
                && at(body_at, 64, &r.mr_enclave)
                && at(body_at, 128, &r.mr_signer)
                && at(body_at, 256, &r.isv_prod_id.to_le_bytes())
                && at(body_at, 258, &r.isv_svn.to_le_bytes())
                && at(body_at, 320, &r.report_data),
            384,
        ),
        QuoteBody::Td10(r) => (td10(r, body_at), 584),
        QuoteBody::Td15(r) => (
            td10(&r.base, body_at)
                && at(body_at, 584, &r.tee_tcb_svn2)
                && at(body_at, 600, &r.mr_service_td),
            648,
        ),
    };
    header_ok && body_ok && body_at.checked_add(len) == Some(b.len())
}

/// The QE report fields we judge, read from the 384 bytes the PCK key signed (SGX REPORTBODY
/// layout) rather than from a separately parsed copy.
fn qe_report_from_raw(raw: &[u8]) -> Result<EnclaveReport> {
    let bad = || Error::Truncated {
        subject: Subject::QeReport,
        needed: 384,
        available: raw.len(),
    };
    if raw.len() != 384 {
        return Err(bad());
    }
    fn take<const N: usize>(raw: &[u8], at: usize) -> Option<[u8; N]> {
        raw.get(at..at.checked_add(N)?)?.try_into().ok()
    }
    Ok(EnclaveReport {
        cpu_svn: take(raw, 0).ok_or_else(bad)?,
        misc_select: u32::from_le_bytes(take(raw, 16).ok_or_else(bad)?),
        attributes: take(raw, 48).ok_or_else(bad)?,
        mr_enclave: take(raw, 64).ok_or_else(bad)?,
        mr_signer: take(raw, 128).ok_or_else(bad)?,
        isv_prod_id: u16::from_le_bytes(take(raw, 256).ok_or_else(bad)?),
        isv_svn: u16::from_le_bytes(take(raw, 258).ok_or_else(bad)?),
        report_data: take(raw, 320).ok_or_else(bad)?,
    })
}

fn check_collateral_time(window: Window, subject: Subject, now: i64) -> Result<()> {
    if now < window.start {
        return Err(Error::CollateralNotYetValid {
            subject,
            issue_date: window.start,
            next_update: window.end,
            now,
        });
    }
    if now > window.end {
        return Err(Error::CollateralExpired {
            subject,
            issue_date: window.start,
            next_update: window.end,
            now,
        });
    }
    Ok(())
}
