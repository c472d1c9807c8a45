//! `AlarmPlugin`: the live twin's plant view. A beacon above every station with an open
//! deviation alarm, a badge beside every station whose telemetry is live (green) or stale
//! (grey; the station keeps its last known state, it is not down), nothing for model-only
//! ones, and an "Alarms" panel with each open alarm's figures and evidence. Everything
//! comes from the state frames (`StationState.sync`, `open_alarms`, `StateFrame.alarms`).

use bevy::light::NotShadowCaster;
use bevy::prelude::*;
use bevy_egui::egui::{Color32, RichText};
use bevy_egui::{EguiContexts, EguiPrimaryContextPass};
use twin_proto::v1::{Alarm, AlarmDirection, Layout, SyncStatus};

use crate::dock::{Docks, PanelId, PanelSet};
use crate::hud::format_sim_time;
use crate::model::{LiveState, SiteLayout};
use crate::net::LayoutChanged;
use crate::select::{Selected, Selection};
use crate::site::{SiteEntity, finite, site_to_world};

/// Height of a beacon's centre above the station's floor, metres.
const BEACON_LIFT_M: f32 = 5.0;
/// Edge of a beacon, metres.
const BEACON_SIZE_M: f32 = 1.2;
/// Edge of a sync badge, metres.
const BADGE_SIZE_M: f32 = 0.6;
/// Alarm rows shown in the panel.
const ALARM_ROWS: usize = 8;
/// Colours: alarm amber, live green, stale grey.
const ALARM_RGB: [u8; 3] = [255, 170, 0];
const LIVE_RGB: [u8; 3] = [40, 200, 120];
const STALE_RGB: [u8; 3] = [140, 140, 150];

/// Alarm beacons, sync badges and the alarms panel.
pub struct AlarmPlugin;

impl Plugin for AlarmPlugin {
    fn build(&self, app: &mut App) {
        app.add_systems(Startup, load_alarm_assets)
            .add_systems(
                Update,
                (
                    spawn_markers.run_if(on_message::<LayoutChanged>).after(crate::site::build_site),
                    mark_stations.run_if(resource_changed::<LiveState>),
                )
                    .chain(),
            )
            .add_systems(
                EguiPrimaryContextPass,
                draw_alarm_panel.in_set(PanelSet).run_if(crate::presentation::panels_shown),
            );
    }
}

#[derive(Resource)]
struct AlarmAssets {
    cube: Handle<Mesh>,
    beacon: Handle<StandardMaterial>,
    live: Handle<StandardMaterial>,
    stale: Handle<StandardMaterial>,
}

/// The beacon over station `.0`, shown while it has open alarms.
#[derive(Component)]
pub struct AlarmBeacon(pub u32);

/// The telemetry badge of station `.0`: live or stale, hidden while model-only.
#[derive(Component)]
pub struct SyncBadge(pub u32);

fn srgb(c: [u8; 3]) -> Color {
    Color::srgb_u8(c[0], c[1], c[2])
}

fn load_alarm_assets(
    mut commands: Commands,
    mut meshes: ResMut<Assets<Mesh>>,
    mut materials: ResMut<Assets<StandardMaterial>>,
) {
    commands.insert_resource(AlarmAssets {
        cube: meshes.add(Cuboid::new(1.0, 1.0, 1.0)),
        beacon: materials.add(StandardMaterial {
            base_color: srgb(ALARM_RGB),
            emissive: LinearRgba::rgb(5.0, 2.5, 0.0),
            ..default()
        }),
        live: materials.add(StandardMaterial { base_color: srgb(LIVE_RGB), unlit: true, ..default() }),
        stale: materials.add(StandardMaterial { base_color: srgb(STALE_RGB), unlit: true, ..default() }),
    });
}

fn spawn_markers(mut commands: Commands, assets: Res<AlarmAssets>, site: Res<SiteLayout>) {
    let Some(layout) = site.layout.as_ref() else {
        return;
    };
    for station in &layout.stations {
        let (sx, sy) = (finite(station.size_x_m).max(0.5), finite(station.size_y_m).max(0.5));
        let beacon = site_to_world(station.x, station.y, BEACON_LIFT_M);
        commands.spawn((
            SiteEntity,
            AlarmBeacon(station.index),
            Mesh3d(assets.cube.clone()),
            MeshMaterial3d(assets.beacon.clone()),
            Transform::from_translation(beacon)
                .with_rotation(Quat::from_rotation_x(std::f32::consts::FRAC_PI_4))
                .with_scale(Vec3::splat(BEACON_SIZE_M)),
            Visibility::Hidden,
            NotShadowCaster,
        ));
        // At the station's north-east corner, on the floor.
        let corner = site_to_world(station.x, station.y, BADGE_SIZE_M * 0.5)
            + Vec3::new(sx * 0.5 + BADGE_SIZE_M, 0.0, -sy * 0.5 - BADGE_SIZE_M);
        commands.spawn((
            SiteEntity,
            SyncBadge(station.index),
            Mesh3d(assets.cube.clone()),
            MeshMaterial3d(assets.live.clone()),
            Transform::from_translation(corner).with_scale(Vec3::splat(BADGE_SIZE_M)),
            Visibility::Hidden,
            NotShadowCaster,
        ));
    }
}

