//! The simulation core of the industrial-complex twin.
//!
//! A pure, deterministic discrete-event engine: a scene goes in, events and KPIs come
//! out. It knows nothing of tokio, tonic, prost, Bevy or the wall clock; the same model,
//! seed and command sequence always give bit-identical results.
//!
//! Layout:
//! - [`time`]: integer simulation time (microseconds) and duration parsing.
//! - [`scene`]: the human-editable scene file format (RON) and file loading.
//! - [`error`]: scene errors naming file, line, column and field path.
//! - [`model`]: validation and resolution of a scene into the indexed model.
//! - [`dist`]: processing-time distributions.
//! - [`rng`]: named, independent random streams (common random numbers).
//! - [`engine`]: the event list, the flow of parts, commands, live views.
//! - [`stats`]: accumulators; [`report`]: KPIs; [`bottleneck`]: the active-period method.

pub mod dist;
pub mod error;
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
pub use sim::flow::{StationState, StationView};
pub use sim::materials::MaterialView;
