//! `TimelinePlugin`: the timeline under the 3D view (`StateFrame.timeline`). A track from
//! the earliest time the server can show to the live time, with checkpoint ticks, the
//! live marker, the view's marker and, in a branch, where it left history. Dragging the
//! marker previews a time and sends one `Seek` on release (never one per pixel); a click
//! seeks too. A badge names the mode: LIVE, HISTORY (paused) or BRANCH from t; "Back to
//! live" sends `GoLive`. The track is greyed, with the reason, for a role that may not
//! seek (WhoAmI) or a server that refused time travel (FAILED_PRECONDITION /
//! UNIMPLEMENTED).

use bevy::prelude::*;
use bevy_egui::egui::{self, Align2, Color32, Pos2, Rect, RichText, Sense, Stroke};
use bevy_egui::{EguiContexts, EguiPrimaryContextPass};
use twin_proto::v1::{Timeline, TimelineMode};

use crate::dock::{Docks, PanelId, PanelSet};
use crate::hud::format_sim_time;
use crate::model::LiveState;
use crate::net::{Access, NetBridge, NetCommand};
use crate::presentation::panels_shown;

/// Height of the track, points.
const TRACK_HEIGHT: f32 = 26.0;
/// Colours of the modes and markers.
const LIVE_RGB: [u8; 3] = [70, 200, 110];
const HISTORY_RGB: [u8; 3] = [240, 180, 40];
const BRANCH_RGB: [u8; 3] = [120, 170, 255];

/// What the connected server does not offer (not a role question: that is [`Access`]):
/// features whose calls answered FAILED_PRECONDITION or UNIMPLEMENTED. Forgotten on every
/// new connection, since the server may have been restarted with other flags.
#[derive(Resource, Default, Debug, Clone)]
pub struct ServerFeatures {
    /// Why Seek / GoLive cannot be used on this server; None while not refused.
    pub time_travel_refused: Option<String>,
}

/// The timeline panel.
pub struct TimelinePlugin;

impl Plugin for TimelinePlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<Scrub>()
            .add_message::<TimelineRequest>()
            .add_systems(EguiPrimaryContextPass, draw_timeline.in_set(PanelSet).run_if(panels_shown))
            .add_systems(Update, send_timeline_requests);
    }
}

/// What the timeline asks of the server.
#[derive(Message, Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimelineRequest {
    /// Show the run at this simulated time, microseconds.
    Seek(u64),
    /// Show the live run again.
    GoLive,
}

/// The drag in progress on the track: the previewed time while the button is held. A
/// seek is asked for once, when the drag ends.
#[derive(Resource, Default, Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scrub {
    /// Time under the pointer while dragging, microseconds.
    pub preview_us: Option<u64>,
}

impl Scrub {
    /// Feeds one UI frame: `pointer_us` is the time under the pointer when it is over or
    /// dragging the track, `dragging` whether the button is held on it, `released`
    /// whether a drag or a click ended this frame. Returns the time to seek to, once.
    pub fn update(&mut self, pointer_us: Option<u64>, dragging: bool, released: bool) -> Option<u64> {
        if dragging {
            if let Some(t) = pointer_us {
                self.preview_us = Some(t);
            }
            return None;
        }
        if !released {
            return None;
        }
        self.preview_us.take().or(pointer_us)
    }
}

/// The track's span, microseconds: earliest time Seek accepts to the live time.
fn span(timeline: &Timeline) -> (u64, u64) {
    let end = timeline.live_time_us.max(timeline.earliest_us);
    (timeline.earliest_us, end)
}

/// Horizontal position of time `t` on a track `rect` spanning `span`.
pub fn x_of(t: u64, rect: Rect, (from, to): (u64, u64)) -> f32 {
    if to <= from {
        return rect.right();
    }
    let f = (t.clamp(from, to) - from) as f64 / (to - from) as f64;
    rect.left() + (f as f32) * rect.width()
}

/// Time under horizontal position `x` of a track `rect` spanning `span`, clamped to it.
pub fn time_at(x: f32, rect: Rect, (from, to): (u64, u64)) -> u64 {
    if to <= from || rect.width() <= 0.0 {
        return to;
    }
    let f = f64::from(((x - rect.left()) / rect.width()).clamp(0.0, 1.0));
    from + ((to - from) as f64 * f).round() as u64
}

/// The mode badge's text and colour.
pub fn mode_badge(timeline: &Timeline) -> (String, [u8; 3]) {
    match timeline.mode() {
        TimelineMode::Live | TimelineMode::Unspecified => ("LIVE".to_owned(), LIVE_RGB),
        TimelineMode::History => {
            (format!("HISTORY (paused) at {}", format_sim_time(timeline.view_time_us)), HISTORY_RGB)
        }
        TimelineMode::Branch => {
            (format!("BRANCH from {}", format_sim_time(timeline.branch_from_us)), BRANCH_RGB)
        }
    }
}

