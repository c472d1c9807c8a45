//! The flow of parts: sources, stations with their servers and input buffers,
//! conveyors, routing, blocking after service, failures and shifts.
//!
//! Owns every part and where it is, every station's state and statistics, and the rule
//! that a buffer never takes more parts than it has room for: a slot is reserved when a
//! part sets off to the buffer by AGV and given back when the vehicle delivers it, both
//! here (`Flow::deliver_by_agv`), so that room counts parts on their way too. A part
//! that finds no room stays with its holder (a server, a conveyor end, a source, a
//! truck's delivery), which waits at every alternative and is woken, oldest first, when
//! room frees up.
//!
//! Knows nothing of vehicles, trucks, stock or workers: what it needs of them it asks
//! through `Logistics`, and it gets transported parts back as values.
//!
//! - `station`: a station's servers, state integrals and whether it is active.
//! - `bottlenecks`: the active-period method swept as periods close, in bounded memory.
//! - `sources`: arrivals, release schedules, saturated sources, releases.
//! - `moves`: routing a part to its next step, conveyors, waiters and unblocking.
//! - `service`: starting and finishing work, setups, scrap, failures and shifts.
//! - `cycles`: the opt-in recorder of completed cycles (off unless switched on).

mod bottlenecks;
mod cycles;
mod moves;
mod service;
mod sources;
mod station;

use std::collections::VecDeque;

use self::bottlenecks::LiveBottlenecks;
pub use self::bottlenecks::Rankings;
use self::cycles::CycleRecorder;
pub use self::cycles::{CYCLES_KEPT, CycleRecord};
use crate::model::{Model, ProductIdx, Release, StationIdx};
use crate::rng::{Stream, rekey, stream};
use crate::sim::agenda::Agenda;
use crate::sim::handoff::{Cargo, MaterialWaiter, PartId, TransportOrder};
use crate::stats::{LeadTimes, Totals};
use crate::time::Micros;

/// What the flow of parts asks of the rest of the complex. The coordinator implements it
/// over the other subsystems; each call happens at the moment the flow needs it, so the
/// order of events is exactly that of the hand-overs.
pub(crate) trait Logistics {
    /// Whether the materials for one unit of `product` are in stock at its factory.
    fn materials_available(&self, model: &Model, product: ProductIdx) -> bool;
    /// Registers `waiter` as waiting for the materials of `product`.
    fn wait_for_material(&mut self, model: &Model, waiter: MaterialWaiter, product: ProductIdx);
    /// Takes the materials of one unit of `product` from stock.
    fn consume_materials(&mut self, model: &Model, agenda: &mut Agenda, product: ProductIdx);
    /// Takes `station`'s crew, or queues the station for one and says no.
    fn seize_crew(&mut self, model: &Model, now: Micros, station: StationIdx) -> bool;
    /// Gives `station`'s crew back.
    fn release_crew(&mut self, model: &Model, agenda: &mut Agenda, station: StationIdx);
    /// Hands a part to AGV fleet `fleet`.
    fn order_transport(&mut self, model: &Model, agenda: &mut Agenda, fleet: u32, order: TransportOrder);
    /// Puts cargo on the dock at road node `from` for road node `to`.
    fn haul(&mut self, model: &Model, agenda: &mut Agenda, from: u32, to: u32, cargo: Cargo);
}

/// Everything a flow operation works with besides the flow itself.
pub(crate) struct Cx<'a, L> {
    pub model: &'a Model,
    pub agenda: &'a mut Agenda,
    pub logistics: L,
}

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

/// Server-microseconds spent in each state (a station with 3 servers accrues 3 per µs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StateTimes([u64; 6]);

impl StateTimes {
    #[inline]
    fn add(&mut self, state: StationState, amount: u64) {
        self.0[state as usize] += amount;
    }

    pub fn get(&self, state: StationState) -> u64 {
        self.0[state as usize]
    }

