//! `HeatMapPlugin`: heat-map mode (`H`, or the *Heat map* panel). Stations are coloured by
//! one share over a chosen window instead of by their state: utilisation, starved,
//! blocked or down. The shares come from where they are measured:
//!
//! - *whole run*: the server's report (`GetReport`, statistics since the warm-up's end);
//! - *since connected* and *last N min*: sampled by the client from the state frames it
//!   received (each station's state held from one frame to the next, weighted by the
//!   simulated time between them), and labelled so: the server sends no windowed shares.
//!
//! The colours are a ramp shared by the materials and the legend, applied through the
//! site's `StationMaterialOverride` hook. Flow lines keep their
//! width by measured throughput (`site.rs`); the legend says what the widest one carries.

use std::collections::VecDeque;

use bevy::prelude::*;
use bevy_egui::egui::{self, Color32, RichText};
use bevy_egui::input::EguiWantsInput;
use bevy_egui::{EguiContexts, EguiPrimaryContextPass};
use twin_proto::v1::StationStateKind;

use crate::dock::{Docks, PanelId, PanelSet};
use crate::hud::format_sim_time;
use crate::model::{LiveState, SiteLayout};
use crate::net::{LatestReport, ServerSwitched};
use crate::presentation::panels_shown;
use crate::site::{StationIndex, StationMaterialOverride};
use crate::units;

/// The key that switches heat-map mode on and off.
pub const HEAT_MAP_KEY: KeyCode = KeyCode::KeyH;
/// Number of colour steps of the ramp (one shared material each).
pub const RAMP_STEPS: usize = 11;
/// Colour of the ramp at share 0, 0.5 and 1: cool blue, yellow, hot red.
const RAMP_RGB: [[u8; 3]; 3] = [[40, 70, 170], [240, 210, 60], [215, 35, 30]];
/// Colour of a station without a measured share yet.
const NO_DATA_RGB: [u8; 3] = [110, 110, 120];
/// Width of one bucket of the recent-window sampler, simulated microseconds (1 min).
const BUCKET_US: u64 = 60_000_000;
/// Buckets kept: the longest recent window, minutes of simulated time.
const RECENT_BUCKETS: usize = 60;
/// The recent windows offered, minutes of simulated time.
pub const RECENT_WINDOWS_MIN: [u32; 2] = [10, 60];
/// A jump of the simulated clock larger than this between two frames (a seek, a long
/// disconnection) is not sampled: nothing is known about what happened in between.
const MAX_SAMPLE_GAP_US: u64 = 15 * 60_000_000;
/// Height of the legend's colour bar, points.
const LEGEND_BAR_HEIGHT: f32 = 14.0;

/// Heat-map mode and its panel.
pub struct HeatMapPlugin {
    /// Start with heat-map mode on (`--heat-map`).
    pub start_on: bool,
}

impl Plugin for HeatMapPlugin {
    fn build(&self, app: &mut App) {
        app.insert_resource(HeatMap { on: self.start_on, ..default() })
            .init_resource::<FrameShares>()
            .add_systems(Startup, load_ramp)
            .add_systems(
                Update,
                (
                    toggle_heat_map,
                    forget_shares.run_if(on_message::<ServerSwitched>),
                    sample_frames.run_if(resource_changed::<LiveState>),
                )
                    .chain(),
            )
            .add_systems(Update, paint_stations.after(sample_frames))
            .add_systems(EguiPrimaryContextPass, draw_heat_map_panel.in_set(PanelSet).run_if(panels_shown));
    }
}

/// The share a heat map shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeatMetric {
    /// Busy servers over servers (report: `utilization`).
    Utilisation,
    /// Starved share.
    Starved,
    /// Blocked share.
    Blocked,
    /// Down share.
    Down,
}

impl HeatMetric {
    /// Every metric, in the panel's order.
    pub const ALL: [HeatMetric; 4] =
        [HeatMetric::Utilisation, HeatMetric::Starved, HeatMetric::Blocked, HeatMetric::Down];

