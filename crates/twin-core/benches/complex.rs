//! One simulated week of the demo complex (150 stations, 40 AGVs, 6 trucks): wall time
//! and events per second. Target: at most one second per simulated week in a release
//! build, i.e. at least 600,000 times real time.

use std::path::PathBuf;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use twin_core::time::{DAY, SECOND};
use twin_core::{Model, Sim};

fn demo() -> Arc<Model> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scenes/demo-complex.ron");
    Arc::new(Model::load(&path).expect("demo-complex.ron is valid"))
}

fn week(model: &Arc<Model>) -> u64 {
    let mut sim = Sim::new(Arc::clone(model), 1);
    sim.run_until(7 * DAY);
    sim.events()
}

fn bench_week(c: &mut Criterion) {
    let model = demo();
    let started = std::time::Instant::now();
    let events = week(&model);
    let wall = started.elapsed().as_secs_f64();
    println!(
        "demo complex: 7 d simulated in {wall:.3} s wall = {:.0}x real time, {events} events, {:.2} M events/s",
        (7 * DAY) as f64 / SECOND as f64 / wall,
        events as f64 / wall / 1e6
    );
    let mut group = c.benchmark_group("demo_complex");
    group.sample_size(10);
    group.throughput(Throughput::Elements(events));
    group.bench_function("week", |b| b.iter(|| week(&model)));
    group.finish();
}

criterion_group!(benches, bench_week);
criterion_main!(benches);
