//! Parsing RA-TLS certificates (unverified).

use sha2::{Digest, Sha256};
use x509_parser::prelude::{FromDer, X509Certificate};

use super::format::{
    self, ExtensionOid, CLAIMS_NAME, EVIDENCE_NAME, GPU_EVIDENCE_NAME, MAX_CERTIFICATE_SIZE,
    PLATFORM_CERTIFICATES_NAME,
};
use super::{CarriedEvidence, CarriedGpuEvidence, EvidenceFormat};
use crate::claims::Claims;
use crate::error::{Error, Result, Subject};

/// OID contents of the algorithms we accept.
const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01]; // 1.2.840.10045.2.1
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07]; // 1.2.840.10045.3.1.7
const OID_ECDSA_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02]; // 1.2.840.10045.4.3.2
const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70]; // 1.3.101.112

/// Standard extensions that may be critical in an RA-TLS certificate (contents of 2.5.29.x).
const KNOWN_CRITICAL: &[&[u8]] = &[
    &[0x55, 0x1d, 0x0f], // keyUsage
    &[0x55, 0x1d, 0x11], // subjectAltName
    &[0x55, 0x1d, 0x13], // basicConstraints
    &[0x55, 0x1d, 0x25], // extKeyUsage
];

/// The key type of an RA-TLS certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyType {
    EcdsaP256,
    Ed25519,
}

/// A parsed RA-TLS certificate. UNVERIFIED: the evidence, the claims and the binding are
/// only checked by [`super::RaTlsVerifier`]. What parsing does check: size (≤
/// [`MAX_CERTIFICATE_SIZE`]), strict X.509 DER without trailing bytes, no duplicated extension,
/// no unknown critical extension, our extensions critical and well-formed (each within its
/// cap), evidence and claims present, a P-256 or Ed25519 key, self-issued and self-signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaTlsCertificate {
    der: Vec<u8>,
    claims: Claims,
    claims_bytes: Vec<u8>,
    evidence: CarriedEvidence,
    gpus: Vec<CarriedGpuEvidence>,
    spki_der: Vec<u8>,
    spki_sha256: [u8; 32],
    key_type: KeyType,
    not_before: i64,
    not_after: i64,
}

fn malformed(reason: impl Into<String>) -> Error {
    Error::CertificateMalformed {
        subject: Subject::RaTlsCertificate,
        reason: reason.into(),
    }
}

impl RaTlsCertificate {
    pub fn parse(der: &[u8]) -> Result<Self> {
        if der.len() > MAX_CERTIFICATE_SIZE {
            return Err(Error::InputTooLarge {
                subject: Subject::RaTlsCertificate,
                size: der.len(),
                limit: MAX_CERTIFICATE_SIZE,
            });
        }
        let (rest, cert) =
            X509Certificate::from_der(der).map_err(|e| malformed(format!("X.509: {e}")))?;
        if !rest.is_empty() {
            return Err(Error::TrailingBytes {
                subject: Subject::RaTlsCertificate,
                count: rest.len(),
            });
        }

        // Extensions: no duplicates, no unknown critical ones, ours critical.
        let mut seen: Vec<&[u8]> = Vec::new();
        let mut evidence_ext = None;
        let mut claims_ext = None;
        let mut platform_ext = None;
        let mut gpu_ext = None;
        for ext in cert.extensions() {
            let oid = ext.oid.as_bytes();
            if seen.contains(&oid) {
                return Err(Error::DuplicateExtension {
                    oid: format::oid_string(oid),
                });
            }
            seen.push(oid);
            match format::our_extension(oid) {
                Some(ours) => {
                    let (slot, name) = match ours {
                        ExtensionOid::Evidence => (&mut evidence_ext, EVIDENCE_NAME),
                        ExtensionOid::Claims => (&mut claims_ext, CLAIMS_NAME),
                        ExtensionOid::GpuEvidence => (&mut gpu_ext, GPU_EVIDENCE_NAME),
                        _ => (&mut platform_ext, PLATFORM_CERTIFICATES_NAME),
                    };
                    if !ext.critical {
                        return Err(Error::RaTlsExtensionNotCritical { extension: name });
                    }
                    *slot = Some(ext.value);
                }
                None => {
                    if ext.critical && !KNOWN_CRITICAL.contains(&oid) {
                        return Err(Error::UnknownCriticalExtension {
                            oid: format::oid_string(oid),
                        });
                    }
                }
            }
        }

        // Key and signature algorithm.
        let spki = cert.public_key();
        let key_alg = spki.algorithm.algorithm.as_bytes();
        let key_type = if key_alg == OID_EC_PUBLIC_KEY {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok());
            match curve {
                Some(c) if c.as_bytes() == OID_P256 => KeyType::EcdsaP256,
                Some(c) => {
                    return Err(Error::UnsupportedKeyType {
                        algorithm: format!("EC key on curve {}", c.to_id_string()),
                    })
                }
                None => {
                    return Err(Error::UnsupportedKeyType {
                        algorithm: "EC key without a named curve".into(),
                    })
                }
            }
        } else if key_alg == OID_ED25519 {
            KeyType::Ed25519
        } else {
            return Err(Error::UnsupportedKeyType {
                algorithm: spki.algorithm.algorithm.to_id_string(),
            });
        };
        let sig_alg = cert.signature_algorithm.algorithm.as_bytes();
        let expected_sig = match key_type {
            KeyType::EcdsaP256 => OID_ECDSA_SHA256,
            KeyType::Ed25519 => OID_ED25519,
        };
        if sig_alg != expected_sig || cert.tbs_certificate.signature != cert.signature_algorithm {
            return Err(Error::UnsupportedKeyType {
                algorithm: format!(
                    "signature algorithm {} for a {key_type:?} key",
                    cert.signature_algorithm.algorithm.to_id_string()
                ),
            });
        }

