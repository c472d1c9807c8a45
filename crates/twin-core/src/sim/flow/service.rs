//! Work at the stations: idle servers take the next part (or raw material from a
//! saturated source) once they have their crew, change over when the product changes,
//! process, scrap or pass the part on; failures and shift ends pause work in progress,
//! which resumes where it stopped (preempt-resume).

use rand::RngExt;
use rand_distr::{Distribution, Exp1};

use super::{
    Cx, FailureSource, Flow, Holder, Logistics, Repair, RushOrder, RushOrderId, Server, ServerState,
    ServersBusy, Station,
};
use crate::model::{Model, StationIdx};
use crate::sim::agenda::{Agenda, Event, Followup};
use crate::sim::handoff::{MaterialWaiter, PartId};
use crate::time::{MAX_SPAN, Micros};

impl Flow {
    /// Starts work on every idle server of `station` that can get a part.
    #[inline]
    pub(crate) fn try_start(&mut self, cx: &mut Cx<'_, impl Logistics>, station: StationIdx) {
        let st = &self.stations[station as usize];
        // Stopped, or no server idle (every server works, sets up or blocks): the common
        // case of a part arriving at a busy station, decided without a call.
        if st.stopped() || (st.n_work + st.n_setup + st.n_blocked) as usize == st.servers.len() {
            return;
        }
        self.start_idle_servers(cx, station);
    }

    #[inline(never)]
    fn start_idle_servers(&mut self, cx: &mut Cx<'_, impl Logistics>, station: StationIdx) {
        let s = station as usize;
        for k in 0..self.stations[s].servers.len() {
            if !matches!(self.stations[s].servers[k].state, ServerState::Idle) {
                continue;
            }
            // Work for this server: a waiting part, or raw material from a saturated source.
            let saturated = if self.stations[s].queue.is_empty() {
                let Some(&source) = cx.model.stations[s].saturated_by.first() else { break };
                let product = cx.model.sources[source as usize].mix[0].1;
                if !cx.logistics.materials_available(cx.model, product) {
                    cx.logistics.wait_for_material(cx.model, MaterialWaiter::Station(station), product);
                    break;
                }
                Some((source, product))
            } else {
                None
            };
            if cx.model.stations[s].crew > 0 && !cx.logistics.seize_crew(cx.model, cx.agenda.now(), station) {
                break;
            }
            let now = cx.agenda.now();
            let st = &mut self.stations[s];
            st.account(now);
            let part = if let Some(part) = self.take_waiting(cx.agenda, station) {
                part
            } else if let Some((source, product)) = saturated {
                cx.logistics.consume_materials(cx.model, cx.agenda, product);
                let part = self.create_part(cx.model, now, source, product);
                self.parts[part as usize].materials_taken = true;
                self.stations[s].started += 1;
                if let Some(r) = self.recorder() {
                    r.entered(station);
                }
                part
            } else {
                break;
            };
            self.begin(cx.model, cx.agenda, station, k as u32, part);
        }
    }

    /// Server `server` of `station` starts on `part`: a changeover first when the product
    /// differs from its last one, else the processing. Opens the station's active
    /// period when this makes it active.
    #[inline(always)]
    fn begin(&mut self, model: &Model, agenda: &mut Agenda, station: StationIdx, server: u32, part: PartId) {
        self.start_job(model, agenda, station, server, part);
        self.update_active(station, agenda.now());
    }

    /// [`Flow::begin`] out of line, for the rare changeover's end.
    #[inline(never)]
    fn begin_after_setup(
        &mut self,
        model: &Model,
        agenda: &mut Agenda,
        station: StationIdx,
        server: u32,
        part: PartId,
    ) {
        self.begin(model, agenda, station, server, part);
    }

