//! The rules engine through its public API: the shipped profiles, confidence, validation.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers may fail loudly

use emberline_core::rules::BUILTIN_PROFILES;
use emberline_core::{Intensity, Measurements, Profile, RulesError};
use time::macros::datetime;

/// A quiet afternoon: nothing near any threshold.
fn calm() -> Measurements {
    Measurements {
        latitude: 34.05,
        longitude: -118.25,
        temperature: 22.0,
        humidity: 55.0,
        wind_speed: 8.0,
        wind_direction: 180.0,
        vegetation_density: 0.3,
        air_quality_index: 40.0,
    }
}

fn default_profile() -> Profile {
    Profile::builtin("default").unwrap()
}

fn seed_compat() -> Profile {
    Profile::builtin("seed-compat").unwrap()
}

#[test]
fn every_builtin_profile_loads() {
    for name in BUILTIN_PROFILES {
        let profile = Profile::builtin(name).unwrap();
        assert_eq!(profile.name, name);
        assert!(!profile.rules.is_empty());
        let text = Profile::builtin_toml(name).unwrap();
        assert_eq!(Profile::from_toml(text).unwrap(), profile);
    }
    assert!(matches!(
        Profile::builtin("nope"),
        Err(RulesError::UnknownBuiltin(_))
    ));
}

#[test]
fn the_seeds_rule_hot_and_dry_is_high() {
    let reading = Measurements {
        temperature: 42.0,
        humidity: 15.0,
        ..calm()
    };
    let assessment = default_profile().classify(&reading);
    assert_eq!(assessment.intensity, Intensity::High);
    assert_eq!(assessment.rules_fired, ["hot-and-dry", "warm-and-dry"]);
}

/// Only the seed's rule makes a reading high; the other rules weigh in.
#[test]
fn nothing_but_hot_and_dry_is_high_by_default() {
    let cold_windy_fuel = Measurements {
        temperature: -20.0,
        humidity: 24.0,
        wind_speed: 31.0,
        vegetation_density: 0.61,
        ..calm()
    };
    assert_eq!(
        default_profile().classify(&cold_windy_fuel).intensity,
        Intensity::Medium
    );
    let smoky_heat = Measurements {
        air_quality_index: 400.0,
        temperature: 39.0,
        ..calm()
    };
    assert_eq!(
        default_profile().classify(&smoky_heat).intensity,
        Intensity::Medium
    );
}

#[test]
fn hot_alone_or_dry_alone_is_not_high_by_default() {
    let hot_humid = Measurements {
        temperature: 45.0,
        humidity: 40.0,
        ..calm()
    };
    assert_eq!(
        default_profile().classify(&hot_humid).intensity,
        Intensity::Low
    );
    let cool_dry = Measurements {
        temperature: 25.0,
        humidity: 10.0,
        ..calm()
    };
    assert_eq!(
        default_profile().classify(&cool_dry).intensity,
        Intensity::Low
    );
}

#[test]
fn further_default_rules_weigh_wind_fuel_smoke_and_fire_weather() {
    let cases = [
        (
            Measurements {
                wind_speed: 45.0,
                humidity: 22.0,
                vegetation_density: 0.8,
                ..calm()
            },
            Intensity::Medium,
            "wind-driven-dry-fuel",
        ),
        (
            Measurements {
                air_quality_index: 260.0,
                temperature: 38.0,
                ..calm()
            },
            Intensity::Medium,
            "smoke-and-heat",
        ),
        (
            Measurements {
                air_quality_index: 170.0,
                ..calm()
            },
            Intensity::Medium,
            "unhealthy-air",
        ),
        (
            Measurements {
                vegetation_density: 0.9,
                humidity: 25.0,
                ..calm()
            },
            Intensity::Medium,
            "dry-dense-fuel",
        ),
        (
            Measurements {
                temperature: 30.0,
                humidity: 12.0,
                wind_speed: 70.0,
                ..calm()
            },
            Intensity::Medium,
            "fire-weather",
        ),
    ];
    for (reading, intensity, rule) in cases {
        let assessment = default_profile().classify(&reading);
        assert_eq!(assessment.intensity, intensity, "{rule}");
        assert!(
            assessment.rules_fired.iter().any(|r| r == rule),
            "{rule}: {:?}",
            assessment.rules_fired
        );
    }
}

