//! `twin-client`: the Bevy 3D client of the industrial-complex twin. The plugins live in
//! the crate's library (`src/lib.rs`) so that the render benchmark
//! (`examples/render_stress.rs`) runs exactly the same systems.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use bevy::diagnostic::FrameTimeDiagnosticsPlugin;
use bevy::prelude::*;
use bevy::window::{PresentMode, PrimaryWindow};
use bevy::winit::{UpdateMode, WinitSettings};
use bevy_egui::EguiPlugin;
use clap::Parser;
use twin_client::{
    alarms, camera, capture, dock, forecast_panel, heatmap, hud, motion, net, presentation, programme,
    select, site, timeline, tour, trainer,
};

/// Window size in screenshot mode without `--window`, so captures are comparable.
const CAPTURE_RESOLUTION: (u32, u32) = (1280, 720);
/// Frames after start-up at which the window is maximised.
const MAXIMISE_AFTER_FRAMES: u32 = 3;
/// Smallest window `--window` accepts (the panels need some room).
const MIN_WINDOW: (u32, u32) = (320, 240);
/// Largest window `--window` accepts (8K).
const MAX_WINDOW: (u32, u32) = (7680, 4320);

/// Parses `--window WxH` ("1920x1080").
fn parse_window(text: &str) -> Result<(u32, u32), String> {
    let (w, h) = text
        .split_once(['x', 'X'])
        .ok_or_else(|| format!("{text:?} is not WIDTHxHEIGHT (e.g. 1920x1080)"))?;
    let parse = |v: &str, what: &str| {
        v.trim().parse::<u32>().map_err(|_| format!("{what} {v:?} in {text:?} is not a whole number"))
    };
    let (w, h) = (parse(w, "width")?, parse(h, "height")?);
    if !(MIN_WINDOW.0..=MAX_WINDOW.0).contains(&w) || !(MIN_WINDOW.1..=MAX_WINDOW.1).contains(&h) {
        return Err(format!(
            "window {w}x{h} is outside {}x{} to {}x{}",
            MIN_WINDOW.0, MIN_WINDOW.1, MAX_WINDOW.0, MAX_WINDOW.1
        ));
    }
    Ok((w, h))
}

/// Parses `--ui-scale`: a factor from 0.5 to 3.
fn parse_ui_scale(text: &str) -> Result<f32, String> {
    let scale: f32 = text.trim().parse().map_err(|_| format!("{text:?} is not a number (e.g. 1.5)"))?;
    if !(0.5..=3.0).contains(&scale) {
        return Err(format!("UI scale {scale} is outside 0.5 to 3"));
    }
    Ok(scale)
}

/// 3D client of the industrial-complex digital twin.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// gRPC address of the twin server (`https://` for TLS).
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    server: String,
    /// Bearer token (static token or JWT) for a server with authentication.
    #[arg(long, env = "TWIN_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// CA certificate (PEM) that signed the server's certificate (https:// only; default:
    /// the system's roots).
    #[arg(long, value_name = "FILE")]
    ca: Option<PathBuf>,
    /// Client certificate (PEM) for servers that demand one (mutual TLS).
    #[arg(long, value_name = "FILE", requires = "client_key")]
    client_cert: Option<PathBuf>,
    /// Private key of --client-cert (PEM).
    #[arg(long, value_name = "FILE", requires = "client_cert")]
    client_key: Option<PathBuf>,
    /// Window size in pixels, WIDTHxHEIGHT (e.g. 1920x1080); default: the display's size
    /// (the window opens maximised; 1280x720 in screenshot mode). Always resizable.
    #[arg(long, value_name = "WxH", value_parser = parse_window)]
    window: Option<(u32, u32)>,
    /// Start in presentation mode: only a compact strip (clock, KPIs, bottleneck) over
    /// the 3D view. F5 switches it on and off.
    #[arg(long)]
    presentation: bool,
    /// File that remembers the panel layout (where each panel docks, open or collapsed);
    /// default: `$XDG_CONFIG_HOME/twin-client/panels.txt` (else `~/.config/...`). In
    /// screenshot mode the default layout is used and nothing is saved unless this is set.
    #[arg(long, value_name = "FILE", env = "TWIN_CLIENT_PANELS")]
    panels_file: Option<PathBuf>,
    /// Start in heat-map mode (stations coloured by utilisation over the whole run; `H`
    /// switches it, the *Heat map* panel chooses the share and the window).
    #[arg(long)]
    heat_map: bool,
    /// Select this station (scene id) once the layout arrives: its card, with *Break this
    /// station*, shows next to it.
    #[arg(long, value_name = "ID")]
    select: Option<String>,
    /// Size of the panels' text and controls, as a factor (a projector at the back of a
    /// room: 1.5 or 2). Default: 1, and in presentation mode a size that grows with the
    /// window's height (1.6 at 1080 p: strip text of about 29 px).
    #[arg(long, value_parser = parse_ui_scale)]
    ui_scale: Option<f32>,
    /// Screenshot mode: render, save a PNG to this path, exit.
    #[arg(long, value_name = "PATH")]
    screenshot: Option<PathBuf>,
    /// Screenshot mode: after the first picture, switch presentation mode on and save a
    /// second one to this path (both from one run).
    #[arg(long, value_name = "PATH", requires = "screenshot")]
    screenshot_presentation: Option<PathBuf>,
    /// Screenshot mode: frames to render after the first state frame arrived.
    #[arg(long, default_value_t = 60, requires = "screenshot")]
    frames: u32,
    /// Screenshot mode: seconds to wait for the first state frame before failing.
    #[arg(long, default_value_t = 60, requires = "screenshot")]
    connect_timeout_s: u64,
}

