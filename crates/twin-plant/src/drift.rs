//! The drift file: how the emulated plant differs from the model, without the twin being
//! told. RON, like scene files; durations are strings with units (`"90s"`, `"1.5h"`).
//!
//! ```ron
//! Drift(
//!     description: "The tab welder runs 20% slower than planned.",
//!     // Per-station changes to the model. `processing` scales the processing-time
//!     // distribution of every routing step the station does (a step several stations
//!     // share can only be scaled when all of them get the same factor); `mtbf` and
//!     // `mttr` replace the station's failure parameters (a station without failures in
//!     // the scene needs both).
//!     stations: [
//!         (station: "bat_tabw", processing: 1.2),
//!         (station: "aut_cast", mtbf: "3h", mttr: "40m"),
//!     ],
//!     // Unannounced breakdowns: the station goes down at `at` (plant time) for
//!     // `duration`. Skipped (with a warning) if it is already down then.
//!     breakdowns: [(station: "bat_cal", at: "2h", duration: "45m")],
//!     // Gateways (edge nodes) that die: at `at` the factory's edge node publishes its
//!     // NDEATH and disconnects; after `down_for` it reconnects with bdSeq + 1 and a fresh
//!     // NBIRTH and DBIRTHs. What happened in between is not reported (counters in the
//!     // births are cumulative, so they catch up).
//!     gateways: [(factory: "bat", at: "3h", down_for: "10m")],
//!     // Devices (one station's data source) that die while their gateway lives: at `at`
//!     // the edge node publishes the station's DDEATH and stops reporting it; after
//!     // `down_for` it publishes a fresh DBIRTH (cumulative counters catch up).
//!     devices: [(station: "bat_cal", at: "4h", down_for: "5m")],
//! )
//! ```
//!
//! Every problem is reported with the file, line, column and field path.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Deserialize;
use twin_core::dist::Dist;
use twin_core::error::{Location, SceneError, SceneErrors};
use twin_core::scene::{FailureSpec, Scene, Source};
use twin_core::time::{Duration, MAX_SPAN, Micros};

/// A drift file as written.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename = "Drift")]
pub struct DriftFile {
    /// What this drift stands for, for people.
    #[serde(default)]
    pub description: String,
    /// Changes to stations' parameters.
    #[serde(default)]
    pub stations: Vec<StationDrift>,
    /// Breakdowns the model does not know of.
    #[serde(default)]
    pub breakdowns: Vec<BreakdownDrift>,
    /// Edge node outages.
    #[serde(default)]
    pub gateways: Vec<GatewayDrift>,
    /// Device (station data source) outages.
    #[serde(default)]
    pub devices: Vec<DeviceDrift>,
}

/// How one station differs from the model.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StationDrift {
    /// Station id in the scene.
    pub station: String,
    /// Factor on every processing time of the station (1.2 = 20% slower); > 0.
    #[serde(default)]
    pub processing: Option<f64>,
    /// New mean time between failures.
    #[serde(default)]
    pub mtbf: Option<Duration>,
    /// New mean time to repair (a repair distribution in the scene keeps its shape and
    /// gets this mean).
    #[serde(default)]
    pub mttr: Option<Duration>,
}

/// An unannounced breakdown.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreakdownDrift {
    pub station: String,
    /// Plant time it starts.
    pub at: Duration,
    /// How long the station stays down; > 0.
    pub duration: Duration,
}

/// An edge node (gateway) outage.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayDrift {
    /// Factory id, i.e. the edge node id (`site` for stations without a factory).
    pub factory: String,
    /// Plant time it dies (takes effect at the first publishing batch at or after it).
    pub at: Duration,
    /// How long it stays dead; > 0.
    pub down_for: Duration,
}

/// A device outage: one station's data source dies (DDEATH) while its edge node lives.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceDrift {
    /// Station id in the scene (its device id).
    pub station: String,
    /// Plant time it dies (takes effect at the first publishing batch at or after it).
    pub at: Duration,
    /// How long it stays dead; > 0.
    pub down_for: Duration,
}

