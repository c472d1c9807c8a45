//! The real `twin serve` binary as a child process: it prints its bound address, serves
//! the generated client, gives the same report JSON as `twin run --json`, and stops
//! cleanly on SIGTERM.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use twin_e2e::*;
use twin_proto::v1;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twin_serve_runs_and_stops_on_sigterm() {
    let twin = twin_binary();
    let mut child = Command::new(&twin)
        .current_dir(root())
        .args(["serve", "scenes/training-line.ron", "--addr", "127.0.0.1:0", "--paused", "--log", "info"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start twin serve");
    let stdout = child.stdout.take().expect("stdout");
    let stderr = child.stderr.take().expect("stderr");
    let stderr_reader = std::thread::spawn(move || {
        let mut text = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            text.push_str(&line);
            text.push('\n');
        }
        text
    });
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).expect("read the first stdout line");
    let addr: SocketAddr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("first line announces the address, got `{line}`"))
        .parse()
        .expect("a socket address");
    assert_eq!(addr.ip().to_string(), "127.0.0.1");

    let mut client = connect(addr).await;
    let layout = client
        .get_layout(v1::GetLayoutRequest {})
        .await
        .expect("layout")
        .into_inner()
        .layout
        .expect("layout set");
    assert_eq!(layout.stations.len(), 5);

    // The whole scene (5 days) as fast as possible: the same JSON as `twin run --json`.
    client.set_speed(v1::SetSpeedRequest { speed: 0.0, max_speed: true }).await.expect("max speed");
    let until = 5 * twin_core::time::DAY;
    client.run_to(v1::RunToRequest { sim_time_us: until }).await.expect("run to the end");
    assert_eq!(wait_paused(&mut client).await.sim_time_us, until);
    let served = client
        .get_report(v1::GetReportRequest { omit_json: false })
        .await
        .expect("report")
        .into_inner()
        .report
        .expect("report set");
    let batch = Command::new(&twin)
        .current_dir(root())
        .args(["run", "scenes/training-line.ron", "--json"])
        .output()
        .expect("twin run");
    assert!(batch.status.success());
    let batch = String::from_utf8(batch.stdout).expect("utf-8");
    assert_eq!(
        without_wall(&served.json),
        without_wall(&batch),
        "GetReport.json is the document `twin run --json` prints"
    );
    // Same layout of the text too (pretty-printed, same field order), up to wall_s.
    let strip = |s: &str| {
        s.lines().filter(|l| !l.trim_start().starts_with("\"wall_s\"")).collect::<Vec<_>>().join("\n")
    };
    assert_eq!(strip(&served.json), strip(batch.trim_end()));

    // SIGTERM: the process exits on its own, successfully.
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("run kill");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let exit = loop {
        if let Some(exit) = child.try_wait().expect("wait") {
            break exit;
        }
        assert!(Instant::now() < deadline, "twin serve did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    let logs = stderr_reader.join().expect("stderr reader");
    assert!(exit.success(), "exit status {exit:?}; logs:\n{logs}");
    assert!(logs.contains("SIGTERM received"), "logs:\n{logs}");
    assert!(logs.contains("server stopped"), "logs:\n{logs}");
}
