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
    ///
    /// The exponential, the most common draw, is inlined into the caller; the others
    /// share one out-of-line function.
    #[inline(always)]
    pub fn sample(&self, rng: &mut Stream) -> Micros {
        match self {
            Sampler::Exp(mean) => {
                let e: f64 = Exp1.sample(rng);
                round_draw(e * mean)
            }
            _ => self.sample_other(rng),
        }
    }

    #[inline(never)]
    fn sample_other(&self, rng: &mut Stream) -> Micros {
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
        round_draw(x)
    }
}

/// A drawn duration in whole microseconds: `x + 0.5` truncated rounds a positive x
/// without a libm call on the hot path; draws beyond [`MAX_SPAN`] (and NaN: 0) are
/// capped. The same as `((x + 0.5) as Micros).min(MAX_SPAN)`, in fewer instructions:
/// below `MAX_SPAN` (exact in an `f64`) the signed conversion is one instruction and
/// truncates alike.
///
/// [`MAX_SPAN`]: crate::time::MAX_SPAN
#[inline(always)]
pub(crate) fn round_draw(x: f64) -> Micros {
    use crate::time::MAX_SPAN;
    if x > 0.0 {
        let y = x + 0.5;
        if y < MAX_SPAN as f64 {
            // SAFETY: `0.5 < y < MAX_SPAN` (NaN fails `x > 0.0`), so `y` is finite and its
            // truncation fits an `i64`: the one conversion instruction, without the checks
            // of a saturating `as` (the same value here).
            unsafe { y.to_int_unchecked::<i64>() as Micros }
        } else {
            MAX_SPAN
        }
    } else {
        0
    }
}

/// Moments, distribution function and quantiles of what [`Sampler::sample`] draws,
/// for comparing observed durations with the model (the deviation monitor). Rounding to
/// whole microseconds is ignored.
impl Sampler {
    /// Mean, microseconds.
    pub fn mean(&self) -> f64 {
        match self {
            Sampler::Const(d) => *d as f64,
            Sampler::Exp(mean) => *mean,
            Sampler::Uniform { min, width } => min + width / 2.0,
            Sampler::Tri { min, mode, max } => (min + mode + max) / 3.0,
            Sampler::Normal { mean, sd } => match truncated_normal(*mean, *sd) {
                Some((_, lambda)) => mean + sd * lambda,
                None => *mean,
            },
            Sampler::LogNormal { mu, sigma } => (mu + sigma * sigma / 2.0).exp(),
            Sampler::Empirical(points) => atoms(points).map(|(w, v)| w * v as f64).sum(),
        }
    }

    /// Variance, microseconds squared; zero for a distribution that always draws the
    /// same value.
    pub fn variance(&self) -> f64 {
        match self {
            Sampler::Const(_) => 0.0,
            Sampler::Exp(mean) => mean * mean,
            Sampler::Uniform { width, .. } => width * width / 12.0,
            Sampler::Tri { min: a, mode: b, max: c } => {
                ((a * a + b * b + c * c - a * b - a * c - b * c) / 18.0).max(0.0)
            }
            Sampler::Normal { mean, sd } => match truncated_normal(*mean, *sd) {
                Some((alpha, lambda)) => (sd * sd * (1.0 + alpha * lambda - lambda * lambda)).max(0.0),
                None => 0.0,
            },
            Sampler::LogNormal { mu, sigma } => {
                let s2 = sigma * sigma;
                (s2.exp() - 1.0) * (2.0 * mu + s2).exp()
            }
            Sampler::Empirical(points) => {
                let m = self.mean();
                atoms(points).map(|(w, v)| w * (v as f64 - m).powi(2)).sum()
            }
        }
    }

