//! The `cocoon-host` command line. `serve` runs the agent in the foreground; the other
//! subcommands talk to it over the management API (`STATE_DIR/host.sock`), except `check`, which
//! only validates specs.
//!
//! Exit status: 0 success, 1 refused (a bad spec, an error answer from the agent), 2 usage or
//! connection errors.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use http::Method;

use crate::error::{io, Error, Result};
use crate::supervisor::{RestartPolicy, Supervisor};
use crate::{api, doctor, measure, qemu, spec};

#[derive(Debug, Parser)]
#[command(
    name = "cocoon-host",
    version,
    about = "The cocoon host agent: validates VM specs, supervises VMs, publishes expected measurements"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Args)]
struct StateArg {
    /// The agent's state folder (state files, logs, locks, host.sock).
    #[arg(long, value_name = "DIR")]
    state: PathBuf,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the agent in the foreground: validate the specs, re-adopt or start every VM, serve the
    /// management API on STATE/host.sock. SIGTERM/SIGINT stop the agent and leave the VMs running
    /// for re-adoption, unless --stop-vms-on-exit.
    Serve {
        #[command(flatten)]
        state: StateArg,
        /// Stop every VM when the agent exits.
        #[arg(long)]
        stop_vms_on_exit: bool,
        /// Also serve the management API on this loopback address (plain HTTP; every request needs
        /// `Authorization: Bearer TOKEN` with the token of --api-token-file).
        #[arg(long, value_name = "127.0.0.1:PORT")]
        api_listen: Option<std::net::SocketAddr>,
        /// The bearer token of --api-listen (default STATE/api.token; created 0600 with a random
        /// token when absent).
        #[arg(long, value_name = "FILE", requires = "api_listen")]
        api_token_file: Option<PathBuf>,
        /// VM spec files (one VM per file, or a fleet with [[vm]]).
        #[arg(required = true, value_name = "SPEC_FILE")]
        specs: Vec<PathBuf>,
    },
    /// Validate spec files only: exit 0, or 1 with the reason.
    Check {
        #[arg(required = true, value_name = "SPEC_FILE")]
        specs: Vec<PathBuf>,
    },
    /// Every VM's state.
    List(StateArg),
    /// One VM's state.
    Status(NameArgs),
    /// Start a VM (also clears `failed`).
    Start(NameArgs),
    /// Stop a VM (SIGTERM, then SIGKILL after the spec's timeout).
    Stop(NameArgs),
    /// Stop, then start a VM.
    Restart(NameArgs),
    /// The last lines of a VM's log.
    Logs {
        #[command(flatten)]
        vm: NameArgs,
        /// How many lines.
        #[arg(long, default_value_t = api::DEFAULT_LOG_LINES)]
        lines: usize,
    },
    /// The enclave's /health (over TLS, not verified: a liveness probe).
    Health(NameArgs),
    /// The VM's expected measurements (JSON).
    Measure(NameArgs),
    /// A policy TOML that accepts exactly this VM (for `cocoon attest --policy`).
    Policy(NameArgs),
    /// Print the QEMU argv (one argument per line) of a vm/snp/tdx VM of a spec file.
    QemuArgs {
        /// The VM's name.
        name: String,
        /// The spec file.
        spec: PathBuf,
        /// State folder the paths point into (QMP socket, serial log).
        #[arg(long, value_name = "DIR", default_value = "/var/lib/cocoon-host")]
        state: PathBuf,
        /// Accelerator of the `vm` platform (default: kvm when /dev/kvm opens read-write).
        #[arg(long, value_parser = ["kvm", "tcg"])]
        accel: Option<String>,
    },
    /// What this host has and lacks for each platform, with the fix (exit 0 when --platform is ready).
    Doctor {
        /// The platform to judge the exit status by.
        #[arg(long, value_parser = ["process", "vm", "snp", "tdx", "gpu"], default_value = "process")]
        platform: String,
        /// A GPU's PCI address to check (vfio-pci binding, IOMMU group).
        #[arg(long, value_name = "PCI")]
        gpu: Option<String>,
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, clap::Args)]
struct NameArgs {
    /// The VM's name.
    name: String,
    #[command(flatten)]
    state: StateArg,
}

/// Runs the CLI.
pub fn run<I: IntoIterator<Item = OsString>>(args: I) -> u8 {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return u8::try_from(e.exit_code()).unwrap_or(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cocoon-host: {e}");
            return 2;
        }
    };
    runtime.block_on(dispatch(cli.command))
}

