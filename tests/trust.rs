//! Trust end to end: roles on every RPC over a real socket (table-driven: every RPC with
//! every role), JWTs, malformed metadata, methods outside the role table, the audit log
//! (through ListAudit and through `twin audit` reading the file while the server runs),
//! TLS and mutual TLS, and the `twin serve` binary's refusals.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tonic::service::interceptor::InterceptedService;
use tonic::{Code, Status};
use twin_e2e::trust::*;
use twin_e2e::*;
use twin_proto::v1;
use twin_server::audit::{AuditConfig, Retention};
use twin_server::auth::{AuthConfig, RPCS, Role};
use twin_server::tls::TlsFiles;
use twin_server::{Config, TrustConfig};

/// A paused training line with static tokens, HS256 JWTs and an audit log in `dir`.
fn secured(dir: &Path) -> Config {
    Config {
        trust: TrustConfig {
            auth: AuthConfig {
                token_file: Some(write_token_file(dir)),
                jwt_secret_file: Some(write_jwt_secret(dir)),
                jwt_ed25519_public_key: None,
            },
            audit: Some(AuditConfig { path: dir.join("data/audit.redb"), retention: Retention::default() }),
            ..TrustConfig::default()
        },
        ..config("training-line.ron")
    }
}

/// Calls `rpc` with a request that passes validation or fails it harmlessly (unknown
/// ids, empty names), so that what the test sees is the gate's verdict.
async fn call(client: &mut AuthedClient, rpc: &str) -> Result<(), Status> {
    fn done<T>(r: Result<tonic::Response<T>, Status>) -> Result<(), Status> {
        r.map(|_| ())
    }
    match rpc {
        "GetLayout" => done(client.get_layout(v1::GetLayoutRequest {}).await),
        "StreamState" => {
            let mut stream = client
                .stream_state(v1::StreamStateRequest { rate_hz: 10, full_frames_only: true })
                .await?
                .into_inner();
            within("a frame", stream.message()).await.map(|_| ())
        }
        "Pause" => done(client.pause(v1::PauseRequest {}).await),
        "Resume" => {
            let r = done(client.resume(v1::ResumeRequest {}).await);
            // Keep the clock stopped for the other calls.
            if r.is_ok() {
                client.pause(v1::PauseRequest {}).await?;
            }
            r
        }
        "SetSpeed" => done(client.set_speed(v1::SetSpeedRequest { speed: 60.0, max_speed: false }).await),
        "RunTo" => done(client.run_to(v1::RunToRequest { sim_time_us: 0 }).await),
        "Reset" => done(client.reset(v1::ResetRequest { seed: None }).await),
        "BreakDown" => done(
            client
                .break_down(v1::BreakDownRequest { station_id: "no-such-station".into(), duration_us: None })
                .await,
        ),
        "Repair" => done(client.repair(v1::RepairRequest { station_id: "no-such-station".into() }).await),
        "AddRushOrder" => done(
            client
                .add_rush_order(v1::AddRushOrderRequest {
                    product_id: "no-such-product".into(),
                    quantity: 1,
                    due_in_us: None,
                })
                .await,
        ),
        "SetParameter" => done(client.set_parameter(v1::SetParameterRequest { parameter: None }).await),
        "GetReport" => done(client.get_report(v1::GetReportRequest { omit_json: true }).await),
        "ListAlarms" => done(client.list_alarms(v1::ListAlarmsRequest { open_only: false }).await),
        "StreamAlarms" => {
            let mut stream = client.stream_alarms(v1::StreamAlarmsRequest {}).await?.into_inner();
            within("an alarm event", stream.message()).await.map(|_| ())
        }
        "ListScenes" => done(client.list_scenes(v1::ListScenesRequest {}).await),
        "LoadScene" => {
            done(client.load_scene(v1::LoadSceneRequest { name: String::new(), seed: None }).await)
        }
        "StartExperiment" => done(
            client
                .start_experiment(v1::StartExperimentRequest {
                    experiment: "not an experiment".into(),
                    file_name: "bad.ron".into(),
                    jobs: 1,
                })
                .await,
        ),
        "CancelExperiment" => done(
            client.cancel_experiment(v1::CancelExperimentRequest { experiment_id: "exp-none".into() }).await,
        ),
        "WhoAmI" => done(client.who_am_i(v1::WhoAmIRequest {}).await),
        "ListAudit" => {
            done(client.list_audit(v1::ListAuditRequest { page_size: 1, page_token: String::new() }).await)
        }
        // Zero replications: INVALID_ARGUMENT from the handler, no work started.
        "Forecast" => {
            done(client.forecast(v1::ForecastRequest { replications: 0, ..Default::default() }).await)
        }
        "Ingest" => {
            // This server keeps no telemetry log: FAILED_PRECONDITION once past the gate.
            let batch =
                v1::IngestBatch { source_id: "trust".into(), plant_epoch_unix_ms: 1, messages: vec![] };
            let mut acks = client.ingest(tokio_stream::iter(vec![batch])).await?.into_inner();
            within("an ingest answer", acks.message()).await.map(|_| ())
        }
        "GetIngestStatus" => done(client.get_ingest_status(v1::GetIngestStatusRequest {}).await),
        // This server runs without --nats: FAILED_PRECONDITION once past the gate.
        "ListComplexes" => done(client.list_complexes(v1::ListComplexesRequest {}).await),
        // A time far after the live one: INVALID_ARGUMENT from the handler, nothing replayed.
        "Seek" => done(client.seek(v1::SeekRequest { sim_time_us: u64::MAX / 2 }).await),
        // Already live: idempotent, changes nothing.
        "GoLive" => done(client.go_live(v1::GoLiveRequest {}).await),
        "ListCheckpoints" => done(client.list_checkpoints(v1::ListCheckpointsRequest {}).await),
        other => panic!("the trust test has no call for `{other}`: add one when adding an RPC"),
    }
}

