//! Render benchmark of the twin client: N moving vehicles (default 10,000) drawn by the
//! client's own plugins, K measured frames (default 600), one summary line, then exit.
//!
//! ```sh
//! cargo run --release -p twin-client --example render_stress -- --entities 10000 --frames 600
//! # without a display (software Vulkan, llvmpipe):
//! xvfb-run -a -s "-screen 0 1280x720x24" cargo run --release -p twin-client \
//!     --example render_stress -- --entities 1000
//! ```
//!
//! What runs is the real client code path: `SitePlugin` spawns the vehicles from a
//! `Layout` (one shared mesh per vehicle kind and state and one shared material, so Bevy
//! batches / instances them; its `VehiclePlugin` grows each to its minimum on-screen size
//! every frame and its `LabelPlugin` runs the label pass), `MotionPlugin` retargets and
//! interpolates them, `CameraPlugin` frames the site, `SelectionPlugin` and the egui `HudPlugin` (with its FPS readout) run as in the
//! product. Only the gRPC bridge is replaced by `OfflinePlugin`.
//!
//! **Benchmark input, not a server stand-in.** The vehicle positions are synthetic: every
//! rendered frame (or `--feed-hz` times a second) this example writes a delta `StateFrame`
//! in which every vehicle moved (each drives a small circle around its own grid point) and
//! applies it with `LiveState::apply_frame`, exactly what the net bridge does with a frame
//! from the server. That makes every vehicle retarget and move every frame, the worst case
//! for the client. The product never synthesises state: it draws only what the server
//! streams.
//!
//! The summary line reports entities, measured frames, mean FPS, p50 / p99 / max frame time
//! in milliseconds, and the wgpu adapter (name, backend, device type, driver), so a reader
//! can tell a software rasteriser (llvmpipe, device type `Cpu`) from a real GPU. Frames are
//! measured only after a warm-up during which no render pipeline is still compiling.

use std::f64::consts::TAU;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

use bevy::diagnostic::FrameTimeDiagnosticsPlugin;
use bevy::prelude::*;
use bevy::render::batching::gpu_preprocessing::{GpuPreprocessingMode, GpuPreprocessingSupport};
use bevy::render::render_resource::PipelineCache;
use bevy::render::renderer::RenderAdapterInfo;
use bevy::render::{Render, RenderApp};
use bevy::window::PresentMode;
use bevy::winit::{UpdateMode, WinitSettings};
use bevy_egui::EguiPlugin;
use clap::Parser;
use twin_client::model::{LiveState, SiteLayout};
use twin_client::net::{LayoutChanged, OfflinePlugin};
use twin_client::{camera, hud, motion, select, site};
use twin_proto::v1::{
    Bounds, ClockState, Layout, StateFrame, Vehicle, VehicleKind, VehicleState, VehicleStateKind,
};

/// Distance between the vehicles' grid points, metres.
const GRID_SPACING_M: f64 = 4.0;
/// Radius of each vehicle's circular track, metres.
const TRACK_RADIUS_M: f64 = 1.2;
/// Angular speed on the track, radians per second (about 0.6 m/s).
const TRACK_RAD_PER_S: f64 = 0.5;
/// Vehicle activities cycled over the fleet, so several shared materials are in use.
const STATES: [VehicleStateKind; 4] = [
    VehicleStateKind::TravellingEmpty,
    VehicleStateKind::TravellingLoaded,
    VehicleStateKind::Loading,
    VehicleStateKind::WaitingTraffic,
];

