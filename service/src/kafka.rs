//! Kafka checks the services' `/readyz` share, and the producers' record size limit.

use std::time::Duration;

use rdkafka::client::{Client, ClientContext};

/// Blocking (run it on a blocking thread): the brokers answer within `timeout` and every one of
/// `topics` exists with at least one partition.
pub fn topics_exist<C: ClientContext>(
    client: &Client<C>,
    topics: &[String],
    timeout: Duration,
) -> Result<(), String> {
    let metadata = client
        .fetch_metadata(None, timeout)
        .map_err(|error| format!("the Kafka brokers do not answer: {error}"))?;
    let exists = |topic: &String| {
        let found = metadata.topics().iter().find(|t| t.name() == topic);
        found.is_some_and(|t| t.error().is_none() && !t.partitions().is_empty())
    };
    match topics.iter().find(|topic| !exists(topic)) {
        Some(topic) => Err(format!("topic {topic} does not exist on the brokers")),
        None => Ok(()),
    }
}

/// librdkafka's default `message.max.bytes`: the largest record a producer sends.
pub const DEFAULT_MESSAGE_MAX_BYTES: usize = 1_000_000;

/// What librdkafka adds to a record's key, value and headers when it checks it against
/// `message.max.bytes` (the most a v2 record's framing takes; measured: with a limit of 4,096,
/// key and value of 4,061 bytes are refused, 4,060 taken).
pub const RECORD_OVERHEAD: usize = 36;

/// The largest record (payload, key and headers) a producer made with these client `options`
/// sends: `message.max.bytes` when given (the last one wins), otherwise librdkafka's default. A
/// larger record fails at `send` every time, however often it is retried.
pub fn max_record_bytes(options: &[(String, String)]) -> usize {
    options
        .iter()
        .rev()
        .find(|(key, _)| key == "message.max.bytes")
        .and_then(|(_, value)| value.trim().parse().ok())
        .unwrap_or(DEFAULT_MESSAGE_MAX_BYTES)
}
