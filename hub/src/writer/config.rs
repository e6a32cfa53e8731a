//! `emberline-hub write`'s flags.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;

use crate::config::{
    Common, ConfigError, DEFAULT_ANOMALY_DLQ_TOPIC, DEFAULT_ANOMALY_TOPIC, DEFAULT_DATABASE_URL,
    DEFAULT_RAW_TOPIC, DEFAULT_STATUS_TOPIC, check_topic, parse_duration,
};
use crate::db::DatabaseUrl;

/// `emberline-hub write`.
#[derive(Debug, Clone, Args)]
pub struct WriteConfig {
    #[command(flatten)]
    pub common: Common,
    /// Address of the HTTP listener (probes, metrics). Use 0.0.0.0:8092 in a cluster.
    #[arg(long, env = "EMBERLINE_WRITE_LISTEN", default_value = "127.0.0.1:8092")]
    pub listen: SocketAddr,
    /// PostgreSQL URL (a password in it is never logged).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, default_value = DEFAULT_DATABASE_URL)]
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
    pub(super) fn dlq_topic(&self, source: &str) -> Option<&str> {
        if source == self.anomaly_topic {
            Some(&self.anomaly_dlq_topic)
        } else if source == self.raw_topic {
            self.raw_dlq_topic.as_deref()
        } else {
            None
        }
    }
}