fn print(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    if !text.ends_with('\n') {
        let _ = out.write_all(b"\n");
    }
    let _ = out.flush();
}

async fn dispatch(command: Command) -> u8 {
    let (state, method, path, shape) = match command {
        Command::Serve {
            state,
            stop_vms_on_exit,
            api_listen,
            api_token_file,
            specs,
        } => {
            let tcp = api_listen.map(|addr| {
                let token = api_token_file.unwrap_or_else(|| state.state.join("api.token"));
                (addr, token)
            });
            return match serve(&state.state, &specs, stop_vms_on_exit, tcp).await {
                Ok(()) => 0,
                Err(e @ Error::Spec { .. }) => {
                    eprintln!("cocoon-host: refused: {e}");
                    1
                }
                Err(e) => {
                    eprintln!("cocoon-host: {e}");
                    2
                }
            };
        }
        Command::Check { specs } => {
            return match spec::load(&specs, &spec::Validation::for_this_host()) {
                Ok(vms) => {
                    for vm in vms {
                        print(&format!("ok: {} ({})", vm.name, vm.spec_file.display()));
                    }
                    0
                }
                Err(e) => {
                    eprintln!("cocoon-host: refused: {e}");
                    1
                }
            }
        }
        Command::QemuArgs {
            name,
            spec,
            state,
            accel,
        } => return qemu_args(&name, &spec, &state, accel.as_deref()),
        Command::Doctor {
            platform,
            gpu,
            json,
        } => return doctor_command(&platform, gpu.as_deref(), json),
        Command::List(state) => (state.state, Method::GET, "/v1/vms".to_owned(), Shape::Json),
        Command::Status(a) => (
            a.state.state,
            Method::GET,
            vm_path(&a.name, ""),
            Shape::Json,
        ),
        Command::Start(a) => (
            a.state.state,
            Method::POST,
            vm_path(&a.name, "/start"),
            Shape::Json,
        ),
        Command::Stop(a) => (
            a.state.state,
            Method::POST,
            vm_path(&a.name, "/stop"),
            Shape::Json,
        ),
        Command::Restart(a) => (
            a.state.state,
            Method::POST,
            vm_path(&a.name, "/restart"),
            Shape::Json,
        ),
        Command::Logs { vm, lines } => (
            vm.state.state,
            Method::GET,
            format!("{}?lines={lines}", vm_path(&vm.name, "/logs")),
            Shape::Lines,
        ),
        Command::Health(a) => (
            a.state.state,
            Method::GET,
            vm_path(&a.name, "/health"),
            Shape::Json,
        ),
        Command::Measure(a) => (
            a.state.state,
            Method::GET,
            vm_path(&a.name, "/measurements"),
            Shape::Json,
        ),
        Command::Policy(a) => (
            a.state.state,
            Method::GET,
            vm_path(&a.name, "/policy"),
            Shape::Policy,
        ),
    };
    match api::call(&state, method, &path).await {
        Ok((status, value)) if status.is_success() => {
            match shape {
                Shape::Json => print(&serde_json::to_string_pretty(&value).unwrap_or_default()),
                Shape::Policy => print(
                    value
                        .get("policy")
                        .and_then(|v| v.as_str())
                        .unwrap_or_default(),
                ),
                Shape::Lines => {
                    if let Some(lines) = value.get("lines").and_then(|v| v.as_array()) {
                        for line in lines {
                            print(line.as_str().unwrap_or_default());
                        }
                    }
                }
            }
            0
        }
        Ok((status, value)) => {
            eprintln!(
                "cocoon-host: {status}: {}",
                value
                    .get("error")
                    .and_then(|v| v.as_str())
                    .unwrap_or("error")
            );
            1
        }
        Err(e) => {
            eprintln!("cocoon-host: {e}");
            2
        }
    }
}

