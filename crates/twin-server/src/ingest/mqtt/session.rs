//! The twin's MQTT connection: connect (TCP or TLS), CONNECT with clean session off,
//! SUBSCRIBE, then read publishes into the telemetry log and write PUBACKs once they are
//! durable; reconnect a second after the connection drops.
//!
//! Reading: every whole packet of a read is parsed at once; the publishes of one read go
//! to the log as one batch (one job, one permit acquisition for all of them), so the cost
//! per message is the parse and the record, not a task wake-up. When the pipeline is
//! full ([`super::super::log::IN_FLIGHT`]) or too many PUBACKs wait to be written, the
//! reader stops reading and the broker holds the rest.
//!
//! Writing: one writer task per connection takes every packet that is ready (the PUBACKs
//! of whole group commits, rebirth publishes, PINGREQ) and writes them with one write
//! per wake-up. PUBACKs are released by the log writer in arrival order and the channel
//! keeps that order, so the broker sees them in the order it sent the publishes.
//!
//! Acks across reconnects: a publish's PUBACK goes only on the connection that delivered
//! it (the log's reply holds that connection's sender). If the connection dropped before
//! the commit, the ack is dropped: packet ids belong to one connection, and the broker
//! delivers every unacknowledged message again on the next one (clean session off), where
//! the Sparkplug decoder recognises it as a duplicate (same node, bdSeq, seq and
//! timestamp) and applies it once.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, WriteHalf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_rustls::rustls::ClientConfig;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_util::sync::CancellationToken;

use super::codec::{self, Incoming, Publish, QoS};
use crate::ingest::Ingest;
use crate::ingest::log::{Permit, RawRecord};

/// Seconds the broker waits for a packet from the twin before it drops the connection;
/// the twin sends PINGREQ when it wrote nothing for half of it.
const KEEP_ALIVE: Duration = Duration::from_secs(10);
/// How long a failed or dropped connection waits before the next attempt.
const RECONNECT_AFTER: Duration = Duration::from_secs(1);
/// TCP connect, TLS handshake and CONNACK must be done within this.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// PUBACKs read but not yet written, per connection: beyond it the reader waits.
const ACKS_PENDING: usize = 65_536;
/// Rebirth publishes of ours not yet acknowledged by the broker (resent on reconnect).
pub const MAX_UNACKED: usize = 256;
/// Most publishes handed to the log as one batch (a read of small publishes holds a
/// few thousand; a batch must stay far below the permits it takes at once).
const MAX_BATCH: usize = 4096;
/// Bytes read at most per read call.
const READ_CHUNK: usize = 64 * 1024;

/// Where and how to connect.
pub struct Settings {
    pub host: String,
    pub port: u16,
    pub tls: Option<Arc<ClientConfig>>,
    pub client_id: String,
    /// Topic filters subscribed with QoS 1.
    pub filters: Vec<String>,
}

/// A publish of ours (NCMD rebirth): topic and payload, sent with QoS 1.
pub type Request = (String, Vec<u8>);

