//! `CameraPlugin`: an orbit camera. Right-drag orbits, middle-drag (or shift + right-drag)
//! pans, the wheel zooms, WASD / arrow keys pan, Q / E turn. `FocusOn` messages (the HUD's
//! "focus" buttons) and new layouts frame a region.

use bevy::input::mouse::{AccumulatedMouseMotion, AccumulatedMouseScroll, MouseScrollUnit};
use bevy::prelude::*;
use bevy_egui::input::EguiWantsInput;

use crate::model::SiteLayout;
use crate::net::LayoutChanged;
use crate::site::{finite, site_to_world};

/// Radians of orbit per pixel of mouse drag.
const ORBIT_RAD_PER_PIXEL: f32 = 0.005;
/// Zoom factor per wheel line (exponential, so zooming feels even at every distance).
const ZOOM_PER_LINE: f32 = 0.12;
/// Pixels of touchpad scroll equivalent to one wheel line.
const PIXELS_PER_LINE: f32 = 40.0;
/// Pan speed of the keys, in camera distances per second.
const KEY_PAN_PER_S: f32 = 0.6;
/// Turn speed of Q / E, radians per second.
const KEY_TURN_RAD_PER_S: f32 = 1.2;
/// Pitch limits, radians above the horizon.
const PITCH_RANGE_RAD: (f32, f32) = (0.1, 1.5);
/// Distance limits, metres.
const DISTANCE_RANGE_M: (f32, f32) = (3.0, 20_000.0);
/// Fraction of the remaining way to the target covered per second when focusing.
const FOCUS_SMOOTHING_PER_S: f32 = 6.0;

/// Orbit camera with smooth focusing.
pub struct CameraPlugin;

impl Plugin for CameraPlugin {
    fn build(&self, app: &mut App) {
        app.add_message::<FocusOn>().add_systems(Startup, spawn_camera).add_systems(
            Update,
            (frame_site.run_if(on_message::<LayoutChanged>), focus_region, control_camera, place_camera)
                .chain(),
        );
    }
}

/// Asks the camera to frame a region of the site (centre and size in metres, site frame).
#[derive(Message, Debug, Clone, Copy)]
pub struct FocusOn {
    /// Centre, metres (site frame x).
    pub x: f64,
    /// Centre, metres (site frame y).
    pub y: f64,
    /// Largest extent of the region, metres.
    pub extent_m: f32,
}

/// Orbit state of the camera; `place_camera` derives the transform from it.
#[derive(Component, Debug, Clone, PartialEq)]
pub struct OrbitCamera {
    /// Point looked at (world).
    pub focus: Vec3,
    /// Rotation around the vertical axis, radians.
    pub yaw: f32,
    /// Angle above the horizon, radians.
    pub pitch: f32,
    /// Distance from the focus, metres.
    pub distance: f32,
    /// Where a focus request is gliding to: (focus, distance).
    target: Option<(Vec3, f32)>,
}

impl Default for OrbitCamera {
    fn default() -> Self {
        Self { focus: Vec3::ZERO, yaw: 0.6, pitch: 0.8, distance: 150.0, target: None }
    }
}

fn spawn_camera(mut commands: Commands) {
    commands.spawn((Camera3d::default(), OrbitCamera::default(), Transform::default()));
}

/// Distance at which a region of `extent_m` fills the view.
fn fit_distance(extent_m: f32) -> f32 {
    (extent_m * 1.1).clamp(DISTANCE_RANGE_M.0, DISTANCE_RANGE_M.1)
}

fn frame_site(site: Res<SiteLayout>, mut focus: MessageWriter<FocusOn>) {
    let Some(bounds) = site.layout.as_ref().and_then(|l| l.site_bounds) else {
        return;
    };
    let extent = finite(bounds.max_x - bounds.min_x).max(finite(bounds.max_y - bounds.min_y));
    focus.write(FocusOn {
        x: (bounds.min_x + bounds.max_x) * 0.5,
        y: (bounds.min_y + bounds.max_y) * 0.5,
        extent_m: extent.max(10.0),
    });
}

fn focus_region(mut requests: MessageReader<FocusOn>, mut cameras: Query<&mut OrbitCamera>) {
    let Some(request) = requests.read().last() else {
        return;
    };
    for mut orbit in &mut cameras {
        orbit.target = Some((site_to_world(request.x, request.y, 0.0), fit_distance(request.extent_m)));
    }
}

