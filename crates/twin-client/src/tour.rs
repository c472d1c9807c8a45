//! `TourPlugin`: camera presets and the automatic tour, for trainers. Keys `1`..`9` frame
//! the first nine factories (the *Controls* panel lists them with their keys), `0` the
//! whole site; `T` starts a slow tour that frames the whole site, then each factory in
//! turn, orbiting slowly. A preset key, a camera drag or `T` again ends the tour.

use bevy::prelude::*;
use bevy_egui::input::EguiWantsInput;
use twin_proto::v1::{Factory, Layout};

use crate::camera::{FocusOn, OrbitCamera};
use crate::model::SiteLayout;
use crate::site::finite;

/// The key that starts and stops the tour.
pub const TOUR_KEY: KeyCode = KeyCode::KeyT;
/// The key that frames the whole site.
pub const WHOLE_SITE_KEY: KeyCode = KeyCode::Digit0;
/// Keys that frame factories 1 to 9, in layout order.
pub const PRESET_KEYS: [KeyCode; 9] = [
    KeyCode::Digit1,
    KeyCode::Digit2,
    KeyCode::Digit3,
    KeyCode::Digit4,
    KeyCode::Digit5,
    KeyCode::Digit6,
    KeyCode::Digit7,
    KeyCode::Digit8,
    KeyCode::Digit9,
];
/// Seconds the tour stays at each stop.
pub const TOUR_DWELL_S: f32 = 12.0;
/// Orbit speed during the tour, radians per second (a full turn in about two minutes).
const TOUR_ORBIT_RAD_PER_S: f32 = 0.05;
/// Smallest framed extent, metres.
const MIN_EXTENT_M: f32 = 5.0;

/// Camera presets and the tour.
pub struct TourPlugin;

impl Plugin for TourPlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<Tour>().add_systems(Update, (use_preset_keys, run_tour).chain());
    }
}

/// The automatic tour.
#[derive(Resource, Debug, Default, Clone, PartialEq)]
pub struct Tour {
    /// True while touring.
    pub on: bool,
    /// The current stop: 0 the whole site, k the k-th factory.
    pub stop: usize,
    /// Seconds spent at the current stop.
    pub at_stop_s: f32,
}

/// The camera preset that frames `factory`.
pub fn factory_preset(factory: &Factory) -> FocusOn {
    let (w, d) = (finite(factory.width_m), finite(factory.depth_m));
    FocusOn {
        x: factory.origin_x + f64::from(w) * 0.5,
        y: factory.origin_y + f64::from(d) * 0.5,
        extent_m: w.max(d).max(MIN_EXTENT_M),
    }
}

/// The camera preset that frames the whole site; `None` without site bounds.
pub fn site_preset(layout: &Layout) -> Option<FocusOn> {
    let b = layout.site_bounds?;
    Some(FocusOn {
        x: (b.min_x + b.max_x) * 0.5,
        y: (b.min_y + b.max_y) * 0.5,
        extent_m: finite(b.max_x - b.min_x).max(finite(b.max_y - b.min_y)).max(10.0),
    })
}

/// Stop `stop` of the tour: 0 the whole site, then the factories in layout order.
pub fn tour_stop(layout: &Layout, stop: usize) -> Option<FocusOn> {
    match stop {
        0 => site_preset(layout).or_else(|| layout.factories.first().map(factory_preset)),
        k => layout.factories.get(k - 1).map(factory_preset),
    }
}

/// Number of stops of a tour of `layout`.
pub fn tour_len(layout: &Layout) -> usize {
    layout.factories.len() + 1
}

/// `0`..`9` frame the site or a factory; a preset ends the tour. `T` starts or ends it.
fn use_preset_keys(
    keys: Option<Res<ButtonInput<KeyCode>>>,
    egui_input: Option<Res<EguiWantsInput>>,
    site: Res<SiteLayout>,
    mut tour: ResMut<Tour>,
    mut focus: MessageWriter<FocusOn>,
) {
    let Some(keys) = keys else { return };
    if egui_input.is_some_and(|e| e.wants_any_keyboard_input()) {
        return;
    }
    let Some(layout) = &site.layout else { return };
    if keys.just_pressed(TOUR_KEY) {
        tour.on = !tour.on;
        if tour.on {
            // Start at the whole site, right away.
            tour.stop = 0;
            tour.at_stop_s = 0.0;
            if let Some(stop) = tour_stop(layout, 0) {
                focus.write(stop);
            }
        }
    }
    let preset = if keys.just_pressed(WHOLE_SITE_KEY) {
        site_preset(layout)
    } else {
        PRESET_KEYS
            .iter()
            .position(|k| keys.just_pressed(*k))
            .and_then(|i| layout.factories.get(i))
            .map(factory_preset)
    };
    if let Some(preset) = preset {
        tour.on = false;
        focus.write(preset);
    }
}

