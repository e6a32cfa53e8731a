//! The hub's producer: idempotent, `acks=all`, and [`Producer::send_all`] answers only when Kafka
//! acknowledged every record.
//!
//! As in the bridge (DEVELOPERS.md): records never time out inside librdkafka
//! (`message.timeout.ms=0`) — a broker outage makes a batch wait, which is the pause the design
//! asks for, instead of a client-side epoch bump that Tansu 0.6.0 rejects forever — and a
//! delivery error replaces the producer with a fresh one (new producer id) before the caller
//! retries.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer as _};

use crate::config::Common;

/// Bound on one readiness check of the brokers.
const METADATA_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a replaced producer may take to deliver what it still holds.
const RETIRE_FLUSH: Duration = Duration::from_secs(5);
/// How long to wait for room when librdkafka's queue is full.
const QUEUE_FULL_PAUSE: Duration = Duration::from_millis(20);

/// One record to produce.
#[derive(Debug, Clone, PartialEq)]
pub struct OutRecord {
    pub topic: String,
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
    pub headers: Vec<(&'static str, Vec<u8>)>,
}

/// What each header adds besides its name and value: room for their length prefixes.
pub const HEADER_OVERHEAD: usize = 10;

impl OutRecord {
    /// What librdkafka counts against `message.max.bytes`: payload, key, headers (each
    /// header's name and value, with room for their length prefixes) and the record's framing.
    pub fn size(&self) -> usize {
        let headers: usize = self
            .headers
            .iter()
            .map(|(name, value)| name.len() + value.len() + HEADER_OVERHEAD)
            .sum();
        let key = self.key.as_ref().map_or(0, Vec::len);
        self.payload.len() + key + headers + emberline_service::kafka::RECORD_OVERHEAD
    }
}

/// Why a batch was not acknowledged. Every case is worth retrying.
#[derive(Debug, thiserror::Error)]
pub enum ProduceError {
    #[error("Kafka refused or lost a record: {0}")]
    Delivery(KafkaError),
    #[error("the producer went away before reporting delivery")]
    Canceled,
}

/// A cheaply cloned handle on the role's producer.
#[derive(Clone)]
pub struct Producer(Arc<Inner>);

struct Inner {
    client: ClientConfig,
    /// The producer in use; the lock is never held across an await.
    current: RwLock<Arc<FutureProducer>>,
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer").finish_non_exhaustive()
    }
}

impl Producer {
    /// Creates the producer; it connects in the background, so this works with the broker down.
    pub fn new(common: &Common, role: &str) -> Result<Self, KafkaError> {
        let mut client = ClientConfig::new();
        client
            .set("bootstrap.servers", &common.brokers)
            .set("client.id", format!("emberline-hub-{role}"))
            .set("compression.type", "lz4")
            .set("linger.ms", "5")
            .set("reconnect.backoff.max.ms", "2000");
        for (key, value) in &common.kafka_options {
            client.set(key, value);
        }
        client
            .set("message.timeout.ms", "0")
            .set("enable.idempotence", "true")
            .set("acks", "all");
        let producer = Arc::new(client.create::<FutureProducer>()?);
        Ok(Self(Arc::new(Inner {
            client,
            current: RwLock::new(producer),
        })))
    }

    fn current(&self) -> Arc<FutureProducer> {
        self.0
            .current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Produces every record in order; `Ok` once Kafka acknowledged them all. Waits as long as
    /// the brokers are away: the caller bounds it (cancellation).
    #[tracing::instrument(skip_all, fields(records = records.len()))]
    pub async fn send_all(&self, records: &[OutRecord]) -> Result<(), ProduceError> {
        let producer = self.current();
        let result = send_all(&producer, records).await;
        drop(producer);
        if let Err(ProduceError::Delivery(error)) = &result {
            self.replace(error);
        }
        result
    }

    fn replace(&self, reason: &KafkaError) {
        let fresh = match self.0.client.create::<FutureProducer>() {
            Ok(fresh) => Arc::new(fresh),
            Err(error) => return tracing::error!(%error, "cannot create a new Kafka producer"),
        };
        let old = {
            let mut current = self.0.current.write().unwrap_or_else(|e| e.into_inner());
            std::mem::replace(&mut *current, fresh)
        };
        tracing::warn!(%reason, "Kafka producer replaced after a delivery error");
        retire(old, RETIRE_FLUSH);
    }

    /// Flushes and lets the producer go on a thread of its own (bounded by `timeout`), so that
    /// no runtime thread waits on librdkafka's destroy. Call it with the last handle.
    pub fn close(self, timeout: Duration) {
        let producer = self.current();
        drop(self);
        retire(producer, timeout);
    }

    /// The brokers answer and every one of `topics` exists.
    pub async fn check(&self, topics: Vec<String>) -> Result<(), String> {
        let producer = self.current();
        let check = move || {
            emberline_service::kafka::topics_exist(producer.client(), &topics, METADATA_TIMEOUT)
        };
        tokio::task::spawn_blocking(check)
            .await
            .unwrap_or_else(|error| Err(format!("metadata check failed: {error}")))
    }
}

/// Enqueues every record in order, then waits for every acknowledgement.
async fn send_all(producer: &FutureProducer, records: &[OutRecord]) -> Result<(), ProduceError> {
    let mut deliveries = Vec::with_capacity(records.len());
    for record in records {
        deliveries.push(enqueue(producer, record).await?);
    }
    for delivery in deliveries {
        match delivery.await {
            Ok(Ok(_)) => {}
            Ok(Err((error, _))) => return Err(ProduceError::Delivery(error)),
            Err(_) => return Err(ProduceError::Canceled),
        }
    }
    Ok(())
}

/// Hands one record to librdkafka, waiting for room when its queue is full.
async fn enqueue(
    producer: &FutureProducer,
    record: &OutRecord,
) -> Result<DeliveryFuture, ProduceError> {
    loop {
        let mut headers = OwnedHeaders::new_with_capacity(record.headers.len());
        for (key, value) in &record.headers {
            headers = headers.insert(Header {
                key,
                value: Some(value),
            });
        }
        let mut message: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&record.topic)
            .payload(&record.payload[..])
            .headers(headers);
        if let Some(key) = &record.key {
            message = message.key(&key[..]);
        }
        match producer.send_result(message) {
            Ok(delivery) => return Ok(delivery),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                tokio::time::sleep(QUEUE_FULL_PAUSE).await;
            }
            Err((error, _)) => return Err(ProduceError::Delivery(error)),
        }
    }
}

/// Lets a replaced producer go on a thread of its own: librdkafka's destroy can block after a
/// broker restart (DEVELOPERS.md).
fn retire(producer: Arc<FutureProducer>, flush: Duration) {
    let retiring = move || {
        let _ = producer.flush(flush);
        drop(producer);
    };
    if let Err(error) = std::thread::Builder::new()
        .name("emberline-hub-retire".into())
        .spawn(retiring)
    {
        tracing::warn!(%error, "cannot start a thread to retire a Kafka producer");
    }
}
