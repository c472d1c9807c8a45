//! Trucks on the road network between factory docks and the hub.
//!
//! Owns the trucks, the cargo waiting on docks by lane `(from, to)`, the lanes waiting
//! for a truck, what was shipped to the hub, and the trucks' time and energy. With batch
//! dispatch a lane calls a truck when a full batch waits beyond the trucks already on
//! their way; with a timetable every lane with cargo gets a truck at each departure. A
//! truck drives to the pickup, loads up to its capacity (splitting a large material
//! delivery), drives to the destination and unloads.
//!
//! Knows nothing of stations or stock: cargo arrives through `Haul` and leaves as
//! `Delivery` values that the coordinator hands to their owners.

use std::collections::{BTreeMap, VecDeque};

use crate::graph::UNREACHABLE;
use crate::model::Model;
use crate::sim::agenda::{Agenda, Event};
use crate::sim::handoff::{Cargo, Delivery, Haul};
use crate::time::{Micros, SECOND};

/// What a truck is doing, for its time shares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) enum TruckPhase {
    Idle,
    /// Driving to a pickup.
    DrivingEmpty,
    /// Driving cargo to its destination.
    DrivingLoaded,
    /// Loading or unloading.
    Handling,
}

impl TruckPhase {
    const COUNT: usize = 4;
}

/// Truck time per phase, indexed by [`TruckPhase`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct PhaseTimes([u64; TruckPhase::COUNT]);

impl PhaseTimes {
    pub fn get(&self, phase: TruckPhase) -> u64 {
        self.0[phase as usize]
    }

    fn add(&mut self, phase: TruckPhase, t: u64) {
        self.0[phase as usize] += t;
    }

    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
enum TruckJob {
    Idle,
    ToPickup { from: u32, to: u32 },
    Loading { from: u32, to: u32 },
    Hauling { to: u32 },
    Unloading,
}

/// A truck's drive along a road path.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct Drive {
    path: Vec<u32>,
    start: Micros,
    end: Micros,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct Truck {
    /// Taken out of service by a smaller truck count. The slot stays in the table so
    /// that the other trucks' indices stay put, and the next truck put into service
    /// takes it over.
    retired: bool,
    /// Road node it stands on, or drove from.
    node: u32,
    drive: Option<Drive>,
    job: TruckJob,
    cargo: Vec<Cargo>,
    /// Bumped with every scheduled event; older events are stale.
    generation: u32,
    /// Time per phase since the statistics were reset, up to `since`.
    times: PhaseTimes,
    phase: TruckPhase,
    since: Micros,
    km: f64,
    loaded_trips: u64,
    units_moved: u64,
}

impl Truck {
    /// An idle, empty truck at road node `node`.
    fn new(node: u32, now: Micros) -> Truck {
        Truck {
            retired: false,
            node,
            drive: None,
            job: TruckJob::Idle,
            cargo: Vec::new(),
            generation: 0,
            times: PhaseTimes::default(),
            phase: TruckPhase::Idle,
            since: now,
            km: 0.0,
            loaded_trips: 0,
            units_moved: 0,
        }
    }

    fn set_phase(&mut self, phase: TruckPhase, now: Micros) {
        self.times.add(self.phase, now - self.since);
        self.since = now;
        self.phase = phase;
    }

    fn free(&self) -> bool {
        self.job == TruckJob::Idle && !self.retired
    }
}

/// Cargo on docks, by lane.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
struct Lanes {
    /// Cargo waiting at a road node for a destination, by `(from, to)`.
    queues: BTreeMap<(u32, u32), VecDeque<Cargo>>,
    /// Trucks on their way to pick up, by lane.
    assigned: BTreeMap<(u32, u32), u32>,
    /// Lanes waiting for a free truck, oldest first.
    requests: VecDeque<(u32, u32)>,
}

/// What retired trucks did since the statistics were reset.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
struct RetiredTotals {
    loaded_trips: u64,
    units_moved: u64,
    km: f64,
}

/// The trucks of a run and their docks.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct Trucks {
    /// The trucks in service, and free slots (`retired`) that new ones take first: the
    /// table never outgrows the largest count in service at once.
    trucks: Vec<Truck>,
    /// Figures of trucks retired since the statistics were reset (their slots are
    /// reused, so the figures live here).
    retired_totals: RetiredTotals,
    lanes: Lanes,
    /// Finished units shipped to the hub since the statistics were reset.
    shipped: u64,
    /// Energy the trucks drew since the statistics were reset.
    kwh: f64,
}

