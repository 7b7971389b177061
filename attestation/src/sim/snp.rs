//! Simulated AMD SEV-SNP: version 3 ATTESTATION_REPORTs of a Genoa chip (SEV-SNP firmware ABI
//! spec 56860, table 23), signed by a simulated VCEK whose chain VCEK → ASK → ARK has AMD's
//! shape (RSA-PSS SHA-384 with 48-byte salt, RSA 4096 ARK/ASK; a P-384 VCEK carrying AMD's
//! structVersion, productName, SPL and hwID extensions; spec 57230).
//!
//! The VCEK certifies one TCB ([`SIM_TCB`]) and one CHIP_ID ([`chip_id`]), as a real VCEK does:
//! a report with another `reported_tcb` is (correctly) rejected by a verifier.

use p384::ecdsa::signature::Signer;
use p384::ecdsa::{Signature, SigningKey};
use p384::pkcs8::DecodePrivateKey;
use sha2::{Digest, Sha256, Sha384, Sha512};

use super::{put, sim_error};
use crate::error::Result;
use crate::snp::report::{REPORT_LEN, SIGNED_LEN};
use crate::snp::{AmdRootSet, AmdRoots, Generation};
use crate::TrustRoot;

const ARK_DER: &[u8] = include_bytes!("keys/snp-ark.cert.der");
const ASK_DER: &[u8] = include_bytes!("keys/snp-ask.cert.der");
const VCEK_DER: &[u8] = include_bytes!("keys/snp-vcek.cert.der");
const ARK_PEM: &str = include_str!("keys/snp-ark.cert.pem");
const ASK_PEM: &str = include_str!("keys/snp-ask.cert.pem");
const VCEK_KEY_PEM: &str = include_str!("keys/snp-vcek.test-key.pem");

/// The processor generation the sim claims (CPUID fields, VCEK productName, root set).
pub const SIM_GENERATION: Generation = Generation::Genoa;
/// CPUID family / model / stepping of the simulated chip (family 19h model 11h: Genoa).
pub const SIM_CPUID: (u8, u8, u8) = (0x19, 0x11, 0x01);

/// Security patch levels of the simulated platform, as certified by the sim VCEK.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SimTcb {
    pub bootloader: u8,
    pub tee: u8,
    pub snp: u8,
    pub microcode: u8,
}

/// The TCB the sim VCEK certifies (its SPL extensions): bootloader 10, TEE 0, SNP 23,
/// microcode 84.
pub const SIM_TCB: SimTcb = SimTcb {
    bootloader: 10,
    tee: 0,
    snp: 23,
    microcode: 84,
};

impl SimTcb {
    /// The 64-bit TCB_VERSION (Milan/Genoa layout: byte 0 bootloader, 1 TEE, 6 SNP,
    /// 7 microcode; bytes 2..6 reserved).
    pub fn raw(self) -> u64 {
        u64::from_le_bytes([
            self.bootloader,
            self.tee,
            0,
            0,
            0,
            0,
            self.snp,
            self.microcode,
        ])
    }
}

/// Guest policy bit 16: SMT allowed.
pub const POLICY_SMT: u64 = 1 << 16;
/// Guest policy bit 17: reserved, must be one.
pub const POLICY_RESERVED_1: u64 = 1 << 17;
/// Guest policy bit 18: migration agent allowed.
pub const POLICY_MIGRATE_MA: u64 = 1 << 18;
/// Guest policy bit 19: debug allowed.
pub const POLICY_DEBUG: u64 = 1 << 19;

/// CHIP_ID of the simulated chip: SHA-512("COCOON SIMULATED SEV-SNP CHIP (NOT HARDWARE)"),
/// equal to the sim VCEK's hwID.
pub fn chip_id() -> [u8; 64] {
    Sha512::digest(b"COCOON SIMULATED SEV-SNP CHIP (NOT HARDWARE)").into()
}

/// The simulated VCEK certificate (DER).
pub fn vcek_der() -> &'static [u8] {
    VCEK_DER
}

/// The simulated ARK certificate (DER, self-signed).
pub fn ark_der() -> &'static [u8] {
    ARK_DER
}

/// The simulated ASK certificate (DER, issued by the ARK).
pub fn ask_der() -> &'static [u8] {
    ASK_DER
}

/// ASK then ARK as PEM, the order of AMD KDS `cert_chain` responses.
pub fn cert_chain_pem() -> String {
    [ASK_PEM, ARK_PEM].concat()
}

/// The simulated root set (kind [`TrustRoot::Simulated`], generation Genoa, no ASVK).
pub fn amd_roots() -> AmdRoots {
    AmdRoots::from_sets(vec![AmdRootSet {
        kind: TrustRoot::Simulated,
        generation: SIM_GENERATION,
        ark_der: ARK_DER.to_vec(),
        ask_der: ASK_DER.to_vec(),
        asvk_der: None,
    }])
}

