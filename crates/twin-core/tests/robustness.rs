//! Robustness: common random numbers across scene edits, and no panic on any scene text.

use std::path::PathBuf;
use std::sync::Arc;

use proptest::prelude::*;
use twin_core::scene::{Schedules, Source};
use twin_core::time::HOUR;
use twin_core::{Model, Sim};

fn scene_text(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scenes").join(name);
    std::fs::read_to_string(path).unwrap()
}

fn build(text: &str) -> Result<Arc<Model>, String> {
    let source = Source { origin: "mutated.ron".into(), text: text.to_string() };
    let scene = twin_core::scene::parse(&source).map_err(|e| e.to_string())?;
    Model::build(&scene, Some(&source), &Schedules::default()).map(Arc::new).map_err(|e| e.to_string())
}

/// Adding an unrelated product line must not change a single number another station
/// draws: each station and source has its own named random stream.
#[test]
fn adding_a_station_leaves_other_streams_untouched() {
    let base = scene_text("validation/mm1.ron");
    let extended = base
        .replace(
            "products: [",
            "products: [\n        (id: \"other\", routing: [(at: [\"s2\"], time: Exp(mean: \"2m\"))]),",
        )
        .replace("stations: [", "stations: [\n        (id: \"s2\", servers: 2),")
        .replace(
            "sources: [",
            "sources: [\n        (id: \"more\", arrivals: Poisson(per_hour: 20.0), mix: {\"other\": 1.0}),",
        );
    assert_ne!(base, extended);
    let run = |text: &str| {
        let model = build(text).unwrap();
        let mut sim = Sim::new(model, 11);
        sim.run_until(500 * HOUR);
        let r = sim.report();
        let s1 = r.stations.iter().find(|s| s.id == "s1").unwrap().clone();
        (s1.completed, s1.utilization.to_bits(), s1.wait_mean_s.to_bits(), s1.queue_mean.to_bits())
    };
    assert_eq!(run(&base), run(&extended));
}

/// One random edit of a scene's text.
#[derive(Debug, Clone)]
enum Edit {
    Delete { at: usize, len: usize },
    Replace { at: usize, with: char },
    Insert { at: usize, text: &'static str },
}

fn edit() -> impl Strategy<Value = Edit> {
    let fragments = prop::sample::select(vec![
        "0",
        "-1",
        "1e309",
        "NaN",
        "\"\"",
        "\"0s\"",
        "\"-5s\"",
        "\"1000000d\"",
        ")",
        "(",
        "[",
        "]",
        ",",
        ":",
        "Exp(mean: \"0s\")",
        "buffer: 0",
        "servers: 0",
        "\"mill\"",
        "\"nope\"",
        "Saturated",
        "scrap: 2.0",
    ]);
    prop_oneof![
        (any::<usize>(), 1usize..40).prop_map(|(at, len)| Edit::Delete { at, len }),
        (any::<usize>(), prop::sample::select(vec!['0', '9', '"', '(', ')', ',', ':', '-', '.', 'x', ' ']))
            .prop_map(|(at, with)| Edit::Replace { at, with }),
        (any::<usize>(), fragments).prop_map(|(at, text)| Edit::Insert { at, text }),
    ]
}

fn apply(text: &str, edits: &[Edit]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for e in edits {
        let n = chars.len().max(1);
        match *e {
            Edit::Delete { at, len } => {
                let at = at % n;
                let end = (at + len).min(chars.len());
                chars.drain(at.min(end)..end);
            }
            Edit::Replace { at, with } => {
                if !chars.is_empty() {
                    let at = at % chars.len();
                    chars[at] = with;
                }
            }
            Edit::Insert { at, text } => {
                let at = at % n;
                let at = at.min(chars.len());
                chars.splice(at..at, text.chars());
            }
        }
    }
    chars.into_iter().collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// Whatever the text, parsing and validation return a value (an error that names a
    /// place, or a model), and a model that validates runs and reports without panicking.
    #[test]
    fn mutated_scenes_never_panic(edits in prop::collection::vec(edit(), 1..4), pick in 0usize..2) {
        let base = scene_text(["training-line.ron", "validation/logistics.ron"][pick]);
        let text = apply(&base, &edits);
        match build(&text) {
            Err(message) => prop_assert!(message.contains("mutated.ron"), "error names the file: {message}"),
            Ok(model) => {
                let mut sim = Sim::new(model, 1);
                let mut n = 0;
                while n < 50_000 && sim.next_event_time().is_some_and(|t| t <= 24 * HOUR) {
                    sim.step();
                    n += 1;
                }
                let _ = sim.report();
                prop_assert_eq!(sim.traffic_conflicts(), 0);
            }
        }
    }
}
