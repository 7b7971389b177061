//! A simulated NVIDIA H100 (feature `sim`): GPU evidence in exactly the H100 format (SPDM 1.1
//! GET_MEASUREMENTS request ‖ response, NVIDIA opaque TLVs in the H100's order, P-384 signature)
//! signed by a TEST device key whose chain ends in "COCOON SIMULATED GPU ROOT (NOT HARDWARE)".
//!
//! The certificates and keys are committed files (`keys/gpu-*`, made by `scripts/gen-sim-gpu-ca`);
//! reports are signed with RFC 6979 deterministic ECDSA, so the same nonce gives the same bytes.
//! Only `GpuTrustAnchors::with_simulated_root()` trusts the root; the result is marked
//! `simulated` and the policy rejects it unless `allow_simulated = true`.

use p384::ecdsa::signature::Signer;
use p384::ecdsa::{Signature, SigningKey};
use p384::pkcs8::DecodePrivateKey;
use sha2::{Digest, Sha384};

use super::sim_error;
use crate::error::Result;
use crate::gpu::parse::{
    encode_vbios, CODE_GET_MEASUREMENTS, CODE_MEASUREMENTS, SPDM_VERSION_11, SPEC_DMTF,
};

const ROOT_DER: &[u8] = include_bytes!("keys/gpu-root.cert.der");
const ICA_DER: &[u8] = include_bytes!("keys/gpu-ica.cert.der");
const LEAF_DER: &[u8] = include_bytes!("keys/gpu-leaf.cert.der");
const LEAF_KEY_PEM: &str = include_str!("keys/gpu-leaf.test-key.pem");

/// The simulated FWID is SHA-384 of this text (also in the leaf certificate's extension).
pub const SIM_GPU_FWID_TEXT: &str = "COCOON SIMULATED GPU FWID (NOT HARDWARE)";

/// The simulated GPU root certificate (DER).
pub fn root_der() -> &'static [u8] {
    ROOT_DER
}

/// A simulated H100. Change the public fields to issue other claims.
#[derive(Clone)]
pub struct SimGpu {
    key: SigningKey,
    /// Default "550.90.07".
    pub driver_version: String,
    /// Default "96.00.9f.00.01" (five dotted hex bytes).
    pub vbios_version: String,
    /// (index, 48-byte value) measurement blocks; default indices 1..=4 with
    /// SHA-384("COCOON SIMULATED GPU MEASUREMENT i").
    pub measurements: Vec<(u8, Vec<u8>)>,
}

impl std::fmt::Debug for SimGpu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimGpu")
            .field("driver_version", &self.driver_version)
            .field("vbios_version", &self.vbios_version)
            .finish_non_exhaustive()
    }
}

/// The default value of simulated measurement block `index`.
pub fn sim_measurement(index: u8) -> Vec<u8> {
    Sha384::digest(format!("COCOON SIMULATED GPU MEASUREMENT {index}")).to_vec()
}

/// The simulated FWID.
pub fn sim_fwid() -> Vec<u8> {
    Sha384::digest(SIM_GPU_FWID_TEXT).to_vec()
}

