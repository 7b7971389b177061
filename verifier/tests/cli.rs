//! The `cocoon-verify` binary on the real evidence in `shared/vectors`: verdicts, exit codes,
//! JSON keys and the human report.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]

use serde_json::Value;
use std::path::PathBuf;
use std::process::Output;

mod support;
use support::{code, json, run};

fn vector(relative: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/vectors")
        .join(relative);
    assert!(path.exists(), "missing test vector {}", path.display());
    path.to_string_lossy().into_owned()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn error_kinds(report: &Value) -> Vec<String> {
    report["errors"]
        .as_array()
        .expect("errors is a list")
        .iter()
        .map(|e| e["kind"].as_str().expect("kind is a string").to_string())
        .collect()
}

/// MRTD straight from the quote bytes (TD report body at 48 + 136), independent of the parser.
fn mrtd_of(quote_file: &str) -> String {
    let quote = std::fs::read(vector(quote_file)).unwrap();
    hex::encode(&quote[48 + 136..48 + 184])
}

fn temp_file(name: &str, contents: &[u8]) -> String {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("cocoon-verify-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path.to_string_lossy().into_owned()
}

const TDX_AT: &str = "1752919234";

fn tdx_quote_args<'a>(quote: &'a str, collateral: &'a str, at: &'a str) -> Vec<&'a str> {
    vec!["tdx", quote, "--collateral", collateral, "--at", at]
}

// ---------------------------------------------------------------------- TDX / SGX

#[test]
fn tdx_quote_is_accepted_up_to_date_with_its_mrtd() {
    let (q, c) = (
        vector("tdx/tdx_quote"),
        vector("tdx/tdx_quote_collateral.json"),
    );
    let mut args = tdx_quote_args(&q, &c, TDX_AT);
    args.push("--json");
    let output = run(&args);
    let report = json(&output);
    assert_eq!(code(&output), 0, "{report:#}");
    assert_eq!(report["verdict"], "accepted");
    assert_eq!(report["platform"], "tdx");
    assert_eq!(report["verified"], true);
    assert_eq!(report["tcb_status"], "UpToDate");
    assert_eq!(report["advisory_ids"], serde_json::json!([]));
    assert_eq!(report["errors"], serde_json::json!([]));
    assert_eq!(report["root"], "Intel SGX Root CA");
    assert_eq!(report["measurements"]["mrtd"], mrtd_of("tdx/tdx_quote"));
    for key in ["rtmr0", "rtmr1", "rtmr2", "rtmr3", "report_data", "mr_seam"] {
        assert!(report["measurements"][key].is_string(), "{key}: {report:#}");
    }
}

#[test]
fn tdx_human_report_leads_with_the_verdict_and_shows_the_mrtd() {
    let (q, c) = (
        vector("tdx/tdx_quote"),
        vector("tdx/tdx_quote_collateral.json"),
    );
    let output = run(&tdx_quote_args(&q, &c, TDX_AT));
    let text = stdout(&output);
    assert_eq!(code(&output), 0, "{text}");
    assert!(text.starts_with("ACCEPTED"), "{text}");
    assert!(text.contains(&mrtd_of("tdx/tdx_quote")), "{text}");
    assert!(text.contains("UpToDate"), "{text}");
    assert!(text.contains("SEPT_VE_DISABLE"), "{text}");
}

#[test]
fn sgx_quote_is_accepted_with_both_advisories() {
    let (q, c) = (
        vector("tdx/sgx_quote"),
        vector("tdx/sgx_quote_collateral.json"),
    );
    let mut args = tdx_quote_args(&q, &c, "1752919277");
    args.push("--json");
    let output = run(&args);
    let report = json(&output);
    assert_eq!(code(&output), 0, "{report:#}");
    assert_eq!(report["platform"], "sgx");
    assert_eq!(report["tcb_status"], "ConfigurationAndSWHardeningNeeded");
    let advisories = report["advisory_ids"].as_array().unwrap();
    for id in ["INTEL-SA-00289", "INTEL-SA-00615"] {
        assert!(advisories.iter().any(|a| a == id), "{id}: {report:#}");
    }
    let report_data = report["measurements"]["report_data"].as_str().unwrap();
    assert!(
        report_data.starts_with(&hex::encode("Hello, world!")),
        "{report_data}"
    );
    assert!(report["measurements"]["mr_enclave"].is_string());
}

