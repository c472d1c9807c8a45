//! Every conversion between twin-core types and twin.v1 wire types, and from core errors
//! to gRPC statuses. Nothing else in the workspace converts between the two.

use std::collections::{BTreeSet, HashMap};

use serde::Serialize;
use tonic::Status;
use twin_core::engine::StationState;
use twin_core::model::{Model, Release};
use twin_core::scene::StationKind;
use twin_core::time::Micros;
use twin_core::{CommandError, Report, StationView};
use twin_proto::v1;

use crate::sim::{Clock, ControlError, Injection, LiveScene, Receipt, ReportReply, Speed};

/// Footprint drawn for a station, metres; the core has no station sizes yet.
const STATION_SIZE_M: f64 = 4.0;
/// Currency of money fields; the core has no currency setting yet.
const CURRENCY: &str = "EUR";

// ----- Layout -----

fn station_kind(kind: StationKind) -> v1::StationKind {
    match kind {
        StationKind::Machine | StationKind::Oven => v1::StationKind::Machine,
        StationKind::RobotCell | StationKind::RobotArm => v1::StationKind::RobotCell,
        StationKind::Inspection => v1::StationKind::Inspection,
        StationKind::Assembly => v1::StationKind::Assembly,
        StationKind::Packing => v1::StationKind::Packaging,
    }
}

fn buffer_capacity(buffer: Option<u32>) -> v1::BufferCapacity {
    match buffer {
        Some(limit) => v1::BufferCapacity { limit, unlimited: false },
        None => v1::BufferCapacity { limit: 0, unlimited: true },
    }
}

/// A flow-link endpoint as `(EndpointKind, index)`.
type End = (i32, u32);

fn flow_links(model: &Model) -> Vec<v1::FlowLink> {
    use v1::EndpointKind as K;
    let mut links: BTreeSet<(End, End, i32)> = BTreeSet::new();
    let station = |s: u32| (K::Station as i32, s);
    let conveyor_between = |from: u32, to: u32| model.conveyors.iter().any(|c| c.from == from && c.to == to);
    for (src_idx, src) in model.sources.iter().enumerate() {
        let mut products: Vec<usize> = src.mix.iter().map(|m| usize::from(m.1)).collect();
        if let Release::Schedule(rows) = &src.release {
            products.extend(rows.iter().map(|r| usize::from(r.1)));
        }
        for p in products {
            if let Some(first) = model.products.get(p).and_then(|p| p.steps.first()) {
                for &s in &first.at {
                    links.insert((
                        (K::Source as i32, src_idx as u32),
                        station(s),
                        v1::FlowMode::Direct as i32,
                    ));
                }
            }
        }
    }
    for product in &model.products {
        for pair in product.steps.windows(2) {
            for &a in &pair[0].at {
                for &b in &pair[1].at {
                    let mode =
                        if conveyor_between(a, b) { v1::FlowMode::Conveyor } else { v1::FlowMode::Direct };
                    links.insert((station(a), station(b), mode as i32));
                }
            }
        }
        if let (Some(last), Some(sink)) = (product.steps.last(), product.sink) {
            for &a in &last.at {
                links.insert((station(a), (K::Sink as i32, sink), v1::FlowMode::Direct as i32));
            }
        }
    }
    links
        .into_iter()
        .enumerate()
        .map(|(index, (from, to, mode))| v1::FlowLink {
            index: index as u32,
            from: Some(v1::Endpoint { kind: from.0, index: from.1 }),
            to: Some(v1::Endpoint { kind: to.0, index: to.1 }),
            mode,
        })
        .collect()
}

