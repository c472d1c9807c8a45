//! Logistics of the complex: worker pools, materials (supplier -> hub -> factories), AGV
//! fleets on path graphs, and trucks on the road network.
//!
//! AGV traffic control: a vehicle holds the node it stands on; to drive an edge it must
//! also take the edge and the node at its end, so no two vehicles ever share a node or a
//! segment (a two-way edge is one segment: vehicles never pass on it). A vehicle that
//! finds its way taken waits on that one resource; when it frees, waiters retry in order.
//! A parked vehicle in the way is asked to move aside. A cycle of waiting vehicles is a
//! deadlock: it is detected when the cycle closes, recorded with the vehicles involved,
//! and broken by replanning one of them around the blocked node (or backing it off to a
//! free neighbour); if no vehicle can move, the record says so and the run goes on.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::graph::{Graph, Resource, UNREACHABLE};
use crate::model::{Model, StationIdx};
use crate::scene::DispatchRule;
use crate::sim::agenda::{Event, Followup};
use crate::sim::handoff::TransportOrder;
use crate::sim::{CommandError, Sim};
use crate::time::{HOUR, Micros, SECOND};

/// What a vehicle is doing, for KPIs and colours.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
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
    pub const ALL: [VehicleState; 6] = [
        VehicleState::Idle,
        VehicleState::TravellingEmpty,
        VehicleState::TravellingLoaded,
        VehicleState::Handling,
        VehicleState::WaitingTraffic,
        VehicleState::Charging,
    ];
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Job {
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
#[derive(Clone, Copy, Debug)]
pub(crate) struct Leg {
    pub edge: u32,
    pub from: u32,
    pub to: u32,
    pub start: Micros,
    pub end: Micros,
}

#[derive(Clone, Debug)]
pub(crate) struct VehicleRt {
    pub fleet: u32,
    pub node: u32,
    pub leg: Option<Leg>,
    pub route: VecDeque<u32>,
    pub target: u32,
    pub job: Job,
    pub orders: Vec<TransportOrder>,
    pub loaded: bool,
    pub state: VehicleState,
    pub since: Micros,
    pub times: [u64; 6],
    /// Stored energy, kWh; integrated up to `battery_t`.
    pub battery: f64,
    pub battery_t: Micros,
    pub min_battery: f64,
    pub depleted: u64,
    pub waiting_on: Option<Resource>,
    pub wait_since: Micros,
    pub generation: u32,
    pub distance_m: f64,
    pub trips: u64,
    pub idle_since: Micros,
    pub heading: f64,
    pub charged_kwh: f64,
    /// Deadlock resolutions tried at `resolve_t`, to stop retrying within one instant.
    pub resolve_t: Micros,
    pub resolves: u32,
    /// Taken out of service by a smaller fleet size: holds no node, shows nowhere. Kept
    /// in the table so that other vehicles' indices stay put.
    pub retired: bool,
}

/// Who holds and who waits for each node and edge of one path graph.
#[derive(Clone, Debug, Default)]
pub(crate) struct Occupancy {
    pub node: Vec<Option<u32>>,
    pub edge: Vec<Option<u32>>,
    pub node_waiters: Vec<VecDeque<u32>>,
    pub edge_waiters: Vec<VecDeque<u32>>,
    /// Vehicle-microseconds spent waiting for each node / edge (congestion).
    pub node_wait: Vec<u64>,
    pub edge_wait: Vec<u64>,
    pub edge_trips: Vec<u64>,
    /// Parking nodes claimed by a vehicle on its way there.
    pub claimed: Vec<Option<u32>>,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct FleetRt {
    pub orders: VecDeque<TransportOrder>,
    pub vehicles: Vec<u32>,
}

/// A recorded deadlock.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Deadlock {
    /// Simulation time, seconds.
    pub time_s: f64,
    pub fleet: String,
    /// Vehicles in the cycle, as `fleet#k`.
    pub vehicles: Vec<String>,
    /// Whether one of them could replan or back off.
    pub resolved: bool,
}

/// All logistics state of a run.
#[derive(Clone, Debug, Default)]
pub(crate) struct LogisticsRt {
    pub vehicles: Vec<VehicleRt>,
    pub fleets: Vec<FleetRt>,
    pub occupancy: Vec<Occupancy>,
    pub deadlocks: Vec<Deadlock>,
    pub n_deadlocks: u64,
    /// Vehicles waiting (parked) for a free charger, per path graph.
    pub charger_queue: Vec<VecDeque<u32>>,
    /// Per path graph, the nodes where stations load and unload (no place to park).
    pub station_nodes: Vec<Vec<bool>>,
}

/// How long a deadlock that could not be broken waits before the next attempt.
const DEADLOCK_RETRY: Micros = 5 * SECOND;

/// How many deadlock records a report keeps (the count is kept in full).
const MAX_DEADLOCK_RECORDS: usize = 20;

/// Where the parts in the complex are.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PartCensus {
    pub buffers: u64,
    /// In service, setting up or blocked on a machine.
    pub machines: u64,
    pub conveyors: u64,
    /// Released but waiting at their source (no room or no material).
    pub sources: u64,
    /// Waiting for, or riding on, an AGV.
    pub agvs: u64,
    /// On docks, on trucks, or delivered and waiting for room.
    pub docks: u64,
}

