//! A device's publisher: waits for the start, publishes its share of the budget (paced to its
//! share of `--rate` when one is set), waits for the outstanding PUBACKs, disconnects.

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use rumqttc::{AsyncClient, QoS};
use time::OffsetDateTime;
use tokio::sync::watch;
use tokio::time::{Instant, sleep, sleep_until};

use super::device::Link;
use super::{Phase, Shared};
use crate::payload::Sensor;

/// How long to wait for the event loop to write DISCONNECT before dropping the socket.
const DISCONNECT_GRACE: Duration = Duration::from_secs(1);

/// This device's share of `--rate`: one publish every `interval`, phase-shifted per device.
#[derive(Debug)]
pub(super) struct Pacer {
    interval: Duration,
    offset: Duration,
    next: Option<Instant>,
}

impl Pacer {
    /// Device `index` of `connections` sending its share of `rate` messages per second.
    pub(super) fn new(rate: u64, index: u32, connections: u32) -> Option<Self> {
        (rate > 0).then(|| {
            let interval = Duration::from_secs_f64(f64::from(connections) / rate as f64);
            let offset = interval.mul_f64(f64::from(index) / f64::from(connections));
            Self {
                interval,
                offset,
                next: None,
            }
        })
    }
}

/// What a publisher did in one session.
#[derive(Debug)]
pub(super) struct Published {
    pub(super) submitted: u64,
    /// `false` when it stopped only because the connection broke.
    pub(super) finished: bool,
}

/// Waits for the start, publishes this device's share, drains, disconnects.
pub(super) async fn publish(
    client: &AsyncClient,
    link: &Link,
    shared: &Shared,
    sensor: &mut Sensor,
    pacer: &mut Option<Pacer>,
    phase: &mut watch::Receiver<Phase>,
) -> Published {
    let start = tokio::select! {
        phase = phase.wait_for(|p| !matches!(p, Phase::Connecting)) => phase.map(|p| *p).ok(),
        _ = link.closed.cancelled() => return Published { submitted: 0, finished: false },
        _ = shared.stop.cancelled() => None,
    };
    let published = match start {
        Some(Phase::Go { start, deadline }) => {
            if let Some(pacer) = pacer.as_mut() {
                let first = start + pacer.offset;
                pacer.next = Some(pacer.next.map_or(first, |next| next.max(Instant::now())));
            }
            publish_until(client, link, shared, sensor, pacer, deadline).await
        }
        _ => Published {
            submitted: 0,
            finished: true,
        },
    };
    if !link.closed.is_cancelled() {
        drain(link, published.submitted, shared).await;
        // A full request queue only means DISCONNECT is skipped: giving up closes the socket.
        let _ = client.try_disconnect();
        tokio::select! {
            _ = link.closed.cancelled() => {}
            _ = sleep(DISCONNECT_GRACE) => {}
        }
    }
    link.give_up.cancel();
    published
}

async fn publish_until(
    client: &AsyncClient,
    link: &Link,
    shared: &Shared,
    sensor: &mut Sensor,
    pacer: &mut Option<Pacer>,
    deadline: Instant,
) -> Published {
    let (qos, stop) = (shared.config.qos, &shared.stop);
    let mut submitted = 0;
    let finished = loop {
        if let Some(Pacer {
            interval,
            next: Some(next),
            ..
        }) = pacer.as_mut()
        {
            if *next >= deadline {
                break true;
            }
            tokio::select! {
                _ = sleep_until(*next) => {}
                _ = link.closed.cancelled() => break false,
                _ = stop.cancelled() => break true,
            }
            *next += *interval;
        }
        if link.closed.is_cancelled() {
            break false;
        }
        if stop.is_cancelled() || Instant::now() >= deadline || !shared.claim() {
            break true;
        }
        submitted += 1;
        let payload = sensor.next_payload(OffsetDateTime::now_utc());
        tokio::select! {
            sent = client.publish_bytes(sensor.topic(), qos, false, payload) => {
                if sent.is_err() {
                    break false;
                }
            }
            _ = link.closed.cancelled() => break false,
            // A full queue frees up as PUBACKs come; only a silent server gets this far.
            _ = sleep_until(deadline + shared.config.drain_timeout) => break true,
        }
    };
    Published {
        submitted,
        finished,
    }
}

/// Waits (up to `--drain-timeout`) until every publish handed over is settled.
async fn drain(link: &Link, submitted: u64, shared: &Shared) {
    let until = Instant::now() + shared.config.drain_timeout;
    let settled = match shared.config.qos {
        QoS::AtMostOnce => &link.sent,
        _ => &link.acked,
    };
    while settled.load(Relaxed) < submitted {
        tokio::select! {
            _ = link.progress.notified() => {}
            _ = link.closed.cancelled() => return,
            _ = sleep_until(until) => return,
        }
    }
}
