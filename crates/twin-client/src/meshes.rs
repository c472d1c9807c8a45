//! Procedural models of stations and vehicles, built once from Bevy primitives and merged
//! into one mesh per model, so that every station of a kind (and every vehicle of a kind
//! and state) shares one mesh and the GPU draws them instanced.
//!
//! Every model fills the unit box (-0.5..0.5 on each axis): the entity's transform scales
//! it to the footprint and height, so picking and the selection outline, which use the
//! transform's scale as the body's box, stay right for every shape.
//!
//! Colour comes from vertex colours multiplied by the material's base colour (how Bevy's
//! `StandardMaterial` treats `Mesh::ATTRIBUTE_COLOR`): a station's body parts are white,
//! so they show the shared state material's colour, and its trim parts are dark grey, so
//! the shape reads while the state colour dominates. Vehicles bake their kind and state
//! colours into the mesh and share one white material.

use bevy::prelude::*;
use twin_proto::v1::{StationKind, VehicleKind, VehicleStateKind};

use crate::palette::vehicle_kind_rgb;
use crate::palette::vehicle_state_rgb;

/// Vertex colour of trim parts of station models (spindles, chimneys, posts): a dark
/// grey that darkens the state colour so the trim reads as machinery.
const TRIM_SHADE: f32 = 0.35;

/// Which procedural model draws a station.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StationModel {
    /// Machine body with a column, head and spindle.
    Machine,
    /// Floor plate, pedestal and a two-segment robot arm.
    RobotCell,
    /// Tall insulated box with a chimney.
    Oven,
    /// Low bench under an arch-shaped gantry with a camera head.
    Inspection,
    /// Rack of shelves on four uprights.
    Storage,
    /// A plain block (assembly, packaging, manual, other).
    Block,
}

/// Every model, in the order of `SiteAssets`' station meshes.
pub const STATION_MODELS: [StationModel; 6] = [
    StationModel::Machine,
    StationModel::RobotCell,
    StationModel::Oven,
    StationModel::Inspection,
    StationModel::Storage,
    StationModel::Block,
];

/// The model that draws a station kind; unknown kinds draw as a block.
pub fn station_model(kind: StationKind) -> StationModel {
    match kind {
        StationKind::Machine => StationModel::Machine,
        StationKind::RobotCell => StationModel::RobotCell,
        StationKind::Oven => StationModel::Oven,
        StationKind::Inspection => StationModel::Inspection,
        StationKind::Storage => StationModel::Storage,
        StationKind::Assembly
        | StationKind::Packaging
        | StationKind::Manual
        | StationKind::Other
        | StationKind::Unspecified => StationModel::Block,
    }
}

/// Position of a model in [`STATION_MODELS`].
pub fn station_model_slot(model: StationModel) -> usize {
    STATION_MODELS.iter().position(|&m| m == model).unwrap_or(STATION_MODELS.len() - 1)
}

/// Station height by kind, metres: tall ovens and racks, low inspection benches. The
/// layout gives footprints only; heights are typical of each kind.
pub fn station_height(kind: StationKind) -> f32 {
    match kind {
        StationKind::Machine => 2.4,
        StationKind::RobotCell => 2.6,
        StationKind::Oven => 4.0,
        StationKind::Inspection => 2.2,
        StationKind::Assembly => 1.6,
        StationKind::Packaging => 1.4,
        StationKind::Manual => 1.0,
        StationKind::Storage => 4.0,
        StationKind::Other | StationKind::Unspecified => 1.5,
    }
}

/// How a part is coloured.
#[derive(Debug, Clone, Copy)]
enum Tint {
    /// Takes the material's colour unchanged (the station's state).
    Body,
    /// Darkened material colour (machinery detail).
    Trim,
    /// A fixed sRGB colour (vehicles, whose material is white).
    Rgb([u8; 3]),
}

impl Tint {
    fn linear(self) -> [f32; 4] {
        match self {
            Tint::Body => [1.0; 4],
            Tint::Trim => [TRIM_SHADE, TRIM_SHADE, TRIM_SHADE, 1.0],
            Tint::Rgb([r, g, b]) => Color::srgb_u8(r, g, b).to_linear().to_f32_array(),
        }
    }
}

/// Builds a merged mesh from parts, each with its vertex colour.
struct ModelBuilder {
    mesh: Option<Mesh>,
}

impl ModelBuilder {
    fn new() -> Self {
        Self { mesh: None }
    }

    fn add(&mut self, part: Mesh, transform: Transform, tint: Tint) {
        let part = part.transformed_by(transform);
        let n = part.count_vertices();
        let part = part.with_inserted_attribute(Mesh::ATTRIBUTE_COLOR, vec![tint.linear(); n]);
        match &mut self.mesh {
            None => self.mesh = Some(part),
            // Same primitive topology and attributes (position, normal, uv, colour) for
            // every part, so merging cannot fail; a failure would only drop the part.
            Some(mesh) => {
                if let Err(e) = mesh.merge(&part) {
                    warn!("model part not merged: {e}");
                }
            }
        }
    }

