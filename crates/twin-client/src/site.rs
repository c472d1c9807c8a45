//! `SitePlugin`: turns the layout into meshes (ground, roads, AGV paths, factories,
//! stations, buffers, flow lines, vehicles) and keeps their colours and sizes in step with
//! the live state. Every entity of a kind shares one mesh and a small set of materials,
//! so Bevy batches them; state changes swap material handles instead of creating assets.
//! Stations are drawn by kind with the procedural models of `meshes.rs`.
//!
//! Hook for other plugins: [`StationMaterialOverride`] on a station entity replaces its
//! state colour (the heat-map mode uses it).

use bevy::light::NotShadowCaster;
use bevy::prelude::*;
use twin_proto::v1::{EndpointKind, Layout, VehicleStateKind};

use crate::meshes::{STATION_MODELS, station_height, station_mesh, station_model, station_model_slot};
use crate::model::{LiveState, SiteLayout};
use crate::net::LayoutChanged;
use crate::palette::{
    STATION_STATES, VEHICLE_STATES, station_state_colour, station_state_slot, vehicle_state_colour,
    vehicle_state_slot,
};

/// Ground margin around the site bounds, metres.
const GROUND_MARGIN_M: f32 = 40.0;
/// Width of drawn roads, metres.
const ROAD_WIDTH_M: f32 = 6.0;
/// Width of drawn AGV path segments, metres.
const PATH_WIDTH_M: f32 = 0.4;
/// Height of factory floor slabs, metres.
const FLOOR_HEIGHT_M: f32 = 0.1;
/// Smallest drawn station footprint side, metres (bad or missing sizes still show).
const MIN_STATION_SIZE_M: f32 = 0.5;
/// Height above ground at which flow lines float, metres.
const FLOW_LINE_HEIGHT_M: f32 = 4.5;
/// Thinnest and thickest flow line, metres.
const FLOW_WIDTH_RANGE_M: (f32, f32) = (0.05, 1.2);
/// Height of the hub's warehouse, metres.
const HUB_HEIGHT_M: f32 = 6.0;
/// Share of the hub's depth (its north part) covered by the warehouse; the rest is yard.
const HUB_WAREHOUSE_DEPTH_SHARE: f32 = 0.35;
/// Height of the bottleneck ring above the station top, metres.
const BOTTLENECK_RING_LIFT_M: f32 = 1.5;
/// Turns per second of the bottleneck ring.
const BOTTLENECK_SPIN_HZ: f32 = 0.3;

/// Draws the site and keeps it in step with the live state.
pub struct SitePlugin;

impl Plugin for SitePlugin {
    fn build(&self, app: &mut App) {
        app.add_plugins((
            crate::stacks::StackPlugin,
            crate::vehicles::VehiclePlugin,
            crate::labels::LabelPlugin,
        ))
        .init_resource::<SiteEntities>()
        .add_systems(Startup, (load_site_assets, spawn_lights))
        .add_systems(
            Update,
            (
                build_site.run_if(on_message::<LayoutChanged>),
                (colour_stations, size_flow_lines).run_if(resource_changed::<LiveState>),
                apply_material_overrides,
                highlight_bottleneck,
            )
                .chain(),
        );
    }
}

/// Shared meshes and materials, created once.
#[derive(Resource)]
pub struct SiteAssets {
    cube: Handle<Mesh>,
    /// Station models, indexed by `meshes::station_model_slot`.
    station_meshes: Vec<Handle<Mesh>>,
    cylinder: Handle<Mesh>,
    ring: Handle<Mesh>,
    ground: Handle<StandardMaterial>,
    road: Handle<StandardMaterial>,
    path: Handle<StandardMaterial>,
    floor: Handle<StandardMaterial>,
    hub: Handle<StandardMaterial>,
    source: Handle<StandardMaterial>,
    sink: Handle<StandardMaterial>,
    flow: Handle<StandardMaterial>,
    bottleneck: Handle<StandardMaterial>,
    /// Indexed by `palette::station_state_slot`.
    station_states: Vec<Handle<StandardMaterial>>,
    /// Indexed by `palette::vehicle_state_slot` (charger pads use the charging one).
    vehicle_states: Vec<Handle<StandardMaterial>>,
}

