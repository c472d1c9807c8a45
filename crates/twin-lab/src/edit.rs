//! Applying edits to a scene.
//!
//! Edits work on the raw scene (`twin_core::Scene`), never on the resolved model, so
//! that every edited scene is validated by `Model::build` exactly like a file. This
//! module checks only what the scene validation cannot see: that the ids an edit names
//! exist, and that an edit is supported at all.

use twin_core::Scene;
use twin_core::scene::Arrivals;
use twin_core::time::HOUR;

use crate::file::Edit;

/// What is wrong with one edit: the field of the edit it concerns, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EditProblem {
    /// Field of the edit, e.g. `station` or `per_hour`.
    pub field: &'static str,
    pub message: String,
}

fn problem(field: &'static str, message: impl Into<String>) -> EditProblem {
    EditProblem { field, message: message.into() }
}

fn station_mut<'a>(
    scene: &'a mut Scene,
    id: &str,
) -> Result<&'a mut twin_core::scene::StationSpec, EditProblem> {
    scene
        .stations
        .iter_mut()
        .find(|s| s.id == id)
        .ok_or_else(|| problem("station", format!("no station `{id}` in the scene")))
}

fn source_mut<'a>(
    scene: &'a mut Scene,
    id: &str,
) -> Result<&'a mut twin_core::scene::SourceSpec, EditProblem> {
    scene
        .sources
        .iter_mut()
        .find(|s| s.id == id)
        .ok_or_else(|| problem("source", format!("no source `{id}` in the scene")))
}

/// Applies `edit` to `scene`. On error the scene may be partly edited; callers discard it.
pub fn apply(scene: &mut Scene, edit: &Edit) -> Result<(), EditProblem> {
    match edit {
        Edit::SetBuffer { station, capacity } => {
            station_mut(scene, station)?.buffer = *capacity;
        }
        Edit::SetServers { station, servers } => {
            station_mut(scene, station)?.servers = *servers;
        }
        Edit::AddStation { station, alternative_to, step } => {
            if scene.stations.iter().any(|s| s.id == station.id) {
                return Err(problem(
                    "station.id",
                    format!("the scene already has a station `{}`", station.id),
                ));
            }
            match (alternative_to, step) {
                (Some(other), None) => {
                    if !scene.stations.iter().any(|s| &s.id == other) {
                        return Err(problem("alternative_to", format!("no station `{other}` in the scene")));
                    }
                    for product in &mut scene.products {
                        for s in &mut product.routing {
                            if s.at.contains(other) {
                                s.at.push(station.id.clone());
                            }
                        }
                    }
                }
                (None, Some(new)) => {
                    let product =
                        scene.products.iter_mut().find(|p| p.id == new.product).ok_or_else(|| {
                            problem("step.product", format!("no product `{}` in the scene", new.product))
                        })?;
                    let idx = match &new.after {
                        None => 0,
                        Some(op) => {
                            product.routing.iter().position(|s| &s.op == op).ok_or_else(|| {
                                problem(
                                    "step.after",
                                    format!("product `{}` has no operation `{op}`", new.product),
                                )
                            })? + 1
                        }
                    };
                    // The new step copies the step it follows (the first step when it
                    // goes first) and replaces what the edit gives; settings the edit does
                    // not name (such as how parts are carried to it) are inherited.
                    let Some(template) = product.routing.get(idx.saturating_sub(1)).cloned() else {
                        return Err(problem(
                            "step.product",
                            format!("product `{}` has no routing to extend", new.product),
                        ));
                    };
                    let mut step = template;
                    step.op.clone_from(&new.op);
                    step.at = vec![station.id.clone()];
                    step.time = new.time.clone();
                    product.routing.insert(idx, step);
                }
                (Some(_), Some(_)) => {
                    return Err(problem("step", "give either `alternative_to` or `step`, not both"));
                }
                (None, None) => {
                    return Err(problem(
                        "alternative_to",
                        "an added station needs `alternative_to: \"<station>\"` or \
                         `step: (product: ..., after: ..., time: ...)` to receive work",
                    ));
                }
            }
            scene.stations.push((**station).clone());
        }
        Edit::RemoveStation { station } => {
            let Some(idx) = scene.stations.iter().position(|s| &s.id == station) else {
                return Err(problem("station", format!("no station `{station}` in the scene")));
            };
            scene.stations.remove(idx);
            scene.conveyors.retain(|c| &c.from != station && &c.to != station);
            for product in &mut scene.products {
                for s in &mut product.routing {
                    s.at.retain(|id| id != station);
                }
                product.routing.retain(|s| !s.at.is_empty());
                if product.routing.is_empty() {
                    return Err(problem(
                        "station",
                        format!("removing `{station}` leaves product `{}` with no operation", product.id),
                    ));
                }
            }
        }
        Edit::MoveStation { station, pos, factory } => {
            if let Some(f) = factory
                && !scene.factories.iter().any(|x| &x.id == f)
            {
                return Err(problem("factory", format!("no factory `{f}` in the scene")));
            }
            let spec = station_mut(scene, station)?;
            spec.pos = Some(*pos);
            if factory.is_some() {
                spec.factory.clone_from(factory);
            }
        }
        Edit::SetArrivalRate { source, per_hour } => {
            if !(per_hour.is_finite() && *per_hour > 0.0) {
                return Err(problem("per_hour", format!("rate must be a positive number, got {per_hour}")));
            }
            let src = source_mut(scene, source)?;
            match &mut src.arrivals {
                Arrivals::Poisson { per_hour: rate } => *rate = *per_hour,
                Arrivals::Interval { every } => {
                    let gap = (HOUR as f64 / per_hour).round();
                    if gap < 1.0 {
                        return Err(problem("per_hour", format!("rate {per_hour}/h is too high")));
                    }
                    every.0 = gap as u64;
                }
                Arrivals::Schedule { .. } | Arrivals::Saturated => {
                    return Err(problem(
                        "source",
                        format!(
                            "source `{source}` has no rate to change (only Poisson and \
                             Interval sources have one)"
                        ),
                    ));
                }
            }
        }
        Edit::SetMix { source, mix } => {
            source_mut(scene, source)?.mix.clone_from(mix);
        }
        Edit::SetMixWeight { source, product, weight } => {
            source_mut(scene, source)?.mix.insert(product.clone(), *weight);
        }
        Edit::SetShifts { calendar, shifts, period } => {
            let cal = scene
                .calendars
                .iter_mut()
                .find(|c| &c.id == calendar)
                .ok_or_else(|| problem("calendar", format!("no calendar `{calendar}` in the scene")))?;
            cal.shifts.clone_from(shifts);
            if let Some(p) = period {
                cal.period = *p;
            }
        }
        Edit::SetCalendar { station, calendar } => {
            if let Some(c) = calendar
                && !scene.calendars.iter().any(|x| &x.id == c)
            {
                return Err(problem("calendar", format!("no calendar `{c}` in the scene")));
            }
            station_mut(scene, station)?.calendar.clone_from(calendar);
        }
        Edit::SetAgvCount { fleet, count } => {
            if *count == 0 {
                return Err(problem("count", "a fleet needs at least one vehicle"));
            }
            let known = scene.fleets.iter().map(|f| f.id.as_str()).collect::<Vec<_>>().join(", ");
            let Some(spec) = scene.fleets.iter_mut().find(|f| &f.id == fleet) else {
                return Err(problem(
                    "fleet",
                    if known.is_empty() {
                        format!("no AGV fleet `{fleet}`: the scene has no fleets")
                    } else {
                        format!("no AGV fleet `{fleet}` in the scene (fleets: {known})")
                    },
                ));
            };
            spec.count = *count;
        }
        Edit::SetTruckCount { count } => {
            if *count == 0 {
                return Err(problem("count", "at least one truck is needed; remove `trucks` instead"));
            }
            let Some(trucks) = scene.trucks.as_mut() else {
                return Err(problem("count", "the scene has no trucks to count"));
            };
            trucks.count = *count;
        }
    }
    Ok(())
}

