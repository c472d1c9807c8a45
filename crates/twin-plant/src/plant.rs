//! The emulated plant as a pure, deterministic generator of Sparkplug B traffic: a
//! running simulation of the (drifted) scene, split into edge nodes (one per factory)
//! and devices (one per station and per AGV), turned into the NBIRTH / DBIRTH / DDATA /
//! NDEATH messages their gateways would publish, plus the session changes (connect with
//! a Last Will, disconnect) the MQTT layer has to carry out.
//!
//! No broker, no clock: the same model, seed, drift and options give the same sequence
//! of [`Output`]s for the same calls, byte for byte.

use std::collections::VecDeque;
use std::sync::Arc;

use prost::Message as _;
use twin_core::model::StationIdx;
use twin_core::sim::agv::{VehicleState, VehicleView};
use twin_core::sim::flow::CycleRecord;
use twin_core::time::Micros;
use twin_core::{Command, Model, Sim, StationState, StationView};
use twin_proto::sparkplug::{MessageKind, Metric, Payload, Topic, datatype, vocab};

use crate::drift::{Drift, SITE_NODE};

/// What the plant is told besides the model.
#[derive(Clone, Debug)]
pub struct PlantOptions {
    /// Sparkplug group id.
    pub group: String,
    /// `Plant/Epoch`: ms since the Unix epoch of plant time 0.
    pub epoch_ms: u64,
}

/// One Sparkplug message.
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    pub topic: Topic,
    pub payload: Payload,
}

impl Message {
    /// The payload's protobuf bytes.
    pub fn encode(&self) -> Vec<u8> {
        self.payload.encode_to_vec()
    }
}

/// What the MQTT layer does next, in order.
#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    /// Open edge node `node`'s MQTT session (clean session) with `will`, its NDEATH, as
    /// the Last Will; subscribe to its NCMD topic before anything is published.
    Connect { node: usize, will: Message },
    /// Publish on edge node `node`'s session (QoS 1, not retained).
    Publish { node: usize, message: Message },
    /// Close edge node `node`'s session cleanly; its NDEATH was published just before.
    Disconnect { node: usize },
}

/// A station's sampled metrics, as last published.
#[derive(Clone, Copy, Debug, PartialEq)]
struct StationSample {
    state: &'static str,
    parts_in: u64,
    parts_out: u64,
    buffer: u32,
}

/// A vehicle's sampled metrics, as last published.
#[derive(Clone, Copy, Debug, PartialEq)]
struct VehicleSample {
    state: &'static str,
    x: f64,
    y: f64,
    battery: f64,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Sample {
    Station(StationSample),
    Vehicle(VehicleSample),
}

struct Views {
    stations: Vec<StationView>,
    vehicles: Vec<VehicleView>,
}

#[derive(Clone, Copy, Debug)]
enum DeviceKind {
    Station(StationIdx),
    /// Index into `Sim::vehicle_views`.
    Vehicle(usize),
}

#[derive(Clone, Debug)]
struct Device {
    id: String,
    kind: DeviceKind,
    last: Option<Sample>,
    /// In a drift device outage until this plant time (DDEATH published, no data).
    dead_until: Option<Micros>,
    /// Device outages `(from, until)` not yet begun, in time order.
    outages: VecDeque<(Micros, Micros)>,
}

/// Why a node is not publishing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Offline {
    /// Its drift outage runs until this plant time.
    Outage(Micros),
    /// Its MQTT session was lost; the runner reconnects it.
    Lost,
    /// Stopped for good.
    Stopped,
}

#[derive(Clone, Debug)]
struct Node {
    id: String,
    devices: Vec<Device>,
    /// The seq of the next message (0..=255).
    seq: u64,
    /// bdSeq of the current (or last) session.
    bd_seq: u64,
    offline: Option<Offline>,
    /// Outages `(from, until)` not yet begun, in time order.
    outages: VecDeque<(Micros, Micros)>,
}

/// Counts of what was generated, for the summary line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub births: u64,
    pub data: u64,
    pub deaths: u64,
    pub cycles: u64,
    /// Cycles not reported because their gateway was dead.
    pub cycles_lost: u64,
}

/// The emulated plant. See the module docs.
pub struct Plant {
    sim: Sim,
    options: PlantOptions,
    nodes: Vec<Node>,
    /// `(node, device)` of each station.
    station_device: Vec<(usize, usize)>,
    breakdowns: VecDeque<(Micros, String, Micros)>,
    cycles: Vec<CycleRecord>,
    counts: Counts,
}

