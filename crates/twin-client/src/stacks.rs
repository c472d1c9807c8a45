//! `StackPlugin`: the parts waiting in each station's input buffer, drawn as small boxes
//! stacked beside the station (up to [`MAX_VISIBLE_PARTS`]; a "+N" tag, placed by
//! `labels.rs` with the other labels, counts the rest), and the exact count in a tooltip
//! while the cursor is over the station or its stack.
//!
//! The boxes are spawned once per layout, all sharing one mesh and one material; a state
//! frame only flips their visibility, so nothing is allocated per frame. Hover picking
//! casts the cursor ray against each stack's box with `select::ray_hits_box`, like
//! selection does, so it needs no picking backend.

use bevy::prelude::*;
use bevy::window::PrimaryWindow;
use bevy_egui::input::EguiWantsInput;
use bevy_egui::{EguiContexts, EguiPrimaryContextPass, egui};

use crate::meshes::station_height;
use crate::model::{LiveState, SiteLayout};
use crate::net::LayoutChanged;
use crate::select::ray_hits_box;
use crate::site::{SiteEntity, finite, site_to_world};

/// Side of one drawn part, metres.
const PART_SIDE_M: f32 = 0.5;
/// Gap between parts, metres.
const PART_GAP_M: f32 = 0.08;
/// Parts per pile (height of a stack).
const PILE_HEIGHT: u32 = 4;
/// Piles per station (side by side along the station's west edge).
const PILES: u32 = 3;
/// Most parts drawn per buffer; the rest is counted by the "+N" tag.
pub const MAX_VISIBLE_PARTS: u32 = PILE_HEIGHT * PILES;
/// Gap between the station's west edge and its stack, metres.
const STACK_OFFSET_M: f32 = 0.3;
/// Height of the factory floor the stacks stand on, metres.
const FLOOR_M: f32 = 0.1;
/// Smallest drawn station footprint side, metres (as in `site.rs`).
const MIN_STATION_SIZE_M: f32 = 0.5;
/// sRGB colour of a part: cardboard / unpainted metal, unlike every state colour.
const PART_RGB: [u8; 3] = [205, 160, 100];
/// Font size of the hover tooltip, logical pixels.
const TOOLTIP_FONT_PX: f32 = 16.0;

/// Draws buffer contents as stacks of parts and shows the count on hover.
pub struct StackPlugin;

impl Plugin for StackPlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<HoveredStack>()
            .add_systems(Startup, load_stack_assets)
            .add_systems(
                Update,
                (
                    build_stacks.run_if(on_message::<LayoutChanged>),
                    // Also right after a rebuild: the new parts start hidden.
                    fill_stacks.run_if(resource_changed::<LiveState>.or_eager(on_message::<LayoutChanged>)),
                    hover_stacks,
                )
                    .chain()
                    .after(crate::site::build_site),
            )
            .add_systems(EguiPrimaryContextPass, draw_stack_hover);
    }
}

/// Shared mesh and material of all parts.
#[derive(Resource)]
pub struct StackAssets {
    part: Handle<Mesh>,
    material: Handle<StandardMaterial>,
}

/// The stack area of one station's input buffer (no mesh; used for hover and tags).
#[derive(Component, Debug, Clone, Copy)]
pub struct BufferStack {
    /// Index into `Layout.stations`.
    pub station: u32,
    /// World box around the full stack and the station body: hovering either shows the count.
    pub min: Vec3,
    /// See `min`.
    pub max: Vec3,
    /// World point above the stack where the "+N" tag is anchored.
    pub tag_anchor: Vec3,
}

/// One drawn part: shown while the buffer holds more than `slot` parts.
#[derive(Component, Debug, Clone, Copy)]
pub struct StackPart {
    /// Index into `Layout.stations`.
    pub station: u32,
    /// Position in the stack, 0-based (pile-major, bottom to top).
    pub slot: u32,
}

/// The station whose buffer the cursor is over, if any.
#[derive(Resource, Debug, Default, PartialEq)]
pub struct HoveredStack {
    /// `Station.index` under the cursor.
    pub station: Option<u32>,
    /// Cursor position, logical pixels (where the tooltip goes).
    pub cursor: Vec2,
}

