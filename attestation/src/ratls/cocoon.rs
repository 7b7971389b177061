//! COCOON interop: parsing, checking and issuing the RA-TLS certificates of Telegram's COCOON.
//!
//! COCOON workers present a self-signed **Ed25519** X.509 certificate (made with OpenSSL) that
//! carries two **critical** private extensions whose `extnValue` OCTET STRING holds raw bytes
//! (no inner DER):
//!
//! | OID | content |
//! |---|---|
//! | [`COCOON_QUOTE_OID`] `1.3.6.1.4.1.12345.1` | the raw Intel TDX DCAP quote |
//! | [`COCOON_USER_CLAIMS_OID`] `1.3.6.1.4.1.12345.2` | the serialized user claims: today exactly the certificate's 32-byte raw Ed25519 public key |
//!
//! The quote's 64-byte REPORT_DATA is `SHA-512(user claims)`. Their certificates also carry
//! critical basicConstraints `CA:FALSE`, critical keyUsage `digitalSignature`, critical
//! extKeyUsage `serverAuth, clientAuth`, a subjectKeyIdentifier (SHA-1 of the key, OpenSSL's
//! `hash`), subjectAltName `DNS:localhost, DNS:127.0.0.1, IP:::1` (their generator types every
//! name containing a dot as DNS, so `127.0.0.1` is a dNSName, not an iPAddress), a validity of
//! one day, subject = issuer = `C=AE, ST=DUBAI, O=TDLib Development, OU=Security, CN=localhost`
//! and a 128-bit random serial. Full description with sources: `docs/ratls-cocoon.md`.
//!
//! What this module does, and what it leaves to its caller:
//!
//! - [`CocoonCertificate::parse`] checks the **structure** and the **self-signature**: size
//!   caps, DER without trailing bytes, X.509 v3, Ed25519 key and signature, issuer = subject,
//!   signature valid, no duplicate extension, no critical extension outside the set above,
//!   both COCOON extensions present and critical. It does **not** verify the quote, check times
//!   or apply a policy.
//! - the caller verifies [`CocoonCertificate::quote`] with
//!   [`TdxVerifier`](crate::tdx::TdxVerifier) and collateral, then calls
//!   [`CocoonCertificate::check_binding`] with the verified REPORT_DATA, then
//!   [`CocoonCertificate::check_time`] and its policy ([`crate::policy::Policy::evaluate_tdx`];
//!   [`CocoonCertificate::image_hash`] gives COCOON's own image identity for display and
//!   allowlists).
//!
//! Stricter than COCOON itself: COCOON's verifier ignores the user-claims extension and
//! recomputes the claims from the certificate key; we require the extension and require it to
//! equal the key ([`Error::CocoonClaimsMismatch`]), so a certificate whose claims say something
//! else than its key is refused rather than silently reinterpreted. COCOON's SEV-SNP
//! certificates (extensions `1.3.6.1.4.1.12345.100`–`.102`) are not read here: they carry no
//! quote extension ([`is_cocoon_certificate`] is false) and their critical extensions are
//! unknown to [`CocoonCertificate::parse`].

use ring::signature::{UnparsedPublicKey, ED25519};
use sha2::{Digest, Sha256, Sha512};
use x509_parser::extensions::ParsedExtension;
use x509_parser::prelude::{FromDer, X509Certificate, X509Version};

use crate::error::{Error, Result, Subject};

/// The extension holding the raw TDX quote.
pub const COCOON_QUOTE_OID: &str = "1.3.6.1.4.1.12345.1";
/// The extension holding the serialized user claims (today: the raw Ed25519 public key).
pub const COCOON_USER_CLAIMS_OID: &str = "1.3.6.1.4.1.12345.2";

/// Largest certificate accepted, in bytes.
pub const MAX_COCOON_CERT_SIZE: usize = 64 * 1024;
/// Largest quote extension accepted, in bytes: COCOON's own cap, so that every certificate a
/// COCOON worker may send is read (real TDX quotes with their PCK chain are 5–8 KiB).
pub const MAX_COCOON_QUOTE_SIZE: usize = 32 * 1024;
/// Largest user-claims extension accepted, in bytes.
pub const MAX_COCOON_CLAIMS_SIZE: usize = 4 * 1024;

