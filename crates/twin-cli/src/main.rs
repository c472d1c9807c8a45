//! `twin`: the command-line face of the industrial-complex twin.
//!
//! A thin binary: it parses arguments, reads files and the wall clock, and hands the
//! real work to the libraries.

mod audit;
mod experiment;
mod serve;
mod text;
mod trust;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use clap::{Parser, Subcommand};
use twin_core::time::Duration;
use twin_core::{Model, Sim};

#[derive(Parser)]
#[command(name = "twin", version, about = "Digital twin of a smart industrial complex")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate scene files; every problem is listed with file, line, column and field.
    Check {
        /// Scene files to check.
        #[arg(required = true)]
        scenes: Vec<PathBuf>,
    },
    /// Run a scene as fast as possible and print its KPI report.
    Run {
        /// Scene file to run.
        #[arg(default_value = "scenes/demo-complex.ron")]
        scene: PathBuf,
        /// Seed for the random streams (default: the scene's own seed).
        #[arg(long)]
        seed: Option<u64>,
        /// Simulated time to run to, e.g. 8h or 7d (default: the scene's `run.until`).
        #[arg(long, value_parser = parse_duration)]
        until: Option<Duration>,
        /// Warm-up excluded from the KPIs (default: the scene's `run.warmup`).
        #[arg(long, value_parser = parse_duration)]
        warmup: Option<Duration>,
        /// Print one JSON object instead of the readable report.
        #[arg(long)]
        json: bool,
    },
    /// Serve the live twin over gRPC (twin.v1.TwinService, health, reflection).
    Serve(Box<serve::ServeArgs>),
    /// Run a layout experiment (variants x replications) and compare KPIs with intervals.
    Experiment(experiment::ExperimentArgs),
    /// Show the audit log (newest first) from its file or from a running server.
    Audit(audit::AuditArgs),
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    Duration::parse(text)
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Serve(args) => serve::run(*args),
        Command::Experiment(args) => experiment::run(args),
        Command::Audit(args) => audit::run(args),
        Command::Check { scenes } => {
            let mut failed = false;
            for path in &scenes {
                match Model::load(path) {
                    Ok(model) => println!(
                        "{}: ok ({} stations, {} products, {} sources)",
                        path.display(),
                        model.stations.len(),
                        model.products.len(),
                        model.sources.len()
                    ),
                    Err(errors) => {
                        failed = true;
                        eprintln!("{errors}");
                        eprintln!("{}: {} problem(s)", path.display(), errors.0.len());
                    }
                }
            }
            Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
        }
        Command::Run { scene, seed, until, warmup, json } => {
            let mut model = match Model::load(&scene) {
                Ok(model) => model,
                Err(errors) => {
                    eprintln!("{errors}");
                    return Ok(ExitCode::FAILURE);
                }
            };
            if let Some(until) = until {
                model.until = until.micros();
            }
            if let Some(warmup) = warmup {
                model.warmup = warmup.micros();
            }
            anyhow::ensure!(
                model.warmup < model.until,
                "warm-up ({}) must be shorter than the run ({})",
                Duration(model.warmup),
                Duration(model.until)
            );
            let seed = seed.unwrap_or(model.seed);
            let until = model.until;
            let started = Instant::now();
            let mut sim = Sim::new(Arc::new(model), seed);
            sim.run_until(until);
            let report = sim.report();
            let wall_s = started.elapsed().as_secs_f64();
            if json {
                println!("{}", report.to_json(wall_s));
            } else {
                print!("{}", text::render(&report, wall_s));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
