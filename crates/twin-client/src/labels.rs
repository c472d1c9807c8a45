//! `LabelPlugin` (added by `SitePlugin`): names over the 3D view that never overlap.
//!
//! Every frame, after transforms are propagated, `place_labels` projects the candidates:
//! factory names (always), station names once the station spans [`STATION_LABEL_MIN_PX`]
//! on screen (so they appear as the camera zooms in), and the "+N" tags of buffers that
//! hold more parts than their stack draws (with the station names). A screen-space pass
//! then keeps labels in priority order (factories, the bottleneck and alarmed stations,
//! other stations by on-screen size, "+N" tags) and hides any label that would overlap one
//! already kept. `draw_labels` paints what was kept with egui. The font grows with the
//! window, so names stay readable on a projector.
//!
//! The placement is kept in [`PlacedLabels`], a buffer reused from frame to frame.

use bevy::prelude::*;
use bevy::transform::TransformSystems;
use bevy_egui::{EguiContexts, EguiPostUpdateSet, EguiPrimaryContextPass, egui};

use crate::model::{LiveState, SiteLayout};
use crate::presentation::Presentation;
use crate::site::{finite, site_to_world};
use crate::stacks::{BufferStack, drawn_and_hidden};
use crate::vehicles::ViewScale;

/// A station's name shows once its footprint spans this many logical pixels.
pub const STATION_LABEL_MIN_PX: f32 = 24.0;
/// Label font size as a share of the viewport height (22 px at 1080 p).
const FONT_PER_VIEWPORT_HEIGHT: f32 = 1.0 / 48.0;
/// The same in presentation mode (27 px at 1080 p: read from the back of a room).
const PRESENTATION_FONT_PER_VIEWPORT_HEIGHT: f32 = 1.0 / 40.0;
/// Bounds of the label font size, logical pixels (readable on a projector at 720 p).
const FONT_RANGE_PX: (f32, f32) = (16.0, 48.0);
/// Average glyph width as a share of the font size (egui's proportional font averages
/// 0.48 on factory names; errs wide).
const GLYPH_WIDTH: f32 = 0.52;
/// Padding around a label's text, logical pixels.
const PAD_PX: f32 = 4.0;
/// Height above ground of a factory's label anchor (its north edge), metres.
const FACTORY_LABEL_LIFT_M: f32 = 3.0;
/// Height above a station's top of its label anchor, metres.
const STATION_LABEL_LIFT_M: f32 = 0.8;

/// Places and draws decluttered labels.
pub struct LabelPlugin;

impl Plugin for LabelPlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<PlacedLabels>()
            .add_systems(
                PostUpdate,
                place_labels.after(TransformSystems::Propagate).before(EguiPostUpdateSet::EndPass),
            )
            .add_systems(EguiPrimaryContextPass, draw_labels);
    }
}

/// What a label names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LabelKey {
    /// A factory, by `Factory.index`.
    Factory(u32),
    /// A station, by `Station.index`.
    Station(u32),
    /// The "+N" tag of a station's buffer stack, by `Station.index`.
    Overflow(u32),
}

/// A label on screen: what it names and the rectangle it covers (logical pixels).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Label {
    /// What the label names.
    pub key: LabelKey,
    /// Covered rectangle, text and padding included.
    pub rect: Rect,
    /// Places to try, in order, when `rect` overlaps a label kept before (e.g. below the
    /// anchor instead of above); the kept label's `rect` is where it ended up.
    pub alt: [Option<Rect>; 2],
    /// Higher is kept first.
    pub priority: f32,
}

/// The labels kept this frame, in priority order, and the font size to draw them with.
#[derive(Resource, Debug, Default)]
pub struct PlacedLabels {
    /// Kept labels.
    pub labels: Vec<Label>,
    /// Font size, logical pixels.
    pub font_px: f32,
    /// Candidates considered this frame (scratch, reused).
    candidates: Vec<Label>,
    /// Whether each station's name is a candidate this frame (scratch, reused).
    station_shown: Vec<bool>,
}

/// Label font size for a viewport height, logical pixels.
pub fn font_px(viewport_height: f32) -> f32 {
    (viewport_height * FONT_PER_VIEWPORT_HEIGHT).clamp(FONT_RANGE_PX.0, FONT_RANGE_PX.1)
}

/// Label font size in presentation mode, logical pixels: larger, for a projector.
pub fn presentation_font_px(viewport_height: f32) -> f32 {
    (viewport_height * PRESENTATION_FONT_PER_VIEWPORT_HEIGHT).clamp(FONT_RANGE_PX.0, FONT_RANGE_PX.1)
}

/// Estimated on-screen size of a text (bounded above by the glyph-width share).
pub fn text_size(chars: usize, font_px: f32) -> Vec2 {
    Vec2::new(chars as f32 * font_px * GLYPH_WIDTH + 2.0 * PAD_PX, font_px * 1.25 + 2.0 * PAD_PX)
}

