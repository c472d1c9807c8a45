//! Validation against queueing theory: the simulated KPIs of the scenes in
//! `scenes/validation/` must agree with closed-form results. The material flow through
//! the hub (`materials.ron`) is checked against the bounds its reorder policies imply.
//!
//! Each check runs independent replications (seeds 1..=N) and asks whether the theory
//! value lies inside the 99% Student-t confidence interval of the replication means.
//! The level is 99% rather than 95% because each scene checks several quantities; with
//! fixed seeds the outcome is deterministic either way.

use std::path::PathBuf;
use std::sync::Arc;

use twin_core::stats::Interval;
use twin_core::time::{DAY, HOUR};
use twin_core::{Model, Report, Sim};

const REPLICATIONS: u64 = 30;
const LEVEL: f64 = 0.99;

fn scene(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scenes/validation").join(name)
}

fn replicate(name: &str) -> Vec<Report> {
    let model = Arc::new(Model::load(&scene(name)).expect("validation scene is valid"));
    (1..=REPLICATIONS)
        .map(|seed| {
            let mut sim = Sim::new(Arc::clone(&model), seed);
            sim.run_until(model.until);
            sim.report()
        })
        .collect()
}

fn interval(reports: &[Report], f: impl Fn(&Report) -> f64) -> Interval {
    Interval::of(&reports.iter().map(f).collect::<Vec<_>>(), LEVEL)
}

#[track_caller]
fn assert_covers(what: &str, ci: Interval, theory: f64) {
    println!("{what}: {:.4} ± {:.4} (theory {theory:.4})", ci.mean, ci.half_width);
    assert!(ci.contains(theory), "{what}: theory {theory} outside {:.4} ± {:.4}", ci.mean, ci.half_width);
    // The interval must also be tight enough to mean something.
    assert!(ci.half_width < 0.1 * theory.abs().max(1e-9), "{what}: interval ±{} is too wide", ci.half_width);
}

/// Little's law on the whole system (L = λW) and on the queue of each station
/// (Lq = λq Wq): the relative gap must be small in every replication, and its mean must
/// be statistically indistinguishable from zero.
fn assert_littles_law(reports: &[Report]) {
    let gaps: Vec<f64> = reports
        .iter()
        .map(|r| {
            let l = r.complex.wip_mean;
            let lambda_w = r.complex.throughput_per_hour / 3600.0 * r.complex.lead_time_mean_s;
            (l - lambda_w) / l
        })
        .collect();
    for g in &gaps {
        assert!(g.abs() < 0.02, "Little's law off by {:.2}% in one replication", g * 100.0);
    }
    let ci = Interval::of(&gaps, LEVEL);
    println!("Little's law relative gap: {:.5} ± {:.5}", ci.mean, ci.half_width);
    assert!(ci.contains(0.0) || ci.mean.abs() < 0.002, "Little's law gap {ci:?}");
    for r in reports {
        for s in &r.stations {
            if s.queue_mean < 0.05 {
                continue;
            }
            let arrivals_per_s = s.completed as f64 / r.measured_s;
            let gap = (s.queue_mean - arrivals_per_s * s.wait_mean_s) / s.queue_mean;
            assert!(gap.abs() < 0.03, "queue Little's law at {} off by {:.2}%", s.id, gap * 100.0);
        }
    }
}

#[test]
fn mm1_matches_theory() {
    let reports = replicate("mm1.ron");
    let s1 = |r: &Report| r.stations[0].clone();
    assert_covers("M/M/1 utilisation", interval(&reports, |r| s1(r).utilization), 0.9);
    assert_covers("M/M/1 Wq (min)", interval(&reports, |r| s1(r).wait_mean_s / 60.0), 9.0);
    assert_covers("M/M/1 L", interval(&reports, |r| r.complex.wip_mean), 9.0);
    assert_covers("M/M/1 Lq", interval(&reports, |r| s1(r).queue_mean), 8.1);
    assert_covers("M/M/1 throughput (/h)", interval(&reports, |r| r.complex.throughput_per_hour), 54.0);
    assert_littles_law(&reports);
}

#[test]
fn mmc_matches_erlang_c() {
    let (lambda, mu, c) = (2.4_f64, 1.0_f64, 3u32);
    let a = lambda / mu;
    let rho = a / f64::from(c);
    let mut sum = 0.0;
    let mut term = 1.0;
    for k in 0..c {
        if k > 0 {
            term *= a / f64::from(k);
        }
        sum += term;
    }
    let last = term * a / f64::from(c) / (1.0 - rho);
    let p_wait = last / (sum + last);
    let wq = p_wait / (f64::from(c) * mu - lambda);
    let lq = lambda * wq;

    let reports = replicate("mmc.ron");
    assert_covers("M/M/3 utilisation", interval(&reports, |r| r.stations[0].utilization), rho);
    assert_covers("M/M/3 Wq (min)", interval(&reports, |r| r.stations[0].wait_mean_s / 60.0), wq);
    assert_covers("M/M/3 Lq", interval(&reports, |r| r.stations[0].queue_mean), lq);
    assert_covers("M/M/3 L", interval(&reports, |r| r.complex.wip_mean), lq + a);
    assert_littles_law(&reports);
}

