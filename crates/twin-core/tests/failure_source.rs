//! Failures driven from outside (`Command::FailuresFrom`): a station whose state a live
//! plant reports fails and is repaired only when the plant says so; handed back to the
//! model, it draws its own failures again. The mode is state: it travels in snapshots
//! and a replay of the same commands reaches the same bytes.

use std::path::PathBuf;
use std::sync::Arc;

use twin_core::time::{DAY, HOUR, MINUTE};
use twin_core::{Command, FailureSource, Model, Sim, StationState};

fn training_line() -> Arc<Model> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scenes/training-line.ron");
    Arc::new(Model::load(&path).unwrap())
}

fn failures_from(station: &str, source: FailureSource) -> Command {
    Command::FailuresFrom { station: station.into(), source }
}

/// Whether `station` is down now.
fn down(sim: &Sim, station: &str) -> bool {
    let idx = sim.model().station(station).unwrap() as usize;
    sim.station_views().nth(idx).unwrap().state == StationState::Down
}

/// Runs `sim` to `until` minute by minute; the minutes at which `station` was down.
fn minutes_down(sim: &mut Sim, station: &str, until: u64) -> u64 {
    let mut n = 0;
    while sim.now() < until {
        sim.run_until(sim.now() + MINUTE);
        n += u64::from(down(sim, station));
    }
    n
}

#[test]
fn a_plant_driven_station_fails_only_when_the_plant_says_so() {
    let model = training_line();
    // The drill (MTBF 3 h, MTTR 15 min) left to the model is down a few percent of a week.
    let mut own = Sim::new(Arc::clone(&model), 3);
    assert!(minutes_down(&mut own, "drill", 7 * DAY) > 60, "the model's own failures");

    let mut sim = Sim::new(Arc::clone(&model), 3);
    let drill = model.station("drill").unwrap();
    assert_eq!(sim.failure_source(drill), FailureSource::Model);
    sim.apply(&failures_from("drill", FailureSource::Plant)).unwrap();
    assert_eq!(sim.failure_source(drill), FailureSource::Plant);
    assert_eq!(minutes_down(&mut sim, "drill", 2 * DAY), 0, "no failure of its own in two days");

    // The plant's failure lasts until the plant's repair, however long.
    sim.apply(&Command::BreakDown { station: "drill".into(), duration: None }).unwrap();
    assert_eq!(minutes_down(&mut sim, "drill", 3 * DAY), DAY / MINUTE);
    sim.apply(&Command::Repair { station: "drill".into() }).unwrap();
    assert_eq!(minutes_down(&mut sim, "drill", 5 * DAY), 0);
    // The saw, not handed over, still fails on its own.
    let mut saw_down = 0;
    while sim.now() < 7 * DAY {
        sim.run_until(sim.now() + MINUTE);
        saw_down += u64::from(down(&sim, "saw"));
        assert!(!down(&sim, "drill"));
    }
    assert!(saw_down > 0, "the saw's own failures go on");
}

#[test]
fn handed_back_to_the_model_a_station_draws_its_failures_again() {
    let model = training_line();
    let mut sim = Sim::new(Arc::clone(&model), 5);
    sim.apply(&failures_from("drill", FailureSource::Plant)).unwrap();
    sim.run_until(HOUR);
    // Down by the plant's word when its source goes stale: the model draws the repair.
    sim.apply(&Command::BreakDown { station: "drill".into(), duration: None }).unwrap();
    sim.run_until(2 * HOUR);
    assert!(down(&sim, "drill"));
    sim.apply(&failures_from("drill", FailureSource::Model)).unwrap();
    let from = sim.now();
    while down(&sim, "drill") {
        assert!(sim.now() < from + DAY, "a drawn repair (MTTR 15 min) ends the failure");
        sim.run_until(sim.now() + MINUTE);
    }
    // Up, with failures drawn from now on.
    assert!(minutes_down(&mut sim, "drill", 9 * DAY) > 60);
}

#[test]
fn a_failure_of_its_own_waits_for_the_plant_once_handed_over() {
    let model = training_line();
    let mut sim = Sim::new(Arc::clone(&model), 11);
    // Run until the drill fails on its own.
    while !down(&sim, "drill") {
        assert!(sim.now() < 10 * DAY, "the drill fails within ten days");
        sim.run_until(sim.now() + MINUTE);
    }
    sim.apply(&failures_from("drill", FailureSource::Plant)).unwrap();
    // Its drawn repair (15 min on average) is cancelled: down until the plant's repair.
    let at = sim.now();
    assert_eq!(minutes_down(&mut sim, "drill", at + DAY), DAY / MINUTE);
    sim.apply(&Command::Repair { station: "drill".into() }).unwrap();
    assert!(!down(&sim, "drill"));
    // Setting the source it already has changes nothing.
    let before = sim.save("x");
    sim.apply(&failures_from("drill", FailureSource::Plant)).unwrap();
    assert_eq!(sim.save("x"), before);
}

#[test]
fn the_failure_source_travels_in_snapshots_and_replays_bit_identically() {
    let model = training_line();
    let commands = [
        (HOUR, failures_from("drill", FailureSource::Plant)),
        (2 * HOUR, Command::BreakDown { station: "drill".into(), duration: None }),
        (3 * HOUR, failures_from("saw", FailureSource::Plant)),
        (5 * HOUR, failures_from("drill", FailureSource::Model)),
        (9 * HOUR, failures_from("drill", FailureSource::Plant)),
    ];
    let run = |until: u64| {
        let mut sim = Sim::new(Arc::clone(&model), 21);
        for (at, c) in &commands {
            if *at <= until {
                sim.run_until(*at);
                sim.apply(c).unwrap();
            }
        }
        sim
    };
    let mut a = run(DAY);
    a.run_until(DAY);
    // Restore a snapshot taken half way and finish the same commands on it.
    let mut half = run(4 * HOUR);
    half.run_until(4 * HOUR);
    let bytes = half.save("training-line");
    let mut b = Sim::restore(Arc::clone(&model), &bytes).unwrap();
    let saw = model.station("saw").unwrap();
    assert_eq!(b.failure_source(saw), FailureSource::Plant);
    for (at, c) in commands.iter().filter(|(at, _)| *at > 4 * HOUR) {
        b.run_until(*at);
        b.apply(c).unwrap();
    }
    b.run_until(DAY);
    assert_eq!(a.save("training-line"), b.save("training-line"));
}
