//! Runs M/M/1 for a fixed number of events; a target for profilers
//! (`valgrind --tool=callgrind target/release/examples/profile_mm1`).

use std::sync::Arc;

use twin_core::{Model, Sim};

fn main() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenes/validation/mm1.ron");
    let model = Arc::new(Model::load(&path).expect("mm1.ron is valid"));
    let events: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    let mut sim = Sim::new(model, 1);
    while sim.events() < events && sim.step() {}
    println!("{} events, simulated {} s", sim.events(), sim.now() / 1_000_000);
}