/// Entities of the current layout, by dense index, for O(1) lookups from state.
#[derive(Resource, Default)]
pub struct SiteEntities {
    /// Station body entities, indexed by `Station.index`.
    pub stations: Vec<Entity>,
    /// Vehicle entities, indexed by `Vehicle.index`.
    pub vehicles: Vec<Entity>,
}

/// Everything spawned from a layout; despawned when a new layout arrives.
#[derive(Component)]
pub struct SiteEntity;

/// A station body; the index into `Layout.stations`.
#[derive(Component, Debug, Clone, Copy)]
pub struct StationIndex(pub u32);

/// A vehicle body; the index into `Layout.vehicles`.
#[derive(Component, Debug, Clone, Copy)]
pub struct VehicleIndex(pub u32);

/// Which frame seq an entity's look was last updated from (skips unchanged entities).
#[derive(Component, Default)]
pub struct SeenRev(pub u64);

/// A flow line between two places, with what is needed to estimate its rate when the
/// server sends no per-link flows.
#[derive(Component)]
pub struct FlowLine {
    /// Index into `Layout.flow_links`.
    link: u32,
    /// Station whose throughput feeds this link (upstream, else downstream), if any.
    station: Option<u32>,
    /// Links sharing that station's throughput.
    share_divisor: f32,
}

/// Hook for other plugins (the heat-map mode): a station body entity (from
/// [`SiteEntities::stations`]) that has this component is drawn with this material
/// instead of its state's; removing the component brings the state colour back. Use a
/// few shared materials created once (e.g. a quantised colour ramp), never one per frame:
/// the station models are shared meshes, and the material multiplies their vertex colours
/// (white body, dark trim).
#[derive(Component, Debug, Clone, PartialEq)]
pub struct StationMaterialOverride(pub Handle<StandardMaterial>);

/// The ring that marks the current bottleneck.
#[derive(Component)]
pub struct BottleneckMarker;

/// Maps a site-frame point (x east, y north, metres) to Bevy's world (y up, -z north).
pub fn site_to_world(x: f64, y: f64, height: f32) -> Vec3 {
    Vec3::new(finite(x), height, -finite(y))
}

/// Converts a server number to f32, replacing NaN and infinities with 0.
pub fn finite(v: f64) -> f32 {
    let v = v as f32;
    if v.is_finite() { v } else { 0.0 }
}

fn material(materials: &mut Assets<StandardMaterial>, colour: Color) -> Handle<StandardMaterial> {
    materials.add(StandardMaterial { base_color: colour, perceptual_roughness: 0.8, ..default() })
}

fn load_site_assets(
    mut commands: Commands,
    mut meshes: ResMut<Assets<Mesh>>,
    mut materials: ResMut<Assets<StandardMaterial>>,
) {
    let station_states =
        STATION_STATES.iter().map(|&s| material(&mut materials, station_state_colour(s))).collect();
    let vehicle_states =
        VEHICLE_STATES.iter().map(|&s| material(&mut materials, vehicle_state_colour(s))).collect();
    let flow = materials.add(StandardMaterial {
        base_color: Color::srgba(0.2, 0.8, 1.0, 0.55),
        alpha_mode: AlphaMode::Blend,
        unlit: true,
        ..default()
    });
    let bottleneck = materials.add(StandardMaterial {
        base_color: Color::srgb(1.0, 0.15, 0.1),
        emissive: LinearRgba::rgb(6.0, 0.6, 0.2),
        ..default()
    });
    commands.insert_resource(SiteAssets {
        cube: meshes.add(Cuboid::new(1.0, 1.0, 1.0)),
        station_meshes: STATION_MODELS.iter().map(|&m| meshes.add(station_mesh(m))).collect(),
        cylinder: meshes.add(Cylinder::new(0.5, 1.0)),
        ring: meshes.add(Torus::new(0.8, 1.0)),
        ground: material(&mut materials, Color::srgb(0.32, 0.38, 0.30)),
        road: material(&mut materials, Color::srgb(0.22, 0.22, 0.24)),
        path: material(&mut materials, Color::srgb(0.85, 0.8, 0.3)),
        floor: material(&mut materials, Color::srgb(0.62, 0.64, 0.68)),
        hub: material(&mut materials, Color::srgb(0.55, 0.45, 0.35)),
        source: material(&mut materials, Color::srgb(0.3, 0.75, 0.95)),
        sink: material(&mut materials, Color::srgb(0.15, 0.35, 0.6)),
        flow,
        bottleneck,
        station_states,
        vehicle_states,
    });
}

