//! The discrete-event engine: next-event time advance over an event list ordered by
//! `(time, sequence)`.
//!
//! Ordering guarantees: events run in ascending time; events at the same time run in the
//! order they were scheduled. Work that an event causes on other stations (a freed buffer
//! slot waking a blocked upstream station, and so on) runs before the next event, in the
//! order it arose. Nothing here reads a clock or a file: the run is a pure function of
//! (model, seed, commands).

pub(crate) mod agenda;
pub mod agv;
mod commands;
pub(crate) mod handoff;
pub(crate) mod materials;
pub(crate) mod staff;
pub mod trucks;
pub mod views;

use std::collections::VecDeque;
use std::sync::Arc;

use rand::RngExt;
use rand_distr::{Distribution, Exp1};

use self::agenda::{Agenda, Event, Followup};
use self::agv::{Agvs, VehicleDone};
use self::handoff::{Cargo, Delivery, Haul, MaterialWaiter, PartId, TransportOrder};
use self::materials::Materials;
use self::staff::Staff;
use self::trucks::{TruckDone, Trucks};
use crate::model::{Model, ProductIdx, Release, StationIdx};
use crate::rng::{Stream, stream};
use crate::stats::{LeadTimes, StateTimes, Totals};
use crate::time::MAX_SPAN;
use crate::time::Micros;

/// What a station (or one of its servers) is doing, for state shares and colours.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StationState {
    /// Processing a part.
    Busy,
    /// Changing over to another product.
    Setup,
    /// Idle with nothing to work on.
    Starved,
    /// Holding a finished part that the next station has no room for.
    Blocked,
    /// Broken down or under repair.
    Down,
    /// Outside its shift calendar.
    OffShift,
}

impl StationState {
    /// All states, in the order reports list them.
    pub const ALL: [StationState; 6] = [
        StationState::Busy,
        StationState::Setup,
        StationState::Starved,
        StationState::Blocked,
        StationState::Down,
        StationState::OffShift,
    ];
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Part {
    pub product: ProductIdx,
    /// Index of the routing step the part is waiting for or in.
    pub step: u16,
    pub created: Micros,
    /// Due time; `Micros::MAX` when the source sets none.
    pub due: Micros,
    /// When the part joined its current queue.
    pub since: Micros,
    /// Whether the part's bought-in materials were taken from stock yet.
    pub materials_taken: bool,
}

/// Something that holds a part it cannot pass on until room frees up downstream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Holder {
    Server {
        station: StationIdx,
        server: u32,
    },
    Conveyor(u32),
    Source(u32),
    /// Parts a truck delivered for this station, waiting for room in its buffer.
    Inbound(StationIdx),
}

/// A place a part can be passed to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    Station(StationIdx),
    Conveyor(u32),
    /// By AGV of `fleet` from node `from` to node `to`, into `target`'s buffer.
    Agv {
        fleet: u32,
        from: u32,
        to: u32,
        target: StationIdx,
    },
    /// By truck from road node `from` to road node `to`, then into `target`'s buffer.
    Truck {
        from: u32,
        to: u32,
        target: StationIdx,
    },
}

#[derive(Clone, Copy, Debug)]
pub(crate) enum ServerState {
    Idle,
    /// Setting up or processing. `t` is the finish time while the station runs and the
    /// remaining time while it is stopped (down or off shift): preempt-resume.
    Work {
        part: PartId,
        setup: bool,
        t: Micros,
    },
    /// Holding a finished part (blocking after service).
    Blocked {
        part: PartId,
    },
}

#[derive(Clone, Debug)]
pub(crate) struct ServerRt {
    pub state: ServerState,
    /// Bumped whenever a scheduled `Done` must be ignored (preemption).
    pub generation: u32,
    pub last_product: Option<ProductIdx>,
    /// Identifies the current blocking episode; stale waiter entries carry older stamps.
    pub stamp: u64,
}

#[derive(Clone, Debug)]
pub(crate) struct StationRt {
    pub queue: VecDeque<PartId>,
    pub servers: Vec<ServerRt>,
    /// Input buffer capacity now (commands may change it); None is unlimited.
    pub buffer: Option<u32>,
    pub n_work: u32,
    pub n_setup: u32,
    pub n_blocked: u32,
    /// Buffer slots held for parts on their way by AGV.
    pub reserved: u32,
    pub down: bool,
    pub off_shift: bool,
    /// Parts passed on to each next station since the statistics were reset.
    pub sent: Vec<(StationIdx, u64)>,
    /// Upstream holders waiting for room here, with the stamp of their episode.
    pub waiters: VecDeque<(Holder, u64)>,
    pub times: StateTimes,
    /// Integral of queue length over time (parts x microseconds).
    pub queue_area: u128,
    pub last: Micros,
    /// Start of the current active period (busy, setup or down), for bottlenecks.
    pub active_since: Option<Micros>,
    /// Closed active periods since the statistics were last reset.
    pub periods: Vec<(Micros, Micros)>,
    pub completed: u64,
    pub scrapped: u64,
    /// Parts that left the queue into service, and their summed waits.
    pub started: u64,
    pub wait_sum: u128,
    pub failure_generation: u32,
    pub rng: Stream,
    pub setup_rng: Option<Stream>,
    pub failure_rng: Option<Stream>,
    pub scrap_rng: Option<Stream>,
}

impl StationRt {
    fn stopped(&self) -> bool {
        self.down || self.off_shift
    }

    pub(crate) fn has_room(&self) -> bool {
        self.buffer.is_none_or(|cap| (self.queue.len() as u64 + u64::from(self.reserved)) < u64::from(cap))
    }

    /// Adds the time since the last change to the state and queue integrals.
    #[inline]
    fn account(&mut self, now: Micros) {
        let dt = now - self.last;
        if dt == 0 {
            return;
        }
        self.last = now;
        let counts = self.counts();
        integrate(counts, dt, &mut self.times, &mut self.queue_area);
    }

    /// State and queue integrals up to `now`, without changing anything.
    pub(crate) fn integrals_at(&self, now: Micros) -> (StateTimes, u128) {
        let (mut times, mut area) = (self.times, self.queue_area);
        integrate(self.counts(), now.saturating_sub(self.last), &mut times, &mut area);
        (times, area)
    }

    #[inline]
    fn counts(&self) -> Counts {
        Counts {
            servers: self.servers.len() as u64,
            off_shift: self.off_shift,
            down: self.down,
            work: u64::from(self.n_work),
            setup: u64::from(self.n_setup),
            blocked: u64::from(self.n_blocked),
            queue: self.queue.len() as u128,
        }
    }

