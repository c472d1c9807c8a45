//! The real Bevy client renders a live complex: a real server on a real port, the real
//! `twin-client` binary under Xvfb with Mesa's software Vulkan, a PNG screenshot, and
//! checks that the picture is not blank and shows the station-state colours. A second
//! test takes screenshots at 1920x1080 and 1280x720, normal and in presentation mode (one
//! client run per size), checks the window size and measures from the picture how much
//! the panels cover.
//!
//! Needs `xvfb-run` and a Vulkan driver (Debian: `xvfb xauth mesa-vulkan-drivers`);
//! `scripts/test.sh` installs them.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use twin_core::time::HOUR;
use twin_e2e::*;
use twin_server::forecast::PeriodicForecast;

/// Frames rendered after the first state frame; the debug client runs at about one frame
/// per second under llvmpipe.
const FRAMES: &str = "20";
/// How long the whole client run may take (build-cache cold, shader compilation).
const CLIENT_DEADLINE: Duration = Duration::from_secs(600);
/// Fill colour of egui's windows in its dark theme (`Visuals::dark().window_fill`): the
/// panels' share of the picture is measured by it.
const PANEL_FILL: [u8; 3] = [27, 27, 27];
/// Largest share of the view that panels may cover in presentation mode (issue 16).
const PRESENTATION_MAX_SHARE: f64 = 0.15;
/// Largest share of the picture the docked panels' fill may cover in normal mode: at
/// 1280x720 the default layout leaves more than half of it to the 3D view.
const NORMAL_MAX_SHARE: f64 = 0.5;

/// The `twin-client` binary next to this test's target directory, built if needed.
fn client_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe.parent().and_then(Path::parent).expect("target/<profile>").to_path_buf();
    let target_dir = profile_dir.parent().expect("target dir").to_path_buf();
    let cargo = option_env!("CARGO").unwrap_or("cargo");
    let mut build = Command::new(cargo);
    build.current_dir(root()).args(["build", "--quiet", "--workspace", "--bin", "twin-client"]);
    build.env("CARGO_TARGET_DIR", &target_dir);
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        build.arg("--release");
    }
    assert!(build.status().expect("run cargo build").success(), "building twin-client failed");
    profile_dir.join(format!("twin-client{}", std::env::consts::EXE_SUFFIX))
}

fn decode_png(path: &Path) -> (u32, u32, Vec<[u8; 3]>) {
    let file = std::fs::File::open(path).expect("screenshot exists");
    let mut decoder = png::Decoder::new(std::io::BufReader::new(file));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).expect("PNG frame");
    let channels = info.color_type.samples();
    assert!(channels >= 3, "colour screenshot, got {:?}", info.color_type);
    let pixels = buf[..info.buffer_size()].chunks(channels).map(|c| [c[0], c[1], c[2]]).collect();
    (info.width, info.height, pixels)
}

