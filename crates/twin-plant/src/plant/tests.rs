use std::path::PathBuf;
use std::sync::Arc;

use twin_core::Model;
use twin_core::scene::Source;
use twin_core::time::{HOUR, MINUTE, SECOND};
use twin_proto::sparkplug::{MessageKind, Metric, datatype, vocab};

use super::*;
use crate::drift::Drift;

const EPOCH: u64 = 1_700_000_000_000;

fn plant(drift_text: &str, seed: u64) -> Plant {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scenes/training-line.ron");
    let (mut scene, source, schedules) = twin_core::scene::load(&path).expect("scene");
    let drift =
        Drift::parse(&Source { origin: "d.ron".into(), text: drift_text.into() }, &scene).expect("drift");
    drift.apply(&mut scene);
    let model = Arc::new(Model::build(&scene, Some(&source), &schedules).expect("model"));
    Plant::new(model, seed, &drift, PlantOptions { group: "g".into(), epoch_ms: EPOCH })
}

/// Runs `plant` in batches of `batch` to `until`; every output, stop included.
fn run(plant: &mut Plant, batch: Micros, until: Micros) -> Vec<Output> {
    let mut out = plant.start();
    let mut t = 0;
    while t < until {
        t = (t + batch).min(until);
        out.extend(plant.advance(t));
    }
    out.extend(plant.stop());
    out
}

fn published(outputs: &[Output]) -> Vec<&Message> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Publish { message, .. } => Some(message),
            _ => None,
        })
        .collect()
}

fn names(p: &Payload) -> Vec<&str> {
    p.metrics.iter().filter_map(|m| m.name.as_deref()).collect()
}

const DRIFT: &str = r#"Drift(
    stations: [(station: "drill", processing: 1.2)],
    breakdowns: [(station: "mill", at: "30m", duration: "20m")],
    gateways: [(factory: "hall", at: "2h", down_for: "10m")],
)"#;

#[test]
fn the_same_inputs_give_the_same_bytes() {
    let bytes = |seed| -> Vec<(String, Vec<u8>)> {
        let mut p = plant(DRIFT, seed);
        published(&run(&mut p, 10 * SECOND, 4 * HOUR))
            .iter()
            .map(|m| (m.topic.to_string(), m.encode()))
            .collect()
    };
    let a = bytes(5);
    assert!(a.len() > 1000, "{} messages", a.len());
    assert_eq!(a, bytes(5));
    assert_ne!(a, bytes(6), "another seed, another plant");
}

#[test]
fn births_declare_every_metric_with_its_type() {
    let mut p = plant("Drift()", 1);
    let out = p.start();
    let Output::Connect { node: 0, will } = &out[0] else { panic!("connect first: {:?}", out[0]) };
    assert_eq!(will.topic.to_string(), "spBv1.0/g/NDEATH/hall");
    assert_eq!(will.payload.metric(vocab::BD_SEQ).and_then(Metric::as_u64), Some(0));
    assert_eq!(will.payload.seq, None, "NDEATH has no seq");
    let msgs = published(&out);
    let nbirth = &msgs[0];
    assert_eq!(nbirth.topic, Topic::node("g", MessageKind::NBirth, "hall"));
    assert_eq!(nbirth.payload.seq, Some(0));
    assert_eq!(nbirth.payload.timestamp, Some(EPOCH));
    assert_eq!(names(&nbirth.payload), [vocab::BD_SEQ, vocab::REBIRTH, vocab::PLANT_EPOCH]);
    assert_eq!(nbirth.payload.metric(vocab::REBIRTH).and_then(Metric::as_bool), Some(false));
    assert_eq!(nbirth.payload.metric(vocab::PLANT_EPOCH).and_then(Metric::as_u64), Some(EPOCH));
    let devices: Vec<String> = msgs[1..].iter().map(|m| m.topic.device.clone().expect("device")).collect();
    assert_eq!(devices, ["saw", "mill", "drill", "assembly", "inspection"]);
    for (i, m) in msgs[1..].iter().enumerate() {
        assert_eq!(m.topic.kind, MessageKind::DBirth);
        assert_eq!(m.payload.seq, Some(i as u64 + 1));
        let p = &m.payload;
        assert_eq!(
            names(p),
            [
                vocab::STATE,
                vocab::PARTS_IN,
                vocab::PARTS_OUT,
                vocab::BUFFER_LEVEL,
                vocab::CYCLE_DURATION,
                vocab::CYCLE_PRODUCT
            ]
        );
        let types: Vec<u32> = p.metrics.iter().map(|m| m.datatype.expect("typed in births")).collect();
        assert_eq!(
            types,
            [
                datatype::STRING,
                datatype::UINT64,
                datatype::UINT64,
                datatype::UINT32,
                datatype::UINT64,
                datatype::STRING
            ]
        );
        assert!(
            vocab::STATION_STATES.contains(&p.metric(vocab::STATE).and_then(Metric::as_str).expect("state"))
        );
        assert_eq!(
            p.metric(vocab::CYCLE_DURATION).map(|m| m.read()),
            Some(twin_proto::sparkplug::MetricValue::Null)
        );
    }
}

