//! Committed raw records -> readings: the Sparkplug B session rules (births, deaths,
//! `seq` gaps, duplicates, plant epochs) and gRPC batches.
//!
//! Pure and deterministic: the decoder reads only the records it is given, in log order,
//! never the wall clock, so a restart rebuilds its state by decoding the log again.
//!
//! Rules (ARCHITECTURE.md, "Synchronisation"):
//! - An NBIRTH starts an edge node's session: its `bdSeq` and `Plant/Epoch` are kept and
//!   `seq` restarts at 0. Device messages before any birth of their node are not applied
//!   (`no_birth`) and a rebirth is asked for.
//! - `seq` must follow the previous one (mod 256) over NDATA, DBIRTH, DDATA, DDEATH. A
//!   message seen before (same node, bdSeq, seq and timestamp: an MQTT redelivery) is a
//!   duplicate and is applied once. Any other jump is a gap: counted, a rebirth is asked
//!   for (once until the next NBIRTH), and the message is still applied, since every
//!   message carries absolute values and its own timestamp.
//! - An NDEATH with the session's `bdSeq` makes every device of the node stale, a DDEATH
//!   its device; an NDEATH of an older session is ignored (`stale_death`).
//! - Station metrics: `State` (`down` breaks the station down, any other state repairs
//!   it), `Parts/In` + `Parts/Out` (counts, compared by the core), `Cycle/Duration` with
//!   the `Cycle/Product` after it (one cycle each). `Buffer/Level` is compared, not
//!   forced: kept as the plant's figure next to the model's (GetIngestStatus).
//! - Vehicle devices (`{fleet id}-{n}`, n = 1..=the fleet's size in the scene, as the
//!   plant names them): `State`, `Position/X`, `Position/Y` and `Battery` are kept as
//!   the plant's figures and shown, not forced (the model's AGVs keep their own
//!   dispatching); DBIRTH / DDEATH / NDEATH make them live / not live. Devices that are
//!   neither are counted as `unknown_device`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use prost::Message;
use serde::{Deserialize, Serialize};
use twin_core::time::Micros;
use twin_proto::sparkplug::{MessageKind, Metric, Payload, Topic, vocab};

use super::log::{Committed, RawRecord};
use super::reading::{Incoming, Origin, Reading, StationReading};
use super::status::{Reject, SourceKind, StationObserved, Status, VehicleObserved};

/// Recent (seq, timestamp) pairs kept per edge node to recognise redeliveries.
const RECENT: usize = 64;

/// The Sparkplug session of one edge node (kept in checkpoints: [`Sessions`]).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Node {
    bd_seq: Option<u64>,
    epoch_ms: Option<u64>,
    birth_timestamp: Option<u64>,
    last_seq: Option<u64>,
    recent: VecDeque<(u64, u64)>,
    devices: BTreeSet<String>,
    /// A rebirth was asked for and no NBIRTH came since.
    rebirth_pending: bool,
    /// Last known counters per device (a DDATA may carry only one of them).
    counts: BTreeMap<String, (u64, u64)>,
}

/// What decoding one record produced besides readings.
#[derive(Debug, Default)]
pub struct Decoded {
    pub items: Vec<Incoming>,
    /// Ask this edge node for a rebirth.
    pub rebirth: Option<String>,
    /// The source this record came from, its kind and the stations it reported.
    pub heard: Option<(String, SourceKind, Vec<String>)>,
    /// The source died (NDEATH); its stations are stale.
    pub died: Option<String>,
    /// An NBIRTH: the plant time of its timestamp (clock alignment).
    pub birth_at: Option<Micros>,
    /// The plant time the source's message was sent at (its payload timestamp; for a
    /// gRPC batch the latest of its messages): how far the source's clock has got, which
    /// the twin's clock must not pass while the source is live (the watermark).
    pub at: Option<Micros>,
}

