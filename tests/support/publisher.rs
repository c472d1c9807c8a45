//! The independent Sparkplug B edge node of the ingest tests (`tests/python/
//! sparkplug_publisher.py`: paho-mqtt and Google's protobuf runtime, nothing shared with
//! the twin), run as a child process whose stdout facts (`acked 17`, `done {...}`) are
//! read line by line.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::root;

/// The Python of the publisher's venv (created once by scripts/python-venv.sh).
pub fn python() -> &'static PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let out =
            Command::new(root().join("scripts/python-venv.sh")).output().expect("run scripts/python-venv.sh");
        assert!(out.status.success(), "python venv: {}", String::from_utf8_lossy(&out.stderr));
        PathBuf::from(String::from_utf8(out.stdout).expect("utf-8").trim())
    })
}

/// The Python publisher, with stdout read line by line into a shared list.
pub struct Publisher {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Publisher {
    /// Starts edge node `node` of Sparkplug group `group` on the broker at `broker`
    /// (`host:port`), reporting `stations`, playing `scenario` (see the script's docs)
    /// with `extra` flags (`--ca FILE`: over TLS).
    pub fn start(
        broker: impl std::fmt::Display,
        group: &str,
        node: &str,
        stations: &[&str],
        scenario: &str,
        extra: &[&str],
    ) -> Publisher {
        let mut child = Command::new(python())
            .current_dir(root())
            .arg("tests/python/sparkplug_publisher.py")
            .args(["--proto", "proto/sparkplug/sparkplug_b.proto", "--broker"])
            .arg(broker.to_string())
            .args([
                "--group",
                group,
                "--node",
                node,
                "--stations",
                &stations.join(","),
                "--scenario",
                scenario,
            ])
            .args(extra)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the Python publisher");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&lines);
        let out = child.stdout.take().expect("stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if let Ok(mut l) = sink.lock() {
                    l.push(line);
                }
            }
        });
        Publisher { child, lines }
    }

    /// Every line it printed so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Waits for the `done {...}` line and the exit.
    pub fn finish(mut self, within_s: u64) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(within_s);
        loop {
            if let Some(done) = self.lines().iter().find_map(|l| l.strip_prefix("done ").map(str::to_owned)) {
                let _ = self.child.wait();
                return serde_json::from_str(&done).expect("done json");
            }
            assert!(Instant::now() < deadline, "publisher did not finish: {:?}", self.lines());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// [`Publisher::finish`] off the async runtime; also returns what was acknowledged.
    pub async fn finish_async(self, within_s: u64) -> (serde_json::Value, BTreeSet<u64>) {
        tokio::task::spawn_blocking(move || {
            let lines = Arc::clone(&self.lines);
            let facts = self.finish(within_s);
            let acked = lines
                .lock()
                .map(|l| l.iter().filter_map(|l| l.strip_prefix("acked ")?.parse().ok()).collect())
                .unwrap_or_default();
            (facts, acked)
        })
        .await
        .expect("publisher task")
    }

    /// The message indices the broker acknowledged (PUBACK) so far.
    pub fn acked(&self) -> BTreeSet<u64> {
        self.lines().iter().filter_map(|l| l.strip_prefix("acked ")?.parse().ok()).collect()
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
