//! The resolved model's types: ids replaced by dense indices, distributions compiled,
//! defaults filled in. Built only by [`Model::build`](super::Model::build).

use nalgebra::Point2;

use crate::dist::Sampler;
use crate::graph::Graph;
use crate::scene::{DispatchRule, StationKind, Utilities};
use crate::time::{HOUR, Micros};

/// Dense index of a station in [`Model::stations`].
pub type StationIdx = u32;
/// Dense index of a product in [`Model::products`].
pub type ProductIdx = u16;

/// A validated scene, ready to simulate.
#[derive(Clone, Debug)]
pub struct Model {
    /// SHA-256 of the scene and the schedule files it reads: what a snapshot belongs to.
    pub scene_hash: [u8; 32],
    pub name: String,
    pub description: String,
    pub seed: u64,
    pub until: Micros,
    pub warmup: Micros,
    pub factories: Vec<Factory>,
    pub calendars: Vec<Calendar>,
    pub products: Vec<Product>,
    pub stations: Vec<Station>,
    pub conveyors: Vec<Conveyor>,
    pub sources: Vec<PartSource>,
    pub sinks: Vec<Sink>,
    pub utilities: Utilities,
    pub staff: Vec<StaffPool>,
    /// AGV path graphs.
    pub graphs: Vec<Graph>,
    pub fleets: Vec<Fleet>,
    /// The road network and its hub node.
    pub roads: Option<(Graph, u32)>,
    pub trucks: Option<Trucks>,
    pub materials: Vec<Material>,
    /// The complex's place in the programme, as the scene states it (checked, unchanged).
    pub programme: Option<crate::scene::ProgrammeSpec>,
}

/// A pool of workers.
#[derive(Clone, Debug)]
pub struct StaffPool {
    pub id: String,
    pub factory: Option<u32>,
    pub size: u32,
    pub calendar: Option<u32>,
}

/// Power per server by station state, kW.
#[derive(Clone, Copy, Debug)]
pub struct Power {
    pub busy: f64,
    pub idle: f64,
    pub setup: f64,
    pub down: f64,
    pub off: f64,
}

#[derive(Clone, Copy, Debug)]
pub struct Battery {
    pub capacity_kwh: f64,
    pub drive_kwh_per_m: f64,
    pub idle_kw: f64,
    pub charge_kw: f64,
    pub threshold: f64,
}

/// An AGV fleet.
#[derive(Clone, Debug)]
pub struct Fleet {
    pub id: String,
    pub graph: u32,
    /// Factory whose `agv` this fleet is, for energy and KPIs.
    pub factory: Option<u32>,
    pub count: u32,
    pub speed_m_s: f64,
    pub capacity: u32,
    pub load_time: Micros,
    pub home: Vec<u32>,
    pub battery: Option<Battery>,
    pub rule: DispatchRule,
}

/// Trucks on the road network.
#[derive(Clone, Debug)]
pub struct Trucks {
    pub count: u32,
    pub capacity: u32,
    pub speed_m_s: f64,
    pub load_time: Micros,
    /// Units waiting for one destination that trigger a trip (1 with a timetable).
    pub min_load: u32,
    /// Timetable period, if trucks run on one.
    pub every: Option<Micros>,
    pub kwh_per_km: f64,
}

/// A bought-in material.
#[derive(Clone, Debug)]
pub struct Material {
    pub id: String,
    pub unit_cost: f64,
    pub hub_initial: u32,
    pub reorder_point: u32,
    pub order_quantity: u32,
    pub lead_time: Micros,
    pub factory_initial: u32,
    pub factory_reorder: u32,
    pub factory_order: u32,
}

#[derive(Clone, Debug)]
pub struct Factory {
    pub id: String,
    pub name: String,
    pub industry: String,
    pub origin: Point2<f64>,
    pub size: (f64, f64),
    /// AGV fleet moving parts between this factory's stations.
    pub agv: Option<u32>,
    /// Road node of the dock.
    pub dock: Option<u32>,
}

