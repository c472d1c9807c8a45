//! Metrics end to end: a twin with `--metrics-addr`, scraped by a REAL Prometheus (one
//! per test binary, shared by the tests), queried through Prometheus's HTTP API; the
//! shipped alert rules pass `promtool check rules` and load into that Prometheus; every
//! metric the rules and the Grafana dashboards name exists in a live scrape, and every
//! dashboard query is valid PromQL that Prometheus answers.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use twin_e2e::prometheus::*;
use twin_e2e::*;
use twin_proto::v1;
use twin_server::{Config, Speed, TrustConfig, TwinServer};

/// How long to wait for a series to reach Prometheus (scrapes every second).
const SCRAPE_PATIENCE: Duration = Duration::from_secs(30);

/// The twin and the Prometheus scraping it, started once for all tests of this binary.
struct Shared {
    grpc: SocketAddr,
    metrics: SocketAddr,
    prometheus: Prometheus,
}

fn rule_files() -> Vec<PathBuf> {
    let dir = root().join("deploy/prometheus");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("deploy/prometheus")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().ends_with("-rules.yml")))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no *-rules.yml in {}", dir.display());
    files
}

fn dashboards() -> Vec<PathBuf> {
    let dir = root().join("deploy/grafana/dashboards");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("deploy/grafana/dashboards")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no dashboards in {}", dir.display());
    files
}

fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| {
        require_binaries();
        // The twin runs on its own runtime for the life of the test process: the metrics
        // recorder is process-global, so one twin serves every test here.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
                let config = Config {
                    speed: Speed::Paced(600.0),
                    start_paused: false,
                    trust: TrustConfig {
                        metrics_addr: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
                        ..TrustConfig::default()
                    },
                    ..config("training-line.ron")
                };
                let server = TwinServer::new(config).expect("server starts");
                let metrics = server.metrics_addr().expect("metrics endpoint bound");
                tx.send((listener.local_addr().expect("address"), metrics)).expect("report addresses");
                server.serve(listener, std::future::pending()).await.expect("serves");
            });
        });
        let (grpc, metrics) = rx.recv().expect("the twin started");
        let prometheus = Prometheus::start(metrics, &rule_files());
        Shared { grpc, metrics, prometheus }
    })
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime").block_on(f)
}

/// A few calls, so that RPC series exist: an OK one, a failing one, a stream.
fn make_calls(grpc: SocketAddr) {
    block_on(async move {
        let mut client = connect(grpc).await;
        client.get_layout(v1::GetLayoutRequest {}).await.expect("layout");
        let status = client.run_to(v1::RunToRequest { sim_time_us: 0 }).await.expect_err("time zero is past");
        assert_eq!(status.code(), tonic::Code::FailedPrecondition);
        let mut stream = client
            .stream_state(v1::StreamStateRequest { rate_hz: 30, full_frames_only: false })
            .await
            .expect("stream")
            .into_inner();
        for _ in 0..3 {
            next_frame(&mut stream).await;
        }
    });
}

/// The metric names in a live scrape of the twin's `/metrics`.
fn scraped_names(metrics: SocketAddr) -> (String, BTreeSet<String>) {
    let (status, body) = http_get(metrics, "/metrics").expect("scrape the twin");
    assert_eq!(status, 200);
    let names = body
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_owned)
        .collect();
    (body, names)
}

fn value(series: &serde_json::Value) -> f64 {
    series["value"][1].as_str().and_then(|v| v.parse().ok()).expect("a sample value")
}

