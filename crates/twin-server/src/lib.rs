//! The live twin over gRPC: loads a scene, runs the simulation core paced to the wall
//! clock at an adjustable speed, streams state to any number of viewers, and takes
//! control calls, injections and report requests (`twin.v1.TwinService`), next to
//! standard health checking and server reflection.
//!
//! Structured like tokio's mini-redis: [`run`] takes a bound listener, a [`Config`] and a
//! shutdown future, so the `twin serve` binary stays thin and tests run the real server
//! on `127.0.0.1:0`.
//!
//! Layout:
//! - [`sim`]: the simulation thread (pacing, commands between events, snapshots).
//! - [`live`]: plain values of the live run (clock, speed, receipts, reports).
//! - [`measure`]: moving-window rates (station throughput, flow links).
//! - [`stream`]: StreamState, one bounded, coalescing task per viewer.
//! - [`experiment`]: StartExperiment / CancelExperiment on twin-lab.
//! - [`service`]: the TwinService RPC handlers.
//! - [`convert`]: every conversion between core and wire types, and error statuses
//!   (conversion only).
//! - [`scenes`]: the scene catalogue under the scenes folder.
//! - [`gate`]: the tower layer in front of every call: roles, audit, RPC metrics.
//! - [`auth`]: the roles, THE role table of every RPC, tokens and JWTs.
//! - [`audit`]: the durable audit log (redb) and its retention.
//! - [`metrics`]: Prometheus metrics and the `/metrics` endpoint.
//! - [`tls`]: TLS and mutual TLS files; [`trust`]: the trust settings and the loopback rule.
//! - [`ingest`]: live telemetry (Sparkplug B over MQTT, gRPC Ingest) through the durable
//!   telemetry log onto the simulation; restart replay.
//! - [`registry`]: the programme's complexes on NATS request-reply (`--nats`,
//!   `--complex`, ListComplexes).
//! - [`store`]: with `--data DIR`, the durable command log and the checkpoints, and the
//!   restart from them (issue 13); time travel itself is in [`sim::timeline`].
//!
//! Architecture invariant: this is the only crate that knows both twin-core and the wire
//! types; the core knows nothing of tokio or tonic, and clients never link the core.

pub mod alarms;
pub mod audit;
pub mod auth;
pub mod convert;
pub mod experiment;
pub mod forecast;
pub mod gate;
pub mod ingest;
pub mod live;
pub mod measure;
pub mod metrics;
pub mod registry;
pub mod scenes;
pub mod service;
pub mod sim;
pub mod store;
pub mod stream;
pub mod tls;
pub mod trust;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use tonic_health::ServingStatus;
use twin_core::time::Micros;
use twin_core::{Model, SceneErrors};
use twin_proto::v1::twin_service_server::TwinServiceServer;

pub use crate::ingest::{IngestConfig, MqttConfig};
pub use crate::sim::{InjectError, Injection, NotLogged, Receipt, Snapshot, Speed, Stopped};
pub use crate::store::StoreConfig;
pub use crate::stream::StreamLimits;
pub use crate::trust::{TrustConfig, TrustError};
pub use twin_core::CommandError;

use crate::service::Twin;
use crate::sim::{LiveScene, SimHandle};

/// How the server starts and what it allows.
#[derive(Clone, Debug)]
pub struct Config {
    /// Scene file to load at start.
    pub scene: PathBuf,
    /// Folder of bundled scenes for ListScenes / LoadScene (searched recursively).
    pub scenes_dir: PathBuf,
    /// Seed of the first run; None uses the scene's own seed. Also the seed Reset uses
    /// when the request names none.
    pub seed: Option<u64>,
    /// Initial pacing.
    pub speed: Speed,
    /// Start with the clock stopped (tests); a live twin normally starts running.
    pub start_paused: bool,
    /// Limits of the state streams.
    pub limits: StreamLimits,
    /// How long shutdown waits for open calls (e.g. health watches) before dropping them.
    pub shutdown_grace: Duration,
    /// Authentication, TLS, audit log and metrics (default: none of them, loopback only).
    pub trust: TrustConfig,
    /// The periodic forecast published in the state stream; None: none.
    pub forecast: Option<forecast::PeriodicForecast>,
    /// Live telemetry and its durable log (`--data DIR`, `--mqtt URL`); None: no ingest.
    pub ingest: Option<IngestConfig>,
    /// The programme's NATS (`--nats URL`, `--complex ID`): registration and
    /// ListComplexes; None: neither.
    pub programme: Option<registry::ProgrammeConfig>,
    /// Durable command log and checkpoints (`--data DIR`); None: nothing kept on disk.
    /// With live ingest the telemetry log is the truth and only the checkpoints are taken
    /// from this (see [`ingest::resume`]).
    pub store: Option<StoreConfig>,
}

