//! `cocoon-verify gpu`: NVIDIA GPU evidence (SPDM GET_MEASUREMENTS request ‖ response) with its
//! device certificate chain, to a [`GpuReport`].

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use cocoon_attestation::encoding::binary_or_hex;
use cocoon_attestation::error::fmt_time;
use cocoon_attestation::gpu::{self, GpuTrustAnchors, VerifiedGpu};
use cocoon_attestation::policy::Policy;
use cocoon_attestation::{Error, Subject};
use serde_json::json;

use crate::{load_policy, read_file, unix_now, BadInput, EXIT_ACCEPTED, EXIT_REJECTED};

#[derive(Debug, Args)]
pub struct GpuArgs {
    /// The evidence: request ‖ response (raw binary or hex text).
    #[arg(value_name = "EVIDENCE")]
    pub evidence: PathBuf,
    /// The device certificate chain, PEM, leaf first (NVIDIA's 5-certificate H100 chain).
    #[arg(long, value_name = "CERTS")]
    pub chain: PathBuf,
    /// The 32-byte nonce the evidence must carry (64 hex digits).
    #[arg(long, value_name = "HEX")]
    pub nonce: Option<String>,
    /// Verification time in unix seconds (default: now).
    #[arg(long, value_name = "UNIX_SECONDS", allow_negative_numbers = true)]
    pub at: Option<i64>,
    /// Policy TOML; its `[gpu]` table applies (default: the built-in default policy).
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// NVIDIA RIM (reference integrity manifest) to compare measurements with: NOT SUPPORTED
    /// YET (use the policy's `[gpu] measurements` golden values).
    #[arg(long, value_name = "FILE")]
    pub rim: Option<PathBuf>,
    /// Also trust the simulated GPU root (builds with feature `sim` only). Its evidence is
    /// reported as SIMULATED and only a policy with `allow_simulated = true` accepts it.
    #[cfg(feature = "sim")]
    #[arg(long)]
    pub trust_simulated_root: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// The outcome of checking GPU evidence.
#[derive(Debug, Clone)]
pub struct GpuReport {
    pub now: i64,
    pub verified: Option<VerifiedGpu>,
    /// The verification error, or every policy failure.
    pub errors: Vec<Error>,
}

impl GpuReport {
    pub fn accepted(&self) -> bool {
        self.verified.is_some() && self.errors.is_empty()
    }

    pub fn verdict(&self) -> &'static str {
        if self.accepted() {
            "accepted"
        } else {
            "rejected"
        }
    }

    pub fn to_json(&self) -> String {
        let failures: Vec<_> = self
            .errors
            .iter()
            .map(|e| json!({"kind": e.kind(), "message": e.message()}))
            .collect();
        let value = json!({
            "verdict": self.verdict(),
            "platform": "NVIDIA GPU",
            "verified": self.verified.is_some(),
            "verification_time": self.now,
            "simulated": self.verified.as_ref().is_some_and(|v| v.simulated),
            "nonce": self.verified.as_ref().map(|v| hex::encode(v.nonce)),
            "claims": self.verified.as_ref().map(VerifiedGpu::claims_json),
            "failures": failures,
        });
        serde_json::to_string_pretty(&value).unwrap_or_default()
    }

    pub fn to_human(&self) -> String {
        let mut out = String::new();
        let verdict = if self.accepted() {
            "ACCEPTED"
        } else {
            "REJECTED"
        };
        let simulated = if self.verified.as_ref().is_some_and(|v| v.simulated) {
            " (SIMULATED GPU, NOT HARDWARE)"
        } else {
            ""
        };
        let _ = writeln!(out, "{verdict}: NVIDIA GPU evidence{simulated}");
        let _ = writeln!(
            out,
            "verification time   {} ({})",
            fmt_time(self.now),
            self.now
        );
        match &self.verified {
            Some(v) => {
                let root = if v.simulated {
                    "*** SIMULATED *** COCOON SIMULATED GPU ROOT — not evidence from real hardware"
                } else {
                    "NVIDIA Device Identity CA"
                };
                let _ = writeln!(out, "trust root          {root}");
                let _ = writeln!(
                    out,
                    "architecture        {} ({})",
                    v.arch.name(),
                    v.leaf_common_name
                );
                let _ = writeln!(out, "driver version      {}", v.driver_version);
                let _ = writeln!(out, "VBIOS version       {}", v.vbios_version);
                let _ = writeln!(out, "FWID                {}", hex::encode(&v.fwid));
                let _ = writeln!(out, "nonce               {}", hex::encode(v.nonce));
                for (k, value) in &v.config {
                    if k != "measurement_count" {
                        let shown = value
                            .as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| value.to_string());
                        let _ = writeln!(out, "{k:<19} {shown}");
                    }
                }
                let _ = writeln!(out, "\nmeasurements (verified)");
                for (i, m) in &v.measurements {
                    let _ = writeln!(out, "  {i:<4}{}", hex::encode(m));
                }
            }
            None => {
                let _ = writeln!(out, "trust root          none (not verified)");
            }
        }
        crate::report::write_errors(&mut out, self.verified.is_some(), &self.errors);
        out
    }
}

