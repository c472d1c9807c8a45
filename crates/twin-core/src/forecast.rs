//! Forecasts from a running state: many futures of the same present, summarised as bands.
//!
//! A [`Forecaster`] holds a copy of the state at the fork time and the request. Each
//! replication forks that copy with its own seed ([`Forecaster::seed_of`]), runs it to the
//! horizon and returns an [`Outcome`]; [`Forecaster::summarise`] turns the outcomes, in
//! replication order, into P10 / P50 / P90 bands and on-time probabilities. Everything
//! here is a pure function of (state, request): no threads, no clock. Callers run the
//! replications on as many threads as they like and pass the outcomes back in
//! replication order, so the forecast's bytes do not depend on the number of threads.
//!
//! **Seeds.** Replication `r` of a forecast taken at simulated time `t` of a run seeded
//! with `s` forks with the first 8 bytes (little-endian) of
//! `SHA-256("twin-forecast-v1" ‖ s ‖ t ‖ r)`, each number as 8 little-endian bytes. Every
//! named random stream keeps its stream number and takes this new key
//! ([`Sim::fork`]), so replications are independent of each other and of the live run's
//! own future, and the same request on the same state gives the same forecast.
//!
//! **Quantiles** are Hyndman and Fan's type 6: the `p` quantile of `n` sorted values sits
//! at rank `p (n + 1)`, interpolated linearly between neighbours and clamped to the
//! smallest and largest value. `E[F(X_(k))] = k / (n + 1)`, so for a continuous quantity
//! the P10-P90 band of `n` replications holds a further independent draw (what happens
//! next in a plant the model describes) 80% of the time on average, for any `n`; other
//! definitions give less (type 7, R's default, 78.4% at `n = 100`). Part counts are
//! integers: a realised count equal to a band edge counts as inside, so coverage of a
//! count is 80% or a little more, the more so the narrower the band.
//!
//! **Orders.** An open order is either a part in the complex at the fork whose source
//! gives it a due date (each release of such a source is one order of one unit, `part-N`)
//! or an open rush order placed with a due date (`rush-N`, all its units). Replications
//! run to the horizon, not beyond: an order due by the horizon gets the share of
//! replications in which it was complete by its due date, its *on-time probability*;
//! its **on-time risk** is one minus that, the share of replications in which it was not
//! complete by its due time (still open at the horizon counts as late, since it is due
//! before it). A part order is complete when it finished its routing; a rush order when
//! every unit did (a scrapped unit makes either late). An order due after the horizon is
//! not judged, only counted (`orders_beyond_horizon`); one already overdue at the fork is
//! listed with probability 0 (risk 1).
//!
//! **Windows.** Parts finished and throughput count finishes between the fork and the
//! horizon. WIP is the number in the complex at the horizon and its time average over the
//! window; the value-added rate is the report's (revenue minus bought-in material minus
//! energy, over revenue) over the window. When the scene's warm-up ends inside the
//! window, the statistics restart there, and the time-average WIP and the value-added
//! rate cover only the rest of the window.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::model::Model;
use crate::sim::Sim;
use crate::sim::flow::{OpenOrder, RushOrder, RushOrderId};
use crate::time::{DAY, HOUR, Micros, to_hours, to_secs};

/// Most replications one forecast may run.
pub const MAX_REPLICATIONS: u32 = 1_000;
/// Farthest a horizon may lie ahead of the fork.
pub const MAX_AHEAD: Micros = 7 * DAY;
/// Horizon of an end-of-shift forecast on a scene without shift calendars.
pub const DEFAULT_AHEAD: Micros = 8 * HOUR;

/// What a forecast computes. Value added and on-time risks cost a little per
/// replication; the others are counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Kpi {
    /// Good parts finished between the fork and the horizon.
    PartsFinished,
    /// The same per hour of the window.
    Throughput,
    /// Parts in the complex at the horizon, and their time average over the window.
    Wip,
    /// Value added over revenue in the window.
    ValueAddedRate,
    /// The probability that each open order with a due date meets it.
    OnTime,
}

impl Kpi {
    /// Every KPI, in the order results list them.
    pub const ALL: [Kpi; 5] =
        [Kpi::PartsFinished, Kpi::Throughput, Kpi::Wip, Kpi::ValueAddedRate, Kpi::OnTime];
}

/// Where a forecast ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Horizon {
    /// At the end of the current shift (see [`end_of_shift`]).
    EndOfShift,
    /// This long after the fork.
    Ahead(Micros),
    /// At this simulated time.
    At(Micros),
}

