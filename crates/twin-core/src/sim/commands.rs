//! Operator and trainer commands on a running simulation: the only public mutators
//! besides stepping. Each command validates fully before it changes anything, applies
//! at the current simulation time, and runs the follow-ups it causes before returning.

use super::agv::FleetRefusal;
use super::{CommandError, Sim};

impl Sim {
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
        let Some((_, hub)) = self.model.roads.as_ref().map(|(g, h)| (g.len(), *h)) else {
            return Err(CommandError::Invalid("the scene has no trucks".into()));
        };
        if self.model.trucks.is_none() {
            return Err(CommandError::Invalid("the scene has no trucks".into()));
        }
        if !(1..=1000).contains(&count) {
            return Err(CommandError::Invalid(format!("truck count must be 1 to 1000, got {count}")));
        }
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
