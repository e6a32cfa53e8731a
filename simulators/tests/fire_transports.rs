//! `emberline-sim fire` against a real agent (its HTTP router served on port 0, its MQTT
//! listener on port 0, a real SQLite buffer, device tokens configured): every transport's
//! readings are acknowledged and in the buffer; a wrong token makes every reading fail.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::sync::Arc;
use std::time::Duration;

use emberline_agent::auth::Tokens;
use emberline_agent::buffer::{Buffer, Durability, StoreConfig};
use emberline_agent::http::{BridgeStatus, Inner, app};
use emberline_agent::metrics::Metrics;
use emberline_agent::mqtt::{MqttConfig, MqttContext, serve};
use emberline_core::{AgentId, Limits};
use emberline_listen::Acceptor;
use emberline_sim::fire::{self, FireConfig, Scenario, Summary, Transport};
use emberline_sim::tokens::DeviceTokens;
use rumqttc::QoS;
use tokio_util::sync::CancellationToken;

const SENSORS: u32 = 6;

/// Tokens for every simulated sensor (`sensor-n` has `token-n`).
fn tokens_text(prefix: &str) -> String {
    (0..SENSORS)
        .map(|n| format!("sensor-{n} {prefix}-{n}\n"))
        .collect()
}

struct Agent {
    http: String,
    mqtt: (String, u16),
    buffer: Buffer,
    stop: CancellationToken,
    _dir: tempfile::TempDir,
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Agent {
    async fn buffered(&self) -> usize {
        self.buffer.peek(100_000, usize::MAX).await.unwrap().len()
    }
}

/// A real agent (HTTP and MQTT ingest into one buffer) accepting the devices of `tokens_text`.
async fn agent() -> Agent {
    let dir = tempfile::tempdir().unwrap();
    let (buffer, _thread) = Buffer::start(StoreConfig {
        path: dir.path().join("buffer.db"),
        agent_id: AgentId::parse("edge-1").unwrap(),
        max_bytes: 1 << 30,
        durability: Durability::Full,
        max_rejected_bytes: emberline_agent::buffer::DEFAULT_MAX_REJECTED_BYTES,
    })
    .unwrap();
    let tokens = Some(Arc::new(Tokens::parse(&tokens_text("token")).unwrap()));
    let metrics = Metrics::default();
    let stop = CancellationToken::new();
    let state = Arc::new(Inner {
        buffer: buffer.clone(),
        limits: Limits::default(),
        tokens: tokens.clone(),
        registry: metrics.registry(buffer.gauges()),
        metrics: metrics.clone(),
        bridge: Arc::new(BridgeStatus::default()),
        alerts: None,
        max_reading_bytes: 16 * 1024,
        max_batch_bytes: 1024 * 1024,
        max_batch_items: 10_000,
        max_buffer_bytes: 1 << 30,
    });
    let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http_address = http.local_addr().unwrap();
    let server =
        axum::serve(http, app(state)).with_graceful_shutdown(stop.clone().cancelled_owned());
    tokio::spawn(async move { server.await });
    let mqtt = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mqtt_address = mqtt.local_addr().unwrap();
    let context = MqttContext {
        buffer: buffer.clone(),
        limits: Limits::default(),
        tokens,
        metrics,
        alerts: None,
        acceptor: Acceptor::new(None, &[]).unwrap(),
        config: MqttConfig {
            max_packet_bytes: 64 * 1024,
            max_inflight: 50,
            connect_timeout: Duration::from_secs(5),
            packet_timeout: Duration::from_secs(10),
            idle_timeout: None,
        },
    };
    tokio::spawn(serve(mqtt, context, stop.clone()));
    Agent {
        http: format!("http://{http_address}"),
        mqtt: ("127.0.0.1".into(), mqtt_address.port()),
        buffer,
        stop,
        _dir: dir,
    }
}

fn config(agent: &Agent, transport: Transport, count: u64, token_prefix: &str) -> FireConfig {
    FireConfig {
        scenario: Scenario::palisades(SENSORS, 1),
        transport,
        agents: vec![agent.http.clone()],
        mqtt_brokers: vec![agent.mqtt.clone()],
        qos: QoS::AtLeastOnce,
        tokens: Some(DeviceTokens::parse(&tokens_text(token_prefix)).unwrap()),
        concurrency: 8,
        interval: Duration::from_millis(60),
        duration: Some(Duration::from_secs(20)),
        count: Some(count),
        report_every: Duration::from_millis(100),
        quiet: false,
    }
}

async fn run(config: FireConfig) -> Summary {
    let run = fire::run(config, CancellationToken::new());
    tokio::time::timeout(Duration::from_secs(40), run)
        .await
        .expect("the run ends by itself")
        .unwrap()
}

#[tokio::test]
async fn http_batches_and_single_readings_are_acknowledged_and_buffered() {
    let agent = agent().await;
    let batch = run(config(&agent, Transport::HttpBatch, 30, "token")).await;
    assert_eq!((batch.sent, batch.acknowledged, batch.failed), (30, 30, 0));
    assert!(batch.latency_samples > 0);
    let single = run(config(&agent, Transport::HttpSingle, 20, "token")).await;
    assert_eq!(
        (single.sent, single.acknowledged, single.failed),
        (20, 20, 0)
    );
    assert_eq!(single.latency_samples, 20, "one request per reading");
    assert_eq!(agent.buffered().await, 50);
}

#[tokio::test]
async fn mqtt_qos1_publishes_are_acknowledged_with_device_credentials() {
    let agent = agent().await;
    let summary = run(config(&agent, Transport::Mqtt, 40, "token")).await;
    assert_eq!(
        (summary.sent, summary.acknowledged, summary.failed),
        (40, 40, 0)
    );
    assert_eq!(summary.latency_samples, 40, "one PUBACK per publish");
    assert_eq!(agent.buffered().await, 40);
}

#[tokio::test]
async fn mqtt_qos0_counts_written_publishes() {
    let agent = agent().await;
    let mut config = config(&agent, Transport::Mqtt, 12, "token");
    config.qos = QoS::AtMostOnce;
    let summary = run(config).await;
    assert_eq!(
        (summary.sent, summary.acknowledged, summary.failed),
        (12, 12, 0)
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(agent.buffered().await, 12);
}

#[tokio::test]
async fn wrong_tokens_fail_every_reading() {
    let agent = agent().await;
    let http = run(config(&agent, Transport::HttpSingle, 6, "wrong")).await;
    assert_eq!((http.acknowledged, http.failed), (0, 6));
    let mut mqtt = config(&agent, Transport::Mqtt, 6, "wrong");
    mqtt.duration = Some(Duration::from_secs(1));
    let mqtt = run(mqtt).await;
    assert_eq!((mqtt.acknowledged, mqtt.failed), (0, 6));
    assert_eq!(agent.buffered().await, 0);
}
