//! What a telemetry source says about a station, decoded from Sparkplug B or gRPC but not
//! yet a core command: the shared middle of both ingest paths.

use serde::{Deserialize, Serialize};
use twin_core::time::Micros;

/// One observation of one station.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Reading {
    /// The station's reported state: down, or any other state ("not down").
    State { down: bool },
    /// The plant's cumulative counters (compared by the core, not forced).
    Counts { parts_in: u64, parts_out: u64 },
    /// One processing cycle finished at the reading's time.
    Cycle { duration: Micros, product: Option<String> },
    /// The station's source reports again (birth).
    Live,
    /// The station's source died or fell silent: its last known state is kept, marked.
    Stale,
}

/// A reading about a named station.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StationReading {
    pub station: String,
    pub reading: Reading,
}

/// Where a command on the core came from (kept with it in the telemetry log).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Origin {
    /// Part `part` of the raw record with this log sequence (a gRPC batch has one part
    /// per message; an MQTT message has one).
    Raw { seq: u64, part: u32 },
    /// A source fell silent past the stale timeout (wall clock).
    Silence,
    /// An operator's call (BreakDown, Repair, ...) while the telemetry log is kept.
    Operator,
}

/// Readings of one part of a raw record (or of a silence timeout), all at one plant time.
#[derive(Clone, Debug, PartialEq)]
pub struct Incoming {
    pub origin: Origin,
    /// Plant time mapped to simulation time (µs); None: apply at the twin's now.
    pub at: Option<Micros>,
    pub readings: Vec<StationReading>,
}

/// What the decoder hands the simulation thread after a group commit.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TelemetryBatch {
    /// Every raw record up to this log sequence is decoded (those without readings
    /// included), so a restart need not decode them again.
    pub through: Option<u64>,
    pub items: Vec<Incoming>,
    /// The first NBIRTH of the batch: its source and plant time (clock alignment).
    pub birth: Option<(String, Micros)>,
    /// Per source heard in the batch, the latest plant time its messages carried (the
    /// watermark: the twin's clock does not pass it while the source is live).
    pub marks: Vec<(String, Micros)>,
    /// Sources that died or fell silent: their watermarks no longer hold the clock.
    pub gone: Vec<String>,
    /// The decoder's sessions after `through` (with `--data` checkpoints only): what the
    /// next checkpoint records, so a restart need not re-read pruned raw records.
    pub sessions: Option<std::sync::Arc<super::decode::Sessions>>,
}
