//! Start-up and the serving loop: build from a checked configuration, serve until cancelled,
//! let in-flight batches finish, flush the producer, all within the shutdown bound.

use std::time::Duration;

use tokio::net::TcpListener;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use emberline_listen::Acceptor;
use emberline_listen::http::HttpOptions;

use crate::auth::Tokens;
use crate::config::{Config, ConfigError};
use crate::http::{AppState, app};
use crate::kafka::Kafka;

/// Why the bridge could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot create the Kafka producer: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("cannot set up TLS: {0}")]
    Tls(#[from] emberline_listen::TlsError),
}

/// A bridge ready to serve.
#[derive(Debug)]
pub struct Bridge {
    state: AppState,
    /// Bound on finishing in-flight requests plus flushing the producer after cancellation.
    shutdown_timeout: Duration,
    /// TLS when a certificate is configured, plain TCP otherwise.
    acceptor: Acceptor,
    /// Handshake, header-read and body bounds.
    options: HttpOptions,
}

impl Bridge {
    /// Checks `config`, loads the tokens and creates the producer. The broker need not be up:
    /// `/readyz` says when it is reachable.
    pub fn new(config: &Config) -> Result<Self, StartError> {
        config.validate()?;
        let tokens = config
            .tokens_file
            .as_deref()
            .map(Tokens::load)
            .transpose()?;
        match &tokens {
            Some(tokens) => tracing::info!(tokens = tokens.len(), "agent tokens loaded"),
            None => tracing::warn!(
                "no --tokens-file: every request is accepted without a token; configure per-agent tokens anywhere but a laptop"
            ),
        }
        let files = config.tls_cert.as_deref().zip(config.tls_key.as_deref());
        let acceptor = Acceptor::new(files, &[b"http/1.1"])?;
        let kafka = Kafka::new(config)?;
        Ok(Self {
            state: AppState::new(config, tokens, kafka),
            shutdown_timeout: config.shutdown_timeout,
            acceptor,
            options: HttpOptions::new(config.header_timeout, config.body_timeout),
        })
    }

    /// The shared state, e.g. to test routes with `app(state)`.
    pub fn state(&self) -> AppState {
        self.state.clone()
    }

    /// Serves on `listener` until `shutdown` is cancelled, then stops accepting, waits for
    /// in-flight requests and flushes the producer, giving up after the shutdown bound.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> std::io::Result<()> {
        let address = listener.local_addr()?;
        let shared = self.state.shared();
        tracing::info!(%address, tls = self.acceptor.is_tls(), raw_topic = %shared.raw_topic, status_topic = %shared.status_topic, "bridge listening");
        let server = emberline_listen::http::serve(
            listener,
            app(self.state.clone()),
            self.acceptor.clone(),
            self.options,
            shutdown.clone(),
        );
        let mut serving = std::pin::pin!(server);
        let ended = tokio::select! {
            () = &mut serving => true,
            () = shutdown.cancelled() => false,
        };
        let deadline = Instant::now() + self.shutdown_timeout;
        if !ended && tokio::time::timeout_at(deadline, serving).await.is_err() {
            tracing::warn!(timeout = ?self.shutdown_timeout, "in-flight requests did not finish in time; stopping anyway");
        }
        self.finish(deadline).await;
        Ok(())
    }

    /// Flushes what the producer still holds, then lets it go on a thread of its own: librdkafka's
    /// destroy can block after a broker restart (DEVELOPERS.md), and exit must not wait on it.
    async fn finish(self, deadline: Instant) {
        let remaining = deadline.saturating_duration_since(Instant::now());
        match self.state.shared().kafka.flush(remaining).await {
            Ok(()) => tracing::info!("producer flushed; bridge stopped"),
            Err(error) => {
                tracing::warn!(%error, "producer not flushed before the deadline; records not yet acknowledged were never answered 200")
            }
        }
        let state = self.state;
        let _ = std::thread::Builder::new()
            .name("emberline-bridge-drop".into())
            .spawn(move || drop(state));
    }
}
