//! `HudPlugin`: the egui panels: connection and clock, controls, KPIs with a throughput
//! chart, bottleneck ranking, per-station state shares with the colour legend, factories
//! (focus buttons), selection details with trainer actions and FPS (factory labels: `labels.rs`).

use std::collections::VecDeque;

use bevy::diagnostic::{DiagnosticsStore, FrameTimeDiagnosticsPlugin};
use bevy::prelude::*;
use bevy_egui::egui::{self, Color32, RichText};
use bevy_egui::{EguiContexts, EguiPrimaryContextPass};
use egui_plot::{Line, Plot, PlotPoint, PlotPoints};
use twin_proto::v1::{
    Layout, StationKind, StationState, StationStateKind, SyncStatus, VehicleKind, VehicleStateKind,
};

use crate::camera::FocusOn;
use crate::dock::{Docks, PanelId, PanelSet};
use crate::forecast_panel::throughput_band;
use crate::model::{LiveState, SiteLayout};
use crate::net::{Access, Connection, LatestReport, LinkStatus, NetBridge, NetCommand, ServerSwitched};
use crate::palette::{station_state_label, vehicle_state_label};
use crate::presentation::panels_shown;
use crate::programme::{Complexes, ProgrammeView};
use crate::select::{Selected, Selection};
use crate::trainer::{MOVING_ROWS, RANKING_ROWS, RankingMotion, SHIFT_NOTICE_S};
use crate::units;

/// Most points kept in the throughput chart.
const HISTORY_CAPACITY: usize = 4000;
/// Smallest simulated time between chart points, microseconds (10 s).
const HISTORY_STEP_US: u64 = 10_000_000;
/// Height of one row of the bottleneck ranking, points.
const RANKING_ROW_HEIGHT: f32 = 22.0;
/// Characters of a product's name shown in the rush order's choice (the list shows all).
const RUSH_PRODUCT_CHARS: usize = 18;
/// Factories listed open in the *Controls* panel at start; more start folded.
const FACTORIES_OPEN_UP_TO: usize = 3;
/// Speed presets offered as buttons (simulated seconds per wall second).
const SPEED_PRESETS: [f64; 5] = [0.25, 1.0, 10.0, 60.0, 600.0];
/// Microseconds per hour.
const US_PER_HOUR: f64 = 3_600_000_000.0;

/// Panels and overlays.
pub struct HudPlugin;

impl Plugin for HudPlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<ThroughputHistory>()
            .init_resource::<HudInputs>()
            .init_resource::<ProgrammeView>()
            .add_systems(
                Update,
                (
                    clear_history.run_if(on_message::<ServerSwitched>),
                    record_throughput.run_if(resource_changed::<LiveState>),
                )
                    .chain(),
            )
            .add_systems(
                EguiPrimaryContextPass,
                (
                    draw_status_panel,
                    draw_control_panel,
                    draw_kpi_panel,
                    draw_bottleneck_panel,
                    crate::stations_panel::draw_station_panel,
                    draw_selection_panel,
                )
                    .chain()
                    .in_set(PanelSet)
                    .run_if(panels_shown),
            );
    }
}

/// Complex throughput over simulated time, for the chart.
#[derive(Resource, Default)]
pub struct ThroughputHistory {
    /// (simulated hours, parts per hour), oldest first.
    points: VecDeque<PlotPoint>,
    /// Simulated time of the newest point, microseconds.
    last_us: Option<u64>,
}

impl ThroughputHistory {
    /// Adds a sample; a clock that went backwards (reset, new scene) restarts the chart.
    pub fn record(&mut self, sim_time_us: u64, throughput_per_hour: f64) {
        if let Some(last) = self.last_us {
            if sim_time_us < last {
                self.points.clear();
            } else if sim_time_us - last < HISTORY_STEP_US {
                return;
            }
        }
        if self.points.len() == HISTORY_CAPACITY {
            self.points.pop_front();
        }
        let value = if throughput_per_hour.is_finite() { throughput_per_hour } else { 0.0 };
        self.points.push_back(PlotPoint::new(sim_time_us as f64 / US_PER_HOUR, value));
        self.last_us = Some(sim_time_us);
    }

