//! The scene file format: what people write in `scenes/*.ron`.
//!
//! These types mirror the file one to one (names are ids, durations are strings with
//! units). [`crate::model::Model::build`] validates a [`Scene`] and resolves it into the
//! indexed form the engine runs. Experiments edit a `Scene` and build it again, so every
//! edit is validated exactly like a file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::dist::Dist;
use crate::error::{Location, SceneError, SceneErrors};
use crate::time::Duration;

/// A whole scene: the complex, its products and how long to run it.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename = "Scene")]
pub struct Scene {
    /// Human-readable title.
    pub name: String,
    /// What the scene shows and why its numbers are what they are.
    #[serde(default)]
    pub description: String,
    /// Default seed for the random streams; the command line can override it.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Default run length and warm-up.
    #[serde(default)]
    pub run: RunSpec,
    /// Factories on the site plan; stations may name the factory they stand in.
    #[serde(default)]
    pub factories: Vec<FactorySpec>,
    /// Shift calendars that stations may follow.
    #[serde(default)]
    pub calendars: Vec<CalendarSpec>,
    /// Product types and their routings.
    pub products: Vec<ProductSpec>,
    /// Machines, robot cells, inspection and assembly stations.
    pub stations: Vec<StationSpec>,
    /// Conveyors that carry parts from one station to the next.
    #[serde(default)]
    pub conveyors: Vec<ConveyorSpec>,
    /// Where parts come from.
    pub sources: Vec<SourceSpec>,
    /// Where finished parts leave (shipping docks); optional.
    #[serde(default)]
    pub sinks: Vec<SinkSpec>,
    /// Power price and grid carbon intensity, for energy cost and CO2.
    #[serde(default)]
    pub utilities: Utilities,
    /// Worker pools that stations need to run.
    #[serde(default)]
    pub staff: Vec<StaffSpec>,
    /// AGV path graphs (one per factory floor, usually).
    #[serde(default)]
    pub paths: Vec<PathGraphSpec>,
    /// AGV / AMR fleets running on the path graphs.
    #[serde(default)]
    pub fleets: Vec<FleetSpec>,
    /// The road network between factory docks and the shared hub.
    #[serde(default)]
    pub roads: Option<RoadSpec>,
    /// Trucks or shuttles on the roads.
    #[serde(default)]
    pub trucks: Option<TruckSpec>,
    /// Bought-in materials held at the hub and the factories.
    #[serde(default)]
    pub materials: Vec<MaterialSpec>,
    /// Where the complex stands in the national programme (identity, baseline, targets);
    /// read by the server's programme registration, never by the simulation.
    #[serde(default)]
    pub programme: Option<ProgrammeSpec>,
}

/// A complex's place in the programme: who it is, where it started and what it aims at.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProgrammeSpec {
    /// The complex's id on the programme's registry: 1..64 of `[A-Za-z0-9_-]`.
    pub complex_id: String,
    /// Human-readable name of the complex.
    pub name: String,
    /// Region it lies in.
    #[serde(default)]
    pub region: String,
    /// Its main industry.
    #[serde(default)]
    pub industry: String,
    /// Labour productivity (value added per worker-hour, the scene's currency) before the
    /// programme, measured once on the complex's pre-programme layout; what the
    /// productivity target is a gain over.
    #[serde(default)]
    pub baseline_labour_productivity: Option<f64>,
    /// The programme's targets.
    pub targets: ProgrammeTargets,
}

/// The programme's headline targets.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProgrammeTargets {
    /// Value-added rate to reach, a fraction (0.30 for 30%).
    pub value_added_rate: f64,
    /// Rise of labour productivity over the baseline, a fraction (0.40 for +40%).
    pub labour_productivity_gain: f64,
}

/// Power price and grid carbon intensity.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Utilities {
    /// Price of one kWh of electricity, in the scene's currency.
    #[serde(default = "default_power_price")]
    pub power_price: f64,
    /// kg of CO2 emitted per kWh drawn from the grid.
    #[serde(default = "default_co2")]
    pub co2_kg_per_kwh: f64,
    /// Currency name for reports.
    #[serde(default = "default_currency")]
    pub currency: String,
}

