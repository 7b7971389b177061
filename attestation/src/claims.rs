//! The enclave's claims and their binding to hardware evidence.
//!
//! The claims say which keys and which workload the evidence vouches for: the TLS key (as the
//! SHA-256 of its SubjectPublicKeyInfo), the HPKE key for encrypted prompts, the model and the
//! measured configuration, a validity window and, for freshness, a client nonce. The enclave
//! puts `SHA-512(CLAIMS_DOMAIN_TAG ‖ canonical claims)` into the evidence's 64-byte
//! REPORT_DATA ([`Claims::report_data`]); a verifier parses the claims it was sent
//! ([`Claims::from_bytes`]) and checks that the verified evidence carries exactly that hash
//! ([`Claims::check_binding`]).
//!
//! The encoding (byte by byte with a test vector: `docs/claims.md`) is written by hand rather
//! than derived with serde: the bytes are hashed, so there must be exactly one encoding of a
//! given set of claims. A fixed-order TLV with explicit lengths gives that: magic, version,
//! body length, then fields with strictly increasing tags; unknown tags, duplicates, disorder, wrong
//! lengths, truncation and trailing bytes are all rejected, so any accepted input re-encodes to
//! itself.
//!
//! Claims are untrusted input until bound to verified evidence.

use sha2::{Digest, Sha512};

pub use crate::error::ClaimsDefect;
use crate::error::{Error, Result, Subject};

/// Magic at the start of every claims encoding.
pub const CLAIMS_MAGIC: [u8; 4] = *b"CCLM";

/// The claims format version this crate reads and writes.
pub const CLAIMS_VERSION: u16 = 1;

/// Domain separation for REPORT_DATA: the hash input starts with this tag (NUL-terminated so
/// no other tag of ours is a prefix of it), so a REPORT_DATA made for claims cannot be
/// confused with a hash of anything else the enclave signs.
pub const CLAIMS_DOMAIN_TAG: &[u8] = b"cocoon-claims-v1\0";

/// Magic, version and body length.
const HEADER_LEN: usize = 8;

/// Largest claims encoding accepted, in bytes.
pub const MAX_CLAIMS_SIZE: usize = 4096;

/// Longest client nonce, in bytes.
pub const MAX_NONCE_LEN: usize = 64;

/// Longest HPKE public key, in bytes (room for post-quantum KEMs: ML-KEM-1024 keys are 1568).
pub const MAX_HPKE_KEY_LEN: usize = 2048;

/// Field tags, in the order they must appear.
mod tag {
    pub const PLATFORM: u8 = 1;
    pub const TLS_SPKI_SHA256: u8 = 2;
    pub const HPKE_PUBLIC_KEY: u8 = 3;
    pub const MODEL_BLAKE3: u8 = 4;
    pub const MODEL_DM_VERITY_ROOT: u8 = 5;
    pub const CONFIG_DIGEST: u8 = 6;
    pub const CREATED_AT: u8 = 7;
    pub const EXPIRES_AT: u8 = 8;
    pub const NONCE: u8 = 9;
    pub const GPU: u8 = 10;
}

/// The TEE the claims say they come from. The simulated platforms are distinct codes so that
/// claims made inside the simulator can never pass for hardware claims.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ClaimsPlatform {
    Tdx,
    SevSnp,
    Sgx,
    SimulatedTdx,
    SimulatedSnp,
}

impl ClaimsPlatform {
    /// The one-byte code in the encoding.
    pub fn code(self) -> u8 {
        match self {
            Self::Tdx => 0x01,
            Self::SevSnp => 0x02,
            Self::Sgx => 0x03,
            Self::SimulatedTdx => 0x81,
            Self::SimulatedSnp => 0x82,
        }
    }

    pub fn from_code(code: u8) -> Result<Self> {
        Ok(match code {
            0x01 => Self::Tdx,
            0x02 => Self::SevSnp,
            0x03 => Self::Sgx,
            0x81 => Self::SimulatedTdx,
            0x82 => Self::SimulatedSnp,
            other => {
                return Err(Error::ClaimsMalformed {
                    defect: ClaimsDefect::UnknownPlatform(other),
                })
            }
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tdx => "tdx",
            Self::SevSnp => "sev-snp",
            Self::Sgx => "sgx",
            Self::SimulatedTdx => "sim-tdx",
            Self::SimulatedSnp => "sim-snp",
        }
    }

    pub fn is_simulated(self) -> bool {
        matches!(self, Self::SimulatedTdx | Self::SimulatedSnp)
    }
}

/// An HPKE public key (RFC 9180) with its KEM identifier, so the key bytes are unambiguous.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HpkePublicKey {
    kem_id: u16,
    key: Vec<u8>,
}

