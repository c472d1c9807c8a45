//! `twin forecast`: many futures of a saved run, summarised as P10 / P50 / P90 bands of
//! parts finished, throughput, WIP and value-added rate, and the on-time probability of
//! each open order due by the horizon (see `twin_core::forecast`).

use std::fmt::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use serde::Serialize;
use twin_core::forecast::{Band, Forecast, Forecaster, Horizon, Kpi, Request};
use twin_core::snapshot;
use twin_core::time::{Duration, SECOND};
use twin_core::{Model, Sim};

/// Orders listed in the readable output; the JSON has them all.
const MAX_ORDER_ROWS: usize = 20;

#[derive(Args)]
pub struct ForecastArgs {
    /// The scene the snapshot was taken of (default: the path the snapshot records).
    scene: Option<PathBuf>,
    /// The saved run to forecast from (`twin run --save-state FILE`).
    #[arg(long, value_name = "FILE")]
    resume: PathBuf,
    /// How far ahead, e.g. 8h (default: the end of the current shift of the calendar
    /// most stations follow; 8h without calendars). At most 7d.
    #[arg(long, value_parser = crate::parse_duration)]
    horizon: Option<Duration>,
    /// Replications (futures) to run, 1 to 1000.
    #[arg(long, default_value_t = 100)]
    reps: u32,
    /// What to forecast (default: all).
    #[arg(long, value_enum, value_delimiter = ',')]
    kpis: Vec<KpiArg>,
    /// Replications run at once; 0 means one per available core. The forecast is the
    /// same for any value.
    #[arg(long, default_value_t = 0)]
    jobs: usize,
    /// Print one JSON object instead of the readable tables.
    #[arg(long)]
    json: bool,
}

/// The KPIs on the command line.
#[derive(Clone, Copy, ValueEnum)]
enum KpiArg {
    PartsFinished,
    Throughput,
    Wip,
    ValueAddedRate,
    OnTime,
}

impl From<KpiArg> for Kpi {
    fn from(k: KpiArg) -> Kpi {
        match k {
            KpiArg::PartsFinished => Kpi::PartsFinished,
            KpiArg::Throughput => Kpi::Throughput,
            KpiArg::Wip => Kpi::Wip,
            KpiArg::ValueAddedRate => Kpi::ValueAddedRate,
            KpiArg::OnTime => Kpi::OnTime,
        }
    }
}

/// The JSON document: the forecast plus the wall time it took, the one field that
/// differs between identical forecasts.
#[derive(Serialize)]
struct JsonForecast<'a> {
    wall_s: f64,
    #[serde(flatten)]
    forecast: &'a Forecast,
}

pub fn run(args: ForecastArgs) -> Result<ExitCode> {
    let file = &args.resume;
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let header = snapshot::read_header(&bytes)
        .with_context(|| format!("{}: not a snapshot this twin can resume", file.display()))?;
    let scene = args.scene.clone().unwrap_or_else(|| PathBuf::from(&header.scene_path));
    let model = match Model::load(&scene) {
        Ok(model) => Arc::new(model),
        Err(errors) => {
            eprintln!("{errors}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let sim = Sim::restore(model, &bytes).with_context(|| format!("resuming from {}", scene.display()))?;
    let request = Request {
        horizon: args.horizon.map_or(Horizon::EndOfShift, |d| Horizon::Ahead(d.micros())),
        replications: args.reps,
        kpis: args.kpis.iter().map(|&k| k.into()).collect(),
    };
    let forecaster = match Forecaster::new(&sim, &request) {
        Ok(forecaster) => forecaster,
        Err(e) => {
            let flag = if e.field() == "replications" { "--reps" } else { "--horizon" };
            anyhow::bail!("{flag}: {e}");
        }
    };
    let started = Instant::now();
    let forecast = twin_lab::run_forecast(&forecaster, args.jobs, |_, _| {}, &AtomicBool::new(false))
        .context("the forecast was cancelled")?;
    let wall_s = started.elapsed().as_secs_f64();
    if args.json {
        let doc = JsonForecast { wall_s, forecast: &forecast };
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        print!("{}", render(&forecast, wall_s));
    }
    Ok(ExitCode::SUCCESS)
}

fn time(seconds: f64) -> Duration {
    Duration((seconds * SECOND as f64).round() as u64)
}

/// A simulated time to the minute, `6d 21:18` (day 0 is the run's first).
fn clock(seconds: f64) -> String {
    let minutes = (seconds / 60.0).floor() as u64;
    format!("{}d {:02}:{:02}", minutes / 1440, minutes / 60 % 24, minutes % 60)
}

/// The forecast as aligned text.
fn render(f: &Forecast, wall_s: f64) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{} (seed {})", f.scene, f.seed);
    let _ = writeln!(
        out,
        "forecast from {} to {} ({} ahead): {} replications in {:.3}s wall",
        clock(f.from_s),
        clock(f.horizon_s),
        time(f.horizon_s - f.from_s),
        f.replications,
        wall_s
    );
    let rows: [(&str, Option<Band>, usize); 5] = [
        ("parts finished", f.parts_finished, 0),
        ("throughput per hour", f.throughput_per_hour, 1),
        ("WIP at the horizon", f.wip_end, 0),
        ("WIP, time average", f.wip_mean, 1),
        ("value-added rate (%)", f.value_added_rate.map(|b| percent(&b)), 2),
    ];
    if rows.iter().any(|r| r.1.is_some()) {
        let _ = writeln!(out, "\n{:<22} {:>10} {:>10} {:>10} {:>10}", "", "P10", "P50", "P90", "mean");
        for (name, band, digits) in rows {
            if let Some(b) = band {
                let _ = writeln!(
                    out,
                    "{name:<22} {:>10.digits$} {:>10.digits$} {:>10.digits$} {:>10.digits$}",
                    b.p10, b.p50, b.p90, b.mean
                );
            }
        }
    }
    if !f.orders.is_empty() || f.orders_beyond_horizon > 0 {
        let _ = writeln!(
            out,
            "\nopen orders due by the horizon: {} ({} due later, not judged)",
            f.orders.len(),
            f.orders_beyond_horizon
        );
        if !f.orders.is_empty() {
            let _ = writeln!(
                out,
                "{:<12} {:<12} {:>6} {:>14} {:>14} {:>8} {:>8}",
                "order", "product", "units", "released", "due", "on time", "risk"
            );
            for o in f.orders.iter().take(MAX_ORDER_ROWS) {
                let _ = writeln!(
                    out,
                    "{:<12} {:<12} {:>6} {:>14} {:>14} {:>7.0}% {:>7.0}%",
                    o.id,
                    o.product,
                    o.quantity,
                    clock(o.released_s),
                    clock(o.due_s),
                    o.on_time_probability * 100.0,
                    o.on_time_risk * 100.0
                );
            }
            if f.orders.len() > MAX_ORDER_ROWS {
                let _ = writeln!(out, "... {} more (--json lists them all)", f.orders.len() - MAX_ORDER_ROWS);
            }
        }
    }
    out
}

fn percent(b: &Band) -> Band {
    Band { p10: b.p10 * 100.0, p50: b.p50 * 100.0, p90: b.p90 * 100.0, mean: b.mean * 100.0 }
}
