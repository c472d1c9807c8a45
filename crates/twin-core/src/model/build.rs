//! Scene -> model: validation that collects every problem with its place, and resolution
//! of ids into dense indices.
//!
//! Each section is built once, complete, from the scene and the sections it refers to,
//! in dependency order (the complex's graphs, fleets, roads and pools first, stations
//! last); nothing patches what an earlier step built. Problems are reported section by
//! section (see [`Phase`]), whatever order the builders visit them in.

use std::collections::{BTreeMap, BTreeSet};

use nalgebra::Point2;

use super::complex::{self, MAX_SITE_M, NodeOwners, off_site, on_site};
use super::problems::{Ids, Phase, Problems, quoted};
use super::types::{
    Calendar, Conveyor, Factory, Failures, Model, PartSource, Power, Product, ProductIdx, Release, Sink,
    StaffPool, Station, StationIdx, Step,
};
use crate::dist::Dist;
use crate::error::SceneErrors;
use crate::graph::Graph;
use crate::scene::{Arrivals, Scene, Schedules, Source};
use crate::time::{Duration, HOUR, MAX_SPAN, Micros, SECOND};

/// Most arrivals per hour a Poisson source may have (one a millisecond): beyond any plant,
/// and low enough that a run's event count stays proportional to what it models.
pub const MAX_ARRIVALS_PER_HOUR: f64 = 3_600_000.0;

impl Model {
    /// Validates `scene` and resolves it. Every problem is reported, each with its field
    /// path and, when `source` is given, the line and column in the file.
    pub fn build(
        scene: &Scene,
        source: Option<&Source>,
        schedules: &Schedules,
    ) -> Result<Model, SceneErrors> {
        let mut problems = Problems::new(source);
        let p = &mut problems;

        let ids = Ids::index(p, scene);
        check_run(p, scene);
        check_programme(p, scene);
        complex::check_utilities(p, scene);
        let staff = complex::staff(p, scene, &ids);
        let (graphs, node_owners) = complex::graphs(p, scene);
        let fleets = complex::fleets(p, scene, &ids, &graphs);
        let roads = complex::roads(p, scene);
        let factories = factories(p, scene, &ids, roads.as_ref());
        let calendars = calendars(p, scene);
        let trucks = complex::trucks(p, scene, roads.as_ref());
        let materials = complex::materials(p, scene);
        let products = products(p, scene, &ids);
        let conveyors = conveyors(p, scene, &ids);
        let sources = sources(p, scene, &ids, schedules);
        let refs = StationRefs { ids: &ids, factories: &factories, staff: &staff, node_owners: &node_owners };
        let stations = stations(p, scene, &refs, &conveyors, &sources, &products);
        let sinks = sinks(p, scene, &ids, &factories);
        complex::check_fleet_reach(p, &factories, &fleets, &graphs, &stations);

        if let Some(errors) = problems.into_errors() {
            return Err(errors);
        }
        Ok(Model {
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
            utilities: scene.utilities.clone(),
            staff,
            graphs,
            fleets,
            roads,
            trucks,
            materials,
            programme: scene.programme.clone(),
        })
    }
}

/// The programme block: an id the registry can use as a NATS subject token, a name, and
/// targets and a baseline that can be compared against.
fn check_programme(p: &mut Problems, scene: &Scene) {
    let Some(prog) = &scene.programme else { return };
    let id = &prog.complex_id;
    if id.is_empty()
        || id.len() > 64
        || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        p.push(
            "programme.complex_id".into(),
            &["programme", "complex_id"],
            format!("complex id `{id}` must be 1..64 characters of [A-Za-z0-9_-]"),
        );
    }
    if prog.name.trim().is_empty() {
        p.push("programme.name".into(), &["programme", "name"], "the complex needs a name");
    }
    let va = prog.targets.value_added_rate;
    if !(va > 0.0 && va < 1.0) {
        p.push(
            "programme.targets.value_added_rate".into(),
            &["programme", "value_added_rate"],
            format!("target value-added rate {va} must be a fraction between 0 and 1 (0.30 for 30%)"),
        );
    }
    let gain = prog.targets.labour_productivity_gain;
    if !(gain.is_finite() && gain > 0.0) {
        p.push(
            "programme.targets.labour_productivity_gain".into(),
            &["programme", "labour_productivity_gain"],
            format!("target labour-productivity gain {gain} must be a positive fraction (0.40 for +40%)"),
        );
    }
    if let Some(base) = prog.baseline_labour_productivity
        && !(base.is_finite() && base > 0.0)
    {
        p.push(
            "programme.baseline_labour_productivity".into(),
            &["programme", "baseline_labour_productivity"],
            format!("baseline labour productivity {base} must be positive"),
        );
    }
}