fn spawn_lights(mut commands: Commands) {
    commands.insert_resource(GlobalAmbientLight {
        color: Color::WHITE,
        brightness: 400.0,
        affects_lightmapped_meshes: true,
    });
    commands.spawn((
        DirectionalLight { illuminance: 9000.0, shadow_maps_enabled: false, ..default() },
        Transform::from_xyz(50.0, 120.0, 80.0).looking_at(Vec3::ZERO, Vec3::Y),
    ));
}

/// Transform of a flat box from `a` to `b` (world points), `width` wide, `height` thick.
fn segment_transform(a: Vec3, b: Vec3, width: f32, height: f32) -> Option<Transform> {
    let d = b - a;
    let length = Vec2::new(d.x, d.z).length();
    if !length.is_finite() || length < 1e-3 {
        return None;
    }
    let yaw = (-d.z).atan2(d.x);
    Some(
        Transform::from_translation((a + b) * 0.5)
            .with_rotation(Quat::from_rotation_y(yaw))
            .with_scale(Vec3::new(length, height, width)),
    )
}

/// World position of a flow-link endpoint, if it exists in the layout.
fn endpoint_position(layout: &Layout, kind: EndpointKind, index: u32) -> Option<Vec3> {
    let i = index as usize;
    let (x, y) = match kind {
        EndpointKind::Station => layout.stations.get(i).map(|s| (s.x, s.y))?,
        EndpointKind::Source => layout.sources.get(i).map(|s| (s.x, s.y))?,
        EndpointKind::Sink => layout.sinks.get(i).map(|s| (s.x, s.y))?,
        EndpointKind::Hub => layout.hub.as_ref().map(|h| (h.x, h.y))?,
        EndpointKind::Unspecified => return None,
    };
    Some(site_to_world(x, y, FLOW_LINE_HEIGHT_M))
}

/// Despawns the previous site and spawns the new layout.
pub(crate) fn build_site(
    mut commands: Commands,
    assets: Res<SiteAssets>,
    vehicle_assets: Res<crate::vehicles::VehicleAssets>,
    site: Res<SiteLayout>,
    old: Query<Entity, With<SiteEntity>>,
    mut entities: ResMut<SiteEntities>,
) {
    for entity in &old {
        commands.entity(entity).despawn();
    }
    entities.stations.clear();
    entities.vehicles.clear();
    let Some(layout) = site.layout.as_ref() else {
        return;
    };

    spawn_ground(&mut commands, &assets, layout);
    spawn_networks(&mut commands, &assets, layout);
    spawn_buildings(&mut commands, &assets, layout);
    spawn_stations(&mut commands, &assets, layout, &mut entities);
    spawn_flow_lines(&mut commands, &assets, layout);
    crate::vehicles::spawn_vehicles(&mut commands, &vehicle_assets, layout, &mut entities);
    commands.spawn((
        SiteEntity,
        BottleneckMarker,
        Mesh3d(assets.ring.clone()),
        MeshMaterial3d(assets.bottleneck.clone()),
        Transform::default(),
        Visibility::Hidden,
        NotShadowCaster,
    ));
}

fn spawn_ground(commands: &mut Commands, assets: &SiteAssets, layout: &Layout) {
    let bounds = layout.site_bounds.unwrap_or_default();
    let (min, max) =
        (site_to_world(bounds.min_x, bounds.max_y, 0.0), site_to_world(bounds.max_x, bounds.min_y, 0.0));
    let size = (max - min).abs() + Vec3::splat(2.0 * GROUND_MARGIN_M);
    let centre = (min + max) * 0.5;
    commands.spawn((
        SiteEntity,
        Mesh3d(assets.cube.clone()),
        MeshMaterial3d(assets.ground.clone()),
        Transform::from_xyz(centre.x, -0.05, centre.z).with_scale(Vec3::new(size.x, 0.1, size.z)),
    ));
}

