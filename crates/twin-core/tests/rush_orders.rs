//! Rush orders: the id a command returns names the order in the run's views and in the
//! report, with its real progress.

use std::path::PathBuf;
use std::sync::Arc;

use twin_core::time::HOUR;
use twin_core::{Applied, Command, Model, Sim};

fn training_line() -> Arc<Model> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scenes/training-line.ron");
    Arc::new(Model::load(&path).expect("bundled scene"))
}

#[test]
fn a_rush_order_is_tracked_by_its_id_until_every_unit_is_done() {
    let mut sim = Sim::new(training_line(), 3);
    sim.run_until(2 * HOUR);
    let first = sim.add_rush_order("bracket", 4).expect("rush order");
    let Applied::RushOrder(second) =
        sim.apply(&Command::RushOrder { product: "bracket".into(), quantity: 2 }).expect("applies")
    else {
        panic!("a rush order command places a rush order");
    };
    assert_ne!(first, second, "every order has its own id");
    assert_eq!((first.to_string(), second.to_string()), ("rush-1".into(), "rush-2".into()));

    let order = sim.rush_orders()[0];
    assert_eq!((order.id, order.quantity, order.finished, order.completed_at), (first, 4, 0, None));
    assert_eq!(order.released_at, 2 * HOUR);

    sim.run_until(30 * HOUR);
    let order = sim.rush_orders()[0];
    assert_eq!(order.finished + order.scrapped, 4, "every unit of the order is done: {order:?}");
    assert!(order.finished > 0);
    let done = order.completed_at.expect("a finished order has a completion time");
    assert!(done > 2 * HOUR && done <= 30 * HOUR);

    let report = sim.report();
    let row =
        report.rush_orders.iter().find(|r| r.id == first.to_string()).expect("the report names the order");
    assert_eq!((row.product.as_str(), row.quantity, row.finished), ("bracket", 4, order.finished));
    let json: serde_json::Value = serde_json::from_str(&report.to_json(0.0)).expect("JSON");
    assert_eq!(json["rush_orders"][1]["id"], "rush-2");
    assert_eq!(json["rush_orders"][1]["quantity"], 2);
}

#[test]
fn a_run_without_rush_orders_reports_none() {
    let mut sim = Sim::new(training_line(), 3);
    sim.run_until(HOUR);
    assert!(sim.rush_orders().is_empty());
    let json: serde_json::Value = serde_json::from_str(&sim.report().to_json(0.0)).expect("JSON");
    assert!(json.get("rush_orders").is_none(), "the document keeps its shape without rush orders");
}
