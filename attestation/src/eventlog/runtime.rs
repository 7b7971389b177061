//! Our RTMR3 runtime log: what the enclave extends into RTMR3 after boot (the measured
//! configuration, the "initialised" marker), in a line format anyone can read and replay.
//! The format is documented in docs/measure-eventlog.md:
//!
//! ```text
//! # cocoon runtime measurement log v1
//! rtmr3 text cocoon:spec.tree=3498b88b…
//! rtmr3 text cocoon:tdx_inited
//! rtmr3 sha384 <96 hex digits> optional label
//! ```
//!
//! `text` extends SHA-384 of the text (the rest of the line, byte for byte, without the
//! newline); `sha384` extends the given digest. `#` lines and blank lines are comments.
//! Replay extends the named register from its value after the firmware log (zero for RTMR3
//! on the platforms we use).

use super::{extend, Rtmrs};
use crate::error::{Error, Result, Subject};
use sha2::{Digest as _, Sha384};

/// Largest runtime log accepted.
pub const MAX_RUNTIME_LOG: usize = 1024 * 1024;
/// Longest line accepted.
pub const MAX_LINE: usize = 4096;

/// One extension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeEntry {
    /// The RTMR extended (0..3).
    pub register: usize,
    /// The 48 bytes extended.
    pub digest: [u8; 48],
    /// For `text` records: the text whose SHA-384 is the digest.
    pub text: Option<String>,
    /// For `sha384` records: the optional label after the digest.
    pub label: Option<String>,
}

/// A parsed runtime log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuntimeLog {
    pub entries: Vec<RuntimeEntry>,
}

fn invalid(line: usize, reason: impl Into<String>) -> Error {
    Error::RuntimeLogLineInvalid {
        line,
        reason: reason.into(),
    }
}

impl RuntimeEntry {
    /// A `text` record: extends SHA-384(text).
    pub fn text(register: usize, text: &str) -> Self {
        let mut digest = [0u8; 48];
        digest.copy_from_slice(&Sha384::digest(text.as_bytes()));
        Self {
            register,
            digest,
            text: Some(text.to_string()),
            label: None,
        }
    }

    /// The record as one line of the log (without the newline).
    pub fn to_line(&self) -> String {
        match (&self.text, &self.label) {
            (Some(text), _) => format!("rtmr{} text {text}", self.register),
            (None, Some(label)) => {
                format!(
                    "rtmr{} sha384 {} {label}",
                    self.register,
                    hex::encode(self.digest)
                )
            }
            (None, None) => format!("rtmr{} sha384 {}", self.register, hex::encode(self.digest)),
        }
    }
}

impl RuntimeLog {
    /// Parses the log; every malformed line is an error naming the line.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        if bytes.len() > MAX_RUNTIME_LOG {
            return Err(Error::InputTooLarge {
                subject: Subject::RuntimeLog,
                size: bytes.len(),
                limit: MAX_RUNTIME_LOG,
            });
        }
        let text = std::str::from_utf8(bytes).map_err(|e| Error::Malformed {
            subject: Subject::RuntimeLog,
            reason: format!("not UTF-8: {e}"),
        })?;
        let mut entries = Vec::new();
        for (index, line) in text.split('\n').enumerate() {
            let number = index.saturating_add(1);
            if line.len() > MAX_LINE {
                return Err(invalid(number, format!("longer than {MAX_LINE} bytes")));
            }
            if line.contains('\r') {
                return Err(invalid(number, "carriage return (lines end with \\n only)"));
            }
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            entries.push(Self::parse_line(number, line)?);
        }
        Ok(Self { entries })
    }

    fn parse_line(number: usize, line: &str) -> Result<RuntimeEntry> {
        let (register, rest) = line
            .split_once(' ')
            .ok_or_else(|| invalid(number, "expected `rtmrN text …` or `rtmrN sha384 HEX`"))?;
        let register = match register {
            "rtmr0" => 0,
            "rtmr1" => 1,
            "rtmr2" => 2,
            "rtmr3" => 3,
            other => return Err(invalid(number, format!("unknown register {other:?}"))),
        };
        let (kind, rest) = rest.split_once(' ').unwrap_or((rest, ""));
        match kind {
            "text" => Ok(RuntimeEntry::text(register, rest)),
            "sha384" => {
                let (digest_hex, label) = match rest.split_once(' ') {
                    Some((d, l)) => (d, Some(l.to_string())),
                    None => (rest, None),
                };
                let bytes = hex::decode(digest_hex)
                    .map_err(|e| invalid(number, format!("digest is not hex: {e}")))?;
                let digest = <[u8; 48]>::try_from(bytes.as_slice()).map_err(|_| {
                    invalid(number, format!("digest has {} bytes, not 48", bytes.len()))
                })?;
                Ok(RuntimeEntry {
                    register,
                    digest,
                    text: None,
                    label,
                })
            }
            other => Err(invalid(
                number,
                format!("unknown record kind {other:?} (text or sha384)"),
            )),
        }
    }

    /// The log as text (the header comment, then one line per record).
    pub fn to_text(&self) -> String {
        let mut out = String::from("# cocoon runtime measurement log v1\n");
        for entry in &self.entries {
            out.push_str(&entry.to_line());
            out.push('\n');
        }
        out
    }

    /// Extends the registers with every record, in order.
    pub fn replay_onto(&self, rtmrs: &mut Rtmrs) {
        for entry in &self.entries {
            if let Some(slot) = rtmrs.get_mut(entry.register) {
                extend(slot, &entry.digest);
            }
        }
    }
}

/// The two records COCOON extends into RTMR3: the config tree hash, then the marker.
pub fn cocoon_records(spec_tree_hex: &str) -> RuntimeLog {
    RuntimeLog {
        entries: vec![
            RuntimeEntry::text(3, &format!("cocoon:spec.tree={spec_tree_hex}")),
            RuntimeEntry::text(3, "cocoon:tdx_inited"),
        ],
    }
}