#[test]
fn outdated_v5_quote_is_rejected_with_no_matching_tcb_level() {
    let (q, c) = (
        vector("tdx/tdx_quote_outdated"),
        vector("tdx/tdx_quote_outdated_collateral.json"),
    );
    let mut args = tdx_quote_args(&q, &c, "1774003274");
    args.push("--json");
    let output = run(&args);
    let report = json(&output);
    assert_eq!(code(&output), 1, "{report:#}");
    assert_eq!(report["verdict"], "rejected");
    assert_eq!(error_kinds(&report), ["tcb_level_not_found"], "{report:#}");
    // The quote parsed, so its (unverified) fields are still reported.
    assert!(
        report["measurements"]["mr_service_td"].is_string(),
        "{report:#}"
    );
}

#[test]
fn failed_verification_still_shows_the_fields_marked_unverified() {
    let (q, c) = (
        vector("tdx/tdx_quote_outdated"),
        vector("tdx/tdx_quote_outdated_collateral.json"),
    );
    let output = run(&tdx_quote_args(&q, &c, "1774003274"));
    let text = stdout(&output);
    assert_eq!(code(&output), 1, "{text}");
    assert!(text.starts_with("REJECTED"), "{text}");
    assert!(text.contains("UNVERIFIED"), "{text}");
    assert!(text.contains("tcb_level_not_found"), "{text}");
}

#[test]
fn debug_td_is_rejected_by_the_default_policy() {
    let (q, c) = (
        vector("tdx/tdx_quote_4.dat"),
        vector("tdx/DERIVED_dcapqvl_collateral_SPR_E4.json"),
    );
    let mut args = tdx_quote_args(&q, &c, "1688173200");
    args.push("--json");
    let output = run(&args);
    let report = json(&output);
    assert_eq!(code(&output), 1, "{report:#}");
    assert_eq!(report["verified"], true, "{report:#}");
    assert!(
        error_kinds(&report).contains(&"debug_not_allowed".to_string()),
        "{report:#}"
    );
}

#[test]
fn debug_td_is_accepted_by_a_policy_allowing_debug() {
    let policy = temp_file(
        "allow-debug.toml",
        b"version = 1\n[tdx]\nallow_debug = true\n",
    );
    let (q, c) = (
        vector("tdx/tdx_quote_4.dat"),
        vector("tdx/DERIVED_dcapqvl_collateral_SPR_E4.json"),
    );
    let mut args = tdx_quote_args(&q, &c, "1688173200");
    args.extend(["--policy", &policy, "--json"]);
    let output = run(&args);
    let report = json(&output);
    assert_eq!(code(&output), 0, "{report:#}");
    assert_eq!(report["tcb_status"], "UpToDate");
}

#[test]
fn hex_text_quote_is_accepted() {
    let (q, c) = (
        vector("tdx/quote_hex.txt"),
        vector("tdx/quote_collateral.json"),
    );
    let mut args = tdx_quote_args(&q, &c, "1759388630");
    args.push("--json");
    let output = run(&args);
    let report = json(&output);
    assert_eq!(code(&output), 0, "{report:#}");
    assert_eq!(report["verdict"], "accepted");
    assert_eq!(report["tcb_status"], "UpToDate");
}

