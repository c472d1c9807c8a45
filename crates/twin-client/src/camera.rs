//! `CameraPlugin`: an orbit camera. Right-drag orbits, middle-drag (or shift + right-drag)
//! pans, the wheel zooms, WASD / arrow keys pan, Q / E turn. `FocusOn` messages (presets,
//! the HUD's "focus" buttons, a new layout) frame a box of the site: the camera glides to
//! where the box's projection fills the free part of the window ([`FreeView`], the window
//! less the docked panels) and keeps it framed when the window or the panels change size,
//! until the user takes the camera ([`CameraTaken`]).

use bevy::input::mouse::{AccumulatedMouseMotion, AccumulatedMouseScroll, MouseScrollUnit};
use bevy::prelude::*;
use bevy::window::PrimaryWindow;
use bevy_egui::input::EguiWantsInput;

use crate::net::LayoutChanged;

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
/// Pitch of a framed view, radians above the horizon (about 57°): steep enough that
/// factories do not hide each other, low enough that stations show their sides.
pub const FRAME_PITCH_RAD: f32 = 1.0;
/// Share of the free view's width and height left empty on each side of a framed box
/// (room for the names centred over the outermost stations).
const FRAME_MARGIN: f32 = 0.06;
/// Vertical field of view when the camera has no perspective projection (Bevy's default).
const DEFAULT_FOV_Y_RAD: f32 = std::f32::consts::FRAC_PI_4;
/// Closest a framed box may come to the eye, metres.
const FRAME_NEAR_M: f32 = 1.0;

/// Orbit camera with smooth focusing.
pub struct CameraPlugin;

impl Plugin for CameraPlugin {
    fn build(&self, app: &mut App) {
        app.add_message::<FocusOn>()
            .add_message::<CameraTaken>()
            .init_resource::<FreeView>()
            .add_systems(Startup, spawn_camera)
            .add_systems(
                Update,
                (
                    frame_site.run_if(on_message::<LayoutChanged>),
                    focus_region,
                    control_camera,
                    fit_framing,
                    glide_camera,
                    place_camera,
                )
                    .chain()
                    .in_set(CameraSet),
            );
    }
}

/// The camera's systems; the tour orbits after them.
#[derive(SystemSet, Debug, Clone, PartialEq, Eq, Hash)]
pub struct CameraSet;

/// Asks the camera to frame a box of the world (metres, Bevy's axes: y up, -z north).
#[derive(Message, Debug, Clone, Copy, PartialEq)]
pub struct FocusOn {
    /// Lowest corner of the box.
    pub min: Vec3,
    /// Highest corner of the box.
    pub max: Vec3,
    /// How the view turns while it frames the box.
    pub turn: Turn,
}

/// How a framed view is turned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Turn {
    /// The box's long side across the screen, at [`FRAME_PITCH_RAD`] (presets, the
    /// whole site).
    Square,
    /// The current yaw and pitch (the tour, which orbits while it frames).
    Keep,
}

/// The user moved the camera (drag, wheel, keys): framing and the tour stop.
#[derive(Message, Debug, Clone, Copy, Default)]
pub struct CameraTaken;

/// The part of the window the 3D view shows unobstructed, as fractions of the window's
/// width and height (y down): the window less the docked panels, or less the strip in
/// presentation mode. The dock and presentation plugins keep it up to date.
#[derive(Resource, Debug, Clone, Copy, PartialEq)]
pub struct FreeView {
    /// Top-left corner, fractions of the window.
    pub min: Vec2,
    /// Bottom-right corner, fractions of the window.
    pub max: Vec2,
}

impl Default for FreeView {
    fn default() -> Self {
        Self { min: Vec2::ZERO, max: Vec2::ONE }
    }
}

