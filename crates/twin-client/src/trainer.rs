//! `TrainerPlugin`: what a trainer shows a room. A station picked in the 3D view gets a
//! small card next to it with *Break this station* (operator role, through `BreakDown`;
//! greyed with the reason for a viewer) and *Repair*. The bottleneck shift then shows as
//! it happens: the ring glides from the old bottleneck to the new one, the ranking's rows
//! slide to their new places, and the *Bottlenecks* panel names the move.

use std::collections::BTreeMap;

use bevy::prelude::*;
use bevy::transform::TransformSystems;
use bevy_egui::egui::{self, Align2, Color32, RichText};
use bevy_egui::{EguiContexts, EguiPrimaryContextPass};
use twin_proto::v1::StationStateKind;

use crate::dock::Docks;
use crate::model::{LiveState, SiteLayout};
use crate::net::{Access, NetBridge, NetCommand};
use crate::palette::{station_state_label, station_state_rgb};
use crate::select::{Selected, Selection};
use crate::site::{BottleneckMarker, site_to_world};

/// Rows of the ranking that are animated (and drawn).
pub const RANKING_ROWS: usize = 10;
/// Fraction of the remaining way a ranking row covers per second.
const ROW_GLIDE_PER_S: f32 = 4.0;
/// Fraction of the remaining way the bottleneck ring covers per second.
const RING_GLIDE_PER_S: f32 = 2.5;
/// Seconds the *bottleneck moved* notice stays up.
pub const SHIFT_NOTICE_S: f32 = 20.0;
/// A row this far (in rows) from its place is drawn with an arrow saying which way it goes.
pub const MOVING_ROWS: f32 = 0.05;
/// Height the break card floats above the station's centre, metres.
const CARD_LIFT_M: f32 = 3.0;

/// The break card, the gliding ring and the animated ranking.
pub struct TrainerPlugin {
    /// A station (scene id) to select once the layout arrives (`--select`), so a scripted
    /// demo or a screenshot opens with its card.
    pub select: Option<String>,
}

/// The station still to select when the layout arrives.
#[derive(Resource, Debug, Default)]
struct Preselect(Option<String>);

impl Plugin for TrainerPlugin {
    fn build(&self, app: &mut App) {
        app.insert_resource(Preselect(self.select.clone()))
            .add_systems(Update, preselect_station.run_if(|p: Res<Preselect>| p.0.is_some()))
            .init_resource::<RankingMotion>()
            .add_message::<StationAction>()
            .add_systems(Update, (animate_ranking, send_station_actions))
            .add_systems(PostUpdate, glide_ring.before(TransformSystems::Propagate))
            .add_systems(EguiPrimaryContextPass, draw_break_card);
    }
}

/// A trainer's action on a station, sent to the server by `send_station_actions`.
#[derive(Message, Debug, Clone, PartialEq, Eq)]
pub enum StationAction {
    /// Break the station down until repaired (`BreakDown`).
    Break {
        /// Station id.
        station_id: String,
    },
    /// Repair it (`Repair`).
    Repair {
        /// Station id.
        station_id: String,
    },
}

/// A change of the bottleneck, for the notice.
#[derive(Debug, Clone, PartialEq)]
pub struct BottleneckShift {
    /// The station that was the bottleneck; `None` when there was none.
    pub from: Option<u32>,
    /// The new bottleneck.
    pub to: u32,
    /// Simulated time of the frame that showed it, microseconds.
    pub sim_time_us: u64,
    /// Wall seconds since it was seen (the notice fades after `SHIFT_NOTICE_S`).
    pub age_s: f32,
}

/// Where each ranking row is drawn, gliding towards its rank, and the latest shift.
#[derive(Resource, Debug, Default)]
pub struct RankingMotion {
    /// Drawn row position (0 = top) per station in the ranking.
    rows: BTreeMap<u32, f32>,
    /// The bottleneck as of the previous frame.
    last_bottleneck: Option<u32>,
    /// The latest shift of the bottleneck, while its notice is up.
    pub shift: Option<BottleneckShift>,
}

impl RankingMotion {
    /// Drawn row position of a station of the ranking.
    pub fn row(&self, station: u32) -> Option<f32> {
        self.rows.get(&station).copied()
    }
}

/// Whether the caller may break stations, and why not: `Err` carries the reason a
/// viewer reads on the greyed button.
pub fn break_offer(access: &Access) -> Result<(), String> {
    if access.allows("BreakDown") { Ok(()) } else { Err(access.denial("BreakDown")) }
}

