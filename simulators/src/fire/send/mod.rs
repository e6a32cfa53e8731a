//! How the fire's readings leave the simulator: HTTP batches (`POST /v1/readings`, one per agent
//! per tick), HTTP single (`POST /ingest`, one request per reading) or MQTT (one connection per
//! sensor, `sensors/{name}/readings`, QoS 0 or 1).
//!
//! Every reading handed to a sender is counted once as sent; acknowledged when the agent answers
//! `202` (HTTP) or PUBACK (MQTT QoS 1) or when it is written to the socket (QoS 0); whatever is
//! not acknowledged when the run ends is failed ([`Tally::settle`]).

mod http;
mod mqtt;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use serde_json::Value;

use super::{FireConfig, FireError};
use crate::histogram::Histogram;

/// Which way readings are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Transport {
    /// `POST /v1/readings`, one JSON array per agent per tick.
    HttpBatch,
    /// `POST /ingest`, one request per reading.
    HttpSingle,
    /// One MQTT connection per sensor.
    Mqtt,
}

/// Counters shared by the sender's tasks.
#[derive(Debug, Default)]
pub struct Tally {
    pub sent: AtomicU64,
    pub acknowledged: AtomicU64,
    /// Known failures so far (refused, not delivered); completed by [`Tally::settle`].
    pub failed: AtomicU64,
    /// Request → `202` (per request, batch or single) or publish written → PUBACK.
    pub latency: Histogram,
}

impl Tally {
    /// After the last answer: every reading not acknowledged has failed.
    pub fn settle(&self) {
        let unacknowledged = self.sent.load(Relaxed) - self.acknowledged.load(Relaxed);
        self.failed.store(unacknowledged, Relaxed);
    }

    pub fn outstanding(&self) -> u64 {
        let settled = self.acknowledged.load(Relaxed) + self.failed.load(Relaxed);
        self.sent.load(Relaxed).saturating_sub(settled)
    }
}

/// A running transport.
#[derive(Debug)]
pub enum Sender {
    Http(http::HttpSender),
    Mqtt(mqtt::MqttSender),
}

impl Sender {
    /// Builds the HTTP client or opens one MQTT connection per sensor (`names`).
    pub fn start(
        config: &FireConfig,
        names: &[String],
        tally: Arc<Tally>,
    ) -> Result<Self, FireError> {
        Ok(match config.transport {
            Transport::HttpBatch | Transport::HttpSingle => {
                Self::Http(http::HttpSender::new(config, tally)?)
            }
            Transport::Mqtt => Self::Mqtt(mqtt::MqttSender::start(config, names, tally)?),
        })
    }

    /// Sends `(sensor index, reading)` pairs; waits only when the in-flight bound is reached.
    pub async fn send(&mut self, readings: Vec<(usize, Value)>) {
        match self {
            Self::Http(sender) => sender.send(readings).await,
            Self::Mqtt(sender) => sender.send(readings),
        }
    }

    /// Waits up to `patience` for the outstanding answers, closes, settles the tally.
    pub async fn finish(self, patience: Duration) {
        match self {
            Self::Http(sender) => sender.finish(patience).await,
            Self::Mqtt(sender) => sender.finish(patience).await,
        }
    }
}
