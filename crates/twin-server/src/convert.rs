//! Every conversion between twin-core types and twin.v1 wire types, and from core errors
//! to gRPC statuses. Nothing else in the workspace converts between the two.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use tonic::Status;
use twin_core::StationState;
use twin_core::graph::Graph;
use twin_core::model::{Model, Release};
use twin_core::scene::StationKind;
use twin_core::sim::agv::{VehicleState, VehicleView};
use twin_core::sim::trucks::TruckView;
use twin_core::time::Micros;
use twin_core::{CommandError, Report, StationView};
use twin_proto::v1;

use crate::sim::{Clock, ControlError, Injection, LiveScene, Receipt, ReportReply, Speed};

// ----- Layout -----

/// Footprint drawn for a station of each kind, `(along x, along y)` in metres. The core
/// has no station sizes; these are typical floor areas of such equipment including its
/// working envelope:
/// - machine tool (CNC, press): 4 x 3 m;
/// - robot cell or robot arm with its fence: 5 x 5 m;
/// - oven / paint or curing line: 6 x 3 m;
/// - inspection / test bench: 3 x 2 m;
/// - assembly station: 5 x 3 m;
/// - packing / palletising: 4 x 3 m.
fn station_size(kind: StationKind) -> (f64, f64) {
    match kind {
        StationKind::Machine => (4.0, 3.0),
        StationKind::RobotCell | StationKind::RobotArm => (5.0, 5.0),
        StationKind::Oven => (6.0, 3.0),
        StationKind::Inspection => (3.0, 2.0),
        StationKind::Assembly => (5.0, 3.0),
        StationKind::Packing => (4.0, 3.0),
    }
}

/// Body of an AGV `(length, width)`, metres: a typical unit-load AMR.
const AGV_BODY_M: (f64, f64) = (1.2, 0.8);
/// Body of a truck `(length, width)`, metres: a rigid delivery truck.
const TRUCK_BODY_M: (f64, f64) = (10.0, 2.5);
/// Footprint of the hub building `(width, depth)`, metres, drawn centred on the hub's
/// road node; the core models the hub as a road node only.
const HUB_SIZE_M: (f64, f64) = (30.0, 20.0);
/// Fleet id of the truck pool in Layout.vehicles (the core has one pool).
pub const TRUCK_FLEET_ID: &str = "trucks";

fn station_kind(kind: StationKind) -> v1::StationKind {
    match kind {
        StationKind::Machine | StationKind::Oven => v1::StationKind::Machine,
        StationKind::RobotCell | StationKind::RobotArm => v1::StationKind::RobotCell,
        StationKind::Inspection => v1::StationKind::Inspection,
        StationKind::Assembly => v1::StationKind::Assembly,
        StationKind::Packing => v1::StationKind::Packaging,
    }
}

fn buffer_capacity(buffer: Option<u32>) -> v1::BufferCapacity {
    match buffer {
        Some(limit) => v1::BufferCapacity { limit, unlimited: false },
        None => v1::BufferCapacity { limit: 0, unlimited: true },
    }
}

/// A flow-link endpoint as `(EndpointKind, index)`.
type End = (i32, u32);

/// How parts leaving station `a` for station `b` travel: the core's own choice
/// (`Sim::place_towards`) made on the static model.
fn flow_mode(model: &Model, a: u32, b: u32, carry: Option<u32>) -> v1::FlowMode {
    let (sa, sb) = (&model.stations[a as usize], &model.stations[b as usize]);
    if sa.conveyors_out.iter().any(|&(to, _)| to == b) {
        return v1::FlowMode::Conveyor;
    }
    let fleet = carry.or_else(|| {
        let f = sa.factory?;
        (sb.factory == Some(f)).then(|| model.factories[f as usize].agv).flatten()
    });
    if let Some(fleet) = fleet.and_then(|f| model.fleets.get(f as usize))
        && let (Some((ga, na)), Some((gb, nb))) = (sa.node, sb.node)
        && ga == fleet.graph
        && gb == fleet.graph
        && na != nb
    {
        return v1::FlowMode::Agv;
    }
    if sa.factory != sb.factory
        && has_trucks(model)
        && let (Some(fa), Some(fb)) = (sa.factory, sb.factory)
        && let (Some(da), Some(db)) = (model.factories[fa as usize].dock, model.factories[fb as usize].dock)
        && da != db
    {
        return v1::FlowMode::Truck;
    }
    v1::FlowMode::Direct
}

fn has_trucks(model: &Model) -> bool {
    model.roads.is_some() && model.trucks.as_ref().is_some_and(|t| t.count > 0)
}

/// Whether finished parts of station `s` are shipped by truck from its factory's dock to
/// the hub (the core's `finish`).
fn ships_to_hub(model: &Model, s: u32) -> bool {
    has_trucks(model)
        && model.stations[s as usize]
            .factory
            .and_then(|f| model.factories[f as usize].dock)
            .zip(model.roads.as_ref().map(|r| r.1))
            .is_some_and(|(dock, hub)| dock != hub)
}