impl PartCensus {
    pub fn total(&self) -> u64 {
        self.buffers + self.machines + self.conveyors + self.sources + self.agvs + self.docks
    }
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

impl VehicleRt {
    /// A vehicle of `fleet` standing idle on `node` with a full battery of `battery` kWh.
    fn new(fleet: u32, node: u32, battery: f64, now: Micros) -> VehicleRt {
        VehicleRt {
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

impl LogisticsRt {
    pub(crate) fn new(model: &Model, now: Micros) -> LogisticsRt {
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
            let mut rt = FleetRt::default();
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
                vehicles.push(VehicleRt::new(fi as u32, node, battery, now));
                rt.vehicles.push(v);
            }
            fleets.push(rt);
        }
        LogisticsRt {
            vehicles,
            fleets,
            occupancy,
            deadlocks: Vec::new(),
            n_deadlocks: 0,
            charger_queue: vec![VecDeque::new(); model.graphs.len()],
            station_nodes: model
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
                .collect(),
        }
    }

    /// Restarts the statistics at `now` (end of warm-up); the state carries on.
    pub(crate) fn reset_statistics(&mut self, now: Micros) {
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
    }
}

impl Sim {
    // ----- AGVs -----

    /// The fleet that carries a part from `from` to `to`, if any: the step's own fleet,
    /// else the factory's, when both stations have nodes on that fleet's graph.
    pub(crate) fn agv_between(
        &self,
        from: StationIdx,
        to: StationIdx,
        carry: Option<u32>,
    ) -> Option<(u32, u32, u32)> {
        let model = &self.model;
        let (a, b) = (&model.stations[from as usize], &model.stations[to as usize]);
        let fleet = carry.or_else(|| {
            let f = a.factory?;
            (b.factory == Some(f)).then(|| model.factories[f as usize].agv).flatten()
        })?;
        let graph = model.fleets[fleet as usize].graph;
        match (a.node, b.node) {
            (Some((ga, na)), Some((gb, nb))) if ga == graph && gb == graph && na != nb => {
                Some((fleet, na, nb))
            }
            _ => None,
        }
    }

    /// Queues a transport order; the part's slot at the target is already reserved.
    pub(crate) fn order_transport(&mut self, fleet: u32, order: TransportOrder) {
        self.logistics.fleets[fleet as usize].orders.push_back(order);
        self.dispatch_fleet(fleet);
    }

    /// Whether a vehicle can take new work now.
    fn vehicle_free(&self, v: u32) -> bool {
        let veh = &self.logistics.vehicles[v as usize];
        matches!(veh.job, Job::Idle | Job::Park) && !self.needs_charge(v)
    }

    fn needs_charge(&self, v: u32) -> bool {
        let veh = &self.logistics.vehicles[v as usize];
        self.model.fleets[veh.fleet as usize]
            .battery
            .is_some_and(|b| veh.battery < b.threshold * b.capacity_kwh)
    }

    /// The node a vehicle plans from: the end of the edge it drives, or where it stands.
    fn plan_node(&self, v: u32) -> u32 {
        let veh = &self.logistics.vehicles[v as usize];
        veh.leg.map_or(veh.node, |l| l.to)
    }

    /// Assigns queued orders to free vehicles by the fleet's dispatching rule.
    pub(crate) fn dispatch_fleet(&mut self, fleet: u32) {
        let model = Arc::clone(&self.model);
        let spec = &model.fleets[fleet as usize];
        let graph = &model.graphs[spec.graph as usize];
        while let Some(&order) = self.logistics.fleets[fleet as usize].orders.front() {
            let mut best: Option<(u64, u32)> = None;
            for &v in &self.logistics.fleets[fleet as usize].vehicles {
                if !self.vehicle_free(v) || !self.battery_suffices(v, &order) {
                    continue;
                }
                let key = match spec.rule {
                    DispatchRule::NearestIdle => graph.distance_mm(self.plan_node(v), order.from),
                    DispatchRule::FirstCome => self.logistics.vehicles[v as usize].idle_since,
                };
                if key != UNREACHABLE && best.is_none_or(|(k, _)| key < k) {
                    best = Some((key, v));
                }
            }
            let Some((_, v)) = best else { break };
            self.logistics.fleets[fleet as usize].orders.pop_front();
            self.assign_order(v, order);
        }
        // Free vehicles that are low on battery go and charge.
        for i in 0..self.logistics.fleets[fleet as usize].vehicles.len() {
            let v = self.logistics.fleets[fleet as usize].vehicles[i];
            let veh = &self.logistics.vehicles[v as usize];
            if matches!(veh.job, Job::Idle | Job::Park) && self.needs_charge(v) {
                self.go_charge(v);
            }
        }
    }

    /// Whether the battery covers the trip to the pickup, to the drop, and on to a charger.
    fn battery_suffices(&self, v: u32, order: &TransportOrder) -> bool {
        let veh = &self.logistics.vehicles[v as usize];
        let spec = &self.model.fleets[veh.fleet as usize];
        let Some(b) = spec.battery else { return true };
        let graph = &self.model.graphs[spec.graph as usize];
        let to_charger = graph.chargers.iter().map(|&c| graph.distance_mm(order.to, c)).min().unwrap_or(0);
        let mm = graph
            .distance_mm(self.plan_node(v), order.from)
            .saturating_add(graph.distance_mm(order.from, order.to))
            .saturating_add(to_charger);
        if mm == UNREACHABLE {
            return false;
        }
        // Twice the driving energy: a margin for waiting in traffic and standing draw.
        let need = 2.0 * mm as f64 / 1000.0 * b.drive_kwh_per_m + b.idle_kw * 0.25;
        veh.battery >= need
    }

