//! The cycle-time test: a two-sided CUSUM on cycle times standardised through the
//! model's own distribution, with thresholds set by a stated in-control average run
//! length (not a fixed tolerance).
//!
//! **Standardising.** Each observed processing time `x` of a station (and product) goes
//! through the model's distribution function `F` of that step and the standard normal
//! quantile: `z = Phi^-1(F(x))`. If the plant behaves as modelled, `F(x)` is uniform, so
//! `z` is exactly standard normal whatever the distribution (exponential, triangular,
//! log-normal...), and normal-theory CUSUM run lengths hold. Empirical (discrete)
//! distributions use the mid-point `(P(X < x) + P(X <= x)) / 2`, whose `z` has a variance
//! below one: fewer false alarms than stated, not more. A distribution that always draws
//! the same value has no spread to compare with; its `z` is `(x - value) / sd` with the
//! spread of the reporting resolution ([`RESOLUTION`], a uniform rounding error:
//! `sd = RESOLUTION / sqrt(12)`), so an exact plant never alarms and one that is off by
//! more than the resolution soon does. `z` is clamped to +-[`Z_CLAMP`] (an observation
//! outside the model's support, say, counts as a 5-sigma one), which only shortens
//! excursions.
//!
//! **Test.** Upper side `S+ = max(0, S+ + z - k+)`, lower side `S- = max(0, S- - z - k-)`;
//! a side alarms when it exceeds `h`. Each side's reference `k` is half the mean shift of
//! `z` that the [`Design`]'s relative change causes under the model's distribution
//! (computed by quadrature at the first observation), so the test is tuned to the
//! smallest change worth an alarm, whatever the station's variability; `k` is kept within
//! [`K_MIN`, `K_MAX`]. `h` is chosen so that the side's in-control average run length is
//! the design's `arl0` observations by Siegmund's approximation
//! `ARL = (exp(2 k b) - 2 k b - 1) / (2 k^2)`, `b = h + 1.166`. The false-alarm rate is
//! therefore about `1 / arl0` per observation and side. Designs in use:
//! - cycle times ([`CYCLE_DESIGN`]): tuned to +-10%, `arl0` 1e7 per side, so 2e-7 per
//!   cycle for both sides;
//! - times between failures and repair times ([`FAILURE_DESIGN`]): tuned to twice (or
//!   half) the model's figure, `arl0` 1e4 per side, so 2e-4 per failure (or repair) for
//!   both sides. Failures are rare, so a smaller run length still means years between
//!   false alarms, and a larger design change keeps the detection delay in failures, not
//!   hundreds of them.
//!
//! Throughput windows use the same one-sided recursions on normal scores with the fixed
//! reference `k = 0.5` ([`NormalCusum`], see `throughput.rs`).
//!
//! **Clearing.** While a side's alarm is open, the side stops accumulating and runs the
//! mirror test for a return to the model (`R = max(0, R + k - z)` for an upper alarm):
//! the same `k` and `h`, so clearing while the plant still deviates by the design shift
//! is as rare as a false alarm, and a plant back on model clears after about `h / k`
//! cycles.
//!
//! **Figures.** The plant's and the model's figures of an alarm are the mean observed and
//! the mean expected processing time over the observations since the side last left
//! zero (the CUSUM's estimate of where the change began).

use serde::{Deserialize, Serialize};

use super::{Direction, Evidence};
use crate::dist::{Sampler, normal_quantile};

/// In-control average run length of each one-sided cycle-time test, in observations.
pub const ARL0: f64 = 1e7;
/// The relative change of processing time each side is tuned to detect.
pub const DESIGN_SHIFT: f64 = 0.10;

/// What a PIT-based two-sided test is tuned to: the relative change of the measured
/// time each side should detect, and the in-control run length of each side.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Design {
    /// Relative change the upper side is tuned to (`0.1`: 10% longer).
    pub up: f64,
    /// Relative change the lower side is tuned to (`-0.1`: 10% shorter).
    pub down: f64,
    /// In-control average run length of each side, in observations.
    pub arl0: f64,
}

/// Cycle times: +-10%, 1e7 cycles per side.
pub const CYCLE_DESIGN: Design = Design { up: DESIGN_SHIFT, down: -DESIGN_SHIFT, arl0: ARL0 };
/// Times between failures and repair times: twice or half the model's, 1e4 per side.
pub const FAILURE_DESIGN: Design = Design { up: 1.0, down: -0.5, arl0: 1e4 };
/// Reporting resolution assumed for distributions without spread, microseconds (plant
/// clocks and Sparkplug timestamps are milliseconds).
pub const RESOLUTION: f64 = 1_000.0;
/// Largest standardised value one observation may contribute.
pub const Z_CLAMP: f64 = 5.0;
/// Bounds on the reference value: below `K_MIN` the thresholds grow without use; above
/// `K_MAX` a clamped observation could no longer move the statistic.
const K_MIN: f64 = 0.005;
const K_MAX: f64 = 2.0;
/// Points of the midpoint rule that computes the design shift.
const QUADRATURE: usize = 1_000;

