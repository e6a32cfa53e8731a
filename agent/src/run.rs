//! Wiring: buffer, HTTP, forwarder; one cancellation token; a bounded graceful shutdown.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use emberline_core::{AgentId, Limits};
use emberline_listen::Acceptor;
use emberline_listen::http::HttpOptions;
use secrecy::SecretString;
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

use crate::auth::Tokens;
use crate::buffer::{Buffer, StoreConfig};
use crate::config::RunArgs;
use crate::forwarder::{Forwarder, ForwarderConfig};
use crate::http::{BridgeStatus, Inner, app};
use crate::metrics::Metrics;
use crate::mqtt::{MqttConfig, MqttContext};

pub async fn run(args: RunArgs) -> Result<()> {
    let agent_id = AgentId::parse(args.agent_id.clone()).map_err(anyhow::Error::msg)?;
    if args.forward_max_readings == 0 || args.max_reading_bytes == 0 {
        bail!("--forward-max-readings and --max-reading-bytes must be at least 1");
    }
    let tokens = match &args.device_tokens_file {
        Some(path) => Some(Arc::new(Tokens::load(path)?)),
        None => {
            tracing::warn!("no device tokens configured: every device is accepted");
            None
        }
    };
    // Before the buffer: a bad certificate must stop the start, not a running agent.
    let tls_files = args.tls_cert.as_deref().zip(args.tls_key.as_deref());
    let http_tls = Acceptor::new(tls_files, &[b"http/1.1"])
        .context("cannot set up TLS for the HTTP listener")?;
    let mqtt_tls = Acceptor::new(tls_files, &[]).context("cannot set up TLS for MQTT")?;
    let (buffer, buffer_thread) = Buffer::start(StoreConfig {
        path: args.buffer_path.clone(),
        agent_id: agent_id.clone(),
        max_bytes: args.buffer_max_bytes,
        durability: args.buffer_durability,
        max_rejected_bytes: args.rejected_max_bytes,
    })
    .with_context(|| format!("cannot open the buffer at {}", args.buffer_path.display()))?;
    let metrics = Metrics::default();
    let bridge = Arc::new(BridgeStatus::default());
    let alerts = if args.no_alerts {
        None
    } else {
        tracing::info!(listen = %args.alerts_listen, "local alert bus");
        Some(crate::alerts::Alerts::start(args.alerts_listen)?)
    };
    let state = Arc::new(Inner {
        buffer: buffer.clone(),
        limits: Limits::default(),
        tokens,
        registry: metrics.registry(buffer.gauges()),
        metrics: metrics.clone(),
        bridge: bridge.clone(),
        alerts: alerts.clone(),
        max_reading_bytes: args.max_reading_bytes,
        max_batch_bytes: args.max_batch_bytes,
        max_batch_items: args.max_batch_items.max(1),
        max_buffer_bytes: args.buffer_max_bytes,
    });
    // Only when it serves: it holds a buffer handle, and the buffer thread ends (and the process
    // exits) only once every handle is gone.
    let mqtt = (!args.no_mqtt).then(|| MqttContext {
        buffer: buffer.clone(),
        limits: state.limits.clone(),
        tokens: state.tokens.clone(),
        metrics: metrics.clone(),
        alerts,
        acceptor: mqtt_tls,
        config: MqttConfig {
            max_packet_bytes: args.mqtt_max_packet_bytes,
            max_inflight: args.mqtt_max_inflight.max(1),
            connect_timeout: Duration::from_secs(args.mqtt_connect_timeout_secs.max(1)),
            packet_timeout: Duration::from_secs(args.mqtt_packet_timeout_secs.max(1)),
            idle_timeout: (args.mqtt_idle_timeout_secs > 0)
                .then(|| Duration::from_secs(args.mqtt_idle_timeout_secs)),
        },
    });
    let forwarder = Forwarder::new(
        forwarder_config(&args, agent_id)?,
        buffer.clone(),
        metrics,
        bridge,
    )?;

    let shutdown = CancellationToken::new();
    let listener = tokio::net::TcpListener::bind(args.http_listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.http_listen))?;
    tracing::info!(http = %args.http_listen, tls = tls_files.is_some(), buffer = %args.buffer_path.display(), bridge = %args.bridge_url, "agent running");
    let mut tasks = tokio::task::JoinSet::new();
    let options = HttpOptions::new(
        Duration::from_secs(args.http_header_timeout_secs.max(1)),
        Duration::from_secs(args.http_body_timeout_secs.max(1)),
    );
    tasks.spawn(emberline_listen::http::serve(
        listener,
        app(state),
        http_tls,
        options,
        shutdown.clone(),
    ));
    tasks.spawn(forwarder.run(shutdown.clone()));
    if let Some(mqtt) = mqtt {
        let listener = tokio::net::TcpListener::bind(args.mqtt_listen)
            .await
            .with_context(|| format!("cannot listen for MQTT on {}", args.mqtt_listen))?;
        tracing::info!(mqtt = %args.mqtt_listen, "MQTT ingest listening");
        tasks.spawn(crate::mqtt::serve(listener, mqtt, shutdown.clone()));
    }

    wait_for_signal().await?;
    tracing::info!("shutting down: no new readings; finishing what is in flight");
    shutdown.cancel();
    let drained = tokio::time::timeout(Duration::from_secs(args.shutdown_secs), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            "shutdown deadline passed; exiting with work in flight (buffered readings are safe)"
        );
    }
    drop(buffer);
    // Every handle is gone once the tasks end; the buffer thread then finishes its queue. Bounded
    // all the same: a handle kept by mistake must not keep the process alive (what is committed
    // is safe either way).
    if drained.is_ok() {
        // Polled, not joined on a blocking task: the runtime waits for its blocking tasks when
        // it shuts down, which would undo the bound.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(args.shutdown_secs);
        while !buffer_thread.is_finished() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if buffer_thread.is_finished() {
            let _ = buffer_thread.join();
        } else {
            tracing::warn!("the buffer thread did not stop in time; exiting anyway");
        }
    }
    Ok(())
}

