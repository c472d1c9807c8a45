//! `twin-client`: the Bevy 3D client of the industrial-complex twin, as a library of
//! plugins. The `twin-client` binary (`src/main.rs`) assembles them into the client; the
//! render benchmark (`examples/render_stress.rs`) assembles the same plugins without a
//! server, so it measures the real rendering code path.
//!
//! Architecture invariant: the client renders only what arrives over gRPC (`twin-proto`);
//! it never links the simulation core or the server.
//!
//! Layout (one plugin per file):
//! - `net`: `NetPlugin`, the tonic client on its own tokio thread, bridged by channels
//!   (`OfflinePlugin`: the same resources without a server, for the render benchmark).
//! - `model`: the layout and live state rebuilt from full and delta frames.
//! - `site`: `SitePlugin`, meshes for the layout, coloured and sized from the live state.
//! - `meshes`: procedural station models by kind and vehicle models, one shared mesh each.
//! - `stacks`: `StackPlugin` (added by `SitePlugin`), parts waiting in buffers as stacks,
//!   "+N" tags and the count on hover.
//! - `motion`: `MotionPlugin`, vehicle interpolation between frames.
//! - `labels`: `LabelPlugin` (added by `SitePlugin`), factory and station names and "+N"
//!   tags, decluttered by zoom and by a screen-space overlap pass.
//! - `vehicles`: `VehiclePlugin` (added by `SitePlugin`), vehicle models in a kind colour
//!   with the state on the roof, grown to a minimum on-screen size at any zoom.
//! - `camera`: `CameraPlugin`, orbit / pan / zoom and focusing.
//! - `select`: `SelectionPlugin`, click to select a station or vehicle.
//! - `dock`: `DockPlugin`, panels docked to the window's edges, collapsible, their
//!   layout remembered in a file; `Tab` hides them all.
//! - `heatmap`: `HeatMapPlugin`, stations coloured by a share (utilisation, starved,
//!   blocked, down) over a window, with its legend.
//! - `hud`: `HudPlugin`, egui panels (the *Stations* panel's body: `stations_panel`).
//! - `alarms`: `AlarmPlugin`, deviation alarms (beacons, panel) and live / stale badges.
//! - `capture`: `CapturePlugin`, the screenshot mode for render tests.
//! - `forecast_panel`: `ForecastPlugin`, the periodic forecast's panel and chart band.
//! - `presentation`: `PresentationPlugin`, presentation mode (a compact strip only).
//! - `programme`: `ProgrammePlugin`, the complexes against the programme's targets, and
//!   the switcher that reconnects to another complex.
//! - `timeline`: `TimelinePlugin`, the timeline (seek, live marker, branch, back to live).
//! - `tour`: `TourPlugin`, camera presets per factory (`1`..`9`, `0`) and the slow
//!   automatic tour (`T`).
//! - `trainer`: `TrainerPlugin`, *Break this station* next to a picked station, the
//!   gliding bottleneck ring and the animated ranking.
//! - `units`: durations, rates and money as a person reads them.
//! - `palette`: state colours shared by meshes and legend.

pub mod alarms;
pub mod camera;
pub mod capture;
pub mod dock;
pub mod forecast_panel;
pub mod heatmap;
pub mod hud;
pub mod labels;
pub mod meshes;
pub mod model;
pub mod motion;
pub mod net;
pub mod palette;
pub mod presentation;
pub mod programme;
pub mod select;
pub mod site;
pub mod stacks;
pub mod stations_panel;
pub mod timeline;
pub mod tour;
pub mod trainer;
pub mod units;
pub mod vehicles;
