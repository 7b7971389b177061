//! Certificates, chains, CRLs and raw signatures of Intel's DCAP PKI.
//!
//! Path validation (signatures, CA constraints, revocation) is webpki's — the same fork and
//! the same options dcap-qvl uses. Around it we add what webpki leaves out or reports too
//! coarsely for a per-reason error: a strict leaf-first ordering of the given chain, the
//! root copy at its end compared with the anchor, exact validity windows (which also feed the
//! cache), CRL `thisUpdate`, and the position of a bad signature.

use der::Decode as _;
use der::Encode as _;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, SignatureVerificationAlgorithm, TrustAnchor, UnixTime};
use webpki::{CertRevocationList, OwnedCertRevocationList};
use x509_cert::name::Name;

use crate::error::{Error, Result, Subject};
use crate::TrustRoot;

/// Intel's chains have at most leaf, one intermediate and the root; allow a little slack but
/// keep webpki's path search small (each extra candidate multiplies its work).
const MAX_CHAIN_CERTS: usize = 5;
/// A DCAP PEM chain is ~3 KiB; refuse anything far larger before decoding.
const MAX_PEM_CHAIN_BYTES: usize = 32 * 1024;

/// ECDSA P-256 with SHA-256 (RustCrypto), the only algorithm Intel's DCAP PKI uses; the same
/// algorithm object dcap-qvl's RustCrypto backend passes to webpki.
pub(crate) fn sig_algo() -> &'static dyn SignatureVerificationAlgorithm {
    #[cfg(test)]
    {
        &counting::COUNTING
    }
    #[cfg(not(test))]
    {
        <dcap_qvl::crypto::RustCryptoCrypto as dcap_qvl::config::CryptoProvider>::sig_algo()
    }
}

/// Tests count the signature verifications of this thread (what the cache saves).
#[cfg(test)]
pub(crate) mod counting {
    use rustls_pki_types::{AlgorithmIdentifier, InvalidSignature, SignatureVerificationAlgorithm};
    use std::cell::Cell;

    thread_local! {
        static COUNT: Cell<usize> = const { Cell::new(0) };
    }

    /// Signature verifications on this thread since the last call.
    pub fn take() -> usize {
        COUNT.with(|c| c.replace(0))
    }

    #[derive(Debug)]
    pub struct Counting;
    pub static COUNTING: Counting = Counting;

    fn inner() -> &'static dyn SignatureVerificationAlgorithm {
        <dcap_qvl::crypto::RustCryptoCrypto as dcap_qvl::config::CryptoProvider>::sig_algo()
    }

    impl SignatureVerificationAlgorithm for Counting {
        fn verify_signature(
            &self,
            key: &[u8],
            msg: &[u8],
            sig: &[u8],
        ) -> Result<(), InvalidSignature> {
            COUNT.with(|c| c.set(c.get().saturating_add(1)));
            inner().verify_signature(key, msg, sig)
        }
        fn public_key_alg_id(&self) -> AlgorithmIdentifier {
            inner().public_key_alg_id()
        }
        fn signature_alg_id(&self) -> AlgorithmIdentifier {
            inner().signature_alg_id()
        }
    }
}

/// A raw `r ‖ s` P-256 signature as DER, rejecting r or s outside `[1, n)` up front.
pub(crate) fn raw_sig_to_der(raw: &[u8], subject: Subject) -> Result<Vec<u8>> {
    let sig = p256::ecdsa::Signature::from_slice(raw)
        .map_err(|_| Error::SignatureMalformed { subject })?;
    Ok(sig.to_der().as_bytes().to_vec())
}

/// Verify a raw `r ‖ s` signature over `msg` with an uncompressed SEC1 P-256 public key.
/// `Ok(false)` for a well-formed signature that does not verify.
pub(crate) fn verify_raw_sig(
    public_key: &[u8],
    msg: &[u8],
    raw_sig: &[u8],
    subject: Subject,
) -> Result<bool> {
    let der = raw_sig_to_der(raw_sig, subject)?;
    Ok(sig_algo().verify_signature(public_key, msg, &der).is_ok())
}

