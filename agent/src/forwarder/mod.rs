//! Store and forward: oldest readings first, in batches, to the bridge; deleted only after its
//! `200`.
//!
//! Whether to retry is a pure function of the answer ([`classify`]); the waiting comes from an
//! exponential backoff with jitter (`backon`), stretched to any `Retry-After` the bridge sends.
//! Nothing is ever dropped: a reading the bridge refuses as malformed (or as too large) is moved
//! to the buffer's quarantine table, everything else is retried until it is delivered. A refused
//! batch is narrowed down first (to the readings before the line the bridge names, or halved), so
//! that only the reading at fault is set aside, never the other sensors' readings beside it.
//!
//! Delivered batches leave the buffer in order: while one batch's deletion has failed, no later
//! batch is deleted (the buffer is read again from its oldest reading), so the highest `seq` in
//! the buffer stays the highest ever given and a restart never numbers a reading under an id
//! already forwarded.

mod heartbeat;
mod outgoing;

use std::sync::Arc;
use std::time::Duration;

use backon::{BackoffBuilder as _, ExponentialBuilder};
use emberline_core::AgentId;
use emberline_core::batch::BATCH_CONTENT_TYPE;
use hyper::StatusCode;
use hyper::header::RETRY_AFTER;
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

use crate::bridge_client::{BridgeClient, ClientError};
use crate::buffer::{Buffer, BufferError, Stored};
use crate::http::BridgeStatus;
use crate::metrics::Metrics;
use heartbeat::{HeartbeatContext, heartbeats};
use outgoing::{Outgoing, make_batch};

/// How often a delivered batch's deletion is tried before it is left to the next start.
const REMOVE_ATTEMPTS: u32 = 10;

#[derive(Debug, Clone)]
pub struct ForwarderConfig {
    /// Base URL of the bridge, e.g. `http://bridge:8081` or `https://bridge:8443`.
    pub bridge_url: String,
    /// PEM file of the CA that signed a TLS bridge's certificate; `None`: the system's roots.
    pub bridge_ca_file: Option<std::path::PathBuf>,
    pub agent_id: AgentId,
    /// This agent's bearer token for the bridge.
    pub token: Option<SecretString>,
    pub max_batch_readings: usize,
    pub max_batch_bytes: usize,
    /// How long to wait for a batch to fill before sending what there is.
    pub linger: Duration,
    pub request_timeout: Duration,
    pub heartbeat_every: Duration,
    pub min_backoff: Duration,
    pub max_backoff: Duration,
}

/// What to do after an attempt to deliver a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The bridge has it (Kafka acknowledged every record): delete it.
    Delivered,
    /// Try the same batch again, after at least `after` if the bridge said so.
    Retry { after: Option<Duration> },
    /// Too large for the bridge: send fewer readings at a time.
    Split,
    /// The bridge will never take it: set it aside with the reason. `line` is the batch line
    /// (from 1) the bridge named as the one at fault, when it did.
    Quarantine { reason: String, line: Option<usize> },
}

/// How [`Forwarder::deliver`] left a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sent {
    /// Every reading is with the bridge: delete the batch.
    Delivered,
    /// Send only the first this many readings next (the bridge refused the batch for a part of
    /// it).
    Narrow(usize),
    /// Set aside, or not sent (shutdown, or the buffer failed): read the buffer again.
    Done,
}

/// Decides from the bridge's answer (`None`: no answer at all) — no clock, no IO.
pub fn classify(status: Option<StatusCode>, retry_after: Option<Duration>, body: &str) -> Outcome {
    match status {
        Some(StatusCode::OK) => Outcome::Delivered,
        Some(StatusCode::PAYLOAD_TOO_LARGE) => Outcome::Split,
        Some(status @ (StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY)) => {
            Outcome::Quarantine {
                reason: format!(
                    "bridge answered {status}: {}",
                    body.chars().take(500).collect::<String>()
                ),
                line: refused_line(body),
            }
        }
        // Unauthorised or forbidden is a configuration fault an operator fixes: keep the data
        // and keep asking (loudly, see the log) rather than drop it.
        _ => Outcome::Retry { after: retry_after },
    }
}

