//! StreamState: one small task per viewer samples the latest snapshot at the viewer's
//! rate and feeds a channel of capacity one.
//!
//! Bounded by construction: the task builds a frame only once the channel has room, and
//! then from the *latest* snapshot, so a slow viewer gets coalesced frames (deltas
//! against the frame it actually received) and never a queue. A viewer that accepts
//! nothing for `stall_timeout` is dropped; every stream ends after `max_lifetime`; the
//! number of streams is capped. None of this touches the simulation thread, which only
//! replaces one `Arc` in a `watch` channel.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, mpsc, watch};
use tokio::time::{Instant, MissedTickBehavior, interval, sleep, timeout};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::Status;
use twin_proto::v1;

use crate::convert;
use crate::sim::Snapshot;

/// Frame rate when the request asks for the default (0).
pub const DEFAULT_RATE_HZ: u32 = 10;
/// Highest frame rate a viewer may ask for.
pub const MAX_RATE_HZ: u32 = 60;

/// Limits of the state streams, which tonic's request timeout does not cover.
#[derive(Clone, Debug)]
pub struct StreamLimits {
    /// Most concurrent StreamState calls; more are RESOURCE_EXHAUSTED.
    pub max_streams: usize,
    /// A stream ends (OK) after this long; clients resubscribe. Bounds forgotten streams.
    pub max_lifetime: Duration,
    /// A viewer that accepts no frame for this long is dropped.
    pub stall_timeout: Duration,
}

impl Default for StreamLimits {
    fn default() -> Self {
        StreamLimits {
            max_streams: 1024,
            max_lifetime: Duration::from_secs(24 * 3600),
            stall_timeout: Duration::from_secs(30),
        }
    }
}

/// Checks the requested rate; 0 means the default.
pub fn rate(req: &v1::StreamStateRequest) -> Result<u32, Status> {
    match req.rate_hz {
        0 => Ok(DEFAULT_RATE_HZ),
        r @ 1..=MAX_RATE_HZ => Ok(r),
        r => Err(Status::invalid_argument(format!(
            "rate_hz must be 1..{MAX_RATE_HZ} (or 0 for the default), got {r}"
        ))),
    }
}

/// Builds frame `seq` from `snap`, as a delta against `prev` when there is one of the
/// same layout generation.
pub fn frame(snap: &Snapshot, prev: Option<&Snapshot>, seq: u64) -> v1::StateFrame {
    let clock = Some(convert::clock(&snap.clock));
    match prev.filter(|p| p.generation == snap.generation) {
        None => v1::StateFrame {
            seq,
            full: true,
            layout_generation: snap.generation,
            clock,
            stations: snap.stations.clone(),
            vehicles: snap.vehicles.clone(),
            kpis: Some(snap.kpis),
            bottlenecks: Some(snap.bottlenecks.clone()),
            flows: snap.flows.clone(),
            rush_orders: snap.rush_orders.clone(),
            alarms: Some((*snap.alarm_summary).clone()),
            forecast: snap.forecast.as_deref().cloned(),
            // Filled once time travel is built (issue 13).
            timeline: None,
        },
        Some(prev) => v1::StateFrame {
            seq,
            full: false,
            layout_generation: snap.generation,
            clock,
            stations: snap
                .stations
                .iter()
                .zip(&prev.stations)
                .filter(|(now, before)| now != before)
                .map(|(now, _)| *now)
                .collect(),
            // Moving vehicles change position every frame; standing ones appear only when
            // their state, load or battery changes.
            vehicles: changed(&snap.vehicles, &prev.vehicles),
            kpis: (snap.kpis != prev.kpis).then_some(snap.kpis),
            bottlenecks: (snap.bottlenecks != prev.bottlenecks).then(|| snap.bottlenecks.clone()),
            flows: changed(&snap.flows, &prev.flows),
            // A run's rush orders keep their positions: new ones are appended.
            rush_orders: changed(&snap.rush_orders, &prev.rush_orders),
            alarms: (!Arc::ptr_eq(&snap.alarm_summary, &prev.alarm_summary)
                && snap.alarm_summary != prev.alarm_summary)
                .then(|| (*snap.alarm_summary).clone()),
            // A new forecast is a new `Arc`.
            forecast: match (&snap.forecast, &prev.forecast) {
                (Some(now), Some(before)) if Arc::ptr_eq(now, before) => None,
                (now, _) => now.as_deref().cloned(),
            },
            timeline: None,
        },
    }
}

/// Entries of `now` that differ from the entry at the same position in `before` (both
/// lists come from the same layout generation, so positions match), plus any extra ones.
fn changed<T: PartialEq + Clone>(now: &[T], before: &[T]) -> Vec<T> {
    now.iter().enumerate().filter(|(i, x)| before.get(*i) != Some(*x)).map(|(_, x)| x.clone()).collect()
}

/// Everything a viewer task needs.
pub struct Viewer {
    pub snapshots: watch::Receiver<Arc<Snapshot>>,
    pub rate_hz: u32,
    pub full_frames_only: bool,
    pub limits: StreamLimits,
    /// Held for the life of the task: one of `max_streams`.
    pub permit: OwnedSemaphorePermit,
    /// Cancelled when the server shuts down; streams then end cleanly.
    pub shutdown: CancellationToken,
    /// Peer address, for logs.
    pub peer: String,
}

/// Why a viewer's stream ended, for the log.
#[derive(Debug)]
enum End {
    ClientGone,
    Stalled,
    Lifetime,
    Shutdown,
}

/// Spawns the viewer task; the returned stream is the gRPC response body.
pub fn spawn(viewer: Viewer) -> ReceiverStream<Result<v1::StateFrame, Status>> {
    let (tx, rx) = mpsc::channel(1);
    tokio::spawn(async move {
        let peer = viewer.peer.clone();
        let end = feed(viewer, tx).await;
        tracing::debug!(%peer, reason = ?end, "state stream ended");
    });
    ReceiverStream::new(rx)
}

async fn feed(viewer: Viewer, tx: mpsc::Sender<Result<v1::StateFrame, Status>>) -> End {
    let Viewer { snapshots, rate_hz, full_frames_only, limits, permit: _permit, shutdown, peer: _ } = viewer;
    let mut tick = interval(Duration::from_secs_f64(1.0 / f64::from(rate_hz)));
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let lifetime = sleep(limits.max_lifetime);
    tokio::pin!(lifetime);
    let mut last: Option<Arc<Snapshot>> = None;
    let mut seq = 0;
    loop {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => return End::Shutdown,
            _ = &mut lifetime => return End::Lifetime,
            _ = tx.closed() => return End::ClientGone,
            _ = tick.tick() => {}
        }
        let waiting = Instant::now();
        let slot = tokio::select! {
            biased;
            _ = shutdown.cancelled() => return End::Shutdown,
            r = timeout(limits.stall_timeout, tx.reserve()) => match r {
                Ok(Ok(slot)) => slot,
                Ok(Err(_)) => return End::ClientGone,
                Err(_) => {
                    crate::metrics::viewer_stalled();
                    return End::Stalled;
                }
            },
        };
        // Ticks that passed while the viewer's channel was full: frames it never gets.
        let missed = waiting.elapsed().as_secs_f64() * f64::from(rate_hz);
        if missed >= 1.0 {
            crate::metrics::frames_dropped(missed as u64);
        }
        // Sampled only now that there is room: a slow viewer skips to the latest state.
        let snap = snapshots.borrow().clone();
        seq += 1;
        let prev = if full_frames_only { None } else { last.as_deref() };
        slot.send(Ok(frame(&snap, prev, seq)));
        last = Some(snap);
    }
}
