//! Processing-time distributions: their scene-file spelling ([`Dist`]) and the compiled
//! form the engine samples from ([`Sampler`]).

use rand::RngExt;
use rand_distr::{Distribution, Exp1, StandardNormal};
use serde::Deserialize;

use crate::rng::Stream;
use crate::time::{Duration, Micros};

/// A distribution of durations as written in a scene file.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Dist {
    /// Always the same duration.
    Const(Duration),
    /// Exponential with the given mean (memoryless; the M in M/M/1).
    Exp { mean: Duration },
    /// Uniform between `min` and `max`.
    Uniform { min: Duration, max: Duration },
    /// Triangular with the given minimum, most likely value and maximum.
    Tri { min: Duration, mode: Duration, max: Duration },
    /// Normal with the given mean and standard deviation, truncated at zero.
    Normal { mean: Duration, sd: Duration },
    /// Log-normal with the given mean and standard deviation of the duration itself.
    LogNormal { mean: Duration, sd: Duration },
    /// Observed values with relative weights (for example from a time study).
    Empirical(Vec<(Duration, f64)>),
}

impl Dist {
    /// The mean duration in microseconds, used for reports and ideal cycle times.
    pub fn mean(&self) -> f64 {
        match self {
            Dist::Const(d) => d.0 as f64,
            Dist::Exp { mean } | Dist::Normal { mean, .. } | Dist::LogNormal { mean, .. } => mean.0 as f64,
            Dist::Uniform { min, max } => (min.0 + max.0) as f64 / 2.0,
            Dist::Tri { min, mode, max } => (min.0 + mode.0 + max.0) as f64 / 3.0,
            Dist::Empirical(points) => {
                let total: f64 = points.iter().map(|p| p.1).sum();
                points.iter().map(|(d, w)| d.0 as f64 * w).sum::<f64>() / total
            }
        }
    }

    /// Every problem with the parameters, as messages; empty when the distribution is usable.
    ///
    /// `allow_zero` is for setups and repairs, where a zero duration is meaningful; a
    /// processing time of zero is not.
    pub fn problems(&self, allow_zero: bool) -> Vec<String> {
        let mut out = Vec::new();
        let positive = |name: &str, d: &Duration, out: &mut Vec<String>| {
            if d.0 == 0 && !allow_zero {
                out.push(format!("{name} must be greater than zero"));
            }
        };
        match self {
            Dist::Const(d) => positive("the duration", d, &mut out),
            Dist::Exp { mean } => {
                if mean.0 == 0 {
                    out.push("mean must be greater than zero".into());
                }
            }
            Dist::Uniform { min, max } => {
                positive("max", max, &mut out);
                if min > max {
                    out.push(format!("min ({min}) is greater than max ({max})"));
                }
            }
            Dist::Tri { min, mode, max } => {
                positive("max", max, &mut out);
                if !(min <= mode && mode <= max) {
                    out.push(format!("need min <= mode <= max, got {min}, {mode}, {max}"));
                }
                if min == max && min.0 == 0 {
                    out.push("all three values are zero".into());
                }
            }
            Dist::Normal { mean, .. } | Dist::LogNormal { mean, .. } => {
                if mean.0 == 0 {
                    out.push("mean must be greater than zero".into());
                }
            }
            Dist::Empirical(points) => {
                if points.is_empty() {
                    out.push("needs at least one (duration, weight) pair".into());
                }
                for (i, (d, w)) in points.iter().enumerate() {
                    if !(w.is_finite() && *w > 0.0) {
                        out.push(format!("weight of value {i} must be a positive number, got {w}"));
                    }
                    positive(&format!("value {i}"), d, &mut out);
                }
            }
        }
        out
    }

    /// Compiles a validated distribution for sampling.
    pub fn sampler(&self) -> Sampler {
        match self {
            Dist::Const(d) => Sampler::Const(d.0),
            Dist::Exp { mean } => Sampler::Exp(mean.0 as f64),
            Dist::Uniform { min, max } => {
                Sampler::Uniform { min: min.0 as f64, width: max.0.saturating_sub(min.0) as f64 }
            }
            Dist::Tri { min, mode, max } => {
                Sampler::Tri { min: min.0 as f64, mode: mode.0 as f64, max: max.0 as f64 }
            }
            Dist::Normal { mean, sd } => Sampler::Normal { mean: mean.0 as f64, sd: sd.0 as f64 },
            Dist::LogNormal { mean, sd } => {
                let (m, s) = (mean.0 as f64, sd.0 as f64);
                let sigma2 = (1.0 + (s * s) / (m * m)).ln();
                Sampler::LogNormal { mu: m.ln() - sigma2 / 2.0, sigma: sigma2.sqrt() }
            }
            Dist::Empirical(points) => {
                let total: f64 = points.iter().map(|p| p.1).sum();
                let mut acc = 0.0;
                let cumulative = points
                    .iter()
                    .map(|(d, w)| {
                        acc += w / total;
                        (acc, d.0)
                    })
                    .collect();
                Sampler::Empirical(cumulative)
            }
        }
    }
}

