//! Durable ingest benchmark: an in-process twin on a real port with its telemetry log on
//! disk (fsync'd group commits, `Durability::Immediate`), fed the way real sources feed
//! it, three times over (a fresh twin and log each time):
//!
//! 1. gRPC, open loop: STREAMS `Ingest` streams send a batch of BATCH cycle observations
//!    on a fixed schedule, RATE messages/s in all, whatever the acks do (a gateway does
//!    not slow down because the twin is slow). Latency per message: the batch's
//!    scheduled send time -> its IngestAck (so a late send counts against the twin too).
//! 2. gRPC, closed loop at saturation: each stream keeps WINDOW batches of 500 in flight,
//!    as fast as acks come back. Shows the most the log takes; its latency is the
//!    window's queueing (Little's law), not what a paced source sees.
//! 3. MQTT, open loop through Debian's mosquitto (started here on a free port): one
//!    Sparkplug B edge node publishes NBIRTH, DBIRTHs, then DDATA (one Cycle/Duration
//!    each) at RATE messages/s with QoS 1, which the twin receives with manual acks.
//!    Three latencies per message: publish -> the broker's PUBACK (what the publisher
//!    sees; MQTT has no end-to-end ack), publish -> read by the twin (the publisher and
//!    the broker, before the twin does anything), and publish -> durably committed by
//!    the twin (the twin's PUBACK is sent then). The last two read the twin's `received`
//!    and `committed` counters in process every 200 µs; messages are read and commit in
//!    publish order, so message k is read (committed) at the first poll that counts k
//!    (an upper bound, to within a poll).
//!
//!    The publisher is a lean edge node by default: our own MQTT codec on a blocking
//!    socket and a thread of its own, writing what is due every 200 µs in one write. A
//!    plant's gateway runs on its own machine; here it shares the twin's two cores, and
//!    rumqttc in the twin's runtime (`--publisher=rumqttc`, the figures before session 8)
//!    took more CPU and added its own queueing before the bytes left it.
//!
//!    `--broker-baseline` runs this phase without a twin: the same lean edge node, the
//!    same messages and rate, the same mosquitto, with Debian's `mosquitto_sub -q 1` as
//!    the subscriber (it acknowledges each message as it reads it and keeps nothing).
//!    Its publish -> broker PUBACK is the floor the broker sets on this machine.
//!
//!    With `--edge-nodes=N` (N > 1), N edge nodes (`hall-1`..`hall-N`, each its own MQTT
//!    connection, as a complex has one gateway per factory) share RATE, each publishing
//!    its NBIRTH, DBIRTHs and DDATA; the committed -> publish pairing then merges the
//!    nodes' publish times in time order (the broker may interleave the connections a
//!    little differently; the error is the interleaving, well under a millisecond at
//!    this rate). Default 1: the single node of earlier figures.
//!
//! Each phase also prints the twin's own figure (GetIngestStatus.ack_latency: arrival at
//! the twin -> acknowledgement released) and how long the simulation took to apply
//! everything, and the CPU time (user + system, from /proc) the bench process (the twin
//! and the sources, which are the same code before and after a change of the twin) and
//! mosquitto used during the phase.
//!
//! `cargo bench -p twin-server --bench ingest -- [RATE] [SECONDS] [STREAMS] [BATCH] [WINDOW] [DIR] [--edge-nodes=N] [--mqtt-only] [--publisher=lean|rumqttc] [--broker-baseline]`
//! (defaults 50000, 5, 4, 100, 4; DIR: where the logs go, default a temporary folder
//! under target/). Phase 3 is skipped when /usr/sbin/mosquitto (or `$MOSQUITTO`) is
//! missing; `--mqtt-only` skips phases 1 and 2 (so does `--broker-baseline`); `TWIN_ROOT`
//! points at the workspace when the bench runs from elsewhere.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use prost::Message as _;
use rumqttc::{AsyncClient, Event, MqttOptions, Outgoing, Packet, QoS};
use tokio::sync::{Mutex, mpsc};
use tonic::transport::{Channel, Endpoint};
use twin_proto::sparkplug::{MessageKind, Metric, Payload, Topic, vocab};
use twin_proto::v1;
use twin_proto::v1::twin_service_client::TwinServiceClient;
use twin_server::{Config, IngestConfig, MqttConfig, Speed, TwinServer};

const STATIONS: [&str; 5] = ["saw", "mill", "drill", "assembly", "inspection"];
/// Debian's broker; `MOSQUITTO=/path` uses another binary.
const MOSQUITTO: &str = "/usr/sbin/mosquitto";

