//! The MQTT ingest listener (design §3): the server side of MQTT 3.1.1 and MQTT 5,
//! publish-only, built on rumqttc's packet codecs so that a PUBACK is written only after the
//! reading is committed.
//!
//! # How it fits
//! - `frame` reads the fixed header and, from CONNECT, the protocol level: 4 is served by
//!   `v4` (`rumqttc::mqttbytes::v4`), 5 by `v5` (`rumqttc::v5::mqttbytes::v5`); 3.1 and
//!   unknown levels get the 3.1.1 "unacceptable protocol version" CONNACK.
//! - With `--tls-cert`/`--tls-key` every connection is TLS first (`emberline_listen::Acceptor`);
//!   the handshake and CONNECT together must arrive within the connect timeout.
//! - `session` owns the socket: it reads whole packets only (a packet over
//!   `max_packet_bytes`, fixed header included, ends the connection from its header), enforces
//!   the connect timeout, the keep-alive (under keep-alive 0, the idle limit) and the packet
//!   timeout (a packet begun must be whole within it, whatever the keep-alive), and hands the
//!   versions runs of at most `max_inflight` packets.
//! - `ingest` is what both versions share: username/password against the device tokens,
//!   topic `sensors/{source_name}/readings` and payload validation, the rejected table, the
//!   group commit, metrics and alerts. The versions only turn its outcomes into packets.
//!
//! # What a PUBACK promises
//! The publishes of a run are committed together, then acknowledged in order; at most
//! `max_inflight` are read before their PUBACKs are written, so a fast client cannot queue
//! unbounded work. A QoS 1 payload that fails validation is kept in the buffer's rejected table
//! (and counted as `invalid`) before it is answered — never silently dropped:
//! - MQTT 3.1.1 has no negative PUBACK: it is acknowledged. A full buffer closes the connection
//!   without a PUBACK, so the client publishes again later.
//! - MQTT 5 says what happened: PUBACK 0x00 after the commit; 0x99 "payload format invalid"
//!   (0x90 "topic name invalid" for a wrong topic) with a reason string naming the bad fields;
//!   0x97 "quota exceeded" when the buffer is full, the connection staying open. CONNACK
//!   advertises the limits (receive maximum = `max_inflight`, maximum packet size, maximum
//!   QoS 1, no retain, no topic aliases, no subscriptions) and refuses bad credentials with
//!   0x86, missing ones with 0x87, a malformed CONNECT with 0x81. Protocol errors end with a
//!   DISCONNECT reason code (0x95 packet too large, 0x9B QoS 2, 0x9A retain, 0x8D keep-alive,
//!   0x8B shutdown …).
//!
//! In both versions a protocol error or an oversized packet ends the connection only after the
//! publishes read before it are committed and answered.
//!
//! No session outlives its connection: session present is always false, and an MQTT 5 client
//! asking for a session expiry is told 0. Wills are never published (a will this server could
//! not honour — QoS 2, retained — is refused at CONNACK under MQTT 5). QoS 2, oversized packets
//! and garbage close the connection.
//!
//! The receive maximum is kept by reading, not by policing: a client that sends more than
//! `max_inflight` unacknowledged publishes waits on TCP until its PUBACKs are written (no
//! DISCONNECT 0x93). A QoS 0 publish that meets a full buffer has no answer in either version:
//! it is counted (`outcome="full"`) and logged nowhere else.

mod frame;
#[doc(hidden)]
pub mod fuzzing;
mod ingest;
mod publish;
mod session;
mod v4;
mod v5;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use emberline_core::Limits;
use emberline_listen::Acceptor;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use crate::auth::Tokens;
use crate::buffer::Buffer;
use crate::metrics::Metrics;
pub use publish::{Checked, check, source_from_topic};
use session::{Close, Transport};

#[derive(Debug, Clone)]
pub struct MqttConfig {
    /// Largest packet accepted, fixed header included (MQTT 5 advertises it as the maximum
    /// packet size); a larger one closes the connection.
    pub max_packet_bytes: usize,
    /// Most publishes read before their PUBACKs are written (MQTT 5 advertises it as the
    /// receive maximum, capped at 65,535).
    pub max_inflight: usize,
    /// How long a new connection may take to finish its TLS handshake and send CONNECT.
    pub connect_timeout: Duration,
    /// Once a packet's first byte has arrived, how long the rest may take, whatever the
    /// keep-alive (which bounds silence between packets, and nothing at all when it is 0): a
    /// client stalling halfway through a packet is disconnected (MQTT 5: DISCONNECT 0x8D).
    /// Also how long one of our answers may wait to be written to a client that stopped reading.
    pub packet_timeout: Duration,
    /// How long a connection that asked for keep-alive 0 may stay silent before it is closed
    /// (MQTT 5: DISCONNECT 0x8D); `None`: for ever, as keep-alive 0 asks. It reclaims the
    /// connections of devices that vanished without closing them (power cut, NAT mapping
    /// dropped); a live device reconnects when it next publishes and loses nothing, since no
    /// session outlives its connection. Connections with a keep-alive keep 1.5 × theirs.
    pub idle_timeout: Option<Duration>,
}

impl MqttConfig {
    /// `max_inflight`, at least 1.
    pub fn inflight_limit(&self) -> usize {
        self.max_inflight.max(1)
    }
}

#[derive(Debug, Clone)]
pub struct MqttContext {
    pub buffer: Buffer,
    pub limits: Limits,
    pub tokens: Option<Arc<Tokens>>,
    pub metrics: Metrics,
    pub config: MqttConfig,
    /// The local alert bus, when enabled.
    pub alerts: Option<crate::alerts::Alerts>,
    /// TLS when a certificate is configured, plain TCP otherwise.
    pub acceptor: Acceptor,
}

/// Accepts connections until `shutdown`.
pub async fn serve(listener: TcpListener, context: MqttContext, shutdown: CancellationToken) {
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "MQTT accept failed");
                    continue;
                }
            },
            _ = shutdown.cancelled() => return,
        };
        let context = context.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            context.metrics.mqtt_connections.inc();
            if let Err(reason) = connection(stream, peer, &context, &shutdown).await {
                tracing::debug!(%peer, %reason, "MQTT connection closed");
            }
            context.metrics.mqtt_connections.dec();
        });
    }
}

/// Reads CONNECT (within the connect timeout) and serves the connection in its version.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    context: &MqttContext,
    shutdown: &CancellationToken,
) -> Result<(), Close> {
    // One bound for the handshake and CONNECT together: a client that stalls in either is gone
    // within `connect_timeout`.
    let deadline = tokio::time::Instant::now() + context.config.connect_timeout;
    let stream = context
        .acceptor
        .accept(stream, context.config.connect_timeout)
        .await?;
    let config = &context.config;
    let mut transport = Transport::new(stream, config.max_packet_bytes, config.packet_timeout);
    let level = tokio::time::timeout_at(deadline, transport.connect())
        .await
        .map_err(|_| Close::ConnectTimeout)??;
    let ingest = ingest::Ingest::new(context, peer);
    match level {
        4 => v4::serve(transport, ingest, shutdown).await,
        5 => v5::serve(transport, ingest, shutdown).await,
        other => Err(v4::refuse_version(transport, other).await),
    }
}
