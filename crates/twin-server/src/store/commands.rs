//! The durable command log (`DIR/commands.redb`): every command applied to the live run
//! and every start of a run, in order, each on disk (`Durability::Immediate`) before the
//! RPC that asked for it is answered.
//!
//! One table, `commands`, keyed by a sequence number from 1 that never restarts (a new
//! run is an entry too). Entries older than the oldest checkpoint kept are pruned
//! ([`CommandLog::prune_through`]), so the file holds what a restart or a Seek replays,
//! not the whole history of the server.

use std::path::{Path, PathBuf};

use redb::{
    Builder, ConcurrencyMode, Database, Durability, ReadableDatabase, ReadableTable, TableDefinition,
};
use serde::{Deserialize, Serialize};
use twin_core::Command;
use twin_core::time::Micros;

use super::StoreError;

const COMMANDS: TableDefinition<u64, &[u8]> = TableDefinition::new("commands");

/// File name of the command log inside the data folder.
pub const FILE_NAME: &str = "commands.redb";

/// One entry of the log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Entry {
    /// A run of `scene` (catalogue name) with `seed` starts at simulated time 0 (server
    /// start on an empty log, Reset, LoadScene).
    NewRun { scene: String, seed: u64 },
    /// `command` was applied at simulated time `at` (after `run_until(at)`).
    Command { at: Micros, command: Command },
}

/// The writer and reader of `DIR/commands.redb`; owned by the simulation thread.
pub struct CommandLog {
    db: Database,
    path: PathBuf,
    /// Sequence number of the newest entry (0: none yet).
    last: u64,
}

impl std::fmt::Debug for CommandLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommandLog").field("path", &self.path).field("last", &self.last).finish()
    }
}

impl CommandLog {
    /// Opens (or creates) the log.
    pub fn open(path: &Path) -> Result<CommandLog, StoreError> {
        let mut builder = Builder::new();
        builder.set_concurrency_mode(ConcurrencyMode::SingleWriter);
        let io = |e: &dyn std::fmt::Display| StoreError::io(path, e);
        let db = builder.create(path).map_err(|e| io(&e))?;
        let txn = db.begin_write().map_err(|e| io(&e))?;
        let last = {
            let table = txn.open_table(COMMANDS).map_err(|e| io(&e))?;
            table.last().map_err(|e| io(&e))?.map_or(0, |(k, _)| k.value())
        };
        txn.commit().map_err(|e| io(&e))?;
        Ok(CommandLog { db, path: path.to_owned(), last })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Sequence number of the newest entry (0 for an empty log).
    pub fn last_seq(&self) -> u64 {
        self.last
    }

    /// Appends `entry` and returns its sequence number once it is on disk.
    pub fn append(&mut self, entry: &Entry) -> Result<u64, StoreError> {
        let io = |e: &dyn std::fmt::Display| StoreError::io(&self.path, e);
        let bytes = postcard::to_allocvec(entry).map_err(|e| io(&e))?;
        let seq = self.last + 1;
        let mut txn = self.db.begin_write().map_err(|e| io(&e))?;
        txn.set_durability(Durability::Immediate).map_err(|e| io(&e))?;
        {
            let mut table = txn.open_table(COMMANDS).map_err(|e| io(&e))?;
            table.insert(seq, bytes.as_slice()).map_err(|e| io(&e))?;
        }
        txn.commit().map_err(|e| io(&e))?;
        self.last = seq;
        Ok(seq)
    }

    /// Entries with sequence numbers in `from..=through`, in order. An entry that does
    /// not decode is an error naming its sequence number (the log is the truth: a
    /// replay that skipped one would silently differ).
    pub fn read(&self, from: u64, through: u64) -> Result<Vec<(u64, Entry)>, StoreError> {
        let io = |e: &dyn std::fmt::Display| StoreError::io(&self.path, e);
        let txn = self.db.begin_read().map_err(|e| io(&e))?;
        let table = txn.open_table(COMMANDS).map_err(|e| io(&e))?;
        let mut out = Vec::new();
        if from > through {
            return Ok(out);
        }
        for item in table.range(from..=through).map_err(|e| io(&e))? {
            let (k, v) = item.map_err(|e| io(&e))?;
            let entry: Entry = postcard::from_bytes(v.value())
                .map_err(|e| io(&format!("entry {} does not decode: {e}", k.value())))?;
            out.push((k.value(), entry));
        }
        Ok(out)
    }

    /// The newest `NewRun` entry at or before `through`, with its sequence number.
    pub fn run_start(&self, through: u64) -> Result<Option<(u64, String, u64)>, StoreError> {
        let io = |e: &dyn std::fmt::Display| StoreError::io(&self.path, e);
        let txn = self.db.begin_read().map_err(|e| io(&e))?;
        let table = txn.open_table(COMMANDS).map_err(|e| io(&e))?;
        for item in table.range(..=through).map_err(|e| io(&e))?.rev() {
            let (k, v) = item.map_err(|e| io(&e))?;
            if let Ok(Entry::NewRun { scene, seed }) = postcard::from_bytes::<Entry>(v.value()) {
                return Ok(Some((k.value(), scene, seed)));
            }
        }
        Ok(None)
    }

    /// Removes the entries up to and including `through` (they are in a checkpoint that
    /// is kept, or belong to an earlier run).
    pub fn prune_through(&mut self, through: u64) -> Result<u64, StoreError> {
        let io = |e: &dyn std::fmt::Display| StoreError::io(&self.path, e);
        let txn = self.db.begin_write().map_err(|e| io(&e))?;
        let removed = {
            let mut table = txn.open_table(COMMANDS).map_err(|e| io(&e))?;
            let keys: Vec<u64> = table
                .range(..=through)
                .map_err(|e| io(&e))?
                .map(|item| item.map(|(k, _)| k.value()))
                .collect::<Result<_, _>>()
                .map_err(|e| io(&e))?;
            for k in &keys {
                table.remove(k).map_err(|e| io(&e))?;
            }
            keys.len() as u64
        };
        txn.commit().map_err(|e| io(&e))?;
        Ok(removed)
    }

    /// The oldest sequence number the log still holds (None when empty).
    pub fn first_seq(&self) -> Result<Option<u64>, StoreError> {
        let io = |e: &dyn std::fmt::Display| StoreError::io(&self.path, e);
        let txn = self.db.begin_read().map_err(|e| io(&e))?;
        let table = txn.open_table(COMMANDS).map_err(|e| io(&e))?;
        Ok(table.first().map_err(|e| io(&e))?.map(|(k, _)| k.value()))
    }
}
