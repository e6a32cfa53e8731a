//! `mqtt-load`: many devices publishing readings over MQTT, counting what is acknowledged.
//!
//! 1. **Connect.** Devices open their connections gradually (`connect_rate` per second) and wait.
//! 2. **Publish.** When every device has connected (or failed to), one signal starts them all;
//!    each keeps at most `inflight` unacknowledged publishes, optionally paced to its share of
//!    `rate`, taking messages from one shared budget until it is spent or `duration` is over.
//! 3. **Drain.** Each waits up to `drain_timeout` for its outstanding PUBACKs, then disconnects.
//!
//! Latency is measured from the moment a publish is written to the socket to its PUBACK.
//! Everything runs as one task per device on one runtime; counters are shared atomics.

mod device;
mod publisher;
mod report;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use rumqttc::QoS;
use secrecy::SecretString;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior, interval, sleep_until};
use tokio_util::sync::CancellationToken;

pub use report::{Progress, RunFacts, Stats, Summary};

/// A checked `mqtt-load` configuration (see [`crate::cli::MqttLoadArgs`] for each field).
#[derive(Debug, Clone)]
pub struct LoadConfig {
    pub host: String,
    pub port: u16,
    pub connections: u32,
    /// Total messages; `None` = until `duration` is over.
    pub messages: Option<u64>,
    /// Longest publishing phase.
    pub duration: Duration,
    /// Total messages per second, 0 = as fast as acknowledged.
    pub rate: u64,
    pub inflight: u16,
    pub qos: QoS,
    pub credentials: Option<(String, Option<SecretString>)>,
    pub connect_rate: u32,
    pub id_prefix: String,
    pub drain_timeout: Duration,
    /// Print a progress line on stderr every second.
    pub progress: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("no device could connect to {target}: {reason}")]
    NoConnection { target: String, reason: String },
}

/// Where the run is; devices wait on it before publishing.
#[derive(Debug, Clone, Copy)]
enum Phase {
    Connecting,
    Go { start: Instant, deadline: Instant },
    Abort,
}

/// What every device task shares.
#[derive(Debug)]
struct Shared {
    config: LoadConfig,
    stats: Stats,
    /// Messages not yet claimed by a device; `None` when only the duration bounds the run.
    budget: Option<AtomicU64>,
    phase: watch::Receiver<Phase>,
    stop: CancellationToken,
    /// Base of every device's `seq`: microseconds since the epoch at start, so the readings of
    /// a rerun are not taken for duplicates of an earlier run's.
    seq_start: u64,
}

impl Shared {
    /// Takes one message from the budget; `false` when it is spent.
    fn claim(&self) -> bool {
        self.budget.as_ref().is_none_or(|budget| {
            budget
                .fetch_update(Relaxed, Relaxed, |left| left.checked_sub(1))
                .is_ok()
        })
    }

    fn budget_left(&self) -> bool {
        self.budget
            .as_ref()
            .is_none_or(|budget| budget.load(Relaxed) > 0)
    }
}

/// Runs the load until the budget is spent or the duration is over (or `stop` is cancelled:
/// publishing stops, outstanding PUBACKs are still awaited) and sums up.
pub async fn run(config: LoadConfig, stop: CancellationToken) -> Result<Summary, LoadError> {
    let target = format!("{}:{}", config.host, config.port);
    let (phase_tx, phase_rx) = watch::channel(Phase::Connecting);
    let seq_start = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000;
    let shared = Arc::new(Shared {
        budget: config.messages.map(AtomicU64::new),
        stats: Stats::default(),
        phase: phase_rx,
        stop,
        seq_start: u64::try_from(seq_start).unwrap_or(0),
        config,
    });
    let config = &shared.config;
    let mut devices = JoinSet::new();
    let ramp = Instant::now();
    for index in 0..config.connections {
        let at = ramp + Duration::from_secs_f64(f64::from(index) / f64::from(config.connect_rate));
        devices.spawn(device::run(index, at, Arc::clone(&shared)));
    }
    connect_phase(&shared).await;
    if shared.stats.ever_connected.load(Relaxed) == 0 {
        phase_tx.send_replace(Phase::Abort);
        shared.stop.cancel();
        let reason = shared
            .stats
            .first_error()
            .unwrap_or_else(|| "stopped".into());
        let grace = Instant::now() + Duration::from_secs(5);
        finish(&mut devices, &shared, None, grace).await;
        return Err(LoadError::NoConnection { target, reason });
    }
    let start = Instant::now();
    let deadline = start + config.duration;
    phase_tx.send_replace(Phase::Go { start, deadline });
    // Publishers stop by the deadline and drain for at most `drain_timeout` (twice, when the
    // server went silent with a full queue), then one second to disconnect.
    let hard = deadline + config.drain_timeout * 2 + Duration::from_secs(5);
    finish(&mut devices, &shared, Some(start), hard).await;
    let facts = RunFacts {
        target,
        connections: config.connections,
        qos: config.qos as u8,
        inflight: config.inflight,
        rate: config.rate,
        elapsed: start.elapsed(),
    };
    Ok(Summary::new(facts, &shared.stats))
}

/// Waits until every device has connected or failed its first attempt, within a bound.
async fn connect_phase(shared: &Shared) {
    let config = &shared.config;
    let ramp =
        Duration::from_secs_f64(f64::from(config.connections) / f64::from(config.connect_rate));
    let until = Instant::now() + ramp + Duration::from_secs(15);
    let mut tick = interval(Duration::from_millis(50));
    let mut shown = Instant::now();
    loop {
        let attempted = shared.stats.first_attempts.load(Relaxed);
        let done = attempted >= u64::from(config.connections);
        if config.progress && (done || shown.elapsed() >= Duration::from_secs(1)) {
            shown = Instant::now();
            eprintln!(
                "connecting: {} of {} connected, {} connect failures",
                shared.stats.open.load(Relaxed),
                config.connections,
                shared.stats.connect_failures.load(Relaxed),
            );
        }
        if done || Instant::now() >= until {
            return;
        }
        tokio::select! {
            _ = tick.tick() => {}
            _ = shared.stop.cancelled() => return,
        }
    }
}

/// Waits for every device to end, printing progress once a second from `start`; past `hard`
/// the stragglers are aborted so the run always ends.
async fn finish(devices: &mut JoinSet<()>, shared: &Shared, start: Option<Instant>, hard: Instant) {
    let mut tick = interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    tick.reset();
    let mut progress = Progress::default();
    loop {
        tokio::select! {
            joined = devices.join_next() => match joined {
                None => return,
                Some(Err(error)) => tracing::error!(%error, "a device task failed"),
                Some(Ok(())) => {}
            },
            _ = tick.tick() => {
                if let (Some(start), true) = (start, shared.config.progress) {
                    eprintln!("{}", progress.line(&shared.stats, start.elapsed()));
                }
            }
            _ = sleep_until(hard) => {
                tracing::warn!(left = devices.len(), "devices still running past the time limit");
                devices.abort_all();
                while devices.join_next().await.is_some() {}
                // The aborted sessions could not settle their accounts: whatever was written
                // and not acknowledged has failed.
                let stats = &shared.stats;
                if shared.config.qos != QoS::AtMostOnce {
                    let unacked = stats.sent.load(Relaxed).saturating_sub(stats.acked.load(Relaxed));
                    stats.failed.fetch_max(unacked, Relaxed);
                }
                return;
            }
        }
    }
}
