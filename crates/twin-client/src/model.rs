//! The client's copy of the server's world: the static layout and the live state rebuilt
//! from full and delta `StateFrame`s. Pure data, no rendering, so it is easy to test.

use bevy::prelude::*;
use twin_proto::v1::{
    AlarmSummary, BottleneckRanking, ClockState, ForecastResult, KpiSummary, Layout, StateFrame,
    StationState, StationStateKind, Timeline, VehicleState,
};

/// The layout the server sent last; `None` until the first `GetLayout` succeeded.
#[derive(Resource, Default)]
pub struct SiteLayout {
    /// The layout itself; replaced wholesale on every `GetLayout`.
    pub layout: Option<Layout>,
}

impl SiteLayout {
    /// Generation of the held layout, if any.
    pub fn generation(&self) -> Option<u64> {
        self.layout.as_ref().map(|l| l.layout_generation)
    }
}

/// Why a frame could not be applied. The caller drops the frame and, for sequence
/// problems, resubscribes so the server starts again with a full frame.
#[derive(Debug, PartialEq, Eq)]
pub enum FrameError {
    /// A delta arrived before any full frame or after a gap; its base is unknown.
    MissingBase { seq: u64, expected: u64 },
    /// The frame refers to a layout generation the client does not hold.
    LayoutMismatch { frame: u64, held: Option<u64> },
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::MissingBase { seq, expected } => {
                write!(f, "delta frame {seq} has no base (expected seq {expected})")
            }
            Self::LayoutMismatch { frame, held } => {
                write!(f, "frame layout generation {frame} differs from held {held:?}")
            }
        }
    }
}

/// Live state of the complex as of the last applied frame.
///
/// `*_rev` vectors hold, per entity, the `seq` of the frame that last changed it, so that
/// render systems can skip unchanged entities without allocating change lists.
#[derive(Resource, Default)]
pub struct LiveState {
    /// Sequence number of the last applied frame; 0 before the first.
    pub seq: u64,
    /// Layout generation of the applied frames.
    pub layout_generation: u64,
    /// Clock of the last frame.
    pub clock: ClockState,
    /// Station states, indexed by `Station.index`.
    pub stations: Vec<StationState>,
    /// Frame seq that last changed each station.
    pub station_rev: Vec<u64>,
    /// Vehicle states, indexed by `Vehicle.index`.
    pub vehicles: Vec<VehicleState>,
    /// Frame seq that last changed each vehicle.
    pub vehicle_rev: Vec<u64>,
    /// Complex KPIs of the last frame that carried them.
    pub kpis: KpiSummary,
    /// Bottleneck ranking of the last frame that carried it.
    pub bottlenecks: BottleneckRanking,
    /// Parts per hour per flow link, indexed by `FlowLink.index`.
    pub flows: Vec<f64>,
    /// Deviation alarms of the last frame that carried them (count and open ones).
    pub alarms: AlarmSummary,
    /// The server's latest periodic forecast (`twin serve --forecast-every`); `None` while
    /// the server has none (a full frame without one clears it).
    pub forecast: Option<ForecastResult>,
    /// Where the server's view stands on the timeline (live, history, branch); `None`
    /// while the server sends none (no time travel).
    pub timeline: Option<Timeline>,
    /// Number of frames applied since the client started (across reconnects).
    pub frames_applied: u64,
    /// Indices in the last frame that pointed outside the layout (bad server data).
    pub out_of_range: u64,
}

impl LiveState {
    /// Sizes the state vectors for a (new) layout and forgets the previous stream.
    pub fn reset_for(&mut self, layout: &Layout) {
        self.seq = 0;
        self.layout_generation = layout.layout_generation;
        self.stations.clear();
        self.stations.resize(layout.stations.len(), StationState::default());
        self.station_rev.clear();
        self.station_rev.resize(layout.stations.len(), 0);
        self.vehicles.clear();
        self.vehicles.resize(layout.vehicles.len(), VehicleState::default());
        self.vehicle_rev.clear();
        self.vehicle_rev.resize(layout.vehicles.len(), 0);
        self.flows.clear();
        self.flows.resize(layout.flow_links.len(), 0.0);
        self.kpis = KpiSummary::default();
        self.bottlenecks = BottleneckRanking::default();
        self.alarms = AlarmSummary::default();
        self.forecast = None;
        self.timeline = None;
    }