/// What the writer task writes.
enum Out {
    /// PUBACKs for these broker packet ids, in order; the permit bounds pending acks.
    Acks(Vec<u16>, OwnedSemaphorePermit),
    /// An encoded packet.
    Packet(Vec<u8>),
    /// Write DISCONNECT, then stop.
    Disconnect,
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Why a connection ended.
#[derive(Debug, thiserror::Error)]
enum Ended {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Codec(#[from] codec::CodecError),
    #[error("CONNACK {code}: {}", codec::connack_reason(*code))]
    Refused { code: u8 },
    #[error("{0}")]
    Protocol(&'static str),
    #[error("shut down")]
    Shutdown,
}

/// Runs connections to the broker until `shutdown`, taking rebirth publishes from
/// `requests` (they wait in the channel while there is no connection).
pub async fn run(
    ingest: Arc<Ingest>,
    settings: Settings,
    mut requests: mpsc::Receiver<Request>,
    shutdown: CancellationToken,
) {
    let status = Arc::clone(&ingest.status);
    // Our publishes the broker has not acknowledged, by packet id: resent (DUP) on the
    // next connection, as MQTT 3.1.1 asks of a client with clean session off.
    let mut unacked: BTreeMap<u16, Request> = BTreeMap::new();
    let mut next_pkid = 0u16;
    loop {
        let ended = Connection { ingest: &ingest, settings: &settings, shutdown: &shutdown }
            .run(&mut requests, &mut unacked, &mut next_pkid)
            .await;
        status.mqtt_connected.store(false, Ordering::Relaxed);
        match ended {
            Ended::Shutdown => break,
            e => tracing::warn!(error = %e, "MQTT connection lost; reconnecting in 1 s"),
        }
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(RECONNECT_AFTER) => {}
        }
    }
}

/// The next packet id not in use by one of ours (ids are 1..=65535).
fn take_pkid(next: &mut u16, unacked: &BTreeMap<u16, Request>) -> u16 {
    loop {
        *next = next.wrapping_add(1).max(1);
        if !unacked.contains_key(next) {
            return *next;
        }
    }
}

fn encode_request(pkid: u16, (topic, payload): &Request, dup: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(topic.len() + payload.len() + 8);
    codec::publish(
        &mut out,
        &Publish {
            dup,
            qos: QoS::AtLeastOnce,
            retain: false,
            topic: topic.clone(),
            pkid,
            payload: payload.clone(),
        },
    );
    out
}

struct Connection<'a> {
    ingest: &'a Arc<Ingest>,
    settings: &'a Settings,
    shutdown: &'a CancellationToken,
}

impl Connection<'_> {
    async fn open(&self) -> Result<(Box<dyn Io>, BytesMut, bool), Ended> {
        let s = self.settings;
        let tcp = tokio::net::TcpStream::connect((s.host.as_str(), s.port)).await?;
        // Writes are already coalesced (one per wake-up), so Nagle would only delay them.
        tcp.set_nodelay(true)?;
        let mut io: Box<dyn Io> = match &s.tls {
            None => Box::new(tcp),
            Some(tls) => {
                let name = ServerName::try_from(s.host.clone())
                    .map_err(|_| Ended::Protocol("the URL's host is not a valid TLS server name"))?;
                Box::new(tokio_rustls::TlsConnector::from(Arc::clone(tls)).connect(name, tcp).await?)
            }
        };
        let mut out = Vec::new();
        let keep_alive_s = KEEP_ALIVE.as_secs() as u16;
        codec::connect(
            &mut out,
            &codec::Connect { client_id: &s.client_id, keep_alive_s, clean_session: false },
        );
        io.write_all(&out).await?;
        io.flush().await?;
        let mut buf = BytesMut::with_capacity(READ_CHUNK);
        loop {
            match codec::decode(&mut buf)? {
                Some(Incoming::ConnAck { code: 0, session_present }) => {
                    return Ok((io, buf, session_present));
                }
                Some(Incoming::ConnAck { code, .. }) => return Err(Ended::Refused { code }),
                Some(_) => return Err(Ended::Protocol("the broker sent something before CONNACK")),
                None => {
                    if io.read_buf(&mut buf).await? == 0 {
                        return Err(Ended::Protocol("the broker closed the connection before CONNACK"));
                    }
                }
            }
        }
    }

    async fn run(
        &self,
        requests: &mut mpsc::Receiver<Request>,
        unacked: &mut BTreeMap<u16, Request>,
        next_pkid: &mut u16,
    ) -> Ended {
        let opened = tokio::select! {
            () = self.shutdown.cancelled() => return Ended::Shutdown,
            r = tokio::time::timeout(CONNECT_TIMEOUT, self.open()) => r,
        };
        let (io, buf, session_present) = match opened {
            Ok(Ok(x)) => x,
            Ok(Err(e)) => return e,
            Err(_) => return Ended::Protocol("no CONNACK within 10 s"),
        };
        let status = &self.ingest.status;
        status.mqtt_connected.store(true, Ordering::Relaxed);
        tracing::info!(session_present, "MQTT connected");
        let (reader, writer) = tokio::io::split(io);
        let (out, out_rx) = mpsc::unbounded_channel::<Out>();
        let started = Instant::now();
        let last_write = Arc::new(AtomicU64::new(0));
        let mut write_task = tokio::spawn(write(writer, out_rx, Arc::clone(&last_write), started));
        let ended = self
            .session(reader, buf, &out, &mut write_task, requests, unacked, next_pkid, &last_write, started)
            .await;
        if matches!(ended, Ended::Shutdown) {
            let _ = out.send(Out::Disconnect);
            let _ = tokio::time::timeout(Duration::from_millis(500), &mut write_task).await;
        }
        write_task.abort();
        ended
    }

