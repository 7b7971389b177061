//! Throughput of verification: `bench tdx`, `bench snp`, and the in-process comparison with
//! dcap-qvl and sev used by `scripts/bench`.
//!
//! Every timed iteration parses the evidence bytes and verifies them, on both sides; the
//! collateral JSON and the AMD root certificates are decoded once outside the loop, on both
//! sides. A benchmark whose verification fails is an error, never a number.

use cocoon_attestation::encoding::binary_or_hex;
use cocoon_attestation::snp::{SnpReport, SnpVerifier};
use cocoon_attestation::tdx::{Collateral, Quote, TdxVerifier};
use cocoon_attestation::{Error, Subject};
use std::hint::black_box;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

/// Cold and warm TDX throughput, in verifications per second.
#[derive(Debug, Clone, Copy)]
pub struct TdxRates {
    pub cold: f64,
    pub warm: f64,
}

fn per_second(iterations: u32, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 {
        f64::from(iterations) / secs
    } else {
        f64::INFINITY
    }
}

/// Cold: the cache is cleared before every verification. Warm: one verifier whose cache a first,
/// untimed verification filled.
pub fn tdx(
    quote_input: &[u8],
    collateral: &Collateral,
    now: i64,
    iterations: u32,
) -> Result<TdxRates, Error> {
    let quote = binary_or_hex(quote_input, Subject::Quote)?;
    let verifier = TdxVerifier::new();
    let cold = time_tdx_cold(&verifier, &quote, collateral, now, iterations)?;
    let warm = time_tdx_warm(&verifier, &quote, collateral, now, iterations)?;
    Ok(TdxRates {
        cold: per_second(iterations, cold),
        warm: per_second(iterations, warm),
    })
}

fn verify_tdx_once(
    verifier: &TdxVerifier,
    quote: &[u8],
    collateral: &Collateral,
    now: i64,
) -> Result<(), Error> {
    let parsed = Quote::parse(black_box(quote))?;
    black_box(verifier.verify(&parsed, collateral, now)?);
    Ok(())
}

fn time_tdx_cold(
    verifier: &TdxVerifier,
    quote: &[u8],
    collateral: &Collateral,
    now: i64,
    iterations: u32,
) -> Result<Duration, Error> {
    let start = Instant::now();
    for _ in 0..iterations {
        verifier.clear_cache();
        verify_tdx_once(verifier, quote, collateral, now)?;
    }
    Ok(start.elapsed())
}

fn time_tdx_warm(
    verifier: &TdxVerifier,
    quote: &[u8],
    collateral: &Collateral,
    now: i64,
    iterations: u32,
) -> Result<Duration, Error> {
    verify_tdx_once(verifier, quote, collateral, now)?;
    let start = Instant::now();
    for _ in 0..iterations {
        verify_tdx_once(verifier, quote, collateral, now)?;
    }
    Ok(start.elapsed())
}

/// SNP throughput (parse + verify against the embedded roots), verifications per second.
pub fn snp(
    report_input: &[u8],
    signer_der: &[u8],
    chain_pem: Option<&[u8]>,
    now: i64,
    iterations: u32,
) -> Result<f64, Error> {
    let report = binary_or_hex(report_input, Subject::SnpReport)?;
    let verifier = SnpVerifier::new();
    let elapsed = time_snp(&verifier, &report, signer_der, chain_pem, now, iterations)?;
    Ok(per_second(iterations, elapsed))
}

fn time_snp(
    verifier: &SnpVerifier,
    report: &[u8],
    signer_der: &[u8],
    chain_pem: Option<&[u8]>,
    now: i64,
    iterations: u32,
) -> Result<Duration, Error> {
    let start = Instant::now();
    for _ in 0..iterations {
        let parsed = SnpReport::parse(black_box(report))?;
        black_box(verifier.verify(&parsed, signer_der, chain_pem, now)?);
    }
    Ok(start.elapsed())
}

/// Like [`time_snp`] with a new verifier per call, so the embedded ARK/ASK signatures (checked
/// once per verifier) are checked on every call, as sev does.
fn time_snp_fresh(
    report: &[u8],
    signer_der: &[u8],
    now: i64,
    iterations: u32,
) -> Result<Duration, Error> {
    let start = Instant::now();
    for _ in 0..iterations {
        let verifier = SnpVerifier::new();
        let parsed = SnpReport::parse(black_box(report))?;
        black_box(verifier.verify(&parsed, signer_der, None, now)?);
    }
    Ok(start.elapsed())
}

/// The vectors `compare` uses, relative to `shared/vectors`.
const TDX_QUOTE: &str = "tdx/tdx_quote";
const TDX_COLLATERAL: &str = "tdx/tdx_quote_collateral.json";
/// Inside the collateral window of `tdx_quote_collateral.json` (vectors README).
const TDX_AT: i64 = 1_752_919_234;
const SNP_REPORT: &str = "snp/report_milan.hex";
const SNP_VCEK: &str = "snp/vcek_milan.der";
/// 2025-06-15: inside the validity of vcek_milan.der (2023-04-03..2030) and the Milan ARK/ASK.
const SNP_AT: i64 = 1_750_000_000;