    /// Number of points held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.points.len()
    }
}

/// Values being edited in the panels.
#[derive(Resource)]
struct HudInputs {
    speed: f64,
    max_speed: bool,
    run_to_h: f64,
    seed: u64,
    rush_product: usize,
    rush_quantity: u32,
}

impl Default for HudInputs {
    fn default() -> Self {
        Self { speed: 1.0, max_speed: false, run_to_h: 8.0, seed: 1, rush_product: 0, rush_quantity: 10 }
    }
}

/// Another server's run is another chart.
fn clear_history(mut history: ResMut<ThroughputHistory>) {
    *history = ThroughputHistory::default();
}

fn record_throughput(live: Res<LiveState>, mut history: ResMut<ThroughputHistory>) {
    if live.has_frame() {
        history.record(live.clock.sim_time_us, live.kpis.throughput_per_hour);
    }
}

/// The end of the warm-up while the clock is still inside it (KPIs then cover nothing
/// yet and read as zeros): `Layout.warmup_end_us`, which the server sends with the
/// layout. `None` after it, without a warm-up, or before the first frame.
pub fn warming_up_until(live: &LiveState, site: &SiteLayout) -> Option<u64> {
    let end = site.layout.as_ref()?.warmup_end_us;
    (live.has_frame() && live.clock.sim_time_us < end).then_some(end)
}

/// "warming up until 08:00" (the simulated clock's hours and minutes).
pub fn warming_up_text(until_us: u64) -> String {
    format!("warming up until {}", format_sim_minutes(until_us))
}

/// What a figure that needs a finished part reads while none has finished yet.
pub const NO_PART_YET: &str = "— (no part finished yet)";

/// True while no part has finished in the statistics window: throughput, lead time and
/// value added are then not zero but not known yet.
pub fn no_part_finished(k: &twin_proto::v1::KpiSummary) -> bool {
    k.finished == 0 || k.lead_time_mean_s.is_nan() || k.lead_time_mean_s <= 0.0
}

/// Formats simulated time as `[Nd ]HH:MM`.
pub fn format_sim_minutes(us: u64) -> String {
    let m = us / 60_000_000;
    let (d, h, m) = (m / 1440, m / 60 % 24, m % 60);
    if d > 0 { format!("{d}d {h:02}:{m:02}") } else { format!("{h:02}:{m:02}") }
}

/// Formats simulated time as `[Nd ]HH:MM:SS`.
pub fn format_sim_time(us: u64) -> String {
    let s = us / 1_000_000;
    let (d, h, m, s) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    if d > 0 { format!("{d}d {h:02}:{m:02}:{s:02}") } else { format!("{h:02}:{m:02}:{s:02}") }
}

/// `text` cut to `chars` characters with an ellipsis when longer.
fn shorten(text: &str, chars: usize) -> String {
    match text.char_indices().nth(chars) {
        Some((at, _)) => format!("{}…", text[..at].trim_end()),
        None => text.to_owned(),
    }
}

pub(crate) fn rgb(c: [u8; 3]) -> Color32 {
    Color32::from_rgb(c[0], c[1], c[2])
}

pub(crate) fn station_name(layout: Option<&Layout>, index: u32) -> String {
    layout.and_then(|l| l.stations.get(index as usize)).map_or_else(
        || format!("#{index}"),
        |s| {
            if s.name.is_empty() { s.id.clone() } else { s.name.clone() }
        },
    )
}

/// A button for a call to `rpc`: disabled, with a hover text saying why, when the
/// caller's role may not call it. True when clicked.
fn guarded_button(ui: &mut egui::Ui, access: &Access, rpc: &str, text: impl Into<egui::WidgetText>) -> bool {
    let allowed = access.allows(rpc);
    let response = ui.add_enabled(allowed, egui::Button::new(text));
    let response = if allowed { response } else { response.on_disabled_hover_text(access.denial(rpc)) };
    response.clicked()
}

