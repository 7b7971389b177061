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
use webpki::{BorrowedCertRevocationList, CertRevocationList, OwnedCertRevocationList};
use x509_cert::name::Name;

use crate::error::{Error, Result, Subject};
use crate::TrustRoot;

/// Intel's chains have at most leaf, one intermediate and the root; allow a little slack but
/// keep webpki's path search small (each extra candidate multiplies its work).
const MAX_CHAIN_CERTS: usize = 5;
/// A DCAP PEM chain is ~3 KiB; refuse anything far larger before decoding.
const MAX_PEM_CHAIN_BYTES: usize = 32 * 1024;

/// ECDSA P-256 with SHA-256 (ring), the only algorithm Intel's DCAP PKI uses; the same
/// algorithm object dcap-qvl's ring backend passes to webpki.
pub(crate) fn sig_algo() -> &'static dyn SignatureVerificationAlgorithm {
    #[cfg(test)]
    {
        &counting::COUNTING
    }
    #[cfg(not(test))]
    {
        <dcap_qvl::crypto::RingCrypto as dcap_qvl::config::CryptoProvider>::sig_algo()
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
        <dcap_qvl::crypto::RingCrypto as dcap_qvl::config::CryptoProvider>::sig_algo()
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

/// A distinguished name as its DER encoding. Names are compared as bytes, as webpki does
/// (DER is canonical, so equal names have equal encodings); decoded only for messages.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct RawName<'a>(&'a [u8]);

impl std::fmt::Display for RawName<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match Name::from_der(self.0) {
            Ok(name) => name.fmt(f),
            Err(_) => f.write_str(&hex::encode(self.0)),
        }
    }
}

impl std::fmt::Debug for RawName<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// A parsed certificate: webpki's DER plus the fields webpki keeps private.
#[derive(Debug, Clone)]
pub(crate) struct Cert<'a> {
    pub der: CertificateDer<'a>,
    /// Where the subject and issuer names lie in `der`.
    subject: std::ops::Range<usize>,
    issuer: std::ops::Range<usize>,
    pub serial: Vec<u8>,
    pub window: Window,
    /// The subjectPublicKey bits (SEC1 point for EC keys).
    pub public_key: Vec<u8>,
}

impl<'a> Cert<'a> {
    pub fn parse(der: CertificateDer<'a>, subject: Subject) -> Result<Self> {
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

    pub fn subject(&self) -> RawName<'_> {
        RawName(self.der.get(self.subject.clone()).unwrap_or_default())
    }

    pub fn issuer(&self) -> RawName<'_> {
        RawName(self.der.get(self.issuer.clone()).unwrap_or_default())
    }

    pub fn self_issued(&self) -> bool {
        self.subject() == self.issuer()
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
    issuer: std::ops::Range<usize>,
    window: Window,
    subject: std::ops::Range<usize>,
    public_key: Vec<u8>,
}

