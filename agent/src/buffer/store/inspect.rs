//! What `/readyz`, the heartbeat and the operator's `buffer stats|export` read of a store.

use rusqlite::OptionalExtension as _;
use time::OffsetDateTime;

use super::{Stats, Store, StoreError, stored};
use crate::buffer::Stored;

impl Store {
    pub fn stats(&self) -> Result<Stats, StoreError> {
        let oldest_ns: Option<i64> = self
            .conn
            .query_row(
                "SELECT received_at_ns FROM readings ORDER BY seq LIMIT 1",
                [],
                |row| row.get(0),
            )
            .optional()?;
        let rejected = self
            .conn
            .query_row("SELECT COUNT(*) FROM rejected", [], |row| row.get(0))?;
        Ok(Stats {
            depth: self.depth,
            bytes: self.bytes,
            oldest_received_at: oldest_ns
                .and_then(|ns| OffsetDateTime::from_unix_timestamp_nanos(i128::from(ns)).ok()),
            quarantined: self.quarantined,
            rejected,
        })
    }

    /// Every quarantined reading in order: its seq, the bytes kept and the reason.
    pub fn quarantined(&self) -> Result<Vec<(u64, Vec<u8>, String)>, StoreError> {
        let mut statement = self
            .conn
            .prepare("SELECT seq, envelope, reason FROM quarantine ORDER BY seq")?;
        let rows = statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Every buffered reading in order, for `emberline-agent buffer export`.
    pub fn export(
        &self,
        mut sink: impl FnMut(&Stored) -> std::io::Result<()>,
    ) -> Result<u64, StoreError> {
        let mut statement = self
            .conn
            .prepare("SELECT seq, received_at_ns, envelope FROM readings ORDER BY seq")?;
        let mut rows = statement.query([])?;
        let mut n = 0;
        while let Some(row) = rows.next()? {
            sink(&stored(row)?).map_err(StoreError::Export)?;
            n += 1;
        }
        Ok(n)
    }
}