fn spawn_networks(commands: &mut Commands, assets: &SiteAssets, layout: &Layout) {
    if let Some(roads) = &layout.road_network {
        for edge in &roads.edges {
            let from = roads.nodes.iter().find(|n| n.id == edge.from_node_id);
            let to = roads.nodes.iter().find(|n| n.id == edge.to_node_id);
            let (Some(a), Some(b)) = (from, to) else {
                continue;
            };
            let (a, b) = (site_to_world(a.x, a.y, 0.01), site_to_world(b.x, b.y, 0.01));
            if let Some(t) = segment_transform(a, b, ROAD_WIDTH_M, 0.02) {
                commands.spawn((
                    SiteEntity,
                    Mesh3d(assets.cube.clone()),
                    MeshMaterial3d(assets.road.clone()),
                    t,
                    NotShadowCaster,
                ));
            }
        }
    }
    for graph in &layout.path_graphs {
        for edge in &graph.edges {
            let from = graph.nodes.iter().find(|n| n.id == edge.from_node_id);
            let to = graph.nodes.iter().find(|n| n.id == edge.to_node_id);
            let (Some(a), Some(b)) = (from, to) else {
                continue;
            };
            let lift = FLOOR_HEIGHT_M + 0.01;
            let (a, b) = (site_to_world(a.x, a.y, lift), site_to_world(b.x, b.y, lift));
            if let Some(t) = segment_transform(a, b, PATH_WIDTH_M, 0.01) {
                commands.spawn((
                    SiteEntity,
                    Mesh3d(assets.cube.clone()),
                    MeshMaterial3d(assets.path.clone()),
                    t,
                    NotShadowCaster,
                ));
            }
        }
        for node in graph.nodes.iter().filter(|n| n.charger) {
            commands.spawn((
                SiteEntity,
                Mesh3d(assets.cylinder.clone()),
                MeshMaterial3d(assets.vehicle_states[vehicle_state_slot(VehicleStateKind::Charging)].clone()),
                Transform::from_translation(site_to_world(node.x, node.y, FLOOR_HEIGHT_M))
                    .with_scale(Vec3::new(1.2, 0.05, 1.2)),
                NotShadowCaster,
            ));
        }
    }
}

fn spawn_buildings(commands: &mut Commands, assets: &SiteAssets, layout: &Layout) {
    for factory in &layout.factories {
        let (w, d) = (finite(factory.width_m).max(1.0), finite(factory.depth_m).max(1.0));
        let corner = site_to_world(factory.origin_x, factory.origin_y, FLOOR_HEIGHT_M * 0.5);
        commands.spawn((
            SiteEntity,
            Mesh3d(assets.cube.clone()),
            MeshMaterial3d(assets.floor.clone()),
            Transform::from_xyz(corner.x + w * 0.5, corner.y, corner.z - d * 0.5).with_scale(Vec3::new(
                w,
                FLOOR_HEIGHT_M,
                d,
            )),
        ));
    }
    if let Some(hub) = &layout.hub {
        // A low yard over the footprint with the warehouse on its north part: trucks stop
        // at the hub's road node, its centre, and must stay visible there.
        let (w, d) = (finite(hub.width_m).max(1.0), finite(hub.depth_m).max(1.0));
        commands.spawn((
            SiteEntity,
            Mesh3d(assets.cube.clone()),
            MeshMaterial3d(assets.floor.clone()),
            Transform::from_translation(site_to_world(hub.x, hub.y, FLOOR_HEIGHT_M * 0.5))
                .with_scale(Vec3::new(w, FLOOR_HEIGHT_M, d)),
        ));
        let depth = d * HUB_WAREHOUSE_DEPTH_SHARE;
        let north = f64::from(d * 0.5 - depth * 0.5);
        commands.spawn((
            SiteEntity,
            Mesh3d(assets.cube.clone()),
            MeshMaterial3d(assets.hub.clone()),
            Transform::from_translation(site_to_world(hub.x, hub.y + north, HUB_HEIGHT_M * 0.5))
                .with_scale(Vec3::new(w, HUB_HEIGHT_M, depth)),
        ));
    }
    for source in &layout.sources {
        commands.spawn((
            SiteEntity,
            Mesh3d(assets.cylinder.clone()),
            MeshMaterial3d(assets.source.clone()),
            Transform::from_translation(site_to_world(source.x, source.y, 0.5))
                .with_scale(Vec3::new(1.5, 1.0, 1.5)),
        ));
    }
    for sink in &layout.sinks {
        commands.spawn((
            SiteEntity,
            Mesh3d(assets.cylinder.clone()),
            MeshMaterial3d(assets.sink.clone()),
            Transform::from_translation(site_to_world(sink.x, sink.y, 0.5))
                .with_scale(Vec3::new(1.5, 1.0, 1.5)),
        ));
    }
}

