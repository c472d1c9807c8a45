//! The durable telemetry log (`DIR/telemetry/`): every message the twin acknowledges,
//! and every decision that applied telemetry to the simulation, so that a restart
//! rebuilds exactly the state the twin had.
//!
//! One writer thread owns the folder. It takes whatever jobs have queued up, appends them
//! to the newest segment file in one `write` and one `fdatasync` (on disk when it
//! returns) and only then answers them: a raw message's acknowledgement (MQTT PUBACK,
//! gRPC IngestAck) is released after its group commit, never before, and in the order the
//! messages came. Committed raw records then go on to be decoded and applied. The file
//! format is in [`segment`].
//!
//! What the log holds:
//! - raw records: every received message, exactly as it came (MQTT topic and payload
//!   bytes, or a validated gRPC batch), under a log sequence number from 1;
//! - decisions: what the simulation thread did with them, in order ([`Decision`]):
//!   commands applied at a simulation time, and messages held for a later time. The
//!   simulation thread waits for a decision to be durable before it moves on, so the
//!   in-memory state never runs ahead of the log;
//! - `processed_through`, the highest raw sequence whose decisions are recorded (later
//!   raw records are decoded and applied again after a restart), and each gRPC source's
//!   highest committed sequence.
//!
//! Retention: [`TelemetryLog::prune_before`] deletes whole segments whose raw records are
//! all processed and below a given sequence and whose decisions are all below a given
//! key. Only a checkpoint writer may call it (after its checkpoint covering those
//! decisions is durable): a restart replays the decisions that remain, so without a
//! checkpoint nothing is pruned and the log keeps everything (about 155 bytes per bench
//! DDATA message, its decision included). Each prune starts a new segment, so the next
//! one can delete what came before it: a pruned log stays at about the checkpoints'
//! span plus one checkpoint interval.
//! Deleting raw records forgets nothing a restart needs: the Sparkplug sessions they
//! built are in the checkpoint (`TelemetryPlace::sessions`), and every segment starts
//! with the gRPC sources' committed sequences.
//!
//! A log written by an earlier version (`DIR/telemetry.redb`) is imported at the first
//! start and renamed `telemetry.redb.imported` ([`legacy`]).

mod legacy;
pub mod segment;

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use serde::{Deserialize, Serialize};
use twin_core::Command;
use twin_core::time::Micros;

use self::segment::{Segment, State};
use super::reading::{Origin, Reading, StationReading};

/// Name of the log's folder inside the server's data folder.
pub const DIR_NAME: &str = "telemetry";
/// A segment this large is closed and a new one started after the commit that filled it.
pub const SEGMENT_BYTES: u64 = 64 << 20;
/// Most jobs one group commit takes; more wait for the next commit.
pub const MAX_GROUP: usize = 8192;
/// Raw records between their arrival and the end of their processing (queued for the
/// writer, committed but not yet applied): producers take a permit per record first, so
/// a slow simulation makes MQTT stop reading from the broker and gRPC streams wait, and
/// memory stays bounded. The writer itself never waits on what comes after it (that
/// would deadlock with the simulation thread waiting for its decisions).
pub const IN_FLIGHT: usize = 65_536;

/// A message as it came in, before any decoding (decoding happens after the commit, so
/// a malformed message is logged and acknowledged like any other, then counted).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum RawRecord {
    /// An MQTT publish on a Sparkplug topic.
    Mqtt { topic: String, payload: Vec<u8>, received_unix_ms: u64 },
    /// A validated gRPC IngestBatch (only the messages that were not duplicates).
    Grpc { source: String, epoch_unix_ms: u64, messages: Vec<GrpcMessage>, received_unix_ms: u64 },
}

/// One validated message of a gRPC batch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GrpcMessage {
    pub sequence: u64,
    pub timestamp_unix_ms: u64,
    pub station: String,
    pub reading: Reading,
}

/// What the simulation thread did, in the order it did it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Decision {
    /// A run of `scene` (the catalogue name) with `seed` starts at time 0: the first
    /// decision of a log, and one per Reset / LoadScene. A restart replays from the last.
    NewRun { scene: String, seed: u64 },
    /// Commands applied at simulation time `at` (after `run_until(at)`), in order, each
    /// with its origin. `released` lists the held parts whose readings were applied here.
    Applied { at: Micros, commands: Vec<(Origin, Command)>, released: Vec<Origin> },
    /// Readings held until simulation time `at` (their plant time was ahead of the
    /// twin's clock).
    Held { origin: Origin, at: Micros, readings: Vec<StationReading> },
}

/// Why the log failed.
#[derive(Clone, Debug, thiserror::Error)]
pub enum LogError {
    #[error("telemetry log {path}: {message}")]
    Io { path: String, message: String },
    #[error("the telemetry log writer has stopped")]
    Stopped,
}

