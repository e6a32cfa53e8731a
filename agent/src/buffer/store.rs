//! The SQLite store behind the buffer: synchronous, owned by one thread.
//!
//! # Invariants
//! - A reading is in `readings` from the commit that acknowledged it until the bridge has
//!   acknowledged it ([`Store::remove`]) or it is moved to `quarantine`; nothing else deletes.
//! - `seq` only grows while the buffer holds readings, so reading in `seq` order is arrival
//!   order, and one sensor's readings stay in order.
//! - A buffer that holds no readings when it is opened (new, drained, or a damaged one set aside)
//!   starts `seq` at a random point of a range of 3·10^18 ([`fresh_seq`]). Readings the agent numbers
//!   itself (`a:{agent}:{seq}`) therefore never get the id of a reading forwarded before: the
//!   hub's `ON CONFLICT DO NOTHING` would take it for a duplicate and drop it.
//! - For the same reason a buffer with [`Durability::Normal`] goes on numbering far past its last
//!   stored reading ([`after_a_possible_loss`]): a power cut may have taken back commits whose
//!   readings were already forwarded under the next numbers.
//! - The byte cap is checked before a request is written: a full buffer refuses new readings,
//!   it never evicts old ones.
//! - The `rejected` table (payloads that failed validation, kept for an operator) has a cap of
//!   its own and is a ring: past it the oldest rejected payloads go, counted. It never takes
//!   room from readings, and a client streaming invalid publishes cannot fill the disk.

use std::path::PathBuf;

use emberline_core::{AgentId, Protocol, ReadingId};
use rusqlite::{Connection, OpenFlags, OptionalExtension as _, params};

use super::checkpoint::{Checkpointer, passive_checkpoint};
use super::numbering::{after_a_possible_loss, fresh_seq};
use super::record::{Incoming, Prepared, Stored};
use super::schema::{is_damage, open_checked, quick_check, set_aside};
use time::OffsetDateTime;

mod inspect;

/// How hard each commit insists on reaching the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Durability {
    /// fsync on every commit: an acknowledged reading survives power loss (the default).
    Full,
    /// fsync at WAL checkpoints only (every 50 ms or so): survives a crash of the agent; a power
    /// cut can take back the last commits, acknowledged and even forwarded ones. Less flash wear.
    Normal,
}

impl Durability {
    /// The value of SQLite's `synchronous` pragma.
    pub(super) fn pragma(self) -> &'static str {
        match self {
            Self::Full => "FULL",
            Self::Normal => "NORMAL",
        }
    }
}

#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub path: PathBuf,
    pub agent_id: AgentId,
    /// Most bytes of stored records held; past it, appends are refused.
    pub max_bytes: u64,
    pub durability: Durability,
    /// Most bytes the `rejected` table keeps (payload, origin and reason of each row); past it
    /// the oldest rows are dropped. The newest row is kept even when it alone is larger.
    pub max_rejected_bytes: u64,
}

/// What `--rejected-max-bytes` defaults to: 16 MiB, about 250 of the largest MQTT packets the
/// listener takes by default, or tens of thousands of ordinary invalid readings.
pub const DEFAULT_MAX_REJECTED_BYTES: u64 = 16 << 20;

/// What a row of `rejected` counts against its cap, in SQL: text lengths in bytes, not characters.
const REJECTED_ROW_BYTES: &str =
    "length(CAST(payload AS BLOB)) + length(CAST(origin AS BLOB)) + length(CAST(reason AS BLOB))";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("buffer database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("cannot start the buffer thread: {0}")]
    Thread(std::io::Error),
    #[error("cannot write the export: {0}")]
    Export(std::io::Error),
    #[error("cannot set aside the damaged buffer {path}: {source}")]
    Quarantine {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl StoreError {
    /// The disk (or the file system the buffer is on) has no room left: as good as a full
    /// buffer for a device, which should come back later.
    pub fn is_disk_full(&self) -> bool {
        matches!(
            self,
            Self::Sqlite(rusqlite::Error::SqliteFailure(error, _))
                if error.code == rusqlite::ErrorCode::DiskFull
        )
    }
}

/// What a device is told: the id its reading travels under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub reading_id: ReadingId,
}

/// The buffer was full: the request's readings were not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Stats {
    pub depth: u64,
    pub bytes: u64,
    pub oldest_received_at: Option<OffsetDateTime>,
    pub quarantined: u64,
    pub rejected: u64,
}

