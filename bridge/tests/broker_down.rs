//! With the broker killed (`kill -9`), the bridge never says 200: it answers 503 + Retry-After
//! within its produce timeout; after the broker is back, the agent's retry succeeds.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::*;
use emberline_bridge::Config;
use emberline_testkit::{TestBroker, wait_until};

const PRODUCE_TIMEOUT: Duration = Duration::from_secs(3);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_down_means_503_then_the_retry_succeeds_after_restart() {
    outage_then_recovery(|_| {}).await;
}

/// With librdkafka's own message timeout shorter than the outage, its idempotent producer bumps
/// its epoch client-side, which Tansu 0.6.0 refuses forever: the bridge must replace it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_producer_wedged_by_a_message_timeout_is_replaced() {
    outage_then_recovery(|c| {
        c.kafka_options
            .push(("message.timeout.ms".into(), "1000".into()));
    })
    .await;
}

async fn outage_then_recovery(edit: impl FnOnce(&mut Config)) {
    let mut broker = tokio::task::block_in_place(TestBroker::start);
    let bootstrap = broker.bootstrap();
    let harness = Harness::new(&bootstrap, 2, |c| {
        c.produce_timeout = PRODUCE_TIMEOUT;
        edit(c);
    })
    .await;
    let before: Vec<Vec<u8>> = (0..10).map(|n| envelope("edge-1", "ridge-1", n)).collect();
    // As an agent would: retry until the producer has connected and the batch is taken.
    until_accepted(&harness, &before).await;

    tokio::task::block_in_place(|| broker.kill9());
    let during: Vec<Vec<u8>> = (10..20).map(|n| envelope("edge-1", "ridge-1", n)).collect();
    let asked = Instant::now();
    let (status, response) = harness.send(batch_request(&during, None)).await;
    let waited = asked.elapsed();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["retry-after"], "2");
    assert_eq!(json(response).await["error"], "kafka_unavailable");
    // Within the produce timeout, with room for a slow machine.
    assert!(
        waited < PRODUCE_TIMEOUT + Duration::from_secs(5),
        "answered after {waited:?}"
    );
    let ready = Request::get("/readyz").body(Body::empty()).unwrap();
    assert_eq!(harness.send(ready).await.0, StatusCode::SERVICE_UNAVAILABLE);

    tokio::task::block_in_place(|| broker.restart());
    // The agent retries the same batch until it is acknowledged.
    until_accepted(&harness, &during).await;

    let topic = harness.config.raw_topic.clone();
    let expected: HashSet<Vec<u8>> = before.iter().chain(&during).cloned().collect();
    let wanted = expected.clone();
    let consumed = read_topic(&bootstrap, &topic, Duration::from_secs(60), move |seen| {
        let got: HashSet<&Vec<u8>> = seen.iter().map(|c| &c.payload).collect();
        wanted.iter().all(|p| got.contains(p))
    })
    .await;
    // Duplicates are allowed (at-least-once); strangers are not.
    assert!(consumed.iter().all(|c| expected.contains(&c.payload)));
    // The producer has lived through a broker restart: let it go without waiting on librdkafka.
    std::thread::spawn(move || drop(harness));
    drop(broker);
}

async fn until_accepted(harness: &Harness, lines: &[Vec<u8>]) {
    let (within, every) = (Duration::from_secs(60), Duration::from_millis(500));
    wait_until("the batch acknowledged", within, every, || async {
        let (status, _) = harness.send(batch_request(lines, None)).await;
        (status == StatusCode::OK).then_some(())
    })
    .await;
}
