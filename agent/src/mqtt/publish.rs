//! What a PUBLISH means, decided without IO: which sensor, which reading, or why not.

use emberline_core::{Limits, Reading};
use time::OffsetDateTime;

/// The topic devices publish to: `sensors/{source_name}/readings`.
pub fn source_from_topic(topic: &str) -> Option<&str> {
    let rest = topic.strip_prefix("sensors/")?;
    let source = rest.strip_suffix("/readings")?;
    (!source.is_empty() && !source.contains(['+', '#'])).then_some(source)
}

/// A publish checked: a reading to store, or a reason to keep it in the rejected table.
#[derive(Debug)]
pub enum Checked {
    Reading(Box<Reading>),
    /// The topic is not `sensors/{source_name}/readings`.
    BadTopic(String),
    /// The payload is not a valid reading, or names another sensor than the topic.
    Rejected(String),
}

pub fn check(topic: &str, payload: &[u8], limits: &Limits, now: OffsetDateTime) -> Checked {
    let Some(source) = source_from_topic(topic) else {
        return Checked::BadTopic(format!(
            "topic {topic:?} is not sensors/{{source_name}}/readings"
        ));
    };
    match Reading::parse(payload, limits, now) {
        Ok(reading) if reading.source_name() == source => Checked::Reading(Box::new(reading)),
        Ok(reading) => Checked::Rejected(format!(
            "topic names sensor {source:?} but the payload's source_name is {:?}",
            reading.source_name()
        )),
        Err(error) => Checked::Rejected(error.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_name_the_sensor() {
        assert_eq!(
            source_from_topic("sensors/ridge-7/readings"),
            Some("ridge-7")
        );
        assert_eq!(source_from_topic("sensors/a/b/readings"), Some("a/b"));
        for bad in [
            "sensors//readings",
            "sensor/x/readings",
            "sensors/x/reading",
            "sensors/+/readings",
            "x",
        ] {
            assert_eq!(source_from_topic(bad), None, "{bad}");
        }
    }

    #[test]
    fn payload_and_topic_must_agree() {
        let now = time::macros::datetime!(2025-05-24 18:05 UTC);
        let payload = br#"{"timestamp":"2025-05-24T18:03:11Z","latitude":1,"longitude":2,"temperature":20,"humidity":50,
            "wind_speed":3,"wind_direction":90,"vegetation_density":0.3,"air_quality_index":20,"source_name":"s1"}"#;
        assert!(matches!(
            check("sensors/s1/readings", payload, &Limits::default(), now),
            Checked::Reading(_)
        ));
        let Checked::Rejected(reason) =
            check("sensors/s2/readings", payload, &Limits::default(), now)
        else {
            panic!("accepted a mismatch");
        };
        assert!(reason.contains("s2"));
        assert!(matches!(
            check("sensors/s1/readings", b"{", &Limits::default(), now),
            Checked::Rejected(_)
        ));
        assert!(matches!(
            check("elsewhere", payload, &Limits::default(), now),
            Checked::BadTopic(_)
        ));
    }
}
