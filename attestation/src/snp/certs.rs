//! X.509 handling for the AMD chain: ARK (self-signed) → ASK/ASVK → VCEK/VLEK, all signed
//! with RSASSA-PSS (SHA-384, MGF1-SHA-384, salt 48). Parsing is `x509-cert`'s, RSA is the
//! `rsa` crate's; what is written here is the AMD profile on top (which algorithms, which
//! extensions, the VCEK's SPL/hwID extensions), for which no library exists.
//!
//! Signatures are verified over the TBSCertificate bytes **as received** (sliced out of the
//! DER), never over a re-encoding.

use rsa::signature::Verifier;
use sha2::Sha384;
use x509_cert_02::der::asn1::{Ia5StringRef, OctetStringRef, PrintableStringRef, Utf8StringRef};
use x509_cert_02::der::oid::db::{rfc4519, rfc5280, rfc5912};
use x509_cert_02::der::oid::ObjectIdentifier;
use x509_cert_02::der::referenced::OwnedToRef;
use x509_cert_02::der::{Decode, Reader, SliceReader};
use x509_cert_02::ext::pkix::{BasicConstraints, KeyUsage};
use x509_cert_02::name::Name;

use crate::error::{Error, Result, Subject};

/// AMD's VCEK/VLEK extensions (VCEK spec 57230, "Certificate extensions").
pub(crate) mod oid {
    use super::ObjectIdentifier;
    pub const PRODUCT_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.2");
    pub const BL_SPL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.1");
    pub const TEE_SPL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.2");
    pub const SNP_SPL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.3");
    pub const UCODE_SPL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.8");
    pub const FMC_SPL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.9");
    pub const HW_ID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.4");
    pub const CSP_ID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.5");
}

/// Smallest RSA modulus accepted for a CA key.
pub(crate) const MIN_RSA_BITS: usize = 2048;

/// Largest certificate accepted (AMD's are ~1.3-1.7 KiB).
pub(crate) const MAX_CERT_LEN: usize = 16 * 1024;

/// A parsed certificate with the raw pieces needed for verification.
#[derive(Debug, Clone)]
pub(crate) struct Cert {
    pub der: Vec<u8>,
    pub cert: x509_cert_02::Certificate,
    /// The TBSCertificate TLV exactly as received: the signed bytes.
    tbs_raw: Vec<u8>,
    pub not_before: i64,
    pub not_after: i64,
}

/// The VCEK/VLEK extensions that verification compares with the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VekExtensions {
    pub product_name: Option<String>,
    pub bl_spl: Option<u8>,
    pub tee_spl: Option<u8>,
    pub snp_spl: Option<u8>,
    pub ucode_spl: Option<u8>,
    pub fmc_spl: Option<u8>,
    pub hw_id: Option<Vec<u8>>,
    pub csp_id: Option<String>,
}

fn malformed(subject: Subject, reason: impl Into<String>) -> Error {
    Error::CertificateMalformed {
        subject,
        reason: reason.into(),
    }
}

fn chain_invalid(subject: Subject, reason: impl Into<String>) -> Error {
    Error::CertificateChainInvalid {
        subject,
        reason: reason.into(),
    }
}

fn unix(t: x509_cert_02::time::Time, subject: Subject) -> Result<i64> {
    i64::try_from(t.to_unix_duration().as_secs())
        .map_err(|_| malformed(subject, "validity time out of range"))
}

/// A DER string attribute value as text (UTF8String, PrintableString or IA5String).
fn any_text(value: &x509_cert_02::der::Any) -> Option<String> {
    if let Ok(s) = value.decode_as::<Utf8StringRef<'_>>() {
        return Some(s.as_str().to_owned());
    }
    if let Ok(s) = value.decode_as::<PrintableStringRef<'_>>() {
        return Some(s.as_str().to_owned());
    }
    value
        .decode_as::<Ia5StringRef<'_>>()
        .ok()
        .map(|s| s.as_str().to_owned())
}

/// The common name of a distinguished name, if it has exactly one.
pub(crate) fn common_name(name: &Name) -> Option<String> {
    let mut cns = name
        .0
        .iter()
        .flat_map(|rdn| rdn.0.iter())
        .filter(|atv| atv.oid == rfc4519::CN);
    let cn = cns.next()?;
    if cns.next().is_some() {
        return None;
    }
    any_text(&cn.value)
}

