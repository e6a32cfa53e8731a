//! For the cargo-fuzz targets in `fuzz/` only, not an API: the listener's layers without IO, fed
//! with arbitrary bytes as a client's socket would give them.
//!
//! [`connection`] does what a connection does, in the same order and with the same functions,
//! minus the socket and the buffer: the CONNECT check and protocol level (`frame`), the version's
//! codec, CONNACK, runs of at most `max_inflight` packets (`session::decode_run`), sorting each
//! run (`v4::sort`, `v5::sort`), checking each publish (`publish::check`) as the buffer would
//! before storing it, and every reply encoded — PUBACKs, SUBACKs, DISCONNECT with its reason.

use std::net::{Ipv4Addr, SocketAddr};

use bytes::BytesMut;
use emberline_core::Limits;
use rumqttc::mqttbytes::v4 as v4_packets;
use rumqttc::v5::mqttbytes::v5 as v5_packets;
use time::OffsetDateTime;

use super::ingest::{Inbound, Outcome};
use super::session::{Close, decode_run, packet_len};
use super::{Checked, MqttConfig, check, frame, v4, v5};

/// What the server made of a client's bytes.
#[derive(Debug, Default)]
pub struct Conversation {
    /// The protocol level the CONNECT asked for, once one was read.
    pub level: Option<u8>,
    /// Every packet the server would have written, encoded, in order.
    pub written: BytesMut,
    /// Publishes checked (stored or kept in the rejected table).
    pub publishes: usize,
    /// Why the connection ended; `None` when the client disconnected or its bytes ran out.
    pub close: Option<String>,
}

/// Serves `stream` (everything a client sent, then end of stream) as the listener would.
pub fn connection(stream: &[u8], config: &MqttConfig, now: OffsetDateTime) -> Conversation {
    let mut talk = Conversation::default();
    let mut read = BytesMut::from(stream);
    let result = serve(&mut read, config, now, &mut talk);
    talk.close = result.err().map(|close| close.to_string());
    talk
}

fn serve(
    read: &mut BytesMut,
    config: &MqttConfig,
    now: OffsetDateTime,
    talk: &mut Conversation,
) -> Result<(), Close> {
    if read.first().is_some_and(|byte| byte >> 4 != 1) {
        return Err(Close::NotConnect);
    }
    let Some(len) = packet_len(read, config.max_packet_bytes)? else {
        return Err(Close::PeerClosed);
    };
    let level = frame::protocol_level(&read[..len])?;
    talk.level = Some(level);
    match level {
        4 => serve_v4(read, config, now, talk),
        5 => serve_v5(read, config, now, talk),
        other => {
            let refusal = v4_packets::ConnAck::new(
                v4_packets::ConnectReturnCode::RefusedProtocolVersion,
                false,
            );
            write(&mut talk.written, |buf| {
                v4_packets::Packet::ConnAck(refusal).write(buf, usize::MAX)
            })?;
            Err(Close::UnsupportedVersion(other))
        }
    }
}

fn serve_v4(
    read: &mut BytesMut,
    config: &MqttConfig,
    now: OffsetDateTime,
    talk: &mut Conversation,
) -> Result<(), Close> {
    let v4_packets::Packet::Connect(_connect) = v4::decode(read)? else {
        return Err(Close::NotConnect);
    };
    let connack = v4_packets::ConnAck::new(v4_packets::ConnectReturnCode::Success, false);
    write(&mut talk.written, |buf| {
        v4_packets::Packet::ConnAck(connack).write(buf, usize::MAX)
    })?;
    loop {
        let (packets, pending) = decode_run(
            read,
            config.max_packet_bytes,
            v4::decode,
            config.inflight_limit(),
        );
        if packets.is_empty() {
            return Err(pending.unwrap_or(Close::PeerClosed));
        }
        let run = v4::sort(packets);
        for (pkid, outcome) in store(run.inbound, now, talk) {
            if let Some(ack) = v4::puback(pkid, &outcome)? {
                write(&mut talk.written, |buf| ack.write(buf, usize::MAX))?;
            }
        }
        for reply in run.replies {
            write(&mut talk.written, |buf| reply.write(buf, usize::MAX))?;
        }
        match (run.end, pending) {
            (Some(Ok(false)), _) => return Ok(()),
            (Some(Err(close)), _) | (_, Some(close)) => return Err(close),
            _ => {}
        }
    }
}

