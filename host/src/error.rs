//! The crate's one error type.

use std::fmt;
use std::path::PathBuf;

/// Why a spec key was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SpecReason {
    /// A key the spec format does not know (a typo must not be silently ignored).
    UnknownKey,
    /// The file is not valid TOML or a value has the wrong type.
    Syntax,
    /// A VM name outside `[a-z0-9][a-z0-9-]{0,62}`.
    BadName,
    /// vCPUs or memory over what this host has.
    OverHostLimit,
    /// A file or folder the spec names does not exist (or is of the wrong kind).
    MissingPath,
    /// Two VMs with the same name or the same host port.
    Duplicate,
    /// A platform this build cannot run yet.
    UnsupportedPlatform,
    /// A required key is absent.
    Required,
    /// A value outside its allowed set or range.
    BadValue,
    /// A key that does not apply to the VM's platform.
    NotForPlatform,
}

impl SpecReason {
    /// A short name for the reason (used in the JSON of the API and in tests).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UnknownKey => "unknown key",
            Self::Syntax => "syntax",
            Self::BadName => "bad name",
            Self::OverHostLimit => "over host limit",
            Self::MissingPath => "missing path",
            Self::Duplicate => "duplicate",
            Self::UnsupportedPlatform => "unsupported platform",
            Self::Required => "required",
            Self::BadValue => "bad value",
            Self::NotForPlatform => "not for this platform",
        }
    }
}

/// Everything that can go wrong in `cocoon-host`.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A spec was refused before anything started.
    Spec {
        file: PathBuf,
        /// The VM's name where known.
        vm: Option<String>,
        /// The key at fault, e.g. `vcpus`, `model.dir`.
        key: String,
        reason: SpecReason,
        detail: String,
    },
    /// An I/O error on a path.
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A state file that cannot be read back.
    StateCorrupt { path: PathBuf, detail: String },
    /// Another agent holds this VM's (or the state folder's) lock.
    Locked { path: PathBuf },
    /// No VM of this name.
    UnknownVm(String),
    /// Computing a measurement failed (model digest, config tree).
    Measure { what: &'static str, detail: String },
    /// The image on disk no longer matches the published measurement.
    MeasurementChanged { what: &'static str },
    /// The VM could not be started.
    Spawn { name: String, detail: String },
    /// The QMP exchange with a QEMU failed.
    Qmp(String),
    /// A guest image folder whose manifest is missing, malformed or inconsistent.
    ImageInvalid { path: PathBuf, detail: String },
    /// A guest image file differs from its manifest (size, SHA-256, dm-verity root): not booted.
    ImageChanged { path: PathBuf, detail: String },
    /// The management API failed (transport or an error answer).
    Api(String),
    /// The enclave's /health could not be read.
    Health(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Spec {
                file,
                vm,
                key,
                reason,
                detail,
            } => {
                write!(f, "{}: ", file.display())?;
                if let Some(vm) = vm {
                    write!(f, "vm {vm}: ")?;
                }
                write!(f, "{key}: {}: {detail}", reason.as_str())
            }
            Self::Io { path, source } => write!(f, "{}: {source}", path.display()),
            Self::StateCorrupt { path, detail } => {
                write!(f, "state file {}: {detail}", path.display())
            }
            Self::Locked { path } => write!(
                f,
                "{} is locked: another cocoon-host agent manages it",
                path.display()
            ),
            Self::UnknownVm(name) => write!(f, "no VM named {name:?}"),
            Self::Measure { what, detail } => write!(f, "measuring {what}: {detail}"),
            Self::MeasurementChanged { what } => write!(
                f,
                "{what} changed on disk since its measurement was published; refusing to launch"
            ),
            Self::Spawn { name, detail } => write!(f, "starting {name}: {detail}"),
            Self::Qmp(detail) => write!(f, "QMP: {detail}"),
            Self::ImageInvalid { path, detail } => {
                write!(f, "guest image {}: {detail}", path.display())
            }
            Self::ImageChanged { path, detail } => write!(
                f,
                "guest image file {}: {detail}; refusing to boot it",
                path.display()
            ),
            Self::Api(detail) => write!(f, "management API: {detail}"),
            Self::Health(detail) => write!(f, "health: {detail}"),
        }
    }
}

impl std::error::Error for Error {}

/// Shorthand.
pub type Result<T> = std::result::Result<T, Error>;

pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.into();
    move |source| Error::Io { path, source }
}
