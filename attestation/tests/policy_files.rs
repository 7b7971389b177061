//! Policy files through the public API: the documented examples, canonical form, digests and the
//! `sim` gate. (Evaluation against evidence is tested inside the crate, where verified evidence
//! can be built.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::PathBuf;

use cocoon_attestation::policy::{Policy, TdxPolicy};
use cocoon_attestation::Error;

fn example(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../docs/examples")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn documented_examples_parse_and_have_distinct_digests() {
    let names = [
        "policy.toml",
        "tdx.toml",
        "sgx.toml",
        "snp.toml",
        "default.toml",
    ];
    let digests: BTreeSet<[u8; 32]> = names
        .iter()
        .map(|n| {
            Policy::from_toml(&example(n))
                .unwrap_or_else(|e| panic!("{n}: {e}"))
                .digest()
        })
        .collect();
    assert_eq!(digests.len(), names.len());
}

#[test]
fn default_example_is_the_default_policy() {
    assert_eq!(
        Policy::from_toml(&example("default.toml")).unwrap(),
        Policy::default()
    );
}

#[test]
fn full_example_round_trips_through_its_canonical_form() {
    let p = Policy::from_toml(&example("policy.toml")).unwrap();
    let canonical = p.to_toml().unwrap();
    let again = Policy::from_toml(&canonical).unwrap();
    assert_eq!(again, p);
    assert_eq!(again.digest(), p.digest());
    assert_eq!(again.to_toml().unwrap(), canonical);
}

#[test]
fn typo_in_a_key_of_the_full_example_is_refused() {
    let text = example("policy.toml").replace("\nmrtd = ", "\nmrdt = ");
    let err = Policy::from_toml(&text).unwrap_err();
    assert!(
        matches!(&err, Error::PolicyInvalid { reason } if reason.contains("mrdt")),
        "{err:?}"
    );
}

#[test]
fn truncated_measurement_in_the_full_example_is_refused_naming_the_key() {
    let text = example("policy.toml").replace("\"91eb2b44", "\"");
    let err = Policy::from_toml(&text).unwrap_err();
    assert!(
        matches!(&err, Error::PolicyInvalid { reason } if reason.contains("tdx.mrtd[0]")),
        "{err:?}"
    );
}

#[test]
fn sections_can_be_built_in_code_from_defaults() {
    let mut tdx = TdxPolicy::default();
    tdx.allow_debug = true;
    let p = Policy::default().with_tdx(Some(tdx));
    assert_eq!(
        p,
        Policy::from_toml("version = 1\n[tdx]\nallow_debug = true\n").unwrap()
    );
    assert_ne!(p.digest(), Policy::default().digest());
}

#[cfg(not(feature = "sim"))]
#[test]
fn a_build_without_sim_refuses_a_policy_allowing_simulated_evidence() {
    let err = Policy::from_toml("version = 1\nallow_simulated = true\n").unwrap_err();
    assert!(
        matches!(&err, Error::PolicyInvalid { reason } if reason.contains("simulated")),
        "{err:?}"
    );
}

#[cfg(feature = "sim")]
#[test]
fn a_sim_build_parses_a_policy_allowing_simulated_evidence() {
    let p = Policy::from_toml("version = 1\nallow_simulated = true\n").unwrap();
    assert!(p.allow_simulated());
    assert_ne!(p.digest(), Policy::default().digest());
}

/// Every key of the schema (the canonical form of the full example writes each one) is
/// documented in docs/policy.md and spelt out in the full example.
#[test]
fn every_key_is_documented_and_in_the_full_example() {
    let example_text = example("policy.toml");
    let canonical = Policy::from_toml(&example_text).unwrap().to_toml().unwrap();
    let docs = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/policy.md"),
    )
    .unwrap();
    let keys: Vec<&str> = canonical
        .lines()
        .filter_map(|l| l.split_once(" = ").map(|(k, _)| k))
        .collect();
    assert!(keys.len() > 40, "{keys:?}");
    for key in keys {
        assert!(
            docs.contains(&format!("`{key}`"))
                || key.starts_with("rtmr")
                // [gpu.measurements] keys are measurement block indices.
                || key.trim_matches('"').parse::<u16>().is_ok(),
            "docs/policy.md lacks `{key}`"
        );
        assert!(
            example_text.contains(&format!("\n{key} = ")),
            "docs/examples/policy.toml lacks {key}"
        );
    }
}
