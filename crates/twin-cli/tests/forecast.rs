//! `twin forecast --resume` as a user runs it: a snapshot written by `twin run`, then
//! bands and on-time risks, the same for any number of jobs, and clear refusals.

use std::path::PathBuf;
use std::process::{Command, Output};

fn twin(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_twin")).args(args).current_dir(workspace()).output().expect("twin runs")
}

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn ok(out: Output) -> String {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn json_without_wall(text: &str) -> serde_json::Value {
    let mut v: serde_json::Value = serde_json::from_str(text).unwrap();
    assert!(v["wall_s"].as_f64().unwrap() >= 0.0);
    v.as_object_mut().unwrap().remove("wall_s");
    v
}

#[test]
fn forecast_a_saved_run_the_same_for_any_number_of_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("line.twin");
    let state = state.to_str().unwrap();
    ok(twin(&["run", "scenes/training-line.ron", "--until", "1d", "--save-state", state]));

    let args = ["forecast", "--resume", state, "--horizon", "8h", "--reps", "30", "--json"];
    let one = json_without_wall(&ok(twin(&[&args[..], &["--jobs", "1"]].concat())));
    let two = json_without_wall(&ok(twin(&[&args[..], &["--jobs", "2"]].concat())));
    assert_eq!(one, two, "the forecast depends on the number of jobs");
    assert_eq!(one["from_s"], 86400.0);
    assert_eq!(one["horizon_s"], 86400.0 + 8.0 * 3600.0);
    assert_eq!(one["replications"], 30);
    for kpi in ["parts_finished", "throughput_per_hour", "wip_end", "wip_mean", "value_added_rate"] {
        let band = &one[kpi];
        let (p10, p50, p90) =
            (band["p10"].as_f64().unwrap(), band["p50"].as_f64().unwrap(), band["p90"].as_f64().unwrap());
        assert!(p10 <= p50 && p50 <= p90, "{kpi}: {band}");
    }
    // The mill (about 53 parts an hour) bounds the line: 8 hours finish a few hundred.
    let p50 = one["parts_finished"]["p50"].as_f64().unwrap();
    assert!((250.0..=480.0).contains(&p50), "{p50}");
    assert!(one["parts_finished"]["p10"].as_f64() < one["parts_finished"]["p90"].as_f64());

    let text = ok(twin(&["forecast", "--resume", state, "--reps", "10", "--kpis", "parts-finished"]));
    assert!(text.contains("forecast from 1d 00:00 to 1d 08:00 (8h ahead): 10 replications"), "{text}");
    assert!(text.contains("parts finished") && !text.contains("value-added rate"), "{text}");
}

#[test]
fn forecast_lists_the_on_time_risk_of_open_orders() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("demo.twin");
    let state = state.to_str().unwrap();
    ok(twin(&["run", "scenes/demo-complex.ron", "--until", "3d", "--save-state", state]));
    let out = ok(twin(&[
        "forecast",
        "--resume",
        state,
        "--horizon",
        "1d",
        "--reps",
        "8",
        "--kpis",
        "on-time",
        "--json",
    ]));
    let v = json_without_wall(&out);
    let orders = v["orders"].as_array().unwrap();
    assert!(orders.len() > 10, "{v}");
    assert!(v["orders_beyond_horizon"].as_u64().unwrap() > 0);
    for o in orders {
        let p = o["on_time_probability"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&p) && o["due_s"].as_f64().unwrap() <= 4.0 * 86400.0, "{o}");
    }
    assert!(orders.iter().any(|o| o["on_time_probability"].as_f64() > Some(0.5)));
    assert!(v.get("parts_finished").is_none());
}

#[test]
fn forecast_refuses_bad_requests_and_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("mm1.twin");
    let state = state.to_str().unwrap();
    ok(twin(&["run", "scenes/validation/mm1.ron", "--until", "2d", "--save-state", state]));
    for (args, expected) in [
        (vec!["--reps", "0"], "--reps: replications must be 1 to 1000, got 0"),
        (vec!["--reps", "1001"], "--reps: replications must be 1 to 1000"),
        (vec!["--horizon", "8d"], "--horizon: horizon may lie at most 168 h ahead"),
        (vec!["--horizon", "0s"], "--horizon: horizon must lie after the current time"),
    ] {
        let out = twin(&[&["forecast", "--resume", state][..], &args].concat());
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
    let other = twin(&["forecast", "scenes/validation/mmc.ron", "--resume", state]);
    assert!(!other.status.success());
    assert!(String::from_utf8_lossy(&other.stderr).contains("resuming from scenes/validation/mmc.ron"));
    let mut bytes = std::fs::read(state).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(state, bytes).unwrap();
    let damaged = twin(&["forecast", "--resume", state]);
    assert!(!damaged.status.success());
    assert!(String::from_utf8_lossy(&damaged.stderr).contains("not a snapshot this twin can resume"));
}

#[test]
fn forecast_shows_the_on_time_risk_of_dated_rush_orders() {
    use std::sync::Arc;
    use twin_core::time::{DAY, HOUR, MINUTE};
    // A state with rush orders only a twin's operators place (AddRushOrder): written with
    // the core, as the server's checkpoints are, then forecast by the binary.
    let model = Arc::new(twin_core::Model::load(&workspace().join("scenes/training-line.ron")).unwrap());
    let mut sim = twin_core::Sim::new(model, 5);
    sim.run_until(DAY + 9 * HOUR);
    let soon = sim.add_rush_order_due_in("bracket", 3, MINUTE).unwrap().to_string();
    let later = sim.add_rush_order_due_in("bracket", 2, 20 * HOUR).unwrap().to_string();
    sim.add_rush_order_due_in("bracket", 1, 10 * DAY).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("rush.twin");
    std::fs::write(&state, sim.save("scenes/training-line.ron")).unwrap();
    let state = state.to_str().unwrap();

    let args = ["forecast", "--resume", state, "--horizon", "1d", "--reps", "10", "--kpis", "on-time"];
    let v = json_without_wall(&ok(twin(&[&args[..], &["--json"]].concat())));
    let order = |id: &str| {
        v["orders"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["id"] == id)
            .unwrap_or_else(|| panic!("{id}: {v}"))
            .clone()
    };
    let (soon_row, later_row) = (order(&soon), order(&later));
    assert_eq!((soon_row["quantity"].as_u64(), soon_row["on_time_risk"].as_f64()), (Some(3), Some(1.0)));
    assert_eq!((later_row["quantity"].as_u64(), later_row["on_time_risk"].as_f64()), (Some(2), Some(0.0)));
    assert_eq!(v["orders_beyond_horizon"].as_u64(), Some(1), "{v}");

    let text = ok(twin(&args));
    assert!(text.contains("open orders due by the horizon: 2 (1 due later, not judged)"), "{text}");
    let line = text.lines().find(|l| l.starts_with(&soon)).unwrap_or_else(|| panic!("{text}"));
    let columns: Vec<&str> = line.split_whitespace().collect();
    // order, product, units, released (2), due (2), on time, risk
    assert_eq!((columns[1], columns[2], columns[7], columns[8]), ("bracket", "3", "0%", "100%"), "{line}");
}
