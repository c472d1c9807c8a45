//! The wire format of distributed experiments (`twin experiment --nats`, `twin worker`).
//!
//! Three kinds of message, all JSON, each with a format version `v` ([`WIRE_VERSION`]):
//!
//! - [`Bundle`]: everything a worker needs to rebuild the experiment without its files
//!   (experiment text, base scene text, schedule files, the replication count). It
//!   travels by content: stored once under the hex SHA-256 of its bytes ([`Bundle::hash`]),
//!   and a worker checks the bytes against that hash before trusting them.
//! - [`Job`]: one replication to run, naming the bundle by hash and the variant and
//!   replication by index. The variant's edits are those of variant `variant` of the
//!   bundle's experiment; the job repeats the variant's name and the seed so that a
//!   worker detects a job and a bundle that disagree instead of computing something else.
//! - [`JobResult`]: the replication's KPI values, or why it failed. Floating-point values
//!   travel as IEEE-754 bit patterns (`u64`), so the collector gets exactly the bits the
//!   worker computed and its outputs are byte-identical to a local run.
//!
//! Pure and synchronous like the rest of the crate: the NATS transport lives in the CLI.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use twin_core::error::{SceneError, SceneErrors};
use twin_core::scene::{self, Arrivals, Schedules, Source};

use crate::experiment::Experiment;
use crate::file::{ExperimentFile, ron_options};
use crate::results::Replication;

/// Version of [`Bundle`], [`Job`] and [`JobResult`]; a reader rejects any other.
pub const WIRE_VERSION: u32 = 1;

/// Why a bundle, job or result cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("{what} is not valid JSON of format {WIRE_VERSION}: {message}")]
    Json { what: &'static str, message: String },
    #[error("{what} has format version {got}; this twin reads version {WIRE_VERSION}")]
    Version { what: &'static str, got: u32 },
    #[error("scene bundle {expected} is corrupt: its bytes hash to {got}")]
    Hash { expected: String, got: String },
    #[error("`{0}` is not a scene bundle hash (64 lower-case hex digits)")]
    BadHash(String),
    #[error("cannot read {path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("the scene bundle does not rebuild the experiment: {0}")]
    Rebuild(String),
}

/// An experiment with its base scene and schedule files, by content.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Bundle {
    /// Format version ([`WIRE_VERSION`]).
    pub v: u32,
    /// The experiment file's name, for messages only (never opened by a worker).
    pub origin: String,
    /// The experiment file's text.
    pub experiment: String,
    /// The base scene's text (the file the experiment's `scene` names).
    pub scene: String,
    /// Schedule files the scene names, by name as written in the scene, with their text.
    pub schedules: BTreeMap<String, String>,
    /// Replications per variant (the file's, or `--replications`).
    pub replications: u32,
}

impl Bundle {
    /// Reads an experiment file, its base scene and the schedule files that names, the
    /// same files [`Experiment::load`] reads. `replications` overrides the file's.
    pub fn read(path: &Path, replications: Option<u32>) -> Result<Bundle, WireError> {
        let read = |p: &Path| {
            std::fs::read_to_string(p)
                .map_err(|e| WireError::Read { path: p.to_path_buf(), message: e.to_string() })
        };
        let experiment = read(path)?;
        let file: ExperimentFile = ron_options()
            .from_str(&experiment)
            .map_err(|e| WireError::Read { path: path.to_path_buf(), message: e.to_string() })?;
        let scene_path = path.parent().unwrap_or(Path::new(".")).join(&file.scene);
        let scene_text = read(&scene_path)?;
        let source = Source { origin: scene_path.clone(), text: scene_text.clone() };
        let parsed = scene::parse(&source)
            .map_err(|e| WireError::Read { path: scene_path.clone(), message: e.to_string() })?;
        let scene_dir = scene_path.parent().unwrap_or(Path::new("."));
        let mut schedules = BTreeMap::new();
        for src in &parsed.sources {
            if let Arrivals::Schedule { file } = &src.arrivals {
                schedules.insert(file.clone(), read(&scene_dir.join(file))?);
            }
        }
        Ok(Bundle {
            v: WIRE_VERSION,
            origin: path.display().to_string(),
            experiment,
            scene: scene_text,
            schedules,
            replications: replications.unwrap_or(file.replications),
        })
    }

