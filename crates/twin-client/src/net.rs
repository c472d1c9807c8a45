//! `NetPlugin`: the gRPC bridge. A dedicated thread runs its own single-threaded tokio
//! runtime with the tonic client; it talks to Bevy only through two bounded channels that
//! Bevy drains once per frame. Neither side can grow memory without bound: when Bevy is
//! slow the bridge stops reading the stream, and the server coalesces frames.

use std::time::Duration;

use bevy::prelude::*;
use tokio::sync::mpsc;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use twin_proto::v1::twin_service_client::TwinServiceClient;
use twin_proto::v1::{
    AddRushOrderRequest, BreakDownRequest, GetLayoutRequest, GetReportRequest, GoLiveRequest, Layout,
    ListComplexesRequest, ListComplexesResponse, PauseRequest, RepairRequest, Report, ResetRequest,
    ResumeRequest, Role, RunToRequest, SeekRequest, SetSpeedRequest, StateFrame, StreamStateRequest,
    WhoAmIRequest, WhoAmIResponse,
};

use crate::model::{LiveState, SiteLayout};
use crate::programme::Complexes;
use crate::timeline::ServerFeatures;

/// Frames per second requested from the server.
const STREAM_RATE_HZ: u32 = 30;
/// Events buffered between the network thread and Bevy.
const EVENT_CHANNEL_CAPACITY: usize = 64;
/// Commands buffered between Bevy and the network thread.
const COMMAND_CHANNEL_CAPACITY: usize = 32;
/// Most network events handled in one Bevy frame, so a burst cannot stall rendering.
const MAX_EVENTS_PER_FRAME: usize = 256;
/// First reconnect delay; doubles after each failure up to `MAX_BACKOFF`.
const INITIAL_BACKOFF: Duration = Duration::from_millis(500);
/// Longest reconnect delay.
const MAX_BACKOFF: Duration = Duration::from_secs(8);
/// TCP connect timeout of one attempt.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Deadline of unary calls (layout, control, report).
const RPC_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the full report (per-station shares) is polled.
const REPORT_PERIOD: Duration = Duration::from_secs(2);
/// How often the programme's complexes are listed (ListComplexes gathers them over NATS).
const PROGRAMME_PERIOD: Duration = Duration::from_secs(5);
/// Largest message accepted; layouts of big complexes exceed tonic's 4 MiB default.
const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// Connects to the twin server and keeps `SiteLayout`, `LiveState`, `LatestReport`,
/// `Connection` and `Access` up to date.
pub struct NetPlugin {
    /// Server URL, e.g. `http://127.0.0.1:50051` or `https://twin.example:50051`.
    pub server: String,
    /// Token and TLS settings.
    pub security: LinkSecurity,
}

/// Credentials and TLS settings of the link (`--token` / `TWIN_TOKEN`, `--ca`,
/// `--client-cert`, `--client-key`).
#[derive(Clone, Debug, Default)]
pub struct LinkSecurity {
    /// Bearer token sent with every call (a static token or a JWT).
    pub token: Option<String>,
    /// CA certificate (PEM) that signed an https:// server's certificate; None trusts
    /// the system's roots.
    pub ca_pem: Option<Vec<u8>>,
    /// Client certificate and key (PEM) for servers that demand one (mutual TLS).
    pub identity: Option<(Vec<u8>, Vec<u8>)>,
}

impl LinkSecurity {
    /// The `authorization` metadata value, checked (tokens travel as ASCII metadata).
    pub fn bearer(&self) -> Result<Option<MetadataValue<Ascii>>, String> {
        let Some(token) = self.token.as_deref().map(str::trim) else { return Ok(None) };
        if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("the token must be printable ASCII without spaces".to_owned());
        }
        format!("Bearer {token}")
            .parse::<MetadataValue<Ascii>>()
            .map(Some)
            .map_err(|_| "the token must be printable ASCII without spaces".to_owned())
    }
}

/// Adds `authorization: Bearer <token>` to every call.
#[derive(Clone)]
struct Bearer(Option<MetadataValue<Ascii>>);

