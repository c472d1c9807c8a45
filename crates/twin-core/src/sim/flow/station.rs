//! A station's bookkeeping: room in its buffer, integer time integrals per state and of
//! its queue, and whether it is active for the bottleneck analysis.

use super::{StateTimes, Station, StationState};
use crate::time::Micros;

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

impl Station {
    /// Down or off shift: no work starts and work in progress is paused.
    #[inline]
    pub(super) fn stopped(&self) -> bool {
        self.down || self.off_shift
    }

    /// Whether the buffer takes one more part, counting the slots reserved for parts on
    /// their way.
    #[inline]
    pub(super) fn has_room(&self) -> bool {
        self.buffer.is_none_or(|cap| (self.queue.len() as u64 + u64::from(self.reserved)) < u64::from(cap))
    }

    /// Adds the time since the last change to the state and queue integrals.
    #[inline]
    pub(super) fn account(&mut self, now: Micros) {
        let dt = now - self.last;
        if dt == 0 {
            return;
        }
        self.last = now;
        let counts = self.counts();
        integrate(counts, dt, &mut self.times, &mut self.queue_area);
    }

    /// State and queue integrals up to `now`, without changing anything.
    pub(super) fn integrals_at(&self, now: Micros) -> (StateTimes, u128) {
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
    #[inline]
    pub(super) fn is_active(&self) -> bool {
        let starved = self.servers.len() as u32 - self.n_work - self.n_setup - self.n_blocked;
        !self.off_shift && (self.down || (self.n_work + self.n_setup > 0 && starved == 0))
    }

    /// The state that best describes the whole station now, for display.
    pub(super) fn state(&self) -> StationState {
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
