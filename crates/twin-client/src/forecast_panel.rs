//! `ForecastPlugin`: the server's periodic forecast (`StateFrame.forecast`, from `twin
//! serve --forecast-every`): a *Forecast* panel with the horizon and the P10 / P50 / P90
//! bands, and the throughput band drawn ahead of now on the KPI panel's chart
//! ([`throughput_band`]). When the server runs no forecast the panel says so instead of
//! showing zeros.

use bevy::prelude::*;
use bevy_egui::egui::{self, Color32, RichText};
use bevy_egui::{EguiContexts, EguiPrimaryContextPass};
use egui_plot::{FilledArea, Line, PlotPoints};
use twin_proto::v1::{ForecastBand, ForecastResult};

use crate::dock::{Docks, PanelId, PanelSet};
use crate::hud::format_sim_time;
use crate::model::LiveState;
use crate::presentation::panels_shown;
use crate::units;

/// Microseconds per hour (the chart's x axis is in simulated hours).
const US_PER_HOUR: f64 = 3_600_000_000.0;
/// Colour of the forecast band and its median on the chart.
pub const FORECAST_RGB: [u8; 3] = [120, 170, 255];
/// Order risks listed in the panel.
const ORDER_ROWS: usize = 6;
/// An on-time probability below this is shown as a risk (amber).
const RISKY_ON_TIME: f64 = 0.8;

/// The forecast panel.
pub struct ForecastPlugin;

impl Plugin for ForecastPlugin {
    fn build(&self, app: &mut App) {
        app.add_systems(EguiPrimaryContextPass, draw_forecast_panel.in_set(PanelSet).run_if(panels_shown));
    }
}

/// The throughput band of a forecast for the chart: P10-P90 as a filled area and P50 as
/// a line, from the fork to the horizon (x in simulated hours). `None` when the forecast
/// has no throughput band or a horizon that does not lie after its fork.
pub fn throughput_band(forecast: &ForecastResult) -> Option<(FilledArea, Line<'static>)> {
    let band = forecast.throughput_per_hour.as_ref().filter(|b| finite_band(b))?;
    if forecast.horizon_us <= forecast.from_us {
        return None;
    }
    let xs = [forecast.from_us as f64 / US_PER_HOUR, forecast.horizon_us as f64 / US_PER_HOUR];
    let colour = Color32::from_rgb(FORECAST_RGB[0], FORECAST_RGB[1], FORECAST_RGB[2]);
    let area = FilledArea::new("forecast P10-P90", &xs, &[band.p10; 2], &[band.p90; 2])
        .fill_color(colour.gamma_multiply(0.35));
    let median = Line::new("forecast P50", PlotPoints::from(vec![[xs[0], band.p50], [xs[1], band.p50]]))
        .color(colour)
        .width(2.0);
    Some((area, median))
}

fn finite_band(band: &ForecastBand) -> bool {
    [band.p10, band.p50, band.p90].iter().all(|v| v.is_finite())
}

/// One row of the panel: "P10 · P50 · P90" of a band, formatted by `unit`.
fn band_text(band: Option<&ForecastBand>, unit: impl Fn(f64) -> String) -> String {
    match band.filter(|b| finite_band(b)) {
        Some(b) => format!("{} · {} · {}", unit(b.p10), unit(b.p50), unit(b.p90)),
        None => "not computed".to_owned(),
    }
}

/// The rows of the panel as (name, "P10 · P50 · P90") pairs.
pub fn forecast_rows(forecast: &ForecastResult) -> Vec<(&'static str, String)> {
    vec![
        ("Parts finished", band_text(forecast.parts_finished.as_ref(), |v| format!("{v:.0}"))),
        ("Throughput", band_text(forecast.throughput_per_hour.as_ref(), units::per_hour)),
        ("WIP at horizon", band_text(forecast.wip_end.as_ref(), |v| format!("{v:.0}"))),
        ("WIP mean", band_text(forecast.wip_mean.as_ref(), |v| format!("{v:.1}"))),
        ("Value-added rate", band_text(forecast.value_added_rate.as_ref(), units::percent)),
    ]
}

