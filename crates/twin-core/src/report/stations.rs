//! The flow sections of the report: the complex as a whole, products, factories,
//! stations, and the parts passed between stations.

use serde::Serialize;

use crate::model::Model;
use crate::sim::Sim;
use crate::sim::flow::StationState;
use crate::time::to_secs;

/// `a / b`, or 0 when `b` is not positive (an empty window, a station that never
/// worked): reports show 0 rather than NaN.
pub(super) fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 0.0 }
}

/// The complex as a whole.
#[derive(Clone, Debug, Serialize)]
pub struct ComplexKpis {
    /// Good parts finished per hour.
    pub throughput_per_hour: f64,
    /// Time-average number of parts in the complex.
    pub wip_mean: f64,
    /// Parts in the complex at the end of the run.
    pub wip_now: u64,
    pub lead_time_mean_s: f64,
    pub lead_time_p50_s: f64,
    pub lead_time_p95_s: f64,
    /// Parts released in the window.
    pub created: u64,
    pub finished: u64,
    pub scrapped: u64,
    /// Share of finished parts with a due date that met it; null when none had one.
    pub on_time_share: Option<f64>,
}

/// One product.
#[derive(Clone, Debug, Serialize)]
pub struct ProductKpis {
    pub id: String,
    pub created: u64,
    pub finished: u64,
    pub scrapped: u64,
    pub throughput_per_hour: f64,
    pub lead_time_mean_s: f64,
}

/// One factory.
#[derive(Clone, Debug, Serialize)]
pub struct FactoryKpis {
    pub id: String,
    pub name: String,
    pub stations: usize,
    /// Mean busy share of the factory's stations, weighted by servers.
    pub utilization: f64,
    /// Good parts processed per hour by the factory's stations, summed.
    pub station_output_per_hour: f64,
}

/// One station.
#[derive(Clone, Debug, Serialize)]
pub struct StationKpis {
    pub id: String,
    pub factory: Option<String>,
    pub servers: u32,
    /// Good parts processed per hour.
    pub throughput_per_hour: f64,
    /// Busy share (0..1) of server time; the same as `busy`.
    pub utilization: f64,
    pub busy: f64,
    pub setup: f64,
    pub starved: f64,
    pub blocked: f64,
    pub down: f64,
    pub off_shift: f64,
    /// Availability x performance x quality over planned (on-shift) time: busy share of
    /// planned time times the good share of processed parts.
    pub oee: f64,
    /// Time-average parts waiting in the input buffer.
    pub queue_mean: f64,
    /// Mean wait in the input buffer of parts that started service, seconds.
    pub wait_mean_s: f64,
    pub completed: u64,
    pub scrapped: u64,
}

/// Parts passed from one station to another.
#[derive(Clone, Debug, Serialize)]
pub struct FlowRow {
    pub from: String,
    pub to: String,
    pub parts: u64,
    pub per_hour: f64,
}

/// One rush order and its progress.
#[derive(Clone, Debug, Serialize)]
pub struct RushOrderRow {
    /// The id `AddRushOrder` returned (`rush-n`).
    pub id: String,
    pub product: String,
    pub quantity: u32,
    pub finished: u32,
    pub scrapped: u32,
    /// Simulation time it was released, seconds.
    pub released_s: f64,
    /// Simulation time it is due, seconds; null for "as soon as possible" (left out of
    /// the JSON then).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub due_s: Option<f64>,
    /// Simulation time its last unit finished or was scrapped; null while open.
    pub completed_s: Option<f64>,
}

/// Every rush order of the run with its progress.
pub(super) fn rush_orders(sim: &Sim) -> Vec<RushOrderRow> {
    let model = sim.model();
    sim.rush_orders()
        .iter()
        .map(|o| RushOrderRow {
            id: o.id.to_string(),
            product: model.products[usize::from(o.product)].id.clone(),
            quantity: o.quantity,
            finished: o.finished,
            scrapped: o.scrapped,
            released_s: to_secs(o.released_at),
            due_s: o.due.map(to_secs),
            completed_s: o.completed_at.map(to_secs),
        })
        .collect()
}

