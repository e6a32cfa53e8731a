//! Configuration: flags with `EMBERLINE_*` environment twins, checked once at start.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
pub use emberline_service::{LogFormat, parse_duration};

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8081";
pub const DEFAULT_BROKERS: &str = "127.0.0.1:9092";
pub const DEFAULT_RAW_TOPIC: &str = "raw-data";
pub const DEFAULT_STATUS_TOPIC: &str = "agent-status";
pub const MIB: u64 = 1024 * 1024;

/// Largest value of any byte limit: permits are counted in `u32` steps.
const MAX_LIMIT_BYTES: u64 = u32::MAX as u64;
/// librdkafka settings the acknowledgement contract depends on; `--kafka-option` may not touch them.
const PROTECTED_KAFKA_OPTIONS: [&str; 4] = [
    "enable.idempotence",
    "acks",
    "request.required.acks",
    "bootstrap.servers",
];

/// `emberline-bridge`: takes batches of readings from agents over HTTP and produces them to Kafka.
#[derive(Debug, Clone, Parser)]
#[command(version, about)]
pub struct Config {
    /// Address of the HTTP listener (agents, probes, metrics). Use 0.0.0.0:8081 in a cluster.
    #[arg(long, env = "EMBERLINE_BRIDGE_LISTEN", default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// PEM certificate chain (leaf first) for TLS on the listener; with --tls-key. Without both
    /// the bridge speaks plain HTTP (agents then use http:// URLs).
    #[arg(long, env = "EMBERLINE_BRIDGE_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of --tls-cert.
    #[arg(long, env = "EMBERLINE_BRIDGE_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// How long a client may take to send a whole request head (and, with TLS, to finish the
    /// handshake) before the connection is closed: slow clients cannot hold connections.
    #[arg(long, env = "EMBERLINE_BRIDGE_HEADER_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub header_timeout: Duration,
    /// How long a client may take, once its request head is in, to send the whole body (however
    /// it trickles); past it the answer is 408 and the connection is closed. The agent's
    /// forwarder gives up on a request after 30 s, so a longer bound only keeps dead uploads.
    #[arg(long, env = "EMBERLINE_BRIDGE_BODY_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub body_timeout: Duration,
    /// Kafka bootstrap servers, comma-separated host:port.
    #[arg(long, env = "EMBERLINE_KAFKA_BROKERS", default_value = DEFAULT_BROKERS)]
    pub brokers: String,
    /// Topic for readings.
    #[arg(long, env = "EMBERLINE_BRIDGE_RAW_TOPIC", default_value = DEFAULT_RAW_TOPIC)]
    pub raw_topic: String,
    /// Topic for agent heartbeats.
    #[arg(long, env = "EMBERLINE_BRIDGE_STATUS_TOPIC", default_value = DEFAULT_STATUS_TOPIC)]
    pub status_topic: String,
    /// File of `agent_id token` lines (`#` starts a comment). Without it every request is accepted.
    #[arg(long, env = "EMBERLINE_BRIDGE_TOKENS_FILE")]
    pub tokens_file: Option<PathBuf>,
    /// Largest request body as sent (compressed), in bytes; larger bodies get 413.
    #[arg(long, env = "EMBERLINE_BRIDGE_MAX_BODY_BYTES", default_value_t = 8 * MIB)]
    pub max_body_bytes: u64,
    /// Largest batch after decompression, in bytes (guards against gzip bombs); larger gets 413.
    #[arg(long, env = "EMBERLINE_BRIDGE_MAX_BATCH_BYTES", default_value_t = 32 * MIB)]
    pub max_batch_bytes: u64,
    /// Bytes of request bodies held at once across all requests; past it, 503 + Retry-After.
    #[arg(long, env = "EMBERLINE_BRIDGE_MAX_IN_FLIGHT_BYTES", default_value_t = 64 * MIB)]
    pub max_in_flight_bytes: u64,
    /// How long Kafka may take to acknowledge a batch before the answer is 503 (e.g. 10s, 500ms).
    #[arg(long, env = "EMBERLINE_BRIDGE_PRODUCE_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub produce_timeout: Duration,
    /// Seconds sent in Retry-After with every 503.
    #[arg(
        long,
        env = "EMBERLINE_BRIDGE_RETRY_AFTER_SECONDS",
        default_value_t = 2
    )]
    pub retry_after_seconds: u32,
    /// Bound on a graceful shutdown: finishing in-flight batches and flushing the producer.
    #[arg(long, env = "EMBERLINE_BRIDGE_SHUTDOWN_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub shutdown_timeout: Duration,
    /// Extra librdkafka settings, `key=value` (repeat, or comma-separate in the env twin), e.g.
    /// `security.protocol=ssl`.
    #[arg(long = "kafka-option", env = "EMBERLINE_BRIDGE_KAFKA_OPTIONS", hide_env_values = true, value_delimiter = ',', value_parser = parse_key_value)]
    pub kafka_options: Vec<(String, String)>,
    /// Log format.
    #[arg(long, env = "EMBERLINE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// A configuration a user must fix; the message says how.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0}")]
    Invalid(String),
    #[error("cannot read the tokens file {path}: {error}")]
    TokensFile {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("the tokens file {path}, line {line}: {reason}")]
    TokensLine {
        path: PathBuf,
        line: usize,
        reason: String,
    },
}

