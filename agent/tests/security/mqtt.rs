//! MQTT: CONNECT refuses missing and wrong credentials in both versions, and slow clients are cut
//! off — before CONNECT, halfway through a packet whatever the keep-alive, when silent too long
//! under keep-alive 0, and when they stop reading what the listener answers.

use std::process::Command;
use std::time::Duration;

use bytes::BytesMut;
use emberline_testkit::{assert_cut_off, closed_within, trickle};
use rumqttc::mqttbytes::{QoS, v4};
use rumqttc::v5::mqttbytes::{QoS as QoS5, v5};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::{Agent, BODY_BOUND, DEVICE, DEVICE_TOKEN, HEAD_BOUND, IDLE_BOUND, WRONG_TOKEN};
use super::{assert_no_secrets, reading};

const TOPIC: &str = "sensors/ridge-7/readings";

/// (protocol, username, password, accepted, what mosquitto_pub reports)
type MqttRow<'a> = (&'a str, Option<&'a str>, Option<&'a str>, bool, &'a str);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_connect_refuses_missing_and_wrong_credentials() {
    let mut agent = Agent::start(&[]).await;
    let port = agent.mqtt.port().to_string();
    let message = reading(DEVICE);
    // (protocol, username, password, accepted, what mosquitto_pub reports)
    let table: [MqttRow<'_>; 10] = [
        ("mqttv311", None, None, false, "bad user name or password"),
        (
            "mqttv311",
            Some(DEVICE),
            Some(WRONG_TOKEN),
            false,
            "bad user name or password",
        ),
        (
            "mqttv311",
            Some("nobody"),
            Some(DEVICE_TOKEN),
            false,
            "bad user name or password",
        ),
        (
            "mqttv311",
            Some(DEVICE),
            None,
            false,
            "bad user name or password",
        ),
        ("mqttv311", Some(DEVICE), Some(DEVICE_TOKEN), true, ""),
        ("mqttv5", None, None, false, "not authorized"),
        (
            "mqttv5",
            Some(DEVICE),
            Some(WRONG_TOKEN),
            false,
            "bad user name or password",
        ),
        (
            "mqttv5",
            Some("nobody"),
            Some(DEVICE_TOKEN),
            false,
            "bad user name or password",
        ),
        (
            "mqttv5",
            Some(DEVICE),
            None,
            false,
            "bad user name or password",
        ),
        ("mqttv5", Some(DEVICE), Some(DEVICE_TOKEN), true, ""),
    ];
    for (version, user, password, accepted, says) in table {
        let mut command = Command::new("mosquitto_pub");
        command.args(["-h", "127.0.0.1", "-p", &port, "-V", version, "-q", "1"]);
        command.args([
            "-i",
            "sec-test",
            "-t",
            "sensors/ridge-7/readings",
            "-m",
            &message,
        ]);
        if let Some(user) = user {
            command.args(["-u", user]);
        }
        if let Some(password) = password {
            command.args(["-P", password]);
        }
        let output = command.output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr).to_lowercase();
        assert_eq!(
            output.status.success(),
            accepted,
            "{version} {user:?}/{password:?}: {stderr}"
        );
        assert!(stderr.contains(says), "{version} {user:?}: {stderr}");
    }
    let logs = agent.stop();
    assert_no_secrets("the agent's debug log", &logs);
    assert_eq!(agent.buffered_sources(), vec![DEVICE; 2]);
}

/// A CONNECT with the device's credentials and `keep_alive`, in MQTT 3.1.1 (`v5` false) or 5.
fn connect(v5: bool, keep_alive: u16) -> Vec<u8> {
    let mut out = BytesMut::new();
    if v5 {
        let connect = v5::Connect {
            keep_alive,
            client_id: "slow-5".into(),
            clean_start: true,
            properties: None,
        };
        let login = v5::Login::new(DEVICE, DEVICE_TOKEN);
        let packet = v5::Packet::Connect(connect, None, Some(login));
        packet.write(&mut out, None).unwrap();
    } else {
        let mut connect = v4::Connect::new("slow-4");
        connect.keep_alive = keep_alive;
        connect.set_login(DEVICE, DEVICE_TOKEN);
        v4::Packet::Connect(connect)
            .write(&mut out, usize::MAX)
            .unwrap();
    }
    out.to_vec()
}

/// A QoS 1 PUBLISH of a valid reading (the same bytes in both versions but for v5's empty
/// properties).
fn publish(v5: bool) -> Vec<u8> {
    let mut out = BytesMut::new();
    if v5 {
        let mut publish = v5::Publish::new(TOPIC, QoS5::AtLeastOnce, reading(DEVICE), None);
        publish.pkid = 7;
        v5::Packet::Publish(publish).write(&mut out, None).unwrap();
    } else {
        let mut publish = v4::Publish::new(TOPIC, QoS::AtLeastOnce, reading(DEVICE));
        publish.pkid = 7;
        v4::Packet::Publish(publish)
            .write(&mut out, usize::MAX)
            .unwrap();
    }
    out.to_vec()
}

/// The MQTT 5 reason code of the DISCONNECT the server sent last, if it sent one.
fn disconnect_reason(answer: &[u8]) -> Option<v5::DisconnectReasonCode> {
    let mut answer = BytesMut::from(answer);
    let mut last = None;
    while let Ok(packet) = v5::Packet::read(&mut answer, None) {
        last = Some(packet);
    }
    match last? {
        v5::Packet::Disconnect(disconnect) => Some(disconnect.reason_code),
        _ => None,
    }
}

