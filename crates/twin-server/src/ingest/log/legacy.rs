//! Logs written by earlier versions, one redb file (`DIR/telemetry.redb`): read once at
//! start and imported into the segment folder ([`super::TelemetryLog::open`]).

use std::path::Path;

use redb::{Builder, ConcurrencyMode, ReadableDatabase, ReadableTable, TableDefinition};

use super::{Contents, Decision, RawRecord};

/// The file name earlier versions used, in the data folder.
pub const FILE_NAME: &str = "telemetry.redb";

const RAW: TableDefinition<u64, &[u8]> = TableDefinition::new("telemetry_raw");
const DECISIONS: TableDefinition<u64, &[u8]> = TableDefinition::new("telemetry_decisions");
const META: TableDefinition<&str, u64> = TableDefinition::new("telemetry_meta");
const PROCESSED_THROUGH: &str = "processed_through";
const GRPC_PREFIX: &str = "grpc/";
const DECISIONS_PRUNED_BELOW: &str = "pruned_decisions_below";

/// Reads a redb telemetry log (running redb's repair if its writer was killed).
pub fn read_file(path: &Path) -> Result<Contents, redb::Error> {
    let mut b = Builder::new();
    b.set_concurrency_mode(ConcurrencyMode::SingleWriter);
    let db = b.create(path)?;
    read(&db)
}

fn read(db: &impl ReadableDatabase) -> Result<Contents, redb::Error> {
    let txn = db.begin_read()?;
    let mut contents = Contents { next_raw: 1, first_decision: 1, next_decision: 1, ..Contents::default() };
    match txn.open_table(RAW) {
        Ok(table) => {
            for item in table.iter()? {
                let (k, v) = item?;
                contents.next_raw = k.value() + 1;
                match postcard::from_bytes::<RawRecord>(v.value()) {
                    Ok(record) => contents.raw.push((k.value(), record)),
                    Err(_) => contents.unreadable += 1,
                }
            }
        }
        Err(redb::TableError::TableDoesNotExist(_)) => {
            contents.first_decision = 1;
            contents.next_decision = 1;
            return Ok(contents);
        }
        Err(e) => return Err(e.into()),
    }
    contents.first_decision = 1;
    contents.next_decision = 1;
    match txn.open_table(DECISIONS) {
        Ok(table) => {
            for (i, item) in table.iter()?.enumerate() {
                let (k, v) = item?;
                if i == 0 {
                    contents.first_decision = k.value();
                }
                contents.next_decision = k.value() + 1;
                match postcard::from_bytes::<Decision>(v.value()) {
                    Ok(d) => {
                        contents.decisions.push(d);
                        contents.decision_keys.push(k.value());
                    }
                    Err(_) => contents.unreadable += 1,
                }
            }
        }
        Err(redb::TableError::TableDoesNotExist(_)) => {}
        Err(e) => return Err(e.into()),
    }
    match txn.open_table(META) {
        Ok(table) => {
            contents.processed_through = table.get(PROCESSED_THROUGH)?.map_or(0, |v| v.value());
            let pruned_below = table.get(DECISIONS_PRUNED_BELOW)?.map_or(0, |v| v.value());
            contents.next_decision = contents.next_decision.max(pruned_below);
            if contents.decisions.is_empty() {
                contents.first_decision = contents.next_decision;
            }
            for item in table.range(GRPC_PREFIX..)? {
                let (k, v) = item?;
                match k.value().strip_prefix(GRPC_PREFIX) {
                    Some(source) => contents.grpc_committed.insert(source.to_owned(), v.value()),
                    None => break,
                };
            }
        }
        Err(redb::TableError::TableDoesNotExist(_)) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(contents)
}
