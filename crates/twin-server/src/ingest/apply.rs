//! Telemetry on the simulation thread: readings become core commands at a definite
//! simulation time, every decision is durable before the simulation moves on, and a
//! restart replays the decisions exactly.
//!
//! Time rule (contract C, ARCHITECTURE.md "Synchronisation"): readings with plant time
//! `at` apply at `max(now, at)`:
//! - `at <= now`: applied now (counted `late` when more than [`LATE_AFTER`] behind);
//! - `now < at <= now + horizon` ([`hold_horizon`]: 60 s of simulation time or 10 s of
//!   wall time at the live speed, whichever is longer): held until the simulation
//!   reaches `at`, then applied exactly at `at` (the pacing loop stops there);
//! - `at > now + horizon`: applied now and counted `ahead` (a plant clock far ahead of
//!   the twin's, e.g. a twin started long after the plant, must not freeze ingest).
//!
//! The watermark keeps readings from being late: the live clock does not pass the latest
//! plant time heard from any live source ([`Telemetry::hold_back`]), so a source's next
//! message, whose plant time is at or after its last one, is never behind the twin,
//! however long its transit took. A source heard less than [`WATERMARK_PATIENCE`] ago
//! holds the clock; one quiet for longer (Sparkplug reports by exception), dead, stale,
//! or whose clock is behind the twin's by more than the horizon, does not. Late readings
//! remain possible only from such a source; they apply at now and are counted `late`.
//!
//! Clock alignment (`--mqtt`, a run at time zero with nothing applied yet): the twin's
//! clock is held until the first telemetry arrives; the first NBIRTH's plant time (else
//! the earliest reading's) becomes the twin's time (`run_until`), so that plant time t is
//! twin time t. The pacing then starts [`playout_delay`] (wall time) later: the twin's
//! clock trails the plant's by that delay times the speed, so that a reading (which
//! needs some milliseconds through the broker and the log) arrives before its time, is
//! held and applies exactly at it, instead of late. Nothing needs logging for it: the
//! next decision's `run_until(at)` reaches the same state on replay. Any clock control
//! (Resume, SetSpeed, RunTo, Reset, LoadScene) ends the wait: the operator took over.
//!
//! Readings -> commands: `State { down }` -> `BreakDown` / `Repair` (the core's
//! `AlreadyDown` / `NotDown` mean "already consistent" and are not errors), the first
//! preceded by `FailuresFrom(Plant)`: the station fails and is repaired only when the
//! plant says so; counts and cycles -> `Observe`; a reading about a station whose sync
//! status is not live is preceded by `Observe(Live)`, except `Stale`, which is applied
//! only to a station that is not stale already, followed by `FailuresFrom(Model)` for a
//! plant-driven station (nobody reports its failures any more: the model draws them).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use twin_core::time::Micros;
use twin_core::{Command, CommandError, FailureSource, Observation, Observed, Sim, SyncStatus};

use super::log::{Decision, LogError, TelemetryLog};
use super::reading::{Origin, Reading, StationReading, TelemetryBatch};
use super::status::{Reject, Status};

/// How far (wall time) the twin's paced clock trails the plant's after alignment: a
/// playout buffer for the transit (broker, group commit, decoding) of a reading.
pub const PLAYOUT_DELAY: std::time::Duration = std::time::Duration::from_millis(250);
/// The playout delay at `speed`: [`PLAYOUT_DELAY`], but at most half the hold horizon
/// in simulation time (a reading further ahead than the horizon would not be held).
pub fn playout_delay(speed: f64) -> std::time::Duration {
    let half_horizon_wall = hold_horizon(speed) as f64 / 2e6 / speed.max(1e-9);
    PLAYOUT_DELAY.min(std::time::Duration::from_secs_f64(half_horizon_wall))
}

/// Furthest ahead of the twin's clock a reading is held at 1x (simulation time).
pub const HOLD_HORIZON: Micros = 60_000_000;
/// The hold horizon in wall time at speeds above 6x: a plant paced like the twin is
/// never further ahead than its transit plus the playout delay, whatever the speed.
pub const HOLD_HORIZON_WALL: std::time::Duration = std::time::Duration::from_secs(10);
/// Furthest ahead of the twin's clock a reading is held at `speed`: [`HOLD_HORIZON`] of
/// simulation time or [`HOLD_HORIZON_WALL`] of wall time, whichever is longer (at 10000x
/// a plant batch of 100 s is 10 ms of wall time: a fixed horizon would apply readings
/// early).
pub fn hold_horizon(speed: f64) -> Micros {
    let wall = HOLD_HORIZON_WALL.as_secs_f64() * speed.max(0.0) * 1e6;
    HOLD_HORIZON.max(wall.min(Micros::MAX as f64 / 2.0) as Micros)
}
/// How long (wall time) a live source's watermark holds the twin's clock after the
/// source was last heard: a source with nothing to report (Sparkplug reports by
/// exception) must not freeze the twin; the playout delay covers it from then on.
pub const WATERMARK_PATIENCE: std::time::Duration = std::time::Duration::from_secs(1);
/// Readings further behind than this are counted as late (they apply at now either way).
pub const LATE_AFTER: Micros = 1_000_000;
/// Most readings held at once; beyond it, readings apply at now (counted `ahead`).
pub const MAX_HELD: usize = 100_000;

