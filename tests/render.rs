//! The real Bevy client renders a live complex: a real server on a real port, the real
//! `twin-client` binary under Xvfb with Mesa's software Vulkan, a PNG screenshot, and
//! checks that the picture is not blank and shows the station-state colours.
//!
//! Needs `xvfb-run` and a Vulkan driver (Debian: `xvfb xauth mesa-vulkan-drivers`);
//! `scripts/test.sh` installs them.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use twin_e2e::*;

/// Frames rendered after the first state frame; the debug client runs at about one frame
/// per second under llvmpipe.
const FRAMES: &str = "20";
/// How long the whole client run may take (build-cache cold, shader compilation).
const CLIENT_DEADLINE: Duration = Duration::from_secs(600);

/// The `twin-client` binary next to this test's target directory, built if needed.
fn client_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe.parent().and_then(Path::parent).expect("target/<profile>").to_path_buf();
    let target_dir = profile_dir.parent().expect("target dir").to_path_buf();
    let cargo = option_env!("CARGO").unwrap_or("cargo");
    let mut build = Command::new(cargo);
    build.current_dir(root()).args(["build", "--quiet", "-p", "twin-client", "--bin", "twin-client"]);
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
    let shot_arg = shot.to_string_lossy().into_owned();
    let started = Instant::now();
    let output = tokio::task::spawn_blocking(move || {
        Command::new("xvfb-run")
            .args(["-a", "-s", "-screen 0 1280x720x24"])
            .arg(&client)
            .args([
                "--server",
                &url,
                "--screenshot",
                &shot_arg,
                "--frames",
                FRAMES,
                "--connect-timeout-s",
                "120",
            ])
            .output()
            .expect("start xvfb-run")
    });
    let output = tokio::time::timeout(CLIENT_DEADLINE, output)
        .await
        .expect("client finished within the deadline")
        .expect("client thread");
    let log =
        format!("{}\n{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "twin-client failed after {:?}:\n{log}", started.elapsed());
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