/// While touring: orbit slowly and move on to the next stop every `TOUR_DWELL_S`. A drag
/// of the camera (right or middle button) ends the tour.
fn run_tour(
    time: Res<Time>,
    buttons: Option<Res<ButtonInput<MouseButton>>>,
    site: Res<SiteLayout>,
    mut tour: ResMut<Tour>,
    mut focus: MessageWriter<FocusOn>,
    mut cameras: Query<&mut OrbitCamera>,
) {
    if !tour.on {
        return;
    }
    if buttons.is_some_and(|b| b.any_just_pressed([MouseButton::Right, MouseButton::Middle])) {
        tour.on = false;
        return;
    }
    let Some(layout) = &site.layout else { return };
    let dt = time.delta_secs();
    for mut orbit in &mut cameras {
        orbit.yaw += TOUR_ORBIT_RAD_PER_S * dt;
    }
    tour.at_stop_s += dt;
    if tour.at_stop_s >= TOUR_DWELL_S {
        tour.at_stop_s = 0.0;
        tour.stop = (tour.stop + 1) % tour_len(layout);
        if let Some(stop) = tour_stop(layout, tour.stop) {
            focus.write(stop);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use twin_proto::v1::Bounds;

    fn layout() -> Layout {
        let factory = |id: &str, x: f64| Factory {
            id: id.to_owned(),
            origin_x: x,
            origin_y: 0.0,
            width_m: 40.0,
            depth_m: 20.0,
            ..default()
        };
        Layout {
            layout_generation: 1,
            factories: vec![factory("a", 0.0), factory("b", 100.0)],
            site_bounds: Some(Bounds { min_x: 0.0, min_y: 0.0, max_x: 140.0, max_y: 20.0 }),
            ..default()
        }
    }

    fn app() -> App {
        let mut app = App::new();
        app.add_plugins(MinimalPlugins)
            .insert_resource(bevy::time::TimeUpdateStrategy::ManualDuration(Duration::from_millis(100)))
            .init_resource::<ButtonInput<KeyCode>>()
            .init_resource::<ButtonInput<MouseButton>>()
            .insert_resource(SiteLayout { layout: Some(layout()) })
            .add_message::<FocusOn>()
            .add_plugins(TourPlugin);
        app.world_mut().spawn(OrbitCamera::default());
        app.update();
        app
    }

    fn focus_requests(app: &mut App) -> Vec<(f64, f64)> {
        let messages = app.world().resource::<Messages<FocusOn>>();
        messages.iter_current_update_messages().map(|f| (f.x, f.y)).collect()
    }

    fn press(app: &mut App, key: KeyCode) {
        let mut keys = app.world_mut().resource_mut::<ButtonInput<KeyCode>>();
        keys.release_all();
        keys.clear();
        keys.press(key);
        app.update();
        app.world_mut().resource_mut::<ButtonInput<KeyCode>>().clear();
    }

    #[test]
    fn number_keys_frame_factories_and_zero_the_site() {
        let mut app = app();
        press(&mut app, KeyCode::Digit2);
        assert_eq!(focus_requests(&mut app), vec![(120.0, 10.0)], "factory b's centre");
        press(&mut app, KeyCode::Digit9);
        assert_eq!(focus_requests(&mut app), vec![], "no ninth factory");
        press(&mut app, WHOLE_SITE_KEY);
        assert_eq!(focus_requests(&mut app), vec![(70.0, 10.0)]);
    }

    #[test]
    fn the_tour_orbits_and_visits_every_factory_then_a_preset_ends_it() {
        let mut app = app();
        press(&mut app, TOUR_KEY);
        assert!(app.world().resource::<Tour>().on);
        assert_eq!(focus_requests(&mut app), vec![(70.0, 10.0)], "starts at the whole site");
        let yaw0 = app.world_mut().query::<&OrbitCamera>().single(app.world()).expect("camera").yaw;
        let mut visited = Vec::new();
        // Three dwells of 12 s at 0.1 s a frame.
        for _ in 0..(3 * 121) {
            app.update();
            visited.extend(focus_requests(&mut app));
        }
        assert_eq!(visited, vec![(20.0, 10.0), (120.0, 10.0), (70.0, 10.0)], "a, b, then the site again");
        let yaw1 = app.world_mut().query::<&OrbitCamera>().single(app.world()).expect("camera").yaw;
        assert!(yaw1 > yaw0 + 1.0, "it orbits slowly: {yaw0} -> {yaw1}");
        press(&mut app, KeyCode::Digit1);
        assert!(!app.world().resource::<Tour>().on, "a preset ends the tour");
    }
}
