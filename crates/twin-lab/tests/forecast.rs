//! A forecast run on a pool of threads is the same forecast, byte for byte, whatever the
//! number of threads (more than the cores included), with part orders and dated rush
//! orders judged; and cancelling stops it.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use twin_core::forecast::{Forecaster, Horizon, Request};
use twin_core::time::{DAY, HOUR};
use twin_core::{Model, Sim};

#[test]
fn the_forecast_is_the_same_for_any_number_of_threads() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scenes/demo-complex.ron");
    let model = Arc::new(Model::load(&path).expect("bundled scene"));
    let mut sim = Sim::new(Arc::clone(&model), 7);
    sim.run_until(DAY + 6 * HOUR);
    let product = model.products[0].id.clone();
    sim.add_rush_order_due_in(&product, 4, HOUR).expect("valid");
    sim.add_rush_order_due_in(&product, 2, 90 * twin_core::time::MINUTE).expect("valid");
    let request = Request { horizon: Horizon::Ahead(2 * HOUR), replications: 9, kpis: vec![] };
    let forecaster = Forecaster::new(&sim, &request).expect("request fits");
    assert_eq!(forecaster.rush_orders().len(), 2);

    let never = AtomicBool::new(false);
    let run = |jobs: usize| {
        let calls = AtomicU32::new(0);
        let forecast = twin_lab::run_forecast(
            &forecaster,
            jobs,
            |done, total| {
                assert_eq!((done, total), (calls.fetch_add(1, Ordering::SeqCst) + 1, 9));
            },
            &never,
        )
        .expect("not cancelled");
        assert_eq!(calls.load(Ordering::SeqCst), 9, "one progress call per replication");
        forecast
    };
    let one = run(1);
    assert!(one.events > 0);
    assert!(one.orders.iter().any(|o| o.id.starts_with("rush-")), "{:?}", one.orders);
    let bytes = serde_json::to_string(&one).unwrap();
    for jobs in [2, 3, 0, 16] {
        let other = run(jobs);
        assert_eq!(serde_json::to_string(&other).unwrap(), bytes, "{jobs} threads");
        assert_eq!(other.events, one.events, "{jobs} threads ran the same events");
    }
    assert_eq!(serde_json::to_string(&forecaster.run()).unwrap(), bytes, "the core's own loop agrees");

    let cancelled = AtomicBool::new(true);
    assert!(twin_lab::run_forecast(&forecaster, 2, |_, _| {}, &cancelled).is_none());
}