    /// `(P(X < x), P(X <= x))`: equal for continuous distributions, apart by the weight
    /// of `x` for the constant and empirical ones.
    pub fn cdf(&self, x: f64) -> (f64, f64) {
        let continuous = |p: f64| {
            let p = p.clamp(0.0, 1.0);
            (p, p)
        };
        match self {
            Sampler::Const(d) => {
                let d = *d as f64;
                (if x > d { 1.0 } else { 0.0 }, if x >= d { 1.0 } else { 0.0 })
            }
            Sampler::Exp(mean) => continuous(if x > 0.0 { -(-x / mean).exp_m1() } else { 0.0 }),
            Sampler::Uniform { min, width } => {
                if *width <= 0.0 {
                    Sampler::Const(*min as Micros).cdf(x)
                } else {
                    continuous((x - min) / width)
                }
            }
            Sampler::Tri { min, mode, max } => {
                let span = max - min;
                if span <= 0.0 {
                    return Sampler::Const(*min as Micros).cdf(x);
                }
                continuous(if x <= *min {
                    0.0
                } else if x <= *mode {
                    (x - min).powi(2) / (span * (mode - min))
                } else if x < *max {
                    1.0 - (max - x).powi(2) / (span * (max - mode))
                } else {
                    1.0
                })
            }
            Sampler::Normal { mean, sd } => {
                if *sd <= 0.0 {
                    return Sampler::Const(*mean as Micros).cdf(x);
                }
                let p0 = normal_cdf(-mean / sd);
                continuous(if x < 0.0 { 0.0 } else { (normal_cdf((x - mean) / sd) - p0) / (1.0 - p0) })
            }
            Sampler::LogNormal { mu, sigma } => {
                if *sigma <= 0.0 {
                    return Sampler::Const(mu.exp() as Micros).cdf(x);
                }
                continuous(if x > 0.0 { normal_cdf((x.ln() - mu) / sigma) } else { 0.0 })
            }
            Sampler::Empirical(points) => atoms(points).fold((0.0, 0.0), |(lo, hi), (w, v)| {
                let v = v as f64;
                (lo + if v < x { w } else { 0.0 }, hi + if v <= x { w } else { 0.0 })
            }),
        }
    }

    /// The value below which a share `u` (0 < u < 1) of draws fall. Empirical
    /// distributions answer by the scene's order of values, which is only a quantile
    /// when the values ascend; use [`Sampler::atoms`] for them.
    pub fn quantile(&self, u: f64) -> f64 {
        let u = u.clamp(f64::MIN_POSITIVE, 1.0 - f64::EPSILON);
        match self {
            Sampler::Const(d) => *d as f64,
            Sampler::Exp(mean) => -mean * (-u).ln_1p(),
            Sampler::Uniform { min, width } => min + u * width,
            Sampler::Tri { min, mode, max } => {
                let span = max - min;
                if span <= 0.0 {
                    *min
                } else if u < (mode - min) / span {
                    min + (u * span * (mode - min)).sqrt()
                } else {
                    max - ((1.0 - u) * span * (max - mode)).sqrt()
                }
            }
            Sampler::Normal { mean, sd } => {
                if *sd <= 0.0 {
                    return *mean;
                }
                let p0 = normal_cdf(-mean / sd);
                (mean + sd * normal_quantile(p0 + u * (1.0 - p0))).max(0.0)
            }
            Sampler::LogNormal { mu, sigma } => (mu + sigma * normal_quantile(u)).exp(),
            Sampler::Empirical(points) => {
                let idx = points.partition_point(|p| p.0 <= u).min(points.len() - 1);
                points[idx].1 as f64
            }
        }
    }

    /// The values of an empirical distribution with their probabilities; None for the
    /// others.
    pub fn atoms(&self) -> Option<Vec<(f64, Micros)>> {
        match self {
            Sampler::Empirical(points) => Some(atoms(points).collect()),
            _ => None,
        }
    }
}

/// `(probability, value)` of each point of an empirical sampler's cumulative table.
fn atoms(points: &[(f64, Micros)]) -> impl Iterator<Item = (f64, Micros)> + '_ {
    points.iter().scan(0.0, |prev, &(cum, v)| {
        let w = cum - *prev;
        *prev = cum;
        Some((w, v))
    })
}

/// `(alpha, lambda)` of a normal truncated at zero: `alpha = -mean / sd`, `lambda =
/// phi(alpha) / (1 - Phi(alpha))`; None when `sd` is zero.
fn truncated_normal(mean: f64, sd: f64) -> Option<(f64, f64)> {
    if sd <= 0.0 {
        return None;
    }
    let alpha = -mean / sd;
    let tail = 1.0 - normal_cdf(alpha);
    let lambda = if tail > 0.0 { normal_pdf(alpha) / tail } else { 0.0 };
    Some((alpha, lambda))
}

