//! The *Stations* panel: a compact colour legend (vehicle colours folded away) above a
//! list of every station with its state shares over the run, by name (the scene id on
//! hover). The list scrolls in the height the dock leaves it, so a 1280x720 window shows
//! at least [`MIN_VISIBLE_ROWS`] rows.

use bevy::prelude::*;
use bevy_egui::EguiContexts;
use bevy_egui::egui::{self, RichText};
use twin_proto::v1::{Layout, Report, StationStateKind};

use crate::dock::{Docks, PanelId};
use crate::hud::{rgb, station_name};
use crate::model::SiteLayout;
use crate::net::LatestReport;
use crate::palette::{
    STATION_STATES, VEHICLE_STATES, station_state_label, station_state_rgb, vehicle_state_label,
    vehicle_state_rgb,
};
use crate::select::{Selected, Selection};
use crate::units;

/// Height of the per-station share bars, points.
const SHARE_BAR_HEIGHT: f32 = 10.0;
/// Width of the per-station share bars, points.
const SHARE_BAR_WIDTH: f32 = 90.0;
/// Rows the list shows at least, scrolling the rest (issue 16: usable at 1280x720).
pub const MIN_VISIBLE_ROWS: usize = 8;
/// Text size of the legend, points (smaller than the body: it is read once).
const LEGEND_TEXT_SIZE: f32 = 11.0;

/// How the list was laid out, for tests.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ListView {
    /// Height of the list's visible part, points.
    pub visible: f32,
    /// Height of one row, points.
    pub row: f32,
    /// Rows in the list.
    pub rows: usize,
}

pub(crate) fn draw_station_panel(
    mut contexts: EguiContexts,
    mut docks: ResMut<Docks>,
    report: Res<LatestReport>,
    site: Res<SiteLayout>,
    mut selection: ResMut<Selection>,
) -> Result {
    let ctx = contexts.ctx_mut()?;
    docks.show(ctx, PanelId::Stations, "Stations", |ui| {
        station_panel_body(ui, site.layout.as_ref(), report.report.as_ref(), &mut selection);
    });
    Ok(())
}

/// One line of colour swatches with their names, wrapping between items only.
fn legend_line<'a>(ui: &mut egui::Ui, items: impl Iterator<Item = ([u8; 3], &'a str)>) {
    ui.horizontal_wrapped(|ui| {
        ui.spacing_mut().item_spacing.x = 7.0;
        let text = ui.visuals().text_color();
        for (colour, name) in items {
            // Swatch and name in one label, so that a line never breaks between them.
            let mut job = egui::text::LayoutJob::default();
            let font = egui::FontId::proportional(LEGEND_TEXT_SIZE);
            let swatch =
                egui::TextFormat { color: rgb(colour), ..egui::TextFormat::simple(font.clone(), text) };
            job.append("■ ", 0.0, swatch);
            job.append(name, 0.0, egui::TextFormat::simple(font, text));
            ui.add(egui::Label::new(job).extend());
        }
    });
}

