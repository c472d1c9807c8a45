//! `twin complexes`: the programme view. Lists the live complexes with their headline
//! KPIs against the programme's targets, gathered straight from the programme's NATS
//! (`--nats URL`) or through a server's ListComplexes RPC (`--server URL`); both give
//! the same `ListComplexesResponse`, printed as a table or as JSON.

use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use clap::Args;
use twin_proto::v1;
use twin_server::registry;

use crate::trust::ClientArgs;

#[derive(Args, Debug)]
pub struct ComplexesArgs {
    /// The programme's NATS (`nats://host:4222`, or a comma-separated list of nodes).
    #[arg(long, value_name = "URL", required_unless_present = "server", conflicts_with = "server")]
    nats: Option<String>,
    /// Ask a running twin server (started with --nats) through its ListComplexes RPC.
    #[arg(long, value_name = "URL")]
    server: Option<String>,
    #[command(flatten)]
    client: ClientArgs,
    /// How long to wait for the complexes' answers (--nats), e.g. 500ms.
    #[arg(long, default_value = "500ms", value_parser = crate::parse_duration)]
    wait: twin_core::time::Duration,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
    /// Print the list every this much wall time (default: once).
    #[arg(long, value_parser = crate::parse_duration)]
    every: Option<twin_core::time::Duration>,
    /// With --every: stop after this many lists.
    #[arg(long, requires = "every")]
    count: Option<u64>,
}

pub fn run(args: ComplexesArgs) -> Result<ExitCode> {
    let wait = Duration::from_micros(args.wait.0);
    anyhow::ensure!(
        (Duration::from_millis(10)..=Duration::from_secs(60)).contains(&wait),
        "--wait must be 10ms to 60s"
    );
    let every = args.every.map(|e| Duration::from_micros(e.0));
    anyhow::ensure!(every.is_none_or(|e| e >= Duration::from_millis(100)), "--every must be at least 100ms");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let source = Source::open(&args).await?;
        let mut n = 0;
        loop {
            let list = source.list(wait).await?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&to_json(&list, unix_ms_now()))?);
            } else {
                print!("{}", table(&list, unix_ms_now()));
            }
            n += 1;
            match every {
                Some(every) if args.count.is_none_or(|c| n < c) => tokio::time::sleep(every).await,
                _ => return Ok(ExitCode::SUCCESS),
            }
        }
    })
}

/// Where the list comes from.
enum Source {
    Nats(async_nats::Client),
    Server(Box<crate::trust::Client>),
}

impl Source {
    async fn open(args: &ComplexesArgs) -> Result<Source> {
        match (&args.nats, &args.server) {
            (Some(url), _) => Ok(Source::Nats(registry::connect(url, false).await?)),
            (None, Some(url)) => Ok(Source::Server(Box::new(args.client.connect(url).await?))),
            (None, None) => anyhow::bail!("give --nats URL or --server URL"),
        }
    }

    async fn list(&self, wait: Duration) -> Result<v1::ListComplexesResponse> {
        match self {
            Source::Nats(client) => {
                let gathered = registry::gather(client, wait).await?;
                if gathered.undecodable > 0 {
                    eprintln!("warning: {} undecodable answers skipped", gathered.undecodable);
                }
                Ok(v1::ListComplexesResponse {
                    targets: gathered.targets(None),
                    complexes: gathered.answers.into_iter().map(|a| a.info).collect(),
                    self_complex_id: String::new(),
                })
            }
            Source::Server(client) => {
                let mut client = client.as_ref().clone();
                let reply = client.list_complexes(v1::ListComplexesRequest {}).await.map_err(|s| {
                    anyhow::anyhow!(
                        "ListComplexes failed: {} ({})",
                        s.message(),
                        twin_server::gate::code_name(s.code())
                    )
                })?;
                Ok(reply.into_inner())
            }
        }
    }
}

fn unix_ms_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// A complex measured against the targets.
struct Judged {
    /// Value-added rate minus its target, fraction; None without a rate or a target.
    va_gap: Option<f64>,
    /// Labour productivity / baseline - 1; None without both.
    lp_gain: Option<f64>,
    /// Whether the gain reaches the target; None when it cannot be judged.
    lp_met: Option<bool>,
}

