//! `twin experiment` end to end: the real binary on the shipped experiment file.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn twin(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_twin")).args(args).current_dir(repo()).output().expect("twin runs")
}

fn example() -> String {
    repo().join("scenes/experiments/training-line-buffers.ron").display().to_string()
}

/// Every file in `dir`, by name, with its bytes.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap())
        })
        .collect();
    out.sort();
    out
}

#[test]
fn one_and_two_jobs_write_identical_result_files() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let mut stdouts = Vec::new();
    for (jobs, out) in [("1", &a), ("2", &b)] {
        let o = twin(&[
            "experiment",
            &example(),
            "--replications",
            "4",
            "--jobs",
            jobs,
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "stderr: {}", String::from_utf8_lossy(&o.stderr));
        stdouts.push(o.stdout);
    }
    let (fa, fb) = (files(&a), files(&b));
    let names: Vec<&str> = fa.iter().map(|(n, _)| n.as_str()).collect();
    for expected in [
        "results.json",
        "summary.csv",
        "replications.csv",
        "bottlenecks.csv",
        "report.txt",
        "kpi-throughput.svg",
        "bottlenecks.svg",
    ] {
        assert!(names.contains(&expected), "{expected} missing: {names:?}");
    }
    assert_eq!(fa.len(), fb.len());
    for ((name_a, bytes_a), (name_b, bytes_b)) in fa.iter().zip(&fb) {
        assert_eq!(name_a, name_b);
        assert!(bytes_a == bytes_b, "{name_a} differs between --jobs 1 and --jobs 2");
    }
    assert_eq!(stdouts[0], stdouts[1]);
    let table = String::from_utf8_lossy(&stdouts[0]);
    assert!(table.contains("throughput [1/h], higher is better"), "{table}");
    assert!(table.contains("(baseline)"), "{table}");
}

#[test]
fn a_baseline_replication_is_reproduced_by_twin_run_with_its_seed() {
    let dir = tempfile::tempdir().unwrap();
    let o = twin(&["experiment", &example(), "--replications", "2", "--out", dir.path().to_str().unwrap()]);
    assert!(o.status.success(), "stderr: {}", String::from_utf8_lossy(&o.stderr));
    let csv = std::fs::read_to_string(dir.path().join("replications.csv")).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let col = header.iter().position(|h| *h == "throughput").unwrap();
    let row: Vec<&str> = csv.lines().find(|l| l.starts_with("baseline,1,")).unwrap().split(',').collect();
    let (seed, throughput) = (row[2], row[col]);
    // The experiment runs the scene's own length and warm-up (5d, 8h).
    let o = twin(&["run", "scenes/training-line.ron", "--seed", seed, "--json"]);
    assert!(o.status.success());
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["complex"]["throughput_per_hour"].as_f64().unwrap().to_string(), throughput);
}

#[test]
fn json_output_and_quiet_logs_when_not_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let o = twin(&[
        "experiment",
        &example(),
        "--replications",
        "2",
        "--json",
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    assert!(o.status.success());
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).expect("stdout is one JSON document");
    assert_eq!(doc["outcome"], "Completed");
    assert_eq!(doc["baseline"], "baseline");
    let tp = doc["kpis"].as_array().unwrap().iter().find(|k| k["name"] == "throughput").unwrap();
    let second =
        tp["rows"].as_array().unwrap().iter().find(|r| r["variant"] == "second mill server").unwrap();
    assert_eq!(second["rank"], 1);
    // No progress bar escape codes on a pipe; a handful of lines only.
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!stderr.contains('\u{1b}'), "{stderr}");
    assert!(stderr.lines().count() <= 8, "{stderr}");
}

#[test]
fn a_bad_edit_fails_naming_the_variant_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.ron");
    let scene = repo().join("scenes/training-line.ron");
    std::fs::write(
        &path,
        format!(
            r#"Experiment(
    name: "bad",
    scene: "{}",
    replications: 3,
    kpis: [(path: "complex.throughput_per_hour")],
    variants: [
        (name: "baseline"),
        (name: "more trucks", edits: [SetTruckCount(count: 3)]),
        (name: "typo", edits: [SetBuffer(station: "mil", capacity: 4)]),
    ],
)"#,
            scene.display()
        ),
    )
    .unwrap();
    let o = twin(&["experiment", path.to_str().unwrap(), "--out", dir.path().join("out").to_str().unwrap()]);
    assert!(!o.status.success());
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("bad.ron:8:")
            && stderr.contains("variant \"more trucks\": variants[1].edits[0].count")
            && stderr.contains("the scene has no trucks"),
        "{stderr}"
    );
    assert!(
        stderr.contains("bad.ron:9:")
            && stderr.contains("variant \"typo\": variants[2].edits[0].station: no station `mil`"),
        "{stderr}"
    );
    assert!(!dir.path().join("out").exists(), "nothing is written for a bad file");
}

#[test]
fn ctrl_c_cancels_and_still_reports_what_finished() {
    let dir = tempfile::tempdir().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_twin"))
        .args(["experiment", &example(), "--replications", "5000", "--out", dir.path().to_str().unwrap()])
        .current_dir(repo())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The first line comes once the Ctrl-C handler is in place; 40 000 replications
    // take minutes, so the interrupt lands mid-way.
    let mut child = child;
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut first = String::new();
    std::io::BufRead::read_line(&mut stderr, &mut first).unwrap();
    assert!(first.starts_with("experiment \"training-line-buffers\""), "{first}");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let killed = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let o = child.wait_with_output().unwrap();
    assert!(!o.status.success(), "a cancelled experiment is not a success");
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("CANCELLED:") && stdout.contains("estimates are partial"), "{stdout}");
    let csv = std::fs::read_to_string(dir.path().join("replications.csv")).unwrap();
    let rows = csv.lines().count() - 1;
    assert!(rows > 0 && rows < 40_000, "{rows} replications written");
}