    fn assign_order(&mut self, v: u32, order: TransportOrder) {
        self.unclaim(v);
        let veh = &mut self.logistics.vehicles[v as usize];
        veh.job = Job::Fetch;
        veh.orders = vec![order];
        self.set_target(v, order.from);
    }

    /// Plans the route to `target` and starts driving (or acts at once when there).
    fn set_target(&mut self, v: u32, target: u32) {
        let from = self.plan_node(v);
        let graph = &self.model.graphs
            [self.model.fleets[self.logistics.vehicles[v as usize].fleet as usize].graph as usize];
        let route = route_between(graph, from, target).unwrap_or_default();
        let veh = &mut self.logistics.vehicles[v as usize];
        veh.target = target;
        veh.route = route;
        self.vehicle_advance(v);
    }

    fn set_vehicle_state(&mut self, v: u32, state: VehicleState) {
        let now = self.agenda.now();
        let veh = &mut self.logistics.vehicles[v as usize];
        if veh.state != state {
            veh.times[veh.state as usize] += now - veh.since;
            veh.since = now;
            veh.state = state;
        }
    }

    /// Integrates the standing draw up to now.
    fn touch_battery(&mut self, v: u32) {
        let now = self.agenda.now();
        let veh = &mut self.logistics.vehicles[v as usize];
        let Some(b) = self.model.fleets[veh.fleet as usize].battery else { return };
        let dt = now - veh.battery_t;
        veh.battery_t = now;
        let hours = dt as f64 / HOUR as f64;
        if veh.state == VehicleState::Charging {
            veh.battery = (veh.battery + b.charge_kw * hours).min(b.capacity_kwh);
            veh.charged_kwh += b.charge_kw * hours;
        } else {
            veh.battery -= b.idle_kw * hours;
        }
        if veh.battery < 0.0 {
            veh.depleted += 1;
            veh.battery = 0.0;
        }
        veh.min_battery = veh.min_battery.min(veh.battery);
    }

    /// Moves a vehicle on along its route as far as traffic allows right now.
    pub(crate) fn vehicle_advance(&mut self, v: u32) {
        let model = Arc::clone(&self.model);
        let veh = &self.logistics.vehicles[v as usize];
        if veh.leg.is_some() || matches!(veh.state, VehicleState::Handling | VehicleState::Charging) {
            return;
        }
        let fleet = &model.fleets[veh.fleet as usize];
        let g = fleet.graph as usize;
        let graph = &model.graphs[g];
        let at = veh.node;
        let Some(&next) = veh.route.front() else {
            self.vehicle_reached(v);
            return;
        };
        let Some(edge) = graph.edge_between(at, next) else {
            // The route no longer starts here (replanned while driving): plan again.
            let target = veh.target;
            self.set_target(v, target);
            return;
        };
        let occ = &self.logistics.occupancy[g];
        let blocker = if occ.edge[edge as usize].is_some_and(|h| h != v) {
            Some(Resource::Edge(edge))
        } else if occ.node[next as usize].is_some_and(|h| h != v) {
            Some(Resource::Node(next))
        } else {
            None
        };
        if let Some(r) = blocker {
            let now = self.agenda.now();
            let veh = &mut self.logistics.vehicles[v as usize];
            if veh.waiting_on != Some(r) {
                if let Some(old) = veh.waiting_on {
                    self.add_wait(g, old, now - self.logistics.vehicles[v as usize].wait_since);
                }
                let veh = &mut self.logistics.vehicles[v as usize];
                veh.waiting_on = Some(r);
                veh.wait_since = now;
                let occ = &mut self.logistics.occupancy[g];
                match r {
                    Resource::Node(n) => occ.node_waiters[n as usize].push_back(v),
                    Resource::Edge(e) => occ.edge_waiters[e as usize].push_back(v),
                }
            }
            self.touch_battery(v);
            self.set_vehicle_state(v, VehicleState::WaitingTraffic);
            self.resolve_blockage(v, r, true);
            return;
        }
        let now = self.agenda.now();
        if let Some(old) = self.logistics.vehicles[v as usize].waiting_on.take() {
            let since = self.logistics.vehicles[v as usize].wait_since;
            self.add_wait(g, old, now - since);
        }
        self.touch_battery(v);
        let e = &graph.edges[edge as usize];
        let speed = e.speed_limit.map_or(fleet.speed_m_s, |l| l.min(fleet.speed_m_s));
        let travel = ((e.length_m() / speed * SECOND as f64).round() as Micros).max(1);
        let occ = &mut self.logistics.occupancy[g];
        occ.edge[edge as usize] = Some(v);
        occ.node[next as usize] = Some(v);
        occ.node[at as usize] = None;
        if !occ.node_waiters[at as usize].is_empty() {
            self.agenda.follow_up(Followup::Resource { graph: g as u32, resource: Resource::Node(at) });
        }
        let (pa, pb) = (graph.nodes[at as usize].pos, graph.nodes[next as usize].pos);
        let veh = &mut self.logistics.vehicles[v as usize];
        veh.route.pop_front();
        veh.leg = Some(Leg { edge, from: at, to: next, start: now, end: now + travel });
        veh.heading = (pb.y - pa.y).atan2(pb.x - pa.x);
        veh.generation += 1;
        let generation = veh.generation;
        let state = if veh.loaded { VehicleState::TravellingLoaded } else { VehicleState::TravellingEmpty };
        self.set_vehicle_state(v, state);
        self.agenda.schedule(now + travel, Event::VehicleArrive { vehicle: v, generation });
    }

