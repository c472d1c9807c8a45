//! Checkpoints with live ingest: where a restart starts from, the checkpoints the
//! simulation thread takes of the live run, and the pruning of the telemetry log below
//! the oldest one kept.
//!
//! A live checkpoint is an ordinary checkpoint file (`DIR/checkpoints/`, see
//! [`crate::store::checkpoints`]) whose meta names its place in the telemetry log: the
//! run (the key of its `NewRun` decision), the last decision the state includes, the last
//! raw record processed, the hold queue and the decoder's Sparkplug sessions as of that
//! record ([`TelemetryPlace`]). A restart restores the newest good checkpoint of the
//! current run, replays only the decisions after it and goes on with its sessions (the
//! raw records that built them may be pruned).
//! Once the run holds `--checkpoint-keep` checkpoints on disk, the decisions the oldest
//! includes and the raw records it processed are deleted from the log
//! ([`TelemetryLog::prune_before`]), so a twin that runs for months keeps about
//! `--checkpoint-keep` checkpoints' worth of log.

use std::path::Path;
use std::sync::Arc;

use twin_core::time::Micros;
use twin_core::{Model, Sim};

use super::log::{Contents, Decision, TelemetryLog};
use super::reading::{Origin, StationReading};
use crate::store::checkpoints::{self, Checkpoints, Info, Meta, Taken};
use crate::store::{StoreConfig, StoreError, next_checkpoint};

/// A checkpoint a restart goes on from.
pub struct Base {
    pub meta: Meta,
    pub sim: Sim,
    /// The hold queue then.
    pub held: Vec<(Micros, Origin, Vec<StationReading>)>,
}

/// The newest good checkpoint of the log's current run whose later decisions the log
/// still holds, or None (bad files are reported by name and the previous one tried).
/// The current run is the log's last `NewRun`, else (pruned) the newest checkpoint's.
pub fn choose_base(
    dir: &Path,
    contents: &Contents,
    model: &Arc<Model>,
    scene: &str,
) -> Result<Option<Base>, StoreError> {
    let listed: Vec<Info> =
        checkpoints::list(dir)?.into_iter().filter(|i| i.meta.telemetry.is_some()).collect();
    let logged_run = contents
        .decision_keys
        .iter()
        .zip(&contents.decisions)
        .rfind(|(_, d)| matches!(d, Decision::NewRun { .. }))
        .map(|(k, _)| *k);
    let Some(run) = logged_run.or_else(|| listed.iter().map(|i| i.meta.run_start).max()) else {
        return Ok(None);
    };
    // Decisions after the checkpoint must all be in the log: none pruned, none missing.
    let usable = |i: &&Info| {
        i.meta.run_start == run
            && i.meta.log_seq + 1 >= contents.first_decision
            && i.meta.log_seq < contents.next_decision
    };
    for info in listed.iter().filter(usable).rev() {
        match checkpoints::load(&info.path, model, scene) {
            Ok((meta, sim)) => {
                tracing::info!(
                    path = %info.path.display(),
                    sim_time_us = meta.sim_time,
                    decision = meta.log_seq,
                    "restarting the live run from a checkpoint"
                );
                let held = meta.telemetry.as_ref().map(|t| t.held.clone()).unwrap_or_default();
                return Ok(Some(Base { meta, sim, held }));
            }
            Err(reason) => tracing::error!(
                path = %info.path.display(),
                %reason,
                "checkpoint unusable; trying the previous one"
            ),
        }
    }
    Ok(None)
}

/// The live run's checkpoints, held by the simulation thread's telemetry side.
pub struct LiveCheckpoints {
    pub checkpoints: Checkpoints,
    /// Simulated time between two checkpoints.
    pub every: Micros,
    /// Simulated time of the next one.
    pub next_at: Micros,
    /// Checkpoints of the run kept on disk; the log is pruned once there are this many.
    keep: usize,
    /// The decision key below which the log is pruned already.
    pruned_below: u64,
}

impl LiveCheckpoints {
    /// Starts the writer for `config.data_dir/checkpoints`, holding the good checkpoints of
    /// run `run` already there; the next one is due at the first multiple of the interval
    /// after `now`.
    pub fn start(config: &StoreConfig, run: u64, now: Micros) -> Result<LiveCheckpoints, StoreError> {
        let dir = config.data_dir.join(checkpoints::DIR_NAME);
        let held: Vec<Info> = checkpoints::list(&dir)?
            .into_iter()
            .filter(|i| i.meta.telemetry.is_some() && i.meta.run_start == run)
            .collect();
        Ok(LiveCheckpoints {
            checkpoints: Checkpoints::start(dir, config.keep, held)?,
            every: config.every,
            next_at: next_checkpoint(now, config.every),
            keep: config.keep,
            pruned_below: 0,
        })
    }

    /// The checkpoints of run `run` on disk, oldest first.
    pub fn of_run(&self, run: u64) -> Vec<Info> {
        self.checkpoints.held().into_iter().filter(|i| i.meta.run_start == run).collect()
    }

    /// Takes a checkpoint of `sim` with `meta` (`wait`: until it is on disk), then prunes
    /// the log below the oldest checkpoint of the run on disk.
    pub fn take(&mut self, log: &TelemetryLog, sim: &Sim, meta: Meta, scene_path: &str, wait: bool) {
        let now = meta.sim_time;
        let run = meta.run_start;
        self.next_at = next_checkpoint(now, self.every);
        match self.checkpoints.take(sim, meta, scene_path, wait) {
            Taken::Queued { pause_s } => tracing::debug!(sim_time_us = now, pause_s, "live checkpoint taken"),
            Taken::Skipped => {
                tracing::debug!(sim_time_us = now, "live checkpoint skipped: the previous is being written")
            }
        }
        self.prune(log, run);
    }

    /// Once the run holds as many checkpoints as it keeps, deletes what the oldest of
    /// them makes unnecessary: the decisions it includes and the raw records it processed
    /// (until then the log holds the run from its start, and Seek reaches back to it).
    /// Only checkpoints on disk are listed, so a restart always finds its base.
    fn prune(&mut self, log: &TelemetryLog, run: u64) {
        let held = self.of_run(run);
        if held.len() < self.keep {
            return;
        }
        let Some(oldest) = held.into_iter().next() else { return };
        let Some(place) = &oldest.meta.telemetry else { return };
        let below = oldest.meta.log_seq + 1;
        if below <= self.pruned_below {
            return;
        }
        // The raw records after the checkpoint's sessions stay: a restart decodes them
        // again on top of those sessions.
        let raw_below = place
            .sessions
            .as_ref()
            .map_or(place.processed_through, |s| s.through.min(place.processed_through));
        match log.prune_before(raw_below + 1, below) {
            Ok(p) => {
                self.pruned_below = below;
                tracing::debug!(raw = p.raw, decisions = p.decisions, below, "telemetry log pruned");
            }
            Err(e) => tracing::error!(error = %e, "telemetry log not pruned"),
        }
    }

    /// Decisions below this key are pruned (0: none yet by this process).
    pub fn pruned_below(&self) -> u64 {
        self.pruned_below
    }
}