impl FreeView {
    /// A free view from a rectangle in window units (`window` the window's size); an
    /// empty or inverted rectangle gives the whole window.
    pub fn from_rect(min: Vec2, max: Vec2, window: Vec2) -> Self {
        let (min, max) =
            ((min / window).clamp(Vec2::ZERO, Vec2::ONE), (max / window).clamp(Vec2::ZERO, Vec2::ONE));
        // A sliver (a window narrower than its panels) frames into the whole window instead.
        if window.min_element() <= 0.0 || (max - min).min_element() < 0.1 {
            return Self::default();
        }
        Self { min, max }
    }
}

/// The lens a framing is computed for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Lens {
    /// Rotation around the vertical axis, radians.
    pub yaw: f32,
    /// Angle above the horizon, radians.
    pub pitch: f32,
    /// Vertical field of view, radians.
    pub fov_y: f32,
    /// Window width / height.
    pub aspect: f32,
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
    /// The box being framed and how; `None` once the user took the camera.
    pub framing: Option<FocusOn>,
    /// Where the camera is gliding to.
    target: Option<Pose>,
}

/// A camera pose the glide moves to.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Pose {
    focus: Vec3,
    distance: f32,
    yaw: f32,
    pitch: f32,
}

impl Default for OrbitCamera {
    fn default() -> Self {
        Self {
            focus: Vec3::ZERO,
            yaw: 0.0,
            pitch: FRAME_PITCH_RAD,
            distance: 150.0,
            framing: None,
            target: None,
        }
    }
}

fn spawn_camera(mut commands: Commands) {
    commands.spawn((Camera3d::default(), OrbitCamera::default(), Transform::default()));
}

/// The camera's rotation for a yaw and pitch (as `place_camera` orients it).
fn rotation(yaw: f32, pitch: f32) -> Quat {
    let probe = OrbitCamera { focus: Vec3::ZERO, yaw, pitch, distance: 1.0, ..default() };
    Transform::from_translation(orbit_eye(&probe)).looking_at(Vec3::ZERO, Vec3::Y).rotation
}

/// The yaw that puts the long side of a box across the screen: 0 (looking north) for a
/// box wider east-west than north-south, a quarter turn otherwise.
pub fn square_yaw(min: Vec3, max: Vec3) -> f32 {
    let size = max - min;
    if size.x >= size.z { 0.0 } else { std::f32::consts::FRAC_PI_2 }
}

/// Where the camera must stand, looking with `lens`, for the box `min..max` to fill
/// the free view (less a margin): the focus on the ground it looks at and the distance
/// to it. Every corner's projection lies inside the free view and the box touches it on
/// two opposite sides. Each bound on a corner's projection is linear in the eye's
/// position in camera space, so the nearest eye that meets them all is found in closed
/// form, per axis.
pub fn fit_box(min: Vec3, max: Vec3, lens: Lens, free: FreeView) -> (Vec3, f32) {
    let rot = rotation(lens.yaw, lens.pitch);
    let inverse = rot.inverse();
    let corners: Vec<Vec3> = (0..8)
        .map(|i| {
            let pick = |bit: usize, lo: f32, hi: f32| if i & bit == 0 { lo } else { hi };
            inverse * Vec3::new(pick(1, min.x, max.x), pick(2, min.y, max.y), pick(4, min.z, max.z))
        })
        .collect();
    let ty = (lens.fov_y * 0.5).tan();
    let tx = ty * lens.aspect.max(1e-3);
    // The free view in normalised device coordinates (y up), less the margin.
    let margin = (free.max - free.min) * FRAME_MARGIN;
    let (fmin, fmax) = (free.min + margin, free.max - margin);
    let (xl, xr) = (2.0 * fmin.x - 1.0, 2.0 * fmax.x - 1.0);
    let (yb, yt) = (1.0 - 2.0 * fmax.y, 1.0 - 2.0 * fmin.y);
    // Along one axis: a corner q projects inside [lo, hi] when
    // q.a + hi·t·q.z - hi·t·e.z <= e.a <= q.a + lo·t·q.z - lo·t·e.z.
    let axis = |a: fn(Vec3) -> f32, lo: f32, hi: f32, t: f32| {
        let upper = corners.iter().map(|&q| a(q) + hi * t * q.z).fold(f32::MIN, f32::max);
        let lower = corners.iter().map(|&q| a(q) + lo * t * q.z).fold(f32::MAX, f32::min);
        (upper, lower, (upper - lower) / ((hi - lo) * t).max(1e-6))
    };
    let (ux, lx, ez_x) = axis(|q| q.x, xl, xr, tx);
    let (uy, ly, ez_y) = axis(|q| q.y, yb, yt, ty);
    let nearest = corners.iter().map(|q| q.z).fold(f32::MIN, f32::max) + FRAME_NEAR_M;
    let ez = ez_x.max(ez_y).max(nearest);
    // Centred in the slack of the axis that does not bind.
    let ex = ((ux - xr * tx * ez) + (lx - xl * tx * ez)) * 0.5;
    let ey = ((uy - yt * ty * ez) + (ly - yb * ty * ez)) * 0.5;
    let eye = rot * Vec3::new(ex, ey, ez);
    let forward = rot * Vec3::NEG_Z;
    // The focus: where the line of sight meets the ground, else the box's depth.
    let to_ground = -eye.y / forward.y;
    let distance = if to_ground.is_finite() && to_ground > 0.0 {
        to_ground
    } else {
        (ez - corners.iter().map(|q| q.z).sum::<f32>() / 8.0).max(FRAME_NEAR_M)
    };
    (eye + forward * distance, distance)
}