/// What a finished loading or unloading did.
pub(crate) enum TruckDone {
    /// The event was superseded; nothing happened.
    Stale,
    /// The truck loaded and left (or found nothing and went idle).
    Loaded,
    /// The truck unloaded; what it carried for others, in load order. Call
    /// [`Trucks::serve_requests`] once they are delivered.
    Unloaded(Vec<Delivery>),
}

/// A truck count that cannot be reached now: too few trucks stand idle.
#[derive(Clone, Copy, Debug)]
pub(crate) struct NotIdle {
    pub idle: usize,
    pub remove: u32,
}

/// A truck's display state.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TruckView {
    pub x: f64,
    pub y: f64,
    /// Radians, counter-clockwise from east; 0 while standing.
    pub heading: f64,
    pub loaded: bool,
    pub moving: bool,
    /// Units on board.
    pub load: u32,
}

/// The trucks' figures over the statistics window, for the report.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TruckFigures {
    /// Trucks in service.
    pub count: usize,
    /// Time per phase of the trucks in service.
    pub times: PhaseTimes,
    pub loaded_trips: u64,
    pub units_moved: u64,
    pub km: f64,
}

impl Trucks {
    /// The scene's trucks, idle at the hub; none without roads or trucks.
    pub fn new(model: &Model, now: Micros) -> Trucks {
        let trucks = match (&model.trucks, &model.roads) {
            (Some(t), Some((_, hub))) => (0..t.count).map(|_| Truck::new(*hub, now)).collect(),
            _ => Vec::new(),
        };
        Trucks {
            trucks,
            retired_totals: RetiredTotals::default(),
            lanes: Lanes::default(),
            shipped: 0,
            kwh: 0.0,
        }
    }

    /// Calls one more truck for a lane when what waits there makes another full batch
    /// beyond the trucks already on their way, or when a material order waits and no
    /// truck is on its way (batch dispatch only).
    fn check_lane(&mut self, model: &Model, agenda: &mut Agenda, from: u32, to: u32) {
        let Some(spec) = &model.trucks else { return };
        if spec.every.is_some() {
            return;
        }
        let lanes = &self.lanes;
        let queue = lanes.queues.get(&(from, to));
        let units: u32 = queue.map_or(0, |q| q.iter().map(Cargo::units).sum());
        let material = queue.is_some_and(|q| q.iter().any(|c| matches!(c, Cargo::Material { .. })));
        let assigned = lanes.assigned.get(&(from, to)).copied().unwrap_or(0);
        let batch = spec.min_load.min(spec.capacity);
        // A factory's material order is a truck call of its own, never held back for a
        // batch that may never fill.
        if units >= batch + assigned * spec.capacity || (material && assigned == 0) {
            self.request_truck(model, agenda, from, to);
        }
    }

    /// Sends the nearest free truck to the lane, or queues the lane for one.
    fn request_truck(&mut self, model: &Model, agenda: &mut Agenda, from: u32, to: u32) {
        let Some((roads, _)) = &model.roads else { return };
        let best = (0..self.trucks.len())
            .filter(|&t| self.trucks[t].free())
            .min_by_key(|&t| (roads.distance_mm(self.trucks[t].node, from), t));
        match best {
            Some(t) => {
                *self.lanes.assigned.entry((from, to)).or_default() += 1;
                let truck = &mut self.trucks[t];
                truck.job = TruckJob::ToPickup { from, to };
                truck.set_phase(TruckPhase::DrivingEmpty, agenda.now());
                self.drive(model, agenda, t as u32, from);
            }
            None => {
                if !self.lanes.requests.contains(&(from, to)) {
                    self.lanes.requests.push_back((from, to));
                }
            }
        }
    }

    /// Drives a truck along the shortest road path to `dest`.
    fn drive(&mut self, model: &Model, agenda: &mut Agenda, t: u32, dest: u32) {
        let (Some((roads, _)), Some(spec)) = (&model.roads, &model.trucks) else { return };
        let now = agenda.now();
        let truck = &mut self.trucks[t as usize];
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
        self.kwh += metres / 1000.0 * spec.kwh_per_km;
        truck.generation += 1;
        let generation = truck.generation;
        truck.drive = Some(Drive { path, start: now, end: now + travel });
        agenda.schedule(now + travel, Event::TruckArrive { truck: t, generation });
    }

