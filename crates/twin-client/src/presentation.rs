//! `PresentationPlugin`: presentation mode for a projector or a wall screen (`F5` or
//! `--presentation`). Every panel is hidden except one compact strip along the top edge:
//! the clock, the headline KPIs and the bottleneck, so that the 3D view keeps at least
//! 85 % of the window (the render test measures it from the picture). The strip is
//! zoomed with the window's height ([`presentation_zoom`]) to read from the back of a
//! room, and the camera frames the site below it.

use bevy::prelude::*;
use bevy_egui::egui::{self, Align2, Color32, RichText};
use bevy_egui::{EguiContexts, EguiPrimaryContextPass};

use crate::camera::FreeView;
use crate::dock::{Docks, PanelSet};
use crate::hud::format_sim_time;
use crate::model::{LiveState, SiteLayout};
use crate::units;

/// The key that switches presentation mode on and off.
pub const PRESENTATION_KEY: KeyCode = KeyCode::F5;
/// Text size of the strip, points (pixels at zoom 1; presentation mode zooms it).
pub const STRIP_TEXT_SIZE: f32 = 18.0;
/// egui zoom of presentation mode at a 1080-pixel-high window: the strip's text is
/// 18 x 1.6 = 29 px there, legible from the back of a room; it scales with the height.
const PRESENTATION_ZOOM_AT_1080P: f32 = 1.6;
/// Bounds of the presentation zoom (a small window keeps egui's own size; `--ui-scale`
/// accepts up to 3).
const PRESENTATION_ZOOM_RANGE: (f32, f32) = (1.0, 3.0);

/// The egui zoom of presentation mode for a window `height` logical pixels high.
pub fn presentation_zoom(height: f32) -> f32 {
    let zoom = height / 1080.0 * PRESENTATION_ZOOM_AT_1080P;
    if zoom.is_finite() { zoom.clamp(PRESENTATION_ZOOM_RANGE.0, PRESENTATION_ZOOM_RANGE.1) } else { 1.0 }
}

/// Presentation mode and its strip.
pub struct PresentationPlugin {
    /// Start in presentation mode (`--presentation`).
    pub start_on: bool,
}

impl Plugin for PresentationPlugin {
    fn build(&self, app: &mut App) {
        app.insert_resource(Presentation { on: self.start_on })
            .init_resource::<StripArea>()
            .init_resource::<StripMetrics>()
            .init_resource::<FreeView>()
            .add_systems(Update, toggle_presentation)
            .add_systems(
                EguiPrimaryContextPass,
                (draw_strip.run_if(presenting).in_set(PanelSet), publish_free_view.after(PanelSet)),
            );
    }
}

/// Whether presentation mode is on. Panels run only while it is off ([`panels_shown`]).
#[derive(Resource, Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Presentation {
    /// True: only the strip is drawn.
    pub on: bool,
}

/// Where the strip was drawn in the last frame it was, egui points.
#[derive(Resource, Debug, Default, Clone, Copy)]
struct StripArea(Option<egui::Rect>);

/// The strip as last drawn, in window pixels (what the render test checks legibility by).
#[derive(Resource, Debug, Default, Clone, Copy, PartialEq)]
pub struct StripMetrics {
    /// Size of the strip's text, pixels.
    pub text_px: f32,
    /// Height of the strip, frame included, pixels.
    pub height_px: f32,
}

/// Run condition of every ordinary panel: true unless presentation mode is on (or the
/// plugin is absent, as in tests of single panels).
pub fn panels_shown(presentation: Option<Res<Presentation>>) -> bool {
    presentation.is_none_or(|p| !p.on)
}

fn presenting(presentation: Option<Res<Presentation>>) -> bool {
    presentation.is_some_and(|p| p.on)
}

fn toggle_presentation(keys: Option<Res<ButtonInput<KeyCode>>>, mut presentation: ResMut<Presentation>) {
    if keys.is_some_and(|k| k.just_pressed(PRESENTATION_KEY)) {
        presentation.on = !presentation.on;
    }
}

/// The strip's text: clock, headline KPIs (or the warm-up, or that no part has finished
/// yet), bottleneck.
pub fn strip_items(live: &LiveState, site: &SiteLayout) -> Vec<String> {
    let mut items = vec![format_sim_time(live.clock.sim_time_us)];
    if !live.has_frame() {
        items.push("waiting for the server".to_owned());
        return items;
    }
    let k = &live.kpis;
    match crate::hud::warming_up_until(live, site) {
        Some(until) => items.push(crate::hud::warming_up_text(until)),
        None if crate::hud::no_part_finished(k) => {
            items.push(format!("WIP {:.0}", k.wip));
            items.push(format!("OEE {}", units::percent(k.oee)));
            items.push("no part finished yet".to_owned());
        }
        None => {
            items.push(format!("throughput {}", units::per_hour(k.throughput_per_hour)));
            items.push(format!("WIP {:.0}", k.wip));
            items.push(format!("OEE {}", units::percent(k.oee)));
            items.push(format!("value added {}", units::percent(k.value_added_rate)));
        }
    }
    let bottleneck = live.bottleneck_station().and_then(|i| {
        site.layout
            .as_ref()
            .and_then(|l| l.stations.get(i as usize))
            .map(|s| if s.name.is_empty() { s.id.clone() } else { s.name.clone() })
    });
    items.push(match bottleneck {
        Some(name) => format!("bottleneck {name}"),
        None => "no bottleneck yet".to_owned(),
    });
    items
}