/// Called once the raw records of one append are on disk (with the log sequence of the
/// first; the others follow on) or failed.
pub type RawReply = Box<dyn FnOnce(Result<u64, LogError>) + Send>;

/// A raw record's place in the pipeline ([`IN_FLIGHT`]); dropped when it is processed.
pub type Permit = tokio::sync::OwnedSemaphorePermit;

enum Job {
    /// Raw records that came together (a gRPC batch, or one read from the broker): one
    /// job, one reply, consecutive sequences, always in the same group commit.
    Raw {
        records: Vec<(RawRecord, Option<Permit>)>,
        reply: RawReply,
    },
    Decide {
        decisions: Vec<Decision>,
        through: Option<u64>,
        done: SyncSender<Result<(), LogError>>,
    },
    /// Delete processed raw records below `raw` and decisions below `decision`.
    Prune {
        raw: u64,
        decision: u64,
        done: SyncSender<Result<Pruned, LogError>>,
    },
    /// Commit what came before, then stop (the log is being dropped).
    Stop,
}

/// What a prune deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    pub raw: u64,
    pub decisions: u64,
}

/// A raw record that is durably committed.
#[derive(Debug)]
pub struct Committed {
    pub seq: u64,
    pub record: RawRecord,
    /// Its pipeline permit (None when read back from the log at start).
    pub permit: Option<Permit>,
}

/// Everything the log holds, read at start (restart replay) or by tests.
#[derive(Clone, Debug, Default)]
pub struct Contents {
    pub raw: Vec<(u64, RawRecord)>,
    pub decisions: Vec<Decision>,
    /// The key of each of `decisions` (checkpoints name their place by key).
    pub decision_keys: Vec<u64>,
    pub processed_through: u64,
    /// Raw records whose bytes did not decode (kept, counted, skipped).
    pub unreadable: u64,
    /// Key of `decisions[0]` (1 unless the log was pruned); the next decision's key is
    /// `first_decision + decisions.len()` (plus unreadable ones).
    pub first_decision: u64,
    /// Key after the last decision (unreadable ones included).
    pub next_decision: u64,
    /// Key after the last raw record (unreadable ones included).
    pub next_raw: u64,
    /// The gRPC sources' highest committed sequences, as the state frames carry them.
    pub grpc_committed: std::collections::BTreeMap<String, u64>,
}

/// The writer side of the log.
pub struct TelemetryLog {
    jobs: SyncSender<Job>,
    path: PathBuf,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// The segments and how much of each is durable, shared with the writer for reads.
    segments: Arc<Mutex<Vec<Segment>>>,
}

impl std::fmt::Debug for TelemetryLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TelemetryLog").field("path", &self.path).finish()
    }
}

fn io(path: &Path, e: impl std::fmt::Display) -> LogError {
    LogError::Io { path: path.display().to_string(), message: e.to_string() }
}

/// Makes the folder's entries (a new or deleted segment) durable.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