fn flow_links(model: &Model) -> Vec<v1::FlowLink> {
    use v1::EndpointKind as K;
    // One link per (from, to) pair; should two products move parts between the same two
    // stations by different means, the first routing's mode is shown.
    let mut links: BTreeMap<(End, End), i32> = BTreeMap::new();
    let mut insert = |from: End, to: End, mode: v1::FlowMode| {
        links.entry((from, to)).or_insert(mode as i32);
    };
    let station = |s: u32| (K::Station as i32, s);
    for (src_idx, src) in model.sources.iter().enumerate() {
        let mut products: Vec<usize> = src.mix.iter().map(|m| usize::from(m.1)).collect();
        if let Release::Schedule(rows) = &src.release {
            products.extend(rows.iter().map(|r| usize::from(r.1)));
        }
        for p in products {
            if let Some(first) = model.products.get(p).and_then(|p| p.steps.first()) {
                for &s in &first.at {
                    insert((K::Source as i32, src_idx as u32), station(s), v1::FlowMode::Direct);
                }
            }
        }
    }
    for product in &model.products {
        for pair in product.steps.windows(2) {
            for &a in &pair[0].at {
                for &b in &pair[1].at {
                    let mode = flow_mode(model, a, b, pair[1].carry);
                    insert(station(a), station(b), mode);
                }
            }
        }
        if let Some(last) = product.steps.last() {
            for &a in &last.at {
                if let Some(sink) = product.sink {
                    insert(station(a), (K::Sink as i32, sink), v1::FlowMode::Direct);
                }
                if ships_to_hub(model, a) {
                    insert(station(a), (K::Hub as i32, 0), v1::FlowMode::Truck);
                }
            }
        }
    }
    links
        .into_iter()
        .enumerate()
        .map(|(index, ((from, to), mode))| v1::FlowLink {
            index: index as u32,
            from: Some(v1::Endpoint { kind: from.0, index: from.1 }),
            to: Some(v1::Endpoint { kind: to.0, index: to.1 }),
            mode,
        })
        .collect()
}

/// Which flow links the server measures, and from which core counters.
#[derive(Debug, Default)]
pub struct FlowIndex {
    /// Link of each `(from station, to station)` pair.
    pairs: HashMap<(u32, u32), u32>,
    /// Per station, the links by which its finished parts leave (to a sink and/or the
    /// hub); empty where the count cannot be told apart (scrap, several sinks).
    exits: Vec<Vec<u32>>,
    /// Per link, whether it is measured at all (links from sources are not).
    measured: Vec<bool>,
}

impl FlowIndex {
    /// Indexes the layout's flow links.
    pub fn new(model: &Model, links: &[v1::FlowLink]) -> FlowIndex {
        use v1::EndpointKind as K;
        let mut index = FlowIndex {
            pairs: HashMap::new(),
            exits: vec![Vec::new(); model.stations.len()],
            measured: vec![false; links.len()],
        };
        let mut sinks_of = vec![0u32; model.stations.len()];
        for link in links {
            let (Some(from), Some(to)) = (link.from, link.to) else { continue };
            if from.kind() != K::Station {
                continue;
            }
            match to.kind() {
                K::Station => {
                    index.pairs.insert((from.index, to.index), link.index);
                    index.measured[link.index as usize] = true;
                }
                K::Sink | K::Hub => {
                    if to.kind() == K::Sink
                        && let Some(n) = sinks_of.get_mut(from.index as usize)
                    {
                        *n += 1;
                    }
                    if let Some(e) = index.exits.get_mut(from.index as usize) {
                        e.push(link.index);
                    }
                }
                _ => {}
            }
        }
        for (s, exits) in index.exits.iter_mut().enumerate() {
            // Scrapped parts count as processed but leave by no link; with several sinks
            // the split is unknown. Those exits stay unmeasured.
            if model.stations[s].scrap > 0.0 || sinks_of[s] > 1 {
                exits.clear();
            }
            for &l in exits.iter() {
                index.measured[l as usize] = true;
            }
        }
        index
    }

    /// Cumulative parts moved along every link since the statistics were reset (0 for
    /// unmeasured links), from the station pair counts and the stations' completions.
    pub fn counts(&self, pairs: impl Iterator<Item = (u32, u32, u64)>, views: &[StationView]) -> Vec<u64> {
        let mut counts = vec![0u64; self.measured.len()];
        let mut sent = vec![0u64; views.len()];
        for (from, to, n) in pairs {
            if let Some(s) = sent.get_mut(from as usize) {
                *s += n;
            }
            if let Some(&l) = self.pairs.get(&(from, to)) {
                counts[l as usize] += n;
            }
        }
        for (s, exits) in self.exits.iter().enumerate() {
            let (Some(view), Some(sent)) = (views.get(s), sent.get(s)) else { continue };
            let left = view.completed.saturating_sub(*sent);
            for &l in exits {
                counts[l as usize] = left;
            }
        }
        counts
    }

    /// The wire rates of the measured links.
    pub fn rates(&self, per_hour: &[f64]) -> Vec<v1::FlowRate> {
        self.measured
            .iter()
            .zip(per_hour)
            .enumerate()
            .filter(|(_, (m, _))| **m)
            .map(|(i, (_, &r))| v1::FlowRate { link_index: i as u32, parts_per_hour: r })
            .collect()
    }
}

/// The factory a path graph belongs to: the factory of a fleet that runs on it, else of
/// a station that stands on it.
fn graph_factory(model: &Model, g: u32) -> Option<u32> {
    model.fleets.iter().filter(|f| f.graph == g).find_map(|f| f.factory).or_else(|| {
        model.stations.iter().filter(|s| s.node.is_some_and(|(sg, _)| sg == g)).find_map(|s| s.factory)
    })
}