/// Throughput, WIP, lead times and due dates of the whole complex.
pub(super) fn complex(sim: &Sim, window: u64, hours: f64) -> ComplexKpis {
    let now = sim.now();
    let totals = sim.totals();
    let lt = &totals.lead_times;
    ComplexKpis {
        throughput_per_hour: ratio(totals.finished as f64, hours),
        wip_mean: ratio(totals.wip_area_at(now) as f64, window as f64),
        wip_now: totals.wip,
        lead_time_mean_s: lt.mean() / 1e6,
        lead_time_p50_s: to_secs(lt.quantile(0.5)),
        lead_time_p95_s: to_secs(lt.quantile(0.95)),
        created: totals.created,
        finished: totals.finished,
        scrapped: totals.scrapped,
        on_time_share: (totals.with_due > 0).then(|| totals.on_time as f64 / totals.with_due as f64),
    }
}

/// Every station's state shares, OEE, throughput, queue and wait.
pub(super) fn stations(sim: &Sim, window: u64, hours: f64) -> Vec<StationKpis> {
    let now = sim.now();
    let model = sim.model();
    model
        .stations
        .iter()
        .enumerate()
        .map(|(i, spec)| {
            let st = sim.flow().station_figures(i, now);
            let (times, area) = (st.times, st.queue_area);
            let total = (u64::from(st.servers) * window) as f64;
            let share = |s: StationState| ratio(times.get(s) as f64, total);
            let good = st.completed - st.scrapped;
            let planned = total - times.get(StationState::OffShift) as f64;
            let quality = ratio(good as f64, st.completed as f64);
            StationKpis {
                id: spec.id.clone(),
                factory: spec.factory.map(|f| model.factories[f as usize].id.clone()),
                servers: st.servers,
                throughput_per_hour: ratio(good as f64, hours),
                utilization: share(StationState::Busy),
                busy: share(StationState::Busy),
                setup: share(StationState::Setup),
                starved: share(StationState::Starved),
                blocked: share(StationState::Blocked),
                down: share(StationState::Down),
                off_shift: share(StationState::OffShift),
                oee: ratio(times.get(StationState::Busy) as f64, planned)
                    * if st.completed > 0 { quality } else { 0.0 },
                queue_mean: ratio(area as f64, window as f64),
                wait_mean_s: ratio(st.wait_sum as f64, st.started as f64) / 1e6,
                completed: st.completed,
                scrapped: st.scrapped,
            }
        })
        .collect()
}

/// Every factory's utilisation and output, from its stations' rows.
pub(super) fn factories(model: &Model, stations: &[StationKpis]) -> Vec<FactoryKpis> {
    model
        .factories
        .iter()
        .enumerate()
        .map(|(f, fac)| {
            let members: Vec<usize> =
                (0..model.stations.len()).filter(|&s| model.stations[s].factory == Some(f as u32)).collect();
            let servers: f64 = members.iter().map(|&s| f64::from(stations[s].servers)).sum();
            FactoryKpis {
                id: fac.id.clone(),
                name: fac.name.clone(),
                stations: members.len(),
                utilization: ratio(
                    members.iter().map(|&s| stations[s].utilization * f64::from(stations[s].servers)).sum(),
                    servers,
                ),
                station_output_per_hour: members.iter().map(|&s| stations[s].throughput_per_hour).sum(),
            }
        })
        .collect()
}

/// Every product's counts, throughput and mean lead time.
pub(super) fn products(sim: &Sim, hours: f64) -> Vec<ProductKpis> {
    let model = sim.model();
    let totals = sim.totals();
    model
        .products
        .iter()
        .zip(&totals.products)
        .map(|(spec, t)| ProductKpis {
            id: spec.id.clone(),
            created: t.created,
            finished: t.finished,
            scrapped: t.scrapped,
            throughput_per_hour: ratio(t.finished as f64, hours),
            lead_time_mean_s: ratio(t.lead_sum as f64, t.finished as f64) / 1e6,
        })
        .collect()
}

/// Parts passed from station to station in the window.
pub(super) fn flows(sim: &Sim, hours: f64) -> Vec<FlowRow> {
    let model = sim.model();
    sim.flows()
        .map(|(from, to, parts)| FlowRow {
            from: model.stations[from as usize].id.clone(),
            to: model.stations[to as usize].id.clone(),
            parts,
            per_hour: ratio(parts as f64, hours),
        })
        .collect()
}
