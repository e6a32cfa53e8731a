//! Kafka checks the services' `/readyz` share.

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
