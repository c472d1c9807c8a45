//! Live ingest end to end: the real `twin serve --mqtt` binary, Debian's mosquitto on a
//! free port, and an independent Sparkplug B publisher written in Python (paho-mqtt +
//! protobuf compiled by grpcio-tools' protoc at test time, `tests/python/`), plus the
//! gRPC Ingest stream; SIGKILL in the middle of a stream loses no acknowledged message,
//! and the replayed state equals the state before the kill.
//!
//! One broker per test binary (a plain and a TLS listener); every test has its own
//! Sparkplug group, data folder and twin process. The `twin serve` process and the log
//! readers are in `tests/support/ingest.rs`, the publisher in `tests/support/publisher.rs`.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tonic::transport::Channel;
use twin_core::{Command as CoreCommand, Model, Observation, Observed, Sim};
use twin_e2e::ingest::*;
use twin_e2e::mosquitto::Mosquitto;
use twin_e2e::publisher::Publisher;
use twin_e2e::trust::Pki;
use twin_e2e::*;
use twin_proto::v1;
use twin_proto::v1::twin_service_client::TwinServiceClient;
use twin_server::ingest::log::{self as tlog, Contents, RawRecord};

const SCENE: &str = "scenes/training-line.ron";
const STATIONS: [&str; 5] = ["saw", "mill", "drill", "assembly", "inspection"];
const NODE: &str = "hall";

/// The broker of this binary, with a plain listener and a TLS one (certificate by
/// [`pki`]'s CA).
fn broker() -> &'static Mosquitto {
    static BROKER: OnceLock<Mosquitto> = OnceLock::new();
    BROKER.get_or_init(|| Mosquitto::start_with_tls(pki()))
}

/// The test PKI (rcgen) whose CA signed the broker's TLS certificate.
fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| Pki::new("twin test MQTT CA"))
}

fn broker_url() -> String {
    broker().url()
}

/// The Python publisher as edge node [`NODE`] of `group` with the [`STATIONS`].
fn publisher(group: &str, scenario: &str, extra: &[&str]) -> Publisher {
    Publisher::start(broker().addr, group, NODE, &STATIONS, scenario, extra)
}

