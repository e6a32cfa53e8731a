//! The MQTT 5 packets this server sends, built without IO: what its CONNACK advertises, which
//! reason code answers each outcome, and how a reply is trimmed to the client's packet limit.

use std::net::SocketAddr;

use bytes::BytesMut;
use rumqttc::v5::mqttbytes::Error;
use rumqttc::v5::mqttbytes::v5::{
    ConnAck, ConnAckProperties, Connect, ConnectReturnCode, Disconnect, DisconnectProperties,
    DisconnectReasonCode, Packet, PubAck, PubAckProperties, PubAckReason, SubAck, SubAckProperties,
    Subscribe, SubscribeReasonCode, UnsubAck, UnsubAckProperties, UnsubAckReason, Unsubscribe,
};

use super::Client;
use crate::mqtt::MqttConfig;
use crate::mqtt::ingest::Outcome;
use crate::mqtt::session::{Close, Violation};

/// Reason strings are for people; a long list of bad fields is cut here.
const MAX_REASON_BYTES: usize = 1024;

/// CONNACK 0x00 and what this publish-only server supports. It keeps no sessions (session
/// present is false, and a client asking for a session expiry is told 0), takes at most
/// `max_inflight` unacknowledged QoS 1 publishes (receive maximum), QoS 1 at most, no retained
/// messages, no topic aliases, no subscriptions of any kind.
pub fn accepted(connect: &Connect, config: &MqttConfig, peer: SocketAddr) -> ConnAck {
    let asked_expiry = connect
        .properties
        .as_ref()
        .and_then(|p| p.session_expiry_interval)
        .unwrap_or(0);
    let properties = ConnAckProperties {
        session_expiry_interval: (asked_expiry > 0).then_some(0),
        receive_max: Some(u16::try_from(config.inflight_limit()).unwrap_or(u16::MAX)),
        max_qos: Some(1),
        retain_available: Some(0),
        max_packet_size: Some(u32::try_from(config.max_packet_bytes).unwrap_or(u32::MAX)),
        // An empty client identifier is allowed (§3.1.3.1); the server then names the client.
        assigned_client_identifier: connect
            .client_id
            .is_empty()
            .then(|| format!("emberline-{peer}")),
        topic_alias_max: Some(0),
        reason_string: None,
        user_properties: Vec::new(),
        wildcard_subscription_available: Some(0),
        subscription_identifiers_available: Some(0),
        shared_subscription_available: Some(0),
        server_keep_alive: None,
        response_information: None,
        server_reference: None,
        authentication_method: None,
        authentication_data: None,
    };
    ConnAck {
        session_present: false,
        code: ConnectReturnCode::Success,
        properties: Some(properties),
    }
}

/// A refused CONNECT: its reason code and a reason string.
pub fn refused(code: ConnectReturnCode, why: &str) -> ConnAck {
    let properties = ConnAckProperties {
        session_expiry_interval: None,
        receive_max: None,
        max_qos: None,
        retain_available: None,
        max_packet_size: None,
        assigned_client_identifier: None,
        topic_alias_max: None,
        reason_string: Some(why.to_owned()),
        user_properties: Vec::new(),
        wildcard_subscription_available: None,
        subscription_identifiers_available: None,
        shared_subscription_available: None,
        server_keep_alive: None,
        response_information: None,
        server_reference: None,
        authentication_method: None,
        authentication_data: None,
    };
    ConnAck {
        session_present: false,
        code,
        properties: Some(properties),
    }
}

/// The PUBACK for one QoS 1 publish.
pub fn puback(pkid: u16, outcome: Outcome, client: Client) -> Packet {
    let (reason, why) = match outcome {
        Outcome::Stored => (PubAckReason::Success, None),
        Outcome::BadTopic(why) => (PubAckReason::TopicNameInvalid, Some(why)),
        Outcome::Invalid(why) => (PubAckReason::PayloadFormatInvalid, Some(why)),
        Outcome::Full => (
            PubAckReason::QuotaExceeded,
            Some("the agent's buffer is full; publish again later".to_owned()),
        ),
        Outcome::Failed => (
            PubAckReason::UnspecifiedError,
            Some("the agent could not commit the reading; publish again later".to_owned()),
        ),
    };
    let properties = why
        .filter(|_| client.problem_info)
        .map(|why| PubAckProperties {
            reason_string: Some(clip(why)),
            user_properties: Vec::new(),
        });
    fit(
        Packet::PubAck(PubAck {
            pkid,
            reason,
            properties,
        }),
        client,
    )
}

