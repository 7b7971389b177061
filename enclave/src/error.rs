//! The one error type of this crate: each variant says what failed and, where the host lacks
//! something, what to install or enable.

use std::fmt;
use std::io;
use std::path::PathBuf;

use cocoon_guest_ioctl::GuestIoctlError;

/// Every way that getting evidence can fail.
#[derive(Debug)]
#[non_exhaustive]
pub enum AttestError {
    /// Auto-detection found no usable TEE interface; one line per interface looked for, each
    /// naming what it needs.
    NoTeeInterface { missing: Vec<String> },
    /// The configfs-tsm report directory is absent.
    TsmUnavailable { root: PathBuf },
    /// A configfs-tsm attribute the backend needs is absent from a report directory (an older
    /// kernel, or a provider without that attribute).
    TsmAttributeMissing {
        attribute: &'static str,
        dir: PathBuf,
    },
    /// Reading `outblob` failed: the kernel could not get the evidence from the TEE (for TDX
    /// typically the host's quote generation service is unreachable).
    TsmReportFailed {
        provider: &'static str,
        source: io::Error,
    },
    /// The configfs-tsm `provider` is not one this crate knows.
    TsmUnknownProvider { provider: String },
    /// Another writer changed the report directory during every attempt (its `generation`
    /// was not what our own writes make it).
    TsmGenerationRace { attempts: u32 },
    /// A kernel output (`outblob`, `auxblob`) is larger than accepted.
    OutputTooLarge { what: &'static str, limit: usize },
    /// A kernel output that must hold evidence is empty.
    EmptyOutput { what: &'static str },
    /// A file operation failed.
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    /// A guest device (`/dev/sev-guest`, `/dev/tdx_guest`) is absent or cannot be opened.
    DeviceUnavailable {
        path: PathBuf,
        hint: &'static str,
        source: io::Error,
    },
    /// A guest ioctl failed.
    Ioctl {
        device: PathBuf,
        source: GuestIoctlError,
    },
    /// `/dev/tdx_guest` gives only TDREPORTs (verifiable on the same machine); a quote needs
    /// the quoting enclave, reached through configfs-tsm.
    TdxQuoteUnavailable,
    /// The SNP certificate table (`auxblob` or the extended report's buffer) is malformed.
    CertTableMalformed { reason: String },
    /// An unknown backend name in the configuration.
    UnknownBackend { name: String },
    /// The simulated backend was requested from a build without the `sim` feature.
    SimulatedBackendNotBuilt,
    /// A GPU report was asked of an attester that has no such GPU, or the GPU could not give one.
    GpuUnavailable { reason: String },
    /// The simulated TEE failed (only possible with corrupted TEST keys).
    Simulated(cocoon_attestation::Error),
    /// Generating the TLS key or signing the certificate failed.
    KeyGeneration { reason: String },
    /// Issuing or re-reading the RA-TLS certificate failed.
    Certificate(cocoon_attestation::Error),
    /// A setting of the identity, rotation or server configuration is out of range.
    InvalidConfig { reason: String },
    /// The evidence's platform is not the attester's (a backend bug or a misconfiguration).
    PlatformMismatch {
        attester: &'static str,
        evidence: &'static str,
    },
    /// Building a TLS configuration failed.
    Tls(rustls::Error),
    /// A socket operation failed (bind, accept).
    Network {
        op: &'static str,
        addr: String,
        source: io::Error,
    },
    /// The system clock is before 1970 or past the year 292 billion.
    Clock,
}

/// How to get configfs-tsm.
pub(crate) const TSM_HINT: &str = "kernel ≥ 6.7 with CONFIG_TSM_REPORTS, the tdx_guest or \
    sev_guest driver loaded, and configfs mounted at /sys/kernel/config \
    (mount -t configfs none /sys/kernel/config)";
pub(crate) const SEV_GUEST_HINT: &str =
    "SEV-SNP guest with the sev-guest driver (modprobe sev-guest; CONFIG_SEV_GUEST)";
pub(crate) const TDX_GUEST_HINT: &str =
    "TDX guest with the tdx_guest driver (modprobe tdx_guest; CONFIG_TDX_GUEST_DRIVER)";

impl fmt::Display for AttestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoTeeInterface { missing } => {
                write!(f, "no TEE interface found: {}", missing.join("; "))
            }
            Self::TsmUnavailable { root } => write!(
                f,
                "configfs-tsm is unavailable: {} is absent ({TSM_HINT})",
                root.display()
            ),
            Self::TsmAttributeMissing { attribute, dir } => write!(
                f,
                "configfs-tsm attribute {attribute} is absent in {} (kernel too old or provider without it)",
                dir.display()
            ),
            Self::TsmReportFailed { provider, source } => {
                let hint = if *provider == "tdx_guest" {
                    "is the host's quote generation service (QGS) running and reachable over vsock?"
                } else {
                    "the SEV firmware refused the request (is privlevel at or above privlevel_floor?)"
                };
                write!(f, "configfs-tsm ({provider}) could not produce evidence: {source}; {hint}")
            }
            Self::TsmUnknownProvider { provider } => {
                write!(f, "unknown configfs-tsm provider {provider:?} (expected tdx_guest or sev_guest)")
            }
            Self::TsmGenerationRace { attempts } => write!(
                f,
                "another writer changed the configfs-tsm report during each of {attempts} attempts"
            ),
            Self::OutputTooLarge { what, limit } => {
                write!(f, "{what} exceeds the limit of {limit} bytes")
            }
            Self::EmptyOutput { what } => write!(f, "{what} is empty"),
            Self::Io { op, path, source } => {
                write!(f, "{op} {} failed: {source}", path.display())
            }
            Self::DeviceUnavailable { path, hint, source } => {
                write!(f, "{} cannot be opened ({source}): {hint}", path.display())
            }
            Self::Ioctl { device, source } => write!(f, "{}: {source}", device.display()),
            Self::TdxQuoteUnavailable => f.write_str(
                "/dev/tdx_guest gives only TDREPORTs, which cannot be verified remotely; TDX \
                 quotes come through configfs-tsm (kernel ≥ 6.7 with CONFIG_TSM_REPORTS and a \
                 quote generation service on the host)",
            ),
            Self::CertTableMalformed { reason } => {
                write!(f, "malformed SEV-SNP certificate table: {reason}")
            }
            Self::UnknownBackend { name } => write!(
                f,
                "unknown attester backend {name:?} (expected auto, tsm, sev-guest, tdx-guest, sim, sim-tdx or sim-snp)"
            ),
            Self::GpuUnavailable { reason } => write!(f, "GPU attestation: {reason}"),
            Self::SimulatedBackendNotBuilt => f.write_str(
                "the simulated TEE backend is not in this build (cargo feature `sim`)",
            ),
            Self::Simulated(e) => write!(f, "simulated TEE: {e}"),
            Self::KeyGeneration { reason } => write!(f, "TLS key or certificate: {reason}"),
            Self::Certificate(e) => write!(f, "RA-TLS certificate: [{}] {}", e.kind(), e.message()),
            Self::InvalidConfig { reason } => write!(f, "invalid configuration: {reason}"),
            Self::PlatformMismatch { attester, evidence } => write!(
                f,
                "the attester is {attester} but its evidence says {evidence}"
            ),
            Self::Tls(e) => write!(f, "TLS configuration: {e}"),
            Self::Network { op, addr, source } => write!(f, "{op} {addr}: {source}"),
            Self::Clock => f.write_str("the system clock is outside the representable range"),
        }
    }
}

impl std::error::Error for AttestError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { source, .. }
            | Self::DeviceUnavailable { source, .. }
            | Self::TsmReportFailed { source, .. } => Some(source),
            Self::Ioctl { source, .. } => Some(source),
            Self::Simulated(e) | Self::Certificate(e) => Some(e),
            Self::Tls(e) => Some(e),
            Self::Network { source, .. } => Some(source),
            _ => None,
        }
    }
}
