//! `cocoon-verify gpu` on the real H100 vector (shared/vectors/gpu) and simulated evidence.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]

mod support;

use std::path::PathBuf;
use support::{code, json, run};

const NONCE: &str = "931d8dd0add203ac3d8b4fbde75e115278eefcdceac5b87671a748f32364dfcb";
const AT: &str = "1767225600";

fn vector(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/vectors/gpu")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

fn gpu(chain_case: u8, extra: &[&str]) -> std::process::Output {
    let report = vector("hopperAttestationReport.txt");
    let chain = vector(&format!("hopper_cert_chain_case{chain_case}.txt"));
    let mut args = vec!["gpu", &report, "--chain", &chain, "--at", AT];
    args.extend_from_slice(extra);
    run(&args)
}

#[test]
fn h100_vector_is_accepted_with_claims_equal_to_the_golden_file() {
    let out = gpu(1, &["--nonce", NONCE, "--json"]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stdout));
    let report = json(&out);
    assert_eq!(report["verdict"], "accepted");
    assert_eq!(report["simulated"], false);
    let mut golden: serde_json::Value = serde_json::from_slice(
        &std::fs::read(vector("hopperAttestationReport-claims.txt")).unwrap(),
    )
    .unwrap();
    // The golden uuid comes from trustee's evidence envelope; the SPDM report has none.
    golden.as_object_mut().unwrap().remove("uuid");
    assert_eq!(report["claims"], golden);
}

#[test]
fn h100_vector_human_report_names_the_versions() {
    let out = gpu(1, &[]);
    assert_eq!(code(&out), 0);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("ACCEPTED: NVIDIA GPU evidence"), "{text}");
    assert!(text.contains("driver version      550.90.07"), "{text}");
    assert!(
        text.contains("VBIOS version       96.00.9f.00.01"),
        "{text}"
    );
    assert!(text.contains("Hopper (GH100 A01 GSP FMC LF)"), "{text}");
}

#[test]
fn wrong_nonce_is_rejected_with_exit_1() {
    let out = gpu(1, &["--nonce", &"00".repeat(32), "--json"]);
    assert_eq!(code(&out), 1);
    assert_eq!(json(&out)["failures"][0]["kind"], "gpu_nonce_mismatch");
}

#[test]
fn broken_chains_are_rejected_with_their_reasons() {
    for (case, kind) in [
        (2, "gpu_chain_invalid"),
        (3, "gpu_chain_invalid"),
        (4, "gpu_fwid_missing"),
    ] {
        let out = gpu(case, &["--json"]);
        assert_eq!(code(&out), 1, "case {case}");
        let report = json(&out);
        assert_eq!(report["verdict"], "rejected");
        assert_eq!(report["failures"][0]["kind"], kind, "case {case}");
    }
}

#[test]
fn policy_failures_reject_verified_evidence() {
    let policy = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("gpu_cli_policy.toml");
    std::fs::write(
        &policy,
        "version = 1\n[gpu]\narchitectures = [\"blackwell\"]\nmin_driver_version = \"560\"\n",
    )
    .unwrap();
    let out = gpu(1, &["--policy", policy.to_str().unwrap(), "--json"]);
    assert_eq!(code(&out), 1);
    let report = json(&out);
    assert_eq!(report["verified"], true);
    let kinds: Vec<_> = report["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(kinds, ["gpu_policy_violation", "gpu_policy_violation"]);
}

#[test]
fn bad_nonce_argument_and_rim_are_usage_errors() {
    let out = gpu(1, &["--nonce", "abcd"]);
    assert_eq!(code(&out), 2);
    let out = gpu(1, &["--rim", "rim.xml"]);
    assert_eq!(code(&out), 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("not supported yet"));
}

#[test]
fn expired_verification_time_is_rejected() {
    let report = vector("hopperAttestationReport.txt");
    let chain = vector("hopper_cert_chain_case1.txt");
    let out = run(&[
        "gpu",
        &report,
        "--chain",
        &chain,
        "--at",
        "253402300800",
        "--json",
    ]);
    assert_eq!(code(&out), 1);
    assert_eq!(json(&out)["failures"][0]["kind"], "gpu_certificate_expired");
}

#[test]
fn bench_gpu_reports_a_rate() {
    let report = vector("hopperAttestationReport.txt");
    let chain = vector("hopper_cert_chain_case1.txt");
    let out = run(&[
        "bench",
        "gpu",
        &report,
        "--chain",
        &chain,
        "--at",
        AT,
        "--iterations",
        "2",
    ]);
    assert_eq!(code(&out), 0);
    assert!(String::from_utf8_lossy(&out.stdout).contains("verifications/s"));
}

#[cfg(feature = "sim")]
#[test]
fn simulated_gpu_needs_the_flag_and_allow_simulated() {
    use cocoon_attestation::sim::gpu::SimGpu;
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let nonce = [0x42u8; 32];
    let evidence = dir.join("gpu_cli_sim_evidence.bin");
    std::fs::write(&evidence, SimGpu::new().unwrap().report(nonce)).unwrap();
    let chain = dir.join("gpu_cli_sim_chain.pem");
    std::fs::write(
        &chain,
        [
            include_str!("../../attestation/src/sim/keys/gpu-leaf.cert.pem"),
            include_str!("../../attestation/src/sim/keys/gpu-ica.cert.pem"),
            include_str!("../../attestation/src/sim/keys/gpu-root.cert.pem"),
        ]
        .concat(),
    )
    .unwrap();
    let policy = dir.join("gpu_cli_sim_policy.toml");
    std::fs::write(&policy, "version = 1\nallow_simulated = true\n").unwrap();
    let (e, c, p) = (
        evidence.to_str().unwrap(),
        chain.to_str().unwrap(),
        policy.to_str().unwrap(),
    );
    let nonce_hex = hex::encode(nonce);

    let out = run(&["gpu", e, "--chain", c, "--json"]);
    assert_eq!(code(&out), 1);
    assert_eq!(json(&out)["failures"][0]["kind"], "gpu_root_untrusted");

    let out = run(&["gpu", e, "--chain", c, "--trust-simulated-root", "--json"]);
    assert_eq!(code(&out), 1);
    let report = json(&out);
    assert_eq!(report["simulated"], true);
    assert_eq!(
        report["failures"][0]["kind"],
        "simulated_evidence_not_allowed"
    );

    let out = run(&[
        "gpu",
        e,
        "--chain",
        c,
        "--trust-simulated-root",
        "--policy",
        p,
        "--nonce",
        &nonce_hex,
    ]);
    assert_eq!(code(&out), 0);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with("ACCEPTED: NVIDIA GPU evidence (SIMULATED GPU, NOT HARDWARE)"),
        "{text}"
    );
}
