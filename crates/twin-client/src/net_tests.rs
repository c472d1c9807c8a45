//! Tests of the gRPC bridge's Bevy side: events drained into resources, commands out.

use twin_proto::v1::{Station, StationState, StationStateKind};

use super::*;

fn app_with_bridge() -> (App, mpsc::Sender<NetEvent>, mpsc::Receiver<NetCommand>) {
    let (event_tx, event_rx) = mpsc::channel(EVENT_CHANNEL_CAPACITY);
    let (command_tx, command_rx) = mpsc::channel(COMMAND_CHANNEL_CAPACITY);
    let mut app = App::new();
    app.add_plugins(MinimalPlugins);
    let bridge = NetBridge { events: event_rx, commands: command_tx };
    install_bridge(&mut app, bridge, "http://test", LinkStatus::Connecting);
    (app, event_tx, command_rx)
}

fn layout() -> Layout {
    Layout {
        layout_generation: 3,
        stations: vec![
            Station { index: 0, id: "a".into(), ..Default::default() },
            Station { index: 1, id: "b".into(), ..Default::default() },
        ],
        ..Default::default()
    }
}

fn station(index: u32, state: StationStateKind) -> StationState {
    StationState { index, state: state as i32, ..Default::default() }
}

#[test]
fn drained_layout_and_frames_build_the_live_state() {
    let (mut app, events, _commands) = app_with_bridge();
    let full = StateFrame {
        seq: 1,
        full: true,
        layout_generation: 3,
        stations: vec![station(0, StationStateKind::Busy), station(1, StationStateKind::Busy)],
        ..Default::default()
    };
    let delta = StateFrame {
        seq: 2,
        layout_generation: 3,
        stations: vec![station(1, StationStateKind::Blocked)],
        ..Default::default()
    };
    for event in [
        NetEvent::Connected,
        NetEvent::Layout(Box::new(layout())),
        NetEvent::Frame(Box::new(full)),
        NetEvent::Frame(Box::new(delta)),
    ] {
        assert!(events.try_send(event).is_ok(), "channel has room");
    }
    app.update();
    let live = app.world().resource::<LiveState>();
    assert_eq!(live.seq, 2);
    assert_eq!(live.station_state(0), StationStateKind::Busy);
    assert_eq!(live.station_state(1), StationStateKind::Blocked);
    assert_eq!(app.world().resource::<Connection>().status, LinkStatus::Connected);
    let changed = app.world().resource::<Messages<LayoutChanged>>();
    assert_eq!(changed.len(), 1);
}

#[test]
fn identity_says_what_the_role_may_do() {
    let (mut app, events, _commands) = app_with_bridge();
    assert!(app.world().resource::<Access>().allows("BreakDown"), "everything before WhoAmI");
    let who = WhoAmIResponse {
        subject: "student".into(),
        role: Role::Viewer as i32,
        auth_enabled: true,
        allowed_rpcs: vec!["GetLayout".into(), "StreamState".into(), "WhoAmI".into()],
        expires_at_unix_s: None,
    };
    assert!(events.try_send(NetEvent::Identity(Some(who))).is_ok());
    app.update();
    let access = app.world().resource::<Access>();
    assert!(access.allows("StreamState"));
    assert!(!access.allows("BreakDown"));
    assert!(access.denial("BreakDown").contains("student (viewer) may not call BreakDown"));
    assert_eq!(access.signed_in_as().as_deref(), Some("student (viewer)"));
}

#[test]
fn tokens_must_be_ascii() {
    let ok = LinkSecurity { token: Some("abc-123".into()), ..Default::default() };
    assert!(ok.bearer().expect("valid").is_some());
    let bad = LinkSecurity { token: Some("tök\n".into()), ..Default::default() };
    assert!(bad.bearer().is_err());
}

#[test]
fn a_delta_without_base_asks_for_a_resubscribe_once() {
    let (mut app, events, mut commands) = app_with_bridge();
    assert!(events.try_send(NetEvent::Layout(Box::new(layout()))).is_ok());
    for seq in [4, 5] {
        let delta = StateFrame { seq, layout_generation: 3, ..Default::default() };
        assert!(events.try_send(NetEvent::Frame(Box::new(delta))).is_ok());
    }
    app.update();
    assert_eq!(commands.try_recv(), Ok(NetCommand::Resubscribe));
    assert!(commands.try_recv().is_err(), "only one resubscribe per gap");
    assert!(!app.world().resource::<LiveState>().has_frame());
}

