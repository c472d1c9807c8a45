//! Prometheus metrics (`twin serve --metrics-addr`): the `metrics` facade with
//! `metrics-exporter-prometheus` rendering, served at `GET /metrics` by a small axum app
//! on its own listener.
//!
//! Where each metric comes from:
//! - the live state (station states and throughput, WIP, clock, speeds, scene) is copied
//!   from the latest snapshot once per [`UPDATE_EVERY`] by [`update`];
//! - pacing lag from the simulation thread ([`pacing_lag`], [`pacing_reset`]);
//! - RPC count and latency by method and status code from [`crate::gate`] ([`rpc`]);
//! - dropped stream frames and stalled viewers from [`crate::stream`];
//! - audit write failures from [`crate::gate`].
//!
//! The recorder is process-global (the `metrics` facade has one): run one twin with
//! metrics per process. Gauges that stop being updated (the stations of a scene that was
//! replaced) disappear after [`GAUGE_IDLE`].
//!
//! Hooks for later features, deliberately not registered until the features exist (a
//! dashboard or alert on a metric nobody sets would lie): `twin_source_stale{source}` and
//! `twin_source_last_message_age_seconds{source}` (plant data ingest), `twin_alarms_active
//! {kind}` and `twin_alarms_raised_total` (deviation alarms), `twin_forecast_*` (forecast
//! runs and their scores). Add them to [`describe`] and `deploy/` together.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use metrics_util::MetricKindMask;
use tokio::sync::{Semaphore, watch};
use tokio_util::sync::CancellationToken;
use twin_proto::v1;

use crate::sim::{Snapshot, Speed};

/// How often the live-state gauges are copied from the latest snapshot.
pub const UPDATE_EVERY: Duration = Duration::from_secs(1);
/// A gauge not set for this long is dropped from the exposition (old scenes' stations).
pub const GAUGE_IDLE: Duration = Duration::from_secs(30);

/// State of each station, one series per state: 1 for the current state, else 0.
pub const STATION_STATE: &str = "twin_station_state";
/// Parts per hour finished by each station over the moving window.
pub const STATION_THROUGHPUT: &str = "twin_station_throughput_per_hour";
/// Parts waiting in each station's input buffer.
pub const STATION_QUEUE: &str = "twin_station_queue_length";
/// Servers processing at each station.
pub const STATION_BUSY_SERVERS: &str = "twin_station_busy_servers";
/// Share of time busy since warm-up.
pub const STATION_UTILIZATION: &str = "twin_station_utilization";
/// Share of the ranking window each station was the bottleneck.
pub const STATION_BOTTLENECK: &str = "twin_station_bottleneck_share";
/// Work in process, parts.
pub const WIP: &str = "twin_wip";
/// Complex throughput, parts per simulated hour.
pub const THROUGHPUT: &str = "twin_throughput_per_hour";
/// Parts finished since the run started (resets with Reset / LoadScene).
pub const FINISHED: &str = "twin_parts_finished_total";
/// Overall equipment effectiveness.
pub const OEE: &str = "twin_oee";
/// Simulated time of the live run, seconds.
pub const SIM_TIME: &str = "twin_sim_time_seconds";
/// Requested speed (simulated seconds per wall second); 0 at "as fast as possible".
pub const SIM_SPEED: &str = "twin_sim_speed";
/// 1 while running as fast as possible.
pub const SIM_MAX_SPEED: &str = "twin_sim_max_speed";
/// Achieved speed over the last second.
pub const SIM_ACHIEVED_SPEED: &str = "twin_sim_achieved_speed";
/// 1 while the clock is paused.
pub const SIM_PAUSED: &str = "twin_sim_paused";
/// Wall seconds the paced simulation is behind the wall clock × speed.
pub const SIM_LAG: &str = "twin_sim_lag_seconds";
/// Times the paced simulation fell too far behind and wrote the debt off.
pub const SIM_PACING_RESETS: &str = "twin_sim_pacing_resets_total";
/// Layout generation of the live run.
pub const LAYOUT_GENERATION: &str = "twin_layout_generation";
/// 1, labelled with the loaded scene's name.
pub const SCENE_INFO: &str = "twin_scene_info";
/// Open state streams.
pub const VIEWERS: &str = "twin_viewers";
/// Frames slow viewers never received (coalesced into a later frame).
pub const FRAMES_DROPPED: &str = "twin_stream_frames_dropped_total";
/// Viewers dropped because they accepted no frame for the stall timeout.
pub const VIEWERS_STALLED: &str = "twin_stream_viewers_stalled_total";
/// RPCs finished, by method and status code.
pub const RPC_REQUESTS: &str = "twin_rpc_requests_total";
/// RPC latency by method and status code, seconds (streams: until the response starts).
pub const RPC_DURATION: &str = "twin_rpc_duration_seconds";
/// Audit entries that could not be written.
pub const AUDIT_WRITE_ERRORS: &str = "twin_audit_write_errors_total";

