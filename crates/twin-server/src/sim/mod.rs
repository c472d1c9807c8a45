//! The simulation thread: owns the [`Sim`], paces it to the wall clock, applies commands
//! between events and publishes [`Snapshot`]s for the viewers.
//!
//! Determinism: the core only ever advances through `Sim::run_until(t)`, and every
//! command is applied right after such a call, at `sim.now()`. Replaying the command log
//! `(sim_time, command)` through the core with `run_until(sim_time)` + the command
//! therefore gives the same run, whatever the pacing, the speed or the number of viewers.
//!
//! The thread is a plain OS thread, not a tokio task: at "as fast as possible" it is
//! CPU-bound for as long as it runs, and must not starve the gRPC workers.
//!
//! With a store (`--data DIR`), every command is in `DIR/commands.redb` before its
//! receipt is sent, and the live run is checkpointed every `--checkpoint-every` of
//! simulated time and at shutdown ([`crate::store`]). [`timeline`] holds the view
//! (Seek, branches, GoLive).

mod command;
mod handle;
mod publish;
pub mod timeline;

pub use self::command::LOG_KEPT;
pub use self::handle::{SimHandle, Stopped};

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError, TryRecvError};
use std::time::{Duration, Instant};

use tokio::sync::{oneshot, watch};
use twin_core::report::ReportOptions;
use twin_core::time::Micros;
use twin_core::{Model, Report, Sim};
use twin_proto::v1;

pub use crate::live::{Clock, ControlError, InjectError, NotLogged, Receipt, ReportReply, Speed};
/// The commands a live run takes and logs are the core's own: a replay applies the log
/// through `Sim::apply`.
pub use twin_core::Command as Injection;

use self::timeline::{Built, Plan, SeekError, View};
use crate::convert;
use crate::ingest::apply::Telemetry;
use crate::ingest::reading::TelemetryBatch;
use crate::measure::{FlowMeter, RateWindow};
use crate::store::checkpoints::{Info, Meta, Taken};
use crate::store::commands::Entry;
use crate::store::{Recovered, Store, encode_layout, next_checkpoint};

/// How often a running simulation publishes a snapshot (wall time). Viewers sample the
/// latest snapshot at their own rate, so this bounds the staleness of any frame.
const PUBLISH_EVERY: Duration = Duration::from_millis(10);
/// Longest stretch of event processing before the thread looks at its commands again;
/// bounds control-call latency at "as fast as possible".
const CHUNK_BUDGET: Duration = Duration::from_millis(2);
/// How often the full report (bottleneck ranking, KPIs) is recomputed while running.
/// The ranking sweeps every active period, too costly for every frame or command; the
/// KPIs alone are refreshed after every command.
const REPORT_EVERY: Duration = Duration::from_secs(1);
/// When paced and this far behind the wall clock, the debt is written off instead of
/// racing to catch up (the achieved speed then shows the shortfall).
const MAX_LAG: Duration = Duration::from_millis(250);

/// A scene loaded into the server.
#[derive(Debug)]
pub struct LiveScene {
    /// Catalogue name (path under the scenes folder without extension).
    pub name: String,
    /// File it was loaded from.
    pub path: PathBuf,
    /// The validated model.
    pub model: Arc<Model>,
    /// Seed used when a Reset or LoadScene names none.
    pub default_seed: u64,
    /// The layout at scene start, converted once (its `layout_generation` is filled per
    /// run; SetParameter may change a run's copy).
    pub layout: v1::Layout,
    /// Which flow links are measured, and how.
    pub flows: FlowMeter,
}