/// Asks the window system to maximise the primary window, once, a few frames after it
/// was created (a request made before winit created it would be lost).
fn maximise_window(mut windows: Query<&mut Window, With<PrimaryWindow>>, mut frames: Local<u32>) {
    *frames += 1;
    if *frames == MAXIMISE_AFTER_FRAMES
        && let Ok(mut window) = windows.single_mut()
    {
        window.set_maximized(true);
    }
}

fn read(path: &PathBuf) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let security = net::LinkSecurity {
        token: args.token.clone(),
        ca_pem: args.ca.as_ref().map(read).transpose()?,
        identity: match (&args.client_cert, &args.client_key) {
            (Some(cert), Some(key)) => Some((read(cert)?, read(key)?)),
            _ => None,
        },
    };
    security.bearer().map_err(anyhow::Error::msg)?;
    let capture = args.screenshot.is_some();
    for path in args.screenshot.iter().chain(&args.screenshot_presentation) {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating screenshot directory {}", parent.display()))?;
        }
    }

    let mut window = Window { title: "Twin — industrial complex".into(), resizable: true, ..default() };
    match args.window {
        Some(size) => window.resolution = size.into(),
        None if capture => window.resolution = CAPTURE_RESOLUTION.into(),
        // The display's size: maximised (by `maximise_window` once the window exists),
        // still resizable.
        None => {}
    }
    let maximise = args.window.is_none() && !capture;
    if capture {
        // No vsync wait: a virtual X server has no display to sync to.
        window.present_mode = PresentMode::AutoNoVsync;
    }

    let panels_file = match (&args.panels_file, capture) {
        (Some(file), _) => Some(file.clone()),
        (None, false) => dock::default_layout_file(),
        (None, true) => None,
    };

    let mut app = App::new();
    app.add_plugins(DefaultPlugins.set(WindowPlugin { primary_window: Some(window), ..default() }))
        .insert_resource(ClearColor(Color::srgb(0.55, 0.68, 0.80)))
        .add_plugins((FrameTimeDiagnosticsPlugin::default(), EguiPlugin::default()))
        .add_plugins((
            net::NetPlugin { server: args.server.clone(), security },
            dock::DockPlugin { file: panels_file, ui_scale: args.ui_scale },
            site::SitePlugin,
            motion::MotionPlugin,
            camera::CameraPlugin,
            select::SelectionPlugin,
            hud::HudPlugin,
            alarms::AlarmPlugin,
            forecast_panel::ForecastPlugin,
            timeline::TimelinePlugin,
            programme::ProgrammePlugin,
            presentation::PresentationPlugin { start_on: args.presentation },
        ))
        .add_plugins((
            heatmap::HeatMapPlugin { start_on: args.heat_map },
            tour::TourPlugin,
            trainer::TrainerPlugin { select: args.select.clone() },
        ));
    if maximise {
        app.add_systems(Update, maximise_window);
    }
    if let Some(path) = args.screenshot {
        // Keep rendering even though a window under Xvfb never has focus.
        app.insert_resource(WinitSettings {
            focused_mode: UpdateMode::Continuous,
            unfocused_mode: UpdateMode::Continuous,
        })
        .add_plugins(capture::CapturePlugin {
            path,
            presentation_path: args.screenshot_presentation,
            frames: args.frames,
            connect_timeout: Duration::from_secs(args.connect_timeout_s),
        });
    }
    match app.run() {
        AppExit::Success => Ok(()),
        AppExit::Error(code) => std::process::exit(i32::from(code.get())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_sizes_parse_and_are_checked() {
        assert_eq!(parse_window("1920x1080"), Ok((1920, 1080)));
        assert_eq!(parse_window("1280X720"), Ok((1280, 720)));
        assert!(parse_window("1920").expect_err("no x").contains("WIDTHxHEIGHT"));
        assert!(parse_window("wx720").expect_err("bad width").contains("width"));
        assert!(parse_window("10x10").expect_err("too small").contains("outside"));
    }

    #[test]
    fn ui_scales_parse_and_are_checked() {
        assert_eq!(parse_ui_scale("1.5"), Ok(1.5));
        assert!(parse_ui_scale("big").expect_err("not a number").contains("not a number"));
        assert!(parse_ui_scale("10").expect_err("too big").contains("outside"));
    }
}
