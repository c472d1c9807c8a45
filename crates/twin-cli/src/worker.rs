//! `twin worker`: runs experiment replications from the JetStream work queue.
//!
//! Each of `--jobs` loops pulls one job at a time, fetches the job's scene bundle by
//! hash (cached), checks the job against it, runs the pure replication on a blocking
//! thread, publishes the result and only then acks the job, sending progress acks all along.
//! A job that cannot be run (bad JSON, unknown version, a corrupt or unparseable bundle,
//! a KPI that is null) gets an error result and is acked, so the collector fails the
//! experiment with the message instead of the job bouncing between workers. Passing
//! trouble with NATS itself (no leader, a timeout) is retried for 30 s, then the job is
//! naked for a later retry.

use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use async_nats::jetstream::{self, AckKind};
use futures_util::StreamExt;
use twin_lab::Experiment;
use twin_lab::bundle::{Bundle, Job, JobResult, Outcome, WIRE_VERSION};

use crate::queue::{self, PROGRESS_EVERY, Queue, QueueArgs};

/// Arguments of `twin worker`.
#[derive(clap::Args)]
pub struct WorkerArgs {
    /// NATS server URL, e.g. nats://127.0.0.1:4222 (several: comma-separated).
    #[arg(long, env = "TWIN_NATS")]
    nats: String,
    /// Replications run at once (default: one per core).
    #[arg(long, short)]
    jobs: Option<usize>,
    /// Print a line for every job started (variant, replication, delivery count).
    #[arg(long)]
    log_jobs: bool,
    #[command(flatten)]
    queue: QueueArgs,
}

/// Experiments rebuilt from bundles, most recent last; a few suffice (one experiment
/// at a time is the usual case) and each holds every variant's model.
const CACHED_BUNDLES: usize = 4;

struct Worker {
    queue: Queue,
    name: String,
    log_jobs: bool,
    cache: Mutex<Vec<(String, Arc<Experiment>)>>,
}

/// Runs `twin worker` until SIGINT or SIGTERM. Jobs in hand when it stops are not acked
/// and go to another worker after the ack wait.
pub fn run(args: WorkerArgs) -> Result<ExitCode> {
    let jobs = match args.jobs {
        Some(0) | None => std::thread::available_parallelism().map_or(1, usize::from),
        Some(n) => n,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(jobs + 2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let queue = queue::connect(&args.nats, &args.queue).await?;
        let consumer = queue.workers_consumer(args.queue.replicas).await?;
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        let name = format!("{} pid {}", host.trim(), std::process::id());
        eprintln!("worker {name}: {jobs} job(s) from {} on {}", queue.names.jobs, args.nats);
        let worker = Arc::new(Worker { queue, name, log_jobs: args.log_jobs, cache: Mutex::new(Vec::new()) });
        for _ in 0..jobs {
            let (worker, consumer) = (Arc::clone(&worker), consumer.clone());
            tokio::spawn(async move { worker.pull_loop(consumer).await });
        }
        stop_signal().await;
        eprintln!("worker {}: stopping", worker.name);
        Ok(ExitCode::SUCCESS)
    })
}

async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate()))
        else {
            return std::future::pending().await;
        };
        tokio::select! { _ = int.recv() => {}, _ = term.recv() => {} }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

