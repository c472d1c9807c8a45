//! AGV fleets on path graphs: dispatching, traffic control, deadlocks, batteries.
//!
//! Owns every vehicle, the fleets' order queues, and who holds and waits for each node
//! and edge. It alone keeps the traffic rule: a vehicle holds the node it stands on; to
//! drive an edge it must also take the edge and the node at its end, so no two vehicles
//! ever share a node or a segment (a two-way edge is one segment: vehicles never pass on
//! it). A vehicle that finds its way taken waits on that one resource; when it frees,
//! waiters retry in order. A parked vehicle in the way is asked to move aside. A cycle of
//! waiting vehicles is a deadlock: it is detected when the cycle closes, recorded with the
//! vehicles involved, and broken by replanning one of them around the blocked node (or
//! backing it off to a free neighbour); if no vehicle can move, the record says so and the
//! run goes on.
//!
//! Knows nothing of stations, buffers or parts: transport orders come in as
//! `TransportOrder` values and go back out, delivered, through `VehicleDone`.
//!
//! - `jobs`: dispatching orders, loading and unloading, charging, parking.
//! - `traffic`: driving edge by edge under the traffic rule; batteries on the way.
//! - `deadlock`: moving parked vehicles aside, finding and breaking wait cycles.

mod deadlock;
mod jobs;
mod traffic;

use std::collections::VecDeque;

use crate::graph::{Graph, Resource, UNREACHABLE};
use crate::model::Model;
use crate::sim::agenda::{Agenda, Followup};
use crate::sim::handoff::TransportOrder;
use crate::time::Micros;

/// What a vehicle is doing, for KPIs and colours.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub enum VehicleState {
    Idle,
    TravellingEmpty,
    TravellingLoaded,
    /// Loading or unloading.
    Handling,
    WaitingTraffic,
    Charging,
}

impl VehicleState {
    /// Whether a vehicle in this state is driving (its position changes).
    pub fn is_moving(self) -> bool {
        matches!(self, VehicleState::TravellingEmpty | VehicleState::TravellingLoaded)
    }

    pub const ALL: [VehicleState; 6] = [
        VehicleState::Idle,
        VehicleState::TravellingEmpty,
        VehicleState::TravellingLoaded,
        VehicleState::Handling,
        VehicleState::WaitingTraffic,
        VehicleState::Charging,
    ];
}

/// What a vehicle is for right now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
enum Job {
    /// Standing, free for orders.
    Idle,
    /// Driving to a parking node; free for orders.
    Park,
    /// Driving to the pickup of its orders.
    Fetch,
    /// Carrying its orders to the drop node.
    Deliver,
    /// Driving to a charger, or charging.
    Charge,
}