    #[allow(clippy::too_many_arguments)]
    async fn session(
        &self,
        mut reader: tokio::io::ReadHalf<Box<dyn Io>>,
        mut buf: BytesMut,
        out: &mpsc::UnboundedSender<Out>,
        write_task: &mut tokio::task::JoinHandle<std::io::Result<()>>,
        requests: &mut mpsc::Receiver<Request>,
        unacked: &mut BTreeMap<u16, Request>,
        next_pkid: &mut u16,
        last_write: &AtomicU64,
        started: Instant,
    ) -> Ended {
        let filters: Vec<(String, QoS)> =
            self.settings.filters.iter().map(|f| (f.clone(), QoS::AtLeastOnce)).collect();
        let subscribe_pkid = take_pkid(next_pkid, unacked);
        let mut packet = Vec::new();
        codec::subscribe(&mut packet, subscribe_pkid, &filters);
        let _ = out.send(Out::Packet(packet));
        for (pkid, request) in unacked.iter() {
            let _ = out.send(Out::Packet(encode_request(*pkid, request, true)));
        }
        let acks_room = Arc::new(Semaphore::new(ACKS_PENDING));
        let mut ticks = tokio::time::interval(Duration::from_secs(1));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // When the PINGREQ in flight was sent, and when anything was last read.
        let mut ping_sent: Option<Instant> = None;
        let mut last_read = Instant::now();
        loop {
            tokio::select! {
                biased;
                () = self.shutdown.cancelled() => return Ended::Shutdown,
                r = &mut *write_task => {
                    return match r {
                        Ok(Err(e)) => Ended::Io(e),
                        _ => Ended::Protocol("the writer stopped"),
                    };
                }
                r = reader.read_buf(&mut buf) => {
                    match r {
                        Ok(0) => return Ended::Protocol("the broker closed the connection"),
                        Err(e) => return Ended::Io(e),
                        Ok(_) => {}
                    }
                    last_read = Instant::now();
                    if let Err(e) = self.take_packets(&mut buf, out, &acks_room, unacked, subscribe_pkid, &mut ping_sent).await {
                        return e;
                    }
                    if buf.capacity() - buf.len() < READ_CHUNK / 4 {
                        buf.reserve(READ_CHUNK);
                    }
                }
                Some(request) = requests.recv(), if unacked.len() < MAX_UNACKED => {
                    let pkid = take_pkid(next_pkid, unacked);
                    let _ = out.send(Out::Packet(encode_request(pkid, &request, false)));
                    unacked.insert(pkid, request);
                }
                _ = ticks.tick() => {
                    let now = Instant::now();
                    match ping_sent {
                        Some(sent) if now - sent.max(last_read) >= KEEP_ALIVE => {
                            return Ended::Protocol("no PINGRESP within the keep-alive (10 s)");
                        }
                        Some(_) => {}
                        None => {
                            let written = Duration::from_millis(last_write.load(Ordering::Relaxed));
                            if now - started >= written + KEEP_ALIVE / 2 {
                                let mut packet = Vec::new();
                                codec::pingreq(&mut packet);
                                let _ = out.send(Out::Packet(packet));
                                ping_sent = Some(now);
                            }
                        }
                    }
                }
            }
        }
    }

    /// Handles every whole packet in `buf`; the publishes among them go to the log as
    /// one batch.
    async fn take_packets(
        &self,
        buf: &mut BytesMut,
        out: &mpsc::UnboundedSender<Out>,
        acks_room: &Arc<Semaphore>,
        unacked: &mut BTreeMap<u16, Request>,
        subscribe_pkid: u16,
        ping_sent: &mut Option<Instant>,
    ) -> Result<(), Ended> {
        let mut publishes = Vec::new();
        while let Some(packet) = codec::decode(buf)? {
            match packet {
                Incoming::Publish(p) => {
                    publishes.push(p);
                    if publishes.len() == MAX_BATCH {
                        self.log(std::mem::take(&mut publishes), out, acks_room).await?;
                    }
                }
                Incoming::PubAck { pkid } => {
                    unacked.remove(&pkid);
                }
                Incoming::PingResp => *ping_sent = None,
                Incoming::SubAck { pkid, codes } if pkid == subscribe_pkid => {
                    for (filter, code) in self.settings.filters.iter().zip(&codes) {
                        if *code == 0x80 {
                            tracing::error!(filter, "the broker refused the subscription (SUBACK 0x80)");
                        }
                    }
                    if codes.len() != self.settings.filters.len() {
                        tracing::warn!(codes = codes.len(), "SUBACK with a code count unlike the filters'");
                    }
                }
                Incoming::SubAck { pkid, .. } => tracing::warn!(pkid, "SUBACK for no SUBSCRIBE of ours"),
                Incoming::ConnAck { .. } => return Err(Ended::Protocol("a second CONNACK")),
            }
        }
        if publishes.is_empty() {
            return Ok(());
        }
        self.log(publishes, out, acks_room).await
    }

