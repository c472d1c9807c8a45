//! Results of an experiment: per-replication values, means with Student-t intervals,
//! paired differences against the baseline, rankings and bottleneck shares.

use serde::Serialize;
use twin_core::stats::Interval;
use twin_core::time::to_secs;

use crate::experiment::Experiment;
use crate::file::Better;

/// How an experiment ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Outcome {
    /// Every replication ran.
    Completed,
    /// The cancel flag was set; the results hold the replications that finished.
    Cancelled,
}

/// One finished replication.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Replication {
    /// Index of the variant.
    pub variant: usize,
    pub replication: u32,
    pub seed: u64,
    /// Events the core processed (a cost measure for benchmarks).
    pub events: u64,
    /// Value of each KPI, in the experiment's order.
    pub values: Vec<f64>,
    /// Bottleneck share of each station of the variant's model, in model order.
    pub bottlenecks: Vec<f64>,
}

/// A mean with its confidence interval.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Estimate {
    pub mean: f64,
    /// Half-width; infinite (null in JSON) with fewer than two observations.
    pub half_width: f64,
    pub low: f64,
    pub high: f64,
    /// Sample standard deviation.
    pub sd: f64,
    /// Observations (replications, or pairs for a difference).
    pub n: usize,
}

impl Estimate {
    fn of(samples: &[f64], level: f64) -> Estimate {
        let ci = Interval::of(samples, level);
        Estimate {
            mean: ci.mean,
            half_width: ci.half_width,
            low: ci.low(),
            high: ci.high(),
            sd: ci.sd,
            n: ci.n,
        }
    }

    /// Whether the interval excludes zero: a difference that is statistically real.
    pub fn excludes_zero(&self) -> bool {
        self.n >= 2 && (self.low > 0.0 || self.high < 0.0)
    }
}

/// One variant's line in a KPI table.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct KpiRow {
    pub variant: String,
    pub estimate: Estimate,
    /// Paired difference variant - baseline over the replications both finished;
    /// `None` for the baseline itself.
    pub diff: Option<Estimate>,
    /// Whether `diff`'s interval excludes zero.
    pub significant: bool,
    /// 1 = best mean in the KPI's better direction.
    pub rank: usize,
}

/// The comparison of all variants on one KPI.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct KpiResult {
    pub name: String,
    pub path: String,
    pub unit: String,
    pub better: Better,
    /// One row per variant, in variant order (see `rank` for the ranking).
    pub rows: Vec<KpiRow>,
}

/// A station's bottleneck share in one variant.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StationShare {
    pub station: String,
    pub share: Estimate,
}

/// Bottleneck shares of one variant's stations (active-period method), largest first.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct VariantBottlenecks {
    pub variant: String,
    pub stations: Vec<StationShare>,
}

/// A variant as the results describe it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct VariantInfo {
    pub name: String,
    pub edits: Vec<String>,
    /// Replications that finished (all of them unless cancelled).
    pub replications: u32,
}

/// Everything an experiment found. Serialises to the `results.json` document.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Results {
    pub experiment: String,
    pub description: String,
    pub scene: String,
    pub outcome: Outcome,
    /// Replications per variant requested.
    pub replications: u32,
    pub confidence: f64,
    pub seed: u64,
    pub common_random_numbers: bool,
    pub until_s: f64,
    pub warmup_s: f64,
    pub baseline: String,
    pub variants: Vec<VariantInfo>,
    pub kpis: Vec<KpiResult>,
    pub bottlenecks: Vec<VariantBottlenecks>,
    /// Every finished replication, variant-major.
    pub runs: Vec<RunRecord>,
}

/// One replication in the results.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RunRecord {
    pub variant: String,
    pub replication: u32,
    pub seed: u64,
    pub events: u64,
    /// KPI values in the order of `Results::kpis`.
    pub values: Vec<f64>,
}

/// A KPI estimate in the shape of gRPC's `MetricEstimate`.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricEstimate {
    pub name: String,
    pub unit: String,
    pub mean: f64,
    pub ci_half_width: f64,
    pub confidence: f64,
}

/// One variant's estimates in the shape of gRPC's `VariantResult`.
#[derive(Clone, Debug, PartialEq)]
pub struct VariantEstimates {
    pub variant: String,
    pub replications: u32,
    pub metrics: Vec<MetricEstimate>,
}

