//! `emberline-sim fire`: sensors over a wildfire region posting their readings to agents over
//! HTTP (`POST /v1/readings`, one JSON-array batch per agent per round) while a fire spreads.
//!
//! Sensor `n` reports to agent `n % agents`. Counts what was sent, acknowledged (the agent's
//! `202`, per reading) and failed, and the latency of each batch (request → `202`, that is until
//! the agent has committed it), and prints a line every `report_every`.

pub mod model;

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::histogram::Histogram;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio_util::sync::CancellationToken;

pub use model::{Fire, Scenario};

/// How the fire simulator runs.
#[derive(Debug, Clone)]
pub struct FireConfig {
    pub scenario: Scenario,
    /// Base URLs of the agents, e.g. `http://127.0.0.1:8101`.
    pub agents: Vec<String>,
    /// Every sensor reports once per interval.
    pub interval: Duration,
    /// Stop after this long; `None` runs until cancelled.
    pub duration: Option<Duration>,
    pub report_every: Duration,
}

#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
pub struct Counts {
    pub sent: u64,
    pub acknowledged: u64,
    pub failed: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum FireError {
    #[error("no agent to send to: give at least one --agent URL")]
    NoAgent,
    #[error("cannot build the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

/// Runs until `stop` is cancelled or the duration is over; returns the counts.
pub async fn run(config: FireConfig, stop: CancellationToken) -> Result<Counts, FireError> {
    if config.agents.is_empty() {
        return Err(FireError::NoAgent);
    }
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let fire = Fire::new(config.scenario.clone());
    let started = Instant::now();
    // A per-run base so a rerun's readings are not taken for the last run's duplicates.
    let seq_base = (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as u64;
    let mut counts = Counts::default();
    let latency = Histogram::new();
    let mut round = 0u64;
    let mut last_report = Instant::now();
    let mut ticker = tokio::time::interval(config.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            _ = ticker.tick() => {}
        }
        if config.duration.is_some_and(|d| started.elapsed() >= d) {
            break;
        }
        let t = started.elapsed().as_secs_f64();
        let batches = batches(&fire, config.agents.len(), t, seq_base + round);
        round += 1;
        send_round(&client, &config.agents, batches, &mut counts, &latency).await;
        if last_report.elapsed() >= config.report_every {
            last_report = Instant::now();
            println!("{}", summary(&fire, t, counts, &latency));
        }
    }
    println!(
        "{}",
        summary(&fire, started.elapsed().as_secs_f64(), counts, &latency)
    );
    Ok(counts)
}

/// One reading per sensor at `t`, grouped by agent.
fn batches(fire: &Fire, agents: usize, t: f64, seq: u64) -> Vec<Vec<Value>> {
    let timestamp = OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_default();
    let mut batches = vec![Vec::new(); agents];
    for n in 0..fire.sites().len() {
        if let (Some(reading), Some(batch)) = (
            fire.reading(n, t, seq, &timestamp),
            batches.get_mut(n % agents),
        ) {
            batch.push(reading);
        }
    }
    batches
}

async fn send_round(
    client: &reqwest::Client,
    agents: &[String],
    batches: Vec<Vec<Value>>,
    counts: &mut Counts,
    latency: &Histogram,
) {
    let sends = agents.iter().zip(batches).map(|(agent, batch)| async move {
        let n = batch.len() as u64;
        let sent_at = Instant::now();
        let url = format!("{}/v1/readings", agent.trim_end_matches('/'));
        let answer = client.post(&url).json(&batch).send().await;
        let accepted = match answer {
            Ok(response) if response.status() == reqwest::StatusCode::ACCEPTED => {
                latency.record(sent_at.elapsed());
                response
                    .json::<Value>()
                    .await
                    .ok()
                    .and_then(|v| v["accepted"].as_u64())
                    .unwrap_or(0)
            }
            Ok(response) => {
                tracing::warn!(%url, status = %response.status(), "batch refused");
                0
            }
            Err(error) => {
                tracing::warn!(%url, %error, "batch not delivered");
                0
            }
        };
        (n, accepted.min(n))
    });
    for (sent, accepted) in futures_util::future::join_all(sends).await {
        counts.sent += sent;
        counts.acknowledged += accepted;
        counts.failed += sent - accepted;
    }
}

fn summary(fire: &Fire, t: f64, counts: Counts, latency: &Histogram) -> String {
    let ms = |q: f64| latency.percentile_micros(q) as f64 / 1000.0;
    format!(
        "fire: t={t:.0}s sensors={} reached_by_fire={} sent={} acknowledged={} failed={} \
         batch_latency_ms p50={:.1} p99={:.1}",
        fire.sites().len(),
        fire.burning(t),
        counts.sent,
        counts.acknowledged,
        counts.failed,
        ms(0.5),
        ms(0.99),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_sensor_reports_once_per_round_to_its_own_agent() {
        let fire = Fire::new(Scenario::palisades(10, 3));
        let batches = batches(&fire, 3, 0.0, 42);
        let sizes: Vec<usize> = batches.iter().map(Vec::len).collect();
        assert_eq!(sizes, [4, 3, 3]);
        for (agent, batch) in batches.iter().enumerate() {
            for reading in batch {
                let name = reading["source_name"].as_str().unwrap();
                let n: usize = name.trim_start_matches("sensor-").parse().unwrap();
                assert_eq!(n % 3, agent, "{name}");
                assert_eq!(reading["seq"], 42);
            }
        }
    }
}