fn draw_status_panel(
    mut contexts: EguiContexts,
    mut docks: ResMut<Docks>,
    (connection, access): (Res<Connection>, Res<Access>),
    live: Res<LiveState>,
    site: Res<SiteLayout>,
    diagnostics: Res<DiagnosticsStore>,
    (complexes, mut programme): (Res<Complexes>, ResMut<ProgrammeView>),
) -> Result {
    let ctx = contexts.ctx_mut()?;
    docks.show(ctx, PanelId::Twin, "Twin", |ui| {
        let (colour, text) = match &connection.status {
            LinkStatus::Connected => (Color32::LIGHT_GREEN, "connected".to_owned()),
            LinkStatus::Connecting => {
                (Color32::YELLOW, format!("connecting (attempt {})", connection.attempts))
            }
            LinkStatus::Retrying { reason, retry_in } => (
                Color32::from_rgb(255, 120, 80),
                format!("disconnected, retrying in {:.1} s: {reason}", retry_in.as_secs_f32()),
            ),
            LinkStatus::Failed(reason) => (Color32::RED, reason.clone()),
        };
        // One line when connected; a reason wraps below the address.
        ui.horizontal_wrapped(|ui| {
            ui.colored_label(colour, "■");
            ui.label(&connection.server);
            ui.add(egui::Label::new(RichText::new(text).color(colour)).wrap());
        });
        if let Some(who) = access.signed_in_as() {
            ui.label(format!("signed in as {who}"));
        }
        if let Some(layout) = &site.layout {
            let title = if layout.scene_title.is_empty() { &layout.scene_name } else { &layout.scene_title };
            ui.label(RichText::new(title).strong());
        }
        ui.separator();
        let clock = &live.clock;
        ui.label(RichText::new(format_sim_time(clock.sim_time_us)).monospace().size(20.0));
        let speed = match clock.speed {
            _ if clock.max_speed => "max".to_owned(),
            v if v >= 10.0 => format!("×{v:.0}"),
            v => format!("×{v:.2}"),
        };
        ui.label(format!(
            "{} {speed} (achieved ×{:.1})",
            if clock.paused { "⏸ paused" } else { "▶ running" },
            clock.achieved_speed
        ));
        if let Some(until) = clock.run_until_us {
            ui.label(format!("running to {}", format_sim_time(until)));
        }
        let fps = diagnostics.get(&FrameTimeDiagnosticsPlugin::FPS).and_then(|d| d.smoothed()).unwrap_or(0.0);
        ui.label(format!("{fps:.0} fps · frame #{} · seed {}", live.seq, clock.seed));
        ui.label(RichText::new("keys: F5 · Tab · H · T · 0-9 (hover)").small().weak()).on_hover_text(
            "F5 presentation · Tab hides the panels · H heat map · T tour · 1-9 factories · 0 whole site",
        );
        if live.out_of_range > 0 {
            ui.colored_label(Color32::YELLOW, format!("{} bad indices in last frame", live.out_of_range));
        }
        if let Some(last) = &connection.last_command {
            ui.small(last);
        }
        if let Some((reply, _)) = &complexes.list
            && !programme.open
            && ui.button(format!("Programme ({} complexes)", reply.complexes.len())).clicked()
        {
            programme.open = true;
        }
    });
    Ok(())
}

