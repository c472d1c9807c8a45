//! The live twin's view of the plant: what telemetry said about each station
//! ([`Observation`]), whether a station's source is live, stale or silent so far
//! ([`SyncStatus`]), and the deviation monitor that compares what the plant does with what
//! the model expects and raises [`Alarm`]s with their evidence.
//!
//! Observations are commands (`Command::Observe`) applied at a definite simulation time,
//! so the monitor is part of the deterministic state: same scene + seed + command log
//! gives the same alarms, and the monitor travels in snapshots. It never changes how the
//! simulation runs: a stale station keeps its last known state and keeps being simulated
//! (stale is not down); plant counters are compared, never forced onto the model.
//!
//! Measures (each with its test and stated false-alarm rate):
//! - cycle time per station and product (`cusum.rs`): 2e-7 per cycle, both sides;
//! - throughput per station (`throughput.rs`): about 2e-5 per station-hour, both sides;
//! - time between failures and repair time per station (`failures.rs`): 2e-4 per failure
//!   (per repair), both sides.
//!
//! Memory is bounded by the model: one sync record per station, at most one detector per
//! (station, product), one throughput and two failure tests per station, the open alarms
//! (at most two per detector) and the newest [`ALARMS_KEPT`] cleared ones.

mod cusum;
mod failures;
mod throughput;

use serde::{Deserialize, Serialize};

use self::cusum::{CYCLE_DESIGN, Detector, Verdict};
use self::failures::{FailureWatch, Test};
use self::throughput::ThroughputWatch;
use super::Sim;
use super::commands::CommandError;
use crate::model::{Model, ProductIdx, StationIdx};
use crate::time::{MAX_SPAN, Micros};

pub use self::cusum::{ARL0, DESIGN_SHIFT, Design, FAILURE_DESIGN, NORMAL_K, RESOLUTION, Z_CLAMP};
pub use self::throughput::{ARL0_WINDOWS, MIN_WINDOWS, WINDOW};

/// Cleared alarms kept for views beyond the open ones (the oldest go first).
pub const ALARMS_KEPT: usize = 100;

/// What the plant reported about one station.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    /// The station's id in the scene.
    pub station: String,
    pub observed: Observed,
}

/// One kind of plant report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Observed {
    /// One processing cycle finished in the plant at the command's time.
    Cycle {
        /// Processing time of the part (no setup, no time down), microseconds.
        duration: Micros,
        /// The product's id; None when the plant does not say.
        product: Option<String>,
    },
    /// The plant's cumulative counters for the station (compared, not forced).
    Counts { parts_in: u64, parts_out: u64 },
    /// The station's source reports (birth or data after silence).
    Live,
    /// The station's source died (NDEATH/DDEATH) or fell silent past the timeout.
    Stale,
}

/// Where a station's displayed state comes from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncStatus {
    /// No observation yet: the model alone.
    #[default]
    ModelOnly,
    /// Its source reports; plant events are applied as they come.
    Live,
    /// Its source died or fell silent. The station keeps its last known state and keeps
    /// being simulated: stale is not down.
    Stale,
}

/// What an alarm is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Measure {
    /// Processing time per part (figures: mean, microseconds).
    CycleTime,
    /// Parts completed per hour (figures: mean over the evidence windows).
    Throughput,
    /// Up time between failures (figures: mean, microseconds).
    TimeBetweenFailures,
    /// Time down per failure (figures: mean, microseconds).
    RepairTime,
}

/// Which way the plant parts from the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Direction {
    /// The plant's figure is above the model's (for cycle times: slower).
    Above,
    /// The plant's figure is below the model's (for cycle times: faster).
    Below,
}

/// Why an alarm was raised: a one-sided CUSUM on standardised observations crossed its
/// threshold (see `cusum.rs` for the test and its false-alarm rate).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// The CUSUM statistic when it crossed, in standard-normal units.
    pub statistic: f64,
    /// The threshold `h` it crossed.
    pub threshold: f64,
    /// The reference value `k` (half the standardised shift the test is tuned to).
    pub reference: f64,
    /// Observations since the statistic last left zero: the window the plant and model
    /// figures are taken over (the CUSUM's change-point estimate).
    pub observations: u64,
    /// In-control average run length of this one-sided test, in observations: the false
    /// alarm rate is about `1 / arl0` per observation.
    pub arl0: f64,
}

