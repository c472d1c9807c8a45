//! Errors of experiments: a bad file names the file, line and field; a bad edit names
//! the variant and the field; a failed run names the variant and replication.

use std::fmt;
use std::path::PathBuf;

use twin_core::SceneErrors;
use twin_core::error::Location;

/// One problem in an experiment file, found while parsing or validating it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileProblem {
    /// The experiment file.
    pub origin: PathBuf,
    /// Line and column, where known.
    pub location: Option<Location>,
    /// Variant the problem belongs to, if any (sweep points are variants too).
    pub variant: Option<String>,
    /// Field path in the experiment file, such as `variants[2].edits[0].station`.
    pub path: String,
    pub message: String,
}

impl fmt::Display for FileProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.origin.display())?;
        if let Some(loc) = self.location {
            write!(f, ":{}:{}", loc.line, loc.col)?;
        }
        if let Some(v) = &self.variant {
            write!(f, ": variant \"{v}\"")?;
        }
        if !self.path.is_empty() {
            write!(f, ": {}", self.path)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Everything that can go wrong with an experiment.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// The experiment file is malformed, or its edits do not fit the scene (including
    /// edited scenes that fail validation); every problem found is listed.
    #[error("{}", list(.0))]
    File(Vec<FileProblem>),
    /// The base scene file is missing or invalid.
    #[error("base scene of {experiment}: {errors}")]
    Scene { experiment: PathBuf, errors: SceneErrors },
    /// A replication could not produce one of the requested KPIs.
    #[error("variant \"{variant}\", replication {replication}: KPI `{kpi}`: {message}")]
    Kpi { variant: String, replication: u32, kpi: String, message: String },
    /// A replication panicked (a bug in the core, never bad input); the message says where.
    #[error("variant \"{variant}\", replication {replication} (seed {seed}) crashed: {message}")]
    Crashed { variant: String, replication: u32, seed: u64, message: String },
    /// A replication asked for by index (a distributed job) is not in the experiment.
    #[error(
        "no replication {replication} of variant #{variant}: the experiment has {variants} variants x \
         {replications} replications"
    )]
    NoSuchReplication { variant: usize, replication: u32, variants: usize, replications: u32 },
    /// Writing result files failed.
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
    /// Drawing a plot failed.
    #[error("plot {file}: {message}")]
    Plot { file: PathBuf, message: String },
}

fn list(problems: &[FileProblem]) -> String {
    problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
}