fn is_gate_verdict(code: Code) -> bool {
    matches!(code, Code::Unauthenticated | Code::PermissionDenied)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rpc_with_every_role_over_a_real_socket() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = TestServer::start(secured(dir.path())).await;
    let channel = server.channel().await;

    // No token: every RPC is UNAUTHENTICATED.
    let mut anonymous = authed(channel.clone(), None);
    for rpc in RPCS {
        let status = call(&mut anonymous, rpc.name).await.expect_err(rpc.name);
        assert_eq!(status.code(), Code::Unauthenticated, "{} without a token: {status:?}", rpc.name);
    }
    // Each role: allowed RPCs pass the gate (whatever the handler then says), the others
    // are PERMISSION_DENIED naming the role needed.
    let mut n_checked = 0;
    for role in Role::ALL {
        let mut client = authed(channel.clone(), Some(token(role)));
        for rpc in RPCS {
            let result = call(&mut client, rpc.name).await;
            if role >= rpc.role {
                if let Err(status) = &result {
                    assert!(!is_gate_verdict(status.code()), "{role} may call {}: {status:?}", rpc.name);
                }
            } else {
                let status = result.expect_err(rpc.name);
                assert_eq!(status.code(), Code::PermissionDenied, "{role} calling {}", rpc.name);
                assert!(
                    status.message().contains(&format!("needs the {} role", rpc.role)),
                    "message names the role needed: {}",
                    status.message()
                );
            }
            n_checked += 1;
        }
        // WhoAmI tells the client what it may do.
        let me = client.who_am_i(v1::WhoAmIRequest {}).await.expect("who am i").into_inner();
        assert_eq!(me.subject, subject(role));
        assert_eq!(me.role(), role.to_proto());
        assert!(me.auth_enabled);
        let allowed: Vec<&str> = RPCS.iter().filter(|r| r.role <= role).map(|r| r.name).collect();
        assert_eq!(me.allowed_rpcs, allowed);
    }
    assert_eq!(n_checked, 4 * RPCS.len());
    server.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn methods_missing_from_the_role_table_are_denied_over_the_wire() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = TestServer::start(secured(dir.path())).await;
    for (token, expected) in
        [(Some(token(Role::Admin)), Code::PermissionDenied), (None, Code::Unauthenticated)]
    {
        let channel = InterceptedService::new(server.channel().await, Bearer::new(token));
        let mut grpc = tonic::client::Grpc::new(channel);
        grpc.ready().await.expect("ready");
        let codec = tonic_prost::ProstCodec::<v1::GetLayoutRequest, v1::GetLayoutResponse>::default();
        // A future RPC the table does not list yet (here: one the server does not even have).
        let path = tonic::codegen::http::uri::PathAndQuery::from_static("/twin.v1.TwinService/NotInTheTable");
        let status =
            grpc.unary(tonic::Request::new(v1::GetLayoutRequest {}), path, codec).await.expect_err("denied");
        assert_eq!(status.code(), expected, "{status:?}");
        if expected == Code::PermissionDenied {
            assert!(status.message().contains("denied by default"), "{}", status.message());
        }
    }
    // Without authentication too (loopback server, anonymous admin): still closed.
    let open = TestServer::start(config("training-line.ron")).await;
    let mut grpc = tonic::client::Grpc::new(open.channel().await);
    grpc.ready().await.expect("ready");
    let codec = tonic_prost::ProstCodec::<v1::GetLayoutRequest, v1::GetLayoutResponse>::default();
    let path = tonic::codegen::http::uri::PathAndQuery::from_static("/twin.v1.TwinService/StartIngest");
    let status =
        grpc.unary(tonic::Request::new(v1::GetLayoutRequest {}), path, codec).await.expect_err("denied");
    assert_eq!(status.code(), Code::PermissionDenied);
    open.shutdown().await.expect("clean shutdown");
    server.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwts_carry_roles_and_expired_or_forged_ones_are_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (private_pem, public_pem) = ed25519_keys();
    let public = dir.path().join("ed25519.pub.pem");
    std::fs::write(&public, &public_pem).expect("write key");
    let mut config = secured(dir.path());
    config.trust.auth.jwt_ed25519_public_key = Some(public);
    let server = TestServer::start(config).await;
    let channel = server.channel().await;
    let hour = unix_now() + 3600;

    // HS256 and EdDSA tokens with a role claim work like static tokens of that role.
    let planner = hs256_jwt(JWT_SECRET.as_bytes(), "alice", "planner", hour);
    let mut client = authed(channel.clone(), Some(&planner));
    let me = client.who_am_i(v1::WhoAmIRequest {}).await.expect("who am i").into_inner();
    assert_eq!((me.subject.as_str(), me.role()), ("alice", v1::Role::Planner));
    assert_eq!(me.expires_at_unix_s, Some(hour));
    let denied = client
        .load_scene(v1::LoadSceneRequest { name: "x".into(), seed: None })
        .await
        .expect_err("admin only");
    assert_eq!(denied.code(), Code::PermissionDenied);
    assert!(denied.message().contains("admin"), "{}", denied.message());

    let operator = eddsa_jwt(&private_pem, "bob", "Operator", hour);
    let mut client = authed(channel.clone(), Some(&operator));
    client.pause(v1::PauseRequest {}).await.expect("operators pause");
    let me = client.who_am_i(v1::WhoAmIRequest {}).await.expect("who am i").into_inner();
    assert_eq!((me.subject.as_str(), me.role()), ("bob", v1::Role::Operator));

    // Expired, forged (other secret, other key), unknown role, garbage: UNAUTHENTICATED.
    let (other_private, _) = ed25519_keys();
    let cases = [
        ("expired", hs256_jwt(JWT_SECRET.as_bytes(), "alice", "admin", unix_now() - 3600)),
        (
            "forged HS256",
            hs256_jwt(b"another-secret-that-is-long-enough-for-hs256", "mallory", "admin", hour),
        ),
        ("forged EdDSA", eddsa_jwt(&other_private, "mallory", "admin", hour)),
        ("unknown role", hs256_jwt(JWT_SECRET.as_bytes(), "alice", "superuser", hour)),
        ("not a token", "eyJhbGciOiJub25lIn0.e30.".to_owned()),
        ("unknown static token", "not-a-known-token-at-all".to_owned()),
    ];
    for (what, token) in cases {
        let mut client = authed(channel.clone(), Some(&token));
        let status = client.get_layout(v1::GetLayoutRequest {}).await.expect_err(what);
        assert_eq!(status.code(), Code::Unauthenticated, "{what}: {status:?}");
    }
    let expired = hs256_jwt(JWT_SECRET.as_bytes(), "alice", "admin", unix_now() - 3600);
    let status = authed(channel.clone(), Some(&expired))
        .get_layout(v1::GetLayoutRequest {})
        .await
        .expect_err("expired");
    assert!(status.message().contains("expired"), "{}", status.message());
    server.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_metadata_is_unauthenticated_and_health_and_reflection_stay_open() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = TestServer::start(secured(dir.path())).await;
    let channel = server.channel().await;
    let values: [&[u8]; 5] = [
        b"Basic dXNlcjpwYXNz",
        b"Bearer",
        b"Bearer    ",
        b"token-without-scheme",
        b"Bearer \xc3\xa9t\xc3\xa9",
    ];
    for value in values {
        let value = tonic::metadata::MetadataValue::try_from(value).expect("header bytes");
        let mut client = twin_proto::v1::twin_service_client::TwinServiceClient::with_interceptor(
            channel.clone(),
            Bearer(Some(value.clone())),
        );
        let status = client.get_layout(v1::GetLayoutRequest {}).await.expect_err("refused");
        assert_eq!(status.code(), Code::Unauthenticated, "{value:?}: {status:?}");
    }
    // Health and reflection need no token.
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    let reply = health
        .check(tonic_health::pb::HealthCheckRequest { service: "twin.v1.TwinService".into() })
        .await
        .expect("health is open")
        .into_inner();
    assert_eq!(reply.status(), tonic_health::pb::health_check_response::ServingStatus::Serving);
    let mut reflection =
        tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient::new(channel.clone());
    let request = tonic_reflection::pb::v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            tonic_reflection::pb::v1::server_reflection_request::MessageRequest::ListServices(String::new()),
        ),
    };
    let mut replies = reflection
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("reflection is open")
        .into_inner();
    let reply = within("a reflection reply", replies.message()).await.expect("ok").expect("a reply");
    assert!(format!("{reply:?}").contains("twin.v1.TwinService"));
    server.shutdown().await.expect("clean shutdown");
}