fn path_graph(model: &Model, g: u32, graph: &Graph) -> v1::PathGraph {
    let station_at: BTreeMap<u32, &str> = model
        .stations
        .iter()
        .rev()
        .filter_map(|s| s.node.filter(|&(sg, _)| sg == g).map(|(_, n)| (n, s.id.as_str())))
        .collect();
    let node_id = |n: u32| graph.nodes.get(n as usize).map_or_else(String::new, |n| n.id.clone());
    v1::PathGraph {
        factory_id: graph_factory(model, g)
            .and_then(|f| model.factories.get(f as usize))
            .map_or_else(String::new, |f| f.id.clone()),
        nodes: graph
            .nodes
            .iter()
            .enumerate()
            .map(|(n, node)| v1::PathNode {
                id: node.id.clone(),
                x: node.pos.x,
                y: node.pos.y,
                charger: graph.chargers.contains(&(n as u32)),
                station_id: station_at.get(&(n as u32)).map_or_else(String::new, |s| (*s).to_string()),
            })
            .collect(),
        edges: graph
            .edges
            .iter()
            .map(|e| v1::PathEdge {
                from_node_id: node_id(e.from),
                to_node_id: node_id(e.to),
                two_way: e.two_way,
                speed_limit_m_s: e.speed_limit.unwrap_or(0.0),
                length_m: e.length_m(),
            })
            .collect(),
        charging_node_ids: graph.chargers.iter().map(|&n| node_id(n)).collect(),
    }
}

fn road_network(model: &Model) -> Option<(v1::RoadNetwork, v1::Hub)> {
    let (roads, hub) = model.roads.as_ref()?;
    let node_id = |n: u32| roads.nodes.get(n as usize).map_or_else(String::new, |n| n.id.clone());
    let network = v1::RoadNetwork {
        nodes: roads
            .nodes
            .iter()
            .enumerate()
            .map(|(n, node)| {
                let dock_of = model.factories.iter().find(|f| f.dock == Some(n as u32));
                let kind = if n as u32 == *hub {
                    v1::RoadNodeKind::Hub
                } else if dock_of.is_some() {
                    v1::RoadNodeKind::Dock
                } else {
                    v1::RoadNodeKind::Junction
                };
                v1::RoadNode {
                    id: node.id.clone(),
                    x: node.pos.x,
                    y: node.pos.y,
                    kind: kind as i32,
                    factory_id: dock_of.map_or_else(String::new, |f| f.id.clone()),
                }
            })
            .collect(),
        edges: roads
            .edges
            .iter()
            .map(|e| v1::RoadEdge {
                from_node_id: node_id(e.from),
                to_node_id: node_id(e.to),
                two_way: e.two_way,
                speed_limit_m_s: e.speed_limit.unwrap_or(0.0),
                length_m: e.length_m(),
            })
            .collect(),
    };
    let gate = roads.nodes.get(*hub as usize)?;
    let hub = v1::Hub {
        id: gate.id.clone(),
        name: "Hub".into(),
        x: gate.pos.x,
        y: gate.pos.y,
        width_m: HUB_SIZE_M.0,
        depth_m: HUB_SIZE_M.1,
        road_node_id: gate.id.clone(),
    };
    Some((network, hub))
}

/// Layout vehicles: the AGVs in the core's vehicle order (`agv_fleets` holds the fleet
/// of each, as `Sim::vehicle_views` lists them), then `trucks` trucks.
fn vehicles(model: &Model, agv_fleets: &[u32], trucks: usize) -> Vec<v1::Vehicle> {
    let mut out = Vec::with_capacity(agv_fleets.len() + trucks);
    let mut per_fleet: HashMap<u32, u32> = HashMap::new();
    for &f in agv_fleets {
        let Some(fleet) = model.fleets.get(f as usize) else { continue };
        let n = per_fleet.entry(f).or_default();
        *n += 1;
        out.push(v1::Vehicle {
            id: format!("{}-{n}", fleet.id),
            index: out.len() as u32,
            kind: v1::VehicleKind::Agv as i32,
            fleet_id: fleet.id.clone(),
            factory_id: fleet
                .factory
                .and_then(|f| model.factories.get(f as usize))
                .map_or_else(String::new, |f| f.id.clone()),
            capacity: fleet.capacity,
            max_speed_m_s: fleet.speed_m_s,
            length_m: AGV_BODY_M.0,
            width_m: AGV_BODY_M.1,
        });
    }
    if let Some(spec) = &model.trucks {
        for n in 1..=trucks {
            out.push(v1::Vehicle {
                id: format!("truck-{n}"),
                index: out.len() as u32,
                kind: v1::VehicleKind::Truck as i32,
                fleet_id: TRUCK_FLEET_ID.into(),
                factory_id: String::new(),
                capacity: spec.capacity,
                max_speed_m_s: spec.speed_m_s,
                length_m: TRUCK_BODY_M.0,
                width_m: TRUCK_BODY_M.1,
            });
        }
    }
    out
}

