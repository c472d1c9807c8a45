//! `ProgrammePlugin`: the programme view (`ListComplexes`, issue 15). One row per complex
//! registered on the programme's NATS: its value-added rate and labour productivity as
//! bars against the programme's targets (30 %; +40 % over the complex's own baseline,
//! both from the scenes), throughput, WIP, bottleneck, open alarms and the age of the
//! figures. "Connect" switches the client to that complex's server. The panel stays
//! hidden when the server runs without `--nats` (FAILED_PRECONDITION).

use bevy::prelude::*;
use bevy_egui::egui::{self, Color32, RichText};
use bevy_egui::{EguiContexts, EguiPrimaryContextPass};
use twin_proto::v1::{ComplexInfo, ListComplexesResponse, ProgrammeTargets};

use crate::dock::{Docks, PanelId, PanelSet};
use crate::net::{Access, Connection, NetBridge, NetCommand, unix_ms_now};
use crate::presentation::panels_shown;
use crate::units;

/// Width of a target bar, points.
const BAR_WIDTH: f32 = 110.0;
/// Height of the table before it scrolls, points (20 complexes do not fit on 720p).
const TABLE_HEIGHT: f32 = 260.0;
/// Figures older than this are marked stale, ms.
const STALE_AFTER_MS: u64 = 30_000;
/// Bar colours: target met, not yet.
const MET_RGB: [u8; 3] = [60, 180, 90];
const SHORT_RGB: [u8; 3] = [230, 150, 40];

/// The programme's complexes (ListComplexes, polled every few seconds).
#[derive(Resource, Default, Debug, Clone)]
pub struct Complexes {
    /// The last successful list and the wall-clock time it arrived, ms since the epoch.
    pub list: Option<(ListComplexesResponse, u64)>,
    /// Why the server offers no programme view (FAILED_PRECONDITION: it runs without
    /// `--nats`; UNIMPLEMENTED: an older server). The list is then cleared.
    pub unavailable: Option<String>,
    /// The last failure of an otherwise offered call (e.g. NATS unreachable); cleared by
    /// the next success.
    pub last_error: Option<String>,
}

/// The programme panel and the complex switcher.
pub struct ProgrammePlugin;

impl Plugin for ProgrammePlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<ProgrammeView>()
            .add_systems(EguiPrimaryContextPass, draw_programme_panel.in_set(PanelSet).run_if(panels_shown));
    }
}

/// Whether the panel is open (it can be closed and reopened from the *Twin* panel).
#[derive(Resource, Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProgrammeView {
    /// True: the panel is drawn while there is a programme to show.
    pub open: bool,
}

impl Default for ProgrammeView {
    fn default() -> Self {
        Self { open: true }
    }
}

/// How far a complex is towards a target: the bar's fill in [0, 1] (1 = met), whether it
/// is met, and the text "28.1 % of 30 %".
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    /// Bar fill, clamped to [0, 1].
    pub fill: f32,
    /// True when the target is met.
    pub met: bool,
    /// What the bar says.
    pub text: String,
}

/// Value-added rate against the target rate. `None` when the complex has sold nothing
/// yet or the programme states no target.
pub fn value_added_progress(complex: &ComplexInfo, targets: Option<&ProgrammeTargets>) -> Option<Progress> {
    let rate = complex.value_added_rate.filter(|r| r.is_finite())?;
    let target = targets.map(|t| t.value_added_rate).filter(|t| t.is_finite() && *t > 0.0)?;
    Some(Progress {
        fill: (rate / target).clamp(0.0, 1.0) as f32,
        met: rate >= target,
        text: format!("{} of {}", units::percent(rate), units::percent(target)),
    })
}

