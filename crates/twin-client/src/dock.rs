//! `DockPlugin`: every egui panel docks to an edge of the window (left, right or bottom),
//! collapses to its title, and the layout (where each panel docks, open or collapsed) is
//! remembered across runs in a small text file. `Tab` hides and shows all panels.
//!
//! Panels stack along their edge in [`PanelId::ALL`] order, placed from the sizes they
//! had in the previous frame, so that each panel system draws on its own, in any order.
//! A column never runs off the window: a panel gets at most the height left below the
//! panels above it and scrolls inside.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bevy::prelude::*;
use bevy::window::PrimaryWindow;
use bevy_egui::EguiPrimaryContextPass;
use bevy_egui::egui::{self, Align2, Color32, Pos2, Rect, RichText, Vec2};
use bevy_egui::input::EguiWantsInput;

use crate::presentation::{Presentation, presentation_zoom};

/// The key that hides and shows every panel.
pub const TOGGLE_PANELS_KEY: KeyCode = KeyCode::Tab;
/// Gap between the window's edge and the panels, and between panels, points.
const MARGIN: f32 = 8.0;
/// Smallest height a panel is given at the bottom of a full column, points.
const MIN_PANEL_HEIGHT: f32 = 60.0;
/// Name of the layout file under the configuration directory.
const LAYOUT_FILE_NAME: &str = "panels.txt";
/// First line of the layout file.
const LAYOUT_FILE_HEADER: &str = "# twin-client panel layout: <panel> <left|right|bottom> <open|collapsed>";

/// An edge of the window a panel docks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Edge {
    /// A column along the left edge, top down.
    Left,
    /// A column along the right edge, top down.
    Right,
    /// A row along the bottom edge, left to right, between the columns.
    Bottom,
}

impl Edge {
    const ALL: [Edge; 3] = [Edge::Left, Edge::Right, Edge::Bottom];

    fn key(self) -> &'static str {
        match self {
            Edge::Left => "left",
            Edge::Right => "right",
            Edge::Bottom => "bottom",
        }
    }

    fn arrow(self) -> &'static str {
        match self {
            Edge::Left => "⏴",
            Edge::Right => "⏵",
            Edge::Bottom => "⏷",
        }
    }
}

/// Every panel of the client, in stacking order along an edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PanelId {
    /// Connection, clock, speed.
    Twin,
    /// Pause, speed, run to, reset, rush orders, factories.
    Controls,
    /// Heat-map mode: metric, window, legend.
    HeatMap,
    /// The selected station or vehicle.
    Selection,
    /// The complexes of the programme.
    Programme,
    /// Headline KPIs and the throughput chart.
    Kpis,
    /// The bottleneck ranking.
    Bottlenecks,
    /// Deviation alarms.
    Alarms,
    /// The periodic forecast.
    Forecast,
    /// State legend and per-station shares.
    Stations,
    /// Seek, live marker, branch.
    Timeline,
}

impl PanelId {
    /// All panels, in stacking order.
    pub const ALL: [PanelId; 11] = [
        PanelId::Twin,
        PanelId::Controls,
        PanelId::HeatMap,
        PanelId::Selection,
        PanelId::Programme,
        PanelId::Kpis,
        PanelId::Bottlenecks,
        PanelId::Alarms,
        PanelId::Forecast,
        PanelId::Stations,
        PanelId::Timeline,
    ];

    /// Name in the layout file.
    pub fn key(self) -> &'static str {
        match self {
            PanelId::Twin => "twin",
            PanelId::Controls => "controls",
            PanelId::HeatMap => "heatmap",
            PanelId::Selection => "selection",
            PanelId::Programme => "programme",
            PanelId::Kpis => "kpis",
            PanelId::Bottlenecks => "bottlenecks",
            PanelId::Alarms => "alarms",
            PanelId::Forecast => "forecast",
            PanelId::Stations => "stations",
            PanelId::Timeline => "timeline",
        }
    }

    /// Where the panel docks and whether it is open on a first run: sized so that the
    /// default layout leaves most of a 1280x720 window to the 3D view.
    pub fn default_place(self) -> PanelPlace {
        let (edge, open) = match self {
            PanelId::Twin | PanelId::Controls | PanelId::Selection | PanelId::Programme => (Edge::Left, true),
            PanelId::HeatMap => (Edge::Left, false),
            // The legend and shares at the foot of the left column: on a 1280x720 window
            // the timeline alone fits between the columns.
            PanelId::Stations => (Edge::Left, true),
            PanelId::Kpis | PanelId::Bottlenecks => (Edge::Right, true),
            PanelId::Alarms | PanelId::Forecast => (Edge::Right, false),
            PanelId::Timeline => (Edge::Bottom, true),
        };
        PanelPlace { edge, open }
    }

    /// Content width of the panel, points.
    pub fn width(self) -> f32 {
        match self {
            PanelId::Timeline => 560.0,
            PanelId::Programme => 620.0,
            PanelId::Twin | PanelId::Controls | PanelId::HeatMap | PanelId::Selection => 270.0,
            PanelId::Stations => 300.0,
            PanelId::Kpis | PanelId::Bottlenecks | PanelId::Alarms | PanelId::Forecast => 290.0,
        }
    }

    /// True for panels that keep a header in view and scroll a list below it in the
    /// height they are given (the stations' legend and rows); the others scroll whole.
    pub fn scrolls_itself(self) -> bool {
        self == PanelId::Stations
    }

    fn from_key(key: &str) -> Option<PanelId> {
        PanelId::ALL.into_iter().find(|p| p.key() == key)
    }
}