/// The rectangle of a label whose bottom centre is at `anchor`.
fn rect_above(anchor: Vec2, size: Vec2) -> Rect {
    Rect::from_corners(anchor - Vec2::new(size.x * 0.5, size.y), anchor + Vec2::new(size.x * 0.5, 0.0))
}

/// The rectangle of a label whose top centre is at `anchor`.
fn rect_below(anchor: Vec2, size: Vec2) -> Rect {
    Rect::from_corners(anchor - Vec2::new(size.x * 0.5, 0.0), anchor + Vec2::new(size.x * 0.5, size.y))
}

/// Keeps candidates in priority order (ties by key, so the result is stable), each at
/// its first place that overlaps no label kept before, dropping those with none.
/// `kept` is cleared first; both buffers are reused.
pub fn declutter(candidates: &mut [Label], kept: &mut Vec<Label>) {
    candidates.sort_by(|a, b| b.priority.total_cmp(&a.priority).then(a.key.cmp(&b.key)));
    kept.clear();
    for candidate in candidates.iter() {
        let free = |rect: &Rect| kept.iter().all(|k| k.rect.intersect(*rect).is_empty());
        let place = std::iter::once(candidate.rect).chain(candidate.alt.into_iter().flatten()).find(free);
        if let Some(rect) = place {
            kept.push(Label { rect, alt: [None; 2], ..*candidate });
        }
    }
}

/// Projects the candidates and keeps those that do not overlap.
fn place_labels(
    site: Res<SiteLayout>,
    live: Res<LiveState>,
    cameras: Query<(&Camera, &GlobalTransform, &Projection)>,
    stacks: Query<&BufferStack>,
    mut placed: ResMut<PlacedLabels>,
    presentation: Option<Res<Presentation>>,
) {
    let placed = &mut *placed;
    placed.candidates.clear();
    let camera = cameras.iter().find(|(c, _, _)| c.is_active);
    let (Some(layout), Some((camera, camera_transform, projection))) = (site.layout.as_ref(), camera) else {
        placed.labels.clear();
        return;
    };
    let (Some(viewport), Some(view)) =
        (camera.logical_viewport_size(), ViewScale::of(camera, camera_transform, projection))
    else {
        placed.labels.clear();
        return;
    };
    let font = if presentation.is_some_and(|p| p.on) {
        presentation_font_px(viewport.y)
    } else {
        font_px(viewport.y)
    };
    placed.font_px = font;
    let screen = Rect::from_corners(Vec2::ZERO, viewport);
    let on_screen = |rect: Rect| !screen.intersect(rect).is_empty();
    let project = |world: Vec3| camera.world_to_viewport(camera_transform, world).ok();

    for factory in &layout.factories {
        let (w, d) = (finite(factory.width_m), finite(factory.depth_m));
        let anchor = site_to_world(
            factory.origin_x + f64::from(w) * 0.5,
            factory.origin_y + f64::from(d),
            FACTORY_LABEL_LIFT_M,
        );
        let middle = site_to_world(
            factory.origin_x + f64::from(w) * 0.5,
            factory.origin_y + f64::from(d) * 0.5,
            FACTORY_LABEL_LIFT_M,
        );
        if let Some(at) = project(anchor) {
            let size = text_size(factory.name.chars().count(), font);
            // Above the north edge, else just below it, else over the factory's middle.
            let below = Some(rect_below(at, size));
            let centred = project(middle).map(|m| Rect::from_center_size(m, size));
            let rect = rect_above(at, size);
            if on_screen(rect) {
                let key = LabelKey::Factory(factory.index);
                placed.candidates.push(Label { key, rect, alt: [below, centred], priority: 1e9 });
            }
        }
    }
    let bottleneck = live.bottleneck_station();
    let station_shown = &mut placed.station_shown;
    station_shown.clear();
    station_shown.resize(layout.stations.len(), false);
    for station in &layout.stations {
        let centre = site_to_world(station.x, station.y, 0.0);
        let size = finite(station.size_x_m).max(finite(station.size_y_m));
        let span_px = size * view.px_per_m_at_1m / (centre - view.eye).dot(view.forward).max(1e-3);
        if span_px < STATION_LABEL_MIN_PX {
            continue;
        }
        let top = crate::meshes::station_height(station.kind()) + STATION_LABEL_LIFT_M;
        let Some(at) = project(centre + Vec3::Y * top) else {
            continue;
        };
        let size = text_size(station.name.chars().count(), font);
        let rect = rect_above(at, size);
        if !on_screen(rect) {
            continue;
        }
        // Below the station's base when the place above is taken.
        let alt = [project(centre).map(|base| rect_below(base, size)), None];
        let alarmed = live.stations.get(station.index as usize).is_some_and(|s| s.open_alarms > 0);
        let urgent = bottleneck == Some(station.index) || alarmed;
        let priority = if urgent { 1e6 } else { 0.0 } + span_px;
        placed.candidates.push(Label { key: LabelKey::Station(station.index), rect, alt, priority });
        if let Some(slot) = station_shown.get_mut(station.index as usize) {
            *slot = true;
        }
    }
    for stack in &stacks {
        // Tags come with the station names (zoomed in), never alone at site zoom.
        if !station_shown.get(stack.station as usize).copied().unwrap_or(false) {
            continue;
        }
        let queue = live.stations.get(stack.station as usize).map_or(0, |s| s.queue_length);
        let hidden = drawn_and_hidden(queue).1;
        if hidden == 0 {
            continue;
        }
        let Some(at) = project(stack.tag_anchor) else {
            continue;
        };
        let digits = hidden.checked_ilog10().unwrap_or(0) as usize + 2;
        let rect = rect_above(at, text_size(digits, font * 0.85));
        if on_screen(rect) {
            let key = LabelKey::Overflow(stack.station);
            placed.candidates.push(Label { key, rect, alt: [None; 2], priority: -1.0 });
        }
    }
    declutter(&mut placed.candidates, &mut placed.labels);
}

