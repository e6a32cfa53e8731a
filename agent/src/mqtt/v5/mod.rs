//! MQTT 5 (protocol level 5) on `rumqttc::v5::mqttbytes::v5`. Same promises as 3.1.1, said
//! more precisely: PUBACK 0x00 after the commit, 0x99 (0x90 for a wrong topic) with a reason
//! string for an invalid publish that is kept in the rejected table, 0x97 when the buffer is
//! full (the connection stays open); refused CONNECTs and protocol errors carry reason codes.

pub mod reply;

use bytes::{Buf as _, BytesMut};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{
    Connect, ConnectReturnCode, Disconnect, DisconnectReasonCode, LastWill, Login, Packet,
    PingResp, Publish,
};
use tokio_util::sync::CancellationToken;

use super::ingest::{Denied, Inbound, Ingest};
use super::session::{Close, Transport, Violation, idle_limit};

/// What the client asked for in its CONNECT that shapes every reply.
#[derive(Debug, Clone, Copy)]
pub struct Client {
    /// The client's Maximum Packet Size: nothing larger may be sent to it (§3.1.2.11.4).
    pub max_packet: Option<u32>,
    /// Request Problem Information; when false, no reason strings on PUBACK, SUBACK, UNSUBACK.
    pub problem_info: bool,
}

impl Client {
    pub fn of(connect: &Connect) -> Self {
        let properties = connect.properties.as_ref();
        Self {
            max_packet: properties.and_then(|p| p.max_packet_size),
            problem_info: properties.and_then(|p| p.request_problem_info) != Some(0),
        }
    }
}

/// Serves a connection whose CONNECT (already buffered) asks for protocol level 5. A protocol
/// error, the keep-alive running out or shutdown are announced with a DISCONNECT reason code.
pub async fn serve(
    mut transport: Transport,
    ingest: Ingest<'_>,
    shutdown: &CancellationToken,
) -> Result<(), Close> {
    let (connect, will, login) = match decode(&mut transport.read) {
        Ok(Packet::Connect(connect, will, login)) => (connect, will, login),
        Ok(_) => return Err(Close::NotConnect),
        Err(malformed) => return Err(refuse_malformed(transport, malformed).await),
    };
    let client = Client::of(&connect);
    let login = login.as_ref();
    let mut result = accept(&mut transport, &ingest, &connect, will.as_ref(), login).await;
    if result.is_ok() {
        let keep_alive = connect.keep_alive;
        result = session(&mut transport, &ingest, client, keep_alive, shutdown).await;
    }
    // A client that stopped reading gets no DISCONNECT: waiting to write it would hold the
    // connection for another packet timeout.
    if let Some(close) = result
        .as_ref()
        .err()
        .filter(|close| !matches!(close, Close::WriteTimeout(_)))
    {
        if let Some(disconnect) = reply::disconnect(close) {
            let packet = reply::fit(Packet::Disconnect(disconnect), client);
            if let Err(error) = transport.queue(|buf| reply::encode(&packet, buf)) {
                tracing::debug!(%error, "cannot encode the DISCONNECT");
            }
        }
        transport.close_after_flush().await;
    }
    result
}

/// §4.13.1: a malformed CONNECT may be answered with CONNACK 0x81 before the close.
async fn refuse_malformed(mut transport: Transport, malformed: Close) -> Close {
    let refusal = reply::refused(ConnectReturnCode::MalformedPacket, &malformed.to_string());
    let connack = Packet::ConnAck(refusal);
    if transport.queue(|buf| reply::encode(&connack, buf)).is_ok() {
        transport.close_after_flush().await;
    }
    malformed
}

async fn session(
    transport: &mut Transport,
    ingest: &Ingest<'_>,
    client: Client,
    keep_alive: u16,
    shutdown: &CancellationToken,
) -> Result<(), Close> {
    let idle = idle_limit(keep_alive, ingest.context.config.idle_timeout);
    loop {
        let packets = transport
            .batch(decode, ingest.max_inflight(), idle, shutdown)
            .await?;
        if !handle(transport, ingest, client, packets).await? {
            return Ok(());
        }
    }
}

/// A whole packet from the front of the buffer (the transport has checked its size).
pub fn decode(read: &mut BytesMut) -> Result<Packet, Close> {
    // A DISCONNECT with remaining length 0 means reason 0x00 (§3.14.2.1); the codec insists on
    // a reason byte.
    if read.starts_with(&[0xE0, 0x00]) {
        read.advance(2);
        let normal = Disconnect::new(DisconnectReasonCode::NormalDisconnection);
        return Ok(Packet::Disconnect(normal));
    }
    Packet::read(read, None).map_err(|error| Close::Malformed(error.to_string()))
}

