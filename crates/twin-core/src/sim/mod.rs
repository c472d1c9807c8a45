//! The running simulation: a coordinator over subsystems that each own their state.
//!
//! [`Sim`] holds the `agenda` (the clock and the event list) and five subsystems, each
//! a struct with private fields that alone keeps its invariants: the [`flow`] of parts,
//! the [`agv`] fleets, the [`trucks`], the `materials` and the `staff`. The
//! coordinator hands each event and each follow-up to its owner and passes values
//! between subsystems (transport orders out, deliveries back, see `handoff`); no
//! subsystem reaches into another. Public mutators besides stepping are the operator
//! commands in [`commands`]; what the server and tests read is in [`views`].
//!
//! Ordering guarantees: events run in ascending time; events at the same time run in the
//! order they were scheduled; work an event causes elsewhere runs before the next event,
//! in the order it arose. Nothing here reads a clock or a file: the run is a pure
//! function of (model, seed, commands).

pub(crate) mod agenda;
pub mod agv;
pub mod commands;
pub mod flow;
pub(crate) mod handoff;
pub(crate) mod materials;
pub mod monitor;
mod persist;
pub(crate) mod staff;
pub mod trucks;
pub mod views;

use std::sync::Arc;

use self::agenda::{Agenda, Event, Followup};
use self::agv::{Agvs, VehicleDone};
use self::flow::{Cx, Flow, Logistics};
use self::handoff::{Cargo, Delivery, Haul, MaterialWaiter, TransportOrder};
use self::materials::Materials;
use self::monitor::Monitor;
use self::staff::Staff;
use self::trucks::{TruckDone, Trucks};
use crate::model::{Model, ProductIdx, StationIdx};
use crate::time::Micros;

/// A running simulation: the model plus all of its dynamic state.
///
/// Cloning a `Sim` forks it: the copy continues independently with the same random
/// streams, which is how forecasts from the live state work.
#[derive(Clone, Debug)]
pub struct Sim {
    model: Arc<Model>,
    /// The seed the run's random streams were derived from.
    seed: u64,
    agenda: Agenda,
    flow: Flow,
    agvs: Agvs,
    trucks: Trucks,
    materials: Materials,
    staff: Staff,
    /// Plant observations, sync status and deviation alarms (a live twin's; idle
    /// otherwise).
    monitor: Monitor,
}

/// The rest of the complex as the flow of parts sees it: each request goes to the
/// subsystem that owns the answer.
struct Complex<'a> {
    materials: &'a mut Materials,
    staff: &'a mut Staff,
    agvs: &'a mut Agvs,
    trucks: &'a mut Trucks,
}

impl Logistics for Complex<'_> {
    #[inline]
    fn materials_available(&self, model: &Model, product: ProductIdx) -> bool {
        self.materials.available(model, product)
    }

    fn wait_for_material(&mut self, model: &Model, waiter: MaterialWaiter, product: ProductIdx) {
        self.materials.wait(model, waiter, product);
    }

    fn consume_materials(&mut self, model: &Model, agenda: &mut Agenda, product: ProductIdx) {
        self.materials.consume(model, agenda, product, &mut *self.trucks);
    }

    fn seize_crew(&mut self, model: &Model, now: Micros, station: StationIdx) -> bool {
        self.staff.seize(model, now, station)
    }

    fn release_crew(&mut self, model: &Model, agenda: &mut Agenda, station: StationIdx) {
        self.staff.release(model, agenda, station);
    }

    fn order_transport(&mut self, model: &Model, agenda: &mut Agenda, fleet: u32, order: TransportOrder) {
        self.agvs.order(model, agenda, fleet, order);
    }

    fn haul(&mut self, model: &Model, agenda: &mut Agenda, from: u32, to: u32, cargo: Cargo) {
        self.trucks.haul(model, agenda, from, to, cargo);
    }
}

/// Why [`flow_events`] stopped.
enum Next {
    /// No event is due.
    Idle,
    /// The event it handled caused work: it runs before the next event.
    Followups,
    /// This event, taken from the agenda, belongs elsewhere than the flow's hot path.
    Other(Event),
}

/// Handles due arrivals and ends of jobs, each as [`Sim::process`] does, until an
/// event caused work elsewhere or another kind of event is due.
#[inline(always)]
fn flow_events(flow: &mut Flow, cx: &mut Cx<'_, Complex<'_>>, until: Micros) -> Next {
    while let Some(event) = cx.agenda.take_due(until) {
        let handled = match event {
            Event::Arrival { source } => {
                flow.on_arrival(cx, source);
                true
            }
            Event::Done { station, server, generation } => flow.on_done(cx, station, server, generation),
            other => return Next::Other(other),
        };
        if handled {
            cx.agenda.count_handled();
        }
        if cx.agenda.has_followups() {
            return Next::Followups;
        }
        cx.agenda.settle();
    }
    Next::Idle
}

impl Sim {
    /// Starts a run of `model` with random streams seeded by `seed`, at time zero.
    pub fn new(model: Arc<Model>, seed: u64) -> Sim {
        let mut sim = Sim {
            flow: Flow::new(&model, seed),
            agvs: Agvs::new(&model, 0),
            trucks: Trucks::new(&model, 0),
            materials: Materials::new(&model, 0),
            staff: Staff::new(&model, 0),
            monitor: Monitor::new(&model),
            agenda: Agenda::default(),
            model,
            seed,
        };
        sim.start();
        sim
    }

    /// Schedules what happens first: the end of the warm-up, the shifts, the timetable,
    /// the AGVs' first jobs, the arrivals and failures, and the first work.
    fn start(&mut self) {
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
        self.with_flow(|flow, cx| flow.start(cx));
        self.run_followups();
    }

