//! The plumbing every central service process shares (bridge, hub roles, dashboard), so that they
//! stop, log and read their flags the same way: [`shutdown`] (first SIGTERM/Ctrl-C cancels the
//! process's token, a second exits at once), [`telemetry`] (`tracing` to stderr, text or JSON,
//! `RUST_LOG`), [`kafka::topics_exist`] (readiness), [`parse_duration`] (`500ms`, `10s`, `2m`,
//! `3h`, `7d`), [`check_http_timeouts`] (the HTTP listeners' bounds). No service logic lives
//! here. The edge agent keeps its own smaller logging setup (no regex engine in its binary).

pub mod kafka;
pub mod shutdown;
pub mod telemetry;

use std::time::Duration;

pub use telemetry::LogFormat;

/// `10s`, `500ms`, `2m`, `3h`, `7d` or a plain number of seconds (`2.5`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, scale) = [
        ("ms", 0.001),
        ("s", 1.0),
        ("m", 60.0),
        ("h", 3600.0),
        ("d", 86_400.0),
    ]
    .into_iter()
    .find_map(|(suffix, scale)| text.strip_suffix(suffix).map(|n| (n, scale)))
    .unwrap_or((text, 1.0));
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a duration: use e.g. 500ms, 10s, 2m, 3h or 7d"))?;
    Duration::try_from_secs_f64(value * scale)
        .map_err(|_| format!("{text:?} is not a duration: it must be zero or more and finite"))
}

/// Checks an HTTP listener's `--header-timeout` and `--body-timeout` (the bridge's, the hub's, the
/// dashboard's): each must leave a client at least 100 ms. The message names the flag.
pub fn check_http_timeouts(header: Duration, body: Duration) -> Result<(), String> {
    let floor = Duration::from_millis(100);
    match (header < floor, body < floor) {
        (true, _) => Err("--header-timeout must be at least 100ms".to_owned()),
        (_, true) => Err("--body-timeout must be at least 100ms".to_owned()),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_with_their_units() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration(" 10s "), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3h"), Ok(Duration::from_secs(3 * 3600)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_duration("2.5"), Ok(Duration::from_millis(2500)));
        assert!(parse_duration("ten seconds").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn http_timeouts_name_the_flag_that_is_too_short() {
        let (short, fine) = (Duration::from_millis(50), Duration::from_secs(1));
        assert!(check_http_timeouts(fine, fine).is_ok());
        assert!(
            check_http_timeouts(short, fine)
                .unwrap_err()
                .contains("--header-timeout")
        );
        assert!(
            check_http_timeouts(fine, short)
                .unwrap_err()
                .contains("--body-timeout")
        );
    }
}