impl Worker {
    /// Pulls and runs one job at a time, for ever.
    async fn pull_loop(&self, consumer: jetstream::consumer::PullConsumer) {
        loop {
            let batch = consumer.batch().max_messages(1).expires(Duration::from_secs(5)).messages().await;
            let mut batch = match batch {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!("pulling a job: {e}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            while let Some(message) = batch.next().await {
                match message {
                    Ok(m) => self.handle(m).await,
                    Err(e) => {
                        tracing::debug!("pulling a job: {e}");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            }
        }
    }

    async fn handle(&self, message: jetstream::Message) {
        let names = &self.queue.names;
        let Some(experiment) = names.experiment_of(message.subject.as_str()).map(str::to_string) else {
            // Not a subject this queue publishes jobs on; nobody to tell.
            eprintln!("worker {}: dropping a message on {}", self.name, message.subject);
            let _ = message.ack_with(AckKind::Term).await;
            return;
        };
        // Progress acks keep the job ours while it runs and while NATS trouble is
        // retried below (a cluster electing a leader), so that neither counts as a
        // delivery.
        let work = self.process(&message, &experiment);
        tokio::pin!(work);
        let mut tick = tokio::time::interval(PROGRESS_EVERY);
        tick.tick().await;
        let done = loop {
            tokio::select! {
                done = &mut work => break done,
                _ = tick.tick() => {
                    let _ = message.ack_with(AckKind::Progress).await;
                }
            }
        };
        match done {
            // Only now is the job done: the result is in the results stream.
            Ok(()) => {
                if let Err(e) = message.ack().await {
                    tracing::warn!("acking a job: {e} (it will run again; the collector dedupes)");
                }
            }
            Err(Retry) => {
                eprintln!("worker {}: NATS trouble for 30 s; handing the job back", self.name);
                let _ = message.ack_with(AckKind::Nak(Some(Duration::from_secs(5)))).await;
            }
        }
    }

    /// Runs one job and publishes its result (or its error); `Err(Retry)` when NATS
    /// kept failing for [`RETRY_FOR`].
    async fn process(&self, message: &jetstream::Message, experiment: &str) -> Result<(), Retry> {
        let failed = |variant, replication, message: String| JobResult {
            v: WIRE_VERSION,
            experiment: experiment.to_string(),
            variant,
            replication,
            worker: self.name.clone(),
            outcome: Outcome::Failed { message },
        };
        let result = match Job::from_bytes(&message.payload) {
            Err(e) => failed(None, None, e.to_string()),
            Ok(job) => match self.experiment(&job.bundle).await? {
                Err(e) => failed(Some(job.variant), Some(job.replication), e),
                Ok(exp) => match job.check(&exp) {
                    Err(e) => failed(Some(job.variant), Some(job.replication), e.to_string()),
                    Ok(()) => self.replicate(message, &job, exp).await,
                },
            },
        };
        let subject = self.queue.names.result_subject(experiment);
        let bytes = result.to_bytes();
        let deadline = tokio::time::Instant::now() + RETRY_FOR;
        loop {
            let published = match self.queue.js.publish(subject.clone(), bytes.clone().into()).await {
                Ok(ack) => ack.await.map(|_| ()).map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            match published {
                Ok(()) => return Ok(()),
                Err(e) if tokio::time::Instant::now() < deadline => {
                    tracing::debug!("publishing a result: {e}; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) => {
                    tracing::warn!("publishing a result: {e}");
                    return Err(Retry);
                }
            }
        }
    }

    /// Runs the job's replication on a blocking thread.
    async fn replicate(&self, message: &jetstream::Message, job: &Job, exp: Arc<Experiment>) -> JobResult {
        let (v, r) = (job.variant as usize, job.replication);
        let delivery = message.info().map_or(0, |i| i.delivered);
        if self.log_jobs || delivery > 1 {
            eprintln!(
                "worker {}: experiment {} variant {v} replication {r} (delivery {delivery})",
                self.name, job.experiment
            );
        }
        let outcome = tokio::task::spawn_blocking(move || twin_lab::replicate(&exp, v, r)).await;
        let failed = |message: String| JobResult {
            v: WIRE_VERSION,
            experiment: job.experiment.clone(),
            variant: Some(job.variant),
            replication: Some(job.replication),
            worker: self.name.clone(),
            outcome: Outcome::Failed { message },
        };
        match outcome {
            Ok(Ok(rep)) => JobResult::done(job, &self.name, &rep),
            Ok(Err(e)) => failed(e.to_string()),
            Err(e) => failed(format!("the replication task failed: {e}")),
        }
    }

    /// The experiment of bundle `hash`: cached, or fetched, checked and rebuilt.
    /// `Ok(Err)` is a permanent problem (reported); `Err(Retry)` a passing one.
    async fn experiment(&self, hash: &str) -> Result<Result<Arc<Experiment>, String>, Retry> {
        if let Some((_, e)) =
            self.cache.lock().unwrap_or_else(|p| p.into_inner()).iter().find(|(h, _)| h == hash)
        {
            return Ok(Ok(Arc::clone(e)));
        }
        let subject = self.queue.names.scene_subject(hash);
        let deadline = tokio::time::Instant::now() + RETRY_FOR;
        let bytes = loop {
            match self.queue.scenes.get_last_raw_message_by_subject(&subject).await {
                Ok(m) => break m.payload,
                Err(e) => {
                    use async_nats::jetstream::stream::LastRawMessageErrorKind as Kind;
                    if matches!(e.kind(), Kind::NoMessageFound) {
                        return Ok(Err(format!("scene bundle {hash} is not in {}", self.queue.names.scenes)));
                    }
                    if tokio::time::Instant::now() >= deadline {
                        tracing::warn!("fetching scene bundle {hash}: {e}");
                        return Err(Retry);
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        };
        let hash_owned = hash.to_string();
        let rebuilt = tokio::task::spawn_blocking(move || {
            Bundle::from_bytes(&hash_owned, &bytes).and_then(|b| b.experiment()).map_err(|e| e.to_string())
        })
        .await
        .map_err(|_| Retry)?;
        let exp = match rebuilt {
            Ok(e) => Arc::new(e),
            Err(e) => return Ok(Err(e)),
        };
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= CACHED_BUNDLES {
            cache.remove(0);
        }
        cache.push((hash.to_string(), Arc::clone(&exp)));
        Ok(Ok(exp))
    }
}

/// NATS trouble that outlasted [`RETRY_FOR`]: the job is naked and retried later.
struct Retry;

/// How long a worker retries fetching a bundle or publishing a result before handing
/// the job back: longer than a cluster takes to elect a new leader.
const RETRY_FOR: Duration = Duration::from_secs(30);
