//! The durable command log (`DIR/commands.redb`): every command applied to the live run
//! and every start of a run, in order, each on disk (`Durability::Immediate`) before the
//! RPC that asked for it is answered.
//!
//! One table, `commands`, keyed by a sequence number from 1 that never restarts (a new
//! run is an entry too). Entries older than the oldest checkpoint kept are pruned
//! ([`CommandLog::prune_through`]), so the file holds what a restart or a Seek replays,
//! not the whole history of the server.
//!
//! A failed write (disk full, I/O error) is an error for the caller, who must not apply
//! the command: redb then refuses every later operation until the database is reopened,
//! so the log closes it and reopens it at the next append, dropping any entry after the
//! last one it acknowledged (a commit that reported failure may still have landed).

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

/// Opens the database of a log on storage other than its file (tests of failing storage).
type Opener = Box<dyn Fn() -> Result<Database, redb::DatabaseError> + Send>;

/// The writer and reader of `DIR/commands.redb`; owned by the simulation thread.
pub struct CommandLog {
    /// None after a failed write, until the next append reopens it.
    db: Option<Database>,
    path: PathBuf,
    /// How to open the storage again after a failure; None: the file at `path`.
    opener: Option<Opener>,
    /// Sequence number of the newest entry acknowledged (0: none yet).
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
        CommandLog::open_with(path, None)
    }

    /// Opens a log on the database `open` creates (for example on a
    /// [`redb::StorageBackend`] of a test; each call must reach the same bytes: it is
    /// called again to reopen after a failure); `path` names it in errors.
    pub fn open_on(
        path: &Path,
        open: impl Fn() -> Result<Database, redb::DatabaseError> + Send + 'static,
    ) -> Result<CommandLog, StoreError> {
        CommandLog::open_with(path, Some(Box::new(open)))
    }

    fn open_with(path: &Path, opener: Option<Opener>) -> Result<CommandLog, StoreError> {
        let mut log = CommandLog { db: None, path: path.to_owned(), opener, last: 0 };
        let db = log.connect()?;
        let txn = db.begin_write().map_err(|e| log.io(&e))?;
        let last = {
            let table = txn.open_table(COMMANDS).map_err(|e| log.io(&e))?;
            table.last().map_err(|e| log.io(&e))?.map_or(0, |(k, _)| k.value())
        };
        txn.commit().map_err(|e| log.io(&e))?;
        log.last = last;
        log.db = Some(db);
        Ok(log)
    }

    fn io(&self, e: &dyn std::fmt::Display) -> StoreError {
        StoreError::io(&self.path, e)
    }

    /// Opens the database on the storage.
    fn connect(&self) -> Result<Database, StoreError> {
        let mut builder = Builder::new();
        builder.set_concurrency_mode(ConcurrencyMode::SingleWriter);
        match &self.opener {
            None => builder.create(&self.path).map_err(|e| self.io(&e)),
            Some(open) => open().map_err(|e| self.io(&e)),
        }
    }

    /// The open database; after a failed write, reopened, without any entry past the
    /// last acknowledged one.
    fn db(&mut self) -> Result<&Database, StoreError> {
        if self.db.is_none() {
            let db = self.connect()?;
            let mut txn = db.begin_write().map_err(|e| self.io(&e))?;
            txn.set_durability(Durability::Immediate).map_err(|e| self.io(&e))?;
            let dropped = {
                let mut table = txn.open_table(COMMANDS).map_err(|e| self.io(&e))?;
                let mut dropped = 0;
                loop {
                    let k = match table.last().map_err(|e| self.io(&e))? {
                        Some((k, _)) => k.value(),
                        None => break,
                    };
                    if k <= self.last {
                        break;
                    }
                    table.remove(k).map_err(|e| self.io(&e))?;
                    dropped += 1;
                }
                dropped
            };
            txn.commit().map_err(|e| self.io(&e))?;
            tracing::info!(path = %self.path.display(), dropped, "command log reopened after a failed write");
            self.db = Some(db);
        }
        self.db.as_ref().ok_or_else(|| self.io(&"the command log is closed"))
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Sequence number of the newest entry (0 for an empty log).
    pub fn last_seq(&self) -> u64 {
        self.last
    }

    /// Appends `entry` and returns its sequence number once it is on disk. On an error
    /// the entry is not in the log (the caller must not act on it), and the database is
    /// closed to be reopened by the next append.
    pub fn append(&mut self, entry: &Entry) -> Result<u64, StoreError> {
        let bytes = postcard::to_allocvec(entry).map_err(|e| self.io(&e))?;
        let seq = self.last + 1;
        let path = self.path.clone();
        let written = self.db().and_then(|db| write(db, seq, &bytes).map_err(|e| StoreError::io(&path, &e)));
        if written.is_err() {
            self.db = None;
        }
        written?;
        self.last = seq;
        Ok(seq)
    }

    /// The open database for a read; an error after a failed write not yet reopened.
    fn reader(&self) -> Result<&Database, StoreError> {
        self.db.as_ref().ok_or_else(|| self.io(&"closed after a failed write; the next command reopens it"))
    }

    /// Entries with sequence numbers in `from..=through`, in order. An entry that does
    /// not decode is an error naming its sequence number (the log is the truth: a
    /// replay that skipped one would silently differ).
    pub fn read(&self, from: u64, through: u64) -> Result<Vec<(u64, Entry)>, StoreError> {
        let io = |e: &dyn std::fmt::Display| StoreError::io(&self.path, e);
        let txn = self.reader()?.begin_read().map_err(|e| io(&e))?;
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
        let txn = self.reader()?.begin_read().map_err(|e| io(&e))?;
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
        let path = self.path.clone();
        let removed = self.db().and_then(|db| prune(db, through).map_err(|e| StoreError::io(&path, &e)));
        if removed.is_err() {
            self.db = None;
        }
        removed
    }

    /// The oldest sequence number the log still holds (None when empty).
    pub fn first_seq(&self) -> Result<Option<u64>, StoreError> {
        let io = |e: &dyn std::fmt::Display| StoreError::io(&self.path, e);
        let txn = self.reader()?.begin_read().map_err(|e| io(&e))?;
        let table = txn.open_table(COMMANDS).map_err(|e| io(&e))?;
        Ok(table.first().map_err(|e| io(&e))?.map(|(k, _)| k.value()))
    }
}

