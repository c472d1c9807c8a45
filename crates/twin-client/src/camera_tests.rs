//! Tests of the orbit camera and of framing a box into the free part of the window.

use super::*;
use bevy::camera::CameraProjection;
use bevy::window::WindowResolution;

/// The demo complex's working box: eight factories of 96 m x 60 m from x = 100 to 586 m
/// and y = 30 to 190 m, stations up to 4 m tall.
const DEMO_BOX: (Vec3, Vec3) = (Vec3::new(100.0, 0.0, -190.0), Vec3::new(586.0, 4.0, -30.0));
/// The training line's stations: a row from x = 8 to 77 m around y = 15 m.
const LINE_BOX: (Vec3, Vec3) = (Vec3::new(8.0, 0.0, -17.0), Vec3::new(77.0, 2.4, -13.0));

/// The free view at `screen` (pixels) with the default docked layout: the left column
/// (300 px), the right column (310 px) and the timeline (140 px) at the foot.
fn docked(screen: Vec2) -> FreeView {
    FreeView::from_rect(Vec2::new(300.0, 0.0), Vec2::new(screen.x - 310.0, screen.y - 140.0), screen)
}

/// Where the corners of a box land in the free view, through Bevy's own projection
/// matrix and the transform `place_camera` gives the orbit: (share of the free width,
/// share of the free height, every corner inside it).
fn coverage(
    orbit: &OrbitCamera,
    fov_y: f32,
    screen: Vec2,
    free: FreeView,
    b: (Vec3, Vec3),
) -> (f32, f32, bool) {
    let projection = PerspectiveProjection { fov: fov_y, aspect_ratio: screen.x / screen.y, ..default() };
    let clip_from_view = projection.get_clip_from_view();
    let world_from_view = Transform::from_translation(orbit_eye(orbit)).looking_at(orbit.focus, Vec3::Y);
    let clip_from_world = clip_from_view * world_from_view.to_matrix().inverse();
    let (mut lo, mut hi) = (Vec2::splat(f32::MAX), Vec2::splat(f32::MIN));
    for i in 0..8 {
        let pick = |bit: usize, a: f32, z: f32| if i & bit == 0 { a } else { z };
        let corner = Vec3::new(pick(1, b.0.x, b.1.x), pick(2, b.0.y, b.1.y), pick(4, b.0.z, b.1.z));
        let ndc = clip_from_world.project_point3(corner);
        // Window fractions, y down.
        let f = Vec2::new((ndc.x + 1.0) * 0.5, (1.0 - ndc.y) * 0.5);
        (lo, hi) = (lo.min(f), hi.max(f));
    }
    let size = free.max - free.min;
    let inside = lo.x >= free.min.x - 1e-3
        && lo.y >= free.min.y - 1e-3
        && hi.x <= free.max.x + 1e-3
        && hi.y <= free.max.y + 1e-3;
    ((hi.x - lo.x) / size.x, (hi.y - lo.y) / size.y, inside)
}

#[test]
fn eye_sits_above_and_behind_the_focus() {
    let orbit =
        OrbitCamera { focus: Vec3::new(5.0, 0.0, 5.0), yaw: 0.0, pitch: 0.5, distance: 10.0, ..default() };
    let eye = orbit_eye(&orbit);
    assert!((eye.distance(orbit.focus) - 10.0).abs() < 1e-4);
    assert!(eye.y > 0.0);
    // Yaw 0 looks north (world -z), so the eye is south of the focus (+z).
    assert!(eye.z > orbit.focus.z);
}

#[test]
fn a_fitted_box_fills_the_free_view_at_both_sizes() {
    let fov_y = DEFAULT_FOV_Y_RAD;
    for screen in [Vec2::new(1920.0, 1080.0), Vec2::new(1280.0, 720.0)] {
        let strip = FreeView::from_rect(Vec2::new(0.0, 60.0), screen, screen);
        for (name, free) in
            [("docked", docked(screen)), ("presentation", strip), ("whole", FreeView::default())]
        {
            for (scene, b) in [("demo", DEMO_BOX), ("line", LINE_BOX)] {
                let (yaw, pitch) = (square_yaw(b.0, b.1), FRAME_PITCH_RAD);
                let lens = Lens { yaw, pitch, fov_y, aspect: screen.x / screen.y };
                let (focus, distance) = fit_box(b.0, b.1, lens, free);
                let orbit = OrbitCamera { focus, yaw, pitch, distance, ..default() };
                assert!(focus.y.abs() < 1e-3, "{scene} {name} {screen}: the focus is on the ground");
                let (w, h, inside) = coverage(&orbit, fov_y, screen, free, b);
                println!(
                    "{scene} {name} {screen}: {:.0} % of the free width, {:.0} % of its height",
                    w * 100.0,
                    h * 100.0
                );
                assert!(inside, "{scene} {name} {screen}: the box stays in the free view ({w}, {h})");
                // Touching two opposite sides, less the margins (6 % each side).
                assert!(w.max(h) > 0.87, "{scene} {name} {screen}: the box fills the free view ({w}, {h})");
                if scene == "demo" {
                    // The complex is three times as wide as it is deep: it spans the free
                    // view's width and, seen from this pitch, more than a fifth of its
                    // height (the most a 3:1 plan can at this aspect is under a half).
                    assert!(w > 0.87 && h > 0.22, "{scene} {name} {screen}: {w} x {h} of the free view");
                }
            }
        }
    }
    // A long row looking along its length turns a quarter so that it runs across.
    assert_eq!(square_yaw(Vec3::ZERO, Vec3::new(4.0, 1.0, 60.0)), std::f32::consts::FRAC_PI_2);
}