/// Unix seconds to webpki's time (times before 1970 are clamped: nothing Intel issues is
/// valid then, so the checks fail as they should).
pub(crate) fn unix_time(now: i64) -> UnixTime {
    UnixTime::since_unix_epoch(std::time::Duration::from_secs(
        u64::try_from(now).unwrap_or(0),
    ))
}

/// A validity window, both ends inclusive: valid at `t` iff `start <= t <= end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Window {
    pub start: i64,
    pub end: i64,
}

impl Window {
    /// The intersection: latest start, earliest end.
    pub fn and(self, other: Window) -> Window {
        Window {
            start: self.start.max(other.start),
            end: self.end.min(other.end),
        }
    }

    pub fn contains(self, t: i64) -> bool {
        self.start <= t && t <= self.end
    }
}

/// A parsed certificate: webpki's DER plus the fields webpki keeps private.
#[derive(Debug, Clone)]
pub(crate) struct Cert {
    pub der: CertificateDer<'static>,
    pub subject: Name,
    pub issuer: Name,
    pub serial: Vec<u8>,
    pub window: Window,
    /// The subjectPublicKey bits (SEC1 point for EC keys).
    pub public_key: Vec<u8>,
}

impl Cert {
    pub fn parse(der: CertificateDer<'static>, subject: Subject) -> Result<Self> {
        let fields = cert_fields(der.as_ref()).map_err(|e| Error::CertificateMalformed {
            subject,
            reason: e.to_string(),
        })?;
        Ok(Self {
            subject: fields.subject,
            issuer: fields.issuer,
            serial: fields.serial,
            window: fields.window,
            public_key: fields.public_key,
            der,
        })
    }

    pub fn self_issued(&self) -> bool {
        self.subject == self.issuer
    }

    /// Whether `issuer_key` signed this certificate (diagnostics and the root copy only:
    /// webpki decides the path; the TBS is re-encoded here, off the fast path).
    fn signed_by(&self, issuer_key: &[u8]) -> bool {
        let Ok(cert) = x509_cert::Certificate::from_der(self.der.as_ref()) else {
            return false;
        };
        let (Ok(tbs), Some(signature)) =
            (cert.tbs_certificate().to_der(), cert.signature().as_bytes())
        else {
            return false;
        };
        sig_algo()
            .verify_signature(issuer_key, &tbs, signature)
            .is_ok()
    }

    fn check_time(&self, now: i64, subject: Subject) -> Result<()> {
        if now < self.window.start {
            return Err(Error::CertificateNotYetValid {
                subject,
                not_before: self.window.start,
                now,
            });
        }
        if now > self.window.end {
            return Err(Error::CertificateExpired {
                subject,
                not_after: self.window.end,
                now,
            });
        }
        Ok(())
    }
}

fn unix(t: x509_cert::time::Time) -> i64 {
    i64::try_from(t.to_unix_duration().as_secs()).unwrap_or(i64::MAX)
}

struct CertFields {
    serial: Vec<u8>,
    issuer: Name,
    window: Window,
    subject: Name,
    public_key: Vec<u8>,
}

/// The TBSCertificate fields up to the public key, read without decoding the extensions
/// (webpki parses and validates the whole certificate; this only feeds errors and windows).
fn cert_fields(der: &[u8]) -> der::Result<CertFields> {
    use der::Reader as _;
    use x509_cert::certificate::Rfc5280;
    let mut reader = der::SliceReader::new(der)?;
    let fields = reader.sequence(|cert| {
        let fields = cert.sequence(|tbs| {
            if der::Tag::peek(tbs)?.is_context_specific() {
                tbs.tlv_bytes()?; // version
            }
            let serial = x509_cert::serial_number::SerialNumber::<Rfc5280>::decode(tbs)?;
            tbs.tlv_bytes()?; // signature algorithm
            let issuer = Name::decode(tbs)?;
            let validity = x509_cert::time::Validity::<Rfc5280>::decode(tbs)?;
            let subject = Name::decode(tbs)?;
            let spki = x509_cert::spki::SubjectPublicKeyInfoRef::decode(tbs)?;
            let public_key = spki
                .subject_public_key
                .as_bytes()
                .ok_or_else(|| der::Error::from(der::ErrorKind::Failed))?
                .to_vec();
            tbs.drain(tbs.remaining_len())?;
            Ok::<_, der::Error>(CertFields {
                serial: serial.as_bytes().to_vec(),
                issuer,
                window: Window {
                    start: unix(validity.not_before),
                    end: unix(validity.not_after),
                },
                subject,
                public_key,
            })
        })?;
        cert.drain(cert.remaining_len())?;
        Ok::<_, der::Error>(fields)
    })?;
    reader.finish()?;
    Ok(fields)
}