impl LiveScene {
    /// Wraps a validated model, converting its layout once.
    pub fn new(name: String, path: PathBuf, model: Model, seed: Option<u64>) -> LiveScene {
        let default_seed = seed.unwrap_or(model.seed);
        let model = Arc::new(model);
        // The vehicles a run starts with, exactly as the live views will list them.
        let fresh = Sim::new(Arc::clone(&model), default_seed);
        let agv_fleets: Vec<u32> = fresh.vehicle_views().map(|v| v.fleet).collect();
        let trucks = fresh.truck_views().count();
        drop(fresh);
        let links = model.flow_links();
        let layout = convert::layout(&model, &name, &links, &agv_fleets, trucks);
        let flows = FlowMeter::new(&model, &links);
        LiveScene { default_seed, name, path, model, layout, flows }
    }
}

/// What viewers see: the state at one instant, shared by every stream (`Arc`).
#[derive(Debug)]
pub struct Snapshot {
    /// Bumped by Reset and LoadScene; frames of a new generation are full.
    pub generation: u64,
    pub scene: Arc<LiveScene>,
    /// The layout of this generation (`layout_generation` filled in): the scene's, with
    /// the run's parameter changes applied.
    pub layout: Arc<v1::Layout>,
    pub clock: Clock,
    /// Station states in layout order, already in wire form (built once, not per viewer).
    pub stations: Vec<v1::StationState>,
    /// Vehicle states in Layout.vehicles order (AGVs, then trucks), in wire form.
    pub vehicles: Vec<v1::VehicleState>,
    /// Rates of the measured flow links, ascending by link index.
    pub flows: Vec<v1::FlowRate>,
    /// Every rush order of the run with its progress, in the order placed.
    pub rush_orders: Vec<v1::RushOrderProgress>,
    pub kpis: v1::KpiSummary,
    pub bottlenecks: v1::BottleneckRanking,
    /// The run's deviation alarms (open and the newest cleared), ascending by id, in wire
    /// form; shared between snapshots until they change.
    pub alarms: Arc<Vec<v1::Alarm>>,
    /// Alarm count and open alarms for the frame summary.
    pub alarm_summary: Arc<v1::AlarmSummary>,
    /// The latest periodic forecast of this run, if the server makes them (shared: a
    /// new one is a new `Arc`).
    pub forecast: Option<Arc<v1::ForecastResult>>,
    /// Where the view stands on the timeline (live, history, branch).
    pub timeline: v1::Timeline,
    /// When the simulation thread published it (for delay measurements).
    pub published: Instant,
}

/// Clock and layout changes a control call can ask for.
#[derive(Debug)]
pub enum Control {
    Pause,
    Resume,
    SetSpeed(Speed),
    RunTo(Micros),
    Reset { seed: Option<u64> },
    Load { scene: Arc<LiveScene>, seed: Option<u64> },
}

/// Reply of a control call.
#[derive(Debug, Clone)]
pub struct ControlReply {
    pub clock: Clock,
    pub generation: u64,
}

/// Whether the command changes the layout (and so bumps the layout generation).
fn changes_layout(command: &Injection) -> bool {
    matches!(
        command,
        Injection::SetServers { .. } | Injection::SetFleetSize { .. } | Injection::SetTruckCount { .. }
    )
}

enum Request {
    Control(Control, oneshot::Sender<Result<ControlReply, ControlError>>),
    Inject(Injection, oneshot::Sender<Result<Receipt, InjectError>>),
    Report(oneshot::Sender<ReportReply>),
    CommandLog(oneshot::Sender<Vec<(Micros, Injection)>>),
    Fork(oneshot::Sender<LiveCopy>),
    SetForecast(u64, Arc<v1::ForecastResult>),
    /// Decoded telemetry to apply; the reply says it is applied (the ingest waits, so
    /// nothing queues here without bound).
    Telemetry(TelemetryBatch, mpsc::SyncSender<()>),
    /// What a Seek replays.
    SeekPlan(Micros, oneshot::Sender<Result<Plan, SeekError>>),
    /// Shows a rebuilt run (HISTORY).
    Show(Box<Built>, oneshot::Sender<Result<v1::Timeline, SeekError>>),
    GoLive(oneshot::Sender<v1::Timeline>),
    Checkpoints(oneshot::Sender<Vec<Info>>),
    Stop,
}