/// Latency buckets of [`RPC_DURATION`], seconds.
const RPC_BUCKETS: &[f64] = &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

/// Installs the process-wide recorder once and returns its handle.
pub fn install() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let base = || PrometheusBuilder::new().idle_timeout(MetricKindMask::GAUGE, Some(GAUGE_IDLE));
            let builder = base().set_buckets_for_metric(Matcher::Full(RPC_DURATION.into()), RPC_BUCKETS);
            let recorder = builder.unwrap_or_else(|_| base()).build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("another metrics recorder is installed; /metrics will stay empty");
            }
            describe();
            handle
        })
        .clone()
}

/// Help texts, and zero values for the counters so that they exist before their first
/// event (dashboards and alerts see 0, not "no data").
fn describe() {
    describe_gauge!(STATION_STATE, "Station state: 1 for the current state of each station, else 0.");
    describe_gauge!(
        STATION_THROUGHPUT,
        "Parts finished per simulated hour by the station over the last simulated hour."
    );
    describe_gauge!(STATION_QUEUE, "Parts waiting in the station's input buffer.");
    describe_gauge!(STATION_BUSY_SERVERS, "Servers of the station processing a part.");
    describe_gauge!(STATION_UTILIZATION, "Share of time the station was busy since warm-up end.");
    describe_gauge!(
        STATION_BOTTLENECK,
        "Share of the ranking window the station was the bottleneck (active-period method)."
    );
    describe_gauge!(WIP, "Work in process: parts in the complex now.");
    describe_gauge!(THROUGHPUT, "Finished parts per simulated hour over the run.");
    describe_counter!(
        FINISHED,
        "Parts finished since the live run started (resets with Reset and LoadScene)."
    );
    describe_gauge!(OEE, "Overall equipment effectiveness of all stations, 0..1.");
    describe_gauge!(SIM_TIME, "Simulated time of the live run, seconds since scene start.");
    describe_gauge!(
        SIM_SPEED,
        "Requested speed: simulated seconds per wall second (0 while as fast as possible)."
    );
    describe_gauge!(SIM_MAX_SPEED, "1 while the simulation runs as fast as possible.");
    describe_gauge!(
        SIM_ACHIEVED_SPEED,
        "Achieved speed over the last wall second, simulated seconds per wall second."
    );
    describe_gauge!(SIM_PAUSED, "1 while the simulation clock is paused.");
    describe_gauge!(
        SIM_LAG,
        "Wall seconds the paced simulation is behind wall clock x speed (0 when paused or unpaced)."
    );
    describe_counter!(
        SIM_PACING_RESETS,
        "Times the paced simulation fell over 250 ms behind and wrote the debt off."
    );
    describe_gauge!(LAYOUT_GENERATION, "Layout generation of the live run.");
    describe_gauge!(SCENE_INFO, "1, labelled with the name of the loaded scene.");
    describe_gauge!(VIEWERS, "Open state streams (viewers).");
    describe_counter!(
        FRAMES_DROPPED,
        "State frames slow viewers did not receive (their state was coalesced into a later frame)."
    );
    describe_counter!(
        VIEWERS_STALLED,
        "Viewers dropped because they accepted no frame for the stall timeout."
    );
    describe_counter!(RPC_REQUESTS, "RPCs answered, by method and gRPC status code.");
    describe_histogram!(
        RPC_DURATION,
        "RPC latency until the response starts, seconds, by method and gRPC status code."
    );
    describe_counter!(AUDIT_WRITE_ERRORS, "Audit entries that could not be written to the audit log.");
    for name in [SIM_PACING_RESETS, FRAMES_DROPPED, VIEWERS_STALLED, AUDIT_WRITE_ERRORS] {
        counter!(name).increment(0);
    }
}

/// The simulation thread's distance behind its pace target, wall seconds.
pub fn pacing_lag(lag_s: f64) {
    gauge!(SIM_LAG).set(lag_s.max(0.0));
}

/// The simulation thread wrote off a pacing debt.
pub fn pacing_reset() {
    counter!(SIM_PACING_RESETS).increment(1);
}

/// A viewer missed `n` frames while its channel was full.
pub fn frames_dropped(n: u64) {
    counter!(FRAMES_DROPPED).increment(n);
}

/// A viewer was dropped for stalling.
pub fn viewer_stalled() {
    counter!(VIEWERS_STALLED).increment(1);
}

/// An RPC answered with `code` after `elapsed`.
pub fn rpc(method: &'static str, code: &'static str, elapsed: Duration) {
    counter!(RPC_REQUESTS, "method" => method, "code" => code).increment(1);
    histogram!(RPC_DURATION, "method" => method, "code" => code).record(elapsed.as_secs_f64());
}

/// An audit entry could not be written.
pub fn audit_write_error() {
    counter!(AUDIT_WRITE_ERRORS).increment(1);
}

