//! `twin experiment FILE --nats URL`: the experiment runs on `twin worker` processes.
//!
//! The collector uploads the scene bundle (by hash), publishes one job per variant x
//! replication in the local runner's order, and collects results into the same
//! (variant, replication) slots, keeping the first of any duplicates (a job redelivered
//! after a worker died runs twice, with the same bits). The results are then summarised
//! by the very function the local run uses, so every output file is byte-identical.
//!
//! The collector is the source of truth: jobs and results in JetStream are a transport.
//! It ends with an error, naming the problem, when a worker reports a job it cannot
//! run, when JetStream gives up on a job after its delivery limit, or on a result that
//! does not fit the experiment; and it purges its jobs and results on the way out.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail};
use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use futures_util::StreamExt;
use twin_lab::bundle::{Bundle, Job, JobResult, Outcome as WireOutcome, WIRE_VERSION, sha256_hex};
use twin_lab::results::Replication;
use twin_lab::{Experiment, Outcome, Results};

use crate::queue::{self, Queue, QueueArgs};

/// After this long without a result, the results consumer is recreated (see `collect`).
const RESULTS_QUIET: Duration = Duration::from_secs(5);
/// Jobs published between waits for their acks.
const PUBLISH_WINDOW: usize = 256;

/// Runs `experiment` (loaded from `file`, with `replications` overriding the file's)
/// on the workers behind `url`. `tick(done, total)` reports progress.
pub fn run(
    experiment: &Experiment,
    file: &Path,
    replications: Option<u32>,
    url: &str,
    args: &QueueArgs,
    tick: &(dyn Fn(usize, usize) + Sync),
    cancel: &AtomicBool,
) -> Result<Results> {
    let bundle = Bundle::read(file, replications)?;
    // The workers rebuild the experiment from the bundle alone; check here that it
    // gives the same variants, so that a file the bundle misses fails now, not there.
    let remote = bundle.experiment()?;
    if remote.variant_names() != experiment.variant_names() || remote.kpis.len() != experiment.kpis.len() {
        bail!("the scene bundle of {} does not rebuild the same experiment", file.display());
    }
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    rt.block_on(async {
        let queue = queue::connect(url, args).await?;
        // Created here too, so jobs published before any worker starts wait for one.
        queue.workers_consumer(args.replicas).await?;
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let hash = bundle.hash();
        let id = format!("{}-{nanos:x}-{}", &hash[..12], std::process::id());
        let outcome = collect(&queue, experiment, &bundle, &hash, &id, tick, cancel).await;
        // Leave nothing behind: queued jobs of a failed or cancelled run, and results.
        let purge = async {
            let _ = queue.jobs.purge().filter(queue.names.job_subject(&id)).await;
            let _ = queue.results.purge().filter(queue.names.result_subject(&id)).await;
        };
        let _ = tokio::time::timeout(Duration::from_secs(5), purge).await;
        outcome
    })
}