/// The edge a vehicle is driving.
#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
struct Leg {
    edge: u32,
    from: u32,
    to: u32,
    start: Micros,
    end: Micros,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct Vehicle {
    fleet: u32,
    /// Node it stands on, or drives from.
    node: u32,
    leg: Option<Leg>,
    /// Nodes still to drive through, the target last.
    route: VecDeque<u32>,
    target: u32,
    job: Job,
    /// Orders on board (or, while fetching, the one it fetches).
    orders: Vec<TransportOrder>,
    loaded: bool,
    state: VehicleState,
    /// When `state` began (or the statistics were reset).
    since: Micros,
    /// Time per state since the statistics were reset, indexed by [`VehicleState`].
    times: [u64; 6],
    /// Stored energy, kWh; integrated up to `battery_t`.
    battery: f64,
    battery_t: Micros,
    min_battery: f64,
    /// How often the battery ran empty.
    depleted: u64,
    /// The node or edge it waits for.
    waiting_on: Option<Resource>,
    wait_since: Micros,
    /// Bumped with every scheduled event; older events are stale.
    generation: u32,
    distance_m: f64,
    trips: u64,
    /// When it last became free (first-come dispatching).
    idle_since: Micros,
    heading: f64,
    charged_kwh: f64,
    /// Deadlock resolutions tried at `resolve_t`, to stop retrying within one instant.
    resolve_t: Micros,
    resolves: u32,
    /// Taken out of service by a smaller fleet size: holds no node, shows nowhere. The
    /// slot stays in the table so that other vehicles' indices stay put, and the next
    /// vehicle put into service takes it over (the table never outgrows the largest
    /// fleet in service at once).
    retired: bool,
}

impl Vehicle {
    /// A vehicle of `fleet` standing idle on `node` with a full battery of `battery` kWh.
    fn new(fleet: u32, node: u32, battery: f64, now: Micros) -> Vehicle {
        Vehicle {
            fleet,
            node,
            leg: None,
            route: VecDeque::new(),
            target: node,
            job: Job::Idle,
            orders: Vec::new(),
            loaded: false,
            state: VehicleState::Idle,
            since: now,
            times: [0; 6],
            battery,
            battery_t: now,
            min_battery: battery,
            depleted: 0,
            waiting_on: None,
            wait_since: now,
            generation: 0,
            distance_m: 0.0,
            trips: 0,
            idle_since: now,
            heading: 0.0,
            charged_kwh: 0.0,
            resolve_t: 0,
            resolves: 0,
            retired: false,
        }
    }
}

/// Who holds and who waits for each node and edge of one path graph.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
struct Occupancy {
    node: Vec<Option<u32>>,
    edge: Vec<Option<u32>>,
    node_waiters: Vec<VecDeque<u32>>,
    edge_waiters: Vec<VecDeque<u32>>,
    /// Vehicle-microseconds spent waiting for each node / edge (congestion).
    node_wait: Vec<u64>,
    edge_wait: Vec<u64>,
    edge_trips: Vec<u64>,
    /// Parking nodes claimed by a vehicle on its way there.
    claimed: Vec<Option<u32>>,
}

impl Occupancy {
    fn holder(&self, r: Resource) -> Option<u32> {
        match r {
            Resource::Node(n) => self.node[n as usize],
            Resource::Edge(e) => self.edge[e as usize],
        }
    }
}

#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
struct Fleet {
    /// Orders waiting for a vehicle, oldest first.
    orders: VecDeque<TransportOrder>,
    /// Its vehicles in service, in the order they joined.
    vehicles: Vec<u32>,
}

/// A recorded deadlock.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Deadlock {
    /// Simulation time, seconds.
    pub time_s: f64,
    pub fleet: String,
    /// Vehicles in the cycle, as `fleet#k`.
    pub vehicles: Vec<String>,
    /// Whether one of them could replan or back off.
    pub resolved: bool,
}

/// A vehicle's display state.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct VehicleView {
    pub fleet: u32,
    pub x: f64,
    pub y: f64,
    /// Radians, counter-clockwise from east.
    pub heading: f64,
    pub state: VehicleState,
    /// State of charge 0..1 (1 without a battery).
    pub battery: f64,
    pub load: u32,
}

/// What a finished loading, unloading or charge did.
pub(crate) enum VehicleDone {
    /// The event was superseded; nothing happened.
    Stale,
    /// The vehicle loaded or charged and went on.
    Handled,
    /// The vehicle unloaded these orders at their drop node. Hand each to the flow, then
    /// call [`Agvs::next_job`] for the vehicle.
    Delivered(Vec<TransportOrder>),
}

/// Why a fleet size cannot be reached now. Nothing was changed.
#[derive(Clone, Copy, Debug)]
pub(crate) enum FleetRefusal {
    /// Too few free nodes for the new vehicles.
    NoRoom { free: usize },
    /// Too few vehicles stand idle to be taken out of service.
    NotIdle { idle: usize, remove: u32 },
}

/// One fleet's figures over the statistics window, for the report.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FleetFigures {
    /// Vehicles in service.
    pub vehicles: usize,
    /// Vehicle time per state, indexed by [`VehicleState`].
    pub times: [u64; 6],
    /// Energy drawn by the fleet's chargers, kWh.
    pub charged_kwh: f64,
    pub trips: u64,
    pub distance_m: f64,
    /// Lowest state of charge any vehicle reached, as a share of capacity (1 without
    /// batteries).
    pub min_battery: f64,
    pub depleted: u64,
    pub orders_waiting: usize,
}

/// How long a deadlock that could not be broken waits before the next attempt.
const DEADLOCK_RETRY: Micros = 5 * crate::time::SECOND;

/// How many deadlock records a report keeps (the count is kept in full).
const MAX_DEADLOCK_RECORDS: usize = 20;

