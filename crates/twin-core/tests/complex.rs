//! Invariants of the complex over long runs: AGV traffic, batteries, the part balance,
//! and KPI sums; deadlock handling; material shortages.

use std::path::PathBuf;
use std::sync::Arc;

use twin_core::scene::{Schedules, Source};
use twin_core::time::{DAY, HOUR};
use twin_core::{Model, Sim};

fn scene_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scenes").join(name)
}

fn model_from_text(text: &str) -> Arc<Model> {
    let source = Source { origin: "inline.ron".into(), text: text.to_string() };
    let scene = twin_core::scene::parse(&source).unwrap_or_else(|e| panic!("{e}"));
    Arc::new(Model::build(&scene, Some(&source), &Schedules::default()).unwrap_or_else(|e| panic!("{e}")))
}

/// Runs to `until`, checking the traffic rule and the part balance every few events.
fn run_checked(sim: &mut Sim, until: u64) {
    let mut checks = 0;
    while sim.next_event_time().is_some_and(|t| t <= until) {
        sim.step();
        if sim.events().is_multiple_of(25) {
            checks += 1;
            assert_eq!(sim.traffic_conflicts(), 0, "two vehicles share a node or segment at t={}", sim.now());
            let census = sim.part_census();
            assert_eq!(census.total(), sim.wip(), "parts unaccounted for at t={}: {census:?}", sim.now());
            let (created, finished, scrapped) = sim.lifetime_counts();
            assert_eq!(created, finished + scrapped + sim.wip(), "part balance at t={}", sim.now());
        }
    }
    sim.run_until(until);
    assert!(checks > 100, "too few checks: {checks}");
}

#[test]
fn logistics_scene_keeps_every_invariant_over_three_days() {
    let model = Arc::new(Model::load(&scene_path("validation/logistics.ron")).unwrap());
    for seed in [1, 2, 3] {
        let mut sim = Sim::new(Arc::clone(&model), seed);
        run_checked(&mut sim, 3 * DAY);
        let (min_battery, depleted) = sim.battery_extremes();
        assert!(
            min_battery >= 0.0 && depleted == 0,
            "battery ran dry: min {min_battery} kWh, {depleted} times"
        );
        let r = sim.report();

        // The complex keeps up with its orders (14 per hour, about 2% scrapped).
        assert!(
            (r.complex.throughput_per_hour - 14.0 * 0.98).abs() < 1.5,
            "throughput {}",
            r.complex.throughput_per_hour
        );
        assert!(r.complex.wip_now < 200, "WIP runs away: {}", r.complex.wip_now);
        // Everything moved: AGV trips, truck loads, shipments, steel deliveries.
        assert!(r.vehicles.fleets.iter().all(|f| f.trips > 100), "{:?}", r.vehicles.fleets);
        let trucks = r.logistics.trucks.as_ref().expect("trucks");
        assert!(trucks.loaded_trips > 50 && trucks.fill_rate > 0.3 && trucks.fill_rate <= 1.0, "{trucks:?}");
        assert!(r.logistics.shipped > 500);
        // Vehicle state shares sum to one.
        for f in &r.vehicles.fleets {
            let sum = f.idle
                + f.travelling_empty
                + f.travelling_loaded
                + f.handling
                + f.waiting_traffic
                + f.charging;
            assert!((sum - 1.0).abs() < 1e-9, "{} shares sum to {sum}", f.id);
        }
        // Energy: the parts add up to the whole.
        let e = &r.energy;
        let by_factory: f64 = e.factories.iter().map(|f| f.kwh).sum();
        assert!((by_factory + e.trucks_kwh - e.total_kwh).abs() < 1e-6 * e.total_kwh);
        assert!((e.stations_kwh + e.agv_kwh + e.trucks_kwh - e.total_kwh).abs() < 1e-9 * e.total_kwh);
        assert!(e.agv_kwh > 0.0 && e.trucks_kwh > 0.0 && e.stations_kwh > 0.0);
        assert!((e.co2_kg - e.total_kwh * 0.42).abs() < 1e-6 * e.co2_kg);
        // Value added: factories plus truck energy give the complex.
        let va = &r.value_added;
        let parts: f64 = va.factories.iter().map(|f| f.value_added).sum();
        let truck_cost = e.trucks_kwh * 0.14;
        assert!(
            (parts - truck_cost - va.value_added).abs() < 1e-6 * va.revenue,
            "{parts} vs {}",
            va.value_added
        );
        assert!((va.revenue - va.material_cost - va.energy_cost - va.value_added).abs() < 1e-9 * va.revenue);
        assert!(va.rate > 0.0 && va.rate < 1.0);
        // Staff: the press crew works its shifts only (16 of 24 hours, 2 workers).
        let pool = &r.staff.pools[0];
        let window_h = r.measured_s / 3600.0;
        assert!((pool.worker_hours - 2.0 * window_h * 16.0 / 24.0).abs() < 2.0 * 8.0 + 1e-9, "{pool:?}");
        assert!(r.staff.labour_productivity.is_some());
    }
}

