//! A real MQTT broker (Debian's `mosquitto`, installed by `scripts/system-deps.sh
//! --mqtt`) on a free loopback port with a temporary config and data folder.
//!
//! Start it once per test binary (e.g. behind a `OnceLock`) and give every test its own
//! Sparkplug group id. A watchdog shell owns the broker: it stops it when the test
//! process exits (statics are never dropped) or when the [`Mosquitto`] is dropped.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use crate::prometheus::free_port;

/// Where Debian installs the broker.
pub const MOSQUITTO: &str = "/usr/sbin/mosquitto";

/// A running mosquitto.
pub struct Mosquitto {
    /// The listener address (127.0.0.1:port).
    pub addr: SocketAddr,
    /// The TLS listener's port on 127.0.0.1, when started with [`Mosquitto::start_with_tls`]
    /// (its certificate names `localhost` and `127.0.0.1`).
    pub tls_port: Option<u16>,
    /// A TLS listener that requires a client certificate signed by the same CA
    /// (`require_certificate true`), with [`Mosquitto::start_with_tls`].
    pub mtls_port: Option<u16>,
    watchdog: Child,
    /// Config, data folder and log; the watchdog removes it after the broker stops.
    dir: PathBuf,
}

/// Fails with a hint when mosquitto is not installed.
pub fn require_binary() {
    assert!(
        Path::new(MOSQUITTO).exists(),
        "{MOSQUITTO} is missing: run `scripts/system-deps.sh --mqtt` (scripts/test.sh does)"
    );
}

impl Mosquitto {
    /// Starts mosquitto on a free loopback port (anonymous clients allowed, persistence
    /// off) and waits until it accepts TCP connections.
    pub fn start() -> Mosquitto {
        Mosquitto::start_inner(None, free_port())
    }

    /// As [`Mosquitto::start`] on a given loopback port (a broker restarted where its
    /// clients expect it).
    pub fn start_on(port: u16) -> Mosquitto {
        Mosquitto::start_inner(None, port)
    }

    /// As [`Mosquitto::start`], plus a TLS listener on another free port with the server
    /// certificate of `pki` (signed by its CA).
    pub fn start_with_tls(pki: &crate::trust::Pki) -> Mosquitto {
        Mosquitto::start_inner(Some(pki), free_port())
    }

    fn start_inner(pki: Option<&crate::trust::Pki>, port: u16) -> Mosquitto {
        require_binary();
        let dir = tempfile::tempdir().expect("temp dir").keep();
        let data = dir.join("data");
        std::fs::create_dir_all(&data).expect("data dir");
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        // `user root` keeps the broker from switching to the `mosquitto` user when the
        // tests run as root (CI); it is ignored otherwise.
        let mut config = format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\npersistence_location {data}/\nuser root\nlog_dest stderr\nlog_type error\nlog_type warning\nlog_type notice\nmax_queued_messages 100000\n",
            data = data.display(),
        );
        // The certificate settings after a `listener` line belong to that listener.
        let ports = pki.map(|pki| {
            let files = pki.write(&dir);
            let (tls_port, mtls_port) = (free_port(), free_port());
            let files = format!(
                "cafile {}\ncertfile {}\nkeyfile {}\n",
                files.ca.display(),
                files.server_cert.display(),
                files.server_key.display()
            );
            config.push_str(&format!("listener {tls_port} 127.0.0.1\n{files}"));
            config.push_str(&format!("listener {mtls_port} 127.0.0.1\n{files}require_certificate true\n"));
            (tls_port, mtls_port)
        });
        let (tls_port, mtls_port) = (ports.map(|p| p.0), ports.map(|p| p.1));
        let config_path = dir.join("mosquitto.conf");
        std::fs::write(&config_path, config).expect("write mosquitto.conf");
        let program = format!("{MOSQUITTO} -c {}", config_path.display());
        let watchdog = crate::start_watched(&program, &dir.join("mosquitto.log"), &dir);
        let broker = Mosquitto { addr, tls_port, mtls_port, watchdog, dir };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_err() {
            assert!(Instant::now() < deadline, "mosquitto did not listen on {addr}:\n{}", broker.log());
            std::thread::sleep(Duration::from_millis(50));
        }
        for p in tls_port.into_iter().chain(mtls_port) {
            let tls = SocketAddr::from(([127, 0, 0, 1], p));
            while TcpStream::connect_timeout(&tls, Duration::from_millis(500)).is_err() {
                assert!(Instant::now() < deadline, "mosquitto did not listen on {tls}:\n{}", broker.log());
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        broker
    }

    /// `mqtt://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("mqtt://{}", self.addr)
    }

    /// The broker's process id, found in /proc by its command line (the config path is
    /// this broker's own), for tests that pause it.
    pub fn pid(&self) -> u32 {
        let config = self.dir.join("mosquitto.conf").display().to_string();
        let entries = std::fs::read_dir("/proc").expect("/proc");
        entries
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .find(|pid| {
                let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
                args.first() == Some(&MOSQUITTO.as_bytes()) && args.contains(&config.as_bytes())
            })
            .expect("the broker's process")
    }

    /// Pauses the broker (SIGSTOP: its sockets stay open, nothing is answered) until
    /// the returned guard is dropped (SIGCONT).
    pub fn pause(&self) -> Paused {
        let pid = self.pid();
        signal(pid, "-STOP");
        Paused(pid)
    }

    /// What the broker logged (notices, warnings, errors).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("mosquitto.log")).unwrap_or_default()
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        // The watchdog sees the stop file, ends the broker and removes the folder.
        let _ = std::fs::write(self.dir.join("stop"), b"");
        let _ = self.watchdog.wait();
    }
}

/// A paused broker; dropping it lets the broker go on (a stopped broker would not stop).
pub struct Paused(u32);

impl Drop for Paused {
    fn drop(&mut self) {
        signal(self.0, "-CONT");
    }
}

fn signal(pid: u32, signal: &str) {
    let status = std::process::Command::new("kill").args([signal, &pid.to_string()]).status().expect("kill");
    assert!(status.success(), "kill {signal} {pid}");
}