#[test]
fn two_machine_line_matches_theory() {
    let reports = replicate("two_machine.ron");
    assert_covers("two-machine throughput (/h)", interval(&reports, |r| r.complex.throughput_per_hour), 48.0);
    // m1 is never starved and m2 never blocked.
    for r in &reports {
        assert_eq!(r.stations[0].starved, 0.0, "m1 starved");
        assert_eq!(r.stations[1].blocked, 0.0, "m2 blocked");
        assert!(r.stations[0].blocked > 0.1, "m1 should block behind the small buffer");
    }
    // Both machines run at the line's rate: utilisation = throughput x mean time.
    assert_covers("two-machine m2 utilisation", interval(&reports, |r| r.stations[1].utilization), 0.8);
    assert_littles_law(&reports);
}

#[test]
fn intervals_shrink_with_more_replications() {
    let model = Arc::new(Model::load(&scene("mm1.ron")).unwrap());
    let util = |seeds: std::ops::RangeInclusive<u64>| {
        let xs: Vec<f64> = seeds
            .map(|seed| {
                let mut sim = Sim::new(Arc::clone(&model), seed);
                sim.run_until(model.until);
                sim.report().stations[0].utilization
            })
            .collect();
        Interval::of(&xs, 0.95)
    };
    assert!(util(1..=40).half_width < util(1..=10).half_width);
}

/// Material flow in isolation (`materials.ron`): one factory draws one material from the
/// supplier through the hub by truck, with a reorder point and an order quantity at each
/// level (factory: r = 12, q = 20; hub: R = 216, Q = 240). Widgets are released at
/// λ = 12/h and each takes one coil. Per replication, over the whole run (T = 28 d):
///
/// - Consumption is the number of releases, a Poisson count of mean λT = 8064: within
///   four standard deviations (±359), and no release ever waits for a coil.
/// - Shipments equal consumption within r + q = 32. The factory orders q when its stock
///   plus coils on the way fall to r, so its stock stays between 0 and r + q; what it
///   received minus what it used is its stock at the end minus its stock at the start.
/// - The hub orders at the rate demand implies, demand / Q. It orders Q when its stock plus
///   open orders minus backorders (its inventory position) falls to R; every factory order
///   takes q from that position, every supplier order adds Q. The position starts at
///   R + Q and is always in (R - q, R + Q], so after N orders and D coils sent to the
///   factory, N·Q - D lies in (-Q - q, 0]: D/Q - 1 - q/Q < N <= D/Q. With D within
///   r + q of consumption, and consumption within 4σ of λT: |N - λT/Q| <= 1 + q/Q +
///   (4σ + r + q)/Q = 2.7 orders of the 33.6 that demand implies (8%).
#[test]
fn material_flow_matches_the_reorder_policies() {
    let mut model = Model::load(&scene("materials.ron")).expect("validation scene is valid");
    model.warmup = 0;
    let model = Arc::new(model);
    let spec = &model.materials[0];
    let (r, q) = (f64::from(spec.factory_reorder), f64::from(spec.factory_order));
    let big_q = f64::from(spec.order_quantity);
    let lambda_t = 12.0 * (model.until as f64 / HOUR as f64);
    assert_eq!(model.until, 28 * DAY);
    let sigma = lambda_t.sqrt();
    for seed in 1..=10 {
        let mut sim = Sim::new(Arc::clone(&model), seed);
        let stock = |sim: &Sim| {
            let v = sim.material_views().next().expect("one material");
            (v.factory[0], v.on_way[0])
        };
        // Coils ordered by the factory and delivered to it, seen as the changes of what is
        // on its way (an order and a delivery never fall in one event here: right after a
        // delivery of q the stock alone is above r).
        let (initial, _) = stock(&sim);
        let (mut ordered, mut delivered, mut highest) = (0u64, 0u64, initial);
        let mut on_way = 0;
        while sim.next_event_time().is_some_and(|t| t <= model.until) {
            sim.step();
            let (now_stock, now_on_way) = stock(&sim);
            if now_on_way > on_way {
                ordered += u64::from(now_on_way - on_way);
            } else {
                delivered += u64::from(on_way - now_on_way);
            }
            on_way = now_on_way;
            highest = highest.max(now_stock);
        }
        sim.run_until(model.until);
        let (end_stock, end_on_way) = stock(&sim);
        let report = sim.report();
        let coil = &report.logistics.materials[0];
        let released = report.products[0].created - sim.part_census().sources;
        let consumed = u64::from(initial) + delivered - u64::from(end_stock);
        println!(
            "seed {seed}: released {released}, consumed {consumed}, delivered {delivered}, \
             ordered {ordered}, supplier orders {}",
            coil.supplier_orders
        );
        assert_eq!(ordered - delivered, u64::from(end_on_way), "every order is delivered or on its way");
        assert_eq!(consumed, released, "one coil per released widget");
        assert!((released as f64 - lambda_t).abs() <= 4.0 * sigma, "releases {released} vs λT {lambda_t}");
        assert_eq!(coil.shortages, 0, "a release waited for a coil");
        assert_eq!(coil.hub_stockout_share, 0.0, "the hub ran out");
        assert!(f64::from(highest) <= r + q, "factory stock {highest} above r + q");
        assert!((delivered as f64 - consumed as f64).abs() <= r + q, "shipped {delivered}, used {consumed}");
        let n = coil.supplier_orders as f64;
        let d = ordered as f64;
        assert!(d / big_q - 1.0 - q / big_q < n && n <= d / big_q, "{n} hub orders for {d} coils");
        let bound = 1.0 + q / big_q + (4.0 * sigma + r + q) / big_q;
        assert!((n - lambda_t / big_q).abs() <= bound, "{n} hub orders, demand implies {}", lambda_t / big_q);
    }
}