/// The static layout of a model. `agv_fleets` is the fleet of each AGV and `trucks` the
/// number of trucks of a fresh run (`Sim::vehicle_views` / `Sim::truck_views`), so that
/// vehicle indices match the live views. `layout_generation` is left 0; replies fill it.
pub fn layout(model: &Model, scene_name: &str, agv_fleets: &[u32], trucks: usize) -> v1::Layout {
    let factory_id = |f: Option<u32>| {
        f.and_then(|f| model.factories.get(f as usize)).map_or_else(String::new, |f| f.id.clone())
    };
    let road_node_id = |n: Option<u32>| {
        n.and_then(|n| model.roads.as_ref().and_then(|(r, _)| r.nodes.get(n as usize)))
            .map_or_else(String::new, |n| n.id.clone())
    };
    let factories: Vec<v1::Factory> = model
        .factories
        .iter()
        .enumerate()
        .map(|(index, f)| v1::Factory {
            id: f.id.clone(),
            index: index as u32,
            name: f.name.clone(),
            industry: f.industry.clone(),
            origin_x: f.origin.x,
            origin_y: f.origin.y,
            width_m: f.size.0,
            depth_m: f.size.1,
            dock_node_id: road_node_id(f.dock),
        })
        .collect();
    let stations: Vec<v1::Station> = model
        .stations
        .iter()
        .enumerate()
        .map(|(index, s)| {
            let (size_x_m, size_y_m) = station_size(s.kind);
            v1::Station {
                id: s.id.clone(),
                index: index as u32,
                name: s.name.clone(),
                factory_id: factory_id(s.factory),
                factory_index: s.factory.unwrap_or(0),
                kind: station_kind(s.kind) as i32,
                x: s.pos.x,
                y: s.pos.y,
                size_x_m,
                size_y_m,
                servers: s.servers,
                input_buffer: Some(buffer_capacity(s.buffer)),
                path_node_id: s
                    .node
                    .and_then(|(g, n)| model.graphs.get(g as usize).and_then(|g| g.nodes.get(n as usize)))
                    .map_or_else(String::new, |n| n.id.clone()),
            }
        })
        .collect();
    let conveyors = model
        .conveyors
        .iter()
        .map(|c| v1::Conveyor {
            id: c.id.clone(),
            from_station_id: model.stations[c.from as usize].id.clone(),
            to_station_id: model.stations[c.to as usize].id.clone(),
            length_m: c.length_m,
            speed_m_s: c.speed_m_s,
            capacity: c.capacity,
            from_station_index: c.from,
            to_station_index: c.to,
        })
        .collect();
    let sources = model
        .sources
        .iter()
        .enumerate()
        .map(|(index, s)| {
            let kind = match s.release {
                Release::Poisson { .. } => v1::ArrivalKind::Poisson,
                Release::Interval(_) => v1::ArrivalKind::FixedInterval,
                Release::Schedule(_) => v1::ArrivalKind::Schedule,
                Release::Saturated => v1::ArrivalKind::Saturated,
            };
            // A source feeds a factory when every first station of its products stands in
            // that one factory.
            let feeds: BTreeSet<Option<u32>> = s
                .mix
                .iter()
                .filter_map(|&(_, p)| model.products.get(usize::from(p)))
                .filter_map(|p| p.steps.first())
                .flat_map(|step| step.at.iter().map(|&st| model.stations[st as usize].factory))
                .collect();
            let factory = match feeds.len() {
                1 => feeds.into_iter().next().flatten(),
                _ => None,
            };
            v1::Source {
                id: s.id.clone(),
                index: index as u32,
                name: s.id.clone(),
                factory_id: factory_id(factory),
                x: s.pos.x,
                y: s.pos.y,
                arrival_kind: kind as i32,
                arrival_rate_per_hour: s.rate_per_hour().unwrap_or(0.0),
            }
        })
        .collect();
    let sinks = model
        .sinks
        .iter()
        .enumerate()
        .map(|(index, s)| v1::Sink {
            id: s.id.clone(),
            index: index as u32,
            name: s.id.clone(),
            factory_id: factory_id(s.factory),
            x: s.pos.x,
            y: s.pos.y,
        })
        .collect();
    let products = model
        .products
        .iter()
        .map(|p| v1::Product {
            id: p.id.clone(),
            name: p.name.clone(),
            price: p.price,
            material_cost: p.material_cost,
            routing: p
                .steps
                .iter()
                .map(|step| v1::RoutingStep {
                    station_ids: step.at.iter().map(|&s| model.stations[s as usize].id.clone()).collect(),
                    mean_process_time_s: step.mean / 1e6,
                })
                .collect(),
        })
        .collect();
    let path_graphs: Vec<v1::PathGraph> =
        model.graphs.iter().enumerate().map(|(g, graph)| path_graph(model, g as u32, graph)).collect();
    let (road_network, hub) = match road_network(model) {
        Some((network, hub)) => (Some(network), Some(hub)),
        None => (Some(v1::RoadNetwork::default()), None),
    };

    let mut points: Vec<(f64, f64)> = Vec::new();
    for f in &model.factories {
        points.push((f.origin.x, f.origin.y));
        points.push((f.origin.x + f.size.0, f.origin.y + f.size.1));
    }
    for s in &model.stations {
        let (w, d) = station_size(s.kind);
        points.push((s.pos.x - w / 2.0, s.pos.y - d / 2.0));
        points.push((s.pos.x + w / 2.0, s.pos.y + d / 2.0));
    }
    points.extend(model.sources.iter().map(|s| (s.pos.x, s.pos.y)));
    points.extend(model.sinks.iter().map(|s| (s.pos.x, s.pos.y)));
    points.extend(model.graphs.iter().flat_map(|g| g.nodes.iter().map(|n| (n.pos.x, n.pos.y))));
    if let Some((roads, _)) = &model.roads {
        points.extend(roads.nodes.iter().map(|n| (n.pos.x, n.pos.y)));
    }
    if let Some(h) = &hub {
        points.push((h.x - h.width_m / 2.0, h.y - h.depth_m / 2.0));
        points.push((h.x + h.width_m / 2.0, h.y + h.depth_m / 2.0));
    }
    let site_bounds = points.iter().filter(|(x, y)| x.is_finite() && y.is_finite()).fold(
        None,
        |acc: Option<v1::Bounds>, &(x, y)| {
            Some(match acc {
                None => v1::Bounds { min_x: x, min_y: y, max_x: x, max_y: y },
                Some(b) => v1::Bounds {
                    min_x: b.min_x.min(x),
                    min_y: b.min_y.min(y),
                    max_x: b.max_x.max(x),
                    max_y: b.max_y.max(y),
                },
            })
        },
    );

    v1::Layout {
        scene_name: scene_name.to_string(),
        scene_title: model.name.clone(),
        layout_generation: 0,
        site_bounds,
        currency: model.utilities.currency.clone(),
        flow_links: flow_links(model),
        factories,
        stations,
        conveyors,
        sources,
        sinks,
        products,
        path_graphs,
        road_network,
        vehicles: vehicles(model, agv_fleets, trucks),
        hub,
    }
}

