//! The MQTT ingest listener (design §3): the server side of MQTT 3.1.1, publish-only, built on
//! rumqttc's packet codec so that a PUBACK is written only after the reading is committed.
//!
//! Per connection: CONNECT (with username/password when device tokens are configured), then
//! PUBLISH at QoS 0 or 1 to `sensors/{source_name}/readings`. The publishes already received are
//! committed together and acknowledged in order; at most `max_inflight` are read before their
//! PUBACKs are written, so a fast client cannot queue unbounded work. A payload that fails
//! validation is acknowledged (3.1.1 has no negative PUBACK) and kept in the buffer's rejected
//! table. When the buffer is full the connection is closed without a PUBACK, so the client
//! publishes again later. QoS 2, oversized packets and garbage close the connection.

mod publish;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use emberline_core::{Limits, Protocol};
use rumqttc::mqttbytes::v4::{
    ConnAck, ConnectReturnCode, Packet, PubAck, SubAck, SubscribeReasonCode, UnsubAck,
};
use rumqttc::mqttbytes::{Error as CodecError, QoS};
use time::OffsetDateTime;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use crate::auth::Tokens;
use crate::buffer::{Buffer, BufferError, Incoming, Rejected};
use crate::metrics::Metrics;
pub use publish::{Checked, check, source_from_topic};

#[derive(Debug, Clone)]
pub struct MqttConfig {
    /// Largest packet accepted; a larger one closes the connection.
    pub max_packet_bytes: usize,
    /// Most publishes read before their PUBACKs are written.
    pub max_inflight: usize,
    /// How long a new connection may take to send CONNECT.
    pub connect_timeout: Duration,
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
            if let Err(reason) = Connection::new(stream, peer, &context).run(&shutdown).await {
                tracing::debug!(%peer, %reason, "MQTT connection closed");
            }
            context.metrics.mqtt_connections.dec();
        });
    }
}

struct Connection<'a> {
    stream: TcpStream,
    peer: SocketAddr,
    context: &'a MqttContext,
    read: BytesMut,
    write: BytesMut,
    /// CONNECT accepted; until then any other first byte ends the connection at once.
    connected: bool,
}

impl<'a> Connection<'a> {
    fn new(stream: TcpStream, peer: SocketAddr, context: &'a MqttContext) -> Self {
        Self {
            stream,
            peer,
            context,
            read: BytesMut::with_capacity(4096),
            write: BytesMut::with_capacity(1024),
            connected: false,
        }
    }

    async fn run(mut self, shutdown: &CancellationToken) -> Result<(), String> {
        let connect_timeout = self.context.config.connect_timeout;
        let keep_alive = match tokio::time::timeout(connect_timeout, self.next_packet()).await {
            Ok(Ok(Packet::Connect(connect))) => self.accept(&connect).await?,
            Ok(Ok(other)) => return Err(format!("first packet was not CONNECT: {other:?}")),
            Ok(Err(error)) => return Err(error),
            Err(_) => return Err("no CONNECT in time".into()),
        };
        // MQTT 3.1.1 §3.1.2.10: one and a half keep-alive periods without a packet ends it.
        let idle = (keep_alive > 0).then(|| Duration::from_millis(u64::from(keep_alive) * 1500));
        loop {
            let first = tokio::select! {
                packet = self.next_packet_within(idle) => packet?,
                _ = shutdown.cancelled() => return Ok(()),
            };
            let mut packets = vec![first];
            while packets.len() < self.context.config.max_inflight {
                match self.decoded()? {
                    Some(packet) => packets.push(packet),
                    None => break,
                }
            }
            if !self.handle(packets).await? {
                return Ok(());
            }
        }
    }

    /// Answers CONNECT; returns the client's keep-alive in seconds.
    async fn accept(&mut self, connect: &rumqttc::mqttbytes::v4::Connect) -> Result<u16, String> {
        if let Some(tokens) = &self.context.tokens {
            let allowed = connect.login.as_ref().is_some_and(|login| {
                tokens.check_password(&login.username, login.password.as_bytes())
            });
            if !allowed {
                self.send(Packet::ConnAck(ConnAck::new(
                    ConnectReturnCode::BadUserNamePassword,
                    false,
                )))
                .await?;
                self.context.metrics.reading("mqtt", "unauthorized", 1);
                return Err("bad username or password".into());
            }
        }
        self.connected = true;
        self.send(Packet::ConnAck(ConnAck::new(
            ConnectReturnCode::Success,
            false,
        )))
        .await?;
        Ok(connect.keep_alive)
    }

