//! The writer's pure core: Kafka records → rows to write, and which rows of a batch win the
//! latest-state tables.
//!
//! # Invariants
//! - Every record of a batch becomes exactly one [`Item`]: something to store or a dead letter.
//!   Nothing is dropped silently.
//! - Latest state moves only forward in `(timestamp, id)` order: [`latest_per_sensor`] and
//!   [`latest_per_agent`] keep the newest row per key of a batch (the SQL compares it with what
//!   is stored), so the outcome does not depend on arrival order.

use std::collections::HashMap;

use emberline_core::Envelope;
use emberline_core::batch::Heartbeat;
use rdkafka::message::{Message as _, OwnedMessage};

use crate::kafka::DeadLetter;

/// Which topic a record came from, by role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    pub raw: String,
    pub anomaly: String,
    pub status: String,
}

/// One record, decoded.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// A reading from raw-data.
    Reading(Envelope),
    /// A reading with its classification, from anomaly-data.
    Classified(Envelope),
    Heartbeat(Heartbeat),
    Dead(DeadLetter),
}

/// Decodes one record of `topics`.
pub fn decode(topics: &Topics, message: &OwnedMessage) -> Item {
    let dead =
        |code: &'static str, error: String| Item::Dead(DeadLetter::new(message, code, error));
    let Some(payload) = message.payload().filter(|p| !p.is_empty()) else {
        return dead("empty_record", "record has no payload".into());
    };
    let topic = message.topic();
    if topic == topics.status {
        return match serde_json::from_slice::<Heartbeat>(payload) {
            Ok(heartbeat) => Item::Heartbeat(heartbeat),
            Err(error) => dead("invalid_heartbeat", format!("not a heartbeat: {error}")),
        };
    }
    let envelope = match Envelope::from_slice(payload) {
        Ok(envelope) => envelope,
        Err(error) => return dead(error.code(), error.to_string()),
    };
    match (topic == topics.anomaly, envelope.classification.is_some()) {
        (true, true) => Item::Classified(envelope),
        (true, false) => dead(
            "missing_classification",
            "a record on the anomaly topic has no classification".into(),
        ),
        (false, _) => Item::Reading(envelope),
    }
}

/// What one transaction writes.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Rows<'a> {
    /// Every reading, from either topic.
    pub readings: Vec<&'a Envelope>,
    /// Readings with a classification.
    pub classified: Vec<&'a Envelope>,
    pub heartbeats: Vec<&'a Heartbeat>,
    pub dead: Vec<&'a DeadLetter>,
}

impl<'a> Rows<'a> {
    pub fn new(items: impl IntoIterator<Item = &'a Item>) -> Self {
        let mut rows = Self::default();
        for item in items {
            match item {
                Item::Reading(envelope) => rows.readings.push(envelope),
                Item::Classified(envelope) => {
                    rows.readings.push(envelope);
                    rows.classified.push(envelope);
                }
                Item::Heartbeat(heartbeat) => rows.heartbeats.push(heartbeat),
                Item::Dead(letter) => rows.dead.push(letter),
            }
        }
        rows
    }
}

/// The newest of `envelopes` per sensor by `(timestamp, reading_id)`, ordered by sensor name
/// (a fixed lock order, so concurrent writers do not deadlock). The same order as the database
/// keeps across batches: the timestamp to the microsecond (what `timestamptz` stores), then the
/// id byte by byte (`COLLATE "C"`).
pub fn latest_per_sensor<'a>(envelopes: &[&'a Envelope]) -> Vec<&'a Envelope> {
    let mut latest: HashMap<&str, &Envelope> = HashMap::new();
    for envelope in envelopes {
        let order = |e: &'a Envelope| {
            let nanos = e.reading.timestamp().unix_timestamp_nanos();
            (nanos.div_euclid(1_000), e.reading_id.as_str())
        };
        latest
            .entry(envelope.key())
            .and_modify(|held| {
                if order(envelope) > order(held) {
                    *held = envelope;
                }
            })
            .or_insert(envelope);
    }
    let mut latest: Vec<&Envelope> = latest.into_values().collect();
    latest.sort_by(|a, b| a.key().cmp(b.key()));
    latest
}

