//! A fixed-size, lock-free latency histogram in the manner of HdrHistogram.
//!
//! Values (microseconds) below 128 get a bucket each; above that every power of two is split
//! into 64 buckets, so a reported percentile is within 1/64 (about 1.6 %) of the true value.
//! Values of 2^41 µs (about 25 days) and more are clamped. The whole thing is 2,304 counters (18 KiB)
//! shared by every connection: recording is one relaxed atomic add, no lock, no allocation.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Sub-buckets per power of two, as a power of two.
const SUB_BITS: u32 = 6;
const SUB_COUNT: u64 = 1 << SUB_BITS;
/// Largest exponent kept; larger values land in the last bucket.
const MAX_EXP: u32 = 40;
const MAX_VALUE: u64 = (1 << (MAX_EXP + 1)) - 1;
const BUCKETS: usize = ((MAX_EXP - SUB_BITS) as usize + 2) * SUB_COUNT as usize;

#[derive(Debug)]
pub struct Histogram {
    counts: Box<[AtomicU64]>,
    total: AtomicU64,
    /// The exact largest value recorded, so `max` is not rounded to a bucket.
    max: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

impl Histogram {
    pub fn new() -> Self {
        Self {
            counts: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            total: AtomicU64::new(0),
            max: AtomicU64::new(0),
        }
    }

    pub fn record(&self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.record_micros(micros);
    }

    pub fn record_micros(&self, micros: u64) {
        let value = micros.min(MAX_VALUE);
        self.counts[index_of(value)].fetch_add(1, Ordering::Relaxed);
        self.total.fetch_add(1, Ordering::Relaxed);
        self.max.fetch_max(micros, Ordering::Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    pub fn max_micros(&self) -> u64 {
        self.max.load(Ordering::Relaxed)
    }

    /// The value at quantile `q` (0..=1) in microseconds: the highest value of the bucket that
    /// holds it, never more than the largest value recorded. 0 when nothing was recorded.
    pub fn percentile_micros(&self, q: f64) -> u64 {
        let total = self.count();
        if total == 0 {
            return 0;
        }
        // Rank of the wanted sample, 1-based; float-to-int casts saturate.
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for (index, count) in self.counts.iter().enumerate() {
            seen += count.load(Ordering::Relaxed);
            if seen >= rank {
                return highest_of(index).min(self.max_micros());
            }
        }
        self.max_micros()
    }
}

fn index_of(value: u64) -> usize {
    if value < 2 * SUB_COUNT {
        return value as usize;
    }
    let exp = u64::BITS - 1 - value.leading_zeros();
    let shift = exp - SUB_BITS;
    (u64::from(shift) * SUB_COUNT + (value >> shift)) as usize
}

/// The largest value that [`index_of`] puts in bucket `index`.
fn highest_of(index: usize) -> u64 {
    let index = index as u64;
    if index < 2 * SUB_COUNT {
        return index;
    }
    let shift = index / SUB_COUNT - 1;
    let mantissa = index - shift * SUB_COUNT;
    ((mantissa + 1) << shift) - 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_bounded() {
        let mut previous = 0;
        for value in (0..100_000).chain([MAX_VALUE - 1, MAX_VALUE]) {
            let index = index_of(value);
            assert!(index < BUCKETS, "{value}");
            assert!(index >= previous, "{value}");
            assert!(highest_of(index) >= value, "{value}");
            let error = (highest_of(index) - value) as f64 / value.max(1) as f64;
            assert!(error <= 1.0 / 64.0, "{value}: {error}");
            previous = index;
        }
        assert_eq!(index_of(MAX_VALUE), BUCKETS - 1);
    }

    #[test]
    fn percentiles_of_a_uniform_spread() {
        let histogram = Histogram::new();
        for micros in 1..=10_000 {
            histogram.record_micros(micros);
        }
        let near = |q: f64, expected: f64| {
            let got = histogram.percentile_micros(q) as f64;
            assert!(
                (got - expected).abs() / expected <= 0.02,
                "p{q}: {got} vs {expected}"
            );
        };
        near(0.5, 5_000.0);
        near(0.9, 9_000.0);
        near(0.99, 9_900.0);
        assert_eq!(histogram.percentile_micros(1.0), 10_000);
        assert_eq!(histogram.max_micros(), 10_000);
        assert_eq!(histogram.count(), 10_000);
    }

    #[test]
    fn small_values_are_exact_and_empty_is_zero() {
        let histogram = Histogram::new();
        assert_eq!(histogram.percentile_micros(0.99), 0);
        for micros in [3, 3, 3, 7] {
            histogram.record_micros(micros);
        }
        assert_eq!(histogram.percentile_micros(0.5), 3);
        assert_eq!(histogram.percentile_micros(0.99), 7);
        histogram.record(Duration::from_secs(u64::MAX));
        assert_eq!(histogram.max_micros(), u64::MAX);
        assert_eq!(histogram.percentile_micros(0.0), 3);
    }
}
