//! Property tests: the parser, the shipped profiles and the envelope under random input.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers may fail loudly

use emberline_core::{
    AgentId, Classification, Envelope, Intensity, Limits, Measurements, Profile, Protocol, Reading,
    ReadingId,
};
use proptest::prelude::*;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::macros::datetime;

const NOW: OffsetDateTime = datetime!(2026-01-01 00:00:00 UTC);

/// Any JSON value, nested a few levels.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |x| x.is_finite())
            .prop_map(|x| json!(x)),
        ".{0,20}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(".{0,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

const FIELDS: [&str; 11] = [
    "timestamp",
    "latitude",
    "longitude",
    "temperature",
    "humidity",
    "wind_speed",
    "wind_direction",
    "vegetation_density",
    "air_quality_index",
    "source_name",
    "seq",
];

/// Objects with the reading's field names but values of any type.
fn reading_shaped_json() -> impl Strategy<Value = Value> {
    prop::collection::vec((prop::sample::select(FIELDS.to_vec()), any_json()), 0..12).prop_map(
        |pairs| Value::Object(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()),
    )
}

fn timestamp() -> impl Strategy<Value = OffsetDateTime> {
    (0i64..1_700_000_000, 0u32..1_000_000_000, -12i8..=14).prop_map(|(secs, nanos, hours)| {
        let utc = OffsetDateTime::from_unix_timestamp(secs)
            .unwrap()
            .replace_nanosecond(nanos)
            .unwrap();
        utc.to_offset(time::UtcOffset::from_hms(hours, 0, 0).unwrap())
    })
}

/// A payload inside the default limits, with optional seq and extra fields.
fn valid_payload() -> impl Strategy<Value = Value> {
    (
        timestamp(),
        (
            -90.0..=90.0f64,
            -180.0..=180.0f64,
            -90.0..=200.0f64,
            0.0..=100.0f64,
        ),
        (0.0..=500.0f64, 0.0..360.0f64, 0.0..=1.0f64, 0.0..=1000.0f64),
        "[^\\p{Cc}]{1,40}",
        prop::option::of(any::<u64>()),
        prop::collection::btree_map("x_[a-z]{1,6}", any_json(), 0..3),
    )
        .prop_map(
            |(ts, (lat, lon, t, h), (ws, wd, v, aqi), name, seq, extra)| {
                let stamp = ts
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap();
                let mut payload = json!({
                    "timestamp": stamp, "latitude": lat, "longitude": lon, "temperature": t,
                    "humidity": h, "wind_speed": ws, "wind_direction": wd, "vegetation_density": v,
                    "air_quality_index": aqi, "source_name": name,
                });
                if let Some(seq) = seq {
                    payload["seq"] = json!(seq);
                }
                for (key, value) in extra {
                    payload[key] = value;
                }
                payload
            },
        )
}

type Range = std::ops::RangeInclusive<f64>;

/// Measurements with temperature, humidity, wind speed, vegetation and AQI drawn from the given
/// ranges; position and wind direction anywhere.
fn measurements(
    t: Range,
    h: Range,
    ws: Range,
    v: Range,
    aqi: Range,
) -> impl Strategy<Value = Measurements> {
    (
        (-90.0..=90.0f64, -180.0..=180.0f64, 0.0..360.0f64),
        (t, h, ws, v, aqi),
    )
        .prop_map(
            |(
                (latitude, longitude, wind_direction),
                (temperature, humidity, wind_speed, vegetation_density, air_quality_index),
            )| {
                Measurements {
                    latitude,
                    longitude,
                    temperature,
                    humidity,
                    wind_speed,
                    wind_direction,
                    vegetation_density,
                    air_quality_index,
                }
            },
        )
}

/// Anywhere inside the default plausibility limits.
fn measurements_in_limits() -> impl Strategy<Value = Measurements> {
    measurements(
        -90.0..=200.0,
        0.0..=100.0,
        0.0..=500.0,
        0.0..=1.0,
        0.0..=1000.0,
    )
}

/// Inside every threshold of the reference detector (and so of the default profile): at most
/// 35 °C, at least 30 % humidity, wind at most 15 km/h, vegetation at most 0.5, AQI at most 100.
fn calm_measurements() -> impl Strategy<Value = Measurements> {
    measurements(
        -90.0..=35.0,
        30.0..=100.0,
        0.0..=15.0,
        0.0..=0.5,
        0.0..=100.0,
    )
}

/// The reference system's detector, transcribed directly from its code.
fn reference_detector(m: &Measurements) -> (&'static str, f64) {
    if m.temperature > 40.0
        || m.humidity < 20.0
        || m.wind_speed > 20.0
        || m.vegetation_density > 0.7
        || m.air_quality_index > 150.0
    {
        ("high", 0.95)
    } else if m.temperature > 35.0
        || m.humidity < 30.0
        || m.wind_speed > 15.0
        || m.vegetation_density > 0.5
        || m.air_quality_index > 100.0
    {
        ("medium", 0.75)
    } else {
        ("low", 0.45)
    }
}

/// Values on and around the reference thresholds, where a transcription slip would show.
fn near_thresholds() -> impl Strategy<Value = Measurements> {
    let around = |points: &'static [f64]| {
        (prop::sample::select(points), -1i8..=1).prop_map(|(p, nudge)| p + f64::from(nudge) * 1e-9)
    };
    (
        around(&[0.0, 35.0, 40.0, 60.0]),
        around(&[10.0, 20.0, 30.0, 50.0]),
        around(&[0.0, 15.0, 20.0, 40.0]),
        around(&[0.1, 0.5, 0.7, 0.9]),
        around(&[50.0, 100.0, 150.0, 300.0]),
    )
        .prop_map(
            |(temperature, humidity, wind_speed, vegetation_density, air_quality_index)| {
                Measurements {
                    latitude: 0.0,
                    longitude: 0.0,
                    wind_direction: 0.0,
                    temperature,
                    humidity,
                    wind_speed,
                    vegetation_density,
                    air_quality_index,
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn parsing_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = Reading::parse(&bytes, &Limits::default(), NOW);
    }

    #[test]
    fn parsing_never_panics_on_reading_shaped_json(value in reading_shaped_json()) {
        let bytes = serde_json::to_vec(&value).unwrap();
        if let Err(error) = Reading::parse(&bytes, &Limits::default(), NOW) {
            // Every reported field is one of the reading's.
            for field in error.fields() {
                prop_assert!(FIELDS.contains(&field.field.as_str()), "{}", field.field);
            }
        }
    }

    /// The streaming decode (`parse`, batch items) and the `Value` path (`from_json`) agree on
    /// every body: the same reading or the same errors.
    #[test]
    fn streaming_and_value_paths_agree(value in prop_oneof![reading_shaped_json(), valid_payload(), any_json()]) {
        let bytes = serde_json::to_vec(&value).unwrap();
        let streamed = Reading::parse(&bytes, &Limits::default(), NOW);
        let via_value = Reading::from_json(value, &Limits::default(), NOW);
        prop_assert_eq!(streamed, via_value);
    }

    /// A key given twice keeps its last value on both paths (as `serde_json::Value` does).
    #[test]
    fn a_repeated_key_keeps_its_last_value(payload in valid_payload(), field in prop::sample::select(&FIELDS[..]), extra in any_json()) {
        let body = serde_json::to_string(&payload).unwrap();
        let repeated = format!("{},{:?}:{}}}", &body[..body.len() - 1], field, extra);
        let streamed = Reading::parse(repeated.as_bytes(), &Limits::default(), NOW);
        let via_value = Reading::from_json(serde_json::from_str(&repeated).unwrap(), &Limits::default(), NOW);
        prop_assert_eq!(streamed, via_value);
    }

    #[test]
    fn valid_payloads_parse_and_survive_a_round_trip(payload in valid_payload()) {
        let reading = Reading::from_json(payload.clone(), &Limits::default(), NOW).unwrap();
        let written = serde_json::to_vec(&reading).unwrap();
        let again = Reading::parse(&written, &Limits::default(), NOW).unwrap();
        prop_assert_eq!(&again, &reading);
        prop_assert_eq!(reading.extra().len(), payload.as_object().unwrap().len() - 10 - usize::from(reading.seq().is_some()));
    }

    /// The buffer's compact form gives back the same reading, and so the same JSON; a record
    /// cut short anywhere is an error, never another reading.
    #[test]
    fn the_compact_form_gives_back_the_same_reading(payload in valid_payload()) {
        let reading = Reading::from_json(payload, &Limits::default(), NOW).unwrap();
        let mut compact = Vec::new();
        reading.write_compact(&mut compact);
        let back = Reading::from_compact(&compact).unwrap();
        prop_assert_eq!(serde_json::to_vec(&back).unwrap(), serde_json::to_vec(&reading).unwrap());
        prop_assert_eq!(back, reading);
        for len in 0..compact.len() {
            prop_assert!(Reading::from_compact(&compact[..len]).is_err(), "cut at {}", len);
        }
    }

    #[test]
    fn a_reading_inside_every_threshold_is_low(m in calm_measurements()) {
        for name in ["default", "seed-compat"] {
            let assessment = Profile::builtin(name).unwrap().classify(&m);
            prop_assert_eq!(assessment.intensity, Intensity::Low, "{} {:?}", name, assessment);
            prop_assert!(assessment.rules_fired.is_empty());
        }
    }

    #[test]
    fn seed_compat_agrees_with_the_reference_code(m in measurements_in_limits()) {
        let assessment = Profile::builtin("seed-compat").unwrap().classify(&m);
        let (label, confidence) = reference_detector(&m);
        prop_assert_eq!(assessment.intensity.as_str(), label);
        prop_assert_eq!(assessment.confidence, confidence);
    }

    #[test]
    fn seed_compat_agrees_on_threshold_edges(m in near_thresholds()) {
        let assessment = Profile::builtin("seed-compat").unwrap().classify(&m);
        let (label, confidence) = reference_detector(&m);
        prop_assert_eq!(assessment.intensity.as_str(), label, "{:?}", m);
        prop_assert_eq!(assessment.confidence, confidence);
    }

    #[test]
    fn default_confidence_stays_in_its_band(m in measurements_in_limits()) {
        let assessment = Profile::builtin("default").unwrap().classify(&m);
        let (min, max) = match assessment.intensity {
            Intensity::High => (0.70, 0.99),
            Intensity::Medium => (0.55, 0.90),
            Intensity::Low => (0.50, 0.95),
        };
        prop_assert!((min..=max).contains(&assessment.confidence), "{:?}", assessment);
        prop_assert_eq!(assessment.intensity == Intensity::Low, assessment.rules_fired.is_empty());
    }

    #[test]
    fn envelopes_round_trip_through_json(
        payload in valid_payload(),
        agent in "[A-Za-z0-9._-]{1,64}",
        buffer_seq in any::<u64>(),
        received_at in timestamp(),
        mqtt in any::<bool>(),
        classified in any::<bool>(),
    ) {
        let reading = Reading::from_json(payload, &Limits::default(), NOW).unwrap();
        let agent = AgentId::parse(agent).unwrap();
        let id = ReadingId::for_reading(&reading, &agent, buffer_seq);
        let protocol = if mqtt { Protocol::Mqtt } else { Protocol::Http };
        let mut envelope = Envelope::new(id, agent, received_at, protocol, reading);
        if classified {
            envelope.classification = Some(Profile::builtin("default").unwrap()
                .classification(envelope.reading.measurements(), received_at));
        }
        let decoded = Envelope::from_slice(&envelope.to_vec()).unwrap();
        // PartialEq on timestamps compares instants: check the offsets survive too.
        prop_assert_eq!(decoded.reading.timestamp().offset(), envelope.reading.timestamp().offset());
        prop_assert_eq!(decoded.received_at.offset(), envelope.received_at.offset());
        prop_assert_eq!(decoded, envelope);
    }
}

#[test]
fn classification_type_is_what_the_detector_publishes() {
    // Compile-time check that the public pieces fit together as the hub will use them.
    let classification: Classification = Profile::builtin("seed-compat").unwrap().classification(
        &Measurements {
            latitude: 0.0,
            longitude: 0.0,
            temperature: 20.0,
            humidity: 50.0,
            wind_speed: 5.0,
            wind_direction: 0.0,
            vegetation_density: 0.2,
            air_quality_index: 30.0,
        },
        NOW,
    );
    assert_eq!(
        (classification.intensity, classification.confidence_score),
        (Intensity::Low, 0.45)
    );
}
