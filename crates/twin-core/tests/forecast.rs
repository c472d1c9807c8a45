//! Forecasts: the same request on the same state gives the same forecast; replications
//! differ from each other; a forecast from a restored snapshot equals one from the live
//! state; on-time judgements agree with what the fork did; bad requests name their
//! field; and P10-P90 bands hold a driftless plant's realised output about 80% of the
//! time (a fast version of `crates/twin-lab/examples/calibrate_forecast.rs`).

use std::path::PathBuf;
use std::sync::Arc;

use twin_core::forecast::{Forecaster, Horizon, Kpi, MAX_AHEAD, MAX_REPLICATIONS, Request, end_of_shift};
use twin_core::time::{DAY, HOUR};
use twin_core::{Model, Sim};

fn model(name: &str) -> Arc<Model> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scenes").join(name);
    Arc::new(Model::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

fn request(ahead: u64, replications: u32) -> Request {
    Request { horizon: Horizon::Ahead(ahead), replications, kpis: Vec::new() }
}

#[test]
fn the_same_request_on_the_same_state_gives_the_same_forecast() {
    let model = model("demo-complex.ron");
    let mut sim = Sim::new(Arc::clone(&model), 3);
    sim.run_until(DAY + 5 * HOUR);
    let req = request(4 * HOUR, 6);
    let a = Forecaster::new(&sim, &req).unwrap();
    let b = Forecaster::new(&sim, &req).unwrap();
    let (fa, fb) = (a.run(), b.run());
    assert_eq!(serde_json::to_string(&fa).unwrap(), serde_json::to_string(&fb).unwrap());
    // Out of order replication gives the same outcomes: each is a pure function of its
    // index.
    let reversed: Vec<_> = (0..6).rev().map(|r| a.replicate(r)).rev().collect();
    assert_eq!(serde_json::to_string(&a.summarise(&reversed)).unwrap(), serde_json::to_string(&fa).unwrap());

    // Different replications draw different futures.
    let finished: Vec<u64> = (0..6).map(|r| a.replicate(r).finished).collect();
    assert!(finished.windows(2).any(|w| w[0] != w[1]), "{finished:?}");
    let band = fa.parts_finished.unwrap();
    assert!(band.p10 < band.p90 && band.p10 <= band.p50 && band.p50 <= band.p90, "{band:?}");
    assert!(band.p10 > 0.0, "the complex finishes parts in four hours: {band:?}");
    let va = fa.value_added_rate.unwrap();
    assert!(va.p50 > 0.0 && va.p50 < 1.0, "{va:?}");

    // Forecasting leaves the live state alone: it carries on as if nothing happened.
    let mut straight = Sim::new(Arc::clone(&model), 3);
    straight.run_until(DAY + 9 * HOUR);
    sim.run_until(DAY + 9 * HOUR);
    assert_eq!(sim.save("x"), straight.save("x"));

    // A forecast of the state restored from a snapshot is the same forecast.
    let mut live = Sim::new(Arc::clone(&model), 3);
    live.run_until(DAY + 5 * HOUR);
    let restored = Sim::restore(Arc::clone(&model), &live.save("x")).unwrap();
    let fr = Forecaster::new(&restored, &req).unwrap().run();
    assert_eq!(serde_json::to_string(&fr).unwrap(), serde_json::to_string(&fa).unwrap());
}

#[test]
fn on_time_judgements_agree_with_what_the_fork_did() {
    let model = model("demo-complex.ron");
    let mut sim = Sim::new(Arc::clone(&model), 11);
    sim.run_until(3 * DAY);
    let req = Request { horizon: Horizon::Ahead(24 * HOUR), replications: 3, kpis: vec![Kpi::OnTime] };
    let forecaster = Forecaster::new(&sim, &req).unwrap();
    let judged = forecaster.orders().to_vec();
    assert!(judged.len() > 10, "the demo has orders due within a day: {}", judged.len());
    let on_time_before = sim.totals().on_time;
    for r in 0..3 {
        let outcome = forecaster.replicate(r);
        assert_eq!(outcome.on_time.len(), judged.len());
        let mut fork = sim.fork(forecaster.seed_of(r));
        fork.run_until(forecaster.until());
        // An order still in the complex at the horizon was late.
        let open: Vec<_> = fork.open_orders();
        for (order, &on_time) in judged.iter().zip(&outcome.on_time) {
            let still_open = open.iter().any(|o| o.part == order.part && o.released_at == order.released_at);
            assert!(!(still_open && on_time), "open order {order:?} judged on time");
        }
        // Every order judged on time is among the complex's on-time finishes.
        let n_on_time = outcome.on_time.iter().filter(|&&t| t).count() as u64;
        assert!(n_on_time > 0);
        assert!(n_on_time <= fork.totals().on_time - on_time_before);
    }
    let forecast = forecaster.run();
    assert_eq!(forecast.orders.len(), judged.len());
    assert!(forecast.parts_finished.is_none() && forecast.value_added_rate.is_none());
    assert!(forecast.orders.windows(2).all(|w| w[0].on_time_probability <= w[1].on_time_probability));
    assert!(forecast.orders_beyond_horizon > 0);
}

#[test]
fn bad_requests_name_their_field() {
    let model = model("training-line.ron");
    let mut sim = Sim::new(model, 1);
    sim.run_until(HOUR);
    for (req, field) in [
        (request(HOUR, 0), "replications"),
        (request(HOUR, MAX_REPLICATIONS + 1), "replications"),
        (request(0, 10), "horizon"),
        (request(MAX_AHEAD + 1, 10), "horizon"),
        (Request { horizon: Horizon::At(HOUR / 2), replications: 10, kpis: Vec::new() }, "horizon"),
    ] {
        let err = Forecaster::new(&sim, &req).unwrap_err();
        assert_eq!(err.field(), field, "{err}");
        assert!(err.to_string().starts_with(field), "{err}");
    }
    assert!(Forecaster::new(&sim, &request(MAX_AHEAD, 1)).is_ok());
}

#[test]
fn the_end_of_the_shift_follows_the_main_calendar() {
    // The demo's most followed calendar runs three shifts from Monday 06:00 to Saturday
    // 06:00.
    let demo = model("demo-complex.ron");
    let monday_9 = DAY + 9 * HOUR;
    assert_eq!(end_of_shift(&demo, monday_9), DAY + 14 * HOUR);
    // Sunday noon is off shift: the next shift (06:00-14:00) ends on Monday 14:00.
    assert_eq!(end_of_shift(&demo, 12 * HOUR), DAY + 14 * HOUR);
    // Without calendars: eight hours.
    let line = model("training-line.ron");
    assert_eq!(end_of_shift(&line, HOUR), 9 * HOUR);
}

/// A driftless plant is the scene itself under its own seed: the twin, perfectly in
/// step, forks the plant's state, forecasts the next window, and the plant then lives
/// it. Over many such points the P10-P90 band of parts finished must hold the realised
/// count about 80% of the time. Points are disjoint windows of independent plants.
#[test]
fn bands_hold_a_driftless_plants_output_about_80_percent_of_the_time() {
    let model = model("training-line.ron");
    // Eight-hour windows keep the bands wide (a few hundred parts) so that the integer
    // edges, which count as inside, add little above 80%.
    let (plants, windows, reps) = (10u64, 6, 40);
    let (mut inside, mut points) = (0, 0);
    for plant_seed in 0..plants {
        let mut plant = Sim::new(Arc::clone(&model), 1000 + plant_seed);
        plant.run_until(DAY);
        for _ in 0..windows {
            let forecaster = Forecaster::new(&plant, &request(8 * HOUR, reps)).unwrap();
            let band = forecaster.run().parts_finished.unwrap();
            let before = plant.lifetime_counts().1;
            plant.run_until(forecaster.until());
            let realised = (plant.lifetime_counts().1 - before) as f64;
            inside += usize::from(band.holds(realised));
            points += 1;
        }
    }
    let coverage = inside as f64 / points as f64;
    eprintln!("P10-P90 coverage {inside}/{points} = {coverage:.3}");
    // Wrong quantiles fail this: P25-P75 would hold ~50%, P1-P99 ~98%.
    assert!((0.65..=0.93).contains(&coverage), "coverage {coverage:.3} over {points} points");
}