/// Offset of part `slot` from the stack's origin (its south-west bottom corner), metres:
/// piles of [`PILE_HEIGHT`] side by side northwards.
pub fn slot_offset(slot: u32) -> Vec3 {
    let (pile, level) = (slot / PILE_HEIGHT, slot % PILE_HEIGHT);
    let step = PART_SIDE_M + PART_GAP_M;
    Vec3::new(
        PART_SIDE_M * 0.5,
        PART_SIDE_M * 0.5 + level as f32 * PART_SIDE_M,
        -(PART_SIDE_M * 0.5 + pile as f32 * step),
    )
}

/// Parts drawn and parts beyond the drawn maximum, for a queue length.
pub fn drawn_and_hidden(queue_length: u32) -> (u32, u32) {
    let drawn = queue_length.min(MAX_VISIBLE_PARTS);
    (drawn, queue_length - drawn)
}

fn load_stack_assets(
    mut commands: Commands,
    mut meshes: ResMut<Assets<Mesh>>,
    mut materials: ResMut<Assets<StandardMaterial>>,
) {
    let [r, g, b] = PART_RGB;
    commands.insert_resource(StackAssets {
        part: meshes.add(Cuboid::new(PART_SIDE_M, PART_SIDE_M * 0.9, PART_SIDE_M)),
        material: materials.add(StandardMaterial {
            base_color: Color::srgb_u8(r, g, b),
            perceptual_roughness: 0.9,
            ..default()
        }),
    });
}

/// Spawns the (hidden) parts of every station's stack; `build_site` despawns them with
/// the rest of the site on the next layout.
fn build_stacks(mut commands: Commands, assets: Res<StackAssets>, site: Res<SiteLayout>) {
    let Some(layout) = site.layout.as_ref() else {
        return;
    };
    let depth = PILES as f32 * (PART_SIDE_M + PART_GAP_M);
    for station in &layout.stations {
        let size_x = finite(station.size_x_m).max(MIN_STATION_SIZE_M);
        let size_y = finite(station.size_y_m).max(MIN_STATION_SIZE_M);
        let centre = site_to_world(station.x, station.y, FLOOR_M);
        // South-west bottom corner of the stack, west of the station, centred north-south.
        let origin = centre + Vec3::new(-size_x * 0.5 - STACK_OFFSET_M - PART_SIDE_M, 0.0, depth * 0.5);
        let stack_top = origin.y + PILE_HEIGHT as f32 * PART_SIDE_M;
        let body_top = centre.y + station_height(station.kind());
        let min = Vec3::new(origin.x, origin.y, (origin.z - depth).min(centre.z - size_y * 0.5));
        let max = Vec3::new(
            centre.x + size_x * 0.5,
            stack_top.max(body_top),
            origin.z.max(centre.z + size_y * 0.5),
        );
        commands.spawn((
            SiteEntity,
            BufferStack {
                station: station.index,
                min,
                max,
                tag_anchor: origin + Vec3::new(PART_SIDE_M * 0.5, stack_top - origin.y + 0.3, -depth * 0.5),
            },
        ));
        for slot in 0..MAX_VISIBLE_PARTS {
            commands.spawn((
                SiteEntity,
                StackPart { station: station.index, slot },
                Mesh3d(assets.part.clone()),
                MeshMaterial3d(assets.material.clone()),
                Transform::from_translation(origin + slot_offset(slot)),
                Visibility::Hidden,
            ));
        }
    }
}

/// Shows as many parts as the buffer holds (up to the maximum). Writes only changes.
fn fill_stacks(live: Res<LiveState>, mut parts: Query<(&StackPart, &mut Visibility)>) {
    for (part, mut visibility) in &mut parts {
        let queue = live.stations.get(part.station as usize).map_or(0, |s| s.queue_length);
        let wanted =
            if part.slot < drawn_and_hidden(queue).0 { Visibility::Inherited } else { Visibility::Hidden };
        visibility.set_if_neq(wanted);
    }
}