    pub fn total(&self) -> u64 {
        self.0.iter().sum()
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

/// A part in the complex.
#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
struct Part {
    product: ProductIdx,
    /// Index of the routing step the part is waiting for or in.
    step: u16,
    created: Micros,
    /// Due time; `Micros::MAX` when the source sets none.
    due: Micros,
    /// When the part joined its current queue.
    since: Micros,
    /// Whether the part's bought-in materials were taken from stock yet.
    materials_taken: bool,
    /// The rush order it belongs to (its number: `rush-(n + 1)`).
    rush_order: Option<u32>,
}

/// Completed rush orders kept for views and the report beyond the open ones.
pub const RUSH_ORDERS_KEPT: usize = 1_000;

/// Id of a rush order, unique within a run: the `n`-th order placed is `rush-n`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub struct RushOrderId(u32);

impl std::fmt::Display for RushOrderId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "rush-{}", self.0)
    }
}

/// A rush order and its progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RushOrder {
    pub id: RushOrderId,
    pub product: ProductIdx,
    /// Units ordered.
    pub quantity: u32,
    /// Units that finished their routing, and that were scrapped on the way.
    pub finished: u32,
    pub scrapped: u32,
    /// When the order was released.
    pub released_at: Micros,
    /// When every unit is due (`AddRushOrder.due_in_us`); None: as soon as possible.
    pub due: Option<Micros>,
    /// When its last unit finished or was scrapped; None while it is open.
    pub completed_at: Option<Micros>,
}

impl Flow {
    /// The rush order numbered `number`.
    fn rush_order_mut(&mut self, number: u32) -> &mut RushOrder {
        &mut self.rush_orders[(number - self.rush_base) as usize]
    }

    /// Forgets the oldest completed orders once twice [`RUSH_ORDERS_KEPT`] are held.
    fn forget_old_rush_orders(&mut self) {
        if self.rush_orders.len() <= 2 * RUSH_ORDERS_KEPT {
            return;
        }
        let old = self.rush_orders.len() - RUSH_ORDERS_KEPT;
        let done = self.rush_orders[..old].iter().take_while(|o| o.completed_at.is_some()).count();
        self.rush_orders.drain(..done);
        self.rush_base += done as u32;
    }
}

impl RushOrder {
    /// One of its units finished its routing at `now`.
    fn unit_finished(&mut self, now: Micros) {
        self.finished += 1;
        self.close_when_done(now);
    }

    /// One of its units was scrapped at `now`.
    fn unit_scrapped(&mut self, now: Micros) {
        self.scrapped += 1;
        self.close_when_done(now);
    }

    fn close_when_done(&mut self, now: Micros) {
        if self.finished + self.scrapped == self.quantity {
            self.completed_at = Some(now);
        }
    }
}