fn draw_control_panel(
    mut contexts: EguiContexts,
    mut docks: ResMut<Docks>,
    (net, access): (Res<NetBridge>, Res<Access>),
    live: Res<LiveState>,
    site: Res<SiteLayout>,
    mut inputs: ResMut<HudInputs>,
    mut focus: MessageWriter<FocusOn>,
) -> Result {
    let ctx = contexts.ctx_mut()?;
    docks.show(ctx, PanelId::Controls, "Controls", |ui| {
        ui.horizontal(|ui| {
            if live.clock.paused {
                if guarded_button(ui, &access, "Resume", "▶ Resume") {
                    net.send(NetCommand::Resume);
                }
            } else if guarded_button(ui, &access, "Pause", "⏸ Pause") {
                net.send(NetCommand::Pause);
            }
        });
        ui.horizontal_wrapped(|ui| {
            for preset in SPEED_PRESETS {
                if guarded_button(ui, &access, "SetSpeed", format!("×{preset}")) {
                    inputs.speed = preset;
                    inputs.max_speed = false;
                    net.send(NetCommand::SetSpeed { speed: preset, max_speed: false });
                }
            }
            if guarded_button(ui, &access, "SetSpeed", "max") {
                inputs.max_speed = true;
                net.send(NetCommand::SetSpeed { speed: inputs.speed, max_speed: true });
            }
        });
        ui.horizontal(|ui| {
            ui.add(egui::Slider::new(&mut inputs.speed, 0.05..=3600.0).logarithmic(true).text("×"));
            if guarded_button(ui, &access, "SetSpeed", "set") {
                net.send(NetCommand::SetSpeed { speed: inputs.speed, max_speed: false });
            }
        });
        ui.horizontal(|ui| {
            ui.add(egui::DragValue::new(&mut inputs.run_to_h).range(0.0..=10_000.0).speed(0.1).suffix(" h"));
            if guarded_button(ui, &access, "RunTo", "Run to") {
                let sim_time_us = (inputs.run_to_h.max(0.0) * US_PER_HOUR) as u64;
                net.send(NetCommand::RunTo { sim_time_us });
            }
        });
        ui.horizontal(|ui| {
            ui.add(egui::DragValue::new(&mut inputs.seed).prefix("seed "));
            if guarded_button(ui, &access, "Reset", "Reset") {
                net.send(NetCommand::Reset { seed: Some(inputs.seed) });
            }
        });
        let Some(layout) = &site.layout else { return };
        ui.separator();
        ui.horizontal(|ui| {
            ui.label("Rush");
            let selected = layout.products.get(inputs.rush_product).map_or("-", |p| p.name.as_str());
            let selected = shorten(selected, RUSH_PRODUCT_CHARS);
            egui::ComboBox::from_id_salt("rush_product").selected_text(selected).show_ui(ui, |ui| {
                for (i, product) in layout.products.iter().enumerate() {
                    ui.selectable_value(&mut inputs.rush_product, i, &product.name);
                }
            });
            ui.add(egui::DragValue::new(&mut inputs.rush_quantity).range(1..=10_000));
            if guarded_button(ui, &access, "AddRushOrder", "Add")
                && let Some(product) = layout.products.get(inputs.rush_product)
            {
                net.send(NetCommand::AddRushOrder {
                    product_id: product.id.clone(),
                    quantity: inputs.rush_quantity.max(1),
                });
            }
        });
        ui.separator();
        // A long list starts folded (keys 1-9 and 0 frame them too), leaving a 720p
        // window's left column room for the stations' list.
        let few = layout.factories.len() <= FACTORIES_OPEN_UP_TO;
        egui::CollapsingHeader::new("Factories").default_open(few).show(ui, |ui| {
            for (i, factory) in layout.factories.iter().enumerate() {
                ui.horizontal(|ui| {
                    // Keys 1..9 are the camera presets of the first nine factories.
                    let key = if i < crate::tour::PRESET_KEYS.len() {
                        format!("{}", i + 1)
                    } else {
                        "·".to_owned()
                    };
                    if ui.small_button(format!("{key} focus")).clicked()
                        && let Some(preset) = crate::tour::factory_preset(layout, i)
                    {
                        focus.write(preset);
                    }
                    ui.label(&factory.name);
                    if !factory.industry.is_empty() {
                        ui.weak(&factory.industry);
                    }
                });
            }
            if ui.small_button("0 whole site").clicked()
                && let Some(preset) = crate::tour::site_preset(layout)
            {
                focus.write(preset);
            }
        });
    });
    Ok(())
}