    /// Name in the panel and legend.
    pub fn label(self) -> &'static str {
        match self {
            HeatMetric::Utilisation => "utilisation",
            HeatMetric::Starved => "starved",
            HeatMetric::Blocked => "blocked",
            HeatMetric::Down => "down",
        }
    }

    fn slot(self) -> usize {
        match self {
            HeatMetric::Utilisation => 0,
            HeatMetric::Starved => 1,
            HeatMetric::Blocked => 2,
            HeatMetric::Down => 3,
        }
    }
}

/// The time window a heat map covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeatWindow {
    /// The whole run since the warm-up, as the server's report measures it.
    WholeRun,
    /// Sampled from the frames received since the client connected (or the clock last
    /// jumped back).
    SinceConnected,
    /// Sampled from the frames of the last N simulated minutes.
    LastMinutes(u32),
}

/// Heat-map mode: on or off, which share, which window.
#[derive(Resource, Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeatMap {
    /// True: stations show the share instead of their state.
    pub on: bool,
    /// The share shown.
    pub metric: HeatMetric,
    /// The window it covers.
    pub window: HeatWindow,
}

impl Default for HeatMap {
    fn default() -> Self {
        Self { on: false, metric: HeatMetric::Utilisation, window: HeatWindow::WholeRun }
    }
}

/// Simulated time per station in each measured share, microseconds: busy server-time
/// (busy servers / servers), starved, blocked, down, and the time observed.
type Tally = [u64; 5];
const OBSERVED: usize = 4;

/// One minute of the recent-window sampler.
#[derive(Debug, Clone)]
struct Bucket {
    /// Start of the minute, simulated microseconds (a multiple of `BUCKET_US`).
    start_us: u64,
    /// Per station.
    tallies: Vec<Tally>,
}

/// Station shares sampled from the received frames: each station's state (and busy
/// servers) as of one frame is taken to hold until the next, weighted by the simulated
/// time between them. Memory is bounded: one tally per station plus `RECENT_BUCKETS`
/// minutes of tallies.
#[derive(Resource, Debug, Default)]
pub struct FrameShares {
    /// Layout generation the tallies belong to.
    generation: u64,
    /// Simulated time of the first sampled frame; `None` until there is one.
    since_us: Option<u64>,
    /// The previous frame: its simulated time and each station's (state, busy fraction).
    last: Option<(u64, Vec<(StationStateKind, f64)>)>,
    /// Since `since_us`, per station.
    total: Vec<Tally>,
    /// The most recent minutes, oldest first.
    recent: VecDeque<Bucket>,
}

impl FrameShares {
    /// Forgets everything sampled.
    pub fn clear(&mut self) {
        *self = FrameShares::default();
    }

