//! StartExperiment / CancelExperiment: runs a twin-lab experiment on blocking threads,
//! independent of the live run, and streams its progress through a bounded channel.
//!
//! A slow client slows the experiment (the progress callback waits for room) instead of
//! growing a queue; closing the stream, CancelExperiment or server shutdown cancel it.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::Status;
use twin_proto::v1;

use crate::convert;

/// Events buffered per experiment stream before the experiment waits for the client.
const EVENT_BUFFER: usize = 16;
/// Finished experiment ids remembered, so that cancelling one is `false`, not NOT_FOUND.
const FINISHED_REMEMBERED: usize = 256;

/// Running and recently finished experiments.
#[derive(Default)]
pub struct Experiments {
    next_id: AtomicU64,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    running: HashMap<String, Arc<AtomicBool>>,
    finished: VecDeque<String>,
}

impl Experiments {
    /// Cancels experiment `id`: Ok(true) when it was running, Ok(false) when it had
    /// finished, NOT_FOUND otherwise.
    pub fn cancel(&self, id: &str) -> Result<bool, Status> {
        let state = self.state.lock().map_err(|_| Status::internal("poisoned"))?;
        if let Some(flag) = state.running.get(id) {
            flag.store(true, Ordering::Relaxed);
            Ok(true)
        } else if state.finished.iter().any(|f| f == id) {
            Ok(false)
        } else {
            Err(Status::not_found(format!("unknown experiment `{id}`")))
        }
    }

    fn finish(&self, id: &str) {
        if let Ok(mut state) = self.state.lock() {
            state.running.remove(id);
            state.finished.push_back(id.to_string());
            while state.finished.len() > FINISHED_REMEMBERED {
                state.finished.pop_front();
            }
        }
    }

    /// Parses and starts an experiment; bad files are INVALID_ARGUMENT with the
    /// problems' places.
    pub async fn start(
        self: &Arc<Self>,
        req: v1::StartExperimentRequest,
        experiments_dir: PathBuf,
        shutdown: CancellationToken,
    ) -> Result<ReceiverStream<Result<v1::ExperimentEvent, Status>>, Status> {
        if req.experiment.trim().is_empty() {
            return Err(Status::invalid_argument("experiment is required (the file's text)"));
        }
        let origin =
            if req.file_name.is_empty() { "experiment.ron".to_string() } else { req.file_name.clone() };
        let text = req.experiment;
        let experiment = tokio::task::spawn_blocking(move || {
            twin_lab::Experiment::parse(&text, Path::new(&origin), &experiments_dir)
        })
        .await
        .map_err(|e| Status::internal(format!("parsing task failed: {e}")))?
        .map_err(|e| Status::invalid_argument(format!("experiment: {e}")))?;

        let id = format!("exp-{}", self.next_id.fetch_add(1, Ordering::Relaxed) + 1);
        let cancel = Arc::new(AtomicBool::new(false));
        self.state
            .lock()
            .map_err(|_| Status::internal("poisoned"))?
            .running
            .insert(id.clone(), Arc::clone(&cancel));
        let (tx, rx) = mpsc::channel(EVENT_BUFFER);
        let event = {
            let id = id.clone();
            move |e: v1::experiment_event::Event| v1::ExperimentEvent {
                experiment_id: id.clone(),
                event: Some(e),
            }
        };
        let _ = tx
            .send(Ok(event(v1::experiment_event::Event::Started(convert::experiment_started(&experiment)))))
            .await;
        tracing::info!(%id, name = %experiment.name, runs = experiment.total_runs(), "experiment started");

        // Cancel on shutdown or when the client goes away.
        let watcher = {
            let cancel = Arc::clone(&cancel);
            let tx = tx.clone();
            tokio::spawn(async move {
                tokio::select! {
                    _ = shutdown.cancelled() => {}
                    _ = tx.closed() => {}
                }
                cancel.store(true, Ordering::Relaxed);
            })
        };
        let this = Arc::clone(self);
        let jobs = req.jobs as usize;
        tokio::task::spawn_blocking(move || {
            let options = twin_lab::RunOptions { jobs };
            let result = twin_lab::run(
                &experiment,
                &options,
                |p| {
                    let done = convert::replication_done(p);
                    if tx.blocking_send(Ok(event(v1::experiment_event::Event::Replication(done)))).is_err() {
                        cancel.store(true, Ordering::Relaxed);
                    }
                },
                &cancel,
            );
            let finished = match &result {
                Ok(results) => convert::experiment_finished(results),
                Err(e) => convert::experiment_failed(e),
            };
            tracing::info!(%id, outcome = finished.outcome, "experiment finished");
            let _ = tx.blocking_send(Ok(event(v1::experiment_event::Event::Finished(finished))));
            this.finish(&id);
            watcher.abort();
        });
        Ok(ReceiverStream::new(rx))
    }
}
