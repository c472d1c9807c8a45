//! The typed report of GetReport, next to the JSON document `twin run --json` prints.

use tonic::Status;
use twin_core::Report;
use twin_core::model::Model;
use twin_proto::v1;

use super::state::{bottleneck_shares, kpi_summary, rush_order_progress};
use crate::live::ReportReply;

/// The typed report, with the JSON document unless `omit_json`.
pub fn report(reply: &ReportReply, omit_json: bool) -> Result<v1::Report, Status> {
    let model = &reply.model;
    let r = &reply.report;
    let shares = bottleneck_shares(r);
    let share_of = |i: usize| shares.iter().find(|b| b.station_index as usize == i).map_or(0.0, |b| b.share);
    // The one JSON shape shared with `twin run --json`.
    let json = if omit_json { String::new() } else { r.to_json(reply.wall_s) };
    Ok(v1::Report {
        scene_name: reply.scene_name.clone(),
        seed: r.seed,
        sim_time_us: (r.sim_time_s * 1e6).round() as u64,
        warmup_us: (r.warmup_s * 1e6).round() as u64,
        complex: Some(kpi_summary(r)),
        rush_orders: reply.rush_orders.iter().map(|o| rush_order_progress(model, o)).collect(),
        stations: r
            .stations
            .iter()
            .enumerate()
            .map(|(i, s)| v1::StationReport {
                station_id: s.id.clone(),
                station_index: i as u32,
                throughput_per_hour: s.throughput_per_hour,
                utilization: s.utilization,
                starved: s.starved,
                blocked: s.blocked,
                down: s.down,
                queue_mean: s.queue_mean,
                wait_mean_s: s.wait_mean_s,
                bottleneck_share: share_of(i),
                setup: s.setup,
                off_shift: s.off_shift,
                servers: s.servers,
                oee: s.oee,
            })
            .collect(),
        bottlenecks: shares,
        json,
        factories: factory_reports(model, r),
        fleets: r
            .vehicles
            .fleets
            .iter()
            .map(|f| v1::FleetReport {
                fleet_id: f.id.clone(),
                factory_id: f.factory.clone().unwrap_or_default(),
                vehicles: f.vehicles as u32,
                utilization: f.utilization,
                idle: f.idle,
                travelling_empty: f.travelling_empty,
                travelling_loaded: f.travelling_loaded,
                handling: f.handling,
                waiting_traffic: f.waiting_traffic,
                charging: f.charging,
                trips_per_hour: f.trips_per_hour,
                distance_km: f.distance_km,
                energy_kwh: f.energy_kwh,
                min_battery: f.min_battery,
                orders_waiting: f.orders_waiting as u32,
            })
            .collect(),
    })
}

/// Per-factory rows, joining the report's factory, energy, value-added and labour
/// sections by factory id.
fn factory_reports(model: &Model, r: &Report) -> Vec<v1::FactoryReport> {
    model
        .factories
        .iter()
        .enumerate()
        .map(|(i, f)| {
            // One row per factory in model order in these three sections; labour rows
            // exist only for factories with staff.
            let kpis = r.factories.get(i);
            let energy = r.energy.factories.get(i);
            let value = r.value_added.factories.get(i);
            let labour = r.staff.factories.iter().find(|k| k.id == f.id);
            v1::FactoryReport {
                factory_id: f.id.clone(),
                factory_index: i as u32,
                utilization: kpis.map_or(0.0, |k| k.utilization),
                station_output_per_hour: kpis.map_or(0.0, |k| k.station_output_per_hour),
                energy_kwh: energy.map_or(0.0, |e| e.kwh),
                co2_kg: energy.map_or(0.0, |e| e.co2_kg),
                energy_cost: energy.map_or(0.0, |e| e.cost),
                revenue: value.map_or(0.0, |v| v.revenue),
                material_cost: value.map_or(0.0, |v| v.material_cost),
                value_added: value.map_or(0.0, |v| v.value_added),
                value_added_rate: value.map_or(0.0, |v| v.rate),
                worker_hours: labour.map_or(0.0, |l| l.worker_hours),
                labour_productivity: labour.and_then(|l| l.labour_productivity),
            }
        })
        .collect()
}
