//! `cocoon-verify eventlog`: parse a TDX event log (CCEL), replay it to RTMR0-3 (plus our
//! RTMR3 runtime log), and compare with a TDX quote's RTMRs.
//!
//! What is checked about the quote: it is decoded and parsed as a TDX quote (v4/v5) and its
//! RTMRs are compared. Only with `--collateral` is it also verified (signature, QE report,
//! PCK chain to the Intel root, CRLs, TCB level at `--at`); policy checks are `cocoon-verify
//! tdx`'s job. A log that does not parse, a replay error, a quote that does not parse or
//! verify, or any RTMR mismatch exits 1.

use crate::{read_file, BadInput, EXIT_ACCEPTED, EXIT_REJECTED};
use clap::Args;
use cocoon_attestation::encoding::binary_or_hex;
use cocoon_attestation::eventlog::runtime::RuntimeLog;
use cocoon_attestation::eventlog::{
    algorithm_name, compare_rtmrs, event_type_label, rtmr_of, EventLog, Rtmrs, EV_NO_ACTION,
};
use cocoon_attestation::tdx::{Collateral, Quote, TdxVerifier};
use cocoon_attestation::{Error, Subject};
use serde_json::{json, Value};
use std::io::Write;
use std::path::PathBuf;

/// Arguments of `cocoon-verify eventlog`.
#[derive(Debug, Args)]
pub struct EventlogArgs {
    /// The event log: the CCEL log area (e.g. /sys/firmware/acpi/tables/data/CCEL).
    #[arg(value_name = "CCEL_FILE")]
    pub ccel: PathBuf,
    /// A TDX quote (raw binary or hex) whose RTMRs the replay must equal.
    #[arg(long, value_name = "QUOTE")]
    pub quote: Option<PathBuf>,
    /// Also verify the quote with this collateral (dcap-qvl QuoteCollateralV3 JSON).
    #[arg(long, value_name = "FILE", requires = "quote")]
    pub collateral: Option<PathBuf>,
    /// Verification time for --collateral, unix seconds (default: now).
    #[arg(long, value_name = "UNIX_SECONDS", allow_negative_numbers = true)]
    pub at: Option<i64>,
    /// Our RTMR3 runtime log (docs/measure-eventlog.md), replayed after the firmware log.
    #[arg(long, value_name = "FILE")]
    pub runtime_log: Option<PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

fn error_json(e: &Error) -> Value {
    json!({"kind": e.kind(), "message": e.message()})
}

/// Runs the command; returns the exit code.
pub fn run(args: &EventlogArgs, now: i64, out: &mut dyn Write) -> Result<u8, BadInput> {
    let bytes = read_file(&args.ccel, "event log")?;
    let runtime = match &args.runtime_log {
        Some(path) => Some(read_file(path, "runtime log")?),
        None => None,
    };
    let quote_bytes = match &args.quote {
        Some(path) => Some(read_file(path, "quote")?),
        None => None,
    };
    let collateral = match &args.collateral {
        Some(path) => {
            let b = read_file(path, "collateral")?;
            Some(Collateral::from_json(&b).map_err(|e| {
                BadInput(format!(
                    "collateral file {}: [{}] {}",
                    path.display(),
                    e.kind(),
                    e.message()
                ))
            })?)
        }
        None => None,
    };

    let mut errors: Vec<Error> = Vec::new();
    let log = match EventLog::parse(&bytes) {
        Ok(log) => Some(log),
        Err(e) => {
            errors.push(e);
            None
        }
    };
    let runtime = match runtime.map(|r| RuntimeLog::parse(&r)).transpose() {
        Ok(r) => r,
        Err(e) => {
            errors.push(e);
            None
        }
    };
    let mut replayed: Option<Rtmrs> = None;
    if let Some(log) = &log {
        match log.replay() {
            Ok(mut rtmrs) => {
                if let Some(rt) = &runtime {
                    rt.replay_onto(&mut rtmrs);
                }
                replayed = Some(rtmrs);
            }
            Err(e) => errors.push(e),
        }
    }

    // The quote: parsed (and verified with --collateral), its RTMRs compared.
    let mut quote_rtmrs: Option<Rtmrs> = None;
    let mut quote_verified = false;
    if let Some(qb) = &quote_bytes {
        match binary_or_hex(qb, Subject::Quote).and_then(|b| Quote::parse(&b)) {
            Ok(quote) => match quote.td_report() {
                Some(td) => {
                    quote_rtmrs = Some(td.rt_mr);
                    if let Some(c) = &collateral {
                        match TdxVerifier::new().verify(&quote, c, args.at.unwrap_or(now)) {
                            Ok(_) => quote_verified = true,
                            Err(e) => errors.push(e),
                        }
                    }
                }
                None => errors.push(Error::UnsupportedEvidence {
                    reason: "an SGX quote has no RTMRs: give a TDX quote".into(),
                }),
            },
            Err(e) => errors.push(e),
        }
    }
    let mismatches = match (&replayed, &quote_rtmrs) {
        (Some(r), Some(q)) => compare_rtmrs(r, q),
        _ => Vec::new(),
    };
    let matches_quote = quote_bytes.as_ref().map(|_| {
        replayed.is_some() && quote_rtmrs.is_some() && mismatches.is_empty() && errors.is_empty()
    });
    let ok = errors.is_empty() && mismatches.is_empty() && replayed.is_some();

    let text = if args.json {
        let mut v = serde_json::Map::new();
        if let Some(r) = &replayed {
            for (i, rtmr) in r.iter().enumerate() {
                v.insert(format!("rtmr{i}"), Value::from(hex::encode(rtmr)));
            }
        }
        if let Some(m) = matches_quote {
            v.insert("matches_quote".into(), Value::from(m));
            v.insert("quote_verified".into(), Value::from(quote_verified));
            if let Some(q) = &quote_rtmrs {
                v.insert(
                    "quote_rtmrs".into(),
                    Value::from(q.iter().map(hex::encode).collect::<Vec<_>>()),
                );
            }
        }
        if let Some(log) = &log {
            v.insert("events".into(), Value::from(events_json(log)));
        }
        if let Some(rt) = &runtime {
            v.insert(
                "runtime_events".into(),
                Value::from(
                    rt.entries
                        .iter()
                        .map(|e| {
                            json!({
                                "rtmr": e.register,
                                "digest": hex::encode(e.digest),
                                "text": e.text,
                                "label": e.label,
                            })
                        })
                        .collect::<Vec<_>>(),
                ),
            );
        }
        v.insert(
            "errors".into(),
            Value::from(
                errors
                    .iter()
                    .chain(mismatches.iter())
                    .map(error_json)
                    .collect::<Vec<_>>(),
            ),
        );
        serde_json::to_string_pretty(&Value::Object(v)).unwrap_or_default()
    } else {
        human(
            log.as_ref(),
            runtime.as_ref(),
            replayed.as_ref(),
            quote_rtmrs.as_ref(),
            quote_verified,
            &errors,
            &mismatches,
        )
    };
    let _ = writeln!(out, "{}", text.trim_end());
    Ok(if ok { EXIT_ACCEPTED } else { EXIT_REJECTED })
}

fn events_json(log: &EventLog) -> Vec<Value> {
    log.events
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let d = e.details();
            let mut details = serde_json::Map::new();
            if let Some(s) = d.string {
                details.insert("string".into(), Value::from(s));
            }
            if let Some(var) = d.variable {
                details.insert(
                    "variable".into(),
                    json!({
                        "guid": cocoon_attestation::eventlog::details::efi_guid(&var.guid),
                        "name": var.name,
                        "data": hex::encode(&var.data),
                    }),
                );
            }
            if let Some(p) = d.device_paths {
                details.insert("device_paths".into(), Value::from(p));
            }
            let rtmr = if e.event_type == EV_NO_ACTION {
                Value::Null
            } else {
                rtmr_of(e.mr_index).map(Value::from).unwrap_or(Value::Null)
            };
            json!({
                "number": i,
                "mr_index": e.mr_index,
                "rtmr": rtmr,
                "event_type": e.event_type,
                "type_name": event_type_label(e.event_type),
                "digests": e.digests.iter().map(|dg| json!({
                    "alg": algorithm_name(dg.algorithm).map(str::to_string)
                        .unwrap_or_else(|| format!("{:#06x}", dg.algorithm)),
                    "digest": hex::encode(&dg.value),
                })).collect::<Vec<_>>(),
                "data_size": e.data.len(),
                "digest_matches_data": e.digest_matches_data(),
                "details": Value::Object(details),
            })
        })
        .collect()
}