fn mosquitto_binary() -> PathBuf {
    std::env::var_os("MOSQUITTO").map_or_else(|| PathBuf::from(MOSQUITTO), PathBuf::from)
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * q).round() as usize]
}

/// CPU seconds (user + system) process `pid` (None: this one) used so far, from
/// /proc/PID/stat (fields 14 and 15, in clock ticks of 1/100 s, Linux's USER_HZ); NaN
/// where /proc is not readable.
fn cpu_s(pid: Option<u32>) -> f64 {
    let path = pid.map_or_else(|| "/proc/self/stat".to_owned(), |p| format!("/proc/{p}/stat"));
    let Ok(stat) = std::fs::read_to_string(path) else { return f64::NAN };
    // The command name (field 2) is in parentheses and may hold spaces.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else { return f64::NAN };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(f64::NAN);
    // `rest` starts at field 3, so fields 14 and 15 are at 11 and 12.
    (ticks(11) + ticks(12)) / 100.0
}

/// CPU use since `before` (bench process, mosquitto) over `wall` seconds, printed.
fn print_cpu(before: (f64, f64), broker: Option<u32>, wall: f64) {
    let (process, mosquitto) =
        (cpu_s(None) - before.0, broker.map_or(f64::NAN, |p| cpu_s(Some(p))) - before.1);
    println!(
        "  CPU over {wall:.2} s: bench process (twin + sources) {process:.2} s ({:.0}% of a core){}",
        process / wall * 100.0,
        if mosquitto.is_nan() {
            String::new()
        } else {
            format!(", mosquitto {mosquitto:.2} s ({:.0}%)", mosquitto / wall * 100.0)
        }
    );
}

fn arg<T: std::str::FromStr>(args: &[String], i: usize, default: T) -> T {
    args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default)
}

/// One message: when it was sent (s after the phase's start) and its latency (s).
type Sample = (f64, f64);

/// Prints `what`: count, throughput over `elapsed`, p50/p99/max of the latencies, the
/// same after the first second (start-up: connections, the log's first pages), and when
/// the worst one was sent.
fn print_latency(what: &str, samples: Vec<Sample>, elapsed: f64) {
    let stats = |mut l: Vec<f64>| {
        l.sort_by(f64::total_cmp);
        (percentile(&l, 0.5) * 1e3, percentile(&l, 0.99) * 1e3, l.last().copied().unwrap_or(f64::NAN) * 1e3)
    };
    let worst = samples.iter().copied().max_by(|a, b| a.1.total_cmp(&b.1)).unwrap_or((f64::NAN, f64::NAN));
    let (p50, p99, max) = stats(samples.iter().map(|s| s.1).collect());
    let (q50, q99, qmax) = stats(samples.iter().filter(|s| s.0 >= 1.0).map(|s| s.1).collect());
    println!(
        "  {what}: {} messages in {elapsed:.2} s = {:.0} messages/s; latency p50 {p50:.2} ms, p99 {p99:.2} ms, max {max:.2} ms (the worst sent at {:.2} s); after the first second: p50 {q50:.2} ms, p99 {q99:.2} ms, max {qmax:.2} ms",
        samples.len(),
        samples.len() as f64 / elapsed,
        worst.0,
    );
}

/// A twin serving on a free port with its log in `dir`.
struct Twin {
    channel: Channel,
    stop: tokio::sync::oneshot::Sender<()>,
    serving: tokio::task::JoinHandle<Result<(), twin_server::ServeError>>,
    dir: PathBuf,
    /// The ingest counters, read in-process (no call per poll).
    counters: Arc<twin_server::ingest::status::Status>,
}

