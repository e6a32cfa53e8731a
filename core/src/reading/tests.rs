use serde_json::json;
use time::macros::datetime;

use super::*;

const NOW: OffsetDateTime = datetime!(2025-05-24 18:05:00 UTC);

/// The reference system's payload, as its Locust file sends it (humidity as an integer).
fn reference() -> Value {
    json!({
        "timestamp": "2025-05-24T18:03:11.123456Z",
        "latitude": 34.05,
        "longitude": -118.25,
        "temperature": 42.7,
        "humidity": 12,
        "wind_speed": 18.4,
        "wind_direction": 270.0,
        "vegetation_density": 0.82,
        "air_quality_index": 160.0,
        "source_name": "sensor-17"
    })
}

fn parse(value: Value) -> Result<Reading, ReadingError> {
    Reading::from_json(value, &Limits::default(), NOW)
}

fn with(field: &str, value: Value) -> Value {
    let mut payload = reference();
    payload[field] = value;
    payload
}

fn codes(error: &ReadingError) -> Vec<(&str, FieldErrorCode)> {
    error
        .fields()
        .iter()
        .map(|e| (e.field.as_str(), e.code))
        .collect()
}

#[test]
fn reference_payload_parses_from_bytes() {
    let body = serde_json::to_vec(&reference()).unwrap();
    let reading = Reading::parse(&body, &Limits::default(), NOW).unwrap();
    assert_eq!(
        reading.timestamp(),
        datetime!(2025-05-24 18:03:11.123456 UTC)
    );
    assert_eq!(reading.source_name(), "sensor-17");
    // Every value in its own field: the decoder and the envelope carry them as an array.
    let expected = Measurements {
        latitude: 34.05,
        longitude: -118.25,
        temperature: 42.7,
        humidity: 12.0,
        wind_speed: 18.4,
        wind_direction: 270.0,
        vegetation_density: 0.82,
        air_quality_index: 160.0,
    };
    assert_eq!(*reading.measurements(), expected);
    let again: Reading = serde_json::from_slice(&serde_json::to_vec(&reading).unwrap()).unwrap();
    assert_eq!(*again.measurements(), expected);
    assert_eq!(reading.seq(), None);
    assert!(reading.extra().is_empty());
}

#[test]
fn timestamps_take_offsets_and_up_to_nine_fraction_digits() {
    let offset = parse(with("timestamp", json!("2025-05-24T20:03:11+02:00"))).unwrap();
    assert_eq!(offset.timestamp(), datetime!(2025-05-24 18:03:11 UTC));
    let nanos = parse(with("timestamp", json!("2025-05-24T18:03:11.123456789Z"))).unwrap();
    assert_eq!(nanos.timestamp().nanosecond(), 123_456_789);
    let whole = parse(with("timestamp", json!("2025-05-24T18:03:11Z"))).unwrap();
    assert_eq!(whole.timestamp().nanosecond(), 0);

    let ten = parse(with("timestamp", json!("2025-05-24T18:03:11.1234567891Z"))).unwrap_err();
    assert_eq!(
        codes(&ten),
        [("timestamp", FieldErrorCode::InvalidTimestamp)]
    );
    for bad in [
        "2025-05-24 18:03:11",
        "2025-05-24T18:03:11",
        "yesterday",
        "2025-13-01T00:00:00Z",
    ] {
        let error = parse(with("timestamp", json!(bad))).unwrap_err();
        assert_eq!(
            codes(&error),
            [("timestamp", FieldErrorCode::InvalidTimestamp)],
            "{bad}"
        );
    }
}

#[test]
fn timestamps_beyond_the_allowed_skew_are_refused() {
    let within = parse(with("timestamp", json!("2025-05-24T18:09:59Z")));
    assert!(within.is_ok());
    let beyond = parse(with("timestamp", json!("2025-05-24T18:10:01Z"))).unwrap_err();
    assert_eq!(codes(&beyond), [("timestamp", FieldErrorCode::InFuture)]);
    // The past is fine: buffered readings arrive late.
    assert!(parse(with("timestamp", json!("2019-01-01T00:00:00Z"))).is_ok());
}