    /// An axis-aligned box from `min` to `max` (unit-box coordinates).
    fn cuboid(&mut self, min: Vec3, max: Vec3, tint: Tint) {
        let size = (max - min).abs();
        self.add(Mesh::from(Cuboid::from_size(size)), Transform::from_translation((min + max) * 0.5), tint);
    }

    /// A vertical cylinder standing on `base` (centre of its bottom face).
    fn cylinder(&mut self, base: Vec3, radius: f32, height: f32, tint: Tint) {
        let mesh = Cylinder::new(radius, height).mesh().resolution(16).build();
        self.add(mesh, Transform::from_translation(base + Vec3::Y * height * 0.5), tint);
    }

    /// A square bar of side `thickness` from `a` to `b`.
    fn bar(&mut self, a: Vec3, b: Vec3, thickness: f32, tint: Tint) {
        let d = b - a;
        let length = d.length();
        if length < 1e-4 {
            return;
        }
        let transform = Transform::from_translation((a + b) * 0.5)
            .with_rotation(Quat::from_rotation_arc(Vec3::Y, d / length));
        self.add(Mesh::from(Cuboid::new(thickness, length, thickness)), transform, tint);
    }

    fn build(self) -> Mesh {
        self.mesh.unwrap_or_else(|| Mesh::from(Cuboid::new(1.0, 1.0, 1.0)))
    }
}

/// The merged unit-box mesh of a station model.
pub fn station_mesh(model: StationModel) -> Mesh {
    let mut m = ModelBuilder::new();
    let (body, trim) = (Tint::Body, Tint::Trim);
    match model {
        StationModel::Machine => {
            // Enclosure over the whole footprint, a column at the back carrying the head,
            // the spindle hanging from it over the work area.
            m.cuboid(Vec3::new(-0.5, -0.5, -0.5), Vec3::new(0.5, 0.15, 0.5), body);
            m.cuboid(Vec3::new(0.18, 0.15, -0.2), Vec3::new(0.45, 0.5, 0.2), trim);
            m.cuboid(Vec3::new(-0.2, 0.32, -0.1), Vec3::new(0.18, 0.45, 0.1), trim);
            m.cylinder(Vec3::new(-0.1, 0.15, 0.0), 0.06, 0.2, trim);
        }
        StationModel::RobotCell => {
            // Floor plate over the footprint, pedestal, two arm segments and a gripper.
            m.cuboid(Vec3::new(-0.5, -0.5, -0.5), Vec3::new(0.5, -0.4, 0.5), body);
            m.cylinder(Vec3::new(0.0, -0.4, 0.0), 0.14, 0.2, trim);
            let (shoulder, elbow, wrist) =
                (Vec3::new(0.0, -0.2, 0.0), Vec3::new(0.12, 0.42, 0.0), Vec3::new(0.4, 0.1, 0.0));
            m.bar(shoulder, elbow, 0.13, body);
            m.bar(elbow, wrist, 0.1, body);
            m.cuboid(wrist + Vec3::new(-0.05, -0.12, -0.06), wrist + Vec3::new(0.05, 0.0, 0.06), trim);
        }
        StationModel::Oven => {
            // Tall box with a door on its south face and a chimney on the roof.
            m.cuboid(Vec3::new(-0.5, -0.5, -0.5), Vec3::new(0.5, 0.3, 0.5), body);
            m.cuboid(Vec3::new(-0.3, -0.45, 0.5), Vec3::new(0.3, 0.15, 0.53), trim);
            m.cylinder(Vec3::new(0.28, 0.3, -0.2), 0.1, 0.2, trim);
        }
        StationModel::Inspection => {
            // Bench top on four legs, a gantry arch over it with a camera head.
            m.cuboid(Vec3::new(-0.45, -0.2, -0.4), Vec3::new(0.45, -0.08, 0.4), body);
            for (x, z) in [(-0.4, -0.35), (0.4, -0.35), (-0.4, 0.35), (0.4, 0.35)] {
                m.cuboid(Vec3::new(x - 0.03, -0.5, z - 0.03), Vec3::new(x + 0.03, -0.2, z + 0.03), trim);
            }
            m.cuboid(Vec3::new(-0.5, -0.5, -0.06), Vec3::new(-0.42, 0.4, 0.06), trim);
            m.cuboid(Vec3::new(0.42, -0.5, -0.06), Vec3::new(0.5, 0.4, 0.06), trim);
            m.cuboid(Vec3::new(-0.5, 0.4, -0.08), Vec3::new(0.5, 0.5, 0.08), body);
            m.cuboid(Vec3::new(-0.06, 0.2, -0.06), Vec3::new(0.06, 0.4, 0.06), trim);
        }
        StationModel::Storage => {
            // Four uprights and four shelves.
            for (x, z) in [(-0.5, -0.5), (0.44, -0.5), (-0.5, 0.44), (0.44, 0.44)] {
                m.cuboid(Vec3::new(x, -0.5, z), Vec3::new(x + 0.06, 0.5, z + 0.06), trim);
            }
            for y in [-0.5, -0.18, 0.14, 0.44] {
                m.cuboid(Vec3::new(-0.5, y, -0.5), Vec3::new(0.5, y + 0.06, 0.5), body);
            }
        }
        StationModel::Block => {
            m.cuboid(Vec3::splat(-0.5), Vec3::splat(0.5), body);
        }
    }
    m.build()
}

