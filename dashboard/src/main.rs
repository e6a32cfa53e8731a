//! `emberline-dashboard`: parse flags, start logging, serve the map until SIGTERM.

use anyhow::Context as _;
use clap::Parser as _;
use emberline_dashboard::{Config, Dashboard};
use emberline_hub::{shutdown, telemetry};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    telemetry::init(config.log_format);
    let token = CancellationToken::new();
    shutdown::cancel_on_signals(token.clone()).context("cannot watch for SIGTERM and SIGINT")?;
    let address = config.listen;
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen on {address}"))?;
    let dashboard = Dashboard::new(config)
        .await
        .context("the dashboard cannot start")?;
    dashboard
        .run(listener, token)
        .await
        .context("the dashboard failed")
}
