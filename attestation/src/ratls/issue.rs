//! Issuing RA-TLS certificates with rcgen.
//!
//! rcgen writes OIDs with 64-bit arcs only, and our arc (`2.25.<UUID>`) has a 128-bit one. The
//! certificate is therefore built with placeholder OIDs of the same encoded length; the signing
//! step (a [`rcgen::RemoteKeyPair`] wrapping the caller's key) signs the to-be-signed bytes with
//! the real OIDs in place, and the same substitution is then made in the output, so the
//! signature covers exactly the bytes of the final certificate.

use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{self as ring_sig, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RsaKeyPair};
use sha2::{Digest, Sha256};

use super::format::{placeholder_arcs, placeholder_oid, real_oid, ExtensionOid, RawExtension};
use super::{CarriedEvidence, CarriedGpuEvidence, CertificateParams, EvidenceFormat};
use crate::claims::Claims;
use crate::error::{Error, Result, Subject};

/// Issue a self-signed RA-TLS certificate (DER) for `key` (ECDSA P-256 or Ed25519) carrying
/// `evidence` and `claims` in critical extensions, valid from `params.not_before` to
/// `params.not_after` with the given subject alternative names and a random serial.
///
/// The claims must name `key` (`tls_spki_sha256` = SHA-256 of its SubjectPublicKeyInfo) and
/// SNP evidence must carry its VCEK/VLEK; the evidence itself is not checked here.
pub fn issue_certificate(
    key: &rcgen::KeyPair,
    claims: &Claims,
    evidence: &CarriedEvidence,
    params: &CertificateParams,
) -> Result<Vec<u8>> {
    issue_certificate_with_gpus(key, claims, evidence, &[], params)
}

/// [`issue_certificate`] with the GPU reports the claims commit to (`claims.gpu.count` of them,
/// each signing [`Claims::gpu_nonce`]) in the GPU-evidence extension.
pub fn issue_certificate_with_gpus(
    key: &rcgen::KeyPair,
    claims: &Claims,
    evidence: &CarriedEvidence,
    gpus: &[CarriedGpuEvidence],
    params: &CertificateParams,
) -> Result<Vec<u8>> {
    let committed = claims.gpu.map_or(0, |g| usize::from(g.count));
    if gpus.len() != committed {
        return Err(Error::GpuEvidenceCountMismatch {
            committed,
            carried: gpus.len(),
        });
    }
    let alg = key.algorithm();
    if alg != &rcgen::PKCS_ECDSA_P256_SHA256 && alg != &rcgen::PKCS_ED25519 {
        return Err(Error::UnsupportedKeyType {
            algorithm: format!("{alg:?}"),
        });
    }
    let spki: [u8; 32] = Sha256::digest(key.public_key_der()).into();
    if spki != claims.tls_spki_sha256 {
        return Err(Error::CertificateKeyMismatch {
            claims: hex::encode(claims.tls_spki_sha256),
            certificate: hex::encode(spki),
        });
    }
    match (evidence.format, evidence.certificates.is_empty()) {
        (EvidenceFormat::SnpReport, true) => {
            return Err(Error::RaTlsExtensionMissing {
                extension: super::format::PLATFORM_CERTIFICATES_NAME,
            })
        }
        (EvidenceFormat::TdxQuote, false) => {
            return Err(Error::RaTlsExtensionMalformed {
                extension: super::format::PLATFORM_CERTIFICATES_NAME,
                reason: "TDX evidence carries no platform certificates".into(),
            })
        }
        _ => {}
    }
    let mut extensions = vec![
        RawExtension::evidence(evidence),
        RawExtension::claims(&claims.to_bytes()),
    ];
    if !evidence.certificates.is_empty() {
        extensions.push(RawExtension::platform_certificates(&evidence.certificates));
    }
    if !gpus.is_empty() {
        extensions.push(RawExtension::gpu_evidence(gpus));
    }
    issue_with_extensions(key, &extensions, params)
}

/// Low level: a self-signed certificate with exactly `extensions` (plus the key usage, extended
/// key usage, subject key identifier and SAN extensions rcgen writes), for any key rcgen and
/// ring can sign with (P-256, P-384, Ed25519, RSA). [`issue_certificate`] is the API for
/// enclaves; this one also builds malformed certificates for tests.
pub fn issue_with_extensions(
    key: &rcgen::KeyPair,
    extensions: &[RawExtension],
    params: &CertificateParams,
) -> Result<Vec<u8>> {
    if params.not_after <= params.not_before {
        return Err(issuance("not_after must be after not_before"));
    }
    let signer = Resigner::new(key)?;
    let placeholders = signer.placeholders_expected(extensions);

    let mut p = rcgen::CertificateParams::new(params.subject_alt_names.clone())
        .map_err(|e| issuance(format!("subject alternative names: {e}")))?;
    p.not_before = time::OffsetDateTime::from_unix_timestamp(params.not_before)
        .map_err(|e| issuance(format!("not_before: {e}")))?;
    p.not_after = time::OffsetDateTime::from_unix_timestamp(params.not_after)
        .map_err(|e| issuance(format!("not_after: {e}")))?;
    let mut serial = [0u8; 16];
    SystemRandom::new()
        .fill(&mut serial)
        .map_err(|_| issuance("no randomness for the serial number"))?;
    // Positive and of full length.
    serial[0] = (serial[0] & 0x7f) | 0x40;
    p.serial_number = Some(rcgen::SerialNumber::from_slice(&serial));
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::CommonName, "cocoon RA-TLS");
    p.distinguished_name = dn;
    p.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![
        rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        rcgen::ExtendedKeyUsagePurpose::ClientAuth,
    ];
    p.custom_extensions = extensions
        .iter()
        .map(|e| {
            let mut ext = match &e.oid {
                ExtensionOid::Other(arcs) => {
                    rcgen::CustomExtension::from_oid_content(arcs, e.value.clone())
                }
                ours => rcgen::CustomExtension::from_oid_content(
                    &placeholder_arcs(sub_arc(ours)),
                    e.value.clone(),
                ),
            };
            ext.set_criticality(e.critical);
            ext
        })
        .collect();

    let remote =
        rcgen::KeyPair::from_remote(Box::new(signer)).map_err(|e| issuance(format!("key: {e}")))?;
    let cert = p
        .self_signed(&remote)
        .map_err(|e| issuance(format!("rcgen: {e}")))?;
    let mut der = cert.der().to_vec();
    let replaced = substitute(&mut der);
    if replaced != placeholders {
        return Err(issuance(format!(
            "expected {placeholders} extension OIDs to substitute, found {replaced}"
        )));
    }
    Ok(der)
}

