//! The dashboard's flags: every one with an `EMBERLINE_*` twin and a default that works with the
//! local stack. Checked once at start by [`Config::validate`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use emberline_hub::config::{DEFAULT_ANOMALY_TOPIC, DEFAULT_BROKERS, DEFAULT_DATABASE_URL};
use emberline_hub::config::{LogFormat, parse_duration};
use emberline_hub::db::DatabaseUrl;

/// OpenStreetMap's standard tiles.
pub const DEFAULT_TILE_URL: &str = "https://tile.openstreetmap.org/{z}/{x}/{y}.png";
pub const DEFAULT_TILE_ATTRIBUTION: &str = "© OpenStreetMap contributors";

/// A configuration a user must fix; the message says how.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// `emberline-dashboard`: the live map of every sensor.
#[derive(Debug, Clone, Parser)]
#[command(version, about)]
pub struct Config {
    /// Address of the HTTP listener (page, API, probes, metrics). Use 0.0.0.0:8093 in a cluster.
    #[arg(
        long,
        env = "EMBERLINE_DASHBOARD_LISTEN",
        default_value = "127.0.0.1:8093"
    )]
    pub listen: SocketAddr,
    /// PEM certificate chain (leaf first) for TLS on the listener; with --tls-key. Without both
    /// the dashboard speaks plain HTTP (or terminate TLS at the cluster's ingress).
    #[arg(long, env = "EMBERLINE_DASHBOARD_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of --tls-cert.
    #[arg(long, env = "EMBERLINE_DASHBOARD_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// How long a client may take to send a whole request head (and, with TLS, to finish the
    /// handshake) before the connection is closed; also how long an idle connection is kept.
    /// An open live stream is a response, not bounded by this.
    #[arg(long, env = "EMBERLINE_DASHBOARD_HEADER_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub header_timeout: Duration,
    /// How long a client may take, once its request head is in, to send the whole body; past
    /// it the answer is 408 and the connection is closed.
    #[arg(long, env = "EMBERLINE_DASHBOARD_BODY_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub body_timeout: Duration,
    /// PostgreSQL URL, the database `emberline-hub write` fills (a password in it is never logged).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, default_value = DEFAULT_DATABASE_URL)]
    pub database_url: DatabaseUrl,
    /// Most PostgreSQL connections.
    #[arg(long, env = "EMBERLINE_DASHBOARD_MAX_CONNECTIONS", default_value_t = 8)]
    pub max_connections: u32,
    /// Apply the hub's database migrations before starting.
    #[arg(long, env = "EMBERLINE_DASHBOARD_MIGRATE")]
    pub migrate: bool,
    /// Kafka bootstrap servers, comma-separated host:port.
    #[arg(long, env = "EMBERLINE_KAFKA_BROKERS", default_value = DEFAULT_BROKERS)]
    pub brokers: String,
    /// Topic of classified readings, followed from its end for live updates.
    #[arg(long, env = "EMBERLINE_DASHBOARD_ANOMALY_TOPIC", default_value = DEFAULT_ANOMALY_TOPIC)]
    pub anomaly_topic: String,
    /// Base-map tile URL template ({z}/{x}/{y}); empty for no base map (air-gapped sites).
    #[arg(long, env = "EMBERLINE_DASHBOARD_TILE_URL", default_value = DEFAULT_TILE_URL)]
    pub tile_url: String,
    /// Attribution shown for the tiles.
    #[arg(long, env = "EMBERLINE_DASHBOARD_TILE_ATTRIBUTION", default_value = DEFAULT_TILE_ATTRIBUTION)]
    pub tile_attribution: String,
    /// An agent whose last heartbeat is older than this is shown as stale.
    #[arg(long, env = "EMBERLINE_DASHBOARD_AGENT_STALE_AFTER", default_value = "60s", value_parser = parse_duration)]
    pub agent_stale_after: Duration,
    /// Live events kept for a slow browser before it is told to reload its snapshot.
    #[arg(
        long,
        env = "EMBERLINE_DASHBOARD_STREAM_BUFFER",
        default_value_t = 4096
    )]
    pub stream_buffer: usize,
    /// Bound on a graceful shutdown (open streams are closed at once; requests get this long).
    #[arg(long, env = "EMBERLINE_DASHBOARD_SHUTDOWN_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub shutdown_timeout: Duration,
    /// Log format.
    #[arg(long, env = "EMBERLINE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

impl Config {
    /// The defaults, talking to `brokers` and the database at `database_url`.
    pub fn new(brokers: impl Into<String>, database_url: &str) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8093)),
            tls_cert: None,
            tls_key: None,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            database_url: DatabaseUrl::from(database_url),
            max_connections: 8,
            migrate: false,
            brokers: brokers.into(),
            anomaly_topic: DEFAULT_ANOMALY_TOPIC.into(),
            tile_url: DEFAULT_TILE_URL.into(),
            tile_attribution: DEFAULT_TILE_ATTRIBUTION.into(),
            agent_stale_after: Duration::from_secs(60),
            stream_buffer: 4096,
            shutdown_timeout: Duration::from_secs(10),
            log_format: LogFormat::Text,
        }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let fail = |message: &str| Err(ConfigError(message.into()));
        if self.brokers.split(',').all(|b| b.trim().is_empty()) {
            return fail("--brokers is empty: give at least one host:port, e.g. 127.0.0.1:9092");
        }
        if self.anomaly_topic.trim().is_empty() {
            return fail("--anomaly-topic is empty: give the topic the detector writes to");
        }
        if !(1..=100).contains(&self.max_connections) {
            return fail("--max-connections must be between 1 and 100");
        }
        if !(16..=1_000_000).contains(&self.stream_buffer) {
            return fail("--stream-buffer must be between 16 and 1000000 events");
        }
        emberline_service::check_http_timeouts(self.header_timeout, self.body_timeout)
            .map_err(ConfigError)?;
        let tile = &self.tile_url;
        let usable =
            tile.starts_with("http") && ["{z}", "{x}", "{y}"].iter().all(|p| tile.contains(p));
        if !(tile.is_empty() || usable) {
            return fail("--tile-url must be an http(s) URL with {z}, {x} and {y}, or empty");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_mistakes_are_named() {
        let config = Config::new("127.0.0.1:9092", DEFAULT_DATABASE_URL);
        assert!(config.validate().is_ok());
        let mut no_tiles = config.clone();
        no_tiles.tile_url = String::new();
        assert!(no_tiles.validate().is_ok());
        let mut bad = config.clone();
        bad.tile_url = "javascript:alert(1)".into();
        assert!(bad.validate().unwrap_err().0.contains("--tile-url"));
        let mut bad = config;
        bad.brokers = " ".into();
        assert!(bad.validate().unwrap_err().0.contains("--brokers"));
    }

    #[test]
    fn every_flag_has_an_env_twin() {
        use clap::CommandFactory as _;
        for arg in Config::command().get_arguments() {
            let id = arg.get_id().as_str();
            if id != "help" && id != "version" {
                assert!(arg.get_env().is_some(), "--{id} has no environment twin");
            }
        }
    }
}
