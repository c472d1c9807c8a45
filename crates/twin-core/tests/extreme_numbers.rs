//! Extreme numbers in every numeric field of the bundled scenes (coordinates, durations,
//! capacities, rates, costs): each either is refused with a clear error or gives a scene
//! that loads and runs, in bounded time and memory. Nothing panics, spins or exhausts
//! memory.

use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

use twin_core::scene::{Schedules, Source};
use twin_core::time::MINUTE;
use twin_core::{Model, Sim};

/// Replacements tried for every number, and for the number inside every duration string.
const NUMBERS: &[&str] = &[
    "0",
    "-1",
    "1e12",
    "-1e12",
    "1e300",
    "1e-300",
    "18446744073709551616",
    "4294967296",
    "9007199254740993",
];
/// Simulated time each accepted variant runs, and the events it may take to get there.
const HORIZON: u64 = 30 * MINUTE;
const MAX_EVENTS: u64 = 2_000_000;

fn scene_text(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scenes").join(name);
    std::fs::read_to_string(path).unwrap()
}

/// Byte ranges of the numbers in a scene's text, outside comments; inside a string only
/// the leading number of a duration (`"90s"`, `"1.5h"`).
fn number_spans(text: &str) -> Vec<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut spans = Vec::new();
    let (mut i, mut in_string) = (0, false);
    while i < bytes.len() {
        let c = bytes[i];
        if !in_string && c == b'/' && bytes.get(i + 1) == Some(&b'/') {
            while i < bytes.len() && bytes[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        if c == b'"' {
            in_string = !in_string;
            i += 1;
            continue;
        }
        let starts_number =
            c.is_ascii_digit() && (i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_'));
        if starts_number && (!in_string || bytes[i - 1] == b'"') {
            let start = if i > 0 && bytes[i - 1] == b'-' { i - 1 } else { i };
            let mut end = i;
            while end < bytes.len()
                && (bytes[end].is_ascii_digit() || bytes[end] == b'.' || bytes[end] == b'e')
            {
                end += 1;
            }
            spans.push((start, end));
            i = end;
            continue;
        }
        i += 1;
    }
    spans
}

/// Loads and, if valid, runs one variant. Returns whether it was accepted.
fn try_variant(text: String) -> bool {
    let source = Source { origin: "extreme.ron".into(), text };
    let Ok(scene) = twin_core::scene::parse(&source) else { return false };
    let Ok(model) = Model::build(&scene, Some(&source), &Schedules::default()) else { return false };
    let mut sim = Sim::new(std::sync::Arc::new(model), 1);
    while sim.now() < HORIZON && sim.events() < MAX_EVENTS && sim.step() {}
    let _ = sim.report().to_json(0.0);
    true
}

/// Runs every variant of one scene on a worker thread, failing if one takes too long.
fn check_scene(name: &str, stride: usize) {
    let text = scene_text(name);
    let spans: Vec<(usize, usize)> = number_spans(&text).into_iter().step_by(stride).collect();
    assert!(spans.len() > 20, "{name}: only {} numbers found", spans.len());
    let (tx, rx) = mpsc::channel();
    let name_owned = name.to_string();
    std::thread::spawn(move || {
        let mut panics = Vec::new();
        for &(a, b) in &spans {
            for &n in NUMBERS {
                let variant = format!("{}{}{}", &text[..a], n, &text[b..]);
                let line = text[..a].lines().count();
                let case = format!("{name_owned}:{line}: `{}` -> `{n}`", &text[a..b]);
                let _ = tx.send(Step::Trying(case.clone()));
                if std::panic::catch_unwind(|| try_variant(variant)).is_err() {
                    panics.push(case);
                }
            }
        }
        let _ = tx.send(Step::Done(panics));
    });
    let mut last = String::from("(none yet)");
    loop {
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(Step::Trying(case)) => last = case,
            Ok(Step::Done(panics)) => {
                assert!(panics.is_empty(), "{} variants panicked:\n{}", panics.len(), panics.join("\n"));
                break;
            }
            Err(mpsc::RecvTimeoutError::Timeout) => panic!("{name}: stuck for 60 s on {last}"),
            Err(mpsc::RecvTimeoutError::Disconnected) => panic!("{name}: worker died on {last}"),
        }
    }
}

enum Step {
    Trying(String),
    Done(Vec<String>),
}

#[test]
fn training_line_survives_extreme_numbers() {
    check_scene("training-line.ron", 1);
}

#[test]
fn logistics_scene_survives_extreme_numbers() {
    check_scene("validation/logistics.ron", 1);
}

/// The demo complex has thousands of numbers: every 37th, which still reaches every
/// section of the file.
#[test]
fn demo_complex_survives_extreme_numbers() {
    check_scene("demo-complex.ron", 37);
}
