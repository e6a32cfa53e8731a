//! The buffer's file: its schema, how it is opened and checked, and how a damaged one is set
//! aside so that the agent starts on a fresh buffer instead of crash-looping.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension as _};
use time::OffsetDateTime;

use super::store::{StoreConfig, StoreError};

const SCHEMA: &str = "
-- `envelope` holds the reading's record (see `record.rs`): compact, or a JSON envelope from an
-- agent before the compact form. `reading_id` is the device's id, or empty when the id is made
-- from `seq` (older agents wrote those out too).
CREATE TABLE IF NOT EXISTS readings (
    seq INTEGER PRIMARY KEY,
    reading_id TEXT NOT NULL,
    received_at_ns INTEGER NOT NULL,
    envelope BLOB NOT NULL
);
-- A device that numbers its readings (`d:` ids) may send one again; it is stored once. Ids the
-- agent makes from `seq` are unique already and stay out of the index (a B-tree insert per row).
CREATE UNIQUE INDEX IF NOT EXISTS readings_device_ids ON readings (reading_id)
    WHERE reading_id GLOB 'd:*';
CREATE TABLE IF NOT EXISTS quarantine (
    seq INTEGER PRIMARY KEY,
    reading_id TEXT NOT NULL,
    envelope BLOB NOT NULL,
    reason TEXT NOT NULL,
    quarantined_at_ns INTEGER NOT NULL
);
-- The highest `seq` an earlier agent's AUTOINCREMENT had given when its table was migrated:
-- numbering goes on above it even if its newest readings were already forwarded and deleted.
CREATE TABLE IF NOT EXISTS numbering (floor INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS rejected (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at_ns INTEGER NOT NULL,
    protocol TEXT NOT NULL,
    origin TEXT NOT NULL,
    payload BLOB NOT NULL,
    reason TEXT NOT NULL
);
";

/// Opens the buffer in WAL mode with the configured durability, checks it, and brings one made
/// by an earlier agent to today's schema.
pub(super) fn open_checked(config: &StoreConfig) -> Result<Connection, rusqlite::Error> {
    let conn = Connection::open(&config.path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", config.durability.pragma())?;
    quick_check(&conn)?;
    migrate_autoincrement_table(&conn)?;
    conn.execute_batch(SCHEMA)?;
    Ok(conn)
}

/// SQLite's `quick_check`; a damaged file is `SQLITE_CORRUPT` with what the check found.
pub(super) fn quick_check(conn: &Connection) -> Result<(), rusqlite::Error> {
    let check: String = conn.query_row("PRAGMA quick_check", [], |row| row.get(0))?;
    if check != "ok" {
        return Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT),
            Some(check),
        ));
    }
    Ok(())
}

/// Buffers made by earlier agents number readings with AUTOINCREMENT and index every id as
/// unique, which today's agent cannot write into: the readings it numbers itself are stored with
/// an empty id. Such a table is made again in today's shape at the start, its readings copied over
/// with their `seq`, in one transaction (a crash halfway leaves the old table as it was).
fn migrate_autoincrement_table(conn: &Connection) -> Result<(), rusqlite::Error> {
    let sql: Option<String> = conn
        .query_row(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'readings'",
            [],
            |row| row.get(0),
        )
        .optional()?;
    if sql.is_some_and(|sql| sql.contains("AUTOINCREMENT")) {
        let moved: u64 = conn.query_row("SELECT COUNT(*) FROM readings", [], |row| row.get(0))?;
        conn.execute_batch(
            "BEGIN IMMEDIATE;
             CREATE TABLE IF NOT EXISTS numbering (floor INTEGER NOT NULL);
             INSERT INTO numbering (floor)
                 SELECT seq FROM sqlite_sequence WHERE name = 'readings';
             CREATE TABLE readings_today (
                 seq INTEGER PRIMARY KEY,
                 reading_id TEXT NOT NULL,
                 received_at_ns INTEGER NOT NULL,
                 envelope BLOB NOT NULL
             );
             INSERT INTO readings_today (seq, reading_id, received_at_ns, envelope)
                 SELECT seq, reading_id, received_at_ns, envelope FROM readings ORDER BY seq;
             DROP TABLE readings;
             ALTER TABLE readings_today RENAME TO readings;
             COMMIT;",
        )?;
        tracing::info!(
            readings = moved,
            "buffer made by an earlier agent brought to today's schema"
        );
    }
    Ok(())
}

/// A file that is damaged or not a database at all: set aside, not fatal.
pub(super) fn is_damage(error: &rusqlite::Error) -> bool {
    matches!(
        error.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase)
    )
}

/// Renames a damaged buffer and its WAL files out of the way.
pub(super) fn set_aside(path: &Path) -> Result<(), StoreError> {
    let stamp = OffsetDateTime::now_utc().unix_timestamp();
    for suffix in ["", "-wal", "-shm"] {
        let from = PathBuf::from(format!("{}{suffix}", path.display()));
        if from.exists() {
            let to = PathBuf::from(format!("{}.corrupt-{stamp}{suffix}", path.display()));
            std::fs::rename(&from, &to)
                .map_err(|source| StoreError::Quarantine { path: from, source })?;
        }
    }
    Ok(())
}
