//! Batches an agent sends again after they were produced.
//!
//! An agent that gives up on a request (a timeout, a connection cut as a network partition heals)
//! keeps the batch and sends it again, though the bridge may have produced it and answered 200
//! too late for the agent to hear. Producing it again is safe (every copy dies at PostgreSQL by
//! `reading_id`) but costs a whole batch in Kafka and in every consumer. The bridge therefore
//! remembers the last [`CAPACITY`] batches it produced, by a digest of their decompressed bytes,
//! and answers a byte-identical repeat with 200 without producing it.
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

    /// Whether a batch with this digest was produced recently.
    pub fn contains(&self, digest: u64) -> bool {
        self.lock().set.contains(&digest)
    }

    /// Remembers a batch Kafka acknowledged whole.
    pub fn insert(&self, digest: u64) {
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

    #[test]
    fn remembers_the_last_capacity_batches_byte_for_byte() {
        let recent = Recent::default();
        let a = recent.digest(b"{\"reading_id\":\"a:edge-1:1\"}\n");
        assert_eq!(a, recent.digest(b"{\"reading_id\":\"a:edge-1:1\"}\n"));
        assert_ne!(a, recent.digest(b"{\"reading_id\":\"a:edge-1:2\"}\n"));
        assert!(!recent.contains(a));
        recent.insert(a);
        recent.insert(a);
        assert!(recent.contains(a));
        for n in 0..CAPACITY as u64 - 1 {
            recent.insert(recent.digest(&n.to_le_bytes()));
        }
        assert!(recent.contains(a), "still among the last {CAPACITY}");
        recent.insert(recent.digest(b"one more"));
        assert!(!recent.contains(a), "the oldest is forgotten");
        assert_eq!(recent.lock().order.len(), CAPACITY);
        assert_eq!(recent.lock().set.len(), CAPACITY);
    }
}