fn forwarder_config(args: &RunArgs, agent_id: AgentId) -> Result<ForwarderConfig> {
    let token = match (
        &args.agent_token_file,
        std::env::var("EMBERLINE_AGENT_TOKEN"),
    ) {
        (Some(path), _) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            Some(SecretString::from(text.trim().to_owned()))
        }
        (None, Ok(token)) => Some(SecretString::from(token)),
        (None, Err(_)) => None,
    };
    Ok(ForwarderConfig {
        bridge_url: args.bridge_url.trim_end_matches('/').to_owned(),
        bridge_ca_file: args.bridge_ca_file.clone(),
        agent_id,
        token,
        max_batch_readings: args.forward_max_readings,
        max_batch_bytes: args.forward_max_bytes,
        linger: args.linger(),
        request_timeout: Duration::from_secs(30),
        heartbeat_every: Duration::from_secs(args.heartbeat_secs.max(1)),
        min_backoff: Duration::from_millis(200),
        // Short enough that a backlog leaves within seconds of the bridge's return (fault suite s2);
        // one request per attempt is no load on a recovering bridge.
        max_backoff: Duration::from_secs(10),
    })
}

/// SIGTERM or Ctrl-C; a second one exits at once.
async fn wait_for_signal() -> Result<()> {
    let mut terminate = signal(SignalKind::terminate())?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result?,
        _ = terminate.recv() => {}
    }
    tokio::spawn(async move {
        let mut terminate = signal(SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { if let Some(t) = terminate.as_mut() { t.recv().await; } } => {}
        }
        tracing::warn!("second signal: exiting now");
        std::process::exit(130);
    });
    Ok(())
}