/// Validity of the certificates COCOON issues (and the default of [`issue_cocoon_certificate`]'s
/// callers): one day.
pub const COCOON_CERT_VALIDITY_SECS: i64 = 86_400;

/// Length of COCOON's serialized TDX attestation data (the input of [`CocoonCertificate::image_hash`]).
pub const COCOON_IMAGE_DATA_LEN: usize = 8 * 48 + 64;

const OID_ED25519: &str = "1.3.101.112";
const OID_BASIC_CONSTRAINTS: &str = "2.5.29.19";
const OID_KEY_USAGE: &str = "2.5.29.15";
const OID_EXT_KEY_USAGE: &str = "2.5.29.37";
const OID_SUBJECT_KEY_ID: &str = "2.5.29.14";
const OID_SUBJECT_ALT_NAME: &str = "2.5.29.17";

/// The extensions a COCOON certificate may mark critical: the standard ones COCOON's generator
/// writes plus the two COCOON ones.
const ALLOWED_CRITICAL: [&str; 7] = [
    OID_BASIC_CONSTRAINTS,
    OID_KEY_USAGE,
    OID_EXT_KEY_USAGE,
    OID_SUBJECT_KEY_ID,
    OID_SUBJECT_ALT_NAME,
    COCOON_QUOTE_OID,
    COCOON_USER_CLAIMS_OID,
];

/// A parsed COCOON RA-TLS certificate whose structure and self-signature are valid. The quote
/// is **not** verified yet: see the module documentation for the remaining steps.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CocoonCertificate {
    /// The raw TDX quote (extension [`COCOON_QUOTE_OID`]), unverified.
    pub quote: Vec<u8>,
    /// The raw user claims (extension [`COCOON_USER_CLAIMS_OID`]).
    pub user_claims: Vec<u8>,
    /// The certificate's raw Ed25519 public key.
    pub public_key: [u8; 32],
    /// notBefore, unix seconds.
    pub not_before: i64,
    /// notAfter, unix seconds (inclusive, as in X.509).
    pub not_after: i64,
    /// The serial number's content octets (big-endian, as encoded).
    pub serial: Vec<u8>,
    /// The subject (= issuer) in RFC 4514 form, for display.
    pub subject: String,
    /// SHA-256 of the DER SubjectPublicKeyInfo (what our own claims call `tls_spki_sha256`).
    pub spki_sha256: [u8; 32],
}

/// Whether `der` is an X.509 certificate with COCOON's quote extension (a quick test to pick
/// the COCOON path; it checks nothing else: call [`CocoonCertificate::parse`]).
pub fn is_cocoon_certificate(der: &[u8]) -> bool {
    if der.len() > MAX_COCOON_CERT_SIZE {
        return false;
    }
    match X509Certificate::from_der(der) {
        Ok((_, cert)) => cert
            .extensions()
            .iter()
            .any(|ext| ext.oid.to_id_string() == COCOON_QUOTE_OID),
        Err(_) => false,
    }
}

/// The REPORT_DATA COCOON puts in the quote for some user claims: SHA-512(claims).
pub fn cocoon_report_data(user_claims: &[u8]) -> [u8; 64] {
    Sha512::digest(user_claims).into()
}