fn mark_stations(
    live: Res<LiveState>,
    assets: Res<AlarmAssets>,
    mut beacons: Query<(&AlarmBeacon, &mut Visibility), Without<SyncBadge>>,
    mut badges: Query<(&SyncBadge, &mut Visibility, &mut MeshMaterial3d<StandardMaterial>)>,
) {
    for (beacon, mut visibility) in &mut beacons {
        let open = live.stations.get(beacon.0 as usize).is_some_and(|s| s.open_alarms > 0);
        visibility.set_if_neq(if open { Visibility::Inherited } else { Visibility::Hidden });
    }
    for (badge, mut visibility, mut material) in &mut badges {
        let sync = live.stations.get(badge.0 as usize).map_or(SyncStatus::Unspecified, |s| s.sync());
        let handle = match sync {
            SyncStatus::Live => &assets.live,
            SyncStatus::Stale => &assets.stale,
            SyncStatus::ModelOnly | SyncStatus::Unspecified => {
                visibility.set_if_neq(Visibility::Hidden);
                continue;
            }
        };
        if &material.0 != handle {
            material.0 = handle.clone();
        }
        visibility.set_if_neq(Visibility::Inherited);
    }
}

/// Counts of stations by sync status: (live, stale, model-only).
pub fn sync_counts(live: &LiveState) -> (usize, usize, usize) {
    live.stations.iter().fold((0, 0, 0), |(l, s, m), st| match st.sync() {
        SyncStatus::Live => (l + 1, s, m),
        SyncStatus::Stale => (l, s + 1, m),
        _ => (l, s, m + 1),
    })
}

/// One line of an alarm: what deviates and by how much.
pub fn alarm_headline(alarm: &Alarm) -> String {
    let way = if alarm.direction() == AlarmDirection::Below { "faster" } else { "slower" };
    let product = alarm.product_id.as_deref().map(|p| format!(" ({p})")).unwrap_or_default();
    format!(
        "{}{product}: cycle {way}, plant {:.1} s vs model {:.1} s",
        alarm.station_id, alarm.plant_value, alarm.model_value
    )
}

fn station_label(layout: Option<&Layout>, alarm: &Alarm) -> String {
    layout
        .and_then(|l| l.stations.get(alarm.station_index as usize))
        .map_or_else(|| alarm.station_id.clone(), |s| s.name.clone())
}

fn draw_alarm_panel(
    mut contexts: EguiContexts,
    mut docks: ResMut<Docks>,
    live: Res<LiveState>,
    site: Res<SiteLayout>,
    mut selection: ResMut<Selection>,
) -> Result {
    let ctx = contexts.ctx_mut()?;
    let (n_live, n_stale, n_model) = sync_counts(&live);
    let summary = &live.alarms;
    let title = match summary.open {
        0 => "Alarms".to_owned(),
        n => format!("Alarms ({n} open)"),
    };
    docks.show(ctx, PanelId::Alarms, title, |ui| {
        ui.horizontal(|ui| {
            ui.colored_label(
                Color32::from_rgb(LIVE_RGB[0], LIVE_RGB[1], LIVE_RGB[2]),
                format!("■ live {n_live}"),
            );
            ui.colored_label(
                Color32::from_rgb(STALE_RGB[0], STALE_RGB[1], STALE_RGB[2]),
                format!("■ stale {n_stale}"),
            );
            ui.weak(format!("model only {n_model}"));
        });
        let amber = Color32::from_rgb(ALARM_RGB[0], ALARM_RGB[1], ALARM_RGB[2]);
        if summary.open == 0 {
            ui.weak(format!("no open alarm ({} raised in this run)", summary.raised));
            return;
        }
        ui.label(RichText::new(format!("{} open, {} raised", summary.open, summary.raised)).color(amber));
        for alarm in summary.open_alarms.iter().rev().take(ALARM_ROWS) {
            ui.separator();
            if ui.link(RichText::new(station_label(site.layout.as_ref(), alarm)).strong()).clicked() {
                selection.selected = Some(Selected::Station(alarm.station_index));
            }
            ui.label(alarm_headline(alarm));
            if let Some(e) = &alarm.evidence {
                ui.weak(format!(
                    "CUSUM {:.1} > h {:.1} over {} cycles (k {:.3}, ARL0 {:.0e}); since {}",
                    e.statistic,
                    e.threshold,
                    e.observations,
                    e.reference,
                    e.arl0,
                    format_sim_time(alarm.raised_at_us)
                ));
            }
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use twin_proto::v1::StationState;

    #[test]
    fn counts_and_headlines_come_from_the_frames() {
        let live = LiveState {
            stations: vec![
                StationState { sync: SyncStatus::Live as i32, ..Default::default() },
                StationState { sync: SyncStatus::Stale as i32, ..Default::default() },
                StationState::default(),
            ],
            ..Default::default()
        };
        assert_eq!(sync_counts(&live), (1, 1, 1));
        let alarm = Alarm {
            station_id: "mill".into(),
            product_id: Some("bracket".into()),
            direction: AlarmDirection::Above as i32,
            plant_value: 80.0,
            model_value: 68.33,
            ..Default::default()
        };
        assert_eq!(alarm_headline(&alarm), "mill (bracket): cycle slower, plant 80.0 s vs model 68.3 s");
    }
}
