//! The static layout: the model in wire form (factories, stations with their drawn
//! footprints, conveyors, sources, sinks, products, path graphs, roads, the hub,
//! vehicles, flow links).

use std::collections::{BTreeMap, BTreeSet};

use twin_core::graph::Graph;
use twin_core::model::{Endpoint, FlowLink, Model, Release, Route};
use twin_core::scene::StationKind;
use twin_proto::v1;

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
        StationKind::Machine => v1::StationKind::Machine,
        StationKind::Oven => v1::StationKind::Oven,
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

/// A flow-link endpoint in wire form.
fn endpoint(end: Endpoint) -> v1::Endpoint {
    use v1::EndpointKind as K;
    let (kind, index) = match end {
        Endpoint::Station(s) => (K::Station, s),
        Endpoint::Source(s) => (K::Source, s),
        Endpoint::Sink(s) => (K::Sink, s),
        Endpoint::Hub => (K::Hub, 0),
    };
    v1::Endpoint { kind: kind as i32, index }
}

/// How parts move along a link, in wire form.
fn flow_mode(route: Route) -> v1::FlowMode {
    match route {
        Route::Conveyor(_) => v1::FlowMode::Conveyor,
        Route::Agv { .. } => v1::FlowMode::Agv,
        Route::Truck { .. } => v1::FlowMode::Truck,
        Route::Direct => v1::FlowMode::Direct,
    }
}

/// The core's flow links in wire form; a link's index is its position.
fn flow_links(links: &[FlowLink]) -> Vec<v1::FlowLink> {
    links
        .iter()
        .enumerate()
        .map(|(index, link)| v1::FlowLink {
            index: index as u32,
            from: Some(endpoint(link.from)),
            to: Some(endpoint(link.to)),
            mode: flow_mode(link.route) as i32,
        })
        .collect()
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
    let mut per_fleet = vec![0u32; model.fleets.len()];
    for &f in agv_fleets {
        let Some(fleet) = model.fleets.get(f as usize) else { continue };
        let n = &mut per_fleet[f as usize];
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

/// The static layout of a model with its flow links (`Model::flow_links`). `agv_fleets`
/// is the fleet of each AGV and `trucks` the number of trucks of a fresh run
/// (`Sim::vehicle_views` / `Sim::truck_views`), so that vehicle indices match the live
/// views. `layout_generation` is left 0; replies fill it.
pub fn layout(
    model: &Model,
    scene_name: &str,
    links: &[FlowLink],
    agv_fleets: &[u32],
    trucks: usize,
) -> v1::Layout {
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
        warmup_end_us: model.warmup,
        flow_links: flow_links(links),
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

/// Rebuilds the layout's vehicle list after a fleet or truck count change, from the
/// live run's views (`agv_fleets`: the fleet of each AGV in view order).
pub fn set_layout_vehicles(layout: &mut v1::Layout, model: &Model, agv_fleets: &[u32], trucks: usize) {
    layout.vehicles = vehicles(model, agv_fleets, trucks);
}

/// Sets the server count of a station in a layout (after SetParameter).
pub fn set_layout_servers(layout: &mut v1::Layout, station: &str, servers: u32) {
    if let Some(s) = layout.stations.iter_mut().find(|s| s.id == station) {
        s.servers = servers;
    }
}

/// Catalogue entry of a scene loaded under `name`.
pub fn scene_info(name: &str, model: &Model) -> v1::SceneInfo {
    v1::SceneInfo {
        name: name.to_string(),
        title: model.name.clone(),
        description: model.description.clone(),
    }
}
