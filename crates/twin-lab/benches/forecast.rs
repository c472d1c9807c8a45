//! Forecast speed on the demo complex: 100 replications of an 8-hour shift from a live
//! state in week 2, on 1 thread, 2 threads and one per available core (target: <= 2 s
//! wall on 2 cores), each with wall and CPU seconds, the cores it kept busy (CPU / wall),
//! events per second and the load average it ran under (the wall time counts only on a
//! quiet machine); then the snapshot (checkpoint) of that state: size, encode time and
//! write time to a file with fsync.
//!
//! `cargo bench -p twin-lab --bench forecast`

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use twin_core::forecast::{Forecaster, Horizon, Request};
use twin_core::time::{DAY, HOUR};
use twin_core::{Model, Sim};

/// CPU seconds this process has used (user + system), from `/proc/self/stat`: on a
/// shared machine the wall time says little, the CPU time what the work costs.
fn cpu_s() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses): utime is the 12th, stime
    // the 13th, in clock ticks (100 per second on Linux).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// The 1-minute load average, from `/proc/loadavg`.
fn load_average() -> f64 {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace().next().and_then(|f| f.parse().ok()).unwrap_or(f64::NAN)
}

fn main() {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let model = Arc::new(Model::load(&root.join("scenes/demo-complex.ron")).expect("demo complex loads"));
    let mut sim = Sim::new(Arc::clone(&model), model.seed);
    // Monday 08:00 of the second week: a working shift, with the weekend's orders open.
    let at = 7 * DAY + 32 * HOUR;
    sim.run_until(at);
    println!(
        "demo complex at {} h: WIP {}, {} open orders with a due date",
        at / HOUR,
        sim.wip(),
        sim.open_orders().len()
    );

    let request = Request { horizon: Horizon::Ahead(8 * HOUR), replications: 100, kpis: vec![] };
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    println!("{cores} cores available; load average {:.2} before", load_average());
    let mut first: Option<String> = None;
    for jobs in [1, 2, 2, cores] {
        let (started, cpu) = (Instant::now(), cpu_s());
        let forecaster = Forecaster::new(&sim, &request).expect("request fits");
        let prepared = started.elapsed().as_secs_f64();
        let forecast =
            twin_lab::run_forecast(&forecaster, jobs, |_, _| {}, &AtomicBool::new(false)).expect("ran");
        let wall = started.elapsed().as_secs_f64();
        let cpu = cpu_s() - cpu;
        let parts = forecast.parts_finished.unwrap();
        println!(
            "100 x 8 h forecast on {jobs} thread(s): {wall:.3} s wall, {cpu:.2} CPU s, {:.2} cores busy, \
             {:.2} M events ({:.2} M events/s wall, {:.2} M/CPU s), load average {:.2} (fork and checks {:.1} ms); \
             parts finished P10/P50/P90 {:.0}/{:.0}/{:.0}, {} orders judged",
            cpu / wall,
            forecast.events as f64 / 1e6,
            forecast.events as f64 / wall / 1e6,
            forecast.events as f64 / cpu.max(1e-9) / 1e6,
            load_average(),
            prepared * 1e3,
            parts.p10,
            parts.p50,
            parts.p90,
            forecast.orders.len()
        );
        // Determinism: the same forecast, byte for byte, whatever the number of threads.
        let bytes = serde_json::to_string(&forecast).expect("JSON");
        match &first {
            None => first = Some(bytes),
            Some(f) => assert_eq!(f, &bytes, "the forecast on {jobs} threads differs from the one on 1"),
        }
    }

    let started = Instant::now();
    let bytes = sim.save("scenes/demo-complex.ron");
    let encode = started.elapsed().as_secs_f64();
    let dir = std::env::temp_dir().join(format!("twin-forecast-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("demo.twin");
    let started = Instant::now();
    let mut file = std::fs::File::create(&path).expect("create");
    file.write_all(&bytes).expect("write");
    file.sync_all().expect("fsync");
    let write = started.elapsed().as_secs_f64();
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "checkpoint of that state: {:.3} MB, encode {:.2} ms, write with fsync {:.2} ms",
        bytes.len() as f64 / 1e6,
        encode * 1e3,
        write * 1e3
    );
}