/// The KPI panel's rows (name, value) in units a person reads; money in the layout's
/// currency. Figures that need a finished part say so while none has finished.
pub fn kpi_rows(k: &twin_proto::v1::KpiSummary, currency: &str) -> Vec<(&'static str, String)> {
    let none = no_part_finished(k);
    let per_part = |text: String| if none { NO_PART_YET.to_owned() } else { text };
    let mut rows = vec![
        ("Throughput", per_part(units::per_hour(k.throughput_per_hour))),
        ("WIP", format!("{:.0}", k.wip)),
        ("Lead time", per_part(units::duration(k.lead_time_mean_s))),
        ("OEE", units::percent(k.oee)),
        ("Energy", format!("{:.1} kWh", k.energy_kwh)),
        ("Energy cost", units::money(k.energy_cost, currency)),
        ("CO2", format!("{:.1} kg", k.co2_kg)),
        ("Value added", per_part(units::money(k.value_added, currency))),
        ("Value-added rate", per_part(units::percent(k.value_added_rate))),
    ];
    if let Some(lp) = k.labour_productivity {
        rows.push(("Labour productivity", per_part(units::money_per_hour(lp, currency))));
    }
    rows.push(("AGV utilisation", units::percent(k.agv_utilization)));
    rows.push(("Finished", k.finished.to_string()));
    rows.push(("Scrapped", k.scrapped.to_string()));
    rows
}

fn draw_kpi_panel(
    mut contexts: EguiContexts,
    mut docks: ResMut<Docks>,
    live: Res<LiveState>,
    site: Res<SiteLayout>,
    mut history: ResMut<ThroughputHistory>,
) -> Result {
    let ctx = contexts.ctx_mut()?;
    let k = &live.kpis;
    let currency = site.layout.as_ref().map_or("", |l| l.currency.as_str());
    docks.show(ctx, PanelId::Kpis, "KPIs", |ui| {
        if let Some(until) = warming_up_until(&live, &site) {
            // Statistics start at the end of the warm-up: zeros before it mean nothing.
            ui.label(RichText::new(warming_up_text(until)).size(16.0).color(Color32::YELLOW));
            ui.weak(format!(
                "KPIs count from then ({} to go)",
                units::duration_us(until.saturating_sub(live.clock.sim_time_us))
            ));
        } else {
            egui::Grid::new("kpis").num_columns(2).striped(true).show(ui, |ui| {
                for (name, value) in kpi_rows(k, currency) {
                    ui.label(name);
                    ui.label(RichText::new(value).monospace());
                    ui.end_row();
                }
            });
        }
        let band = live.forecast.as_ref().and_then(throughput_band);
        ui.label(if band.is_some() {
            "Throughput (/h) over simulated hours; forecast P10-P90 ahead"
        } else {
            "Throughput (/h) over simulated hours"
        });
        let points = history.points.make_contiguous();
        Plot::new("throughput")
            .height(90.0)
            .allow_scroll(false)
            .allow_drag(false)
            .allow_zoom(false)
            .include_y(0.0)
            .show(ui, |plot| {
                plot.line(Line::new("throughput", PlotPoints::Borrowed(points)));
                if let Some((area, median)) = band {
                    plot.add(area);
                    plot.line(median);
                }
            });
    });
    Ok(())
}

