//! The scene file format: what people write in `scenes/*.ron`.
//!
//! These types mirror the file one to one (names are ids, durations are strings with
//! units). [`crate::model::Model::build`] validates a [`Scene`] and resolves it into the
//! indexed form the engine runs. Experiments edit a `Scene` and build it again, so every
//! edit is validated exactly like a file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::dist::Dist;
use crate::error::{Location, SceneError, SceneErrors};
use crate::time::Duration;

/// A whole scene: the complex, its products and how long to run it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
}

fn default_seed() -> u64 {
    1
}

/// Default run length and warm-up of a scene.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
}

fn default_factory_size() -> (f64, f64) {
    (60.0, 40.0)
}

/// A shift calendar: working intervals repeated every `period`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarSpec {
    pub id: String,
    /// Length of one cycle, e.g. "24h" or "7d".
    pub period: Duration,
    /// Working intervals `(start, end)` as offsets into the period, ascending and disjoint.
    pub shifts: Vec<(Duration, Duration)>,
}

/// A product type.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
}

/// One operation of a routing.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepSpec {
    /// Name of the operation, for reports ("weld", "inspect").
    #[serde(default)]
    pub op: String,
    /// Stations that can do it; a part joins the least loaded one that has room.
    pub at: Vec<String>,
    /// Processing time of this operation on any of those stations.
    pub time: Dist,
}

/// What a station is, for drawing and reports; behaviour comes from its parameters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
}

fn one() -> u32 {
    1
}

/// Breakdowns: time between failures is exponential with mean `mtbf` (calendar time);
/// repair takes `mttr` (exponential with that mean unless `repair` gives a distribution).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailureSpec {
    pub mtbf: Duration,
    pub mttr: Duration,
    #[serde(default)]
    pub repair: Option<Dist>,
}

/// An accumulating conveyor between two stations.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Arrivals {
    /// Poisson process: exponential gaps with the given mean rate.
    Poisson { per_hour: f64 },
    /// One part every `every`, the first at time `every`.
    Interval { every: Duration },
    /// Releases read from a CSV file `time,product,quantity` (path relative to the scene).
    Schedule { file: String },
    /// Unlimited raw material: the first station of the routing is never starved.
    Saturated,
}

/// A source of parts (orders released to the floor).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinkSpec {
    pub id: String,
    #[serde(default)]
    pub factory: Option<String>,
    #[serde(default)]
    pub pos: Option<(f64, f64)>,
}

/// One release of a schedule file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
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
