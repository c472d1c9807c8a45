//! Golden reports: `twin run --json` (without `wall_s`) for every bundled scene and seeds
//! 1-5, compared byte for byte with the files in `tests/golden/`.
//!
//! They pin the simulation's behaviour while its code moves: a refactoring must leave
//! every file unchanged. A change that alters a figure on purpose regenerates them with
//! `TWIN_BLESS=1 cargo test -p twin-cli --test golden` and says so in its commit.

use std::path::PathBuf;
use std::process::Command;

/// (scene, horizon, warm-up): long enough to exercise failures, shifts, AGVs and trucks,
/// short enough to keep the files small and the test quick.
const CASES: &[(&str, &str, &str)] = &[
    ("scenes/training-line.ron", "2d", "8h"),
    ("scenes/demo-complex.ron", "2d", "1d"),
    ("scenes/validation/logistics.ron", "2d", "8h"),
    ("scenes/validation/materials.ron", "2d", "8h"),
    ("scenes/validation/mm1.ron", "200h", "10h"),
    ("scenes/validation/mmc.ron", "200h", "10h"),
    ("scenes/validation/two_machine.ron", "200h", "10h"),
];
const SEEDS: [u64; 5] = [1, 2, 3, 4, 5];

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The report of one run as `twin run --json` prints it, minus the `wall_s` line.
fn report(scene: &str, until: &str, warmup: &str, seed: u64) -> String {
    let seed = seed.to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_twin"))
        .args(["run", scene, "--json", "--until", until, "--warmup", warmup, "--seed", &seed])
        .current_dir(workspace())
        .output()
        .expect("twin runs");
    assert!(out.status.success(), "{scene} seed {seed}: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).expect("utf-8 report");
    let kept: Vec<&str> = text.lines().filter(|line| !line.trim_start().starts_with("\"wall_s\":")).collect();
    assert_eq!(kept.len() + 1, text.lines().count(), "{scene}: exactly one wall_s line");
    kept.join("\n") + "\n"
}

fn golden_path(scene: &str, seed: u64) -> PathBuf {
    let stem = scene.trim_start_matches("scenes/").trim_end_matches(".ron").replace('/', "-");
    workspace().join("crates/twin-cli/tests/golden").join(format!("{stem}-seed{seed}.json"))
}

#[test]
fn bundled_scenes_match_their_golden_reports() {
    let bless = std::env::var_os("TWIN_BLESS").is_some();
    let mut differ = Vec::new();
    for &(scene, until, warmup) in CASES {
        for seed in SEEDS {
            let got = report(scene, until, warmup, seed);
            let path = golden_path(scene, seed);
            if bless {
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(&path, &got).unwrap();
                continue;
            }
            let want = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e} (bless with TWIN_BLESS=1)", path.display()));
            if got != want {
                let line = got.lines().zip(want.lines()).position(|(a, b)| a != b).map_or(0, |i| i + 1);
                differ.push(format!("{} (first difference at line {line})", path.display()));
            }
        }
    }
    assert!(differ.is_empty(), "reports differ from their golden files:\n{}", differ.join("\n"));
}

/// Every bundled scene has golden reports, so a new scene cannot slip past the check.
#[test]
fn every_bundled_scene_is_covered() {
    let mut bundled = Vec::new();
    for dir in ["scenes", "scenes/validation"] {
        for entry in std::fs::read_dir(workspace().join(dir)).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            if name.ends_with(".ron") {
                bundled.push(format!("{dir}/{name}"));
            }
        }
    }
    for scene in bundled {
        assert!(CASES.iter().any(|&(s, ..)| s == scene), "{scene} has no golden reports");
    }
}
