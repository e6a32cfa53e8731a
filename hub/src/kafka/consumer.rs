//! The group consumer both roles read with.
//!
//! # Invariants
//! - Offsets are never stored by librdkafka on delivery to the application
//!   (`enable.auto.offset.store=false`): a role calls [`GroupConsumer::store`] for a batch only
//!   once its output is acknowledged (detector) or committed (writer). Auto-commit then commits
//!   what was stored, in the background and at shutdown (rdkafka `examples/at_least_once.rs`).
//! - Closing is bounded: after a broker restart librdkafka's destroy can block forever
//!   (DEVELOPERS.md), so the final commit and the drop run on a thread of their own.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::consumer::{CommitMode, Consumer as _, StreamConsumer};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::message::{Message as _, OwnedMessage};
use tokio_util::sync::CancellationToken;

use crate::config::Common;
use crate::metrics::Metrics;

/// Bound on one watermark query of the lag reporter.
const WATERMARK_TIMEOUT: Duration = Duration::from_secs(2);

/// Records taken from Kafka together, in the order they arrived.
pub type Batch = Vec<OwnedMessage>;

/// A subscribed consumer in a consumer group.
#[derive(Clone)]
pub struct GroupConsumer {
    inner: Arc<StreamConsumer>,
}

impl std::fmt::Debug for GroupConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupConsumer").finish_non_exhaustive()
    }
}

impl GroupConsumer {
    /// Creates the consumer and subscribes it to `topics` as a member of `group`.
    pub fn subscribe(common: &Common, group: &str, topics: &[&str]) -> KafkaResult<Self> {
        let mut client = ClientConfig::new();
        client
            .set("bootstrap.servers", &common.brokers)
            .set("client.id", format!("emberline-hub-{group}"))
            .set("auto.offset.reset", "earliest")
            .set("enable.partition.eof", "false")
            .set("reconnect.backoff.max.ms", "2000")
            .set("auto.commit.interval.ms", "1000");
        for (key, value) in &common.kafka_options {
            client.set(key, value);
        }
        // Set last: the delivery contract (design §3) depends on them.
        client
            .set("group.id", group)
            .set("enable.auto.commit", "true")
            .set("enable.auto.offset.store", "false");
        let consumer: StreamConsumer = client.create()?;
        consumer.subscribe(topics)?;
        Ok(Self {
            inner: Arc::new(consumer),
        })
    }

    /// Waits for a first record (or cancellation: `None`), then takes up to `max` records,
    /// waiting at most `linger` for more. A consumer error (broker away) is logged and waited out.
    pub async fn next_batch(
        &self,
        max: usize,
        linger: Duration,
        token: &CancellationToken,
    ) -> Option<Batch> {
        let first = loop {
            tokio::select! {
                _ = token.cancelled() => return None,
                received = self.inner.recv() => match received {
                    Ok(message) => break message.detach(),
                    Err(error) => consumer_error(&error).await,
                },
            }
        };
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + linger;
        while batch.len() < max {
            match tokio::time::timeout_at(deadline, self.inner.recv()).await {
                Ok(Ok(message)) => batch.push(message.detach()),
                Ok(Err(error)) => {
                    consumer_error(&error).await;
                    break;
                }
                Err(_) => break,
            }
        }
        Some(batch)
    }

    /// Marks every record of `batch` done: the next commit moves past them. A partition taken
    /// away by a rebalance meanwhile is skipped (its new owner re-reads, which is harmless).
    pub fn store(&self, batch: &[OwnedMessage]) {
        for ((topic, partition), offset) in last_offsets(batch) {
            if let Err(error) = self.inner.store_offset(topic, partition, offset) {
                tracing::debug!(%error, topic, partition, offset, "offset not stored (partition revoked?)");
            }
        }
    }

    /// Sets the per-partition lag gauges: high watermark minus this consumer's position.
    pub async fn report_lag(&self, metrics: &Metrics) {
        let consumer = self.inner.clone();
        let lags = tokio::task::spawn_blocking(move || partition_lags(&consumer)).await;
        match lags {
            Ok(Ok(lags)) => metrics.set_lags(&lags),
            Ok(Err(error)) => tracing::debug!(%error, "consumer lag unknown"),
            Err(error) => tracing::debug!(%error, "consumer lag task failed"),
        }
    }

    /// Commits the stored offsets and lets the consumer go, giving up after `timeout`.
    pub async fn close(self, timeout: Duration) {
        let (done, finished) = tokio::sync::oneshot::channel();
        let consumer = self.inner;
        let closing = move || {
            match consumer.commit_consumer_state(CommitMode::Sync) {
                Ok(()) => tracing::info!("final offsets committed"),
                Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {
                    tracing::info!("final offsets were already committed")
                }
                Err(error) => tracing::warn!(%error, "final offset commit failed"),
            }
            consumer.unsubscribe();
            drop(consumer);
            let _ = done.send(());
        };
        if let Err(error) = std::thread::Builder::new()
            .name("emberline-hub-close".into())
            .spawn(closing)
        {
            return tracing::warn!(%error, "cannot start a thread to close the consumer");
        }
        if tokio::time::timeout(timeout, finished).await.is_err() {
            tracing::warn!(
                ?timeout,
                "the consumer did not close in time; leaving it behind"
            );
        }
    }
}

/// The highest offset of each partition in `batch`.
pub fn last_offsets(batch: &[OwnedMessage]) -> HashMap<(&str, i32), i64> {
    let mut last: HashMap<(&str, i32), i64> = HashMap::new();
    for message in batch {
        let entry = last
            .entry((message.topic(), message.partition()))
            .or_insert(message.offset());
        *entry = (*entry).max(message.offset());
    }
    last
}

fn partition_lags(consumer: &StreamConsumer) -> KafkaResult<Vec<(String, i32, i64)>> {
    let positions = consumer.position()?;
    let mut lags = Vec::new();
    for element in positions.elements() {
        let Some(position) = element.offset().to_raw().filter(|p| *p >= 0) else {
            continue;
        };
        let (_, high) =
            consumer.fetch_watermarks(element.topic(), element.partition(), WATERMARK_TIMEOUT)?;
        lags.push((
            element.topic().to_owned(),
            element.partition(),
            (high - position).max(0),
        ));
    }
    Ok(lags)
}

async fn consumer_error(error: &KafkaError) {
    tracing::warn!(%error, "Kafka consumer error; retrying");
    tokio::time::sleep(Duration::from_millis(500)).await;
}
