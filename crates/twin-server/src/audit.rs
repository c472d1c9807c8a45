//! The audit log: who changed what, when, and how it ended, kept durably in a redb file.
//!
//! [`crate::gate`] appends one [`Entry`] for every call of an RPC that changes anything
//! (the role table says which) and for every call rejected for its credentials or role,
//! and answers the client only once the entry is on disk (`Durability::Immediate`).
//!
//! Retention: the log keeps at most [`Retention::max_entries`] entries and none older
//! than [`Retention::max_age`]; each append removes what falls outside (at most
//! [`PRUNE_BATCH`] entries per append, so an append stays short), and opening the log
//! prunes too. redb reuses the freed pages, so the file stops growing once the log is
//! full.
//!
//! The file is opened in redb's single-writer mode: the server writes while `twin audit
//! --data DIR` reads it from another process.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redb::{
    Builder, ConcurrencyMode, Database, Durability, ReadOnlyDatabase, ReadableDatabase, ReadableTable,
    ReadableTableMetadata, TableDefinition,
};
use serde::{Deserialize, Serialize};
use twin_proto::v1;

use crate::auth::Role;

/// Entries by sequence number; values are JSON-encoded [`Entry`] bodies.
const ENTRIES: TableDefinition<u64, &[u8]> = TableDefinition::new("audit_entries");
/// Counters that must survive pruning (the next sequence number).
const META: TableDefinition<&str, u64> = TableDefinition::new("audit_meta");
const NEXT_SEQ: &str = "next_seq";

/// Most entries one append removes for retention; the rest go with later appends.
pub const PRUNE_BATCH: usize = 256;
/// Default page size of ListAudit and `twin audit`.
pub const DEFAULT_PAGE: usize = 50;
/// Largest page ListAudit serves.
pub const MAX_PAGE: usize = 1000;
/// File name of the audit log inside the server's data folder (`--data DIR`).
pub const FILE_NAME: &str = "audit.redb";

/// How much of the log is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    /// Most entries kept; the oldest go first.
    pub max_entries: u64,
    /// Entries older than this (wall clock) are removed.
    pub max_age: Duration,
}

impl Default for Retention {
    /// 100,000 entries (a few tens of MB) and 90 days.
    fn default() -> Self {
        Retention { max_entries: 100_000, max_age: Duration::from_secs(90 * 24 * 3600) }
    }
}

/// Where the log lives and how much of it is kept.
#[derive(Clone, Debug)]
pub struct AuditConfig {
    /// The redb file (created with its folder when missing).
    pub path: PathBuf,
    /// What is kept.
    pub retention: Retention,
}

/// One audited call.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// Position in the log (the table key; not stored in the value).
    #[serde(skip)]
    pub seq: u64,
    /// Wall-clock time the call finished, ms since the Unix epoch.
    pub wall_time_unix_ms: u64,
    /// Simulated time of the live run then, microseconds.
    pub sim_time_us: u64,
    /// Token subject, "anonymous" without authentication, "-" when unknown.
    pub subject: String,
    /// The caller's role, when authenticated.
    pub role: Option<Role>,
    /// RPC name, or the request path of a method outside the role table.
    pub method: String,
    /// Short rendering of the request; "-" when it was not read.
    pub request: String,
    /// gRPC status code name ("OK", "PERMISSION_DENIED", ...).
    pub code: String,
    /// Status message of a failed call; empty on OK.
    pub message: String,
    /// Caller's address, when known.
    pub peer: String,
}

impl Entry {
    /// The wire form.
    pub fn to_proto(&self) -> v1::AuditEntry {
        v1::AuditEntry {
            seq: self.seq,
            wall_time_unix_ms: self.wall_time_unix_ms,
            sim_time_us: self.sim_time_us,
            subject: self.subject.clone(),
            role: self.role.map_or(v1::Role::Unspecified, Role::to_proto).into(),
            method: self.method.clone(),
            request: self.request.clone(),
            code: self.code.clone(),
            message: self.message.clone(),
            peer: self.peer.clone(),
        }
    }
}

/// One page of the log, newest first.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Page {
    pub entries: Vec<Entry>,
    /// Sequence number to pass as `before` for the next (older) page; None at the end.
    pub next_before: Option<u64>,
    /// Entries the log keeps now.
    pub retained: u64,
}

/// Why the audit log failed.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit log {}: {message}", path.display())]
    Open { path: PathBuf, message: String },
    #[error("audit log {}: {message}", path.display())]
    Io { path: PathBuf, message: String },
}

/// Milliseconds since the Unix epoch now.
pub fn now_unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

fn builder() -> Builder {
    let mut b = Builder::new();
    b.set_concurrency_mode(ConcurrencyMode::SingleWriter);
    b
}

/// The server's writable audit log.
pub struct AuditLog {
    db: Database,
    path: PathBuf,
    retention: Retention,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog").field("path", &self.path).field("retention", &self.retention).finish()
    }
}

