//! The programme's registry of complexes, on NATS request-reply (issue 15).
//!
//! A server started with `--nats URL --complex ID` subscribes to [`ALL_SUBJECT`] and to
//! `twin.complex.info.<ID>` and answers every request there with its [`v1::ComplexInfo`]
//! (wrapped in a one-complex [`v1::ListComplexesResponse`] that also carries its scene's
//! targets), built from the latest snapshot when the request arrives. [`gather`] publishes
//! one request with a private reply inbox and collects every answer within a short
//! window (scatter-gather).
//!
//! Nothing is stored anywhere: the list is who answers now, so a complex disappears the
//! moment its server dies (no key with a TTL to expire, no stale entry), and its figures
//! are as fresh as its latest snapshot (`reported_unix_ms`). Works on any NATS server
//! (core NATS only; no JetStream, no KV, which Debian's nats-server 2.9 cannot create for
//! async-nats 0.51).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prost::Message as _;
use tokio::sync::watch;
use tokio_stream::StreamExt;
use tokio_util::sync::CancellationToken;
use twin_proto::v1;

use crate::sim::Snapshot;

/// Subject every registered complex answers on (scatter-gather).
pub const ALL_SUBJECT: &str = "twin.complex.info";

/// How long [`gather`] waits for answers by default.
pub const DEFAULT_WAIT: Duration = Duration::from_millis(500);

/// The subject one complex answers on alone.
pub fn subject_of(complex_id: &str) -> String {
    format!("{ALL_SUBJECT}.{complex_id}")
}

/// How a server joins the programme (`twin serve --nats URL [--complex ID]`).
#[derive(Clone, Debug)]
pub struct ProgrammeConfig {
    /// NATS server URL, or a comma-separated list of a cluster's nodes.
    pub nats: String,
    /// The complex this server is; None: it only lists the others (ListComplexes).
    pub complex_id: Option<String>,
    /// gRPC URL clients reach this server at; None: `http(s)://<bound address>`.
    pub advertise: Option<String>,
}

/// Why joining the programme failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("--nats `{url}` is not a NATS URL (or comma-separated list): {message}")]
    Url { url: String, message: String },
    #[error("connecting to NATS at {url}: {message}")]
    Connect { url: String, message: String },
    #[error("subscribing to {subject}: {message}")]
    Subscribe { subject: String, message: String },
    #[error("asking NATS for the complexes: {0}")]
    Request(String),
    #[error("--complex `{id}` must be 1..64 characters of [A-Za-z0-9_-] (it is a NATS subject token)")]
    BadId { id: String },
    #[error("--complex `{flag}` differs from the scene's programme.complex_id `{scene}` ({path})")]
    IdMismatch { flag: String, scene: String, path: String },
    #[error("complex `{id}` is already registered on this NATS by the server at {endpoint}")]
    Taken { id: String, endpoint: String },
    #[error("the server is bound to {addr}, which clients cannot connect to: give --advertise URL")]
    NoEndpoint { addr: std::net::SocketAddr },
    #[error("reading the bound address for the registry's endpoint: {0}")]
    BoundAddress(#[source] std::io::Error),
}

/// Parses `url` (comma-separated list allowed) and connects. `retry` keeps trying in the
/// background when no node answers yet (a server that starts before NATS); without it a
/// dead address fails at once (the CLI).
pub async fn connect(url: &str, retry: bool) -> Result<async_nats::Client, RegistryError> {
    let addrs = url
        .split(',')
        .map(|s| s.trim().parse::<async_nats::ServerAddr>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| RegistryError::Url { url: url.into(), message: e.to_string() })?;
    let mut options = async_nats::ConnectOptions::new()
        .name("twin-programme")
        .connection_timeout(Duration::from_secs(5))
        .max_reconnects(None);
    if retry {
        options = options.retry_on_initial_connect();
    }
    options
        .connect(addrs)
        .await
        .map_err(|e| RegistryError::Connect { url: url.into(), message: e.to_string() })
}

/// Checks a complex id: it becomes a NATS subject token.
pub fn check_id(id: &str) -> Result<(), RegistryError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok { Ok(()) } else { Err(RegistryError::BadId { id: id.into() }) }
}