    /// Active in the sense of the active-period method: working, setting up or being
    /// repaired; not starved, blocked or off shift. A station with parallel servers is
    /// active only while none of them waits for parts: with a server starved it is not
    /// what holds the flow back.
    fn is_active(&self) -> bool {
        let starved = self.servers.len() as u32 - self.n_work - self.n_setup - self.n_blocked;
        !self.off_shift && (self.down || (self.n_work + self.n_setup > 0 && starved == 0))
    }

    fn update_active(&mut self, now: Micros) {
        match (self.is_active(), self.active_since) {
            (true, None) => self.active_since = Some(now),
            (false, Some(start)) => {
                self.active_since = None;
                if now > start {
                    self.periods.push((start, now));
                }
            }
            _ => {}
        }
    }

    /// The state that best describes the whole station now, for display.
    pub fn state(&self) -> StationState {
        if self.off_shift {
            StationState::OffShift
        } else if self.down {
            StationState::Down
        } else if self.n_work > 0 {
            StationState::Busy
        } else if self.n_setup > 0 {
            StationState::Setup
        } else if self.n_blocked > 0 {
            StationState::Blocked
        } else {
            StationState::Starved
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct ConveyorRt {
    /// Parts on the conveyor with the time each reaches the end, front first.
    pub items: VecDeque<(PartId, Micros)>,
    /// The front part reached the end and waits for room at the next station.
    pub head_blocked: bool,
    pub stamp: u64,
    pub waiters: VecDeque<(Holder, u64)>,
}

#[derive(Clone, Debug)]
pub(crate) struct SourceRt {
    /// Released parts that found no room at their first station yet.
    pub backlog: VecDeque<PartId>,
    pub stamp: u64,
    pub rng: Stream,
    /// Mean gap between Poisson arrivals now (commands may change the rate).
    pub mean_gap: f64,
}

/// What a station's integrals grow by per microsecond.
#[derive(Clone, Copy)]
struct Counts {
    servers: u64,
    off_shift: bool,
    down: bool,
    work: u64,
    setup: u64,
    blocked: u64,
    queue: u128,
}

#[inline]
fn integrate(c: Counts, dt: Micros, times: &mut StateTimes, area: &mut u128) {
    if c.off_shift {
        times.add(StationState::OffShift, dt * c.servers);
    } else if c.down {
        times.add(StationState::Down, dt * c.servers);
    } else {
        times.add(StationState::Busy, dt * c.work);
        times.add(StationState::Setup, dt * c.setup);
        times.add(StationState::Blocked, dt * c.blocked);
        times.add(StationState::Starved, dt * (c.servers - c.work - c.setup - c.blocked));
    }
    *area += u128::from(dt) * c.queue;
}

/// The flow's part of the census: buffers, machines, conveyors, sources and parts
/// delivered by truck waiting for room.
fn flow_census(sim: &Sim) -> views::PartCensus {
    let mut c = views::PartCensus::default();
    for st in &sim.stations {
        c.buffers += st.queue.len() as u64;
        c.machines += st.servers.iter().filter(|s| !matches!(s.state, ServerState::Idle)).count() as u64;
    }
    c.conveyors = sim.conveyors.iter().map(|cv| cv.items.len() as u64).sum();
    c.sources = sim.sources.iter().map(|s| s.backlog.len() as u64).sum();
    c.docks = sim.inbound.iter().map(|q| q.len() as u64).sum::<u64>();
    c
}

/// A place whose room a holder waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PlaceKey {
    Station(StationIdx),
    Conveyor(u32),
}

/// Why a command was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("unknown station `{0}`")]
    UnknownStation(String),
    #[error("unknown product `{0}`")]
    UnknownProduct(String),
    #[error("unknown source `{0}`")]
    UnknownSource(String),
    #[error("station `{0}` is already down")]
    AlreadyDown(String),
    #[error("station `{0}` is not down")]
    NotDown(String),
    #[error("unknown fleet `{0}`")]
    UnknownFleet(String),
    /// The command is valid but the current state forbids it (for example taking out of
    /// service vehicles that are at work).
    #[error("{0}")]
    Busy(String),
    #[error("{0}")]
    Invalid(String),
}

/// A running simulation: the model plus all of its dynamic state.
///
/// Cloning a `Sim` forks it: the copy continues independently with the same random
/// streams, which is how forecasts from the live state work.
#[derive(Clone, Debug)]
pub struct Sim {
    pub(crate) model: Arc<Model>,
    pub(crate) seed: u64,
    pub(crate) agenda: Agenda,
    pub(crate) parts: Vec<Part>,
    free_parts: Vec<PartId>,
    pub(crate) stations: Vec<StationRt>,
    pub(crate) conveyors: Vec<ConveyorRt>,
    pub(crate) sources: Vec<SourceRt>,
    calendar_stations: Vec<Vec<StationIdx>>,
    next_stamp: u64,
    pub(crate) agvs: Agvs,
    pub(crate) staff: Staff,
    pub(crate) materials: Materials,
    pub(crate) trucks: Trucks,
    /// Parts delivered by truck per station, waiting for room in its buffer.
    pub(crate) inbound: Vec<VecDeque<PartId>>,
    pub(crate) inbound_stamp: Vec<u64>,
    pub(crate) totals: Totals,
}

impl Sim {
    /// Starts a run of `model` with random streams seeded by `seed`, at time zero.
    pub fn new(model: Arc<Model>, seed: u64) -> Sim {
        let stations = model
            .stations
            .iter()
            .map(|s| StationRt {
                queue: VecDeque::new(),
                servers: (0..s.servers)
                    .map(|_| ServerRt {
                        state: ServerState::Idle,
                        generation: 0,
                        last_product: None,
                        stamp: 0,
                    })
                    .collect(),
                buffer: s.buffer,
                n_work: 0,
                n_setup: 0,
                n_blocked: 0,
                reserved: 0,
                down: false,
                off_shift: false,
                sent: Vec::new(),
                waiters: VecDeque::new(),
                times: StateTimes::default(),
                queue_area: 0,
                last: 0,
                active_since: None,
                periods: Vec::new(),
                completed: 0,
                scrapped: 0,
                started: 0,
                wait_sum: 0,
                failure_generation: 0,
                rng: stream(seed, &format!("station/{}/process", s.id)),
                setup_rng: s.setup.as_ref().map(|_| stream(seed, &format!("station/{}/setup", s.id))),
                failure_rng: s.failures.as_ref().map(|_| stream(seed, &format!("station/{}/failure", s.id))),
                scrap_rng: (s.scrap > 0.0).then(|| stream(seed, &format!("station/{}/scrap", s.id))),
            })
            .collect();
        let conveyors = model
            .conveyors
            .iter()
            .map(|_| ConveyorRt {
                items: VecDeque::new(),
                head_blocked: false,
                stamp: 0,
                waiters: VecDeque::new(),
            })
            .collect();
        let sources = model
            .sources
            .iter()
            .map(|s| SourceRt {
                backlog: VecDeque::new(),
                stamp: 0,
                rng: stream(seed, &format!("source/{}", s.id)),
                mean_gap: match s.release {
                    Release::Poisson { mean_gap } => mean_gap,
                    _ => 0.0,
                },
            })
            .collect();
        let mut calendar_stations = vec![Vec::new(); model.calendars.len()];
        for (i, s) in model.stations.iter().enumerate() {
            if let Some(c) = s.calendar {
                calendar_stations[c as usize].push(i as StationIdx);
            }
        }
        let agvs = Agvs::new(&model, 0);
        let staff = Staff::new(&model, 0);
        let materials = Materials::new(&model, 0);
        let trucks = Trucks::new(&model, 0);
        let n_stations = model.stations.len();
        let mut sim = Sim {
            totals: Totals::new(model.products.len(), model.sinks.len()),
            model,
            seed,
            agenda: Agenda::default(),
            parts: Vec::new(),
            free_parts: Vec::new(),
            stations,
            conveyors,
            sources,
            calendar_stations,
            next_stamp: 0,
            agvs,
            staff,
            materials,
            trucks,
            inbound: vec![VecDeque::new(); n_stations],
            inbound_stamp: vec![0; n_stations],
        };
        sim.schedule_start();
        sim
    }