/// The newest of `heartbeats` per agent by `sent_at`, ordered by agent id.
pub fn latest_per_agent<'a>(heartbeats: &[&'a Heartbeat]) -> Vec<&'a Heartbeat> {
    let mut latest: HashMap<&str, &Heartbeat> = HashMap::new();
    for heartbeat in heartbeats {
        latest
            .entry(heartbeat.key())
            .and_modify(|held| {
                if heartbeat.sent_at > held.sent_at {
                    *held = heartbeat;
                }
            })
            .or_insert(heartbeat);
    }
    let mut latest: Vec<&Heartbeat> = latest.into_values().collect();
    latest.sort_by(|a, b| a.key().cmp(b.key()));
    latest
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::Timestamp;

    fn topics() -> Topics {
        Topics {
            raw: "raw".into(),
            anomaly: "anomaly".into(),
            status: "status".into(),
        }
    }

    fn message(topic: &str, offset: i64, payload: &str) -> OwnedMessage {
        OwnedMessage::new(
            Some(payload.as_bytes().to_vec()),
            None,
            topic.into(),
            Timestamp::NotAvailable,
            0,
            offset,
            None,
        )
    }

    fn envelope(source: &str, seq: u64, second: u8, classified: bool) -> String {
        let classification = if classified {
            r#","classification":{"intensity":"high","confidence_score":0.9,"rules_fired":["hot"],"rules_version":"v","detected_at":"2025-05-24T18:03:11Z"}"#
        } else {
            ""
        };
        format!(
            r#"{{"v":1,"reading_id":"a:edge-1:{seq}","agent_id":"edge-1","received_at":"2025-05-24T18:04:00Z",
            "protocol":"mqtt","reading":{{"timestamp":"2025-05-24T18:03:{second:02}Z","latitude":1,
            "longitude":2,"temperature":20,"humidity":50,"wind_speed":3,"wind_direction":90,
            "vegetation_density":0.3,"air_quality_index":20,"source_name":"{source}"}}{classification}}}"#
        )
    }

    #[test]
    fn every_record_becomes_one_item() {
        let t = topics();
        let kinds: Vec<&str> = [
            message("raw", 0, &envelope("s", 1, 1, false)),
            message("anomaly", 1, &envelope("s", 1, 1, true)),
            message("anomaly", 2, &envelope("s", 2, 1, false)),
            message("raw", 3, "{\"v\":9}"),
            message("status", 4, "{}"),
            message("raw", 5, ""),
        ]
        .iter()
        .map(|m| match decode(&t, m) {
            Item::Reading(_) => "reading",
            Item::Classified(_) => "classified",
            Item::Heartbeat(_) => "heartbeat",
            Item::Dead(letter) => letter.error_code,
        })
        .collect();
        assert_eq!(
            kinds,
            [
                "reading",
                "classified",
                "missing_classification",
                "unsupported_version",
                "invalid_heartbeat",
                "empty_record"
            ]
        );
    }

    proptest::proptest! {
        /// Against a model: whatever the order of a batch, each sensor's winner is its
        /// greatest (timestamp, reading_id).
        #[test]
        fn the_winner_per_sensor_does_not_depend_on_order(
            readings in proptest::collection::vec((0u8..4, 0u64..50, 0u8..60), 1..40),
            seed in proptest::prelude::any::<u64>(),
        ) {
            let t = topics();
            let items: Vec<Item> = readings
                .iter()
                .map(|(s, seq, sec)| {
                    decode(&t, &message("raw", 0, &envelope(&format!("s{s}"), *seq, *sec, false)))
                })
                .collect();
            let rows = Rows::new(&items);
            let mut shuffled = rows.readings.clone();
            let len = shuffled.len();
            for i in 0..len {
                let j = (seed.wrapping_mul(i as u64 + 7) % len as u64) as usize;
                shuffled.swap(i, j);
            }
            let winners = |list: &[&Envelope]| -> Vec<String> {
                latest_per_sensor(list).iter().map(|e| e.reading_id.to_string()).collect()
            };
            let mut model: HashMap<String, (time::OffsetDateTime, String)> = HashMap::new();
            for e in &rows.readings {
                let candidate = (e.reading.timestamp(), e.reading_id.to_string());
                let held = model.entry(e.key().to_owned()).or_insert_with(|| candidate.clone());
                if candidate > *held {
                    *held = candidate;
                }
            }
            let mut expected: Vec<(String, String)> =
                model.into_iter().map(|(sensor, (_, id))| (sensor, id)).collect();
            expected.sort();
            let expected: Vec<String> = expected.into_iter().map(|(_, id)| id).collect();
            proptest::prop_assert_eq!(winners(&rows.readings), expected.clone());
            proptest::prop_assert_eq!(winners(&shuffled), expected);
        }
    }

    #[test]
    fn the_newest_reading_per_sensor_wins_whatever_the_order() {
        let t = topics();
        let items: Vec<Item> = [("b", 1, 5), ("a", 2, 9), ("a", 3, 7), ("b", 4, 6)]
            .iter()
            .map(|(s, seq, sec)| decode(&t, &message("raw", 0, &envelope(s, *seq, *sec, false))))
            .collect();
        let rows = Rows::new(&items);
        let mut reversed = rows.readings.clone();
        reversed.reverse();
        for order in [rows.readings.clone(), reversed] {
            let ids: Vec<&str> = latest_per_sensor(&order)
                .iter()
                .map(|e| e.reading_id.as_str())
                .collect();
            assert_eq!(ids, ["a:edge-1:2", "a:edge-1:4"]);
        }
    }

    /// Within one microsecond (all PostgreSQL keeps) the id decides, as it does in the
    /// database across batches; the nanoseconds used to decide here, so a batch and the database
    /// could pick different readings as the latest.
    #[test]
    fn readings_within_a_microsecond_are_ordered_by_id_as_in_the_database() {
        let t = topics();
        let at = |seq: u64, fraction: &str| {
            let text = envelope("s", seq, 11, false)
                .replace("18:03:11Z", &format!("18:03:11.{fraction}Z"));
            decode(&t, &message("raw", 0, &text))
        };
        // seq 10's id is smaller byte by byte ("a:edge-1:10" < "…:9"); whichever is later by
        // 300 ns, seq 9 wins.
        for (nine, ten) in [("000000700", "000000400"), ("000000400", "000000700")] {
            let items = [at(9, nine), at(10, ten)];
            let rows = Rows::new(&items);
            let ids: Vec<&str> = latest_per_sensor(&rows.readings)
                .iter()
                .map(|e| e.reading_id.as_str())
                .collect();
            assert_eq!(
                ids,
                ["a:edge-1:9"],
                "the nanoseconds do not decide ({nine}, {ten})"
            );
        }
    }
}
