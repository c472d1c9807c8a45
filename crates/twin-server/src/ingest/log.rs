//! The durable telemetry log (`DIR/telemetry.redb`): every message the twin acknowledges,
//! and every decision that applied telemetry to the simulation, so that a restart
//! rebuilds exactly the state the twin had.
//!
//! One writer thread owns the file. It takes whatever jobs have queued up, writes them in
//! one redb transaction with `Durability::Immediate` (on disk when `commit` returns) and
//! only then answers them: a raw message's acknowledgement (MQTT PUBACK, gRPC IngestAck)
//! is released after its group commit, never before, and in the order the messages came.
//! Committed raw records then go on to be decoded and applied.
//!
//! Tables:
//! - `raw`: every received message, exactly as it came (MQTT topic and payload bytes, or
//!   a validated gRPC batch), keyed by a log sequence number from 1.
//! - `decisions`: what the simulation thread did with them, in order ([`Decision`]):
//!   commands applied at a simulation time, and messages held for a later time. The
//!   simulation thread waits for a decision to be durable before it moves on, so the
//!   in-memory state never runs ahead of the log.
//! - `meta`: `processed_through`, the highest raw sequence whose decisions are recorded
//!   (later raw records are decoded and applied again after a restart).
//!
//! Retention: [`TelemetryLog::prune_before`] deletes processed raw records and decisions
//! below given keys in the writer's next group commit. Only a checkpoint writer may call
//! it (after its checkpoint covering those decisions is durable): a restart replays the
//! decisions that remain, so without a checkpoint nothing is pruned and the log keeps
//! everything (about 100 bytes per MQTT message). redb reuses the freed pages, so a
//! pruned log stops growing. Pruning raw records forgets nothing a restart needs: the
//! Sparkplug sessions they built are in the checkpoint (`TelemetryPlace::sessions`), and
//! the gRPC sources' committed sequences are kept in `meta`.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::thread::JoinHandle;

use redb::{
    Builder, ConcurrencyMode, Database, Durability, ReadOnlyDatabase, ReadableDatabase, ReadableTable,
    TableDefinition,
};
use serde::{Deserialize, Serialize};
use twin_core::Command;
use twin_core::time::Micros;

use super::reading::{Origin, Reading, StationReading};

const RAW: TableDefinition<u64, &[u8]> = TableDefinition::new("telemetry_raw");
const DECISIONS: TableDefinition<u64, &[u8]> = TableDefinition::new("telemetry_decisions");
const META: TableDefinition<&str, u64> = TableDefinition::new("telemetry_meta");
const PROCESSED_THROUGH: &str = "processed_through";
/// Meta keys `grpc/{source}`: the source's highest committed sequence (kept across
/// pruning, so a resend of pruned batches is still a duplicate).
const GRPC_PREFIX: &str = "grpc/";
/// Meta key: decisions below this key were pruned (so keys are never reused).
const DECISIONS_PRUNED_BELOW: &str = "pruned_decisions_below";

/// File name of the telemetry log inside the server's data folder.
pub const FILE_NAME: &str = "telemetry.redb";
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
    /// The gRPC sources' highest committed sequences, as kept in `meta`.
    pub grpc_committed: std::collections::BTreeMap<String, u64>,
}

/// The writer side of the log.
pub struct TelemetryLog {
    jobs: SyncSender<Job>,
    path: PathBuf,
    thread: std::sync::Mutex<Option<JoinHandle<()>>>,
    /// The database, shared with the writer for reads (redb serves reads beside a write
    /// transaction; a read sees the last commit).
    db: std::sync::Arc<Database>,
}

impl std::fmt::Debug for TelemetryLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TelemetryLog").field("path", &self.path).finish()
    }
}

fn builder() -> Builder {
    let mut b = Builder::new();
    b.set_concurrency_mode(ConcurrencyMode::SingleWriter);
    b
}

fn io(path: &Path, e: impl std::fmt::Display) -> LogError {
    LogError::Io { path: path.display().to_string(), message: e.to_string() }
}