/// The static layout of a model. `layout_generation` is left 0; replies fill it in.
pub fn layout(model: &Model, scene_name: &str) -> v1::Layout {
    let factory_id = |f: Option<u32>| {
        f.and_then(|f| model.factories.get(f as usize)).map_or_else(String::new, |f| f.id.clone())
    };
    let factories: Vec<v1::Factory> = model
        .factories
        .iter()
        .enumerate()
        .map(|(index, f)| v1::Factory {
            id: f.id.clone(),
            index: index as u32,
            name: f.name.clone(),
            industry: f.industry.clone(),
            origin_x: f.origin.x,
            origin_y: f.origin.y,
            width_m: f.size.0,
            depth_m: f.size.1,
            dock_node_id: String::new(),
        })
        .collect();
    let stations: Vec<v1::Station> = model
        .stations
        .iter()
        .enumerate()
        .map(|(index, s)| v1::Station {
            id: s.id.clone(),
            index: index as u32,
            name: s.name.clone(),
            factory_id: factory_id(s.factory),
            factory_index: s.factory.unwrap_or(0),
            kind: station_kind(s.kind) as i32,
            x: s.pos.x,
            y: s.pos.y,
            size_x_m: STATION_SIZE_M,
            size_y_m: STATION_SIZE_M,
            servers: s.servers,
            input_buffer: Some(buffer_capacity(s.buffer)),
            path_node_id: String::new(),
        })
        .collect();
    let conveyors = model
        .conveyors
        .iter()
        .map(|c| v1::Conveyor {
            id: c.id.clone(),
            from_station_id: model.stations[c.from as usize].id.clone(),
            to_station_id: model.stations[c.to as usize].id.clone(),
            length_m: c.length_m,
            speed_m_s: c.speed_m_s,
            capacity: c.capacity,
            from_station_index: c.from,
            to_station_index: c.to,
        })
        .collect();
    let sources = model
        .sources
        .iter()
        .enumerate()
        .map(|(index, s)| {
            let kind = match s.release {
                Release::Poisson { .. } => v1::ArrivalKind::Poisson,
                Release::Interval(_) => v1::ArrivalKind::FixedInterval,
                Release::Schedule(_) => v1::ArrivalKind::Schedule,
                // A saturated source has no arrival process; the contract has no value
                // for it yet.
                Release::Saturated => v1::ArrivalKind::Unspecified,
            };
            v1::Source {
                id: s.id.clone(),
                index: index as u32,
                name: s.id.clone(),
                factory_id: String::new(),
                x: s.pos.x,
                y: s.pos.y,
                arrival_kind: kind as i32,
                arrival_rate_per_hour: s.rate_per_hour().unwrap_or(0.0),
            }
        })
        .collect();
    let sinks = model
        .sinks
        .iter()
        .enumerate()
        .map(|(index, s)| v1::Sink {
            id: s.id.clone(),
            index: index as u32,
            name: s.id.clone(),
            factory_id: factory_id(s.factory),
            x: s.pos.x,
            y: s.pos.y,
        })
        .collect();
    let products = model
        .products
        .iter()
        .map(|p| v1::Product {
            id: p.id.clone(),
            name: p.name.clone(),
            price: p.price,
            material_cost: p.material_cost,
            routing: p
                .steps
                .iter()
                .map(|step| v1::RoutingStep {
                    station_ids: step.at.iter().map(|&s| model.stations[s as usize].id.clone()).collect(),
                    mean_process_time_s: step.mean / 1e6,
                })
                .collect(),
        })
        .collect();

    let mut points: Vec<(f64, f64)> = Vec::new();
    for f in &model.factories {
        points.push((f.origin.x, f.origin.y));
        points.push((f.origin.x + f.size.0, f.origin.y + f.size.1));
    }
    let half = STATION_SIZE_M / 2.0;
    for s in &model.stations {
        points.push((s.pos.x - half, s.pos.y - half));
        points.push((s.pos.x + half, s.pos.y + half));
    }
    points.extend(model.sources.iter().map(|s| (s.pos.x, s.pos.y)));
    points.extend(model.sinks.iter().map(|s| (s.pos.x, s.pos.y)));
    let site_bounds = points.iter().fold(None, |acc: Option<v1::Bounds>, &(x, y)| {
        Some(match acc {
            None => v1::Bounds { min_x: x, min_y: y, max_x: x, max_y: y },
            Some(b) => v1::Bounds {
                min_x: b.min_x.min(x),
                min_y: b.min_y.min(y),
                max_x: b.max_x.max(x),
                max_y: b.max_y.max(y),
            },
        })
    });

    v1::Layout {
        scene_name: scene_name.to_string(),
        scene_title: model.name.clone(),
        layout_generation: 0,
        site_bounds,
        currency: CURRENCY.into(),
        flow_links: flow_links(model),
        factories,
        stations,
        conveyors,
        sources,
        sinks,
        products,
        // AGVs, trucks, roads and the hub come with a later core issue.
        path_graphs: Vec::new(),
        road_network: Some(v1::RoadNetwork::default()),
        vehicles: Vec::new(),
        hub: None,
    }
}