/// The text of a label.
fn label_text(key: LabelKey, site: &SiteLayout, live: &LiveState) -> Option<String> {
    let layout = site.layout.as_ref()?;
    Some(match key {
        LabelKey::Factory(i) => layout.factories.get(i as usize)?.name.clone(),
        LabelKey::Station(i) => layout.stations.get(i as usize)?.name.clone(),
        LabelKey::Overflow(i) => {
            format!("+{}", drawn_and_hidden(live.stations.get(i as usize)?.queue_length).1)
        }
    })
}

/// Paints the kept labels on a translucent dark-blue plate (not egui's panel grey, which
/// the render test measures), behind every panel.
fn draw_labels(
    mut contexts: EguiContexts,
    placed: Res<PlacedLabels>,
    site: Res<SiteLayout>,
    live: Res<LiveState>,
) -> Result {
    let ctx = contexts.ctx_mut()?;
    let painter = ctx.layer_painter(egui::LayerId::background());
    // Labels are placed in viewport pixels; egui points are pixels / zoom (`--ui-scale`).
    let zoom = ctx.zoom_factor();
    for label in &placed.labels {
        let Some(text) = label_text(label.key, &site, &live) else {
            continue;
        };
        let (size, colour) = match label.key {
            LabelKey::Factory(_) => (placed.font_px, egui::Color32::WHITE),
            LabelKey::Station(_) => (placed.font_px, egui::Color32::from_rgb(235, 240, 255)),
            LabelKey::Overflow(_) => (placed.font_px * 0.85, egui::Color32::from_rgb(255, 225, 170)),
        };
        let galley = painter.layout_no_wrap(text, egui::FontId::proportional(size / zoom), colour);
        let centre = label.rect.center() / zoom;
        let text_rect = egui::Rect::from_center_size(egui::pos2(centre.x, centre.y), galley.size());
        painter.rect_filled(
            text_rect.expand(PAD_PX),
            4.0,
            egui::Color32::from_rgba_unmultiplied(10, 22, 60, 175),
        );
        painter.galley(text_rect.min, galley, colour);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use twin_proto::v1::{Factory, Layout, Station, StationKind};

    use super::*;
    use crate::stacks::tests::headless_camera;

    fn label(key: LabelKey, x: f32, priority: f32) -> Label {
        Label { key, rect: Rect::new(x, 0.0, x + 100.0, 20.0), alt: [None; 2], priority }
    }

    #[test]
    fn overlapping_labels_keep_the_higher_priority_one() {
        let mut candidates = vec![
            label(LabelKey::Station(1), 50.0, 10.0),
            label(LabelKey::Factory(0), 0.0, 1e9),
            label(LabelKey::Station(2), 300.0, 1.0),
            label(LabelKey::Overflow(1), 120.0, -1.0),
        ];
        let mut kept = Vec::new();
        declutter(&mut candidates, &mut kept);
        let keys: Vec<LabelKey> = kept.iter().map(|l| l.key).collect();
        assert_eq!(keys, vec![LabelKey::Factory(0), LabelKey::Station(2), LabelKey::Overflow(1)]);
        // With a free second place, the overlapping label moves there instead.
        let mut moved = label(LabelKey::Station(1), 50.0, 10.0);
        moved.alt = [Some(Rect::new(50.0, 0.0, 150.0, 20.0)), Some(Rect::new(50.0, 30.0, 150.0, 50.0))];
        let mut candidates = vec![label(LabelKey::Factory(0), 0.0, 1e9), moved];
        declutter(&mut candidates, &mut kept);
        assert_eq!(kept.len(), 2);
        assert_eq!(kept[1].rect, Rect::new(50.0, 30.0, 150.0, 50.0));
        for (i, a) in kept.iter().enumerate() {
            for b in &kept[i + 1..] {
                assert!(a.rect.intersect(b.rect).is_empty(), "{a:?} overlaps {b:?}");
            }
        }
    }

    #[test]
    fn font_grows_with_the_window_within_bounds() {
        assert_eq!(font_px(720.0), 16.0);
        assert!((font_px(1080.0) - 22.5).abs() < 1e-4);
        // Presentation mode: at least 24 px at 1080 p, growing with the height.
        assert!(presentation_font_px(1080.0) >= 24.0 && presentation_font_px(720.0) > font_px(720.0));
        assert_eq!(font_px(4320.0), FONT_RANGE_PX.1);
    }

    fn site() -> Layout {
        let factory = |index: u32, x: f64, name: &str| Factory {
            index,
            name: name.into(),
            origin_x: x,
            origin_y: 0.0,
            width_m: 96.0,
            depth_m: 60.0,
            ..default()
        };
        let station = |index: u32, x: f64| Station {
            index,
            name: format!("Station number {index}"),
            kind: StationKind::Machine as i32,
            x,
            y: 30.0,
            size_x_m: 4.0,
            size_y_m: 3.0,
            ..default()
        };
        Layout {
            layout_generation: 1,
            // Two factories side by side, a third whose long name runs into the second's
            // (it moves below its anchor) and a fourth and fifth on top of the third (one
            // takes the middle, the last finds no place left).
            factories: vec![
                factory(0, 0.0, "Battery cells"),
                factory(1, 130.0, "Auto parts & EV modules"),
                factory(2, 140.0, "Semiconductor packaging and test"),
                factory(3, 141.0, "Semiconductor packaging and test 2"),
                factory(4, 142.0, "Semiconductor packaging and test 3"),
            ],
            // Eight stations 1.5 m apart: their names are much wider than that zoomed in.
            stations: (0..8).map(|i| station(i, 15.0 + f64::from(i) * 1.5)).collect(),
            ..default()
        }
    }

    fn label_app(eye: Vec3, target: Vec3) -> App {
        let mut app = App::new();
        app.add_plugins(MinimalPlugins).add_plugins(LabelPlugin);
        let layout = site();
        app.insert_resource(crate::model::live_for(&layout, None))
            .insert_resource(SiteLayout { layout: Some(layout) });
        headless_camera(app.world_mut(), eye, target, UVec2::new(1280, 720));
        app.update();
        app
    }

    fn keys(app: &App) -> Vec<LabelKey> {
        app.world().resource::<PlacedLabels>().labels.iter().map(|l| l.key).collect()
    }

    #[test]
    fn site_zoom_shows_factories_only_and_no_two_overlap() {
        let centre = Vec3::new(135.0, 0.0, -30.0);
        let app = label_app(centre + Vec3::new(0.0, 250.0, 250.0), centre);
        let keys = keys(&app);
        assert!(keys.contains(&LabelKey::Factory(0)), "{keys:?}");
        assert!(
            keys.iter().all(|k| matches!(k, LabelKey::Factory(_))),
            "no station names at site zoom: {keys:?}"
        );
        assert_eq!(
            keys,
            vec![LabelKey::Factory(0), LabelKey::Factory(1), LabelKey::Factory(2), LabelKey::Factory(3)],
            "the label with no free place is hidden"
        );
        let placed = &app.world().resource::<PlacedLabels>().labels;
        assert!(placed[2].rect.min.y > placed[1].rect.min.y, "the third moved below its anchor");
        for (i, a) in placed.iter().enumerate() {
            for b in &placed[i + 1..] {
                assert!(a.rect.intersect(b.rect).is_empty(), "{a:?} overlaps {b:?}");
            }
        }
    }

    #[test]
    fn zooming_in_shows_station_names_without_overlap() {
        let centre = Vec3::new(20.0, 0.0, -30.0);
        let app = label_app(centre + Vec3::new(0.0, 18.0, 18.0), centre);
        let placed = app.world().resource::<PlacedLabels>();
        let stations = placed.labels.iter().filter(|l| matches!(l.key, LabelKey::Station(_))).count();
        assert!(stations >= 2, "station names show when zoomed in: {:?}", keys(&app));
        assert!(stations < 8, "the crowded row is decluttered: {:?}", keys(&app));
        for (i, a) in placed.labels.iter().enumerate() {
            for b in &placed.labels[i + 1..] {
                assert!(a.rect.intersect(b.rect).is_empty(), "{a:?} overlaps {b:?}");
            }
        }
    }
}
