//! The enclave's TLS identity: a fresh key, the claims that name it, evidence binding the
//! claims, and the RA-TLS certificate carrying both (`cocoon_attestation::ratls`).
//!
//! Every issue generates a new key, so a certificate never outlives its key and rotation needs
//! no key storage. The claims name the key by the SHA-256 of its SubjectPublicKeyInfo, the
//! evidence's REPORT_DATA is [`Claims::report_data`], and the certificate carries evidence and
//! claims in its critical extensions; a verifier that accepts the certificate has checked that
//! chain from hardware to the key that signs the handshake.
//!
//! [`Identity::fresh_attestation`] answers a client's nonce with new evidence for the same
//! claims plus that nonce: proof that the key is live now, not only when it was certified.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use cocoon_attestation::claims::{Claims, HpkePublicKey, ModelIdentity, Nonce};
use cocoon_attestation::ratls::{
    issue_certificate_with_gpus, CarriedEvidence, CarriedGpuEvidence, CertificateParams,
    EvidenceFormat, FreshAttestation, RaTlsCertificate,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::sign::CertifiedKey;
use sha2::{Digest, Sha256};

use crate::certtable::SnpCertKind;
use crate::error::AttestError;
use crate::{Attester, Evidence, EvidenceKind};

/// Longest certificate lifetime accepted (issue #3: at most 24 hours).
pub const MAX_LIFETIME_SECS: u64 = 24 * 60 * 60;

/// Default certificate lifetime: 12 hours, renewed after 8.
pub const DEFAULT_LIFETIME_SECS: u64 = 12 * 60 * 60;

/// Default backdating of `created_at`/`notBefore`, for peers whose clocks run behind ours.
pub const DEFAULT_BACKDATE_SECS: u64 = 60;

/// The TLS key's algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum KeyAlgorithm {
    /// ECDSA on P-256 with SHA-256 (the default: every TLS stack has it).
    #[default]
    EcdsaP256,
    /// Ed25519.
    Ed25519,
}

impl KeyAlgorithm {
    fn rcgen(self) -> &'static rcgen::SignatureAlgorithm {
        match self {
            Self::EcdsaP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            Self::Ed25519 => &rcgen::PKCS_ED25519,
        }
    }
}

/// What the enclave asserts besides its key, and how its certificates look.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityConfig {
    pub key_algorithm: KeyAlgorithm,
    /// Seconds from issue to expiry, 1..=[`MAX_LIFETIME_SECS`] together with `backdate_secs`.
    pub lifetime_secs: u64,
    /// `created_at` and `notBefore` lie this far before the moment of issue.
    pub backdate_secs: u64,
    /// The key clients encrypt prompts to (#5); `None` until encrypted prompts are served.
    pub hpke_public_key: Option<HpkePublicKey>,
    pub model: ModelIdentity,
    /// Digest of the measured configuration.
    pub config_digest: [u8; 32],
    /// DNS names or IP addresses for the certificate's subjectAltName (informational: peers
    /// authenticate the key through the evidence, not the name).
    pub subject_alt_names: Vec<String>,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        Self {
            key_algorithm: KeyAlgorithm::default(),
            lifetime_secs: DEFAULT_LIFETIME_SECS,
            backdate_secs: DEFAULT_BACKDATE_SECS,
            hpke_public_key: None,
            model: ModelIdentity {
                blake3: [0; 32],
                dm_verity_root: None,
            },
            config_digest: [0; 32],
            subject_alt_names: vec!["localhost".into()],
        }
    }
}

impl IdentityConfig {
    /// Checks the lifetime bounds.
    pub fn validate(&self) -> Result<(), AttestError> {
        let total = self.lifetime_secs.saturating_add(self.backdate_secs);
        if self.lifetime_secs == 0 || total > MAX_LIFETIME_SECS {
            return Err(AttestError::InvalidConfig {
                reason: format!(
                    "certificate lifetime {} s + backdate {} s must be 1..={MAX_LIFETIME_SECS} s",
                    self.lifetime_secs, self.backdate_secs
                ),
            });
        }
        Ok(())
    }
}

/// One issued identity: key, claims, evidence and certificate.
pub struct Identity {
    claims: Claims,
    certificate: Vec<u8>,
    spki_sha256: [u8; 32],
    certified_key: Arc<CertifiedKey>,
    /// Unix seconds at which this identity was issued (not backdated).
    issued_at: i64,
}