/// The merged unit-box mesh of a vehicle of `kind` in `state` (local +x forward): the
/// body in the kind's saturated colour, so vehicles stand out from everything else on
/// the site, and a roof patch in the state's colour.
pub fn vehicle_mesh(kind: VehicleKind, state: VehicleStateKind) -> Mesh {
    let mut m = ModelBuilder::new();
    let body = Tint::Rgb(vehicle_kind_rgb(kind));
    let roof = Tint::Rgb(vehicle_state_rgb(state));
    match kind {
        VehicleKind::Truck => {
            // Cab at the front, a lower gap, the box body behind with the state on top.
            m.cuboid(Vec3::new(0.22, -0.5, -0.5), Vec3::new(0.5, 0.2, 0.5), body);
            m.cuboid(Vec3::new(-0.5, -0.5, -0.5), Vec3::new(0.18, 0.4, 0.5), body);
            m.cuboid(Vec3::new(-0.4, 0.4, -0.3), Vec3::new(0.08, 0.5, 0.3), roof);
        }
        VehicleKind::Agv | VehicleKind::Unspecified => {
            // Flat chassis with the state patch on top and a nose marking the front.
            m.cuboid(Vec3::new(-0.5, -0.5, -0.5), Vec3::new(0.5, 0.2, 0.5), body);
            m.cuboid(Vec3::new(-0.3, 0.2, -0.3), Vec3::new(0.2, 0.5, 0.3), roof);
        }
    }
    m.build()
}

/// Unit-box bounds of a mesh's positions, if it has any.
pub fn mesh_bounds(mesh: &Mesh) -> Option<(Vec3, Vec3)> {
    let positions = mesh.attribute(Mesh::ATTRIBUTE_POSITION)?.as_float3()?;
    let mut bounds: Option<(Vec3, Vec3)> = None;
    for p in positions {
        let p = Vec3::from_array(*p);
        bounds = Some(bounds.map_or((p, p), |(lo, hi)| (lo.min(p), hi.max(p))));
    }
    bounds
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_model_fills_the_unit_box_and_has_colours() {
        for model in STATION_MODELS {
            let mesh = station_mesh(model);
            let (lo, hi) = mesh_bounds(&mesh).expect("positions");
            assert!(
                lo.cmpge(Vec3::splat(-0.5 - 1e-4)).all() && hi.cmple(Vec3::splat(0.5 + 0.04)).all(),
                "{model:?}: {lo} {hi}"
            );
            assert!((lo.y + 0.5).abs() < 1e-4, "{model:?} stands on the floor");
            let n = mesh.count_vertices();
            let colours = mesh.attribute(Mesh::ATTRIBUTE_COLOR).expect("vertex colours");
            assert_eq!(colours.len(), n, "{model:?}: one colour per vertex");
        }
    }

    #[test]
    fn models_differ_by_kind() {
        let counts: Vec<usize> = STATION_MODELS.iter().map(|&m| station_mesh(m).count_vertices()).collect();
        for (i, a) in counts.iter().enumerate() {
            for b in &counts[i + 1..] {
                assert_ne!(a, b, "two models with the same vertex count: {counts:?}");
            }
        }
        assert_eq!(station_model(StationKind::Oven), StationModel::Oven);
        assert_eq!(station_model(StationKind::Assembly), StationModel::Block);
        assert!(station_height(StationKind::Oven) > station_height(StationKind::Inspection));
    }

    #[test]
    fn vehicle_meshes_carry_the_kind_colour() {
        let mesh = vehicle_mesh(VehicleKind::Agv, VehicleStateKind::Idle);
        let kind = Tint::Rgb(vehicle_kind_rgb(VehicleKind::Agv)).linear();
        let Some(bevy::mesh::VertexAttributeValues::Float32x4(colours)) =
            mesh.attribute(Mesh::ATTRIBUTE_COLOR)
        else {
            panic!("vertex colours");
        };
        let kind_share = colours.iter().filter(|c| **c == kind).count() as f32 / colours.len() as f32;
        assert!(kind_share >= 0.5, "the body colour dominates: {kind_share}");
        let (lo, hi) = mesh_bounds(&mesh).expect("positions");
        assert_eq!((lo, hi), (Vec3::splat(-0.5), Vec3::splat(0.5)));
    }
}