/// Labour productivity's gain over the complex's baseline against the target gain:
/// "+32 % of +40 %". `None` without a productivity, a positive baseline or a target.
pub fn labour_progress(complex: &ComplexInfo, targets: Option<&ProgrammeTargets>) -> Option<Progress> {
    let lp = complex.labour_productivity.filter(|v| v.is_finite())?;
    let base = complex.labour_productivity_baseline.filter(|b| b.is_finite() && *b > 0.0)?;
    let target = targets.map(|t| t.labour_productivity_gain).filter(|t| t.is_finite() && *t > 0.0)?;
    let gain = lp / base - 1.0;
    Some(Progress {
        fill: (gain / target).clamp(0.0, 1.0) as f32,
        // The proto's definition, so that client and server agree at the boundary.
        met: lp >= base * (1.0 + target),
        text: format!("{:+.0} % of {:+.0} %", gain * 100.0, target * 100.0),
    })
}

/// Age of a complex's figures as a person reads it ("12 s", "3 min").
pub fn age_text(reported_unix_ms: u64, now_unix_ms: u64) -> String {
    if reported_unix_ms == 0 {
        return "never".to_owned();
    }
    units::duration(now_unix_ms.saturating_sub(reported_unix_ms) as f64 / 1000.0)
}

fn rgb(c: [u8; 3]) -> Color32 {
    Color32::from_rgb(c[0], c[1], c[2])
}

fn progress_cell(ui: &mut egui::Ui, progress: Option<Progress>, missing: &str) {
    match progress {
        Some(p) => {
            let colour = if p.met { MET_RGB } else { SHORT_RGB };
            ui.add(egui::ProgressBar::new(p.fill).desired_width(BAR_WIDTH).fill(rgb(colour)).text(p.text));
        }
        None => {
            ui.weak(missing);
        }
    }
}

fn draw_programme_panel(
    mut contexts: EguiContexts,
    mut docks: ResMut<Docks>,
    complexes: Res<Complexes>,
    connection: Res<Connection>,
    access: Res<Access>,
    net: Res<NetBridge>,
    mut view: ResMut<ProgrammeView>,
) -> Result {
    let ctx = contexts.ctx_mut()?;
    // A server without --nats has no programme: nothing to show.
    if complexes.unavailable.is_some() || (complexes.list.is_none() && complexes.last_error.is_none()) {
        return Ok(());
    }
    if !view.open {
        return Ok(());
    }
    let mut open = true;
    docks.show(ctx, PanelId::Programme, "Programme", |ui| {
        if ui.small_button("× close").clicked() {
            open = false;
        }
        if let Some(e) = &complexes.last_error {
            ui.colored_label(Color32::from_rgb(255, 140, 90), format!("last update failed: {e}"));
        }
        let Some((reply, _)) = &complexes.list else { return };
        let targets = reply.targets.as_ref();
        match targets {
            Some(t) => ui.label(format!(
                "{} complexes · targets: value-added rate {}, labour productivity {:+.0} % over baseline",
                reply.complexes.len(),
                units::percent(t.value_added_rate),
                t.labour_productivity_gain * 100.0
            )),
            None => ui.label(format!("{} complexes · no complex reported targets", reply.complexes.len())),
        };
        let now = unix_ms_now();
        egui::ScrollArea::vertical().max_height(TABLE_HEIGHT).show(ui, |ui| {
            egui::Grid::new("complexes").num_columns(8).striped(true).show(ui, |ui| {
                for head in ["complex", "value-added rate", "labour productivity", "throughput", "WIP"] {
                    ui.strong(head);
                }
                for head in ["bottleneck", "alarms", "age"] {
                    ui.strong(head);
                }
                ui.end_row();
                for complex in &reply.complexes {
                    draw_row(
                        ui,
                        complex,
                        targets,
                        reply.self_complex_id == complex.complex_id,
                        now,
                        &connection,
                        &access,
                        &net,
                    );
                    ui.end_row();
                }
            });
        });
    });
    view.open = open;
    Ok(())
}