/// Everything the decoder has learnt from the records it decoded, as of one raw record:
/// each edge node's Sparkplug session (bdSeq, `Plant/Epoch`, last `seq`, the recent
/// messages that recognise a redelivery, its live devices and their last counters, a
/// rebirth asked for) and the plant's figures it kept (buffer levels, vehicles). A live
/// checkpoint records it ([`crate::store::checkpoints::TelemetryPlace::sessions`]), so a
/// restart whose log was pruned below the births carries the sessions on instead of
/// asking every node for a rebirth.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Sessions {
    /// The raw record these sessions include (every record up to it decoded).
    pub through: u64,
    /// Per edge node id.
    pub nodes: BTreeMap<String, Node>,
    /// The plant's figures per station (GetIngestStatus `observed_stations`).
    pub stations: BTreeMap<String, StationObserved>,
    /// The plant's figures per vehicle (GetIngestStatus `observed_vehicles`).
    pub vehicles: BTreeMap<String, VehicleObserved>,
}

/// The decoder's state: every edge node's session and the scene's station ids.
pub struct Decoder {
    group: String,
    stations: BTreeSet<String>,
    vehicles: BTreeSet<String>,
    /// Where plant figures (buffer levels, vehicles) go; also while a restart decodes
    /// the log again, since they are state, not counters.
    observed: Option<Arc<Status>>,
    nodes: BTreeMap<String, Node>,
    /// Counts and logs while live; None while a restart decodes the log again.
    status: Option<Arc<Status>>,
}

/// The Sparkplug device ids of a model's AGVs: `{fleet id}-{n}`, n = 1..=the fleet's
/// size, the names `twin plant` publishes them under.
pub fn vehicle_ids(model: &twin_core::Model) -> Vec<String> {
    model.fleets.iter().flat_map(|f| (1..=f.count).map(move |n| format!("{}-{n}", f.id))).collect()
}

/// Plant time (ms since the Unix epoch) as simulation time, given the plant epoch.
pub fn sim_time(timestamp_ms: u64, epoch_ms: u64) -> Micros {
    timestamp_ms.saturating_sub(epoch_ms).saturating_mul(1000)
}

impl Decoder {
    /// A decoder for Sparkplug group `group` and the scene's `stations`.
    pub fn new(group: &str, stations: impl IntoIterator<Item = String>) -> Decoder {
        Decoder {
            group: group.to_owned(),
            stations: stations.into_iter().collect(),
            vehicles: BTreeSet::new(),
            observed: None,
            nodes: BTreeMap::new(),
            status: None,
        }
    }

    /// Also knows these vehicle devices ([`vehicle_ids`]).
    pub fn with_vehicles(mut self, vehicles: impl IntoIterator<Item = String>) -> Decoder {
        self.vehicles = vehicles.into_iter().collect();
        self
    }

    /// Keeps the plant's figures in `status` (from the first record on).
    pub fn observe_into(&mut self, status: Arc<Status>) {
        self.observed = Some(status);
    }

    /// From now on, count into `status` (before: a restart re-decoding the log).
    pub fn count_into(&mut self, status: Arc<Status>) {
        self.status = Some(status);
    }

    fn reject(&self, reason: Reject, what: &str) {
        if let Some(s) = &self.status {
            s.reject(reason, what);
        }
    }

    fn count(&self, f: impl Fn(&Status) -> &std::sync::atomic::AtomicU64) {
        if let Some(s) = &self.status {
            s.count(f(s), 1);
        }
    }

    /// The sessions and kept figures after decoding every record through raw record
    /// `through` (the caller's word: the decoder does not count records).
    pub fn sessions(&self, through: u64) -> Sessions {
        let (stations, vehicles) = self.observed.as_ref().map(|o| o.observed()).unwrap_or_default();
        Sessions { through, nodes: self.nodes.clone(), stations, vehicles }
    }

    /// Goes on from `sessions` (a checkpoint's), as if it had decoded the records they
    /// include; the kept figures go to the status given to [`Decoder::observe_into`].
    pub fn restore(&mut self, sessions: Sessions) {
        if let Some(o) = &self.observed {
            o.restore_observed(sessions.stations, sessions.vehicles);
        }
        self.nodes = sessions.nodes;
    }

