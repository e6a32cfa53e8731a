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

pub mod decode;
pub mod retention;
pub mod store;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use rdkafka::message::{Message as _, OwnedMessage};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::config::{
    Common, ConfigError, DEFAULT_ANOMALY_DLQ_TOPIC, DEFAULT_ANOMALY_TOPIC, DEFAULT_DATABASE_URL,
    DEFAULT_RAW_TOPIC, DEFAULT_STATUS_TOPIC, check_topic, parse_duration,
};
use crate::db::{self, DatabaseUrl, Failure};
use crate::http::{AppState, Ready, ReadyFuture};
use crate::kafka::{DeadLetter, GroupConsumer, Producer};
use crate::metrics::Metrics;
use crate::role::{self, RoleError};
use decode::{Item, Rows, Topics};

/// `emberline-hub write`.
#[derive(Debug, Clone, Args)]
pub struct WriteConfig {
    #[command(flatten)]
    pub common: Common,
    /// Address of the HTTP listener (probes, metrics). Use 0.0.0.0:8092 in a cluster.
    #[arg(long, env = "EMBERLINE_WRITE_LISTEN", default_value = "127.0.0.1:8092")]
    pub listen: SocketAddr,
    /// PostgreSQL URL (a password in it is never logged).
    #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL)]
    pub database_url: DatabaseUrl,
    /// Most PostgreSQL connections.
    #[arg(long, env = "EMBERLINE_WRITE_MAX_CONNECTIONS", default_value_t = 4)]
    pub max_connections: u32,
    /// Apply the database migrations before starting.
    #[arg(long, env = "EMBERLINE_WRITE_MIGRATE")]
    pub migrate: bool,
    /// Consumer group; instances of one group share the partitions.
    #[arg(
        long,
        env = "EMBERLINE_WRITE_GROUP",
        default_value = "emberline-hub-write"
    )]
    pub group: String,
    #[arg(long, env = "EMBERLINE_WRITE_RAW_TOPIC", default_value = DEFAULT_RAW_TOPIC)]
    pub raw_topic: String,
    #[arg(long, env = "EMBERLINE_WRITE_ANOMALY_TOPIC", default_value = DEFAULT_ANOMALY_TOPIC)]
    pub anomaly_topic: String,
    #[arg(long, env = "EMBERLINE_WRITE_STATUS_TOPIC", default_value = DEFAULT_STATUS_TOPIC)]
    pub status_topic: String,
    /// Dead-letter topic for poison from the anomaly topic.
    #[arg(long, env = "EMBERLINE_WRITE_ANOMALY_DLQ_TOPIC", default_value = DEFAULT_ANOMALY_DLQ_TOPIC)]
    pub anomaly_dlq_topic: String,
    /// Dead-letter topic for poison from the raw topic; unset, the detector sends it there.
    #[arg(long, env = "EMBERLINE_WRITE_RAW_DLQ_TOPIC")]
    pub raw_dlq_topic: Option<String>,
    /// Delete readings and heartbeats older than this (e.g. 30d); unset, keep everything.
    #[arg(long, env = "EMBERLINE_WRITE_RETENTION", value_parser = parse_duration)]
    pub retention: Option<Duration>,
    /// How often retention runs.
    #[arg(long, env = "EMBERLINE_WRITE_RETENTION_EVERY", default_value = "1m", value_parser = parse_duration)]
    pub retention_every: Duration,
    /// Rows deleted per retention statement.
    #[arg(long, env = "EMBERLINE_WRITE_RETENTION_BATCH", default_value_t = 1000)]
    pub retention_batch: i64,
}

impl WriteConfig {
    /// The defaults, talking to `brokers` and the database at `database_url`.
    pub fn new(brokers: impl Into<String>, database_url: &str) -> Self {
        Self {
            common: Common::new(brokers),
            listen: crate::config::default_listen(8092),
            database_url: DatabaseUrl::from(database_url),
            max_connections: 4,
            migrate: false,
            group: "emberline-hub-write".into(),
            raw_topic: DEFAULT_RAW_TOPIC.into(),
            anomaly_topic: DEFAULT_ANOMALY_TOPIC.into(),
            status_topic: DEFAULT_STATUS_TOPIC.into(),
            anomaly_dlq_topic: DEFAULT_ANOMALY_DLQ_TOPIC.into(),
            raw_dlq_topic: None,
            retention: None,
            retention_every: Duration::from_secs(60),
            retention_batch: 1000,
        }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        self.common.validate()?;
        check_topic("--raw-topic", &self.raw_topic)?;
        check_topic("--anomaly-topic", &self.anomaly_topic)?;
        check_topic("--status-topic", &self.status_topic)?;
        check_topic("--anomaly-dlq-topic", &self.anomaly_dlq_topic)?;
        if let Some(topic) = &self.raw_dlq_topic {
            check_topic("--raw-dlq-topic", topic)?;
        }
        if !(1..=100).contains(&self.max_connections) {
            return Err(ConfigError(
                "--max-connections must be between 1 and 100".into(),
            ));
        }
        if !(1..=100_000).contains(&self.retention_batch) {
            return Err(ConfigError(
                "--retention-batch must be between 1 and 100000".into(),
            ));
        }
        Ok(())
    }

    /// The dead-letter topic for records of `source`, if the writer sends them to one.
    fn dlq_topic(&self, source: &str) -> Option<&str> {
        if source == self.anomaly_topic {
            Some(&self.anomaly_dlq_topic)
        } else if source == self.raw_topic {
            self.raw_dlq_topic.as_deref()
        } else {
            None
        }
    }
}

/// A writer, built and subscribed, not yet running.
#[derive(Debug)]
pub struct Writer {
    config: WriteConfig,
    topics: Topics,
    consumer: GroupConsumer,
    producer: Producer,
    pool: PgPool,
    metrics: Arc<Metrics>,
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
            metrics: Arc::new(Metrics::new()),
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
        let mut topics = vec![self.topics.raw.clone(), self.topics.anomaly.clone()];
        topics.extend([
            self.topics.status.clone(),
            self.config.anomaly_dlq_topic.clone(),
        ]);
        let ready = WriteReady {
            producer: self.producer.clone(),
            pool: self.pool.clone(),
            topics,
        };
        let state = AppState::new(self.metrics.clone(), Arc::new(ready));
        let mut tasks = role::background(listener, state, &self.consumer, &token);
        if let Some(max_age) = self.config.retention {
            let (pool, metrics) = (self.pool.clone(), self.metrics.clone());
            let (batch, every) = (self.config.retention_batch, self.config.retention_every);
            tasks.spawn(retention::run(
                pool,
                max_age,
                batch,
                every,
                metrics,
                token.clone(),
            ));
        }
        let stop = role::hard_stop(&token, self.config.common.shutdown_timeout / 2);
        self.consume(&token, &stop).await;
        role::finish(self.consumer, tasks, self.config.common.shutdown_timeout).await;
        self.pool.close().await;
        Ok(())
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
                records.push(letter.to_record(topic, "writer"));
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