#[test]
fn quote_that_does_not_parse_is_rejected_not_bad_input() {
    let quote = std::fs::read(vector("tdx/tdx_quote")).unwrap();
    let truncated = temp_file("truncated_quote", &quote[..600]);
    let c = vector("tdx/tdx_quote_collateral.json");
    let mut args = tdx_quote_args(&truncated, &c, TDX_AT);
    args.push("--json");
    let output = run(&args);
    let report = json(&output);
    assert_eq!(code(&output), 1, "{report:#}");
    assert_eq!(error_kinds(&report), ["truncated"], "{report:#}");
    assert_eq!(report["measurements"], serde_json::json!({}));
}

#[test]
fn without_at_the_current_time_applies_and_the_2025_collateral_has_expired() {
    let (q, c) = (
        vector("tdx/tdx_quote"),
        vector("tdx/tdx_quote_collateral.json"),
    );
    let output = run(&["tdx", &q, "--collateral", &c, "--json"]);
    let report = json(&output);
    assert_eq!(code(&output), 1, "{report:#}");
    assert_eq!(error_kinds(&report), ["collateral_expired"], "{report:#}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let at = report["verification_time"].as_i64().unwrap();
    assert!((now - at).abs() < 600, "verification_time {at}, now {now}");
}

#[test]
fn quote_checked_before_its_collateral_window_is_rejected_as_not_yet_valid() {
    let (q, c) = (
        vector("tdx/tdx_quote"),
        vector("tdx/tdx_quote_collateral.json"),
    );
    let mut args = tdx_quote_args(&q, &c, "1700000000");
    args.push("--json");
    let output = run(&args);
    let report = json(&output);
    assert_eq!(code(&output), 1, "{report:#}");
    assert_eq!(
        error_kinds(&report),
        ["collateral_not_yet_valid"],
        "{report:#}"
    );
}

#[test]
fn policy_pinning_other_mrtd_and_rtmr0_reports_both_failures() {
    let policy = format!(
        "version = 1\n[tdx]\nmrtd = [\"{}\"]\nrtmr0 = [\"{}\"]\n",
        "00".repeat(48),
        "11".repeat(48)
    );
    let policy = temp_file("pin-other.toml", policy.as_bytes());
    let (q, c) = (
        vector("tdx/tdx_quote"),
        vector("tdx/tdx_quote_collateral.json"),
    );
    let mut args = tdx_quote_args(&q, &c, TDX_AT);
    args.extend(["--policy", &policy, "--json"]);
    let output = run(&args);
    let report = json(&output);
    assert_eq!(code(&output), 1, "{report:#}");
    assert_eq!(report["verified"], true);
    assert_eq!(
        error_kinds(&report),
        ["measurement_not_allowed", "measurement_not_allowed"],
        "{report:#}"
    );
    let messages = report["errors"].to_string();
    assert!(
        messages.contains("mrtd") && messages.contains("rtmr0"),
        "{messages}"
    );
}

#[test]
fn example_policy_pinning_the_quote_accepts_it() {
    let policy = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/examples/tdx.toml");
    let policy = policy.to_string_lossy().into_owned();
    let (q, c) = (
        vector("tdx/tdx_quote"),
        vector("tdx/tdx_quote_collateral.json"),
    );
    let mut args = tdx_quote_args(&q, &c, TDX_AT);
    args.extend(["--policy", &policy]);
    let output = run(&args);
    let text = stdout(&output);
    assert_eq!(code(&output), 0, "{text}");
    assert!(text.starts_with("ACCEPTED"), "{text}");
}

#[test]
fn tdx_only_policy_refuses_sgx_evidence() {
    let policy = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/examples/tdx.toml");
    let policy = policy.to_string_lossy().into_owned();
    let (q, c) = (
        vector("tdx/sgx_quote"),
        vector("tdx/sgx_quote_collateral.json"),
    );
    let mut args = tdx_quote_args(&q, &c, "1752919277");
    args.extend(["--policy", &policy, "--json"]);
    let output = run(&args);
    let report = json(&output);
    assert_eq!(code(&output), 1, "{report:#}");
    assert_eq!(error_kinds(&report), ["platform_not_allowed"], "{report:#}");
}

#[test]
fn quote_with_flipped_report_data_is_rejected_and_its_fields_marked_unverified() {
    let mut quote = std::fs::read(vector("tdx/tdx_quote")).unwrap();
    // REPORTDATA of a TD 1.0 body: header 48 + 520.
    quote[48 + 520] ^= 0x01;
    let flipped = temp_file("flipped_report_data_quote", &quote);
    let c = vector("tdx/tdx_quote_collateral.json");
    let output = run(&tdx_quote_args(&flipped, &c, TDX_AT));
    let text = stdout(&output);
    assert_eq!(code(&output), 1, "{text}");
    assert!(text.contains("UNVERIFIED"), "{text}");
    assert!(text.contains("[quote_signature_invalid]"), "{text}");
    assert!(text.contains(&mrtd_of("tdx/tdx_quote")), "{text}");
}

#[test]
fn hex_quote_with_prefix_and_line_breaks_verifies_like_the_binary() {
    let quote = std::fs::read(vector("tdx/tdx_quote")).unwrap();
    let mut text = String::from("0x");
    for line in hex::encode(&quote).as_bytes().chunks(64) {
        text.push_str(std::str::from_utf8(line).unwrap());
        text.push_str("\r\n");
    }
    let hex_file = temp_file("tdx_quote.hex", text.as_bytes());
    let c = vector("tdx/tdx_quote_collateral.json");
    let mut args = tdx_quote_args(&hex_file, &c, TDX_AT);
    args.push("--json");
    let from_hex = json(&run(&args));
    let q = vector("tdx/tdx_quote");
    let mut args = tdx_quote_args(&q, &c, TDX_AT);
    args.push("--json");
    let from_binary = json(&run(&args));
    assert_eq!(from_hex["verdict"], "accepted", "{from_hex:#}");
    assert_eq!(from_hex, from_binary);
}

// ---------------------------------------------------------------------- SEV-SNP

#[test]
fn milan_hex_report_is_accepted_with_its_vcek() {
    let (r, v) = (vector("snp/report_milan.hex"), vector("snp/vcek_milan.der"));
    // 2025-06-15, inside the VCEK's validity (2023-04-03..2030).
    let output = run(&["snp", &r, "--vcek", &v, "--at", "1750000000", "--json"]);
    let report = json(&output);
    assert_eq!(code(&output), 0, "{report:#}");
    assert_eq!(report["verdict"], "accepted");
    assert_eq!(report["platform"], "snp");
    assert_eq!(report["root"], "AMD ARK");
    let report_bytes = hex::decode(
        std::fs::read_to_string(vector("snp/report_milan.hex"))
            .unwrap()
            .trim(),
    )
    .unwrap();
    assert_eq!(
        report["measurements"]["measurement"],
        hex::encode(&report_bytes[0x90..0xC0])
    );
    assert_eq!(report["details"]["generation"], "Milan");
}

#[test]
fn debug_snp_guest_is_rejected_by_the_default_policy() {
    let (r, v) = (vector("snp/attestation.bin"), vector("snp/vcek.testcer"));
    // 2022-10-01, inside vcek.testcer's validity (2022-09-24..2029).
    let output = run(&["snp", &r, "--vcek", &v, "--at", "1664582400", "--json"]);
    let report = json(&output);
    assert_eq!(code(&output), 1, "{report:#}");
    assert_eq!(report["verified"], true, "{report:#}");
    assert!(
        error_kinds(&report).contains(&"debug_not_allowed".to_string()),
        "{report:#}"
    );
    assert_eq!(
        report["measurements"]["report_data"]
            .as_str()
            .unwrap()
            .get(..10),
        Some("0102030405")
    );
}

#[test]
fn snp_human_report_marks_a_bad_signature_and_keeps_the_fields() {
    let text = std::fs::read_to_string(vector("snp/report_milan.hex")).unwrap();
    let mut bytes = hex::decode(text.trim()).unwrap();
    bytes[21] ^= 0x80;
    let flipped = temp_file("flipped_milan.bin", &bytes);
    let v = vector("snp/vcek_milan.der");
    let output = run(&["snp", &flipped, "--vcek", &v, "--at", "1750000000"]);
    let human = stdout(&output);
    assert_eq!(code(&output), 1, "{human}");
    assert!(human.starts_with("REJECTED"), "{human}");
    assert!(human.contains("UNVERIFIED"), "{human}");
    assert!(human.contains("report_signature_invalid"), "{human}");
}

#[test]
fn explicit_milan_chain_is_accepted_and_a_genoa_chain_is_a_generation_mismatch() {
    let (r, v) = (vector("snp/report_milan.hex"), vector("snp/vcek_milan.der"));
    let milan = vector("snp/ask_ark_milan.pem");
    let output = run(&[
        "snp",
        &r,
        "--vcek",
        &v,
        "--chain",
        &milan,
        "--at",
        "1750000000",
        "--json",
    ]);
    assert_eq!(code(&output), 0, "{}", stdout(&output));
    let genoa = vector("snp/ask_ark_genoa.pem");
    let output = run(&[
        "snp",
        &r,
        "--vcek",
        &v,
        "--chain",
        &genoa,
        "--at",
        "1750000000",
        "--json",
    ]);
    let report = json(&output);
    assert_eq!(code(&output), 1, "{report:#}");
    assert_eq!(error_kinds(&report), ["generation_mismatch"], "{report:#}");
}

#[test]
fn pem_vcek_given_as_vlek_is_accepted() {
    let der = std::fs::read(vector("snp/vcek_milan.der")).unwrap();
    let pem = pem::encode(&pem::Pem::new("CERTIFICATE", der));
    let cert = temp_file("vcek_milan.pem", pem.as_bytes());
    let r = vector("snp/report_milan.hex");
    let output = run(&["snp", &r, "--vlek", &cert, "--at", "1750000000"]);
    assert_eq!(code(&output), 0, "{}", stdout(&output));
}

#[test]
fn truncated_snp_report_is_rejected_with_its_parse_error() {
    let report = std::fs::read(vector("snp/attestation.bin")).unwrap();
    let short = temp_file("short_report.bin", &report[..1000]);
    let v = vector("snp/vcek.testcer");
    let output = run(&["snp", &short, "--vcek", &v, "--at", "1664582400", "--json"]);
    let report = json(&output);
    assert_eq!(code(&output), 1, "{report:#}");
    assert_eq!(error_kinds(&report), ["truncated"], "{report:#}");
}

#[test]
fn snp_checked_after_the_vcek_expired_is_rejected() {
    let (r, v) = (vector("snp/report_milan.hex"), vector("snp/vcek_milan.der"));
    // 2040-01-01: after the VCEK's notAfter (2030).
    let output = run(&["snp", &r, "--vcek", &v, "--at", "2208988800", "--json"]);
    let report = json(&output);
    assert_eq!(code(&output), 1, "{report:#}");
    assert_eq!(error_kinds(&report), ["certificate_expired"], "{report:#}");
}

// ---------------------------------------------------------------------- simulated TEE

fn sim_fixture(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data/sim")
        .join(name);
    assert!(path.exists(), "missing fixture {}", path.display());
    path.to_string_lossy().into_owned()
}

/// Inside the simulated fixtures' validity (tests/data/sim/README.md).
const SIM_AT: &str = "1767225600";

#[test]
fn simulated_evidence_is_an_untrusted_root_without_the_simulated_anchors() {
    let (q, c) = (
        sim_fixture("tdx_quote.bin"),
        sim_fixture("tdx_collateral.json"),
    );
    let mut args = tdx_quote_args(&q, &c, SIM_AT);
    args.push("--json");
    let output = run(&args);
    let report = json(&output);
    assert_eq!(code(&output), 1, "{report:#}");
    assert_eq!(error_kinds(&report), ["untrusted_root"], "{report:#}");
    assert_eq!(report["simulated"], false);

    let (r, v) = (sim_fixture("snp_report.bin"), sim_fixture("snp_vcek.der"));
    let output = run(&["snp", &r, "--vcek", &v, "--at", SIM_AT, "--json"]);
    let report = json(&output);
    assert_eq!(code(&output), 1, "{report:#}");
    assert_eq!(error_kinds(&report), ["untrusted_root"], "{report:#}");
}

#[cfg(not(feature = "sim"))]
#[test]
fn production_build_has_no_simulated_root_option() {
    let (q, c) = (
        sim_fixture("tdx_quote.bin"),
        sim_fixture("tdx_collateral.json"),
    );
    let mut args = tdx_quote_args(&q, &c, SIM_AT);
    args.push("--trust-simulated-root");
    assert_eq!(code(&run(&args)), 2);
}

#[cfg(feature = "sim")]
#[test]
fn trusted_simulated_tdx_evidence_is_flagged_and_refused_by_the_default_policy() {
    let (q, c) = (
        sim_fixture("tdx_quote.bin"),
        sim_fixture("tdx_collateral.json"),
    );
    let mut args = tdx_quote_args(&q, &c, SIM_AT);
    args.push("--trust-simulated-root");
    let output = run(&args);
    let text = stdout(&output);
    assert_eq!(code(&output), 1, "{text}");
    assert!(
        text.starts_with("REJECTED: Intel TDX evidence (SIMULATED TEE, NOT HARDWARE)"),
        "{text}"
    );
    assert!(text.contains("*** SIMULATED ***"), "{text}");
    assert!(text.contains("[simulated_evidence_not_allowed]"), "{text}");
}

#[cfg(feature = "sim")]
#[test]
fn trusted_simulated_evidence_is_accepted_only_by_a_policy_allowing_it() {
    let policy = temp_file("allow-sim.toml", b"version = 1\nallow_simulated = true\n");
    let (q, c) = (
        sim_fixture("tdx_quote.bin"),
        sim_fixture("tdx_collateral.json"),
    );
    let mut args = tdx_quote_args(&q, &c, SIM_AT);
    args.extend(["--trust-simulated-root", "--policy", &policy, "--json"]);
    let output = run(&args);
    let report = json(&output);
    assert_eq!(code(&output), 0, "{report:#}");
    assert_eq!(report["simulated"], true);
    assert_eq!(report["root"], "simulated TEE root (NOT HARDWARE)");

    let (r, v) = (sim_fixture("snp_report.bin"), sim_fixture("snp_vcek.der"));
    let output = run(&[
        "snp",
        &r,
        "--vcek",
        &v,
        "--at",
        SIM_AT,
        "--trust-simulated-root",
        "--policy",
        &policy,
        "--json",
    ]);
    let report = json(&output);
    assert_eq!(code(&output), 0, "{report:#}");
    assert_eq!(report["simulated"], true);
    assert_eq!(report["details"]["generation"], "Genoa");
}

#[test]
fn json_measurement_keys_are_the_documented_names_in_order() {
    // Read the keys from the text itself: a parsed JSON map need not keep their order.
    let keys = |output: Output| -> Vec<String> {
        let text = stdout(&output);
        let start = text.find("\"measurements\": {").expect("measurements") + 17;
        let end = start + text[start..].find('}').expect("end of measurements");
        text[start..end]
            .lines()
            .filter_map(|line| line.trim().strip_prefix('"'))
            .map(|rest| rest.split('"').next().unwrap().to_string())
            .collect()
    };
    let td10 = [
        "mrtd",
        "rtmr0",
        "rtmr1",
        "rtmr2",
        "rtmr3",
        "report_data",
        "td_attributes",
        "xfam",
        "mr_config_id",
        "mr_owner",
        "mr_owner_config",
        "tee_tcb_svn",
        "mr_seam",
        "mr_signer_seam",
        "seam_attributes",
    ];
    let (q, c) = (
        vector("tdx/tdx_quote"),
        vector("tdx/tdx_quote_collateral.json"),
    );
    let mut args = tdx_quote_args(&q, &c, TDX_AT);
    args.push("--json");
    assert_eq!(keys(run(&args)), td10);

    let (q, c) = (
        vector("tdx/tdx_quote_outdated"),
        vector("tdx/tdx_quote_outdated_collateral.json"),
    );
    let mut args = tdx_quote_args(&q, &c, "1774003274");
    args.push("--json");
    let mut td15: Vec<&str> = td10.to_vec();
    td15.extend(["tee_tcb_svn2", "mr_service_td"]);
    assert_eq!(keys(run(&args)), td15);

    let (q, c) = (
        vector("tdx/sgx_quote"),
        vector("tdx/sgx_quote_collateral.json"),
    );
    let mut args = tdx_quote_args(&q, &c, "1752919277");
    args.push("--json");
    assert_eq!(
        keys(run(&args)),
        [
            "mr_enclave",
            "mr_signer",
            "isv_prod_id",
            "isv_svn",
            "attributes",
            "misc_select",
            "cpu_svn",
            "report_data"
        ]
    );

    let (r, v) = (vector("snp/report_milan.hex"), vector("snp/vcek_milan.der"));
    let output = run(&["snp", &r, "--vcek", &v, "--at", "1750000000", "--json"]);
    assert_eq!(
        keys(output),
        [
            "measurement",
            "report_data",
            "host_data",
            "family_id",
            "image_id",
            "id_key_digest",
            "author_key_digest",
            "policy",
            "vmpl",
            "guest_svn",
            "reported_tcb",
            "current_tcb",
            "committed_tcb",
            "launch_tcb",
            "chip_id",
            "report_id",
            "report_id_ma"
        ]
    );
}

// ---------------------------------------------------------------------- bad input (exit 2)

#[test]
fn missing_quote_file_is_bad_input() {
    let c = vector("tdx/tdx_quote_collateral.json");
    let output = run(&tdx_quote_args("/nonexistent/quote", &c, TDX_AT));
    assert_eq!(code(&output), 2);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("/nonexistent/quote"), "{stderr}");
}