/// Where one panel docks and whether it is open (else collapsed to its title).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PanelPlace {
    /// The edge it docks to.
    pub edge: Edge,
    /// True: the content shows; false: only the title bar.
    pub open: bool,
}

/// The panel layout: the remembered part ([`PanelLayout`]) plus what placing needs.
#[derive(Resource, Debug)]
pub struct Docks {
    /// Where each panel docks and whether it is open.
    pub layout: PanelLayout,
    /// True: every panel is hidden (`Tab`); not remembered, a new run shows them.
    pub hidden: bool,
    /// The file the layout is saved to when it changes; `None`: not saved (tests,
    /// screenshot mode).
    file: Option<PathBuf>,
    /// The layout changed since it was last saved.
    dirty: bool,
    /// Where each panel was drawn in the previous frame.
    last_rects: BTreeMap<PanelId, Rect>,
    /// Where each panel was drawn so far in this frame.
    rects: BTreeMap<PanelId, Rect>,
}

impl Docks {
    /// A layout that is not saved.
    pub fn new(layout: PanelLayout) -> Self {
        Self {
            layout,
            hidden: false,
            file: None,
            dirty: false,
            last_rects: BTreeMap::new(),
            rects: BTreeMap::new(),
        }
    }

    /// Loads the layout from `file` (defaults when it does not exist; defaults and a
    /// warning when it is damaged) and saves changes back to it.
    pub fn persistent(file: PathBuf) -> (Self, Option<String>) {
        let (layout, warning) = match std::fs::read_to_string(&file) {
            Ok(text) => match PanelLayout::parse(&text) {
                Ok(layout) => (layout, None),
                Err(e) => (
                    PanelLayout::default(),
                    Some(format!("{}: {e}; using the default panel layout", file.display())),
                ),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (PanelLayout::default(), None),
            Err(e) => (
                PanelLayout::default(),
                Some(format!("reading {}: {e}; using the default panel layout", file.display())),
            ),
        };
        (Self { file: Some(file), ..Self::new(layout) }, warning)
    }

    /// Where panel `id` docks and whether it is open.
    pub fn place(&self, id: PanelId) -> PanelPlace {
        self.layout.place(id)
    }

    /// Changes where a panel docks or whether it is open; remembered.
    pub fn set_place(&mut self, id: PanelId, place: PanelPlace) {
        if self.layout.place(id) != place {
            self.layout.places.insert(id, place);
            self.dirty = true;
        }
    }

    /// Draws panel `id` at its edge with `title` in its header (the title stays visible
    /// when collapsed, so it may carry a summary) and `add_contents` below it while open.
    pub fn show(
        &mut self,
        ctx: &egui::Context,
        id: PanelId,
        title: impl Into<String>,
        add_contents: impl FnOnce(&mut egui::Ui),
    ) {
        if self.hidden {
            return;
        }
        let screen = ctx.content_rect();
        let place = self.place(id);
        let (pos, pivot, max_height) = self.slot(screen, id, place.edge);
        let title = title.into();
        let width = id.width();
        let mut new_place = place;
        let response = egui::Window::new(id.key())
            .id(egui::Id::new(("dock", id.key())))
            .title_bar(false)
            .resizable(false)
            .collapsible(false)
            .pivot(pivot)
            .fixed_pos(pos)
            .show(ctx, |ui| {
                ui.set_width(width);
                ui.horizontal(|ui| {
                    let arrow = if place.open { "⏷" } else { "⏵" };
                    let header = ui
                        .add(
                            egui::Button::new(RichText::new(format!("{arrow} {title}")).strong())
                                .frame(false),
                        )
                        .on_hover_text(if place.open { "collapse" } else { "open" });
                    if header.clicked() {
                        new_place.open = !place.open;
                    }
                    ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                        for edge in Edge::ALL.into_iter().rev().filter(|&e| e != place.edge) {
                            let button = ui
                                .add(
                                    egui::Button::new(RichText::new(edge.arrow()).color(Color32::GRAY))
                                        .frame(false),
                                )
                                .on_hover_text(format!("dock to the {} edge", edge.key()));
                            if button.clicked() {
                                new_place.edge = edge;
                            }
                        }
                    });
                });
                if place.open {
                    ui.separator();
                    // The window's frame and the header are already used; the content
                    // scrolls within what is left and shrinks to its own height.
                    let left =
                        (max_height - ui.min_rect().height() - 2.0 * MARGIN).max(MIN_PANEL_HEIGHT * 0.5);
                    if id.scrolls_itself() {
                        // At most the height left; the panel scrolls its own list in it.
                        ui.allocate_ui(Vec2::new(ui.available_width(), left), add_contents);
                    } else {
                        egui::ScrollArea::vertical()
                            .id_salt(("dock_scroll", id.key()))
                            .max_height(left)
                            .auto_shrink([false, true])
                            .show(ui, add_contents);
                    }
                }
            });
        if let Some(response) = response {
            self.rects.insert(id, response.response.rect);
        }
        self.set_place(id, new_place);
    }

    /// Position, pivot and largest height of panel `id` on `edge`, from the sizes the
    /// panels had in the previous frame.
    fn slot(&self, screen: Rect, id: PanelId, edge: Edge) -> (Pos2, Align2, f32) {
        let bottom_row = self.bottom_row(screen);
        match edge {
            Edge::Left | Edge::Right => {
                let above: f32 = self.stacked_before(id, edge).map(|(_, size)| size.y + MARGIN).sum();
                let x_range = self.column_x_range(screen, edge);
                let floor = match bottom_row {
                    Some(row) if row.min.x < x_range.1 && row.max.x > x_range.0 => row.min.y - MARGIN,
                    _ => screen.max.y - MARGIN,
                };
                let top = screen.min.y + MARGIN + above;
                let max_height = (floor - top).max(MIN_PANEL_HEIGHT);
                match edge {
                    Edge::Left => (Pos2::new(screen.min.x + MARGIN, top), Align2::LEFT_TOP, max_height),
                    _ => (Pos2::new(screen.max.x - MARGIN, top), Align2::RIGHT_TOP, max_height),
                }
            }
            Edge::Bottom => {
                let left: f32 = self.stacked_before(id, edge).map(|(_, size)| size.x + MARGIN).sum();
                let row = bottom_row.unwrap_or(Rect::from_min_size(
                    Pos2::new(screen.center().x, screen.max.y - MARGIN),
                    Vec2::ZERO,
                ));
                (
                    Pos2::new(row.min.x + left, screen.max.y - MARGIN),
                    Align2::LEFT_BOTTOM,
                    screen.height() * 0.5,
                )
            }
        }
    }

    /// Panels drawn in the previous frame on `edge` before `id` in stacking order.
    fn stacked_before(&self, id: PanelId, edge: Edge) -> impl Iterator<Item = (PanelId, Vec2)> + '_ {
        PanelId::ALL
            .into_iter()
            .take_while(move |&p| p != id)
            .filter(move |&p| self.place(p).edge == edge)
            .filter_map(|p| self.last_rects.get(&p).map(|r| (p, r.size())))
    }

    /// Horizontal extent of the column on `edge` (left or right) as last drawn.
    fn column_x_range(&self, screen: Rect, edge: Edge) -> (f32, f32) {
        let width = PanelId::ALL
            .into_iter()
            .filter(|&p| self.place(p).edge == edge)
            .filter_map(|p| self.last_rects.get(&p).map(|r| r.width()))
            .fold(0.0, f32::max);
        match edge {
            Edge::Left => (screen.min.x, screen.min.x + MARGIN + width),
            _ => (screen.max.x - MARGIN - width, screen.max.x),
        }
    }

    /// Where the bottom row lies as last drawn: centred between the columns when it fits
    /// there, else centred in the window. `None` when no bottom panel was drawn.
    fn bottom_row(&self, screen: Rect) -> Option<Rect> {
        let sizes: Vec<Vec2> = PanelId::ALL
            .into_iter()
            .filter(|&p| self.place(p).edge == Edge::Bottom)
            .filter_map(|p| self.last_rects.get(&p).map(|r| r.size()))
            .collect();
        if sizes.is_empty() {
            return None;
        }
        let width = sizes.iter().map(|s| s.x).sum::<f32>() + MARGIN * (sizes.len() - 1) as f32;
        let height = sizes.iter().map(|s| s.y).fold(0.0, f32::max);
        let left_end = self.column_x_range(screen, Edge::Left).1 + MARGIN;
        let right_start = self.column_x_range(screen, Edge::Right).0 - MARGIN;
        let x = if right_start - left_end >= width {
            left_end + (right_start - left_end - width) * 0.5
        } else {
            (screen.center().x - width * 0.5).max(screen.min.x + MARGIN)
        };
        Some(Rect::from_min_size(Pos2::new(x, screen.max.y - MARGIN - height), Vec2::new(width, height)))
    }

    /// Where panel `id` was drawn in the previous frame; `None` when it was not.
    pub fn last_rect(&self, id: PanelId) -> Option<Rect> {
        self.last_rects.get(&id).copied()
    }

    /// The part of `screen` the panels drawn so far in this frame leave to the 3D view:
    /// between the columns and above the bottom row (all of it while they are hidden).
    pub fn free_rect(&self, screen: Rect) -> Rect {
        let mut free = screen;
        if self.hidden {
            return free;
        }
        for (&id, r) in &self.rects {
            match self.place(id).edge {
                Edge::Left => free.min.x = free.min.x.max(r.max.x),
                Edge::Right => free.max.x = free.max.x.min(r.min.x),
                Edge::Bottom => {}
            }
        }
        for (&id, r) in &self.rects {
            if self.place(id).edge == Edge::Bottom && r.min.x < free.max.x && r.max.x > free.min.x {
                free.max.y = free.max.y.min(r.min.y);
            }
        }
        free
    }

    /// Starts a frame: the rectangles drawn in the frame that ended place the panels.
    pub(crate) fn start_frame(&mut self) {
        std::mem::swap(&mut self.last_rects, &mut self.rects);
        self.rects.clear();
    }
}