impl Twin {
    async fn start(root: &Path, dir: PathBuf, mqtt: Option<String>) -> Twin {
        let mut ingest = IngestConfig::new(&dir);
        ingest.mqtt =
            mqtt.map(|url| MqttConfig { url, client_id: "twin-bench".into(), ca: None, client_cert: None });
        let config = Config {
            scenes_dir: root.join("scenes"),
            speed: Speed::Paced(1.0),
            ingest: Some(ingest),
            ..Config::new(root.join("scenes/training-line.ron"))
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = TwinServer::new(config).expect("server");
        let counters = server.ingest_status().expect("ingest is on");
        let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let serving = tokio::spawn(server.serve(listener, async move {
            let _ = stop_rx.await;
        }));
        let channel =
            Endpoint::from_shared(format!("http://{addr}")).expect("url").connect().await.expect("connect");
        Twin { channel, stop, serving, dir, counters }
    }

    fn client(&self) -> TwinServiceClient<Channel> {
        TwinServiceClient::new(self.channel.clone()).max_decoding_message_size(64 << 20)
    }

    async fn status(&self) -> v1::GetIngestStatusResponse {
        self.client().get_ingest_status(v1::GetIngestStatusRequest {}).await.expect("status").into_inner()
    }

    /// Prints the twin's own latency figure, waits until everything committed is
    /// applied, prints the log size, and stops the twin.
    async fn finish(self, started: Instant, committed: u64) {
        let s = self.status().await;
        if let Some(l) = &s.ack_latency {
            println!(
                "  twin's own figure (arrival -> ack released): {} messages, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
                l.messages, l.p50_ms, l.p99_ms, l.max_ms
            );
        }
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            let s = self.status().await;
            if s.applied >= committed || Instant::now() > deadline {
                println!(
                    "  applied {} to the simulation {:.2} s after the first send",
                    s.applied,
                    started.elapsed().as_secs_f64()
                );
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let folder = self.dir.join(twin_server::ingest::log::DIR_NAME);
        let files: Vec<u64> = std::fs::read_dir(&folder)
            .map(|d| d.filter_map(|e| e.ok()?.metadata().ok()).map(|m| m.len()).collect())
            .unwrap_or_default();
        let mb = files.iter().sum::<u64>() as f64 / 1e6;
        println!("  telemetry log: {mb:.1} MB in {} segment file(s)", files.len());
        let _ = self.stop.send(());
        let _ = self.serving.await;
    }
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

/// How one stream sends: on a schedule (open loop) or as acks allow (closed loop).
#[derive(Clone, Copy)]
enum Pace {
    Every(Duration),
    Window(usize),
}

/// One gRPC stream of `messages` in batches of `size`; returns each batch's latency (s).
async fn grpc_stream(
    mut client: TwinServiceClient<Channel>,
    source: String,
    epoch: u64,
    messages: u64,
    size: u64,
    pace: Pace,
    start: Instant,
) -> Vec<Sample> {
    let (tx, rx) = mpsc::channel::<v1::IngestBatch>(1024);
    let mut acks =
        client.ingest(tokio_stream::wrappers::ReceiverStream::new(rx)).await.expect("Ingest").into_inner();
    let (sent_tx, mut sent_rx) = mpsc::unbounded_channel::<Instant>();
    let window = match pace {
        Pace::Window(w) => w,
        Pace::Every(_) => 1 << 20,
    };
    let permits = Arc::new(tokio::sync::Semaphore::new(window));
    let sender_permits = Arc::clone(&permits);
    let sender = tokio::spawn(async move {
        let (mut next, mut k) = (1, 0u32);
        while next <= messages {
            let n = size.min(messages - next + 1);
            let due = match pace {
                Pace::Every(every) => {
                    let due = start + every * k;
                    tokio::time::sleep_until(due.into()).await;
                    due
                }
                Pace::Window(_) => {
                    sender_permits.acquire().await.expect("permits").forget();
                    Instant::now()
                }
            };
            let _ = sent_tx.send(due);
            if tx.send(batch(&source, epoch, next, n)).await.is_err() {
                break;
            }
            next += n;
            k += 1;
        }
    });
    let mut latencies = Vec::new();
    while let Ok(Some(ack)) = acks.message().await {
        let sent = sent_rx.recv().await.expect("a sent batch per ack");
        let sample = (sent.saturating_duration_since(start).as_secs_f64(), sent.elapsed().as_secs_f64());
        latencies.extend(std::iter::repeat_n(sample, ack.accepted as usize));
        permits.add_permits(1);
        if ack.committed_sequence >= messages {
            break;
        }
    }
    sender.abort();
    latencies
}

async fn grpc_phase(
    twin: &Twin,
    streams: u64,
    per_stream: u64,
    size: u64,
    pace: Pace,
) -> (Vec<Sample>, f64, Instant) {
    let epoch = twin_server::audit::now_unix_ms();
    let start = Instant::now() + Duration::from_millis(20);
    let tasks: Vec<_> = (0..streams)
        .map(|i| {
            // Streams spread over the schedule instead of sending at the same instant.
            let offset = match pace {
                Pace::Every(every) => every * i as u32 / streams as u32,
                Pace::Window(_) => Duration::ZERO,
            };
            tokio::spawn(grpc_stream(
                twin.client(),
                format!("bench-{i}"),
                epoch,
                per_stream,
                size,
                pace,
                start + offset,
            ))
        })
        .collect();
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.expect("stream task"));
    }
    (latencies, start.elapsed().as_secs_f64(), start)
}

/// Starts mosquitto on a free port for QoS 1 at high rates (many messages in flight to
/// the twin, a deep queue); returns the child and its URL.
fn mosquitto(dir: &Path) -> Option<(std::process::Child, String)> {
    let binary = mosquitto_binary();
    if !binary.exists() {
        return None;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
    let conf = dir.join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nuser root\n\
             max_inflight_messages 10000\nmax_queued_messages 1000000\n"
        ),
    )
    .ok()?;
    let child = std::process::Command::new(binary)
        .arg("-c")
        .arg(&conf)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Some((child, format!("mqtt://127.0.0.1:{port}")))
}

