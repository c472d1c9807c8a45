//! Checkpoints, restart and time travel (issue 13), end to end through real `twin serve`
//! processes: SIGKILL and restart with the same `--data`, a damaged checkpoint, Seek
//! into the past, a branch, GoLive. One scripted command log with RunTo drives every run,
//! so the runs are deterministic and can be compared bit for bit.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

use tonic::transport::Channel;
use twin_e2e::{connect, root, scene, twin_binary, wait_paused, within, without_wall};
use twin_proto::v1;
use twin_proto::v1::twin_service_client::TwinServiceClient;

const MIN: u64 = 60_000_000;

/// The `twin` binary, built once for the five servers this test starts.
fn twin() -> &'static Path {
    static TWIN: OnceLock<PathBuf> = OnceLock::new();
    TWIN.get_or_init(twin_binary)
}

/// One step of the script: run to `at`, then apply `action` there.
#[derive(Clone, Copy)]
enum Action {
    BreakDown(&'static str),
    Repair(&'static str),
    Rush(u32),
}

/// The scripted command log: spans several checkpoints (every 10 simulated minutes).
const PART_1: &[(u64, Action)] = &[
    (7 * MIN, Action::BreakDown("mill")),
    (19 * MIN, Action::Repair("mill")),
    (33 * MIN, Action::Rush(5)),
    (47 * MIN, Action::BreakDown("assembly")),
    (61 * MIN, Action::Repair("assembly")),
];
const PART_2: &[(u64, Action)] = &[
    (70 * MIN, Action::Rush(3)),
    (84 * MIN, Action::BreakDown("drill")),
    (95 * MIN, Action::Repair("drill")),
    (120 * MIN, Action::Rush(2)),
];

/// A `twin serve` process; killed (SIGKILL) when dropped.
struct Served {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
}

impl Served {
    fn start(data: &Path, log: PathBuf) -> Served {
        let stderr = std::fs::File::create(&log).expect("log file");
        Served::spawn(Command::new(twin()), data, stderr.into(), log)
    }

    /// A server whose file writes can be made to fail (`prlimit --fsize`): started through
    /// `sh`, which ignores SIGXFSZ for it (an ignored signal stays ignored through exec),
    /// so a write past the limit fails with EFBIG instead of killing it; its stderr is a
    /// pipe (a log file would hit the limit too), returned as the text so far.
    fn start_limitable(data: &Path) -> (Served, std::sync::Arc<std::sync::Mutex<String>>) {
        let mut sh = Command::new("sh");
        sh.args(["-c", "trap '' XFSZ; exec \"$0\" \"$@\""]).arg(twin());
        let mut served = Served::spawn(sh, data, Stdio::piped(), PathBuf::new());
        let stderr = twin_e2e::capture_stderr(&mut served.child);
        (served, stderr)
    }

    fn spawn(mut command: Command, data: &Path, stderr: Stdio, log: PathBuf) -> Served {
        let mut child = command
            .current_dir(root())
            .arg("serve")
            .arg(scene("training-line.ron"))
            .args(["--addr", "127.0.0.1:0", "--paused", "--speed", "max", "--log", "info"])
            .args(["--checkpoint-every", "10m", "--checkpoint-keep", "50"])
            .arg("--data")
            .arg(data)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start twin serve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("read stdout");
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}; see {}", log.display()))
            .parse()
            .expect("address");
        Served { child, addr, log }
    }

    fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn play(
    client: &mut TwinServiceClient<Channel>,
    script: &[(u64, Action)],
) -> Vec<(u64, serde_json::Value)> {
    let mut seen = Vec::new();
    for &(at, action) in script {
        client.run_to(v1::RunToRequest { sim_time_us: at }).await.expect("RunTo");
        let clock = wait_paused(client).await;
        assert_eq!(clock.sim_time_us, at, "RunTo stops exactly at its target");
        match action {
            Action::BreakDown(s) => {
                client
                    .break_down(v1::BreakDownRequest { station_id: s.into(), duration_us: None })
                    .await
                    .expect("BreakDown");
            }
            Action::Repair(s) => {
                client.repair(v1::RepairRequest { station_id: s.into() }).await.expect("Repair");
            }
            Action::Rush(quantity) => {
                client
                    .add_rush_order(v1::AddRushOrderRequest {
                        product_id: "bracket".into(),
                        quantity,
                        due_in_us: None,
                    })
                    .await
                    .expect("AddRushOrder");
            }
        }
        seen.push((at, report(client).await));
    }
    seen
}

/// The report of what the server shows, without the wall time.
async fn report(client: &mut TwinServiceClient<Channel>) -> serde_json::Value {
    let r = client.get_report(v1::GetReportRequest::default()).await.expect("GetReport").into_inner();
    without_wall(&r.report.expect("report").json)
}

/// A full frame: clock, station states (core-derived fields only: the rates are
/// measured by the server over a moving window) and the timeline.
async fn frame(client: &mut TwinServiceClient<Channel>) -> (u64, Vec<(i32, u32, u32)>, v1::Timeline) {
    within("a full frame", async {
        let mut stream = client
            .stream_state(v1::StreamStateRequest { rate_hz: 10, full_frames_only: true })
            .await
            .expect("stream")
            .into_inner();
        let f = stream.message().await.expect("ok").expect("a frame");
        let stations = f.stations.iter().map(|s| (s.state, s.busy_servers, s.queue_length)).collect();
        (f.clock.expect("clock").sim_time_us, stations, f.timeline.expect("timeline in a full frame"))
    })
    .await
}

fn newest_checkpoint(data: &Path) -> PathBuf {
    let mut files: Vec<PathBuf> = std::fs::read_dir(data.join("checkpoints"))
        .expect("checkpoints folder")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "ckpt"))
        .collect();
    files.sort();
    files.pop().expect("a checkpoint")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_after_sigkill_seek_and_branch() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let (data, reference_data) = (tmp.path().join("data"), tmp.path().join("reference"));

