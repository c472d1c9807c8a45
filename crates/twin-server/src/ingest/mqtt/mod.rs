//! The MQTT side of the ingest: the twin's own MQTT 3.1.1 subscriber ([`codec`] for the
//! packets, [`session`] for the connection), subscribed (QoS 1) to the Sparkplug B
//! birth, data and death topics of one group. A publish is acknowledged (PUBACK) only
//! after the telemetry log committed it, and in the order the publishes arrived (MQTT's
//! ordering rule). The broker keeps the session (clean session off), so what it did not
//! see acknowledged it delivers again after a crash or reconnect; the decoder recognises
//! those redeliveries as duplicates.
//!
//! Written here rather than taken from rumqttc (which `twin plant`, the bench and the
//! tests still use) because at 50,000 messages/s its event loop wrote and flushed every
//! PUBACK on its own and handed each message through several allocations and channels;
//! here the publishes of one read are one log job and the PUBACKs of one wake-up one
//! write.

pub mod codec;
pub mod session;

use std::sync::Arc;

use prost::Message;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::sync::mpsc;
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};
use tokio_util::sync::CancellationToken;
use twin_proto::sparkplug::{MessageKind, Metric, Payload, Topic, vocab};

use super::{Ingest, IngestError, MqttConfig};

pub use codec::MAX_PACKET;

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
/// chain to the certificate authority in `--mqtt-ca` (PEM) and name the URL's host; with
/// `--mqtt-cert` / `--mqtt-key` the twin shows its own certificate when the broker asks.
/// Checked before the twin starts, so a bad URL, CA, certificate or key file is a clear
/// start-up error.
pub fn tls_config(config: &MqttConfig) -> Result<Option<Arc<ClientConfig>>, IngestError> {
    parse_url(&config.url)?;
    if let (false, Some(c)) = (is_tls(&config.url), &config.client_cert) {
        return Err(IngestError::ClientCert {
            flag: "--mqtt-cert",
            path: c.cert.display().to_string(),
            message: format!("given, but {} is not an mqtts:// URL", config.url),
        });
    }
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
    let client = config.client_cert.as_ref().map(|c| client_cert(c).map(|pair| (c, pair))).transpose()?;
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
        .with_root_certificates(roots);
    let tls = match client {
        None => tls.with_no_client_auth(),
        Some((c, (certs, key))) => {
            tls.with_client_auth_cert(certs, key).map_err(|e| IngestError::ClientCert {
                flag: "--mqtt-key",
                path: c.key.display().to_string(),
                message: format!("does not go with --mqtt-cert {}: {e}", c.cert.display()),
            })?
        }
    };
    Ok(Some(Arc::new(tls)))
}

/// Reads the twin's client certificate chain and private key (PEM).
fn client_cert(
    c: &super::ClientCert,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), IngestError> {
    let cert_err = |message: String| IngestError::ClientCert {
        flag: "--mqtt-cert",
        path: c.cert.display().to_string(),
        message,
    };
    let certs = CertificateDer::pem_file_iter(&c.cert)
        .map_err(|e| cert_err(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| cert_err(format!("not a PEM certificate: {e}")))?;
    if certs.is_empty() {
        return Err(cert_err("holds no PEM certificate".into()));
    }
    let key = PrivateKeyDer::from_pem_file(&c.key).map_err(|e| IngestError::ClientCert {
        flag: "--mqtt-key",
        path: c.key.display().to_string(),
        message: format!("no PEM private key: {e}"),
    })?;
    Ok((certs, key))
}

/// Publishes NCMD `Node Control/Rebirth` = true to an edge node (QoS 1, through the
/// twin's connection; requests made while it is down wait for the next one).
#[derive(Clone)]
pub struct Rebirth(mpsc::Sender<session::Request>);

impl Rebirth {
    /// Asks `edge_node` of `group` to rebirth; false when the request could not be queued.
    pub fn request(&self, group: &str, edge_node: &str) -> bool {
        let topic = Topic::node(group, MessageKind::NCmd, edge_node).to_string();
        let payload = Payload {
            timestamp: Some(crate::audit::now_unix_ms()),
            metrics: vec![Metric::boolean(vocab::REBIRTH, true)],
            ..Default::default()
        };
        match self.0.try_send((topic, payload.encode_to_vec())) {
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
    let (requests_tx, requests) = mpsc::channel(session::MAX_UNACKED);
    if let Ok(mut r) = ingest.rebirth.lock() {
        *r = Some(Rebirth(requests_tx));
    }
    let settings = session::Settings {
        host,
        port,
        tls,
        client_id: config.client_id.clone(),
        filters: subscriptions(&ingest.config.group),
    };
    tokio::spawn(session::run(ingest, settings, requests, shutdown));
    tracing::info!(url = %config.url, client_id = %config.client_id, "MQTT ingest starting");
    Ok(())
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
            tls_config(&MqttConfig {
                url: url.into(),
                client_id: "t".into(),
                ca: ca.map(Into::into),
                client_cert: None,
            })
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

    #[test]
    fn client_certificate_files_are_checked_at_start() {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = |url: &str, cert: &std::path::Path| MqttConfig {
            url: url.into(),
            client_id: "t".into(),
            ca: is_tls(url).then(|| "/no/such/ca.pem".into()),
            client_cert: Some(crate::ingest::ClientCert { cert: cert.into(), key: dir.path().join("k.pem") }),
        };
        let error = |url: &str, cert: &std::path::Path| {
            tls_config(&config(url, cert)).map(|_| ()).expect_err("refused").to_string()
        };
        let plain = error("mqtt://x", "c.pem".as_ref());
        assert!(plain.starts_with("--mqtt-cert c.pem: given, but mqtt://x"), "{plain}");
        let missing = error("mqtts://x", "/no/such/cert.pem".as_ref());
        assert!(missing.starts_with("--mqtt-cert /no/such/cert.pem: "), "{missing}");
        let not_pem = dir.path().join("cert.pem");
        std::fs::write(&not_pem, "not a certificate").expect("write");
        let empty = error("mqtts://x", &not_pem);
        assert!(empty.ends_with("holds no PEM certificate"), "{empty}");
    }
}