#[test]
fn integers_are_numbers() {
    let mut payload = reference();
    for field in [
        "latitude",
        "temperature",
        "humidity",
        "wind_speed",
        "air_quality_index",
    ] {
        payload[field] = json!(10);
    }
    let reading = parse(payload).unwrap();
    assert_eq!(reading.measurements().temperature, 10.0);
}

#[test]
fn unknown_fields_are_kept_and_travel_on() {
    let mut payload = reference();
    payload["battery_volts"] = json!(3.71);
    payload["firmware"] = json!({"version": "2.1", "flags": [1, 2]});
    let reading = parse(payload.clone()).unwrap();
    assert_eq!(reading.extra()["battery_volts"], json!(3.71));
    let written = serde_json::to_value(&reading).unwrap();
    assert_eq!(written["firmware"], payload["firmware"]);
    assert_eq!(written["source_name"], json!("sensor-17"));
}

/// `levels` arrays, one inside the other, around a number.
fn nested(levels: usize) -> String {
    format!("{}1{}", "[".repeat(levels), "]".repeat(levels))
}

#[test]
fn extra_fields_nested_too_deep_are_refused_by_name() {
    let body = |levels| {
        let mut payload = reference().to_string();
        payload.pop();
        format!("{payload},\"deep\":{},\"flat\":{{}}}}", nested(levels))
    };
    let parse = |levels| Reading::parse(body(levels).as_bytes(), &Limits::default(), NOW);
    let deepest = parse(MAX_EXTRA_DEPTH).unwrap();
    assert_eq!(deepest.extra()["flat"], json!({}));
    let error = parse(MAX_EXTRA_DEPTH + 1).unwrap_err();
    assert_eq!(codes(&error), [("deep", FieldErrorCode::TooDeep)]);
    // 126 levels still parse as JSON (the parser stops at 128): the field check is what stops
    // them, not the parser.
    let error = parse(126).unwrap_err();
    assert_eq!(codes(&error), [("deep", FieldErrorCode::TooDeep)]);

    // Whatever is accepted here, the bridge and the hub can read back in its envelope.
    let agent = crate::AgentId::parse("edge-1").unwrap();
    let id = crate::ReadingId::for_reading(&deepest, &agent, 1);
    let envelope = crate::Envelope::new(id, agent, NOW, crate::Protocol::Http, deepest);
    let decoded = crate::Envelope::from_slice(&envelope.to_vec()).unwrap();
    assert_eq!(
        decoded.reading.extra()["deep"],
        envelope.reading.extra()["deep"]
    );
}

#[test]
fn device_seq_is_optional_and_must_be_an_unsigned_integer() {
    assert_eq!(parse(with("seq", json!(41))).unwrap().seq(), Some(41));
    assert_eq!(
        parse(with("seq", json!(u64::MAX))).unwrap().seq(),
        Some(u64::MAX)
    );
    assert_eq!(parse(with("seq", Value::Null)).unwrap().seq(), None);
    for bad in [json!(-1), json!(1.5), json!("7")] {
        let error = parse(with("seq", bad.clone())).unwrap_err();
        assert_eq!(codes(&error), [("seq", FieldErrorCode::WrongType)], "{bad}");
    }
}