#[test]
fn bad_input_with_json_prints_nothing_on_stdout() {
    let c = vector("tdx/tdx_quote_collateral.json");
    let mut args = tdx_quote_args("/nonexistent/quote", &c, TDX_AT);
    args.push("--json");
    let output = run(&args);
    assert_eq!(code(&output), 2);
    assert!(stdout(&output).is_empty(), "{}", stdout(&output));
}

#[test]
fn missing_vcek_file_is_bad_input() {
    let r = vector("snp/attestation.bin");
    let output = run(&["snp", &r, "--vcek", "/nonexistent/vcek.der"]);
    assert_eq!(code(&output), 2);
}

#[test]
fn malformed_collateral_file_is_bad_input() {
    let q = vector("tdx/tdx_quote");
    let collateral = temp_file("bad_collateral.json", b"{\"not\": \"collateral\"");
    let output = run(&tdx_quote_args(&q, &collateral, TDX_AT));
    assert_eq!(code(&output), 2);
}

#[test]
fn malformed_policy_file_is_bad_input() {
    let policy = temp_file("bad_policy.toml", b"this is [ not toml");
    let (q, c) = (
        vector("tdx/tdx_quote"),
        vector("tdx/tdx_quote_collateral.json"),
    );
    let mut args = tdx_quote_args(&q, &c, TDX_AT);
    args.extend(["--policy", &policy]);
    let output = run(&args);
    assert_eq!(code(&output), 2);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("policy"), "{stderr}");
}

