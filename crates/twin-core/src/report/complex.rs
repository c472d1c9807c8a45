//! The complex's own KPIs: vehicles, trucks and materials, energy, value added, staff.

use serde::Serialize;

use super::stations::ratio;
use crate::sim::Sim;
use crate::sim::agv::{Deadlock, VehicleState};
use crate::sim::flow::StationState;
use crate::sim::trucks::TruckPhase;
use crate::time::{HOUR, SECOND};

/// AGV fleets.
#[derive(Clone, Debug, Default, Serialize)]
pub struct VehicleKpis {
    pub fleets: Vec<FleetKpis>,
    /// Path segments with the most waiting, worst first (at most 10 per fleet).
    pub congestion: Vec<Congestion>,
    /// Deadlocks detected in the window (all of them are counted, the first 20 listed).
    pub deadlock_count: u64,
    pub deadlocks: Vec<Deadlock>,
}

#[derive(Clone, Debug, Serialize)]
pub struct FleetKpis {
    pub id: String,
    pub factory: Option<String>,
    pub vehicles: usize,
    /// Shares of vehicle time (0..1) in each state; they sum to 1.
    pub idle: f64,
    pub travelling_empty: f64,
    pub travelling_loaded: f64,
    pub handling: f64,
    pub waiting_traffic: f64,
    pub charging: f64,
    /// Share of time travelling or handling.
    pub utilization: f64,
    pub trips: u64,
    pub trips_per_hour: f64,
    pub distance_km: f64,
    /// Energy drawn from the grid by the fleet's chargers.
    pub energy_kwh: f64,
    /// Lowest state of charge any vehicle of the fleet reached (0..1).
    pub min_battery: f64,
    /// How often a battery ran empty (should be 0).
    pub depleted: u64,
    /// Transport orders waiting for a vehicle now.
    pub orders_waiting: usize,
}

#[derive(Clone, Debug, Serialize)]
pub struct Congestion {
    pub fleet: String,
    /// `from->to` node ids.
    pub segment: String,
    /// Vehicle-seconds spent waiting for this segment or its end node.
    pub wait_s: f64,
    pub trips: u64,
}

/// Trucks, docks and materials.
#[derive(Clone, Debug, Default, Serialize)]
pub struct LogisticsKpis {
    pub trucks: Option<TruckKpis>,
    /// Finished units shipped to the hub.
    pub shipped: u64,
    /// Units waiting on docks for a truck now.
    pub waiting_at_docks: u64,
    pub materials: Vec<MaterialKpis>,
}

#[derive(Clone, Debug, Serialize)]
pub struct TruckKpis {
    pub count: usize,
    /// Share of truck time not idle.
    pub utilization: f64,
    /// Share of truck time driving loaded.
    pub loaded_share: f64,
    /// Mean load of loaded trips over capacity (0..1).
    pub fill_rate: f64,
    pub loaded_trips: u64,
    pub km: f64,
    pub units_moved: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct MaterialKpis {
    pub id: String,
    pub hub_now: u32,
    /// Time-average stock at the hub.
    pub hub_mean: f64,
    pub hub_min: u32,
    /// Share of the window with factory requests the hub could not fill.
    pub hub_stockout_share: f64,
    pub supplier_orders: u64,
    /// Times a release had to wait for this material at a factory.
    pub shortages: u64,
    /// Stock now at each factory that holds it, by factory id.
    pub factory_stock: Vec<(String, u32)>,
}

/// Energy, CO2 and their cost.
#[derive(Clone, Debug, Default, Serialize)]
pub struct EnergyKpis {
    pub total_kwh: f64,
    pub stations_kwh: f64,
    pub agv_kwh: f64,
    pub trucks_kwh: f64,
    pub co2_kg: f64,
    pub cost: f64,
    pub kwh_per_good_part: f64,
    pub factories: Vec<FactoryEnergy>,
}

#[derive(Clone, Debug, Serialize)]
pub struct FactoryEnergy {
    pub id: String,
    /// Stations plus the factory's AGV fleet.
    pub kwh: f64,
    pub co2_kg: f64,
    pub cost: f64,
}

/// Value added = revenue - bought-in material - energy, and its rate over revenue.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ValueAddedKpis {
    pub currency: String,
    pub revenue: f64,
    pub material_cost: f64,
    pub energy_cost: f64,
    pub value_added: f64,
    /// Value added over revenue (the programme's headline metric).
    pub rate: f64,
    /// Per factory: revenue and material allocated by each factory's share of the
    /// routing's mean processing time; energy of its own stations and AGVs. Truck energy
    /// is counted for the complex only.
    pub factories: Vec<FactoryValueAdded>,
}