impl TelemetryLog {
    /// Opens (or creates) the log folder `path`, reads what it holds (importing an
    /// earlier version's `telemetry.redb` beside it first), cuts a torn tail off and
    /// starts the writer thread on a new segment; committed raw records are sent to
    /// `committed` in log order.
    pub fn open(
        path: &Path,
        committed: Sender<Vec<Committed>>,
    ) -> Result<(TelemetryLog, Contents), LogError> {
        std::fs::create_dir_all(path).map_err(|e| io(path, format!("creating the folder: {e}")))?;
        if segment::list(path).map_err(|e| io(path, e))?.is_empty() {
            import_legacy(path)?;
        }
        let mut scan = segment::scan(path).map_err(|e| io(path, e))?;
        if let (Some(file_len), Some(last)) = (scan.torn_tail, scan.segments.last()) {
            tracing::warn!(
                path = %last.path.display(),
                bytes = file_len - last.len,
                "a torn write at the end of the telemetry log (never acknowledged) is cut off"
            );
            let file =
                std::fs::OpenOptions::new().write(true).open(&last.path).map_err(|e| io(&last.path, e))?;
            file.set_len(last.len).and_then(|()| file.sync_all()).map_err(|e| io(&last.path, e))?;
        }
        // Pruning deletes only processed records, so the sequence never restarts.
        scan.state.next_raw = scan.state.next_raw.max(scan.state.processed_through + 1);
        let number = scan.segments.last().map_or(1, |s| s.number + 1);
        let segments = Arc::new(Mutex::new(scan.segments));
        let mut writer = Writer {
            dir: path.to_owned(),
            file: None,
            state: scan.state,
            segments: Arc::clone(&segments),
            committed,
            buf: Vec::new(),
        };
        writer.start_segment(number).map_err(|e| io(path, e))?;
        // Producers hold a permit per raw record, so this never fills up with them.
        let (tx, rx) = mpsc::sync_channel(IN_FLIGHT + 1024);
        let thread = std::thread::Builder::new()
            .name("twin-telemetry-log".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| io(path, e))?;
        let log =
            TelemetryLog { jobs: tx, path: path.to_owned(), thread: Mutex::new(Some(thread)), segments };
        Ok((log, scan.contents))
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Queues a raw record; `reply` runs on the writer thread once it is on disk (keep it
    /// short). `permit` travels with the record until it is processed.
    pub fn append(&self, record: RawRecord, reply: RawReply, permit: Option<Permit>) -> Result<(), LogError> {
        self.append_batch(vec![(record, permit)], reply)
    }

    /// Queues raw records that arrived together; `reply` runs on the writer thread once
    /// all of them are on disk, with the first one's sequence (keep it short). Cheaper
    /// than [`TelemetryLog::append`] per record: one job and one reply for the lot.
    pub fn append_batch(
        &self,
        records: Vec<(RawRecord, Option<Permit>)>,
        reply: RawReply,
    ) -> Result<(), LogError> {
        self.jobs.send(Job::Raw { records, reply }).map_err(|_| LogError::Stopped)
    }

    /// The committed decisions with keys from `from` on, in key order (Seek replays them
    /// from a checkpoint); unreadable ones are skipped with a warning.
    pub fn decisions_from(&self, from: u64) -> Result<Vec<(u64, Decision)>, LogError> {
        // A segment pruned between listing and opening it: list again.
        for _ in 0..10 {
            let wanted: Vec<(PathBuf, u64)> = {
                let segments = self.segments.lock().map_err(|_| LogError::Stopped)?;
                segments
                    .iter()
                    .filter(|s| s.last_decision.is_some_and(|k| k >= from))
                    .map(|s| (s.path.clone(), s.len))
                    .collect()
            };
            let mut out = Vec::new();
            let read =
                wanted.iter().try_for_each(|(path, len)| segment::decisions_in(path, *len, from, &mut out));
            match read {
                Ok(()) => return Ok(out),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io(&self.path, e)),
            }
        }
        Err(io(&self.path, "segments kept vanishing while being read"))
    }

    /// Records decisions and, when given, the new `processed_through`; returns once they
    /// are on disk.
    pub fn decide(&self, decisions: Vec<Decision>, through: Option<u64>) -> Result<(), LogError> {
        let (done, wait) = mpsc::sync_channel(1);
        self.jobs.send(Job::Decide { decisions, through, done }).map_err(|_| LogError::Stopped)?;
        wait.recv().map_err(|_| LogError::Stopped)?
    }

    /// Deletes the oldest segments whose raw records are all below log sequence `raw` and
    /// processed (at or below `processed_through`) and whose decisions all have keys below
    /// `decision`, after the writer's next durable commit, then starts a new segment (so
    /// that a later prune can delete what is in the current one); returns what was
    /// deleted.
    ///
    /// For the checkpoint writer only: call it after a checkpoint that holds the state
    /// after decision `decision - 1` is durable, since a restart replays the decisions
    /// that remain (from the checkpoint's). The log's own reader does not know about
    /// checkpoints: without one, never prune.
    pub fn prune_before(&self, raw: u64, decision: u64) -> Result<Pruned, LogError> {
        let (done, wait) = mpsc::sync_channel(1);
        self.jobs.send(Job::Prune { raw, decision, done }).map_err(|_| LogError::Stopped)?;
        wait.recv().map_err(|_| LogError::Stopped)?
    }
}

impl Drop for TelemetryLog {
    /// Commits what is queued, stops the writer and closes the file.
    fn drop(&mut self) {
        let _ = self.jobs.send(Job::Stop);
        let handle = self.thread.lock().ok().and_then(|mut h| h.take());
        if let Some(handle) = handle {
            let _ = handle.join();
        }
    }
}

/// Imports `telemetry.redb` beside `dir` (an earlier version's log), if there is one,
/// into segment 1 and renames it `telemetry.redb.imported`.
fn import_legacy(dir: &Path) -> Result<(), LogError> {
    let Some(old) = dir.parent().map(|p| p.join(legacy::FILE_NAME)).filter(|p| p.exists()) else {
        return Ok(());
    };
    let contents = legacy::read_file(&old).map_err(|e| io(&old, e))?;
    let mut state = State {
        next_raw: contents.raw.first().map_or(contents.next_raw, |(k, _)| *k),
        next_decision: contents.first_decision,
        processed_through: contents.processed_through,
        grpc: contents.grpc_committed.clone(),
    };
    let new = segment::path(dir, 1);
    let e = |x: &dyn std::fmt::Display| io(&new, x);
    let mut buf = Vec::new();
    segment::put(&mut buf, segment::STATE, 0, &state).map_err(|x| e(&x))?;
    for (seq, record) in &contents.raw {
        segment::put(&mut buf, segment::RAW, *seq, record).map_err(|x| e(&x))?;
    }
    for (key, decision) in contents.decision_keys.iter().zip(&contents.decisions) {
        segment::put(&mut buf, segment::DECISION, *key, decision).map_err(|x| e(&x))?;
    }
    state.next_raw = contents.next_raw;
    state.next_decision = contents.next_decision;
    segment::put(&mut buf, segment::STATE, 0, &state).map_err(|x| e(&x))?;
    // Under another name until it is whole: a crash meanwhile leaves no segment, so the
    // next start imports again.
    let partial = new.with_extension("partial");
    let mut file = File::create(&partial).map_err(|x| e(&x))?;
    file.write_all(&buf).and_then(|()| file.sync_all()).map_err(|x| e(&x))?;
    std::fs::rename(&partial, &new).and_then(|()| sync_dir(dir)).map_err(|x| e(&x))?;
    let done = old.with_file_name(format!("{}.imported", legacy::FILE_NAME));
    std::fs::rename(&old, &done).map_err(|x| io(&old, x))?;
    tracing::info!(
        from = %old.display(),
        raw = contents.raw.len(),
        decisions = contents.decisions.len(),
        unreadable_left_out = contents.unreadable,
        "imported an earlier version's telemetry log"
    );
    Ok(())
}

struct Writer {
    dir: PathBuf,
    /// The newest segment, which commits append to.
    file: Option<File>,
    /// Where the log stands after the last commit.
    state: State,
    /// Every segment, the newest last (its `len` is what is durable).
    segments: Arc<Mutex<Vec<Segment>>>,
    committed: Sender<Vec<Committed>>,
    /// The frames of the commit being written.
    buf: Vec<u8>,
}

impl Writer {
    fn run(mut self, rx: Receiver<Job>) {
        let mut jobs = Vec::with_capacity(MAX_GROUP);
        let mut stop = false;
        while let Ok(first) = rx.recv() {
            match first {
                Job::Stop => break,
                job => jobs.push(job),
            }
            while jobs.len() < MAX_GROUP {
                match rx.try_recv() {
                    Ok(Job::Stop) => {
                        stop = true;
                        break;
                    }
                    Ok(job) => jobs.push(job),
                    Err(_) => break,
                }
            }
            self.commit(&mut jobs);
            if stop {
                break;
            }
        }
        tracing::debug!("telemetry log writer stopped");
    }