fn default_power_price() -> f64 {
    0.15
}
fn default_co2() -> f64 {
    0.45
}
fn default_currency() -> String {
    "EUR".into()
}

impl Default for Utilities {
    fn default() -> Self {
        Utilities {
            power_price: default_power_price(),
            co2_kg_per_kwh: default_co2(),
            currency: default_currency(),
        }
    }
}

/// A pool of workers that stations draw from while they set up or process.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaffSpec {
    pub id: String,
    /// Factory the workers belong to (for labour productivity per factory).
    #[serde(default)]
    pub factory: Option<String>,
    /// Workers present on shift.
    pub size: u32,
    /// Calendar of the pool's shifts; none means always present.
    #[serde(default)]
    pub calendar: Option<String>,
}

/// Power drawn by a station (per server) in each state, kW.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PowerSpec {
    /// While processing.
    pub busy_kw: f64,
    /// While starved or blocked (standby).
    #[serde(default)]
    pub idle_kw: f64,
    /// While changing over; the busy draw when omitted.
    #[serde(default)]
    pub setup_kw: Option<f64>,
    /// While broken down.
    #[serde(default)]
    pub down_kw: f64,
    /// Outside the shift calendar.
    #[serde(default)]
    pub off_kw: f64,
}

/// A graph of AGV paths: nodes in metres and edges between them.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PathGraphSpec {
    pub id: String,
    #[serde(default)]
    pub factory: Option<String>,
    /// `(id, x, y)` on the site plan, metres.
    pub nodes: Vec<(String, f64, f64)>,
    pub edges: Vec<EdgeSpec>,
    /// Nodes with a charging station.
    #[serde(default)]
    pub chargers: Vec<String>,
}

/// A path segment; its length is the distance between its nodes.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EdgeSpec {
    pub from: String,
    pub to: String,
    /// Whether vehicles may drive it both ways (one vehicle at a time either way).
    #[serde(default = "yes")]
    pub two_way: bool,
    /// Speed limit on this segment, m/s; the vehicle's own speed applies when lower.
    #[serde(default)]
    pub speed_limit: Option<f64>,
}

fn yes() -> bool {
    true
}

/// How a fleet picks a vehicle for a transport order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
pub enum DispatchRule {
    /// The idle vehicle with the shortest path to the pickup.
    #[default]
    NearestIdle,
    /// The idle vehicle that has been idle longest.
    FirstCome,
}

/// A fleet of identical AGVs / AMRs.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetSpec {
    pub id: String,
    /// Path graph the fleet drives on.
    pub paths: String,
    pub count: u32,
    /// Cruise speed, m/s.
    pub speed_m_s: f64,
    /// Parts carried per trip (orders with the same pickup and drop share a trip).
    #[serde(default = "one")]
    pub capacity: u32,
    /// Time to load or to unload at a station.
    #[serde(default)]
    pub load_time: Duration,
    /// Parking nodes; vehicles start spread over them and return there when idle.
    pub home: Vec<String>,
    #[serde(default)]
    pub battery: Option<BatterySpec>,
    #[serde(default)]
    pub rule: DispatchRule,
}

/// A vehicle battery.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatterySpec {
    pub capacity_kwh: f64,
    /// Energy per metre driven.
    pub drive_kwh_per_m: f64,
    /// Draw while standing (electronics, lifts).
    #[serde(default)]
    pub idle_kw: f64,
    /// Charging power.
    pub charge_kw: f64,
    /// State of charge (0..1) under which a vehicle goes to charge after a trip.
    pub threshold: f64,
}

/// The road network: nodes in metres, two-way roads between them.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoadSpec {
    /// `(id, x, y)` on the site plan, metres.
    pub nodes: Vec<(String, f64, f64)>,
    /// Two-way roads `(from, to)`; length is the distance between the nodes.
    pub edges: Vec<(String, String)>,
    /// Node of the shared logistics hub (warehouse, supplier gate, shipping).
    pub hub: String,
}

