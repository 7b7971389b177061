//! An in-process enclave (simulated TDX, RA-TLS on a loopback port) serving the committed
//! successor model (greedy "abc" -> "defgh") through the OpenAI API, for the CLI and gateway
//! tests; and temporary policy files that are removed again.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic,
    dead_code
)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use cocoon_attestation::policy::Policy;
use cocoon_attestation::ratls::{RaTlsVerifier, StaticCollateral, VerifierConfig};
use cocoon_attestation::sim::tdx::SimTdx;
use cocoon_client::{Connector, Timeouts};
use cocoon_enclave::identity::{Identity, IdentityConfig};
use cocoon_enclave::inference::{ort_library_path, workspace_root, Engine, EngineConfig};
use cocoon_enclave::openai::{self, ApiConfig, OpenAi};
use cocoon_enclave::rotation::IdentityResolver;
use cocoon_enclave::server::{serve, Enclave, Router, ServerHandle, ServerOptions};
use cocoon_enclave::sim::SimAttester;
use cocoon_enclave::Attester;
use tokio::net::TcpListener;

/// Every wait of a test.
pub const STEP: Duration = Duration::from_secs(30);

pub const SIM_POLICY: &str = "version = 1\nallow_simulated = true\n";

pub fn ort_available() -> bool {
    let path = ort_library_path();
    if path.is_file() {
        return true;
    }
    if std::env::var_os("COCOON_REQUIRE_ORT").is_some() {
        panic!(
            "COCOON_REQUIRE_ORT is set but the ONNX Runtime library is missing at {} (run scripts/setup)",
            path.display()
        );
    }
    use std::io::Write;
    let _ = std::io::stderr().write_all(
        format!(
            "\n!!!!!!!! SKIPPED: ONNX Runtime library not found at {} — run scripts/setup !!!!!!!!\n",
            path.display()
        )
        .as_bytes(),
    );
    false
}

pub fn timeouts() -> Timeouts {
    Timeouts {
        connect: STEP,
        handshake: STEP,
        request: STEP,
    }
}

/// A verifier trusting the simulated roots under `policy_toml`.
pub fn sim_verifier(policy_toml: &str) -> Arc<RaTlsVerifier> {
    let policy = Policy::from_toml(policy_toml).unwrap();
    let mut config = VerifierConfig::new(policy);
    let collateral = SimTdx::new().unwrap().collateral().unwrap();
    config.collateral = Some(Arc::new(StaticCollateral::new(vec![collateral]).unwrap()));
    Arc::new(RaTlsVerifier::new(config).unwrap())
}

pub struct Api {
    pub handle: ServerHandle,
    pub state: Arc<OpenAi>,
}

impl Api {
    pub fn addr(&self) -> String {
        self.handle.local_addr().to_string()
    }

    /// The enclave's /metrics, read over a verified connection of our own.
    pub async fn metrics(&self) -> String {
        let connector = Connector::new(sim_verifier(SIM_POLICY), None).unwrap();
        let mut conn = tokio::time::timeout(
            STEP,
            connector.connect_addr(self.handle.local_addr(), timeouts()),
        )
        .await
        .expect("connect in time")
        .expect("attested connection");
        let (status, body) = conn.get("/metrics").await.unwrap();
        assert!(status.is_success());
        String::from_utf8(body.to_vec()).unwrap()
    }

    /// How many chat completion requests reached the enclave's API (any status).
    pub async fn chat_requests(&self) -> u64 {
        self.count("cocoon_requests_total{route=\"/v1/chat/completions\"")
            .await
    }

    /// How many chat completion requests the enclave answered with 200.
    pub async fn chat_requests_ok(&self) -> u64 {
        self.count("cocoon_requests_total{route=\"/v1/chat/completions\",status=\"200\"}")
            .await
    }

    async fn count(&self, prefix: &str) -> u64 {
        self.metrics()
            .await
            .lines()
            .filter(|l| l.starts_with(prefix))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    }
}

/// The enclave with the successor model, `identity` (claims) settings and `api` settings; the
/// claims advertise the API's HPKE key (none when `api.hpke_mode` is off).
pub async fn start_with_api(mut identity: IdentityConfig, api: ApiConfig) -> Api {
    let attester: Arc<dyn Attester> = Arc::new(SimAttester::tdx().unwrap());
    let state = OpenAi::new(api);
    identity.hpke_public_key = state.hpke_public_key().cloned();
    let identity = Identity::issue_now(attester.as_ref(), &identity).unwrap();
    let resolver = Arc::new(IdentityResolver::new(identity));
    let engine = Engine::load(EngineConfig {
        model_dir: workspace_root().join("tests/data/models/successor"),
        threads: 1,
        max_sequences: 4,
        queue_capacity: 16,
        max_context: None,
        execution_provider: cocoon_enclave::inference::ExecutionProvider::Cpu,
    })
    .unwrap();
    state.set_engine(engine);
    let router = openai::mount(Router::new(), Arc::clone(&state));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let handle = serve(
        listener,
        Enclave {
            attester,
            resolver,
            client_verifier: None,
        },
        router,
        ServerOptions::default(),
    )
    .unwrap();
    Api { handle, state }
}

pub async fn start() -> Api {
    start_with_api(IdentityConfig::default(), ApiConfig::default()).await
}

/// A policy file in a fresh temporary directory, removed on drop (one per call: tests run in
/// parallel).
pub struct PolicyFile {
    dir: PathBuf,
    path: PathBuf,
}

impl std::ops::Deref for PolicyFile {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.path
    }
}

impl Drop for PolicyFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn policy_file(toml: &str) -> PolicyFile {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("cocoon-client-test-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("policy.toml");
    std::fs::write(&path, toml).unwrap();
    PolicyFile { dir, path }
}

/// A policy allowing simulated evidence but pinning an MRTD the simulated TD does not have.
pub const OTHER_MRTD_POLICY: &str = "version = 1\nallow_simulated = true\n[tdx]\nmrtd = [\"abababababababababababababababababababababababababababababababababababababababababababababababab\"]\n";

/// A gateway (`cocoon_client::gateway`) serving on a loopback port, stopped on drop.
pub struct RunningGateway {
    pub addr: std::net::SocketAddr,
    pub gateway: Arc<cocoon_client::gateway::Gateway>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Drop for RunningGateway {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A gateway to `upstream`, verifying under `policy` (simulated roots trusted when
/// `trust_simulated`), sealing bodies automatically.
pub async fn start_gateway(
    upstream: cocoon_client::gateway::Upstream,
    policy: &str,
    trust_simulated: bool,
) -> RunningGateway {
    use cocoon_client::gateway::{
        serve, Gateway, GatewayConfig, DEFAULT_MAX_REQUEST_BYTES, DEFAULT_MAX_RESPONSE_BYTES,
    };
    let gateway = Gateway::new(GatewayConfig {
        upstream,
        connector: Connector::new(sim_verifier(policy), None).unwrap(),
        api_key: None,
        timeouts: timeouts(),
        trust_simulated,
        sealing: cocoon_client::sealed::Sealing::Auto,
        max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
        max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(serve(listener, Arc::clone(&gateway)));
    RunningGateway {
        addr,
        gateway,
        task,
    }
}