/// A deviation between plant and model at one station.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Alarm {
    /// Unique in the run, ascending in the order raised (from 1).
    pub id: u64,
    /// The station's id.
    pub station: String,
    /// The product whose cycles deviate; None when the plant did not name products.
    pub product: Option<String>,
    pub measure: Measure,
    pub direction: Direction,
    /// The plant's figure over the evidence window (units: see [`Measure`]).
    pub plant: f64,
    /// The model's figure over the same window (units: see [`Measure`]).
    pub model: f64,
    pub evidence: Evidence,
    /// Simulation time it was raised at.
    pub raised_at: Micros,
    /// Simulation time it cleared at (the plant agrees with the model again); None while
    /// open.
    pub cleared_at: Option<Micros>,
}

/// What the monitor knows of one station.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct StationWatch {
    sync: SyncStatus,
    /// Time of the latest observation.
    last_seen: Option<Micros>,
    /// The plant's latest counters `(parts_in, parts_out)`.
    counts: Option<(u64, u64)>,
    /// Cycle-time detectors by product (None: cycles without a product), ascending.
    detectors: Vec<(Option<ProductIdx>, Detector)>,
    /// Cycles that could not be compared: no product named and the station's products
    /// have different processing-time distributions.
    unattributed: u64,
    /// Completed parts per window against the model's.
    throughput: ThroughputWatch,
    /// Times between failures and repair times against the model's.
    failures: FailureWatch,
}

/// The monitor's whole state (part of the snapshot).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Monitor {
    stations: Vec<StationWatch>,
    /// Open alarms and the newest cleared ones, ascending by id.
    alarms: Vec<Alarm>,
    next_alarm: u64,
    /// Bumped on every change of `alarms`, so that readers know when to look again.
    revision: u64,
}

impl Monitor {
    pub(crate) fn new(model: &Model) -> Monitor {
        Monitor {
            stations: vec![StationWatch::default(); model.stations.len()],
            alarms: Vec::new(),
            next_alarm: 1,
            revision: 0,
        }
    }

    /// Whether a restored state fits the model.
    pub(crate) fn fits(&self, model: &Model) -> bool {
        self.stations.len() == model.stations.len()
            && self.stations.iter().all(|w| {
                w.detectors.iter().all(|(p, _)| p.is_none_or(|p| (p as usize) < model.products.len()))
            })
    }

    fn raise(&mut self, alarm: Alarm) -> u64 {
        let id = self.next_alarm;
        self.next_alarm += 1;
        self.alarms.push(Alarm { id, ..alarm });
        self.revision += 1;
        id
    }

    /// Turns a test's verdicts into raised and cleared alarms; `opened` tells the test
    /// which alarm each raising side opened.
    fn settle(
        &mut self,
        verdicts: Vec<Verdict>,
        template: &Alarm,
        now: Micros,
        mut opened: impl FnMut(&mut Monitor, Direction, u64),
    ) {
        for verdict in verdicts {
            match verdict {
                Verdict::Raise { direction, plant, model, evidence } => {
                    let alarm =
                        Alarm { direction, plant, model, evidence, raised_at: now, ..template.clone() };
                    let id = self.raise(alarm);
                    opened(self, direction, id);
                }
                Verdict::Clear { alarm } => self.clear(alarm, now),
            }
        }
    }

    fn clear(&mut self, id: u64, now: Micros) {
        if let Some(a) = self.alarms.iter_mut().find(|a| a.id == id) {
            a.cleared_at = Some(now);
        }
        let cleared = self.alarms.iter().filter(|a| a.cleared_at.is_some()).count();
        if cleared > ALARMS_KEPT
            && let Some(oldest) = self.alarms.iter().position(|a| a.cleared_at.is_some())
        {
            self.alarms.remove(oldest);
        }
        self.revision += 1;
    }
}

