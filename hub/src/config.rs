//! Configuration: one clap subcommand per role, every flag with an `EMBERLINE_*` twin and a
//! default that works on a laptop (the local stack's broker and PostgreSQL). Checked once at
//! start by [`Kafka::validate`] and the roles' `validate`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
pub use emberline_service::{LogFormat, parse_duration};

pub const DEFAULT_BROKERS: &str = "127.0.0.1:9092";
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
pub const DEFAULT_RAW_TOPIC: &str = "raw-data";
pub const DEFAULT_ANOMALY_TOPIC: &str = "anomaly-data";
pub const DEFAULT_STATUS_TOPIC: &str = "agent-status";
pub const DEFAULT_RAW_DLQ_TOPIC: &str = "raw-data.dlq";
pub const DEFAULT_ANOMALY_DLQ_TOPIC: &str = "anomaly-data.dlq";

/// librdkafka settings the delivery contract depends on; `--kafka-option` may not touch them.
const PROTECTED_KAFKA_OPTIONS: [&str; 8] = [
    "enable.idempotence",
    "acks",
    "request.required.acks",
    "bootstrap.servers",
    "group.id",
    "enable.auto.offset.store",
    "enable.auto.commit",
    "message.timeout.ms",
];

/// A configuration a user must fix; the message says how.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// `emberline-hub`: the central roles — detector, PostgreSQL writer, schema migrations.
#[derive(Debug, Clone, Parser)]
#[command(version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Log format.
    #[arg(long, global = true, env = "EMBERLINE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Classify every reading of raw-data and publish it to anomaly-data.
    Detect(crate::detector::DetectConfig),
    /// Store raw-data, anomaly-data and agent-status in PostgreSQL.
    Write(crate::writer::WriteConfig),
    /// Apply the database migrations and exit.
    Migrate(MigrateConfig),
}

/// `emberline-hub migrate`.
#[derive(Debug, Clone, Args)]
pub struct MigrateConfig {
    /// PostgreSQL URL (a password in it is never logged).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, default_value = DEFAULT_DATABASE_URL)]
    pub database_url: crate::db::DatabaseUrl,
}

/// What both roles need of Kafka and of their HTTP side.
#[derive(Debug, Clone, Args)]
pub struct Common {
    /// PEM certificate chain (leaf first) for TLS on the HTTP listener (probes, metrics); with
    /// --tls-key. Without both the listener speaks plain HTTP.
    #[arg(long, env = "EMBERLINE_HUB_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of --tls-cert.
    #[arg(long, env = "EMBERLINE_HUB_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// How long a client may take to send a whole request head (and, with TLS, to finish the
    /// handshake) before the connection is closed; also how long an idle connection is kept.
    #[arg(long, env = "EMBERLINE_HUB_HEADER_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub header_timeout: Duration,
    /// How long a client may take, once its request head is in, to send the whole body; past
    /// it the answer is 408 and the connection is closed.
    #[arg(long, env = "EMBERLINE_HUB_BODY_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub body_timeout: Duration,
    /// Kafka bootstrap servers, comma-separated host:port.
    #[arg(long, env = "EMBERLINE_KAFKA_BROKERS", default_value = DEFAULT_BROKERS)]
    pub brokers: String,
    /// Most records handled as one batch (one produce round, one transaction).
    #[arg(long, env = "EMBERLINE_HUB_BATCH_SIZE", default_value_t = 500)]
    pub batch_size: usize,
    /// How long a batch waits for more records after its first one (e.g. 20ms).
    #[arg(long, env = "EMBERLINE_HUB_BATCH_LINGER", default_value = "20ms", value_parser = parse_duration)]
    pub batch_linger: Duration,
    /// Bound on a graceful shutdown: finishing the batch in hand and committing offsets.
    #[arg(long, env = "EMBERLINE_HUB_SHUTDOWN_TIMEOUT", default_value = "20s", value_parser = parse_duration)]
    pub shutdown_timeout: Duration,
    /// How often the per-partition consumer lag gauges are refreshed.
    #[arg(long, env = "EMBERLINE_HUB_LAG_INTERVAL", default_value = "10s", value_parser = parse_duration)]
    pub lag_interval: Duration,
    /// Extra librdkafka settings, `key=value` (repeat, or comma-separate in the env twin).
    #[arg(long = "kafka-option", env = "EMBERLINE_HUB_KAFKA_OPTIONS", hide_env_values = true, value_delimiter = ',', value_parser = parse_key_value)]
    pub kafka_options: Vec<(String, String)>,
}