    fn add_wait(&mut self, graph: usize, r: Resource, dt: Micros) {
        let occ = &mut self.logistics.occupancy[graph];
        match r {
            Resource::Node(n) => occ.node_wait[n as usize] += dt,
            Resource::Edge(e) => occ.edge_wait[e as usize] += dt,
        }
    }

    pub(crate) fn on_vehicle_arrive(&mut self, v: u32, generation: u32) -> bool {
        let model = Arc::clone(&self.model);
        let veh = &mut self.logistics.vehicles[v as usize];
        if veh.generation != generation {
            return false;
        }
        let Some(leg) = veh.leg.take() else { return false };
        let fleet = &model.fleets[veh.fleet as usize];
        let g = fleet.graph as usize;
        let length = model.graphs[g].edges[leg.edge as usize].length_m();
        veh.node = leg.to;
        veh.distance_m += length;
        if let Some(b) = fleet.battery {
            veh.battery -= length * b.drive_kwh_per_m;
        }
        self.touch_battery(v);
        let occ = &mut self.logistics.occupancy[g];
        occ.edge[leg.edge as usize] = None;
        occ.edge_trips[leg.edge as usize] += 1;
        if !occ.edge_waiters[leg.edge as usize].is_empty() {
            self.agenda.follow_up(Followup::Resource { graph: g as u32, resource: Resource::Edge(leg.edge) });
        }
        self.vehicle_advance(v);
        true
    }

    /// Wakes the vehicles waiting for a node or edge that just freed.
    pub(crate) fn wake_resource(&mut self, graph: u32, resource: Resource) {
        let occ = &mut self.logistics.occupancy[graph as usize];
        let waiters = match resource {
            Resource::Node(n) => std::mem::take(&mut occ.node_waiters[n as usize]),
            Resource::Edge(e) => std::mem::take(&mut occ.edge_waiters[e as usize]),
        };
        for w in waiters {
            if self.logistics.vehicles[w as usize].waiting_on == Some(resource) {
                self.logistics.vehicles[w as usize].waiting_on = None;
                let since = self.logistics.vehicles[w as usize].wait_since;
                self.add_wait(graph as usize, resource, self.agenda.now() - since);
                self.vehicle_advance(w);
            }
        }
    }

    /// A retry of a deadlock that could not be broken earlier.
    pub(crate) fn on_vehicle_retry(&mut self, v: u32, generation: u32) -> bool {
        let veh = &self.logistics.vehicles[v as usize];
        if veh.generation != generation {
            return false;
        }
        let Some(r) = veh.waiting_on else { return false };
        self.resolve_blockage(v, r, false);
        true
    }

