//! Ingest counters (GetIngestStatus): plain atomics bumped where things happen, and the
//! known sources with their liveness.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use twin_core::time::Micros;
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

/// The last values a plant reported for a station that the twin compares rather than
/// forces (today: its buffer level).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StationObserved {
    pub buffer_level: Option<u32>,
    /// Plant time of the newest value (simulation µs).
    pub at: Micros,
}

/// The last values a plant reported for one of its AGVs (shown, not forced).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct VehicleObserved {
    pub source: String,
    pub state: Option<String>,
    pub x: Option<f64>,
    pub y: Option<f64>,
    pub battery: Option<f64>,
    /// Plant time of the newest value (simulation µs).
    pub at: Micros,
    /// False after its DDEATH or its edge node's NDEATH, until its next birth.
    pub live: bool,
}

/// Acknowledgement latency: arrival at the twin (MQTT publish read from the broker,
/// gRPC batch read from the stream) -> acknowledgement released after the durable
/// commit. Log-spaced buckets, 8 per factor of two from 1 µs, so a percentile is exact
/// to about 9%.
#[derive(Debug)]
pub struct AckLatency {
    buckets: Vec<AtomicU64>,
    max_us: AtomicU64,
}

const LATENCY_BUCKETS: usize = 8 * 34;

impl Default for AckLatency {
    fn default() -> AckLatency {
        AckLatency {
            buckets: (0..LATENCY_BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            max_us: AtomicU64::new(0),
        }
    }
}

impl AckLatency {
    fn bucket(us: u64) -> usize {
        let x = (us.max(1) as f64).log2() * 8.0;
        (x as usize).min(LATENCY_BUCKETS - 1)
    }

    /// Records `n` messages acknowledged `elapsed` after they arrived.
    pub fn record(&self, elapsed: std::time::Duration, n: u64) {
        let us = elapsed.as_micros().min(u64::MAX as u128) as u64;
        self.buckets[Self::bucket(us)].fetch_add(n, Ordering::Relaxed);
        self.max_us.fetch_max(us, Ordering::Relaxed);
    }

    /// (messages, p50, p99, max) in milliseconds; a percentile is its bucket's upper edge.
    pub fn summary(&self) -> (u64, f64, f64, f64) {
        let counts: Vec<u64> = self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).collect();
        let total: u64 = counts.iter().sum();
        let max_ms = self.max_us.load(Ordering::Relaxed) as f64 / 1e3;
        let at = |q: f64| {
            let rank = ((total as f64) * q).ceil().max(1.0) as u64;
            let mut seen = 0;
            for (i, c) in counts.iter().enumerate() {
                seen += c;
                if seen >= rank {
                    return (2f64.powf((i + 1) as f64 / 8.0) / 1e3).min(max_ms);
                }
            }
            max_ms
        };
        if total == 0 { (0, 0.0, 0.0, 0.0) } else { (total, at(0.5), at(0.99), max_ms) }
    }
}