/// Why the log of a data folder cannot be replayed onto this server's scene.
#[derive(Debug, thiserror::Error)]
#[error(
    "the telemetry log was written for scene `{logged}` with seed {seed}, but the server runs \
     scene `{served}`: serve that scene, or use another --data folder"
)]
pub struct SceneMismatch {
    pub logged: String,
    pub seed: u64,
    pub served: String,
}

/// The simulation thread's side of the ingest.
pub struct Telemetry {
    log: Arc<TelemetryLog>,
    status: Arc<Status>,
    held: BTreeMap<(Micros, Origin), Vec<StationReading>>,
    /// The clock waits for the plant's first report (clock alignment).
    waiting: bool,
    /// Per live source, the latest plant time heard from it and when (wall clock): the
    /// watermarks that hold the twin's clock back (pacing only, never logged).
    marks: BTreeMap<String, (Micros, Instant)>,
    /// Where the state stands in the log: the key the next decision gets (only this
    /// thread decides, and the writer numbers decisions in the order they come), the key
    /// of the current run's `NewRun`, and the highest raw record whose decisions are in.
    pub(crate) next_decision: u64,
    pub(crate) run_start: u64,
    pub(crate) processed_through: u64,
    /// Decisions below this key are pruned (a Seek cannot replay from before it).
    pub(crate) kept_from: u64,
    /// The newest copy of the decoder's sessions, as of a raw record at or before
    /// `processed_through` (what a checkpoint records; None without `--data`
    /// checkpoints).
    pub(crate) sessions: Option<Arc<super::decode::Sessions>>,
    /// Checkpoints of the live run (`--data`); None without a store.
    pub(crate) checkpoints: Option<super::resume::LiveCheckpoints>,
}

impl Telemetry {
    /// The simulation side of a log whose next decision key is `next_decision`, first
    /// kept one `kept_from`, with raw records processed through `processed_through`.
    pub fn new(log: Arc<TelemetryLog>, status: Arc<Status>, contents: &super::log::Contents) -> Telemetry {
        Telemetry {
            log,
            status,
            held: BTreeMap::new(),
            waiting: false,
            marks: BTreeMap::new(),
            next_decision: contents.next_decision,
            run_start: 0,
            processed_through: contents.processed_through,
            kept_from: contents.first_decision,
            sessions: None,
            checkpoints: None,
        }
    }

    /// The log.
    pub fn log(&self) -> &Arc<TelemetryLog> {
        &self.log
    }

    /// The hold queue as a list, in its order (for a checkpoint).
    pub fn held_list(&self) -> Vec<(Micros, Origin, Vec<StationReading>)> {
        self.held.iter().map(|((at, origin), r)| (*at, *origin, r.clone())).collect()
    }

    /// Records decisions durably (see [`TelemetryLog::decide`]) and keeps the place in
    /// the log up to date.
    fn decide(&mut self, decisions: Vec<Decision>, through: Option<u64>) -> Result<(), LogError> {
        let n = decisions.len() as u64;
        let new_run = decisions.iter().rposition(|d| matches!(d, Decision::NewRun { .. }));
        self.log.decide(decisions, through)?;
        if let Some(i) = new_run {
            self.run_start = self.next_decision + i as u64;
        }
        self.next_decision += n;
        if let Some(t) = through {
            self.processed_through = self.processed_through.max(t);
        }
        Ok(())
    }