fn near(a: [u8; 3], b: [u8; 3], tolerance: i16) -> bool {
    a.iter().zip(b).all(|(&x, y)| (i16::from(x) - i16::from(y)).abs() <= tolerance)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_renders_the_live_training_line() {
    assert!(
        Command::new("sh").args(["-c", "command -v xvfb-run"]).status().is_ok_and(|s| s.success()),
        "xvfb-run is missing: run scripts/test.sh, which installs xvfb and mesa-vulkan-drivers"
    );
    let client = client_binary();
    // A running clock, so that stations show busy, starved and blocked.
    let mut cfg = config("training-line.ron");
    cfg.start_paused = false;
    let server = TestServer::start(cfg).await;
    let out_dir = tempfile::tempdir().expect("temp dir");
    let shot = out_dir.path().join("site.png");

    let url = format!("http://{}", server.addr);
    screenshot(&client, &url, &shot, "1280x720x24", &[]).await;
    server.shutdown().await.expect("server stops cleanly");

    let (width, height, pixels) = decode_png(&shot);
    assert_eq!((width, height), (1280, 720), "window size");
    // Not blank: many distinct colours, none covering nearly everything.
    let mut counts = std::collections::BTreeMap::<[u8; 3], usize>::new();
    for p in &pixels {
        *counts.entry(*p).or_default() += 1;
    }
    let largest = counts.values().max().copied().unwrap_or(0);
    assert!(counts.len() > 200, "only {} distinct colours: blank picture?", counts.len());
    assert!(largest < pixels.len() * 9 / 10, "one colour covers {largest} of {} pixels", pixels.len());
    // The station-state colours (legend swatches and stations) are on screen.
    let states: [(&str, [u8; 3]); 3] =
        [("busy", [46, 170, 80]), ("starved", [235, 200, 40]), ("down", [215, 40, 40])];
    for (name, rgb) in states {
        let n = pixels.iter().filter(|&&p| near(p, rgb, 12)).count();
        assert!(n >= 20, "state colour `{name}` {rgb:?} is not on screen ({n} pixels)");
    }
    // Keep the picture for people: CI logs show where it went.
    let keep = root().join("target").join("render-test.png");
    if std::fs::copy(&shot, &keep).is_ok() {
        println!("screenshot kept at {}", keep.display());
    }
}

/// Runs the client under Xvfb (screen `screen`, e.g. "1920x1080x24") against `url` until
/// it saved a screenshot to `shot`; panics with its log if it fails. Returns the log.
async fn screenshot(client: &Path, url: &str, shot: &Path, screen: &str, extra: &[&str]) -> String {
    let mut command = Command::new("xvfb-run");
    command.args(["-a", "-s", &format!("-screen 0 {screen}")]).arg(client).args([
        "--server",
        url,
        "--screenshot",
        &shot.to_string_lossy(),
        "--frames",
        FRAMES,
        "--connect-timeout-s",
        "120",
    ]);
    command.args(extra);
    let started = Instant::now();
    let output = tokio::task::spawn_blocking(move || command.output().expect("start xvfb-run"));
    let output = tokio::time::timeout(CLIENT_DEADLINE, output)
        .await
        .expect("client finished within the deadline")
        .expect("client thread");
    let log =
        format!("{}\n{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "twin-client {extra:?} failed after {:?}:\n{log}", started.elapsed());
    log
}

/// A figure of the client's `capture <file>: ...` line for the picture `file`: the number
/// before ` px` after `name` (e.g. "strip text").
fn capture_figure(log: &str, file: &str, name: &str) -> f32 {
    let line = log
        .lines()
        .find(|l| l.starts_with("capture ") && l.contains(&format!("{file}:")))
        .unwrap_or_else(|| panic!("no capture line for {file} in the client's output:\n{log}"));
    let after = line.split(&format!("{name} ")).nth(1).unwrap_or_else(|| panic!("no {name} in {line:?}"));
    after.split(' ').next().and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("{name} in {line:?}"))
}

/// How much of the picture egui's panels cover, measured by their fill colour: the share
/// of pixels of that colour, and the share of the smallest rectangle holding them all
/// (an upper bound of a single strip's area, text and borders included).
fn panel_shares(width: u32, height: u32, pixels: &[[u8; 3]]) -> (f64, f64) {
    let (mut n, mut x0, mut y0, mut x1, mut y1) = (0usize, u32::MAX, u32::MAX, 0u32, 0u32);
    for (i, p) in pixels.iter().enumerate() {
        if near(*p, PANEL_FILL, 2) {
            let (x, y) = (i as u32 % width, i as u32 / width);
            n += 1;
            (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
        }
    }
    let total = f64::from(width) * f64::from(height);
    let bbox = if n == 0 { 0.0 } else { f64::from(x1 - x0 + 1) * f64::from(y1 - y0 + 1) };
    (n as f64 / total, bbox / total)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn screenshots_at_two_sizes_with_panels_under_15_percent_in_presentation_mode() {
    let client = client_binary();
    // A running clock and a periodic forecast, so that the normal view shows the KPI
    // panel with its forecast band, the forecast panel and the timeline's neighbours.
    let mut cfg = twin_server::Config {
        forecast: Some(PeriodicForecast {
            every: Duration::from_secs(2),
            replications: 5,
            ahead: Some(HOUR),
        }),
        ..config("training-line.ron")
    };
    cfg.start_paused = false;
    let server = TestServer::start(cfg).await;
    let url = format!("http://{}", server.addr);
    let out_dir = tempfile::tempdir().expect("temp dir");
    for (width, height) in [(1920u32, 1080u32), (1280, 720)] {
        let size = format!("{width}x{height}");
        let mut shares = Vec::new();
        // One client run per size: the normal picture, then presentation mode switched on
        // and a second picture.
        let normal = out_dir.path().join(format!("{size}.png"));
        let presenting = out_dir.path().join(format!("{size}-presentation.png"));
        let presenting_arg = presenting.to_string_lossy().into_owned();
        let extra = ["--window", size.as_str(), "--screenshot-presentation", presenting_arg.as_str()];
        // The screen is larger than the window: the picture's size is the window's.
        let log = screenshot(&client, &url, &normal, "2560x1440x24", &extra).await;
        // Legible from the back of a room (issue 16): the strip's text and the factory
        // labels in presentation mode, as the client laid them out, scale with the height.
        let file = format!("{size}-presentation.png");
        let (text, strip, label) = (
            capture_figure(&log, &file, "strip text"),
            capture_figure(&log, &file, "strip height"),
            capture_figure(&log, &file, "label font"),
        );
        println!("{file}: strip text {text} px, strip {strip} px tall, label font {label} px");
        let at_1080 = height as f32 / 1080.0;
        assert!(text >= 28.0 * at_1080 - 0.5, "{size}: presentation strip text {text} px");
        assert!(label >= 24.0 * at_1080 - 0.5, "{size}: presentation labels {label} px");
        assert!(strip >= text && strip < height as f32 * 0.15, "{size}: strip {strip} px tall");
        assert!(
            capture_figure(&log, &format!("{size}.png"), "label font") < label,
            "larger than in normal mode"
        );
        for shot in [&normal, &presenting] {
            let name = shot.file_name().expect("file name").to_string_lossy().into_owned();
            let (w, h, pixels) = decode_png(shot);
            assert_eq!((w, h), (width, height), "{name}: the window has the size --window asked for");
            let (pixel_share, bbox_share) = panel_shares(w, h, &pixels);
            println!(
                "{name}: panel fill covers {:.1} % of the picture, its bounding box {:.1} %",
                pixel_share * 100.0,
                bbox_share * 100.0
            );
            shares.push((pixel_share, bbox_share));
            let _ = std::fs::copy(shot, root().join("target").join(format!("render-test-{name}")));
        }
        let (normal, presenting) = (shares[0], shares[1]);
        assert!(presenting.0 > 0.002, "{size}: the presentation strip is on screen ({:.4})", presenting.0);
        assert!(
            presenting.1 < PRESENTATION_MAX_SHARE,
            "{size}: panels cover {:.1} % of the view in presentation mode (at most 15 %)",
            presenting.1 * 100.0
        );
        assert!(
            normal.0 < NORMAL_MAX_SHARE,
            "{size}: docked panels cover {:.1} % of the picture in normal mode (at most {:.0} %)",
            normal.0 * 100.0,
            NORMAL_MAX_SHARE * 100.0
        );
        assert!(
            normal.0 > 2.0 * presenting.0,
            "{size}: presentation mode hides the panels ({:.3} vs {:.3} of the picture)",
            normal.0,
            presenting.0
        );
    }
    server.shutdown().await.expect("server stops cleanly");
}

/// An AGV body pixel (`palette::vehicle_kind_rgb`, hot pink, lit or in shade): red well
/// above green and blue, blue above green. No state, ground, road or building colour is.
fn is_agv_body(p: [u8; 3]) -> bool {
    let [r, g, b] = p.map(i16::from);
    r > g + 80 && b > g + 40 && r > b + 30
}

/// A truck body pixel (lime): green above red, red well above blue.
fn is_truck_body(p: [u8; 3]) -> bool {
    let [r, g, b] = p.map(i16::from);
    g > 110 && g > r + 30 && r > b + 60
}

/// Issue 16: at site zoom (the camera frames the whole demo complex, 640 m across) AGVs
/// and trucks are drawn at a minimum on-screen size, so their body colours are in the
/// picture at 1920x1080 and at 1280x720.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vehicles_are_visible_at_site_zoom_at_two_sizes() {
    let client = client_binary();
    let mut cfg = config("demo-complex.ron");
    cfg.start_paused = false;
    let server = TestServer::start(cfg).await;
    let url = format!("http://{}", server.addr);
    let out_dir = tempfile::tempdir().expect("temp dir");
    for (width, height) in [(1920u32, 1080u32), (1280, 720)] {
        let size = format!("{width}x{height}");
        let name = format!("vehicles-{size}.png");
        let shot = out_dir.path().join(&name);
        screenshot(&client, &url, &shot, "2560x1440x24", &["--window", size.as_str(), "--presentation"])
            .await;
        let (w, h, pixels) = decode_png(&shot);
        let _ = std::fs::copy(&shot, root().join("target").join(format!("render-test-{name}")));
        assert_eq!((w, h), (width, height), "{name}: the window has the size --window asked for");
        let agv = pixels.iter().filter(|&&p| is_agv_body(p)).count();
        let truck = pixels.iter().filter(|&&p| is_truck_body(p)).count();
        println!("{name}: {agv} AGV body pixels, {truck} truck body pixels");
        // 40 AGVs and 6 trucks on the site; a few may hide behind buildings.
        assert!(agv >= 200, "{name}: AGVs are not visible at site zoom ({agv} pixels of their colour)");
        assert!(truck >= 50, "{name}: trucks are not visible at site zoom ({truck} pixels of their colour)");
    }
    server.shutdown().await.expect("server stops cleanly");
}