/// Density of the standard normal distribution.
pub fn normal_pdf(z: f64) -> f64 {
    (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt()
}

/// Distribution function of the standard normal, through the complementary error
/// function's Chebyshev fit (Numerical Recipes' `erfcc`, fractional error below 1.2e-7
/// everywhere).
pub fn normal_cdf(z: f64) -> f64 {
    let x = -z / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.5 * x.abs());
    let poly = -x * x - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let erfc = t * poly.exp();
    0.5 * if x >= 0.0 { erfc } else { 2.0 - erfc }
}

/// Quantile of the standard normal (Acklam's rational approximation, relative error
/// below 1.2e-9); minus or plus infinity at 0 and 1.
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] =
        [7.784_695_709_041_462e-3, 3.224_671_290_700_398e-1, 2.445_134_137_142_996, 3.754_408_661_907_416];
    const LOW: f64 = 0.024_25;
    if p <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if p >= 1.0 {
        return f64::INFINITY;
    }
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < LOW {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - LOW {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::stream;
    use crate::time::{MINUTE, SECOND};

    /// `round_draw` rounds exactly as the saturating cast it replaced, at the edges too.
    #[test]
    fn round_draw_equals_the_saturating_cast() {
        use crate::time::MAX_SPAN;
        let max = MAX_SPAN as f64;
        let edges = [
            f64::NAN,
            f64::NEG_INFINITY,
            -1.0,
            -0.0,
            0.0,
            1e-300,
            0.49,
            0.5,
            0.51,
            1.5,
            2.5,
            1e6 + 0.5,
            max - 1.0,
            max - 0.5,
            max - 0.25,
            max,
            max + 0.5,
            max * 2.0,
            1.9e19,
            1e300,
            f64::INFINITY,
        ];
        let mut rng = stream(3, "round");
        let random = (0..10_000).map(|_| rng.random::<f64>() * 10f64.powi(rng.random_range(0..18)));
        for x in edges.into_iter().chain(random) {
            let cast = if x > 0.0 { ((x + 0.5) as Micros).min(MAX_SPAN) } else { 0 };
            assert_eq!(round_draw(x), cast, "{x}");
        }
    }

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
    fn moments_and_distribution_functions_match_draws() {
        let d = |s: u64| Duration(s * SECOND);
        let dists = [
            Dist::Exp { mean: Duration(MINUTE) },
            Dist::Uniform { min: d(10), max: d(50) },
            Dist::Tri { min: d(10), mode: d(20), max: d(60) },
            Dist::Normal { mean: d(20), sd: d(15) },
            Dist::LogNormal { mean: d(60), sd: d(30) },
            Dist::Empirical(vec![(d(20), 3.0), (d(10), 1.0)]),
        ];
        let n = 100_000;
        for dist in &dists {
            let sampler = dist.sampler();
            let mut rng = stream(11, "moments");
            let xs: Vec<f64> = (0..n).map(|_| sampler.sample(&mut rng) as f64).collect();
            let mean = xs.iter().sum::<f64>() / n as f64;
            let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
            assert!(
                (mean / sampler.mean() - 1.0).abs() < 0.01,
                "{dist:?}: mean {mean} vs {}",
                sampler.mean()
            );
            assert!(
                (var / sampler.variance() - 1.0).abs() < 0.03,
                "{dist:?}: var {var} vs {}",
                sampler.variance()
            );
            let median = sampler.quantile(0.5);
            let below = xs.iter().filter(|&&x| x <= median).count() as f64 / n as f64;
            let (_, at_median) = sampler.cdf(median);
            assert!(
                (below - at_median).abs() < 0.01,
                "{dist:?}: {below} of draws <= {median}, cdf {at_median}"
            );
        }
        for p in [1e-6, 0.01, 0.3, 0.5, 0.9, 0.999] {
            assert!((normal_cdf(normal_quantile(p)) - p).abs() < 1e-7 * p.max(1e-3) * 10.0, "p = {p}");
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
