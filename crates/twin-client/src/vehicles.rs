//! `VehiclePlugin` (added by `SitePlugin`): AGVs and trucks as shared models in a
//! saturated kind colour with their state on the roof, grown so that each spans at least
//! a minimum number of pixels on screen at any zoom. At site zoom a 1.2 m AGV would be a
//! pixel or two wide; drawn at its minimum size it stays visible, and it returns to its
//! true size as soon as the camera is close enough to show that.
//!
//! One mesh per (kind, state) with the colours baked in as vertex colours, and one white
//! material for all vehicles: a state change swaps the mesh handle, nothing is allocated,
//! and the GPU draws each (kind, state) group instanced.

use bevy::prelude::*;
use twin_proto::v1::{Layout, VehicleKind, VehicleStateKind};

use crate::meshes::vehicle_mesh;
use crate::model::LiveState;
use crate::motion::MotionTrack;
use crate::palette::{VEHICLE_STATES, vehicle_state_slot};
use crate::site::{SeenRev, SiteEntities, SiteEntity, VehicleIndex, finite};

/// Default AGV body (length, height, width), metres, when the layout gives no size.
const AGV_SIZE_M: Vec3 = Vec3::new(1.2, 0.5, 0.8);
/// Default truck body (length, height, width), metres, when the layout gives no size.
const TRUCK_SIZE_M: Vec3 = Vec3::new(8.0, 3.0, 2.5);
/// Smallest on-screen length of an AGV, logical pixels.
const AGV_MIN_PX: f32 = 16.0;
/// Smallest on-screen length of a truck, logical pixels (larger than an AGV's, so the
/// two still read as different vehicles at site zoom).
const TRUCK_MIN_PX: f32 = 26.0;
/// Largest growth factor (a guard against degenerate cameras).
const MAX_GROWTH: f32 = 400.0;
/// Relative scale change below which a vehicle's transform is left alone (so a still
/// camera and a still vehicle mark nothing changed).
const SCALE_TOLERANCE: f32 = 0.01;

/// Vehicle models, colours by state and the minimum on-screen size.
pub struct VehiclePlugin;

impl Plugin for VehiclePlugin {
    fn build(&self, app: &mut App) {
        app.add_systems(Startup, load_vehicle_assets).add_systems(
            Update,
            (
                // Also right after a rebuild: new vehicles start with the idle model.
                colour_vehicles
                    .run_if(resource_changed::<LiveState>.or_eager(on_message::<crate::net::LayoutChanged>)),
                // Before motion places the vehicle, which lifts it by half its height.
                size_vehicles.before(crate::motion::move_vehicles),
            )
                .after(crate::site::build_site),
        );
    }
}

/// Shared vehicle meshes (by kind and state) and the one white material.
#[derive(Resource)]
pub struct VehicleAssets {
    /// Indexed by `mesh_slot(kind, state)`.
    meshes: Vec<Handle<Mesh>>,
    material: Handle<StandardMaterial>,
}

/// Vehicle kinds in the order of `VehicleAssets::meshes`.
const KINDS: [VehicleKind; 2] = [VehicleKind::Agv, VehicleKind::Truck];

fn mesh_slot(kind: VehicleKind, state: VehicleStateKind) -> usize {
    let kind = KINDS.iter().position(|&k| k == kind).unwrap_or(0);
    kind * VEHICLE_STATES.len() + vehicle_state_slot(state)
}

/// A vehicle's true body size and kind, from the layout.
#[derive(Component, Debug, Clone, Copy, PartialEq)]
pub struct VehicleBody {
    /// AGV or truck.
    pub kind: VehicleKind,
    /// (length, height, width), metres.
    pub size: Vec3,
}

fn load_vehicle_assets(
    mut commands: Commands,
    mut meshes: ResMut<Assets<Mesh>>,
    mut materials: ResMut<Assets<StandardMaterial>>,
) {
    let mut handles = Vec::with_capacity(KINDS.len() * VEHICLE_STATES.len());
    for kind in KINDS {
        for state in VEHICLE_STATES {
            handles.push(meshes.add(vehicle_mesh(kind, state)));
        }
    }
    let material =
        materials.add(StandardMaterial { base_color: Color::WHITE, perceptual_roughness: 0.6, ..default() });
    commands.insert_resource(VehicleAssets { meshes: handles, material });
}

/// Spawns the layout's vehicles, hidden until the first state places them.
pub(crate) fn spawn_vehicles(
    commands: &mut Commands,
    assets: &VehicleAssets,
    layout: &Layout,
    entities: &mut SiteEntities,
) {
    for vehicle in &layout.vehicles {
        let kind = match vehicle.kind() {
            VehicleKind::Truck => VehicleKind::Truck,
            _ => VehicleKind::Agv,
        };
        let default_size = if kind == VehicleKind::Truck { TRUCK_SIZE_M } else { AGV_SIZE_M };
        let length = finite(vehicle.length_m);
        let width = finite(vehicle.width_m);
        // Local +x is the body's forward axis, so the size is (length, height, width).
        let size = Vec3::new(
            if length > 0.0 { length } else { default_size.x },
            default_size.y,
            if width > 0.0 { width } else { default_size.z },
        );
        let entity = commands
            .spawn((
                SiteEntity,
                VehicleIndex(vehicle.index),
                VehicleBody { kind, size },
                SeenRev::default(),
                MotionTrack::default(),
                Mesh3d(assets.meshes[mesh_slot(kind, VehicleStateKind::Idle)].clone()),
                MeshMaterial3d(assets.material.clone()),
                Transform::from_scale(size),
                // Hidden until the first state places it.
                Visibility::Hidden,
            ))
            .id();
        entities.vehicles.push(entity);
    }
}