/// The Sparkplug messages of one edge node `node`: NBIRTH, a DBIRTH per station, then
/// `n` DDATA with one cycle each.
fn sparkplug(group: &str, node: &str, epoch: u64, n: u64) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut seq = 0;
    let nbirth = Payload {
        timestamp: Some(epoch),
        seq: Some(0),
        metrics: vec![Metric::uint64(vocab::BD_SEQ, 0), Metric::uint64(vocab::PLANT_EPOCH, epoch)],
        ..Default::default()
    };
    out.push((Topic::node(group, MessageKind::NBirth, node).to_string(), nbirth.encode_to_vec()));
    for s in STATIONS {
        seq = vocab::next_seq(seq);
        let p = Payload {
            timestamp: Some(epoch),
            seq: Some(seq),
            metrics: vec![Metric::string(vocab::STATE, vocab::STATE_BUSY)],
            ..Default::default()
        };
        out.push((Topic::device(group, MessageKind::DBirth, node, s).to_string(), p.encode_to_vec()));
    }
    for i in 0..n {
        seq = vocab::next_seq(seq);
        let p = Payload {
            timestamp: Some(epoch + i / 50),
            seq: Some(seq),
            metrics: vec![Metric::uint64(vocab::CYCLE_DURATION, 60_000_000 + i % 1000)],
            ..Default::default()
        };
        let station = STATIONS[(i % 5) as usize];
        out.push((Topic::device(group, MessageKind::DData, node, station).to_string(), p.encode_to_vec()));
    }
    out
}

/// What one edge node publishes, where, and how it is told to start.
struct Node {
    url: String,
    client_id: String,
    /// Messages per second.
    rate: f64,
    /// (topic, payload), in publish order.
    messages: Vec<(String, Vec<u8>)>,
    /// Said once the broker accepted the connection.
    connected: tokio::sync::oneshot::Sender<()>,
    /// The instant of the first publish.
    start: tokio::sync::oneshot::Receiver<Instant>,
}

/// One edge node's publisher: its own MQTT connection; once connected (said on
/// `connected`) it waits for its start instant, then publishes `messages` at `rate`;
/// returns (publish -> broker PUBACK samples as (publish instant, latency),
/// publish instants in order).
async fn edge_node(node: Node) -> (Vec<(Instant, f64)>, Vec<Instant>) {
    let Node { url, client_id, rate, messages, connected, start } = node;
    let (host, port) = twin_server::ingest::mqtt::parse_url(&url).expect("url");
    let mut options = MqttOptions::new(client_id, host, port);
    options
        .set_keep_alive(Duration::from_secs(30))
        .set_inflight(u16::MAX)
        .set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut eventloop) = AsyncClient::new(options, 100_000);
    let total = messages.len();
    let every = Duration::from_secs_f64(1.0 / rate);
    // Publish times in order; the event loop pairs them with packet ids.
    let scheduled: Arc<Mutex<VecDeque<Instant>>> = Arc::default();
    let poller = {
        let scheduled = Arc::clone(&scheduled);
        tokio::spawn(async move {
            let mut connected = Some(connected);
            let mut by_pkid: BTreeMap<u16, Instant> = BTreeMap::new();
            let mut latencies = Vec::with_capacity(total);
            while latencies.len() < total {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        if let Some(c) = connected.take() {
                            let _ = c.send(());
                        }
                    }
                    Ok(Event::Outgoing(Outgoing::Publish(pkid))) => {
                        if let Some(t) = scheduled.lock().await.pop_front() {
                            by_pkid.insert(pkid, t);
                        }
                    }
                    Ok(Event::Incoming(Packet::PubAck(ack))) => {
                        if let Some(t) = by_pkid.remove(&ack.pkid) {
                            latencies.push((t, t.elapsed().as_secs_f64()));
                        }
                    }
                    Ok(_) => {}
                    Err(e) => panic!("bench publisher: {e}"),
                }
            }
            latencies
        })
    };
    let start = start.await.expect("start");
    let mut times = Vec::with_capacity(total);
    for (k, (topic, payload)) in messages.into_iter().enumerate() {
        let due = start + every.mul_f64(k as f64);
        tokio::time::sleep_until(due.into()).await;
        scheduled.lock().await.push_back(due);
        times.push(due);
        client.publish(topic, QoS::AtLeastOnce, false, payload).await.expect("publish");
    }
    (poller.await.expect("poller"), times)
}