#[test]
fn every_bad_field_of_a_hostile_payload_is_named_at_once() {
    let hostile = json!({
        "timestamp": "not a time",
        "latitude": 91,
        "longitude": "west",
        "temperature": 1e300,
        "wind_speed": -3,
        "wind_direction": 360,
        "vegetation_density": true,
        "air_quality_index": [1],
        "source_name": "bad\u{0007}name",
        "seq": -5,
        "extra_is_fine": {"nested": [1, 2, 3]}
    });
    let error = parse(hostile).unwrap_err();
    assert_eq!(
        codes(&error),
        [
            ("timestamp", FieldErrorCode::InvalidTimestamp),
            ("latitude", FieldErrorCode::OutOfRange),
            ("longitude", FieldErrorCode::WrongType),
            ("temperature", FieldErrorCode::OutOfRange),
            ("humidity", FieldErrorCode::Missing),
            ("wind_speed", FieldErrorCode::OutOfRange),
            ("wind_direction", FieldErrorCode::OutOfRange),
            ("vegetation_density", FieldErrorCode::WrongType),
            ("air_quality_index", FieldErrorCode::WrongType),
            ("source_name", FieldErrorCode::ControlCharacter),
            ("seq", FieldErrorCode::WrongType),
        ]
    );
    let message = error.to_string();
    assert!(
        message.contains("latitude: must be in [-90, 90], got 91"),
        "{message}"
    );
}

#[test]
fn null_counts_as_missing() {
    let error = parse(with("humidity", Value::Null)).unwrap_err();
    assert_eq!(codes(&error), [("humidity", FieldErrorCode::Missing)]);
}

#[test]
fn broken_bodies_are_malformed_or_not_objects() {
    let limits = Limits::default();
    assert!(matches!(
        Reading::parse(b"{\"latitude\": ", &limits, NOW),
        Err(ReadingError::Malformed(_))
    ));
    assert!(matches!(
        Reading::parse(b"\xff\xfe", &limits, NOW),
        Err(ReadingError::Malformed(_))
    ));
    assert_eq!(
        Reading::parse(b"[1,2]", &limits, NOW),
        Err(ReadingError::NotAnObject("an array"))
    );
    assert_eq!(
        Reading::parse(b"null", &limits, NOW),
        Err(ReadingError::NotAnObject("null"))
    );
}

#[test]
fn source_name_rules() {
    let name_of = |n: usize| "ü".repeat(n);
    assert!(
        parse(with("source_name", json!(name_of(128)))).is_ok(),
        "128 characters, 256 bytes"
    );
    let long = parse(with("source_name", json!(name_of(129)))).unwrap_err();
    assert_eq!(codes(&long), [("source_name", FieldErrorCode::TooLong)]);
    let empty = parse(with("source_name", json!(""))).unwrap_err();
    assert_eq!(codes(&empty), [("source_name", FieldErrorCode::Empty)]);
    let newline = parse(with("source_name", json!("a\nb"))).unwrap_err();
    assert_eq!(
        codes(&newline),
        [("source_name", FieldErrorCode::ControlCharacter)]
    );
    // Markup is text, not an error: the map escapes it.
    let markup = parse(with("source_name", json!("<img src=x onerror=alert(1)>"))).unwrap();
    assert_eq!(markup.source_name(), "<img src=x onerror=alert(1)>");
}

#[test]
fn limits_are_configurable() {
    let limits = Limits {
        temperature: Bounds::inclusive(-40.0, 60.0),
        max_future_skew: time::Duration::ZERO,
        ..Limits::default()
    };
    let hot = Reading::from_json(with("temperature", json!(61)), &limits, NOW).unwrap_err();
    assert_eq!(codes(&hot), [("temperature", FieldErrorCode::OutOfRange)]);
    let ahead = with("timestamp", json!("2025-05-24T18:05:01Z"));
    let error = Reading::from_json(ahead, &limits, NOW).unwrap_err();
    assert_eq!(codes(&error), [("timestamp", FieldErrorCode::InFuture)]);
}

#[test]
fn errors_serialize_for_api_bodies() {
    let error = parse(with("humidity", json!(140))).unwrap_err();
    let body = serde_json::to_value(&error).unwrap();
    assert_eq!(body["error"], json!("invalid_reading"));
    assert_eq!(body["fields"][0]["field"], json!("humidity"));
    assert_eq!(body["fields"][0]["code"], json!("out_of_range"));
    assert_eq!(
        body["fields"][0]["message"],
        json!("must be in [0, 100], got 140")
    );
}