fn check_run(p: &mut Problems, scene: &Scene) {
    p.phase(Phase::Run);
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
}

/// Factories with their docks (road nodes) and fleets resolved.
fn factories(p: &mut Problems, scene: &Scene, ids: &Ids, roads: Option<&(Graph, u32)>) -> Vec<Factory> {
    scene
        .factories
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let fq = quoted(&f.id);
            p.phase(Phase::Factories);
            if !(f.size.0 > 0.0 && f.size.1 > 0.0 && on_site(f.size)) {
                p.push(
                    format!("factories[{i}].size"),
                    &["factories:", &fq, "size"],
                    format!("width and depth must be positive metres, at most {MAX_SITE_M}"),
                );
            }
            if !on_site(f.origin) {
                p.push(format!("factories[{i}].origin"), &["factories:", &fq, "origin"], off_site(f.origin));
            }
            p.phase(Phase::FactoryRefs);
            let dock = f.dock.as_ref().and_then(|dock| complex::dock(p, i, &fq, dock, roads));
            let agv = f.agv.as_ref().and_then(|agv| {
                let fleet = ids.fleets.get(agv).copied();
                if fleet.is_none() {
                    p.push(
                        format!("factories[{i}].agv"),
                        &["factories:", &fq, "agv"],
                        format!("unknown fleet `{agv}`"),
                    );
                }
                fleet
            });
            Factory {
                id: f.id.clone(),
                name: if f.name.is_empty() { f.id.clone() } else { f.name.clone() },
                industry: f.industry.clone(),
                origin: Point2::new(f.origin.0, f.origin.1),
                size: f.size,
                agv,
                dock,
            }
        })
        .collect()
}

fn calendars(p: &mut Problems, scene: &Scene) -> Vec<Calendar> {
    p.phase(Phase::Calendars);
    scene
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
            Calendar {
                id: c.id.clone(),
                period: c.period.0.max(1),
                shifts: c.shifts.iter().map(|s| (s.0.0, s.1.0)).collect(),
            }
        })
        .collect()
}

/// What stations refer to besides their own section.
struct StationRefs<'a> {
    ids: &'a Ids,
    factories: &'a [Factory],
    staff: &'a [StaffPool],
    node_owners: &'a NodeOwners,
}

