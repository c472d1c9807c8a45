//! Live telemetry in: Sparkplug B over MQTT and the gRPC `Ingest` stream, through a
//! durable log, onto the simulation.
//!
//! The path of a message:
//! 1. [`mqtt`] (the publishes of one read, QoS 1, PUBACK after the commit) or [`grpc`]
//!    (a validated batch) hands it to the [`log`] writer;
//! 2. the writer appends whatever queued up to the log in one fsync'd write, then
//!    releases the acknowledgements (PUBACK in arrival order; IngestAck) and passes the
//!    committed records on;
//! 3. the processor thread (here) decodes them ([`decode`]: Sparkplug sessions, gaps,
//!    duplicates), asks for rebirths, notices silent sources, and hands readings to the
//!    simulation thread, waiting until they are applied (so every queue stays bounded);
//! 4. the simulation thread ([`apply`]) turns readings into core commands at their
//!    plant time, records each decision durably before moving on, and publishes.
//!
//! A restart reads the log: the simulation replays the recorded decisions, the decoder
//! re-reads the raw records it had processed, and records not yet processed are
//! processed now. [`status`] holds the counters of GetIngestStatus.

pub mod apply;
pub mod decode;
pub mod grpc;
pub mod log;
pub mod mqtt;
pub mod reading;
pub mod resume;
pub mod status;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use self::decode::Decoder;
use self::log::{Committed, TelemetryLog};
use self::reading::{Incoming, Origin, Reading, StationReading, TelemetryBatch};
use self::status::Status;
use crate::sim::SimHandle;
use twin_core::time::Micros;

/// How often the processor looks for silent sources.
const SILENCE_CHECK: Duration = Duration::from_millis(500);
/// With checkpoints, the processor hands the simulation thread a copy of the decoder's
/// sessions after a batch once this long (wall) or this many raw records have passed
/// since the last copy, not after every batch: a checkpoint records the newest copy
/// (through S, at or before its `processed_through`) and the log keeps the raw records
/// after S, which a restart decodes again on top of it.
const SESSIONS_EVERY: Duration = Duration::from_secs(1);
const SESSIONS_EVERY_RECORDS: u64 = 16_384;

/// Where telemetry comes from and where it is kept.
#[derive(Clone, Debug)]
pub struct IngestConfig {
    /// The data folder; the log is `DIR/telemetry/`.
    pub data_dir: PathBuf,
    /// The MQTT broker (`mqtt://host:port`); None takes gRPC Ingest only.
    pub mqtt: Option<MqttConfig>,
    /// Sparkplug group id (also without MQTT: gRPC sources are not in a group).
    pub group: String,
    /// A source silent this long (wall clock) is marked stale.
    pub stale_after: Duration,
}

/// The MQTT side.
#[derive(Clone, Debug)]
pub struct MqttConfig {
    /// `mqtt://host[:port]` (port 1883 when left out).
    pub url: String,
    /// MQTT client id; the broker keeps this session (clean session off), so messages
    /// published while the twin is down are delivered when it comes back.
    pub client_id: String,
    /// With an `mqtts://` URL: the PEM file of the certificate authority the broker's
    /// certificate must chain to (`--mqtt-ca`; required for TLS).
    pub ca: Option<PathBuf>,
    /// With an `mqtts://` URL, for brokers that require client certificates: the twin's
    /// certificate (chain) and private key, PEM (`--mqtt-cert`, `--mqtt-key`; both or
    /// neither).
    pub client_cert: Option<ClientCert>,
}