    /// Starts segment `number`: creates its file with the state frame, durably.
    fn start_segment(&mut self, number: u64) -> std::io::Result<()> {
        let path = segment::path(&self.dir, number);
        let mut buf = Vec::new();
        segment::put(&mut buf, segment::STATE, 0, &self.state).map_err(std::io::Error::other)?;
        // Append mode: after a failed write is cut off, the next one lands at the cut.
        let mut file = std::fs::OpenOptions::new().append(true).create_new(true).open(&path)?;
        file.write_all(&buf)?;
        file.sync_all()?;
        sync_dir(&self.dir)?;
        let mut seg = Segment::new(number, path);
        seg.len = buf.len() as u64;
        self.segments.lock().map_err(|_| std::io::Error::other("segment list poisoned"))?.push(seg);
        self.file = Some(file);
        Ok(())
    }

    /// Writes `jobs` in one durable append, then answers them in order.
    fn commit(&mut self, jobs: &mut Vec<Job>) {
        let before = self.state.clone();
        let first_raw = before.next_raw;
        let written = self.write(jobs);
        if written.is_err() {
            // Nothing of the group was acknowledged; the sequence numbers are reused.
            self.state = before;
        }
        let bounds: Vec<(u64, u64)> = jobs
            .iter()
            .filter_map(|j| match j {
                Job::Prune { raw, decision, .. } => Some((*raw, *decision)),
                _ => None,
            })
            .collect();
        let mut pruned = match &written {
            Ok(()) => bounds.into_iter().map(|(raw, decision)| self.prune(raw, decision)).collect(),
            Err(_) => Vec::new(),
        }
        .into_iter();
        if written.is_ok() && self.current_len() >= SEGMENT_BYTES {
            self.roll();
        }
        let mut out = Vec::new();
        let mut raw_seq = first_raw;
        for job in jobs.drain(..) {
            match job {
                Job::Raw { records, reply } => {
                    let n = records.len() as u64;
                    match &written {
                        Ok(()) => {
                            reply(Ok(raw_seq));
                            for (i, (record, permit)) in records.into_iter().enumerate() {
                                out.push(Committed { seq: raw_seq + i as u64, record, permit });
                            }
                        }
                        Err(e) => reply(Err(e.clone())),
                    }
                    raw_seq += n;
                }
                Job::Decide { done, .. } => {
                    let _ = done.send(written.clone());
                }
                Job::Prune { done, .. } => {
                    let result = match &written {
                        Ok(()) => pruned.next().unwrap_or(Ok(Pruned::default())),
                        Err(e) => Err(e.clone()),
                    };
                    let _ = done.send(result);
                }
                Job::Stop => {}
            }
        }
        match written {
            Ok(()) => {
                if !out.is_empty() && self.committed.send(out).is_err() {
                    tracing::warn!("telemetry committed but nobody applies it any more");
                }
            }
            Err(e) => tracing::error!(error = %e, "telemetry group commit failed"),
        }
    }