/// Render benchmark: N moving vehicles through the client's real rendering code path.
#[derive(Parser, Debug, Clone, Resource)]
#[command(about)]
struct Args {
    /// Number of moving vehicles.
    #[arg(long, default_value_t = 10_000)]
    entities: u32,
    /// Frames measured after the warm-up.
    #[arg(long, default_value_t = 600)]
    frames: u32,
    /// Frames of warm-up with no render pipeline compiling before measuring.
    #[arg(long, default_value_t = 120)]
    warmup_frames: u32,
    /// Shortest warm-up, seconds (the camera's framing glide takes about one second).
    #[arg(long, default_value_t = 2.0)]
    warmup_min_s: f64,
    /// Give up after this many seconds in all; the summary then covers the frames measured
    /// so far (exit 0), or the run fails (exit 1) if the warm-up never ended.
    #[arg(long, default_value_t = 900.0)]
    max_seconds: f64,
    /// Synthetic state frames per second; 0 means one per rendered frame (worst case).
    #[arg(long, default_value_t = 0.0)]
    feed_hz: f64,
    /// Leave out the egui HUD (to see what it costs).
    #[arg(long)]
    no_hud: bool,
    /// Wait for vsync (caps the frame rate at the display's refresh rate).
    #[arg(long)]
    vsync: bool,
    /// Window width, pixels.
    #[arg(long, default_value_t = 1280)]
    width: u32,
    /// Window height, pixels.
    #[arg(long, default_value_t = 720)]
    height: u32,
}

/// What the render world reports back: pipelines still compiling and GPU preprocessing.
#[derive(Resource, Clone, Default)]
struct RenderProbe(Arc<ProbeValues>);

#[derive(Default)]
struct ProbeValues {
    /// Pipelines queued or compiling at the last render.
    waiting_pipelines: AtomicUsize,
    /// 0 unknown, 1 none, 2 preprocessing only, 3 preprocessing and culling.
    gpu_preprocessing: AtomicU8,
}

/// The reused synthetic delta frame (allocated once, rewritten in place).
#[derive(Resource)]
struct Feed {
    frame: StateFrame,
    /// Time of the last frame fed, seconds.
    last_fed_s: f64,
}

/// Progress of the measurement.
#[derive(Resource)]
struct Bench {
    /// Consecutive warm-up frames with no pipeline compiling.
    settled_frames: u32,
    /// Frame times, seconds; capacity reserved up front.
    frame_times: Vec<f64>,
    /// Frames measured while some pipeline was compiling again.
    frames_with_compiles: u32,
    done: bool,
}

fn main() {
    let args = Args::parse();
    let present_mode = if args.vsync { PresentMode::AutoVsync } else { PresentMode::AutoNoVsync };
    let window = Window {
        title: format!("twin-client render stress: {} vehicles", args.entities),
        resolution: (args.width, args.height).into(),
        present_mode,
        ..default()
    };

    let mut app = App::new();
    app.add_plugins(DefaultPlugins.set(WindowPlugin { primary_window: Some(window), ..default() }))
        .insert_resource(ClearColor(Color::srgb(0.55, 0.68, 0.80)))
        // Keep rendering at full speed even though a window under Xvfb never has focus.
        .insert_resource(WinitSettings {
            focused_mode: UpdateMode::Continuous,
            unfocused_mode: UpdateMode::Continuous,
        })
        .add_plugins(FrameTimeDiagnosticsPlugin::default())
        .add_plugins((
            OfflinePlugin { label: format!("render stress ({} vehicles)", args.entities) },
            site::SitePlugin,
            motion::MotionPlugin,
            camera::CameraPlugin,
            select::SelectionPlugin,
        ));
    if !args.no_hud {
        app.add_plugins((EguiPlugin::default(), hud::HudPlugin));
    }
    let probe = RenderProbe::default();
    app.sub_app_mut(RenderApp).insert_resource(probe.clone()).add_systems(Render, probe_render_world);
    let frames = args.frames as usize;
    app.insert_resource(probe)
        .insert_resource(Feed { frame: StateFrame::default(), last_fed_s: f64::NEG_INFINITY })
        .insert_resource(Bench {
            settled_frames: 0,
            frame_times: Vec::with_capacity(frames),
            frames_with_compiles: 0,
            done: false,
        })
        .insert_resource(args)
        .add_systems(Startup, install_synthetic_layout)
        // Where the net bridge applies server frames.
        .add_systems(PreUpdate, feed_synthetic_frame)
        .add_systems(Last, measure);
    match app.run() {
        AppExit::Success => {}
        AppExit::Error(code) => std::process::exit(i32::from(code.get())),
    }
}

