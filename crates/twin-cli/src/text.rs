//! The readable form of a KPI report.

use std::fmt::Write;

use twin_core::Report;

/// Stations listed in the readable report; the JSON has them all.
const MAX_STATION_ROWS: usize = 40;

fn hms(seconds: f64) -> String {
    let s = seconds.round() as u64;
    if s >= 3600 {
        format!("{}h {:02}m {:02}s", s / 3600, s / 60 % 60, s % 60)
    } else if s >= 60 {
        format!("{}m {:02}s", s / 60, s % 60)
    } else {
        format!("{seconds:.1}s")
    }
}

fn pct(x: f64) -> String {
    format!("{:5.1}%", x * 100.0)
}

/// Renders the report as aligned text tables.
pub fn render(r: &Report, wall_s: f64) -> String {
    let mut out = String::new();
    let c = &r.complex;
    let speed = if wall_s > 0.0 { r.sim_time_s / wall_s } else { 0.0 };
    let _ = writeln!(out, "{} (seed {})", r.scene, r.seed);
    let _ = writeln!(
        out,
        "simulated {} (warm-up {} excluded) in {:.3}s wall: {} events, {:.0} events/s, {:.0}x real time",
        hms(r.sim_time_s),
        hms(r.warmup_s),
        wall_s,
        r.events,
        r.events as f64 / wall_s.max(1e-9),
        speed
    );
    let _ = writeln!(out);
    let _ = writeln!(out, "Complex");
    let _ = writeln!(out, "  throughput      {:10.2} parts/h", c.throughput_per_hour);
    let _ = writeln!(out, "  WIP (mean)      {:10.2} parts   (now {})", c.wip_mean, c.wip_now);
    let _ = writeln!(
        out,
        "  lead time       mean {}   p50 {}   p95 {}",
        hms(c.lead_time_mean_s),
        hms(c.lead_time_p50_s),
        hms(c.lead_time_p95_s)
    );
    let _ = writeln!(
        out,
        "  parts           {} released, {} finished, {} scrapped",
        c.created, c.finished, c.scrapped
    );
    if let Some(on_time) = c.on_time_share {
        let _ = writeln!(out, "  on time         {}", pct(on_time));
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{:<16} {:>8} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>8} {:>10}",
        "Station", "parts/h", "busy", "setup", "starved", "blocked", "down", "off", "OEE", "queue", "wait"
    );
    for s in r.stations.iter().take(MAX_STATION_ROWS) {
        let _ = writeln!(
            out,
            "{:<16} {:>8.2} {} {} {} {} {} {} {} {:>8.2} {:>10}",
            truncate(&s.id, 16),
            s.throughput_per_hour,
            pct(s.busy),
            pct(s.setup),
            pct(s.starved),
            pct(s.blocked),
            pct(s.down),
            pct(s.off_shift),
            pct(s.oee),
            s.queue_mean,
            hms(s.wait_mean_s)
        );
    }
    if r.stations.len() > MAX_STATION_ROWS {
        let _ = writeln!(out, "... and {} more stations (see --json)", r.stations.len() - MAX_STATION_ROWS);
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "Bottlenecks (active-period method, share of the window)");
    for (rank, b) in r.bottlenecks.iter().take(10).enumerate() {
        let _ = writeln!(
            out,
            "  {:>2}. {:<16} {}  (sole {}, shifting {})",
            rank + 1,
            truncate(&b.station, 16),
            pct(b.share),
            pct(b.sole).trim(),
            pct(b.shifting).trim()
        );
    }
    for recent in &r.recent_bottlenecks {
        let leaders: Vec<String> =
            recent.ranking.iter().take(3).map(|b| format!("{} {}", b.station, pct(b.share).trim())).collect();
        let label = match recent.window_s as u64 {
            3_600 => "last hour".to_string(),
            28_800 => "last shift (8 h)".to_string(),
            86_400 => "last day".to_string(),
            _ => format!("last {}", hms(recent.window_s)),
        };
        let _ = writeln!(
            out,
            "  {:<20} {}",
            label,
            if leaders.is_empty() { "-".into() } else { leaders.join(", ") }
        );
    }
    render_complex(&mut out, r);
    out
}

/// Energy, value added, staff, vehicles and trucks, where the scene has them.
fn render_complex(out: &mut String, r: &Report) {
    let e = &r.energy;
    if e.total_kwh > 0.0 {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "Energy          {:.0} kWh (stations {:.0}, AGVs {:.0}, trucks {:.0}), {:.1} kWh per good part, {:.0} kg CO2, cost {:.0} {}",
            e.total_kwh,
            e.stations_kwh,
            e.agv_kwh,
            e.trucks_kwh,
            e.kwh_per_good_part,
            e.co2_kg,
            e.cost,
            r.value_added.currency
        );
    }
    let va = &r.value_added;
    if va.revenue > 0.0 {
        let _ = writeln!(
            out,
            "Value added     {:.0} {} on revenue {:.0}: rate {} (material {:.0}, energy {:.0})",
            va.value_added,
            va.currency,
            va.revenue,
            pct(va.rate).trim(),
            va.material_cost,
            va.energy_cost
        );
        let rates: Vec<String> =
            va.factories.iter().map(|f| format!("{} {}", f.id, pct(f.rate).trim())).collect();
        if !rates.is_empty() {
            let _ = writeln!(out, "  by factory    {}", rates.join(", "));
        }
    }
    if let Some(lp) = r.staff.labour_productivity {
        let _ = writeln!(
            out,
            "Labour          {:.0} worker-hours, {:.1} {} value added per worker-hour",
            r.staff.worker_hours, lp, va.currency
        );
    }
    if !r.vehicles.fleets.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{:<16} {:>4} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>8} {:>8}",
            "AGV fleet", "n", "loaded", "empty", "handle", "traffic", "charge", "idle", "trips/h", "min SoC"
        );
        for f in &r.vehicles.fleets {
            let _ = writeln!(
                out,
                "{:<16} {:>4} {} {} {} {} {} {} {:>8.1} {}",
                truncate(&f.id, 16),
                f.vehicles,
                pct(f.travelling_loaded),
                pct(f.travelling_empty),
                pct(f.handling),
                pct(f.waiting_traffic),
                pct(f.charging),
                pct(f.idle),
                f.trips_per_hour,
                pct(f.min_battery)
            );
        }
        let _ = writeln!(out, "  deadlocks     {} detected", r.vehicles.deadlock_count);
        if let Some(c) = r.vehicles.congestion.first() {
            let _ = writeln!(out, "  most congested {} ({}): {:.0} s waiting", c.segment, c.fleet, c.wait_s);
        }
    }
    if let Some(t) = &r.logistics.trucks {
        let _ = writeln!(
            out,
            "Trucks          {} trucks, utilisation {}, fill rate {}, {} loaded trips, {:.0} km; {} units shipped, {} waiting at docks",
            t.count,
            pct(t.utilization).trim(),
            pct(t.fill_rate).trim(),
            t.loaded_trips,
            t.km,
            r.logistics.shipped,
            r.logistics.waiting_at_docks
        );
    }
    for m in &r.logistics.materials {
        if m.shortages > 0 || m.hub_stockout_share > 0.0 {
            let _ = writeln!(
                out,
                "  material {}: hub stock-out {}, {} releases waited",
                m.id,
                pct(m.hub_stockout_share).trim(),
                m.shortages
            );
        }
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n { s.to_string() } else { s.chars().take(n - 1).chain(['…']).collect() }
}