/// The lens of a window: Bevy's perspective field of view and the window's aspect.
fn lens_of(projection: Option<&Projection>, window: Option<&Window>, yaw: f32, pitch: f32) -> Lens {
    let fov_y = match projection {
        Some(Projection::Perspective(p)) => p.fov,
        _ => DEFAULT_FOV_Y_RAD,
    };
    let aspect = window.map_or(16.0 / 9.0, |w| w.width() / w.height().max(1.0));
    Lens { yaw, pitch, fov_y, aspect: if aspect.is_finite() && aspect > 0.0 { aspect } else { 16.0 / 9.0 } }
}

fn frame_site(site: Res<crate::model::SiteLayout>, mut focus: MessageWriter<FocusOn>) {
    if let Some(preset) = site.layout.as_ref().and_then(crate::tour::site_preset) {
        focus.write(preset);
    }
}

fn focus_region(mut requests: MessageReader<FocusOn>, mut cameras: Query<&mut OrbitCamera>) {
    let Some(request) = requests.read().last() else {
        return;
    };
    for mut orbit in &mut cameras {
        orbit.framing = Some(*request);
    }
}

/// Keeps the target pose of a framing camera up to date with the window, the panels and
/// (for [`Turn::Keep`]) its own yaw and pitch.
fn fit_framing(
    free: Res<FreeView>,
    windows: Query<&Window, With<PrimaryWindow>>,
    mut cameras: Query<(&mut OrbitCamera, Option<&Projection>)>,
) {
    let window = windows.iter().next();
    for (mut orbit, projection) in &mut cameras {
        let Some(framing) = orbit.framing else { continue };
        let (yaw, pitch) = match framing.turn {
            Turn::Square => (square_yaw(framing.min, framing.max), FRAME_PITCH_RAD),
            Turn::Keep => (orbit.yaw, orbit.pitch),
        };
        let lens = lens_of(projection, window, yaw, pitch);
        let (focus, distance) = fit_box(framing.min, framing.max, lens, *free);
        let distance = distance.clamp(DISTANCE_RANGE_M.0, DISTANCE_RANGE_M.1);
        let pose = Pose { focus, distance, yaw, pitch };
        if orbit.target != Some(pose) {
            orbit.target = Some(pose);
        }
    }
}