#[derive(Debug)]
pub struct Store {
    /// Checkpoints on a thread of their own once [`Store::checkpoint_in_background`] is called;
    /// SQLite's automatic ones (inside a commit) before.
    checkpointer: Option<Checkpointer>,
    conn: Connection,
    config: StoreConfig,
    next_seq: u64,
    depth: u64,
    bytes: u64,
    /// Bytes of `rejected` rows, as [`REJECTED_ROW_BYTES`] counts them.
    rejected_bytes: u64,
    /// Rows of `quarantine`: acknowledged readings set aside, waiting on an operator.
    quarantined: u64,
}

impl Store {
    /// Opens (or creates) the buffer. A file that fails SQLite's integrity check (or is not a
    /// database) is renamed to `<file>.corrupt-<unix time>` and a fresh buffer started, so a
    /// damaged disk does not crash-loop the agent; the damaged file stays for an operator to
    /// inspect. Any other failure (a full disk during a schema migration, say) stops the start
    /// with the buffer as it was: its acknowledged readings are never set aside for it.
    pub fn open(config: StoreConfig) -> Result<Self, StoreError> {
        let conn = match open_checked(&config) {
            Ok(conn) => conn,
            Err(error) if is_damage(&error) => {
                tracing::error!(path = %config.path.display(), %error, "buffer failed its integrity check; setting it aside and starting a fresh one");
                set_aside(&config.path)?;
                open_checked(&config)?
            }
            Err(error) => return Err(error.into()),
        };
        Self::with_connection(conn, config)
    }

    /// Opens an existing buffer to look at it (`emberline-agent buffer stats|export`): nothing
    /// is created, made again or set aside, and a damaged file is an error, not a fresh buffer.
    pub fn inspect(config: StoreConfig) -> Result<Self, StoreError> {
        let conn = Connection::open_with_flags(&config.path, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
        quick_check(&conn)?;
        Self::with_connection(conn, config)
    }

    fn with_connection(conn: Connection, config: StoreConfig) -> Result<Self, StoreError> {
        let (depth, bytes): (u64, u64) = conn.query_row(
            "SELECT COUNT(*), COALESCE(SUM(length(envelope)), 0) FROM readings",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )?;
        // The highest `seq` given while the buffer holds readings: the last one, one set aside
        // after it (the newest reading can be quarantined while older ones wait), or what an
        // earlier agent's AUTOINCREMENT had reached when its table was migrated (`schema.rs`).
        // An empty buffer numbers from a fresh random point, far above all of them.
        let last: Option<u64> = conn
            .query_row(
                "SELECT MAX(seq, COALESCE((SELECT MAX(floor) FROM numbering), 0),
                                 COALESCE((SELECT MAX(seq) FROM quarantine), 0))
             FROM (SELECT MAX(seq) AS seq FROM readings) WHERE seq IS NOT NULL",
                [],
                |row| row.get(0),
            )
            .optional()?;
        let (rejected_bytes, quarantined): (u64, u64) = conn.query_row(
            &format!(
                "SELECT (SELECT COALESCE(SUM({REJECTED_ROW_BYTES}), 0) FROM rejected),
                        (SELECT COUNT(*) FROM quarantine)"
            ),
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )?;
        Ok(Self {
            checkpointer: None,
            conn,
            next_seq: match (last, config.durability) {
                (None, _) => fresh_seq(),
                (Some(last), Durability::Full) => last + 1,
                (Some(last), Durability::Normal) => after_a_possible_loss(last),
            },
            config,
            depth,
            bytes,
            rejected_bytes,
            quarantined,
        })
    }

    /// Moves WAL checkpoints out of the commits onto a thread of their own (see
    /// [`checkpoint`](super::checkpoint)); for the long-running buffer, not one-off inspection.
    pub fn checkpoint_in_background(&mut self) -> Result<(), StoreError> {
        self.checkpointer = Some(Checkpointer::start(
            &self.config.path,
            self.config.durability,
        )?);
        self.conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        // A WAL file grown under a burst is cut back to this size once rewound.
        self.conn
            .pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
        Ok(())
    }