/// Issuer and `[thisUpdate, nextUpdate)` of a CRL, read without decoding its entries.
fn crl_fields(der: &[u8]) -> der::Result<(Name, Window)> {
    use der::Reader as _;
    let mut reader = der::SliceReader::new(der)?;
    let fields = reader.sequence(|list| {
        let fields = list.sequence(|tbs| {
            if der::Tag::peek(tbs)? == der::Tag::Integer {
                tbs.tlv_bytes()?; // version
            }
            tbs.tlv_bytes()?; // signature algorithm
            let issuer = Name::decode(tbs)?;
            let this_update = x509_cert::time::Time::decode(tbs)?;
            // webpki refuses CRLs without nextUpdate, and so do we.
            let next_update = x509_cert::time::Time::decode(tbs)?;
            tbs.drain(tbs.remaining_len())?;
            Ok::<_, der::Error>((
                issuer,
                Window {
                    start: unix(this_update),
                    // webpki: expired from nextUpdate on, so the last valid second is one before.
                    end: unix(next_update).saturating_sub(1),
                },
            ))
        })?;
        list.drain(list.remaining_len())?;
        Ok::<_, der::Error>(fields)
    })?;
    reader.finish()?;
    Ok(fields)
}

/// Decode a PEM chain (leaf first).
pub(crate) fn parse_pem_chain(pem: &[u8], subject: Subject) -> Result<Vec<Cert>> {
    if pem.len() > MAX_PEM_CHAIN_BYTES {
        return Err(Error::InputTooLarge {
            subject,
            size: pem.len(),
            limit: MAX_PEM_CHAIN_BYTES,
        });
    }
    let mut certs = Vec::new();
    for item in CertificateDer::pem_slice_iter(pem) {
        let der = item.map_err(|e| Error::CertificateMalformed {
            subject,
            reason: format!("PEM: {e}"),
        })?;
        if certs.len() >= MAX_CHAIN_CERTS {
            return Err(Error::CertificateChainInvalid {
                subject,
                reason: format!("more than {MAX_CHAIN_CERTS} certificates"),
            });
        }
        certs.push(Cert::parse(der, subject)?);
    }
    if certs.is_empty() {
        return Err(Error::CertificateChainInvalid {
            subject,
            reason: "no certificate in the chain".into(),
        });
    }
    // Intel's sample data lists chains root first; PCS headers and quotes list them leaf first.
    if certs.len() > 1 && certs.first().is_some_and(Cert::self_issued) {
        certs.reverse();
    }
    Ok(certs)
}

/// A trust anchor, checked once when the verifier is built.
#[derive(Debug)]
pub(crate) struct Anchor {
    pub kind: TrustRoot,
    pub cert: Cert,
    pub anchor: TrustAnchor<'static>,
    /// Set when an Intel anchor does not carry the pinned key: reported when a chain ends in it.
    pub key_id_error: Option<Error>,
}

