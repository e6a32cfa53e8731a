//! Prometheus metrics, `emberline_bridge_<what>_<unit>`, served at `/metrics`.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

type Labels = [(&'static str, &'static str); 1];

/// Every metric the bridge keeps.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Batches acknowledged by Kafka and answered 200.
    pub batches: Counter,
    /// Records of those batches.
    pub records: Counter,
    /// Batches answered 200 without producing them: byte-identical to one produced recently.
    pub repeated: Counter,
    /// Bytes of those records as produced (decompressed).
    pub produced_bytes: Counter,
    /// Request body bytes received on `/v1/batches`, as sent.
    pub received_bytes: Counter,
    pub heartbeats: Counter,
    rejections: Family<Labels, Counter>,
    /// From the first record sent to the last acknowledged, per batch or heartbeat.
    pub produce_seconds: Histogram,
    in_flight_bytes: Gauge,
    in_flight_limit_bytes: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let buckets = [
            0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
        ];
        let mut metrics = Self {
            registry: Registry::with_prefix("emberline_bridge"),
            batches: Counter::default(),
            records: Counter::default(),
            repeated: Counter::default(),
            produced_bytes: Counter::default(),
            received_bytes: Counter::default(),
            heartbeats: Counter::default(),
            rejections: Family::default(),
            produce_seconds: Histogram::new(buckets),
            in_flight_bytes: Gauge::default(),
            in_flight_limit_bytes: Gauge::default(),
        };
        metrics.register();
        metrics
    }

    fn register(&mut self) {
        let r = &mut self.registry;
        r.register(
            "batches",
            "Batches acknowledged by Kafka (answered 200)",
            self.batches.clone(),
        );
        r.register(
            "records",
            "Records of acknowledged batches",
            self.records.clone(),
        );
        r.register(
            "batches_repeated",
            "Batches sent again after they were produced, answered 200 without producing them",
            self.repeated.clone(),
        );
        r.register(
            "produced_bytes",
            "Bytes of acknowledged records",
            self.produced_bytes.clone(),
        );
        r.register(
            "received_bytes",
            "Batch request body bytes as sent",
            self.received_bytes.clone(),
        );
        r.register(
            "heartbeats",
            "Heartbeats relayed to Kafka",
            self.heartbeats.clone(),
        );
        r.register(
            "rejections",
            "Requests not answered 200, by reason",
            self.rejections.clone(),
        );
        r.register(
            "produce_duration_seconds",
            "Time for Kafka to acknowledge every record of a request",
            self.produce_seconds.clone(),
        );
        r.register(
            "in_flight_bytes",
            "Request bytes held now",
            self.in_flight_bytes.clone(),
        );
        r.register(
            "in_flight_limit_bytes",
            "Most request bytes that may be held at once",
            self.in_flight_limit_bytes.clone(),
        );
    }

    /// Counts one refused request.
    pub fn reject(&self, reason: &'static str) {
        self.rejections.get_or_create(&[("reason", reason)]).inc();
    }

    /// The text exposition, with the in-flight gauges read now.
    pub fn render(&self, in_flight: usize, limit: usize) -> Result<String, std::fmt::Error> {
        self.in_flight_bytes
            .set(i64::try_from(in_flight).unwrap_or(i64::MAX));
        self.in_flight_limit_bytes
            .set(i64::try_from(limit).unwrap_or(i64::MAX));
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
        metrics.reject("malformed");
        metrics.produce_seconds.observe(0.02);
        let text = metrics.render(10, 100).unwrap();
        for name in [
            "emberline_bridge_batches_total",
            "emberline_bridge_records_total",
            "emberline_bridge_rejections_total{reason=\"malformed\"} 1",
            "emberline_bridge_produce_duration_seconds_bucket",
            "emberline_bridge_in_flight_bytes 10",
            "emberline_bridge_in_flight_limit_bytes 100",
        ] {
            assert!(text.contains(name), "{name} missing from\n{text}");
        }
    }
}