    /// The Sparkplug source id of an edge node.
    pub fn source_id(&self, edge_node: &str) -> String {
        format!("{}/{edge_node}", self.group)
    }

    /// Decodes one committed record.
    pub fn decode(&mut self, committed: &Committed) -> Decoded {
        match &committed.record {
            RawRecord::Mqtt { topic, payload, .. } => self.mqtt(committed.seq, topic, payload),
            RawRecord::Grpc { source, epoch_unix_ms, messages, .. } => {
                let mut out = Decoded::default();
                let mut stations = Vec::new();
                for (i, m) in messages.iter().enumerate() {
                    if !stations.contains(&m.station) {
                        stations.push(m.station.clone());
                    }
                    out.items.push(Incoming {
                        origin: Origin::Raw { seq: committed.seq, part: i as u32 },
                        at: Some(sim_time(m.timestamp_unix_ms, *epoch_unix_ms)),
                        readings: vec![StationReading {
                            station: m.station.clone(),
                            reading: m.reading.clone(),
                        }],
                    });
                }
                out.heard = Some((source.clone(), SourceKind::Grpc, stations));
                out.at = out.items.iter().filter_map(|i| i.at).max();
                out
            }
        }
    }

    fn mqtt(&mut self, seq: u64, topic: &str, bytes: &[u8]) -> Decoded {
        let mut out = Decoded::default();
        let topic = match Topic::parse(topic) {
            Ok(t) if t.group == self.group => t,
            Ok(t) => {
                self.reject(Reject::BadTopic, &format!("group {} is not {}", t.group, self.group));
                return out;
            }
            Err(e) => {
                self.reject(Reject::BadTopic, &format!("{topic}: {e}"));
                return out;
            }
        };
        let payload = match Payload::decode(bytes) {
            Ok(p) => p,
            Err(e) => {
                self.reject(Reject::Malformed, &format!("{topic}: payload does not decode: {e}"));
                return out;
            }
        };
        let origin = Origin::Raw { seq, part: 0 };
        let source = self.source_id(&topic.edge_node);
        match topic.kind {
            MessageKind::NBirth => self.nbirth(&topic, &payload, &source, &mut out),
            MessageKind::NDeath => {
                let node = self.nodes.entry(topic.edge_node.clone()).or_default();
                let bd = payload.metric(vocab::BD_SEQ).and_then(Metric::as_u64);
                if bd.is_none() || bd != node.bd_seq {
                    let what = format!("{topic}: bdSeq {bd:?}, session {:?}", node.bd_seq);
                    self.reject(Reject::StaleDeath, &what);
                    return out;
                }
                let readings: Vec<StationReading> = node
                    .devices
                    .iter()
                    .map(|d| StationReading { station: d.clone(), reading: Reading::Stale })
                    .collect();
                node.last_seq = None;
                out.items.push(Incoming { origin, at: None, readings });
                if let Some(o) = &self.observed {
                    o.vehicles_dead(&source);
                }
                out.died = Some(source);
            }
            MessageKind::NData | MessageKind::DBirth | MessageKind::DData | MessageKind::DDeath => {
                self.device_message(&topic, &payload, origin, &source, &mut out);
            }
            MessageKind::NCmd | MessageKind::DCmd | MessageKind::State => {}
        }
        out
    }

    fn nbirth(&mut self, topic: &Topic, payload: &Payload, source: &str, out: &mut Decoded) {
        let bd = payload.metric(vocab::BD_SEQ).and_then(Metric::as_u64);
        let epoch = payload.metric(vocab::PLANT_EPOCH).and_then(Metric::as_u64);
        let (Some(bd), Some(epoch)) = (bd, epoch) else {
            self.reject(Reject::Malformed, &format!("{topic}: NBIRTH without bdSeq or Plant/Epoch"));
            return;
        };
        let node = self.nodes.entry(topic.edge_node.clone()).or_default();
        if node.bd_seq == Some(bd) && node.birth_timestamp == payload.timestamp && payload.timestamp.is_some()
        {
            self.count(|s| &s.duplicates);
            return;
        }
        *node = Node {
            bd_seq: Some(bd),
            epoch_ms: Some(epoch),
            birth_timestamp: payload.timestamp,
            last_seq: Some(payload.seq.unwrap_or(0)),
            ..Node::default()
        };
        out.heard = Some((source.to_owned(), SourceKind::Mqtt, Vec::new()));
        out.birth_at = payload.timestamp.map(|t| sim_time(t, epoch));
        out.at = out.birth_at;
    }

