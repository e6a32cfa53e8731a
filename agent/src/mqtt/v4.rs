//! MQTT 3.1.1 (protocol level 4) on `rumqttc::mqttbytes::v4`. 3.1.1 has no negative PUBACK: an
//! invalid payload is acknowledged (it is in the rejected table), and a full buffer closes the
//! connection without a PUBACK so that the client publishes again later.

use bytes::BytesMut;
use rumqttc::mqttbytes::QoS;
use rumqttc::mqttbytes::v4::{
    ConnAck, Connect, ConnectReturnCode, Packet, PubAck, SubAck, SubscribeReasonCode, UnsubAck,
};
use tokio_util::sync::CancellationToken;

use super::ingest::{Inbound, Ingest, Outcome};
use super::session::{Close, Transport, Violation, idle_limit};

/// Serves a connection whose CONNECT (already buffered) asks for protocol level 4.
pub async fn serve(
    mut transport: Transport,
    ingest: Ingest<'_>,
    shutdown: &CancellationToken,
) -> Result<(), Close> {
    let Packet::Connect(connect) = decode(&mut transport.read)? else {
        return Err(Close::NotConnect);
    };
    accept(&mut transport, &ingest, &connect).await?;
    let idle = idle_limit(connect.keep_alive, ingest.context.config.idle_timeout);
    loop {
        let packets = transport
            .batch(decode, ingest.max_inflight(), idle, shutdown)
            .await?;
        if !handle(&mut transport, &ingest, packets).await? {
            return Ok(());
        }
    }
}

/// Answers a CONNECT for a protocol level this listener does not speak (3.1's `MQIsdp`, or
/// anything unknown) with the 3.1.1 refusal, which older clients understand too.
pub async fn refuse_version(mut transport: Transport, level: u8) -> Close {
    let refusal = ConnAck::new(ConnectReturnCode::RefusedProtocolVersion, false);
    if transport
        .queue(|buf| Packet::ConnAck(refusal).write(buf, usize::MAX))
        .is_ok()
    {
        transport.close_after_flush().await;
    }
    Close::UnsupportedVersion(level)
}

/// A whole packet from the front of the buffer (the transport has checked its size).
pub fn decode(read: &mut BytesMut) -> Result<Packet, Close> {
    Packet::read(read, usize::MAX).map_err(|error| Close::Malformed(error.to_string()))
}

async fn accept(
    transport: &mut Transport,
    ingest: &Ingest<'_>,
    connect: &Connect,
) -> Result<(), Close> {
    let login = connect
        .login
        .as_ref()
        .map(|login| (login.username.as_str(), login.password.as_bytes()));
    let (code, verdict) = match ingest.authorize(login) {
        Ok(()) => (ConnectReturnCode::Success, Ok(())),
        Err(_) => (
            ConnectReturnCode::BadUserNamePassword,
            Err(Close::Refused("bad username or password")),
        ),
    };
    // No sessions are kept: session present is always false.
    let connack = Packet::ConnAck(ConnAck::new(code, false));
    transport.queue(|buf| connack.write(buf, usize::MAX))?;
    transport.flush().await?;
    verdict
}

/// What a run of packets asks for, decided without IO: the publishes to store, the replies to
/// other packets, and how the run ends (`None`: go on).
#[derive(Debug, Default)]
pub struct Run {
    pub inbound: Vec<Inbound>,
    pub replies: Vec<Packet>,
    /// `Ok(false)`: the client disconnected; `Err`: a protocol error ends the connection.
    pub end: Option<Result<bool, Close>>,
}

