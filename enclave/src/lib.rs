//! The enclave side of attestation: getting evidence from the TEE the enclave runs in.
//!
//! An [`Attester`] turns 64 bytes of REPORT_DATA (normally
//! [`cocoon_attestation::claims::Claims::report_data`]) into [`Evidence`]: a TDX quote or an
//! SEV-SNP report, plus for SNP the certificates the host supplies. Backends:
//!
//! - [`tsm`]: Linux configfs-tsm (`/sys/kernel/config/tsm/report`, kernel ≥ 6.7), TDX and SNP;
//! - [`sev_guest`]: the legacy `/dev/sev-guest` extended report (report + host certificates);
//! - [`tdx_guest`]: `/dev/tdx_guest` TDREPORTs (local only; quotes come through configfs-tsm);
//! - `sim` (feature `sim`, never in production): the simulated TEE of `cocoon-attestation`.
//!
//! [`select`] picks one by configuration or detects what the host offers, naming what is
//! missing when nothing is. Every path is an argument, so tests run against temporary
//! directories shaped like the kernel's interfaces.
//!
//! Trust: the host controls everything these interfaces return except the signed evidence
//! itself; nothing here is trusted by a verifier until the evidence is verified.
//!
//! On top of an attester, the attested channel (`docs/channel.md`): [`identity`] (a fresh key,
//! the claims naming it, evidence binding them, the RA-TLS certificate), [`rotation`]
//! (re-issue at two thirds of the lifetime, atomic swap, retry with backoff), [`server`] (RA-TLS
//! over TCP with handshake deadlines and caps, HTTP/1.1, the [`api`] routes
//! `GET /v1/attestation?nonce=HEX` and `GET /v1/identity`, mutual mode) and [`cli`] (the
//! `cocoon-enclave` binary).

pub mod api;
pub mod certtable;
pub mod cli;
pub mod config;
pub mod error;
pub mod gpu;
pub mod identity;
pub mod inference;
pub mod openai;

pub mod rotation;
pub mod select;
pub mod server;
pub mod sev_guest;
pub mod tdx_guest;
pub mod tsm;

#[cfg(feature = "sim")]
pub mod sim;

pub use cocoon_attestation::claims::ClaimsPlatform;
use cocoon_attestation::claims::GpuCommitment;
use cocoon_attestation::ratls::CarriedGpuEvidence;
pub use error::AttestError;

use certtable::{SnpCertKind, SnpCertificate};

/// What the evidence bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EvidenceKind {
    /// An Intel DCAP quote (TDX v4/v5), verifiable remotely with collateral.
    TdxQuote,
    /// An SEV-SNP attestation report (0x4A0 bytes).
    SnpReport,
}

/// Evidence from the TEE for one REPORT_DATA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    pub platform: ClaimsPlatform,
    pub kind: EvidenceKind,
    /// The raw quote or report.
    pub bytes: Vec<u8>,
    /// SNP: the certificates the host supplied (VCEK or VLEK, often ASK and ARK), in table
    /// order; empty when the host supplied none (the verifier then fetches the VCEK from AMD
    /// KDS) and for TDX (the quote carries its PCK chain).
    pub certificates: Vec<SnpCertificate>,
}

impl Evidence {
    /// The first certificate of `kind`, DER.
    pub fn certificate(&self, kind: SnpCertKind) -> Option<&[u8]> {
        self.certificates
            .iter()
            .find(|c| c.kind == kind)
            .map(|c| c.der.as_slice())
    }

    /// The VCEK, DER, when the host supplied it.
    pub fn vcek(&self) -> Option<&[u8]> {
        self.certificate(SnpCertKind::Vcek)
    }

    /// The VLEK, DER, when the host supplied it.
    pub fn vlek(&self) -> Option<&[u8]> {
        self.certificate(SnpCertKind::Vlek)
    }
}

/// A source of evidence.
pub trait Attester: Send + Sync + std::fmt::Debug {
    /// The platform this attester's evidence is from.
    fn platform(&self) -> ClaimsPlatform;

    /// Evidence carrying `report_data` as its REPORT_DATA.
    fn attest(&self, report_data: &[u8; 64]) -> Result<Evidence, AttestError>;

    /// The GPUs whose reports accompany this attester's evidence (put into the claims, which then
    /// commit to them); `None`: no GPU.
    fn gpu_commitment(&self) -> Option<GpuCommitment> {
        None
    }

    /// GPU `index`'s attestation report signing `nonce` (the claims' `gpu_nonce(index)`).
    fn attest_gpu(&self, index: u8, nonce: &[u8; 32]) -> Result<CarriedGpuEvidence, AttestError> {
        let _ = nonce;
        Err(AttestError::GpuUnavailable {
            reason: format!("this attester has no GPU {index}"),
        })
    }
}