    /// [`Flow::begin`] without the active-period check, for callers that make it once
    /// they are done.
    ///
    /// Runs once per job: the flow is borrowed apart once and each table indexed once.
    #[inline(always)]
    fn start_job(
        &mut self,
        model: &Model,
        agenda: &mut Agenda,
        station: StationIdx,
        server: u32,
        part: PartId,
    ) {
        let s = station as usize;
        let now = agenda.now();
        let Flow { parts, stations, recorder, .. } = self;
        let p = &parts[part as usize];
        let (product, step) = (p.product, p.step as usize);
        let model_station = &model.stations[s];
        // Every caller has brought the station's integrals up to `now` already.
        let st = &mut stations[s];
        debug_assert_eq!(st.last, now);
        let srv = &mut st.servers[server as usize];
        let setup_time =
            model_station.setup.as_ref().filter(|_| srv.last_product.is_some_and(|last| last != product));
        let (setup, duration) = if let Some(sampler) = setup_time {
            let rng = st.setup_rng.as_mut().expect("created with the setup");
            st.n_setup += 1;
            (true, sampler.sample(rng))
        } else {
            srv.last_product = Some(product);
            st.n_work += 1;
            let duration = model.products[product as usize].steps[step].time.sample(&mut st.rng);
            if let Some(r) = recorder.as_deref_mut() {
                r.started(station, server, duration);
            }
            (false, duration)
        };
        let srv = &mut st.servers[server as usize];
        srv.state = ServerState::Work { part, setup, t: now + duration };
        let generation = srv.generation;
        agenda.schedule(now + duration, Event::Done { station, server, generation });
    }

    /// A server finished its changeover (it starts processing) or its processing (the
    /// part is scrapped or passed on, or the server blocks holding it).
    pub fn on_done(
        &mut self,
        cx: &mut Cx<'_, impl Logistics>,
        station: StationIdx,
        server: u32,
        generation: u32,
    ) -> bool {
        let s = station as usize;
        let now = cx.agenda.now();
        let model = cx.model;
        // Each table indexed once (this runs for every job).
        let model_station = &model.stations[s];
        let Flow { stations, parts, recorder, .. } = self;
        let st = &mut stations[s];
        // A server removed by `set_servers` leaves no valid event behind.
        let Some(srv) = st.servers.get_mut(server as usize) else { return false };
        if srv.generation != generation {
            return false;
        }
        let ServerState::Work { part, setup, .. } = srv.state else {
            return false;
        };
        // Idle until it takes its next job (or blocks holding the part); the integrals
        // count servers per state from `n_work` and the like, not from this.
        srv.state = ServerState::Idle;
        if setup {
            // Changeover finished: start processing the part it was for.
            srv.last_product = Some(parts[part as usize].product);
            st.account(now);
            st.n_setup -= 1;
            self.begin_after_setup(model, cx.agenda, station, server, part);
            return true;
        }
        st.account(now);
        st.n_work -= 1;
        st.completed += 1;
        if let Some(r) = recorder.as_deref_mut() {
            r.finished(station, server, parts[part as usize].product, now);
        }
        let scrapped = st.scrap_rng.as_mut().is_some_and(|rng| rng.random::<f64>() < model_station.scrap);
        let mut freed = true;
        if scrapped {
            st.scrapped += 1;
            self.scrap(now, part);
        } else {
            parts[part as usize].step += 1;
            if !self.dispatch(cx, part, Holder::Server { station, server }) {
                let st = &mut self.stations[s];
                st.account(now);
                st.servers[server as usize].state = ServerState::Blocked { part };
                st.n_blocked += 1;
                freed = false;
            }
        }
        if model_station.crew > 0 {
            cx.logistics.release_crew(model, cx.agenda, station);
        } else if freed && self.take_next(cx, station, server) {
            // The station's counts of working, setting-up, blocked and idle servers are
            // what they were before this event, so its active period has not changed.
            debug_assert_eq!(self.stations[s].is_active(), self.bottlenecks.is_open(s));
            return true;
        }
        self.try_start(cx, station);
        // Once, after the next job has begun: a period that ends and restarts at the
        // same moment is one period, so opening and closing it in between is wasted work.
        self.update_active(station, now);
        true
    }

    /// The common case of [`Flow::try_start`] after server `server` came free at a
    /// station that needs no crew: when it is the station's only idle server and a part
    /// waits, it takes the first part, which is what the scan over the servers would
    /// choose. Returns false (nothing changed) otherwise. The station's active period
    /// stays as it is: it is active exactly when it was before the job ended.
    #[inline(always)]
    fn take_next(&mut self, cx: &mut Cx<'_, impl Logistics>, station: StationIdx, server: u32) -> bool {
        let now = cx.agenda.now();
        let st = &mut self.stations[station as usize];
        // The server is checked too: a part routed back to this station may have taken
        // it already (then the only idle server is another one).
        if st.stopped()
            || (st.n_work + st.n_setup + st.n_blocked) as usize + 1 != st.servers.len()
            || !matches!(st.servers[server as usize].state, ServerState::Idle)
        {
            return false;
        }
        if st.queue.is_empty() {
            return false;
        }
        st.account(now);
        let part = self.take_waiting(cx.agenda, station).expect("checked above");
        // No active-period check: see above.
        self.start_job(cx.model, cx.agenda, station, server, part);
        true
    }