/// Something that holds a part it cannot pass on until room frees up downstream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
enum Holder {
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

/// What one server of a station is doing.
#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
enum ServerState {
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

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct Server {
    state: ServerState,
    /// Bumped whenever a scheduled `Done` must be ignored (preemption).
    generation: u32,
    last_product: Option<ProductIdx>,
    /// Identifies the current blocking episode; stale waiter entries carry older stamps.
    stamp: u64,
}

impl Server {
    fn idle() -> Server {
        Server { state: ServerState::Idle, generation: 0, last_product: None, stamp: 0 }
    }
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct Station {
    /// Parts in the input buffer, in order of service.
    queue: VecDeque<PartId>,
    servers: Vec<Server>,
    /// Input buffer capacity now (commands may change it); None is unlimited.
    buffer: Option<u32>,
    n_work: u32,
    n_setup: u32,
    n_blocked: u32,
    /// Buffer slots held for parts on their way by AGV.
    reserved: u32,
    down: bool,
    off_shift: bool,
    /// Parts passed on to each next station since the statistics were reset.
    sent: Vec<(StationIdx, u64)>,
    /// Upstream holders waiting for room here, with the stamp of their episode.
    waiters: VecDeque<(Holder, u64)>,
    times: StateTimes,
    /// Integral of queue length over time (parts x microseconds).
    queue_area: u128,
    /// Time the integrals run up to.
    last: Micros,
    /// Start of the current active period (busy, setup or down), for bottlenecks.
    completed: u64,
    scrapped: u64,
    /// Parts that left the queue into service, and their summed waits.
    started: u64,
    wait_sum: u128,
    /// Bumped whenever a scheduled failure or repair must be ignored.
    failure_generation: u32,
    /// Who breaks the station down and repairs it: its own draws, or the plant's reports
    /// (a live station; see [`FailureSource`]).
    failure_source: FailureSource,
    /// Down with no repair scheduled: only a command (or the model taking the failures
    /// back) ends it.
    awaiting_repair: bool,
    rng: Stream,
    setup_rng: Option<Stream>,
    failure_rng: Option<Stream>,
    scrap_rng: Option<Stream>,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct Conveyor {
    /// Parts on the conveyor with the time each reaches the end, front first.
    items: VecDeque<(PartId, Micros)>,
    /// The front part reached the end and waits for room at the next station.
    head_blocked: bool,
    stamp: u64,
    waiters: VecDeque<(Holder, u64)>,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct Source {
    /// Released parts that found no room at their first station yet.
    backlog: VecDeque<PartId>,
    stamp: u64,
    rng: Stream,
    /// Mean gap between Poisson arrivals now (commands may change the rate).
    mean_gap: f64,
}

/// Who decides when a station fails and is repaired.
///
/// A station whose state a live plant reports fails and is repaired only when the plant
/// says so: the twin's own draws would add failures the plant never had and stretch the
/// plant's ones (ARCHITECTURE.md, "Synchronisation"). Set by `Command::FailuresFrom`,
/// which the ingest logs like every command, so a replay reaches the same state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum FailureSource {
    /// The model draws failures (MTBF) and repair times (MTTR) itself: the default, and
    /// what a station whose source went stale falls back to.
    #[default]
    Model,
    /// The plant's reports only (`BreakDown` without duration / `Repair` commands); the
    /// model draws nothing for the station meanwhile.
    Plant,
}

/// When a station that breaks down is repaired.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Repair {
    /// After a repair time drawn from the station's own distribution (a failure).
    Drawn,
    /// After this long (an injected breakdown with a duration).
    After(Micros),
    /// Only when a command repairs it.
    ByCommand,
}

/// Why a station's servers cannot be cut now: too few idle ones at the end.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ServersBusy {
    pub idle_tail: u32,
    pub remove: u32,
}

/// Where the flow's parts are, for the part census.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct FlowCensus {
    pub buffers: u64,
    pub machines: u64,
    pub conveyors: u64,
    pub sources: u64,
    /// Delivered by truck, waiting for room.
    pub inbound: u64,
}

/// One station's figures over the statistics window, for the report.
#[derive(Clone, Copy, Debug)]
pub(crate) struct StationFigures {
    pub servers: u32,
    /// Server time per state.
    pub times: StateTimes,
    /// Integral of queue length (parts x microseconds).
    pub queue_area: u128,
    pub completed: u64,
    pub scrapped: u64,
    /// Parts that started service, and their summed waits in the buffer.
    pub started: u64,
    pub wait_sum: u128,
}

/// The flow of parts of a run.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct Flow {
    /// Part table; freed slots are reused.
    parts: Vec<Part>,
    free_parts: Vec<PartId>,
    stations: Vec<Station>,
    conveyors: Vec<Conveyor>,
    sources: Vec<Source>,
    /// Stations that follow each calendar.
    calendar_stations: Vec<Vec<StationIdx>>,
    /// Last stamp handed to a blocking episode.
    next_stamp: u64,
    /// Parts delivered by truck per station, waiting for room in its buffer.
    inbound: Vec<VecDeque<PartId>>,
    inbound_stamp: Vec<u64>,
    totals: Totals,
    /// Active periods, swept into the bottleneck ranking as they close.
    bottlenecks: LiveBottlenecks,
    /// Every rush order of the run, in the order placed (one per command).
    rush_orders: Vec<RushOrder>,
    /// Number of the first order in `rush_orders`: completed orders beyond the newest
    /// [`RUSH_ORDERS_KEPT`] are forgotten, so that a twin that runs for months and takes
    /// a rush order an hour does not grow.
    rush_base: u32,
    /// The opt-in cycle recorder; not part of the state (see `cycles`).
    #[serde(skip)]
    recorder: Option<Box<CycleRecorder>>,
    /// Forecast forks only: when watched parts finished. Not part of the saved state (a
    /// live run never watches), so snapshots are unchanged.
    #[serde(skip)]
    watch: Option<FinishWatch>,
}

