//! Plant observations on the core (`Command::Observe`): commands round-trip through
//! postcard (a durable log stores them), bad observations are refused and change
//! nothing, sync status goes model-only -> live -> stale without touching the simulated
//! state, and all of it travels in snapshots.

use std::path::PathBuf;
use std::sync::Arc;

use twin_core::time::{HOUR, MINUTE, SECOND};
use twin_core::{Command, CommandError, Model, Observation, Observed, Sim, SyncStatus};

fn training_line() -> Arc<Model> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scenes/training-line.ron");
    Arc::new(Model::load(&path).unwrap())
}

fn observe(station: &str, observed: Observed) -> Command {
    Command::Observe(Observation { station: station.into(), observed })
}

#[test]
fn commands_round_trip_through_postcard() {
    let commands = vec![
        Command::BreakDown { station: "mill".into(), duration: Some(5 * MINUTE) },
        Command::BreakDown { station: "mill".into(), duration: None },
        Command::Repair { station: "mill".into() },
        Command::SetArrivalRate { source: "raw".into(), per_hour: 12.5 },
        observe("mill", Observed::Cycle { duration: 65 * SECOND, product: Some("bracket".into()) }),
        observe("mill", Observed::Cycle { duration: 1, product: None }),
        observe("saw", Observed::Counts { parts_in: 10, parts_out: 9 }),
        observe("saw", Observed::Live),
        observe("saw", Observed::Stale),
    ];
    let bytes = postcard::to_allocvec(&commands).unwrap();
    let back: Vec<Command> = postcard::from_bytes(&bytes).unwrap();
    assert_eq!(back, commands);
}

#[test]
fn bad_observations_are_refused_and_change_nothing() {
    let model = training_line();
    let mut sim = Sim::new(Arc::clone(&model), 1);
    sim.run_until(HOUR);
    let before = sim.save("x");
    let cases = [
        (observe("nope", Observed::Live), CommandError::UnknownStation("nope".into())),
        (
            observe("mill", Observed::Cycle { duration: SECOND, product: Some("widget".into()) }),
            CommandError::UnknownProduct("widget".into()),
        ),
    ];
    for (command, expected) in cases {
        assert_eq!(sim.apply(&command), Err(expected));
    }
    let too_long = observe("mill", Observed::Cycle { duration: u64::MAX, product: None });
    assert!(matches!(sim.apply(&too_long), Err(CommandError::Invalid(m)) if m.contains("mill")));
    assert_eq!(sim.save("x"), before, "a refused observation changed the state");
}

#[test]
fn sync_status_follows_the_source_and_stale_is_not_down() {
    let model = training_line();
    let mill = model.station("mill").unwrap();
    let mut plain = Sim::new(Arc::clone(&model), 3);
    let mut observed = Sim::new(Arc::clone(&model), 3);
    assert_eq!(observed.sync_status(mill), SyncStatus::ModelOnly);

    observed.run_until(HOUR);
    observed.apply(&observe("mill", Observed::Live)).unwrap();
    assert_eq!(observed.sync_status(mill), SyncStatus::Live);
    assert_eq!(observed.last_observed(mill), Some(HOUR));
    observed.apply(&observe("mill", Observed::Counts { parts_in: 40, parts_out: 38 })).unwrap();
    assert_eq!(observed.plant_counts(mill), Some((40, 38)));

    observed.run_until(2 * HOUR);
    let state_before = observed.station_views().nth(mill as usize).unwrap();
    observed.apply(&observe("mill", Observed::Stale)).unwrap();
    assert_eq!(observed.sync_status(mill), SyncStatus::Stale);
    // Its last known state is kept: the observation changes nothing the model simulates.
    assert_eq!(observed.station_views().nth(mill as usize).unwrap(), state_before);
    observed.run_until(10 * HOUR);
    plain.run_until(10 * HOUR);
    assert_eq!(
        observed.report().to_json(0.0),
        plain.report().to_json(0.0),
        "observations changed the model's run"
    );
    assert_eq!(observed.sync_status(mill), SyncStatus::Stale, "stays stale until its source reports again");
    assert_eq!(observed.sync_status(model.station("saw").unwrap()), SyncStatus::ModelOnly);

    // The monitor travels in the snapshot.
    let restored = Sim::restore(Arc::clone(&model), &observed.save("x")).unwrap();
    assert_eq!(restored.sync_status(mill), SyncStatus::Stale);
    assert_eq!(restored.plant_counts(mill), Some((40, 38)));
    assert_eq!(restored.save("x"), observed.save("x"));
}