#[test]
fn deserializing_checks_what_the_type_guarantees() {
    let ok: Reading = serde_json::from_value(reference()).unwrap();
    assert_eq!(ok.source_name(), "sensor-17");
    let empty_name = serde_json::from_value::<Reading>(with("source_name", json!("")));
    assert!(empty_name.is_err());
    let missing = serde_json::from_value::<Reading>(with("humidity", Value::Null));
    assert!(missing.is_err());
}

#[test]
fn every_reference_name_is_its_own_field() {
    use super::wire::{Field, NUMBERS};
    for (index, name) in NUMBERS.iter().enumerate() {
        assert_eq!(Field::of(name), Some(Field::Number(index)), "{name}");
    }
    assert_eq!(Field::of("timestamp"), Some(Field::Timestamp));
    assert_eq!(Field::of("source_name"), Some(Field::SourceName));
    assert_eq!(Field::of("seq"), Some(Field::Seq));
    assert_eq!(Field::of("Latitude"), None);
}

#[test]
fn extra_field_names_keep_their_text_and_invalid_utf8_is_malformed() {
    let mut body = serde_json::to_vec(&reference()).unwrap();
    body.pop(); // the closing brace
    body.extend_from_slice(br#","r\u00e9gion":"nord","zone \"a\"":1,"#);
    body.extend_from_slice(b"\"\xc3\xa9t\xc3\xa9\":true}");
    let reading = Reading::parse(&body, &Limits::default(), NOW).unwrap();
    let names: Vec<&str> = reading.extra().keys().map(String::as_str).collect();
    assert_eq!(names.len(), 3);
    for name in ["r\u{e9}gion", "zone \"a\"", "\u{e9}t\u{e9}"] {
        assert!(names.contains(&name), "{name} in {names:?}");
    }
    // The same reading, carried in an envelope, decodes to the same extra fields.
    let again: Reading = serde_json::from_slice(&serde_json::to_vec(&reading).unwrap()).unwrap();
    assert_eq!(again, reading);

    let mut invalid = serde_json::to_vec(&reference()).unwrap();
    invalid.pop();
    invalid.extend_from_slice(b",\"\xff\xfe\":1}");
    let error = Reading::parse(&invalid, &Limits::default(), NOW).unwrap_err();
    assert!(matches!(error, ReadingError::Malformed(_)), "{error:?}");
    let error = serde_json::from_slice::<Reading>(&invalid).unwrap_err();
    assert!(error.is_data() || error.is_syntax(), "{error}");
}

#[test]
fn a_damaged_compact_record_is_an_error() {
    let reading = parse(reference()).unwrap();
    let mut compact = Vec::new();
    reading.write_compact(&mut compact);
    assert_eq!(Reading::from_compact(&compact).unwrap(), reading);
    // The temperature (third number, after the 16 bytes of timestamp) made NaN.
    let mut nan = compact.clone();
    nan[32..40].copy_from_slice(&f64::NAN.to_le_bytes());
    // Offsets and years that exist but that RFC 3339 cannot write: a day and more (`UtcOffset`
    // holds up to 25:59:59), seconds past the minute, a year before 0.
    let offset = |seconds: i32| {
        let mut damaged = compact.clone();
        damaged[12..16].copy_from_slice(&seconds.to_le_bytes());
        damaged
    };
    let mut year = compact.clone();
    year[..8].copy_from_slice(&(-62_200_000_000i64).to_le_bytes());
    // A flag this format does not have.
    let mut flags = compact.clone();
    flags[80] |= 4;
    // A byte more than the record holds.
    let mut longer = compact.clone();
    longer.push(b'x');
    // A control character in the source_name (its first byte, after the length).
    let mut name = compact.clone();
    let at = compact.len() - "sensor-17".len();
    name[at] = b'\n';
    for damaged in [
        nan,
        offset(26 * 3600),
        offset(24 * 3600),
        offset(1),
        year,
        flags,
        longer,
        name,
    ] {
        assert!(Reading::from_compact(&damaged).is_err(), "{damaged:?}");
    }
}