/// A forecast request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub horizon: Horizon,
    /// Number of futures to run, 1 to [`MAX_REPLICATIONS`].
    pub replications: u32,
    /// What to compute; empty means everything.
    pub kpis: Vec<Kpi>,
}

/// A request the state cannot serve; each names the request field at fault.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ForecastError {
    #[error("replications must be 1 to {MAX_REPLICATIONS}, got {0}")]
    Replications(u32),
    #[error("horizon must lie after the current time {now_s} s, got {horizon_s} s")]
    HorizonNotAhead { horizon_s: f64, now_s: f64 },
    #[error("horizon may lie at most {max_h} h ahead of the current time {now_s} s, got {horizon_s} s")]
    HorizonTooFar { horizon_s: f64, now_s: f64, max_h: f64 },
}

impl ForecastError {
    /// The request field the error is about.
    pub fn field(&self) -> &'static str {
        match self {
            ForecastError::Replications(_) => "replications",
            ForecastError::HorizonNotAhead { .. } | ForecastError::HorizonTooFar { .. } => "horizon",
        }
    }
}

/// The end of the current shift at `now`: the calendar the most stations follow (ties to
/// the first listed) decides; when it is off shift, the end of its next shift. A scene
/// without calendars, or whose stations follow none, ends after [`DEFAULT_AHEAD`].
pub fn end_of_shift(model: &Model, now: Micros) -> Micros {
    let mut followers = vec![0usize; model.calendars.len()];
    for c in model.stations.iter().filter_map(|s| s.calendar) {
        followers[c as usize] += 1;
    }
    let main =
        followers.iter().enumerate().filter(|&(_, &n)| n > 0).max_by_key(|&(c, &n)| (n, usize::MAX - c));
    let Some((c, _)) = main else {
        return now + DEFAULT_AHEAD;
    };
    let calendar = &model.calendars[c];
    match calendar.state_at(now) {
        (true, end) => end,
        (false, start) => calendar.state_at(start).1,
    }
}

/// P10, P50 and P90 (see the module docs for the estimator) and the mean.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Band {
    pub p10: f64,
    pub p50: f64,
    pub p90: f64,
    pub mean: f64,
}

impl Band {
    /// The band of `values` (any order); zeros when there are none.
    pub fn of(values: &[f64]) -> Band {
        if values.is_empty() {
            return Band { p10: 0.0, p50: 0.0, p90: 0.0, mean: 0.0 };
        }
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        Band {
            p10: quantile(&sorted, 0.1),
            p50: quantile(&sorted, 0.5),
            p90: quantile(&sorted, 0.9),
            mean: sorted.iter().sum::<f64>() / sorted.len() as f64,
        }
    }

    /// Whether `value` lies in the P10-P90 band, edges included.
    pub fn holds(&self, value: f64) -> bool {
        self.p10 <= value && value <= self.p90
    }
}

/// The `p` quantile of ascending `sorted` values by Hyndman and Fan's type 6 (see the
/// module docs). `sorted` must not be empty.
pub fn quantile(sorted: &[f64], p: f64) -> f64 {
    let n = sorted.len();
    let rank = p * (n + 1) as f64;
    if rank <= 1.0 {
        return sorted[0];
    }
    if rank >= n as f64 {
        return sorted[n - 1];
    }
    let below = rank.floor() as usize;
    let frac = rank - below as f64;
    sorted[below - 1] + frac * (sorted[below] - sorted[below - 1])
}

/// What one replication found.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    /// Good parts finished in the window.
    pub finished: u64,
    /// Parts in the complex at the horizon.
    pub wip_end: u64,
    /// Time-average parts in the complex over the window.
    pub wip_mean: f64,
    /// Value added over revenue in the window, when asked for.
    pub value_added_rate: Option<f64>,
    /// For each judged order, part orders ([`Forecaster::orders`]) then rush orders
    /// ([`Forecaster::rush_orders`]), whether it met its due date.
    pub on_time: Vec<bool>,
    /// Events the replication processed (for speed figures).
    pub events: u64,
}

/// An open order's chance of meeting its due date.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OrderRisk {
    /// `part-N` (a part order: the part's slot, unique among the parts in the complex at
    /// the fork) or `rush-N` (a rush order, the id `AddRushOrder` returned).
    pub id: String,
    pub product: String,
    /// Units the order needs complete: 1 for a part order, the quantity of a rush order.
    pub quantity: u32,
    /// Simulated time it was released and is due, seconds.
    pub released_s: f64,
    pub due_s: f64,
    /// The same in microseconds (for the wire).
    #[serde(skip)]
    pub released_at: Micros,
    #[serde(skip)]
    pub due: Micros,
    /// Share of replications in which it was complete by its due date.
    pub on_time_probability: f64,
    /// `1 - on_time_probability`: the share in which it was not (see the module docs).
    pub on_time_risk: f64,
}

