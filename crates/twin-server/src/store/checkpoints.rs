//! Checkpoint files (`DIR/checkpoints/*.ckpt`): the whole core state of the live run at
//! one simulated time, with its place in the command log and the run's layout, so that a
//! restart or a Seek replays only the commands after it.
//!
//! Layout of a file (integers little-endian):
//!
//! ```text
//! "TWINCKPT"       8 bytes, magic
//! format version   u32 (FORMAT_VERSION)
//! meta length      u32, then the meta (postcard, [`Meta`])
//! state length     u64, then the core snapshot (`Sim::save`: scene hash, seed, state)
//! SHA-256          32 bytes over everything before it
//! ```
//!
//! Files are written to a temporary name, synced and renamed, so a crash leaves either
//! the whole file or none. A file that fails its checksum, or whose core snapshot is of
//! another scene, is reported by name and skipped: the previous good one is used.
//!
//! Writing: the simulation thread only clones the `Sim` (the pause the pacing sees);
//! encoding, writing and syncing happen on the writer thread, one checkpoint at a time.
//! A checkpoint due while the previous one is still being written is skipped.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use twin_core::time::Micros;
use twin_core::{Model, Sim};

use super::StoreError;
use crate::ingest::decode::Sessions;
use crate::ingest::reading::{Origin, StationReading};

const MAGIC: &[u8; 8] = b"TWINCKPT";
/// Bumped whenever [`Meta`] changes; other versions are refused by name. Version 2 adds
/// the telemetry log place of a live-ingest checkpoint ([`Meta::telemetry`]), version 3
/// the Sparkplug sessions in it ([`TelemetryPlace::sessions`]). Version 2 files are still
/// read (without sessions: a restart from one re-decodes what the log holds, as before).
pub const FORMAT_VERSION: u32 = 3;
/// The oldest format version still read.
const OLDEST_READ: u32 = 2;
const CHECKSUM_LEN: usize = 32;
/// Folder of the checkpoints inside the data folder.
pub const DIR_NAME: &str = "checkpoints";
const EXTENSION: &str = "ckpt";

/// What a checkpoint says about itself besides the core state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    /// Catalogue name of the scene.
    pub scene: String,
    /// Seed of the run.
    pub seed: u64,
    /// Command-log sequence number of the run's `NewRun` entry (identifies the run); with
    /// live ingest, the key of the run's `NewRun` decision in the telemetry log.
    pub run_start: u64,
    /// Command-log sequence number of the newest entry the state includes; with live
    /// ingest, the key of the newest telemetry decision it includes.
    pub log_seq: u64,
    /// Commands of the run it includes (the receipts' numbering).
    pub run_commands: u64,
    /// Simulated time of the state.
    pub sim_time: Micros,
    /// Wall clock when it was taken, ms since the Unix epoch.
    pub written_unix_ms: u64,
    /// The run's layout at that moment (prost-encoded `twin.v1.Layout`): parameter
    /// changes alter it, and the commands that did may be pruned from the log.
    pub layout: Vec<u8>,
    /// With live ingest: the rest of the place in the telemetry log (None: a checkpoint
    /// of the command log).
    pub telemetry: Option<TelemetryPlace>,
}

/// What a live-ingest checkpoint holds besides the core state: with `Meta::log_seq` (the
/// last decision included), everything a restart needs to go on from the telemetry log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TelemetryPlace {
    /// The highest raw record whose decisions the state includes (`processed_through`).
    pub processed_through: u64,
    /// The readings held for a later time then, in the hold queue's order: `(at, origin,
    /// readings)` (their `Held` decisions may be pruned with the log).
    pub held: Vec<(Micros, Origin, Vec<StationReading>)>,
    /// The decoder's Sparkplug sessions and kept plant figures as of raw record
    /// `sessions.through`, at or before `processed_through` (the raw records that built
    /// them may be pruned with the log; those after `sessions.through` are kept and
    /// decoded again on restart). None: written by format version 2, which did not
    /// record them.
    pub sessions: Option<Sessions>,
}

/// [`Meta`] as format version 2 wrote it (no sessions).
#[derive(Deserialize)]
#[cfg_attr(test, derive(Serialize))]
struct MetaV2 {
    scene: String,
    seed: u64,
    run_start: u64,
    log_seq: u64,
    run_commands: u64,
    sim_time: Micros,
    written_unix_ms: u64,
    layout: Vec<u8>,
    telemetry: Option<TelemetryPlaceV2>,
}

/// [`TelemetryPlace`] as format version 2 wrote it.
#[derive(Deserialize)]
#[cfg_attr(test, derive(Serialize))]
struct TelemetryPlaceV2 {
    processed_through: u64,
    held: Vec<(Micros, Origin, Vec<StationReading>)>,
}

