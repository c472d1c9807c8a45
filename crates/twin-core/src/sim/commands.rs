//! Operator and trainer commands on a running simulation: the only public mutators
//! besides stepping. Each command validates fully before it changes anything, applies at
//! the current simulation time, and runs the follow-ups it causes before returning.
//!
//! The limits are public constants so that the server checks requests against the same
//! numbers (and answers INVALID_ARGUMENT before the core sees them).

use super::Sim;
use super::agv::FleetRefusal;
use super::flow::{FailureSource, Repair, RushOrderId};
use super::monitor::Observation;
use crate::model::{MAX_ARRIVALS_PER_HOUR, Release, StationIdx};
use crate::time::Micros;

/// Most units one rush order may release.
pub const MAX_RUSH_QUANTITY: u32 = 10_000;
/// Farthest ahead a rush order may be due (ten years of 365 days): far enough for any
/// plant, small enough that a due time never overflows.
pub const MAX_RUSH_DUE_IN: Micros = 3_650 * crate::time::DAY;
/// Most parallel servers a station may have.
pub const MAX_SERVERS: u32 = 1_000;
/// Most vehicles an AGV fleet may have (its path graph must also have room for them).
pub const MAX_FLEET_SIZE: u32 = 10_000;
/// Most trucks the truck pool may have.
pub const MAX_TRUCKS: u32 = 1_000;

/// Why a command was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("unknown station `{0}`")]
    UnknownStation(String),
    #[error("unknown product `{0}`")]
    UnknownProduct(String),
    #[error("unknown source `{0}`")]
    UnknownSource(String),
    #[error("station `{0}` is already down")]
    AlreadyDown(String),
    #[error("station `{0}` is not down")]
    NotDown(String),
    #[error("unknown fleet `{0}`")]
    UnknownFleet(String),
    /// The command is valid but the current state forbids it (for example taking out of
    /// service vehicles that are at work).
    #[error("{0}")]
    Busy(String),
    #[error("{0}")]
    Invalid(String),
}

/// A command as a value: what a live twin logs, and replays through [`Sim::apply`] to
/// reproduce a run. Serde (postcard) lets a durable log store applied commands.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Command {
    /// [`Sim::break_down`]
    BreakDown { station: String, duration: Option<Micros> },
    /// [`Sim::repair`]
    Repair { station: String },
    /// [`Sim::add_rush_order`]
    RushOrder { product: String, quantity: u32 },
    /// [`Sim::set_buffer`]
    SetBuffer { station: String, capacity: Option<u32> },
    /// [`Sim::set_arrival_rate`]
    SetArrivalRate { source: String, per_hour: f64 },
    /// [`Sim::set_servers`]
    SetServers { station: String, servers: u32 },
    /// [`Sim::set_fleet_size`]
    SetFleetSize { fleet: String, vehicles: u32 },
    /// [`Sim::set_truck_count`]
    SetTruckCount { trucks: u32 },
    /// [`Sim::observe`]: what the plant reported about a station (telemetry).
    Observe(Observation),
    /// [`Sim::set_failure_source`]: the plant's reports or the model's draws decide when
    /// a station fails (telemetry).
    FailuresFrom { station: String, source: FailureSource },
    /// [`Sim::add_rush_order_due_in`]: a rush order due `due_in` after its release.
    /// New variants go last so that logs written before them keep their variant
    /// numbers (postcard numbers variants in declaration order).
    RushOrderDue { product: String, quantity: u32, due_in: Micros },
}

/// What an applied command created.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    /// It changed the state and created nothing to refer to later.
    Changed,
    /// It placed the rush order with this id.
    RushOrder(RushOrderId),
}

impl Sim {
    /// Applies `command` now, exactly as the method of the same name would.
    pub fn apply(&mut self, command: &Command) -> Result<Applied, CommandError> {
        let changed = |r: Result<(), CommandError>| r.map(|()| Applied::Changed);
        match command {
            Command::BreakDown { station, duration } => changed(self.break_down(station, *duration)),
            Command::Repair { station } => changed(self.repair(station)),
            Command::RushOrder { product, quantity } => {
                self.add_rush_order(product, *quantity).map(Applied::RushOrder)
            }
            Command::SetBuffer { station, capacity } => changed(self.set_buffer(station, *capacity)),
            Command::SetArrivalRate { source, per_hour } => changed(self.set_arrival_rate(source, *per_hour)),
            Command::SetServers { station, servers } => changed(self.set_servers(station, *servers)),
            Command::SetFleetSize { fleet, vehicles } => changed(self.set_fleet_size(fleet, *vehicles)),
            Command::SetTruckCount { trucks } => changed(self.set_truck_count(*trucks)),
            Command::Observe(observation) => changed(self.observe(observation)),
            Command::FailuresFrom { station, source } => changed(self.set_failure_source(station, *source)),
            Command::RushOrderDue { product, quantity, due_in } => {
                self.add_rush_order_due_in(product, *quantity, *due_in).map(Applied::RushOrder)
            }
        }
    }