impl Config {
    /// The defaults, talking to `brokers`: what a laptop run and the tests start from.
    pub fn new(brokers: impl Into<String>) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8081)),
            tls_cert: None,
            tls_key: None,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            brokers: brokers.into(),
            raw_topic: DEFAULT_RAW_TOPIC.into(),
            status_topic: DEFAULT_STATUS_TOPIC.into(),
            tokens_file: None,
            max_body_bytes: 8 * MIB,
            max_batch_bytes: 32 * MIB,
            max_in_flight_bytes: 64 * MIB,
            produce_timeout: Duration::from_secs(10),
            retry_after_seconds: 2,
            shutdown_timeout: Duration::from_secs(30),
            kafka_options: Vec::new(),
            log_format: LogFormat::Text,
        }
    }

    /// The largest record (payload and key) the producer will send: `message.max.bytes` from
    /// `--kafka-option`, or librdkafka's default. A larger one fails at `send` every time, so a
    /// batch holding one is refused with 413 before anything of it is produced.
    pub fn max_record_bytes(&self) -> usize {
        emberline_service::kafka::max_record_bytes(&self.kafka_options)
    }

    /// Checks everything that does not need the network, with sentences a user understands.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |message: String| Err(ConfigError::Invalid(message));
        if self.brokers.split(',').all(|b| b.trim().is_empty()) {
            return invalid(
                "--brokers is empty: give at least one host:port, e.g. 127.0.0.1:9092".into(),
            );
        }
        check_topic("--raw-topic", &self.raw_topic)?;
        check_topic("--status-topic", &self.status_topic)?;
        self.check_limits()?;
        if !(Duration::from_millis(100)..=Duration::from_secs(300)).contains(&self.produce_timeout)
        {
            return invalid("--produce-timeout must be between 100ms and 300s".into());
        }
        emberline_service::check_http_timeouts(self.header_timeout, self.body_timeout)
            .map_err(ConfigError::Invalid)?;
        if self.shutdown_timeout < Duration::from_secs(1) {
            return invalid(
                "--shutdown-timeout must be at least 1s, to let in-flight batches finish".into(),
            );
        }
        if let Some((key, _)) = self
            .kafka_options
            .iter()
            .find(|(key, _)| PROTECTED_KAFKA_OPTIONS.contains(&key.as_str()))
        {
            return invalid(format!(
                "--kafka-option cannot set {key}: a 200 promises acks=all from an idempotent producer, and the brokers come from --brokers"
            ));
        }
        Ok(())
    }

    fn check_limits(&self) -> Result<(), ConfigError> {
        let (body, batch, in_flight) = (
            self.max_body_bytes,
            self.max_batch_bytes,
            self.max_in_flight_bytes,
        );
        let message = if body < 1024 {
            "--max-body-bytes must be at least 1024".to_owned()
        } else if batch < body {
            format!(
                "--max-batch-bytes ({batch}) must be at least --max-body-bytes ({body}): an uncompressed body is the batch itself"
            )
        } else if in_flight < body + batch {
            format!(
                "--max-in-flight-bytes ({in_flight}) must be at least --max-body-bytes + --max-batch-bytes ({}), or a large compressed batch could never be admitted",
                body + batch
            )
        } else if in_flight > MAX_LIMIT_BYTES {
            format!("--max-in-flight-bytes ({in_flight}) must be at most {MAX_LIMIT_BYTES} (4 GiB)")
        } else {
            return Ok(());
        };
        Err(ConfigError::Invalid(message))
    }
}

fn check_topic(flag: &str, name: &str) -> Result<(), ConfigError> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if name.is_empty()
        || name.len() > 249
        || !name.chars().all(allowed)
        || name == "."
        || name == ".."
    {
        return Err(ConfigError::Invalid(format!(
            "{flag} {name:?} is not a Kafka topic name: use 1 to 249 letters, digits, '.', '_' or '-'"
        )));
    }
    Ok(())
}

fn parse_key_value(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_owned(), value.trim().to_owned()))
        }
        _ => Err(format!(
            "{text:?} must look like key=value, e.g. security.protocol=ssl"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_match_the_flags() {
        Config::new(DEFAULT_BROKERS).validate().unwrap();
        let parsed = Config::try_parse_from(["emberline-bridge"]).unwrap();
        assert_eq!(
            format!("{parsed:?}"),
            format!("{:?}", Config::new(DEFAULT_BROKERS))
        );
    }

    #[test]
    fn bad_settings_are_explained() {
        let mut config = Config::new("127.0.0.1:9092");
        config.max_in_flight_bytes = MIB;
        let message = config.validate().unwrap_err().to_string();
        assert!(message.contains("--max-in-flight-bytes"), "{message}");
        let mut config = Config::new(" , ");
        assert!(
            config
                .validate()
                .unwrap_err()
                .to_string()
                .contains("--brokers")
        );
        config = Config::new("b:1");
        config.raw_topic = "raw data".into();
        assert!(
            config
                .validate()
                .unwrap_err()
                .to_string()
                .contains("--raw-topic")
        );
        config = Config::new("b:1");
        config.kafka_options = vec![("acks".into(), "1".into())];
        assert!(config.validate().unwrap_err().to_string().contains("acks"));
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("-1s").is_err());
    }
}
