//! The time rule on the simulation side: watermarks hold the clock, the hold horizon
//! grows with the speed, plant-driven failures.

use std::sync::Arc;

use twin_core::time::SECOND;
use twin_core::{FailureSource, Model, Sim};

use super::*;
use crate::ingest::log::TelemetryLog;
use crate::ingest::reading::{Incoming, TelemetryBatch};

fn training_line() -> Arc<Model> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenes/training-line.ron");
    Arc::new(Model::load(&path).expect("scene"))
}

/// A telemetry side on a fresh log in `dir`, and a simulation of the training line.
fn setup(dir: &std::path::Path) -> (Telemetry, Sim) {
    let (tx, _rx) = std::sync::mpsc::channel();
    let (log, contents) = TelemetryLog::open(&dir.join(crate::ingest::log::DIR_NAME), tx).expect("log");
    let mut t = Telemetry::new(Arc::new(log), Arc::new(Status::default()), &contents);
    let model = training_line();
    let (sim, _) = t
        .replay(|seed| Sim::new(Arc::clone(&model), seed), "training-line", 1, &contents, None)
        .expect("replay");
    (t, sim)
}

fn marks(list: &[(&str, Micros)]) -> TelemetryBatch {
    TelemetryBatch {
        marks: list.iter().map(|(s, t)| (s.to_string(), *t)).collect(),
        ..TelemetryBatch::default()
    }
}

#[test]
fn the_clock_waits_at_the_earliest_watermark_of_the_live_sources() {
    let dir = tempfile::tempdir().expect("dir");
    let (mut t, mut sim) = setup(dir.path());
    assert_eq!(t.hold_back(0, 1.0), None, "no source: nothing holds the clock");
    t.receive(&mut sim, marks(&[("a", 10 * SECOND), ("b", 20 * SECOND)]), 1.0).expect("receive");
    assert_eq!(t.hold_back(0, 1.0), Some(10 * SECOND));
    // A source's mark only moves forward.
    t.receive(&mut sim, marks(&[("a", 5 * SECOND)]), 1.0).expect("receive");
    assert_eq!(t.hold_back(0, 1.0), Some(10 * SECOND));
    // A dead or stale source holds nothing.
    let gone = TelemetryBatch { gone: vec!["a".into()], ..TelemetryBatch::default() };
    t.receive(&mut sim, gone, 1.0).expect("receive");
    assert_eq!(t.hold_back(0, 1.0), Some(20 * SECOND));
    // A source further behind the twin than the hold horizon does not freeze it.
    let now = 20 * SECOND + HOLD_HORIZON + SECOND;
    assert_eq!(t.hold_back(now, 1.0), None);
    assert_eq!(t.hold_back(now, 100.0), Some(20 * SECOND), "the horizon grows with the speed");
}

#[test]
fn readings_ahead_by_a_plant_batch_at_10000x_are_held_not_applied_early() {
    assert_eq!(hold_horizon(1.0), HOLD_HORIZON);
    assert_eq!(hold_horizon(10_000.0), 100_000 * SECOND);
    assert!(playout_delay(10_000.0) == PLAYOUT_DELAY, "250 ms wall at 10000x is within the horizon");
    let dir = tempfile::tempdir().expect("dir");
    let (mut t, mut sim) = setup(dir.path());
    let reading =
        StationReading { station: "mill".into(), reading: Reading::Counts { parts_in: 1, parts_out: 0 } };
    let at = 100 * SECOND;
    let item = Incoming { origin: Origin::Raw { seq: 1, part: 0 }, at: Some(at), readings: vec![reading] };
    let batch = TelemetryBatch { through: Some(1), items: vec![item], ..TelemetryBatch::default() };
    t.receive(&mut sim, batch, 10_000.0).expect("receive");
    assert_eq!(t.next_due(), Some(at), "held until its plant time");
    assert_eq!(t.status.ahead.load(Ordering::Relaxed), 0);
    sim.run_until(at);
    t.release_due(&mut sim).expect("release");
    let mill = sim.model().station("mill").expect("mill");
    assert_eq!(sim.last_observed(mill), Some(at), "applied exactly at its plant time");
}

#[test]
fn a_reported_state_hands_the_station_to_the_plant_and_stale_hands_it_back() {
    let dir = tempfile::tempdir().expect("dir");
    let (mut t, mut sim) = setup(dir.path());
    let drill = sim.model().station("drill").expect("drill");
    let item = |seq, reading| Incoming {
        origin: Origin::Raw { seq, part: 0 },
        at: None,
        readings: vec![StationReading { station: "drill".into(), reading }],
    };
    let batch = |items| TelemetryBatch { items, ..TelemetryBatch::default() };
    t.receive(&mut sim, batch(vec![item(1, Reading::Counts { parts_in: 0, parts_out: 0 })]), 1.0)
        .expect("counts");
    assert_eq!(sim.failure_source(drill), FailureSource::Model, "counts alone leave failures to the model");
    t.receive(&mut sim, batch(vec![item(2, Reading::State { down: false })]), 1.0).expect("state");
    assert_eq!(sim.failure_source(drill), FailureSource::Plant);
    t.receive(&mut sim, batch(vec![item(3, Reading::Stale)]), 1.0).expect("stale");
    assert_eq!(sim.failure_source(drill), FailureSource::Model);
    assert_eq!(sim.sync_status(drill), SyncStatus::Stale);
}
