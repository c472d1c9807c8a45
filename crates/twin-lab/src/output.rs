//! Readable tables and the CSV / JSON files of an experiment's results.
//!
//! Files hold no wall-clock times, so the same experiment always writes the same bytes.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use twin_core::time::Duration;

use crate::error::LabError;
use crate::file::Better;
use crate::results::{Estimate, Outcome, Results};

/// Formats `x` with enough decimals to show the precision of an interval of half-width
/// `hw` (two significant digits of the half-width), between 0 and 6 decimals.
fn num(x: f64, hw: f64) -> String {
    if !x.is_finite() {
        return "-".into();
    }
    let scale = if hw.is_finite() && hw > 0.0 { hw } else { x.abs() };
    let decimals = if scale > 0.0 { (1.0 - scale.log10().floor()).clamp(0.0, 6.0) as usize } else { 2 };
    format!("{x:.decimals$}")
}

fn pm(e: &Estimate, signed: bool) -> String {
    let mean = num(e.mean, e.half_width);
    let mean = if signed && e.mean >= 0.0 { format!("+{mean}") } else { mean };
    if e.half_width.is_finite() {
        format!("{mean} ± {}", num(e.half_width, e.half_width))
    } else {
        format!("{mean} ± ?")
    }
}

/// Seconds as a scene-file duration (`5d`, `8h`).
fn secs(s: f64) -> Duration {
    Duration((s * 1e6).round() as u64)
}

/// The readable report: one table per KPI, then bottleneck shares per variant.
pub fn render(results: &Results) -> String {
    let mut out = String::new();
    let pct = (results.confidence * 100.0).round();
    let _ = writeln!(
        out,
        "Experiment \"{}\" on {}: {} variant(s) x {} replications of {} ({} warm-up), \
         {} random numbers",
        results.experiment,
        results.scene,
        results.variants.len(),
        results.replications,
        secs(results.until_s),
        secs(results.warmup_s),
        if results.common_random_numbers { "common" } else { "independent" }
    );
    if results.outcome == Outcome::Cancelled {
        let done: u32 = results.variants.iter().map(|v| v.replications).sum();
        let _ = writeln!(
            out,
            "CANCELLED: {done} of {} replications finished; estimates are partial.",
            results.variants.len() * results.replications as usize
        );
    }
    let width = results.variants.iter().map(|v| v.name.chars().count()).max().unwrap_or(7).max(7);
    for kpi in &results.kpis {
        let unit = if kpi.unit.is_empty() { String::new() } else { format!(" [{}]", kpi.unit) };
        let better = match kpi.better {
            Better::Higher => "higher",
            Better::Lower => "lower",
        };
        let _ = writeln!(
            out,
            "\n{}{unit}, {better} is better; mean ± {pct}% CI (Student t); \
             difference paired by replication",
            kpi.name
        );
        let _ = writeln!(out, "  rank  {:width$}  {:>22}  {:>24}", "variant", "mean", "vs baseline");
        let mut order: Vec<usize> = (0..kpi.rows.len()).collect();
        order.sort_by_key(|&i| kpi.rows[i].rank);
        for i in order {
            let row = &kpi.rows[i];
            let diff = match &row.diff {
                None => "(baseline)".to_string(),
                Some(d) => format!("{}{}", pm(d, true), if row.significant { " *" } else { "  " }),
            };
            let _ = writeln!(
                out,
                "  {:>4}  {:width$}  {:>22}  {:>24}",
                row.rank,
                row.variant,
                pm(&row.estimate, false),
                diff
            );
        }
    }
    let _ = writeln!(out, "\n* the difference's interval excludes zero: the change really moves the KPI.");
    let _ = writeln!(out, "\nBottleneck shares (active-period method, mean over replications)");
    for vb in &results.bottlenecks {
        let top: Vec<String> = vb
            .stations
            .iter()
            .filter(|s| s.share.mean > 0.0005)
            .take(5)
            .map(|s| format!("{} {:.1}%", s.station, s.share.mean * 100.0))
            .collect();
        let _ = writeln!(out, "  {:width$}  {}", vb.variant, top.join(", "));
    }
    out
}