/// One step's distribution as the test sees it.
fn score(sampler: &Sampler, x: f64) -> f64 {
    let z = if sampler.variance() > 0.0 {
        let (below, at_or_below) = sampler.cdf(x);
        normal_quantile((below + at_or_below) / 2.0)
    } else {
        (x - sampler.mean()) / (RESOLUTION / 12f64.sqrt())
    };
    z.clamp(-Z_CLAMP, Z_CLAMP)
}

/// The mean of `score` when processing times are `1 + rel` times the model's.
fn mean_shift(sampler: &Sampler, rel: f64) -> f64 {
    let scale = 1.0 + rel;
    if let Some(atoms) = sampler.atoms() {
        return atoms
            .iter()
            .map(|&(w, v)| w * (score(sampler, v as f64 * scale) - score(sampler, v as f64)))
            .sum();
    }
    (0..QUADRATURE)
        .map(|j| {
            let x = sampler.quantile((j as f64 + 0.5) / QUADRATURE as f64);
            score(sampler, x * scale) - score(sampler, x)
        })
        .sum::<f64>()
        / QUADRATURE as f64
}

/// Siegmund's approximation of the in-control run length of a one-sided CUSUM on
/// standard normal data.
fn siegmund_arl0(k: f64, h: f64) -> f64 {
    let a = 2.0 * k * (h + 1.166);
    (a.exp() - a - 1.0) / (2.0 * k * k)
}

/// The threshold giving in-control run length `arl0` for reference `k` (bisection; the
/// run length grows with `h`).
fn threshold(k: f64, arl0: f64) -> f64 {
    let (mut lo, mut hi) = (0.0, 1.0);
    while siegmund_arl0(k, hi) < arl0 && hi < 1e6 {
        hi *= 2.0;
    }
    for _ in 0..100 {
        let mid = (lo + hi) / 2.0;
        if siegmund_arl0(k, mid) < arl0 { lo = mid } else { hi = mid }
    }
    hi
}

/// One side of the two-sided test.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Side {
    direction: Direction,
    /// Reference value `k`.
    k: f64,
    /// Threshold `h`.
    h: f64,
    /// The in-control run length `h` was set for.
    arl0: f64,
    /// The CUSUM statistic.
    s: f64,
    /// Observations since `s` last left zero, and the plant's and model's sums over them.
    run: u64,
    plant_sum: f64,
    model_sum: f64,
    /// The open alarm this side raised, and the statistic of the test for a return to
    /// the model.
    open: Option<u64>,
    back: f64,
}

impl Side {
    fn new(direction: Direction, k: f64, arl0: f64) -> Side {
        let k = k.clamp(K_MIN, K_MAX);
        Side {
            direction,
            k,
            h: threshold(k, arl0),
            arl0,
            s: 0.0,
            run: 0,
            plant_sum: 0.0,
            model_sum: 0.0,
            open: None,
            back: 0.0,
        }
    }

    /// Takes one standardised observation `z` (already signed for this side).
    fn observe(&mut self, z: f64, plant: f64, model: f64) -> Option<Verdict> {
        if let Some(alarm) = self.open {
            self.back = (self.back + self.k - z).max(0.0);
            if self.back > self.h {
                self.open = None;
                self.back = 0.0;
                return Some(Verdict::Clear { alarm });
            }
            return None;
        }
        self.s = (self.s + z - self.k).max(0.0);
        if self.s == 0.0 {
            self.run = 0;
            self.plant_sum = 0.0;
            self.model_sum = 0.0;
            return None;
        }
        self.run += 1;
        self.plant_sum += plant;
        self.model_sum += model;
        if self.s <= self.h {
            return None;
        }
        let n = self.run as f64;
        let verdict = Verdict::Raise {
            direction: self.direction,
            plant: self.plant_sum / n,
            model: self.model_sum / n,
            evidence: Evidence {
                statistic: self.s,
                threshold: self.h,
                reference: self.k,
                observations: self.run,
                arl0: self.arl0,
            },
        };
        self.s = 0.0;
        self.run = 0;
        self.plant_sum = 0.0;
        self.model_sum = 0.0;
        Some(verdict)
    }
}

/// What one observation decided.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Verdict {
    /// A side crossed its threshold: raise an alarm (and tell the detector its id).
    Raise { direction: Direction, plant: f64, model: f64, evidence: Evidence },
    /// The plant is back on model: this alarm clears.
    Clear { alarm: u64 },
}

/// A two-sided PIT-based test of one measured time (a station's cycle times for one
/// product, its times between failures, its repair times).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Detector {
    up: Side,
    down: Side,
    observations: u64,
}