    fn device_message(
        &mut self,
        topic: &Topic,
        payload: &Payload,
        origin: Origin,
        source: &str,
        out: &mut Decoded,
    ) {
        let group_source = source.to_owned();
        let Some(node) = self.nodes.get_mut(&topic.edge_node).filter(|n| n.epoch_ms.is_some()) else {
            self.reject(Reject::NoBirth, &format!("{topic}: no NBIRTH seen for this edge node"));
            let node = self.nodes.entry(topic.edge_node.clone()).or_default();
            if !node.rebirth_pending {
                node.rebirth_pending = true;
                out.rebirth = Some(topic.edge_node.clone());
            }
            return;
        };
        let Some(seq) = payload.seq else {
            self.reject(Reject::Malformed, &format!("{topic}: no seq"));
            return;
        };
        let timestamp = payload.timestamp.unwrap_or(0);
        if node.recent.contains(&(seq, timestamp)) {
            if let Some(s) = &self.status {
                s.count(&s.duplicates, 1);
            }
            return;
        }
        let expected = node.last_seq.map(vocab::next_seq);
        let mut gap = false;
        if seq > 255 || expected.is_some_and(|e| e != seq) {
            gap = true;
            if !node.rebirth_pending {
                node.rebirth_pending = true;
                out.rebirth = Some(topic.edge_node.clone());
            }
        }
        node.last_seq = Some(seq);
        if node.recent.len() == RECENT {
            node.recent.pop_front();
        }
        node.recent.push_back((seq, timestamp));
        let epoch = node.epoch_ms.unwrap_or(0);
        let at = payload.timestamp.map(|t| sim_time(t, epoch));
        out.at = at;
        if gap {
            let what = format!("{topic}: seq {seq}, expected {expected:?}");
            if let Some(s) = &self.status {
                s.count(&s.sequence_gaps, 1);
                tracing::info!(what, "Sparkplug seq gap: asking for a rebirth");
            }
        }
        let Some(device) = topic.device.clone() else {
            // NDATA: node metrics only; nothing to apply.
            out.heard = Some((group_source, SourceKind::Mqtt, Vec::new()));
            return;
        };
        if self.vehicles.contains(&device) {
            self.vehicle_message(topic, payload, at, &device, &group_source);
            out.heard = Some((group_source, SourceKind::Mqtt, Vec::new()));
            return;
        }
        if !self.stations.contains(&device) {
            self.reject(
                Reject::UnknownDevice,
                &format!("{topic}: no station or vehicle `{device}` in the scene"),
            );
            return;
        }
        let node = self.nodes.get_mut(&topic.edge_node).expect("looked up above");
        let mut readings = Vec::new();
        let mut unknown = Vec::new();
        match topic.kind {
            MessageKind::DDeath => {
                node.devices.remove(&device);
                readings.push(StationReading { station: device.clone(), reading: Reading::Stale });
            }
            _ => {
                if topic.kind == MessageKind::DBirth {
                    node.devices.insert(device.clone());
                    readings.push(StationReading { station: device.clone(), reading: Reading::Live });
                }
                let last = node.counts.get(&device).copied();
                let m = station_metrics(&device, payload, last);
                readings.extend(m.readings);
                unknown = m.bad;
                if let Some(c) = m.counts {
                    node.counts.insert(device.clone(), c);
                }
                if let (Some(level), Some(o)) = (m.buffer, &self.observed) {
                    o.observe_buffer(&device, level, at.unwrap_or(0));
                }
            }
        }
        for what in unknown {
            self.reject(Reject::UnknownMetric, &format!("{topic}: {what}"));
        }
        if topic.kind == MessageKind::DDeath {
            out.heard = None;
        } else {
            out.heard = Some((group_source, SourceKind::Mqtt, vec![device]));
        }
        out.items.push(Incoming { origin, at, readings });
    }
}

