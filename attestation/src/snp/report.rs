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

/// Report offsets (spec 56860 rev. 1.58, table 23).
mod off {
    pub const VERSION: usize = 0x000;
    pub const GUEST_SVN: usize = 0x004;
    pub const POLICY: usize = 0x008;
    pub const FAMILY_ID: usize = 0x010;
    pub const IMAGE_ID: usize = 0x020;
    pub const VMPL: usize = 0x030;
    pub const SIGNATURE_ALGO: usize = 0x034;
    pub const CURRENT_TCB: usize = 0x038;
    pub const PLATFORM_INFO: usize = 0x040;
    pub const FLAGS: usize = 0x048;
    pub const RESERVED_04C: usize = 0x04C;
    pub const REPORT_DATA: usize = 0x050;
    pub const MEASUREMENT: usize = 0x090;
    pub const HOST_DATA: usize = 0x0C0;
    pub const ID_KEY_DIGEST: usize = 0x0E0;
    pub const AUTHOR_KEY_DIGEST: usize = 0x110;
    pub const REPORT_ID: usize = 0x140;
    pub const REPORT_ID_MA: usize = 0x160;
    pub const REPORTED_TCB: usize = 0x180;
    pub const CPUID_FAM_ID: usize = 0x188;
    pub const CPUID_MOD_ID: usize = 0x189;
    pub const CPUID_STEP: usize = 0x18A;
    pub const RESERVED_18B: usize = 0x18B;
    pub const CHIP_ID: usize = 0x1A0;
    pub const COMMITTED_TCB: usize = 0x1E0;
    pub const CURRENT_BUILD: usize = 0x1E8;
    pub const CURRENT_MINOR: usize = 0x1E9;
    pub const CURRENT_MAJOR: usize = 0x1EA;
    pub const RESERVED_1EB: usize = 0x1EB;
    pub const COMMITTED_BUILD: usize = 0x1EC;
    pub const COMMITTED_MINOR: usize = 0x1ED;
    pub const COMMITTED_MAJOR: usize = 0x1EE;
    pub const RESERVED_1EF: usize = 0x1EF;
    pub const LAUNCH_TCB: usize = 0x1F0;
    pub const LAUNCH_MIT_VECTOR: usize = 0x1F8;
    pub const CURRENT_MIT_VECTOR: usize = 0x200;
    pub const RESERVED_208: usize = 0x208;
    pub const SIGNATURE: usize = 0x2A0;
    /// r and s are 72-byte little-endian fields; a P-384 scalar fills the low 48 bytes.
    pub const SIG_COMPONENT_LEN: usize = 72;
    pub const SCALAR_LEN: usize = 48;
    pub const SIGNATURE_R: usize = SIGNATURE;
    pub const SIGNATURE_S: usize = SIGNATURE + SIG_COMPONENT_LEN;
    pub const SIGNATURE_RESERVED: usize = SIGNATURE + 2 * SIG_COMPONENT_LEN;
}

/// SIGNATURE_ALGO value for ECDSA P-384 with SHA-384, the only one defined.
pub const SIG_ALGO_ECDSA_P384_SHA384: u32 = 1;

/// The report versions this parser knows: 2, 3 and 4 (same layout, CPUID fields since 3),
/// 5 (mitigation vectors).
pub const SUPPORTED_VERSIONS: std::ops::RangeInclusive<u32> = 2..=5;

impl TcbVersion {
    /// The eight bytes, little-endian as in the report.
    pub fn to_bytes(self) -> [u8; 8] {
        self.raw.to_le_bytes()
    }