impl Interceptor for Bearer {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request.metadata_mut().insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// A client whose calls carry the token.
type Client = TwinServiceClient<InterceptedService<Channel, Bearer>>;

impl Plugin for NetPlugin {
    fn build(&self, app: &mut App) {
        let (event_tx, event_rx) = mpsc::channel(EVENT_CHANNEL_CAPACITY);
        let (command_tx, command_rx) = mpsc::channel(COMMAND_CHANNEL_CAPACITY);
        let server = self.server.clone();
        let security = self.security.clone();
        let spawned = std::thread::Builder::new()
            .name("twin-net".into())
            .spawn(move || run_network_thread(server, security, event_tx, command_rx));
        let status = match spawned {
            Ok(_) => LinkStatus::Connecting,
            Err(e) => LinkStatus::Failed(format!("cannot start network thread: {e}")),
        };
        let bridge = NetBridge { events: event_rx, commands: command_tx };
        install_bridge(app, bridge, &self.server, status);
    }
}

/// Installs the same resources and messages as [`NetPlugin`] (`SiteLayout`, `LiveState`,
/// `LatestReport`, `Connection`, `LayoutChanged`, the bridge the HUD sends commands to) but
/// starts no network thread: nothing ever arrives and commands go nowhere. Whoever adds it
/// fills `SiteLayout` / `LiveState` itself. Used by the render benchmark
/// (`examples/render_stress.rs`); the product always uses [`NetPlugin`].
pub struct OfflinePlugin {
    /// Shown in the HUD's connection line instead of a server address.
    pub label: String,
}

impl Plugin for OfflinePlugin {
    fn build(&self, app: &mut App) {
        // The other ends are dropped at once: `try_recv` reports a closed channel (no
        // events) and `send` returns false.
        let (_, event_rx) = mpsc::channel(1);
        let (command_tx, _) = mpsc::channel(1);
        let bridge = NetBridge { events: event_rx, commands: command_tx };
        let status = LinkStatus::Failed("offline: no server (synthetic state)".to_owned());
        install_bridge(app, bridge, &self.label, status);
    }
}

/// Inserts the bridge and everything fed by it (also used by tests, without a thread).
fn install_bridge(app: &mut App, bridge: NetBridge, server: &str, status: LinkStatus) {
    app.insert_resource(bridge)
        .insert_resource(Connection { server: server.to_owned(), status, ..default() })
        .init_resource::<SiteLayout>()
        .init_resource::<LiveState>()
        .init_resource::<LatestReport>()
        .init_resource::<Access>()
        .init_resource::<ServerFeatures>()
        .init_resource::<Complexes>()
        .add_message::<LayoutChanged>()
        .add_message::<ServerSwitched>()
        .add_systems(PreUpdate, drain_net_events);
}

/// A command from the UI to the server.
#[derive(Debug, Clone, PartialEq)]
pub enum NetCommand {
    /// Stop the clock.
    Pause,
    /// Restart the clock.
    Resume,
    /// Change the speed; `max_speed` asks for as fast as possible.
    SetSpeed { speed: f64, max_speed: bool },
    /// Run to a simulation time, microseconds.
    RunTo { sim_time_us: u64 },
    /// Restart the scene, optionally with a new seed.
    Reset { seed: Option<u64> },
    /// Break a station down until repaired.
    BreakDown { station_id: String },
    /// Repair a station.
    Repair { station_id: String },
    /// Release a rush order.
    AddRushOrder { product_id: String, quantity: u32 },
    /// Drop the state stream and subscribe again (the server restarts with a full frame).
    Resubscribe,
    /// Show the run as it was at a simulated time, microseconds (time travel).
    Seek { sim_time_us: u64 },
    /// Show the live run again.
    GoLive,
    /// Leave this server and connect to another one (a complex of the programme).
    SwitchServer { server: String },
}

/// What the network thread reports to Bevy.
enum NetEvent {
    Connecting {
        attempt: u32,
    },
    Connected,
    /// Who the server takes us to be; None for a server without WhoAmI.
    Identity(Option<WhoAmIResponse>),
    Layout(Box<Layout>),
    Frame(Box<StateFrame>),
    Report(Box<Report>),
    Disconnected {
        reason: String,
        retry_in: Duration,
    },
    CommandDone {
        what: String,
        result: Result<(), CommandError>,
    },
    /// The outcome of a ListComplexes call.
    Complexes(Result<Box<ListComplexesResponse>, CommandError>),
    /// The thread left its server for this one (`NetCommand::SwitchServer`).
    Switched {
        server: String,
    },
}

/// Why a call failed: its status code (the UI tells "not on this server" from "not now")
/// and a one-line text.
#[derive(Debug, Clone, PartialEq)]
struct CommandError {
    code: tonic::Code,
    text: String,
}

impl CommandError {
    fn from_status(status: &tonic::Status) -> Self {
        Self { code: status.code(), text: status_text(status) }
    }