/// Where every panel docks and whether it is open: what the layout file holds.
#[derive(Debug, Clone, Default)]
pub struct PanelLayout {
    /// Panels placed other than by default (or read from the file).
    places: BTreeMap<PanelId, PanelPlace>,
}

/// Two layouts are equal when every panel has the same place (named or by default).
impl PartialEq for PanelLayout {
    fn eq(&self, other: &Self) -> bool {
        PanelId::ALL.into_iter().all(|id| self.place(id) == other.place(id))
    }
}

impl Eq for PanelLayout {}

impl PanelLayout {
    /// Where panel `id` docks and whether it is open.
    pub fn place(&self, id: PanelId) -> PanelPlace {
        self.places.get(&id).copied().unwrap_or_else(|| id.default_place())
    }

    /// The layout file's text: a header and one line per panel.
    pub fn to_text(&self) -> String {
        let mut text = format!("{LAYOUT_FILE_HEADER}\n");
        for id in PanelId::ALL {
            let place = self.place(id);
            let state = if place.open { "open" } else { "collapsed" };
            text.push_str(&format!("{} {} {state}\n", id.key(), place.edge.key()));
        }
        text
    }

    /// Reads a layout file's text; an error names the line and what is wrong with it.
    /// Panels the file does not mention keep their default place.
    pub fn parse(text: &str) -> Result<PanelLayout, String> {
        let mut places = BTreeMap::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let at = n + 1;
            let words: Vec<&str> = line.split_whitespace().collect();
            let [panel, edge, state] = words[..] else {
                return Err(format!("line {at}: expected `<panel> <edge> <open|collapsed>`, got {line:?}"));
            };
            let id = PanelId::from_key(panel).ok_or_else(|| format!("line {at}: unknown panel {panel:?}"))?;
            let edge = Edge::ALL
                .into_iter()
                .find(|e| e.key() == edge)
                .ok_or_else(|| format!("line {at}: edge {edge:?} is not left, right or bottom"))?;
            let open = match state {
                "open" => true,
                "collapsed" => false,
                _ => return Err(format!("line {at}: state {state:?} is not open or collapsed")),
            };
            places.insert(id, PanelPlace { edge, open });
        }
        Ok(PanelLayout { places })
    }
}

