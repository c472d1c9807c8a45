//! A real Prometheus (Debian's `prometheus` package, installed by
//! `scripts/system-deps.sh --prometheus`) on a free loopback port with a temporary config
//! and data folder, plus tiny HTTP helpers for its API and for `/metrics`.
//!
//! Start it once per test binary (e.g. behind a `OnceLock`): a watchdog shell ends it
//! when the test process exits, since statics are never dropped.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

/// Where Debian installs the binaries.
pub const PROMETHEUS: &str = "/usr/bin/prometheus";
pub const PROMTOOL: &str = "/usr/bin/promtool";

/// A running Prometheus.
pub struct Prometheus {
    /// Its HTTP API address.
    pub addr: SocketAddr,
    /// The watchdog shell that owns the Prometheus process and its folder.
    _watchdog: Child,
    /// Config, data and log; the watchdog removes it after Prometheus stops.
    dir: PathBuf,
}

/// A free loopback port (bound and released; Prometheus takes it right after).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port()
}

/// Fails with a hint when Prometheus is not installed.
pub fn require_binaries() {
    for bin in [PROMETHEUS, PROMTOOL] {
        assert!(
            Path::new(bin).exists(),
            "{bin} is missing: run `scripts/system-deps.sh --prometheus` (scripts/test.sh does)"
        );
    }
}

impl Prometheus {
    /// Starts Prometheus scraping `target` (host:port of a `/metrics` endpoint) every
    /// second as job `twin`, with `rule_files` loaded, and waits until it is ready.
    pub fn start(target: SocketAddr, rule_files: &[PathBuf]) -> Prometheus {
        require_binaries();
        let dir = tempfile::tempdir().expect("temp dir").keep();
        let rules: String = rule_files.iter().map(|r| format!("  - {}\n", r.display())).collect();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n{rules}scrape_configs:\n  - job_name: twin\n    static_configs:\n      - targets: [\"{target}\"]\n"
        );
        let config_path = dir.join("prometheus.yml");
        std::fs::write(&config_path, config).expect("write prometheus.yml");
        let port = free_port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let program = format!(
            "{PROMETHEUS} --config.file={} --storage.tsdb.path={} --web.listen-address={addr} --log.level=warn",
            config_path.display(),
            dir.join("data").display(),
        );
        let watchdog = crate::start_watched(&program, &dir.join("prometheus.log"), &dir);
        let prometheus = Prometheus { addr, _watchdog: watchdog, dir };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if http_get(addr, "/-/ready").is_ok_and(|(status, _)| status == 200) {
                return prometheus;
            }
            assert!(
                Instant::now() < deadline,
                "prometheus did not become ready on {addr}:\n{}",
                prometheus.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// What Prometheus logged (warnings and errors).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default()
    }

    /// Runs an instant query; the `data.result` array.
    pub fn query(&self, promql: &str) -> Vec<serde_json::Value> {
        let (status, body) = http_get(self.addr, &format!("/api/v1/query?query={}", url_encode(promql)))
            .expect("query prometheus");
        assert_eq!(status, 200, "query `{promql}`: {body}");
        let value: serde_json::Value = serde_json::from_str(&body).expect("JSON reply");
        assert_eq!(value["status"], "success", "{body}");
        value["data"]["result"].as_array().cloned().unwrap_or_default()
    }

    /// Polls `promql` until it returns at least one series; the series.
    pub fn wait_for(&self, promql: &str, patience: Duration) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + patience;
        loop {
            let result = self.query(promql);
            if !result.is_empty() {
                return result;
            }
            assert!(Instant::now() < deadline, "no series for `{promql}` after {patience:?}");
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// GET on the API; (status, body).
    pub fn get(&self, path: &str) -> (u16, String) {
        http_get(self.addr, path).expect("GET prometheus")
    }
}

/// Percent-encodes everything but unreserved characters (RFC 3986).
pub fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A plain HTTP/1.0 GET (no chunking, the server closes the connection); (status, body).
pub fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let text = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    Ok((status, body.to_owned()))
}

/// Every `twin_*` metric name in `text` (PromQL, rule files, dashboard JSON).
pub fn twin_metric_names(text: &str) -> std::collections::BTreeSet<String> {
    let bytes = text.as_bytes();
    let mut names = std::collections::BTreeSet::new();
    let mut i = 0;
    while let Some(at) = text[i..].find("twin_").map(|at| i + at) {
        let starts_word = at == 0 || !(bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_');
        let end = text[at..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .map_or(text.len(), |n| at + n);
        if starts_word {
            names.insert(text[at..end].to_owned());
        }
        i = end;
    }
    names
}
