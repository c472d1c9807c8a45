//! The gRPC `Ingest` stream: validation (a malformed batch is rejected whole, naming the
//! field), duplicate skipping by per-source sequence, and acks that carry the highest
//! durably committed sequence.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot};
use tokio_stream::StreamExt;
use tonic::{Status, Streaming};
use twin_proto::v1;

use super::log::{GrpcMessage, RawRecord};
use super::reading::Reading;
use super::{Ingest, valid_source_id};

/// Most messages in one batch.
pub const MAX_BATCH: usize = 10_000;
/// Acks that may wait for a slow client before the stream stops reading batches.
const ACKS_QUEUE: usize = 64;

/// Highest sequence accepted (queued for commit) and committed per gRPC source.
#[derive(Debug, Default)]
pub struct Sequences(Mutex<BTreeMap<String, (u64, u64)>>);

impl Sequences {
    /// Notes a logged record (restart: rebuild from the log).
    pub fn observe(&self, record: &RawRecord) {
        if let RawRecord::Grpc { source, messages, .. } = record
            && let Some(last) = messages.last()
            && let Ok(mut map) = self.0.lock()
        {
            let e = map.entry(source.clone()).or_default();
            e.0 = e.0.max(last.sequence);
            e.1 = e.1.max(last.sequence);
        }
    }

    /// Notes a source's committed sequence kept in the log's `meta` (survives pruning).
    pub fn restore(&self, source: &str, sequence: u64) {
        if let Ok(mut map) = self.0.lock() {
            let e = map.entry(source.to_owned()).or_default();
            e.0 = e.0.max(sequence);
            e.1 = e.1.max(sequence);
        }
    }

    /// The highest committed sequence of `source`.
    pub fn committed(&self, source: &str) -> u64 {
        self.0.lock().map_or(0, |m| m.get(source).map_or(0, |e| e.1))
    }
}

/// Checks a batch against the scene; the first problem names its field.
pub fn validate(batch: &v1::IngestBatch, stations: &BTreeSet<String>) -> Result<Vec<GrpcMessage>, Status> {
    let bad = |msg: String| Err(Status::invalid_argument(msg));
    if !valid_source_id(&batch.source_id) {
        return bad(format!("source_id: {:?} must be 1..64 characters of [A-Za-z0-9._-]", batch.source_id));
    }
    if batch.plant_epoch_unix_ms == 0 {
        return bad("plant_epoch_unix_ms: must be > 0 (ms since the Unix epoch of plant time 0)".into());
    }
    if batch.messages.is_empty() || batch.messages.len() > MAX_BATCH {
        return bad(format!("messages: {} messages, expected 1..={MAX_BATCH}", batch.messages.len()));
    }
    let mut out = Vec::with_capacity(batch.messages.len());
    let mut previous = 0;
    for (i, m) in batch.messages.iter().enumerate() {
        let field = |f: &str| format!("messages[{i}].{f}");
        if m.sequence == 0 || m.sequence <= previous {
            return bad(format!(
                "{}: {} must be >= 1 and above the previous message's {previous}",
                field("sequence"),
                m.sequence
            ));
        }
        previous = m.sequence;
        if m.timestamp_unix_ms < batch.plant_epoch_unix_ms {
            return bad(format!(
                "{}: {} is before plant_epoch_unix_ms {}",
                field("timestamp_unix_ms"),
                m.timestamp_unix_ms,
                batch.plant_epoch_unix_ms
            ));
        }
        if !stations.contains(&m.station) {
            return bad(format!("{}: unknown station {:?}", field("station"), m.station));
        }
        use v1::ingest_message::Observed;
        let reading = match &m.observed {
            None => return bad(format!("{}: one of state, counts, cycle must be set", field("observed"))),
            Some(Observed::State(s)) => match v1::StationStateKind::try_from(*s) {
                Ok(v1::StationStateKind::Unspecified) | Err(_) => {
                    return bad(format!("{}: {s} is not a station state", field("state")));
                }
                Ok(kind) => Reading::State { down: kind == v1::StationStateKind::Down },
            },
            Some(Observed::Counts(c)) => Reading::Counts { parts_in: c.parts_in, parts_out: c.parts_out },
            Some(Observed::Cycle(c)) => {
                if c.duration_us == 0 {
                    return bad(format!("{}: must be > 0", field("cycle.duration_us")));
                }
                let product = (!c.product.is_empty()).then(|| c.product.clone());
                Reading::Cycle { duration: c.duration_us, product }
            }
        };
        out.push(GrpcMessage {
            sequence: m.sequence,
            timestamp_unix_ms: m.timestamp_unix_ms,
            station: m.station.clone(),
            reading,
        });
    }
    Ok(out)
}