/// Waits for a line starting with `prefix` on a child's stdout.
fn read_line_with(reader: &mut impl BufRead, prefix: &str) -> String {
    let mut line = String::new();
    loop {
        line.clear();
        let n = reader.read_line(&mut line).expect("read stdout");
        assert!(n > 0, "stdout ended before a line starting with `{prefix}`");
        if let Some(rest) = line.trim().strip_prefix(prefix) {
            return rest.to_owned();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_log_records_changes_and_rejections_with_who_when_and_result() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = TestServer::start(secured(dir.path())).await;
    let channel = server.channel().await;
    let mut operator = authed(channel.clone(), Some(token(Role::Operator)));
    let mut viewer = authed(channel.clone(), Some(token(Role::Viewer)));
    let mut nobody = authed(channel.clone(), None);
    let mut admin = authed(channel.clone(), Some(token(Role::Admin)));

    operator.set_speed(v1::SetSpeedRequest { speed: 0.0, max_speed: true }).await.expect("max speed");
    operator.run_to(v1::RunToRequest { sim_time_us: 600_000_000 }).await.expect("run to 10 min");
    let mut frames = operator
        .stream_state(v1::StreamStateRequest { rate_hz: 60, full_frames_only: true })
        .await
        .expect("stream")
        .into_inner();
    let paused = loop {
        let clock = next_frame(&mut frames).await.clock.expect("clock");
        if clock.paused {
            break clock;
        }
    };
    drop(frames);
    assert_eq!(paused.sim_time_us, 600_000_000);
    operator
        .break_down(v1::BreakDownRequest { station_id: "mill".into(), duration_us: Some(60_000_000) })
        .await
        .expect("break down");
    viewer
        .break_down(v1::BreakDownRequest { station_id: "saw".into(), duration_us: None })
        .await
        .expect_err("viewer");
    nobody.reset(v1::ResetRequest { seed: Some(3) }).await.expect_err("no token");
    operator.set_speed(v1::SetSpeedRequest { speed: -1.0, max_speed: false }).await.expect_err("bad speed");
    // Reads are not audited when they pass.
    viewer.get_layout(v1::GetLayoutRequest {}).await.expect("layout");

    let page = admin
        .list_audit(v1::ListAuditRequest { page_size: 0, page_token: String::new() })
        .await
        .expect("admin reads the log")
        .into_inner();
    let summary: Vec<(String, String, String)> =
        page.entries.iter().map(|e| (e.subject.clone(), e.method.clone(), e.code.clone())).collect();
    let expected = [
        ("olga", "SetSpeed", "INVALID_ARGUMENT"),
        ("-", "Reset", "UNAUTHENTICATED"),
        ("student", "BreakDown", "PERMISSION_DENIED"),
        ("olga", "BreakDown", "OK"),
        ("olga", "RunTo", "OK"),
        ("olga", "SetSpeed", "OK"),
    ];
    let expected: Vec<(String, String, String)> =
        expected.iter().map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string())).collect();
    assert_eq!(summary, expected, "newest first: {page:#?}");
    assert_eq!(page.retained, 6);
    assert_eq!(page.next_page_token, "");
    let breakdown = &page.entries[3];
    assert_eq!(breakdown.role(), v1::Role::Operator);
    assert!(
        breakdown.request.contains("mill") && breakdown.request.contains("60000000"),
        "{}",
        breakdown.request
    );
    assert_eq!(breakdown.sim_time_us, 600_000_000, "simulated time of the call");
    assert!(breakdown.wall_time_unix_ms / 1000 + 60 > unix_now(), "wall time of the call");
    assert!(breakdown.peer.starts_with("127.0.0.1:"), "{}", breakdown.peer);
    let denied = &page.entries[2];
    assert!(denied.message.contains("needs the operator role"), "{}", denied.message);
    assert_eq!(denied.request, "-");
    assert!(page.entries[0].message.contains("speed"), "{}", page.entries[0].message);
    assert!(page.entries.windows(2).all(|w| w[0].seq > w[1].seq));

    // Paging, bounded page size.
    let first = admin
        .list_audit(v1::ListAuditRequest { page_size: 2, page_token: String::new() })
        .await
        .expect("page")
        .into_inner();
    assert_eq!(first.entries.len(), 2);
    let second = admin
        .list_audit(v1::ListAuditRequest { page_size: 2, page_token: first.next_page_token.clone() })
        .await
        .expect("page")
        .into_inner();
    assert_eq!(second.entries[0].seq + 1, first.entries[1].seq);
    for bad in [
        v1::ListAuditRequest { page_size: 5000, page_token: String::new() },
        v1::ListAuditRequest { page_size: 1, page_token: "abc".into() },
    ] {
        let status = admin.list_audit(bad).await.expect_err("invalid");
        assert_eq!(status.code(), Code::InvalidArgument);
    }

    // `twin audit --data DIR` reads the same log from another process, while the server
    // still holds it open for writing.
    let out = Command::new(twin_binary())
        .args(["audit", "--data"])
        .arg(dir.path().join("data"))
        .args(["--json", "--limit", "3"])
        .output()
        .expect("twin audit");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["method"], "SetSpeed");
    assert_eq!(lines[2]["subject"], "student");
    assert_eq!(lines[2]["code"], "PERMISSION_DENIED");
    server.shutdown().await.expect("clean shutdown");

    // The log survives the server (durable), and a new server appends after it.
    let server = TestServer::start(secured(dir.path())).await;
    let mut operator = authed(server.channel().await, Some(token(Role::Operator)));
    operator.pause(v1::PauseRequest {}).await.expect("pause");
    let mut admin = authed(server.channel().await, Some(token(Role::Admin)));
    let page = admin.list_audit(v1::ListAuditRequest::default()).await.expect("page").into_inner();
    assert_eq!(page.retained, 7);
    assert_eq!(page.entries[0].method, "Pause");
    assert_eq!(page.entries[0].seq, 7);
    server.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_refused_calls_is_summed_up_not_flushing_the_log() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = TestServer::start(secured(dir.path())).await;
    let channel = server.channel().await;
    let mut operator = authed(channel.clone(), Some(token(Role::Operator)));
    operator.pause(v1::PauseRequest {}).await.expect("pause");
    let n_refused = 80;
    let calls = (0..n_refused).map(|_| {
        let mut client = authed(channel.clone(), Some("not-a-valid-token-0000"));
        async move { client.pause(v1::PauseRequest {}).await }
    });
    for result in futures_join_all(calls).await {
        assert_eq!(result.expect_err("refused").code(), Code::Unauthenticated);
    }
    // The summary of the omitted ones is written with the next refused call after the
    // one-second window.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    authed(channel.clone(), None).pause(v1::PauseRequest {}).await.expect_err("no token");

    let mut admin = authed(channel, Some(token(Role::Admin)));
    let page = admin
        .list_audit(v1::ListAuditRequest { page_size: 1000, page_token: String::new() })
        .await
        .expect("page")
        .into_inner();
    let one_by_one = page.entries.iter().filter(|e| e.code == "UNAUTHENTICATED").count();
    let summed: u64 = page
        .entries
        .iter()
        .filter(|e| e.method == "*")
        .map(|e| e.message.split_whitespace().next().and_then(|n| n.parse::<u64>().ok()).expect("a count"))
        .sum();
    assert!(summed > 0, "{page:#?}");
    assert!(one_by_one < n_refused, "{one_by_one} refused calls recorded one by one");
    assert_eq!(one_by_one as u64 + summed, n_refused as u64 + 1, "every refused call is accounted for");
    // The operator's real entry is still there.
    assert!(page.entries.iter().any(|e| e.subject == "olga" && e.method == "Pause"));
    server.shutdown().await.expect("clean shutdown");
}

