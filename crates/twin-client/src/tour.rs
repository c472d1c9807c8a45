//! `TourPlugin`: camera presets and the automatic tour, for trainers. Keys `1`..`9` frame
//! the first nine factories (the *Controls* panel lists them with their keys), `0` the
//! whole site; `T` starts a slow tour that frames the whole site, then each factory in
//! turn, orbiting slowly. A preset key, the user taking the camera (a drag, the wheel,
//! WASD / arrows, Q / E: [`CameraTaken`]) or `T` again ends the tour.

use bevy::prelude::*;
use bevy_egui::input::EguiWantsInput;
use twin_proto::v1::Layout;

use crate::camera::{CameraSet, CameraTaken, FocusOn, OrbitCamera, Turn};
use crate::meshes::station_height;
use crate::model::SiteLayout;
use crate::site::{finite, site_to_world};

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
/// Smallest footprint side counted in a framed box, metres (sources and sinks are points).
const MIN_STATION_M: f32 = 1.0;

/// Camera presets and the tour.
pub struct TourPlugin;

impl Plugin for TourPlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<Tour>().add_systems(Update, (use_preset_keys, run_tour).chain().after(CameraSet));
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

/// A growing axis-aligned box in the world.
#[derive(Debug, Clone, Copy)]
struct WorldBox {
    min: Vec3,
    max: Vec3,
}

impl WorldBox {
    fn add(acc: Option<WorldBox>, min: Vec3, max: Vec3) -> Option<WorldBox> {
        let (min, max) = (min.min(max), min.max(max));
        Some(match acc {
            Some(b) => WorldBox { min: b.min.min(min), max: b.max.max(max) },
            None => WorldBox { min, max },
        })
    }

    /// A footprint of the site frame (centre, extent, metres) from the ground to `height`.
    fn add_footprint(
        acc: Option<WorldBox>,
        x: f64,
        y: f64,
        size: (f32, f32),
        height: f32,
    ) -> Option<WorldBox> {
        let (hx, hy) =
            (f64::from(size.0.max(MIN_STATION_M)) * 0.5, f64::from(size.1.max(MIN_STATION_M)) * 0.5);
        WorldBox::add(acc, site_to_world(x - hx, y - hy, 0.0), site_to_world(x + hx, y + hy, height))
    }

    fn focus(self, turn: Turn) -> FocusOn {
        // A box too small to frame (one small station) grows to MIN_EXTENT_M across.
        let size = self.max - self.min;
        if size.x.max(size.z) >= MIN_EXTENT_M {
            return FocusOn { min: self.min, max: self.max, turn };
        }
        let centre = (self.min + self.max) * 0.5;
        let half = Vec3::new(MIN_EXTENT_M, 0.0, MIN_EXTENT_M) * 0.5;
        let (lo, hi) = (centre - half, centre + half);
        FocusOn { min: Vec3::new(lo.x, self.min.y, lo.z), max: Vec3::new(hi.x, self.max.y, hi.z), turn }
    }
}

/// The box of what works in factory `index` (`None`: the whole site): its stations, with
/// their heights, and the sources and sinks that feed and empty it; on the whole site the
/// hub too. Buildings and ground are left out, so the parts people watch fill the view.
fn working_box(layout: &Layout, index: Option<usize>) -> Option<WorldBox> {
    let factory_id = index.and_then(|i| layout.factories.get(i)).map(|f| f.id.as_str());
    let mine = |id: &str| factory_id.is_none_or(|f| f == id);
    let mut acc = None;
    for s in layout.stations.iter().filter(|s| mine(&s.factory_id)) {
        let size = (finite(s.size_x_m), finite(s.size_y_m));
        acc = WorldBox::add_footprint(acc, s.x, s.y, size, station_height(s.kind()));
    }
    let points = layout.sources.iter().filter(|s| mine(&s.factory_id)).map(|s| (s.x, s.y));
    for (x, y) in points.chain(layout.sinks.iter().filter(|s| mine(&s.factory_id)).map(|s| (s.x, s.y))) {
        acc = WorldBox::add_footprint(acc, x, y, (MIN_STATION_M, MIN_STATION_M), 0.0);
    }
    if let (None, Some(hub)) = (factory_id, &layout.hub) {
        let size = (finite(hub.width_m), finite(hub.depth_m));
        acc = WorldBox::add_footprint(acc, hub.x, hub.y, size, 0.0);
    }
    acc
}