    fn current_len(&self) -> u64 {
        self.segments.lock().ok().and_then(|s| s.last().map(|s| s.len)).unwrap_or(0)
    }

    /// Closes the newest segment and starts the next (on failure the writer goes on
    /// appending to the one it has).
    fn roll(&mut self) {
        let next = self.segments.lock().ok().and_then(|s| s.last().map(|s| s.number + 1)).unwrap_or(1);
        if let Err(e) = self.start_segment(next) {
            tracing::error!(error = %e, dir = %self.dir.display(), "no new telemetry log segment");
        }
    }

    /// Appends the frames of `jobs` to the newest segment and syncs it; on failure cuts
    /// the segment back to what was durable before.
    fn write(&mut self, jobs: &[Job]) -> Result<(), LogError> {
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        let mut counts = Segment::new(0, PathBuf::new());
        let framed = self.frames(jobs, &mut buf, &mut counts);
        let result = framed.and_then(|()| {
            let file = self.file.as_mut().ok_or_else(|| std::io::Error::other("no open segment"))?;
            file.write_all(&buf)?;
            file.sync_data()
        });
        let mut segments = self.segments.lock().map_err(|_| LogError::Stopped)?;
        let last = segments.last_mut().ok_or(LogError::Stopped)?;
        let outcome = match result {
            Ok(()) => {
                last.len += buf.len() as u64;
                last.raw += counts.raw;
                last.last_raw = counts.last_raw.or(last.last_raw);
                last.decisions += counts.decisions;
                last.last_decision = counts.last_decision.or(last.last_decision);
                Ok(())
            }
            Err(e) => {
                if let Some(file) = &self.file
                    && let Err(cut) = file.set_len(last.len)
                {
                    tracing::error!(error = %cut, "the failed telemetry append could not be cut off");
                }
                Err(io(&last.path, e))
            }
        };
        drop(segments);
        if buf.capacity() <= 4 << 20 {
            self.buf = buf;
        }
        outcome
    }

    /// Encodes `jobs` as frames into `buf`, advancing the state; `counts` gets what the
    /// frames add to the segment.
    fn frames(&mut self, jobs: &[Job], buf: &mut Vec<u8>, counts: &mut Segment) -> std::io::Result<()> {
        let e = std::io::Error::other;
        for job in jobs {
            match job {
                Job::Raw { records, .. } => {
                    for (record, _) in records {
                        if let RawRecord::Grpc { source, messages, .. } = record
                            && let Some(last) = messages.last()
                            && self.state.grpc.get(source).is_none_or(|s| last.sequence > *s)
                        {
                            self.state.grpc.insert(source.clone(), last.sequence);
                            segment::put(buf, segment::GRPC, last.sequence, source).map_err(e)?;
                        }
                        let seq = self.state.next_raw;
                        segment::put(buf, segment::RAW, seq, record).map_err(e)?;
                        self.state.next_raw += 1;
                        counts.raw += 1;
                        counts.last_raw = Some(seq);
                    }
                }
                Job::Decide { decisions, through, .. } => {
                    for decision in decisions {
                        let key = self.state.next_decision;
                        segment::put(buf, segment::DECISION, key, decision).map_err(e)?;
                        self.state.next_decision += 1;
                        counts.decisions += 1;
                        counts.last_decision = Some(key);
                    }
                    if let Some(through) = through {
                        self.state.processed_through = *through;
                        segment::put(buf, segment::PROCESSED, *through, &()).map_err(e)?;
                    }
                }
                Job::Prune { .. } | Job::Stop => {}
            }
        }
        Ok(())
    }