#[test]
fn refused_time_travel_and_programme_are_remembered_until_a_new_connection() {
    let (mut app, events, _commands) = app_with_bridge();
    let refused = |what: &str| NetEvent::CommandDone {
        what: what.into(),
        result: Err(CommandError { code: tonic::Code::FailedPrecondition, text: "no --data".into() }),
    };
    let invalid = NetEvent::CommandDone {
        what: "seek".into(),
        result: Err(CommandError { code: tonic::Code::InvalidArgument, text: "after live".into() }),
    };
    let no_nats = CommandError { code: tonic::Code::FailedPrecondition, text: "runs without --nats".into() };
    for event in [invalid, NetEvent::Complexes(Err(no_nats))] {
        assert!(events.try_send(event).is_ok());
    }
    app.update();
    assert_eq!(
        app.world().resource::<ServerFeatures>().time_travel_refused,
        None,
        "a bad time is not a refusal"
    );
    let complexes = app.world().resource::<Complexes>();
    assert_eq!(complexes.unavailable.as_deref(), Some("runs without --nats"));
    assert!(complexes.list.is_none());

    assert!(events.try_send(refused("seek")).is_ok());
    app.update();
    assert_eq!(app.world().resource::<ServerFeatures>().time_travel_refused.as_deref(), Some("no --data"));
    assert!(events.try_send(NetEvent::Connected).is_ok());
    app.update();
    assert_eq!(app.world().resource::<ServerFeatures>().time_travel_refused, None, "new connection");
}

#[test]
fn a_listed_programme_replaces_an_error_and_a_switch_forgets_the_old_server() {
    let (mut app, events, _commands) = app_with_bridge();
    let unreachable = CommandError { code: tonic::Code::Unavailable, text: "NATS down".into() };
    let reply = ListComplexesResponse { self_complex_id: "c01".into(), ..Default::default() };
    assert!(events.try_send(NetEvent::Complexes(Err(unreachable))).is_ok());
    app.update();
    assert_eq!(app.world().resource::<Complexes>().last_error.as_deref(), Some("NATS down"));
    assert!(events.try_send(NetEvent::Complexes(Ok(Box::new(reply)))).is_ok());
    assert!(events.try_send(NetEvent::Layout(Box::new(layout()))).is_ok());
    app.update();
    let complexes = app.world().resource::<Complexes>();
    assert_eq!(complexes.last_error, None);
    assert_eq!(complexes.list.as_ref().map(|(r, _)| r.self_complex_id.as_str()), Some("c01"));
    assert!(app.world().resource::<SiteLayout>().layout.is_some());

    assert!(events.try_send(NetEvent::Switched { server: "http://10.0.0.9:50051".into() }).is_ok());
    app.update();
    assert_eq!(app.world().resource::<Connection>().server, "http://10.0.0.9:50051");
    assert!(app.world().resource::<SiteLayout>().layout.is_none(), "the old layout is dropped");
    assert!(!app.world().resource::<LiveState>().has_frame());
    assert_eq!(app.world().resource::<Messages<ServerSwitched>>().len(), 1);
}

/// The network thread's session loop against a real server is covered by the render
/// test; here the switch itself: a `SwitchServer` during the back-off wait ends it at once.
#[tokio::test]
async fn a_switch_ends_the_wait_between_attempts() {
    let (event_tx, _event_rx) = mpsc::channel(8);
    let (command_tx, mut command_rx) = mpsc::channel(8);
    command_tx.send(NetCommand::Pause).await.expect("queued");
    command_tx.send(NetCommand::SwitchServer { server: "http://other:1".into() }).await.expect("queued");
    let end = tokio::time::timeout(
        Duration::from_secs(5),
        wait_rejecting_commands(Duration::from_secs(3600), &event_tx, &mut command_rx),
    )
    .await
    .expect("the wait ends at once");
    assert!(matches!(end, WaitEnd::Switch(s) if s == "http://other:1"));
}