/// One durable insert of `bytes` at `seq`.
fn write(db: &Database, seq: u64, bytes: &[u8]) -> Result<(), redb::Error> {
    let mut txn = db.begin_write()?;
    txn.set_durability(Durability::Immediate)?;
    {
        let mut table = txn.open_table(COMMANDS)?;
        table.insert(seq, bytes)?;
    }
    txn.commit()?;
    Ok(())
}

/// Removes the entries up to and including `through`, in one commit.
fn prune(db: &Database, through: u64) -> Result<u64, redb::Error> {
    let txn = db.begin_write()?;
    let removed = {
        let mut table = txn.open_table(COMMANDS)?;
        let keys: Vec<u64> =
            table.range(..=through)?.map(|item| item.map(|(k, _)| k.value())).collect::<Result<_, _>>()?;
        for k in &keys {
            table.remove(k)?;
        }
        keys.len() as u64
    };
    txn.commit()?;
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use std::ops::Bound;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use redb::backends::FileBackend;
    use redb::{BackendError, StorageBackend};

    /// The error of a backend's I/O methods (without redb's experimental API).
    type BackendIoError = std::io::Error;

    use super::*;

    /// The real file, whose writes, syncs and growth fail while `fail` is set: a disk
    /// that fills up, then has room again.
    #[derive(Debug)]
    struct Flaky {
        file: FileBackend,
        fail: Arc<AtomicBool>,
    }

    impl Flaky {
        fn check(&self) -> Result<(), BackendIoError> {
            if self.fail.load(Ordering::SeqCst) {
                Err(std::io::Error::from_raw_os_error(28)) // ENOSPC
            } else {
                Ok(())
            }
        }
    }

    impl StorageBackend for Flaky {
        fn len(&self) -> Result<u64, BackendIoError> {
            self.file.len()
        }
        fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), BackendIoError> {
            self.file.read(offset, out)
        }
        fn set_len(&self, len: u64) -> Result<(), BackendIoError> {
            self.check()?;
            self.file.set_len(len)
        }
        fn sync_data(&self) -> Result<(), BackendIoError> {
            self.check()?;
            self.file.sync_data()
        }
        fn write(&self, offset: u64, data: &[u8]) -> Result<(), BackendIoError> {
            self.check()?;
            self.file.write(offset, data)
        }
        fn close(&self) -> Result<(), BackendIoError> {
            self.file.close()
        }
        fn try_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
            self.file.try_lock_range(start, end)
        }
        fn try_lock_shared_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
            self.file.try_lock_shared_range(start, end)
        }
        fn lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
            self.file.lock_range(start, end)
        }
        fn lock_shared_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
            self.file.lock_shared_range(start, end)
        }
        fn unlock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
            self.file.unlock_range(start, end)
        }
        fn query_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
            self.file.query_lock_range(start, end)
        }
    }

    fn rush(quantity: u32) -> Entry {
        Entry::Command { at: 5, command: Command::RushOrder { product: "bracket".into(), quantity } }
    }

    #[test]
    fn a_failed_write_is_an_error_the_entry_is_not_logged_and_the_log_recovers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let fail = Arc::new(AtomicBool::new(false));
        let (file, flag) = (path.clone(), Arc::clone(&fail));
        let mut log = CommandLog::open_on(&path, move || {
            let f = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&file)?;
            let mut builder = Builder::new();
            builder.set_concurrency_mode(ConcurrencyMode::SingleWriter);
            builder.create_with_backend(Flaky { file: FileBackend::new(f)?, fail: Arc::clone(&flag) })
        })
        .expect("opens");
        assert_eq!(log.append(&rush(1)).expect("written"), 1);

        fail.store(true, Ordering::SeqCst);
        let refused = log.append(&rush(2)).expect_err("the disk is full");
        let message = refused.to_string();
        assert!(message.starts_with(&path.display().to_string()), "names the file: {message}");
        assert!(log.append(&rush(3)).is_err(), "still full: still refused");
        assert_eq!(log.last_seq(), 1, "nothing refused counts");

        fail.store(false, Ordering::SeqCst);
        assert_eq!(log.append(&rush(4)).expect("room again"), 2, "the next number, no gap");
        let entries: Vec<Entry> = log.read(1, 10).expect("reads").into_iter().map(|(_, e)| e).collect();
        assert_eq!(entries, [rush(1), rush(4)], "refused entries never reach the log");
        drop(log);

        // What a restart reads from the file: the same two entries.
        let reopened = CommandLog::open(&path).expect("reopens");
        assert_eq!(reopened.last_seq(), 2);
        let entries: Vec<Entry> = reopened.read(1, 10).unwrap().into_iter().map(|(_, e)| e).collect();
        assert_eq!(entries, [rush(1), rush(4)]);
    }
}