    /// Carries out a prune job once the group's data is durable: deletes the oldest
    /// segments it allows, then starts a new segment if the newest holds any records.
    fn prune(&mut self, raw: u64, decision: u64) -> Result<Pruned, LogError> {
        let raw_end = raw.min(self.state.processed_through.saturating_add(1));
        let mut pruned = Pruned::default();
        let mut doomed = Vec::new();
        {
            let mut segments = self.segments.lock().map_err(|_| LogError::Stopped)?;
            let keep_from = segments
                .iter()
                .take(segments.len().saturating_sub(1))
                .position(|s| {
                    s.last_raw.is_some_and(|r| r >= raw_end) || s.last_decision.is_some_and(|d| d >= decision)
                })
                .unwrap_or(segments.len().saturating_sub(1));
            for s in segments.drain(..keep_from) {
                pruned.raw += s.raw;
                pruned.decisions += s.decisions;
                doomed.push(s.path);
            }
        }
        for path in &doomed {
            std::fs::remove_file(path).map_err(|e| io(path, e))?;
        }
        if !doomed.is_empty() {
            sync_dir(&self.dir).map_err(|e| io(&self.dir, e))?;
        }
        let newest_has_records = self
            .segments
            .lock()
            .ok()
            .and_then(|s| s.last().map(|s| s.raw + s.decisions > 0))
            .unwrap_or(false);
        if newest_has_records {
            self.roll();
        }
        Ok(pruned)
    }
}

/// Reads a log folder without writing to it, also while a server appends to it and
/// prunes it, or after its server was killed (tests, tools). A torn frame at the end is
/// left out (a server opening the log cuts it off).
pub fn read_file(path: &Path) -> Result<Contents, LogError> {
    if !path.is_dir() {
        return Err(io(path, "no such folder"));
    }
    for _ in 0..10 {
        match segment::scan(path) {
            Ok(scan) => return Ok(scan.contents),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io(path, e)),
        }
    }
    Err(io(path, "segments kept vanishing while being read"))
}

/// The decisions of the current run: those after the last [`Decision::NewRun`] (which is
/// returned with them).
pub fn current_run(decisions: &[Decision]) -> (Option<(&str, u64)>, &[Decision]) {
    match decisions.iter().rposition(|d| matches!(d, Decision::NewRun { .. })) {
        Some(i) => {
            let Decision::NewRun { scene, seed } = &decisions[i] else { unreachable!("found above") };
            (Some((scene.as_str(), *seed)), &decisions[i + 1..])
        }
        None => (None, decisions),
    }
}

/// The simulation-time schedule a log replays: every applied command of the current run
/// with its time, in order (what a restart re-applies, and what tests compare against).
pub fn applied_commands(decisions: &[Decision]) -> Vec<(Micros, Command)> {
    let mut out = Vec::new();
    for d in current_run(decisions).1 {
        if let Decision::Applied { at, commands, .. } = d {
            out.extend(commands.iter().map(|(_, c)| (*at, c.clone())));
        }
    }
    out
}