    /// Checkpoints on the writer's connection when the background thread has fallen behind (the
    /// WAL passed its limit). The buffer thread calls it after a commit's replies are sent, so
    /// nobody waits on it.
    pub fn checkpoint_if_behind(&self) {
        if self
            .checkpointer
            .as_ref()
            .is_some_and(Checkpointer::wal_too_long)
            && let Err(error) = passive_checkpoint(&self.conn)
        {
            tracing::warn!(%error, "buffer checkpoint failed; retrying after the next commit");
        }
    }

    /// [`Store::append_prepared`] for readings not yet prepared.
    pub fn append(
        &mut self,
        requests: &[Vec<Incoming>],
    ) -> Result<Vec<Result<Vec<Accepted>, Full>>, StoreError> {
        let agent = self.config.agent_id.clone();
        let prepared: Vec<Vec<Prepared>> = requests
            .iter()
            .map(|request| {
                request
                    .iter()
                    .map(|item| Prepared::new(item, &agent))
                    .collect()
            })
            .collect();
        self.append_prepared(&prepared)
    }

    /// Writes a group of requests in one transaction. Each request is stored whole or, when it
    /// would pass the byte cap, refused whole. A reading whose id is already buffered (a device
    /// retrying with the same `seq`) is acknowledged again without a second copy.
    pub fn append_prepared(
        &mut self,
        requests: &[Vec<Prepared>],
    ) -> Result<Vec<Result<Vec<Accepted>, Full>>, StoreError> {
        let tx = self.conn.transaction()?;
        let mut answers = Vec::with_capacity(requests.len());
        let (mut depth, mut bytes, mut next_seq) = (self.depth, self.bytes, self.next_seq);
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO readings (seq, reading_id, received_at_ns, envelope) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (reading_id) WHERE reading_id GLOB 'd:*' DO NOTHING",
            )?;
            for request in requests {
                let size: u64 = request.iter().map(|item| item.record.len() as u64).sum();
                if bytes + size > self.config.max_bytes {
                    answers.push(Err(Full));
                    continue;
                }
                let mut accepted = Vec::with_capacity(request.len());
                for (offset, item) in request.iter().enumerate() {
                    let seq = next_seq + offset as u64;
                    let stored_id = item.device_id.as_ref().map_or("", ReadingId::as_str);
                    if insert.execute(params![seq, stored_id, item.received_at_ns, item.record])?
                        == 1
                    {
                        depth += 1;
                        bytes += item.record.len() as u64;
                    }
                    let reading_id = item
                        .device_id
                        .clone()
                        .unwrap_or_else(|| ReadingId::from_buffer(&self.config.agent_id, seq));
                    accepted.push(Accepted { reading_id });
                }
                next_seq += request.len() as u64;
                answers.push(Ok(accepted));
            }
        }
        tx.commit()?;
        (self.depth, self.bytes, self.next_seq) = (depth, bytes, next_seq);
        Ok(answers)
    }

    /// The oldest readings, in arrival order, up to `max_count` and about `max_bytes` of stored
    /// records (at least one reading when any is buffered). A record is smaller than its
    /// envelope, so the forwarder cuts the batch to its byte limit once the envelopes are made.
    pub fn peek(&self, max_count: usize, max_bytes: usize) -> Result<Vec<Stored>, StoreError> {
        self.peek_after(0, max_count, max_bytes)
    }

    /// Like [`Store::peek`], for readings after `seq` only: the forwarder reads the next batch
    /// while the one before it is still with the bridge.
    pub fn peek_after(
        &self,
        seq: u64,
        max_count: usize,
        max_bytes: usize,
    ) -> Result<Vec<Stored>, StoreError> {
        let mut statement = self.conn.prepare_cached(
            "SELECT seq, received_at_ns, envelope FROM readings WHERE seq > ?1 ORDER BY seq LIMIT ?2",
        )?;
        let mut rows = statement.query(params![seq, max_count as i64])?;
        let (mut out, mut total) = (Vec::new(), 0usize);
        while let Some(row) = rows.next()? {
            let stored = stored(row)?;
            total += stored.record().len();
            if total > max_bytes && !out.is_empty() {
                break;
            }
            out.push(stored);
        }
        Ok(out)
    }

    /// Deletes readings the bridge has acknowledged.
    pub fn remove(&mut self, seqs: &[u64]) -> Result<(), StoreError> {
        let seqs: Vec<_> = seqs.iter().map(|&seq| (seq, None)).collect();
        self.remove_with(&seqs, None)
    }

    /// Moves readings the bridge refused as malformed out of the way, with the reason, in the
    /// same transaction that removes them from the queue. Each is kept as the bytes given with
    /// it: its envelope, so that an operator reads JSON (or the record, if none can be made).
    pub fn quarantine(
        &mut self,
        readings: &[(u64, Vec<u8>)],
        reason: &str,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let nanos = i64::try_from(now.unix_timestamp_nanos()).unwrap_or(i64::MAX);
        let readings: Vec<_> = readings
            .iter()
            .map(|(seq, kept)| (*seq, Some(kept.as_slice())))
            .collect();
        self.remove_with(&readings, Some((reason, nanos)))
    }

    /// Deletes readings from the queue, first copying the bytes given with each to `quarantine`
    /// when a reason is given.
    fn remove_with(
        &mut self,
        readings: &[(u64, Option<&[u8]>)],
        quarantine: Option<(&str, i64)>,
    ) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        let (mut depth, mut bytes, mut quarantined) = (self.depth, self.bytes, self.quarantined);
        {
            let mut delete = tx
                .prepare_cached("DELETE FROM readings WHERE seq = ?1 RETURNING length(envelope)")?;
            let mut keep = tx.prepare_cached(
                "INSERT OR REPLACE INTO quarantine (seq, reading_id, envelope, reason, quarantined_at_ns)
                 SELECT seq, reading_id, ?4, ?2, ?3 FROM readings WHERE seq = ?1",
            )?;
            for (seq, kept) in readings {
                if let (Some((reason, nanos)), Some(kept)) = (quarantine, kept) {
                    keep.execute(params![seq, reason, nanos, kept])?;
                }
                if let Some(size) = delete
                    .query_row([seq], |row| row.get::<_, u64>(0))
                    .optional()?
                {
                    depth -= 1;
                    bytes -= size;
                }
            }
        }
        if quarantine.is_some() {
            // Counted, not added up: rare, and exact whatever the insert did.
            quarantined = tx.query_row("SELECT COUNT(*) FROM quarantine", [], |row| row.get(0))?;
        }
        tx.commit()?;
        (self.depth, self.bytes, self.quarantined) = (depth, bytes, quarantined);
        Ok(())
    }

    /// Keeps a payload that failed validation (MQTT has no negative acknowledgement in 3.1.1).
    /// When the table would pass its cap, the oldest rows go first, in the same transaction;
    /// returns how many went.
    pub fn reject(
        &mut self,
        protocol: Protocol,
        origin: &str,
        payload: &[u8],
        reason: &str,
        now: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        let nanos = i64::try_from(now.unix_timestamp_nanos()).unwrap_or(i64::MAX);
        let protocol = match protocol {
            Protocol::Http => "http",
            Protocol::Mqtt => "mqtt",
        };
        let size = (payload.len() + origin.len() + reason.len()) as u64;
        let tx = self.conn.transaction()?;
        let (mut kept, mut evicted) = (self.rejected_bytes, 0);
        {
            let mut oldest = tx.prepare_cached(&format!(
                "DELETE FROM rejected WHERE id = (SELECT MIN(id) FROM rejected) RETURNING {REJECTED_ROW_BYTES}"
            ))?;
            while kept > 0 && kept + size > self.config.max_rejected_bytes {
                match oldest
                    .query_row([], |row| row.get::<_, u64>(0))
                    .optional()?
                {
                    Some(gone) => {
                        kept = kept.saturating_sub(gone);
                        evicted += 1;
                    }
                    None => kept = 0,
                }
            }
        }
        tx.execute(
            "INSERT INTO rejected (received_at_ns, protocol, origin, payload, reason) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![nanos, protocol, origin, payload, reason],
        )?;
        tx.commit()?;
        self.rejected_bytes = kept + size;
        Ok(evicted)
    }

    /// Readings the `quarantine` table holds.
    pub fn quarantined_count(&self) -> u64 {
        self.quarantined
    }

    /// Bytes the `rejected` table holds, as its cap counts them.
    pub fn rejected_bytes(&self) -> u64 {
        self.rejected_bytes
    }

    pub fn depth(&self) -> u64 {
        self.depth
    }

    /// The `seq` the next reading will get.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

/// A row of `SELECT seq, received_at_ns, envelope`.
fn stored(row: &rusqlite::Row<'_>) -> Result<Stored, rusqlite::Error> {
    Ok(Stored::new(row.get(0)?, row.get(1)?, row.get(2)?))
}
