//! Deviation alarms and sync status over gRPC: a real server on 127.0.0.1:0 fed plant
//! observations (`Command::Observe`) through the server's own apply path, read back with
//! ListAlarms, StreamAlarms and StreamState.

use tokio::sync::oneshot;
use twin_core::time::SECOND;
use twin_core::{Observation, Observed};
use twin_e2e::*;
use twin_proto::v1;
use twin_server::{CommandError, InjectError, Injection, Injector, TwinServer};

/// A training-line server (paused) and a handle that applies commands to its live run.
async fn start() -> (std::net::SocketAddr, Injector, oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    let server = TwinServer::new(config("training-line.ron")).expect("server starts");
    let injector = server.injector();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(server.serve(listener, async move {
        let _ = stopped.await;
    }));
    (addr, injector, stop)
}

async fn observe(injector: &Injector, station: &str, observed: Observed) -> Result<(), CommandError> {
    let command = Injection::Observe(Observation { station: station.into(), observed });
    match injector.apply(command).await.expect("simulation running") {
        Ok(_) => Ok(()),
        Err(InjectError::Command(e)) => Err(e),
        Err(e) => panic!("no durable log here, so no log failure: {e}"),
    }
}

async fn cycles(injector: &Injector, station: &str, seconds: u64, n: usize) {
    for _ in 0..n {
        let observed = Observed::Cycle { duration: seconds * SECOND, product: Some("bracket".into()) };
        observe(injector, station, observed).await.expect("valid cycle");
    }
}

async fn next_event(stream: &mut tonic::Streaming<v1::AlarmEvent>) -> v1::AlarmEvent {
    within("an alarm event", stream.message()).await.expect("stream ok").expect("stream open")
}

/// The next full state frame (the stream asks for full frames only).
async fn full_frame(stream: &mut tonic::Streaming<v1::StateFrame>) -> v1::StateFrame {
    let frame = next_frame(stream).await;
    assert!(frame.full);
    frame
}

