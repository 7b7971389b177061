//! `cocoon-enclave`: thin entry point over [`cocoon_enclave::cli::run`].

fn main() -> std::process::ExitCode {
    cocoon_enclave::cli::run(std::env::args_os())
}
