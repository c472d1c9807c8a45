//! The live state in wire form: station, vehicle and truck states, KPIs, the bottleneck
//! ranking, the clock, command receipts and rush orders.

use twin_core::model::Model;
use twin_core::sim::agv::{VehicleState, VehicleView};
use twin_core::sim::flow::RushOrder;
use twin_core::sim::trucks::TruckView;
use twin_core::{Report, StationState, StationView, SyncStatus};
use twin_proto::v1;

use crate::live::{Clock, Receipt, Speed};

fn station_state_kind(state: StationState) -> v1::StationStateKind {
    match state {
        StationState::Busy => v1::StationStateKind::Busy,
        StationState::Setup => v1::StationStateKind::Setup,
        StationState::Starved => v1::StationStateKind::Starved,
        StationState::Blocked => v1::StationStateKind::Blocked,
        StationState::Down => v1::StationStateKind::Down,
        StationState::OffShift => v1::StationStateKind::OffShift,
    }
}

/// What the live twin knows of a station's telemetry, for its state.
#[derive(Clone, Copy, Debug)]
pub struct StationSync {
    pub status: SyncStatus,
    pub last_observed: Option<u64>,
    pub open_alarms: u32,
}

/// Live state of station `index`.
pub fn station_state(
    index: usize,
    view: &StationView,
    throughput_per_hour: f64,
    utilization: f64,
    sync: StationSync,
) -> v1::StationState {
    let buffer_fill = match view.buffer {
        Some(cap) if cap > 0 => (view.queue as f32 / cap as f32).min(1.0),
        _ => 0.0,
    };
    v1::StationState {
        index: index as u32,
        state: station_state_kind(view.state) as i32,
        busy_servers: view.busy_servers,
        queue_length: view.queue,
        buffer_fill,
        throughput_per_hour,
        utilization,
        sync: super::alarms::sync_status(sync.status) as i32,
        last_observed_us: sync.last_observed,
        open_alarms: sync.open_alarms,
    }
}

fn vehicle_state_kind(state: VehicleState) -> v1::VehicleStateKind {
    match state {
        VehicleState::Idle => v1::VehicleStateKind::Idle,
        VehicleState::TravellingEmpty => v1::VehicleStateKind::TravellingEmpty,
        VehicleState::TravellingLoaded => v1::VehicleStateKind::TravellingLoaded,
        VehicleState::Handling => v1::VehicleStateKind::Loading,
        VehicleState::WaitingTraffic => v1::VehicleStateKind::WaitingTraffic,
        VehicleState::Charging => v1::VehicleStateKind::Charging,
    }
}

/// Live state of AGV `index` (its Layout.vehicles index); `speed_m_s` is measured by the
/// caller between snapshots.
pub fn agv_state(index: usize, view: &VehicleView, speed_m_s: f64) -> v1::VehicleState {
    v1::VehicleState {
        index: index as u32,
        x: view.x,
        y: view.y,
        heading_rad: view.heading,
        state: vehicle_state_kind(view.state) as i32,
        battery: view.battery.clamp(0.0, 1.0) as f32,
        load: view.load,
        speed_m_s,
    }
}

/// Live state of truck at Layout.vehicles `index`. The core tells only whether a truck
/// drives and carries cargo: a standing truck with cargo is loading or unloading at a
/// dock, one without is idle. Trucks have no battery (1). `heading` is the caller's: the
/// core reports 0 for standing trucks, and a parked truck keeps the heading it arrived
/// with.
pub fn truck_state(index: usize, view: &TruckView, heading: f64, speed_m_s: f64) -> v1::VehicleState {
    let state = match (view.moving, view.loaded) {
        (true, true) => v1::VehicleStateKind::TravellingLoaded,
        (true, false) => v1::VehicleStateKind::TravellingEmpty,
        (false, true) => v1::VehicleStateKind::Loading,
        (false, false) => v1::VehicleStateKind::Idle,
    };
    v1::VehicleState {
        index: index as u32,
        x: view.x,
        y: view.y,
        heading_rad: heading,
        state: state as i32,
        battery: 1.0,
        load: view.load,
        speed_m_s,
    }
}

/// Complex-wide KPIs of a report.
pub fn kpi_summary(report: &Report) -> v1::KpiSummary {
    let c = &report.complex;
    v1::KpiSummary {
        throughput_per_hour: c.throughput_per_hour,
        wip: c.wip_now as f64,
        lead_time_mean_s: c.lead_time_mean_s,
        oee: report.oee(),
        energy_kwh: report.energy.total_kwh,
        value_added_rate: report.value_added.rate,
        finished: c.finished,
        scrapped: c.scrapped,
        lead_time_p50_s: c.lead_time_p50_s,
        lead_time_p95_s: c.lead_time_p95_s,
        co2_kg: report.energy.co2_kg,
        wip_mean: c.wip_mean,
        agv_utilization: report.agv_utilization(),
        energy_cost: report.energy.cost,
        value_added: report.value_added.value_added,
        labour_productivity: report.staff.labour_productivity,
        truck_utilization: report.logistics.trucks.as_ref().map_or(0.0, |t| t.utilization),
    }
}

/// The report's bottleneck ranking, largest share first.
pub fn bottleneck_shares(report: &Report) -> Vec<v1::BottleneckShare> {
    report
        .bottlenecks
        .iter()
        .map(|b| v1::BottleneckShare { station_index: b.station_index as u32, share: b.share })
        .collect()
}

/// The bottleneck ranking of a report; the momentary bottleneck is filled in per frame.
pub fn bottleneck_ranking(report: &Report) -> v1::BottleneckRanking {
    v1::BottleneckRanking {
        ranking: bottleneck_shares(report),
        momentary_station_index: None,
        window_start_us: (report.warmup_s * 1e6).round() as u64,
    }
}

/// The clock in wire form.
pub fn clock(clock: &Clock) -> v1::ClockState {
    v1::ClockState {
        sim_time_us: clock.sim_time,
        speed: clock.paced_speed,
        max_speed: clock.speed == Speed::Max,
        paused: clock.paused,
        achieved_speed: clock.achieved_speed,
        run_until_us: clock.run_until,
        seed: clock.seed,
    }
}

/// Receipt of an applied command.
pub fn receipt(r: &Receipt) -> v1::CommandReceipt {
    v1::CommandReceipt { applied_at_us: r.applied_at, command_seq: r.seq }
}

/// The id of the rush order a command placed (empty for any other command).
pub fn order_id(r: &Receipt) -> String {
    r.rush_order.map(|id| id.to_string()).unwrap_or_default()
}

/// A rush order and its progress.
pub fn rush_order_progress(model: &Model, order: &RushOrder) -> v1::RushOrderProgress {
    v1::RushOrderProgress {
        order_id: order.id.to_string(),
        product_id: model.products.get(usize::from(order.product)).map_or_else(String::new, |p| p.id.clone()),
        quantity: order.quantity,
        finished: order.finished,
        scrapped: order.scrapped,
        released_at_us: order.released_at,
        completed_at_us: order.completed_at,
        due_at_us: order.due,
    }
}

/// The measured flow links' rates, `(link index, parts per hour)`.
pub fn flow_rates(rates: impl Iterator<Item = (u32, f64)>) -> Vec<v1::FlowRate> {
    rates.map(|(link_index, parts_per_hour)| v1::FlowRate { link_index, parts_per_hour }).collect()
}
