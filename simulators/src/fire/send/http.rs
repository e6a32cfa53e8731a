//! HTTP senders: batches to `/v1/readings` or single readings to `/ingest`, at most
//! `concurrency` requests in flight, each with the sending sensor's bearer token when tokens are
//! configured (a batch carries its first sensor's).

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use secrecy::ExposeSecret as _;
use serde_json::Value;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::{Tally, Transport};
use crate::fire::{FireConfig, FireError};
use crate::tokens::DeviceTokens;

#[derive(Debug)]
pub struct HttpSender {
    client: reqwest::Client,
    agents: Vec<String>,
    single: bool,
    tokens: Option<Arc<DeviceTokens>>,
    /// Bounds the requests in flight: `send` waits for a permit, so an agent that slows down
    /// slows the simulator instead of piling up requests.
    permits: Arc<Semaphore>,
    requests: JoinSet<()>,
    tally: Arc<Tally>,
}

impl HttpSender {
    pub fn new(config: &FireConfig, tally: Arc<Tally>) -> Result<Self, FireError> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .tcp_nodelay(true)
            .build()?;
        let agents = config
            .agents
            .iter()
            .map(|a| a.trim_end_matches('/').to_owned())
            .collect();
        Ok(Self {
            client,
            agents,
            single: config.transport == Transport::HttpSingle,
            tokens: config.tokens.clone().map(Arc::new),
            permits: Arc::new(Semaphore::new(config.concurrency)),
            requests: JoinSet::new(),
            tally,
        })
    }

    pub async fn send(&mut self, readings: Vec<(usize, Value)>) {
        while self.requests.try_join_next().is_some() {}
        let mut batches = vec![Vec::new(); self.agents.len()];
        for (n, reading) in readings {
            let agent = n % self.agents.len();
            if self.single {
                let url = format!("{}/ingest", self.agents[agent]);
                self.spawn(url, &reading, vec![reading.clone()]).await;
            } else if let Some(batch) = batches.get_mut(agent) {
                batch.push(reading);
            }
        }
        for (agent, batch) in batches.into_iter().enumerate() {
            if let Some(first) = batch.first().cloned() {
                let url = format!("{}/v1/readings", self.agents[agent]);
                self.spawn(url, &first, batch).await;
            }
        }
    }

    /// Posts `readings` (a lone reading as an object, several as an array) with the token of
    /// `first`'s sensor.
    async fn spawn(&mut self, url: String, first: &Value, readings: Vec<Value>) {
        let Ok(permit) = Arc::clone(&self.permits).acquire_owned().await else {
            return;
        };
        let token = self.token_for(first);
        let body = match (self.single, readings.as_slice()) {
            (true, [one]) => one.clone(),
            _ => Value::Array(readings),
        };
        let count = if self.single { 1 } else { array_len(&body) };
        self.tally.sent.fetch_add(count, Relaxed);
        let mut request = self.client.post(url).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let tally = Arc::clone(&self.tally);
        self.requests.spawn(async move {
            let _permit = permit;
            post(request, count, &tally).await;
        });
    }

    fn token_for(&self, reading: &Value) -> Option<String> {
        let name = reading["source_name"].as_str()?;
        let token = self.tokens.as_ref()?.get(name)?;
        Some(token.expose_secret().to_owned())
    }

    pub async fn finish(mut self, patience: Duration) {
        let drained = tokio::time::timeout(patience, async {
            while self.requests.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(left = self.requests.len(), "requests still open at the end");
            self.requests.abort_all();
        }
        self.tally.settle();
    }
}

fn array_len(body: &Value) -> u64 {
    body.as_array().map_or(1, |a| a.len() as u64)
}

/// One request; counts the readings the agent accepted (a batch's `accepted`, a single `202`).
async fn post(request: reqwest::RequestBuilder, count: u64, tally: &Tally) {
    let sent_at = Instant::now();
    let accepted = match request.send().await {
        Ok(response) if response.status() == StatusCode::ACCEPTED => {
            tally.latency.record(sent_at.elapsed());
            let body = response.json::<Value>().await.ok();
            let accepted = body.as_ref().and_then(|v| v["accepted"].as_u64());
            accepted.unwrap_or(count).min(count)
        }
        Ok(response) => {
            tracing::warn!(status = %response.status(), "readings refused");
            0
        }
        Err(error) => {
            tracing::warn!(%error, "readings not delivered");
            0
        }
    };
    tally.acknowledged.fetch_add(accepted, Relaxed);
    tally.failed.fetch_add(count - accepted, Relaxed);
}
