//! The MQTT side of the ingest: a rumqttc client subscribed (QoS 1) to the Sparkplug B
//! birth, data and death topics of one group, with **manual acknowledgements**: a
//! publish is acknowledged (PUBACK) only after the telemetry log committed it, and in the
//! order the publishes arrived (MQTT's ordering rule). The broker keeps the session
//! (clean session off), so what it did not see acknowledged it delivers again after a
//! crash or reconnect; the decoder recognises those redeliveries as duplicates.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use prost::Message;
use rumqttc::tokio_rustls::rustls::{self, ClientConfig, RootCertStore};
use rumqttc::{
    AsyncClient, Event, EventLoop, MqttOptions, Packet, Publish, QoS, TlsConfiguration, Transport,
};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use twin_proto::sparkplug::{MessageKind, Metric, Payload, Topic, vocab};

use super::log::RawRecord;
use super::{Ingest, IngestError, MqttConfig};

/// Largest MQTT packet accepted from the broker, bytes.
pub const MAX_PACKET: usize = 1 << 20;
/// How long a failed connection waits before the next attempt.
const RECONNECT_AFTER: Duration = Duration::from_secs(1);
/// Requests (acks, rebirths, subscriptions) that may wait for the event loop.
const REQUESTS: usize = 65_536;

/// Host and port of an `mqtt://host[:port]` URL (1883 by default) or an
/// `mqtts://host[:port]` one (TLS, 8883 by default).
pub fn parse_url(url: &str) -> Result<(String, u16), IngestError> {
    let err = |message: &str| IngestError::Url { url: url.to_owned(), message: message.to_owned() };
    let expected = "expected mqtt://host[:port] or mqtts://host[:port]";
    let (rest, default_port) =
        if let Some(rest) = url.strip_prefix("mqtt://").or_else(|| url.strip_prefix("tcp://")) {
            (rest, 1883)
        } else if let Some(rest) = url.strip_prefix("mqtts://").or_else(|| url.strip_prefix("ssl://")) {
            (rest, 8883)
        } else {
            return Err(err(expected));
        };
    let rest = rest.trim_end_matches('/');
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) => (h, p.parse::<u16>().map_err(|_| err("the port is not a number 1..65535"))?),
        None => (rest, default_port),
    };
    if host.is_empty() || port == 0 {
        return Err(err(expected));
    }
    Ok((host.to_owned(), port))
}

/// Whether the URL asks for TLS (`mqtts://`, `ssl://`).
pub fn is_tls(url: &str) -> bool {
    url.starts_with("mqtts://") || url.starts_with("ssl://")
}

