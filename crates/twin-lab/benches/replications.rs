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

/// CPU seconds (user + system) this process has used so far, where Linux tells.
///
/// Wall-clock speed-up needs idle cores; CPU time per replication shows whether running
/// in parallel costs extra work, whatever else the machine is doing.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0) // USER_HZ is 100 on Linux.
}

/// Best replications per second over a few runs, and CPU milliseconds per replication.
fn rate(exp: &Experiment, jobs: usize) -> (f64, Option<f64>) {
    let mut best = 0.0f64;
    let cpu_before = cpu_seconds();
    for _ in 0..SUMMARY_ROUNDS {
        let t = Instant::now();
        run(exp, jobs);
        best = best.max(exp.total_runs() as f64 / t.elapsed().as_secs_f64());
    }
    let runs = (SUMMARY_ROUNDS * exp.total_runs()) as f64;
    let cpu_ms = cpu_before.zip(cpu_seconds()).map(|(a, b)| (b - a) * 1000.0 / runs);
    (best, cpu_ms)
}

fn summary(name: &str, exp: &Experiment) {
    let (one, cpu_one) = rate(exp, 1);
    let (two, cpu_two) = rate(exp, 2);
    let cpu = match cpu_one.zip(cpu_two) {
        Some((a, b)) => format!("; CPU per replication {a:.2} ms with 1 job, {b:.2} ms with 2"),
        None => String::new(),
    };
    println!(
        "{name}: {one:.1} replications/s with 1 job, {two:.1} with 2 jobs: speed-up {:.2}x \
         ({} replications of {} simulated{cpu})",
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
