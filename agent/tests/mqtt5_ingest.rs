//! MQTT 5 on the ingest listener against clients not written here — rumqttc's v5 client,
//! `mosquitto_pub -V mqttv5` (Debian) and paho-mqtt (PyPI, `MQTTv5`) — and raw packets for what
//! well-behaved clients never send. PUBACK 0x00 means the reading is in the buffer; a negative
//! PUBACK means it is not, and an invalid one is in the rejected table.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod support;

use std::process::{Command, Output};
use std::time::Duration;

use bytes::BytesMut;
use emberline_core::Protocol;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{
    Connect, ConnectProperties, ConnectReturnCode, DisconnectReasonCode, Filter, Packet, PubAck,
    PubAckReason, Publish, Subscribe, SubscribeReasonCode,
};
use rumqttc::v5::{AsyncClient, ConnectionError, Event, EventLoop, MqttOptions};
use support::{
    Listener, MAX_INFLIGHT, MAX_PACKET_BYTES, Options, listener, listener_with, payload,
};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const WAIT: Duration = Duration::from_secs(10);
const TOPIC: &str = "sensors/dev-5/readings";

/// The next packet the client receives, within a bounded wait.
async fn next_incoming(events: &mut EventLoop) -> Packet {
    tokio::time::timeout(WAIT, async {
        loop {
            if let Event::Incoming(packet) = events.poll().await.unwrap() {
                return packet;
            }
        }
    })
    .await
    .expect("no packet from the listener in time")
}

/// The next PUBACK the client receives, within a bounded wait.
async fn next_puback(events: &mut EventLoop) -> PubAck {
    tokio::time::timeout(WAIT, async {
        loop {
            if let Event::Incoming(Packet::PubAck(ack)) = events.poll().await.unwrap() {
                return ack;
            }
        }
    })
    .await
    .expect("no PUBACK from the listener in time")
}

