//! The detector against a real broker (Tansu): dead letters, determinism, hot reload.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{
    EVERY, MILD, Topics, WITHIN, Weather, envelope, produce, produce_envelopes, producer,
    read_topic, spawn_detector,
};
use emberline_core::{Envelope, Intensity, Profile};
use emberline_hub::kafka::dlq::headers;
use emberline_testkit::{create_topic, shared_broker, unique_name, wait_until};

/// Hot for seed-compat (temperature > 40) but not for the default profile (which also wants
/// humidity < 20).
const HOT_BUT_HUMID: Weather = Weather {
    temperature: 41.0,
    humidity: 50.0,
    ..MILD
};

/// Replaces a file at once (write, then rename), as a careful operator or a config map does.
fn replace_file(path: &std::path::Path, text: &str) {
    let staged = path.with_extension("staged");
    std::fs::write(&staged, text).unwrap();
    std::fs::rename(&staged, path).unwrap();
}

fn decoded(payload: &[u8]) -> Envelope {
    Envelope::from_slice(payload).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_goes_to_the_dead_letter_topic_and_the_partition_keeps_flowing() {
    let bootstrap = tokio::task::block_in_place(shared_broker);
    let topics = Topics::create(bootstrap, 1).await;
    let detector = spawn_detector(topics.detect_config()).await;
    let (first, last) = (envelope("s-1", 1, 0, MILD), envelope("s-1", 2, 1, MILD));
    let mut other_version = serde_json::to_value(&first).unwrap();
    other_version["v"] = 2.into();
    let key = || "s-1".to_owned();
    let records = [
        (key(), first.to_vec()),
        (key(), b"<html>not a reading</html>".to_vec()),
        (key(), serde_json::to_vec(&other_version).unwrap()),
        (key(), last.to_vec()),
    ];
    produce(&producer(bootstrap), &topics.raw, &records).await;

    let classified = read_topic(bootstrap, &topics.anomaly, 2, Duration::from_millis(500)).await;
    let ids: Vec<String> = classified
        .iter()
        .map(|c| decoded(&c.payload).reading_id.to_string())
        .collect();
    assert_eq!(
        ids,
        [first.reading_id.to_string(), last.reading_id.to_string()]
    );
    assert!(classified.iter().all(|c| c.key.as_deref() == Some("s-1")));

    let dead = read_topic(bootstrap, &topics.raw_dlq, 2, Duration::from_millis(500)).await;
    assert_eq!(dead.len(), 2, "{dead:?}");
    for (letter, (code, offset)) in dead
        .iter()
        .zip([("not_json", "1"), ("unsupported_version", "2")])
    {
        assert_eq!(letter.header(headers::ERROR_CODE), Some(code));
        assert_eq!(
            letter.header(headers::SOURCE_TOPIC),
            Some(topics.raw.as_str())
        );
        assert_eq!(letter.header(headers::SOURCE_PARTITION), Some("0"));
        assert_eq!(letter.header(headers::SOURCE_OFFSET), Some(offset));
        assert_eq!(letter.header(headers::FAILED_BY), Some("detector"));
        assert!(letter.header(headers::ERROR).is_some_and(|e| !e.is_empty()));
    }
    assert_eq!(
        dead[0].payload, records[1].1,
        "the record is kept as it was"
    );
    let dlq_metric = format!("emberline_hub_dead_letters_total{{topic=\"{}\"", topics.raw);
    wait_until("the dead-letter metric", WITHIN, EVERY, || async {
        (detector.metric(&dlq_metric).is_some()).then_some(())
    })
    .await;
    detector.stop().await;
}

/// A raw record just under `message.max.bytes` classifies into one just over it: Kafka would
/// refuse that every time. It becomes a dead letter (cut to fit, and saying so) and the
/// partition moves on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_classification_larger_than_kafka_takes_is_a_dead_letter() {
    const MAX: usize = 4096;
    let bootstrap = tokio::task::block_in_place(shared_broker);
    let topics = Topics::create(bootstrap, 1).await;
    let mut config = topics.detect_config();
    config.common.kafka_options = vec![("message.max.bytes".into(), MAX.to_string())];
    let detector = spawn_detector(config).await;
    let mut large = serde_json::to_value(envelope("s-1", 1, 0, MILD)).unwrap();
    large["reading"]["note"] = "x".repeat(3_700).into();
    let large = serde_json::to_vec(&large).unwrap();
    assert!(large.len() < MAX, "{}", large.len());
    let after = envelope("s-1", 2, 1, MILD);
    let key = || "s-1".to_owned();
    produce(
        &producer(bootstrap),
        &topics.raw,
        &[(key(), large.clone()), (key(), after.to_vec())],
    )
    .await;

    let classified = read_topic(bootstrap, &topics.anomaly, 1, Duration::from_millis(500)).await;
    assert_eq!(classified.len(), 1);
    assert_eq!(decoded(&classified[0].payload).reading_id, after.reading_id);
    let dead = read_topic(bootstrap, &topics.raw_dlq, 1, Duration::from_millis(500)).await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].header(headers::ERROR_CODE), Some("too_large"));
    assert_eq!(dead[0].header(headers::SOURCE_OFFSET), Some("0"));
    let whole = large.len().to_string();
    assert_eq!(
        dead[0].header(headers::TRUNCATED_FROM),
        Some(whole.as_str())
    );
    assert!(large.starts_with(&dead[0].payload) && dead[0].payload.len() > 3_000);
    detector.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_readings_always_give_the_same_records() {
    let bootstrap = tokio::task::block_in_place(shared_broker);
    let topics = Topics::create(bootstrap, 3).await;
    let envelopes: Vec<Envelope> = (0..30)
        .map(|n| {
            let weather = Weather {
                temperature: 20.0 + n as f64,
                humidity: 60.0 - 2.0 * n as f64,
                ..MILD
            };
            envelope(&format!("s-{}", n % 5), n, n as i64, weather)
        })
        .collect();
    produce_envelopes(&producer(bootstrap), &topics.raw, &envelopes).await;

    let mut outputs = Vec::new();
    for _ in 0..2 {
        let mut config = topics.detect_config();
        config.anomaly_topic = create_topic(bootstrap, &unique_name("hub-anomaly"), 3).await;
        let detector = spawn_detector(config.clone()).await;
        let records = read_topic(
            bootstrap,
            &config.anomaly_topic,
            30,
            Duration::from_millis(500),
        )
        .await;
        detector.stop().await;
        let mut payloads: Vec<Vec<u8>> = records.into_iter().map(|r| r.payload).collect();
        payloads.sort();
        outputs.push(payloads);
    }
    assert_eq!(outputs[0].len(), 30);
    assert_eq!(
        outputs[0], outputs[1],
        "two runs over the same readings differ"
    );
    let first = decoded(&outputs[0][0]);
    let classification = first.classification.unwrap();
    assert_eq!(classification.detected_at, first.reading.timestamp());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_reload_applies_to_the_next_records_and_a_broken_file_is_refused() {
    let bootstrap = tokio::task::block_in_place(shared_broker);
    let topics = Topics::create(bootstrap, 1).await;
    let rules = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(rules.path(), Profile::builtin_toml("default").unwrap()).unwrap();
    let mut config = topics.detect_config();
    config.rules = Some(rules.path().to_owned());
    config.rules_poll = Duration::from_millis(100);
    let detector = spawn_detector(config).await;
    let producer = producer(bootstrap);
    let read = |n: usize| read_topic(bootstrap, &topics.anomaly, n, Duration::ZERO);

    produce_envelopes(
        &producer,
        &topics.raw,
        &[envelope("s-1", 1, 0, HOT_BUT_HUMID)],
    )
    .await;
    let before = decoded(&read(1).await[0].payload).classification.unwrap();
    assert_eq!(
        before.rules_version,
        Profile::builtin("default").unwrap().version
    );
    assert_ne!(before.intensity, Intensity::High);

    replace_file(rules.path(), Profile::builtin_toml("seed-compat").unwrap());
    let applied = "emberline_hub_rules_info{version=\"seed-compat-1\"} 1";
    wait_until("the new rules", WITHIN, EVERY, || async {
        detector.metric(applied).is_some().then_some(())
    })
    .await;
    produce_envelopes(
        &producer,
        &topics.raw,
        &[envelope("s-1", 2, 1, HOT_BUT_HUMID)],
    )
    .await;
    let after = decoded(&read(2).await[1].payload).classification.unwrap();
    assert_eq!(after.rules_version, "seed-compat-1");
    assert_eq!(after.intensity, Intensity::High);

    replace_file(rules.path(), "name = \"broken\"\nversion = ");
    wait_until("the broken file refused", WITHIN, EVERY, || async {
        let refused = detector.metric("emberline_hub_rules_reloads_total{outcome=\"refused\"}");
        let valid = detector.metric("emberline_hub_rules_file_valid");
        (refused == Some(1.0) && valid == Some(0.0)).then_some(())
    })
    .await;
    produce_envelopes(
        &producer,
        &topics.raw,
        &[envelope("s-1", 3, 2, HOT_BUT_HUMID)],
    )
    .await;
    let kept = decoded(&read(3).await[2].payload).classification.unwrap();
    assert_eq!(
        kept.rules_version, "seed-compat-1",
        "a broken file keeps the rules in use"
    );
    assert!(detector.metric(applied).is_some());
    detector.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_stop_commits_what_is_done_and_the_next_instance_goes_on_from_there() {
    let bootstrap = tokio::task::block_in_place(shared_broker);
    let topics = Topics::create(bootstrap, 1).await;
    let config = topics.detect_config();
    let producer = producer(bootstrap);
    let batch = |from: u64, to: u64| -> Vec<Envelope> {
        (from..to)
            .map(|n| envelope("s-1", n, n as i64, MILD))
            .collect()
    };
    produce_envelopes(&producer, &topics.raw, &batch(0, 10)).await;
    let first = spawn_detector(config.clone()).await;
    read_topic(bootstrap, &topics.anomaly, 10, Duration::ZERO).await;
    first.stop().await;

    // One partition keeps order: had the second instance re-read anything, it would show up
    // before the last reading.
    produce_envelopes(&producer, &topics.raw, &batch(10, 15)).await;
    let second = spawn_detector(config).await;
    let records = read_topic(bootstrap, &topics.anomaly, 15, Duration::ZERO).await;
    second.stop().await;
    let ids: Vec<String> = records
        .iter()
        .map(|r| decoded(&r.payload).reading_id.to_string())
        .collect();
    let expected: Vec<String> = batch(0, 15)
        .iter()
        .map(|e| e.reading_id.to_string())
        .collect();
    assert_eq!(ids, expected);
}
