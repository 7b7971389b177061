//! `cocoon-verify`: thin entry point over [`cocoon_verify::run`].

fn main() -> std::process::ExitCode {
    cocoon_verify::run(std::env::args_os())
}
