//! The agenda: the only code that orders time.
//!
//! Ordering guarantees: events run in ascending time; events at the same time run in the
//! order they were scheduled (`(time, sequence)`). Work that an event causes elsewhere (a
//! freed buffer slot waking a blocked upstream station, a vehicle freeing a node, ...) is
//! queued here as a [`Followup`] and runs before the next event, in the order it arose.
//!
//! The agenda knows which kinds of events exist, never what they do: the coordinator in
//! [`crate::sim`] hands each event to the subsystem that owns it.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};

use crate::graph::Resource;
use crate::model::StationIdx;
use crate::time::Micros;

/// Something due at a definite simulation time. Each variant belongs to one subsystem;
/// `generation` fields let a subsystem ignore events it has since superseded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) enum Event {
    /// Next Poisson or fixed-interval arrival of a source (flow).
    Arrival { source: u32 },
    /// Row `row` of a source's release schedule is due (flow).
    Release { source: u32, row: u32 },
    /// A server finished its setup or its processing (flow).
    Done { station: StationIdx, server: u32, generation: u32 },
    /// The first part on a conveyor reached its end (flow).
    ConveyorEnd { conveyor: u32 },
    /// A station fails (flow).
    Fail { station: StationIdx, generation: u32 },
    /// A station's repair is finished (flow).
    Repair { station: StationIdx, generation: u32 },
    /// A calendar's shift starts or ends (flow and staff).
    Shift { calendar: u32 },
    /// The warm-up is over: every statistic restarts.
    WarmupEnd,
    /// A vehicle reached the end of the edge it drove (AGVs).
    VehicleArrive { vehicle: u32, generation: u32 },
    /// A vehicle finished loading, unloading or charging (AGVs).
    VehicleDone { vehicle: u32, generation: u32 },
    /// A vehicle retries a deadlock that could not be broken earlier (AGVs).
    VehicleRetry { vehicle: u32, generation: u32 },
    /// A truck reached the end of its drive (trucks).
    TruckArrive { truck: u32, generation: u32 },
    /// A truck finished loading or unloading (trucks).
    TruckDone { truck: u32, generation: u32 },
    /// A timetabled truck departure (trucks).
    TruckTimetable,
    /// A supplier delivery reached the hub (materials).
    SupplyArrive { material: u32, qty: u32 },
}

/// Work caused by an event, run before the next event in the order it arose.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) enum Followup {
    /// Room freed in a station's input buffer.
    RoomAtStation(StationIdx),
    /// Room freed on a conveyor.
    RoomOnConveyor(u32),
    /// Workers of this pool came free.
    Crew(u32),
    /// Material arrived at a factory.
    Material,
    /// A node or edge of a path graph came free.
    Resource { graph: u32, resource: Resource },
    /// A vehicle should try to move on.
    Vehicle(u32),
}

/// An event with its place in time: `key` packs `(time, seq)` into one integer
/// (time in the high 64 bits), so that ordering by it is the `(time, seq)` order at the
/// cost of one comparison.
#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
struct Scheduled {
    key: u128,
    event: Event,
}

impl Scheduled {
    #[inline]
    fn time(&self) -> Micros {
        (self.key >> 64) as Micros
    }
}

impl PartialEq for Scheduled {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    #[inline]
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    /// Reversed, so that the max-heap pops the earliest `(time, seq)` first.
    #[inline]
    fn cmp(&self, other: &Self) -> Ordering {
        other.key.cmp(&self.key)
    }
}

/// The clock, the event list and the follow-up queue of one run.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct Agenda {
    /// Current simulation time.
    now: Micros,
    /// Sequence number of the last scheduled event: the tie-break at equal times.
    seq: u64,
    /// Pending events, earliest `(time, seq)` on top.
    heap: BinaryHeap<Scheduled>,
    /// Work caused by the current event, oldest first.
    followups: VecDeque<Followup>,
    /// Events handled so far (stale ones that were ignored do not count).
    handled: u64,
}

impl Agenda {
    /// Current simulation time.
    #[inline]
    pub fn now(&self) -> Micros {
        self.now
    }

    /// Schedules `event` at `time`, after every event already scheduled for that time.
    #[inline]
    pub fn schedule(&mut self, time: Micros, event: Event) {
        self.seq += 1;
        self.heap.push(Scheduled { key: (u128::from(time) << 64) | u128::from(self.seq), event });
    }

    /// Time of the next pending event, if any.
    pub fn next_time(&self) -> Option<Micros> {
        self.heap.peek().map(Scheduled::time)
    }

    /// Takes the next event and moves the clock to its time.
    #[inline]
    pub fn pop(&mut self) -> Option<Event> {
        let next = self.heap.pop()?;
        self.now = next.time();
        Some(next.event)
    }

    /// Takes the next event if it is due at or before `until`, and moves the clock to
    /// its time.
    #[inline]
    pub fn pop_due(&mut self, until: Micros) -> Option<Event> {
        if self.heap.peek()?.time() > until {
            return None;
        }
        self.pop()
    }

    /// Moves the clock forward to `t` (never back).
    pub fn advance_to(&mut self, t: Micros) {
        if t > self.now {
            self.now = t;
        }
    }

    /// Queues work to run before the next event.
    #[inline]
    pub fn follow_up(&mut self, followup: Followup) {
        self.followups.push_back(followup);
    }

    /// The oldest queued follow-up.
    #[inline]
    pub fn next_followup(&mut self) -> Option<Followup> {
        self.followups.pop_front()
    }

    /// Whether follow-ups are queued.
    #[inline]
    pub fn has_followups(&self) -> bool {
        !self.followups.is_empty()
    }

    /// Counts one handled event.
    #[inline]
    pub fn count_handled(&mut self) {
        self.handled += 1;
    }

    /// Events handled so far.
    pub fn handled(&self) -> u64 {
        self.handled
    }
}