    /// Moves a parked vehicle out of the way, or detects and breaks a deadlock. A new
    /// deadlock is counted when `new_wait`; one that cannot be broken now is tried again
    /// a little later, when the vehicles around may have moved.
    fn resolve_blockage(&mut self, v: u32, r: Resource, new_wait: bool) {
        let model = Arc::clone(&self.model);
        let g = model.fleets[self.logistics.vehicles[v as usize].fleet as usize].graph as usize;
        let graph = &model.graphs[g];
        let holder_of = |sim: &Sim, r: Resource| -> Option<u32> {
            let occ = &sim.logistics.occupancy[g];
            match r {
                Resource::Node(n) => occ.node[n as usize],
                Resource::Edge(e) => occ.edge[e as usize],
            }
        };
        let Some(h) = holder_of(self, r) else { return };
        // A vehicle standing idle in the way moves aside: to a free neighbour, or when it
        // has none, towards the nearest free parking spot (the wait cycle that may form
        // on the way is then broken like any other deadlock).
        let hv = &self.logistics.vehicles[h as usize];
        if hv.job == Job::Idle && hv.leg.is_none() && hv.waiting_on.is_none() {
            let my_node = self.logistics.vehicles[v as usize].node;
            let spot = graph.out[hv.node as usize].iter().find(|&&(e, n)| {
                let occ = &self.logistics.occupancy[g];
                n != my_node
                    && occ.node[n as usize].is_none()
                    && occ.edge[e as usize].is_none()
                    && occ.claimed[n as usize].is_none()
            });
            let target = match spot {
                Some(&(_, n)) => Some(n),
                None => self.free_spot(g, hv.node, &[my_node, hv.node]),
            };
            if let Some(n) = target {
                self.unclaim(h);
                self.logistics.occupancy[g].claimed[n as usize] = Some(h);
                self.logistics.vehicles[h as usize].job = Job::Park;
                self.set_target(h, n);
            }
            let generation = self.logistics.vehicles[v as usize].generation;
            self.agenda
                .schedule(self.agenda.now() + DEADLOCK_RETRY, Event::VehicleRetry { vehicle: v, generation });
            return;
        }
        // Follow the chain of waits. A chain that comes back to a vehicle already on it
        // has a cycle: a deadlock, whether or not `v` itself is part of it.
        let mut chain = vec![v];
        let mut cur = h;
        let cycle = loop {
            if let Some(k) = chain.iter().position(|&x| x == cur) {
                break chain.split_off(k);
            }
            if chain.len() > self.logistics.vehicles.len() {
                return;
            }
            chain.push(cur);
            let Some(next_r) = self.logistics.vehicles[cur as usize].waiting_on else { return };
            let Some(next_h) = holder_of(self, next_r) else { return };
            cur = next_h;
        };
        let now = self.agenda.now();
        let veh = &mut self.logistics.vehicles[v as usize];
        if veh.resolve_t == now {
            veh.resolves += 1;
            if veh.resolves > 3 {
                // Enough tries for this instant; look again a little later.
                let generation = veh.generation;
                self.agenda.schedule(now + DEADLOCK_RETRY, Event::VehicleRetry { vehicle: v, generation });
                return;
            }
        } else {
            veh.resolve_t = now;
            veh.resolves = 1;
        }
        // Break it: the first vehicle of the cycle with another way round takes it; else
        // the first one with a free neighbour off everyone else's way (a passing bay)
        // steps aside there and lets the others pass. Backing off onto another's route
        // would only swap places and repeat, so without such a spot the deadlock stays
        // and is reported unresolved.
        let mut resolved = false;
        for &x in &cycle {
            let vx = &self.logistics.vehicles[x as usize];
            let Some(&blocked) = vx.route.front() else { continue };
            let (node, target) = (vx.node, vx.target);
            if blocked != target
                && let Some(path) = graph.path_avoiding(node, target, &[blocked])
            {
                self.logistics.vehicles[x as usize].route = path.into();
                resolved = true;
            }
            if resolved {
                self.logistics.vehicles[x as usize].waiting_on = None;
                self.agenda.follow_up(Followup::Vehicle(x));
                break;
            }
        }
        // Two passes: first spots off everyone else's way; then any free neighbour (on a
        // one-way ring, stepping ahead is fine: the others follow rather than meet it).
        for strict in [true, false] {
            if resolved {
                break;
            }
            for &x in &cycle {
                let (node, target) =
                    (self.logistics.vehicles[x as usize].node, self.logistics.vehicles[x as usize].target);
                let blocked = self.logistics.vehicles[x as usize].route.front().copied();
                let in_the_way = |n: u32| {
                    cycle.iter().filter(|&&y| y != x).any(|&y| {
                        let vy = &self.logistics.vehicles[y as usize];
                        vy.node == n || vy.route.contains(&n)
                    })
                };
                let occ = &self.logistics.occupancy[g];
                let spot = graph.out[node as usize].iter().find(|&&(e, n)| {
                    Some(n) != blocked
                        && occ.node[n as usize].is_none()
                        && occ.edge[e as usize].is_none()
                        && !(strict && in_the_way(n))
                });
                if let Some(&(_, n)) = spot {
                    let mut route: VecDeque<u32> = VecDeque::from([n]);
                    route.extend(route_between(graph, n, target).unwrap_or_default());
                    self.logistics.vehicles[x as usize].route = route;
                    self.logistics.vehicles[x as usize].waiting_on = None;
                    self.agenda.follow_up(Followup::Vehicle(x));
                    resolved = true;
                    break;
                }
            }
        }
        if !resolved {
            let veh = &self.logistics.vehicles[v as usize];
            let generation = veh.generation;
            self.agenda.schedule(now + DEADLOCK_RETRY, Event::VehicleRetry { vehicle: v, generation });
        }
        if !new_wait {
            return;
        }
        self.logistics.n_deadlocks += 1;
        if self.logistics.deadlocks.len() < MAX_DEADLOCK_RECORDS {
            let fleet = &model.fleets[self.logistics.vehicles[v as usize].fleet as usize];
            let vehicles = cycle
                .iter()
                .map(|&x| {
                    let k = self.logistics.fleets[self.logistics.vehicles[x as usize].fleet as usize]
                        .vehicles
                        .iter()
                        .position(|&y| y == x)
                        .unwrap_or(0);
                    format!("{}#{k}", fleet.id)
                })
                .collect();
            self.logistics.deadlocks.push(Deadlock {
                time_s: now as f64 / SECOND as f64,
                fleet: fleet.id.clone(),
                vehicles,
                resolved,
            });
        }
    }