impl Decoder {
    /// A vehicle device's birth, data or death: its figures are kept, not applied.
    fn vehicle_message(
        &self,
        topic: &Topic,
        payload: &Payload,
        at: Option<Micros>,
        device: &str,
        source: &str,
    ) {
        let mut bad = Vec::new();
        if let Some(o) = &self.observed {
            o.observe_vehicle(device, |v| {
                v.source = source.to_owned();
                v.live = topic.kind != MessageKind::DDeath;
                v.at = v.at.max(at.unwrap_or(0));
                for m in &payload.metrics {
                    let name = m.name.as_deref().unwrap_or("");
                    match name {
                        vocab::VEHICLE_STATE => match m.as_str() {
                            Some(s) if vocab::VEHICLE_STATES.contains(&s) => v.state = Some(s.to_owned()),
                            other => bad.push(format!("State {other:?} is not a vehicle state")),
                        },
                        vocab::POSITION_X | vocab::POSITION_Y | vocab::BATTERY => match m.as_f64() {
                            Some(x) if x.is_finite() => match name {
                                vocab::POSITION_X => v.x = Some(x),
                                vocab::POSITION_Y => v.y = Some(x),
                                _ => v.battery = Some(x),
                            },
                            _ => bad.push(format!("{name} is not a finite number")),
                        },
                        other => bad.push(format!("unknown vehicle metric `{other}`")),
                    }
                }
            });
        }
        for what in bad {
            self.reject(Reject::UnknownMetric, &format!("{topic}: {what}"));
        }
    }
}

/// What a station device's metrics say.
struct StationMetrics {
    readings: Vec<StationReading>,
    /// The new counters.
    counts: Option<(u64, u64)>,
    /// `Buffer/Level` (compared, not applied).
    buffer: Option<u32>,
    /// Metrics that were not understood.
    bad: Vec<String>,
}

/// The readings of a station device's metrics.
fn station_metrics(device: &str, payload: &Payload, last_counts: Option<(u64, u64)>) -> StationMetrics {
    let mut buffer = None;
    let mut readings = Vec::new();
    let mut bad = Vec::new();
    let (mut parts_in, mut parts_out) = (None, None);
    let mut pending_cycle: Option<usize> = None;
    let reading = |r: Reading| StationReading { station: device.to_owned(), reading: r };
    for m in &payload.metrics {
        let name = m.name.as_deref().unwrap_or("");
        if m.is_null == Some(true) && [vocab::CYCLE_DURATION, vocab::CYCLE_PRODUCT].contains(&name) {
            // A birth declares the cycle metrics without a value until a cycle completes.
            continue;
        }
        match name {
            vocab::STATE => match m.as_str() {
                Some(vocab::STATE_DOWN) => readings.push(reading(Reading::State { down: true })),
                Some(s) if vocab::STATION_STATES.contains(&s) => {
                    readings.push(reading(Reading::State { down: false }))
                }
                other => bad.push(format!("State {other:?} is not a station state")),
            },
            vocab::PARTS_IN => match m.as_u64() {
                Some(v) => parts_in = Some(v),
                None => bad.push("Parts/In is not an unsigned integer".into()),
            },
            vocab::PARTS_OUT => match m.as_u64() {
                Some(v) => parts_out = Some(v),
                None => bad.push("Parts/Out is not an unsigned integer".into()),
            },
            // Any unsigned duration is well formed (the core judges its value).
            vocab::CYCLE_DURATION => match m.as_u64() {
                Some(v) => {
                    pending_cycle = Some(readings.len());
                    readings.push(reading(Reading::Cycle { duration: v, product: None }));
                }
                None => bad.push("Cycle/Duration is not an unsigned integer".into()),
            },
            vocab::CYCLE_PRODUCT => match (pending_cycle.take(), m.as_str()) {
                (Some(i), Some(p)) => {
                    if let Reading::Cycle { product, .. } = &mut readings[i].reading {
                        *product = Some(p.to_owned());
                    }
                }
                _ => bad.push("Cycle/Product without a Cycle/Duration before it".into()),
            },
            vocab::BUFFER_LEVEL => match m.as_u64().and_then(|v| u32::try_from(v).ok()) {
                Some(v) => buffer = Some(v),
                None => bad.push("Buffer/Level is not an unsigned 32-bit integer".into()),
            },
            other => bad.push(format!("unknown metric `{other}`")),
        }
    }
    let counts = match (parts_in, parts_out, last_counts) {
        (None, None, _) => None,
        (Some(i), Some(o), _) => Some((i, o)),
        (Some(i), None, last) => Some((i, last.map_or(0, |l| l.1))),
        (None, Some(o), last) => Some((last.map_or(0, |l| l.0), o)),
    };
    if let Some((parts_in, parts_out)) = counts {
        readings.push(reading(Reading::Counts { parts_in, parts_out }));
    }
    StationMetrics { readings, counts, buffer, bad }
}