impl HpkePublicKey {
    /// `key` must be 1..=[`MAX_HPKE_KEY_LEN`] bytes.
    pub fn new(kem_id: u16, key: Vec<u8>) -> Result<Self> {
        check_len("hpke_public_key", key.len(), 1, MAX_HPKE_KEY_LEN)?;
        Ok(Self { kem_id, key })
    }

    pub fn kem_id(&self) -> u16 {
        self.kem_id
    }

    pub fn key(&self) -> &[u8] {
        &self.key
    }
}

/// A client nonce of 1..=[`MAX_NONCE_LEN`] bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Nonce(Vec<u8>);

impl Nonce {
    pub fn new(bytes: Vec<u8>) -> Result<Self> {
        check_len("nonce", bytes.len(), 1, MAX_NONCE_LEN)?;
        Ok(Self(bytes))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// Which model the enclave serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ModelIdentity {
    /// BLAKE3 digest of the model file(s).
    pub blake3: [u8; 32],
    /// Root hash of the dm-verity tree of the model volume, when the model is on one.
    pub dm_verity_root: Option<[u8; 32]>,
}

/// Most GPUs one enclave may commit to.
pub const MAX_GPUS: u8 = 8;

/// Where the enclave runs inference (ONNX Runtime's execution provider).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ExecutionProvider {
    Cpu,
    Cuda,
}

impl ExecutionProvider {
    pub fn code(self) -> u8 {
        match self {
            Self::Cpu => 0,
            Self::Cuda => 1,
        }
    }

    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            0 => Some(Self::Cpu),
            1 => Some(Self::Cuda),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cpu => "cpu",
            Self::Cuda => "cuda",
        }
    }
}

/// The enclave's commitment to its GPUs: how many GPU attestation reports accompany its
/// evidence (each with an SPDM nonce derived from these claims: [`Claims::gpu_nonce`]) and the
/// execution provider inference runs on. Without it the enclave claims no GPU, and a verifier
/// refuses GPU evidence that comes anyway (a host cannot add or strip GPUs unnoticed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GpuCommitment {
    /// 1..=[`MAX_GPUS`].
    pub count: u8,
    pub execution_provider: ExecutionProvider,
}

/// Domain separation of [`Claims::gpu_nonce`].
pub const GPU_NONCE_DOMAIN_TAG: &[u8] = b"cocoon-gpu-nonce-v1\0";

/// What the enclave asserts about itself (format version [`CLAIMS_VERSION`]).
///
/// Every value of this type has exactly one encoding ([`Claims::to_bytes`]) and the parser
/// accepts exactly the encodings of such values.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Claims {
    pub platform: ClaimsPlatform,
    /// SHA-256 of the DER SubjectPublicKeyInfo of the TLS certificate's key.
    pub tls_spki_sha256: [u8; 32],
    /// The key clients encrypt prompts to; absent until encrypted prompts are served.
    pub hpke_public_key: Option<HpkePublicKey>,
    pub model: ModelIdentity,
    /// Digest of the measured configuration.
    pub config_digest: [u8; 32],
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds; the claims are valid for `created_at <= now < expires_at`.
    pub expires_at: i64,
    /// The client's nonce, in claims made for one attestation request.
    pub nonce: Option<Nonce>,
    /// The GPUs whose evidence accompanies these claims; `None`: no GPU.
    pub gpu: Option<GpuCommitment>,
}

