//! `emberline-hub`: parse flags, start logging, run the chosen role until SIGTERM.

use anyhow::Context as _;
use clap::Parser as _;
use emberline_hub::{Cli, Command, Detector, Writer, db, shutdown, telemetry};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    telemetry::init(cli.log_format);
    let token = CancellationToken::new();
    shutdown::cancel_on_signals(token.clone()).context("cannot watch for SIGTERM and SIGINT")?;
    match cli.command {
        Command::Detect(config) => {
            let listener = listen(config.listen).await?;
            let detector = Detector::new(config).context("the detector cannot start")?;
            detector
                .run(listener, token)
                .await
                .context("the detector failed")
        }
        Command::Write(config) => {
            let listener = listen(config.listen).await?;
            let writer = Writer::new(config)
                .await
                .context("the writer cannot start")?;
            writer
                .run(listener, token)
                .await
                .context("the writer failed")
        }
        Command::Migrate(config) => {
            let pool = db::pool(config.database_url.expose(), 1)?;
            db::migrate(&pool).await.context("the migrations failed")
        }
    }
}

async fn listen(address: std::net::SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen on {address}"))
}
