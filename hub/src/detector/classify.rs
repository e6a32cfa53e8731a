//! The detector's pure core: one raw record in, one classified record (or a dead letter) out.
//!
//! # Determinism
//! The output depends only on the record's bytes and the rules: `detected_at` is the reading's
//! own timestamp (the moment the classified conditions were observed), not the detector's clock.
//! So a reading re-read after a rebalance or a crash, or delivered twice, gives the very same
//! record — byte for byte under the same rules — and `rules_version` says which rules decided.

use emberline_core::{Envelope, EnvelopeError, Profile};

/// Why a record cannot be classified; final, so it belongs in the dead-letter topic.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DetectError {
    #[error("record has no payload")]
    Empty,
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    #[error(
        "the classified record is {size} bytes, more than Kafka takes ({max}, message.max.bytes)"
    )]
    TooLarge { size: usize, max: usize },
}

impl DetectError {
    /// A stable identifier for headers and metric labels.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Empty => "empty_record",
            Self::Envelope(error) => error.code(),
            Self::TooLarge { .. } => "too_large",
        }
    }
}

/// Decodes `payload` and adds `profile`'s classification.
pub fn classify_record(profile: &Profile, payload: Option<&[u8]>) -> Result<Envelope, DetectError> {
    let payload = payload
        .filter(|p| !p.is_empty())
        .ok_or(DetectError::Empty)?;
    let mut envelope = Envelope::from_slice(payload)?;
    let reading = &envelope.reading;
    let classification = profile.classification(reading.measurements(), reading.timestamp());
    envelope.classification = Some(classification);
    Ok(envelope)
}

#[cfg(test)]
mod tests {
    use super::*;
    use emberline_core::Intensity;

    fn raw(temperature: f64, humidity: f64) -> Vec<u8> {
        format!(
            r#"{{"v":1,"reading_id":"a:edge-1:7","agent_id":"edge-1","received_at":"2025-05-24T18:03:12Z",
            "protocol":"http","reading":{{"timestamp":"2025-05-24T18:03:11.5Z","latitude":38.5,
            "longitude":-120.2,"temperature":{temperature},"humidity":{humidity},"wind_speed":3,
            "wind_direction":90,"vegetation_density":0.3,"air_quality_index":20,
            "source_name":"s-1","site":"ridge"}}}}"#
        )
        .into_bytes()
    }

    #[test]
    fn the_same_record_always_gives_the_same_bytes() {
        let profile = Profile::builtin("default").unwrap();
        let first = classify_record(&profile, Some(&raw(45.0, 10.0))).unwrap();
        let second = classify_record(&profile, Some(&raw(45.0, 10.0))).unwrap();
        assert_eq!(first.to_vec(), second.to_vec());
        let classification = first.classification.unwrap();
        assert_eq!(classification.intensity, Intensity::High);
        assert_eq!(classification.detected_at, first.reading.timestamp());
        assert_eq!(classification.rules_version, profile.version);
        assert_eq!(
            first.reading.extra()["site"],
            "ridge",
            "extra fields travel on"
        );
    }

    #[test]
    fn seed_compat_gives_the_reference_labels() {
        let profile = Profile::builtin("seed-compat").unwrap();
        for (temperature, humidity, intensity, confidence) in [
            (41.0, 50.0, Intensity::High, 0.95),
            (36.0, 50.0, Intensity::Medium, 0.75),
            (25.0, 25.0, Intensity::Medium, 0.75),
            (25.0, 50.0, Intensity::Low, 0.45),
        ] {
            let envelope = classify_record(&profile, Some(&raw(temperature, humidity))).unwrap();
            let classification = envelope.classification.unwrap();
            assert_eq!(
                classification.intensity, intensity,
                "{temperature} {humidity}"
            );
            assert_eq!(classification.confidence_score, confidence);
        }
    }

    #[test]
    fn poison_is_named() {
        let profile = Profile::builtin("default").unwrap();
        let code = |payload: Option<&[u8]>| classify_record(&profile, payload).unwrap_err().code();
        assert_eq!(code(None), "empty_record");
        assert_eq!(code(Some(b"<html>")), "not_json");
        assert_eq!(code(Some(b"{\"v\":2}")), "unsupported_version");
        assert_eq!(code(Some(b"{\"v\":1}")), "invalid_envelope");
    }
}
