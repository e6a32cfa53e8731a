//! `emberline-sim fire` flags, checked once into a [`FireConfig`].

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use rumqttc::QoS;

use super::parse_duration;
use crate::fire::{FireConfig, Scenario, Transport};
use crate::tokens::DeviceTokens;

#[derive(Debug, Args)]
pub struct FireArgs {
    /// How readings are sent: HTTP batches, HTTP single requests, or MQTT (a connection per sensor).
    #[arg(
        long,
        env = "EMBERLINE_SIM_TRANSPORT",
        value_enum,
        default_value = "http-batch"
    )]
    pub transport: Transport,
    /// An agent's base URL (repeat for several; sensor n reports to agent n mod count).
    #[arg(
        long = "agent",
        env = "EMBERLINE_SIM_AGENTS",
        value_delimiter = ',',
        default_value = "http://127.0.0.1:8080"
    )]
    pub agents: Vec<String>,
    /// An agent's MQTT listener, `host:port` (repeat for several; sensor n to listener n mod count).
    #[arg(long = "mqtt", env = "EMBERLINE_SIM_MQTT", value_delimiter = ',',
        value_parser = parse_host_port, default_value = "127.0.0.1:1883")]
    pub mqtt: Vec<(String, u16)>,
    /// MQTT QoS, 0 or 1.
    #[arg(long, env = "EMBERLINE_SIM_QOS", default_value_t = 1)]
    pub qos: u8,
    /// Device tokens, one `name token` per line (the agent's format): sent as a bearer token
    /// (HTTP) or as username/password (MQTT).
    #[arg(long, env = "EMBERLINE_SIM_TOKENS_FILE")]
    pub tokens_file: Option<PathBuf>,
    #[arg(long, env = "EMBERLINE_SIM_SENSORS", default_value_t = 150)]
    pub sensors: u32,
    /// Same seed, same sensors and same fire.
    #[arg(long, env = "EMBERLINE_SIM_SEED", default_value_t = 7)]
    pub seed: u64,
    /// Centre of the region, `lat,lon` (default: Pacific Palisades, Los Angeles).
    #[arg(long, env = "EMBERLINE_SIM_CENTER", value_parser = parse_lat_lon,
        allow_hyphen_values = true, default_value = "34.06,-118.57")]
    pub center: (f64, f64),
    /// Side of the square region, km.
    #[arg(long, env = "EMBERLINE_SIM_SIZE_KM", default_value_t = 12.0)]
    pub size_km: f64,
    /// Where the wind blows from, degrees (45: a Santa Ana from the north-east).
    #[arg(long, env = "EMBERLINE_SIM_WIND_FROM", default_value_t = 45.0)]
    pub wind_from: f64,
    #[arg(long, env = "EMBERLINE_SIM_WIND_KMH", default_value_t = 22.0)]
    pub wind_kmh: f64,
    /// Head-fire speed, km per minute (sped up so the demo shows a front within minutes).
    #[arg(long, env = "EMBERLINE_SIM_SPREAD", default_value_t = 1.0)]
    pub spread_km_per_min: f64,
    /// Quiet time before the fire ignites.
    #[arg(long, env = "EMBERLINE_SIM_IGNITE_AFTER", value_parser = parse_duration, default_value = "30s")]
    pub ignite_after: Duration,
    /// Every sensor reports once per interval.
    #[arg(long, env = "EMBERLINE_SIM_INTERVAL", value_parser = parse_duration, default_value = "2s")]
    pub interval: Duration,
    /// Readings per second over all sensors (sets the interval to sensors / rate).
    #[arg(long, env = "EMBERLINE_SIM_RATE")]
    pub rate: Option<f64>,
    /// Stop after this long (default: until Ctrl-C or --count).
    #[arg(long, env = "EMBERLINE_SIM_DURATION", value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Stop after this many readings.
    #[arg(long, env = "EMBERLINE_SIM_COUNT")]
    pub count: Option<u64>,
    /// Most HTTP requests in flight.
    #[arg(long, env = "EMBERLINE_SIM_CONCURRENCY", default_value_t = 64)]
    pub concurrency: usize,
    /// A progress line (stderr) this often.
    #[arg(long, env = "EMBERLINE_SIM_REPORT_EVERY", value_parser = parse_duration, default_value = "10s")]
    pub report_every: Duration,
    /// Sensors are named `{prefix}-{n}`.
    #[arg(long, env = "EMBERLINE_SIM_PREFIX", default_value = "sensor")]
    pub prefix: String,
    /// Print the summary as one JSON object.
    #[arg(long, env = "EMBERLINE_SIM_JSON")]
    pub json: bool,
    /// No progress lines.
    #[arg(long, env = "EMBERLINE_SIM_QUIET")]
    pub quiet: bool,
}