    /// Decode per generation (byte indices of the little-endian u64):
    /// Milan/Genoa: 0 bootloader, 1 TEE, 6 SNP, 7 microcode (2..=5 reserved);
    /// Turin: 0 FMC, 1 bootloader, 2 TEE, 3 SNP, 7 microcode (4..=6 reserved).
    pub fn parts(self, generation: super::Generation) -> super::TcbParts {
        let [b0, b1, b2, b3, _, _, b6, b7] = self.to_bytes();
        match generation {
            super::Generation::Milan | super::Generation::Genoa => super::TcbParts {
                fmc: None,
                bootloader: b0,
                tee: b1,
                snp: b6,
                microcode: b7,
            },
            super::Generation::Turin => super::TcbParts {
                fmc: Some(b0),
                bootloader: b1,
                tee: b2,
                snp: b3,
                microcode: b7,
            },
        }
    }
}

/// Fixed-size view of exactly one report, so every field read is in bounds by construction;
/// the reads still go through `get` (no panicking index) and report an internal error.
struct Fields<'a>(&'a [u8]);

impl Fields<'_> {
    fn bytes<const N: usize>(&self, offset: usize) -> Result<[u8; N]> {
        offset
            .checked_add(N)
            .and_then(|end| self.0.get(offset..end))
            .and_then(|s| <[u8; N]>::try_from(s).ok())
            .ok_or_else(|| Error::Truncated {
                subject: Subject::SnpReport,
                needed: offset.saturating_add(N),
                available: self.0.len(),
            })
    }
    fn u8(&self, offset: usize) -> Result<u8> {
        Ok(self.bytes::<1>(offset)?[0])
    }
    fn u32(&self, offset: usize) -> Result<u32> {
        Ok(u32::from_le_bytes(self.bytes(offset)?))
    }
    fn u64(&self, offset: usize) -> Result<u64> {
        Ok(u64::from_le_bytes(self.bytes(offset)?))
    }
    fn tcb(&self, offset: usize) -> Result<TcbVersion> {
        Ok(TcbVersion {
            raw: self.u64(offset)?,
        })
    }
    fn range(&self, start: usize, end: usize) -> Result<&[u8]> {
        self.0.get(start..end).ok_or(Error::Truncated {
            subject: Subject::SnpReport,
            needed: end,
            available: self.0.len(),
        })
    }
    fn require_zero(&self, start: usize, end: usize, field: &'static str) -> Result<()> {
        if self.range(start, end)?.iter().any(|&b| b != 0) {
            return Err(Error::ReservedFieldNonZero {
                subject: Subject::SnpReport,
                field,
            });
        }
        Ok(())
    }
}

/// Flags word at 0x48: bit 0 AUTHOR_KEY_EN, bit 1 MASK_CHIP_KEY, bits 2..=4 SIGNING_KEY,
/// bits 5..=31 reserved.
const FLAG_AUTHOR_KEY_EN: u32 = 1;
const FLAG_MASK_CHIP_KEY: u32 = 1 << 1;
const SIGNING_KEY_SHIFT: u32 = 2;
const SIGNING_KEY_MASK: u32 = 0b111;
const FLAGS_RESERVED_MASK: u32 = !0b1_1111;

impl SnpReport {
    /// Parse exactly [`REPORT_LEN`] bytes.
    ///
    /// Rejects: a short input ([`Error::Truncated`]), bytes after the report
    /// ([`Error::TrailingBytes`]), versions other than 2..=5
    /// ([`Error::UnsupportedReportVersion`]), a signature algorithm other than ECDSA P-384
    /// with SHA-384 ([`Error::UnsupportedSignatureAlgorithm`]), non-zero reserved fields or
    /// reserved SIGNING_KEY values ([`Error::ReservedFieldNonZero`]), and r or s with a
    /// non-zero byte above the 48-byte scalar ([`Error::SignatureMalformed`]).
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        match bytes.len().cmp(&REPORT_LEN) {
            std::cmp::Ordering::Less => {
                return Err(Error::Truncated {
                    subject: Subject::SnpReport,
                    needed: REPORT_LEN,
                    available: bytes.len(),
                })
            }
            std::cmp::Ordering::Greater => {
                return Err(Error::TrailingBytes {
                    subject: Subject::SnpReport,
                    count: bytes.len().saturating_sub(REPORT_LEN),
                })
            }
            std::cmp::Ordering::Equal => {}
        }
        let f = Fields(bytes);

