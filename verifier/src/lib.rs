//! The auditor's verifier CLI. Exit codes: 0 accepted, 1 rejected, 2 bad input or usage.

use std::ffi::OsString;
use std::process::ExitCode;

/// Runs the CLI with the given arguments (the first is the program name).
pub fn run<I: IntoIterator<Item = OsString>>(args: I) -> ExitCode {
    let _ = args.into_iter().count();
    eprintln!("cocoon-verify: not yet implemented");
    ExitCode::from(2)
}
