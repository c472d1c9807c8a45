//! An opt-in recorder of processing cycles, for a plant emulator that publishes what the
//! stations did (`twin plant`): every completed cycle with its product and its processing
//! time, and every part that entered a station, counted per station.
//!
//! Off by default, so that batch runs pay one branch per cycle and nothing else. Not part
//! of the state: snapshots do not carry it (a restored run records nothing until it is
//! switched on again), and it never influences the run.
//!
//! Bounded: at most [`CYCLES_KEPT`] records wait to be drained; beyond that the newest are
//! dropped and counted ([`crate::Sim::cycles_dropped`]). A caller that drains after every
//! step of simulated time never loses any.

use super::Flow;
use crate::model::{ProductIdx, StationIdx};
use crate::sim::Sim;
use crate::time::Micros;

/// Most cycle records held between two drains.
pub const CYCLES_KEPT: usize = 1 << 16;

/// One processing cycle a station completed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CycleRecord {
    pub station: StationIdx,
    pub product: ProductIdx,
    /// When the processing finished.
    pub finished: Micros,
    /// The processing time of the part: setups, pauses while the station was down or
    /// off shift, waiting and blocking excluded.
    pub duration: Micros,
}

/// What the recorder holds while it is on.
#[derive(Clone, Debug, Default)]
pub(crate) struct CycleRecorder {
    cycles: Vec<CycleRecord>,
    dropped: u64,
    /// Processing time drawn for the part each server works on, by station and server.
    working: Vec<Vec<Micros>>,
    /// Parts that entered each station since recording started.
    entered: Vec<u64>,
    /// Cycles each station completed since recording started (scrapped parts included).
    completed: Vec<u64>,
}

impl CycleRecorder {
    fn new(stations: usize) -> CycleRecorder {
        CycleRecorder {
            working: vec![Vec::new(); stations],
            entered: vec![0; stations],
            completed: vec![0; stations],
            ..CycleRecorder::default()
        }
    }

    /// Server `server` of `station` starts processing for `duration`.
    pub(super) fn started(&mut self, station: StationIdx, server: u32, duration: Micros) {
        let servers = &mut self.working[station as usize];
        if servers.len() <= server as usize {
            servers.resize(server as usize + 1, 0);
        }
        servers[server as usize] = duration;
    }

    /// Server `server` of `station` finished processing a part of `product` at `now`.
    pub(super) fn finished(&mut self, station: StationIdx, server: u32, product: ProductIdx, now: Micros) {
        let s = station as usize;
        self.completed[s] += 1;
        let duration = self.working[s].get(server as usize).copied().unwrap_or(0);
        if self.cycles.len() < CYCLES_KEPT {
            self.cycles.push(CycleRecord { station, product, finished: now, duration });
        } else {
            self.dropped += 1;
        }
    }

    /// A part entered `station` (its buffer, or straight into service from a saturated
    /// source).
    pub(super) fn entered(&mut self, station: StationIdx) {
        self.entered[station as usize] += 1;
    }
}

impl Flow {
    pub(crate) fn recorder(&mut self) -> Option<&mut CycleRecorder> {
        self.recorder.as_deref_mut()
    }
}

impl Sim {
    /// Switches the cycle recorder on (from now, with empty counts) or off (dropping what
    /// it held). See the module docs.
    pub fn record_cycles(&mut self, on: bool) {
        self.flow.recorder = on.then(|| Box::new(CycleRecorder::new(self.model.stations.len())));
    }

    /// Moves the recorded cycles, in completion order, to the end of `out`.
    pub fn drain_cycles(&mut self, out: &mut Vec<CycleRecord>) {
        if let Some(r) = self.flow.recorder.as_deref_mut() {
            out.append(&mut r.cycles);
        }
    }

    /// Cycles not kept because [`CYCLES_KEPT`] were waiting to be drained.
    pub fn cycles_dropped(&self) -> u64 {
        self.flow.recorder.as_deref().map_or(0, |r| r.dropped)
    }

    /// Parts that entered `station` and cycles it completed since recording started
    /// (scrapped parts count as completed cycles); `None` while the recorder is off.
    pub fn recorded_counts(&self, station: StationIdx) -> Option<(u64, u64)> {
        let r = self.flow.recorder.as_deref()?;
        Some((*r.entered.get(station as usize)?, *r.completed.get(station as usize)?))
    }
}
