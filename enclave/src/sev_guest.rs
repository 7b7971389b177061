//! The legacy `/dev/sev-guest` interface: `SNP_GET_EXT_REPORT` returns the report and the
//! certificate table the host installed (kernels before configfs-tsm, or hosts whose VCEK is
//! only served this way).

use std::fs::OpenOptions;
use std::path::PathBuf;

use crate::certtable;
use crate::error::{AttestError, SEV_GUEST_HINT};
use crate::{Attester, ClaimsPlatform, Evidence, EvidenceKind};

/// Where the sev-guest driver creates its device.
pub const DEFAULT_SEV_GUEST: &str = "/dev/sev-guest";

/// Evidence through `/dev/sev-guest`.
#[derive(Debug, Clone)]
pub struct SevGuestAttester {
    device: PathBuf,
    vmpl: u32,
}

impl SevGuestAttester {
    /// `device` is normally [`DEFAULT_SEV_GUEST`]; `vmpl` the privilege level to report (0
    /// unless the guest runs under an SVSM).
    pub fn new(device: impl Into<PathBuf>, vmpl: u32) -> Self {
        Self {
            device: device.into(),
            vmpl,
        }
    }
}

impl Attester for SevGuestAttester {
    fn platform(&self) -> ClaimsPlatform {
        ClaimsPlatform::SevSnp
    }

    fn attest(&self, report_data: &[u8; 64]) -> Result<Evidence, AttestError> {
        let dev = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&self.device)
            .map_err(|source| AttestError::DeviceUnavailable {
                path: self.device.clone(),
                hint: SEV_GUEST_HINT,
                source,
            })?;
        let ext = cocoon_guest_ioctl::sev_get_ext_report(&dev, report_data, self.vmpl).map_err(
            |source| AttestError::Ioctl {
                device: self.device.clone(),
                source,
            },
        )?;
        if ext.report.is_empty() {
            return Err(AttestError::EmptyOutput {
                what: "SEV-SNP report",
            });
        }
        Ok(Evidence {
            platform: ClaimsPlatform::SevSnp,
            kind: EvidenceKind::SnpReport,
            bytes: ext.report,
            certificates: certtable::parse(&ext.certs)?,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    //! The ioctl needs an SEV-SNP guest (none here): these tests cover what fails before and
    //! around it.
    use super::*;

    #[test]
    fn a_missing_device_names_the_driver_to_load() {
        let dir = tempfile::tempdir().unwrap();
        let a = SevGuestAttester::new(dir.path().join("sev-guest"), 0);
        let err = a.attest(&[0; 64]).unwrap_err();
        assert!(
            matches!(&err, AttestError::DeviceUnavailable { source, .. } if source.kind() == std::io::ErrorKind::NotFound),
            "{err:?}"
        );
        assert!(err.to_string().contains("sev-guest"), "{err}");
    }

    #[test]
    fn a_file_that_is_not_the_device_fails_in_the_ioctl() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sev-guest");
        std::fs::write(&path, b"").unwrap();
        let err = SevGuestAttester::new(&path, 0)
            .attest(&[0; 64])
            .unwrap_err();
        assert!(matches!(err, AttestError::Ioctl { .. }), "{err:?}");
    }
}
