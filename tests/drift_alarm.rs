//! Deviation alarms end to end through the real parts: `twin plant` (with or without a
//! drift file) -> mosquitto (started once for this test binary) -> `twin serve --mqtt
//! --data` -> ListAlarms.
//!
//! - A plant whose mill is 20% slower (`scenes/drift/training-slow-mill.ron`): the twin
//!   names the mill within a bounded simulated time.
//! - A plant without drift over a simulated week, both processes at 10000x: no alarm of
//!   any measure (cycle time, throughput, time between failures, repair time). At 10000x
//!   every 10 ms of broker, ingest or scheduling delay is 100 s of plant time, the size
//!   of the effects the throughput and failure tests look for, so this holds only
//!   because readings apply at their plant time: the twin's clock does not pass the
//!   plant's watermark (ARCHITECTURE.md, "Synchronisation"), and the plant alone breaks
//!   down and repairs the stations it reports (`FailuresFrom`).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tonic::transport::Channel;
use twin_e2e::mosquitto::Mosquitto;
use twin_e2e::*;
use twin_proto::v1;
use twin_proto::v1::twin_service_client::TwinServiceClient;

const SCENE: &str = "scenes/training-line.ron";
const HOUR_US: u64 = 3_600_000_000;
const DAY_US: u64 = 24 * HOUR_US;

fn broker() -> &'static Mosquitto {
    static BROKER: OnceLock<Mosquitto> = OnceLock::new();
    BROKER.get_or_init(Mosquitto::start)
}

/// The `twin` binary, built once for this test binary.
fn twin() -> &'static Path {
    static TWIN: OnceLock<std::path::PathBuf> = OnceLock::new();
    TWIN.get_or_init(twin_binary)
}

/// A child process killed on drop, its stderr collected.
struct Process {
    child: Child,
    stderr: Arc<Mutex<String>>,
}

impl Process {
    fn spawn(command: &mut Command) -> Process {
        let mut child = command.stderr(Stdio::piped()).spawn().expect("start twin");
        let stderr = capture_stderr(&mut child);
        Process { child, stderr }
    }