/// One complex's answer as gathered: its info and the targets its scene states.
#[derive(Clone, Debug, PartialEq)]
pub struct Answer {
    /// The complex's identity and headline KPIs.
    pub info: v1::ComplexInfo,
    /// The programme's targets as the complex's scene states them (None: no block).
    pub targets: Option<v1::ProgrammeTargets>,
}

/// What [`gather`] found.
#[derive(Clone, Debug, Default)]
pub struct Gathered {
    /// Every answer, sorted by (complex id, endpoint).
    pub answers: Vec<Answer>,
    /// Answers that could not be decoded (another version, garbage on the subject).
    pub undecodable: usize,
}

impl Gathered {
    /// The programme's targets: `own` when given, else the first answer's (by complex
    /// id) that states some.
    pub fn targets(&self, own: Option<v1::ProgrammeTargets>) -> Option<v1::ProgrammeTargets> {
        own.or_else(|| self.answers.iter().find_map(|a| a.targets))
    }
}

/// Asks every registered complex for its info and collects the answers that arrive
/// within `wait`.
pub async fn gather(client: &async_nats::Client, wait: Duration) -> Result<Gathered, RegistryError> {
    let inbox = client.new_inbox();
    let mut replies = client
        .subscribe(inbox.clone())
        .await
        .map_err(|e| RegistryError::Subscribe { subject: inbox.clone(), message: e.to_string() })?;
    client
        .publish_with_reply(ALL_SUBJECT, inbox, bytes::Bytes::new())
        .await
        .map_err(|e| RegistryError::Request(e.to_string()))?;
    client.flush().await.map_err(|e| RegistryError::Request(e.to_string()))?;
    let mut out = Gathered::default();
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let next = tokio::time::timeout_at(deadline, replies.next()).await;
        let Ok(Some(message)) = next else { break };
        // No responders (status 503) and other status messages carry no answer.
        if message.status.is_some() {
            continue;
        }
        match v1::ListComplexesResponse::decode(message.payload.as_ref()) {
            Ok(reply) if reply.complexes.len() == 1 => {
                let info = reply.complexes.into_iter().next().expect("one complex");
                out.answers.push(Answer { info, targets: reply.targets });
            }
            Ok(_) | Err(_) => {
                tracing::warn!(subject = %message.subject, "undecodable programme answer skipped");
                out.undecodable += 1;
            }
        }
    }
    let _ = replies.unsubscribe().await;
    out.answers
        .sort_by(|a, b| (&a.info.complex_id, &a.info.endpoint).cmp(&(&b.info.complex_id, &b.info.endpoint)));
    Ok(out)
}

/// Milliseconds since the Unix epoch, now.
fn unix_ms_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// The complex's identity and headline KPIs from a snapshot (conversion only: every
/// figure is the snapshot's, which the core computed).
pub fn complex_info(complex_id: &str, endpoint: &str, snap: &Snapshot) -> Answer {
    let model = &snap.scene.model;
    let programme = model.programme.as_ref();
    let kpis = &snap.kpis;
    let bottleneck = snap
        .bottlenecks
        .ranking
        .first()
        .and_then(|b| snap.layout.stations.get(b.station_index as usize))
        .map(|s| s.id.clone())
        .unwrap_or_default();
    let sold = kpis.finished > 0;
    let age_ms = snap.published.elapsed().as_millis() as u64;
    let info = v1::ComplexInfo {
        complex_id: complex_id.to_string(),
        name: programme.map_or_else(|| model.name.clone(), |p| p.name.clone()),
        region: programme.map(|p| p.region.clone()).unwrap_or_default(),
        industry: programme.map(|p| p.industry.clone()).unwrap_or_default(),
        endpoint: endpoint.to_string(),
        sim_time_us: snap.clock.sim_time,
        warming_up: snap.clock.sim_time < model.warmup,
        value_added_rate: sold.then_some(kpis.value_added_rate),
        labour_productivity: kpis.labour_productivity,
        labour_productivity_baseline: programme.and_then(|p| p.baseline_labour_productivity),
        throughput_per_hour: Some(kpis.throughput_per_hour),
        wip: Some(kpis.wip.max(0.0).round() as u64),
        bottleneck_station_id: bottleneck,
        open_alarms: snap.alarm_summary.open,
        reported_unix_ms: unix_ms_now().saturating_sub(age_ms),
    };
    let targets = programme.map(|p| v1::ProgrammeTargets {
        value_added_rate: p.targets.value_added_rate,
        labour_productivity_gain: p.targets.labour_productivity_gain,
    });
    Answer { info, targets }
}