        let version = f.u32(off::VERSION)?;
        if !SUPPORTED_VERSIONS.contains(&version) {
            return Err(Error::UnsupportedReportVersion(version));
        }
        let signature_algo = f.u32(off::SIGNATURE_ALGO)?;
        if signature_algo != SIG_ALGO_ECDSA_P384_SHA384 {
            return Err(Error::UnsupportedSignatureAlgorithm(signature_algo));
        }
        let has_cpuid = version >= 3;
        let has_mit_vectors = version >= 5;

        let flags = f.u32(off::FLAGS)?;
        if flags & FLAGS_RESERVED_MASK != 0 {
            return Err(Error::ReservedFieldNonZero {
                subject: Subject::SnpReport,
                field: "flags bits 5..31 (0x48)",
            });
        }
        let signing_key = match (flags >> SIGNING_KEY_SHIFT) & SIGNING_KEY_MASK {
            0 => SigningKey::Vcek,
            1 => SigningKey::Vlek,
            7 => SigningKey::None,
            _ => {
                return Err(Error::ReservedFieldNonZero {
                    subject: Subject::SnpReport,
                    field: "SIGNING_KEY (reserved value 2..6)",
                })
            }
        };
        f.require_zero(off::RESERVED_04C, off::REPORT_DATA, "reserved 0x4C..0x50")?;
        if has_cpuid {
            f.require_zero(off::RESERVED_18B, off::CHIP_ID, "reserved 0x18B..0x1A0")?;
        } else {
            f.require_zero(
                off::CPUID_FAM_ID,
                off::CHIP_ID,
                "reserved 0x188..0x1A0 (v2)",
            )?;
        }
        f.require_zero(off::RESERVED_1EB, off::COMMITTED_BUILD, "reserved 0x1EB")?;
        f.require_zero(off::RESERVED_1EF, off::LAUNCH_TCB, "reserved 0x1EF")?;
        if has_mit_vectors {
            f.require_zero(off::RESERVED_208, off::SIGNATURE, "reserved 0x208..0x2A0")?;
        } else {
            f.require_zero(
                off::LAUNCH_MIT_VECTOR,
                off::SIGNATURE,
                "reserved 0x1F8..0x2A0 (v2-v4)",
            )?;
        }
        let high = |start: usize| -> Result<bool> {
            let from = start.saturating_add(off::SCALAR_LEN);
            let to = start.saturating_add(off::SIG_COMPONENT_LEN);
            Ok(f.range(from, to)?.iter().any(|&b| b != 0))
        };
        if high(off::SIGNATURE_R)? || high(off::SIGNATURE_S)? {
            return Err(Error::SignatureMalformed {
                subject: Subject::SnpReport,
            });
        }
        f.require_zero(
            off::SIGNATURE_RESERVED,
            REPORT_LEN,
            "signature reserved 0x330..0x4A0",
        )?;