impl CocoonCertificate {
    /// Parses a DER certificate and checks its structure and self-signature (module docs).
    pub fn parse(der: &[u8]) -> Result<Self> {
        if der.len() > MAX_COCOON_CERT_SIZE {
            return Err(Error::InputTooLarge {
                subject: Subject::Certificate,
                size: der.len(),
                limit: MAX_COCOON_CERT_SIZE,
            });
        }
        let (rest, cert) =
            X509Certificate::from_der(der).map_err(|e| malformed(format!("not X.509: {e}")))?;
        if !rest.is_empty() {
            return Err(Error::TrailingBytes {
                subject: Subject::Certificate,
                count: rest.len(),
            });
        }
        if cert.version() != X509Version::V3 {
            return Err(malformed(format!(
                "version {} (COCOON certificates are X.509 v3)",
                cert.version().0.saturating_add(1)
            )));
        }

        // Key and algorithms: Ed25519 only, parameters absent (RFC 8410).
        let spki = cert.public_key();
        let key_algorithm = spki.algorithm.algorithm.to_id_string();
        if key_algorithm != OID_ED25519 {
            return Err(Error::CocoonUnsupportedKey {
                algorithm: key_algorithm,
            });
        }
        if spki.algorithm.parameters.is_some() {
            return Err(malformed("Ed25519 key algorithm carries parameters".into()));
        }
        if spki.subject_public_key.unused_bits != 0 {
            return Err(malformed("public key BIT STRING has unused bits".into()));
        }
        let public_key: [u8; 32] =
            spki.subject_public_key
                .data
                .as_ref()
                .try_into()
                .map_err(|_| {
                    malformed(format!(
                        "Ed25519 public key of {} bytes (expected 32)",
                        spki.subject_public_key.data.len()
                    ))
                })?;
        for (place, alg) in [
            ("signatureAlgorithm", &cert.signature_algorithm),
            ("tbsCertificate.signature", &cert.tbs_certificate.signature),
        ] {
            let oid = alg.algorithm.to_id_string();
            if oid != OID_ED25519 || alg.parameters.is_some() {
                return Err(malformed(format!(
                    "{place} is {oid}, not Ed25519 without parameters"
                )));
            }
        }

        // Self-signed, depth 0: issuer = subject and the certificate's own key signs it.
        if cert.issuer().as_raw() != cert.subject().as_raw() {
            return Err(Error::CertificateChainInvalid {
                subject: Subject::Certificate,
                reason:
                    "issuer differs from subject: COCOON certificates are self-signed (depth 0)"
                        .into(),
            });
        }
        if cert.signature_value.unused_bits != 0 {
            return Err(malformed("signature BIT STRING has unused bits".into()));
        }
        UnparsedPublicKey::new(&ED25519, public_key)
            .verify(
                cert.tbs_certificate.as_ref(),
                cert.signature_value.data.as_ref(),
            )
            .map_err(|_| Error::CertificateSignatureInvalid {
                subject: Subject::Certificate,
                position: 0,
            })?;

        // Extensions.
        let mut seen: Vec<String> = Vec::new();
        let mut quote = None;
        let mut user_claims = None;
        for ext in cert.extensions() {
            let oid = ext.oid.to_id_string();
            if seen.contains(&oid) {
                return Err(Error::CocoonDuplicateExtension { oid });
            }
            if ext.critical && !ALLOWED_CRITICAL.contains(&oid.as_str()) {
                return Err(Error::CocoonUnknownCriticalExtension { oid });
            }
            match oid.as_str() {
                COCOON_QUOTE_OID => {
                    check_cocoon_extension(COCOON_QUOTE_OID, ext.critical)?;
                    if ext.value.len() > MAX_COCOON_QUOTE_SIZE {
                        return Err(Error::InputTooLarge {
                            subject: Subject::Quote,
                            size: ext.value.len(),
                            limit: MAX_COCOON_QUOTE_SIZE,
                        });
                    }
                    quote = Some(ext.value.to_vec());
                }
                COCOON_USER_CLAIMS_OID => {
                    check_cocoon_extension(COCOON_USER_CLAIMS_OID, ext.critical)?;
                    if ext.value.len() > MAX_COCOON_CLAIMS_SIZE {
                        return Err(Error::InputTooLarge {
                            subject: Subject::Claims,
                            size: ext.value.len(),
                            limit: MAX_COCOON_CLAIMS_SIZE,
                        });
                    }
                    user_claims = Some(ext.value.to_vec());
                }
                _ => check_standard_extension(&oid, ext.parsed_extension())?,
            }
            seen.push(oid);
        }
        let quote = quote.ok_or(Error::CocoonExtensionMissing {
            oid: COCOON_QUOTE_OID,
        })?;
        let user_claims = user_claims.ok_or(Error::CocoonExtensionMissing {
            oid: COCOON_USER_CLAIMS_OID,
        })?;

        Ok(Self {
            quote,
            user_claims,
            public_key,
            not_before: cert.validity().not_before.timestamp(),
            not_after: cert.validity().not_after.timestamp(),
            serial: cert.tbs_certificate.raw_serial().to_vec(),
            subject: cert.subject().to_string(),
            spki_sha256: Sha256::digest(spki.raw).into(),
        })
    }