    /// The first part waiting at `station`, taken off its queue for a server about to
    /// start on it (the caller has brought the station's integrals up to now); a part
    /// held upstream for room here is woken.
    #[inline(always)]
    fn take_waiting(&mut self, agenda: &mut Agenda, station: StationIdx) -> Option<PartId> {
        let st = &mut self.stations[station as usize];
        let part = st.queue.pop_front()?;
        st.started += 1;
        st.wait_sum += u128::from(agenda.now() - self.parts[part as usize].since);
        if !st.waiters.is_empty() {
            agenda.follow_up(Followup::RoomAtStation(station));
        }
        Some(part)
    }

    /// Schedules the next failure of `station` (if it has failures).
    pub(super) fn schedule_failure(&mut self, model: &Model, agenda: &mut Agenda, station: StationIdx) {
        let s = station as usize;
        let Some(failures) = &model.stations[s].failures else {
            return;
        };
        let st = &mut self.stations[s];
        if st.failure_source == FailureSource::Plant {
            return;
        }
        let rng = st.failure_rng.as_mut().expect("created with the failures");
        let e: f64 = Exp1.sample(rng);
        let ttf = ((e * failures.mtbf + 0.5) as Micros).clamp(1, MAX_SPAN);
        let generation = st.failure_generation;
        agenda.schedule(agenda.now() + ttf, Event::Fail { station, generation });
    }

    /// A scheduled failure is due.
    pub fn on_fail(&mut self, cx: &mut Cx<'_, impl Logistics>, station: StationIdx, generation: u32) -> bool {
        if self.stations[station as usize].failure_generation != generation {
            return false;
        }
        self.fail(cx, station, Repair::Drawn);
        true
    }

    /// A scheduled repair is due.
    pub fn on_repair(
        &mut self,
        cx: &mut Cx<'_, impl Logistics>,
        station: StationIdx,
        generation: u32,
    ) -> bool {
        if self.stations[station as usize].failure_generation != generation {
            return false;
        }
        self.repair(cx, station);
        true
    }

    /// Breaks `station` down now; work in progress pauses until the repair.
    pub(crate) fn fail(&mut self, cx: &mut Cx<'_, impl Logistics>, station: StationIdx, repair: Repair) {
        let s = station as usize;
        self.stations[s].failure_generation += 1;
        let repair = match repair {
            Repair::After(d) => Some(d),
            Repair::ByCommand => None,
            Repair::Drawn => {
                let failures = cx.model.stations[s].failures.as_ref().expect("scheduled with failures");
                let rng = self.stations[s].failure_rng.as_mut().expect("created with the failures");
                Some(failures.repair.sample(rng))
            }
        };
        self.stations[s].awaiting_repair = repair.is_none();
        self.set_stopped(cx, station, |st| st.down = true);
        if let Some(repair) = repair {
            let generation = self.stations[s].failure_generation;
            cx.agenda.schedule(cx.agenda.now() + repair, Event::Repair { station, generation });
        }
    }

    /// Repairs `station` now; its next failure is drawn from here.
    pub(crate) fn repair(&mut self, cx: &mut Cx<'_, impl Logistics>, station: StationIdx) {
        self.stations[station as usize].failure_generation += 1;
        self.stations[station as usize].awaiting_repair = false;
        self.set_stopped(cx, station, |st| st.down = false);
        self.schedule_failure(cx.model, cx.agenda, station);
    }

    /// Hands a station's failures to the plant or back to the model (see
    /// [`FailureSource`]). To the plant: the pending draw (next failure, or the repair of
    /// a drawn failure) is cancelled, and a station down now stays down until the plant
    /// reports it up. Back to the model: an up station draws its next failure from now
    /// (exponential, so no time is owed), and one down with no repair scheduled draws a
    /// repair time from now (without failures in the scene it stays down until a
    /// command repairs it). Returns whether anything changed.
    pub(crate) fn set_failure_source(
        &mut self,
        model: &Model,
        agenda: &mut Agenda,
        station: StationIdx,
        source: FailureSource,
    ) -> bool {
        let st = &mut self.stations[station as usize];
        if st.failure_source == source {
            return false;
        }
        st.failure_source = source;
        match source {
            FailureSource::Plant => {
                st.failure_generation += 1;
                if st.down {
                    st.awaiting_repair = true;
                }
            }
            FailureSource::Model if !st.down => self.schedule_failure(model, agenda, station),
            FailureSource::Model => {
                let (Some(failures), true) = (&model.stations[station as usize].failures, st.awaiting_repair)
                else {
                    return true;
                };
                let rng = st.failure_rng.as_mut().expect("created with the failures");
                let repair = failures.repair.sample(rng);
                st.awaiting_repair = false;
                agenda.schedule(
                    agenda.now() + repair,
                    Event::Repair { station, generation: st.failure_generation },
                );
            }
        }
        true
    }