/// When a truck leaves a dock with what waits there.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum TruckDispatch {
    /// As soon as this many units wait for the same destination (or a full load).
    Batch { min_load: u32 },
    /// Every `every`, taking whatever waits (at least one unit).
    Timetable { every: Duration },
}

/// Trucks or shuttles carrying parts and materials between docks and the hub.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TruckSpec {
    pub count: u32,
    /// Units (parts or material) per load.
    pub capacity: u32,
    pub speed_m_s: f64,
    /// Time to load or to unload at a dock.
    pub load_time: Duration,
    pub dispatch: TruckDispatch,
    /// Energy per km driven (kWh, or kWh-equivalent for diesel).
    #[serde(default)]
    pub kwh_per_km: f64,
}

/// A bought-in material: supplier -> hub -> factories, consumed when a part is released.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaterialSpec {
    pub id: String,
    /// Cost of one unit, in the scene's currency (counted in value added).
    #[serde(default)]
    pub unit_cost: f64,
    /// Stock at the hub at time zero.
    pub hub_initial: u32,
    /// The hub orders `order_quantity` from the supplier when stock plus open orders
    /// fall to `reorder_point`; the order arrives after `lead_time`.
    pub reorder_point: u32,
    pub order_quantity: u32,
    pub lead_time: Duration,
    /// Stock at each factory that uses the material, at time zero.
    pub factory_initial: u32,
    /// A factory asks the hub for `factory_order` units when its stock plus deliveries
    /// on the way fall to `factory_reorder`.
    pub factory_reorder: u32,
    pub factory_order: u32,
}

fn default_seed() -> u64 {
    1
}

/// Default run length and warm-up of a scene.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSpec {
    /// Simulated time at which the run ends.
    #[serde(default = "default_until")]
    pub until: Duration,
    /// Initial period excluded from every KPI, so that the empty start does not bias them.
    #[serde(default)]
    pub warmup: Duration,
}

fn default_until() -> Duration {
    Duration(8 * crate::time::HOUR)
}

impl Default for RunSpec {
    fn default() -> Self {
        RunSpec { until: default_until(), warmup: Duration(0) }
    }
}

/// A factory: a rectangle on the site plan.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FactorySpec {
    pub id: String,
    #[serde(default)]
    pub name: String,
    /// Industry, for labels (e.g. "secondary-battery cells").
    #[serde(default)]
    pub industry: String,
    /// South-west corner on the site plan, metres.
    #[serde(default)]
    pub origin: (f64, f64),
    /// Width (x) and depth (y), metres.
    #[serde(default = "default_factory_size")]
    pub size: (f64, f64),
    /// AGV fleet that carries parts between this factory's stations (those with a `node`).
    #[serde(default)]
    pub agv: Option<String>,
    /// Road node of the factory's dock, where trucks load and unload.
    #[serde(default)]
    pub dock: Option<String>,
}

fn default_factory_size() -> (f64, f64) {
    (60.0, 40.0)
}

/// A shift calendar: working intervals repeated every `period`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarSpec {
    pub id: String,
    /// Length of one cycle, e.g. "24h" or "7d".
    pub period: Duration,
    /// Working intervals `(start, end)` as offsets into the period, ascending and disjoint.
    pub shifts: Vec<(Duration, Duration)>,
}

/// A product type.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProductSpec {
    pub id: String,
    #[serde(default)]
    pub name: String,
    /// Operations in order.
    pub routing: Vec<StepSpec>,
    /// Selling price of one good unit, in currency units.
    #[serde(default)]
    pub price: f64,
    /// Bought-in material per unit, in currency units.
    #[serde(default)]
    pub material_cost: f64,
    /// Sink where finished units leave; none means they simply leave the complex.
    #[serde(default)]
    pub sink: Option<String>,
    /// Bought-in materials consumed per unit when it is released, by material id.
    #[serde(default)]
    pub materials: BTreeMap<String, u32>,
}

/// One operation of a routing.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepSpec {
    /// Name of the operation, for reports ("weld", "inspect").
    #[serde(default)]
    pub op: String,
    /// Stations that can do it; a part joins the least loaded one that has room.
    pub at: Vec<String>,
    /// Processing time of this operation on any of those stations.
    pub time: Dist,
    /// AGV fleet that brings the part to this step, overriding the factory's `agv`.
    #[serde(default)]
    pub carry: Option<String>,
}

