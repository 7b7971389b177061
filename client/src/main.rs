//! `cocoon`: verify an enclave (`attest`) and ask it (`chat`) — see [`cocoon_client::cli`].

fn main() -> std::process::ExitCode {
    let mut out = std::io::stdout();
    let mut err = std::io::stderr();
    std::process::ExitCode::from(cocoon_client::cli::run(
        std::env::args_os(),
        &mut out,
        &mut err,
    ))
}
