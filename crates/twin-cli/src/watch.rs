//! `twin watch`: a headless operator's view of a live twin: every few seconds the ingest
//! counters, the clock alignment and acknowledgement latency, which telemetry sources
//! are live or stale, the plant's buffer levels next to the model's, the plant's AGVs,
//! and the open deviation alarms (GetIngestStatus, ListAlarms, GetLayout and one state
//! frame; a viewer token is enough).

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use twin_proto::v1;

use crate::trust::{Client, ClientArgs};

#[derive(Args, Debug)]
pub struct WatchArgs {
    /// The running server.
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:50051")]
    server: String,
    #[command(flatten)]
    client: ClientArgs,
    /// Wall time between two reports, e.g. 5s.
    #[arg(long, default_value = "5s", value_parser = crate::parse_duration)]
    every: twin_core::time::Duration,
    /// Stop after this many reports (default: until interrupted).
    #[arg(long)]
    count: Option<u64>,
}

pub fn run(args: WatchArgs) -> Result<ExitCode> {
    let every = Duration::from_micros(args.every.0);
    anyhow::ensure!(every >= Duration::from_millis(100), "--every must be at least 100ms");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let mut client = args.client.connect(&args.server).await?;
        let mut n = 0;
        loop {
            report(&mut client).await?;
            n += 1;
            if args.count.is_some_and(|c| n >= c) {
                return Ok(ExitCode::SUCCESS);
            }
            tokio::time::sleep(every).await;
        }
    })
}

fn failed(rpc: &str, s: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{rpc} failed: {} ({})", s.message(), twin_server::gate::code_name(s.code()))
}

async fn report(client: &mut Client) -> Result<()> {
    let status = client
        .get_ingest_status(v1::GetIngestStatusRequest {})
        .await
        .map_err(|s| failed("GetIngestStatus", s))?
        .into_inner();
    let alarms = client
        .list_alarms(v1::ListAlarmsRequest { open_only: true })
        .await
        .map_err(|s| failed("ListAlarms", s))?
        .into_inner();
    println!("{}", ingest_line(&status));
    for source in &status.sources {
        println!(
            "  source {:<24} {:<4} {:<5} {} stations",
            source.id,
            source.kind,
            if source.live { "live" } else { "STALE" },
            source.stations.len()
        );
    }
    if let Some(line) = clock_line(&status) {
        println!("  {line}");
    }
    if !status.observed_stations.is_empty() {
        let model = model_queues(client).await.unwrap_or_default();
        let cells: Vec<String> = status
            .observed_stations
            .iter()
            .filter_map(|o| {
                let plant = o.buffer_level?;
                let model = model.get(&o.station_id).map_or("?".to_owned(), |q| q.to_string());
                Some(format!("{} {plant}/{model}", o.station_id))
            })
            .collect();
        println!("  buffers plant/model: {}", cells.join(", "));
    }
    for v in &status.observed_vehicles {
        println!("  {}", vehicle_line(v));
    }
    println!("  alarms: {} open, {} raised since the run started", alarms.alarms.len(), alarms.raised);
    for alarm in &alarms.alarms {
        println!("    {}", alarm_line(alarm));
    }
    Ok(())
}

fn ingest_line(s: &v1::GetIngestStatusResponse) -> String {
    let rejected: u64 = s.rejected.iter().map(|r| r.count).sum();
    let reasons: Vec<String> = s.rejected.iter().map(|r| format!("{} {}", r.reason, r.count)).collect();
    format!(
        "ingest: received {}, committed {}, applied {}, rejected {}{}, duplicates {}, gaps {}, rebirths asked {}, late {}; mqtt {}",
        s.received,
        s.committed,
        s.applied,
        rejected,
        if reasons.is_empty() { String::new() } else { format!(" ({})", reasons.join(", ")) },
        s.duplicates,
        s.sequence_gaps,
        s.rebirths_requested,
        s.late,
        if s.mqtt_connected { "connected" } else { "not connected" },
    )
}

/// The model's queue length per station id (one full state frame).
async fn model_queues(client: &mut Client) -> Option<std::collections::BTreeMap<String, u32>> {
    let layout = client.get_layout(v1::GetLayoutRequest {}).await.ok()?.into_inner().layout?;
    let mut stream = client
        .stream_state(v1::StreamStateRequest { rate_hz: 10, full_frames_only: true })
        .await
        .ok()?
        .into_inner();
    let frame = tokio::time::timeout(Duration::from_secs(5), stream.message()).await.ok()?.ok()??;
    Some(
        frame
            .stations
            .iter()
            .filter_map(|s| Some((layout.stations.get(s.index as usize)?.id.clone(), s.queue_length)))
            .collect(),
    )
}

