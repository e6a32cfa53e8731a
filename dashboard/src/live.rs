//! Live updates: the anomaly topic, followed from its end, fanned out to every open stream.
//!
//! Each dashboard instance *assigns* itself every partition at the end offset — no consumer
//! group, no commits — so instances never share (or steal) records, and a restarted instance
//! does not replay the past: history comes from PostgreSQL. Each record is serialized once into
//! a [`LiveEvent`] and published on the [`Feed`]; a browser that falls behind is told to reload.
//!
//! Shutdown: an rdkafka consumer can block in its destructor after a broker restart (see
//! DEVELOPERS.md), so it is dropped on a detached thread and the task ends at once.

use std::sync::Arc;
use std::time::Duration;

use emberline_core::Envelope;
use rdkafka::consumer::{Consumer as _, StreamConsumer};
use rdkafka::message::Message as _;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

use crate::feature::Feature;
use crate::feed::Feed;
use crate::metrics::Metrics;

/// One classification, as the JSON text of its [`Feature`] (serialized once for all streams).
pub type LiveEvent = Arc<str>;

/// Wait between attempts to find the topic's partitions.
const RETRY: Duration = Duration::from_secs(2);

/// Why the live feed cannot start.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error("cannot create the Kafka consumer: {0}")]
    Client(#[from] rdkafka::error::KafkaError),
}

/// Follows `topic` on `brokers` until `token` is cancelled, sending every classification.
pub async fn run(
    brokers: String,
    topic: String,
    feed: Feed,
    metrics: Arc<Metrics>,
    token: CancellationToken,
) -> Result<(), LiveError> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set(
            "group.id",
            format!("emberline-dashboard-{}", std::process::id()),
        )
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("fetch.wait.max.ms", "100")
        .create()?;
    let consumer = Arc::new(consumer);
    if assign_at_end(&consumer, &topic, &token).await {
        tracing::info!(%topic, "following the anomaly topic for live updates");
        follow(&consumer, &feed, &metrics, &token).await;
    }
    std::thread::spawn(move || drop(consumer));
    Ok(())
}

/// Assigns every partition of `topic` at its end; retries until it exists or `token` ends.
async fn assign_at_end(
    consumer: &Arc<StreamConsumer>,
    topic: &str,
    token: &CancellationToken,
) -> bool {
    loop {
        // A plain thread, not `spawn_blocking`: shutdown must not wait for the broker's answer.
        let (c, t) = (consumer.clone(), topic.to_owned());
        let (answer, found) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || answer.send(partitions(&c, &t)));
        let found = tokio::select! {
            _ = token.cancelled() => return false,
            found = found => found,
        };
        match found {
            Ok(Ok(assignment)) => match consumer.assign(&assignment) {
                Ok(()) => return true,
                Err(error) => tracing::warn!(%error, "cannot assign the anomaly topic"),
            },
            Ok(Err(error)) => tracing::warn!(%error, %topic, "anomaly topic not available yet"),
            Err(_) => tracing::warn!("metadata lookup ended without an answer"),
        }
        tokio::select! {
            _ = token.cancelled() => return false,
            _ = tokio::time::sleep(RETRY) => {}
        }
    }
}

/// Every partition of `topic` at [`Offset::End`] (blocking: asks the broker).
fn partitions(consumer: &StreamConsumer, topic: &str) -> Result<TopicPartitionList, String> {
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(5))
        .map_err(|e| e.to_string())?;
    let found = metadata.topics().iter().find(|t| t.name() == topic);
    let Some(found) = found.filter(|t| t.error().is_none() && !t.partitions().is_empty()) else {
        return Err("no such topic".into());
    };
    let mut list = TopicPartitionList::new();
    for partition in found.partitions() {
        list.add_partition_offset(topic, partition.id(), Offset::End)
            .map_err(|e| e.to_string())?;
    }
    Ok(list)
}