/// A distribution ready to sample, parameters in microseconds.
#[derive(Clone, Debug, PartialEq)]
pub enum Sampler {
    Const(Micros),
    Exp(f64),
    Uniform {
        min: f64,
        width: f64,
    },
    Tri {
        min: f64,
        mode: f64,
        max: f64,
    },
    Normal {
        mean: f64,
        sd: f64,
    },
    LogNormal {
        mu: f64,
        sigma: f64,
    },
    /// Cumulative probability and value, ascending in probability.
    Empirical(Vec<(f64, Micros)>),
}

impl Sampler {
    /// Draws one duration. Constant samplers draw nothing, so that switching a station
    /// between constant and random times does not shift anyone else's stream.
    #[inline]
    pub fn sample(&self, rng: &mut Stream) -> Micros {
        let x = match self {
            Sampler::Const(d) => return *d,
            Sampler::Exp(mean) => {
                let e: f64 = Exp1.sample(rng);
                e * mean
            }
            Sampler::Uniform { min, width } => min + rng.random::<f64>() * width,
            Sampler::Tri { min, mode, max } => {
                let u: f64 = rng.random();
                let span = max - min;
                if span <= 0.0 {
                    *min
                } else {
                    let f = (mode - min) / span;
                    if u < f {
                        min + (u * span * (mode - min)).sqrt()
                    } else {
                        max - ((1.0 - u) * span * (max - mode)).sqrt()
                    }
                }
            }
            Sampler::Normal { mean, sd } => {
                // Truncation at zero by rejection: the mean is positive, so at least half
                // of all draws are accepted and the loop ends quickly.
                let mut x;
                let mut tries = 0;
                loop {
                    let z: f64 = StandardNormal.sample(rng);
                    x = mean + sd * z;
                    tries += 1;
                    if x >= 0.0 || tries >= 64 {
                        break;
                    }
                }
                x.max(0.0)
            }
            Sampler::LogNormal { mu, sigma } => {
                let z: f64 = StandardNormal.sample(rng);
                (mu + sigma * z).exp()
            }
            Sampler::Empirical(points) => {
                let u: f64 = rng.random();
                let idx = points.partition_point(|p| p.0 <= u).min(points.len() - 1);
                return points[idx].1;
            }
        };
        // `x + 0.5` truncated rounds a positive x without a libm call on the hot path;
        // the cast saturates, so huge draws cannot wrap.
        if x > 0.0 { ((x + 0.5) as Micros).min(crate::time::MAX_SPAN) } else { 0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::stream;
    use crate::time::{MINUTE, SECOND};

    fn mean_of(dist: &Dist, n: usize) -> f64 {
        let sampler = dist.sampler();
        let mut rng = stream(7, "test");
        (0..n).map(|_| sampler.sample(&mut rng) as f64).sum::<f64>() / n as f64
    }

    #[test]
    fn sample_means_match_declared_means() {
        let d = |s: u64| Duration(s * SECOND);
        let dists = [
            Dist::Exp { mean: Duration(MINUTE) },
            Dist::Uniform { min: d(10), max: d(50) },
            Dist::Tri { min: d(10), mode: d(20), max: d(60) },
            Dist::Normal { mean: d(60), sd: d(10) },
            Dist::LogNormal { mean: d(60), sd: d(30) },
            Dist::Empirical(vec![(d(10), 1.0), (d(20), 3.0)]),
        ];
        for dist in &dists {
            let m = mean_of(dist, 200_000);
            let rel = (m - dist.mean()).abs() / dist.mean();
            assert!(rel < 0.01, "{dist:?}: sample mean {m} vs {}", dist.mean());
        }
    }

    #[test]
    fn bad_parameters_are_named() {
        let d = |s: u64| Duration(s * SECOND);
        assert!(!Dist::Uniform { min: d(5), max: d(1) }.problems(false).is_empty());
        assert!(!Dist::Tri { min: d(1), mode: d(9), max: d(5) }.problems(false).is_empty());
        assert!(!Dist::Const(d(0)).problems(false).is_empty());
        assert!(Dist::Const(d(0)).problems(true).is_empty());
        assert!(!Dist::Empirical(vec![(d(1), -1.0)]).problems(false).is_empty());
    }
}
