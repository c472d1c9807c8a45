//! `CapturePlugin`: the screenshot mode used by the render test. After the first state
//! frame has been applied it renders `frames` more frames (counting only frames with no
//! render pipeline still compiling: under llvmpipe the 3D pipelines can take longer than
//! the egui ones, and a capture then shows labels over an empty sky), saves the primary
//! window with `Screenshot::primary_window()` + `save_to_disk`, checks the file exists
//! and exits 0. With a second path (`--screenshot-presentation`) it then switches
//! presentation mode on, renders `SWITCH_FRAMES` more and saves that too, so one client
//! run (one shader compilation) gives both pictures. It exits non-zero, with a message on
//! stderr, if no state frame arrives within the connect timeout or a capture does not
//! complete.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bevy::prelude::*;
use bevy::render::render_resource::PipelineCache;
use bevy::render::view::screenshot::{Screenshot, ScreenshotCaptured, save_to_disk};
use bevy::render::{Render, RenderApp};

use crate::camera::FreeView;
use crate::labels::PlacedLabels;
use crate::model::LiveState;
use crate::net::{Connection, LinkStatus};
use crate::presentation::{Presentation, StripMetrics};

/// Longest wait between requesting the screenshot and seeing it on disk.
const CAPTURE_TIMEOUT: Duration = Duration::from_secs(30);
/// Captures of a blank window (one colour: the renderer was not ready yet, e.g. llvmpipe
/// still compiling shaders) that are retried before giving up.
const MAX_BLANK_CAPTURES: u32 = 20;
/// Frames rendered between a blank capture and the next try.
const FRAMES_BETWEEN_RETRIES: u32 = 10;
/// Frames rendered after switching presentation mode on before the second capture (egui
/// lays a new window out over two passes).
const SWITCH_FRAMES: u32 = 4;

/// Takes one screenshot after the first state frame, then exits.
pub struct CapturePlugin {
    /// Where the PNG goes.
    pub path: PathBuf,
    /// Where a second PNG, in presentation mode, goes; `None`: one picture only.
    pub presentation_path: Option<PathBuf>,
    /// Frames rendered after the first state frame before capturing.
    pub frames: u32,
    /// How long to wait for the first state frame.
    pub connect_timeout: Duration,
}

impl Plugin for CapturePlugin {
    fn build(&self, app: &mut App) {
        app.insert_resource(CaptureJob {
            path: self.path.clone(),
            presentation_path: self.presentation_path.clone(),
            frames: self.frames,
            connect_timeout: self.connect_timeout,
            phase: Phase::WaitingForState,
            captured: false,
            blank_captures: 0,
        })
        .insert_resource(CompilingPipelines::default())
        .add_systems(Last, capture_after_frames);
    }

    fn finish(&self, app: &mut App) {
        // The render sub-app exists once the renderer is set up (absent in headless apps).
        let compiling = app.world().resource::<CompilingPipelines>().clone();
        if let Some(render_app) = app.get_sub_app_mut(RenderApp) {
            render_app.insert_resource(compiling).add_systems(Render, count_compiling_pipelines);
        }
    }
}

/// Render pipelines still queued or compiling at the last render, written by the render
/// world and read by the capture.
#[derive(Resource, Clone, Default)]
struct CompilingPipelines(Arc<AtomicUsize>);

fn count_compiling_pipelines(compiling: Res<CompilingPipelines>, cache: Res<PipelineCache>) {
    compiling.0.store(cache.waiting_pipelines().count(), Ordering::Relaxed);
}

/// Progress of the capture.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    /// No state frame applied yet.
    WaitingForState,
    /// Counting rendered frames since the first state frame.
    Rendering { rendered: u32 },
    /// Screenshot requested at this real time, seconds.
    Requested { at_s: f64 },
    /// Exit already requested.
    Done,
}

/// Settings and progress of the screenshot mode.
#[derive(Resource)]
pub struct CaptureJob {
    path: PathBuf,
    /// The presentation-mode picture still to take after `path`.
    presentation_path: Option<PathBuf>,
    frames: u32,
    connect_timeout: Duration,
    phase: Phase,
    /// Set by the observer once the image has been handed to `save_to_disk`.
    captured: bool,
    /// Blank captures so far.
    blank_captures: u32,
}

/// True when every pixel of the image has the same value (nothing was drawn yet).
pub fn is_blank(image: &Image) -> bool {
    let Some(data) = image.data.as_deref() else { return true };
    let pixel = image.texture_descriptor.format.block_copy_size(None).unwrap_or(4).max(1) as usize;
    match data.get(..pixel) {
        Some(first) => data.chunks_exact(pixel).all(|p| p == first),
        None => true,
    }
}

/// What the render test reads about a picture besides its pixels.
#[derive(bevy::ecs::system::SystemParam)]
struct Sizes<'w> {
    strip: Option<Res<'w, StripMetrics>>,
    labels: Option<Res<'w, PlacedLabels>>,
    free: Option<Res<'w, FreeView>>,
}

