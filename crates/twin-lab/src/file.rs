//! The experiment file format: what people write in `scenes/experiments/*.ron`.
//!
//! These types mirror the file one to one, like `twin_core::scene` does for scenes.
//! [`crate::Experiment`] validates them, expands sweeps into variants and builds one
//! model per variant.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use twin_core::dist::Dist;
use twin_core::scene::StationSpec;
use twin_core::time::Duration;

/// A whole experiment file.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename = "Experiment")]
pub struct ExperimentFile {
    /// Short name; also the default output folder `out/<name>`.
    pub name: String,
    /// The question the experiment answers.
    #[serde(default)]
    pub description: String,
    /// Base scene file, relative to the experiment file.
    pub scene: String,
    /// Replications per variant; at least 2, since an interval needs two observations.
    pub replications: u32,
    /// Base seed of the replication seeds; default: the scene's seed.
    #[serde(default)]
    pub seed: Option<u64>,
    /// Replication k of every variant uses the same seed (common random numbers), so
    /// that differences between variants are not drowned in noise. On by default.
    #[serde(default = "yes")]
    pub common_random_numbers: bool,
    /// Confidence level of every interval.
    #[serde(default = "default_confidence")]
    pub confidence: f64,
    /// Run length and warm-up; each defaults to the scene's own `run`.
    #[serde(default)]
    pub run: RunOverride,
    /// KPIs to compare, by path into the run report (see [`crate::kpi`]).
    pub kpis: Vec<KpiSpec>,
    /// Variant every other one is compared against; default: the first variant.
    #[serde(default)]
    pub baseline: Option<String>,
    /// Named variants, each a list of edits to the base scene.
    #[serde(default)]
    pub variants: Vec<VariantSpec>,
    /// Grids over one or two parameters, each point a variant.
    #[serde(default)]
    pub sweeps: Vec<SweepSpec>,
}

fn yes() -> bool {
    true
}

fn default_confidence() -> f64 {
    0.95
}

/// Run length and warm-up of every replication.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunOverride {
    #[serde(default)]
    pub until: Option<Duration>,
    #[serde(default)]
    pub warmup: Option<Duration>,
}

/// One KPI to compare: a bare path (`"complex.wip_mean"`), or
/// `(path: ..., name: ..., better: Higher | Lower)` to label it or set its direction.
#[derive(Clone, Debug, PartialEq)]
pub struct KpiSpec {
    /// Path into the report, e.g. `complex.throughput_per_hour`.
    pub path: String,
    /// Label in tables and plots; default: the path.
    pub name: Option<String>,
    /// Which direction is better, for the ranking; default: guessed from the path
    /// (lead times, WIP, queues, waits, blocked/starved/down shares: lower).
    pub better: Option<Better>,
}

/// The long form of [`KpiSpec`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KpiFull {
    path: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    better: Option<Better>,
}

impl<'de> Deserialize<'de> for KpiSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = KpiSpec;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a KPI path string or (path: ..., name: ..., better: ...)")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<KpiSpec, E> {
                Ok(KpiSpec { path: v.to_string(), name: None, better: None })
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<KpiSpec, A::Error> {
                // Delegating keeps serde's messages for unknown or missing fields.
                let full = KpiFull::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(KpiSpec { path: full.path, name: full.name, better: full.better })
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// Which direction of a KPI is an improvement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Better {
    Higher,
    Lower,
}

/// A named variant: the base scene with these edits applied in order.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariantSpec {
    pub name: String,
    #[serde(default)]
    pub edits: Vec<Edit>,
}