/// The default layout file: `$XDG_CONFIG_HOME/twin-client/panels.txt`, else
/// `$HOME/.config/twin-client/panels.txt`; `None` when neither variable is set.
pub fn default_layout_file() -> Option<PathBuf> {
    let base =
        std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()).map(PathBuf::from).or_else(|| {
            std::env::var_os("HOME").filter(|v| !v.is_empty()).map(|h| PathBuf::from(h).join(".config"))
        })?;
    Some(base.join("twin-client").join(LAYOUT_FILE_NAME))
}

/// Writes the layout file through a temporary file and a rename, so a crash mid-write
/// leaves the previous file whole.
pub fn save_layout_file(path: &Path, layout: &PanelLayout) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("txt.tmp");
    std::fs::write(&tmp, layout.to_text())?;
    std::fs::rename(&tmp, path)
}

/// Docked panels; the layout is saved to `file` when it changes (`None`: not saved).
pub struct DockPlugin {
    /// The layout file, read at start and written on every change; `None`: defaults,
    /// nothing written.
    pub file: Option<PathBuf>,
    /// Zoom of every panel's text and controls (`--ui-scale`; 1 = egui's own size);
    /// `None`: 1, and in presentation mode [`presentation_zoom`] of the window's height.
    pub ui_scale: Option<f32>,
}