    /// The REPORT_DATA a quote must carry to vouch for this certificate: SHA-512(user claims).
    pub fn expected_report_data(&self) -> [u8; 64] {
        cocoon_report_data(&self.user_claims)
    }

    /// Checks the binding of the certificate key to the (verified) quote's REPORT_DATA:
    /// `report_data == SHA-512(user_claims)` ([`Error::CocoonReportDataMismatch`]) and
    /// `user_claims == public_key` ([`Error::CocoonClaimsMismatch`]).
    ///
    /// The second check is stricter than COCOON, whose verifier ignores the claims extension and
    /// hashes the certificate key directly: both agree on every certificate COCOON issues.
    pub fn check_binding(&self, report_data: &[u8; 64]) -> Result<()> {
        let expected = self.expected_report_data();
        if &expected != report_data {
            return Err(Error::CocoonReportDataMismatch {
                expected: hex::encode(expected),
                actual: hex::encode(report_data),
            });
        }
        if self.user_claims != self.public_key {
            return Err(Error::CocoonClaimsMismatch {
                claims: hex::encode(&self.user_claims),
                public_key: hex::encode(self.public_key),
            });
        }
        Ok(())
    }

    /// Checks `not_before <= now <= not_after` (X.509 validity, both ends inclusive).
    pub fn check_time(&self, now: i64) -> Result<()> {
        if now < self.not_before {
            return Err(Error::CertificateNotYetValid {
                subject: Subject::Certificate,
                not_before: self.not_before,
                now,
            });
        }
        if now > self.not_after {
            return Err(Error::CertificateExpired {
                subject: Subject::Certificate,
                not_after: self.not_after,
                now,
            });
        }
        Ok(())
    }

    /// COCOON's "image hash" of a TDX quote (`None` for SGX): SHA-256 of
    /// [`cocoon_image_data`]. COCOON policies allowlist it (`allowed_image_hashes`); pass a
    /// **verified** quote (`VerifiedQuote::quote`): the hash of an unverified quote means
    /// nothing.
    pub fn image_hash(quote: &crate::tdx::Quote) -> Option<[u8; 32]> {
        cocoon_image_data(quote).map(|data| Sha256::digest(data).into())
    }
}

/// COCOON's serialization of a TD's attestation data (`tdx::TdxAttestationData` stored with
/// `td::serialize`, whose `UInt384`/`UInt512` fields are written as raw bytes, no length
/// prefix) with REPORTDATA zeroed: MRTD ‖ MRCONFIGID ‖ MROWNER ‖ MROWNERCONFIG ‖ RTMR0..3
/// (8 × 48 bytes) ‖ 64 zero bytes = [`COCOON_IMAGE_DATA_LEN`] bytes. `None` for SGX quotes.
pub fn cocoon_image_data(quote: &crate::tdx::Quote) -> Option<Vec<u8>> {
    let td = quote.td_report()?;
    let mut data = Vec::with_capacity(COCOON_IMAGE_DATA_LEN);
    for field in [
        &td.mr_td,
        &td.mr_config_id,
        &td.mr_owner,
        &td.mr_owner_config,
    ] {
        data.extend_from_slice(field);
    }
    for rtmr in &td.rt_mr {
        data.extend_from_slice(rtmr);
    }
    data.extend_from_slice(&[0u8; 64]);
    Some(data)
}

fn malformed(reason: String) -> Error {
    Error::CertificateMalformed {
        subject: Subject::Certificate,
        reason,
    }
}

fn check_cocoon_extension(oid: &'static str, critical: bool) -> Result<()> {
    if !critical {
        return Err(malformed(format!(
            "COCOON extension {oid} is not marked critical"
        )));
    }
    Ok(())
}

