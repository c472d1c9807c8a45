//! Running an experiment: every (variant, replication) pair on a pool of threads.
//!
//! Replications are pure functions of (model, seed), each result is stored at its
//! (variant, replication) slot, and the summary is computed from the slots in order,
//! so the results are bit-identical whatever the number of jobs or completion order.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use twin_core::{Report, Sim};

use crate::error::LabError;
use crate::experiment::Experiment;
use crate::results::{Outcome, Replication, Results};

/// How to run an experiment; results never depend on it.
#[derive(Clone, Copy, Debug, Default)]
pub struct RunOptions {
    /// Replications run at once; 0 means one per available core.
    pub jobs: usize,
}

/// One finished replication, reported as soon as it finishes.
///
/// Events arrive one at a time (never concurrently) with `done` counting up by one,
/// but in completion order: with several jobs, replication 3 may be reported before 2.
#[derive(Debug)]
pub struct Progress<'a> {
    /// Index of the variant in [`Experiment::variants`].
    pub variant_idx: usize,
    pub variant: &'a str,
    /// Replication number within the variant, 0-based.
    pub replication: u32,
    /// Seed of this replication (`twin run --seed` reproduces the baseline's runs).
    pub seed: u64,
    /// Replications finished so far, this one included.
    pub done: usize,
    /// Replications in all.
    pub total: usize,
    /// This replication's value of each of the experiment's KPIs, in order.
    pub values: &'a [f64],
    /// The replication's full report (for gRPC's `KpiSummary`).
    pub report: &'a Report,
}

/// How often a running replication checks the cancel flag, in slices of its run.
const CANCEL_CHECKS: u64 = 64;

/// Runs every variant x replication of `experiment` on `options.jobs` threads.
///
/// `on_progress` is called once per finished replication, from worker threads but
/// never concurrently. Setting `cancel` stops the experiment within a fraction of one
/// replication; the result then has [`Outcome::Cancelled`] and holds the replications
/// that finished. Work is handed out replication-major (replication 0 of every variant
/// first), so a cancelled experiment still compares variants on equal terms.
///
/// Errors: a KPI that is null in some replication (e.g. `complex.on_time_share` with no
/// due dates), or a crash in the core; either stops the remaining work.
///
/// The call blocks until done; a tokio server runs it in `spawn_blocking`.
pub fn run(
    experiment: &Experiment,
    options: &RunOptions,
    on_progress: impl Fn(&Progress<'_>) + Sync,
    cancel: &AtomicBool,
) -> Result<Results, LabError> {
    let n_variants = experiment.variants.len();
    let total = experiment.total_runs();
    let jobs = match options.jobs {
        0 => std::thread::available_parallelism().map_or(1, usize::from),
        n => n,
    }
    .clamp(1, total.max(1));

    let slots: Vec<Mutex<Option<Result<Replication, LabError>>>> =
        (0..total).map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let done = Mutex::new(0usize);

    let work = || {
        loop {
            if cancel.load(Ordering::Relaxed) || failed.load(Ordering::Relaxed) {
                break;
            }
            let idx = next.fetch_add(1, Ordering::Relaxed);
            if idx >= total {
                break;
            }
            let variant_idx = idx % n_variants;
            let replication = (idx / n_variants) as u32;
            let outcome = run_one(experiment, variant_idx, replication, cancel);
            let result = match outcome {
                Ok(None) => break,
                Ok(Some((rep, report))) => {
                    let mut done = done.lock().unwrap_or_else(PoisonError::into_inner);
                    *done += 1;
                    on_progress(&Progress {
                        variant_idx,
                        variant: &experiment.variants[variant_idx].name,
                        replication,
                        seed: rep.seed,
                        done: *done,
                        total,
                        values: &rep.values,
                        report: &report,
                    });
                    Ok(rep)
                }
                Err(e) => {
                    failed.store(true, Ordering::Relaxed);
                    Err(e)
                }
            };
            *slots[idx].lock().unwrap_or_else(PoisonError::into_inner) = Some(result);
        }
    };
    std::thread::scope(|scope| {
        for _ in 1..jobs {
            scope.spawn(work);
        }
        work();
    });

    let mut finished = Vec::new();
    for slot in slots {
        match slot.into_inner().unwrap_or_else(PoisonError::into_inner) {
            Some(Ok(rep)) => finished.push(rep),
            Some(Err(e)) => return Err(e),
            None => {}
        }
    }
    let outcome = if finished.len() == total { Outcome::Completed } else { Outcome::Cancelled };
    Ok(Results::summarise(experiment, outcome, finished))
}

/// Runs replication `replication` of variant `variant_idx`: the pure function (variant
/// model, seed) -> KPI values that a distributed worker (`twin worker`) runs per job.
/// The result is bit-identical to the same replication inside [`run()`].
///
/// Errors: an index out of range, a KPI that is null in this replication, a crash in
/// the core.
pub fn replicate(
    experiment: &Experiment,
    variant_idx: usize,
    replication: u32,
) -> Result<Replication, LabError> {
    if variant_idx >= experiment.variants.len() || replication >= experiment.replications {
        return Err(LabError::NoSuchReplication {
            variant: variant_idx,
            replication,
            variants: experiment.variants.len(),
            replications: experiment.replications,
        });
    }
    // Never set, so `run_one` always finishes the run.
    let never = AtomicBool::new(false);
    let (rep, _report) = run_one(experiment, variant_idx, replication, &never)?
        .expect("run_one returns None only when its cancel flag is set");
    Ok(rep)
}

/// Runs one replication; `None` when cancelled part-way.
fn run_one(
    experiment: &Experiment,
    variant_idx: usize,
    replication: u32,
    cancel: &AtomicBool,
) -> Result<Option<(Replication, Report)>, LabError> {
    let variant = &experiment.variants[variant_idx];
    let seed = experiment.seed_of(variant_idx, replication);
    // The variant's model already carries the experiment's run length and warm-up.
    let model = Arc::clone(&variant.model);
    let until = model.until;
    let crashed =
        |message: String| LabError::Crashed { variant: variant.name.clone(), replication, seed, message };
    let simulated = catch_unwind(AssertUnwindSafe(|| {
        let mut sim = Sim::new(model, seed);
        let slice = (until / CANCEL_CHECKS).max(1);
        let mut t = 0;
        while t < until {
            if cancel.load(Ordering::Relaxed) {
                return None;
            }
            t = (t + slice).min(until);
            sim.run_until(t);
        }
        Some(sim.report())
    }))
    .map_err(|panic| {
        crashed(
            panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "panic".into()),
        )
    })?;
    let Some(report) = simulated else {
        return Ok(None);
    };
    let json = serde_json::to_value(&report).map_err(|e| crashed(e.to_string()))?;
    let mut values = Vec::with_capacity(experiment.kpis.len());
    for kpi in &experiment.kpis {
        let kpi_error = |message: String| LabError::Kpi {
            variant: variant.name.clone(),
            replication,
            kpi: kpi.name.clone(),
            message,
        };
        match kpi.path.lookup(&json) {
            Ok(Some(v)) => values.push(v),
            Ok(None) => {
                return Err(kpi_error(
                    "the report has no value here (null), e.g. an on-time share without \
                     due dates"
                        .into(),
                ));
            }
            Err(message) => return Err(kpi_error(message)),
        }
    }
    let bottlenecks = variant
        .model
        .stations
        .iter()
        .map(|st| report.bottlenecks.iter().find(|b| b.station == st.id).map_or(0.0, |b| b.share))
        .collect();
    Ok(Some((
        Replication { variant: variant_idx, replication, seed, events: report.events, values, bottlenecks },
        report,
    )))
}
