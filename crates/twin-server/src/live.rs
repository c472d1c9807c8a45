//! Plain values of the live run that the simulation thread produces and the wire layer
//! converts: the clock, receipts of commands, refusals and reports. No behaviour here, so
//! that [`crate::sim`] and [`crate::convert`] both depend on this module and not on each
//! other.

use std::sync::Arc;

use twin_core::sim::flow::{RushOrder, RushOrderId};
use twin_core::time::Micros;
use twin_core::{CommandError, Model, Report};

/// Pacing of the simulation clock.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Speed {
    /// Simulated seconds per wall-clock second (finite, > 0).
    Paced(f64),
    /// As fast as possible.
    Max,
}

/// The clock as every control call and frame reports it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Clock {
    pub sim_time: Micros,
    pub speed: Speed,
    /// Last finite speed, reported while running at max speed and restored by SetSpeed.
    pub paced_speed: f64,
    pub paused: bool,
    /// Simulated seconds per wall second over the last second or so.
    pub achieved_speed: f64,
    pub run_until: Option<Micros>,
    pub seed: u64,
}

/// Why a control call was refused.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("sim_time_us {target} is not after the current simulation time {now}")]
    NotAfterNow { target: Micros, now: Micros },
    /// The new run (Reset, LoadScene) could not be written to the durable log, so it did
    /// not start: the live run goes on as before.
    #[error("not done: {0}")]
    NotLogged(NotLogged),
}

/// Why an injection (a command on the run) was refused.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum InjectError {
    /// The core refused it (unknown id, state conflict).
    #[error(transparent)]
    Command(#[from] CommandError),
    /// The durable log could not take it, so it was not applied (a restart could not
    /// replay it): the run is as it was before the call.
    #[error("not applied: {0}")]
    NotLogged(NotLogged),
}

/// A durable log's write failure (disk full, I/O error), naming the log file.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("the durable log could not record it ({0}); retry once the disk is writable")]
pub struct NotLogged(pub String);

/// Acknowledgement of an applied command.
#[derive(Debug, Clone, Copy)]
pub struct Receipt {
    pub applied_at: Micros,
    /// 1-based position in the run's command log.
    pub seq: u64,
    pub generation: u64,
    /// The rush order the command placed, if it placed one.
    pub rush_order: Option<RushOrderId>,
}

/// A fresh report of the live run.
#[derive(Debug)]
pub struct ReportReply {
    pub report: Report,
    /// Catalogue name of the scene.
    pub scene_name: String,
    /// The model the run simulates (for ids and indices).
    pub model: Arc<Model>,
    /// Every rush order of the run with its progress.
    pub rush_orders: Vec<RushOrder>,
    /// Wall seconds since the run started (the `wall_s` of the JSON document).
    pub wall_s: f64,
}