/// The lean edge node (the default publisher): our own MQTT codec over a blocking socket,
/// on a thread of its own plus one reading the broker's PUBACKs. Each wake-up writes every
/// message that is due in one `write` (a gateway sending 50,000 messages/s batches its
/// writes too), waking every 200 µs at most. A plant's gateway runs on its own machine;
/// here it shares the twin's two cores, so the lighter it is, the less the figures measure
/// the bench instead of the twin. Same return as [`edge_node`].
fn lean_edge_node(node: Node) -> (Vec<(Instant, f64)>, Vec<Instant>) {
    let Node { url, client_id, rate, messages, connected, start } = node;
    use std::io::{Read, Write};
    use twin_server::ingest::mqtt::codec::{self, Incoming, QoS as Q};
    let (host, port) = twin_server::ingest::mqtt::parse_url(&url).expect("url");
    let mut socket = std::net::TcpStream::connect((host.as_str(), port)).expect("connect to the broker");
    socket.set_nodelay(true).expect("nodelay");
    let mut bytes = Vec::new();
    codec::connect(
        &mut bytes,
        &codec::Connect { client_id: &client_id, keep_alive_s: 60, clean_session: true },
    );
    socket.write_all(&bytes).expect("CONNECT");
    let mut reader = socket.try_clone().expect("socket");
    let total = messages.len();
    // The broker acknowledges one connection's QoS 1 publishes in order: the k-th PUBACK is
    // the k-th publish's (checked by packet id).
    let acks = std::thread::spawn(move || {
        let mut buf = bytes::BytesMut::with_capacity(1 << 16);
        let mut chunk = vec![0u8; 1 << 16];
        let mut acked = Vec::with_capacity(total);
        let mut connected = Some(connected);
        while acked.len() < total {
            let n = reader.read(&mut chunk).expect("read from the broker");
            assert!(n > 0, "the broker closed the bench publisher's connection");
            let now = Instant::now();
            buf.extend_from_slice(&chunk[..n]);
            while let Some(packet) = codec::decode(&mut buf).expect("broker packet") {
                match packet {
                    Incoming::ConnAck { .. } => {
                        if let Some(c) = connected.take() {
                            let _ = c.send(());
                        }
                    }
                    Incoming::PubAck { pkid } => {
                        assert_eq!(usize::from(pkid), acked.len() % 65_535 + 1, "PUBACKs in publish order");
                        acked.push(now);
                    }
                    _ => {}
                }
            }
        }
        acked
    });
    let start = start.blocking_recv().expect("start");
    let every = Duration::from_secs_f64(1.0 / rate);
    let due = |k: usize| start + every.mul_f64(k as f64);
    let mut times = Vec::with_capacity(total);
    let mut messages = messages.into_iter();
    while times.len() < total {
        let now = Instant::now();
        let next = due(times.len());
        if next > now {
            std::thread::sleep((next - now).max(Duration::from_micros(200)));
            continue;
        }
        bytes.clear();
        while times.len() < total && due(times.len()) <= now {
            let (topic, payload) = messages.next().expect("a message");
            let pkid = (times.len() % 65_535 + 1) as u16;
            codec::publish(
                &mut bytes,
                &codec::Publish { dup: false, qos: Q::AtLeastOnce, retain: false, topic, pkid, payload },
            );
            times.push(due(times.len()));
        }
        socket.write_all(&bytes).expect("PUBLISH");
    }
    let acked = acks.join().expect("PUBACK reader");
    let latencies =
        times.iter().zip(&acked).map(|(t, a)| (*t, a.saturating_duration_since(*t).as_secs_f64())).collect();
    let _ = socket.shutdown(std::net::Shutdown::Both);
    (latencies, times)
}