impl Anchor {
    /// Parse the anchor; an Intel anchor must carry the pinned key (SHA-384 of its 65-byte
    /// public key = `INTEL_ROOT_KEY_ID`), whatever its name says.
    pub fn prepare(kind: TrustRoot, der: &[u8]) -> Result<Self> {
        let der = CertificateDer::from(der.to_vec());
        let cert = Cert::parse(der.clone(), Subject::Certificate)?;
        let key_id_error = (kind == TrustRoot::Intel)
            .then(|| {
                use sha2::Digest as _;
                let actual = hex::encode(sha2::Sha384::digest(&cert.public_key));
                (actual != super::INTEL_ROOT_KEY_ID).then(|| Error::RootKeyIdMismatch {
                    expected: super::INTEL_ROOT_KEY_ID.into(),
                    actual,
                })
            })
            .flatten();
        let anchor = webpki::anchor_from_trusted_cert(&der)
            .map_err(|e| Error::CertificateMalformed {
                subject: Subject::Certificate,
                reason: format!("trust anchor: {e:?}"),
            })?
            .to_owned();
        Ok(Self {
            kind,
            cert,
            anchor,
            key_id_error,
        })
    }

    /// Whether a chain whose top certificate is `top` ends in this anchor: a root copy with
    /// this key, or a certificate this anchor's name issued.
    pub fn ends(&self, top: &Cert) -> bool {
        if top.self_issued() {
            top.public_key == self.cert.public_key
        } else {
            top.issuer == self.cert.subject
        }
    }

    /// SubjectPublicKeyInfo without its outer tag, as webpki's CRL API wants it.
    pub fn spki(&self) -> &[u8] {
        self.anchor.subject_public_key_info.as_ref()
    }
}

/// A parsed CRL with its dates, issuer and revoked serials.
#[derive(Debug)]
pub(crate) struct Crl {
    pub crl: CertRevocationList<'static>,
    pub issuer: Name,
    pub window: Window,
    der: Vec<u8>,
}

impl Crl {
    /// Parse a DER CRL; with `issuer_spki`, its signature is verified now (and webpki skips
    /// it later). Dates are checked separately ([`Crl::check_time`]).
    pub fn parse(der: &[u8], subject: Subject, issuer_spki: Option<&[u8]>) -> Result<Self> {
        let invalid = |reason: String| Error::CrlInvalid { subject, reason };
        let (issuer, window) = crl_fields(der).map_err(|e| invalid(format!("DER: {e}")))?;
        let owned = match issuer_spki {
            Some(spki) => OwnedCertRevocationList::from_der_verified(der, spki, &[sig_algo()]),
            None => OwnedCertRevocationList::from_der(der),
        }
        .map_err(|e| match e {
            webpki::Error::InvalidCrlSignatureForPublicKey
            | webpki::Error::InvalidSignatureForPublicKey => {
                invalid("signature is not by the expected issuer".into())
            }
            other => invalid(format!("{other:?}")),
        })?;
        Ok(Self {
            crl: owned.into(),
            issuer,
            window,
            der: der.to_vec(),
        })
    }

    pub fn check_time(&self, now: i64, subject: Subject) -> Result<()> {
        if now < self.window.start {
            return Err(Error::CrlNotYetValid {
                subject,
                this_update: self.window.start,
                now,
            });
        }
        if now > self.window.end {
            return Err(Error::CrlExpired {
                subject,
                next_update: self.window.end.saturating_add(1),
                now,
            });
        }
        Ok(())
    }

    /// Whether the CRL lists `serial` (to name the revoked certificate; webpki decides).
    fn lists(&self, serial: &[u8]) -> bool {
        x509_cert::crl::CertificateList::<x509_cert::certificate::Rfc5280>::from_der(&self.der)
            .map(|crl| {
                crl.tbs_cert_list
                    .revoked_certificates
                    .iter()
                    .flatten()
                    .any(|r| r.serial_number.as_bytes() == serial)
            })
            .unwrap_or(false)
    }
}

/// What a chain is for: its error subjects.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ChainRole {
    /// Subject of the leaf (e.g. `PckCertificate`, `TcbInfo`).
    pub leaf: Subject,
    /// Subject of the other certificates (e.g. `PckCertChain`).
    pub rest: Subject,
}

impl ChainRole {
    fn at(self, position: usize) -> Subject {
        if position == 0 {
            self.leaf
        } else {
            self.rest
        }
    }
}

/// The CRLs that apply to a chain: the root CA CRL (signature already verified by the anchor)
/// and the PCK CRL.
pub(crate) struct Crls<'a> {
    pub root: &'a Crl,
    pub pck: &'a Crl,
}