    /// True once a full frame for the held layout has been applied.
    pub fn has_frame(&self) -> bool {
        self.seq > 0
    }

    /// Applies a full or delta frame. Entities with indices outside the layout are
    /// skipped and counted in `out_of_range` instead of panicking.
    pub fn apply_frame(&mut self, frame: &StateFrame, held: Option<u64>) -> Result<(), FrameError> {
        if held != Some(frame.layout_generation) {
            return Err(FrameError::LayoutMismatch { frame: frame.layout_generation, held });
        }
        if !frame.full && (self.seq == 0 || frame.seq != self.seq + 1) {
            return Err(FrameError::MissingBase { seq: frame.seq, expected: self.seq + 1 });
        }
        self.out_of_range = 0;
        let seq = frame.seq.max(1);
        for s in &frame.stations {
            match self.stations.get_mut(s.index as usize) {
                Some(slot) => {
                    *slot = *s;
                    self.station_rev[s.index as usize] = seq;
                }
                None => self.out_of_range += 1,
            }
        }
        for v in &frame.vehicles {
            match self.vehicles.get_mut(v.index as usize) {
                Some(slot) => {
                    *slot = *v;
                    self.vehicle_rev[v.index as usize] = seq;
                }
                None => self.out_of_range += 1,
            }
        }
        for f in &frame.flows {
            match self.flows.get_mut(f.link_index as usize) {
                Some(slot) => *slot = f.parts_per_hour,
                None => self.out_of_range += 1,
            }
        }
        if let Some(kpis) = &frame.kpis {
            self.kpis = *kpis;
        }
        if let Some(ranking) = &frame.bottlenecks {
            // Field by field so the ranking's buffer is reused (a derived `clone_from` would
            // allocate a new one); naming every field makes a new proto field a compile error.
            let BottleneckRanking { ranking: entries, momentary_station_index, window_start_us } = ranking;
            self.bottlenecks.ranking.clone_from(entries);
            self.bottlenecks.momentary_station_index = *momentary_station_index;
            self.bottlenecks.window_start_us = *window_start_us;
        }
        if let Some(alarms) = &frame.alarms {
            self.alarms.clone_from(alarms);
        }
        if frame.full || frame.forecast.is_some() {
            // A full frame carries the forecast whenever one exists, so its absence there
            // means the server has none (any more).
            self.forecast.clone_from(&frame.forecast);
        }
        if frame.full || frame.timeline.is_some() {
            // In every full frame when the server has time travel.
            self.timeline.clone_from(&frame.timeline);
        }
        if let Some(clock) = &frame.clock {
            self.clock = *clock;
        }
        self.seq = seq;
        self.layout_generation = frame.layout_generation;
        self.frames_applied += 1;
        Ok(())
    }

    /// The station to highlight as the bottleneck: the momentary one when the server names
    /// it, else the top of the ranking.
    pub fn bottleneck_station(&self) -> Option<u32> {
        self.bottlenecks
            .momentary_station_index
            .or_else(|| self.bottlenecks.ranking.first().map(|b| b.station_index))
            .filter(|&i| (i as usize) < self.stations.len())
    }

    /// State of a station, `Unspecified` for unknown indices or enum values.
    pub fn station_state(&self, index: usize) -> StationStateKind {
        self.stations
            .get(index)
            .and_then(|s| StationStateKind::try_from(s.state).ok())
            .unwrap_or(StationStateKind::Unspecified)
    }
}

/// Test fixture: a state sized for `layout` with `frame` (a first full frame) applied.
#[cfg(test)]
pub(crate) fn live_for(layout: &Layout, frame: Option<&StateFrame>) -> LiveState {
    let mut live = LiveState::default();
    live.reset_for(layout);
    if let Some(frame) = frame {
        live.apply_frame(frame, Some(layout.layout_generation)).expect("the fixture's frame applies");
    }
    live
}

#[cfg(test)]
mod tests {
    use super::*;
    use twin_proto::v1::{Station, Vehicle};

    fn layout(n_stations: usize, n_vehicles: usize) -> Layout {
        Layout {
            layout_generation: 7,
            stations: (0..n_stations).map(|i| Station { index: i as u32, ..Default::default() }).collect(),
            vehicles: (0..n_vehicles).map(|i| Vehicle { index: i as u32, ..Default::default() }).collect(),
            ..Default::default()
        }
    }