#[test]
fn certificate_that_is_neither_der_nor_pem_is_bad_input() {
    let r = vector("snp/attestation.bin");
    let cert = temp_file("not_a_cert", b"hello");
    let output = run(&["snp", &r, "--vcek", &cert]);
    assert_eq!(code(&output), 2);
}

#[test]
fn chain_file_without_certificates_is_bad_input() {
    let (r, v) = (vector("snp/report_milan.hex"), vector("snp/vcek_milan.der"));
    let chain = temp_file("empty_chain.pem", b"no certificates here\n");
    let output = run(&["snp", &r, "--vcek", &v, "--chain", &chain]);
    assert_eq!(code(&output), 2);
}

#[test]
fn missing_required_argument_is_a_usage_error() {
    let q = vector("tdx/tdx_quote");
    let output = run(&["tdx", &q]);
    assert_eq!(code(&output), 2);
    assert!(String::from_utf8_lossy(&output.stderr).contains("--collateral"));
}

#[test]
fn non_numeric_time_is_a_usage_error() {
    let (q, c) = (
        vector("tdx/tdx_quote"),
        vector("tdx/tdx_quote_collateral.json"),
    );
    let output = run(&tdx_quote_args(&q, &c, "yesterday"));
    assert_eq!(code(&output), 2);
}

