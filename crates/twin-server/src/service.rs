//! The TwinService RPCs: thin handlers that check requests, talk to the simulation thread
//! and convert replies through [`crate::convert`].

use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio_stream::Stream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};
use twin_core::Model;
use twin_proto::v1;
use twin_proto::v1::twin_service_server::TwinService;

use crate::alarms;
use crate::audit::{self, AuditLog};
use crate::auth::{self, Caller};
use crate::convert;
use crate::experiment::Experiments;
use crate::forecast::Forecasts;
use crate::scenes;
use crate::sim::{Control, ControlReply, Injection, LiveScene, Receipt, SimHandle, Stopped};
use crate::stream::{self, StreamLimits, Viewer};

/// Shared state of all RPCs.
pub struct Twin {
    /// The simulation thread.
    pub(crate) sim: Arc<SimHandle>,
    /// Folder of the scene catalogue (ListScenes / LoadScene).
    pub(crate) scenes_dir: PathBuf,
    /// Limits of StreamState.
    pub(crate) limits: StreamLimits,
    /// One permit per open state stream.
    pub(crate) streams: Arc<Semaphore>,
    /// Cancelled at shutdown so that streams end cleanly.
    pub(crate) shutdown: CancellationToken,
    /// How long shutdown waits for open calls.
    pub(crate) shutdown_grace: std::time::Duration,
    /// Running experiments (StartExperiment / CancelExperiment).
    pub(crate) experiments: Arc<Experiments>,
    /// Forecasts running on demand (Forecast).
    pub(crate) forecasts: Arc<Forecasts>,
    /// The audit log (ListAudit); None when the server keeps none.
    pub(crate) audit: Option<Arc<AuditLog>>,
    /// Live telemetry (Ingest, GetIngestStatus); None without `--data DIR`.
    pub(crate) ingest: Option<Arc<crate::ingest::Ingest>>,
    /// The programme's NATS (ListComplexes); None without `--nats`.
    pub(crate) programme: Option<Arc<crate::registry::Registry>>,
}

fn stopped(_: Stopped) -> Status {
    Status::unavailable("the server is shutting down")
}

impl Twin {
    async fn control(&self, c: Control) -> Result<ControlReply, Status> {
        self.sim.control(c).await.map_err(stopped)?.map_err(convert::control_status)
    }