    /// True when the server does not offer the call at all (as opposed to a bad moment
    /// or bad arguments).
    fn not_offered(&self) -> bool {
        matches!(self.code, tonic::Code::FailedPrecondition | tonic::Code::Unimplemented)
    }
}

/// Bevy's ends of the two channels.
#[derive(Resource)]
pub struct NetBridge {
    /// Events from the network thread, drained each frame.
    events: mpsc::Receiver<NetEvent>,
    /// Commands to the network thread.
    commands: mpsc::Sender<NetCommand>,
}

impl NetBridge {
    /// Queues a command without blocking; false when the queue is full or the network
    /// thread is gone (the HUD reports it).
    pub fn send(&self, command: NetCommand) -> bool {
        self.commands.try_send(command).is_ok()
    }

    /// A bridge whose commands go to `commands` and from which no event ever arrives,
    /// for tests of systems that send commands.
    #[cfg(test)]
    pub(crate) fn for_tests(commands: mpsc::Sender<NetCommand>) -> Self {
        let (_, events) = mpsc::channel(1);
        Self { events, commands }
    }
}

/// Link state shown in the HUD.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum LinkStatus {
    /// Trying to connect.
    #[default]
    Connecting,
    /// Connected and streaming.
    Connected,
    /// Lost or refused; retrying after a delay.
    Retrying { reason: String, retry_in: Duration },
    /// The network thread could not start; nothing will ever arrive.
    Failed(String),
}

/// Connection state for the HUD and the screenshot mode.
#[derive(Resource, Default)]
pub struct Connection {
    /// Server URL.
    pub server: String,
    /// Current link state.
    pub status: LinkStatus,
    /// Connection attempts so far.
    pub attempts: u32,
    /// Outcome of the last command, for the HUD's status line.
    pub last_command: Option<String>,
    /// Whether a resubscribe was requested and no full frame has arrived since.
    awaiting_full: bool,
}

/// The last report polled from the server (per-station state shares).
#[derive(Resource, Default)]
pub struct LatestReport {
    /// `None` until the first successful `GetReport`.
    pub report: Option<Report>,
}

/// What the caller may do, from WhoAmI: the HUD disables the controls of RPCs the role may
/// not call, with a hover text saying why.
#[derive(Resource, Default, Debug, Clone)]
pub struct Access {
    /// None until WhoAmI answered, or for a server without it: everything is offered
    /// (the server still decides).
    pub who: Option<WhoAmIResponse>,
}

impl Access {
    /// Whether the caller's role may call `rpc` (e.g. "BreakDown").
    pub fn allows(&self, rpc: &str) -> bool {
        self.who.as_ref().is_none_or(|w| w.allowed_rpcs.iter().any(|r| r == rpc))
    }

    /// Hover text of a control the caller may not use.
    pub fn denial(&self, rpc: &str) -> String {
        match &self.who {
            Some(w) => format!(
                "{} ({}) may not call {rpc}: ask for a token with a higher role",
                w.subject,
                role_name(w.role())
            ),
            None => String::new(),
        }
    }

    /// "student (viewer)", or None without authentication or before WhoAmI answered.
    pub fn signed_in_as(&self) -> Option<String> {
        self.who
            .as_ref()
            .filter(|w| w.auth_enabled)
            .map(|w| format!("{} ({})", w.subject, role_name(w.role())))
    }
}

/// Sent when the client switched to another server; views of the old one are cleared.
#[derive(Message, Debug, Clone)]
pub struct ServerSwitched {
    /// The new server's URL.
    pub server: String,
}