    /// How far the twin's clock may advance now: the earliest watermark of the sources
    /// heard within [`WATERMARK_PATIENCE`] (None: no source holds it). A source's
    /// messages come in plant-time order, so while the twin stays at or behind its
    /// watermark, every reading of it arrives at or ahead of the twin's clock and applies
    /// exactly at its plant time, however long its transit took. A source whose clock is
    /// further behind the twin's `now` than the hold horizon at `speed` holds nothing (a
    /// plant started long after the twin must not freeze it; its readings apply at now,
    /// counted late). Pacing only: what is applied when is logged as decisions, so a
    /// replay does not depend on it.
    pub fn hold_back(&self, now: Micros, speed: f64) -> Option<Micros> {
        let horizon = hold_horizon(speed);
        self.marks
            .values()
            .filter(|(t, heard)| heard.elapsed() < WATERMARK_PATIENCE && t.saturating_add(horizon) >= now)
            .map(|(t, _)| *t)
            .min()
    }

    /// Holds the clock until the first telemetry sets it (see the module docs).
    pub fn wait_for_plant(&mut self) {
        self.waiting = true;
        self.set_clock_status();
        tracing::info!("clock held at its start until the plant's first NBIRTH (clock alignment)");
    }

    /// Whether the clock waits for the plant.
    pub fn waiting(&self) -> bool {
        self.waiting
    }

    /// The operator took over the clock: stop waiting.
    pub fn stop_waiting(&mut self) {
        if self.waiting {
            self.waiting = false;
            self.set_clock_status();
            tracing::info!("clock alignment abandoned: a clock control came first");
        }
    }

    fn set_clock_status(&self) {
        if let Ok(mut c) = self.status.clock.lock() {
            c.waiting = self.waiting;
        }
    }

    /// Runs `sim` to plant time `at` (applying held readings due on the way).
    fn align(&mut self, sim: &mut Sim, source: &str, at: Micros) -> Result<(), LogError> {
        self.waiting = false;
        while let Some(due) = self.next_due().filter(|&t| t <= at) {
            sim.run_until(due.max(sim.now()));
            self.release_due(sim)?;
        }
        if at > sim.now() {
            sim.run_until(at);
        }
        if let Ok(mut c) = self.status.clock.lock() {
            c.waiting = false;
            c.anchored = Some((source.to_owned(), sim.now()));
        }
        tracing::info!(source, sim_time_us = sim.now(), "clock aligned with the plant");
        Ok(())
    }

    /// Rebuilds `sim` from the log's current run: from `base` (a checkpoint of the run:
    /// its state, seed, place and hold queue) when given, else from the run's start;
    /// re-applies every logged command after it at its time and restores the hold queue.
    /// Returns the simulation and the seed of the run. A fresh log gets its first
    /// `NewRun`.
    pub fn replay(
        &mut self,
        make_sim: impl FnOnce(u64) -> Sim,
        scene: &str,
        default_seed: u64,
        contents: &super::log::Contents,
        base: Option<super::resume::Base>,
    ) -> Result<(Sim, u64), ReplayError> {
        let keyed: Vec<(u64, &Decision)> =
            contents.decision_keys.iter().copied().zip(&contents.decisions).collect();
        let (mut sim, seed, after) = match base {
            Some(base) => {
                self.run_start = base.meta.run_start;
                if let Ok(mut r) = self.status.resumed_from.lock() {
                    *r = Some(base.meta.sim_time);
                }
                for (at, origin, readings) in base.held {
                    self.held.insert((at, origin), readings);
                }
                let from = base.meta.log_seq;
                (base.sim, base.meta.seed, keyed.iter().filter(|(k, _)| *k > from).map(|(_, d)| *d).collect())
            }
            None => {
                let start = keyed.iter().rposition(|(_, d)| matches!(d, Decision::NewRun { .. }));
                match start.map(|i| (keyed[i], i)) {
                    Some(((key, Decision::NewRun { scene: logged, seed }), i)) => {
                        if logged != scene {
                            return Err(ReplayError::Scene(SceneMismatch {
                                logged: logged.clone(),
                                seed: *seed,
                                served: scene.to_owned(),
                            }));
                        }
                        self.run_start = key;
                        let after: Vec<&Decision> = keyed[i + 1..].iter().map(|(_, d)| *d).collect();
                        (make_sim(*seed), *seed, after)
                    }
                    _ if contents.next_decision > 1 => {
                        return Err(ReplayError::NoBase { path: self.log.path().display().to_string() });
                    }
                    _ => {
                        self.decide(
                            vec![Decision::NewRun { scene: scene.to_owned(), seed: default_seed }],
                            None,
                        )?;
                        (make_sim(default_seed), default_seed, Vec::new())
                    }
                }
            }
        };
        let mut n = 0u64;
        for d in after {
            match d {
                Decision::Applied { at, commands, released } => {
                    if *at > sim.now() {
                        sim.run_until(*at);
                    }
                    for (_, c) in commands {
                        if let Err(e) = sim.apply(c) {
                            tracing::warn!(error = %e, command = ?c, "replayed command refused (log and core disagree)");
                        }
                        n += 1;
                    }
                    self.held.retain(|(_, o), _| !released.contains(o));
                }
                Decision::Held { origin, at, readings } => {
                    self.held.insert((*at, *origin), readings.clone());
                }
                Decision::NewRun { .. } => {}
            }
        }
        self.status.replayed_commands.store(n, Ordering::Relaxed);
        self.status.holding.store(self.held.len() as u64, Ordering::Relaxed);
        if n > 0 {
            tracing::info!(
                commands = n,
                sim_time_us = sim.now(),
                held = self.held.len(),
                "telemetry log replayed"
            );
        }
        Ok((sim, seed))
    }