/// One change to the base scene. Ids are those of the scene file.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Edit {
    /// Sets a station's input buffer capacity; `None` makes it unlimited.
    SetBuffer { station: String, capacity: Option<u32> },
    /// Sets a station's number of identical parallel servers.
    SetServers { station: String, servers: u32 },
    /// Adds a station. It joins the routings either as an alternative wherever an
    /// existing station is listed (`alternative_to`), or as a new operation (`step`).
    AddStation {
        /// Boxed: a full station spec is large and the other edits are small.
        station: Box<StationSpec>,
        #[serde(default)]
        alternative_to: Option<String>,
        #[serde(default)]
        step: Option<NewStep>,
    },
    /// Removes a station, its conveyors, and its place in every routing step. A step
    /// the station alone served is dropped from the routing (the operation is no longer
    /// done); a routing left empty is an error.
    RemoveStation { station: String },
    /// Moves a station on the site plan (and optionally into another factory).
    MoveStation {
        station: String,
        pos: (f64, f64),
        #[serde(default)]
        factory: Option<String>,
    },
    /// Sets the mean release rate of a Poisson or fixed-interval source.
    SetArrivalRate { source: String, per_hour: f64 },
    /// Replaces a source's product mix (relative weights by product id).
    SetMix { source: String, mix: BTreeMap<String, f64> },
    /// Sets one product's weight in a source's mix, adding the product if it is new.
    SetMixWeight { source: String, product: String, weight: f64 },
    /// Replaces the working intervals (and optionally the period) of a shift calendar.
    SetShifts {
        calendar: String,
        shifts: Vec<(Duration, Duration)>,
        #[serde(default)]
        period: Option<Duration>,
    },
    /// Puts a station on a shift calendar; `None` means always working.
    SetCalendar { station: String, calendar: Option<String> },
    /// Sets the number of vehicles of an AGV / AMR fleet.
    SetAgvCount { fleet: String, count: u32 },
    /// Sets the number of trucks on the roads.
    SetTruckCount { count: u32 },
}

/// A new routing operation done by an added station.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewStep {
    /// Product whose routing gets the operation.
    pub product: String,
    /// Operation (`op`) it follows; `None` puts it first.
    #[serde(default)]
    pub after: Option<String>,
    /// Name of the new operation.
    #[serde(default)]
    pub op: String,
    /// Processing time of the new operation.
    pub time: Dist,
}

/// A grid over one or two parameters; every point becomes a variant named
/// `"<name> <param>=<value>[, <param>=<value>]"`, or without the name when it is empty.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepSpec {
    #[serde(default)]
    pub name: String,
    /// Edits applied to every point before the swept parameters.
    #[serde(default)]
    pub edits: Vec<Edit>,
    /// One or two axes; with two, every combination is a point.
    pub axes: Vec<Axis>,
}

/// One swept parameter and its values.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Axis {
    pub param: Param,
    pub values: Vec<f64>,
}

/// A parameter a sweep can vary.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub enum Param {
    /// Input buffer capacity of a station (whole numbers, at least 1).
    Buffer(String),
    /// Parallel servers of a station (whole numbers, at least 1).
    Servers(String),
    /// Release rate of a source, parts per hour.
    ArrivalRate(String),
    /// Mix weight of one product at a source: `MixWeight("source", "product")`.
    MixWeight(String, String),
    /// Vehicles of an AGV fleet (whole numbers, at least 1).
    Agvs(String),
    /// Trucks on the roads (whole numbers, at least 1).
    Trucks,
}

impl Param {
    /// Short label used in generated variant names, e.g. `mill.buffer`.
    pub fn label(&self) -> String {
        match self {
            Param::Buffer(s) => format!("{s}.buffer"),
            Param::Servers(s) => format!("{s}.servers"),
            Param::ArrivalRate(s) => format!("{s}.per_hour"),
            Param::MixWeight(s, p) => format!("{s}.mix.{p}"),
            Param::Agvs(f) => format!("{f}.count"),
            Param::Trucks => "trucks.count".to_string(),
        }
    }

    /// The edit that sets this parameter to `value`, or why `value` does not fit it.
    pub fn edit(&self, value: f64) -> Result<Edit, String> {
        let whole = |min: u32| -> Result<u32, String> {
            if value.fract() == 0.0 && value >= f64::from(min) && value <= f64::from(u32::MAX) {
                Ok(value as u32)
            } else {
                Err(format!("{} must be a whole number of at least {min}, got {value}", self.label()))
            }
        };
        Ok(match self {
            Param::Buffer(station) => Edit::SetBuffer { station: station.clone(), capacity: Some(whole(1)?) },
            Param::Servers(station) => Edit::SetServers { station: station.clone(), servers: whole(1)? },
            Param::ArrivalRate(source) => Edit::SetArrivalRate { source: source.clone(), per_hour: value },
            Param::MixWeight(source, product) => {
                Edit::SetMixWeight { source: source.clone(), product: product.clone(), weight: value }
            }
            Param::Agvs(fleet) => Edit::SetAgvCount { fleet: fleet.clone(), count: whole(1)? },
            Param::Trucks => Edit::SetTruckCount { count: whole(1)? },
        })
    }
}

/// The RON options experiment files are read with, the same as scenes: `Some(x)` may be
/// written as plain `x`.
pub(crate) fn ron_options() -> ron::Options {
    ron::Options::default().with_default_extension(ron::extensions::Extensions::IMPLICIT_SOME)
}