/// Render world: how many pipelines are still compiling, and the GPU preprocessing mode.
fn probe_render_world(
    probe: Res<RenderProbe>,
    cache: Res<PipelineCache>,
    support: Option<Res<GpuPreprocessingSupport>>,
) {
    probe.0.waiting_pipelines.store(cache.waiting_pipelines().count(), Ordering::Relaxed);
    let mode = match support.map(|s| s.max_supported_mode) {
        None => 0,
        Some(GpuPreprocessingMode::None) => 1,
        Some(GpuPreprocessingMode::PreprocessingOnly) => 2,
        Some(GpuPreprocessingMode::Culling) => 3,
    };
    probe.0.gpu_preprocessing.store(mode, Ordering::Relaxed);
}

/// Grid point of vehicle `i` (site frame, metres).
fn grid_point(i: u32, columns: u32) -> (f64, f64) {
    let (col, row) = (i % columns, i / columns);
    ((f64::from(col) + 0.5) * GRID_SPACING_M, (f64::from(row) + 0.5) * GRID_SPACING_M)
}

fn columns(n: u32) -> u32 {
    (f64::from(n.max(1))).sqrt().ceil() as u32
}

/// A layout of N AGVs on a square grid, installed as if `GetLayout` had returned it.
fn install_synthetic_layout(
    args: Res<Args>,
    mut site: ResMut<SiteLayout>,
    mut live: ResMut<LiveState>,
    mut feed: ResMut<Feed>,
    mut changed: MessageWriter<LayoutChanged>,
) {
    let n = args.entities;
    let side = f64::from(columns(n)) * GRID_SPACING_M;
    let layout = Layout {
        layout_generation: 1,
        scene_name: "render-stress".into(),
        scene_title: format!("Render stress: {n} vehicles (synthetic)"),
        site_bounds: Some(Bounds { min_x: 0.0, min_y: 0.0, max_x: side, max_y: side }),
        vehicles: (0..n)
            .map(|i| Vehicle {
                index: i,
                id: format!("agv-{i}"),
                kind: VehicleKind::Agv as i32,
                capacity: 1,
                ..default()
            })
            .collect(),
        ..default()
    };
    live.reset_for(&layout);
    site.layout = Some(layout);
    changed.write(LayoutChanged);
    feed.frame = StateFrame {
        seq: 0,
        full: true,
        layout_generation: 1,
        clock: Some(ClockState { speed: 1.0, ..default() }),
        vehicles: (0..n)
            .map(|i| VehicleState {
                index: i,
                state: STATES[i as usize % STATES.len()] as i32,
                battery: 1.0,
                speed_m_s: TRACK_RADIUS_M * TRACK_RAD_PER_S,
                ..default()
            })
            .collect(),
        ..default()
    };
}

/// Moves every vehicle along its circle in the reused frame and applies it to `LiveState`,
/// as the net bridge applies a frame from the server. No allocation.
fn feed_synthetic_frame(
    time: Res<Time>,
    args: Res<Args>,
    site: Res<SiteLayout>,
    mut feed: ResMut<Feed>,
    mut live: ResMut<LiveState>,
) {
    let now = time.elapsed_secs_f64();
    if args.feed_hz > 0.0 && now - feed.last_fed_s < 1.0 / args.feed_hz {
        return;
    }
    feed.last_fed_s = now;
    let columns = columns(args.entities);
    let feed = &mut *feed;
    feed.frame.seq += 1;
    feed.frame.full = feed.frame.seq == 1;
    if let Some(clock) = feed.frame.clock.as_mut() {
        clock.sim_time_us = (now * 1e6) as u64;
    }
    for v in &mut feed.frame.vehicles {
        let (cx, cy) = grid_point(v.index, columns);
        let angle = now * TRACK_RAD_PER_S + f64::from(v.index) * 0.618_033_988 * TAU;
        v.x = cx + TRACK_RADIUS_M * angle.cos();
        v.y = cy + TRACK_RADIUS_M * angle.sin();
        v.heading_rad = angle + TAU / 4.0;
    }
    if let Err(e) = live.apply_frame(&feed.frame, site.generation()) {
        error!("synthetic frame rejected: {e}");
    }
}