/// Clock alignment and acknowledgement latency.
fn clock_line(s: &v1::GetIngestStatusResponse) -> Option<String> {
    let clock = match &s.clock {
        Some(c) if c.waiting_for_plant => "clock: waiting for the plant's first NBIRTH".to_owned(),
        Some(c) if !c.anchor_source.is_empty() => format!(
            "clock: aligned with {} at plant time {}",
            c.anchor_source,
            clock(c.anchored_at_us.unwrap_or(0))
        ),
        _ => "clock: not aligned (the twin's own)".to_owned(),
    };
    let acks = s.ack_latency.as_ref().filter(|l| l.messages > 0).map_or(String::new(), |l| {
        format!("; ack latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms", l.p50_ms, l.p99_ms, l.max_ms)
    });
    Some(format!("{clock}; held {}, ahead {}{acks}", s.held, s.ahead))
}

fn vehicle_line(v: &v1::IngestObservedVehicle) -> String {
    let num = |x: Option<f64>| x.map_or("?".to_owned(), |x| format!("{x:.1}"));
    format!(
        "vehicle {:<14} {:<5} {:<18} at ({}, {}) m, battery {}",
        v.vehicle_id,
        if v.live { "live" } else { "STALE" },
        v.state.as_deref().unwrap_or("?"),
        num(v.x),
        num(v.y),
        v.battery.map_or("?".to_owned(), |b| format!("{:.0}%", b * 100.0)),
    )
}

fn alarm_line(a: &v1::Alarm) -> String {
    let (measure, unit, observations) = match v1::AlarmMeasure::try_from(a.measure) {
        Ok(v1::AlarmMeasure::CycleTime) => ("cycle time", "s", "cycles"),
        Ok(v1::AlarmMeasure::Throughput) => ("throughput", "/h", "hour windows"),
        Ok(v1::AlarmMeasure::TimeBetweenFailures) => ("time between failures", "s", "failures"),
        Ok(v1::AlarmMeasure::RepairTime) => ("repair time", "s", "repairs"),
        _ => ("unknown measure", "", "observations"),
    };
    let direction = match v1::AlarmDirection::try_from(a.direction) {
        Ok(v1::AlarmDirection::Above) => "above",
        Ok(v1::AlarmDirection::Below) => "below",
        _ => "off",
    };
    let product = a.product_id.as_deref().map_or_else(String::new, |p| format!(" ({p})"));
    let evidence = a.evidence.as_ref().map_or_else(String::new, |e| {
        format!(
            "; statistic {:.1} > threshold {:.1} over {} {observations}, ARL0 {:.0e}",
            e.statistic, e.threshold, e.observations, e.arl0
        )
    });
    format!(
        "#{} {}{}: {} {} the model, plant {:.2} {unit} vs model {:.2} {unit}, raised at {}{}",
        a.id,
        a.station_id,
        product,
        measure,
        direction,
        a.plant_value,
        a.model_value,
        clock(a.raised_at_us),
        evidence
    )
}

/// Simulated time as `2d 03:04:05`.
fn clock(us: u64) -> String {
    let s = us / 1_000_000;
    let (d, h, m, s) = (s / 86_400, s / 3_600 % 24, s / 60 % 60, s % 60);
    format!("{d}d {h:02}:{m:02}:{s:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_reads_days_and_hours() {
        assert_eq!(clock(0), "0d 00:00:00");
        assert_eq!(clock((2 * 86_400 + 3 * 3_600 + 4 * 60 + 5) * 1_000_000), "2d 03:04:05");
    }

    #[test]
    fn an_alarm_line_names_station_measure_figures_and_evidence() {
        let alarm = v1::Alarm {
            id: 3,
            station_id: "mill".into(),
            measure: v1::AlarmMeasure::CycleTime as i32,
            direction: v1::AlarmDirection::Above as i32,
            plant_value: 12.0,
            model_value: 10.0,
            evidence: Some(v1::AlarmEvidence {
                statistic: 15.2,
                threshold: 14.3,
                reference: 0.2,
                observations: 40,
                arl0: 1e7,
            }),
            raised_at_us: 3_600_000_000,
            ..Default::default()
        };
        let line = alarm_line(&alarm);
        for part in
            ["#3 mill", "cycle time above", "plant 12.00 s vs model 10.00 s", "0d 01:00:00", "40 cycles"]
        {
            assert!(line.contains(part), "{part} in {line}");
        }
    }
}
