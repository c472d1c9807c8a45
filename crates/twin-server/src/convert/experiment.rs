//! Experiment events in wire form: started, each replication done, finished or failed.

use twin_proto::v1;

use super::state::kpi_summary;

/// ExperimentStarted of an experiment.
pub fn experiment_started(e: &twin_lab::Experiment) -> v1::ExperimentStarted {
    v1::ExperimentStarted {
        variants: e.variant_names(),
        replications: e.replications,
        total_runs: e.total_runs() as u32,
    }
}

/// ReplicationDone of one finished replication.
pub fn replication_done(p: &twin_lab::Progress<'_>) -> v1::ReplicationDone {
    v1::ReplicationDone {
        variant: p.variant.to_string(),
        replication: p.replication,
        seed: p.seed,
        kpis: Some(kpi_summary(p.report)),
        done: p.done as u32,
        total: p.total as u32,
    }
}

/// ExperimentFinished of a run that returned results.
pub fn experiment_finished(r: &twin_lab::Results) -> v1::ExperimentFinished {
    let outcome = match r.outcome {
        twin_lab::Outcome::Completed => v1::ExperimentOutcome::Completed,
        twin_lab::Outcome::Cancelled => v1::ExperimentOutcome::Cancelled,
    };
    v1::ExperimentFinished {
        outcome: outcome as i32,
        message: String::new(),
        variants: r
            .by_variant()
            .into_iter()
            .map(|v| v1::VariantResult {
                variant: v.variant,
                replications: v.replications,
                metrics: v
                    .metrics
                    .into_iter()
                    .map(|m| v1::MetricEstimate {
                        name: m.name,
                        unit: m.unit,
                        mean: m.mean,
                        ci_half_width: m.ci_half_width,
                        confidence: m.confidence,
                    })
                    .collect(),
            })
            .collect(),
        json: r.to_json(),
    }
}

/// ExperimentFinished of a run that failed.
pub fn experiment_failed(e: &twin_lab::LabError) -> v1::ExperimentFinished {
    v1::ExperimentFinished {
        outcome: v1::ExperimentOutcome::Failed as i32,
        message: e.to_string(),
        variants: Vec::new(),
        json: String::new(),
    }
}