/// Read a `Name` and return where its encoding lies in `input` (the reader's input). Names
/// whose every RDN is one attribute (Intel's) are checked here for what x509-cert's `Name`
/// decoder checks of them (SEQUENCE OF SET OF SEQUENCE { OID, ANY }) without building one:
/// its decoding allocated per attribute, and only error messages need names decoded. Any
/// other name (an empty or multi-valued RDN) is given to x509-cert's decoder itself, for its
/// set-ordering rules.
fn read_name(r: &mut der::SliceReader<'_>, input: &[u8]) -> der::Result<std::ops::Range<usize>> {
    use der::asn1::{AnyRef, ObjectIdentifier};
    use der::{Reader as _, Tagged as _};
    let start = usize::try_from(r.position())?;
    let mut only_single_attributes = true;
    r.sequence(|rdns| {
        while !rdns.is_finished() {
            let set = AnyRef::decode(rdns)?;
            if set.tag() != der::Tag::Set {
                return Err(der::Tag::Set.value_error().into());
            }
            let mut atvs = der::SliceReader::new(set.value())?;
            let mut count = 0usize;
            while !atvs.is_finished() {
                let atv = atvs.tlv_bytes()?;
                count = count.saturating_add(1);
                let mut fields = der::SliceReader::new(atv)?;
                fields.sequence(|f| {
                    <ObjectIdentifier>::decode(f)?;
                    AnyRef::decode(f)?;
                    Ok::<_, der::Error>(())
                })?;
                fields.finish()?;
            }
            only_single_attributes &= count == 1;
        }
        Ok::<_, der::Error>(())
    })?;
    let end = usize::try_from(r.position())?;
    if !only_single_attributes {
        let bytes = input
            .get(start..end)
            .ok_or_else(|| der::Error::from(der::ErrorKind::Failed))?;
        Name::from_der(bytes)?;
    }
    Ok(start..end)
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
            let issuer = read_name(tbs, der)?;
            let validity = x509_cert::time::Validity::<Rfc5280>::decode(tbs)?;
            let subject = read_name(tbs, der)?;
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
fn crl_fields(der: &[u8]) -> der::Result<(Vec<u8>, Window)> {
    use der::Reader as _;
    let mut reader = der::SliceReader::new(der)?;
    let fields = reader.sequence(|list| {
        let fields = list.sequence(|tbs| {
            if der::Tag::peek(tbs)? == der::Tag::Integer {
                tbs.tlv_bytes()?; // version
            }
            tbs.tlv_bytes()?; // signature algorithm
            let issuer = read_name(tbs, der)?;
            let issuer = der.get(issuer).unwrap_or_default().to_vec();
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

/// The PEM stage of reading a chain, kept apart so that [`crate::tdx::Collateral`] can run
/// it once at construction: the size check, then the PEM items in order, stopping after the
/// first broken one or the first one over [`MAX_CHAIN_CERTS`] (nothing after either can
/// change the outcome). [`PemChain::parse`] then reports exactly what a single pass would.
#[derive(Debug, Clone)]
pub(crate) struct PemChain {
    subject: Subject,
    items: Result<Vec<std::result::Result<CertificateDer<'static>, String>>>,
}

impl PemChain {
    pub(crate) fn decode(pem: &[u8], subject: Subject) -> Self {
        if pem.len() > MAX_PEM_CHAIN_BYTES {
            return Self {
                subject,
                items: Err(Error::InputTooLarge {
                    subject,
                    size: pem.len(),
                    limit: MAX_PEM_CHAIN_BYTES,
                }),
            };
        }
        if let Some(mut certs) = canonical_pem_certs(pem) {
            // As from the reader below: at most one certificate past the limit.
            certs.truncate(MAX_CHAIN_CERTS.saturating_add(1));
            return Self {
                subject,
                items: Ok(certs.into_iter().map(Ok).collect()),
            };
        }
        let mut items = Vec::new();
        for item in CertificateDer::pem_slice_iter(pem) {
            let stop = item.is_err() || items.len() >= MAX_CHAIN_CERTS;
            items.push(item.map_err(|e| e.to_string()));
            if stop {
                break;
            }
        }
        Self {
            subject,
            items: Ok(items),
        }
    }

    /// The certificates, leaf first. A copy of an anchor takes the anchor's parsed fields
    /// (same bytes, same fields) instead of being parsed again.
    pub(crate) fn parse(&self, anchors: &[Anchor]) -> Result<Vec<Cert<'_>>> {
        let subject = self.subject;
        let items = self.items.as_ref().map_err(Clone::clone)?;
        let mut certs = Vec::with_capacity(items.len());
        for item in items {
            let der = item.as_ref().map_err(|e| Error::CertificateMalformed {
                subject,
                reason: format!("PEM: {e}"),
            })?;
            if certs.len() >= MAX_CHAIN_CERTS {
                return Err(Error::CertificateChainInvalid {
                    subject,
                    reason: format!("more than {MAX_CHAIN_CERTS} certificates"),
                });
            }
            let der = CertificateDer::from(der.as_ref());
            let cert = match anchors.iter().find(|a| a.cert.der == der) {
                Some(a) => Cert {
                    der,
                    subject: a.cert.subject.clone(),
                    issuer: a.cert.issuer.clone(),
                    serial: a.cert.serial.clone(),
                    window: a.cert.window,
                    public_key: a.cert.public_key.clone(),
                },
                None => Cert::parse(der, subject)?,
            };
            certs.push(cert);
        }
        if certs.is_empty() {
            return Err(Error::CertificateChainInvalid {
                subject,
                reason: "no certificate in the chain".into(),
            });
        }
        // Intel's sample data lists chains root first; PCS headers and quotes list them leaf
        // first.
        if certs.len() > 1 && certs.first().is_some_and(Cert::self_issued) {
            certs.reverse();
        }
        Ok(certs)
    }
}

/// The certificates of a PEM chain of exactly the canonical shape: only `CERTIFICATE`
/// sections with `\n` line ends, nothing between them, lines of the base64 alphabet that
/// decode with canonical padding and zero trailing bits, and at most NUL bytes after the last
/// (real quotes end the chain with one). rustls' PEM reader returns exactly these
/// certificates for such input; `None` for anything else, which then goes through it. The
/// quote's PCK chain is decoded on every cold call, and the base64 crate decodes it about
/// three times as fast as rustls' reader.
fn canonical_pem_certs(pem: &[u8]) -> Option<Vec<CertificateDer<'static>>> {
    use base64::Engine as _;
    const BEGIN: &[u8] = b"-----BEGIN CERTIFICATE-----\n";
    const END: &[u8] = b"-----END CERTIFICATE-----\n";
    let mut rest = pem;
    let mut certs = Vec::new();
    let mut b64 = Vec::with_capacity(2048);
    while !rest.iter().all(|&b| b == 0) {
        rest = rest.strip_prefix(BEGIN)?;
        let end = rest.windows(END.len()).position(|w| w == END)?;
        let (body, after) = rest.split_at(end);
        // The END marker must start a line (rustls' reader only sees it there).
        if !(body.is_empty() || body.ends_with(b"\n")) {
            return None;
        }
        rest = after.get(END.len()..)?;
        b64.clear();
        for line in body.split(|&b| b == b'\n') {
            if !line
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'=')
            {
                return None;
            }
            b64.extend_from_slice(line);
        }
        let der = base64::engine::general_purpose::STANDARD
            .decode(&b64)
            .ok()?;
        certs.push(CertificateDer::from(der));
    }
    (!certs.is_empty()).then_some(certs)
}

/// A trust anchor, checked once when the verifier is built.
#[derive(Debug)]
pub(crate) struct Anchor {
    pub kind: TrustRoot,
    pub cert: Cert<'static>,
    /// One anchor, as webpki takes a slice of them.
    pub anchor: [TrustAnchor<'static>; 1],
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
            anchor: [anchor],
            key_id_error,
        })
    }

    /// Whether a chain whose top certificate is `top` ends in this anchor: a root copy with
    /// this key, or a certificate this anchor's name issued.
    pub fn ends(&self, top: &Cert<'_>) -> bool {
        if top.self_issued() {
            top.public_key == self.cert.public_key
        } else {
            top.issuer() == self.cert.subject()
        }
    }

    /// SubjectPublicKeyInfo without its outer tag, as webpki's CRL API wants it.
    pub fn spki(&self) -> &[u8] {
        let [anchor] = &self.anchor;
        anchor.subject_public_key_info.as_ref()
    }
}

/// A parsed CRL with its dates, issuer and revoked serials.
#[derive(Debug)]
pub(crate) struct Crl {
    data: CrlData,
    issuer: Vec<u8>,
    subject: Subject,
    pub window: Window,
}

/// A CRL whose signature was verified when parsed is kept as webpki's owned list (which
/// remembers that, so webpki does not verify it again). Any other is kept as DER and handed to
/// webpki borrowed: the owned list copies every revoked serial into a map (about 1.5% of a
/// cold verification for Intel's PCK CRL), and webpki verifies the signature of an unverified
/// list during path validation either way.
#[derive(Debug)]
enum CrlData {
    Verified(CertRevocationList<'static>),
    Der(Vec<u8>),
}

/// A CRL as webpki takes it: a reference to the owned list or a borrowed parse.
pub(crate) enum CrlList<'a> {
    Ref(&'a CertRevocationList<'static>),
    Parsed(CertRevocationList<'a>),
}

impl CrlList<'_> {
    pub fn get(&self) -> &CertRevocationList<'_> {
        match self {
            CrlList::Ref(list) => list,
            CrlList::Parsed(list) => list,
        }
    }
}