/// Catalogue entry of a loaded scene.
pub fn scene_info(scene: &LiveScene) -> v1::SceneInfo {
    v1::SceneInfo {
        name: scene.name.clone(),
        title: scene.model.name.clone(),
        description: scene.model.description.clone(),
    }
}

// ----- Live state -----

fn station_state_kind(state: StationState) -> v1::StationStateKind {
    match state {
        StationState::Busy => v1::StationStateKind::Busy,
        StationState::Setup => v1::StationStateKind::Setup,
        StationState::Starved => v1::StationStateKind::Starved,
        StationState::Blocked => v1::StationStateKind::Blocked,
        StationState::Down => v1::StationStateKind::Down,
        StationState::OffShift => v1::StationStateKind::OffShift,
    }
}

/// Live state of station `index`.
pub fn station_state(
    index: usize,
    view: &StationView,
    throughput_per_hour: f64,
    utilization: f64,
) -> v1::StationState {
    let buffer_fill = match view.buffer {
        Some(cap) if cap > 0 => (view.queue as f32 / cap as f32).min(1.0),
        _ => 0.0,
    };
    v1::StationState {
        index: index as u32,
        state: station_state_kind(view.state) as i32,
        busy_servers: view.busy_servers,
        queue_length: view.queue,
        buffer_fill,
        throughput_per_hour,
        utilization,
    }
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 0.0 }
}

/// Complex-wide KPIs of a report.
pub fn kpi_summary(model: &Model, report: &Report) -> v1::KpiSummary {
    let c = &report.complex;
    let (servers, oee_weighted) = report
        .stations
        .iter()
        .fold((0.0, 0.0), |(n, o), s| (n + f64::from(s.servers), o + s.oee * f64::from(s.servers)));
    let (revenue, material) =
        report.products.iter().zip(&model.products).fold((0.0, 0.0), |(r, m), (kpi, spec)| {
            let n = kpi.finished as f64;
            (r + n * spec.price, m + n * spec.material_cost)
        });
    v1::KpiSummary {
        throughput_per_hour: c.throughput_per_hour,
        wip: c.wip_now as f64,
        lead_time_mean_s: c.lead_time_mean_s,
        oee: ratio(oee_weighted, servers),
        // Energy, CO2 and AGVs come with a later core issue.
        energy_kwh: 0.0,
        value_added_rate: ratio(revenue - material, revenue),
        finished: c.finished,
        scrapped: c.scrapped,
        lead_time_p50_s: c.lead_time_p50_s,
        lead_time_p95_s: c.lead_time_p95_s,
        co2_kg: 0.0,
        wip_mean: c.wip_mean,
        agv_utilization: 0.0,
    }
}

fn bottleneck_shares(model: &Model, report: &Report) -> Vec<v1::BottleneckShare> {
    let index: HashMap<&str, usize> =
        model.stations.iter().enumerate().map(|(i, s)| (s.id.as_str(), i)).collect();
    report
        .bottlenecks
        .iter()
        .filter_map(|b| {
            index
                .get(b.station.as_str())
                .map(|&i| v1::BottleneckShare { station_index: i as u32, share: b.share })
        })
        .collect()
}

/// The bottleneck ranking of a report; the momentary bottleneck is filled in per frame.
pub fn bottleneck_ranking(model: &Model, report: &Report) -> v1::BottleneckRanking {
    v1::BottleneckRanking {
        ranking: bottleneck_shares(model, report),
        momentary_station_index: None,
        window_start_us: (report.warmup_s * 1e6).round() as u64,
    }
}

/// The clock in wire form.
pub fn clock(clock: &Clock) -> v1::ClockState {
    v1::ClockState {
        sim_time_us: clock.sim_time,
        speed: clock.paced_speed,
        max_speed: clock.speed == Speed::Max,
        paused: clock.paused,
        achieved_speed: clock.achieved_speed,
        run_until_us: clock.run_until,
        seed: clock.seed,
    }
}

