//! The verification report: one structure rendered either for humans or as JSON, so both
//! outputs always say the same thing.

use cocoon_attestation::error::fmt_time;
use cocoon_attestation::{Error, TrustRoot};
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use serde_json::Value;
use std::fmt::Write as _;

/// Which kind of evidence a report is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    Tdx,
    Sgx,
    Snp,
}

impl Platform {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tdx => "tdx",
            Self::Sgx => "sgx",
            Self::Snp => "snp",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Self::Tdx => "Intel TDX",
            Self::Sgx => "Intel SGX",
            Self::Snp => "AMD SEV-SNP",
        }
    }
}

/// One named value of the evidence: a measured field or a platform fact.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// JSON key and the name shown to humans (`mrtd`, `rtmr0`, `host_data` …).
    pub key: &'static str,
    /// Hex string for byte fields, number for small integers.
    pub value: Value,
    /// A decoding for humans (attribute flags, policy bits, TCB parts).
    pub decoded: Option<String>,
}

impl Field {
    pub fn hex(key: &'static str, bytes: &[u8]) -> Self {
        Self {
            key,
            value: Value::String(hex::encode(bytes)),
            decoded: None,
        }
    }

    pub fn num(key: &'static str, n: impl Into<u64>) -> Self {
        Self {
            key,
            value: Value::from(n.into()),
            decoded: None,
        }
    }

    pub fn text(key: &'static str, text: impl Into<String>) -> Self {
        Self {
            key,
            value: Value::String(text.into()),
            decoded: None,
        }
    }

    /// A 64-bit register shown as `0x` and 16 hex digits.
    pub fn reg64(key: &'static str, raw: u64) -> Self {
        Self::text(key, format!("{raw:#018x}"))
    }

    pub fn decoded(mut self, decoded: impl Into<String>) -> Self {
        self.decoded = Some(decoded.into());
        self
    }

    fn display_value(&self) -> String {
        match &self.value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    }
}

/// The outcome of checking one piece of evidence.
#[derive(Debug, Clone)]
pub struct Report {
    pub platform: Platform,
    /// The verification time (unix seconds).
    pub now: i64,
    /// The evidence parsed; its fields are in `measurements` and `details`.
    pub parsed: bool,
    /// The signatures, chains and collateral verified (policy not included).
    pub verified: bool,
    pub root: Option<TrustRoot>,
    pub tcb_status: Option<String>,
    pub advisory_ids: Vec<String>,
    pub collateral_valid_from: Option<i64>,
    pub collateral_valid_until: Option<i64>,
    /// Facts about the evidence and platform (versions, FMSPC, generation …).
    pub details: Vec<Field>,
    /// Every measured field by name.
    pub measurements: Vec<Field>,
    /// The verification error, or every policy failure.
    pub errors: Vec<Error>,
}

impl Report {
    pub fn new(platform: Platform, now: i64) -> Self {
        Self {
            platform,
            now,
            parsed: false,
            verified: false,
            root: None,
            tcb_status: None,
            advisory_ids: Vec::new(),
            collateral_valid_from: None,
            collateral_valid_until: None,
            details: Vec::new(),
            measurements: Vec::new(),
            errors: Vec::new(),
        }
    }

    /// Accepted: verified and no policy failure.
    pub fn accepted(&self) -> bool {
        self.verified && self.errors.is_empty()
    }

    pub fn verdict(&self) -> &'static str {
        if self.accepted() {
            "accepted"
        } else {
            "rejected"
        }
    }

    /// The JSON form, keys in a fixed order.
    pub fn to_json(&self) -> String {
        let json = JsonReport {
            verdict: self.verdict(),
            platform: self.platform.as_str(),
            verified: self.verified,
            verification_time: self.now,
            root: self.root.map(TrustRoot::as_str),
            simulated: self.root == Some(TrustRoot::Simulated),
            tcb_status: self.tcb_status.as_deref(),
            advisory_ids: &self.advisory_ids,
            errors: self
                .errors
                .iter()
                .map(|e| JsonError {
                    kind: e.kind(),
                    message: e.message(),
                })
                .collect(),
            collateral_valid_from: self.collateral_valid_from,
            collateral_valid_until: self.collateral_valid_until,
            details: FieldMap(&self.details),
            measurements: FieldMap(&self.measurements),
            decoded: Decoded(&self.details, &self.measurements),
        };
        // Serializing plain strings, numbers and maps with string keys cannot fail.
        serde_json::to_string_pretty(&json).unwrap_or_default()
    }

    /// The human-readable form: the verdict first, then the platform, TCB, trust root, every
    /// field, and every failure with its reason.
    pub fn to_human(&self) -> String {
        let mut out = String::new();
        let verdict = if self.accepted() {
            "ACCEPTED"
        } else {
            "REJECTED"
        };
        let simulated = if self.root == Some(TrustRoot::Simulated) {
            " (SIMULATED TEE, NOT HARDWARE)"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "{verdict}: {} evidence{simulated}",
            self.platform.title()
        );
        let _ = writeln!(
            out,
            "verification time   {} ({})",
            fmt_time(self.now),
            self.now
        );
        match self.root {
            Some(TrustRoot::Simulated) => {
                let _ = writeln!(
                    out,
                    "trust root          *** SIMULATED *** {} — not evidence from real hardware",
                    TrustRoot::Simulated.as_str()
                );
            }
            Some(root) => {
                let _ = writeln!(out, "trust root          {}", root.as_str());
            }
            None => {
                let _ = writeln!(out, "trust root          none (not verified)");
            }
        }
        if let Some(status) = &self.tcb_status {
            let _ = writeln!(out, "TCB status          {status}");
            let advisories = if self.advisory_ids.is_empty() {
                "none".to_string()
            } else {
                self.advisory_ids.join(", ")
            };
            let _ = writeln!(out, "advisories          {advisories}");
        }
        if let (Some(from), Some(until)) = (self.collateral_valid_from, self.collateral_valid_until)
        {
            let _ = writeln!(
                out,
                "collateral valid    {} .. {}",
                fmt_time(from),
                fmt_time(until)
            );
        }
        write_fields(&mut out, &self.details, "");

        if self.parsed {
            let heading = if self.verified {
                "measurements (verified)"
            } else {
                "measurements (UNVERIFIED: the evidence failed verification; do not trust these values)"
            };
            let _ = writeln!(out, "\n{heading}");
            write_fields(&mut out, &self.measurements, "  ");
        } else {
            let _ = writeln!(out, "\nthe evidence did not parse: no fields to show");
        }

        write_errors(&mut out, self.verified, &self.errors);
        out
    }
}

