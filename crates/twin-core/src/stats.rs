//! Statistics accumulators: integer time integrals, counts and lead-time quantiles.

use hdrhistogram::Histogram;

use crate::time::Micros;

/// Lead times of finished parts: exact mean, quantiles to 3 significant digits.
#[derive(Clone, Debug)]
pub struct LeadTimes {
    histogram: Histogram<u64>,
    sum: u128,
    count: u64,
}

impl Default for LeadTimes {
    fn default() -> Self {
        LeadTimes {
            histogram: Histogram::new(3).expect("3 significant digits is a valid precision"),
            sum: 0,
            count: 0,
        }
    }
}

/// The histogram travels as its non-empty buckets: `(a value of the bucket, count)`.
/// Recording each count again fills the same buckets, so quantiles come back exactly.
#[derive(serde::Serialize, serde::Deserialize)]
struct LeadTimesState {
    buckets: Vec<(u64, u64)>,
    sum: u128,
    count: u64,
}

impl serde::Serialize for LeadTimes {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let buckets =
            self.histogram.iter_recorded().map(|v| (v.value_iterated_to(), v.count_at_value())).collect();
        LeadTimesState { buckets, sum: self.sum, count: self.count }.serialize(serializer)
    }
}

impl<'de> serde::Deserialize<'de> for LeadTimes {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let state = LeadTimesState::deserialize(deserializer)?;
        let mut lead_times = LeadTimes { sum: state.sum, count: state.count, ..LeadTimes::default() };
        for (value, count) in state.buckets {
            lead_times.histogram.record_n(value, count).map_err(serde::de::Error::custom)?;
        }
        Ok(lead_times)
    }
}

impl LeadTimes {
    fn record(&mut self, micros: Micros) {
        // `record` grows the auto-resizing histogram; saturating is only the fallback
        // for values beyond what it can ever track.
        if self.histogram.record(micros).is_err() {
            self.histogram.saturating_record(micros);
        }
        self.sum += u128::from(micros);
        self.count += 1;
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// Mean lead time in microseconds; 0 when no part finished.
    pub fn mean(&self) -> f64 {
        if self.count == 0 { 0.0 } else { self.sum as f64 / self.count as f64 }
    }

    /// Lead time at quantile `q` (0..1) in microseconds; 0 when no part finished.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.count == 0 { 0 } else { self.histogram.value_at_quantile(q) }
    }
}

/// Per-product counters.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct ProductTotals {
    pub created: u64,
    pub finished: u64,
    pub scrapped: u64,
    pub lead_sum: u128,
}

/// Complex-wide counters and integrals since the statistics window opened.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Totals {
    /// When the statistics window opened (end of warm-up, or 0).
    pub window_start: Micros,
    pub created: u64,
    pub finished: u64,
    pub scrapped: u64,
    /// Parts in the complex now; not reset with the window.
    pub wip: u64,
    pub wip_area: u128,
    wip_last: Micros,
    pub lead_times: LeadTimes,
    pub with_due: u64,
    pub on_time: u64,
    pub products: Vec<ProductTotals>,
    pub sinks: Vec<u64>,
    /// Counts over the whole run, never reset: `(created, finished, scrapped)`.
    pub lifetime: (u64, u64, u64),
}

impl Totals {
    pub fn new(n_products: usize, n_sinks: usize) -> Totals {
        Totals {
            window_start: 0,
            created: 0,
            finished: 0,
            scrapped: 0,
            wip: 0,
            wip_area: 0,
            wip_last: 0,
            lead_times: LeadTimes::default(),
            with_due: 0,
            on_time: 0,
            products: vec![ProductTotals::default(); n_products],
            sinks: vec![0; n_sinks],
            lifetime: (0, 0, 0),
        }
    }

    #[inline]
    fn touch_wip(&mut self, now: Micros) {
        self.wip_area += u128::from(now - self.wip_last) * u128::from(self.wip);
        self.wip_last = now;
    }

    /// WIP integral up to `now` without changing anything.
    pub fn wip_area_at(&self, now: Micros) -> u128 {
        self.wip_area + u128::from(now - self.wip_last) * u128::from(self.wip)
    }

