//! The `cocoon-enclave serve --config FILE` TOML file (documented in `docs/api.md`, example in
//! `docs/examples/enclave.toml`). Every key is optional; command-line flags override the file.
//! Unknown keys are refused, so a typo never silently falls back to a default.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Largest configuration file read.
pub const MAX_CONFIG_BYTES: usize = 1024 * 1024;

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnclaveConfig {
    /// Address to listen on, e.g. `0.0.0.0:8443`.
    pub listen: Option<SocketAddr>,
    #[serde(default)]
    pub model: ModelSection,
    #[serde(default)]
    pub limits: LimitsSection,
    #[serde(default)]
    pub attestation: AttestationSection,
    #[serde(default)]
    pub tls: TlsSection,
    #[serde(default)]
    pub log: LogSection,
}

/// `[model]`: what is served. Without `dir` only the attestation routes are served.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    /// Model directory (`model.onnx`, `tokenizer.json`, `model.json`).
    pub dir: Option<PathBuf>,
    /// The model id clients name (`model` field, `/v1/models`); default: `model.json`'s name.
    pub id: Option<String>,
    /// Other names accepted in the `model` field.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// ONNX Runtime intra-op threads (0 = ONNX Runtime's default).
    pub threads: Option<usize>,
    /// Caps the context length (prompt + completion tokens) below the model's.
    pub max_context: Option<usize>,
}

/// `[limits]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    /// Largest request body, bytes (413 beyond).
    pub max_body_bytes: Option<usize>,
    /// Sequences decoded at once (the batch size limit).
    pub max_sequences: Option<usize>,
    /// Requests waiting for a sequence slot (429 beyond).
    pub queue_capacity: Option<usize>,
    /// Each request's deadline, seconds from arrival.
    pub request_timeout_secs: Option<u64>,
    /// `max_tokens` when a request gives none (capped by the room left in the context).
    pub default_max_tokens: Option<usize>,
    /// Largest `max_tokens` a request may ask for (400 beyond).
    pub max_tokens_limit: Option<usize>,
    /// The `Retry-After` of a 429, seconds.
    pub retry_after_secs: Option<u64>,
    /// How long a shutdown waits for requests in flight, seconds.
    pub shutdown_grace_secs: Option<u64>,
    /// Connections open at once.
    pub max_connections: Option<usize>,
    /// Request bodies read and parsed at once (memory bound: this times `max_body_bytes`).
    pub max_concurrent_bodies: Option<usize>,
}

/// `[attestation]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttestationSection {
    /// Evidence source: auto, tsm, sev-guest, tdx-guest (sim-tdx, sim-snp with feature `sim`).
    pub attester: Option<String>,
    /// RA-TLS certificate lifetime, seconds.
    pub cert_lifetime_secs: Option<u64>,
    /// TLS key type: ecdsa-p256 or ed25519.
    pub key: Option<String>,
    /// Subject alternative names of the certificate.
    pub subject_alt_names: Option<Vec<String>>,
    /// Hex digests put in the claims (32 bytes each).
    pub model_blake3: Option<String>,
    pub dm_verity_root: Option<String>,
    pub config_digest: Option<String>,
}

/// `[tls]`: the mutual-TLS policy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    /// Require clients' own RA-TLS certificates.
    pub mutual: Option<bool>,
    /// Policy TOML the clients' evidence must satisfy (mutual mode).
    pub policy: Option<PathBuf>,
    /// DCAP collateral JSON for clients' TDX quotes (mutual mode).
    pub collateral: Option<PathBuf>,
}

/// `[log]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSection {
    /// A `tracing` env-filter directive (`RUST_LOG` overrides), e.g. `info,cocoon_enclave=debug`.
    pub filter: Option<String>,
    /// `text` (default) or `json`.
    pub format: Option<String>,
}

/// Why a configuration file was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    Read { path: PathBuf, message: String },
    /// The file is larger than [`MAX_CONFIG_BYTES`].
    TooLarge { path: PathBuf },
    /// Not UTF-8 or not valid TOML for this schema (unknown keys included).
    Parse { message: String },
    /// A value out of range.
    Invalid { key: &'static str, message: String },
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Read { path, message } => write!(f, "cannot read {}: {message}", path.display()),
            Self::TooLarge { path } => write!(
                f,
                "{} is larger than {MAX_CONFIG_BYTES} bytes",
                path.display()
            ),
            Self::Parse { message } => write!(f, "{message}"),
            Self::Invalid { key, message } => write!(f, "{key}: {message}"),
        }
    }
}