    /// Samples the live state: the interval since the previous frame is credited to the
    /// states that previous frame showed. A clock that went back, another layout, or a
    /// jump over `MAX_SAMPLE_GAP_US` restarts or skips the sampling.
    pub fn sample(&mut self, live: &LiveState, servers: &[u32]) {
        if !live.has_frame() {
            return;
        }
        let now = live.clock.sim_time_us;
        let n = live.stations.len();
        if self.generation != live.layout_generation || self.total.len() != n {
            self.clear();
            self.generation = live.layout_generation;
            self.total = vec![[0; 5]; n];
        }
        if let Some((then, states)) = self.last.take() {
            if now < then {
                // Reset or seek back: a new run as far as the window is concerned.
                let generation = self.generation;
                self.clear();
                self.generation = generation;
                self.total = vec![[0; 5]; n];
            } else if now - then <= MAX_SAMPLE_GAP_US && now > then {
                let dt = now - then;
                let start = then - then % BUCKET_US;
                if self.recent.back().is_none_or(|b| b.start_us != start) {
                    if self.recent.len() == RECENT_BUCKETS {
                        self.recent.pop_front();
                    }
                    self.recent.push_back(Bucket { start_us: start, tallies: vec![[0; 5]; n] });
                }
                let bucket = self.recent.back_mut().expect("pushed above");
                for (i, &(state, busy)) in states.iter().enumerate() {
                    let add = |t: &mut Tally| {
                        t[0] += (dt as f64 * busy) as u64;
                        match state {
                            StationStateKind::Starved => t[1] += dt,
                            StationStateKind::Blocked => t[2] += dt,
                            StationStateKind::Down => t[3] += dt,
                            _ => {}
                        }
                        t[OBSERVED] += dt;
                    };
                    add(&mut self.total[i]);
                    add(&mut bucket.tallies[i]);
                }
            }
        }
        self.since_us.get_or_insert(now);
        let states = live
            .stations
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let kind = StationStateKind::try_from(s.state).unwrap_or_default();
                let servers = servers.get(i).copied().unwrap_or(1).max(1);
                (kind, (f64::from(s.busy_servers) / f64::from(servers)).clamp(0.0, 1.0))
            })
            .collect();
        self.last = Some((now, states));
    }

    /// Share of `metric` at station `index` over `window` (not `WholeRun`), with the
    /// simulated time it covers; `None` while nothing was observed there.
    pub fn share(&self, index: usize, metric: HeatMetric, window: HeatWindow) -> Option<(f64, u64)> {
        let tally = match window {
            HeatWindow::WholeRun => return None,
            HeatWindow::SinceConnected => *self.total.get(index)?,
            HeatWindow::LastMinutes(minutes) => {
                let newest = self.recent.back()?.start_us;
                let from = newest.saturating_sub(u64::from(minutes.saturating_sub(1)) * BUCKET_US);
                let mut sum = [0u64; 5];
                for bucket in self.recent.iter().filter(|b| b.start_us >= from) {
                    let t = bucket.tallies.get(index)?;
                    for (s, v) in sum.iter_mut().zip(t) {
                        *s += v;
                    }
                }
                sum
            }
        };
        (tally[OBSERVED] > 0).then(|| (tally[metric.slot()] as f64 / tally[OBSERVED] as f64, tally[OBSERVED]))
    }

    /// Simulated time of the first sampled frame.
    pub fn since_us(&self) -> Option<u64> {
        self.since_us
    }
}

/// Share of `metric` at station `index` for `heat`'s window: the server's report for the
/// whole run, the sampled frames otherwise. `None` when not measured (yet).
pub fn station_share(
    heat: &HeatMap,
    index: usize,
    report: &LatestReport,
    shares: &FrameShares,
) -> Option<f64> {
    let share = match heat.window {
        HeatWindow::WholeRun => {
            let row = report.report.as_ref()?.stations.iter().find(|r| r.station_index as usize == index)?;
            match heat.metric {
                HeatMetric::Utilisation => row.utilization,
                HeatMetric::Starved => row.starved,
                HeatMetric::Blocked => row.blocked,
                HeatMetric::Down => row.down,
            }
        }
        window => shares.share(index, heat.metric, window)?.0,
    };
    share.is_finite().then(|| share.clamp(0.0, 1.0))
}

/// What the window covers, in words, for the legend.
pub fn window_label(heat: &HeatMap, shares: &FrameShares, report: &LatestReport) -> String {
    match heat.window {
        HeatWindow::WholeRun => match &report.report {
            Some(r) => format!("whole run since warm-up ({}), server report", format_sim_time(r.warmup_us)),
            None => "whole run: waiting for the server's report".to_owned(),
        },
        HeatWindow::SinceConnected => match shares.since_us() {
            Some(t) => format!("since connected (from {}), sampled from frames", format_sim_time(t)),
            None => "since connected: no frame yet".to_owned(),
        },
        HeatWindow::LastMinutes(m) => format!("last {m} min simulated, sampled from frames"),
    }
}

