//! Replications per second, and the speed-up from 1 to 2 jobs.
//!
//! `cargo bench -p twin-lab --bench replications` prints a summary first (best of a few
//! timed runs per job count, and the 1 -> 2 jobs speed-up), then criterion's estimates
//! in replications per second. The demo complex is measured when
//! `scenes/demo-complex.ron` exists.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use criterion::{Criterion, Throughput};
use twin_lab::{Experiment, RunOptions};

/// Timed runs per job count in the summary; the best one counts.
const SUMMARY_ROUNDS: usize = 3;

fn scenes() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenes")
}

/// Four variants of `scene` x `replications`, at the scene's own run length.
fn experiment(scene: &str, replications: u32) -> Option<Experiment> {
    if !scenes().join(scene).exists() {
        return None;
    }
    // Variants that any scene has: the unedited scene, three times (the cost of a
    // replication is what is measured, not the effect of an edit).
    let text = format!(
        r#"Experiment(
            name: "bench", scene: "{scene}", replications: {replications},
            kpis: [(path: "complex.throughput_per_hour")],
            variants: [(name: "a"), (name: "b"), (name: "c"), (name: "d")],
        )"#
    );
    match Experiment::parse(&text, Path::new("bench.ron"), &scenes()) {
        Ok(e) => Some(e),
        Err(e) => {
            eprintln!("skipping {scene}: {e}");
            None
        }
    }
}

fn run(exp: &Experiment, jobs: usize) {
    let results = twin_lab::run(exp, &RunOptions { jobs }, |_| {}, &AtomicBool::new(false));
    assert!(results.is_ok());
}

/// Best replications per second over a few runs.
fn rate(exp: &Experiment, jobs: usize) -> f64 {
    (0..SUMMARY_ROUNDS)
        .map(|_| {
            let t = Instant::now();
            run(exp, jobs);
            exp.total_runs() as f64 / t.elapsed().as_secs_f64()
        })
        .fold(0.0, f64::max)
}

fn summary(name: &str, exp: &Experiment) {
    let one = rate(exp, 1);
    let two = rate(exp, 2);
    println!(
        "{name}: {:.1} replications/s with 1 job, {:.1} with 2 jobs: speed-up {:.2}x \
         ({} replications of {} simulated)",
        one,
        two,
        two / one,
        exp.total_runs(),
        exp.until()
    );
}

fn main() {
    let scenes = [("training line", "training-line.ron", 16), ("demo complex", "demo-complex.ron", 4)];
    let experiments: Vec<(&str, Experiment)> =
        scenes.iter().filter_map(|&(name, file, reps)| experiment(file, reps).map(|e| (name, e))).collect();
    for (name, exp) in &experiments {
        summary(name, exp);
    }
    let mut c = Criterion::default().sample_size(10).configure_from_args();
    for (name, exp) in &experiments {
        let mut group = c.benchmark_group(name.replace(' ', "-"));
        group.throughput(Throughput::Elements(exp.total_runs() as u64));
        for jobs in [1, 2] {
            group.bench_function(format!("jobs-{jobs}"), |b| b.iter(|| run(exp, jobs)));
        }
        group.finish();
    }
    c.final_summary();
}
