//! AMD SEV-SNP attestation reports: parsing, VCEK/VLEK chains to the embedded AMD roots,
//! and verification.
//!
//! - [`SnpReport::parse`] reads the 0x4A0-byte ATTESTATION_REPORT (versions 2 to 5) and
//!   rejects anything malformed: wrong length, unknown version or signature algorithm,
//!   non-zero reserved fields or signature padding. The result is **unverified**.
//! - [`SnpVerifier::verify`] checks, in this order: the VCEK/VLEK → ASK/ASVK → ARK chain
//!   (RSA-PSS SHA-384, validity at `now`, names, CA flags) ending in an ARK of the verifier's
//!   roots; the generation (CPUID fields of v3+ reports, the certificate's product name and
//!   the root set must agree); the report's SIGNING_KEY against the certificate type
//!   (MASK_CHIP_KEY reports are unsigned and rejected); reported_tcb against the
//!   certificate's SPLs; CHIP_ID against the VCEK's hwID (skipped when CHIP_ID is all zeros,
//!   i.e. MASK_CHIP_ID); committed ≤ current and launch ≤ current TCB; and last the ECDSA
//!   P-384 signature over the **raw** report bytes `0x000..0x2A0`.
//!
//! Checks that compare unsigned report fields with the certificate come before the
//! signature so that a tampered field is named precisely; they only ever reject.
//!
//! ```no_run
//! # fn main() -> cocoon_attestation::Result<()> {
//! use cocoon_attestation::snp::SnpVerifier;
//! let report = std::fs::read("report.bin").unwrap_or_default();
//! let vcek = std::fs::read("vcek.der").unwrap_or_default();
//! // Build once: parses the embedded roots and checks their signatures once.
//! let verifier = SnpVerifier::new();
//! // One full verification (parse + chain + checks + signature); this is the call the
//! // SNP benchmark measures against the `sev` crate's `(&Chain, &AttestationReport).verify()`.
//! let verified = verifier.verify_bytes(&report, &vcek, None, 1_700_000_000)?;
//! println!("{} {:?}", verified.generation.as_str(), verified.reported_tcb);
//! # Ok(())
//! # }
//! ```

mod certs;
pub mod report;
mod roots;
pub mod verify;

pub use report::{GuestPolicy, SigningKey, SnpReport, TcbVersion};
pub use verify::{AmdRootSet, AmdRoots, SnpVerifier, VerifiedChain, VerifiedSnpReport};

/// AMD EPYC processor generations with SEV-SNP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Generation {
    Milan,
    Genoa,
    Turin,
}

impl Generation {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Milan => "Milan",
            Self::Genoa => "Genoa",
            Self::Turin => "Turin",
        }
    }

    /// The generation of a chip from the CPUID fields of a v3+ report (family = extended
    /// family + base family, model = extended model ‖ base model). The table follows AMD's
    /// processor programming references as used by virtee/sev (`Generation::identify_cpu`)
    /// and go-sev-guest: family 0x19 models 0x00-0x0F Milan, 0x10-0x1F and 0xA0-0xAF Genoa;
    /// family 0x1A models 0x00-0x11 Turin. `None` for anything else.
    pub fn from_cpuid(family: u8, model: u8) -> Option<Self> {
        match (family, model) {
            (0x19, 0x00..=0x0F) => Some(Self::Milan),
            (0x19, 0x10..=0x1F) | (0x19, 0xA0..=0xAF) => Some(Self::Genoa),
            (0x1A, 0x00..=0x11) => Some(Self::Turin),
            _ => None,
        }
    }

    /// The generation named by a VCEK/VLEK productName extension (`Milan-B0`, `Genoa`,
    /// `Turin`: the name up to an optional `-stepping`). `None` for unknown names.
    pub fn from_product_name(name: &str) -> Option<Self> {
        let base = name.split('-').next().unwrap_or(name);
        match base {
            "Milan" => Some(Self::Milan),
            "Genoa" => Some(Self::Genoa),
            "Turin" => Some(Self::Turin),
            _ => None,
        }
    }

    /// The generation named by an AMD CA common name (`ARK-Milan`, `SEV-Genoa`,
    /// `SEV-VLEK-Turin`): the last dash-separated word.
    pub fn from_ca_common_name(cn: &str) -> Option<Self> {
        match cn.rsplit('-').next() {
            Some("Milan") => Some(Self::Milan),
            Some("Genoa") => Some(Self::Genoa),
            Some("Turin") => Some(Self::Turin),
            _ => None,
        }
    }
}