#[test]
fn seq_counts_every_message_of_a_node_and_wraps() {
    let mut p = plant("Drift()", 1);
    let out = run(&mut p, 10 * SECOND, 3 * HOUR);
    let msgs = published(&out);
    let seqs: Vec<u64> = msgs
        .iter()
        .filter(|m| m.topic.kind != MessageKind::NDeath)
        .map(|m| m.payload.seq.expect("seq"))
        .collect();
    assert!(seqs.len() > 600, "{} messages: enough to wrap twice", seqs.len());
    for (i, s) in seqs.iter().enumerate() {
        assert_eq!(*s, i as u64 % 256, "message {i}");
    }
    let last = msgs.last().expect("messages");
    assert_eq!(last.topic.kind, MessageKind::NDeath);
    assert_eq!(last.payload.seq, None);
    assert!(matches!(out.last(), Some(Output::Disconnect { node: 0 })));
}

#[test]
fn data_carries_each_cycle_and_counters_that_add_up() {
    let mut p = plant("Drift()", 3);
    let out = run(&mut p, 30 * SECOND, 2 * HOUR);
    let msgs = published(&out);
    let mut cycles = 0u64;
    let mut parts_out = 0u64;
    let mut last_ts = 0;
    for m in msgs.iter().filter(|m| m.topic.device.as_deref() == Some("mill")) {
        let ms = &m.payload.metrics;
        for (i, metric) in ms.iter().enumerate() {
            let ts = metric.timestamp.expect("every metric is timestamped");
            assert!(ts >= last_ts && ts <= m.payload.timestamp.expect("payload ts"), "metrics in time order");
            last_ts = ts;
            if metric.name.as_deref() == Some(vocab::CYCLE_DURATION) && m.topic.kind == MessageKind::DData {
                cycles += 1;
                let d = metric.as_u64().expect("duration");
                assert!((55 * SECOND..=85 * SECOND).contains(&d), "mill Tri(55s, 65s, 85s): {d}");
                let product = &ms[i + 1];
                assert_eq!(product.name.as_deref(), Some(vocab::CYCLE_PRODUCT));
                assert_eq!(product.as_str(), Some("bracket"));
                assert_eq!(product.timestamp, metric.timestamp);
            }
            if let Some(n) =
                (metric.name.as_deref() == Some(vocab::PARTS_OUT)).then(|| metric.as_u64()).flatten()
            {
                parts_out = n;
            }
        }
    }
    assert!(cycles > 80, "{cycles} mill cycles in 2 h");
    assert_eq!(parts_out, cycles, "Parts/Out counts the cycles reported");
}

#[test]
fn drift_breaks_the_mill_and_kills_the_gateway_for_a_while() {
    let mut p = plant(DRIFT, 1);
    let out = run(&mut p, 10 * SECOND, 3 * HOUR);
    // The breakdown at 30 min shows as State = down on the next batch.
    let down = published(&out)
        .into_iter()
        .find(|m| {
            m.topic.device.as_deref() == Some("mill")
                && m.payload.metric(vocab::STATE).and_then(Metric::as_str) == Some(vocab::STATE_DOWN)
        })
        .expect("the mill goes down");
    assert_eq!(down.payload.timestamp, Some(EPOCH + 30 * 60 * 1000));
    // The gateway: NDEATH + Disconnect at 2 h, then Connect (bdSeq 1) + births at 2h10m.
    let death = out
        .iter()
        .position(
            |o| matches!(o, Output::Publish { message, .. } if message.topic.kind == MessageKind::NDeath),
        )
        .expect("NDEATH");
    let Output::Publish { message, .. } = &out[death] else { unreachable!() };
    assert_eq!(message.payload.timestamp, Some(EPOCH + 2 * 3600 * 1000));
    assert_eq!(message.payload.metric(vocab::BD_SEQ).and_then(Metric::as_u64), Some(0));
    assert!(matches!(out[death + 1], Output::Disconnect { node: 0 }));
    let Output::Connect { will, .. } = &out[death + 2] else { panic!("reconnect: {:?}", out[death + 2]) };
    assert_eq!(will.payload.metric(vocab::BD_SEQ).and_then(Metric::as_u64), Some(1));
    assert_eq!(will.payload.timestamp, Some(EPOCH + (2 * HOUR + 10 * MINUTE) / 1000));
    let Output::Publish { message: nbirth, .. } = &out[death + 3] else { panic!("NBIRTH") };
    assert_eq!(nbirth.topic.kind, MessageKind::NBirth);
    assert_eq!(nbirth.payload.seq, Some(0));
    assert_eq!(nbirth.payload.metric(vocab::BD_SEQ).and_then(Metric::as_u64), Some(1));
    assert!(p.counts().cycles_lost > 0, "cycles during the outage are not reported");
}

#[test]
fn rebirth_republishes_births_with_seq_from_zero() {
    let mut p = plant("Drift()", 1);
    let _ = p.start();
    let _ = p.advance(10 * MINUTE);
    let again = p.rebirth(0);
    let msgs = published(&again);
    assert_eq!(msgs.len(), 6);
    assert_eq!(msgs[0].topic.kind, MessageKind::NBirth);
    assert_eq!(msgs[0].payload.seq, Some(0));
    assert_eq!(msgs[0].payload.metric(vocab::BD_SEQ).and_then(Metric::as_u64), Some(0), "same session");
    assert!(msgs[1..].iter().all(|m| m.topic.kind == MessageKind::DBirth));
    let parts_out = msgs[2].payload.metric(vocab::PARTS_OUT).and_then(Metric::as_u64).expect("Parts/Out");
    assert!(parts_out > 0, "births carry the current counters");
    let next = p.advance(10 * MINUTE + 10 * SECOND);
    assert_eq!(published(&next)[0].payload.seq, Some(6));
}