fn spawn_stations(
    commands: &mut Commands,
    assets: &SiteAssets,
    layout: &Layout,
    entities: &mut SiteEntities,
) {
    let unknown = assets.station_states[station_state_slot(Default::default())].clone();
    for station in &layout.stations {
        let kind = station.kind();
        let height = station_height(kind);
        let size_x = finite(station.size_x_m).max(MIN_STATION_SIZE_M);
        let size_y = finite(station.size_y_m).max(MIN_STATION_SIZE_M);
        let centre = site_to_world(station.x, station.y, FLOOR_HEIGHT_M + height * 0.5);
        let mesh = assets.station_meshes[station_model_slot(station_model(kind))].clone();
        let body = commands
            .spawn((
                SiteEntity,
                StationIndex(station.index),
                SeenRev::default(),
                Mesh3d(mesh),
                MeshMaterial3d(unknown.clone()),
                Transform::from_translation(centre).with_scale(Vec3::new(size_x, height, size_y)),
            ))
            .id();
        entities.stations.push(body);
    }
}

fn spawn_flow_lines(commands: &mut Commands, assets: &SiteAssets, layout: &Layout) {
    // Out- and in-degree per station, to split a station's throughput over its links.
    let mut out_degree = vec![0u32; layout.stations.len()];
    let mut in_degree = vec![0u32; layout.stations.len()];
    for link in &layout.flow_links {
        if let Some(from) = &link.from
            && from.kind() == EndpointKind::Station
            && let Some(d) = out_degree.get_mut(from.index as usize)
        {
            *d += 1;
        }
        if let Some(to) = &link.to
            && to.kind() == EndpointKind::Station
            && let Some(d) = in_degree.get_mut(to.index as usize)
        {
            *d += 1;
        }
    }
    for link in &layout.flow_links {
        let (Some(from), Some(to)) = (&link.from, &link.to) else {
            continue;
        };
        let (Some(a), Some(b)) = (
            endpoint_position(layout, from.kind(), from.index),
            endpoint_position(layout, to.kind(), to.index),
        ) else {
            continue;
        };
        let Some(transform) = segment_transform(a, b, FLOW_WIDTH_RANGE_M.0, FLOW_WIDTH_RANGE_M.0) else {
            continue;
        };
        let (station, share_divisor) = if from.kind() == EndpointKind::Station {
            (Some(from.index), out_degree.get(from.index as usize).copied().unwrap_or(1))
        } else if to.kind() == EndpointKind::Station {
            (Some(to.index), in_degree.get(to.index as usize).copied().unwrap_or(1))
        } else {
            (None, 1)
        };
        commands.spawn((
            SiteEntity,
            FlowLine { link: link.index, station, share_divisor: share_divisor.max(1) as f32 },
            Mesh3d(assets.cube.clone()),
            MeshMaterial3d(assets.flow.clone()),
            transform,
            NotShadowCaster,
        ));
    }
}

