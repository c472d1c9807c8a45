//! The scene catalogue: `*.ron` files under the scenes folder, searched recursively and
//! named by their path below it without the extension (`training-line`,
//! `validation/mm1`). Only catalogue names can be loaded over gRPC, never paths, so a
//! client cannot make the server read arbitrary files. The top-level folders
//! [`NOT_SCENES`] hold other RON files (experiment designs, plant drift files) and are
//! left out.

use std::path::{Path, PathBuf};

/// Top-level folders of the scenes folder whose files are not scenes.
pub const NOT_SCENES: [&str; 2] = ["experiments", "drift"];

/// One scene file in the catalogue.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Entry {
    /// Catalogue name.
    pub name: String,
    pub path: PathBuf,
}

/// Catalogue name of `path` relative to `dir`: the relative path without extension, with
/// `/` separators; the file stem for files outside `dir`.
pub fn name_of(dir: &Path, path: &Path) -> String {
    let relative = path.strip_prefix(dir).map(Path::to_path_buf).ok().or_else(|| {
        let dir = dir.canonicalize().ok()?;
        let path = path.canonicalize().ok()?;
        path.strip_prefix(&dir).ok().map(Path::to_path_buf)
    });
    match relative {
        Some(rel) => rel
            .with_extension("")
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join("/"),
        None => path.file_stem().map_or_else(String::new, |s| s.to_string_lossy().into_owned()),
    }
}

/// Every scene file under `dir`, sorted by name. A missing folder is an empty catalogue.
pub fn list(dir: &Path) -> Vec<Entry> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                let other =
                    folder == dir && NOT_SCENES.iter().any(|n| path.file_name().is_some_and(|f| f == *n));
                if !other {
                    pending.push(path);
                }
            } else if path.extension().is_some_and(|e| e == "ron") {
                out.push(Entry { name: name_of(dir, &path), path });
            }
        }
    }
    out.sort();
    out
}

/// The catalogue entry called `name`, if any.
pub fn find(dir: &Path, name: &str) -> Option<Entry> {
    list(dir).into_iter().find(|e| e.name == name)
}
