//! The command path of the simulation thread: a command is applied to the run in view,
//! logged durably first where the run keeps a durable log (refused, and not applied,
//! when the log cannot take it), and kept in the bounded in-memory log that Seek replays.

use twin_core::Applied;
use twin_core::time::Micros;

use super::{Driver, InjectError, Injection, NotLogged, Ranking, Receipt, changes_layout};
use crate::store::commands::Entry;

/// Most commands the in-memory log keeps without a store (about 100 bytes each: ~10 MB).
/// Beyond it the oldest tenth are forgotten at once (amortising the shift of the rest);
/// Seek then starts at the live time (nothing before it can be replayed) and the
/// timeline's earliest time says so. With a store, checkpoints bound the log instead (it
/// is pruned up to the oldest checkpoint kept).
pub const LOG_KEPT: usize = 100_000;

impl Driver {
    /// Applies an injection to the run in place (live, or a branch swapped in), logged
    /// durably first where the run keeps a log ([`Driver::apply_logged`]). Also says
    /// whether viewers must see a new snapshot (published by the caller, with the live
    /// run's parts in place).
    pub(super) fn inject(&mut self, i: Injection) -> (Result<Receipt, InjectError>, bool) {
        // Telemetry arrives often and changes only the monitor: publish when what
        // viewers see of it changed, without recomputing the KPIs.
        let observed = match &i {
            Injection::Observe(o) => self.scene.model.station(&o.station).map(|s| {
                (s, self.sim.sync_status(s), self.sim.last_observed(s).is_some(), self.sim.alarms_revision())
            }),
            _ => None,
        };
        let result = self.apply_logged(&i).map(|applied| {
            let applied_at = self.sim.now();
            tracing::info!(sim_time_us = applied_at, command = ?i, "injection applied");
            if changes_layout(&i) {
                self.change_layout(&i);
            }
            self.push_command(applied_at, i);
            let rush_order = match applied {
                Applied::RushOrder(id) => Some(id),
                Applied::Changed => None,
            };
            Receipt {
                applied_at,
                seq: self.log_base + self.log.len() as u64,
                generation: self.generation,
                rush_order,
            }
        });
        let publish = match observed {
            Some((s, sync, seen, revision)) if result.is_ok() => {
                // A running clock publishes within PUBLISH_EVERY anyway; a paused
                // one publishes only here.
                let now = (self.sim.sync_status(s), true, self.sim.alarms_revision());
                now != (sync, seen, revision) || self.clock.paused
            }
            _ if result.is_ok() => {
                self.refresh_report(Ranking::Keep);
                true
            }
            _ => false,
        };
        (result, publish)
    }

    /// Appends an applied command to the in-memory log of the run in place. Without a store
    /// the log is bounded by `log_kept` ([`LOG_KEPT`]): the oldest commands are forgotten
    /// (counted in `log_base`, so receipts keep numbering the run's commands).
    fn push_command(&mut self, at: Micros, command: Injection) {
        if self.store.is_none() && self.log.len() >= self.log_kept {
            let drop = (self.log_kept / 10).max(1).min(self.log.len());
            self.log.drain(..drop);
            self.log_base += drop as u64;
            tracing::warn!(
                forgotten = self.log_base,
                "in-memory command log full: the oldest commands are forgotten; Seek starts at the live time \
                 (serve with --data to keep them in checkpoints)"
            );
        }
        self.log.push((at, command));
    }

    /// Applies `i` to the run. Where the run keeps a durable log (the store with `--data`,
    /// or the telemetry log with live ingest; never on a branch), the command is applied
    /// to a copy of the state, written to the log, and only then does the copy become the
    /// run: a command the core refuses is never logged, and one the log cannot take
    /// (disk full, I/O error) is never applied, since a restart could not replay it. The
    /// copy costs about a millisecond on the demo complex, once per operator command.
    fn apply_logged(&mut self, i: &Injection) -> Result<Applied, InjectError> {
        if self.store.is_none() && self.telemetry.is_none() {
            return Ok(self.sim.apply(i)?);
        }
        let mut next = self.sim.clone();
        let applied = next.apply(i)?;
        let at = next.now();
        if let Some(telemetry) = &mut self.telemetry {
            telemetry.operator(at, i).map_err(|e| {
                tracing::error!(error = %e, command = ?i, "command refused: the telemetry log cannot record it");
                InjectError::NotLogged(NotLogged(e.to_string()))
            })?;
        }
        if let Some(store) = &mut self.store {
            store.log.append(&Entry::Command { at, command: i.clone() }).map_err(|e| {
                tracing::error!(error = %e, command = ?i, "command refused: the command log cannot record it");
                InjectError::NotLogged(NotLogged(e.to_string()))
            })?;
        }
        self.sim = next;
        Ok(applied)
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::sync::Arc;

    use twin_core::Model;
    use twin_core::time::HOUR;

    use super::*;
    use crate::sim::timeline::SeekError;
    use crate::sim::{LiveScene, Speed, Start};

    #[test]
    fn without_a_store_the_in_memory_log_keeps_the_newest_commands() {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scenes/training-line.ron");
        let model = Model::load(&path).expect("bundled scene");
        let scene = Arc::new(LiveScene::new("training-line".into(), path, model, None));
        let mut driver = Driver::new(scene, Speed::Max, true, Start::Fresh);
        driver.log_kept = 20;
        driver.sim.run_until(HOUR);
        assert!(driver.seek_plan(HOUR / 2).is_ok(), "while the log holds the run, Seek replays it");
        for quantity in 1..=45u32 {
            let command = Injection::RushOrder { product: "bracket".into(), quantity };
            let receipt = driver.inject(command).0.expect("applied");
            assert_eq!(receipt.seq, u64::from(quantity), "receipts number the run's commands");
            assert!(driver.log.len() <= 20, "bounded: {}", driver.log.len());
        }
        assert_eq!(driver.log_base + driver.log.len() as u64, 45);
        let last = driver.log.last().map(|(_, c)| c.clone());
        assert_eq!(last, Some(Injection::RushOrder { product: "bracket".into(), quantity: 45 }));
        // The start of the run is forgotten: nothing before the live time can be replayed.
        let refused = driver.seek_plan(HOUR / 2).err();
        assert!(matches!(refused, Some(SeekError::TooEarly { earliest: HOUR, .. })), "{refused:?}");
        assert_eq!(driver.timeline().earliest_us, HOUR);
        assert_eq!(driver.sim.rush_orders().len(), 45, "forgetting the log changes nothing in the run");
    }
}
