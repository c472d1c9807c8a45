use std::path::PathBuf;

use twin_core::dist::Dist;
use twin_core::scene::{Scene, Source};
use twin_core::time::{Duration, HOUR, MINUTE, SECOND};

use super::*;

fn scenes() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scenes")
}

fn training_line() -> Scene {
    twin_core::scene::load(&scenes().join("training-line.ron")).expect("scene loads").0
}

fn parse(text: &str, scene: &Scene) -> Result<Drift, String> {
    Drift::parse(&Source { origin: "drift.ron".into(), text: text.to_owned() }, scene)
        .map_err(|e| e.to_string())
}

#[test]
fn the_bundled_example_validates_against_the_demo_complex() {
    let (scene, _, _) = twin_core::scene::load(&scenes().join("demo-complex.ron")).expect("demo loads");
    let drift =
        Drift::load(&scenes().join("drift/demo-slow-station.ron"), &scene).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(drift.file.stations[0].processing, Some(1.2));
    assert_eq!(drift.breakdowns(), vec![(2 * HOUR, "bat_cal".to_owned(), 45 * MINUTE)]);
    assert_eq!(drift.outages(), vec![(3 * HOUR, 3 * HOUR + 10 * MINUTE, "bat".to_owned())]);
    assert_eq!(drift.device_outages(), vec![(30 * MINUTE, 45 * MINUTE, "bat_cal".to_owned())]);
}

#[test]
fn device_outages_are_checked() {
    let scene = training_line();
    let text = r#"Drift(devices: [(station: "lathe", at: "1h", down_for: "5m"), (station: "drill", at: "1h", down_for: "0s"), (station: "saw", at: "1h", down_for: "1h"), (station: "saw", at: "90m", down_for: "5m")])"#;
    let err = parse(text, &scene).expect_err("invalid").to_string();
    assert!(err.contains("devices[0].station: unknown station `lathe`"), "{err}");
    assert!(err.contains("devices[1].down_for: down_for must be greater than zero"), "{err}");
    assert!(err.contains("devices[3].at: outage of device `saw` overlaps"), "{err}");
}

#[test]
fn processing_drift_scales_only_the_named_station() {
    let mut scene = training_line();
    let drift = parse(r#"Drift(stations: [(station: "drill", processing: 1.5)])"#, &scene).expect("valid");
    let before = scene.clone();
    drift.apply(&mut scene);
    let steps = |s: &Scene| s.products[0].routing.clone();
    for (old, new) in steps(&before).iter().zip(steps(&scene)) {
        if old.at == ["drill"] {
            assert_eq!(
                new.time,
                Dist::Tri {
                    min: Duration(60 * SECOND),
                    mode: Duration(82_500_000),
                    max: Duration(112_500_000)
                }
            );
            assert!((new.time.mean() / old.time.mean() - 1.5).abs() < 1e-9);
        } else {
            assert_eq!(new.time, old.time, "step {} untouched", old.op);
        }
    }
    assert_eq!(scene.stations, before.stations, "no failure change asked for");
}

#[test]
fn failure_drift_replaces_mtbf_and_mttr() {
    let mut scene = training_line();
    let drift = parse(
        r#"Drift(stations: [(station: "saw", mtbf: "1h"), (station: "mill", mtbf: "2h", mttr: "5m")])"#,
        &scene,
    )
    .expect("valid");
    drift.apply(&mut scene);
    let saw = scene.stations.iter().find(|s| s.id == "saw").expect("saw");
    let f = saw.failures.as_ref().expect("saw fails");
    assert_eq!((f.mtbf.0, f.mttr.0), (HOUR, 15 * MINUTE), "mttr kept from the scene");
    let mill = scene.stations.iter().find(|s| s.id == "mill").expect("mill");
    let f = mill.failures.as_ref().expect("mill now fails");
    assert_eq!((f.mtbf.0, f.mttr.0), (2 * HOUR, 5 * MINUTE));
}

#[test]
fn every_problem_names_file_line_column_and_field() {
    let scene = training_line();
    let text = "Drift(\n    stations: [\n        (station: \"lathe\", processing: 1.2),\n        (station: \"drill\", processing: -0.5),\n    ],\n    breakdowns: [(station: \"saw\", at: \"1h\", duration: \"0s\")],\n    gateways: [(factory: \"nowhere\", at: \"1h\", down_for: \"5m\")],\n)\n";
    let err = parse(text, &scene).expect_err("invalid");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 4, "{err}");
    assert!(
        lines[0].starts_with("drift.ron:3:19: stations[0].station: unknown station `lathe`"),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].starts_with(
            "drift.ron:4:28: stations[1].processing: processing factor must be a number above 0"
        ),
        "{}",
        lines[1]
    );
    assert!(lines[1].contains("got -0.5"), "{}", lines[1]);
    assert!(lines[2].starts_with("drift.ron:6:"), "{}", lines[2]);
    assert!(lines[2].contains("breakdowns[0].duration: duration must be greater than zero"), "{}", lines[2]);
    assert!(lines[3].starts_with("drift.ron:7:"), "{}", lines[3]);
    assert!(
        lines[3].contains("gateways[0].factory: unknown factory `nowhere` (edge nodes of the scene: hall)"),
        "{}",
        lines[3]
    );
}

#[test]
fn syntax_errors_and_unknown_fields_point_at_the_place() {
    let scene = training_line();
    let err = parse("Drift(\n  stations: [(station: \"drill\", speed: 2.0)],\n)", &scene)
        .expect_err("unknown field");
    assert!(err.starts_with("drift.ron:2:"), "{err}");
    assert!(err.contains("speed"), "{err}");
    let err = parse("Drift(breakdowns: [(station: \"saw\", at: \"-1h\", duration: \"1m\")])", &scene)
        .expect_err("negative");
    assert!(err.starts_with("drift.ron:1:"), "{err}");
    assert!(err.contains("negative"), "{err}");
}

#[test]
fn shared_steps_need_one_factor_and_outages_must_not_overlap() {
    let (scene, _, _) = twin_core::scene::load(&scenes().join("demo-complex.ron")).expect("demo loads");
    let err =
        parse(r#"Drift(stations: [(station: "bat_coat1", processing: 1.2)])"#, &scene).expect_err("shared");
    assert!(err.contains("shares step `coat`") && err.contains("`bat_coat2` (no drift)"), "{err}");
    parse(
        r#"Drift(stations: [(station: "bat_coat1", processing: 1.2), (station: "bat_coat2", processing: 1.2)])"#,
        &scene,
    )
    .expect("same factor on both is fine");
    let err = parse(
        r#"Drift(gateways: [(factory: "bat", at: "1h", down_for: "1h"), (factory: "bat", at: "90m", down_for: "5m")])"#,
        &scene,
    )
    .expect_err("overlap");
    assert!(err.contains("gateways[1].at: outage of `bat` overlaps"), "{err}");
}

#[test]
fn a_station_without_failures_needs_both_parameters() {
    let scene = training_line();
    let err = parse(r#"Drift(stations: [(station: "mill", mtbf: "2h")])"#, &scene).expect_err("mttr missing");
    assert!(err.contains("stations[0].mttr: station `mill` has no failures in the scene"), "{err}");
}
