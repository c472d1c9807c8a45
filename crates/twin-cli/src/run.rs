//! `twin run`: runs a scene (or continues a saved run) as fast as possible and prints its
//! KPI report; optionally saves the whole state at the end.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use twin_core::snapshot;
use twin_core::time::Duration;
use twin_core::{Model, Sim};

use crate::text;

/// Scene run when none is named.
const DEFAULT_SCENE: &str = "scenes/demo-complex.ron";

#[derive(Args)]
pub struct RunArgs {
    /// Scene file to run (default: scenes/demo-complex.ron). With --resume: the scene the
    /// snapshot was taken of (default: the path the snapshot records).
    scene: Option<PathBuf>,
    /// Seed for the random streams (default: the scene's own seed).
    #[arg(long)]
    seed: Option<u64>,
    /// Simulated time to run to, e.g. 8h or 7d (default: the scene's `run.until`).
    #[arg(long, value_parser = crate::parse_duration)]
    until: Option<Duration>,
    /// Warm-up excluded from the KPIs (default: the scene's `run.warmup`).
    #[arg(long, value_parser = crate::parse_duration)]
    warmup: Option<Duration>,
    /// Print one JSON object instead of the readable report.
    #[arg(long)]
    json: bool,
    /// Write the whole state at the end of the run to FILE (continue it with --resume).
    #[arg(long, value_name = "FILE")]
    save_state: Option<PathBuf>,
    /// Continue the run saved in FILE by --save-state, to --until; the report is the
    /// one a run straight to --until gives (but wall_s).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["seed", "warmup"])]
    resume: Option<PathBuf>,
}

pub fn run(args: RunArgs) -> Result<ExitCode> {
    let resumed = match &args.resume {
        Some(file) => {
            let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
            let header = snapshot::read_header(&bytes)
                .with_context(|| format!("{}: not a snapshot this twin can resume", file.display()))?;
            Some((bytes, header))
        }
        None => None,
    };
    let scene = match (&args.scene, &resumed) {
        (Some(scene), _) => scene.clone(),
        (None, Some((_, header))) => PathBuf::from(&header.scene_path),
        (None, None) => PathBuf::from(DEFAULT_SCENE),
    };
    let mut model = match Model::load(&scene) {
        Ok(model) => model,
        Err(errors) => {
            eprintln!("{errors}");
            return Ok(ExitCode::FAILURE);
        }
    };
    if let Some(until) = args.until {
        model.until = until.micros();
    }
    if let Some(warmup) = args.warmup {
        model.warmup = warmup.micros();
    }
    // A resumed run's warm-up is in its state already.
    anyhow::ensure!(
        resumed.is_some() || model.warmup < model.until,
        "warm-up ({}) must be shorter than the run ({})",
        Duration(model.warmup),
        Duration(model.until)
    );
    let until = model.until;
    let seed = args.seed.unwrap_or(model.seed);
    let model = Arc::new(model);

    let started = Instant::now();
    let mut sim = match &resumed {
        Some((bytes, header)) => {
            anyhow::ensure!(
                until >= header.now,
                "--until ({}) is before the saved run's time ({})",
                Duration(until),
                Duration(header.now)
            );
            Sim::restore(model, bytes).with_context(|| format!("resuming from {}", scene.display()))?
        }
        None => Sim::new(model, seed),
    };
    sim.run_until(until);
    let report = sim.report();
    let wall_s = started.elapsed().as_secs_f64();
    if args.json {
        println!("{}", report.to_json(wall_s));
    } else {
        print!("{}", text::render(&report, wall_s));
    }
    if let Some(file) = &args.save_state {
        write_atomically(file, &sim.save(&scene.to_string_lossy()))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes `bytes` to a temporary file beside `path` and renames it into place, so that a
/// crash never leaves half a snapshot under the name.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
}
