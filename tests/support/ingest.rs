//! Live ingest test support: a `twin serve` process with ingest on (`--data`, MQTT or
//! gRPC Ingest), GetIngestStatus helpers, and readers of its telemetry log.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tonic::transport::Channel;
use twin_core::{Command as CoreCommand, Observation, Observed};
use twin_proto::v1;
use twin_proto::v1::twin_service_client::TwinServiceClient;
use twin_server::ingest::log::{self as tlog, Contents, RawRecord};

use crate::{capture_stderr, connect, root, twin_binary};

/// A `twin serve` process with ingest on.
pub struct Twin {
    child: Child,
    pub addr: SocketAddr,
    stderr: Arc<Mutex<String>>,
}

impl Twin {
    /// Starts `twin serve` on the training line with `--data data` and `extra` flags
    /// (debug logs of the ingest captured), once it listens.
    pub fn start(data: &Path, extra: &[&str]) -> Twin {
        let mut child = Command::new(twin_binary())
            .current_dir(root())
            .args([
                "serve",
                "scenes/training-line.ron",
                "--addr",
                "127.0.0.1:0",
                "--log",
                "info,twin_server::ingest=debug",
                "--data",
            ])
            .arg(data)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start twin serve");
        let stderr = capture_stderr(&mut child);
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("stdout line");
        let addr = match line.trim().strip_prefix("listening on ") {
            Some(a) => a.parse().expect("address"),
            None => panic!(
                "twin serve did not start: `{line}`\n{}",
                stderr.lock().map(|s| s.clone()).unwrap_or_default()
            ),
        };
        Twin { child, addr, stderr }
    }

    /// With `--mqtt url --group group`.
    pub fn mqtt(url: &str, data: &Path, group: &str, extra: &[&str]) -> Twin {
        let mut args = vec!["--mqtt", url, "--group", group];
        args.extend_from_slice(extra);
        Twin::start(data, &args)
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
    }

    /// What it logged on stderr so far.
    pub fn log(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// A gRPC client.
    pub async fn client(&self) -> TwinServiceClient<Channel> {
        connect(self.addr).await
    }
}

impl Drop for Twin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// GetIngestStatus.
pub async fn status(client: &mut TwinServiceClient<Channel>) -> v1::GetIngestStatusResponse {
    client.get_ingest_status(v1::GetIngestStatusRequest {}).await.expect("GetIngestStatus").into_inner()
}

/// Polls GetIngestStatus until `ok` holds.
pub async fn wait_status(
    client: &mut TwinServiceClient<Channel>,
    what: &str,
    ok: impl Fn(&v1::GetIngestStatusResponse) -> bool,
) -> v1::GetIngestStatusResponse {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let s = status(client).await;
        if ok(&s) {
            return s;
        }
        assert!(Instant::now() < deadline, "waiting for {what}: {s:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The count of one rejection reason.
pub fn rejected(s: &v1::GetIngestStatusResponse, reason: &str) -> u64 {
    s.rejected.iter().find(|r| r.reason == reason).map_or(0, |r| r.count)
}

/// The telemetry log of a data folder, read while the twin may run.
pub fn read_log(data: &Path) -> Contents {
    tlog::read_file(&data.join(tlog::DIR_NAME)).expect("read the telemetry log")
}

/// The durations of every applied `Observe(Cycle)` in the log.
pub fn applied_cycles(contents: &Contents) -> Vec<u64> {
    tlog::applied_commands(&contents.decisions)
        .into_iter()
        .filter_map(|(_, c)| match c {
            CoreCommand::Observe(Observation { observed: Observed::Cycle { duration, .. }, .. }) => {
                Some(duration)
            }
            _ => None,
        })
        .collect()
}

/// Reads the telemetry log every 50 ms in the background and keeps every decision it
/// sees, by key: keys are never reused, so the union is the whole history even while
/// the twin prunes the log (checked for holes by the caller).
pub struct DecisionWatch {
    seen: Arc<Mutex<BTreeMap<u64, tlog::Decision>>>,
    /// The highest first key a read found: every key below it must have been seen.
    first_kept: Arc<std::sync::atomic::AtomicU64>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl DecisionWatch {
    pub fn start(data: &Path) -> DecisionWatch {
        let seen = Arc::new(Mutex::new(BTreeMap::new()));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let first_kept = Arc::new(std::sync::atomic::AtomicU64::new(1));
        let (sink, done, path) = (Arc::clone(&seen), Arc::clone(&stop), data.join(tlog::DIR_NAME));
        let first = Arc::clone(&first_kept);
        std::thread::spawn(move || {
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                // A read racing the kill or the restart's repair fails: the next one reads.
                if let Ok(c) = tlog::read_file(&path)
                    && let Ok(mut seen) = sink.lock()
                {
                    first.fetch_max(c.first_decision, std::sync::atomic::Ordering::Relaxed);
                    seen.extend(c.decision_keys.into_iter().zip(c.decisions));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        DecisionWatch { seen, first_kept, stop }
    }

    /// The `Cycle/Duration` indices applied so far, with repeats; panics on a hole in the
    /// decision keys seen (a decision pruned before it was read: the history is unknown).
    pub fn applied(&self) -> Vec<u64> {
        let seen = self.seen.lock().expect("decisions").clone();
        let keys: Vec<u64> = seen.keys().copied().collect();
        let first_kept = self.first_kept.load(std::sync::atomic::Ordering::Relaxed);
        assert!(
            keys.first() == Some(&1)
                && keys.windows(2).all(|w| w[1] == w[0] + 1)
                && keys.last().is_some_and(|last| last + 1 >= first_kept),
            "a decision was pruned before the watch read it: keys {:?}..{:?} ({} seen)",
            keys.first(),
            keys.last(),
            keys.len()
        );
        let decisions: Vec<tlog::Decision> = seen.into_values().collect();
        applied_cycles(&Contents { decisions, ..Contents::default() }).iter().map(|d| d - 1000).collect()
    }
}

impl Drop for DecisionWatch {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Waits until every message the broker acknowledged is in the log and applied, exactly
/// once (the log must hold every decision: no pruning).
pub async fn every_acked_message_applied_once(
    data: &Path,
    acked: &BTreeSet<u64>,
    twin: &Twin,
    client: &mut TwinServiceClient<Channel>,
) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let contents = read_log(data);
        let cycles = applied_cycles(&contents);
        let applied: BTreeSet<u64> = cycles.iter().map(|d| d - 1000).collect();
        let missing: Vec<u64> = acked.iter().filter(|i| !applied.contains(i)).copied().collect();
        if missing.is_empty() {
            assert_eq!(cycles.len(), applied.len(), "no message applied twice");
            let logged: BTreeSet<u64> = contents
                .raw
                .iter()
                .filter_map(|(_, r)| match r {
                    RawRecord::Mqtt { payload, .. } => {
                        let p =
                            <twin_proto::sparkplug::Payload as prost::Message>::decode(payload.as_slice())
                                .ok()?;
                        p.metric("Cycle/Duration").and_then(|m| m.as_u64()).map(|d| d - 1000)
                    }
                    _ => None,
                })
                .collect();
            assert!(acked.is_subset(&logged), "every acknowledged message is in the log");
            return;
        }
        if Instant::now() > deadline {
            let s = status(client).await;
            let log = twin.log();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            panic!(
                "{} acknowledged messages not applied (first {:?}); {s:#?}\n{}\n...\n{}",
                missing.len(),
                &missing[..missing.len().min(10)],
                log.lines().take(12).collect::<Vec<_>>().join("\n"),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