    fn schedule_start(&mut self) {
        let model = Arc::clone(&self.model);
        if model.warmup > 0 {
            self.agenda.schedule(model.warmup, Event::WarmupEnd);
        }
        for c in 0..model.calendars.len() {
            self.apply_calendar(c as u32);
        }
        if let Some(every) = model.trucks.as_ref().and_then(|t| t.every) {
            self.agenda.schedule(every, Event::TruckTimetable);
        }
        for f in 0..model.fleets.len() {
            self.agvs.dispatch_fleet(&model, &mut self.agenda, f as u32);
        }
        for (i, src) in model.sources.iter().enumerate() {
            let source = i as u32;
            match &src.release {
                Release::Poisson { .. } => {
                    let gap = self.poisson_gap(source);
                    self.agenda.schedule(gap, Event::Arrival { source });
                }
                Release::Interval(gap) => self.agenda.schedule(*gap, Event::Arrival { source }),
                Release::Schedule(rows) => {
                    if let Some(first) = rows.first() {
                        self.agenda.schedule(first.0, Event::Release { source, row: 0 });
                    }
                }
                Release::Saturated => {}
            }
        }
        for (i, s) in model.stations.iter().enumerate() {
            if s.failures.is_some() {
                self.schedule_failure(i as StationIdx);
            }
        }
        for s in 0..self.stations.len() {
            self.try_start(s as StationIdx);
        }
        self.run_followups();
    }

    /// The model this run simulates.
    pub fn model(&self) -> &Arc<Model> {
        &self.model
    }

    /// The seed the run's random streams were derived from.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Current simulation time.
    pub fn now(&self) -> Micros {
        self.agenda.now()
    }

    /// Events processed so far.
    pub fn events(&self) -> u64 {
        self.agenda.handled()
    }

    /// Time of the next pending event, if any.
    pub fn next_event_time(&self) -> Option<Micros> {
        self.agenda.next_time()
    }

    /// Runs every event due at or before `until`, then sets the clock to `until`.
    pub fn run_until(&mut self, until: Micros) {
        while self.agenda.next_time().is_some_and(|t| t <= until) {
            self.step();
        }
        self.agenda.advance_to(until);
    }

    /// Processes the next event. Returns false when no event is pending.
    pub fn step(&mut self) -> bool {
        let Some(event) = self.agenda.pop() else {
            return false;
        };
        if self.handle(event) {
            self.agenda.count_handled();
        }
        if self.agenda.has_followups() {
            self.run_followups();
        }
        true
    }

    pub(crate) fn stamp(&mut self) -> u64 {
        self.next_stamp += 1;
        self.next_stamp
    }

    /// Handles one event; returns false for a stale event that was ignored.
    fn handle(&mut self, event: Event) -> bool {
        match event {
            Event::Arrival { source } => self.on_arrival(source),
            Event::Release { source, row } => self.on_release(source, row),
            Event::Done { station, server, generation } => return self.on_done(station, server, generation),
            Event::ConveyorEnd { conveyor } => {
                if !self.conveyors[conveyor as usize].head_blocked {
                    self.move_conveyor(conveyor);
                }
            }
            Event::Fail { station, generation } => {
                if self.stations[station as usize].failure_generation != generation {
                    return false;
                }
                self.fail(station, None);
            }
            Event::Repair { station, generation } => {
                if self.stations[station as usize].failure_generation != generation {
                    return false;
                }
                self.repair_now(station);
            }
            Event::Shift { calendar } => self.apply_calendar(calendar),
            Event::WarmupEnd => self.reset_statistics(),
            Event::VehicleArrive { vehicle, generation } => {
                return self.agvs.on_vehicle_arrive(&self.model, &mut self.agenda, vehicle, generation);
            }
            Event::VehicleDone { vehicle, generation } => return self.on_vehicle_done(vehicle, generation),
            Event::VehicleRetry { vehicle, generation } => {
                return self.agvs.on_vehicle_retry(&self.model, &mut self.agenda, vehicle, generation);
            }
            Event::TruckArrive { truck, generation } => {
                return self.trucks.on_arrive(&self.model, &mut self.agenda, truck, generation);
            }
            Event::TruckDone { truck, generation } => return self.on_truck_done(truck, generation),
            Event::TruckTimetable => self.trucks.on_timetable(&self.model, &mut self.agenda),
            Event::SupplyArrive { material, qty } => {
                self.materials.on_supply(&self.model, &mut self.agenda, material, qty, &mut self.trucks)
            }
        }
        true
    }

    fn poisson_gap(&mut self, source: u32) -> Micros {
        let src = &mut self.sources[source as usize];
        let e: f64 = Exp1.sample(&mut src.rng);
        ((e * src.mean_gap + 0.5) as Micros).clamp(1, MAX_SPAN)
    }