#[derive(Clone, Debug)]
pub struct Calendar {
    pub id: String,
    pub period: Micros,
    /// Working intervals within one period, ascending and disjoint.
    pub shifts: Vec<(Micros, Micros)>,
}

impl Calendar {
    /// Whether the calendar is on shift at `t`, and the next time that changes.
    pub fn state_at(&self, t: Micros) -> (bool, Micros) {
        let base = t - t % self.period;
        let offset = t - base;
        for &(start, end) in &self.shifts {
            if offset < start {
                return (false, base + start);
            }
            if offset < end {
                return (true, base + end);
            }
        }
        let first = self.shifts.first().map_or(self.period, |s| s.0);
        (false, base + self.period + first)
    }
}

#[derive(Clone, Debug)]
pub struct Product {
    pub id: String,
    pub name: String,
    pub steps: Vec<Step>,
    pub price: f64,
    pub material_cost: f64,
    pub sink: Option<u32>,
    /// Materials consumed per unit at release: `(material, quantity)`.
    pub materials: Vec<(u32, u32)>,
}

#[derive(Clone, Debug)]
pub struct Step {
    pub op: String,
    /// Alternative stations, in the order the scene lists them (ties go to the first).
    pub at: Vec<StationIdx>,
    pub time: Sampler,
    /// Mean processing time, microseconds.
    pub mean: f64,
    /// Fleet that carries parts to this step, overriding the factory's.
    pub carry: Option<u32>,
}

#[derive(Clone, Debug)]
pub struct Station {
    pub id: String,
    pub name: String,
    pub kind: StationKind,
    pub factory: Option<u32>,
    pub pos: Point2<f64>,
    pub servers: u32,
    /// Input buffer capacity; None is unlimited.
    pub buffer: Option<u32>,
    pub setup: Option<Sampler>,
    pub failures: Option<Failures>,
    pub scrap: f64,
    pub calendar: Option<u32>,
    /// Conveyors leaving this station, by the station they feed.
    pub conveyors_out: Vec<(StationIdx, u32)>,
    /// Saturated sources whose parts start here.
    pub saturated_by: Vec<u32>,
    pub power: Option<Power>,
    /// AGV node `(graph, node)` where parts are dropped and picked up.
    pub node: Option<(u32, u32)>,
    pub pool: Option<u32>,
    pub crew: u32,
}

#[derive(Clone, Debug)]
pub struct Failures {
    /// Mean time between failures, microseconds.
    pub mtbf: f64,
    pub repair: Sampler,
}

#[derive(Clone, Debug)]
pub struct Conveyor {
    pub id: String,
    pub from: StationIdx,
    pub to: StationIdx,
    pub length_m: f64,
    pub speed_m_s: f64,
    pub capacity: u32,
    /// Time a part takes from one end to the other.
    pub travel: Micros,
}

#[derive(Clone, Debug)]
pub enum Release {
    /// Mean gap between parts, microseconds.
    Poisson {
        mean_gap: f64,
    },
    Interval(Micros),
    /// `(time, product, quantity)` ascending in time.
    Schedule(Vec<(Micros, ProductIdx, u32)>),
    Saturated,
}

#[derive(Clone, Debug)]
pub struct PartSource {
    pub id: String,
    pub release: Release,
    /// Cumulative mix probabilities by product, ascending.
    pub mix: Vec<(f64, ProductIdx)>,
    pub due: Option<Micros>,
    pub pos: Point2<f64>,
}

impl PartSource {
    /// Mean parts per hour this source releases, where that is defined.
    pub fn rate_per_hour(&self) -> Option<f64> {
        match &self.release {
            Release::Poisson { mean_gap } => Some(HOUR as f64 / mean_gap),
            Release::Interval(gap) => Some(HOUR as f64 / *gap as f64),
            _ => None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Sink {
    pub id: String,
    pub factory: Option<u32>,
    pub pos: Point2<f64>,
}
