//! `twin-client`: the Bevy 3D client of the industrial-complex twin. The plugins live in
//! the crate's library (`src/lib.rs`) so that the render benchmark
//! (`examples/render_stress.rs`) runs exactly the same systems.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use bevy::diagnostic::FrameTimeDiagnosticsPlugin;
use bevy::prelude::*;
use bevy::window::PresentMode;
use bevy::winit::{UpdateMode, WinitSettings};
use bevy_egui::EguiPlugin;
use clap::Parser;
use twin_client::{alarms, camera, capture, hud, motion, net, select, site};

/// Window size in screenshot mode, so captures are comparable between runs.
const CAPTURE_RESOLUTION: (u32, u32) = (1280, 720);

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
    /// Screenshot mode: render, save a PNG to this path, exit.
    #[arg(long, value_name = "PATH")]
    screenshot: Option<PathBuf>,
    /// Screenshot mode: frames to render after the first state frame arrived.
    #[arg(long, default_value_t = 60, requires = "screenshot")]
    frames: u32,
    /// Screenshot mode: seconds to wait for the first state frame before failing.
    #[arg(long, default_value_t = 60, requires = "screenshot")]
    connect_timeout_s: u64,
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
    if let Some(path) = &args.screenshot
        && let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating screenshot directory {}", parent.display()))?;
    }

    let mut window = Window { title: "Twin — industrial complex".into(), ..default() };
    if capture {
        window.resolution = CAPTURE_RESOLUTION.into();
        // No vsync wait: a virtual X server has no display to sync to.
        window.present_mode = PresentMode::AutoNoVsync;
    }

    let mut app = App::new();
    app.add_plugins(DefaultPlugins.set(WindowPlugin { primary_window: Some(window), ..default() }))
        .insert_resource(ClearColor(Color::srgb(0.55, 0.68, 0.80)))
        .add_plugins((FrameTimeDiagnosticsPlugin::default(), EguiPlugin::default()))
        .add_plugins((
            net::NetPlugin { server: args.server.clone(), security },
            site::SitePlugin,
            motion::MotionPlugin,
            camera::CameraPlugin,
            select::SelectionPlugin,
            hud::HudPlugin,
            alarms::AlarmPlugin,
        ));
    if let Some(path) = args.screenshot {
        // Keep rendering even though a window under Xvfb never has focus.
        app.insert_resource(WinitSettings {
            focused_mode: UpdateMode::Continuous,
            unfocused_mode: UpdateMode::Continuous,
        })
        .add_plugins(capture::CapturePlugin {
            path,
            frames: args.frames,
            connect_timeout: Duration::from_secs(args.connect_timeout_s),
        });
    }
    match app.run() {
        AppExit::Success => Ok(()),
        AppExit::Error(code) => std::process::exit(i32::from(code.get())),
    }
}