        // Self-issued and self-signed.
        if cert.tbs_certificate.issuer.as_raw() != cert.tbs_certificate.subject.as_raw() {
            return Err(malformed("issuer differs from subject (not self-issued)"));
        }
        let ring_alg: &dyn ring::signature::VerificationAlgorithm = match key_type {
            KeyType::EcdsaP256 => &ring::signature::ECDSA_P256_SHA256_ASN1,
            KeyType::Ed25519 => &ring::signature::ED25519,
        };
        ring::signature::UnparsedPublicKey::new(ring_alg, &spki.subject_public_key.data)
            .verify(cert.tbs_certificate.as_ref(), &cert.signature_value.data)
            .map_err(|_| Error::SelfSignatureInvalid)?;

        // Our extensions.
        let evidence_value = evidence_ext.ok_or(Error::RaTlsExtensionMissing {
            extension: EVIDENCE_NAME,
        })?;
        let claims_value = claims_ext.ok_or(Error::RaTlsExtensionMissing {
            extension: CLAIMS_NAME,
        })?;
        let (evidence_format, evidence_bytes) = format::decode_evidence(evidence_value)?;
        let claims_bytes = format::decode_claims(claims_value)?;
        let claims = Claims::from_bytes(&claims_bytes)?;
        let certificates = match platform_ext {
            Some(value) => format::decode_platform_certificates(value)?,
            None => Vec::new(),
        };
        match (evidence_format, certificates.is_empty()) {
            (EvidenceFormat::SnpReport, true) => {
                return Err(Error::RaTlsExtensionMissing {
                    extension: PLATFORM_CERTIFICATES_NAME,
                })
            }
            (EvidenceFormat::TdxQuote, false) => {
                return Err(Error::RaTlsExtensionMalformed {
                    extension: PLATFORM_CERTIFICATES_NAME,
                    reason: "TDX evidence carries no platform certificates".into(),
                })
            }
            _ => {}
        }

        let gpus = match gpu_ext {
            Some(value) => format::decode_gpu_evidence(value)?,
            None => Vec::new(),
        };

        let validity = cert.validity();
        let spki_der = spki.raw.to_vec();
        Ok(Self {
            der: der.to_vec(),
            spki_sha256: Sha256::digest(&spki_der).into(),
            spki_der,
            key_type,
            claims,
            claims_bytes,
            evidence: CarriedEvidence {
                format: evidence_format,
                evidence: evidence_bytes,
                certificates,
            },
            gpus,
            not_before: validity.not_before.timestamp(),
            not_after: validity.not_after.timestamp(),
        })
    }

    /// The claims as carried (unverified until the evidence binds them).
    pub fn claims(&self) -> &Claims {
        &self.claims
    }

    /// The canonical claims bytes as carried.
    pub fn claims_bytes(&self) -> &[u8] {
        &self.claims_bytes
    }

    pub fn evidence(&self) -> &CarriedEvidence {
        &self.evidence
    }

    /// The GPU reports as carried (unverified; empty without the GPU-evidence extension).
    pub fn gpu_evidence(&self) -> &[CarriedGpuEvidence] {
        &self.gpus
    }

    /// SHA-256 of the DER SubjectPublicKeyInfo.
    pub fn spki_sha256(&self) -> [u8; 32] {
        self.spki_sha256
    }

    /// The DER SubjectPublicKeyInfo.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki_der
    }

    pub fn key_type(&self) -> KeyType {
        self.key_type
    }

    pub fn not_before(&self) -> i64 {
        self.not_before
    }

    pub fn not_after(&self) -> i64 {
        self.not_after
    }

    /// The certificate as parsed.
    pub fn der(&self) -> &[u8] {
        &self.der
    }
}

/// The DER SubjectPublicKeyInfo of any X.509 certificate (for TLS signature checks of
/// COCOON certificates and ours alike).
pub(crate) fn spki_of(der: &[u8]) -> Result<Vec<u8>> {
    let (_, cert) = X509Certificate::from_der(der).map_err(|e| malformed(format!("X.509: {e}")))?;
    Ok(cert.public_key().raw.to_vec())
}
