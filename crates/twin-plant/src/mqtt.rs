//! Runs a [`Plant`] against an MQTT broker: one MQTT session per edge node (clean
//! session, Last Will = its NDEATH with the session's bdSeq, QoS 1), plant time paced
//! against the wall, DDATA in batches, rebirth on `Node Control/Rebirth`, and a clean
//! NDEATH on stop.
//!
//! Batches fall on a fixed grid of plant time (`batch`), so what is published does not
//! depend on how fast the machine is; only when it is published does.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use prost::Message as _;
use rumqttc::{AsyncClient, Event, EventLoop, LastWill, MqttOptions, Outgoing, Packet, QoS};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use twin_core::time::Micros;
use twin_proto::sparkplug::{MessageKind, Payload, Topic, vocab};

use crate::plant::{Counts, Message, Output, Plant};

/// How fast plant time runs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Speed {
    /// Plant seconds per wall second.
    Paced(f64),
    /// As fast as the broker takes the messages.
    Max,
}

/// Where the broker is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MqttTarget {
    pub host: String,
    pub port: u16,
}

impl MqttTarget {
    /// Parses `mqtt://HOST:PORT` (or `tcp://`; the port defaults to 1883).
    pub fn parse(url: &str) -> Result<MqttTarget, PlantError> {
        let bad = |why: &str| PlantError::Url(format!("`{url}`: {why} (expected mqtt://HOST:PORT)"));
        let rest = url
            .strip_prefix("mqtt://")
            .or_else(|| url.strip_prefix("tcp://"))
            .ok_or_else(|| bad("unsupported scheme"))?;
        let rest = rest.trim_end_matches('/');
        if rest.is_empty() || rest.contains('/') || rest.contains('@') {
            return Err(bad("expected only a host and a port"));
        }
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => {
                (h, p.parse::<u16>().map_err(|_| bad("invalid port"))?)
            }
            _ => (rest, 1883),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(bad("empty host"));
        }
        Ok(MqttTarget { host: host.to_owned(), port })
    }
}

/// How to run.
#[derive(Clone, Debug)]
pub struct RunOptions {
    pub target: MqttTarget,
    pub speed: Speed,
    /// Plant time between two DDATA batches.
    pub batch: Micros,
    /// Stop after this plant time (NDEATH, disconnect, return); None runs until the
    /// shutdown future completes.
    pub until: Option<Micros>,
    /// MQTT client ids are `{prefix}-{edge node}`.
    pub client_prefix: String,
}

/// Why the plant stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum PlantError {
    #[error("invalid MQTT URL {0}")]
    Url(String),
    #[error("cannot connect edge node `{node}` to the MQTT broker at {host}:{port}: {error}")]
    Connect { node: String, host: String, port: u16, error: String },
    #[error("the MQTT session of edge node `{0}` ended unexpectedly")]
    Session(String),
}

/// What a finished run did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Summary {
    /// Plant time reached.
    pub plant_time: Micros,
    pub counts: Counts,
    pub rebirths: u64,
    pub reconnects: u64,
}

/// What the runner tells an edge node's session task.
enum SessionCmd {
    Connect(Message),
    Publish(Message),
    Disconnect,
}

/// What a session task tells the runner.
#[derive(Debug)]
enum SessionEvent {
    Connected,
    ConnectFailed(usize, String),
    Rebirth(usize),
    Lost(usize, String),
}

/// Waits between a lost session and the attempt to open it again.
const RECONNECT_AFTER: Duration = Duration::from_secs(1);
/// How long the first connection of every edge node may take.
const CONNECT_PATIENCE: Duration = Duration::from_secs(15);
/// Longest wait for the broker to close a connection after our DISCONNECT.
const DISCONNECT_PATIENCE: Duration = Duration::from_secs(10);
/// Longest wait for the sessions to flush and close on stop.
const CLOSE_PATIENCE: Duration = Duration::from_secs(30);