impl Common {
    /// The largest record the role's producer sends (`message.max.bytes`, see
    /// [`emberline_service::kafka::max_record_bytes`]).
    pub fn max_record_bytes(&self) -> usize {
        emberline_service::kafka::max_record_bytes(&self.kafka_options)
    }

    /// The defaults, talking to `brokers`.
    pub fn new(brokers: impl Into<String>) -> Self {
        Self {
            tls_cert: None,
            tls_key: None,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            brokers: brokers.into(),
            batch_size: 500,
            batch_linger: Duration::from_millis(20),
            shutdown_timeout: Duration::from_secs(20),
            lag_interval: Duration::from_secs(10),
            kafka_options: Vec::new(),
        }
    }

    /// Checks what does not need the network.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.brokers.split(',').all(|b| b.trim().is_empty()) {
            return invalid("--brokers is empty: give at least one host:port, e.g. 127.0.0.1:9092");
        }
        if !(1..=100_000).contains(&self.batch_size) {
            return invalid("--batch-size must be between 1 and 100000");
        }
        if self.batch_linger > Duration::from_secs(10) {
            return invalid("--batch-linger must be at most 10s");
        }
        if self.lag_interval < Duration::from_millis(100) {
            return invalid("--lag-interval must be at least 100ms");
        }
        if self.shutdown_timeout < Duration::from_secs(1) {
            return invalid("--shutdown-timeout must be at least 1s");
        }
        emberline_service::check_http_timeouts(self.header_timeout, self.body_timeout)
            .map_err(ConfigError)?;
        match self
            .kafka_options
            .iter()
            .find(|(key, _)| PROTECTED_KAFKA_OPTIONS.contains(&key.as_str()))
        {
            Some((key, _)) => Err(ConfigError(format!(
                "--kafka-option cannot set {key}: offsets, acknowledgements and the group are the hub's to manage"
            ))),
            None => Ok(()),
        }
    }
}

fn invalid(message: &str) -> Result<(), ConfigError> {
    Err(ConfigError(message.to_owned()))
}

/// Checks a topic name, naming the flag it came from.
pub fn check_topic(flag: &str, name: &str) -> Result<(), ConfigError> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if name.is_empty() || name.len() > 249 || !name.chars().all(allowed) || name == "." {
        return Err(ConfigError(format!(
            "{flag} {name:?} is not a Kafka topic name: use 1 to 249 letters, digits, '.', '_' or '-'"
        )));
    }
    Ok(())
}

/// The address of a role's HTTP listener (probes and metrics).
pub fn default_listen(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// `key=value`.
pub fn parse_key_value(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_owned(), value.trim().to_owned()))
        }
        _ => Err(format!("{text:?} is not key=value")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_a_person_writes_them() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn protected_kafka_options_are_refused() {
        let mut common = Common::new("127.0.0.1:9092");
        assert!(common.validate().is_ok());
        common.kafka_options = vec![("enable.auto.offset.store".into(), "true".into())];
        let error = common.validate().unwrap_err().to_string();
        assert!(error.contains("enable.auto.offset.store"), "{error}");
    }

    #[test]
    fn the_command_line_parses() {
        Cli::try_parse_from(["emberline-hub", "detect", "--profile", "seed-compat"]).unwrap();
        Cli::try_parse_from(["emberline-hub", "write", "--migrate"]).unwrap();
        Cli::try_parse_from(["emberline-hub", "migrate"]).unwrap();
    }
}
