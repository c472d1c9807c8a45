//! Experiments on the real training line (`scenes/training-line.ron`): the statistics
//! must say what the line's physics says, and say it the same way every time.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use twin_core::Sim;
use twin_lab::{Experiment, LabError, Outcome, Results, RunOptions};

fn scenes() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenes")
}

/// An experiment on the training line with these variants (RON list items), KPIs and
/// replications; the run is shortened to 2 days to keep the tests quick.
fn experiment(variants: &str, replications: u32) -> Experiment {
    let text = format!(
        r#"Experiment(
            name: "test",
            scene: "training-line.ron",
            replications: {replications},
            seed: 11,
            run: (until: "2d", warmup: "4h"),
            kpis: [
                (path: "complex.throughput_per_hour", name: "throughput"),
                (path: "complex.lead_time_mean_s"),
                (path: "bottlenecks[mill].share"),
            ],
            variants: [(name: "baseline"), {variants}],
        )"#
    );
    match Experiment::parse(&text, Path::new("test.ron"), &scenes()) {
        Ok(e) => e,
        Err(e) => panic!("experiment should be valid:\n{e}"),
    }
}

fn run(exp: &Experiment, jobs: usize) -> Results {
    twin_lab::run(exp, &RunOptions { jobs }, |_| {}, &AtomicBool::new(false)).expect("experiment runs")
}

const BUFFERS: &str = r#"
    (name: "mill buffer 10", edits: [SetBuffer(station: "mill", capacity: 10)]),
    (name: "saw buffer 10", edits: [SetBuffer(station: "saw", capacity: 10)]),
    (name: "mill moved", edits: [MoveStation(station: "mill", pos: (30.0, 20.0))]),
"#;

#[test]
fn buffer_before_the_bottleneck_helps_and_a_change_that_cannot_matter_does_not() {
    let results = run(&experiment(BUFFERS, 12), 2);
    assert_eq!(results.outcome, Outcome::Completed);
    let tp = results.kpi("throughput").expect("throughput table");

    let mill = tp.row("mill buffer 10").unwrap().diff.unwrap();
    assert!(mill.low > 0.0, "mill buffer should raise throughput: {mill:?}");
    assert!(tp.row("mill buffer 10").unwrap().significant);
    assert!(tp.row("mill buffer 10").unwrap().rank < tp.row("baseline").unwrap().rank);

    // The saw draws from a saturated source and is never starved, and positions do not
    // enter the dynamics (no vehicles yet): with common random numbers both are exact
    // copies of the baseline.
    for name in ["saw buffer 10", "mill moved"] {
        let row = tp.row(name).unwrap();
        let d = row.diff.unwrap();
        assert!(d.low <= 0.0 && 0.0 <= d.high, "{name}: {d:?}");
        assert!(!row.significant);
    }
    // The mill stays the bottleneck with a bigger buffer in front of it.
    let shares = results.bottlenecks.iter().find(|b| b.variant == "mill buffer 10").unwrap();
    assert_eq!(shares.stations[0].station, "mill");
}

#[test]
fn paired_intervals_shrink_as_replications_grow() {
    let variants = r#"(name: "mill buffer 10", edits: [SetBuffer(station: "mill", capacity: 10)])"#;
    // Expected half-widths differ by about 5x (t/sqrt(n): 2.78/sqrt(5) vs 2.00/sqrt(60)); a
    // sample of 5 can still underestimate its spread, so only a strict shrink is asserted.
    let few = run(&experiment(variants, 5), 2);
    let many = run(&experiment(variants, 60), 2);
    for kpi in ["throughput", "complex.lead_time_mean_s"] {
        let hw = |r: &Results| {
            let t = r.kpi(kpi).unwrap();
            (
                t.row("baseline").unwrap().estimate.half_width,
                t.row("mill buffer 10").unwrap().diff.unwrap().half_width,
            )
        };
        let (mean_few, diff_few) = hw(&few);
        let (mean_many, diff_many) = hw(&many);
        assert!(mean_many < mean_few, "{kpi} mean: {mean_few} -> {mean_many}");
        assert!(diff_many < diff_few, "{kpi} difference: {diff_few} -> {diff_many}");
    }
}

#[test]
fn common_random_numbers_sharpen_the_difference() {
    let variants = r#"(name: "mill buffer 10", edits: [SetBuffer(station: "mill", capacity: 10)])"#;
    let crn = experiment(variants, 10);
    let mut independent = crn.clone();
    independent.common_random_numbers = false;
    assert_eq!(crn.seed_of(0, 3), crn.seed_of(1, 3));
    assert_ne!(crn.seed_of(0, 3), crn.seed_of(0, 4));
    assert_ne!(independent.seed_of(0, 3), independent.seed_of(1, 3));
    let hw =
        |r: &Results| r.kpi("throughput").unwrap().row("mill buffer 10").unwrap().diff.unwrap().half_width;
    let (sharp, blunt) = (hw(&run(&crn, 2)), hw(&run(&independent, 2)));
    assert!(sharp * 3.0 < blunt, "CRN half-width {sharp} vs independent {blunt}");
}