    async fn inject(&self, i: Injection) -> Result<Receipt, Status> {
        self.sim.inject(i).await.map_err(stopped)?.map_err(convert::inject_status)
    }
}

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl TwinService for Twin {
    async fn get_layout(
        &self,
        _: Request<v1::GetLayoutRequest>,
    ) -> Result<Response<v1::GetLayoutResponse>, Status> {
        let layout = (*self.sim.latest().layout).clone();
        Ok(Response::new(v1::GetLayoutResponse { layout: Some(layout) }))
    }

    type StreamStateStream = BoxStream<v1::StateFrame>;

    async fn stream_state(
        &self,
        request: Request<v1::StreamStateRequest>,
    ) -> Result<Response<Self::StreamStateStream>, Status> {
        let peer = request.remote_addr().map_or_else(|| "unknown".into(), |a| a.to_string());
        let req = request.into_inner();
        let rate_hz = stream::rate(&req)?;
        let permit = Arc::clone(&self.streams).try_acquire_owned().map_err(|_| {
            Status::resource_exhausted(format!("too many state streams (limit {})", self.limits.max_streams))
        })?;
        tracing::debug!(%peer, rate_hz, "state stream opened");
        let frames = stream::spawn(Viewer {
            snapshots: self.sim.snapshots(),
            rate_hz,
            full_frames_only: req.full_frames_only,
            limits: self.limits.clone(),
            permit,
            shutdown: self.shutdown.clone(),
            peer,
        });
        Ok(Response::new(Box::pin(frames)))
    }

    async fn list_alarms(
        &self,
        request: Request<v1::ListAlarmsRequest>,
    ) -> Result<Response<v1::ListAlarmsResponse>, Status> {
        let open_only = request.into_inner().open_only;
        let snap = self.sim.latest();
        let alarms =
            snap.alarms.iter().filter(|a| !open_only || a.cleared_at_us.is_none()).cloned().collect();
        Ok(Response::new(v1::ListAlarmsResponse {
            alarms,
            raised: snap.alarm_summary.raised,
            generation: snap.generation,
        }))
    }

    type StreamAlarmsStream = BoxStream<v1::AlarmEvent>;

    async fn stream_alarms(
        &self,
        _: Request<v1::StreamAlarmsRequest>,
    ) -> Result<Response<Self::StreamAlarmsStream>, Status> {
        let permit = Arc::clone(&self.streams).try_acquire_owned().map_err(|_| {
            Status::resource_exhausted(format!("too many streams (limit {})", self.limits.max_streams))
        })?;
        let events = alarms::spawn(alarms::Subscriber {
            snapshots: self.sim.snapshots(),
            limits: self.limits.clone(),
            permit,
            shutdown: self.shutdown.clone(),
        });
        Ok(Response::new(Box::pin(events)))
    }

    async fn pause(&self, _: Request<v1::PauseRequest>) -> Result<Response<v1::PauseResponse>, Status> {
        let reply = self.control(Control::Pause).await?;
        Ok(Response::new(v1::PauseResponse { clock: Some(convert::clock(&reply.clock)) }))
    }

    async fn resume(&self, _: Request<v1::ResumeRequest>) -> Result<Response<v1::ResumeResponse>, Status> {
        let reply = self.control(Control::Resume).await?;
        Ok(Response::new(v1::ResumeResponse { clock: Some(convert::clock(&reply.clock)) }))
    }

    async fn set_speed(
        &self,
        request: Request<v1::SetSpeedRequest>,
    ) -> Result<Response<v1::SetSpeedResponse>, Status> {
        let speed = convert::speed(request.get_ref())?;
        let reply = self.control(Control::SetSpeed(speed)).await?;
        Ok(Response::new(v1::SetSpeedResponse { clock: Some(convert::clock(&reply.clock)) }))
    }

    async fn run_to(
        &self,
        request: Request<v1::RunToRequest>,
    ) -> Result<Response<v1::RunToResponse>, Status> {
        let target = convert::run_to(request.get_ref());
        let reply = self.control(Control::RunTo(target)).await?;
        Ok(Response::new(v1::RunToResponse { clock: Some(convert::clock(&reply.clock)) }))
    }

    async fn reset(&self, request: Request<v1::ResetRequest>) -> Result<Response<v1::ResetResponse>, Status> {
        let seed = request.get_ref().seed;
        let reply = self.control(Control::Reset { seed }).await?;
        Ok(Response::new(v1::ResetResponse {
            clock: Some(convert::clock(&reply.clock)),
            layout_generation: reply.generation,
        }))
    }

    async fn break_down(
        &self,
        request: Request<v1::BreakDownRequest>,
    ) -> Result<Response<v1::BreakDownResponse>, Status> {
        let receipt = self.inject(convert::break_down(request.get_ref())?).await?;
        Ok(Response::new(v1::BreakDownResponse { receipt: Some(convert::receipt(&receipt)) }))
    }

    async fn repair(
        &self,
        request: Request<v1::RepairRequest>,
    ) -> Result<Response<v1::RepairResponse>, Status> {
        let receipt = self.inject(convert::repair(request.get_ref())?).await?;
        Ok(Response::new(v1::RepairResponse { receipt: Some(convert::receipt(&receipt)) }))
    }

    async fn add_rush_order(
        &self,
        request: Request<v1::AddRushOrderRequest>,
    ) -> Result<Response<v1::AddRushOrderResponse>, Status> {
        let receipt = self.inject(convert::rush_order(request.get_ref())?).await?;
        Ok(Response::new(v1::AddRushOrderResponse {
            receipt: Some(convert::receipt(&receipt)),
            order_id: convert::order_id(&receipt),
        }))
    }

    async fn set_parameter(
        &self,
        request: Request<v1::SetParameterRequest>,
    ) -> Result<Response<v1::SetParameterResponse>, Status> {
        let receipt = self.inject(convert::parameter(request.get_ref())?).await?;
        Ok(Response::new(v1::SetParameterResponse {
            receipt: Some(convert::receipt(&receipt)),
            layout_generation: receipt.generation,
        }))
    }

    async fn get_report(
        &self,
        request: Request<v1::GetReportRequest>,
    ) -> Result<Response<v1::GetReportResponse>, Status> {
        let omit_json = request.get_ref().omit_json;
        let reply = self.sim.report().await.map_err(stopped)?;
        // Serialising a big report is real work; keep it off the async workers.
        let report = tokio::task::spawn_blocking(move || convert::report(&reply, omit_json))
            .await
            .map_err(|e| Status::internal(format!("report task failed: {e}")))??;
        Ok(Response::new(v1::GetReportResponse { report: Some(report) }))
    }

    async fn list_scenes(
        &self,
        _: Request<v1::ListScenesRequest>,
    ) -> Result<Response<v1::ListScenesResponse>, Status> {
        let dir = self.scenes_dir.clone();
        let scenes = tokio::task::spawn_blocking(move || {
            scenes::list(&dir)
                .into_iter()
                .filter_map(|entry| match Model::load(&entry.path) {
                    Ok(model) => Some(v1::SceneInfo {
                        name: entry.name,
                        title: model.name,
                        description: model.description,
                    }),
                    Err(errors) => {
                        tracing::warn!(scene = %entry.name, %errors, "scene not listed: invalid");
                        None
                    }
                })
                .collect::<Vec<_>>()
        })
        .await
        .map_err(|e| Status::internal(format!("listing scenes failed: {e}")))?;
        Ok(Response::new(v1::ListScenesResponse { scenes, current: self.sim.latest().scene.name.clone() }))
    }

    async fn load_scene(
        &self,
        request: Request<v1::LoadSceneRequest>,
    ) -> Result<Response<v1::LoadSceneResponse>, Status> {
        let req = request.into_inner();
        if req.name.is_empty() {
            return Err(Status::invalid_argument("name is required"));
        }
        let dir = self.scenes_dir.clone();
        let name = req.name.clone();
        let scene = tokio::task::spawn_blocking(move || {
            let entry = scenes::find(&dir, &name)
                .ok_or_else(|| Status::not_found(format!("unknown scene `{name}`")))?;
            let model = Model::load(&entry.path).map_err(|errors| {
                Status::failed_precondition(format!("scene `{name}` is invalid:\n{errors}"))
            })?;
            Ok::<_, Status>(LiveScene::new(entry.name, entry.path, model, None))
        })
        .await
        .map_err(|e| Status::internal(format!("loading the scene failed: {e}")))??;
        let scene = Arc::new(scene);
        let info = convert::scene_info(&scene.name, &scene.model);
        let reply = self.control(Control::Load { scene, seed: req.seed }).await?;
        tracing::info!(scene = %info.name, generation = reply.generation, "scene loaded");
        Ok(Response::new(v1::LoadSceneResponse {
            scene: Some(info),
            clock: Some(convert::clock(&reply.clock)),
            layout_generation: reply.generation,
        }))
    }

    type StartExperimentStream = BoxStream<v1::ExperimentEvent>;

    async fn start_experiment(
        &self,
        request: Request<v1::StartExperimentRequest>,
    ) -> Result<Response<Self::StartExperimentStream>, Status> {
        // Base scenes are found relative to the bundled experiments folder.
        let dir = self.scenes_dir.join("experiments");
        let events = self.experiments.start(request.into_inner(), dir, self.shutdown.clone()).await?;
        Ok(Response::new(Box::pin(events)))
    }

    async fn cancel_experiment(
        &self,
        request: Request<v1::CancelExperimentRequest>,
    ) -> Result<Response<v1::CancelExperimentResponse>, Status> {
        let id = &request.get_ref().experiment_id;
        if id.is_empty() {
            return Err(Status::invalid_argument("experiment_id is required"));
        }
        Ok(Response::new(v1::CancelExperimentResponse { cancelled: self.experiments.cancel(id)? }))
    }

    async fn who_am_i(
        &self,
        request: Request<v1::WhoAmIRequest>,
    ) -> Result<Response<v1::WhoAmIResponse>, Status> {
        // The gate put the caller there; a request that bypassed it is nobody.
        let caller = request
            .extensions()
            .get::<Caller>()
            .ok_or_else(|| Status::unauthenticated("no caller established for this call"))?;
        Ok(Response::new(auth::who_am_i(caller)))
    }

    async fn list_audit(
        &self,
        request: Request<v1::ListAuditRequest>,
    ) -> Result<Response<v1::ListAuditResponse>, Status> {
        let log = self.audit.clone().ok_or_else(|| {
            Status::failed_precondition(
                "this server keeps no audit log (start it with --data DIR or --audit FILE)",
            )
        })?;
        let (before, limit) = audit::page_request(request.get_ref())?;
        let page = tokio::task::spawn_blocking(move || log.page(before, limit))
            .await
            .map_err(|e| Status::internal(format!("audit task failed: {e}")))?
            .map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(audit::page_response(&page)))
    }

    type ForecastStream = BoxStream<v1::ForecastEvent>;

    async fn forecast(
        &self,
        request: Request<v1::ForecastRequest>,
    ) -> Result<Response<Self::ForecastStream>, Status> {
        let events = self.forecasts.start(&self.sim, request.into_inner(), self.shutdown.clone()).await?;
        Ok(Response::new(Box::pin(events)))
    }

    // --- Time travel (issue 13) ---

    async fn seek(&self, request: Request<v1::SeekRequest>) -> Result<Response<v1::SeekResponse>, Status> {
        let target = request.into_inner().sim_time_us;
        let plan = self.sim.seek_plan(target).await.map_err(stopped)?.map_err(convert::seek_status)?;
        // Restoring and replaying is CPU-bound: off the async workers and the simulation
        // thread (the live run goes on meanwhile).
        let built = tokio::task::spawn_blocking(move || plan.build())
            .await
            .map_err(|e| Status::internal(format!("seek task failed: {e}")))?
            .map_err(convert::seek_status)?;
        let timeline = self.sim.show(built).await.map_err(stopped)?.map_err(convert::seek_status)?;
        Ok(Response::new(v1::SeekResponse { timeline: Some(timeline) }))
    }

    async fn go_live(&self, _: Request<v1::GoLiveRequest>) -> Result<Response<v1::GoLiveResponse>, Status> {
        let timeline = self.sim.go_live().await.map_err(stopped)?;
        Ok(Response::new(v1::GoLiveResponse { timeline: Some(timeline) }))
    }

    async fn list_checkpoints(
        &self,
        _: Request<v1::ListCheckpointsRequest>,
    ) -> Result<Response<v1::ListCheckpointsResponse>, Status> {
        let held = self.sim.checkpoints().await.map_err(stopped)?;
        let checkpoints = held.iter().map(convert::checkpoint_info).collect();
        Ok(Response::new(v1::ListCheckpointsResponse { checkpoints }))
    }

    type IngestStream = BoxStream<v1::IngestAck>;

    async fn ingest(
        &self,
        request: Request<tonic::Streaming<v1::IngestBatch>>,
    ) -> Result<Response<Self::IngestStream>, Status> {
        let ingest = self.ingest.clone().ok_or_else(|| {
            Status::failed_precondition("this server keeps no telemetry log (start it with --data DIR)")
        })?;
        let acks = crate::ingest::grpc::serve(ingest, request.into_inner());
        Ok(Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(acks))))
    }

    async fn get_ingest_status(
        &self,
        _: Request<v1::GetIngestStatusRequest>,
    ) -> Result<Response<v1::GetIngestStatusResponse>, Status> {
        let status = match &self.ingest {
            Some(ingest) => ingest.status.to_proto(),
            None => v1::GetIngestStatusResponse::default(),
        };
        Ok(Response::new(status))
    }

    // --- Programme (issue 15) ---
    async fn list_complexes(
        &self,
        _: Request<v1::ListComplexesRequest>,
    ) -> Result<Response<v1::ListComplexesResponse>, Status> {
        let registry = self.programme.as_ref().ok_or_else(|| {
            Status::failed_precondition("this server runs without --nats (start it with --nats URL)")
        })?;
        let list = registry.list().await.map_err(|e| Status::unavailable(e.to_string()))?;
        Ok(Response::new(list))
    }
}