/// The embedded AMD root sets plus the simulated one: a verifier that accepts both real and
/// simulated evidence, telling them apart by [`crate::snp::VerifiedSnpReport::root`].
pub fn amd_roots_with_embedded() -> AmdRoots {
    let mut sets = AmdRoots::embedded().sets().to_vec();
    sets.extend(amd_roots().sets().iter().cloned());
    AmdRoots::from_sets(sets)
}

/// The guest-controlled and platform fields of a simulated report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimSnpReport {
    pub guest_svn: u32,
    /// Guest policy; default `POLICY_RESERVED_1 | POLICY_SMT` with ABI 0.0 (no debug, no
    /// migration agent).
    pub policy: u64,
    pub family_id: [u8; 16],
    pub image_id: [u8; 16],
    pub vmpl: u32,
    pub platform_info: u64,
    pub author_key_en: bool,
    pub report_data: [u8; 64],
    /// Default SHA-384("COCOON SIMULATED SNP GUEST (NOT HARDWARE)").
    pub measurement: [u8; 48],
    pub host_data: [u8; 32],
    pub id_key_digest: [u8; 48],
    pub author_key_digest: [u8; 48],
    pub report_id: [u8; 32],
    /// All ones: no migration agent.
    pub report_id_ma: [u8; 32],
    /// Default [`SIM_TCB`]; anything else no longer matches the VCEK.
    pub reported_tcb: SimTcb,
    pub current_tcb: SimTcb,
    pub committed_tcb: SimTcb,
    pub launch_tcb: SimTcb,
    /// Current firmware version (build, minor, major).
    pub current_firmware: (u8, u8, u8),
    /// Committed firmware version; differs from the current one while provisional.
    pub committed_firmware: (u8, u8, u8),
    pub chip_id: [u8; 64],
    /// CPUID family / model / stepping; default [`SIM_CPUID`] (Genoa, like the sim chain).
    pub cpuid: (u8, u8, u8),
    /// SIGNING_KEY field (flags bits 2..4): 0 VCEK (default), 1 VLEK, 7 none.
    pub signing_key: u8,
}

impl Default for SimSnpReport {
    fn default() -> Self {
        Self {
            guest_svn: 0,
            policy: POLICY_RESERVED_1 | POLICY_SMT,
            family_id: [0; 16],
            image_id: [0; 16],
            vmpl: 0,
            platform_info: 0x25,
            author_key_en: false,
            report_data: [0; 64],
            measurement: Sha384::digest(b"COCOON SIMULATED SNP GUEST (NOT HARDWARE)").into(),
            host_data: [0; 32],
            id_key_digest: [0; 48],
            author_key_digest: [0; 48],
            report_id: Sha256::digest(b"COCOON SIMULATED SNP REPORT ID").into(),
            report_id_ma: [0xff; 32],
            reported_tcb: SIM_TCB,
            current_tcb: SIM_TCB,
            committed_tcb: SIM_TCB,
            launch_tcb: SIM_TCB,
            current_firmware: (40, 55, 1),
            committed_firmware: (40, 55, 1),
            chip_id: chip_id(),
            cpuid: SIM_CPUID,
            signing_key: 0,
        }
    }
}

impl SimSnpReport {
    /// Sets or clears the guest policy's DEBUG bit.
    pub fn debug(mut self, on: bool) -> Self {
        if on {
            self.policy |= POLICY_DEBUG;
        } else {
            self.policy &= !POLICY_DEBUG;
        }
        self
    }

    /// Sets REPORT_DATA.
    pub fn report_data(mut self, report_data: [u8; 64]) -> Self {
        self.report_data = report_data;
        self
    }

    /// The unsigned report: bytes 0..0x4A0 with a zero signature.
    pub fn to_unsigned_bytes(&self) -> Result<Vec<u8>> {
        let mut r = vec![0u8; REPORT_LEN];
        put(&mut r, 0x000, &3u32.to_le_bytes())?; // version
        put(&mut r, 0x004, &self.guest_svn.to_le_bytes())?;
        put(&mut r, 0x008, &self.policy.to_le_bytes())?;
        put(&mut r, 0x010, &self.family_id)?;
        put(&mut r, 0x020, &self.image_id)?;
        put(&mut r, 0x030, &self.vmpl.to_le_bytes())?;
        put(&mut r, 0x034, &1u32.to_le_bytes())?; // ECDSA P-384 with SHA-384
        put(&mut r, 0x038, &self.current_tcb.raw().to_le_bytes())?;
        put(&mut r, 0x040, &self.platform_info.to_le_bytes())?;
        // Flags: AUTHOR_KEY_EN (bit 0); MASK_CHIP_KEY (bit 1) 0; SIGNING_KEY (bits 2..4).
        let flags = u32::from(self.author_key_en) | (u32::from(self.signing_key & 0x7) << 2);
        put(&mut r, 0x048, &flags.to_le_bytes())?;
        put(&mut r, 0x050, &self.report_data)?;
        put(&mut r, 0x090, &self.measurement)?;
        put(&mut r, 0x0C0, &self.host_data)?;
        put(&mut r, 0x0E0, &self.id_key_digest)?;
        put(&mut r, 0x110, &self.author_key_digest)?;
        put(&mut r, 0x140, &self.report_id)?;
        put(&mut r, 0x160, &self.report_id_ma)?;
        put(&mut r, 0x180, &self.reported_tcb.raw().to_le_bytes())?;
        put(&mut r, 0x188, &[self.cpuid.0, self.cpuid.1, self.cpuid.2])?;
        put(&mut r, 0x1A0, &self.chip_id)?;
        put(&mut r, 0x1E0, &self.committed_tcb.raw().to_le_bytes())?;
        let (build, minor, major) = self.current_firmware;
        put(&mut r, 0x1E8, &[build, minor, major])?;
        let (build, minor, major) = self.committed_firmware;
        put(&mut r, 0x1EC, &[build, minor, major])?;
        put(&mut r, 0x1F0, &self.launch_tcb.raw().to_le_bytes())?;
        Ok(r)
    }
}