#[test]
fn computed_confidence_grows_with_margin() {
    let profile = default_profile();
    let barely = Measurements {
        temperature: 40.5,
        humidity: 19.5,
        ..calm()
    };
    let clearly = Measurements {
        temperature: 48.0,
        humidity: 8.0,
        ..calm()
    };
    let barely = profile.classify(&barely);
    let clearly = profile.classify(&clearly);
    assert_eq!(
        (barely.intensity, clearly.intensity),
        (Intensity::High, Intensity::High)
    );
    assert!(
        clearly.confidence > barely.confidence,
        "{clearly:?} vs {barely:?}"
    );
    assert!(barely.confidence >= 0.70 && clearly.confidence <= 0.99);
}

#[test]
fn computed_confidence_grows_with_agreement() {
    let profile = default_profile();
    let one = Measurements {
        temperature: 44.0,
        humidity: 15.0,
        ..calm()
    };
    // Same margins on hot-and-dry, and smoke-and-heat agrees.
    let two = Measurements {
        air_quality_index: 240.0,
        ..one
    };
    let one = profile.classify(&one);
    let two = profile.classify(&two);
    assert!(two.confidence > one.confidence, "{two:?} vs {one:?}");
}

#[test]
fn low_is_less_certain_near_a_threshold() {
    let profile = default_profile();
    let quiet = profile.classify(&calm());
    let near = profile.classify(&Measurements {
        temperature: 34.5,
        humidity: 31.0,
        ..calm()
    });
    assert_eq!(
        (quiet.intensity, near.intensity),
        (Intensity::Low, Intensity::Low)
    );
    assert_eq!(quiet.confidence, 0.95);
    assert!(near.confidence < quiet.confidence);
    assert!(near.confidence >= 0.50);
    assert!(quiet.rules_fired.is_empty());
}

#[test]
fn seed_compat_gives_the_reference_labels_and_confidences() {
    let profile = seed_compat();
    let cases = [
        (
            Measurements {
                temperature: 41.0,
                ..calm()
            },
            Intensity::High,
            0.95,
        ),
        (
            Measurements {
                humidity: 19.0,
                ..calm()
            },
            Intensity::High,
            0.95,
        ),
        (
            Measurements {
                wind_speed: 21.0,
                ..calm()
            },
            Intensity::High,
            0.95,
        ),
        (
            Measurements {
                vegetation_density: 0.71,
                ..calm()
            },
            Intensity::High,
            0.95,
        ),
        (
            Measurements {
                air_quality_index: 151.0,
                ..calm()
            },
            Intensity::High,
            0.95,
        ),
        (
            Measurements {
                temperature: 36.0,
                ..calm()
            },
            Intensity::Medium,
            0.75,
        ),
        (
            Measurements {
                humidity: 29.0,
                ..calm()
            },
            Intensity::Medium,
            0.75,
        ),
        (
            Measurements {
                wind_speed: 16.0,
                ..calm()
            },
            Intensity::Medium,
            0.75,
        ),
        (
            Measurements {
                vegetation_density: 0.6,
                ..calm()
            },
            Intensity::Medium,
            0.75,
        ),
        (
            Measurements {
                air_quality_index: 101.0,
                ..calm()
            },
            Intensity::Medium,
            0.75,
        ),
        // Thresholds are strict, as in the reference code.
        (
            Measurements {
                temperature: 40.0,
                ..calm()
            },
            Intensity::Medium,
            0.75,
        ),
        (
            Measurements {
                temperature: 35.0,
                humidity: 30.0,
                ..calm()
            },
            Intensity::Low,
            0.45,
        ),
        (calm(), Intensity::Low, 0.45),
    ];
    for (reading, intensity, confidence) in cases {
        let assessment = profile.classify(&reading);
        assert_eq!(
            (assessment.intensity, assessment.confidence),
            (intensity, confidence),
            "{reading:?}"
        );
    }
}

#[test]
fn classification_records_the_rules_version() {
    let at = datetime!(2025-05-24 18:03:12 UTC);
    let hot = Measurements {
        temperature: 42.0,
        humidity: 10.0,
        ..calm()
    };
    let classification = default_profile().classification(&hot, at);
    assert_eq!(classification.rules_version, "default-2");
    assert_eq!(classification.detected_at, at);
    assert_eq!(classification.intensity, Intensity::High);
}

