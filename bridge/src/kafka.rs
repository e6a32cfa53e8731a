//! The Kafka side: an idempotent `acks=all` producer that reports a batch done only when every
//! record is acknowledged.
//!
//! Two choices keep the producer usable through broker outages:
//! - Records never time out inside librdkafka (`message.timeout.ms=0`); the bridge's own timeout
//!   answers 503 and the records stay queued (bounded by `queue.buffering.max.kbytes`) until the
//!   broker is back — at worst duplicates of what the agent resends, which PostgreSQL absorbs. A
//!   librdkafka timeout would make the idempotent producer bump its epoch client-side (KIP-360),
//!   which Tansu 0.6.0 rejects forever (its SQLite store looks the new epoch up and answers
//!   `UNKNOWN_SERVER_ERROR`).
//! - A delivery error replaces the producer with a fresh one (new producer id), once per
//!   failure generation, so a wedged or fenced producer heals instead of failing every batch.
//!   Errors of the topic or the record (missing topic, no permission, too large) do not: any
//!   producer would meet them again, and a lasting one (say, no ACL on `agent-status`) would
//!   otherwise replace the producer at every heartbeat.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer as _};

use crate::body::Record;
use crate::config::Config;

/// Bound on one readiness check, within a usual probe timeout of a few seconds.
const METADATA_TIMEOUT: Duration = Duration::from_secs(2);

/// Why a batch was not acknowledged. Every case is worth retrying later.
#[derive(Debug, thiserror::Error)]
pub enum ProduceError {
    #[error("the producer's queue is full")]
    QueueFull,
    #[error("Kafka refused or lost a record: {0}")]
    Delivery(KafkaError),
    #[error("Kafka did not acknowledge within {0:?}")]
    TimedOut(Duration),
    #[error("the producer was replaced before reporting delivery")]
    Canceled,
}

/// A cheaply cloned handle on the process's producer.
#[derive(Clone)]
pub struct Kafka(Arc<Inner>);

struct Inner {
    client: ClientConfig,
    /// How long a batch may wait for its acknowledgements.
    timeout: Duration,
    /// The producer in use and its generation; the lock is never held across an await.
    current: RwLock<(u64, Arc<FutureProducer>)>,
}

impl std::fmt::Debug for Kafka {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kafka")
            .field("timeout", &self.0.timeout)
            .finish_non_exhaustive()
    }
}

impl Kafka {
    /// Creates the producer; it connects in the background, so this succeeds with the broker down.
    pub fn new(config: &Config) -> Result<Self, KafkaError> {
        let client = client_config(config);
        let producer = Arc::new(client.create()?);
        Ok(Self(Arc::new(Inner {
            client,
            timeout: config.produce_timeout,
            current: RwLock::new((0, producer)),
        })))
    }

    fn current(&self) -> (u64, Arc<FutureProducer>) {
        let current = self.0.current.read().unwrap_or_else(|e| e.into_inner());
        (current.0, current.1.clone())
    }

    /// Produces `records` to `topic` in order; `Ok` only once Kafka acknowledged every one.
    #[tracing::instrument(skip_all, fields(topic, records = records.len()))]
    pub async fn produce_all(&self, topic: &str, records: &[Record]) -> Result<(), ProduceError> {
        let (generation, producer) = self.current();
        let result = send_all(&producer, topic, records, self.0.timeout).await;
        drop(producer);
        if let Err(ProduceError::Delivery(error)) = &result
            && a_new_producer_may_help(error)
        {
            self.replace(generation, error);
        }
        result
    }

    /// Swaps in a fresh producer unless another request already did for this generation.
    fn replace(&self, generation: u64, reason: &KafkaError) {
        let fresh = match self.0.client.create::<FutureProducer>() {
            Ok(fresh) => Arc::new(fresh),
            Err(error) => return tracing::error!(%error, "cannot create a new Kafka producer"),
        };
        let old = {
            let mut current = self.0.current.write().unwrap_or_else(|e| e.into_inner());
            if current.0 != generation {
                drop(current);
                return retire(fresh, Duration::ZERO);
            }
            std::mem::replace(&mut *current, (generation + 1, fresh)).1
        };
        tracing::warn!(%reason, generation = generation + 1, "Kafka producer replaced after a delivery error");
        retire(old, self.0.timeout + Duration::from_secs(5));
    }

    /// A producer in a fatal state can never deliver again.
    pub fn fatal_error(&self) -> Option<String> {
        let (_, producer) = self.current();
        let fatal = producer.client().fatal_error();
        fatal.map(|(code, reason)| format!("{code:?}: {reason}"))
    }

    /// Asks the brokers for their metadata: reachable, and every one of `topics` exists.
    pub async fn check(&self, topics: Vec<String>) -> Result<(), String> {
        let (_, producer) = self.current();
        let check = move || {
            emberline_service::kafka::topics_exist(producer.client(), &topics, METADATA_TIMEOUT)
        };
        tokio::task::spawn_blocking(check)
            .await
            .unwrap_or_else(|error| Err(format!("metadata check failed: {error}")))
    }

