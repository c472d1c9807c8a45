//! Driving under the traffic rule: a vehicle takes the next edge and the node at its end
//! before it drives, and waits on the one resource that is taken. Batteries drain on the
//! way and while standing, and fill while charging.

use super::{Agvs, Leg, VehicleState};
use crate::graph::Resource;
use crate::model::Model;
use crate::sim::agenda::{Agenda, Event, Followup};
use crate::time::{HOUR, Micros, SECOND};

impl Agvs {
    /// Changes a vehicle's state, closing the time of the one it leaves.
    pub(super) fn set_vehicle_state(&mut self, now: Micros, v: u32, state: VehicleState) {
        let veh = &mut self.vehicles[v as usize];
        if veh.state != state {
            veh.times[veh.state as usize] += now - veh.since;
            veh.since = now;
            veh.state = state;
        }
    }

    /// Integrates the standing draw up to now.
    pub(super) fn touch_battery(&mut self, model: &Model, now: Micros, v: u32) {
        let veh = &mut self.vehicles[v as usize];
        let Some(b) = model.fleets[veh.fleet as usize].battery else { return };
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
    pub(crate) fn vehicle_advance(&mut self, model: &Model, agenda: &mut Agenda, v: u32) {
        let veh = &self.vehicles[v as usize];
        if veh.leg.is_some() || matches!(veh.state, VehicleState::Handling | VehicleState::Charging) {
            return;
        }
        let fleet = &model.fleets[veh.fleet as usize];
        let g = fleet.graph as usize;
        let graph = &model.graphs[g];
        let at = veh.node;
        let Some(&next) = veh.route.front() else {
            self.vehicle_reached(model, agenda, v);
            return;
        };
        let Some(edge) = graph.edge_between(at, next) else {
            // The route no longer starts here (replanned while driving): plan again.
            let target = veh.target;
            self.set_target(model, agenda, v, target);
            return;
        };
        let occ = &self.occupancy[g];
        let blocker = if occ.edge[edge as usize].is_some_and(|h| h != v) {
            Some(Resource::Edge(edge))
        } else if occ.node[next as usize].is_some_and(|h| h != v) {
            Some(Resource::Node(next))
        } else {
            None
        };
        if let Some(r) = blocker {
            let now = agenda.now();
            let veh = &mut self.vehicles[v as usize];
            if veh.waiting_on != Some(r) {
                if let Some(old) = veh.waiting_on {
                    self.add_wait(g, old, now - self.vehicles[v as usize].wait_since);
                }
                let veh = &mut self.vehicles[v as usize];
                veh.waiting_on = Some(r);
                veh.wait_since = now;
                let occ = &mut self.occupancy[g];
                match r {
                    Resource::Node(n) => occ.node_waiters[n as usize].push_back(v),
                    Resource::Edge(e) => occ.edge_waiters[e as usize].push_back(v),
                }
            }
            self.touch_battery(model, agenda.now(), v);
            self.set_vehicle_state(agenda.now(), v, VehicleState::WaitingTraffic);
            if let Some(cycle) = self.resolve_blockage(model, agenda, v, r) {
                self.record_deadlock(model, agenda.now(), v, cycle);
            }
            return;
        }
        let now = agenda.now();
        if let Some(old) = self.vehicles[v as usize].waiting_on.take() {
            let since = self.vehicles[v as usize].wait_since;
            self.add_wait(g, old, now - since);
        }
        self.touch_battery(model, agenda.now(), v);
        let e = &graph.edges[edge as usize];
        let speed = e.speed_limit.map_or(fleet.speed_m_s, |l| l.min(fleet.speed_m_s));
        let travel = ((e.length_m() / speed * SECOND as f64).round() as Micros).max(1);
        let occ = &mut self.occupancy[g];
        occ.edge[edge as usize] = Some(v);
        occ.node[next as usize] = Some(v);
        occ.node[at as usize] = None;
        if !occ.node_waiters[at as usize].is_empty() {
            agenda.follow_up(Followup::Resource { graph: g as u32, resource: Resource::Node(at) });
        }
        let (pa, pb) = (graph.nodes[at as usize].pos, graph.nodes[next as usize].pos);
        let veh = &mut self.vehicles[v as usize];
        veh.route.pop_front();
        veh.leg = Some(Leg { edge, from: at, to: next, start: now, end: now + travel });
        veh.heading = (pb.y - pa.y).atan2(pb.x - pa.x);
        veh.generation += 1;
        let generation = veh.generation;
        let state = if veh.loaded { VehicleState::TravellingLoaded } else { VehicleState::TravellingEmpty };
        self.set_vehicle_state(agenda.now(), v, state);
        agenda.schedule(now + travel, Event::VehicleArrive { vehicle: v, generation });
    }

    pub(super) fn add_wait(&mut self, graph: usize, r: Resource, dt: Micros) {
        let occ = &mut self.occupancy[graph];
        match r {
            Resource::Node(n) => occ.node_wait[n as usize] += dt,
            Resource::Edge(e) => occ.edge_wait[e as usize] += dt,
        }
    }

    pub(crate) fn on_vehicle_arrive(
        &mut self,
        model: &Model,
        agenda: &mut Agenda,
        v: u32,
        generation: u32,
    ) -> bool {
        let veh = &mut self.vehicles[v as usize];
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
        self.touch_battery(model, agenda.now(), v);
        let occ = &mut self.occupancy[g];
        occ.edge[leg.edge as usize] = None;
        occ.edge_trips[leg.edge as usize] += 1;
        if !occ.edge_waiters[leg.edge as usize].is_empty() {
            agenda.follow_up(Followup::Resource { graph: g as u32, resource: Resource::Edge(leg.edge) });
        }
        self.vehicle_advance(model, agenda, v);
        true
    }

    /// Wakes the vehicles waiting for a node or edge that just freed.
    pub(crate) fn wake_resource(
        &mut self,
        model: &Model,
        agenda: &mut Agenda,
        graph: u32,
        resource: Resource,
    ) {
        let occ = &mut self.occupancy[graph as usize];
        let waiters = match resource {
            Resource::Node(n) => std::mem::take(&mut occ.node_waiters[n as usize]),
            Resource::Edge(e) => std::mem::take(&mut occ.edge_waiters[e as usize]),
        };
        for w in waiters {
            if self.vehicles[w as usize].waiting_on == Some(resource) {
                self.vehicles[w as usize].waiting_on = None;
                let since = self.vehicles[w as usize].wait_since;
                self.add_wait(graph as usize, resource, agenda.now() - since);
                self.vehicle_advance(model, agenda, w);
            }
        }
    }
}