/// MQTT 3.1.1's CONNACK "accepted": the cut came in the session, after the credentials passed.
const CONNACK_V4: [u8; 4] = [0x20, 0x02, 0x00, 0x00];

/// What a slow client got before it was cut off: nothing before CONNECT; after it, the CONNACK
/// (MQTT 5: and a DISCONNECT 0x8D "keep alive timeout").
fn assert_answer(case: &str, answer: &[u8], connected: Option<bool>) {
    match connected {
        None => assert!(answer.is_empty(), "{case}: {answer:?}"),
        Some(false) => assert_eq!(answer, CONNACK_V4, "{case}"),
        Some(true) => {
            assert_eq!(
                answer.get(3),
                Some(&0x00),
                "{case}: CONNACK 0x00: {answer:?}"
            );
            let expected = Some(v5::DisconnectReasonCode::KeepAliveTimeout);
            assert_eq!(disconnect_reason(answer), expected, "{case}: {answer:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_mqtt_clients_are_disconnected() {
    // No idle limit: keep-alive 0 then bounds nothing, and only the packet timeout can cut a
    // client that stalls halfway through a packet.
    let agent = Agent::start(&["--mqtt-idle-timeout-secs", "0"]).await;
    let half = |v5: bool, keep_alive: u16| {
        let mut bytes = connect(v5, keep_alive);
        bytes.extend_from_slice(&publish(v5)[..12]);
        bytes
    };
    let mut first_byte = connect(false, 60);
    first_byte.push(0x32);
    // (case, bytes sent before stalling, bound, CONNECT accepted in MQTT 5 (true) or 3.1.1)
    let table: [(&str, Vec<u8>, Duration, Option<bool>); 6] = [
        ("nothing", Vec::new(), HEAD_BOUND, None),
        (
            "half a CONNECT",
            vec![0x10, 0x18, 0x00, 0x04, b'M', b'Q'],
            HEAD_BOUND,
            None,
        ),
        ("a fixed header only", vec![0x10], HEAD_BOUND, None),
        (
            "3.1.1, keep-alive 0, half a PUBLISH",
            half(false, 0),
            BODY_BOUND,
            Some(false),
        ),
        (
            "5, keep-alive 0, half a PUBLISH",
            half(true, 0),
            BODY_BOUND,
            Some(true),
        ),
        (
            "3.1.1, keep-alive 60, a PUBLISH's first byte",
            first_byte,
            BODY_BOUND,
            Some(false),
        ),
    ];
    for (case, partial, bound, connected) in table {
        let answer = assert_cut_off(case, agent.mqtt, &partial, bound).await;
        assert_answer(case, &answer, connected);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_keep_alive_0_connections_are_closed_after_the_idle_limit() {
    let idle = IDLE_BOUND.as_secs().to_string();
    let agent = Agent::start(&["--mqtt-idle-timeout-secs", &idle]).await;
    for (case, v5) in [("3.1.1", false), ("5", true)] {
        let answer = assert_cut_off(case, agent.mqtt, &connect(v5, 0), IDLE_BOUND).await;
        assert_answer(case, &answer, Some(v5));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_that_trickles_in_within_the_bound_is_acknowledged() {
    let mut agent = Agent::start(&[]).await;
    let mut stream = trickle(agent.mqtt, &connect(false, 0), &publish(false)).await;
    let mut answer = [0; 8];
    let read = stream.read_exact(&mut answer);
    tokio::time::timeout(BODY_BOUND * 5, read)
        .await
        .expect("CONNACK and PUBACK")
        .unwrap();
    assert_eq!(answer, [0x20, 0x02, 0x00, 0x00, 0x40, 0x02, 0x00, 0x07]);
    stream.write_all(&[0xE0, 0x00]).await.unwrap();
    assert!(closed_within(&mut stream, BODY_BOUND * 5).await.is_some());
    agent.stop();
    assert_eq!(agent.buffered_sources(), vec![DEVICE]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_its_answers_is_disconnected() {
    // Keep-alive 60: only the bound on writing (the packet timeout) can cut this client off.
    let agent = Agent::start(&[]).await;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(agent.mqtt).await.unwrap();
    stream.write_all(&connect(false, 60)).await.unwrap();
    // PINGREQs, never reading a PINGRESP, until the server stops reading them: it is stuck
    // writing answers nobody takes. Bounded: at most 256 MiB or 30 s.
    let pings = [0xC0, 0x00].repeat(32 * 1024);
    let started = std::time::Instant::now();
    let mut sent = 0usize;
    loop {
        assert!(
            sent < 256 << 20 && started.elapsed() < Duration::from_secs(30),
            "the server never stopped reading ({sent} bytes sent)"
        );
        let write = stream.write_all(&pings);
        if tokio::time::timeout(Duration::from_millis(500), write)
            .await
            .is_err()
        {
            break;
        }
        sent += pings.len();
    }
    // Still not reading: the server must give up on its write within the packet timeout. A
    // server that did not would go on answering once we read, and the read would not end.
    tokio::time::sleep(BODY_BOUND * 2).await;
    let mut sink = Vec::new();
    let read = tokio::time::timeout(BODY_BOUND * 2, stream.read_to_end(&mut sink)).await;
    assert!(
        read.is_ok(),
        "still connected {:?} after the server's writes stalled",
        BODY_BOUND * 4
    );
}
