//! Engine speed on the path `twin run` takes: `Sim::new` + `run_until` + `report()`, with
//! the bottleneck sweep on, on M/M/1 and on serial lines of growing size.
//!
//! Criterion prints `thrpt` in elements per second; an element is one processed event,
//! so `thrpt` is events per second. The scaling group shows the cost per event as the
//! model grows from 10 to 100,000 stations (it should grow at most logarithmically, from
//! the event list's heap). `scripts/bench-simpy.sh` times the `twin run` binary itself
//! against SimPy on M/M/1.

use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use twin_core::dist::Dist;
use twin_core::scene::{Arrivals, ProductSpec, Scene, Schedules, SourceSpec, StationSpec, StepSpec};
use twin_core::time::{Duration, HOUR, MINUTE, Micros, SECOND};
use twin_core::{Model, Sim};

fn mm1() -> Arc<Model> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scenes/validation/mm1.ron");
    Arc::new(Model::load(&path).expect("mm1.ron is valid"))
}

/// A serial line of `n` stations with exponential times and buffers of 5, fed by a
/// saturated source: every station works, so the event list holds about `n` events.
fn serial_line(n: usize) -> Arc<Model> {
    let stations: Vec<StationSpec> = (0..n)
        .map(|i| StationSpec {
            id: format!("s{i}"),
            servers: 1,
            buffer: (i > 0).then_some(5),
            ..Default::default()
        })
        .collect();
    let routing = (0..n)
        .map(|i| StepSpec {
            op: String::new(),
            at: vec![format!("s{i}")],
            time: Dist::Exp { mean: Duration(MINUTE) },
            carry: None,
        })
        .collect();
    let scene = Scene {
        name: format!("serial line of {n}"),
        seed: 1,
        products: vec![ProductSpec { id: "p".into(), routing, ..Default::default() }],
        stations,
        sources: vec![SourceSpec {
            id: "raw".into(),
            arrivals: Arrivals::Saturated,
            mix: [("p".to_string(), 1.0)].into(),
            ..Default::default()
        }],
        ..Default::default()
    };
    Arc::new(Model::build(&scene, None, &Schedules::default()).expect("generated line is valid"))
}

/// What `twin run` does: a new run of `model` to `until`, then its full report.
/// Returns the events processed.
fn run_user_path(model: &Arc<Model>, seed: u64, until: Micros) -> u64 {
    let mut sim = Sim::new(Arc::clone(model), seed);
    sim.run_until(until);
    black_box(sim.report());
    sim.events()
}

fn bench_mm1(c: &mut Criterion) {
    let model = mm1();
    let until = 20_000 * HOUR;
    let mut group = c.benchmark_group("mm1");
    group.throughput(Throughput::Elements(run_user_path(&model, 1, until)));
    group.bench_function("events", |b| b.iter(|| run_user_path(&model, 1, until)));
    group.finish();
}

/// The simulated time at which a run of `model` has processed `events` events.
fn horizon_for(model: &Arc<Model>, events: u64) -> Micros {
    let mut sim = Sim::new(Arc::clone(model), 1);
    while sim.events() < events && sim.step() {}
    sim.now()
}

fn bench_serial_lines(c: &mut Criterion) {
    let mut group = c.benchmark_group("serial_line");
    group.sample_size(10);
    for n in [10usize, 100, 1_000, 10_000, 100_000] {
        let model = serial_line(n);
        // About two million events (parts fill the line from its head, so a horizon in
        // minutes would leave long lines nearly empty).
        let until = horizon_for(&model, 2_000_000u64.max(20 * n as u64));
        group.throughput(Throughput::Elements(run_user_path(&model, 1, until)));
        group.bench_with_input(BenchmarkId::from_parameter(n), &model, |b, m| {
            b.iter(|| run_user_path(m, 1, until))
        });
    }
    group.finish();
}

/// Simulated time per wall time on M/M/1 for 1000 simulated hours: printed once.
fn report_speedup(_c: &mut Criterion) {
    let model = mm1();
    let started = std::time::Instant::now();
    let mut sim = Sim::new(Arc::clone(&model), 1);
    sim.run_until(1000 * HOUR);
    black_box(sim.report());
    let wall = started.elapsed().as_secs_f64();
    println!(
        "mm1: 1000 h simulated in {wall:.4} s wall = {:.0}x real time, {:.1} M events/s",
        (1000 * HOUR) as f64 / SECOND as f64 / wall,
        sim.events() as f64 / wall / 1e6
    );
}

criterion_group!(benches, report_speedup, bench_mm1, bench_serial_lines);
criterion_main!(benches);
