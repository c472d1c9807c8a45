//! A Sparkplug B observer for end-to-end tests: an MQTT client (rumqttc, QoS 1) that
//! subscribes to one group's topics on a test broker ([`crate::mosquitto::Mosquitto`])
//! and hands every message over in arrival order, decoded; it can also publish (NCMD).

use std::time::Duration;

use prost::Message as _;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::sync::mpsc;
use twin_proto::sparkplug::{Payload, Topic};

/// One received message.
#[derive(Clone, Debug)]
pub struct Received {
    /// The topic as published.
    pub raw_topic: String,
    pub topic: Topic,
    /// The payload bytes as published.
    pub bytes: Vec<u8>,
    pub payload: Payload,
}

/// A subscriber to `spBv1.0/{group}/#`.
pub struct Observer {
    client: AsyncClient,
    rx: mpsc::UnboundedReceiver<Received>,
    _poller: tokio::task::JoinHandle<()>,
}

impl Observer {
    /// Connects to `addr` (host:port) and subscribes to every topic of `group`; returns
    /// once the broker acknowledged the subscription.
    pub async fn connect(addr: std::net::SocketAddr, group: &str) -> Observer {
        let id = format!("observer-{group}-{}", std::process::id());
        let mut options = MqttOptions::new(id, addr.ip().to_string(), addr.port());
        options.set_keep_alive(Duration::from_secs(30)).set_max_packet_size(1 << 20, 1 << 20);
        let (client, mut eventloop) = AsyncClient::new(options, 64);
        client.subscribe(format!("spBv1.0/{group}/#"), QoS::AtLeastOnce).await.expect("subscribe request");
        loop {
            match tokio::time::timeout(crate::PATIENCE, eventloop.poll()).await {
                Ok(Ok(Event::Incoming(Packet::SubAck(_)))) => break,
                Ok(Ok(_)) => {}
                Ok(Err(e)) => panic!("observer cannot reach the broker at {addr}: {e}"),
                Err(_) => panic!("observer: no SUBACK from {addr}"),
            }
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let poller = tokio::spawn(async move {
            while let Ok(event) = eventloop.poll().await {
                if let Event::Incoming(Packet::Publish(p)) = event {
                    let topic = Topic::parse(&p.topic).unwrap_or_else(|e| panic!("bad topic: {e}"));
                    let payload = Payload::decode(p.payload.as_ref())
                        .unwrap_or_else(|e| panic!("undecodable payload on {}: {e}", p.topic));
                    let received =
                        Received { raw_topic: p.topic.clone(), topic, bytes: p.payload.to_vec(), payload };
                    if tx.send(received).is_err() {
                        return;
                    }
                }
            }
        });
        Observer { client, rx, _poller: poller }
    }

    /// The next message, or a test failure after [`crate::PATIENCE`].
    pub async fn next(&mut self) -> Received {
        crate::within("a Sparkplug message", self.rx.recv()).await.expect("observer still connected")
    }

    /// Messages up to and including the first one that satisfies `last`.
    pub async fn until(&mut self, last: impl Fn(&Received) -> bool) -> Vec<Received> {
        let mut out = Vec::new();
        loop {
            let m = self.next().await;
            let done = last(&m);
            out.push(m);
            if done {
                return out;
            }
        }
    }

    /// Publishes `payload` on `topic` (QoS 1), e.g. an NCMD.
    pub async fn publish(&self, topic: &Topic, payload: &Payload) {
        self.client
            .publish(topic.to_string(), QoS::AtLeastOnce, false, payload.encode_to_vec())
            .await
            .expect("publish request");
    }
}