    /// Waits up to `timeout` for queued records to be delivered.
    pub async fn flush(&self, timeout: Duration) -> Result<(), String> {
        let (_, producer) = self.current();
        tokio::task::spawn_blocking(move || producer.flush(timeout))
            .await
            .map_err(|error| error.to_string())?
            .map_err(|error| error.to_string())
    }
}

fn client_config(config: &Config) -> ClientConfig {
    let queue_kbytes = (config.max_in_flight_bytes / 1024).max(1);
    let mut client = ClientConfig::new();
    client
        .set("bootstrap.servers", &config.brokers)
        .set("client.id", "emberline-bridge")
        .set("compression.type", "lz4")
        .set("linger.ms", "5")
        .set("reconnect.backoff.max.ms", "2000")
        .set("queue.buffering.max.messages", "1000000")
        // librdkafka's own copy of queued records is bounded like the bridge's.
        .set("queue.buffering.max.kbytes", queue_kbytes.to_string())
        .set("message.timeout.ms", "0");
    for (key, value) in &config.kafka_options {
        client.set(key, value);
    }
    // Set last: the acknowledgement contract (design §3) depends on them.
    client.set("enable.idempotence", "true").set("acks", "all");
    client
}

/// Enqueues every record in order, then waits for every acknowledgement, up to `timeout`.
async fn send_all(
    producer: &FutureProducer,
    topic: &str,
    records: &[Record],
    timeout: Duration,
) -> Result<(), ProduceError> {
    let mut deliveries = Vec::with_capacity(records.len());
    for record in records {
        let message = FutureRecord::to(topic)
            .key(record.key.as_str())
            .payload(&record.payload[..]);
        let delivery = producer
            .send_result(message)
            .map_err(|(error, _)| match error {
                KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull) => {
                    ProduceError::QueueFull
                }
                other => ProduceError::Delivery(other),
            })?;
        deliveries.push(delivery);
    }
    let all_acknowledged = async {
        for delivery in deliveries {
            match delivery.await {
                Ok(Ok(_)) => {}
                Ok(Err((error, _))) => return Err(ProduceError::Delivery(error)),
                Err(_) => return Err(ProduceError::Canceled),
            }
        }
        Ok(())
    };
    tokio::time::timeout(timeout, all_acknowledged)
        .await
        .map_err(|_| ProduceError::TimedOut(timeout))?
}

/// Whether a fresh producer could succeed where this one failed: not for errors that belong to
/// the topic or the record, which every producer would meet again.
fn a_new_producer_may_help(error: &KafkaError) -> bool {
    use RDKafkaErrorCode::{
        ClusterAuthorizationFailed, InvalidMessageSize, InvalidRecord, InvalidTopic,
        MessageBatchTooLarge, MessageSizeTooLarge, TopicAuthorizationFailed, UnknownPartition,
        UnknownTopic, UnknownTopicOrPartition,
    };
    !matches!(
        error.rdkafka_error_code(),
        Some(
            UnknownTopic
                | UnknownPartition
                | UnknownTopicOrPartition
                | InvalidTopic
                | TopicAuthorizationFailed
                | ClusterAuthorizationFailed
                | MessageSizeTooLarge
                | InvalidMessageSize
                | MessageBatchTooLarge
                | InvalidRecord
        )
    )
}

/// Lets a producer go on a thread of its own once no request holds it (or after `wait`):
/// librdkafka's destroy can block after a broker restart (DEVELOPERS.md), and no request or
/// runtime thread may wait on it.
fn retire(producer: Arc<FutureProducer>, wait: Duration) {
    let retiring = move || {
        let started = Instant::now();
        while Arc::strong_count(&producer) > 1 && started.elapsed() < wait {
            std::thread::sleep(Duration::from_millis(50));
        }
        drop(producer);
    };
    if let Err(error) = std::thread::Builder::new()
        .name("emberline-bridge-retire".into())
        .spawn(retiring)
    {
        tracing::warn!(%error, "cannot start a thread to retire a Kafka producer");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_errors_of_the_producer_itself_replace_it() {
        let delivery = |code| KafkaError::MessageProduction(code);
        for code in [
            RDKafkaErrorCode::Unknown,
            RDKafkaErrorCode::OutOfOrderSequenceNumber,
            RDKafkaErrorCode::InvalidProducerEpoch,
            RDKafkaErrorCode::UnknownProducerId,
            RDKafkaErrorCode::MessageTimedOut,
            RDKafkaErrorCode::Fatal,
        ] {
            assert!(a_new_producer_may_help(&delivery(code)), "{code:?}");
        }
        for code in [
            RDKafkaErrorCode::UnknownTopicOrPartition,
            RDKafkaErrorCode::TopicAuthorizationFailed,
            RDKafkaErrorCode::MessageSizeTooLarge,
        ] {
            assert!(!a_new_producer_may_help(&delivery(code)), "{code:?}");
        }
    }
}
