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
    #[serde(default)]
    pub hpke: HpkeSection,
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
    /// `cpu` (default) or `cuda`.
    pub execution_provider: Option<String>,
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
    /// GPU evidence: off or sim.
    pub gpu: Option<String>,
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

/// Whether request bodies may, must or cannot be HPKE-sealed (docs/hpke.md).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HpkeMode {
    /// No HPKE key in the claims; sealed bodies are refused with 415 `encryption_unavailable`.
    Off,
    /// A fresh key per boot in the claims; sealed and plaintext requests are both served.
    #[default]
    Optional,
    /// As `Optional`, and plaintext `POST`s are refused with 403 `encryption_required`.
    Required,
}

impl HpkeMode {
    /// The configuration name: `off`, `optional` or `required`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Optional => "optional",
            Self::Required => "required",
        }
    }
}

impl std::fmt::Display for HpkeMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for HpkeMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "off" => Ok(Self::Off),
            "optional" => Ok(Self::Optional),
            "required" => Ok(Self::Required),
            other => Err(format!(
                "unknown HPKE mode {other:?} (off, optional or required)"
            )),
        }
    }
}

/// Default of `[hpke] replay_window_secs`.
pub const DEFAULT_REPLAY_WINDOW_SECS: u64 = 300;
/// Default of `[hpke] replay_capacity`.
pub const DEFAULT_REPLAY_CAPACITY: usize = 262_144;
/// Largest `[hpke] replay_window_secs` accepted (one day).
pub const MAX_REPLAY_WINDOW_SECS: u64 = 24 * 60 * 60;

/// `[hpke]`: HPKE-sealed request bodies (docs/hpke.md).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HpkeSection {
    /// `off`, `optional` (default) or `required`.
    pub mode: Option<HpkeMode>,
    /// Accepted clock difference of a sealed request's timestamp, seconds (default 300).
    pub replay_window_secs: Option<u64>,
    /// Request ids remembered within the window (default 262144; 503 beyond).
    pub replay_capacity: Option<usize>,
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
        positive("hpke.replay_window_secs", self.hpke.replay_window_secs)?;
        positive("hpke.replay_capacity", as_u64(self.hpke.replay_capacity))?;
        if self
            .hpke
            .replay_window_secs
            .is_some_and(|w| w > MAX_REPLAY_WINDOW_SECS)
        {
            return Err(ConfigError::Invalid {
                key: "hpke.replay_window_secs",
                message: format!("must be at most {MAX_REPLAY_WINDOW_SECS}"),
            });
        }
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
    fn the_hpke_table_parses_and_defaults_to_optional() {
        let config = EnclaveConfig::from_toml(
            "[hpke]\nmode = \"required\"\nreplay_window_secs = 60\nreplay_capacity = 10\n",
        )
        .unwrap();
        assert_eq!(config.hpke.mode, Some(HpkeMode::Required));
        assert_eq!(config.hpke.replay_window_secs, Some(60));
        assert_eq!(config.hpke.replay_capacity, Some(10));
        assert_eq!(HpkeMode::default(), HpkeMode::Optional);
        assert_eq!(
            EnclaveConfig::from_toml("[hpke]\nmode = \"off\"\n")
                .unwrap()
                .hpke
                .mode,
            Some(HpkeMode::Off)
        );
    }

    #[test]
    fn unknown_hpke_keys_and_modes_are_refused() {
        let err = EnclaveConfig::from_toml("[hpke]\nreplay_windows = 4\n").unwrap_err();
        assert!(
            matches!(&err, ConfigError::Parse { message } if message.contains("replay_windows")),
            "{err:?}"
        );
        let err = EnclaveConfig::from_toml("[hpke]\nmode = \"always\"\n").unwrap_err();
        assert!(
            matches!(&err, ConfigError::Parse { message } if message.contains("always")),
            "{err:?}"
        );
    }

    #[test]
    fn zero_or_huge_replay_settings_are_refused() {
        for (text, key) in [
            (
                "[hpke]\nreplay_window_secs = 0\n",
                "hpke.replay_window_secs",
            ),
            (
                "[hpke]\nreplay_window_secs = 86401\n",
                "hpke.replay_window_secs",
            ),
            ("[hpke]\nreplay_capacity = 0\n", "hpke.replay_capacity"),
        ] {
            let err = EnclaveConfig::from_toml(text).unwrap_err();
            assert!(
                matches!(&err, ConfigError::Invalid { key: k, .. } if *k == key),
                "{text}: {err:?}"
            );
        }
    }

    #[test]
    fn hpke_modes_parse_from_their_names() {
        for mode in [HpkeMode::Off, HpkeMode::Optional, HpkeMode::Required] {
            assert_eq!(mode.as_str().parse::<HpkeMode>(), Ok(mode));
        }
        assert!(matches!("Required".parse::<HpkeMode>(), Err(m) if m.contains("Required")));
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
