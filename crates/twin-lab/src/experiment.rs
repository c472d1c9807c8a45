//! A validated experiment: variants with their models built, KPIs parsed, seeds fixed.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use twin_core::scene::{self, Source};
use twin_core::time::{Duration, Micros};
use twin_core::{Model, Sim};

use crate::edit;
use crate::error::{FileProblem, LabError};
use crate::file::{Better, Edit, ExperimentFile, ron_options};
use crate::kpi::KpiPath;

/// A KPI the experiment compares.
#[derive(Clone, Debug)]
pub struct Kpi {
    /// Label in tables, files and plots (the path unless the file names it).
    pub name: String,
    /// Where the number is in the report.
    pub path: KpiPath,
    /// Unit, guessed from the path (`1/h`, `s`, `fraction`, `parts` or empty).
    pub unit: &'static str,
    /// Direction the ranking prefers.
    pub better: Better,
}

/// One variant: the base scene with its edits, built and validated.
#[derive(Clone, Debug)]
pub struct Variant {
    pub name: String,
    /// Human-readable edits, in order (empty for the unedited scene).
    pub edits: Vec<String>,
    /// The model every replication of this variant runs.
    pub model: Arc<Model>,
}

/// An experiment ready to run: every variant's scene has been edited and validated.
///
/// Building one does all the checking, so [`crate::run()`] can only fail on things a
/// replication discovers (a KPI that is null in some run).
#[derive(Clone, Debug)]
pub struct Experiment {
    pub name: String,
    pub description: String,
    /// The experiment file, as shown in messages.
    pub origin: PathBuf,
    /// The base scene file.
    pub scene_path: PathBuf,
    /// Replications per variant.
    pub replications: u32,
    /// Base seed from which every replication seed is derived.
    pub seed: u64,
    /// Whether replication k of every variant shares its seed.
    pub common_random_numbers: bool,
    /// Confidence level of every interval (e.g. 0.95).
    pub confidence: f64,
    /// Simulated end of every replication.
    pub until: Micros,
    /// Warm-up excluded from every KPI.
    pub warmup: Micros,
    pub kpis: Vec<Kpi>,
    /// Named variants in file order, then sweep points in file order.
    pub variants: Vec<Variant>,
    /// Index of the variant every other one is compared against.
    pub baseline: usize,
}

/// Replications per variant at most: far beyond any useful precision, and a bound on the
/// memory one experiment (e.g. from a gRPC request) can claim.
pub const MAX_REPLICATIONS: u32 = 100_000;
/// Variants (sweep points included) at most, for the same reasons.
pub const MAX_VARIANTS: usize = 1_000;

/// Reads the base scene given its resolved path: `scene::load`, or a bundle's text.
pub type SceneLoader<'a> =
    dyn Fn(&Path) -> Result<(twin_core::Scene, Source, scene::Schedules), twin_core::error::SceneErrors> + 'a;

/// Edits with the field path each comes from (`variants[1].edits[0]`).
type PathedEdits = Vec<(String, Edit)>;

/// Where edits of a variant come from in the file, for messages.
struct Origin {
    /// Field path of the variant (`variants[2]` or `sweeps[0]`).
    path: String,
    /// Anchors that find the variant's text in the file.
    anchors: Vec<String>,
}

fn quoted(s: &str) -> String {
    format!("\"{s}\"")
}

/// The name of an edit as written in files, for locating it.
fn kind(edit: &Edit) -> &'static str {
    match edit {
        Edit::SetBuffer { .. } => "SetBuffer",
        Edit::SetServers { .. } => "SetServers",
        Edit::AddStation { .. } => "AddStation",
        Edit::RemoveStation { .. } => "RemoveStation",
        Edit::MoveStation { .. } => "MoveStation",
        Edit::SetArrivalRate { .. } => "SetArrivalRate",
        Edit::SetMix { .. } => "SetMix",
        Edit::SetMixWeight { .. } => "SetMixWeight",
        Edit::SetShifts { .. } => "SetShifts",
        Edit::SetCalendar { .. } => "SetCalendar",
        Edit::SetAgvCount { .. } => "SetAgvCount",
        Edit::SetTruckCount { .. } => "SetTruckCount",
    }
}

