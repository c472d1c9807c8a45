//! Whole-state save and restore: a run saved part-way and restored from the bytes goes
//! on exactly as if it had never stopped, on every bundled scene; forks re-key their
//! random streams; snapshots of other scenes, versions or damaged files are refused.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use twin_core::snapshot::SnapshotError;
use twin_core::time::{DAY, HOUR};
use twin_core::{Model, Sim};

fn scenes() -> Vec<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scenes");
    let mut out = Vec::new();
    for dir in [root.clone(), root.join("validation")] {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "ron") {
                out.push(path);
            }
        }
    }
    out.sort();
    assert!(out.len() >= 6, "bundled scenes not found");
    out
}

fn model(path: &Path) -> Arc<Model> {
    Arc::new(Model::load(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

/// A horizon that takes each scene past its warm-up, failures and shifts quickly.
fn horizons(model: &Model) -> (u64, u64) {
    let end = if model.stations.len() > 50 { 3 * DAY } else { 2 * DAY };
    (end / 3 + 7 * HOUR / 10, end)
}

#[test]
fn save_then_restore_continues_bit_identically_on_every_bundled_scene() {
    for path in scenes() {
        let model = model(&path);
        let (half, end) = horizons(&model);
        let mut straight = Sim::new(Arc::clone(&model), 5);
        straight.run_until(end);

        let mut first = Sim::new(Arc::clone(&model), 5);
        first.run_until(half);
        let bytes = first.save(&path.to_string_lossy());
        drop(first);
        let mut resumed = Sim::restore(Arc::clone(&model), &bytes).unwrap();
        assert_eq!(resumed.now(), half, "{}", path.display());
        resumed.run_until(end);

        assert_eq!(resumed.events(), straight.events(), "{}", path.display());
        assert_eq!(resumed.report().to_json(0.0), straight.report().to_json(0.0), "{}", path.display());
        // And the restored run saves to the same bytes as the straight one would there.
        assert_eq!(resumed.save("x"), straight.save("x"), "{}", path.display());
    }
}

/// State that only commands create (a rush order, a breakdown) is saved too.
#[test]
fn state_made_by_commands_survives_a_restore() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scenes/training-line.ron");
    let model = model(&path);
    let commanded = |until: u64| {
        let mut sim = Sim::new(Arc::clone(&model), 3);
        sim.run_until(10 * HOUR);
        sim.add_rush_order("bracket", 25).unwrap();
        sim.break_down("drill", Some(2 * HOUR)).unwrap();
        sim.run_until(until);
        sim
    };
    let mut straight = commanded(11 * HOUR);
    let mut resumed = Sim::restore(Arc::clone(&model), &straight.save("tl")).unwrap();
    straight.run_until(2 * DAY);
    resumed.run_until(2 * DAY);
    let report = resumed.report().to_json(0.0);
    assert!(report.contains("rush-1"), "the rush order is in the restored run's report");
    assert_eq!(report, straight.report().to_json(0.0));
}

#[test]
fn forks_with_one_seed_agree_and_with_two_seeds_differ() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scenes/training-line.ron");
    let model = model(&path);
    let mut live = Sim::new(model, 1);
    live.run_until(DAY);
    let run = |mut sim: Sim| {
        sim.run_until(2 * DAY);
        sim.report().to_json(0.0)
    };
    let (a, b, c) = (run(live.fork(7)), run(live.fork(7)), run(live.fork(8)));
    assert_eq!(a, b, "the same seed gives the same future");
    assert_ne!(a, c, "another seed gives another future");
    assert_ne!(a, run(live.clone()), "a fork does not replay the live run's draws");
}

#[test]
fn snapshots_of_another_scene_version_or_damaged_file_are_refused() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scenes");
    let mm1 = model(&root.join("validation/mm1.ron"));
    let mmc = model(&root.join("validation/mmc.ron"));
    let mut sim = Sim::new(Arc::clone(&mm1), 1);
    sim.run_until(HOUR);
    let bytes = sim.save("mm1.ron");

    let err = Sim::restore(mmc, &bytes).unwrap_err();
    assert!(matches!(err, SnapshotError::SceneMismatch { .. }), "{err}");

    let mut later = bytes.clone();
    later[8..12].copy_from_slice(&99u32.to_le_bytes());
    assert!(matches!(
        Sim::restore(Arc::clone(&mm1), &later).unwrap_err(),
        SnapshotError::Version { found: 99, .. }
    ));

    let mut damaged = bytes.clone();
    let at = damaged.len() / 2;
    damaged[at] ^= 0x40;
    assert_eq!(Sim::restore(Arc::clone(&mm1), &damaged).unwrap_err(), SnapshotError::Corrupt);
    assert_eq!(
        Sim::restore(Arc::clone(&mm1), &bytes[..bytes.len() - 3]).unwrap_err(),
        SnapshotError::Corrupt
    );
    assert_eq!(Sim::restore(mm1, b"not a snapshot").unwrap_err(), SnapshotError::NotASnapshot);
}