/// Quotes a CSV field when it holds a comma, quote or line break.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() }
}

/// A number for CSV: shortest exact form; empty when not finite.
fn csv_num(x: f64) -> String {
    if x.is_finite() { format!("{x}") } else { String::new() }
}

/// `summary.csv`: one line per KPI and variant, with the estimate, the paired
/// difference and the rank.
pub fn summary_csv(results: &Results) -> String {
    let mut out = String::from(
        "kpi,unit,better,variant,n,mean,half_width,low,high,diff_mean,diff_half_width,\
         diff_low,diff_high,significant,rank\n",
    );
    for kpi in &results.kpis {
        for row in &kpi.rows {
            let e = &row.estimate;
            let d = row.diff.as_ref();
            let dn = |f: fn(&Estimate) -> f64| d.map_or(String::new(), |d| csv_num(f(d)));
            let _ = writeln!(
                out,
                "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
                csv_field(&kpi.name),
                kpi.unit,
                match kpi.better {
                    Better::Higher => "higher",
                    Better::Lower => "lower",
                },
                csv_field(&row.variant),
                e.n,
                csv_num(e.mean),
                csv_num(e.half_width),
                csv_num(e.low),
                csv_num(e.high),
                dn(|d| d.mean),
                dn(|d| d.half_width),
                dn(|d| d.low),
                dn(|d| d.high),
                row.significant,
                row.rank
            );
        }
    }
    out
}

/// `replications.csv`: one line per replication with every KPI (wide, for pandas).
pub fn replications_csv(results: &Results) -> String {
    let mut out = String::from("variant,replication,seed,events");
    for kpi in &results.kpis {
        out.push(',');
        out.push_str(&csv_field(&kpi.name));
    }
    out.push('\n');
    for run in &results.runs {
        let _ = write!(out, "{},{},{},{}", csv_field(&run.variant), run.replication, run.seed, run.events);
        for v in &run.values {
            let _ = write!(out, ",{}", csv_num(*v));
        }
        out.push('\n');
    }
    out
}

/// `bottlenecks.csv`: one line per variant and station.
pub fn bottlenecks_csv(results: &Results) -> String {
    let mut out = String::from("variant,station,n,share_mean,share_half_width\n");
    for vb in &results.bottlenecks {
        for s in &vb.stations {
            let _ = writeln!(
                out,
                "{},{},{},{},{}",
                csv_field(&vb.variant),
                csv_field(&s.station),
                s.share.n,
                csv_num(s.share.mean),
                csv_num(s.share.half_width)
            );
        }
    }
    out
}

/// A file name made of the safe characters of `name` (`complex.lead_time_p95_s`,
/// `stations[mill].busy` -> `stations-mill-.busy`).
pub fn slug(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '_' { c } else { '-' }).collect()
}

/// Writes `results.json`, the three CSV files, `report.txt` and the SVG plots into
/// `dir` (created if missing). Returns the paths written.
pub fn write_all(results: &Results, dir: &Path) -> Result<Vec<PathBuf>, LabError> {
    std::fs::create_dir_all(dir)
        .map_err(|source| LabError::Io { context: format!("creating {}", dir.display()), source })?;
    let mut written = Vec::new();
    let mut write = |name: &str, text: String| -> Result<(), LabError> {
        let path = dir.join(name);
        std::fs::write(&path, text)
            .map_err(|source| LabError::Io { context: format!("writing {}", path.display()), source })?;
        written.push(path);
        Ok(())
    };
    write("results.json", results.to_json() + "\n")?;
    write("summary.csv", summary_csv(results))?;
    write("replications.csv", replications_csv(results))?;
    write("bottlenecks.csv", bottlenecks_csv(results))?;
    write("report.txt", render(results))?;
    written.extend(crate::plot::write_plots(results, dir)?);
    Ok(written)
}