/// Verify `certs` (leaf first, optionally ending in a copy of the root) up to `anchor` at
/// `now`, with revocation through `crls`. Returns the path length without the anchor and
/// the validity window of the certificates involved (anchor included).
///
/// Error mapping (webpki → ours), after our own structural checks have run:
/// - `InvalidSignatureForPublicKey` → `CertificateSignatureInvalid { position }`, where the
///   position is found by re-checking each link (only on this failure path);
/// - `InvalidCrlSignatureForPublicKey` / `UnknownRevocationStatus` → `CrlInvalid` of the CRL
///   that should have covered the certificate;
/// - `CertRevoked` → `CertificateRevoked` with the serial found in our parsed CRLs;
/// - `UnknownIssuer` → `UntrustedRoot`;
/// - DER/encoding errors → `CertificateMalformed`; every other path error (CA used as end
///   entity, end entity used as CA, path length, key usage …) → `CertificateChainInvalid`.
pub(crate) fn verify_chain(
    certs: &[Cert],
    role: ChainRole,
    anchor: &Anchor,
    crls: &Crls<'_>,
    now: i64,
) -> Result<(usize, Window)> {
    let (leaf, rest) = certs.split_first().ok_or(Error::CertificateChainInvalid {
        subject: role.leaf,
        reason: "empty chain".into(),
    })?;

    // Strict order: each certificate is issued by the next one.
    for (i, pair) in certs.windows(2).enumerate() {
        if let [child, parent] = pair {
            if child.issuer != parent.subject {
                return Err(Error::CertificateChainInvalid {
                    subject: role.at(i),
                    reason: format!(
                        "certificate {i} ({}) is not issued by certificate {} ({})",
                        child.subject,
                        i.saturating_add(1),
                        parent.subject
                    ),
                });
            }
        }
    }

    // The top of the given chain: a root copy must be our anchor (same key; a copy that is not
    // byte-identical must at least carry a valid self-signature), otherwise the chain must end
    // just below the anchor.
    let top_index = certs.len().saturating_sub(1);
    let top = certs.last().unwrap_or(leaf);
    let with_root_copy = certs.len() > 1 && top.self_issued();
    if with_root_copy || (certs.len() == 1 && top.self_issued()) {
        if top.public_key != anchor.cert.public_key {
            return Err(Error::UntrustedRoot {
                subject: role.at(top_index),
            });
        }
        if top.der != anchor.cert.der && !top.signed_by(&anchor.cert.public_key) {
            return Err(Error::CertificateSignatureInvalid {
                subject: role.at(top_index),
                position: top_index,
            });
        }
    } else if top.issuer != anchor.cert.subject {
        return Err(Error::CertificateChainInvalid {
            subject: role.at(top_index),
            reason: format!(
                "incomplete chain: the issuer of {} ({}) is neither in the chain nor the trust anchor",
                top.subject, top.issuer
            ),
        });
    }

    // Validity of every certificate and of the anchor (webpki does not check the anchor).
    let mut window = anchor.cert.window;
    anchor.cert.check_time(now, role.rest)?;
    for (i, cert) in certs.iter().enumerate() {
        cert.check_time(now, role.at(i))?;
        window = window.and(cert.window);
    }

    // Path validation proper.
    let intermediates: Vec<CertificateDer<'_>> = rest
        .iter()
        .filter(|c| !c.self_issued())
        .map(|c| c.der.clone())
        .collect();
    let ee =
        webpki::EndEntityCert::try_from(&leaf.der).map_err(|e| Error::CertificateMalformed {
            subject: role.leaf,
            reason: format!("{e:?}"),
        })?;
    let crl_refs = [&crls.root.crl, &crls.pck.crl];
    let revocation = webpki::RevocationOptionsBuilder::new(&crl_refs)
        .map_err(|_| Error::CertificateChainInvalid {
            subject: role.leaf,
            reason: "no CRLs".into(),
        })?
        .with_depth(webpki::RevocationCheckDepth::Chain)
        .with_status_policy(webpki::UnknownStatusPolicy::Deny)
        .with_expiration_policy(webpki::ExpirationPolicy::Enforce)
        .build();
    let anchors = [anchor.anchor.clone()];
    let path = ee
        .verify_for_usage(
            &[sig_algo()],
            &anchors,
            &intermediates,
            unix_time(now),
            webpki::KeyUsage::server_auth(),
            Some(revocation),
            None,
        )
        .map_err(|e| map_path_error(e, certs, role, anchor, crls, now))?;
    let length = path.intermediate_certificates().count().saturating_add(1);
    Ok((length, window))
}

