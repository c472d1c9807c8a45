//! Engine speed: events per second on M/M/1 and on serial lines of growing size.
//!
//! Criterion prints `thrpt` in elements per second; an element is one processed event,
//! so `thrpt` is events per second. The scaling group shows the cost per event as the
//! model grows from 10 to 100,000 stations (it should grow at most logarithmically, from
//! the event list's heap).

use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use twin_core::dist::Dist;
use twin_core::scene::{Arrivals, ProductSpec, Scene, Schedules, SourceSpec, StationSpec, StepSpec};
use twin_core::time::{Duration, HOUR, MINUTE, SECOND};
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

/// Runs `model` until it has processed at least `events` events and returns the count.
fn run_events(model: &Arc<Model>, seed: u64, events: u64) -> u64 {
    let mut sim = Sim::new(Arc::clone(model), seed);
    while sim.events() < events && sim.step() {}
    black_box(sim.now());
    sim.events()
}

fn bench_mm1(c: &mut Criterion) {
    let model = mm1();
    let n = 2_000_000;
    let mut group = c.benchmark_group("mm1");
    group.throughput(Throughput::Elements(run_events(&model, 1, n)));
    group.bench_function("events", |b| b.iter(|| run_events(&model, 1, n)));
    group.finish();
}

fn bench_serial_lines(c: &mut Criterion) {
    let mut group = c.benchmark_group("serial_line");
    group.sample_size(10);
    for n in [10usize, 100, 1_000, 10_000, 100_000] {
        let model = serial_line(n);
        let events = 2_000_000u64.max(20 * n as u64);
        group.throughput(Throughput::Elements(run_events(&model, 1, events)));
        group.bench_with_input(BenchmarkId::from_parameter(n), &model, |b, m| {
            b.iter(|| run_events(m, 1, events))
        });
    }
    group.finish();
}

/// Simulated time per wall time on M/M/1 for one hour of simulated time: printed once.
fn report_speedup(_c: &mut Criterion) {
    let model = mm1();
    let started = std::time::Instant::now();
    let mut sim = Sim::new(Arc::clone(&model), 1);
    sim.run_until(1000 * HOUR);
    let wall = started.elapsed().as_secs_f64();
    println!(
        "mm1: 1000 h simulated in {wall:.4} s wall = {:.0}x real time, {:.1} M events/s",
        (1000 * HOUR) as f64 / SECOND as f64 / wall,
        sim.events() as f64 / wall / 1e6
    );
}

criterion_group!(benches, report_speedup, bench_mm1, bench_serial_lines);
criterion_main!(benches);