#[derive(Clone, Debug, Serialize)]
pub struct FactoryValueAdded {
    pub id: String,
    pub revenue: f64,
    pub material_cost: f64,
    pub energy_cost: f64,
    pub value_added: f64,
    pub rate: f64,
}

/// Worker pools and labour productivity.
#[derive(Clone, Debug, Default, Serialize)]
pub struct StaffKpis {
    pub pools: Vec<PoolKpis>,
    /// Worker-hours present in the window.
    pub worker_hours: f64,
    /// Value added per worker-hour; null without staff.
    pub labour_productivity: Option<f64>,
    pub factories: Vec<FactoryLabour>,
}

#[derive(Clone, Debug, Serialize)]
pub struct PoolKpis {
    pub id: String,
    pub factory: Option<String>,
    pub size: u32,
    pub worker_hours: f64,
    /// Busy share of present worker time.
    pub utilization: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct FactoryLabour {
    pub id: String,
    pub worker_hours: f64,
    pub labour_productivity: Option<f64>,
}

/// Energy in kWh of each station over the window, from its state times and power draw.
fn stations_energy(sim: &Sim) -> Vec<f64> {
    sim.model()
        .stations
        .iter()
        .enumerate()
        .map(|(i, spec)| {
            let Some(p) = spec.power else { return 0.0 };
            let times = sim.flow().station_figures(i, sim.now()).times;
            let h = |s: StationState| times.get(s) as f64 / HOUR as f64;
            h(StationState::Busy) * p.busy
                + h(StationState::Setup) * p.setup
                + (h(StationState::Starved) + h(StationState::Blocked)) * p.idle
                + h(StationState::Down) * p.down
                + h(StationState::OffShift) * p.off
        })
        .collect()
}

/// The AGV fleets: time shares, trips, distance, charging energy, batteries; the most
/// congested segments; deadlocks.
pub(super) fn vehicles(sim: &Sim) -> VehicleKpis {
    let model = sim.model();
    let now = sim.now();
    let hours = now.saturating_sub(sim.totals().window_start) as f64 / HOUR as f64;
    // Vehicles.
    let mut fleets = Vec::new();
    let mut congestion = Vec::new();
    for (fi, spec) in model.fleets.iter().enumerate() {
        let f = sim.agvs().fleet_figures(model, fi, now);
        let total: u64 = f.times.iter().sum();
        let share = |s: VehicleState| ratio(f.times[s as usize] as f64, total as f64);
        fleets.push(FleetKpis {
            id: spec.id.clone(),
            factory: spec.factory.map(|f| model.factories[f as usize].id.clone()),
            vehicles: f.vehicles,
            idle: share(VehicleState::Idle),
            travelling_empty: share(VehicleState::TravellingEmpty),
            travelling_loaded: share(VehicleState::TravellingLoaded),
            handling: share(VehicleState::Handling),
            waiting_traffic: share(VehicleState::WaitingTraffic),
            charging: share(VehicleState::Charging),
            utilization: share(VehicleState::TravellingEmpty)
                + share(VehicleState::TravellingLoaded)
                + share(VehicleState::Handling),
            trips: f.trips,
            trips_per_hour: ratio(f.trips as f64, hours),
            distance_km: f.distance_m / 1000.0,
            energy_kwh: f.charged_kwh,
            min_battery: f.min_battery,
            depleted: f.depleted,
            orders_waiting: f.orders_waiting,
        });
        let graph = &model.graphs[spec.graph as usize];
        let mut rows: Vec<Congestion> = graph
            .edges
            .iter()
            .enumerate()
            .map(|(e, edge)| {
                let (wait, trips) = sim.agvs().segment_figures(model, spec.graph as usize, e);
                Congestion {
                    fleet: spec.id.clone(),
                    segment: format!(
                        "{}->{}",
                        graph.nodes[edge.from as usize].id, graph.nodes[edge.to as usize].id
                    ),
                    wait_s: wait as f64 / SECOND as f64,
                    trips,
                }
            })
            .filter(|c| c.wait_s > 0.0)
            .collect();
        rows.sort_by(|a, b| b.wait_s.total_cmp(&a.wait_s).then_with(|| a.segment.cmp(&b.segment)));
        rows.truncate(10);
        congestion.extend(rows);
    }
    VehicleKpis {
        fleets,
        congestion,
        deadlock_count: sim.agvs().deadlocks().0,
        deadlocks: sim.agvs().deadlocks().1.to_vec(),
    }
}

/// Trucks, docks and materials.
pub(super) fn logistics(sim: &Sim) -> LogisticsKpis {
    let model = sim.model();
    let now = sim.now();
    let window = now.saturating_sub(sim.totals().window_start);
    // Trucks and materials.
    let trucks = model.trucks.as_ref().filter(|_| !sim.trucks().is_empty()).map(|spec| {
        let f = sim.trucks().figures(now);
        let total = f.times.total();
        TruckKpis {
            count: f.count,
            utilization: ratio((total - f.times.get(TruckPhase::Idle)) as f64, total as f64),
            loaded_share: ratio(f.times.get(TruckPhase::DrivingLoaded) as f64, total as f64),
            fill_rate: ratio(f.units_moved as f64, (f.loaded_trips * u64::from(spec.capacity)) as f64),
            loaded_trips: f.loaded_trips,
            km: f.km,
            units_moved: f.units_moved,
        }
    });
    let materials = model
        .materials
        .iter()
        .enumerate()
        .map(|(i, spec)| {
            let m = sim.materials().figures(i, now);
            MaterialKpis {
                id: spec.id.clone(),
                hub_now: m.hub_now,
                hub_mean: ratio(m.hub_area as f64, window as f64),
                hub_min: m.hub_min,
                hub_stockout_share: ratio(m.stockout as f64, window as f64),
                supplier_orders: m.supplier_orders,
                shortages: m.shortages,
                factory_stock: model
                    .factories
                    .iter()
                    .zip(m.factory)
                    .enumerate()
                    .filter(|(f, _)| sim.materials().stocked_at(*f as u32))
                    .map(|(_, (fac, &n))| (fac.id.clone(), n))
                    .collect(),
            }
        })
        .collect();
    LogisticsKpis {
        trucks,
        shipped: sim.trucks().shipped(),
        waiting_at_docks: sim.trucks().waiting_at_docks(),
        materials,
    }
}

/// Energy of the stations (from their state times and power draw), the AGVs (what their
/// chargers drew) and the trucks, with CO2 and cost; and each factory's kWh.
pub(super) fn energy(sim: &Sim, vehicles: &VehicleKpis) -> (EnergyKpis, Vec<f64>) {
    let model = sim.model();
    let station_kwh = stations_energy(sim);
    let fleet_kwh: Vec<f64> = vehicles.fleets.iter().map(|f| f.energy_kwh).collect();
    // Energy.
    let u = &model.utilities;
    let mut factory_kwh = vec![0.0; model.factories.len()];
    for (s, kwh) in station_kwh.iter().enumerate() {
        if let Some(f) = model.stations[s].factory {
            factory_kwh[f as usize] += kwh;
        }
    }
    for (fi, spec) in model.fleets.iter().enumerate() {
        if let Some(f) = spec.factory {
            factory_kwh[f as usize] += fleet_kwh[fi];
        }
    }
    let stations_kwh: f64 = station_kwh.iter().sum();
    let agv_kwh: f64 = fleet_kwh.iter().sum();
    let total_kwh = stations_kwh + agv_kwh + sim.trucks().kwh();
    let good: u64 = sim.totals().finished;
    let energy = EnergyKpis {
        total_kwh,
        stations_kwh,
        agv_kwh,
        trucks_kwh: sim.trucks().kwh(),
        co2_kg: total_kwh * u.co2_kg_per_kwh,
        cost: total_kwh * u.power_price,
        kwh_per_good_part: ratio(total_kwh, good as f64),
        factories: model
            .factories
            .iter()
            .zip(&factory_kwh)
            .map(|(f, &kwh)| FactoryEnergy {
                id: f.id.clone(),
                kwh,
                co2_kg: kwh * u.co2_kg_per_kwh,
                cost: kwh * u.power_price,
            })
            .collect(),
    };

    (energy, factory_kwh)
}

/// Value added = revenue - bought-in material - energy, allocated to factories by their
/// share of each routing's mean processing time.
pub(super) fn value_added(sim: &Sim, energy: &EnergyKpis, factory_kwh: &[f64]) -> ValueAddedKpis {
    let model = sim.model();
    let u = &model.utilities;
    // Value added, allocated to factories by processing-time share.
    let mut rev_f = vec![0.0; model.factories.len()];
    let mut mat_f = vec![0.0; model.factories.len()];
    let (mut revenue, mut material) = (0.0, 0.0);
    for (p, spec) in model.products.iter().enumerate() {
        let t = &sim.totals().products[p];
        let unit_material = spec.material_cost
            + spec
                .materials
                .iter()
                .map(|&(m, q)| model.materials[m as usize].unit_cost * f64::from(q))
                .sum::<f64>();
        let r = spec.price * t.finished as f64;
        let m = unit_material * (t.finished + t.scrapped) as f64;
        revenue += r;
        material += m;
        let total_mean: f64 = spec.steps.iter().map(|s| s.mean).sum();
        for step in &spec.steps {
            let Some(f) = step.at.first().and_then(|&s| model.stations[s as usize].factory) else {
                continue;
            };
            let w = ratio(step.mean, total_mean);
            rev_f[f as usize] += r * w;
            mat_f[f as usize] += m * w;
        }
    }
    let value_added = revenue - material - energy.cost;
    let va_factories: Vec<FactoryValueAdded> = model
        .factories
        .iter()
        .enumerate()
        .map(|(f, fac)| {
            let energy_cost = factory_kwh[f] * u.power_price;
            let va = rev_f[f] - mat_f[f] - energy_cost;
            FactoryValueAdded {
                id: fac.id.clone(),
                revenue: rev_f[f],
                material_cost: mat_f[f],
                energy_cost,
                value_added: va,
                rate: ratio(va, rev_f[f]),
            }
        })
        .collect();
    ValueAddedKpis {
        currency: u.currency.clone(),
        revenue,
        material_cost: material,
        energy_cost: energy.cost,
        value_added,
        rate: ratio(value_added, revenue),
        factories: va_factories,
    }
}

/// Worker pools and labour productivity (value added per worker-hour).
pub(super) fn staff(sim: &Sim, value_added: &ValueAddedKpis) -> StaffKpis {
    let model = sim.model();
    let now = sim.now();
    // Staff.
    let pools: Vec<PoolKpis> = model
        .staff
        .iter()
        .enumerate()
        .map(|(i, spec)| {
            let time = sim.staff().time(i, spec.size, now);
            PoolKpis {
                id: spec.id.clone(),
                factory: spec.factory.map(|f| model.factories[f as usize].id.clone()),
                size: spec.size,
                worker_hours: time.present as f64 / HOUR as f64,
                utilization: ratio(time.busy as f64, time.present as f64),
            }
        })
        .collect();
    let worker_hours: f64 = pools.iter().map(|p| p.worker_hours).sum();
    let factories = model
        .factories
        .iter()
        .enumerate()
        .filter_map(|(f, fac)| {
            let hours: f64 = model
                .staff
                .iter()
                .zip(&pools)
                .filter(|(s, _)| s.factory == Some(f as u32))
                .map(|(_, p)| p.worker_hours)
                .sum();
            (hours > 0.0).then(|| FactoryLabour {
                id: fac.id.clone(),
                worker_hours: hours,
                labour_productivity: Some(value_added.factories[f].value_added / hours),
            })
        })
        .collect();
    StaffKpis {
        labour_productivity: (worker_hours > 0.0).then(|| value_added.value_added / worker_hours),
        pools,
        worker_hours,
        factories,
    }
}
