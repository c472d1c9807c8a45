//! The simulation core of the industrial-complex twin.
//!
//! A pure, deterministic discrete-event engine: a scene goes in, events and KPIs come
//! out. It knows nothing of tokio, tonic, prost, Bevy or the wall clock; the same model,
//! seed and command sequence always give bit-identical results.
//!
//! Layout (each module owns what it says and knows nothing of the modules after it
//! that use it):
//! - [`time`]: integer simulation time (microseconds) and duration parsing.
//! - [`scene`]: the human-editable scene file format (RON) and file loading.
//! - [`error`]: scene errors naming file, line, column and field path.
//! - [`dist`]: processing-time distributions; [`rng`]: named, independent random
//!   streams (common random numbers).
//! - [`graph`]: path graphs and roads with exact shortest paths.
//! - [`model`]: scene -> validated, indexed model (`types`, `problems`, `build`,
//!   `complex`) and the routing decisions the simulation and the server share (`flow`).
//! - [`sim`]: the running simulation: a coordinator over subsystems with private state:
//!   - `sim::agenda`: the clock, the event heap ordered by `(time, sequence)`, follow-ups;
//!   - [`sim::flow`]: parts, stations, buffers and their reservations, conveyors,
//!     sources, waiters, failures, shifts, rush orders, the live bottleneck sweep;
//!   - [`sim::agv`]: AGV fleets, traffic control, deadlocks, batteries;
//!   - [`sim::trucks`]: trucks, docks and lanes; `sim::materials`: stock at the hub and
//!     the factories; `sim::staff`: worker pools;
//!   - `sim::handoff`: the values subsystems hand each other (orders out, deliveries
//!     back);
//!   - [`sim::commands`]: the public mutators besides stepping, with their limits;
//!   - [`sim::views`]: what the server and tests read;
//!   - [`sim::monitor`]: plant observations, live / stale / model-only per station, and
//!     the deviation monitor (a CUSUM on standardised cycle times) with its alarms;
//!   - `sim::persist`: whole-state save, restore and fork.
//! - [`snapshot`]: the snapshot file (version, scene hash, checksum) around the state.
//! - [`stats`]: accumulators (lead times, part totals, confidence intervals).
//! - [`report`]: the KPI report, pure functions of the state (`stations`, `complex`,
//!   `bottleneck`).
//! - [`forecast`]: many re-keyed futures of the current state, summarised as P10 / P50 /
//!   P90 bands and on-time probabilities (no threads: callers run replications in
//!   parallel).

pub mod dist;
pub mod error;
pub mod forecast;
pub mod graph;
pub mod model;
pub mod report;
pub mod rng;
pub mod scene;
pub mod sim;
pub mod snapshot;
pub mod stats;
pub mod time;

pub use error::{SceneError, SceneErrors};
pub use model::Model;
pub use report::Report;
pub use scene::Scene;
pub use sim::Sim;
pub use sim::commands::{Applied, Command, CommandError};
pub use sim::flow::{FailureSource, StationState, StationView};
pub use sim::materials::MaterialView;
pub use sim::monitor::{Alarm, Observation, Observed, SyncStatus};