fn qemu_args(name: &str, file: &Path, state: &Path, accel: Option<&str>) -> u8 {
    // (exit status, message) on failure: 1 for a refused spec, 2 for everything else.
    let run = || -> std::result::Result<Vec<OsString>, (u8, String)> {
        let other = |e: Error| (2, e.to_string());
        let refused = |e: Error| match e {
            e @ Error::Spec { .. } => (1, format!("refused: {e}")),
            e => (2, e.to_string()),
        };
        let meta = std::fs::metadata(file).map_err(|e| other(io(file)(e)))?;
        if meta.len() > spec::MAX_SPEC_BYTES {
            return Err((2, format!("{} is too large", file.display())));
        }
        let text = std::fs::read_to_string(file).map_err(|e| other(io(file)(e)))?;
        let specs = spec::parse(file, &text).map_err(refused)?;
        let mut vm = specs
            .into_iter()
            .find(|s| s.name == name)
            .ok_or_else(|| (2, format!("no VM named {name:?} in {}", file.display())))?;
        if vm.image.is_some() {
            spec::apply_image(file, &mut vm).map_err(refused)?;
        }
        let vm = qemu::QemuVm::from_spec(file, &vm).map_err(refused)?;
        let accel = match accel {
            Some("kvm") => qemu::Accel::Kvm,
            Some(_) => qemu::Accel::Tcg,
            None => qemu::Accel::detect(Path::new("/")),
        };
        Ok(qemu::argv(
            &vm,
            &qemu::HostPaths::in_state_dir(state, &vm.name),
            accel,
        ))
    };
    match run() {
        Ok(args) => {
            use std::os::unix::ffi::OsStrExt;
            let mut out = std::io::stdout().lock();
            for arg in args {
                let _ = out.write_all(arg.as_bytes());
                let _ = out.write_all(b"\n");
            }
            let _ = out.flush();
            0
        }
        Err((code, message)) => {
            eprintln!("cocoon-host: {message}");
            code
        }
    }
}

fn doctor_command(platform: &str, gpu: Option<&str>, json: bool) -> u8 {
    let fs = doctor::HostFs::new("/");
    let report = doctor::examine(&fs, &doctor::Options::for_this_host(gpu));
    if json {
        print(&serde_json::to_string_pretty(&report).unwrap_or_default());
    } else {
        print(&report.to_text());
    }
    if report.ready(platform) {
        0
    } else {
        1
    }
}

enum Shape {
    Json,
    Policy,
    Lines,
}

fn vm_path(name: &str, suffix: &str) -> String {
    // Names are checked by the agent; anything outside the name alphabet cannot match a route.
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("/v1/vms/{safe}{suffix}")
}

fn create_state_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io(dir))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io(dir))
}

async fn serve(
    state_dir: &Path,
    specs: &[PathBuf],
    stop_vms_on_exit: bool,
    tcp_api: Option<(std::net::SocketAddr, PathBuf)>,
) -> Result<()> {
    // Everything is validated before anything starts.
    let vms = spec::load(specs, &spec::Validation::for_this_host())?;
    create_state_dir(state_dir)?;
    let _agent_lock = crate::supervisor::lock_file(&state_dir.join("host.lock"))?;
    // The TCP API's address and token are checked before any VM starts.
    let tcp = match tcp_api {
        Some((addr, token_file)) => {
            let token = api::ApiToken::load_or_create(&token_file)?;
            let listener = api::bind_tcp(addr).await?;
            let local = listener
                .local_addr()
                .map_err(|e| Error::Api(e.to_string()))?;
            print(&format!(
                "cocoon-host: management API also on http://{local} (bearer token in {})",
                token_file.display()
            ));
            Some((listener, token))
        }
        None => None,
    };
    let mut measured = Vec::new();
    for vm in vms {
        let m = measure::compute(&vm)?;
        measured.push((vm, m));
    }
    let sup = Arc::new(Supervisor::new(
        state_dir,
        measured,
        RestartPolicy::default(),
    )?);
    for state in sup.list() {
        if state.pid.is_some() {
            eprintln!(
                "cocoon-host: re-adopted {} (pid {})",
                state.name,
                state.pid.unwrap_or_default()
            );
        }
    }
    let s = Arc::clone(&sup);
    let failures = tokio::task::spawn_blocking(move || s.start_all())
        .await
        .map_err(|e| Error::Api(e.to_string()))?;
    for (name, e) in failures {
        eprintln!("cocoon-host: {name}: {e}");
    }
    let stop = Arc::new(AtomicBool::new(false));
    sup.spawn_monitor(Arc::clone(&stop));
    let listener = api::bind(state_dir)?;
    print(&format!(
        "cocoon-host: listening on {} ({} VMs)",
        api::socket_path(state_dir).display(),
        sup.names().len()
    ));
    api::serve(listener, tcp, Arc::clone(&sup), shutdown_signal()).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = std::fs::remove_file(api::socket_path(state_dir));
    if stop_vms_on_exit {
        let s = Arc::clone(&sup);
        let _ = tokio::task::spawn_blocking(move || s.stop_all()).await;
        eprintln!("cocoon-host: stopped; VMs stopped");
    } else {
        eprintln!("cocoon-host: stopped; VMs left running for re-adoption");
    }
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => std::future::pending().await,
    }
}