/// Receipt of an applied injection.
pub fn receipt(r: &Receipt) -> v1::CommandReceipt {
    v1::CommandReceipt { applied_at_us: r.applied_at, command_seq: r.seq }
}

// ----- Reports -----

/// The JSON document of `twin run --json`: the report plus wall seconds.
#[derive(Serialize)]
struct JsonReport<'a> {
    /// Wall-clock seconds the run took; the one field that differs between identical runs.
    wall_s: f64,
    #[serde(flatten)]
    report: &'a Report,
}

/// Serialises a report exactly as `twin run --json` prints it (pretty, same fields).
pub fn json_report(report: &Report, wall_s: f64) -> Result<String, serde_json::Error> {
    serde_json::to_string_pretty(&JsonReport { wall_s, report })
}

/// The typed report, with the JSON document unless `omit_json`.
pub fn report(reply: &ReportReply, omit_json: bool) -> Result<v1::Report, Status> {
    let model = &reply.scene.model;
    let r = &reply.report;
    let shares = bottleneck_shares(model, r);
    let share_of = |i: usize| shares.iter().find(|b| b.station_index as usize == i).map_or(0.0, |b| b.share);
    let json = if omit_json {
        String::new()
    } else {
        json_report(r, reply.wall_s).map_err(|e| Status::internal(format!("serialising the report: {e}")))?
    };
    Ok(v1::Report {
        scene_name: reply.scene.name.clone(),
        seed: r.seed,
        sim_time_us: (r.sim_time_s * 1e6).round() as u64,
        warmup_us: (r.warmup_s * 1e6).round() as u64,
        complex: Some(kpi_summary(model, r)),
        stations: r
            .stations
            .iter()
            .enumerate()
            .map(|(i, s)| v1::StationReport {
                station_id: s.id.clone(),
                station_index: i as u32,
                throughput_per_hour: s.throughput_per_hour,
                utilization: s.utilization,
                starved: s.starved,
                blocked: s.blocked,
                down: s.down,
                queue_mean: s.queue_mean,
                wait_mean_s: s.wait_mean_s,
                bottleneck_share: share_of(i),
                setup: s.setup,
                off_shift: s.off_shift,
            })
            .collect(),
        bottlenecks: shares,
        json,
    })
}

// ----- Requests and errors -----

/// Status of a refused injection: unknown ids are NOT_FOUND, state conflicts
/// FAILED_PRECONDITION. Field checks happen before the core sees a request.
pub fn command_status(e: CommandError) -> Status {
    match e {
        CommandError::UnknownStation(_)
        | CommandError::UnknownProduct(_)
        | CommandError::UnknownSource(_) => Status::not_found(e.to_string()),
        CommandError::AlreadyDown(_) | CommandError::NotDown(_) | CommandError::Invalid(_) => {
            Status::failed_precondition(e.to_string())
        }
    }
}

/// Status of a refused control call.
pub fn control_status(e: ControlError) -> Status {
    match e {
        ControlError::NotAfterNow { .. } => Status::failed_precondition(e.to_string()),
    }
}

fn required_id(field: &str, value: &str) -> Result<String, Status> {
    if value.is_empty() {
        Err(Status::invalid_argument(format!("{field} is required")))
    } else {
        Ok(value.to_string())
    }
}

/// The speed a SetSpeed request asks for.
pub fn speed(req: &v1::SetSpeedRequest) -> Result<Speed, Status> {
    if req.max_speed {
        return Ok(Speed::Max);
    }
    if req.speed.is_finite() && req.speed > 0.0 {
        Ok(Speed::Paced(req.speed))
    } else {
        Err(Status::invalid_argument(format!(
            "speed must be finite and > 0 (or set max_speed), got {}",
            req.speed
        )))
    }
}

/// The injection a BreakDown request asks for.
pub fn break_down(req: &v1::BreakDownRequest) -> Result<Injection, Status> {
    if req.duration_us == Some(0) {
        return Err(Status::invalid_argument("duration_us must be > 0 (omit it to stay down until Repair)"));
    }
    Ok(Injection::BreakDown {
        station: required_id("station_id", &req.station_id)?,
        duration: req.duration_us,
    })
}

