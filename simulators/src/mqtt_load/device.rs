//! One simulated device: a run of connection sessions, each a rumqttc event loop driven beside
//! a publisher in the same task (`join!`, so the event loop's `poll` is never cancelled while
//! the connection is in use).
//!
//! Accounting per session is settled once both halves have ended: every publish handed to the
//! client is either acknowledged (QoS 1) / written (QoS 0), or counted as failed. The publisher
//! half is in [`super::publisher`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, NetworkOptions, Outgoing, Packet, QoS};
use secrecy::ExposeSecret as _;
use tokio::sync::{Notify, watch};
use tokio::time::{Instant, sleep, sleep_until};
use tokio_util::sync::CancellationToken;

use super::publisher::{Pacer, publish};
use super::{Phase, Shared};
use crate::payload::Sensor;

const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Runs device `index` from `connect_at` until its share of the work is done.
pub(super) async fn run(index: u32, connect_at: Instant, shared: Arc<Shared>) {
    tokio::select! {
        _ = sleep_until(connect_at) => {}
        _ = shared.stop.cancelled() => {
            shared.stats.first_attempts.fetch_add(1, Relaxed);
            return;
        }
    }
    let mut device = Device::new(index, &shared);
    let mut backoff = FIRST_BACKOFF;
    while !device.session(&shared).await && device.may_retry(&shared) {
        shared.stats.reconnects.fetch_add(1, Relaxed);
        // Spread the devices' retries so a restarted agent is not hit by all of them at once.
        let pause = backoff + backoff.mul_f64(f64::from(index % 16) / 16.0);
        tokio::select! {
            _ = sleep(pause) => {}
            _ = shared.stop.cancelled() => return,
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

#[derive(Debug)]
struct Device {
    sensor: Sensor,
    options: MqttOptions,
    /// When each packet id in flight was written, indexed by packet id (1..=inflight).
    stamps: Vec<Option<Instant>>,
    marks: Marks,
    pacer: Option<Pacer>,
    phase: watch::Receiver<Phase>,
}

/// What this device has already reported to the shared counters.
#[derive(Debug, Default)]
struct Marks {
    first_attempt_reported: bool,
    ever_connected: bool,
}

/// One connection's state, shared by its event loop and its publisher.
#[derive(Debug, Default)]
pub(super) struct Link {
    pub(super) connected: AtomicBool,
    pub(super) sent: AtomicU64,
    pub(super) acked: AtomicU64,
    /// Woken on every write (QoS 0) or PUBACK, for the drain at the end.
    pub(super) progress: Notify,
    /// The event loop has ended: the connection is gone.
    pub(super) closed: CancellationToken,
    /// The publisher is done with the connection: stop polling it.
    pub(super) give_up: CancellationToken,
}

impl Device {
    fn new(index: u32, shared: &Shared) -> Self {
        let config = &shared.config;
        let sensor = Sensor::new(&config.id_prefix, index, shared.seq_start);
        let mut options = MqttOptions::new(sensor.source_name(), &config.host, config.port);
        options
            .set_keep_alive(Duration::from_secs(30))
            .set_clean_session(true)
            .set_inflight(config.inflight)
            .set_max_packet_size(64 * 1024, 64 * 1024);
        if let Some((username, password)) = &config.credentials {
            let password = password.as_ref().map(|p| p.expose_secret()).unwrap_or("");
            options.set_credentials(username, password);
        }
        let pacer = Pacer::new(config.rate, index, config.connections);
        Self {
            sensor,
            options,
            stamps: vec![None; usize::from(config.inflight) + 1],
            marks: Marks::default(),
            pacer,
            phase: shared.phase.clone(),
        }
    }

    /// One connection from CONNECT to close; `true` when this device has nothing left to do.
    async fn session(&mut self, shared: &Shared) -> bool {
        let capacity = usize::from(shared.config.inflight);
        let (client, mut eventloop) = AsyncClient::new(self.options.clone(), capacity);
        eventloop.set_network_options(network_options());
        let link = Link::default();
        let Self {
            sensor,
            stamps,
            marks,
            pacer,
            phase,
            ..
        } = self;
        let ((), published) = tokio::join!(
            drive(eventloop, &link, shared, stamps, marks),
            publish(&client, &link, shared, sensor, pacer, phase),
        );
        stamps.fill(None);
        let settled = match shared.config.qos {
            QoS::AtMostOnce => link.sent.load(Relaxed),
            _ => link.acked.load(Relaxed),
        };
        let lost = published.submitted.saturating_sub(settled);
        shared.stats.failed.fetch_add(lost, Relaxed);
        published.finished
    }

    fn may_retry(&self, shared: &Shared) -> bool {
        let phase = *self.phase.borrow();
        match phase {
            _ if shared.stop.is_cancelled() => false,
            Phase::Connecting => true,
            Phase::Go { deadline, .. } => Instant::now() < deadline && shared.budget_left(),
            Phase::Abort => false,
        }
    }
}

/// No Nagle delay (latency is what is measured); 10 s to connect or flush.
fn network_options() -> NetworkOptions {
    let mut network = NetworkOptions::new();
    network.set_tcp_nodelay(true);
    network.set_connection_timeout(10);
    network
}

/// Polls the event loop until the publisher gives up, DISCONNECT is written or the
/// connection fails; stamps publishes and records PUBACK latencies.
async fn drive(
    mut eventloop: EventLoop,
    link: &Link,
    shared: &Shared,
    stamps: &mut [Option<Instant>],
    marks: &mut Marks,
) {
    let stats = &shared.stats;
    loop {
        let event = tokio::select! {
            biased;
            _ = link.give_up.cancelled() => break,
            event = eventloop.poll() => event,
        };
        match event {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                link.connected.store(true, Relaxed);
                stats.open.fetch_add(1, Relaxed);
                if !std::mem::replace(&mut marks.ever_connected, true) {
                    stats.ever_connected.fetch_add(1, Relaxed);
                }
                report_first_attempt(shared, marks);
            }
            Ok(Event::Outgoing(Outgoing::Publish(pkid))) => {
                stats.sent.fetch_add(1, Relaxed);
                link.sent.fetch_add(1, Relaxed);
                match stamps.get_mut(usize::from(pkid)) {
                    Some(slot) if pkid != 0 => *slot = Some(Instant::now()),
                    _ => link.progress.notify_one(),
                }
            }
            Ok(Event::Incoming(Packet::PubAck(ack))) => {
                if let Some(at) = stamps.get_mut(usize::from(ack.pkid)).and_then(Option::take) {
                    stats.latency.record(at.elapsed());
                }
                stats.acked.fetch_add(1, Relaxed);
                link.acked.fetch_add(1, Relaxed);
                link.progress.notify_one();
            }
            Ok(Event::Outgoing(Outgoing::Disconnect)) => break,
            Ok(_) => {}
            Err(error) => {
                let established = link.connected.load(Relaxed);
                let counter = match established {
                    true => &stats.disconnects,
                    false => &stats.connect_failures,
                };
                counter.fetch_add(1, Relaxed);
                report_first_attempt(shared, marks);
                tracing::debug!(%error, established, "MQTT connection ended");
                stats.error(error);
                break;
            }
        }
    }
    if link.connected.load(Relaxed) {
        stats.open.fetch_sub(1, Relaxed);
    }
    link.closed.cancel();
}

fn report_first_attempt(shared: &Shared, marks: &mut Marks) {
    if !std::mem::replace(&mut marks.first_attempt_reported, true) {
        shared.stats.first_attempts.fetch_add(1, Relaxed);
    }
}