fn sub_arc(oid: &ExtensionOid) -> u8 {
    match oid {
        ExtensionOid::Evidence => 1,
        ExtensionOid::Claims => 2,
        ExtensionOid::PlatformCertificates => 3,
        ExtensionOid::GpuEvidence => 4,
        ExtensionOid::Other(_) => 0,
    }
}

fn issuance(reason: impl Into<String>) -> Error {
    Error::Malformed {
        subject: Subject::RaTlsCertificate,
        reason: reason.into(),
    }
}

/// Replaces every DER-encoded placeholder OID (tag, length, contents) by the real one of the
/// same length; returns how many were replaced.
fn substitute(bytes: &mut [u8]) -> usize {
    let mut count = 0usize;
    for sub in 1..=4u8 {
        let from = super::format::tlv(0x06, &placeholder_oid(sub));
        let to = super::format::tlv(0x06, &real_oid(sub));
        if from.len() != to.len() || from.is_empty() {
            continue;
        }
        let mut i = 0usize;
        while let Some(window) = bytes.get_mut(i..i.saturating_add(from.len())) {
            if window == from.as_slice() {
                window.copy_from_slice(&to);
                count = count.saturating_add(1);
                i = i.saturating_add(from.len());
            } else {
                i = i.saturating_add(1);
            }
        }
    }
    count
}

enum RingKey {
    Ecdsa(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
    Rsa(RsaKeyPair),
}

/// Signs with the caller's key after substituting the real OIDs into the signed bytes.
struct Resigner {
    key: RingKey,
    public_key: Vec<u8>,
    alg: &'static rcgen::SignatureAlgorithm,
    rng: SystemRandom,
}

impl Resigner {
    fn new(key: &rcgen::KeyPair) -> Result<Self> {
        if key.as_remote().is_some() {
            return Err(issuance(
                "remote key pairs are not supported (the signature must cover substituted OIDs)",
            ));
        }
        let alg = key.algorithm();
        let pkcs8 = key.serialized_der();
        let rng = SystemRandom::new();
        let reject = |e: ring::error::KeyRejected| issuance(format!("key rejected: {e}"));
        let ring_key = if alg == &rcgen::PKCS_ECDSA_P256_SHA256 {
            RingKey::Ecdsa(
                EcdsaKeyPair::from_pkcs8(&ring_sig::ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8, &rng)
                    .map_err(reject)?,
            )
        } else if alg == &rcgen::PKCS_ECDSA_P384_SHA384 {
            RingKey::Ecdsa(
                EcdsaKeyPair::from_pkcs8(&ring_sig::ECDSA_P384_SHA384_ASN1_SIGNING, pkcs8, &rng)
                    .map_err(reject)?,
            )
        } else if alg == &rcgen::PKCS_ED25519 {
            RingKey::Ed25519(Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8).map_err(reject)?)
        } else if alg == &rcgen::PKCS_RSA_SHA256 {
            RingKey::Rsa(RsaKeyPair::from_pkcs8(pkcs8).map_err(reject)?)
        } else {
            return Err(Error::UnsupportedKeyType {
                algorithm: format!("{alg:?}"),
            });
        };
        let public_key = match &ring_key {
            RingKey::Ecdsa(k) => k.public_key().as_ref().to_vec(),
            RingKey::Ed25519(k) => k.public_key().as_ref().to_vec(),
            RingKey::Rsa(k) => k.public_key().as_ref().to_vec(),
        };
        Ok(Self {
            key: ring_key,
            public_key,
            alg,
            rng,
        })
    }

    fn placeholders_expected(&self, extensions: &[RawExtension]) -> usize {
        extensions
            .iter()
            .filter(|e| !matches!(e.oid, ExtensionOid::Other(_)))
            .count()
    }
}

impl rcgen::RemoteKeyPair for Resigner {
    fn public_key(&self) -> &[u8] {
        &self.public_key
    }

    fn sign(&self, msg: &[u8]) -> std::result::Result<Vec<u8>, rcgen::Error> {
        let mut tbs = msg.to_vec();
        substitute(&mut tbs);
        match &self.key {
            RingKey::Ecdsa(k) => k
                .sign(&self.rng, &tbs)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| rcgen::Error::RingUnspecified),
            RingKey::Ed25519(k) => Ok(k.sign(&tbs).as_ref().to_vec()),
            RingKey::Rsa(k) => {
                let mut sig = vec![0u8; k.public().modulus_len()];
                k.sign(&ring_sig::RSA_PKCS1_SHA256, &self.rng, &tbs, &mut sig)
                    .map_err(|_| rcgen::Error::RingUnspecified)?;
                Ok(sig)
            }
        }
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        self.alg
    }
}