impl Crl {
    /// Parse a DER CRL; with `issuer_spki`, its signature is verified now (and webpki skips
    /// it later). Dates are checked separately ([`Crl::check_time`]).
    pub fn parse(der: &[u8], subject: Subject, issuer_spki: Option<&[u8]>) -> Result<Self> {
        let invalid = |reason: String| Error::CrlInvalid { subject, reason };
        let (issuer, window) = crl_fields(der).map_err(|e| invalid(format!("DER: {e}")))?;
        let map = |e| match e {
            webpki::Error::InvalidCrlSignatureForPublicKey
            | webpki::Error::InvalidSignatureForPublicKey => {
                invalid("signature is not by the expected issuer".into())
            }
            other => invalid(format!("{other:?}")),
        };
        let data = match issuer_spki {
            Some(spki) => CrlData::Verified(
                OwnedCertRevocationList::from_der_verified(der, spki, &[sig_algo()])
                    .map_err(map)?
                    .into(),
            ),
            None => {
                // What `OwnedCertRevocationList::from_der` checks: the list, then every entry.
                let list = BorrowedCertRevocationList::from_der(der).map_err(map)?;
                for entry in &list {
                    entry.map_err(map)?;
                }
                CrlData::Der(der.to_vec())
            }
        };
        Ok(Self {
            data,
            issuer,
            subject,
            window,
        })
    }