fn mosquitto_pub(port: u16, message: &str, extra: &[&str]) -> Output {
    Command::new("timeout")
        .args(["20", "mosquitto_pub", "-h", "127.0.0.1", "-q", "1"])
        .args(["-p", &port.to_string(), "-t", TOPIC, "-m", message])
        .args(extra)
        .output()
        .expect("mosquitto_pub (Debian mosquitto-clients) must be installed")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rumqttc_v5_puback_follows_the_commit_and_connack_states_the_limits() {
    let listener = listener(None, u64::MAX).await;
    let mut options = MqttOptions::new("dev-5", "127.0.0.1", listener.port());
    // Ask for a session that outlives the connection: this listener keeps none and says so.
    options.set_clean_start(false);
    options.set_connect_properties(ConnectProperties {
        session_expiry_interval: Some(3600),
        ..ConnectProperties::new()
    });
    let (client, mut events) = AsyncClient::new(options, 200);
    let Packet::ConnAck(connack) = next_incoming(&mut events).await else {
        panic!("CONNACK expected first");
    };
    assert_eq!(connack.code, ConnectReturnCode::Success);
    assert!(!connack.session_present);
    let limits = connack.properties.expect("CONNACK properties");
    assert_eq!(limits.session_expiry_interval, Some(0));
    assert_eq!(limits.receive_max, Some(MAX_INFLIGHT as u16));
    assert_eq!(limits.max_packet_size, Some(MAX_PACKET_BYTES as u32));
    assert_eq!(limits.max_qos, Some(1));
    assert_eq!(limits.retain_available, Some(0));
    assert_eq!(limits.topic_alias_max, Some(0));
    assert_eq!(limits.wildcard_subscription_available, Some(0));

    // Twice the receive maximum: rumqttc holds back what passes the maximum CONNACK gave it
    // (the next test sends past it regardless).
    let total = 2 * MAX_INFLIGHT;
    for n in 0..total as u32 {
        client
            .publish(TOPIC, QoS::AtLeastOnce, false, payload("dev-5", n))
            .await
            .unwrap();
    }
    for acked in 1..=total {
        let ack = next_puback(&mut events).await;
        assert_eq!(ack.reason, PubAckReason::Success);
        assert!(
            listener.buffered().await.len() >= acked,
            "a PUBACK arrived before its reading was committed"
        );
    }
    let stored = listener.buffered().await;
    assert_eq!(stored.len(), total);
    assert!(stored.iter().all(|e| e.protocol == Protocol::Mqtt));
    let temperatures: Vec<f64> = stored
        .iter()
        .map(|e| e.reading.measurements().temperature)
        .collect();
    let expected: Vec<f64> = (0..total as u32).map(|n| f64::from(20 + n % 10)).collect();
    assert_eq!(temperatures, expected, "per-sensor order kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_puback_while_the_buffer_cannot_commit() {
    let listener = listener(None, u64::MAX).await;
    let options = MqttOptions::new("dev-5", "127.0.0.1", listener.port());
    let (client, mut events) = AsyncClient::new(options, 10);
    // The event loop runs on its own task; PUBACKs come out of a channel that is safe to wait
    // on with a timeout.
    let (acks, mut acked) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(event) = events.poll().await {
            if let Event::Incoming(Packet::PubAck(ack)) = event {
                let _ = acks.send(ack);
            }
        }
    });
    // Another connection holds the buffer's write lock, so the listener's commit waits.
    let db = rusqlite::Connection::open(&listener.buffer_path).unwrap();
    db.execute_batch("BEGIN IMMEDIATE").unwrap();
    client
        .publish(TOPIC, QoS::AtLeastOnce, false, payload("dev-5", 1))
        .await
        .unwrap();
    let early = tokio::time::timeout(Duration::from_millis(800), acked.recv()).await;
    assert!(early.is_err(), "a PUBACK before the commit: {early:?}");
    db.execute_batch("COMMIT").unwrap();
    let ack = tokio::time::timeout(WAIT, acked.recv())
        .await
        .expect("the PUBACK once the commit is done")
        .unwrap();
    assert_eq!(ack.reason, PubAckReason::Success);
    assert_eq!(listener.buffered().await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_publishes_get_a_negative_puback_and_are_kept_as_rejected() {
    let listener = listener(None, u64::MAX).await;
    let options = MqttOptions::new("dev-5", "127.0.0.1", listener.port());
    let (client, mut events) = AsyncClient::new(options, 10);
    let bad_humidity = payload("dev-5", 1).replace("\"humidity\":12", "\"humidity\":140");
    for (topic, message, reason) in [
        (TOPIC, bad_humidity, PubAckReason::PayloadFormatInvalid),
        (
            "elsewhere",
            payload("dev-5", 2),
            PubAckReason::TopicNameInvalid,
        ),
        (TOPIC, payload("dev-5", 3), PubAckReason::Success),
    ] {
        client
            .publish(topic, QoS::AtLeastOnce, false, message)
            .await
            .unwrap();
        let ack = next_puback(&mut events).await;
        assert_eq!(ack.reason, reason, "{topic}");
        if reason == PubAckReason::PayloadFormatInvalid {
            let why = ack.properties.and_then(|p| p.reason_string);
            assert!(
                why.as_deref().is_some_and(|why| why.contains("humidity")),
                "the reason string names the bad field: {why:?}"
            );
        }
    }

    // paho-mqtt (MQTTv5) sees the same reason code.
    let script = format!(
        r#"
import sys, threading, paho.mqtt.client as mqtt
codes, done = [], threading.Event()
def on_publish(client, userdata, mid, reason_code, properties):
    codes.append(reason_code.value)
    done.set()
c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="dev-5-paho", protocol=mqtt.MQTTv5)
c.on_publish = on_publish
c.connect("127.0.0.1", {port})
c.loop_start()
c.publish("{TOPIC}", sys.argv[1], qos=1)
done.wait(10)
c.disconnect()
c.loop_stop()
print(codes)
"#,
        port = listener.port()
    );
    let not_json = "{\"temperature\": ";
    let paho = Command::new("timeout")
        .args(["20", "python3", "-c", &script, not_json])
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&paho.stdout);
    assert_eq!(
        printed.trim(),
        "[153]",
        "paho-mqtt: {}",
        String::from_utf8_lossy(&paho.stderr)
    );

    assert_eq!(listener.buffered().await.len(), 1, "only the valid reading");
    let reasons = listener.rejected_reasons();
    assert_eq!(reasons.len(), 3, "every invalid publish kept: {reasons:?}");
    assert!(reasons[0].contains("humidity"), "{reasons:?}");
    assert!(reasons[1].contains("elsewhere"), "{reasons:?}");
    assert_eq!(listener.mqtt_readings("invalid"), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_or_missing_credentials_are_refused_at_connack() {
    let listener = listener(Some("dev-5 s3cret\n"), u64::MAX).await;
    for (password, expected) in [
        (None, ConnectReturnCode::NotAuthorized),
        (Some("wrong"), ConnectReturnCode::BadUserNamePassword),
    ] {
        let mut options = MqttOptions::new("dev-5", "127.0.0.1", listener.port());
        if let Some(password) = password {
            options.set_credentials("dev-5", password);
        }
        let (_client, mut events) = AsyncClient::new(options, 10);
        let error = tokio::time::timeout(WAIT, events.poll())
            .await
            .expect("an answer to CONNECT in time")
            .expect_err("the CONNECT must be refused");
        assert!(
            matches!(error, ConnectionError::ConnectionRefused(code) if code == expected),
            "{password:?}: {error:?}"
        );
    }
    let message = payload("dev-5", 1);
    let v5 = ["-V", "mqttv5", "-i", "dev-5", "-u", "dev-5"];
    let wrong = mosquitto_pub(
        listener.port(),
        &message,
        &[&v5[..], &["-P", "wrong"]].concat(),
    );
    assert!(!wrong.status.success(), "a wrong password must be refused");
    let right = mosquitto_pub(
        listener.port(),
        &message,
        &[&v5[..], &["-P", "s3cret"]].concat(),
    );
    assert!(
        right.status.success(),
        "{}",
        String::from_utf8_lossy(&right.stderr)
    );
    assert_eq!(listener.buffered().await.len(), 1);
    assert_eq!(listener.mqtt_readings("unauthorized"), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_3_1_1_and_5_share_the_listener_and_3_1_is_refused() {
    let listener = listener(None, u64::MAX).await;
    for (n, version) in [(1, "mqttv311"), (2, "mqttv5")] {
        let output = mosquitto_pub(listener.port(), &payload("dev-5", n), &["-V", version]);
        assert!(
            output.status.success(),
            "{version}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let old = mosquitto_pub(listener.port(), &payload("dev-5", 3), &["-V", "mqttv31"]);
    assert!(!old.status.success(), "MQTT 3.1 is refused");
    assert_eq!(listener.buffered().await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_buffer_answers_quota_exceeded_and_keeps_the_connection() {
    let listener = listener(None, 160).await;
    let options = MqttOptions::new("dev-5", "127.0.0.1", listener.port());
    let (client, mut events) = AsyncClient::new(options, 10);
    for (n, reason) in [
        (1, PubAckReason::Success),
        (2, PubAckReason::QuotaExceeded),
        (3, PubAckReason::QuotaExceeded),
    ] {
        client
            .publish(TOPIC, QoS::AtLeastOnce, false, payload("dev-5", n))
            .await
            .unwrap();
        assert_eq!(next_puback(&mut events).await.reason, reason, "publish {n}");
    }
    let refused = mosquitto_pub(listener.port(), &payload("dev-5", 4), &["-V", "mqttv5"]);
    // mosquitto_pub 2.0 exits 0 after a negative PUBACK but reports it.
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("Quota exceeded"), "{stderr}");
    assert_eq!(
        listener.buffered().await.len(),
        1,
        "the acknowledged one is kept"
    );
    assert_eq!(listener.mqtt_readings("full"), 3);
}

/// Sends a v5 CONNECT (client id `client_id`, empty for one assigned by the server) and then
/// `then`, and returns every packet the listener sends back until it closes the connection
/// (within a bounded wait).
async fn exchange(
    listener: &Listener,
    keep_alive: u16,
    client_id: &str,
    then: &[u8],
) -> Vec<Packet> {
    let connect = Connect {
        keep_alive,
        client_id: client_id.into(),
        clean_start: true,
        properties: None,
    };
    let mut out = encode(&[Packet::Connect(connect, None, None)]);
    out.extend_from_slice(then);
    send_raw(listener, &out).await
}

/// Sends `bytes` as they are and returns the packets the listener answers until it closes.
async fn send_raw(listener: &Listener, bytes: &[u8]) -> Vec<Packet> {
    let mut stream = tokio::net::TcpStream::connect(listener.address)
        .await
        .unwrap();
    stream.write_all(bytes).await.unwrap();
    let mut received = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut received))
        .await
        .expect("the listener must close the connection")
        .unwrap();
    let mut received = BytesMut::from(&received[..]);
    let mut packets = Vec::new();
    while !received.is_empty() {
        packets.push(Packet::read(&mut received, None).unwrap());
    }
    packets
}

fn encode(packets: &[Packet]) -> Vec<u8> {
    let mut out = BytesMut::new();
    for packet in packets {
        packet.write(&mut out, None).unwrap();
    }
    out.to_vec()
}

fn publish(pkid: u16, qos: QoS, retain: bool, body: String) -> Packet {
    let mut publish = Publish::new(TOPIC, qos, body, None);
    publish.pkid = pkid;
    publish.retain = retain;
    Packet::Publish(publish)
}

fn disconnect_reason(packets: &[Packet]) -> Option<DisconnectReasonCode> {
    match packets.last() {
        Some(Packet::Disconnect(disconnect)) => Some(disconnect.reason_code),
        _ => None,
    }
}

/// The receive maximum is kept by the listener, not only by polite clients: publishes written
/// at once far past it are still read, committed and answered at most that many at a time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_past_the_receive_maximum_are_taken_no_more_than_it_at_a_time() {
    const INFLIGHT: usize = 2;
    let listener = listener_with(Options {
        max_inflight: INFLIGHT,
        ..Options::default()
    })
    .await;
    let mut packets: Vec<Packet> = (1..=20)
        .map(|n| publish(n, QoS::AtLeastOnce, false, payload("dev-5", u32::from(n))))
        .collect();
    // A retained publish after them ends the connection once they are answered.
    packets.push(publish(21, QoS::AtLeastOnce, true, payload("dev-5", 21)));
    let bytes = encode(&packets);
    // More than one read of the listener (4 KiB) takes: without the bound, a read's worth of
    // publishes would be one commit.
    assert!(bytes.len() > 4096, "{} bytes", bytes.len());
    let answers = exchange(&listener, 30, "raw-5", &bytes).await;
    let acks = answers
        .iter()
        .filter(|p| matches!(p, Packet::PubAck(a) if a.reason == PubAckReason::Success))
        .count();
    assert_eq!(acks, 20, "{answers:?}");
    let commits = listener.buffer.gauges().commits.get();
    assert!(
        commits >= 20 / INFLIGHT as u64,
        "20 publishes committed in {commits} groups: more than {INFLIGHT} were taken at once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_errors_end_with_a_disconnect_reason_after_earlier_publishes_are_answered() {
    let listener = listener(None, u64::MAX).await;
    let huge = payload("dev-5", 9).replace(
        "\"seq\"",
        &format!("\"pad\":\"{}\",\"seq\"", "x".repeat(8000)),
    );
    // Each valid publish carries its own `seq`: a repeated one would be the same reading.
    let seq = std::sync::atomic::AtomicU32::new(100);
    let ok = |pkid: u16| {
        let n = seq.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        publish(pkid, QoS::AtLeastOnce, false, payload("dev-5", n))
    };
    let cases = [
        (
            "too large",
            publish(9, QoS::AtLeastOnce, false, huge),
            DisconnectReasonCode::PacketTooLarge,
        ),
        (
            "QoS 2",
            publish(9, QoS::ExactlyOnce, false, payload("dev-5", 9)),
            DisconnectReasonCode::QoSNotSupported,
        ),
        (
            "retain",
            publish(9, QoS::AtLeastOnce, true, payload("dev-5", 9)),
            DisconnectReasonCode::RetainNotSupported,
        ),
    ];
    let mut committed = 0;
    for (case, bad, reason) in cases {
        let packets = exchange(&listener, 30, "raw-5", &encode(&[ok(1), bad, ok(2)])).await;
        assert!(
            matches!(&packets[0], Packet::ConnAck(c) if c.code == ConnectReturnCode::Success),
            "{case}: {packets:?}"
        );
        assert!(
            matches!(&packets[1], Packet::PubAck(a) if a.pkid == 1 && a.reason == PubAckReason::Success),
            "{case}: the publish before the bad one is acknowledged: {packets:?}"
        );
        assert_eq!(
            disconnect_reason(&packets),
            Some(reason),
            "{case}: {packets:?}"
        );
        assert_eq!(
            packets.len(),
            3,
            "{case}: nothing after the bad packet is answered: {packets:?}"
        );
        committed += 1;
        assert_eq!(listener.buffered().await.len(), committed, "{case}");
    }

    // A DISCONNECT with no reason byte (remaining length 0) is a normal disconnection.
    // An empty client identifier gets one assigned.
    // A SUBSCRIBE is refused (publish-only) without ending the connection.
    let mut subscribe = Subscribe::new(Filter::new("sensors/#", QoS::AtLeastOnce), None);
    subscribe.pkid = 4;
    let mut then = encode(&[Packet::Subscribe(subscribe), ok(3)]);
    then.extend_from_slice(&[0xE0, 0x00]);
    let packets = exchange(&listener, 30, "", &then).await;
    let [
        Packet::ConnAck(connack),
        Packet::PubAck(ack),
        Packet::SubAck(suback),
    ] = &packets[..]
    else {
        panic!("CONNACK, PUBACK and SUBACK, then a quiet close: {packets:?}");
    };
    assert_eq!((ack.pkid, ack.reason), (3, PubAckReason::Success));
    assert_eq!(suback.pkid, 4);
    assert_eq!(suback.return_codes, [SubscribeReasonCode::NotAuthorized]);
    let assigned = connack
        .properties
        .as_ref()
        .and_then(|p| p.assigned_client_identifier.as_ref());
    assert!(assigned.is_some_and(|id| !id.is_empty()), "{connack:?}");

    // A CONNECT with an unknown property is malformed: CONNACK 0x81, then the close.
    let bad_property = [
        0x10, 15, 0, 4, b'M', b'Q', b'T', b'T', 5, 2, 0, 30, 2, 0x7F, 0, 0, 0,
    ];
    let packets = send_raw(&listener, &bad_property).await;
    assert!(
        matches!(&packets[..], [Packet::ConnAck(c)] if c.code == ConnectReturnCode::MalformedPacket),
        "{packets:?}"
    );

    // Silence past one and a half keep-alive periods.
    let started = std::time::Instant::now();
    let packets = exchange(&listener, 1, "raw-5", &[]).await;
    assert_eq!(
        disconnect_reason(&packets),
        Some(DisconnectReasonCode::KeepAliveTimeout),
        "{packets:?}"
    );
    assert!(started.elapsed() >= Duration::from_millis(1400));
}