/// A TCB version decoded into its security patch levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcbParts {
    /// Turin only.
    pub fmc: Option<u8>,
    pub bootloader: u8,
    pub tee: u8,
    pub snp: u8,
    pub microcode: u8,
}

impl TcbParts {
    /// The components as (name, value) pairs, FMC first where present: used for
    /// component-wise comparisons and reports.
    pub fn components(&self) -> impl Iterator<Item = (&'static str, u8)> {
        let fmc = self.fmc.map(|v| ("fmc", v));
        fmc.into_iter().chain([
            ("bootloader", self.bootloader),
            ("tee", self.tee),
            ("snp", self.snp),
            ("microcode", self.microcode),
        ])
    }

    /// The first component (in [`components`](Self::components) order) where `self` is
    /// greater than `other`, as (name, self, other); `None` when `self` ≤ `other` everywhere.
    /// A missing FMC counts as 0.
    pub fn first_component_above(&self, other: &TcbParts) -> Option<(&'static str, u8, u8)> {
        [
            ("fmc", self.fmc.unwrap_or(0), other.fmc.unwrap_or(0)),
            ("bootloader", self.bootloader, other.bootloader),
            ("tee", self.tee, other.tee),
            ("snp", self.snp, other.snp),
            ("microcode", self.microcode, other.microcode),
        ]
        .into_iter()
        .find(|(_, a, b)| a > b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpuid_table_matches_known_chips() {
        // DERIVED_e2e_snp_report.bin: family 0x19, model 0xA0 (Genoa).
        assert_eq!(Generation::from_cpuid(0x19, 0xA0), Some(Generation::Genoa));
        assert_eq!(Generation::from_cpuid(0x19, 0x01), Some(Generation::Milan));
        assert_eq!(Generation::from_cpuid(0x19, 0x11), Some(Generation::Genoa));
        assert_eq!(Generation::from_cpuid(0x1A, 0x02), Some(Generation::Turin));
        assert_eq!(Generation::from_cpuid(0x1A, 0x50), None);
        assert_eq!(Generation::from_cpuid(0x17, 0x01), None);
    }

    #[test]
    fn product_and_ca_names_map_to_generations() {
        assert_eq!(
            Generation::from_product_name("Milan-B0"),
            Some(Generation::Milan)
        );
        assert_eq!(
            Generation::from_product_name("Genoa"),
            Some(Generation::Genoa)
        );
        assert_eq!(Generation::from_product_name("Venice"), None);
        assert_eq!(
            Generation::from_ca_common_name("SEV-VLEK-Turin"),
            Some(Generation::Turin)
        );
        assert_eq!(
            Generation::from_ca_common_name("ARK-Milan"),
            Some(Generation::Milan)
        );
        assert_eq!(Generation::from_ca_common_name("SEV-VCEK"), None);
    }

    #[test]
    fn ordering_names_the_first_component_above() {
        let low = TcbParts {
            fmc: None,
            bootloader: 3,
            tee: 0,
            snp: 8,
            microcode: 0x73,
        };
        let high = TcbParts {
            microcode: 0xCE,
            ..low
        };
        assert_eq!(low.first_component_above(&high), None);
        assert_eq!(
            high.first_component_above(&low),
            Some(("microcode", 0xCE, 0x73))
        );
    }
}
