//! The `cocoon-enclave` binary: startup errors name what is missing; with the simulated TEE it
//! serves and says where.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]

use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cocoon-enclave"))
        .args(args)
        .output()
        .expect("running cocoon-enclave")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn an_explicit_tsm_attester_on_a_host_without_it_names_configfs_tsm() {
    if std::path::Path::new("/sys/kernel/config/tsm/report").is_dir() {
        return; // a real TEE guest: nothing is missing
    }
    let output = run(&["serve", "--listen", "127.0.0.1:0", "--attester", "tsm"]);
    assert_eq!(output.status.code(), Some(2));
    let text = stderr(&output);
    assert!(text.contains("/sys/kernel/config/tsm/report"), "{text}");
    assert!(text.contains("CONFIG_TSM_REPORTS"), "{text}");
}

#[test]
fn an_unknown_attester_is_refused_with_the_list_of_backends() {
    let output = run(&["serve", "--listen", "127.0.0.1:0", "--attester", "tpm"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("sev-guest"), "{}", stderr(&output));
}

#[test]
fn a_certificate_lifetime_over_a_day_is_refused() {
    let output = run(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--cert-lifetime",
        "86401",
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("--cert-lifetime"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_config_digest_that_is_not_32_hex_bytes_is_refused() {
    let output = run(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--config-digest",
        "abcd",
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("expected 32"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn an_unknown_key_type_is_refused() {
    let output = run(&["serve", "--listen", "127.0.0.1:0", "--key", "rsa"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("ed25519"), "{}", stderr(&output));
}

#[test]
fn mutual_mode_requires_a_policy() {
    let output = run(&["serve", "--listen", "127.0.0.1:0", "--mutual"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("--policy"), "{}", stderr(&output));
}

#[cfg(not(feature = "sim"))]
#[test]
fn the_simulated_attester_is_not_in_a_production_build() {
    let output = run(&["serve", "--listen", "127.0.0.1:0", "--attester", "sim-tdx"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("feature `sim`"),
        "{}",
        stderr(&output)
    );
}

#[cfg(feature = "sim")]
#[test]
fn with_the_simulated_attester_it_serves_and_prints_its_address_and_key() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_cocoon-enclave"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--attester",
            "sim-snp",
            "--key",
            "ed25519",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    // The first line comes once the certificate is issued and the socket bound.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(std::time::Duration::from_secs(20));
    child.kill().unwrap();
    let _ = child.wait();
    let line = line.expect("a startup line within 20 s");
    assert!(
        line.starts_with("cocoon-enclave: listening on 127.0.0.1:"),
        "{line}"
    );
    assert!(line.contains("sim-snp"), "{line}");
    assert!(line.contains("server-auth mode"), "{line}");
}