    /// The bytes stored and sent (JSON; field and map order fixed, so the same bundle
    /// always gives the same bytes and hash).
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a bundle is plain strings and numbers")
    }

    /// Parses bundle bytes fetched under `hash`, checking the hash and the version.
    pub fn from_bytes(hash: &str, bytes: &[u8]) -> Result<Bundle, WireError> {
        let got = sha256_hex(bytes);
        if got != hash {
            return Err(WireError::Hash { expected: hash.to_string(), got });
        }
        let bundle: Bundle = serde_json::from_slice(bytes)
            .map_err(|e| WireError::Json { what: "scene bundle", message: e.to_string() })?;
        if bundle.v != WIRE_VERSION {
            return Err(WireError::Version { what: "scene bundle", got: bundle.v });
        }
        Ok(bundle)
    }

    /// Hex SHA-256 of [`Bundle::to_bytes`]: the bundle's name in the scene store.
    pub fn hash(&self) -> String {
        sha256_hex(&self.to_bytes())
    }

    /// Rebuilds and validates the experiment from the bundle alone (no file access), as
    /// a worker does; the same checks as [`Experiment::load`].
    pub fn experiment(&self) -> Result<Experiment, WireError> {
        let load = |path: &Path| -> Result<(twin_core::Scene, Source, Schedules), SceneErrors> {
            let source = Source { origin: path.to_path_buf(), text: self.scene.clone() };
            let parsed = scene::parse(&source)?;
            let mut out = BTreeMap::new();
            let mut errors = Vec::new();
            for src in &parsed.sources {
                let Arrivals::Schedule { file } = &src.arrivals else { continue };
                let problem = |location, message| SceneError {
                    origin: PathBuf::from(file),
                    location,
                    path: String::new(),
                    message,
                };
                match self.schedules.get(file) {
                    Some(text) => match scene::parse_schedule(text) {
                        Ok(rows) => {
                            out.insert(file.clone(), rows);
                        }
                        Err((line, message)) => {
                            errors.push(problem(Some(twin_core::error::Location { line, col: 1 }), message))
                        }
                    },
                    None => errors.push(problem(None, "schedule file missing from the bundle".into())),
                }
            }
            if errors.is_empty() { Ok((parsed, source, Schedules(out))) } else { Err(SceneErrors(errors)) }
        };
        let mut experiment =
            Experiment::parse_with(&self.experiment, Path::new(&self.origin), Path::new(""), &load)
                .map_err(|e| WireError::Rebuild(e.to_string()))?;
        if !(2..=crate::experiment::MAX_REPLICATIONS).contains(&self.replications) {
            return Err(WireError::Rebuild(format!(
                "replications must be between 2 and {}, got {}",
                crate::experiment::MAX_REPLICATIONS,
                self.replications
            )));
        }
        experiment.replications = self.replications;
        Ok(experiment)
    }
}

/// Hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks that `hash` looks like [`sha256_hex`] output (it becomes a subject token).
pub fn check_hash(hash: &str) -> Result<(), WireError> {
    if hash.len() == 64 && hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        Ok(())
    } else {
        Err(WireError::BadHash(hash.chars().take(80).collect()))
    }
}

/// One replication to run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// Format version ([`WIRE_VERSION`]).
    pub v: u32,
    /// Experiment run id (unique per `twin experiment --nats` run); results go to the
    /// subject that names it.
    pub experiment: String,
    /// Hash of the [`Bundle`] holding the experiment, scene and schedules.
    pub bundle: String,
    /// Index of the variant in the experiment (named variants, then sweep points).
    pub variant: u32,
    /// The variant's name, checked against the bundle's.
    pub variant_name: String,
    /// Replication index within the variant, 0-based.
    pub replication: u32,
    /// The replication's seed, checked against the bundle's experiment.
    pub seed: u64,
}

