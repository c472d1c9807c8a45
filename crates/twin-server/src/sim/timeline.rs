//! Time travel on the simulation thread: the view (what snapshots and reports show) is
//! either the live run or a run of its own, rebuilt from the past (HISTORY, paused) or
//! going on from there (BRANCH, a what-if whose commands never enter the live logs).
//!
//! The viewed run has the same parts as the live one (simulation, clock, pacing anchor,
//! layout, cached report, measuring windows, command log). While the thread publishes,
//! reports or advances the view, those parts are swapped into the driver's own fields
//! ([`Driver::swap_view`]), so one code path serves both runs; the telemetry side and the
//! store are swapped out (None) at the same time, so a branch never logs, checkpoints
//! or takes telemetry. The live run keeps going underneath at its own pace.
//!
//! Seek itself runs off this thread: [`Driver::seek_plan`] hands out the base (the
//! newest checkpoint at or before the target, or a fresh run) and the commands to replay,
//! [`Plan::build`] restores and replays on a blocking thread, and [`Driver::show`] makes
//! the result the view.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use prost::Message;
use twin_core::time::Micros;
use twin_core::{Model, Report, Sim};
use twin_proto::v1;

use super::{Clock, Driver, Injection, LiveScene, Motion, changes_layout};
use crate::convert;
use crate::ingest::apply::Telemetry;
use crate::ingest::log::{Decision, TelemetryLog};
use crate::measure::RateWindow;
use crate::store::{Store, checkpoints};

/// What the view shows when it is not the live run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The past, paused.
    History,
    /// A what-if run that left history at `from`.
    Branch { from: Micros },
}

/// A viewed run that is not the live one.
pub struct View {
    pub mode: Mode,
    /// Its parts; swapped with the driver's while it is worked on.
    shown: Shown,
    /// Whether `shown` holds the live run's parts right now (swapped in).
    swapped: bool,
}

impl View {
    /// Whether the viewed run's clock is running (only a branch runs).
    pub fn running(&self) -> bool {
        let clock = if self.swapped { None } else { Some(&self.shown.clock) };
        clock.is_some_and(|c| !c.paused)
    }
}

/// The parts of a run that the driver swaps (see the module docs).
struct Shown {
    sim: Sim,
    layout: Arc<v1::Layout>,
    clock: Clock,
    anchor: (Instant, Micros),
    speed_window: (Instant, Micros),
    run_started: Instant,
    log: Vec<(Micros, Injection)>,
    log_base: u64,
    report: Report,
    kpis: v1::KpiSummary,
    ranking: v1::BottleneckRanking,
    report_at: Instant,
    throughput: RateWindow,
    flow_window: RateWindow,
    motion: Vec<Motion>,
    motion_t: Micros,
    telemetry: Option<Telemetry>,
    alarms: (Arc<Vec<v1::Alarm>>, Arc<v1::AlarmSummary>),
    alarms_at: (u64, u64),
    forecast: Option<Arc<v1::ForecastResult>>,
    store: Option<Store>,
}

/// Why a Seek was refused.
#[derive(Debug, thiserror::Error)]
pub enum SeekError {
    #[error("sim_time_us {target} is after the live run's time {live}")]
    Future { target: Micros, live: Micros },
    #[error(
        "sim_time_us {target} is before the earliest time the server holds ({earliest}, Timeline.earliest_us)"
    )]
    TooEarly { target: Micros, earliest: Micros },
    #[error("checkpoint {path}: {reason}")]
    Checkpoint { path: String, reason: String },
    #[error("a new live run started while seeking; seek again")]
    RunChanged,
    #[error("reading the telemetry log for the replay: {0}")]
    Telemetry(String),
}

/// Where a Seek starts from.
pub enum Base {
    /// A fresh run with this seed (the log holds the run from its start).
    Fresh { seed: u64 },
    /// A checkpoint file of the live run.
    Checkpoint(PathBuf),
}

/// What a Seek replays, handed out by the simulation thread.
pub struct Plan {
    pub scene: Arc<LiveScene>,
    pub run: u64,
    pub target: Micros,
    pub base: Base,
    /// Commands of the live log after the base, up to and including `target`.
    pub commands: Vec<(Micros, Injection)>,
    /// With live ingest: the telemetry log and the first decision key after the base;
    /// the commands of the decisions from there up to `target` are read and replayed
    /// (off the simulation thread; operator commands are among them).
    pub decisions: Option<(Arc<TelemetryLog>, u64)>,
}

/// A run rebuilt at the target of a Seek.
pub struct Built {
    pub run: u64,
    pub sim: Sim,
    pub layout: v1::Layout,
}