fn percentile_ms(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] * 1000.0
}

/// Warm-up, then records each frame's wall time; prints the summary and exits.
fn measure(
    time: Res<Time<Real>>,
    args: Res<Args>,
    probe: Res<RenderProbe>,
    adapter: Option<Res<RenderAdapterInfo>>,
    vehicles: Query<&Visibility, With<site::VehicleIndex>>,
    mut bench: ResMut<Bench>,
    mut exit: MessageWriter<AppExit>,
) {
    if bench.done {
        return;
    }
    let elapsed = time.elapsed_secs_f64();
    let compiling = probe.0.waiting_pipelines.load(Ordering::Relaxed) > 0;
    let timed_out = elapsed > args.max_seconds;
    let measuring = bench.settled_frames >= args.warmup_frames;
    if !measuring {
        // Warm up until the vehicles exist and are placed and no pipeline is compiling.
        let placed = vehicles.iter().next().is_some_and(|v| *v != Visibility::Hidden);
        if compiling || !placed {
            bench.settled_frames = 0;
        } else if elapsed >= args.warmup_min_s {
            bench.settled_frames += 1;
        }
        if timed_out {
            eprintln!("render_stress: warm-up did not finish within {} s", args.max_seconds);
            bench.done = true;
            exit.write(AppExit::error());
        }
        return;
    }
    bench.frame_times.push(time.delta_secs_f64());
    bench.frames_with_compiles += u32::from(compiling);
    if bench.frame_times.len() < args.frames as usize && !timed_out {
        return;
    }
    bench.done = true;

    let mut sorted = bench.frame_times.clone();
    sorted.sort_by(f64::total_cmp);
    let total: f64 = sorted.iter().sum();
    let frames = sorted.len();
    let mean_fps = if total > 0.0 { frames as f64 / total } else { f64::NAN };
    let (name, backend, device_type, driver) = match adapter.as_deref() {
        Some(info) => (
            info.name.clone(),
            format!("{:?}", info.backend),
            format!("{:?}", info.device_type),
            format!("{} {}", info.driver, info.driver_info).trim().to_owned(),
        ),
        None => ("unknown".to_owned(), "?".to_owned(), "?".to_owned(), String::new()),
    };
    let preprocessing = match probe.0.gpu_preprocessing.load(Ordering::Relaxed) {
        1 => "none (CPU batching)",
        2 => "preprocessing",
        3 => "preprocessing+culling",
        _ => "unknown",
    };
    println!(
        "render_stress: entities={} frames={frames} mean_fps={mean_fps:.1} p50_ms={:.2} p99_ms={:.2} \
         max_ms={:.2} adapter=\"{name}\" backend={backend} device_type={device_type} \
         driver=\"{driver}\" gpu_preprocessing={preprocessing} window={}x{} vsync={} hud={} \
         feed={} frames_while_compiling={}{}",
        args.entities,
        percentile_ms(&sorted, 50.0),
        percentile_ms(&sorted, 99.0),
        sorted.last().copied().unwrap_or(f64::NAN) * 1000.0,
        args.width,
        args.height,
        args.vsync,
        !args.no_hud,
        if args.feed_hz > 0.0 { format!("{}Hz", args.feed_hz) } else { "every-frame".to_owned() },
        bench.frames_with_compiles,
        if timed_out { " (stopped early at --max-seconds)" } else { "" },
    );
    exit.write(AppExit::Success);
}
