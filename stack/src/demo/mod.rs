//! `emberline-stack demo`: the whole pipeline on one machine.
//!
//! Brings up, in order: the broker (Tansu) with every topic, the demo's own PostgreSQL database
//! and its schema (`emberline-hub migrate`), the bridge, the hub's detector and writer, the
//! dashboard, the edge agents and the simulated fire feeding them; waits (bounded) for each
//! service's `/readyz`; then watches them. Ctrl-C or SIGTERM stops everything in reverse order
//! (SIGTERM, then SIGKILL after a bound), keeping the data for the next run. A child that dies
//! is named with its log, and everything else is stopped.
//!
//! # Invariants
//! - Every child is spawned from the thread that runs the demo (they die with it) and in a
//!   process group of its own (a terminal's Ctrl-C reaches only the demo).
//! - Every log is a file under `<data-dir>/logs/` (the broker's under `<data-dir>/broker/`).

mod child;
mod config;
mod database;
mod ready;
mod services;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use config::{DemoArgs, Ports};
pub use database::with_database;
pub use ready::answers_ok;

use self::child::{Child, stop_all};
use self::services::Service;
use crate::{Broker, BrokerConfig, BrokerError, topics};

/// How long a service may take to answer `/readyz`.
const READY_PATIENCE: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("{0}")]
    Config(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Broker(#[from] BrokerError),
    #[error("cannot create the topics: {0}")]
    Topics(String),
    #[error("postgresql at {url} is not usable: {source}")]
    Postgres { url: String, source: sqlx::Error },
    #[error("{name} exited ({status}); see its log {log}")]
    Died {
        name: String,
        status: String,
        log: PathBuf,
    },
    #[error("{name} did not answer /readyz on {address} within {waited:?}; see its log {log}")]
    NotReady {
        name: String,
        address: SocketAddr,
        waited: Duration,
        log: PathBuf,
    },
}

/// Runs the demo until `shutdown` resolves or a child dies.
pub async fn run(args: DemoArgs, shutdown: impl Future<Output = ()>) -> Result<(), DemoError> {
    let ports = Ports::from_args(&args)?;
    let bin_dir = bin_dir(&args)?;
    let logs = prepare_dirs(&args)?;
    let broker_config = BrokerConfig::new(args.data_dir.join("broker"), ports.kafka)?;
    println!("starting the broker on 127.0.0.1:{}", ports.kafka);
    // Not spawn_blocking: the broker dies with the thread that started it.
    let mut broker = tokio::task::block_in_place(|| Broker::start(broker_config))?;
    topics::ensure(&broker.bootstrap(), &topics::standard(""))
        .await
        .map_err(|e| DemoError::Topics(e.to_string()))?;
    let database_url = database::ensure(&args.database_url, &args.database_name, args.fresh)
        .await
        .map_err(|source| DemoError::Postgres {
            url: crate::redact(&args.database_url),
            source,
        })?;
    println!("postgresql: database {} ready", args.database_name);
    tokio::task::block_in_place(|| migrate(&bin_dir, &database_url, &logs))?;
    let services = services::all(&args, &ports, &database_url, &args.data_dir);
    let mut running = Vec::new();
    let started =
        tokio::task::block_in_place(|| start_all(&services, &bin_dir, &logs, &mut running));
    let outcome = match started {
        Ok(()) => {
            print_banner(&args, &ports, &logs, &broker);
            supervise(&mut running, shutdown).await
        }
        Err(error) => Err(error),
    };
    println!("stopping");
    tokio::task::block_in_place(|| stop(running, &mut broker));
    println!("stopped; data kept in {}", args.data_dir.display());
    outcome
}

fn bin_dir(args: &DemoArgs) -> Result<PathBuf, DemoError> {
    if let Some(dir) = &args.bin_dir {
        return Ok(dir.clone());
    }
    let exe = std::env::current_exe().map_err(|source| DemoError::Io {
        what: "cannot find this program's directory".into(),
        source,
    })?;
    exe.parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| DemoError::Config("cannot find this program's directory".into()))
}