/// What a station is, for drawing and reports; behaviour comes from its parameters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
pub enum StationKind {
    #[default]
    Machine,
    RobotCell,
    RobotArm,
    Inspection,
    Assembly,
    Packing,
    Oven,
}

/// A station: one or more identical parallel servers fed from one input buffer.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StationSpec {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub kind: StationKind,
    /// Factory the station stands in.
    #[serde(default)]
    pub factory: Option<String>,
    /// Position on the site plan, metres.
    #[serde(default)]
    pub pos: Option<(f64, f64)>,
    /// Parallel servers (identical machines sharing the input buffer).
    #[serde(default = "one")]
    pub servers: u32,
    /// Capacity of the input buffer: parts waiting, not counting those in service.
    /// None means unlimited. When it is full, upstream stations block after service.
    #[serde(default)]
    pub buffer: Option<u32>,
    /// Changeover time whenever a server switches to a different product.
    #[serde(default)]
    pub setup: Option<Dist>,
    /// Random breakdowns.
    #[serde(default)]
    pub failures: Option<FailureSpec>,
    /// Share of processed parts that are scrapped, 0 to below 1.
    #[serde(default)]
    pub scrap: f64,
    /// Shift calendar; none means always working.
    #[serde(default)]
    pub calendar: Option<String>,
    /// Power draw per server by state.
    #[serde(default)]
    pub power: Option<PowerSpec>,
    /// AGV path node where parts are dropped and picked up.
    #[serde(default)]
    pub node: Option<String>,
    /// Worker pool the station draws its crew from.
    #[serde(default)]
    pub pool: Option<String>,
    /// Workers each server needs while it sets up or processes.
    #[serde(default)]
    pub crew: u32,
}

fn one() -> u32 {
    1
}

/// Breakdowns: time between failures is exponential with mean `mtbf` (calendar time);
/// repair takes `mttr` (exponential with that mean unless `repair` gives a distribution).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailureSpec {
    pub mtbf: Duration,
    pub mttr: Duration,
    #[serde(default)]
    pub repair: Option<Dist>,
}

/// An accumulating conveyor between two stations.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConveyorSpec {
    pub id: String,
    /// Station whose finished parts go on the conveyor.
    pub from: String,
    /// Station whose input buffer the conveyor feeds.
    pub to: String,
    pub length_m: f64,
    pub speed_m_s: f64,
    /// Parts the conveyor can hold at once, moving or accumulated at its end.
    pub capacity: u32,
}

/// How a source releases parts.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Arrivals {
    /// Poisson process: exponential gaps with the given mean rate.
    Poisson { per_hour: f64 },
    /// One part every `every`, the first at time `every`.
    Interval { every: Duration },
    /// Releases read from a CSV file `time,product,quantity` (path relative to the scene).
    Schedule { file: String },
    /// Unlimited raw material: the first station of the routing is never starved.
    #[default]
    Saturated,
}

/// A source of parts (orders released to the floor).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSpec {
    pub id: String,
    pub arrivals: Arrivals,
    /// Product mix: relative weights by product id.
    #[serde(default)]
    pub mix: BTreeMap<String, f64>,
    /// Due date of each part, counted from its release.
    #[serde(default)]
    pub due: Option<Duration>,
    #[serde(default)]
    pub pos: Option<(f64, f64)>,
}

/// A shipping dock or other exit for finished parts.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinkSpec {
    pub id: String,
    #[serde(default)]
    pub factory: Option<String>,
    #[serde(default)]
    pub pos: Option<(f64, f64)>,
}

/// One release of a schedule file.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Release {
    pub at: Duration,
    pub product: String,
    pub quantity: u32,
}

/// A scene file's text, kept so that errors found after parsing can point at lines.
#[derive(Clone, Debug)]
pub struct Source {
    /// Where the text came from, as shown in messages.
    pub origin: PathBuf,
    pub text: String,
}

