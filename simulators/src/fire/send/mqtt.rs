//! The MQTT sender: one rumqttc connection per sensor (client id and username its name, password
//! its token when tokens are configured), brokers taken in turn (sensor `n` to broker
//! `n % brokers`). Each connection's event loop runs in its own task and counts what is written
//! (QoS 0) or acknowledged (QoS 1), timing each publish from the socket write to its PUBACK.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Outgoing, Packet, QoS};
use secrecy::ExposeSecret as _;
use serde_json::Value;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::Tally;
use crate::fire::{FireConfig, FireError};

/// Publishes a connection may hold unacknowledged, and queue before the event loop takes them.
const INFLIGHT: u16 = 20;

#[derive(Debug)]
pub struct MqttSender {
    clients: Vec<(AsyncClient, String)>,
    qos: QoS,
    loops: JoinSet<()>,
    /// Ends the event loops once the run is over.
    stop: CancellationToken,
    tally: Arc<Tally>,
}

impl MqttSender {
    pub fn start(
        config: &FireConfig,
        names: &[String],
        tally: Arc<Tally>,
    ) -> Result<Self, FireError> {
        if config.mqtt_brokers.is_empty() {
            return Err(FireError::NoAgent);
        }
        let stop = CancellationToken::new();
        let mut loops = JoinSet::new();
        let mut clients = Vec::with_capacity(names.len());
        for (n, name) in names.iter().enumerate() {
            let (host, port) = &config.mqtt_brokers[n % config.mqtt_brokers.len()];
            let mut options = MqttOptions::new(name, host, *port);
            options
                .set_keep_alive(Duration::from_secs(30))
                .set_clean_session(true)
                .set_inflight(INFLIGHT);
            if let Some(token) = config.tokens.as_ref().and_then(|t| t.get(name)) {
                options.set_credentials(name, token.expose_secret());
            }
            let (client, eventloop) = AsyncClient::new(options, usize::from(INFLIGHT));
            loops.spawn(drive(
                eventloop,
                config.qos,
                Arc::clone(&tally),
                stop.clone(),
            ));
            clients.push((client, format!("sensors/{name}/readings")));
        }
        Ok(Self {
            clients,
            qos: config.qos,
            loops,
            stop,
            tally,
        })
    }

    /// Queues each reading on its sensor's connection; a full queue counts as failed.
    pub fn send(&mut self, readings: Vec<(usize, Value)>) {
        for (n, reading) in readings {
            self.tally.sent.fetch_add(1, Relaxed);
            let queued = match (self.clients.get(n), serde_json::to_vec(&reading)) {
                (Some((client, topic)), Ok(payload)) => client
                    .try_publish(topic.as_str(), self.qos, false, payload)
                    .is_ok(),
                _ => false,
            };
            if !queued {
                self.tally.failed.fetch_add(1, Relaxed);
            }
        }
    }

    pub async fn finish(mut self, patience: Duration) {
        let until = Instant::now() + patience;
        while self.tally.outstanding() > 0 && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        for (client, _) in &self.clients {
            let _ = client.try_disconnect();
        }
        let _ = tokio::time::timeout(Duration::from_millis(500), async {
            while self.loops.join_next().await.is_some() {}
        })
        .await;
        self.stop.cancel();
        while self.loops.join_next().await.is_some() {}
        self.tally.settle();
    }
}

/// Polls one connection until DISCONNECT is written or `stop`; reconnects after errors.
async fn drive(mut eventloop: EventLoop, qos: QoS, tally: Arc<Tally>, stop: CancellationToken) {
    let mut written: HashMap<u16, Instant> = HashMap::new();
    loop {
        let event = tokio::select! {
            () = stop.cancelled() => return,
            event = eventloop.poll() => event,
        };
        match event {
            Ok(Event::Outgoing(Outgoing::Publish(_))) if qos == QoS::AtMostOnce => {
                tally.acknowledged.fetch_add(1, Relaxed);
            }
            Ok(Event::Outgoing(Outgoing::Publish(pkid))) => {
                written.insert(pkid, Instant::now());
            }
            Ok(Event::Incoming(Packet::PubAck(ack))) => {
                if let Some(at) = written.remove(&ack.pkid) {
                    tally.latency.record(at.elapsed());
                }
                tally.acknowledged.fetch_add(1, Relaxed);
            }
            Ok(Event::Outgoing(Outgoing::Disconnect)) => return,
            Ok(_) => {}
            Err(error) => {
                // What was in flight is lost with the session (clean session): settled as failed.
                written.clear();
                tracing::warn!(%error, "MQTT connection failed; retrying in 1 s");
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    }
}