impl TelemetryLog {
    /// Opens (or creates) the log, reads what it holds and starts the writer thread;
    /// committed raw records are sent to `committed` in log order.
    pub fn open(
        path: &Path,
        committed: Sender<Vec<Committed>>,
    ) -> Result<(TelemetryLog, Contents), LogError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| io(path, format!("creating {}: {e}", dir.display())))?;
        }
        let db = builder().create(path).map_err(|e| io(path, e))?;
        {
            // Create the tables so that readers find them.
            let txn = db.begin_write().map_err(|e| io(path, e))?;
            txn.open_table(RAW).map_err(|e| io(path, e))?;
            txn.open_table(DECISIONS).map_err(|e| io(path, e))?;
            txn.open_table(META).map_err(|e| io(path, e))?;
            txn.commit().map_err(|e| io(path, e))?;
        }
        let contents = read(&db).map_err(|e| io(path, e))?;
        // Pruning deletes only processed records, so the sequence never restarts.
        let next_raw = contents.next_raw.max(contents.processed_through + 1);
        let next_decision = contents.next_decision;
        // Producers hold a permit per raw record, so this never fills up with them.
        let (tx, rx) = mpsc::sync_channel(IN_FLIGHT + 1024);
        let db = std::sync::Arc::new(db);
        let reader = std::sync::Arc::clone(&db);
        let writer = Writer { db, path: path.to_owned(), next_raw, next_decision, committed };
        let thread = std::thread::Builder::new()
            .name("twin-telemetry-log".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| io(path, e))?;
        let log = TelemetryLog {
            jobs: tx,
            path: path.to_owned(),
            thread: std::sync::Mutex::new(Some(thread)),
            db: reader,
        };
        Ok((log, contents))
    }

    /// The file.
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
        let e = |x: &dyn std::fmt::Display| io(&self.path, x);
        let txn = self.db.begin_read().map_err(|x| e(&x))?;
        let table = txn.open_table(DECISIONS).map_err(|x| e(&x))?;
        let mut out = Vec::new();
        for item in table.range(from..).map_err(|x| e(&x))? {
            let (k, v) = item.map_err(|x| e(&x))?;
            match postcard::from_bytes::<Decision>(v.value()) {
                Ok(d) => out.push((k.value(), d)),
                Err(x) => {
                    tracing::warn!(key = k.value(), error = %x, "unreadable telemetry decision skipped")
                }
            }
        }
        Ok(out)
    }

    /// Records decisions and, when given, the new `processed_through`; returns once they
    /// are on disk.
    pub fn decide(&self, decisions: Vec<Decision>, through: Option<u64>) -> Result<(), LogError> {
        let (done, wait) = mpsc::sync_channel(1);
        self.jobs.send(Job::Decide { decisions, through, done }).map_err(|_| LogError::Stopped)?;
        wait.recv().map_err(|_| LogError::Stopped)?
    }

    /// Deletes the raw records below log sequence `raw` that are processed (at or below
    /// `processed_through`; later ones are kept whatever `raw` says) and the decisions
    /// whose key is below `decision`, in the writer's next durable commit; returns what
    /// was deleted once it is on disk.
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

struct Writer {
    db: std::sync::Arc<Database>,
    path: PathBuf,
    next_raw: u64,
    next_decision: u64,
    committed: Sender<Vec<Committed>>,
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