async fn station_states(client: &mut TwinServiceClient<Channel>) -> v1::StateFrame {
    let mut stream = client
        .stream_state(v1::StreamStateRequest { rate_hz: 30, full_frames_only: true })
        .await
        .expect("stream")
        .into_inner();
    next_frame(&mut stream).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_independent_sparkplug_publisher_drives_the_twin() {
    let data = tempfile::tempdir().expect("data dir");
    let twin = Twin::mqtt(&broker_url(), data.path(), "session", &["--stale-after", "120"]);
    let mut client = twin.client().await;
    wait_status(&mut client, "the MQTT connection", |s| s.mqtt_connected).await;
    let facts = publisher("session", "session", &[]).finish(90);
    assert_eq!(
        facts["rebirth_requested"],
        true,
        "the twin asked for a rebirth after the gap: {}",
        twin.log()
    );

    let s = wait_status(&mut client, "every message counted", |s| {
        rejected(s, "malformed") >= 1
            && rejected(s, "unknown_device") >= 1
            && rejected(s, "unknown_metric") >= 1
            && s.duplicates >= 1
            && s.sequence_gaps >= 1
            && s.rebirths_requested >= 1
            && s.applied >= 10
    })
    .await;
    assert!(s.received >= 20 && s.committed == s.received, "{s:#?}");
    let source = s.sources.iter().find(|x| x.id == "session/hall").expect("the edge node is a source");
    assert!(source.live && source.kind == "mqtt", "{source:?}");

    // The station reported down is down; the one whose device died is stale, not down.
    // (Readings apply at their plant time, a playout delay after they are sent: wait.)
    let deadline = Instant::now() + Duration::from_secs(30);
    let frame = loop {
        let frame = station_states(&mut client).await;
        if frame.stations[4].sync == v1::SyncStatus::Stale as i32 || Instant::now() > deadline {
            break frame;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(frame.stations[0].state, v1::StationStateKind::Down as i32, "saw is down: {frame:?}");
    assert_ne!(frame.stations[4].state, v1::StationStateKind::Down as i32, "inspection is stale, not down");
    assert_eq!(frame.stations[4].sync, v1::SyncStatus::Stale as i32, "inspection's device died: stale");
    assert_eq!(frame.stations[0].sync, v1::SyncStatus::Live as i32, "saw reports: live");
    let contents = read_log(data.path());
    let commands = tlog::applied_commands(&contents.decisions);
    let stale = commands.iter().any(|(_, c)| {
        matches!(c, CoreCommand::Observe(Observation { station, observed: Observed::Stale }) if station == "inspection")
    });
    assert!(stale, "DDEATH made inspection stale: {commands:?}");
    // The duplicate (same node, bdSeq, seq, timestamp) was applied once.
    assert_eq!(applied_cycles(&contents).iter().filter(|&&d| d == 4242).count(), 1);
    // The malformed payload is in the log too: everything acknowledged is kept.
    let malformed = contents
        .raw
        .iter()
        .any(|(_, r)| matches!(r, RawRecord::Mqtt { payload, .. } if payload.starts_with(&[0xff, 0xff])));
    assert!(malformed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_ingest_acks_commits_and_rejects_malformed_batches_whole() {
    let data = tempfile::tempdir().expect("data dir");
    let twin = Twin::start(data.path(), &["--ingest"]);
    let mut client = twin.client().await;
    let epoch = twin_server::audit::now_unix_ms();
    let state = |seq: u64, station: &str, kind: v1::StationStateKind| v1::IngestMessage {
        sequence: seq,
        timestamp_unix_ms: epoch + seq,
        station: station.into(),
        observed: Some(v1::ingest_message::Observed::State(kind as i32)),
    };
    let batch =
        |messages| v1::IngestBatch { source_id: "mes-1".into(), plant_epoch_unix_ms: epoch, messages };
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let mut acks =
        client.ingest(tokio_stream::wrappers::ReceiverStream::new(rx)).await.expect("Ingest").into_inner();
    tx.send(batch(vec![
        state(1, "mill", v1::StationStateKind::Busy),
        state(2, "drill", v1::StationStateKind::Busy),
        state(3, "mill", v1::StationStateKind::Down),
    ]))
    .await
    .expect("send");
    let ack = acks.message().await.expect("ack").expect("an ack");
    assert_eq!((ack.committed_sequence, ack.accepted, ack.duplicates), (3, 3, 0));
    // A resend overlapping what is committed: the old part is skipped, not applied twice.
    tx.send(batch(vec![
        state(2, "drill", v1::StationStateKind::Busy),
        state(3, "mill", v1::StationStateKind::Down),
        state(4, "saw", v1::StationStateKind::Busy),
    ]))
    .await
    .expect("send");
    let ack = acks.message().await.expect("ack").expect("an ack");
    assert_eq!((ack.committed_sequence, ack.accepted, ack.duplicates), (4, 1, 2));
    let before = read_log(data.path());
    // A malformed batch: rejected whole, naming the field; nothing of it is logged.
    tx.send(batch(vec![
        state(5, "saw", v1::StationStateKind::Down),
        state(6, "saw", v1::StationStateKind::Down),
        state(7, "saw", v1::StationStateKind::Down),
        state(8, "x", v1::StationStateKind::Down),
    ]))
    .await
    .expect("send");
    let err = acks.message().await.expect_err("rejected");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert_eq!(err.message(), "messages[3].station: unknown station \"x\"");
    let after = read_log(data.path());
    assert_eq!(after.raw.len(), before.raw.len(), "nothing of the rejected batch is logged");
    let s = wait_status(&mut client, "applied", |s| s.applied >= 4).await;
    assert_eq!(s.committed, 4);
    assert_eq!(s.duplicates, 2);
    // The state stream publishes at most every 10 ms, so the frame that shows what the
    // status counts as applied can come a moment later.
    let down = v1::StationStateKind::Down as i32;
    let deadline = Instant::now() + Duration::from_secs(10);
    let frame = loop {
        let frame = station_states(&mut client).await;
        if frame.stations[1].state == down || Instant::now() > deadline {
            break frame;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(frame.stations[1].state, down, "mill is down");
    assert_ne!(
        frame.stations[0].state,
        v1::StationStateKind::Down as i32,
        "saw is not (its batch was rejected)"
    );
}

/// Full frames received until now, newest last (sim time, stations).
type Frames = Arc<Mutex<Vec<(u64, Vec<v1::StationState>)>>>;

/// Records full frames in the background until the stream breaks (the kill).
async fn record_frames(twin: &Twin) -> Frames {
    let frames: Frames = Arc::default();
    let sink = Arc::clone(&frames);
    let mut client = twin.client().await;
    let mut stream = client
        .stream_state(v1::StreamStateRequest { rate_hz: 20, full_frames_only: true })
        .await
        .expect("stream")
        .into_inner();
    tokio::spawn(async move {
        while let Ok(Some(frame)) = stream.message().await {
            let t = frame.clock.map_or(0, |c| c.sim_time_us);
            if let Ok(mut f) = sink.lock() {
                f.push((t, frame.stations));
                let n = f.len();
                if n > 200 {
                    f.drain(..n - 200);
                }
            }
        }
    });
    frames
}

/// Replays the log's decisions offline through the core and compares the stations with
/// every frame the twin published before it was killed: the frame at time `t` must equal
/// the replayed state after the decisions before `t` and some of those at `t` (a frame
/// and the telemetry applied at the same instant may come in either order). Returns the
/// number of frames compared.
fn replayed_state_matches(contents: &Contents, frames: &[(u64, Vec<v1::StationState>)]) -> usize {
    let model = Arc::new(Model::load(&root().join(SCENE)).expect("scene"));
    let (run, _) = tlog::current_run(&contents.decisions);
    let seed = run.expect("a run").1;
    let commands = tlog::applied_commands(&contents.decisions);
    let last = commands.last().map_or(0, |(at, _)| *at);
    let mut sim = Sim::new(Arc::clone(&model), seed);
    let mut next = 0;
    let mut compared = 0;
    let key = |s: &v1::StationState| (s.state, s.busy_servers, s.queue_length, s.sync, s.last_observed_us);
    for (t, stations) in frames.iter().filter(|(t, _)| *t > 0 && *t <= last) {
        while next < commands.len() && commands[next].0 < *t {
            sim.run_until(commands[next].0);
            let _ = sim.apply(&commands[next].1);
            next += 1;
        }
        sim.run_until(*t);
        let live: Vec<_> = stations.iter().map(key).collect();
        let replayed = |sim: &Sim| -> Vec<_> {
            sim.station_views()
                .enumerate()
                .map(|(i, v)| {
                    let sync = twin_server::convert::StationSync {
                        status: sim.sync_status(i as u32),
                        last_observed: sim.last_observed(i as u32),
                        open_alarms: 0,
                    };
                    key(&twin_server::convert::station_state(i, &v, 0.0, 0.0, sync))
                })
                .collect()
        };
        let mut matched = replayed(&sim) == live;
        while next < commands.len() && commands[next].0 == *t {
            let _ = sim.apply(&commands[next].1);
            next += 1;
            matched = matched || replayed(&sim) == live;
        }
        assert!(
            matched,
            "at {t} µs the replay differs from what the twin showed before the kill: {live:?} vs {:?}",
            replayed(&sim)
        );
        compared += 1;
    }
    compared
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_an_mqtt_stream_loses_no_acknowledged_message() {
    let data = tempfile::tempdir().expect("data dir");
    let group = "kill-mqtt";
    let twin = Twin::mqtt(&broker_url(), data.path(), group, &["--stale-after", "120"]);
    let mut client = twin.client().await;
    wait_status(&mut client, "the MQTT connection", |s| s.mqtt_connected).await;
    let frames = record_frames(&twin).await;
    let n = 6000u64;
    let publisher = publisher(group, "stream", &["--count", &n.to_string(), "--rate", "1000"]);
    // Kill the twin with SIGKILL while the stream is in full flow.
    let deadline = Instant::now() + Duration::from_secs(60);
    while publisher.acked().len() < 1500 {
        assert!(Instant::now() < deadline, "the stream did not start: {:?}", publisher.lines().last());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let pre_kill_status = status(&mut client).await;
    twin.kill();
    let before_kill = tlog::read_file(&data.path().join(tlog::DIR_NAME)).expect("log after the kill");
    let frames_before: Vec<_> = frames.lock().expect("frames").clone();
    assert!(pre_kill_status.committed > 0);

    // The replayed state equals what the twin showed before the kill.
    let compared = replayed_state_matches(&before_kill, &frames_before);
    assert!(compared >= 3, "compared {compared} frames");

    // Restart with the same data folder and client id: the broker delivers the rest.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let twin = Twin::mqtt(&broker_url(), data.path(), group, &["--stale-after", "120"]);
    let done = publisher.finish_async(180).await;
    let (facts, acked) = done;
    assert_eq!(facts["unacked"], 0, "the broker acknowledged every message");
    assert_eq!(acked.len() as u64, n);
    let mut client = twin.client().await;
    let s = status(&mut client).await;
    assert!(s.replayed_commands > 0, "the restart replayed the log: {s:#?}");
    every_acked_message_applied_once(data.path(), &acked, &twin, &mut client).await;
}

async fn checkpoints(client: &mut TwinServiceClient<Channel>) -> Vec<v1::CheckpointInfo> {
    let request = v1::ListCheckpointsRequest {};
    client.list_checkpoints(request).await.expect("ListCheckpoints").into_inner().checkpoints
}

/// Checkpoints with live ingest (`--data`, one checkpoint per simulated second): SIGKILL
/// in the middle of an MQTT stream, and the restart goes on from the newest checkpoint
/// (not from the run's start: only the decisions after it are replayed) and applies every
/// acknowledged message exactly once. Restarted with `--checkpoint-keep 2`, the twin
/// prunes the telemetry log below the oldest checkpoint kept, and a restart after a
/// second SIGKILL still goes on from a checkpoint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_with_live_checkpoints_restarts_from_a_checkpoint_and_prunes_the_log() {
    let data = tempfile::tempdir().expect("data dir");
    let group = "kill-checkpoints";
    let every = ["--stale-after", "120", "--checkpoint-every", "1s"];
    let keep_all = [&every[..], &["--checkpoint-keep", "1000"]].concat();
    let twin = Twin::mqtt(&broker_url(), data.path(), group, &keep_all);
    let mut client = twin.client().await;
    wait_status(&mut client, "the MQTT connection", |s| s.mqtt_connected).await;
    let n = 6000u64;
    let publisher = publisher(group, "stream", &["--count", &n.to_string(), "--rate", "1000"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while publisher.acked().len() < 3000 || checkpoints(&mut client).await.len() < 2 {
        assert!(Instant::now() < deadline, "no stream or no checkpoints:\n{}", twin.log());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    twin.kill();
    let before = tlog::read_file(&data.path().join(tlog::DIR_NAME)).expect("log after the kill");
    let logged_before = tlog::applied_commands(&before.decisions).len() as u64;

    let twin = Twin::mqtt(&broker_url(), data.path(), group, &keep_all);
    let mut client = twin.client().await;
    let s = status(&mut client).await;
    let from = s.resumed_from_checkpoint_us.unwrap_or_else(|| panic!("not from a checkpoint: {s:#?}"));
    assert!(from > 0, "{s:#?}");
    assert!(
        s.replayed_commands < logged_before,
        "only the decisions after the checkpoint replayed: {} of {logged_before}",
        s.replayed_commands
    );
    let (facts, acked) = publisher.finish_async(180).await;
    assert_eq!(facts["unacked"], 0, "the broker acknowledged every message");
    assert_eq!(acked.len() as u64, n);
    every_acked_message_applied_once(data.path(), &acked, &twin, &mut client).await;
    println!(
        "restart from the checkpoint at {from} µs: {} of {logged_before} commands replayed",
        s.replayed_commands
    );
    // Seek with live ingest: the history half a second after that checkpoint is the
    // checkpoint plus the recorded decisions up to then, as an offline replay has it.
    let target = from + 500_000;
    let seek = client.seek(v1::SeekRequest { sim_time_us: target }).await.expect("Seek").into_inner();
    let timeline = seek.timeline.expect("timeline");
    assert_eq!((timeline.mode(), timeline.view_time_us), (v1::TimelineMode::History, target));
    let frame = station_states(&mut client).await;
    let compared = replayed_state_matches(&read_log(data.path()), &[(target, frame.stations)]);
    assert_eq!(compared, 1, "the history was compared with the replay");
    client.go_live(v1::GoLiveRequest {}).await.expect("GoLive");

    // Keep two checkpoints: the log is pruned below the older one.
    twin.kill();
    let keep_two = [&every[..], &["--checkpoint-keep", "2"]].concat();
    let twin = Twin::mqtt(&broker_url(), data.path(), group, &keep_two);
    let mut client = twin.client().await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let pruned = loop {
        let contents = read_log(data.path());
        if contents.first_decision > 1 {
            break contents;
        }
        assert!(Instant::now() < deadline, "the log was never pruned:\n{}", twin.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let held = checkpoints(&mut client).await;
    assert!(held.len() <= 2, "{held:?}");
    assert!(
        tlog::current_run(&pruned.decisions).0.is_none(),
        "the run's start is pruned: only a checkpoint can restart it"
    );
    twin.kill();
    let twin = Twin::mqtt(&broker_url(), data.path(), group, &keep_two);
    let mut client = twin.client().await;
    let s = status(&mut client).await;
    assert!(s.resumed_from_checkpoint_us.is_some_and(|t| t > from), "{s:#?}\n{}", twin.log());
}

/// Pruning the telemetry log deletes the raw records that held the Sparkplug session
/// (NBIRTH, DBIRTHs); the checkpoints record the sessions instead. With
/// `--checkpoint-keep 2`, SIGKILL once the births are pruned, restart (keeping its
/// checkpoints, so the test can read every decision): the publisher
/// goes on with its next seq and is not asked for a rebirth, nothing is counted as a gap
/// or as data without a birth, and every acknowledged message is applied exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_after_pruning_carries_the_sparkplug_sessions_on() {
    let data = tempfile::tempdir().expect("data dir");
    let group = "prune-sessions";
    let flags = ["--stale-after", "120", "--checkpoint-every", "1s", "--checkpoint-keep", "2"];
    let twin = Twin::mqtt(&broker_url(), data.path(), group, &flags);
    let mut client = twin.client().await;
    wait_status(&mut client, "the MQTT connection", |s| s.mqtt_connected).await;
    let watch = DecisionWatch::start(data.path());
    let n = 6000u64;
    let publisher = publisher(group, "stream", &["--count", &n.to_string(), "--rate", "1000"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let contents = read_log(data.path());
        let births = contents
            .raw
            .iter()
            .any(|(_, r)| matches!(r, RawRecord::Mqtt { topic, .. } if topic.contains("BIRTH")));
        if !births && contents.first_decision > 1 && publisher.acked().len() >= 2000 {
            break;
        }
        assert!(Instant::now() < deadline, "the births were never pruned:\n{}", twin.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    twin.kill();

    // The restarted twin keeps its checkpoints (no more pruning): once the stream ends,
    // every later checkpoint includes the last decisions, and pruning below it could
    // delete them before the watch has read them (a tail it cannot see is missing).
    let keep = ["--stale-after", "120", "--checkpoint-every", "1s", "--checkpoint-keep", "1000"];
    let twin = Twin::mqtt(&broker_url(), data.path(), group, &keep);
    let mut client = twin.client().await;
    let s = status(&mut client).await;
    assert!(s.resumed_from_checkpoint_us.is_some(), "not from a checkpoint: {s:#?}");
    let (facts, acked) = publisher.finish_async(180).await;
    assert_eq!(facts["unacked"], 0, "the broker acknowledged every message");
    assert_eq!(acked.len() as u64, n);
    let deadline = Instant::now() + Duration::from_secs(90);
    let applied = loop {
        let applied = watch.applied();
        let set: BTreeSet<u64> = applied.iter().copied().collect();
        if acked.is_subset(&set) {
            assert_eq!(applied.len(), set.len(), "no message applied twice");
            break set;
        }
        let s = status(&mut client).await;
        assert!(
            Instant::now() < deadline,
            "acknowledged messages not applied: {:?}; {s:#?}\n{}",
            acked.difference(&set).collect::<Vec<_>>(),
            twin.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let s = status(&mut client).await;
    assert_eq!(
        (s.rebirths_requested, s.sequence_gaps, rejected(&s, "no_birth")),
        (0, 0, 0),
        "the restarted twin carried the session on: {s:#?}"
    );
    println!("{} messages applied once across the restart, no rebirth; {s:?}", applied.len());
}

/// `--mqtt mqtts://...` with `--mqtt-ca`: the twin subscribes over TLS (rustls),
/// every acknowledged message is applied once; with a CA that did not sign the broker's
/// certificate it does not connect, and its log names the certificate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_over_tls_with_the_brokers_ca_and_not_with_another() {
    let data = tempfile::tempdir().expect("data dir");
    let certs = tempfile::tempdir().expect("certs");
    let ca = certs.path().join("ca.pem");
    std::fs::write(&ca, &pki().ca).expect("write ca.pem");
    let ca = ca.display().to_string();
    let port = broker().tls_port.expect("the TLS listener");
    let url = format!("mqtts://localhost:{port}");
    let group = "over-tls";
    let args = ["--mqtt", &url, "--mqtt-ca", &ca, "--group", group, "--stale-after", "120"];
    let twin = Twin::start(data.path(), &args);
    let mut client = twin.client().await;
    wait_status(&mut client, "the MQTT connection over TLS", |s| s.mqtt_connected).await;
    let n = 300u64;
    let extra = ["--count", &n.to_string(), "--rate", "1000", "--ca", &ca];
    let publisher = Publisher::start(format!("localhost:{port}"), group, NODE, &STATIONS, "stream", &extra);
    let (facts, acked) = publisher.finish_async(120).await;
    assert_eq!(facts["unacked"], 0, "the broker acknowledged every message");
    assert_eq!(acked.len() as u64, n);
    every_acked_message_applied_once(data.path(), &acked, &twin, &mut client).await;

    let other = certs.path().join("other-ca.pem");
    std::fs::write(&other, Pki::new("another CA").ca).expect("write other-ca.pem");
    let refused = tempfile::tempdir().expect("data dir");
    let other = other.display().to_string();
    let twin = Twin::start(refused.path(), &["--mqtt", &url, "--mqtt-ca", &other, "--group", "tls-refused"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !twin.log().to_lowercase().contains("certificate") {
        assert!(Instant::now() < deadline, "no certificate error logged:\n{}", twin.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!status(&mut twin.client().await).await.mqtt_connected);
}

/// A broker that requires client certificates (`require_certificate true`): with
/// `--mqtt-cert` / `--mqtt-key` (signed by the broker's CA) the twin subscribes and
/// every acknowledged message (published on the broker's plain listener) is applied
/// once; without them it does not connect and keeps retrying.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_with_a_client_certificate_where_the_broker_requires_one() {
    let data = tempfile::tempdir().expect("data dir");
    let certs = tempfile::tempdir().expect("certs");
    let files = pki().write(certs.path());
    let (ca, cert, key) = (
        files.ca.display().to_string(),
        files.client_cert.display().to_string(),
        files.client_key.display().to_string(),
    );
    let url = format!("mqtts://localhost:{}", broker().mtls_port.expect("the mutual TLS listener"));
    let group = "client-cert";
    let args = ["--mqtt", &url, "--mqtt-ca", &ca, "--mqtt-cert", &cert, "--mqtt-key", &key, "--group", group];
    let twin = Twin::start(data.path(), &args);
    let mut client = twin.client().await;
    wait_status(&mut client, "the MQTT connection with a client certificate", |s| s.mqtt_connected).await;
    let n = 200u64;
    let publisher = publisher(group, "stream", &["--count", &n.to_string(), "--rate", "1000"]);
    let (facts, acked) = publisher.finish_async(120).await;
    assert_eq!(facts["unacked"], 0, "the broker acknowledged every message");
    assert_eq!(acked.len() as u64, n);
    every_acked_message_applied_once(data.path(), &acked, &twin, &mut client).await;

    let refused = tempfile::tempdir().expect("data dir");
    let twin = Twin::start(refused.path(), &["--mqtt", &url, "--mqtt-ca", &ca, "--group", "no-client-cert"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while twin.log().matches("MQTT connection lost").count() < 2 {
        assert!(Instant::now() < deadline, "no refused connection logged:\n{}", twin.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!status(&mut twin.client().await).await.mqtt_connected);
    assert!(!twin.log().contains("MQTT connected"), "{}", twin.log());
}

/// The broker goes away and comes back on the same port (a broker of its own: this test
/// stops it): the twin marks MQTT disconnected, reconnects (every second), subscribes
/// again (the restarted broker, without persistence, lost the session) and every
/// message acknowledged afterwards is applied once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_twin_reconnects_and_resubscribes_after_the_broker_restarts() {
    let port = twin_e2e::prometheus::free_port();
    let broker = Mosquitto::start_on(port);
    let data = tempfile::tempdir().expect("data dir");
    let group = "broker-restart";
    let url = broker.url();
    let twin = Twin::start(data.path(), &["--mqtt", &url, "--group", group, "--stale-after", "120"]);
    let mut client = twin.client().await;
    wait_status(&mut client, "the MQTT connection", |s| s.mqtt_connected).await;
    drop(broker);
    wait_status(&mut client, "MQTT disconnected", |s| !s.mqtt_connected).await;
    let broker = Mosquitto::start_on(port);
    wait_status(&mut client, "the MQTT connection again", |s| s.mqtt_connected).await;
    assert!(twin.log().matches("MQTT connected").count() >= 2, "{}", twin.log());
    publish_100_all_applied_once(&broker, group, data.path(), &twin, &mut client).await;
}

/// After a reconnect: 100 messages published at 1,000/s are all acknowledged by the
/// broker and applied once by the twin.
async fn publish_100_all_applied_once(
    broker: &Mosquitto,
    group: &str,
    data: &Path,
    twin: &Twin,
    client: &mut TwinServiceClient<Channel>,
) {
    let n = 100u64;
    let extra = ["--count", &n.to_string(), "--rate", "1000"];
    let publisher = Publisher::start(broker.addr, group, NODE, &STATIONS, "stream", &extra);
    let (facts, acked) = publisher.finish_async(120).await;
    assert_eq!(facts["unacked"], 0, "the broker acknowledged every message");
    assert_eq!(acked.len() as u64, n);
    every_acked_message_applied_once(data, &acked, twin, client).await;
}

/// A broker that stops answering (SIGSTOP: its sockets stay open): the twin's PINGREQ
/// gets no PINGRESP, so it drops the connection and reconnects once the broker answers
/// again (SIGCONT); messages published after that are all applied once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_broker_is_noticed_by_the_keep_alive_and_the_twin_reconnects() {
    let broker = Mosquitto::start();
    let data = tempfile::tempdir().expect("data dir");
    let group = "silent-broker";
    let url = broker.url();
    let twin = Twin::start(data.path(), &["--mqtt", &url, "--group", group, "--stale-after", "120"]);
    let mut client = twin.client().await;
    wait_status(&mut client, "the MQTT connection", |s| s.mqtt_connected).await;
    let paused = broker.pause();
    // PINGREQ after 5 s without a write, the connection dropped 10 s later.
    wait_status(&mut client, "MQTT disconnected", |s| !s.mqtt_connected).await;
    assert!(twin.log().contains("no PINGRESP"), "{}", twin.log());
    drop(paused);
    wait_status(&mut client, "the MQTT connection again", |s| s.mqtt_connected).await;
    publish_100_all_applied_once(&broker, group, data.path(), &twin, &mut client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_a_grpc_stream_loses_no_acknowledged_batch() {
    let data = tempfile::tempdir().expect("data dir");
    let twin = Twin::start(data.path(), &["--ingest"]);
    let epoch = twin_server::audit::now_unix_ms();
    let batch = move |first: u64, n: u64| v1::IngestBatch {
        source_id: "mes-kill".into(),
        plant_epoch_unix_ms: epoch,
        messages: (first..first + n)
            .map(|seq| v1::IngestMessage {
                sequence: seq,
                timestamp_unix_ms: twin_server::audit::now_unix_ms(),
                station: STATIONS[(seq % 5) as usize].into(),
                observed: Some(v1::ingest_message::Observed::Cycle(v1::IngestCycle {
                    duration_us: 1000 + seq,
                    product: String::new(),
                })),
            })
            .collect(),
    };
    // Stream batches of 50 as fast as acks allow (up to 8 unacknowledged), in a task
    // that records the highest acknowledged sequence; kill the twin mid-stream.
    let highest = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut client = twin.client().await;
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    let mut acks =
        client.ingest(tokio_stream::wrappers::ReceiverStream::new(rx)).await.expect("Ingest").into_inner();
    let seen = Arc::clone(&highest);
    let reader = tokio::spawn(async move {
        while let Ok(Some(ack)) = acks.message().await {
            seen.fetch_max(ack.committed_sequence, std::sync::atomic::Ordering::SeqCst);
        }
    });
    let sender = tokio::spawn(async move {
        let mut next = 1;
        loop {
            if tx.send(batch(next, 50)).await.is_err() {
                break;
            }
            next += 50;
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    while highest.load(std::sync::atomic::Ordering::SeqCst) < 3000 {
        assert!(Instant::now() < deadline, "acks did not come");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    twin.kill();
    let _ = reader.await;
    sender.abort();
    let acked = highest.load(std::sync::atomic::Ordering::SeqCst);

    let twin = Twin::start(data.path(), &["--ingest"]);
    let mut client = twin.client().await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let contents = read_log(data.path());
        let logged: BTreeSet<u64> = contents
            .raw
            .iter()
            .flat_map(|(_, r)| match r {
                RawRecord::Grpc { messages, .. } => messages.iter().map(|m| m.sequence).collect::<Vec<_>>(),
                _ => Vec::new(),
            })
            .collect();
        assert!(
            (1..=acked).all(|s| logged.contains(&s)),
            "every acknowledged sequence (<= {acked}) is in the log"
        );
        let applied: BTreeSet<u64> = applied_cycles(&contents).iter().map(|d| d - 1000).collect();
        if (1..=acked).all(|s| applied.contains(&s)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "acknowledged messages not applied after the restart:\n{}",
            twin.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The source resumes after its committed sequence; a resend of the tail is skipped.
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    let mut acks =
        client.ingest(tokio_stream::wrappers::ReceiverStream::new(rx)).await.expect("Ingest").into_inner();
    tx.send(batch(acked - 9, 20)).await.expect("send");
    let ack = acks.message().await.expect("ack").expect("an ack");
    assert!(ack.committed_sequence >= acked + 10);
    assert!(ack.duplicates >= 10, "{ack:?}");
    let s = status(&mut client).await;
    assert!(s.replayed_commands > 0, "the restart replayed the log: {s:#?}");
}

/// Our own plant emulator end to end: `twin plant` (with a drift file that breaks the
/// mill down, which the model never does, and kills the drill's device for a while) ->
/// mosquitto -> `twin serve --mqtt`: the twin shows the mill down and live, the drill
/// stale (not down) after its DDEATH and live again after its DBIRTH, the plant's buffer
/// levels next to its own, and its clock aligned with the plant's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twin_plant_through_the_broker_breaks_the_twins_mill_down() {
    let data = tempfile::tempdir().expect("data dir");
    let group = "plant-e2e";
    let drift = data.path().join("drift.ron");
    std::fs::write(
        &drift,
        r#"Drift(description: "the mill breaks down", stations: [], breakdowns: [(station: "mill", at: "2m", duration: "10h")], gateways: [], devices: [(station: "drill", at: "4m", down_for: "30m")])"#,
    )
    .expect("drift file");
    let twin = Twin::mqtt(&broker_url(), data.path(), group, &["--speed", "600", "--stale-after", "120"]);
    let mut client = twin.client().await;
    wait_status(&mut client, "the MQTT connection", |s| s.mqtt_connected).await;
    let mut plant = Command::new(twin_binary())
        .current_dir(root())
        .args(["plant", SCENE, "--mqtt", &broker_url(), "--group", group, "--speed", "600"])
        .args(["--publish-every", "200ms", "--log", "warn", "--drift"])
        .arg(&drift)
        .stdout(Stdio::null())
        .spawn()
        .expect("start twin plant");
    let mut stream = client
        .stream_state(v1::StreamStateRequest { rate_hz: 10, full_frames_only: true })
        .await
        .expect("stream")
        .into_inner();
    let deadline = Instant::now() + Duration::from_secs(90);
    // The drill: live, then stale (never down for it), then live again.
    let mut drill_seen: Vec<i32> = Vec::new();
    let mut mill_down = false;
    loop {
        let frame = next_frame(&mut stream).await;
        let mill = &frame.stations[1];
        if mill.state == v1::StationStateKind::Down as i32 && mill.sync == v1::SyncStatus::Live as i32 {
            mill_down = true;
        }
        let drill = &frame.stations[2];
        if drill.sync == v1::SyncStatus::Stale as i32 {
            assert_ne!(drill.state, v1::StationStateKind::Down as i32, "stale is not down: {drill:?}");
        }
        if drill_seen.last() != Some(&drill.sync) {
            drill_seen.push(drill.sync);
        }
        let (live, stale) = (v1::SyncStatus::Live as i32, v1::SyncStatus::Stale as i32);
        let back = drill_seen.windows(3).any(|w| w == [live, stale, live]);
        if mill_down && back {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "mill down {mill_down}; drill sync went {drill_seen:?} (want live, stale, live)\n{}",
            twin.log()
        );
    }
    let _ = plant.kill();
    let _ = plant.wait();
    let s = status(&mut client).await;
    assert!(s.committed > 0 && s.applied > 0, "{s:#?}");
    let log = twin.log();
    let why: Vec<&str> = log.lines().filter(|l| l.contains("telemetry not applied")).collect();
    assert_eq!(
        rejected(&s, "malformed") + rejected(&s, "unknown_metric"),
        0,
        "our own plant speaks our vocabulary: {s:#?}\n{}",
        why.join("\n")
    );
    assert_eq!(rejected(&s, "unknown_device"), 0, "every device of the plant is known: {s:#?}");
    assert!(
        s.observed_stations.iter().any(|o| o.station_id == "saw" && o.buffer_level.is_some()),
        "the plant's buffer levels are shown: {s:#?}"
    );
    let clock = s.clock.clone().expect("clock");
    assert!(!clock.waiting_for_plant && clock.anchor_source == format!("{group}/{NODE}"), "{clock:?}");
    let down = tlog::applied_commands(&read_log(data.path()).decisions)
        .into_iter()
        .any(|(_, c)| matches!(c, CoreCommand::BreakDown { ref station, .. } if station == "mill"));
    assert!(down, "the mill went down by a reported state");
}