/// The TLS client settings of `config` (None: plain TCP): the broker's certificate must
/// chain to the certificate authority in `--mqtt-ca` (PEM) and name the URL's host.
/// Checked before the twin starts, so a bad URL or CA file is a clear start-up error.
pub fn tls_config(config: &MqttConfig) -> Result<Option<Arc<ClientConfig>>, IngestError> {
    parse_url(&config.url)?;
    if !is_tls(&config.url) {
        if let Some(ca) = &config.ca {
            return Err(IngestError::Ca {
                path: ca.display().to_string(),
                message: format!("given, but {} is not an mqtts:// URL", config.url),
            });
        }
        return Ok(None);
    }
    let Some(path) = &config.ca else {
        return Err(IngestError::Url {
            url: config.url.clone(),
            message: "mqtts:// needs --mqtt-ca FILE (the PEM certificate authority of the broker)".into(),
        });
    };
    let err = |message: String| IngestError::Ca { path: path.display().to_string(), message };
    let mut roots = RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(path).map_err(|e| err(e.to_string()))?;
    for cert in certs {
        let cert = cert.map_err(|e| err(format!("not a PEM certificate: {e}")))?;
        roots.add(cert).map_err(|e| err(format!("certificate refused: {e}")))?;
    }
    if roots.is_empty() {
        return Err(err("holds no PEM certificate".into()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| err(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Some(Arc::new(tls)))
}

/// Publishes NCMD `Node Control/Rebirth` = true to an edge node.
#[derive(Clone)]
pub struct Rebirth(AsyncClient);

impl Rebirth {
    /// Asks `edge_node` of `group` to rebirth; false when the request could not be queued.
    pub fn request(&self, group: &str, edge_node: &str) -> bool {
        let topic = Topic::node(group, MessageKind::NCmd, edge_node).to_string();
        let payload = Payload {
            timestamp: Some(crate::audit::now_unix_ms()),
            metrics: vec![Metric::boolean(vocab::REBIRTH, true)],
            ..Default::default()
        };
        match self.0.try_publish(topic, QoS::AtLeastOnce, false, payload.encode_to_vec()) {
            Ok(()) => {
                tracing::info!(edge_node, "rebirth requested (NCMD Node Control/Rebirth)");
                true
            }
            Err(e) => {
                tracing::warn!(edge_node, error = %e, "could not request a rebirth");
                false
            }
        }
    }
}

/// The topics the twin subscribes to.
fn subscriptions(group: &str) -> Vec<String> {
    ["NBIRTH", "NDATA", "NDEATH"]
        .iter()
        .map(|k| format!("{}/{group}/{k}/+", twin_proto::sparkplug::topic::NAMESPACE))
        .chain(
            ["DBIRTH", "DDATA", "DDEATH"]
                .iter()
                .map(|k| format!("{}/{group}/{k}/+/+", twin_proto::sparkplug::topic::NAMESPACE)),
        )
        .collect()
}

/// Connects to the broker and runs the client until `shutdown`.
pub fn start(
    ingest: Arc<Ingest>,
    config: MqttConfig,
    shutdown: CancellationToken,
) -> Result<(), IngestError> {
    let (host, port) = parse_url(&config.url)?;
    let tls = tls_config(&config)?;
    let mut options = MqttOptions::new(config.client_id.clone(), host, port);
    if let Some(tls) = tls {
        options.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(tls)));
    }
    options
        .set_manual_acks(true)
        .set_clean_session(false)
        .set_keep_alive(Duration::from_secs(10))
        .set_max_packet_size(MAX_PACKET, MAX_PACKET)
        .set_inflight(100);
    // TCP_NODELAY stays off: measured at 50,000 messages/s on this 2-core machine, one
    // segment per PUBACK (and per PUBLISH from mosquitto) cost more than Nagle's
    // coalescing (ARCHITECTURE.md, "Synchronisation" 7).
    let (client, eventloop) = AsyncClient::new(options, REQUESTS);
    if let Ok(mut r) = ingest.rebirth.lock() {
        *r = Some(Rebirth(client.clone()));
    }
    let (acks_tx, acks_rx) = mpsc::unbounded_channel::<Publish>();
    tokio::spawn(acknowledge(client.clone(), acks_rx));
    tokio::spawn(poll(ingest, client, eventloop, acks_tx, shutdown));
    tracing::info!(url = %config.url, client_id = %config.client_id, "MQTT ingest starting");
    Ok(())
}

/// Sends the PUBACKs, in the order the log released them (which is arrival order).
async fn acknowledge(client: AsyncClient, mut acks: mpsc::UnboundedReceiver<Publish>) {
    while let Some(publish) = acks.recv().await {
        if let Err(e) = client.ack(&publish).await {
            tracing::warn!(error = %e, "PUBACK not sent (the broker will deliver the message again)");
        }
    }
}

async fn poll(
    ingest: Arc<Ingest>,
    client: AsyncClient,
    mut eventloop: EventLoop,
    acks: mpsc::UnboundedSender<Publish>,
    shutdown: CancellationToken,
) {
    let status = Arc::clone(&ingest.status);
    loop {
        let event = tokio::select! {
            () = shutdown.cancelled() => break,
            e = eventloop.poll() => e,
        };
        match event {
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                status.mqtt_connected.store(true, Ordering::Relaxed);
                tracing::info!(session_present = ack.session_present, "MQTT connected");
                for topic in subscriptions(&ingest.config.group) {
                    if let Err(e) = client.try_subscribe(topic.clone(), QoS::AtLeastOnce) {
                        tracing::warn!(topic, error = %e, "subscribe failed");
                    }
                }
            }
            Ok(Event::Incoming(Packet::Publish(publish))) => {
                status.count(&status.received, 1);
                let arrived = std::time::Instant::now();
                let topic = publish.topic.clone();
                let record = RawRecord::Mqtt {
                    topic,
                    payload: publish.payload.to_vec(),
                    received_unix_ms: crate::audit::now_unix_ms(),
                };
                let acks = acks.clone();
                let counted = Arc::clone(&status);
                let reply: super::log::RawReply = Box::new(move |result| match result {
                    Ok(_) => {
                        counted.count(&counted.committed, 1);
                        counted.ack_latency.record(arrived.elapsed(), 1);
                        let _ = acks.send(publish);
                    }
                    Err(e) => tracing::error!(error = %e, "telemetry not committed; not acknowledged"),
                });
                // The pipeline is bounded: when it is full, stop reading from the broker
                // until it drains (the broker holds the rest).
                let Ok(permit) = Arc::clone(&ingest.in_flight).acquire_owned().await else { break };
                if ingest.log.append(record, reply, Some(permit)).is_err() {
                    tracing::error!("telemetry log stopped; MQTT ingest ends");
                    break;
                }
            }
            Ok(_) => {}
            Err(e) => {
                status.mqtt_connected.store(false, Ordering::Relaxed);
                tracing::warn!(error = %e, "MQTT connection lost; reconnecting");
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(RECONNECT_AFTER) => {}
                }
            }
        }
    }
    status.mqtt_connected.store(false, Ordering::Relaxed);
    let _ = client.try_disconnect();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked() {
        assert_eq!(parse_url("mqtt://127.0.0.1:1884").expect("url"), ("127.0.0.1".into(), 1884));
        assert_eq!(parse_url("mqtt://broker").expect("url"), ("broker".into(), 1883));
        assert!(parse_url("http://x:1").is_err());
        assert_eq!(parse_url("mqtts://broker").expect("url"), ("broker".into(), 8883));
        let tls = |url: &str, ca: Option<&str>| {
            tls_config(&MqttConfig { url: url.into(), client_id: "t".into(), ca: ca.map(Into::into) })
        };
        assert!(tls("mqtt://x", None).expect("plain").is_none());
        let no_ca = tls("mqtts://x", None).map(|_| ()).expect_err("needs a CA").to_string();
        assert!(no_ca.contains("--mqtt-ca"), "{no_ca}");
        let missing = tls("mqtts://x", Some("/no/such/ca.pem")).map(|_| ()).expect_err("no file").to_string();
        assert!(missing.starts_with("--mqtt-ca /no/such/ca.pem:"), "{missing}");
        assert!(tls("mqtt://x", Some("ca.pem")).is_err(), "a CA without TLS is a mistake");
        assert!(parse_url("mqtt://x:port").is_err());
        assert_eq!(subscriptions("g")[3], "spBv1.0/g/DBIRTH/+/+");
    }
}