/// The standard extensions must parse and must not widen what the key may do.
fn check_standard_extension(oid: &str, parsed: &ParsedExtension<'_>) -> Result<()> {
    match parsed {
        ParsedExtension::ParseError { error } => Err(malformed(format!(
            "extension {oid} does not parse: {error}"
        ))),
        ParsedExtension::BasicConstraints(bc) if bc.ca => Err(malformed(
            "basicConstraints says CA: a COCOON certificate is a leaf".into(),
        )),
        ParsedExtension::KeyUsage(ku) if !ku.digital_signature() => Err(malformed(
            "keyUsage lacks digitalSignature: the key cannot sign TLS handshakes".into(),
        )),
        _ => Ok(()),
    }
}

// ------------------------------------------------------------------ issuing

/// Arc of the COCOON extensions, as rcgen wants OIDs.
const QUOTE_OID_ARCS: [u64; 8] = [1, 3, 6, 1, 4, 1, 12345, 1];
const CLAIMS_OID_ARCS: [u64; 8] = [1, 3, 6, 1, 4, 1, 12345, 2];

/// Builds a COCOON-format certificate: self-signed by `key` (which must be Ed25519), the raw
/// `quote` and the user claims (= the raw public key) in critical extensions, and the other
/// fields as COCOON writes them (module docs), in COCOON's extension order. For tests and for
/// our own enclave to talk to COCOON peers.
///
/// The quote is not checked: binding it (REPORT_DATA = [`cocoon_report_data`] of the public
/// key) is the caller's job. The serial is the first 128 bits of SHA-256 over the public key,
/// the quote and the validity (top bit cleared) rather than random, so the same inputs give
/// the same certificate byte for byte (Ed25519 signatures are deterministic too); distinct
/// quotes or times give distinct serials.
pub fn issue_cocoon_certificate(
    key: &rcgen::KeyPair,
    quote: &[u8],
    not_before: i64,
    not_after: i64,
) -> Result<Vec<u8>> {
    if key.algorithm() != &rcgen::PKCS_ED25519 {
        return Err(Error::CocoonUnsupportedKey {
            algorithm: format!("{:?}", key.algorithm()),
        });
    }
    if quote.len() > MAX_COCOON_QUOTE_SIZE {
        return Err(Error::InputTooLarge {
            subject: Subject::Quote,
            size: quote.len(),
            limit: MAX_COCOON_QUOTE_SIZE,
        });
    }
    let params = cocoon_params(key.public_key_raw(), quote, not_before, not_after)?;
    sign(params, key)
}