fn control_camera(
    time: Res<Time>,
    buttons: Res<ButtonInput<MouseButton>>,
    keys: Res<ButtonInput<KeyCode>>,
    motion: Res<AccumulatedMouseMotion>,
    scroll: Res<AccumulatedMouseScroll>,
    egui_input: Option<Res<EguiWantsInput>>,
    mut cameras: Query<&mut OrbitCamera>,
) {
    let (pointer_free, keys_free) = egui_input
        .map(|e| (!e.wants_any_pointer_input(), !e.wants_any_keyboard_input()))
        .unwrap_or((true, true));
    let dt = time.delta_secs();
    for mut stored in &mut cameras {
        // Work on a copy and write back only a real change, so a still camera does not
        // re-place itself (and re-mark its transform changed) every frame.
        let mut orbit = stored.clone();
        let shift = keys.any_pressed([KeyCode::ShiftLeft, KeyCode::ShiftRight]);
        let pan_drag = buttons.pressed(MouseButton::Middle) || (shift && buttons.pressed(MouseButton::Right));
        let orbit_drag = buttons.pressed(MouseButton::Right) && !shift;
        let mut pan = Vec2::ZERO;
        if pointer_free {
            if orbit_drag {
                orbit.yaw -= motion.delta.x * ORBIT_RAD_PER_PIXEL;
                orbit.pitch += motion.delta.y * ORBIT_RAD_PER_PIXEL;
            }
            if pan_drag {
                // One pixel of drag moves the ground by about distance / 1000.
                pan += Vec2::new(-motion.delta.x, motion.delta.y) * orbit.distance * 0.001;
            }
            let lines = match scroll.unit {
                MouseScrollUnit::Line => scroll.delta.y,
                MouseScrollUnit::Pixel => scroll.delta.y / PIXELS_PER_LINE,
            };
            if lines != 0.0 {
                orbit.distance *= (-lines * ZOOM_PER_LINE).exp();
                orbit.target = None;
            }
        }
        if keys_free {
            let mut dir = Vec2::ZERO;
            if keys.any_pressed([KeyCode::KeyW, KeyCode::ArrowUp]) {
                dir.y += 1.0;
            }
            if keys.any_pressed([KeyCode::KeyS, KeyCode::ArrowDown]) {
                dir.y -= 1.0;
            }
            if keys.any_pressed([KeyCode::KeyD, KeyCode::ArrowRight]) {
                dir.x += 1.0;
            }
            if keys.any_pressed([KeyCode::KeyA, KeyCode::ArrowLeft]) {
                dir.x -= 1.0;
            }
            pan += dir * orbit.distance * KEY_PAN_PER_S * dt;
            if keys.pressed(KeyCode::KeyQ) {
                orbit.yaw += KEY_TURN_RAD_PER_S * dt;
            }
            if keys.pressed(KeyCode::KeyE) {
                orbit.yaw -= KEY_TURN_RAD_PER_S * dt;
            }
        }
        if pan != Vec2::ZERO {
            // Pan in the ground plane relative to the view: +y is "away from the camera".
            let right = Vec3::new(orbit.yaw.cos(), 0.0, -orbit.yaw.sin());
            let forward = Vec3::new(-orbit.yaw.sin(), 0.0, -orbit.yaw.cos());
            let delta = right * pan.x + forward * pan.y;
            orbit.focus += delta;
            orbit.target = None;
        }
        if let Some((focus, distance)) = orbit.target {
            let k = 1.0 - (-FOCUS_SMOOTHING_PER_S * dt).exp();
            orbit.focus = orbit.focus.lerp(focus, k);
            orbit.distance += (distance - orbit.distance) * k;
            if orbit.focus.distance(focus) < 0.01 && (orbit.distance - distance).abs() < 0.01 {
                orbit.target = None;
            }
        }
        orbit.pitch = orbit.pitch.clamp(PITCH_RANGE_RAD.0, PITCH_RANGE_RAD.1);
        orbit.distance = orbit.distance.clamp(DISTANCE_RANGE_M.0, DISTANCE_RANGE_M.1);
        stored.set_if_neq(orbit);
    }
}

/// Camera translation for an orbit: behind the focus along the yaw, raised by the pitch.
pub fn orbit_eye(orbit: &OrbitCamera) -> Vec3 {
    let horizontal = orbit.distance * orbit.pitch.cos();
    orbit.focus
        + Vec3::new(
            horizontal * orbit.yaw.sin(),
            orbit.distance * orbit.pitch.sin(),
            horizontal * orbit.yaw.cos(),
        )
}

fn place_camera(mut cameras: Query<(&OrbitCamera, &mut Transform), Changed<OrbitCamera>>) {
    for (orbit, mut transform) in &mut cameras {
        *transform = Transform::from_translation(orbit_eye(orbit)).looking_at(orbit.focus, Vec3::Y);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eye_sits_above_and_behind_the_focus() {
        let orbit = OrbitCamera {
            focus: Vec3::new(5.0, 0.0, 5.0),
            yaw: 0.0,
            pitch: 0.5,
            distance: 10.0,
            target: None,
        };
        let eye = orbit_eye(&orbit);
        assert!((eye.distance(orbit.focus) - 10.0).abs() < 1e-4);
        assert!(eye.y > 0.0);
        // Yaw 0 looks north (world -z), so the eye is south of the focus (+z).
        assert!(eye.z > orbit.focus.z);
    }

    #[test]
    fn focus_request_glides_to_the_target() {
        let mut app = App::new();
        app.add_plugins(MinimalPlugins)
            .insert_resource(bevy::time::TimeUpdateStrategy::ManualDuration(
                std::time::Duration::from_millis(16),
            ))
            .init_resource::<ButtonInput<MouseButton>>()
            .init_resource::<ButtonInput<KeyCode>>()
            .init_resource::<AccumulatedMouseMotion>()
            .init_resource::<AccumulatedMouseScroll>()
            .init_resource::<SiteLayout>()
            .add_message::<LayoutChanged>()
            .add_plugins(CameraPlugin);
        app.update();
        app.world_mut().write_message(FocusOn { x: 100.0, y: 50.0, extent_m: 40.0 });
        for _ in 0..300 {
            app.update();
        }
        let mut cameras = app.world_mut().query::<&OrbitCamera>();
        let orbit = cameras.single(app.world()).expect("one camera");
        assert!(orbit.focus.distance(Vec3::new(100.0, 0.0, -50.0)) < 0.1, "{:?}", orbit.focus);
        assert!((orbit.distance - fit_distance(40.0)).abs() < 0.1);
    }
}