/// Nothing is judged while a complex warms up: its figures are not yet meaningful.
fn judge(c: &v1::ComplexInfo, targets: Option<&v1::ProgrammeTargets>) -> Judged {
    if c.warming_up {
        return Judged { va_gap: None, lp_gain: None, lp_met: None };
    }
    let va_gap = c.value_added_rate.zip(targets).map(|(va, t)| va - t.value_added_rate);
    let lp_gain = c
        .labour_productivity
        .zip(c.labour_productivity_baseline)
        .filter(|&(_, base)| base > 0.0)
        .map(|(lp, base)| lp / base - 1.0);
    let lp_met = lp_gain.zip(targets).map(|(g, t)| g >= t.labour_productivity_gain);
    Judged { va_gap, lp_gain, lp_met }
}

fn pct(x: f64) -> String {
    format!("{:.1}%", 100.0 * x)
}

fn signed_pct(x: f64) -> String {
    format!("{:+.1}%", 100.0 * x)
}

fn mark(met: Option<bool>) -> &'static str {
    match met {
        Some(true) => "ok",
        Some(false) => "BELOW",
        None => "-",
    }
}

/// The programme table: one line per complex, then how many meet each target.
pub fn table(list: &v1::ListComplexesResponse, now_ms: u64) -> String {
    use std::fmt::Write;
    let targets = list.targets.as_ref();
    let mut out = String::new();
    match targets {
        Some(t) => writeln!(
            out,
            "programme targets: value-added rate {}, labour productivity {} over each complex's baseline",
            pct(t.value_added_rate),
            signed_pct(t.labour_productivity_gain)
        ),
        None => writeln!(out, "programme targets: none reported (no complex's scene has a programme block)"),
    }
    .expect("writing to a String");
    writeln!(
        out,
        "{:<10} {:<26} {:<16} {:>8} {:>6}  {:>9} {:>9} {:>8} {:>6}  {:<12} {:>6} {:>7}",
        "complex",
        "name",
        "industry",
        "VA rate",
        "",
        "lab.prod",
        "baseline",
        "gain",
        "",
        "bottleneck",
        "alarms",
        "age"
    )
    .expect("writing to a String");
    let (mut va_ok, mut lp_ok, mut judged_va, mut judged_lp) = (0, 0, 0, 0);
    for c in &list.complexes {
        let j = judge(c, targets);
        let va_met = j.va_gap.map(|g| g >= 0.0);
        judged_va += usize::from(va_met.is_some());
        va_ok += usize::from(va_met == Some(true));
        judged_lp += usize::from(j.lp_met.is_some());
        lp_ok += usize::from(j.lp_met == Some(true));
        let age_s = now_ms.saturating_sub(c.reported_unix_ms) as f64 / 1000.0;
        let name: String = c.name.chars().take(26).collect();
        let industry: String = c.industry.chars().take(16).collect();
        writeln!(
            out,
            "{:<10} {:<26} {:<16} {:>8} {:>6}  {:>9} {:>9} {:>8} {:>6}  {:<12} {:>6} {:>6.1}s{}",
            c.complex_id,
            name,
            industry,
            c.value_added_rate.map_or_else(|| "-".into(), pct),
            mark(va_met),
            c.labour_productivity.map_or_else(|| "-".into(), |v| format!("{v:.1}")),
            c.labour_productivity_baseline.map_or_else(|| "-".into(), |v| format!("{v:.1}")),
            j.lp_gain.map_or_else(|| "-".into(), signed_pct),
            mark(j.lp_met),
            if c.bottleneck_station_id.is_empty() { "-" } else { &c.bottleneck_station_id },
            c.open_alarms,
            age_s,
            if c.warming_up { "  (warming up)" } else { "" },
        )
        .expect("writing to a String");
    }
    writeln!(
        out,
        "{} complexes; value-added target met by {va_ok} of {judged_va}, labour-productivity target by {lp_ok} of {judged_lp}",
        list.complexes.len()
    )
    .expect("writing to a String");
    out
}