/// An alarm on station `s` about `measure` with the figures still to fill in.
fn template(model: &Model, s: StationIdx, measure: Measure, now: Micros) -> Alarm {
    Alarm {
        id: 0,
        station: model.stations[s as usize].id.clone(),
        product: None,
        measure,
        direction: Direction::Above,
        plant: 0.0,
        model: 0.0,
        evidence: Evidence { statistic: 0.0, threshold: 0.0, reference: 0.0, observations: 0, arl0: 0.0 },
        raised_at: now,
        cleared_at: None,
    }
}

/// The step of `product` processed at `station`, if any (its first such step).
fn step_at(model: &Model, product: ProductIdx, station: StationIdx) -> Option<usize> {
    model.products[product as usize].steps.iter().position(|s| s.at.contains(&station))
}

/// The processing-time distribution of `station` when every step there has the same one.
fn only_sampler(model: &Model, station: StationIdx) -> Option<&crate::dist::Sampler> {
    let mut steps = model.products.iter().flat_map(|p| p.steps.iter()).filter(|s| s.at.contains(&station));
    let first = steps.next()?;
    steps.all(|s| s.time == first.time).then_some(&first.time)
}

impl Sim {
    /// Takes in what the plant reported about a station now: marks its source live or
    /// stale and compares cycle times with the model. Validates fully first: an unknown
    /// station or product, a product the station does not process, or a duration beyond
    /// the longest time the core represents is refused and changes nothing.
    pub fn observe(&mut self, observation: &Observation) -> Result<(), CommandError> {
        let s = self.station_by_id(&observation.station)?;
        let now = self.now();
        let model = std::sync::Arc::clone(&self.model);
        let cycle = match &observation.observed {
            Observed::Cycle { duration, product } => {
                if *duration > MAX_SPAN {
                    return Err(CommandError::Invalid(format!(
                        "cycle duration {duration} us at `{}` is beyond the longest span ({MAX_SPAN} us)",
                        observation.station
                    )));
                }
                let key = match product {
                    Some(id) => {
                        let p = model.product(id).ok_or_else(|| CommandError::UnknownProduct(id.clone()))?;
                        if step_at(&model, p, s).is_none() {
                            return Err(CommandError::Invalid(format!(
                                "product `{id}` has no step at station `{}`",
                                observation.station
                            )));
                        }
                        Some(Some(p))
                    }
                    // Comparable without a product only when one distribution serves all.
                    None => only_sampler(&model, s).map(|_| None),
                };
                Some((*duration, key))
            }
            _ => None,
        };
        // The step distribution this cycle is compared with (None: not comparable).
        let sampler = match cycle {
            Some((_, Some(Some(p)))) => {
                step_at(&model, p, s).map(|i| &model.products[p as usize].steps[i].time)
            }
            Some((_, Some(None))) => only_sampler(&model, s),
            _ => None,
        };
        let twin_down = self.flow.is_down(s);
        let model_completed = match observation.observed {
            Observed::Counts { .. } => self.flow.station_views().nth(s as usize).map_or(0, |v| v.completed),
            _ => 0,
        };
        let monitor = &mut self.monitor;
        let watch = &mut monitor.stations[s as usize];
        watch.last_seen = Some(now);
        let was_live = watch.sync == SyncStatus::Live;
        match &observation.observed {
            Observed::Stale => {
                watch.sync = SyncStatus::Stale;
                watch.failures.unwatch(&model, s, now);
            }
            Observed::Live | Observed::Cycle { .. } | Observed::Counts { .. } => {
                watch.sync = SyncStatus::Live;
                if !was_live {
                    watch.failures.watch(now, twin_down);
                }
            }
        }
        if let Observed::Counts { parts_in, parts_out } = &observation.observed {
            watch.counts = Some((*parts_in, *parts_out));
            let verdicts = watch.throughput.counts(now, *parts_out, model_completed);
            monitor.settle(
                verdicts,
                &template(&model, s, Measure::Throughput, now),
                now,
                |m, direction, id| m.stations[s as usize].throughput.opened(direction, id),
            );
            return Ok(());
        }
        let watch = &mut monitor.stations[s as usize];
        let Some((duration, key)) = cycle else {
            return Ok(());
        };
        let (Some(key), Some(sampler)) = (key, sampler) else {
            watch.unattributed += 1;
            return Ok(());
        };
        let idx = match watch.detectors.binary_search_by_key(&key, |d| d.0) {
            Ok(i) => i,
            Err(i) => {
                watch.detectors.insert(i, (key, Detector::new(sampler, CYCLE_DESIGN)));
                i
            }
        };
        let verdicts = watch.detectors[idx].1.observe(sampler, duration as f64);
        let template = template(&model, s, Measure::CycleTime, now);
        let template = Alarm { product: key.map(|p| model.products[p as usize].id.clone()), ..template };
        monitor.settle(verdicts, &template, now, |m, direction, id| {
            m.stations[s as usize].detectors[idx].1.opened(direction, id)
        });
        Ok(())
    }

