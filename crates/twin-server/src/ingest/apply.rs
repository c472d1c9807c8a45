//! Telemetry on the simulation thread: readings become core commands at a definite
//! simulation time, every decision is durable before the simulation moves on, and a
//! restart replays the decisions exactly.
//!
//! Time rule (contract C, ARCHITECTURE.md "Synchronisation"): readings with plant time
//! `at` apply at `max(now, at)`:
//! - `at <= now`: applied now (counted `late` when more than [`LATE_AFTER`] behind);
//! - `now < at <= now + HOLD_HORIZON`: held until the simulation reaches `at`, then
//!   applied exactly at `at` (the pacing loop stops there);
//! - `at > now + HOLD_HORIZON`: applied now and counted `ahead` (a plant clock far ahead
//!   of the twin's, e.g. a twin started long after the plant, must not freeze ingest).
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
//! `AlreadyDown` / `NotDown` mean "already consistent" and are not errors); counts and
//! cycles -> `Observe`; a reading about a station whose sync status is not live is
//! preceded by `Observe(Live)`, except `Stale`, which is applied only to a station that
//! is not stale already.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use twin_core::time::Micros;
use twin_core::{Command, CommandError, Observation, Observed, Sim, SyncStatus};

use super::log::{Decision, LogError, TelemetryLog, current_run};
use super::reading::{Origin, Reading, StationReading, TelemetryBatch};
use super::status::{Reject, Status};

/// How far (wall time) the twin's paced clock trails the plant's after alignment: a
/// playout buffer for the transit (broker, group commit, decoding) of a reading.
pub const PLAYOUT_DELAY: std::time::Duration = std::time::Duration::from_millis(250);
/// The playout delay at `speed`: [`PLAYOUT_DELAY`], but at most half the hold horizon
/// in simulation time (a reading further ahead than the horizon would not be held).
pub fn playout_delay(speed: f64) -> std::time::Duration {
    let half_horizon_wall = HOLD_HORIZON as f64 / 2e6 / speed.max(1e-9);
    PLAYOUT_DELAY.min(std::time::Duration::from_secs_f64(half_horizon_wall))
}

/// Furthest ahead of the twin's clock a reading is held (simulation time).
pub const HOLD_HORIZON: Micros = 60_000_000;
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
}

impl Telemetry {
    pub fn new(log: Arc<TelemetryLog>, status: Arc<Status>) -> Telemetry {
        Telemetry { log, status, held: BTreeMap::new(), waiting: false }
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

    /// Rebuilds `sim` from the log's current run: re-applies every logged command at its
    /// time and restores the hold queue. Returns the number of commands re-applied and
    /// the seed of the run. A fresh log gets its first `NewRun`.
    pub fn replay(
        &mut self,
        make_sim: impl FnOnce(u64) -> Sim,
        scene: &str,
        default_seed: u64,
        decisions: &[Decision],
    ) -> Result<(Sim, u64), ReplayError> {
        let (run, decisions) = current_run(decisions);
        let seed = match run {
            Some((logged, seed)) if logged == scene => seed,
            Some((logged, seed)) => {
                return Err(ReplayError::Scene(SceneMismatch {
                    logged: logged.to_owned(),
                    seed,
                    served: scene.to_owned(),
                }));
            }
            None => {
                self.log
                    .decide(vec![Decision::NewRun { scene: scene.to_owned(), seed: default_seed }], None)?;
                default_seed
            }
        };
        let mut sim = make_sim(seed);
        let mut n = 0u64;
        for d in decisions {
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

    /// The earliest time a held reading waits for.
    pub fn next_due(&self) -> Option<Micros> {
        self.held.keys().next().map(|(t, _)| *t)
    }

    /// Applies a batch of decoded telemetry at the current time (holding what is ahead),
    /// records the decisions durably, and returns whether anything changed.
    pub fn receive(&mut self, sim: &mut Sim, batch: TelemetryBatch) -> Result<bool, LogError> {
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
                Some(at)
                    if at > now && at <= now.saturating_add(HOLD_HORIZON) && self.held.len() < MAX_HELD =>
                {
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
            self.log.decide(decisions, batch.through)?;
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
        self.log.decide(vec![Decision::Applied { at: now, commands, released }], None)?;
        Ok(changed)
    }

    /// Records an operator's command applied at `at` (so that a restart replays it too).
    pub fn operator(&self, at: Micros, command: &Command) -> Result<(), LogError> {
        let d =
            Decision::Applied { at, commands: vec![(Origin::Operator, command.clone())], released: vec![] };
        self.log.decide(vec![d], None)
    }

    /// A new run starts (Reset, LoadScene): held readings belong to the old one.
    pub fn new_run(&mut self, scene: &str, seed: u64) -> Result<(), LogError> {
        self.held.clear();
        self.status.holding.store(0, Ordering::Relaxed);
        self.log.decide(vec![Decision::NewRun { scene: scene.to_owned(), seed }], None)
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
            let status = sim.model().station(station).map(|idx| sim.sync_status(idx));
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
                    continue;
                }
                _ if status != Some(SyncStatus::Live) => run(observe(Observed::Live)),
                _ => {}
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
    #[error(transparent)]
    Log(#[from] LogError),
}