impl std::fmt::Debug for Identity {
    // No key material: only what a peer can see.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("claims", &self.claims)
            .field("spki_sha256", &hex::encode(self.spki_sha256))
            .field("issued_at", &self.issued_at)
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// Generates a key, attests claims naming it, and issues the RA-TLS certificate.
    /// `now` is the moment of issue (unix seconds).
    pub fn issue(
        attester: &dyn Attester,
        config: &IdentityConfig,
        now: i64,
    ) -> Result<Self, AttestError> {
        config.validate()?;
        let key = rcgen::KeyPair::generate_for(config.key_algorithm.rcgen()).map_err(|e| {
            AttestError::KeyGeneration {
                reason: e.to_string(),
            }
        })?;
        let spki_sha256: [u8; 32] = Sha256::digest(key.public_key_der()).into();
        let backdate = i64::try_from(config.backdate_secs).map_err(|_| AttestError::Clock)?;
        let lifetime = i64::try_from(config.lifetime_secs).map_err(|_| AttestError::Clock)?;
        let created_at = now.checked_sub(backdate).ok_or(AttestError::Clock)?;
        let expires_at = now.checked_add(lifetime).ok_or(AttestError::Clock)?;
        let claims = Claims {
            platform: attester.platform(),
            tls_spki_sha256: spki_sha256,
            hpke_public_key: config.hpke_public_key.clone(),
            model: config.model,
            config_digest: config.config_digest,
            created_at,
            expires_at,
            nonce: None,
            gpu: attester.gpu_commitment(),
        };
        let evidence = carried_evidence(attester, &claims)?;
        let gpus = gpu_evidence(attester, &claims)?;
        let params = CertificateParams {
            not_before: created_at,
            not_after: expires_at,
            subject_alt_names: config.subject_alt_names.clone(),
        };
        let certificate = issue_certificate_with_gpus(&key, &claims, &evidence, &gpus, &params)
            .map_err(AttestError::Certificate)?;
        // What a peer will see: the certificate must name this key.
        let parsed = RaTlsCertificate::parse(&certificate).map_err(AttestError::Certificate)?;
        if parsed.spki_sha256() != spki_sha256 {
            return Err(AttestError::KeyGeneration {
                reason: "the issued certificate does not carry the generated key".into(),
            });
        }
        let certified_key = certified_key(&key, certificate.clone())?;
        Ok(Self {
            claims,
            certificate,
            spki_sha256,
            certified_key,
            issued_at: now,
        })
    }

    /// As [`issue`](Self::issue) at the current system time.
    pub fn issue_now(
        attester: &dyn Attester,
        config: &IdentityConfig,
    ) -> Result<Self, AttestError> {
        Self::issue(attester, config, unix_now()?)
    }

    /// The claims in the certificate (without nonce).
    pub fn claims(&self) -> &Claims {
        &self.claims
    }

    /// The RA-TLS certificate, DER.
    pub fn certificate(&self) -> &[u8] {
        &self.certificate
    }

    /// SHA-256 of the certificate key's SubjectPublicKeyInfo.
    pub fn spki_sha256(&self) -> [u8; 32] {
        self.spki_sha256
    }

    /// The key and certificate for rustls.
    pub fn certified_key(&self) -> &Arc<CertifiedKey> {
        &self.certified_key
    }

    /// Unix seconds of issue.
    pub fn issued_at(&self) -> i64 {
        self.issued_at
    }

    /// Unix seconds of expiry (`claims.expires_at`, the certificate's notAfter).
    pub fn expires_at(&self) -> i64 {
        self.claims.expires_at
    }

    /// New evidence for this identity's claims plus `nonce` (1..=64 bytes): the answer to
    /// `GET /v1/attestation?nonce=HEX`.
    pub fn fresh_attestation(
        &self,
        attester: &dyn Attester,
        nonce: &[u8],
    ) -> Result<FreshAttestation, AttestError> {
        let mut claims = self.claims.clone();
        claims.nonce = Some(Nonce::new(nonce.to_vec()).map_err(AttestError::Certificate)?);
        let evidence = carried_evidence(attester, &claims)?;
        let gpus = gpu_evidence(attester, &claims)?;
        Ok(FreshAttestation {
            evidence,
            claims: claims.to_bytes(),
            gpus,
        })
    }
}

/// The GPU reports `claims` commit to, GPU `i` signing `claims.gpu_nonce(i)`.
fn gpu_evidence(
    attester: &dyn Attester,
    claims: &Claims,
) -> Result<Vec<CarriedGpuEvidence>, AttestError> {
    let count = claims.gpu.map_or(0, |g| g.count);
    (0..count)
        .map(|i| attester.attest_gpu(i, &claims.gpu_nonce(i)))
        .collect()
}

