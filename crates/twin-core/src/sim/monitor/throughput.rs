//! Throughput: the plant's completed parts per window against the model's over the same
//! window, by a two-sided CUSUM on standardised differences.
//!
//! **Windows.** The plant's cumulative `parts_out` arrives with its counters; a window
//! closes at the first report at least [`WINDOW`] after it opened. The plant's figure is
//! the increase of `parts_out` over the window, the model's the increase of the twin's
//! own completions of that station over the same simulated interval (same shifts, same
//! plant-reported breakdowns: what the model makes of the plant's situation). Both are
//! scaled to parts per hour. A counter that goes back (a restarted plant, the twin's
//! statistics reset after its warm-up) restarts the window.
//!
//! **Score.** `z = (plant - model) / sqrt(2 v)`, where `v` is the variance of the model's
//! window rate, estimated from the model's own windows (Welford), floored at the Poisson
//! variance (the mean): if plant and model draw from the same process, `plant - model`
//! has mean zero and variance at most `2 v` (less, as the plant's breakdowns reach both).
//! No window is tested before [`MIN_WINDOWS`] model windows have been seen.
//!
//! **Test.** [`NormalCusum`] with `k = 0.5` (tuned to a one-standard-deviation shift of
//! the difference) and in-control run length [`ARL0_WINDOWS`] windows per side: about
//! `2e-5` false alarms per station-hour for both sides, assuming normal, independent
//! windows; dependence between neighbouring windows and a small estimate of `v` make the
//! real rate higher, the floor and the shared breakdowns lower.

use serde::{Deserialize, Serialize};

use super::cusum::{NormalCusum, Verdict};
use crate::time::{HOUR, Micros};

/// Length of a throughput window, simulated time.
pub const WINDOW: Micros = HOUR;
/// Model windows seen before the first test.
pub const MIN_WINDOWS: u64 = 24;
/// In-control average run length of each side, in windows.
pub const ARL0_WINDOWS: f64 = 1e5;

/// The throughput test of one station.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct ThroughputWatch {
    /// Where the open window began: time, plant's `parts_out`, model's completions.
    start: Option<(Micros, u64, u64)>,
    /// Welford's running mean and sum of squares of the model's window rates.
    windows: u64,
    mean: f64,
    m2: f64,
    cusum: NormalCusum,
}

impl Default for ThroughputWatch {
    fn default() -> ThroughputWatch {
        ThroughputWatch { start: None, windows: 0, mean: 0.0, m2: 0.0, cusum: NormalCusum::new(ARL0_WINDOWS) }
    }
}

impl ThroughputWatch {
    /// Takes the plant's `parts_out` and the model's completions of the station at `now`.
    pub(super) fn counts(&mut self, now: Micros, plant: u64, model: u64) -> Vec<Verdict> {
        let Some((t0, p0, m0)) = self.start else {
            self.start = Some((now, plant, model));
            return Vec::new();
        };
        if plant < p0 || model < m0 {
            self.start = Some((now, plant, model));
            return Vec::new();
        }
        if now < t0 + WINDOW {
            return Vec::new();
        }
        self.start = Some((now, plant, model));
        let per_hour = HOUR as f64 / (now - t0) as f64;
        let (plant_rate, model_rate) = ((plant - p0) as f64 * per_hour, (model - m0) as f64 * per_hour);
        let tested = self.windows >= MIN_WINDOWS;
        // The variance before this window is taken in, so the window does not vouch for
        // itself.
        let variance = self.variance();
        self.windows += 1;
        let delta = model_rate - self.mean;
        self.mean += delta / self.windows as f64;
        self.m2 += delta * (model_rate - self.mean);
        if !tested {
            return Vec::new();
        }
        let z = (plant_rate - model_rate) / (2.0 * variance).sqrt();
        self.cusum.observe(z, plant_rate, model_rate)
    }

    /// Variance of the model's window rate, floored at the Poisson variance (and at one,
    /// so that a station that produces nothing does not divide by zero).
    fn variance(&self) -> f64 {
        let sample = if self.windows > 1 { self.m2 / (self.windows - 1) as f64 } else { 0.0 };
        sample.max(self.mean).max(1.0)
    }

    /// Records the id of the alarm a side's verdict raised.
    pub(super) fn opened(&mut self, direction: super::Direction, alarm: u64) {
        self.cusum.opened(direction, alarm);
    }

    /// Windows compared so far.
    pub(super) fn windows(&self) -> u64 {
        self.windows
    }
}
