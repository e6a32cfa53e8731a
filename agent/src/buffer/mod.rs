//! The durable buffer: SQLite on a thread of its own, fed by a channel.
//!
//! Ingest handlers call [`Buffer::append`] and answer the device only when it returns: by then
//! the readings are committed (fsync per commit with [`Durability::Full`]). Requests that arrive
//! while a commit is under way are written together in the next one (group commit), so many
//! concurrent devices share each fsync. The fsync stays inside the commit, on this thread: a
//! separate flush thread was measured slower (see
//! `docs/decisions/0005-the-fsync-stays-in-the-commit.md`).

mod checkpoint;
mod numbering;
mod record;
mod schema;
mod store;

use std::thread::JoinHandle;
use std::time::Instant;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};

use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};

pub use record::{Incoming, Prepared, Stored};
pub use store::{
    Accepted, DEFAULT_MAX_REJECTED_BYTES, Durability, Full, Stats, Store, StoreConfig, StoreError,
};

/// Most requests written in one transaction.
const MAX_GROUP: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum BufferError {
    #[error("the buffer is full")]
    Full,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("buffer commit failed: {0}")]
    CommitFailed(String),
    #[error("the buffer thread has stopped")]
    Stopped,
}

enum Command {
    Append(
        Vec<Prepared>,
        oneshot::Sender<Result<Vec<Accepted>, BufferError>>,
    ),
    /// After this seq, at most this many readings and about this many bytes.
    Peek(
        u64,
        usize,
        usize,
        oneshot::Sender<Result<Vec<Stored>, BufferError>>,
    ),
    Remove(Vec<u64>, oneshot::Sender<Result<(), BufferError>>),
    /// Each reading's seq and the bytes to keep of it.
    Quarantine(
        Vec<(u64, Vec<u8>)>,
        String,
        oneshot::Sender<Result<(), BufferError>>,
    ),
    Reject(Rejected, oneshot::Sender<Result<(), BufferError>>),
    Stats(oneshot::Sender<Result<Stats, BufferError>>),
}

/// A payload that failed validation, kept with its reason.
#[derive(Debug, Clone)]
pub struct Rejected {
    pub protocol: emberline_core::Protocol,
    pub origin: String,
    pub payload: Vec<u8>,
    pub reason: String,
}

/// The buffer's depth, size, commits and commit time, readable without a round trip to the
/// buffer thread; registered as Prometheus metrics by the agent.
#[derive(Debug, Clone)]
pub struct Gauges {
    /// Readings waiting to be forwarded.
    pub depth: Gauge,
    /// Bytes of stored records waiting (what the cap counts).
    pub bytes: Gauge,
    /// Transactions committed by ingest; fewer than requests when group commit works.
    pub commits: Counter,
    /// Seconds each of those took, its fsync included: every device waiting on the group waits
    /// this long, so a slow disk shows here first.
    pub commit_seconds: Histogram,
    /// Acknowledged readings set aside in the quarantine table: the bridge refused them or they
    /// could not be read back. Kept, not forwarded, until an operator looks (no cap: dropping
    /// them would lose readings that were acknowledged).
    pub quarantined: Gauge,
    /// Bytes the rejected table holds (what `--rejected-max-bytes` caps).
    pub rejected_bytes: Gauge,
    /// Rejected payloads dropped, oldest first, to keep the rejected table under its cap.
    pub rejected_evicted: Counter,
}

impl Default for Gauges {
    fn default() -> Self {
        Self {
            depth: Gauge::default(),
            bytes: Gauge::default(),
            commits: Counter::default(),
            // 0.1 ms to about 0.8 s.
            commit_seconds: Histogram::new(exponential_buckets(0.000_1, 2.0, 14)),
            quarantined: Gauge::default(),
            rejected_bytes: Gauge::default(),
            rejected_evicted: Counter::default(),
        }
    }
}

