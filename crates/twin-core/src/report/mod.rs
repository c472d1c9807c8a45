//! The KPI report of a run: what `twin run --json` prints and the server serves. Pure
//! functions of the simulation's state: reading it changes nothing.
//!
//! - [`stations`]: the complex as a whole, products, factories, stations, flows.
//! - [`complex`]: vehicles, trucks and materials, energy, value added, staff.
//! - [`bottleneck`]: the active-period method and the ranking.

pub mod bottleneck;
pub mod complex;
pub mod stations;

use serde::Serialize;

use self::bottleneck::{BottleneckRow, BottleneckShare, RecentBottlenecks};
use self::complex::{EnergyKpis, LogisticsKpis, StaffKpis, ValueAddedKpis, VehicleKpis};
use self::stations::{ComplexKpis, FactoryKpis, FlowRow, ProductKpis, RushOrderRow, StationKpis};
use crate::sim::Sim;
use crate::sim::flow::Rankings;
use crate::time::{to_hours, to_secs};

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
    /// Rush orders placed in the run (commands), with their progress; left out of the
    /// JSON document when there were none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rush_orders: Vec<RushOrderRow>,
}

/// What [`Sim::report_with`] computes.
#[derive(Clone, Copy, Debug)]
pub struct ReportOptions {
    /// Rank bottlenecks by the active-period method (since the warm-up and recently).
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
    /// OEE of the complex: every station's OEE weighted by its servers.
    pub fn oee(&self) -> f64 {
        let (servers, weighted) = self
            .stations
            .iter()
            .fold((0.0, 0.0), |(n, o), s| (n + f64::from(s.servers), o + s.oee * f64::from(s.servers)));
        stations::ratio(weighted, servers)
    }

    /// Share of AGV time travelling or handling, over every fleet weighted by vehicles.
    pub fn agv_utilization(&self) -> f64 {
        let (vehicles, busy) = self
            .vehicles
            .fleets
            .iter()
            .fold((0.0, 0.0), |(n, u), f| (n + f.vehicles as f64, u + f.utilization * f.vehicles as f64));
        stations::ratio(busy, vehicles)
    }

    /// The report as pretty-printed JSON with `wall_s` first.
    pub fn to_json(&self, wall_s: f64) -> String {
        serde_json::to_string_pretty(&JsonReport { wall_s, report: self })
            .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }
}

impl Sim {
    /// The bottleneck ranking over the statistics window so far.
    pub fn bottlenecks(&self) -> Vec<BottleneckShare> {
        bottleneck::rankings(self).total
    }

    /// Revenue, bought-in material and energy cost over the statistics window so far,
    /// the sums behind the report's value-added rate (`complex::value_added`).
    pub(crate) fn value_added_sums(&self) -> (f64, f64, f64) {
        let vehicles = complex::vehicles(self);
        let (energy, factory_kwh) = complex::energy(self, &vehicles);
        let va = complex::value_added(self, &energy, &factory_kwh);
        (va.revenue, va.material_cost, va.energy_cost)
    }

    /// All KPIs over the statistics window up to now.
    pub fn report(&self) -> Report {
        self.report_with(ReportOptions::default())
    }

    /// The report, choosing what to compute. Live displays that refresh often can leave
    /// out the bottleneck rankings (settling the live sweep copies its state).
    pub fn report_with(&self, options: ReportOptions) -> Report {
        let now = self.now();
        let model = self.model();
        let window = now.saturating_sub(self.totals().window_start);
        let hours = to_hours(window);
        let stations = stations::stations(self, window, hours);
        let rankings = if options.bottlenecks { bottleneck::rankings(self) } else { Rankings::default() };
        let vehicles = complex::vehicles(self);
        let (energy, factory_kwh) = complex::energy(self, &vehicles);
        let value_added = complex::value_added(self, &energy, &factory_kwh);
        Report {
            scene: model.name.clone(),
            seed: self.seed(),
            sim_time_s: to_secs(now),
            warmup_s: to_secs(self.totals().window_start),
            measured_s: to_secs(window),
            events: self.events(),
            complex: stations::complex(self, window, hours),
            products: stations::products(self, hours),
            factories: stations::factories(model, &stations),
            stations,
            bottlenecks: bottleneck::rows(model, rankings.total, window),
            recent_bottlenecks: bottleneck::recent(model, rankings.recent, window),
            flows: stations::flows(self, hours),
            logistics: complex::logistics(self),
            staff: complex::staff(self, &value_added),
            vehicles,
            energy,
            value_added,
            rush_orders: stations::rush_orders(self),
        }
    }
}
