//! The complex-level sections of a scene: utilities, worker pools, AGV path graphs and
//! fleets, the road network with its hub and docks, trucks and bought-in materials.

use std::collections::BTreeMap;

use nalgebra::Point2;

use super::problems::{Ids, Phase, Problems, quoted};
use super::types::{Battery, Factory, Fleet, Material, StaffPool, Station, Trucks};
use crate::graph::{Graph, GraphEdge, GraphNode, UNREACHABLE, length_mm};
use crate::scene::{Scene, TruckDispatch};

/// The graph and node of every path node by id (node ids are unique across all path
/// graphs, so that a station can name one).
pub(super) type NodeOwners = BTreeMap<String, (u32, u32)>;

/// How far from the site plan's origin any point may lie, metres (100 km): beyond any
/// complex, and small enough that path lengths in whole millimetres add up without overflow.
pub const MAX_SITE_M: f64 = 100_000.0;

/// Whether `(x, y)` is a point of the site plan (finite, within [`MAX_SITE_M`]).
pub(super) fn on_site((x, y): (f64, f64)) -> bool {
    x.is_finite() && y.is_finite() && x.abs() <= MAX_SITE_M && y.abs() <= MAX_SITE_M
}

/// The message for a point off the site plan.
pub(super) fn off_site((x, y): (f64, f64)) -> String {
    format!("coordinates must be finite and within {MAX_SITE_M} m of the origin, got ({x}, {y})")
}

pub(super) fn finite_nonneg(x: f64) -> bool {
    x.is_finite() && x >= 0.0
}

fn finite_pos(x: f64) -> bool {
    x.is_finite() && x > 0.0
}

pub(super) fn check_utilities(p: &mut Problems, scene: &Scene) {
    p.phase(Phase::Utilities);
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
}

