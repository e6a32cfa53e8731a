//! The agent and the bridge as processes, a real Tansu broker behind them: what a device was
//! told "yes" for reaches `raw-data` — across a `kill -9` of the agent, a bridge that is away
//! for a while, and a broker that goes down. Needs the workspace's binaries built
//! (`cargo build --workspace`, as `scripts/test` does).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod failing_buffer;
mod refused;
mod renamed;
mod support;

use std::collections::BTreeSet;
use std::process::Command;
use std::time::{Duration, Instant};

use emberline_agent::buffer::Buffer;
use emberline_core::{AgentId, Protocol};
use emberline_testkit::{TestBroker, shared_broker, wait_until};
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_and_mqtt_readings_reach_raw_data_in_order_with_their_keys() {
    let bootstrap = tokio::task::block_in_place(shared_broker);
    let p = Pipeline::started(bootstrap).await;

    let client = reqwest::Client::new();
    let mut acknowledged = BTreeSet::new();
    for seq in 1..=60 {
        let id = post(
            &client,
            p.ports.http,
            reading(&format!("http-{}", seq % 3), seq),
        )
        .await
        .expect("202");
        acknowledged.insert(id);
    }
    for seq in 1..=20 {
        let output = Command::new("mosquitto_pub")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &p.ports.mqtt.to_string(),
                "-q",
                "1",
                "-t",
                "sensors/mqtt-1/readings",
            ])
            .args(["-m", &reading("mqtt-1", seq)])
            .output()
            .unwrap();
        assert!(output.status.success(), "PUBACK for {seq}");
        // A device seq makes the id known in advance: d:{source}:{seq}:{timestamp in ns}.
        acknowledged.insert(format!("d:mqtt-1:{seq}:1748109791000000000"));
    }
    let records = read_until(
        bootstrap,
        &p.topics.raw,
        &acknowledged,
        Duration::from_secs(60),
    )
    .await;
    let mqtt: BTreeSet<String> = records
        .iter()
        .filter(|(_, e)| e.protocol == Protocol::Mqtt)
        .map(|(_, e)| e.reading_id.to_string())
        .collect();
    assert_eq!(mqtt.len(), 20);
    // The agent's heartbeat reaches agent-status through the bridge, keyed by agent id.
    let (key, heartbeat) = first_record(&p.bootstrap, &p.topics.status).await;
    let heartbeat: emberline_core::batch::Heartbeat = serde_json::from_slice(&heartbeat).unwrap();
    assert_eq!(
        (key.as_str(), heartbeat.agent_id.as_str()),
        ("edge-e2e", "edge-e2e")
    );
    assert_keys_and_order(&records);
    assert!(
        records
            .iter()
            .all(|(_, e)| e.agent_id.as_str() == "edge-e2e")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_202_survives_a_kill_9_of_the_agent_under_load() {
    let bootstrap = tokio::task::block_in_place(shared_broker);
    let mut p = Pipeline::started(bootstrap).await;

    // Four devices post as fast as the agent answers; the agent is killed mid-stream.
    let deadline = Instant::now() + Duration::from_secs(3);
    let loaders: Vec<_> = (0..4)
        .map(|device| {
            let port = p.ports.http;
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                let mut acknowledged = Vec::new();
                for seq in 1..=100_000u64 {
                    if Instant::now() > deadline {
                        break;
                    }
                    if let Some(id) =
                        post(&client, port, reading(&format!("load-{device}"), seq)).await
                    {
                        acknowledged.push(id);
                    }
                }
                acknowledged
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    p.kill9_agent();
    let mut acknowledged = BTreeSet::new();
    for loader in loaders {
        acknowledged.extend(loader.await.unwrap());
    }
    println!(
        "{} readings acknowledged before and around the kill",
        acknowledged.len()
    );
    assert!(acknowledged.len() > 10, "the load did not get going");

    p.start_agent().await;
    let records = read_until(
        bootstrap,
        &p.topics.raw,
        &acknowledged,
        Duration::from_secs(90),
    )
    .await;
    assert_keys_and_order(&records);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_buffers_while_the_bridge_is_away_and_drains_when_it_returns() {
    let bootstrap = tokio::task::block_in_place(shared_broker);
    let mut p = Pipeline::new(bootstrap).await;
    p.start_agent().await;

    let client = reqwest::Client::new();
    let mut acknowledged = BTreeSet::new();
    // Eight batches of 25 once the bridge is back: each next one is read ahead.
    for seq in 1..=200 {
        acknowledged.insert(
            post(&client, p.ports.http, reading("away-1", seq))
                .await
                .expect("202 while the bridge is away"),
        );
    }
    let ready: serde_json::Value = client
        .get(format!("http://127.0.0.1:{}/readyz", p.ports.http))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["status"], "buffering: bridge unreachable", "{ready}");
    assert_eq!(ready["buffer_readings"], 200);

    p.start_bridge().await;
    let records = read_until(
        bootstrap,
        &p.topics.raw,
        &acknowledged,
        Duration::from_secs(90),
    )
    .await;
    assert_keys_and_order(&records);
    wait_until(
        "the buffer to drain",
        Duration::from_secs(30),
        Duration::from_millis(100),
        || {
            let request = client
                .get(format!("http://127.0.0.1:{}/readyz", p.ports.http))
                .send();
            async move {
                let ready: serde_json::Value = request.await.ok()?.json().await.ok()?;
                (ready["buffer_readings"] == 0 && ready["status"] == "ready").then_some(())
            }
        },
    )
    .await;
}

/// The forwarder in this process, on one thread, so that the order of its steps is fixed: a
/// backlog of 30 readings with batches of 25 leaves no full batch to read ahead, so the next
/// read starts at the oldest reading just as the first batch's deletion is handed to a task of
/// its own. The forwarder once read that batch again before the deletion ran and sent it twice
/// (found by the fault suite's network partition: +5,000 records per heal).
#[tokio::test(flavor = "current_thread")]
async fn a_backlog_of_one_batch_and_a_bit_goes_out_once() {
    let (_bridge, bridge_port) = started_bridge(shared_broker()).await;
    let dir = tempfile::tempdir().unwrap();
    let agent = AgentId::parse("edge-once").unwrap();
    let (buffer, _thread) = Buffer::start(buffer_config(&dir, &agent)).unwrap();
    buffer.append(incoming("once-1", 1..=30)).await.unwrap();

    let running = Running::start(forwarder(buffer.clone(), agent, bridge_port, 25));

    let client = reqwest::Client::new();
    // The bridge's own counts: records produced, and batches it recognised as sent before
    // (answered without producing them again, so they would hide a repeat from the first).
    let bridge_count = |name| bridge_count(&client, bridge_port, name);
    wait_until(
        "the bridge to produce the backlog",
        Duration::from_secs(60),
        Duration::from_millis(100),
        || async {
            bridge_count("emberline_bridge_records_total")
                .await
                .filter(|n| *n >= 30)
        },
    )
    .await;
    // Time for a second copy to arrive, were one sent: the forwarder is idle otherwise.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let sent_again = (
        bridge_count("emberline_bridge_records_total").await,
        bridge_count("emberline_bridge_batches_repeated_total").await,
    );
    assert_eq!(sent_again, (Some(30), Some(0)), "a batch was sent twice");
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_outage_is_answered_503_and_nothing_is_lost() {
    let mut broker = tokio::task::block_in_place(TestBroker::start);
    let bootstrap = broker.bootstrap();
    let p = Pipeline::started(&bootstrap).await;
    let client = reqwest::Client::new();
    let mut acknowledged = BTreeSet::new();
    for seq in 1..=20 {
        acknowledged.insert(
            post(&client, p.ports.http, reading("outage-1", seq))
                .await
                .expect("202"),
        );
    }
    tokio::task::block_in_place(|| broker.kill9());
    for seq in 21..=60 {
        acknowledged.insert(
            post(&client, p.ports.http, reading("outage-1", seq))
                .await
                .expect("202 while the broker is down"),
        );
    }
    // The bridge cannot get Kafka's acknowledgement: it says 503 and the agent keeps buffering.
    let envelope = format!(
        r#"{{"v":1,"reading_id":"a:probe:1","agent_id":"probe","received_at":"2025-05-24T18:03:12Z","protocol":"http","reading":{}}}"#,
        reading("probe", 1)
    );
    let answer = client
        .post(format!("http://127.0.0.1:{}/v1/batches", p.bridge_port))
        .header("content-type", "application/x-ndjson")
        .body(envelope.replace('\n', " "))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), reqwest::StatusCode::SERVICE_UNAVAILABLE);
    assert!(answer.headers().contains_key("retry-after"));
    tokio::task::block_in_place(|| broker.restart());
    let records = read_until(
        &bootstrap,
        &p.topics.raw,
        &acknowledged,
        Duration::from_secs(120),
    )
    .await;
    assert_keys_and_order(&records);
}