impl AuditLog {
    /// Opens (or creates) the log and applies the retention rule once.
    pub fn open(config: &AuditConfig) -> Result<AuditLog, AuditError> {
        let path = config.path.clone();
        let open_err = |message: String| AuditError::Open { path: path.clone(), message };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| open_err(format!("creating {}: {e}", dir.display())))?;
        }
        let db = builder().create(&path).map_err(|e| open_err(e.to_string()))?;
        let log = AuditLog { db, path: path.clone(), retention: config.retention };
        log.write(|entries, _| prune(entries, now_unix_ms(), &log.retention, usize::MAX))?;
        Ok(log)
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn io(&self, e: impl std::fmt::Display) -> AuditError {
        AuditError::Io { path: self.path.clone(), message: e.to_string() }
    }

    /// Runs `f` in one durable write transaction.
    fn write<T>(
        &self,
        f: impl FnOnce(&mut redb::Table<u64, &[u8]>, &mut redb::Table<&str, u64>) -> Result<T, redb::Error>,
    ) -> Result<T, AuditError> {
        let mut txn = self.db.begin_write().map_err(|e| self.io(e))?;
        txn.set_durability(Durability::Immediate).map_err(|e| self.io(e))?;
        let value = {
            let mut entries = txn.open_table(ENTRIES).map_err(|e| self.io(e))?;
            let mut meta = txn.open_table(META).map_err(|e| self.io(e))?;
            f(&mut entries, &mut meta).map_err(|e| self.io(e))?
        };
        txn.commit().map_err(|e| self.io(e))?;
        Ok(value)
    }

    /// Appends `entry` (its `seq` is assigned) and applies the retention rule; the entry
    /// is on disk when this returns. Blocking: call it off the async workers.
    pub fn append(&self, entry: &Entry) -> Result<u64, AuditError> {
        let body = serde_json::to_vec(entry).map_err(|e| self.io(e))?;
        let now = entry.wall_time_unix_ms.max(now_unix_ms());
        self.write(|entries, meta| {
            let seq = meta.get(NEXT_SEQ)?.map_or(1, |v| v.value());
            entries.insert(seq, body.as_slice())?;
            meta.insert(NEXT_SEQ, seq + 1)?;
            prune(entries, now, &self.retention, PRUNE_BATCH)?;
            Ok(seq)
        })
    }

    /// A page of entries older than `before` (all when None), newest first.
    pub fn page(&self, before: Option<u64>, limit: usize) -> Result<Page, AuditError> {
        page(&self.db, before, limit).map_err(|e| self.io(e))
    }
}

/// Removes entries beyond the retention rule, oldest first, at most `budget` of them.
fn prune(
    entries: &mut redb::Table<u64, &[u8]>,
    now_ms: u64,
    retention: &Retention,
    budget: usize,
) -> Result<(), redb::Error> {
    let mut removed = 0;
    while removed < budget && entries.len()? > retention.max_entries {
        entries.pop_first()?;
        removed += 1;
    }
    let cutoff = now_ms.saturating_sub(retention.max_age.as_millis() as u64);
    while removed < budget {
        let expired = match entries.first()? {
            Some((_, value)) => decode(0, value.value()).is_none_or(|e| e.wall_time_unix_ms < cutoff),
            None => false,
        };
        if !expired {
            break;
        }
        entries.pop_first()?;
        removed += 1;
    }
    Ok(())
}

fn decode(seq: u64, body: &[u8]) -> Option<Entry> {
    serde_json::from_slice::<Entry>(body).ok().map(|e| Entry { seq, ..e })
}

fn page(db: &impl ReadableDatabase, before: Option<u64>, limit: usize) -> Result<Page, redb::Error> {
    let txn = db.begin_read()?;
    let table = match txn.open_table(ENTRIES) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Page::default()),
        Err(e) => return Err(e.into()),
    };
    let retained = table.len()?;
    let range = match before {
        Some(b) => table.range(..b)?,
        None => table.range(0..)?,
    };
    let mut entries = Vec::new();
    let mut more = false;
    for item in range.rev() {
        let (key, value) = item?;
        if entries.len() == limit {
            more = true;
            break;
        }
        let seq = key.value();
        entries.push(decode(seq, value.value()).unwrap_or_else(|| Entry {
            seq,
            wall_time_unix_ms: 0,
            sim_time_us: 0,
            subject: "-".into(),
            role: None,
            method: "-".into(),
            request: "<unreadable entry>".into(),
            code: "-".into(),
            message: String::new(),
            peer: String::new(),
        }));
    }
    let next_before = if more { entries.last().map(|e| e.seq) } else { None };
    Ok(Page { entries, next_before, retained })
}

/// Checks a ListAudit request: `(before, page size)`.
pub fn page_request(req: &v1::ListAuditRequest) -> Result<(Option<u64>, usize), tonic::Status> {
    let limit = match req.page_size as usize {
        0 => DEFAULT_PAGE,
        n @ 1..=MAX_PAGE => n,
        n => {
            return Err(tonic::Status::invalid_argument(format!(
                "page_size must be 1..{MAX_PAGE} (or 0 for {DEFAULT_PAGE}), got {n}"
            )));
        }
    };
    let before = match req.page_token.as_str() {
        "" => None,
        token => Some(token.parse::<u64>().map_err(|_| {
            tonic::Status::invalid_argument("page_token must be empty or a next_page_token from ListAudit")
        })?),
    };
    Ok((before, limit))
}

