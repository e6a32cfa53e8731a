//! Detector and writer together, against a real broker and a real PostgreSQL: readings produced
//! to raw-data end up as rows with the right classification.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{
    EVERY, MILD, Topics, WITHIN, Weather, count, envelope, produce, produce_envelopes, producer,
    spawn_detector, spawn_writer, wait_for_count,
};
use emberline_core::{Envelope, Profile};
use emberline_testkit::{TestDb, shared_broker, wait_until};
use time::OffsetDateTime;

type ClassificationRow = (String, f64, serde_json::Value, String, OffsetDateTime);

async fn classification_of(db: &TestDb, envelope: &Envelope) -> ClassificationRow {
    sqlx::query_as(
        "SELECT intensity, confidence_score, rules_fired, rules_version, detected_at
         FROM classifications WHERE reading_id = $1",
    )
    .bind(envelope.reading_id.as_str())
    .fetch_one(&db.pool)
    .await
    .unwrap_or_else(|error| panic!("no classification for {}: {error}", envelope.reading_id))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readings_produced_to_raw_data_become_rows_with_their_classification() {
    let bootstrap = tokio::task::block_in_place(shared_broker);
    let db = TestDb::create().await;
    let topics = Topics::create(bootstrap, 3).await;
    let mut detect = topics.detect_config();
    detect.common.lag_interval = Duration::from_millis(200);
    let detector = spawn_detector(detect).await;
    let writer = spawn_writer(topics.write_config(&db.url)).await;
    let envelopes: Vec<Envelope> = (0..40)
        .map(|n| {
            let weather = Weather {
                temperature: 15.0 + n as f64,
                humidity: 70.0 - 1.5 * n as f64,
                wind_speed: (n % 7) as f64 * 6.0,
                vegetation_density: (n % 10) as f64 / 10.0,
                air_quality_index: 20.0 + 5.0 * n as f64,
            };
            envelope(&format!("sensor-{}", n % 8), n, n as i64, weather)
        })
        .collect();
    produce_envelopes(&producer(bootstrap), &topics.raw, &envelopes).await;

    wait_for_count(&db.pool, "SELECT count(*) FROM classifications", 40).await;
    assert_eq!(count(&db.pool, "SELECT count(*) FROM readings").await, 40);
    let profile = Profile::builtin("default").unwrap();
    for envelope in &envelopes {
        let expected = profile.classify(envelope.reading.measurements());
        let (intensity, confidence, fired, version, detected_at) =
            classification_of(&db, envelope).await;
        assert_eq!(
            intensity,
            expected.intensity.as_str(),
            "{}",
            envelope.reading_id
        );
        assert_eq!(confidence, expected.confidence);
        assert_eq!(fired, serde_json::json!(expected.rules_fired));
        assert_eq!(version, profile.version);
        assert_eq!(detected_at, envelope.reading.timestamp());
    }
    let high = count(
        &db.pool,
        "SELECT count(*) FROM classifications WHERE intensity = 'high'",
    )
    .await;
    assert!(high > 0, "the fixture should include hot, dry readings");

    // Latest state: each sensor shows its newest reading (the highest n of its 5).
    wait_for_count(
        &db.pool,
        "SELECT count(*) FROM sensors WHERE intensity IS NOT NULL",
        8,
    )
    .await;
    for sensor in 0..8 {
        let newest = &envelopes[32 + sensor];
        let (reading_id, intensity): (String, String) = sqlx::query_as(
            "SELECT classified_reading_id, intensity FROM sensors WHERE source_name = $1",
        )
        .bind(newest.key())
        .fetch_one(&db.pool)
        .await
        .unwrap();
        assert_eq!(reading_id, newest.reading_id.as_str());
        assert_eq!(
            intensity,
            profile
                .classify(newest.reading.measurements())
                .intensity
                .as_str()
        );
    }
    // Every partition of raw-data is assigned to the one detector, and it has caught up.
    let lag = format!(
        "emberline_hub_consumer_lag_records{{topic=\"{}\"",
        topics.raw
    );
    wait_until("the lag of every partition", WITHIN, EVERY, || async {
        let text = detector.metrics.render().unwrap();
        let lines: Vec<&str> = text.lines().filter(|l| l.starts_with(&lag)).collect();
        (lines.len() == 3 && lines.iter().all(|l| l.ends_with(" 0"))).then_some(())
    })
    .await;
    detector.stop().await;
    writer.stop().await;
}

/// The reference system's detector, by hand: any-of thresholds, constant confidences.
fn reference_label(w: &Weather) -> (&'static str, f64) {
    if w.temperature > 40.0
        || w.humidity < 20.0
        || w.wind_speed > 20.0
        || w.vegetation_density > 0.7
        || w.air_quality_index > 150.0
    {
        ("high", 0.95)
    } else if w.temperature > 35.0
        || w.humidity < 30.0
        || w.wind_speed > 15.0
        || w.vegetation_density > 0.5
        || w.air_quality_index > 100.0
    {
        ("medium", 0.75)
    } else {
        ("low", 0.45)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_compat_profile_gives_the_reference_systems_labels() {
    let bootstrap = tokio::task::block_in_place(shared_broker);
    let db = TestDb::create().await;
    let topics = Topics::create(bootstrap, 3).await;
    let mut config = topics.detect_config();
    config.profile = "seed-compat".into();
    let detector = spawn_detector(config).await;
    let writer = spawn_writer(topics.write_config(&db.url)).await;
    let w = |temperature, humidity, wind_speed, vegetation_density, air_quality_index| Weather {
        temperature,
        humidity,
        wind_speed,
        vegetation_density,
        air_quality_index,
    };
    // Each threshold just over, exactly at, and the calm case; humidity as an integer, as the
    // reference Locust file sends it.
    let cases = [
        w(41.0, 50.0, 5.0, 0.3, 30.0),
        w(40.0, 50.0, 5.0, 0.3, 30.0),
        w(36.0, 50.0, 5.0, 0.3, 30.0),
        w(35.0, 50.0, 5.0, 0.3, 30.0),
        w(25.0, 19.0, 5.0, 0.3, 30.0),
        w(25.0, 20.0, 5.0, 0.3, 30.0),
        w(25.0, 29.0, 5.0, 0.3, 30.0),
        w(25.0, 50.0, 21.0, 0.3, 30.0),
        w(25.0, 50.0, 16.0, 0.3, 30.0),
        w(25.0, 50.0, 15.0, 0.3, 30.0),
        w(25.0, 50.0, 5.0, 0.71, 30.0),
        w(25.0, 50.0, 5.0, 0.6, 30.0),
        w(25.0, 50.0, 5.0, 0.5, 30.0),
        w(25.0, 50.0, 5.0, 0.3, 151.0),
        w(25.0, 50.0, 5.0, 0.3, 120.0),
        w(25.0, 50.0, 5.0, 0.3, 100.0),
        w(22.0, 55.0, 5.0, 0.3, 30.0),
    ];
    let envelopes: Vec<Envelope> = cases
        .iter()
        .enumerate()
        .map(|(n, weather)| envelope(&format!("ref-{n}"), n as u64, n as i64, *weather))
        .collect();
    produce_envelopes(&producer(bootstrap), &topics.raw, &envelopes).await;

    wait_for_count(
        &db.pool,
        "SELECT count(*) FROM classifications",
        cases.len() as i64,
    )
    .await;
    for (envelope, weather) in envelopes.iter().zip(&cases) {
        let (intensity, confidence, _, version, _) = classification_of(&db, envelope).await;
        let (label, score) = reference_label(weather);
        assert_eq!(
            (intensity.as_str(), confidence),
            (label, score),
            "{weather:?}"
        );
        assert_eq!(version, "seed-compat-1");
    }
    detector.stop().await;
    writer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_detectors_and_two_writers_store_everything_exactly_once_through_a_rebalance() {
    let bootstrap = tokio::task::block_in_place(shared_broker);
    let db = TestDb::create().await;
    let topics = Topics::create(bootstrap, 4).await;
    let detect = topics.detect_config();
    let write = topics.write_config(&db.url);
    let (detector_a, writer_a) = (
        spawn_detector(detect.clone()).await,
        spawn_writer(write.clone()).await,
    );
    let (detector_b, writer_b) = (spawn_detector(detect).await, spawn_writer(write).await);
    let producer = producer(bootstrap);
    let envelopes: Vec<Envelope> = (0..200)
        .map(|n| envelope(&format!("s-{}", n % 20), n, n as i64, MILD))
        .collect();
    for chunk in envelopes[..100].chunks(25) {
        produce_envelopes(&producer, &topics.raw, chunk).await;
    }
    wait_for_count(&db.pool, "SELECT count(*) FROM classifications", 100).await;

    // One instance of each role leaves mid-stream: the others take over its partitions.
    detector_a.stop().await;
    writer_a.stop().await;
    for chunk in envelopes[100..].chunks(25) {
        produce_envelopes(&producer, &topics.raw, chunk).await;
    }
    let heartbeat = serde_json::to_vec(&common::heartbeat("edge-1", 10, 4)).unwrap();
    produce(&producer, &topics.status, &[("edge-1".into(), heartbeat)]).await;

    wait_for_count(&db.pool, "SELECT count(*) FROM classifications", 200).await;
    assert_eq!(count(&db.pool, "SELECT count(*) FROM readings").await, 200);
    wait_for_count(&db.pool, "SELECT count(*) FROM sensors", 20).await;
    wait_for_count(&db.pool, "SELECT count(*) FROM agents", 1).await;
    detector_b.stop().await;
    writer_b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restart_pauses_both_roles_and_loses_nothing() {
    let mut broker = tokio::task::block_in_place(emberline_testkit::TestBroker::start);
    let bootstrap = broker.bootstrap();
    let db = TestDb::create().await;
    let topics = Topics::create(&bootstrap, 2).await;
    let detector = spawn_detector(topics.detect_config()).await;
    let writer = spawn_writer(topics.write_config(&db.url)).await;
    let readings = |from: u64, to: u64| -> Vec<Envelope> {
        (from..to)
            .map(|n| envelope(&format!("s-{}", n % 4), n, n as i64, MILD))
            .collect()
    };
    produce_envelopes(&producer(&bootstrap), &topics.raw, &readings(0, 20)).await;
    wait_for_count(&db.pool, "SELECT count(*) FROM classifications", 20).await;

    tokio::task::block_in_place(|| broker.kill9());
    tokio::task::block_in_place(|| broker.restart());
    produce_envelopes(&producer(&bootstrap), &topics.raw, &readings(20, 40)).await;
    wait_for_count(&db.pool, "SELECT count(*) FROM classifications", 40).await;
    assert_eq!(count(&db.pool, "SELECT count(*) FROM readings").await, 40);
    detector.stop().await;
    writer.stop().await;
}