impl Detector {
    /// A detector tuned by `design` to `sampler`, the model's distribution of the time.
    pub(crate) fn new(sampler: &Sampler, design: Design) -> Detector {
        Detector {
            up: Side::new(Direction::Above, mean_shift(sampler, design.up).abs() / 2.0, design.arl0),
            down: Side::new(Direction::Below, mean_shift(sampler, design.down).abs() / 2.0, design.arl0),
            observations: 0,
        }
    }

    /// Takes one observed time (microseconds).
    pub(crate) fn observe(&mut self, sampler: &Sampler, duration: f64) -> Vec<Verdict> {
        self.observations += 1;
        let x = duration;
        let z = score(sampler, x);
        let mean = sampler.mean();
        [self.up.observe(z, x, mean), self.down.observe(-z, x, mean)].into_iter().flatten().collect()
    }

    /// Records the id of the alarm a side's verdict raised.
    pub(crate) fn opened(&mut self, direction: Direction, alarm: u64) {
        let side = if direction == Direction::Above { &mut self.up } else { &mut self.down };
        side.open = Some(alarm);
    }

    /// Observations taken so far.
    pub(crate) fn observations(&self) -> u64 {
        self.observations
    }
}

/// Reference value of the throughput test: tuned to a shift of one standard deviation.
pub const NORMAL_K: f64 = 0.5;

/// A two-sided CUSUM on scores that are standard normal while the plant matches the
/// model (throughput windows), with reference [`NORMAL_K`] and run length `arl0`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct NormalCusum {
    up: Side,
    down: Side,
}

impl NormalCusum {
    pub(crate) fn new(arl0: f64) -> NormalCusum {
        NormalCusum {
            up: Side::new(Direction::Above, NORMAL_K, arl0),
            down: Side::new(Direction::Below, NORMAL_K, arl0),
        }
    }

    /// Takes one score `z` with the plant's and model's figures it came from.
    pub(crate) fn observe(&mut self, z: f64, plant: f64, model: f64) -> Vec<Verdict> {
        let z = z.clamp(-Z_CLAMP, Z_CLAMP);
        [self.up.observe(z, plant, model), self.down.observe(-z, plant, model)]
            .into_iter()
            .flatten()
            .collect()
    }

    /// Records the id of the alarm a side's verdict raised.
    pub(crate) fn opened(&mut self, direction: Direction, alarm: u64) {
        let side = if direction == Direction::Above { &mut self.up } else { &mut self.down };
        side.open = Some(alarm);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::stream;

    /// Average run length of one side over `runs` in-control runs at a small ARL0, to
    /// check the threshold formula on the standardised scale.
    fn in_control_arl(sampler: &Sampler, arl0: f64, runs: usize) -> f64 {
        let k = mean_shift(sampler, DESIGN_SHIFT).abs() / 2.0;
        let k = k.clamp(K_MIN, K_MAX);
        let h = threshold(k, arl0);
        let mut rng = stream(3, "arl");
        let mut total = 0u64;
        for _ in 0..runs {
            let mut s = 0.0f64;
            let mut n = 0u64;
            while s <= h {
                s = (s + score(sampler, sampler.sample(&mut rng) as f64) - k).max(0.0);
                n += 1;
            }
            total += n;
        }
        total as f64 / runs as f64
    }

    #[test]
    fn in_control_run_lengths_match_the_design() {
        let samplers = [
            Sampler::Exp(60e6),
            Sampler::Tri { min: 55e6, mode: 65e6, max: 85e6 },
            Sampler::LogNormal { mu: 17.9, sigma: 0.4 },
        ];
        for sampler in &samplers {
            let arl = in_control_arl(sampler, 500.0, 400);
            // Siegmund's approximation is within a few percent for normal data; 400 runs
            // of a roughly geometric run length have a standard error of 5%.
            assert!((arl / 500.0 - 1.0).abs() < 0.2, "{sampler:?}: in-control ARL {arl} for a design of 500");
        }
    }

    #[test]
    fn design_shift_is_positive_and_thresholds_finite() {
        for sampler in
            [Sampler::Exp(60e6), Sampler::Const(45_000_000), Sampler::Empirical(vec![(0.25, 10), (1.0, 20)])]
        {
            let d = Detector::new(&sampler, CYCLE_DESIGN);
            assert!(
                d.up.k > 0.0 && d.down.k > 0.0 && d.up.h.is_finite() && d.up.h > 0.0,
                "{sampler:?}: {d:?}"
            );
        }
    }

    #[test]
    fn an_exact_constant_plant_never_alarms_and_a_slow_one_soon_does() {
        let sampler = Sampler::Const(45_000_000);
        let mut d = Detector::new(&sampler, CYCLE_DESIGN);
        assert!((0..10_000).all(|_| d.observe(&sampler, 45e6).is_empty()));
        let n = (1..100).find(|_| !d.observe(&sampler, 54e6).is_empty());
        assert!(n.is_some_and(|n| n <= 3), "a 20% slower constant station alarms within 3 cycles: {n:?}");
    }
}
