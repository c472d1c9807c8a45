//! `twin serve`: parses flags, binds the listener, prints the bound address on stdout
//! and hands everything else to `twin_server::run`, which stops on SIGINT or SIGTERM.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use twin_server::{Config, IngestConfig, MqttConfig, Speed, StoreConfig, StreamLimits, TwinServer};

use crate::trust::TrustArgs;

/// Scene served when none is named.
const DEFAULT_SCENE: &str = "scenes/demo-complex.ron";
/// Served instead while the demo complex does not exist yet.
const FALLBACK_SCENE: &str = "scenes/training-line.ron";

#[derive(Args)]
pub struct ServeArgs {
    /// Scene file to serve (default: scenes/demo-complex.ron, or scenes/training-line.ron
    /// while that does not exist).
    scene: Option<PathBuf>,
    /// Address to listen on; port 0 picks a free port (printed on stdout).
    #[arg(long, default_value = "127.0.0.1:50051")]
    addr: SocketAddr,
    /// Simulated seconds per wall-clock second, or `max` for as fast as possible.
    #[arg(long, default_value = "1", value_parser = parse_speed)]
    speed: Speed,
    /// Seed of the first run (default: the scene's own seed).
    #[arg(long)]
    seed: Option<u64>,
    /// Log level or filter (error, warn, info, debug, trace, or e.g. `twin_server=debug`).
    #[arg(long, default_value = "info")]
    log: String,
    /// Folder of the scenes that ListScenes / LoadScene offer.
    #[arg(long, default_value = "scenes")]
    scenes: PathBuf,
    /// Start with the clock paused.
    #[arg(long)]
    paused: bool,
    /// Most concurrent state streams.
    #[arg(long, default_value_t = StreamLimits::default().max_streams)]
    max_streams: usize,
    /// Longest life of one state stream, seconds (clients resubscribe).
    #[arg(long, default_value_t = StreamLimits::default().max_lifetime.as_secs())]
    max_stream_secs: u64,
    /// A viewer that accepts no frame for this many seconds is dropped.
    #[arg(long, default_value_t = StreamLimits::default().stall_timeout.as_secs())]
    stall_secs: u64,
    /// Publish a forecast in the state stream (StateFrame.forecast) every this much wall
    /// time, e.g. 5m (default: none). Skipped while the clock stands still.
    #[arg(long, value_parser = crate::parse_duration)]
    forecast_every: Option<twin_core::time::Duration>,
    /// Replications of each periodic forecast (run on one thread), 1 to 1000.
    #[arg(long, default_value_t = 20, requires = "forecast_every")]
    forecast_reps: u32,
    /// How far ahead the periodic forecast looks, at most 7d (default: the end of the
    /// current shift).
    #[arg(long, value_parser = crate::parse_duration, requires = "forecast_every")]
    forecast_horizon: Option<twin_core::time::Duration>,
    /// Take live Sparkplug B telemetry from this MQTT broker (`mqtt://host[:port]`, or
    /// `mqtts://host[:port]` with --mqtt-ca),
    /// acknowledged only once durably in DIR/telemetry/. Needs --data DIR.
    #[arg(long, value_name = "URL")]
    mqtt: Option<String>,
    /// Sparkplug group id to subscribe to.
    #[arg(long, value_name = "G", default_value = twin_proto::sparkplug::vocab::DEFAULT_GROUP)]
    group: String,
    /// MQTT client id (the broker keeps its session across restarts); default
    /// `twin-{group}`.
    #[arg(long, value_name = "ID")]
    mqtt_client_id: Option<String>,
    /// With an `mqtts://host[:port]` URL (TLS, port 8883 by default): the PEM file of the
    /// certificate authority the broker's certificate must chain to.
    #[arg(long, value_name = "FILE", requires = "mqtt")]
    mqtt_ca: Option<PathBuf>,
    /// With `mqtts://`, for a broker that requires client certificates: the twin's
    /// certificate (PEM, its chain after it); needs --mqtt-key.
    #[arg(long, value_name = "FILE", requires_all = ["mqtt", "mqtt_key"])]
    mqtt_cert: Option<PathBuf>,
    /// The private key (PEM) of --mqtt-cert.
    #[arg(long, value_name = "FILE", requires = "mqtt_cert")]
    mqtt_key: Option<PathBuf>,
    /// Accept telemetry over gRPC Ingest (implied by --mqtt); keeps the telemetry log in
    /// --data DIR and replays it on restart.
    #[arg(long)]
    ingest: bool,
    /// A telemetry source silent this many seconds (wall clock) is marked stale.
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    stale_after: f64,
    /// With --data DIR: checkpoint the live run every this much simulated time (and at
    /// shutdown), e.g. 15m. Commands are logged durably in DIR/commands.redb (with
    /// --mqtt / --ingest, DIR/telemetry/ takes its place); a restart with the same
    /// DIR resumes from the newest good checkpoint plus the log.
    #[arg(long, value_parser = crate::parse_duration, value_name = "DURATION")]
    checkpoint_every: Option<twin_core::time::Duration>,
    /// With --data DIR: how many checkpoints of the live run are kept (Seek reaches back
    /// to the oldest; the command log, or with live ingest the telemetry log, is pruned
    /// up to it).
    #[arg(long, value_name = "N", default_value_t = twin_server::store::DEFAULT_KEEP)]
    checkpoint_keep: usize,
    #[command(flatten)]
    trust: TrustArgs,
    #[command(flatten)]
    programme: ProgrammeArgs,
}

