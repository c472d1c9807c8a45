//! Jobs of the vehicles: dispatching orders by the fleet's rule, loading and unloading,
//! charging when low, parking out of the way when free.

use super::{Agvs, Job, VehicleDone, VehicleState, route_between};
use crate::graph::UNREACHABLE;
use crate::model::Model;
use crate::scene::DispatchRule;
use crate::sim::agenda::{Agenda, Event};
use crate::sim::handoff::TransportOrder;
use crate::time::{HOUR, Micros};

impl Agvs {
    /// Queues a transport order and dispatches the fleet.
    pub(crate) fn order(&mut self, model: &Model, agenda: &mut Agenda, fleet: u32, order: TransportOrder) {
        self.fleets[fleet as usize].orders.push_back(order);
        self.dispatch_fleet(model, agenda, fleet);
    }

    /// Whether a vehicle can take new work now.
    pub(super) fn vehicle_free(&self, model: &Model, v: u32) -> bool {
        let veh = &self.vehicles[v as usize];
        matches!(veh.job, Job::Idle | Job::Park) && !self.needs_charge(model, v)
    }

    pub(super) fn needs_charge(&self, model: &Model, v: u32) -> bool {
        let veh = &self.vehicles[v as usize];
        model.fleets[veh.fleet as usize].battery.is_some_and(|b| veh.battery < b.threshold * b.capacity_kwh)
    }

    /// The node a vehicle plans from: the end of the edge it drives, or where it stands.
    pub(super) fn plan_node(&self, v: u32) -> u32 {
        let veh = &self.vehicles[v as usize];
        veh.leg.map_or(veh.node, |l| l.to)
    }

    /// Assigns queued orders to free vehicles by the fleet's dispatching rule.
    pub(crate) fn dispatch_fleet(&mut self, model: &Model, agenda: &mut Agenda, fleet: u32) {
        let spec = &model.fleets[fleet as usize];
        let graph = &model.graphs[spec.graph as usize];
        while let Some(&order) = self.fleets[fleet as usize].orders.front() {
            let mut best: Option<(u64, u32)> = None;
            for &v in &self.fleets[fleet as usize].vehicles {
                if !self.vehicle_free(model, v) || !self.battery_suffices(model, v, &order) {
                    continue;
                }
                let key = match spec.rule {
                    DispatchRule::NearestIdle => graph.distance_mm(self.plan_node(v), order.from),
                    DispatchRule::FirstCome => self.vehicles[v as usize].idle_since,
                };
                if key != UNREACHABLE && best.is_none_or(|(k, _)| key < k) {
                    best = Some((key, v));
                }
            }
            let Some((_, v)) = best else { break };
            self.fleets[fleet as usize].orders.pop_front();
            self.assign_order(model, agenda, v, order);
        }
        // Free vehicles that are low on battery go and charge.
        for i in 0..self.fleets[fleet as usize].vehicles.len() {
            let v = self.fleets[fleet as usize].vehicles[i];
            let veh = &self.vehicles[v as usize];
            if matches!(veh.job, Job::Idle | Job::Park) && self.needs_charge(model, v) {
                self.go_charge(model, agenda, v);
            }
        }
    }