impl FireArgs {
    /// Checks the flags once (and reads the tokens file).
    pub fn into_config(self) -> Result<FireConfig, String> {
        self.check_scenario()?;
        let qos = match self.qos {
            0 => QoS::AtMostOnce,
            1 => QoS::AtLeastOnce,
            other => return Err(format!("--qos must be 0 or 1, not {other}")),
        };
        let interval = match self.rate {
            Some(rate) if rate.is_nan() || rate <= 0.0 => {
                return Err(format!("--rate must be positive, got {rate}"));
            }
            Some(rate) => Duration::from_secs_f64(f64::from(self.sensors) / rate),
            None => self.interval,
        };
        if self.count == Some(0) || self.concurrency == 0 {
            return Err("--count and --concurrency must be more than 0".into());
        }
        let tokens = self
            .tokens_file
            .as_deref()
            .map(DeviceTokens::load)
            .transpose()?;
        Ok(FireConfig {
            scenario: self.scenario(),
            transport: self.transport,
            agents: self.agents,
            mqtt_brokers: self.mqtt,
            qos,
            tokens,
            concurrency: self.concurrency,
            interval,
            duration: self.duration,
            count: self.count,
            report_every: self.report_every,
            quiet: self.quiet,
        })
    }

    fn check_scenario(&self) -> Result<(), String> {
        if self.sensors == 0 || self.sensors > 100_000 {
            return Err(format!(
                "--sensors must be 1..=100000, got {}",
                self.sensors
            ));
        }
        if self.size_km.is_nan() || self.size_km <= 0.0 || self.size_km > 500.0 {
            return Err(format!(
                "--size-km must be in (0, 500], got {}",
                self.size_km
            ));
        }
        if self.spread_km_per_min.is_nan()
            || self.spread_km_per_min <= 0.0
            || self.interval.is_zero()
        {
            return Err("--spread and --interval must be positive".into());
        }
        if !(0.0..=200.0).contains(&self.wind_kmh) {
            return Err(format!(
                "--wind-kmh must be in 0..=200, got {}",
                self.wind_kmh
            ));
        }
        Ok(())
    }

    fn scenario(&self) -> Scenario {
        Scenario {
            center_lat: self.center.0,
            center_lon: self.center.1,
            size_km: self.size_km,
            sensors: self.sensors,
            seed: self.seed,
            wind_from: self.wind_from.rem_euclid(360.0),
            wind_kmh: self.wind_kmh,
            spread_km_per_min: self.spread_km_per_min,
            ignite_after_secs: self.ignite_after.as_secs_f64(),
            prefix: self.prefix.clone(),
        }
    }
}

/// `host:port`.
fn parse_host_port(text: &str) -> Result<(String, u16), String> {
    let (host, port) = text
        .rsplit_once(':')
        .ok_or_else(|| format!("{text:?}: expected `host:port`"))?;
    let port = port.parse().map_err(|e| format!("{text:?}: port: {e}"))?;
    Ok((host.to_owned(), port))
}

/// `lat,lon` with latitude within ±85 and longitude within ±180.
pub fn parse_lat_lon(text: &str) -> Result<(f64, f64), String> {
    let (lat, lon) = text
        .split_once(',')
        .ok_or_else(|| format!("{text:?}: expected `lat,lon`"))?;
    let parse = |s: &str| s.trim().parse::<f64>().map_err(|e| format!("{s:?}: {e}"));
    let (lat, lon) = (parse(lat)?, parse(lon)?);
    if !(-85.0..=85.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
        return Err(format!(
            "{text:?}: latitude must be within ±85, longitude within ±180"
        ));
    }
    Ok((lat, lon))
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;
    use crate::cli::{Cli, Command};

    fn parse(args: &[&str]) -> Result<FireConfig, String> {
        let mut all = vec!["emberline-sim", "fire"];
        all.extend_from_slice(args);
        let Command::Fire(args) = Cli::try_parse_from(all).unwrap().command else {
            panic!("not fire");
        };
        args.into_config()
    }

    #[test]
    fn fire_flags_are_checked() {
        let config = parse(&[
            "--agent",
            "http://a:1,http://b:2",
            "--center",
            "-33.9, 151.2",
        ])
        .unwrap();
        assert_eq!(config.agents, ["http://a:1", "http://b:2"]);
        assert_eq!(
            (config.scenario.center_lat, config.scenario.center_lon),
            (-33.9, 151.2)
        );
        assert_eq!(config.transport, Transport::HttpBatch);
        assert!(parse(&["--sensors", "0"]).is_err());
        assert!(parse(&["--size-km", "0"]).is_err());
        assert!(parse(&["--qos", "2"]).is_err());
        assert!(parse(&["--rate", "0"]).is_err());
        assert!(parse(&["--tokens-file", "/nonexistent/tokens"]).is_err());
        assert!(Cli::try_parse_from(["emberline-sim", "fire", "--center", "95,0"]).is_err());
    }

    #[test]
    fn transports_rate_and_brokers() {
        let config = parse(&[
            "--transport",
            "mqtt",
            "--mqtt",
            "127.0.0.1:1891,localhost:1892",
            "--qos",
            "0",
            "--sensors",
            "1000",
            "--rate",
            "2000",
            "--count",
            "5",
        ])
        .unwrap();
        assert_eq!(config.transport, Transport::Mqtt);
        assert_eq!(config.mqtt_brokers[1], ("localhost".to_owned(), 1892));
        assert_eq!(config.qos, QoS::AtMostOnce);
        assert_eq!(config.interval, Duration::from_millis(500));
        assert_eq!(config.count, Some(5));
        assert!(Cli::try_parse_from(["emberline-sim", "fire", "--mqtt", "nohost"]).is_err());
    }
}
