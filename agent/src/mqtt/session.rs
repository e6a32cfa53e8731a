//! One connection's socket and buffers, shared by both protocol versions: it reads whole packets
//! (never more than the size limit), hands them to the version's decoder in bounded runs, and
//! writes what the version queues. Why a connection ends is a [`Close`].

use std::time::Duration;

use bytes::BytesMut;
use emberline_listen::Stream;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_util::sync::CancellationToken;

use super::frame::{self, FrameError};

/// Why a connection ended (or must end). MQTT 5 turns most of these into a DISCONNECT reason.
#[derive(Debug, thiserror::Error)]
pub enum Close {
    #[error("peer closed the connection")]
    PeerClosed,
    #[error("socket error: {0}")]
    Io(#[from] std::io::Error),
    #[error("no CONNECT in time")]
    ConnectTimeout,
    /// No packet within the keep-alive (1.5 × the client's), or, under keep-alive 0, within
    /// the idle limit.
    #[error("no packet for {0:?}: keep-alive expired")]
    KeepAlive(Duration),
    #[error("a packet did not arrive whole within {0:?} of its first byte")]
    PacketTimeout(Duration),
    /// The client did not take our answers within the packet timeout (it stopped reading its
    /// socket): it is dropped without a DISCONNECT, which it would not read either.
    #[error("the client did not read our answers within {0:?}")]
    WriteTimeout(Duration),
    #[error("the listener is shutting down")]
    Shutdown,
    #[error("the first packet is not CONNECT")]
    NotConnect,
    #[error("a packet of {size} bytes is larger than the {max}-byte limit")]
    TooLarge { size: usize, max: usize },
    #[error("malformed packet: {0}")]
    Malformed(String),
    #[error("protocol error: {0}")]
    Protocol(Violation),
    #[error("unsupported protocol level {0}")]
    UnsupportedVersion(u8),
    #[error("connection refused: {0}")]
    Refused(&'static str),
    #[error("buffer full: closing without PUBACK so the client publishes again")]
    BufferFull,
    #[error("the buffer could not commit")]
    BufferFailed,
    #[error("cannot encode a reply: {0}")]
    Encode(String),
}

impl From<FrameError> for Close {
    fn from(error: FrameError) -> Self {
        Self::Malformed(error.to_string())
    }
}

/// A client breaking a rule of the protocol or of this publish-only listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    #[error("QoS 2 is not supported")]
    QoS2,
    #[error("retained messages are not supported")]
    Retain,
    #[error("topic aliases are not supported")]
    TopicAlias,
    #[error("the topic name is not UTF-8")]
    TopicEncoding,
    #[error("a PUBLISH without a topic name")]
    EmptyTopic,
    /// MQTT 3.1.1 §3.10.3 and 5 §3.10.3: an UNSUBSCRIBE names at least one topic filter (the
    /// codecs read one without; MQTT 5 has no UNSUBACK to answer it with).
    #[error("an UNSUBSCRIBE without topic filters")]
    NoTopicFilters,
    #[error("unexpected {0} packet")]
    Unexpected(&'static str),
}

/// The longest silence allowed: MQTT 3.1.1 §3.1.2.10 and MQTT 5 §3.1.2.10 both allow one and
/// a half keep-alive periods without a packet. Keep-alive 0 turns that off; a server may still
/// close a connection it finds inactive (the same sections), so `keep_alive_0` (the idle limit,
/// `None` for none) bounds it instead.
pub fn idle_limit(keep_alive_secs: u16, keep_alive_0: Option<Duration>) -> Option<Duration> {
    match keep_alive_secs {
        0 => keep_alive_0,
        secs => Some(Duration::from_millis(u64::from(secs) * 1500)),
    }
}

#[derive(Debug)]
pub struct Transport {
    stream: Stream,
    /// Bytes read and not yet decoded; never grows past one packet of `max_packet` plus what one
    /// read returns, because a larger packet is refused from its fixed header.
    pub read: BytesMut,
    write: BytesMut,
    /// Largest whole packet (fixed header included) accepted from the client.
    max_packet: usize,
    /// Once a packet has begun, how long the rest of it may take, whatever the keep-alive: a
    /// client that stalls halfway through a packet is disconnected. It bounds each write of our
    /// answers too ([`Transport::flush`]).
    packet_timeout: Duration,
    /// An error found behind packets already decoded: those are answered first, then this ends
    /// the connection.
    pending: Option<Close>,
}

impl Transport {
    pub fn new(stream: Stream, max_packet: usize, packet_timeout: Duration) -> Self {
        Self {
            stream,
            read: BytesMut::with_capacity(4096),
            write: BytesMut::with_capacity(1024),
            max_packet,
            packet_timeout,
            pending: None,
        }
    }

    /// Reads until a whole CONNECT is buffered and returns the protocol level it asks for.
    /// Anything else first is not MQTT: it ends the connection at once, without waiting for the
    /// rest of a "packet" whose length came from garbage.
    pub async fn connect(&mut self) -> Result<u8, Close> {
        loop {
            if self.read.first().is_some_and(|byte| byte >> 4 != 1) {
                return Err(Close::NotConnect);
            }
            if let Some(len) = self.frame()? {
                return Ok(frame::protocol_level(&self.read[..len])?);
            }
            self.fill().await?;
        }
    }

    /// Waits (at most `idle`, unless `shutdown` comes first) for one whole packet, then decodes it
    /// and those already read behind it, at most `max` in all: the run a version answers at once.
    /// Once the packet has begun it must be whole within the packet timeout, even when `idle`
    /// is longer or `None`.
    pub async fn batch<P>(
        &mut self,
        decode: impl FnMut(&mut BytesMut) -> Result<P, Close>,
        max: usize,
        idle: Option<Duration>,
        shutdown: &CancellationToken,
    ) -> Result<Vec<P>, Close> {
        if let Some(error) = self.pending.take() {
            return Err(error);
        }
        tokio::select! {
            ready = within(idle, self.whole_packet()) => ready?,
            _ = shutdown.cancelled() => return Err(Close::Shutdown),
        }
        match decode_run(&mut self.read, self.max_packet, decode, max) {
            (packets, Some(error)) if packets.is_empty() => Err(error),
            (packets, error) => {
                self.pending = error;
                Ok(packets)
            }
        }
    }

    /// The packet's clock starts with its first byte, or now when part of it was read with the
    /// run before (then it also covers the time that run took to answer).
    async fn whole_packet(&mut self) -> Result<(), Close> {
        if self.read.is_empty() {
            self.fill().await?;
        }
        let limit = self.packet_timeout;
        let rest = async {
            while self.frame()?.is_none() {
                self.fill().await?;
            }
            Ok(())
        };
        tokio::time::timeout(limit, rest)
            .await
            .map_err(|_| Close::PacketTimeout(limit))?
    }

    fn frame(&self) -> Result<Option<usize>, Close> {
        packet_len(&self.read, self.max_packet)
    }

    async fn fill(&mut self) -> Result<(), Close> {
        if self.stream.read_buf(&mut self.read).await? == 0 {
            return Err(Close::PeerClosed);
        }
        Ok(())
    }

    /// Encodes a reply into the write buffer; [`Transport::flush`] sends it.
    pub fn queue<E: std::fmt::Display>(
        &mut self,
        encode: impl FnOnce(&mut BytesMut) -> Result<usize, E>,
    ) -> Result<(), Close> {
        encode(&mut self.write)
            .map(|_| ())
            .map_err(|error| Close::Encode(error.to_string()))
    }

    /// Writes what is queued, within the packet timeout: a client that stops reading would
    /// otherwise hold its connection (and the keep-alive, which only watches reads) for ever.
    pub async fn flush(&mut self) -> Result<(), Close> {
        if !self.write.is_empty() {
            let limit = self.packet_timeout;
            tokio::time::timeout(limit, self.stream.write_all(&self.write))
                .await
                .map_err(|_| Close::WriteTimeout(limit))??;
            self.write.clear();
        }
        Ok(())
    }

    /// Sends what is queued, then closes so that the client reads it: our side stops writing and
    /// what the client still sends is read and dropped for a moment (closing with unread bytes
    /// would reset the connection and could discard our last packet before the client reads it).
    pub async fn close_after_flush(mut self) {
        if self.flush().await.is_err() || self.stream.shutdown().await.is_err() {
            return;
        }
        let mut sink = [0u8; 4096];
        let drain = async {
            let mut budget = 4 * self.max_packet.max(4096);
            while budget > 0 {
                match self.stream.read(&mut sink).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => budget = budget.saturating_sub(n),
                }
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
    }
}

/// The size of the packet at the front of `read`, once all of it is there; a packet larger than
/// `max_packet` is refused from its fixed header.
pub fn packet_len(read: &[u8], max_packet: usize) -> Result<Option<usize>, Close> {
    let Some(header) = frame::header(read)? else {
        return Ok(None);
    };
    if header.total() > max_packet {
        return Err(Close::TooLarge {
            size: header.total(),
            max: max_packet,
        });
    }
    Ok((read.len() >= header.total()).then_some(header.total()))
}

/// Decodes the whole packets at the front of `read`, at most `max` (at least one): the run a
/// version answers at once. An error found behind them is returned beside them, so that what
/// came before it is still answered; the bytes of a partial packet stay in `read`.
pub fn decode_run<P>(
    read: &mut BytesMut,
    max_packet: usize,
    mut decode: impl FnMut(&mut BytesMut) -> Result<P, Close>,
    max: usize,
) -> (Vec<P>, Option<Close>) {
    let mut packets = Vec::new();
    while packets.len() < max.max(1) {
        let next = match packet_len(read, max_packet) {
            Ok(Some(_)) => decode(read),
            Ok(None) => break,
            Err(error) => Err(error),
        };
        match next {
            Ok(packet) => packets.push(packet),
            Err(error) => return (packets, Some(error)),
        }
    }
    (packets, None)
}

async fn within<T>(
    limit: Option<Duration>,
    work: impl Future<Output = Result<T, Close>>,
) -> Result<T, Close> {
    match limit {
        Some(limit) => tokio::time::timeout(limit, work)
            .await
            .map_err(|_| Close::KeepAlive(limit))?,
        None => work.await,
    }
}