/// Runs futures concurrently and collects their outputs in order.
async fn futures_join_all<F: std::future::Future + Send + 'static>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for handle in handles {
        out.push(handle.await.expect("task"));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_retention_keeps_the_newest_entries() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = secured(dir.path());
    if let Some(audit) = &mut config.trust.audit {
        audit.retention = Retention { max_entries: 3, max_age: Duration::from_secs(3600) };
    }
    let server = TestServer::start(config).await;
    let mut operator = authed(server.channel().await, Some(token(Role::Operator)));
    for _ in 0..5 {
        operator.pause(v1::PauseRequest {}).await.expect("pause");
    }
    let mut admin = authed(server.channel().await, Some(token(Role::Admin)));
    let page = admin.list_audit(v1::ListAuditRequest::default()).await.expect("page").into_inner();
    assert_eq!(page.retained, 3);
    assert_eq!(page.entries.iter().map(|e| e.seq).collect::<Vec<_>>(), [5, 4, 3]);
    server.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_and_mutual_tls() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pki = Pki::new("twin test CA");
    let files = pki.write(dir.path());
    let stranger = Pki::new("another CA");

    // TLS: a client trusting the CA talks; plain HTTP/2 does not get through.
    let tls = TlsFiles { cert: files.server_cert.clone(), key: files.server_key.clone(), client_ca: None };
    let tls_only = Config {
        trust: TrustConfig { tls: Some(tls), ..TrustConfig::default() },
        ..config("training-line.ron")
    };
    let server = TestServer::start(tls_only).await;
    let channel = tls_channel(server.addr, &pki.ca, None).await.expect("TLS handshake");
    let layout = authed(channel, None).get_layout(v1::GetLayoutRequest {}).await.expect("layout over TLS");
    assert_eq!(layout.into_inner().layout.expect("layout").stations.len(), 5);
    let plain = tonic::transport::Endpoint::from_shared(format!("http://{}", server.addr)).expect("uri");
    if let Ok(channel) = plain.connect().await {
        authed(channel, None).get_layout(v1::GetLayoutRequest {}).await.expect_err("plain text refused");
    }
    // A server certificate from a CA the client does not trust is refused.
    assert!(tls_channel(server.addr, &stranger.ca, None).await.is_err(), "unknown CA accepted");
    server.shutdown().await.expect("clean shutdown");

    // Mutual TLS: no client certificate, or one from another CA, is refused.
    let mtls = TlsFiles {
        cert: files.server_cert.clone(),
        key: files.server_key.clone(),
        client_ca: Some(files.ca.clone()),
    };
    let mutual = Config {
        trust: TrustConfig { tls: Some(mtls), ..TrustConfig::default() },
        ..config("training-line.ron")
    };
    let server = TestServer::start(mutual).await;
    for (what, identity) in [
        ("no client certificate", None),
        ("a stranger's certificate", Some((&stranger.client_cert, &stranger.client_key))),
    ] {
        let identity = identity.map(|(c, k)| (c.as_str(), k.as_str()));
        let refused = match tls_channel(server.addr, &pki.ca, identity).await {
            Err(_) => true,
            Ok(channel) => authed(channel, None).get_layout(v1::GetLayoutRequest {}).await.is_err(),
        };
        assert!(refused, "{what} was accepted");
    }
    let channel = tls_channel(server.addr, &pki.ca, Some((&pki.client_cert, &pki.client_key)))
        .await
        .expect("mutual TLS handshake");
    authed(channel, None).get_layout(v1::GetLayoutRequest {}).await.expect("layout over mutual TLS");
    server.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twin_audit_asks_a_tls_server_with_a_token() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pki = Pki::new("twin test CA");
    let files = pki.write(dir.path());
    let mut config = secured(dir.path());
    config.trust.tls =
        Some(TlsFiles { cert: files.server_cert.clone(), key: files.server_key.clone(), client_ca: None });
    let server = TestServer::start(config).await;
    let channel = tls_channel(server.addr, &pki.ca, None).await.expect("TLS");
    authed(channel, Some(token(Role::Operator))).pause(v1::PauseRequest {}).await.expect("pause");

    let url = format!("https://localhost:{}", server.addr.port());
    let twin = twin_binary();
    let run = |token: &str| {
        Command::new(&twin)
            .args(["audit", "--server", &url, "--ca"])
            .arg(&files.ca)
            .env("TWIN_TOKEN", token)
            .output()
            .expect("twin audit")
    };
    let out = run(token(Role::Admin));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("Pause") && stdout.contains("olga") && stdout.contains("OK"), "{stdout}");
    let out = run(token(Role::Viewer));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("PERMISSION_DENIED") && stderr.contains("admin"), "{stderr}");
    server.shutdown().await.expect("clean shutdown");
}