/// The nearest stack (or its station body) under a ray, if any.
pub fn stack_under_ray<'a>(
    origin: Vec3,
    dir: Vec3,
    stacks: impl IntoIterator<Item = &'a BufferStack>,
) -> Option<u32> {
    let mut best: Option<(f32, u32)> = None;
    for stack in stacks {
        if let Some(t) = ray_hits_box(origin, dir, stack.min, stack.max)
            && best.is_none_or(|(b, _)| t < b)
        {
            best = Some((t, stack.station));
        }
    }
    best.map(|(_, station)| station)
}

/// Tracks which buffer the cursor is over (none while it is over a panel). Only writes
/// the resource when it changes.
fn hover_stacks(
    windows: Query<&Window, With<PrimaryWindow>>,
    cameras: Query<(&Camera, &GlobalTransform)>,
    stacks: Query<&BufferStack>,
    egui_input: Option<Res<EguiWantsInput>>,
    mut hovered: ResMut<HoveredStack>,
) {
    let over_ui = egui_input.is_some_and(|e| e.wants_any_pointer_input());
    let cursor = windows.iter().find_map(Window::cursor_position).filter(|_| !over_ui);
    let station = cursor.and_then(|cursor| {
        let ray = cameras.iter().find_map(|(camera, gt)| camera.viewport_to_world(gt, cursor).ok())?;
        stack_under_ray(ray.origin, *ray.direction, stacks)
    });
    let next = HoveredStack { station, cursor: cursor.unwrap_or(hovered.cursor) };
    if *hovered != next {
        *hovered = next;
    }
}