fn colour_stations(
    live: Res<LiveState>,
    assets: Res<SiteAssets>,
    mut stations: Query<
        (&StationIndex, &mut SeenRev, &mut MeshMaterial3d<StandardMaterial>),
        Without<StationMaterialOverride>,
    >,
) {
    for (index, mut seen, mut material) in &mut stations {
        let i = index.0 as usize;
        let Some(&rev) = live.station_rev.get(i) else {
            continue;
        };
        if rev == seen.0 {
            continue;
        }
        seen.0 = rev;
        let slot = station_state_slot(live.station_state(i));
        if material.0 != assets.station_states[slot] {
            material.0 = assets.station_states[slot].clone();
        }
    }
}

/// Applies added or changed [`StationMaterialOverride`]s and restores the state colour
/// of stations whose override was removed. Touches only the entities concerned.
fn apply_material_overrides(
    live: Res<LiveState>,
    assets: Res<SiteAssets>,
    mut removed: RemovedComponents<StationMaterialOverride>,
    mut changed: Query<
        (&StationMaterialOverride, &mut MeshMaterial3d<StandardMaterial>),
        Changed<StationMaterialOverride>,
    >,
    mut stations: Query<
        (&StationIndex, &mut MeshMaterial3d<StandardMaterial>),
        Without<StationMaterialOverride>,
    >,
) {
    for (wanted, mut material) in &mut changed {
        if material.0 != wanted.0 {
            material.0 = wanted.0.clone();
        }
    }
    for entity in removed.read() {
        if let Ok((index, mut material)) = stations.get_mut(entity) {
            let slot = station_state_slot(live.station_state(index.0 as usize));
            material.0 = assets.station_states[slot].clone();
        }
    }
}

/// Rate of a flow line, parts per hour: the server's per-link flow when it sends one,
/// else the linked station's throughput split evenly over its links.
pub fn flow_rate(live: &LiveState, link: u32, station: Option<u32>, share_divisor: f32) -> f64 {
    let direct = live.flows.get(link as usize).copied().unwrap_or(0.0);
    if direct.is_finite() && direct > 0.0 {
        return direct;
    }
    station
        .and_then(|s| live.stations.get(s as usize))
        .map(|s| s.throughput_per_hour / f64::from(share_divisor.max(1.0)))
        .filter(|r| r.is_finite() && *r > 0.0)
        .unwrap_or(0.0)
}

/// Width of a flow line for `rate` relative to the largest current rate. Square root so
/// small flows stay visible next to big ones.
pub fn flow_width(rate: f64, max_rate: f64) -> f32 {
    let (min, max) = FLOW_WIDTH_RANGE_M;
    if max_rate.is_nan() || rate.is_nan() || max_rate <= 0.0 || rate <= 0.0 {
        return min;
    }
    let t = (rate / max_rate).clamp(0.0, 1.0).sqrt() as f32;
    min + (max - min) * t
}

fn size_flow_lines(live: Res<LiveState>, mut lines: Query<(&FlowLine, &mut Transform)>) {
    let max_rate =
        lines.iter().map(|(l, _)| flow_rate(&live, l.link, l.station, l.share_divisor)).fold(0.0, f64::max);
    for (line, mut transform) in &mut lines {
        let width = flow_width(flow_rate(&live, line.link, line.station, line.share_divisor), max_rate);
        if transform.scale.y != width || transform.scale.z != width {
            transform.scale.y = width;
            transform.scale.z = width;
        }
    }
}

fn highlight_bottleneck(
    time: Res<Time>,
    live: Res<LiveState>,
    site: Res<SiteLayout>,
    mut marker: Query<(&mut Transform, &mut Visibility), With<BottleneckMarker>>,
) {
    let Ok((mut transform, mut visibility)) = marker.single_mut() else {
        return;
    };
    let station = live.bottleneck_station().and_then(|i| site.layout.as_ref()?.stations.get(i as usize));
    let Some(station) = station else {
        visibility.set_if_neq(Visibility::Hidden);
        return;
    };
    let height = station_height(station.kind());
    let radius = finite(station.size_x_m).max(finite(station.size_y_m)).max(MIN_STATION_SIZE_M);
    let pulse = 1.0 + 0.08 * (time.elapsed_secs() * std::f32::consts::TAU).sin();
    transform.translation =
        site_to_world(station.x, station.y, FLOOR_HEIGHT_M + height + BOTTLENECK_RING_LIFT_M);
    transform.scale = Vec3::splat(radius * 0.6 * pulse);
    transform.rotation =
        Quat::from_rotation_y(time.elapsed_secs() * BOTTLENECK_SPIN_HZ * std::f32::consts::TAU);
    visibility.set_if_neq(Visibility::Inherited);
}