    fn on_arrival(&mut self, source: u32) {
        let product = self.pick_product(source);
        let part = self.create_part(source, product);
        self.admit(source, part);
        let gap = match self.model.sources[source as usize].release {
            Release::Interval(gap) => gap,
            _ => self.poisson_gap(source),
        };
        self.agenda.schedule(self.agenda.now() + gap, Event::Arrival { source });
    }

    fn on_release(&mut self, source: u32, row: u32) {
        let model = Arc::clone(&self.model);
        let Release::Schedule(rows) = &model.sources[source as usize].release else {
            return;
        };
        let (_, product, quantity) = rows[row as usize];
        for _ in 0..quantity {
            let part = self.create_part(source, product);
            self.admit(source, part);
        }
        if let Some(next) = rows.get(row as usize + 1) {
            self.agenda.schedule(next.0.max(self.agenda.now()), Event::Release { source, row: row + 1 });
        }
    }

    fn pick_product(&mut self, source: u32) -> ProductIdx {
        let mix = &self.model.sources[source as usize].mix;
        if mix.len() == 1 {
            return mix[0].1;
        }
        let u: f64 = self.sources[source as usize].rng.random();
        let idx = mix.partition_point(|m| m.0 <= u).min(mix.len() - 1);
        mix[idx].1
    }

    fn create_part(&mut self, source: u32, product: ProductIdx) -> PartId {
        let due = self
            .model
            .sources
            .get(source as usize)
            .and_then(|s| s.due)
            .map_or(Micros::MAX, |d| self.agenda.now() + d);
        self.totals.part_created(self.agenda.now(), product as usize);
        let part = Part {
            product,
            step: 0,
            created: self.agenda.now(),
            due,
            since: self.agenda.now(),
            materials_taken: false,
        };
        match self.free_parts.pop() {
            Some(id) => {
                self.parts[id as usize] = part;
                id
            }
            None => {
                self.parts.push(part);
                (self.parts.len() - 1) as PartId
            }
        }
    }

    /// Hands a newly released part to its first station, or parks it in the source's
    /// backlog (keeping release order) when there is no room.
    fn admit(&mut self, source: u32, part: PartId) {
        if self.sources[source as usize].backlog.is_empty() && self.release(source, part) {
            return;
        }
        self.sources[source as usize].backlog.push_back(part);
    }

    /// Takes the part's materials from stock and hands it to its first station; false
    /// (and the source registered as a waiter) when either is not possible yet.
    fn release(&mut self, source: u32, part: PartId) -> bool {
        let p = self.parts[part as usize];
        if !p.materials_taken && !self.model.products[p.product as usize].materials.is_empty() {
            if !self.materials.available(&self.model, p.product) {
                self.materials.wait(&self.model, MaterialWaiter::Source(source), p.product);
                return false;
            }
            self.materials.consume(&self.model, &mut self.agenda, p.product, &mut self.trucks);
            self.parts[part as usize].materials_taken = true;
        }
        self.dispatch(part, Holder::Source(source))
    }

    /// Passes `part` on to its current routing step (or out of the complex when the
    /// routing is done). On failure the holder is registered with every alternative and
    /// keeps the part: blocking after service.
    fn dispatch(&mut self, part: PartId, holder: Holder) -> bool {
        let from = match holder {
            Holder::Server { station, .. } => Some(station),
            _ => None,
        };
        // Choose with shared borrows only: this runs for every move of every part, so it
        // must not clone the model's Arc (two atomic operations) or allocate.
        let choice = {
            let p = &self.parts[part as usize];
            let Some(step) = self.model.products[p.product as usize].steps.get(p.step as usize) else {
                self.finish(part, from);
                return true;
            };
            let mut best: Option<(Place, u64, u64)> = None;
            for &target in &step.at {
                let place = self.place_towards(from, target, step.carry);
                if !self.has_room(place) {
                    continue;
                }
                let st = &self.stations[target as usize];
                let load =
                    st.queue.len() as u64 + u64::from(st.n_work + st.n_setup + st.n_blocked + st.reserved);
                let servers = st.servers.len() as u64;
                if best.is_none_or(|(_, bl, bs)| load * bs < bl * servers) {
                    best = Some((place, load, servers));
                }
            }
            best.map(|b| b.0)
        };
        if let Some(place) = choice {
            if let Some(from) = from {
                let target = match place {
                    Place::Station(t) | Place::Agv { target: t, .. } | Place::Truck { target: t, .. } => t,
                    Place::Conveyor(c) => self.model.conveyors[c as usize].to,
                };
                let sent = &mut self.stations[from as usize].sent;
                match sent.iter_mut().find(|e| e.0 == target) {
                    Some(e) => e.1 += 1,
                    None => sent.push((target, 1)),
                }
            }
            self.enter(place, part);
            return true;
        }
        let stamp = self.stamp();
        match holder {
            Holder::Server { station, server } => {
                self.stations[station as usize].servers[server as usize].stamp = stamp
            }
            Holder::Conveyor(c) => self.conveyors[c as usize].stamp = stamp,
            Holder::Source(s) => self.sources[s as usize].stamp = stamp,
            Holder::Inbound(s) => self.inbound_stamp[s as usize] = stamp,
        }
        let p = self.parts[part as usize];
        let model = Arc::clone(&self.model);
        let step = &model.products[p.product as usize].steps[p.step as usize];
        for &target in &step.at {
            match self.place_towards(from, target, step.carry) {
                Place::Station(s) | Place::Agv { target: s, .. } | Place::Truck { target: s, .. } => {
                    self.stations[s as usize].waiters.push_back((holder, stamp))
                }
                Place::Conveyor(c) => self.conveyors[c as usize].waiters.push_back((holder, stamp)),
            }
        }
        false
    }

    /// Where a part leaving `from` for `target` goes first: the conveyor between them
    /// if there is one, else the target's buffer.
    ///
    /// Otherwise an AGV when the step or the factory names a fleet whose graph both
    /// stations stand on, a truck when they stand in factories with docks, else the
    /// target's buffer directly.
    #[inline]
    fn place_towards(&self, from: Option<StationIdx>, target: StationIdx, carry: Option<u32>) -> Place {
        let Some(from) = from else { return Place::Station(target) };
        let model = &self.model;
        for &(to, c) in &model.stations[from as usize].conveyors_out {
            if to == target {
                return Place::Conveyor(c);
            }
        }
        if (carry.is_some() || !model.fleets.is_empty())
            && let Some((fleet, a, b)) = model.agv_lane(from, target, carry)
        {
            return Place::Agv { fleet, from: a, to: b, target };
        }
        let (fa, fb) = (model.stations[from as usize].factory, model.stations[target as usize].factory);
        if fa != fb
            && model.has_trucks()
            && let (Some(fa), Some(fb)) = (fa, fb)
            && let (Some(da), Some(db)) =
                (model.factories[fa as usize].dock, model.factories[fb as usize].dock)
            && da != db
        {
            return Place::Truck { from: da, to: db, target };
        }
        Place::Station(target)
    }

