//! configfs-tsm (`/sys/kernel/config/tsm/report`, Linux ≥ 6.7): TDX quotes and SEV-SNP reports
//! through the filesystem (Documentation/ABI/testing/configfs-tsm).
//!
//! Per request: `mkdir` a report directory of our own, read `provider` and `generation`,
//! write `privlevel` (SNP, optional) and `inblob` (the 64-byte REPORT_DATA), read `outblob`
//! (and `auxblob`, the SNP certificate table), read `generation` again, `rmdir`. The kernel
//! increments `generation` on every attribute write, so after our writes it must be exactly
//! the first value plus our number of writes; anything else means another process wrote into
//! the directory in between and `outblob` may hold its REPORT_DATA — we retry, a bounded
//! number of times. Written against the filesystem directly (the `configfs-tsm` crate is
//! AGPL-licensed).

use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::certtable;
use crate::error::AttestError;
use crate::{Attester, ClaimsPlatform, Evidence, EvidenceKind};

/// Where Linux mounts the report interface.
pub const DEFAULT_TSM_ROOT: &str = "/sys/kernel/config/tsm/report";

/// Tuning of the configfs-tsm backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TsmOptions {
    /// SNP VMPL to request (`privlevel`); `None` leaves the kernel's default (0). Ignored for
    /// TDX, which has no privilege levels.
    pub privlevel: Option<u8>,
    /// Largest `outblob` accepted (a TDX quote with its PCK chain is about 5–8 KiB).
    pub max_outblob: usize,
    /// Largest `auxblob` accepted.
    pub max_auxblob: usize,
    /// Attempts before giving up on concurrent writers.
    pub max_attempts: u32,
}

impl Default for TsmOptions {
    fn default() -> Self {
        Self {
            privlevel: None,
            max_outblob: 64 * 1024,
            max_auxblob: certtable::MAX_CERT_TABLE_LEN,
            max_attempts: 3,
        }
    }
}

/// Test seam: what the kernel does behind the attribute files. Production code has none;
/// the tests install a fake kernel that fills the files a real configfs would.
pub(crate) trait KernelHooks: Send + Sync {
    fn after_mkdir(&self, _dir: &Path) {}
    fn after_write(&self, _dir: &Path, _attribute: &str, _data: &[u8]) {}
    fn before_read(&self, _dir: &Path, _attribute: &str) {}
    fn before_rmdir(&self, _dir: &Path) {}
}

/// Evidence through configfs-tsm.
pub struct TsmAttester {
    root: PathBuf,
    platform: ClaimsPlatform,
    options: TsmOptions,
    kernel: Option<Arc<dyn KernelHooks>>,
}

impl std::fmt::Debug for TsmAttester {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TsmAttester")
            .field("root", &self.root)
            .field("platform", &self.platform)
            .field("options", &self.options)
            .finish()
    }
}

static NEXT_DIR: AtomicU64 = AtomicU64::new(0);

impl TsmAttester {
    /// Opens the report interface at `root` (normally [`DEFAULT_TSM_ROOT`]) and learns the
    /// platform from its provider (one probe directory, removed again).
    pub fn new(root: impl Into<PathBuf>, options: TsmOptions) -> Result<Self, AttestError> {
        Self::with_kernel(root.into(), options, None)
    }

    pub(crate) fn with_kernel(
        root: PathBuf,
        options: TsmOptions,
        kernel: Option<Arc<dyn KernelHooks>>,
    ) -> Result<Self, AttestError> {
        if !root.is_dir() {
            return Err(AttestError::TsmUnavailable { root });
        }
        let mut this = Self {
            root,
            // Replaced by the probe below.
            platform: ClaimsPlatform::Tdx,
            options,
            kernel,
        };
        let platform = this.create_dir()?.provider()?.0;
        this.platform = platform;
        Ok(this)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn create_dir(&self) -> Result<ReportDir<'_>, AttestError> {
        let pid = std::process::id();
        // Names are unique within the process by the counter; another process using the same
        // name makes mkdir fail with AlreadyExists, and we take the next one.
        for _ in 0..16 {
            let n = NEXT_DIR.fetch_add(1, Ordering::Relaxed);
            let path = self.root.join(format!("cocoon-{pid}-{n}"));
            match fs::create_dir(&path) {
                Ok(()) => {
                    if let Some(k) = &self.kernel {
                        k.after_mkdir(&path);
                    }
                    return Ok(ReportDir { path, owner: self });
                }
                Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
                Err(e) if e.kind() == ErrorKind::NotFound => {
                    return Err(AttestError::TsmUnavailable {
                        root: self.root.clone(),
                    })
                }
                Err(source) => {
                    return Err(AttestError::Io {
                        op: "mkdir",
                        path,
                        source,
                    })
                }
            }
        }
        Err(AttestError::Io {
            op: "mkdir",
            path: self.root.clone(),
            source: ErrorKind::AlreadyExists.into(),
        })
    }
}

impl Attester for TsmAttester {
    fn platform(&self) -> ClaimsPlatform {
        self.platform
    }