    /// Writes `jobs` in one durable transaction, then answers them in order.
    fn commit(&mut self, jobs: &mut Vec<Job>) {
        let first_raw = self.next_raw;
        let first_decision = self.next_decision;
        let written = self.write(jobs);
        let mut pruned = match &written {
            Ok(p) => p.clone().into_iter(),
            Err(_) => Vec::new().into_iter(),
        };
        let written = written.map(|_| ());
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
                    let _ = done.send(written.clone().map(|()| pruned.next().unwrap_or_default()));
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
            Err(e) => {
                // Nothing of the group was acknowledged; the sequence numbers are reused.
                tracing::error!(error = %e, "telemetry group commit failed");
                self.next_raw = first_raw;
                self.next_decision = first_decision;
            }
        }
    }

    /// Writes `jobs` in one transaction; returns what each prune job deleted, in order.
    fn write(&mut self, jobs: &[Job]) -> Result<Vec<Pruned>, LogError> {
        let path = self.path.clone();
        let e = |e: &dyn std::fmt::Display| io(&path, e);
        let mut txn = self.db.begin_write().map_err(|x| e(&x))?;
        txn.set_durability(Durability::Immediate).map_err(|x| e(&x))?;
        let mut pruned = Vec::new();
        {
            let mut raw = txn.open_table(RAW).map_err(|x| e(&x))?;
            let mut decisions = txn.open_table(DECISIONS).map_err(|x| e(&x))?;
            let mut meta = txn.open_table(META).map_err(|x| e(&x))?;
            let mut buf = Vec::new();
            for job in jobs {
                buf.clear();
                match job {
                    Job::Raw { records, .. } => {
                        for (record, _) in records {
                            buf.clear();
                            self.insert_raw(record, &mut raw, &mut meta, &mut buf).map_err(|x| e(&x))?;
                        }
                    }
                    Job::Decide { decisions: list, through, .. } => {
                        for decision in list {
                            buf.clear();
                            let bytes =
                                postcard::to_extend(decision, std::mem::take(&mut buf)).map_err(|x| e(&x))?;
                            decisions.insert(self.next_decision, bytes.as_slice()).map_err(|x| e(&x))?;
                            buf = bytes;
                            self.next_decision += 1;
                        }
                        if let Some(through) = through {
                            meta.insert(PROCESSED_THROUGH, *through).map_err(|x| e(&x))?;
                        }
                    }
                    Job::Prune { raw: below_raw, decision: below_decision, .. } => {
                        let processed =
                            meta.get(PROCESSED_THROUGH).map_err(|x| e(&x))?.map_or(0, |v| v.value());
                        let raw_end = (*below_raw).min(processed.saturating_add(1));
                        let mut p = Pruned::default();
                        raw.retain_in(..raw_end, |_, _| {
                            p.raw += 1;
                            false
                        })
                        .map_err(|x| e(&x))?;
                        decisions
                            .retain_in(..*below_decision, |_, _| {
                                p.decisions += 1;
                                false
                            })
                            .map_err(|x| e(&x))?;
                        let before =
                            meta.get(DECISIONS_PRUNED_BELOW).map_err(|x| e(&x))?.map_or(0, |v| v.value());
                        let below = (*below_decision).min(self.next_decision).max(before);
                        meta.insert(DECISIONS_PRUNED_BELOW, below).map_err(|x| e(&x))?;
                        pruned.push(p);
                    }
                    Job::Stop => {}
                }
            }
        }
        txn.commit().map_err(|x| e(&x))?;
        Ok(pruned)
    }
}

impl Writer {
    /// Inserts one raw record under the next sequence (and a gRPC batch's sequence into
    /// `meta`); `buf` is scratch space for the encoding.
    fn insert_raw(
        &mut self,
        record: &RawRecord,
        raw: &mut redb::Table<u64, &[u8]>,
        meta: &mut redb::Table<&str, u64>,
        buf: &mut Vec<u8>,
    ) -> Result<(), String> {
        if let RawRecord::Grpc { source, messages: list, .. } = record
            && let Some(last) = list.last()
        {
            let key = format!("{GRPC_PREFIX}{source}");
            let before = meta.get(key.as_str()).map_err(|x| x.to_string())?.map_or(0, |v| v.value());
            if last.sequence > before {
                meta.insert(key.as_str(), last.sequence).map_err(|x| x.to_string())?;
            }
        }
        let bytes = postcard::to_extend(record, std::mem::take(buf)).map_err(|x| x.to_string())?;
        raw.insert(self.next_raw, bytes.as_slice()).map_err(|x| x.to_string())?;
        *buf = bytes;
        self.next_raw += 1;
        Ok(())
    }
}

