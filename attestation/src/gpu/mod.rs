//! NVIDIA GPU confidential-computing evidence (Hopper H100 and later): parsing and verification.
//!
//! The evidence is what the GPU's SPDM responder returns to `GET_MEASUREMENTS` with a signature
//! requested, concatenated with the request: `request ‖ response`.
//!
//! - Request (SPDM 1.1, 37 bytes): version `0x11`, code `0xE0`, param1 (bit 0 = signature
//!   requested), param2 (measurement operation, `0xFF` = all), 32-byte requester nonce, slot id.
//! - Response: version `0x11`, code `0x60`, param1, param2, number of blocks, 3-byte LE record
//!   length, measurement blocks (index, specification `0x01` = DMTF, 2-byte size, then DMTF type,
//!   2-byte value size, value), 32-byte responder nonce, 2-byte opaque length, opaque data
//!   (NVIDIA TLVs: 2-byte type, 2-byte size, data), then the signature: ECDSA P-384 `r ‖ s`
//!   (96 bytes) over SHA-384 of everything before it (request and response).
//!
//! The parser is hand-written: no maintained crate parses SPDM 1.1 GET_MEASUREMENTS with
//! NVIDIA's opaque-data TLV layout (the `spdm-rs` family implements a responder/requester
//! stack, not this standalone evidence format). The layout and the TLV numbering follow NVIDIA's
//! nvtrust local GPU verifier and confidential-containers/trustee `deps/verifier/src/nvidia`.
//!
//! Verification ([`verify`]): the certificate chain (DER, leaf first, ECDSA P-384/SHA-384 all
//! the way) must end at a [`GpuTrustAnchors`] root and be valid at the given time, the leaf's
//! FWID extension (2.23.133.5.4.1) must equal the report's FWID TLV, the leaf key must have
//! signed the report, and the requester nonce must be the expected one. Not done here: NVIDIA
//! RIM (reference integrity manifest) comparison and OCSP revocation checks; golden values come
//! from the policy's `[gpu]` table instead (see `docs/gpu.md`).

mod chain;
pub(crate) mod parse;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

pub use chain::parse_pem_chain;
pub use parse::{
    GpuEvidence, GpuRequest, MeasurementBlock, OpaqueField, REQUEST_LEN, SIGNATURE_LEN,
};

use crate::error::{Error, Result};

/// The NVIDIA Device Identity CA (self-signed, P-384), the root of every NVIDIA GPU's device
/// certificate chain. Source: NVIDIA nvtrust (`guest_tools/gpu_verifiers/local_gpu_verifier/
/// src/verifier/certs/verifier_device_root.pem`), the same file as trustee's
/// `deps/verifier/test_data/nvidia/verifier_device_root.pem`; SHA-256 of the PEM file
/// `6e6e91e8…471bfc` (checked by a test). Valid 2021-11-05 .. 9999-12-31.
pub const NVIDIA_DEVICE_ROOT_PEM: &[u8] = include_bytes!("nvidia_device_root.pem");

/// Largest evidence accepted (an H100 report is 4117 bytes).
pub const MAX_REPORT_LEN: usize = 64 * 1024;
/// Most certificates accepted in a chain (H100 chains have 5).
pub const MAX_CHAIN_LEN: usize = 8;

/// The GPU architecture, from the device certificate chain's names (GH100 = Hopper,
/// GB100/GB102/GB202 … = Blackwell).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GpuArch {
    Hopper,
    Blackwell,
    /// The leaf certificate's common name.
    Unknown(String),
}

impl GpuArch {
    /// `Hopper`, `Blackwell` or `Unknown`: the claims' `arch` value.
    pub fn name(&self) -> &str {
        match self {
            Self::Hopper => "Hopper",
            Self::Blackwell => "Blackwell",
            Self::Unknown(_) => "Unknown",
        }
    }

    /// Lower-case policy name (`hopper`, `blackwell`, `unknown`).
    pub fn policy_name(&self) -> &'static str {
        match self {
            Self::Hopper => "hopper",
            Self::Blackwell => "blackwell",
            Self::Unknown(_) => "unknown",
        }
    }
}

/// Which roots GPU certificate chains may end in.
#[derive(Debug, Clone)]
pub struct GpuTrustAnchors {
    roots: Vec<Anchor>,
}

#[derive(Debug, Clone)]
struct Anchor {
    der: Vec<u8>,
    simulated: bool,
}

impl GpuTrustAnchors {
    /// The NVIDIA Device Identity CA only.
    pub fn nvidia() -> Result<Self> {
        let der = chain::pem_to_der(NVIDIA_DEVICE_ROOT_PEM)?;
        Ok(Self {
            roots: vec![Anchor {
                der,
                simulated: false,
            }],
        })
    }

    /// The NVIDIA root and the simulated GPU root (`sim::gpu`): evidence ending there verifies
    /// with [`VerifiedGpu::simulated`] set, which the policy rejects unless `allow_simulated`.
    #[cfg(feature = "sim")]
    pub fn with_simulated_root() -> Result<Self> {
        let mut anchors = Self::nvidia()?;
        anchors.roots.push(Anchor {
            der: crate::sim::gpu::root_der().to_vec(),
            simulated: true,
        });
        Ok(anchors)
    }
}