/// The simulated SEV-SNP firmware: signs reports with the sim VCEK key.
#[derive(Clone)]
pub struct SimSnp {
    vcek_key: SigningKey,
}

impl std::fmt::Debug for SimSnp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SimSnp { TEST keys, NOT HARDWARE }")
    }
}

impl SimSnp {
    /// The simulator with the committed TEST VCEK key.
    pub fn new() -> Result<Self> {
        Ok(Self {
            vcek_key: SigningKey::from_pkcs8_pem(VCEK_KEY_PEM)
                .map_err(|e| sim_error("VCEK key", e))?,
        })
    }

    /// Issues a signed 0x4A0-byte report: ECDSA P-384 / SHA-384 (RFC 6979) over bytes
    /// 0..0x2A0, r and s little-endian, zero-extended to 72 bytes each.
    pub fn issue_report(&self, params: &SimSnpReport) -> Result<Vec<u8>> {
        let mut report = params.to_unsigned_bytes()?;
        let signed = report
            .get(..SIGNED_LEN)
            .ok_or_else(|| sim_error("layout", "report shorter than its signed part"))?;
        let signature: Signature = self
            .vcek_key
            .try_sign(signed)
            .map_err(|e| sim_error("report signature", e))?;
        let (r, s) = signature.split_bytes();
        let mut r_le: Vec<u8> = r.iter().rev().copied().collect();
        let mut s_le: Vec<u8> = s.iter().rev().copied().collect();
        r_le.resize(72, 0);
        s_le.resize(72, 0);
        put(&mut report, SIGNED_LEN, &r_le)?;
        put(&mut report, SIGNED_LEN + 72, &s_le)?;
        Ok(report)
    }

    /// The sim VCEK (same as [`vcek_der`]).
    pub fn vcek_der(&self) -> &'static [u8] {
        VCEK_DER
    }

    /// The simulated root set (same as [`amd_roots`]).
    pub fn amd_roots(&self) -> AmdRoots {
        amd_roots()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use sev::certs::snp::{ca, Certificate, Chain, Verifiable};
    use sev::firmware::guest::AttestationReport;
    use sev::parser::ByteParser;

    fn sev_chain() -> Chain {
        Chain {
            ca: ca::Chain {
                ark: Certificate::from_der(ARK_DER).unwrap(),
                ask: Certificate::from_der(ASK_DER).unwrap(),
            },
            vek: Certificate::from_der(VCEK_DER).unwrap(),
        }
    }

    #[test]
    fn sev_crate_accepts_the_sim_report_and_vcek_chain() {
        let sim = SimSnp::new().unwrap();
        let bytes = sim
            .issue_report(&SimSnpReport::default().report_data([5; 64]))
            .unwrap();
        assert_eq!(bytes.len(), REPORT_LEN);
        let report = AttestationReport::from_bytes(&bytes).unwrap();
        assert_eq!(report.version, 3);
        assert_eq!(report.report_data, [5; 64]);
        assert_eq!(report.chip_id, chip_id());
        (&sev_chain(), &report).verify().unwrap();
    }

    #[test]
    fn sev_crate_rejects_a_flipped_sim_report() {
        let sim = SimSnp::new().unwrap();
        let mut bytes = sim.issue_report(&SimSnpReport::default()).unwrap();
        bytes[0x50] ^= 1;
        let report = AttestationReport::from_bytes(&bytes).unwrap();
        assert!((&sev_chain(), &report).verify().is_err());
    }

    #[test]
    fn sim_tcb_raw_puts_spls_in_the_genoa_bytes() {
        assert_eq!(SIM_TCB.raw().to_le_bytes(), [10, 0, 0, 0, 0, 0, 23, 84]);
    }
}
