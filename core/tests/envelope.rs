//! The Kafka record: identity, versioning and what a reader does with a record it cannot use.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers may fail loudly

use emberline_core::{
    AgentId, Classification, Envelope, EnvelopeError, Intensity, Limits, Protocol, Reading,
    ReadingId,
};
use serde_json::json;
use time::macros::datetime;

fn reading(seq: Option<u64>) -> Reading {
    let mut payload = json!({
        "timestamp": "2025-05-24T18:03:11.123456Z",
        "latitude": 34.05, "longitude": -118.25, "temperature": 42.7, "humidity": 12,
        "wind_speed": 18.4, "wind_direction": 270.0, "vegetation_density": 0.82,
        "air_quality_index": 160.0, "source_name": "ridge:north-7", "note": "kept"
    });
    if let Some(seq) = seq {
        payload["seq"] = json!(seq);
    }
    Reading::from_json(
        payload,
        &Limits::default(),
        datetime!(2025-05-24 18:04:00 UTC),
    )
    .unwrap()
}

fn envelope() -> Envelope {
    let agent = AgentId::parse("edge-01").unwrap();
    let reading = reading(None);
    let id = ReadingId::for_reading(&reading, &agent, 9);
    Envelope::new(
        id,
        agent,
        datetime!(2025-05-24 18:03:11.5 UTC),
        Protocol::Mqtt,
        reading,
    )
}

#[test]
fn reading_ids_come_from_the_device_seq_or_the_buffer() {
    let agent = AgentId::parse("edge-01").unwrap();
    assert_eq!(
        ReadingId::for_reading(&reading(Some(41)), &agent, 9).as_str(),
        "d:ridge:north-7:41:1748109791123456000"
    );
    assert_eq!(
        ReadingId::for_reading(&reading(None), &agent, 9).as_str(),
        "a:edge-01:9"
    );
    // A device whose counter restarted does not collide with its past readings.
    let mut rebooted = json!({
        "timestamp": "2025-05-24T19:00:00Z", "latitude": 1, "longitude": 2, "temperature": 20,
        "humidity": 50, "wind_speed": 3, "wind_direction": 90, "vegetation_density": 0.3,
        "air_quality_index": 20, "source_name": "ridge:north-7", "seq": 41
    });
    rebooted["seq"] = json!(41);
    let rebooted = Reading::from_json(
        rebooted,
        &Limits::default(),
        datetime!(2025-05-24 19:01:00 UTC),
    )
    .unwrap();
    assert_ne!(
        ReadingId::for_reading(&rebooted, &agent, 9),
        ReadingId::for_reading(&reading(Some(41)), &agent, 9)
    );
    // The same device reading through another agent keeps its id, so PostgreSQL absorbs it.
    let other = AgentId::parse("edge-02").unwrap();
    assert_eq!(
        ReadingId::for_reading(&reading(Some(41)), &agent, 9),
        ReadingId::for_reading(&reading(Some(41)), &other, 1234)
    );
}

#[test]
fn agent_ids_are_safe_tokens() {
    assert!(AgentId::parse("edge-01.site_a").is_ok());
    for bad in ["", "has space", "slash/y", "ü", &"x".repeat(65)] {
        assert!(AgentId::parse(bad).is_err(), "{bad:?}");
    }
    assert!(serde_json::from_str::<AgentId>("\"bad id\"").is_err());
}

#[test]
fn envelope_has_the_documented_shape() {
    let value: serde_json::Value = serde_json::from_slice(&envelope().to_vec()).unwrap();
    assert_eq!(value["v"], json!(1));
    assert_eq!(value["reading_id"], json!("a:edge-01:9"));
    assert_eq!(value["agent_id"], json!("edge-01"));
    assert_eq!(value["protocol"], json!("mqtt"));
    assert_eq!(value["received_at"], json!("2025-05-24T18:03:11.5Z"));
    assert_eq!(
        value["reading"]["timestamp"],
        json!("2025-05-24T18:03:11.123456Z")
    );
    assert_eq!(value["reading"]["note"], json!("kept"));
    assert!(value.get("classification").is_none());
    assert_eq!(envelope().key(), "ridge:north-7");
}