/// Stations, with the conveyors leaving them, the saturated sources feeding them, their
/// power draw, path node and crew resolved.
fn stations(
    p: &mut Problems,
    scene: &Scene,
    refs: &StationRefs,
    conveyors: &[Conveyor],
    sources: &[PartSource],
    products: &[Product],
) -> Vec<Station> {
    // Saturated sources feed the stations of their product's first step.
    let mut saturated_by: BTreeMap<StationIdx, Vec<u32>> = BTreeMap::new();
    for (i, src) in sources.iter().enumerate() {
        if !matches!(src.release, Release::Saturated) {
            continue;
        }
        if let Some(&(_, prod)) = src.mix.first()
            && let Some(first) = products.get(usize::from(prod)).and_then(|x| x.steps.first())
        {
            for &st in &first.at {
                saturated_by.entry(st).or_default().push(i as u32);
            }
        }
    }
    let mut per_factory_count: BTreeMap<Option<u32>, usize> = BTreeMap::new();
    let mut stations = Vec::with_capacity(scene.stations.len());
    for (i, s) in scene.stations.iter().enumerate() {
        let sq = quoted(&s.id);
        let push = |p: &mut Problems, field: &str, msg: String| {
            p.push(format!("stations[{i}].{field}"), &["stations:", &sq, field], msg);
        };
        p.phase(Phase::Stations);
        if s.servers == 0 {
            push(p, "servers", format!("station `{}` needs at least one server", s.id));
        }
        if s.buffer == Some(0) {
            push(
                p,
                "buffer",
                format!("buffer capacity of `{}` is 0; omit `buffer` for unlimited or give at least 1", s.id),
            );
        }
        if !(0.0..1.0).contains(&s.scrap) {
            push(p, "scrap", format!("scrap rate must be in [0, 1), got {}", s.scrap));
        }
        if let Some(setup) = &s.setup {
            for m in setup.problems(true) {
                push(p, "setup", m);
            }
        }
        let failures = s.failures.as_ref().map(|f| {
            if f.mtbf.0 == 0 {
                push(p, "failures", "mtbf must be greater than zero".into());
            }
            let repair = f.repair.clone().unwrap_or(Dist::Exp { mean: f.mttr });
            for m in repair.problems(true) {
                push(p, "failures", format!("repair time: {m}"));
            }
            Failures { mtbf: f.mtbf.0 as f64, repair: repair.sampler() }
        });
        let factory = s.factory.as_ref().and_then(|f| {
            let idx = refs.ids.factories.get(f).copied();
            if idx.is_none() {
                push(p, "factory", format!("unknown factory `{f}`"));
            }
            idx
        });
        let calendar = s.calendar.as_ref().and_then(|c| {
            let idx = refs.ids.calendars.get(c).copied();
            if idx.is_none() {
                push(p, "calendar", format!("unknown calendar `{c}`"));
            }
            idx
        });
        if let Some(at) = s.pos.filter(|&at| !on_site(at)) {
            push(p, "pos", off_site(at));
        }
        let slot = per_factory_count.entry(factory).or_default();
        let pos = s.pos.map_or_else(
            || auto_position(factory.map(|f| &refs.factories[f as usize]), *slot),
            |(x, y)| Point2::new(x, y),
        );
        *slot += 1;

        p.phase(Phase::StationRefs);
        let power = s.power.as_ref().map(|power| {
            let setup = power.setup_kw.unwrap_or(power.busy_kw);
            let values = [power.busy_kw, power.idle_kw, setup, power.down_kw, power.off_kw];
            if values.iter().any(|v| !complex::finite_nonneg(*v)) {
                push(p, "power", "power draws must be non-negative kW".into());
            }
            Power { busy: power.busy_kw, idle: power.idle_kw, setup, down: power.down_kw, off: power.off_kw }
        });
        let node = s.node.as_ref().and_then(|node| {
            let owner = refs.node_owners.get(node).copied();
            if owner.is_none() {
                push(p, "node", format!("unknown path node `{node}`"));
            }
            owner
        });
        let (pool, crew) = match &s.pool {
            Some(pool) => match refs.ids.staff.get(pool) {
                Some(&idx) => {
                    let size = refs.staff[idx as usize].size;
                    if s.crew > size {
                        push(p, "crew", format!("crew of {} exceeds pool `{pool}` of {size}", s.crew));
                    }
                    (Some(idx), s.crew)
                }
                None => {
                    push(p, "pool", format!("unknown staff pool `{pool}`"));
                    (None, 0)
                }
            },
            None => {
                if s.crew > 0 {
                    push(p, "crew", "a crew needs a `pool`".into());
                }
                (None, 0)
            }
        };
        let index = i as StationIdx;
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
            conveyors_out: conveyors
                .iter()
                .enumerate()
                .filter(|(_, c)| c.from == index)
                .map(|(ci, c)| (c.to, ci as u32))
                .collect(),
            saturated_by: saturated_by.remove(&index).unwrap_or_default(),
            power,
            node,
            pool,
            crew,
        });
    }
    stations
}

fn sinks(p: &mut Problems, scene: &Scene, ids: &Ids, factories: &[Factory]) -> Vec<Sink> {
    p.phase(Phase::Sinks);
    scene
        .sinks
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let factory = s.factory.as_ref().and_then(|f| {
                let idx = ids.factories.get(f).copied();
                if idx.is_none() {
                    p.push(
                        format!("sinks[{i}].factory"),
                        &["sinks:", &quoted(&s.id), "factory"],
                        format!("unknown factory `{f}`"),
                    );
                }
                idx
            });
            if let Some(at) = s.pos.filter(|&at| !on_site(at)) {
                p.push(format!("sinks[{i}].pos"), &["sinks:", &quoted(&s.id), "pos"], off_site(at));
            }
            let pos = s.pos.map_or_else(
                || auto_position(factory.map(|f| &factories[f as usize]), 0),
                |(x, y)| Point2::new(x, y),
            );
            Sink { id: s.id.clone(), factory, pos }
        })
        .collect()
}

