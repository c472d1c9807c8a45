//! `twin plant` end to end: the real binary publishing Sparkplug B to a real mosquitto
//! (started once for this test binary), observed by a real MQTT subscriber.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, OnceLock};

use twin_core::Model;
use twin_e2e::mosquitto::Mosquitto;
use twin_e2e::sparkplug::{Observer, Received};
use twin_e2e::{PATIENCE, scene, twin_binary};
use twin_proto::sparkplug::{MessageKind, Metric, Payload, Topic, vocab};

const EPOCH: u64 = 1_750_000_000_000;

fn broker() -> &'static Mosquitto {
    static BROKER: OnceLock<Mosquitto> = OnceLock::new();
    BROKER.get_or_init(Mosquitto::start)
}

fn twin() -> &'static PathBuf {
    static TWIN: OnceLock<PathBuf> = OnceLock::new();
    TWIN.get_or_init(twin_binary)
}

/// A running `twin plant` with its stderr in a file.
struct PlantProcess {
    child: Child,
    log: tempfile::NamedTempFile,
}

impl PlantProcess {
    fn start(scene_file: &Path, group: &str, extra: &[&str]) -> PlantProcess {
        let log = tempfile::NamedTempFile::new().expect("log file");
        let child = Command::new(twin())
            .arg("plant")
            .arg(scene_file)
            .args(["--mqtt", &broker().url(), "--group", group, "--epoch", &EPOCH.to_string()])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(log.reopen().expect("log handle"))
            .spawn()
            .expect("start twin plant");
        PlantProcess { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    /// Waits for the process to exit by itself.
    async fn wait(&mut self) -> ExitStatus {
        let deadline = std::time::Instant::now() + PATIENCE * 3;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(std::time::Instant::now() < deadline, "twin plant did not exit:\n{}", self.log());
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}

impl Drop for PlantProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn is(kind: MessageKind) -> impl Fn(&Received) -> bool {
    move |m| m.topic.kind == kind
}

fn u64_metric(m: &Received, name: &str) -> Option<u64> {
    m.payload.metric(name).and_then(Metric::as_u64)
}

fn names(p: &Payload) -> Vec<&str> {
    p.metrics.iter().filter_map(|m| m.name.as_deref()).collect()
}

fn training_line() -> PathBuf {
    scene("training-line.ron")
}

const STATIONS: [&str; 5] = ["saw", "mill", "drill", "assembly", "inspection"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn births_data_and_seq_until_a_clean_death() {
    let group = "shape";
    let mut observer = Observer::connect(broker().addr, group).await;
    let mut plant =
        PlantProcess::start(&training_line(), group, &["--speed", "max", "--until", "3h", "--batch", "10s"]);
    let all = observer.until(is(MessageKind::NDeath)).await;
    assert!(plant.wait().await.success(), "exit 0 after --until:\n{}", plant.log());

    let nbirth = &all[0];
    assert_eq!(nbirth.raw_topic, "spBv1.0/shape/NBIRTH/hall");
    assert_eq!(nbirth.payload.seq, Some(0));
    assert_eq!(nbirth.payload.timestamp, Some(EPOCH));
    assert_eq!(names(&nbirth.payload), [vocab::BD_SEQ, vocab::REBIRTH, vocab::PLANT_EPOCH]);
    assert_eq!(u64_metric(nbirth, vocab::PLANT_EPOCH), Some(EPOCH));
    for (i, station) in STATIONS.iter().enumerate() {
        let m = &all[i + 1];
        assert_eq!(m.raw_topic, format!("spBv1.0/shape/DBIRTH/hall/{station}"));
        assert_eq!(
            names(&m.payload),
            [
                vocab::STATE,
                vocab::PARTS_IN,
                vocab::PARTS_OUT,
                vocab::BUFFER_LEVEL,
                vocab::CYCLE_DURATION,
                vocab::CYCLE_PRODUCT
            ]
        );
    }
    // seq: every message but the NDEATH, 0, 1, ... 255, 0, ...
    let seqs: Vec<u64> = all[..all.len() - 1].iter().map(|m| m.payload.seq.expect("seq")).collect();
    assert!(seqs.len() > 600, "{} messages, enough to wrap twice", seqs.len());
    for (i, s) in seqs.iter().enumerate() {
        assert_eq!(*s, i as u64 % 256, "message {i} ({})", all[i].raw_topic);
    }
    let data: Vec<&Received> = all.iter().filter(|m| m.topic.kind == MessageKind::DData).collect();
    assert!(data.iter().all(|m| STATIONS.contains(&m.topic.device.as_deref().expect("device"))));
    let states: Vec<&str> =
        data.iter().flat_map(|m| m.payload.metrics_named(vocab::STATE)).filter_map(Metric::as_str).collect();
    assert!(states.iter().all(|s| vocab::STATION_STATES.contains(s)), "{states:?}");
    for s in ["busy", "starved"] {
        assert!(states.contains(&s), "a training line is {s} sometimes: {states:?}");
    }
    let death = all.last().expect("NDEATH");
    assert_eq!(death.raw_topic, "spBv1.0/shape/NDEATH/hall");
    assert_eq!(death.payload.seq, None);
    assert_eq!(u64_metric(death, vocab::BD_SEQ), Some(0));
    assert_eq!(death.payload.timestamp, Some(EPOCH + 3 * 3_600_000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_will_reports_the_death_of_a_killed_plant() {
    let group = "will";
    let mut observer = Observer::connect(broker().addr, group).await;
    let mut plant =
        PlantProcess::start(&training_line(), group, &["--speed", "60", "--publish-every", "100ms"]);
    let births = observer.until(is(MessageKind::NBirth)).await;
    let bd_seq = u64_metric(births.last().expect("NBIRTH"), vocab::BD_SEQ).expect("bdSeq");
    observer.until(is(MessageKind::DData)).await;
    plant.child.kill().expect("SIGKILL");
    let _ = plant.child.wait();
    let rest = observer.until(is(MessageKind::NDeath)).await;
    let death = rest.last().expect("NDEATH");
    assert_eq!(death.raw_topic, "spBv1.0/will/NDEATH/hall");
    assert_eq!(u64_metric(death, vocab::BD_SEQ), Some(bd_seq), "the will carries the NBIRTH's bdSeq");
    assert_eq!(death.payload.timestamp, Some(EPOCH), "the will was registered at connect (plant time 0)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_publishes_the_death_and_exits_cleanly() {
    let group = "term";
    let mut observer = Observer::connect(broker().addr, group).await;
    let mut plant =
        PlantProcess::start(&training_line(), group, &["--speed", "60", "--publish-every", "100ms"]);
    observer.until(is(MessageKind::NBirth)).await;
    let data = observer.until(is(MessageKind::DData)).await;
    let seen_ms = data.last().and_then(|m| m.payload.timestamp).expect("DDATA timestamp");
    let status = Command::new("kill").args(["-TERM", &plant.child.id().to_string()]).status().expect("kill");
    assert!(status.success());
    let rest = observer.until(is(MessageKind::NDeath)).await;
    let death = rest.last().expect("NDEATH");
    assert_eq!(u64_metric(death, vocab::BD_SEQ), Some(0));
    assert!(
        death.payload.timestamp.expect("timestamp") >= seen_ms,
        "published at stop (plant time now), not the Last Will registered at time 0"
    );
    assert!(plant.wait().await.success(), "exit 0 on SIGTERM:\n{}", plant.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebirth_command_republishes_every_birth() {
    let group = "rebirth";
    let mut observer = Observer::connect(broker().addr, group).await;
    let _plant = PlantProcess::start(&training_line(), group, &["--speed", "60", "--publish-every", "100ms"]);
    observer.until(is(MessageKind::NBirth)).await;
    observer.until(is(MessageKind::DData)).await;
    let ncmd = Payload {
        timestamp: Some(EPOCH),
        metrics: vec![Metric::boolean(vocab::REBIRTH, true)],
        ..Default::default()
    };
    observer.publish(&Topic::node(group, MessageKind::NCmd, "hall"), &ncmd).await;
    let mut seen = observer.until(is(MessageKind::NBirth)).await;
    let nbirth = seen.pop().expect("NBIRTH");
    assert_eq!(nbirth.payload.seq, Some(0), "seq restarts with the NBIRTH");
    assert_eq!(u64_metric(&nbirth, vocab::BD_SEQ), Some(0), "same session, same bdSeq");
    for (i, station) in STATIONS.iter().enumerate() {
        let m = observer.next().await;
        assert_eq!(m.raw_topic, format!("spBv1.0/rebirth/DBIRTH/hall/{station}"));
        assert_eq!(m.payload.seq, Some(i as u64 + 1));
        assert!(u64_metric(&m, vocab::PARTS_IN).is_some());
    }
    let next = observer.next().await;
    assert_eq!(next.payload.seq, Some(6), "{}", next.raw_topic);
}

/// Mean of observed / model-expected processing time per station, and cycle counts.
fn duration_ratios(all: &[Received], model: &Model) -> Vec<(String, f64, usize)> {
    let mut out = Vec::new();
    for station in STATIONS {
        let s = model.station(station).expect("station");
        let (mut sum, mut n) = (0.0, 0);
        for m in all
            .iter()
            .filter(|m| m.topic.kind == MessageKind::DData && m.topic.device.as_deref() == Some(station))
        {
            let metrics = &m.payload.metrics;
            for (i, metric) in metrics.iter().enumerate() {
                if metric.name.as_deref() != Some(vocab::CYCLE_DURATION) {
                    continue;
                }
                let product = metrics[i + 1].as_str().expect("Cycle/Product follows");
                let p = model.product(product).expect("known product") as usize;
                let step =
                    model.products[p].steps.iter().find(|st| st.at.contains(&s)).expect("step at station");
                sum += metric.as_u64().expect("duration") as f64 / step.mean;
                n += 1;
            }
        }
        out.push((station.to_owned(), sum / n.max(1) as f64, n));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drift_file_slows_the_named_station_only() {
    let dir = tempfile::tempdir().expect("temp dir");
    let drift = dir.path().join("slow-drill.ron");
    std::fs::write(&drift, "Drift(stations: [(station: \"drill\", processing: 1.2)])\n")
        .expect("write drift");
    let group = "drift";
    let mut observer = Observer::connect(broker().addr, group).await;
    let mut plant = PlantProcess::start(
        &training_line(),
        group,
        &["--speed", "max", "--until", "2d", "--batch", "1m", "--drift", drift.to_str().expect("utf-8")],
    );
    let all = observer.until(is(MessageKind::NDeath)).await;
    assert!(plant.wait().await.success(), "{}", plant.log());
    // The twin's model: the scene as written.
    let model = Arc::new(Model::load(&training_line()).expect("scene"));
    for (station, ratio, n) in duration_ratios(&all, &model) {
        assert!(n > 1000, "{station}: {n} cycles");
        let expected = if station == "drill" { 1.2 } else { 1.0 };
        assert!(
            (ratio - expected).abs() < 0.03,
            "{station}: mean duration {ratio:.3} x the model's over {n} cycles"
        );
        eprintln!("{station}: {ratio:.3} x model over {n} cycles");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_drift_file_is_refused_with_its_place() {
    let dir = tempfile::tempdir().expect("temp dir");
    let drift = dir.path().join("bad.ron");
    std::fs::write(
        &drift,
        "Drift(\n    stations: [\n        (station: \"lathe\", processing: 1.2),\n        (station: \"drill\", processing: -0.5),\n    ],\n)\n",
    )
    .expect("write drift");
    let out = Command::new(twin())
        .arg("plant")
        .arg(training_line())
        .args(["--mqtt", &broker().url(), "--drift", drift.to_str().expect("utf-8")])
        .output()
        .expect("run twin plant");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let file = drift.display().to_string();
    assert!(
        stderr.contains(&format!("{file}:3:19: stations[0].station: unknown station `lathe`")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "{file}:4:28: stations[1].processing: processing factor must be a number above 0"
        )),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn equal_runs_publish_equal_bytes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let drift = dir.path().join("drift.ron");
    std::fs::write(
        &drift,
        r#"Drift(
            stations: [(station: "mill", processing: 0.9, mtbf: "3h", mttr: "10m")],
            breakdowns: [(station: "drill", at: "40m", duration: "15m")],
            gateways: [(factory: "hall", at: "1h", down_for: "5m")],
        )"#,
    )
    .expect("write drift");
    let drift = drift.to_str().expect("utf-8");
    let mut runs = Vec::new();
    for group in ["same-a", "same-b"] {
        let mut observer = Observer::connect(broker().addr, group).await;
        let mut plant = PlantProcess::start(
            &training_line(),
            group,
            &["--speed", "max", "--until", "3h", "--seed", "11", "--drift", drift],
        );
        // The gateway's outage brings one NDEATH before the final one.
        let mut all = observer.until(is(MessageKind::NDeath)).await;
        all.extend(observer.until(is(MessageKind::NDeath)).await);
        assert!(plant.wait().await.success(), "{}", plant.log());
        let outage_death = all.iter().find(|m| m.topic.kind == MessageKind::NDeath).expect("NDEATH");
        assert_eq!(outage_death.payload.timestamp, Some(EPOCH + 3_600_000));
        let rebirth =
            all.iter().filter(|m| m.topic.kind == MessageKind::NBirth).nth(1).expect("second NBIRTH");
        assert_eq!(u64_metric(rebirth, vocab::BD_SEQ), Some(1));
        runs.push(
            all.into_iter()
                .map(|m| (m.topic.kind, m.topic.edge_node, m.topic.device, m.bytes))
                .collect::<Vec<_>>(),
        );
    }
    assert!(runs[0].len() > 500);
    assert_eq!(runs[0], runs[1], "same scene, seed, epoch and drift: same messages");
}

/// A drift device outage: the drill's DDEATH at its time, nothing from the drill while
/// it is dead, its DBIRTH (with current values) when it comes back, seq unbroken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_outage_publishes_its_death_and_its_rebirth() {
    let dir = tempfile::tempdir().expect("temp dir");
    let drift = dir.path().join("drill-device.ron");
    std::fs::write(&drift, "Drift(devices: [(station: \"drill\", at: \"10m\", down_for: \"15m\")])\n")
        .expect("write drift");
    let group = "device-outage";
    let mut observer = Observer::connect(broker().addr, group).await;
    let mut plant = PlantProcess::start(
        &training_line(),
        group,
        &["--speed", "max", "--until", "1h", "--batch", "1m", "--drift", drift.to_str().expect("utf-8")],
    );
    let all = observer.until(is(MessageKind::NDeath)).await;
    assert!(plant.wait().await.success(), "{}", plant.log());
    let drill: Vec<&Received> = all.iter().filter(|m| m.topic.device.as_deref() == Some("drill")).collect();
    let kinds: Vec<MessageKind> = drill.iter().map(|m| m.topic.kind).collect();
    let death = kinds.iter().position(|k| *k == MessageKind::DDeath).expect("a DDEATH for the drill");
    assert_eq!(kinds.iter().filter(|k| **k == MessageKind::DDeath).count(), 1);
    assert_eq!(kinds[death + 1], MessageKind::DBirth, "nothing between its death and its rebirth: {kinds:?}");
    let ts = |m: &Received| m.payload.timestamp.expect("timestamp") - EPOCH;
    assert_eq!(ts(drill[death]), 10 * 60_000, "dies at 10m");
    assert_eq!(ts(drill[death + 1]), 25 * 60_000, "born again at 25m");
    assert!(drill[death].payload.seq.is_some(), "a DDEATH carries seq");
    let reborn = names(&drill[death + 1].payload);
    assert!(reborn.contains(&vocab::PARTS_OUT) && reborn.contains(&vocab::STATE), "{reborn:?}");
    // The other stations kept reporting, and seq runs on over all of it.
    assert!(all.iter().any(|m| m.topic.device.as_deref() == Some("mill")
        && m.topic.kind == MessageKind::DData
        && (10 * 60_000..25 * 60_000).contains(&ts(m))));
    let seqs: Vec<u64> = all[..all.len() - 1].iter().map(|m| m.payload.seq.expect("seq")).collect();
    for (i, s) in seqs.iter().enumerate() {
        assert_eq!(*s, i as u64 % 256, "message {i} ({})", all[i].raw_topic);
    }
}

/// The twin knows the plant's AGV devices by the names the plant gives them.
#[test]
fn the_twin_knows_every_device_the_plant_publishes() {
    let model = Arc::new(Model::load(&scene("demo-complex.ron")).expect("scene"));
    let options = twin_plant::PlantOptions { group: "g".into(), epoch_ms: EPOCH };
    let plant = twin_plant::Plant::new(Arc::clone(&model), 1, &twin_plant::Drift::none(), options);
    let mut published: Vec<String> = (0..plant.node_ids().len())
        .flat_map(|n| plant.device_ids(n).into_iter().map(str::to_owned).collect::<Vec<_>>())
        .collect();
    let mut known: Vec<String> = model.stations.iter().map(|s| s.id.clone()).collect();
    let vehicles = twin_server::ingest::decode::vehicle_ids(&model);
    assert!(!vehicles.is_empty(), "the demo complex has AGVs");
    known.extend(vehicles);
    published.sort();
    known.sort();
    assert_eq!(published, known);
}
