//! The agenda: the only code that orders time.
//!
//! Ordering guarantees: events run in ascending time; events at the same time run in the
//! order they were scheduled (`(time, sequence)`). Work that an event causes elsewhere (a
//! freed buffer slot waking a blocked upstream station, a vehicle freeing a node, ...) is
//! queued here as a [`Followup`] and runs before the next event, in the order it arose.
//!
//! The agenda knows which kinds of events exist, never what they do: the coordinator in
//! [`crate::sim`] hands each event to the subsystem that owns it.

use std::collections::VecDeque;

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
/// cost of one integer comparison.
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

/// The pending events: a 4-ary min-heap on `key`. Four children per node halve the
/// depth of a binary heap, and the sift loops compare one integer per child.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
struct EventHeap(Vec<Scheduled>);

impl EventHeap {
    const ARITY: usize = 4;

    #[inline]
    fn peek(&self) -> Option<&Scheduled> {
        self.0.first()
    }

    #[inline]
    fn push(&mut self, item: Scheduled) {
        let heap = &mut self.0;
        let mut i = heap.len();
        heap.push(item);
        let heap = heap.as_mut_ptr();
        // SAFETY: `i` starts at the index of the element just pushed and only moves to
        // a parent (`(i - 1) / 4 < i`), so every index read or written is below the
        // length; `Scheduled` is `Copy`, so copying slots leaves nothing to drop twice.
        unsafe {
            while i > 0 {
                let parent = (i - 1) / Self::ARITY;
                if (*heap.add(parent)).key <= item.key {
                    break;
                }
                *heap.add(i) = *heap.add(parent);
                i = parent;
            }
            *heap.add(i) = item;
        }
    }

    #[inline(always)]
    fn pop(&mut self) -> Option<Scheduled> {
        let heap = &mut self.0;
        let last = heap.pop()?;
        let n = heap.len();
        if n == 0 {
            return Some(last);
        }
        let top = heap[0];
        self.sift_down(last);
        Some(top)
    }

    /// Replaces the earliest event by `item`: what a pop followed by a push leaves, in
    /// one sift-down. The order events come out in is that of their unique keys, so it
    /// does not depend on which of the two ways built the heap.
    #[inline(always)]
    fn replace_top(&mut self, item: Scheduled) {
        self.sift_down(item);
    }

    /// Sifts `item` down from the root into the hole there (the root's old content is
    /// dropped). The heap must not be empty.
    #[inline(always)]
    fn sift_down(&mut self, item: Scheduled) {
        let n = self.0.len();
        assert!(n > 0, "sift_down on an empty heap");
        let heap = self.0.as_mut_ptr();
        // SAFETY: `n >= 1`. The loop reads only children `c < n` (it stops when the first
        // child is not) and writes only `i`, which is 0 or a child read before;
        // `Scheduled` is `Copy`, so copying slots leaves nothing to drop twice.
        unsafe {
            let mut i = 0;
            loop {
                let first = Self::ARITY * i + 1;
                if first >= n {
                    break;
                }
                let mut child = first;
                let mut child_key = (*heap.add(first)).key;
                for c in first + 1..(first + Self::ARITY).min(n) {
                    let key = (*heap.add(c)).key;
                    if key < child_key {
                        child = c;
                        child_key = key;
                    }
                }
                if child_key >= item.key {
                    break;
                }
                *heap.add(i) = *heap.add(child);
                i = child;
            }
            *heap.add(i) = item;
        }
    }
}

/// The clock, the event list and the follow-up queue of one run.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct Agenda {
    /// Current simulation time.
    now: Micros,
    /// Sequence number of the last scheduled event: the tie-break at equal times.
    seq: u64,
    /// Pending events, earliest `(time, seq)` first.
    heap: EventHeap,
    /// Work caused by the current event, oldest first.
    followups: VecDeque<Followup>,
    /// Events handled so far (stale ones that were ignored do not count).
    handled: u64,
    /// The event being handled was taken by [`Agenda::take_due`] but still sits at the
    /// top of the heap: the next [`Agenda::schedule`] overwrites it, and
    /// [`Agenda::settle`] removes it if nothing was scheduled. Most events schedule one
    /// follow-on event, and one sift-down costs less than a pop and a push. Always false
    /// between events, so never saved.
    #[serde(skip)]
    top_taken: bool,
}

