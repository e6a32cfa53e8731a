//! Counters shared by every connection, the progress line and the final summary.

use std::fmt;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use serde::Serialize;

use crate::histogram::Histogram;

/// Everything the connections count, as relaxed atomics: one add per event, no lock.
#[derive(Debug, Default)]
pub struct Stats {
    /// Connections open right now.
    pub open: AtomicU64,
    /// Devices that connected at least once.
    pub ever_connected: AtomicU64,
    /// Devices whose first connection attempt has ended, either way (the start barrier).
    pub first_attempts: AtomicU64,
    pub connect_failures: AtomicU64,
    /// Established connections that broke.
    pub disconnects: AtomicU64,
    pub reconnects: AtomicU64,
    /// Publishes written to a socket.
    pub sent: AtomicU64,
    /// PUBACKs received.
    pub acked: AtomicU64,
    /// Publishes given up: their connection broke, or no PUBACK came within the drain timeout.
    pub failed: AtomicU64,
    /// Publish → PUBACK, microseconds.
    pub latency: Histogram,
    first_error: OnceLock<String>,
}

impl Stats {
    /// Keeps the first error seen, to show the user why things failed.
    pub fn error(&self, error: impl fmt::Display) {
        if self.first_error.get().is_none() {
            let _ = self.first_error.set(error.to_string());
        }
    }

    pub fn first_error(&self) -> Option<String> {
        self.first_error.get().cloned()
    }
}

/// One line per second on stderr while publishing.
#[derive(Debug, Default)]
pub struct Progress {
    last_acked: u64,
    last_sent: u64,
    last_at: Duration,
}

impl Progress {
    pub fn line(&mut self, stats: &Stats, elapsed: Duration) -> String {
        let (sent, acked, failed) = (get(&stats.sent), get(&stats.acked), get(&stats.failed));
        let window = elapsed.saturating_sub(self.last_at).as_secs_f64().max(1e-3);
        let acked_rate = (acked - self.last_acked) as f64 / window;
        let sent_rate = (sent - self.last_sent) as f64 / window;
        (self.last_acked, self.last_sent, self.last_at) = (acked, sent, elapsed);
        format!(
            "[{:>6.1}s] open {} | sent {sent} ({sent_rate:.0}/s) | acked {acked} ({acked_rate:.0}/s) \
             | failed {failed} | p50 {:.2} ms p99 {:.2} ms",
            elapsed.as_secs_f64(),
            get(&stats.open),
            ms(stats.latency.percentile_micros(0.50)),
            ms(stats.latency.percentile_micros(0.99)),
        )
    }
}

/// What a run achieved; `--json` prints it as one object.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub target: String,
    pub connections: u32,
    pub connected: u64,
    pub connect_failures: u64,
    pub disconnects: u64,
    pub reconnects: u64,
    pub qos: u8,
    pub inflight: u16,
    /// Requested total rate, 0 = as fast as acknowledged.
    pub rate: u64,
    pub messages_sent: u64,
    pub acknowledged: u64,
    pub failed: u64,
    /// From the start signal (every device connected) to the last connection closed.
    pub duration_s: f64,
    pub acked_per_s: f64,
    pub sent_per_s: f64,
    pub latency_samples: u64,
    pub latency_p50_ms: f64,
    pub latency_p90_ms: f64,
    pub latency_p99_ms: f64,
    pub latency_max_ms: f64,
    pub first_error: Option<String>,
}

/// The parts of a summary the run decides, beside the counters.
#[derive(Debug)]
pub struct RunFacts {
    pub target: String,
    pub connections: u32,
    pub qos: u8,
    pub inflight: u16,
    pub rate: u64,
    pub elapsed: Duration,
}

impl Summary {
    pub fn new(facts: RunFacts, stats: &Stats) -> Self {
        let seconds = facts.elapsed.as_secs_f64().max(1e-9);
        let latency = &stats.latency;
        Self {
            target: facts.target,
            connections: facts.connections,
            connected: get(&stats.ever_connected),
            connect_failures: get(&stats.connect_failures),
            disconnects: get(&stats.disconnects),
            reconnects: get(&stats.reconnects),
            qos: facts.qos,
            inflight: facts.inflight,
            rate: facts.rate,
            messages_sent: get(&stats.sent),
            acknowledged: get(&stats.acked),
            failed: get(&stats.failed),
            duration_s: round(seconds, 3),
            acked_per_s: round(get(&stats.acked) as f64 / seconds, 1),
            sent_per_s: round(get(&stats.sent) as f64 / seconds, 1),
            latency_samples: latency.count(),
            latency_p50_ms: ms(latency.percentile_micros(0.50)),
            latency_p90_ms: ms(latency.percentile_micros(0.90)),
            latency_p99_ms: ms(latency.percentile_micros(0.99)),
            latency_max_ms: ms(latency.max_micros()),
            first_error: stats.first_error(),
        }
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "MQTT load against {} (QoS {})", self.target, self.qos)?;
        writeln!(
            f,
            "connections:     {} requested, {} connected, {} connect failures, {} dropped, {} reconnects",
            self.connections,
            self.connected,
            self.connect_failures,
            self.disconnects,
            self.reconnects
        )?;
        writeln!(f, "messages sent:   {}", self.messages_sent)?;
        writeln!(f, "acknowledged:    {}", self.acknowledged)?;
        writeln!(f, "failed:          {}", self.failed)?;
        writeln!(f, "duration:        {:.3} s", self.duration_s)?;
        if self.qos == 0 {
            writeln!(
                f,
                "sent msgs/s:     {:.1} (QoS 0: nothing is acknowledged)",
                self.sent_per_s
            )?;
        } else {
            writeln!(f, "acked msgs/s:    {:.1}", self.acked_per_s)?;
            writeln!(
                f,
                "latency (ms):    p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}  (publish → PUBACK, {} samples)",
                self.latency_p50_ms,
                self.latency_p90_ms,
                self.latency_p99_ms,
                self.latency_max_ms,
                self.latency_samples
            )?;
        }
        if let Some(error) = &self.first_error {
            writeln!(f, "first error:     {error}")?;
        }
        Ok(())
    }
}

fn get(counter: &AtomicU64) -> u64 {
    counter.load(Relaxed)
}

fn ms(micros: u64) -> f64 {
    round(micros as f64 / 1000.0, 3)
}

fn round(value: f64, places: i32) -> f64 {
    let scale = 10f64.powi(places);
    (value * scale).round() / scale
}