fn map_path_error(
    e: webpki::Error,
    certs: &[Cert],
    role: ChainRole,
    anchor: &Anchor,
    crls: &Crls<'_>,
    now: i64,
) -> Error {
    use webpki::Error as W;
    // The chain below the root copy, each certificate with the key that must have signed it.
    let links: Vec<(usize, &Cert, &[u8])> = certs
        .iter()
        .enumerate()
        .filter(|(_, c)| !c.self_issued())
        .map(|(i, c)| {
            let issuer_key = match certs.get(i.saturating_add(1)) {
                Some(parent) if !parent.self_issued() => parent.public_key.as_slice(),
                _ => anchor.cert.public_key.as_slice(),
            };
            (i, c, issuer_key)
        })
        .collect();
    // The CRL that covers certificate `c`: the root CA CRL for what the root issued.
    let crl_for = |c: &Cert| {
        if c.issuer == anchor.cert.subject {
            (crls.root, Subject::RootCaCrl)
        } else {
            (crls.pck, Subject::PckCrl)
        }
    };
    match e {
        W::InvalidSignatureForPublicKey => {
            let position = links
                .iter()
                .find(|(_, c, key)| !c.signed_by(key))
                .map(|(i, _, _)| *i)
                .unwrap_or(0);
            Error::CertificateSignatureInvalid {
                subject: role.at(position),
                position,
            }
        }
        W::InvalidCrlSignatureForPublicKey | W::UnknownRevocationStatus => {
            let (subject, reason) = links
                .iter()
                .find_map(|(i, c, _)| {
                    let (crl, subject) = crl_for(c);
                    (crl.issuer != c.issuer).then(|| {
                        (
                            subject,
                            format!(
                                "issued by {}, not by the issuer of certificate {i} ({})",
                                crl.issuer, c.issuer
                            ),
                        )
                    })
                })
                .unwrap_or_else(|| {
                    let (_, subject) = links
                        .first()
                        .map(|(_, c, _)| crl_for(c))
                        .unwrap_or((crls.pck, Subject::PckCrl));
                    (subject, "signature is not by the issuer it names".into())
                });
            Error::CrlInvalid { subject, reason }
        }
        W::CertRevoked => links
            .iter()
            .find(|(_, c, _)| crl_for(c).0.lists(&c.serial))
            .map(|(i, c, _)| Error::CertificateRevoked {
                subject: role.at(*i),
                serial: hex::encode(&c.serial),
            })
            .unwrap_or(Error::CertificateRevoked {
                subject: role.leaf,
                serial: String::new(),
            }),
        W::CrlExpired { .. } => {
            let (crl, subject) = links
                .first()
                .map(|(_, c, _)| crl_for(c))
                .unwrap_or((crls.pck, Subject::PckCrl));
            Error::CrlExpired {
                subject,
                next_update: crl.window.end.saturating_add(1),
                now,
            }
        }
        W::UnknownIssuer => Error::UntrustedRoot { subject: role.leaf },
        W::BadDer
        | W::BadDerTime
        | W::TrailingData(_)
        | W::UnsupportedCertVersion
        | W::MalformedExtensions
        | W::ExtensionValueInvalid
        | W::InvalidCertValidity
        | W::InvalidSerialNumber
        | W::UnsupportedCriticalExtension => Error::CertificateMalformed {
            subject: role.leaf,
            reason: format!("{e:?}"),
        },
        other => Error::CertificateChainInvalid {
            subject: role.leaf,
            reason: format!("{other:?}"),
        },
    }
}