/// The line of the batch a refusal names (`{"error":…,"line":n}`), counted from 1.
fn refused_line(body: &str) -> Option<usize> {
    #[derive(serde::Deserialize)]
    struct Refusal {
        line: Option<usize>,
    }
    serde_json::from_str::<Refusal>(body)
        .ok()?
        .line
        .filter(|&line| line > 0)
}

#[derive(Debug)]
pub struct Forwarder {
    config: ForwarderConfig,
    buffer: Buffer,
    client: BridgeClient,
    metrics: Metrics,
    bridge: Arc<BridgeStatus>,
}

impl Forwarder {
    pub fn new(
        config: ForwarderConfig,
        buffer: Buffer,
        metrics: Metrics,
        bridge: Arc<BridgeStatus>,
    ) -> Result<Self, ClientError> {
        let client = BridgeClient::new(
            &config.bridge_url,
            config.bridge_ca_file.as_deref(),
            config.token.clone(),
            config.request_timeout,
        )?;
        Ok(Self {
            config,
            buffer,
            client,
            metrics,
            bridge,
        })
    }

    /// Forwards until `shutdown`; a batch in flight is finished (or abandoned to be resent on the
    /// next start — the buffer still holds it).
    ///
    /// While the bridge has one batch, the next is read and compressed when a full one is
    /// already waiting (readings after the last one in flight), so a draining buffer keeps the
    /// bridge busy. Batches are still sent
    /// one at a time, in order; the read-ahead batch is used only if the one before it was
    /// delivered, otherwise the buffer is read again from its oldest reading.
    ///
    /// A delivered batch is deleted from the buffer while the next one is already on its way
    /// (one deletion at a time; it holds nothing back but disk space).
    pub async fn run(self, shutdown: CancellationToken) {
        let heartbeat = tokio::spawn(heartbeats(self.heartbeat_context(), shutdown.clone()));
        let mut limit = self.config.max_batch_readings;
        let mut ready: Option<Outgoing> = None;
        let mut removing: Option<tokio::task::JoinHandle<bool>> = None;
        while !shutdown.is_cancelled() {
            let Some(current) = (match ready.take() {
                Some(batch) => Some(batch),
                None => {
                    // The next batch starts at the oldest reading: not before the batch just
                    // delivered is deleted, or it would be the oldest and go out twice.
                    if let Some(previous) = removing.take() {
                        let _ = previous.await;
                    }
                    self.next_batch(limit, &shutdown).await
                }
            }) else {
                continue;
            };
            let (outcome, next) = tokio::join!(
                self.deliver(&current, &shutdown),
                self.read_ahead(limit, &current, &shutdown),
            );
            match outcome {
                Sent::Delivered => {
                    limit = self.config.max_batch_readings;
                    ready = next;
                    let removed_before = match removing.take() {
                        Some(previous) => previous.await.unwrap_or(false),
                        None => true,
                    };
                    if !removed_before {
                        // The batch before is still in the buffer: deleting this one would leave
                        // an older `seq` as the highest (see the module doc). Both go out again.
                        ready = None;
                        continue;
                    }
                    let seqs = current.readings.iter().map(|s| s.seq).collect();
                    let buffer = self.buffer.clone();
                    let (stop, max_backoff) = (shutdown.clone(), self.config.max_backoff);
                    let removal = remove_delivered(buffer, seqs, stop, max_backoff);
                    removing = Some(tokio::spawn(removal));
                }
                Sent::Narrow(first) => limit = first,
                Sent::Done => limit = self.config.max_batch_readings,
            }
        }
        if let Some(last) = removing {
            let _ = last.await;
        }
        heartbeat.abort();
    }

