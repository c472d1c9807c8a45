//! The KPI report of a run: what `twin run --json` prints and the server serves.

use serde::Serialize;

use crate::bottleneck::BottleneckShare;
use crate::kpis::{EnergyKpis, LogisticsKpis, StaffKpis, ValueAddedKpis, VehicleKpis, stations_energy};
use crate::sim::Sim;
use crate::sim::flow::StationState;
use crate::time::{Micros, to_hours, to_secs};

/// Every KPI of a run over its statistics window (after the warm-up).
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub scene: String,
    pub seed: u64,
    /// Simulation time at the end of the run, seconds.
    pub sim_time_s: f64,
    /// Warm-up excluded from every KPI, seconds.
    pub warmup_s: f64,
    /// Length of the statistics window, seconds.
    pub measured_s: f64,
    /// Events processed over the whole run (including the warm-up).
    pub events: u64,
    pub complex: ComplexKpis,
    pub products: Vec<ProductKpis>,
    pub factories: Vec<FactoryKpis>,
    pub stations: Vec<StationKpis>,
    /// Stations ranked by bottleneck share over the window (active-period method).
    pub bottlenecks: Vec<BottleneckRow>,
    /// The same ranking over the last hour, shift (8 h) and day, to one minute, within
    /// the statistics window.
    pub recent_bottlenecks: Vec<RecentBottlenecks>,
    /// Parts passed from station to station in the window.
    pub flows: Vec<FlowRow>,
    pub vehicles: VehicleKpis,
    pub logistics: LogisticsKpis,
    pub energy: EnergyKpis,
    pub value_added: ValueAddedKpis,
    pub staff: StaffKpis,
}

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

#[derive(Clone, Debug, Serialize)]
pub struct ProductKpis {
    pub id: String,
    pub created: u64,
    pub finished: u64,
    pub scrapped: u64,
    pub throughput_per_hour: f64,
    pub lead_time_mean_s: f64,
}

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

#[derive(Clone, Debug, Serialize)]
pub struct FlowRow {
    pub from: String,
    pub to: String,
    pub parts: u64,
    pub per_hour: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct RecentBottlenecks {
    /// Length of the window, seconds (3600, 28800, 86400).
    pub window_s: f64,
    /// Shares of the part of the window since the statistics began.
    pub ranking: Vec<BottleneckRow>,
}

#[derive(Clone, Debug, Serialize)]
pub struct BottleneckRow {
    pub station: String,
    /// Share of the window as sole or shifting bottleneck.
    pub share: f64,
    pub sole: f64,
    pub shifting: f64,
}

/// What [`Sim::report_with`] computes.
#[derive(Clone, Copy, Debug)]
pub struct ReportOptions {
    /// Rank bottlenecks by the active-period method (a sweep over all active periods).
    pub bottlenecks: bool,
}

impl Default for ReportOptions {
    fn default() -> Self {
        ReportOptions { bottlenecks: true }
    }
}

/// The JSON document of `twin run --json` and of the server's report: the report plus
/// the wall time it took, the one field that differs between identical runs.
#[derive(Serialize)]
pub struct JsonReport<'a> {
    pub wall_s: f64,
    #[serde(flatten)]
    pub report: &'a Report,
}

impl Report {
    /// The report as pretty-printed JSON with `wall_s` first.
    pub fn to_json(&self, wall_s: f64) -> String {
        serde_json::to_string_pretty(&JsonReport { wall_s, report: self })
            .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 0.0 }
}

impl Sim {
    /// The bottleneck ranking over the statistics window so far.
    pub fn bottlenecks(&self) -> Vec<BottleneckShare> {
        let now = self.now();
        self.flow().bottleneck_ranking(now)
    }

    /// All KPIs over the statistics window up to now.
    pub fn report(&self) -> Report {
        self.report_with(ReportOptions::default())
    }

    /// The report, choosing what to compute. Live displays refresh without the
    /// bottleneck ranking, whose sweep over all active periods is the costly part.
    pub fn report_with(&self, options: ReportOptions) -> Report {
        let now = self.now();
        let model = self.model();
        let window = now.saturating_sub(self.totals().window_start);
        let hours = to_hours(window);
        let totals = self.totals();
        let lt = &totals.lead_times;

        let stations: Vec<StationKpis> = model
            .stations
            .iter()
            .enumerate()
            .map(|(i, spec)| {
                let st = self.flow().station_figures(i, now);
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
            .collect();

        let factories = model
            .factories
            .iter()
            .enumerate()
            .map(|(f, fac)| {
                let members: Vec<usize> = (0..model.stations.len())
                    .filter(|&s| model.stations[s].factory == Some(f as u32))
                    .collect();
                let servers: f64 = members.iter().map(|&s| f64::from(stations[s].servers)).sum();
                FactoryKpis {
                    id: fac.id.clone(),
                    name: fac.name.clone(),
                    stations: members.len(),
                    utilization: ratio(
                        members
                            .iter()
                            .map(|&s| stations[s].utilization * f64::from(stations[s].servers))
                            .sum(),
                        servers,
                    ),
                    station_output_per_hour: members.iter().map(|&s| stations[s].throughput_per_hour).sum(),
                }
            })
            .collect();

        let products = model
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
            .collect();

        let rows = |ranking: Vec<BottleneckShare>, window: Micros| -> Vec<BottleneckRow> {
            ranking
                .into_iter()
                .map(|b| BottleneckRow {
                    station: model.stations[b.station].id.clone(),
                    share: ratio((b.sole + b.shifting) as f64, window as f64),
                    sole: ratio(b.sole as f64, window as f64),
                    shifting: ratio(b.shifting as f64, window as f64),
                })
                .collect()
        };
        let (bottlenecks, recent_bottlenecks) = if options.bottlenecks {
            let recent = self
                .flow()
                .bottleneck_windows(now)
                .into_iter()
                .map(|(length, ranking)| RecentBottlenecks {
                    window_s: to_secs(length),
                    ranking: rows(ranking, length.min(window)),
                })
                .collect();
            (rows(self.bottlenecks(), window), recent)
        } else {
            (Vec::new(), Vec::new())
        };

        let complex = self.complex_kpis(&stations_energy(self));
        Report {
            scene: model.name.clone(),
            seed: self.seed(),
            sim_time_s: to_secs(now),
            warmup_s: to_secs(self.totals().window_start),
            measured_s: to_secs(window),
            events: self.events(),
            complex: ComplexKpis {
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
            },
            products,
            factories,
            stations,
            bottlenecks,
            recent_bottlenecks,
            flows: self
                .flows()
                .map(|(from, to, parts)| FlowRow {
                    from: model.stations[from as usize].id.clone(),
                    to: model.stations[to as usize].id.clone(),
                    parts,
                    per_hour: ratio(parts as f64, hours),
                })
                .collect(),
            vehicles: complex.vehicles,
            logistics: complex.logistics,
            energy: complex.energy,
            value_added: complex.value_added,
            staff: complex.staff,
        }
    }
}