pub(super) fn staff(p: &mut Problems, scene: &Scene, ids: &Ids) -> Vec<StaffPool> {
    p.phase(Phase::Staff);
    let mut staff = Vec::with_capacity(scene.staff.len());
    for (i, s) in scene.staff.iter().enumerate() {
        let sq = quoted(&s.id);
        let factory = s.factory.as_deref().and_then(|f| {
            let idx = ids.factories.get(f).copied();
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
            let idx = ids.calendars.get(c).copied();
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
    staff
}

/// The AGV path graphs with their chargers, and who owns each node id.
pub(super) fn graphs(p: &mut Problems, scene: &Scene) -> (Vec<Graph>, NodeOwners) {
    p.phase(Phase::Paths);
    let mut node_owners = NodeOwners::new();
    let mut graphs = Vec::with_capacity(scene.paths.len());
    for (gi, g) in scene.paths.iter().enumerate() {
        let gq = quoted(&g.id);
        let mut local: BTreeMap<&str, u32> = BTreeMap::new();
        let mut nodes = Vec::with_capacity(g.nodes.len());
        for (ni, (id, x, y)) in g.nodes.iter().enumerate() {
            let path = format!("paths[{gi}].nodes[{ni}]");
            if !on_site((*x, *y)) {
                p.push(path.clone(), &["paths:", &gq, &quoted(id)], off_site((*x, *y)));
            }
            if node_owners.insert(id.clone(), (gi as u32, ni as u32)).is_some() {
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
        let mut chargers = Vec::new();
        for (ci, c) in g.chargers.iter().enumerate() {
            match nodes.iter().position(|n| n.id == *c) {
                Some(n) => chargers.push(n as u32),
                None => p.push(
                    format!("paths[{gi}].chargers[{ci}]"),
                    &["paths:", &gq, "chargers"],
                    format!("unknown charger node `{c}`"),
                ),
            }
        }
        graphs.push(Graph::new(g.id.clone(), nodes, edges, chargers));
    }
    (graphs, node_owners)
}

/// AGV fleets; a fleet belongs to the first factory that names it as its `agv`.
pub(super) fn fleets(p: &mut Problems, scene: &Scene, ids: &Ids, graphs: &[Graph]) -> Vec<Fleet> {
    p.phase(Phase::Fleets);
    let graph_idx: BTreeMap<&str, u32> =
        scene.paths.iter().enumerate().map(|(i, g)| (g.id.as_str(), i as u32)).collect();
    let mut fleets = Vec::with_capacity(scene.fleets.len());
    for (fi, f) in scene.fleets.iter().enumerate() {
        let fq = quoted(&f.id);
        let push = |p: &mut Problems, field: &str, msg: String| {
            p.push(format!("fleets[{fi}].{field}"), &["fleets:", &fq, field], msg);
        };
        let graph = graph_idx.get(f.paths.as_str()).copied();
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
        let factory = scene
            .factories
            .iter()
            .position(|fac| fac.agv.as_ref().is_some_and(|agv| ids.fleets.get(agv) == Some(&(fi as u32))))
            .map(|i| i as u32);
        fleets.push(Fleet {
            id: f.id.clone(),
            graph: graph.unwrap_or(0),
            factory,
            count: f.count,
            speed_m_s: f.speed_m_s,
            capacity: f.capacity.max(1),
            load_time: f.load_time.0,
            home,
            battery,
            rule: f.rule,
        });
    }
    fleets
}

/// The road network and its hub node.
pub(super) fn roads(p: &mut Problems, scene: &Scene) -> Option<(Graph, u32)> {
    p.phase(Phase::Roads);
    let r = scene.roads.as_ref()?;
    let mut local: BTreeMap<&str, u32> = BTreeMap::new();
    let mut nodes = Vec::new();
    for (ni, (id, x, y)) in r.nodes.iter().enumerate() {
        if !on_site((*x, *y)) {
            p.push(format!("roads.nodes[{ni}]"), &["roads", &quoted(id)], off_site((*x, *y)));
        }
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
    Some((Graph::new("roads".into(), nodes, edges, Vec::new()), hub))
}

/// The road node of factory `i`'s dock, which must have a road to the hub and back.
pub(super) fn dock(
    p: &mut Problems,
    i: usize,
    fq: &str,
    dock: &str,
    roads: Option<&(Graph, u32)>,
) -> Option<u32> {
    let path = format!("factories[{i}].dock");
    let at = ["factories:", fq, "dock"];
    let Some((g, hub)) = roads else {
        p.push(path, &at, "a dock needs a `roads` section");
        return None;
    };
    let Some(n) = g.node(dock) else {
        p.push(path, &at, format!("unknown road node `{dock}`"));
        return None;
    };
    if g.distance_mm(*hub, n) == UNREACHABLE || g.distance_mm(n, *hub) == UNREACHABLE {
        p.push(path, &at, format!("dock `{dock}` has no road to the hub"));
    }
    Some(n)
}

pub(super) fn trucks(p: &mut Problems, scene: &Scene, roads: Option<&(Graph, u32)>) -> Option<Trucks> {
    p.phase(Phase::Trucks);
    let t = scene.trucks.as_ref()?;
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
        p.push("trucks.kwh_per_km".into(), &["trucks", "kwh_per_km"], "energy per km must be non-negative");
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
    Some(Trucks {
        count: t.count,
        capacity: t.capacity.max(1),
        speed_m_s: t.speed_m_s,
        load_time: t.load_time.0,
        min_load,
        every,
        kwh_per_km: t.kwh_per_km,
    })
}

pub(super) fn materials(p: &mut Problems, scene: &Scene) -> Vec<Material> {
    p.phase(Phase::Materials);
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
    materials
}

/// A factory's fleet must run on the graph of the factory's station nodes and reach
/// every one of them from its homes and back.
pub(super) fn check_fleet_reach(
    p: &mut Problems,
    factories: &[Factory],
    fleets: &[Fleet],
    graphs: &[Graph],
    stations: &[Station],
) {
    p.phase(Phase::FleetReach);
    for (fi, factory) in factories.iter().enumerate() {
        let Some(fleet) = factory.agv.and_then(|fl| fleets.get(fl as usize)) else { continue };
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
                && (graph.distance_mm(home, n) == UNREACHABLE || graph.distance_mm(n, home) == UNREACHABLE)
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
}