/// Wall-clock now, ms since the Unix epoch (0 if the clock is before it).
pub fn unix_ms_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Lower-case name of a role.
pub fn role_name(role: Role) -> &'static str {
    match role {
        Role::Unspecified => "no role",
        Role::Viewer => "viewer",
        Role::Operator => "operator",
        Role::Planner => "planner",
        Role::Admin => "admin",
    }
}

/// Sent when a new layout was installed; the site is rebuilt from it.
#[derive(Message, Debug, Clone, Copy)]
pub struct LayoutChanged;

/// The resources `drain_net_events` keeps up to date besides the world itself.
#[derive(bevy::ecs::system::SystemParam)]
struct ServerViews<'w> {
    report: ResMut<'w, LatestReport>,
    access: ResMut<'w, Access>,
    features: ResMut<'w, ServerFeatures>,
    complexes: ResMut<'w, Complexes>,
}

/// Applies everything the network thread sent since the last frame.
fn drain_net_events(
    mut bridge: ResMut<NetBridge>,
    mut connection: ResMut<Connection>,
    mut site: ResMut<SiteLayout>,
    mut live: ResMut<LiveState>,
    mut views: ServerViews,
    mut layout_changed: MessageWriter<LayoutChanged>,
    mut switched: MessageWriter<ServerSwitched>,
) {
    for _ in 0..MAX_EVENTS_PER_FRAME {
        let Ok(event) = bridge.events.try_recv() else {
            break;
        };
        match event {
            NetEvent::Connecting { attempt } => {
                connection.attempts = attempt;
                connection.status = LinkStatus::Connecting;
            }
            NetEvent::Connected => {
                connection.status = LinkStatus::Connected;
                *views.features = ServerFeatures::default();
            }
            NetEvent::Identity(who) => views.access.who = who,
            NetEvent::Layout(layout) => {
                live.reset_for(&layout);
                site.layout = Some(*layout);
                connection.awaiting_full = false;
                layout_changed.write(LayoutChanged);
            }
            NetEvent::Frame(frame) => match live.apply_frame(&frame, site.generation()) {
                Ok(()) => {
                    if frame.full {
                        connection.awaiting_full = false;
                    }
                }
                Err(e) => {
                    if !connection.awaiting_full {
                        warn!("dropping state frame: {e}; resubscribing");
                        connection.awaiting_full = bridge.send(NetCommand::Resubscribe);
                    }
                }
            },
            NetEvent::Report(r) => views.report.report = Some(*r),
            NetEvent::Disconnected { reason, retry_in } => {
                connection.status = LinkStatus::Retrying { reason, retry_in };
            }
            NetEvent::CommandDone { what, result } => {
                if let Err(e) = &result
                    && e.not_offered()
                    && matches!(what.as_str(), "seek" | "go live")
                {
                    views.features.time_travel_refused = Some(e.text.clone());
                }
                connection.last_command = Some(match result {
                    Ok(()) => format!("{what}: ok"),
                    Err(e) => format!("{what} failed: {}", e.text),
                });
            }
            NetEvent::Complexes(Ok(reply)) => {
                views.complexes.list = Some((*reply, unix_ms_now()));
                views.complexes.unavailable = None;
                views.complexes.last_error = None;
            }
            NetEvent::Complexes(Err(e)) if e.not_offered() => {
                views.complexes.list = None;
                views.complexes.unavailable = Some(e.text);
            }
            NetEvent::Complexes(Err(e)) => views.complexes.last_error = Some(e.text),
            NetEvent::Switched { server } => {
                // Forget the old server's world; the new one's layout and frames follow.
                connection.server.clone_from(&server);
                connection.attempts = 0;
                connection.awaiting_full = false;
                site.layout = None;
                live.seq = 0;
                views.report.report = None;
                views.access.who = None;
                *views.features = ServerFeatures::default();
                switched.write(ServerSwitched { server });
            }
        }
    }
}

/// Body of the network thread: its own tokio runtime, reconnecting forever until Bevy
/// drops its ends of the channels.
fn run_network_thread(
    server: String,
    security: LinkSecurity,
    events: mpsc::Sender<NetEvent>,
    commands: mpsc::Receiver<NetCommand>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            let _ = events.blocking_send(NetEvent::Disconnected {
                reason: format!("cannot start tokio runtime: {e}"),
                retry_in: Duration::MAX,
            });
            return;
        }
    };
    runtime.block_on(reconnect_forever(server, security, events, commands));
}