/// The `State` string of a station state.
pub fn station_state(state: StationState) -> &'static str {
    match state {
        StationState::Busy => vocab::STATE_BUSY,
        StationState::Setup => vocab::STATE_SETUP,
        StationState::Starved => vocab::STATE_STARVED,
        StationState::Blocked => vocab::STATE_BLOCKED,
        StationState::Down => vocab::STATE_DOWN,
        StationState::OffShift => vocab::STATE_OFF_SHIFT,
    }
}

/// The `State` string of a vehicle state.
pub fn vehicle_state(state: VehicleState) -> &'static str {
    match state {
        VehicleState::Idle => vocab::VEHICLE_IDLE,
        VehicleState::TravellingEmpty => vocab::VEHICLE_TRAVELLING_EMPTY,
        VehicleState::TravellingLoaded => vocab::VEHICLE_TRAVELLING_LOADED,
        VehicleState::Handling => vocab::VEHICLE_HANDLING,
        VehicleState::WaitingTraffic => vocab::VEHICLE_WAITING_TRAFFIC,
        VehicleState::Charging => vocab::VEHICLE_CHARGING,
    }
}

impl Plant {
    /// A plant running `model` (the scene with the drift already applied, see
    /// [`Drift::apply`]) from time zero with `seed`, with the drift's timed events.
    pub fn new(model: Arc<Model>, seed: u64, drift: &Drift, options: PlantOptions) -> Plant {
        let mut sim = Sim::new(Arc::clone(&model), seed);
        sim.record_cycles(true);
        let mut nodes: Vec<Node> = model
            .factories
            .iter()
            .map(|f| Node {
                id: f.id.clone(),
                devices: Vec::new(),
                seq: 0,
                bd_seq: 0,
                offline: None,
                outages: VecDeque::new(),
            })
            .collect();
        let node_of = |factory: Option<u32>, nodes: &mut Vec<Node>| -> usize {
            if let Some(f) = factory {
                return f as usize;
            }
            if let Some(i) = nodes.iter().position(|n| n.id == SITE_NODE) {
                return i;
            }
            nodes.push(Node {
                id: SITE_NODE.to_owned(),
                devices: Vec::new(),
                seq: 0,
                bd_seq: 0,
                offline: None,
                outages: VecDeque::new(),
            });
            nodes.len() - 1
        };
        let mut station_device = Vec::with_capacity(model.stations.len());
        for (i, s) in model.stations.iter().enumerate() {
            let n = node_of(s.factory, &mut nodes);
            station_device.push((n, nodes[n].devices.len()));
            nodes[n].devices.push(Device {
                id: s.id.clone(),
                kind: DeviceKind::Station(i as StationIdx),
                last: None,
                dead_until: None,
                outages: VecDeque::new(),
            });
        }
        let mut per_fleet = vec![0u32; model.fleets.len()];
        let views: Vec<VehicleView> = sim.vehicle_views().collect();
        for (i, v) in views.iter().enumerate() {
            let fleet = &model.fleets[v.fleet as usize];
            per_fleet[v.fleet as usize] += 1;
            let n = node_of(fleet.factory, &mut nodes);
            let id = format!("{}-{}", fleet.id, per_fleet[v.fleet as usize]);
            nodes[n].devices.push(Device {
                id,
                kind: DeviceKind::Vehicle(i),
                last: None,
                dead_until: None,
                outages: VecDeque::new(),
            });
        }
        for (from, until, station) in drift.device_outages() {
            if let Some(s) = model.station(&station) {
                let (n, d) = station_device[s as usize];
                nodes[n].devices[d].outages.push_back((from, until));
            }
        }
        for (from, until, factory) in drift.outages() {
            if let Some(n) = nodes.iter_mut().find(|n| n.id == factory) {
                n.outages.push_back((from, until));
            }
        }
        Plant {
            sim,
            options,
            nodes,
            station_device,
            breakdowns: drift.breakdowns().into(),
            cycles: Vec::new(),
            counts: Counts::default(),
        }
    }

    /// Plant time now.
    pub fn now(&self) -> Micros {
        self.sim.now()
    }

    /// The edge node ids, by node index.
    pub fn node_ids(&self) -> Vec<&str> {
        self.nodes.iter().map(|n| n.id.as_str()).collect()
    }

    /// The device ids of edge node `node`.
    pub fn device_ids(&self, node: usize) -> Vec<&str> {
        self.nodes[node].devices.iter().map(|d| d.id.as_str()).collect()
    }

    /// The group id.
    pub fn group(&self) -> &str {
        &self.options.group
    }

    /// What was generated so far.
    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// The simulation (read only), for tests and summaries.
    pub fn sim(&self) -> &Sim {
        &self.sim
    }