/// Why the timeline cannot be used, if it cannot.
pub fn disabled_reason(access: &Access, features: &ServerFeatures) -> Option<String> {
    if let Some(reason) = &features.time_travel_refused {
        return Some(format!("time travel is not available on this server: {reason}"));
    }
    (!access.allows("Seek")).then(|| access.denial("Seek"))
}

fn rgb(c: [u8; 3]) -> Color32 {
    Color32::from_rgb(c[0], c[1], c[2])
}

fn draw_timeline(
    mut contexts: EguiContexts,
    mut docks: ResMut<Docks>,
    live: Res<LiveState>,
    access: Res<Access>,
    features: Res<ServerFeatures>,
    mut scrub: ResMut<Scrub>,
    mut requests: MessageWriter<TimelineRequest>,
) -> Result {
    let ctx = contexts.ctx_mut()?;
    docks.show(ctx, PanelId::Timeline, "Timeline", |ui| {
        let Some(timeline) = &live.timeline else {
            ui.weak("no timeline: this server sends none (no time travel)");
            return;
        };
        let reason = disabled_reason(&access, &features);
        let enabled = reason.is_none();
        ui.horizontal(|ui| {
            let (text, colour) = mode_badge(timeline);
            ui.label(RichText::new(text).strong().color(rgb(colour)));
            let away = timeline.mode() != TimelineMode::Live;
            let allowed = enabled && access.allows("GoLive");
            let button = ui.add_enabled(away && allowed, egui::Button::new("⏭ Back to live"));
            let button = match (&reason, allowed) {
                (Some(r), _) => button.on_disabled_hover_text(r),
                (None, false) => button.on_disabled_hover_text(access.denial("GoLive")),
                (None, true) => button,
            };
            if button.clicked() {
                requests.write(TimelineRequest::GoLive);
            }
            ui.weak(format!("live {}", format_sim_time(timeline.live_time_us)));
        });
        let (rect, response) = ui.allocate_exact_size(
            egui::vec2(ui.available_width(), TRACK_HEIGHT),
            if enabled { Sense::click_and_drag() } else { Sense::hover() },
        );
        let range = span(timeline);
        let painter = ui.painter_at(rect.expand(2.0));
        let mid = rect.center().y;
        let faded = |c: Color32| if enabled { c } else { c.gamma_multiply(0.35) };
        painter.line_segment(
            [Pos2::new(rect.left(), mid), Pos2::new(rect.right(), mid)],
            Stroke::new(4.0, faded(Color32::from_gray(110))),
        );
        for &t in &timeline.checkpoints_us {
            let x = x_of(t, rect, range);
            painter.line_segment(
                [Pos2::new(x, mid - 6.0), Pos2::new(x, mid + 6.0)],
                Stroke::new(1.0, faded(Color32::from_gray(200))),
            );
        }
        let live_x = x_of(timeline.live_time_us, rect, range);
        painter.circle_filled(Pos2::new(live_x, mid), 6.0, faded(rgb(LIVE_RGB)));
        if timeline.mode() == TimelineMode::Branch {
            let x = x_of(timeline.branch_from_us, rect, range);
            painter.line_segment(
                [Pos2::new(x, rect.top()), Pos2::new(x, rect.bottom())],
                Stroke::new(2.0, faded(rgb(BRANCH_RGB))),
            );
        }
        let view_x = x_of(timeline.view_time_us, rect, range);
        painter.line_segment(
            [Pos2::new(view_x, rect.top()), Pos2::new(view_x, rect.bottom())],
            Stroke::new(3.0, faded(Color32::WHITE)),
        );
        let pointer_us = response.interact_pointer_pos().map(|p| time_at(p.x, rect, range));
        let released = response.drag_stopped() || response.clicked();
        if let Some(t) = scrub.preview_us.or(pointer_us.filter(|_| response.dragged())) {
            let x = x_of(t, rect, range);
            painter.line_segment(
                [Pos2::new(x, rect.top()), Pos2::new(x, rect.bottom())],
                Stroke::new(2.0, rgb(HISTORY_RGB)),
            );
            painter.text(
                Pos2::new(x, rect.top()),
                Align2::CENTER_BOTTOM,
                format_sim_time(t),
                egui::FontId::monospace(12.0),
                Color32::WHITE,
            );
        }
        if let Some(t) = scrub.update(pointer_us, response.dragged(), released) {
            requests.write(TimelineRequest::Seek(t));
        }
        let response = match &reason {
            Some(r) => response.on_hover_text(r.as_str()),
            None => response.on_hover_text(
                "drag to look back (seeks on release); ▶ Resume in history starts a what-if branch",
            ),
        };
        let _ = response;
        ui.horizontal(|ui| {
            ui.weak(format!("earliest {}", format_sim_time(range.0)));
            ui.weak(format!("· {} checkpoints", timeline.checkpoints_us.len()));
            if let Some(r) = &reason {
                ui.colored_label(Color32::from_rgb(255, 140, 90), r);
            }
        });
    });
    Ok(())
}

