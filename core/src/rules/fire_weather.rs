//! Derived fire-weather quantities available to rules.
//!
//! # Fosberg Fire Weather Index (FFWI)
//! Fosberg, M. A. (1978), *Weather in wildland fire management: the fire weather index*. The
//! index combines the equilibrium moisture content of fine dead fuel (from temperature and
//! relative humidity) with wind speed. Its constant 0.3002 calibrates it to 100 for fuel with no
//! moisture under a 30 mph wind, and, as the Storm Prediction Center and the University of
//! Washington publish it, a value above 100 is set back to 100. The moisture term is limited to
//! 30 % (at 30 % the damping coefficient is 0 and fire does not spread; beyond it the cubic would
//! turn negative).
//!
//! The equilibrium moisture content is the piecewise regression of Simard (1968) used by Fosberg
//! and the NFDRS, in °F and % RH, with the published branch limits:
//! - RH < 10:        m = 0.03229 + 0.281073·H − 0.000578·H·T
//! - 10 ≤ RH ≤ 50:   m = 2.22749 + 0.160107·H − 0.014784·T
//! - RH > 50:        m = 21.0606 + 0.005565·H² − 0.00035·H·T − 0.483199·H

const KM_PER_MILE: f64 = 1.609_344;

/// Equilibrium moisture content of fine dead fuel, in %, from °F and % relative humidity.
pub fn equilibrium_moisture_content(temperature_f: f64, humidity: f64) -> f64 {
    let (t, h) = (temperature_f, humidity);
    if h < 10.0 {
        0.03229 + 0.281073 * h - 0.000578 * h * t
    } else if h <= 50.0 {
        2.22749 + 0.160107 * h - 0.014784 * t
    } else {
        21.0606 + 0.005565 * h * h - 0.00035 * h * t - 0.483199 * h
    }
}

/// The index from a moisture content (%) and a wind speed (mph), the form of Fosberg's paper,
/// set back to 100 when it would exceed it.
pub fn fosberg_from_moisture(moisture: f64, wind_mph: f64) -> f64 {
    let r = moisture.clamp(0.0, 30.0) / 30.0;
    let damping = 1.0 - 2.0 * r + 1.5 * r * r - 0.5 * r * r * r;
    (damping * (1.0 + wind_mph * wind_mph).sqrt() / 0.3002).min(100.0)
}

/// The Fosberg Fire Weather Index from a reading's units: °C, % relative humidity, km/h.
pub fn fosberg_index(temperature_c: f64, humidity: f64, wind_kmh: f64) -> f64 {
    let temperature_f = temperature_c * 9.0 / 5.0 + 32.0;
    let moisture = equilibrium_moisture_content(temperature_f, humidity);
    fosberg_from_moisture(moisture, wind_kmh / KM_PER_MILE)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(actual: f64, expected: f64, tolerance: f64) {
        assert!(
            (actual - expected).abs() <= tolerance,
            "expected {expected} ± {tolerance}, got {actual}"
        );
    }

    /// Fosberg's calibration point: no fuel moisture and a 30 mph wind give 100; anything
    /// beyond is set back to 100 (SPC, University of Washington definitions).
    #[test]
    fn calibration_point_is_one_hundred_and_the_ceiling() {
        assert_eq!(fosberg_from_moisture(0.0, 60.0), 100.0);
        assert_eq!(fosberg_index(45.0, 2.0, 150.0), 100.0);
        // 0.3002 is itself rounded, so the index there is 99.989.
        close(fosberg_from_moisture(0.0, 30.0), 100.0, 0.02);
        // With no wind the same dry fuel gives 1 / 0.3002.
        close(fosberg_from_moisture(0.0, 0.0), 3.331, 0.001);
    }

    /// At 30 % moisture content the damping coefficient is zero: the index is 0 whatever the wind,
    /// and wetter fuel never goes negative.
    #[test]
    fn saturated_fuel_gives_zero() {
        close(fosberg_from_moisture(30.0, 60.0), 0.0, 1e-12);
        close(fosberg_from_moisture(45.0, 60.0), 0.0, 1e-12);
        // 100 % RH at 50 °F: m = 21.0606 + 55.65 − 1.75 − 48.3199 = 26.6407 (below saturation).
        close(equilibrium_moisture_content(50.0, 100.0), 26.6407, 1e-4);
    }

    /// Worked example, middle branch: 95 °F (35 °C), 30 % RH, 15 mph.
    /// m = 2.22749 + 0.160107·30 − 0.014784·95 = 5.62622
    /// r = 0.187541; η = 1 − 0.375081 + 0.052757 − 0.003298 = 0.674378
    /// FFWI = 0.674378 · √226 / 0.3002 = 33.771
    #[test]
    fn worked_example_middle_branch() {
        close(equilibrium_moisture_content(95.0, 30.0), 5.62622, 1e-5);
        close(fosberg_from_moisture(5.62622, 15.0), 33.771, 0.005);
        close(fosberg_index(35.0, 30.0, 15.0 * KM_PER_MILE), 33.771, 0.005);
    }

    /// The published branch limits: exactly 10 % is the middle branch, exactly 50 % too.
    #[test]
    fn branch_limits_follow_the_published_definition() {
        close(
            equilibrium_moisture_content(70.0, 10.0),
            2.22749 + 1.60107 - 0.014784 * 70.0,
            1e-9,
        );
        close(
            equilibrium_moisture_content(70.0, 50.0),
            2.22749 + 8.00535 - 0.014784 * 70.0,
            1e-9,
        );
        close(
            equilibrium_moisture_content(70.0, 50.5),
            21.0606 + 0.005565 * 50.5 * 50.5 - 0.00035 * 50.5 * 70.0 - 0.483199 * 50.5,
            1e-9,
        );
    }

    /// Worked example, dry branch: 104 °F (40 °C), 5 % RH, 25 mph.
    /// m = 0.03229 + 1.405365 − 0.30056 = 1.137095
    /// r = 0.037903; η = 1 − 0.075806 + 0.002155 − 0.000027 = 0.926321
    /// FFWI = 0.926321 · √626 / 0.3002 = 77.204
    #[test]
    fn worked_example_dry_branch() {
        close(equilibrium_moisture_content(104.0, 5.0), 1.137095, 1e-6);
        close(fosberg_index(40.0, 5.0, 25.0 * KM_PER_MILE), 77.204, 0.005);
    }

    /// Worked example, humid branch: 68 °F (20 °C), 80 % RH, 10 mph.
    /// m = 21.0606 + 35.616 − 1.904 − 38.65592 = 16.11668
    /// r = 0.537223; η = 1 − 1.074445 + 0.432918 − 0.077529 = 0.280944
    /// FFWI = 0.280944 · √101 / 0.3002 = 9.4052
    #[test]
    fn worked_example_humid_branch() {
        close(equilibrium_moisture_content(68.0, 80.0), 16.11668, 1e-5);
        close(fosberg_index(20.0, 80.0, 10.0 * KM_PER_MILE), 9.4052, 0.005);
    }

    /// More wind or drier air never lowers the index.
    #[test]
    fn monotonic_in_wind_and_dryness() {
        let mut previous = 0.0;
        for wind in [0.0, 10.0, 20.0, 40.0, 80.0] {
            let index = fosberg_index(30.0, 25.0, wind);
            assert!(index >= previous);
            previous = index;
        }
        assert!(fosberg_index(30.0, 15.0, 20.0) > fosberg_index(30.0, 45.0, 20.0));
    }
}