    fn attest(&self, report_data: &[u8; 64]) -> Result<Evidence, AttestError> {
        let dir = self.create_dir()?;
        let (platform, kind) = dir.provider()?;
        let privlevel = match platform {
            ClaimsPlatform::SevSnp => self.options.privlevel,
            _ => None,
        };
        for _ in 0..self.options.max_attempts {
            let before = dir.generation()?;
            let mut writes = 0u64;
            if let Some(level) = privlevel {
                dir.write("privlevel", level.to_string().as_bytes())?;
                writes = writes.saturating_add(1);
            }
            dir.write("inblob", report_data)?;
            writes = writes.saturating_add(1);

            // Reading outblob is when the kernel asks the TEE (and, for TDX, the host's QGS).
            let outblob = match dir.read("outblob", self.options.max_outblob) {
                Err(AttestError::Io {
                    op: "read", source, ..
                }) => {
                    return Err(AttestError::TsmReportFailed {
                        provider: provider_name(platform),
                        source,
                    })
                }
                other => other?,
            };
            let auxblob = match platform {
                ClaimsPlatform::SevSnp => dir.read_optional("auxblob", self.options.max_auxblob)?,
                _ => None,
            };
            let after = dir.generation()?;
            if Some(after) != before.checked_add(writes) {
                continue;
            }
            if outblob.is_empty() {
                return Err(AttestError::EmptyOutput { what: "outblob" });
            }
            let certificates = match auxblob {
                Some(table) => certtable::parse(&table)?,
                None => Vec::new(),
            };
            return Ok(Evidence {
                platform,
                kind,
                bytes: outblob,
                certificates,
            });
        }
        Err(AttestError::TsmGenerationRace {
            attempts: self.options.max_attempts,
        })
    }
}

fn provider_name(platform: ClaimsPlatform) -> &'static str {
    match platform {
        ClaimsPlatform::SevSnp => "sev_guest",
        _ => "tdx_guest",
    }
}

/// A report directory of ours; removed when dropped (configfs removes its attributes with it).
struct ReportDir<'a> {
    path: PathBuf,
    owner: &'a TsmAttester,
}

impl ReportDir<'_> {
    fn attribute(&self, name: &'static str) -> PathBuf {
        self.path.join(name)
    }

    fn hook_read(&self, name: &str) {
        if let Some(k) = &self.owner.kernel {
            k.before_read(&self.path, name);
        }
    }

    fn io_error(
        &self,
        op: &'static str,
        name: &'static str,
        source: std::io::Error,
    ) -> AttestError {
        if source.kind() == ErrorKind::NotFound {
            AttestError::TsmAttributeMissing {
                attribute: name,
                dir: self.path.clone(),
            }
        } else {
            AttestError::Io {
                op,
                path: self.attribute(name),
                source,
            }
        }
    }

    /// Reads at most `limit` bytes; more is an error rather than a silent cut.
    fn read(&self, name: &'static str, limit: usize) -> Result<Vec<u8>, AttestError> {
        self.hook_read(name);
        let file =
            fs::File::open(self.attribute(name)).map_err(|e| self.io_error("open", name, e))?;
        let mut buf = Vec::new();
        let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
        file.take(cap)
            .read_to_end(&mut buf)
            .map_err(|e| self.io_error("read", name, e))?;
        if buf.len() > limit {
            return Err(AttestError::OutputTooLarge { what: name, limit });
        }
        Ok(buf)
    }

    fn read_optional(
        &self,
        name: &'static str,
        limit: usize,
    ) -> Result<Option<Vec<u8>>, AttestError> {
        match self.read(name, limit) {
            Ok(v) => Ok(Some(v)),
            Err(AttestError::TsmAttributeMissing { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn write(&self, name: &'static str, data: &[u8]) -> Result<(), AttestError> {
        // No O_CREAT (a missing attribute is an old kernel, not something to create) and no
        // O_TRUNC (configfs binary attributes take the whole write as the new value).
        let mut file = fs::OpenOptions::new()
            .write(true)
            .open(self.attribute(name))
            .map_err(|e| self.io_error("open", name, e))?;
        file.write_all(data)
            .and_then(|()| file.flush())
            .map_err(|e| self.io_error("write", name, e))?;
        drop(file);
        if let Some(k) = &self.owner.kernel {
            k.after_write(&self.path, name, data);
        }
        Ok(())
    }

    fn text(&self, name: &'static str) -> Result<String, AttestError> {
        let bytes = self.read(name, 64)?;
        Ok(String::from_utf8_lossy(&bytes).trim().to_owned())
    }

    fn generation(&self) -> Result<u64, AttestError> {
        let text = self.text("generation")?;
        text.parse().map_err(|_| AttestError::Io {
            op: "parse",
            path: self.attribute("generation"),
            source: std::io::Error::new(
                ErrorKind::InvalidData,
                format!("{text:?} is not a number"),
            ),
        })
    }

    fn provider(&self) -> Result<(ClaimsPlatform, EvidenceKind), AttestError> {
        let provider = self.text("provider")?;
        match provider.as_str() {
            "tdx_guest" => Ok((ClaimsPlatform::Tdx, EvidenceKind::TdxQuote)),
            "sev_guest" => Ok((ClaimsPlatform::SevSnp, EvidenceKind::SnpReport)),
            _ => Err(AttestError::TsmUnknownProvider { provider }),
        }
    }
}

impl Drop for ReportDir<'_> {
    fn drop(&mut self) {
        if let Some(k) = &self.owner.kernel {
            k.before_rmdir(&self.path);
        }
        // Nothing to do on failure: the directory holds no secret (REPORT_DATA is public).
        let _ = fs::remove_dir(&self.path);
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]
pub(crate) mod tests;