fn camera_app(screen: Vec2) -> App {
    let mut app = App::new();
    app.add_plugins(MinimalPlugins)
        .insert_resource(bevy::time::TimeUpdateStrategy::ManualDuration(std::time::Duration::from_millis(16)))
        .init_resource::<ButtonInput<MouseButton>>()
        .init_resource::<ButtonInput<KeyCode>>()
        .init_resource::<AccumulatedMouseMotion>()
        .init_resource::<AccumulatedMouseScroll>()
        .init_resource::<crate::model::SiteLayout>()
        .add_message::<LayoutChanged>()
        .add_plugins(CameraPlugin);
    app.world_mut().spawn((
        Window { resolution: WindowResolution::new(screen.x as u32, screen.y as u32), ..default() },
        PrimaryWindow,
    ));
    app.insert_resource(docked(screen));
    app.update();
    app
}

fn orbit(app: &mut App) -> OrbitCamera {
    app.world_mut().query::<&OrbitCamera>().single(app.world()).expect("one camera").clone()
}

fn run(app: &mut App, frames: usize) {
    for _ in 0..frames {
        app.update();
    }
}

/// The real systems: a framing request glides to the fit, follows a resize and the
/// panels until the user takes the camera, and key-free requests frame again.
#[test]
fn framing_follows_the_window_until_the_user_takes_the_camera() {
    let small = Vec2::new(1280.0, 720.0);
    let mut app = camera_app(small);
    app.world_mut().write_message(FocusOn { min: DEMO_BOX.0, max: DEMO_BOX.1, turn: Turn::Square });
    run(&mut app, 300);
    let fov = DEFAULT_FOV_Y_RAD;
    let (w, h, inside) = coverage(&orbit(&mut app), fov, small, docked(small), DEMO_BOX);
    assert!(inside && w > 0.87 && h > 0.22, "1280x720: {w} x {h}, inside {inside}");
    assert!((orbit(&mut app).pitch - FRAME_PITCH_RAD).abs() < 1e-3, "the framed pitch");

    // The window grows to 1080p and the panels take a smaller share: it frames again.
    let big = Vec2::new(1920.0, 1080.0);
    app.world_mut()
        .query::<&mut Window>()
        .single_mut(app.world_mut())
        .expect("window")
        .resolution
        .set(big.x, big.y);
    app.insert_resource(docked(big));
    run(&mut app, 300);
    let (w, h, inside) = coverage(&orbit(&mut app), fov, big, docked(big), DEMO_BOX);
    assert!(inside && w > 0.87 && h > 0.22, "1920x1080: {w} x {h}, inside {inside}");

    // The wheel takes the camera: no more framing, and a resize leaves it alone.
    app.world_mut().resource_mut::<AccumulatedMouseScroll>().delta = Vec2::new(0.0, 2.0);
    app.update();
    app.world_mut().resource_mut::<AccumulatedMouseScroll>().delta = Vec2::ZERO;
    let taken = orbit(&mut app);
    assert_eq!(taken.framing, None);
    assert!(app.world().resource::<Messages<CameraTaken>>().iter_current_update_messages().count() == 1);
    app.world_mut()
        .query::<&mut Window>()
        .single_mut(app.world_mut())
        .expect("window")
        .resolution
        .set(small.x, small.y);
    app.insert_resource(FreeView::default());
    run(&mut app, 30);
    assert_eq!(orbit(&mut app), taken, "the user's view stays");

    // Whole site again (key 0 sends this request): framed in the free view of 720p.
    app.insert_resource(docked(small));
    app.world_mut().write_message(FocusOn { min: DEMO_BOX.0, max: DEMO_BOX.1, turn: Turn::Square });
    run(&mut app, 300);
    let (w, h, inside) = coverage(&orbit(&mut app), fov, small, docked(small), DEMO_BOX);
    assert!(inside && w.max(h) > 0.87, "framed again: {w} x {h}, inside {inside}");
}
