//! The demo complex (150 stations, 40 AGVs, 6 trucks) on the path `twin run` takes
//! (`Sim::new` + `run_until` + `report()`, bottleneck sweep on):
//!
//! - a simulated year, printed once: wall time (target <= 30 s), events per second and
//!   the process's peak memory (target < 150 MB);
//! - the whole-state snapshot at 7 days: size (target <= 10 MB), save and restore time
//!   (target <= 50 ms each);
//! - a simulated week under criterion.

use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use twin_core::time::{DAY, SECOND};
use twin_core::{Model, Sim};

fn demo() -> Arc<Model> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scenes/demo-complex.ron");
    Arc::new(Model::load(&path).expect("demo-complex.ron is valid"))
}

fn run(model: &Arc<Model>, days: u64) -> u64 {
    let mut sim = Sim::new(Arc::clone(model), 1);
    sim.run_until(days * DAY);
    black_box(sim.report());
    sim.events()
}

/// Peak resident memory of this process so far (Linux), MiB.
fn peak_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn report_year(_c: &mut Criterion) {
    let model = demo();
    let started = Instant::now();
    let events = run(&model, 365);
    let wall = started.elapsed().as_secs_f64();
    println!(
        "demo complex: 365 d simulated in {wall:.2} s wall (target <= 30 s) = {:.0}x real time, {events} events, {:.2} M events/s, peak memory {}",
        (365 * DAY) as f64 / SECOND as f64 / wall,
        events as f64 / wall / 1e6,
        peak_mib().map_or("n/a".into(), |m| format!("{m:.1} MiB (target < 150 MB)"))
    );
}

fn report_snapshot(_c: &mut Criterion) {
    let model = demo();
    let mut sim = Sim::new(Arc::clone(&model), 1);
    sim.run_until(7 * DAY);
    let started = Instant::now();
    let bytes = sim.save("scenes/demo-complex.ron");
    let save = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let restored = Sim::restore(Arc::clone(&model), &bytes).expect("own snapshot restores");
    let restore = started.elapsed().as_secs_f64();
    black_box(restored);
    println!(
        "demo complex at 7 d: snapshot {:.2} MB (target <= 10 MB), save {:.1} ms, restore {:.1} ms (target <= 50 ms each)",
        bytes.len() as f64 / 1e6,
        save * 1e3,
        restore * 1e3
    );
}

fn bench_week(c: &mut Criterion) {
    let model = demo();
    let events = run(&model, 7);
    let mut group = c.benchmark_group("demo_complex");
    group.sample_size(10);
    group.throughput(Throughput::Elements(events));
    group.bench_function("week", |b| b.iter(|| run(&model, 7)));
    group.finish();
}

criterion_group!(benches, report_year, report_snapshot, bench_week);
criterion_main!(benches);