/// The list as one JSON object (`--json`): every field of the reply plus the judgement.
pub fn to_json(list: &v1::ListComplexesResponse, now_ms: u64) -> serde_json::Value {
    use serde_json::json;
    let targets = list.targets.as_ref();
    let complexes: Vec<_> = list
        .complexes
        .iter()
        .map(|c| {
            let j = judge(c, targets);
            json!({
                "complex_id": c.complex_id,
                "name": c.name,
                "region": c.region,
                "industry": c.industry,
                "endpoint": c.endpoint,
                "sim_time_s": c.sim_time_us as f64 / 1e6,
                "warming_up": c.warming_up,
                "value_added_rate": c.value_added_rate,
                "meets_value_added_target": j.va_gap.map(|g| g >= 0.0),
                "labour_productivity": c.labour_productivity,
                "labour_productivity_baseline": c.labour_productivity_baseline,
                "labour_productivity_gain": j.lp_gain,
                "meets_labour_productivity_target": j.lp_met,
                "throughput_per_hour": c.throughput_per_hour,
                "wip": c.wip,
                "bottleneck_station_id": c.bottleneck_station_id,
                "open_alarms": c.open_alarms,
                "reported_unix_ms": c.reported_unix_ms,
                "report_age_s": now_ms.saturating_sub(c.reported_unix_ms) as f64 / 1000.0,
            })
        })
        .collect();
    json!({
        "targets": targets.map(|t| json!({
            "value_added_rate": t.value_added_rate,
            "labour_productivity_gain": t.labour_productivity_gain,
        })),
        "self_complex_id": list.self_complex_id,
        "complexes": complexes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complex(id: &str, va: Option<f64>, lp: Option<f64>, base: Option<f64>) -> v1::ComplexInfo {
        v1::ComplexInfo {
            complex_id: id.into(),
            name: format!("Complex {id}"),
            industry: "steel".into(),
            value_added_rate: va,
            labour_productivity: lp,
            labour_productivity_baseline: base,
            reported_unix_ms: 1_000,
            ..Default::default()
        }
    }

    fn list() -> v1::ListComplexesResponse {
        v1::ListComplexesResponse {
            complexes: vec![
                complex("a", Some(0.31), Some(150.0), Some(100.0)),
                complex("b", Some(0.29), Some(139.0), Some(100.0)),
                complex("c", None, None, Some(100.0)),
            ],
            targets: Some(v1::ProgrammeTargets { value_added_rate: 0.30, labour_productivity_gain: 0.40 }),
            self_complex_id: String::new(),
        }
    }

    #[test]
    fn complexes_are_judged_against_the_targets_and_unknowns_are_not_counted() {
        let json = to_json(&list(), 3_500);
        let c = &json["complexes"];
        assert_eq!(c[0]["meets_value_added_target"], true);
        assert_eq!(c[0]["meets_labour_productivity_target"], true);
        assert!((c[0]["labour_productivity_gain"].as_f64().unwrap() - 0.5).abs() < 1e-12);
        assert_eq!(c[1]["meets_value_added_target"], false);
        assert_eq!(c[1]["meets_labour_productivity_target"], false);
        assert!(c[2]["meets_value_added_target"].is_null());
        assert_eq!(c[2]["report_age_s"], 2.5);
        let text = table(&list(), 3_500);
        assert!(
            text.contains("value-added target met by 1 of 2, labour-productivity target by 1 of 2"),
            "{text}"
        );
        assert!(text.contains("BELOW"), "{text}");
    }

    #[test]
    fn a_complex_warming_up_is_not_judged() {
        let mut l = list();
        l.complexes[1].warming_up = true;
        let json = to_json(&l, 3_500);
        assert!(json["complexes"][1]["meets_value_added_target"].is_null());
        assert!(json["complexes"][1]["labour_productivity_gain"].is_null());
        assert!(table(&l, 3_500).contains("met by 1 of 1, labour-productivity target by 1 of 1"));
    }

    #[test]
    fn without_targets_nothing_is_judged() {
        let mut l = list();
        l.targets = None;
        let text = table(&l, 3_500);
        assert!(text.contains("none reported"), "{text}");
        assert!(text.contains("met by 0 of 0"), "{text}");
    }
}