    // The reference: the whole script, never interrupted.
    let reference = Served::start(&reference_data, tmp.path().join("reference.log"));
    let mut r = connect(reference.addr).await;
    let seen_1 = play(&mut r, PART_1).await;
    let seen_2 = play(&mut r, PART_2).await;
    let final_reference = report(&mut r).await;

    // The same script, SIGKILLed after part 1, restarted on the same data folder.
    let first = Served::start(&data, tmp.path().join("first.log"));
    let mut c = connect(first.addr).await;
    let killed_at = play(&mut c, PART_1).await;
    let (t_kill, stations_kill, _) = frame(&mut c).await;
    let report_kill = report(&mut c).await;
    assert_eq!(killed_at, seen_1, "same script, same reports");
    first.kill();

    let second = Served::start(&data, tmp.path().join("second.log"));
    let mut c = connect(second.addr).await;
    let (t, stations, timeline) = frame(&mut c).await;
    assert_eq!(t, t_kill, "restart resumes at the last acknowledged command");
    assert_eq!(stations, stations_kill, "station states after the restart");
    assert_eq!(report(&mut c).await, report_kill, "every KPI after the restart");
    assert_eq!(timeline.mode, v1::TimelineMode::Live as i32);
    let held = c.list_checkpoints(v1::ListCheckpointsRequest {}).await.expect("ListCheckpoints").into_inner();
    // Due every 10 simulated minutes, exactly at the multiples; at max speed one due while
    // the previous is still being written is skipped, but each RunTo step of the script
    // (a gap of several round trips) gets at least one.
    assert!(held.checkpoints.len() >= 4, "checkpoints of part 1: {:?}", held.checkpoints);
    assert!(held.checkpoints.iter().all(|k| k.sim_time_us % (10 * MIN) == 0), "{:?}", held.checkpoints);
    assert!(held.checkpoints.windows(2).all(|w| w[0].sim_time_us <= w[1].sim_time_us), "oldest first");
    assert!(held.checkpoints.iter().all(|k| k.bytes > 0 && k.written_unix_ms > 0));
    assert!(second.log_text().contains("restarting from checkpoint"), "{}", second.log_text());

    // Bit-identical continuation.
    let continued = play(&mut c, PART_2).await;
    assert_eq!(continued, seen_2, "the restarted run continues exactly like the uninterrupted one");
    assert_eq!(report(&mut c).await, final_reference);
    second.kill();