/// The broker without the twin (`--broker-baseline`): the same lean edge node publishes
/// the same messages at the same rate through the same mosquitto to Debian's own C client,
/// `mosquitto_sub -q 1` (which acknowledges each message as soon as it reads it, keeping
/// nothing), and the bench prints publish -> broker PUBACK. What this shows is the floor
/// that the broker and the publisher set on this machine before any twin.
async fn broker_baseline(url: &str, rate: f64, total: u64, broker_pid: Option<u32>) {
    let (host, port) = twin_server::ingest::mqtt::parse_url(url).expect("url");
    let group = twin_proto::sparkplug::vocab::DEFAULT_GROUP;
    let messages = sparkplug(group, "hall", twin_server::audit::now_unix_ms(), total);
    let n = messages.len();
    // It prints one byte per message (`-N -F x`), which a thread here counts; -C ends it
    // after the last message. It has a second to subscribe before publishing starts.
    let mut sub = std::process::Command::new("mosquitto_sub")
        .args(["-h", &host, "-p", &port.to_string(), "-q", "1", "-t", &format!("spBv1.0/{group}/#")])
        .args(["-i", "bench-baseline", "-N", "-F", "x", "-C", &n.to_string()])
        .stdout(std::process::Stdio::piped())
        .spawn();
    let Ok(sub) = sub.as_mut() else {
        println!("  broker baseline: skipped (no mosquitto_sub; scripts/system-deps.sh --mqtt installs it)");
        return;
    };
    let mut out = sub.stdout.take().expect("stdout");
    let count = std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()).unwrap_or(0));
    tokio::time::sleep(Duration::from_secs(1)).await;
    println!("  broker baseline: the lean edge node -> mosquitto -> mosquitto_sub -q 1 (no twin)");
    let cpu = (cpu_s(None), cpu_s(broker_pid));
    let (connected, connected_rx) = tokio::sync::oneshot::channel();
    let (start_tx, start_rx) = tokio::sync::oneshot::channel::<Instant>();
    let url = url.to_owned();
    let node = tokio::task::spawn_blocking(move || {
        let client_id = "bench-edge-node".into();
        lean_edge_node(Node { url, client_id, rate, messages, connected, start: start_rx })
    });
    connected_rx.await.expect("publisher connected");
    let start = Instant::now() + Duration::from_millis(20);
    let _ = start_tx.send(start);
    let (broker, _) = node.await.expect("edge node");
    let elapsed = start.elapsed().as_secs_f64();
    let samples =
        broker.iter().map(|(t, l)| (t.saturating_duration_since(start).as_secs_f64(), *l)).collect();
    print_latency("publish -> broker PUBACK", samples, elapsed);
    let deadline = Instant::now() + Duration::from_secs(10);
    while sub.try_wait().expect("mosquitto_sub").is_none() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = sub.kill();
    let _ = sub.wait();
    println!("  mosquitto_sub received {} of {n}", count.join().expect("counter"));
    print_cpu(cpu, broker_pid, start.elapsed().as_secs_f64());
}

/// Which MQTT client the bench's edge nodes publish with.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Publisher {
    /// [`lean_edge_node`] (the default).
    Lean,
    /// rumqttc in the twin's tokio runtime ([`edge_node`]; `--publisher=rumqttc`).
    Rumqttc,
}

/// What the MQTT phase measured, per message as (publish instant, latency s).
struct MqttSamples {
    /// publish -> the broker's PUBACK to the publisher.
    broker: Vec<Sample>,
    /// publish -> read by the twin (publisher and broker, before the twin does anything).
    received: Vec<Sample>,
    /// publish -> durably committed by the twin (its PUBACK to the broker).
    durable: Vec<Sample>,
    elapsed: f64,
}

