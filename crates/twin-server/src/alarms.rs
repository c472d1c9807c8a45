//! StreamAlarms: one small task per subscriber watches the published snapshots and sends
//! the alarms when they change.
//!
//! Bounded like the state streams (`stream.rs`): the channel holds one event, the task
//! builds an event only once there is room, and then from the *latest* snapshot, diffed
//! against the last one it sent; so a slow subscriber gets coalesced changes, never a
//! queue. A subscriber that accepts nothing for `stall_timeout` is dropped, every stream
//! ends after `max_lifetime`, and alarm streams share the state streams' count cap.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, mpsc, watch};
use tokio::time::{sleep, timeout};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::Status;
use twin_proto::v1;

use crate::sim::Snapshot;
use crate::stream::StreamLimits;

/// Everything a subscriber task needs.
pub struct Subscriber {
    pub snapshots: watch::Receiver<Arc<Snapshot>>,
    pub limits: StreamLimits,
    /// Held for the life of the task: one of the server's stream permits.
    pub permit: OwnedSemaphorePermit,
    /// Cancelled when the server shuts down; the stream then ends cleanly.
    pub shutdown: CancellationToken,
}

/// The event that brings a subscriber who last saw `prev` up to `snap`; None when the
/// alarms did not change. A new generation (or no previous event) gives the full list.
pub fn event(snap: &Snapshot, prev: Option<&Snapshot>) -> Option<v1::AlarmEvent> {
    let make = |full: bool, alarms: Vec<v1::Alarm>| v1::AlarmEvent {
        full,
        alarms,
        raised: snap.alarm_summary.raised,
        generation: snap.generation,
        sim_time_us: snap.clock.sim_time,
    };
    match prev.filter(|p| p.generation == snap.generation) {
        None => Some(make(true, snap.alarms.to_vec())),
        Some(prev) if Arc::ptr_eq(&prev.alarms, &snap.alarms) || prev.alarms == snap.alarms => None,
        Some(prev) => {
            // Both lists ascend by id: an alarm is news when the previous list lacks it
            // or held it in another state.
            let changed = snap
                .alarms
                .iter()
                .filter(|a| match prev.alarms.binary_search_by_key(&a.id, |p| p.id) {
                    Ok(i) => prev.alarms[i] != **a,
                    Err(_) => true,
                })
                .cloned()
                .collect();
            Some(make(false, changed))
        }
    }
}

/// Spawns the subscriber task; the returned stream is the gRPC response body.
pub fn spawn(subscriber: Subscriber) -> ReceiverStream<Result<v1::AlarmEvent, Status>> {
    let (tx, rx) = mpsc::channel(1);
    tokio::spawn(feed(subscriber, tx));
    ReceiverStream::new(rx)
}

async fn feed(subscriber: Subscriber, tx: mpsc::Sender<Result<v1::AlarmEvent, Status>>) {
    let Subscriber { mut snapshots, limits, permit: _permit, shutdown } = subscriber;
    let lifetime = sleep(limits.max_lifetime);
    tokio::pin!(lifetime);
    let mut last: Option<Arc<Snapshot>> = None;
    loop {
        let slot = tokio::select! {
            biased;
            _ = shutdown.cancelled() => return,
            r = timeout(limits.stall_timeout, tx.reserve()) => match r {
                Ok(Ok(slot)) => slot,
                Ok(Err(_)) => return,
                Err(_) => {
                    crate::metrics::viewer_stalled();
                    return;
                }
            },
        };
        let snap = snapshots.borrow_and_update().clone();
        if let Some(event) = event(&snap, last.as_deref()) {
            slot.send(Ok(event));
            last = Some(snap);
        } else {
            drop(slot);
        }
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => return,
            _ = &mut lifetime => return,
            _ = tx.closed() => return,
            r = snapshots.changed() => if r.is_err() { return },
        }
    }
}
