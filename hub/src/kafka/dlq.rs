//! Dead letters: records that can never be processed (design §5). They go to a `.dlq` topic with
//! headers naming the error and the record's origin, so the partition moves on and an operator
//! can see, fix and replay them.

use rdkafka::message::{Message as _, OwnedMessage};

use super::producer::{HEADER_OVERHEAD, OutRecord};

/// Header names on every dead-letter record.
pub mod headers {
    pub const ERROR_CODE: &str = "emberline.error.code";
    pub const ERROR: &str = "emberline.error.message";
    pub const SOURCE_TOPIC: &str = "emberline.source.topic";
    pub const SOURCE_PARTITION: &str = "emberline.source.partition";
    pub const SOURCE_OFFSET: &str = "emberline.source.offset";
    /// Which role gave up on it: `detector` or `writer`.
    pub const FAILED_BY: &str = "emberline.failed.by";
    /// Set when the record was too large to go to the dead-letter topic whole: its payload's
    /// length before it was cut to fit.
    pub const TRUNCATED_FROM: &str = "emberline.payload.truncated_from";
}

/// A record given up on, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    pub source_topic: String,
    pub source_partition: i32,
    pub source_offset: i64,
    pub key: Option<Vec<u8>>,
    pub payload: Option<Vec<u8>>,
    /// A stable identifier (`not_json`, `unsupported_version`, …) for headers, rows and metrics.
    pub error_code: &'static str,
    pub error: String,
}

impl DeadLetter {
    pub fn new(message: &OwnedMessage, error_code: &'static str, error: String) -> Self {
        Self {
            source_topic: message.topic().to_owned(),
            source_partition: message.partition(),
            source_offset: message.offset(),
            key: message.key().map(<[u8]>::to_vec),
            payload: message.payload().map(<[u8]>::to_vec),
            error_code,
            error,
        }
    }

    /// The record for `topic`: the original key and payload, unchanged, with the headers. A
    /// payload that would take the record past `max_bytes` (the producer's `message.max.bytes`)
    /// is cut to fit and says so ([`headers::TRUNCATED_FROM`]): Kafka would refuse it whole
    /// every time, and the partition must move on.
    pub fn to_record(&self, topic: &str, failed_by: &str, max_bytes: usize) -> OutRecord {
        let headers = vec![
            (headers::ERROR_CODE, self.error_code.as_bytes().to_vec()),
            (headers::ERROR, self.error.as_bytes().to_vec()),
            (headers::SOURCE_TOPIC, self.source_topic.as_bytes().to_vec()),
            (
                headers::SOURCE_PARTITION,
                self.source_partition.to_string().into_bytes(),
            ),
            (
                headers::SOURCE_OFFSET,
                self.source_offset.to_string().into_bytes(),
            ),
            (headers::FAILED_BY, failed_by.as_bytes().to_vec()),
        ];
        let mut record = OutRecord {
            topic: topic.to_owned(),
            key: self.key.clone(),
            payload: self.payload.clone().unwrap_or_default(),
            headers,
        };
        let over = record.size().saturating_sub(max_bytes);
        if over > 0 {
            let length = record.payload.len();
            let truncated = (length.to_string().into_bytes(), headers::TRUNCATED_FROM);
            let room = over + truncated.0.len() + truncated.1.len() + HEADER_OVERHEAD;
            record.payload.truncate(length.saturating_sub(room));
            record.headers.push((truncated.1, truncated.0));
            // A long error message (a database's, say) may still not leave room: cut it too.
            let still_over = record.size().saturating_sub(max_bytes);
            if let Some((_, message)) = record
                .headers
                .iter_mut()
                .find(|(n, _)| *n == headers::ERROR)
            {
                message.truncate(message.len().saturating_sub(still_over));
            }
        }
        record
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::Timestamp;

    #[test]
    fn a_dead_letter_keeps_the_record_and_names_its_origin() {
        let message = OwnedMessage::new(
            Some(b"not json".to_vec()),
            Some(b"sensor-1".to_vec()),
            "raw-data".into(),
            Timestamp::NotAvailable,
            4,
            1234,
            None,
        );
        let letter = DeadLetter::new(&message, "not_json", "expected value".into());
        let record = letter.to_record("raw-data.dlq", "detector", 1_000_000);
        assert_eq!(record.topic, "raw-data.dlq");
        assert_eq!(record.payload, b"not json");
        assert_eq!(record.key.as_deref(), Some(&b"sensor-1"[..]));
        let header = |name: &str| {
            let (_, value) = record.headers.iter().find(|(n, _)| *n == name).unwrap();
            String::from_utf8(value.clone()).unwrap()
        };
        assert_eq!(header(headers::ERROR_CODE), "not_json");
        assert_eq!(header(headers::SOURCE_TOPIC), "raw-data");
        assert_eq!(header(headers::SOURCE_PARTITION), "4");
        assert_eq!(header(headers::SOURCE_OFFSET), "1234");
        assert_eq!(header(headers::FAILED_BY), "detector");
        assert!(
            record
                .headers
                .iter()
                .all(|(n, _)| *n != headers::TRUNCATED_FROM)
        );

        let large = OwnedMessage::new(
            Some(vec![b'x'; 2_000]),
            Some(b"sensor-1".to_vec()),
            "raw-data".into(),
            Timestamp::NotAvailable,
            4,
            1235,
            None,
        );
        let letter = DeadLetter::new(&large, "too_large", "too large".into());
        let cut = letter.to_record("raw-data.dlq", "detector", 1_000);
        assert!(cut.size() <= 1_000, "{}", cut.size());
        assert!(cut.payload.len() > 500 && cut.payload.len() < 2_000);
        let (_, from) = cut
            .headers
            .iter()
            .find(|(n, _)| *n == headers::TRUNCATED_FROM)
            .unwrap();
        assert_eq!(from, b"2000");
    }
}