    #[inline]
    fn has_room(&self, place: Place) -> bool {
        match place {
            Place::Station(s) | Place::Agv { target: s, .. } => self.stations[s as usize].has_room(),
            // The shipping area of a dock holds any number of parts.
            Place::Truck { .. } => true,
            Place::Conveyor(c) => {
                self.conveyors[c as usize].items.len() < self.model.conveyors[c as usize].capacity as usize
            }
        }
    }

    fn enter(&mut self, place: Place, part: PartId) {
        match place {
            Place::Station(s) => self.enter_station(s, part),
            Place::Agv { fleet, from, to, target } => {
                self.stations[target as usize].reserved += 1;
                let order = TransportOrder { part, from, to, station: target };
                self.agvs.order(&self.model, &mut self.agenda, fleet, order);
            }
            Place::Truck { from, to, target } => {
                self.trucks.haul(
                    &self.model,
                    &mut self.agenda,
                    from,
                    to,
                    Cargo::Part { part, station: target },
                );
            }
            Place::Conveyor(c) => {
                let arrive = self.agenda.now() + self.model.conveyors[c as usize].travel;
                self.conveyors[c as usize].items.push_back((part, arrive));
                self.agenda.schedule(arrive, Event::ConveyorEnd { conveyor: c });
            }
        }
    }

    /// Puts a part into a station's input buffer and lets the station start on it.
    pub(crate) fn enter_station(&mut self, s: StationIdx, part: PartId) {
        self.parts[part as usize].since = self.agenda.now();
        let st = &mut self.stations[s as usize];
        st.account(self.agenda.now());
        st.queue.push_back(part);
        self.try_start(s);
    }

    /// Moves parts that reached the conveyor's end into the next station while it has room.
    fn move_conveyor(&mut self, conveyor: u32) {
        let to = self.model.conveyors[conveyor as usize].to;
        let mut moved = false;
        loop {
            let conv = &self.conveyors[conveyor as usize];
            let Some(&(part, arrive)) = conv.items.front() else {
                break;
            };
            if arrive > self.agenda.now() {
                break;
            }
            if !self.stations[to as usize].has_room() {
                let stamp = self.stamp();
                let conv = &mut self.conveyors[conveyor as usize];
                conv.head_blocked = true;
                conv.stamp = stamp;
                self.stations[to as usize].waiters.push_back((Holder::Conveyor(conveyor), stamp));
                break;
            }
            self.conveyors[conveyor as usize].items.pop_front();
            self.conveyors[conveyor as usize].head_blocked = false;
            moved = true;
            self.enter(Place::Station(to), part);
        }
        if moved && !self.conveyors[conveyor as usize].waiters.is_empty() {
            self.agenda.follow_up(Followup::RoomOnConveyor(conveyor));
        }
    }

    /// Starts work on every idle server of `station` that can get a part.
    pub(crate) fn try_start(&mut self, station: StationIdx) {
        let s = station as usize;
        if self.stations[s].stopped() {
            return;
        }
        for k in 0..self.stations[s].servers.len() {
            if !matches!(self.stations[s].servers[k].state, ServerState::Idle) {
                continue;
            }
            // Work for this server: a waiting part, or raw material from a saturated source.
            let saturated = if self.stations[s].queue.is_empty() {
                let Some(&source) = self.model.stations[s].saturated_by.first() else { break };
                let product = self.model.sources[source as usize].mix[0].1;
                if !self.materials.available(&self.model, product) {
                    self.materials.wait(&self.model, MaterialWaiter::Station(station), product);
                    break;
                }
                Some((source, product))
            } else {
                None
            };
            if self.model.stations[s].crew > 0 && !self.staff.seize(&self.model, self.agenda.now(), station) {
                break;
            }
            let now = self.agenda.now();
            let st = &mut self.stations[s];
            st.account(now);
            let part = if let Some(part) = st.queue.pop_front() {
                st.started += 1;
                st.wait_sum += u128::from(now - self.parts[part as usize].since);
                if !st.waiters.is_empty() {
                    self.agenda.follow_up(Followup::RoomAtStation(station));
                }
                part
            } else if let Some((source, product)) = saturated {
                self.materials.consume(&self.model, &mut self.agenda, product, &mut self.trucks);
                let part = self.create_part(source, product);
                self.parts[part as usize].materials_taken = true;
                self.stations[s].started += 1;
                part
            } else {
                break;
            };
            self.begin(station, k as u32, part);
        }
    }

    fn begin(&mut self, station: StationIdx, server: u32, part: PartId) {
        let s = station as usize;
        let now = self.agenda.now();
        let product = self.parts[part as usize].product;
        let model = &self.model;
        let st = &mut self.stations[s];
        st.account(now);
        let needs_setup = model.stations[s].setup.is_some()
            && st.servers[server as usize].last_product.is_some_and(|last| last != product);
        let (setup, duration) = if needs_setup {
            let sampler = model.stations[s].setup.as_ref().expect("checked above");
            let rng = st.setup_rng.as_mut().expect("created with the setup");
            st.n_setup += 1;
            (true, sampler.sample(rng))
        } else {
            st.servers[server as usize].last_product = Some(product);
            let step = self.parts[part as usize].step as usize;
            st.n_work += 1;
            (false, model.products[product as usize].steps[step].time.sample(&mut st.rng))
        };
        let srv = &mut st.servers[server as usize];
        srv.state = ServerState::Work { part, setup, t: now + duration };
        let generation = srv.generation;
        st.update_active(now);
        self.agenda.schedule(now + duration, Event::Done { station, server, generation });
    }