/// The twin's TLS client certificate for the broker.
#[derive(Clone, Debug)]
pub struct ClientCert {
    /// PEM certificate chain, the twin's own certificate first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

impl IngestConfig {
    /// Defaults: group `twin`, stale after 30 s, no MQTT.
    pub fn new(data_dir: impl Into<PathBuf>) -> IngestConfig {
        IngestConfig {
            data_dir: data_dir.into(),
            mqtt: None,
            group: twin_proto::sparkplug::vocab::DEFAULT_GROUP.to_owned(),
            stale_after: Duration::from_secs(30),
        }
    }
}

/// The running ingest: shared by the gRPC handlers and the MQTT task.
pub struct Ingest {
    pub config: IngestConfig,
    pub log: Arc<TelemetryLog>,
    pub status: Arc<Status>,
    /// The gRPC sources' highest accepted sequences (duplicates are skipped).
    pub grpc: grpc::Sequences,
    /// The scene's station ids (gRPC validation).
    pub stations: BTreeSet<String>,
    /// Asks an edge node for a rebirth; set when MQTT starts.
    pub rebirth: Arc<std::sync::Mutex<Option<mqtt::Rebirth>>>,
    /// One permit per raw record in the pipeline ([`log::IN_FLIGHT`]).
    pub in_flight: Arc<tokio::sync::Semaphore>,
}

impl std::fmt::Debug for Ingest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ingest").field("config", &self.config).finish()
    }
}

/// The ingest prepared before the simulation thread starts: the replayed run for the
/// simulation thread, and the rest to start once that thread runs.
pub struct Prepared {
    pub telemetry: apply::Telemetry,
    pub sim: twin_core::Sim,
    pub seed: u64,
    pub rest: Pending,
}

/// The processor's part, started with [`Pending::start`].
pub struct Pending {
    ingest: Arc<Ingest>,
    committed: Receiver<Vec<Committed>>,
    decoder: Decoder,
    pending: Vec<Committed>,
    /// Hand the simulation thread copies of the decoder's sessions (checkpoints).
    snapshot_sessions: bool,
}