fn serve_v5(
    read: &mut BytesMut,
    config: &MqttConfig,
    now: OffsetDateTime,
    talk: &mut Conversation,
) -> Result<(), Close> {
    let (connect, will) = match v5::decode(read) {
        Ok(v5_packets::Packet::Connect(connect, will, _login)) => (connect, will),
        Ok(_) => return Err(Close::NotConnect),
        Err(malformed) => {
            let why = malformed.to_string();
            let refusal = v5::reply::refused(v5_packets::ConnectReturnCode::MalformedPacket, &why);
            write(&mut talk.written, |buf| {
                v5_packets::Packet::ConnAck(refusal).write(buf, None)
            })?;
            return Err(malformed);
        }
    };
    let client = v5::Client::of(&connect);
    let peer = SocketAddr::from((Ipv4Addr::LOCALHOST, 1883));
    let refusal = v5::refusal(&connect, will.as_ref(), || Ok(()));
    let connack = match refusal {
        None => v5::reply::accepted(&connect, config, peer),
        Some((code, why)) => v5::reply::refused(code, why),
    };
    let connack = v5::reply::fit(v5_packets::Packet::ConnAck(connack), client);
    write(&mut talk.written, |buf| connack.write(buf, None))?;
    if let Some((_, why)) = refusal {
        return Err(Close::Refused(why));
    }
    let result = session_v5(read, config, now, client, talk);
    if let Err(close) = &result
        && let Some(disconnect) = v5::reply::disconnect(close)
    {
        let packet = v5::reply::fit(v5_packets::Packet::Disconnect(disconnect), client);
        write(&mut talk.written, |buf| packet.write(buf, None))?;
    }
    result
}

fn session_v5(
    read: &mut BytesMut,
    config: &MqttConfig,
    now: OffsetDateTime,
    client: v5::Client,
    talk: &mut Conversation,
) -> Result<(), Close> {
    loop {
        let (packets, pending) = decode_run(
            read,
            config.max_packet_bytes,
            v5::decode,
            config.inflight_limit(),
        );
        if packets.is_empty() {
            return Err(pending.unwrap_or(Close::PeerClosed));
        }
        let run = v5::sort(packets, client);
        for (pkid, outcome) in store(run.inbound, now, talk) {
            if let Some(pkid) = pkid {
                let ack = v5::reply::puback(pkid, outcome, client);
                write(&mut talk.written, |buf| ack.write(buf, None))?;
            }
        }
        for reply in run.replies {
            write(&mut talk.written, |buf| reply.write(buf, None))?;
        }
        match (run.end, pending) {
            (Some(Ok(false)), _) => return Ok(()),
            (Some(Err(close)), _) | (_, Some(close)) => return Err(close),
            _ => {}
        }
    }
}

/// What `Ingest::store` decides for each publish, with a buffer that always commits.
fn store(
    inbound: Vec<Inbound>,
    now: OffsetDateTime,
    talk: &mut Conversation,
) -> Vec<(Option<u16>, Outcome)> {
    let limits = Limits::default();
    talk.publishes += inbound.len();
    inbound
        .into_iter()
        .map(|publish| {
            let outcome = match check(&publish.topic, &publish.payload, &limits, now) {
                Checked::Reading(_) => Outcome::Stored,
                Checked::BadTopic(reason) => Outcome::BadTopic(reason),
                Checked::Rejected(reason) => Outcome::Invalid(reason),
            };
            (publish.pkid, outcome)
        })
        .collect()
}

fn write<E: std::fmt::Display>(
    out: &mut BytesMut,
    encode: impl FnOnce(&mut BytesMut) -> Result<usize, E>,
) -> Result<(), Close> {
    encode(out)
        .map(|_| ())
        .map_err(|error| Close::Encode(error.to_string()))
}
