//! Where a buffer's `seq` starts: far from any number an earlier buffer on this node may have
//! used, so that ids the agent makes from it never repeat ones already forwarded (the hub would
//! drop the new reading as a duplicate).

/// The first `seq` of a buffer that holds nothing: random in [10^18, 4·10^18), so that a new
/// buffer's ids do not repeat those of one before it, and every id has the same length (19
/// digits). Two buffers that number n1 and n2 readings overlap with a chance of about
/// (n1 + n2) / 3·10^18: one in 3·10^8 even after 2^32 readings each.
pub(super) fn fresh_seq() -> u64 {
    const FIRST: u64 = 1_000_000_000_000_000_000;
    FIRST + random() % (3 * FIRST)
}

/// The next `seq` of a buffer that may have lost its last commits: at least 2^32 past the last
/// one stored (more readings than a WAL between two checkpoints holds), plus a random part below
/// 2^40, so that two restarts from the same stored state, each of which forwarded readings
/// before a power cut took them back, do not number on from the same point. Ids keep their 19
/// digits for millions of such restarts.
pub(super) fn after_a_possible_loss(last: u64) -> u64 {
    const LEAP: u64 = 1 << 32;
    last.saturating_add(LEAP + random() % ((1 << 40) - LEAP))
}

/// A random number from the standard library's hasher keys, which come from the operating
/// system.
fn random() -> u64 {
    use std::hash::BuildHasher as _;
    std::collections::hash_map::RandomState::new().hash_one(std::process::id())
}