    /// Simulated time of the next live checkpoint (None without a store).
    pub fn next_checkpoint(&self) -> Option<Micros> {
        self.checkpoints.as_ref().map(|c| c.next_at)
    }

    /// The checkpoints of the current run on disk, oldest first.
    pub fn checkpoints_held(&self) -> Vec<crate::store::checkpoints::Info> {
        self.checkpoints.as_ref().map(|c| c.of_run(self.run_start)).unwrap_or_default()
    }

    /// Checkpoints the live run now (`wait`: until it is on disk, at shutdown); `meta` is
    /// the driver's, completed here with the place in the telemetry log. Then prunes the
    /// log below the oldest checkpoint kept.
    pub fn checkpoint(
        &mut self,
        sim: &Sim,
        mut meta: crate::store::checkpoints::Meta,
        scene_path: &str,
        wait: bool,
    ) {
        meta.run_start = self.run_start;
        meta.log_seq = self.next_decision.saturating_sub(1);
        let sessions = self.sessions.as_deref().filter(|s| s.through <= self.processed_through).cloned();
        meta.telemetry = Some(crate::store::checkpoints::TelemetryPlace {
            processed_through: self.processed_through,
            held: self.held_list(),
            sessions,
        });
        let Some(c) = &mut self.checkpoints else { return };
        c.take(&self.log, sim, meta, scene_path, wait);
        self.kept_from = self.kept_from.max(c.pruned_below());
    }

    /// The earliest time a held reading waits for.
    pub fn next_due(&self) -> Option<Micros> {
        self.held.keys().next().map(|(t, _)| *t)
    }

    /// Applies a batch of decoded telemetry at the current time (holding what is ahead),
    /// records the decisions durably, and returns whether anything changed.
    /// `speed` (the live clock's paced speed) sets the hold horizon ([`hold_horizon`]).
    pub fn receive(&mut self, sim: &mut Sim, batch: TelemetryBatch, speed: f64) -> Result<bool, LogError> {
        let heard = Instant::now();
        for (source, at) in &batch.marks {
            let mark = self.marks.entry(source.clone()).or_insert((*at, heard));
            *mark = (mark.0.max(*at), heard);
        }
        for source in &batch.gone {
            self.marks.remove(source);
        }
        if let Ok(mut c) = self.status.clock.lock() {
            c.watermark = self.hold_back(sim.now(), speed);
        }
        let horizon = hold_horizon(speed);
        if self.waiting {
            let first = batch.items.iter().filter_map(|i| i.at).min();
            match (&batch.birth, first) {
                (Some((source, at)), _) => self.align(sim, source, *at)?,
                (None, Some(at)) => self.align(sim, "first reading", at)?,
                (None, None) => {}
            }
        }
        let now = sim.now();
        let mut decisions = Vec::new();
        let mut commands = Vec::new();
        let mut applied = 0;
        for item in batch.items {
            match item.at {
                Some(at) if at > now && at <= now.saturating_add(horizon) && self.held.len() < MAX_HELD => {
                    self.status.count(&self.status.held, 1);
                    decisions.push(Decision::Held {
                        origin: item.origin,
                        at,
                        readings: item.readings.clone(),
                    });
                    self.held.insert((at, item.origin), item.readings);
                    continue;
                }
                Some(at) if at > now => self.status.count(&self.status.ahead, 1),
                Some(at) if now - at > LATE_AFTER => self.status.count(&self.status.late, 1),
                _ => {}
            }
            self.apply(sim, item.origin, &item.readings, &mut commands);
            applied += 1;
        }
        let changed = !commands.is_empty();
        if changed {
            decisions.push(Decision::Applied { at: now, commands, released: Vec::new() });
        }
        if !decisions.is_empty() || batch.through.is_some() {
            self.decide(decisions, batch.through)?;
        }
        if let Some(s) = batch.sessions.filter(|s| Some(s.through) == batch.through) {
            self.sessions = Some(s);
        }
        self.status.count(&self.status.applied, applied);
        self.status.holding.store(self.held.len() as u64, Ordering::Relaxed);
        Ok(changed)
    }