    fn ms(&self, t: Micros) -> u64 {
        vocab::timestamp_ms(self.options.epoch_ms, t)
    }

    fn topic(&self, node: usize, kind: MessageKind, device: Option<&str>) -> Topic {
        let n = &self.nodes[node];
        match device {
            Some(d) => Topic::device(&self.options.group, kind, &n.id, d),
            None => Topic::node(&self.options.group, kind, &n.id),
        }
    }

    /// The node's NDEATH now.
    fn death(&self, node: usize) -> Message {
        Message {
            topic: self.topic(node, MessageKind::NDeath, None),
            payload: Payload {
                timestamp: Some(self.ms(self.now())),
                metrics: vec![Metric::uint64(vocab::BD_SEQ, self.nodes[node].bd_seq)],
                ..Default::default()
            },
        }
    }

    fn next_seq(&mut self, node: usize) -> u64 {
        let n = &mut self.nodes[node];
        let seq = n.seq;
        n.seq = vocab::next_seq(seq);
        seq
    }

    /// Every edge node connects and publishes its births.
    pub fn start(&mut self) -> Vec<Output> {
        let mut out = Vec::new();
        for node in 0..self.nodes.len() {
            self.connect(node, &mut out);
        }
        out
    }

    fn connect(&mut self, node: usize, out: &mut Vec<Output>) {
        self.nodes[node].offline = None;
        out.push(Output::Connect { node, will: self.death(node) });
        self.births(node, out);
    }

    /// NBIRTH (seq 0) and every DBIRTH of `node`, with the current values.
    fn births(&mut self, node: usize, out: &mut Vec<Output>) {
        let now = self.ms(self.now());
        self.nodes[node].seq = 0;
        let seq = self.next_seq(node);
        let nbirth = Payload {
            timestamp: Some(now),
            seq: Some(seq),
            metrics: vec![
                Metric::uint64(vocab::BD_SEQ, self.nodes[node].bd_seq).at(now),
                Metric::boolean(vocab::REBIRTH, false).at(now),
                Metric::uint64(vocab::PLANT_EPOCH, self.options.epoch_ms).at(now),
            ],
            ..Default::default()
        };
        out.push(Output::Publish {
            node,
            message: Message { topic: self.topic(node, MessageKind::NBirth, None), payload: nbirth },
        });
        self.counts.births += 1;
        let views = self.views();
        for d in 0..self.nodes[node].devices.len() {
            if self.nodes[node].devices[d].dead_until.is_some() {
                continue;
            }
            self.device_birth(node, d, &views, now, out);
        }
    }

    /// A device's DBIRTH with its current values.
    fn device_birth(&mut self, node: usize, d: usize, views: &Views, now: u64, out: &mut Vec<Output>) {
        let sample = self.sample(self.nodes[node].devices[d].kind, views);
        let mut metrics = sample_metrics(&sample, None, now);
        if let Sample::Station(_) = sample {
            // Declared in the birth, valueless until a cycle completes.
            for (name, dt) in
                [(vocab::CYCLE_DURATION, datatype::UINT64), (vocab::CYCLE_PRODUCT, datatype::STRING)]
            {
                metrics.push(Metric {
                    name: Some(name.to_owned()),
                    datatype: Some(dt),
                    is_null: Some(true),
                    timestamp: Some(now),
                    ..Default::default()
                });
            }
        }
        self.nodes[node].devices[d].last = Some(sample);
        let seq = self.next_seq(node);
        let device = self.nodes[node].devices[d].id.clone();
        let topic = self.topic(node, MessageKind::DBirth, Some(&device));
        out.push(Output::Publish {
            node,
            message: Message {
                topic,
                payload: Payload { timestamp: Some(now), seq: Some(seq), metrics, ..Default::default() },
            },
        });
        self.counts.births += 1;
    }

    /// The current views, read once per batch.
    fn views(&self) -> Views {
        Views { stations: self.sim.station_views().collect(), vehicles: self.sim.vehicle_views().collect() }
    }

    fn sample(&self, kind: DeviceKind, views: &Views) -> Sample {
        match kind {
            DeviceKind::Station(s) => {
                let view = &views.stations[s as usize];
                let (parts_in, parts_out) = self.sim.recorded_counts(s).unwrap_or((0, 0));
                Sample::Station(StationSample {
                    state: station_state(view.state),
                    parts_in,
                    parts_out,
                    buffer: view.queue,
                })
            }
            DeviceKind::Vehicle(i) => {
                let view = views.vehicles.get(i);
                Sample::Vehicle(view.map_or(
                    VehicleSample { state: vocab::VEHICLE_IDLE, x: 0.0, y: 0.0, battery: 0.0 },
                    |v| VehicleSample { state: vehicle_state(v.state), x: v.x, y: v.y, battery: v.battery },
                ))
            }
        }
    }