    fn on_done(&mut self, station: StationIdx, server: u32, generation: u32) -> bool {
        let s = station as usize;
        let now = self.agenda.now();
        let st = &mut self.stations[s];
        // A server removed by `set_servers` leaves no valid event behind.
        let Some(srv) = st.servers.get(server as usize) else { return false };
        if srv.generation != generation {
            return false;
        }
        let ServerState::Work { part, setup, .. } = srv.state else {
            return false;
        };
        st.account(now);
        if setup {
            // Changeover finished: start processing the part it was for.
            st.n_setup -= 1;
            st.servers[server as usize].state = ServerState::Idle;
            st.servers[server as usize].last_product = Some(self.parts[part as usize].product);
            self.begin(station, server, part);
            return true;
        }
        st.n_work -= 1;
        st.completed += 1;
        let scrap = self.model.stations[s].scrap;
        let scrapped = st.scrap_rng.as_mut().is_some_and(|rng| rng.random::<f64>() < scrap);
        if scrapped {
            st.scrapped += 1;
            st.servers[server as usize].state = ServerState::Idle;
            st.update_active(now);
            self.scrap(part);
        } else {
            st.servers[server as usize].state = ServerState::Idle;
            self.parts[part as usize].step += 1;
            if !self.dispatch(part, Holder::Server { station, server }) {
                let st = &mut self.stations[s];
                st.account(now);
                st.servers[server as usize].state = ServerState::Blocked { part };
                st.n_blocked += 1;
            }
            self.stations[s].update_active(now);
        }
        if self.model.stations[s].crew > 0 {
            self.staff.release(&self.model, &mut self.agenda, station);
        }
        self.try_start(station);
        true
    }

    /// A vehicle finished loading, unloading or charging; what it unloaded goes into the
    /// buffers its slots were reserved in, then the vehicle takes its next job.
    fn on_vehicle_done(&mut self, vehicle: u32, generation: u32) -> bool {
        let orders = match self.agvs.on_done(&self.model, &mut self.agenda, vehicle, generation) {
            VehicleDone::Stale => return false,
            VehicleDone::Handled => return true,
            VehicleDone::Delivered(orders) => orders,
        };
        for order in orders {
            // Into the buffer whose slot was reserved when the order was placed.
            self.stations[order.station as usize].reserved -= 1;
            self.enter_station(order.station, order.part);
        }
        self.agvs.next_job(&self.model, &mut self.agenda, vehicle);
        true
    }