impl Job {
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a job is plain strings and numbers")
    }

    /// Parses and checks a job's version and bundle hash.
    pub fn from_bytes(bytes: &[u8]) -> Result<Job, WireError> {
        let job: Job = serde_json::from_slice(bytes)
            .map_err(|e| WireError::Json { what: "job", message: e.to_string() })?;
        if job.v != WIRE_VERSION {
            return Err(WireError::Version { what: "job", got: job.v });
        }
        check_hash(&job.bundle)?;
        Ok(job)
    }

    /// Checks the job against the experiment rebuilt from its bundle.
    pub fn check(&self, experiment: &Experiment) -> Result<(), WireError> {
        let v = self.variant as usize;
        let Some(variant) = experiment.variants.get(v) else {
            return Err(WireError::Rebuild(format!(
                "job names variant #{v}, the experiment has {}",
                experiment.variants.len()
            )));
        };
        if variant.name != self.variant_name {
            return Err(WireError::Rebuild(format!(
                "job names variant #{v} \"{}\", the bundle's is \"{}\"",
                self.variant_name, variant.name
            )));
        }
        if self.replication >= experiment.replications {
            return Err(WireError::Rebuild(format!(
                "job names replication {}, the experiment has {}",
                self.replication, experiment.replications
            )));
        }
        let seed = experiment.seed_of(v, self.replication);
        if seed != self.seed {
            return Err(WireError::Rebuild(format!(
                "job carries seed {}, the bundle gives {seed}",
                self.seed
            )));
        }
        Ok(())
    }
}

/// What became of a job.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Outcome {
    /// The replication ran; values as IEEE-754 bit patterns.
    Done {
        seed: u64,
        /// Events the core processed.
        events: u64,
        /// KPI values in the experiment's order.
        values: Vec<u64>,
        /// Bottleneck share of each station of the variant's model, in model order.
        bottlenecks: Vec<u64>,
    },
    /// The job cannot be run (bad job, unreadable bundle, a KPI that is null, a crash);
    /// the collector stops the experiment with this message.
    Failed { message: String },
}

/// A worker's answer to one job.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobResult {
    /// Format version ([`WIRE_VERSION`]).
    pub v: u32,
    /// Experiment run id, as in the job.
    pub experiment: String,
    /// Variant and replication index; absent when the job itself could not be read.
    pub variant: Option<u32>,
    pub replication: Option<u32>,
    /// Who ran it (host and process id), for messages.
    pub worker: String,
    pub outcome: Outcome,
}