    /// The vehicle stands at its target: act on its job.
    fn vehicle_reached(&mut self, v: u32) {
        let now = self.agenda.now();
        let veh = &self.logistics.vehicles[v as usize];
        let fleet = &self.model.fleets[veh.fleet as usize];
        match veh.job {
            Job::Fetch | Job::Deliver => {
                let load_time = fleet.load_time;
                self.touch_battery(v);
                self.set_vehicle_state(v, VehicleState::Handling);
                let veh = &mut self.logistics.vehicles[v as usize];
                veh.generation += 1;
                let generation = veh.generation;
                self.agenda.schedule(now + load_time, Event::VehicleDone { vehicle: v, generation });
            }
            Job::Charge => {
                let Some(b) = fleet.battery else {
                    self.next_job(v);
                    return;
                };
                self.touch_battery(v);
                let missing = (b.capacity_kwh - self.logistics.vehicles[v as usize].battery).max(0.0);
                let duration = ((missing / b.charge_kw * HOUR as f64).round() as Micros).max(1);
                self.set_vehicle_state(v, VehicleState::Charging);
                let veh = &mut self.logistics.vehicles[v as usize];
                veh.generation += 1;
                let generation = veh.generation;
                self.agenda.schedule(now + duration, Event::VehicleDone { vehicle: v, generation });
            }
            Job::Park | Job::Idle => {
                let veh = &mut self.logistics.vehicles[v as usize];
                if veh.job == Job::Park {
                    veh.idle_since = now;
                }
                veh.job = Job::Idle;
                self.touch_battery(v);
                self.set_vehicle_state(v, VehicleState::Idle);
                let fleet = self.logistics.vehicles[v as usize].fleet;
                self.dispatch_fleet(fleet);
            }
        }
    }

    pub(crate) fn on_vehicle_done(&mut self, v: u32, generation: u32) -> bool {
        if self.logistics.vehicles[v as usize].generation != generation {
            return false;
        }
        let model = Arc::clone(&self.model);
        let fleet_idx = self.logistics.vehicles[v as usize].fleet;
        let fleet = &model.fleets[fleet_idx as usize];
        self.touch_battery(v);
        match self.logistics.vehicles[v as usize].job {
            Job::Fetch => {
                // Loaded: take other orders for the same trip up to the capacity.
                let first = self.logistics.vehicles[v as usize].orders[0];
                let queue = &mut self.logistics.fleets[fleet_idx as usize].orders;
                let mut extra = Vec::new();
                let mut i = 0;
                while i < queue.len() && 1 + extra.len() < fleet.capacity as usize {
                    if queue[i].from == first.from && queue[i].to == first.to {
                        extra.extend(queue.remove(i));
                    } else {
                        i += 1;
                    }
                }
                let veh = &mut self.logistics.vehicles[v as usize];
                veh.orders.extend(extra);
                veh.loaded = true;
                veh.job = Job::Deliver;
                self.set_vehicle_state(v, VehicleState::TravellingLoaded);
                self.set_target(v, first.to);
            }
            Job::Deliver => {
                let orders = std::mem::take(&mut self.logistics.vehicles[v as usize].orders);
                let veh = &mut self.logistics.vehicles[v as usize];
                veh.loaded = false;
                veh.trips += 1;
                self.set_vehicle_state(v, VehicleState::Idle);
                for order in orders {
                    // Into the buffer whose slot was reserved when the order was placed.
                    self.stations[order.station as usize].reserved -= 1;
                    self.enter_station(order.station, order.part);
                }
                self.next_job(v);
            }
            Job::Charge => {
                if let Some(b) = fleet.battery {
                    let veh = &mut self.logistics.vehicles[v as usize];
                    veh.charged_kwh += (b.capacity_kwh - veh.battery).max(0.0);
                    veh.battery = b.capacity_kwh;
                }
                self.set_vehicle_state(v, VehicleState::Idle);
                self.next_job(v);
                self.serve_charger_queue(fleet.graph);
            }
            Job::Idle | Job::Park => return false,
        }
        true
    }

    /// After a delivery or a charge: charge if low, else the oldest order, else park.
    fn next_job(&mut self, v: u32) {
        let fleet = self.logistics.vehicles[v as usize].fleet;
        let veh = &mut self.logistics.vehicles[v as usize];
        veh.job = Job::Idle;
        veh.idle_since = self.agenda.now();
        if self.needs_charge(v) {
            self.go_charge(v);
            return;
        }
        self.dispatch_fleet(fleet);
        if self.logistics.vehicles[v as usize].job == Job::Idle {
            self.go_park(v);
        }
    }

    fn unclaim(&mut self, v: u32) {
        let g = self.model.fleets[self.logistics.vehicles[v as usize].fleet as usize].graph as usize;
        for c in &mut self.logistics.occupancy[g].claimed {
            if *c == Some(v) {
                *c = None;
            }
        }
    }

    /// Sends a vehicle to the nearest free charger. When every charger is taken, the
    /// vehicle parks and queues: driving to a busy charger would block the aisle to it.
    fn go_charge(&mut self, v: u32) {
        let model = Arc::clone(&self.model);
        let g = model.fleets[self.logistics.vehicles[v as usize].fleet as usize].graph as usize;
        let graph = &model.graphs[g];
        let from = self.plan_node(v);
        let occ = &self.logistics.occupancy[g];
        let vehicles = &self.logistics.vehicles;
        // A charger with an idle vehicle standing on it counts as free: that vehicle is
        // asked to move aside when this one arrives.
        let pick = graph
            .chargers
            .iter()
            .filter(|&&c| {
                occ.claimed[c as usize].is_none_or(|x| x == v)
                    && occ.node[c as usize].is_none_or(|x| x == v || vehicles[x as usize].job == Job::Idle)
            })
            .min_by_key(|&&c| (graph.distance_mm(from, c), c));
        let Some(&charger) = pick else {
            let queue = &mut self.logistics.charger_queue[g];
            if !queue.contains(&v) {
                queue.push_back(v);
                if self.logistics.vehicles[v as usize].job == Job::Idle {
                    self.go_park(v);
                }
            }
            return;
        };
        self.unclaim(v);
        self.logistics.charger_queue[g].retain(|&x| x != v);
        self.logistics.occupancy[g].claimed[charger as usize] = Some(v);
        self.logistics.vehicles[v as usize].job = Job::Charge;
        self.set_target(v, charger);
    }