    /// A truck finished loading or unloading; what it unloaded goes to its owners, then
    /// free trucks serve the lanes waiting for one.
    fn on_truck_done(&mut self, truck: u32, generation: u32) -> bool {
        let deliveries = match self.trucks.on_done(&self.model, &mut self.agenda, truck, generation) {
            TruckDone::Stale => return false,
            TruckDone::Loaded => return true,
            TruckDone::Unloaded(deliveries) => deliveries,
        };
        for delivery in deliveries {
            match delivery {
                Delivery::Part { part, station } => {
                    self.inbound[station as usize].push_back(part);
                    self.move_inbound(station);
                }
                Delivery::Material { material, factory, qty } => {
                    self.materials.deliver(&mut self.agenda, material, factory, qty)
                }
            }
        }
        self.trucks.serve_requests(&self.model, &mut self.agenda);
        true
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

    /// A part completed its routing at station `at`. With trucks, it is shipped from
    /// that factory's dock to the hub.
    fn finish(&mut self, part: PartId, at: Option<StationIdx>) {
        let p = self.parts[part as usize];
        let sink = self.model.products[p.product as usize].sink;
        self.totals.part_finished(self.agenda.now(), &p, sink);
        self.free_parts.push(part);
        if self.model.has_trucks()
            && let Some(factory) = at.and_then(|s| self.model.stations[s as usize].factory)
            && let Some(dock) = self.model.factories[factory as usize].dock
            && let Some((_, hub)) = &self.model.roads
            && dock != *hub
        {
            let hub = *hub;
            self.trucks.haul(&self.model, &mut self.agenda, dock, hub, Cargo::Shipment { units: 1 });
        }
    }

    fn scrap(&mut self, part: PartId) {
        let p = self.parts[part as usize];
        self.totals.part_scrapped(self.agenda.now(), &p);
        self.free_parts.push(part);
    }

    pub(crate) fn run_followups(&mut self) {
        while let Some(followup) = self.agenda.next_followup() {
            match followup {
                Followup::RoomAtStation(s) => self.wake_waiters(PlaceKey::Station(s)),
                Followup::RoomOnConveyor(c) => self.wake_waiters(PlaceKey::Conveyor(c)),
                Followup::Crew(pool) => {
                    for station in self.staff.take_waiting(pool) {
                        self.try_start(station);
                    }
                }
                Followup::Material => {
                    for waiter in self.materials.take_waiters() {
                        match waiter {
                            MaterialWaiter::Source(s) => {
                                let stamp = self.sources[s as usize].stamp;
                                self.unblock(Holder::Source(s), stamp);
                            }
                            MaterialWaiter::Station(s) => self.try_start(s),
                        }
                    }
                }
                Followup::Resource { graph, resource } => {
                    self.agvs.wake_resource(&self.model, &mut self.agenda, graph, resource)
                }
                Followup::Vehicle(v) => {
                    self.agvs.nudge(&self.model, &mut self.agenda, v);
                }
            }
        }
    }

    /// Room freed at `place`: lets waiting holders pass their parts on, oldest first.
    fn wake_waiters(&mut self, place: PlaceKey) {
        let pending = match place {
            PlaceKey::Station(s) => self.stations[s as usize].waiters.len(),
            PlaceKey::Conveyor(c) => self.conveyors[c as usize].waiters.len(),
        };
        for _ in 0..pending {
            let (room, next) = match place {
                PlaceKey::Station(s) => {
                    let st = &mut self.stations[s as usize];
                    (st.has_room(), if st.has_room() { st.waiters.pop_front() } else { None })
                }
                PlaceKey::Conveyor(c) => {
                    let room = self.has_room(Place::Conveyor(c));
                    (room, if room { self.conveyors[c as usize].waiters.pop_front() } else { None })
                }
            };
            if !room {
                break;
            }
            let Some((holder, stamp)) = next else { break };
            self.unblock(holder, stamp);
        }
        self.compact_waiters(place);
    }

    /// Drops stale waiter entries when they pile up, so that a station that stays full
    /// for a long time does not collect entries without bound.
    fn compact_waiters(&mut self, place: PlaceKey) {
        let len = match place {
            PlaceKey::Station(s) => self.stations[s as usize].waiters.len(),
            PlaceKey::Conveyor(c) => self.conveyors[c as usize].waiters.len(),
        };
        if len < 64 {
            return;
        }
        let mut waiters = match place {
            PlaceKey::Station(s) => std::mem::take(&mut self.stations[s as usize].waiters),
            PlaceKey::Conveyor(c) => std::mem::take(&mut self.conveyors[c as usize].waiters),
        };
        waiters.retain(|&(holder, stamp)| self.holder_waiting(holder, stamp));
        match place {
            PlaceKey::Station(s) => self.stations[s as usize].waiters = waiters,
            PlaceKey::Conveyor(c) => self.conveyors[c as usize].waiters = waiters,
        }
    }

    fn holder_waiting(&self, holder: Holder, stamp: u64) -> bool {
        match holder {
            Holder::Server { station, server } => {
                let Some(srv) = self.stations[station as usize].servers.get(server as usize) else {
                    return false;
                };
                srv.stamp == stamp && matches!(srv.state, ServerState::Blocked { .. })
            }
            Holder::Conveyor(c) => {
                let conv = &self.conveyors[c as usize];
                conv.stamp == stamp && conv.head_blocked
            }
            Holder::Source(s) => {
                let src = &self.sources[s as usize];
                src.stamp == stamp && !src.backlog.is_empty()
            }
            Holder::Inbound(s) => {
                self.inbound_stamp[s as usize] == stamp && !self.inbound[s as usize].is_empty()
            }
        }
    }

    pub(crate) fn unblock(&mut self, holder: Holder, stamp: u64) {
        if !self.holder_waiting(holder, stamp) {
            return;
        }
        match holder {
            Holder::Server { station, server } => {
                let ServerState::Blocked { part } =
                    self.stations[station as usize].servers[server as usize].state
                else {
                    return;
                };
                if self.dispatch(part, holder) {
                    let st = &mut self.stations[station as usize];
                    st.account(self.agenda.now());
                    st.servers[server as usize].state = ServerState::Idle;
                    st.n_blocked -= 1;
                    st.update_active(self.agenda.now());
                    self.try_start(station);
                }
            }
            Holder::Conveyor(c) => {
                self.conveyors[c as usize].head_blocked = false;
                self.move_conveyor(c);
            }
            Holder::Source(source) => {
                while let Some(&part) = self.sources[source as usize].backlog.front() {
                    if !self.release(source, part) {
                        break;
                    }
                    self.sources[source as usize].backlog.pop_front();
                }
            }
            Holder::Inbound(station) => self.move_inbound(station),
        }
    }

    fn schedule_failure(&mut self, station: StationIdx) {
        let s = station as usize;
        let Some(failures) = &self.model.stations[s].failures else {
            return;
        };
        let st = &mut self.stations[s];
        let rng = st.failure_rng.as_mut().expect("created with the failures");
        let e: f64 = Exp1.sample(rng);
        let ttf = ((e * failures.mtbf + 0.5) as Micros).clamp(1, MAX_SPAN);
        let generation = st.failure_generation;
        self.agenda.schedule(self.agenda.now() + ttf, Event::Fail { station, generation });
    }

    /// Breaks `station` down; it is repaired after a random repair time, after
    /// `duration` when given, or never (until [`Sim::repair`]) when `duration` is `Some(None)`.
    fn fail(&mut self, station: StationIdx, duration: Option<Option<Micros>>) {
        let s = station as usize;
        self.stations[s].failure_generation += 1;
        let repair = match duration {
            Some(d) => d,
            None => {
                let model = Arc::clone(&self.model);
                let failures = model.stations[s].failures.as_ref().expect("scheduled with failures");
                let rng = self.stations[s].failure_rng.as_mut().expect("created with the failures");
                Some(failures.repair.sample(rng))
            }
        };
        self.set_stopped(station, |st| st.down = true);
        if let Some(repair) = repair {
            let generation = self.stations[s].failure_generation;
            self.agenda.schedule(self.agenda.now() + repair, Event::Repair { station, generation });
        }
    }

    fn repair_now(&mut self, station: StationIdx) {
        self.stations[station as usize].failure_generation += 1;
        self.set_stopped(station, |st| st.down = false);
        self.schedule_failure(station);
    }

    fn apply_calendar(&mut self, calendar: u32) {
        let (on, next) = self.model.calendars[calendar as usize].state_at(self.agenda.now());
        for i in 0..self.calendar_stations[calendar as usize].len() {
            let station = self.calendar_stations[calendar as usize][i];
            self.set_stopped(station, |st| st.off_shift = !on);
        }
        self.staff.set_shift(&self.model, &mut self.agenda, calendar, on);
        self.agenda.schedule(next, Event::Shift { calendar });
    }

    /// Changes the down / off-shift flags and pauses or resumes work accordingly.
    fn set_stopped(&mut self, station: StationIdx, change: impl FnOnce(&mut StationRt)) {
        let now = self.agenda.now();
        let st = &mut self.stations[station as usize];
        st.account(now);
        let was = st.stopped();
        change(st);
        let is = st.stopped();
        let mut resumed = Vec::new();
        if was != is {
            for (k, srv) in st.servers.iter_mut().enumerate() {
                if let ServerState::Work { t, .. } = &mut srv.state {
                    if is {
                        *t = t.saturating_sub(now);
                        srv.generation += 1;
                    } else {
                        *t += now;
                        resumed.push((k as u32, *t, srv.generation));
                    }
                }
            }
        }
        st.update_active(now);
        for (server, t, generation) in resumed {
            self.agenda.schedule(t, Event::Done { station, server, generation });
        }
        if was && !is {
            self.try_start(station);
        }
    }

    /// Ends the warm-up: every statistic restarts from here; the state carries on.
    pub(crate) fn reset_statistics(&mut self) {
        let now = self.agenda.now();
        for st in &mut self.stations {
            st.account(now);
            st.times = StateTimes::default();
            st.queue_area = 0;
            // An active period that began in the warm-up keeps its start: bottleneck
            // ranking uses whole period lengths and clips only to the window.
            st.periods.clear();
            st.completed = 0;
            st.scrapped = 0;
            st.sent.clear();
            st.started = 0;
            st.wait_sum = 0;
        }
        self.totals.reset(now);
        self.agvs.reset_statistics(now);
        self.staff.reset_statistics(now);
        self.materials.reset_statistics(now);
        self.trucks.reset_statistics(now);
    }

    // ----- Commands (operator and trainer actions) -----

    fn station_by_id(&self, id: &str) -> Result<StationIdx, CommandError> {
        self.model.station(id).ok_or_else(|| CommandError::UnknownStation(id.to_string()))
    }

    /// Breaks a station down now. With `duration` it is repaired after that long;
    /// without, it stays down until [`Sim::repair`].
    pub fn break_down(&mut self, station: &str, duration: Option<Micros>) -> Result<(), CommandError> {
        let s = self.station_by_id(station)?;
        if self.stations[s as usize].down {
            return Err(CommandError::AlreadyDown(station.to_string()));
        }
        self.fail(s, Some(duration));
        self.run_followups();
        Ok(())
    }

    /// Repairs a station that is down now.
    pub fn repair(&mut self, station: &str) -> Result<(), CommandError> {
        let s = self.station_by_id(station)?;
        if !self.stations[s as usize].down {
            return Err(CommandError::NotDown(station.to_string()));
        }
        self.repair_now(s);
        self.run_followups();
        Ok(())
    }

    /// Releases `quantity` parts of `product` now, ahead of the queue at their first
    /// station (a rush order).
    pub fn add_rush_order(&mut self, product: &str, quantity: u32) -> Result<(), CommandError> {
        let p =
            self.model.product(product).ok_or_else(|| CommandError::UnknownProduct(product.to_string()))?;
        if quantity == 0 || quantity > 10_000 {
            return Err(CommandError::Invalid(format!("quantity must be 1 to 10000, got {quantity}")));
        }
        for _ in 0..quantity {
            let part = self.create_part(u32::MAX, p);
            let first = self.model.products[p as usize].steps[0].at[0];
            // Rush parts jump the queue: they go to the front of the first station's buffer,
            // even past its capacity, because a rush order is released by hand.
            let st = &mut self.stations[first as usize];
            st.account(self.agenda.now());
            self.parts[part as usize].since = self.agenda.now();
            st.queue.push_front(part);
            self.try_start(first);
        }
        self.run_followups();
        Ok(())
    }

    /// Sets a station's input buffer capacity (None is unlimited). Lowering it below the
    /// current content keeps the parts already there; new ones wait until it drains.
    pub fn set_buffer(&mut self, station: &str, capacity: Option<u32>) -> Result<(), CommandError> {
        let s = self.station_by_id(station)?;
        if capacity == Some(0) {
            return Err(CommandError::Invalid("buffer capacity must be at least 1".into()));
        }
        self.stations[s as usize].buffer = capacity;
        self.agenda.follow_up(Followup::RoomAtStation(s));
        self.run_followups();
        Ok(())
    }

    /// Sets the number of parallel servers of a station. Servers can always be added;
    /// only idle servers can be taken away (the last ones), so that no part is lost.
    pub fn set_servers(&mut self, station: &str, servers: u32) -> Result<(), CommandError> {
        let s = self.station_by_id(station)?;
        if !(1..=1000).contains(&servers) {
            return Err(CommandError::Invalid(format!("servers must be 1 to 1000, got {servers}")));
        }
        let now = self.agenda.now();
        let st = &mut self.stations[s as usize];
        st.account(now);
        let current = st.servers.len() as u32;
        if servers > current {
            for _ in current..servers {
                st.servers.push(ServerRt {
                    state: ServerState::Idle,
                    generation: 0,
                    last_product: None,
                    stamp: 0,
                });
            }
        } else {
            let idle_tail =
                st.servers.iter().rev().take_while(|v| matches!(v.state, ServerState::Idle)).count() as u32;
            if current - servers > idle_tail {
                return Err(CommandError::Busy(format!(
                    "`{station}` has only {idle_tail} idle server(s) at the end now; {} must be removed",
                    current - servers
                )));
            }
            st.servers.truncate(servers as usize);
        }
        st.update_active(now);
        self.try_start(s);
        self.run_followups();
        Ok(())
    }

    /// Changes the Poisson arrival rate of a source from now on.
    pub fn set_arrival_rate(&mut self, source: &str, per_hour: f64) -> Result<(), CommandError> {
        let idx = self
            .model
            .sources
            .iter()
            .position(|s| s.id == source)
            .ok_or_else(|| CommandError::UnknownSource(source.to_string()))?;
        if !matches!(self.model.sources[idx].release, Release::Poisson { .. }) {
            return Err(CommandError::Invalid(format!("source `{source}` does not have Poisson arrivals")));
        }
        if !(per_hour.is_finite() && per_hour > 0.0) {
            return Err(CommandError::Invalid(format!("arrival rate must be positive, got {per_hour}")));
        }
        self.sources[idx].mean_gap = crate::time::HOUR as f64 / per_hour;
        Ok(())
    }

    // ----- Views for live displays -----

    /// Display state of every truck, positions interpolated along its road path.
    pub fn truck_views(&self) -> impl Iterator<Item = trucks::TruckView> + '_ {
        self.trucks.views(&self.model, self.agenda.now())
    }