    /// Whether the battery covers the trip to the pickup, to the drop, and on to a charger.
    pub(super) fn battery_suffices(&self, model: &Model, v: u32, order: &TransportOrder) -> bool {
        let veh = &self.vehicles[v as usize];
        let spec = &model.fleets[veh.fleet as usize];
        let Some(b) = spec.battery else { return true };
        let graph = &model.graphs[spec.graph as usize];
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

    pub(super) fn assign_order(&mut self, model: &Model, agenda: &mut Agenda, v: u32, order: TransportOrder) {
        self.unclaim(model, v);
        let veh = &mut self.vehicles[v as usize];
        veh.job = Job::Fetch;
        veh.orders = vec![order];
        self.set_target(model, agenda, v, order.from);
    }

    /// Plans the route to `target` and starts driving (or acts at once when there).
    pub(super) fn set_target(&mut self, model: &Model, agenda: &mut Agenda, v: u32, target: u32) {
        let from = self.plan_node(v);
        let graph = &model.graphs[model.fleets[self.vehicles[v as usize].fleet as usize].graph as usize];
        let route = route_between(graph, from, target).unwrap_or_default();
        let veh = &mut self.vehicles[v as usize];
        veh.target = target;
        veh.route = route;
        self.vehicle_advance(model, agenda, v);
    }

    /// The vehicle stands at its target: act on its job.
    pub(super) fn vehicle_reached(&mut self, model: &Model, agenda: &mut Agenda, v: u32) {
        let now = agenda.now();
        let veh = &self.vehicles[v as usize];
        let fleet = &model.fleets[veh.fleet as usize];
        match veh.job {
            Job::Fetch | Job::Deliver => {
                let load_time = fleet.load_time;
                self.touch_battery(model, agenda.now(), v);
                self.set_vehicle_state(agenda.now(), v, VehicleState::Handling);
                let veh = &mut self.vehicles[v as usize];
                veh.generation += 1;
                let generation = veh.generation;
                agenda.schedule(now + load_time, Event::VehicleDone { vehicle: v, generation });
            }
            Job::Charge => {
                let Some(b) = fleet.battery else {
                    self.next_job(model, agenda, v);
                    return;
                };
                self.touch_battery(model, agenda.now(), v);
                let missing = (b.capacity_kwh - self.vehicles[v as usize].battery).max(0.0);
                let duration = ((missing / b.charge_kw * HOUR as f64).round() as Micros).max(1);
                self.set_vehicle_state(agenda.now(), v, VehicleState::Charging);
                let veh = &mut self.vehicles[v as usize];
                veh.generation += 1;
                let generation = veh.generation;
                agenda.schedule(now + duration, Event::VehicleDone { vehicle: v, generation });
            }
            Job::Park | Job::Idle => {
                let veh = &mut self.vehicles[v as usize];
                if veh.job == Job::Park {
                    veh.idle_since = now;
                }
                veh.job = Job::Idle;
                self.touch_battery(model, agenda.now(), v);
                self.set_vehicle_state(agenda.now(), v, VehicleState::Idle);
                let fleet = self.vehicles[v as usize].fleet;
                self.dispatch_fleet(model, agenda, fleet);
            }
        }
    }

    /// A vehicle finished loading (it takes other orders for the same trip and sets
    /// off), unloading (its orders are handed back) or charging.
    pub(crate) fn on_done(
        &mut self,
        model: &Model,
        agenda: &mut Agenda,
        v: u32,
        generation: u32,
    ) -> VehicleDone {
        if self.vehicles[v as usize].generation != generation {
            return VehicleDone::Stale;
        }
        let fleet_idx = self.vehicles[v as usize].fleet;
        let fleet = &model.fleets[fleet_idx as usize];
        self.touch_battery(model, agenda.now(), v);
        match self.vehicles[v as usize].job {
            Job::Fetch => {
                // Loaded: take other orders for the same trip up to the capacity.
                let first = self.vehicles[v as usize].orders[0];
                let queue = &mut self.fleets[fleet_idx as usize].orders;
                let mut extra = Vec::new();
                let mut i = 0;
                while i < queue.len() && 1 + extra.len() < fleet.capacity as usize {
                    if queue[i].from == first.from && queue[i].to == first.to {
                        extra.extend(queue.remove(i));
                    } else {
                        i += 1;
                    }
                }
                let veh = &mut self.vehicles[v as usize];
                veh.orders.extend(extra);
                veh.loaded = true;
                veh.job = Job::Deliver;
                self.set_vehicle_state(agenda.now(), v, VehicleState::TravellingLoaded);
                self.set_target(model, agenda, v, first.to);
            }
            Job::Deliver => {
                let orders = std::mem::take(&mut self.vehicles[v as usize].orders);
                let veh = &mut self.vehicles[v as usize];
                veh.loaded = false;
                veh.trips += 1;
                self.set_vehicle_state(agenda.now(), v, VehicleState::Idle);
                return VehicleDone::Delivered(orders);
            }
            Job::Charge => {
                if let Some(b) = fleet.battery {
                    let veh = &mut self.vehicles[v as usize];
                    veh.charged_kwh += (b.capacity_kwh - veh.battery).max(0.0);
                    veh.battery = b.capacity_kwh;
                }
                self.set_vehicle_state(agenda.now(), v, VehicleState::Idle);
                self.next_job(model, agenda, v);
                self.serve_charger_queue(model, agenda, fleet.graph);
            }
            Job::Idle | Job::Park => return VehicleDone::Stale,
        }
        VehicleDone::Handled
    }

    /// After a delivery or a charge: charge if low, else the oldest order, else park.
    pub(crate) fn next_job(&mut self, model: &Model, agenda: &mut Agenda, v: u32) {
        let fleet = self.vehicles[v as usize].fleet;
        let veh = &mut self.vehicles[v as usize];
        veh.job = Job::Idle;
        veh.idle_since = agenda.now();
        if self.needs_charge(model, v) {
            self.go_charge(model, agenda, v);
            return;
        }
        self.dispatch_fleet(model, agenda, fleet);
        if self.vehicles[v as usize].job == Job::Idle {
            self.go_park(model, agenda, v);
        }
    }

    pub(super) fn unclaim(&mut self, model: &Model, v: u32) {
        let g = model.fleets[self.vehicles[v as usize].fleet as usize].graph as usize;
        for c in &mut self.occupancy[g].claimed {
            if *c == Some(v) {
                *c = None;
            }
        }
    }

    /// Sends a vehicle to the nearest free charger. When every charger is taken, the
    /// vehicle parks and queues: driving to a busy charger would block the aisle to it.
    pub(super) fn go_charge(&mut self, model: &Model, agenda: &mut Agenda, v: u32) {
        let g = model.fleets[self.vehicles[v as usize].fleet as usize].graph as usize;
        let graph = &model.graphs[g];
        let from = self.plan_node(v);
        let occ = &self.occupancy[g];
        let vehicles = &self.vehicles;
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
            let queue = &mut self.charger_queue[g];
            if !queue.contains(&v) {
                queue.push_back(v);
                if self.vehicles[v as usize].job == Job::Idle {
                    self.go_park(model, agenda, v);
                }
            }
            return;
        };
        self.unclaim(model, v);
        self.charger_queue[g].retain(|&x| x != v);
        self.occupancy[g].claimed[charger as usize] = Some(v);
        self.vehicles[v as usize].job = Job::Charge;
        self.set_target(model, agenda, v, charger);
    }