/// Moves a camera a step of the way to its target pose (yaw by the shorter way round).
fn glide_camera(time: Res<Time>, mut cameras: Query<&mut OrbitCamera>) {
    let k = 1.0 - (-FOCUS_SMOOTHING_PER_S * time.delta_secs()).exp();
    for mut stored in &mut cameras {
        let Some(target) = stored.target else { continue };
        let mut orbit = stored.clone();
        let turn = (target.yaw - orbit.yaw + std::f32::consts::PI).rem_euclid(std::f32::consts::TAU)
            - std::f32::consts::PI;
        let close = orbit.focus.distance(target.focus) < 0.01
            && (orbit.distance - target.distance).abs() < 0.01
            && turn.abs() < 1e-4
            && (orbit.pitch - target.pitch).abs() < 1e-4;
        if close {
            (orbit.focus, orbit.distance, orbit.yaw, orbit.pitch) =
                (target.focus, target.distance, target.yaw, target.pitch);
        } else {
            orbit.focus = orbit.focus.lerp(target.focus, k);
            orbit.distance += (target.distance - orbit.distance) * k;
            orbit.yaw += turn * k;
            orbit.pitch += (target.pitch - orbit.pitch) * k;
        }
        if orbit.framing.is_none() {
            orbit.target = if close { None } else { orbit.target };
        }
        stored.set_if_neq(orbit);
    }
}

fn control_camera(
    time: Res<Time>,
    buttons: Res<ButtonInput<MouseButton>>,
    keys: Res<ButtonInput<KeyCode>>,
    (motion, scroll): (Res<AccumulatedMouseMotion>, Res<AccumulatedMouseScroll>),
    egui_input: Option<Res<EguiWantsInput>>,
    mut cameras: Query<&mut OrbitCamera>,
    mut taken: MessageWriter<CameraTaken>,
) {
    let (pointer_free, keys_free) = egui_input
        .map(|e| (!e.wants_any_pointer_input(), !e.wants_any_keyboard_input()))
        .unwrap_or((true, true));
    let dt = time.delta_secs();
    for mut stored in &mut cameras {
        // Work on a copy and write back only a real change, so a still camera does not
        // re-place itself (and re-mark its transform changed) every frame.
        let mut orbit = stored.clone();
        let mut user = false;
        let shift = keys.any_pressed([KeyCode::ShiftLeft, KeyCode::ShiftRight]);
        let pan_drag = buttons.pressed(MouseButton::Middle) || (shift && buttons.pressed(MouseButton::Right));
        let orbit_drag = buttons.pressed(MouseButton::Right) && !shift;
        let mut pan = Vec2::ZERO;
        if pointer_free {
            // Pressing a camera button takes the camera even before the mouse moves.
            user |= buttons.any_just_pressed([MouseButton::Right, MouseButton::Middle]);
            if orbit_drag && motion.delta != Vec2::ZERO {
                orbit.yaw -= motion.delta.x * ORBIT_RAD_PER_PIXEL;
                orbit.pitch += motion.delta.y * ORBIT_RAD_PER_PIXEL;
                user = true;
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
                user = true;
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
            user |= dir != Vec2::ZERO;
            if keys.pressed(KeyCode::KeyQ) {
                orbit.yaw += KEY_TURN_RAD_PER_S * dt;
                user = true;
            }
            if keys.pressed(KeyCode::KeyE) {
                orbit.yaw -= KEY_TURN_RAD_PER_S * dt;
                user = true;
            }
        }
        if pan != Vec2::ZERO {
            // Pan in the ground plane relative to the view: +y is "away from the camera".
            let right = Vec3::new(orbit.yaw.cos(), 0.0, -orbit.yaw.sin());
            let forward = Vec3::new(-orbit.yaw.sin(), 0.0, -orbit.yaw.cos());
            orbit.focus += right * pan.x + forward * pan.y;
            user = true;
        }
        if user {
            orbit.framing = None;
            orbit.target = None;
            taken.write(CameraTaken);
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
#[path = "camera_tests.rs"]
mod tests;