/// Why the ingest could not start.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Log(#[from] log::LogError),
    #[error(transparent)]
    Replay(#[from] apply::ReplayError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("starting the ingest thread: {0}")]
    Thread(std::io::Error),
    #[error("--mqtt {url}: {message}")]
    Url { url: String, message: String },
    #[error("--mqtt-ca {path}: {message}")]
    Ca { path: String, message: String },
    /// A client certificate or key file (`flag` names which) that cannot be used.
    #[error("{flag} {path}: {message}")]
    ClientCert { flag: &'static str, path: String, message: String },
}

/// Opens the log and rebuilds the simulation from it (restart replay): from the newest
/// good checkpoint of the run with a `store` (`--data`: the checkpoints of the live run
/// are taken and the log pruned below the oldest kept), else from the run's start.
pub fn prepare(
    config: IngestConfig,
    store: Option<&crate::store::StoreConfig>,
    scene: &crate::sim::LiveScene,
    make_sim: impl FnOnce(u64) -> twin_core::Sim,
) -> Result<Prepared, IngestError> {
    if let Some(m) = &config.mqtt {
        mqtt::tls_config(m)?;
    }
    let path = config.data_dir.join(log::DIR_NAME);
    let (tx, committed) = std::sync::mpsc::channel();
    let (log, contents) = TelemetryLog::open(&path, tx)?;
    let log = Arc::new(log);
    let status = Arc::new(Status::default());
    status.log_records.store(contents.raw.len() as u64, std::sync::atomic::Ordering::Relaxed);
    if contents.unreadable > 0 {
        tracing::warn!(records = contents.unreadable, path = %path.display(), "unreadable telemetry records skipped");
    }
    let mut telemetry = apply::Telemetry::new(Arc::clone(&log), Arc::clone(&status), &contents);
    let base = match store {
        Some(s) => resume::choose_base(
            &s.data_dir.join(crate::store::checkpoints::DIR_NAME),
            &contents,
            &scene.model,
            &scene.name,
        )?,
        None => None,
    };
    let base_sessions =
        base.as_ref().and_then(|b| b.meta.telemetry.as_ref()).and_then(|t| t.sessions.clone());
    let (sim, seed) = telemetry.replay(make_sim, &scene.name, scene.default_seed, &contents, base)?;
    if let Some(s) = store {
        telemetry.checkpoints = Some(resume::LiveCheckpoints::start(s, telemetry.run_start, sim.now())?);
    }
    if config.mqtt.is_some() && sim.now() == 0 && telemetry.next_due().is_none() {
        // A new run following a plant: plant time t must be twin time t.
        telemetry.wait_for_plant();
    }
    let stations: BTreeSet<String> = scene.model.stations.iter().map(|s| s.id.clone()).collect();
    let mut decoder = Decoder::new(&config.group, stations.iter().cloned())
        .with_vehicles(decode::vehicle_ids(&scene.model));
    decoder.observe_into(Arc::clone(&status));
    let grpc = grpc::Sequences::default();
    for (source, sequence) in &contents.grpc_committed {
        grpc.restore(source, *sequence);
    }
    // The checkpoint's sessions stand for every raw record it processed (the log may no
    // longer hold them); the records after it are decoded again, silently.
    let restored = base_sessions.filter(|s| s.through <= contents.processed_through);
    let decoded_through = match restored {
        Some(sessions) => {
            tracing::info!(
                nodes = sessions.nodes.len(),
                through = sessions.through,
                "Sparkplug sessions restored from the checkpoint"
            );
            let through = sessions.through;
            decoder.restore(sessions);
            through
        }
        None => 0,
    };
    let mut pending = Vec::new();
    for (seq, record) in contents.raw {
        let committed = Committed { seq, record, permit: None };
        grpc.observe(&committed.record);
        if seq <= decoded_through {
            continue;
        }
        if seq <= contents.processed_through {
            decoder.decode(&committed);
        } else {
            pending.push(committed);
        }
    }
    decoder.count_into(Arc::clone(&status));
    let snapshot_sessions = telemetry.checkpoints.is_some();
    if snapshot_sessions {
        telemetry.sessions = Some(Arc::new(decoder.sessions(contents.processed_through)));
    }
    tracing::info!(path = %path.display(), unprocessed = pending.len(), "telemetry log open");
    let ingest = Arc::new(Ingest {
        config,
        log,
        status,
        grpc,
        stations,
        rebirth: Arc::default(),
        in_flight: Arc::new(tokio::sync::Semaphore::new(log::IN_FLIGHT)),
    });
    Ok(Prepared {
        telemetry,
        sim,
        seed,
        rest: Pending { ingest, committed, decoder, pending, snapshot_sessions },
    })
}

impl Pending {
    /// Starts the processor thread, feeding the simulation thread `sim`.
    pub fn start(self, sim: Arc<SimHandle>) -> Result<Arc<Ingest>, IngestError> {
        let processor = Processor {
            decoder: self.decoder,
            ingest: Arc::clone(&self.ingest),
            sim,
            sources: BTreeMap::new(),
            snapshot_sessions: self.snapshot_sessions,
            sessions_copied: (Instant::now(), 0),
        };
        let pending = self.pending;
        let committed = self.committed;
        std::thread::Builder::new()
            .name("twin-ingest".into())
            .spawn(move || processor.run(pending, committed))
            .map_err(IngestError::Thread)?;
        Ok(self.ingest)
    }
}

/// Silence tracking of one source (wall clock; not part of the replayed state).
struct Heard {
    last: Instant,
    stations: BTreeSet<String>,
    stale: bool,
}

struct Processor {
    decoder: Decoder,
    ingest: Arc<Ingest>,
    sim: Arc<SimHandle>,
    sources: BTreeMap<String, Heard>,
    /// Hand the simulation thread copies of the decoder's sessions (checkpoints).
    snapshot_sessions: bool,
    /// When the last copy was made, and raw records processed since ([`SESSIONS_EVERY`]).
    sessions_copied: (Instant, u64),
}

impl Processor {
    fn run(mut self, pending: Vec<Committed>, committed: Receiver<Vec<Committed>>) {
        if !pending.is_empty() && !self.process(pending) {
            return;
        }
        let mut last_check = Instant::now();
        loop {
            match committed.recv_timeout(SILENCE_CHECK) {
                Ok(mut batch) => {
                    // Whatever else committed meanwhile goes along: one trip to the
                    // simulation (and one durable decision) for all of it, so that the
                    // processor keeps up however small the groups (bounded by IN_FLIGHT).
                    while let Ok(more) = committed.try_recv() {
                        batch.extend(more);
                    }
                    if !self.process(batch) {
                        return;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            if last_check.elapsed() >= SILENCE_CHECK {
                last_check = Instant::now();
                if !self.check_silence() {
                    return;
                }
            }
        }
    }

    /// Decodes and applies a committed batch; false once the simulation has stopped.
    fn process(&mut self, batch: Vec<Committed>) -> bool {
        let status = &self.ingest.status;
        status.count(&status.log_records, batch.len() as u64);
        let through = batch.last().map(|c| c.seq);
        let mut items = Vec::new();
        let mut birth = None;
        let mut marks: BTreeMap<String, Micros> = BTreeMap::new();
        let mut gone = Vec::new();
        let now_ms = crate::audit::now_unix_ms();
        for c in &batch {
            let decoded = self.decoder.decode(c);
            if let (Some((source, _, _)), Some(at)) = (&decoded.heard, decoded.at) {
                let mark = marks.entry(source.clone()).or_insert(at);
                *mark = (*mark).max(at);
            }
            if let (None, Some(at), Some((source, _, _))) = (&birth, decoded.birth_at, &decoded.heard) {
                birth = Some((source.clone(), at));
            }
            if let Some(node) = decoded.rebirth {
                self.ask_rebirth(&node);
            }
            if let Some((source, kind, stations)) = decoded.heard {
                let refs: Vec<&str> = stations.iter().map(String::as_str).collect();
                status.heard(&source, kind, now_ms, &refs);
                let heard = self.sources.entry(source).or_insert_with(|| Heard {
                    last: Instant::now(),
                    stations: BTreeSet::new(),
                    stale: false,
                });
                heard.last = Instant::now();
                heard.stale = false;
                heard.stations.extend(stations);
            }
            if let Some(source) = decoded.died {
                status.stale(&source);
                if let Some(h) = self.sources.get_mut(&source) {
                    h.stale = true;
                }
                marks.remove(&source);
                gone.push(source);
            }
            items.extend(decoded.items);
        }
        let marks = marks.into_iter().collect();
        self.sessions_copied.1 += batch.len() as u64;
        let due = self.sessions_copied.0.elapsed() >= SESSIONS_EVERY
            || self.sessions_copied.1 >= SESSIONS_EVERY_RECORDS;
        let sessions = match through {
            Some(t) if self.snapshot_sessions && due => {
                self.sessions_copied = (Instant::now(), 0);
                Some(Arc::new(self.decoder.sessions(t)))
            }
            _ => None,
        };
        self.sim.telemetry(TelemetryBatch { through, items, birth, marks, gone, sessions }).is_ok()
    }

    fn ask_rebirth(&self, edge_node: &str) {
        let status = &self.ingest.status;
        let sent = match self.ingest.rebirth.lock().ok().and_then(|r| r.clone()) {
            Some(rebirth) => rebirth.request(&self.ingest.config.group, edge_node),
            None => false,
        };
        if sent {
            status.count(&status.rebirths_requested, 1);
        }
    }

    /// Marks sources silent past the timeout stale; false once the simulation stopped.
    fn check_silence(&mut self) -> bool {
        let after = self.ingest.config.stale_after;
        let mut items = Vec::new();
        let mut gone = Vec::new();
        for (source, heard) in &mut self.sources {
            if heard.stale || heard.last.elapsed() < after {
                continue;
            }
            heard.stale = true;
            gone.push(source.clone());
            self.ingest.status.stale(source);
            tracing::info!(
                source,
                silent_s = heard.last.elapsed().as_secs_f64(),
                "source silent: stations stale"
            );
            let readings: Vec<StationReading> = heard
                .stations
                .iter()
                .map(|s| StationReading { station: s.clone(), reading: Reading::Stale })
                .collect();
            if !readings.is_empty() {
                items.push(Incoming { origin: Origin::Silence, at: None, readings });
            }
        }
        if gone.is_empty() {
            return true;
        }
        let batch = TelemetryBatch { through: None, items, gone, ..TelemetryBatch::default() };
        self.sim.telemetry(batch).is_ok()
    }
}

/// Whether a source id is acceptable (gRPC): 1..=64 of `[A-Za-z0-9._-]`.
pub fn valid_source_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}
