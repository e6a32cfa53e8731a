//! WAL checkpoints off the commit path.
//!
//! SQLite's automatic checkpoint runs inside the commit that crosses its threshold: that commit
//! copies the WAL into the database file and syncs it before the devices waiting on it hear
//! "yes", which is most of the buffer's p99. Here a thread of its own, on its own connection,
//! runs passive checkpoints (they never block the writer) every [`INTERVAL`], and reports how
//! long the WAL has grown. A passive checkpoint racing a busy writer may never catch up to the
//! WAL's end, and only a fully checkpointed WAL is rewound, so the writer checkpoints by itself
//! — cheaply, most frames are already copied — when the WAL passes [`WAL_LIMIT_FRAMES`]
//! ([`Checkpointer::wal_too_long`]).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;

use super::{Durability, StoreError};

/// How often the background thread checkpoints. Often, so that little is left for the writer's
/// own catch-up checkpoint ([`WAL_LIMIT_FRAMES`]), which the next group waits on. Side by side at
/// 50 connections (three alternating rounds): 200 ms gave 44,226 / 54,400 / 50,111 req/s, 50 ms
/// 50,224 / 54,516 / 57,886; p99 at 34,000 req/s over 300 connections 9.2 / 11.1 ms against
/// 6.3 / 7.9 ms.
const INTERVAL: Duration = Duration::from_millis(50);

/// WAL frames (pages; 4 KiB by default) past which the writer checkpoints by itself: 16 MiB.
/// Smaller than it could be on purpose: every page lookup searches the WAL's index, one hash
/// table per 4,096 frames, so a long WAL makes every commit dearer. Side by side (`buffer_cost`
/// example, groups of 17): 16,384 frames 166–169 µs wall and 99–101 µs CPU per commit; 4,096
/// frames 145–152 µs and 88–92 µs.
pub const WAL_LIMIT_FRAMES: i64 = 4_096;

/// The background checkpoint thread; it checkpoints once more and stops when dropped.
#[derive(Debug)]
pub struct Checkpointer {
    /// Dropping it wakes the thread for its last checkpoint.
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    /// WAL length in frames at the last background checkpoint.
    wal_frames: Arc<AtomicI64>,
}

impl Checkpointer {
    pub fn start(path: &Path, durability: Durability) -> Result<Self, StoreError> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "synchronous", durability.pragma())?;
        let (stop, stopped) = mpsc::channel();
        let wal_frames = Arc::new(AtomicI64::new(0));
        let frames = Arc::clone(&wal_frames);
        let thread = std::thread::Builder::new()
            .name("emberline-checkpoint".into())
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(INTERVAL) {
                    checkpoint(&conn, &frames);
                }
                checkpoint(&conn, &frames);
            })
            .map_err(StoreError::Thread)?;
        Ok(Self {
            stop: Some(stop),
            thread: Some(thread),
            wal_frames,
        })
    }

    /// True when the WAL has grown past [`WAL_LIMIT_FRAMES`]; the flag is cleared so that the
    /// writer checkpoints once, not after every commit until the next background run.
    pub fn wal_too_long(&self) -> bool {
        self.wal_frames
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |frames| {
                (frames > WAL_LIMIT_FRAMES).then_some(0)
            })
            .is_ok()
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One passive checkpoint; a failure is logged and the next run tries again.
fn checkpoint(conn: &Connection, wal_frames: &AtomicI64) {
    match passive_checkpoint(conn) {
        Ok(frames) => wal_frames.store(frames, Ordering::Relaxed),
        Err(error) => tracing::warn!(%error, "buffer checkpoint failed; retrying"),
    }
}

/// Runs `PRAGMA wal_checkpoint(PASSIVE)` on `conn`; returns the WAL's length in frames.
pub fn passive_checkpoint(conn: &Connection) -> Result<i64, rusqlite::Error> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| row.get(1))
}