    /// The plant's station `s` went down (a `BreakDown` without a duration that the twin
    /// took): the time-between-failures test of a live station.
    pub(crate) fn plant_down(&mut self, s: StationIdx) {
        self.plant_transition(s, true);
    }

    /// The plant's station `s` came up (a `Repair` that the twin took): the repair-time
    /// test of a live station.
    pub(crate) fn plant_up(&mut self, s: StationIdx) {
        self.plant_transition(s, false);
    }

    fn plant_transition(&mut self, s: StationIdx, down: bool) {
        if self.sync_status(s) != SyncStatus::Live {
            return;
        }
        let now = self.now();
        let model = std::sync::Arc::clone(&self.model);
        let monitor = &mut self.monitor;
        let watch = &mut monitor.stations[s as usize].failures;
        let verdicts = if down { watch.down(&model, s, now) } else { watch.up(&model, s, now) };
        for (test, verdict) in verdicts {
            let measure = match test {
                Test::Between => Measure::TimeBetweenFailures,
                Test::Repair => Measure::RepairTime,
            };
            monitor.settle(vec![verdict], &template(&model, s, measure, now), now, |m, direction, id| {
                m.stations[s as usize].failures.opened(test, direction, id)
            });
        }
    }

    /// Failures counted and repairs timed by the failure tests of `station` so far.
    pub fn failure_observations(&self, station: StationIdx) -> (u64, u64) {
        self.monitor.stations.get(station as usize).map_or((0, 0), |w| w.failures.counts())
    }

    /// Throughput windows of `station` compared so far.
    pub fn throughput_windows(&self, station: StationIdx) -> u64 {
        self.monitor.stations.get(station as usize).map_or(0, |w| w.throughput.windows())
    }

    /// Where `station`'s displayed state comes from (model only, live or stale).
    pub fn sync_status(&self, station: StationIdx) -> SyncStatus {
        self.monitor.stations.get(station as usize).map_or(SyncStatus::ModelOnly, |w| w.sync)
    }

    /// Time of the latest observation of `station`, if any.
    pub fn last_observed(&self, station: StationIdx) -> Option<Micros> {
        self.monitor.stations.get(station as usize).and_then(|w| w.last_seen)
    }

    /// The plant's latest counters `(parts_in, parts_out)` for `station`, if reported.
    pub fn plant_counts(&self, station: StationIdx) -> Option<(u64, u64)> {
        self.monitor.stations.get(station as usize).and_then(|w| w.counts)
    }

    /// Cycles of `station` that could not be compared with the model (no product named
    /// and its products' processing times differ).
    pub fn unattributed_cycles(&self, station: StationIdx) -> u64 {
        self.monitor.stations.get(station as usize).map_or(0, |w| w.unattributed)
    }

    /// Open alarms and the newest [`ALARMS_KEPT`] cleared ones, ascending by id.
    pub fn alarms(&self) -> &[Alarm] {
        &self.monitor.alarms
    }

    /// Alarms raised in this run so far (open, cleared, and no longer kept).
    pub fn alarms_raised(&self) -> u64 {
        self.monitor.next_alarm - 1
    }

    /// Open alarms on `station` now.
    pub fn open_alarms(&self, station: StationIdx) -> u32 {
        let Some(id) = self.model.stations.get(station as usize).map(|s| &s.id) else {
            return 0;
        };
        self.monitor.alarms.iter().filter(|a| a.cleared_at.is_none() && &a.station == id).count() as u32
    }

    /// Changes whenever [`Sim::alarms`] changes (an alarm raised or cleared).
    pub fn alarms_revision(&self) -> u64 {
        self.monitor.revision
    }
}