async fn follow(
    consumer: &StreamConsumer,
    feed: &Feed,
    metrics: &Metrics,
    token: &CancellationToken,
) {
    metrics.live_feed_up.set(1);
    let mut failing = false;
    loop {
        let message = tokio::select! {
            _ = token.cancelled() => return,
            message = consumer.recv() => message,
        };
        match message {
            Ok(message) => {
                if std::mem::take(&mut failing) {
                    tracing::info!("reading the anomaly topic again");
                    metrics.live_feed_up.set(1);
                }
                if let Some((source_name, event)) = event(message.payload(), metrics) {
                    feed.publish(&source_name, event);
                }
            }
            Err(error) => {
                if !std::mem::replace(&mut failing, true) {
                    tracing::warn!(%error, "cannot read the anomaly topic; live updates paused, retrying");
                    metrics.live_feed_up.set(0);
                }
                tokio::select! {
                    _ = token.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                }
            }
        }
    }
}

/// The event for one record, with its sensor's name, or `None` (counted) for one the map cannot
/// show.
pub fn event(payload: Option<&[u8]>, metrics: &Metrics) -> Option<(String, LiveEvent)> {
    let Ok(envelope) = Envelope::from_slice(payload.unwrap_or_default()) else {
        metrics.live_record("undecodable");
        return None;
    };
    let Some(feature) = Feature::from_envelope(&envelope) else {
        metrics.live_record("unclassified");
        return None;
    };
    match serde_json::to_string(&feature) {
        Ok(json) => {
            metrics.live_record("pushed");
            Some((feature.properties.source_name, json.into()))
        }
        Err(error) => {
            tracing::warn!(%error, "cannot serialize a live update");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RAW: &str = r#"{"v":1,"reading_id":"a:edge-1:7","agent_id":"edge-1",
        "received_at":"2025-05-24T18:03:12Z","protocol":"http","reading":{
        "timestamp":"2025-05-24T18:03:11.5Z","latitude":38.5,"longitude":-120.25,
        "temperature":45,"humidity":10,"wind_speed":3,"wind_direction":90,
        "vegetation_density":0.3,"air_quality_index":20,"source_name":"<b>s-1</b>","site":"ridge"}"#;

    fn classified() -> String {
        let classification = r#","classification":{"intensity":"high","confidence_score":0.9,
            "rules_fired":["hot"],"rules_version":"v","detected_at":"2025-05-24T18:03:11.5Z"}}"#;
        format!("{RAW}{classification}")
    }

    #[test]
    fn a_classified_record_becomes_a_feature() {
        let metrics = Metrics::new();
        let (source_name, event) = event(Some(classified().as_bytes()), &metrics).unwrap();
        assert_eq!(source_name, "<b>s-1</b>");
        let feature: serde_json::Value = serde_json::from_str(&event).unwrap();
        assert_eq!(
            feature["geometry"]["coordinates"],
            serde_json::json!([-120.25, 38.5])
        );
        let properties = &feature["properties"];
        assert_eq!(properties["source_name"], "<b>s-1</b>", "data stays data");
        assert_eq!(properties["intensity"], "high");
        assert_eq!(properties["rules_fired"], serde_json::json!(["hot"]));
        assert_eq!(properties["observed_at"], "2025-05-24T18:03:11.5Z");
        assert_eq!(properties["classified_at"], "2025-05-24T18:03:11.5Z");
        assert_eq!(
            properties["reading"]["site"], "ridge",
            "extra fields travel on"
        );
    }

    #[test]
    fn records_the_map_cannot_show_are_counted_not_pushed() {
        let metrics = Metrics::new();
        assert!(event(Some(format!("{RAW}}}").as_bytes()), &metrics).is_none());
        assert!(event(Some(b"<html>"), &metrics).is_none());
        assert!(event(None, &metrics).is_none());
        let text = metrics.render().unwrap();
        assert!(
            text.contains(r#"emberline_dashboard_live_records_total{outcome="unclassified"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"emberline_dashboard_live_records_total{outcome="undecodable"} 2"#),
            "{text}"
        );
    }
}