    fn log(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `twin serve` on the training line, fed by MQTT group `group`, at `speed`.
fn serve(data: &Path, group: &str, speed: &str) -> (Process, SocketAddr) {
    let mut command = Command::new(twin());
    command
        .current_dir(root())
        .args(["serve", SCENE, "--addr", "127.0.0.1:0", "--log", "warn", "--speed", speed])
        .args(["--mqtt", &broker().url(), "--group", group, "--stale-after", "120", "--data"])
        .arg(data)
        .stdout(Stdio::piped());
    let mut process = Process::spawn(&mut command);
    let mut line = String::new();
    let stdout = process.child.stdout.take().expect("stdout");
    BufReader::new(stdout).read_line(&mut line).expect("stdout line");
    let addr = match line.trim().strip_prefix("listening on ") {
        Some(a) => a.parse().expect("address"),
        None => panic!("twin serve did not start: `{line}`\n{}", process.log()),
    };
    (process, addr)
}

/// `twin plant` on the training line, publishing to `group` at `speed`.
fn plant(group: &str, speed: &str, extra: &[&str]) -> Process {
    let mut command = Command::new(twin());
    command
        .current_dir(root())
        .args(["plant", SCENE, "--mqtt", &broker().url(), "--group", group, "--speed", speed])
        .args(["--publish-every", "10ms", "--log", "warn", "--seed", "7"])
        .args(extra)
        .stdout(Stdio::null());
    Process::spawn(&mut command)
}

async fn ingest_status(client: &mut TwinServiceClient<Channel>) -> v1::GetIngestStatusResponse {
    client.get_ingest_status(v1::GetIngestStatusRequest {}).await.expect("ingest status").into_inner()
}

async fn alarms(client: &mut TwinServiceClient<Channel>) -> Vec<v1::Alarm> {
    client
        .list_alarms(v1::ListAlarmsRequest { open_only: false })
        .await
        .expect("list alarms")
        .into_inner()
        .alarms
}

/// The twin's simulated time now.
async fn sim_time(client: &mut TwinServiceClient<Channel>) -> u64 {
    let mut stream = client
        .stream_state(v1::StreamStateRequest { rate_hz: 10, full_frames_only: true })
        .await
        .expect("state stream")
        .into_inner();
    next_frame(&mut stream).await.clock.map_or(0, |c| c.sim_time_us)
}

/// The twin's simulated time when station `index` is first shown live.
async fn live_at(client: &mut TwinServiceClient<Channel>, index: usize) -> u64 {
    let mut stream = client
        .stream_state(v1::StreamStateRequest { rate_hz: 20, full_frames_only: true })
        .await
        .expect("state stream")
        .into_inner();
    within("the station's first telemetry", async {
        loop {
            let frame = next_frame(&mut stream).await;
            if frame.stations[index].sync() == v1::SyncStatus::Live {
                return frame.clock.map_or(0, |c| c.sim_time_us);
            }
        }
    })
    .await
}

async fn connected(client: &mut TwinServiceClient<Channel>, log: impl Fn() -> String) {
    let deadline = Instant::now() + PATIENCE;
    while !ingest_status(client).await.mqtt_connected {
        assert!(Instant::now() < deadline, "twin serve never connected to the broker\n{}", log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mill_slowed_by_20_percent_is_named_within_four_simulated_hours() {
    twin();
    let data = tempfile::tempdir().expect("data dir");
    let group = "drift-slow-mill";
    let (twin, addr) = serve(data.path(), group, "600");
    let mut client = connect(addr).await;
    connected(&mut client, || twin.log()).await;
    let plant = plant(group, "600", &["--drift", "scenes/drift/training-slow-mill.ron"]);
    // The bound counts from the mill's first telemetry (its first plant time).
    let started = live_at(&mut client, 1).await;

    // At 600x, four simulated hours are 24 s of wall time.
    let deadline = Instant::now() + Duration::from_secs(60);
    let alarm = loop {
        if let Some(a) = alarms(&mut client).await.into_iter().next() {
            break a;
        }
        assert!(
            Instant::now() < deadline,
            "no alarm after 60 s at 600x: {:#?}\nserve:\n{}\nplant:\n{}",
            ingest_status(&mut client).await,
            twin.log(),
            plant.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let evidence = alarm.evidence.expect("evidence");
    println!(
        "mill +20% through the broker: alarm {:.2} h after the mill's first telemetry; plant {:.1} s vs model {:.1} s; S = {:.2} > h = {:.2} over {} cycles",
        (alarm.raised_at_us - started) as f64 / HOUR_US as f64,
        alarm.plant_value,
        alarm.model_value,
        evidence.statistic,
        evidence.threshold,
        evidence.observations
    );
    assert_eq!(alarm.station_id, "mill", "{alarm:#?}");
    assert_eq!(alarm.measure(), v1::AlarmMeasure::CycleTime);
    assert_eq!(alarm.direction(), v1::AlarmDirection::Above);
    assert!(alarm.plant_value > alarm.model_value * 1.1, "{alarm:#?}");
    assert!(evidence.statistic > evidence.threshold && evidence.arl0 == 1e7, "{evidence:?}");
    assert!(alarm.raised_at_us - started < 4 * HOUR_US, "{alarm:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_simulated_week_without_drift_raises_no_alarm() {
    twin();
    let data = tempfile::tempdir().expect("data dir");
    let group = "drift-none";
    let (twin, addr) = serve(data.path(), group, "10000");
    let mut client = connect(addr).await;
    connected(&mut client, || twin.log()).await;
    let mut plant = plant(group, "10000", &["--until", "7d"]);

    // At 10000x a week is about a minute of wall time; the plant exits at its end.
    let deadline = Instant::now() + Duration::from_secs(240);
    while plant.child.try_wait().expect("plant status").is_none() {
        assert!(Instant::now() < deadline, "twin plant did not finish a week\n{}", plant.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Let the twin take in the last of it.
    let mut applied = ingest_status(&mut client).await.applied;
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = ingest_status(&mut client).await.applied;
        if now == applied {
            break;
        }
        applied = now;
    }
    let status = ingest_status(&mut client).await;
    let at = sim_time(&mut client).await;
    let alarms = alarms(&mut client).await;
    let of = |m: v1::AlarmMeasure| alarms.iter().filter(|a| a.measure() == m).count();
    println!(
        "a week without drift through the broker at 10000x: twin at {:.2} days, {} readings applied ({} held, {} late, {} ahead); alarms: {} cycle time, {} throughput, {} time between failures, {} repair time",
        at as f64 / DAY_US as f64,
        status.applied,
        status.held,
        status.late,
        status.ahead,
        of(v1::AlarmMeasure::CycleTime),
        of(v1::AlarmMeasure::Throughput),
        of(v1::AlarmMeasure::TimeBetweenFailures),
        of(v1::AlarmMeasure::RepairTime),
    );
    assert!(status.applied > 10_000, "the plant's week reached the twin: {status:#?}\n{}", twin.log());
    assert!(at >= 7 * DAY_US - HOUR_US, "the twin followed the plant's week: at {at} µs");
    assert!(alarms.is_empty(), "false alarms: {alarms:#?}\n{status:#?}");
}