/// Decodes, verifies and evaluates. Evidence that fails at any step is a rejected report.
pub fn check(
    evidence_input: &[u8],
    chain: &[Vec<u8>],
    anchors: &GpuTrustAnchors,
    nonce: Option<&[u8; 32]>,
    policy: &Policy,
    now: i64,
) -> GpuReport {
    let mut report = GpuReport {
        now,
        verified: None,
        errors: Vec::new(),
    };
    let verified = binary_or_hex(evidence_input, Subject::GpuEvidence)
        .and_then(|bytes| gpu::verify(&bytes, chain, anchors, nonce, now));
    match verified {
        Ok(v) => {
            report.errors = policy.evaluate_gpus(std::slice::from_ref(&v)).failures;
            report.verified = Some(v);
        }
        Err(e) => report.errors.push(e),
    }
    report
}

fn anchors(args: &GpuArgs) -> Result<GpuTrustAnchors, BadInput> {
    #[cfg(feature = "sim")]
    if args.trust_simulated_root {
        return GpuTrustAnchors::with_simulated_root()
            .map_err(|e| BadInput(format!("GPU anchors: {}", e.message())));
    }
    let _ = args;
    GpuTrustAnchors::nvidia().map_err(|e| BadInput(format!("GPU anchors: {}", e.message())))
}

fn parse_nonce(text: &str) -> Result<[u8; 32], BadInput> {
    let bytes = hex::decode(text.trim().trim_start_matches("0x"))
        .map_err(|e| BadInput(format!("--nonce: not hex ({e})")))?;
    <[u8; 32]>::try_from(bytes.as_slice())
        .map_err(|_| BadInput(format!("--nonce: {} bytes, expected 32", bytes.len())))
}

fn load_chain(path: &std::path::Path) -> Result<Vec<Vec<u8>>, BadInput> {
    let pem = read_file(path, "chain")?;
    gpu::parse_pem_chain(&pem).map_err(|e| {
        BadInput(format!(
            "chain file {}: [{}] {}",
            path.display(),
            e.kind(),
            e.message()
        ))
    })
}

/// `cocoon-verify gpu`.
pub fn run(args: &GpuArgs, out: &mut dyn std::io::Write) -> Result<u8, BadInput> {
    if let Some(rim) = &args.rim {
        return Err(BadInput(format!(
            "--rim {}: RIM (reference integrity manifest) comparison is not supported yet; \
             pin golden measurements in the policy's [gpu] measurements table instead",
            rim.display()
        )));
    }
    let evidence = read_file(&args.evidence, "evidence")?;
    let chain = load_chain(&args.chain)?;
    let nonce = args.nonce.as_deref().map(parse_nonce).transpose()?;
    let policy = load_policy(args.policy.as_deref())?;
    let now = args.at.unwrap_or_else(unix_now);
    let report = check(
        &evidence,
        &chain,
        &anchors(args)?,
        nonce.as_ref(),
        &policy,
        now,
    );
    let text = if args.json {
        report.to_json()
    } else {
        report.to_human()
    };
    let _ = writeln!(out, "{}", text.trim_end());
    Ok(if report.accepted() {
        EXIT_ACCEPTED
    } else {
        EXIT_REJECTED
    })
}

/// GPU evidence verifications per second (signature + 5-certificate chain + FWID + parse).
pub fn bench(
    evidence_input: &[u8],
    chain: &[Vec<u8>],
    now: i64,
    iterations: u32,
) -> Result<f64, Error> {
    let evidence = binary_or_hex(evidence_input, Subject::GpuEvidence)?;
    let anchors = GpuTrustAnchors::nvidia()?;
    gpu::verify(&evidence, chain, &anchors, None, now)?;
    let start = Instant::now();
    for _ in 0..iterations {
        std::hint::black_box(gpu::verify(
            std::hint::black_box(&evidence),
            chain,
            &anchors,
            None,
            now,
        )?);
    }
    let secs = start.elapsed().as_secs_f64();
    Ok(if secs > 0.0 {
        f64::from(iterations) / secs
    } else {
        0.0
    })
}

/// `cocoon-verify bench gpu`.
pub fn run_bench(
    evidence: &std::path::Path,
    chain: &std::path::Path,
    at: Option<i64>,
    iterations: u32,
    out: &mut dyn std::io::Write,
) -> Result<u8, BadInput> {
    let evidence = read_file(evidence, "evidence")?;
    let chain = load_chain(chain)?;
    let now = at.unwrap_or_else(unix_now);
    match bench(&evidence, &chain, now, iterations) {
        Ok(rate) => {
            let _ = writeln!(out, "verify {rate:.0} verifications/s");
            Ok(EXIT_ACCEPTED)
        }
        Err(e) => {
            let _ = writeln!(out, "verification failed: [{}] {}", e.kind(), e.message());
            Ok(EXIT_REJECTED)
        }
    }
}
