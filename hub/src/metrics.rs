//! Prometheus metrics, `emberline_hub_<what>_<unit>`, served at `/metrics`. One registry per
//! process; both roles use the same names, labelled by topic where that helps.

use std::sync::Mutex;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

type TopicLabel = Vec<(&'static str, String)>;

/// Every metric the hub keeps.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Records done (classified and acknowledged, or committed to PostgreSQL), by source topic.
    records: Family<TopicLabel, Counter>,
    /// Records given up on, by source topic and error code.
    dead_letters: Family<Vec<(&'static str, String)>, Counter>,
    /// Retries after a transient failure, by what failed (`kafka`, `database`).
    retries: Family<Vec<(&'static str, &'static str)>, Counter>,
    /// Records per batch.
    pub batch_records: Histogram,
    /// From a batch's first record in hand to its offsets stored.
    pub batch_seconds: Histogram,
    /// High watermark minus position, per assigned partition.
    lag: Family<Vec<(&'static str, String)>, Gauge>,
    /// Rules reloads, by outcome (`applied`, `refused`).
    reloads: Family<Vec<(&'static str, &'static str)>, Counter>,
    /// 1 for the rules version in use.
    rules_info: Family<Vec<(&'static str, String)>, Gauge>,
    /// 1 when the rules file on disk is the one in use, 0 when a newer file was refused.
    pub rules_file_valid: Gauge,
    /// Rows removed by retention.
    pub retention_deleted: Counter,
    /// The rules version labelled now, to clear it when another comes.
    current_rules: Mutex<Option<String>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// The detector's metrics: the common ones and the rules'.
    pub fn new() -> Self {
        let mut metrics = Self::unregistered();
        metrics.register();
        metrics.register_rules();
        metrics
    }

    /// The writer's: no rules metrics (a `rules_file_valid` it never sets would read 0, as if
    /// a rules file had been refused).
    pub fn without_rules() -> Self {
        let mut metrics = Self::unregistered();
        metrics.register();
        metrics
    }

    fn unregistered() -> Self {
        let seconds = [
            0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
        ];
        let sizes = [
            1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 5000.0,
        ];
        Self {
            registry: Registry::with_prefix("emberline_hub"),
            records: Family::default(),
            dead_letters: Family::default(),
            retries: Family::default(),
            batch_records: Histogram::new(sizes),
            batch_seconds: Histogram::new(seconds),
            lag: Family::default(),
            reloads: Family::default(),
            rules_info: Family::default(),
            rules_file_valid: Gauge::default(),
            retention_deleted: Counter::default(),
            current_rules: Mutex::new(None),
        }
    }

    fn register(&mut self) {
        let r = &mut self.registry;
        r.register(
            "records",
            "Records done, by source topic",
            self.records.clone(),
        );
        r.register(
            "dead_letters",
            "Records sent to a dead-letter topic or table, by source topic and error",
            self.dead_letters.clone(),
        );
        r.register(
            "retries",
            "Retries after a transient failure, by what failed",
            self.retries.clone(),
        );
        r.register(
            "batch_size_records",
            "Records per batch",
            self.batch_records.clone(),
        );
        r.register(
            "batch_duration_seconds",
            "Time from a batch in hand to its offsets stored",
            self.batch_seconds.clone(),
        );
        r.register(
            "consumer_lag_records",
            "Records behind the high watermark, per assigned partition",
            self.lag.clone(),
        );
        r.register(
            "retention_deleted_rows",
            "Rows removed by retention",
            self.retention_deleted.clone(),
        );
    }

    fn register_rules(&mut self) {
        let r = &mut self.registry;
        r.register(
            "rules_reloads",
            "Rules file reloads, by outcome (applied, refused)",
            self.reloads.clone(),
        );
        r.register(
            "rules_info",
            "1 for the rules version in use",
            self.rules_info.clone(),
        );
        r.register(
            "rules_file_valid",
            "1 when the rules file on disk is in use, 0 when it was refused",
            self.rules_file_valid.clone(),
        );
    }

    pub fn records_done(&self, topic: &str, count: u64) {
        let labels = vec![("topic", topic.to_owned())];
        self.records.get_or_create(&labels).inc_by(count);
    }

    pub fn dead_letter(&self, topic: &str, error_code: &str) {
        let labels = vec![
            ("topic", topic.to_owned()),
            ("error", error_code.to_owned()),
        ];
        self.dead_letters.get_or_create(&labels).inc();
    }

    pub fn retry(&self, what: &'static str) {
        self.retries.get_or_create(&vec![("what", what)]).inc();
    }

    pub fn reload(&self, outcome: &'static str) {
        self.reloads
            .get_or_create(&vec![("outcome", outcome)])
            .inc();
    }

    /// Labels `version` as the rules in use, clearing the previous one.
    pub fn rules_version(&self, version: &str) {
        let mut current = self.current_rules.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = current.take() {
            self.rules_info.remove(&vec![("version", old)]);
        }
        self.rules_info
            .get_or_create(&vec![("version", version.to_owned())])
            .set(1);
        *current = Some(version.to_owned());
    }

    /// Replaces the lag gauges with `lags` (topic, partition, records behind).
    pub fn set_lags(&self, lags: &[(String, i32, i64)]) {
        self.lag.clear();
        for (topic, partition, lag) in lags {
            let labels = vec![
                ("topic", topic.clone()),
                ("partition", partition.to_string()),
            ];
            self.lag.get_or_create(&labels).set(*lag);
        }
    }

    /// The text exposition.
    pub fn render(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_house_convention() {
        let metrics = Metrics::new();
        metrics.records_done("raw-data", 3);
        metrics.dead_letter("raw-data", "not_json");
        metrics.retry("database");
        metrics.reload("refused");
        metrics.rules_version("default-1");
        metrics.rules_version("default-2");
        metrics.set_lags(&[("raw-data".into(), 2, 7)]);
        let text = metrics.render().unwrap();
        for line in [
            "emberline_hub_records_total{topic=\"raw-data\"} 3",
            "emberline_hub_dead_letters_total{topic=\"raw-data\",error=\"not_json\"} 1",
            "emberline_hub_retries_total{what=\"database\"} 1",
            "emberline_hub_rules_reloads_total{outcome=\"refused\"} 1",
            "emberline_hub_rules_info{version=\"default-2\"} 1",
            "emberline_hub_consumer_lag_records{topic=\"raw-data\",partition=\"2\"} 7",
            "emberline_hub_batch_size_records_bucket",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
        assert!(!text.contains("default-1"), "{text}");
    }
}
