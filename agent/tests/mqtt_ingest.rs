//! The MQTT ingest listener against clients not written here — rumqttc, `mosquitto_pub`
//! (Debian) and paho-mqtt (PyPI) — and against hostile input. A PUBACK means the reading is in
//! the buffer.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod support;

use std::process::Command;
use std::time::Duration;

use emberline_core::Protocol;
use rumqttc::{AsyncClient, Event, MqttOptions, QoS};
use support::{Options, listener, listener_with, payload};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rumqttc_qos1_publishes_are_acknowledged_after_the_commit() {
    let listener = listener(None, u64::MAX).await;
    let options = MqttOptions::new("dev-1", "127.0.0.1", listener.address.port());
    let (client, mut events) = AsyncClient::new(options, 200);
    for n in 0..100 {
        client
            .publish(
                "sensors/dev-1/readings",
                QoS::AtLeastOnce,
                false,
                payload("dev-1", n),
            )
            .await
            .unwrap();
    }
    let mut acks = 0;
    while acks < 100 {
        let event = tokio::time::timeout(Duration::from_secs(10), events.poll())
            .await
            .unwrap()
            .unwrap();
        if let Event::Incoming(rumqttc::Incoming::PubAck(_)) = event {
            acks += 1;
            // Every reading acknowledged so far is already in the buffer.
            assert!(listener.buffered().await.len() >= acks);
        }
    }
    let stored = listener.buffered().await;
    assert_eq!(stored.len(), 100);
    assert!(stored.iter().all(|e| e.protocol == Protocol::Mqtt));
    let temperatures: Vec<f64> = stored
        .iter()
        .map(|e| e.reading.measurements().temperature)
        .collect();
    let expected: Vec<f64> = (0..100).map(|n| f64::from(20 + n % 10)).collect();
    assert_eq!(temperatures, expected, "per-sensor order kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_puback_while_the_buffer_cannot_commit() {
    let listener = listener(None, u64::MAX).await;
    let options = MqttOptions::new("dev-1", "127.0.0.1", listener.address.port());
    let (client, mut events) = AsyncClient::new(options, 10);
    let (acks, mut acked) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(event) = events.poll().await {
            if let Event::Incoming(rumqttc::Incoming::PubAck(ack)) = event {
                let _ = acks.send(ack);
            }
        }
    });
    // Another connection holds the buffer's write lock, so the listener's commit waits.
    let db = rusqlite::Connection::open(&listener.buffer_path).unwrap();
    db.execute_batch("BEGIN IMMEDIATE").unwrap();
    client
        .publish(
            "sensors/dev-1/readings",
            QoS::AtLeastOnce,
            false,
            payload("dev-1", 1),
        )
        .await
        .unwrap();
    let early = tokio::time::timeout(Duration::from_millis(800), acked.recv()).await;
    assert!(early.is_err(), "a PUBACK before the commit: {early:?}");
    db.execute_batch("COMMIT").unwrap();
    tokio::time::timeout(Duration::from_secs(10), acked.recv())
        .await
        .expect("the PUBACK once the commit is done")
        .unwrap();
    assert_eq!(listener.buffered().await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mosquitto_pub_and_paho_mqtt_are_served_with_credentials() {
    let listener = listener(Some("dev-2 s3cret\n"), u64::MAX).await;
    let port = listener.address.port().to_string();
    let mosquitto = |extra: &[&str]| {
        Command::new("mosquitto_pub")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-q",
                "1",
                "-i",
                "dev-2",
                "-t",
                "sensors/dev-2/readings",
            ])
            .args(["-m", &payload("dev-2", 1)])
            .args(extra)
            .output()
            .expect("mosquitto_pub (Debian mosquitto-clients) must be installed")
    };
    assert!(
        !mosquitto(&[]).status.success(),
        "no credentials must be refused"
    );
    assert!(!mosquitto(&["-u", "dev-2", "-P", "wrong"]).status.success());
    let ok = mosquitto(&["-u", "dev-2", "-P", "s3cret"]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );

    let script = format!(
        r#"
import sys, paho.mqtt.client as mqtt
c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="dev-2-paho")
c.username_pw_set("dev-2", "s3cret")
c.connect("127.0.0.1", {port})
c.loop_start()
info = c.publish("sensors/dev-2/readings", sys.argv[1], qos=1)
info.wait_for_publish(timeout=10)
c.loop_stop()
sys.exit(0 if info.is_published() else 1)
"#
    );
    let paho = Command::new("python3")
        .args(["-c", &script, &payload("dev-2", 2)])
        .output()
        .unwrap();
    assert!(
        paho.status.success(),
        "paho-mqtt: {}",
        String::from_utf8_lossy(&paho.stderr)
    );
    let ids: Vec<String> = listener
        .buffered()
        .await
        .iter()
        .map(|e| e.reading_id.to_string())
        .collect();
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert!(
        ids[0].starts_with("d:dev-2:1:") && ids[1].starts_with("d:dev-2:2:"),
        "{ids:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_payloads_are_acknowledged_and_kept_as_rejected() {
    let listener = listener(None, u64::MAX).await;
    let port = listener.address.port().to_string();
    for (topic, message) in [
        ("sensors/dev-3/readings", "{not json".to_owned()),
        (
            "sensors/dev-3/readings",
            payload("dev-3", 1).replace("\"humidity\":12", "\"humidity\":140"),
        ),
        ("sensors/other/readings", payload("dev-3", 2)),
        ("elsewhere", payload("dev-3", 3)),
    ] {
        let output = Command::new("mosquitto_pub")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-q",
                "1",
                "-t",
                topic,
                "-m",
                &message,
            ])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{topic}: acknowledged even though invalid"
        );
    }
    let stats = listener.buffer.stats().await.unwrap();
    assert_eq!(
        (stats.depth, stats.rejected),
        (0, 4),
        "nothing invalid stored, every one kept as rejected"
    );
}