/// Publishes each node's `messages` on schedule (`nodes.len()` connections sharing
/// `rate`); returns (publish -> broker PUBACK latencies, publish -> committed latencies,
/// elapsed s).
async fn mqtt_phase(
    twin: &Twin,
    url: &str,
    rate: f64,
    nodes: Vec<Vec<(String, Vec<u8>)>>,
    publisher: Publisher,
) -> MqttSamples {
    let n_nodes = nodes.len();
    let total: usize = nodes.iter().map(Vec::len).sum();
    let node_rate = rate / n_nodes as f64;
    // The start is fixed once every node is connected (below); each node is offset by a
    // fraction of its own interval so that the nodes do not publish at the same instant.
    let mut tasks = Vec::new();
    let mut connected = Vec::new();
    let mut starts = Vec::new();
    for (i, messages) in nodes.into_iter().enumerate() {
        let (tx, rx) = tokio::sync::oneshot::channel();
        connected.push(rx);
        let (start_tx, start_rx) = tokio::sync::oneshot::channel::<Instant>();
        starts.push(start_tx);
        let url = url.to_owned();
        let client_id =
            if n_nodes == 1 { "bench-edge-node".to_owned() } else { format!("bench-edge-node-{}", i + 1) };
        let node = Node { url, client_id, rate: node_rate, messages, connected: tx, start: start_rx };
        tasks.push(match publisher {
            Publisher::Lean => tokio::task::spawn_blocking(move || lean_edge_node(node)),
            Publisher::Rumqttc => tokio::spawn(edge_node(node)),
        });
    }
    for c in connected {
        c.await.expect("publisher connected");
    }
    // Read and committed counts -> the first instant each was seen: the twin's counters
    // read in process every 200 µs on a thread of its own (a GetIngestStatus call per poll
    // would load the twin it measures).
    let counters = Arc::clone(&twin.counters);
    let load = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
    let before = (load(&counters.received), load(&counters.committed));
    let start = Instant::now() + Duration::from_millis(20);
    for (i, s) in starts.into_iter().enumerate() {
        let _ = s.send(start + Duration::from_secs_f64(i as f64 / rate));
    }
    let (received_at, committed_at) = tokio::task::spawn_blocking(move || {
        let mut received_at: Vec<Instant> = Vec::with_capacity(total);
        let mut committed_at: Vec<Instant> = Vec::with_capacity(total);
        // Marks the messages counted since the last poll as seen `now`.
        let catch_up = |seen: &mut Vec<Instant>, count: u64, before: u64, now: Instant| {
            let upto = count.saturating_sub(before).min(total as u64) as usize;
            seen.resize(upto.max(seen.len()), now);
        };
        while committed_at.len() < total && start.elapsed() < Duration::from_secs(600) {
            let (r, c) = (load(&counters.received), load(&counters.committed));
            let now = Instant::now();
            catch_up(&mut received_at, r, before.0, now);
            catch_up(&mut committed_at, c, before.1, now);
            std::thread::sleep(Duration::from_micros(200));
        }
        (received_at, committed_at)
    })
    .await
    .expect("commit poller");
    let elapsed = start.elapsed().as_secs_f64();
    let mut broker = Vec::with_capacity(total);
    let mut times = Vec::with_capacity(total);
    for t in tasks {
        let (b, p) = t.await.expect("edge node");
        broker.extend(b);
        times.extend(p);
    }
    times.sort();
    let offset = |t: &Instant| t.saturating_duration_since(start).as_secs_f64();
    let pair = |at: &[Instant]| -> Vec<Sample> {
        times
            .iter()
            .zip(at)
            .map(|(p, c)| (offset(p), c.saturating_duration_since(*p).as_secs_f64()))
            .collect()
    };
    let (received, durable) = (pair(&received_at), pair(&committed_at));
    let broker = broker.iter().map(|(t, l)| (offset(t), *l)).collect();
    MqttSamples { broker, received, durable, elapsed }
}

#[allow(clippy::too_many_arguments)]
async fn grpc_phases(
    root: &Path,
    dir: &Path,
    rate: f64,
    streams: u64,
    size: u64,
    window: usize,
    total: u64,
    per_stream: u64,
    every: Duration,
) {
    println!(
        "1. gRPC open loop: {streams} streams x {per_stream} messages, a batch of {size} every {:.1} ms each ({rate:.0} messages/s offered)",
        every.as_secs_f64() * 1e3
    );
    let cpu = (cpu_s(None), f64::NAN);
    let twin = Twin::start(root, dir.join("grpc-open"), None).await;
    let (latencies, elapsed, started) =
        grpc_phase(&twin, streams, per_stream, size, Pace::Every(every)).await;
    let n = latencies.len() as u64;
    print_latency("batch scheduled -> IngestAck", latencies, elapsed);
    twin.finish(started, n).await;
    print_cpu(cpu, None, started.elapsed().as_secs_f64());

    let sat = 500_000u64.max(total);
    println!(
        "2. gRPC closed loop (saturation): {streams} streams x {} messages, batches of 500, {window} in flight each",
        sat / streams
    );
    let cpu = (cpu_s(None), f64::NAN);
    let twin = Twin::start(root, dir.join("grpc-closed"), None).await;
    let (latencies, elapsed, started) =
        grpc_phase(&twin, streams, sat / streams, 500, Pace::Window(window)).await;
    let n = latencies.len() as u64;
    print_latency("batch sent -> IngestAck", latencies, elapsed);
    twin.finish(started, n).await;
    print_cpu(cpu, None, started.elapsed().as_secs_f64());
}