    pub(crate) fn station_by_id(&self, id: &str) -> Result<StationIdx, CommandError> {
        self.model.station(id).ok_or_else(|| CommandError::UnknownStation(id.to_string()))
    }

    /// Breaks a station down now. With `duration` it is repaired after that long;
    /// without, it stays down until [`Sim::repair`].
    pub fn break_down(&mut self, station: &str, duration: Option<Micros>) -> Result<(), CommandError> {
        let s = self.station_by_id(station)?;
        if self.flow.is_down(s) {
            return Err(CommandError::AlreadyDown(station.to_string()));
        }
        let repair = duration.map_or(Repair::ByCommand, Repair::After);
        self.with_flow(|flow, cx| flow.fail(cx, s, repair));
        self.run_followups();
        if duration.is_none() {
            // On a live station, this is the plant's failure (the ingest's mapping).
            self.plant_down(s);
        }
        Ok(())
    }

    /// Hands a station's failures to the plant or back to the model from now on (see
    /// [`FailureSource`]). Setting the source it already has changes nothing.
    pub fn set_failure_source(&mut self, station: &str, source: FailureSource) -> Result<(), CommandError> {
        let s = self.station_by_id(station)?;
        if self.flow.set_failure_source(&self.model, &mut self.agenda, s, source) {
            self.run_followups();
        }
        Ok(())
    }

    /// Who decides when `station` fails now.
    pub fn failure_source(&self, station: StationIdx) -> FailureSource {
        self.flow.failure_source(station)
    }

    /// Repairs a station that is down now.
    pub fn repair(&mut self, station: &str) -> Result<(), CommandError> {
        let s = self.station_by_id(station)?;
        if !self.flow.is_down(s) {
            return Err(CommandError::NotDown(station.to_string()));
        }
        self.with_flow(|flow, cx| flow.repair(cx, s));
        self.run_followups();
        // On a live station, this is the plant's repair (the ingest's mapping).
        self.plant_up(s);
        Ok(())
    }

    /// Releases `quantity` parts of `product` now, ahead of the queue at their first
    /// station (a rush order), with no due date. Its id names it in [`Sim::rush_orders`]
    /// and the report.
    pub fn add_rush_order(&mut self, product: &str, quantity: u32) -> Result<RushOrderId, CommandError> {
        self.place_rush_order(product, quantity, Micros::MAX)
    }

    /// A rush order (as [`Sim::add_rush_order`]) due `due_in` after now: each of its
    /// units carries that due time, so the report's on-time share counts them, and a
    /// forecast judges the whole order (met only when every unit finished by then).
    pub fn add_rush_order_due_in(
        &mut self,
        product: &str,
        quantity: u32,
        due_in: Micros,
    ) -> Result<RushOrderId, CommandError> {
        if due_in == 0 || due_in > MAX_RUSH_DUE_IN {
            return Err(CommandError::Invalid(format!(
                "due_in must be 1 us to {} days, got {due_in} us",
                MAX_RUSH_DUE_IN / crate::time::DAY
            )));
        }
        let due = self.now() + due_in;
        self.place_rush_order(product, quantity, due)
    }

    /// A rush order due at `due` (`Micros::MAX`: none), after the checks.
    fn place_rush_order(
        &mut self,
        product: &str,
        quantity: u32,
        due: Micros,
    ) -> Result<RushOrderId, CommandError> {
        let p =
            self.model.product(product).ok_or_else(|| CommandError::UnknownProduct(product.to_string()))?;
        if quantity == 0 || quantity > MAX_RUSH_QUANTITY {
            return Err(CommandError::Invalid(format!(
                "quantity must be 1 to {MAX_RUSH_QUANTITY}, got {quantity}"
            )));
        }
        let id = self.with_flow(|flow, cx| flow.add_rush_order(cx, p, quantity, due));
        self.run_followups();
        Ok(id)
    }