fn draw_strip(
    mut contexts: EguiContexts,
    live: Res<LiveState>,
    site: Res<SiteLayout>,
    motion: Option<Res<crate::trainer::RankingMotion>>,
    (mut strip_area, mut metrics): (ResMut<StripArea>, ResMut<StripMetrics>),
) -> Result {
    let ctx = contexts.ctx_mut()?;
    let mut items = strip_items(&live, &site);
    // A bottleneck that just moved says where from, for the room to see it happen.
    if let Some(shift) = motion.as_ref().and_then(|m| m.shift.as_ref())
        && let (Some(last), Some(from)) = (items.last_mut(), shift.from)
    {
        let name = site
            .layout
            .as_ref()
            .and_then(|l| l.stations.get(from as usize))
            .map(|s| if s.name.is_empty() { s.id.clone() } else { s.name.clone() });
        if let Some(name) = name {
            last.push_str(&format!(" (moved from {name})"));
        }
    }
    let max_width = ctx.content_rect().width() * 0.9;
    let shown = egui::Window::new("presentation")
        .title_bar(false)
        .resizable(false)
        .anchor(Align2::CENTER_TOP, [0.0, 6.0])
        .show(ctx, |ui| {
            // Wraps rather than runs off a narrow window.
            ui.set_max_width(max_width);
            ui.horizontal_wrapped(|ui| {
                for (i, item) in items.into_iter().enumerate() {
                    if i > 0 {
                        ui.label(RichText::new("·").size(STRIP_TEXT_SIZE));
                    }
                    let text = RichText::new(item).size(STRIP_TEXT_SIZE);
                    let text = if i == 0 { text.monospace().strong() } else { text };
                    ui.label(text.color(Color32::WHITE));
                }
            });
        });
    strip_area.0 = shown.map(|s| s.response.rect);
    let zoom = ctx.zoom_factor();
    *metrics = StripMetrics {
        text_px: STRIP_TEXT_SIZE * zoom,
        height_px: strip_area.0.map_or(0.0, |r| r.height() * zoom),
    };
    Ok(())
}

/// Tells the camera which part of the window the 3D view has to itself: the window less
/// the docked panels, or less the strip in presentation mode.
fn publish_free_view(
    mut contexts: EguiContexts,
    docks: Option<Res<Docks>>,
    presentation: Res<Presentation>,
    strip: Res<StripArea>,
    mut free: ResMut<FreeView>,
) -> Result {
    let screen = contexts.ctx_mut()?.content_rect();
    let mut rect = match docks {
        Some(docks) if !presentation.on => docks.free_rect(screen),
        _ => screen,
    };
    if presentation.on
        && let Some(strip) = strip.0
    {
        rect.min.y = rect.min.y.max(strip.max.y);
    }
    let to_vec = |p: egui::Pos2| Vec2::new(p.x - screen.min.x, p.y - screen.min.y);
    let view =
        FreeView::from_rect(to_vec(rect.min), to_vec(rect.max), Vec2::new(screen.width(), screen.height()));
    free.set_if_neq(view);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_toggles_presentation_mode_and_hides_the_panels() {
        let mut app = App::new();
        app.add_plugins(MinimalPlugins)
            .init_resource::<ButtonInput<KeyCode>>()
            .insert_resource(Presentation { on: false })
            .add_systems(Update, toggle_presentation);
        app.update();
        assert!(app.world_mut().run_system_cached(panels_shown).expect("condition runs"));
        app.world_mut().resource_mut::<ButtonInput<KeyCode>>().press(PRESENTATION_KEY);
        app.update();
        assert!(app.world().resource::<Presentation>().on);
        assert!(!app.world_mut().run_system_cached(panels_shown).expect("condition runs"));
        let mut keys = app.world_mut().resource_mut::<ButtonInput<KeyCode>>();
        keys.release(PRESENTATION_KEY);
        keys.clear();
        keys.press(PRESENTATION_KEY);
        app.update();
        assert!(!app.world().resource::<Presentation>().on, "pressed again: off");
    }
}