    /// A charger came free: the longest-waiting vehicle that still needs it goes.
    fn serve_charger_queue(&mut self, graph: u32) {
        while let Some(v) = self.logistics.charger_queue[graph as usize].pop_front() {
            let veh = &self.logistics.vehicles[v as usize];
            if matches!(veh.job, Job::Idle | Job::Park) && self.needs_charge(v) {
                self.go_charge(v);
                break;
            }
        }
    }

    /// Sends an idle vehicle to the nearest free parking node (or lets it stand).
    fn go_park(&mut self, v: u32) {
        let model = Arc::clone(&self.model);
        let spec = &model.fleets[self.logistics.vehicles[v as usize].fleet as usize];
        let g = spec.graph as usize;
        let graph = &model.graphs[g];
        let from = self.plan_node(v);
        self.unclaim(v);
        if spec.home.contains(&from) {
            self.logistics.occupancy[g].claimed[from as usize] = Some(v);
            self.set_vehicle_state(v, VehicleState::Idle);
            return;
        }
        let occ = &self.logistics.occupancy[g];
        let pick = spec
            .home
            .iter()
            .filter(|&&h| occ.claimed[h as usize].is_none() && occ.node[h as usize].is_none())
            .min_by_key(|&&h| (graph.distance_mm(from, h), h));
        // No free home: any free node that is neither a station's nor a charger, so that
        // the vehicle does not stand where others must load, unload or charge.
        let spot = match pick {
            Some(&home) => Some(home),
            None if self.logistics.station_nodes[g][from as usize] || graph.chargers.contains(&from) => {
                self.free_spot(g, from, &[from])
            }
            None => None,
        };
        match spot {
            Some(n) => {
                self.logistics.occupancy[g].claimed[n as usize] = Some(v);
                self.logistics.vehicles[v as usize].job = Job::Park;
                self.set_target(v, n);
            }
            None => self.set_vehicle_state(v, VehicleState::Idle),
        }
    }

    /// The nearest node from `from` where a vehicle may stand out of the way: free,
    /// unclaimed, reachable, neither a station's node nor a charger, not in `exclude`.
    fn free_spot(&self, g: usize, from: u32, exclude: &[u32]) -> Option<u32> {
        let graph = &self.model.graphs[g];
        let occ = &self.logistics.occupancy[g];
        (0..graph.len() as u32)
            .filter(|&n| {
                occ.node[n as usize].is_none()
                    && occ.claimed[n as usize].is_none()
                    && !self.logistics.station_nodes[g][n as usize]
                    && !graph.chargers.contains(&n)
                    && !exclude.contains(&n)
                    && graph.distance_mm(from, n) != UNREACHABLE
            })
            .min_by_key(|&n| (graph.distance_mm(from, n), n))
    }

    // ----- Views -----

