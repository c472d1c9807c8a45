//! The plant emulator of the live twin (`twin plant`): runs a scene as the "real plant"
//! and publishes what a plant's edge gateways would, in Sparkplug B over MQTT.
//!
//! - [`drift`]: the drift file (how the plant differs from the model, unknown to the
//!   twin), parsed and validated with file:line:col errors, and applied to the scene.
//! - [`plant`]: the deterministic generator: simulation -> edge nodes and devices ->
//!   Sparkplug messages and session changes, with no broker and no clock.
//! - [`mqtt`]: the runner: paces plant time against the wall, carries the generator's
//!   output over one MQTT session per edge node (Last Will = NDEATH), and answers
//!   `Node Control/Rebirth` commands.
//!
//! The vocabulary (topics, metric names, types) is `twin_proto::sparkplug::vocab`.

pub mod drift;
pub mod mqtt;
pub mod plant;

pub use drift::{Drift, DriftFile};
pub use mqtt::{MqttTarget, PlantError, RunOptions, Speed};
pub use plant::{Message, Output, Plant, PlantOptions};