        Ok(Self {
            version,
            guest_svn: f.u32(off::GUEST_SVN)?,
            policy: GuestPolicy(f.u64(off::POLICY)?),
            family_id: f.bytes(off::FAMILY_ID)?,
            image_id: f.bytes(off::IMAGE_ID)?,
            vmpl: f.u32(off::VMPL)?,
            signature_algo,
            current_tcb: f.tcb(off::CURRENT_TCB)?,
            platform_info: f.u64(off::PLATFORM_INFO)?,
            author_key_en: flags & FLAG_AUTHOR_KEY_EN != 0,
            mask_chip_key: flags & FLAG_MASK_CHIP_KEY != 0,
            signing_key,
            report_data: f.bytes(off::REPORT_DATA)?,
            measurement: f.bytes(off::MEASUREMENT)?,
            host_data: f.bytes(off::HOST_DATA)?,
            id_key_digest: f.bytes(off::ID_KEY_DIGEST)?,
            author_key_digest: f.bytes(off::AUTHOR_KEY_DIGEST)?,
            report_id: f.bytes(off::REPORT_ID)?,
            report_id_ma: f.bytes(off::REPORT_ID_MA)?,
            reported_tcb: f.tcb(off::REPORTED_TCB)?,
            cpuid_fam_id: if has_cpuid {
                Some(f.u8(off::CPUID_FAM_ID)?)
            } else {
                None
            },
            cpuid_mod_id: if has_cpuid {
                Some(f.u8(off::CPUID_MOD_ID)?)
            } else {
                None
            },
            cpuid_step: if has_cpuid {
                Some(f.u8(off::CPUID_STEP)?)
            } else {
                None
            },
            chip_id: f.bytes(off::CHIP_ID)?,
            committed_tcb: f.tcb(off::COMMITTED_TCB)?,
            current_build: f.u8(off::CURRENT_BUILD)?,
            current_minor: f.u8(off::CURRENT_MINOR)?,
            current_major: f.u8(off::CURRENT_MAJOR)?,
            committed_build: f.u8(off::COMMITTED_BUILD)?,
            committed_minor: f.u8(off::COMMITTED_MINOR)?,
            committed_major: f.u8(off::COMMITTED_MAJOR)?,
            launch_tcb: f.tcb(off::LAUNCH_TCB)?,
            launch_mit_vector: if has_mit_vectors {
                Some(f.u64(off::LAUNCH_MIT_VECTOR)?)
            } else {
                None
            },
            current_mit_vector: if has_mit_vectors {
                Some(f.u64(off::CURRENT_MIT_VECTOR)?)
            } else {
                None
            },
            signature_r: f.bytes(off::SIGNATURE_R)?,
            signature_s: f.bytes(off::SIGNATURE_S)?,
            signed_bytes: f.range(0, SIGNED_LEN)?.to_vec(),
        })
    }

    /// Parse a report given as hex text (as `report_milan.hex` or `snpguest` print it):
    /// ASCII whitespace is ignored, upper or lower case; then as [`parse`](Self::parse).
    pub fn parse_hex(text: &[u8]) -> Result<Self> {
        // Twice the report plus generous room for line breaks; refuse anything larger
        // before allocating.
        const LIMIT: usize = REPORT_LEN * 4;
        if text.len() > LIMIT {
            return Err(Error::InputTooLarge {
                subject: Subject::SnpReport,
                size: text.len(),
                limit: LIMIT,
            });
        }
        let compact: Vec<u8> = text
            .iter()
            .copied()
            .filter(|b| !b.is_ascii_whitespace())
            .collect();
        let bytes = hex::decode(&compact).map_err(|e| Error::Malformed {
            subject: Subject::SnpReport,
            reason: format!("invalid hex: {e}"),
        })?;
        Self::parse(&bytes)
    }

    /// The processor generation named by the CPUID fields (v3+); `None` for v2 reports
    /// and unknown family/model pairs.
    pub fn cpuid_generation(&self) -> Option<super::Generation> {
        super::Generation::from_cpuid(self.cpuid_fam_id?, self.cpuid_mod_id?)
    }

    /// r and s as big-endian 48-byte P-384 scalars (the report stores them little-endian in
    /// 72-byte fields whose upper 24 bytes the parser has checked to be zero).
    pub fn signature_scalars_be(&self) -> ([u8; 48], [u8; 48]) {
        fn be(le: &[u8; 72]) -> [u8; 48] {
            let mut out = [0u8; 48];
            for (o, b) in out.iter_mut().zip(le.iter().take(48).rev()) {
                *o = *b;
            }
            out
        }
        (be(&self.signature_r), be(&self.signature_s))
    }
}