/// A one-line description of an edit for tables and result files.
pub fn describe(edit: &Edit) -> String {
    let opt = |v: &Option<u32>| v.map_or_else(|| "unlimited".to_string(), |c| c.to_string());
    match edit {
        Edit::SetBuffer { station, capacity } => format!("{station}.buffer = {}", opt(capacity)),
        Edit::SetServers { station, servers } => format!("{station}.servers = {servers}"),
        Edit::AddStation { station, alternative_to, step } => match (alternative_to, step) {
            (Some(o), _) => format!("add station {} beside {o}", station.id),
            (_, Some(s)) => format!(
                "add station {} for new op `{}` of {} after {}",
                station.id,
                s.op,
                s.product,
                s.after.as_deref().unwrap_or("start")
            ),
            _ => format!("add station {}", station.id),
        },
        Edit::RemoveStation { station } => format!("remove station {station}"),
        Edit::MoveStation { station, pos, .. } => {
            format!("move {station} to ({}, {})", pos.0, pos.1)
        }
        Edit::SetArrivalRate { source, per_hour } => format!("{source}.per_hour = {per_hour}"),
        Edit::SetMix { source, mix } => format!(
            "{source}.mix = {{{}}}",
            mix.iter().map(|(k, v)| format!("{k}: {v}")).collect::<Vec<_>>().join(", ")
        ),
        Edit::SetMixWeight { source, product, weight } => format!("{source}.mix.{product} = {weight}"),
        Edit::SetShifts { calendar, shifts, .. } => format!(
            "{calendar}.shifts = [{}]",
            shifts.iter().map(|(a, b)| format!("{a}-{b}")).collect::<Vec<_>>().join(", ")
        ),
        Edit::SetCalendar { station, calendar } => {
            format!("{station}.calendar = {}", calendar.as_deref().unwrap_or("always"))
        }
        Edit::SetAgvCount { fleet, count } => format!("{fleet}.agvs = {count}"),
        Edit::SetTruckCount { count } => format!("trucks = {count}"),
    }
}