impl Claims {
    /// The canonical encoding (`docs/claims.md`).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        put(&mut out, tag::PLATFORM, &[self.platform.code()]);
        put(&mut out, tag::TLS_SPKI_SHA256, &self.tls_spki_sha256);
        if let Some(hpke) = &self.hpke_public_key {
            let mut value = Vec::with_capacity(hpke.key.len().saturating_add(2));
            value.extend_from_slice(&hpke.kem_id.to_be_bytes());
            value.extend_from_slice(&hpke.key);
            put(&mut out, tag::HPKE_PUBLIC_KEY, &value);
        }
        put(&mut out, tag::MODEL_BLAKE3, &self.model.blake3);
        if let Some(root) = &self.model.dm_verity_root {
            put(&mut out, tag::MODEL_DM_VERITY_ROOT, root);
        }
        put(&mut out, tag::CONFIG_DIGEST, &self.config_digest);
        put(&mut out, tag::CREATED_AT, &self.created_at.to_be_bytes());
        put(&mut out, tag::EXPIRES_AT, &self.expires_at.to_be_bytes());
        if let Some(nonce) = &self.nonce {
            put(&mut out, tag::NONCE, &nonce.0);
        }
        if let Some(gpu) = &self.gpu {
            put(
                &mut out,
                tag::GPU,
                &[gpu.count, gpu.execution_provider.code()],
            );
        }
        // Bounded by the field types (at most ~2.3 KiB), so the length always fits.
        let body_len = u16::try_from(out.len()).unwrap_or(u16::MAX);
        let mut encoded = Vec::with_capacity(out.len().saturating_add(HEADER_LEN));
        encoded.extend_from_slice(&CLAIMS_MAGIC);
        encoded.extend_from_slice(&CLAIMS_VERSION.to_be_bytes());
        encoded.extend_from_slice(&body_len.to_be_bytes());
        encoded.extend_from_slice(&out);
        encoded
    }

    /// Parses a canonical encoding; anything else is an error.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        if bytes.len() > MAX_CLAIMS_SIZE {
            return Err(Error::InputTooLarge {
                subject: Subject::Claims,
                size: bytes.len(),
                limit: MAX_CLAIMS_SIZE,
            });
        }
        let mut header = Reader { rest: bytes };
        if header.take(4)? != CLAIMS_MAGIC {
            return Err(malformed(ClaimsDefect::BadMagic));
        }
        let version = u16::from_be_bytes(header.array()?);
        if version != CLAIMS_VERSION {
            return Err(Error::UnsupportedClaimsVersion(version));
        }
        let body_len = usize::from(u16::from_be_bytes(header.array()?));
        let body = header.take(body_len)?;
        if !header.rest.is_empty() {
            return Err(Error::TrailingBytes {
                subject: Subject::Claims,
                count: header.rest.len(),
            });
        }
        let mut r = Reader { rest: body };

        let mut platform = None;
        let mut tls_spki_sha256 = None;
        let mut hpke_public_key = None;
        let mut model_blake3 = None;
        let mut dm_verity_root = None;
        let mut config_digest = None;
        let mut created_at = None;
        let mut expires_at = None;
        let mut nonce = None;
        let mut gpu = None;

        let mut last_tag = 0u8;
        while !r.rest.is_empty() {
            let [tag] = r.array::<1>()?;
            if !(tag::PLATFORM..=tag::GPU).contains(&tag) {
                return Err(malformed(ClaimsDefect::UnknownField { tag }));
            }
            if tag == last_tag {
                return Err(malformed(ClaimsDefect::DuplicateField { tag }));
            }
            if tag < last_tag {
                return Err(malformed(ClaimsDefect::FieldOutOfOrder {
                    tag,
                    after: last_tag,
                }));
            }
            last_tag = tag;
            let len = usize::from(u16::from_be_bytes(r.array()?));
            let value = r.take(len)?;
            match tag {
                tag::PLATFORM => {
                    let [code] = fixed::<1>("platform", value)?;
                    platform = Some(ClaimsPlatform::from_code(code)?);
                }
                tag::TLS_SPKI_SHA256 => tls_spki_sha256 = Some(fixed("tls_spki_sha256", value)?),
                tag::HPKE_PUBLIC_KEY => {
                    // kem_id (2) + at least one key byte.
                    check_len(
                        "hpke_public_key",
                        value.len(),
                        3,
                        MAX_HPKE_KEY_LEN.saturating_add(2),
                    )?;
                    let (kem, key) = value.split_at_checked(2).ok_or_else(|| {
                        malformed(ClaimsDefect::FieldLength {
                            field: "hpke_public_key",
                            length: value.len(),
                            min: 3,
                            max: MAX_HPKE_KEY_LEN.saturating_add(2),
                        })
                    })?;
                    let kem_id = u16::from_be_bytes(fixed("hpke_public_key", kem)?);
                    hpke_public_key = Some(HpkePublicKey::new(kem_id, key.to_vec())?);
                }
                tag::MODEL_BLAKE3 => model_blake3 = Some(fixed("model_blake3", value)?),
                tag::MODEL_DM_VERITY_ROOT => {
                    dm_verity_root = Some(fixed("model_dm_verity_root", value)?)
                }
                tag::CONFIG_DIGEST => config_digest = Some(fixed("config_digest", value)?),
                tag::CREATED_AT => {
                    created_at = Some(i64::from_be_bytes(fixed("created_at", value)?))
                }
                tag::EXPIRES_AT => {
                    expires_at = Some(i64::from_be_bytes(fixed("expires_at", value)?))
                }
                tag::NONCE => nonce = Some(Nonce::new(value.to_vec())?),
                tag::GPU => {
                    let [count, provider] = fixed::<2>("gpu", value)?;
                    if count == 0 || count > MAX_GPUS {
                        return Err(malformed(ClaimsDefect::GpuCount(count)));
                    }
                    let execution_provider =
                        ExecutionProvider::from_code(provider).ok_or_else(|| {
                            malformed(ClaimsDefect::UnknownExecutionProvider(provider))
                        })?;
                    gpu = Some(GpuCommitment {
                        count,
                        execution_provider,
                    });
                }
                other => return Err(malformed(ClaimsDefect::UnknownField { tag: other })),
            }
        }

        Ok(Self {
            platform: required("platform", platform)?,
            tls_spki_sha256: required("tls_spki_sha256", tls_spki_sha256)?,
            hpke_public_key,
            model: ModelIdentity {
                blake3: required("model_blake3", model_blake3)?,
                dm_verity_root,
            },
            config_digest: required("config_digest", config_digest)?,
            created_at: required("created_at", created_at)?,
            expires_at: required("expires_at", expires_at)?,
            nonce,
            gpu,
        })
    }

    /// The SPDM nonce GPU `index` must sign for these claims: SHA-256([`GPU_NONCE_DOMAIN_TAG`] ‖
    /// index ‖ canonical claims). Derived, not chosen, so each GPU report is bound to exactly this
    /// enclave instance (its TLS and HPKE keys) and, for a fresh attestation, to the client's nonce.
    pub fn gpu_nonce(&self, index: u8) -> [u8; 32] {
        use sha2::Digest as _;
        let mut h = sha2::Sha256::new();
        h.update(GPU_NONCE_DOMAIN_TAG);
        h.update([index]);
        h.update(self.to_bytes());
        h.finalize().into()
    }

    /// The REPORT_DATA that binds these claims: SHA-512([`CLAIMS_DOMAIN_TAG`] ‖ canonical claims).
    pub fn report_data(&self) -> [u8; 64] {
        let mut h = Sha512::new();
        h.update(CLAIMS_DOMAIN_TAG);
        h.update(self.to_bytes());
        h.finalize().into()
    }

    /// Checks that `report_data` (from verified evidence) vouches for exactly these claims.
    pub fn check_binding(&self, report_data: &[u8; 64]) -> Result<()> {
        let expected = self.report_data();
        if &expected != report_data {
            return Err(Error::ReportDataMismatch {
                expected: hex::encode(expected),
                actual: hex::encode(report_data),
            });
        }
        Ok(())
    }

    /// Checks `created_at <= now < expires_at`.
    pub fn check_time(&self, now: i64) -> Result<()> {
        if now < self.created_at {
            return Err(Error::ClaimsNotYetValid {
                created_at: self.created_at,
                now,
            });
        }
        if now >= self.expires_at {
            return Err(Error::ClaimsExpired {
                expires_at: self.expires_at,
                now,
            });
        }
        Ok(())
    }

    /// Everything a verifier checks of claims received with TDX (or SGX) evidence that
    /// [`TdxVerifier::verify`](crate::tdx::TdxVerifier::verify) accepted: the platform fits the
    /// evidence and its root, REPORT_DATA binds these claims, `now` is inside their validity
    /// window and, when the verifier sent a nonce, the claims carry it.
    pub fn check_tdx(
        &self,
        verified: &crate::tdx::VerifiedQuote,
        now: i64,
        nonce: Option<&[u8]>,
    ) -> Result<()> {
        let simulated = verified.root == crate::TrustRoot::Simulated;
        let evidence = match (verified.quote.td_report().is_some(), simulated) {
            (true, false) => ClaimsPlatform::Tdx,
            (true, true) => ClaimsPlatform::SimulatedTdx,
            (false, false) => ClaimsPlatform::Sgx,
            // The simulator issues no SGX quotes; nothing claims this.
            (false, true) => {
                return Err(Error::ClaimsPlatformMismatch {
                    claims: self.platform.as_str(),
                    evidence: "sim-sgx",
                })
            }
        };
        self.check_all(evidence, verified.quote.report_data(), now, nonce)
    }

    /// As [`check_tdx`](Self::check_tdx), for an SEV-SNP report that
    /// [`SnpVerifier::verify`](crate::snp::SnpVerifier::verify) accepted.
    pub fn check_snp(
        &self,
        verified: &crate::snp::VerifiedSnpReport,
        now: i64,
        nonce: Option<&[u8]>,
    ) -> Result<()> {
        let evidence = if verified.root == crate::TrustRoot::Simulated {
            ClaimsPlatform::SimulatedSnp
        } else {
            ClaimsPlatform::SevSnp
        };
        self.check_all(evidence, &verified.report.report_data, now, nonce)
    }

    fn check_all(
        &self,
        evidence: ClaimsPlatform,
        report_data: &[u8; 64],
        now: i64,
        nonce: Option<&[u8]>,
    ) -> Result<()> {
        if self.platform != evidence {
            return Err(Error::ClaimsPlatformMismatch {
                claims: self.platform.as_str(),
                evidence: evidence.as_str(),
            });
        }
        self.check_binding(report_data)?;
        self.check_time(now)?;
        match nonce {
            Some(n) => self.check_nonce(n),
            None => Ok(()),
        }
    }

    /// The claims as JSON, the one form every report and API shows: byte fields in hex,
    /// times in unix seconds.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "platform": self.platform.as_str(),
            "tls_spki_sha256": hex::encode(self.tls_spki_sha256),
            "hpke_public_key": self.hpke_public_key.as_ref().map(|k| serde_json::json!({
                "kem_id": k.kem_id(),
                "key": hex::encode(k.key()),
            })),
            "model": {
                "blake3": hex::encode(self.model.blake3),
                "dm_verity_root": self.model.dm_verity_root.map(hex::encode),
            },
            "config_digest": hex::encode(self.config_digest),
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "nonce": self.nonce.as_ref().map(|n| hex::encode(n.as_bytes())),
            "gpu": self.gpu.map(|g| serde_json::json!({
                "count": g.count,
                "execution_provider": g.execution_provider.as_str(),
            })),
        })
    }

    /// The claims as a human report: one `  name  value` line each (times in RFC 3339), the
    /// same names as [`Claims::to_json`].
    pub fn to_text(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let mut line = |key: &str, value: String| {
            let _ = writeln!(out, "  {key:<17} {value}");
        };
        line("platform", self.platform.as_str().into());
        line("tls_spki_sha256", hex::encode(self.tls_spki_sha256));
        if let Some(k) = &self.hpke_public_key {
            line(
                "hpke_public_key",
                format!("kem {:#06x} {}", k.kem_id(), hex::encode(k.key())),
            );
        }
        line("model_blake3", hex::encode(self.model.blake3));
        if let Some(root) = &self.model.dm_verity_root {
            line("dm_verity_root", hex::encode(root));
        }
        line("config_digest", hex::encode(self.config_digest));
        line("created_at", crate::error::fmt_time(self.created_at));
        line("expires_at", crate::error::fmt_time(self.expires_at));
        if let Some(nonce) = &self.nonce {
            line("nonce", hex::encode(nonce.as_bytes()));
        }
        if let Some(gpu) = &self.gpu {
            line(
                "gpu",
                format!(
                    "{} GPU(s), inference on {}",
                    gpu.count,
                    gpu.execution_provider.as_str()
                ),
            );
        }
        out
    }

    /// Checks that the claims carry exactly the nonce the verifier sent.
    pub fn check_nonce(&self, expected: &[u8]) -> Result<()> {
        match &self.nonce {
            Some(n) if n.as_bytes() == expected => Ok(()),
            _ => Err(Error::NonceMismatch),
        }
    }
}