/// Label value of a station state.
fn state_name(state: v1::StationStateKind) -> &'static str {
    match state {
        v1::StationStateKind::Unspecified => "unknown",
        v1::StationStateKind::Busy => "busy",
        v1::StationStateKind::Starved => "starved",
        v1::StationStateKind::Blocked => "blocked",
        v1::StationStateKind::Down => "down",
        v1::StationStateKind::Setup => "setup",
        v1::StationStateKind::OffShift => "off_shift",
        v1::StationStateKind::Idle => "idle",
    }
}

/// Station states exported, one series each per station.
const STATES: [v1::StationStateKind; 7] = [
    v1::StationStateKind::Busy,
    v1::StationStateKind::Starved,
    v1::StationStateKind::Blocked,
    v1::StationStateKind::Down,
    v1::StationStateKind::Setup,
    v1::StationStateKind::OffShift,
    v1::StationStateKind::Idle,
];

/// Copies the live state of `snap` into the gauges.
fn record_snapshot(snap: &Snapshot) {
    let clock = &snap.clock;
    gauge!(SIM_TIME).set(clock.sim_time as f64 / 1e6);
    let (speed, max) = match clock.speed {
        Speed::Paced(s) => (s, 0.0),
        Speed::Max => (0.0, 1.0),
    };
    gauge!(SIM_SPEED).set(speed);
    gauge!(SIM_MAX_SPEED).set(max);
    gauge!(SIM_ACHIEVED_SPEED).set(clock.achieved_speed);
    gauge!(SIM_PAUSED).set(if clock.paused { 1.0 } else { 0.0 });
    if clock.paused || clock.speed == Speed::Max {
        // The simulation thread reports lag only while pacing.
        gauge!(SIM_LAG).set(0.0);
    }
    gauge!(LAYOUT_GENERATION).set(snap.generation as f64);
    gauge!(SCENE_INFO, "scene" => snap.scene.name.clone()).set(1.0);
    gauge!(WIP).set(snap.kpis.wip);
    gauge!(THROUGHPUT).set(snap.kpis.throughput_per_hour);
    gauge!(OEE).set(snap.kpis.oee);
    counter!(FINISHED).absolute(snap.kpis.finished);

    let stations = &snap.layout.stations;
    let mut shares = vec![0.0; stations.len()];
    for s in &snap.bottlenecks.ranking {
        if let Some(share) = shares.get_mut(s.station_index as usize) {
            *share = s.share;
        }
    }
    for (state, station) in snap.stations.iter().zip(stations) {
        let labels = [("factory", station.factory_id.clone()), ("station", station.id.clone())];
        let current = state.state();
        for kind in STATES {
            let mut with_state = labels.to_vec();
            with_state.push(("state", state_name(kind).to_owned()));
            gauge!(STATION_STATE, &with_state).set(if current == kind { 1.0 } else { 0.0 });
        }
        gauge!(STATION_THROUGHPUT, &labels).set(state.throughput_per_hour);
        gauge!(STATION_QUEUE, &labels).set(f64::from(state.queue_length));
        gauge!(STATION_BUSY_SERVERS, &labels).set(f64::from(state.busy_servers));
        gauge!(STATION_UTILIZATION, &labels).set(state.utilization);
        let share = shares.get(state.index as usize).copied().unwrap_or(0.0);
        gauge!(STATION_BOTTLENECK, &labels).set(share);
    }
}

/// What [`update`] reads.
pub(crate) struct Sources {
    pub snapshots: watch::Receiver<Arc<Snapshot>>,
    /// One permit per open state stream is taken from here.
    pub streams: Arc<Semaphore>,
    pub max_streams: usize,
}

/// Copies the live state into the gauges every [`UPDATE_EVERY`] until `shutdown`, and
/// runs the exporter's upkeep (histogram draining) as it goes.
pub(crate) async fn update(sources: Sources, handle: PrometheusHandle, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(UPDATE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let snap = sources.snapshots.borrow().clone();
        record_snapshot(&snap);
        let open = sources.max_streams.saturating_sub(sources.streams.available_permits());
        gauge!(VIEWERS).set(open as f64);
        handle.run_upkeep();
    }
}

/// Serves `GET /metrics` on `listener` until `shutdown`.
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    handle: PrometheusHandle,
    shutdown: CancellationToken,
) {
    use axum::routing::get;
    let app = axum::Router::new()
        .route(
            "/metrics",
            get(move || {
                let handle = handle.clone();
                async move {
                    (
                        [(http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
                        handle.render(),
                    )
                }
            }),
        )
        .route("/", get(|| async { "twin metrics: GET /metrics\n" }));
    let result =
        axum::serve(listener, app).with_graceful_shutdown(async move { shutdown.cancelled().await }).await;
    if let Err(e) = result {
        tracing::error!(error = %e, "metrics endpoint stopped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_has_a_label() {
        let names: Vec<&str> = STATES.iter().map(|s| state_name(*s)).collect();
        assert_eq!(names, ["busy", "starved", "blocked", "down", "setup", "off_shift", "idle"]);
    }
}
