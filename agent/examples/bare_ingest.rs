//! The machine's HTTP ceiling for the ingest benchmark: an axum handler that only parses the
//! reading (the same parser as the agent) and answers 202 — no buffer, no disk.
//!
//! `cargo run --release -p emberline-agent --example bare_ingest -- 127.0.0.1:18090`

use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;
use bytes::Bytes;
use emberline_core::{Limits, Reading};
use time::OffsetDateTime;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18090".into());
    let limits = Limits::default();
    let app = Router::new().route(
        "/ingest",
        post(move |body: Bytes| {
            let limits = limits.clone();
            async move {
                match Reading::parse(&body, &limits, OffsetDateTime::now_utc()) {
                    Ok(_) => StatusCode::ACCEPTED,
                    Err(_) => StatusCode::UNPROCESSABLE_ENTITY,
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind(&address).await?;
    axum::serve(listener, app).await?;
    Ok(())
}
