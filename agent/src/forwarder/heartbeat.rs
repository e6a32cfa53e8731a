//! Heartbeats: every `heartbeat_every`, the agent tells the bridge its buffer's depth, size and
//! oldest reading, and its version (relayed to `agent-status`, shown on the map).

use emberline_core::batch::Heartbeat;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use super::{ForwarderConfig, sleep_or_cancel};
use crate::bridge_client::BridgeClient;
use crate::buffer::Buffer;

pub(super) struct HeartbeatContext {
    pub(super) client: BridgeClient,
    pub(super) buffer: Buffer,
    pub(super) config: ForwarderConfig,
}

/// Tells the bridge, every `heartbeat_every`, how this agent and its buffer are doing.
pub(super) async fn heartbeats(context: HeartbeatContext, shutdown: CancellationToken) {
    loop {
        if let Ok(stats) = context.buffer.stats().await {
            let now = OffsetDateTime::now_utc();
            let heartbeat = Heartbeat {
                agent_id: context.config.agent_id.clone(),
                version: env!("CARGO_PKG_VERSION").to_owned(),
                sent_at: now,
                buffer_depth: stats.depth,
                buffer_bytes: stats.bytes,
                oldest_buffered_age_seconds: stats
                    .oldest_received_at
                    .map(|t| (now - t).as_seconds_f64().max(0.0)),
            };
            let body = serde_json::to_vec(&heartbeat).unwrap_or_default();
            let sent = context
                .client
                .post("/v1/heartbeats", "application/json", None, body)
                .await;
            match sent {
                Ok(answer) if answer.status.is_success() => {}
                Ok(answer) => tracing::debug!(status = %answer.status, "heartbeat not accepted"),
                Err(error) => tracing::debug!(%error, "heartbeat not delivered"),
            }
        }
        if !sleep_or_cancel(context.config.heartbeat_every, &shutdown).await {
            return;
        }
    }
}
