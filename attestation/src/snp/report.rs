//! AMD SEV-SNP ATTESTATION_REPORT (SEV-SNP firmware ABI spec 56860, rev. 1.58, table 23):
//! versions 2, 3/4 (CPUID family/model/stepping) and 5 (mitigation vectors).
//! Parsing yields an unverified [`SnpReport`]; [`crate::snp::verify`] yields verified claims.

use crate::error::{Error, Result, Subject};

/// Report size in bytes; the signature covers bytes `0..SIGNED_LEN`.
pub const REPORT_LEN: usize = 0x4A0;
pub const SIGNED_LEN: usize = 0x2A0;

/// A TCB_VERSION (64-bit) decoded per generation: Milan/Genoa put the bootloader SPL in byte 0;
/// Turin adds the FMC SPL in byte 0 and moves the others (see [`super::Generation`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TcbVersion {
    pub raw: u64,
}

/// The guest policy (offset 0x08).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GuestPolicy(pub u64);

impl GuestPolicy {
    pub fn abi_minor(self) -> u8 {
        (self.0 & 0xff) as u8
    }
    pub fn abi_major(self) -> u8 {
        ((self.0 >> 8) & 0xff) as u8
    }
    pub fn smt_allowed(self) -> bool {
        self.0 & (1 << 16) != 0
    }
    pub fn migrate_ma_allowed(self) -> bool {
        self.0 & (1 << 18) != 0
    }
    pub fn debug_allowed(self) -> bool {
        self.0 & (1 << 19) != 0
    }
    pub fn single_socket_required(self) -> bool {
        self.0 & (1 << 20) != 0
    }
}

/// Which key signed the report (flags bits 2..4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SigningKey {
    Vcek,
    Vlek,
    None,
}

/// A parsed, **unverified** SEV-SNP attestation report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnpReport {
    pub version: u32,
    pub guest_svn: u32,
    pub policy: GuestPolicy,
    pub family_id: [u8; 16],
    pub image_id: [u8; 16],
    pub vmpl: u32,
    pub signature_algo: u32,
    pub current_tcb: TcbVersion,
    pub platform_info: u64,
    pub author_key_en: bool,
    pub mask_chip_key: bool,
    pub signing_key: SigningKey,
    pub report_data: [u8; 64],
    pub measurement: [u8; 48],
    pub host_data: [u8; 32],
    pub id_key_digest: [u8; 48],
    pub author_key_digest: [u8; 48],
    pub report_id: [u8; 32],
    pub report_id_ma: [u8; 32],
    pub reported_tcb: TcbVersion,
    /// v3+: CPUID family/model/stepping of the chip; `None` for v2.
    pub cpuid_fam_id: Option<u8>,
    pub cpuid_mod_id: Option<u8>,
    pub cpuid_step: Option<u8>,
    pub chip_id: [u8; 64],
    pub committed_tcb: TcbVersion,
    pub current_build: u8,
    pub current_minor: u8,
    pub current_major: u8,
    pub committed_build: u8,
    pub committed_minor: u8,
    pub committed_major: u8,
    pub launch_tcb: TcbVersion,
    /// v5+.
    pub launch_mit_vector: Option<u64>,
    pub current_mit_vector: Option<u64>,
    /// r and s, little-endian, 72 bytes each (zero-extended P-384 scalars).
    pub signature_r: [u8; 72],
    pub signature_s: [u8; 72],
    /// The raw signed bytes 0..0x2A0.
    pub signed_bytes: Vec<u8>,
}

impl SnpReport {
    /// Parse exactly [`REPORT_LEN`] bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let _ = bytes;
        Err(Error::Malformed {
            subject: Subject::SnpReport,
            reason: "parser not yet implemented".into(),
        })
    }
}