/// Where the twin's clock stands against the plant's (`--mqtt`: it waits for the first
/// NBIRTH, see [`super::apply`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClockAlignment {
    /// The clock is held at its start until a plant reports its time.
    pub waiting: bool,
    /// The source whose birth set the twin's clock, and the plant time it set.
    pub anchored: Option<(String, Micros)>,
    /// The watermark holding the clock when the last telemetry arrived (see
    /// `apply::Telemetry::hold_back`).
    pub watermark: Option<Micros>,
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
    /// The simulated time of the checkpoint the restart went on from (None: from the
    /// run's start).
    pub resumed_from: Mutex<Option<Micros>>,
    pub mqtt_connected: AtomicBool,
    rejected: Mutex<BTreeMap<Reject, u64>>,
    sources: Mutex<BTreeMap<String, Source>>,
    /// Arrival -> durable acknowledgement, per message.
    pub ack_latency: AckLatency,
    /// Plant figures per station (rebuilt from the log on restart).
    stations: Mutex<BTreeMap<String, StationObserved>>,
    /// Plant figures per AGV (rebuilt from the log on restart).
    vehicles: Mutex<BTreeMap<String, VehicleObserved>>,
    pub clock: Mutex<ClockAlignment>,
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

    /// A plant's buffer level for `station` at plant time `at`.
    pub fn observe_buffer(&self, station: &str, level: u32, at: Micros) {
        if let Ok(mut map) = self.stations.lock() {
            let e = map.entry(station.to_owned()).or_default();
            if at >= e.at || e.buffer_level.is_none() {
                e.buffer_level = Some(level);
                e.at = at;
            }
        }
    }

    /// Updates what is known of a vehicle (`f` sees the current values).
    pub fn observe_vehicle(&self, vehicle: &str, f: impl FnOnce(&mut VehicleObserved)) {
        if let Ok(mut map) = self.vehicles.lock() {
            f(map.entry(vehicle.to_owned()).or_default());
        }
    }

    /// Marks every vehicle reported by `source` not live (its edge node died).
    pub fn vehicles_dead(&self, source: &str) {
        if let Ok(mut map) = self.vehicles.lock() {
            map.values_mut().filter(|v| v.source == source).for_each(|v| v.live = false);
        }
    }

    /// Copies of the plant figures kept per station and per vehicle (a checkpoint's).
    pub fn observed(&self) -> (BTreeMap<String, StationObserved>, BTreeMap<String, VehicleObserved>) {
        let stations = self.stations.lock().map(|m| m.clone()).unwrap_or_default();
        let vehicles = self.vehicles.lock().map(|m| m.clone()).unwrap_or_default();
        (stations, vehicles)
    }

    /// Replaces the plant figures with a checkpoint's (restart).
    pub fn restore_observed(
        &self,
        stations: BTreeMap<String, StationObserved>,
        vehicles: BTreeMap<String, VehicleObserved>,
    ) {
        if let Ok(mut m) = self.stations.lock() {
            *m = stations;
        }
        if let Ok(mut m) = self.vehicles.lock() {
            *m = vehicles;
        }
    }

    /// The plant's buffer level of `station`, when reported.
    pub fn buffer_level(&self, station: &str) -> Option<u32> {
        self.stations.lock().ok().and_then(|m| m.get(station).and_then(|s| s.buffer_level))
    }

    /// What is known of a vehicle.
    pub fn vehicle(&self, vehicle: &str) -> Option<VehicleObserved> {
        self.vehicles.lock().ok().and_then(|m| m.get(vehicle).cloned())
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
        let observed_stations = self
            .stations
            .lock()
            .map(|m| {
                m.iter()
                    .map(|(id, o)| v1::IngestObservedStation {
                        station_id: id.clone(),
                        buffer_level: o.buffer_level,
                        plant_time_us: o.at,
                    })
                    .collect()
            })
            .unwrap_or_default();
        let observed_vehicles = self
            .vehicles
            .lock()
            .map(|m| {
                m.iter()
                    .map(|(id, o)| v1::IngestObservedVehicle {
                        vehicle_id: id.clone(),
                        source_id: o.source.clone(),
                        state: o.state.clone(),
                        x: o.x,
                        y: o.y,
                        battery: o.battery,
                        plant_time_us: o.at,
                        live: o.live,
                    })
                    .collect()
            })
            .unwrap_or_default();
        let clock = self.clock.lock().map(|c| c.clone()).unwrap_or_default();
        let (acks, p50, p99, max) = self.ack_latency.summary();
        v1::GetIngestStatusResponse {
            observed_stations,
            observed_vehicles,
            clock: Some(v1::IngestClock {
                waiting_for_plant: clock.waiting,
                anchor_source: clock.anchored.as_ref().map(|a| a.0.clone()).unwrap_or_default(),
                anchored_at_us: clock.anchored.as_ref().map(|a| a.1),
                watermark_us: clock.watermark,
            }),
            ack_latency: Some(v1::IngestAckLatency { messages: acks, p50_ms: p50, p99_ms: p99, max_ms: max }),
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
            resumed_from_checkpoint_us: self.resumed_from.lock().map(|r| *r).unwrap_or_default(),
            mqtt_connected: self.mqtt_connected.load(Ordering::Relaxed),
            sources,
        }
    }
}