impl Cert {
    /// Parse one DER certificate (strict DER, nothing after it).
    pub fn from_der(der: &[u8], subject: Subject) -> Result<Self> {
        if der.len() > MAX_CERT_LEN {
            return Err(Error::InputTooLarge {
                subject,
                size: der.len(),
                limit: MAX_CERT_LEN,
            });
        }
        let cert = x509_cert_02::Certificate::from_der(der)
            .map_err(|e| malformed(subject, format!("invalid DER: {e}")))?;
        let tbs_raw = tbs_bytes(der).map_err(|e| malformed(subject, format!("TBS: {e}")))?;
        let validity = &cert.tbs_certificate.validity;
        let not_before = unix(validity.not_before, subject)?;
        let not_after = unix(validity.not_after, subject)?;
        Ok(Self {
            der: der.to_vec(),
            tbs_raw: tbs_raw.to_vec(),
            cert,
            not_before,
            not_after,
        })
    }

    pub fn subject_name(&self) -> &Name {
        &self.cert.tbs_certificate.subject
    }

    pub fn issuer_name(&self) -> &Name {
        &self.cert.tbs_certificate.issuer
    }

    pub fn subject_cn(&self) -> Option<String> {
        common_name(self.subject_name())
    }

    pub fn issuer_cn(&self) -> Option<String> {
        common_name(self.issuer_name())
    }

    /// Self-issued: subject equals issuer.
    pub fn is_self_issued(&self) -> bool {
        self.subject_name() == self.issuer_name()
    }

    /// `not_before ≤ now ≤ not_after` (RFC 5280: both ends inclusive).
    pub fn check_validity(&self, now: i64, subject: Subject) -> Result<()> {
        if now < self.not_before {
            return Err(Error::CertificateNotYetValid {
                subject,
                not_before: self.not_before,
                now,
            });
        }
        if now > self.not_after {
            return Err(Error::CertificateExpired {
                subject,
                not_after: self.not_after,
                now,
            });
        }
        Ok(())
    }

    /// The certificate's RSA public key as an RSA-PSS SHA-384 verifier (salt length 48).
    pub fn rsa_pss_key(&self, subject: Subject) -> Result<rsa::pss::VerifyingKey<Sha384>> {
        let spki = self
            .cert
            .tbs_certificate
            .subject_public_key_info
            .owned_to_ref();
        // `rsa` refuses moduli above 4096 bits; AMD's keys are 4096.
        let key = rsa::RsaPublicKey::try_from(spki)
            .map_err(|e| malformed(subject, format!("not an RSA public key: {e}")))?;
        let bits = rsa::traits::PublicKeyParts::size(&key).saturating_mul(8);
        if bits < MIN_RSA_BITS {
            return Err(malformed(
                subject,
                format!("RSA key of {bits} bits is below {MIN_RSA_BITS}"),
            ));
        }
        Ok(rsa::pss::VerifyingKey::<Sha384>::new(key))
    }

