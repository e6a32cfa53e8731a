//! `emberline-sim fire`: sensors over a wildfire region sending their readings to agents while a
//! fire spreads, over HTTP batches, HTTP single requests or MQTT ([`send`]).
//!
//! Every sensor reports once per `interval`; the sensors are spread over ticks of about 50 ms
//! (sensor `n` in slice `n % slices`), so the load is steady rather than one burst per interval.
//! Each reading is stamped when its tick sends it, so its `timestamp` is its send time. The run
//! ends after `duration`, after `count` readings, or when `stop` is cancelled; a progress line is
//! printed every `report_every` on stderr, and the summary at the end.

pub mod model;
pub mod send;
mod summary;

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use rumqttc::QoS;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio_util::sync::CancellationToken;

pub use model::{Fire, Scenario};
pub use send::{Tally, Transport};
pub use summary::Summary;

use send::Sender;

/// Longest pause between two ticks: the sensors are spread over ticks this long.
const TICK: Duration = Duration::from_millis(50);
/// How long the end waits for the answers still outstanding.
const DRAIN: Duration = Duration::from_secs(10);

/// How the fire simulator runs.
#[derive(Debug, Clone)]
pub struct FireConfig {
    pub scenario: Scenario,
    pub transport: Transport,
    /// Base URLs of the agents (HTTP), e.g. `http://127.0.0.1:8101`.
    pub agents: Vec<String>,
    /// `(host, port)` of the agents' MQTT listeners.
    pub mqtt_brokers: Vec<(String, u16)>,
    pub qos: QoS,
    /// Device tokens by sensor name; `None` sends none.
    pub tokens: Option<crate::tokens::DeviceTokens>,
    /// Most HTTP requests in flight.
    pub concurrency: usize,
    /// Every sensor reports once per interval.
    pub interval: Duration,
    /// Stop after this long; `None` runs until cancelled or `count`.
    pub duration: Option<Duration>,
    /// Stop after this many readings.
    pub count: Option<u64>,
    pub report_every: Duration,
    /// No progress lines.
    pub quiet: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum FireError {
    #[error("no agent to send to: give at least one --agent URL (or --mqtt address)")]
    NoAgent,
    #[error("cannot build the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

/// The sensors' slices: how many ticks one interval is cut into.
fn slices(interval: Duration, sensors: usize) -> u64 {
    let ticks = (interval.as_secs_f64() / TICK.as_secs_f64()).ceil() as u64;
    ticks.clamp(1, sensors.max(1) as u64)
}

/// Runs until `stop`, the duration or the count; returns the summary (also printed unless quiet).
pub async fn run(config: FireConfig, stop: CancellationToken) -> Result<Summary, FireError> {
    if config.agents.is_empty() && config.transport != Transport::Mqtt {
        return Err(FireError::NoAgent);
    }
    let fire = Fire::new(config.scenario.clone());
    let names: Vec<String> = fire.sites().iter().map(|s| s.name.clone()).collect();
    let tally = Arc::new(Tally::default());
    let mut sender = Sender::start(&config, &names, Arc::clone(&tally))?;
    let slices = slices(config.interval, names.len());
    let started = Instant::now();
    // A per-run base so a rerun's readings are not taken for the last run's duplicates.
    let seq_base = (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as u64;
    let mut ticker = tokio::time::interval(config.interval / slices as u32);
    // Burst: a tick that ran late is caught up at once, so the rate holds on average.
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut progress = summary::Progress::new(config.report_every);
    for tick in 0u64.. {
        tokio::select! {
            () = stop.cancelled() => break,
            _ = ticker.tick() => {}
        }
        let left = config
            .count
            .map(|c| c.saturating_sub(tally.sent.load(Relaxed)));
        if config.duration.is_some_and(|d| started.elapsed() >= d) || left == Some(0) {
            break;
        }
        let t = started.elapsed().as_secs_f64();
        let round = seq_base + tick / slices;
        let mut readings = slice(&fire, t, round, tick % slices, slices);
        readings.truncate(left.map_or(usize::MAX, |l| l as usize));
        sender.send(readings).await;
        if !config.quiet {
            progress.maybe_print(&fire, t, &tally);
        }
    }
    let elapsed = started.elapsed();
    sender.finish(DRAIN).await;
    Ok(Summary::new(&config, &fire, elapsed, &tally))
}

/// The readings of the sensors in slice `k` of `slices` at `t`, stamped now.
fn slice(fire: &Fire, t: f64, seq: u64, k: u64, slices: u64) -> Vec<(usize, Value)> {
    let timestamp = OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_default();
    (0..fire.sites().len())
        .filter(|n| *n as u64 % slices == k)
        .filter_map(|n| Some((n, fire.reading(n, t, seq, &timestamp)?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sensor_reports_once_per_interval_spread_over_ticks() {
        let fire = Fire::new(Scenario::palisades(10, 3));
        let slices = slices(Duration::from_millis(150), 10);
        assert_eq!(slices, 3);
        let mut seen: Vec<usize> = (0..slices)
            .flat_map(|k| slice(&fire, 0.0, 42, k, slices))
            .map(|(n, reading)| {
                assert_eq!(reading["seq"], 42);
                assert_eq!(reading["source_name"], format!("sensor-{n}"));
                n
            })
            .collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..10).collect::<Vec<_>>());
        assert_eq!(super::slices(Duration::from_secs(10), 5), 5);
        assert_eq!(super::slices(Duration::from_millis(10), 5), 1);
    }
}