/// The camera preset of factory `index` (key `index + 1`): its working box, squared to
/// the screen; its footprint when it has no stations. `None`: no such factory.
pub fn factory_preset(layout: &Layout, index: usize) -> Option<FocusOn> {
    let factory = layout.factories.get(index)?;
    let footprint = || {
        let (w, d) = (finite(factory.width_m), finite(factory.depth_m));
        let origin = site_to_world(factory.origin_x, factory.origin_y, 0.0);
        WorldBox::add(None, origin, origin + Vec3::new(w, 0.0, -d))
    };
    working_box(layout, Some(index)).or_else(footprint).map(|b| b.focus(Turn::Square))
}

/// The camera preset of the whole site (key `0`, and the view on start): the working box
/// of every factory, else the site's bounds; `None` without either.
pub fn site_preset(layout: &Layout) -> Option<FocusOn> {
    let bounds = || {
        let b = layout.site_bounds?;
        WorldBox::add(None, site_to_world(b.min_x, b.min_y, 0.0), site_to_world(b.max_x, b.max_y, 0.0))
    };
    working_box(layout, None).or_else(bounds).map(|b| b.focus(Turn::Square))
}

/// Stop `stop` of the tour: 0 the whole site, then the factories in layout order. The
/// tour keeps orbiting, so a stop keeps the camera's turn.
pub fn tour_stop(layout: &Layout, stop: usize) -> Option<FocusOn> {
    let preset = match stop {
        0 => site_preset(layout).or_else(|| factory_preset(layout, 0)),
        k => factory_preset(layout, k - 1),
    };
    preset.map(|p| FocusOn { turn: Turn::Keep, ..p })
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
        PRESET_KEYS.iter().position(|k| keys.just_pressed(*k)).and_then(|i| factory_preset(layout, i))
    };
    if let Some(preset) = preset {
        tour.on = false;
        focus.write(preset);
    }
}

