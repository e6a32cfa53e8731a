//! Progress lines while the fire runs (stderr) and the summary at the end.

use std::fmt;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use super::{Fire, FireConfig, Tally};
use crate::histogram::Histogram;

/// Prints a line every `every`, with the rates since the last line.
#[derive(Debug)]
pub struct Progress {
    every: Duration,
    last_at: Instant,
    last_sent: u64,
    last_acknowledged: u64,
}

impl Progress {
    pub fn new(every: Duration) -> Self {
        Self {
            every,
            last_at: Instant::now(),
            last_sent: 0,
            last_acknowledged: 0,
        }
    }

    pub fn maybe_print(&mut self, fire: &Fire, t: f64, tally: &Tally) {
        let window = self.last_at.elapsed();
        if window < self.every {
            return;
        }
        let (sent, acknowledged) = (tally.sent.load(Relaxed), tally.acknowledged.load(Relaxed));
        let per_sec = |now: u64, before: u64| (now - before) as f64 / window.as_secs_f64();
        eprintln!(
            "fire: t={t:.0}s reached_by_fire={} sent={sent} ({:.0}/s) acknowledged={acknowledged} \
             ({:.0}/s) failed={} latency_ms p50={:.1} p99={:.1}",
            fire.burning(t),
            per_sec(sent, self.last_sent),
            per_sec(acknowledged, self.last_acknowledged),
            tally.failed.load(Relaxed),
            ms(&tally.latency, 0.5),
            ms(&tally.latency, 0.99),
        );
        (self.last_at, self.last_sent, self.last_acknowledged) =
            (Instant::now(), sent, acknowledged);
    }
}

fn ms(histogram: &Histogram, q: f64) -> f64 {
    histogram.percentile_micros(q) as f64 / 1000.0
}

/// What a run did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Summary {
    pub transport: String,
    pub sensors: usize,
    pub reached_by_fire: usize,
    pub elapsed_secs: f64,
    pub sent: u64,
    pub acknowledged: u64,
    pub failed: u64,
    /// Readings sent per second of the sending phase.
    pub sent_per_sec: f64,
    /// Latency samples: requests (HTTP) or PUBACKs (MQTT QoS 1); 0 for QoS 0.
    pub latency_samples: u64,
    pub latency_p50_ms: f64,
    pub latency_p90_ms: f64,
    pub latency_p99_ms: f64,
    pub latency_max_ms: f64,
}

impl Summary {
    pub fn new(config: &FireConfig, fire: &Fire, elapsed: Duration, tally: &Tally) -> Self {
        let t = elapsed.as_secs_f64();
        let sent = tally.sent.load(Relaxed);
        let latency = &tally.latency;
        Self {
            transport: format!("{:?}", config.transport),
            sensors: fire.sites().len(),
            reached_by_fire: fire.burning(t),
            elapsed_secs: t,
            sent,
            acknowledged: tally.acknowledged.load(Relaxed),
            failed: tally.failed.load(Relaxed),
            sent_per_sec: sent as f64 / t.max(1e-9),
            latency_samples: latency.count(),
            latency_p50_ms: ms(latency, 0.5),
            latency_p90_ms: ms(latency, 0.9),
            latency_p99_ms: ms(latency, 0.99),
            latency_max_ms: latency.max_micros() as f64 / 1000.0,
        }
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "fire ({}): {} sensors, {} reached by the fire, {:.1} s",
            self.transport, self.sensors, self.reached_by_fire, self.elapsed_secs
        )?;
        writeln!(
            f,
            "readings: sent {}  acknowledged {}  failed {}  ({:.0} sent/s)",
            self.sent, self.acknowledged, self.failed, self.sent_per_sec
        )?;
        writeln!(
            f,
            "latency (ms): p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}  ({} samples: request → 202, \
             or publish → PUBACK)",
            self.latency_p50_ms,
            self.latency_p90_ms,
            self.latency_p99_ms,
            self.latency_max_ms,
            self.latency_samples
        )
    }
}