/// Zoom of the panels, applied to the egui context once it exists; `None`: automatic.
#[derive(Resource, Debug, Clone, Copy)]
struct UiScale(Option<f32>);

/// Systems that draw docked panels; they run after the dock's per-frame bookkeeping.
#[derive(SystemSet, Debug, Clone, PartialEq, Eq, Hash)]
pub struct PanelSet;

impl Plugin for DockPlugin {
    fn build(&self, app: &mut App) {
        let docks = match &self.file {
            Some(file) => {
                let (docks, warning) = Docks::persistent(file.clone());
                if let Some(warning) = warning {
                    warn!("{warning}");
                }
                docks
            }
            None => Docks::new(PanelLayout::default()),
        };
        app.insert_resource(docks)
            .insert_resource(UiScale(self.ui_scale))
            .configure_sets(EguiPrimaryContextPass, PanelSet)
            .add_systems(EguiPrimaryContextPass, (apply_ui_scale, start_panel_frame).before(PanelSet))
            .add_systems(Update, (toggle_panels, save_layout.run_if(layout_dirty)));
    }
}

/// Sets the egui zoom whenever it differs (the context starts at 1): `--ui-scale` when
/// given, else 1, or in presentation mode a zoom that grows with the window's height so
/// that the strip reads from the back of a room.
fn apply_ui_scale(
    mut contexts: bevy_egui::EguiContexts,
    scale: Res<UiScale>,
    presentation: Option<Res<Presentation>>,
    windows: Query<&Window, With<PrimaryWindow>>,
) -> Result {
    let ctx = contexts.ctx_mut()?;
    let zoom = match (scale.0, presentation.is_some_and(|p| p.on)) {
        (Some(zoom), _) => zoom,
        (None, true) => presentation_zoom(windows.iter().next().map_or(1080.0, Window::height)),
        (None, false) => 1.0,
    };
    if (ctx.zoom_factor() - zoom).abs() > f32::EPSILON {
        ctx.set_zoom_factor(zoom);
    }
    Ok(())
}

/// The sizes drawn in the frame that ended place the panels of the next one.
fn start_panel_frame(mut docks: ResMut<Docks>) {
    docks.start_frame();
}

/// `Tab` hides or shows every panel (not while a text field has the keyboard).
fn toggle_panels(
    keys: Option<Res<ButtonInput<KeyCode>>>,
    egui_input: Option<Res<EguiWantsInput>>,
    mut docks: ResMut<Docks>,
) {
    let typing = egui_input.is_some_and(|e| e.wants_any_keyboard_input());
    if !typing && keys.is_some_and(|k| k.just_pressed(TOGGLE_PANELS_KEY)) {
        docks.hidden = !docks.hidden;
    }
}

fn layout_dirty(docks: Res<Docks>) -> bool {
    docks.dirty
}

/// Writes a changed layout to its file; a failure is logged once per change, and the
/// client goes on with the layout in memory.
fn save_layout(mut docks: ResMut<Docks>) {
    docks.dirty = false;
    let Some(file) = docks.file.clone() else { return };
    if let Err(e) = save_layout_file(&file, &docks.layout) {
        warn!("saving the panel layout to {}: {e}", file.display());
    }
}

#[cfg(test)]
#[path = "dock_tests.rs"]
mod tests;
