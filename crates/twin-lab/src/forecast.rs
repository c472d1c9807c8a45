//! Running a forecast's replications on a pool of threads.
//!
//! Each replication is a pure function of (state, request, index) (see
//! [`twin_core::forecast`]); outcomes are stored at their index and summarised in index
//! order, so the forecast is bit-identical whatever the number of jobs.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use twin_core::forecast::{Forecast, Forecaster, Outcome};

/// Runs every replication of `forecaster` on `jobs` threads (0: one per available core)
/// and summarises them. `on_progress(done, total)` is called after each replication,
/// from worker threads but never concurrently, with `done` counting up by one. Setting
/// `cancel` stops the work within one replication; the result is then `None`.
pub fn run_forecast(
    forecaster: &Forecaster,
    jobs: usize,
    on_progress: impl Fn(u32, u32) + Sync,
    cancel: &AtomicBool,
) -> Option<Forecast> {
    let total = forecaster.replications();
    let jobs = match jobs {
        0 => std::thread::available_parallelism().map_or(1, usize::from),
        n => n,
    }
    .clamp(1, total as usize);
    let slots: Vec<Mutex<Option<Outcome>>> = (0..total).map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let done = Mutex::new(0u32);
    let work = || {
        while !cancel.load(Ordering::Relaxed) {
            let idx = next.fetch_add(1, Ordering::Relaxed);
            if idx >= total as usize {
                break;
            }
            let outcome = forecaster.replicate(idx as u32);
            *slots[idx].lock().unwrap_or_else(PoisonError::into_inner) = Some(outcome);
            let mut done = done.lock().unwrap_or_else(PoisonError::into_inner);
            *done += 1;
            on_progress(*done, total);
        }
    };
    std::thread::scope(|scope| {
        for _ in 1..jobs {
            scope.spawn(work);
        }
        work();
    });
    let outcomes: Option<Vec<Outcome>> =
        slots.into_iter().map(|slot| slot.into_inner().unwrap_or_else(PoisonError::into_inner)).collect();
    outcomes.map(|outcomes| forecaster.summarise(&outcomes))
}