    /// Hands one read's publishes to the log; their PUBACKs are sent after the commit.
    async fn log(
        &self,
        publishes: Vec<Publish>,
        out: &mpsc::UnboundedSender<Out>,
        acks_room: &Arc<Semaphore>,
    ) -> Result<(), Ended> {
        let n = publishes.len();
        let status = Arc::clone(&self.ingest.status);
        status.count(&status.received, n as u64);
        let arrived = Instant::now();
        let received_unix_ms = crate::audit::now_unix_ms();
        // The pipeline is bounded: when it (or the acks' queue) is full, stop reading
        // from the broker until it drains (the broker holds the rest).
        let permits = async {
            let pipeline = Arc::clone(&self.ingest.in_flight).acquire_many_owned(n as u32).await.ok()?;
            let acks = Arc::clone(acks_room).acquire_many_owned(n as u32).await.ok()?;
            Some((pipeline, acks))
        };
        let (mut pipeline, acks_permit) = tokio::select! {
            () = self.shutdown.cancelled() => return Err(Ended::Shutdown),
            p = permits => p.ok_or(Ended::Protocol("the ingest pipeline closed"))?,
        };
        let mut pkids = Vec::with_capacity(n);
        let mut records = Vec::with_capacity(n);
        for p in publishes {
            if p.qos == QoS::AtLeastOnce {
                pkids.push(p.pkid);
            }
            let permit: Option<Permit> = pipeline.split(1);
            records.push((RawRecord::Mqtt { topic: p.topic, payload: p.payload, received_unix_ms }, permit));
        }
        let out = out.clone();
        let reply: crate::ingest::log::RawReply = Box::new(move |result| match result {
            Ok(_) => {
                status.count(&status.committed, n as u64);
                status.ack_latency.record(arrived.elapsed(), n as u64);
                if !pkids.is_empty() {
                    // Fails only when the connection is gone: the broker redelivers.
                    let _ = out.send(Out::Acks(pkids, acks_permit));
                }
            }
            Err(e) => tracing::error!(error = %e, messages = n, "telemetry not committed; not acknowledged"),
        });
        self.ingest.log.append_batch(records, reply).map_err(|_| {
            tracing::error!("telemetry log stopped; MQTT ingest ends");
            Ended::Shutdown
        })
    }
}

/// The writer task: every packet that is ready, one write.
async fn write(
    mut writer: WriteHalf<Box<dyn Io>>,
    mut packets: mpsc::UnboundedReceiver<Out>,
    last_write: Arc<AtomicU64>,
    started: Instant,
) -> std::io::Result<()> {
    let mut ready = Vec::new();
    let mut bytes = Vec::with_capacity(64 * 1024);
    // The acks' permits, released once their PUBACKs are written.
    let mut written = Vec::new();
    while packets.recv_many(&mut ready, 4096).await > 0 {
        bytes.clear();
        let mut stop = false;
        for packet in ready.drain(..) {
            match packet {
                Out::Acks(pkids, permit) => {
                    for pkid in pkids {
                        codec::puback(&mut bytes, pkid);
                    }
                    written.push(permit);
                }
                Out::Packet(p) => bytes.extend_from_slice(&p),
                Out::Disconnect => {
                    codec::disconnect(&mut bytes);
                    stop = true;
                    break;
                }
            }
        }
        writer.write_all(&bytes).await?;
        writer.flush().await?;
        written.clear();
        last_write.store(started.elapsed().as_millis() as u64, Ordering::Relaxed);
        if stop {
            let _ = writer.shutdown().await;
            return Ok(());
        }
    }
    Ok(())
}