fn put(out: &mut Vec<u8>, tag: u8, value: &[u8]) {
    // Every value is bounded far below u16::MAX by its type (fixed arrays, `Nonce`,
    // `HpkePublicKey`), so the fallback is never taken.
    let len = u16::try_from(value.len()).unwrap_or(u16::MAX);
    out.push(tag);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(value);
}

fn malformed(defect: ClaimsDefect) -> Error {
    Error::ClaimsMalformed { defect }
}

fn check_len(field: &'static str, length: usize, min: usize, max: usize) -> Result<()> {
    if length < min || length > max {
        return Err(malformed(ClaimsDefect::FieldLength {
            field,
            length,
            min,
            max,
        }));
    }
    Ok(())
}

fn fixed<const N: usize>(field: &'static str, value: &[u8]) -> Result<[u8; N]> {
    <[u8; N]>::try_from(value).map_err(|_| {
        malformed(ClaimsDefect::FieldLength {
            field,
            length: value.len(),
            min: N,
            max: N,
        })
    })
}

fn required<T>(field: &'static str, value: Option<T>) -> Result<T> {
    value.ok_or(malformed(ClaimsDefect::MissingField { field }))
}

struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let (head, tail) = self.rest.split_at_checked(n).ok_or(Error::Truncated {
            subject: Subject::Claims,
            needed: n,
            available: self.rest.len(),
        })?;
        self.rest = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let head = self.take(N)?;
        <[u8; N]>::try_from(head).map_err(|_| Error::Truncated {
            subject: Subject::Claims,
            needed: N,
            available: head.len(),
        })
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
mod tests;
#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]
mod tests_evidence;
