//! `cocoon-host`: thin entry point over [`cocoon_host::cli::run`].

fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(cocoon_host::cli::run(std::env::args_os()))
}