impl Config {
    /// Defaults for `scene`: real time, running, scenes under `scenes/`.
    pub fn new(scene: impl Into<PathBuf>) -> Config {
        Config {
            scene: scene.into(),
            scenes_dir: PathBuf::from("scenes"),
            seed: None,
            speed: Speed::Paced(1.0),
            start_paused: false,
            limits: StreamLimits::default(),
            shutdown_grace: Duration::from_secs(5),
            trust: TrustConfig::default(),
            forecast: None,
            ingest: None,
            programme: None,
            store: None,
        }
    }
}

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("loading scene {path}:\n{errors}")]
    Scene { path: PathBuf, errors: SceneErrors },
    #[error("starting the simulation thread: {0}")]
    Thread(#[source] std::io::Error),
    #[error("building the reflection service: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("serving gRPC: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error(transparent)]
    Trust(#[from] TrustError),
    #[error("starting the ingest: {0}")]
    Ingest(#[from] ingest::IngestError),
    #[error("joining the programme: {0}")]
    Registry(#[from] registry::RegistryError),
    #[error("restoring the live run from the data folder: {0}")]
    Store(#[from] store::StoreError),
}

/// A twin server with its scene loaded and its simulation thread started, not yet
/// serving. Benchmarks and tests use it to observe snapshots and the command log.
pub struct TwinServer {
    twin: Twin,
    trust: trust::Trust,
    /// Started with the serving, stopped at shutdown.
    periodic_forecast: Option<forecast::PeriodicForecast>,
    /// Joined when serving starts (it needs the bound address for the endpoint).
    programme: Option<registry::ProgrammeConfig>,
}

impl TwinServer {
    /// Loads the scene and starts the simulation thread.
    pub fn new(config: Config) -> Result<TwinServer, ServeError> {
        let trust = trust::Trust::load(config.trust.clone())?;
        let model = Model::load(&config.scene)
            .map_err(|errors| ServeError::Scene { path: config.scene.clone(), errors })?;
        if let Some(registry::ProgrammeConfig { complex_id: Some(flag), .. }) = &config.programme
            && let Some(block) = &model.programme
            && block.complex_id != *flag
        {
            return Err(registry::RegistryError::IdMismatch {
                flag: flag.clone(),
                scene: block.complex_id.clone(),
                path: config.scene.display().to_string(),
            }
            .into());
        }
        let name = scenes::name_of(&config.scenes_dir, &config.scene);
        let scene = Arc::new(LiveScene::new(name, config.scene.clone(), model, config.seed));
        tracing::info!(
            scene = %scene.name,
            path = %config.scene.display(),
            stations = scene.model.stations.len(),
            seed = scene.default_seed,
            "scene loaded"
        );
        let (sim, ingest) = match config.ingest.clone() {
            None => {
                let start = match config.store.clone() {
                    Some(store) => sim::Start::Store(Box::new(store::recover(store, &scene)?)),
                    None => sim::Start::Fresh,
                };
                (
                    SimHandle::spawn_with(scene, config.speed, config.start_paused, start)
                        .map_err(ServeError::Thread)?,
                    None,
                )
            }
            Some(ingest_config) => {
                let model = Arc::clone(&scene.model);
                let prepared = ingest::prepare(ingest_config, config.store.as_ref(), &scene, |seed| {
                    twin_core::Sim::new(model, seed)
                })?;
                let resumed =
                    sim::Resumed { sim: prepared.sim, seed: prepared.seed, telemetry: prepared.telemetry };
                let handle = SimHandle::spawn_with(
                    scene,
                    config.speed,
                    config.start_paused,
                    sim::Start::Telemetry(Box::new(resumed)),
                )
                .map_err(ServeError::Thread)?;
                (handle, Some(prepared.rest))
            }
        };
        let sim = Arc::new(sim);
        let ingest = match ingest {
            Some(rest) => Some(rest.start(Arc::clone(&sim))?),
            None => None,
        };
        Ok(TwinServer {
            twin: Twin {
                sim,
                ingest,
                scenes_dir: config.scenes_dir,
                streams: Arc::new(Semaphore::new(config.limits.max_streams)),
                limits: config.limits,
                shutdown: CancellationToken::new(),
                shutdown_grace: config.shutdown_grace,
                experiments: Arc::default(),
                forecasts: Arc::default(),
                audit: trust.audit.clone(),
                programme: None,
            },
            trust,
            periodic_forecast: config.forecast,
            programme: config.programme,
        })
    }

    /// Where Prometheus `/metrics` is served, when configured.
    pub fn metrics_addr(&self) -> Option<std::net::SocketAddr> {
        self.trust.metrics_addr()
    }

    /// The latest published snapshot, as a watch receiver.
    pub fn snapshots(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.twin.sim.snapshots()
    }

    /// The live ingest's counters (None without `--ingest` / `--mqtt`): what
    /// GetIngestStatus reports, readable in-process without a call (the ingest bench
    /// polls `committed` every 200 µs).
    pub fn ingest_status(&self) -> Option<Arc<ingest::status::Status>> {
        self.twin.ingest.as_ref().map(|i| Arc::clone(&i.status))
    }

    /// A handle that applies commands (observations) to the live run while it serves.
    pub fn injector(&self) -> Injector {
        Injector(Arc::clone(&self.twin.sim))
    }

    /// A handle that reads the command log of the live run while the server serves.
    pub fn command_log_reader(&self) -> CommandLogReader {
        CommandLogReader(Arc::clone(&self.twin.sim))
    }

    /// Serves on `listener` until `shutdown` completes; then reports NOT_SERVING, ends
    /// every state stream, waits up to the grace period for calls to finish, and stops
    /// the simulation.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), ServeError> {
        let mut twin = self.twin;
        let trust = self.trust;
        if let Ok(addr) = listener.local_addr() {
            trust::check_bind(&trust.config, addr)?;
        }
        if let Some(programme) = self.programme {
            let endpoint = registry_endpoint(&programme, &listener, trust.tls.is_some())?;
            let registry =
                registry::Registry::start(programme, endpoint, twin.sim.snapshots(), twin.shutdown.clone())
                    .await?;
            twin.programme = Some(Arc::new(registry));
        }
        let sim = Arc::clone(&twin.sim);
        let token = twin.shutdown.clone();
        if let Some(periodic) = self.periodic_forecast {
            tokio::spawn(forecast::periodic(Arc::clone(&sim), periodic, token.clone()));
        }
        let grace = twin.shutdown_grace;

        let (reporter, health) = tonic_health::server::health_reporter();
        reporter.set_serving::<TwinServiceServer<Twin>>().await;
        let reflection_v1 = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(twin_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1()?;
        // grpcurl before 1.9 and some tools still speak only v1alpha.
        let reflection_v1alpha = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(twin_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1alpha()?;

        if let Ok(addr) = listener.local_addr() {
            tracing::info!(%addr, "serving twin.v1.TwinService");
        }
        let gate = gate::GateLayer::new(gate::GateState::new(
            trust.auth,
            trust.audit,
            trust.metrics.is_some(),
            sim.snapshots(),
        ));
        if let Some(trust::MetricsEndpoint { listener, addr, handle }) = trust.metrics {
            let listener =
                TcpListener::from_std(listener).map_err(|source| TrustError::Metrics { addr, source })?;
            tracing::info!(%addr, "serving Prometheus metrics at /metrics");
            let sources = metrics::Sources {
                snapshots: sim.snapshots(),
                streams: Arc::clone(&twin.streams),
                max_streams: twin.limits.max_streams,
            };
            tokio::spawn(metrics::update(sources, handle.clone(), token.clone()));
            tokio::spawn(metrics::serve(listener, handle, token.clone()));
        }
        if let Some(ingest) = &twin.ingest
            && let Some(mqtt) = ingest.config.mqtt.clone()
        {
            ingest::mqtt::start(Arc::clone(ingest), mqtt, token.clone())?;
        }
        let mut builder = tonic::transport::Server::builder();
        if let Some(tls) = trust.tls {
            builder = builder.tls_config(tls)?;
        }
        let (fired_tx, fired_rx) = tokio::sync::oneshot::channel::<()>();
        let signal = async move {
            shutdown.await;
            tracing::info!("shutting down: health NOT_SERVING, ending streams");
            reporter.set_not_serving::<TwinServiceServer<Twin>>().await;
            reporter.set_service_status("", ServingStatus::NotServing).await;
            token.cancel();
            let _ = fired_tx.send(());
        };
        let serve = builder
            .tcp_nodelay(true)
            .http2_keepalive_interval(Some(Duration::from_secs(30)))
            .http2_keepalive_timeout(Some(Duration::from_secs(10)))
            .layer(gate)
            .add_service(health)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(TwinServiceServer::new(twin))
            .serve_with_incoming_shutdown(TcpListenerStream::new(listener), signal);
        tokio::pin!(serve);
        let grace_over = async {
            if fired_rx.await.is_ok() {
                tokio::time::sleep(grace).await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        let result = tokio::select! {
            r = &mut serve => r.map_err(ServeError::from),
            () = grace_over => {
                tracing::warn!(?grace, "calls still open after the grace period; dropping them");
                Ok(())
            }
        };
        let stop = Arc::clone(&sim);
        let _ = tokio::task::spawn_blocking(move || stop.stop()).await;
        tracing::info!("server stopped");
        result
    }
}

/// The gRPC URL this server registers: `--advertise`, else its bound address (refused
/// when that is 0.0.0.0 / [::], which no client can dial).
fn registry_endpoint(
    programme: &registry::ProgrammeConfig,
    listener: &TcpListener,
    tls: bool,
) -> Result<String, ServeError> {
    if let Some(url) = &programme.advertise {
        return Ok(url.clone());
    }
    let addr = listener.local_addr().map_err(registry::RegistryError::BoundAddress)?;
    if addr.ip().is_unspecified() {
        return Err(registry::RegistryError::NoEndpoint { addr }.into());
    }
    Ok(format!("{}://{addr}", if tls { "https" } else { "http" }))
}

/// Applies core commands to the live run from inside the process, through the same path
/// as the control RPCs (at the current simulation time, logged): how in-process telemetry
/// sources and tests feed `Command::Observe`.
#[derive(Clone)]
pub struct Injector(Arc<SimHandle>);

impl Injector {
    /// Applies `command` now; the core's refusal when it is invalid (or the durable log's
    /// when it cannot record it), `Stopped` once the simulation has stopped.
    pub async fn apply(&self, command: Injection) -> Result<Result<Receipt, InjectError>, Stopped> {
        self.0.inject(command).await
    }
}

/// Reads the live run's command log (for replay checks).
#[derive(Clone)]
pub struct CommandLogReader(Arc<SimHandle>);

impl CommandLogReader {
    /// `(sim_time, command)` of every injection of the current run, in order; None once
    /// the simulation has stopped.
    pub async fn read(&self) -> Option<Vec<(Micros, Injection)>> {
        self.0.command_log().await.ok()
    }
}

/// Serves the twin described by `config` on `listener` until `shutdown` completes.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    TwinServer::new(config)?.serve(listener, shutdown).await
}