/// A copy of the live run's state at one instant, for forecasts.
pub struct LiveCopy {
    pub sim: Sim,
    /// Which run it is a copy of (Reset and LoadScene start a new one).
    pub run: u64,
}

/// A run rebuilt from the telemetry log before the thread starts (restart replay).
pub struct Resumed {
    pub sim: Sim,
    pub seed: u64,
    pub telemetry: Telemetry,
}

/// How the simulation thread starts.
pub enum Start {
    /// A new run of the scene; nothing is kept on disk.
    Fresh,
    /// The run rebuilt from the telemetry log (live ingest).
    Telemetry(Box<Resumed>),
    /// The run rebuilt from the store's checkpoints and command log (`--data DIR`).
    Store(Box<Recovered>),
}

/// Last published motion of a vehicle, to measure its speed and keep a parked truck's
/// heading.
#[derive(Clone, Copy, Debug)]
struct Motion {
    x: f64,
    y: f64,
    heading: f64,
    speed: f64,
}

/// Whether a report refresh recomputes the bottleneck ranking.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ranking {
    Refresh,
    Keep,
}

struct Driver {
    scene: Arc<LiveScene>,
    sim: Sim,
    generation: u64,
    /// The layout of the current generation.
    layout: Arc<v1::Layout>,
    clock: Clock,
    /// Wall instant and simulated time the pacing counts from.
    anchor: (Instant, Micros),
    /// Start of the achieved-speed measurement window.
    speed_window: (Instant, Micros),
    /// Wall instant the current run started (Reset / Load).
    run_started: Instant,
    log: Vec<(Micros, Injection)>,
    report: Report,
    /// Wire forms of the cached report's KPIs and ranking, reused by every snapshot.
    kpis: v1::KpiSummary,
    ranking: v1::BottleneckRanking,
    report_at: Instant,
    /// Moving window over the parts each station processed.
    throughput: RateWindow,
    /// Moving window over the parts moved along each flow link.
    flow_window: RateWindow,
    /// Vehicle motion at the last snapshot, in Layout.vehicles order, and its time.
    motion: Vec<Motion>,
    motion_t: Micros,
    last_publish: Instant,
    publisher: Option<watch::Sender<Arc<Snapshot>>>,
    /// The telemetry side (hold queue, durable decisions); None without `--data`.
    telemetry: Option<Telemetry>,
    /// Wire forms of the run's alarms and their summary, and the `(generation, alarms
    /// revision)` they were converted at.
    alarms: (Arc<Vec<v1::Alarm>>, Arc<v1::AlarmSummary>),
    alarms_at: (u64, u64),
    /// Number of the current run (bumped by Reset and LoadScene), so that a forecast of
    /// an earlier run is never published in this one.
    run: u64,
    /// The latest periodic forecast of this run.
    forecast: Option<Arc<v1::ForecastResult>>,
    /// Commands of the run no longer in `log` (pruned up to the oldest checkpoint kept);
    /// `log` entry k is command number `log_base + k + 1` of the run.
    log_base: u64,
    /// The durable command log and the checkpoints; None without `--data` (or with live
    /// ingest, whose telemetry log is the truth).
    store: Option<Store>,
    /// The view when it is not the live run (Seek, branch).
    view: Option<View>,
    /// Most commands `log` keeps without a store ([`LOG_KEPT`]; smaller in tests).
    log_kept: usize,
}

