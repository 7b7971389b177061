//! `cocoon-verify eventlog` and `cocoon-verify measure verity|config|model` on the vectors in
//! `shared/vectors`: values, JSON keys, exit codes.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]

use std::path::PathBuf;
use std::process::Command;

mod support;
use support::{json, run};

fn vector(relative: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/vectors")
        .join(relative);
    assert!(path.exists(), "missing test vector {}", path.display());
    path.to_string_lossy().into_owned()
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("cocoon-measure-cli-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

const OVMF_RTMR0: &str = "8566f998798db09443b244c62de9a3041fb02e2e6936c4396d784bba2e90177329ec5aba3bb484404f2ab9cc90abe193";
const OVMF_RTMR1: &str = "775b9f6bfe99f8a31396f0d0218e67ffa796d3b96ccf961cbb0deba48c79c00f082cda1a5567c1c16305f1fc210c13c6";
const OVMF_RTMR2: &str = "94eaf7a7bf398ed8d888c91057ae0261802e4f3df084213a76ca7f0b5055ac9d2241de43cd58d9e8b49c503bbf25f34a";
const COCOON_RTMR3: &str = "89f99c3435691f7f418be754b5a5bdfea51c76dd73919268397ce73037e4c8ca7dcab7e5f0500c699e3e81dec078da39";
const SPEC_TREE: &str = "3498b88b6744207aa94ee56d84f5b00c3f126fe14756fb5c1b07a445b9eebb1e";

/// Offset of RTMR0 in a TDX v4 quote: 48-byte header, then the TD report's fields before it.
const RTMR0_AT: usize = 48 + 16 + 48 + 48 + 8 + 8 + 8 + 4 * 48;

#[test]
fn eventlog_json_gives_the_replayed_rtmrs_and_the_events() {
    let out = run(&["eventlog", &vector("eventlog/CCEL_data_ovmf"), "--json"]);
    assert_eq!(out.status.code(), Some(0));
    let v = json(&out);
    assert_eq!(v["rtmr0"], OVMF_RTMR0);
    assert_eq!(v["rtmr1"], OVMF_RTMR1);
    assert_eq!(v["rtmr2"], OVMF_RTMR2);
    assert_eq!(v["rtmr3"], "0".repeat(96));
    assert!(v.get("matches_quote").is_none());
    assert_eq!(v["events"].as_array().unwrap().len(), 20);
    assert_eq!(
        v["events"][11]["details"]["device_paths"][1],
        "File(kernel)"
    );
}

#[test]
fn the_human_report_lists_every_event() {
    let out = run(&["eventlog", &vector("eventlog/CCEL_data_ovmf")]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("20 events"));
    assert!(text.contains("EV_EFI_BOOT_SERVICES_APPLICATION"));
    assert!(text.contains("Exit Boot Services Returned with Success"));
    assert!(text.contains(&format!("rtmr2  {OVMF_RTMR2}")));
}

#[test]
fn a_quote_with_other_rtmrs_is_a_mismatch_and_exits_1() {
    let out = run(&[
        "eventlog",
        &vector("eventlog/CCEL_data"),
        "--quote",
        &vector("tdx/tdx_quote_4.dat"),
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let v = json(&out);
    assert_eq!(v["matches_quote"], false);
    assert_eq!(v["quote_verified"], false);
    let kinds: Vec<&str> = v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["rtmr_mismatch", "rtmr_mismatch"]); // RTMR0 and RTMR1; 2 and 3 are zero in both
}

/// A real quote whose RTMR0-2 are overwritten with the replay: parsed, its RTMRs match; with
/// the collateral its signature no longer verifies (what "parsed only" does not check).
#[test]
fn a_quote_carrying_the_replayed_rtmrs_matches_and_only_collateral_catches_the_edit() {
    let dir = temp_dir("patched");
    let mut quote = std::fs::read(vector("tdx/tdx_quote_4.dat")).unwrap();
    for (i, h) in [OVMF_RTMR0, OVMF_RTMR1, OVMF_RTMR2].iter().enumerate() {
        let at = RTMR0_AT + i * 48;
        quote[at..at + 48].copy_from_slice(&hex::decode(h).unwrap());
    }
    let path = dir.join("quote");
    std::fs::write(&path, &quote).unwrap();
    let q = path.to_str().unwrap();
    let log = vector("eventlog/CCEL_data_ovmf");
    let out = run(&["eventlog", &log, "--quote", q, "--json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(json(&out)["matches_quote"], true);

    let out = run(&[
        "eventlog",
        &log,
        "--quote",
        q,
        "--collateral",
        &vector("tdx/DERIVED_dcapqvl_collateral_SPR_E4.json"),
        "--at",
        "1688173200",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let v = json(&out);
    assert_eq!(v["matches_quote"], false);
    assert_eq!(v["errors"][0]["kind"], "quote_signature_invalid");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_runtime_log_extends_rtmr3_after_the_firmware_log() {
    let dir = temp_dir("runtime");
    let rt = dir.join("rtmr3.log");
    std::fs::write(
        &rt,
        format!("# cocoon runtime measurement log v1\nrtmr3 text cocoon:spec.tree={SPEC_TREE}\nrtmr3 text cocoon:tdx_inited\n"),
    )
    .unwrap();
    let out = run(&[
        "eventlog",
        &vector("eventlog/CCEL_data_ovmf"),
        "--runtime-log",
        rt.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let v = json(&out);
    assert_eq!(v["rtmr3"], COCOON_RTMR3);
    assert_eq!(v["rtmr0"], OVMF_RTMR0);
    assert_eq!(v["runtime_events"].as_array().unwrap().len(), 2);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_log_that_does_not_parse_exits_1_and_a_missing_file_exits_2() {
    let out = run(&["eventlog", &vector("tdx/tdx_quote_4.dat"), "--json"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json(&out)["errors"][0]["kind"], "event_log_spec_id_invalid");
    let out = run(&["eventlog", "/nonexistent/ccel"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn measure_verity_prints_the_vector_root_and_writes_the_hash_device() {
    let dir = temp_dir("verity");
    let hash = dir.join("d8.verity");
    let out = run(&[
        "measure",
        "verity",
        &vector("measure/dm-verity/d8.img"),
        "--salt",
        "00010203040506070809101a1b1c1d1e1f",
        "--uuid",
        "16961134-6412-4db8-96f9-3dd00bd6ffa3",
        "--hash-out",
        hash.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json(&out);
    let want = std::fs::read_to_string(vector("measure/dm-verity/d8.cocoonsalt.roothash")).unwrap();
    assert_eq!(v["root_hash"], want.trim());
    assert_eq!(v["data_blocks"], 8);
    assert_eq!(
        std::fs::read(&hash).unwrap(),
        std::fs::read(vector("measure/dm-verity/d8.cocoonsalt.verity")).unwrap()
    );

    let out = run(&[
        "measure",
        "verity",
        &vector("measure/dm-verity/d8.img"),
        "--salt",
        "-",
        "--no-superblock",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let want = std::fs::read_to_string(vector("measure/dm-verity/d8.nosalt.roothash")).unwrap();
    assert!(String::from_utf8(out.stdout)
        .unwrap()
        .contains(&format!("root hash:        {}", want.trim())));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn measure_verity_refuses_a_bad_salt_or_uuid_as_usage_errors() {
    let img = vector("measure/dm-verity/d8.img");
    assert_eq!(
        run(&["measure", "verity", &img, "--salt", "xyz"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        run(&["measure", "verity", &img, "--uuid", "nope"])
            .status
            .code(),
        Some(2)
    );
    let long = "00".repeat(257);
    assert_eq!(
        run(&["measure", "verity", &img, "--salt", &long])
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn measure_config_gives_the_cocoon_tree_hash_and_rtmr3() {
    let dir = temp_dir("config");
    let status = Command::new("tar")
        .args(["-xf", &vector("measure/cocoon/spec-example.tar"), "-C"])
        .arg(&dir)
        .status()
        .unwrap();
    assert!(status.success());
    let out = run(&["measure", "config", dir.to_str().unwrap(), "--json"]);
    assert_eq!(out.status.code(), Some(0));
    let v = json(&out);
    assert_eq!(v["tree_hash"], SPEC_TREE);
    assert_eq!(v["cocoon_rtmr3"], COCOON_RTMR3);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn measure_model_matches_the_library_digest() {
    let dir = temp_dir("model");
    for (name, bytes) in [
        ("model.json", "{}"),
        ("model.onnx", "onnx"),
        ("tokenizer.json", "t"),
    ] {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
    let out = run(&["measure", "model", dir.to_str().unwrap(), "--json"]);
    assert_eq!(out.status.code(), Some(0));
    let want = cocoon_attestation::model_digest::model_blake3(&dir).unwrap();
    assert_eq!(json(&out)["model_blake3"], hex::encode(want));
    std::fs::remove_file(dir.join("model.onnx")).unwrap();
    let out = run(&["measure", "model", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("model.onnx"));
    std::fs::remove_dir_all(&dir).unwrap();
}