#[test]
fn results_do_not_depend_on_the_number_of_jobs() {
    let exp = experiment(BUFFERS, 5);
    let one = run(&exp, 1);
    let two = run(&exp, 2);
    let three = run(&exp, 3);
    assert_eq!(one, two);
    assert_eq!(one, three);
    assert_eq!(one.to_json(), two.to_json());
}

#[test]
fn a_replication_is_the_plain_core_run_with_its_seed() {
    let exp = experiment("", 3);
    let results = run(&exp, 2);
    for rep in results.runs.iter().filter(|r| r.variant == "baseline") {
        let mut sim = Sim::new(Arc::clone(&exp.variants[0].model), rep.seed);
        sim.run_until(exp.until);
        let report = sim.report();
        assert_eq!(rep.values[0], report.complex.throughput_per_hour);
        assert_eq!(rep.values[1], report.complex.lead_time_mean_s);
        assert_eq!(rep.events, report.events);
    }
}

#[test]
fn progress_reports_every_replication_once_in_count_order() {
    let exp = experiment(BUFFERS, 3);
    let seen = Mutex::new(Vec::new());
    twin_lab::run(
        &exp,
        &RunOptions { jobs: 2 },
        |p| seen.lock().unwrap().push((p.done, p.total, p.variant_idx, p.replication, p.values.len())),
        &AtomicBool::new(false),
    )
    .unwrap();
    let seen = seen.into_inner().unwrap();
    let total = exp.total_runs();
    assert_eq!(seen.len(), total);
    for (i, &(done, t, _, _, n_values)) in seen.iter().enumerate() {
        assert_eq!((done, t, n_values), (i + 1, total, 3));
    }
    let mut pairs: Vec<(usize, u32)> = seen.iter().map(|s| (s.2, s.3)).collect();
    pairs.sort_unstable();
    pairs.dedup();
    assert_eq!(pairs.len(), total);
}

#[test]
fn cancelling_stops_early_with_partial_results() {
    let exp = experiment(BUFFERS, 40);
    let cancel = AtomicBool::new(false);
    let results = twin_lab::run(
        &exp,
        &RunOptions { jobs: 2 },
        |p| {
            if p.done >= 10 {
                cancel.store(true, Ordering::Relaxed);
            }
        },
        &cancel,
    )
    .unwrap();
    assert_eq!(results.outcome, Outcome::Cancelled);
    let done: u32 = results.variants.iter().map(|v| v.replications).sum();
    assert!((10..=12).contains(&done), "{done} replications finished");
    assert_eq!(results.runs.len(), done as usize);
    // Work is handed out replication-major, so every variant has about as many runs.
    let min = results.variants.iter().map(|v| v.replications).min().unwrap();
    assert!(min >= 2, "{:?}", results.variants);
}

#[test]
fn added_and_removed_stations_change_the_line_as_documented() {
    let variants = r#"
        (name: "second mill beside", edits: [AddStation(
            station: (id: "mill2", kind: Machine, factory: "hall", buffer: 3),
            alternative_to: "mill",
        )]),
        (name: "no inspection", edits: [RemoveStation(station: "inspection")]),
        (name: "deburr step", edits: [AddStation(
            station: (id: "deburr", buffer: 2),
            step: (product: "bracket", after: "mill", op: "deburr", time: Const("20s")),
        )]),
    "#;
    let exp = experiment(variants, 6);
    let model = |name: &str| Arc::clone(&exp.variants.iter().find(|v| v.name == name).unwrap().model);
    let beside = model("second mill beside");
    assert_eq!(beside.products[0].steps[1].at.len(), 2);
    let removed = model("no inspection");
    assert_eq!(removed.products[0].steps.len(), 4);
    assert!(removed.station("inspection").is_none());
    assert!(removed.conveyors.is_empty(), "the belt into inspection goes with it");
    let deburr = model("deburr step");
    assert_eq!(deburr.products[0].steps[2].op, "deburr");

    let results = run(&exp, 2);
    let tp = results.kpi("throughput").unwrap();
    assert!(tp.row("second mill beside").unwrap().diff.unwrap().low > 3.0);
    // The inspection's 2% scrap is gone, so more good parts leave.
    assert!(tp.row("no inspection").unwrap().diff.unwrap().low > 0.0);
}