#[cfg(test)]
mod tests {
    use super::*;
    use twin_proto::sparkplug::Metric;

    fn record(seq: u64, topic: &str, payload: &Payload) -> Committed {
        Committed {
            seq,
            record: RawRecord::Mqtt {
                topic: topic.into(),
                payload: payload.encode_to_vec(),
                received_unix_ms: 0,
            },
            permit: None,
        }
    }

    fn ddata(seq: u64, ts: u64, state: &str) -> Payload {
        Payload {
            timestamp: Some(ts),
            seq: Some(seq),
            metrics: vec![Metric::string("State", state)],
            ..Default::default()
        }
    }

    #[test]
    fn sessions_gaps_duplicates_and_deaths() {
        let mut d = Decoder::new("g", ["m1".to_string()]);
        let status = Arc::new(Status::default());
        d.count_into(Arc::clone(&status));
        // Data before birth: not applied, rebirth asked for once.
        let out = d.decode(&record(1, "spBv1.0/g/DDATA/f1/m1", &ddata(1, 1_000, "down")));
        assert!(out.items.is_empty());
        assert_eq!(out.rebirth.as_deref(), Some("f1"));
        assert_eq!(status.rejected(Reject::NoBirth), 1);
        let birth = Payload {
            timestamp: Some(1_000),
            seq: Some(0),
            metrics: vec![Metric::uint64("bdSeq", 3), Metric::uint64("Plant/Epoch", 1_000)],
            ..Default::default()
        };
        let out = d.decode(&record(2, "spBv1.0/g/NBIRTH/f1", &birth));
        assert!(out.items.is_empty() && out.rebirth.is_none());
        let dbirth = Payload {
            timestamp: Some(1_500),
            seq: Some(1),
            metrics: vec![Metric::string("State", "busy")],
            ..Default::default()
        };
        let out = d.decode(&record(3, "spBv1.0/g/DBIRTH/f1/m1", &dbirth));
        assert_eq!(out.items[0].at, Some(500_000));
        assert_eq!(
            out.items[0].readings.iter().map(|r| r.reading.clone()).collect::<Vec<_>>(),
            [Reading::Live, Reading::State { down: false }]
        );
        let down = ddata(2, 2_000, "down");
        let out = d.decode(&record(4, "spBv1.0/g/DDATA/f1/m1", &down));
        assert_eq!(out.items[0].readings[0].reading, Reading::State { down: true });
        // A redelivery of the same message is a duplicate.
        let out = d.decode(&record(5, "spBv1.0/g/DDATA/f1/m1", &down));
        assert!(out.items.is_empty());
        assert_eq!(status.duplicates.load(std::sync::atomic::Ordering::Relaxed), 1);
        // A gap: counted, rebirth asked for, data still applied.
        let out = d.decode(&record(6, "spBv1.0/g/DDATA/f1/m1", &ddata(9, 3_000, "busy")));
        assert_eq!(out.rebirth.as_deref(), Some("f1"));
        assert_eq!(out.items.len(), 1);
        assert_eq!(status.sequence_gaps.load(std::sync::atomic::Ordering::Relaxed), 1);
        // Malformed payloads and unknown devices are counted.
        let bad = Committed {
            seq: 7,
            record: RawRecord::Mqtt {
                topic: "spBv1.0/g/DDATA/f1/m1".into(),
                payload: vec![0xff, 0xff, 0xff],
                received_unix_ms: 0,
            },
            permit: None,
        };
        assert!(d.decode(&bad).items.is_empty());
        assert_eq!(status.rejected(Reject::Malformed), 1);
        assert!(d.decode(&record(8, "spBv1.0/g/DDATA/f1/zz", &ddata(10, 3_100, "busy"))).items.is_empty());
        assert_eq!(status.rejected(Reject::UnknownDevice), 1);
        // A death of an older session is ignored; the current one makes devices stale.
        let old = Payload { metrics: vec![Metric::uint64("bdSeq", 2)], ..Default::default() };
        assert!(d.decode(&record(9, "spBv1.0/g/NDEATH/f1", &old)).items.is_empty());
        let death = Payload { metrics: vec![Metric::uint64("bdSeq", 3)], ..Default::default() };
        let out = d.decode(&record(10, "spBv1.0/g/NDEATH/f1", &death));
        assert_eq!(out.items[0].readings, [StationReading { station: "m1".into(), reading: Reading::Stale }]);
        assert_eq!(out.items[0].at, None);
    }

