//! The writer against a real broker and a real PostgreSQL: duplicates, late readings, dead
//! letters, and PostgreSQL connections killed mid-stream.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use common::{
    EVERY, MILD, Topics, WITHIN, count, envelope, heartbeat, produce, produce_envelopes, producer,
    read_topic, spawn_writer, wait_for_count,
};
use emberline_core::{Envelope, Profile};
use emberline_hub::kafka::dlq::headers;
use emberline_testkit::{TestDb, shared_broker, wait_until};

fn classified(envelope: &Envelope) -> Envelope {
    let profile = Profile::builtin("default").unwrap();
    let mut envelope = envelope.clone();
    let reading = &envelope.reading;
    envelope.classification =
        Some(profile.classification(reading.measurements(), reading.timestamp()));
    envelope
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_is_one_row_and_a_late_reading_does_not_overwrite_newer_state() {
    let bootstrap = tokio::task::block_in_place(shared_broker);
    let db = TestDb::create().await;
    let topics = Topics::create(bootstrap, 3).await;
    let writer = spawn_writer(topics.write_config(&db.url)).await;
    let producer = producer(bootstrap);
    let newer = envelope("s-1", 2, 60, MILD);
    let older = envelope("s-1", 1, 0, MILD);
    produce_envelopes(&producer, &topics.raw, &[newer.clone(), newer.clone()]).await;
    produce_envelopes(&producer, &topics.anomaly, &[classified(&newer)]).await;
    wait_for_count(&db.pool, "SELECT count(*) FROM classifications", 1).await;
    produce_envelopes(&producer, &topics.raw, &[older.clone(), newer.clone()]).await;
    produce_envelopes(&producer, &topics.anomaly, &[classified(&older)]).await;
    let beats = [heartbeat("edge-1", 30, 5), heartbeat("edge-1", 20, 9)];
    let beats: Vec<(String, Vec<u8>)> = beats
        .iter()
        .map(|b| ("edge-1".to_owned(), serde_json::to_vec(b).unwrap()))
        .collect();
    produce(&producer, &topics.status, &beats).await;

    wait_for_count(&db.pool, "SELECT count(*) FROM classifications", 2).await;
    wait_for_count(&db.pool, "SELECT count(*) FROM agent_heartbeats", 2).await;
    assert_eq!(count(&db.pool, "SELECT count(*) FROM readings").await, 2);
    let (latest, classified_latest): (String, String) = sqlx::query_as(
        "SELECT reading_id, classified_reading_id FROM sensors WHERE source_name = 's-1'",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(latest, newer.reading_id.as_str());
    assert_eq!(classified_latest, newer.reading_id.as_str());
    let depth: i64 =
        sqlx::query_scalar("SELECT buffer_depth FROM agents WHERE agent_id = 'edge-1'")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(depth, 5, "the older heartbeat does not overwrite the newer");
    writer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_goes_to_the_dead_letter_table_and_topic_and_the_rest_flows() {
    let bootstrap = tokio::task::block_in_place(shared_broker);
    let db = TestDb::create().await;
    let topics = Topics::create(bootstrap, 1).await;
    let writer = spawn_writer(topics.write_config(&db.url)).await;
    let producer = producer(bootstrap);
    let good = classified(&envelope("s-1", 1, 0, MILD));
    let unclassified = envelope("s-1", 2, 1, MILD);
    let after = classified(&envelope("s-1", 3, 2, MILD));
    let key = || "s-1".to_owned();
    let anomaly = [
        (key(), good.to_vec()),
        (key(), unclassified.to_vec()),
        (key(), b"{\"v\":1}".to_vec()),
        (key(), after.to_vec()),
    ];
    produce(&producer, &topics.anomaly, &anomaly).await;
    produce(&producer, &topics.raw, &[(key(), b"\x00\x01".to_vec())]).await;

    wait_for_count(&db.pool, "SELECT count(*) FROM dead_letters", 3).await;
    wait_for_count(&db.pool, "SELECT count(*) FROM classifications", 2).await;
    let codes: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT source_topic, error_code, source_offset FROM dead_letters
         ORDER BY source_topic, source_offset",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    let expected = [
        (
            topics.anomaly.clone(),
            "missing_classification".to_owned(),
            1,
        ),
        (topics.anomaly.clone(), "invalid_envelope".to_owned(), 2),
        (topics.raw.clone(), "not_json".to_owned(), 0),
    ];
    assert_eq!(codes, expected);

    // Only the anomaly topic's poison goes to a topic: the detector owns raw-data.dlq.
    let dead = read_topic(
        bootstrap,
        &topics.anomaly_dlq,
        2,
        Duration::from_millis(500),
    )
    .await;
    assert_eq!(dead.len(), 2);
    assert_eq!(dead[0].header(headers::FAILED_BY), Some("writer"));
    assert_eq!(
        dead[0].header(headers::ERROR_CODE),
        Some("missing_classification")
    );
    assert_eq!(dead[1].header(headers::SOURCE_OFFSET), Some("2"));
    writer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_postgresql_refuses_becomes_a_dead_letter_and_the_rest_is_written() {
    let bootstrap = tokio::task::block_in_place(shared_broker);
    let db = TestDb::create().await;
    let topics = Topics::create(bootstrap, 1).await;
    let mut config = topics.write_config(&db.url);
    config.raw_dlq_topic = Some(topics.raw_dlq.clone());
    let writer = spawn_writer(config).await;
    // A valid envelope whose extra field holds U+0000, which PostgreSQL's jsonb cannot store.
    let mut refused = serde_json::to_value(envelope("s-1", 2, 1, MILD)).unwrap();
    refused["reading"]["note"] = "nul \u{0000} here".into();
    // One whose sensor name is longer than a B-tree index row may be (54000, program limit
    // exceeded): only an agent caps names at 128 characters. Letters that do not compress.
    let mut long_name = serde_json::to_value(envelope("s-1", 3, 2, MILD)).unwrap();
    let mut state = 7u32;
    let name: String = (0..4000)
        .map(|_| {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            char::from(b'a' + ((state >> 16) % 26) as u8)
        })
        .collect();
    long_name["reading"]["source_name"] = name.into();
    let key = || "s-1".to_owned();
    let records = [
        (key(), envelope("s-1", 1, 0, MILD).to_vec()),
        (key(), serde_json::to_vec(&refused).unwrap()),
        (key(), serde_json::to_vec(&long_name).unwrap()),
        (key(), envelope("s-1", 4, 3, MILD).to_vec()),
    ];
    produce(&producer(bootstrap), &topics.raw, &records).await;

    wait_for_count(&db.pool, "SELECT count(*) FROM dead_letters", 2).await;
    wait_for_count(&db.pool, "SELECT count(*) FROM readings", 2).await;
    let dead_rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT error_code, source_offset FROM dead_letters ORDER BY source_offset")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    assert_eq!(
        dead_rows,
        [
            ("rejected_by_database".to_owned(), 1),
            ("rejected_by_database".to_owned(), 2)
        ]
    );
    let dead = read_topic(bootstrap, &topics.raw_dlq, 2, Duration::ZERO).await;
    assert_eq!(
        dead[0].header(headers::ERROR_CODE),
        Some("rejected_by_database")
    );
    assert_eq!(dead[0].payload, records[1].1);
    assert_eq!(dead[1].payload, records[2].1);
    writer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_removes_old_readings_in_the_background_and_keeps_latest_state() {
    let bootstrap = tokio::task::block_in_place(shared_broker);
    let db = TestDb::create().await;
    let topics = Topics::create(bootstrap, 1).await;
    let mut config = topics.write_config(&db.url);
    config.retention = Some(Duration::from_secs(24 * 3600));
    config.retention_every = Duration::from_millis(100);
    config.retention_batch = 3;
    let writer = spawn_writer(config).await;
    // The fixture's readings are from 2025: all older than a day.
    let old: Vec<Envelope> = (0..10)
        .map(|n| envelope("s-1", n, n as i64, MILD))
        .collect();
    produce_envelopes(&producer(bootstrap), &topics.raw, &old).await;

    wait_until(
        "retention to remove the old readings",
        WITHIN,
        EVERY,
        || async {
            let deleted = writer.metric("emberline_hub_retention_deleted_rows_total");
            (deleted == Some(10.0)).then_some(())
        },
    )
    .await;
    assert_eq!(
        writer.metric("emberline_hub_rules_file_valid"),
        None,
        "the writer has no rules: no gauge reading 0 as if a rules file were refused"
    );
    assert_eq!(count(&db.pool, "SELECT count(*) FROM readings").await, 0);
    assert_eq!(count(&db.pool, "SELECT count(*) FROM sensors").await, 1);
    writer.stop().await;
}

/// Terminates every other session of the test database, as a PostgreSQL restart or a failover
/// would; returns how many went.
async fn kill_connections(db: &TestDb) -> i64 {
    sqlx::query_scalar(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_database_connections_lose_nothing_and_duplicate_nothing() {
    let bootstrap = tokio::task::block_in_place(shared_broker);
    let db = Arc::new(TestDb::create().await);
    let topics = Topics::create(bootstrap, 3).await;
    let mut config = topics.write_config(&db.url);
    config.common.batch_size = 20;
    let writer = spawn_writer(config).await;

    // Kill every other session of the database, over and over, until the writer has met it
    // mid-write (a retried batch) a few times; readings keep flowing all along.
    let killed = Arc::new(AtomicI64::new(0));
    let killer = {
        let (db, killed) = (db.clone(), killed.clone());
        tokio::spawn(async move {
            loop {
                killed.fetch_add(kill_connections(&db).await, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let producer = producer(bootstrap);
    let retried = || writer.metric("emberline_hub_retries_total{what=\"database\"}");
    let mut sent = 0;
    while retried().unwrap_or(0.0) < 3.0 {
        assert!(sent < 20_000, "the writer never met a killed connection");
        let chunk: Vec<Envelope> = (sent..sent + 20)
            .map(|n| envelope(&format!("s-{}", n % 30), n, n as i64, MILD))
            .collect();
        produce_envelopes(&producer, &topics.raw, &chunk).await;
        sent += 20;
    }
    killer.abort();
    let _ = killer.await;

    let sent = i64::try_from(sent).unwrap();
    wait_for_count(&db.pool, "SELECT count(*) FROM readings", sent).await;
    let distinct = count(&db.pool, "SELECT count(DISTINCT reading_id) FROM readings").await;
    assert_eq!(distinct, sent);
    let dead = count(&db.pool, "SELECT count(*) FROM dead_letters").await;
    assert_eq!(dead, 0, "a killed connection is an outage, not bad data");
    wait_for_count(&db.pool, "SELECT count(*) FROM sensors", sent.min(30)).await;
    tracing::info!(sent, retries = ?retried(), killed = killed.load(Ordering::Relaxed), "done");
    writer.stop().await;
}