/// Products with their routings, sinks, materials and carrying fleets resolved.
fn products(p: &mut Problems, scene: &Scene, ids: &Ids) -> Vec<Product> {
    let mut products = Vec::with_capacity(scene.products.len());
    for (i, prod) in scene.products.iter().enumerate() {
        let pq = quoted(&prod.id);
        p.phase(Phase::Products);
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
            let idx = ids.sinks.get(s).copied();
            if idx.is_none() {
                p.push(
                    format!("products[{i}].sink"),
                    &["products:", &pq, "sink"],
                    format!("unknown sink `{s}`"),
                );
            }
            idx
        });
        p.phase(Phase::ProductRefs);
        let mut materials = Vec::new();
        for (m, &qty) in &prod.materials {
            match ids.materials.get(m) {
                Some(&idx) => materials.push((idx, qty)),
                None => p.push(
                    format!("products[{i}].materials.{m}"),
                    &["products:", &pq, &quoted(m)],
                    format!("unknown material `{m}`"),
                ),
            }
        }
        let mut steps = Vec::with_capacity(prod.routing.len());
        for (j, step) in prod.routing.iter().enumerate() {
            let mut anchors: Vec<&str> = vec!["products:", &pq];
            anchors.extend(std::iter::repeat_n("at:", j + 1));
            let path = format!("products[{i}].routing[{j}]");
            p.phase(Phase::Products);
            if step.at.is_empty() {
                p.push(
                    format!("{path}.at"),
                    &anchors,
                    format!("step {j} of `{}` names no station that can do it", prod.id),
                );
            }
            let mut at = Vec::with_capacity(step.at.len());
            for (k, name) in step.at.iter().enumerate() {
                match ids.stations.get(name) {
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
            p.phase(Phase::ProductRefs);
            let carry = step.carry.as_ref().and_then(|carry| {
                let fleet = ids.fleets.get(carry).copied();
                if fleet.is_none() {
                    p.push(
                        format!("{path}.carry"),
                        &["products:", &pq, "carry"],
                        format!("unknown fleet `{carry}`"),
                    );
                }
                fleet
            });
            steps.push(Step {
                op: step.op.clone(),
                at,
                time: step.time.sampler(),
                mean: step.time.mean(),
                carry,
            });
        }
        products.push(Product {
            id: prod.id.clone(),
            name: if prod.name.is_empty() { prod.id.clone() } else { prod.name.clone() },
            steps,
            price: prod.price,
            material_cost: prod.material_cost,
            sink,
            materials,
        });
    }
    products
}

fn conveyors(p: &mut Problems, scene: &Scene, ids: &Ids) -> Vec<Conveyor> {
    p.phase(Phase::Conveyors);
    let mut conveyors = Vec::with_capacity(scene.conveyors.len());
    let mut links: BTreeSet<(StationIdx, StationIdx)> = BTreeSet::new();
    for (i, c) in scene.conveyors.iter().enumerate() {
        let cq = quoted(&c.id);
        let mut lookup = |field: &str, name: &str| {
            let idx = ids.stations.get(name).copied();
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
            if !(value.is_finite() && value > 0.0 && value <= MAX_SITE_M) {
                p.push(
                    format!("conveyors[{i}].{field}"),
                    &["conveyors:", &cq, field],
                    format!("{field} must be positive and at most {MAX_SITE_M}, got {value}"),
                );
            }
        }
        if c.length_m / c.speed_m_s * SECOND as f64 > MAX_SPAN as f64 {
            p.push(
                format!("conveyors[{i}].speed_m_s"),
                &["conveyors:", &cq, "speed_m_s"],
                format!("a part would ride the belt longer than {}", Duration(MAX_SPAN)),
            );
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
        if !links.insert((from, to)) {
            p.push(
                format!("conveyors[{i}]"),
                &["conveyors:", &cq],
                format!("a conveyor from `{}` to `{}` already exists", c.from, c.to),
            );
        }
        let travel = (c.length_m / c.speed_m_s * SECOND as f64).round();
        let travel = if travel.is_finite() && travel > 0.0 { travel as Micros } else { 0 };
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
    conveyors
}

fn sources(p: &mut Problems, scene: &Scene, ids: &Ids, schedules: &Schedules) -> Vec<PartSource> {
    p.phase(Phase::Sources);
    let mut sources = Vec::with_capacity(scene.sources.len());
    for (i, s) in scene.sources.iter().enumerate() {
        let sq = quoted(&s.id);
        let mut mix = Vec::new();
        let total: f64 = s.mix.values().filter(|w| w.is_finite() && **w > 0.0).sum();
        let mut acc = 0.0;
        for (name, &w) in &s.mix {
            match ids.products.get(name) {
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
                if !(per_hour.is_finite() && *per_hour > 0.0 && *per_hour <= MAX_ARRIVALS_PER_HOUR) {
                    p.push(
                        format!("sources[{i}].arrivals.per_hour"),
                        &["sources:", &sq, "per_hour"],
                        format!("arrival rate must be positive and at most {MAX_ARRIVALS_PER_HOUR} per hour, got {per_hour}"),
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
                    match ids.products.get(&row.product) {
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
                Release::Saturated
            }
        };
        if let Some(at) = s.pos.filter(|&at| !on_site(at)) {
            p.push(format!("sources[{i}].pos"), &["sources:", &sq, "pos"], off_site(at));
        }
        let pos = s.pos.map_or_else(|| Point2::new(-10.0, 10.0 * i as f64), |(x, y)| Point2::new(x, y));
        sources.push(PartSource { id: s.id.clone(), release, mix, due: s.due.map(|d| d.0), pos });
    }
    sources
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
