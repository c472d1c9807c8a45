//! Runs M/M/1 the way `twin run scenes/validation/mm1.ron --warmup 0s` does (`Sim::new`,
//! `run_until`, `report()`) for a number of simulated hours; a target for profilers:
//! `valgrind --tool=callgrind target/release/examples/profile_mm1 5000`. Instructions per
//! event are the difference of two run lengths over the difference of their events.

use std::sync::Arc;

use twin_core::time::HOUR;
use twin_core::{Model, Sim};

fn main() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenes/validation/mm1.ron");
    let mut model = Model::load(&path).expect("mm1.ron is valid");
    model.warmup = 0;
    let hours: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let mut sim = Sim::new(Arc::new(model), 1);
    sim.run_until(hours * HOUR);
    let report = sim.report();
    println!("{} events, {} finished, simulated {} h", sim.events(), report.complex.finished, hours);
}
