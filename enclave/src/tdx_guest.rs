//! `/dev/tdx_guest`: TDREPORTs through `TDX_CMD_GET_REPORT0`.
//!
//! A TDREPORT is MAC-ed with a key only the same machine's quoting enclave can check, so it
//! proves nothing to a remote verifier. Quotes come from the quoting enclave through the host's
//! quote generation service; Linux ≥ 6.7 exposes that as configfs-tsm ([`crate::tsm`]), which
//! is the backend to use. [`TdxGuestAttester::attest`] therefore fails with
//! [`AttestError::TdxQuoteUnavailable`]; [`TdxGuestAttester::td_report`] gives the TDREPORT
//! for local use (reading the guest's own measurements).

use std::fs::OpenOptions;
use std::path::PathBuf;

use crate::error::{AttestError, TDX_GUEST_HINT};
use crate::{Attester, ClaimsPlatform, Evidence};

pub use cocoon_guest_ioctl::TDX_REPORT_LEN;

/// Where the tdx_guest driver creates its device.
pub const DEFAULT_TDX_GUEST: &str = "/dev/tdx_guest";

/// TDREPORTs through `/dev/tdx_guest`.
#[derive(Debug, Clone)]
pub struct TdxGuestAttester {
    device: PathBuf,
}

impl TdxGuestAttester {
    pub fn new(device: impl Into<PathBuf>) -> Self {
        Self {
            device: device.into(),
        }
    }

    /// The TDREPORT (1024 bytes) carrying `report_data`.
    pub fn td_report(&self, report_data: &[u8; 64]) -> Result<[u8; TDX_REPORT_LEN], AttestError> {
        let dev = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&self.device)
            .map_err(|source| AttestError::DeviceUnavailable {
                path: self.device.clone(),
                hint: TDX_GUEST_HINT,
                source,
            })?;
        cocoon_guest_ioctl::tdx_get_report0(&dev, report_data).map_err(|source| {
            AttestError::Ioctl {
                device: self.device.clone(),
                source,
            }
        })
    }
}

impl Attester for TdxGuestAttester {
    fn platform(&self) -> ClaimsPlatform {
        ClaimsPlatform::Tdx
    }

    fn attest(&self, _report_data: &[u8; 64]) -> Result<Evidence, AttestError> {
        Err(AttestError::TdxQuoteUnavailable)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    //! The ioctl needs a TDX guest (none here).
    use super::*;

    #[test]
    fn attest_explains_that_quotes_need_configfs_tsm() {
        let err = TdxGuestAttester::new(DEFAULT_TDX_GUEST)
            .attest(&[0; 64])
            .unwrap_err();
        assert!(matches!(err, AttestError::TdxQuoteUnavailable), "{err:?}");
        assert!(err.to_string().contains("configfs-tsm"), "{err}");
    }

    #[test]
    fn a_missing_device_names_the_driver_to_load() {
        let dir = tempfile::tempdir().unwrap();
        let err = TdxGuestAttester::new(dir.path().join("tdx_guest"))
            .td_report(&[0; 64])
            .unwrap_err();
        assert!(
            matches!(err, AttestError::DeviceUnavailable { .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("tdx_guest"), "{err}");
    }

    #[test]
    fn a_file_that_is_not_the_device_fails_in_the_ioctl() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tdx_guest");
        std::fs::write(&path, b"").unwrap();
        let err = TdxGuestAttester::new(&path)
            .td_report(&[0; 64])
            .unwrap_err();
        assert!(matches!(err, AttestError::Ioctl { .. }), "{err:?}");
    }
}
