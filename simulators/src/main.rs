//! `emberline-sim`: parse flags, start logging, run on one runtime, print the summary.

use anyhow::{Context as _, Result};
use clap::Parser as _;
use emberline_sim::cli::{Cli, Command, FireArgs, MqttLoadArgs};
use tokio_util::sync::CancellationToken;

fn main() -> Result<()> {
    let cli = Cli::parse();
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        Command::MqttLoad(args) => mqtt_load(args),
        Command::Fire(args) => fire(args),
    }
}

fn fire(args: FireArgs) -> Result<()> {
    let json = args.json;
    let config = args.into_config().map_err(anyhow::Error::msg)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    let summary = runtime.block_on(async {
        let stop = CancellationToken::new();
        tokio::spawn(stop_on_signals(stop.clone()));
        emberline_sim::fire::run(config, stop).await
    })?;
    if json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        print!("{summary}");
    }
    Ok(())
}

fn mqtt_load(args: MqttLoadArgs) -> Result<()> {
    let (threads, json) = (args.threads, args.json);
    let config = args.into_config()?;
    let runtime = match threads {
        0 | 1 => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        n => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n)
            .enable_all()
            .build(),
    }
    .context("cannot start the tokio runtime")?;
    let summary = runtime.block_on(async {
        let stop = CancellationToken::new();
        tokio::spawn(stop_on_signals(stop.clone()));
        emberline_sim::mqtt_load::run(config, stop).await
    })?;
    if json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        print!("{summary}");
    }
    Ok(())
}

/// First Ctrl-C or SIGTERM: stop publishing, drain, print the summary. Second: exit at once.
async fn stop_on_signals(stop: CancellationToken) {
    let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
    else {
        return;
    };
    for n in 0..2 {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        if n == 0 {
            eprintln!(
                "stopping: waiting for the answers still outstanding (again to quit at once)"
            );
            stop.cancel();
        }
    }
    std::process::exit(130);
}