/// How a session ended without an error.
enum SessionEnd {
    /// Bevy dropped its channel ends: the app is shutting down.
    AppGone,
    /// The user chose another server.
    Switch(String),
}

/// How a wait between attempts ended.
enum WaitEnd {
    /// The delay passed: try again.
    Elapsed,
    /// Bevy dropped its channel ends.
    AppGone,
    /// The user chose another server meanwhile.
    Switch(String),
}

async fn reconnect_forever(
    mut server: String,
    security: LinkSecurity,
    events: mpsc::Sender<NetEvent>,
    mut commands: mpsc::Receiver<NetCommand>,
) {
    let mut backoff = INITIAL_BACKOFF;
    let mut attempt = 0u32;
    loop {
        attempt = attempt.saturating_add(1);
        if events.send(NetEvent::Connecting { attempt }).await.is_err() {
            return;
        }
        let mut streamed = false;
        let reason = match session(&server, &security, &events, &mut commands, &mut streamed).await {
            Ok(SessionEnd::AppGone) => return,
            Ok(SessionEnd::Switch(next)) => {
                if !switch_to(&mut server, next, &events).await {
                    return;
                }
                (backoff, attempt) = (INITIAL_BACKOFF, 0);
                continue;
            }
            Err(e) => e,
        };
        if streamed {
            // A session that got as far as streaming proves the server is back: retry fast.
            backoff = INITIAL_BACKOFF;
        }
        let retry_in = backoff;
        if events.send(NetEvent::Disconnected { reason, retry_in }).await.is_err() {
            return;
        }
        match wait_rejecting_commands(retry_in, &events, &mut commands).await {
            WaitEnd::Elapsed => backoff = (backoff * 2).min(MAX_BACKOFF),
            WaitEnd::AppGone => return,
            WaitEnd::Switch(next) => {
                if !switch_to(&mut server, next, &events).await {
                    return;
                }
                (backoff, attempt) = (INITIAL_BACKOFF, 0);
            }
        }
    }
}

/// Makes `next` the server to connect to and tells Bevy. False when the app is gone.
async fn switch_to(server: &mut String, next: String, events: &mpsc::Sender<NetEvent>) -> bool {
    info!("switching from {server} to {next}");
    server.clone_from(&next);
    events.send(NetEvent::Switched { server: next }).await.is_ok()
}

/// Sleeps for `delay`, answering commands with "not connected"; a switch to another
/// server ends the wait at once.
async fn wait_rejecting_commands(
    delay: Duration,
    events: &mpsc::Sender<NetEvent>,
    commands: &mut mpsc::Receiver<NetCommand>,
) -> WaitEnd {
    let sleep = tokio::time::sleep(delay);
    tokio::pin!(sleep);
    loop {
        tokio::select! {
            () = &mut sleep => return WaitEnd::Elapsed,
            command = commands.recv() => {
                let Some(command) = command else { return WaitEnd::AppGone };
                match command {
                    NetCommand::SwitchServer { server } => return WaitEnd::Switch(server),
                    NetCommand::Resubscribe => {}
                    command => {
                        let done = NetEvent::CommandDone {
                            what: command_name(&command).to_owned(),
                            result: Err(CommandError {
                                code: tonic::Code::Unavailable,
                                text: "not connected".into(),
                            }),
                        };
                        if events.send(done).await.is_err() {
                            return WaitEnd::AppGone;
                        }
                    }
                }
            }
        }
    }
}