    /// Display state of every station now.
    pub fn station_views(&self) -> impl Iterator<Item = StationView> + '_ {
        self.stations.iter().map(|st| StationView {
            state: st.state(),
            busy_servers: st.n_work + st.n_setup,
            blocked_servers: st.n_blocked,
            queue: st.queue.len() as u32,
            buffer: st.buffer,
            completed: st.completed,
        })
    }

    /// Parts passed from station to station since the statistics were reset:
    /// `(from, to, count)`, ascending by `from` then in first-use order.
    pub fn flows(&self) -> impl Iterator<Item = (StationIdx, StationIdx, u64)> + '_ {
        self.stations
            .iter()
            .enumerate()
            .flat_map(|(from, st)| st.sent.iter().map(move |&(to, n)| (from as StationIdx, to, n)))
    }

    /// Parts in the complex now (released, not yet finished or scrapped).
    pub fn wip(&self) -> u64 {
        self.totals.wip
    }

    /// The momentary bottleneck: the active station whose current active period has
    /// lasted longest so far (ties to the lower index).
    pub fn momentary_bottleneck(&self) -> Option<StationIdx> {
        self.stations
            .iter()
            .enumerate()
            .filter_map(|(i, st)| st.active_since.map(|since| (since, i)))
            .min()
            .map(|(_, i)| i as StationIdx)
    }

    /// Lead times recorded since the warm-up, for quantiles.
    pub fn lead_times(&self) -> &LeadTimes {
        &self.totals.lead_times
    }
}

/// A station's display state, as a live view shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StationView {
    pub state: StationState,
    /// Servers processing or setting up.
    pub busy_servers: u32,
    pub blocked_servers: u32,
    /// Parts waiting in the input buffer.
    pub queue: u32,
    pub buffer: Option<u32>,
    /// Parts processed since the statistics were reset.
    pub completed: u64,
}
