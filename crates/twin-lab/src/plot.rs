//! SVG plots of an experiment (plotters' SVG backend: no system libraries or fonts
//! needed; the viewer renders the text).
//!
//! - `kpi-<kpi>.svg`: per variant, the KPI's mean as a bar with its confidence whisker
//!   (left), and the paired difference against the baseline with its whisker (right).
//!   Green: significantly better than the baseline; red: significantly worse; blue: no
//!   significant difference; grey: the baseline.
//! - `bottlenecks.svg`: per variant, the bottleneck share of the leading stations.

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::coord::ranged1d::SegmentedCoord;
use plotters::coord::types::RangedCoordusize;
use plotters::prelude::*;

use crate::error::LabError;
use crate::file::Better;
use crate::output::slug;
use crate::results::{KpiResult, Results};

/// Width of every plot, pixels.
const WIDTH: u32 = 1100;
/// Height per variant row, pixels.
const ROW_PX: u32 = 34;
/// Stations drawn in the bottleneck plot at most (by largest share in any variant).
const MAX_STATIONS: usize = 6;

const GREY: RGBColor = RGBColor(150, 150, 150);
const GREEN: RGBColor = RGBColor(46, 139, 87);
const RED: RGBColor = RGBColor(200, 60, 50);
const BLUE: RGBColor = RGBColor(70, 110, 180);
const STATION_COLOURS: [RGBColor; MAX_STATIONS] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

fn plot_error(file: &Path, e: impl std::fmt::Display) -> LabError {
    LabError::Plot { file: file.to_path_buf(), message: e.to_string() }
}

/// Writes every plot into `dir`; returns the files written.
pub fn write_plots(results: &Results, dir: &Path) -> Result<Vec<PathBuf>, LabError> {
    let mut written = Vec::new();
    for kpi in &results.kpis {
        let path = dir.join(format!("kpi-{}.svg", slug(&kpi.name)));
        kpi_plot(results, kpi, &path)?;
        written.push(path);
    }
    let path = dir.join("bottlenecks.svg");
    bottleneck_plot(results, &path)?;
    written.push(path);
    Ok(written)
}

/// One band per variant: a segmented range over `0..n` has a band for each of its
/// n + 1 values, so the last value is n - 1.
fn rows(n: usize) -> SegmentedCoord<RangedCoordusize> {
    (0..n.saturating_sub(1)).into_segmented()
}

/// A range that holds every value and zero, with a little air.
fn range_with_zero(values: impl Iterator<Item = f64>) -> std::ops::Range<f64> {
    let (mut lo, mut hi) = (0.0f64, 0.0f64);
    for v in values.filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if hi - lo < 1e-12 {
        hi = lo + 1.0;
    }
    let pad = (hi - lo) * 0.08;
    (if lo < 0.0 { lo - pad } else { lo })..(hi + pad)
}

fn kpi_plot(results: &Results, kpi: &KpiResult, path: &Path) -> Result<(), LabError> {
    let n = kpi.rows.len();
    let height = 110 + ROW_PX * n as u32;
    let root = SVGBackend::new(path, (WIDTH, height)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| plot_error(path, e))?;
    let better = match kpi.better {
        Better::Higher => "higher is better",
        Better::Lower => "lower is better",
    };
    let unit = if kpi.unit.is_empty() { String::new() } else { format!(" [{}]", kpi.unit) };
    let pct = (results.confidence * 100.0).round();
    let root = root
        .titled(
            &format!(
                "{}{unit}: mean and paired difference vs \"{}\", {pct}% CI ({better})",
                kpi.name, results.baseline
            ),
            ("sans-serif", 18),
        )
        .map_err(|e| plot_error(path, e))?;
    let (left, right) = root.split_horizontally(WIDTH * 3 / 5);
    let names: Vec<String> = kpi.rows.iter().map(|r| r.variant.clone()).collect();
    let colour = |i: usize| {
        let row = &kpi.rows[i];
        match &row.diff {
            None => GREY,
            Some(d) if row.significant => {
                let up = d.mean > 0.0;
                if up == (kpi.better == Better::Higher) { GREEN } else { RED }
            }
            Some(_) => BLUE,
        }
    };

    let means: Vec<(f64, f64, f64)> =
        kpi.rows.iter().map(|r| (r.estimate.mean, r.estimate.low, r.estimate.high)).collect();
    bars(&left, path, &names, &means, &colour, &format!("{}{unit}", kpi.name), true)?;
    let diffs: Vec<(f64, f64, f64)> =
        kpi.rows.iter().map(|r| r.diff.map_or((0.0, 0.0, 0.0), |d| (d.mean, d.low, d.high))).collect();
    bars(&right, path, &names, &diffs, &colour, &format!("difference vs {}", results.baseline), false)?;
    root.present().map_err(|e| plot_error(path, e))
}