/// A handle to the buffer thread; cheap to clone.
#[derive(Debug, Clone)]
pub struct Buffer {
    /// Bounded, so a stalled disk pushes back on ingest instead of queueing without limit.
    commands: mpsc::Sender<Command>,
    gauges: Gauges,
    agent_id: emberline_core::AgentId,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Command")
    }
}

impl Buffer {
    /// Opens the store and starts its thread. The thread ends when every handle is dropped,
    /// after finishing the commands already sent.
    pub fn start(config: StoreConfig) -> Result<(Self, JoinHandle<()>), StoreError> {
        let agent_id = config.agent_id.clone();
        let mut store = Store::open(config)?;
        store.checkpoint_in_background()?;
        let gauges = Gauges::default();
        set_gauges(&gauges, &store);
        let (commands, receiver) = mpsc::channel(4 * MAX_GROUP);
        let thread_gauges = gauges.clone();
        let thread = std::thread::Builder::new()
            .name("emberline-buffer".into())
            .spawn(move || run(store, receiver, &thread_gauges))
            .map_err(StoreError::Thread)?;
        Ok((
            Self {
                commands,
                gauges,
                agent_id,
            },
            thread,
        ))
    }

    /// Commits readings; returns their ids once they are durable.
    pub async fn append(&self, items: Vec<Incoming>) -> Result<Vec<Accepted>, BufferError> {
        // Encode here, on the caller's task, so the single buffer thread only numbers and writes.
        let prepared = items
            .iter()
            .map(|item| Prepared::new(item, &self.agent_id))
            .collect();
        self.call(|reply| Command::Append(prepared, reply)).await
    }

    pub async fn peek(
        &self,
        max_count: usize,
        max_bytes: usize,
    ) -> Result<Vec<Stored>, BufferError> {
        self.peek_after(0, max_count, max_bytes).await
    }

    /// The oldest readings after `seq` (see [`Store::peek_after`]).
    pub async fn peek_after(
        &self,
        seq: u64,
        max_count: usize,
        max_bytes: usize,
    ) -> Result<Vec<Stored>, BufferError> {
        self.call(|reply| Command::Peek(seq, max_count, max_bytes, reply))
            .await
    }

    pub async fn remove(&self, seqs: Vec<u64>) -> Result<(), BufferError> {
        self.call(|reply| Command::Remove(seqs, reply)).await
    }

    /// Sets readings aside, each kept as the bytes given with it (see [`Store::quarantine`]).
    pub async fn quarantine(
        &self,
        readings: Vec<(u64, Vec<u8>)>,
        reason: String,
    ) -> Result<(), BufferError> {
        self.call(|reply| Command::Quarantine(readings, reason, reply))
            .await
    }

    pub async fn reject(&self, rejected: Rejected) -> Result<(), BufferError> {
        self.call(|reply| Command::Reject(rejected, reply)).await
    }

    pub async fn stats(&self) -> Result<Stats, BufferError> {
        self.call(Command::Stats).await
    }

    pub fn gauges(&self) -> &Gauges {
        &self.gauges
    }

    async fn call<T>(
        &self,
        command: impl FnOnce(oneshot::Sender<Result<T, BufferError>>) -> Command,
    ) -> Result<T, BufferError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(command(reply))
            .await
            .map_err(|_| BufferError::Stopped)?;
        answer.await.map_err(|_| BufferError::Stopped)?
    }
}

/// The buffer thread: take one command; if it is an append, take every append already waiting
/// (up to [`MAX_GROUP`]) and commit them together; other commands run in arrival order after.
fn run(mut store: Store, mut commands: mpsc::Receiver<Command>, gauges: &Gauges) {
    let mut deferred = Vec::new();
    while let Some(first) = commands.blocking_recv() {
        let mut group = Vec::new();
        match first {
            Command::Append(items, reply) => group.push((items, reply)),
            other => deferred.push(other),
        }
        while !group.is_empty() && group.len() < MAX_GROUP {
            match commands.try_recv() {
                Ok(Command::Append(items, reply)) => group.push((items, reply)),
                Ok(other) => deferred.push(other),
                Err(_) => break,
            }
        }
        if !group.is_empty() {
            commit_group(&mut store, group, gauges);
        }
        for command in deferred.drain(..) {
            serve(&mut store, command, gauges);
        }
        set_gauges(gauges, &store);
        // After every reply of this round is sent: no device waits on a catch-up checkpoint.
        store.checkpoint_if_behind();
    }
}