    /// Display state of every AGV, positions interpolated along the edge being driven.
    pub fn vehicle_views(&self) -> impl Iterator<Item = VehicleView> + '_ {
        self.logistics.vehicles.iter().filter(|v| !v.retired).map(move |veh| {
            let fleet = &self.model.fleets[veh.fleet as usize];
            let graph = &self.model.graphs[fleet.graph as usize];
            let pos = match veh.leg {
                Some(leg) => {
                    let (a, b) = (graph.nodes[leg.from as usize].pos, graph.nodes[leg.to as usize].pos);
                    let span = (leg.end - leg.start).max(1) as f64;
                    let f = ((self.agenda.now().saturating_sub(leg.start)) as f64 / span).clamp(0.0, 1.0);
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

    /// Whether any vehicle shares a node or an edge with another: the traffic rule's
    /// invariant, for tests.
    pub fn traffic_conflicts(&self) -> usize {
        let mut conflicts = 0;
        for (g, occ) in self.logistics.occupancy.iter().enumerate() {
            let mut seen_nodes = vec![0u32; occ.node.len()];
            let mut seen_edges = vec![0u32; occ.edge.len()];
            for (v, veh) in self.logistics.vehicles.iter().enumerate() {
                if veh.retired || self.model.fleets[veh.fleet as usize].graph as usize != g {
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

    /// Where every part in the complex is now, counted place by place; the sum must
    /// equal the WIP. For tests of the part balance.
    pub fn part_census(&self) -> PartCensus {
        let mut c = PartCensus::default();
        for st in &self.stations {
            c.buffers += st.queue.len() as u64;
            c.machines +=
                st.servers.iter().filter(|s| !matches!(s.state, crate::sim::ServerState::Idle)).count()
                    as u64;
        }
        c.conveyors = self.conveyors.iter().map(|cv| cv.items.len() as u64).sum();
        c.sources = self.sources.iter().map(|s| s.backlog.len() as u64).sum();
        c.agvs = self.logistics.fleets.iter().map(|f| f.orders.len() as u64).sum::<u64>()
            + self.logistics.vehicles.iter().map(|v| v.orders.len() as u64).sum::<u64>();
        c.docks = self.trucks.parts() + self.inbound.iter().map(|q| q.len() as u64).sum::<u64>();
        c
    }

    /// Parts created, finished and scrapped over the whole run (warm-up included).
    pub fn lifetime_counts(&self) -> (u64, u64, u64) {
        self.totals.lifetime
    }

    /// Lowest state of charge any vehicle reached (kWh), and how often a battery ran dry.
    pub fn battery_extremes(&self) -> (f64, u64) {
        let min = self.logistics.vehicles.iter().map(|v| v.min_battery).fold(f64::INFINITY, f64::min);
        let depleted = self.logistics.vehicles.iter().map(|v| v.depleted).sum();
        (min, depleted)
    }
}

impl Sim {
    /// Sets the number of vehicles of an AGV fleet. New vehicles appear on free parking
    /// nodes (then any free node); only vehicles standing idle can be taken out of
    /// service, the most recently added first, so that no order or part is lost.
    pub fn set_fleet_size(&mut self, fleet: &str, count: u32) -> Result<(), CommandError> {
        let f = self
            .model
            .fleets
            .iter()
            .position(|x| x.id == fleet)
            .ok_or_else(|| CommandError::UnknownFleet(fleet.to_string()))? as u32;
        let model = Arc::clone(&self.model);
        let spec = &model.fleets[f as usize];
        let g = spec.graph as usize;
        let graph = &model.graphs[g];
        if count as usize > graph.len() {
            return Err(CommandError::Invalid(format!(
                "{count} vehicles cannot stand on the {} nodes of `{}`",
                graph.len(),
                graph.id
            )));
        }
        let current = self.logistics.fleets[f as usize].vehicles.len() as u32;
        if count > current {
            let free = |sim: &Sim, n: u32| {
                let occ = &sim.logistics.occupancy[g];
                occ.node[n as usize].is_none() && occ.claimed[n as usize].is_none()
            };
            let spots: Vec<u32> = spec.home.iter().copied().chain(0..graph.len() as u32).collect();
            let mut placed = Vec::new();
            for &n in &spots {
                if placed.len() as u32 == count - current {
                    break;
                }
                if free(self, n) && !placed.contains(&n) {
                    placed.push(n);
                }
            }
            if (placed.len() as u32) < count - current {
                return Err(CommandError::Invalid(format!(
                    "only {} free nodes for new vehicles of `{fleet}` now",
                    placed.len()
                )));
            }
            let now = self.agenda.now();
            for node in placed {
                let v = self.logistics.vehicles.len() as u32;
                self.logistics.occupancy[g].node[node as usize] = Some(v);
                let battery = spec.battery.map_or(0.0, |b| b.capacity_kwh);
                self.logistics.vehicles.push(VehicleRt::new(f, node, battery, now));
                self.logistics.fleets[f as usize].vehicles.push(v);
            }
        } else if count < current {
            let members = &self.logistics.fleets[f as usize].vehicles;
            let idle: Vec<u32> = members
                .iter()
                .rev()
                .copied()
                .filter(|&v| {
                    let veh = &self.logistics.vehicles[v as usize];
                    matches!(veh.job, Job::Idle | Job::Park)
                        && veh.leg.is_none()
                        && veh.waiting_on.is_none()
                        && veh.orders.is_empty()
                        && veh.state == VehicleState::Idle
                })
                .take((current - count) as usize)
                .collect();
            if (idle.len() as u32) < current - count {
                return Err(CommandError::Busy(format!(
                    "only {} vehicle(s) of `{fleet}` stand idle now; {} must be taken out of service",
                    idle.len(),
                    current - count
                )));
            }
            for v in idle {
                self.unclaim(v);
                self.logistics.charger_queue[g].retain(|&x| x != v);
                self.logistics.fleets[f as usize].vehicles.retain(|&x| x != v);
                let veh = &mut self.logistics.vehicles[v as usize];
                veh.retired = true;
                let node = veh.node;
                let occ = &mut self.logistics.occupancy[g];
                if occ.node[node as usize] == Some(v) {
                    occ.node[node as usize] = None;
                    if !occ.node_waiters[node as usize].is_empty() {
                        self.agenda.follow_up(Followup::Resource {
                            graph: g as u32,
                            resource: Resource::Node(node),
                        });
                    }
                }
            }
        }
        self.dispatch_fleet(f);
        self.run_followups();
        Ok(())
    }

    /// Sets the number of trucks. New trucks start at the hub; only idle trucks can be
    /// taken out of service, the most recently added first.
    pub fn set_truck_count(&mut self, count: u32) -> Result<(), CommandError> {
        let Some((_, hub)) = self.model.roads.as_ref().map(|(g, h)| (g.len(), *h)) else {
            return Err(CommandError::Invalid("the scene has no trucks".into()));
        };
        if self.model.trucks.is_none() {
            return Err(CommandError::Invalid("the scene has no trucks".into()));
        }
        if !(1..=1000).contains(&count) {
            return Err(CommandError::Invalid(format!("truck count must be 1 to 1000, got {count}")));
        }
        self.trucks.set_count(&self.model, &mut self.agenda, hub, count).map_err(|e| {
            CommandError::Busy(format!(
                "only {} truck(s) stand idle now; {} must be taken out of service",
                e.idle, e.remove
            ))
        })?;
        self.run_followups();
        Ok(())
    }
}
