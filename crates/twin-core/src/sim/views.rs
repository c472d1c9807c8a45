//! What the server and tests read of a running simulation: display states for live
//! views, and invariant probes for tests. Nothing here changes the state.

use super::Sim;
use super::agv::VehicleView;
use super::flow::{OpenOrder, RushOrder, StationView};
use super::materials::MaterialView;
use super::trucks::TruckView;
use crate::model::StationIdx;
use crate::stats::{LeadTimes, Totals};

/// Where the parts in the complex are.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PartCensus {
    pub buffers: u64,
    /// In service, setting up or blocked on a machine.
    pub machines: u64,
    pub conveyors: u64,
    /// Released but waiting at their source (no room or no material).
    pub sources: u64,
    /// Waiting for, or riding on, an AGV.
    pub agvs: u64,
    /// On docks, on trucks, or delivered and waiting for room.
    pub docks: u64,
}

impl PartCensus {
    pub fn total(&self) -> u64 {
        self.buffers + self.machines + self.conveyors + self.sources + self.agvs + self.docks
    }
}

impl Sim {
    /// Display state of every station now.
    pub fn station_views(&self) -> impl Iterator<Item = StationView> + '_ {
        self.flow.station_views()
    }

    /// Display state of every AGV in service, positions interpolated along the edge
    /// being driven.
    pub fn vehicle_views(&self) -> impl Iterator<Item = VehicleView> + '_ {
        self.agvs.views(&self.model, self.agenda.now())
    }

    /// Display state of every truck in service, positions interpolated along its road
    /// path.
    pub fn truck_views(&self) -> impl Iterator<Item = TruckView> + '_ {
        self.trucks.views(&self.model, self.agenda.now())
    }

    /// Stock of every material now, in the order the scene lists them.
    pub fn material_views(&self) -> impl Iterator<Item = MaterialView<'_>> + '_ {
        (0..self.model.materials.len()).map(|m| self.materials.view(m))
    }

    /// Parts passed from station to station since the statistics were reset:
    /// `(from, to, count)`, ascending by `from` then in first-use order.
    pub fn flows(&self) -> impl Iterator<Item = (StationIdx, StationIdx, u64)> + '_ {
        self.flow.flows()
    }

    /// Parts in the complex now (released, not yet finished or scrapped).
    pub fn wip(&self) -> u64 {
        self.flow.totals().wip
    }

    /// The momentary bottleneck: the active station whose current active period has
    /// lasted longest so far (ties to the lower index).
    pub fn momentary_bottleneck(&self) -> Option<StationIdx> {
        self.flow.momentary_bottleneck()
    }

    /// Every rush order of the run, in the order placed, with its progress.
    pub fn rush_orders(&self) -> &[RushOrder] {
        self.flow.rush_orders()
    }

    /// The orders in the complex now: every released part whose source gives it a due
    /// date, by part slot.
    pub fn open_orders(&self) -> Vec<OpenOrder> {
        self.flow.open_orders()
    }

    /// Lead times recorded since the warm-up, for quantiles.
    pub fn lead_times(&self) -> &LeadTimes {
        self.flow.lead_times()
    }

    /// Part counts and integrals since the statistics were reset.
    pub fn totals(&self) -> &Totals {
        self.flow.totals()
    }

    /// How often two vehicles share a node or an edge: the traffic rule's invariant says
    /// never (for tests).
    pub fn traffic_conflicts(&self) -> usize {
        self.agvs.traffic_conflicts(&self.model)
    }

    /// Where every part in the complex is now, counted place by place; the sum must
    /// equal the WIP. For tests of the part balance.
    pub fn part_census(&self) -> PartCensus {
        let flow = self.flow.census();
        PartCensus {
            buffers: flow.buffers,
            machines: flow.machines,
            conveyors: flow.conveyors,
            sources: flow.sources,
            agvs: self.agvs.parts(),
            docks: self.trucks.parts() + flow.inbound,
        }
    }

    /// Parts created, finished and scrapped over the whole run (warm-up included).
    pub fn lifetime_counts(&self) -> (u64, u64, u64) {
        self.flow.totals().lifetime
    }

    /// Lowest charge any vehicle reached (kWh), and how often a battery ran dry.
    pub fn battery_extremes(&self) -> (f64, u64) {
        self.agvs.battery_extremes()
    }
}
