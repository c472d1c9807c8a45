//! The NATS JetStream side of distributed experiments, shared by `twin worker` (which
//! runs jobs) and `twin experiment --nats` (which publishes jobs and collects results).
//!
//! Three streams, named after the queue (`--queue`, default `twin`):
//! - `TWIN_JOBS`, subjects `twin.job.<experiment id>`: a work queue (retention
//!   WorkQueue, a message is deleted once a worker acks it), read by one durable pull
//!   consumer `twin-workers` that every worker shares. A job not acked within
//!   [`ACK_WAIT`] is redelivered (a worker that died); a running worker keeps its job
//!   with progress acks. After [`MAX_DELIVER`] deliveries the server gives up and says
//!   so on an advisory subject, which the collector watches.
//! - `TWIN_RESULTS`, subjects `twin.result.<experiment id>`: results, read by the
//!   collector with an ordered consumer; purged by the collector when it is done.
//! - `TWIN_SCENES`, subjects `twin.scene.<sha256>`: scene bundles by content, one
//!   message per subject.
//!
//! Delivery is at least once: a worker publishes its result and only then acks the
//! job, so a crash in between runs the job twice; the collector keeps the first result
//! per (variant, replication), and every copy is the same bits.

use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use async_nats::jetstream::{self, consumer, stream};

/// How long a delivered job may go without an ack or a progress ack before JetStream
/// hands it to another worker.
pub const ACK_WAIT: Duration = Duration::from_secs(10);
/// How often a running worker tells JetStream it is still working on a job.
pub const PROGRESS_EVERY: Duration = Duration::from_secs(3);
/// Deliveries of one job at most; then the server drops it and publishes an advisory.
pub const MAX_DELIVER: i64 = 5;
/// Results are kept at most this long when nobody collects them (a killed collector).
const RESULTS_MAX_AGE: Duration = Duration::from_secs(24 * 3600);
/// Scene bundles unused this long are dropped; each experiment run uploads its own again.
const SCENES_MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);

/// Where the queue is: shared by `twin worker` and `twin experiment --nats`.
#[derive(clap::Args, Clone, Debug)]
pub struct QueueArgs {
    /// Namespace of the streams and subjects (`twin` -> TWIN_JOBS, twin.job.*): lets
    /// several independent pools share one NATS system. Lower-case letters, digits, `_`.
    #[arg(long, default_value = "twin")]
    pub queue: String,
    /// Replicas of the streams and the workers' consumer when this process creates
    /// them (3 on a three-node cluster survives losing a node); existing ones are kept.
    #[arg(long, default_value_t = 1)]
    pub replicas: usize,
}

/// Stream, subject and consumer names of one queue.
#[derive(Clone, Debug)]
pub struct Names {
    pub prefix: String,
    pub jobs: String,
    pub results: String,
    pub scenes: String,
    pub consumer: String,
}

impl Names {
    pub fn new(queue: &str) -> Result<Names> {
        if queue.is_empty()
            || queue.len() > 32
            || !queue.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            bail!("--queue `{queue}`: use 1 to 32 lower-case letters, digits or `_`");
        }
        let upper = queue.to_ascii_uppercase();
        Ok(Names {
            prefix: queue.to_string(),
            jobs: format!("{upper}_JOBS"),
            results: format!("{upper}_RESULTS"),
            scenes: format!("{upper}_SCENES"),
            consumer: format!("{queue}-workers"),
        })
    }

    pub fn job_subject(&self, experiment: &str) -> String {
        format!("{}.job.{experiment}", self.prefix)
    }

    pub fn result_subject(&self, experiment: &str) -> String {
        format!("{}.result.{experiment}", self.prefix)
    }

    pub fn scene_subject(&self, hash: &str) -> String {
        format!("{}.scene.{hash}", self.prefix)
    }

    /// The experiment id in a job subject, if it is one of ours.
    pub fn experiment_of<'a>(&self, job_subject: &'a str) -> Option<&'a str> {
        job_subject.strip_prefix(&self.prefix)?.strip_prefix(".job.").filter(|id| valid_id(id))
    }

    /// Subject on which JetStream announces a job dropped after [`MAX_DELIVER`] tries.
    pub fn max_deliveries_advisory(&self) -> String {
        format!("$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{}.{}", self.jobs, self.consumer)
    }
}