/// The panel's contents: legend, then the list in the height left. Returns how the list
/// was laid out (`None` before the first report).
pub fn station_panel_body(
    ui: &mut egui::Ui,
    layout: Option<&Layout>,
    report: Option<&Report>,
    selection: &mut Selection,
) -> Option<ListView> {
    legend_line(ui, STATION_STATES.into_iter().map(|s| (station_state_rgb(s), station_state_label(s))));
    egui::CollapsingHeader::new(RichText::new("vehicle colours").size(LEGEND_TEXT_SIZE))
        .id_salt("vehicle_legend")
        .default_open(false)
        .show(ui, |ui| {
            legend_line(
                ui,
                VEHICLE_STATES.into_iter().map(|s| (vehicle_state_rgb(s), vehicle_state_label(s))),
            );
        });
    ui.separator();
    let Some(report) = report else {
        ui.weak("state shares: waiting for the first report");
        return None;
    };
    let mut row_height = 0.0;
    let output = egui::ScrollArea::vertical()
        .id_salt("station_list")
        .max_height(ui.available_height())
        .auto_shrink([false, true])
        .show(ui, |ui| {
            for row in &report.stations {
                let top = ui.cursor().top();
                ui.horizontal(|ui| {
                    let shares = [
                        (StationStateKind::Busy, row.utilization),
                        (StationStateKind::Starved, row.starved),
                        (StationStateKind::Blocked, row.blocked),
                        (StationStateKind::Down, row.down),
                        (StationStateKind::Setup, row.setup),
                        (StationStateKind::OffShift, row.off_shift),
                    ];
                    let (rect, _) = ui.allocate_exact_size(
                        egui::vec2(SHARE_BAR_WIDTH, SHARE_BAR_HEIGHT),
                        egui::Sense::hover(),
                    );
                    let mut x = rect.left();
                    for (state, share) in shares {
                        let share = if share.is_finite() { share.clamp(0.0, 1.0) as f32 } else { 0.0 };
                        let w = share * rect.width();
                        let r = egui::Rect::from_min_size(
                            egui::pos2(x, rect.top()),
                            egui::vec2(w, rect.height()),
                        );
                        ui.painter().rect_filled(r, 0.0, rgb(station_state_rgb(state)));
                        x += w;
                    }
                    let name = station_name(layout, row.station_index);
                    let id = if row.station_id.is_empty() { name.clone() } else { row.station_id.clone() };
                    let link = ui.link(name).on_hover_text(format!("id {id}"));
                    if link.clicked() {
                        selection.selected = Some(Selected::Station(row.station_index));
                    }
                    ui.weak(units::per_hour(row.throughput_per_hour));
                });
                row_height = ui.cursor().top() - top;
            }
        });
    Some(ListView { visible: output.inner_rect.height(), row: row_height, rows: report.stations.len() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dock::PanelLayout;
    use twin_proto::v1::{Station, StationReport};

    /// Body heights, points, of the panels above *Stations* in the default left column
    /// with the demo complex (eight factories, folded) at zoom 1, as the client draws them
    /// (measured on its 1280x720 picture: the panels are 162 and 204 points tall).
    const TWIN_BODY: f32 = 118.0;
    const CONTROLS_BODY: f32 = 160.0;

    fn site(n: u32) -> (Layout, Report) {
        let layout = Layout {
            stations: (0..n)
                .map(|i| Station {
                    id: format!("bat_mix_{i}"),
                    name: format!("NCM slurry mixer {i}"),
                    index: i,
                    ..default()
                })
                .collect(),
            ..default()
        };
        let report = Report {
            stations: (0..n)
                .map(|i| StationReport {
                    station_id: format!("bat_mix_{i}"),
                    station_index: i,
                    utilization: 0.5,
                    starved: 0.3,
                    throughput_per_hour: 12.0,
                    ..default()
                })
                .collect(),
            ..default()
        };
        (layout, report)
    }

    /// The default left column at `screen` through a real egui context; how the list
    /// was laid out and the text of the list's first row.
    fn lay_out(screen: egui::Vec2) -> (ListView, Vec<String>) {
        let (layout, report) = site(120);
        let mut docks = Docks::new(PanelLayout::default());
        let ctx = egui::Context::default();
        let mut selection = Selection::default();
        let mut view = None;
        let mut texts = Vec::new();
        for _ in 0..4 {
            let input = egui::RawInput {
                screen_rect: Some(egui::Rect::from_min_size(egui::Pos2::ZERO, screen)),
                ..Default::default()
            };
            docks.start_frame();
            ctx.begin_pass(input);
            let body = |h: f32| {
                move |ui: &mut egui::Ui| {
                    drop(ui.allocate_exact_size(egui::vec2(100.0, h), egui::Sense::hover()))
                }
            };
            docks.show(&ctx, PanelId::Twin, "Twin", body(TWIN_BODY));
            docks.show(&ctx, PanelId::Controls, "Controls", body(CONTROLS_BODY));
            docks.show(&ctx, PanelId::HeatMap, "Heat map", body(100.0));
            docks.show(&ctx, PanelId::Stations, "Stations", |ui| {
                view = station_panel_body(ui, Some(&layout), Some(&report), &mut selection);
            });
            let mut output = ctx.end_pass();
            output.textures_delta.clear();
            texts = output
                .shapes
                .iter()
                .filter_map(|s| match &s.shape {
                    egui::Shape::Text(t) => Some(t.galley.text().to_owned()),
                    _ => None,
                })
                .collect();
        }
        let stations = docks.last_rect(PanelId::Stations).expect("drawn");
        assert!(stations.bottom() <= screen.y + 1.0, "the panel stays in the window: {stations:?}");
        // The legend wraps: it does not widen the column (which would narrow the view).
        assert!(stations.width() < PanelId::Stations.width() + 40.0, "{stations:?}");
        (view.expect("a report"), texts)
    }

    #[test]
    fn at_720p_the_list_shows_eight_rows_by_name() {
        for screen in [egui::vec2(1280.0, 720.0), egui::vec2(1920.0, 1080.0)] {
            let (view, texts) = lay_out(screen);
            let rows = view.visible / view.row;
            println!("{screen:?}: {rows:.1} rows visible of {} ({view:?})", view.rows);
            assert!(rows >= MIN_VISIBLE_ROWS as f32 - 0.05, "{screen:?}: only {rows:.1} rows visible");
            assert!(view.visible < view.rows as f32 * view.row, "120 rows scroll");
            assert!(texts.iter().any(|t| t == "NCM slurry mixer 0"), "names, not ids: {texts:?}");
            assert!(!texts.iter().any(|t| t == "bat_mix_0"), "the id only on hover");
        }
    }
}
