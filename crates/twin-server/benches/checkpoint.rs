//! Checkpoint benchmark: the demo complex after a simulated shift, checkpointed through
//! the server's own writer. Prints the pause the simulation thread sees (the copy of the
//! state), the encoding time, the file size, the write time (encode + write + fsync +
//! rename, on the writer thread) and the time to restore the file.
//!
//! `cargo bench -p twin-server --bench checkpoint -- [SCENE] [HOURS] [ROUNDS]`
//! (defaults scenes/demo-complex.ron, 8, 10).

use std::sync::Arc;
use std::time::Instant;

use twin_core::time::HOUR;
use twin_core::{Model, Sim};
use twin_server::store::checkpoints::{self, Checkpoints, Meta, Taken};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let scene = args.first().map_or_else(|| root.join("scenes/demo-complex.ron"), Into::into);
    let hours: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(8);
    let rounds: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(10).max(1);
    let model = Arc::new(Model::load(&scene).unwrap_or_else(|e| panic!("{}: {e}", scene.display())));
    let mut sim = Sim::new(Arc::clone(&model), model.seed);
    let started = Instant::now();
    sim.run_until(hours * HOUR);
    println!(
        "{}: simulated {hours} h in {:.2} s ({} events)",
        scene.display(),
        started.elapsed().as_secs_f64(),
        sim.events()
    );

    let pauses: Vec<f64> = (0..rounds)
        .map(|_| {
            let t = Instant::now();
            let copy = sim.clone();
            let s = t.elapsed().as_secs_f64();
            drop(copy);
            s
        })
        .collect();
    let encodes: Vec<f64> = (0..rounds)
        .map(|_| {
            let t = Instant::now();
            let bytes = sim.save("demo");
            let s = t.elapsed().as_secs_f64();
            drop(bytes);
            s
        })
        .collect();

    let dir = tempfile::tempdir_in(root.join("target")).expect("temp dir");
    let writer = Checkpoints::start(dir.path().join("checkpoints"), rounds, Vec::new()).expect("writer");
    let mut writes = Vec::new();
    for round in 0..rounds {
        let meta = Meta {
            scene: "demo".into(),
            seed: model.seed,
            run_start: 1,
            log_seq: round as u64 + 1,
            run_commands: 0,
            sim_time: sim.now(),
            written_unix_ms: 0,
            layout: Vec::new(),
            telemetry: None,
        };
        let t = Instant::now();
        match writer.take(&sim, meta, "demo", true) {
            Taken::Queued { .. } => writes.push(t.elapsed().as_secs_f64()),
            Taken::Skipped => println!("round {round}: skipped"),
        }
    }
    let held = writer.held();
    let newest = held.last().expect("a checkpoint was written");
    let restores: Vec<f64> = (0..rounds)
        .map(|_| {
            let t = Instant::now();
            let (_, restored) = checkpoints::load(&newest.path, &model, "demo").expect("restores");
            let s = t.elapsed().as_secs_f64();
            assert_eq!(restored.now(), sim.now());
            s
        })
        .collect();
    println!("checkpoint size:            {:.1} KiB", newest.bytes as f64 / 1024.0);
    println!("pause (state copy), median: {:.3} ms", median(pauses) * 1e3);
    println!("encode (Sim::save), median: {:.3} ms", median(encodes) * 1e3);
    println!("write (encode+write+fsync): {:.3} ms median over {rounds}", median(writes) * 1e3);
    println!("restore (read+check+load):  {:.3} ms median", median(restores) * 1e3);
}