/// Weeks, not days: jams that build up slowly (AGVs cornering each other on a spur,
/// a charger blocked by an idle vehicle) show only in long runs.
#[test]
fn logistics_scene_stays_stable_for_three_weeks() {
    let model = Arc::new(Model::load(&scene_path("validation/logistics.ron")).unwrap());
    for seed in [1, 2] {
        let mut sim = Sim::new(Arc::clone(&model), seed);
        sim.run_until(21 * DAY);
        let r = sim.report();
        assert!(
            (r.complex.throughput_per_hour - 14.0 * 0.98).abs() < 1.0,
            "seed {seed}: {}",
            r.complex.throughput_per_hour
        );
        assert!(r.complex.wip_now < 200, "seed {seed}: WIP {}", r.complex.wip_now);
        // Little's law over the whole window.
        let lambda_w = r.complex.throughput_per_hour / 3600.0 * r.complex.lead_time_mean_s;
        assert!(
            (r.complex.wip_mean - lambda_w).abs() < 0.05 * r.complex.wip_mean,
            "L {} vs λW {lambda_w}",
            r.complex.wip_mean
        );
        assert!(r.vehicles.fleets.iter().all(|f| f.orders_waiting < 10));
    }
}

#[test]
fn same_seed_gives_the_same_complex_report() {
    let model = Arc::new(Model::load(&scene_path("validation/logistics.ron")).unwrap());
    let run = |seed| {
        let mut sim = Sim::new(Arc::clone(&model), seed);
        sim.run_until(DAY);
        format!("{:?}", sim.report())
    };
    assert_eq!(run(5), run(5));
    assert_ne!(run(5), run(6));
}

/// Stations at both ends of a two-way corridor with flow both ways: vehicles meet
/// head-on. A passing bay halfway lets each deadlock be broken. (Send and receive are
/// separate stations, so that the buffers themselves cannot wait on each other.)
const CORRIDOR: &str = r#"
Scene(
    name: "Corridor",
    run: (until: "2d"),
    factories: [(id: "f", origin: (0.0, -20.0), size: (50.0, 40.0), agv: "fleet")],
    products: [
        (id: "east", routing: [(at: ["w-send"], time: Exp(mean: "30s")), (at: ["e-receive"], time: Exp(mean: "30s"))]),
        (id: "west", routing: [(at: ["e-send"], time: Exp(mean: "30s")), (at: ["w-receive"], time: Exp(mean: "30s"))]),
    ],
    stations: [
        (id: "w-send", factory: "f", pos: (0.0, 2.0), node: "w", buffer: 2),
        (id: "w-receive", factory: "f", pos: (0.0, -2.0), node: "w"),
        (id: "e-send", factory: "f", pos: (40.0, 2.0), node: "e", buffer: 2),
        (id: "e-receive", factory: "f", pos: (40.0, -2.0), node: "e"),
    ],
    sources: [
        (id: "e-orders", arrivals: Poisson(per_hour: 20.0), mix: {"east": 1.0}),
        (id: "w-orders", arrivals: Poisson(per_hour: 20.0), mix: {"west": 1.0}),
    ],
    paths: [(id: "floor", factory: "f", nodes: [
        ("w", 0.0, 0.0), ("m1", 10.0, 0.0), ("m2", 20.0, 0.0), ("m3", 30.0, 0.0), ("e", 40.0, 0.0),
        ("bay", 20.0, 8.0), ("hw", 10.0, -8.0), ("he", 30.0, -8.0),
    ], edges: [
        (from: "w", to: "m1"), (from: "m1", to: "m2"), (from: "m2", to: "m3"), (from: "m3", to: "e"),
        (from: "m2", to: "bay"), (from: "m1", to: "hw"), (from: "m3", to: "he"),
    ])],
    fleets: [(id: "fleet", paths: "floor", count: 2, speed_m_s: 1.0, load_time: "10s", home: ["hw", "he"])],
)
"#;

#[test]
fn head_on_deadlocks_are_detected_reported_and_broken() {
    let model = model_from_text(CORRIDOR);
    let mut sim = Sim::new(model, 1);
    run_checked(&mut sim, 2 * DAY);
    let r = sim.report();
    assert!(r.vehicles.deadlock_count > 0, "the corridor should provoke head-on meetings");
    let first = &r.vehicles.deadlocks[0];
    assert_eq!(first.vehicles.len(), 2, "{first:?}");
    assert!(first.vehicles.iter().all(|v| v.starts_with("fleet#")));
    assert!(r.vehicles.deadlocks.iter().all(|d| d.resolved), "the bay lets every deadlock be broken");
    // Flow goes on in both directions: both products keep finishing.
    for p in &r.products {
        assert!(p.finished > 100, "{} finished only {}", p.id, p.finished);
    }
}