/// Sets the server count of a station in a layout (after SetParameter).
/// Largest AGV fleet a SetParameter may ask for.
const MAX_FLEET: u32 = 10_000;
/// Largest truck count a SetParameter may ask for.
const MAX_TRUCKS: u32 = 1_000;

/// Rebuilds the layout's vehicle list after a fleet or truck count change, from the
/// live run's views (`agv_fleets`: the fleet of each AGV in view order).
pub fn set_layout_vehicles(layout: &mut v1::Layout, model: &Model, agv_fleets: &[u32], trucks: usize) {
    layout.vehicles = vehicles(model, agv_fleets, trucks);
}

pub fn set_layout_servers(layout: &mut v1::Layout, station: &str, servers: u32) {
    if let Some(s) = layout.stations.iter_mut().find(|s| s.id == station) {
        s.servers = servers;
    }
}

/// Catalogue entry of a loaded scene.
pub fn scene_info(scene: &LiveScene) -> v1::SceneInfo {
    v1::SceneInfo {
        name: scene.name.clone(),
        title: scene.model.name.clone(),
        description: scene.model.description.clone(),
    }
}

// ----- Live state -----

fn station_state_kind(state: StationState) -> v1::StationStateKind {
    match state {
        StationState::Busy => v1::StationStateKind::Busy,
        StationState::Setup => v1::StationStateKind::Setup,
        StationState::Starved => v1::StationStateKind::Starved,
        StationState::Blocked => v1::StationStateKind::Blocked,
        StationState::Down => v1::StationStateKind::Down,
        StationState::OffShift => v1::StationStateKind::OffShift,
    }
}

/// Live state of station `index`.
pub fn station_state(
    index: usize,
    view: &StationView,
    throughput_per_hour: f64,
    utilization: f64,
) -> v1::StationState {
    let buffer_fill = match view.buffer {
        Some(cap) if cap > 0 => (view.queue as f32 / cap as f32).min(1.0),
        _ => 0.0,
    };
    v1::StationState {
        index: index as u32,
        state: station_state_kind(view.state) as i32,
        busy_servers: view.busy_servers,
        queue_length: view.queue,
        buffer_fill,
        throughput_per_hour,
        utilization,
    }
}

fn vehicle_state_kind(state: VehicleState) -> v1::VehicleStateKind {
    match state {
        VehicleState::Idle => v1::VehicleStateKind::Idle,
        VehicleState::TravellingEmpty => v1::VehicleStateKind::TravellingEmpty,
        VehicleState::TravellingLoaded => v1::VehicleStateKind::TravellingLoaded,
        VehicleState::Handling => v1::VehicleStateKind::Loading,
        VehicleState::WaitingTraffic => v1::VehicleStateKind::WaitingTraffic,
        VehicleState::Charging => v1::VehicleStateKind::Charging,
    }
}

/// Whether an AGV in this state is driving (its position changes).
pub fn agv_moving(state: VehicleState) -> bool {
    matches!(state, VehicleState::TravellingEmpty | VehicleState::TravellingLoaded)
}

/// Live state of AGV `index` (its Layout.vehicles index); `speed_m_s` is measured by the
/// caller between snapshots.
pub fn agv_state(index: usize, view: &VehicleView, speed_m_s: f64) -> v1::VehicleState {
    v1::VehicleState {
        index: index as u32,
        x: view.x,
        y: view.y,
        heading_rad: view.heading,
        state: vehicle_state_kind(view.state) as i32,
        battery: view.battery.clamp(0.0, 1.0) as f32,
        load: view.load,
        speed_m_s,
    }
}

