//! `twin experiment`: runs a layout experiment, prints one table per KPI and writes
//! results.json, CSV files and SVG plots. The work itself lives in `twin_lab`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use twin_lab::{Experiment, Outcome, RunOptions};

/// Arguments of `twin experiment`.
#[derive(clap::Args)]
pub struct ExperimentArgs {
    /// Experiment file, e.g. scenes/experiments/training-line-buffers.ron.
    file: PathBuf,
    /// Replications run at once (default: one per core). Results never depend on it.
    #[arg(long, short)]
    jobs: Option<usize>,
    /// Folder for results.json, the CSV files, report.txt and the SVG plots
    /// (default: out/<experiment name>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Replications per variant, overriding the file (at least 2).
    #[arg(long)]
    replications: Option<u32>,
    /// Print the results JSON on stdout instead of the tables.
    #[arg(long)]
    json: bool,
    /// Run the replications on `twin worker` processes behind this NATS JetStream
    /// server (several: comma-separated) instead of locally; outputs are byte-identical.
    #[arg(long, env = "TWIN_NATS", conflicts_with = "jobs")]
    nats: Option<String>,
    #[command(flatten)]
    queue: crate::queue::QueueArgs,
}

/// Reports progress: a bar on a terminal, a few log lines otherwise.
enum Reporter {
    Bar(ProgressBar),
    Log {
        started: Instant,
        /// Next quarter (in replications) at which to print a line.
        next: Mutex<usize>,
    },
}

impl Reporter {
    fn new(total: usize) -> Reporter {
        if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new(total as u64);
            let style = ProgressStyle::with_template(
                "{spinner} {elapsed_precise} [{wide_bar}] {pos}/{len} replications \
                 {per_sec} ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            bar.set_style(style);
            bar.enable_steady_tick(Duration::from_millis(200));
            Reporter::Bar(bar)
        } else {
            Reporter::Log { started: Instant::now(), next: Mutex::new(total.div_ceil(4).max(1)) }
        }
    }

    fn tick(&self, done: usize, total: usize) {
        match self {
            Reporter::Bar(bar) => bar.set_position(done as u64),
            Reporter::Log { started, next } => {
                let Ok(mut next) = next.lock() else { return };
                if done >= *next && done < total {
                    let rate = done as f64 / started.elapsed().as_secs_f64().max(1e-9);
                    eprintln!("experiment: {done}/{total} replications, {rate:.1}/s");
                    *next += total.div_ceil(4).max(1);
                }
            }
        }
    }

    fn finish(&self) {
        if let Reporter::Bar(bar) = self {
            bar.finish_and_clear();
        }
    }
}

/// Sets `cancel` on Ctrl-C, so that an interrupted experiment still prints and writes
/// what finished (marked CANCELLED) instead of losing it. Returns once the handler is
/// installed, so that an early Ctrl-C is never the default "kill".
fn cancel_on_ctrl_c(cancel: Arc<AtomicBool>) {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
            return;
        };
        rt.block_on(async move {
            #[cfg(unix)]
            {
                use tokio::signal::unix::{SignalKind, signal};
                let Ok(mut interrupt) = signal(SignalKind::interrupt()) else { return };
                let _ = ready_tx.send(());
                if interrupt.recv().await.is_some() {
                    cancel.store(true, Ordering::Relaxed);
                }
            }
            #[cfg(not(unix))]
            {
                let _ = ready_tx.send(());
                if tokio::signal::ctrl_c().await.is_ok() {
                    cancel.store(true, Ordering::Relaxed);
                }
            }
        });
    });
    let _ = ready_rx.recv_timeout(Duration::from_secs(5));
}

/// Runs `twin experiment`.
pub fn run(args: ExperimentArgs) -> Result<ExitCode> {
    let mut experiment = match Experiment::load(&args.file) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("{e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    if let Some(n) = args.replications {
        anyhow::ensure!(
            (2..=twin_lab::experiment::MAX_REPLICATIONS).contains(&n),
            "--replications must be between 2 and {}, got {n}",
            twin_lab::experiment::MAX_REPLICATIONS
        );
        experiment.replications = n;
    }
    let out = args.out.unwrap_or_else(|| PathBuf::from("out").join(twin_lab::output::slug(&experiment.name)));
    let total = experiment.total_runs();
    let options = RunOptions { jobs: args.jobs.unwrap_or(0) };
    let cancel = Arc::new(AtomicBool::new(false));
    cancel_on_ctrl_c(Arc::clone(&cancel));
    eprintln!(
        "experiment \"{}\": {} variants x {} replications = {total} runs",
        experiment.name,
        experiment.variants.len(),
        experiment.replications
    );
    let reporter = Reporter::new(total);
    let started = Instant::now();
    let results = match &args.nats {
        None => {
            let result = twin_lab::run(&experiment, &options, |p| reporter.tick(p.done, p.total), &cancel);
            reporter.finish();
            match result {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("{e}");
                    return Ok(ExitCode::FAILURE);
                }
            }
        }
        Some(url) => {
            let tick = |done, total| reporter.tick(done, total);
            let result = crate::collect::run(
                &experiment,
                &args.file,
                args.replications,
                url,
                &args.queue,
                &tick,
                &cancel,
            );
            reporter.finish();
            match result {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("experiment \"{}\" failed: {e:#}", experiment.name);
                    return Ok(ExitCode::FAILURE);
                }
            }
        }
    };
    let wall = started.elapsed().as_secs_f64();
    if args.json {
        println!("{}", results.to_json());
    } else {
        print!("{}", twin_lab::output::render(&results));
    }
    let written = twin_lab::output::write_all(&results, &out)
        .with_context(|| format!("writing results to {}", out.display()))?;
    eprintln!(
        "{total} replications in {wall:.2}s ({:.1}/s); wrote {} files to {}",
        total as f64 / wall.max(1e-9),
        written.len(),
        out.display()
    );
    Ok(if results.outcome == Outcome::Completed { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