/// While touring: orbit slowly and move on to the next stop every `TOUR_DWELL_S`. The
/// user taking the camera (a drag, the wheel, the pan and turn keys) ends the tour.
fn run_tour(
    time: Res<Time>,
    mut taken: MessageReader<CameraTaken>,
    site: Res<SiteLayout>,
    mut tour: ResMut<Tour>,
    mut focus: MessageWriter<FocusOn>,
    mut cameras: Query<&mut OrbitCamera>,
) {
    // Read every frame, so that a move made before the tour started does not end it.
    let taken = taken.read().count() > 0;
    if !tour.on {
        return;
    }
    if taken {
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
    use bevy::input::mouse::{AccumulatedMouseMotion, AccumulatedMouseScroll, MouseScrollUnit};
    use std::time::Duration;
    use twin_proto::v1::{Bounds, Factory, Station};

    fn layout() -> Layout {
        let factory = |id: &str, x: f64| Factory {
            id: id.to_owned(),
            origin_x: x,
            origin_y: 0.0,
            width_m: 40.0,
            depth_m: 20.0,
            ..default()
        };
        let station = |id: &str, factory: &str, x: f64| Station {
            id: id.to_owned(),
            factory_id: factory.to_owned(),
            x,
            y: 10.0,
            size_x_m: 4.0,
            size_y_m: 2.0,
            ..default()
        };
        Layout {
            layout_generation: 1,
            factories: vec![factory("a", 0.0), factory("b", 100.0)],
            stations: vec![station("a1", "a", 10.0), station("a2", "a", 30.0), station("b1", "b", 120.0)],
            site_bounds: Some(Bounds { min_x: -50.0, min_y: -50.0, max_x: 190.0, max_y: 70.0 }),
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
            .add_message::<CameraTaken>()
            .add_plugins(TourPlugin);
        app.world_mut().spawn(OrbitCamera::default());
        app.update();
        app
    }

    /// Site-frame centres of the boxes asked to be framed in the last update.
    fn focus_requests(app: &mut App) -> Vec<(f32, f32)> {
        let messages = app.world().resource::<Messages<FocusOn>>();
        messages
            .iter_current_update_messages()
            .map(|f| {
                let c = (f.min + f.max) * 0.5;
                (c.x, -c.z)
            })
            .collect()
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
    fn presets_frame_the_stations_not_the_buildings() {
        let site = site_preset(&layout()).expect("a site");
        // From the first station's west edge (8 m) to the last one's east edge (122 m),
        // not the site bounds (-50 to 190 m); as tall as a machine.
        assert_eq!((site.min.x, site.max.x), (8.0, 122.0));
        assert_eq!((site.min.z, site.max.z), (-11.0, -9.0), "north-south: the stations' depth");
        assert_eq!((site.min.y, site.max.y), (0.0, station_height(twin_proto::v1::StationKind::Unspecified)));
        assert_eq!(site.turn, Turn::Square);
        let b = factory_preset(&layout(), 1).expect("factory b");
        assert_eq!((b.min.x, b.max.x), (117.5, 122.5), "one 4 m station, grown to 5 m");
        assert_eq!(factory_preset(&layout(), 2), None);
        // A factory without stations frames its footprint.
        let mut bare = layout();
        bare.stations.clear();
        let a = factory_preset(&bare, 0).expect("factory a");
        assert_eq!((a.min.x, a.max.x, a.min.z, a.max.z), (0.0, 40.0, -20.0, 0.0));
        assert_eq!(tour_stop(&layout(), 2).map(|s| s.turn), Some(Turn::Keep), "the tour keeps turning");
    }

    #[test]
    fn number_keys_frame_factories_and_zero_the_site() {
        let mut app = app();
        press(&mut app, KeyCode::Digit2);
        assert_eq!(focus_requests(&mut app), vec![(120.0, 10.0)], "factory b's station");
        press(&mut app, KeyCode::Digit9);
        assert_eq!(focus_requests(&mut app), vec![], "no ninth factory");
        press(&mut app, WHOLE_SITE_KEY);
        assert_eq!(focus_requests(&mut app), vec![(65.0, 10.0)]);
    }

    #[test]
    fn the_tour_orbits_and_visits_every_factory_then_a_preset_ends_it() {
        let mut app = app();
        press(&mut app, TOUR_KEY);
        assert!(app.world().resource::<Tour>().on);
        assert_eq!(focus_requests(&mut app), vec![(65.0, 10.0)], "starts at the whole site");
        let yaw0 = app.world_mut().query::<&OrbitCamera>().single(app.world()).expect("camera").yaw;
        let mut visited = Vec::new();
        // Three dwells of 12 s at 0.1 s a frame.
        for _ in 0..(3 * 121) {
            app.update();
            visited.extend(focus_requests(&mut app));
        }
        assert_eq!(visited, vec![(20.0, 10.0), (120.0, 10.0), (65.0, 10.0)], "a, b, then the site again");
        let yaw1 = app.world_mut().query::<&OrbitCamera>().single(app.world()).expect("camera").yaw;
        assert!(yaw1 > yaw0 + 1.0, "it orbits slowly: {yaw0} -> {yaw1}");
        press(&mut app, KeyCode::Digit1);
        assert!(!app.world().resource::<Tour>().on, "a preset ends the tour");
    }

    /// The tour with the real camera: taking the camera in any way ends it.
    #[test]
    fn the_tour_stops_when_the_user_takes_the_camera() {
        type Take = fn(&mut World);
        let takes: [(&str, Take); 7] = [
            ("W", |w| w.resource_mut::<ButtonInput<KeyCode>>().press(KeyCode::KeyW)),
            ("arrow left", |w| w.resource_mut::<ButtonInput<KeyCode>>().press(KeyCode::ArrowLeft)),
            ("Q", |w| w.resource_mut::<ButtonInput<KeyCode>>().press(KeyCode::KeyQ)),
            ("wheel", |w| {
                *w.resource_mut::<AccumulatedMouseScroll>() =
                    AccumulatedMouseScroll { unit: MouseScrollUnit::Line, delta: Vec2::new(0.0, 1.0) }
            }),
            ("right drag", |w| {
                w.resource_mut::<ButtonInput<MouseButton>>().press(MouseButton::Right);
                w.resource_mut::<AccumulatedMouseMotion>().delta = Vec2::new(30.0, 5.0);
            }),
            ("middle press", |w| w.resource_mut::<ButtonInput<MouseButton>>().press(MouseButton::Middle)),
            ("preset 2", |w| w.resource_mut::<ButtonInput<KeyCode>>().press(KeyCode::Digit2)),
        ];
        for (name, take) in takes {
            let mut app = App::new();
            app.add_plugins(MinimalPlugins)
                .insert_resource(bevy::time::TimeUpdateStrategy::ManualDuration(Duration::from_millis(50)))
                .init_resource::<ButtonInput<KeyCode>>()
                .init_resource::<ButtonInput<MouseButton>>()
                .init_resource::<AccumulatedMouseMotion>()
                .init_resource::<AccumulatedMouseScroll>()
                .insert_resource(SiteLayout { layout: Some(layout()) })
                .add_message::<crate::net::LayoutChanged>()
                .add_plugins((crate::camera::CameraPlugin, TourPlugin));
            app.update();
            press(&mut app, TOUR_KEY);
            for _ in 0..40 {
                app.update();
            }
            assert!(app.world().resource::<Tour>().on, "{name}: the tour runs on its own for 2 s");
            take(app.world_mut());
            app.update();
            assert!(!app.world().resource::<Tour>().on, "{name} ends the tour");
            let orbit = app.world_mut().query::<&OrbitCamera>().single(app.world()).expect("camera").clone();
            if name != "preset 2" {
                assert_eq!(orbit.framing, None, "{name}: the camera stays where the user put it");
            }
        }
    }
}
