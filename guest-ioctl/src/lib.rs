//! Guest-side ioctls of the Linux SEV-SNP and TDX guest drivers: the one place in the workspace
//! with `unsafe` code (confined to the `ioctl` module, each block with a SAFETY note).
//!
//! - `/dev/sev-guest`: `SNP_GET_EXT_REPORT` returns an attestation report and the certificate
//!   table the host installed (VCEK/VLEK, ASK, ARK), per `include/uapi/linux/sev-guest.h`.
//! - `/dev/tdx_guest`: `TDX_CMD_GET_REPORT0` returns a TDREPORT (MAC-ed, verifiable only on
//!   the same machine), per `include/uapi/linux/tdx-guest.h`. A remotely verifiable quote
//!   needs the quoting enclave: on kernels ≥ 6.7 it comes through configfs-tsm, not through
//!   this crate.
//!
//! These calls only work inside a TEE guest; the unit tests check the struct layouts and the
//! request numbers against the kernel headers, not the calls themselves.

mod ioctl;

pub use ioctl::{
    sev_get_ext_report, tdx_get_report0, SevExtReport, SEV_FW_BLOB_MAX_SIZE, SNP_REPORT_LEN,
    TDX_REPORT_LEN,
};

use std::fmt;
use std::io;

/// How a guest ioctl failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum GuestIoctlError {
    /// The ioctl itself failed (errno), with no firmware detail.
    Os(io::Error),
    /// The SEV firmware or the hypervisor refused the request (`exitinfo2`: bits 31..0 the
    /// firmware error, bits 63..32 the VMM error), with the errno the driver returned.
    SevFirmware {
        fw_error: u32,
        vmm_error: u32,
        os: io::Error,
    },
    /// The host's certificate table does not fit the largest buffer the driver accepts.
    SevCertificatesTooLarge { needed: usize, limit: usize },
    /// The driver answered with a response that does not hold a report.
    BadResponse { reason: String },
    /// Not a Linux build: there are no guest drivers to call.
    Unsupported,
}

impl fmt::Display for GuestIoctlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Os(e) => write!(f, "ioctl failed: {e}"),
            Self::SevFirmware {
                fw_error,
                vmm_error,
                os,
            } => write!(
                f,
                "SEV guest request failed: firmware error {fw_error:#x}, VMM error {vmm_error:#x} ({os})"
            ),
            Self::SevCertificatesTooLarge { needed, limit } => write!(
                f,
                "the host's certificate table needs {needed} bytes, more than the driver's limit {limit}"
            ),
            Self::BadResponse { reason } => write!(f, "unexpected driver response: {reason}"),
            Self::Unsupported => f.write_str("guest ioctls exist only on Linux"),
        }
    }
}

impl std::error::Error for GuestIoctlError {}
