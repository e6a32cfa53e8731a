//! The rules engine (design §4): a plain synchronous function of (profile, measurements).
//!
//! - A [`Profile`] is data: a TOML file, validated when loaded. Two ship built in: `default`
//!   (the seed's text: high when temperature > 40 °C and humidity < 20 %, with further rules on
//!   fuel, wind, smoke and fire weather) and `seed-compat` (the reference code's any-of thresholds
//!   and constant confidences, so a migrating user gets identical labels).
//! - [`Profile::classify`] gives the highest intensity among the rules that fire (low when none
//!   does), the names of every rule that fired, and a confidence (see [`engine`]).
//! - Rules may use the reading's values and derived quantities ([`fire_weather`]).

pub mod engine;
pub mod fire_weather;
mod profile;

use serde::{Deserialize, Serialize};

pub use engine::Assessment;
pub use profile::{BUILTIN_PROFILES, Band, Condition, Confidence, Op, Profile, Rule, RulesError};

/// The numeric values of a reading, in its units (°C, %, km/h, degrees, 0..1, US AQI).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Measurements {
    pub latitude: f64,
    pub longitude: f64,
    pub temperature: f64,
    pub humidity: f64,
    pub wind_speed: f64,
    pub wind_direction: f64,
    pub vegetation_density: f64,
    pub air_quality_index: f64,
}

impl Measurements {
    /// The values in the reading's wire order: latitude, longitude, temperature, humidity,
    /// wind speed, wind direction, vegetation density, air quality index.
    pub fn to_array(&self) -> [f64; 8] {
        [
            self.latitude,
            self.longitude,
            self.temperature,
            self.humidity,
            self.wind_speed,
            self.wind_direction,
            self.vegetation_density,
            self.air_quality_index,
        ]
    }

    /// The inverse of [`Measurements::to_array`].
    pub fn from_array(values: [f64; 8]) -> Self {
        let [lat, lon, t, h, ws, wd, v, aqi] = values;
        Self {
            latitude: lat,
            longitude: lon,
            temperature: t,
            humidity: h,
            wind_speed: ws,
            wind_direction: wd,
            vegetation_density: v,
            air_quality_index: aqi,
        }
    }

    pub fn all_finite(&self) -> bool {
        self.to_array().into_iter().all(f64::is_finite)
    }
}

/// What a rule condition can test: a measured value or a derived one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Variable {
    Latitude,
    Longitude,
    Temperature,
    Humidity,
    WindSpeed,
    WindDirection,
    VegetationDensity,
    AirQualityIndex,
    /// Fosberg Fire Weather Index, derived from temperature, humidity and wind speed.
    Ffwi,
}

/// Measurements plus the derived quantities, computed once per reading.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Variables {
    measured: Measurements,
    ffwi: f64,
}

impl Variables {
    pub(crate) fn new(measured: &Measurements) -> Self {
        Self {
            measured: *measured,
            ffwi: fire_weather::fosberg_index(
                measured.temperature,
                measured.humidity,
                measured.wind_speed,
            ),
        }
    }

    pub(crate) fn get(&self, var: Variable) -> f64 {
        let m = &self.measured;
        match var {
            Variable::Latitude => m.latitude,
            Variable::Longitude => m.longitude,
            Variable::Temperature => m.temperature,
            Variable::Humidity => m.humidity,
            Variable::WindSpeed => m.wind_speed,
            Variable::WindDirection => m.wind_direction,
            Variable::VegetationDensity => m.vegetation_density,
            Variable::AirQualityIndex => m.air_quality_index,
            Variable::Ffwi => self.ffwi,
        }
    }
}
