//! The Forecast RPC and the periodic forecast over a real socket: progress then one
//! result, the same result as the core's forecast of the same state, INVALID_ARGUMENT
//! naming the field, StateFrame.forecast from `--forecast-every`, and the on-time risk
//! of rush orders placed with a due date.

use std::sync::Arc;
use std::time::Duration;

use tonic::Code;
use twin_core::forecast::{Forecaster, Horizon, Request};
use twin_core::time::{DAY, HOUR};
use twin_core::{Model, Sim};
use twin_e2e::*;
use twin_proto::v1;
use twin_server::forecast::PeriodicForecast;

/// Runs the paused live twin as fast as possible to `t` and waits until it stops there.
async fn run_to(
    client: &mut twin_proto::v1::twin_service_client::TwinServiceClient<tonic::transport::Channel>,
    t: u64,
) {
    client.set_speed(v1::SetSpeedRequest { speed: 0.0, max_speed: true }).await.unwrap();
    client.run_to(v1::RunToRequest { sim_time_us: t }).await.unwrap();
    assert_eq!(wait_paused(client).await.sim_time_us, t);
}

/// Every event of one Forecast stream.
async fn forecast_events(
    client: &mut twin_proto::v1::twin_service_client::TwinServiceClient<tonic::transport::Channel>,
    request: v1::ForecastRequest,
) -> Vec<v1::forecast_event::Event> {
    let mut stream = client.forecast(request).await.expect("forecast accepted").into_inner();
    let mut events = Vec::new();
    while let Some(event) = within("a forecast event", stream.message()).await.expect("stream ok") {
        events.push(event.event.expect("event set"));
    }
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forecast_streams_progress_then_the_cores_result() {
    let server = TestServer::start(config("training-line.ron")).await;
    let mut client = server.client().await;
    run_to(&mut client, DAY).await;

    let request = v1::ForecastRequest { ahead_us: 4 * HOUR, replications: 24, ..Default::default() };
    let events = forecast_events(&mut client, request).await;
    let (last, progress) = events.split_last().expect("events");
    let v1::forecast_event::Event::Result(result) = last else {
        panic!("the last event is the result: {last:?}")
    };
    assert!(!progress.is_empty(), "progress comes before the result");
    let mut done = 0;
    for p in progress {
        let v1::forecast_event::Event::Progress(p) = p else {
            panic!("only progress before the result: {p:?}")
        };
        assert!(p.done >= done && p.done <= 24 && p.total == 24, "{p:?}");
        assert_eq!((p.from_us, p.horizon_us), (DAY, DAY + 4 * HOUR));
        done = p.done;
    }
    assert_eq!((result.from_us, result.horizon_us, result.replications), (DAY, DAY + 4 * HOUR, 24));
    assert!(result.wall_s > 0.0);

    // The server converts only: the result is the core's forecast of the same state.
    let model = Arc::new(Model::load(&scene("training-line.ron")).unwrap());
    let mut sim = Sim::new(Arc::clone(&model), model.seed);
    sim.run_until(DAY);
    let core =
        Forecaster::new(&sim, &Request { horizon: Horizon::Ahead(4 * HOUR), replications: 24, kpis: vec![] })
            .unwrap()
            .run();
    let band = result.parts_finished.expect("parts finished");
    let expected = core.parts_finished.unwrap();
    assert_eq!(
        (band.p10, band.p50, band.p90, band.mean),
        (expected.p10, expected.p50, expected.p90, expected.mean)
    );
    assert_eq!(result.value_added_rate.unwrap().p50, core.value_added_rate.unwrap().p50);
    assert_eq!(result.seed, model.seed);

    // Asked again on the same (paused) state: the same forecast.
    let again = forecast_events(
        &mut client,
        v1::ForecastRequest { ahead_us: 4 * HOUR, replications: 24, ..Default::default() },
    )
    .await;
    let Some(v1::forecast_event::Event::Result(second)) = again.last() else { panic!("result") };
    assert_eq!(
        v1::ForecastResult { wall_s: 0.0, ..second.clone() },
        v1::ForecastResult { wall_s: 0.0, ..result.clone() }
    );

    // Only what was asked for; the end of the shift without calendars is 8 h ahead.
    let events = forecast_events(
        &mut client,
        v1::ForecastRequest {
            replications: 3,
            kpis: vec![v1::ForecastKpi::Wip as i32],
            ..Default::default()
        },
    )
    .await;
    let Some(v1::forecast_event::Event::Result(wip)) = events.last() else { panic!("result") };
    assert_eq!(wip.horizon_us, DAY + 8 * HOUR);
    assert!(wip.wip_end.is_some() && wip.wip_mean.is_some());
    assert!(wip.parts_finished.is_none() && wip.value_added_rate.is_none() && wip.orders.is_empty());
    server.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_forecast_requests_are_invalid_argument_naming_the_field() {
    let server = TestServer::start(config("training-line.ron")).await;
    let mut client = server.client().await;
    run_to(&mut client, HOUR).await;
    let base = v1::ForecastRequest { replications: 10, ..Default::default() };
    for (request, field) in [
        (v1::ForecastRequest { replications: 0, ..base.clone() }, "replications"),
        (v1::ForecastRequest { replications: 1001, ..base.clone() }, "replications"),
        (v1::ForecastRequest { until_us: HOUR, ..base.clone() }, "horizon"),
        (v1::ForecastRequest { until_us: HOUR / 2, ..base.clone() }, "horizon"),
        (v1::ForecastRequest { ahead_us: 8 * DAY, ..base.clone() }, "horizon"),
        (v1::ForecastRequest { ahead_us: HOUR, until_us: 3 * HOUR, ..base.clone() }, "horizon"),
        (v1::ForecastRequest { kpis: vec![0], ..base.clone() }, "kpis"),
        (v1::ForecastRequest { kpis: vec![99], ..base.clone() }, "kpis"),
    ] {
        let status = client.forecast(request.clone()).await.expect_err("refused");
        assert_eq!(status.code(), Code::InvalidArgument, "{request:?}: {status:?}");
        assert!(status.message().starts_with(field), "{request:?}: {}", status.message());
    }
    server.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rush_orders_with_due_dates_show_their_due_time_and_on_time_risk() {
    let server = TestServer::start(config("training-line.ron")).await;
    let mut client = server.client().await;
    run_to(&mut client, DAY + 9 * HOUR).await;
    let rush = |quantity: u32, due_in_us: Option<u64>| v1::AddRushOrderRequest {
        product_id: "bracket".into(),
        quantity,
        due_in_us,
    };
    for bad in [0, 3_650 * DAY + 1] {
        let status = client.add_rush_order(rush(1, Some(bad))).await.expect_err("refused");
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert!(status.message().starts_with("due_in_us"), "{}", status.message());
    }
    let mut ids = Vec::new();
    for (quantity, due_in) in [(3, Some(60_000_000)), (2, Some(20 * HOUR)), (1, Some(10 * DAY)), (1, None)] {
        ids.push(client.add_rush_order(rush(quantity, due_in)).await.expect("placed").into_inner().order_id);
    }
    assert_eq!(ids, ["rush-1", "rush-2", "rush-3", "rush-4"], "refused orders took no id");

    let now = DAY + 9 * HOUR;
    let report =
        client.get_report(v1::GetReportRequest::default()).await.unwrap().into_inner().report.unwrap();
    let due: Vec<Option<u64>> = report.rush_orders.iter().map(|o| o.due_at_us).collect();
    assert_eq!(due, [Some(now + 60_000_000), Some(now + 20 * HOUR), Some(now + 10 * DAY), None]);
    let mut stream = client
        .stream_state(v1::StreamStateRequest { rate_hz: 10, full_frames_only: true })
        .await
        .unwrap()
        .into_inner();
    let frame = within("a full frame", stream.message()).await.unwrap().expect("a frame");
    assert_eq!(frame.rush_orders.iter().map(|o| o.due_at_us).collect::<Vec<_>>(), due);

    let request = v1::ForecastRequest {
        ahead_us: 24 * HOUR,
        replications: 10,
        kpis: vec![v1::ForecastKpi::OnTime as i32],
        ..Default::default()
    };
    let events = forecast_events(&mut client, request).await;
    let Some(v1::forecast_event::Event::Result(result)) = events.last() else { panic!("result") };
    let order = |id: &str| result.orders.iter().find(|o| o.order_id == id).unwrap_or_else(|| panic!("{id}"));
    assert_eq!((order("rush-1").quantity, order("rush-1").on_time_risk), (3, 1.0), "due in a minute");
    assert_eq!((order("rush-2").quantity, order("rush-2").on_time_risk), (2, 0.0), "due in 20 h");
    assert_eq!(order("rush-1").due_at_us, now + 60_000_000);
    assert_eq!(result.orders_beyond_horizon, 1, "rush-3 is due after the horizon; rush-4 has no due date");

    // The server converts only: the core's forecast of the same commands on the same state.
    let model = Arc::new(Model::load(&scene("training-line.ron")).unwrap());
    let mut sim = Sim::new(Arc::clone(&model), model.seed);
    sim.run_until(now);
    for (quantity, due_in) in [(3, 60_000_000), (2, 20 * HOUR), (1, 10 * DAY)] {
        sim.add_rush_order_due_in("bracket", quantity, due_in).unwrap();
    }
    sim.add_rush_order("bracket", 1).unwrap();
    let core = Forecaster::new(
        &sim,
        &Request {
            horizon: Horizon::Ahead(24 * HOUR),
            replications: 10,
            kpis: vec![twin_core::forecast::Kpi::OnTime],
        },
    )
    .unwrap()
    .run();
    let risks: Vec<(String, f64)> = core.orders.iter().map(|o| (o.id.clone(), o.on_time_risk)).collect();
    let wire: Vec<(String, f64)> =
        result.orders.iter().map(|o| (o.order_id.clone(), o.on_time_risk)).collect();
    assert_eq!(wire, risks);
    server.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_periodic_forecast_arrives_in_the_state_stream() {
    let config = twin_server::Config {
        forecast: Some(PeriodicForecast {
            every: Duration::from_millis(100),
            replications: 5,
            ahead: Some(HOUR),
        }),
        ..config("training-line.ron")
    };
    let server = TestServer::start(config).await;
    let mut client = server.client().await;
    run_to(&mut client, 2 * HOUR).await;
    let mut stream = client
        .stream_state(v1::StreamStateRequest { rate_hz: 30, full_frames_only: false })
        .await
        .expect("stream")
        .into_inner();
    let forecast = within("a frame with the forecast of the paused state", async {
        loop {
            let frame = next_frame(&mut stream).await;
            if let Some(f) = frame.forecast
                && f.from_us == 2 * HOUR
            {
                return f;
            }
        }
    })
    .await;
    assert_eq!((forecast.horizon_us, forecast.replications), (3 * HOUR, 5));
    assert!(forecast.parts_finished.is_some() && forecast.orders.is_empty());
    // While the clock stands still no new forecast is made: later deltas leave it out.
    let mut quiet = 0;
    for _ in 0..10 {
        let frame = next_frame(&mut stream).await;
        if !frame.full && frame.forecast.is_none() {
            quiet += 1;
        }
    }
    assert!(quiet >= 8, "deltas repeat an unchanged forecast");
    server.shutdown().await.expect("clean shutdown");
}
