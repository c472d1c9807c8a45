//! Moving parts on: to the least-loaded alternative of the next routing step that has
//! room (by conveyor, AGV, truck or directly, as the model routes it), out of the
//! complex when the routing is done, and blocking after service when no alternative has
//! room. Holders that wait for room are woken oldest first when it frees up.

use super::{Cx, Flow, Holder, Logistics, Place, ServerState};
use crate::model::{Model, Route, StationIdx};
use crate::sim::agenda::{Event, Followup};
use crate::sim::handoff::{Cargo, PartId, TransportOrder};

impl Flow {
    /// Passes `part` on to its current routing step (or out of the complex when the
    /// routing is done). On failure the holder is registered with every alternative and
    /// keeps the part: blocking after service.
    ///
    /// The two moves of every part through a one-station routing take a short way
    /// inlined at the caller: leaving the complex after the last step, and a released
    /// part entering a station with room.
    #[inline(always)]
    pub(super) fn dispatch(&mut self, cx: &mut Cx<'_, impl Logistics>, part: PartId, holder: Holder) -> bool {
        let p = &self.parts[part as usize];
        let Some(step) = cx.model.products[p.product as usize].steps.get(p.step as usize) else {
            let from = match holder {
                Holder::Server { station, .. } => Some(station),
                _ => None,
            };
            self.finish(cx, part, from);
            return true;
        };
        if let (Holder::Source(_), &[target]) = (holder, &step.at[..])
            && self.stations[target as usize].has_room()
        {
            // What the general way does for a part with no station behind it: straight
            // into the buffer (no conveyor, vehicle or truck carries it).
            self.enter_station(cx, target, part);
            return true;
        }
        self.dispatch_any(cx, part, holder)
    }

