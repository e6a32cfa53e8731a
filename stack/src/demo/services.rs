//! The command line of every service the demo runs.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::config::{DemoArgs, Ports, local};

/// One long-running service: what to run and where it answers `/readyz`.
#[derive(Debug, Clone)]
pub struct Service {
    pub name: String,
    pub binary: String,
    pub args: Vec<String>,
    /// `None` for the simulator, which serves nothing.
    pub ready: Option<SocketAddr>,
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// `emberline-hub migrate`, run to completion before the services start.
pub fn migrate(database_url: &str) -> Vec<String> {
    strings(&["migrate", "--database-url", database_url])
}

/// The services, in start order: bridge, hub roles, dashboard, agents, then the simulator.
pub fn all(args: &DemoArgs, ports: &Ports, database_url: &str, data_dir: &Path) -> Vec<Service> {
    let brokers = local(ports.kafka).to_string();
    let listen = |port: u16| local(port).to_string();
    let mut services = vec![
        Service {
            name: "bridge".into(),
            binary: "emberline-bridge".into(),
            args: strings(&["--listen", &listen(ports.bridge), "--brokers", &brokers]),
            ready: Some(local(ports.bridge)),
        },
        Service {
            name: "hub-detect".into(),
            binary: "emberline-hub".into(),
            args: strings(&[
                "detect",
                "--listen",
                &listen(ports.detect),
                "--brokers",
                &brokers,
            ]),
            ready: Some(local(ports.detect)),
        },
        Service {
            name: "hub-write".into(),
            binary: "emberline-hub".into(),
            args: strings(&[
                "write",
                "--listen",
                &listen(ports.write),
                "--brokers",
                &brokers,
                "--database-url",
                database_url,
            ]),
            ready: Some(local(ports.write)),
        },
        dashboard(args, ports, database_url),
    ];
    let bridge_url = format!("http://{}", local(ports.bridge));
    let mut agent_urls = Vec::new();
    for (n, (http, mqtt, alerts)) in ports.agents.iter().enumerate() {
        let id = format!("edge-{}", n + 1);
        let buffer: PathBuf = data_dir.join("agents").join(&id).join("buffer.db");
        services.push(Service {
            name: format!("agent {id}"),
            binary: "emberline-agent".into(),
            args: strings(&[
                "run",
                "--agent-id",
                &id,
                "--http-listen",
                &listen(*http),
                "--mqtt-listen",
                &listen(*mqtt),
                "--alerts-listen",
                &listen(*alerts),
                "--bridge-url",
                &bridge_url,
                "--buffer-path",
                &buffer.to_string_lossy(),
                "--heartbeat-secs",
                "5",
            ]),
            ready: Some(local(*http)),
        });
        agent_urls.push(format!("http://{}", local(*http)));
    }
    if !args.no_simulator {
        services.push(simulator(args, &agent_urls));
    }
    services
}

fn dashboard(args: &DemoArgs, ports: &Ports, database_url: &str) -> Service {
    let mut dashboard_args = strings(&[
        "--listen",
        &local(ports.dashboard).to_string(),
        "--brokers",
        &local(ports.kafka).to_string(),
        "--database-url",
        database_url,
    ]);
    if let Some(tiles) = &args.tile_url {
        dashboard_args.extend(strings(&["--tile-url", tiles]));
    }
    Service {
        name: "dashboard".into(),
        binary: "emberline-dashboard".into(),
        args: dashboard_args,
        ready: Some(local(ports.dashboard)),
    }
}

fn simulator(args: &DemoArgs, agent_urls: &[String]) -> Service {
    let mut sim_args = strings(&[
        "fire",
        "--sensors",
        &args.sensors.to_string(),
        "--seed",
        &args.seed.to_string(),
    ]);
    for url in agent_urls {
        sim_args.extend(strings(&["--agent", url]));
    }
    Service {
        name: "simulator".into(),
        binary: "emberline-sim".into(),
        args: sim_args,
        ready: None,
    }
}

/// The log file of a service: `logs/<name>.log`, spaces made dashes.
pub fn log_name(name: &str) -> String {
    format!("{}.log", name.replace(' ', "-"))
}