    /// The certificate's P-384 public key (VCEK/VLEK).
    pub fn p384_key(&self, subject: Subject) -> Result<p384::ecdsa::VerifyingKey> {
        let spki = &self.cert.tbs_certificate.subject_public_key_info;
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.decode_as::<ObjectIdentifier>().ok());
        if spki.algorithm.oid != rfc5912::ID_EC_PUBLIC_KEY || curve != Some(rfc5912::SECP_384_R_1) {
            return Err(malformed(subject, "public key is not an ECDSA P-384 key"));
        }
        let point = spki
            .subject_public_key
            .as_bytes()
            .ok_or_else(|| malformed(subject, "public key bit string has unused bits"))?;
        p384::ecdsa::VerifyingKey::from_sec1_bytes(point)
            .map_err(|_| malformed(subject, "invalid P-384 public key point"))
    }

    /// Check that `self` is signed by `issuer`'s key: issuer name, AMD's signature algorithm
    /// (RSASSA-PSS, SHA-384, MGF1-SHA-384, salt 48), the signature over the raw TBS bytes,
    /// and the inner signature algorithm equal to the outer one.
    pub fn verify_issued_by(
        &self,
        issuer: &Cert,
        issuer_key: &rsa::pss::VerifyingKey<Sha384>,
        subject: Subject,
        position: usize,
    ) -> Result<()> {
        if self.issuer_name() != issuer.subject_name() {
            return Err(chain_invalid(
                subject,
                format!(
                    "issuer \"{}\" is not the subject \"{}\" of the next certificate",
                    self.issuer_name(),
                    issuer.subject_name()
                ),
            ));
        }
        check_rsa_pss_sha384(&self.cert.signature_algorithm, subject)?;
        let sig_bytes = self
            .cert
            .signature
            .as_bytes()
            .ok_or_else(|| malformed(subject, "signature bit string has unused bits"))?;
        let signature = rsa::pss::Signature::try_from(sig_bytes)
            .map_err(|_| Error::CertificateSignatureInvalid { subject, position })?;
        issuer_key
            .verify(&self.tbs_raw, &signature)
            .map_err(|_| Error::CertificateSignatureInvalid { subject, position })?;
        if self.cert.tbs_certificate.signature != self.cert.signature_algorithm {
            return Err(malformed(
                subject,
                "TBS signature algorithm differs from the certificate's",
            ));
        }
        Ok(())
    }

    /// Only extensions this verifier understands may be critical (RFC 5280 §4.2).
    pub fn check_critical_extensions(&self, subject: Subject) -> Result<()> {
        for ext in self
            .cert
            .tbs_certificate
            .extensions
            .as_deref()
            .unwrap_or(&[])
        {
            if ext.critical
                && ext.extn_id != rfc5280::ID_CE_BASIC_CONSTRAINTS
                && ext.extn_id != rfc5280::ID_CE_KEY_USAGE
            {
                return Err(chain_invalid(
                    subject,
                    format!("unknown critical extension {}", ext.extn_id),
                ));
            }
        }
        Ok(())
    }

    /// A CA certificate (ARK, ASK, ASVK): basicConstraints cA = TRUE, and keyUsage, where
    /// present, includes keyCertSign (AMD sets both, critical). For the ASK/ASVK the path
    /// length must allow the leaf below it.
    pub fn require_ca(&self, subject: Subject, certs_below: u8) -> Result<()> {
        self.check_critical_extensions(subject)?;
        let tbs = &self.cert.tbs_certificate;
        let bc = tbs
            .get::<BasicConstraints>()
            .map_err(|e| malformed(subject, format!("basicConstraints: {e}")))?;
        match bc {
            Some((_, bc)) if bc.ca => {
                if let Some(limit) = bc.path_len_constraint {
                    // pathLenConstraint counts the CA certificates that may follow.
                    if certs_below.saturating_sub(1) > limit {
                        return Err(chain_invalid(subject, "path length constraint exceeded"));
                    }
                }
            }
            _ => return Err(chain_invalid(subject, "not a CA certificate")),
        }
        let ku = tbs
            .get::<KeyUsage>()
            .map_err(|e| malformed(subject, format!("keyUsage: {e}")))?;
        if let Some((_, ku)) = ku {
            if !ku.key_cert_sign() {
                return Err(chain_invalid(subject, "key usage lacks keyCertSign"));
            }
        }
        Ok(())
    }

    /// A VCEK/VLEK: not a CA, only known critical extensions, a P-384 key.
    pub fn require_leaf(&self, subject: Subject) -> Result<()> {
        self.check_critical_extensions(subject)?;
        let bc = self
            .cert
            .tbs_certificate
            .get::<BasicConstraints>()
            .map_err(|e| malformed(subject, format!("basicConstraints: {e}")))?;
        if matches!(bc, Some((_, bc)) if bc.ca) {
            return Err(chain_invalid(subject, "the VCEK/VLEK is a CA certificate"));
        }
        self.p384_key(subject).map(|_| ())
    }

    /// AMD's VCEK/VLEK extensions. SPLs are DER INTEGERs 0..=255; the productName is an
    /// IA5String; the hwID is the raw chip id (64 bytes Milan/Genoa, 8 bytes Turin) — an
    /// OCTET STRING wrapping is also accepted (seen from some tooling, see trustee's
    /// `test-vcek-invalid-new.der`). Each extension may occur at most once.
    pub fn vek_extensions(&self, subject: Subject) -> Result<VekExtensions> {
        let mut out = VekExtensions {
            product_name: None,
            bl_spl: None,
            tee_spl: None,
            snp_spl: None,
            ucode_spl: None,
            fmc_spl: None,
            hw_id: None,
            csp_id: None,
        };
        let exts = self
            .cert
            .tbs_certificate
            .extensions
            .as_deref()
            .unwrap_or(&[]);
        for (i, ext) in exts.iter().enumerate() {
            if exts
                .iter()
                .skip(i.saturating_add(1))
                .any(|e| e.extn_id == ext.extn_id)
            {
                return Err(malformed(
                    subject,
                    format!("extension {} occurs twice", ext.extn_id),
                ));
            }
            let value = ext.extn_value.as_bytes();
            let spl = |name: &str| -> Result<Option<u8>> {
                u8::from_der(value).map(Some).map_err(|e| {
                    malformed(subject, format!("{name} is not an INTEGER 0..255: {e}"))
                })
            };
            match ext.extn_id {
                oid::BL_SPL => out.bl_spl = spl("blSPL")?,
                oid::TEE_SPL => out.tee_spl = spl("teeSPL")?,
                oid::SNP_SPL => out.snp_spl = spl("snpSPL")?,
                oid::UCODE_SPL => out.ucode_spl = spl("ucodeSPL")?,
                oid::FMC_SPL => out.fmc_spl = spl("fmcSPL")?,
                oid::PRODUCT_NAME => {
                    let name = Ia5StringRef::from_der(value)
                        .map_err(|e| malformed(subject, format!("productName: {e}")))?;
                    out.product_name = Some(name.as_str().to_owned());
                }
                oid::CSP_ID => {
                    let name = Ia5StringRef::from_der(value)
                        .map_err(|e| malformed(subject, format!("csp_id: {e}")))?;
                    out.csp_id = Some(name.as_str().to_owned());
                }
                oid::HW_ID => {
                    let raw = match value.len() {
                        8 | 64 => value,
                        _ => OctetStringRef::from_der(value)
                            .map(|o| o.as_bytes())
                            .map_err(|_| {
                                malformed(
                                    subject,
                                    format!("hwID of {} bytes is neither 8 nor 64", value.len()),
                                )
                            })?,
                    };
                    if raw.len() != 8 && raw.len() != 64 {
                        return Err(malformed(
                            subject,
                            format!("hwID of {} bytes is neither 8 nor 64", raw.len()),
                        ));
                    }
                    out.hw_id = Some(raw.to_vec());
                }
                _ => {}
            }
        }
        Ok(out)
    }
}