/// Live state of truck at Layout.vehicles `index`. The core tells only whether a truck
/// drives and carries cargo: a standing truck with cargo is loading or unloading at a
/// dock, one without is idle. Trucks have no battery (1). `heading` is the caller's: the
/// core reports 0 for standing trucks, and a parked truck keeps the heading it arrived
/// with.
pub fn truck_state(index: usize, view: &TruckView, heading: f64, speed_m_s: f64) -> v1::VehicleState {
    let state = match (view.moving, view.loaded) {
        (true, true) => v1::VehicleStateKind::TravellingLoaded,
        (true, false) => v1::VehicleStateKind::TravellingEmpty,
        (false, true) => v1::VehicleStateKind::Loading,
        (false, false) => v1::VehicleStateKind::Idle,
    };
    v1::VehicleState {
        index: index as u32,
        x: view.x,
        y: view.y,
        heading_rad: heading,
        state: state as i32,
        battery: 1.0,
        load: view.load,
        speed_m_s,
    }
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 0.0 }
}

/// Complex-wide KPIs of a report.
pub fn kpi_summary(report: &Report) -> v1::KpiSummary {
    let c = &report.complex;
    let (servers, oee_weighted) = report
        .stations
        .iter()
        .fold((0.0, 0.0), |(n, o), s| (n + f64::from(s.servers), o + s.oee * f64::from(s.servers)));
    let (vehicles, agv_busy) = report
        .vehicles
        .fleets
        .iter()
        .fold((0.0, 0.0), |(n, u), f| (n + f.vehicles as f64, u + f.utilization * f.vehicles as f64));
    v1::KpiSummary {
        throughput_per_hour: c.throughput_per_hour,
        wip: c.wip_now as f64,
        lead_time_mean_s: c.lead_time_mean_s,
        oee: ratio(oee_weighted, servers),
        energy_kwh: report.energy.total_kwh,
        value_added_rate: report.value_added.rate,
        finished: c.finished,
        scrapped: c.scrapped,
        lead_time_p50_s: c.lead_time_p50_s,
        lead_time_p95_s: c.lead_time_p95_s,
        co2_kg: report.energy.co2_kg,
        wip_mean: c.wip_mean,
        agv_utilization: ratio(agv_busy, vehicles),
        energy_cost: report.energy.cost,
        value_added: report.value_added.value_added,
        labour_productivity: report.staff.labour_productivity,
        truck_utilization: report.logistics.trucks.as_ref().map_or(0.0, |t| t.utilization),
    }
}

fn bottleneck_shares(model: &Model, report: &Report) -> Vec<v1::BottleneckShare> {
    let index: HashMap<&str, usize> =
        model.stations.iter().enumerate().map(|(i, s)| (s.id.as_str(), i)).collect();
    report
        .bottlenecks
        .iter()
        .filter_map(|b| {
            index
                .get(b.station.as_str())
                .map(|&i| v1::BottleneckShare { station_index: i as u32, share: b.share })
        })
        .collect()
}

/// The bottleneck ranking of a report; the momentary bottleneck is filled in per frame.
pub fn bottleneck_ranking(model: &Model, report: &Report) -> v1::BottleneckRanking {
    v1::BottleneckRanking {
        ranking: bottleneck_shares(model, report),
        momentary_station_index: None,
        window_start_us: (report.warmup_s * 1e6).round() as u64,
    }
}

/// The clock in wire form.
pub fn clock(clock: &Clock) -> v1::ClockState {
    v1::ClockState {
        sim_time_us: clock.sim_time,
        speed: clock.paced_speed,
        max_speed: clock.speed == Speed::Max,
        paused: clock.paused,
        achieved_speed: clock.achieved_speed,
        run_until_us: clock.run_until,
        seed: clock.seed,
    }
}

/// Receipt of an applied injection.
pub fn receipt(r: &Receipt) -> v1::CommandReceipt {
    v1::CommandReceipt { applied_at_us: r.applied_at, command_seq: r.seq }
}

// ----- Reports -----

/// The typed report, with the JSON document unless `omit_json`.
pub fn report(reply: &ReportReply, omit_json: bool) -> Result<v1::Report, Status> {
    let model = &reply.scene.model;
    let r = &reply.report;
    let shares = bottleneck_shares(model, r);
    let share_of = |i: usize| shares.iter().find(|b| b.station_index as usize == i).map_or(0.0, |b| b.share);
    // The one JSON shape shared with `twin run --json`.
    let json = if omit_json { String::new() } else { r.to_json(reply.wall_s) };
    Ok(v1::Report {
        scene_name: reply.scene.name.clone(),
        seed: r.seed,
        sim_time_us: (r.sim_time_s * 1e6).round() as u64,
        warmup_us: (r.warmup_s * 1e6).round() as u64,
        complex: Some(kpi_summary(r)),
        stations: r
            .stations
            .iter()
            .enumerate()
            .map(|(i, s)| v1::StationReport {
                station_id: s.id.clone(),
                station_index: i as u32,
                throughput_per_hour: s.throughput_per_hour,
                utilization: s.utilization,
                starved: s.starved,
                blocked: s.blocked,
                down: s.down,
                queue_mean: s.queue_mean,
                wait_mean_s: s.wait_mean_s,
                bottleneck_share: share_of(i),
                setup: s.setup,
                off_shift: s.off_shift,
                servers: s.servers,
                oee: s.oee,
            })
            .collect(),
        bottlenecks: shares,
        json,
        factories: factory_reports(model, r),
        fleets: r
            .vehicles
            .fleets
            .iter()
            .map(|f| v1::FleetReport {
                fleet_id: f.id.clone(),
                factory_id: f.factory.clone().unwrap_or_default(),
                vehicles: f.vehicles as u32,
                utilization: f.utilization,
                idle: f.idle,
                travelling_empty: f.travelling_empty,
                travelling_loaded: f.travelling_loaded,
                handling: f.handling,
                waiting_traffic: f.waiting_traffic,
                charging: f.charging,
                trips_per_hour: f.trips_per_hour,
                distance_km: f.distance_km,
                energy_kwh: f.energy_kwh,
                min_battery: f.min_battery,
                orders_waiting: f.orders_waiting as u32,
            })
            .collect(),
    })
}