/// Ramp colour of a share in [0, 1] (blue, yellow, red), sRGB.
pub fn ramp_rgb(share: f64) -> [u8; 3] {
    let t = if share.is_finite() { share.clamp(0.0, 1.0) } else { 0.0 };
    let (a, b, u) = if t <= 0.5 {
        (RAMP_RGB[0], RAMP_RGB[1], t * 2.0)
    } else {
        (RAMP_RGB[1], RAMP_RGB[2], t * 2.0 - 1.0)
    };
    std::array::from_fn(|k| (f64::from(a[k]) + (f64::from(b[k]) - f64::from(a[k])) * u).round() as u8)
}

/// Ramp step of a share: the index of its material.
pub fn ramp_step(share: f64) -> usize {
    let t = if share.is_finite() { share.clamp(0.0, 1.0) } else { 0.0 };
    (t * (RAMP_STEPS - 1) as f64).round() as usize
}

/// The ramp's materials, one per step, and the no-data one.
#[derive(Resource)]
pub struct HeatAssets {
    /// Indexed by `ramp_step`.
    pub steps: Vec<Handle<StandardMaterial>>,
    /// Stations without a measured share.
    pub no_data: Handle<StandardMaterial>,
}

fn srgb(c: [u8; 3]) -> Color {
    Color::srgb_u8(c[0], c[1], c[2])
}

fn load_ramp(mut commands: Commands, mut materials: ResMut<Assets<StandardMaterial>>) {
    let mut make = |c: [u8; 3]| {
        materials.add(StandardMaterial { base_color: srgb(c), perceptual_roughness: 0.8, ..default() })
    };
    let steps = (0..RAMP_STEPS).map(|i| make(ramp_rgb(i as f64 / (RAMP_STEPS - 1) as f64))).collect();
    let no_data = make(NO_DATA_RGB);
    commands.insert_resource(HeatAssets { steps, no_data });
}

/// `H` switches heat-map mode (not while a text field has the keyboard). Whenever it is
/// switched on (key, checkbox or `--heat-map`), its panel opens so the legend shows;
/// switched off, the stations take their state colours back (`paint_stations`).
fn toggle_heat_map(
    keys: Option<Res<ButtonInput<KeyCode>>>,
    egui_input: Option<Res<EguiWantsInput>>,
    mut heat: ResMut<HeatMap>,
    mut docks: Option<ResMut<Docks>>,
    mut was_on: Local<bool>,
) {
    let typing = egui_input.is_some_and(|e| e.wants_any_keyboard_input());
    if !typing && keys.is_some_and(|k| k.just_pressed(HEAT_MAP_KEY)) {
        heat.on = !heat.on;
    }
    if heat.on
        && !*was_on
        && let Some(docks) = docks.as_mut()
    {
        let place = docks.place(PanelId::HeatMap);
        docks.set_place(PanelId::HeatMap, crate::dock::PanelPlace { open: true, ..place });
    }
    *was_on = heat.on;
}

fn forget_shares(mut shares: ResMut<FrameShares>) {
    shares.clear();
}

fn sample_frames(live: Res<LiveState>, site: Res<SiteLayout>, mut shares: ResMut<FrameShares>) {
    let servers: Vec<u32> =
        site.layout.as_ref().map(|l| l.stations.iter().map(|s| s.servers).collect()).unwrap_or_default();
    shares.sample(&live, &servers);
}

/// While heat-map mode is on, gives every station the ramp material of its share through
/// the site's hook ([`StationMaterialOverride`]); switched off, removes the overrides and
/// the site gives the stations their state colours back. Writes only what changes.
fn paint_stations(
    mut commands: Commands,
    heat: Res<HeatMap>,
    assets: Option<Res<HeatAssets>>,
    report: Res<LatestReport>,
    shares: Res<FrameShares>,
    stations: Query<(Entity, &StationIndex, Option<&StationMaterialOverride>)>,
) {
    let Some(assets) = assets else { return };
    for (entity, index, current) in &stations {
        if !heat.on {
            if current.is_some() {
                commands.entity(entity).remove::<StationMaterialOverride>();
            }
            continue;
        }
        let handle = match station_share(&heat, index.0 as usize, &report, &shares) {
            Some(share) => &assets.steps[ramp_step(share)],
            None => &assets.no_data,
        };
        if current.is_none_or(|c| &c.0 != handle) {
            commands.entity(entity).insert(StationMaterialOverride(handle.clone()));
        }
    }
}