/// Evidence from `attester` for `claims`, in the form certificates carry.
fn carried_evidence(
    attester: &dyn Attester,
    claims: &Claims,
) -> Result<CarriedEvidence, AttestError> {
    let evidence = attester.attest(&claims.report_data())?;
    if evidence.platform != claims.platform {
        return Err(AttestError::PlatformMismatch {
            attester: claims.platform.as_str(),
            evidence: evidence.platform.as_str(),
        });
    }
    Ok(to_carried(evidence))
}

/// Converts attester output to [`CarriedEvidence`]: a TDX quote alone (it carries its PCK
/// chain); an SNP report with the VCEK, else the VLEK, from the host's certificate table (the
/// verifier has the AMD roots; without a signer it must find the VCEK elsewhere).
pub fn to_carried(evidence: Evidence) -> CarriedEvidence {
    match evidence.kind {
        EvidenceKind::SnpReport => {
            let signer = evidence
                .certificate(SnpCertKind::Vcek)
                .or_else(|| evidence.certificate(SnpCertKind::Vlek))
                .map(<[u8]>::to_vec);
            CarriedEvidence {
                format: EvidenceFormat::SnpReport,
                evidence: evidence.bytes,
                certificates: signer.into_iter().collect(),
            }
        }
        EvidenceKind::TdxQuote => CarriedEvidence {
            format: EvidenceFormat::TdxQuote,
            evidence: evidence.bytes,
            certificates: Vec::new(),
        },
    }
}

/// A rustls signing key for an rcgen key pair (ring provider).
fn certified_key(
    key: &rcgen::KeyPair,
    certificate: Vec<u8>,
) -> Result<Arc<CertifiedKey>, AttestError> {
    let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let signing = rustls::crypto::ring::sign::any_supported_type(&der).map_err(AttestError::Tls)?;
    Ok(Arc::new(CertifiedKey::new(
        vec![CertificateDer::from(certificate)],
        signing,
    )))
}

/// The current time in unix seconds.
pub fn unix_now() -> Result<i64, AttestError> {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|_| AttestError::Clock)?
        .as_secs();
    i64::try_from(secs).map_err(|_| AttestError::Clock)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes_beyond_a_day_or_of_zero_are_refused() {
        for (lifetime_secs, backdate_secs) in
            [(0, 0), (MAX_LIFETIME_SECS, 1), (MAX_LIFETIME_SECS + 1, 0)]
        {
            let config = IdentityConfig {
                lifetime_secs,
                backdate_secs,
                ..IdentityConfig::default()
            };
            assert!(
                matches!(config.validate(), Err(AttestError::InvalidConfig { .. })),
                "{lifetime_secs} + {backdate_secs}"
            );
        }
        let day = IdentityConfig {
            lifetime_secs: MAX_LIFETIME_SECS - 60,
            backdate_secs: 60,
            ..IdentityConfig::default()
        };
        assert!(day.validate().is_ok());
    }

    #[test]
    fn snp_evidence_carries_the_vcek_and_tdx_evidence_nothing() {
        use crate::certtable::SnpCertificate;
        let snp = Evidence {
            platform: cocoon_attestation::claims::ClaimsPlatform::SevSnp,
            kind: EvidenceKind::SnpReport,
            bytes: vec![1, 2, 3],
            certificates: vec![
                SnpCertificate {
                    kind: SnpCertKind::Ark,
                    der: vec![0xa],
                },
                SnpCertificate {
                    kind: SnpCertKind::Vcek,
                    der: vec![0xc],
                },
            ],
        };
        let carried = to_carried(snp);
        assert_eq!(carried.format, EvidenceFormat::SnpReport);
        assert_eq!(carried.certificates, vec![vec![0xc]]);

        let vlek = Evidence {
            platform: cocoon_attestation::claims::ClaimsPlatform::SevSnp,
            kind: EvidenceKind::SnpReport,
            bytes: vec![1],
            certificates: vec![SnpCertificate {
                kind: SnpCertKind::Vlek,
                der: vec![0xd],
            }],
        };
        assert_eq!(to_carried(vlek).certificates, vec![vec![0xd]]);

        let tdx = Evidence {
            platform: cocoon_attestation::claims::ClaimsPlatform::Tdx,
            kind: EvidenceKind::TdxQuote,
            bytes: vec![4],
            certificates: Vec::new(),
        };
        let carried = to_carried(tdx);
        assert_eq!(carried.format, EvidenceFormat::TdxQuote);
        assert!(carried.certificates.is_empty());
    }
}
