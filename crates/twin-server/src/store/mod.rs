//! What the server keeps on disk about the live run with `--data DIR` (issue 13): the
//! durable command log ([`commands`], `DIR/commands.redb`) and the checkpoints
//! ([`checkpoints`], `DIR/checkpoints/`), and the restart that rebuilds the run from the
//! newest good checkpoint plus the commands logged after it ([`recover`]).
//!
//! Bounds: the current run's newest `keep` checkpoints are kept (older ones and other
//! runs' are deleted), and the command log is pruned up to the oldest checkpoint kept, so
//! disk and memory hold what a restart or a Seek replays, not the run's whole history.
//!
//! With live ingest (`--ingest` / `--mqtt`) the telemetry log is the truth and the
//! command log is off; the live run's checkpoints are taken, restored and pruned by
//! `crate::ingest::resume`, in the same folder and file format.

pub mod checkpoints;
pub mod commands;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use prost::Message;
use twin_core::time::{HOUR, Micros};
use twin_core::{Command, Sim};
use twin_proto::v1;

use self::checkpoints::{Checkpoints, Info, Meta};
use self::commands::{CommandLog, Entry};
use crate::sim::LiveScene;

/// Default simulated time between two checkpoints.
pub const DEFAULT_EVERY: Micros = HOUR / 4;
/// Default number of checkpoints kept (a simulated day at the default interval).
pub const DEFAULT_KEEP: usize = 96;

/// Where and how often the live run is checkpointed.
#[derive(Clone, Debug)]
pub struct StoreConfig {
    /// The data folder.
    pub data_dir: PathBuf,
    /// Simulated time between two checkpoints (taken exactly at its multiples).
    pub every: Micros,
    /// Checkpoints of the current run kept on disk.
    pub keep: usize,
}

impl StoreConfig {
    /// Defaults: a checkpoint every 15 simulated minutes, 96 kept.
    pub fn new(data_dir: impl Into<PathBuf>) -> StoreConfig {
        StoreConfig { data_dir: data_dir.into(), every: DEFAULT_EVERY, keep: DEFAULT_KEEP }
    }
}

/// Why the store failed.
#[derive(Clone, Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {message}")]
    Io { path: String, message: String },
    #[error(
        "the command log in {dir} was written for scene `{logged}`, but the server runs `{served}`: \
         serve that scene, or use another --data folder"
    )]
    Scene { dir: String, logged: String, served: String },
    #[error(
        "{dir}: no usable checkpoint, and the command log no longer holds the start of the run \
         (see the errors above for each checkpoint)"
    )]
    NoBase { dir: String },
    #[error("replaying command {seq} of {path}: {message}")]
    Replay { path: String, seq: u64, message: String },
}

impl StoreError {
    pub fn io(path: &Path, e: &dyn std::fmt::Display) -> StoreError {
        StoreError::Io { path: path.display().to_string(), message: e.to_string() }
    }
}

/// The store as the simulation thread holds it.
pub struct Store {
    pub config: StoreConfig,
    pub log: CommandLog,
    pub checkpoints: Checkpoints,
    /// Log sequence number of the current run's `NewRun` entry.
    pub run_start: u64,
    /// Simulated time of the next checkpoint.
    pub next_at: Micros,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("config", &self.config).field("run_start", &self.run_start).finish()
    }
}

/// The live run rebuilt from the store at start.
pub struct Recovered {
    pub store: Store,
    pub sim: Sim,
    pub seed: u64,
    /// The layout the run had (None: the scene's own).
    pub layout: Option<v1::Layout>,
    /// Commands of the run applied before the replayed ones (pruned from memory).
    pub log_base: u64,
    /// The commands replayed after the base, in order.
    pub log: Vec<(Micros, Command)>,
}

/// The first multiple of `every` after `now`.
pub fn next_checkpoint(now: Micros, every: Micros) -> Micros {
    (now / every.max(1) + 1).saturating_mul(every.max(1))
}

/// Encodes a layout for a checkpoint's meta.
pub fn encode_layout(layout: &v1::Layout) -> Vec<u8> {
    layout.encode_to_vec()
}