const PUBLISH_ONLY: &str = "this listener takes publishes only; subscribe on the agent's alert bus";

/// Subscriptions are refused: this listener has nothing to deliver.
pub fn suback(subscribe: &Subscribe, client: Client) -> Packet {
    let properties = client.problem_info.then(|| SubAckProperties {
        reason_string: Some(PUBLISH_ONLY.to_owned()),
        user_properties: Vec::new(),
    });
    let suback = SubAck {
        pkid: subscribe.pkid,
        return_codes: vec![SubscribeReasonCode::NotAuthorized; subscribe.filters.len()],
        properties,
    };
    fit(Packet::SubAck(suback), client)
}

pub fn unsuback(unsubscribe: &Unsubscribe, client: Client) -> Packet {
    let properties = client.problem_info.then(|| UnsubAckProperties {
        reason_string: Some(PUBLISH_ONLY.to_owned()),
        user_properties: Vec::new(),
    });
    let unsuback = UnsubAck {
        pkid: unsubscribe.pkid,
        reasons: vec![UnsubAckReason::NoSubscriptionExisted; unsubscribe.filters.len()],
        properties,
    };
    fit(Packet::UnsubAck(unsuback), client)
}

/// The DISCONNECT that tells the client why the server ends the connection, when there is one
/// to send (not after a refused CONNECT, which its CONNACK explains, nor to a closed socket).
pub fn disconnect(close: &Close) -> Option<Disconnect> {
    use DisconnectReasonCode as Code;
    let code = match close {
        Close::TooLarge { .. } => Code::PacketTooLarge,
        Close::Malformed(_) | Close::Protocol(Violation::TopicEncoding) => Code::MalformedPacket,
        Close::Protocol(Violation::QoS2) => Code::QoSNotSupported,
        Close::Protocol(Violation::Retain) => Code::RetainNotSupported,
        Close::Protocol(Violation::TopicAlias) => Code::TopicAliasInvalid,
        Close::Protocol(
            Violation::EmptyTopic | Violation::NoTopicFilters | Violation::Unexpected(_),
        ) => Code::ProtocolError,
        // No reason code names a stalled packet; it is the connection going quiet all the same.
        Close::KeepAlive(_) | Close::PacketTimeout(_) => Code::KeepAliveTimeout,
        Close::Shutdown => Code::ServerShuttingDown,
        Close::BufferFailed => Code::UnspecifiedError,
        Close::Encode(_) => Code::ImplementationSpecificError,
        Close::PeerClosed
        | Close::WriteTimeout(_)
        | Close::Io(_)
        | Close::ConnectTimeout
        | Close::NotConnect
        | Close::UnsupportedVersion(_)
        | Close::Refused(_)
        | Close::BufferFull => return None,
    };
    Some(Disconnect {
        reason_code: code,
        properties: Some(DisconnectProperties {
            session_expiry_interval: None,
            reason_string: Some(clip(close.to_string())),
            user_properties: Vec::new(),
            server_reference: None,
        }),
    })
}

/// Drops reason strings from a reply larger than the client's Maximum Packet Size: the
/// specification forbids sending them then (§3.4.2.2.2 and alike), never the reply itself.
pub fn fit(mut packet: Packet, client: Client) -> Packet {
    let Some(max) = client.max_packet else {
        return packet;
    };
    if packet.size() <= max as usize {
        return packet;
    }
    match &mut packet {
        Packet::ConnAck(ack) => {
            if let Some(p) = &mut ack.properties {
                p.reason_string = None;
            }
        }
        Packet::PubAck(ack) => ack.properties = None,
        Packet::SubAck(ack) => ack.properties = None,
        Packet::UnsubAck(ack) => ack.properties = None,
        Packet::Disconnect(disconnect) => disconnect.properties = None,
        _ => {}
    }
    packet
}