/// Frames until `pred` holds (state changes reach the next published snapshot).
async fn frame_where(
    stream: &mut tonic::Streaming<v1::StateFrame>,
    pred: impl Fn(&v1::StateFrame) -> bool,
) -> v1::StateFrame {
    within("a matching frame", async {
        loop {
            let frame = full_frame(stream).await;
            if pred(&frame) {
                return frame;
            }
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alarms_and_sync_status_over_grpc() {
    let (addr, injector, _stop) = start().await;
    let mut client = connect(addr).await;
    let (mill, drill) = (1usize, 2usize);

    let mut alarms = client.stream_alarms(v1::StreamAlarmsRequest {}).await.expect("stream").into_inner();
    let first = next_event(&mut alarms).await;
    assert!(first.full && first.alarms.is_empty() && first.raised == 0, "{first:?}");
    assert_eq!(first.generation, 1);

    let mut frames = client
        .stream_state(v1::StreamStateRequest { rate_hz: 20, full_frames_only: true })
        .await
        .expect("state stream")
        .into_inner();
    let frame = full_frame(&mut frames).await;
    assert!(
        frame.stations.iter().all(|s| s.sync() == v1::SyncStatus::ModelOnly && s.last_observed_us.is_none())
    );
    assert_eq!(frame.alarms.as_ref().map(|a| (a.open, a.raised)), Some((0, 0)));

    // Bad observations are refused by the core and change nothing.
    assert_eq!(
        observe(&injector, "nope", Observed::Live).await,
        Err(CommandError::UnknownStation("nope".into()))
    );
    let widget = Observed::Cycle { duration: SECOND, product: Some("widget".into()) };
    assert_eq!(observe(&injector, "mill", widget).await, Err(CommandError::UnknownProduct("widget".into())));

    // Live, then stale: the stale station keeps its state (it is not marked down).
    observe(&injector, "mill", Observed::Live).await.unwrap();
    observe(&injector, "drill", Observed::Counts { parts_in: 3, parts_out: 2 }).await.unwrap();
    observe(&injector, "drill", Observed::Stale).await.unwrap();
    let frame = frame_where(&mut frames, |f| f.stations[drill].sync() == v1::SyncStatus::Stale).await;
    assert_eq!(frame.stations[mill].sync(), v1::SyncStatus::Live);
    assert_eq!(frame.stations[mill].last_observed_us, Some(0));
    assert_ne!(frame.stations[drill].state(), v1::StationStateKind::Down, "stale is not down");
    assert_eq!(frame.stations[0].sync(), v1::SyncStatus::ModelOnly);

    // Observations apply at the twin's time; a paused twin still shows them.
    client.set_speed(v1::SetSpeedRequest { speed: 1.0, max_speed: true }).await.expect("max speed");
    client.run_to(v1::RunToRequest { sim_time_us: 60 * SECOND }).await.expect("run to 60 s");
    wait_paused(&mut client).await;
    observe(&injector, "mill", Observed::Live).await.unwrap();
    frame_where(&mut frames, |f| f.stations[mill].last_observed_us == Some(60 * SECOND)).await;

    // The mill runs slow (80 s against the model's Tri(55, 65, 85) s): an alarm.
    cycles(&injector, "mill", 80, 40).await;
    let event = next_event(&mut alarms).await;
    assert!(!event.full && event.raised == 1, "{event:?}");
    let alarm = &event.alarms[0];
    assert_eq!((alarm.station_id.as_str(), alarm.station_index as usize), ("mill", mill));
    assert_eq!(alarm.product_id.as_deref(), Some("bracket"));
    assert_eq!(alarm.measure(), v1::AlarmMeasure::CycleTime);
    assert_eq!(alarm.direction(), v1::AlarmDirection::Above);
    assert_eq!(alarm.plant_value, 80.0);
    assert!(
        (alarm.model_value - 205.0 / 3.0).abs() < 1e-6,
        "model mean of Tri(55, 65, 85) s: {}",
        alarm.model_value
    );
    let evidence = alarm.evidence.expect("evidence");
    assert!(evidence.statistic > evidence.threshold && evidence.arl0 == 1e7, "{evidence:?}");
    assert!(evidence.observations >= 2 && evidence.observations <= 40);
    assert_eq!(alarm.cleared_at_us, None);

    let listed = client.list_alarms(v1::ListAlarmsRequest { open_only: true }).await.unwrap().into_inner();
    assert_eq!(listed.alarms, event.alarms);
    assert_eq!((listed.raised, listed.generation), (1, 1));
    let frame = frame_where(&mut frames, |f| f.alarms.as_ref().is_some_and(|a| a.open == 1)).await;
    assert_eq!(frame.alarms.unwrap().open_alarms, event.alarms);
    assert_eq!(frame.stations[mill].open_alarms, 1);
    assert_eq!(frame.stations[drill].open_alarms, 0);

    // Back on model (the mode, 65 s): the alarm clears.
    cycles(&injector, "mill", 65, 60).await;
    let event = next_event(&mut alarms).await;
    assert!(!event.full && event.alarms.len() == 1 && event.alarms[0].id == alarm.id, "{event:?}");
    assert!(event.alarms[0].cleared_at_us.is_some());
    let open = client.list_alarms(v1::ListAlarmsRequest { open_only: true }).await.unwrap().into_inner();
    assert!(open.alarms.is_empty());
    let all = client.list_alarms(v1::ListAlarmsRequest { open_only: false }).await.unwrap().into_inner();
    assert_eq!(all.alarms.len(), 1);

    // A new run starts without alarms or telemetry: a full, empty list.
    client.reset(v1::ResetRequest { seed: None }).await.unwrap();
    let event = next_event(&mut alarms).await;
    assert!(event.full && event.alarms.is_empty() && event.raised == 0 && event.generation == 2, "{event:?}");
    let frame = frame_where(&mut frames, |f| f.layout_generation == 2).await;
    assert!(frame.stations.iter().all(|s| s.sync() == v1::SyncStatus::ModelOnly));
}
