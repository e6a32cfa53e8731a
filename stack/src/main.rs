//! `emberline-stack`: bring the local stack up, check it, create topics.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use clap::{Args, Parser, Subcommand};
use emberline_stack::demo::DemoArgs;
use emberline_stack::{Broker, BrokerConfig, DEFAULT_DATABASE_URL, postgres, redact, topics};
use tokio::signal::unix::{SignalKind, signal};

#[derive(Debug, Parser)]
#[command(
    version,
    about = "Emberline's local stack: Kafka-compatible broker, topics, PostgreSQL"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the broker, create the topics, check PostgreSQL, then run until Ctrl-C.
    Up(UpArgs),
    /// The whole pipeline on one machine: broker, PostgreSQL, bridge, hub, dashboard, agents and
    /// a simulated fire; prints the map's URL and runs until Ctrl-C.
    Demo(DemoArgs),
    /// Check a running stack: broker metadata and PostgreSQL.
    Check {
        #[command(flatten)]
        target: Target,
    },
    /// Create Emberline's topics on a running broker (existing ones are kept).
    Topics {
        #[arg(
            long,
            env = "EMBERLINE_KAFKA_BROKERS",
            default_value = "127.0.0.1:9092"
        )]
        brokers: String,
        /// Prefix for every topic name.
        #[arg(long, default_value = "")]
        prefix: String,
    },
}

#[derive(Debug, Args)]
struct UpArgs {
    /// Directory for the stack's data and logs.
    #[arg(long, env = "EMBERLINE_DATA_DIR", default_value = ".emberline")]
    data_dir: PathBuf,
    /// Port of the Kafka-compatible broker on 127.0.0.1.
    #[arg(long, env = "EMBERLINE_KAFKA_PORT", default_value_t = 9092)]
    kafka_port: u16,
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, default_value = DEFAULT_DATABASE_URL)]
    database_url: String,
    /// Delete the broker's stored data before starting.
    #[arg(long)]
    fresh: bool,
    /// Bring everything up, report, and stop again (a smoke test of this command).
    #[arg(long)]
    smoke: bool,
}

#[derive(Debug, Args)]
struct Target {
    #[arg(
        long,
        env = "EMBERLINE_KAFKA_BROKERS",
        default_value = "127.0.0.1:9092"
    )]
    brokers: String,
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, default_value = DEFAULT_DATABASE_URL)]
    database_url: String,
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Up(args) => up(args).await,
        Command::Demo(args) => {
            let shutdown = async {
                if let Err(error) = wait_for_shutdown_signal().await {
                    tracing::warn!(%error, "cannot listen for signals");
                    std::future::pending::<()>().await;
                }
            };
            // The error names the service and its log; a backtrace would bury that.
            if let Err(error) = emberline_stack::demo::run(args, shutdown).await {
                eprintln!("error: {error}");
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Check { target } => check(&target).await,
        Command::Topics { brokers, prefix } => {
            topics::ensure(&brokers, &topics::standard(&prefix)).await?;
            print_topics(&brokers).map(drop)
        }
    }
}

async fn up(args: UpArgs) -> Result<()> {
    let broker_dir = args.data_dir.join("broker");
    if args.fresh && broker_dir.exists() {
        std::fs::remove_dir_all(&broker_dir)
            .with_context(|| format!("cannot remove {}", broker_dir.display()))?;
    }
    let config = BrokerConfig::new(&broker_dir, args.kafka_port)?;
    println!(
        "starting broker: {} (data {})",
        config.binary.display(),
        broker_dir.display()
    );
    // Not spawn_blocking: the broker dies with the thread that started it.
    let mut broker = tokio::task::block_in_place(|| Broker::start(config))?;
    let bootstrap = broker.bootstrap();
    topics::ensure(&bootstrap, &topics::standard(""))
        .await
        .context("cannot create Emberline's topics")?;
    let target = Target {
        brokers: bootstrap.clone(),
        database_url: args.database_url,
    };
    let healthy = check(&target).await;
    println!("broker log: {}", broker.config().log_path().display());
    if args.smoke || healthy.is_err() {
        broker.stop(Duration::from_secs(10));
        return healthy;
    }
    println!(
        "stack is up; Ctrl-C stops it (data is kept in {})",
        args.data_dir.display()
    );
    wait_for_shutdown_signal().await?;
    println!("stopping broker");
    tokio::task::block_in_place(|| broker.stop(Duration::from_secs(10)));
    Ok(())
}

async fn check(target: &Target) -> Result<()> {
    let found = print_topics(&target.brokers)?;
    for (name, partitions) in emberline_stack::STANDARD_TOPICS {
        match found.iter().find(|(topic, _)| topic == name) {
            None => bail!("topic {name} is missing; create it with `emberline-stack topics`"),
            Some((_, n)) if *n < partitions as usize => {
                bail!(
                    "topic {name} has {n} partitions, fewer than the {partitions} Emberline expects"
                )
            }
            Some(_) => {}
        }
    }
    match postgres::check(&target.database_url).await {
        Ok(version) => println!("postgresql: ok ({version})"),
        Err(error) => bail!(
            "postgresql at {} is not reachable: {error}",
            redact(&target.database_url)
        ),
    }
    Ok(())
}

/// Prints and returns the broker's topics with their partition counts.
fn print_topics(brokers: &str) -> Result<Vec<(String, usize)>> {
    let topics = topics::describe(brokers, Duration::from_secs(5))
        .with_context(|| format!("broker at {brokers} does not answer"))?;
    println!("broker {brokers}: ok, {} topics", topics.len());
    for (name, partitions) in &topics {
        let plural = if *partitions == 1 { "" } else { "s" };
        println!("  {name:<24} {partitions} partition{plural}");
    }
    Ok(topics)
}

async fn wait_for_shutdown_signal() -> Result<()> {
    let mut terminate = signal(SignalKind::terminate())?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result?,
        _ = terminate.recv() => {}
    }
    Ok(())
}