    pub(crate) fn part_created(&mut self, now: Micros, product: usize) {
        self.touch_wip(now);
        self.wip += 1;
        self.created += 1;
        self.lifetime.0 += 1;
        self.products[product].created += 1;
    }

    /// A part of `product` released at `created`, due at `due` (`Micros::MAX`: no due
    /// date), finished at `now` into `sink`.
    pub(crate) fn part_finished(
        &mut self,
        now: Micros,
        product: usize,
        created: Micros,
        due: Micros,
        sink: Option<u32>,
    ) {
        self.touch_wip(now);
        self.wip -= 1;
        self.finished += 1;
        self.lifetime.1 += 1;
        let lead = now - created;
        self.lead_times.record(lead);
        let totals = &mut self.products[product];
        totals.finished += 1;
        totals.lead_sum += u128::from(lead);
        if due != Micros::MAX {
            self.with_due += 1;
            if now <= due {
                self.on_time += 1;
            }
        }
        if let Some(sink) = sink {
            self.sinks[sink as usize] += 1;
        }
    }

    pub(crate) fn part_scrapped(&mut self, now: Micros, product: usize) {
        self.touch_wip(now);
        self.wip -= 1;
        self.scrapped += 1;
        self.lifetime.2 += 1;
        self.products[product].scrapped += 1;
    }

    /// Opens a new statistics window at `now`; the current WIP carries over.
    pub(crate) fn reset(&mut self, now: Micros) {
        let (wip, lifetime) = (self.wip, self.lifetime);
        let (n_products, n_sinks) = (self.products.len(), self.sinks.len());
        *self = Totals::new(n_products, n_sinks);
        self.window_start = now;
        self.wip = wip;
        self.lifetime = lifetime;
        self.wip_last = now;
    }
}

/// A sample mean with its two-sided Student-t confidence interval.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Interval {
    pub mean: f64,
    /// Half-width of the interval: the true mean lies in `mean ± half_width` at `level`.
    pub half_width: f64,
    /// Sample standard deviation.
    pub sd: f64,
    pub n: usize,
    pub level: f64,
}

impl Interval {
    /// Mean and confidence interval of independent observations (e.g. one per
    /// replication). With fewer than two observations the half-width is infinite.
    pub fn of(samples: &[f64], level: f64) -> Interval {
        let n = samples.len();
        let mean = if n == 0 { f64::NAN } else { samples.iter().sum::<f64>() / n as f64 };
        if n < 2 {
            return Interval { mean, half_width: f64::INFINITY, sd: f64::NAN, n, level };
        }
        let var = samples.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        let sd = var.sqrt();
        let t = student_t_quantile(1.0 - (1.0 - level) / 2.0, (n - 1) as f64);
        Interval { mean, half_width: t * sd / (n as f64).sqrt(), sd, n, level }
    }

    pub fn low(&self) -> f64 {
        self.mean - self.half_width
    }

    pub fn high(&self) -> f64 {
        self.mean + self.half_width
    }

    /// Whether `value` lies inside the interval.
    pub fn contains(&self, value: f64) -> bool {
        self.low() <= value && value <= self.high()
    }
}

/// Quantile `p` of Student's t distribution with `df` degrees of freedom.
pub fn student_t_quantile(p: f64, df: f64) -> f64 {
    use statrs::distribution::{ContinuousCDF, StudentsT};
    StudentsT::new(0.0, 1.0, df).map_or(f64::NAN, |t| t.inverse_cdf(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t_quantiles_match_tables() {
        assert!((student_t_quantile(0.975, 9.0) - 2.262).abs() < 1e-3);
        assert!((student_t_quantile(0.995, 29.0) - 2.756).abs() < 1e-3);
    }

    #[test]
    fn interval_of_constant_samples_is_a_point() {
        let ci = Interval::of(&[3.0; 10], 0.95);
        assert_eq!(ci.mean, 3.0);
        assert_eq!(ci.half_width, 0.0);
        assert!(Interval::of(&[1.0], 0.95).half_width.is_infinite());
    }
}
