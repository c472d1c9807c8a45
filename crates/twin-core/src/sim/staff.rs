//! Worker pools: a station with a crew seizes that many workers of its pool for each
//! job and gives them back when the job ends; a pool follows its shift calendar.
//!
//! Owns: who is busy, who is present, which stations wait for a crew, and the
//! worker-time integrals. Knows nothing of parts or buffers: a station that could not
//! get its crew is handed back (by [`Staff::take_waiting`]) for the flow to retry.

use std::collections::VecDeque;

use crate::model::{Model, StationIdx};
use crate::sim::agenda::{Agenda, Followup};
use crate::time::Micros;

/// All worker pools of a run.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct Staff {
    /// One per `Model::staff` pool.
    pools: Vec<Pool>,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct Pool {
    /// Workers at work now.
    busy: u32,
    /// Whether the pool is on shift.
    present: bool,
    /// Stations waiting for a crew, oldest first, each once.
    waiting: VecDeque<StationIdx>,
    /// Worker-microseconds present, and busy, up to `last`.
    present_area: u128,
    busy_area: u128,
    last: Micros,
}

impl Pool {
    /// Integrates presence and work up to `now`.
    fn touch(&mut self, now: Micros, size: u32) {
        let dt = u128::from(now - self.last);
        if self.present {
            self.present_area += dt * u128::from(size);
        }
        self.busy_area += dt * u128::from(self.busy);
        self.last = now;
    }
}

/// Worker time of one pool over the statistics window.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PoolTime {
    /// Worker-microseconds present.
    pub present: u128,
    /// Worker-microseconds at work.
    pub busy: u128,
}

impl Staff {
    /// Every pool idle, present when its calendar is on shift at `now`.
    pub fn new(model: &Model, now: Micros) -> Staff {
        let pools = model
            .staff
            .iter()
            .map(|s| Pool {
                busy: 0,
                present: s.calendar.is_none_or(|c| model.calendars[c as usize].state_at(now).0),
                waiting: VecDeque::new(),
                present_area: 0,
                busy_area: 0,
                last: now,
            })
            .collect();
        Staff { pools }
    }

    /// Takes `station`'s crew from its pool, or queues the station and says no.
    pub fn seize(&mut self, model: &Model, now: Micros, station: StationIdx) -> bool {
        let spec = &model.stations[station as usize];
        let (Some(pool), crew) = (spec.pool, spec.crew) else { return true };
        if crew == 0 {
            return true;
        }
        let size = model.staff[pool as usize].size;
        let p = &mut self.pools[pool as usize];
        let available = if p.present { size.saturating_sub(p.busy) } else { 0 };
        if available >= crew {
            p.touch(now, size);
            p.busy += crew;
            true
        } else {
            if !p.waiting.contains(&station) {
                p.waiting.push_back(station);
            }
            false
        }
    }

    /// Gives `station`'s crew back; stations waiting on the pool get a retry.
    pub fn release(&mut self, model: &Model, agenda: &mut Agenda, station: StationIdx) {
        let spec = &model.stations[station as usize];
        let (Some(pool), crew) = (spec.pool, spec.crew) else { return };
        if crew == 0 {
            return;
        }
        let size = model.staff[pool as usize].size;
        let p = &mut self.pools[pool as usize];
        p.touch(agenda.now(), size);
        p.busy = p.busy.saturating_sub(crew);
        if !p.waiting.is_empty() {
            agenda.follow_up(Followup::Crew(pool));
        }
    }

    /// The stations waiting on `pool`, oldest first; the pool forgets them (a station
    /// that still finds no crew queues again).
    pub fn take_waiting(&mut self, pool: u32) -> VecDeque<StationIdx> {
        std::mem::take(&mut self.pools[pool as usize].waiting)
    }

    /// A shift change of `calendar` for the pools that follow it.
    pub fn set_shift(&mut self, model: &Model, agenda: &mut Agenda, calendar: u32, on: bool) {
        for (i, spec) in model.staff.iter().enumerate() {
            if spec.calendar != Some(calendar) {
                continue;
            }
            let p = &mut self.pools[i];
            p.touch(agenda.now(), spec.size);
            p.present = on;
            if on && !p.waiting.is_empty() {
                agenda.follow_up(Followup::Crew(i as u32));
            }
        }
    }

    /// Restarts the worker-time integrals at `now` (end of warm-up).
    pub fn reset_statistics(&mut self, now: Micros) {
        for p in &mut self.pools {
            p.present_area = 0;
            p.busy_area = 0;
            p.last = now;
        }
    }

    /// Worker time of pool `pool` (of `size` workers) up to `now`.
    pub fn time(&self, pool: usize, size: u32, now: Micros) -> PoolTime {
        let p = &self.pools[pool];
        let dt = u128::from(now - p.last);
        PoolTime {
            present: p.present_area + if p.present { dt * u128::from(size) } else { 0 },
            busy: p.busy_area + dt * u128::from(p.busy),
        }
    }
}