impl From<MetaV2> for Meta {
    fn from(m: MetaV2) -> Meta {
        Meta {
            scene: m.scene,
            seed: m.seed,
            run_start: m.run_start,
            log_seq: m.log_seq,
            run_commands: m.run_commands,
            sim_time: m.sim_time,
            written_unix_ms: m.written_unix_ms,
            layout: m.layout,
            telemetry: m.telemetry.map(|t| TelemetryPlace {
                processed_through: t.processed_through,
                held: t.held,
                sessions: None,
            }),
        }
    }
}

/// A checkpoint on disk, as listed.
#[derive(Clone, Debug, PartialEq)]
pub struct Info {
    pub path: PathBuf,
    pub meta: Meta,
    /// Size of the file, bytes.
    pub bytes: u64,
}

/// Drops the bulky parts of a held checkpoint's meta (the layout, the hold queue): the
/// file has them; the list in memory needs only the place.
fn forget_bulk(meta: &mut Meta) {
    meta.layout = Vec::new();
    if let Some(t) = &mut meta.telemetry {
        t.held = Vec::new();
        t.sessions = None;
    }
}

/// Encodes a checkpoint file.
pub fn encode(meta: &Meta, snapshot: &[u8]) -> Vec<u8> {
    let head = postcard::to_allocvec(meta).expect("checkpoint meta always serialises");
    let mut out = Vec::with_capacity(MAGIC.len() + 16 + head.len() + snapshot.len() + CHECKSUM_LEN);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&(head.len() as u32).to_le_bytes());
    out.extend_from_slice(&head);
    out.extend_from_slice(&(snapshot.len() as u64).to_le_bytes());
    out.extend_from_slice(snapshot);
    let sum = Sha256::digest(&out);
    out.extend_from_slice(&sum);
    out
}

/// Checks magic, version and checksum; returns the meta and the core snapshot's bytes.
pub fn decode(bytes: &[u8]) -> Result<(Meta, &[u8]), String> {
    if bytes.len() < MAGIC.len() + 4 + CHECKSUM_LEN || &bytes[..MAGIC.len()] != MAGIC {
        return Err("not a twin checkpoint (bad magic bytes or too short)".into());
    }
    let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    if !(OLDEST_READ..=FORMAT_VERSION).contains(&version) {
        return Err(format!(
            "checkpoint format version {version} (this build reads versions {OLDEST_READ} to {FORMAT_VERSION})"
        ));
    }
    let (content, sum) = bytes.split_at(bytes.len() - CHECKSUM_LEN);
    if Sha256::digest(content)[..] != *sum {
        return Err("truncated or corrupt (checksum mismatch)".into());
    }
    let corrupt = || "truncated or corrupt (lengths do not add up)".to_string();
    let head_len =
        u32::from_le_bytes(content.get(12..16).ok_or_else(corrupt)?.try_into().expect("4")) as usize;
    let head = content.get(16..16 + head_len).ok_or_else(corrupt)?;
    let meta: Meta = match version {
        2 => postcard::from_bytes::<MetaV2>(head).map(Meta::from),
        _ => postcard::from_bytes(head),
    }
    .map_err(|e| format!("meta (format version {version}) does not decode: {e}"))?;
    let at = 16 + head_len;
    let body_len = u64::from_le_bytes(content.get(at..at + 8).ok_or_else(corrupt)?.try_into().expect("8"));
    let body_len = usize::try_from(body_len).map_err(|_| corrupt())?;
    let body = content.get(at + 8..at + 8 + body_len).ok_or_else(corrupt)?;
    if at + 8 + body_len != content.len() {
        return Err(corrupt());
    }
    Ok((meta, body))
}

/// Reads and restores a checkpoint onto `model`: its meta and the simulation.
pub fn load(path: &Path, model: &Arc<Model>, scene: &str) -> Result<(Meta, Sim), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("reading: {e}"))?;
    let (meta, snapshot) = decode(&bytes)?;
    if meta.scene != scene {
        return Err(format!("written for scene `{}`, but the server runs `{scene}`", meta.scene));
    }
    let sim = Sim::restore(Arc::clone(model), snapshot).map_err(|e| e.to_string())?;
    if sim.now() != meta.sim_time {
        return Err(format!("meta says time {} but the state is at {}", meta.sim_time, sim.now()));
    }
    Ok((meta, sim))
}

fn file_name(meta: &Meta) -> String {
    format!("{:020}-{:020}.{EXTENSION}", meta.log_seq, meta.sim_time)
}

