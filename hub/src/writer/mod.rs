//! `emberline-hub write`: raw-data, anomaly-data and agent-status → PostgreSQL (design §5).
//!
//! A consumer-group member reads batches from the three topics, decodes every record
//! ([`decode`], pure) and writes the batch in one transaction ([`store`]): readings, their
//! classifications, latest state per sensor, heartbeats, latest state per agent, dead letters.
//!
//! # What a stored offset promises
//! The offsets of a batch are stored only after its transaction committed (and its dead letters
//! were acknowledged by the `.dlq` topic). PostgreSQL away or failing pauses the writer: the same
//! batch is retried with backoff until it commits — never skipped. Writes are idempotent, so a
//! batch re-read after a crash or a rebalance changes nothing.
//!
//! # Poison
//! A record that is not what its topic carries becomes a dead-letter row and goes to its `.dlq`
//! topic. The detector owns `raw-data.dlq` (it reads every raw record too), so by default the
//! writer sends only anomaly-data's poison to a topic (`--raw-dlq-topic` changes that); every
//! poison record gets a row. A batch the database refuses outright (a data error, not an outage)
//! is written record by record, and the records it still refuses become dead letters.

mod config;
pub mod decode;
pub mod retention;
pub mod store;

pub use config::WriteConfig;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::message::{Message as _, OwnedMessage};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::db::{self, Failure};
use crate::http::{AppState, Listening, Ready, ReadyFuture};
use crate::kafka::{DeadLetter, GroupConsumer, Producer};
use crate::metrics::Metrics;
use crate::role::{self, RoleError};
use decode::{Item, Rows, Topics};

/// A writer, built and subscribed, not yet running.
#[derive(Debug)]
pub struct Writer {
    config: WriteConfig,
    topics: Topics,
    consumer: GroupConsumer,
    producer: Producer,
    pool: PgPool,
    metrics: Arc<Metrics>,
    /// The HTTP side's TLS and bounds, checked at start.
    listening: Listening,
}

/// How a batch's transaction ended.
enum Stored {
    Committed,
    /// The database refuses the data itself.
    Refused(sqlx::Error),
}

impl Writer {
    /// Checks the configuration, migrates when asked, and subscribes.
    pub async fn new(config: WriteConfig) -> Result<Self, RoleError> {
        config.validate()?;
        // Before the database: a bad certificate must stop the start, not follow migrations.
        let listening = Listening::new(&config.common)?;
        let pool = db::pool(config.database_url.expose(), config.max_connections)?;
        if config.migrate {
            db::migrate(&pool).await?;
        }
        let topics = Topics {
            raw: config.raw_topic.clone(),
            anomaly: config.anomaly_topic.clone(),
            status: config.status_topic.clone(),
        };
        let subscribed = [topics.raw.as_str(), &topics.anomaly, &topics.status];
        let consumer = GroupConsumer::subscribe(&config.common, &config.group, &subscribed)?;
        let producer = Producer::new(&config.common, "write")?;
        Ok(Self {
            config,
            topics,
            consumer,
            producer,
            pool,
            metrics: Arc::new(Metrics::without_rules()),
            listening,
        })
    }

    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// Runs until `token` is cancelled: HTTP side, lag reporter, retention and the loop.
    pub async fn run(
        self,
        listener: tokio::net::TcpListener,
        token: CancellationToken,
    ) -> Result<(), RoleError> {
        let state = AppState::new(self.metrics.clone(), Arc::new(self.readiness()));
        let lag_interval = self.config.common.lag_interval;
        let http = (listener, self.listening.clone());
        let mut tasks = role::background(http, state, &self.consumer, lag_interval, &token);
        if let Some(max_age) = self.config.retention {
            let (pool, metrics) = (self.pool.clone(), self.metrics.clone());
            let (batch, every) = (self.config.retention_batch, self.config.retention_every);
            let pruning = retention::run(pool, max_age, (batch, every), metrics, token.clone());
            tasks.spawn(pruning);
        }
        let stop = role::hard_stop(&token, self.config.common.shutdown_timeout / 2);
        self.consume(&token, &stop).await;
        let timeout = self.config.common.shutdown_timeout;
        role::finish(self.consumer, tasks, timeout).await;
        self.producer.close(timeout / 4);
        self.pool.close().await;
        Ok(())
    }

    /// What `/readyz` checks: PostgreSQL, the brokers and the writer's topics.
    fn readiness(&self) -> WriteReady {
        let mut topics = vec![self.topics.raw.clone(), self.topics.anomaly.clone()];
        topics.extend([
            self.topics.status.clone(),
            self.config.anomaly_dlq_topic.clone(),
        ]);
        topics.extend(self.config.raw_dlq_topic.clone());
        WriteReady {
            producer: self.producer.clone(),
            pool: self.pool.clone(),
            topics,
        }
    }

