//! Bad experiment files: every problem names the variant and the field, and nothing
//! panics.

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use twin_core::Model;
use twin_lab::edit::apply;
use twin_lab::{Edit, Experiment, LabError};

fn scenes() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenes")
}

/// Parses an experiment on the training line with one variant `bad` holding `edits`.
fn with_edits(edits: &str) -> Result<Experiment, LabError> {
    let text = format!(
        r#"Experiment(
    name: "bad",
    scene: "training-line.ron",
    replications: 3,
    kpis: [(path: "complex.throughput_per_hour")],
    variants: [
        (name: "baseline"),
        (name: "bad", edits: [{edits}]),
    ],
)"#
    );
    Experiment::parse(&text, Path::new("bad.ron"), &scenes())
}

#[test]
fn bad_edits_name_the_variant_and_the_field() {
    // (edits, field path, words the message must contain)
    let table: &[(&str, &str, &str)] = &[
        (r#"SetBuffer(station: "lathe", capacity: 4)"#, "variants[1].edits[0].station", "no station `lathe`"),
        (r#"SetServers(station: "mill", servers: 0)"#, "variants[1].edits", "stations[1].servers"),
        (
            r#"SetBuffer(station: "mill", capacity: 4), SetServers(station: "drill", servers: 2), SetServers(station: "nope", servers: 2)"#,
            "variants[1].edits[2].station",
            "no station `nope`",
        ),
        (
            r#"AddStation(station: (id: "mill"), alternative_to: "saw")"#,
            "variants[1].edits[0].station.id",
            "already has",
        ),
        (r#"AddStation(station: (id: "mill2"))"#, "variants[1].edits[0].alternative_to", "to receive work"),
        (
            r#"AddStation(station: (id: "mill2"), alternative_to: "lathe")"#,
            "variants[1].edits[0].alternative_to",
            "lathe",
        ),
        (
            r#"AddStation(station: (id: "x"), step: (product: "bracket", after: "polish", time: Const("5s")))"#,
            "variants[1].edits[0].step.after",
            "no operation `polish`",
        ),
        (
            r#"AddStation(station: (id: "x"), step: (product: "widget", time: Const("5s")))"#,
            "variants[1].edits[0].step.product",
            "no product `widget`",
        ),
        (r#"RemoveStation(station: "lathe")"#, "variants[1].edits[0].station", "no station"),
        (
            r#"MoveStation(station: "mill", pos: (1.0, 2.0), factory: "annex")"#,
            "variants[1].edits[0].factory",
            "annex",
        ),
        (r#"SetArrivalRate(source: "raw", per_hour: 30.0)"#, "variants[1].edits[0].source", "no rate"),
        (
            r#"SetArrivalRate(source: "orders", per_hour: 30.0)"#,
            "variants[1].edits[0].source",
            "no source `orders`",
        ),
        (r#"SetMix(source: "raw", mix: {"widget": 1.0})"#, "variants[1].edits", "widget"),
        (
            r#"SetShifts(calendar: "day", shifts: [("6h", "14h")])"#,
            "variants[1].edits[0].calendar",
            "no calendar",
        ),
        (
            r#"SetCalendar(station: "mill", calendar: "night")"#,
            "variants[1].edits[0].calendar",
            "no calendar",
        ),
        (r#"SetAgvCount(fleet: "hall", count: 4)"#, "variants[1].edits[0].fleet", "the scene has no fleets"),
        (r#"SetTruckCount(count: 3)"#, "variants[1].edits[0].count", "has no trucks"),
        (r#"SetBuffer(station: "mill", capacty: 4)"#, "", "capacty"),
    ];
    for &(edits, field, words) in table {
        let err = match with_edits(edits) {
            Ok(_) => panic!("`{edits}` should be rejected"),
            Err(e) => e,
        };
        let text = err.to_string();
        assert!(text.starts_with("bad.ron:"), "`{edits}`: {text}");
        assert!(text.contains(words), "`{edits}`: expected `{words}` in: {text}");
        if !field.is_empty() {
            assert!(text.contains("variant \"bad\""), "`{edits}`: no variant in: {text}");
            assert!(text.contains(field), "`{edits}`: expected field `{field}` in: {text}");
            // Points at the variant's line (line 8 of the text above).
            assert!(text.starts_with("bad.ron:8:"), "`{edits}`: {text}");
        }
    }
}

#[test]
fn bad_files_name_the_field() {
    let base = r#"Experiment(
    name: "bad",
    scene: "training-line.ron",
    replications: REPS,
    baseline: "BASE",
    kpis: [(path: "KPI")],
    variants: [(name: "baseline"), (name: "other")],
    sweeps: [(name: "s", axes: [(param: Buffer("mill"), values: [VALUE])])],
)"#;
    let case = |reps: &str, base_name: &str, kpi: &str, value: &str| {
        let text =
            base.replace("REPS", reps).replace("BASE", base_name).replace("KPI", kpi).replace("VALUE", value);
        Experiment::parse(&text, Path::new("bad.ron"), &scenes()).map(|_| ()).map_err(|e| e.to_string())
    };
    let ok = ("5", "baseline", "complex.throughput_per_hour", "4");
    assert_eq!(case(ok.0, ok.1, ok.2, ok.3), Ok(()));
    let err = case("4000000000", ok.1, ok.2, ok.3).unwrap_err();
    assert!(err.contains("replications") && err.contains("at most 100000"), "{err}");
    let err = case("1", ok.1, ok.2, ok.3).unwrap_err();
    assert!(
        err.contains("bad.ron:4:") && err.contains("replications") && err.contains("at least 2"),
        "{err}"
    );
    let err = case(ok.0, "nope", ok.2, ok.3).unwrap_err();
    assert!(err.contains("baseline") && err.contains("\"nope\""), "{err}");
    let err = case(ok.0, ok.1, "stations[lathe].busy", ok.3).unwrap_err();
    assert!(err.contains("kpis[0].path") && err.contains("lathe") && err.contains("mill"), "{err}");
    let err = case(ok.0, ok.1, "complex.troughput_per_hour", ok.3).unwrap_err();
    assert!(err.contains("troughput") && err.contains("throughput_per_hour"), "{err}");
    let err = case(ok.0, ok.1, ok.2, "2.5").unwrap_err();
    assert!(err.contains("sweeps[0].axes[0].values[0]") && err.contains("whole number"), "{err}");
    // Several problems are all reported.
    let err = case("0", "nope", "complex", "-1").unwrap_err();
    assert!(err.lines().count() >= 4, "{err}");

    let dup = base.replace("(name: \"other\")", "(name: \"baseline\")");
    let err = Experiment::parse(
        &dup.replace("REPS", "3")
            .replace("BASE", "baseline")
            .replace("KPI", "complex.wip_mean")
            .replace("VALUE", "2"),
        Path::new("bad.ron"),
        &scenes(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("used more than once"), "{err}");

    let missing = Experiment::parse(
        r#"Experiment(name: "x", scene: "no-such-scene.ron", replications: 3, kpis: [(path: "complex.wip_mean")], variants: [(name: "a")])"#,
        Path::new("bad.ron"),
        &scenes(),
    )
    .unwrap_err()
    .to_string();
    assert!(missing.contains("no-such-scene.ron") && missing.contains("cannot read"), "{missing}");
}

fn training_line() -> twin_core::Scene {
    let (scene, _, _) = twin_core::scene::load(&scenes().join("training-line.ron")).unwrap();
    scene
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// Buffer and server edits are accepted exactly when the station exists and, after
    /// validation, exactly when there is at least one server and room for one part.
    #[test]
    fn buffer_and_server_edits_validate_like_scenes(
        station in prop_oneof![
            Just("saw".to_string()), Just("mill".to_string()), Just("inspection".to_string()),
            "[a-z]{1,6}",
        ],
        capacity in proptest::option::of(0u32..1000),
        servers in 0u32..5,
    ) {
        let base = training_line();
        let exists = base.stations.iter().any(|s| s.id == station);
        let mut scene = base.clone();
        let applied = apply(&mut scene, &Edit::SetBuffer { station: station.clone(), capacity })
            .and_then(|()| apply(&mut scene, &Edit::SetServers { station: station.clone(), servers }));
        prop_assert_eq!(applied.is_ok(), exists);
        if let Err(p) = applied {
            prop_assert_eq!(p.field, "station");
            prop_assert!(p.message.contains(&station));
            prop_assert_eq!(&scene, &base, "a failed first edit leaves the scene alone");
        } else {
            let built = Model::build(&scene, None, &Default::default());
            prop_assert_eq!(built.is_ok(), servers >= 1 && capacity != Some(0));
            if let Ok(model) = built {
                let s = &model.stations[model.station(&station).unwrap() as usize];
                prop_assert_eq!((s.buffer, s.servers), (capacity, servers));
            }
        }
    }

    /// Removing any set of stations either leaves a valid line or names what broke.
    #[test]
    fn removing_stations_keeps_routings_consistent(mask in 0u8..32) {
        let mut scene = training_line();
        let ids: Vec<String> = scene.stations.iter().map(|s| s.id.clone()).collect();
        let mut result = Ok(());
        for (i, id) in ids.iter().enumerate() {
            if mask & (1 << i) != 0 {
                result = apply(&mut scene, &Edit::RemoveStation { station: id.clone() });
                if result.is_err() { break; }
            }
        }
        match result {
            Ok(()) => {
                let model = Model::build(&scene, None, &Default::default());
                prop_assert!(model.is_ok(), "{:?}", model.err());
                let model = model.unwrap();
                prop_assert_eq!(model.stations.len(), 5 - mask.count_ones() as usize);
                prop_assert_eq!(model.products[0].steps.len(), model.stations.len());
            }
            Err(p) => {
                prop_assert_eq!(mask, 31, "only removing every station empties the routing");
                prop_assert!(p.message.contains("no operation"));
            }
        }
    }
}

#[test]
fn rate_mix_and_shift_edits_reach_the_model() {
    use twin_core::scene::CalendarSpec;
    use twin_core::time::{Duration, HOUR};

    let (mut scene, _, _) = twin_core::scene::load(&scenes().join("validation/mm1.ron")).unwrap();
    apply(&mut scene, &Edit::SetArrivalRate { source: "arrivals".into(), per_hour: 30.0 }).unwrap();
    let err =
        apply(&mut scene, &Edit::SetArrivalRate { source: "arrivals".into(), per_hour: -1.0 }).unwrap_err();
    assert_eq!(err.field, "per_hour");
    let model = Model::build(&scene, None, &Default::default()).unwrap();
    assert!((model.sources[0].rate_per_hour().unwrap() - 30.0).abs() < 1e-9);

    // A weight for a product the scene does not have fails validation of the scene.
    let mut mixed = scene.clone();
    apply(
        &mut mixed,
        &Edit::SetMixWeight { source: "arrivals".into(), product: "gadget".into(), weight: 1.0 },
    )
    .unwrap();
    assert!(Model::build(&mixed, None, &Default::default()).is_err());

    let mut shifted = training_line();
    shifted.calendars.push(CalendarSpec {
        id: "day".into(),
        period: Duration(24 * HOUR),
        shifts: vec![(Duration(6 * HOUR), Duration(22 * HOUR))],
    });
    apply(&mut shifted, &Edit::SetCalendar { station: "mill".into(), calendar: Some("day".into()) }).unwrap();
    apply(
        &mut shifted,
        &Edit::SetShifts {
            calendar: "day".into(),
            shifts: vec![(Duration(8 * HOUR), Duration(16 * HOUR))],
            period: None,
        },
    )
    .unwrap();
    let model = Model::build(&shifted, None, &Default::default()).unwrap();
    assert_eq!(model.calendars[0].shifts, vec![(8 * HOUR, 16 * HOUR)]);
    assert_eq!(model.stations[model.station("mill").unwrap() as usize].calendar, Some(0));
    // Overlapping shifts are caught by the scene validation.
    apply(
        &mut shifted,
        &Edit::SetShifts {
            calendar: "day".into(),
            shifts: vec![
                (Duration(8 * HOUR), Duration(16 * HOUR)),
                (Duration(10 * HOUR), Duration(12 * HOUR)),
            ],
            period: None,
        },
    )
    .unwrap();
    assert!(Model::build(&shifted, None, &Default::default()).is_err());
}

#[test]
fn a_sweep_over_an_empty_buffer_names_the_value() {
    let text = r#"Experiment(
    name: "sweep", scene: "training-line.ron", replications: 3,
    kpis: [(path: "complex.throughput_per_hour")],
    sweeps: [(name: "mill buffer", axes: [(param: Buffer("mill"), values: [0, 3])])],
)"#;
    let err = Experiment::parse(text, Path::new("sweep.ron"), &scenes()).unwrap_err().to_string();
    assert!(err.contains("sweeps[0].axes[0].values[0]") && err.contains("at least 1, got 0"), "{err}");

    let values: Vec<String> = (1..=40).map(|v| v.to_string()).collect();
    let grid = text.replace(
        "axes: [(param: Buffer(\"mill\"), values: [0, 3])]",
        &format!(
            "axes: [(param: Buffer(\"mill\"), values: [{0}]), (param: Buffer(\"drill\"), values: [{0}])]",
            values.join(", ")
        ),
    );
    let err = Experiment::parse(&grid, Path::new("sweep.ron"), &scenes()).unwrap_err().to_string();
    assert!(err.contains("at most 1000 points, got 1600"), "{err}");
}

#[test]
fn vehicle_count_edits_set_the_fleet_and_the_trucks() {
    use twin_core::scene::{FleetSpec, TruckSpec};
    let mut scene = training_line();
    let fleet: FleetSpec =
        ron::from_str(r#"(id: "amr", paths: "floor", count: 2, speed_m_s: 1.2, home: ["park"])"#).unwrap();
    scene.fleets.push(fleet);
    scene.trucks = Some(
        ron::from_str::<TruckSpec>(
            r#"(count: 1, capacity: 20, speed_m_s: 12.0, load_time: "5m", dispatch: Batch(min_load: 10))"#,
        )
        .unwrap(),
    );
    apply(&mut scene, &Edit::SetAgvCount { fleet: "amr".into(), count: 5 }).unwrap();
    apply(&mut scene, &Edit::SetTruckCount { count: 3 }).unwrap();
    assert_eq!(scene.fleets[0].count, 5);
    assert_eq!(scene.trucks.as_ref().unwrap().count, 3);
    let err = apply(&mut scene, &Edit::SetAgvCount { fleet: "agv".into(), count: 5 }).unwrap_err();
    assert_eq!(err.field, "fleet");
    assert!(err.message.contains("fleets: amr"), "{}", err.message);
    assert_eq!(
        apply(&mut scene, &Edit::SetAgvCount { fleet: "amr".into(), count: 0 }).unwrap_err().field,
        "count"
    );
    assert_eq!(apply(&mut scene, &Edit::SetTruckCount { count: 0 }).unwrap_err().field, "count");
}

#[test]
fn confined_parsing_keeps_the_scene_inside_the_scenes_folder() {
    let text = |scene: &str| {
        format!(
            r#"Experiment(name: "x", scene: "{scene}", replications: 3,
                kpis: ["complex.wip_mean"], variants: [(name: "a")])"#
        )
    };
    let dir = scenes().join("experiments");
    assert!(
        Experiment::parse_confined(&text("../training-line.ron"), Path::new("x.ron"), &scenes()).is_err()
    );
    assert!(Experiment::parse(&text("../training-line.ron"), Path::new("x.ron"), &dir).is_ok());
    for bad in ["../training-line.ron", "/etc/passwd", "validation/../../Cargo.toml", ""] {
        let err = Experiment::parse_confined(&text(bad), Path::new("x.ron"), &dir).unwrap_err().to_string();
        assert!(err.contains("x.ron:1:") && err.contains("scene") && err.contains("inside"), "{bad}: {err}");
    }
    assert!(Experiment::parse_confined(&text("training-line.ron"), Path::new("x.ron"), &scenes()).is_ok());
    assert!(Experiment::parse_confined(&text("validation/mm1.ron"), Path::new("x.ron"), &scenes()).is_ok());
}