    // A damaged newest checkpoint is reported and the previous good one is used.
    let bad = newest_checkpoint(&data);
    let mut bytes = std::fs::read(&bad).expect("read checkpoint");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&bad, bytes).expect("damage checkpoint");
    let third = Served::start(&data, tmp.path().join("third.log"));
    let mut c = connect(third.addr).await;
    assert_eq!(report(&mut c).await, final_reference, "restored from the previous checkpoint plus the log");
    let log = third.log_text();
    let name = bad.file_name().expect("file name").to_string_lossy().into_owned();
    assert!(log.contains("checkpoint unusable") && log.contains(&name) && log.contains("checksum"), "{log}");
    drop(third);

    // Time travel on the reference: every moment seen live is shown again bit for bit.
    let live_report = report(&mut r).await;
    for (at, seen) in seen_1.iter().chain(&seen_2) {
        let sought = r.seek(v1::SeekRequest { sim_time_us: *at }).await.expect("Seek").into_inner();
        let timeline = sought.timeline.expect("timeline");
        assert_eq!(timeline.mode, v1::TimelineMode::History as i32);
        assert_eq!(timeline.view_time_us, *at);
        assert_eq!(&report(&mut r).await, seen, "seek to {at} shows what was seen live");
        let (t, _, timeline) = frame(&mut r).await;
        assert_eq!((t, timeline.view_time_us), (*at, *at));
    }
    let ahead = r.seek(v1::SeekRequest { sim_time_us: 10_000 * MIN }).await.expect_err("future");
    assert_eq!(ahead.code(), tonic::Code::InvalidArgument, "{ahead:?}");

    // A branch from history: a what-if that never touches the live run.
    r.seek(v1::SeekRequest { sim_time_us: 50 * MIN }).await.expect("Seek");
    let history_50 = report(&mut r).await;
    r.seek(v1::SeekRequest { sim_time_us: 33 * MIN }).await.expect("Seek");
    r.break_down(v1::BreakDownRequest { station_id: "saw".into(), duration_us: None })
        .await
        .expect("BreakDown");
    let (_, _, timeline) = frame(&mut r).await;
    assert_eq!(timeline.mode, v1::TimelineMode::Branch as i32);
    assert_eq!(timeline.branch_from_us, 33 * MIN);
    r.run_to(v1::RunToRequest { sim_time_us: 50 * MIN }).await.expect("RunTo in the branch");
    let clock = wait_paused(&mut r).await;
    assert_eq!(clock.sim_time_us, 50 * MIN);
    let branch_report = report(&mut r).await;
    assert_ne!(branch_report, history_50, "the what-if (saw down) differs from history at the same time");
    let back = r.go_live(v1::GoLiveRequest {}).await.expect("GoLive").into_inner();
    let timeline = back.timeline.expect("timeline");
    assert_eq!(timeline.mode, v1::TimelineMode::Live as i32);
    assert_eq!(timeline.view_time_us, timeline.live_time_us);
    assert_eq!(report(&mut r).await, live_report, "the live run is untouched by the branch");
    r.go_live(v1::GoLiveRequest {}).await.expect("GoLive is idempotent");

    // The branch's command never entered the live log: a restart of the reference
    // replays the live log only and gets the live run.
    drop(reference);
    let again = Served::start(&reference_data, tmp.path().join("again.log"));
    let mut r = connect(again.addr).await;
    assert_eq!(report(&mut r).await, live_report, "the durable log holds the live run only");
}

/// Sets the soft file-size limit of process `pid` (`None`: unlimited; the hard limit stays
/// unlimited, so it can be raised again).
fn file_size_limit(pid: u32, bytes: Option<u64>) {
    let soft = bytes.map_or_else(|| "unlimited".to_string(), |b| b.to_string());
    let status = Command::new("prlimit")
        .arg(format!("--pid={pid}"))
        .arg(format!("--fsize={soft}:unlimited"))
        .status()
        .expect("prlimit runs (util-linux)");
    assert!(status.success(), "prlimit --fsize={soft} on {pid}");
}

/// A command the durable log cannot take (here: the disk refuses every write, as a full
/// one does) is refused with UNAVAILABLE and not applied, a Reset likewise; the server
/// carries on, and once writes succeed again the next command is logged and applied, and a
/// restart replays exactly the acknowledged ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_the_durable_log_cannot_take_is_refused_and_not_applied() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let data = tmp.path().join("data");
    let (served, stderr) = Served::start_limitable(&data);
    let mut c = connect(served.addr).await;
    let rush = |quantity| v1::AddRushOrderRequest { product_id: "bracket".into(), quantity, due_in_us: None };
    play(&mut c, &[(5 * MIN, Action::Rush(1))]).await;
    let before = report(&mut c).await;

    file_size_limit(served.child.id(), Some(0));
    let refused = c.add_rush_order(rush(2)).await.expect_err("the log cannot take it");
    assert_eq!(refused.code(), tonic::Code::Unavailable, "{refused:?}");
    assert!(refused.message().contains("commands.redb"), "names the log: {}", refused.message());
    let refused = c.break_down(v1::BreakDownRequest { station_id: "mill".into(), duration_us: None }).await;
    assert_eq!(refused.expect_err("refused").code(), tonic::Code::Unavailable);
    let refused = c.reset(v1::ResetRequest::default()).await.expect_err("a new run cannot be logged either");
    assert_eq!(refused.code(), tonic::Code::Unavailable, "{refused:?}");
    assert_eq!(report(&mut c).await, before, "nothing refused was applied");
    assert!(
        stderr.lock().map(|s| s.contains("command refused")).unwrap_or(false),
        "the server says why: {}",
        stderr.lock().map(|s| s.clone()).unwrap_or_default()
    );

    file_size_limit(served.child.id(), None);
    let placed = c.add_rush_order(rush(3)).await.expect("room again").into_inner();
    assert_eq!(placed.order_id, "rush-2", "refused orders took no id");
    assert_eq!(placed.receipt.expect("receipt").command_seq, 2, "refused commands took no place in the log");
    let after = report(&mut c).await;
    let quantities: Vec<u64> = after["rush_orders"]
        .as_array()
        .expect("rush orders")
        .iter()
        .map(|o| o["quantity"].as_u64().unwrap())
        .collect();
    assert_eq!(quantities, [1, 3]);
    served.kill();

    let restarted = Served::start(&data, tmp.path().join("restarted.log"));
    let mut c = connect(restarted.addr).await;
    assert_eq!(report(&mut c).await, after, "the log holds exactly the acknowledged commands");
}
