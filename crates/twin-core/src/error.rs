//! Scene errors that name the file, line, column and field path.

use std::fmt;
use std::path::{Path, PathBuf};

/// A place in a scene file, 1-based.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Location {
    pub line: usize,
    pub col: usize,
}

/// One problem in a scene.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct SceneError {
    /// File the problem is in.
    pub origin: PathBuf,
    /// Line and column, where known.
    pub location: Option<Location>,
    /// Field path such as `stations[2].buffer`; empty for syntax errors.
    pub path: String,
    pub message: String,
}

impl fmt::Display for SceneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.origin.display())?;
        if let Some(loc) = self.location {
            write!(f, ":{}:{}", loc.line, loc.col)?;
        }
        if !self.path.is_empty() {
            write!(f, ": {}", self.path)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Every problem found in a scene, not just the first.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct SceneErrors(pub Vec<SceneError>);

impl SceneErrors {
    pub(crate) fn io(path: &Path, e: &std::io::Error) -> SceneErrors {
        SceneErrors(vec![SceneError {
            origin: path.to_path_buf(),
            location: None,
            path: String::new(),
            message: format!("cannot read: {e}"),
        }])
    }
}

impl fmt::Display for SceneErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}