/// GPU evidence that passed [`verify`]: every field is covered by the device signature and the
/// chain to a trusted root (except `uuid`, which the caller may set from the evidence envelope).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifiedGpu {
    pub arch: GpuArch,
    pub driver_version: String,
    pub vbios_version: String,
    /// The FWID (SHA-384) from the report, equal to the leaf certificate's.
    pub fwid: Vec<u8>,
    /// The requester nonce of the signed request.
    pub nonce: [u8; 32],
    /// Measurement block index → DMTF measurement value.
    pub measurements: BTreeMap<u16, Vec<u8>>,
    /// The chain ends in the simulated root (feature `sim`): NOT HARDWARE.
    pub simulated: bool,
    /// The other opaque-data fields, decoded as in NVIDIA's claims (`config` of
    /// [`VerifiedGpu::claims_json`], without driver/VBIOS version and FWID).
    pub config: BTreeMap<String, serde_json::Value>,
    /// The leaf certificate's subject common name.
    pub leaf_common_name: String,
    /// The GPU's UUID as the evidence envelope names it. NOT covered by the signature (the SPDM
    /// report carries none); `verify` leaves it `None`, callers may fill it for display.
    pub uuid: Option<String>,
}

impl VerifiedGpu {
    /// The claims in trustee's/nvtrust's local-verifier shape:
    /// `{arch, config: {driver_version, vbios_version, fwid, …opaque fields}, measurements: {"i": hex},
    /// uuid}` (`uuid` only when set).
    pub fn claims_json(&self) -> serde_json::Value {
        let mut config = serde_json::Map::new();
        for (k, v) in &self.config {
            config.insert(k.clone(), v.clone());
        }
        config.insert(
            "driver_version".into(),
            serde_json::Value::String(self.driver_version.clone()),
        );
        config.insert(
            "vbios_version".into(),
            serde_json::Value::String(self.vbios_version.clone()),
        );
        config.insert(
            "fwid".into(),
            serde_json::Value::String(hex::encode(&self.fwid)),
        );
        let measurements: serde_json::Map<String, serde_json::Value> = self
            .measurements
            .iter()
            .map(|(i, v)| (i.to_string(), serde_json::Value::String(hex::encode(v))))
            .collect();
        let mut out = serde_json::Map::new();
        out.insert("arch".into(), self.arch.name().into());
        out.insert("config".into(), serde_json::Value::Object(config));
        out.insert(
            "measurements".into(),
            serde_json::Value::Object(measurements),
        );
        if let Some(uuid) = &self.uuid {
            out.insert("uuid".into(), uuid.clone().into());
        }
        serde_json::Value::Object(out)
    }
}

/// Verifies GPU evidence (`request ‖ response`) with its certificate chain (DER, leaf first) at
/// `now_unix`. Order of checks: parse, chain (names, signatures, CA flags, validity, root), leaf
/// FWID == report FWID, report signature, nonce.
pub fn verify(
    report: &[u8],
    chain: &[Vec<u8>],
    anchors: &GpuTrustAnchors,
    expected_nonce: Option<&[u8; 32]>,
    now_unix: i64,
) -> Result<VerifiedGpu> {
    let evidence = GpuEvidence::parse(report)?;
    let leaf = chain::verify_chain(chain, &anchors.roots, now_unix)?;

    let report_fwid = evidence
        .opaque_bytes(parse::TLV_FWID)
        .ok_or(Error::GpuFwidMissing {
            what: "the report has no FWID opaque field (type 20)",
        })?;
    let cert_fwid = leaf.fwid.as_deref().ok_or(Error::GpuFwidMissing {
        what: "the leaf certificate has no FWID extension (2.23.133.5.4.1)",
    })?;
    if cert_fwid != report_fwid {
        return Err(Error::GpuFwidMismatch {
            certificate: hex::encode(cert_fwid),
            report: hex::encode(report_fwid),
        });
    }

    chain::verify_report_signature(&leaf.public_key, evidence.signed_bytes(report)?, &evidence)?;

    let nonce = evidence.request.nonce;
    if let Some(expected) = expected_nonce {
        if expected != &nonce {
            return Err(Error::GpuNonceMismatch {
                expected: hex::encode(expected),
                actual: hex::encode(nonce),
            });
        }
    }

    let mut config = evidence.config_claims()?;
    let driver_version = take_string(&mut config, "driver_version")?;
    let vbios_version = take_string(&mut config, "vbios_version")?;
    config.remove("fwid");

    let measurements = evidence
        .blocks
        .iter()
        .map(|b| (u16::from(b.index), b.value.clone()))
        .collect();

    Ok(VerifiedGpu {
        arch: leaf.arch,
        driver_version,
        vbios_version,
        fwid: report_fwid.to_vec(),
        nonce,
        measurements,
        simulated: leaf.simulated,
        config,
        leaf_common_name: leaf.common_name,
        uuid: None,
    })
}

fn take_string(map: &mut BTreeMap<String, serde_json::Value>, key: &str) -> Result<String> {
    match map.remove(key) {
        Some(serde_json::Value::String(s)) => Ok(s),
        _ => Err(Error::GpuEvidenceMalformed {
            reason: format!("the report has no {key} opaque field"),
        }),
    }
}
