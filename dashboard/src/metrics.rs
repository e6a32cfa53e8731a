//! Prometheus metrics, `emberline_dashboard_<what>_<unit>`, served at `/metrics`.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, String)>;

/// Every metric the dashboard keeps.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// HTTP requests answered, by route and status.
    requests: Family<Labels, Counter>,
    /// Time to answer, by route (a stream counts until its headers are sent).
    request_seconds: Family<Labels, Histogram>,
    /// Browsers holding `/api/stream` open.
    pub stream_clients: Gauge,
    /// Records read from the anomaly topic, by outcome (`pushed`, `undecodable`, `unclassified`).
    live_records: Family<Vec<(&'static str, &'static str)>, Counter>,
    /// Streams that fell behind and were told to reload their snapshot.
    pub stream_lagged: Counter,
    /// 1 while the anomaly topic is assigned and reads succeed, 0 otherwise.
    pub live_feed_up: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

fn seconds_histogram() -> Histogram {
    Histogram::new([
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
    ])
}

impl Metrics {
    pub fn new() -> Self {
        let mut metrics = Self {
            registry: Registry::with_prefix("emberline_dashboard"),
            requests: Family::default(),
            request_seconds: Family::new_with_constructor(seconds_histogram),
            stream_clients: Gauge::default(),
            live_records: Family::default(),
            stream_lagged: Counter::default(),
            live_feed_up: Gauge::default(),
        };
        let r = &mut metrics.registry;
        r.register(
            "http_requests",
            "HTTP requests answered, by route and status",
            metrics.requests.clone(),
        );
        r.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request, by route",
            metrics.request_seconds.clone(),
        );
        r.register(
            "stream_clients",
            "Browsers holding /api/stream open",
            metrics.stream_clients.clone(),
        );
        r.register(
            "live_records",
            "Records read from the anomaly topic, by outcome",
            metrics.live_records.clone(),
        );
        r.register(
            "stream_lagged",
            "Streams that fell behind and were told to reload",
            metrics.stream_lagged.clone(),
        );
        r.register(
            "live_feed_up",
            "1 while the anomaly topic is followed without errors",
            metrics.live_feed_up.clone(),
        );
        metrics
    }

    pub fn request(&self, route: &str, status: u16, seconds: f64) {
        let route = vec![("route", route.to_owned())];
        let mut labels = route.clone();
        labels.push(("status", status.to_string()));
        self.requests.get_or_create(&labels).inc();
        self.request_seconds.get_or_create(&route).observe(seconds);
    }

    pub fn live_record(&self, outcome: &'static str) {
        self.live_records
            .get_or_create(&vec![("outcome", outcome)])
            .inc();
    }

    /// The OpenMetrics text.
    pub fn render(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        encode(&mut text, &self.registry)?;
        Ok(text)
    }
}