    /// A truck reached the end of its drive: it starts loading or unloading.
    pub fn on_arrive(&mut self, model: &Model, agenda: &mut Agenda, t: u32, generation: u32) -> bool {
        let Some(spec) = &model.trucks else { return false };
        let truck = &mut self.trucks[t as usize];
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
            truck.set_phase(TruckPhase::Handling, agenda.now());
            agenda.schedule(agenda.now() + spec.load_time, Event::TruckDone { truck: t, generation });
        }
        true
    }

    /// A truck finished loading (it leaves with what the lane holds, up to its capacity)
    /// or unloading (its cargo is handed back for delivery).
    pub fn on_done(&mut self, model: &Model, agenda: &mut Agenda, t: u32, generation: u32) -> TruckDone {
        let Some(spec) = &model.trucks else { return TruckDone::Stale };
        let now = agenda.now();
        if self.trucks[t as usize].generation != generation {
            return TruckDone::Stale;
        }
        match self.trucks[t as usize].job {
            TruckJob::Loading { from, to } => {
                let lanes = &mut self.lanes;
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
                let truck = &mut self.trucks[t as usize];
                if cargo.is_empty() {
                    truck.job = TruckJob::Idle;
                    truck.set_phase(TruckPhase::Idle, now);
                    self.serve_requests(model, agenda);
                } else {
                    truck.units_moved += u64::from(spec.capacity - room);
                    truck.loaded_trips += 1;
                    truck.cargo = cargo;
                    truck.job = TruckJob::Hauling { to };
                    truck.set_phase(TruckPhase::DrivingLoaded, now);
                    self.drive(model, agenda, t, to);
                    self.check_lane(model, agenda, from, to);
                }
                TruckDone::Loaded
            }
            TruckJob::Unloading => {
                let truck = &mut self.trucks[t as usize];
                let cargo = std::mem::take(&mut truck.cargo);
                truck.job = TruckJob::Idle;
                truck.set_phase(TruckPhase::Idle, now);
                let mut deliveries = Vec::with_capacity(cargo.len());
                for c in cargo {
                    match c {
                        Cargo::Part { part, station } => deliveries.push(Delivery::Part { part, station }),
                        Cargo::Material { material, factory, qty } => {
                            deliveries.push(Delivery::Material { material, factory, qty })
                        }
                        Cargo::Shipment { units } => self.shipped += u64::from(units),
                    }
                }
                TruckDone::Unloaded(deliveries)
            }
            _ => TruckDone::Stale,
        }
    }

    /// Gives free trucks to the oldest lanes still waiting for one.
    pub fn serve_requests(&mut self, model: &Model, agenda: &mut Agenda) {
        while self.trucks.iter().any(Truck::free) {
            let Some((from, to)) = self.lanes.requests.pop_front() else { break };
            let waiting = self.lanes.queues.get(&(from, to)).is_some_and(|q| !q.is_empty());
            if waiting {
                self.request_truck(model, agenda, from, to);
            }
        }
    }

    /// A timetable departure: every lane with cargo and no truck on its way gets one.
    pub fn on_timetable(&mut self, model: &Model, agenda: &mut Agenda) {
        let Some(every) = model.trucks.as_ref().and_then(|t| t.every) else { return };
        let lanes: Vec<(u32, u32)> = self
            .lanes
            .queues
            .iter()
            .filter(|(lane, q)| !q.is_empty() && self.lanes.assigned.get(lane).is_none_or(|&n| n == 0))
            .map(|(lane, _)| *lane)
            .collect();
        for (from, to) in lanes {
            self.request_truck(model, agenda, from, to);
        }
        agenda.schedule(agenda.now() + every, Event::TruckTimetable);
    }

    /// Sets the number of trucks in service. New trucks start at the hub; only idle
    /// trucks are taken out of service, the most recently added first. Changes nothing
    /// when too few stand idle.
    pub fn set_count(
        &mut self,
        model: &Model,
        agenda: &mut Agenda,
        hub: u32,
        count: u32,
    ) -> Result<(), NotIdle> {
        let active: Vec<usize> = (0..self.trucks.len()).filter(|&t| !self.trucks[t].retired).collect();
        let current = active.len() as u32;
        if count > current {
            for _ in current..count {
                let mut fresh = Truck::new(hub, agenda.now());
                match self.trucks.iter().position(|t| t.retired) {
                    Some(slot) => {
                        // Events of the slot's former truck may still be queued: a newer
                        // generation makes them stale.
                        fresh.generation = self.trucks[slot].generation.wrapping_add(1);
                        self.trucks[slot] = fresh;
                    }
                    None => self.trucks.push(fresh),
                }
            }
            self.serve_requests(model, agenda);
        } else if count < current {
            let remove = current - count;
            let idle: Vec<usize> = active
                .iter()
                .rev()
                .copied()
                .filter(|&t| self.trucks[t].job == TruckJob::Idle)
                .take(remove as usize)
                .collect();
            if (idle.len() as u32) < remove {
                return Err(NotIdle { idle: idle.len(), remove });
            }
            for t in idle {
                let truck = &mut self.trucks[t];
                truck.retired = true;
                self.retired_totals.loaded_trips += std::mem::take(&mut truck.loaded_trips);
                self.retired_totals.units_moved += std::mem::take(&mut truck.units_moved);
                self.retired_totals.km += std::mem::take(&mut truck.km);
            }
        }
        Ok(())
    }

    /// Restarts the statistics at `now` (end of warm-up); the trucks carry on.
    pub fn reset_statistics(&mut self, now: Micros) {
        for t in &mut self.trucks {
            t.times = PhaseTimes::default();
            t.since = now;
            t.km = 0.0;
            t.loaded_trips = 0;
            t.units_moved = 0;
        }
        self.shipped = 0;
        self.kwh = 0.0;
        self.retired_totals = RetiredTotals::default();
    }

    /// Whether the run has trucks at all.
    pub fn is_empty(&self) -> bool {
        self.trucks.is_empty()
    }

    /// Display state of every truck in service, positions interpolated along its path.
    pub fn views<'a>(&'a self, model: &'a Model, now: Micros) -> impl Iterator<Item = TruckView> + 'a {
        self.trucks.iter().filter(|t| !t.retired).map(move |truck| {
            let Some((roads, _)) = &model.roads else {
                return TruckView { x: 0.0, y: 0.0, heading: 0.0, loaded: false, moving: false, load: 0 };
            };
            let load: u32 = truck.cargo.iter().map(Cargo::units).sum();
            let (pos, heading, moving) = match &truck.drive {
                Some(d) if d.path.len() > 1 => {
                    let span = (d.end - d.start).max(1) as f64;
                    let f = ((now.saturating_sub(d.start)) as f64 / span).clamp(0.0, 1.0);
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

    /// The trucks' figures up to `now`.
    pub fn figures(&self, now: Micros) -> TruckFigures {
        let mut times = PhaseTimes::default();
        for t in self.trucks.iter().filter(|t| !t.retired) {
            for (sum, x) in times.0.iter_mut().zip(t.times.0) {
                *sum += x;
            }
            times.add(t.phase, now - t.since);
        }
        TruckFigures {
            count: self.trucks.iter().filter(|t| !t.retired).count(),
            times,
            loaded_trips: self.retired_totals.loaded_trips
                + self.trucks.iter().map(|t| t.loaded_trips).sum::<u64>(),
            units_moved: self.retired_totals.units_moved
                + self.trucks.iter().map(|t| t.units_moved).sum::<u64>(),
            km: self.retired_totals.km + self.trucks.iter().map(|t| t.km).sum::<f64>(),
        }
    }

    /// Finished units shipped to the hub since the statistics were reset.
    pub fn shipped(&self) -> u64 {
        self.shipped
    }

    /// Energy the trucks drew since the statistics were reset, kWh.
    pub fn kwh(&self) -> f64 {
        self.kwh
    }

    /// Units waiting on docks for a truck now.
    pub fn waiting_at_docks(&self) -> u64 {
        self.lanes.queues.values().flatten().map(|c| u64::from(c.units())).sum()
    }

    /// Parts on docks or on trucks now (for the part census).
    pub fn parts(&self) -> u64 {
        let is_part = |c: &&Cargo| matches!(c, Cargo::Part { .. });
        self.lanes.queues.values().flatten().filter(is_part).count() as u64
            + self.trucks.iter().flat_map(|t| &t.cargo).filter(is_part).count() as u64
    }
}

impl Haul for Trucks {
    /// Puts cargo on the dock and calls a truck when the batch is complete (with a
    /// timetable, the next departure takes it).
    fn haul(&mut self, model: &Model, agenda: &mut Agenda, from: u32, to: u32, cargo: Cargo) {
        self.lanes.queues.entry((from, to)).or_default().push_back(cargo);
        self.check_lane(model, agenda, from, to);
    }
}