/// Rows glide to their rank; a station new to the ranking slides in from below; the
/// bottleneck's change is noted.
fn animate_ranking(time: Res<Time>, live: Res<LiveState>, mut motion: ResMut<RankingMotion>) {
    let dt = time.delta_secs();
    let k = 1.0 - (-ROW_GLIDE_PER_S * dt).exp();
    let ranked: Vec<u32> =
        live.bottlenecks.ranking.iter().take(RANKING_ROWS).map(|e| e.station_index).collect();
    motion.rows.retain(|station, _| ranked.contains(station));
    for (rank, &station) in ranked.iter().enumerate() {
        let target = rank as f32;
        let row = motion.rows.entry(station).or_insert(RANKING_ROWS as f32);
        *row += (target - *row) * k;
        if (*row - target).abs() < 0.001 {
            *row = target;
        }
    }
    if let Some(shift) = &mut motion.shift {
        shift.age_s += dt;
        if shift.age_s > SHIFT_NOTICE_S {
            motion.shift = None;
        }
    }
    let now = live.bottleneck_station();
    if now != motion.last_bottleneck {
        if let Some(to) = now
            && motion.last_bottleneck.is_some()
        {
            motion.shift = Some(BottleneckShift {
                from: motion.last_bottleneck,
                to,
                sim_time_us: live.clock.sim_time_us,
                age_s: 0.0,
            });
        }
        motion.last_bottleneck = now;
    }
}

/// The ring glides to the bottleneck's station instead of jumping: the site places it on
/// the station, this moves it there smoothly (across the site when the bottleneck moves
/// to another factory).
fn glide_ring(
    time: Res<Time>,
    live: Res<LiveState>,
    site: Res<SiteLayout>,
    mut drawn: Local<Option<Vec3>>,
    mut rings: Query<(&mut Transform, &Visibility), With<BottleneckMarker>>,
) {
    let Ok((mut transform, visibility)) = rings.single_mut() else {
        return;
    };
    let station = live.bottleneck_station().and_then(|i| site.layout.as_ref()?.stations.get(i as usize));
    let (Some(station), false) = (station, *visibility == Visibility::Hidden) else {
        *drawn = None;
        return;
    };
    let on_station = site_to_world(station.x, station.y, transform.translation.y);
    let k = 1.0 - (-RING_GLIDE_PER_S * time.delta_secs()).exp();
    let at = match *drawn {
        Some(at) => at + (on_station - at) * k,
        None => on_station,
    };
    *drawn = Some(at);
    transform.translation = at;
}

/// Selects the `--select` station once a layout holds it; an unknown id is reported
/// once and dropped.
fn preselect_station(
    mut preselect: ResMut<Preselect>,
    site: Res<SiteLayout>,
    mut selection: ResMut<Selection>,
) {
    let Some(layout) = &site.layout else { return };
    let Some(id) = preselect.0.take() else { return };
    match layout.stations.iter().find(|s| s.id == id) {
        Some(station) => selection.selected = Some(Selected::Station(station.index)),
        None => warn!("--select {id:?}: no such station in scene {:?}", layout.scene_name),
    }
}

/// Sends the card's actions to the server (which checks the role again).
fn send_station_actions(mut actions: MessageReader<StationAction>, net: Option<Res<NetBridge>>) {
    let Some(net) = net else { return };
    for action in actions.read() {
        net.send(match action.clone() {
            StationAction::Break { station_id } => NetCommand::BreakDown { station_id },
            StationAction::Repair { station_id } => NetCommand::Repair { station_id },
        });
    }
}