    /// A decoder restored from another's sessions (a checkpoint's, the log pruned) goes
    /// on with the node's next seq without a gap or a rebirth, and still recognises a
    /// redelivery of a message decoded before.
    #[test]
    fn restored_sessions_carry_on_without_a_rebirth() {
        let status = Arc::new(Status::default());
        let mut d = Decoder::new("g", ["m1".to_string()]);
        d.observe_into(Arc::clone(&status));
        let birth = Payload {
            timestamp: Some(1_000),
            seq: Some(0),
            metrics: vec![Metric::uint64("bdSeq", 4), Metric::uint64("Plant/Epoch", 1_000)],
            ..Default::default()
        };
        d.decode(&record(1, "spBv1.0/g/NBIRTH/f1", &birth));
        let level = Payload {
            timestamp: Some(1_200),
            seq: Some(1),
            metrics: vec![Metric::string("State", "busy"), Metric::uint32("Buffer/Level", 5)],
            ..Default::default()
        };
        d.decode(&record(2, "spBv1.0/g/DBIRTH/f1/m1", &level));
        let sent = ddata(2, 2_000, "down");
        d.decode(&record(3, "spBv1.0/g/DDATA/f1/m1", &sent));
        let sessions = d.sessions(3);
        let bytes = postcard::to_allocvec(&sessions).expect("serialises");
        let back: Sessions = postcard::from_bytes(&bytes).expect("deserialises");
        assert_eq!(back, sessions);

        let fresh = Arc::new(Status::default());
        let mut r = Decoder::new("g", ["m1".to_string()]);
        r.observe_into(Arc::clone(&fresh));
        r.restore(back);
        r.count_into(Arc::clone(&fresh));
        assert_eq!(fresh.buffer_level("m1"), Some(5), "kept figures restored");
        let out = r.decode(&record(4, "spBv1.0/g/DDATA/f1/m1", &sent));
        assert!(out.items.is_empty(), "a redelivery is still a duplicate");
        let out = r.decode(&record(5, "spBv1.0/g/DDATA/f1/m1", &ddata(3, 3_000, "busy")));
        assert_eq!(out.rebirth, None);
        assert_eq!(out.items[0].at, Some(2_000_000), "the session's Plant/Epoch");
        assert_eq!(
            (
                fresh.duplicates.load(std::sync::atomic::Ordering::Relaxed),
                fresh.sequence_gaps.load(std::sync::atomic::Ordering::Relaxed),
                fresh.rejected(Reject::NoBirth)
            ),
            (1, 0, 0)
        );
        // The session's death still matches its bdSeq: its device goes stale.
        let death = Payload { metrics: vec![Metric::uint64("bdSeq", 4)], ..Default::default() };
        let out = r.decode(&record(6, "spBv1.0/g/NDEATH/f1", &death));
        assert_eq!(out.items[0].readings, [StationReading { station: "m1".into(), reading: Reading::Stale }]);
    }

