//! Load benchmark: N viewers stream state at R Hz from an in-process server on a real
//! port while a control client issues calls. Prints frames/s delivered, the delay from
//! the simulation thread publishing a snapshot to a client receiving it (p50/p99), the
//! control-call latency (p50/p99), and this process's CPU and resident memory over time.
//!
//! `cargo bench -p twin-server --bench load -- [VIEWERS] [RATE_HZ] [SECONDS] [SPEED] [START_H]`
//! (defaults 100, 30, 20, 60, 0). With START_H the server first runs as fast as possible
//! to that simulated hour (e.g. 34 = Monday 10:00 in the demo complex, when every shift
//! works and the AGVs and trucks drive), then the measurement starts. Server and clients
//! share the process, so CPU and memory include the clients' share.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prost::Message;
use tonic::transport::Endpoint;
use twin_proto::v1;
use twin_proto::v1::twin_service_client::TwinServiceClient;
use twin_server::{Config, Speed, TwinServer};

/// Linux USER_HZ: the unit of utime/stime in /proc/self/stat.
const CLOCK_TICKS_PER_S: f64 = 100.0;

fn scene() -> PathBuf {
    let scenes = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scenes");
    let demo = scenes.join("demo-complex.ron");
    if demo.exists() { demo } else { scenes.join("training-line.ron") }
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// utime + stime of this process, seconds.
fn cpu_s() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are fields 14, 15.
    let rest = stat.rsplit_once(')').map_or("", |r| r.1);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / CLOCK_TICKS_PER_S
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[idx]
}

fn main() {
    let args: Vec<f64> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let viewers = args.first().map_or(100, |v| *v as usize);
    let rate_hz = args.get(1).map_or(30, |v| *v as u32);
    let seconds = args.get(2).map_or(20.0, |v| *v);
    let speed = args.get(3).copied().unwrap_or(60.0);
    let start_h = args.get(4).copied().unwrap_or(0.0);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(bench(viewers, rate_hz, seconds, speed, start_h));
}

