//! Failure and repair behaviour: the plant's times between failures and repair times
//! against the model's MTBF and repair distribution, by the PIT-based CUSUM of
//! `cusum.rs` with [`FAILURE_DESIGN`](super::cusum::FAILURE_DESIGN).
//!
//! **What is observed.** On a live station, the plant's down and up transitions reach the
//! core as `BreakDown { duration: None }` and `Repair` (the ingest's mapping of the
//! `State` metric); the monitor sees those that change the twin (an `AlreadyDown` or
//! `NotDown` refusal changes nothing, here as everywhere).
//!
//! **Times between failures.** The model draws a station's next failure `Exp(MTBF)` after
//! each repair, in calendar time, so failures form a Poisson process of rate `1 / MTBF`
//! over the time the station is up. The plant is only seen while its station is up,
//! live and on shift (a plant reports `off_shift` over `down`), so the test takes the
//! *exposure*: up, live, on-shift time. A failure counts when it is reported on shift
//! after some exposure; one reported at the instant a shift or the watch begins happened
//! while unobserved and does not count (its exposure carries on). Exposure between
//! counted failures is then exactly `Exp(MTBF)` under the model (memorylessness), and
//! each such exposure is one observation.
//!
//! **Repair times.** From a counted failure to the next up transition, taken only when
//! the whole repair was on shift (a shift end cuts the plant's report short).
//!
//! The ingest hands a station whose state the plant reports to the plant
//! (`Command::FailuresFrom`): the twin then draws no failures of its own for it, so every
//! plant failure and repair reaches this monitor. (A station left to the model, e.g. one
//! fed counts only, may still be down by its own draw when the plant reports a failure,
//! which is then refused (`AlreadyDown`) and missed: the next observed time between
//! failures gets longer, never shorter.)

use serde::{Deserialize, Serialize};

use super::cusum::{Detector, FAILURE_DESIGN, Verdict};
use crate::dist::Sampler;
use crate::model::{Model, StationIdx};
use crate::time::Micros;

/// What the monitor knows of the plant station's up / down phase.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
enum Phase {
    /// Not watched: the station is not live.
    #[default]
    Unwatched,
    /// Up since this time (or since the watch began).
    Up { since: Micros },
    /// Down since this time; `counted` when the failure was one of the test's.
    Down { since: Micros, counted: bool },
}

/// Failure and repair tests of one station.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(super) struct FailureWatch {
    phase: Phase,
    /// Exposure since the last counted failure, before the current up phase.
    exposure: Micros,
    /// Time-between-failures and repair-time tests (created at their first observation).
    between: Option<Detector>,
    repair: Option<Detector>,
}

/// Which of the two tests a verdict comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Test {
    Between,
    Repair,
}

/// On-shift time of `station` in `[from, to)`.
fn on_shift(model: &Model, station: StationIdx, from: Micros, to: Micros) -> Micros {
    let Some(c) = model.stations[station as usize].calendar else {
        return to.saturating_sub(from);
    };
    let calendar = &model.calendars[c as usize];
    let (mut t, mut total) = (from, 0);
    while t < to {
        let (on, next) = calendar.state_at(t);
        let end = next.clamp(t + 1, to);
        if on {
            total += end - t;
        }
        t = end;
    }
    total
}

/// Whether `station` is on shift at `t`.
fn on_shift_at(model: &Model, station: StationIdx, t: Micros) -> bool {
    model.stations[station as usize].calendar.is_none_or(|c| model.calendars[c as usize].state_at(t).0)
}

impl FailureWatch {
    /// The station became live: watch it from now, down if the twin shows it down.
    pub(super) fn watch(&mut self, now: Micros, down: bool) {
        if matches!(self.phase, Phase::Unwatched) {
            self.phase =
                if down { Phase::Down { since: now, counted: false } } else { Phase::Up { since: now } };
        }
    }

    /// The station's source went stale: keep the exposure, stop watching.
    pub(super) fn unwatch(&mut self, model: &Model, station: StationIdx, now: Micros) {
        if let Phase::Up { since } = self.phase {
            self.exposure += on_shift(model, station, since, now);
        }
        self.phase = Phase::Unwatched;
    }

    /// The plant's station went down now. Returns the verdicts of the time-between-
    /// failures test (none when the failure does not count or the model has no failures
    /// at the station).
    pub(super) fn down(&mut self, model: &Model, station: StationIdx, now: Micros) -> Vec<(Test, Verdict)> {
        let Phase::Up { since } = self.phase else {
            return Vec::new();
        };
        let exposure = self.exposure + on_shift(model, station, since, now);
        let counted = now > since && now > 0 && on_shift_at(model, station, now - 1);
        self.phase = Phase::Down { since: now, counted };
        let Some(failures) = &model.stations[station as usize].failures else {
            return Vec::new();
        };
        if !counted {
            self.exposure = exposure;
            return Vec::new();
        }
        self.exposure = 0;
        let sampler = Sampler::Exp(failures.mtbf);
        let detector = self.between.get_or_insert_with(|| Detector::new(&sampler, FAILURE_DESIGN));
        detector.observe(&sampler, exposure as f64).into_iter().map(|v| (Test::Between, v)).collect()
    }

    /// The plant's station came up now. Returns the verdicts of the repair-time test.
    pub(super) fn up(&mut self, model: &Model, station: StationIdx, now: Micros) -> Vec<(Test, Verdict)> {
        let Phase::Down { since, counted } = self.phase else {
            // Up while up: the twin was down by its own draw; the plant's exposure goes on.
            return Vec::new();
        };
        self.phase = Phase::Up { since: now };
        let Some(failures) = &model.stations[station as usize].failures else {
            return Vec::new();
        };
        let whole = on_shift_at(model, station, now) && on_shift(model, station, since, now) == now - since;
        if !(counted && whole) {
            return Vec::new();
        }
        let sampler = &failures.repair;
        let detector = self.repair.get_or_insert_with(|| Detector::new(sampler, FAILURE_DESIGN));
        detector.observe(sampler, (now - since) as f64).into_iter().map(|v| (Test::Repair, v)).collect()
    }

    /// Records the id of the alarm a test's verdict raised.
    pub(super) fn opened(&mut self, test: Test, direction: super::Direction, alarm: u64) {
        let detector = match test {
            Test::Between => self.between.as_mut(),
            Test::Repair => self.repair.as_mut(),
        };
        if let Some(d) = detector {
            d.opened(direction, alarm);
        }
    }

    /// Failures counted and repairs timed so far.
    pub(super) fn counts(&self) -> (u64, u64) {
        (
            self.between.as_ref().map_or(0, Detector::observations),
            self.repair.as_ref().map_or(0, Detector::observations),
        )
    }
}