impl Plan {
    /// Restores the base and replays the commands to the target (CPU-bound: run it on a
    /// blocking thread). The core is deterministic, so the result is the live run as it
    /// was at `target`, after every event and command at that time.
    pub fn build(mut self) -> Result<Built, SeekError> {
        if let Some((log, from)) = self.decisions.take() {
            let decisions = log.decisions_from(from).map_err(|e| SeekError::Telemetry(e.to_string()))?;
            for (_, d) in decisions {
                match d {
                    Decision::Applied { at, .. } if at > self.target => break,
                    Decision::Applied { at, commands, .. } => {
                        self.commands.extend(commands.into_iter().map(|(_, c)| (at, c)));
                    }
                    Decision::Held { .. } => {}
                    // A new run started after the live run's time was read: not ours.
                    Decision::NewRun { .. } => break,
                }
            }
        }
        let model: Arc<Model> = Arc::clone(&self.scene.model);
        let (mut sim, mut layout) = match &self.base {
            Base::Fresh { seed } => (Sim::new(Arc::clone(&model), *seed), self.scene.layout.clone()),
            Base::Checkpoint(path) => {
                let bad = |reason: String| SeekError::Checkpoint { path: path.display().to_string(), reason };
                let (meta, sim) = checkpoints::load(path, &model, &self.scene.name).map_err(bad)?;
                let layout = v1::Layout::decode(meta.layout.as_slice())
                    .map_err(|e| bad(format!("layout does not decode: {e}")))?;
                (sim, layout)
            }
        };
        let mut vehicles_changed = false;
        for (at, command) in &self.commands {
            if *at > sim.now() {
                sim.run_until(*at);
            }
            if sim.apply(command).is_err() {
                // The live run applied it at this very state; it cannot fail here.
                tracing::error!(?command, at, "replayed command refused (log and core disagree)");
                continue;
            }
            if let Injection::SetServers { station, servers } = command {
                convert::set_layout_servers(&mut layout, station, *servers);
            } else if changes_layout(command) {
                vehicles_changed = true;
            }
        }
        if self.target > sim.now() {
            sim.run_until(self.target);
        }
        if vehicles_changed {
            let agv_fleets: Vec<u32> = sim.vehicle_views().map(|v| v.fleet).collect();
            let trucks = sim.truck_views().count();
            convert::set_layout_vehicles(&mut layout, &model, &agv_fleets, trucks);
        }
        Ok(Built { run: self.run, sim, layout })
    }
}

impl Driver {
    /// Swaps the view's parts with the driver's (twice restores them). No-op without a
    /// view.
    pub(super) fn swap_view(&mut self) {
        let Some(mut view) = self.view.take() else { return };
        let s = &mut view.shown;
        std::mem::swap(&mut self.sim, &mut s.sim);
        std::mem::swap(&mut self.layout, &mut s.layout);
        std::mem::swap(&mut self.clock, &mut s.clock);
        std::mem::swap(&mut self.anchor, &mut s.anchor);
        std::mem::swap(&mut self.speed_window, &mut s.speed_window);
        std::mem::swap(&mut self.run_started, &mut s.run_started);
        std::mem::swap(&mut self.log, &mut s.log);
        std::mem::swap(&mut self.log_base, &mut s.log_base);
        std::mem::swap(&mut self.report, &mut s.report);
        std::mem::swap(&mut self.kpis, &mut s.kpis);
        std::mem::swap(&mut self.ranking, &mut s.ranking);
        std::mem::swap(&mut self.report_at, &mut s.report_at);
        std::mem::swap(&mut self.throughput, &mut s.throughput);
        std::mem::swap(&mut self.flow_window, &mut s.flow_window);
        std::mem::swap(&mut self.motion, &mut s.motion);
        std::mem::swap(&mut self.motion_t, &mut s.motion_t);
        std::mem::swap(&mut self.telemetry, &mut s.telemetry);
        std::mem::swap(&mut self.alarms, &mut s.alarms);
        std::mem::swap(&mut self.alarms_at, &mut s.alarms_at);
        std::mem::swap(&mut self.forecast, &mut s.forecast);
        std::mem::swap(&mut self.store, &mut s.store);
        view.swapped = !view.swapped;
        self.view = Some(view);
    }

    /// Runs `f` on the viewed run (the live one without a view).
    pub(super) fn on_view<T>(&mut self, f: impl FnOnce(&mut Driver) -> T) -> T {
        self.swap_view();
        let out = f(self);
        self.swap_view();
        out
    }

    /// The earliest time a Seek accepts: 0 while the live run is held from its start,
    /// else the oldest checkpoint kept.
    fn earliest(&self) -> Micros {
        if let Some(t) = &self.telemetry {
            // Live ingest: the run's start while the log holds its NewRun decision.
            if t.kept_from <= t.run_start {
                return 0;
            }
            return t.checkpoints_held().first().map_or_else(|| self.sim.now(), |c| c.meta.sim_time);
        }
        if self.log_base == 0 {
            return 0;
        }
        self.store
            .as_ref()
            .and_then(|s| s.checkpoints.times().first().copied())
            .unwrap_or_else(|| self.sim.now())
    }

