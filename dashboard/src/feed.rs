//! The live feed's fan-out: every classification broadcast to the open streams, and the latest
//! one per sensor kept for a while to be replayed to a stream when it starts or resyncs.
//!
//! Why the replay: a page loads its snapshot from PostgreSQL, which the writer fills behind the
//! live feed (seconds, or minutes when the database is slow or the writer restarts). An update
//! pushed before a page subscribed, but stored only after its snapshot was read, would reach the
//! page by neither path and the sensor would keep its old colour. Replaying what was pushed in
//! the last [`RECENT_WINDOW`] closes that gap; the page merges by time, so a replayed update
//! that the snapshot also holds changes nothing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::broadcast;

use crate::live::LiveEvent;

/// How long a pushed classification is kept for replay: longer than the writer usually lags.
pub const RECENT_WINDOW: Duration = Duration::from_secs(10 * 60);
/// Most sensors kept for replay; past it the oldest updates go first.
pub const RECENT_SENSORS: usize = 100_000;

/// A cheaply cloned handle on the feed.
#[derive(Debug, Clone)]
pub struct Feed {
    sender: broadcast::Sender<LiveEvent>,
    recent: Arc<Mutex<Recent>>,
}

#[derive(Debug, Default)]
struct Recent {
    /// The latest event per sensor and when it was pushed.
    by_sensor: HashMap<String, (Instant, LiveEvent)>,
}

impl Feed {
    /// A feed whose streams may fall `capacity` events behind before they are told to resync.
    pub fn new(capacity: usize) -> Self {
        let (sender, _) = broadcast::channel(capacity);
        Self {
            sender,
            recent: Arc::default(),
        }
    }

    /// Sends `event` (the latest classification of `source_name`) to every open stream and keeps
    /// it for replay.
    pub fn publish(&self, source_name: &str, event: LiveEvent) {
        self.recent()
            .keep(source_name, event.clone(), Instant::now());
        // No open stream is not an error: nobody is watching.
        let _ = self.sender.send(event);
    }

    /// A new stream's receiver; subscribe first, then take [`Feed::replay`], so nothing falls
    /// between the two.
    pub fn subscribe(&self) -> broadcast::Receiver<LiveEvent> {
        self.sender.subscribe()
    }

    /// The latest classification of every sensor pushed within [`RECENT_WINDOW`].
    pub fn replay(&self) -> Vec<LiveEvent> {
        let since = Instant::now().checked_sub(RECENT_WINDOW);
        let recent = self.recent();
        let fresh = |at: &Instant| since.is_none_or(|since| *at >= since);
        recent
            .by_sensor
            .values()
            .filter(|(at, _)| fresh(at))
            .map(|(_, event)| event.clone())
            .collect()
    }

    fn recent(&self) -> std::sync::MutexGuard<'_, Recent> {
        self.recent.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Recent {
    fn keep(&mut self, source_name: &str, event: LiveEvent, now: Instant) {
        if let Some(slot) = self.by_sensor.get_mut(source_name) {
            *slot = (now, event);
            return;
        }
        if self.by_sensor.len() >= RECENT_SENSORS {
            self.make_room(now);
        }
        self.by_sensor.insert(source_name.to_owned(), (now, event));
    }

    /// Drops what is past the window; if that leaves the map nearly full, the older half (so the
    /// next new sensors do not each pay for a scan of the whole map).
    fn make_room(&mut self, now: Instant) {
        let mut keep_from = now.checked_sub(RECENT_WINDOW);
        self.by_sensor
            .retain(|_, (at, _)| keep_from.is_none_or(|from| *at >= from));
        if self.by_sensor.len() >= RECENT_SENSORS / 10 * 9 {
            let mut times: Vec<Instant> = self.by_sensor.values().map(|(at, _)| *at).collect();
            let middle = times.len() / 2;
            keep_from = Some(*times.select_nth_unstable(middle).1);
            self.by_sensor
                .retain(|_, (at, _)| keep_from.is_none_or(|from| *at >= from));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latest_per_sensor_is_kept_for_replay_and_streams_get_every_event() {
        let feed = Feed::new(8);
        let mut receiver = feed.subscribe();
        feed.publish("s-1", "first".into());
        feed.publish("s-2", "other".into());
        feed.publish("s-1", "second".into());
        let mut replay: Vec<String> = feed.replay().iter().map(|e| e.to_string()).collect();
        replay.sort();
        assert_eq!(replay, ["other", "second"]);
        for expected in ["first", "other", "second"] {
            assert_eq!(&*receiver.try_recv().unwrap(), expected);
        }
    }

    #[test]
    fn replay_is_bounded_in_sensors() {
        let mut recent = Recent::default();
        let start = Instant::now();
        for n in 0..RECENT_SENSORS + 10 {
            let at = start + Duration::from_millis(n as u64);
            recent.keep(&format!("s-{n}"), "e".into(), at);
        }
        assert!(recent.by_sensor.len() <= RECENT_SENSORS);
        let newest = format!("s-{}", RECENT_SENSORS + 9);
        assert!(recent.by_sensor.contains_key(&newest), "the newest kept");
        assert!(!recent.by_sensor.contains_key("s-0"), "the oldest gone");
    }
}
