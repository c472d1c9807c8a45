//! Requests into the core's terms (commands, speeds, times) with every field checked
//! against the core's own limits, and the core's refusals into gRPC statuses.

use tonic::Status;
use twin_core::sim::commands::{MAX_FLEET_SIZE, MAX_RUSH_DUE_IN, MAX_RUSH_QUANTITY, MAX_SERVERS, MAX_TRUCKS};
use twin_core::time::Micros;
use twin_core::{Command, CommandError};
use twin_proto::v1;

use crate::live::{ControlError, InjectError, Speed};

/// Status of a refused injection: unknown ids are NOT_FOUND, state conflicts
/// FAILED_PRECONDITION. Field checks happen before the core sees a request.
pub fn command_status(e: CommandError) -> Status {
    match e {
        CommandError::UnknownStation(_)
        | CommandError::UnknownProduct(_)
        | CommandError::UnknownSource(_)
        | CommandError::UnknownFleet(_) => Status::not_found(e.to_string()),
        CommandError::AlreadyDown(_)
        | CommandError::NotDown(_)
        | CommandError::Invalid(_)
        | CommandError::Busy(_) => Status::failed_precondition(e.to_string()),
    }
}

/// Status of a refused injection: the core's refusal as [`command_status`]; a command
/// the durable log could not take is UNAVAILABLE (not applied; the client may retry).
pub fn inject_status(e: InjectError) -> Status {
    match e {
        InjectError::Command(e) => command_status(e),
        InjectError::NotLogged(_) => Status::unavailable(e.to_string()),
    }
}

/// Status of a refused control call.
pub fn control_status(e: ControlError) -> Status {
    match e {
        ControlError::NotAfterNow { .. } => Status::failed_precondition(e.to_string()),
        ControlError::NotLogged(_) => Status::unavailable(e.to_string()),
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
pub fn break_down(req: &v1::BreakDownRequest) -> Result<Command, Status> {
    if req.duration_us == Some(0) {
        return Err(Status::invalid_argument("duration_us must be > 0 (omit it to stay down until Repair)"));
    }
    Ok(Command::BreakDown { station: required_id("station_id", &req.station_id)?, duration: req.duration_us })
}

/// The injection a Repair request asks for.
pub fn repair(req: &v1::RepairRequest) -> Result<Command, Status> {
    Ok(Command::Repair { station: required_id("station_id", &req.station_id)? })
}

/// The injection an AddRushOrder request asks for.
pub fn rush_order(req: &v1::AddRushOrderRequest) -> Result<Command, Status> {
    let product = required_id("product_id", &req.product_id)?;
    if req.quantity == 0 || req.quantity > MAX_RUSH_QUANTITY {
        return Err(Status::invalid_argument(format!(
            "quantity must be 1 to {MAX_RUSH_QUANTITY}, got {}",
            req.quantity
        )));
    }
    match req.due_in_us {
        None => Ok(Command::RushOrder { product, quantity: req.quantity }),
        Some(due_in) if due_in == 0 || due_in > MAX_RUSH_DUE_IN => Err(Status::invalid_argument(format!(
            "due_in_us must be 1 to {MAX_RUSH_DUE_IN} (3,650 days), got {due_in} (omit it for \"as soon as possible\")"
        ))),
        Some(due_in) => Ok(Command::RushOrderDue { product, quantity: req.quantity, due_in }),
    }
}

/// The injection a SetParameter request asks for.
pub fn parameter(req: &v1::SetParameterRequest) -> Result<Command, Status> {
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
            Ok(Command::SetBuffer { station, capacity })
        }
        Some(Parameter::SourceArrivalRate(p)) => {
            let source = required_id("source_arrival_rate.source_id", &p.source_id)?;
            if !(p.rate_per_hour.is_finite() && p.rate_per_hour > 0.0) {
                return Err(Status::invalid_argument(format!(
                    "source_arrival_rate.rate_per_hour must be finite and > 0, got {}",
                    p.rate_per_hour
                )));
            }
            Ok(Command::SetArrivalRate { source, per_hour: p.rate_per_hour })
        }
        Some(Parameter::StationServers(p)) => {
            let station = required_id("station_servers.station_id", &p.station_id)?;
            if !(1..=MAX_SERVERS).contains(&p.servers) {
                return Err(Status::invalid_argument(format!(
                    "station_servers.servers must be 1 to {MAX_SERVERS}, got {}",
                    p.servers
                )));
            }
            Ok(Command::SetServers { station, servers: p.servers })
        }
        Some(Parameter::AgvFleetSize(p)) => {
            let fleet = required_id("agv_fleet_size.fleet_id", &p.fleet_id)?;
            if p.vehicles > MAX_FLEET_SIZE {
                return Err(Status::invalid_argument(format!(
                    "agv_fleet_size.vehicles must be 0 to {MAX_FLEET_SIZE}, got {}",
                    p.vehicles
                )));
            }
            Ok(Command::SetFleetSize { fleet, vehicles: p.vehicles })
        }
        Some(Parameter::TruckCount(p)) => {
            if !(1..=MAX_TRUCKS).contains(&p.trucks) {
                return Err(Status::invalid_argument(format!(
                    "truck_count.trucks must be 1 to {MAX_TRUCKS}, got {}",
                    p.trucks
                )));
            }
            Ok(Command::SetTruckCount { trucks: p.trucks })
        }
    }
}

/// Simulation time of a RunTo request.
pub fn run_to(req: &v1::RunToRequest) -> Micros {
    req.sim_time_us
}