#[test]
fn a_material_stock_out_starves_the_line() {
    let text = std::fs::read_to_string(scene_path("validation/logistics.ron")).unwrap();
    // A tiny hub stock with a two-day lead time.
    let starved = text.replace(
        "hub_initial: 200, reorder_point: 120, order_quantity: 300, lead_time: \"8h\"",
        "hub_initial: 20, reorder_point: 10, order_quantity: 30, lead_time: \"2d\"",
    );
    assert_ne!(starved, text);
    let run = |text: &str| {
        let mut sim = Sim::new(model_from_text(text), 3);
        run_checked(&mut sim, 3 * DAY);
        sim.report()
    };
    let (ok, short) = (run(&text), run(&starved));
    let steel = &short.logistics.materials[0];
    assert!(steel.shortages > 0 && steel.hub_stockout_share > 0.1, "{steel:?}");
    assert!(short.complex.throughput_per_hour < 0.5 * ok.complex.throughput_per_hour);
    assert!(short.stations[0].starved > ok.stations[0].starved, "the first station starves without steel");
}

#[test]
fn crew_shortage_holds_machines_back() {
    let text = std::fs::read_to_string(scene_path("validation/logistics.ron")).unwrap();
    let one = text.replace(
        "(id: \"press-crew\", factory: \"press\", size: 2,",
        "(id: \"press-crew\", factory: \"press\", size: 1,",
    );
    assert_ne!(one, text);
    let report = |text: &str| {
        let mut sim = Sim::new(model_from_text(text), 3);
        sim.run_until(2 * DAY);
        sim.report()
    };
    let (two, single) = (report(&text), report(&one));
    // With one operator for two machines, they wait for each other.
    assert!(single.staff.pools[0].utilization > two.staff.pools[0].utilization);
    assert!(single.stations[1].starved > two.stations[1].starved);
    assert!(single.complex.wip_mean > two.complex.wip_mean);
    let _ = HOUR;
}

/// Fleet and truck sizes change during a run: vehicles join on free nodes, idle ones
/// leave, busy ones are refused, and every invariant keeps holding.
#[test]
fn fleet_and_truck_counts_change_during_a_run() {
    let model = Arc::new(Model::load(&scene_path("validation/logistics.ron")).unwrap());
    let mut sim = Sim::new(model, 4);
    run_checked(&mut sim, 12 * HOUR);
    assert_eq!(sim.vehicle_views().count(), 5);
    sim.set_fleet_size("press-agv", 4).unwrap();
    assert_eq!(sim.vehicle_views().count(), 6);
    sim.set_truck_count(4).unwrap();
    assert_eq!(sim.truck_views().count(), 4);
    run_checked(&mut sim, DAY + 12 * HOUR);
    // Shrink at night, when the press shop is off shift and its vehicles stand idle.
    let mut t = DAY + 23 * HOUR;
    loop {
        sim.run_until(t);
        match sim.set_fleet_size("press-agv", 2) {
            Ok(()) => break,
            Err(twin_core::CommandError::Busy(_)) if t < 3 * DAY => t += 10 * 60 * 1_000_000,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(sim.vehicle_views().filter(|v| v.fleet == 0).count(), 2);
    assert!(matches!(sim.set_fleet_size("nope", 1), Err(twin_core::CommandError::UnknownFleet(_))));
    assert!(sim.set_fleet_size("press-agv", 1000).is_err());
    let until = sim.now() + 2 * DAY;
    run_checked(&mut sim, until);
    let r = sim.report();
    let press = r.vehicles.fleets.iter().find(|f| f.id == "press-agv").unwrap();
    assert_eq!(press.vehicles, 2);
    assert!(press.trips > 50, "the smaller fleet keeps working: {press:?}");
    assert_eq!(r.logistics.trucks.as_ref().unwrap().count, 4);
    assert!(r.complex.throughput_per_hour > 10.0);
}

/// Vehicles and trucks taken out of service free their slots for the next ones: a run
/// that shrinks and grows its fleet and truck count a hundred times does not grow its
/// state (measured by the whole-state snapshot), and keeps its invariants.
#[test]
fn retired_vehicles_and_trucks_are_reclaimed() {
    let model = Arc::new(Model::load(&scene_path("validation/logistics.ron")).unwrap());
    let mut sim = Sim::new(model, 4);
    // Night: the press shop is off shift, its vehicles stand idle.
    run_checked(&mut sim, 23 * HOUR);
    let cycle = |sim: &mut Sim| {
        sim.set_fleet_size("press-agv", 5).unwrap();
        sim.set_truck_count(6).unwrap();
        sim.set_fleet_size("press-agv", 2).unwrap();
        sim.set_truck_count(2).unwrap();
    };
    cycle(&mut sim);
    let size_after_one = sim.save("logistics").len();
    for _ in 0..100 {
        cycle(&mut sim);
    }
    let size_after_many = sim.save("logistics").len();
    assert_eq!(sim.vehicle_views().filter(|v| v.fleet == 0).count(), 2);
    assert_eq!(sim.truck_views().count(), 2);
    // Vehicle and truck records are hundreds of bytes each: 300 retired vehicles and 400
    // retired trucks kept in the table would add far more than this slack.
    assert!(
        size_after_many <= size_after_one + 256,
        "state grew from {size_after_one} to {size_after_many} bytes over 100 resize cycles"
    );
    let until = sim.now() + 2 * DAY;
    run_checked(&mut sim, until);
    let r = sim.report();
    assert_eq!(r.logistics.trucks.as_ref().unwrap().count, 2);
    assert!(r.complex.throughput_per_hour > 10.0);
}