/// Encodes a reply; every MQTT 5 packet this server sends goes through here.
///
/// rumqttc 0.25 cannot write a DISCONNECT whose properties were dropped (by [`fit`]): with none
/// it writes a remaining length of 1 followed by two bytes (the reason code and an empty property
/// length), leaving a stray byte that the client reads as the start of another packet; with empty
/// ones it writes a normal disconnection and loses the reason code. Such a DISCONNECT is written
/// here as the reason code and an empty property length, remaining length 2 (the shorter form
/// without the property length, which §3.14.2.2.1 allows, is refused by rumqttc's own reader).
/// Found by the `mqtt` fuzz target.
pub fn encode(packet: &Packet, buf: &mut BytesMut) -> Result<usize, Error> {
    match packet {
        Packet::Disconnect(Disconnect {
            reason_code,
            properties: None,
        }) if *reason_code != DisconnectReasonCode::NormalDisconnection => {
            buf.extend_from_slice(&[0xE0, 0x02, *reason_code as u8, 0x00]);
            Ok(4)
        }
        other => other.write(buf, None),
    }
}

/// At most [`MAX_REASON_BYTES`], cut on a character boundary.
fn clip(mut why: String) -> String {
    if why.len() > MAX_REASON_BYTES {
        let mut end = MAX_REASON_BYTES;
        while !why.is_char_boundary(end) {
            end -= 1;
        }
        why.truncate(end);
    }
    why
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_strings_are_dropped_when_the_client_limit_is_small() {
        let why = "invalid reading: humidity: 140 is out of range".to_owned();
        let generous = Client {
            max_packet: None,
            problem_info: true,
        };
        let Packet::PubAck(ack) = puback(7, Outcome::Invalid(why.clone()), generous) else {
            panic!("not a PUBACK");
        };
        assert_eq!(ack.reason, PubAckReason::PayloadFormatInvalid);
        assert_eq!(ack.properties.unwrap().reason_string, Some(why.clone()));

        let tight = Client {
            max_packet: Some(16),
            problem_info: true,
        };
        let Packet::PubAck(ack) = puback(7, Outcome::Invalid(why.clone()), tight) else {
            panic!("not a PUBACK");
        };
        assert_eq!(
            (ack.reason, ack.properties),
            (PubAckReason::PayloadFormatInvalid, None)
        );

        let quiet = Client {
            max_packet: None,
            problem_info: false,
        };
        let Packet::PubAck(ack) = puback(7, Outcome::Full, quiet) else {
            panic!("not a PUBACK");
        };
        assert_eq!(
            (ack.reason, ack.properties),
            (PubAckReason::QuotaExceeded, None)
        );
    }

    #[test]
    fn reasons_are_clipped_on_a_character_boundary() {
        let clipped = clip("é".repeat(MAX_REASON_BYTES));
        assert!(clipped.len() <= MAX_REASON_BYTES && clipped.len() >= MAX_REASON_BYTES - 1);
        assert_eq!(clip("short".to_owned()), "short");
    }

    /// The `mqtt` fuzz target's first crash: a client with a Maximum Packet Size of 16 gets a
    /// DISCONNECT whose reason string `fit` dropped; rumqttc wrote it with a stray trailing byte.
    #[test]
    fn a_trimmed_disconnect_is_one_whole_packet() {
        let tight = Client {
            max_packet: Some(16),
            problem_info: true,
        };
        let close = Close::Protocol(Violation::QoS2);
        let packet = fit(Packet::Disconnect(disconnect(&close).unwrap()), tight);
        let mut buf = BytesMut::new();
        assert_eq!(encode(&packet, &mut buf).unwrap(), 4);
        assert_eq!(&buf[..], [0xE0, 0x02, 0x9B, 0x00]);
        let Packet::Disconnect(read) = Packet::read(&mut buf, None).unwrap() else {
            panic!("not a DISCONNECT");
        };
        assert_eq!(read.reason_code, DisconnectReasonCode::QoSNotSupported);
        assert!(buf.is_empty(), "nothing left behind the packet");

        let normal = Packet::Disconnect(Disconnect::new(DisconnectReasonCode::NormalDisconnection));
        encode(&normal, &mut buf).unwrap();
        assert_eq!(&buf[..], [0xE0, 0x00]);
    }

    #[test]
    fn protocol_errors_have_disconnect_reasons() {
        let code = |close: Close| disconnect(&close).map(|d| d.reason_code);
        assert_eq!(
            code(Close::TooLarge { size: 9, max: 4 }),
            Some(DisconnectReasonCode::PacketTooLarge)
        );
        assert_eq!(
            code(Close::Protocol(Violation::QoS2)),
            Some(DisconnectReasonCode::QoSNotSupported)
        );
        assert_eq!(code(Close::PeerClosed), None);
        assert_eq!(code(Close::Refused("no")), None);
    }
}