    /// [`Flow::dispatch`] for every case.
    #[inline(never)]
    fn dispatch_any(&mut self, cx: &mut Cx<'_, impl Logistics>, part: PartId, holder: Holder) -> bool {
        let from = match holder {
            Holder::Server { station, .. } => Some(station),
            _ => None,
        };
        let model = cx.model;
        // Choose with shared borrows only: this runs for every move of every part, so it
        // must not allocate.
        let p = &self.parts[part as usize];
        let Some(step) = model.products[p.product as usize].steps.get(p.step as usize) else {
            self.finish(cx, part, from);
            return true;
        };
        let mut best: Option<(Place, u64, u64)> = None;
        if let [target] = step.at[..] {
            // One alternative (the common case): no loads to compare.
            let place = place_towards(model, from, target, step.carry);
            if self.has_room(model, place) {
                best = Some((place, 0, 0));
            }
        } else {
            for &target in &step.at {
                let place = place_towards(model, from, target, step.carry);
                if !self.has_room(model, place) {
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
        }
        if let Some((place, ..)) = best {
            if let Some(from) = from {
                let target = match place {
                    Place::Station(t) | Place::Agv { target: t, .. } | Place::Truck { target: t, .. } => t,
                    Place::Conveyor(c) => model.conveyors[c as usize].to,
                };
                let sent = &mut self.stations[from as usize].sent;
                match sent.iter_mut().find(|e| e.0 == target) {
                    Some(e) => e.1 += 1,
                    None => sent.push((target, 1)),
                }
            }
            self.enter(cx, place, part);
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
        for &target in &step.at {
            match place_towards(model, from, target, step.carry) {
                Place::Station(s) | Place::Agv { target: s, .. } | Place::Truck { target: s, .. } => {
                    self.stations[s as usize].waiters.push_back((holder, stamp))
                }
                Place::Conveyor(c) => self.conveyors[c as usize].waiters.push_back((holder, stamp)),
            }
        }
        false
    }

    #[inline]
    fn has_room(&self, model: &Model, place: Place) -> bool {
        match place {
            Place::Station(s) | Place::Agv { target: s, .. } => self.stations[s as usize].has_room(),
            // The shipping area of a dock holds any number of parts.
            Place::Truck { .. } => true,
            Place::Conveyor(c) => {
                self.conveyors[c as usize].items.len() < model.conveyors[c as usize].capacity as usize
            }
        }
    }

    /// Sends `part` on its way to `place`. A part that leaves by AGV reserves its slot in
    /// the target's buffer now; [`Flow::deliver_by_agv`] gives the slot back.
    #[inline(always)]
    fn enter(&mut self, cx: &mut Cx<'_, impl Logistics>, place: Place, part: PartId) {
        match place {
            Place::Station(s) => self.enter_station(cx, s, part),
            Place::Agv { fleet, from, to, target } => {
                self.stations[target as usize].reserved += 1;
                let order = TransportOrder { part, from, to, station: target };
                cx.logistics.order_transport(cx.model, cx.agenda, fleet, order);
            }
            Place::Truck { from, to, target } => {
                cx.logistics.haul(cx.model, cx.agenda, from, to, Cargo::Part { part, station: target });
            }
            Place::Conveyor(c) => {
                let arrive = cx.agenda.now() + cx.model.conveyors[c as usize].travel;
                self.conveyors[c as usize].items.push_back((part, arrive));
                cx.agenda.schedule(arrive, Event::ConveyorEnd { conveyor: c });
            }
        }
    }

    /// Puts a part into a station's input buffer and lets the station start on it.
    #[inline(always)]
    fn enter_station(&mut self, cx: &mut Cx<'_, impl Logistics>, s: StationIdx, part: PartId) {
        let now = cx.agenda.now();
        self.parts[part as usize].since = now;
        let st = &mut self.stations[s as usize];
        st.account(now);
        st.queue.push_back(part);
        if let Some(r) = self.recorder() {
            r.entered(s);
        }
        self.try_start(cx, s);
    }

    /// A vehicle delivered `order`: the part goes into the buffer slot reserved for it
    /// when it set off.
    pub fn deliver_by_agv(&mut self, cx: &mut Cx<'_, impl Logistics>, order: TransportOrder) {
        self.stations[order.station as usize].reserved -= 1;
        self.enter_station(cx, order.station, order.part);
    }

    /// A truck delivered `part` for `station`: it goes into the buffer, or waits for room
    /// behind the parts delivered before it.
    pub fn deliver_by_truck(&mut self, cx: &mut Cx<'_, impl Logistics>, station: StationIdx, part: PartId) {
        self.inbound[station as usize].push_back(part);
        self.move_inbound(cx, station);
    }

    /// Moves parts delivered by truck into their station's buffer while it has room.
    fn move_inbound(&mut self, cx: &mut Cx<'_, impl Logistics>, station: StationIdx) {
        while let Some(&part) = self.inbound[station as usize].front() {
            if !self.stations[station as usize].has_room() {
                let stamp = self.stamp();
                self.inbound_stamp[station as usize] = stamp;
                self.stations[station as usize].waiters.push_back((Holder::Inbound(station), stamp));
                break;
            }
            self.inbound[station as usize].pop_front();
            self.enter_station(cx, station, part);
        }
    }

    /// The front part of a conveyor is due at its end.
    pub fn on_conveyor_end(&mut self, cx: &mut Cx<'_, impl Logistics>, conveyor: u32) {
        if !self.conveyors[conveyor as usize].head_blocked {
            self.move_conveyor(cx, conveyor);
        }
    }

    /// Moves parts that reached the conveyor's end into the next station while it has room.
    fn move_conveyor(&mut self, cx: &mut Cx<'_, impl Logistics>, conveyor: u32) {
        let to = cx.model.conveyors[conveyor as usize].to;
        let mut moved = false;
        loop {
            let conv = &self.conveyors[conveyor as usize];
            let Some(&(part, arrive)) = conv.items.front() else {
                break;
            };
            if arrive > cx.agenda.now() {
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
            self.enter(cx, Place::Station(to), part);
        }
        if moved && !self.conveyors[conveyor as usize].waiters.is_empty() {
            cx.agenda.follow_up(Followup::RoomOnConveyor(conveyor));
        }
    }

    /// A part completed its routing at station `at` (None: it had no step at all). With
    /// trucks, it is shipped from that factory's dock to the hub. Always inlined: it
    /// runs once per part, and as a call its register saves cost ~15 instructions.
    #[inline(always)]
    fn finish(&mut self, cx: &mut Cx<'_, impl Logistics>, part: PartId, at: Option<StationIdx>) {
        let p = self.parts[part as usize];
        let sink = cx.model.products[p.product as usize].sink;
        self.totals.part_finished(cx.agenda.now(), p.product as usize, p.created, p.due, sink);
        if let Some(watch) = &mut self.watch
            && p.due != crate::time::Micros::MAX
            && p.created <= watch.since
        {
            watch.finished.push((part, p.created, cx.agenda.now()));
        }
        if let Some(order) = p.rush_order {
            self.rush_order_mut(order).unit_finished(cx.agenda.now());
        }
        self.free_parts.push(part);
        if let Some((dock, hub)) = at.and_then(|s| cx.model.shipping_lane(s)) {
            cx.logistics.haul(cx.model, cx.agenda, dock, hub, Cargo::Shipment { units: 1 });
        }
    }

    /// A part was scrapped at a station.
    pub(super) fn scrap(&mut self, now: crate::time::Micros, part: PartId) {
        let p = self.parts[part as usize];
        self.totals.part_scrapped(now, p.product as usize);
        if let Some(order) = p.rush_order {
            self.rush_order_mut(order).unit_scrapped(now);
        }
        self.free_parts.push(part);
    }

    /// Room freed in `station`'s buffer: lets waiting holders pass their parts on,
    /// oldest first.
    pub fn wake_station(&mut self, cx: &mut Cx<'_, impl Logistics>, station: StationIdx) {
        let s = station as usize;
        for _ in 0..self.stations[s].waiters.len() {
            let st = &mut self.stations[s];
            if !st.has_room() {
                break;
            }
            let Some((holder, stamp)) = st.waiters.pop_front() else { break };
            self.unblock(cx, holder, stamp);
        }
        if self.stations[s].waiters.len() >= COMPACT_AT {
            let mut waiters = std::mem::take(&mut self.stations[s].waiters);
            waiters.retain(|&(holder, stamp)| self.holder_waiting(holder, stamp));
            self.stations[s].waiters = waiters;
        }
    }

    /// Room freed on `conveyor`: lets waiting holders put their parts on, oldest first.
    pub fn wake_conveyor(&mut self, cx: &mut Cx<'_, impl Logistics>, conveyor: u32) {
        let c = conveyor as usize;
        for _ in 0..self.conveyors[c].waiters.len() {
            if !self.has_room(cx.model, Place::Conveyor(conveyor)) {
                break;
            }
            let Some((holder, stamp)) = self.conveyors[c].waiters.pop_front() else { break };
            self.unblock(cx, holder, stamp);
        }
        if self.conveyors[c].waiters.len() >= COMPACT_AT {
            let mut waiters = std::mem::take(&mut self.conveyors[c].waiters);
            waiters.retain(|&(holder, stamp)| self.holder_waiting(holder, stamp));
            self.conveyors[c].waiters = waiters;
        }
    }

    /// Whether `holder` still waits in the blocking episode `stamp` (stale entries from
    /// earlier episodes stay in waiter lists until compacted).
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

    /// Lets a waiting holder try again to pass its parts on.
    fn unblock(&mut self, cx: &mut Cx<'_, impl Logistics>, holder: Holder, stamp: u64) {
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
                if self.dispatch(cx, part, holder) {
                    let now = cx.agenda.now();
                    let st = &mut self.stations[station as usize];
                    st.account(now);
                    st.servers[server as usize].state = ServerState::Idle;
                    st.n_blocked -= 1;
                    self.update_active(station, now);
                    self.try_start(cx, station);
                }
            }
            Holder::Conveyor(c) => {
                self.conveyors[c as usize].head_blocked = false;
                self.move_conveyor(cx, c);
            }
            Holder::Source(source) => {
                while let Some(&part) = self.sources[source as usize].backlog.front() {
                    if !self.release(cx, source, part) {
                        break;
                    }
                    self.sources[source as usize].backlog.pop_front();
                }
            }
            Holder::Inbound(station) => self.move_inbound(cx, station),
        }
    }

    /// Material arrived: a source waiting for it releases what it holds.
    pub fn retry_source(&mut self, cx: &mut Cx<'_, impl Logistics>, source: u32) {
        let stamp = self.sources[source as usize].stamp;
        self.unblock(cx, Holder::Source(source), stamp);
    }
}

/// Waiter lists this long drop their stale entries, so that a place that stays full for a
/// long time does not collect entries without bound.
const COMPACT_AT: usize = 64;

/// Where a part leaving `from` (None: a source) for `target` goes first, as the model
/// routes it.
#[inline]
fn place_towards(model: &Model, from: Option<StationIdx>, target: StationIdx, carry: Option<u32>) -> Place {
    let Some(from) = from else { return Place::Station(target) };
    match model.route(from, target, carry) {
        Route::Conveyor(c) => Place::Conveyor(c),
        Route::Agv { fleet, from, to } => Place::Agv { fleet, from, to, target },
        Route::Truck { from, to } => Place::Truck { from, to, target },
        Route::Direct => Place::Station(target),
    }
}