#[cfg(test)]
mod tests {
    use super::*;
    use twin_proto::v1::{StateFrame, Station, StationKind, StationState, StationStateKind};

    #[test]
    fn stations_take_the_shared_material_of_their_state() {
        let mut app = App::new();
        app.add_plugins(MinimalPlugins)
            .init_resource::<Assets<Mesh>>()
            .init_resource::<Assets<StandardMaterial>>()
            .add_systems(Startup, load_site_assets)
            .add_systems(Update, colour_stations.run_if(resource_changed::<LiveState>));
        let layout =
            Layout { layout_generation: 1, stations: vec![Station { index: 0, ..default() }], ..default() };
        let frame = StateFrame {
            seq: 1,
            full: true,
            layout_generation: 1,
            stations: vec![StationState { index: 0, state: StationStateKind::Down as i32, ..default() }],
            ..default()
        };
        let live = crate::model::live_for(&layout, Some(&frame));
        app.insert_resource(live);
        let station = app
            .world_mut()
            .spawn((StationIndex(0), SeenRev::default(), MeshMaterial3d::<StandardMaterial>::default()))
            .id();
        app.update();
        let assets = app.world().resource::<SiteAssets>();
        let expected = assets.station_states[station_state_slot(StationStateKind::Down)].clone();
        let material = app.world().get::<MeshMaterial3d<StandardMaterial>>(station).expect("material");
        assert_eq!(material.0, expected);
        let colour = app
            .world()
            .resource::<Assets<StandardMaterial>>()
            .get(&expected)
            .expect("material asset")
            .base_color;
        assert_eq!(colour, station_state_colour(StationStateKind::Down));
    }

    fn site_app(layout: Layout) -> App {
        let mut app = App::new();
        app.add_plugins(MinimalPlugins)
            .init_resource::<Assets<Mesh>>()
            .init_resource::<Assets<StandardMaterial>>()
            .add_message::<LayoutChanged>()
            .add_plugins(SitePlugin);
        app.insert_resource(crate::model::live_for(&layout, None))
            .insert_resource(SiteLayout { layout: Some(layout) });
        app.update();
        app.world_mut().write_message(LayoutChanged);
        app.update();
        app
    }

    #[test]
    fn stations_are_drawn_by_kind_with_shared_meshes_and_their_footprint() {
        let station = |index, kind: StationKind, size: (f64, f64)| Station {
            index,
            kind: kind as i32,
            size_x_m: size.0,
            size_y_m: size.1,
            ..default()
        };
        let layout = Layout {
            layout_generation: 1,
            stations: vec![
                station(0, StationKind::Machine, (4.0, 3.0)),
                station(1, StationKind::Oven, (6.0, 3.0)),
                station(2, StationKind::Machine, (2.0, 2.0)),
                station(3, StationKind::Storage, (0.0, f64::NAN)),
            ],
            ..default()
        };
        let mut app = site_app(layout);
        let entities = app.world().resource::<SiteEntities>().stations.clone();
        assert_eq!(entities.len(), 4);
        let mesh = |app: &App, i: usize| app.world().get::<Mesh3d>(entities[i]).expect("mesh").0.clone();
        assert_eq!(mesh(&app, 0), mesh(&app, 2), "one shared mesh per kind");
        assert_ne!(mesh(&app, 0), mesh(&app, 1), "kinds look different");
        let scale =
            |app: &mut App, i: usize| app.world().get::<Transform>(entities[i]).expect("transform").scale;
        assert_eq!(scale(&mut app, 0), Vec3::new(4.0, station_height(StationKind::Machine), 3.0));
        assert_eq!(scale(&mut app, 1).y, station_height(StationKind::Oven));
        let bad = scale(&mut app, 3);
        assert!(bad.x >= MIN_STATION_SIZE_M && bad.z >= MIN_STATION_SIZE_M, "bad sizes still show: {bad}");
        let n_meshes = app.world().resource::<Assets<Mesh>>().len();
        for _ in 0..5 {
            app.update();
        }
        assert_eq!(app.world().resource::<Assets<Mesh>>().len(), n_meshes, "no meshes made per frame");
    }