/// The forecast: bands over the replications, in the units the report uses.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Forecast {
    pub scene: String,
    /// Seed of the run forked (replication seeds derive from it).
    pub seed: u64,
    /// Simulated time of the fork and the horizon, seconds.
    pub from_s: f64,
    pub horizon_s: f64,
    /// The same in microseconds (for the wire).
    #[serde(skip)]
    pub from: Micros,
    #[serde(skip)]
    pub until: Micros,
    pub replications: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parts_finished: Option<Band>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub throughput_per_hour: Option<Band>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wip_end: Option<Band>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wip_mean: Option<Band>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_added_rate: Option<Band>,
    /// Open orders due by the horizon, least likely to be on time first (then by due
    /// date); empty unless on-time risk was asked for.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub orders: Vec<OrderRisk>,
    /// Open orders due after the horizon: not judged.
    pub orders_beyond_horizon: u64,
    /// Events the replications processed in all (for speed figures; not in the JSON,
    /// which holds what was forecast).
    #[serde(skip)]
    pub events: u64,
}

/// The figures at the fork that a replication's figures are differences from.
#[derive(Clone, Debug)]
struct Baseline {
    /// Parts finished over the whole run.
    finished: u64,
    window_start: Micros,
    wip_area: u128,
    /// Revenue, material and energy cost since the statistics window opened.
    value_added: (f64, f64, f64),
}

/// A forecast being computed: the state at the fork, the checked request, the orders to
/// judge.
#[derive(Clone, Debug)]
pub struct Forecaster {
    sim: Sim,
    until: Micros,
    replications: u32,
    kpis: BTreeSet<Kpi>,
    /// Open part orders due by the horizon, in part-slot order.
    orders: Vec<OpenOrder>,
    /// Open rush orders due by the horizon, in the order placed.
    rush_orders: Vec<RushOrder>,
    orders_beyond_horizon: u64,
    base: Baseline,
}

impl Forecaster {
    /// Checks `request` against the state `sim` is in and takes a copy of that state.
    pub fn new(sim: &Sim, request: &Request) -> Result<Forecaster, ForecastError> {
        if request.replications == 0 || request.replications > MAX_REPLICATIONS {
            return Err(ForecastError::Replications(request.replications));
        }
        let now = sim.now();
        let until = match request.horizon {
            Horizon::EndOfShift => end_of_shift(sim.model(), now),
            Horizon::Ahead(ahead) => now.saturating_add(ahead),
            Horizon::At(t) => t,
        };
        if until <= now {
            return Err(ForecastError::HorizonNotAhead { horizon_s: to_secs(until), now_s: to_secs(now) });
        }
        if until - now > MAX_AHEAD {
            return Err(ForecastError::HorizonTooFar {
                horizon_s: to_secs(until),
                now_s: to_secs(now),
                max_h: to_hours(MAX_AHEAD),
            });
        }
        let kpis: BTreeSet<Kpi> =
            if request.kpis.is_empty() { Kpi::ALL.into() } else { request.kpis.iter().copied().collect() };
        let (orders, beyond): (Vec<OpenOrder>, Vec<OpenOrder>) = if kpis.contains(&Kpi::OnTime) {
            sim.open_orders().into_iter().partition(|o| o.due <= until)
        } else {
            (Vec::new(), Vec::new())
        };
        let (rush_orders, rush_beyond): (Vec<RushOrder>, Vec<RushOrder>) = if kpis.contains(&Kpi::OnTime) {
            sim.rush_orders()
                .iter()
                .filter(|o| o.completed_at.is_none() && o.due.is_some())
                .partition(|o| o.due.is_some_and(|d| d <= until))
        } else {
            (Vec::new(), Vec::new())
        };
        let totals = sim.totals();
        let base = Baseline {
            finished: sim.lifetime_counts().1,
            window_start: totals.window_start,
            wip_area: totals.wip_area_at(now),
            value_added: if kpis.contains(&Kpi::ValueAddedRate) {
                sim.value_added_sums()
            } else {
                (0.0, 0.0, 0.0)
            },
        };
        Ok(Forecaster {
            sim: sim.clone(),
            until,
            replications: request.replications,
            kpis,
            orders,
            rush_orders,
            orders_beyond_horizon: (beyond.len() + rush_beyond.len()) as u64,
            base,
        })
    }

