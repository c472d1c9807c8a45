//! Ingest counters (GetIngestStatus): plain atomics bumped where things happen, and the
//! known sources with their liveness.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use twin_proto::v1;

/// Why a message (or a metric) was not applied; the names GetIngestStatus reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reject {
    /// The topic is not a Sparkplug B topic of the subscribed group.
    BadTopic,
    /// The payload does not decode, or a required field or metric is missing.
    Malformed,
    /// Data from an edge node whose birth the twin has not seen (a rebirth is asked for).
    NoBirth,
    /// A device (or gRPC station) the scene does not have.
    UnknownDevice,
    /// A metric the vocabulary does not have, or a value of the wrong type (per metric).
    UnknownMetric,
    /// An NDEATH whose bdSeq is not the current session's (an old session's will).
    StaleDeath,
    /// The core refused the command (other than "already consistent").
    InvalidCommand,
}

impl Reject {
    /// The reason's name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Reject::BadTopic => "bad_topic",
            Reject::Malformed => "malformed",
            Reject::NoBirth => "no_birth",
            Reject::UnknownDevice => "unknown_device",
            Reject::UnknownMetric => "unknown_metric",
            Reject::StaleDeath => "stale_death",
            Reject::InvalidCommand => "invalid_command",
        }
    }
}

/// Kind of a telemetry source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceKind {
    Mqtt,
    Grpc,
}

/// What is known about one source.
#[derive(Clone, Debug)]
struct Source {
    kind: SourceKind,
    live: bool,
    last_message_unix_ms: u64,
    stations: BTreeSet<String>,
}

/// The counters. Every field counts since the server started.
#[derive(Debug, Default)]
pub struct Status {
    pub received: AtomicU64,
    pub committed: AtomicU64,
    pub applied: AtomicU64,
    pub duplicates: AtomicU64,
    pub sequence_gaps: AtomicU64,
    pub rebirths_requested: AtomicU64,
    pub late: AtomicU64,
    pub held: AtomicU64,
    pub ahead: AtomicU64,
    /// Gauge: readings in the hold queue now.
    pub holding: AtomicU64,
    /// Gauge: raw records in the log.
    pub log_records: AtomicU64,
    pub replayed_commands: AtomicU64,
    pub mqtt_connected: AtomicBool,
    rejected: Mutex<BTreeMap<Reject, u64>>,
    sources: Mutex<BTreeMap<String, Source>>,
}

fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

impl Status {
    /// Counts a rejection (and logs it at debug level; the counters are the summary).
    pub fn reject(&self, reason: Reject, what: &str) {
        tracing::debug!(reason = reason.name(), what, "telemetry not applied");
        if let Ok(mut r) = self.rejected.lock() {
            *r.entry(reason).or_default() += 1;
        }
    }

    /// The count of one rejection reason.
    pub fn rejected(&self, reason: Reject) -> u64 {
        self.rejected.lock().map_or(0, |r| r.get(&reason).copied().unwrap_or(0))
    }

    /// Bumps a counter.
    pub fn count(&self, counter: &AtomicU64, n: u64) {
        add(counter, n);
    }

    /// A message from `source` about `stations` arrived (wall time `unix_ms`): it is live.
    pub fn heard(&self, source: &str, kind: SourceKind, unix_ms: u64, stations: &[&str]) {
        if let Ok(mut map) = self.sources.lock() {
            let entry = map.entry(source.to_owned()).or_insert_with(|| Source {
                kind,
                live: true,
                last_message_unix_ms: unix_ms,
                stations: BTreeSet::new(),
            });
            entry.live = true;
            entry.last_message_unix_ms = entry.last_message_unix_ms.max(unix_ms);
            for s in stations {
                if !entry.stations.contains(*s) {
                    entry.stations.insert((*s).to_owned());
                }
            }
        }
    }

    /// The source died or fell silent.
    pub fn stale(&self, source: &str) {
        if let Ok(mut map) = self.sources.lock()
            && let Some(entry) = map.get_mut(source)
        {
            entry.live = false;
        }
    }

    /// Whether `source` is known and live.
    pub fn is_live(&self, source: &str) -> Option<bool> {
        self.sources.lock().ok().and_then(|m| m.get(source).map(|s| s.live))
    }

    /// The wire form.
    pub fn to_proto(&self) -> v1::GetIngestStatusResponse {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let rejected = self
            .rejected
            .lock()
            .map(|r| {
                r.iter().map(|(k, v)| v1::IngestRejection { reason: k.name().into(), count: *v }).collect()
            })
            .unwrap_or_default();
        let sources = self
            .sources
            .lock()
            .map(|m| {
                m.iter()
                    .map(|(id, s)| v1::IngestSource {
                        id: id.clone(),
                        kind: match s.kind {
                            SourceKind::Mqtt => "mqtt".into(),
                            SourceKind::Grpc => "grpc".into(),
                        },
                        live: s.live,
                        last_message_unix_ms: s.last_message_unix_ms,
                        stations: s.stations.iter().cloned().collect(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        v1::GetIngestStatusResponse {
            received: get(&self.received),
            committed: get(&self.committed),
            applied: get(&self.applied),
            rejected,
            duplicates: get(&self.duplicates),
            sequence_gaps: get(&self.sequence_gaps),
            rebirths_requested: get(&self.rebirths_requested),
            late: get(&self.late),
            held: get(&self.held),
            ahead: get(&self.ahead),
            holding: get(&self.holding),
            log_records: get(&self.log_records),
            replayed_commands: get(&self.replayed_commands),
            mqtt_connected: self.mqtt_connected.load(Ordering::Relaxed),
            sources,
        }
    }
}
