//! Scene problems as validation collects them: each with its field path and place in the
//! file, reported section by section in a fixed order.

use std::collections::BTreeMap;

use crate::error::{SceneError, SceneErrors};
use crate::scene::{Scene, Source};

/// The sections of a scene, in the order their problems are reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Phase {
    /// Duplicate or empty ids of the main sections.
    Ids,
    /// Run length, warm-up and the sections a scene cannot do without.
    Run,
    Factories,
    Calendars,
    Stations,
    Sinks,
    Products,
    Conveyors,
    Sources,
    Utilities,
    Staff,
    Paths,
    Fleets,
    Roads,
    /// Factories' docks and fleets.
    FactoryRefs,
    Trucks,
    Materials,
    /// Stations' power, path nodes and crews.
    StationRefs,
    /// Fleets reaching their factory's stations.
    FleetReach,
    /// Products' materials and carrying fleets.
    ProductRefs,
}

/// Collects problems with their places.
pub(super) struct Problems<'a> {
    source: Option<&'a Source>,
    origin: std::path::PathBuf,
    phase: Phase,
    list: Vec<(Phase, SceneError)>,
}

impl<'a> Problems<'a> {
    /// No problems yet; places are looked up in `source` when given.
    pub(super) fn new(source: Option<&'a Source>) -> Problems<'a> {
        let origin = source.map_or_else(|| "<scene>".into(), |s| s.origin.clone());
        Problems { source, origin, phase: Phase::Ids, list: Vec::new() }
    }

    /// From now on, problems belong to `phase`.
    pub(super) fn phase(&mut self, phase: Phase) -> &mut Self {
        self.phase = phase;
        self
    }

    pub(super) fn push(&mut self, path: String, anchors: &[&str], message: impl Into<String>) {
        let location = self.source.and_then(|s| s.locate(anchors));
        let error = SceneError { origin: self.origin.clone(), location, path, message: message.into() };
        self.list.push((self.phase, error));
    }

    /// Every problem, section by section (stable within a section).
    pub(super) fn into_errors(mut self) -> Option<SceneErrors> {
        if self.list.is_empty() {
            return None;
        }
        self.list.sort_by_key(|(phase, _)| *phase);
        Some(SceneErrors(self.list.into_iter().map(|(_, e)| e).collect()))
    }
}

pub(super) fn quoted(id: &str) -> String {
    format!("\"{id}\"")
}

/// Index of each id, reporting duplicates.
pub(super) fn index_ids<'a>(
    problems: &mut Problems,
    section: &str,
    ids: impl Iterator<Item = &'a String>,
) -> BTreeMap<String, u32> {
    let mut map = BTreeMap::new();
    for (i, id) in ids.enumerate() {
        if id.is_empty() {
            problems.push(format!("{section}[{i}].id"), &[&format!("{section}:")], "id must not be empty");
        } else if map.insert(id.clone(), i as u32).is_some() {
            let q = quoted(id);
            problems.push(
                format!("{section}[{i}].id"),
                &[&format!("{section}:"), &q, &q],
                format!("duplicate id `{id}` in {section}"),
            );
        }
    }
    map
}

/// Index of every named thing of a scene by id.
pub(super) struct Ids {
    pub factories: BTreeMap<String, u32>,
    pub calendars: BTreeMap<String, u32>,
    pub products: BTreeMap<String, u32>,
    pub stations: BTreeMap<String, u32>,
    pub sinks: BTreeMap<String, u32>,
    pub staff: BTreeMap<String, u32>,
    pub fleets: BTreeMap<String, u32>,
    pub materials: BTreeMap<String, u32>,
}

impl Ids {
    pub(super) fn index(p: &mut Problems, scene: &Scene) -> Ids {
        p.phase(Phase::Ids);
        let factories = index_ids(p, "factories", scene.factories.iter().map(|f| &f.id));
        let calendars = index_ids(p, "calendars", scene.calendars.iter().map(|c| &c.id));
        let products = index_ids(p, "products", scene.products.iter().map(|x| &x.id));
        let stations = index_ids(p, "stations", scene.stations.iter().map(|s| &s.id));
        index_ids(p, "conveyors", scene.conveyors.iter().map(|c| &c.id));
        index_ids(p, "sources", scene.sources.iter().map(|s| &s.id));
        let sinks = index_ids(p, "sinks", scene.sinks.iter().map(|s| &s.id));
        let staff = index_ids(p.phase(Phase::Staff), "staff", scene.staff.iter().map(|s| &s.id));
        index_ids(p.phase(Phase::Paths), "paths", scene.paths.iter().map(|g| &g.id));
        let fleets = index_ids(p.phase(Phase::Fleets), "fleets", scene.fleets.iter().map(|f| &f.id));
        let materials =
            index_ids(p.phase(Phase::Materials), "materials", scene.materials.iter().map(|m| &m.id));
        Ids { factories, calendars, products, stations, sinks, staff, fleets, materials }
    }
}
