//! `emberline-stack demo` flags, each with an `EMBERLINE_DEMO_*` twin, and the ports they give.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;

use super::DemoError;
use crate::DEFAULT_DATABASE_URL;
use crate::broker::free_port;

#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Directory for every service's data and logs (kept between runs).
    #[arg(long, env = "EMBERLINE_DATA_DIR", default_value = ".emberline")]
    pub data_dir: PathBuf,
    /// Delete the demo's data (broker, agents' buffers, logs, its database) and start over.
    #[arg(long)]
    pub fresh: bool,
    /// The PostgreSQL server; the demo uses (and creates) its own database on it.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, default_value = DEFAULT_DATABASE_URL)]
    pub database_url: String,
    /// Name of the demo's database on that server.
    #[arg(long, env = "EMBERLINE_DEMO_DATABASE", default_value = "emberline")]
    pub database_name: String,
    /// Where the Emberline binaries are; by default next to this one.
    #[arg(long, env = "EMBERLINE_BIN_DIR")]
    pub bin_dir: Option<PathBuf>,
    /// Number of edge agents (1 to 8).
    #[arg(long, env = "EMBERLINE_DEMO_AGENTS", default_value_t = 2)]
    pub agents: u16,
    /// Simulated sensors.
    #[arg(long, env = "EMBERLINE_DEMO_SENSORS", default_value_t = 150)]
    pub sensors: u32,
    /// Seed of the simulated fire.
    #[arg(long, env = "EMBERLINE_DEMO_SEED", default_value_t = 7)]
    pub seed: u64,
    /// Broker port on 127.0.0.1.
    #[arg(long, env = "EMBERLINE_KAFKA_PORT", default_value_t = 9092)]
    pub kafka_port: u16,
    #[arg(long, env = "EMBERLINE_DEMO_BRIDGE_PORT", default_value_t = 8081)]
    pub bridge_port: u16,
    #[arg(long, env = "EMBERLINE_DEMO_DETECT_PORT", default_value_t = 8091)]
    pub detect_port: u16,
    #[arg(long, env = "EMBERLINE_DEMO_WRITE_PORT", default_value_t = 8092)]
    pub write_port: u16,
    /// The map's port.
    #[arg(long, env = "EMBERLINE_DEMO_DASHBOARD_PORT", default_value_t = 8093)]
    pub dashboard_port: u16,
    /// Agent n (from 0) takes HTTP on this port + n.
    #[arg(long, env = "EMBERLINE_DEMO_AGENT_HTTP_PORT", default_value_t = 8101)]
    pub agent_http_port: u16,
    /// Agent n takes MQTT on this port + n (Mosquitto usually has 1883).
    #[arg(long, env = "EMBERLINE_DEMO_AGENT_MQTT_PORT", default_value_t = 1891)]
    pub agent_mqtt_port: u16,
    /// Agent n runs its local alert bus on this port + n.
    #[arg(long, env = "EMBERLINE_DEMO_AGENT_ALERTS_PORT", default_value_t = 1901)]
    pub agent_alerts_port: u16,
    /// Start no simulator (for benchmarks that drive the agents themselves).
    #[arg(long, env = "EMBERLINE_DEMO_NO_SIMULATOR")]
    pub no_simulator: bool,
    /// Ignore the port flags and take free ports from the OS (for tests).
    #[arg(long)]
    pub free_ports: bool,
    /// Base-map tiles for the dashboard (empty for none).
    #[arg(long, env = "EMBERLINE_DASHBOARD_TILE_URL")]
    pub tile_url: Option<String>,
}

/// Every port the demo's services listen on.
#[derive(Debug, Clone)]
pub struct Ports {
    pub kafka: u16,
    pub bridge: u16,
    pub detect: u16,
    pub write: u16,
    pub dashboard: u16,
    /// (http, mqtt, alerts) per agent.
    pub agents: Vec<(u16, u16, u16)>,
}

impl Ports {
    pub fn from_args(args: &DemoArgs) -> Result<Self, DemoError> {
        if !(1..=8).contains(&args.agents) {
            return Err(DemoError::Config(format!(
                "--agents must be between 1 and 8, got {}",
                args.agents
            )));
        }
        if args.free_ports {
            return Self::free(args.agents);
        }
        let offset = |base: u16, n: u16| {
            base.checked_add(n)
                .ok_or_else(|| DemoError::Config(format!("port {base} + {n} is past 65535")))
        };
        let mut agents = Vec::new();
        for n in 0..args.agents {
            agents.push((
                offset(args.agent_http_port, n)?,
                offset(args.agent_mqtt_port, n)?,
                offset(args.agent_alerts_port, n)?,
            ));
        }
        let ports = Self {
            kafka: args.kafka_port,
            bridge: args.bridge_port,
            detect: args.detect_port,
            write: args.write_port,
            dashboard: args.dashboard_port,
            agents,
        };
        ports.check_free()?;
        Ok(ports)
    }

    fn free(agents: u16) -> Result<Self, DemoError> {
        let port = || {
            free_port().map_err(|source| DemoError::Io {
                what: "cannot find a free port".into(),
                source,
            })
        };
        let mut agent_ports = Vec::new();
        for _ in 0..agents {
            agent_ports.push((port()?, port()?, port()?));
        }
        Ok(Self {
            kafka: port()?,
            bridge: port()?,
            detect: port()?,
            write: port()?,
            dashboard: port()?,
            agents: agent_ports,
        })
    }

    /// Fails with the flag to change when a port is taken.
    fn check_free(&self) -> Result<(), DemoError> {
        let mut named = vec![
            (self.kafka, "--kafka-port"),
            (self.bridge, "--bridge-port"),
            (self.detect, "--detect-port"),
            (self.write, "--write-port"),
            (self.dashboard, "--dashboard-port"),
        ];
        for (http, mqtt, alerts) in &self.agents {
            named.push((*http, "--agent-http-port"));
            named.push((*mqtt, "--agent-mqtt-port"));
            named.push((*alerts, "--agent-alerts-port"));
        }
        for (i, (port, flag)) in named.iter().enumerate() {
            if named[..i].iter().any(|(other, _)| other == port) {
                return Err(DemoError::Config(format!(
                    "port {port} is given twice ({flag})"
                )));
            }
            if TcpListener::bind(("127.0.0.1", *port)).is_err() {
                return Err(DemoError::Config(format!(
                    "port {port} on 127.0.0.1 is already in use (an earlier demo still running?); choose another with {flag}"
                )));
            }
        }
        Ok(())
    }
}

pub fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}
