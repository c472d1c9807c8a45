//! [`SimHandle`]: the async side's handle to the simulation thread; every call is a
//! request on the thread's channel, answered between events.

use super::*;

/// The simulation thread has stopped (server shutting down).
#[derive(Debug, thiserror::Error)]
#[error("the simulation has stopped")]
pub struct Stopped;

/// Handle to the simulation thread; cheap to share behind an `Arc`.
pub struct SimHandle {
    requests: mpsc::Sender<Request>,
    snapshots: watch::Receiver<Arc<Snapshot>>,
    thread: std::sync::Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl SimHandle {
    /// Starts the simulation thread on `scene`, running at `speed` (or paused).
    pub fn spawn(scene: Arc<LiveScene>, speed: Speed, paused: bool) -> std::io::Result<SimHandle> {
        SimHandle::spawn_with(scene, speed, paused, Start::Fresh)
    }

    /// Starts the simulation thread on a new run or one rebuilt from the telemetry log or
    /// the store; with a telemetry log, every decision is recorded, with a store every
    /// command.
    pub fn spawn_with(
        scene: Arc<LiveScene>,
        speed: Speed,
        paused: bool,
        start: Start,
    ) -> std::io::Result<SimHandle> {
        let (tx, rx) = mpsc::channel();
        let mut driver = Driver::new(scene, speed, paused, start);
        let first = driver.snapshot(driver.timeline());
        let (snap_tx, snap_rx) = watch::channel(first);
        driver.publisher = Some(snap_tx);
        let thread = std::thread::Builder::new().name("twin-sim".into()).spawn(move || driver.run(rx))?;
        Ok(SimHandle { requests: tx, snapshots: snap_rx, thread: std::sync::Mutex::new(Some(thread)) })
    }

    /// A receiver of the latest snapshot (viewers sample it; nothing queues).
    pub fn snapshots(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.snapshots.clone()
    }

    /// The snapshot published last.
    pub fn latest(&self) -> Arc<Snapshot> {
        self.snapshots.borrow().clone()
    }

    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Request) -> Result<T, Stopped> {
        let (tx, rx) = oneshot::channel();
        self.requests.send(make(tx)).map_err(|_| Stopped)?;
        rx.await.map_err(|_| Stopped)
    }

    /// Applies a control call.
    pub async fn control(&self, c: Control) -> Result<Result<ControlReply, ControlError>, Stopped> {
        self.ask(|tx| Request::Control(c, tx)).await
    }

    /// Applies an injection at the current simulation time and logs it.
    pub async fn inject(&self, i: Injection) -> Result<Result<Receipt, InjectError>, Stopped> {
        self.ask(|tx| Request::Inject(i, tx)).await
    }

    /// Computes the full report of the live run now.
    pub async fn report(&self) -> Result<ReportReply, Stopped> {
        self.ask(Request::Report).await
    }

    /// The command log of the current run: `(sim_time, command)` in order.
    pub async fn command_log(&self) -> Result<Vec<(Micros, Injection)>, Stopped> {
        self.ask(Request::CommandLog).await
    }

    /// A copy of the live state now, taken between events (a clone: the pacing hardly
    /// notices).
    pub async fn fork(&self) -> Result<LiveCopy, Stopped> {
        self.ask(Request::Fork).await
    }

    /// Publishes `forecast` in the snapshots of run `run` from now on (ignored when that
    /// run has ended).
    pub fn set_forecast(&self, run: u64, forecast: v1::ForecastResult) -> Result<(), Stopped> {
        self.requests.send(Request::SetForecast(run, Arc::new(forecast))).map_err(|_| Stopped)
    }

    /// Applies decoded telemetry and waits until it is applied (blocking: the ingest
    /// processor thread calls it).
    pub fn telemetry(&self, batch: TelemetryBatch) -> Result<(), Stopped> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.requests.send(Request::Telemetry(batch, tx)).map_err(|_| Stopped)?;
        rx.recv().map_err(|_| Stopped)
    }

    /// What a Seek to `target` replays.
    pub async fn seek_plan(&self, target: Micros) -> Result<Result<Plan, SeekError>, Stopped> {
        self.ask(|tx| Request::SeekPlan(target, tx)).await
    }

    /// Shows a run rebuilt by a Seek.
    pub async fn show(&self, built: Built) -> Result<Result<v1::Timeline, SeekError>, Stopped> {
        self.ask(|tx| Request::Show(Box::new(built), tx)).await
    }

    /// Shows the live run again.
    pub async fn go_live(&self) -> Result<v1::Timeline, Stopped> {
        self.ask(Request::GoLive).await
    }

    /// The live run's checkpoints on disk, oldest first (empty without a store).
    pub async fn checkpoints(&self) -> Result<Vec<Info>, Stopped> {
        self.ask(Request::Checkpoints).await
    }

    /// Stops the thread and waits for it.
    pub fn stop(&self) {
        let _ = self.requests.send(Request::Stop);
        let handle = self.thread.lock().ok().and_then(|mut h| h.take());
        if let Some(handle) = handle {
            let _ = handle.join();
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.stop();
    }
}
