//! One real server on port 0: an agent-like client over TCP, then a graceful shutdown.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use std::time::Duration;

use common::*;
use emberline_bridge::{Bridge, Config};
use emberline_core::batch::BATCH_CONTENT_TYPE;
use emberline_testkit::{TestBroker, create_topic, shared_broker, unique_name, wait_until};
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_agents_over_tcp_and_stops_gracefully() {
    let bootstrap = tokio::task::block_in_place(shared_broker);
    let mut config = Config::new(bootstrap);
    config.raw_topic = create_topic(bootstrap, &unique_name("raw-data"), 2).await;
    config.status_topic = create_topic(bootstrap, &unique_name("agent-status"), 1).await;
    config.shutdown_timeout = Duration::from_secs(10);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let shutdown = CancellationToken::new();
    let serving = tokio::spawn(
        Bridge::new(&config)
            .unwrap()
            .serve(listener, shutdown.clone()),
    );

    let client = reqwest::Client::new();
    let lines: Vec<Vec<u8>> = (0..5).map(|n| envelope("edge-9", "ridge-9", n)).collect();
    let response = client
        .post(format!("{base}/v1/batches"))
        .header("content-type", BATCH_CONTENT_TYPE)
        .header("content-encoding", "gzip")
        .body(gzip(&ndjson(&lines)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<serde_json::Value>().await.unwrap()["accepted"],
        5
    );
    let response = client
        .post(format!("{base}/v1/heartbeats"))
        .header("content-type", "application/json")
        .body(heartbeat("edge-9"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let metrics = client.get(format!("{base}/metrics")).send().await.unwrap();
    let metrics = metrics.text().await.unwrap();
    assert!(
        metrics.contains("emberline_bridge_heartbeats_total 1"),
        "{metrics}"
    );

    shutdown.cancel();
    let stopped = tokio::time::timeout(Duration::from_secs(15), serving).await;
    stopped
        .expect("the bridge did not stop within its bound")
        .unwrap()
        .unwrap();
    assert!(
        client.get(format!("{base}/healthz")).send().await.is_err(),
        "still accepting"
    );

    let topic = config.raw_topic.clone();
    let consumed = read_settled(bootstrap, &topic, Duration::from_secs(30), 5).await;
    assert_eq!(consumed.len(), 5, "a record was produced twice");
}

/// A batch in flight when SIGTERM comes is finished, not cut off: here Kafka is down when it
/// arrives and back before the produce timeout, so its agent still gets its 200.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_a_batch_in_flight() {
    let mut broker = tokio::task::block_in_place(TestBroker::start);
    let bootstrap = broker.bootstrap();
    let mut config = Config::new(&bootstrap);
    config.raw_topic = create_topic(&bootstrap, &unique_name("raw-data"), 1).await;
    config.status_topic = create_topic(&bootstrap, &unique_name("agent-status"), 1).await;
    config.produce_timeout = Duration::from_secs(30);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1/batches", listener.local_addr().unwrap());
    let bridge = Bridge::new(&config).unwrap();
    let state = bridge.state();
    let shutdown = CancellationToken::new();
    let serving = tokio::spawn(bridge.serve(listener, shutdown.clone()));
    let post = move |lines: Vec<Vec<u8>>| {
        let request = reqwest::Client::new()
            .post(url.clone())
            .body(ndjson(&lines));
        async move { request.send().await.unwrap().status() }
    };
    assert_eq!(post(vec![envelope("edge-1", "ridge-1", 0)]).await, 200);

    tokio::task::block_in_place(|| broker.kill9());
    let in_flight = tokio::spawn(post(vec![envelope("edge-1", "ridge-1", 1)]));
    let shared = state.shared();
    wait_until(
        "the batch in flight",
        Duration::from_secs(10),
        Duration::from_millis(20),
        || std::future::ready((shared.in_flight.in_use() > 0).then_some(())),
    )
    .await;
    shutdown.cancel();
    tokio::task::block_in_place(|| broker.restart());

    assert_eq!(in_flight.await.unwrap(), 200);
    let stopped = tokio::time::timeout(Duration::from_secs(40), serving).await;
    stopped.expect("the bridge did not stop").unwrap().unwrap();
    std::thread::spawn(move || drop(state));
}
