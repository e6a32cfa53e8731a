//! The agent's Prometheus metrics (`/metrics`), named `emberline_agent_<what>_<unit>`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::buffer::Gauges;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReadingLabels {
    /// `http` or `mqtt`.
    pub protocol: &'static str,
    /// `accepted`, `invalid`, `full`, `unauthorized`, `error`.
    pub outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BatchLabels {
    /// `delivered`, `retry`, `quarantined`.
    pub outcome: &'static str,
}

/// Every metric handle; clones share the same values.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    pub readings: Family<ReadingLabels, Counter>,
    pub forwarded: Counter,
    pub batches: Family<BatchLabels, Counter>,
    /// 1 while the last attempt to reach the bridge succeeded.
    pub bridge_up: Gauge,
    pub mqtt_connections: Gauge,
}

impl Metrics {
    pub fn reading(&self, protocol: &'static str, outcome: &'static str, n: u64) {
        self.readings
            .get_or_create(&ReadingLabels { protocol, outcome })
            .inc_by(n);
    }

    pub fn batch(&self, outcome: &'static str) {
        self.batches.get_or_create(&BatchLabels { outcome }).inc();
    }

    /// A registry with these metrics and the buffer's gauges.
    pub fn registry(&self, buffer: &Gauges) -> Registry {
        let mut registry = Registry::with_prefix("emberline_agent");
        registry.register(
            "readings",
            "Readings received, by protocol and outcome",
            self.readings.clone(),
        );
        registry.register(
            "forwarded_readings",
            "Readings the bridge acknowledged",
            self.forwarded.clone(),
        );
        registry.register(
            "forward_batches",
            "Batches sent to the bridge, by outcome",
            self.batches.clone(),
        );
        registry.register(
            "bridge_up",
            "1 when the bridge answered the last attempt",
            self.bridge_up.clone(),
        );
        registry.register(
            "mqtt_connections",
            "Open MQTT ingest connections",
            self.mqtt_connections.clone(),
        );
        registry.register(
            "buffer_readings",
            "Readings waiting in the buffer",
            buffer.depth.clone(),
        );
        registry.register(
            "buffer_bytes",
            "Bytes of stored readings waiting in the buffer (what EMBERLINE_BUFFER_MAX_BYTES caps)",
            buffer.bytes.clone(),
        );
        registry.register(
            "buffer_commits",
            "Buffer transactions committed for ingest",
            buffer.commits.clone(),
        );
        registry.register(
            "buffer_commit_seconds",
            "Time to write and commit one group of ingested readings, fsync included",
            buffer.commit_seconds.clone(),
        );
        registry.register(
            "buffer_quarantined_readings",
            "Acknowledged readings set aside in the buffer's quarantine table, not forwarded (docs/operations.md)",
            buffer.quarantined.clone(),
        );
        registry.register(
            "rejected_bytes",
            "Bytes of invalid payloads kept in the rejected table (what EMBERLINE_REJECTED_MAX_BYTES caps)",
            buffer.rejected_bytes.clone(),
        );
        registry.register(
            "rejected_evicted",
            "Rejected payloads dropped, oldest first, to keep the rejected table under its cap",
            buffer.rejected_evicted.clone(),
        );
        registry
    }
}
