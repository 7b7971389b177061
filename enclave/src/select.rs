//! Choosing an attester: by configuration, or by what the host offers.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use crate::error::{AttestError, SEV_GUEST_HINT, TDX_GUEST_HINT, TSM_HINT};
use crate::sev_guest::{SevGuestAttester, DEFAULT_SEV_GUEST};
use crate::tdx_guest::{TdxGuestAttester, DEFAULT_TDX_GUEST};
use crate::tsm::{KernelHooks, TsmAttester, TsmOptions, DEFAULT_TSM_ROOT};
use crate::Attester;

/// The backend named in the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Backend {
    /// configfs-tsm if present, else `/dev/sev-guest`.
    Auto,
    Tsm,
    SevGuest,
    /// TDREPORTs only; see [`crate::tdx_guest`].
    TdxGuest,
    /// The simulated TEE (feature `sim`).
    SimTdx,
    SimSnp,
}

impl FromStr for Backend {
    type Err = AttestError;

    /// `auto`, `tsm`, `sev-guest`, `tdx-guest`, `sim` (= `sim-tdx`), `sim-tdx`, `sim-snp`.
    /// The simulated names parse in every build, so one configuration file serves all builds;
    /// selecting them needs the `sim` feature.
    fn from_str(name: &str) -> Result<Self, AttestError> {
        Ok(match name {
            "auto" => Self::Auto,
            "tsm" => Self::Tsm,
            "sev-guest" => Self::SevGuest,
            "tdx-guest" => Self::TdxGuest,
            "sim" | "sim-tdx" => Self::SimTdx,
            "sim-snp" => Self::SimSnp,
            _ => {
                return Err(AttestError::UnknownBackend {
                    name: name.to_owned(),
                })
            }
        })
    }
}

/// Where the host's TEE interfaces are (tests point these at temporary directories).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPaths {
    pub tsm_root: PathBuf,
    pub sev_guest: PathBuf,
    pub tdx_guest: PathBuf,
}

impl Default for HostPaths {
    fn default() -> Self {
        Self {
            tsm_root: DEFAULT_TSM_ROOT.into(),
            sev_guest: DEFAULT_SEV_GUEST.into(),
            tdx_guest: DEFAULT_TDX_GUEST.into(),
        }
    }
}

/// Which interfaces are present.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Detected {
    pub tsm: bool,
    pub sev_guest: bool,
    pub tdx_guest: bool,
}

/// Looks for each interface (presence only; nothing is opened).
pub fn detect(paths: &HostPaths) -> Detected {
    Detected {
        tsm: paths.tsm_root.is_dir(),
        sev_guest: paths.sev_guest.exists(),
        tdx_guest: paths.tdx_guest.exists(),
    }
}

/// Options passed to the backend chosen.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SelectOptions {
    pub tsm: TsmOptions,
    /// VMPL for `/dev/sev-guest` reports.
    pub sev_vmpl: u32,
}

/// The attester for `backend` on a host whose interfaces are at `paths`.
pub fn select(
    backend: Backend,
    paths: &HostPaths,
    options: &SelectOptions,
) -> Result<Box<dyn Attester>, AttestError> {
    select_with_kernel(backend, paths, options, None)
}

pub(crate) fn select_with_kernel(
    backend: Backend,
    paths: &HostPaths,
    options: &SelectOptions,
    kernel: Option<Arc<dyn KernelHooks>>,
) -> Result<Box<dyn Attester>, AttestError> {
    let tsm = |kernel| -> Result<Box<dyn Attester>, AttestError> {
        Ok(Box::new(TsmAttester::with_kernel(
            paths.tsm_root.clone(),
            options.tsm.clone(),
            kernel,
        )?))
    };
    let device = |path: &PathBuf, hint: &'static str| -> Result<(), AttestError> {
        std::fs::metadata(path)
            .map(|_| ())
            .map_err(|source| AttestError::DeviceUnavailable {
                path: path.clone(),
                hint,
                source,
            })
    };
    match backend {
        Backend::Tsm => tsm(kernel),
        Backend::SevGuest => {
            device(&paths.sev_guest, SEV_GUEST_HINT)?;
            Ok(Box::new(SevGuestAttester::new(
                paths.sev_guest.clone(),
                options.sev_vmpl,
            )))
        }
        Backend::TdxGuest => {
            device(&paths.tdx_guest, TDX_GUEST_HINT)?;
            Ok(Box::new(TdxGuestAttester::new(paths.tdx_guest.clone())))
        }
        Backend::SimTdx | Backend::SimSnp => sim(backend),
        Backend::Auto => {
            let found = detect(paths);
            if found.tsm {
                return tsm(kernel);
            }
            if found.sev_guest {
                return Ok(Box::new(SevGuestAttester::new(
                    paths.sev_guest.clone(),
                    options.sev_vmpl,
                )));
            }
            let tdx = if found.tdx_guest {
                format!(
                    "{} is present but gives only TDREPORTs: TDX quotes need configfs-tsm",
                    paths.tdx_guest.display()
                )
            } else {
                format!("{} is absent ({TDX_GUEST_HINT})", paths.tdx_guest.display())
            };
            Err(AttestError::NoTeeInterface {
                missing: vec![
                    format!("{} is absent ({TSM_HINT})", paths.tsm_root.display()),
                    format!("{} is absent ({SEV_GUEST_HINT})", paths.sev_guest.display()),
                    tdx,
                ],
            })
        }
    }
}

#[cfg(feature = "sim")]
fn sim(backend: Backend) -> Result<Box<dyn Attester>, AttestError> {
    use crate::sim::SimAttester;
    Ok(Box::new(match backend {
        Backend::SimSnp => SimAttester::snp()?,
        _ => SimAttester::tdx()?,
    }))
}

#[cfg(not(feature = "sim"))]
fn sim(_backend: Backend) -> Result<Box<dyn Attester>, AttestError> {
    Err(AttestError::SimulatedBackendNotBuilt)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]
mod tests;