    /// Simulated time of the fork.
    pub fn from(&self) -> Micros {
        self.sim.now()
    }

    /// Simulated time the replications run to.
    pub fn until(&self) -> Micros {
        self.until
    }

    pub fn replications(&self) -> u32 {
        self.replications
    }

    /// The model forecast.
    pub fn model(&self) -> &Arc<Model> {
        self.sim.model()
    }

    /// The open part orders judged (due by the horizon), in the order outcomes list them.
    pub fn orders(&self) -> &[OpenOrder] {
        &self.orders
    }

    /// The open rush orders judged (due by the horizon), listed in outcomes after
    /// [`Forecaster::orders`].
    pub fn rush_orders(&self) -> &[RushOrder] {
        &self.rush_orders
    }

    /// Seed of replication `replication` (see the module docs).
    pub fn seed_of(&self, replication: u32) -> u64 {
        replication_seed(self.sim.seed(), self.sim.now(), replication)
    }

    /// Runs replication `replication` to the horizon.
    pub fn replicate(&self, replication: u32) -> Outcome {
        let seed = self.seed_of(replication);
        let on_time = self.kpis.contains(&Kpi::OnTime);
        let mut sim = if on_time { self.sim.fork_watching(seed) } else { self.sim.fork(seed) };
        sim.run_until(self.until);
        let totals = sim.totals();
        // The statistics restart when a warm-up ends inside the window.
        let restarted = totals.window_start != self.base.window_start;
        let (start, area0, va0) = if restarted {
            (totals.window_start, 0, (0.0, 0.0, 0.0))
        } else {
            (self.from(), self.base.wip_area, self.base.value_added)
        };
        let span = self.until - start;
        let wip_mean = if span > 0 {
            (totals.wip_area_at(self.until) - area0) as f64 / span as f64
        } else {
            totals.wip as f64
        };
        let value_added_rate = self.kpis.contains(&Kpi::ValueAddedRate).then(|| {
            let (revenue, material, energy) = sim.value_added_sums();
            let revenue = revenue - va0.0;
            let value_added = revenue - (material - va0.1) - (energy - va0.2);
            if revenue > 0.0 { value_added / revenue } else { 0.0 }
        });
        let on_time = if on_time { self.judge(&sim) } else { Vec::new() };
        Outcome {
            finished: sim.lifetime_counts().1 - self.base.finished,
            wip_end: totals.wip,
            wip_mean,
            value_added_rate,
            on_time,
            events: sim.events() - self.sim.events(),
        }
    }

    /// Whether each judged order was complete by its due date in the replication `sim`.
    fn judge(&self, sim: &Sim) -> Vec<bool> {
        let mut on_time = vec![false; self.orders.len() + self.rush_orders.len()];
        for &(part, released, at) in sim.watched_finishes() {
            // Orders are in slot order; a slot's first watched finish is its order's.
            if let Ok(i) = self.orders.binary_search_by_key(&part, |o| o.part)
                && self.orders[i].released_at == released
            {
                on_time[i] = at <= self.orders[i].due;
            }
        }
        // A fork places no rush orders, so it forgets none: every judged one is there.
        let placed = sim.rush_orders();
        for (k, order) in self.rush_orders.iter().enumerate() {
            on_time[self.orders.len() + k] = rush_met(placed, order.id);
        }
        on_time
    }

