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
            let connack = v5_packets::Packet::ConnAck(refusal);
            write(&mut talk.written, |buf| v5::reply::encode(&connack, buf))?;
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
    write(&mut talk.written, |buf| v5::reply::encode(&connack, buf))?;
    if let Some((_, why)) = refusal {
        return Err(Close::Refused(why));
    }
    let result = session_v5(read, config, now, client, talk);
    if let Err(close) = &result
        && let Some(disconnect) = v5::reply::disconnect(close)
    {
        let packet = v5::reply::fit(v5_packets::Packet::Disconnect(disconnect), client);
        write(&mut talk.written, |buf| v5::reply::encode(&packet, buf))?;
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
                write(&mut talk.written, |buf| v5::reply::encode(&ack, buf))?;
            }
        }
        for reply in run.replies {
            write(&mut talk.written, |buf| v5::reply::encode(&reply, buf))?;
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use time::macros::datetime;

    use super::*;

    /// Reads back what the server wrote, packet by packet, as an MQTT 5 client would.
    fn read_all_v5(mut written: BytesMut) -> Vec<v5_packets::Packet> {
        let mut packets = Vec::new();
        while !written.is_empty() {
            packets.push(v5_packets::Packet::read(&mut written, None).unwrap());
        }
        packets
    }

    /// The `mqtt` fuzz target's crash-d2b75547…: an MQTT 5 client with a Maximum Packet Size of
    /// 16 sends a malformed packet after a publish; the DISCONNECT 0x81, its reason string dropped
    /// to fit, used to be written with a stray byte behind it (see `reply::encode`).
    #[test]
    fn fuzz_crash_disconnect_for_a_small_client_limit() {
        let stream = [
            0x10, 0x30, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x05, 0xc2, 0x00, 0x1e, 0x0a, 0x11,
            0x00, 0x00, 0x00, 0x3c, 0x27, 0x00, 0x00, 0x00, 0x10, 0x00, 0x08, 0x64, 0x65, 0x76,
            0x69, 0x63, 0x65, 0x2d, 0x31, 0x00, 0x07, 0x72, 0x69, 0x64, 0x67, 0x65, 0x2d, 0x37,
            0x00, 0x06, 0x73, 0x65, 0x63, 0x72, 0x65, 0x74, 0x32, 0x90, 0x02, 0x00, 0x18, 0x73,
            0x65, 0x6e, 0x73, 0x6f, 0x72, 0x73, 0x2f, 0x72, 0x69, 0x64, 0x67, 0x65, 0x2d, 0x37,
            0x2f, 0x72, 0x65, 0x61, 0x64, 0x69, 0x6e, 0x67, 0x73, 0x00, 0x01, 0x00, 0x7b, 0x22,
            0x74, 0x69, 0x6d, 0x65, 0x73, 0x74, 0x61, 0x6d, 0x70, 0x22, 0x3a, 0x20, 0x22, 0x32,
            0x30, 0x32, 0x35, 0x2d, 0x30, 0x35, 0x2d, 0x32, 0x34, 0x54, 0x31, 0x38, 0x3a, 0x30,
            0x33, 0x3a, 0x31, 0x31, 0x2e, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x5a, 0x22, 0x2c,
            0x20, 0x22, 0x6c, 0x61, 0x74, 0x69, 0x74, 0x75, 0x64, 0x65, 0x22, 0x3a, 0x20, 0x33,
            0x34, 0x2e, 0x30, 0x35, 0x2c, 0x20, 0x22, 0x6c, 0x6f, 0x6e, 0x67, 0x69, 0x74, 0x75,
            0x64, 0x65, 0x22, 0x3a, 0x20, 0x2d, 0x31, 0x31, 0x38, 0x2e, 0x35, 0x33, 0x2c, 0x20,
            0x22, 0x74, 0x65, 0x6d, 0x70, 0x65, 0x72, 0x61, 0x74, 0x75, 0x72, 0x65, 0x22, 0x3a,
            0x20, 0x34, 0x32, 0x2e, 0x35, 0x2c, 0x20, 0x22, 0x68, 0x75, 0x6d, 0x69, 0x64, 0x69,
            0x74, 0x79, 0x22, 0x3a, 0x20, 0x31, 0x32, 0x2c, 0x20, 0x22, 0x77, 0x69, 0x6e, 0x64,
            0x5f, 0x73, 0x70, 0x65, 0x65, 0x64, 0x22, 0x3a, 0x20, 0x33, 0x35, 0x2e, 0x32, 0x2c,
            0x20, 0x22, 0x77, 0x69, 0x6e, 0x64, 0x5f, 0x64, 0x69, 0x72, 0x65, 0x63, 0x74, 0x69,
            0x6f, 0x6e, 0x22, 0x3a, 0x20, 0x34, 0x35, 0x2c, 0x20, 0x22, 0x76, 0x65, 0x67, 0x65,
            0x74, 0x61, 0x74, 0x69, 0x6f, 0x6e, 0x5f, 0x65, 0x22, 0x3a, 0x20, 0x22, 0x72, 0x69,
            0x64, 0x67, 0x65, 0x2d, 0x37, 0x22, 0x7d, 0x32, 0x10, 0x00, 0x09, 0x65, 0x6c, 0x73,
            0x65, 0x77, 0x68, 0x65, 0x72, 0x65, 0x00, 0x02, 0x00, 0x7b, 0x7d, 0x32, 0x99, 0x02,
            0x00, 0x16, 0x73, 0x65, 0x6e, 0x73, 0x6f, 0x72, 0x73, 0x2f, 0x6f, 0x74, 0x68, 0x65,
            0x72, 0x2f, 0x72, 0x65, 0x61, 0x64, 0x69, 0x6e, 0x67, 0x73, 0x00, 0x03, 0x00, 0x7b,
            0x22, 0x74, 0x69, 0x6d, 0x65, 0x73, 0x74, 0x61, 0x6d, 0x70, 0x22, 0x3a, 0x20, 0x22,
            0x32, 0x30, 0x32, 0x35, 0x2d, 0x30, 0x35, 0x2d, 0x32, 0x34, 0x54, 0x31, 0x38, 0x3a,
            0x30, 0x33, 0x3a, 0x31, 0x31, 0x2e, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38,
            0x39, 0x30, 0x5a, 0x22, 0x2c, 0x20, 0x22, 0x6c, 0x61, 0x74, 0x69, 0x74, 0x75, 0x64,
            0x65, 0x22, 0x3a, 0x20, 0x39, 0x31, 0x2c, 0x20, 0x22, 0x6c, 0x6f, 0x6e, 0x67, 0x69,
            0x74, 0x75, 0x64, 0x65, 0x22, 0x3a, 0x20, 0x22, 0x78, 0x22, 0x2c, 0x20, 0x22, 0x74,
            0x65, 0x6d, 0x70, 0x65, 0x72, 0x61, 0x74, 0x75, 0x72, 0x65, 0x22, 0x3a, 0x20, 0xb0,
            0x65, 0x2b, 0x33, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x69, 0x64, 0x69,
            0x74, 0x79, 0x22, 0x3a, 0x20, 0x2d, 0x31, 0x2c, 0x20, 0x69, 0x77, 0x22, 0x6e, 0x64,
            0x5f, 0x73, 0x70, 0x65, 0x65, 0x64, 0x22, 0x3a, 0x20, 0x6e, 0x75, 0x6c, 0x6c, 0x2c,
            0x20, 0x22, 0x77, 0x69, 0x6e, 0x64, 0x5f, 0x64, 0x69, 0x72, 0x65, 0x63, 0x74, 0x69,
            0x6f, 0x6e, 0x22, 0x3a, 0x20, 0x33, 0x36, 0x30, 0x2c, 0x20, 0x22, 0x76, 0x65, 0x67,
            0x65, 0x74, 0x61, 0x74, 0x69, 0x6f, 0x6e, 0x5f, 0x64, 0x65, 0x6e, 0x73, 0x69, 0x74,
            0x79, 0x22, 0x3a, 0x20, 0x32, 0x2c, 0x20, 0x22, 0x61, 0x69, 0x72, 0x5f, 0x71, 0x75,
            0x61, 0x6c, 0x69, 0x74, 0x79, 0x5f, 0x69, 0x6e, 0x64, 0x65, 0x78, 0x22, 0x3a, 0x20,
            0x31, 0x30, 0x30, 0x31, 0x2c, 0x20, 0x22, 0x73, 0x6f, 0x75, 0x72, 0x63, 0x65, 0x5f,
            0x6e, 0x61, 0x6d, 0x65, 0x22, 0x3a, 0x20, 0x22, 0x61, 0x5c, 0x75, 0x30, 0x30, 0x30,
            0x37, 0x62, 0x22, 0x2c, 0x20, 0x22, 0x73, 0x65, 0x71, 0x22, 0x3a, 0x20, 0xda, 0xff,
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x00, 0x00, 0x08, 0x61, 0x6c, 0x65, 0x72,
            0x74, 0x73, 0x2f, 0x23, 0x01, 0xa2, 0x0d, 0x00, 0x08, 0x00, 0x00, 0x08, 0x61, 0x6c,
            0x65, 0x72, 0x74, 0x73, 0x2f, 0x23, 0xe0, 0x02, 0x00, 0x00,
        ];
        let config = MqttConfig {
            max_packet_bytes: 16 + 0x40 * 64,
            max_inflight: 3,
            connect_timeout: Duration::from_secs(5),
            packet_timeout: Duration::from_secs(10),
            idle_timeout: None,
        };
        let talk = connection(&stream, &config, datetime!(2025-05-24 18:05 UTC));
        assert_eq!(talk.level, Some(5));
        let packets = read_all_v5(talk.written);
        let Some(v5_packets::Packet::Disconnect(last)) = packets.last() else {
            panic!("no DISCONNECT last: {packets:?}");
        };
        assert_eq!(
            last.reason_code,
            v5_packets::DisconnectReasonCode::MalformedPacket
        );
    }

    fn config(max_inflight: usize) -> MqttConfig {
        MqttConfig {
            max_packet_bytes: 16 + 0x40 * 64,
            max_inflight,
            connect_timeout: Duration::from_secs(5),
            packet_timeout: Duration::from_secs(10),
            idle_timeout: None,
        }
    }

    /// The `mqtt` fuzz target's crash-cad34a72…: an MQTT 5 UNSUBSCRIBE without topic filters
    /// (which rumqttc's codec reads) was answered with an UNSUBACK without reason codes, a packet
    /// the client's codec refuses as malformed. It is a protocol error now.
    #[test]
    fn fuzz_crash_unsubscribe_without_filters() {
        let stream = [
            0x10, 0x30, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x05, 0x80, 0x00, 0x2c, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x22, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x8e, 0x9e,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x22, 0x00, 0x69, 0x47, 0x6d, 0x65, 0x73, 0x74,
            0x7d, 0xe8, 0xcf, 0xff, 0xfb, 0xb2, 0xae, 0xab, 0xab, 0x03, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0xf6, 0x00, 0x00, 0x01, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x19, 0x19, 0x19, 0x19, 0x19, 0x19, 0x19, 0x19, 0x19, 0x86, 0x19, 0xff,
            0xfe, 0x01, 0x30, 0x00, 0x00, 0x00, 0x01, 0x00, 0x9e, 0x9e, 0x9e, 0x00,
        ];
        let talk = connection(&stream, &config(7), datetime!(2025-05-24 18:05 UTC));
        assert_eq!(talk.level, Some(5));
        read_all_v5(talk.written);
    }

    #[test]
    fn an_unsubscribe_without_filters_is_a_protocol_error_in_both_versions() {
        let now = datetime!(2025-05-24 18:05 UTC);
        let connect_v5 = [0x10, 13, 0, 4, b'M', b'Q', b'T', b'T', 5, 2, 0, 60, 0, 0, 0];
        let unsubscribe_v5 = [0xA2, 3, 0, 7, 0];
        let talk = connection(
            &[&connect_v5[..], &unsubscribe_v5].concat(),
            &config(3),
            now,
        );
        let packets = read_all_v5(talk.written);
        let Some(v5_packets::Packet::Disconnect(last)) = packets.last() else {
            panic!("no DISCONNECT last: {packets:?}");
        };
        assert_eq!(
            last.reason_code,
            v5_packets::DisconnectReasonCode::ProtocolError
        );
        assert!(
            talk.close
                .unwrap()
                .contains("UNSUBSCRIBE without topic filters")
        );

        let connect_v4 = [0x10, 12, 0, 4, b'M', b'Q', b'T', b'T', 4, 2, 0, 60, 0, 0];
        let unsubscribe_v4 = [0xA2, 2, 0, 7];
        let talk = connection(
            &[&connect_v4[..], &unsubscribe_v4].concat(),
            &config(3),
            now,
        );
        assert_eq!(talk.level, Some(4));
        assert!(
            talk.close
                .unwrap()
                .contains("UNSUBSCRIBE without topic filters")
        );
    }
}
