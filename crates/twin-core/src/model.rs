//! The validated, resolved model the engine runs: ids replaced by dense indices,
//! distributions compiled, defaults filled in.

use std::collections::BTreeMap;

use nalgebra::Point2;
use serde::{Deserialize, Serialize};

use crate::dist::{Dist, Sampler};
use crate::error::{SceneError, SceneErrors};
use crate::graph::{Graph, GraphEdge, GraphNode, length_mm};
use crate::scene::{
    self, Arrivals, DispatchRule, Scene, Schedules, Source, StationKind, TruckDispatch, Utilities,
};
use crate::time::{HOUR, Micros, SECOND};

/// Dense index of a station in [`Model::stations`].
pub type StationIdx = u32;
/// Dense index of a product in [`Model::products`].
pub type ProductIdx = u16;

/// A validated scene, ready to simulate.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Model {
    /// SHA-256 of the scene and the schedule files it reads: what a snapshot belongs to.
    pub scene_hash: [u8; 32],
    pub name: String,
    pub description: String,
    pub seed: u64,
    pub until: Micros,
    pub warmup: Micros,
    pub factories: Vec<Factory>,
    pub calendars: Vec<Calendar>,
    pub products: Vec<Product>,
    pub stations: Vec<Station>,
    pub conveyors: Vec<Conveyor>,
    pub sources: Vec<PartSource>,
    pub sinks: Vec<Sink>,
    pub utilities: Utilities,
    pub staff: Vec<StaffPool>,
    /// AGV path graphs.
    pub graphs: Vec<Graph>,
    pub fleets: Vec<Fleet>,
    /// The road network and its hub node.
    pub roads: Option<(Graph, u32)>,
    pub trucks: Option<Trucks>,
    pub materials: Vec<Material>,
}

/// A pool of workers.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StaffPool {
    pub id: String,
    pub factory: Option<u32>,
    pub size: u32,
    pub calendar: Option<u32>,
}

/// Power per server by station state, kW.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct Power {
    pub busy: f64,
    pub idle: f64,
    pub setup: f64,
    pub down: f64,
    pub off: f64,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct Battery {
    pub capacity_kwh: f64,
    pub drive_kwh_per_m: f64,
    pub idle_kw: f64,
    pub charge_kw: f64,
    pub threshold: f64,
}

/// An AGV fleet.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Fleet {
    pub id: String,
    pub graph: u32,
    /// Factory whose `agv` this fleet is, for energy and KPIs.
    pub factory: Option<u32>,
    pub count: u32,
    pub speed_m_s: f64,
    pub capacity: u32,
    pub load_time: Micros,
    pub home: Vec<u32>,
    pub battery: Option<Battery>,
    pub rule: DispatchRule,
}

/// Trucks on the road network.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Trucks {
    pub count: u32,
    pub capacity: u32,
    pub speed_m_s: f64,
    pub load_time: Micros,
    /// Units waiting for one destination that trigger a trip (1 with a timetable).
    pub min_load: u32,
    /// Timetable period, if trucks run on one.
    pub every: Option<Micros>,
    pub kwh_per_km: f64,
}