fn tlv(out: &mut Vec<u8>, kind: u16, data: &[u8]) -> Result<()> {
    let len = u16::try_from(data.len()).map_err(|e| sim_error("opaque field", e))?;
    out.extend_from_slice(&kind.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(data);
    Ok(())
}

impl SimGpu {
    pub fn new() -> Result<Self> {
        let key =
            SigningKey::from_pkcs8_pem(LEAF_KEY_PEM).map_err(|e| sim_error("GPU leaf key", e))?;
        Ok(Self {
            key,
            driver_version: "550.90.07".into(),
            vbios_version: "96.00.9f.00.01".into(),
            measurements: (1..=4).map(|i| (i, sim_measurement(i))).collect(),
        })
    }

    /// The device chain, leaf first: leaf, intermediate, root.
    pub fn chain_der(&self) -> Vec<Vec<u8>> {
        vec![LEAF_DER.to_vec(), ICA_DER.to_vec(), ROOT_DER.to_vec()]
    }

    /// Evidence (request ‖ response ‖ signature) for `nonce`, in the H100 format.
    /// Returns an empty vector only if the public fields cannot be encoded (an over-long driver
    /// version, a VBIOS version that is not five hex bytes, more than 255 blocks): use
    /// [`SimGpu::try_report`] to see why.
    pub fn report(&self, nonce: [u8; 32]) -> Vec<u8> {
        self.try_report(nonce).unwrap_or_default()
    }

    /// [`SimGpu::report`] with the encoding error.
    pub fn try_report(&self, nonce: [u8; 32]) -> Result<Vec<u8>> {
        let mut out = vec![SPDM_VERSION_11, CODE_GET_MEASUREMENTS, 0x01, 0xff];
        out.extend_from_slice(&nonce);
        out.push(0); // slot id

        let mut record = Vec::new();
        for (index, value) in &self.measurements {
            let value_len = u16::try_from(value.len()).map_err(|e| sim_error("measurement", e))?;
            let size = value_len
                .checked_add(3)
                .ok_or_else(|| sim_error("measurement", "too long"))?;
            record.push(*index);
            record.push(SPEC_DMTF);
            record.extend_from_slice(&size.to_le_bytes());
            record.push(0x01); // DMTF type: immutable ROM digest, as the H100's blocks
            record.extend_from_slice(&value_len.to_le_bytes());
            record.extend_from_slice(value);
        }
        let blocks =
            u8::try_from(self.measurements.len()).map_err(|e| sim_error("measurements", e))?;
        let record_len = u32::try_from(record.len())
            .ok()
            .filter(|l| *l < 1 << 24)
            .ok_or_else(|| sim_error("measurement record", "too long"))?;
        out.extend_from_slice(&[SPDM_VERSION_11, CODE_MEASUREMENTS, 0, 0, blocks]);
        out.extend_from_slice(record_len.to_le_bytes().get(..3).unwrap_or_default());
        out.extend_from_slice(&record);
        // Responder nonce: deterministic, derived from the requester's.
        out.extend_from_slice(
            Sha384::digest([b"sim gpu responder".as_slice(), &nonce].concat())
                .get(..32)
                .unwrap_or_default(),
        );

        let vbios = encode_vbios(&self.vbios_version)
            .ok_or_else(|| sim_error("VBIOS version", &self.vbios_version))?;
        let mut driver = self.driver_version.as_bytes().to_vec();
        driver.push(0);
        let mut counts = Vec::new();
        for (_, _) in &self.measurements {
            counts.extend_from_slice(&1u32.to_le_bytes());
        }
        let mut opaque = Vec::new();
        // The H100's TLV order (hopperAttestationReport.txt).
        tlv(&mut opaque, 6, &vbios)?;
        tlv(&mut opaque, 14, &[0xb1, 0x03, 0, 0])?;
        tlv(&mut opaque, 15, b"882\0\0\0\0\0\0")?;
        tlv(&mut opaque, 16, b"0\0\0\0\0")?;
        tlv(&mut opaque, 17, b"1010\0")?;
        tlv(&mut opaque, 18, b"0200\0")?;
        tlv(&mut opaque, 19, &[0, 0])?;
        tlv(&mut opaque, 3, &driver)?;
        tlv(&mut opaque, 4, &[0x80, 0x01, 0, 0, 0, 0, 0, 0])?;
        tlv(&mut opaque, 12, &counts)?;
        tlv(&mut opaque, 13, &[0x00, 0xc0, 0x01, 0x00])?;
        tlv(&mut opaque, 11, &[0x55])?;
        tlv(&mut opaque, 20, &sim_fwid())?;
        tlv(&mut opaque, 21, &[0x55])?;
        let opaque_len = u16::try_from(opaque.len()).map_err(|e| sim_error("opaque data", e))?;
        out.extend_from_slice(&opaque_len.to_le_bytes());
        out.extend_from_slice(&opaque);

        let signature: Signature = self.key.sign(&out);
        out.extend_from_slice(&signature.to_bytes());
        Ok(out)
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
    use crate::error::Error;
    use crate::gpu::{verify, GpuArch, GpuTrustAnchors};
    use crate::sim::SIM_NOW;

    #[test]
    fn sim_report_round_trips_with_the_simulated_root() {
        let sim = SimGpu::new().unwrap();
        let nonce = [7u8; 32];
        let report = sim.report(nonce);
        let anchors = GpuTrustAnchors::with_simulated_root().unwrap();
        let v = verify(&report, &sim.chain_der(), &anchors, Some(&nonce), SIM_NOW).unwrap();
        assert!(v.simulated);
        assert_eq!(v.arch, GpuArch::Hopper);
        assert_eq!(v.driver_version, "550.90.07");
        assert_eq!(v.vbios_version, "96.00.9f.00.01");
        assert_eq!(v.fwid, sim_fwid());
        assert_eq!(v.measurements.len(), 4);
        assert_eq!(v.measurements[&2], sim_measurement(2));
        assert_eq!(v.claims_json()["config"]["project"], "1010");
    }

    #[test]
    fn sim_reports_are_deterministic() {
        let sim = SimGpu::new().unwrap();
        assert_eq!(sim.report([1; 32]), sim.report([1; 32]));
        assert_ne!(sim.report([1; 32]), sim.report([2; 32]));
    }

    #[test]
    fn default_anchors_refuse_sim_evidence() {
        let sim = SimGpu::new().unwrap();
        let report = sim.report([0; 32]);
        let err = verify(
            &report,
            &sim.chain_der(),
            &GpuTrustAnchors::nvidia().unwrap(),
            None,
            SIM_NOW,
        )
        .unwrap_err();
        assert!(matches!(err, Error::GpuRootUntrusted { .. }), "{err:?}");
    }

    #[test]
    fn sim_report_with_other_claims_verifies_them() {
        let mut sim = SimGpu::new().unwrap();
        sim.driver_version = "535.104.05".into();
        sim.vbios_version = "96.00.74.00.1c".into();
        sim.measurements = vec![(9, vec![0xab; 48])];
        let report = sim.report([3; 32]);
        let anchors = GpuTrustAnchors::with_simulated_root().unwrap();
        let v = verify(&report, &sim.chain_der(), &anchors, None, SIM_NOW).unwrap();
        assert_eq!(v.driver_version, "535.104.05");
        assert_eq!(v.vbios_version, "96.00.74.00.1c");
        assert_eq!(v.measurements.keys().copied().collect::<Vec<_>>(), vec![9]);
    }

    #[test]
    fn sim_report_signed_by_another_key_is_rejected() {
        let sim = SimGpu::new().unwrap();
        let mut report = sim.report([0; 32]);
        let n = report.len();
        report[n - 40] ^= 1;
        let anchors = GpuTrustAnchors::with_simulated_root().unwrap();
        let err = verify(&report, &sim.chain_der(), &anchors, None, SIM_NOW).unwrap_err();
        assert!(matches!(err, Error::GpuSignatureInvalid), "{err:?}");
    }
}