/// Swaps each changed vehicle's mesh for its (kind, state) model.
fn colour_vehicles(
    live: Res<LiveState>,
    assets: Res<VehicleAssets>,
    mut vehicles: Query<(&VehicleIndex, &VehicleBody, &mut SeenRev, &mut Mesh3d)>,
) {
    for (index, body, mut seen, mut mesh) in &mut vehicles {
        let i = index.0 as usize;
        let (Some(state), Some(&rev)) = (live.vehicles.get(i), live.vehicle_rev.get(i)) else {
            continue;
        };
        if rev == seen.0 {
            continue;
        }
        seen.0 = rev;
        let state = VehicleStateKind::try_from(state.state).unwrap_or_default();
        let handle = &assets.meshes[mesh_slot(body.kind, state)];
        if &mesh.0 != handle {
            mesh.0 = handle.clone();
        }
    }
}

/// What the minimum-size rule needs to know about the view.
#[derive(Debug, Clone, Copy)]
pub struct ViewScale {
    /// Camera position, world.
    pub eye: Vec3,
    /// Unit view direction, world.
    pub forward: Vec3,
    /// Logical pixels per metre at one metre of view depth:
    /// `viewport height / (2 tan(fov_y / 2))`.
    pub px_per_m_at_1m: f32,
}

impl ViewScale {
    /// The view of a perspective camera, if it has a viewport size yet.
    pub fn of(camera: &Camera, transform: &GlobalTransform, projection: &Projection) -> Option<Self> {
        let Projection::Perspective(perspective) = projection else {
            return None;
        };
        let height = camera.logical_viewport_size()?.y;
        let half_tan = (perspective.fov * 0.5).tan();
        (height > 0.0 && half_tan > 0.0).then(|| Self {
            eye: transform.translation(),
            forward: *transform.forward(),
            px_per_m_at_1m: height / (2.0 * half_tan),
        })
    }

    /// Factor by which a body `length_m` long at `position` must grow to span at least
    /// `min_px` logical pixels; 1 when it already does.
    pub fn growth(&self, position: Vec3, length_m: f32, min_px: f32) -> f32 {
        let depth = (position - self.eye).dot(self.forward);
        if !depth.is_finite() || depth <= 0.0 || length_m <= 0.0 {
            return 1.0;
        }
        let px = length_m * self.px_per_m_at_1m / depth;
        (min_px / px).clamp(1.0, MAX_GROWTH)
    }
}

/// Grows every vehicle to its minimum on-screen size (uniformly, so it keeps its shape).
/// Runs every frame but writes a transform only when the size changes noticeably.
fn size_vehicles(
    cameras: Query<(&Camera, &GlobalTransform, &Projection)>,
    mut vehicles: Query<(&VehicleBody, &mut Transform)>,
) {
    let view = cameras.iter().find_map(|(camera, transform, projection)| {
        camera.is_active.then(|| ViewScale::of(camera, transform, projection)).flatten()
    });
    for (body, mut transform) in &mut vehicles {
        let min_px = if body.kind == VehicleKind::Truck { TRUCK_MIN_PX } else { AGV_MIN_PX };
        let length = body.size.x.max(body.size.z);
        let growth = view.map_or(1.0, |v| v.growth(transform.translation, length, min_px));
        let wanted = body.size * growth;
        if (transform.scale.x - wanted.x).abs() > SCALE_TOLERANCE * wanted.x {
            transform.scale = wanted;
        }
    }
}

#[cfg(test)]
mod tests {
    use twin_proto::v1::{StateFrame, Vehicle, VehicleState};

    use super::*;
    use crate::model::SiteLayout;
    use crate::net::LayoutChanged;
    use crate::stacks::tests::headless_camera;

    #[test]
    fn growth_keeps_a_minimum_pixel_size_and_never_shrinks() {
        let view =
            ViewScale { eye: Vec3::ZERO, forward: Vec3::NEG_Z, px_per_m_at_1m: 720.0 / (2.0 * 0.4142) };
        // 1.2 m at 760 m depth is about 1.4 px: it must grow to 16 px.
        let g = view.growth(Vec3::new(0.0, 0.0, -760.0), 1.2, 16.0);
        let px = 1.2 * g * view.px_per_m_at_1m / 760.0;
        assert!((px - 16.0).abs() < 1e-3, "{px}");
        // Close up it keeps its true size.
        assert_eq!(view.growth(Vec3::new(0.0, 0.0, -5.0), 1.2, 16.0), 1.0);
        // Behind the camera or degenerate: unchanged.
        assert_eq!(view.growth(Vec3::new(0.0, 0.0, 5.0), 1.2, 16.0), 1.0);
        assert_eq!(view.growth(Vec3::new(0.0, 0.0, -5.0), 0.0, 16.0), 1.0);
    }

