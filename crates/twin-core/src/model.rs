//! The validated, resolved model the engine runs: ids replaced by dense indices,
//! distributions compiled, defaults filled in.

use std::collections::BTreeMap;

use nalgebra::Point2;
use serde::{Deserialize, Serialize};

use crate::dist::{Dist, Sampler};
use crate::error::{SceneError, SceneErrors};
use crate::scene::{self, Arrivals, Scene, Schedules, Source, StationKind};
use crate::time::{HOUR, Micros, SECOND};

/// Dense index of a station in [`Model::stations`].
pub type StationIdx = u32;
/// Dense index of a product in [`Model::products`].
pub type ProductIdx = u16;

/// A validated scene, ready to simulate.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Model {
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
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Factory {
    pub id: String,
    pub name: String,
    pub industry: String,
    pub origin: Point2<f64>,
    pub size: (f64, f64),
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
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Step {
    pub op: String,
    /// Alternative stations, in the order the scene lists them (ties go to the first).
    pub at: Vec<StationIdx>,
    pub time: Sampler,
    /// Mean processing time, microseconds.
    pub mean: f64,
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

        let factories = scene
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
                });
            }
            products.push(Product {
                id: prod.id.clone(),
                name: if prod.name.is_empty() { prod.id.clone() } else { prod.name.clone() },
                steps,
                price: prod.price,
                material_cost: prod.material_cost,
                sink,
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

        if !p.list.is_empty() {
            return Err(SceneErrors(p.list));
        }
        Ok(Model {
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
