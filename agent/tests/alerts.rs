//! The local alert bus: a subscriber on the node hears a high reading at once, while the bridge
//! cannot be reached.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use emberline_agent::alerts::Alerts;
use emberline_agent::buffer::{Buffer, Durability, StoreConfig};
use emberline_agent::forwarder::{Forwarder, ForwarderConfig};
use emberline_agent::http::{BridgeStatus, Inner, app};
use emberline_agent::metrics::Metrics;
use emberline_core::{AgentId, Limits};
use emberline_testkit::free_port;
use rumqttc::{AsyncClient, Event, Incoming, MqttOptions, QoS};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_high_reading_is_announced_locally_while_the_bridge_is_down() {
    emberline_testkit::init_logs();
    let dir = tempfile::tempdir().unwrap();
    let agent = AgentId::parse("edge-1").unwrap();
    let (buffer, _thread) = Buffer::start(StoreConfig {
        path: dir.path().join("buffer.db"),
        agent_id: agent.clone(),
        max_bytes: u64::MAX,
        durability: Durability::Full,
        max_rejected_bytes: emberline_agent::buffer::DEFAULT_MAX_REJECTED_BYTES,
    })
    .unwrap();
    let bus_port = free_port().unwrap();
    let alerts = Alerts::start(format!("127.0.0.1:{bus_port}").parse().unwrap()).unwrap();

    // The forwarder points at a port where nothing listens: the bridge is unreachable.
    let dead_bridge = format!("http://127.0.0.1:{}", free_port().unwrap());
    let metrics = Metrics::default();
    let bridge = Arc::new(BridgeStatus::default());
    let forwarder = Forwarder::new(
        ForwarderConfig {
            bridge_url: dead_bridge,
            bridge_ca_file: None,
            agent_id: agent,
            token: None,
            max_batch_readings: 100,
            max_batch_bytes: 1 << 20,
            linger: Duration::from_millis(10),
            request_timeout: Duration::from_secs(2),
            heartbeat_every: Duration::from_secs(60),
            min_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_millis(500),
        },
        buffer.clone(),
        metrics.clone(),
        bridge.clone(),
    )
    .unwrap();
    let shutdown = CancellationToken::new();
    tokio::spawn(forwarder.run(shutdown.clone()));

    // A field laptop subscribes to the node's alert bus.
    let mut options = MqttOptions::new("laptop", "127.0.0.1", bus_port);
    options.set_keep_alive(Duration::from_secs(5));
    let (laptop, mut events) = AsyncClient::new(options, 10);
    laptop
        .subscribe("emberline/alerts/#", QoS::AtLeastOnce)
        .await
        .unwrap();
    let subscribed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Ok(Event::Incoming(Incoming::SubAck(_))) = events.poll().await {
                return;
            }
        }
    })
    .await;
    assert!(
        subscribed.is_ok(),
        "the laptop could not subscribe to the alert bus"
    );

    let state = Arc::new(Inner {
        registry: metrics.registry(buffer.gauges()),
        buffer,
        limits: Limits::default(),
        tokens: None,
        metrics,
        bridge: bridge.clone(),
        alerts: Some(alerts),
        max_reading_bytes: 16 * 1024,
        max_batch_bytes: 1 << 20,
        max_batch_items: 10_000,
        max_buffer_bytes: u64::MAX,
    });
    let post = |body: String| {
        Request::post("/ingest")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body))
            .unwrap()
    };
    let reading = |source: &str, temperature: f64, humidity: f64| {
        format!(
            r#"{{"timestamp":"2025-05-24T18:03:11Z","latitude":34.05,"longitude":-118.25,"temperature":{temperature},
            "humidity":{humidity},"wind_speed":18.4,"wind_direction":270,"vegetation_density":0.82,
            "air_quality_index":160,"source_name":"{source}"}}"#
        )
    };
    // A quiet reading first: no alert for it.
    let quiet = app(state.clone())
        .oneshot(post(reading("quiet-1", 20.0, 60.0)))
        .await
        .unwrap();
    assert_eq!(quiet.status(), StatusCode::ACCEPTED);
    let hot = app(state.clone())
        .oneshot(post(reading("ridge-7", 44.0, 9.0)))
        .await
        .unwrap();
    assert_eq!(hot.status(), StatusCode::ACCEPTED);
    let hot = axum::body::to_bytes(hot.into_body(), usize::MAX)
        .await
        .unwrap();
    let hot: serde_json::Value = serde_json::from_slice(&hot).unwrap();

    let alert = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Ok(Event::Incoming(Incoming::Publish(publish))) = events.poll().await {
                return publish;
            }
        }
    })
    .await
    .expect("no alert on the local bus");
    assert_eq!(alert.topic, "emberline/alerts/ridge-7");
    let body: serde_json::Value = serde_json::from_slice(&alert.payload).unwrap();
    assert_eq!(body["intensity"], "high");
    assert_eq!(body["reading_id"], hot["reading_id"]);
    assert!(
        body["rules_fired"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r == "hot-and-dry")
    );
    assert!(!bridge.reachable(), "the bridge was unreachable throughout");
    assert_eq!(
        state.buffer.stats().await.unwrap().depth,
        2,
        "both readings still buffered"
    );
    shutdown.cancel();
}
