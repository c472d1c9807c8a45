//! `twin`: the command-line face of the industrial-complex twin.
//!
//! A thin binary: it parses arguments, reads files and the wall clock, and hands the
//! real work to the libraries.

mod audit;
mod collect;
mod complexes;
mod experiment;
mod forecast;
mod plant;
mod queue;
mod run;
mod serve;
mod text;
mod trust;
mod watch;
mod worker;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};
use twin_core::Model;
use twin_core::time::Duration;

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
    /// Run a scene as fast as possible and print its KPI report (or continue a saved run).
    Run(run::RunArgs),
    /// Forecast a saved run: P10/P50/P90 of parts finished, throughput, WIP and
    /// value-added rate by the horizon, and each open order's on-time probability.
    Forecast(forecast::ForecastArgs),
    /// Serve the live twin over gRPC (twin.v1.TwinService, health, reflection).
    Serve(Box<serve::ServeArgs>),
    /// Run a layout experiment (variants x replications) and compare KPIs with intervals.
    Experiment(experiment::ExperimentArgs),
    /// Run experiment replications from a NATS JetStream work queue (see `experiment --nats`).
    Worker(worker::WorkerArgs),
    /// Show the audit log (newest first) from its file or from a running server.
    Audit(audit::AuditArgs),
    /// Print a live twin's ingest status, telemetry sources and open alarms every few
    /// seconds (headless operator view).
    Watch(watch::WatchArgs),
    /// The programme view: the live complexes' KPIs against the programme's targets
    /// (from the programme's NATS, or a server's ListComplexes).
    Complexes(complexes::ComplexesArgs),
    /// Run a scene as the real plant: publish Sparkplug B over MQTT, with optional drift.
    Plant(Box<plant::PlantArgs>),
}

pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    Duration::parse(text)
}

/// `--speed`: simulated seconds per wall-clock second, or `max` (None) for as fast as
/// possible.
pub(crate) fn parse_speed(text: &str) -> Result<Option<f64>, String> {
    if text.eq_ignore_ascii_case("max") {
        return Ok(None);
    }
    match text.parse::<f64>() {
        Ok(s) if s.is_finite() && s > 0.0 => Ok(Some(s)),
        _ => Err(format!("speed must be a positive number or `max`, got `{text}`")),
    }
}

/// Logs to standard error through the `--log` filter (a level or e.g. `twin_server=debug`).
pub(crate) fn init_logging(filter: &str) -> anyhow::Result<()> {
    use anyhow::Context;
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .with_context(|| format!("invalid --log filter `{filter}`"))?;
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    Ok(())
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
        Command::Watch(args) => watch::run(args),
        Command::Complexes(args) => complexes::run(args),
        Command::Plant(args) => plant::run(*args),
        Command::Worker(args) => worker::run(args),
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
        Command::Run(args) => run::run(args),
        Command::Forecast(args) => forecast::run(args),
    }
}