/// Turns the timeline's requests into commands for the network thread.
fn send_timeline_requests(mut requests: MessageReader<TimelineRequest>, net: Option<Res<NetBridge>>) {
    let Some(net) = net else { return };
    for request in requests.read() {
        let command = match *request {
            TimelineRequest::Seek(sim_time_us) => NetCommand::Seek { sim_time_us },
            TimelineRequest::GoLive => NetCommand::GoLive,
        };
        if !net.send(command) {
            warn!("timeline request {request:?} dropped: the network queue is full or gone");
        }
    }
}

#[cfg(test)]
mod tests {
    use twin_proto::v1::{Role, WhoAmIResponse};

    use super::*;

    #[test]
    fn a_drag_seeks_once_on_release() {
        let mut scrub = Scrub::default();
        for t in [10, 20, 30, 40] {
            assert_eq!(scrub.update(Some(t), true, false), None, "no seek while dragging");
        }
        assert_eq!(scrub.preview_us, Some(40));
        assert_eq!(scrub.update(None, false, true), Some(40), "one seek on release");
        assert_eq!(scrub.update(None, false, false), None);
        assert_eq!(scrub.update(Some(7), false, true), Some(7), "a click seeks too");
        assert_eq!(scrub.update(Some(9), false, false), None, "hovering does not");
    }

    #[test]
    fn track_maps_times_and_positions_both_ways() {
        let rect = Rect::from_min_max(Pos2::new(100.0, 0.0), Pos2::new(300.0, 20.0));
        let range = (1_000, 3_000);
        assert_eq!(x_of(2_000, rect, range), 200.0);
        assert_eq!(x_of(9_999, rect, range), 300.0, "clamped to the live end");
        assert_eq!(time_at(150.0, rect, range), 1_500);
        assert_eq!(time_at(0.0, rect, range), 1_000, "clamped to the earliest time");
        assert_eq!(time_at(150.0, rect, (5, 5)), 5, "empty span");
    }

    #[test]
    fn badge_names_the_mode() {
        let mut timeline = Timeline { mode: TimelineMode::Live as i32, ..Default::default() };
        assert_eq!(mode_badge(&timeline).0, "LIVE");
        timeline.mode = TimelineMode::History as i32;
        timeline.view_time_us = 3_600_000_000;
        assert_eq!(mode_badge(&timeline).0, "HISTORY (paused) at 01:00:00");
        timeline.mode = TimelineMode::Branch as i32;
        timeline.branch_from_us = 1_800_000_000;
        assert_eq!(mode_badge(&timeline).0, "BRANCH from 00:30:00");
    }

    #[test]
    fn viewers_and_servers_without_time_travel_get_a_reason() {
        let mut access = Access::default();
        let mut features = ServerFeatures::default();
        assert_eq!(disabled_reason(&access, &features), None);
        access.who = Some(WhoAmIResponse {
            subject: "student".into(),
            role: Role::Viewer as i32,
            auth_enabled: true,
            allowed_rpcs: vec!["StreamState".into()],
            expires_at_unix_s: None,
        });
        assert!(disabled_reason(&access, &features).expect("viewer").contains("may not call Seek"));
        features.time_travel_refused = Some("FailedPrecondition: no --data".into());
        assert!(
            disabled_reason(&access, &features).expect("refused").contains("not available on this server")
        );
    }

    #[test]
    fn requests_become_commands() {
        let (command_tx, mut command_rx) = tokio::sync::mpsc::channel(8);
        let mut app = App::new();
        app.add_plugins(MinimalPlugins)
            .insert_resource(NetBridge::for_tests(command_tx))
            .add_message::<TimelineRequest>()
            .add_systems(Update, send_timeline_requests);
        app.world_mut().write_message(TimelineRequest::Seek(42));
        app.world_mut().write_message(TimelineRequest::GoLive);
        app.update();
        assert_eq!(command_rx.try_recv(), Ok(NetCommand::Seek { sim_time_us: 42 }));
        assert_eq!(command_rx.try_recv(), Ok(NetCommand::GoLive));
        assert!(command_rx.try_recv().is_err());
    }
}
