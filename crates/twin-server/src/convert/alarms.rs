//! The live twin's plant view in wire form: sync status per station and deviation
//! alarms. Conversion only: the monitor in the core decides what is live, stale or
//! alarmed.

use twin_core::model::Model;
use twin_core::sim::monitor::{Direction, Measure};
use twin_core::{Alarm, SyncStatus};
use twin_proto::v1;

/// A station's sync status in wire form.
pub fn sync_status(status: SyncStatus) -> v1::SyncStatus {
    match status {
        SyncStatus::ModelOnly => v1::SyncStatus::ModelOnly,
        SyncStatus::Live => v1::SyncStatus::Live,
        SyncStatus::Stale => v1::SyncStatus::Stale,
    }
}

/// One alarm in wire form (times in seconds, throughput in parts per hour).
pub fn alarm(model: &Model, a: &Alarm) -> v1::Alarm {
    let (measure, unit) = match a.measure {
        Measure::CycleTime => (v1::AlarmMeasure::CycleTime, 1e-6),
        Measure::Throughput => (v1::AlarmMeasure::Throughput, 1.0),
        Measure::TimeBetweenFailures => (v1::AlarmMeasure::TimeBetweenFailures, 1e-6),
        Measure::RepairTime => (v1::AlarmMeasure::RepairTime, 1e-6),
    };
    let direction = match a.direction {
        Direction::Above => v1::AlarmDirection::Above,
        Direction::Below => v1::AlarmDirection::Below,
    };
    v1::Alarm {
        id: a.id,
        station_index: model.station(&a.station).unwrap_or_default(),
        station_id: a.station.clone(),
        product_id: a.product.clone(),
        measure: measure as i32,
        direction: direction as i32,
        plant_value: a.plant * unit,
        model_value: a.model * unit,
        evidence: Some(v1::AlarmEvidence {
            statistic: a.evidence.statistic,
            threshold: a.evidence.threshold,
            reference: a.evidence.reference,
            observations: a.evidence.observations,
            arl0: a.evidence.arl0,
        }),
        raised_at_us: a.raised_at,
        cleared_at_us: a.cleared_at,
    }
}

/// The frame summary of a run's alarms (already converted, ascending by id).
pub fn alarm_summary(alarms: &[v1::Alarm], raised: u64) -> v1::AlarmSummary {
    let open_alarms: Vec<v1::Alarm> = alarms.iter().filter(|a| a.cleared_at_us.is_none()).cloned().collect();
    v1::AlarmSummary { open: open_alarms.len() as u32, raised, open_alarms }
}
