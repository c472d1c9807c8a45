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
    out
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n { s.to_string() } else { s.chars().take(n - 1).chain(['…']).collect() }
}