/// Runs `plant` until `options.until` or until `shutdown` completes; either way every
/// online edge node publishes its NDEATH and disconnects before this returns.
pub async fn run(
    mut plant: Plant,
    options: RunOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<Summary, PlantError> {
    let node_ids: Vec<String> = plant.node_ids().into_iter().map(str::to_owned).collect();
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let mut sessions = Vec::new();
    let mut tasks = Vec::new();
    for (node, id) in node_ids.iter().enumerate() {
        let (tx, rx) = mpsc::channel(1024);
        let ctx = SessionCtx {
            node,
            client_id: format!("{}-{id}", options.client_prefix),
            ncmd: Topic::node(plant.group(), MessageKind::NCmd, id).to_string(),
            target: options.target.clone(),
            events: events_tx.clone(),
        };
        tasks.push(tokio::spawn(session(ctx, rx)));
        sessions.push(tx);
    }
    drop(events_tx);

    dispatch(&sessions, plant.start()).await?;
    // Every edge node must reach the broker once, or the run fails with the reason.
    let mut connected = 0;
    let deadline = Instant::now() + CONNECT_PATIENCE;
    while connected < node_ids.len() {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(SessionEvent::Connected)) => connected += 1,
            Ok(Some(SessionEvent::ConnectFailed(node, error) | SessionEvent::Lost(node, error))) => {
                return Err(connect_error(&node_ids[node], &options.target, error));
            }
            Ok(Some(SessionEvent::Rebirth(node))) => dispatch(&sessions, plant.rebirth(node)).await?,
            Ok(None) => return Err(PlantError::Session(node_ids[0].clone())),
            Err(_) => {
                return Err(connect_error(&node_ids[connected], &options.target, "timed out".into()));
            }
        }
    }
    tracing::info!(nodes = node_ids.len(), group = plant.group(), "edge nodes online");

    let start = Instant::now();
    let mut shutdown = std::pin::pin!(shutdown);
    let mut reconnects: Vec<(Instant, usize)> = Vec::new();
    let (mut rebirths, mut reconnected) = (0, 0);
    let batch = options.batch.max(1);
    let mut k: u64 = 0;
    loop {
        k += 1;
        let mut to = k.saturating_mul(batch);
        if let Some(until) = options.until {
            to = to.min(until);
        }
        let due = match options.speed {
            Speed::Paced(s) => Some(start + Duration::from_secs_f64(to as f64 / 1e6 / s)),
            Speed::Max => None,
        };
        // Wait for the batch's wall time, answering session events meanwhile.
        let stop = loop {
            let event = match due {
                Some(due) => tokio::select! {
                    biased;
                    () = &mut shutdown => break true,
                    e = events.recv() => e,
                    () = tokio::time::sleep_until(due) => break false,
                },
                None => tokio::select! {
                    biased;
                    () = &mut shutdown => break true,
                    e = events.recv() => e,
                    () = std::future::ready(()) => break false,
                },
            };
            match event {
                Some(SessionEvent::Rebirth(node)) => {
                    rebirths += 1;
                    tracing::info!(node = %node_ids[node], "rebirth requested");
                    dispatch(&sessions, plant.rebirth(node)).await?;
                }
                Some(SessionEvent::Lost(node, error) | SessionEvent::ConnectFailed(node, error)) => {
                    tracing::warn!(node = %node_ids[node], %error, "MQTT session lost; reconnecting");
                    plant.session_lost(node);
                    reconnects.push((Instant::now() + RECONNECT_AFTER, node));
                }
                Some(SessionEvent::Connected) => {}
                None => return Err(PlantError::Session(node_ids[0].clone())),
            }
        };
        if stop {
            break;
        }
        let now = Instant::now();
        for (_, node) in reconnects.extract_if(.., |(at, _)| *at <= now) {
            reconnected += 1;
            dispatch(&sessions, plant.reconnect(node)).await?;
        }
        dispatch(&sessions, plant.advance(to)).await?;
        if options.until.is_some_and(|u| to >= u) {
            break;
        }
    }

    dispatch(&sessions, plant.stop()).await?;
    drop(sessions);
    let closing = async {
        for task in tasks {
            let _ = task.await;
        }
    };
    if tokio::time::timeout(CLOSE_PATIENCE, closing).await.is_err() {
        tracing::warn!("MQTT sessions did not close in time");
    }
    Ok(Summary { plant_time: plant.now(), counts: plant.counts(), rebirths, reconnects: reconnected })
}

fn connect_error(node: &str, target: &MqttTarget, error: String) -> PlantError {
    PlantError::Connect { node: node.to_owned(), host: target.host.clone(), port: target.port, error }
}

/// Hands each output to its edge node's session task, in order.
async fn dispatch(sessions: &[mpsc::Sender<SessionCmd>], outputs: Vec<Output>) -> Result<(), PlantError> {
    for output in outputs {
        let (node, cmd) = match output {
            Output::Connect { node, will } => (node, SessionCmd::Connect(will)),
            Output::Publish { node, message } => (node, SessionCmd::Publish(message)),
            Output::Disconnect { node } => (node, SessionCmd::Disconnect),
        };
        if sessions[node].send(cmd).await.is_err() {
            return Err(PlantError::Session(format!("#{node}")));
        }
    }
    Ok(())
}

struct SessionCtx {
    node: usize,
    client_id: String,
    ncmd: String,
    target: MqttTarget,
    events: mpsc::UnboundedSender<SessionEvent>,
}