/// The programme's NATS (issue 15): registration and ListComplexes.
#[derive(Args)]
struct ProgrammeArgs {
    /// Join the programme's NATS (`nats://host:4222`, or a comma-separated list of a
    /// cluster's nodes): serves ListComplexes, and with --complex registers this twin.
    #[arg(long, value_name = "URL")]
    nats: Option<String>,
    /// Register this twin as complex ID (1..64 of [A-Za-z0-9_-]; must match the scene's
    /// programme.complex_id when it has one). It answers on NATS while it runs and
    /// vanishes from the list when it stops or dies.
    #[arg(long, value_name = "ID", requires = "nats")]
    complex: Option<String>,
    /// gRPC URL clients reach this twin at (default: http(s)://the bound address; needed
    /// when binding 0.0.0.0).
    #[arg(long, value_name = "URL", requires = "nats")]
    advertise: Option<String>,
}

impl ProgrammeArgs {
    fn config(&self) -> Option<twin_server::registry::ProgrammeConfig> {
        self.nats.as_ref().map(|nats| twin_server::registry::ProgrammeConfig {
            nats: nats.clone(),
            complex_id: self.complex.clone(),
            advertise: self.advertise.clone(),
        })
    }
}

fn parse_speed(text: &str) -> Result<Speed, String> {
    Ok(crate::parse_speed(text)?.map_or(Speed::Max, Speed::Paced))
}