/// A validated drift, ready to apply.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Drift {
    pub file: DriftFile,
}

/// The id of the edge node of stations and fleets without a factory.
pub const SITE_NODE: &str = "site";

fn ron_options() -> ron::Options {
    ron::Options::default().with_default_extension(ron::extensions::Extensions::IMPLICIT_SOME)
}

impl Drift {
    /// Reads, parses and validates a drift file against `scene`.
    pub fn load(path: &Path, scene: &Scene) -> Result<Drift, SceneErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            SceneErrors(vec![SceneError {
                origin: path.to_path_buf(),
                location: None,
                path: String::new(),
                message: format!("cannot read drift file: {e}"),
            }])
        })?;
        Drift::parse(&Source { origin: path.to_path_buf(), text }, scene)
    }

    /// Parses and validates drift text against `scene`; every problem is reported.
    pub fn parse(source: &Source, scene: &Scene) -> Result<Drift, SceneErrors> {
        let file: DriftFile = ron_options().from_str(&source.text).map_err(|e| {
            SceneErrors(vec![SceneError {
                origin: source.origin.clone(),
                location: Some(Location { line: e.span.start.line, col: e.span.start.col }),
                path: String::new(),
                message: e.code.to_string(),
            }])
        })?;
        let errors = validate(&file, source, scene);
        if errors.is_empty() { Ok(Drift { file }) } else { Err(SceneErrors(errors)) }
    }

    /// No drift: the plant is the model.
    pub fn none() -> Drift {
        Drift::default()
    }

    /// The scene as the plant really is: processing times scaled, failure parameters
    /// replaced. Assumes the drift was validated against this scene.
    pub fn apply(&self, scene: &mut Scene) {
        let factors: BTreeMap<&str, f64> =
            self.file.stations.iter().filter_map(|d| Some((d.station.as_str(), d.processing?))).collect();
        for product in &mut scene.products {
            for step in &mut product.routing {
                if let Some(f) = step.at.iter().find_map(|s| factors.get(s.as_str())) {
                    step.time = scale_dist(&step.time, *f);
                }
            }
        }
        for d in &self.file.stations {
            let Some(station) = scene.stations.iter_mut().find(|s| s.id == d.station) else { continue };
            if d.mtbf.is_none() && d.mttr.is_none() {
                continue;
            }
            let old = station.failures.take();
            let mtbf = d.mtbf.or(old.as_ref().map(|f| f.mtbf)).unwrap_or_default();
            let mttr = d.mttr.or(old.as_ref().map(|f| f.mttr)).unwrap_or_default();
            let repair = old.and_then(|f| f.repair).map(|r| match d.mttr {
                Some(new) if r.mean() > 0.0 => scale_dist(&r, new.0 as f64 / r.mean()),
                _ => r,
            });
            station.failures = Some(FailureSpec { mtbf, mttr, repair });
        }
    }

    /// Breakdowns as `(at, station, duration)`, in time order (file order for ties).
    pub fn breakdowns(&self) -> Vec<(Micros, String, Micros)> {
        let mut out: Vec<_> =
            self.file.breakdowns.iter().map(|b| (b.at.0, b.station.clone(), b.duration.0)).collect();
        out.sort_by_key(|b| b.0);
        out
    }

    /// Device outages as `(from, until, station)`, in time order.
    pub fn device_outages(&self) -> Vec<(Micros, Micros, String)> {
        let mut out: Vec<_> = self
            .file
            .devices
            .iter()
            .map(|d| (d.at.0, d.at.0.saturating_add(d.down_for.0), d.station.clone()))
            .collect();
        out.sort_by_key(|d| d.0);
        out
    }

    /// Gateway outages as `(from, until, factory)`, in time order.
    pub fn outages(&self) -> Vec<(Micros, Micros, String)> {
        let mut out: Vec<_> = self
            .file
            .gateways
            .iter()
            .map(|g| (g.at.0, g.at.0.saturating_add(g.down_for.0), g.factory.clone()))
            .collect();
        out.sort_by_key(|g| g.0);
        out
    }
}