#[test]
fn sweeps_expand_into_named_variants() {
    let text = r#"Experiment(
        name: "grid", scene: "training-line.ron", replications: 2, run: (until: "1d", warmup: "1h"),
        kpis: [(path: "complex.throughput_per_hour")],
        variants: [(name: "base")],
        sweeps: [(name: "grid", edits: [SetBuffer(station: "saw", capacity: 1)],
                  axes: [(param: Buffer("mill"), values: [1, 4]), (param: Servers("assembly"), values: [2, 3, 4])])],
    )"#;
    let exp = Experiment::parse(text, Path::new("grid.ron"), &scenes()).unwrap();
    let names = exp.variant_names();
    assert_eq!(names.len(), 1 + 6);
    assert_eq!(names[1], "grid mill.buffer=1, assembly.servers=2");
    assert_eq!(names[6], "grid mill.buffer=4, assembly.servers=4");
    let last = &exp.variants[6];
    let mill = last.model.station("mill").unwrap() as usize;
    let assembly = last.model.station("assembly").unwrap() as usize;
    assert_eq!(last.model.stations[mill].buffer, Some(4));
    assert_eq!(last.model.stations[assembly].servers, 4);
    assert_eq!(last.edits, ["saw.buffer = 1", "mill.buffer = 4", "assembly.servers = 4"]);
    assert_eq!(exp.total_runs(), 14);

    let unnamed = text.replace(r#"(name: "grid", edits"#, "(edits");
    let exp = Experiment::parse(&unnamed, Path::new("grid.ron"), &scenes()).unwrap();
    assert_eq!(exp.variant_names()[1], "mill.buffer=1, assembly.servers=2");
}

#[test]
fn the_shipped_example_is_valid_and_writes_every_file() {
    let path = scenes().join("experiments/training-line-buffers.ron");
    let mut exp = Experiment::load(&path).unwrap();
    exp.replications = 2;
    let results = run(&exp, 2);
    let dir = tempfile::tempdir().unwrap();
    let written = twin_lab::output::write_all(&results, dir.path()).unwrap();
    let names: Vec<String> =
        written.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    for expected in [
        "results.json",
        "summary.csv",
        "replications.csv",
        "bottlenecks.csv",
        "kpi-throughput.svg",
        "bottlenecks.svg",
    ] {
        assert!(names.iter().any(|n| n == expected), "{expected} missing from {names:?}");
    }
    let svg = std::fs::read_to_string(dir.path().join("kpi-throughput.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("second mill server"));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("results.json")).unwrap()).unwrap();
    assert_eq!(json["variants"].as_array().unwrap().len(), exp.variants.len());
    let csv = std::fs::read_to_string(dir.path().join("replications.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + exp.total_runs());
}

#[test]
fn a_kpi_that_is_null_in_a_run_is_a_clear_error() {
    let text = r#"Experiment(
        name: "null", scene: "training-line.ron", replications: 2, run: (until: "1d", warmup: "1h"),
        kpis: [(path: "complex.on_time_share")],
        variants: [(name: "base")],
    )"#;
    let exp = Experiment::parse(text, Path::new("null.ron"), &scenes()).unwrap();
    let err = twin_lab::run(&exp, &RunOptions { jobs: 1 }, |_| {}, &AtomicBool::new(false)).unwrap_err();
    assert!(matches!(err, LabError::Kpi { .. }));
    let text = err.to_string();
    assert!(text.contains("\"base\"") && text.contains("complex.on_time_share"), "{text}");
}

#[test]
fn the_demo_complex_experiment_runs_with_vehicle_and_truck_edits() {
    let mut exp = Experiment::load(&scenes().join("experiments/demo-complex.ron")).unwrap();
    let names = exp.variant_names();
    assert!(names.iter().any(|n| n == "6 AGVs in pharma"));
    assert!(names.iter().any(|n| n == "trucks.count=3"));
    let agvs = &exp.variants[names.iter().position(|n| n == "6 AGVs in pharma").unwrap()];
    assert_eq!(agvs.model.fleets.iter().find(|f| f.id == "bio_agv").unwrap().count, 6);
    // Two variants, two replications: enough to see more orders give more output in each.
    exp.variants.retain(|v| v.name == "baseline" || v.name == "pharma orders +25%");
    exp.replications = 2;
    let results = run(&exp, 2);
    let output = results.kpis.iter().position(|k| k.name == "pharma output").unwrap();
    for k in 0..2 {
        let value = |variant: &str| {
            results.runs.iter().find(|r| r.variant == variant && r.replication == k).unwrap().values[output]
        };
        assert!(value("pharma orders +25%") > value("baseline"), "replication {k}");
    }
    for run in &results.runs {
        assert!(run.values.iter().all(|v| v.is_finite()), "{run:?}");
    }
}