/// One connection: layout, state stream, report polling and commands until an error.
async fn session(
    server: &str,
    security: &LinkSecurity,
    events: &mpsc::Sender<NetEvent>,
    commands: &mut mpsc::Receiver<NetCommand>,
    streamed: &mut bool,
) -> Result<SessionEnd, String> {
    let mut endpoint = Endpoint::from_shared(server.to_owned())
        .map_err(|e| format!("bad server URL {server:?}: {e}"))?
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true);
    if server.starts_with("https://") {
        let mut tls = ClientTlsConfig::new();
        tls = match &security.ca_pem {
            Some(ca) => tls.ca_certificate(Certificate::from_pem(ca)),
            None => tls.with_native_roots(),
        };
        if let Some((cert, key)) = &security.identity {
            tls = tls.identity(Identity::from_pem(cert, key));
        }
        endpoint = endpoint.tls_config(tls).map_err(|e| format!("TLS settings: {}", error_chain(&e)))?;
    }
    let channel = endpoint.connect().await.map_err(|e| format!("connect {server}: {}", error_chain(&e)))?;
    let mut client: Client = TwinServiceClient::with_interceptor(channel, Bearer(security.bearer()?))
        .max_decoding_message_size(MAX_MESSAGE_BYTES);
    if events.send(NetEvent::Connected).await.is_err() {
        return Ok(SessionEnd::AppGone);
    }
    // Who are we? Servers before WhoAmI answer UNIMPLEMENTED: offer everything then.
    let who = match unary(client.who_am_i(timed(WhoAmIRequest {}))).await {
        Ok(who) => Some(who),
        Err(status) if status.code() == tonic::Code::Unimplemented => None,
        Err(status) if status.code() == tonic::Code::Unauthenticated => {
            return Err(format!("not signed in: {} (pass --token or set TWIN_TOKEN)", status.message()));
        }
        Err(status) => return Err(format!("WhoAmI: {}", status_text(&status))),
    };
    if events.send(NetEvent::Identity(who)).await.is_err() {
        return Ok(SessionEnd::AppGone);
    }

    let mut generation = match fetch_layout(&mut client, events).await? {
        Some(generation) => generation,
        None => return Ok(SessionEnd::AppGone),
    };
    let mut stream = subscribe(&mut client).await?;
    *streamed = true;
    let mut report_tick = tokio::time::interval(REPORT_PERIOD);
    report_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut reports_supported = true;
    let mut programme_tick = tokio::time::interval(PROGRAMME_PERIOD);
    programme_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut programme_offered = true;

    loop {
        tokio::select! {
            message = stream.message() => {
                let frame = match message {
                    Ok(Some(frame)) => frame,
                    Ok(None) => return Err("server ended the state stream".into()),
                    Err(status) => return Err(format!("state stream: {}", status_text(&status))),
                };
                if frame.layout_generation != generation {
                    // Indices in this frame refer to a new layout: fetch it first so Bevy
                    // always sees the layout before frames that use it.
                    generation = match fetch_layout(&mut client, events).await? {
                        Some(generation) => generation,
                        None => return Ok(SessionEnd::AppGone),
                    };
                }
                if events.send(NetEvent::Frame(Box::new(frame))).await.is_err() {
                    return Ok(SessionEnd::AppGone);
                }
            }
            command = commands.recv() => {
                match command {
                    None => return Ok(SessionEnd::AppGone),
                    Some(NetCommand::Resubscribe) => stream = subscribe(&mut client).await?,
                    Some(NetCommand::SwitchServer { server }) => return Ok(SessionEnd::Switch(server)),
                    Some(command) => {
                        tokio::spawn(execute(client.clone(), command, events.clone()));
                    }
                }
            }
            _ = report_tick.tick(), if reports_supported => {
                match unary(client.get_report(timed(GetReportRequest { omit_json: true }))).await {
                    Ok(reply) => {
                        if let Some(report) = reply.report
                            && events.send(NetEvent::Report(Box::new(report))).await.is_err()
                        {
                            return Ok(SessionEnd::AppGone);
                        }
                    }
                    Err(status) if status.code() == tonic::Code::Unimplemented => {
                        reports_supported = false;
                    }
                    Err(status) => debug!("GetReport: {}", status_text(&status)),
                }
            }
            _ = programme_tick.tick(), if programme_offered => {
                let reply = unary(client.list_complexes(timed(ListComplexesRequest {}))).await;
                let reply = reply.map(Box::new).map_err(|s| CommandError::from_status(&s));
                // A server without --nats says so once per session; it is not asked again.
                programme_offered = !matches!(&reply, Err(e) if e.not_offered());
                if events.send(NetEvent::Complexes(reply)).await.is_err() {
                    return Ok(SessionEnd::AppGone);
                }
            }
        }
    }
}