/// The TBSCertificate TLV of a DER certificate, as received.
fn tbs_bytes(der: &[u8]) -> x509_cert_02::der::Result<&[u8]> {
    let mut reader = SliceReader::new(der)?;
    let header = x509_cert_02::der::Header::decode(&mut reader)?;
    header.tag.assert_eq(x509_cert_02::der::Tag::Sequence)?;
    reader.tlv_bytes()
}

/// AMD signs every certificate with RSASSA-PSS, SHA-384, MGF1 with SHA-384, salt 48,
/// trailer field 1: anything else is refused rather than interpreted.
fn check_rsa_pss_sha384(
    alg: &x509_cert_02::spki::AlgorithmIdentifierOwned,
    subject: Subject,
) -> Result<()> {
    let unsupported =
        |what: &str| chain_invalid(subject, format!("unsupported signature algorithm: {what}"));
    if alg.oid != rfc5912::ID_RSASSA_PSS {
        return Err(unsupported(&alg.oid.to_string()));
    }
    let params = alg
        .parameters
        .as_ref()
        .ok_or_else(|| unsupported("RSASSA-PSS without parameters"))?
        .decode_as::<pkcs1::RsaPssParams<'_>>()
        .map_err(|e| unsupported(&format!("RSASSA-PSS parameters: {e}")))?;
    let mgf_hash = params.mask_gen.parameters.as_ref().map(|p| p.oid);
    if params.hash.oid != rfc5912::ID_SHA_384
        || params.mask_gen.oid != rfc5912::ID_MGF_1
        || mgf_hash != Some(rfc5912::ID_SHA_384)
        || params.salt_len != 48
        || params.trailer_field != pkcs1::TrailerField::BC
    {
        return Err(unsupported(
            "RSASSA-PSS parameters other than SHA-384/MGF1-SHA-384/salt 48",
        ));
    }
    Ok(())
}
