//! Sparkplug B (Eclipse Sparkplug 3.0) over MQTT: the protobuf payload generated from
//! `proto/sparkplug/sparkplug_b.proto` (package `org.eclipse.tahu.protobuf`), plus the
//! wire-level pieces shared by the plant emulator (`twin plant`) and the twin's ingest:
//!
//! - [`topic`]: `spBv1.0/{group}/{KIND}/{edge node}[/{device}]` parsing and formatting;
//! - [`datatype`]: the standard's `DataType` numbers as `u32` constants;
//! - [`metric`]: building metrics of a given type and reading them back by name;
//! - [`vocab`]: the metric names and state strings this project publishes.
//!
//! Wire types only: nothing here knows the simulation core.

/// The prost messages of package `org.eclipse.tahu.protobuf`, re-exported below.
mod generated {
    #![allow(clippy::all, missing_docs)]
    include!(concat!(env!("OUT_DIR"), "/org.eclipse.tahu.protobuf.rs"));
}

pub use generated::*;

pub mod datatype;
pub mod metric;
pub mod topic;
pub mod vocab;

pub use metric::MetricValue;
pub use payload::Metric;
pub use topic::{MessageKind, Topic, TopicError};