/// The failures of a human report: under "policy failures" once the evidence verified, else
/// "verification failed"; one `  - [kind] message` line each. Nothing without errors.
pub(crate) fn write_errors(out: &mut String, verified: bool, errors: &[Error]) {
    if errors.is_empty() {
        return;
    }
    let heading = if verified {
        "policy failures"
    } else {
        "verification failed"
    };
    let _ = writeln!(out, "\n{heading}");
    for error in errors {
        let _ = writeln!(out, "  - [{}] {}", error.kind(), error.message());
    }
}

fn write_fields(out: &mut String, fields: &[Field], indent: &str) {
    let width = 19usize.saturating_sub(indent.len());
    for field in fields {
        let _ = write!(
            out,
            "{indent}{:<width$} {}",
            field.key,
            field.display_value()
        );
        if let Some(decoded) = &field.decoded {
            let _ = write!(out, "  ({decoded})");
        }
        out.push('\n');
    }
}

#[derive(Serialize)]
struct JsonError {
    kind: String,
    message: String,
}

#[derive(Serialize)]
struct JsonReport<'a> {
    verdict: &'static str,
    platform: &'static str,
    verified: bool,
    verification_time: i64,
    root: Option<&'static str>,
    simulated: bool,
    tcb_status: Option<&'a str>,
    advisory_ids: &'a [String],
    errors: Vec<JsonError>,
    collateral_valid_from: Option<i64>,
    collateral_valid_until: Option<i64>,
    details: FieldMap<'a>,
    measurements: FieldMap<'a>,
    decoded: Decoded<'a>,
}

/// The decodings of details and measurements, as one JSON object.
struct Decoded<'a>(&'a [Field], &'a [Field]);

impl Serialize for Decoded<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        for field in self.0.iter().chain(self.1) {
            if let Some(decoded) = &field.decoded {
                map.serialize_entry(field.key, decoded)?;
            }
        }
        map.end()
    }
}

/// Fields as a JSON object in their own order.
struct FieldMap<'a>(&'a [Field]);

impl Serialize for FieldMap<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        for field in self.0 {
            map.serialize_entry(field.key, &field.value)?;
        }
        map.end()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn sample() -> Report {
        let mut report = Report::new(Platform::Tdx, 1_752_919_234);
        report.parsed = true;
        report.verified = true;
        report.root = Some(TrustRoot::Intel);
        report.tcb_status = Some("UpToDate".into());
        report.measurements = vec![
            Field::hex("mrtd", &[0xab; 48]),
            Field::hex("td_attributes", &[0, 0, 0, 0x10, 0, 0, 0, 0]).decoded("SEPT_VE_DISABLE"),
        ];
        report
    }

    #[test]
    fn json_keys_come_in_a_fixed_order() {
        let json = sample().to_json();
        let keys = [
            "\"verdict\"",
            "\"platform\"",
            "\"verified\"",
            "\"root\"",
            "\"tcb_status\"",
            "\"advisory_ids\"",
            "\"errors\"",
            "\"measurements\"",
            "\"mrtd\"",
            "\"td_attributes\"",
            "\"decoded\"",
        ];
        let positions: Vec<usize> = keys.iter().map(|k| json.find(k).unwrap()).collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{json}");
    }

    #[test]
    fn report_with_a_policy_failure_is_rejected_in_both_forms() {
        let mut report = sample();
        report.errors.push(Error::DebugNotAllowed);
        let json: Value = serde_json::from_str(&report.to_json()).unwrap();
        assert_eq!(json["verdict"], "rejected");
        assert_eq!(json["errors"][0]["kind"], "debug_not_allowed");
        let human = report.to_human();
        assert!(human.starts_with("REJECTED"), "{human}");
        assert!(human.contains("[debug_not_allowed]"), "{human}");
    }

    #[test]
    fn unverified_fields_are_labelled_unverified() {
        let mut report = sample();
        report.verified = false;
        report.root = None;
        report.errors.push(Error::QuoteSignatureInvalid);
        let human = report.to_human();
        assert!(human.contains("UNVERIFIED"), "{human}");
        assert!(human.contains(&"ab".repeat(48)), "{human}");
    }

    #[test]
    fn simulated_root_is_highlighted() {
        let mut report = sample();
        report.root = Some(TrustRoot::Simulated);
        let human = report.to_human();
        assert!(human.starts_with("ACCEPTED: Intel TDX evidence (SIMULATED TEE, NOT HARDWARE)"));
        assert!(human.contains("*** SIMULATED ***"), "{human}");
        let json: Value = serde_json::from_str(&report.to_json()).unwrap();
        assert_eq!(json["simulated"], true);
    }
}