/// `d` with every duration multiplied by `factor` (so its mean is multiplied too).
pub fn scale_dist(d: &Dist, factor: f64) -> Dist {
    let s = |x: &Duration| Duration(((x.0 as f64 * factor).round() as Micros).min(MAX_SPAN));
    match d {
        Dist::Const(x) => Dist::Const(s(x)),
        Dist::Exp { mean } => Dist::Exp { mean: s(mean) },
        Dist::Uniform { min, max } => Dist::Uniform { min: s(min), max: s(max) },
        Dist::Tri { min, mode, max } => Dist::Tri { min: s(min), mode: s(mode), max: s(max) },
        Dist::Normal { mean, sd } => Dist::Normal { mean: s(mean), sd: s(sd) },
        Dist::LogNormal { mean, sd } => Dist::LogNormal { mean: s(mean), sd: s(sd) },
        Dist::Empirical(points) => Dist::Empirical(points.iter().map(|(x, w)| (s(x), *w)).collect()),
    }
}

/// Every edge node id of a scene: its factories, plus [`SITE_NODE`] when a station or a
/// fleet stands in no factory.
pub fn edge_nodes(scene: &Scene) -> Vec<String> {
    let mut nodes: Vec<String> = scene.factories.iter().map(|f| f.id.clone()).collect();
    let fleet_factories: BTreeSet<&str> = scene.factories.iter().filter_map(|f| f.agv.as_deref()).collect();
    let homeless = scene.stations.iter().any(|s| s.factory.is_none())
        || scene.fleets.iter().any(|f| !fleet_factories.contains(f.id.as_str()));
    if homeless && !nodes.iter().any(|n| n == SITE_NODE) {
        nodes.push(SITE_NODE.to_owned());
    }
    nodes
}