    /// Waits (up to the linger time) for a full batch, then reads it. The waiting watches the
    /// buffer's depth gauge, so an idle or filling buffer costs no reads.
    async fn next_batch(&self, limit: usize, shutdown: &CancellationToken) -> Option<Outgoing> {
        let mut first_seen = None;
        loop {
            let depth = usize::try_from(self.buffer.gauges().depth.get()).unwrap_or(0);
            if depth > 0 {
                let since = *first_seen.get_or_insert_with(tokio::time::Instant::now);
                if depth >= limit || since.elapsed() >= self.config.linger {
                    break;
                }
            }
            if !sleep_or_cancel(Duration::from_millis(20), shutdown).await {
                return None;
            }
        }
        self.read(0, limit, shutdown).await
    }

    /// The next full batch after `in_flight`, if the buffer holds one already; no waiting.
    async fn read_ahead(
        &self,
        limit: usize,
        in_flight: &Outgoing,
        shutdown: &CancellationToken,
    ) -> Option<Outgoing> {
        let depth = usize::try_from(self.buffer.gauges().depth.get()).unwrap_or(0);
        if depth.saturating_sub(in_flight.readings.len()) < limit {
            return None;
        }
        self.read(in_flight.last_seq(), limit, shutdown).await
    }

    /// Reads up to `limit` readings after `after` and compresses them off the runtime's threads.
    async fn read(
        &self,
        after: u64,
        limit: usize,
        shutdown: &CancellationToken,
    ) -> Option<Outgoing> {
        let max_bytes = self.config.max_batch_bytes;
        let readings = match self.buffer.peek_after(after, limit, max_bytes).await {
            Ok(readings) if !readings.is_empty() => readings,
            Ok(_) => return None,
            Err(error) => {
                tracing::error!(%error, "cannot read the buffer");
                sleep_or_cancel(Duration::from_secs(1), shutdown).await;
                return None;
            }
        };
        let agent = self.config.agent_id.clone();
        let made = tokio::task::spawn_blocking(move || make_batch(readings, max_bytes, &agent));
        let (outgoing, damaged) = match made.await {
            Ok(made) => made,
            // The task itself failed (not the batch): read it again later.
            Err(error) => {
                tracing::error!(%error, "making a batch stopped; retrying");
                sleep_or_cancel(Duration::from_secs(1), shutdown).await;
                return None;
            }
        };
        if let Some((readings, reason)) = damaged {
            tracing::error!(readings = readings.len(), %reason, "quarantining stored readings that cannot be read");
            if let Err(error) = self.buffer.quarantine(readings, reason).await {
                tracing::error!(%error, "cannot quarantine; the readings stay buffered");
                sleep_or_cancel(Duration::from_secs(1), shutdown).await;
                return None;
            }
            self.metrics.batch("quarantined");
        }
        (!outgoing.readings.is_empty()).then_some(outgoing)
    }

    /// Sends one batch until it is delivered, narrowed or quarantined.
    async fn deliver(&self, outgoing: &Outgoing, shutdown: &CancellationToken) -> Sent {
        let batch = &outgoing.readings[..];
        let body = match &outgoing.body {
            Ok(body) => body,
            Err(reason) => return self.quarantine(batch, reason.clone(), shutdown).await,
        };
        let mut backoff = ExponentialBuilder::default()
            .with_jitter()
            .with_min_delay(self.config.min_backoff)
            .with_max_delay(self.config.max_backoff)
            .without_max_times()
            .build();
        loop {
            let outcome = self.attempt(body.clone()).await;
            self.bridge.set(!matches!(outcome, Outcome::Retry { .. }));
            match outcome {
                Outcome::Delivered => {
                    self.metrics.forwarded.inc_by(batch.len() as u64);
                    self.metrics.batch("delivered");
                    return Sent::Delivered;
                }
                Outcome::Quarantine { line, .. } if batch.len() > 1 => {
                    self.metrics.batch("narrowed");
                    return Sent::Narrow(narrowed(batch.len(), line));
                }
                Outcome::Quarantine { reason, .. } => {
                    return self.quarantine(batch, reason, shutdown).await;
                }
                Outcome::Split if batch.len() > 1 => {
                    self.metrics.batch("narrowed");
                    return Sent::Narrow(narrowed(batch.len(), None));
                }
                Outcome::Split => {
                    let reason = "a single reading is too large for the bridge".into();
                    return self.quarantine(batch, reason, shutdown).await;
                }
                Outcome::Retry { after } => {
                    self.metrics.batch("retry");
                    let delay = backoff
                        .next()
                        .unwrap_or(self.config.max_backoff)
                        .max(after.unwrap_or_default());
                    if !sleep_or_cancel(delay, shutdown).await {
                        return Sent::Done;
                    }
                }
            }
        }
    }