/// Fetches the layout and forwards it; returns its generation, or `None` if Bevy is gone.
async fn fetch_layout(client: &mut Client, events: &mpsc::Sender<NetEvent>) -> Result<Option<u64>, String> {
    let reply = unary(client.get_layout(timed(GetLayoutRequest {})))
        .await
        .map_err(|s| format!("GetLayout: {}", status_text(&s)))?;
    let layout = reply.layout.ok_or("GetLayout: reply without a layout")?;
    let generation = layout.layout_generation;
    Ok(events.send(NetEvent::Layout(Box::new(layout))).await.ok().map(|()| generation))
}

async fn subscribe(client: &mut Client) -> Result<tonic::codec::Streaming<StateFrame>, String> {
    let request = StreamStateRequest { rate_hz: STREAM_RATE_HZ, full_frames_only: false };
    client
        .stream_state(request)
        .await
        .map(tonic::Response::into_inner)
        .map_err(|s| format!("StreamState: {}", status_text(&s)))
}

/// Runs one control or injection call and reports its outcome.
async fn execute(mut client: Client, command: NetCommand, events: mpsc::Sender<NetEvent>) {
    let what = command_name(&command).to_owned();
    let result = match command {
        NetCommand::Pause => unary(client.pause(timed(PauseRequest {}))).await.map(drop),
        NetCommand::Resume => unary(client.resume(timed(ResumeRequest {}))).await.map(drop),
        NetCommand::SetSpeed { speed, max_speed } => {
            unary(client.set_speed(timed(SetSpeedRequest { speed, max_speed }))).await.map(drop)
        }
        NetCommand::RunTo { sim_time_us } => {
            unary(client.run_to(timed(RunToRequest { sim_time_us }))).await.map(drop)
        }
        NetCommand::Reset { seed } => unary(client.reset(timed(ResetRequest { seed }))).await.map(drop),
        NetCommand::BreakDown { station_id } => {
            let request = BreakDownRequest { station_id, duration_us: None };
            unary(client.break_down(timed(request))).await.map(drop)
        }
        NetCommand::Repair { station_id } => {
            unary(client.repair(timed(RepairRequest { station_id }))).await.map(drop)
        }
        NetCommand::AddRushOrder { product_id, quantity } => {
            let request = AddRushOrderRequest { product_id, quantity, due_in_us: None };
            unary(client.add_rush_order(timed(request))).await.map(drop)
        }
        NetCommand::Seek { sim_time_us } => {
            unary(client.seek(timed(SeekRequest { sim_time_us }))).await.map(drop)
        }
        NetCommand::GoLive => unary(client.go_live(timed(GoLiveRequest {}))).await.map(drop),
        NetCommand::Resubscribe | NetCommand::SwitchServer { .. } => Ok(()),
    };
    let result = result.map_err(|s| CommandError::from_status(&s));
    let _ = events.send(NetEvent::CommandDone { what, result }).await;
}

fn command_name(command: &NetCommand) -> &'static str {
    match command {
        NetCommand::Pause => "pause",
        NetCommand::Resume => "resume",
        NetCommand::SetSpeed { .. } => "set speed",
        NetCommand::RunTo { .. } => "run to",
        NetCommand::Reset { .. } => "reset",
        NetCommand::BreakDown { .. } => "break down",
        NetCommand::Repair { .. } => "repair",
        NetCommand::AddRushOrder { .. } => "rush order",
        NetCommand::Resubscribe => "resubscribe",
        NetCommand::Seek { .. } => "seek",
        NetCommand::GoLive => "go live",
        NetCommand::SwitchServer { .. } => "switch server",
    }
}

/// Wraps a message in a request with the unary deadline.
fn timed<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(RPC_TIMEOUT);
    request
}

async fn unary<T>(
    call: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) -> Result<T, tonic::Status> {
    call.await.map(tonic::Response::into_inner)
}

fn status_text(status: &tonic::Status) -> String {
    if status.message().is_empty() {
        format!("{:?}", status.code())
    } else {
        format!("{:?}: {}", status.code(), status.message())
    }
}

/// Joins an error with its sources ("transport error: connection refused").
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        // hyper and tonic often repeat their source's text in their own message.
        let part = e.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = e.source();
    }
    text
}

#[cfg(test)]
#[path = "net_tests.rs"]
mod tests;