/// This server's place in the programme while it serves: the NATS connection (for
/// ListComplexes) and, with `--complex`, its id and endpoint.
pub struct Registry {
    /// The programme's NATS (reconnects by itself; subscriptions survive it).
    pub client: async_nats::Client,
    /// The complex this server is; None: it only lists the others.
    pub complex_id: Option<String>,
    /// The gRPC URL this server registers.
    pub endpoint: String,
    /// Latest snapshots, for this server's own answer.
    snapshots: watch::Receiver<Arc<Snapshot>>,
    /// How long ListComplexes waits for answers.
    pub wait: Duration,
}

impl Registry {
    /// Connects and, with a complex id, checks that no live server holds it already and
    /// starts answering on the registry's subjects until `shutdown` is cancelled.
    pub async fn start(
        config: ProgrammeConfig,
        endpoint: String,
        snapshots: watch::Receiver<Arc<Snapshot>>,
        shutdown: CancellationToken,
    ) -> Result<Registry, RegistryError> {
        let client = connect(&config.nats, true).await?;
        if let Some(id) = &config.complex_id {
            check_id(id)?;
            // Two servers under one id would answer for one complex: refuse the second
            // (a server killed a moment ago no longer answers, so restarts are fine).
            let probe = client.request(subject_of(id), bytes::Bytes::new());
            if let Ok(Ok(reply)) = tokio::time::timeout(Duration::from_secs(1), probe).await
                && reply.status.is_none()
            {
                let endpoint = v1::ListComplexesResponse::decode(reply.payload.as_ref())
                    .ok()
                    .and_then(|r| r.complexes.into_iter().next())
                    .map_or_else(|| "?".to_string(), |c| c.endpoint);
                return Err(RegistryError::Taken { id: id.clone(), endpoint });
            }
            for subject in [ALL_SUBJECT.to_string(), subject_of(id)] {
                let subscriber = client
                    .subscribe(subject.clone())
                    .await
                    .map_err(|e| RegistryError::Subscribe { subject, message: e.to_string() })?;
                tokio::spawn(answer(
                    client.clone(),
                    subscriber,
                    id.clone(),
                    endpoint.clone(),
                    snapshots.clone(),
                    shutdown.clone(),
                ));
            }
            tracing::info!(complex = %id, %endpoint, subject = %subject_of(id), "registered on the programme's NATS");
        }
        Ok(Registry { client, complex_id: config.complex_id, endpoint, snapshots, wait: DEFAULT_WAIT })
    }

    /// ListComplexes: every complex that answers now, this one included.
    pub async fn list(&self) -> Result<v1::ListComplexesResponse, RegistryError> {
        let gathered = gather(&self.client, self.wait).await?;
        let own = self
            .complex_id
            .as_ref()
            .and_then(|id| complex_info(id, &self.endpoint, &self.snapshots.borrow()).targets);
        Ok(v1::ListComplexesResponse {
            targets: gathered.targets(own),
            complexes: gathered.answers.into_iter().map(|a| a.info).collect(),
            self_complex_id: self.complex_id.clone().unwrap_or_default(),
        })
    }
}

/// Answers requests on one subscription until shutdown; the subscription ends with it,
/// so a stopping server stops answering before it goes.
async fn answer(
    client: async_nats::Client,
    mut requests: async_nats::Subscriber,
    complex_id: String,
    endpoint: String,
    snapshots: watch::Receiver<Arc<Snapshot>>,
    shutdown: CancellationToken,
) {
    loop {
        let request = tokio::select! {
            () = shutdown.cancelled() => break,
            r = requests.next() => r,
        };
        let Some(request) = request else { break };
        let Some(reply) = request.reply else { continue };
        let snap = Arc::clone(&snapshots.borrow());
        let Answer { info, targets } = complex_info(&complex_id, &endpoint, &snap);
        let body =
            v1::ListComplexesResponse { complexes: vec![info], targets, self_complex_id: complex_id.clone() };
        if let Err(e) = client.publish(reply, body.encode_to_vec().into()).await {
            tracing::debug!(error = %e, "programme answer not sent");
        }
    }
    let _ = requests.unsubscribe().await;
}
