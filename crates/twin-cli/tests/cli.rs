//! The `twin` binary as a user runs it: real processes, real files.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn twin(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_twin")).args(args).current_dir(workspace()).output().expect("twin runs")
}

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

const GOOD: &str = r#"// A small valid line used as the base of the broken variants.
Scene(
    name: "base",
    run: (until: "8h", warmup: "1h"),
    products: [
        (id: "a", routing: [
            (op: "cut", at: ["m1"], time: Exp(mean: "1m")),
            (op: "weld", at: ["m2", "m3"], time: Tri(min: "1m", mode: "2m", max: "4m")),
        ]),
    ],
    stations: [
        (id: "m1", servers: 1, buffer: 5),
        (id: "m2", servers: 1),
        (id: "m3", servers: 2, buffer: 3),
    ],
    sources: [
        (id: "orders", arrivals: Poisson(per_hour: 40.0), mix: {"a": 1.0}),
    ],
)
"#;

/// Writes `text` to a real file and runs `twin check` on it.
fn check_text(dir: &Path, text: &str) -> (bool, String) {
    let path = dir.join("scene.ron");
    std::fs::write(&path, text).unwrap();
    let out = twin(&["check", path.to_str().unwrap()]);
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn check_accepts_the_bundled_scenes() {
    let mut scenes: Vec<String> = std::fs::read_dir(workspace().join("scenes/validation"))
        .unwrap()
        .map(|e| e.unwrap().path().to_string_lossy().into_owned())
        .filter(|p| p.ends_with(".ron"))
        .collect();
    scenes.sort();
    let args: Vec<&str> = std::iter::once("check").chain(scenes.iter().map(String::as_str)).collect();
    let out = twin(&args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn check_rejects_bad_scenes_with_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    // (what is wrong, edit of the good scene, substrings the error must contain)
    let cases: &[(&str, &str, &str, &[&str])] = &[
        ("syntax error", "mix: {\"a\": 1.0}", "mix: {\"a\" 1.0}", &["scene.ron:17:", "Expected colon"]),
        ("unknown field", "servers: 2,", "servers: 2, speed: 3,", &["scene.ron:14:", "speed"]),
        ("unknown distribution", "Exp(mean: \"1m\")", "Weibull(shape: 2.0)", &["scene.ron:7:", "Weibull"]),
        ("bad duration", "\"8h\"", "\"8 parsecs\"", &["scene.ron:4:", "invalid duration"]),
        ("negative time", "Exp(mean: \"1m\")", "Exp(mean: \"-1m\")", &["scene.ron:7:", "negative"]),
        (
            "zero processing time",
            "Exp(mean: \"1m\")",
            "Const(\"0s\")",
            &["scene.ron:7:", "products[0].routing[0].time", "greater than zero"],
        ),
        (
            "unknown station",
            "at: [\"m1\"]",
            "at: [\"m9\"]",
            &["scene.ron:7:", "products[0].routing[0].at[0]", "unknown station `m9`"],
        ),
        (
            "step with no station",
            "at: [\"m1\"]",
            "at: []",
            &["scene.ron:7:", "products[0].routing[0].at", "names no station"],
        ),
        (
            "zero capacity",
            "buffer: 5",
            "buffer: 0",
            &["scene.ron:12:", "stations[0].buffer", "buffer capacity"],
        ),
        (
            "zero servers",
            "servers: 2,",
            "servers: 0,",
            &["scene.ron:14:", "stations[2].servers", "at least one server"],
        ),
        (
            "unknown product in mix",
            "{\"a\": 1.0}",
            "{\"b\": 1.0}",
            &["scene.ron:17:", "sources[0].mix.b", "unknown product `b`"],
        ),
        (
            "duplicate id",
            "(id: \"m3\"",
            "(id: \"m2\"",
            &["scene.ron:14:", "stations[2].id", "duplicate id `m2`"],
        ),
        (
            "tri out of order",
            "min: \"1m\", mode: \"2m\"",
            "min: \"3m\", mode: \"2m\"",
            &["scene.ron:8:", "min <= mode <= max"],
        ),
        (
            "station far off the site plan",
            "(id: \"m1\", servers: 1, buffer: 5)",
            "(id: \"m1\", servers: 1, buffer: 5, pos: (18446744073709551616.0, 0.0))",
            &["scene.ron:12:", "stations[0].pos", "within 100000 m"],
        ),
        (
            "path node at 1e300",
            "    sources: [",
            "    paths: [(id: \"floor\", nodes: [(\"n1\", 1e300, 0.0), (\"n2\", 5.0, 0.0)], edges: [(from: \"n1\", to: \"n2\")])],\n    sources: [",
            &["scene.ron:", "paths[0].nodes[0]", "within 100000 m"],
        ),
        (
            "arrival rate beyond any plant",
            "per_hour: 40.0",
            "per_hour: 1e300",
            &["scene.ron:17:", "sources[0].arrivals.per_hour", "at most 3600000"],
        ),
        (
            "zero arrival rate",
            "per_hour: 40.0",
            "per_hour: 0.0",
            &["scene.ron:17:", "sources[0].arrivals.per_hour", "must be positive"],
        ),
        (
            "warm-up too long",
            "warmup: \"1h\"",
            "warmup: \"9h\"",
            &["scene.ron:4:", "run.warmup", "shorter than the run"],
        ),
        (
            "scrap out of range",
            "servers: 1)",
            "servers: 1, scrap: 1.5)",
            &["scene.ron:13:", "stations[1].scrap"],
        ),
        (
            "unknown calendar",
            "(id: \"m2\", servers: 1)",
            "(id: \"m2\", servers: 1, calendar: \"night\")",
            &["scene.ron:13:", "unknown calendar `night`"],
        ),
    ];
    let (ok, stderr) = check_text(dir.path(), GOOD);
    assert!(ok, "the base scene must be valid: {stderr}");
    for (what, from, to, expected) in cases {
        assert!(GOOD.contains(from), "{what}: edit does not apply");
        let text = GOOD.replacen(from, to, 1);
        let (ok, stderr) = check_text(dir.path(), &text);
        assert!(!ok, "{what}: accepted");
        for needle in *expected {
            assert!(stderr.contains(needle), "{what}: `{needle}` missing from:\n{stderr}");
        }
        assert!(!stderr.contains("panicked"), "{what}: panicked");
    }
}

#[test]
fn check_reports_every_problem_not_just_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let text = GOOD.replacen("servers: 2,", "servers: 0,", 1).replacen("at: [\"m1\"]", "at: [\"m9\"]", 1);
    let (ok, stderr) = check_text(dir.path(), &text);
    assert!(!ok);
    assert!(stderr.contains("stations[2].servers") && stderr.contains("unknown station `m9`"), "{stderr}");
    assert!(stderr.contains("2 problem(s)"), "{stderr}");
}

#[test]
fn check_names_a_missing_file() {
    let out = twin(&["check", "no/such/scene.ron"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no/such/scene.ron: cannot read"));
}

fn run_json(args: &[&str]) -> serde_json::Value {
    let out = twin(args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("one JSON object")
}

#[test]
fn run_json_has_the_documented_keys() {
    let v = run_json(&[
        "run",
        "scenes/validation/two_machine.ron",
        "--until",
        "2000m",
        "--warmup",
        "100m",
        "--json",
    ]);
    for key in ["sim_time_s", "events", "wall_s"] {
        assert!(v[key].is_number(), "{key}");
    }
    assert_eq!(v["sim_time_s"], 120_000.0);
    for key in ["throughput_per_hour", "wip_mean", "lead_time_mean_s"] {
        assert!(v["complex"][key].is_number(), "complex.{key}");
    }
    let stations = v["stations"].as_array().unwrap();
    assert_eq!(stations.len(), 2);
    for s in stations {
        for key in
            ["throughput_per_hour", "utilization", "starved", "blocked", "down", "queue_mean", "wait_mean_s"]
        {
            assert!(s[key].is_number(), "stations[].{key}");
        }
        assert!(s["id"].is_string());
    }
    let b = v["bottlenecks"].as_array().unwrap();
    assert!(!b.is_empty() && b[0]["station"].is_string() && b[0]["share"].is_number());
    let shares: Vec<f64> = b.iter().map(|x| x["share"].as_f64().unwrap()).collect();
    assert!(shares.windows(2).all(|w| w[0] >= w[1]), "ranked by share");
}

#[test]
fn same_scene_and_seed_give_byte_identical_json() {
    let strip = |mut v: serde_json::Value| {
        v.as_object_mut().unwrap().remove("wall_s");
        serde_json::to_string(&v).unwrap()
    };
    let args = ["run", "scenes/validation/mmc.ron", "--seed", "7", "--until", "3000m", "--json"];
    let a = strip(run_json(&args));
    let b = strip(run_json(&args));
    assert_eq!(a, b);
    let c =
        strip(run_json(&["run", "scenes/validation/mmc.ron", "--seed", "8", "--until", "3000m", "--json"]));
    assert_ne!(a, c, "another seed gives another run");
}

#[test]
fn run_prints_a_readable_report() {
    let out = twin(&["run", "scenes/validation/mm1.ron", "--until", "1000m", "--warmup", "0s"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in ["M/M/1 validation", "throughput", "Bottlenecks", "s1"] {
        assert!(text.contains(needle), "{needle} missing:\n{text}");
    }
}

/// `--save-state` at 3 days then `--resume` to 7 days prints the report of a straight run
/// to 7 days, byte for byte but `wall_s`, for every bundled scene.
#[test]
fn save_state_then_resume_matches_a_straight_run_on_every_bundled_scene() {
    let dir = tempfile::tempdir().unwrap();
    let without_wall = |out: Output| -> String {
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .filter(|l| !l.contains("\"wall_s\""))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let mut scenes = Vec::new();
    for folder in ["scenes", "scenes/validation"] {
        for entry in std::fs::read_dir(workspace().join(folder)).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            if name.ends_with(".ron") {
                scenes.push(format!("{folder}/{name}"));
            }
        }
    }
    assert!(scenes.len() >= 6);
    for scene in &scenes {
        let state = dir.path().join("state.twin");
        let state = state.to_str().unwrap();
        let straight = without_wall(twin(&["run", scene, "--until", "7d", "--warmup", "1d", "--json"]));
        let first = twin(&["run", scene, "--until", "3d", "--warmup", "1d", "--save-state", state]);
        assert!(first.status.success(), "{scene}: {}", String::from_utf8_lossy(&first.stderr));
        let resumed = without_wall(twin(&["run", "--resume", state, "--until", "7d", "--json"]));
        assert_eq!(resumed, straight, "{scene}");
    }
    // A snapshot is not resumed onto another scene, and a damaged one is refused.
    let state = dir.path().join("mm1.twin");
    let state = state.to_str().unwrap();
    assert!(
        twin(&["run", "scenes/validation/mm1.ron", "--until", "2h", "--warmup", "0s", "--save-state", state])
            .status
            .success()
    );
    let other = twin(&["run", "scenes/validation/mmc.ron", "--resume", state, "--until", "4h"]);
    assert!(
        String::from_utf8_lossy(&other.stderr).contains("another scene"),
        "{}",
        String::from_utf8_lossy(&other.stderr)
    );
    let mut bytes = std::fs::read(state).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 1;
    std::fs::write(state, bytes).unwrap();
    let damaged = twin(&["run", "--resume", state, "--until", "4h"]);
    assert!(
        String::from_utf8_lossy(&damaged.stderr).contains("corrupt"),
        "{}",
        String::from_utf8_lossy(&damaged.stderr)
    );
}