/// Horizontal bars with whiskers, one row per variant (the first on top).
fn bars(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    path: &Path,
    names: &[String],
    values: &[(f64, f64, f64)],
    colour: &dyn Fn(usize) -> RGBColor,
    x_desc: &str,
    with_names: bool,
) -> Result<(), LabError> {
    let n = names.len();
    let x_range = range_with_zero(values.iter().flat_map(|&(m, lo, hi)| [m, lo, hi]));
    let label_px = if with_names {
        names.iter().map(|s| s.chars().count()).max().unwrap_or(8) as u32 * 7 + 16
    } else {
        8
    };
    let mut chart = ChartBuilder::on(area)
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(label_px)
        .build_cartesian_2d(x_range, rows(n))
        .map_err(|e| plot_error(path, e))?;
    let row_of = |i: usize| n - 1 - i;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(n)
        .y_label_formatter(&|v| match v {
            SegmentValue::CenterOf(r) if with_names && *r < n => names[n - 1 - *r].clone(),
            _ => String::new(),
        })
        .x_desc(x_desc)
        .label_style(("sans-serif", 13))
        .draw()
        .map_err(|e| plot_error(path, e))?;
    let band = chart.plotting_area().dim_in_pixel().1 / n.max(1) as u32;
    let pad = band / 5;
    chart
        .draw_series(values.iter().enumerate().map(|(i, &(m, _, _))| {
            let r = row_of(i);
            let mut bar = Rectangle::new(
                [(0.0, SegmentValue::Exact(r)), (m, SegmentValue::Exact(r + 1))],
                colour(i).mix(0.75).filled(),
            );
            bar.set_margin(pad, pad, 0, 0);
            bar
        }))
        .map_err(|e| plot_error(path, e))?;
    chart
        .draw_series(
            values
                .iter()
                .enumerate()
                .filter(|(_, (_, lo, hi))| lo.is_finite() && hi.is_finite() && hi > lo)
                .map(|(i, &(m, lo, hi))| {
                    ErrorBar::new_horizontal(
                        SegmentValue::CenterOf(row_of(i)),
                        lo,
                        m,
                        hi,
                        BLACK.stroke_width(2),
                        (band / 3).max(4),
                    )
                }),
        )
        .map_err(|e| plot_error(path, e))?;
    // The zero line, so that a whisker crossing it is obvious.
    chart
        .draw_series(std::iter::once(PathElement::new(
            vec![(0.0, SegmentValue::Exact(0)), (0.0, SegmentValue::Exact(n))],
            BLACK.stroke_width(1),
        )))
        .map_err(|e| plot_error(path, e))?;
    Ok(())
}

fn bottleneck_plot(results: &Results, path: &Path) -> Result<(), LabError> {
    let n = results.bottlenecks.len();
    // Stations with the largest share in any variant, in order of that share.
    let mut best: Vec<(String, f64)> = Vec::new();
    for vb in &results.bottlenecks {
        for s in &vb.stations {
            let share = if s.share.mean.is_finite() { s.share.mean } else { 0.0 };
            match best.iter_mut().find(|(id, _)| *id == s.station) {
                Some(entry) => entry.1 = entry.1.max(share),
                None => best.push((s.station.clone(), share)),
            }
        }
    }
    best.sort_by(|a, b| b.1.total_cmp(&a.1));
    // Stations that were hardly ever the bottleneck only add noise.
    best.retain(|(_, share)| *share >= 0.005);
    best.truncate(MAX_STATIONS);
    let stations: Vec<String> = best.into_iter().map(|(id, _)| id).collect();

    let height = 140 + ROW_PX * 2 * n as u32;
    let root = SVGBackend::new(path, (WIDTH, height)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| plot_error(path, e))?;
    let root = root
        .titled(
            "Bottleneck share per variant (active-period method, mean of replications)",
            ("sans-serif", 18),
        )
        .map_err(|e| plot_error(path, e))?;
    let names: Vec<String> = results.bottlenecks.iter().map(|b| b.variant.clone()).collect();
    let label_px = names.iter().map(|s| s.chars().count()).max().unwrap_or(8) as u32 * 7 + 16;
    let mut chart = ChartBuilder::on(&root)
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(label_px)
        .build_cartesian_2d(0.0..1.0, rows(n))
        .map_err(|e| plot_error(path, e))?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(n)
        .y_label_formatter(&|v| match v {
            SegmentValue::CenterOf(r) if *r < n => names[n - 1 - *r].clone(),
            _ => String::new(),
        })
        .x_desc("share of the measured window as (sole or shifting) bottleneck")
        .label_style(("sans-serif", 13))
        .draw()
        .map_err(|e| plot_error(path, e))?;
    let band = chart.plotting_area().dim_in_pixel().1 / n.max(1) as u32;
    let ns = stations.len().max(1) as u32;
    let inner = band * 4 / 5;
    let slot = inner / ns;
    for (j, station) in stations.iter().enumerate() {
        let colour = STATION_COLOURS[j % STATION_COLOURS.len()];
        let top = band / 10 + slot * j as u32;
        let bottom = band.saturating_sub(top + slot);
        chart
            .draw_series(results.bottlenecks.iter().enumerate().map(|(v, vb)| {
                let share = vb.stations.iter().find(|s| &s.station == station).map_or(0.0, |s| s.share.mean);
                let r = n - 1 - v;
                let mut bar = Rectangle::new(
                    // Top-left corner first, so that the margins mean top and bottom.
                    [(0.0, SegmentValue::Exact(r + 1)), (share, SegmentValue::Exact(r))],
                    colour.filled(),
                );
                bar.set_margin(top, bottom, 0, 0);
                bar
            }))
            .map_err(|e| plot_error(path, e))?
            .label(station.clone())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], colour.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 13))
        .draw()
        .map_err(|e| plot_error(path, e))?;
    root.present().map_err(|e| plot_error(path, e))
}
