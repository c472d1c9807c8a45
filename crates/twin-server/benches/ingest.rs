//! Durable ingest benchmark: S gRPC `Ingest` streams push batches of B cycle observations
//! into an in-process twin on a real port, with the telemetry log on disk (fsync'd group
//! commits, `Durability::Immediate`). Prints messages/s acknowledged (= durably
//! committed), the acknowledgement latency per message (send of its batch -> its
//! IngestAck; p50/p99/max), and how long the simulation took to apply everything.
//!
//! `cargo bench -p twin-server --bench ingest -- [MESSAGES] [STREAMS] [BATCH] [WINDOW] [DIR]`
//! (defaults 500000, 4, 500, 4: each stream keeps up to WINDOW batches unacknowledged;
//! DIR: where the log goes, default a temporary folder under target/).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tonic::transport::Endpoint;
use twin_proto::v1;
use twin_proto::v1::twin_service_client::TwinServiceClient;
use twin_server::{Config, IngestConfig, Speed, TwinServer};

const STATIONS: [&str; 5] = ["saw", "mill", "drill", "assembly", "inspection"];

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * q).round() as usize]
}

fn arg<T: std::str::FromStr>(args: &[String], i: usize, default: T) -> T {
    args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default)
}

fn batch(source: &str, epoch: u64, first: u64, n: u64) -> v1::IngestBatch {
    let now = twin_server::audit::now_unix_ms();
    v1::IngestBatch {
        source_id: source.into(),
        plant_epoch_unix_ms: epoch,
        messages: (first..first + n)
            .map(|seq| v1::IngestMessage {
                sequence: seq,
                timestamp_unix_ms: now,
                station: STATIONS[(seq % 5) as usize].into(),
                observed: Some(v1::ingest_message::Observed::Cycle(v1::IngestCycle {
                    duration_us: 60_000_000 + seq % 1000,
                    product: String::new(),
                })),
            })
            .collect(),
    }
}

/// One stream: returns the latency of every batch (seconds) and the messages acked.
async fn stream(
    mut client: TwinServiceClient<tonic::transport::Channel>,
    source: String,
    epoch: u64,
    messages: u64,
    size: u64,
    window: usize,
) -> (Vec<f64>, u64) {
    let (tx, rx) = mpsc::channel::<v1::IngestBatch>(window);
    let mut acks =
        client.ingest(tokio_stream::wrappers::ReceiverStream::new(rx)).await.expect("Ingest").into_inner();
    let (sent_tx, mut sent_rx) = mpsc::unbounded_channel::<Instant>();
    let permits = Arc::new(tokio::sync::Semaphore::new(window));
    let sender_permits = Arc::clone(&permits);
    let sender = tokio::spawn(async move {
        let mut next = 1;
        while next <= messages {
            let n = size.min(messages - next + 1);
            sender_permits.acquire().await.expect("permits").forget();
            let b = batch(&source, epoch, next, n);
            let _ = sent_tx.send(Instant::now());
            if tx.send(b).await.is_err() {
                break;
            }
            next += n;
        }
    });
    let mut latencies = Vec::new();
    let mut acked = 0;
    while let Ok(Some(ack)) = acks.message().await {
        let sent = sent_rx.recv().await.expect("a sent batch per ack");
        latencies.push(sent.elapsed().as_secs_f64());
        acked = ack.committed_sequence;
        permits.add_permits(1);
        if acked >= messages {
            break;
        }
    }
    sender.abort();
    (latencies, acked)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let messages: u64 = arg(&args, 0, 500_000);
    let streams: u64 = arg(&args, 1, 4);
    let size: u64 = arg(&args, 2, 500);
    let window: usize = arg(&args, 3, 4);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let tmp = tempfile::Builder::new()
        .prefix("ingest-bench-")
        .tempdir_in(args.get(4).map_or_else(|| root.join("target"), PathBuf::from))
        .expect("temp dir");
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(async move {
        let config = Config {
            scenes_dir: root.join("scenes"),
            speed: Speed::Paced(1.0),
            ingest: Some(IngestConfig::new(tmp.path())),
            ..Config::new(root.join("scenes/training-line.ron"))
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = TwinServer::new(config).expect("server");
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let serving = tokio::spawn(server.serve(listener, async move {
            let _ = stop_rx.await;
        }));
        let channel = Endpoint::from_shared(format!("http://{addr}")).expect("url").connect().await.expect("connect");
        let epoch = twin_server::audit::now_unix_ms();
        let per_stream = messages / streams;
        println!(
            "durable ingest: {streams} gRPC streams x {per_stream} messages in batches of {size}, \
             {window} batches in flight per stream, log in {}",
            tmp.path().display()
        );
        let started = Instant::now();
        let tasks: Vec<_> = (0..streams)
            .map(|i| {
                let client = TwinServiceClient::new(channel.clone()).max_decoding_message_size(64 << 20);
                tokio::spawn(stream(client, format!("bench-{i}"), epoch, per_stream, size, window))
            })
            .collect();
        let mut latencies = Vec::new();
        let mut acked = 0;
        for t in tasks {
            let (l, a) = t.await.expect("stream task");
            // Every message of a batch waits as long as its batch.
            for x in l {
                latencies.extend(std::iter::repeat_n(x, size as usize));
            }
            acked += a;
        }
        let elapsed = started.elapsed().as_secs_f64();
        latencies.sort_by(f64::total_cmp);
        println!(
            "acknowledged {acked} messages in {elapsed:.2} s: {:.0} messages/s durably committed",
            acked as f64 / elapsed
        );
        println!(
            "ack latency per message: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            percentile(&latencies, 0.5) * 1e3,
            percentile(&latencies, 0.99) * 1e3,
            latencies.last().copied().unwrap_or(f64::NAN) * 1e3
        );
        let mut client = TwinServiceClient::new(channel.clone());
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            let s = client.get_ingest_status(v1::GetIngestStatusRequest {}).await.expect("status").into_inner();
            if s.applied >= acked || Instant::now() > deadline {
                println!(
                    "applied {} of them to the simulation {:.2} s after the first send ({:.0} messages/s end to end)",
                    s.applied,
                    started.elapsed().as_secs_f64(),
                    s.applied as f64 / started.elapsed().as_secs_f64()
                );
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let size_mb = std::fs::metadata(tmp.path().join(twin_server::ingest::log::FILE_NAME))
            .map_or(0.0, |m| m.len() as f64 / 1e6);
        println!("telemetry log: {size_mb:.1} MB ({:.0} bytes per message)", size_mb * 1e6 / acked as f64);
        let _ = stop_tx.send(());
        let _ = serving.await;
    });
}