/// Shows the hovered buffer's count next to the cursor.
fn draw_stack_hover(
    mut contexts: EguiContexts,
    live: Res<LiveState>,
    site: Res<SiteLayout>,
    hovered: Res<HoveredStack>,
) -> Result {
    let ctx = contexts.ctx_mut()?;
    let Some(index) = hovered.station else {
        return Ok(());
    };
    let (Some(station), Some(state)) = (
        site.layout.as_ref().and_then(|l| l.stations.get(index as usize)),
        live.stations.get(index as usize),
    ) else {
        return Ok(());
    };
    let capacity = match &station.input_buffer {
        Some(b) if b.unlimited => "unlimited".to_owned(),
        Some(b) => b.limit.to_string(),
        None => "unknown".to_owned(),
    };
    let text = format!("{}: {} parts waiting (buffer {capacity})", station.name, state.queue_length);
    let painter = ctx.layer_painter(egui::LayerId::new(egui::Order::Tooltip, egui::Id::new("stack-hover")));
    let galley =
        painter.layout_no_wrap(text, egui::FontId::proportional(TOOLTIP_FONT_PX), egui::Color32::WHITE);
    let pos = egui::pos2(hovered.cursor.x + 16.0, hovered.cursor.y + 16.0);
    let rect = egui::Rect::from_min_size(pos, galley.size()).expand(4.0);
    painter.rect_filled(rect, 3.0, egui::Color32::from_rgba_unmultiplied(15, 25, 55, 230));
    painter.galley(pos, galley, egui::Color32::WHITE);
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use bevy::camera::RenderTargetInfo;
    use twin_proto::v1::{BufferCapacity, Layout, StateFrame, Station, StationState};

    use super::*;

    /// A camera whose projection values are filled in as Bevy's camera system would for a
    /// `width` x `height` window, so `world_to_viewport` / `viewport_to_world` work in a
    /// headless app without a renderer.
    pub(crate) fn headless_camera(world: &mut World, eye: Vec3, target: Vec3, size: UVec2) -> Entity {
        let projection = PerspectiveProjection { aspect_ratio: size.x as f32 / size.y as f32, ..default() };
        let mut camera = Camera::default();
        camera.computed.clip_from_view = bevy::camera::CameraProjection::get_clip_from_view(&projection);
        camera.computed.target_info = Some(RenderTargetInfo { physical_size: size, scale_factor: 1.0 });
        let transform = Transform::from_translation(eye).looking_at(target, Vec3::Y);
        world
            .spawn((camera, Projection::Perspective(projection), transform, GlobalTransform::from(transform)))
            .id()
    }

    fn stack_app(queue: u32) -> App {
        let mut app = App::new();
        app.add_plugins(MinimalPlugins)
            .init_resource::<Assets<Mesh>>()
            .init_resource::<Assets<StandardMaterial>>()
            .add_message::<LayoutChanged>()
            .add_plugins(crate::site::SitePlugin);
        let layout = Layout {
            layout_generation: 1,
            stations: vec![Station {
                index: 0,
                name: "mill".into(),
                x: 10.0,
                y: 10.0,
                size_x_m: 4.0,
                size_y_m: 3.0,
                input_buffer: Some(BufferCapacity { limit: 30, unlimited: false }),
                ..default()
            }],
            ..default()
        };
        let frame = StateFrame {
            seq: 1,
            full: true,
            layout_generation: 1,
            stations: vec![StationState { index: 0, queue_length: queue, ..default() }],
            ..default()
        };
        let live = crate::model::live_for(&layout, Some(&frame));
        app.insert_resource(live).insert_resource(SiteLayout { layout: Some(layout) });
        app.update();
        app.world_mut().write_message(LayoutChanged);
        app.update();
        app
    }

    fn visible_parts(app: &mut App) -> Vec<u32> {
        let mut parts = app.world_mut().query::<(&StackPart, &Visibility)>();
        let mut slots: Vec<u32> =
            parts.iter(app.world()).filter(|(_, v)| **v != Visibility::Hidden).map(|(p, _)| p.slot).collect();
        slots.sort_unstable();
        slots
    }

    #[test]
    fn the_stack_shows_the_buffer_level_and_caps_it() {
        let mut app = stack_app(5);
        assert_eq!(visible_parts(&mut app), vec![0, 1, 2, 3, 4]);
        let delta = StateFrame {
            seq: 2,
            layout_generation: 1,
            stations: vec![StationState { index: 0, queue_length: 20, ..default() }],
            ..default()
        };
        app.world_mut().resource_mut::<LiveState>().apply_frame(&delta, Some(1)).expect("delta");
        app.update();
        assert_eq!(visible_parts(&mut app).len(), MAX_VISIBLE_PARTS as usize);
        assert_eq!(drawn_and_hidden(20), (MAX_VISIBLE_PARTS, 20 - MAX_VISIBLE_PARTS));
        assert_eq!(drawn_and_hidden(0), (0, 0));
    }

    #[test]
    fn parts_pile_up_then_start_a_new_pile() {
        assert_eq!(slot_offset(1).x, slot_offset(0).x);
        assert!(slot_offset(1).y > slot_offset(0).y);
        assert_eq!(slot_offset(PILE_HEIGHT).y, slot_offset(0).y);
        assert!(slot_offset(PILE_HEIGHT).z < slot_offset(0).z, "the next pile stands north");
    }

    #[test]
    fn hovering_the_stack_or_the_station_names_it() {
        let mut app = stack_app(3);
        let window = app.world_mut().spawn((Window::default(), PrimaryWindow)).id();
        let stack_centre = {
            let mut q = app.world_mut().query::<&BufferStack>();
            let s = q.single(app.world()).expect("one stack");
            (s.min + s.max) * 0.5
        };
        let eye = stack_centre + Vec3::new(0.0, 30.0, 20.0);
        headless_camera(app.world_mut(), eye, stack_centre, UVec2::new(1280, 720));
        // The window's centre looks at the stack's centre.
        app.world_mut()
            .get_mut::<Window>(window)
            .expect("window")
            .set_cursor_position(Some(Vec2::new(640.0, 360.0)));
        app.update();
        assert_eq!(app.world().resource::<HoveredStack>().station, Some(0));
        app.world_mut()
            .get_mut::<Window>(window)
            .expect("window")
            .set_cursor_position(Some(Vec2::new(5.0, 5.0)));
        app.update();
        assert_eq!(app.world().resource::<HoveredStack>().station, None);
    }
}