/// The wire form of a page.
pub fn page_response(page: &Page) -> v1::ListAuditResponse {
    v1::ListAuditResponse {
        entries: page.entries.iter().map(Entry::to_proto).collect(),
        next_page_token: page.next_before.map_or_else(String::new, |b| b.to_string()),
        retained: page.retained,
    }
}

/// Reads a page of a log file without writing to it, also while a server appends to it
/// (`twin audit --data DIR`).
pub fn read_page(path: &Path, before: Option<u64>, limit: usize) -> Result<Page, AuditError> {
    let io = |e: &dyn std::fmt::Display| AuditError::Io { path: path.to_owned(), message: e.to_string() };
    if !path.exists() {
        return Err(AuditError::Open { path: path.to_owned(), message: "no such file".into() });
    }
    let db: ReadOnlyDatabase = builder().open_read_only(path).map_err(|e| io(&e))?;
    page(&db, before, limit).map_err(|e| io(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(i: u64, wall_ms: u64) -> Entry {
        Entry {
            seq: 0,
            wall_time_unix_ms: wall_ms,
            sim_time_us: i * 1_000_000,
            subject: format!("user{i}"),
            role: Some(Role::Operator),
            method: "BreakDown".into(),
            request: format!("BreakDownRequest {{ station_id: \"s{i}\" }}"),
            code: "OK".into(),
            message: String::new(),
            peer: "127.0.0.1:1".into(),
        }
    }

    #[test]
    fn appends_page_newest_first_and_survive_reopening() {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = AuditConfig { path: dir.path().join("sub/audit.redb"), retention: Retention::default() };
        let now = now_unix_ms();
        {
            let log = AuditLog::open(&config).expect("open");
            for i in 1..=7 {
                assert_eq!(log.append(&entry(i, now)).expect("append"), i);
            }
            let first = log.page(None, 3).expect("page");
            assert_eq!(first.entries.iter().map(|e| e.seq).collect::<Vec<_>>(), [7, 6, 5]);
            assert_eq!(first.entries[0].subject, "user7");
            assert_eq!(first.retained, 7);
            let second = log.page(first.next_before, 3).expect("page");
            assert_eq!(second.entries.iter().map(|e| e.seq).collect::<Vec<_>>(), [4, 3, 2]);
            let last = log.page(second.next_before, 3).expect("page");
            assert_eq!(last.entries.iter().map(|e| e.seq).collect::<Vec<_>>(), [1]);
            assert_eq!(last.next_before, None);
            // Another process (here: another handle) reads while the writer is open.
            let read = read_page(&config.path, None, 2).expect("read while open");
            assert_eq!(read.entries.iter().map(|e| e.seq).collect::<Vec<_>>(), [7, 6]);
        }
        let log = AuditLog::open(&config).expect("reopen");
        assert_eq!(log.append(&entry(8, now)).expect("append"), 8);
        let read = read_page(&config.path, None, 100).expect("read");
        assert_eq!(read.entries.len(), 8);
        assert_eq!(read.entries[7], Entry { seq: 1, ..entry(1, now) });
    }

    #[test]
    fn retention_keeps_the_newest_entries_and_drops_old_ones() {
        let dir = tempfile::tempdir().expect("temp dir");
        let retention = Retention { max_entries: 5, max_age: Duration::from_secs(3600) };
        let config = AuditConfig { path: dir.path().join("audit.redb"), retention };
        let log = AuditLog::open(&config).expect("open");
        let now = now_unix_ms();
        for i in 1..=12 {
            log.append(&entry(i, now)).expect("append");
        }
        let page = log.page(None, 100).expect("page");
        assert_eq!(page.retained, 5);
        assert_eq!(page.entries.iter().map(|e| e.seq).collect::<Vec<_>>(), [12, 11, 10, 9, 8]);
        drop(log);

        // Entries older than the age limit go, and sequence numbers are never reused.
        let dir = tempfile::tempdir().expect("temp dir");
        let config = AuditConfig { path: dir.path().join("audit.redb"), retention };
        let log = AuditLog::open(&config).expect("open");
        let two_hours_ago = now - 2 * 3600 * 1000;
        for i in 1..=3 {
            log.append(&entry(i, two_hours_ago)).expect("append");
        }
        assert_eq!(log.append(&entry(4, now)).expect("append"), 4);
        let page = log.page(None, 100).expect("page");
        assert_eq!(page.entries.iter().map(|e| e.seq).collect::<Vec<_>>(), [4]);
    }

    #[test]
    fn missing_files_are_clear_errors() {
        let err = read_page(Path::new("/nonexistent/audit.redb"), None, 10).expect_err("missing");
        assert!(err.to_string().contains("/nonexistent/audit.redb"), "{err}");
    }
}
