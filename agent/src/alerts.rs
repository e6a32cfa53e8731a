//! The local alert bus (design §3): an embedded rumqttd broker on the node for local subscribers
//! (sirens, cameras, a field laptop). When the agent's own reading of the default rules says
//! `high`, it publishes `emberline/alerts/{source_name}` there as soon as the reading is
//! committed — whether or not the bridge can be reached. The hub's detector stays the authority
//! for what is stored and mapped.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use emberline_core::{Intensity, Profile, Reading, ReadingId};

use crate::buffer::Accepted;
use rumqttd::{Broker, Config, ConnectionSettings, RouterConfig, ServerSettings};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum AlertsError {
    #[error("the built-in rules profile does not load: {0}")]
    Rules(#[from] emberline_core::RulesError),
    #[error("cannot attach to the local alert bus: {0}")]
    Link(String),
    #[error("cannot start the local alert bus thread: {0}")]
    Thread(#[from] std::io::Error),
}

/// Publishes alerts to the local bus; cheap to clone.
#[derive(Clone)]
pub struct Alerts {
    profile: Arc<Profile>,
    /// rumqttd's local link; publishing needs `&mut`.
    link: Arc<Mutex<rumqttd::local::LinkTx>>,
}

impl std::fmt::Debug for Alerts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Alerts")
            .field("rules", &self.profile.version)
            .finish()
    }
}

impl Alerts {
    /// Starts the embedded broker on `listen` (its own threads) and attaches to it.
    pub fn start(listen: SocketAddr) -> Result<Self, AlertsError> {
        let profile = Arc::new(Profile::builtin("default")?);
        let mut broker = Broker::new(config(listen));
        let (link, mut link_rx) = broker
            .link("emberline-agent")
            .map_err(|e| AlertsError::Link(e.to_string()))?;
        std::thread::Builder::new()
            .name("emberline-alert-bus".into())
            .spawn(move || {
                if let Err(error) = broker.start() {
                    tracing::error!(%error, "local alert bus stopped");
                }
            })?;
        // The router talks back on the link; drain it so it never blocks.
        std::thread::Builder::new()
            .name("emberline-alert-link".into())
            .spawn(move || while link_rx.recv().is_ok() {})?;
        Ok(Self {
            profile,
            link: Arc::new(Mutex::new(link)),
        })
    }

    /// The alert for `reading` if the default rules call it high; publish it with
    /// [`Alerts::publish`] once the reading is committed.
    pub fn prepare(&self, reading: &Reading) -> Option<PendingAlert> {
        let assessment = self.profile.classify(reading.measurements());
        if assessment.intensity != Intensity::High {
            return None;
        }
        let body = json!({
            "source_name": reading.source_name(),
            "timestamp": reading.timestamp().format(&time::format_description::well_known::Rfc3339).ok(),
            "latitude": reading.measurements().latitude,
            "longitude": reading.measurements().longitude,
            "intensity": assessment.intensity,
            "confidence_score": assessment.confidence,
            "rules_fired": assessment.rules_fired,
            "rules_version": self.profile.version,
        });
        Some(PendingAlert {
            topic: format!("emberline/alerts/{}", reading.source_name()),
            body,
        })
    }

    pub fn publish(&self, mut alert: PendingAlert, reading_id: &ReadingId) {
        alert.body["reading_id"] = json!(reading_id);
        let Ok(mut link) = self.link.lock() else {
            return;
        };
        if let Err(error) = link.try_publish(alert.topic, alert.body.to_string()) {
            tracing::warn!(%error, "local alert not published");
        }
    }
}

/// An alert waiting for its reading's commit.
#[derive(Debug)]
pub struct PendingAlert {
    topic: String,
    body: serde_json::Value,
}

/// Prepares alerts for `readings` (those the rules call high), by index.
pub fn prepare_all<'a>(
    alerts: Option<&Alerts>,
    readings: impl Iterator<Item = &'a Reading>,
) -> Vec<(usize, PendingAlert)> {
    let Some(alerts) = alerts else {
        return Vec::new();
    };
    readings
        .enumerate()
        .filter_map(|(i, r)| alerts.prepare(r).map(|a| (i, a)))
        .collect()
}

/// Publishes prepared alerts once their readings are committed (`accepted`, in the same order).
pub fn publish_all(
    alerts: Option<&Alerts>,
    pending: Vec<(usize, PendingAlert)>,
    accepted: &[Accepted],
) {
    let Some(alerts) = alerts else {
        return;
    };
    for (index, alert) in pending {
        if let Some(accepted) = accepted.get(index) {
            alerts.publish(alert, &accepted.reading_id);
        }
    }
}

fn config(listen: SocketAddr) -> Config {
    let server = ServerSettings {
        name: "alerts".into(),
        listen,
        tls: None,
        next_connection_delay_ms: 1,
        connections: ConnectionSettings {
            connection_timeout_ms: 60_000,
            max_payload_size: 64 * 1024,
            max_inflight_count: 100,
            auth: None,
            external_auth: None,
            dynamic_filters: true,
        },
    };
    Config {
        id: 0,
        router: RouterConfig {
            max_connections: 1024,
            max_outgoing_packet_count: 200,
            max_segment_size: 1024 * 1024,
            max_segment_count: 10,
            custom_segment: None,
            initialized_filters: None,
            shared_subscriptions_strategy: Default::default(),
        },
        v4: Some(HashMap::from([("alerts".to_owned(), server)])),
        v5: None,
        ws: None,
        cluster: None,
        console: None,
        bridge: None,
        prometheus: None,
        metrics: None,
    }
}