    /// Where the view stands (call with the live run's parts in place).
    pub(super) fn timeline(&self) -> v1::Timeline {
        let live = self.sim.now();
        let (mode, view_time, from) = match &self.view {
            None => (v1::TimelineMode::Live, live, 0),
            Some(v) => {
                let t = v.shown.sim.now();
                match v.mode {
                    Mode::History => (v1::TimelineMode::History, t, 0),
                    Mode::Branch { from } => (v1::TimelineMode::Branch, t, from),
                }
            }
        };
        let checkpoints_us = match (&self.store, &self.telemetry) {
            (Some(s), _) => s.checkpoints.times(),
            (None, Some(t)) => t.checkpoints_held().iter().map(|c| c.meta.sim_time).collect(),
            (None, None) => Vec::new(),
        };
        v1::Timeline {
            mode: mode as i32,
            view_time_us: view_time,
            live_time_us: live,
            earliest_us: self.earliest(),
            branch_from_us: from,
            checkpoints_us,
        }
    }

    /// What a Seek to `target` replays (call with the live run's parts in place).
    pub(super) fn seek_plan(&self, target: Micros) -> Result<Plan, SeekError> {
        let live = self.sim.now();
        if target > live {
            return Err(SeekError::Future { target, live });
        }
        let earliest = self.earliest();
        if target < earliest {
            return Err(SeekError::TooEarly { target, earliest });
        }
        if let Some(t) = &self.telemetry {
            // Live ingest: the newest checkpoint of the run at or before the target (else
            // the run's start), then the recorded decisions after it.
            let (base, from) = match t.checkpoints_held().into_iter().rfind(|c| c.meta.sim_time <= target) {
                Some(c) => (Base::Checkpoint(c.path), c.meta.log_seq + 1),
                None => (Base::Fresh { seed: self.clock.seed }, t.run_start + 1),
            };
            return Ok(Plan {
                scene: Arc::clone(&self.scene),
                run: self.run,
                target,
                base,
                commands: Vec::new(),
                decisions: Some((Arc::clone(t.log()), from)),
            });
        }
        let base_ckpt = self.store.as_ref().and_then(|s| {
            s.checkpoints.held().into_iter().rfind(|c| {
                c.meta.run_start == s.run_start
                    && c.meta.sim_time <= target
                    && c.meta.run_commands >= self.log_base
            })
        });
        let (base, done) = match base_ckpt {
            Some(c) => (Base::Checkpoint(c.path), c.meta.run_commands),
            None => (Base::Fresh { seed: self.clock.seed }, 0),
        };
        // Entry k of the in-memory log is command number log_base + k + 1 of the run.
        let skip = done.saturating_sub(self.log_base) as usize;
        let commands = self.log.iter().skip(skip).take_while(|(at, _)| *at <= target).cloned().collect();
        Ok(Plan { scene: Arc::clone(&self.scene), run: self.run, target, base, commands, decisions: None })
    }

    /// Makes a rebuilt run the view, paused (HISTORY).
    pub(super) fn show(&mut self, built: Built) -> Result<v1::Timeline, SeekError> {
        if built.run != self.run {
            return Err(SeekError::RunChanged);
        }
        self.generation += 1;
        let mut layout = built.layout;
        layout.layout_generation = self.generation;
        let now = Instant::now();
        let t = built.sim.now();
        let report = built.sim.report();
        let clock = Clock { sim_time: t, paused: true, achieved_speed: 0.0, run_until: None, ..self.clock };
        let shown = Shown {
            kpis: convert::kpi_summary(&report),
            ranking: convert::bottleneck_ranking(&report),
            report,
            sim: built.sim,
            layout: Arc::new(layout),
            clock,
            anchor: (now, t),
            speed_window: (now, t),
            run_started: now,
            log: Vec::new(),
            log_base: 0,
            report_at: now,
            throughput: RateWindow::default(),
            flow_window: RateWindow::default(),
            motion: Vec::new(),
            motion_t: 0,
            telemetry: None,
            alarms: (Arc::default(), Arc::new(convert::alarm_summary(&[], 0))),
            alarms_at: (0, u64::MAX),
            forecast: None,
            store: None,
        };
        tracing::info!(sim_time_us = t, live_time_us = self.sim.now(), "view: history");
        self.view = Some(View { mode: Mode::History, shown, swapped: false });
        self.publish();
        Ok(self.timeline())
    }

    /// Shows the live run again (a branch is dropped). Idempotent.
    pub(super) fn go_live(&mut self) -> v1::Timeline {
        if self.view.take().is_some() {
            self.generation += 1;
            let mut layout = (*self.layout).clone();
            layout.layout_generation = self.generation;
            self.layout = Arc::new(layout);
            self.motion.clear();
            tracing::info!(live_time_us = self.sim.now(), "view: live");
            self.publish();
        }
        self.timeline()
    }

    /// A control or command on a HISTORY view starts a branch from the time shown.
    pub(super) fn branch_if_history(&mut self) {
        if let Some(view) = &mut self.view
            && view.mode == Mode::History
        {
            let from = view.shown.sim.now();
            view.mode = Mode::Branch { from };
            tracing::info!(from_us = from, "view: branch");
        }
    }
}