async fn bench(viewers: usize, rate_hz: u32, seconds: f64, speed: f64, start_h: f64) {
    let scene = scene();
    println!(
        "load: {viewers} viewers at {rate_hz} Hz for {seconds} s, speed {speed}, from hour {start_h}, scene {}",
        scene.display()
    );
    let config = Config {
        speed: Speed::Paced(speed),
        scenes_dir: scene.parent().expect("scenes dir").to_path_buf(),
        ..Config::new(&scene)
    };
    let server = TwinServer::new(config).expect("server");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");

    // Publish instants by (generation, sim time), for the tick-to-client delay.
    let published: Arc<Mutex<HashMap<(u64, u64), Instant>>> = Arc::default();
    {
        let mut rx = server.snapshots();
        let published = Arc::clone(&published);
        tokio::spawn(async move {
            while rx.changed().await.is_ok() {
                let snap = rx.borrow_and_update().clone();
                let mut map = published.lock().expect("lock");
                map.insert((snap.generation, snap.clock.sim_time), snap.published);
                if map.len() > 20_000 {
                    let cutoff = Instant::now() - Duration::from_secs(5);
                    map.retain(|_, t| *t > cutoff);
                }
            }
        });
    }
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let serve = tokio::spawn(server.serve(listener, async move {
        let _ = stop_rx.await;
    }));

    let url = format!("http://{addr}");
    if start_h > 0.0 {
        fast_forward(&url, (start_h * 3600e6) as u64, speed).await;
    }
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(seconds);
    let warmup = Duration::from_secs(2);
    let mut tasks = Vec::new();
    for _ in 0..viewers {
        let url = url.clone();
        let published = Arc::clone(&published);
        tasks.push(tokio::spawn(async move {
            let channel = Endpoint::from_shared(url).expect("uri").connect().await.expect("connect");
            let mut client = TwinServiceClient::new(channel);
            let mut stream = client
                .stream_state(v1::StreamStateRequest { rate_hz, full_frames_only: false })
                .await
                .expect("stream")
                .into_inner();
            let mut frames = 0u64;
            let mut delays = Vec::new();
            // (vehicles listed, encoded bytes) over the measured frames.
            let mut volume = (0u64, 0u64);
            while let Ok(Some(frame)) =
                tokio::time::timeout_at(end.into(), stream.message()).await.unwrap_or(Ok(None))
            {
                let now = Instant::now();
                if now < start + warmup {
                    continue;
                }
                frames += 1;
                volume.0 += frame.vehicles.len() as u64;
                volume.1 += frame.encoded_len() as u64;
                let clock = frame.clock.expect("clock");
                let key = (frame.layout_generation, clock.sim_time_us);
                if let Some(t) = published.lock().expect("lock").get(&key) {
                    delays.push(now.duration_since(*t).as_secs_f64() * 1e3);
                }
            }
            (frames, delays, volume)
        }));
    }

    // Control calls under load: SetSpeed back and forth, every 50 ms.
    let control = {
        let url = url.clone();
        tokio::spawn(async move {
            let channel = Endpoint::from_shared(url).expect("uri").connect().await.expect("connect");
            let mut client = TwinServiceClient::new(channel);
            let mut latencies = Vec::new();
            tokio::time::sleep(warmup).await;
            let mut tick = tokio::time::interval(Duration::from_millis(50));
            while Instant::now() < end {
                tick.tick().await;
                let t = Instant::now();
                client.set_speed(v1::SetSpeedRequest { speed, max_speed: false }).await.expect("set speed");
                latencies.push(t.elapsed().as_secs_f64() * 1e3);
            }
            latencies
        })
    };

    // Resources over time.
    let sampler = tokio::spawn(async move {
        let mut rows = Vec::new();
        let mut last = (Instant::now(), cpu_s());
        let mut tick = tokio::time::interval(Duration::from_secs(2));
        tick.tick().await;
        while Instant::now() < end {
            tick.tick().await;
            let (now, cpu) = (Instant::now(), cpu_s());
            let share = (cpu - last.1) / now.duration_since(last.0).as_secs_f64();
            rows.push((now.duration_since(start).as_secs_f64(), share, rss_kib()));
            last = (now, cpu);
        }
        rows
    });

    let mut frames = 0;
    let mut delays = Vec::new();
    let mut volume = (0u64, 0u64);
    for t in tasks {
        let (f, d, v) = t.await.expect("viewer task");
        frames += f;
        delays.extend(d);
        volume = (volume.0 + v.0, volume.1 + v.1);
    }
    let mut control = control.await.expect("control task");
    let rows = sampler.await.expect("sampler");
    let measured = seconds - warmup.as_secs_f64();
    delays.sort_by(f64::total_cmp);
    control.sort_by(f64::total_cmp);

    println!(
        "frames delivered: {:.0}/s in total, {:.1}/s per viewer (asked {rate_hz})",
        frames as f64 / measured,
        frames as f64 / measured / viewers as f64
    );
    println!(
        "frame content: {:.1} vehicles and {:.1} KiB per frame on average ({:.2} MiB/s to all viewers)",
        volume.0 as f64 / frames.max(1) as f64,
        volume.1 as f64 / 1024.0 / frames.max(1) as f64,
        volume.1 as f64 / measured / (1024.0 * 1024.0)
    );
    println!(
        "tick-to-client delay: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} frames matched)",
        percentile(&delays, 0.5),
        percentile(&delays, 0.99),
        delays.last().copied().unwrap_or(f64::NAN),
        delays.len()
    );
    println!(
        "control call (SetSpeed) under load: p50 {:.2} ms, p99 {:.2} ms ({} calls)",
        percentile(&control, 0.5),
        percentile(&control, 0.99),
        control.len()
    );
    println!("  t (s)   CPU (cores)   RSS (MiB)");
    for (t, cpu, rss) in rows {
        println!("  {t:5.1}   {cpu:11.2}   {:9.1}", rss as f64 / 1024.0);
    }
    let _ = stop_tx.send(());
    let _ = serve.await;
}

/// Runs the live twin as fast as possible to `sim_time_us`, then resumes it paced.
async fn fast_forward(url: &str, sim_time_us: u64, speed: f64) {
    let t = Instant::now();
    let channel = Endpoint::from_shared(url.to_string()).expect("uri").connect().await.expect("connect");
    let mut client = TwinServiceClient::new(channel);
    // RunTo first: at max speed the clock could pass the target between two calls.
    client.run_to(v1::RunToRequest { sim_time_us }).await.expect("run to");
    client.set_speed(v1::SetSpeedRequest { speed: 0.0, max_speed: true }).await.expect("max speed");
    let mut stream = client
        .stream_state(v1::StreamStateRequest { rate_hz: 10, full_frames_only: true })
        .await
        .expect("stream")
        .into_inner();
    while let Ok(Some(frame)) = stream.message().await {
        if frame.clock.is_some_and(|c| c.paused && c.sim_time_us >= sim_time_us) {
            break;
        }
    }
    client.set_speed(v1::SetSpeedRequest { speed, max_speed: false }).await.expect("speed");
    client.resume(v1::ResumeRequest {}).await.expect("resume");
    println!("fast-forward to {:.1} h took {:.1} s", sim_time_us as f64 / 3600e6, t.elapsed().as_secs_f64());
}