    /// Applies the held readings that are due now (the simulation stopped at their time).
    pub fn release_due(&mut self, sim: &mut Sim) -> Result<bool, LogError> {
        let now = sim.now();
        let mut commands = Vec::new();
        let mut released = Vec::new();
        while let Some(entry) = self.held.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let ((_, origin), readings) = entry.remove_entry();
            self.apply(sim, origin, &readings, &mut commands);
            released.push(origin);
        }
        if released.is_empty() {
            return Ok(false);
        }
        let changed = !commands.is_empty();
        self.status.count(&self.status.applied, released.len() as u64);
        self.status.holding.store(self.held.len() as u64, Ordering::Relaxed);
        self.decide(vec![Decision::Applied { at: now, commands, released }], None)?;
        Ok(changed)
    }

    /// Records an operator's command applied at `at` (so that a restart replays it too).
    pub fn operator(&mut self, at: Micros, command: &Command) -> Result<(), LogError> {
        let d =
            Decision::Applied { at, commands: vec![(Origin::Operator, command.clone())], released: vec![] };
        self.decide(vec![d], None)
    }

    /// A new run starts (Reset, LoadScene): held readings belong to the old one.
    pub fn new_run(&mut self, scene: &str, seed: u64) -> Result<(), LogError> {
        self.held.clear();
        if let Some(c) = &mut self.checkpoints {
            c.checkpoints.new_run();
            c.next_at = crate::store::next_checkpoint(0, c.every);
        }
        self.status.holding.store(0, Ordering::Relaxed);
        self.decide(vec![Decision::NewRun { scene: scene.to_owned(), seed }], None)
    }

    /// Applies `readings` now, appending the commands that changed something.
    fn apply(
        &self,
        sim: &mut Sim,
        origin: Origin,
        readings: &[StationReading],
        out: &mut Vec<(Origin, Command)>,
    ) {
        for r in readings {
            let station = &r.station;
            let observe = |observed| Command::Observe(Observation { station: station.clone(), observed });
            let idx = sim.model().station(station);
            let status = idx.map(|idx| sim.sync_status(idx));
            let failures = idx.map(|idx| sim.failure_source(idx));
            let failures_from = |source| Command::FailuresFrom { station: station.clone(), source };
            let mut run = |command: Command| match sim.apply(&command) {
                Ok(_) => out.push((origin, command)),
                Err(CommandError::AlreadyDown(_) | CommandError::NotDown(_)) => {}
                Err(CommandError::UnknownStation(_)) => self.status.reject(Reject::UnknownDevice, station),
                Err(e) => self.status.reject(Reject::InvalidCommand, &e.to_string()),
            };
            match &r.reading {
                Reading::Stale => {
                    if status != Some(SyncStatus::Stale) {
                        run(observe(Observed::Stale));
                    }
                    // Nobody reports its failures now: the model draws them again.
                    if failures == Some(FailureSource::Plant) {
                        run(failures_from(FailureSource::Model));
                    }
                    continue;
                }
                _ if status != Some(SyncStatus::Live) => run(observe(Observed::Live)),
                _ => {}
            }
            if matches!(r.reading, Reading::State { .. }) && failures == Some(FailureSource::Model) {
                // The plant reports this station's state: it alone breaks it down and
                // repairs it from now on.
                run(failures_from(FailureSource::Plant));
            }
            match &r.reading {
                Reading::State { down: true } => {
                    run(Command::BreakDown { station: station.clone(), duration: None })
                }
                Reading::State { down: false } => run(Command::Repair { station: station.clone() }),
                Reading::Counts { parts_in, parts_out } => {
                    run(observe(Observed::Counts { parts_in: *parts_in, parts_out: *parts_out }))
                }
                Reading::Cycle { duration, product } => {
                    run(observe(Observed::Cycle { duration: *duration, product: product.clone() }))
                }
                Reading::Live | Reading::Stale => {}
            }
        }
    }
}

/// Why a restart could not replay the log.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Scene(#[from] SceneMismatch),
    #[error(
        "{path}: no usable checkpoint of the current run, and the telemetry log no longer holds \
         its start (see the errors above for each checkpoint)"
    )]
    NoBase { path: String },
    #[error(transparent)]
    Log(#[from] LogError),
}

#[cfg(test)]
mod tests;
