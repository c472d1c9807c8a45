//! Calibration of the forecast bands against a driftless plant.
//!
//! A plant without drift is the scene itself under its own seed: the twin, perfectly in
//! step with it, forks the plant's own state, forecasts the next window, and the plant
//! then lives that window with its own random streams. At each forecast point the
//! realised value is checked against the P10-P90 band; over many points the band should
//! hold it 80% of the time (a little more for integer counts whose band edges count as
//! inside). Points are disjoint consecutive windows of several independent plants.
//!
//! ```sh
//! cargo run --release -p twin-lab --example calibrate_forecast -- \
//!     scenes/demo-complex.ron --plants 4 --windows 30 --reps 100 --start 7d --horizon 8h
//! ```

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use twin_core::forecast::{Forecaster, Horizon, Request};
use twin_core::time::Duration;
use twin_core::{Model, Sim};

struct Args {
    scene: String,
    plants: u64,
    windows: u32,
    reps: u32,
    start: u64,
    horizon: u64,
    jobs: usize,
    /// Number of the first plant (its seed is 90,000 + the number).
    first_plant: u64,
}

fn parse() -> Result<Args, String> {
    let mut args = Args {
        scene: "scenes/demo-complex.ron".into(),
        plants: 4,
        windows: 30,
        reps: 100,
        start: 7 * twin_core::time::DAY,
        horizon: 8 * twin_core::time::HOUR,
        jobs: 0,
        first_plant: 0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--plants" => args.plants = value()?.parse().map_err(|e| format!("--plants: {e}"))?,
            "--windows" => args.windows = value()?.parse().map_err(|e| format!("--windows: {e}"))?,
            "--reps" => args.reps = value()?.parse().map_err(|e| format!("--reps: {e}"))?,
            "--first-plant" => {
                args.first_plant = value()?.parse().map_err(|e| format!("--first-plant: {e}"))?
            }
            "--jobs" => args.jobs = value()?.parse().map_err(|e| format!("--jobs: {e}"))?,
            "--start" => args.start = Duration::parse(&value()?)?.micros(),
            "--horizon" => args.horizon = Duration::parse(&value()?)?.micros(),
            s if !s.starts_with("--") => args.scene = s.to_string(),
            s => return Err(format!("unknown flag {s}")),
        }
    }
    Ok(args)
}

/// Points inside the band, per KPI.
#[derive(Default)]
struct Tally {
    parts: usize,
    wip: usize,
    va: usize,
    points: usize,
}

fn main() -> Result<(), String> {
    let args = parse()?;
    let model = Arc::new(Model::load(std::path::Path::new(&args.scene)).map_err(|e| e.to_string())?);
    let started = Instant::now();
    let mut tally = Tally::default();
    for plant_idx in args.first_plant..args.first_plant + args.plants {
        // The plant: the scene under a seed of its own, far from the twin's.
        let mut plant = Sim::new(Arc::clone(&model), 90_000 + plant_idx);
        plant.run_until(args.start);
        for _ in 0..args.windows {
            let request =
                Request { horizon: Horizon::Ahead(args.horizon), replications: args.reps, kpis: vec![] };
            let forecaster = Forecaster::new(&plant, &request).map_err(|e| e.to_string())?;
            let forecast = twin_lab::run_forecast(&forecaster, args.jobs, |_, _| {}, &AtomicBool::new(false))
                .ok_or("cancelled")?;
            let (finished0, va0) =
                (plant.lifetime_counts().1, plant.report_with(Default::default()).value_added);
            let window_start = plant.totals().window_start;
            plant.run_until(forecaster.until());
            let finished = (plant.lifetime_counts().1 - finished0) as f64;
            let wip = plant.wip() as f64;
            // The plant's value-added rate over the window, by the report's sums.
            let va1 = plant.report_with(Default::default()).value_added;
            let va = if plant.totals().window_start == window_start {
                let revenue = va1.revenue - va0.revenue;
                let added =
                    revenue - (va1.material_cost - va0.material_cost) - (va1.energy_cost - va0.energy_cost);
                if revenue > 0.0 { added / revenue } else { 0.0 }
            } else {
                va1.rate
            };
            tally.parts += usize::from(forecast.parts_finished.unwrap().holds(finished));
            tally.wip += usize::from(forecast.wip_end.unwrap().holds(wip));
            tally.va += usize::from(forecast.value_added_rate.unwrap().holds(va));
            tally.points += 1;
        }
        eprintln!(
            "plant {plant_idx}: {} points so far, {:.0} s",
            tally.points,
            started.elapsed().as_secs_f64()
        );
    }
    let share = |n: usize| 100.0 * n as f64 / tally.points as f64;
    println!(
        "{}: {} forecast points ({} plants x {} windows of {} from {}), {} replications each, {:.0} s",
        model.name,
        tally.points,
        args.plants,
        args.windows,
        Duration(args.horizon),
        Duration(args.start),
        args.reps,
        started.elapsed().as_secs_f64()
    );
    println!("P10-P90 coverage: parts finished {:.1}%", share(tally.parts));
    println!("P10-P90 coverage: WIP at the horizon {:.1}%", share(tally.wip));
    println!("P10-P90 coverage: value-added rate {:.1}%", share(tally.va));
    println!("(target 80% +- 5%; binomial standard error at this many points: {:.1} points)", {
        let n = tally.points as f64;
        100.0 * (0.8 * 0.2 / n).sqrt()
    });
    Ok(())
}