impl Driver {
    fn new(scene: Arc<LiveScene>, speed: Speed, paused: bool, start: Start) -> Driver {
        let (mut layout, mut log_base, mut log, mut store) = (layout_of(&scene, 1), 0, Vec::new(), None);
        let (sim, seed, telemetry) = match start {
            Start::Telemetry(r) => {
                let r = *r;
                (r.sim, r.seed, Some(r.telemetry))
            }
            Start::Fresh => {
                (Sim::new(Arc::clone(&scene.model), scene.default_seed), scene.default_seed, None)
            }
            Start::Store(r) => {
                let r = *r;
                if let Some(mut l) = r.layout {
                    l.layout_generation = 1;
                    layout = Arc::new(l);
                }
                (log_base, log, store) = (r.log_base, r.log, Some(r.store));
                (r.sim, r.seed, None)
            }
        };
        let sim_start = sim.now();
        let now = Instant::now();
        let paced_speed = match speed {
            Speed::Paced(s) => s,
            Speed::Max => 1.0,
        };
        let report = sim.report();
        // Layout changes replayed after the checkpoint (its layout has the earlier ones).
        let relayout: Vec<Injection> =
            log.iter().map(|(_, c)| c).filter(|c| changes_layout(c)).cloned().collect();
        let mut driver = Driver {
            kpis: convert::kpi_summary(&report),
            ranking: convert::bottleneck_ranking(&report),
            report,
            sim,
            layout,
            scene,
            generation: 1,
            clock: Clock {
                sim_time: sim_start,
                speed,
                paced_speed,
                paused,
                achieved_speed: 0.0,
                run_until: None,
                seed,
            },
            anchor: (now, sim_start),
            speed_window: (now, sim_start),
            run_started: now,
            log,
            report_at: now,
            throughput: RateWindow::default(),
            flow_window: RateWindow::default(),
            motion: Vec::new(),
            motion_t: 0,
            last_publish: now,
            publisher: None,
            telemetry,
            alarms: (Arc::default(), Arc::new(convert::alarm_summary(&[], 0))),
            alarms_at: (1, 0),
            run: 1,
            forecast: None,
            log_base,
            store,
            view: None,
            log_kept: LOG_KEPT,
        };
        for command in &relayout {
            driver.change_layout(command);
        }
        driver
    }

