//! Batches an agent sends again after they were produced.
//!
//! An agent that gives up on a request (a timeout, a connection cut as a network partition heals)
//! keeps the batch and sends it again, though the bridge may have produced it and answered 200
//! too late for the agent to hear. Producing it again is safe (every copy dies at PostgreSQL by
//! `reading_id`) but costs a whole batch in Kafka and in every consumer. The bridge therefore
//! remembers the last [`CAPACITY`] batches it produced, by a digest of their decompressed bytes,
//! and answers a byte-identical repeat with 200 without producing it. A repeat that arrives
//! while the first copy is still being produced is answered 503 with `Retry-After`: by the time
//! the agent retries, the first has either been produced (the retry gets 200 from memory) or
//! failed (the retry is produced).
//!
//! # Invariants
//! - A batch is remembered only after Kafka acknowledged every record of it, so a repeat that is
//!   answered from memory is already in Kafka, whole.
//! - Only byte-identical batches match: a retry that carries one more reading, or the same
//!   readings in another order, is produced again (duplicates die at PostgreSQL, as before).
//! - The digest is SipHash with keys drawn at start, so a client cannot make a batch of its own
//!   collide with another's.
//! - Each bridge process remembers for itself: a repeat that reaches another replica is produced
//!   again.

use std::collections::{HashSet, VecDeque};
use std::hash::{BuildHasher as _, RandomState};
use std::sync::Mutex;

/// How many produced batches are remembered (a digest is 8 bytes).
pub const CAPACITY: usize = 4096;

/// Digests of the batches produced most recently.
#[derive(Debug)]
pub struct Recent {
    keys: RandomState,
    produced: Mutex<Produced>,
}

#[derive(Debug, Default)]
struct Produced {
    set: HashSet<u64>,
    /// Oldest first: what to forget once [`CAPACITY`] is reached.
    order: VecDeque<u64>,
    /// Batches some request is producing now.
    in_flight: HashSet<u64>,
}

/// What the bridge knows of a batch it has just received.
#[derive(Debug)]
pub enum Seen<'a> {
    /// Not produced recently nor being produced: produce it, then [`Producing::produced`].
    New(Producing<'a>),
    /// Produced recently: answer 200 without producing it again.
    Produced,
    /// Another request is producing it right now.
    InFlight,
}

/// A batch being produced; dropped without [`Producing::produced`] (Kafka refused, the request
/// was cancelled) it is forgotten, so a retry produces it.
#[derive(Debug)]
pub struct Producing<'a> {
    recent: &'a Recent,
    digest: u64,
}

impl Producing<'_> {
    /// Kafka acknowledged every record of the batch.
    pub fn produced(self) {
        self.recent.remember(self.digest);
    }
}

impl Drop for Producing<'_> {
    fn drop(&mut self) {
        self.recent.lock().in_flight.remove(&self.digest);
    }
}

impl Default for Recent {
    fn default() -> Self {
        Self {
            keys: RandomState::new(),
            produced: Mutex::default(),
        }
    }
}

impl Recent {
    /// The digest of a decompressed batch.
    pub fn digest(&self, batch: &[u8]) -> u64 {
        self.keys.hash_one(batch)
    }

    /// Looks a received batch up; a new one counts as being produced until the answer is
    /// dropped.
    pub fn check(&self, digest: u64) -> Seen<'_> {
        let mut produced = self.lock();
        if produced.set.contains(&digest) {
            Seen::Produced
        } else if !produced.in_flight.insert(digest) {
            Seen::InFlight
        } else {
            Seen::New(Producing {
                recent: self,
                digest,
            })
        }
    }

    fn remember(&self, digest: u64) {
        let mut produced = self.lock();
        if !produced.set.insert(digest) {
            return;
        }
        produced.order.push_back(digest);
        if produced.order.len() > CAPACITY
            && let Some(oldest) = produced.order.pop_front()
        {
            produced.set.remove(&oldest);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Produced> {
        // A panic while holding the lock leaves a set and a queue that are still consistent
        // enough to use (at worst a digest is remembered or forgotten early).
        self.produced
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn produce(recent: &Recent, digest: u64) {
        match recent.check(digest) {
            Seen::New(producing) => producing.produced(),
            other => panic!("{digest} was {other:?}"),
        }
    }

    #[test]
    fn remembers_the_last_capacity_batches_byte_for_byte() {
        let recent = Recent::default();
        let a = recent.digest(b"{\"reading_id\":\"a:edge-1:1\"}\n");
        assert_eq!(a, recent.digest(b"{\"reading_id\":\"a:edge-1:1\"}\n"));
        assert_ne!(a, recent.digest(b"{\"reading_id\":\"a:edge-1:2\"}\n"));
        produce(&recent, a);
        assert!(matches!(recent.check(a), Seen::Produced));
        for n in 0..CAPACITY as u64 - 1 {
            produce(&recent, recent.digest(&n.to_le_bytes()));
        }
        assert!(
            matches!(recent.check(a), Seen::Produced),
            "among the last {CAPACITY}"
        );
        produce(&recent, recent.digest(b"one more"));
        assert!(
            matches!(recent.check(a), Seen::New(_)),
            "the oldest is forgotten"
        );
        assert_eq!(recent.lock().order.len(), CAPACITY);
        assert_eq!(recent.lock().set.len(), CAPACITY);
    }

    #[test]
    fn a_batch_in_flight_is_not_produced_twice_and_a_failed_one_is_forgotten() {
        let recent = Recent::default();
        let first = recent.check(7);
        assert!(matches!(first, Seen::New(_)));
        assert!(
            matches!(recent.check(7), Seen::InFlight),
            "the same batch, meanwhile"
        );
        drop(first); // Kafka refused it: not produced
        let again = recent.check(7);
        assert!(
            matches!(again, Seen::New(_)),
            "a retry after a failure is produced"
        );
        if let Seen::New(producing) = again {
            producing.produced();
        }
        assert!(matches!(recent.check(7), Seen::Produced));
        assert!(recent.lock().in_flight.is_empty());
    }
}