impl JobResult {
    /// A finished replication.
    pub fn done(job: &Job, worker: &str, rep: &Replication) -> JobResult {
        JobResult {
            v: WIRE_VERSION,
            experiment: job.experiment.clone(),
            variant: Some(job.variant),
            replication: Some(job.replication),
            worker: worker.to_string(),
            outcome: Outcome::Done {
                seed: rep.seed,
                events: rep.events,
                values: rep.values.iter().map(|v| v.to_bits()).collect(),
                bottlenecks: rep.bottlenecks.iter().map(|v| v.to_bits()).collect(),
            },
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a result is plain strings and numbers")
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<JobResult, WireError> {
        let r: JobResult = serde_json::from_slice(bytes)
            .map_err(|e| WireError::Json { what: "result", message: e.to_string() })?;
        if r.v != WIRE_VERSION {
            return Err(WireError::Version { what: "result", got: r.v });
        }
        Ok(r)
    }

    /// The replication this result carries, checked against the collector's experiment
    /// (index in range, seed and value counts as expected).
    pub fn replication(&self, experiment: &Experiment) -> Result<Replication, String> {
        let Outcome::Done { seed, events, values, bottlenecks } = &self.outcome else {
            return Err("not a finished replication".into());
        };
        let (Some(v), Some(r)) = (self.variant, self.replication) else {
            return Err("result without variant or replication".into());
        };
        let variant = v as usize;
        let Some(model) = experiment.variants.get(variant).map(|x| &x.model) else {
            return Err(format!("result for variant #{v}, the experiment has {}", experiment.variants.len()));
        };
        if r >= experiment.replications {
            return Err(format!(
                "result for replication {r}, the experiment has {}",
                experiment.replications
            ));
        }
        if *seed != experiment.seed_of(variant, r) {
            return Err(format!("result for variant #{v} replication {r} has seed {seed}, expected another"));
        }
        if values.len() != experiment.kpis.len() || bottlenecks.len() != model.stations.len() {
            return Err(format!(
                "result for variant #{v} replication {r} has {} KPI values and {} bottleneck shares, \
                 expected {} and {}",
                values.len(),
                bottlenecks.len(),
                experiment.kpis.len(),
                model.stations.len()
            ));
        }
        Ok(Replication {
            variant,
            replication: r,
            seed: *seed,
            events: *events,
            values: values.iter().map(|b| f64::from_bits(*b)).collect(),
            bottlenecks: bottlenecks.iter().map(|b| f64::from_bits(*b)).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle() -> Bundle {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenes/experiments/training-line-buffers.ron");
        Bundle::read(&path, Some(2)).unwrap()
    }

    #[test]
    fn a_bundle_rebuilds_the_experiment_and_its_replications_bit_for_bit() {
        let b = bundle();
        let bytes = b.to_bytes();
        let back = Bundle::from_bytes(&b.hash(), &bytes).unwrap();
        assert_eq!(back, b);
        let remote = back.experiment().unwrap();
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenes/experiments/training-line-buffers.ron");
        let mut local = Experiment::load(&path).unwrap();
        local.replications = 2;
        assert_eq!(remote.variant_names(), local.variant_names());
        let a = crate::run::replicate(&remote, 1, 1).unwrap();
        let b = crate::run::replicate(&local, 1, 1).unwrap();
        let job = Job {
            v: WIRE_VERSION,
            experiment: "e".into(),
            bundle: back.hash(),
            variant: 1,
            variant_name: local.variants[1].name.clone(),
            replication: 1,
            seed: local.seed_of(1, 1),
        };
        job.check(&remote).unwrap();
        let wire = JobResult::from_bytes(&JobResult::done(&job, "w", &a).to_bytes()).unwrap();
        assert_eq!(wire.replication(&local).unwrap(), b);
    }

    #[test]
    fn corrupt_or_foreign_input_is_an_error_naming_it() {
        let b = bundle();
        let hash = b.hash();
        let mut bytes = b.to_bytes();
        bytes[10] ^= 1;
        let e = Bundle::from_bytes(&hash, &bytes).unwrap_err().to_string();
        assert!(e.contains("corrupt") && e.contains(&hash), "{e}");

        let mut bad = b.clone();
        bad.scene = "Scene(stations: [".into();
        let e = bad.experiment().unwrap_err().to_string();
        assert!(e.contains("does not rebuild") && e.contains("line"), "{e}");

        let mut future = b.clone();
        future.v = 99;
        let e = Bundle::from_bytes(&future.hash(), &future.to_bytes()).unwrap_err().to_string();
        assert!(e.contains("version 99"), "{e}");

        assert!(Job::from_bytes(b"{}").unwrap_err().to_string().contains("job is not valid JSON"));
        let job = Job {
            v: WIRE_VERSION,
            experiment: "e".into(),
            bundle: "../etc".into(),
            variant: 0,
            variant_name: String::new(),
            replication: 0,
            seed: 0,
        };
        assert!(
            Job::from_bytes(&job.to_bytes()).unwrap_err().to_string().contains("not a scene bundle hash")
        );
        let experiment = b.experiment().unwrap();
        let job = Job { bundle: hash, variant: 9, ..job };
        assert!(job.check(&experiment).unwrap_err().to_string().contains("variant #9"));
    }
}