/// An experiment id is one subject token: letters, digits, `-` and `_`.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A connection with the three streams in place.
pub struct Queue {
    pub client: async_nats::Client,
    pub js: jetstream::Context,
    pub names: Names,
    pub jobs: stream::Stream,
    pub results: stream::Stream,
    pub scenes: stream::Stream,
}

/// Connects to `url` (a comma-separated list of servers is allowed) and creates the
/// streams if missing. Retries for up to 30 s while a fresh cluster elects its JetStream
/// leader.
pub async fn connect(url: &str, args: &QueueArgs) -> Result<Queue> {
    let names = Names::new(&args.queue)?;
    anyhow::ensure!((1..=5).contains(&args.replicas), "--replicas must be 1 to 5, got {}", args.replicas);
    let addrs = url
        .split(',')
        .map(|s| s.trim().parse::<async_nats::ServerAddr>())
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("--nats `{url}` is not a NATS URL (or comma-separated list)"))?;
    let client = async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(5))
        .retry_on_initial_connect()
        .max_reconnects(None)
        .connect(addrs)
        .await
        .with_context(|| format!("connecting to NATS at {url}"))?;
    let js = jetstream::new(client.clone());
    let streams = [
        stream::Config {
            name: names.jobs.clone(),
            subjects: vec![format!("{}.job.*", names.prefix)],
            retention: stream::RetentionPolicy::WorkQueue,
            num_replicas: args.replicas,
            ..Default::default()
        },
        stream::Config {
            name: names.results.clone(),
            subjects: vec![format!("{}.result.*", names.prefix)],
            max_age: RESULTS_MAX_AGE,
            num_replicas: args.replicas,
            ..Default::default()
        },
        stream::Config {
            name: names.scenes.clone(),
            subjects: vec![format!("{}.scene.*", names.prefix)],
            max_messages_per_subject: 1,
            max_age: SCENES_MAX_AGE,
            num_replicas: args.replicas,
            ..Default::default()
        },
    ];
    let mut made = Vec::new();
    for config in streams {
        let name = config.name.clone();
        made.push(
            retry(&format!("creating stream {name}"), || js.get_or_create_stream(config.clone())).await?,
        );
    }
    let scenes = made.pop().expect("three streams");
    let results = made.pop().expect("three streams");
    let jobs = made.pop().expect("three streams");
    Ok(Queue { client, js, names, jobs, results, scenes })
}

impl Queue {
    /// The durable pull consumer all workers share (created if missing).
    pub async fn workers_consumer(&self, replicas: usize) -> Result<consumer::PullConsumer> {
        let config = consumer::pull::Config {
            durable_name: Some(self.names.consumer.clone()),
            ack_policy: consumer::AckPolicy::Explicit,
            ack_wait: ACK_WAIT,
            max_deliver: MAX_DELIVER,
            num_replicas: replicas,
            ..Default::default()
        };
        retry(&format!("creating consumer {}", self.names.consumer), || {
            self.jobs.get_or_create_consumer(&self.names.consumer, config.clone())
        })
        .await
    }
}

/// Retries `op` for up to 30 s: JetStream answers "no leader" or times out for a few
/// seconds after a cluster starts or loses a node.
pub async fn retry<T, E, F, Fut>(what: &str, mut op: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
    E: std::fmt::Display,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match op().await {
            Ok(v) => return Ok(v),
            Err(e) if tokio::time::Instant::now() < deadline => {
                tracing::debug!("{what}: {e}; retrying");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(e) => bail!("{what}: {e}"),
        }
    }
}