/// Sorts a run: a protocol error ends it, and what came before it is still answered.
pub fn sort(packets: Vec<Packet>) -> Run {
    let mut run = Run::default();
    for packet in packets {
        match packet {
            Packet::Publish(publish) if publish.qos == QoS::ExactlyOnce => {
                run.end = Some(Err(Close::Protocol(Violation::QoS2)));
                break;
            }
            Packet::Publish(publish) => run.inbound.push(Inbound {
                pkid: (publish.qos == QoS::AtLeastOnce).then_some(publish.pkid),
                topic: publish.topic,
                payload: publish.payload,
            }),
            Packet::PingReq => run.replies.push(Packet::PingResp),
            Packet::Subscribe(subscribe) => {
                let codes = vec![SubscribeReasonCode::Failure; subscribe.filters.len()];
                run.replies
                    .push(Packet::SubAck(SubAck::new(subscribe.pkid, codes)));
            }
            Packet::Unsubscribe(unsubscribe) if unsubscribe.topics.is_empty() => {
                run.end = Some(Err(Close::Protocol(Violation::NoTopicFilters)));
                break;
            }
            Packet::Unsubscribe(unsubscribe) => run
                .replies
                .push(Packet::UnsubAck(UnsubAck::new(unsubscribe.pkid))),
            Packet::Disconnect => {
                run.end = Some(Ok(false));
                break;
            }
            Packet::PubAck(_) => {}
            other => {
                run.end = Some(Err(Close::Protocol(Violation::Unexpected(name(&other)))));
                break;
            }
        }
    }
    run
}

/// The PUBACK that answers a stored publish: stored, or kept in the rejected table, both are
/// acknowledged (3.1.1 has no negative PUBACK); a full buffer closes the connection under a
/// QoS 1 publish (so that the client sends it again later) and answers nothing to a QoS 0 one,
/// as under MQTT 5; a failed buffer closes it.
pub fn puback(pkid: Option<u16>, outcome: &Outcome) -> Result<Option<Packet>, Close> {
    match (outcome, pkid) {
        (Outcome::Full, None) => Ok(None),
        (Outcome::Full, Some(_)) => Err(Close::BufferFull),
        (Outcome::Failed, _) => Err(Close::BufferFailed),
        (_, Some(pkid)) => Ok(Some(Packet::PubAck(PubAck::new(pkid)))),
        (_, None) => Ok(None),
    }
}

/// Answers a run of packets: publishes are stored together, then acknowledged in order. A
/// protocol error ends the run; what came before it is still stored and acknowledged. Returns
/// `false` when the client disconnected.
async fn handle(
    transport: &mut Transport,
    ingest: &Ingest<'_>,
    packets: Vec<Packet>,
) -> Result<bool, Close> {
    let Run {
        inbound,
        replies,
        end,
    } = sort(packets);
    let mut acks = Vec::new();
    for (pkid, outcome) in ingest.store(inbound).await? {
        acks.extend(puback(pkid, &outcome)?);
    }
    for reply in acks.into_iter().chain(replies) {
        transport.queue(|buf| reply.write(buf, usize::MAX))?;
    }
    transport.flush().await?;
    end.unwrap_or(Ok(true))
}

fn name(packet: &Packet) -> &'static str {
    match packet {
        Packet::Connect(_) => "CONNECT",
        Packet::ConnAck(_) => "CONNACK",
        Packet::PubRec(_) => "PUBREC",
        Packet::PubRel(_) => "PUBREL",
        Packet::PubComp(_) => "PUBCOMP",
        Packet::SubAck(_) => "SUBACK",
        Packet::UnsubAck(_) => "UNSUBACK",
        Packet::PingResp => "PINGRESP",
        _ => "server-only",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_buffer_closes_under_qos_1_and_answers_nothing_to_qos_0() {
        assert!(matches!(
            puback(Some(7), &Outcome::Full),
            Err(Close::BufferFull)
        ));
        assert!(matches!(puback(None, &Outcome::Full), Ok(None)));
        assert!(matches!(
            puback(None, &Outcome::Failed),
            Err(Close::BufferFailed)
        ));
        assert!(matches!(
            puback(Some(7), &Outcome::Stored),
            Ok(Some(Packet::PubAck(_)))
        ));
    }
}
