//! `emberline-dashboard`: the live map operators watch all day (design §6).
//!
//! ```text
//! PostgreSQL (sensors, classifications, agents — written by `emberline-hub write`)
//!     └─▶ snapshot: /api/sensors, /data, /api/alerts, /api/agents ─┐
//! anomaly-data (followed from its end, no consumer group)          ├─▶ the page (Leaflet)
//!     └─▶ broadcast ─▶ /api/stream (Server-Sent Events) ───────────┘
//! ```
//!
//! # Invariants
//! - **Restart-safe.** Everything the page shows on load comes from PostgreSQL; the dashboard
//!   keeps no state of its own, so a restarted (or second) instance shows the same sensors.
//! - **Live, in order per sensor.** The page subscribes to the stream before it loads the
//!   snapshot and applies any update only if it is not older than what it shows (by the
//!   reading's timestamp), so the order in which the two arrive does not matter. A stream that
//!   falls behind gets a `resync` event and reloads the snapshot instead of silently skipping.
//! - **Readings are data, never markup.** The page renders every value with `textContent`; the
//!   Content-Security-Policy allows scripts only from the binary itself.
//! - **Bounded shutdown.** Cancelling the token ends open streams and the live feed at once;
//!   in-flight requests get `--shutdown-timeout`.
//! - **Slow clients are cut off.** The listener is `emberline_listen::http::serve`: TLS when
//!   configured, a request head within `--header-timeout`, a body within `--body-timeout`.
//!   Responses are not bounded, so a live stream stays open as long as the browser keeps it.
//!
//! # Layout
//! [`config`] flags; [`http`] the router ([`http::assets`] embedded page and Leaflet,
//! [`http::api`], [`http::stream`]); [`query`] the SQL; [`filter`] query parameters (pure);
//! [`feature`] the GeoJSON shape; [`live`] the Kafka follower; [`metrics`].

pub mod config;
pub mod feature;
pub mod feed;
pub mod filter;
pub mod http;
pub mod live;
pub mod metrics;
pub mod query;

use std::sync::Arc;
use std::time::Duration;

use emberline_listen::Acceptor;
use emberline_listen::http::HttpOptions;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

pub use config::{Config, ConfigError};
use feed::Feed;
pub use http::{AppState, PageConfig, app};
use metrics::Metrics;

/// Why the dashboard cannot start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum DashboardError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot set up the PostgreSQL pool: {0}")]
    Database(#[from] sqlx::Error),
    #[error("the database migrations failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(transparent)]
    Live(#[from] live::LiveError),
    #[error("cannot set up TLS: {0}")]
    Tls(#[from] emberline_listen::TlsError),
}

/// A dashboard, configured, not yet serving.
#[derive(Debug)]
pub struct Dashboard {
    config: Config,
    pool: PgPool,
    metrics: Arc<Metrics>,
    /// TLS when a certificate is configured, plain TCP otherwise.
    acceptor: Acceptor,
}

impl Dashboard {
    /// Checks the configuration and migrates when asked. PostgreSQL may be down: the pool
    /// connects lazily and `/readyz` says so.
    pub async fn new(config: Config) -> Result<Self, DashboardError> {
        config.validate()?;
        let files = config.tls_cert.as_deref().zip(config.tls_key.as_deref());
        let acceptor = Acceptor::new(files, &[b"http/1.1"])?;
        let pool = emberline_hub::db::pool(config.database_url.expose(), config.max_connections)?;
        if config.migrate {
            emberline_hub::db::migrate(&pool).await?;
        }
        Ok(Self {
            config,
            pool,
            metrics: Arc::new(Metrics::new()),
            acceptor,
        })
    }

    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// The routes' state, sending live events through `live`.
    pub fn state(&self, live: Feed, shutdown: CancellationToken) -> AppState {
        let page = PageConfig {
            tile_url: self.config.tile_url.clone(),
            tile_attribution: self.config.tile_attribution.clone(),
            agent_stale_after_seconds: self.config.agent_stale_after.as_secs_f64(),
        };
        AppState {
            pool: self.pool.clone(),
            metrics: self.metrics.clone(),
            live,
            page: Arc::new(page),
            agent_stale_after: self.config.agent_stale_after,
            shutdown,
        }
    }

    /// Serves on `listener` and follows the anomaly topic until `token` is cancelled.
    pub async fn run(
        self,
        listener: tokio::net::TcpListener,
        token: CancellationToken,
    ) -> Result<(), DashboardError> {
        let feed = Feed::new(self.config.stream_buffer);
        let (brokers, topic) = (
            self.config.brokers.clone(),
            self.config.anomaly_topic.clone(),
        );
        let live = tokio::spawn(live::run(
            brokers,
            topic,
            feed.clone(),
            self.metrics(),
            token.clone(),
        ));
        if let Ok(address) = listener.local_addr() {
            tracing::info!(%address, tls = self.acceptor.is_tls(), "dashboard listening");
        }
        let router = app(self.state(feed, token.clone()));
        let options = HttpOptions::new(self.config.header_timeout, self.config.body_timeout);
        let acceptor = self.acceptor.clone();
        let server =
            emberline_listen::http::serve(listener, router, acceptor, options, token.clone());
        let bound = async {
            token.cancelled().await;
            tokio::time::sleep(self.config.shutdown_timeout).await;
        };
        tokio::select! {
            () = server => {},
            () = bound => tracing::warn!("requests still open after the shutdown timeout; closing"),
        }
        token.cancel();
        match live.await {
            Ok(result) => result?,
            Err(error) => tracing::error!(%error, "the live feed task failed"),
        }
        // Connections still checked out by requests past the bound would keep `close` waiting
        // on their queries: the process is ending, so it waits a little, not for them.
        let closing = tokio::time::timeout(Duration::from_secs(2), self.pool.close());
        if closing.await.is_err() {
            tracing::warn!("database connections still busy at exit; leaving them");
        }
        tracing::info!("dashboard stopped");
        Ok(())
    }
}
