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

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use crate::graph::{Graph, Resource, UNREACHABLE};
use crate::model::{Model, StationIdx};
use crate::scene::DispatchRule;
use crate::sim::agenda::{Event, Followup};
use crate::sim::{CommandError, Holder, PartId, Sim};
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

/// A part to carry from one station's node to another's.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Order {
    pub part: PartId,
    pub from: u32,
    pub to: u32,
    pub station: StationIdx,
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
    pub orders: Vec<Order>,
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
    pub orders: VecDeque<Order>,
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

/// What a truck carries.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Cargo {
    Part { part: PartId, station: StationIdx },
    Material { material: u32, factory: u32, qty: u32 },
    Shipment { units: u32 },
}

impl Cargo {
    pub(crate) fn units(&self) -> u32 {
        match self {
            Cargo::Part { .. } => 1,
            Cargo::Material { qty, .. } => *qty,
            Cargo::Shipment { units } => *units,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TruckJob {
    Idle,
    ToPickup { from: u32, to: u32 },
    Loading { from: u32, to: u32 },
    Hauling { to: u32 },
    Unloading,
}

/// A truck's drive along a road path.
#[derive(Clone, Debug)]
pub(crate) struct Drive {
    pub path: Vec<u32>,
    pub start: Micros,
    pub end: Micros,
}

#[derive(Clone, Debug)]
pub(crate) struct TruckRt {
    /// Taken out of service by a smaller truck count (see [`VehicleRt::retired`]).
    pub retired: bool,
    pub node: u32,
    pub drive: Option<Drive>,
    pub job: TruckJob,
    pub cargo: Vec<Cargo>,
    pub generation: u32,
    /// Time idle, driving empty, driving loaded, handling.
    pub times: [u64; 4],
    pub phase: usize,
    pub since: Micros,
    pub km: f64,
    pub loaded_trips: u64,
    pub units_moved: u64,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct Lanes {
    /// Cargo waiting at a road node for a destination, by `(from, to)`.
    pub queues: BTreeMap<(u32, u32), VecDeque<Cargo>>,
    /// Trucks on their way to pick up, by lane.
    pub assigned: BTreeMap<(u32, u32), u32>,
    /// Lanes waiting for a free truck, oldest first.
    pub requests: VecDeque<(u32, u32)>,
}

#[derive(Clone, Debug)]
pub(crate) struct MaterialRt {
    pub hub: u32,
    pub on_order: u32,
    pub factory: Vec<u32>,
    pub on_way: Vec<u32>,
    pub backorders: VecDeque<(u32, u32)>,
    pub hub_area: u128,
    pub hub_last: Micros,
    pub hub_min: u32,
    pub stockout: u64,
    pub stockout_since: Option<Micros>,
    pub supplier_orders: u64,
    pub shortages: u64,
}

#[derive(Clone, Debug)]
pub(crate) struct StaffRt {
    pub busy: u32,
    pub present: bool,
    pub waiting: VecDeque<StationIdx>,
    /// Worker-microseconds present, and busy.
    pub present_area: u128,
    pub busy_area: u128,
    pub last: Micros,
}

/// Something waiting for material to arrive at a factory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MaterialWaiter {
    Source(u32),
    Station(StationIdx),
}

/// All logistics state of a run.
#[derive(Clone, Debug, Default)]
pub(crate) struct LogisticsRt {
    pub vehicles: Vec<VehicleRt>,
    pub fleets: Vec<FleetRt>,
    pub occupancy: Vec<Occupancy>,
    pub deadlocks: Vec<Deadlock>,
    pub n_deadlocks: u64,
    pub trucks: Vec<TruckRt>,
    pub lanes: Lanes,
    pub materials: Vec<MaterialRt>,
    pub material_waiters: Vec<MaterialWaiter>,
    pub staff: Vec<StaffRt>,
    /// Factory whose stock a product's release draws on.
    pub product_factory: Vec<Option<u32>>,
    pub shipped: u64,
    pub truck_kwh: f64,
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

/// A truck's display state.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TruckView {
    pub x: f64,
    pub y: f64,
    pub heading: f64,
    pub loaded: bool,
    pub moving: bool,
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

impl TruckRt {
    /// An idle, empty truck at road node `node`.
    fn new(node: u32, now: Micros) -> TruckRt {
        TruckRt {
            retired: false,
            node,
            drive: None,
            job: TruckJob::Idle,
            cargo: Vec::new(),
            generation: 0,
            times: [0; 4],
            phase: 0,
            since: now,
            km: 0.0,
            loaded_trips: 0,
            units_moved: 0,
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
        let trucks = match (&model.trucks, &model.roads) {
            (Some(t), Some((_, hub))) => (0..t.count).map(|_| TruckRt::new(*hub, now)).collect(),
            _ => Vec::new(),
        };
        let n_factories = model.factories.len();
        let materials = model
            .materials
            .iter()
            .map(|m| MaterialRt {
                hub: m.hub_initial,
                on_order: 0,
                factory: vec![m.factory_initial; n_factories],
                on_way: vec![0; n_factories],
                backorders: VecDeque::new(),
                hub_area: 0,
                hub_last: now,
                hub_min: m.hub_initial,
                stockout: 0,
                stockout_since: None,
                supplier_orders: 0,
                shortages: 0,
            })
            .collect();
        let staff = model
            .staff
            .iter()
            .map(|s| StaffRt {
                busy: 0,
                present: s.calendar.is_none_or(|c| model.calendars[c as usize].state_at(now).0),
                waiting: VecDeque::new(),
                present_area: 0,
                busy_area: 0,
                last: now,
            })
            .collect();
        let product_factory = model
            .products
            .iter()
            .map(|p| {
                p.steps.first().and_then(|s| s.at.first()).and_then(|&st| model.stations[st as usize].factory)
            })
            .collect();
        LogisticsRt {
            vehicles,
            fleets,
            occupancy,
            deadlocks: Vec::new(),
            n_deadlocks: 0,
            trucks,
            lanes: Lanes::default(),
            materials,
            material_waiters: Vec::new(),
            staff,
            product_factory,
            shipped: 0,
            truck_kwh: 0.0,
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
        for t in &mut self.trucks {
            t.times = [0; 4];
            t.since = now;
            t.km = 0.0;
            t.loaded_trips = 0;
            t.units_moved = 0;
        }
        for m in &mut self.materials {
            m.hub_area = 0;
            m.hub_last = now;
            m.hub_min = m.hub;
            m.stockout = 0;
            if m.stockout_since.is_some() {
                m.stockout_since = Some(now);
            }
            m.supplier_orders = 0;
            m.shortages = 0;
        }
        for s in &mut self.staff {
            s.present_area = 0;
            s.busy_area = 0;
            s.last = now;
        }
        self.shipped = 0;
        self.truck_kwh = 0.0;
    }
}

impl StaffRt {
    fn touch(&mut self, now: Micros, size: u32) {
        let dt = u128::from(now - self.last);
        if self.present {
            self.present_area += dt * u128::from(size);
        }
        self.busy_area += dt * u128::from(self.busy);
        self.last = now;
    }
}

impl MaterialRt {
    fn touch(&mut self, now: Micros) {
        self.hub_area += u128::from(now - self.hub_last) * u128::from(self.hub);
        self.hub_last = now;
    }

    fn update_stockout(&mut self, now: Micros) {
        let out = !self.backorders.is_empty();
        match (out, self.stockout_since) {
            (true, None) => self.stockout_since = Some(now),
            (false, Some(since)) => {
                self.stockout += now - since;
                self.stockout_since = None;
            }
            _ => {}
        }
    }
}

impl Sim {
    // ----- Staff -----

    /// Takes `crew` workers for `station` from its pool, or queues the station.
    pub(crate) fn seize_crew(&mut self, station: StationIdx) -> bool {
        let spec = &self.model.stations[station as usize];
        let (Some(pool), crew) = (spec.pool, spec.crew) else { return true };
        if crew == 0 {
            return true;
        }
        let size = self.model.staff[pool as usize].size;
        let now = self.agenda.now();
        let st = &mut self.logistics.staff[pool as usize];
        let available = if st.present { size.saturating_sub(st.busy) } else { 0 };
        if available >= crew {
            st.touch(now, size);
            st.busy += crew;
            true
        } else {
            if !st.waiting.contains(&station) {
                st.waiting.push_back(station);
            }
            false
        }
    }

    /// Gives `station`'s crew back to its pool and lets waiting stations try again.
    pub(crate) fn release_crew(&mut self, station: StationIdx) {
        let spec = &self.model.stations[station as usize];
        let (Some(pool), crew) = (spec.pool, spec.crew) else { return };
        if crew == 0 {
            return;
        }
        let size = self.model.staff[pool as usize].size;
        let st = &mut self.logistics.staff[pool as usize];
        st.touch(self.agenda.now(), size);
        st.busy = st.busy.saturating_sub(crew);
        if !st.waiting.is_empty() {
            self.agenda.follow_up(Followup::Crew(pool));
        }
    }

    pub(crate) fn wake_crew_waiters(&mut self, pool: u32) {
        let waiting = std::mem::take(&mut self.logistics.staff[pool as usize].waiting);
        for station in waiting {
            self.try_start(station);
        }
    }

    /// A shift change of `calendar` for the worker pools that follow it.
    pub(crate) fn apply_staff_calendar(&mut self, calendar: u32, on: bool) {
        for pool in 0..self.model.staff.len() {
            if self.model.staff[pool].calendar != Some(calendar) {
                continue;
            }
            let size = self.model.staff[pool].size;
            let st = &mut self.logistics.staff[pool];
            st.touch(self.agenda.now(), size);
            st.present = on;
            if on && !st.waiting.is_empty() {
                self.agenda.follow_up(Followup::Crew(pool as u32));
            }
        }
    }

    // ----- Materials -----

    /// Whether the materials for one unit of `product` are in stock at its factory.
    pub(crate) fn materials_available(&self, product: u16) -> bool {
        let needs = &self.model.products[product as usize].materials;
        if needs.is_empty() {
            return true;
        }
        let Some(factory) = self.logistics.product_factory[product as usize] else { return true };
        needs.iter().all(|&(m, qty)| self.logistics.materials[m as usize].factory[factory as usize] >= qty)
    }

    /// Consumes the materials of one unit of `product`; the caller checked availability.
    pub(crate) fn consume_materials(&mut self, product: u16) {
        if self.model.products[product as usize].materials.is_empty() {
            return;
        }
        let model = Arc::clone(&self.model);
        let Some(factory) = self.logistics.product_factory[product as usize] else { return };
        for &(m, qty) in &model.products[product as usize].materials {
            let rt = &mut self.logistics.materials[m as usize];
            rt.factory[factory as usize] -= qty;
            self.reorder_for_factory(m, factory);
        }
    }

    pub(crate) fn wait_for_material(&mut self, waiter: MaterialWaiter, product: u16) {
        if !self.logistics.material_waiters.contains(&waiter) {
            self.logistics.material_waiters.push(waiter);
            for &(m, _) in &self.model.products[product as usize].materials {
                self.logistics.materials[m as usize].shortages += 1;
            }
        }
    }

    fn reorder_for_factory(&mut self, material: u32, factory: u32) {
        let spec = &self.model.materials[material as usize];
        let (reorder, qty) = (spec.factory_reorder, spec.factory_order);
        let rt = &mut self.logistics.materials[material as usize];
        if rt.factory[factory as usize] + rt.on_way[factory as usize] > reorder {
            return;
        }
        rt.on_way[factory as usize] += qty;
        if rt.hub >= qty && rt.backorders.is_empty() {
            rt.touch(self.agenda.now());
            rt.hub -= qty;
            rt.hub_min = rt.hub_min.min(rt.hub);
            self.ship_material(material, factory, qty);
        } else {
            rt.backorders.push_back((factory, qty));
            rt.update_stockout(self.agenda.now());
        }
        self.reorder_for_hub(material);
    }

    fn reorder_for_hub(&mut self, material: u32) {
        let spec = &self.model.materials[material as usize];
        let rt = &mut self.logistics.materials[material as usize];
        let backordered: u32 = rt.backorders.iter().map(|b| b.1).sum();
        if rt.hub + rt.on_order > spec.reorder_point + backordered {
            return;
        }
        let qty = spec.order_quantity.max(backordered);
        rt.on_order += qty;
        rt.supplier_orders += 1;
        let at = self.agenda.now() + spec.lead_time;
        self.agenda.schedule(at, Event::SupplyArrive { material, qty });
    }

    pub(crate) fn on_supply(&mut self, material: u32, qty: u32) {
        let now = self.agenda.now();
        let rt = &mut self.logistics.materials[material as usize];
        rt.touch(now);
        rt.hub += qty;
        rt.on_order -= qty;
        let mut shipments = Vec::new();
        while let Some(&(factory, want)) = rt.backorders.front() {
            if rt.hub < want {
                break;
            }
            rt.hub -= want;
            rt.backorders.pop_front();
            shipments.push((factory, want));
        }
        rt.hub_min = rt.hub_min.min(rt.hub);
        rt.update_stockout(now);
        for (factory, want) in shipments {
            self.ship_material(material, factory, want);
        }
        self.reorder_for_hub(material);
    }

    /// Sends material from the hub to a factory: by truck when the complex has trucks
    /// and the factory a dock, otherwise straight away.
    fn ship_material(&mut self, material: u32, factory: u32, qty: u32) {
        let dock = self.model.factories[factory as usize].dock;
        match (dock, &self.model.roads, self.logistics.trucks.is_empty()) {
            (Some(dock), Some((_, hub)), false) => {
                let hub = *hub;
                self.add_cargo(hub, dock, Cargo::Material { material, factory, qty });
            }
            _ => self.deliver_material(material, factory, qty),
        }
    }

    fn deliver_material(&mut self, material: u32, factory: u32, qty: u32) {
        let rt = &mut self.logistics.materials[material as usize];
        rt.factory[factory as usize] += qty;
        rt.on_way[factory as usize] -= qty;
        if !self.logistics.material_waiters.is_empty() {
            self.agenda.follow_up(Followup::Material);
        }
    }

    pub(crate) fn wake_material_waiters(&mut self) {
        let waiters = std::mem::take(&mut self.logistics.material_waiters);
        for w in waiters {
            match w {
                MaterialWaiter::Source(s) => {
                    let stamp = self.sources[s as usize].stamp;
                    self.unblock(Holder::Source(s), stamp);
                }
                MaterialWaiter::Station(s) => self.try_start(s),
            }
        }
    }

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
    pub(crate) fn order_transport(&mut self, fleet: u32, order: Order) {
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
    fn battery_suffices(&self, v: u32, order: &Order) -> bool {
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

    fn assign_order(&mut self, v: u32, order: Order) {
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

    // ----- Trucks -----

    /// Puts cargo on the dock at road node `from` for `to`, and calls a truck when the
    /// batch is complete (with a timetable, the next departure takes it).
    pub(crate) fn add_cargo(&mut self, from: u32, to: u32, cargo: Cargo) {
        let lanes = &mut self.logistics.lanes;
        let queue = lanes.queues.entry((from, to)).or_default();
        queue.push_back(cargo);
        self.check_lane(from, to);
    }

    /// Calls one more truck for a lane when what waits there makes another full batch
    /// beyond the trucks already on their way (batch dispatch only).
    fn check_lane(&mut self, from: u32, to: u32) {
        let Some(spec) = &self.model.trucks else { return };
        if spec.every.is_some() {
            return;
        }
        let lanes = &self.logistics.lanes;
        let units: u32 = lanes.queues.get(&(from, to)).map_or(0, |q| q.iter().map(Cargo::units).sum());
        let assigned = lanes.assigned.get(&(from, to)).copied().unwrap_or(0);
        let batch = spec.min_load.min(spec.capacity);
        if units >= batch + assigned * spec.capacity {
            self.request_truck(from, to);
        }
    }

    fn request_truck(&mut self, from: u32, to: u32) {
        let Some((roads, _)) = &self.model.roads else { return };
        let best = (0..self.logistics.trucks.len())
            .filter(|&t| self.logistics.trucks[t].job == TruckJob::Idle && !self.logistics.trucks[t].retired)
            .min_by_key(|&t| (roads.distance_mm(self.logistics.trucks[t].node, from), t));
        match best {
            Some(t) => self.truck_to_pickup(t as u32, from, to),
            None => {
                if !self.logistics.lanes.requests.contains(&(from, to)) {
                    self.logistics.lanes.requests.push_back((from, to));
                }
            }
        }
    }

    fn set_truck_phase(&mut self, t: u32, phase: usize) {
        let now = self.agenda.now();
        let truck = &mut self.logistics.trucks[t as usize];
        truck.times[truck.phase] += now - truck.since;
        truck.since = now;
        truck.phase = phase;
    }

    fn truck_to_pickup(&mut self, t: u32, from: u32, to: u32) {
        *self.logistics.lanes.assigned.entry((from, to)).or_default() += 1;
        self.logistics.trucks[t as usize].job = TruckJob::ToPickup { from, to };
        self.set_truck_phase(t, 1);
        self.truck_drive(t, from);
    }

    /// Drives a truck along the shortest road path to `dest`.
    fn truck_drive(&mut self, t: u32, dest: u32) {
        let model = Arc::clone(&self.model);
        let (Some((roads, _)), Some(spec)) = (&model.roads, &model.trucks) else { return };
        let now = self.agenda.now();
        let truck = &mut self.logistics.trucks[t as usize];
        let mut path = vec![truck.node];
        let mut at = truck.node;
        while at != dest {
            match roads.next_hop(at, dest) {
                Some(n) => {
                    path.push(n);
                    at = n;
                }
                None => break,
            }
        }
        let mm = roads.distance_mm(truck.node, dest);
        let metres = if mm == UNREACHABLE { 0.0 } else { mm as f64 / 1000.0 };
        let travel = (metres / spec.speed_m_s * SECOND as f64).round() as Micros;
        truck.km += metres / 1000.0;
        self.logistics.truck_kwh += metres / 1000.0 * spec.kwh_per_km;
        truck.generation += 1;
        let generation = truck.generation;
        truck.drive = Some(Drive { path, start: now, end: now + travel });
        self.agenda.schedule(now + travel, Event::TruckArrive { truck: t, generation });
    }

    pub(crate) fn on_truck_arrive(&mut self, t: u32, generation: u32) -> bool {
        let Some(spec) = self.model.trucks.clone() else { return false };
        let truck = &mut self.logistics.trucks[t as usize];
        if truck.generation != generation {
            return false;
        }
        let Some(drive) = truck.drive.take() else { return false };
        truck.node = *drive.path.last().unwrap_or(&truck.node);
        let next = match truck.job {
            TruckJob::ToPickup { from, to } => Some(TruckJob::Loading { from, to }),
            TruckJob::Hauling { .. } => Some(TruckJob::Unloading),
            _ => None,
        };
        if let Some(job) = next {
            truck.job = job;
            truck.generation += 1;
            let generation = truck.generation;
            self.set_truck_phase(t, 3);
            self.agenda
                .schedule(self.agenda.now() + spec.load_time, Event::TruckDone { truck: t, generation });
        }
        true
    }

    pub(crate) fn on_truck_done(&mut self, t: u32, generation: u32) -> bool {
        let Some(spec) = self.model.trucks.clone() else { return false };
        if self.logistics.trucks[t as usize].generation != generation {
            return false;
        }
        match self.logistics.trucks[t as usize].job {
            TruckJob::Loading { from, to } => {
                let lanes = &mut self.logistics.lanes;
                if let Some(n) = lanes.assigned.get_mut(&(from, to)) {
                    *n = n.saturating_sub(1);
                }
                let queue = lanes.queues.entry((from, to)).or_default();
                let mut room = spec.capacity;
                let mut cargo = Vec::new();
                while room > 0 {
                    let Some(front) = queue.front_mut() else { break };
                    let units = front.units();
                    if units <= room {
                        room -= units;
                        cargo.push(queue.pop_front().expect("front exists"));
                    } else if let Cargo::Material { material, factory, qty } = front {
                        // Split a large material delivery across trucks.
                        *qty -= room;
                        cargo.push(Cargo::Material { material: *material, factory: *factory, qty: room });
                        room = 0;
                    } else {
                        break;
                    }
                }
                let truck = &mut self.logistics.trucks[t as usize];
                if cargo.is_empty() {
                    truck.job = TruckJob::Idle;
                    self.set_truck_phase(t, 0);
                    self.serve_truck_requests();
                } else {
                    truck.units_moved += u64::from(spec.capacity - room);
                    truck.loaded_trips += 1;
                    truck.cargo = cargo;
                    truck.job = TruckJob::Hauling { to };
                    self.set_truck_phase(t, 2);
                    self.truck_drive(t, to);
                    self.check_lane(from, to);
                }
            }
            TruckJob::Unloading => {
                let cargo = std::mem::take(&mut self.logistics.trucks[t as usize].cargo);
                self.logistics.trucks[t as usize].job = TruckJob::Idle;
                self.set_truck_phase(t, 0);
                for c in cargo {
                    match c {
                        Cargo::Part { part, station } => {
                            self.inbound[station as usize].push_back(part);
                            self.move_inbound(station);
                        }
                        Cargo::Material { material, factory, qty } => {
                            self.deliver_material(material, factory, qty)
                        }
                        Cargo::Shipment { units } => self.logistics.shipped += u64::from(units),
                    }
                }
                self.serve_truck_requests();
            }
            _ => return false,
        }
        true
    }

    /// Gives free trucks to the oldest lanes still waiting for one.
    fn serve_truck_requests(&mut self) {
        while self.logistics.trucks.iter().any(|t| t.job == TruckJob::Idle && !t.retired) {
            let Some((from, to)) = self.logistics.lanes.requests.pop_front() else { break };
            let waiting = self.logistics.lanes.queues.get(&(from, to)).is_some_and(|q| !q.is_empty());
            if waiting {
                self.request_truck(from, to);
            }
        }
    }

    /// A timetable departure: every lane with cargo gets a truck.
    pub(crate) fn on_truck_timetable(&mut self) {
        let Some(every) = self.model.trucks.as_ref().and_then(|t| t.every) else { return };
        let lanes: Vec<(u32, u32)> = self
            .logistics
            .lanes
            .queues
            .iter()
            .filter(|(lane, q)| {
                !q.is_empty() && self.logistics.lanes.assigned.get(lane).is_none_or(|&n| n == 0)
            })
            .map(|(lane, _)| *lane)
            .collect();
        for (from, to) in lanes {
            self.request_truck(from, to);
        }
        self.agenda.schedule(self.agenda.now() + every, Event::TruckTimetable);
    }

    /// Moves parts delivered by truck into their station's buffer while it has room.
    pub(crate) fn move_inbound(&mut self, station: StationIdx) {
        while let Some(&part) = self.inbound[station as usize].front() {
            if !self.stations[station as usize].has_room() {
                let stamp = self.stamp();
                self.inbound_stamp[station as usize] = stamp;
                self.stations[station as usize].waiters.push_back((Holder::Inbound(station), stamp));
                break;
            }
            self.inbound[station as usize].pop_front();
            self.enter_station(station, part);
        }
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

    /// Display state of every truck, positions interpolated along its road path.
    pub fn truck_views(&self) -> impl Iterator<Item = TruckView> + '_ {
        self.logistics.trucks.iter().filter(|t| !t.retired).map(move |truck| {
            let Some((roads, _)) = &self.model.roads else {
                return TruckView { x: 0.0, y: 0.0, heading: 0.0, loaded: false, moving: false, load: 0 };
            };
            let load: u32 = truck.cargo.iter().map(Cargo::units).sum();
            let (pos, heading, moving) = match &truck.drive {
                Some(d) if d.path.len() > 1 => {
                    let span = (d.end - d.start).max(1) as f64;
                    let f = ((self.agenda.now().saturating_sub(d.start)) as f64 / span).clamp(0.0, 1.0);
                    let pts: Vec<_> = d.path.iter().map(|&n| roads.nodes[n as usize].pos).collect();
                    let total: f64 = pts.windows(2).map(|w| (w[1] - w[0]).norm()).sum();
                    let mut left = f * total;
                    let mut out = (pts[pts.len() - 1], 0.0);
                    for w in pts.windows(2) {
                        let seg = (w[1] - w[0]).norm();
                        let heading = (w[1].y - w[0].y).atan2(w[1].x - w[0].x);
                        if left <= seg || seg == 0.0 {
                            let t = if seg > 0.0 { left / seg } else { 0.0 };
                            out = (w[0] + (w[1] - w[0]) * t, heading);
                            break;
                        }
                        left -= seg;
                        out = (w[1], heading);
                    }
                    (out.0, out.1, true)
                }
                _ => (roads.nodes[truck.node as usize].pos, 0.0, false),
            };
            TruckView { x: pos.x, y: pos.y, heading, loaded: load > 0, moving, load }
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
        c.docks = self
            .logistics
            .lanes
            .queues
            .values()
            .flatten()
            .filter(|c| matches!(c, Cargo::Part { .. }))
            .count() as u64
            + self
                .logistics
                .trucks
                .iter()
                .flat_map(|t| &t.cargo)
                .filter(|c| matches!(c, Cargo::Part { .. }))
                .count() as u64
            + self.inbound.iter().map(|q| q.len() as u64).sum::<u64>();
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
        let active: Vec<usize> =
            (0..self.logistics.trucks.len()).filter(|&t| !self.logistics.trucks[t].retired).collect();
        let current = active.len() as u32;
        if count > current {
            let now = self.agenda.now();
            for _ in current..count {
                self.logistics.trucks.push(TruckRt::new(hub, now));
            }
            self.serve_truck_requests();
        } else if count < current {
            let idle: Vec<usize> = active
                .iter()
                .rev()
                .copied()
                .filter(|&t| self.logistics.trucks[t].job == TruckJob::Idle)
                .take((current - count) as usize)
                .collect();
            if (idle.len() as u32) < current - count {
                return Err(CommandError::Busy(format!(
                    "only {} truck(s) stand idle now; {} must be taken out of service",
                    idle.len(),
                    current - count
                )));
            }
            for t in idle {
                self.logistics.trucks[t].retired = true;
            }
        }
        self.run_followups();
        Ok(())
    }
}