/// Per-factory rows, joining the report's factory, energy, value-added and labour
/// sections by factory id.
fn factory_reports(model: &Model, r: &Report) -> Vec<v1::FactoryReport> {
    model
        .factories
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let kpis = r.factories.iter().find(|k| k.id == f.id);
            let energy = r.energy.factories.iter().find(|k| k.id == f.id);
            let value = r.value_added.factories.iter().find(|k| k.id == f.id);
            let labour = r.staff.factories.iter().find(|k| k.id == f.id);
            v1::FactoryReport {
                factory_id: f.id.clone(),
                factory_index: i as u32,
                utilization: kpis.map_or(0.0, |k| k.utilization),
                station_output_per_hour: kpis.map_or(0.0, |k| k.station_output_per_hour),
                energy_kwh: energy.map_or(0.0, |e| e.kwh),
                co2_kg: energy.map_or(0.0, |e| e.co2_kg),
                energy_cost: energy.map_or(0.0, |e| e.cost),
                revenue: value.map_or(0.0, |v| v.revenue),
                material_cost: value.map_or(0.0, |v| v.material_cost),
                value_added: value.map_or(0.0, |v| v.value_added),
                value_added_rate: value.map_or(0.0, |v| v.rate),
                worker_hours: labour.map_or(0.0, |l| l.worker_hours),
                labour_productivity: labour.and_then(|l| l.labour_productivity),
            }
        })
        .collect()
}

// ----- Requests and errors -----

/// Status of a refused injection: unknown ids are NOT_FOUND, state conflicts
/// FAILED_PRECONDITION. Field checks happen before the core sees a request.
pub fn command_status(e: CommandError) -> Status {
    match e {
        CommandError::UnknownStation(_)
        | CommandError::UnknownProduct(_)
        | CommandError::UnknownSource(_)
        | CommandError::UnknownFleet(_) => Status::not_found(e.to_string()),
        CommandError::AlreadyDown(_)
        | CommandError::NotDown(_)
        | CommandError::Invalid(_)
        | CommandError::Busy(_) => Status::failed_precondition(e.to_string()),
    }
}

/// Status of a refused control call.
pub fn control_status(e: ControlError) -> Status {
    match e {
        ControlError::NotAfterNow { .. } => Status::failed_precondition(e.to_string()),
    }
}

fn required_id(field: &str, value: &str) -> Result<String, Status> {
    if value.is_empty() {
        Err(Status::invalid_argument(format!("{field} is required")))
    } else {
        Ok(value.to_string())
    }
}

/// The speed a SetSpeed request asks for.
pub fn speed(req: &v1::SetSpeedRequest) -> Result<Speed, Status> {
    if req.max_speed {
        return Ok(Speed::Max);
    }
    if req.speed.is_finite() && req.speed > 0.0 {
        Ok(Speed::Paced(req.speed))
    } else {
        Err(Status::invalid_argument(format!(
            "speed must be finite and > 0 (or set max_speed), got {}",
            req.speed
        )))
    }
}

/// The injection a BreakDown request asks for.
pub fn break_down(req: &v1::BreakDownRequest) -> Result<Injection, Status> {
    if req.duration_us == Some(0) {
        return Err(Status::invalid_argument("duration_us must be > 0 (omit it to stay down until Repair)"));
    }
    Ok(Injection::BreakDown {
        station: required_id("station_id", &req.station_id)?,
        duration: req.duration_us,
    })
}

/// The injection a Repair request asks for.
pub fn repair(req: &v1::RepairRequest) -> Result<Injection, Status> {
    Ok(Injection::Repair { station: required_id("station_id", &req.station_id)? })
}

/// Most units one rush order may release (the core's own limit).
const MAX_RUSH_QUANTITY: u32 = 10_000;

/// The injection an AddRushOrder request asks for.
pub fn rush_order(req: &v1::AddRushOrderRequest) -> Result<Injection, Status> {
    let product = required_id("product_id", &req.product_id)?;
    if req.quantity == 0 || req.quantity > MAX_RUSH_QUANTITY {
        return Err(Status::invalid_argument(format!(
            "quantity must be 1 to {MAX_RUSH_QUANTITY}, got {}",
            req.quantity
        )));
    }
    if req.due_in_us.is_some() {
        return Err(Status::unimplemented(
            "due_in_us: the simulation core does not support due dates on rush orders yet",
        ));
    }
    Ok(Injection::RushOrder { product, quantity: req.quantity })
}