fn set_gauges(gauges: &Gauges, store: &Store) {
    gauges
        .depth
        .set(i64::try_from(store.depth()).unwrap_or(i64::MAX));
    gauges
        .bytes
        .set(i64::try_from(store.bytes()).unwrap_or(i64::MAX));
    gauges
        .quarantined
        .set(i64::try_from(store.quarantined_count()).unwrap_or(i64::MAX));
    gauges
        .rejected_bytes
        .set(i64::try_from(store.rejected_bytes()).unwrap_or(i64::MAX));
}

type Reply = oneshot::Sender<Result<Vec<Accepted>, BufferError>>;

fn commit_group(store: &mut Store, group: Vec<(Vec<Prepared>, Reply)>, gauges: &Gauges) {
    let (requests, replies): (Vec<_>, Vec<_>) = group.into_iter().unzip();
    let started = Instant::now();
    match store.append_prepared(&requests) {
        Ok(answers) => {
            gauges.commits.inc();
            gauges
                .commit_seconds
                .observe(started.elapsed().as_secs_f64());
            // Before the replies: whoever hears "committed" must see the gauges agree.
            set_gauges(gauges, store);
            for (answer, reply) in answers.into_iter().zip(replies) {
                let _ = reply.send(answer.map_err(|Full| BufferError::Full));
            }
        }
        // The disk filled before the byte cap did: the same answer as a full buffer (503 with
        // Retry-After, MQTT's "quota exceeded"), so devices keep their readings and retry.
        Err(error) if error.is_disk_full() => {
            tracing::error!(%error, "the buffer's disk is full; refusing readings until there is room");
            for reply in replies {
                let _ = reply.send(Err(BufferError::Full));
            }
        }
        Err(error) => {
            tracing::error!(%error, "buffer commit failed; refusing the readings in it");
            for reply in replies {
                let _ = reply.send(Err(BufferError::CommitFailed(error.to_string())));
            }
        }
    }
}

fn serve(store: &mut Store, command: Command, gauges: &Gauges) {
    match command {
        Command::Append(items, reply) => commit_group(store, vec![(items, reply)], gauges),
        Command::Peek(after, count, bytes, reply) => {
            let _ = reply.send(store.peek_after(after, count, bytes).map_err(Into::into));
        }
        Command::Remove(seqs, reply) => {
            let result = store.remove(&seqs);
            set_gauges(gauges, store);
            let _ = reply.send(result.map_err(Into::into));
        }
        Command::Quarantine(readings, reason, reply) => {
            let result = store.quarantine(&readings, &reason, OffsetDateTime::now_utc());
            set_gauges(gauges, store);
            let _ = reply.send(result.map_err(Into::into));
        }
        Command::Reject(r, reply) => {
            let result = store.reject(
                r.protocol,
                &r.origin,
                &r.payload,
                &r.reason,
                OffsetDateTime::now_utc(),
            );
            if let Ok(evicted @ 1..) = result {
                if gauges.rejected_evicted.get() == 0 {
                    tracing::warn!(
                        "the rejected table is at its cap: the oldest rejected payloads are dropped \
                         from now on (emberline_agent_rejected_evicted_total counts them)"
                    );
                }
                gauges.rejected_evicted.inc_by(evicted);
            }
            set_gauges(gauges, store);
            let _ = reply.send(result.map(drop).map_err(Into::into));
        }
        Command::Stats(reply) => {
            let _ = reply.send(store.stats().map_err(Into::into));
        }
    }
}

#[cfg(test)]
mod side_tables_tests;
#[cfg(test)]
pub(crate) mod tests;