/// One edge node's MQTT sessions, one after the other: each `Connect` opens a new one
/// with the given Last Will; publishes go to the open one (and are dropped while none is
/// open, as a dead gateway's data would be).
async fn session(ctx: SessionCtx, mut commands: mpsc::Receiver<SessionCmd>) {
    let mut open: Option<(AsyncClient, Arc<AtomicBool>, JoinHandle<()>)> = None;
    while let Some(cmd) = commands.recv().await {
        match cmd {
            SessionCmd::Connect(will) => {
                if let Some((client, closing, poller)) = open.take() {
                    close(client, closing, poller).await;
                }
                open = connect(&ctx, &will).await;
            }
            SessionCmd::Publish(message) => {
                if let Some((client, _, _)) = &open {
                    let topic = message.topic.to_string();
                    // An error means the session is gone; the poller reports it.
                    let _ = client.publish(topic, QoS::AtLeastOnce, false, message.encode()).await;
                }
            }
            SessionCmd::Disconnect => {
                if let Some((client, closing, poller)) = open.take() {
                    close(client, closing, poller).await;
                }
            }
        }
    }
    if let Some((client, closing, poller)) = open.take() {
        close(client, closing, poller).await;
    }
}

/// Sends DISCONNECT after everything queued and waits for the poller to write it.
async fn close(client: AsyncClient, closing: Arc<AtomicBool>, poller: JoinHandle<()>) {
    closing.store(true, Ordering::SeqCst);
    if client.disconnect().await.is_err() {
        poller.abort();
    }
    if tokio::time::timeout(CLOSE_PATIENCE, poller).await.is_err() {
        tracing::warn!("MQTT session did not close in time");
    }
}

/// Opens a session with `will` as Last Will, waits for the CONNACK, subscribes to the
/// node's NCMD topic and starts the poller. Reports the outcome to the runner.
async fn connect(ctx: &SessionCtx, will: &Message) -> Option<(AsyncClient, Arc<AtomicBool>, JoinHandle<()>)> {
    let mut mqtt = MqttOptions::new(&ctx.client_id, &ctx.target.host, ctx.target.port);
    mqtt.set_clean_session(true)
        .set_keep_alive(Duration::from_secs(5))
        .set_max_packet_size(1 << 20, 1 << 20)
        .set_last_will(LastWill::new(will.topic.to_string(), will.encode(), QoS::AtLeastOnce, false));
    let (client, mut eventloop) = AsyncClient::new(mqtt, 256);
    loop {
        match tokio::time::timeout(CONNECT_PATIENCE, eventloop.poll()).await {
            Ok(Ok(Event::Incoming(Packet::ConnAck(_)))) => break,
            Ok(Ok(_)) => continue,
            Ok(Err(e)) => {
                let _ = ctx.events.send(SessionEvent::ConnectFailed(ctx.node, e.to_string()));
                return None;
            }
            Err(_) => {
                let _ = ctx.events.send(SessionEvent::ConnectFailed(ctx.node, "no CONNACK".into()));
                return None;
            }
        }
    }
    // Subscribe before the births are published (they are queued behind this).
    if let Err(e) = client.subscribe(ctx.ncmd.clone(), QoS::AtLeastOnce).await {
        let _ = ctx.events.send(SessionEvent::ConnectFailed(ctx.node, e.to_string()));
        return None;
    }
    let closing = Arc::new(AtomicBool::new(false));
    let poller =
        tokio::spawn(poll(eventloop, ctx.node, ctx.ncmd.clone(), Arc::clone(&closing), ctx.events.clone()));
    let _ = ctx.events.send(SessionEvent::Connected);
    Some((client, closing, poller))
}

/// Drives the session's event loop: NCMD rebirth requests go to the runner; an error
/// (unless we are closing) reports the session lost.
async fn poll(
    mut eventloop: EventLoop,
    node: usize,
    ncmd: String,
    closing: Arc<AtomicBool>,
    events: mpsc::UnboundedSender<SessionEvent>,
) {
    loop {
        match eventloop.poll().await {
            // Keep reading until the broker closes the connection: it has then handled
            // every PUBLISH before the DISCONNECT. Closing first would make it fail to
            // send their PUBACKs, drop the rest and deliver the Last Will instead.
            Ok(Event::Outgoing(Outgoing::Disconnect)) => {
                let drain = async { while eventloop.poll().await.is_ok() {} };
                if tokio::time::timeout(DISCONNECT_PATIENCE, drain).await.is_err() {
                    tracing::warn!("the broker did not close the connection after DISCONNECT");
                }
                return;
            }
            Ok(Event::Incoming(Packet::Publish(p))) if p.topic == ncmd => {
                match Payload::decode(p.payload.as_ref()) {
                    Ok(payload) => {
                        if payload.metrics_named(vocab::REBIRTH).any(|m| m.as_bool() == Some(true)) {
                            let _ = events.send(SessionEvent::Rebirth(node));
                        }
                    }
                    Err(e) => tracing::warn!(topic = %p.topic, error = %e, "undecodable NCMD ignored"),
                }
            }
            Ok(_) => {}
            Err(e) => {
                if !closing.load(Ordering::SeqCst) {
                    let _ = events.send(SessionEvent::Lost(node, e.to_string()));
                }
                return;
            }
        }
    }
}