/// Most servers a station may have (the core's own limit).
const MAX_SERVERS: u32 = 1000;

/// The injection a SetParameter request asks for.
pub fn parameter(req: &v1::SetParameterRequest) -> Result<Injection, Status> {
    use v1::set_parameter_request::Parameter;
    match &req.parameter {
        None => Err(Status::invalid_argument(
            "parameter is required (one of station_buffer_capacity, station_servers, \
             agv_fleet_size, truck_count, source_arrival_rate)",
        )),
        Some(Parameter::StationBufferCapacity(p)) => {
            let station = required_id("station_buffer_capacity.station_id", &p.station_id)?;
            let capacity = match &p.capacity {
                None => {
                    return Err(Status::invalid_argument("station_buffer_capacity.capacity is required"));
                }
                Some(c) if c.unlimited => None,
                Some(c) if c.limit == 0 => {
                    return Err(Status::invalid_argument(
                        "station_buffer_capacity.capacity.limit must be at least 1 \
                         (the core has no zero-capacity buffers) or set unlimited",
                    ));
                }
                Some(c) => Some(c.limit),
            };
            Ok(Injection::SetBuffer { station, capacity })
        }
        Some(Parameter::SourceArrivalRate(p)) => {
            let source = required_id("source_arrival_rate.source_id", &p.source_id)?;
            if !(p.rate_per_hour.is_finite() && p.rate_per_hour > 0.0) {
                return Err(Status::invalid_argument(format!(
                    "source_arrival_rate.rate_per_hour must be finite and > 0, got {}",
                    p.rate_per_hour
                )));
            }
            Ok(Injection::SetArrivalRate { source, per_hour: p.rate_per_hour })
        }
        Some(Parameter::StationServers(p)) => {
            let station = required_id("station_servers.station_id", &p.station_id)?;
            if !(1..=MAX_SERVERS).contains(&p.servers) {
                return Err(Status::invalid_argument(format!(
                    "station_servers.servers must be 1 to {MAX_SERVERS}, got {}",
                    p.servers
                )));
            }
            Ok(Injection::SetServers { station, servers: p.servers })
        }
        Some(Parameter::AgvFleetSize(p)) => {
            let fleet = required_id("agv_fleet_size.fleet_id", &p.fleet_id)?;
            if p.vehicles > MAX_FLEET {
                return Err(Status::invalid_argument(format!(
                    "agv_fleet_size.vehicles must be 0 to {MAX_FLEET}, got {}",
                    p.vehicles
                )));
            }
            Ok(Injection::SetFleetSize { fleet, vehicles: p.vehicles })
        }
        Some(Parameter::TruckCount(p)) => {
            if !(1..=MAX_TRUCKS).contains(&p.trucks) {
                return Err(Status::invalid_argument(format!(
                    "truck_count.trucks must be 1 to {MAX_TRUCKS}, got {}",
                    p.trucks
                )));
            }
            Ok(Injection::SetTruckCount { trucks: p.trucks })
        }
    }
}

/// Simulation time of a RunTo request.
pub fn run_to(req: &v1::RunToRequest) -> Micros {
    req.sim_time_us
}

// ----- Experiments -----

/// ExperimentStarted of an experiment.
pub fn experiment_started(e: &twin_lab::Experiment) -> v1::ExperimentStarted {
    v1::ExperimentStarted {
        variants: e.variant_names(),
        replications: e.replications,
        total_runs: e.total_runs() as u32,
    }
}

/// ReplicationDone of one finished replication.
pub fn replication_done(p: &twin_lab::Progress<'_>) -> v1::ReplicationDone {
    v1::ReplicationDone {
        variant: p.variant.to_string(),
        replication: p.replication,
        seed: p.seed,
        kpis: Some(kpi_summary(p.report)),
        done: p.done as u32,
        total: p.total as u32,
    }
}

/// ExperimentFinished of a run that returned results.
pub fn experiment_finished(r: &twin_lab::Results) -> v1::ExperimentFinished {
    let outcome = match r.outcome {
        twin_lab::Outcome::Completed => v1::ExperimentOutcome::Completed,
        twin_lab::Outcome::Cancelled => v1::ExperimentOutcome::Cancelled,
    };
    v1::ExperimentFinished {
        outcome: outcome as i32,
        message: String::new(),
        variants: r
            .by_variant()
            .into_iter()
            .map(|v| v1::VariantResult {
                variant: v.variant,
                replications: v.replications,
                metrics: v
                    .metrics
                    .into_iter()
                    .map(|m| v1::MetricEstimate {
                        name: m.name,
                        unit: m.unit,
                        mean: m.mean,
                        ci_half_width: m.ci_half_width,
                        confidence: m.confidence,
                    })
                    .collect(),
            })
            .collect(),
        json: r.to_json(),
    }
}

/// ExperimentFinished of a run that failed.
pub fn experiment_failed(e: &twin_lab::LabError) -> v1::ExperimentFinished {
    v1::ExperimentFinished {
        outcome: v1::ExperimentOutcome::Failed as i32,
        message: e.to_string(),
        variants: Vec::new(),
        json: String::new(),
    }
}