#[test]
fn classifying_is_deterministic() {
    let profile = default_profile();
    let reading = Measurements {
        temperature: 39.0,
        humidity: 21.0,
        wind_speed: 33.0,
        ..calm()
    };
    let first = profile.classify(&reading);
    for _ in 0..100 {
        assert_eq!(profile.classify(&reading), first);
    }
}

fn refused(toml: &str) -> String {
    match Profile::from_toml(toml) {
        Ok(profile) => panic!("accepted {profile:?}"),
        Err(error) => error.to_string(),
    }
}

const HEADER: &str = r#"
name = "test"
version = "t-1"
[confidence]
mode = "fixed"
high = 0.9
medium = 0.6
low = 0.3
"#;

#[test]
fn profiles_with_mistakes_are_refused_with_a_reason() {
    let cases = [
        (
            "[[rule]]\nname = \"r\"\nintensity = \"high\"\nwhen = [{ var = \"temprature\", op = \">\", value = 1 }]",
            "temprature",
        ),
        (
            "[[rule]]\nname = \"r\"\nintensity = \"high\"\nwhen = [{ var = \"humidity\", op = \"=\", value = 1 }]",
            "=",
        ),
        (
            "[[rule]]\nname = \"r\"\nintensity = \"low\"\nwhen = [{ var = \"humidity\", op = \"<\", value = 1 }]",
            "medium\" or \"high",
        ),
        (
            "[[rule]]\nname = \"r\"\nintensity = \"high\"\nwhen = []",
            "at least one condition",
        ),
        (
            "[[rule]]\nname = \"r\"\nintensity = \"high\"\nwhen = [{ var = \"humidity\", op = \"<\", value = 1, span = 0 }]",
            "span",
        ),
        (
            "[[rule]]\nname = \"r\"\nintensity = \"high\"\nwhen = [{ var = \"humidity\", op = \"<\", value = nan }]",
            "finite",
        ),
        (
            "[[rule]]\nname = \"r\"\nintensity = \"high\"\nwhen = [{ var = \"humidity\", op = \"<\", value = 1 }]\n[[rule]]\nname = \"r\"\nintensity = \"medium\"\nwhen = [{ var = \"humidity\", op = \"<\", value = 2 }]",
            "two rules are named",
        ),
        (
            "[[rule]]\nname = \"r\"\nintensity = \"high\"\nwhen = [{ var = \"humidity\", op = \"<\", value = 1 }]\nthreshold = 3",
            "threshold",
        ),
    ];
    for (rules, expected) in cases {
        let message = refused(&format!("{HEADER}\n{rules}"));
        assert!(
            message.contains(expected),
            "expected {expected:?} in {message:?}"
        );
    }
}

#[test]
fn confidence_settings_are_checked() {
    let bad_band = "name = \"x\"\nversion = \"1\"\n[confidence]\nmode = \"computed\"\nhigh = { min = 0.9, max = 0.5 }\nmedium = { min = 0.5, max = 0.9 }\nlow = { min = 0.5, max = 0.9 }";
    assert!(refused(bad_band).contains("band high"));
    let bad_fixed = "name = \"x\"\nversion = \"1\"\n[confidence]\nmode = \"fixed\"\nhigh = 1.5\nmedium = 0.5\nlow = 0.1";
    assert!(refused(bad_fixed).contains("0..=1"));
    let no_version = "name = \"x\"\nversion = \" \"\n[confidence]\nmode = \"fixed\"\nhigh = 1\nmedium = 0.5\nlow = 0.1";
    assert!(refused(no_version).contains("version"));
}

#[test]
fn ffwi_is_available_to_rules() {
    let toml = format!(
        "{HEADER}\n[[rule]]\nname = \"windy\"\nintensity = \"medium\"\nwhen = [{{ var = \"ffwi\", op = \">=\", value = 60 }}]"
    );
    let profile = Profile::from_toml(&toml).unwrap();
    let gale = Measurements {
        humidity: 20.0,
        temperature: 30.0,
        wind_speed: 80.0,
        ..calm()
    };
    assert_eq!(profile.classify(&gale).intensity, Intensity::Medium);
    assert_eq!(profile.classify(&calm()).intensity, Intensity::Low);
}