/// Removes `.` and `dir/..` from a path without touching the file system, so that
/// messages show `scenes/training-line.ron`, not `scenes/experiments/../training-line.ron`.
fn normalise(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir if matches!(out.components().next_back(), Some(Component::Normal(_))) => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// SplitMix64's finaliser: spreads nearby inputs over the whole 64-bit range.
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Experiment {
    /// Reads an experiment file; its `scene` is resolved relative to the file's folder.
    pub fn load(path: &Path) -> Result<Experiment, LabError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            LabError::File(vec![FileProblem {
                origin: path.to_path_buf(),
                location: None,
                variant: None,
                path: String::new(),
                message: format!("cannot read: {e}"),
            }])
        })?;
        let dir = path.parent().unwrap_or(Path::new("."));
        Experiment::parse(&text, path, dir)
    }

    /// Parses and validates experiment text. `origin` names it in messages (a file name
    /// is enough); the base `scene` path is resolved relative to `scene_dir`.
    ///
    /// Every problem found is reported, each with the variant and field it concerns.
    pub fn parse(text: &str, origin: &Path, scene_dir: &Path) -> Result<Experiment, LabError> {
        Experiment::parse_inner(text, origin, scene_dir, false, &scene::load)
    }

    /// Like [`Experiment::parse`], but the base scene comes from `load` (given the
    /// resolved scene path) instead of the file system: a worker rebuilds an experiment
    /// from a [`crate::bundle::Bundle`] that travelled by content.
    pub fn parse_with(
        text: &str,
        origin: &Path,
        scene_dir: &Path,
        load: &SceneLoader<'_>,
    ) -> Result<Experiment, LabError> {
        Experiment::parse_inner(text, origin, scene_dir, false, load)
    }

    /// Like [`Experiment::parse`], but the `scene` path must stay inside `scene_dir`
    /// (relative, no `..`): for text from the network, which must not make a server
    /// read arbitrary files.
    pub fn parse_confined(text: &str, origin: &Path, scene_dir: &Path) -> Result<Experiment, LabError> {
        Experiment::parse_inner(text, origin, scene_dir, true, &scene::load)
    }

    fn parse_inner(
        text: &str,
        origin: &Path,
        scene_dir: &Path,
        confine: bool,
        load: &SceneLoader<'_>,
    ) -> Result<Experiment, LabError> {
        let source = Source { origin: origin.to_path_buf(), text: text.to_string() };
        let file: ExperimentFile = ron_options().from_str(text).map_err(|e| {
            LabError::File(vec![FileProblem {
                origin: origin.to_path_buf(),
                location: Some(twin_core::error::Location { line: e.span.start.line, col: e.span.start.col }),
                variant: None,
                path: String::new(),
                message: e.code.to_string(),
            }])
        })?;
        if confine {
            use std::path::Component;
            let escapes = Path::new(&file.scene)
                .components()
                .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir));
            if escapes || file.scene.is_empty() {
                return Err(LabError::File(vec![FileProblem {
                    origin: origin.to_path_buf(),
                    location: source.locate(&["scene"]),
                    variant: None,
                    path: "scene".into(),
                    message: format!(
                        "scene `{}` must be a path inside the scenes folder (relative, without `..`)",
                        file.scene
                    ),
                }]));
            }
        }
        let scene_path = normalise(&scene_dir.join(&file.scene));
        let (base, scene_source, schedules) = load(&scene_path)
            .map_err(|errors| LabError::Scene { experiment: origin.to_path_buf(), errors })?;
        let base_model = Model::build(&base, Some(&scene_source), &schedules)
            .map_err(|errors| LabError::Scene { experiment: origin.to_path_buf(), errors })?;

        let mut problems = Vec::new();
        let mut push = |variant: Option<&str>, path: String, anchors: &[&str], message: String| {
            problems.push(FileProblem {
                origin: origin.to_path_buf(),
                location: source.locate(anchors),
                variant: variant.map(str::to_string),
                path,
                message,
            });
        };

        if file.replications < 2 {
            push(
                None,
                "replications".into(),
                &["replications"],
                format!(
                    "at least 2 replications are needed for a confidence interval, got {}",
                    file.replications
                ),
            );
        } else if file.replications > MAX_REPLICATIONS {
            push(
                None,
                "replications".into(),
                &["replications"],
                format!("at most {MAX_REPLICATIONS} replications per variant, got {}", file.replications),
            );
        }
        if !(file.confidence > 0.0 && file.confidence < 1.0) {
            push(
                None,
                "confidence".into(),
                &["confidence"],
                format!("confidence must lie between 0 and 1, got {}", file.confidence),
            );
        }
        let until = file.run.until.unwrap_or(base.run.until);
        let warmup = file.run.warmup.unwrap_or(base.run.warmup);
        if until.0 == 0 {
            push(None, "run.until".into(), &["run", "until"], "run length must be greater than zero".into());
        } else if warmup >= until {
            push(
                None,
                "run.warmup".into(),
                &["run", "warmup"],
                format!("warm-up ({warmup}) must be shorter than the run ({until})"),
            );
        }

        let mut kpis = Vec::new();
        if file.kpis.is_empty() {
            push(
                None,
                "kpis".into(),
                &["kpis"],
                "name at least one KPI, e.g. (path: \"complex.throughput_per_hour\")".into(),
            );
        }
        for (i, spec) in file.kpis.iter().enumerate() {
            match KpiPath::parse(&spec.path) {
                Ok(path) => {
                    if kpis.iter().any(|k: &Kpi| k.path == path) {
                        push(
                            None,
                            format!("kpis[{i}].path"),
                            &["kpis", &quoted(&spec.path)],
                            format!("KPI `{}` is listed twice", spec.path),
                        );
                    }
                    kpis.push(Kpi {
                        name: spec.name.clone().unwrap_or_else(|| spec.path.clone()),
                        unit: path.unit(),
                        better: spec.better.unwrap_or_else(|| path.better()),
                        path,
                    });
                }
                Err(message) => {
                    push(None, format!("kpis[{i}].path"), &["kpis", &quoted(&spec.path)], message)
                }
            }
        }

        // Expand named variants and sweep points into (name, origin, edits).
        let mut planned: Vec<(String, Origin, PathedEdits)> = Vec::new();
        for (i, v) in file.variants.iter().enumerate() {
            let edits = v
                .edits
                .iter()
                .enumerate()
                .map(|(j, e)| (format!("variants[{i}].edits[{j}]"), e.clone()))
                .collect();
            planned.push((
                v.name.clone(),
                Origin { path: format!("variants[{i}]"), anchors: vec!["variants".into(), quoted(&v.name)] },
                edits,
            ));
        }
        for (i, sweep) in file.sweeps.iter().enumerate() {
            let anchors = if sweep.name.is_empty() {
                vec!["sweeps".to_string()]
            } else {
                vec!["sweeps".to_string(), quoted(&sweep.name)]
            };
            let anchor_refs: Vec<&str> = anchors.iter().map(String::as_str).collect();
            if sweep.axes.is_empty() || sweep.axes.len() > 2 {
                push(
                    None,
                    format!("sweeps[{i}].axes"),
                    &anchor_refs,
                    format!("a sweep has one or two axes, got {}", sweep.axes.len()),
                );
                continue;
            }
            let n_points: usize = sweep.axes.iter().map(|a| a.values.len()).product();
            if n_points > MAX_VARIANTS {
                push(
                    None,
                    format!("sweeps[{i}].axes"),
                    &anchor_refs,
                    format!("a sweep may have at most {MAX_VARIANTS} points, got {n_points}"),
                );
                continue;
            }
            let mut points: Vec<(Vec<String>, PathedEdits)> = vec![(vec![], vec![])];
            for (a, axis) in sweep.axes.iter().enumerate() {
                if axis.values.is_empty() {
                    push(
                        None,
                        format!("sweeps[{i}].axes[{a}].values"),
                        &anchor_refs,
                        "an axis needs at least one value".into(),
                    );
                }
                let mut next = Vec::new();
                for (labels, edits) in &points {
                    for (n, &value) in axis.values.iter().enumerate() {
                        match axis.param.edit(value) {
                            Ok(edit) => {
                                let mut labels = labels.clone();
                                labels.push(format!("{}={value}", axis.param.label()));
                                let mut edits = edits.clone();
                                edits.push((format!("sweeps[{i}].axes[{a}].param"), edit));
                                next.push((labels, edits));
                            }
                            Err(message) => push(
                                None,
                                format!("sweeps[{i}].axes[{a}].values[{n}]"),
                                &anchor_refs,
                                message,
                            ),
                        }
                    }
                }
                points = next;
            }
            for (labels, axis_edits) in points {
                let mut edits: PathedEdits = sweep
                    .edits
                    .iter()
                    .enumerate()
                    .map(|(j, e)| (format!("sweeps[{i}].edits[{j}]"), e.clone()))
                    .collect();
                edits.extend(axis_edits);
                planned.push((
                    if sweep.name.is_empty() {
                        labels.join(", ")
                    } else {
                        format!("{} {}", sweep.name, labels.join(", "))
                    },
                    Origin { path: format!("sweeps[{i}]"), anchors: anchors.clone() },
                    edits,
                ));
            }
        }
        if planned.len() > MAX_VARIANTS {
            push(
                None,
                "variants".into(),
                &["variants"],
                format!("at most {MAX_VARIANTS} variants (sweep points included), got {}", planned.len()),
            );
            // Building that many models would only waste memory.
            planned.truncate(0);
        } else if planned.is_empty() {
            push(
                None,
                "variants".into(),
                &["variants"],
                "an experiment needs at least one variant or sweep".into(),
            );
        }

        let mut variants = Vec::new();
        for (name, from, edits) in &planned {
            let anchors: Vec<&str> = from.anchors.iter().map(String::as_str).collect();
            if name.trim().is_empty() {
                push(None, format!("{}.name", from.path), &anchors, "variant name must not be empty".into());
            }
            let mut scene = base.clone();
            scene.run.until = until;
            scene.run.warmup = warmup;
            let mut ok = true;
            let mut seen: Vec<&'static str> = Vec::new();
            for (path, e) in edits {
                seen.push(kind(e));
                if let Err(p) = edit::apply(&mut scene, e) {
                    let mut at = anchors.clone();
                    at.extend(seen.iter().filter(|k| **k == kind(e)));
                    push(Some(name), format!("{path}.{}", p.field), &at, p.message);
                    ok = false;
                    break;
                }
            }
            if !ok {
                continue;
            }
            match Model::build(&scene, None, &schedules) {
                Ok(model) => variants.push(Variant {
                    name: name.clone(),
                    edits: edits.iter().map(|(_, e)| edit::describe(e)).collect(),
                    model: Arc::new(model),
                }),
                Err(errors) => {
                    for e in errors.0 {
                        push(
                            Some(name),
                            format!("{}.edits", from.path),
                            &anchors,
                            format!(
                                "the edited scene is invalid: {} in {}: {}",
                                e.path,
                                scene_path.display(),
                                e.message
                            ),
                        );
                    }
                }
            }
        }
        let mut names: Vec<&str> = planned.iter().map(|(n, _, _)| n.as_str()).collect();
        names.sort_unstable();
        let mut dups: Vec<&str> =
            names.windows(2).filter(|w| w[0] == w[1] && !w[0].is_empty()).map(|w| w[0]).collect();
        dups.dedup();
        for name in dups {
            push(
                Some(name),
                "variants".into(),
                &["variants", &quoted(name)],
                format!("variant name \"{name}\" is used more than once"),
            );
        }

        let baseline = match &file.baseline {
            None => 0,
            Some(b) => match planned.iter().position(|(n, _, _)| n == b) {
                Some(idx) => idx,
                None => {
                    push(
                        None,
                        "baseline".into(),
                        &["baseline"],
                        format!(
                            "no variant \"{b}\" (variants: {})",
                            planned.iter().map(|(n, _, _)| quoted(n)).collect::<Vec<_>>().join(", ")
                        ),
                    );
                    0
                }
            },
        };

        // Every KPI must exist in every variant's report (a removed station's KPIs do
        // not), so that paired differences are defined. A report at time zero has the
        // full shape.
        let seed = file.seed.unwrap_or(base_model.seed);
        let mut kpi_failed = vec![false; kpis.len()];
        for v in &variants {
            let zero = serde_json::to_value(Sim::new(Arc::clone(&v.model), seed).report());
            let Ok(zero) = zero else { continue };
            for (i, k) in kpis.iter().enumerate() {
                if kpi_failed[i] {
                    continue; // Reported once, for the first variant it fails in.
                }
                if let Err(message) = k.path.lookup(&zero) {
                    kpi_failed[i] = true;
                    push(
                        Some(&v.name),
                        format!("kpis[{i}].path"),
                        &["kpis", &quoted(k.path.as_str())],
                        message,
                    );
                }
            }
        }

        if !problems.is_empty() {
            return Err(LabError::File(problems));
        }
        Ok(Experiment {
            name: file.name,
            description: file.description,
            origin: origin.to_path_buf(),
            scene_path,
            replications: file.replications,
            seed,
            common_random_numbers: file.common_random_numbers,
            confidence: file.confidence,
            until: until.0,
            warmup: warmup.0,
            kpis,
            variants,
            baseline,
        })
    }

    /// The seed of replication `replication` of variant `variant`. With common random
    /// numbers it depends on the base seed and the replication only, so replication k
    /// of every variant sees the same arrivals, processing times and failures (the
    /// core keys each random stream by name, so edits do not shift other streams).
    pub fn seed_of(&self, variant: usize, replication: u32) -> u64 {
        let k = mix64(self.seed ^ mix64(u64::from(replication) + 1));
        if self.common_random_numbers { k } else { mix64(k ^ mix64(variant as u64 + 0x5bd1_e995)) }
    }

    /// Replications in all: variants x replications.
    pub fn total_runs(&self) -> usize {
        self.variants.len() * self.replications as usize
    }

    /// Variant names in order (what gRPC's `ExperimentStarted.variants` lists).
    pub fn variant_names(&self) -> Vec<String> {
        self.variants.iter().map(|v| v.name.clone()).collect()
    }

    /// Run length as written in files.
    pub fn until(&self) -> Duration {
        Duration(self.until)
    }
}