#[test]
fn help_documents_the_exit_codes() {
    let output = run(&["tdx", "--help"]);
    assert_eq!(code(&output), 0);
    let text = stdout(&output);
    for needle in ["0  accepted", "1  rejected", "2  the check could not run"] {
        assert!(text.contains(needle), "{needle}: {text}");
    }
}

// ---------------------------------------------------------------------- bench

#[test]
fn bench_tdx_prints_cold_and_warm_rates() {
    let (q, c) = (
        vector("tdx/tdx_quote"),
        vector("tdx/tdx_quote_collateral.json"),
    );
    let output = run(&[
        "bench",
        "tdx",
        &q,
        "--collateral",
        &c,
        "--at",
        TDX_AT,
        "--iterations",
        "3",
    ]);
    let text = stdout(&output);
    assert_eq!(code(&output), 0, "{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    for (line, label) in lines.iter().zip(["cold", "warm"]) {
        let words: Vec<&str> = line.split(' ').collect();
        assert_eq!(words.len(), 3, "{line}");
        assert_eq!(words[0], label);
        assert!(words[1].parse::<f64>().unwrap() > 0.0, "{line}");
        assert_eq!(words[2], "verifications/s");
    }
}

#[test]
fn bench_snp_prints_one_rate() {
    let (r, v) = (vector("snp/report_milan.hex"), vector("snp/vcek_milan.der"));
    let output = run(&[
        "bench",
        "snp",
        &r,
        "--vcek",
        &v,
        "--at",
        "1750000000",
        "--iterations",
        "3",
    ]);
    let text = stdout(&output);
    assert_eq!(code(&output), 0, "{text}");
    let words: Vec<&str> = text.trim().split(' ').collect();
    assert_eq!(words.len(), 3, "{text}");
    assert_eq!(words[0], "verify");
    assert!(words[1].parse::<f64>().unwrap() > 0.0, "{text}");
    assert_eq!(words[2], "verifications/s");
}

#[test]
fn bench_on_evidence_that_fails_verification_prints_no_rate() {
    let quote = std::fs::read(vector("tdx/tdx_quote")).unwrap();
    let truncated = temp_file("bench_truncated_quote", &quote[..100]);
    let c = vector("tdx/tdx_quote_collateral.json");
    let output = run(&[
        "bench",
        "tdx",
        &truncated,
        "--collateral",
        &c,
        "--at",
        TDX_AT,
        "--iterations",
        "3",
    ]);
    assert_eq!(code(&output), 1);
    assert!(!stdout(&output).contains("verifications/s"));
}

#[test]
fn bench_with_zero_iterations_is_a_usage_error() {
    let (q, c) = (
        vector("tdx/tdx_quote"),
        vector("tdx/tdx_quote_collateral.json"),
    );
    let output = run(&[
        "bench",
        "tdx",
        &q,
        "--collateral",
        &c,
        "--at",
        TDX_AT,
        "--iterations",
        "0",
    ]);
    assert_eq!(code(&output), 2);
    assert!(stdout(&output).is_empty());
}
