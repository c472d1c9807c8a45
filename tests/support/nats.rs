//! Real `nats-server` processes for the distributed-experiment tests: one JetStream node,
//! or a three-node JetStream cluster, on free loopback ports with temporary store dirs.
//!
//! Each node runs under a watchdog shell that kills it when the test process goes away
//! (a node held in a `static` is never dropped) and removes its folder; dropping a
//! [`NatsNode`] kills it at once. [`NatsNode::kill`] SIGKILLs the server itself, as a
//! crash would.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::prometheus::free_port;

/// Where Debian's `nats-server` package puts the binary.
pub const NATS_SERVER: &str = "/usr/sbin/nats-server";

/// Fails with a hint when nats-server is not installed.
pub fn require_binary() {
    assert!(
        Path::new(NATS_SERVER).exists(),
        "{NATS_SERVER} is missing: run `scripts/system-deps.sh --nats` (scripts/test.sh does)"
    );
}

/// One nats-server process with JetStream.
pub struct NatsNode {
    pub port: u16,
    /// Process id of nats-server itself (not of its watchdog).
    pub pid: u32,
    watchdog: Child,
    pub dir: PathBuf,
}

impl NatsNode {
    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// SIGKILLs the server (no clean shutdown) and waits until it is gone.
    pub fn kill(&mut self) {
        if !Path::new(&format!("/proc/{}", self.pid)).exists() {
            return;
        }
        let _ = Command::new("kill").args(["-KILL", &self.pid.to_string()]).stderr(Stdio::null()).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Path::new(&format!("/proc/{}", self.pid)).exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The server's log so far (for assertion messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    fn start(name: &str, extra: &[String]) -> NatsNode {
        require_binary();
        let dir = tempfile::tempdir().expect("temp dir").keep();
        let port = free_port();
        let mut args = vec![
            "-js".to_string(),
            "-a".into(),
            "127.0.0.1".into(),
            "-p".into(),
            port.to_string(),
            "-sd".into(),
            dir.join("store").display().to_string(),
            "--server_name".into(),
            name.into(),
        ];
        args.extend(extra.iter().cloned());
        let quoted: Vec<String> = args.iter().map(|a| format!("'{a}'")).collect();
        // The watchdog prints the server's pid, then waits for either to end.
        let command = format!(
            "{NATS_SERVER} {args} >{log} 2>&1 & p=$!; echo $p; \
             while kill -0 {parent} 2>/dev/null && kill -0 $p 2>/dev/null; do sleep 0.5; done; \
             kill -9 $p 2>/dev/null; wait $p; rm -rf {dir}",
            args = quoted.join(" "),
            log = dir.join("server.log").display(),
            parent = std::process::id(),
            dir = dir.display(),
        );
        let mut watchdog = Command::new("sh")
            .args(["-c", &command])
            .stdout(Stdio::piped())
            .stdin(Stdio::null())
            .spawn()
            .expect("start nats-server watchdog");
        let mut line = String::new();
        BufReader::new(watchdog.stdout.take().expect("watchdog stdout"))
            .read_line(&mut line)
            .expect("watchdog prints the pid");
        let pid = line.trim().parse().expect("nats-server pid");
        let node = NatsNode { port, pid, watchdog, dir };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server {name} did not listen:\n{}", node.log());
            std::thread::sleep(Duration::from_millis(50));
        }
        node
    }

    /// One JetStream node.
    pub fn single() -> NatsNode {
        NatsNode::start("single", &[])
    }
}

impl Drop for NatsNode {
    fn drop(&mut self) {
        self.kill();
        let _ = self.watchdog.wait();
    }
}

/// A three-node JetStream cluster on loopback: streams with 3 replicas survive one
/// node's loss.
pub struct NatsCluster {
    pub nodes: Vec<NatsNode>,
}

impl NatsCluster {
    pub fn start() -> NatsCluster {
        let cluster_ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let nodes = (0..3)
            .map(|i| {
                let routes: Vec<String> = cluster_ports
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != i)
                    .map(|(_, p)| format!("nats://127.0.0.1:{p}"))
                    .collect();
                NatsNode::start(
                    &format!("n{i}"),
                    &[
                        "--cluster".into(),
                        format!("nats://127.0.0.1:{}", cluster_ports[i]),
                        "--routes".into(),
                        routes.join(","),
                        "--cluster_name".into(),
                        "twin-test".into(),
                    ],
                )
            })
            .collect();
        NatsCluster { nodes }
    }

    /// All nodes' URLs, comma-separated (what `--nats` takes).
    pub fn urls(&self) -> String {
        self.nodes.iter().map(NatsNode::url).collect::<Vec<_>>().join(",")
    }
}
