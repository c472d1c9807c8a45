//! Support for end-to-end tests: a real twin server on a real port (`127.0.0.1:0`), the
//! generated gRPC client, and helpers to read state streams and run the `twin` binary.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::{Channel, Endpoint};
use twin_proto::v1;
use twin_proto::v1::twin_service_client::TwinServiceClient;
use twin_server::{CommandLogReader, Config, ServeError, TwinServer};

pub mod ingest;
pub mod mosquitto;
pub mod nats;
pub mod prometheus;
pub mod publisher;
pub mod sparkplug;
pub mod trust;

/// How long a helper waits for something the server should do promptly.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// The workspace root (the `twin-e2e` package lives there).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A bundled scene file by path below `scenes/`.
pub fn scene(relative: &str) -> PathBuf {
    root().join("scenes").join(relative)
}

/// A server config for `scene` with the bundled scenes folder; paused, so that tests
/// decide when the clock runs.
pub fn config(scene_file: &str) -> Config {
    Config { scenes_dir: root().join("scenes"), start_paused: true, ..Config::new(scene(scene_file)) }
}

/// A twin server running in this process on its own port.
pub struct TestServer {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), ServeError>>>,
    /// Reads the live run's command log.
    pub log: CommandLogReader,
}

impl TestServer {
    /// Binds `127.0.0.1:0` and serves `config` until [`TestServer::shutdown`].
    pub async fn start(config: Config) -> TestServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("bound address");
        let server = TwinServer::new(config).expect("server starts");
        let log = server.command_log_reader();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.serve(listener, async move {
            let _ = stopped.await;
        }));
        TestServer { addr, stop: Some(stop), task: Some(task), log }
    }

    /// A new client connection.
    pub async fn client(&self) -> TwinServiceClient<Channel> {
        connect(self.addr).await
    }

    /// A raw channel (health, reflection).
    pub async fn channel(&self) -> Channel {
        channel(self.addr).await
    }

    /// Triggers graceful shutdown and waits for the server to return.
    pub async fn shutdown(mut self) -> Result<(), ServeError> {
        self.trigger_shutdown();
        let task = self.task.take().expect("not yet awaited");
        tokio::time::timeout(PATIENCE, task)
            .await
            .expect("server stops within the patience")
            .expect("server task did not panic")
    }

    /// Sends the shutdown signal without waiting.
    pub fn trigger_shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Waits for the server task after [`TestServer::trigger_shutdown`].
    pub async fn join(mut self) -> Result<(), ServeError> {
        let task = self.task.take().expect("not yet awaited");
        tokio::time::timeout(PATIENCE, task)
            .await
            .expect("server stops within the patience")
            .expect("server task did not panic")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.trigger_shutdown();
    }
}

/// A channel to `addr`.
pub async fn channel(addr: SocketAddr) -> Channel {
    Endpoint::from_shared(format!("http://{addr}")).expect("valid uri").connect().await.expect("connect")
}

/// A TwinService client for `addr`.
pub async fn connect(addr: SocketAddr) -> TwinServiceClient<Channel> {
    TwinServiceClient::new(channel(addr).await)
}

/// Awaits `f` or fails the test after [`PATIENCE`].
pub async fn within<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(PATIENCE, f).await.unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// The next frame of a state stream; fails the test on error, end or timeout.
pub async fn next_frame(stream: &mut tonic::Streaming<v1::StateFrame>) -> v1::StateFrame {
    within("a state frame", stream.message()).await.expect("stream ok").expect("stream still open")
}

/// Client-side view of the live state, kept by applying frames (full and delta).
#[derive(Default, Debug, Clone)]
pub struct LiveView {
    pub stations: Vec<v1::StationState>,
    /// Vehicle states by Layout.vehicles index.
    pub vehicles: Vec<v1::VehicleState>,
    /// Parts per hour by flow-link index, for the links the server measures.
    pub flows: std::collections::BTreeMap<u32, f64>,
    pub clock: v1::ClockState,
    pub kpis: v1::KpiSummary,
    pub generation: u64,
    pub last_seq: u64,
}