/// One line of the comparison table.
struct Series {
    name: &'static str,
    baseline: &'static str,
    /// `None`: shown for information, no target.
    target: Option<f64>,
    ours: Duration,
    theirs: Duration,
}

/// Runs ours and the baselines in rounds, interleaved so drift (thermal, other load) hits both
/// sides alike, and prints a table of throughputs and ratios.
pub fn compare(
    vectors: &Path,
    iterations: u32,
    rounds: u32,
    out: &mut dyn Write,
) -> Result<u8, String> {
    let read = |relative: &str| {
        std::fs::read(vectors.join(relative))
            .map_err(|e| format!("reading {}: {e}", vectors.join(relative).display()))
    };
    let quote = read(TDX_QUOTE)?;
    let collateral_json = read(TDX_COLLATERAL)?;
    let collateral = Collateral::from_json(&collateral_json)
        .map_err(|e| format!("{TDX_COLLATERAL}: {}", e.message()))?;
    let snp_report =
        binary_or_hex(&read(SNP_REPORT)?, Subject::SnpReport).map_err(|e| e.message())?;
    let vcek = read(SNP_VCEK)?;

    let ours_tdx = TdxVerifier::new();
    let ours_snp = SnpVerifier::new();
    let sev_ca = sev_milan_ca().map_err(|e| format!("sev builtin Milan ARK/ASK: {e}"))?;

    // Every side must accept its input before it is timed.
    let check = |what: &str, r: Result<Duration, String>| r.map_err(|e| format!("{what}: {e}"));
    let ours_err = |e: Error| format!("[{}] {}", e.kind(), e.message());
    let tdx_at = u64::try_from(TDX_AT).map_err(|e| e.to_string())?;

    let mut series = [
        Series {
            name: "TDX cold",
            baseline: "dcap_qvl::verify::verify",
            target: Some(1.0),
            ours: Duration::ZERO,
            theirs: Duration::ZERO,
        },
        Series {
            name: "TDX warm",
            baseline: "dcap_qvl::verify::verify",
            target: Some(2.0),
            ours: Duration::ZERO,
            theirs: Duration::ZERO,
        },
        Series {
            name: "SNP",
            baseline: "sev (&Chain, &AttestationReport)::verify",
            target: Some(1.0),
            ours: Duration::ZERO,
            theirs: Duration::ZERO,
        },
        Series {
            name: "SNP cold",
            baseline: "the same, new verifier / builtin ARK+ASK parsed per call",
            target: None,
            ours: Duration::ZERO,
            theirs: Duration::ZERO,
        },
    ];
    let mut dcap_total = Duration::ZERO;
    for _ in 0..rounds {
        let cold = check(
            "ours TDX cold",
            time_tdx_cold(&ours_tdx, &quote, &collateral, TDX_AT, iterations).map_err(ours_err),
        )?;
        let dcap = check(
            "dcap-qvl",
            time_dcap_qvl(&quote, &collateral.inner, tdx_at, iterations),
        )?;
        let warm = check(
            "ours TDX warm",
            time_tdx_warm(&ours_tdx, &quote, &collateral, TDX_AT, iterations).map_err(ours_err),
        )?;
        let ours_snp_time = check(
            "ours SNP",
            time_snp(&ours_snp, &snp_report, &vcek, None, SNP_AT, iterations).map_err(ours_err),
        )?;
        let sev_time = check("sev", time_sev(&sev_ca, &snp_report, &vcek, iterations))?;
        let sev_fresh = check("sev cold", time_sev_fresh(&snp_report, &vcek, iterations))?;
        let ours_snp_fresh = check(
            "ours SNP cold",
            time_snp_fresh(&snp_report, &vcek, SNP_AT, iterations).map_err(ours_err),
        )?;
        dcap_total = dcap_total.saturating_add(dcap);
        let [c, w, s, f] = &mut series;
        c.ours = c.ours.saturating_add(cold);
        w.ours = w.ours.saturating_add(warm);
        s.ours = s.ours.saturating_add(ours_snp_time);
        s.theirs = s.theirs.saturating_add(sev_time);
        f.ours = f.ours.saturating_add(ours_snp_fresh);
        f.theirs = f.theirs.saturating_add(sev_fresh);
    }
    let total = iterations.saturating_mul(rounds);
    let _ = writeln!(
        out,
        "{total} verifications per line ({rounds} interleaved rounds of {iterations})"
    );
    let _ = writeln!(
        out,
        "{:<10} {:>12} {:>12} {:>7} {:>7}  baseline",
        "benchmark", "ours/s", "baseline/s", "ratio", "target"
    );
    for s in &mut series {
        if s.name.starts_with("TDX") {
            s.theirs = dcap_total;
        }
        let ours = per_second(total, s.ours);
        let theirs = per_second(total, s.theirs);
        let ratio = ours / theirs;
        let (target, verdict) = match s.target {
            Some(t) if ratio >= t => (format!("{t:.1}x"), " (met)"),
            Some(t) => (format!("{t:.1}x"), " (MISSED)"),
            None => ("-".to_string(), ""),
        };
        let _ = writeln!(
            out,
            "{:<10} {:>12.1} {:>12.1} {:>6.2}x {:>7}  {}{verdict}",
            s.name, ours, theirs, ratio, target, s.baseline
        );
    }
    Ok(crate::EXIT_ACCEPTED)
}

