//! Blockages: a parked vehicle in the way moves aside; a cycle of waiting vehicles is a
//! deadlock, recorded and broken by replanning one of them around the blocked node or
//! stepping one aside to a free neighbour. One that cannot be broken now is retried a
//! little later, when the vehicles around may have moved.

use std::collections::VecDeque;

use super::{Agvs, DEADLOCK_RETRY, Deadlock, Job, MAX_DEADLOCK_RECORDS, route_between};
use crate::graph::Resource;
use crate::model::Model;
use crate::sim::agenda::{Agenda, Event, Followup};
use crate::time::SECOND;

/// A wait cycle found by [`Agvs::resolve_blockage`].
pub(super) struct Cycle {
    /// The vehicles in the cycle, in wait order.
    vehicles: Vec<u32>,
    /// Whether one of them could replan or step aside.
    resolved: bool,
}

impl Agvs {
    /// A retry of a deadlock that could not be broken earlier.
    pub(crate) fn on_vehicle_retry(
        &mut self,
        model: &Model,
        agenda: &mut Agenda,
        v: u32,
        generation: u32,
    ) -> bool {
        let veh = &self.vehicles[v as usize];
        if veh.generation != generation {
            return false;
        }
        let Some(r) = veh.waiting_on else { return false };
        // A deadlock found again is the same deadlock: it is not recorded twice.
        self.resolve_blockage(model, agenda, v, r);
        true
    }

    /// Moves a parked vehicle out of the way, or detects and breaks a deadlock; one that
    /// cannot be broken now is tried again a little later, when the vehicles around may
    /// have moved. Returns the wait cycle it tried to break, if it found one.
    pub(super) fn resolve_blockage(
        &mut self,
        model: &Model,
        agenda: &mut Agenda,
        v: u32,
        r: Resource,
    ) -> Option<Cycle> {
        let g = model.fleets[self.vehicles[v as usize].fleet as usize].graph as usize;
        let graph = &model.graphs[g];
        let holder_of = |agvs: &Agvs, r: Resource| agvs.occupancy[g].holder(r);
        let h = holder_of(self, r)?;
        // A vehicle standing idle in the way moves aside: to a free neighbour, or when it
        // has none, towards the nearest free parking spot (the wait cycle that may form
        // on the way is then broken like any other deadlock).
        let hv = &self.vehicles[h as usize];
        if hv.job == Job::Idle && hv.leg.is_none() && hv.waiting_on.is_none() {
            let my_node = self.vehicles[v as usize].node;
            let spot = graph.out[hv.node as usize].iter().find(|&&(e, n)| {
                let occ = &self.occupancy[g];
                n != my_node
                    && occ.node[n as usize].is_none()
                    && occ.edge[e as usize].is_none()
                    && occ.claimed[n as usize].is_none()
            });
            let target = match spot {
                Some(&(_, n)) => Some(n),
                None => self.free_spot(model, g, hv.node, &[my_node, hv.node]),
            };
            if let Some(n) = target {
                self.unclaim(model, h);
                self.occupancy[g].claimed[n as usize] = Some(h);
                self.vehicles[h as usize].job = Job::Park;
                self.set_target(model, agenda, h, n);
            }
            let generation = self.vehicles[v as usize].generation;
            agenda.schedule(agenda.now() + DEADLOCK_RETRY, Event::VehicleRetry { vehicle: v, generation });
            return None;
        }
        // Follow the chain of waits. A chain that comes back to a vehicle already on it
        // has a cycle: a deadlock, whether or not `v` itself is part of it.
        let mut chain = vec![v];
        let mut cur = h;
        let cycle = loop {
            if let Some(k) = chain.iter().position(|&x| x == cur) {
                break chain.split_off(k);
            }
            if chain.len() > self.vehicles.len() {
                return None;
            }
            chain.push(cur);
            let next_r = self.vehicles[cur as usize].waiting_on?;
            cur = holder_of(self, next_r)?;
        };
        let now = agenda.now();
        let veh = &mut self.vehicles[v as usize];
        if veh.resolve_t == now {
            veh.resolves += 1;
            if veh.resolves > 3 {
                // Enough tries for this instant; look again a little later.
                let generation = veh.generation;
                agenda.schedule(now + DEADLOCK_RETRY, Event::VehicleRetry { vehicle: v, generation });
                return None;
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
            let vx = &self.vehicles[x as usize];
            let Some(&blocked) = vx.route.front() else { continue };
            let (node, target) = (vx.node, vx.target);
            if blocked != target
                && let Some(path) = graph.path_avoiding(node, target, &[blocked])
            {
                self.vehicles[x as usize].route = path.into();
                resolved = true;
            }
            if resolved {
                self.vehicles[x as usize].waiting_on = None;
                agenda.follow_up(Followup::Vehicle(x));
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
                let (node, target) = (self.vehicles[x as usize].node, self.vehicles[x as usize].target);
                let blocked = self.vehicles[x as usize].route.front().copied();
                let in_the_way = |n: u32| {
                    cycle.iter().filter(|&&y| y != x).any(|&y| {
                        let vy = &self.vehicles[y as usize];
                        vy.node == n || vy.route.contains(&n)
                    })
                };
                let occ = &self.occupancy[g];
                let spot = graph.out[node as usize].iter().find(|&&(e, n)| {
                    Some(n) != blocked
                        && occ.node[n as usize].is_none()
                        && occ.edge[e as usize].is_none()
                        && !(strict && in_the_way(n))
                });
                if let Some(&(_, n)) = spot {
                    let mut route: VecDeque<u32> = VecDeque::from([n]);
                    route.extend(route_between(graph, n, target).unwrap_or_default());
                    self.vehicles[x as usize].route = route;
                    self.vehicles[x as usize].waiting_on = None;
                    agenda.follow_up(Followup::Vehicle(x));
                    resolved = true;
                    break;
                }
            }
        }
        if !resolved {
            let veh = &self.vehicles[v as usize];
            let generation = veh.generation;
            agenda.schedule(now + DEADLOCK_RETRY, Event::VehicleRetry { vehicle: v, generation });
        }
        Some(Cycle { vehicles: cycle, resolved })
    }

    /// Counts a deadlock that `v`'s wait closed, and records it while the records last.
    pub(super) fn record_deadlock(&mut self, model: &Model, now: crate::time::Micros, v: u32, cycle: Cycle) {
        self.n_deadlocks += 1;
        if self.deadlocks.len() < MAX_DEADLOCK_RECORDS {
            let fleet = &model.fleets[self.vehicles[v as usize].fleet as usize];
            let vehicles = cycle
                .vehicles
                .iter()
                .map(|&x| {
                    let k = self.fleets[self.vehicles[x as usize].fleet as usize]
                        .vehicles
                        .iter()
                        .position(|&y| y == x)
                        .unwrap_or(0);
                    format!("{}#{k}", fleet.id)
                })
                .collect();
            self.deadlocks.push(Deadlock {
                time_s: now as f64 / SECOND as f64,
                fleet: fleet.id.clone(),
                vehicles,
                resolved: cycle.resolved,
            });
        }
    }
}