async fn collect(
    queue: &Queue,
    experiment: &Experiment,
    bundle: &Bundle,
    hash: &str,
    id: &str,
    tick: &(dyn Fn(usize, usize) + Sync),
    cancel: &AtomicBool,
) -> Result<Results> {
    let names = &queue.names;
    upload(queue, bundle, hash).await?;

    // Watch for results and for jobs JetStream gave up on before publishing any job.
    let mut advisories = queue.client.subscribe(names.max_deliveries_advisory()).await?;
    let result_subject = names.result_subject(id);
    let mut results = ordered_results(queue, &result_subject, 0).await?;
    // Stream sequence of the last result read, and when one last arrived: a results
    // consumer lost with a NATS node is recreated from there.
    let mut last_seq = 0u64;
    let mut last_read = Instant::now();

    let n_variants = experiment.variants.len();
    let total = experiment.total_runs();
    // Stream sequence of each job -> its slot, to name a job JetStream dropped.
    let mut job_seqs: BTreeMap<u64, usize> = BTreeMap::new();
    let job_subject = names.job_subject(id);
    let mut pending = Vec::with_capacity(PUBLISH_WINDOW);
    for idx in 0..total {
        if cancel.load(Ordering::Relaxed) {
            break;
        }
        let (variant, replication) = (idx % n_variants, (idx / n_variants) as u32);
        let job = Job {
            v: WIRE_VERSION,
            experiment: id.to_string(),
            bundle: hash.to_string(),
            variant: variant as u32,
            variant_name: experiment.variants[variant].name.clone(),
            replication,
            seed: experiment.seed_of(variant, replication),
        };
        let ack = queue
            .js
            .publish(job_subject.clone(), job.to_bytes().into())
            .await
            .with_context(|| format!("publishing jobs to {}", names.jobs))?;
        pending.push((idx, ack));
        if pending.len() == PUBLISH_WINDOW || idx + 1 == total {
            for (idx, ack) in pending.drain(..) {
                let ack = ack.await.with_context(|| format!("publishing jobs to {}", names.jobs))?;
                job_seqs.insert(ack.sequence, idx);
            }
        }
    }

    let mut slots: Vec<Option<Replication>> = vec![None; total];
    let mut done = 0usize;
    let started = Instant::now();
    let mut told_waiting = false;
    let mut poll = tokio::time::interval(Duration::from_millis(200));
    while done < total && !cancel.load(Ordering::Relaxed) {
        tokio::select! {
            message = results.next() => {
                let message = match message {
                    Some(Ok(m)) => m,
                    Some(Err(e)) => {
                        // An ordered consumer recreates itself on most failures; if it
                        // gives up, start again from the first result (deduplicated).
                        tracing::warn!("reading results: {e}; re-reading");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        results = ordered_results(queue, &result_subject, last_seq).await?;
                        continue;
                    }
                    None => {
                        results = ordered_results(queue, &result_subject, last_seq).await?;
                        continue;
                    }
                };
                last_read = Instant::now();
                if let Ok(info) = message.info() {
                    last_seq = last_seq.max(info.stream_sequence);
                }
                let result = JobResult::from_bytes(&message.payload)
                    .map_err(|e| anyhow!("a worker sent a result this twin cannot read: {e}"))?;
                let where_ = match (result.variant, result.replication) {
                    (Some(v), Some(r)) => format!(
                        "variant \"{}\" replication {r}",
                        experiment.variants.get(v as usize).map_or("?", |x| x.name.as_str())
                    ),
                    _ => "a job".to_string(),
                };
                if let WireOutcome::Failed { message } = &result.outcome {
                    bail!("worker {} failed on {where_}: {message}", result.worker);
                }
                let rep = result
                    .replication(experiment)
                    .map_err(|e| anyhow!("worker {} sent a bad result: {e}", result.worker))?;
                let idx = rep.replication as usize * n_variants + rep.variant;
                if slots[idx].is_none() {
                    slots[idx] = Some(rep);
                    done += 1;
                    tick(done, total);
                }
            }
            advisory = advisories.next() => {
                let Some(advisory) = advisory else { continue };
                let seq = serde_json::from_slice::<serde_json::Value>(&advisory.payload)
                    .ok()
                    .and_then(|v| v.get("stream_seq").and_then(serde_json::Value::as_u64));
                if let Some(&idx) = seq.and_then(|s| job_seqs.get(&s))
                    && slots[idx].is_none()
                {
                    bail!(
                        "variant \"{}\" replication {} was delivered {} times without a result \
                         (workers crashing or too slow?); giving up",
                        experiment.variants[idx % n_variants].name,
                        idx / n_variants,
                        queue::MAX_DELIVER
                    );
                }
            }
            _ = poll.tick() => {
                // An ordered consumer lives on one node; if that node died, nothing
                // arrives. Reading on from the last sequence after a quiet spell is
                // cheap, and duplicates are dropped by slot anyway.
                if last_read.elapsed() > RESULTS_QUIET {
                    last_read = Instant::now();
                    if let Ok(r) = ordered_results(queue, &result_subject, last_seq).await {
                        results = r;
                    }
                }
                if done == 0 && !told_waiting && started.elapsed() > Duration::from_secs(10) {
                    told_waiting = true;
                    eprintln!("experiment: waiting for workers (twin worker --nats ... --queue {})", names.prefix);
                }
            }
        }
    }
    let finished: Vec<Replication> = slots.into_iter().flatten().collect();
    let outcome = if finished.len() == total { Outcome::Completed } else { Outcome::Cancelled };
    Ok(Results::summarise(experiment, outcome, finished))
}

/// Stores the bundle under its hash unless an intact copy is already there.
async fn upload(queue: &Queue, bundle: &Bundle, hash: &str) -> Result<()> {
    let subject = queue.names.scene_subject(hash);
    if let Ok(m) = queue.scenes.get_last_raw_message_by_subject(&subject).await
        && sha256_hex(&m.payload) == hash
    {
        return Ok(());
    }
    let bytes = bundle.to_bytes();
    let size = bytes.len();
    queue::retry("storing the scene bundle", || async {
        queue
            .js
            .publish(subject.clone(), bytes.clone().into())
            .await?
            .await
            .map(|_| ())
            .map_err(anyhow::Error::from)
    })
    .await
    .with_context(|| format!("scene bundle of {size} bytes (NATS max_payload is 1 MiB by default)"))
}

/// Results of `subject` after stream sequence `after`, in order.
async fn ordered_results(
    queue: &Queue,
    subject: &str,
    after: u64,
) -> Result<async_nats::jetstream::consumer::pull::Ordered> {
    let deliver_policy = match after {
        0 => DeliverPolicy::All,
        seq => DeliverPolicy::ByStartSequence { start_sequence: seq + 1 },
    };
    let config =
        pull::OrderedConfig { filter_subject: subject.to_string(), deliver_policy, ..Default::default() };
    let consumer = queue::retry("reading results", || queue.results.create_consumer(config.clone())).await?;
    queue::retry("reading results", || consumer.clone().messages()).await
}