/// One line per picture: `capture <file>: strip text <px> px, strip height <px> px,
/// label font <px> px, free view <x0> <y0> <x1> <y1>` (pixels; the free view in fractions
/// of the window). The strip's figures are those of the last frame it was drawn.
fn layout_line(path: &std::path::Path, sizes: &Sizes) -> String {
    let strip = sizes.strip.as_deref().copied().unwrap_or_default();
    let font = sizes.labels.as_ref().map_or(0.0, |l| l.font_px);
    let free = sizes.free.as_deref().copied().unwrap_or_default();
    format!(
        "capture {}: strip text {:.1} px, strip height {:.1} px, label font {:.1} px, free view {:.3} {:.3} {:.3} {:.3}",
        path.display(),
        strip.text_px,
        strip.height_px,
        font,
        free.min.x,
        free.min.y,
        free.max.x,
        free.max.y
    )
}

fn fail(exit: &mut MessageWriter<AppExit>, job: &mut CaptureJob, message: String) {
    eprintln!("twin-client: {message}");
    job.phase = Phase::Done;
    exit.write(AppExit::error());
}

fn capture_after_frames(
    mut commands: Commands,
    time: Res<Time<Real>>,
    (live, connection): (Res<LiveState>, Res<Connection>),
    compiling: Res<CompilingPipelines>,
    mut job: ResMut<CaptureJob>,
    mut exit: MessageWriter<AppExit>,
    (presentation, sizes): (Option<ResMut<Presentation>>, Sizes),
) {
    let now = time.elapsed_secs_f64();
    match job.phase {
        Phase::WaitingForState => {
            if live.has_frame() {
                job.phase = Phase::Rendering { rendered: 0 };
            } else if now > job.connect_timeout.as_secs_f64() {
                let status = match &connection.status {
                    LinkStatus::Retrying { reason, .. } => format!("last error: {reason}"),
                    LinkStatus::Failed(reason) => reason.clone(),
                    LinkStatus::Connected => "connected, but no state frame arrived".to_owned(),
                    LinkStatus::Connecting => "still connecting".to_owned(),
                };
                let message = format!(
                    "no state frame from {} within {} s ({status}); no screenshot written",
                    connection.server,
                    job.connect_timeout.as_secs()
                );
                fail(&mut exit, &mut job, message);
            }
        }
        Phase::Rendering { rendered } if rendered >= job.frames => {
            let mut save = save_to_disk(job.path.clone());
            commands.spawn(Screenshot::primary_window()).observe(
                move |captured: On<ScreenshotCaptured>, mut job: ResMut<CaptureJob>| {
                    if is_blank(&captured.image) {
                        job.blank_captures += 1;
                        let retry_from = job.frames.saturating_sub(FRAMES_BETWEEN_RETRIES);
                        job.phase = Phase::Rendering { rendered: retry_from };
                    } else {
                        save(captured);
                        job.captured = true;
                    }
                },
            );
            job.phase = Phase::Requested { at_s: now };
        }
        Phase::Rendering { rendered } => {
            // A frame counts only once every pipeline is ready; the capture timeout below
            // does not apply yet, so a renderer that never settles is caught by the test's
            // own deadline.
            if compiling.0.load(Ordering::Relaxed) == 0 {
                job.phase = Phase::Rendering { rendered: rendered + 1 };
            }
        }
        Phase::Requested { at_s } => {
            // `save_to_disk` writes synchronously inside the observer, so once `captured`
            // is set the file is complete or the write failed.
            if job.captured {
                let written = std::fs::metadata(&job.path).is_ok_and(|m| m.len() > 0);
                if written {
                    // What the picture shows, in window pixels, for the render test.
                    println!("{}", layout_line(&job.path, &sizes));
                }
                if written && let Some(next) = job.presentation_path.take() {
                    info!("screenshot saved to {}", job.path.display());
                    let Some(mut presentation) = presentation else {
                        let message = "no presentation mode in this client".to_owned();
                        fail(&mut exit, &mut job, message);
                        return;
                    };
                    presentation.on = true;
                    job.path = next;
                    job.captured = false;
                    job.phase = Phase::Rendering { rendered: job.frames.saturating_sub(SWITCH_FRAMES) };
                } else if written {
                    info!("screenshot saved to {}", job.path.display());
                    job.phase = Phase::Done;
                    exit.write(AppExit::Success);
                } else {
                    let message = format!("screenshot could not be written to {}", job.path.display());
                    fail(&mut exit, &mut job, message);
                }
            } else if job.blank_captures > MAX_BLANK_CAPTURES {
                let message = format!(
                    "the window stayed blank for {} captures; no screenshot written",
                    job.blank_captures
                );
                fail(&mut exit, &mut job, message);
            } else if now - at_s > CAPTURE_TIMEOUT.as_secs_f64() {
                let message = format!("screenshot not captured within {} s", CAPTURE_TIMEOUT.as_secs());
                fail(&mut exit, &mut job, message);
            }
        }
        Phase::Done => {}
    }
}

#[cfg(test)]
mod tests {
    use bevy::asset::RenderAssetUsages;
    use bevy::render::render_resource::{Extent3d, TextureDimension, TextureFormat};

    use super::*;

    fn image(pixels: &[[u8; 4]]) -> Image {
        Image::new(
            Extent3d { width: pixels.len() as u32, height: 1, depth_or_array_layers: 1 },
            TextureDimension::D2,
            pixels.concat(),
            TextureFormat::Rgba8UnormSrgb,
            RenderAssetUsages::default(),
        )
    }

    #[test]
    fn one_colour_images_are_blank() {
        assert!(is_blank(&image(&[[0, 0, 0, 255]; 4])));
        assert!(!is_blank(&image(&[[0, 0, 0, 255], [0, 0, 0, 255], [9, 0, 0, 255]])));
    }
}