pub fn run(args: ServeArgs) -> Result<ExitCode> {
    crate::init_logging(&args.log)?;

    let ingest = ingest_config(&args)?;
    let store = store_config(&args)?;
    let scene = match args.scene {
        Some(scene) => scene,
        None if Path::new(DEFAULT_SCENE).exists() => PathBuf::from(DEFAULT_SCENE),
        None => {
            tracing::warn!(
                missing = DEFAULT_SCENE,
                using = FALLBACK_SCENE,
                "default scene not found; serving the training line instead"
            );
            PathBuf::from(FALLBACK_SCENE)
        }
    };
    let forecast = match args.forecast_every {
        None => None,
        Some(every) => {
            use twin_core::forecast::{MAX_AHEAD, MAX_REPLICATIONS};
            anyhow::ensure!(every.micros() > 0, "--forecast-every must be more than 0");
            anyhow::ensure!(
                (1..=MAX_REPLICATIONS).contains(&args.forecast_reps),
                "--forecast-reps must be 1 to {MAX_REPLICATIONS}, got {}",
                args.forecast_reps
            );
            let ahead = args.forecast_horizon.map(|h| h.micros());
            anyhow::ensure!(
                ahead.is_none_or(|a| a > 0 && a <= MAX_AHEAD),
                "--forecast-horizon must be more than 0 and at most {}",
                twin_core::time::Duration(MAX_AHEAD)
            );
            Some(twin_server::forecast::PeriodicForecast {
                every: Duration::from_micros(every.micros()),
                replications: args.forecast_reps,
                ahead,
            })
        }
    };
    let config = Config {
        forecast,
        scenes_dir: args.scenes,
        seed: args.seed,
        speed: args.speed,
        start_paused: args.paused,
        limits: StreamLimits {
            max_streams: args.max_streams,
            max_lifetime: Duration::from_secs(args.max_stream_secs),
            stall_timeout: Duration::from_secs(args.stall_secs),
        },
        trust: args.trust.config()?,
        ingest,
        programme: args.programme.config(),
        store,
        ..Config::new(scene)
    };
    // Refuse an unauthenticated non-loopback address before binding anything.
    twin_server::trust::refuse_insecure_bind(&config.trust, args.addr)?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.addr)
            .await
            .with_context(|| format!("binding {}", args.addr))?;
        let addr = listener.local_addr().context("reading the bound address")?;
        let server = TwinServer::new(config)?;
        // Tests and scripts read these lines to find the ports.
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "listening on {addr}").context("writing to stdout")?;
        if let Some(metrics) = server.metrics_addr() {
            writeln!(stdout, "metrics on http://{metrics}/metrics").context("writing to stdout")?;
        }
        stdout.flush().context("flushing stdout")?;
        drop(stdout);
        server.serve(listener, shutdown_signal()).await?;
        Ok(ExitCode::SUCCESS)
    })
}

/// The store settings: on with `--data DIR` (checkpoints and the durable command log).
fn store_config(args: &ServeArgs) -> Result<Option<StoreConfig>> {
    let Some(data) = args.trust.data_dir() else {
        anyhow::ensure!(
            args.checkpoint_every.is_none(),
            "--checkpoint-every needs --data DIR (the checkpoints are kept in DIR/checkpoints)"
        );
        return Ok(None);
    };
    anyhow::ensure!(args.checkpoint_keep > 0, "--checkpoint-keep must be at least 1");
    let every = args.checkpoint_every.map_or(twin_server::store::DEFAULT_EVERY, |d| d.micros());
    anyhow::ensure!(every > 0, "--checkpoint-every must be more than 0");
    Ok(Some(StoreConfig { every, keep: args.checkpoint_keep, ..StoreConfig::new(data) }))
}

/// The ingest settings of `--mqtt` / `--ingest`, which need `--data DIR`.
fn ingest_config(args: &ServeArgs) -> Result<Option<IngestConfig>> {
    if args.mqtt.is_none() && !args.ingest {
        return Ok(None);
    }
    let data = args.trust.data_dir().context(
        "--mqtt and --ingest keep a durable telemetry log: add --data DIR (it holds DIR/telemetry/)",
    )?;
    anyhow::ensure!(
        args.stale_after.is_finite() && args.stale_after > 0.0,
        "--stale-after must be a positive number of seconds"
    );
    anyhow::ensure!(
        twin_proto::sparkplug::topic::valid_id(&args.group),
        "--group `{}` is not a valid Sparkplug id (no '/', '+', '#')",
        args.group
    );
    let mqtt = args.mqtt.as_ref().map(|url| MqttConfig {
        url: url.clone(),
        client_id: args.mqtt_client_id.clone().unwrap_or_else(|| format!("twin-{}", args.group)),
        ca: args.mqtt_ca.clone(),
        client_cert: args
            .mqtt_cert
            .clone()
            .zip(args.mqtt_key.clone())
            .map(|(cert, key)| twin_server::ingest::ClientCert { cert, key }),
    });
    Ok(Some(IngestConfig {
        mqtt,
        group: args.group.clone(),
        stale_after: Duration::from_secs_f64(args.stale_after),
        ..IngestConfig::new(data)
    }))
}

/// Completes on the first SIGINT or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = interrupt => tracing::info!("SIGINT received"),
                    _ = term.recv() => tracing::info!("SIGTERM received"),
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; stopping on SIGINT only");
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