    /// A charger came free: the longest-waiting vehicle that still needs it goes.
    pub(super) fn serve_charger_queue(&mut self, model: &Model, agenda: &mut Agenda, graph: u32) {
        while let Some(v) = self.charger_queue[graph as usize].pop_front() {
            let veh = &self.vehicles[v as usize];
            if matches!(veh.job, Job::Idle | Job::Park) && self.needs_charge(model, v) {
                self.go_charge(model, agenda, v);
                break;
            }
        }
    }

    /// Sends an idle vehicle to the nearest free parking node (or lets it stand).
    pub(super) fn go_park(&mut self, model: &Model, agenda: &mut Agenda, v: u32) {
        let spec = &model.fleets[self.vehicles[v as usize].fleet as usize];
        let g = spec.graph as usize;
        let graph = &model.graphs[g];
        let from = self.plan_node(v);
        self.unclaim(model, v);
        if spec.home.contains(&from) {
            self.occupancy[g].claimed[from as usize] = Some(v);
            self.set_vehicle_state(agenda.now(), v, VehicleState::Idle);
            return;
        }
        let occ = &self.occupancy[g];
        let pick = spec
            .home
            .iter()
            .filter(|&&h| occ.claimed[h as usize].is_none() && occ.node[h as usize].is_none())
            .min_by_key(|&&h| (graph.distance_mm(from, h), h));
        // No free home: any free node that is neither a station's nor a charger, so that
        // the vehicle does not stand where others must load, unload or charge.
        let spot = match pick {
            Some(&home) => Some(home),
            None if self.station_nodes[g][from as usize] || graph.chargers.contains(&from) => {
                self.free_spot(model, g, from, &[from])
            }
            None => None,
        };
        match spot {
            Some(n) => {
                self.occupancy[g].claimed[n as usize] = Some(v);
                self.vehicles[v as usize].job = Job::Park;
                self.set_target(model, agenda, v, n);
            }
            None => self.set_vehicle_state(agenda.now(), v, VehicleState::Idle),
        }
    }

    /// The nearest node from `from` where a vehicle may stand out of the way: free,
    /// unclaimed, reachable, neither a station's node nor a charger, not in `exclude`.
    pub(super) fn free_spot(&self, model: &Model, g: usize, from: u32, exclude: &[u32]) -> Option<u32> {
        let graph = &model.graphs[g];
        let occ = &self.occupancy[g];
        (0..graph.len() as u32)
            .filter(|&n| {
                occ.node[n as usize].is_none()
                    && occ.claimed[n as usize].is_none()
                    && !self.station_nodes[g][n as usize]
                    && !graph.chargers.contains(&n)
                    && !exclude.contains(&n)
                    && graph.distance_mm(from, n) != UNREACHABLE
            })
            .min_by_key(|&n| (graph.distance_mm(from, n), n))
    }
}