/// A client that streams invalid publishes cannot fill the disk: the rejected table keeps the
/// newest under its cap, counts what it drops, and readings are not touched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rejected_table_keeps_the_newest_under_its_cap() {
    const CAP: u64 = 4_000;
    let listener = listener_with(Options {
        max_rejected_bytes: CAP,
        ..Options::default()
    })
    .await;
    let options = MqttOptions::new("dev-4", "127.0.0.1", listener.port());
    let (client, mut events) = AsyncClient::new(options, 100);
    let invalid = |n: u32| format!("{{not json {n:03} {}", "x".repeat(300));
    let topic = "sensors/dev-4/readings";
    for n in 0..40 {
        client
            .publish(topic, QoS::AtLeastOnce, false, invalid(n))
            .await
            .unwrap();
    }
    client
        .publish(topic, QoS::AtLeastOnce, false, payload("dev-4", 1))
        .await
        .unwrap();
    let mut acks = 0;
    while acks < 41 {
        let outcome = tokio::time::timeout(Duration::from_secs(10), next_outcome(&mut events))
            .await
            .expect("every publish acknowledged in time");
        assert_ne!(
            outcome,
            Some(true),
            "the connection broke after {acks} PUBACKs"
        );
        acks += usize::from(outcome == Some(false));
    }
    let kept = listener.rejected_payloads();
    let gauges = listener.buffer.gauges();
    let held = gauges.rejected_bytes.get();
    assert!(
        (1..40).contains(&kept.len()) && held <= CAP as i64,
        "{} rows, {held} bytes kept under a cap of {CAP}",
        kept.len()
    );
    assert_eq!(
        held,
        listener.rejected_bytes_in_table(),
        "the cap counts what is there"
    );
    let expected: Vec<String> = (40 - kept.len() as u32..40).map(invalid).collect();
    assert_eq!(kept, expected, "the newest kept, in order");
    assert_eq!(
        gauges.rejected_evicted.get(),
        40 - kept.len() as u64,
        "every dropped row counted"
    );
    assert_eq!(
        listener.buffered().await.len(),
        1,
        "the valid reading stored"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_packets_garbage_and_silence_close_the_connection() {
    let listener = listener(None, u64::MAX).await;
    // Garbage on the MQTT port.
    let mut garbage = tokio::net::TcpStream::connect(listener.address)
        .await
        .unwrap();
    garbage
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    // At once, from its first byte: well inside the 5 s connect timeout, which would close a
    // listener that waited for a whole "packet" of garbage.
    let mut sink = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(2), garbage.read_to_end(&mut sink)).await;
    assert!(closed.is_ok(), "garbage must close the connection at once");

    // A publish larger than the 4 KiB limit.
    let options = MqttOptions::new("dev-4", "127.0.0.1", listener.address.port());
    let (client, mut events) = AsyncClient::new(options, 10);
    let huge = payload("dev-4", 1).replace(
        "\"seq\"",
        &format!("\"pad\":\"{}\",\"seq\"", "x".repeat(8000)),
    );
    client
        .publish("sensors/dev-4/readings", QoS::AtLeastOnce, false, huge)
        .await
        .unwrap();
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Some(closed) = next_outcome(&mut events).await {
                return closed;
            }
        }
    })
    .await
    .expect("the oversized publish must end the connection");
    assert!(closed, "connection must be closed without a PUBACK");
    assert!(listener.buffered().await.is_empty());

    // A client that connects and never sends CONNECT is dropped after the connect timeout.
    let mut silent = tokio::net::TcpStream::connect(listener.address)
        .await
        .unwrap();
    let closed = tokio::time::timeout(Duration::from_secs(10), silent.read_to_end(&mut sink)).await;
    assert!(closed.is_ok(), "slow-loris client must be disconnected");
}

/// Polls the client once: `Some(true)` when the connection broke, `Some(false)` on a PUBACK.
async fn next_outcome(events: &mut rumqttc::EventLoop) -> Option<bool> {
    match events.poll().await {
        Err(_) => Some(true),
        Ok(Event::Incoming(rumqttc::Incoming::PubAck(_))) => Some(false),
        Ok(_) => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_buffer_refuses_the_publish_without_puback() {
    let listener = listener(None, 160).await;
    let port = listener.address.port().to_string();
    let publish = |n: u32| {
        Command::new("mosquitto_pub")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-q",
                "1",
                "-t",
                "sensors/dev-5/readings",
                "-m",
                &payload("dev-5", n),
            ])
            .output()
            .unwrap()
            .status
            .success()
    };
    assert!(publish(1), "the first reading fits");
    assert!(!publish(2), "no PUBACK when full");
    assert_eq!(
        listener.buffered().await.len(),
        1,
        "the acknowledged reading is kept"
    );
}
