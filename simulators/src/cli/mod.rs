//! Command-line flags (each with an `EMBERLINE_SIM_*` environment twin), checked once into a
//! [`LoadConfig`](crate::mqtt_load::LoadConfig) or a [`FireConfig`](crate::fire::FireConfig)
//! (the `fire` flags are in [`fire`]).

use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use rumqttc::QoS;
use secrecy::SecretString;

use crate::mqtt_load::LoadConfig;

mod fire;

pub use fire::{FireArgs, parse_lat_lon};

#[derive(Debug, Parser)]
#[command(
    name = "emberline-sim",
    version,
    about = "Simulated sensors and load generators"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Many MQTT devices publishing readings as fast as acknowledged (or at a set rate); prints
    /// messages/s and publish→PUBACK latency.
    MqttLoad(MqttLoadArgs),
    /// Sensors over a wildfire region (the 2025 Palisades Fire by default) posting readings to
    /// agents over HTTP while a fire ignites and spreads with the wind; runs until Ctrl-C or
    /// --duration.
    Fire(FireArgs),
}

#[derive(Debug, Args)]
pub struct MqttLoadArgs {
    #[arg(long, env = "EMBERLINE_SIM_HOST", default_value = "127.0.0.1")]
    pub host: String,
    #[arg(long, env = "EMBERLINE_SIM_PORT", default_value_t = 1883)]
    pub port: u16,
    /// Simulated devices, each with its own connection, client id and source_name `{prefix}-{i}`.
    #[arg(long, env = "EMBERLINE_SIM_CONNECTIONS", default_value_t = 100)]
    pub connections: u32,
    /// Messages to publish in total, over all connections (10,000 when --duration is not given).
    #[arg(long, env = "EMBERLINE_SIM_MESSAGES")]
    pub messages: Option<u64>,
    /// Publish for this long instead of (or as well as) a message count: `30s`, `500ms`, `2m`.
    #[arg(long, env = "EMBERLINE_SIM_DURATION", value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Total messages per second over all connections; 0 = as fast as acknowledged.
    #[arg(long, env = "EMBERLINE_SIM_RATE", default_value_t = 0)]
    pub rate: u64,
    /// Most unacknowledged QoS 1 publishes per connection.
    #[arg(long, env = "EMBERLINE_SIM_INFLIGHT", default_value_t = 10)]
    pub inflight: u16,
    /// 0 or 1 (the agent's listener refuses QoS 2).
    #[arg(long, env = "EMBERLINE_SIM_QOS", default_value_t = 1)]
    pub qos: u8,
    #[arg(long, env = "EMBERLINE_SIM_USERNAME")]
    pub username: Option<String>,
    #[arg(long, env = "EMBERLINE_SIM_PASSWORD", value_parser = parse_secret, hide_env_values = true)]
    pub password: Option<SecretString>,
    /// New connections opened per second, so a thousand devices do not connect all at once.
    #[arg(long, env = "EMBERLINE_SIM_CONNECT_RATE", default_value_t = 500)]
    pub connect_rate: u32,
    /// Prefix of client ids and source names.
    #[arg(long, env = "EMBERLINE_SIM_ID_PREFIX", default_value = "sim")]
    pub id_prefix: String,
    /// Hard limit on the publishing phase, whatever --messages says.
    #[arg(long, env = "EMBERLINE_SIM_MAX_TIME", default_value = "10m", value_parser = parse_duration)]
    pub max_time: Duration,
    /// How long to wait for outstanding PUBACKs once publishing stops.
    #[arg(long, env = "EMBERLINE_SIM_DRAIN_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub drain_timeout: Duration,
    /// Runtime worker threads (1 = a single-threaded runtime, lightest beside the agent).
    #[arg(long, env = "EMBERLINE_SIM_THREADS", default_value_t = 1)]
    pub threads: usize,
    /// Print the summary as one JSON object.
    #[arg(long, env = "EMBERLINE_SIM_JSON")]
    pub json: bool,
    /// No progress lines on stderr.
    #[arg(long, env = "EMBERLINE_SIM_QUIET")]
    pub quiet: bool,
}

/// A flag that cannot be used, said so a user understands.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(String);

impl MqttLoadArgs {
    pub fn into_config(self) -> Result<LoadConfig, ConfigError> {
        let fail = |message: String| Err(ConfigError(message));
        let qos = match self.qos {
            0 => QoS::AtMostOnce,
            1 => QoS::AtLeastOnce,
            other => return fail(format!("--qos must be 0 or 1, not {other}")),
        };
        if !(1..=50_000).contains(&self.connections) {
            return fail("--connections must be between 1 and 50000".into());
        }
        if self.inflight == 0 {
            return fail("--inflight must be at least 1".into());
        }
        if self.messages == Some(0) || self.duration == Some(Duration::ZERO) {
            return fail("--messages and --duration must be more than 0".into());
        }
        if self.connect_rate == 0 || self.max_time.is_zero() {
            return fail("--connect-rate and --max-time must be more than 0".into());
        }
        if self.password.is_some() && self.username.is_none() {
            return fail("--password needs --username (MQTT 3.1.1 sends no password alone)".into());
        }
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        if self.id_prefix.is_empty()
            || self.id_prefix.len() > 100
            || !self.id_prefix.chars().all(allowed)
        {
            return fail(format!(
                "--id-prefix {:?} must be 1 to 100 letters, digits, '.', '_' or '-'",
                self.id_prefix
            ));
        }
        let messages = match (self.messages, self.duration) {
            (None, None) => Some(10_000),
            (messages, _) => messages,
        };
        Ok(LoadConfig {
            host: self.host,
            port: self.port,
            connections: self.connections,
            messages,
            duration: self.duration.unwrap_or(self.max_time).min(self.max_time),
            rate: self.rate,
            inflight: self.inflight,
            qos,
            credentials: self.username.map(|user| (user, self.password)),
            connect_rate: self.connect_rate,
            id_prefix: self.id_prefix,
            drain_timeout: self.drain_timeout,
            progress: !self.quiet,
        })
    }
}

fn parse_secret(value: &str) -> Result<SecretString, String> {
    Ok(SecretString::from(value.to_owned()))
}

/// `30`, `30s`, `1.5s`, `500ms`, `2m`, `1h`; a bare number is seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 30s, 500ms or 2m"))?;
    let scale = match unit.trim() {
        "" | "s" => 1.0,
        "ms" => 0.001,
        "m" => 60.0,
        "h" => 3600.0,
        other => {
            return Err(format!(
                "unknown unit {other:?} in {text:?}: use ms, s, m or h"
            ));
        }
    };
    Duration::try_from_secs_f64(number * scale).map_err(|e| format!("{text:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        for bad in ["", "s", "10x", "-1s", "1..2s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn flags_are_checked() {
        let parse = |args: &[&str]| {
            let mut all = vec!["emberline-sim", "mqtt-load"];
            all.extend_from_slice(args);
            let Command::MqttLoad(args) = Cli::try_parse_from(all).unwrap().command else {
                panic!("not mqtt-load");
            };
            args.into_config()
        };
        let config = parse(&["--connections", "5"]).unwrap();
        assert_eq!(config.messages, Some(10_000));
        assert_eq!(config.qos, QoS::AtLeastOnce);
        let config = parse(&["--duration", "5s", "--max-time", "3s"]).unwrap();
        assert_eq!(
            (config.messages, config.duration),
            (None, Duration::from_secs(3))
        );
        assert!(parse(&["--qos", "2"]).is_err());
        assert!(parse(&["--inflight", "0"]).is_err());
        assert!(parse(&["--id-prefix", "a/b"]).is_err());
    }
}