/// Creates the data directory (emptied first with `--fresh`); returns the logs directory.
fn prepare_dirs(args: &DemoArgs) -> Result<PathBuf, DemoError> {
    let io = |what: String| move |source| DemoError::Io { what, source };
    if args.fresh {
        for sub in ["broker", "agents", "logs"] {
            let dir = args.data_dir.join(sub);
            if dir.exists() {
                std::fs::remove_dir_all(&dir)
                    .map_err(io(format!("cannot remove {}", dir.display())))?;
            }
        }
    }
    let logs = args.data_dir.join("logs");
    for n in 0..args.agents {
        let dir = args.data_dir.join("agents").join(format!("edge-{}", n + 1));
        std::fs::create_dir_all(&dir).map_err(io(format!("cannot create {}", dir.display())))?;
    }
    std::fs::create_dir_all(&logs).map_err(io(format!("cannot create {}", logs.display())))?;
    Ok(logs)
}

fn migrate(bin_dir: &Path, database_url: &str, logs: &Path) -> Result<(), DemoError> {
    let log = logs.join("hub-migrate.log");
    let mut child = Child::spawn(
        "hub migrate",
        &bin_dir.join("emberline-hub"),
        &services::migrate(database_url),
        &log,
    )?;
    let deadline = std::time::Instant::now() + READY_PATIENCE;
    while std::time::Instant::now() < deadline {
        if let Some(status) = child.exited() {
            if status.success() {
                println!("schema: migrated");
                return Ok(());
            }
            return Err(DemoError::Died {
                name: "hub migrate".into(),
                status: status.to_string(),
                log,
            });
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(DemoError::Died {
        name: "hub migrate".into(),
        status: format!("still running after {READY_PATIENCE:?}"),
        log,
    })
}

/// Starts each service and waits for its `/readyz` before the next.
fn start_all(
    services: &[Service],
    bin_dir: &Path,
    logs: &Path,
    running: &mut Vec<Child>,
) -> Result<(), DemoError> {
    for service in services {
        let binary = bin_dir.join(&service.binary);
        if !binary.is_file() {
            return Err(DemoError::Config(format!(
                "{} is missing: build the workspace first (cargo build --workspace)",
                binary.display()
            )));
        }
        let log = logs.join(services::log_name(&service.name));
        let mut child = Child::spawn(&service.name, &binary, &service.args, &log)?;
        if let Some(address) = service.ready {
            ready::wait_ready(&mut child, address, READY_PATIENCE)?;
            println!("{:<12} ready on {address}", service.name);
        } else {
            println!("{:<12} started", service.name);
        }
        running.push(child);
    }
    Ok(())
}

fn print_banner(args: &DemoArgs, ports: &Ports, logs: &Path, broker: &Broker) {
    println!();
    println!("Emberline is running.");
    println!("  map:   http://127.0.0.1:{}/", ports.dashboard);
    println!("  api:   http://127.0.0.1:{}/api/sensors", ports.dashboard);
    println!(
        "  logs:  {} (broker: {})",
        logs.display(),
        broker.config().log_path().display()
    );
    println!(
        "  data:  {} (kept; --fresh starts over)",
        args.data_dir.display()
    );
    println!("Ctrl-C stops everything.");
}

/// Watches the children until `shutdown` resolves (Ok) or one of them exits (Err).
async fn supervise(
    running: &mut [Child],
    shutdown: impl Future<Output = ()>,
) -> Result<(), DemoError> {
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => return Ok(()),
            () = tokio::time::sleep(Duration::from_millis(250)) => {}
        }
        for child in running.iter_mut() {
            if let Some(status) = child.exited() {
                println!(
                    "{} exited unexpectedly ({status}); its log: {}; stopping everything",
                    child.name(),
                    child.log().display()
                );
                return Err(DemoError::Died {
                    name: child.name().to_owned(),
                    status: status.to_string(),
                    log: child.log().to_owned(),
                });
            }
        }
    }
}

/// Reverse order: the simulator, the agents (which forward what they hold), the bridge, the hub
/// and the dashboard, the broker last.
fn stop(mut running: Vec<Child>, broker: &mut Broker) {
    let mut groups: Vec<Vec<Child>> = vec![Vec::new(), Vec::new(), Vec::new(), Vec::new()];
    for child in running.drain(..) {
        let group = match child.name() {
            "simulator" => 0,
            name if name.starts_with("agent") => 1,
            "bridge" => 2,
            _ => 3,
        };
        groups[group].push(child);
    }
    let graces = [5, 15, 15, 25];
    for (group, grace) in groups.iter_mut().zip(graces) {
        stop_all(group, Duration::from_secs(grace));
    }
    broker.stop(Duration::from_secs(10));
    println!("  stopped broker");
}