    /// Runs the plant to `to` (applying the drift's breakdowns at their times), then
    /// publishes what changed: one DDATA per device with news, and the gateway outages
    /// due by then.
    pub fn advance(&mut self, to: Micros) -> Vec<Output> {
        let mut out = Vec::new();
        while let Some((at, _, _)) = self.breakdowns.front()
            && *at <= to
        {
            let (at, station, duration) = self.breakdowns.pop_front().expect("checked");
            self.sim.run_until(at.max(self.sim.now()));
            let command = Command::BreakDown { station: station.clone(), duration: Some(duration) };
            if let Err(e) = self.sim.apply(&command) {
                tracing::warn!(%station, error = %e, "drift breakdown skipped");
            }
        }
        if to > self.sim.now() {
            self.sim.run_until(to);
        }
        self.sim.drain_cycles(&mut self.cycles);
        let now = self.ms(self.now());
        // Cycles by device, in completion order.
        let mut per_device: Vec<Vec<Vec<CycleRecord>>> =
            self.nodes.iter().map(|n| vec![Vec::new(); n.devices.len()]).collect();
        for c in self.cycles.drain(..) {
            let (n, d) = self.station_device[c.station as usize];
            per_device[n][d].push(c);
        }
        let model = Arc::clone(self.sim.model());
        let views = self.views();
        for (node, node_cycles) in per_device.iter().enumerate() {
            if self.nodes[node].offline.is_some() {
                self.counts.cycles_lost += node_cycles.iter().map(|c| c.len() as u64).sum::<u64>();
                continue;
            }
            for (d, cycles) in node_cycles.iter().enumerate() {
                if self.nodes[node].devices[d].dead_until.is_some() {
                    self.counts.cycles_lost += cycles.len() as u64;
                    continue;
                }
                let sample = self.sample(self.nodes[node].devices[d].kind, &views);
                let mut metrics = Vec::new();
                for c in cycles {
                    let ts = self.ms(c.finished);
                    metrics.push(Metric::uint64(vocab::CYCLE_DURATION, c.duration).at(ts));
                    let product = &model.products[c.product as usize].id;
                    metrics.push(Metric::string(vocab::CYCLE_PRODUCT, product).at(ts));
                }
                self.counts.cycles += cycles.len() as u64;
                metrics.extend(sample_metrics(&sample, self.nodes[node].devices[d].last.as_ref(), now));
                self.nodes[node].devices[d].last = Some(sample);
                if metrics.is_empty() {
                    continue;
                }
                let seq = self.next_seq(node);
                let device = self.nodes[node].devices[d].id.clone();
                let topic = self.topic(node, MessageKind::DData, Some(&device));
                out.push(Output::Publish {
                    node,
                    message: Message {
                        topic,
                        payload: Payload {
                            timestamp: Some(now),
                            seq: Some(seq),
                            metrics,
                            ..Default::default()
                        },
                    },
                });
                self.counts.data += 1;
            }
        }
        self.device_outages_due(to, &views, &mut out);
        self.outages_due(to, &mut out);
        out
    }

    /// Devices whose drift outage ends by `to` publish a DBIRTH (when their node is
    /// online; otherwise the node's next births include them); those whose outage began
    /// publish a DDEATH and go quiet.
    fn device_outages_due(&mut self, to: Micros, views: &Views, out: &mut Vec<Output>) {
        let now = self.ms(self.now());
        for node in 0..self.nodes.len() {
            for d in 0..self.nodes[node].devices.len() {
                let online = self.nodes[node].offline.is_none();
                let device = &mut self.nodes[node].devices[d];
                if device.dead_until.is_some_and(|until| until <= to) {
                    device.dead_until = None;
                    if online {
                        self.device_birth(node, d, views, now, out);
                    }
                }
                let device = &mut self.nodes[node].devices[d];
                if device.outages.front().is_some_and(|&(from, _)| from <= to) {
                    let (_, until) = device.outages.pop_front().expect("checked");
                    if device.dead_until.is_some() || until <= to {
                        continue;
                    }
                    device.dead_until = Some(until);
                    if online {
                        let id = device.id.clone();
                        let seq = self.next_seq(node);
                        let topic = self.topic(node, MessageKind::DDeath, Some(&id));
                        let payload = Payload { timestamp: Some(now), seq: Some(seq), ..Default::default() };
                        out.push(Output::Publish { node, message: Message { topic, payload } });
                        self.counts.deaths += 1;
                    }
                }
            }
        }
    }