    /// The list for webpki.
    pub fn list(&self) -> Result<CrlList<'_>> {
        match &self.data {
            CrlData::Verified(list) => Ok(CrlList::Ref(list)),
            CrlData::Der(der) => BorrowedCertRevocationList::from_der(der)
                .map(|l| CrlList::Parsed(l.into()))
                .map_err(|e| Error::CrlInvalid {
                    subject: self.subject,
                    reason: format!("{e:?}"),
                }),
        }
    }

    pub fn issuer(&self) -> RawName<'_> {
        RawName(&self.issuer)
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
        self.list()
            .is_ok_and(|l| matches!(l.get().find_serial(serial), Ok(Some(_))))
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
    certs: &[Cert<'_>],
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
            if child.issuer() != parent.subject() {
                return Err(Error::CertificateChainInvalid {
                    subject: role.at(i),
                    reason: format!(
                        "certificate {i} ({}) is not issued by certificate {} ({})",
                        child.subject(),
                        i.saturating_add(1),
                        parent.subject()
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
    } else if top.issuer() != anchor.cert.subject() {
        return Err(Error::CertificateChainInvalid {
            subject: role.at(top_index),
            reason: format!(
                "incomplete chain: the issuer of {} ({}) is neither in the chain nor the trust anchor",
                top.subject(), top.issuer()
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
        .map(|c| CertificateDer::from(c.der.as_ref()))
        .collect();
    let ee =
        webpki::EndEntityCert::try_from(&leaf.der).map_err(|e| Error::CertificateMalformed {
            subject: role.leaf,
            reason: format!("{e:?}"),
        })?;
    let (root_crl, pck_crl) = (crls.root.list()?, crls.pck.list()?);
    let crl_refs = [root_crl.get(), pck_crl.get()];
    let revocation = webpki::RevocationOptionsBuilder::new(&crl_refs)
        .map_err(|_| Error::CertificateChainInvalid {
            subject: role.leaf,
            reason: "no CRLs".into(),
        })?
        .with_depth(webpki::RevocationCheckDepth::Chain)
        .with_status_policy(webpki::UnknownStatusPolicy::Deny)
        .with_expiration_policy(webpki::ExpirationPolicy::Enforce)
        .build();
    let path = ee
        .verify_for_usage(
            &[sig_algo()],
            &anchor.anchor,
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
    certs: &[Cert<'_>],
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
        if c.issuer() == anchor.cert.subject() {
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
                    (crl.issuer() != c.issuer()).then(|| {
                        (
                            subject,
                            format!(
                                "issued by {}, not by the issuer of certificate {i} ({})",
                                crl.issuer(),
                                c.issuer()
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

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]
mod tests {
    use super::*;
    use crate::tdx::{Collateral, Quote};
    use crate::test_vectors;

    fn rustls_certs(pem: &[u8]) -> Vec<std::result::Result<Vec<u8>, String>> {
        CertificateDer::pem_slice_iter(pem)
            .map(|c| c.map(|d| d.to_vec()).map_err(|e| e.to_string()))
            .collect()
    }

    fn real_chains() -> Vec<(String, Vec<u8>)> {
        let mut chains = Vec::new();
        for name in ["tdx/tdx_quote", "tdx/sgx_quote", "tdx/tdx_quote_outdated"] {
            let quote = Quote::parse(&test_vectors::read(name)).unwrap();
            chains.push((name.into(), quote.pck_chain_pem().unwrap().to_vec()));
        }
        for name in [
            "tdx/tdx_quote_collateral.json",
            "tdx/sgx_quote_collateral.json",
        ] {
            let c = Collateral::from_json(&test_vectors::read(name))
                .unwrap()
                .inner;
            for (field, pem) in [
                ("tcb", c.tcb_info_issuer_chain),
                ("qe", c.qe_identity_issuer_chain),
                ("crl", c.pck_crl_issuer_chain),
            ] {
                chains.push((format!("{name} {field}"), pem.into_bytes()));
            }
        }
        chains
    }

    #[test]
    fn real_pem_chains_decode_directly_to_what_rustls_reads() {
        for (name, pem) in real_chains() {
            let direct = canonical_pem_certs(&pem).unwrap_or_else(|| panic!("{name}"));
            let direct: Vec<_> = direct.into_iter().map(|d| Ok(d.to_vec())).collect();
            assert_eq!(direct, rustls_certs(&pem), "{name}");
        }
    }

    #[test]
    fn every_byte_change_of_a_pck_chain_decodes_directly_only_to_what_rustls_reads() {
        let (_, pem) = real_chains().remove(0);
        let mut direct = 0;
        for i in 0..pem.len() {
            for x in [0x01u8, 0x20, 0x80, 0x0c] {
                let mut m = pem.clone();
                m[i] ^= x;
                let Some(certs) = canonical_pem_certs(&m) else {
                    continue;
                };
                direct += 1;
                let certs: Vec<_> = certs.into_iter().map(|d| Ok(d.to_vec())).collect();
                assert_eq!(certs, rustls_certs(&m), "byte {i} ^ {x:#04x}");
            }
        }
        // Changed base64 letters still take the direct path.
        assert!(direct > 1000, "{direct}");
    }

    /// `read_name` followed by the end of input, as `Name::from_der` reads a name.
    fn read_whole_name(bytes: &[u8]) -> bool {
        use der::Reader as _;
        let Ok(mut r) = der::SliceReader::new(bytes) else {
            return false;
        };
        read_name(&mut r, bytes).is_ok() && r.finish().is_ok()
    }

    #[test]
    fn names_are_accepted_exactly_when_x509_cert_decodes_them() {
        let (_, pem) = real_chains().remove(0);
        let mut names = Vec::new();
        for item in CertificateDer::pem_slice_iter(&pem) {
            let cert = Cert::parse(item.unwrap(), Subject::PckCertChain).unwrap();
            names.push(cert.subject().0.to_vec());
            names.push(cert.issuer().0.to_vec());
        }
        assert!(names.iter().all(|n| read_whole_name(n)));
        // Multi-valued RDNs: the first two attributes of the leaf's subject in one SET, in
        // both orders (one of them out of DER order), and an empty SET.
        let atvs: Vec<Vec<u8>> = {
            use der::Reader as _;
            let mut r = der::SliceReader::new(&names[0]).unwrap();
            let mut out = Vec::new();
            r.sequence(|rdns| {
                while !rdns.is_finished() {
                    let set = der::asn1::AnyRef::decode(rdns)?;
                    out.push(set.value().to_vec());
                }
                Ok::<_, der::Error>(())
            })
            .unwrap();
            out
        };
        let tlv = |tag: u8, parts: &[&[u8]]| {
            let body = parts.concat();
            assert!(body.len() < 128);
            [vec![tag, body.len() as u8], body].concat()
        };
        for set in [
            tlv(0x31, &[&atvs[0], &atvs[1]]),
            tlv(0x31, &[&atvs[1], &atvs[0]]),
            tlv(0x31, &[]),
        ] {
            let name = tlv(0x30, &[&set]);
            assert_eq!(read_whole_name(&name), Name::from_der(&name).is_ok());
            names.push(name);
        }
        let mut checked = 0;
        for name in names {
            for i in 0..name.len() {
                for x in [0x01u8, 0x02, 0x20, 0x80, 0xff] {
                    let mut m = name.clone();
                    m[i] ^= x;
                    assert_eq!(
                        read_whole_name(&m),
                        Name::from_der(&m).is_ok(),
                        "byte {i} ^ {x:#04x} of {}",
                        hex::encode(&name)
                    );
                    checked += 1;
                }
            }
        }
        assert!(checked > 1000);
    }

    #[test]
    fn pem_chains_of_other_shapes_go_through_rustls() {
        let (_, pem) = real_chains().remove(0);
        let text = String::from_utf8(pem.clone()).unwrap();
        for other in [
            text.replace('\n', "\r\n"),
            format!("junk\n{text}"),
            text.replace("-----END CERTIFICATE-----", "-----END CERTIFICATE----- "),
            text.replacen(
                "-----BEGIN CERTIFICATE-----\n",
                "-----BEGIN CERTIFICATE-----\n ",
                1,
            ),
            String::new(),
        ] {
            assert!(canonical_pem_certs(other.as_bytes()).is_none(), "{other:?}");
        }
    }
}