/// The rcgen parameters of a COCOON certificate for a raw public key (shared by
/// [`issue_cocoon_certificate`] and the tests that build malformed variants).
pub(crate) fn cocoon_params(
    public_key: &[u8],
    quote: &[u8],
    not_before: i64,
    not_after: i64,
) -> Result<rcgen::CertificateParams> {
    if not_after <= not_before {
        return Err(issue_error(format!(
            "notAfter {not_after} is not after notBefore {not_before}"
        )));
    }
    let time = |t: i64| {
        time::OffsetDateTime::from_unix_timestamp(t)
            .map_err(|e| issue_error(format!("time {t}: {e}")))
    };

    let mut params = rcgen::CertificateParams::default();
    params.not_before = time(not_before)?;
    params.not_after = time(not_after)?;

    let mut serial_hash = Sha256::new();
    serial_hash.update(public_key);
    serial_hash.update(Sha256::digest(quote));
    serial_hash.update(not_before.to_be_bytes());
    serial_hash.update(not_after.to_be_bytes());
    let mut serial = serial_hash.finalize().to_vec();
    serial.truncate(16);
    if let Some(first) = serial.first_mut() {
        *first &= 0x7f;
    }
    params.serial_number = Some(rcgen::SerialNumber::from_slice(&serial));

    let mut dn = rcgen::DistinguishedName::new();
    for (ty, value) in [
        (rcgen::DnType::CountryName, "AE"),
        (rcgen::DnType::StateOrProvinceName, "DUBAI"),
        (rcgen::DnType::OrganizationName, "TDLib Development"),
        (rcgen::DnType::OrganizationalUnitName, "Security"),
        (rcgen::DnType::CommonName, "localhost"),
    ] {
        // As OpenSSL's X509_NAME_add_entry_by_txt(MBSTRING_ASC) writes them: countryName as
        // a PrintableString, the others as UTF8String.
        let value = if ty == rcgen::DnType::CountryName {
            rcgen::DnValue::PrintableString(
                rcgen::PrintableString::try_from(value)
                    .map_err(|e| issue_error(format!("subject {value}: {e}")))?,
            )
        } else {
            rcgen::DnValue::Utf8String(value.into())
        };
        dn.push(ty, value);
    }
    params.distinguished_name = dn;
    // Every extension is written by hand, in COCOON's order and with its criticality
    // (rcgen would mark extKeyUsage non-critical and order them differently).
    params.is_ca = rcgen::IsCa::NoCa;
    params.use_authority_key_identifier_extension = false;

    let sha1 = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, public_key);
    let extensions = [
        (QUOTE_OID_ARCS.as_slice(), true, quote.to_vec()),
        (CLAIMS_OID_ARCS.as_slice(), true, public_key.to_vec()),
        // basicConstraints: SEQUENCE {} (cA DEFAULT FALSE omitted).
        (&[2, 5, 29, 19], true, vec![0x30, 0x00]),
        // keyUsage: BIT STRING, digitalSignature only.
        (&[2, 5, 29, 15], true, vec![0x03, 0x02, 0x07, 0x80]),
        // extKeyUsage: serverAuth, clientAuth.
        (&[2, 5, 29, 37], true, ext_key_usage()),
        // subjectKeyIdentifier: OCTET STRING SHA-1(public key bits), OpenSSL's "hash".
        (&[2, 5, 29, 14], false, tlv(0x04, sha1.as_ref())?),
        // subjectAltName: DNS:localhost, DNS:127.0.0.1, IP:::1.
        (&[2, 5, 29, 17], false, subject_alt_name()?),
    ];
    params.custom_extensions = extensions
        .into_iter()
        .map(|(oid, critical, content)| {
            let mut ext = rcgen::CustomExtension::from_oid_content(oid, content);
            ext.set_criticality(critical);
            ext
        })
        .collect();
    Ok(params)
}

pub(crate) fn sign(params: rcgen::CertificateParams, key: &rcgen::KeyPair) -> Result<Vec<u8>> {
    let cert = params
        .self_signed(key)
        .map_err(|e| issue_error(format!("signing: {e}")))?;
    Ok(cert.der().to_vec())
}

fn issue_error(reason: String) -> Error {
    Error::CertificateMalformed {
        subject: Subject::Certificate,
        reason: format!("cannot issue a COCOON certificate: {reason}"),
    }
}

fn ext_key_usage() -> Vec<u8> {
    const SERVER_AUTH: [u8; 10] = [0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01];
    const CLIENT_AUTH: [u8; 10] = [0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02];
    let mut out = vec![0x30, 0x14];
    out.extend_from_slice(&SERVER_AUTH);
    out.extend_from_slice(&CLIENT_AUTH);
    out
}

fn subject_alt_name() -> Result<Vec<u8>> {
    let mut names = tlv(0x82, b"localhost")?;
    names.extend(tlv(0x82, b"127.0.0.1")?);
    names.extend(tlv(0x87, &std::net::Ipv6Addr::LOCALHOST.octets())?);
    tlv(0x30, &names)
}

/// A DER TLV with a short-form length (every value written here is under 128 bytes).
fn tlv(tag: u8, content: &[u8]) -> Result<Vec<u8>> {
    let len = u8::try_from(content.len())
        .ok()
        .filter(|l| *l < 0x80)
        .ok_or_else(|| issue_error(format!("DER value of {} bytes", content.len())))?;
    let mut out = Vec::with_capacity(content.len().saturating_add(2));
    out.push(tag);
    out.push(len);
    out.extend_from_slice(content);
    Ok(out)
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]
mod tests;