    /// Gateways whose outage ends by `to` come back; those whose outage began die.
    fn outages_due(&mut self, to: Micros, out: &mut Vec<Output>) {
        for node in 0..self.nodes.len() {
            if let Some(Offline::Outage(until)) = self.nodes[node].offline
                && until <= to
            {
                self.nodes[node].bd_seq += 1;
                self.connect(node, out);
            }
            if self.nodes[node].outages.front().is_some_and(|&(from, _)| from <= to) {
                let (_, until) = self.nodes[node].outages.pop_front().expect("checked");
                if self.nodes[node].offline.is_none() {
                    self.die(node, out);
                }
                self.nodes[node].offline = Some(Offline::Outage(until));
                if until <= to {
                    self.nodes[node].bd_seq += 1;
                    self.connect(node, out);
                }
            }
        }
    }

    fn die(&mut self, node: usize, out: &mut Vec<Output>) {
        out.push(Output::Publish { node, message: self.death(node) });
        out.push(Output::Disconnect { node });
        self.counts.deaths += 1;
    }

    /// An NCMD asked `node` to rebirth: its NBIRTH (seq 0) and DBIRTHs again, same bdSeq.
    /// Nothing while the node is offline.
    pub fn rebirth(&mut self, node: usize) -> Vec<Output> {
        let mut out = Vec::new();
        if node < self.nodes.len() && self.nodes[node].offline.is_none() {
            self.births(node, &mut out);
        }
        out
    }

    /// The MQTT session of `node` was lost (not by the drift): it publishes nothing until
    /// [`Plant::reconnect`].
    pub fn session_lost(&mut self, node: usize) {
        if self.nodes[node].offline.is_none() {
            self.nodes[node].offline = Some(Offline::Lost);
        }
    }

    /// A lost session is opened again with bdSeq + 1 and fresh births. Nothing if the
    /// node is not in that state (e.g. in a drift outage, which ends by itself).
    pub fn reconnect(&mut self, node: usize) -> Vec<Output> {
        let mut out = Vec::new();
        if self.nodes[node].offline == Some(Offline::Lost) {
            self.nodes[node].bd_seq += 1;
            self.connect(node, &mut out);
        }
        out
    }

    /// Every online node publishes its NDEATH and disconnects.
    pub fn stop(&mut self) -> Vec<Output> {
        let mut out = Vec::new();
        for node in 0..self.nodes.len() {
            if self.nodes[node].offline.is_none() {
                self.die(node, &mut out);
            }
            self.nodes[node].offline = Some(Offline::Stopped);
        }
        out
    }
}

/// The sampled metrics of a device at `ts`: all of them (`last` = None, births) or those
/// that changed since `last`.
fn sample_metrics(sample: &Sample, last: Option<&Sample>, ts: u64) -> Vec<Metric> {
    let mut m = Vec::new();
    match (sample, last) {
        (Sample::Station(s), last) => {
            let last = match last {
                Some(Sample::Station(l)) => Some(l),
                _ => None,
            };
            if last.is_none_or(|l| l.state != s.state) {
                m.push(Metric::string(vocab::STATE, s.state).at(ts));
            }
            if last.is_none_or(|l| l.parts_in != s.parts_in) {
                m.push(Metric::uint64(vocab::PARTS_IN, s.parts_in).at(ts));
            }
            if last.is_none_or(|l| l.parts_out != s.parts_out) {
                m.push(Metric::uint64(vocab::PARTS_OUT, s.parts_out).at(ts));
            }
            if last.is_none_or(|l| l.buffer != s.buffer) {
                m.push(Metric::uint32(vocab::BUFFER_LEVEL, s.buffer).at(ts));
            }
        }
        (Sample::Vehicle(v), last) => {
            let last = match last {
                Some(Sample::Vehicle(l)) => Some(l),
                _ => None,
            };
            if last.is_none_or(|l| l.state != v.state) {
                m.push(Metric::string(vocab::VEHICLE_STATE, v.state).at(ts));
            }
            if last.is_none_or(|l| l.x != v.x) {
                m.push(Metric::double(vocab::POSITION_X, v.x).at(ts));
            }
            if last.is_none_or(|l| l.y != v.y) {
                m.push(Metric::double(vocab::POSITION_Y, v.y).at(ts));
            }
            if last.is_none_or(|l| l.battery != v.battery) {
                m.push(Metric::double(vocab::BATTERY, v.battery).at(ts));
            }
        }
    }
    m
}

#[cfg(test)]
mod tests;