/// The checkpoint files of `dir`, oldest first (by log position, then time). Files whose
/// meta cannot be read are reported by name and left out.
pub fn list(dir: &Path) -> Result<Vec<Info>, StoreError> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(StoreError::io(dir, &e)),
    };
    for entry in entries {
        let path = entry.map_err(|e| StoreError::io(dir, &e))?.path();
        if path.extension().and_then(|e| e.to_str()) != Some(EXTENSION) {
            continue;
        }
        match std::fs::read(&path).map_err(|e| e.to_string()).and_then(|b| {
            let len = b.len() as u64;
            decode(&b).map(|(meta, _)| (meta, len))
        }) {
            Ok((meta, bytes)) => out.push(Info { path, meta, bytes }),
            Err(reason) => {
                tracing::error!(path = %path.display(), %reason, "checkpoint unusable; skipped");
            }
        }
    }
    out.sort_by_key(|i| (i.meta.log_seq, i.meta.sim_time));
    Ok(out)
}

/// A checkpoint to write: a copy of the live state and its meta.
struct Job {
    sim: Sim,
    meta: Meta,
    scene_path: String,
    /// Answered once written (shutdown waits for it).
    done: Option<mpsc::SyncSender<()>>,
}

/// The checkpoints of the live run and the thread that writes them.
pub struct Checkpoints {
    dir: PathBuf,
    /// How many of the current run's checkpoints are kept.
    keep: usize,
    /// The checkpoints on disk of the current run, oldest first (shared with the writer).
    held: Arc<Mutex<Vec<Info>>>,
    jobs: Option<SyncSender<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Checkpoints {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpoints").field("dir", &self.dir).field("keep", &self.keep).finish()
    }
}

/// What [`Checkpoints::take`] did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Taken {
    /// Queued for writing; the simulation thread paused this long (the copy).
    Queued { pause_s: f64 },
    /// The previous one is still being written.
    Skipped,
}