/// The AGVs of a run.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct Agvs {
    /// The vehicles in service, and free slots (`retired`) that new ones take first.
    vehicles: Vec<Vehicle>,
    /// Battery figures of vehicles retired since the statistics were reset (their slots
    /// are reused, so the figures live here): lowest charge (kWh) and run-flat count.
    retired_min_battery: f64,
    retired_depleted: u64,
    /// One per `Model::fleets` entry.
    fleets: Vec<Fleet>,
    /// One per path graph.
    occupancy: Vec<Occupancy>,
    /// The first deadlocks since the statistics were reset, and how many there were.
    deadlocks: Vec<Deadlock>,
    n_deadlocks: u64,
    /// Vehicles waiting (parked) for a free charger, per path graph.
    charger_queue: Vec<VecDeque<u32>>,
    /// Per path graph, the nodes where stations load and unload (no place to park).
    station_nodes: Vec<Vec<bool>>,
}

fn route_between(graph: &Graph, from: u32, to: u32) -> Option<VecDeque<u32>> {
    if graph.distance_mm(from, to) == UNREACHABLE {
        return None;
    }
    let mut route = VecDeque::new();
    let mut at = from;
    while at != to {
        at = graph.next_hop(at, to)?;
        route.push_back(at);
    }
    Some(route)
}

impl Agvs {
    /// Every fleet's vehicles idle on their homes first, then on any other free node.
    pub fn new(model: &Model, now: Micros) -> Agvs {
        let mut occupancy: Vec<Occupancy> = model
            .graphs
            .iter()
            .map(|g| Occupancy {
                node: vec![None; g.len()],
                edge: vec![None; g.edges.len()],
                node_waiters: vec![VecDeque::new(); g.len()],
                edge_waiters: vec![VecDeque::new(); g.edges.len()],
                node_wait: vec![0; g.len()],
                edge_wait: vec![0; g.edges.len()],
                edge_trips: vec![0; g.edges.len()],
                claimed: vec![None; g.len()],
            })
            .collect();
        let mut vehicles = Vec::new();
        let mut fleets = Vec::new();
        for (fi, fleet) in model.fleets.iter().enumerate() {
            let mut rt = Fleet::default();
            let graph = &model.graphs[fleet.graph as usize];
            let occ = &mut occupancy[fleet.graph as usize];
            // Homes first, then any other free node, in index order.
            let spots: Vec<u32> = fleet.home.iter().copied().chain(0..graph.len() as u32).collect();
            let mut spots = spots.into_iter();
            for _ in 0..fleet.count {
                let Some(node) = spots.find(|&n| occ.node[n as usize].is_none()) else { break };
                let v = vehicles.len() as u32;
                occ.node[node as usize] = Some(v);
                let battery = fleet.battery.map_or(0.0, |b| b.capacity_kwh);
                vehicles.push(Vehicle::new(fi as u32, node, battery, now));
                rt.vehicles.push(v);
            }
            fleets.push(rt);
        }
        let station_nodes = model
            .graphs
            .iter()
            .enumerate()
            .map(|(g, graph)| {
                let mut marks = vec![false; graph.len()];
                for st in &model.stations {
                    if let Some((sg, n)) = st.node
                        && sg as usize == g
                    {
                        marks[n as usize] = true;
                    }
                }
                marks
            })
            .collect();
        Agvs {
            vehicles,
            fleets,
            occupancy,
            deadlocks: Vec::new(),
            n_deadlocks: 0,
            retired_min_battery: f64::INFINITY,
            retired_depleted: 0,
            charger_queue: vec![VecDeque::new(); model.graphs.len()],
            station_nodes,
        }
    }

    /// Restarts the statistics at `now` (end of warm-up); the vehicles carry on.
    pub fn reset_statistics(&mut self, now: Micros) {
        for v in &mut self.vehicles {
            v.times = [0; 6];
            v.since = now;
            v.distance_m = 0.0;
            v.trips = 0;
            v.charged_kwh = 0.0;
            v.min_battery = v.battery;
            v.depleted = 0;
            if v.waiting_on.is_some() {
                v.wait_since = now;
            }
        }
        for occ in &mut self.occupancy {
            occ.node_wait.iter_mut().for_each(|w| *w = 0);
            occ.edge_wait.iter_mut().for_each(|w| *w = 0);
            occ.edge_trips.iter_mut().for_each(|w| *w = 0);
        }
        self.deadlocks.clear();
        self.n_deadlocks = 0;
        self.retired_min_battery = f64::INFINITY;
        self.retired_depleted = 0;
    }