    #[test]
    fn cycles_pair_with_products_and_counts_keep_the_other_counter() {
        let p = Payload {
            timestamp: Some(0),
            seq: Some(0),
            metrics: vec![
                Metric::uint64("Cycle/Duration", 10),
                Metric::string("Cycle/Product", "A"),
                Metric::uint64("Cycle/Duration", 20),
                Metric::uint64("Parts/Out", 7),
                Metric::uint32("Buffer/Level", 3),
                Metric::uint64("Mystery", 1),
            ],
            ..Default::default()
        };
        let StationMetrics { readings, counts, buffer, bad } = station_metrics("m", &p, Some((9, 6)));
        assert_eq!(buffer, Some(3));
        let r: Vec<Reading> = readings.into_iter().map(|r| r.reading).collect();
        assert_eq!(
            r,
            [
                Reading::Cycle { duration: 10, product: Some("A".into()) },
                Reading::Cycle { duration: 20, product: None },
                Reading::Counts { parts_in: 9, parts_out: 7 },
            ]
        );
        assert_eq!(counts, Some((9, 7)));
        assert_eq!(bad, ["unknown metric `Mystery`"]);
    }

    #[test]
    fn vehicles_and_buffer_levels_are_kept_not_applied() {
        let status = Arc::new(Status::default());
        let mut d = Decoder::new("g", ["m1".to_string()]).with_vehicles(["agv-1".to_string()]);
        d.count_into(Arc::clone(&status));
        d.observe_into(Arc::clone(&status));
        let birth = Payload {
            timestamp: Some(1_000),
            seq: Some(0),
            metrics: vec![Metric::uint64("bdSeq", 0), Metric::uint64("Plant/Epoch", 1_000)],
            ..Default::default()
        };
        assert_eq!(d.decode(&record(1, "spBv1.0/g/NBIRTH/f1", &birth)).birth_at, Some(0));
        let agv = Payload {
            timestamp: Some(3_000),
            seq: Some(1),
            metrics: vec![
                Metric::string("State", "charging"),
                Metric::double("Position/X", 12.5),
                Metric::double("Position/Y", -3.0),
                Metric::double("Battery", 0.4),
            ],
            ..Default::default()
        };
        let out = d.decode(&record(2, "spBv1.0/g/DBIRTH/f1/agv-1", &agv));
        assert!(out.items.is_empty(), "not applied to the core");
        assert!(out.heard.is_some(), "the source is live");
        let v = status.vehicle("agv-1").expect("kept");
        assert_eq!(
            (v.state.as_deref(), v.x, v.y, v.battery, v.at, v.live),
            (Some("charging"), Some(12.5), Some(-3.0), Some(0.4), 2_000_000, true)
        );
        let station = Payload {
            timestamp: Some(4_000),
            seq: Some(2),
            metrics: vec![Metric::uint32("Buffer/Level", 7)],
            ..Default::default()
        };
        d.decode(&record(3, "spBv1.0/g/DDATA/f1/m1", &station));
        assert_eq!(status.buffer_level("m1"), Some(7));
        let death = Payload { timestamp: Some(5_000), seq: Some(3), ..Default::default() };
        d.decode(&record(4, "spBv1.0/g/DDEATH/f1/agv-1", &death));
        assert!(!status.vehicle("agv-1").expect("kept").live);
        let other = Payload { timestamp: Some(5_000), seq: Some(4), ..Default::default() };
        d.decode(&record(5, "spBv1.0/g/DDATA/f1/agv-2", &other));
        assert_eq!(status.rejected(Reject::UnknownDevice), 1, "not a vehicle of the scene");
        assert_eq!(status.rejected(Reject::UnknownMetric), 0);
    }
}