fn time_dcap_qvl(
    quote: &[u8],
    collateral: &dcap_qvl::QuoteCollateralV3,
    now: u64,
    iterations: u32,
) -> Result<Duration, String> {
    let start = Instant::now();
    for _ in 0..iterations {
        black_box(
            dcap_qvl::verify::verify(black_box(quote), collateral, now)
                .map_err(|e| format!("{e:#}"))?,
        );
    }
    Ok(start.elapsed())
}

fn sev_milan_ca() -> std::io::Result<sev::certs::snp::ca::Chain> {
    use sev::certs::snp::builtin::milan;
    Ok(sev::certs::snp::ca::Chain {
        ark: milan::ark()?,
        ask: milan::ask()?,
    })
}

/// [`time_sev`] starting from bytes: the builtin Milan ARK/ASK are parsed in every call too.
fn time_sev_fresh(report: &[u8], vcek_der: &[u8], iterations: u32) -> Result<Duration, String> {
    use sev::certs::snp::{Certificate, Chain, Verifiable};
    use sev::firmware::guest::AttestationReport;
    use sev::parser::ByteParser;
    let start = Instant::now();
    for _ in 0..iterations {
        let ca = sev_milan_ca().map_err(|e| e.to_string())?;
        let parsed = AttestationReport::from_bytes(black_box(report)).map_err(|e| e.to_string())?;
        let chain = Chain {
            ca,
            vek: Certificate::from_der(black_box(vcek_der)).map_err(|e| e.to_string())?,
        };
        (&chain, &parsed).verify().map_err(|e| e.to_string())?;
        black_box(&parsed);
    }
    Ok(start.elapsed())
}

/// sev's own verification: parse the report and the VCEK, then ARK → ASK → VCEK → report.
fn time_sev(
    ca: &sev::certs::snp::ca::Chain,
    report: &[u8],
    vcek_der: &[u8],
    iterations: u32,
) -> Result<Duration, String> {
    use sev::certs::snp::{Certificate, Chain, Verifiable};
    use sev::firmware::guest::AttestationReport;
    use sev::parser::ByteParser;
    // The CA is moved in once; each iteration parses the VCEK into the chain.
    let mut chain = Chain {
        ca: ca.clone(),
        vek: Certificate::from_der(vcek_der).map_err(|e| e.to_string())?,
    };
    let start = Instant::now();
    for _ in 0..iterations {
        let parsed = AttestationReport::from_bytes(black_box(report)).map_err(|e| e.to_string())?;
        chain.vek = Certificate::from_der(black_box(vcek_der)).map_err(|e| e.to_string())?;
        (&chain, &parsed).verify().map_err(|e| e.to_string())?;
        black_box(&parsed);
    }
    Ok(start.elapsed())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn vectors() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/vectors")
    }

    #[test]
    fn dcap_qvl_baseline_accepts_the_benchmarked_quote() {
        let quote = std::fs::read(vectors().join(TDX_QUOTE)).unwrap();
        let json = std::fs::read(vectors().join(TDX_COLLATERAL)).unwrap();
        let collateral = Collateral::from_json(&json).unwrap();
        let elapsed = time_dcap_qvl(&quote, &collateral.inner, TDX_AT as u64, 1);
        assert!(elapsed.is_ok(), "{elapsed:?}");
    }

    #[test]
    fn sev_baseline_accepts_the_benchmarked_report() {
        let text = std::fs::read(vectors().join(SNP_REPORT)).unwrap();
        let report = binary_or_hex(&text, Subject::SnpReport).unwrap();
        let vcek = std::fs::read(vectors().join(SNP_VCEK)).unwrap();
        let elapsed = time_sev(&sev_milan_ca().unwrap(), &report, &vcek, 1);
        assert!(elapsed.is_ok(), "{elapsed:?}");
    }

    #[test]
    fn sev_baseline_rejects_a_flipped_report() {
        let text = std::fs::read(vectors().join(SNP_REPORT)).unwrap();
        let mut report = binary_or_hex(&text, Subject::SnpReport).unwrap();
        if let Some(b) = report.get_mut(21) {
            *b ^= 0x80;
        }
        let vcek = std::fs::read(vectors().join(SNP_VCEK)).unwrap();
        assert!(time_sev(&sev_milan_ca().unwrap(), &report, &vcek, 1).is_err());
    }
}
