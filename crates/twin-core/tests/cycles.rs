//! The opt-in cycle recorder: what it records matches the run, it changes nothing about
//! the run, and it is off by default.

use std::path::PathBuf;
use std::sync::Arc;

use twin_core::sim::flow::CycleRecord;
use twin_core::time::HOUR;
use twin_core::{Model, Sim};

fn training_line() -> Arc<Model> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scenes/training-line.ron");
    Arc::new(Model::load(&path).unwrap_or_else(|e| panic!("{e}")))
}

#[test]
fn recorded_cycles_match_the_stations_and_change_nothing() {
    let model = training_line();
    let mut plain = Sim::new(Arc::clone(&model), 7);
    let mut recorded = Sim::new(Arc::clone(&model), 7);
    recorded.record_cycles(true);
    assert!(plain.recorded_counts(0).is_none(), "off by default");

    let mut cycles: Vec<CycleRecord> = Vec::new();
    for hour in 1..=6 {
        plain.run_until(hour * HOUR);
        recorded.run_until(hour * HOUR);
        recorded.drain_cycles(&mut cycles);
    }
    assert_eq!(recorded.events(), plain.events(), "recording does not change the run");
    assert_eq!(recorded.cycles_dropped(), 0);
    let plain_views: Vec<_> = plain.station_views().collect();
    let views: Vec<_> = recorded.station_views().collect();
    assert_eq!(views, plain_views);

    // The warm-up (8 h) has not ended, so `completed` counts from time zero like the
    // recorder does.
    for (s, view) in views.iter().enumerate() {
        let (entered, completed) = recorded.recorded_counts(s as u32).expect("recording");
        assert_eq!(completed, view.completed, "station {s}");
        let n = cycles.iter().filter(|c| c.station == s as u32).count() as u64;
        assert_eq!(n, completed, "one record per completed cycle at station {s}");
        let inside = u64::from(view.queue + view.busy_servers + view.blocked_servers);
        assert!(entered >= completed && entered <= completed + inside + 1, "station {s}: {entered} in");
    }
    assert!(cycles.windows(2).all(|w| w[0].finished <= w[1].finished), "completion order");

    // The mill's step is Tri(55s, 65s, 85s): every duration in range, mean near 68.3 s.
    let mill = model.station("mill").expect("mill");
    let mill_cycles: Vec<u64> = cycles.iter().filter(|c| c.station == mill).map(|c| c.duration).collect();
    assert!(mill_cycles.len() > 200, "{} mill cycles", mill_cycles.len());
    assert!(mill_cycles.iter().all(|&d| (55_000_000..=85_000_000).contains(&d)));
    let mean = mill_cycles.iter().sum::<u64>() as f64 / mill_cycles.len() as f64 / 1e6;
    assert!((mean - 68.33).abs() < 1.5, "mill mean {mean:.2} s");

    recorded.record_cycles(false);
    assert!(recorded.recorded_counts(0).is_none());
}