    async fn attempt(&self, body: Vec<u8>) -> Outcome {
        let request = self
            .client
            .post("/v1/batches", BATCH_CONTENT_TYPE, Some("gzip"), body);
        match request.await {
            Ok(answer) => {
                let status = answer.status;
                let retry_after = retry_after(&answer.headers);
                let text = answer.body;
                if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
                    tracing::error!(%status, "the bridge refuses this agent's token; readings stay buffered");
                } else if status != StatusCode::OK {
                    tracing::warn!(%status, body = %text.chars().take(200).collect::<String>(), "bridge did not accept the batch");
                }
                classify(Some(status), retry_after, &text)
            }
            Err(error) => {
                tracing::warn!(%error, "bridge unreachable; readings stay buffered");
                classify(None, None, "")
            }
        }
    }

    /// Sets a batch (in practice one reading) aside. When the buffer cannot, the batch stays and
    /// is sent again after a pause, not at once.
    async fn quarantine(
        &self,
        batch: &[Stored],
        reason: String,
        shutdown: &CancellationToken,
    ) -> Sent {
        tracing::error!(readings = batch.len(), %reason, "quarantining readings the bridge refused");
        let kept = batch
            .iter()
            .map(|s| (s.seq, s.envelope().unwrap_or_else(|_| s.record().to_vec())))
            .collect();
        match self.buffer.quarantine(kept, reason).await {
            Ok(()) => self.metrics.batch("quarantined"),
            Err(error) => {
                tracing::error!(%error, "cannot quarantine; the readings stay buffered");
                sleep_or_cancel(self.config.max_backoff, shutdown).await;
            }
        }
        Sent::Done
    }

    fn heartbeat_context(&self) -> HeartbeatContext {
        HeartbeatContext {
            client: self.client.clone(),
            buffer: self.buffer.clone(),
            config: self.config.clone(),
        }
    }
}

/// Deletes a delivered batch from the buffer, trying again while the disk refuses, waiting at
/// most 5 s (or `max_backoff`) between tries; `false` when it is left in the buffer (to be sent
/// again: duplicates, which PostgreSQL drops).
async fn remove_delivered(
    buffer: Buffer,
    seqs: Vec<u64>,
    shutdown: CancellationToken,
    max_backoff: Duration,
) -> bool {
    let max_delay = max_backoff.min(Duration::from_secs(5));
    let mut delay = Duration::from_millis(100);
    for _ in 0..REMOVE_ATTEMPTS {
        match buffer.remove(seqs.clone()).await {
            Ok(()) => return true,
            Err(BufferError::Stopped) => return false,
            Err(error) => {
                tracing::error!(%error, "delivered batch not removed from the buffer; trying again");
                if !sleep_or_cancel(delay, &shutdown).await {
                    break;
                }
                delay = (delay * 2).min(max_delay);
            }
        }
    }
    tracing::error!(
        readings = seqs.len(),
        "delivered batch left in the buffer; it will be sent again (duplicates, which PostgreSQL drops)"
    );
    false
}

/// How many readings of a refused batch of `len` to send next: those before the line the bridge
/// named (so they go through and the one at fault comes first next time), the one at fault alone
/// when it is the first, or half when no line was named.
fn narrowed(len: usize, line: Option<usize>) -> usize {
    match line {
        Some(line) if line <= len => (line - 1).max(1),
        _ => (len / 2).max(1),
    }
}

/// Sleeps; `false` if shutdown came first.
async fn sleep_or_cancel(duration: Duration, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(duration) => true,
        _ = shutdown.cancelled() => false,
    }
}

fn retry_after(headers: &hyper::header::HeaderMap) -> Option<Duration> {
    let seconds: u64 = headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(seconds.min(300)))
}

#[cfg(test)]
mod tests;