/// A bought-in material.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Material {
    pub id: String,
    pub unit_cost: f64,
    pub hub_initial: u32,
    pub reorder_point: u32,
    pub order_quantity: u32,
    pub lead_time: Micros,
    pub factory_initial: u32,
    pub factory_reorder: u32,
    pub factory_order: u32,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Factory {
    pub id: String,
    pub name: String,
    pub industry: String,
    pub origin: Point2<f64>,
    pub size: (f64, f64),
    /// AGV fleet moving parts between this factory's stations.
    pub agv: Option<u32>,
    /// Road node of the dock.
    pub dock: Option<u32>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Calendar {
    pub id: String,
    pub period: Micros,
    /// Working intervals within one period, ascending and disjoint.
    pub shifts: Vec<(Micros, Micros)>,
}

impl Calendar {
    /// Whether the calendar is on shift at `t`, and the next time that changes.
    pub fn state_at(&self, t: Micros) -> (bool, Micros) {
        let base = t - t % self.period;
        let offset = t - base;
        for &(start, end) in &self.shifts {
            if offset < start {
                return (false, base + start);
            }
            if offset < end {
                return (true, base + end);
            }
        }
        let first = self.shifts.first().map_or(self.period, |s| s.0);
        (false, base + self.period + first)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Product {
    pub id: String,
    pub name: String,
    pub steps: Vec<Step>,
    pub price: f64,
    pub material_cost: f64,
    pub sink: Option<u32>,
    /// Materials consumed per unit at release: `(material, quantity)`.
    pub materials: Vec<(u32, u32)>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Step {
    pub op: String,
    /// Alternative stations, in the order the scene lists them (ties go to the first).
    pub at: Vec<StationIdx>,
    pub time: Sampler,
    /// Mean processing time, microseconds.
    pub mean: f64,
    /// Fleet that carries parts to this step, overriding the factory's.
    pub carry: Option<u32>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Station {
    pub id: String,
    pub name: String,
    pub kind: StationKind,
    pub factory: Option<u32>,
    pub pos: Point2<f64>,
    pub servers: u32,
    /// Input buffer capacity; None is unlimited.
    pub buffer: Option<u32>,
    pub setup: Option<Sampler>,
    pub failures: Option<Failures>,
    pub scrap: f64,
    pub calendar: Option<u32>,
    /// Conveyors leaving this station, by the station they feed.
    pub conveyors_out: Vec<(StationIdx, u32)>,
    /// Saturated sources whose parts start here.
    pub saturated_by: Vec<u32>,
    pub power: Option<Power>,
    /// AGV node `(graph, node)` where parts are dropped and picked up.
    pub node: Option<(u32, u32)>,
    pub pool: Option<u32>,
    pub crew: u32,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Failures {
    /// Mean time between failures, microseconds.
    pub mtbf: f64,
    pub repair: Sampler,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Conveyor {
    pub id: String,
    pub from: StationIdx,
    pub to: StationIdx,
    pub length_m: f64,
    pub speed_m_s: f64,
    pub capacity: u32,
    /// Time a part takes from one end to the other.
    pub travel: Micros,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Release {
    /// Mean gap between parts, microseconds.
    Poisson {
        mean_gap: f64,
    },
    Interval(Micros),
    /// `(time, product, quantity)` ascending in time.
    Schedule(Vec<(Micros, ProductIdx, u32)>),
    Saturated,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PartSource {
    pub id: String,
    pub release: Release,
    /// Cumulative mix probabilities by product, ascending.
    pub mix: Vec<(f64, ProductIdx)>,
    pub due: Option<Micros>,
    pub pos: Point2<f64>,
}

impl PartSource {
    /// Mean parts per hour this source releases, where that is defined.
    pub fn rate_per_hour(&self) -> Option<f64> {
        match &self.release {
            Release::Poisson { mean_gap } => Some(HOUR as f64 / mean_gap),
            Release::Interval(gap) => Some(HOUR as f64 / *gap as f64),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Sink {
    pub id: String,
    pub factory: Option<u32>,
    pub pos: Point2<f64>,
}

/// How a part travels from a station to the next station of its routing
/// ([`Model::route`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// On the conveyor with this index.
    Conveyor(u32),
    /// By AGV of `fleet` from node `from` to node `to` of the fleet's path graph.
    Agv { fleet: u32, from: u32, to: u32 },
    /// By truck from road node `from` (a dock) to road node `to` (another dock).
    Truck { from: u32, to: u32 },
    /// Straight into the next station's buffer.
    Direct,
}

/// Collects problems with their places.
struct Problems<'a> {
    source: Option<&'a Source>,
    origin: std::path::PathBuf,
    list: Vec<SceneError>,
}

impl Problems<'_> {
    fn push(&mut self, path: String, anchors: &[&str], message: impl Into<String>) {
        let location = self.source.and_then(|s| s.locate(anchors));
        self.list.push(SceneError { origin: self.origin.clone(), location, path, message: message.into() });
    }
}

fn quoted(id: &str) -> String {
    format!("\"{id}\"")
}

/// Index of each id, reporting duplicates.
fn index_ids<'a>(
    problems: &mut Problems,
    section: &str,
    ids: impl Iterator<Item = &'a String>,
) -> BTreeMap<String, u32> {
    let mut map = BTreeMap::new();
    for (i, id) in ids.enumerate() {
        if id.is_empty() {
            problems.push(format!("{section}[{i}].id"), &[&format!("{section}:")], "id must not be empty");
        } else if map.insert(id.clone(), i as u32).is_some() {
            let q = quoted(id);
            problems.push(
                format!("{section}[{i}].id"),
                &[&format!("{section}:"), &q, &q],
                format!("duplicate id `{id}` in {section}"),
            );
        }
    }
    map
}

impl Model {
    /// Validates `scene` and resolves it. Every problem is reported, each with its field
    /// path and, when `source` is given, the line and column in the file.
    pub fn build(
        scene: &Scene,
        source: Option<&Source>,
        schedules: &Schedules,
    ) -> Result<Model, SceneErrors> {
        let origin = source.map_or_else(|| "<scene>".into(), |s| s.origin.clone());
        let mut p = Problems { source, origin, list: Vec::new() };

        let factory_idx = index_ids(&mut p, "factories", scene.factories.iter().map(|f| &f.id));
        let calendar_idx = index_ids(&mut p, "calendars", scene.calendars.iter().map(|c| &c.id));
        let product_idx = index_ids(&mut p, "products", scene.products.iter().map(|x| &x.id));
        let station_idx = index_ids(&mut p, "stations", scene.stations.iter().map(|s| &s.id));
        index_ids(&mut p, "conveyors", scene.conveyors.iter().map(|c| &c.id));
        index_ids(&mut p, "sources", scene.sources.iter().map(|s| &s.id));
        let sink_idx = index_ids(&mut p, "sinks", scene.sinks.iter().map(|s| &s.id));

        if scene.run.until.0 == 0 {
            p.push("run.until".into(), &["run", "until"], "run length must be greater than zero");
        }
        if scene.run.warmup >= scene.run.until {
            p.push(
                "run.warmup".into(),
                &["run", "warmup"],
                format!("warm-up ({}) must be shorter than the run ({})", scene.run.warmup, scene.run.until),
            );
        }
        if scene.products.len() > usize::from(u16::MAX) {
            p.push("products".into(), &["products:"], "at most 65535 products");
        }
        if scene.stations.is_empty() {
            p.push("stations".into(), &["stations:"], "a scene needs at least one station");
        }
        if scene.sources.is_empty() {
            p.push("sources".into(), &["sources:"], "a scene needs at least one source");
        }

        let mut factories: Vec<Factory> = scene
            .factories
            .iter()
            .enumerate()
            .map(|(i, f)| {
                if !(f.size.0 > 0.0 && f.size.1 > 0.0) {
                    p.push(
                        format!("factories[{i}].size"),
                        &["factories:", &quoted(&f.id), "size"],
                        "width and depth must be positive metres",
                    );
                }
                Factory {
                    id: f.id.clone(),
                    name: if f.name.is_empty() { f.id.clone() } else { f.name.clone() },
                    industry: f.industry.clone(),
                    origin: Point2::new(f.origin.0, f.origin.1),
                    size: f.size,
                    agv: None,
                    dock: None,
                }
            })
            .collect::<Vec<_>>();

        let calendars = scene
            .calendars
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let at = ["calendars:", &quoted(&c.id)];
                if c.period.0 == 0 {
                    p.push(format!("calendars[{i}].period"), &at, "period must be greater than zero");
                }
                if c.shifts.is_empty() {
                    p.push(format!("calendars[{i}].shifts"), &at, "a calendar needs at least one shift");
                }
                let mut last_end = 0;
                for (j, (start, end)) in c.shifts.iter().enumerate() {
                    if start >= end || end.0 > c.period.0 || (j > 0 && start.0 < last_end) {
                        p.push(
                            format!("calendars[{i}].shifts[{j}]"),
                            &at,
                            format!(
                                "shift ({start}, {end}) must have start < end, lie within the period ({}) and follow the previous shift",
                                c.period
                            ),
                        );
                    }
                    last_end = end.0;
                }
                Calendar { id: c.id.clone(), period: c.period.0.max(1), shifts: c.shifts.iter().map(|s| (s.0.0, s.1.0)).collect() }
            })
            .collect::<Vec<_>>();

        // Stations first: steps refer to them.
        let mut per_factory_count: BTreeMap<Option<u32>, usize> = BTreeMap::new();
        let mut stations = Vec::with_capacity(scene.stations.len());
        for (i, s) in scene.stations.iter().enumerate() {
            let at = |field: &str| -> Vec<String> { vec!["stations:".into(), quoted(&s.id), field.into()] };
            let push = |p: &mut Problems, field: &str, msg: String| {
                let anchors = at(field);
                let refs: Vec<&str> = anchors.iter().map(String::as_str).collect();
                p.push(format!("stations[{i}].{field}"), &refs, msg);
            };
            if s.servers == 0 {
                push(&mut p, "servers", format!("station `{}` needs at least one server", s.id));
            }
            if s.buffer == Some(0) {
                push(
                    &mut p,
                    "buffer",
                    format!(
                        "buffer capacity of `{}` is 0; omit `buffer` for unlimited or give at least 1",
                        s.id
                    ),
                );
            }
            if !(0.0..1.0).contains(&s.scrap) {
                push(&mut p, "scrap", format!("scrap rate must be in [0, 1), got {}", s.scrap));
            }
            if let Some(setup) = &s.setup {
                for m in setup.problems(true) {
                    push(&mut p, "setup", m);
                }
            }
            let failures = s.failures.as_ref().map(|f| {
                if f.mtbf.0 == 0 {
                    push(&mut p, "failures", "mtbf must be greater than zero".into());
                }
                let repair = f.repair.clone().unwrap_or(Dist::Exp { mean: f.mttr });
                for m in repair.problems(true) {
                    push(&mut p, "failures", format!("repair time: {m}"));
                }
                Failures { mtbf: f.mtbf.0 as f64, repair: repair.sampler() }
            });
            let factory = s.factory.as_ref().and_then(|f| {
                let idx = factory_idx.get(f).copied();
                if idx.is_none() {
                    push(&mut p, "factory", format!("unknown factory `{f}`"));
                }
                idx
            });
            let calendar = s.calendar.as_ref().and_then(|c| {
                let idx = calendar_idx.get(c).copied();
                if idx.is_none() {
                    push(&mut p, "calendar", format!("unknown calendar `{c}`"));
                }
                idx
            });
            let slot = per_factory_count.entry(factory).or_default();
            let pos = s.pos.map_or_else(
                || auto_position(factory.map(|f| &factories[f as usize]), *slot),
                |(x, y)| Point2::new(x, y),
            );
            *slot += 1;
            stations.push(Station {
                id: s.id.clone(),
                name: if s.name.is_empty() { s.id.clone() } else { s.name.clone() },
                kind: s.kind,
                factory,
                pos,
                servers: s.servers.max(1),
                buffer: s.buffer,
                setup: s.setup.as_ref().map(Dist::sampler),
                failures,
                scrap: s.scrap,
                calendar,
                conveyors_out: Vec::new(),
                saturated_by: Vec::new(),
                power: None,
                node: None,
                pool: None,
                crew: 0,
            });
        }

        let sinks = scene
            .sinks
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let factory = s.factory.as_ref().and_then(|f| {
                    let idx = factory_idx.get(f).copied();
                    if idx.is_none() {
                        p.push(
                            format!("sinks[{i}].factory"),
                            &["sinks:", &quoted(&s.id), "factory"],
                            format!("unknown factory `{f}`"),
                        );
                    }
                    idx
                });
                let pos = s.pos.map_or_else(
                    || auto_position(factory.map(|f| &factories[f as usize]), 0),
                    |(x, y)| Point2::new(x, y),
                );
                Sink { id: s.id.clone(), factory, pos }
            })
            .collect::<Vec<_>>();

        let mut products = Vec::with_capacity(scene.products.len());
        for (i, prod) in scene.products.iter().enumerate() {
            let pq = quoted(&prod.id);
            if prod.routing.is_empty() {
                p.push(
                    format!("products[{i}].routing"),
                    &["products:", &pq, "routing"],
                    format!("product `{}` has an empty routing", prod.id),
                );
            }
            for (field, value) in [("price", prod.price), ("material_cost", prod.material_cost)] {
                if !(value.is_finite() && value >= 0.0) {
                    p.push(
                        format!("products[{i}].{field}"),
                        &["products:", &pq, field],
                        format!("{field} must be a non-negative number, got {value}"),
                    );
                }
            }
            let sink = prod.sink.as_ref().and_then(|s| {
                let idx = sink_idx.get(s).copied();
                if idx.is_none() {
                    p.push(
                        format!("products[{i}].sink"),
                        &["products:", &pq, "sink"],
                        format!("unknown sink `{s}`"),
                    );
                }
                idx
            });
            let mut steps = Vec::with_capacity(prod.routing.len());
            for (j, step) in prod.routing.iter().enumerate() {
                let mut anchors: Vec<&str> = vec!["products:", &pq];
                anchors.extend(std::iter::repeat_n("at:", j + 1));
                let path = format!("products[{i}].routing[{j}]");
                if step.at.is_empty() {
                    p.push(
                        format!("{path}.at"),
                        &anchors,
                        format!("step {j} of `{}` names no station that can do it", prod.id),
                    );
                }
                let mut at = Vec::with_capacity(step.at.len());
                for (k, name) in step.at.iter().enumerate() {
                    match station_idx.get(name) {
                        Some(&s) => {
                            if at.contains(&s) {
                                p.push(
                                    format!("{path}.at[{k}]"),
                                    &anchors,
                                    format!("station `{name}` is listed twice"),
                                );
                            }
                            at.push(s);
                        }
                        None => {
                            let q = quoted(name);
                            let mut a = anchors.clone();
                            a.push(&q);
                            p.push(
                                format!("{path}.at[{k}]"),
                                &a,
                                format!("step {j} of `{}` names unknown station `{name}`", prod.id),
                            );
                        }
                    }
                }
                for m in step.time.problems(false) {
                    p.push(format!("{path}.time"), &anchors, format!("processing time: {m}"));
                }
                steps.push(Step {
                    op: step.op.clone(),
                    at,
                    time: step.time.sampler(),
                    mean: step.time.mean(),
                    carry: None,
                });
            }
            products.push(Product {
                id: prod.id.clone(),
                name: if prod.name.is_empty() { prod.id.clone() } else { prod.name.clone() },
                steps,
                price: prod.price,
                material_cost: prod.material_cost,
                sink,
                materials: Vec::new(),
            });
        }

        let mut conveyors = Vec::with_capacity(scene.conveyors.len());
        for (i, c) in scene.conveyors.iter().enumerate() {
            let cq = quoted(&c.id);
            let mut lookup = |field: &str, name: &str| {
                let idx = station_idx.get(name).copied();
                if idx.is_none() {
                    p.push(
                        format!("conveyors[{i}].{field}"),
                        &["conveyors:", &cq, field],
                        format!("unknown station `{name}`"),
                    );
                }
                idx
            };
            let from = lookup("from", &c.from);
            let to = lookup("to", &c.to);
            for (field, value) in [("length_m", c.length_m), ("speed_m_s", c.speed_m_s)] {
                if !(value.is_finite() && value > 0.0) {
                    p.push(
                        format!("conveyors[{i}].{field}"),
                        &["conveyors:", &cq, field],
                        format!("{field} must be positive, got {value}"),
                    );
                }
            }
            if c.capacity == 0 {
                p.push(
                    format!("conveyors[{i}].capacity"),
                    &["conveyors:", &cq, "capacity"],
                    "conveyor capacity must be at least 1",
                );
            }
            let (Some(from), Some(to)) = (from, to) else {
                continue;
            };
            if stations[from as usize].conveyors_out.iter().any(|&(t, _)| t == to) {
                p.push(
                    format!("conveyors[{i}]"),
                    &["conveyors:", &cq],
                    format!("a conveyor from `{}` to `{}` already exists", c.from, c.to),
                );
            }
            let travel = (c.length_m / c.speed_m_s * SECOND as f64).round();
            let travel = if travel.is_finite() && travel > 0.0 { travel as Micros } else { 0 };
            stations[from as usize].conveyors_out.push((to, conveyors.len() as u32));
            conveyors.push(Conveyor {
                id: c.id.clone(),
                from,
                to,
                length_m: c.length_m,
                speed_m_s: c.speed_m_s,
                capacity: c.capacity.max(1),
                travel,
            });
        }

        let mut sources = Vec::with_capacity(scene.sources.len());
        for (i, s) in scene.sources.iter().enumerate() {
            let sq = quoted(&s.id);
            let mut mix = Vec::new();
            let total: f64 = s.mix.values().filter(|w| w.is_finite() && **w > 0.0).sum();
            let mut acc = 0.0;
            for (name, &w) in &s.mix {
                match product_idx.get(name) {
                    None => p.push(
                        format!("sources[{i}].mix.{name}"),
                        &["sources:", &sq, &quoted(name)],
                        format!("unknown product `{name}` in mix"),
                    ),
                    Some(&prod) => {
                        if !(w.is_finite() && w >= 0.0) {
                            p.push(
                                format!("sources[{i}].mix.{name}"),
                                &["sources:", &sq, &quoted(name)],
                                format!("weight must be a non-negative number, got {w}"),
                            );
                        } else if w > 0.0 {
                            acc += w / total;
                            mix.push((acc, prod as ProductIdx));
                        }
                    }
                }
            }
            let is_schedule = matches!(s.arrivals, Arrivals::Schedule { .. });
            if mix.is_empty() && !is_schedule {
                p.push(
                    format!("sources[{i}].mix"),
                    &["sources:", &sq],
                    "mix needs at least one product with a positive weight",
                );
            }
            if let Some(last) = mix.last_mut() {
                last.0 = 1.0;
            }
            let release = match &s.arrivals {
                Arrivals::Poisson { per_hour } => {
                    if !(per_hour.is_finite() && *per_hour > 0.0) {
                        p.push(
                            format!("sources[{i}].arrivals.per_hour"),
                            &["sources:", &sq, "per_hour"],
                            format!("arrival rate must be positive, got {per_hour}"),
                        );
                    }
                    Release::Poisson { mean_gap: HOUR as f64 / per_hour }
                }
                Arrivals::Interval { every } => {
                    if every.0 == 0 {
                        p.push(
                            format!("sources[{i}].arrivals.every"),
                            &["sources:", &sq, "every"],
                            "interval must be greater than zero",
                        );
                    }
                    Release::Interval(every.0.max(1))
                }
                Arrivals::Schedule { file } => {
                    let rows = schedules.0.get(file).map(Vec::as_slice).unwrap_or_default();
                    let mut resolved = Vec::with_capacity(rows.len());
                    for (r, row) in rows.iter().enumerate() {
                        match product_idx.get(&row.product) {
                            Some(&prod) => resolved.push((row.at.0, prod as ProductIdx, row.quantity)),
                            None => p.push(
                                format!("sources[{i}].arrivals.file[{r}]"),
                                &["sources:", &sq, "file"],
                                format!(
                                    "schedule `{file}` row {} names unknown product `{}`",
                                    r + 1,
                                    row.product
                                ),
                            ),
                        }
                    }
                    Release::Schedule(resolved)
                }
                Arrivals::Saturated => {
                    if mix.len() > 1 {
                        p.push(
                            format!("sources[{i}].mix"),
                            &["sources:", &sq, "mix"],
                            "a saturated source feeds one product; split it into one source per product",
                        );
                    }
                    if let Some(&(_, prod)) = mix.first()
                        && let Some(first) =
                            products.get(prod as usize).and_then(|x: &Product| x.steps.first())
                    {
                        for &st in &first.at {
                            stations[st as usize].saturated_by.push(i as u32);
                        }
                    }
                    Release::Saturated
                }
            };
            let pos = s.pos.map_or_else(|| Point2::new(-10.0, 10.0 * i as f64), |(x, y)| Point2::new(x, y));
            sources.push(PartSource { id: s.id.clone(), release, mix, due: s.due.map(|d| d.0), pos });
        }

        let logistics =
            build_logistics(scene, &mut p, &mut factories, &mut stations, &mut products, &calendar_idx);

        if !p.list.is_empty() {
            return Err(SceneErrors(p.list));
        }
        Ok(Model {
            utilities: scene.utilities.clone(),
            staff: logistics.staff,
            graphs: logistics.graphs,
            fleets: logistics.fleets,
            roads: logistics.roads,
            trucks: logistics.trucks,
            materials: logistics.materials,
            scene_hash: crate::snapshot::scene_hash(scene, schedules),
            name: scene.name.clone(),
            description: scene.description.clone(),
            seed: scene.seed,
            until: scene.run.until.0,
            warmup: scene.run.warmup.0,
            factories,
            calendars,
            products,
            stations,
            conveyors,
            sources,
            sinks,
        })
    }

    /// Loads, parses and validates a scene file in one go.
    pub fn load(path: &std::path::Path) -> Result<Model, SceneErrors> {
        let (scene, source, schedules) = scene::load(path)?;
        Model::build(&scene, Some(&source), &schedules)
    }

    /// Index of the station with this id.
    pub fn station(&self, id: &str) -> Option<StationIdx> {
        self.stations.iter().position(|s| s.id == id).map(|i| i as StationIdx)
    }

    /// Index of the product with this id.
    pub fn product(&self, id: &str) -> Option<ProductIdx> {
        self.products.iter().position(|s| s.id == id).map(|i| i as ProductIdx)
    }

    /// The AGV lane `(fleet, pickup node, drop node)` that carries a part from station
    /// `from` to station `to`, if any: the step's own fleet (`carry`), else the factory's
    /// when both stations stand in it, provided both have nodes on that fleet's graph.
    pub fn agv_lane(&self, from: StationIdx, to: StationIdx, carry: Option<u32>) -> Option<(u32, u32, u32)> {
        let (a, b) = (&self.stations[from as usize], &self.stations[to as usize]);
        let fleet = carry.or_else(|| {
            let f = a.factory?;
            (b.factory == Some(f)).then(|| self.factories[f as usize].agv).flatten()
        })?;
        let graph = self.fleets[fleet as usize].graph;
        match (a.node, b.node) {
            (Some((ga, na)), Some((gb, nb))) if ga == graph && gb == graph && na != nb => {
                Some((fleet, na, nb))
            }
            _ => None,
        }
    }

    /// How a part travels from station `from` to station `to`, the next station of its
    /// routing (whose step names fleet `carry`, if any): on the conveyor between them if
    /// there is one; else by AGV when the step or the factory names a fleet whose graph
    /// both stations stand on; else by truck when they stand in different factories with
    /// docks (and the complex has trucks); else directly into the buffer.
    #[inline]
    pub fn route(&self, from: StationIdx, to: StationIdx, carry: Option<u32>) -> Route {
        for &(target, c) in &self.stations[from as usize].conveyors_out {
            if target == to {
                return Route::Conveyor(c);
            }
        }
        if (carry.is_some() || !self.fleets.is_empty())
            && let Some((fleet, a, b)) = self.agv_lane(from, to, carry)
        {
            return Route::Agv { fleet, from: a, to: b };
        }
        let (fa, fb) = (self.stations[from as usize].factory, self.stations[to as usize].factory);
        if fa != fb
            && self.has_trucks()
            && let (Some(fa), Some(fb)) = (fa, fb)
            && let (Some(da), Some(db)) = (self.factories[fa as usize].dock, self.factories[fb as usize].dock)
            && da != db
        {
            return Route::Truck { from: da, to: db };
        }
        Route::Direct
    }

    /// The road lane `(dock, hub)` by which parts that finish their routing at `station`
    /// are shipped: when the complex has trucks and the station's factory a dock other
    /// than the hub.
    pub fn shipping_lane(&self, station: StationIdx) -> Option<(u32, u32)> {
        if !self.has_trucks() {
            return None;
        }
        let factory = self.stations[station as usize].factory?;
        let dock = self.factories[factory as usize].dock?;
        let (_, hub) = self.roads.as_ref()?;
        (dock != *hub).then_some((dock, *hub))
    }

    /// Whether the complex has trucks (a road network and a truck pool).
    pub fn has_trucks(&self) -> bool {
        self.trucks.is_some() && self.roads.is_some()
    }

    /// The factory whose material stock a release of `product` draws on: that of the
    /// first station of its first step.
    pub fn release_factory(&self, product: &Product) -> Option<u32> {
        product.steps.first().and_then(|s| s.at.first()).and_then(|&st| self.stations[st as usize].factory)
    }

    /// The road lane `(hub, dock)` by which material reaches `factory`: by truck when the
    /// complex has trucks and the factory a dock; None means it arrives at once.
    pub fn material_lane(&self, factory: u32) -> Option<(u32, u32)> {
        let dock = self.factories[factory as usize].dock?;
        let (_, hub) = self.roads.as_ref()?;
        self.has_trucks().then_some((*hub, dock))
    }
}

/// Places stations that have no explicit position in rows inside their factory.
fn auto_position(factory: Option<&Factory>, slot: usize) -> Point2<f64> {
    const SPACING: f64 = 8.0;
    match factory {
        Some(f) => {
            let cols = ((f.size.0 - SPACING) / SPACING).floor().max(1.0) as usize;
            let (row, col) = (slot / cols, slot % cols);
            Point2::new(f.origin.x + SPACING * (col as f64 + 1.0), f.origin.y + SPACING * (row as f64 + 1.0))
        }
        None => Point2::new(SPACING * slot as f64, 0.0),
    }
}

/// The resolved complex-level sections of a scene.
struct Logistics {
    staff: Vec<StaffPool>,
    graphs: Vec<Graph>,
    fleets: Vec<Fleet>,
    roads: Option<(Graph, u32)>,
    trucks: Option<Trucks>,
    materials: Vec<Material>,
}

fn finite_nonneg(x: f64) -> bool {
    x.is_finite() && x >= 0.0
}

fn finite_pos(x: f64) -> bool {
    x.is_finite() && x > 0.0
}

/// Validates and resolves utilities, staff, paths, fleets, roads, trucks and materials,
/// and the fields of factories, stations, products and steps that refer to them.
fn build_logistics(
    scene: &Scene,
    p: &mut Problems,
    factories: &mut [Factory],
    stations: &mut [Station],
    products: &mut [Product],
    calendar_idx: &BTreeMap<String, u32>,
) -> Logistics {
    let u = &scene.utilities;
    if !finite_nonneg(u.power_price) {
        p.push(
            "utilities.power_price".into(),
            &["utilities", "power_price"],
            "power price must be a non-negative number",
        );
    }
    if !finite_nonneg(u.co2_kg_per_kwh) {
        p.push(
            "utilities.co2_kg_per_kwh".into(),
            &["utilities", "co2_kg_per_kwh"],
            "CO2 factor must be a non-negative number",
        );
    }
    let factory_idx: BTreeMap<String, u32> =
        factories.iter().enumerate().map(|(i, f)| (f.id.clone(), i as u32)).collect();

    // Staff pools.
    let staff_idx = index_ids(p, "staff", scene.staff.iter().map(|s| &s.id));
    let mut staff = Vec::with_capacity(scene.staff.len());
    for (i, s) in scene.staff.iter().enumerate() {
        let sq = quoted(&s.id);
        let factory = s.factory.as_deref().and_then(|f| {
            let idx = factory_idx.get(f).copied();
            if idx.is_none() {
                p.push(
                    format!("staff[{i}].factory"),
                    &["staff:", &sq, "factory"],
                    format!("unknown factory `{f}`"),
                );
            }
            idx
        });
        let calendar = s.calendar.as_deref().and_then(|c| {
            let idx = calendar_idx.get(c).copied();
            if idx.is_none() {
                p.push(
                    format!("staff[{i}].calendar"),
                    &["staff:", &sq, "calendar"],
                    format!("unknown calendar `{c}`"),
                );
            }
            idx
        });
        if s.size == 0 {
            p.push(format!("staff[{i}].size"), &["staff:", &sq, "size"], "a pool needs at least one worker");
        }
        staff.push(StaffPool { id: s.id.clone(), factory, size: s.size, calendar });
    }

    // Path graphs; node ids are unique across all graphs so that a station can name one.
    index_ids(p, "paths", scene.paths.iter().map(|g| &g.id));
    let mut node_owner: BTreeMap<String, (u32, u32)> = BTreeMap::new();
    let mut graphs = Vec::with_capacity(scene.paths.len());
    for (gi, g) in scene.paths.iter().enumerate() {
        let gq = quoted(&g.id);
        let mut local: BTreeMap<&str, u32> = BTreeMap::new();
        let mut nodes = Vec::with_capacity(g.nodes.len());
        for (ni, (id, x, y)) in g.nodes.iter().enumerate() {
            let path = format!("paths[{gi}].nodes[{ni}]");
            if !(x.is_finite() && y.is_finite()) {
                p.push(path.clone(), &["paths:", &gq, &quoted(id)], "coordinates must be finite numbers");
            }
            if node_owner.insert(id.clone(), (gi as u32, ni as u32)).is_some() {
                p.push(
                    path,
                    &["paths:", &gq, &quoted(id)],
                    format!("node id `{id}` is used twice (node ids are unique across all path graphs)"),
                );
            }
            local.insert(id, ni as u32);
            nodes.push(GraphNode { id: id.clone(), pos: Point2::new(*x, *y) });
        }
        let mut edges = Vec::with_capacity(g.edges.len());
        for (ei, e) in g.edges.iter().enumerate() {
            let path = format!("paths[{gi}].edges[{ei}]");
            let (Some(&from), Some(&to)) = (local.get(e.from.as_str()), local.get(e.to.as_str())) else {
                let missing = if local.contains_key(e.from.as_str()) { &e.to } else { &e.from };
                p.push(
                    path,
                    &["paths:", &gq, "edges", &quoted(missing)],
                    format!("edge names unknown node `{missing}` of `{}`", g.id),
                );
                continue;
            };
            if from == to {
                p.push(
                    path,
                    &["paths:", &gq, "edges", &quoted(&e.from)],
                    "an edge must join two different nodes",
                );
                continue;
            }
            if e.speed_limit.is_some_and(|v| !finite_pos(v)) {
                p.push(
                    format!("{path}.speed_limit"),
                    &["paths:", &gq, "speed_limit"],
                    "speed limit must be positive",
                );
            }
            let length_mm = length_mm(nodes[from as usize].pos, nodes[to as usize].pos);
            edges.push(GraphEdge { from, to, length_mm, two_way: e.two_way, speed_limit: e.speed_limit });
        }
        let mut graph = Graph::new(g.id.clone(), nodes, edges);
        for (ci, c) in g.chargers.iter().enumerate() {
            match graph.node(c) {
                Some(n) => graph.chargers.push(n),
                None => p.push(
                    format!("paths[{gi}].chargers[{ci}]"),
                    &["paths:", &gq, "chargers"],
                    format!("unknown charger node `{c}`"),
                ),
            }
        }
        graphs.push(graph);
    }
    let graph_idx: BTreeMap<String, u32> =
        scene.paths.iter().enumerate().map(|(i, g)| (g.id.clone(), i as u32)).collect();

    // Fleets.
    let fleet_idx = index_ids(p, "fleets", scene.fleets.iter().map(|f| &f.id));
    let mut fleets = Vec::with_capacity(scene.fleets.len());
    for (fi, f) in scene.fleets.iter().enumerate() {
        let fq = quoted(&f.id);
        let push = |p: &mut Problems, field: &str, msg: String| {
            p.push(format!("fleets[{fi}].{field}"), &["fleets:", &fq, field], msg);
        };
        let graph = graph_idx.get(&f.paths).copied();
        if graph.is_none() {
            push(p, "paths", format!("unknown path graph `{}`", f.paths));
        }
        if !finite_pos(f.speed_m_s) {
            push(p, "speed_m_s", format!("speed must be positive, got {}", f.speed_m_s));
        }
        if f.capacity == 0 {
            push(p, "capacity", "capacity must be at least 1".into());
        }
        if f.home.is_empty() {
            push(p, "home", "a fleet needs at least one home (parking) node".into());
        }
        let mut home = Vec::new();
        if let Some(g) = graph {
            let graph = &graphs[g as usize];
            for h in &f.home {
                match graph.node(h) {
                    Some(n) => home.push(n),
                    None => push(p, "home", format!("home node `{h}` is not in path graph `{}`", f.paths)),
                }
            }
            if f.count as usize > graph.len() {
                push(p, "count", format!("{} vehicles cannot stand on {} nodes", f.count, graph.len()));
            }
        }
        let battery = f.battery.as_ref().map(|b| {
            for (name, v) in [("capacity_kwh", b.capacity_kwh), ("charge_kw", b.charge_kw)] {
                if !finite_pos(v) {
                    push(p, "battery", format!("battery {name} must be positive, got {v}"));
                }
            }
            for (name, v) in [("drive_kwh_per_m", b.drive_kwh_per_m), ("idle_kw", b.idle_kw)] {
                if !finite_nonneg(v) {
                    push(p, "battery", format!("battery {name} must be non-negative, got {v}"));
                }
            }
            if !(0.0..1.0).contains(&b.threshold) {
                push(p, "battery", format!("battery threshold must be in [0, 1), got {}", b.threshold));
            }
            if graph.is_some_and(|g| graphs[g as usize].chargers.is_empty()) {
                push(
                    p,
                    "battery",
                    format!("vehicles with batteries need a charger node in path graph `{}`", f.paths),
                );
            }
            Battery {
                capacity_kwh: b.capacity_kwh,
                drive_kwh_per_m: b.drive_kwh_per_m,
                idle_kw: b.idle_kw,
                charge_kw: b.charge_kw,
                threshold: b.threshold,
            }
        });
        fleets.push(Fleet {
            id: f.id.clone(),
            graph: graph.unwrap_or(0),
            factory: None,
            count: f.count,
            speed_m_s: f.speed_m_s,
            capacity: f.capacity.max(1),
            load_time: f.load_time.0,
            home,
            battery,
            rule: f.rule,
        });
    }

    // Roads and docks.
    let roads = scene.roads.as_ref().and_then(|r| {
        let mut local: BTreeMap<&str, u32> = BTreeMap::new();
        let mut nodes = Vec::new();
        for (ni, (id, x, y)) in r.nodes.iter().enumerate() {
            if local.insert(id, ni as u32).is_some() {
                p.push(
                    format!("roads.nodes[{ni}]"),
                    &["roads", &quoted(id)],
                    format!("road node `{id}` is listed twice"),
                );
            }
            nodes.push(GraphNode { id: id.clone(), pos: Point2::new(*x, *y) });
        }
        let mut edges = Vec::new();
        for (ei, (a, b)) in r.edges.iter().enumerate() {
            match (local.get(a.as_str()), local.get(b.as_str())) {
                (Some(&from), Some(&to)) if from != to => {
                    let length_mm = length_mm(nodes[from as usize].pos, nodes[to as usize].pos);
                    edges.push(GraphEdge { from, to, length_mm, two_way: true, speed_limit: None });
                }
                _ => p.push(
                    format!("roads.edges[{ei}]"),
                    &["roads", "edges", &quoted(a)],
                    format!("road ({a}, {b}) must join two different known road nodes"),
                ),
            }
        }
        let Some(&hub) = local.get(r.hub.as_str()) else {
            p.push("roads.hub".into(), &["roads", "hub"], format!("hub `{}` is not a road node", r.hub));
            return None;
        };
        Some((Graph::new("roads".into(), nodes, edges), hub))
    });
    for (i, f) in scene.factories.iter().enumerate() {
        let fq = quoted(&f.id);
        if let Some(dock) = &f.dock {
            let path = format!("factories[{i}].dock");
            let at = ["factories:", fq.as_str(), "dock"];
            match &roads {
                None => p.push(path, &at, "a dock needs a `roads` section"),
                Some((g, hub)) => match g.node(dock) {
                    None => p.push(path, &at, format!("unknown road node `{dock}`")),
                    Some(n) => {
                        if g.distance_mm(*hub, n) == crate::graph::UNREACHABLE
                            || g.distance_mm(n, *hub) == crate::graph::UNREACHABLE
                        {
                            p.push(path, &at, format!("dock `{dock}` has no road to the hub"));
                        }
                        factories[i].dock = Some(n);
                    }
                },
            }
        }
        if let Some(agv) = &f.agv {
            match fleet_idx.get(agv) {
                Some(&fl) => {
                    factories[i].agv = Some(fl);
                    fleets[fl as usize].factory.get_or_insert(i as u32);
                }
                None => p.push(
                    format!("factories[{i}].agv"),
                    &["factories:", &fq, "agv"],
                    format!("unknown fleet `{agv}`"),
                ),
            }
        }
    }

    let trucks = scene.trucks.as_ref().map(|t| {
        if roads.is_none() {
            p.push("trucks".into(), &["trucks"], "trucks need a `roads` section");
        }
        if t.count == 0 || t.capacity == 0 {
            p.push("trucks".into(), &["trucks", "count"], "trucks need a count and a capacity of at least 1");
        }
        if !finite_pos(t.speed_m_s) {
            p.push("trucks.speed_m_s".into(), &["trucks", "speed_m_s"], "speed must be positive");
        }
        if !finite_nonneg(t.kwh_per_km) {
            p.push(
                "trucks.kwh_per_km".into(),
                &["trucks", "kwh_per_km"],
                "energy per km must be non-negative",
            );
        }
        let (min_load, every) = match &t.dispatch {
            TruckDispatch::Batch { min_load } => {
                if *min_load == 0 {
                    p.push(
                        "trucks.dispatch.min_load".into(),
                        &["trucks", "min_load"],
                        "min_load must be at least 1",
                    );
                }
                ((*min_load).clamp(1, t.capacity.max(1)), None)
            }
            TruckDispatch::Timetable { every } => {
                if every.0 == 0 {
                    p.push(
                        "trucks.dispatch.every".into(),
                        &["trucks", "every"],
                        "timetable period must be greater than zero",
                    );
                }
                (1, Some(every.0.max(1)))
            }
        };
        Trucks {
            count: t.count,
            capacity: t.capacity.max(1),
            speed_m_s: t.speed_m_s,
            load_time: t.load_time.0,
            min_load,
            every,
            kwh_per_km: t.kwh_per_km,
        }
    });

    let material_idx = index_ids(p, "materials", scene.materials.iter().map(|m| &m.id));
    let mut materials = Vec::with_capacity(scene.materials.len());
    for (i, m) in scene.materials.iter().enumerate() {
        let mq = quoted(&m.id);
        if !finite_nonneg(m.unit_cost) {
            p.push(
                format!("materials[{i}].unit_cost"),
                &["materials:", &mq, "unit_cost"],
                "unit cost must be a non-negative number",
            );
        }
        if m.order_quantity == 0 || m.factory_order == 0 {
            p.push(format!("materials[{i}]"), &["materials:", &mq], "order quantities must be at least 1");
        }
        materials.push(Material {
            id: m.id.clone(),
            unit_cost: m.unit_cost,
            hub_initial: m.hub_initial,
            reorder_point: m.reorder_point,
            order_quantity: m.order_quantity.max(1),
            lead_time: m.lead_time.0,
            factory_initial: m.factory_initial,
            factory_reorder: m.factory_reorder,
            factory_order: m.factory_order.max(1),
        });
    }

    // Station references.
    for (i, s) in scene.stations.iter().enumerate() {
        let sq = quoted(&s.id);
        if let Some(power) = &s.power {
            let setup = power.setup_kw.unwrap_or(power.busy_kw);
            let values = [power.busy_kw, power.idle_kw, setup, power.down_kw, power.off_kw];
            if values.iter().any(|v| !finite_nonneg(*v)) {
                p.push(
                    format!("stations[{i}].power"),
                    &["stations:", &sq, "power"],
                    "power draws must be non-negative kW",
                );
            }
            stations[i].power = Some(Power {
                busy: power.busy_kw,
                idle: power.idle_kw,
                setup,
                down: power.down_kw,
                off: power.off_kw,
            });
        }
        if let Some(node) = &s.node {
            match node_owner.get(node) {
                Some(&owner) => stations[i].node = Some(owner),
                None => p.push(
                    format!("stations[{i}].node"),
                    &["stations:", &sq, "node"],
                    format!("unknown path node `{node}`"),
                ),
            }
        }
        if let Some(pool) = &s.pool {
            match staff_idx.get(pool) {
                Some(&idx) => {
                    stations[i].pool = Some(idx);
                    stations[i].crew = s.crew;
                    if s.crew > staff[idx as usize].size {
                        p.push(
                            format!("stations[{i}].crew"),
                            &["stations:", &sq, "crew"],
                            format!(
                                "crew of {} exceeds pool `{pool}` of {}",
                                s.crew, staff[idx as usize].size
                            ),
                        );
                    }
                }
                None => p.push(
                    format!("stations[{i}].pool"),
                    &["stations:", &sq, "pool"],
                    format!("unknown staff pool `{pool}`"),
                ),
            }
        } else if s.crew > 0 {
            p.push(format!("stations[{i}].crew"), &["stations:", &sq, "crew"], "a crew needs a `pool`");
        }
    }
    // A factory's fleet must reach every station node of the factory from its homes and back.
    for (fi, factory) in factories.iter().enumerate() {
        let Some(fl) = factory.agv else { continue };
        let fleet = &fleets[fl as usize];
        let Some(graph) = graphs.get(fleet.graph as usize) else { continue };
        for (si, st) in stations.iter().enumerate() {
            let Some((g, n)) = st.node else { continue };
            if st.factory != Some(fi as u32) {
                continue;
            }
            let sq = quoted(&st.id);
            if g != fleet.graph {
                p.push(
                    format!("stations[{si}].node"),
                    &["stations:", &sq, "node"],
                    format!("node is not in path graph `{}` of fleet `{}`", graph.id, fleet.id),
                );
                continue;
            }
            if let Some(&home) = fleet.home.first()
                && (graph.distance_mm(home, n) == crate::graph::UNREACHABLE
                    || graph.distance_mm(n, home) == crate::graph::UNREACHABLE)
            {
                p.push(
                    format!("stations[{si}].node"),
                    &["stations:", &sq, "node"],
                    format!(
                        "node `{}` and home `{}` are not connected both ways",
                        graph.nodes[n as usize].id, graph.nodes[home as usize].id
                    ),
                );
            }
        }
    }

    // Product and step references.
    for (i, prod) in scene.products.iter().enumerate() {
        let pq = quoted(&prod.id);
        for (m, &qty) in &prod.materials {
            match material_idx.get(m) {
                Some(&idx) => products[i].materials.push((idx, qty)),
                None => p.push(
                    format!("products[{i}].materials.{m}"),
                    &["products:", &pq, &quoted(m)],
                    format!("unknown material `{m}`"),
                ),
            }
        }
        for (j, step) in prod.routing.iter().enumerate() {
            if let Some(carry) = &step.carry {
                match fleet_idx.get(carry) {
                    Some(&fl) => products[i].steps[j].carry = Some(fl),
                    None => p.push(
                        format!("products[{i}].routing[{j}].carry"),
                        &["products:", &pq, "carry"],
                        format!("unknown fleet `{carry}`"),
                    ),
                }
            }
        }
    }
    Logistics { staff, graphs, fleets, roads, trucks, materials }
}
