//! Layout experiments for the industrial-complex twin.
//!
//! Planners ask "does this change really help?". An experiment file names a base
//! scene, variants (lists of edits) and sweeps, how many replications to run and which
//! KPIs to compare. This crate edits and validates each variant's scene, runs every
//! variant x replication on a pool of threads with common random numbers, and reports
//! each KPI's mean with a Student-t confidence interval, the paired difference against
//! the baseline with its interval, and a ranking; plus tables, CSV, JSON and SVG plots.
//!
//! Architecture invariant: pure and synchronous like `twin-core` (no tokio, tonic or
//! prost). A replication is a pure function of (scene, edits, seed), so results are
//! bit-identical whatever the number of jobs, and whether they run here or on
//! `twin worker` processes elsewhere ([`bundle`], [`replicate`]).
//!
//! Layout:
//! - [`file`](mod@file): the experiment file format (RON), with an example below.
//! - [`edit`]: applying edits to a `twin_core::Scene`.
//! - [`kpi`]: KPI paths into a run's report (`stations[mill].utilization`).
//! - [`experiment`]: validation, sweep expansion, seeds ([`Experiment`]).
//! - [`run`](mod@run): the parallel runner with progress and cancel ([`run()`]).
//! - [`results`]: estimates, paired differences, rankings ([`Results`]).
//! - [`output`]: text tables, CSV and JSON; [`plot`]: SVG plots.
//! - [`forecast`](mod@forecast): a forecast's replications on the same kind of pool
//!   ([`run_forecast`]).
//! - [`bundle`]: the wire format of distributed experiments (an experiment with its
//!   scene by content, jobs and results), which `twin worker` and
//!   `twin experiment --nats` carry over NATS JetStream.
//!
//! # Driving it (CLI or gRPC server)
//!
//! ```no_run
//! use std::sync::atomic::AtomicBool;
//! use twin_lab::{Experiment, RunOptions};
//!
//! let text = std::fs::read_to_string("scenes/experiments/training-line-buffers.ron")?;
//! // `origin` names the text in messages; the base scene is found relative to the dir.
//! // A server taking text from the network uses `Experiment::parse_confined`, which
//! // keeps the `scene` path inside that dir.
//! let experiment = Experiment::parse(
//!     &text,
//!     "training-line-buffers.ron".as_ref(),
//!     "scenes/experiments".as_ref(),
//! )?;
//! // gRPC ExperimentStarted: experiment.variant_names(), experiment.replications,
//! // experiment.total_runs().
//! let cancel = AtomicBool::new(false); // CancelExperiment sets it.
//! let results = twin_lab::run(
//!     &experiment,
//!     &RunOptions { jobs: 0 },
//!     |p| eprintln!("{}/{} {} #{}", p.done, p.total, p.variant, p.replication),
//!     &cancel,
//! )?;
//! // gRPC ExperimentFinished: results.outcome, results.by_variant(), results.to_json().
//! print!("{}", twin_lab::output::render(&results));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Experiment file
//!
//! ```ron
//! Experiment(
//!     name: "training-line-buffers",
//!     scene: "../training-line.ron",      // relative to this file
//!     replications: 20,
//!     seed: 7,                            // default: the scene's seed
//!     common_random_numbers: true,        // default
//!     confidence: 0.95,                   // default
//!     run: (until: "5d", warmup: "8h"),   // each defaults to the scene's
//!     kpis: [
//!         "complex.throughput_per_hour",  // a bare path, or the long form:
//!         (path: "complex.lead_time_mean_s", name: "lead time", better: Lower),
//!         "stations[mill].blocked",       // see `kpi` for the path syntax
//!     ],
//!     baseline: "baseline",               // default: the first variant
//!     variants: [
//!         (name: "baseline"),
//!         (name: "mill buffer 10", edits: [SetBuffer(station: "mill", capacity: 10)]),
//!         (name: "second mill", edits: [SetServers(station: "mill", servers: 2)]),
//!     ],
//!     sweeps: [
//!         (name: "mill buffer", axes: [(param: Buffer("mill"), values: [1, 2, 5, 10])]),
//!     ],
//! )
//! ```
//!
//! Edits: `SetBuffer`, `SetServers`, `AddStation` (as an alternative of an existing
//! station, or as a new routing step), `RemoveStation`, `MoveStation`, `SetArrivalRate`,
//! `SetMix`, `SetMixWeight`, `SetShifts`, `SetCalendar`, `SetAgvCount`,
//! `SetTruckCount`; see [`file::Edit`]. Sweep parameters: `Buffer`, `Servers`,
//! `ArrivalRate`, `MixWeight`, `Agvs`, `Trucks`; see [`file::Param`].

pub mod bundle;
pub mod edit;
pub mod error;
pub mod experiment;
pub mod file;
pub mod forecast;
pub mod kpi;
pub mod output;
pub mod plot;
pub mod results;
pub mod run;

pub use error::{FileProblem, LabError};
pub use experiment::{Experiment, Kpi, Variant};
pub use file::{Better, Edit, ExperimentFile};
pub use forecast::run_forecast;
pub use results::{Estimate, KpiResult, KpiRow, MetricEstimate, Outcome, Results, VariantEstimates};
pub use run::{Progress, RunOptions, replicate, run};