    /// Runs `f` on the flow with everything a flow operation works with, borrowed apart.
    #[inline]
    fn with_flow<R>(&mut self, f: impl FnOnce(&mut Flow, &mut Cx<'_, Complex<'_>>) -> R) -> R {
        let Sim { model, agenda, flow, agvs, trucks, materials, staff, .. } = self;
        let mut cx = Cx { model, agenda, logistics: Complex { materials, staff, agvs, trucks } };
        f(flow, &mut cx)
    }

    // ----- Read access for the report (a pure function of the state) -----

    pub(crate) fn flow(&self) -> &Flow {
        &self.flow
    }

    pub(crate) fn agvs(&self) -> &Agvs {
        &self.agvs
    }

    pub(crate) fn trucks(&self) -> &Trucks {
        &self.trucks
    }

    pub(crate) fn materials(&self) -> &Materials {
        &self.materials
    }

    pub(crate) fn staff(&self) -> &Staff {
        &self.staff
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
    ///
    /// Arrivals and ends of jobs, most of a run's events, run back to back in
    /// [`flow_events`], which borrows the flow and its context once for all of them;
    /// any other event, and the work an event caused, goes the general way
    /// ([`Sim::process`]). Events run in the same order either way.
    pub fn run_until(&mut self, until: Micros) {
        loop {
            match self.with_flow(|flow, cx| flow_events(flow, cx, until)) {
                Next::Idle => break,
                Next::Followups => self.run_followups(),
                Next::Other(event) => self.process(event),
            }
            self.agenda.settle();
        }
        self.agenda.advance_to(until);
    }

    /// Processes the next event. Returns false when no event is pending.
    pub fn step(&mut self) -> bool {
        let Some(event) = self.agenda.pop() else {
            return false;
        };
        self.process(event);
        true
    }

    /// Handles an event just taken from the agenda, then the work it caused.
    #[inline(always)]
    fn process(&mut self, event: Event) {
        if self.handle(event) {
            self.agenda.count_handled();
        }
        if self.agenda.has_followups() {
            self.run_followups();
        }
    }

    /// Hands one event to its owner; returns false for a stale event that was ignored.
    /// Inlined into the event loops: it runs for every event.
    #[inline(always)]
    fn handle(&mut self, event: Event) -> bool {
        match event {
            Event::Arrival { source } => self.with_flow(|flow, cx| flow.on_arrival(cx, source)),
            Event::Release { source, row } => self.with_flow(|flow, cx| flow.on_release(cx, source, row)),
            Event::Done { station, server, generation } => {
                return self.with_flow(|flow, cx| flow.on_done(cx, station, server, generation));
            }
            Event::ConveyorEnd { conveyor } => self.with_flow(|flow, cx| flow.on_conveyor_end(cx, conveyor)),
            Event::Fail { station, generation } => {
                return self.with_flow(|flow, cx| flow.on_fail(cx, station, generation));
            }
            Event::Repair { station, generation } => {
                return self.with_flow(|flow, cx| flow.on_repair(cx, station, generation));
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

    /// Runs the work events caused, oldest first, until none is left.
    fn run_followups(&mut self) {
        while let Some(followup) = self.agenda.next_followup() {
            match followup {
                Followup::RoomAtStation(s) => self.with_flow(|flow, cx| flow.wake_station(cx, s)),
                Followup::RoomOnConveyor(c) => self.with_flow(|flow, cx| flow.wake_conveyor(cx, c)),
                Followup::Crew(pool) => {
                    for station in self.staff.take_waiting(pool) {
                        self.with_flow(|flow, cx| flow.try_start(cx, station));
                    }
                }
                Followup::Material => {
                    for waiter in self.materials.take_waiters() {
                        match waiter {
                            MaterialWaiter::Source(s) => self.with_flow(|flow, cx| flow.retry_source(cx, s)),
                            MaterialWaiter::Station(s) => self.with_flow(|flow, cx| flow.try_start(cx, s)),
                        }
                    }
                }
                Followup::Resource { graph, resource } => {
                    self.agvs.wake_resource(&self.model, &mut self.agenda, graph, resource)
                }
                Followup::Vehicle(v) => self.agvs.nudge(&self.model, &mut self.agenda, v),
            }
        }
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
            self.with_flow(|flow, cx| flow.deliver_by_agv(cx, order));
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
                    self.with_flow(|flow, cx| flow.deliver_by_truck(cx, station, part))
                }
                Delivery::Material { material, factory, qty } => {
                    self.materials.deliver(&mut self.agenda, material, factory, qty)
                }
            }
        }
        self.trucks.serve_requests(&self.model, &mut self.agenda);
        true
    }

    /// A shift change of `calendar` for the stations and the worker pools that follow it.
    fn apply_calendar(&mut self, calendar: u32) {
        let (on, next) = self.model.calendars[calendar as usize].state_at(self.agenda.now());
        self.with_flow(|flow, cx| flow.set_shift(cx, calendar, on));
        self.staff.set_shift(&self.model, &mut self.agenda, calendar, on);
        self.agenda.schedule(next, Event::Shift { calendar });
    }

    /// Ends the warm-up: every statistic restarts from here; the state carries on.
    fn reset_statistics(&mut self) {
        let now = self.agenda.now();
        self.flow.reset_statistics(now);
        self.agvs.reset_statistics(now);
        self.staff.reset_statistics(now);
        self.materials.reset_statistics(now);
        self.trucks.reset_statistics(now);
    }
}