fn validate(file: &DriftFile, source: &Source, scene: &Scene) -> Vec<SceneError> {
    let mut errors = Vec::new();
    let mut push = |path: String, anchors: &[&str], message: String| {
        errors.push(SceneError {
            origin: source.origin.clone(),
            location: source.locate(anchors),
            path,
            message,
        });
    };
    let stations: BTreeMap<&str, &twin_core::scene::StationSpec> =
        scene.stations.iter().map(|s| (s.id.as_str(), s)).collect();
    let known = |id: &str| {
        let mut ids: Vec<&str> = stations.keys().copied().collect();
        ids.truncate(12);
        format!("unknown station `{id}` (the scene has {} stations, e.g. {})", stations.len(), ids.join(", "))
    };

    let mut seen = BTreeSet::new();
    for (i, d) in file.stations.iter().enumerate() {
        let q = format!("\"{}\"", d.station);
        let at = |field: &str| {
            vec!["stations", q.as_str(), field].into_iter().map(str::to_owned).collect::<Vec<_>>()
        };
        let path = |field: &str| format!("stations[{i}].{field}");
        let Some(spec) = stations.get(d.station.as_str()) else {
            let a = at("station");
            push(path("station"), &[&a[0], &a[1]], known(&d.station));
            continue;
        };
        if !seen.insert(d.station.as_str()) {
            push(path("station"), &["stations", &q, &q], format!("station `{}` is listed twice", d.station));
        }
        if let Some(f) = d.processing
            && !(f.is_finite() && f > 0.0 && f <= 1000.0)
        {
            let a = at("processing");
            push(
                path("processing"),
                &[&a[0], &a[1], &a[2]],
                format!("processing factor must be a number above 0 and at most 1000, got {f}"),
            );
        }
        for (field, value) in [("mtbf", d.mtbf), ("mttr", d.mttr)] {
            if value.is_some_and(|v| v.0 == 0) {
                let a = at(field);
                push(path(field), &[&a[0], &a[1], &a[2]], format!("{field} must be greater than zero"));
            }
        }
        if spec.failures.is_none() && (d.mtbf.is_some() != d.mttr.is_some()) {
            let a = at("station");
            push(
                path(if d.mtbf.is_some() { "mttr" } else { "mtbf" }),
                &[&a[0], &a[1]],
                format!("station `{}` has no failures in the scene: give both mtbf and mttr", d.station),
            );
        }
    }

    // A step several stations share is scaled as a whole: all of them must agree.
    let factors: BTreeMap<&str, f64> =
        file.stations.iter().filter_map(|d| Some((d.station.as_str(), d.processing?))).collect();
    for product in &scene.products {
        for step in &product.routing {
            let drifted: Vec<(&str, Option<f64>)> =
                step.at.iter().map(|s| (s.as_str(), factors.get(s.as_str()).copied())).collect();
            let Some((first, f)) = drifted.iter().find_map(|(s, f)| Some((*s, (*f)?))) else { continue };
            if let Some((other, g)) = drifted.iter().find(|(_, g)| *g != Some(f)) {
                let i = file.stations.iter().position(|d| d.station == first).unwrap_or(0);
                let q = format!("\"{first}\"");
                push(
                    format!("stations[{i}].processing"),
                    &["stations", &q, "processing"],
                    format!(
                        "station `{first}` shares step `{}` of product `{}` with `{other}` ({}); a processing drift scales a whole step, so give every station of it the same factor",
                        step.op,
                        product.id,
                        g.map_or("no drift".to_owned(), |g| format!("factor {g}")),
                    ),
                );
            }
        }
    }

    for (i, b) in file.breakdowns.iter().enumerate() {
        let q = format!("\"{}\"", b.station);
        if !stations.contains_key(b.station.as_str()) {
            push(format!("breakdowns[{i}].station"), &["breakdowns", &q], known(&b.station));
        }
        if b.duration.0 == 0 {
            push(
                format!("breakdowns[{i}].duration"),
                &["breakdowns", &q, "duration"],
                "duration must be greater than zero".into(),
            );
        }
    }

    let nodes = edge_nodes(scene);
    let mut windows: BTreeMap<&str, Vec<(Micros, Micros)>> = BTreeMap::new();
    for (i, g) in file.gateways.iter().enumerate() {
        let q = format!("\"{}\"", g.factory);
        if !nodes.contains(&g.factory) {
            push(
                format!("gateways[{i}].factory"),
                &["gateways", &q],
                format!("unknown factory `{}` (edge nodes of the scene: {})", g.factory, nodes.join(", ")),
            );
            continue;
        }
        if g.down_for.0 == 0 {
            push(
                format!("gateways[{i}].down_for"),
                &["gateways", &q, "down_for"],
                "down_for must be greater than zero".into(),
            );
            continue;
        }
        let (from, to) = (g.at.0, g.at.0.saturating_add(g.down_for.0));
        let list = windows.entry(g.factory.as_str()).or_default();
        if list.iter().any(|&(a, b)| from <= b && a <= to) {
            push(
                format!("gateways[{i}].at"),
                &["gateways", &q, "at"],
                format!("outage of `{}` overlaps or touches another one of the same gateway", g.factory),
            );
        }
        list.push((from, to));
    }

    let mut device_windows: BTreeMap<&str, Vec<(Micros, Micros)>> = BTreeMap::new();
    for (i, d) in file.devices.iter().enumerate() {
        let q = format!("\"{}\"", d.station);
        if !stations.contains_key(d.station.as_str()) {
            push(format!("devices[{i}].station"), &["devices", &q], known(&d.station));
            continue;
        }
        if d.down_for.0 == 0 {
            push(
                format!("devices[{i}].down_for"),
                &["devices", &q, "down_for"],
                "down_for must be greater than zero".into(),
            );
            continue;
        }
        let (from, to) = (d.at.0, d.at.0.saturating_add(d.down_for.0));
        let list = device_windows.entry(d.station.as_str()).or_default();
        if list.iter().any(|&(a, b)| from <= b && a <= to) {
            push(
                format!("devices[{i}].at"),
                &["devices", &q, "at"],
                format!("outage of device `{}` overlaps or touches another one of it", d.station),
            );
        }
        list.push((from, to));
    }
    errors
}

#[cfg(test)]
mod tests;
