//! Forecast: copies of the live state run forward many times on blocking threads, beside
//! the simulation thread, which only hands out the copy (a clone between two events).
//!
//! On demand (the Forecast RPC) the replications use every core and stream progress
//! through a small bounded channel: progress a slow client has no room for is dropped
//! (the next one says more), the result always waits for room. Closing the stream or
//! shutting the server down cancels the work within one replication. At most
//! [`MAX_RUNNING`] forecasts run at once; more are RESOURCE_EXHAUSTED.
//!
//! Periodically (`twin serve --forecast-every`) one forecast runs on one thread every
//! period of wall time, skipped while the simulated clock stands still, and its result
//! goes into the snapshots of the run it forecast (StateFrame.forecast).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::Status;
use twin_core::forecast::{Forecaster, Horizon, Kpi, Request};
use twin_core::time::Micros;
use twin_proto::v1;

use crate::convert;
use crate::sim::{SimHandle, Stopped};

/// On-demand forecasts running at once: each takes every core while it runs.
pub const MAX_RUNNING: usize = 2;
/// Events buffered per forecast stream.
const EVENT_BUFFER: usize = 4;

/// The periodic forecast published in the state stream.
#[derive(Clone, Debug)]
pub struct PeriodicForecast {
    /// Wall time between forecasts.
    pub every: Duration,
    /// Replications of each (on one thread).
    pub replications: u32,
    /// How far ahead; None: to the end of the current shift.
    pub ahead: Option<Micros>,
}

/// Forecasts running on demand.
pub struct Forecasts {
    running: Arc<Semaphore>,
}

impl Default for Forecasts {
    fn default() -> Self {
        Forecasts { running: Arc::new(Semaphore::new(MAX_RUNNING)) }
    }
}

fn stopped(_: Stopped) -> Status {
    Status::unavailable("the server is shutting down")
}

/// Checks `request` against `copy` and prepares the forecast, off the async threads.
async fn prepare(sim: twin_core::Sim, request: Request) -> Result<Forecaster, Status> {
    tokio::task::spawn_blocking(move || Forecaster::new(&sim, &request))
        .await
        .map_err(|e| Status::internal(format!("forecast task failed: {e}")))?
        .map_err(|e| convert::forecast_status(&e))
}

impl Forecasts {
    /// Starts a forecast of the live run now; bad requests are INVALID_ARGUMENT naming
    /// the field.
    pub async fn start(
        &self,
        sim: &SimHandle,
        req: v1::ForecastRequest,
        shutdown: CancellationToken,
    ) -> Result<ReceiverStream<Result<v1::ForecastEvent, Status>>, Status> {
        let request = convert::forecast_request(&req)?;
        let permit = Arc::clone(&self.running).try_acquire_owned().map_err(|_| {
            Status::resource_exhausted(format!(
                "{MAX_RUNNING} forecasts are running already; try again later"
            ))
        })?;
        let copy = sim.fork().await.map_err(stopped)?;
        let forecaster = prepare(copy.sim, request).await?;
        let (from, until, total) = (forecaster.from(), forecaster.until(), forecaster.replications());
        let (tx, rx) = mpsc::channel(EVENT_BUFFER);
        let _ = tx.send(Ok(convert::forecast_progress(0, total, from, until))).await;
        let cancel = Arc::new(AtomicBool::new(false));
        let watcher = {
            let (cancel, tx) = (Arc::clone(&cancel), tx.clone());
            tokio::spawn(async move {
                tokio::select! {
                    _ = shutdown.cancelled() => {}
                    _ = tx.closed() => {}
                }
                cancel.store(true, Ordering::Relaxed);
            })
        };
        tracing::info!(from_us = from, horizon_us = until, replications = total, "forecast started");
        tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let progress = |done, total| {
                // Progress is advisory: dropped when the client has no room for it.
                let _ = tx.try_send(Ok(convert::forecast_progress(done, total, from, until)));
            };
            if let Some(forecast) = twin_lab::run_forecast(&forecaster, 0, progress, &cancel) {
                let wall_s = started.elapsed().as_secs_f64();
                tracing::info!(wall_s, "forecast finished");
                let result = convert::forecast_result(&forecast, wall_s);
                let _ = tx.blocking_send(Ok(v1::ForecastEvent {
                    event: Some(v1::forecast_event::Event::Result(result)),
                }));
            } else {
                tracing::info!("forecast cancelled");
            }
            watcher.abort();
            drop(permit);
        });
        Ok(ReceiverStream::new(rx))
    }
}

/// Runs the periodic forecast until `shutdown`: one forecast per period, skipped while
/// the simulated clock stands still.
pub async fn periodic(sim: Arc<SimHandle>, config: PeriodicForecast, shutdown: CancellationToken) {
    let request = Request {
        horizon: config.ahead.map_or(Horizon::EndOfShift, Horizon::Ahead),
        replications: config.replications,
        // Order risks stay with the Forecast RPC: a frame should stay small.
        kpis: vec![Kpi::PartsFinished, Kpi::Throughput, Kpi::Wip, Kpi::ValueAddedRate],
    };
    let mut last: Option<(u64, Micros)> = None;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(config.every) => {}
        }
        let Ok(copy) = sim.fork().await else { return };
        let at = (copy.run, copy.sim.now());
        if last == Some(at) {
            continue;
        }
        last = Some(at);
        let request = request.clone();
        let done = tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let forecaster = Forecaster::new(&copy.sim, &request)?;
            let forecast = twin_lab::run_forecast(&forecaster, 1, |_, _| {}, &AtomicBool::new(false));
            Ok::<_, twin_core::forecast::ForecastError>(
                forecast.map(|f| convert::forecast_result(&f, started.elapsed().as_secs_f64())),
            )
        })
        .await;
        match done {
            Ok(Ok(Some(result))) => {
                if sim.set_forecast(at.0, result).is_err() {
                    return;
                }
            }
            Ok(Ok(None)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "periodic forecast refused"),
            Err(e) => tracing::warn!(error = %e, "periodic forecast failed"),
        }
    }
}
