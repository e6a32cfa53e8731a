//! The fire scenario, without IO or clock: sensors placed over a region, a fire that ignites
//! upwind and spreads downwind faster than against the wind, and each sensor's values at a given
//! moment. Deterministic from the seed.

use serde_json::{Value, json};

/// What the scenario looks like. Times are in seconds since the simulator started.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub center_lat: f64,
    pub center_lon: f64,
    /// Side of the square region, km.
    pub size_km: f64,
    pub sensors: u32,
    pub seed: u64,
    /// Where the wind blows from, degrees (meteorological: 45 = from the north-east).
    pub wind_from: f64,
    pub wind_kmh: f64,
    /// How fast the head of the fire advances, km per minute of simulator time.
    pub spread_km_per_min: f64,
    pub ignite_after_secs: f64,
    /// The sensors' names are `{prefix}-{n}`.
    pub prefix: String,
}

impl Scenario {
    /// The Palisades Fire, Los Angeles, January 2025: Santa Ana winds from the north-east.
    pub fn palisades(sensors: u32, seed: u64) -> Self {
        Self {
            center_lat: 34.06,
            center_lon: -118.57,
            size_km: 12.0,
            sensors,
            seed,
            wind_from: 45.0,
            wind_kmh: 22.0,
            spread_km_per_min: 1.0,
            ignite_after_secs: 30.0,
            prefix: "sensor".into(),
        }
    }
}

/// One sensor: where it is and its quiet-day values.
#[derive(Debug, Clone)]
pub struct Site {
    pub name: String,
    pub latitude: f64,
    pub longitude: f64,
    x_km: f64,
    y_km: f64,
    temperature: f64,
    humidity: f64,
    vegetation: f64,
    aqi: f64,
}

/// The scenario with its sensors placed.
#[derive(Debug, Clone)]
pub struct Fire {
    scenario: Scenario,
    sites: Vec<Site>,
    ignition: (f64, f64),
    /// Unit vector the fire runs towards (downwind).
    toward: (f64, f64),
}

impl Fire {
    pub fn new(scenario: Scenario) -> Self {
        let side = f64::from(scenario.sensors.max(1)).sqrt().ceil();
        let cell = scenario.size_km / side;
        let sites = (0..scenario.sensors)
            .map(|n| {
                let u = |k: u64| unit(mix(scenario.seed ^ (u64::from(n) << 8) ^ k));
                let (col, row) = (f64::from(n) % side, (f64::from(n) / side).floor());
                let x_km = (col + 0.15 + 0.7 * u(1)) * cell - scenario.size_km / 2.0;
                let y_km = (row + 0.15 + 0.7 * u(2)) * cell - scenario.size_km / 2.0;
                let (latitude, longitude) = to_lat_lon(&scenario, x_km, y_km);
                Site {
                    name: format!("{}-{n}", scenario.prefix),
                    latitude,
                    longitude,
                    x_km,
                    y_km,
                    temperature: 22.0 + 7.0 * u(3),
                    humidity: 30.0 + 15.0 * u(4),
                    vegetation: 0.3 + 0.55 * u(5),
                    aqi: 20.0 + 40.0 * u(6),
                }
            })
            .collect();
        // Wind from `wind_from` blows towards the opposite bearing.
        let bearing = (scenario.wind_from + 180.0).to_radians();
        let toward = (bearing.sin(), bearing.cos());
        let upwind = scenario.size_km * 0.35;
        let ignition = (-toward.0 * upwind, -toward.1 * upwind);
        Self {
            scenario,
            sites,
            ignition,
            toward,
        }
    }

    pub fn sites(&self) -> &[Site] {
        &self.sites
    }

    /// When the front reaches `site`, seconds since start.
    pub fn arrival_secs(&self, site: &Site) -> f64 {
        let (dx, dy) = (site.x_km - self.ignition.0, site.y_km - self.ignition.1);
        let distance = dx.hypot(dy);
        let along = if distance > 0.0 {
            (dx * self.toward.0 + dy * self.toward.1) / distance
        } else {
            1.0
        };
        // Head fire at full speed, backing fire at a quarter of it.
        let rate = self.scenario.spread_km_per_min * (0.25 + 0.75 * (1.0 + along) / 2.0);
        self.scenario.ignite_after_secs + distance / rate * 60.0
    }

    /// How much fire a sensor feels at `t` secs: 0 quiet, 1 in the front, smouldering after.
    pub fn heat(&self, site: &Site, t: f64) -> f64 {
        let s = (t - self.arrival_secs(site)) / 60.0;
        if s < 0.0 {
            0.4 * (s / 0.5).exp()
        } else {
            0.7 * (-s / 3.0).exp() + 0.3 * (-s / 20.0).exp()
        }
    }

