//! Whole-state save, restore and fork.
//!
//! The state is every subsystem's dynamic state (event list, parts, stations, vehicles,
//! trucks, stock, crews, random streams, statistics, histogram, bottleneck sweep, the
//! deviation monitor); the
//! model is not in it: a snapshot restores onto the model it was taken of, checked by
//! the scene hash (see [`crate::snapshot`]).
//!
//! Forks re-key the random streams: every named stream keeps its name (its ChaCha stream
//! number, the hash of the name) and takes a new key from the fork's seed, so two forks
//! with the same seed draw the same future, and forks with different seeds independent
//! ones. Forecasts derive each replication's seed from the live run's seed, the fork
//! time and the replication index, so a forecast is reproducible and its replications
//! are independent of each other and of the live run.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::Sim;
use super::agenda::Agenda;
use super::agv::Agvs;
use super::flow::Flow;
use super::materials::Materials;
use super::monitor::Monitor;
use super::staff::Staff;
use super::trucks::Trucks;
use crate::model::Model;
use crate::snapshot::{self, SnapshotError, SnapshotHeader};

/// The state as written: borrowed on the way out.
#[derive(Serialize)]
struct StateRef<'a> {
    seed: u64,
    agenda: &'a Agenda,
    flow: &'a Flow,
    agvs: &'a Agvs,
    trucks: &'a Trucks,
    materials: &'a Materials,
    staff: &'a Staff,
    monitor: &'a Monitor,
}

/// The state as read: owned on the way in. Field for field the same as [`StateRef`].
#[derive(Deserialize)]
struct State {
    seed: u64,
    agenda: Agenda,
    flow: Flow,
    agvs: Agvs,
    trucks: Trucks,
    materials: Materials,
    staff: Staff,
    monitor: Monitor,
}

impl Sim {
    /// The whole state as a snapshot file's bytes. `scene_path` is recorded as a hint for
    /// resuming; the scene hash decides what the snapshot restores onto.
    pub fn save(&self, scene_path: &str) -> Vec<u8> {
        let header = SnapshotHeader {
            scene_hash: self.model.scene_hash,
            scene_path: scene_path.to_string(),
            seed: self.seed,
            now: self.now(),
            events: self.events(),
        };
        let state = StateRef {
            seed: self.seed,
            agenda: &self.agenda,
            flow: &self.flow,
            agvs: &self.agvs,
            trucks: &self.trucks,
            materials: &self.materials,
            staff: &self.staff,
            monitor: &self.monitor,
        };
        snapshot::encode(&header, &state)
    }

    /// The run saved in `bytes`, on `model`, which must be the model it was saved from.
    pub fn restore(model: Arc<Model>, bytes: &[u8]) -> Result<Sim, SnapshotError> {
        let (_, state): (SnapshotHeader, State) = snapshot::decode(bytes, &model.scene_hash)?;
        let sim = Sim {
            model,
            seed: state.seed,
            agenda: state.agenda,
            flow: state.flow,
            agvs: state.agvs,
            trucks: state.trucks,
            materials: state.materials,
            staff: state.staff,
            monitor: state.monitor,
        };
        sim.check_restored()?;
        Ok(sim)
    }

    /// Refuses a decoded state whose tables do not fit the model (a hash collision or a
    /// hand-made file): indexing it would panic later.
    fn check_restored(&self) -> Result<(), SnapshotError> {
        if self.flow.fits(&self.model) && self.monitor.fits(&self.model) {
            Ok(())
        } else {
            Err(SnapshotError::Decode { what: "state", message: "its tables do not fit the scene".into() })
        }
    }

    /// A copy that continues from this state with every random stream re-keyed by
    /// `seed` (see the module docs).
    pub fn fork(&self, seed: u64) -> Sim {
        let mut copy = self.clone();
        copy.flow.rekey(seed);
        copy
    }
}