#[test]
fn prometheus_scrapes_live_state_rpc_and_stream_metrics() {
    let shared = shared();
    make_calls(shared.grpc);
    let prom = &shared.prometheus;
    prom.wait_for(r#"up{job="twin"} == 1"#, SCRAPE_PATIENCE);

    // Per-station state: one series per state, exactly one of them 1.
    let states = prom.wait_for(r#"twin_station_state{station="mill"}"#, SCRAPE_PATIENCE);
    assert_eq!(states.len(), 7, "{states:#?}");
    assert_eq!(states.iter().filter(|s| value(s) == 1.0).count(), 1, "{states:#?}");
    assert!(states.iter().all(|s| s["metric"]["factory"] == "hall"));
    // The live twin runs at ×600: simulated time and throughput move.
    prom.wait_for("twin_sim_time_seconds > 60", SCRAPE_PATIENCE);
    prom.wait_for(r#"twin_sim_speed == 600"#, SCRAPE_PATIENCE);
    prom.wait_for("twin_sim_achieved_speed > 0", SCRAPE_PATIENCE);
    prom.wait_for(r#"twin_station_throughput_per_hour{station="saw"} > 0"#, SCRAPE_PATIENCE);
    prom.wait_for(r#"twin_scene_info{scene="training-line"} == 1"#, SCRAPE_PATIENCE);
    for name in [
        "twin_wip",
        "twin_throughput_per_hour",
        "twin_parts_finished_total",
        "twin_oee",
        "twin_sim_lag_seconds",
        "twin_sim_paused",
        "twin_viewers",
        "twin_layout_generation",
        "twin_station_queue_length",
        "twin_station_busy_servers",
        "twin_station_utilization",
        "twin_station_bottleneck_share",
        "twin_stream_frames_dropped_total",
        "twin_stream_viewers_stalled_total",
        "twin_sim_pacing_resets_total",
        "twin_audit_write_errors_total",
    ] {
        prom.wait_for(name, SCRAPE_PATIENCE);
    }
    // RPCs by method and status code, with latency histograms.
    prom.wait_for(r#"twin_rpc_requests_total{method="GetLayout", code="OK"} >= 1"#, SCRAPE_PATIENCE);
    prom.wait_for(
        r#"twin_rpc_requests_total{method="RunTo", code="FAILED_PRECONDITION"} >= 1"#,
        SCRAPE_PATIENCE,
    );
    prom.wait_for(r#"twin_rpc_requests_total{method="StreamState", code="OK"} >= 1"#, SCRAPE_PATIENCE);
    prom.wait_for(r#"twin_rpc_duration_seconds_bucket{method="GetLayout", le="+Inf"} >= 1"#, SCRAPE_PATIENCE);
    prom.wait_for(
        r#"histogram_quantile(0.95, sum by (le) (rate(twin_rpc_duration_seconds_bucket{method="GetLayout"}[1m]))) >= 0"#,
        SCRAPE_PATIENCE,
    );
}

#[test]
fn twin_exposition_passes_promtool_lint() {
    let shared = shared();
    make_calls(shared.grpc);
    let (body, _) = scraped_names(shared.metrics);
    let mut child = std::process::Command::new(PROMTOOL)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool");
    use std::io::Write;
    child.stdin.take().expect("stdin").write_all(body.as_bytes()).expect("feed promtool");
    let out = child.wait_with_output().expect("promtool output");
    assert!(
        out.status.success(),
        "promtool check metrics:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn alert_rules_pass_promtool_load_and_name_only_live_metrics() {
    let shared = shared();
    make_calls(shared.grpc);
    for file in rule_files() {
        let out = std::process::Command::new(PROMTOOL)
            .args(["check", "rules"])
            .arg(&file)
            .output()
            .expect("promtool");
        assert!(
            out.status.success(),
            "promtool check rules {}:\n{}{}",
            file.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The Prometheus of this test loaded them and evaluates them without errors.
    let prom = &shared.prometheus;
    let deadline = std::time::Instant::now() + SCRAPE_PATIENCE;
    loop {
        let (status, body) = prom.get("/api/v1/rules");
        assert_eq!(status, 200, "{body}");
        let reply: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        let rules: Vec<&serde_json::Value> = reply["data"]["groups"]
            .as_array()
            .expect("groups")
            .iter()
            .flat_map(|g| g["rules"].as_array().expect("rules").iter())
            .collect();
        assert!(rules.len() >= 5, "rules loaded: {body}");
        if rules.iter().all(|r| r["health"] == "ok") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "rules not healthy: {body}");
        std::thread::sleep(Duration::from_millis(500));
    }
    // Every metric the rules name is in a live scrape of the twin and in Prometheus.
    let (_, scraped) = scraped_names(shared.metrics);
    let mut named = BTreeSet::new();
    for file in rule_files() {
        named.extend(twin_metric_names(&std::fs::read_to_string(&file).expect("read rules")));
    }
    for required in ["twin_sim_lag_seconds", "twin_stream_frames_dropped_total"] {
        assert!(named.contains(required), "the rules cover {required}");
    }
    for name in &named {
        assert!(scraped.contains(name), "rules name `{name}`, which the twin does not export");
        prom.wait_for(&format!("count({{__name__=\"{name}\"}})"), SCRAPE_PATIENCE);
    }
}

/// Every `"expr"` string in a Grafana dashboard, recursively.
fn exprs(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("expr", serde_json::Value::String(e)) => out.push(e.clone()),
                    _ => exprs(v, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| exprs(v, out)),
        _ => {}
    }
}

#[test]
fn grafana_dashboards_query_only_live_metrics_with_valid_promql() {
    let shared = shared();
    make_calls(shared.grpc);
    let prom = &shared.prometheus;
    prom.wait_for(r#"twin_station_state{station="mill"}"#, SCRAPE_PATIENCE);
    let (_, scraped) = scraped_names(shared.metrics);
    for file in dashboards() {
        let text = std::fs::read_to_string(&file).expect("read dashboard");
        let dashboard: serde_json::Value = serde_json::from_str(&text).expect("dashboard is JSON");
        assert!(dashboard["title"].is_string() && dashboard["uid"].is_string(), "{}", file.display());
        let panels = dashboard["panels"].as_array().expect("panels");
        assert!(panels.iter().filter(|p| p["type"] != "row").count() >= 10, "a real dashboard");
        for name in twin_metric_names(&text) {
            assert!(
                scraped.contains(&name),
                "{} names `{name}`, which the twin does not export",
                file.display()
            );
        }
        let mut queries = Vec::new();
        exprs(&dashboard, &mut queries);
        assert!(!queries.is_empty());
        for query in queries {
            // Grafana's template variables, as "All" would expand them.
            let promql = query.replace("$instance", ".*").replace("$factory", ".*");
            let (status, body) = prom.get(&format!("/api/v1/query?query={}", url_encode(&promql)));
            assert_eq!(status, 200, "{}: `{query}` is not valid PromQL: {body}", file.display());
        }
    }
}