/// The raw sequences whose readings a log's decisions applied or hold.
pub fn decided_raw(decisions: &[Decision]) -> std::collections::BTreeSet<u64> {
    let raw = |o: &Origin| match o {
        Origin::Raw { seq, .. } => Some(*seq),
        _ => None,
    };
    let mut out = std::collections::BTreeSet::new();
    for d in decisions {
        match d {
            Decision::Applied { commands, .. } => out.extend(commands.iter().filter_map(|(o, _)| raw(o))),
            Decision::Held { origin, .. } => out.extend(raw(origin)),
            Decision::NewRun { .. } => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Appends one empty MQTT record and waits for its committed sequence number.
    fn append_one(log: &TelemetryLog) -> u64 {
        let (ack_tx, ack) = mpsc::channel();
        let record = RawRecord::Mqtt { topic: "t".into(), payload: vec![], received_unix_ms: 0 };
        log.append(record, Box::new(move |r| ack_tx.send(r).expect("send")), None).expect("append");
        ack.recv().expect("ack").expect("committed")
    }

    #[test]
    fn raw_records_are_acknowledged_after_commit_and_survive_reopening() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join(DIR_NAME);
        let (tx, rx) = mpsc::channel();
        let (log, contents) = TelemetryLog::open(&path, tx).expect("open");
        assert!(contents.raw.is_empty());
        let (acks_tx, acks) = mpsc::channel();
        for i in 0..100u64 {
            let acks_tx = acks_tx.clone();
            let record =
                RawRecord::Mqtt { topic: format!("t/{i}"), payload: vec![i as u8], received_unix_ms: i };
            log.append(record, Box::new(move |r| acks_tx.send(r.expect("committed")).expect("send")), None)
                .expect("append");
        }
        let seqs: Vec<u64> = (0..100).map(|_| acks.recv().expect("ack")).collect();
        assert_eq!(seqs, (1..=100).collect::<Vec<_>>(), "acks in order");
        let mut forwarded = Vec::new();
        while forwarded.len() < 100 {
            forwarded.extend(rx.recv().expect("committed batch"));
        }
        assert_eq!(forwarded[41].seq, 42);
        log.decide(
            vec![Decision::Applied {
                at: 5,
                commands: vec![(Origin::Raw { seq: 1, part: 0 }, Command::Repair { station: "s".into() })],
                released: vec![],
            }],
            Some(100),
        )
        .expect("decide");
        // Readable from another handle while the writer is open.
        let read = read_file(&path).expect("read");
        assert_eq!(read.raw.len(), 100);
        assert_eq!(read.processed_through, 100);
        drop(log);
        let (tx, _rx) = mpsc::channel();
        let (log, contents) = TelemetryLog::open(&path, tx).expect("reopen");
        assert_eq!(contents.raw.len(), 100);
        assert_eq!(contents.decisions.len(), 1);
        assert_eq!(applied_commands(&contents.decisions), vec![(5, Command::Repair { station: "s".into() })]);
        assert_eq!(append_one(&log), 101, "sequences continue");
    }

    #[test]
    fn a_batch_commits_together_with_consecutive_sequences_after_single_records() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join(DIR_NAME);
        let (tx, rx) = mpsc::channel();
        let (log, _) = TelemetryLog::open(&path, tx).expect("open");
        assert_eq!(append_one(&log), 1);
        let records: Vec<(RawRecord, Option<Permit>)> = (0..50u8)
            .map(|i| {
                (RawRecord::Mqtt { topic: format!("b/{i}"), payload: vec![i], received_unix_ms: 0 }, None)
            })
            .collect();
        let (ack_tx, ack) = mpsc::channel();
        log.append_batch(records, Box::new(move |r| ack_tx.send(r).expect("send"))).expect("append");
        assert_eq!(ack.recv().expect("reply").expect("committed"), 2, "the batch's first sequence");
        assert_eq!(append_one(&log), 52, "the batch took 2..=51");
        let mut forwarded = Vec::new();
        while forwarded.len() < 52 {
            forwarded.extend(rx.recv().expect("committed"));
        }
        let seqs: Vec<u64> = forwarded.iter().map(|c| c.seq).collect();
        assert_eq!(seqs, (1..=52).collect::<Vec<_>>());
        assert_eq!(
            forwarded[10].record,
            RawRecord::Mqtt { topic: "b/9".into(), payload: vec![9], received_unix_ms: 0 }
        );
        drop(log);
        let read = read_file(&path).expect("read");
        assert_eq!(read.raw.len(), 52);
        assert_eq!(
            read.raw[50].1,
            RawRecord::Mqtt { topic: "b/49".into(), payload: vec![49], received_unix_ms: 0 }
        );
    }

    #[test]
    fn pruning_deletes_whole_old_segments_of_processed_records_and_sequences_continue() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join(DIR_NAME);
        let (tx, _rx) = mpsc::channel();
        let (log, _) = TelemetryLog::open(&path, tx).expect("open");
        for i in 0..10u64 {
            append_one(&log);
            assert_eq!(i + 1, read_file(&path).expect("read").raw.len() as u64);
        }
        let grpc = RawRecord::Grpc {
            source: "mes".into(),
            epoch_unix_ms: 1,
            messages: vec![GrpcMessage {
                sequence: 77,
                timestamp_unix_ms: 2,
                station: "s".into(),
                reading: Reading::Live,
            }],
            received_unix_ms: 0,
        };
        let (ack_tx, ack) = mpsc::channel();
        log.append(grpc, Box::new(move |r| ack_tx.send(r).expect("send")), None).expect("append");
        assert_eq!(ack.recv().expect("ack").expect("committed"), 11);
        let decision = |at| Decision::Applied { at, commands: vec![], released: vec![] };
        log.decide((0..6).map(decision).collect(), Some(11)).expect("decide");
        // The newest segment is never deleted; the prune starts a new one.
        assert_eq!(log.prune_before(12, 7).expect("prune"), Pruned::default());
        assert_eq!(append_one(&log), 12);
        assert_eq!(append_one(&log), 13);
        log.decide(vec![decision(6), decision(7)], Some(12)).expect("decide");
        // Segment 1 holds decision 6, at the bound: kept.
        assert_eq!(log.prune_before(12, 6).expect("prune"), Pruned::default());
        assert_eq!(log.prune_before(12, 7).expect("prune"), Pruned { raw: 11, decisions: 6 });
        let read = read_file(&path).expect("read");
        assert_eq!(read.raw.iter().map(|(k, _)| *k).collect::<Vec<_>>(), [12, 13]);
        assert_eq!((read.first_decision, read.next_decision, read.decisions.len()), (7, 9, 2));
        assert_eq!(read.grpc_committed.get("mes"), Some(&77), "carried by the newer segment's state");
        assert_eq!(log.decisions_from(8).expect("from 8").iter().map(|(k, _)| *k).collect::<Vec<_>>(), [8]);
        // Raw record 13 is not processed yet: its segment stays whatever the bound says.
        assert_eq!(log.prune_before(u64::MAX, u64::MAX).expect("prune"), Pruned::default());
        log.decide(vec![], Some(13)).expect("decide");
        assert_eq!(log.prune_before(u64::MAX, u64::MAX).expect("prune"), Pruned { raw: 2, decisions: 2 });
        drop(log);
        let (tx, _rx) = mpsc::channel();
        let (log, contents) = TelemetryLog::open(&path, tx).expect("reopen");
        assert!(contents.raw.is_empty() && contents.decisions.is_empty());
        assert_eq!((contents.processed_through, contents.first_decision), (13, 9));
        assert_eq!(contents.grpc_committed.get("mes"), Some(&77), "kept across pruning");
        assert_eq!(append_one(&log), 14, "no sequence is reused");
        log.decide(vec![decision(10)], None).expect("decide");
        drop(log);
        let read = read_file(&path).expect("read");
        assert_eq!((read.first_decision, read.next_decision), (9, 10), "no decision key is reused");
    }

    #[test]
    fn a_torn_tail_is_cut_off_and_damage_in_an_older_segment_is_counted() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join(DIR_NAME);
        let (tx, _rx) = mpsc::channel();
        let (log, _) = TelemetryLog::open(&path, tx).expect("open");
        assert_eq!(append_one(&log), 1);
        assert_eq!(append_one(&log), 2);
        drop(log);
        // A crash in the middle of a write: half a frame at the end.
        let files = segment::list(&path).expect("list");
        let (_, newest) = files.last().expect("a segment");
        let good = std::fs::metadata(newest).expect("meta").len();
        let mut frame = Vec::new();
        let record = RawRecord::Mqtt { topic: "torn".into(), payload: vec![9; 40], received_unix_ms: 0 };
        segment::put(&mut frame, segment::RAW, 3, &record).expect("frame");
        let mut f = std::fs::OpenOptions::new().append(true).open(newest).expect("open");
        f.write_all(&frame[..frame.len() / 2]).expect("write");
        drop(f);
        assert_eq!(read_file(&path).expect("read").raw.len(), 2, "readers leave the torn frame out");
        let (tx, _rx) = mpsc::channel();
        let (log, contents) = TelemetryLog::open(&path, tx).expect("reopen");
        assert_eq!((contents.raw.len(), contents.unreadable), (2, 0));
        assert_eq!(std::fs::metadata(newest).expect("meta").len(), good, "cut off");
        assert_eq!(append_one(&log), 3);
        drop(log);
        // A flipped bit in a segment that is not the newest: the rest of it is skipped.
        let mut bytes = std::fs::read(newest).expect("read");
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        std::fs::write(newest, bytes).expect("write");
        let read = read_file(&path).expect("read");
        assert_eq!((read.raw.len(), read.unreadable), (2, 1));
    }

    #[test]
    fn an_earlier_versions_redb_log_is_imported_once() {
        use redb::{Database, TableDefinition};
        let dir = tempfile::tempdir().expect("temp dir");
        let old = dir.path().join(legacy::FILE_NAME);
        {
            let raw: TableDefinition<u64, &[u8]> = TableDefinition::new("telemetry_raw");
            let decisions: TableDefinition<u64, &[u8]> = TableDefinition::new("telemetry_decisions");
            let meta: TableDefinition<&str, u64> = TableDefinition::new("telemetry_meta");
            let db = Database::create(&old).expect("redb");
            let txn = db.begin_write().expect("txn");
            {
                let mut t = txn.open_table(raw).expect("raw");
                for seq in 5..=7u64 {
                    let r =
                        RawRecord::Mqtt { topic: format!("t/{seq}"), payload: vec![], received_unix_ms: seq };
                    t.insert(seq, postcard::to_stdvec(&r).expect("encode").as_slice()).expect("insert");
                }
                let mut t = txn.open_table(decisions).expect("decisions");
                let d = Decision::NewRun { scene: "demo".into(), seed: 3 };
                t.insert(4, postcard::to_stdvec(&d).expect("encode").as_slice()).expect("insert");
                let mut t = txn.open_table(meta).expect("meta");
                t.insert("processed_through", 6).expect("insert");
                t.insert("grpc/mes", 41).expect("insert");
            }
            txn.commit().expect("commit");
        }
        let path = dir.path().join(DIR_NAME);
        let (tx, _rx) = mpsc::channel();
        let (log, contents) = TelemetryLog::open(&path, tx).expect("open");
        assert_eq!(contents.raw.iter().map(|(k, _)| *k).collect::<Vec<_>>(), [5, 6, 7]);
        assert_eq!(contents.decision_keys, [4]);
        assert_eq!(current_run(&contents.decisions).0, Some(("demo", 3)));
        assert_eq!((contents.processed_through, contents.next_raw, contents.next_decision), (6, 8, 5));
        assert_eq!(contents.grpc_committed.get("mes"), Some(&41));
        assert_eq!(append_one(&log), 8);
        drop(log);
        assert!(!old.exists() && dir.path().join("telemetry.redb.imported").exists());
        let (tx, _rx) = mpsc::channel();
        let (_log, contents) = TelemetryLog::open(&path, tx).expect("reopen");
        assert_eq!(contents.raw.len(), 4, "imported once");
    }
}