fn short(s: &str, n: usize) -> String {
    if s.chars().count() > n {
        let mut t: String = s.chars().take(n).collect();
        t.push('…');
        t
    } else {
        s.to_string()
    }
}

fn human(
    log: Option<&EventLog>,
    runtime: Option<&RuntimeLog>,
    replayed: Option<&Rtmrs>,
    quote: Option<&Rtmrs>,
    quote_verified: bool,
    errors: &[Error],
    mismatches: &[Error],
) -> String {
    let mut s = String::new();
    if let Some(log) = log {
        let algs: Vec<String> = log
            .spec_id
            .algorithms
            .iter()
            .map(|(a, _)| {
                algorithm_name(*a)
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("{a:#06x}"))
            })
            .collect();
        s.push_str(&format!(
            "event log: {} events, digests {}, spec {}.{} errata {}\n",
            log.events.len(),
            algs.join(", "),
            log.spec_id.spec_version_major,
            log.spec_id.spec_version_minor,
            log.spec_id.spec_errata
        ));
        s.push_str("  #  MR       type                              SHA-384 (start)   details\n");
        for (i, e) in log.events.iter().enumerate() {
            let mr = if e.event_type == EV_NO_ACTION {
                "-".to_string()
            } else {
                rtmr_of(e.mr_index)
                    .map(|r| format!("RTMR{r}"))
                    .unwrap_or_else(|_| format!("MR{}", e.mr_index))
            };
            let digest = e
                .sha384()
                .map(|d| hex::encode(d.get(..8).unwrap_or_default()))
                .unwrap_or_else(|| "-".into());
            let d = e.details();
            let detail = if let Some(v) = &d.variable {
                format!("{} ({} bytes)", v.name, v.data.len())
            } else if let Some(p) = &d.device_paths {
                p.join("/")
            } else {
                d.string.unwrap_or_default()
            };
            s.push_str(&format!(
                "{i:>3}  {mr:<7}  {:<32}  {digest:<16}  {}\n",
                event_type_label(e.event_type),
                short(&detail, 60)
            ));
        }
    }
    if let Some(rt) = runtime {
        s.push_str(&format!("runtime log: {} extensions\n", rt.entries.len()));
        for e in &rt.entries {
            let what = e
                .text
                .clone()
                .or_else(|| e.label.clone())
                .unwrap_or_default();
            s.push_str(&format!(
                "       RTMR{}    {}  {}\n",
                e.register,
                hex::encode(e.digest.get(..8).unwrap_or_default()),
                short(&what, 70)
            ));
        }
    }
    if let Some(r) = replayed {
        s.push_str("replayed:\n");
        for (i, v) in r.iter().enumerate() {
            let mark = match quote {
                Some(q) if q.get(i) == Some(v) => "  = quote",
                Some(_) => "  ≠ quote",
                None => "",
            };
            s.push_str(&format!("  rtmr{i}  {}{mark}\n", hex::encode(v)));
        }
    }
    if let Some(q) = quote {
        s.push_str(if quote_verified {
            "quote: parsed and verified with the collateral\n"
        } else {
            "quote: parsed only (signature not checked: pass --collateral or use `cocoon-verify tdx`)\n"
        });
        for (i, v) in q.iter().enumerate() {
            s.push_str(&format!("  rtmr{i}  {}\n", hex::encode(v)));
        }
    }
    for e in errors.iter().chain(mismatches) {
        s.push_str(&format!("error: [{}] {}\n", e.kind(), e.message()));
    }
    let verdict = if !errors.is_empty() || !mismatches.is_empty() {
        "REJECTED"
    } else if quote.is_some() {
        "OK: the replay matches the quote"
    } else {
        "OK: replayed (no quote to compare)"
    };
    s.push_str(&format!("verdict: {verdict}\n"));
    s
}