    /// A shift of `calendar` starts (`on`) or ends for the stations that follow it.
    pub fn set_shift(&mut self, cx: &mut Cx<'_, impl Logistics>, calendar: u32, on: bool) {
        for i in 0..self.calendar_stations[calendar as usize].len() {
            let station = self.calendar_stations[calendar as usize][i];
            self.set_stopped(cx, station, |st| st.off_shift = !on);
        }
    }

    /// Changes the down / off-shift flags and pauses or resumes work accordingly.
    fn set_stopped(
        &mut self,
        cx: &mut Cx<'_, impl Logistics>,
        station: StationIdx,
        change: impl FnOnce(&mut Station),
    ) {
        let now = cx.agenda.now();
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
        self.update_active(station, now);
        for (server, t, generation) in resumed {
            cx.agenda.schedule(t, Event::Done { station, server, generation });
        }
        if was && !is {
            self.try_start(cx, station);
        }
    }

    /// Sets a station's input buffer capacity (None is unlimited); waiting holders get a
    /// retry. Lowering it below the current content keeps the parts already there.
    pub(crate) fn set_buffer(&mut self, agenda: &mut Agenda, station: StationIdx, capacity: Option<u32>) {
        self.stations[station as usize].buffer = capacity;
        agenda.follow_up(Followup::RoomAtStation(station));
    }

    /// How many servers at the end of `station`'s list stand idle: only those can be
    /// taken away.
    fn idle_tail(&self, station: StationIdx) -> u32 {
        let st = &self.stations[station as usize];
        st.servers.iter().rev().take_while(|v| matches!(v.state, ServerState::Idle)).count() as u32
    }

    /// Sets the number of parallel servers of a station. Servers can always be added;
    /// only idle servers at the end can be taken away, so that no part is lost. Changes
    /// nothing when refused.
    pub(crate) fn set_servers(
        &mut self,
        cx: &mut Cx<'_, impl Logistics>,
        station: StationIdx,
        servers: u32,
    ) -> Result<(), ServersBusy> {
        let current = self.stations[station as usize].servers.len() as u32;
        let idle_tail = self.idle_tail(station);
        if servers < current && current - servers > idle_tail {
            return Err(ServersBusy { idle_tail, remove: current - servers });
        }
        let now = cx.agenda.now();
        let st = &mut self.stations[station as usize];
        st.account(now);
        if servers > current {
            st.servers.resize_with(servers as usize, Server::idle);
        } else {
            st.servers.truncate(servers as usize);
        }
        self.update_active(station, now);
        self.try_start(cx, station);
        Ok(())
    }

    /// Releases `quantity` parts of `product` now, ahead of the queue at the first
    /// station of their routing (a rush order), and tracks them as one order.
    pub(crate) fn add_rush_order(
        &mut self,
        cx: &mut Cx<'_, impl Logistics>,
        product: u16,
        quantity: u32,
        due: Micros,
    ) -> RushOrderId {
        self.forget_old_rush_orders();
        let index = self.rush_base + self.rush_orders.len() as u32;
        let id = RushOrderId(index + 1);
        self.rush_orders.push(RushOrder {
            id,
            product,
            quantity,
            finished: 0,
            scrapped: 0,
            released_at: cx.agenda.now(),
            due: (due != Micros::MAX).then_some(due),
            completed_at: None,
        });
        for _ in 0..quantity {
            let now = cx.agenda.now();
            let part = self.create_part(cx.model, now, u32::MAX, product);
            self.parts[part as usize].rush_order = Some(index);
            self.parts[part as usize].due = due;
            let first = cx.model.products[product as usize].steps[0].at[0];
            // Rush parts jump the queue: they go to the front of the first station's buffer,
            // even past its capacity, because a rush order is released by hand.
            let st = &mut self.stations[first as usize];
            st.account(now);
            self.parts[part as usize].since = now;
            st.queue.push_front(part);
            if let Some(r) = self.recorder() {
                r.entered(first);
            }
            self.try_start(cx, first);
        }
        id
    }
}