    /// Lets a vehicle move on if it no longer waits (a deadlock was broken for it).
    pub fn nudge(&mut self, model: &Model, agenda: &mut Agenda, v: u32) {
        if self.vehicles[v as usize].waiting_on.is_none() {
            self.vehicle_advance(model, agenda, v);
        }
    }

    /// Sets the number of vehicles of fleet `f` in service. New vehicles appear on free
    /// parking nodes (then any free node); only vehicles standing idle are taken out of
    /// service, the most recently added first, so that no order or part is lost. Changes
    /// nothing when refused.
    pub fn set_fleet_size(
        &mut self,
        model: &Model,
        agenda: &mut Agenda,
        f: u32,
        count: u32,
    ) -> Result<(), FleetRefusal> {
        let spec = &model.fleets[f as usize];
        let g = spec.graph as usize;
        let graph = &model.graphs[g];
        let current = self.fleets[f as usize].vehicles.len() as u32;
        if count > current {
            let occ = &self.occupancy[g];
            let free = |n: u32| occ.node[n as usize].is_none() && occ.claimed[n as usize].is_none();
            let spots: Vec<u32> = spec.home.iter().copied().chain(0..graph.len() as u32).collect();
            let mut placed = Vec::new();
            for &n in &spots {
                if placed.len() as u32 == count - current {
                    break;
                }
                if free(n) && !placed.contains(&n) {
                    placed.push(n);
                }
            }
            if (placed.len() as u32) < count - current {
                return Err(FleetRefusal::NoRoom { free: placed.len() });
            }
            for node in placed {
                let battery = spec.battery.map_or(0.0, |b| b.capacity_kwh);
                let mut fresh = Vehicle::new(f, node, battery, agenda.now());
                let v = match self.vehicles.iter().position(|veh| veh.retired) {
                    Some(slot) => {
                        // Events of the slot's former vehicle may still be queued: a
                        // newer generation makes them stale.
                        fresh.generation = self.vehicles[slot].generation.wrapping_add(1);
                        self.vehicles[slot] = fresh;
                        slot as u32
                    }
                    None => {
                        self.vehicles.push(fresh);
                        self.vehicles.len() as u32 - 1
                    }
                };
                self.occupancy[g].node[node as usize] = Some(v);
                self.fleets[f as usize].vehicles.push(v);
            }
        } else if count < current {
            let remove = current - count;
            let idle: Vec<u32> = self.fleets[f as usize]
                .vehicles
                .iter()
                .rev()
                .copied()
                .filter(|&v| {
                    let veh = &self.vehicles[v as usize];
                    matches!(veh.job, Job::Idle | Job::Park)
                        && veh.leg.is_none()
                        && veh.waiting_on.is_none()
                        && veh.orders.is_empty()
                        && veh.state == VehicleState::Idle
                })
                .take(remove as usize)
                .collect();
            if (idle.len() as u32) < remove {
                return Err(FleetRefusal::NotIdle { idle: idle.len(), remove });
            }
            for v in idle {
                self.unclaim(model, v);
                self.charger_queue[g].retain(|&x| x != v);
                self.fleets[f as usize].vehicles.retain(|&x| x != v);
                let veh = &mut self.vehicles[v as usize];
                veh.retired = true;
                self.retired_min_battery = self.retired_min_battery.min(veh.min_battery);
                self.retired_depleted += veh.depleted;
                let node = veh.node;
                let occ = &mut self.occupancy[g];
                if occ.node[node as usize] == Some(v) {
                    occ.node[node as usize] = None;
                    if !occ.node_waiters[node as usize].is_empty() {
                        agenda.follow_up(Followup::Resource {
                            graph: g as u32,
                            resource: Resource::Node(node),
                        });
                    }
                }
            }
        }
        self.dispatch_fleet(model, agenda, f);
        Ok(())
    }

    /// Display state of every vehicle in service, positions interpolated along the edge
    /// being driven.
    pub fn views<'a>(&'a self, model: &'a Model, now: Micros) -> impl Iterator<Item = VehicleView> + 'a {
        self.vehicles.iter().filter(|v| !v.retired).map(move |veh| {
            let fleet = &model.fleets[veh.fleet as usize];
            let graph = &model.graphs[fleet.graph as usize];
            let pos = match veh.leg {
                Some(leg) => {
                    let (a, b) = (graph.nodes[leg.from as usize].pos, graph.nodes[leg.to as usize].pos);
                    let span = (leg.end - leg.start).max(1) as f64;
                    let f = ((now.saturating_sub(leg.start)) as f64 / span).clamp(0.0, 1.0);
                    a + (b - a) * f
                }
                None => graph.nodes[veh.node as usize].pos,
            };
            let battery = fleet.battery.map_or(1.0, |b| (veh.battery / b.capacity_kwh).clamp(0.0, 1.0));
            VehicleView {
                fleet: veh.fleet,
                x: pos.x,
                y: pos.y,
                heading: veh.heading,
                state: veh.state,
                battery,
                load: if veh.loaded { veh.orders.len() as u32 } else { 0 },
            }
        })
    }