impl Results {
    /// Summarises finished replications (any order; they are sorted here). The local
    /// runner and the distributed collector (`twin experiment --nats`) both end here,
    /// which is why their outputs are byte-identical.
    pub fn summarise(experiment: &Experiment, outcome: Outcome, mut reps: Vec<Replication>) -> Results {
        reps.sort_by_key(|r| (r.variant, r.replication));
        let level = experiment.confidence;
        let n_variants = experiment.variants.len();
        let by_variant: Vec<Vec<&Replication>> =
            (0..n_variants).map(|v| reps.iter().filter(|r| r.variant == v).collect()).collect();
        let base = &by_variant[experiment.baseline];

        let kpis = experiment
            .kpis
            .iter()
            .enumerate()
            .map(|(k, kpi)| {
                let mut rows: Vec<KpiRow> = by_variant
                    .iter()
                    .enumerate()
                    .map(|(v, runs)| {
                        let samples: Vec<f64> = runs.iter().map(|r| r.values[k]).collect();
                        let diff = (v != experiment.baseline).then(|| {
                            let pairs: Vec<f64> = runs
                                .iter()
                                .filter_map(|r| {
                                    base.iter()
                                        .find(|b| b.replication == r.replication)
                                        .map(|b| r.values[k] - b.values[k])
                                })
                                .collect();
                            Estimate::of(&pairs, level)
                        });
                        KpiRow {
                            variant: experiment.variants[v].name.clone(),
                            estimate: Estimate::of(&samples, level),
                            significant: diff.is_some_and(|d| d.excludes_zero()),
                            diff,
                            rank: 0,
                        }
                    })
                    .collect();
                let mut order: Vec<usize> = (0..rows.len()).collect();
                let key = |i: usize| {
                    let m = rows[i].estimate.mean;
                    match (m.is_nan(), kpi.better) {
                        (true, _) => f64::INFINITY,
                        (false, Better::Higher) => -m,
                        (false, Better::Lower) => m,
                    }
                };
                order.sort_by(|&a, &b| key(a).total_cmp(&key(b)).then(a.cmp(&b)));
                for (pos, &i) in order.iter().enumerate() {
                    rows[i].rank = pos + 1;
                }
                KpiResult {
                    name: kpi.name.clone(),
                    path: kpi.path.as_str().to_string(),
                    unit: kpi.unit.to_string(),
                    better: kpi.better,
                    rows,
                }
            })
            .collect();

        let bottlenecks = by_variant
            .iter()
            .enumerate()
            .map(|(v, runs)| {
                let model = &experiment.variants[v].model;
                let mut stations: Vec<StationShare> = model
                    .stations
                    .iter()
                    .enumerate()
                    .map(|(s, st)| StationShare {
                        station: st.id.clone(),
                        share: Estimate::of(
                            &runs.iter().map(|r| r.bottlenecks[s]).collect::<Vec<_>>(),
                            level,
                        ),
                    })
                    .collect();
                stations.sort_by(|a, b| b.share.mean.total_cmp(&a.share.mean));
                VariantBottlenecks { variant: experiment.variants[v].name.clone(), stations }
            })
            .collect();

        Results {
            experiment: experiment.name.clone(),
            description: experiment.description.clone(),
            scene: experiment.scene_path.display().to_string(),
            outcome,
            replications: experiment.replications,
            confidence: level,
            seed: experiment.seed,
            common_random_numbers: experiment.common_random_numbers,
            until_s: to_secs(experiment.until),
            warmup_s: to_secs(experiment.warmup),
            baseline: experiment.variants[experiment.baseline].name.clone(),
            variants: experiment
                .variants
                .iter()
                .zip(&by_variant)
                .map(|(v, runs)| VariantInfo {
                    name: v.name.clone(),
                    edits: v.edits.clone(),
                    replications: runs.len() as u32,
                })
                .collect(),
            kpis,
            bottlenecks,
            runs: reps
                .iter()
                .map(|r| RunRecord {
                    variant: experiment.variants[r.variant].name.clone(),
                    replication: r.replication,
                    seed: r.seed,
                    events: r.events,
                    values: r.values.clone(),
                })
                .collect(),
        }
    }

    /// The KPI table named `name` (its label or path).
    pub fn kpi(&self, name: &str) -> Option<&KpiResult> {
        self.kpis.iter().find(|k| k.name == name || k.path == name)
    }

    /// Estimates per variant, shaped like gRPC's `ExperimentFinished.variants`.
    pub fn by_variant(&self) -> Vec<VariantEstimates> {
        self.variants
            .iter()
            .enumerate()
            .map(|(v, info)| VariantEstimates {
                variant: info.name.clone(),
                replications: info.replications,
                metrics: self
                    .kpis
                    .iter()
                    .map(|k| MetricEstimate {
                        name: k.name.clone(),
                        unit: k.unit.clone(),
                        mean: k.rows[v].estimate.mean,
                        ci_half_width: k.rows[v].estimate.half_width,
                        confidence: self.confidence,
                    })
                    .collect(),
            })
            .collect()
    }

    /// The results as pretty JSON (`results.json`, gRPC's `ExperimentFinished.json`).
    pub fn to_json(&self) -> String {
        // Serialising plain structs of numbers and strings cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

impl KpiResult {
    /// The row of variant `name`.
    pub fn row(&self, name: &str) -> Option<&KpiRow> {
        self.rows.iter().find(|r| r.variant == name)
    }
}