impl Source {
    /// Finds each anchor in turn, each after the previous one, and returns the place of
    /// the last. Used to point semantic errors (found after parsing) at a line.
    pub fn locate(&self, anchors: &[&str]) -> Option<Location> {
        let mut from = 0;
        let mut at = None;
        for anchor in anchors {
            let idx = self.text[from..].find(anchor)? + from;
            at = Some(idx);
            from = idx + anchor.len();
        }
        let idx = at?;
        let before = &self.text[..idx];
        let line = before.matches('\n').count() + 1;
        let col = idx - before.rfind('\n').map_or(0, |n| n + 1) + 1;
        Some(Location { line, col })
    }
}

/// The RON options scene files are read with: `Some(x)` may be written as plain `x`.
fn ron_options() -> ron::Options {
    ron::Options::default().with_default_extension(ron::extensions::Extensions::IMPLICIT_SOME)
}

/// Parses scene text; syntax and type errors name the line, column and what was expected.
pub fn parse(source: &Source) -> Result<Scene, SceneErrors> {
    ron_options().from_str::<Scene>(&source.text).map_err(|e| {
        SceneErrors(vec![SceneError {
            origin: source.origin.clone(),
            location: Some(Location { line: e.span.start.line, col: e.span.start.col }),
            path: String::new(),
            message: e.code.to_string(),
        }])
    })
}

/// Reads and parses a scene file, then reads the schedule files it names.
///
/// This and [`Schedules::read`] are the only places where the core touches the file
/// system; the engine itself never does.
pub fn load(path: &Path) -> Result<(Scene, Source, Schedules), SceneErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| SceneErrors::io(path, &e))?;
    let source = Source { origin: path.to_path_buf(), text };
    let scene = parse(&source)?;
    let base = path.parent().unwrap_or(Path::new("."));
    let schedules = Schedules::read(&scene, &source, base)?;
    Ok((scene, source, schedules))
}

/// Releases read from the schedule files a scene names, keyed by file name as written.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct Schedules(pub BTreeMap<String, Vec<Release>>);

impl Schedules {
    /// Reads every schedule file that `scene` names, relative to `base`.
    pub fn read(scene: &Scene, source: &Source, base: &Path) -> Result<Schedules, SceneErrors> {
        let mut out = BTreeMap::new();
        let mut errors = Vec::new();
        for (i, src) in scene.sources.iter().enumerate() {
            let Arrivals::Schedule { file } = &src.arrivals else {
                continue;
            };
            let path = base.join(file);
            match std::fs::read_to_string(&path) {
                Ok(text) => match parse_schedule(&text) {
                    Ok(rows) => {
                        out.insert(file.clone(), rows);
                    }
                    Err((line, message)) => errors.push(SceneError {
                        origin: path.clone(),
                        location: Some(Location { line, col: 1 }),
                        path: String::new(),
                        message,
                    }),
                },
                Err(e) => errors.push(SceneError {
                    origin: source.origin.clone(),
                    location: source.locate(&["sources", &format!("\"{}\"", src.id), "file"]),
                    path: format!("sources[{i}].arrivals.file"),
                    message: format!("cannot read schedule file {}: {e}", path.display()),
                }),
            }
        }
        if errors.is_empty() { Ok(Schedules(out)) } else { Err(SceneErrors(errors)) }
    }
}

/// Parses `time,product,quantity` lines; `#` starts a comment, a header line is allowed.
pub fn parse_schedule(text: &str) -> Result<Vec<Release>, (usize, String)> {
    let mut rows = Vec::new();
    for (idx, raw) in text.lines().enumerate() {
        let line_no = idx + 1;
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() || (idx == 0 && line.starts_with("time")) {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let [at, product, quantity] = fields[..] else {
            return Err((line_no, format!("expected `time,product,quantity`, got `{line}`")));
        };
        let at = Duration::parse(at).map_err(|e| (line_no, e))?;
        let quantity = quantity
            .parse::<u32>()
            .map_err(|_| (line_no, format!("quantity `{quantity}` is not a whole number")))?;
        rows.push(Release { at, product: product.to_string(), quantity });
    }
    rows.sort_by_key(|r| r.at);
    Ok(rows)
}
