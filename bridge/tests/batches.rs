//! `POST /v1/batches` against the shared Tansu broker, through `app(state)` without a socket.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::*;
use emberline_core::Envelope;
use emberline_testkit::shared_broker;

const READ_WITHIN: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_reaches_raw_data_keyed_byte_exact_and_in_sensor_order() {
    let bootstrap = tokio::task::block_in_place(shared_broker);
    let harness = Harness::new(bootstrap, 3, |_| {}).await;
    let sensors = ["ridge-1", "ridge-2", "valley-7", "<img src=x>"];
    let lines: Vec<Vec<u8>> = (0..60)
        .map(|n| envelope("edge-1", sensors[n % sensors.len()], n as u64))
        .collect();

    let (status, response) = harness.send(batch_request(&lines, None)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json(response).await, serde_json::json!({ "accepted": 60 }));

    let topic = harness.config.raw_topic.clone();
    let consumed = read_settled(bootstrap, &topic, READ_WITHIN, 60).await;
    assert_eq!(consumed.len(), 60, "a record was produced twice");
    let mut per_sensor: BTreeMap<String, Vec<&[u8]>> = BTreeMap::new();
    for record in &consumed {
        let envelope = Envelope::from_slice(&record.payload).unwrap();
        assert_eq!(record.key, envelope.key());
        per_sensor
            .entry(record.key.clone())
            .or_default()
            .push(&record.payload);
    }
    for sensor in sensors {
        let sent: Vec<&[u8]> = lines
            .iter()
            .filter(|line| Envelope::from_slice(line).unwrap().key() == sensor)
            .map(Vec::as_slice)
            .collect();
        assert_eq!(
            per_sensor[sensor], sent,
            "order or bytes of {sensor} differ"
        );
    }

    let metrics = harness.metrics().await;
    assert!(
        metrics.contains("emberline_bridge_records_total 60"),
        "{metrics}"
    );
    assert!(
        metrics.contains("emberline_bridge_batches_total 1"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_required_and_must_name_the_records_agent() {
    let bootstrap = tokio::task::block_in_place(shared_broker);
    let harness = Harness::with_tokens(bootstrap, &["edge-1", "edge-2"]).await;
    let lines = vec![envelope("edge-1", "ridge-1", 1)];

    let (status, response) = harness.send(batch_request(&lines, None)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    assert_eq!(json(response).await["error"], "unauthorized");
    let (status, _) = harness
        .send(batch_request(&lines, Some("not-a-token-of-anyone")))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let (status, response) = harness
        .send(batch_request(&lines, Some(&token_of("edge-2"))))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let body = json(response).await;
    assert_eq!(body["error"], "agent_mismatch");
    let request = heartbeat_request(heartbeat("edge-1"), Some(&token_of("edge-2")));
    assert_eq!(harness.send(request).await.0, StatusCode::FORBIDDEN);

    let (status, _) = harness
        .send(batch_request(&lines, Some(&token_of("edge-1"))))
        .await;
    assert_eq!(status, StatusCode::OK);
    let topic = harness.config.raw_topic.clone();
    let consumed = read_topic(bootstrap, &topic, READ_WITHIN, |seen| !seen.is_empty()).await;
    assert_eq!(consumed[0].payload, lines[0]);
    assert_eq!(consumed[0].offset, 0, "a refused batch reached Kafka");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_batches_are_refused_whole_and_nothing_is_produced() {
    let bootstrap = tokio::task::block_in_place(shared_broker);
    let harness = Harness::new(bootstrap, 1, |_| {}).await;
    let good = envelope("edge-1", "ridge-1", 1);
    let bad_line = vec![
        good.clone(),
        b"{\"v\":1,\"reading_id\":3}".to_vec(),
        good.clone(),
    ];

    let (status, response) = harness.send(batch_request(&bad_line, None)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let body = json(response).await;
    assert_eq!(
        (body["error"].as_str(), body["line"].as_u64()),
        (Some("malformed"), Some(2))
    );
    assert!(
        body["message"].as_str().unwrap().starts_with("line 2:"),
        "{body}"
    );

    let (status, _) = harness.send(batch_request(&[b"\n".to_vec()], None)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let not_gzip = Request::post("/v1/batches")
        .header("content-encoding", "gzip")
        .body(Body::from(ndjson(std::slice::from_ref(&good))))
        .unwrap();
    assert_eq!(harness.send(not_gzip).await.0, StatusCode::BAD_REQUEST);
    let wrong_type = Request::post("/v1/batches")
        .header("content-type", "text/csv")
        .body(Body::from(ndjson(std::slice::from_ref(&good))))
        .unwrap();
    assert_eq!(
        harness.send(wrong_type).await.0,
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );

    // A sentinel after the refusals: on one partition, anything refused would come before it.
    let sentinel = envelope("edge-1", "sentinel", 99);
    let identity = Request::post("/v1/batches")
        .body(Body::from(ndjson(std::slice::from_ref(&sentinel))))
        .unwrap();
    assert_eq!(harness.send(identity).await.0, StatusCode::OK);
    let topic = harness.config.raw_topic.clone();
    let consumed = read_topic(bootstrap, &topic, READ_WITHIN, |seen| !seen.is_empty()).await;
    assert_eq!(
        consumed[0].payload, sentinel,
        "a refused record reached Kafka"
    );

    let metrics = harness.metrics().await;
    assert!(
        metrics.contains("emberline_bridge_rejections_total{reason=\"malformed\"} 3"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_and_gzip_bombs_get_413() {
    let bootstrap = tokio::task::block_in_place(shared_broker);
    let harness = Harness::new(bootstrap, 1, |c| {
        c.max_body_bytes = 4096;
        c.max_batch_bytes = 8192;
    })
    .await;
    let lines: Vec<Vec<u8>> = (0..40).map(|n| envelope("edge-1", "ridge-1", n)).collect();
    let big = ndjson(&lines);
    assert!(big.len() > 8192);

    let declared = Request::post("/v1/batches")
        .header("content-length", big.len())
        .body(Body::from(big.clone()))
        .unwrap();
    let (status, response) = harness.send(declared).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(json(response).await["error"], "too_large");
    let undeclared = Request::post("/v1/batches")
        .body(Body::from(big.clone()))
        .unwrap();
    assert_eq!(
        harness.send(undeclared).await.0,
        StatusCode::PAYLOAD_TOO_LARGE
    );

    // Small on the wire, too large once decompressed.
    let bomb = batch_request(&lines, None);
    assert_eq!(harness.send(bomb).await.0, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        harness.state.shared().in_flight.in_use(),
        0,
        "bytes still reserved"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_larger_than_kafka_takes_gets_413_and_nothing_of_its_batch_is_produced() {
    let bootstrap = tokio::task::block_in_place(shared_broker);
    // Without the check the producer refuses the record at `send` (MessageSizeTooLarge), the
    // answer is 503 and the agent would retry that batch for ever.
    let harness = Harness::new(bootstrap, 1, |c| {
        c.kafka_options = vec![("message.max.bytes".into(), "4096".into())];
    })
    .await;
    let mut refused: Vec<Vec<u8>> = (0..3).map(|n| envelope("edge-1", "ridge-1", n)).collect();
    refused.push(envelope_with_extra(
        "edge-1",
        "ridge-1",
        3,
        &"x".repeat(5000),
    ));
    let (status, response) = harness.send(batch_request(&refused, None)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let body = json(response).await;
    assert_eq!(body["error"], "record_too_large", "{body}");

    let accepted: Vec<Vec<u8>> = (10..13)
        .map(|n| envelope_with_extra("edge-1", "ridge-1", n, &"x".repeat(3000)))
        .collect();
    assert_eq!(
        harness.send(batch_request(&accepted, None)).await.0,
        StatusCode::OK
    );
    let topic = harness.config.raw_topic.clone();
    let consumed = read_topic(bootstrap, &topic, READ_WITHIN, |seen| seen.len() >= 3).await;
    let payloads: Vec<&[u8]> = consumed.iter().map(|r| r.payload.as_slice()).collect();
    let sent: Vec<&[u8]> = accepted.iter().map(Vec::as_slice).collect();
    assert_eq!(payloads, sent, "only the batch answered 200 is on raw-data");
}

/// An agent upgraded before its bridge: its newer envelopes are not malformed, and a 400 would
/// make it set the readings aside. A 503 keeps them in its buffer until the bridge can read them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_envelope_version_gets_503_and_nothing_of_its_batch_is_produced() {
    let bootstrap = tokio::task::block_in_place(shared_broker);
    let harness = Harness::new(bootstrap, 1, |_| {}).await;
    let current = envelope("edge-1", "ridge-1", 1);
    let newer = String::from_utf8(envelope("edge-1", "ridge-1", 2))
        .unwrap()
        .replacen("{\"v\":1,", "{\"v\":2,", 1);
    assert!(newer.starts_with("{\"v\":2,"), "{newer}");
    let batch = vec![current.clone(), newer.into_bytes()];
    let (status, response) = harness.send(batch_request(&batch, None)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["retry-after"], "30");
    let body = json(response).await;
    assert_eq!(body["error"], "unsupported_version", "{body}");
    assert!(
        body["message"].as_str().unwrap().starts_with("line 2:"),
        "{body}"
    );

    let older = String::from_utf8(current.clone())
        .unwrap()
        .replacen("{\"v\":1,", "{\"v\":0,", 1);
    let (status, response) = harness
        .send(batch_request(&[older.into_bytes()], None))
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "no bridge ever wrote version 0"
    );
    assert_eq!(json(response).await["error"], "malformed");

    let sentinel = envelope("edge-1", "sentinel", 99);
    assert_eq!(
        harness
            .send(batch_request(std::slice::from_ref(&sentinel), None))
            .await
            .0,
        StatusCode::OK
    );
    let topic = harness.config.raw_topic.clone();
    let consumed = read_topic(bootstrap, &topic, READ_WITHIN, |seen| !seen.is_empty()).await;
    assert_eq!(
        consumed[0].payload, sentinel,
        "a refused record reached Kafka"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_in_flight_limit_the_answer_is_503_with_retry_after() {
    let bootstrap = tokio::task::block_in_place(shared_broker);
    let harness = Harness::new(bootstrap, 1, |_| {}).await;
    let in_flight = &harness.state.shared().in_flight;
    let held = in_flight.reserve(in_flight.limit() - 100).unwrap();
    let lines = vec![envelope("edge-1", "ridge-1", 1)];

    let (status, response) = harness.send(batch_request(&lines, None)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["retry-after"], "2");
    assert_eq!(json(response).await["error"], "overloaded");

    drop(held);
    assert_eq!(
        harness.send(batch_request(&lines, None)).await.0,
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_heartbeat_reaches_agent_status_keyed_by_agent() {
    let bootstrap = tokio::task::block_in_place(shared_broker);
    let harness = Harness::with_tokens(bootstrap, &["edge-3"]).await;
    let body = heartbeat("edge-3");

    let (status, _) = harness
        .send(heartbeat_request(body.clone(), Some(&token_of("edge-3"))))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = harness
        .send(heartbeat_request(b"{}".to_vec(), Some(&token_of("edge-3"))))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let topic = harness.config.status_topic.clone();
    let consumed = read_topic(bootstrap, &topic, READ_WITHIN, |seen| !seen.is_empty()).await;
    assert_eq!(
        (consumed[0].key.as_str(), &consumed[0].payload),
        ("edge-3", &body)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_tell_alive_from_ready() {
    let bootstrap = tokio::task::block_in_place(shared_broker);
    let harness = Harness::new(bootstrap, 1, |_| {}).await;
    let get = |path: &str| Request::get(path).body(Body::empty()).unwrap();
    assert_eq!(harness.send(get("/healthz")).await.0, StatusCode::OK);
    assert_eq!(harness.send(get("/readyz")).await.0, StatusCode::OK);

    let missing = Harness::new(bootstrap, 1, |c| c.raw_topic = "no-such-topic-here".into()).await;
    let (status, response) = missing.send(get("/readyz")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(text(response).await.contains("no-such-topic-here"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_sent_again_after_it_was_produced_is_answered_without_producing_it_again() {
    let bootstrap = tokio::task::block_in_place(shared_broker);
    let harness = Harness::new(bootstrap, 3, |_| {}).await;
    // One sensor: one partition, so the topic's order is the order of production.
    let lines: Vec<Vec<u8>> = (0..20).map(|n| envelope("edge-1", "ridge-1", n)).collect();
    let mut one_more = lines.clone();
    one_more.push(envelope("edge-1", "ridge-1", 20));
    for batch in [&lines, &lines, &one_more] {
        let (status, response) = harness.send(batch_request(batch, None)).await;
        assert_eq!(status, StatusCode::OK);
        let accepted = serde_json::json!({ "accepted": batch.len() });
        assert_eq!(json(response).await, accepted);
    }

    let topic = harness.config.raw_topic.clone();
    let consumed = read_topic(bootstrap, &topic, READ_WITHIN, |seen| seen.len() >= 41).await;
    let payloads: Vec<&[u8]> = consumed.iter().map(|r| r.payload.as_slice()).collect();
    let expected: Vec<&[u8]> = lines.iter().chain(&one_more).map(Vec::as_slice).collect();
    assert_eq!(
        payloads, expected,
        "the repeat is not in the topic; a batch that differs is"
    );

    let metrics = harness.metrics().await;
    for line in [
        "emberline_bridge_batches_total 2",
        "emberline_bridge_batches_repeated_total 1",
        "emberline_bridge_records_total 41",
    ] {
        assert!(metrics.contains(line), "{line} in {metrics}");
    }
}