    fn vehicle_app() -> App {
        let mut app = App::new();
        app.add_plugins(MinimalPlugins)
            .init_resource::<Assets<Mesh>>()
            .init_resource::<Assets<StandardMaterial>>()
            .add_message::<LayoutChanged>()
            .add_plugins((crate::site::SitePlugin, crate::motion::MotionPlugin));
        let layout = Layout {
            layout_generation: 1,
            vehicles: vec![
                Vehicle { index: 0, kind: VehicleKind::Agv as i32, length_m: 1.2, width_m: 0.8, ..default() },
                Vehicle {
                    index: 1,
                    kind: VehicleKind::Truck as i32,
                    length_m: 10.0,
                    width_m: 2.5,
                    ..default()
                },
            ],
            ..default()
        };
        let frame = StateFrame {
            seq: 1,
            full: true,
            layout_generation: 1,
            vehicles: vec![
                VehicleState {
                    index: 0,
                    x: 0.0,
                    y: 0.0,
                    state: VehicleStateKind::Loading as i32,
                    ..default()
                },
                VehicleState { index: 1, x: 30.0, y: 0.0, ..default() },
            ],
            ..default()
        };
        let live = crate::model::live_for(&layout, Some(&frame));
        app.insert_resource(live).insert_resource(SiteLayout { layout: Some(layout) });
        app.update();
        app.world_mut().write_message(LayoutChanged);
        app.update();
        // The next frame places the vehicles that now exist.
        let delta =
            StateFrame { seq: 2, layout_generation: 1, vehicles: frame.vehicles.clone(), ..default() };
        app.world_mut().resource_mut::<LiveState>().apply_frame(&delta, Some(1)).expect("delta applies");
        app.update();
        app
    }

    fn pixels_long(app: &App, vehicle: Entity, view: &ViewScale) -> f32 {
        let t = app.world().get::<Transform>(vehicle).expect("transform");
        let depth = (t.translation - view.eye).dot(view.forward);
        t.scale.x.max(t.scale.z) * view.px_per_m_at_1m / depth
    }

    #[test]
    fn vehicles_keep_their_minimum_size_at_site_zoom_and_true_size_up_close() {
        let mut app = vehicle_app();
        let vehicles = app.world().resource::<SiteEntities>().vehicles.clone();
        let size = UVec2::new(1280, 720);
        // Site zoom: the camera 800 m away.
        let camera = headless_camera(app.world_mut(), Vec3::new(0.0, 560.0, 570.0), Vec3::ZERO, size);
        app.update();
        app.update();
        let view = {
            let w = app.world();
            let (c, t, p) =
                (w.get::<Camera>(camera), w.get::<GlobalTransform>(camera), w.get::<Projection>(camera));
            ViewScale::of(c.expect("camera"), t.expect("transform"), p.expect("projection")).expect("view")
        };
        let agv = pixels_long(&app, vehicles[0], &view);
        let truck = pixels_long(&app, vehicles[1], &view);
        assert!(agv >= AGV_MIN_PX * 0.98, "AGV spans {agv} px at site zoom");
        assert!(truck >= TRUCK_MIN_PX * 0.98 && truck > agv, "truck spans {truck} px");
        // Resting on the floor whatever its size.
        let t = app.world().get::<Transform>(vehicles[0]).expect("transform");
        assert!((t.translation.y - (0.1 + t.scale.y * 0.5)).abs() < 1e-3, "{t:?}");
        // Close up: the true size.
        let eye = Vec3::new(0.0, 6.0, 6.0);
        let new = Transform::from_translation(eye).looking_at(Vec3::ZERO, Vec3::Y);
        app.world_mut().entity_mut(camera).insert((new, GlobalTransform::from(new)));
        app.update();
        let scale = app.world().get::<Transform>(vehicles[0]).expect("transform").scale;
        assert_eq!(scale, Vec3::new(1.2, AGV_SIZE_M.y, 0.8));
    }

    #[test]
    fn the_mesh_shows_the_vehicle_state() {
        let app = vehicle_app();
        let vehicles = app.world().resource::<SiteEntities>().vehicles.clone();
        let assets = app.world().resource::<VehicleAssets>();
        let mesh = |i: usize| app.world().get::<Mesh3d>(vehicles[i]).expect("mesh").0.clone();
        assert_eq!(mesh(0), assets.meshes[mesh_slot(VehicleKind::Agv, VehicleStateKind::Loading)]);
        assert_eq!(mesh(1), assets.meshes[mesh_slot(VehicleKind::Truck, VehicleStateKind::Unspecified)]);
        assert_ne!(
            mesh_slot(VehicleKind::Agv, VehicleStateKind::Idle),
            mesh_slot(VehicleKind::Truck, VehicleStateKind::Idle)
        );
    }
}
