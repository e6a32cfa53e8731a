//! `emberline-bridge`: parse flags, start logging, build the bridge, serve until SIGTERM.

use anyhow::Context as _;
use clap::Parser as _;
use emberline_bridge::{Bridge, Config, shutdown, telemetry};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    telemetry::init(config.log_format);
    let token = CancellationToken::new();
    shutdown::cancel_on_signals(token.clone()).context("cannot watch for SIGTERM and SIGINT")?;
    let bridge = Bridge::new(&config).context("the bridge cannot start")?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    bridge
        .serve(listener, token)
        .await
        .context("the HTTP server failed")
}