fn draw_bottleneck_panel(
    mut contexts: EguiContexts,
    mut docks: ResMut<Docks>,
    live: Res<LiveState>,
    site: Res<SiteLayout>,
    mut selection: ResMut<Selection>,
    motion: Res<RankingMotion>,
) -> Result {
    let ctx = contexts.ctx_mut()?;
    let layout = site.layout.as_ref();
    docks.show(ctx, PanelId::Bottlenecks, "Bottlenecks", |ui| {
        match live.bottlenecks.momentary_station_index {
            Some(i) => ui.label(
                RichText::new(format!("now: {}", station_name(layout, i)))
                    .size(16.0)
                    .color(Color32::from_rgb(255, 90, 70)),
            ),
            None => ui.weak("now: none"),
        };
        if let Some(shift) = &motion.shift {
            // Fades out over the notice's life.
            let alpha = (1.0 - shift.age_s / SHIFT_NOTICE_S).clamp(0.3, 1.0);
            let from = shift.from.map_or_else(|| "none".to_owned(), |i| station_name(layout, i));
            ui.label(
                RichText::new(format!(
                    "bottleneck moved from {from} to {} at {}",
                    station_name(layout, shift.to),
                    format_sim_time(shift.sim_time_us)
                ))
                .color(Color32::from_rgb(255, 200, 90).gamma_multiply(alpha)),
            );
        }
        // Rows are drawn where `RankingMotion` has them, gliding to their rank.
        let entries: Vec<_> = live.bottlenecks.ranking.iter().take(RANKING_ROWS).collect();
        let (area, _) = ui.allocate_exact_size(
            egui::vec2(ui.available_width(), RANKING_ROW_HEIGHT * entries.len() as f32),
            egui::Sense::hover(),
        );
        for (rank, entry) in entries.iter().enumerate() {
            let row = motion.row(entry.station_index).unwrap_or(rank as f32);
            let top = area.top() + row * RANKING_ROW_HEIGHT;
            let rect = egui::Rect::from_min_size(
                egui::pos2(area.left(), top),
                egui::vec2(area.width(), RANKING_ROW_HEIGHT),
            );
            ui.scope_builder(egui::UiBuilder::new().max_rect(rect), |ui| {
                ui.horizontal(|ui| {
                    let share = if entry.share.is_finite() { entry.share.clamp(0.0, 1.0) } else { 0.0 };
                    let moving = row - rank as f32;
                    let (arrow, colour) = if moving > MOVING_ROWS {
                        ("▲", Color32::from_rgb(255, 120, 90))
                    } else if moving < -MOVING_ROWS {
                        ("▼", Color32::from_rgb(120, 200, 130))
                    } else {
                        (" ", Color32::GRAY)
                    };
                    ui.label(RichText::new(format!("{} {arrow}", rank + 1)).monospace().color(colour));
                    ui.add(
                        egui::ProgressBar::new(share as f32)
                            .desired_width(80.0)
                            .text(format!("{:.0} %", share * 100.0)),
                    );
                    if ui.link(station_name(layout, entry.station_index)).clicked() {
                        selection.selected = Some(Selected::Station(entry.station_index));
                    }
                });
            });
        }
    });
    Ok(())
}

/// Where a station's state comes from; a stale one keeps its last known state.
fn sync_label(state: &StationState) -> String {
    let seen =
        state.last_observed_us.map(|t| format!(", last report {}", format_sim_time(t))).unwrap_or_default();
    match state.sync() {
        SyncStatus::Live => format!("live{seen}"),
        SyncStatus::Stale => format!("stale (last known state kept){seen}"),
        SyncStatus::ModelOnly | SyncStatus::Unspecified => "model only".to_owned(),
    }
}

fn station_kind_label(kind: StationKind) -> &'static str {
    match kind {
        StationKind::Machine => "machine",
        StationKind::Oven => "oven / furnace",
        StationKind::RobotCell => "robot cell",
        StationKind::Inspection => "inspection",
        StationKind::Assembly => "assembly",
        StationKind::Packaging => "packaging",
        StationKind::Manual => "manual",
        StationKind::Storage => "storage",
        StationKind::Other | StationKind::Unspecified => "other",
    }
}