impl Agenda {
    /// Current simulation time.
    #[inline]
    pub fn now(&self) -> Micros {
        self.now
    }

    /// Schedules `event` at `time`, after every event already scheduled for that time.
    /// Always inlined: nearly every event schedules one, and as a call it costs a
    /// quarter of its work in register saves and the event passed through memory.
    #[inline(always)]
    pub fn schedule(&mut self, time: Micros, event: Event) {
        self.seq += 1;
        let item = Scheduled { key: (u128::from(time) << 64) | u128::from(self.seq), event };
        if self.top_taken {
            self.top_taken = false;
            self.heap.replace_top(item);
        } else {
            self.heap.push(item);
        }
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
    #[cfg(test)]
    pub fn pop_due(&mut self, until: Micros) -> Option<Event> {
        if self.heap.peek()?.time() > until {
            return None;
        }
        self.pop()
    }

    /// [`Agenda::pop_due`] that leaves the event in the heap until the next schedule
    /// or [`Agenda::settle`] (see `top_taken`); every call must be followed by `settle`
    /// once the event and its follow-ups are handled, before anything reads the heap.
    #[inline(always)]
    pub fn take_due(&mut self, until: Micros) -> Option<Event> {
        debug_assert!(!self.top_taken);
        let next = self.heap.peek()?;
        if next.time() > until {
            return None;
        }
        self.now = next.time();
        let event = next.event;
        self.top_taken = true;
        Some(event)
    }

    /// Removes the event [`Agenda::take_due`] took if nothing replaced it.
    #[inline(always)]
    pub fn settle(&mut self) {
        if self.top_taken {
            self.top_taken = false;
            self.heap.pop();
        }
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

#[cfg(test)]
mod tests {
    use rand::{RngExt, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;

    /// Interleaved schedules and pops come out in `(time, seq)` order, as a sorted list
    /// of the same events says.
    #[test]
    fn pops_in_time_then_schedule_order() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut agenda = Agenda::default();
        let mut reference: Vec<(Micros, u64, u32)> = Vec::new();
        let mut n = 0u32;
        for _ in 0..20_000 {
            if rng.random_range(0..3) > 0 || reference.is_empty() {
                // Few distinct times, so that ties are common.
                let time = agenda.now() + rng.random_range(0..20);
                n += 1;
                agenda.schedule(time, Event::Arrival { source: n });
                reference.push((time, u64::from(n), n));
            } else {
                reference.sort_unstable();
                let (time, _, source) = reference.remove(0);
                assert_eq!(agenda.next_time(), Some(time));
                assert_eq!(agenda.pop_due(time), Some(Event::Arrival { source }));
                assert_eq!(agenda.now(), time);
            }
        }
        reference.sort_unstable();
        for (time, _, source) in reference {
            if time > 0 {
                assert_eq!(agenda.pop_due(time - 1), None);
            }
            assert_eq!(agenda.pop(), Some(Event::Arrival { source }));
        }
        assert_eq!(agenda.pop(), None);
    }

    /// Taking an event and scheduling its successors in its place (the first one by one
    /// sift-down) runs the same events in the same order as popping it and pushing them.
    #[test]
    fn replacing_the_top_runs_as_pop_and_push() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let (mut taken, mut popped) = (Agenda::default(), Agenda::default());
        let mut n = 0u32;
        for _ in 0..200 {
            let time = rng.random_range(0..30);
            n += 1;
            taken.schedule(time, Event::Arrival { source: n });
            popped.schedule(time, Event::Arrival { source: n });
        }
        loop {
            let event = taken.take_due(Micros::MAX);
            assert_eq!(event, popped.pop_due(Micros::MAX));
            assert_eq!(taken.now(), popped.now());
            if event.is_none() {
                break;
            }
            // None, one or two successors, few distinct times so that ties are common.
            for _ in 0..rng.random_range(0..3) {
                if n < 20_000 {
                    let time = taken.now() + rng.random_range(0..30);
                    n += 1;
                    taken.schedule(time, Event::Arrival { source: n });
                    popped.schedule(time, Event::Arrival { source: n });
                }
            }
            taken.settle();
            assert_eq!(taken.next_time(), popped.next_time());
        }
        assert!(n > 10_000, "only {n} events: the test ran out of them early");
    }
}