    /// Handles a run of packets: publishes are committed together, then acknowledged in order.
    /// Returns `false` when the connection should end.
    async fn handle(&mut self, packets: Vec<Packet>) -> Result<bool, String> {
        let now = OffsetDateTime::now_utc();
        let mut incoming = Vec::new();
        let mut acks = Vec::new();
        let mut replies = Vec::new();
        for packet in packets {
            match packet {
                Packet::Publish(publish) if publish.qos == QoS::ExactlyOnce => {
                    return Err("QoS 2 is not supported".into());
                }
                Packet::Publish(publish) => {
                    match check(&publish.topic, &publish.payload, &self.context.limits, now) {
                        Checked::Reading(reading) => incoming.push(Incoming {
                            reading: *reading,
                            protocol: Protocol::Mqtt,
                            received_at: now,
                        }),
                        Checked::Rejected(reason) => {
                            self.reject(&publish.topic, &publish.payload, reason)
                                .await?
                        }
                    }
                    if publish.qos == QoS::AtLeastOnce {
                        acks.push(publish.pkid);
                    }
                }
                Packet::PingReq => replies.push(Packet::PingResp),
                Packet::Subscribe(subscribe) => {
                    let codes = vec![SubscribeReasonCode::Failure; subscribe.filters.len()];
                    replies.push(Packet::SubAck(SubAck::new(subscribe.pkid, codes)));
                }
                Packet::Unsubscribe(unsubscribe) => {
                    replies.push(Packet::UnsubAck(UnsubAck::new(unsubscribe.pkid)))
                }
                Packet::Disconnect => return self.commit(incoming, acks).await.map(|()| false),
                Packet::PubAck(_) => {}
                other => return Err(format!("unexpected packet {other:?}")),
            }
        }
        self.commit(incoming, acks).await?;
        for reply in replies {
            self.queue(reply)?;
        }
        self.flush().await?;
        Ok(true)
    }

    /// Commits the readings, then (and only then) queues the PUBACKs.
    async fn commit(&mut self, incoming: Vec<Incoming>, acks: Vec<u16>) -> Result<(), String> {
        let n = incoming.len() as u64;
        if n > 0 {
            let alerts = self.context.alerts.as_ref();
            let pending = crate::alerts::prepare_all(alerts, incoming.iter().map(|i| &i.reading));
            match self.context.buffer.append(incoming).await {
                Ok(accepted) => {
                    self.context.metrics.reading("mqtt", "accepted", n);
                    let ids: Vec<_> = accepted.into_iter().map(|a| a.reading_id).collect();
                    crate::alerts::publish_all(alerts, pending, &ids);
                }
                Err(BufferError::Full) => {
                    self.context.metrics.reading("mqtt", "full", n);
                    return Err("buffer full: closing without PUBACK so the client retries".into());
                }
                Err(error) => {
                    self.context.metrics.reading("mqtt", "error", n);
                    return Err(format!("buffer error: {error}"));
                }
            }
        }
        for pkid in acks {
            self.queue(Packet::PubAck(PubAck::new(pkid)))?;
        }
        self.flush().await
    }

    async fn reject(&mut self, topic: &str, payload: &[u8], reason: String) -> Result<(), String> {
        self.context.metrics.reading("mqtt", "invalid", 1);
        let rejected = Rejected {
            protocol: Protocol::Mqtt,
            origin: format!("{} {topic}", self.peer),
            payload: payload.to_vec(),
            reason,
        };
        self.context
            .buffer
            .reject(rejected)
            .await
            .map_err(|error| format!("cannot record a rejected publish: {error}"))
    }

    async fn next_packet_within(&mut self, idle: Option<Duration>) -> Result<Packet, String> {
        match idle {
            Some(idle) => tokio::time::timeout(idle, self.next_packet())
                .await
                .map_err(|_| "keep-alive expired".to_owned())?,
            None => self.next_packet().await,
        }
    }

    /// The next complete packet, reading from the socket as needed.
    async fn next_packet(&mut self) -> Result<Packet, String> {
        loop {
            if let Some(packet) = self.decoded()? {
                return Ok(packet);
            }
            let read = self
                .stream
                .read_buf(&mut self.read)
                .await
                .map_err(|e| e.to_string())?;
            if read == 0 {
                return Err("peer closed the connection".into());
            }
        }
    }

    /// A packet already in the read buffer, if a whole one is there.
    fn decoded(&mut self) -> Result<Option<Packet>, String> {
        // A first byte that is not CONNECT (type 1) is not MQTT: do not wait for the rest of a
        // "packet" whose length came from garbage.
        if !self.connected && self.read.first().is_some_and(|byte| byte >> 4 != 1) {
            return Err("the first packet is not CONNECT".into());
        }
        match Packet::read(&mut self.read, self.context.config.max_packet_bytes) {
            Ok(packet) => Ok(Some(packet)),
            Err(CodecError::InsufficientBytes(_)) => Ok(None),
            Err(error) => Err(format!("bad packet: {error}")),
        }
    }

    fn queue(&mut self, packet: Packet) -> Result<(), String> {
        packet
            .write(&mut self.write, usize::MAX)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    async fn send(&mut self, packet: Packet) -> Result<(), String> {
        self.queue(packet)?;
        self.flush().await
    }

    async fn flush(&mut self) -> Result<(), String> {
        if !self.write.is_empty() {
            self.stream
                .write_all(&self.write)
                .await
                .map_err(|e| e.to_string())?;
            self.write.clear();
        }
        Ok(())
    }
}
