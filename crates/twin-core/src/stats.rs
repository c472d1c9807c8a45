//! Statistics accumulators: integer time integrals, counts and lead-time quantiles.

use hdrhistogram::Histogram;

use crate::time::Micros;

/// Lead times of finished parts: exact mean, quantiles to 3 significant digits.
///
/// The counts sit in a flat table indexed exactly as `hdrhistogram` indexes a histogram
/// of 3 significant digits (2,048 sub-buckets, unit 1): recording a part is a shift, a
/// leading-zero count and one increment, on every part that finishes. Quantiles are
/// asked for once per report, so they rebuild an `hdrhistogram` from the non-empty
/// buckets and ask it: the figures are `hdrhistogram`'s own.
#[derive(Clone, Debug, Default)]
pub struct LeadTimes {
    /// Count per bucket; grows to the highest bucket recorded (at most
    /// [`lead_bucket::MAX_INDEX`] + 1 = 56,320 entries, 451 kB, whatever the run's length).
    counts: Vec<u64>,
    sum: u128,
    count: u64,
}

/// The bucket layout of an `hdrhistogram` with 3 significant digits and unit 1.
mod lead_bucket {
    /// log2 of half the sub-buckets per bucket (2,048 / 2).
    const HALF_MAGNITUDE: u32 = 10;
    const HALF: usize = 1 << HALF_MAGNITUDE;
    /// Values below this share bucket 0 (one value per sub-bucket).
    const SUB_MASK: u64 = 2 * HALF as u64 - 1;
    /// 64 - log2(sub-buckets).
    const LEADING_ZERO_BASE: u32 = 53;
    /// Index of `u64::MAX`, the highest there is.
    pub const MAX_INDEX: usize = index(u64::MAX);

    /// The flat index of `value`'s bucket.
    #[inline]
    pub const fn index(value: u64) -> usize {
        let bucket = LEADING_ZERO_BASE - (value | SUB_MASK).leading_zeros();
        let sub = (value >> bucket) as usize;
        ((bucket as usize + 1) << HALF_MAGNITUDE) + sub - HALF
    }

    /// The lowest value of bucket `index`.
    pub fn lowest(index: usize) -> u64 {
        let bucket = (index >> HALF_MAGNITUDE) as i64 - 1;
        let sub = ((index & (HALF - 1)) + HALF) as u64;
        if bucket < 0 { sub - HALF as u64 } else { sub << bucket }
    }

    /// The highest value of bucket `index`.
    pub fn highest(index: usize) -> u64 {
        // As `hdrhistogram` reckons it (its `highest_equivalent` of the bucket's lowest
        // value): the top bucket ends one short of `u64::MAX`.
        let bucket = ((index >> HALF_MAGNITUDE) as u32).saturating_sub(1);
        lowest(index).saturating_add(1u64 << bucket) - 1
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
        // The highest value of each bucket, as `hdrhistogram`'s `iter_recorded` gave it
        // when it held the counts: snapshots are unchanged.
        let buckets = self.buckets().map(|(i, n)| (lead_bucket::highest(i), n)).collect();
        LeadTimesState { buckets, sum: self.sum, count: self.count }.serialize(serializer)
    }
}

impl<'de> serde::Deserialize<'de> for LeadTimes {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let state = LeadTimesState::deserialize(deserializer)?;
        let mut lead_times = LeadTimes { sum: state.sum, count: state.count, ..LeadTimes::default() };
        for (value, count) in state.buckets {
            let slot = lead_times.slot(value);
            *slot = slot
                .checked_add(count)
                .ok_or_else(|| serde::de::Error::custom("lead-time count overflows"))?;
        }
        Ok(lead_times)
    }
}

impl LeadTimes {
    #[inline]
    fn record(&mut self, micros: Micros) {
        *self.slot(micros) += 1;
        self.sum += u128::from(micros);
        self.count += 1;
    }

    /// The count of `value`'s bucket, the table grown to hold it. One length check on
    /// the common path: the index is checked against the length it was compared with.
    #[inline]
    fn slot(&mut self, value: u64) -> &mut u64 {
        let index = lead_bucket::index(value);
        if index < self.counts.len() { &mut self.counts[index] } else { self.grow(index) }
    }

    #[cold]
    #[inline(never)]
    fn grow(&mut self, index: usize) -> &mut u64 {
        // Whole buckets of 1,024 at a time, so that a growing lead time resizes rarely.
        let len = ((index | 1023) + 1).min(lead_bucket::MAX_INDEX + 1);
        self.counts.resize(len, 0);
        &mut self.counts[index]
    }

    /// The non-empty buckets, `(index, count)`, ascending.
    fn buckets(&self) -> impl Iterator<Item = (usize, u64)> + '_ {
        self.counts.iter().enumerate().filter(|&(_, &n)| n > 0).map(|(i, &n)| (i, n))
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
        if self.count == 0 {
            return 0;
        }
        let mut histogram = Histogram::<u64>::new(3).expect("3 significant digits is a valid precision");
        for (i, n) in self.buckets() {
            // The histogram resizes itself to any value; clamping is only the fallback.
            if histogram.record_n(lead_bucket::lowest(i), n).is_err() {
                histogram.saturating_record_n(lead_bucket::lowest(i), n);
            }
        }
        histogram.value_at_quantile(q)
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
    /// date), finished at `now` into `sink`. Inlined into the flow's finish: it runs once
    /// per part, and as a call its register saves and the second length check of the
    /// lead-time table cost more than its body.
    #[inline(always)]
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

    /// The flat table files values, serialises and answers quantiles exactly as the
    /// `hdrhistogram` it stands in for, over values of every magnitude.
    #[test]
    fn lead_times_match_hdrhistogram() {
        use rand::{RngExt, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let mut ours = LeadTimes::default();
        let mut theirs = Histogram::<u64>::new(3).expect("valid precision");
        let edges = [0, 1, 2047, 2048, 2049, 4095, 4096, 1 << 40, u64::MAX / 2, u64::MAX - 1, u64::MAX];
        for i in 0..20_000u32 {
            let v = if i < edges.len() as u32 {
                edges[i as usize]
            } else {
                let bits = rng.random_range(0..64u32);
                rng.random::<u64>() >> bits
            };
            ours.record(v);
            theirs.record(v).expect("auto-resizing");
            let low = theirs.lowest_equivalent(v);
            assert_eq!(lead_bucket::highest(lead_bucket::index(v)), theirs.highest_equivalent(low), "{v}");
            assert_eq!(lead_bucket::lowest(lead_bucket::index(v)), theirs.lowest_equivalent(v), "{v}");
        }
        for q in [0.0, 0.001, 0.1, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0] {
            assert_eq!(ours.quantile(q), theirs.value_at_quantile(q), "quantile {q}");
        }
        let expected: Vec<(u64, u64)> =
            theirs.iter_recorded().map(|v| (v.value_iterated_to(), v.count_at_value())).collect();
        let got: Vec<(u64, u64)> = ours.buckets().map(|(i, n)| (lead_bucket::highest(i), n)).collect();
        assert_eq!(got, expected);
    }

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