fn draw_selection_panel(
    mut contexts: EguiContexts,
    mut docks: ResMut<Docks>,
    mut selection: ResMut<Selection>,
    site: Res<SiteLayout>,
    live: Res<LiveState>,
    report: Res<LatestReport>,
    (net, access): (Res<NetBridge>, Res<Access>),
) -> Result {
    let ctx = contexts.ctx_mut()?;
    let Some(selected) = selection.selected else {
        return Ok(());
    };
    let Some(layout) = &site.layout else {
        return Ok(());
    };
    let mut open = true;
    docks.show(ctx, PanelId::Selection, "Selection", |ui| {
        if ui.small_button("× clear (Esc)").clicked() {
            open = false;
        }
        match selected {
            Selected::Station(i) => {
                let Some(station) = layout.stations.get(i as usize) else {
                    ui.label("station no longer exists");
                    return;
                };
                let state = live.stations.get(i as usize).copied().unwrap_or_default();
                ui.label(RichText::new(&station.name).strong());
                egui::Grid::new("station").num_columns(2).show(ui, |ui| {
                    let capacity = match station.input_buffer {
                        Some(b) if b.unlimited => "unlimited".to_owned(),
                        Some(b) => b.limit.to_string(),
                        None => "-".to_owned(),
                    };
                    let kind = StationStateKind::try_from(state.state).unwrap_or_default();
                    let rows: [(&str, String); 11] = [
                        ("id", station.id.clone()),
                        ("kind", station_kind_label(station.kind()).to_owned()),
                        ("factory", station.factory_id.clone()),
                        ("state", station_state_label(kind).to_owned()),
                        ("servers", format!("{} busy of {}", state.busy_servers, station.servers)),
                        ("queue", format!("{} (buffer {capacity})", state.queue_length)),
                        ("buffer fill", format!("{:.0} %", state.buffer_fill * 100.0)),
                        ("throughput", units::per_hour(state.throughput_per_hour)),
                        ("utilization", units::percent(state.utilization)),
                        ("telemetry", sync_label(&state)),
                        ("alarms", format!("{} open", state.open_alarms)),
                    ];
                    for (name, value) in rows {
                        ui.label(name);
                        ui.label(value);
                        ui.end_row();
                    }
                    if let Some(row) =
                        report.report.as_ref().and_then(|r| r.stations.iter().find(|r| r.station_index == i))
                    {
                        ui.label("wait mean");
                        ui.label(units::duration(row.wait_mean_s));
                        ui.end_row();
                        ui.label("bottleneck");
                        ui.label(format!("{:.0} % of time", row.bottleneck_share * 100.0));
                        ui.end_row();
                    }
                });
                ui.horizontal(|ui| {
                    if guarded_button(ui, &access, "BreakDown", "Break down") {
                        net.send(NetCommand::BreakDown { station_id: station.id.clone() });
                    }
                    if guarded_button(ui, &access, "Repair", "Repair") {
                        net.send(NetCommand::Repair { station_id: station.id.clone() });
                    }
                });
            }
            Selected::Vehicle(i) => {
                let Some(vehicle) = layout.vehicles.get(i as usize) else {
                    ui.label("vehicle no longer exists");
                    return;
                };
                let state = live.vehicles.get(i as usize).copied().unwrap_or_default();
                ui.label(RichText::new(&vehicle.id).strong());
                egui::Grid::new("vehicle").num_columns(2).show(ui, |ui| {
                    let kind = match vehicle.kind() {
                        VehicleKind::Truck => "truck",
                        VehicleKind::Agv => "AGV",
                        VehicleKind::Unspecified => "vehicle",
                    };
                    let activity = VehicleStateKind::try_from(state.state).unwrap_or_default();
                    let rows: [(&str, String); 7] = [
                        ("kind", kind.to_owned()),
                        ("fleet", vehicle.fleet_id.clone()),
                        ("state", vehicle_state_label(activity).to_owned()),
                        ("battery", format!("{:.0} %", state.battery * 100.0)),
                        ("load", format!("{} / {}", state.load, vehicle.capacity)),
                        ("position", format!("{:.1}, {:.1} m", state.x, state.y)),
                        ("speed", format!("{:.1} m/s", state.speed_m_s)),
                    ];
                    for (name, value) in rows {
                        ui.label(name);
                        ui.label(value);
                        ui.end_row();
                    }
                });
            }
        }
    });
    if !open {
        selection.selected = None;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_names_are_cut_short() {
        assert_eq!(shorten("NCM pouch cell 60 Ah (tray of 12)", 18), "NCM pouch cell 60…");
        assert_eq!(shorten("Steel bracket", 18), "Steel bracket");
    }

    #[test]
    fn sim_time_formats_as_clock() {
        assert_eq!(format_sim_time(0), "00:00:00");
        assert_eq!(format_sim_time(3_723_000_000), "01:02:03");
        assert_eq!(format_sim_time(90_000_000_000), "1d 01:00:00");
    }

    #[test]
    fn kpis_read_in_units_and_wait_for_the_warm_up() {
        let kpis = twin_proto::v1::KpiSummary {
            lead_time_mean_s: 5400.0,
            value_added: 1_250_000.0,
            labour_productivity: Some(42_000.0),
            finished: 12,
            ..Default::default()
        };
        let rows = kpi_rows(&kpis, "KRW");
        let find = |rows: &[(&str, String)], name: &str| {
            rows.iter().find(|(n, _)| *n == name).map(|(_, v)| v.clone())
        };
        assert_eq!(find(&rows, "Lead time").as_deref(), Some("1 h 30 min"));
        assert_eq!(find(&rows, "Value added").as_deref(), Some("1,250,000 KRW"));
        assert_eq!(find(&rows, "Labour productivity").as_deref(), Some("42,000 KRW/h"));

        // Nothing finished yet: the figures that need a part say so instead of a zero.
        let empty = twin_proto::v1::KpiSummary { wip: 3.0, oee: 0.268, ..Default::default() };
        let rows = kpi_rows(&empty, "EUR");
        for name in ["Throughput", "Lead time", "Value added", "Value-added rate"] {
            assert_eq!(find(&rows, name).as_deref(), Some(NO_PART_YET), "{name}");
        }
        assert_eq!(find(&rows, "WIP").as_deref(), Some("3"));
        assert_eq!(find(&rows, "OEE").as_deref(), Some("26.8 %"));

        // The warm-up's end comes with the layout (the training line's 8 h).
        let layout = Layout { layout_generation: 1, warmup_end_us: 8 * 3_600_000_000, ..Default::default() };
        let mut live = LiveState::default();
        live.reset_for(&layout);
        let mut site = SiteLayout { layout: Some(layout.clone()) };
        assert_eq!(warming_up_until(&live, &site), None, "nothing to say before the first frame");
        let frame = twin_proto::v1::StateFrame {
            seq: 1,
            full: true,
            layout_generation: 1,
            clock: Some(twin_proto::v1::ClockState { sim_time_us: 52_000_000, ..Default::default() }),
            ..Default::default()
        };
        live.apply_frame(&frame, Some(1)).expect("frame applies");
        assert_eq!(warming_up_until(&live, &site), Some(8 * 3_600_000_000));
        assert_eq!(warming_up_text(8 * 3_600_000_000), "warming up until 08:00");
        assert_eq!(
            crate::presentation::strip_items(&live, &site)[..2],
            ["00:00:52".to_owned(), "warming up until 08:00".to_owned()],
            "the strip says so too"
        );
        live.clock.sim_time_us = 8 * 3_600_000_000;
        assert_eq!(warming_up_until(&live, &site), None, "over at its end");
        // After it, before the first part: no zeros in the strip either.
        let strip = crate::presentation::strip_items(&live, &site).join(" · ");
        assert!(strip.contains("no part finished yet") && !strip.contains("throughput"), "{strip}");
        site.layout.as_mut().expect("layout").warmup_end_us = 0;
        live.clock.sim_time_us = 0;
        assert_eq!(warming_up_until(&live, &site), None, "a scene without a warm-up");
        assert_eq!(format_sim_minutes(90_000_000_000), "1d 01:00");
    }

    #[test]
    fn history_thins_and_restarts_on_reset() {
        let mut history = ThroughputHistory::default();
        history.record(0, 1.0);
        history.record(1_000_000, 2.0); // too close to the previous sample
        history.record(HISTORY_STEP_US, 3.0);
        assert_eq!(history.len(), 2);
        history.record(5, f64::NAN); // clock went backwards: reset
        assert_eq!(history.len(), 1);
        assert_eq!(history.points[0].y, 0.0);
    }
}