fn read(db: &impl ReadableDatabase) -> Result<Contents, redb::Error> {
    let txn = db.begin_read()?;
    let mut contents = Contents { next_raw: 1, first_decision: 1, next_decision: 1, ..Contents::default() };
    match txn.open_table(RAW) {
        Ok(table) => {
            for item in table.iter()? {
                let (k, v) = item?;
                contents.next_raw = k.value() + 1;
                match postcard::from_bytes::<RawRecord>(v.value()) {
                    Ok(record) => contents.raw.push((k.value(), record)),
                    Err(_) => contents.unreadable += 1,
                }
            }
        }
        Err(redb::TableError::TableDoesNotExist(_)) => {
            contents.first_decision = 1;
            contents.next_decision = 1;
            return Ok(contents);
        }
        Err(e) => return Err(e.into()),
    }
    contents.first_decision = 1;
    contents.next_decision = 1;
    match txn.open_table(DECISIONS) {
        Ok(table) => {
            for (i, item) in table.iter()?.enumerate() {
                let (k, v) = item?;
                if i == 0 {
                    contents.first_decision = k.value();
                }
                contents.next_decision = k.value() + 1;
                match postcard::from_bytes::<Decision>(v.value()) {
                    Ok(d) => {
                        contents.decisions.push(d);
                        contents.decision_keys.push(k.value());
                    }
                    Err(_) => contents.unreadable += 1,
                }
            }
        }
        Err(redb::TableError::TableDoesNotExist(_)) => {}
        Err(e) => return Err(e.into()),
    }
    match txn.open_table(META) {
        Ok(table) => {
            contents.processed_through = table.get(PROCESSED_THROUGH)?.map_or(0, |v| v.value());
            let pruned_below = table.get(DECISIONS_PRUNED_BELOW)?.map_or(0, |v| v.value());
            contents.next_decision = contents.next_decision.max(pruned_below);
            if contents.decisions.is_empty() {
                contents.first_decision = contents.next_decision;
            }
            for item in table.range(GRPC_PREFIX..)? {
                let (k, v) = item?;
                match k.value().strip_prefix(GRPC_PREFIX) {
                    Some(source) => contents.grpc_committed.insert(source.to_owned(), v.value()),
                    None => break,
                };
            }
        }
        Err(redb::TableError::TableDoesNotExist(_)) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(contents)
}

/// Reads a log file without writing to it, also while a server appends to it (tests,
/// tools).
pub fn read_file(path: &Path) -> Result<Contents, LogError> {
    if !path.exists() {
        return Err(io(path, "no such file"));
    }
    let db: ReadOnlyDatabase = builder().open_read_only(path).map_err(|e| io(path, e))?;
    read(&db).map_err(|e| io(path, e))
}

/// Opens a log that no process has open (e.g. after its server was killed), running
/// redb's repair as a restarting server would, and reads it.
pub fn recover_and_read(path: &Path) -> Result<Contents, LogError> {
    if !path.exists() {
        return Err(io(path, "no such file"));
    }
    let db = builder().create(path).map_err(|e| io(path, e))?;
    read(&db).map_err(|e| io(path, e))
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
        let path = dir.path().join(FILE_NAME);
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
        let path = dir.path().join(FILE_NAME);
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
    fn pruning_deletes_only_processed_records_and_sequences_continue() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join(FILE_NAME);
        let (tx, _rx) = mpsc::channel();
        let (log, _) = TelemetryLog::open(&path, tx).expect("open");
        let append = |record: RawRecord| {
            let (ack_tx, ack) = mpsc::channel();
            log.append(record, Box::new(move |r| ack_tx.send(r).expect("send")), None).expect("append");
            ack.recv().expect("ack").expect("committed")
        };
        for i in 0..10u64 {
            append(RawRecord::Mqtt { topic: format!("t/{i}"), payload: vec![], received_unix_ms: i });
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
        assert_eq!(append(grpc), 11);
        let decision = |at| Decision::Applied { at, commands: vec![], released: vec![] };
        log.decide((0..6).map(decision).collect(), Some(8)).expect("decide");
        // Raw records up to 8 are processed: asking for < 11 deletes 1..=8 only.
        let pruned = log.prune_before(11, 4).expect("prune");
        assert_eq!(pruned, Pruned { raw: 8, decisions: 3 });
        let read = read_file(&path).expect("read");
        assert_eq!(read.raw.iter().map(|(k, _)| *k).collect::<Vec<_>>(), [9, 10, 11]);
        assert_eq!((read.first_decision, read.next_decision, read.decisions.len()), (4, 7, 3));
        assert_eq!(read.grpc_committed.get("mes"), Some(&77), "kept in meta");
        drop(log);
        // Everything pruned: sequences still continue after reopening.
        let (tx, _rx) = mpsc::channel();
        let (log, contents) = TelemetryLog::open(&path, tx).expect("reopen");
        assert_eq!(contents.decisions.len(), 3);
        log.decide(vec![decision(9)], Some(11)).expect("decide");
        assert_eq!(log.prune_before(u64::MAX, u64::MAX).expect("prune"), Pruned { raw: 3, decisions: 4 });
        drop(log);
        let (tx, _rx) = mpsc::channel();
        let (log, contents) = TelemetryLog::open(&path, tx).expect("reopen");
        assert!(contents.raw.is_empty() && contents.decisions.is_empty());
        assert_eq!(append_one(&log), 12, "no sequence is reused");
        log.decide(vec![decision(10)], None).expect("decide");
        drop(log);
        let read = read_file(&path).expect("read");
        assert_eq!((read.first_decision, read.next_decision), (8, 9), "no decision key is reused");
    }
}
