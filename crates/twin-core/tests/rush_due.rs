//! Rush orders with a due date: the due time is part of the state (snapshots, command
//! replay), the report shows it, and a forecast judges each such order as a whole: one due
//! too soon to be met has an on-time risk of about 1, one due with room to spare about 0,
//! one due after the horizon is only counted.

use std::path::PathBuf;
use std::sync::Arc;

use twin_core::forecast::{Forecaster, Horizon, Kpi, Request};
use twin_core::sim::commands::MAX_RUSH_DUE_IN;
use twin_core::time::{DAY, HOUR, MINUTE};
use twin_core::{Applied, Command, CommandError, Model, Sim};

fn training_line() -> Arc<Model> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scenes/training-line.ron");
    Arc::new(Model::load(&path).expect("bundled scene"))
}

/// A run of the training line in a working shift with three dated rush orders: due in a
/// minute (cannot be met: a routing takes longer), due in 20 hours (easily met: rush
/// units jump the queues), due in 10 days (after any horizon below).
fn with_dated_orders() -> (Sim, Vec<String>) {
    let mut sim = Sim::new(training_line(), 5);
    sim.run_until(DAY + 9 * HOUR);
    let mut ids = Vec::new();
    for (quantity, due_in) in [(3, MINUTE), (2, 20 * HOUR), (1, 10 * DAY)] {
        let command = Command::RushOrderDue { product: "bracket".into(), quantity, due_in };
        let Applied::RushOrder(id) = sim.apply(&command).expect("a valid rush order") else {
            panic!("a rush order command places a rush order");
        };
        ids.push(id.to_string());
    }
    (sim, ids)
}

#[test]
fn a_rush_order_due_too_soon_is_at_risk_and_one_due_later_is_not() {
    let (sim, ids) = with_dated_orders();
    let now = sim.now();
    let orders = sim.rush_orders();
    assert_eq!(orders[0].due, Some(now + MINUTE));
    assert_eq!(orders[2].due, Some(now + 10 * DAY));

    let request = Request { horizon: Horizon::Ahead(24 * HOUR), replications: 20, kpis: vec![Kpi::OnTime] };
    let forecast = Forecaster::new(&sim, &request).expect("request fits").run();
    let risk = |id: &str| {
        forecast.orders.iter().find(|o| o.id == id).unwrap_or_else(|| panic!("{id} judged: {forecast:?}"))
    };
    let soon = risk(&ids[0]);
    assert_eq!((soon.quantity, soon.product.as_str()), (3, "bracket"));
    assert_eq!(soon.due, now + MINUTE);
    assert_eq!(soon.on_time_risk, 1.0, "three units cannot finish in a minute: {soon:?}");
    let later = risk(&ids[1]);
    assert_eq!(later.on_time_risk, 0.0, "two rush units finish within 20 h: {later:?}");
    assert_eq!(later.on_time_probability + later.on_time_risk, 1.0);
    assert!(forecast.orders.iter().all(|o| o.id != ids[2]), "due after the horizon: not judged");
    assert!(forecast.orders_beyond_horizon >= 1);
    // Rush units are judged by their order, not one by one as part orders.
    let rush_units = forecast.orders.iter().filter(|o| o.id.starts_with("part-")).count();
    assert_eq!(rush_units, 0, "the training line sets no due dates of its own: {forecast:?}");

    // The JSON a CLI prints carries the order's risk.
    let json: serde_json::Value = serde_json::to_value(&forecast).unwrap();
    let first = &json["orders"][0];
    assert_eq!((first["id"].as_str(), first["on_time_risk"].as_f64()), (Some(ids[0].as_str()), Some(1.0)));
}

#[test]
fn due_times_survive_snapshots_and_replays_and_show_in_the_report() {
    let (sim, ids) = with_dated_orders();
    let restored = Sim::restore(Arc::clone(sim.model()), &sim.save("x")).expect("restores");
    assert_eq!(restored.rush_orders(), sim.rush_orders());

    // Replaying the same commands at the same times gives the same state, bytes and all.
    let mut replayed = Sim::new(training_line(), 5);
    replayed.run_until(DAY + 9 * HOUR);
    for (quantity, due_in) in [(3, MINUTE), (2, 20 * HOUR), (1, 10 * DAY)] {
        replayed.add_rush_order_due_in("bracket", quantity, due_in).expect("valid");
    }
    assert_eq!(replayed.save("x"), sim.save("x"));

    let mut sim = sim;
    sim.run_until(2 * DAY + 9 * HOUR);
    let report = sim.report();
    let row = |id: &str| report.rush_orders.iter().find(|r| r.id == id).expect("reported").clone();
    let due = row(&ids[0]).due_s.expect("a dated order shows its due time");
    assert_eq!(due, (DAY + 9 * HOUR + MINUTE) as f64 / 1e6);
    let json: serde_json::Value = serde_json::from_str(&report.to_json(0.0)).expect("JSON");
    assert_eq!(json["rush_orders"][0]["due_s"].as_f64(), Some(due));
    // An undated order keeps the document's earlier shape.
    let plain = sim.add_rush_order("bracket", 1).expect("valid").to_string();
    let json: serde_json::Value = serde_json::from_str(&sim.report().to_json(0.0)).expect("JSON");
    let plain_row =
        json["rush_orders"].as_array().unwrap().iter().find(|r| r["id"] == plain.as_str()).unwrap();
    assert!(plain_row.get("due_s").is_none());
}

#[test]
fn a_due_time_must_lie_ahead_and_within_the_limit() {
    let (mut sim, _) = with_dated_orders();
    let before = sim.save("x");
    for due_in in [0, MAX_RUSH_DUE_IN + 1] {
        let refused = sim.add_rush_order_due_in("bracket", 1, due_in);
        assert!(matches!(&refused, Err(CommandError::Invalid(m)) if m.contains("due_in")), "{refused:?}");
    }
    assert_eq!(sim.save("x"), before, "a refused order changes nothing");
}