/// Serves one Ingest stream: validates each batch, queues its new messages for commit,
/// and sends the ack when they are on disk. Returns the receiver of acks.
pub fn serve(
    ingest: Arc<Ingest>,
    mut batches: Streaming<v1::IngestBatch>,
) -> mpsc::Receiver<Result<v1::IngestAck, Status>> {
    let (tx, rx) = mpsc::channel(ACKS_QUEUE);
    tokio::spawn(async move {
        // Acks go out in batch order: each batch's commit notice waits its turn.
        let (order_tx, mut order_rx) =
            mpsc::channel::<oneshot::Receiver<Result<v1::IngestAck, Status>>>(ACKS_QUEUE);
        let out = tx.clone();
        let sender = tokio::spawn(async move {
            while let Some(done) = order_rx.recv().await {
                let ack =
                    done.await.unwrap_or_else(|_| Err(Status::unavailable("the telemetry log stopped")));
                let failed = ack.is_err();
                if out.send(ack).await.is_err() || failed {
                    break;
                }
            }
        });
        while let Some(next) = batches.next().await {
            let batch = match next {
                Ok(b) => b,
                Err(status) => {
                    tracing::debug!(%status, "Ingest stream ended by the client");
                    break;
                }
            };
            let arrived = std::time::Instant::now();
            let status = &ingest.status;
            status.count(&status.received, batch.messages.len() as u64);
            let messages = match validate(&batch, &ingest.stations) {
                Ok(m) => m,
                Err(e) => {
                    status.reject(super::status::Reject::Malformed, e.message());
                    // Acks of earlier batches first, then the error ends the call.
                    drop(order_tx);
                    let _ = sender.await;
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            };
            let (done_tx, done_rx) = oneshot::channel();
            if order_tx.send(done_rx).await.is_err() {
                return;
            }
            let source = batch.source_id.clone();
            // Skip what is already accepted (resends after a lost ack or a crash).
            let (fresh, duplicates) = {
                let mut map = ingest.grpc.0.lock().unwrap_or_else(|p| p.into_inner());
                let entry = map.entry(source.clone()).or_default();
                let before = entry.0;
                let fresh: Vec<GrpcMessage> = messages.into_iter().filter(|m| m.sequence > before).collect();
                if let Some(last) = fresh.last() {
                    entry.0 = last.sequence;
                }
                let duplicates = batch.messages.len() - fresh.len();
                (fresh, duplicates)
            };
            status.count(&status.duplicates, duplicates as u64);
            if fresh.is_empty() {
                let committed = ingest.grpc.committed(&source);
                let _ = done_tx.send(Ok(v1::IngestAck {
                    source_id: source,
                    committed_sequence: committed,
                    accepted: 0,
                    duplicates: duplicates as u32,
                }));
                continue;
            }
            let accepted = fresh.len();
            let last = fresh.last().map_or(0, |m| m.sequence);
            let record = RawRecord::Grpc {
                source: source.clone(),
                epoch_unix_ms: batch.plant_epoch_unix_ms,
                messages: fresh,
                received_unix_ms: crate::audit::now_unix_ms(),
            };
            let ingest2 = Arc::clone(&ingest);
            let reply: super::log::RawReply = Box::new(move |result| {
                let ack = match result {
                    Ok(_) => {
                        let s = &ingest2.status;
                        s.count(&s.committed, accepted as u64);
                        s.ack_latency.record(arrived.elapsed(), accepted as u64);
                        let committed = {
                            let mut map = ingest2.grpc.0.lock().unwrap_or_else(|p| p.into_inner());
                            let entry = map.entry(source.clone()).or_default();
                            entry.1 = entry.1.max(last);
                            entry.1
                        };
                        Ok(v1::IngestAck {
                            source_id: source,
                            committed_sequence: committed,
                            accepted: accepted as u32,
                            duplicates: duplicates as u32,
                        })
                    }
                    Err(e) => {
                        // Not on disk: a resend of these sequences must not be skipped.
                        let mut map = ingest2.grpc.0.lock().unwrap_or_else(|p| p.into_inner());
                        let entry = map.entry(source.clone()).or_default();
                        entry.0 = entry.1;
                        Err(Status::unavailable(format!("not committed: {e}")))
                    }
                };
                let _ = done_tx.send(ack);
            });
            let Ok(permit) = Arc::clone(&ingest.in_flight).acquire_owned().await else { break };
            if ingest.log.append(record, reply, Some(permit)).is_err() {
                break;
            }
        }
        drop(order_tx);
        let _ = sender.await;
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;
    use v1::ingest_message::Observed;

    fn msg(seq: u64, station: &str, observed: Option<Observed>) -> v1::IngestMessage {
        v1::IngestMessage { sequence: seq, timestamp_unix_ms: 2_000, station: station.into(), observed }
    }

    #[test]
    fn malformed_batches_name_the_field() {
        let stations: BTreeSet<String> = ["m1".to_string()].into();
        let state = Some(Observed::State(v1::StationStateKind::Down as i32));
        let ok = v1::IngestBatch {
            source_id: "mes-1".into(),
            plant_epoch_unix_ms: 1_000,
            messages: vec![msg(1, "m1", state.clone())],
        };
        let out = validate(&ok, &stations).expect("valid");
        assert_eq!(out[0].reading, Reading::State { down: true });
        let check = |batch: v1::IngestBatch, expect: &str| {
            let err = validate(&batch, &stations).expect_err("invalid");
            assert_eq!(err.code(), tonic::Code::InvalidArgument);
            assert!(err.message().starts_with(expect), "{} !~ {expect}", err.message());
        };
        let mut b = ok.clone();
        b.messages.push(msg(2, "m1", state.clone()));
        b.messages.push(msg(3, "m1", state.clone()));
        b.messages.push(msg(4, "x", state.clone()));
        check(b, "messages[3].station: unknown station \"x\"");
        let mut b = ok.clone();
        b.messages.push(msg(1, "m1", state.clone()));
        check(b, "messages[1].sequence");
        check(v1::IngestBatch { source_id: "a b".into(), ..ok.clone() }, "source_id");
        check(v1::IngestBatch { plant_epoch_unix_ms: 0, ..ok.clone() }, "plant_epoch_unix_ms");
        check(v1::IngestBatch { messages: vec![msg(1, "m1", None)], ..ok.clone() }, "messages[0].observed");
        check(
            v1::IngestBatch { messages: vec![msg(1, "m1", Some(Observed::State(0)))], ..ok.clone() },
            "messages[0].state",
        );
        let cycle = Some(Observed::Cycle(v1::IngestCycle { duration_us: 0, product: String::new() }));
        check(
            v1::IngestBatch { messages: vec![msg(1, "m1", cycle)], ..ok.clone() },
            "messages[0].cycle.duration_us",
        );
        check(v1::IngestBatch { messages: vec![], ..ok }, "messages:");
    }
}
