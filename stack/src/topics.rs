//! Emberline's topics (design §5), created explicitly: the local broker does not auto-create.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

/// A topic and its partition count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    pub name: String,
    pub partitions: i32,
}

impl TopicSpec {
    pub fn new(name: impl Into<String>, partitions: i32) -> Self {
        Self {
            name: name.into(),
            partitions,
        }
    }
}

/// Every topic Emberline uses, with the partition counts the local stack creates. Readings are
/// keyed by `source_name`, so partitions spread sensors across consumers; dead letters are rare.
pub const STANDARD_TOPICS: [(&str, i32); 5] = [
    ("raw-data", 6),
    ("anomaly-data", 6),
    ("agent-status", 3),
    ("raw-data.dlq", 1),
    ("anomaly-data.dlq", 1),
];

/// [`STANDARD_TOPICS`], each name prefixed (tests use a prefix to stay out of each other's way).
pub fn standard(prefix: &str) -> Vec<TopicSpec> {
    STANDARD_TOPICS
        .iter()
        .map(|(name, partitions)| TopicSpec::new(format!("{prefix}{name}"), *partitions))
        .collect()
}

/// Creates the topics that do not exist yet; existing ones are left as they are.
pub async fn ensure(bootstrap: &str, topics: &[TopicSpec]) -> Result<(), KafkaError> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()?;
    let new_topics: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|t| NewTopic::new(&t.name, t.partitions, TopicReplication::Fixed(1)))
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    for result in admin.create_topics(&new_topics, &options).await? {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => {
                tracing::error!(topic = %name, error = %code, "cannot create topic");
                return Err(KafkaError::AdminOp(code));
            }
        }
    }
    Ok(())
}

/// The partition count of each topic the broker knows, by name.
pub fn describe(bootstrap: &str, timeout: Duration) -> Result<Vec<(String, usize)>, KafkaError> {
    use rdkafka::consumer::{BaseConsumer, Consumer as _};
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()?;
    let metadata = consumer.fetch_metadata(None, timeout)?;
    let mut topics: Vec<(String, usize)> = metadata
        .topics()
        .iter()
        .map(|t| (t.name().to_owned(), t.partitions().len()))
        .collect();
    topics.sort();
    Ok(topics)
}