#[allow(clippy::too_many_arguments)] // One table row: every cell needs its input.
fn draw_row(
    ui: &mut egui::Ui,
    complex: &ComplexInfo,
    targets: Option<&ProgrammeTargets>,
    is_self: bool,
    now: u64,
    connection: &Connection,
    access: &Access,
    net: &NetBridge,
) {
    ui.horizontal(|ui| {
        let name = if complex.name.is_empty() { &complex.complex_id } else { &complex.name };
        let here = is_self || complex.endpoint == connection.server;
        let label = ui.label(if here { RichText::new(name).strong() } else { RichText::new(name) });
        label.on_hover_text(format!(
            "{} · {} · {} · {}",
            complex.complex_id, complex.region, complex.industry, complex.endpoint
        ));
        if here {
            ui.weak("(this)");
        } else {
            let refusal = if complex.endpoint.is_empty() {
                Some("this complex advertises no endpoint".to_owned())
            } else {
                (!access.allows("StreamState")).then(|| access.denial("StreamState"))
            };
            let button = ui.add_enabled(refusal.is_none(), egui::Button::new("Connect").small());
            let button = match refusal {
                Some(why) => button.on_disabled_hover_text(why),
                None => button.on_hover_text(format!("switch the client to {}", complex.endpoint)),
            };
            if button.clicked() {
                net.send(NetCommand::SwitchServer { server: complex.endpoint.clone() });
            }
        }
    });
    if complex.warming_up {
        ui.colored_label(Color32::YELLOW, "warming up");
        ui.colored_label(Color32::YELLOW, "warming up");
    } else {
        progress_cell(ui, value_added_progress(complex, targets), "nothing sold yet");
        progress_cell(ui, labour_progress(complex, targets), "no staff or baseline");
    }
    ui.label(complex.throughput_per_hour.map_or_else(|| "—".to_owned(), units::per_hour));
    ui.label(complex.wip.map_or_else(|| "—".to_owned(), |w| w.to_string()));
    ui.label(if complex.bottleneck_station_id.is_empty() {
        "none yet"
    } else {
        &complex.bottleneck_station_id
    });
    if complex.open_alarms > 0 {
        ui.colored_label(Color32::from_rgb(255, 170, 0), complex.open_alarms.to_string());
    } else {
        ui.weak("0");
    }
    let age = age_text(complex.reported_unix_ms, now);
    if now.saturating_sub(complex.reported_unix_ms) > STALE_AFTER_MS {
        ui.colored_label(Color32::from_rgb(255, 140, 90), age);
    } else {
        ui.weak(age);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn targets() -> ProgrammeTargets {
        ProgrammeTargets { value_added_rate: 0.30, labour_productivity_gain: 0.40 }
    }

    #[test]
    fn value_added_rate_is_measured_against_the_target() {
        let complex = ComplexInfo { value_added_rate: Some(0.15), ..Default::default() };
        let p = value_added_progress(&complex, Some(&targets())).expect("has a rate");
        assert_eq!((p.fill, p.met), (0.5, false));
        assert_eq!(p.text, "15.0 % of 30.0 %");
        let met = ComplexInfo { value_added_rate: Some(0.33), ..Default::default() };
        assert!(value_added_progress(&met, Some(&targets())).expect("has a rate").met);
        assert!(value_added_progress(&ComplexInfo::default(), Some(&targets())).is_none(), "nothing sold");
        assert!(value_added_progress(&met, None).is_none(), "no target");
    }

    #[test]
    fn labour_productivity_gain_is_over_the_complexes_own_baseline() {
        let complex = ComplexInfo {
            labour_productivity: Some(120.0),
            labour_productivity_baseline: Some(100.0),
            ..Default::default()
        };
        let p = labour_progress(&complex, Some(&targets())).expect("has both");
        assert_eq!(p.text, "+20 % of +40 %");
        assert!((p.fill - 0.5).abs() < 1e-6);
        assert!(!p.met);
        let met = ComplexInfo { labour_productivity: Some(141.0), ..complex.clone() };
        assert!(labour_progress(&met, Some(&targets())).expect("has both").met);
        let no_base = ComplexInfo { labour_productivity_baseline: None, ..complex };
        assert!(labour_progress(&no_base, Some(&targets())).is_none());
    }

    #[test]
    fn ages_read_as_durations() {
        assert_eq!(age_text(1_000, 13_000), "12 s");
        assert_eq!(age_text(0, 13_000), "never");
        assert_eq!(age_text(20_000, 10_000), "0 s", "a clock behind the reporter");
    }
}