    /// Sets a station's input buffer capacity (None is unlimited). Lowering it below the
    /// current content keeps the parts already there; new ones wait until it drains.
    pub fn set_buffer(&mut self, station: &str, capacity: Option<u32>) -> Result<(), CommandError> {
        let s = self.station_by_id(station)?;
        if capacity == Some(0) {
            return Err(CommandError::Invalid("buffer capacity must be at least 1".into()));
        }
        self.flow.set_buffer(&mut self.agenda, s, capacity);
        self.run_followups();
        Ok(())
    }

    /// Sets the number of parallel servers of a station. Servers can always be added;
    /// only idle servers can be taken away (the last ones), so that no part is lost.
    pub fn set_servers(&mut self, station: &str, servers: u32) -> Result<(), CommandError> {
        let s = self.station_by_id(station)?;
        if !(1..=MAX_SERVERS).contains(&servers) {
            return Err(CommandError::Invalid(format!("servers must be 1 to {MAX_SERVERS}, got {servers}")));
        }
        self.with_flow(|flow, cx| flow.set_servers(cx, s, servers)).map_err(|e| {
            CommandError::Busy(format!(
                "`{station}` has only {} idle server(s) at the end now; {} must be removed",
                e.idle_tail, e.remove
            ))
        })?;
        self.run_followups();
        Ok(())
    }

    /// Changes the Poisson arrival rate of a source from now on.
    pub fn set_arrival_rate(&mut self, source: &str, per_hour: f64) -> Result<(), CommandError> {
        let idx = self
            .model
            .sources
            .iter()
            .position(|s| s.id == source)
            .ok_or_else(|| CommandError::UnknownSource(source.to_string()))?;
        if !matches!(self.model.sources[idx].release, Release::Poisson { .. }) {
            return Err(CommandError::Invalid(format!("source `{source}` does not have Poisson arrivals")));
        }
        if !(per_hour.is_finite() && per_hour > 0.0 && per_hour <= MAX_ARRIVALS_PER_HOUR) {
            return Err(CommandError::Invalid(format!(
                "arrival rate must be positive and at most {MAX_ARRIVALS_PER_HOUR} per hour, got {per_hour}"
            )));
        }
        self.flow.set_arrival_rate(idx, per_hour);
        Ok(())
    }

    /// Sets the number of vehicles of an AGV fleet. New vehicles appear on free parking
    /// nodes (then any free node); only vehicles standing idle can be taken out of
    /// service, the most recently added first, so that no order or part is lost.
    pub fn set_fleet_size(&mut self, fleet: &str, count: u32) -> Result<(), CommandError> {
        let f = self
            .model
            .fleets
            .iter()
            .position(|x| x.id == fleet)
            .ok_or_else(|| CommandError::UnknownFleet(fleet.to_string()))? as u32;
        if count > MAX_FLEET_SIZE {
            return Err(CommandError::Invalid(format!(
                "a fleet has at most {MAX_FLEET_SIZE} vehicles, got {count}"
            )));
        }
        let graph = &self.model.graphs[self.model.fleets[f as usize].graph as usize];
        if count as usize > graph.len() {
            return Err(CommandError::Invalid(format!(
                "{count} vehicles cannot stand on the {} nodes of `{}`",
                graph.len(),
                graph.id
            )));
        }
        self.agvs.set_fleet_size(&self.model, &mut self.agenda, f, count).map_err(|refusal| match refusal {
            FleetRefusal::NoRoom { free } => {
                CommandError::Invalid(format!("only {free} free nodes for new vehicles of `{fleet}` now"))
            }
            FleetRefusal::NotIdle { idle, remove } => CommandError::Busy(format!(
                "only {idle} vehicle(s) of `{fleet}` stand idle now; {remove} must be taken out of service"
            )),
        })?;
        self.run_followups();
        Ok(())
    }

    /// Sets the number of trucks. New trucks start at the hub; only idle trucks can be
    /// taken out of service, the most recently added first.
    pub fn set_truck_count(&mut self, count: u32) -> Result<(), CommandError> {
        let (Some((_, hub)), Some(_)) = (&self.model.roads, &self.model.trucks) else {
            return Err(CommandError::Invalid("the scene has no trucks".into()));
        };
        if !(1..=MAX_TRUCKS).contains(&count) {
            return Err(CommandError::Invalid(format!("truck count must be 1 to {MAX_TRUCKS}, got {count}")));
        }
        let hub = *hub;
        self.trucks.set_count(&self.model, &mut self.agenda, hub, count).map_err(|e| {
            CommandError::Busy(format!(
                "only {} truck(s) stand idle now; {} must be taken out of service",
                e.idle, e.remove
            ))
        })?;
        self.run_followups();
        Ok(())
    }
}