    /// The forecast from every replication's outcome, in replication order.
    pub fn summarise(&self, outcomes: &[Outcome]) -> Forecast {
        let hours = to_hours(self.until - self.from());
        let band = |kpi: Kpi, value: &dyn Fn(&Outcome) -> f64| {
            self.kpis.contains(&kpi).then(|| Band::of(&outcomes.iter().map(value).collect::<Vec<_>>()))
        };
        let model = self.sim.model();
        let n = outcomes.len().max(1) as f64;
        let share = |i: usize| outcomes.iter().filter(|r| r.on_time.get(i) == Some(&true)).count() as f64 / n;
        let risk =
            |id: String, product: u16, quantity: u32, released_at: Micros, due: Micros, p: f64| OrderRisk {
                id,
                product: model.products[usize::from(product)].id.clone(),
                quantity,
                released_s: to_secs(released_at),
                due_s: to_secs(due),
                released_at,
                due,
                on_time_probability: p,
                on_time_risk: 1.0 - p,
            };
        let parts = self
            .orders
            .iter()
            .enumerate()
            .map(|(i, o)| risk(format!("part-{}", o.part), o.product, 1, o.released_at, o.due, share(i)));
        let rush = self.rush_orders.iter().enumerate().map(|(k, o)| {
            let due = o.due.unwrap_or(Micros::MAX);
            risk(o.id.to_string(), o.product, o.quantity, o.released_at, due, share(self.orders.len() + k))
        });
        let mut orders: Vec<OrderRisk> = parts.chain(rush).collect();
        orders.sort_by(|a, b| {
            a.on_time_probability.total_cmp(&b.on_time_probability).then(a.due_s.total_cmp(&b.due_s))
        });
        Forecast {
            scene: model.name.clone(),
            seed: self.sim.seed(),
            from_s: to_secs(self.from()),
            horizon_s: to_secs(self.until),
            from: self.from(),
            until: self.until,
            replications: outcomes.len() as u32,
            parts_finished: band(Kpi::PartsFinished, &|r| r.finished as f64),
            throughput_per_hour: band(Kpi::Throughput, &|r| r.finished as f64 / hours),
            wip_end: band(Kpi::Wip, &|r| r.wip_end as f64),
            wip_mean: band(Kpi::Wip, &|r| r.wip_mean),
            value_added_rate: band(Kpi::ValueAddedRate, &|r| r.value_added_rate.unwrap_or(0.0)),
            orders,
            orders_beyond_horizon: self.orders_beyond_horizon,
            events: outcomes.iter().map(|r| r.events).sum(),
        }
    }

    /// Runs every replication on this thread and summarises them: for tests and small
    /// forecasts; callers with cores to spare run [`Forecaster::replicate`] in parallel.
    pub fn run(&self) -> Forecast {
        let outcomes: Vec<Outcome> = (0..self.replications).map(|r| self.replicate(r)).collect();
        self.summarise(&outcomes)
    }
}

/// Whether the rush order `id` among `placed` was complete (every unit finished, none
/// scrapped) by its due time.
fn rush_met(placed: &[RushOrder], id: RushOrderId) -> bool {
    placed.iter().find(|o| o.id == id).is_some_and(|o| {
        o.finished == o.quantity && o.completed_at.zip(o.due).is_some_and(|(at, due)| at <= due)
    })
}

/// The seed of replication `replication` of a forecast forked at `now` from a run seeded
/// with `seed` (see the module docs).
pub fn replication_seed(seed: u64, now: Micros, replication: u32) -> u64 {
    let mut hash = Sha256::new();
    hash.update(b"twin-forecast-v1");
    hash.update(seed.to_le_bytes());
    hash.update(now.to_le_bytes());
    hash.update(u64::from(replication).to_le_bytes());
    let digest = hash.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_6_quantiles_sit_at_rank_p_times_n_plus_one() {
        let v: Vec<f64> = (1..=9).map(f64::from).collect();
        // Rank 0.1 * 10 = 1, 0.5 * 10 = 5, 0.9 * 10 = 9.
        assert_eq!(quantile(&v, 0.1), 1.0);
        assert_eq!(quantile(&v, 0.5), 5.0);
        assert_eq!(quantile(&v, 0.9), 9.0);
        // n = 100: rank 10.1 lies between the 10th and 11th values.
        let w: Vec<f64> = (1..=100).map(|i| f64::from(i) * 10.0).collect();
        assert!((quantile(&w, 0.1) - 101.0).abs() < 1e-9);
        assert!((quantile(&w, 0.9) - 909.0).abs() < 1e-9);
        // Clamped at the ends.
        assert_eq!(quantile(&[3.0, 4.0], 0.1), 3.0);
        assert_eq!(quantile(&[3.0, 4.0], 0.9), 4.0);
        assert_eq!(quantile(&[7.0], 0.5), 7.0);
    }

    #[test]
    fn bands_take_any_order_and_include_their_edges() {
        let band = Band::of(&[5.0, 1.0, 3.0, 2.0, 4.0, 9.0, 8.0, 7.0, 6.0]);
        assert_eq!((band.p10, band.p50, band.p90, band.mean), (1.0, 5.0, 9.0, 5.0));
        assert!(band.holds(1.0) && band.holds(9.0) && !band.holds(9.5));
    }

    #[test]
    fn replication_seeds_are_fixed_and_distinct() {
        let a = replication_seed(7, 3_600_000_000, 0);
        assert_eq!(a, replication_seed(7, 3_600_000_000, 0));
        assert_ne!(a, replication_seed(7, 3_600_000_000, 1));
        assert_ne!(a, replication_seed(7, 3_600_000_001, 0));
        assert_ne!(a, replication_seed(8, 3_600_000_000, 0));
    }
}
