//! `twin plant`: runs a scene as the "real plant" and publishes Sparkplug B over MQTT
//! (see the `twin_plant` crate). Reads the files and the wall clock (the default
//! `Plant/Epoch`), then hands everything to `twin_plant::mqtt::run`, which stops at
//! `--until` or on SIGINT / SIGTERM, publishing every NDEATH first.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow};
use clap::Args;
use twin_core::Model;
use twin_core::time::{Duration, SECOND};
use twin_plant::mqtt::{self, MqttTarget, RunOptions, Speed};
use twin_plant::{Drift, Plant, PlantOptions};
use twin_proto::sparkplug::{topic, vocab};

use crate::parse_duration;
use crate::serve::shutdown_signal;

#[derive(Args)]
pub struct PlantArgs {
    /// Scene file the plant runs (the model the twin has, before any drift).
    scene: PathBuf,
    /// MQTT broker, mqtt://HOST:PORT.
    #[arg(long)]
    mqtt: String,
    /// Sparkplug group id.
    #[arg(long, default_value = vocab::DEFAULT_GROUP)]
    group: String,
    /// Plant seconds per wall-clock second, or `max` for as fast as the broker takes it.
    #[arg(long, default_value = "1", value_parser = parse_speed)]
    speed: Speed,
    /// Seed of the plant's random streams (default: the scene's own seed).
    #[arg(long)]
    seed: Option<u64>,
    /// Drift file (RON): how the plant differs from the model; see README.md.
    #[arg(long)]
    drift: Option<PathBuf>,
    /// Plant/Epoch: ms since the Unix epoch of plant time 0 (default: now). Fix it to
    /// make runs byte-identical.
    #[arg(long)]
    epoch: Option<u64>,
    /// Stop after this much plant time (e.g. "8h"): NDEATH, disconnect, exit 0.
    #[arg(long, value_parser = parse_duration)]
    until: Option<Duration>,
    /// Wall time between two DDATA batches.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    publish_every: Duration,
    /// Plant time per DDATA batch (default: --publish-every x --speed; with --speed max,
    /// 10s).
    #[arg(long, value_parser = parse_duration)]
    batch: Option<Duration>,
    /// MQTT client id prefix; client ids are PREFIX-EDGE_NODE (default: twin-plant-GROUP).
    #[arg(long)]
    client_id: Option<String>,
    /// Log level or filter (error, warn, info, debug, trace).
    #[arg(long, default_value = "info")]
    log: String,
}

fn parse_speed(text: &str) -> Result<Speed, String> {
    Ok(crate::parse_speed(text)?.map_or(Speed::Max, Speed::Paced))
}

pub fn run(args: PlantArgs) -> Result<ExitCode> {
    crate::init_logging(&args.log)?;

    if !topic::valid_id(&args.group) {
        return Err(anyhow!("invalid --group `{}`: must be non-empty without `/`, `+` or `#`", args.group));
    }
    let target = MqttTarget::parse(&args.mqtt)?;
    let (mut scene, source, schedules) = twin_core::scene::load(&args.scene).map_err(|e| anyhow!("{e}"))?;
    // The unchanged model must be valid: it is what the twin runs.
    Model::build(&scene, Some(&source), &schedules).map_err(|e| anyhow!("{e}"))?;
    let drift = match &args.drift {
        Some(path) => Drift::load(path, &scene).map_err(|e| anyhow!("{e}"))?,
        None => Drift::none(),
    };
    drift.apply(&mut scene);
    let model = Model::build(&scene, Some(&source), &schedules)
        .map_err(|e| anyhow!("the scene with the drift applied is invalid:\n{e}"))?;
    let seed = args.seed.unwrap_or(model.seed);
    let epoch_ms = match args.epoch {
        Some(ms) => ms,
        None => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .context("the system clock is before 1970")?
            .as_millis() as u64,
    };
    let batch = match (args.batch, args.speed) {
        (Some(b), _) => b.0,
        (None, Speed::Paced(s)) => (args.publish_every.0 as f64 * s).round() as u64,
        (None, Speed::Max) => 10 * SECOND,
    };
    if batch == 0 {
        return Err(anyhow!("the batch (plant time per DDATA batch) must be greater than zero"));
    }
    let plant =
        Plant::new(Arc::new(model), seed, &drift, PlantOptions { group: args.group.clone(), epoch_ms });
    let options = RunOptions {
        target,
        speed: args.speed,
        batch,
        until: args.until.map(|d| d.0),
        client_prefix: args.client_id.unwrap_or_else(|| format!("twin-plant-{}", args.group)),
    };
    tracing::info!(
        scene = %args.scene.display(), seed, epoch_ms, batch_us = batch,
        drift = args.drift.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
        nodes = ?plant.node_ids(), "plant starting"
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let summary = runtime.block_on(mqtt::run(plant, options, shutdown_signal()))?;
    let c = summary.counts;
    println!(
        "plant stopped at {}: {} births, {} data, {} deaths, {} cycles ({} lost to dead gateways), {} rebirths, {} reconnects",
        Duration(summary.plant_time),
        c.births,
        c.data,
        c.deaths,
        c.cycles,
        c.cycles_lost,
        summary.rebirths,
        summary.reconnects
    );
    Ok(ExitCode::SUCCESS)
}