fn main() {
    let all: Vec<String> = std::env::args().skip(1).collect();
    let publisher = match all.iter().find_map(|a| a.strip_prefix("--publisher=")) {
        None | Some("lean") => Publisher::Lean,
        Some("rumqttc") => Publisher::Rumqttc,
        Some(other) => panic!("--publisher={other}: lean or rumqttc"),
    };
    let nodes: usize = all
        .iter()
        .find_map(|a| a.strip_prefix("--edge-nodes="))
        .map_or(1, |n| n.parse().expect("--edge-nodes=N: a number"))
        .max(1);
    let baseline = all.iter().any(|a| a == "--broker-baseline");
    let mqtt_only = baseline || all.iter().any(|a| a == "--mqtt-only");
    let args: Vec<String> = all.into_iter().filter(|a| !a.starts_with("--")).collect();
    let rate: f64 = arg(&args, 0, 50_000.0);
    let seconds: f64 = arg(&args, 1, 5.0);
    let streams: u64 = arg(&args, 2, 4);
    let size: u64 = arg(&args, 3, 100);
    let window: usize = arg(&args, 4, 4);
    // TWIN_ROOT: the workspace root (for a copy of the bench run elsewhere).
    let root = std::env::var_os("TWIN_ROOT")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.."), PathBuf::from);
    let tmp = tempfile::Builder::new()
        .prefix("ingest-bench-")
        .tempdir_in(args.get(5).map_or_else(|| root.join("target"), PathBuf::from))
        .expect("temp dir");
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(async move {
        let total = (rate * seconds) as u64;
        let per_stream = total / streams;
        let every = Duration::from_secs_f64(size as f64 * streams as f64 / rate);
        println!("durable ingest, log on {} (fsync'd group commits)", tmp.path().display());
        if !mqtt_only {
            grpc_phases(&root, tmp.path(), rate, streams, size, window, total, per_stream, every).await;
        }

        let Some((mut broker, url)) = mosquitto(tmp.path()) else {
            println!("3. MQTT: skipped (no mosquitto at {}; scripts/system-deps.sh --mqtt installs it)", mosquitto_binary().display());
            return;
        };
        println!(
            "3. MQTT open loop through mosquitto ({url}): {nodes} edge node(s) on their own connections ({publisher:?} publisher), {total} DDATA in all at {rate:.0} messages/s, QoS 1"
        );
        let broker_pid = Some(broker.id());
        if baseline {
            broker_baseline(&url, rate, total, broker_pid).await;
            let _ = broker.kill();
            let _ = broker.wait();
            return;
        }
        let cpu = (cpu_s(None), cpu_s(broker_pid));
        let twin = Twin::start(&root, tmp.path().join("mqtt"), Some(url.clone())).await;
        let deadline = Instant::now() + Duration::from_secs(30);
        while !twin.status().await.mqtt_connected {
            assert!(Instant::now() < deadline, "the twin did not connect to mosquitto");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let epoch = twin_server::audit::now_unix_ms();
        let group = twin_proto::sparkplug::vocab::DEFAULT_GROUP;
        let per_node = total / nodes as u64;
        let messages: Vec<_> = (1..=nodes)
            .map(|i| {
                let node = if nodes == 1 { "hall".to_owned() } else { format!("hall-{i}") };
                sparkplug(group, &node, epoch, per_node)
            })
            .collect();
        let total = messages.iter().map(|m| m.len() as u64 - STATIONS.len() as u64 - 1).sum::<u64>();
        let started = Instant::now();
        let m = mqtt_phase(&twin, &url, rate, messages, publisher).await;
        print_latency("publish -> broker PUBACK", m.broker, m.elapsed);
        print_latency("publish -> read by the twin", m.received, m.elapsed);
        print_latency("publish -> durably committed by the twin (its PUBACK)", m.durable, m.elapsed);
        twin.finish(started, total).await;
        print_cpu(cpu, broker_pid, started.elapsed().as_secs_f64());
        let _ = broker.kill();
        let _ = broker.wait();
    });
}