/// The card next to a station picked in the 3D view: its name and state, *Break this
/// station* and *Repair*. Shown in presentation mode too (a trainer breaks a machine in
/// front of the room), hidden with the panels (`Tab`).
#[allow(clippy::too_many_arguments)]
fn draw_break_card(
    mut contexts: EguiContexts,
    selection: Res<Selection>,
    site: Res<SiteLayout>,
    live: Res<LiveState>,
    access: Res<Access>,
    docks: Option<Res<Docks>>,
    cameras: Query<(&Camera, &GlobalTransform)>,
    mut actions: MessageWriter<StationAction>,
) -> Result {
    let Some(Selected::Station(i)) = selection.selected else { return Ok(()) };
    if docks.is_some_and(|d| d.hidden) {
        return Ok(());
    }
    let Some(station) = site.layout.as_ref().and_then(|l| l.stations.get(i as usize)) else {
        return Ok(());
    };
    let Some((camera, camera_transform)) = cameras.iter().next() else { return Ok(()) };
    let Ok(screen) =
        camera.world_to_viewport(camera_transform, site_to_world(station.x, station.y, CARD_LIFT_M))
    else {
        return Ok(());
    };
    let ctx = contexts.ctx_mut()?;
    // Viewport pixels to egui points under `--ui-scale`.
    let screen = screen / ctx.zoom_factor();
    let state = live.station_state(i as usize);
    egui::Area::new(egui::Id::new("break_card"))
        .pivot(Align2::LEFT_BOTTOM)
        .fixed_pos(egui::pos2(screen.x + 12.0, screen.y - 12.0))
        .show(ctx, |ui| {
            egui::Frame::popup(ui.style()).show(ui, |ui| {
                let name = if station.name.is_empty() { &station.id } else { &station.name };
                ui.label(RichText::new(name).strong().size(16.0));
                let [r, g, b] = station_state_rgb(state);
                ui.colored_label(Color32::from_rgb(r, g, b), format!("■ {}", station_state_label(state)));
                let offer = break_offer(&access);
                ui.horizontal(|ui| {
                    let allowed = offer.is_ok();
                    let down = state == StationStateKind::Down;
                    let button = ui.add_enabled(
                        allowed && !down,
                        egui::Button::new(RichText::new("💥 Break this station").size(16.0)),
                    );
                    let button = match &offer {
                        Err(reason) => button.on_disabled_hover_text(reason),
                        Ok(()) => button.on_disabled_hover_text("already down"),
                    };
                    if button.clicked() {
                        actions.write(StationAction::Break { station_id: station.id.clone() });
                    }
                    let repair =
                        ui.add_enabled(access.allows("Repair") && down, egui::Button::new("🔧 Repair"));
                    if repair.clicked() {
                        actions.write(StationAction::Repair { station_id: station.id.clone() });
                    }
                });
                if let Err(reason) = offer {
                    ui.colored_label(Color32::from_rgb(255, 140, 90), reason);
                }
            });
        });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use twin_proto::v1::{
        BottleneckRanking, BottleneckShare, ClockState, Layout, Role, StateFrame, Station, WhoAmIResponse,
    };

    fn layout() -> Layout {
        let station = |i: u32, x: f64| Station { index: i, id: format!("s{i}"), x, y: 0.0, ..default() };
        Layout {
            layout_generation: 1,
            stations: vec![station(0, 0.0), station(1, 100.0), station(2, 200.0)],
            ..default()
        }
    }

    fn ranking(seq: u64, order: &[u32]) -> StateFrame {
        StateFrame {
            seq,
            full: true,
            layout_generation: 1,
            clock: Some(ClockState { sim_time_us: seq * 1_000_000, ..default() }),
            bottlenecks: Some(BottleneckRanking {
                ranking: order.iter().map(|&s| BottleneckShare { station_index: s, share: 0.5 }).collect(),
                momentary_station_index: order.first().copied(),
                ..default()
            }),
            ..default()
        }
    }

    fn app() -> App {
        let mut app = App::new();
        let mut live = LiveState::default();
        live.reset_for(&layout());
        app.add_plugins(MinimalPlugins)
            .insert_resource(bevy::time::TimeUpdateStrategy::ManualDuration(Duration::from_millis(50)))
            .insert_resource(live)
            .insert_resource(SiteLayout { layout: Some(layout()) })
            .init_resource::<RankingMotion>()
            .add_message::<StationAction>()
            .add_systems(Update, (animate_ranking, send_station_actions))
            .add_systems(PostUpdate, glide_ring.before(TransformSystems::Propagate));
        app
    }

    fn show(app: &mut App, frame: StateFrame) {
        app.world_mut().resource_mut::<LiveState>().apply_frame(&frame, Some(1)).expect("applies");
    }

    #[test]
    fn ranking_rows_glide_to_their_new_places_and_the_shift_is_named() {
        let mut app = app();
        show(&mut app, ranking(1, &[0, 1]));
        for _ in 0..100 {
            app.update();
        }
        let motion = app.world().resource::<RankingMotion>();
        assert_eq!((motion.row(0), motion.row(1)), (Some(0.0), Some(1.0)));
        assert_eq!(motion.shift, None, "the first bottleneck is no shift");

        // Station 1 overtakes station 0; station 2 enters the ranking.
        show(&mut app, ranking(2, &[1, 0, 2]));
        app.update();
        let motion = app.world().resource::<RankingMotion>();
        let (r0, r1, r2) = (motion.row(0).unwrap(), motion.row(1).unwrap(), motion.row(2).unwrap());
        assert!(r0 > 0.0 && r0 < 1.0 && r1 > 0.0 && r1 < 1.0, "both on their way: {r0} {r1}");
        assert!(r2 > 2.0, "the newcomer slides in from below: {r2}");
        let shift = motion.shift.clone().expect("a shift");
        assert_eq!((shift.from, shift.to, shift.sim_time_us), (Some(0), 1, 2_000_000));
        for _ in 0..100 {
            app.update();
        }
        let motion = app.world().resource::<RankingMotion>();
        assert_eq!((motion.row(1), motion.row(0), motion.row(2)), (Some(0.0), Some(1.0), Some(2.0)));
        // The notice goes after SHIFT_NOTICE_S (5 s passed so far at 50 ms a frame).
        for _ in 0..400 {
            app.update();
        }
        assert_eq!(app.world().resource::<RankingMotion>().shift, None);
    }

    #[test]
    fn the_ring_glides_to_the_new_bottleneck() {
        let mut app = app();
        let ring = app
            .world_mut()
            .spawn((BottleneckMarker, Transform::from_xyz(0.0, 4.0, 0.0), Visibility::Inherited))
            .id();
        show(&mut app, ranking(1, &[0]));
        app.update();
        let x = |app: &App| app.world().get::<Transform>(ring).expect("ring").translation.x;
        assert_eq!(x(&app), 0.0, "first placed on the bottleneck");
        show(&mut app, ranking(2, &[2, 0]));
        app.update();
        let first = x(&app);
        assert!(first > 0.0 && first < 50.0, "on its way, not jumped: {first}");
        for _ in 0..200 {
            app.update();
        }
        assert!((x(&app) - 200.0).abs() < 0.5, "arrived: {}", x(&app));
        assert_eq!(app.world().get::<Transform>(ring).expect("ring").translation.y, 4.0, "height kept");
    }

    #[test]
    fn a_station_named_on_the_command_line_is_selected_when_the_layout_arrives() {
        let mut app = App::new();
        app.add_plugins(MinimalPlugins)
            .init_resource::<SiteLayout>()
            .init_resource::<LiveState>()
            .init_resource::<Selection>()
            .add_plugins(TrainerPlugin { select: Some("s2".to_owned()) });
        app.update();
        assert_eq!(app.world().resource::<Selection>().selected, None, "no layout yet");
        app.world_mut().resource_mut::<SiteLayout>().layout = Some(layout());
        app.update();
        assert_eq!(app.world().resource::<Selection>().selected, Some(Selected::Station(2)));
        // Once only: the user's own choice afterwards stands.
        app.world_mut().resource_mut::<Selection>().selected = None;
        app.update();
        assert_eq!(app.world().resource::<Selection>().selected, None);
    }

    #[test]
    fn breaking_is_offered_to_operators_and_greyed_with_a_reason_for_viewers() {
        let who = |role: Role, rpcs: &[&str]| Access {
            who: Some(WhoAmIResponse {
                subject: "student".to_owned(),
                role: role as i32,
                auth_enabled: true,
                allowed_rpcs: rpcs.iter().map(|r| (*r).to_owned()).collect(),
                ..default()
            }),
        };
        assert_eq!(break_offer(&who(Role::Operator, &["BreakDown", "Repair"])), Ok(()));
        let reason = break_offer(&who(Role::Viewer, &["GetLayout"])).expect_err("viewer");
        assert!(reason.contains("student") && reason.contains("BreakDown"), "{reason}");
        assert_eq!(break_offer(&Access::default()), Ok(()), "no authentication: the server decides");

        let (tx, mut rx) = tokio::sync::mpsc::channel(4);
        let mut app = app();
        app.insert_resource(NetBridge::for_tests(tx));
        app.world_mut().write_message(StationAction::Break { station_id: "s1".to_owned() });
        app.update();
        match rx.try_recv() {
            Ok(NetCommand::BreakDown { station_id }) => assert_eq!(station_id, "s1"),
            other => panic!("expected BreakDown, got {other:?}"),
        }
    }
}
