//! `cocoon-verify cert` and `cocoon-verify endpoint`: verdicts, exit codes, JSON keys and the
//! human report, on certificates the enclave issues on the simulated TEE and on a live server.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]

use serde_json::Value;
use std::path::PathBuf;

mod support;
use support::{code, json, run};

fn error_kinds(report: &Value) -> Vec<String> {
    report["errors"]
        .as_array()
        .expect("errors is a list")
        .iter()
        .map(|e| e["kind"].as_str().expect("kind").to_string())
        .collect()
}

fn temp_file(name: &str, contents: &[u8]) -> String {
    // One file per call: tests run in parallel and several write the same name (a shared path
    // was read half-written once).
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("cocoon-verify-ratls-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path.to_string_lossy().into_owned()
}

fn vector(relative: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/vectors")
        .join(relative);
    assert!(path.exists(), "missing test vector {}", path.display());
    path.to_string_lossy().into_owned()
}

#[test]
fn a_certificate_without_ra_tls_extensions_is_rejected_with_exit_1() {
    // A genuine AMD VCEK: a well-formed X.509 certificate, but no evidence or claims.
    let output = run(&["cert", &vector("snp/vcek_milan.der"), "--json"]);
    let report = json(&output);
    assert_eq!(code(&output), 1, "{report:#}");
    assert_eq!(report["verdict"], "rejected");
    assert_eq!(report["verified"], false);
    assert!(report["claims"].is_null());
    assert!(!error_kinds(&report).is_empty(), "{report:#}");
}

#[test]
fn an_unreadable_or_non_certificate_file_is_bad_input_with_exit_2() {
    let output = run(&["cert", "/nonexistent/cert.pem"]);
    assert_eq!(code(&output), 2);
    let garbage = temp_file("garbage.pem", b"-----BEGIN NOTHING-----\n");
    let output = run(&["cert", &garbage]);
    assert_eq!(
        code(&output),
        2,
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn an_unreachable_endpoint_is_bad_input_with_exit_2() {
    // Port 1 on loopback: nothing listens there.
    let output = run(&["endpoint", "127.0.0.1:1", "--timeout", "5"]);
    assert_eq!(
        code(&output),
        2,
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("127.0.0.1:1"));
}

#[cfg(feature = "sim")]
mod sim {
    use super::*;
    use cocoon_attestation::sim::tdx::SimTdReport;
    use cocoon_enclave::identity::{unix_now, Identity, IdentityConfig};
    use cocoon_enclave::rotation::IdentityResolver;
    use cocoon_enclave::server::{serve, Enclave, Router, ServerHandle, ServerOptions};
    use cocoon_enclave::sim::SimAttester;
    use cocoon_enclave::Attester;
    use std::sync::Arc;

    const SIM_POLICY: &[u8] = b"version = 1\nallow_simulated = true\n";

    fn certificate(attester: &dyn Attester) -> (Identity, String, String) {
        let identity = Identity::issue_now(attester, &IdentityConfig::default()).unwrap();
        let der = temp_file(
            &format!("cert-{}.der", hex::encode(&identity.spki_sha256()[..6])),
            identity.certificate(),
        );
        let pem = pem::encode(&pem::Pem::new(
            "CERTIFICATE",
            identity.certificate().to_vec(),
        ));
        let pem = temp_file(
            &format!("cert-{}.pem", hex::encode(&identity.spki_sha256()[..6])),
            pem.as_bytes(),
        );
        (identity, der, pem)
    }

    #[test]
    fn a_sim_tdx_certificate_is_accepted_with_its_claims_and_measurements() {
        let (identity, der, pem) = certificate(&SimAttester::tdx().unwrap());
        let policy = temp_file("sim.toml", SIM_POLICY);
        for file in [&der, &pem] {
            let output = run(&[
                "cert",
                file,
                "--policy",
                &policy,
                "--trust-simulated-root",
                "--json",
            ]);
            let report = json(&output);
            assert_eq!(code(&output), 0, "{report:#}");
            assert_eq!(report["verdict"], "accepted");
            assert_eq!(report["platform"], "sim-tdx");
            assert_eq!(report["simulated"], true);
            assert_eq!(report["tcb_status"], "UpToDate");
            assert_eq!(report["advisory_ids"], serde_json::json!([]));
            assert_eq!(report["errors"], serde_json::json!([]));
            assert_eq!(
                report["measurements"]["mrtd"],
                hex::encode(SimTdReport::default().mr_td)
            );
            assert_eq!(
                report["claims"]["tls_spki_sha256"],
                hex::encode(identity.spki_sha256())
            );
            assert_eq!(report["claims_verified"], true);
            assert_eq!(
                report["certificate"]["spki_sha256"],
                hex::encode(identity.spki_sha256())
            );
        }
        let output = run(&["cert", &pem, "--policy", &policy, "--trust-simulated-root"]);
        let text = String::from_utf8_lossy(&output.stdout);
        assert_eq!(code(&output), 0, "{text}");
        assert!(
            text.starts_with("ACCEPTED: RA-TLS certificate, sim-tdx (SIMULATED TEE, NOT HARDWARE)"),
            "{text}"
        );
        assert!(text.contains("claims (verified)"), "{text}");
        assert!(
            text.contains(&hex::encode(identity.spki_sha256())),
            "{text}"
        );
    }

    #[test]
    fn a_sim_snp_certificate_is_accepted() {
        let (_, der, _) = certificate(&SimAttester::snp().unwrap());
        let policy = temp_file("sim.toml", SIM_POLICY);
        let output = run(&[
            "cert",
            &der,
            "--policy",
            &policy,
            "--trust-simulated-root",
            "--json",
        ]);
        let report = json(&output);
        assert_eq!(code(&output), 0, "{report:#}");
        assert_eq!(report["platform"], "sim-snp");
        assert!(report["measurements"]["measurement"].is_string());
    }

    #[test]
    fn simulated_certificates_need_the_flag_and_a_policy_allowing_them() {
        // SNP: no collateral involved (without the flag a TDX quote has none to check with).
        let (_, der, _) = certificate(&SimAttester::snp().unwrap());
        let policy = temp_file("sim.toml", SIM_POLICY);
        let output = run(&["cert", &der, "--policy", &policy, "--json"]);
        let report = json(&output);
        assert_eq!(code(&output), 1, "{report:#}");
        assert_eq!(
            error_kinds(&report),
            vec!["simulated_evidence_not_allowed".to_string()]
        );
        let output = run(&["cert", &der, "--trust-simulated-root", "--json"]);
        let report = json(&output);
        assert_eq!(code(&output), 1, "{report:#}");
        assert_eq!(
            error_kinds(&report),
            vec!["simulated_evidence_not_allowed".to_string()]
        );
        // The unverified claims are still shown, marked as such.
        assert_eq!(report["claims_verified"], false);
        assert!(report["claims"]["tls_spki_sha256"].is_string());
    }

    #[test]
    fn a_certificate_checked_after_its_expiry_is_rejected_as_expired() {
        let (identity, der, _) = certificate(&SimAttester::tdx().unwrap());
        let policy = temp_file("sim.toml", SIM_POLICY);
        let after = (identity.expires_at() + 1).to_string();
        let output = run(&[
            "cert",
            &der,
            "--policy",
            &policy,
            "--trust-simulated-root",
            "--at",
            &after,
            "--json",
        ]);
        let report = json(&output);
        assert_eq!(code(&output), 1, "{report:#}");
        assert_eq!(
            error_kinds(&report),
            vec!["certificate_expired".to_string()]
        );
    }

    #[test]
    fn every_policy_failure_of_a_debug_td_is_listed() {
        let attester = SimAttester::tdx_with(SimTdReport::default().debug(true)).unwrap();
        let (_, der, _) = certificate(&attester);
        let policy = temp_file("sim.toml", SIM_POLICY);
        let output = run(&[
            "cert",
            &der,
            "--policy",
            &policy,
            "--trust-simulated-root",
            "--json",
        ]);
        let report = json(&output);
        assert_eq!(code(&output), 1, "{report:#}");
        assert!(
            error_kinds(&report).contains(&"debug_not_allowed".to_string()),
            "{report:#}"
        );
    }

    fn fixture(name: &str) -> String {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/data/ratls")
            .join(name)
            .to_string_lossy()
            .into_owned()
    }

    /// `SIM_NOW`, inside the committed fixtures' validity.
    const SIM_NOW: &str = "1767225600";

    #[test]
    fn the_committed_sim_fixtures_verify_at_sim_now() {
        let policy = temp_file("sim.toml", SIM_POLICY);
        for (name, platform) in [
            ("ours_sim_snp_ed25519.der", "sim-snp"),
            ("ours_sim_tdx_ed25519.der", "sim-tdx"),
        ] {
            let output = run(&[
                "cert",
                &fixture(name),
                "--policy",
                &policy,
                "--trust-simulated-root",
                "--at",
                SIM_NOW,
                "--json",
            ]);
            let report = json(&output);
            assert_eq!(code(&output), 0, "{name}: {report:#}");
            assert_eq!(report["platform"], platform);
            assert_eq!(report["claims"]["model"]["blake3"], "bb".repeat(32));
            assert_eq!(report["claims"]["config_digest"], "cc".repeat(32));
        }
    }

    #[test]
    fn a_cocoon_format_certificate_is_accepted_with_its_user_claims_and_no_claims_of_ours() {
        let policy = temp_file("sim.toml", SIM_POLICY);
        let output = run(&[
            "cert",
            &fixture("cocoon_sim_cert.der"),
            "--policy",
            &policy,
            "--trust-simulated-root",
            "--at",
            SIM_NOW,
            "--json",
        ]);
        let report = json(&output);
        assert_eq!(code(&output), 0, "{report:#}");
        assert_eq!(report["format"], "cocoon");
        assert!(report["claims"].is_null(), "{report:#}");
        assert!(report["user_claims"].is_string(), "{report:#}");
        assert!(
            report["certificate"]["spki_sha256"].is_string(),
            "{report:#}"
        );
        assert_eq!(
            report["measurements"]["mrtd"],
            hex::encode(SimTdReport::default().mr_td)
        );
    }

    #[test]
    fn a_committed_fixture_after_its_validity_is_expired() {
        let policy = temp_file("sim.toml", SIM_POLICY);
        // SIM_NOW + 6601: one second past notAfter (SIM_NOW + 6600).
        let output = run(&[
            "cert",
            &fixture("ours_sim_snp_ed25519.der"),
            "--policy",
            &policy,
            "--trust-simulated-root",
            "--at",
            "1767232201",
            "--json",
        ]);
        let report = json(&output);
        assert_eq!(code(&output), 1, "{report:#}");
        assert_eq!(
            error_kinds(&report),
            vec!["certificate_expired".to_string()]
        );
    }

    fn start_server(
        runtime: &tokio::runtime::Runtime,
        attester: Arc<dyn Attester>,
    ) -> ServerHandle {
        runtime.block_on(async {
            let resolver = Arc::new(IdentityResolver::new(
                Identity::issue(
                    attester.as_ref(),
                    &IdentityConfig::default(),
                    unix_now().unwrap(),
                )
                .unwrap(),
            ));
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            serve(
                listener,
                Enclave {
                    attester,
                    resolver,
                    client_verifier: None,
                },
                Router::new(),
                ServerOptions::default(),
            )
            .unwrap()
        })
    }

    #[test]
    fn a_live_sim_endpoint_is_accepted_and_fresh_with_a_nonce() {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let server = start_server(&runtime, Arc::new(SimAttester::snp().unwrap()));
        let addr = server.local_addr().to_string();
        let policy = temp_file("sim.toml", SIM_POLICY);
        let output = run(&[
            "endpoint",
            &addr,
            "--policy",
            &policy,
            "--trust-simulated-root",
            "--nonce",
            "--json",
        ]);
        let report = json(&output);
        assert_eq!(code(&output), 0, "{report:#}");
        assert_eq!(report["verdict"], "accepted");
        assert_eq!(report["platform"], "sim-snp");
        assert_eq!(report["endpoint"]["address"], addr.as_str());
        assert_eq!(report["endpoint"]["fresh"], true);
        let nonce = report["endpoint"]["nonce"].as_str().unwrap().to_string();
        assert_eq!(nonce.len(), 64);
        assert_eq!(report["claims"]["nonce"], nonce.as_str());
        assert!(report["certificate"]["spki_sha256"].is_string());

        let output = run(&[
            "endpoint",
            &addr,
            "--policy",
            &policy,
            "--trust-simulated-root",
        ]);
        let text = String::from_utf8_lossy(&output.stdout);
        assert_eq!(code(&output), 0, "{text}");
        assert!(
            text.starts_with(&format!("ACCEPTED: RA-TLS endpoint {addr}, sim-snp")),
            "{text}"
        );
        runtime.block_on(server.shutdown());
    }

    #[test]
    fn a_live_endpoint_failing_the_policy_is_rejected_with_exit_1() {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let attester = SimAttester::tdx_with(SimTdReport::default().debug(true)).unwrap();
        let server = start_server(&runtime, Arc::new(attester));
        let addr = server.local_addr().to_string();
        let policy = temp_file("sim.toml", SIM_POLICY);
        let output = run(&[
            "endpoint",
            &addr,
            "--policy",
            &policy,
            "--trust-simulated-root",
            "--json",
        ]);
        let report = json(&output);
        assert_eq!(code(&output), 1, "{report:#}");
        assert!(
            error_kinds(&report).contains(&"debug_not_allowed".to_string()),
            "{report:#}"
        );
        runtime.block_on(server.shutdown());
    }
}