    #[test]
    fn a_material_override_replaces_the_state_colour_until_removed() {
        let layout =
            Layout { layout_generation: 1, stations: vec![Station { index: 0, ..default() }], ..default() };
        let mut app = site_app(layout);
        let frame = StateFrame {
            seq: 1,
            full: true,
            layout_generation: 1,
            stations: vec![StationState { index: 0, state: StationStateKind::Busy as i32, ..default() }],
            ..default()
        };
        app.world_mut().resource_mut::<LiveState>().apply_frame(&frame, Some(1)).expect("frame applies");
        app.update();
        let station = app.world().resource::<SiteEntities>().stations[0];
        let busy = app.world().resource::<SiteAssets>().station_states
            [station_state_slot(StationStateKind::Busy)]
        .clone();
        let material =
            |app: &App| app.world().get::<MeshMaterial3d<StandardMaterial>>(station).expect("m").0.clone();
        assert_eq!(material(&app), busy);
        let heat =
            app.world_mut().resource_mut::<Assets<StandardMaterial>>().add(StandardMaterial::default());
        app.world_mut().entity_mut(station).insert(StationMaterialOverride(heat.clone()));
        app.update();
        assert_eq!(material(&app), heat, "the override wins");
        // A new state frame does not undo the override.
        let delta = StateFrame {
            seq: 2,
            layout_generation: 1,
            stations: vec![StationState { index: 0, state: StationStateKind::Down as i32, ..default() }],
            ..default()
        };
        app.world_mut().resource_mut::<LiveState>().apply_frame(&delta, Some(1)).expect("delta applies");
        app.update();
        assert_eq!(material(&app), heat);
        app.world_mut().entity_mut(station).remove::<StationMaterialOverride>();
        app.update();
        let down = app.world().resource::<SiteAssets>().station_states
            [station_state_slot(StationStateKind::Down)]
        .clone();
        assert_eq!(material(&app), down, "removing it shows the current state again");
    }

    #[test]
    fn site_north_is_bevy_minus_z() {
        assert_eq!(site_to_world(10.0, 20.0, 1.0), Vec3::new(10.0, 1.0, -20.0));
        assert_eq!(site_to_world(f64::NAN, f64::INFINITY, 0.0), Vec3::ZERO);
    }

    #[test]
    fn segment_points_from_a_to_b() {
        let a = site_to_world(0.0, 0.0, 0.0);
        let b = site_to_world(0.0, 10.0, 0.0);
        let t = segment_transform(a, b, 2.0, 1.0).expect("non-degenerate");
        assert!((t.scale.x - 10.0).abs() < 1e-5);
        // Local +x must point north (world -z).
        let dir = t.rotation * Vec3::X;
        assert!((dir - Vec3::NEG_Z).length() < 1e-5, "{dir}");
        assert!(segment_transform(a, a, 1.0, 1.0).is_none());
    }

    #[test]
    fn flow_width_grows_with_rate_and_falls_back_to_station_throughput() {
        assert_eq!(flow_width(0.0, 100.0), FLOW_WIDTH_RANGE_M.0);
        assert_eq!(flow_width(100.0, 100.0), FLOW_WIDTH_RANGE_M.1);
        assert!(flow_width(25.0, 100.0) > flow_width(5.0, 100.0));
        assert_eq!(flow_width(f64::NAN, 100.0), FLOW_WIDTH_RANGE_M.0);

        let live = LiveState {
            flows: vec![0.0, 30.0],
            stations: vec![twin_proto::v1::StationState { throughput_per_hour: 40.0, ..default() }],
            ..default()
        };
        assert_eq!(flow_rate(&live, 1, Some(0), 1.0), 30.0);
        assert_eq!(flow_rate(&live, 0, Some(0), 2.0), 20.0);
        assert_eq!(flow_rate(&live, 5, None, 1.0), 0.0);
    }
}