    fn station(index: u32, state: StationStateKind, queue: u32) -> StationState {
        StationState { index, state: state as i32, queue_length: queue, ..Default::default() }
    }

    #[test]
    fn delta_updates_only_listed_entities() {
        let mut live = LiveState::default();
        live.reset_for(&layout(3, 2));
        let full = StateFrame {
            seq: 1,
            full: true,
            layout_generation: 7,
            stations: vec![
                station(0, StationStateKind::Busy, 1),
                station(1, StationStateKind::Starved, 0),
                station(2, StationStateKind::Busy, 4),
            ],
            kpis: Some(KpiSummary { throughput_per_hour: 12.0, ..Default::default() }),
            ..Default::default()
        };
        live.apply_frame(&full, Some(7)).expect("full frame applies");
        let delta = StateFrame {
            seq: 2,
            layout_generation: 7,
            stations: vec![station(1, StationStateKind::Down, 0)],
            ..Default::default()
        };
        live.apply_frame(&delta, Some(7)).expect("delta applies");
        assert_eq!(live.station_state(0), StationStateKind::Busy);
        assert_eq!(live.station_state(1), StationStateKind::Down);
        assert_eq!(live.stations[2].queue_length, 4);
        assert_eq!(live.station_rev, vec![1, 2, 1]);
        // KPIs absent from the delta stay as they were.
        assert_eq!(live.kpis.throughput_per_hour, 12.0);
    }

    #[test]
    fn delta_without_base_is_rejected() {
        let mut live = LiveState::default();
        live.reset_for(&layout(1, 0));
        let delta = StateFrame { seq: 5, layout_generation: 7, ..Default::default() };
        assert_eq!(live.apply_frame(&delta, Some(7)), Err(FrameError::MissingBase { seq: 5, expected: 1 }));
        let full = StateFrame { seq: 5, full: true, layout_generation: 7, ..Default::default() };
        live.apply_frame(&full, Some(7)).expect("full frame applies");
        let gap = StateFrame { seq: 7, layout_generation: 7, ..Default::default() };
        assert!(live.apply_frame(&gap, Some(7)).is_err());
    }

    #[test]
    fn bad_indices_and_enums_do_not_panic() {
        let mut live = LiveState::default();
        live.reset_for(&layout(1, 1));
        let frame = StateFrame {
            seq: 1,
            full: true,
            layout_generation: 7,
            stations: vec![
                StationState { index: 0, state: 999, ..Default::default() },
                station(9, StationStateKind::Busy, 0),
            ],
            vehicles: vec![VehicleState { index: 42, ..Default::default() }],
            ..Default::default()
        };
        live.apply_frame(&frame, Some(7)).expect("frame applies");
        assert_eq!(live.out_of_range, 2);
        assert_eq!(live.station_state(0), StationStateKind::Unspecified);
        assert_eq!(live.station_state(5), StationStateKind::Unspecified);
    }

    #[test]
    fn forecast_is_kept_across_deltas_and_cleared_by_a_full_frame_without_one() {
        let mut live = LiveState::default();
        live.reset_for(&layout(1, 0));
        let forecast = ForecastResult { from_us: 10, horizon_us: 20, replications: 5, ..Default::default() };
        let full = StateFrame {
            seq: 1,
            full: true,
            layout_generation: 7,
            forecast: Some(forecast),
            ..Default::default()
        };
        live.apply_frame(&full, Some(7)).expect("full frame applies");
        let delta = StateFrame { seq: 2, layout_generation: 7, ..Default::default() };
        live.apply_frame(&delta, Some(7)).expect("delta applies");
        assert_eq!(live.forecast.as_ref().map(|f| f.replications), Some(5), "a delta without one keeps it");
        let bare = StateFrame { seq: 3, full: true, layout_generation: 7, ..Default::default() };
        live.apply_frame(&bare, Some(7)).expect("full frame applies");
        assert!(live.forecast.is_none(), "a full frame without a forecast clears it");
    }

    #[test]
    fn frame_for_other_layout_is_rejected() {
        let mut live = LiveState::default();
        live.reset_for(&layout(1, 0));
        let frame = StateFrame { seq: 1, full: true, layout_generation: 8, ..Default::default() };
        assert!(matches!(live.apply_frame(&frame, Some(7)), Err(FrameError::LayoutMismatch { .. })));
    }
}
