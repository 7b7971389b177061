//! Running the `cocoon-verify` binary in the CLI tests: its output, exit code and JSON.
#![allow(clippy::expect_used, clippy::panic, dead_code)]

use serde_json::Value;
use std::process::{Command, Output};

pub fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cocoon-verify"))
        .args(args)
        .output()
        .expect("running cocoon-verify")
}

pub fn code(output: &Output) -> i32 {
    output.status.code().expect("exit code")
}

/// Stdout as JSON; a test failure showing stdout and stderr otherwise.
pub fn json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}