/// The injection a Repair request asks for.
pub fn repair(req: &v1::RepairRequest) -> Result<Injection, Status> {
    Ok(Injection::Repair { station: required_id("station_id", &req.station_id)? })
}

/// Most units one rush order may release (the core's own limit).
const MAX_RUSH_QUANTITY: u32 = 10_000;

/// The injection an AddRushOrder request asks for.
pub fn rush_order(req: &v1::AddRushOrderRequest) -> Result<Injection, Status> {
    let product = required_id("product_id", &req.product_id)?;
    if req.quantity == 0 || req.quantity > MAX_RUSH_QUANTITY {
        return Err(Status::invalid_argument(format!(
            "quantity must be 1 to {MAX_RUSH_QUANTITY}, got {}",
            req.quantity
        )));
    }
    if req.due_in_us.is_some() {
        return Err(Status::unimplemented(
            "due_in_us: the simulation core does not support due dates on rush orders yet",
        ));
    }
    Ok(Injection::RushOrder { product, quantity: req.quantity })
}

/// The injection a SetParameter request asks for.
pub fn parameter(req: &v1::SetParameterRequest) -> Result<Injection, Status> {
    use v1::set_parameter_request::Parameter;
    match &req.parameter {
        None => Err(Status::invalid_argument(
            "parameter is required (one of station_buffer_capacity, station_servers, \
             agv_fleet_size, truck_count, source_arrival_rate)",
        )),
        Some(Parameter::StationBufferCapacity(p)) => {
            let station = required_id("station_buffer_capacity.station_id", &p.station_id)?;
            let capacity = match &p.capacity {
                None => {
                    return Err(Status::invalid_argument("station_buffer_capacity.capacity is required"));
                }
                Some(c) if c.unlimited => None,
                Some(c) if c.limit == 0 => {
                    return Err(Status::invalid_argument(
                        "station_buffer_capacity.capacity.limit must be at least 1 \
                         (the core has no zero-capacity buffers) or set unlimited",
                    ));
                }
                Some(c) => Some(c.limit),
            };
            Ok(Injection::SetBuffer { station, capacity })
        }
        Some(Parameter::SourceArrivalRate(p)) => {
            let source = required_id("source_arrival_rate.source_id", &p.source_id)?;
            if !(p.rate_per_hour.is_finite() && p.rate_per_hour > 0.0) {
                return Err(Status::invalid_argument(format!(
                    "source_arrival_rate.rate_per_hour must be finite and > 0, got {}",
                    p.rate_per_hour
                )));
            }
            Ok(Injection::SetArrivalRate { source, per_hour: p.rate_per_hour })
        }
        Some(Parameter::StationServers(_)) => Err(Status::unimplemented(
            "station_servers: the simulation core cannot change a station's servers during a run yet",
        )),
        Some(Parameter::AgvFleetSize(_)) => {
            Err(Status::unimplemented("agv_fleet_size: the simulation core has no AGVs yet"))
        }
        Some(Parameter::TruckCount(_)) => {
            Err(Status::unimplemented("truck_count: the simulation core has no trucks yet"))
        }
    }
}

/// Simulation time of a RunTo request.
pub fn run_to(req: &v1::RunToRequest) -> Micros {
    req.sim_time_us
}

// ----- Experiments -----

/// ExperimentStarted of an experiment.
pub fn experiment_started(e: &twin_lab::Experiment) -> v1::ExperimentStarted {
    v1::ExperimentStarted {
        variants: e.variant_names(),
        replications: e.replications,
        total_runs: e.total_runs() as u32,
    }
}

/// ReplicationDone of one finished replication.
pub fn replication_done(e: &twin_lab::Experiment, p: &twin_lab::Progress<'_>) -> v1::ReplicationDone {
    v1::ReplicationDone {
        variant: p.variant.to_string(),
        replication: p.replication,
        seed: p.seed,
        kpis: Some(kpi_summary(&e.variants[p.variant_idx].model, p.report)),
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