    fn run(mut self, rx: mpsc::Receiver<Request>) {
        tracing::debug!("simulation thread started");
        loop {
            // Commands first: they apply at the current simulation time. A steady flow of
            // requests (telemetry) must not stop the clock: after CHUNK_BUDGET the
            // simulation advances, and the rest waits for the next round.
            let requests_from = Instant::now();
            while requests_from.elapsed() < CHUNK_BUDGET {
                match rx.try_recv() {
                    Ok(r) => {
                        if !self.handle(r) {
                            return;
                        }
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => return,
                }
            }
            // The live run is held when paused or while it waits for the plant's clock
            // (ingest clock alignment); a view (HISTORY / BRANCH) runs on its own.
            let live_running = !self.clock.paused && !self.telemetry.as_ref().is_some_and(Telemetry::waiting);
            let view_running = self.view.as_ref().is_some_and(View::running);
            if !live_running && !view_running {
                match rx.recv() {
                    Ok(r) => {
                        if !self.handle(r) {
                            return;
                        }
                        continue;
                    }
                    Err(_) => return,
                }
            }
            let (mut idle, mut stopped) = (true, false);
            if live_running {
                let (i, s) = self.step();
                (idle, stopped) = (idle && i, stopped || s);
            }
            if view_running {
                let (i, s) = self.on_view(Driver::step);
                (idle, stopped) = (idle && i, stopped || s);
            }
            let now = Instant::now();
            if now.duration_since(self.last_publish) >= PUBLISH_EVERY || stopped {
                self.on_view(|d| {
                    if now.duration_since(d.report_at) >= REPORT_EVERY {
                        d.refresh_report(Ranking::Refresh);
                    }
                });
                self.publish();
            }
            if idle {
                let wait = (self.last_publish + PUBLISH_EVERY).saturating_duration_since(Instant::now());
                match rx.recv_timeout(wait) {
                    Ok(r) => {
                        if !self.handle(r) {
                            return;
                        }
                    }
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => return,
                }
            }
        }
    }

    /// Advances the run in place (live, or a branch swapped in) by one chunk of pacing.
    /// Returns whether it is idle (nothing to do until later) and whether it just
    /// stopped at a RunTo target.
    fn step(&mut self) -> (bool, bool) {
        let started = Instant::now();
        // A live plant's watermark: the twin does not run ahead of readings it has not
        // seen yet (a view's driver has no telemetry swapped in, so it is never held).
        let now = self.sim.now();
        let hold = self
            .telemetry
            .as_ref()
            .and_then(|t| t.hold_back(now, self.clock.paced_speed))
            .map(|t| t.max(now));
        let idle = match self.clock.speed {
            Speed::Max => {
                let target = self.clock.run_until.unwrap_or(Micros::MAX);
                let reached = self.advance(target.min(hold.unwrap_or(Micros::MAX)), started + CHUNK_BUDGET);
                // Nothing left to simulate, or held by the plant: wait for commands
                // instead of spinning.
                (hold.is_some() && reached)
                    || (self.clock.run_until.is_none() && self.sim.next_event_time().is_none())
            }
            Speed::Paced(speed) => {
                let elapsed = started.duration_since(self.anchor.0).as_secs_f64();
                let mut target = self.anchor.1.saturating_add((elapsed * speed * 1e6) as Micros);
                if let Some(until) = self.clock.run_until {
                    target = target.min(until);
                }
                if let Some(hold) = hold {
                    target = target.min(hold);
                }
                let reached = self.advance(target, started + PUBLISH_EVERY);
                let lag_s = target.saturating_sub(self.sim.now()) as f64 / speed / 1e6;
                crate::metrics::pacing_lag(lag_s);
                if !reached && lag_s > MAX_LAG.as_secs_f64() {
                    // Cannot keep up: pace from here instead of racing.
                    crate::metrics::pacing_reset();
                    self.anchor = (Instant::now(), self.sim.now());
                }
                reached
            }
        };
        let mut stopped = false;
        if let Some(until) = self.clock.run_until
            && self.sim.now() >= until
        {
            self.clock.run_until = None;
            self.set_paused(true);
            stopped = true;
            tracing::info!(sim_time_us = until, "RunTo target reached; paused");
        }
        (idle, stopped)
    }

    /// Checkpoints the live run now (`wait`: until it is on disk, at shutdown), then
    /// prunes what the oldest checkpoint kept makes unnecessary.
    fn checkpoint(&mut self, wait: bool) {
        let Some(store) = &mut self.store else { return };
        let now = self.sim.now();
        store.next_at = next_checkpoint(now, store.config.every);
        let meta = Meta {
            scene: self.scene.name.clone(),
            seed: self.clock.seed,
            run_start: store.run_start,
            log_seq: store.log.last_seq(),
            run_commands: self.log_base + self.log.len() as u64,
            sim_time: now,
            written_unix_ms: crate::audit::now_unix_ms(),
            layout: encode_layout(&self.layout),
            telemetry: None,
        };
        let scene_path = self.scene.path.display().to_string();
        match store.checkpoints.take(&self.sim, meta, &scene_path, wait) {
            Taken::Queued { pause_s } => {
                tracing::debug!(sim_time_us = now, pause_s, "checkpoint taken");
            }
            Taken::Skipped => {
                tracing::debug!(sim_time_us = now, "checkpoint skipped: the previous is being written")
            }
        }
        // Once the run holds as many checkpoints as it keeps, what lies before the oldest
        // is never replayed again: drop it from the log and from memory.
        let held = store.checkpoints.held();
        if held.len() >= store.config.keep
            && let Some(oldest) = held.first()
            && oldest.meta.run_start == store.run_start
        {
            if let Err(e) = store.log.prune_through(oldest.meta.log_seq) {
                tracing::error!(error = %e, "command log not pruned");
            }
            let drop = oldest.meta.run_commands.saturating_sub(self.log_base) as usize;
            if drop > 0 {
                self.log.drain(..drop.min(self.log.len()));
                self.log_base = oldest.meta.run_commands;
            }
        }
    }

    /// Checkpoints the live run with live ingest (`wait`: until it is on disk), which then
    /// prunes the telemetry log below the oldest checkpoint kept (`ingest::resume`).
    fn checkpoint_live(&mut self, wait: bool) {
        let Some(telemetry) = &mut self.telemetry else { return };
        if telemetry.next_checkpoint().is_none() {
            return;
        }
        let meta = Meta {
            scene: self.scene.name.clone(),
            seed: self.clock.seed,
            run_start: 0,
            log_seq: 0,
            run_commands: self.log_base + self.log.len() as u64,
            sim_time: self.sim.now(),
            written_unix_ms: crate::audit::now_unix_ms(),
            layout: encode_layout(&self.layout),
            telemetry: None,
        };
        let scene_path = self.scene.path.display().to_string();
        telemetry.checkpoint(&self.sim, meta, &scene_path, wait);
    }

    /// Advances towards `target` until the wall-clock `deadline`, stopping at the time of
    /// each held telemetry reading to apply it exactly then, and at each checkpoint time
    /// to take it exactly then (so checkpoints sit at multiples of the interval, whatever
    /// the pacing). Returns whether `target` was reached.
    fn advance(&mut self, target: Micros, deadline: Instant) -> bool {
        loop {
            let held = self.telemetry.as_ref().and_then(Telemetry::next_due);
            let checkpoint = self
                .store
                .as_ref()
                .map(|s| s.next_at)
                .or_else(|| self.telemetry.as_ref().and_then(Telemetry::next_checkpoint));
            let due = held.into_iter().chain(checkpoint).filter(|&t| t <= target).min();
            let Some(due) = due else { return self.advance_events(target, deadline) };
            if !self.advance_events(due, deadline) {
                return false;
            }
            if held == Some(due)
                && let Some(telemetry) = &mut self.telemetry
                && let Err(e) = telemetry.release_due(&mut self.sim)
            {
                tracing::error!(error = %e, "held telemetry applied but not recorded");
            }
            if checkpoint == Some(due) {
                self.checkpoint(false);
                self.checkpoint_live(false);
            }
        }
    }

    /// Advances towards `target` event by event until the wall-clock `deadline`.
    /// Returns whether `target` was reached. Only `run_until` moves the clock, so the
    /// chunking never changes results.
    fn advance_events(&mut self, target: Micros, deadline: Instant) -> bool {
        let mut n: u32 = 0;
        while let Some(t) = self.sim.next_event_time() {
            if t > target {
                break;
            }
            self.sim.run_until(t);
            n += 1;
            if n.is_multiple_of(64) && Instant::now() >= deadline {
                return false;
            }
        }
        if target != Micros::MAX {
            self.sim.run_until(target);
        }
        true
    }

    /// Handles one request; false means stop the thread.
    fn handle(&mut self, request: Request) -> bool {
        match request {
            Request::Control(c, reply) => {
                let generation = self.generation;
                let result = match c {
                    // A new live run: the view returns to it.
                    Control::Reset { .. } | Control::Load { .. } => {
                        let result = self.control(c);
                        // Refused (not logged): the view stays as it was.
                        if result.is_ok() {
                            self.view = None;
                        }
                        result
                    }
                    // Resume and RunTo on history start a branch from there.
                    Control::Resume | Control::RunTo(_) if self.view.is_some() => {
                        self.branch_if_history();
                        self.on_view(|d| d.control(c))
                    }
                    c => self.on_view(|d| d.control(c)),
                };
                // A new run needs a new ranking (cheap at time zero); clock changes do not.
                let ranking = if self.generation != generation { Ranking::Refresh } else { Ranking::Keep };
                self.on_view(|d| d.refresh_report(ranking));
                self.publish();
                let _ = reply.send(result);
            }
            Request::Inject(i, reply) => {
                // A command on history starts a branch there; on a branch it stays there.
                self.branch_if_history();
                let (result, publish) = self.on_view(|d| d.inject(i));
                if publish {
                    self.publish();
                }
                let _ = reply.send(result);
            }
            Request::Report(reply) => {
                let answer = self.on_view(|d| ReportReply {
                    report: d.sim.report(),
                    scene_name: d.scene.name.clone(),
                    model: Arc::clone(&d.scene.model),
                    rush_orders: d.sim.rush_orders().to_vec(),
                    wall_s: d.run_started.elapsed().as_secs_f64(),
                });
                let _ = reply.send(answer);
            }
            Request::CommandLog(reply) => {
                let _ = reply.send(self.log.clone());
            }
            Request::Fork(reply) => {
                let _ = reply.send(LiveCopy { sim: self.sim.clone(), run: self.run });
            }
            Request::SetForecast(run, forecast) => {
                if run == self.run {
                    self.forecast = Some(forecast);
                    // A paused run publishes only when something changes: this did.
                    self.publish();
                }
            }
            Request::Telemetry(batch, reply) => {
                let mut aligned = false;
                if let Some(telemetry) = &mut self.telemetry {
                    let waiting = telemetry.waiting();
                    let result = telemetry.receive(&mut self.sim, batch, self.clock.paced_speed);
                    aligned = waiting && !telemetry.waiting();
                    match result {
                        Ok(true) => {
                            if self.last_publish.elapsed() >= PUBLISH_EVERY {
                                self.publish();
                            }
                        }
                        Ok(false) => {}
                        Err(e) => tracing::error!(error = %e, "telemetry applied but not recorded"),
                    }
                }
                if aligned {
                    // The clock jumped to the plant's time: pace from there, a playout
                    // delay behind, so that readings arrive before their time and apply
                    // exactly at it.
                    self.reanchor();
                    self.anchor.0 += crate::ingest::apply::playout_delay(self.clock.paced_speed);
                    self.publish();
                }
                let _ = reply.send(());
            }
            Request::SeekPlan(target, reply) => {
                let _ = reply.send(self.seek_plan(target));
            }
            Request::Show(built, reply) => {
                let _ = reply.send(self.show(*built));
            }
            Request::GoLive(reply) => {
                let _ = reply.send(self.go_live());
            }
            Request::Checkpoints(reply) => {
                let held = match (&self.store, &self.telemetry) {
                    (Some(s), _) => s.checkpoints.held(),
                    (None, Some(t)) => t.checkpoints_held(),
                    (None, None) => Vec::new(),
                };
                let _ = reply.send(held);
            }
            Request::Stop => {
                tracing::debug!("simulation thread stopping");
                // The last checkpoint: a restart then replays nothing.
                if self.store.is_some() {
                    self.checkpoint(true);
                }
                self.checkpoint_live(true);
                return false;
            }
        }
        true
    }

    fn control(&mut self, c: Control) -> Result<ControlReply, ControlError> {
        if let Some(telemetry) = &mut self.telemetry {
            telemetry.stop_waiting();
        }
        match c {
            Control::Pause => self.set_paused(true),
            Control::Resume => self.set_paused(false),
            Control::SetSpeed(speed) => {
                self.clock.speed = speed;
                if let Speed::Paced(s) = speed {
                    self.clock.paced_speed = s;
                }
                self.reanchor();
            }
            Control::RunTo(target) => {
                let now = self.sim.now();
                if target <= now {
                    return Err(ControlError::NotAfterNow { target, now });
                }
                self.clock.run_until = Some(target);
                self.set_paused(false);
            }
            Control::Reset { seed } => {
                let scene = Arc::clone(&self.scene);
                self.restart(scene, seed)?;
            }
            Control::Load { scene, seed } => self.restart(scene, seed)?,
        }
        self.clock.sim_time = self.sim.now();
        Ok(ControlReply { clock: self.clock, generation: self.generation })
    }

    /// Starts a new live run of `scene`, once the durable logs hold its start (else the
    /// current run goes on and the call is refused).
    fn restart(&mut self, scene: Arc<LiveScene>, seed: Option<u64>) -> Result<(), ControlError> {
        let seed = seed.unwrap_or(scene.default_seed);
        let refused = |log: &str, e: &dyn std::fmt::Display| {
            tracing::error!(error = %e, "new run refused: the {log} cannot record it");
            ControlError::NotLogged(NotLogged(e.to_string()))
        };
        if let Some(telemetry) = &mut self.telemetry {
            telemetry.new_run(&scene.name, seed).map_err(|e| refused("telemetry log", &e))?;
        }
        if let Some(store) = &mut self.store {
            let entry = Entry::NewRun { scene: scene.name.clone(), seed };
            store.run_start = store.log.append(&entry).map_err(|e| refused("command log", &e))?;
            store.checkpoints.new_run();
            store.next_at = next_checkpoint(0, store.config.every);
        }
        tracing::info!(scene = %scene.name, seed, "starting a new run");
        self.sim = Sim::new(Arc::clone(&scene.model), seed);
        self.log_base = 0;
        self.scene = scene;
        self.generation += 1;
        self.run += 1;
        self.forecast = None;
        self.layout = layout_of(&self.scene, self.generation);
        self.motion.clear();
        self.flow_window = RateWindow::default();
        self.clock.seed = seed;
        self.clock.run_until = None;
        self.log.clear();
        self.throughput = RateWindow::default();
        self.run_started = Instant::now();
        self.set_paused(true);
        Ok(())
    }

    /// Applies a layout-changing command to the layout and starts a new generation (every
    /// stream then sends a full frame, and clients fetch the layout again).
    fn change_layout(&mut self, command: &Injection) {
        self.generation += 1;
        let mut layout = (*self.layout).clone();
        layout.layout_generation = self.generation;
        match command {
            Injection::SetServers { station, servers } => {
                convert::set_layout_servers(&mut layout, station, *servers)
            }
            Injection::SetFleetSize { .. } | Injection::SetTruckCount { .. } => {
                let agv_fleets: Vec<u32> = self.sim.vehicle_views().map(|v| v.fleet).collect();
                let trucks = self.sim.truck_views().count();
                convert::set_layout_vehicles(&mut layout, &self.scene.model, &agv_fleets, trucks);
                // Speeds are measured per vehicle index, which just changed.
                self.motion.clear();
            }
            _ => {}
        }
        self.layout = Arc::new(layout);
    }

    fn set_paused(&mut self, paused: bool) {
        self.clock.paused = paused;
        if paused {
            self.clock.achieved_speed = 0.0;
        }
        self.reanchor();
    }

    fn reanchor(&mut self) {
        let now = Instant::now();
        self.anchor = (now, self.sim.now());
        self.speed_window = (now, self.sim.now());
    }

    /// Recomputes the cached report and its wire KPIs; with [`Ranking::Refresh`] also the
    /// bottleneck ranking (the costly sweep), else the cached ranking stays.
    fn refresh_report(&mut self, ranking: Ranking) {
        let refresh = ranking == Ranking::Refresh;
        self.report = self.sim.report_with(ReportOptions { bottlenecks: refresh });
        self.kpis = convert::kpi_summary(&self.report);
        if refresh {
            self.ranking = convert::bottleneck_ranking(&self.report);
            self.report_at = Instant::now();
        }
    }
}

/// The layout of a scene's run in generation `generation`.
fn layout_of(scene: &LiveScene, generation: u64) -> Arc<v1::Layout> {
    let mut layout = scene.layout.clone();
    layout.layout_generation = generation;
    Arc::new(layout)
}