#[test]
fn classified_envelope_round_trips() {
    let mut classified = envelope();
    classified.classification = Some(Classification {
        intensity: Intensity::High,
        confidence_score: 0.873,
        rules_fired: vec!["hot-and-dry".into()],
        rules_version: "default-2".into(),
        detected_at: datetime!(2025-05-24 18:03:12 UTC),
    });
    let bytes = classified.to_vec();
    let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(value["classification"]["intensity"], json!("high"));
    assert_eq!(Envelope::from_slice(&bytes).unwrap(), classified);
}

#[test]
fn unusable_records_say_why() {
    assert!(matches!(
        Envelope::from_slice(b"\x00garbage"),
        Err(EnvelopeError::NotJson(_))
    ));
    assert_eq!(
        Envelope::from_slice(b"{}"),
        Err(EnvelopeError::MissingVersion)
    );

    let mut future: serde_json::Value = serde_json::from_slice(&envelope().to_vec()).unwrap();
    future["v"] = json!(2);
    let bytes = serde_json::to_vec(&future).unwrap();
    assert_eq!(
        Envelope::from_slice(&bytes),
        Err(EnvelopeError::UnsupportedVersion { found: 2 })
    );

    let mut broken: serde_json::Value = serde_json::from_slice(&envelope().to_vec()).unwrap();
    broken["reading"]["source_name"] = json!("");
    let error = Envelope::from_slice(&serde_json::to_vec(&broken).unwrap()).unwrap_err();
    assert_eq!(error.code(), "invalid_envelope");
    assert!(error.to_string().contains("source_name"), "{error}");
}

#[test]
fn a_reading_on_the_wire_is_the_devices_flat_object() {
    let text = serde_json::to_string(&reading(Some(7))).unwrap();
    assert_eq!(
        text,
        r#"{"timestamp":"2025-05-24T18:03:11.123456Z","latitude":34.05,"longitude":-118.25,"temperature":42.7,"humidity":12.0,"wind_speed":18.4,"wind_direction":270.0,"vegetation_density":0.82,"air_quality_index":160.0,"source_name":"ridge:north-7","seq":7,"note":"kept"}"#
    );
    let back: Reading = serde_json::from_str(&text).unwrap();
    assert_eq!(back, reading(Some(7)));
    assert_eq!(back.extra()["note"], json!("kept"));

    let mut value: serde_json::Value = serde_json::from_str(&text).unwrap();
    value["seq"] = serde_json::Value::Null;
    let without_seq: Reading = serde_json::from_value(value.clone()).unwrap();
    assert_eq!(without_seq.seq(), None);

    value.as_object_mut().unwrap().remove("humidity");
    let error = serde_json::from_value::<Reading>(value.clone()).unwrap_err();
    assert!(
        error.to_string().contains("missing field `humidity`"),
        "{error}"
    );
    value["humidity"] = json!("wet");
    assert!(serde_json::from_value::<Reading>(value.clone()).is_err());
    value["humidity"] = json!(12);
    value["timestamp"] = json!("yesterday");
    assert!(serde_json::from_value::<Reading>(value).is_err());

    // A reference field given twice is refused, not last-one-wins.
    for (field, again) in [
        ("temperature", r#""temperature":999"#),
        ("seq", r#""seq":null"#),
        ("source_name", r#""source_name":"other""#),
    ] {
        let doubled = text.replacen('{', &format!("{{{again},"), 1);
        let error = serde_json::from_str::<Reading>(&doubled).unwrap_err();
        assert!(
            error
                .to_string()
                .contains(&format!("duplicate field `{field}`")),
            "{field}: {error}"
        );
    }
}
