//! The validated, resolved model the simulation runs: a scene with ids replaced by
//! dense indices, distributions compiled and defaults filled in.
//!
//! - `types`: the model's types.
//! - `build`: scene -> model, each section built once, complete.
//! - `problems`: every problem with its field path and place, in a fixed order.
//! - `complex`: the complex-level sections (pools, path graphs, fleets, roads, trucks,
//!   materials).
//! - `flow`: how parts move through the model (routes between stations, shipping to
//!   the hub, the possible flow links); the simulation and the server both ask here.

mod build;
mod complex;
mod flow;
mod problems;
mod types;

pub use self::build::MAX_ARRIVALS_PER_HOUR;
pub use self::complex::MAX_SITE_M;
pub use self::flow::{Endpoint, FlowLink, Route};
pub use self::types::{
    Battery, Calendar, Conveyor, Factory, Failures, Fleet, Material, Model, PartSource, Power, Product,
    ProductIdx, Release, Sink, StaffPool, Station, StationIdx, Step, Trucks,
};

use crate::error::SceneErrors;
use crate::scene;

impl Model {
    /// Loads, parses and validates a scene file in one go.
    pub fn load(path: &std::path::Path) -> Result<Model, SceneErrors> {
        let (scene, source, schedules) = scene::load(path)?;
        Model::build(&scene, Some(&source), &schedules)
    }

    /// Index of the station with this id.
    pub fn station(&self, id: &str) -> Option<StationIdx> {
        self.stations.iter().position(|s| s.id == id).map(|i| i as StationIdx)
    }

    /// Index of the product with this id.
    pub fn product(&self, id: &str) -> Option<ProductIdx> {
        self.products.iter().position(|s| s.id == id).map(|i| i as ProductIdx)
    }
}