impl std::error::Error for ConfigError {}

impl EnclaveConfig {
    /// Parses TOML text and checks the ranges.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let config: Self = toml::from_str(text).map_err(|e| ConfigError::Parse {
            message: e.to_string(),
        })?;
        config.check()?;
        Ok(config)
    }

    /// Reads and parses a file; relative paths in it are resolved against its directory.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let bytes = std::fs::read(path).map_err(|e| ConfigError::Read {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        if bytes.len() > MAX_CONFIG_BYTES {
            return Err(ConfigError::TooLarge {
                path: path.to_owned(),
            });
        }
        let text = String::from_utf8(bytes).map_err(|_| ConfigError::Parse {
            message: format!("{} is not UTF-8", path.display()),
        })?;
        let mut config = Self::from_toml(&text).map_err(|e| match e {
            ConfigError::Parse { message } => ConfigError::Parse {
                message: format!("{}: {message}", path.display()),
            },
            other => other,
        })?;
        if let Some(base) = path.parent() {
            config.resolve_paths(base);
        }
        Ok(config)
    }

    fn resolve_paths(&mut self, base: &Path) {
        let fix = |p: &mut Option<PathBuf>| {
            if let Some(path) = p.as_mut() {
                if path.is_relative() {
                    *path = base.join(&*path);
                }
            }
        };
        fix(&mut self.model.dir);
        fix(&mut self.tls.policy);
        fix(&mut self.tls.collateral);
    }

    fn check(&self) -> Result<(), ConfigError> {
        let positive = |key: &'static str, value: Option<u64>| match value {
            Some(0) => Err(ConfigError::Invalid {
                key,
                message: "must be at least 1".into(),
            }),
            _ => Ok(()),
        };
        let l = &self.limits;
        let as_u64 = |v: Option<usize>| v.map(|v| u64::try_from(v).unwrap_or(u64::MAX));
        positive("limits.max_body_bytes", as_u64(l.max_body_bytes))?;
        positive("limits.max_sequences", as_u64(l.max_sequences))?;
        positive("limits.request_timeout_secs", l.request_timeout_secs)?;
        positive("limits.default_max_tokens", as_u64(l.default_max_tokens))?;
        positive("limits.max_tokens_limit", as_u64(l.max_tokens_limit))?;
        positive("limits.max_connections", as_u64(l.max_connections))?;
        positive(
            "limits.max_concurrent_bodies",
            as_u64(l.max_concurrent_bodies),
        )?;
        positive("model.max_context", as_u64(self.model.max_context))?;
        positive(
            "attestation.cert_lifetime_secs",
            self.attestation.cert_lifetime_secs,
        )?;
        if let Some(id) = &self.model.id {
            if id.is_empty() {
                return Err(ConfigError::Invalid {
                    key: "model.id",
                    message: "must not be empty".into(),
                });
            }
        }
        if let Some(format) = &self.log.format {
            if format != "text" && format != "json" {
                return Err(ConfigError::Invalid {
                    key: "log.format",
                    message: format!("{format:?} is neither \"text\" nor \"json\""),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_file_is_all_defaults() {
        assert_eq!(
            EnclaveConfig::from_toml("").unwrap(),
            EnclaveConfig::default()
        );
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = EnclaveConfig::from_toml("[limits]\nmax_sequence = 4\n").unwrap_err();
        assert!(
            matches!(&err, ConfigError::Parse { message } if message.contains("max_sequence")),
            "{err:?}"
        );
    }

    #[test]
    fn zero_limits_are_refused() {
        let err = EnclaveConfig::from_toml("[limits]\nmax_sequences = 0\n").unwrap_err();
        assert!(matches!(
            err,
            ConfigError::Invalid {
                key: "limits.max_sequences",
                ..
            }
        ));
    }

    #[test]
    fn an_unknown_log_format_is_refused() {
        let err = EnclaveConfig::from_toml("[log]\nformat = \"xml\"\n").unwrap_err();
        assert!(matches!(
            err,
            ConfigError::Invalid {
                key: "log.format",
                ..
            }
        ));
    }
}