impl LiveView {
    /// Applies one frame, checking the sequence and delta rules.
    pub fn apply(&mut self, frame: &v1::StateFrame) {
        assert_eq!(frame.seq, self.last_seq + 1, "frame seq has no gaps");
        self.last_seq = frame.seq;
        if frame.full {
            self.stations = frame.stations.clone();
            self.vehicles = frame.vehicles.clone();
            self.flows.clear();
            self.generation = frame.layout_generation;
        } else {
            assert_eq!(
                frame.layout_generation, self.generation,
                "a new generation always comes as a full frame"
            );
            for s in &frame.stations {
                self.stations[s.index as usize] = *s;
            }
            for v in &frame.vehicles {
                self.vehicles[v.index as usize] = *v;
            }
        }
        for f in &frame.flows {
            self.flows.insert(f.link_index, f.parts_per_hour);
        }
        if let Some(k) = frame.kpis {
            self.kpis = k;
        }
        self.clock = frame.clock.expect("every frame has a clock");
    }
}

/// Polls the server until the clock is paused (e.g. after RunTo); returns the clock.
pub async fn wait_paused(client: &mut TwinServiceClient<Channel>) -> v1::ClockState {
    within("the clock to pause", async {
        let mut stream = client
            .stream_state(v1::StreamStateRequest { rate_hz: 60, full_frames_only: true })
            .await
            .expect("stream")
            .into_inner();
        loop {
            let frame = stream.message().await.expect("ok").expect("open");
            let clock = frame.clock.expect("clock");
            if clock.paused {
                return clock;
            }
        }
    })
    .await
}

/// Runs the shell command line `program` (its standard error to `log`) under a watchdog
/// shell, which ends it and removes `dir` when this test process dies, when the program
/// exits, or when a file `dir/stop` appears; so no test leaves a server behind.
pub fn start_watched(program: &str, log: &Path, dir: &Path) -> std::process::Child {
    let command = format!(
        "{program} 2>{log} & p=$!; \
         while kill -0 {parent} 2>/dev/null && kill -0 $p 2>/dev/null && [ ! -e {stop} ]; do sleep 0.2; done; \
         kill $p 2>/dev/null; wait $p; rm -rf {dir}",
        log = log.display(),
        stop = dir.join("stop").display(),
        dir = dir.display(),
        parent = std::process::id(),
    );
    std::process::Command::new("sh")
        .args(["-c", &command])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("start `{program}`: {e}"))
}

/// The `twin` binary of this workspace, built on demand into the same target folder.
pub fn twin_binary() -> PathBuf {
    // Test executables live in <target>/<profile>/deps/.
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe.parent().and_then(Path::parent).expect("target/<profile>").to_path_buf();
    let target_dir = profile_dir.parent().expect("target dir").to_path_buf();
    let release = profile_dir.file_name().is_some_and(|n| n == "release");
    let cargo = option_env!("CARGO").unwrap_or("cargo");
    let mut build = std::process::Command::new(cargo);
    build
        .current_dir(root())
        .args(["build", "--quiet", "--workspace", "--bin", "twin"])
        .env("CARGO_TARGET_DIR", &target_dir);
    if release {
        build.arg("--release");
    }
    let status = build.status().expect("run cargo build");
    assert!(status.success(), "building the twin binary failed");
    profile_dir.join(format!("twin{}", std::env::consts::EXE_SUFFIX))
}

/// The report JSON without `wall_s`, the one field that differs between equal runs.
pub fn without_wall(json: &str) -> serde_json::Value {
    let mut value: serde_json::Value = serde_json::from_str(json).expect("valid JSON");
    value.as_object_mut().expect("report is an object").remove("wall_s").expect("report has wall_s");
    value
}

/// Resident memory of this process, KiB (from /proc/self/status).
pub fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// Collects a child's stderr on a thread, so that a failing test can show what the
/// process logged (the pipe never fills and blocks the child).
pub fn capture_stderr(child: &mut std::process::Child) -> std::sync::Arc<std::sync::Mutex<String>> {
    use std::io::BufRead as _;
    let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let sink = std::sync::Arc::clone(&stderr);
    let err = child.stderr.take().expect("stderr piped");
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(err).lines().map_while(Result::ok) {
            if let Ok(mut s) = sink.lock() {
                s.push_str(&line);
                s.push('\n');
            }
        }
    });
    stderr
}