/// The finishes of the parts that were in the complex when a forecast forked, so that
/// each open order's on-time outcome is known. Bounded by the WIP at the fork.
#[derive(Clone, Debug, Default)]
pub(crate) struct FinishWatch {
    /// Parts released at or before this time are watched; slots reused later are not.
    since: Micros,
    /// `(part slot, released at, finished at)`, in the order they finished.
    finished: Vec<(PartId, Micros, Micros)>,
}

/// An order in the complex: a released part whose source gives it a due date.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenOrder {
    /// Its slot in the part table: unique among the parts in the complex now.
    pub part: u32,
    pub product: ProductIdx,
    pub released_at: Micros,
    pub due: Micros,
}

impl Flow {
    /// Empty stations and conveyors, random streams seeded by `seed`.
    pub fn new(model: &Model, seed: u64) -> Flow {
        let stations = model
            .stations
            .iter()
            .map(|s| Station {
                queue: VecDeque::new(),
                servers: (0..s.servers).map(|_| Server::idle()).collect(),
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
                completed: 0,
                scrapped: 0,
                started: 0,
                wait_sum: 0,
                failure_generation: 0,
                failure_source: FailureSource::Model,
                awaiting_repair: false,
                rng: stream(seed, &format!("station/{}/process", s.id)),
                setup_rng: s.setup.as_ref().map(|_| stream(seed, &format!("station/{}/setup", s.id))),
                failure_rng: s.failures.as_ref().map(|_| stream(seed, &format!("station/{}/failure", s.id))),
                scrap_rng: (s.scrap > 0.0).then(|| stream(seed, &format!("station/{}/scrap", s.id))),
            })
            .collect();
        let conveyors = model
            .conveyors
            .iter()
            .map(|_| Conveyor {
                items: VecDeque::new(),
                head_blocked: false,
                stamp: 0,
                waiters: VecDeque::new(),
            })
            .collect();
        let sources = model
            .sources
            .iter()
            .map(|s| Source {
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
        let n_stations = model.stations.len();
        Flow {
            parts: Vec::new(),
            free_parts: Vec::new(),
            stations,
            conveyors,
            sources,
            calendar_stations,
            next_stamp: 0,
            inbound: vec![VecDeque::new(); n_stations],
            inbound_stamp: vec![0; n_stations],
            totals: Totals::new(model.products.len(), model.sinks.len()),
            bottlenecks: LiveBottlenecks::new(n_stations, 0),
            rush_orders: Vec::new(),
            rush_base: 0,
            recorder: None,
            watch: None,
        }
    }

    /// The first arrivals and failures, and work for every station that can start.
    pub fn start(&mut self, cx: &mut Cx<'_, impl Logistics>) {
        self.start_sources(cx);
        for (i, s) in cx.model.stations.iter().enumerate() {
            if s.failures.is_some() {
                self.schedule_failure(cx.model, cx.agenda, i as StationIdx);
            }
        }
        for s in 0..self.stations.len() {
            self.try_start(cx, s as StationIdx);
        }
    }

    /// A new stamp for a blocking episode.
    fn stamp(&mut self) -> u64 {
        self.next_stamp += 1;
        self.next_stamp
    }

    /// Ends the warm-up: every statistic restarts from here; the state carries on.
    pub fn reset_statistics(&mut self, now: Micros) {
        for st in &mut self.stations {
            st.account(now);
            st.times = StateTimes::default();
            st.queue_area = 0;
            st.completed = 0;
            st.scrapped = 0;
            st.sent.clear();
            st.started = 0;
            st.wait_sum = 0;
        }
        self.totals.reset(now);
        // An active period that began in the warm-up keeps its start: bottleneck ranking
        // uses whole period lengths and clips only to the window.
        self.bottlenecks.reset(now);
    }

    // ----- Reads -----

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

    /// The momentary bottleneck: the active station whose current active period has
    /// lasted longest so far (ties to the lower index).
    pub fn momentary_bottleneck(&self) -> Option<StationIdx> {
        self.bottlenecks.longest_open().map(|i| i as StationIdx)
    }

    /// Whether the tables fit `model` (a restored state must, before anything indexes
    /// them).
    pub fn fits(&self, model: &Model) -> bool {
        self.stations.len() == model.stations.len()
            && self.sources.len() == model.sources.len()
            && self.conveyors.len() == model.conveyors.len()
            && self.parts.iter().all(|p| (p.product as usize) < model.products.len())
    }

    /// Re-keys every random stream of the flow by `seed` (see [`crate::rng::rekey`]).
    pub fn rekey(&mut self, seed: u64) {
        for st in &mut self.stations {
            for rng in
                [Some(&mut st.rng), st.setup_rng.as_mut(), st.failure_rng.as_mut(), st.scrap_rng.as_mut()]
                    .into_iter()
                    .flatten()
            {
                rekey(rng, seed);
            }
        }
        for src in &mut self.sources {
            rekey(&mut src.rng, seed);
        }
    }

    /// The bottleneck rankings at `now`: over the statistics window and over the last
    /// hour, shift and day.
    pub fn bottleneck_rankings(&self, now: Micros) -> Rankings {
        self.bottlenecks.rankings(now)
    }

    /// Opens or closes a station's active period after a change of its state. Most calls
    /// change nothing, so the check is inlined (always: it runs twice per job) and the
    /// change is not.
    #[inline(always)]
    fn update_active(&mut self, station: StationIdx, now: Micros) {
        let s = station as usize;
        let active = self.stations[s].is_active();
        if active != self.bottlenecks.is_open(s) {
            self.bottlenecks.toggle(s, active, now);
        }
    }

    /// Station `station`'s figures up to `now`.
    pub fn station_figures(&self, station: usize, now: Micros) -> StationFigures {
        let st = &self.stations[station];
        let (times, queue_area) = st.integrals_at(now);
        StationFigures {
            servers: st.servers.len() as u32,
            times,
            queue_area,
            completed: st.completed,
            scrapped: st.scrapped,
            started: st.started,
            wait_sum: st.wait_sum,
        }
    }

    /// Part counts and lead times since the statistics were reset.
    pub fn totals(&self) -> &Totals {
        &self.totals
    }

    /// Lead times recorded since the warm-up, for quantiles.
    pub fn lead_times(&self) -> &LeadTimes {
        &self.totals.lead_times
    }

    /// Where the flow's parts are now.
    pub fn census(&self) -> FlowCensus {
        let mut c = FlowCensus::default();
        for st in &self.stations {
            c.buffers += st.queue.len() as u64;
            c.machines += st.servers.iter().filter(|s| !matches!(s.state, ServerState::Idle)).count() as u64;
        }
        c.conveyors = self.conveyors.iter().map(|cv| cv.items.len() as u64).sum();
        c.sources = self.sources.iter().map(|s| s.backlog.len() as u64).sum();
        c.inbound = self.inbound.iter().map(|q| q.len() as u64).sum::<u64>();
        c
    }

    /// The rush orders of the run in the order placed, with their progress: every open
    /// one and the newest completed ones (see [`RUSH_ORDERS_KEPT`]).
    pub fn rush_orders(&self) -> &[RushOrder] {
        &self.rush_orders
    }

    /// Whether `station` is down now.
    pub fn failure_source(&self, station: StationIdx) -> FailureSource {
        self.stations[station as usize].failure_source
    }

    pub fn is_down(&self, station: StationIdx) -> bool {
        self.stations[station as usize].down
    }

    /// Every part in the complex that carries a due date, by slot, except the units of
    /// rush orders (a forecast judges those by order).
    pub fn open_orders(&self) -> Vec<OpenOrder> {
        let mut free = vec![false; self.parts.len()];
        for &slot in &self.free_parts {
            free[slot as usize] = true;
        }
        self.parts
            .iter()
            .enumerate()
            // A rush order's units are judged as one order (`Sim::rush_orders`).
            .filter(|&(slot, p)| !free[slot] && p.due != Micros::MAX && p.rush_order.is_none())
            .map(|(slot, p)| OpenOrder {
                part: slot as u32,
                product: p.product,
                released_at: p.created,
                due: p.due,
            })
            .collect()
    }

    /// Starts recording when the parts with a due date released at or before `since`
    /// finish (a forecast fork; see [`FinishWatch`]).
    pub fn watch_finishes(&mut self, since: Micros) {
        self.watch = Some(FinishWatch { since, finished: Vec::new() });
    }

    /// The watched finishes so far, `(part slot, released at, finished at)`, in order.
    pub fn watched_finishes(&self) -> &[(PartId, Micros, Micros)] {
        self.watch.as_ref().map_or(&[], |w| &w.finished)
    }
}