/// Starts `twin serve ARGS` and returns its exit status and stderr once it exits (or
/// kills it after `patience` and fails).
fn serve_and_fail(args: &[&str]) -> (std::process::ExitStatus, String) {
    let out = Command::new(twin_binary())
        .current_dir(root())
        .arg("serve")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("twin serve");
    (out.status, String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn twin_serve_refuses_unsafe_or_broken_trust_settings() {
    let dir = tempfile::tempdir().expect("temp dir");
    let scene = "scenes/training-line.ron";

    // No credentials on a non-loopback address.
    let (status, stderr) = serve_and_fail(&[scene, "--addr", "0.0.0.0:0", "--paused"]);
    assert!(!status.success());
    assert!(stderr.contains("not a loopback address") && stderr.contains("--insecure-no-auth"), "{stderr}");

    // Credentials without an audit log.
    let tokens = write_token_file(dir.path());
    let tokens = tokens.to_str().expect("utf-8 path");
    let (status, stderr) = serve_and_fail(&[scene, "--addr", "127.0.0.1:0", "--auth", tokens]);
    assert!(!status.success());
    assert!(stderr.contains("--data"), "{stderr}");

    // A broken token file: file and line named.
    let broken = dir.path().join("broken.ron");
    std::fs::write(&broken, "Auth(tokens: [\n  (subject: \"a\", role: Viewer, token: \"short\"),\n])\n")
        .expect("write");
    let data = dir.path().join("data");
    let (status, stderr) = serve_and_fail(&[
        scene,
        "--addr",
        "127.0.0.1:0",
        "--auth",
        broken.to_str().expect("utf-8"),
        "--data",
        data.to_str().expect("utf-8"),
    ]);
    assert!(!status.success());
    assert!(stderr.contains(&format!("{}:2:", broken.display())) && stderr.contains("too short"), "{stderr}");
    let syntax = dir.path().join("syntax.ron");
    std::fs::write(&syntax, "Auth(tokens: [\n  (subject: \"a\", role: Viewer token: \"x\"),\n])\n")
        .expect("write");
    let (status, stderr) = serve_and_fail(&[
        scene,
        "--addr",
        "127.0.0.1:0",
        "--auth",
        syntax.to_str().expect("utf-8"),
        "--data",
        data.to_str().expect("utf-8"),
    ]);
    assert!(!status.success());
    assert!(stderr.contains(&format!("{}:2:", syntax.display())), "{stderr}");

    // A missing TLS key file is named.
    let (status, stderr) = serve_and_fail(&[
        scene,
        "--addr",
        "127.0.0.1:0",
        "--tls-cert",
        "/nonexistent/server.pem",
        "--tls-key",
        "/nonexistent/server.key",
    ]);
    assert!(!status.success());
    assert!(stderr.contains("/nonexistent/server.pem"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twin_serve_binds_anything_only_with_insecure_no_auth_and_warns() {
    let mut child = Command::new(twin_binary())
        .current_dir(root())
        .args(["serve", "scenes/training-line.ron", "--addr", "0.0.0.0:0", "--insecure-no-auth", "--paused"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start twin serve");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let stderr = child.stderr.take().expect("stderr");
    let stderr_reader = std::thread::spawn(move || {
        BufReader::new(stderr).lines().map_while(Result::ok).collect::<Vec<_>>().join("\n")
    });
    let addr: SocketAddr = read_line_with(&mut stdout, "listening on ").parse().expect("address");
    assert!(addr.ip().is_unspecified());
    let mut client = connect(SocketAddr::from(([127, 0, 0, 1], addr.port()))).await;
    client.pause(v1::PauseRequest {}).await.expect("anyone may control it");
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().expect("wait").is_none() {
        assert!(Instant::now() < deadline, "twin serve did not stop");
        std::thread::sleep(Duration::from_millis(50));
    }
    let logs = stderr_reader.join().expect("stderr");
    assert!(logs.contains("WITHOUT authentication"), "{logs}");
}