fn rgb32(c: [u8; 3]) -> Color32 {
    Color32::from_rgb(c[0], c[1], c[2])
}

fn draw_heat_map_panel(
    mut contexts: EguiContexts,
    mut docks: ResMut<Docks>,
    mut heat: ResMut<HeatMap>,
    (report, shares, live): (Res<LatestReport>, Res<FrameShares>, Res<LiveState>),
    site: Res<SiteLayout>,
) -> Result {
    let ctx = contexts.ctx_mut()?;
    let title =
        if heat.on { format!("Heat map: {} (H)", heat.metric.label()) } else { "Heat map (H)".to_owned() };
    docks.show(ctx, PanelId::HeatMap, title, |ui| {
        ui.checkbox(&mut heat.on, "colour stations by share");
        ui.horizontal_wrapped(|ui| {
            for metric in HeatMetric::ALL {
                ui.selectable_value(&mut heat.metric, metric, metric.label());
            }
        });
        ui.horizontal_wrapped(|ui| {
            ui.selectable_value(&mut heat.window, HeatWindow::WholeRun, "whole run");
            ui.selectable_value(&mut heat.window, HeatWindow::SinceConnected, "since connected");
            for m in RECENT_WINDOWS_MIN {
                ui.selectable_value(&mut heat.window, HeatWindow::LastMinutes(m), format!("last {m} min"));
            }
        });
        ui.weak(window_label(&heat, &shares, &report));
        // The legend: the ramp the materials use, 0 to 100 %.
        let (rect, _) =
            ui.allocate_exact_size(egui::vec2(ui.available_width(), LEGEND_BAR_HEIGHT), egui::Sense::hover());
        let n = 48;
        for k in 0..n {
            let x0 = rect.left() + rect.width() * k as f32 / n as f32;
            let x1 = rect.left() + rect.width() * (k + 1) as f32 / n as f32 + 0.5;
            let r = egui::Rect::from_min_max(egui::pos2(x0, rect.top()), egui::pos2(x1, rect.bottom()));
            ui.painter().rect_filled(r, 0.0, rgb32(ramp_rgb(f64::from(k) / f64::from(n - 1))));
        }
        ui.horizontal(|ui| {
            ui.label("0 %");
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                ui.label("100 %");
                ui.add_space(ui.available_width() * 0.5 - 20.0);
                ui.label("50 %");
            });
        });
        ui.horizontal(|ui| {
            ui.colored_label(rgb32(NO_DATA_RGB), "■");
            ui.weak("not measured yet");
        });
        // The hottest stations, so the colours have names.
        if let Some(layout) = &site.layout {
            let mut ranked: Vec<(usize, f64)> = (0..layout.stations.len())
                .filter_map(|i| station_share(&heat, i, &report, &shares).map(|s| (i, s)))
                .collect();
            ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            for &(i, share) in ranked.iter().take(3) {
                let station = &layout.stations[i];
                let name = if station.name.is_empty() { &station.id } else { &station.name };
                ui.horizontal(|ui| {
                    ui.colored_label(rgb32(ramp_rgb(share)), "■");
                    ui.label(RichText::new(format!("{name}: {}", units::percent(share))));
                });
            }
        }
        ui.separator();
        let widest = live.flows.iter().copied().filter(|f| f.is_finite()).fold(0.0, f64::max);
        ui.weak(if widest > 0.0 {
            format!("flow lines: width by measured throughput, widest {}", units::per_hour(widest))
        } else {
            "flow lines: width by the stations' throughput (the server sends no per-link flows)".to_owned()
        });
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use twin_proto::v1::{ClockState, Layout, Report, StateFrame, Station, StationReport, StationState};

    fn layout() -> Layout {
        Layout {
            layout_generation: 1,
            stations: vec![
                Station { index: 0, servers: 2, ..default() },
                Station { index: 1, servers: 1, ..default() },
            ],
            ..default()
        }
    }

    fn frame(seq: u64, t_s: u64, states: [(StationStateKind, u32); 2]) -> StateFrame {
        StateFrame {
            seq,
            full: true,
            layout_generation: 1,
            clock: Some(ClockState { sim_time_us: t_s * 1_000_000, ..default() }),
            stations: states
                .iter()
                .enumerate()
                .map(|(i, &(s, busy))| StationState {
                    index: i as u32,
                    state: s as i32,
                    busy_servers: busy,
                    ..default()
                })
                .collect(),
            ..default()
        }
    }

    #[test]
    fn shares_are_sampled_from_frames_and_windowed() {
        let mut live = LiveState::default();
        live.reset_for(&layout());
        let mut shares = FrameShares::default();
        let servers = [2, 1];
        use StationStateKind::{Blocked, Busy, Down, Starved};
        // 0-30 min: station 0 one of two servers busy, station 1 starved;
        // 30-90 min: station 0 down, station 1 blocked.
        let frames = [
            (0, [(Busy, 1), (Starved, 0)]),
            (1800, [(Down, 0), (Blocked, 0)]),
            (5400, [(Down, 0), (Blocked, 0)]),
        ];
        for (seq, (t, states)) in frames.into_iter().enumerate() {
            // Frames every minute in between, so no gap is skipped.
            live.apply_frame(&frame(seq as u64 * 1000 + 1, t, states), Some(1)).expect("applies");
            shares.sample(&live, &servers);
            if t < 5400 {
                let next = frames.get(seq + 1).map_or(t, |f| f.0);
                for (k, m) in (t + 60..next).step_by(60).enumerate() {
                    live.apply_frame(&frame(seq as u64 * 1000 + 2 + k as u64, m, states), Some(1))
                        .expect("applies");
                    shares.sample(&live, &servers);
                }
            }
        }
        let since = HeatWindow::SinceConnected;
        let (u, covered) = shares.share(0, HeatMetric::Utilisation, since).expect("measured");
        assert_eq!(covered, 5_400_000_000, "90 min observed");
        assert!((u - 0.5 * 30.0 / 90.0).abs() < 1e-9, "half the servers for a third of the time: {u}");
        let (down, _) = shares.share(0, HeatMetric::Down, since).expect("measured");
        assert!((down - 60.0 / 90.0).abs() < 1e-9, "{down}");
        let (starved, _) = shares.share(1, HeatMetric::Starved, since).expect("measured");
        assert!((starved - 1.0 / 3.0).abs() < 1e-9, "{starved}");
        // The last 10 minutes saw only the second phase.
        let (blocked, _) =
            shares.share(1, HeatMetric::Blocked, HeatWindow::LastMinutes(10)).expect("measured");
        assert_eq!(blocked, 1.0);
        assert_eq!(shares.share(1, HeatMetric::Starved, HeatWindow::LastMinutes(10)).map(|s| s.0), Some(0.0));
        // A clock that goes back (reset or seek) starts a new window.
        live.apply_frame(&frame(9000, 60, [(Busy, 2), (Busy, 1)]), Some(1)).expect("applies");
        shares.sample(&live, &servers);
        assert_eq!(shares.share(0, HeatMetric::Utilisation, since), None, "nothing observed since");
        assert_eq!(shares.since_us(), Some(60_000_000));
    }

    #[test]
    fn a_jump_of_the_clock_is_not_sampled() {
        let mut live = LiveState::default();
        live.reset_for(&layout());
        let mut shares = FrameShares::default();
        use StationStateKind::Busy;
        for (seq, t) in [(1, 0), (2, 60), (3, 60 + 3600)] {
            live.apply_frame(&frame(seq, t, [(Busy, 2), (Busy, 1)]), Some(1)).expect("applies");
            shares.sample(&live, &[2, 1]);
        }
        let (_, covered) =
            shares.share(0, HeatMetric::Utilisation, HeatWindow::SinceConnected).expect("measured");
        assert_eq!(covered, 60_000_000, "the hour jumped over is not credited to anything");
    }

    #[test]
    fn ramp_runs_from_blue_to_red_and_the_legend_agrees() {
        assert_eq!(ramp_rgb(0.0), RAMP_RGB[0]);
        assert_eq!(ramp_rgb(0.5), RAMP_RGB[1]);
        assert_eq!(ramp_rgb(1.0), RAMP_RGB[2]);
        assert_eq!(ramp_rgb(f64::NAN), RAMP_RGB[0]);
        assert_eq!(ramp_step(0.0), 0);
        assert_eq!(ramp_step(1.0), RAMP_STEPS - 1);
        assert_eq!(ramp_step(2.0), RAMP_STEPS - 1);
    }

    #[test]
    fn heat_map_mode_recolours_stations_and_gives_their_state_colours_back() {
        let mut app = App::new();
        app.add_plugins(MinimalPlugins)
            .init_resource::<Assets<StandardMaterial>>()
            .init_resource::<ButtonInput<KeyCode>>()
            .init_resource::<LiveState>()
            .init_resource::<SiteLayout>()
            .init_resource::<LatestReport>()
            .init_resource::<HeatMap>()
            .init_resource::<FrameShares>()
            .insert_resource(Docks::new(crate::dock::PanelLayout::default()))
            .add_systems(Startup, load_ramp)
            .add_systems(Update, (toggle_heat_map, paint_stations).chain());
        app.world_mut().resource_mut::<LatestReport>().report = Some(Report {
            stations: vec![
                StationReport { station_index: 0, utilization: 0.95, ..default() },
                StationReport { station_index: 1, utilization: 0.05, ..default() },
            ],
            ..default()
        });
        let a = app.world_mut().spawn(StationIndex(0)).id();
        let b = app.world_mut().spawn(StationIndex(1)).id();
        let c = app.world_mut().spawn(StationIndex(2)).id();
        app.update();
        assert_eq!(app.world().get::<StationMaterialOverride>(a), None, "off: the state colours stand");

        app.world_mut().resource_mut::<ButtonInput<KeyCode>>().press(HEAT_MAP_KEY);
        app.update();
        assert!(app.world().resource::<HeatMap>().on);
        assert!(app.world().resource::<Docks>().place(PanelId::HeatMap).open, "the legend shows");
        let assets = app.world().resource::<HeatAssets>();
        let (hot, cool, none) = (
            assets.steps[RAMP_STEPS - 1].clone(),
            assets.steps[ramp_step(0.05)].clone(),
            assets.no_data.clone(),
        );
        let colour = |e| app.world().get::<StationMaterialOverride>(e).expect("an override").0.clone();
        assert_eq!(colour(a), hot, "95 % utilisation is red");
        assert_eq!(colour(b), cool, "5 % is blue");
        assert_eq!(colour(c), none, "not in the report: no data");
        let hot_colour =
            app.world().resource::<Assets<StandardMaterial>>().get(&hot).expect("asset").base_color;
        assert_eq!(hot_colour, srgb(ramp_rgb(1.0)));

        let mut keys = app.world_mut().resource_mut::<ButtonInput<KeyCode>>();
        keys.release(HEAT_MAP_KEY);
        keys.clear();
        keys.press(HEAT_MAP_KEY);
        app.update();
        assert!(!app.world().resource::<HeatMap>().on);
        // Off again: no override left, so the site draws each station by its state.
        for e in [a, b, c] {
            assert_eq!(app.world().get::<StationMaterialOverride>(e), None);
        }
    }
}
