//! `/readyz`: the brokers answer and the topics exist, checked at most every `READY_TTL`.

use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use crate::kafka::Kafka;

/// How long a readiness answer is reused, so probes do not hammer the broker.
const READY_TTL: Duration = Duration::from_secs(2);

/// The broker check behind `/readyz`, its answer kept for `READY_TTL`.
#[derive(Debug)]
pub struct Readiness {
    kafka: Kafka,
    topics: Vec<String>,
    /// The last answer and when it was found; the lock also keeps probes from checking at once.
    last: Mutex<Option<(Instant, Result<(), String>)>>,
}

impl Readiness {
    pub fn new(kafka: Kafka, topics: Vec<String>) -> Self {
        Self {
            kafka,
            topics,
            last: Mutex::new(None),
        }
    }

    pub async fn check(&self) -> Result<(), String> {
        let mut last = self.last.lock().await;
        if let Some((at, answer)) = last.as_ref().filter(|(at, _)| at.elapsed() < READY_TTL) {
            tracing::trace!(age = ?at.elapsed(), "cached readiness");
            return answer.clone();
        }
        let answer = self.kafka.check(self.topics.clone()).await;
        *last = Some((Instant::now(), answer.clone()));
        answer
    }
}