    /// Sensor `n`'s reading at `t` secs (`timestamp` and `seq` given by the caller).
    pub fn reading(&self, n: usize, t: f64, seq: u64, timestamp: &str) -> Option<Value> {
        let site = self.sites.get(n)?;
        let heat = self.heat(site, t);
        let noise = |k: u64| {
            unit(mix(self.scenario.seed
                ^ seq.rotate_left(17)
                ^ (n as u64) << 4
                ^ k))
                - 0.5
        };
        let temperature = site.temperature + 30.0 * heat + 1.5 * noise(1);
        let humidity = (site.humidity - 32.0 * heat + 2.0 * noise(2)).clamp(2.0, 100.0);
        let wind_speed = (self.scenario.wind_kmh + 15.0 * heat + 6.0 * noise(3)).max(0.0);
        let wind_direction = (self.scenario.wind_from + 20.0 * noise(4)).rem_euclid(360.0);
        let aqi = (site.aqi + 400.0 * heat + 10.0 * noise(5)).clamp(0.0, 1000.0);
        Some(json!({
            "timestamp": timestamp,
            "latitude": round(site.latitude, 5),
            "longitude": round(site.longitude, 5),
            "temperature": round(temperature, 2),
            "humidity": round(humidity, 1),
            "wind_speed": round(wind_speed, 1),
            "wind_direction": round(wind_direction, 1).rem_euclid(360.0),
            "vegetation_density": round(site.vegetation, 3),
            "air_quality_index": round(aqi, 0),
            "source_name": site.name,
            "seq": seq,
        }))
    }

    /// Sensors the front has reached by `t`.
    pub fn burning(&self, t: f64) -> usize {
        self.sites
            .iter()
            .filter(|s| self.arrival_secs(s) <= t)
            .count()
    }
}

fn to_lat_lon(scenario: &Scenario, x_km: f64, y_km: f64) -> (f64, f64) {
    let lat = scenario.center_lat + y_km / 111.32;
    let lon = scenario.center_lon + x_km / (111.32 * scenario.center_lat.to_radians().cos());
    (lat, lon)
}

fn round(value: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (value * scale).round() / scale
}

/// A number in [0, 1) from a hash.
fn unit(h: u64) -> f64 {
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// splitmix64.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use emberline_core::{Limits, Reading};

    use super::*;

    const TS: &str = "2025-01-07T18:30:00Z";

    fn fire() -> Fire {
        Fire::new(Scenario::palisades(100, 7))
    }

    #[test]
    fn same_seed_same_fire_and_every_reading_is_valid() {
        let (a, b) = (fire(), fire());
        let now = time::macros::datetime!(2025-01-07 18:30:00 UTC);
        for t in [0.0, 45.0, 200.0, 900.0] {
            for n in 0..100 {
                let reading = a.reading(n, t, n as u64, TS).unwrap();
                assert_eq!(Some(&reading), b.reading(n, t, n as u64, TS).as_ref());
                let bytes = serde_json::to_vec(&reading).unwrap();
                Reading::parse(&bytes, &Limits::default(), now)
                    .unwrap_or_else(|e| panic!("{e}: {reading}"));
            }
        }
    }

    #[test]
    fn quiet_before_ignition_then_the_fire_spreads_downwind() {
        let fire = fire();
        assert_eq!(fire.burning(0.0), 0);
        let early = fire.burning(150.0);
        let later = fire.burning(600.0);
        assert!(early > 0 && later > early, "{early} then {later}");
        // Downwind (south-west of the ignition) burns before upwind at the same distance.
        let ahead = fire
            .sites()
            .iter()
            .filter(|s| s.x_km < -3.0 && s.y_km < -3.0);
        let behind = fire.sites().iter().filter(|s| s.x_km > 5.0 && s.y_km > 5.0);
        let first = |it: &mut dyn Iterator<Item = &Site>| {
            it.map(|s| fire.arrival_secs(s)).fold(f64::MAX, f64::min)
        };
        let (ahead, behind) = (
            first(&mut ahead.into_iter()),
            first(&mut behind.into_iter()),
        );
        assert!(
            ahead < 700.0 && ahead < behind,
            "ahead {ahead} s, behind {behind} s"
        );
    }

    #[test]
    fn the_front_is_hot_dry_and_smoky_and_quiet_sensors_are_not() {
        let fire = fire();
        let site = &fire.sites()[0];
        let arrival = fire.arrival_secs(site);
        let at = |t: f64| fire.reading(0, t, 1, TS).unwrap();
        let quiet = at(0.0);
        assert!(quiet["temperature"].as_f64().unwrap() < 32.0);
        assert!(quiet["humidity"].as_f64().unwrap() > 25.0);
        let front = at(arrival + 5.0);
        assert!(front["temperature"].as_f64().unwrap() > 45.0, "{front}");
        assert!(front["humidity"].as_f64().unwrap() < 15.0, "{front}");
        assert!(
            front["air_quality_index"].as_f64().unwrap() > 300.0,
            "{front}"
        );
    }
}
