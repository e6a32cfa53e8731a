//! The writer's SQL against a real PostgreSQL (no broker): migrations, idempotence, latest state
//! by the record's own timestamp, retention.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{MILD, Weather, count, envelope, heartbeat};
use emberline_core::{Envelope, Profile};
use emberline_hub::db;
use emberline_hub::writer::decode::{Item, Rows, Topics, decode};
use emberline_hub::writer::{retention, store};
use emberline_testkit::TestDb;
use rdkafka::Timestamp;
use rdkafka::message::OwnedMessage;

const HOT: Weather = Weather {
    temperature: 45.0,
    humidity: 10.0,
    ..MILD
};

fn topics() -> Topics {
    Topics {
        raw: "raw".into(),
        anomaly: "anomaly".into(),
        status: "status".into(),
    }
}

fn message(topic: &str, offset: i64, payload: Vec<u8>) -> OwnedMessage {
    OwnedMessage::new(
        Some(payload),
        None,
        topic.into(),
        Timestamp::NotAvailable,
        0,
        offset,
        None,
    )
}

fn classified(envelope: &Envelope) -> Envelope {
    let profile = Profile::builtin("seed-compat").unwrap();
    let mut envelope = envelope.clone();
    let reading = &envelope.reading;
    envelope.classification =
        Some(profile.classification(reading.measurements(), reading.timestamp()));
    envelope
}

/// Decodes `(topic, payload)` records and writes them in one transaction.
async fn write(db: &TestDb, records: &[(&str, Vec<u8>)]) {
    let items: Vec<Item> = records
        .iter()
        .enumerate()
        .map(|(offset, (topic, payload))| {
            decode(&topics(), &message(topic, offset as i64, payload.clone()))
        })
        .collect();
    store::write(&db.pool, &Rows::new(&items)).await.unwrap();
}

async fn migrated() -> TestDb {
    let db = TestDb::create().await;
    db::migrate(&db.pool).await.unwrap();
    db::migrate(&db.pool).await.unwrap(); // a second run finds nothing to do
    db
}

async fn sensor_state(db: &TestDb, source: &str) -> (String, Option<String>, Option<String>) {
    sqlx::query_as(
        "SELECT reading_id, classified_reading_id, intensity FROM sensors WHERE source_name = $1",
    )
    .bind(source)
    .fetch_one(&db.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_batch_written_twice_is_written_once() {
    let db = migrated().await;
    let a = envelope("s-1", 1, 0, MILD);
    let b = classified(&envelope("s-1", 2, 10, HOT));
    let records = [
        ("raw", a.to_vec()),
        ("raw", a.to_vec()),
        ("anomaly", b.to_vec()),
        (
            "status",
            serde_json::to_vec(&heartbeat("edge-1", 5, 3)).unwrap(),
        ),
        ("raw", b"not json".to_vec()),
    ];
    write(&db, &records).await;
    write(&db, &records).await;
    assert_eq!(count(&db.pool, "SELECT count(*) FROM readings").await, 2);
    assert_eq!(
        count(&db.pool, "SELECT count(*) FROM classifications").await,
        1
    );
    assert_eq!(
        count(&db.pool, "SELECT count(*) FROM agent_heartbeats").await,
        1
    );
    assert_eq!(
        count(&db.pool, "SELECT count(*) FROM dead_letters").await,
        1
    );
    let (latest, classified_id, intensity) = sensor_state(&db, "s-1").await;
    assert_eq!(latest, b.reading_id.as_str());
    assert_eq!(classified_id.as_deref(), Some(b.reading_id.as_str()));
    assert_eq!(intensity.as_deref(), Some("high"));
    let payload: serde_json::Value =
        sqlx::query_scalar("SELECT payload FROM readings WHERE reading_id = $1")
            .bind(a.reading_id.as_str())
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(payload["seq"], 1, "the reading is stored as sent");
}

#[tokio::test]
async fn a_late_reading_never_overwrites_newer_state() {
    let db = migrated().await;
    let newer = classified(&envelope("s-1", 2, 60, MILD));
    let older = classified(&envelope("s-1", 1, 0, HOT));
    write(&db, &[("anomaly", newer.to_vec())]).await;
    write(&db, &[("anomaly", older.to_vec())]).await;
    write(&db, &[("raw", older.to_vec())]).await;
    let (latest, classified_id, intensity) = sensor_state(&db, "s-1").await;
    assert_eq!(latest, newer.reading_id.as_str());
    assert_eq!(classified_id.as_deref(), Some(newer.reading_id.as_str()));
    assert_eq!(intensity.as_deref(), Some("low"));
    assert_eq!(
        count(&db.pool, "SELECT count(*) FROM classifications").await,
        2
    );

    // Within one batch too, whatever the order.
    let late = envelope("s-2", 1, 0, HOT);
    let fresh = envelope("s-2", 2, 30, MILD);
    write(&db, &[("raw", fresh.to_vec()), ("raw", late.to_vec())]).await;
    assert_eq!(sensor_state(&db, "s-2").await.0, fresh.reading_id.as_str());

    let beats = [heartbeat("edge-1", 50, 9), heartbeat("edge-1", 10, 1)];
    for beat in beats {
        write(&db, &[("status", serde_json::to_vec(&beat).unwrap())]).await;
    }
    let depth: i64 =
        sqlx::query_scalar("SELECT buffer_depth FROM agents WHERE agent_id = 'edge-1'")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(depth, 9);
}

#[tokio::test]
async fn retention_removes_old_readings_in_batches_and_keeps_the_rest() {
    let db = migrated().await;
    let records: Vec<(&str, Vec<u8>)> = (0..25)
        .map(|n| {
            (
                "anomaly",
                classified(&envelope(&format!("s-{n}"), n, n as i64, MILD)).to_vec(),
            )
        })
        .collect();
    write(&db, &records).await;
    // A recent reading: the fixture's base time is in the past, so give one a fresh timestamp.
    sqlx::query("UPDATE readings SET observed_at = now() WHERE reading_id = (SELECT min(reading_id) FROM readings)")
        .execute(&db.pool)
        .await
        .unwrap();
    let max_age = Duration::from_secs(24 * 3600);
    let deleted = retention::prune(&db.pool, max_age, 7).await.unwrap();
    assert_eq!(deleted, 24);
    assert_eq!(count(&db.pool, "SELECT count(*) FROM readings").await, 1);
    assert_eq!(
        count(&db.pool, "SELECT count(*) FROM classifications").await,
        1
    );
    assert_eq!(
        count(&db.pool, "SELECT count(*) FROM sensors").await,
        25,
        "latest state stays"
    );
}

#[tokio::test]
async fn a_reading_the_database_refuses_is_a_permanent_failure() {
    let db = migrated().await;
    // PostgreSQL's jsonb cannot hold U+0000: the one kind of data it refuses outright.
    let mut poisoned = serde_json::to_value(envelope("s-1", 1, 0, MILD)).unwrap();
    poisoned["reading"]["note"] = serde_json::Value::from("nul \u{0000} here");
    let items = [decode(
        &topics(),
        &message("raw", 0, serde_json::to_vec(&poisoned).unwrap()),
    )];
    let error = store::write(&db.pool, &Rows::new(&items))
        .await
        .unwrap_err();
    assert_eq!(db::failure(&error), db::Failure::Permanent, "{error}");
}