    /// How often two vehicles share a node or an edge, or a vehicle stands on a node it
    /// does not hold: the traffic rule says never (for tests).
    pub fn traffic_conflicts(&self, model: &Model) -> usize {
        let mut conflicts = 0;
        for (g, occ) in self.occupancy.iter().enumerate() {
            let mut seen_nodes = vec![0u32; occ.node.len()];
            let mut seen_edges = vec![0u32; occ.edge.len()];
            for (v, veh) in self.vehicles.iter().enumerate() {
                if veh.retired || model.fleets[veh.fleet as usize].graph as usize != g {
                    continue;
                }
                seen_nodes[veh.node as usize] += 1;
                if occ.node[veh.node as usize] != Some(v as u32) && veh.leg.is_none() {
                    conflicts += 1;
                }
                if let Some(leg) = veh.leg {
                    seen_edges[leg.edge as usize] += 1;
                    seen_nodes[veh.node as usize] -= 1;
                    seen_nodes[leg.to as usize] += 1;
                }
            }
            conflicts += seen_nodes.iter().filter(|&&c| c > 1).count();
            conflicts += seen_edges.iter().filter(|&&c| c > 1).count();
        }
        conflicts
    }

    /// Parts waiting for, or riding on, a vehicle now (for the part census).
    pub fn parts(&self) -> u64 {
        self.fleets.iter().map(|f| f.orders.len() as u64).sum::<u64>()
            + self.vehicles.iter().map(|v| v.orders.len() as u64).sum::<u64>()
    }

    /// Lowest charge any vehicle reached (kWh), and how often a battery ran dry.
    pub fn battery_extremes(&self) -> (f64, u64) {
        let serving = self.vehicles.iter().filter(|v| !v.retired);
        let min = serving.clone().map(|v| v.min_battery).fold(self.retired_min_battery, f64::min);
        let depleted = self.retired_depleted + serving.map(|v| v.depleted).sum::<u64>();
        (min, depleted)
    }

    /// Fleet `fleet`'s figures up to `now`.
    pub fn fleet_figures(&self, model: &Model, fleet: usize, now: Micros) -> FleetFigures {
        let spec = &model.fleets[fleet];
        let members: Vec<_> =
            self.vehicles.iter().filter(|v| v.fleet == fleet as u32 && !v.retired).collect();
        let mut times = [0u64; 6];
        for v in &members {
            for (k, t) in v.times.iter().enumerate() {
                times[k] += t;
            }
            times[v.state as usize] += now - v.since;
        }
        let cap = spec.battery.map_or(1.0, |b| b.capacity_kwh);
        FleetFigures {
            vehicles: members.len(),
            times,
            charged_kwh: members.iter().map(|v| v.charged_kwh).sum(),
            trips: members.iter().map(|v| v.trips).sum(),
            distance_m: members.iter().map(|v| v.distance_m).sum::<f64>(),
            min_battery: if spec.battery.is_some() {
                members.iter().map(|v| v.min_battery / cap).fold(1.0, f64::min)
            } else {
                1.0
            },
            depleted: members.iter().map(|v| v.depleted).sum(),
            orders_waiting: self.fleets[fleet].orders.len(),
        }
    }

    /// Vehicle-microseconds spent waiting for edge `edge` of graph `graph` or for its end
    /// node, and the trips over it, since the statistics were reset.
    pub fn segment_figures(&self, model: &Model, graph: usize, edge: usize) -> (u64, u64) {
        let occ = &self.occupancy[graph];
        let to = model.graphs[graph].edges[edge].to as usize;
        (occ.edge_wait[edge] + occ.node_wait[to], occ.edge_trips[edge])
    }

    /// Deadlocks since the statistics were reset: how many, and the first ones.
    pub fn deadlocks(&self) -> (u64, &[Deadlock]) {
        (self.n_deadlocks, &self.deadlocks)
    }
}