fn draw_forecast_panel(mut contexts: EguiContexts, mut docks: ResMut<Docks>, live: Res<LiveState>) -> Result {
    let ctx = contexts.ctx_mut()?;
    docks.show(ctx, PanelId::Forecast, "Forecast", |ui| {
        let Some(forecast) = &live.forecast else {
            ui.weak("no forecast: the server runs without --forecast-every");
            return;
        };
        let now = live.clock.sim_time_us;
        ui.label(format!(
            "{} to {} ({}), {} futures",
            format_sim_time(forecast.from_us),
            format_sim_time(forecast.horizon_us),
            units::duration_us(forecast.horizon_us.saturating_sub(forecast.from_us)),
            forecast.replications
        ));
        if now >= forecast.from_us {
            ui.weak(format!("taken {} ago (simulated)", units::duration_us(now - forecast.from_us)));
        }
        if now > forecast.horizon_us {
            ui.colored_label(Color32::YELLOW, "horizon passed: waiting for the next forecast");
        }
        egui::Grid::new("forecast").num_columns(2).striped(true).show(ui, |ui| {
            ui.weak("");
            ui.weak("P10 · P50 · P90");
            ui.end_row();
            for (name, value) in forecast_rows(forecast) {
                ui.label(name);
                ui.label(RichText::new(value).monospace());
                ui.end_row();
            }
        });
        if forecast.orders.is_empty() {
            ui.weak("on-time risks: not part of this forecast");
        } else {
            ui.label("on-time probability (least likely first)");
            for order in forecast.orders.iter().take(ORDER_ROWS) {
                let p = order.on_time_probability;
                let colour =
                    if p < RISKY_ON_TIME { Color32::from_rgb(255, 170, 0) } else { Color32::LIGHT_GREEN };
                ui.horizontal(|ui| {
                    ui.colored_label(colour, units::percent(p));
                    ui.label(format!(
                        "{} ({}) due {}",
                        order.order_id,
                        order.product_id,
                        format_sim_time(order.due_at_us)
                    ));
                });
            }
            if forecast.orders.len() > ORDER_ROWS {
                ui.weak(format!("… and {} more", forecast.orders.len() - ORDER_ROWS));
            }
        }
        if forecast.orders_beyond_horizon > 0 {
            ui.weak(format!("{} orders due after the horizon (not judged)", forecast.orders_beyond_horizon));
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn band(p10: f64, p50: f64, p90: f64) -> Option<ForecastBand> {
        Some(ForecastBand { p10, p50, p90, mean: p50 })
    }

    #[test]
    fn band_spans_the_fork_to_the_horizon() {
        let forecast = ForecastResult {
            from_us: 3_600_000_000,
            horizon_us: 4 * 3_600_000_000,
            throughput_per_hour: band(10.0, 12.0, 15.0),
            ..Default::default()
        };
        assert!(throughput_band(&forecast).is_some());
        let backwards = ForecastResult { horizon_us: 0, ..forecast.clone() };
        assert!(throughput_band(&backwards).is_none());
        let without = ForecastResult { throughput_per_hour: None, ..forecast };
        assert!(throughput_band(&without).is_none());
    }

    #[test]
    fn rows_say_what_was_not_computed() {
        let forecast = ForecastResult {
            parts_finished: band(90.0, 100.0, 111.0),
            value_added_rate: band(0.25, 0.28, 0.3),
            ..Default::default()
        };
        let rows = forecast_rows(&forecast);
        assert_eq!(rows[0], ("Parts finished", "90 · 100 · 111".to_owned()));
        assert_eq!(rows[2].1, "not computed");
        assert_eq!(rows[4].1, "25.0 % · 28.0 % · 30.0 %");
    }
}