/// Answers CONNECT: CONNACK 0x00 with what this server supports, or a refusal with its reason.
async fn accept(
    transport: &mut Transport,
    ingest: &Ingest<'_>,
    connect: &Connect,
    will: Option<&LastWill>,
    login: Option<&Login>,
) -> Result<(), Close> {
    let login = login.map(|login| (login.username.as_str(), login.password.as_bytes()));
    let refusal = refusal(connect, will, || ingest.authorize(login));
    let connack = match refusal {
        None => reply::accepted(connect, &ingest.context.config, ingest.peer),
        Some((code, why)) => reply::refused(code, why),
    };
    let connack = reply::fit(Packet::ConnAck(connack), Client::of(connect));
    transport.queue(|buf| reply::encode(&connack, buf))?;
    transport.flush().await?;
    match refusal {
        Some((_, why)) => Err(Close::Refused(why)),
        None => Ok(()),
    }
}

/// Why a CONNECT is refused, if it is; `authorize` checks the credentials, last.
pub fn refusal(
    connect: &Connect,
    will: Option<&LastWill>,
    authorize: impl FnOnce() -> Result<(), Denied>,
) -> Option<(ConnectReturnCode, &'static str)> {
    let properties = connect.properties.as_ref();
    if properties.is_some_and(|p| p.authentication_method.is_some()) {
        let why = "enhanced authentication is not supported; use a username and password";
        return Some((ConnectReturnCode::BadAuthenticationMethod, why));
    }
    // A will is never published (nobody subscribes here), but one we could not honour is refused
    // as the specification asks (§3.2.2.3.4, §3.2.2.3.5).
    if will.is_some_and(|will| will.qos == QoS::ExactlyOnce) {
        return Some((ConnectReturnCode::QoSNotSupported, "QoS 2 is not supported"));
    }
    if will.is_some_and(|will| will.retain) {
        let why = "retained messages are not supported";
        return Some((ConnectReturnCode::RetainNotSupported, why));
    }
    match authorize() {
        Ok(()) => None,
        Err(Denied::NoCredentials) => Some((
            ConnectReturnCode::NotAuthorized,
            "this listener needs a device's username and password",
        )),
        Err(Denied::BadCredentials) => Some((
            ConnectReturnCode::BadUserNamePassword,
            "bad username or password",
        )),
    }
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
pub fn sort(packets: Vec<Packet>, client: Client) -> Run {
    let mut run = Run::default();
    for packet in packets {
        match packet {
            Packet::Publish(publish) => match accept_publish(publish) {
                Ok(publish) => run.inbound.push(publish),
                Err(violation) => {
                    run.end = Some(Err(Close::Protocol(violation)));
                    break;
                }
            },
            Packet::PingReq(_) => run.replies.push(Packet::PingResp(PingResp)),
            Packet::Subscribe(subscribe) => run.replies.push(reply::suback(&subscribe, client)),
            Packet::Unsubscribe(unsubscribe) if unsubscribe.filters.is_empty() => {
                run.end = Some(Err(Close::Protocol(Violation::NoTopicFilters)));
                break;
            }
            Packet::Unsubscribe(unsubscribe) => {
                run.replies.push(reply::unsuback(&unsubscribe, client))
            }
            Packet::Disconnect(_) => {
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

/// Answers a run of packets: publishes are stored together, then acknowledged in order, each
/// with its reason code. A protocol error ends the run; what came before it is still stored and
/// acknowledged. Returns `false` when the client disconnected.
async fn handle(
    transport: &mut Transport,
    ingest: &Ingest<'_>,
    client: Client,
    packets: Vec<Packet>,
) -> Result<bool, Close> {
    let Run {
        inbound,
        replies,
        end,
    } = sort(packets, client);
    let acks = ingest
        .store(inbound)
        .await?
        .into_iter()
        .filter_map(|(pkid, outcome)| pkid.map(|pkid| reply::puback(pkid, outcome, client)));
    for packet in acks.chain(replies) {
        transport.queue(|buf| reply::encode(&packet, buf))?;
    }
    transport.flush().await?;
    end.unwrap_or(Ok(true))
}

/// A PUBLISH this server takes: QoS 0 or 1, not retained, no topic alias (we advertise none).
pub fn accept_publish(publish: Publish) -> Result<Inbound, Violation> {
    if publish.qos == QoS::ExactlyOnce {
        return Err(Violation::QoS2);
    }
    if publish.retain {
        return Err(Violation::Retain);
    }
    if publish
        .properties
        .as_ref()
        .is_some_and(|p| p.topic_alias.is_some())
    {
        return Err(Violation::TopicAlias);
    }
    let topic = String::from_utf8(publish.topic.to_vec()).map_err(|_| Violation::TopicEncoding)?;
    if topic.is_empty() {
        return Err(Violation::EmptyTopic);
    }
    Ok(Inbound {
        pkid: (publish.qos == QoS::AtLeastOnce).then_some(publish.pkid),
        topic,
        payload: publish.payload,
    })
}

fn name(packet: &Packet) -> &'static str {
    match packet {
        Packet::Connect(..) => "CONNECT",
        Packet::Auth(_) => "AUTH",
        Packet::PubRec(_) => "PUBREC",
        Packet::PubRel(_) => "PUBREL",
        Packet::PubComp(_) => "PUBCOMP",
        _ => "server-only",
    }
}
