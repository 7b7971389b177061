//! AMD SEV-SNP attestation reports: parsing, VCEK/VLEK chains to the embedded AMD roots,
//! and verification.

pub mod report;
pub mod verify;

pub use report::{GuestPolicy, SigningKey, SnpReport, TcbVersion};
pub use verify::{AmdRootSet, AmdRoots, SnpVerifier, VerifiedSnpReport};

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
