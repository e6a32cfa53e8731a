//! Plausibility limits: the ranges a reading's values must fall in to be accepted.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::Duration;

/// A closed range `min..=max`, or half-open `min..max` when `max_exclusive` is set (used for
/// wind direction, where 360° is 0°).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Bounds {
    pub min: f64,
    pub max: f64,
    #[serde(default)]
    pub max_exclusive: bool,
}

impl Bounds {
    pub const fn inclusive(min: f64, max: f64) -> Self {
        Self {
            min,
            max,
            max_exclusive: false,
        }
    }

    pub const fn half_open(min: f64, max: f64) -> Self {
        Self {
            min,
            max,
            max_exclusive: true,
        }
    }

    pub fn contains(&self, value: f64) -> bool {
        value >= self.min
            && if self.max_exclusive {
                value < self.max
            } else {
                value <= self.max
            }
    }

    fn within(&self, outer: &Bounds) -> bool {
        self.min >= outer.min && self.max <= outer.max
    }
}

impl fmt::Display for Bounds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let close = if self.max_exclusive { ")" } else { "]" };
        write!(f, "[{}, {}{close}", self.min, self.max)
    }
}

/// The ranges [`Reading::parse`](super::Reading::parse) enforces. The defaults are the documented
/// ones (design §1); a deployment may narrow or widen them, within what is physically meaningful
/// for latitude, longitude, humidity, wind direction and vegetation density.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    pub latitude: Bounds,
    pub longitude: Bounds,
    /// °C.
    pub temperature: Bounds,
    /// % relative humidity.
    pub humidity: Bounds,
    /// km/h.
    pub wind_speed: Bounds,
    /// Degrees, 0 = north.
    pub wind_direction: Bounds,
    pub vegetation_density: Bounds,
    /// US AQI.
    pub air_quality_index: Bounds,
    /// How far ahead of the agent's clock a timestamp may be (sensor clocks drift).
    pub max_future_skew: Duration,
    /// Longest accepted `source_name`, in characters.
    pub source_name_max_chars: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            latitude: Bounds::inclusive(-90.0, 90.0),
            longitude: Bounds::inclusive(-180.0, 180.0),
            temperature: Bounds::inclusive(-90.0, 200.0),
            humidity: Bounds::inclusive(0.0, 100.0),
            wind_speed: Bounds::inclusive(0.0, 500.0),
            wind_direction: Bounds::half_open(0.0, 360.0),
            vegetation_density: Bounds::inclusive(0.0, 1.0),
            air_quality_index: Bounds::inclusive(0.0, 1000.0),
            max_future_skew: Duration::minutes(5),
            source_name_max_chars: 128,
        }
    }
}

/// Why a set of [`Limits`] cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("limit for {field} is not usable: {reason}")]
pub struct LimitsError {
    pub field: &'static str,
    pub reason: String,
}

impl Limits {
    /// Checks the limits once, at start-up: every range finite and non-empty, and the physical
    /// quantities kept inside their physical range.
    pub fn validate(&self) -> Result<(), LimitsError> {
        let physical = Limits::default();
        let checks = [
            ("latitude", self.latitude, Some(physical.latitude)),
            ("longitude", self.longitude, Some(physical.longitude)),
            ("temperature", self.temperature, None),
            ("humidity", self.humidity, Some(physical.humidity)),
            ("wind_speed", self.wind_speed, None),
            (
                "wind_direction",
                self.wind_direction,
                Some(physical.wind_direction),
            ),
            (
                "vegetation_density",
                self.vegetation_density,
                Some(physical.vegetation_density),
            ),
            ("air_quality_index", self.air_quality_index, None),
        ];
        for (field, bounds, outer) in checks {
            let error = |reason: String| LimitsError { field, reason };
            if !(bounds.min.is_finite() && bounds.max.is_finite()) {
                return Err(error(format!("{bounds} is not finite")));
            }
            if bounds.min >= bounds.max {
                return Err(error(format!("{bounds} is empty")));
            }
            if let Some(outer) = outer.filter(|outer| !bounds.within(outer)) {
                return Err(error(format!("{bounds} goes outside {outer}")));
            }
        }
        if self.max_future_skew.is_negative() {
            return Err(LimitsError {
                field: "max_future_skew",
                reason: "must not be negative".into(),
            });
        }
        if self.source_name_max_chars == 0 {
            return Err(LimitsError {
                field: "source_name_max_chars",
                reason: "must be at least 1".into(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_documented() {
        let limits = Limits::default();
        assert_eq!(limits.validate(), Ok(()));
        assert!(limits.wind_direction.contains(359.999));
        assert!(!limits.wind_direction.contains(360.0));
        assert!(limits.humidity.contains(100.0));
        assert_eq!(limits.source_name_max_chars, 128);
    }

    #[test]
    fn limits_outside_physics_or_empty_are_refused() {
        let wet = Limits {
            humidity: Bounds::inclusive(0.0, 120.0),
            ..Limits::default()
        };
        assert_eq!(wet.validate().unwrap_err().field, "humidity");
        let empty = Limits {
            temperature: Bounds::inclusive(50.0, 10.0),
            ..Limits::default()
        };
        assert!(empty.validate().unwrap_err().reason.contains("empty"));
        let infinite = Limits {
            air_quality_index: Bounds::inclusive(0.0, f64::INFINITY),
            ..Limits::default()
        };
        assert!(infinite.validate().unwrap_err().reason.contains("finite"));
    }
}