    /// Until `token` is cancelled; the batch in hand then gets `stop`'s grace to finish.
    async fn consume(&self, token: &CancellationToken, stop: &CancellationToken) {
        let common = &self.config.common;
        while let Some(batch) = self
            .consumer
            .next_batch(common.batch_size, common.batch_linger, token)
            .await
        {
            let started = Instant::now();
            let items: Vec<Item> = batch
                .iter()
                .map(|m| decode::decode(&self.topics, m))
                .collect();
            if !self.handle(&batch, &items, stop).await {
                tracing::warn!(
                    records = batch.len(),
                    "shutting down before a batch was committed; it will be read again"
                );
                return;
            }
            self.consumer.store(&batch);
            self.count(&batch, started);
        }
    }

    /// Dead letters to their topics, then the batch's transaction; `false` when stopped first.
    async fn handle(
        &self,
        batch: &[OwnedMessage],
        items: &[Item],
        stop: &CancellationToken,
    ) -> bool {
        let dead = items.iter().filter_map(|item| match item {
            Item::Dead(letter) => Some(letter),
            _ => None,
        });
        if !self.send_dead(dead, stop).await {
            return false;
        }
        match self.store(&Rows::new(items), stop).await {
            Some(Stored::Committed) => true,
            Some(Stored::Refused(error)) => {
                tracing::warn!(%error, "the database refuses the batch; writing it record by record");
                self.isolate(batch, items, stop).await
            }
            None => false,
        }
    }

    /// Commits `rows`, retrying transient failures; `None` when stopped first.
    async fn store(&self, rows: &Rows<'_>, stop: &CancellationToken) -> Option<Stored> {
        role::retry("database", &self.metrics, stop, || async {
            match store::write(&self.pool, rows).await {
                Ok(()) => Ok(Stored::Committed),
                Err(error) if db::failure(&error) == Failure::Permanent => {
                    Ok(Stored::Refused(error))
                }
                Err(error) => Err(error),
            }
        })
        .await
    }

    /// One transaction per record; a record still refused becomes a dead letter.
    async fn isolate(
        &self,
        batch: &[OwnedMessage],
        items: &[Item],
        stop: &CancellationToken,
    ) -> bool {
        for (message, item) in batch.iter().zip(items) {
            let error = match self.store(&Rows::new([item]), stop).await {
                Some(Stored::Committed) => continue,
                Some(Stored::Refused(error)) => error,
                None => return false,
            };
            let letter = DeadLetter::new(message, "rejected_by_database", error.to_string());
            let dead = Item::Dead(letter.clone());
            if !self.send_dead([&letter], stop).await {
                return false;
            }
            match self.store(&Rows::new([&dead]), stop).await {
                Some(Stored::Committed) => {}
                Some(Stored::Refused(error)) => {
                    tracing::error!(%error, topic = %letter.source_topic, offset = letter.source_offset, "cannot record a dead letter in the database");
                }
                None => return false,
            }
        }
        true
    }

    /// Produces the dead letters whose source has a dead-letter topic; `false` when stopped.
    async fn send_dead<'a>(
        &self,
        dead: impl IntoIterator<Item = &'a DeadLetter>,
        stop: &CancellationToken,
    ) -> bool {
        let mut records = Vec::new();
        for letter in dead {
            tracing::warn!(topic = %letter.source_topic, partition = letter.source_partition, offset = letter.source_offset, error = %letter.error, "dead letter");
            self.metrics
                .dead_letter(&letter.source_topic, letter.error_code);
            if let Some(topic) = self.config.dlq_topic(&letter.source_topic) {
                let max = self.config.common.max_record_bytes();
                records.push(letter.to_record(topic, "writer", max));
            }
        }
        if records.is_empty() {
            return true;
        }
        let sent = role::retry("kafka", &self.metrics, stop, || {
            self.producer.send_all(&records)
        });
        sent.await.is_some()
    }

    fn count(&self, batch: &[OwnedMessage], started: Instant) {
        let mut per_topic: HashMap<&str, u64> = HashMap::new();
        for message in batch {
            *per_topic.entry(message.topic()).or_default() += 1;
        }
        for (topic, done) in per_topic {
            self.metrics.records_done(topic, done);
        }
        self.metrics.batch_records.observe(batch.len() as f64);
        self.metrics
            .batch_seconds
            .observe(started.elapsed().as_secs_f64());
    }
}

/// Ready when PostgreSQL answers, the brokers answer and the writer's topics exist.
struct WriteReady {
    producer: Producer,
    pool: PgPool,
    topics: Vec<String>,
}

impl Ready for WriteReady {
    fn check(&self) -> ReadyFuture<'_> {
        Box::pin(async move {
            let ping = sqlx::query("SELECT 1").execute(&self.pool);
            match tokio::time::timeout(Duration::from_secs(2), ping).await {
                Ok(Ok(_)) => {}
                Ok(Err(error)) => return Err(format!("PostgreSQL does not answer: {error}")),
                Err(_) => return Err("PostgreSQL does not answer within 2s".into()),
            }
            self.producer.check(self.topics.clone()).await
        })
    }
}