/// Opens the store in `config.data_dir` and rebuilds the live run: the newest good
/// checkpoint of the current run (bad ones are reported by name and skipped), then every
/// command logged after it, at its time. An empty log starts a new run.
pub fn recover(config: StoreConfig, scene: &LiveScene) -> Result<Recovered, StoreError> {
    let dir = config.data_dir.clone();
    std::fs::create_dir_all(&dir).map_err(|e| StoreError::io(&dir, &e))?;
    let mut log = CommandLog::open(&dir.join(commands::FILE_NAME))?;
    let ckpt_dir = dir.join(checkpoints::DIR_NAME);
    // Checkpoints of a live-ingest run (a place in the telemetry log) are not ours.
    let listed: Vec<Info> =
        checkpoints::list(&ckpt_dir)?.into_iter().filter(|c| c.meta.telemetry.is_none()).collect();
    let last = log.last_seq();
    if last == 0 && listed.is_empty() {
        let run_start = log.append(&Entry::NewRun { scene: scene.name.clone(), seed: scene.default_seed })?;
        let checkpoints = Checkpoints::start(ckpt_dir, config.keep, Vec::new())?;
        tracing::info!(path = %log.path().display(), "command log started");
        let sim = Sim::new(Arc::clone(&scene.model), scene.default_seed);
        let next_at = next_checkpoint(0, config.every);
        return Ok(Recovered {
            store: Store { config, log, checkpoints, run_start, next_at },
            sim,
            seed: scene.default_seed,
            layout: None,
            log_base: 0,
            log: Vec::new(),
        });
    }
    // The current run: the newest NewRun the log holds, else the newest checkpoint's.
    let logged_start = log.run_start(last)?;
    let run_start = match (&logged_start, listed.last()) {
        (Some((seq, _, _)), Some(c)) => (*seq).max(c.meta.run_start),
        (Some((seq, _, _)), None) => *seq,
        (None, Some(c)) => c.meta.run_start,
        (None, None) => return Err(StoreError::NoBase { dir: dir.display().to_string() }),
    };
    if let Some((seq, logged, _)) = &logged_start
        && *seq == run_start
        && logged != &scene.name
    {
        return Err(StoreError::Scene {
            dir: dir.display().to_string(),
            logged: logged.clone(),
            served: scene.name.clone(),
        });
    }
    let ours: Vec<Info> = listed.into_iter().filter(|c| c.meta.run_start == run_start).collect();
    // The newest good checkpoint; a bad one is reported and the previous one tried.
    let mut base: Option<(Meta, Sim)> = None;
    let mut good = Vec::new();
    for info in ours.iter().rev() {
        if base.is_some() {
            good.push(info.clone());
            continue;
        }
        match checkpoints::load(&info.path, &scene.model, &scene.name) {
            Ok(loaded) => {
                tracing::info!(
                    path = %info.path.display(),
                    sim_time_us = loaded.0.sim_time,
                    "restarting from checkpoint"
                );
                base = Some(loaded);
                good.push(info.clone());
            }
            Err(reason) => tracing::error!(
                path = %info.path.display(),
                %reason,
                "checkpoint unusable; trying the previous one"
            ),
        }
    }
    good.reverse();
    let (mut sim, seed, layout, from_seq, log_base) = match base {
        Some((meta, sim)) => {
            let layout = v1::Layout::decode(meta.layout.as_slice()).ok();
            (sim, meta.seed, layout, meta.log_seq, meta.run_commands)
        }
        None => match &logged_start {
            Some((seq, logged, seed)) if *seq == run_start => {
                if logged != &scene.name {
                    return Err(StoreError::Scene {
                        dir: dir.display().to_string(),
                        logged: logged.clone(),
                        served: scene.name.clone(),
                    });
                }
                (Sim::new(Arc::clone(&scene.model), *seed), *seed, None, *seq, 0)
            }
            _ => return Err(StoreError::NoBase { dir: dir.display().to_string() }),
        },
    };
    let mut replayed = Vec::new();
    for (seq, entry) in log.read(from_seq + 1, last)? {
        match entry {
            Entry::Command { at, command } => {
                if at > sim.now() {
                    sim.run_until(at);
                }
                sim.apply(&command).map_err(|e| StoreError::Replay {
                    path: log.path().display().to_string(),
                    seq,
                    message: e.to_string(),
                })?;
                replayed.push((at, command));
            }
            Entry::NewRun { .. } => {
                // Cannot happen: the run started at run_start, the newest NewRun.
                return Err(StoreError::Replay {
                    path: log.path().display().to_string(),
                    seq,
                    message: "a new run inside the replayed run".into(),
                });
            }
        }
    }
    tracing::info!(
        sim_time_us = sim.now(),
        replayed = replayed.len(),
        checkpoints = good.len(),
        "live run recovered from the data folder"
    );
    let next_at = next_checkpoint(sim.now(), config.every);
    let checkpoints = Checkpoints::start(ckpt_dir, config.keep, good)?;
    Ok(Recovered {
        store: Store { config, log, checkpoints, run_start, next_at },
        sim,
        seed,
        layout,
        log_base,
        log: replayed,
    })
}
