//! `SelectionPlugin`: left-click picks a station or vehicle (ray against the boxes of the
//! drawn bodies, so it needs no picking backend and costs nothing per frame); the HUD shows
//! the selection's details and the trainer actions. Escape clears the selection.

use bevy::prelude::*;
use bevy_egui::input::EguiWantsInput;

use crate::site::{SiteEntities, StationIndex, VehicleIndex};

/// A press that moves less than this before release is a click, pixels.
const CLICK_SLOP_PX: f32 = 5.0;
/// Vehicles are easier to hit with this much padding around their body, metres.
const VEHICLE_PICK_PADDING_M: f32 = 0.5;
/// Extra size of the selection outline around the selected body, metres.
const OUTLINE_MARGIN_M: f32 = 0.6;

/// Click-to-select for stations and vehicles.
pub struct SelectionPlugin;

impl Plugin for SelectionPlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<Selection>()
            .add_systems(Startup, spawn_outline)
            .add_systems(Update, (pick_on_click, outline_selection).chain());
    }
}

/// What is selected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selected {
    /// A station, by `Station.index`.
    Station(u32),
    /// A vehicle, by `Vehicle.index`.
    Vehicle(u32),
}

/// The current selection, if any.
#[derive(Resource, Debug, Default)]
pub struct Selection {
    /// `None` when nothing is selected.
    pub selected: Option<Selected>,
}

/// The translucent box drawn around the selection.
#[derive(Component)]
pub struct SelectionOutline;

/// Distance along the ray to an axis-aligned box, if the ray hits it (slab method).
pub fn ray_hits_box(origin: Vec3, dir: Vec3, min: Vec3, max: Vec3) -> Option<f32> {
    let mut t_near = f32::NEG_INFINITY;
    let mut t_far = f32::INFINITY;
    for axis in 0..3 {
        let (o, d, lo, hi) = (origin[axis], dir[axis], min[axis], max[axis]);
        if d.abs() < 1e-9 {
            if o < lo || o > hi {
                return None;
            }
            continue;
        }
        let (t1, t2) = ((lo - o) / d, (hi - o) / d);
        t_near = t_near.max(t1.min(t2));
        t_far = t_far.min(t1.max(t2));
    }
    (t_near <= t_far && t_far >= 0.0).then_some(t_near.max(0.0))
}

/// Axis-aligned box around a body, from its transform (rotation ignored, so the box uses
/// the larger horizontal side both ways).
fn body_box(transform: &Transform, padding: f32, ignore_rotation: bool) -> (Vec3, Vec3) {
    let mut half = transform.scale * 0.5;
    if ignore_rotation {
        let side = half.x.max(half.z);
        half.x = side;
        half.z = side;
    }
    half += Vec3::splat(padding);
    (transform.translation - half, transform.translation + half)
}

fn spawn_outline(
    mut commands: Commands,
    mut meshes: ResMut<Assets<Mesh>>,
    mut materials: ResMut<Assets<StandardMaterial>>,
) {
    commands.spawn((
        SelectionOutline,
        Mesh3d(meshes.add(Cuboid::new(1.0, 1.0, 1.0))),
        MeshMaterial3d(materials.add(StandardMaterial {
            base_color: Color::srgba(1.0, 1.0, 1.0, 0.25),
            alpha_mode: AlphaMode::Blend,
            unlit: true,
            ..default()
        })),
        Transform::default(),
        Visibility::Hidden,
    ));
}

#[allow(clippy::too_many_arguments)]
fn pick_on_click(
    buttons: Res<ButtonInput<MouseButton>>,
    keys: Res<ButtonInput<KeyCode>>,
    windows: Query<&Window>,
    cameras: Query<(&Camera, &GlobalTransform)>,
    egui_input: Option<Res<EguiWantsInput>>,
    stations: Query<(&StationIndex, &Transform)>,
    vehicles: Query<(&VehicleIndex, &Transform, &Visibility)>,
    mut pressed_at: Local<Option<Vec2>>,
    mut selection: ResMut<Selection>,
) {
    if keys.just_pressed(KeyCode::Escape) {
        selection.selected = None;
    }
    let Some(cursor) = windows.iter().find_map(Window::cursor_position) else {
        return;
    };
    let over_ui = egui_input.is_some_and(|e| e.wants_any_pointer_input());
    if buttons.just_pressed(MouseButton::Left) {
        *pressed_at = (!over_ui).then_some(cursor);
    }
    if !buttons.just_released(MouseButton::Left) {
        return;
    }
    let Some(start) = pressed_at.take() else {
        return;
    };
    if start.distance(cursor) > CLICK_SLOP_PX {
        return;
    }
    let Some(ray) = cameras.iter().find_map(|(camera, gt)| camera.viewport_to_world(gt, cursor).ok()) else {
        return;
    };
    let (origin, dir) = (ray.origin, *ray.direction);
    let mut best: Option<(f32, Selected)> = None;
    let mut consider = |t: Option<f32>, what: Selected| {
        if let Some(t) = t
            && best.is_none_or(|(b, _)| t < b)
        {
            best = Some((t, what));
        }
    };
    for (index, transform, visibility) in &vehicles {
        if *visibility == Visibility::Hidden {
            continue;
        }
        let (min, max) = body_box(transform, VEHICLE_PICK_PADDING_M, true);
        consider(ray_hits_box(origin, dir, min, max), Selected::Vehicle(index.0));
    }
    for (index, transform) in &stations {
        let (min, max) = body_box(transform, 0.0, false);
        consider(ray_hits_box(origin, dir, min, max), Selected::Station(index.0));
    }
    selection.selected = best.map(|(_, what)| what);
}

fn outline_selection(
    selection: Res<Selection>,
    entities: Res<SiteEntities>,
    bodies: Query<&Transform, Without<SelectionOutline>>,
    mut outline: Query<(&mut Transform, &mut Visibility), With<SelectionOutline>>,
) {
    let Ok((mut transform, mut visibility)) = outline.single_mut() else {
        return;
    };
    let entity = match selection.selected {
        Some(Selected::Station(i)) => entities.stations.get(i as usize),
        Some(Selected::Vehicle(i)) => entities.vehicles.get(i as usize),
        None => None,
    };
    match entity.and_then(|e| bodies.get(*e).ok()) {
        // Runs every frame: write only what changed, so a still outline costs nothing
        // downstream (transform propagation, render extraction).
        Some(body) => {
            transform.set_if_neq(body.with_scale(body.scale + Vec3::splat(OUTLINE_MARGIN_M)));
            visibility.set_if_neq(Visibility::Inherited);
        }
        None => {
            visibility.set_if_neq(Visibility::Hidden);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ray_box_hits_and_misses() {
        let (min, max) = (Vec3::new(-1.0, 0.0, -1.0), Vec3::new(1.0, 2.0, 1.0));
        let down = Vec3::new(0.0, -1.0, 0.0);
        assert_eq!(ray_hits_box(Vec3::new(0.0, 10.0, 0.0), down, min, max), Some(8.0));
        assert_eq!(ray_hits_box(Vec3::new(5.0, 10.0, 0.0), down, min, max), None);
        // A box behind the ray's origin is not hit.
        assert_eq!(ray_hits_box(Vec3::new(0.0, -5.0, 0.0), down, min, max), None);
    }
}