impl Checkpoints {
    /// Starts the writer for `dir`, holding `held` (the current run's checkpoints).
    pub fn start(dir: PathBuf, keep: usize, mut held: Vec<Info>) -> Result<Checkpoints, StoreError> {
        std::fs::create_dir_all(&dir).map_err(|e| StoreError::io(&dir, &e))?;
        for info in &mut held {
            forget_bulk(&mut info.meta);
        }
        let held = Arc::new(Mutex::new(held));
        let (tx, rx) = mpsc::sync_channel(1);
        let writer = Writer { dir: dir.clone(), keep: keep.max(1), held: Arc::clone(&held) };
        let thread = std::thread::Builder::new()
            .name("twin-checkpoints".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| StoreError::io(&dir, &e))?;
        Ok(Checkpoints { dir, keep, held, jobs: Some(tx), thread: Some(thread) })
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The current run's checkpoints on disk, oldest first (their metas without the
    /// layout, which stays in the file).
    pub fn held(&self) -> Vec<Info> {
        self.held.lock().map(|h| h.clone()).unwrap_or_default()
    }

    /// The simulated times of the current run's checkpoints, oldest first (read on every
    /// snapshot, so it copies no more than that).
    pub fn times(&self) -> Vec<Micros> {
        self.held.lock().map(|h| h.iter().map(|i| i.meta.sim_time).collect()).unwrap_or_default()
    }

    /// A new run starts: its checkpoints are the only ones that count from now on (the
    /// earlier run's files are deleted with the next prune).
    pub fn new_run(&self) {
        if let Ok(mut held) = self.held.lock() {
            held.clear();
        }
    }

    /// Copies `sim` and queues the copy for writing; `wait` blocks until it is on disk
    /// (shutdown). A checkpoint due while the previous is being written is skipped.
    pub fn take(&self, sim: &Sim, meta: Meta, scene_path: &str, wait: bool) -> Taken {
        let Some(jobs) = &self.jobs else { return Taken::Skipped };
        let started = Instant::now();
        let copy = sim.clone();
        let pause_s = started.elapsed().as_secs_f64();
        let (done, finished) = if wait {
            let (tx, rx) = mpsc::sync_channel(1);
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        let job = Job { sim: copy, meta, scene_path: scene_path.to_owned(), done };
        let sent = if wait {
            jobs.send(job).is_ok()
        } else {
            match jobs.try_send(job) {
                Ok(()) => true,
                Err(TrySendError::Full(_)) => return Taken::Skipped,
                Err(TrySendError::Disconnected(_)) => false,
            }
        };
        if !sent {
            return Taken::Skipped;
        }
        if let Some(rx) = finished {
            let _ = rx.recv();
        }
        Taken::Queued { pause_s }
    }
}

impl Drop for Checkpoints {
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

struct Writer {
    dir: PathBuf,
    keep: usize,
    held: Arc<Mutex<Vec<Info>>>,
}

impl Writer {
    fn run(self, rx: Receiver<Job>) {
        while let Ok(job) = rx.recv() {
            let started = Instant::now();
            match self.write(&job) {
                Ok(info) => {
                    tracing::info!(
                        path = %info.path.display(),
                        sim_time_us = info.meta.sim_time,
                        bytes = info.bytes,
                        write_s = started.elapsed().as_secs_f64(),
                        "checkpoint written"
                    );
                    self.hold(info);
                }
                Err(e) => tracing::error!(error = %e, "checkpoint not written"),
            }
            if let Some(done) = job.done {
                let _ = done.send(());
            }
        }
    }

    /// Encodes, writes to a temporary file, syncs, renames into place.
    fn write(&self, job: &Job) -> Result<Info, StoreError> {
        let snapshot = job.sim.save(&job.scene_path);
        let bytes = encode(&job.meta, &snapshot);
        let path = self.dir.join(file_name(&job.meta));
        let tmp = path.with_extension("tmp");
        let io = |e: &dyn std::fmt::Display| StoreError::io(&path, e);
        let mut file = std::fs::File::create(&tmp).map_err(|e| io(&e))?;
        file.write_all(&bytes).map_err(|e| io(&e))?;
        file.sync_all().map_err(|e| io(&e))?;
        drop(file);
        std::fs::rename(&tmp, &path).map_err(|e| io(&e))?;
        if let Ok(dir) = std::fs::File::open(&self.dir) {
            let _ = dir.sync_all();
        }
        Ok(Info { path, meta: job.meta.clone(), bytes: bytes.len() as u64 })
    }

    /// Adds `info` to the held list, keeps the newest `keep` of its run and deletes the
    /// rest (and any file of another run).
    fn hold(&self, mut info: Info) {
        forget_bulk(&mut info.meta);
        let run = info.meta.run_start;
        let Ok(mut held) = self.held.lock() else { return };
        held.retain(|i| i.meta.run_start == run && i.path != info.path);
        held.push(info);
        held.sort_by_key(|i| (i.meta.log_seq, i.meta.sim_time));
        let excess = held.len().saturating_sub(self.keep);
        held.drain(..excess);
        let keep: Vec<PathBuf> = held.iter().map(|i| i.path.clone()).collect();
        drop(held);
        if let Ok(entries) = std::fs::read_dir(&self.dir) {
            for entry in entries.flatten() {
                let path = entry.path();
                let ours = path.extension().and_then(|e| e.to_str()) == Some(EXTENSION);
                if ours
                    && !keep.contains(&path)
                    && let Err(e) = std::fs::remove_file(&path)
                {
                    tracing::warn!(path = %path.display(), error = %e, "old checkpoint not deleted");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(sessions: Option<Sessions>) -> Meta {
        Meta {
            scene: "line".into(),
            seed: 7,
            run_start: 1,
            log_seq: 40,
            run_commands: 12,
            sim_time: 3_000_000,
            written_unix_ms: 5,
            layout: vec![1, 2],
            telemetry: Some(TelemetryPlace { processed_through: 99, held: Vec::new(), sessions }),
        }
    }

    /// Version 3 keeps the sessions; a version 2 file still reads (without them); other
    /// versions are refused naming the versions this build reads.
    #[test]
    fn sessions_round_trip_and_version_2_still_reads() {
        let sessions = Sessions { through: 99, ..Sessions::default() };
        let m = meta(Some(sessions));
        let bytes = encode(&m, b"state");
        let (back, body) = decode(&bytes).expect("decodes");
        assert_eq!((back, body), (m.clone(), &b"state"[..]));

        let v2 = MetaV2 {
            scene: m.scene.clone(),
            seed: m.seed,
            run_start: m.run_start,
            log_seq: m.log_seq,
            run_commands: m.run_commands,
            sim_time: m.sim_time,
            written_unix_ms: m.written_unix_ms,
            layout: m.layout.clone(),
            telemetry: Some(TelemetryPlaceV2 { processed_through: 99, held: Vec::new() }),
        };
        let with_version = |version: u32, head: &[u8]| {
            let mut out = Vec::new();
            out.extend_from_slice(MAGIC);
            out.extend_from_slice(&version.to_le_bytes());
            out.extend_from_slice(&(head.len() as u32).to_le_bytes());
            out.extend_from_slice(head);
            out.extend_from_slice(&5u64.to_le_bytes());
            out.extend_from_slice(b"state");
            let sum = Sha256::digest(&out);
            out.extend_from_slice(&sum);
            out
        };
        let old = with_version(2, &postcard::to_allocvec(&v2).expect("v2 meta"));
        let (back, _) = decode(&old).expect("version 2 reads");
        assert_eq!(back, meta(None));
        let newer = with_version(4, &postcard::to_allocvec(&m).expect("meta"));
        assert_eq!(
            decode(&newer).map(|_| ()),
            Err("checkpoint format version 4 (this build reads versions 2 to 3)".to_string())
        );
    }
}
