//! Request bodies: content type and encoding, bounded gzip decompression, and a batch checked
//! line by line into the records to produce. Pure byte work, run off the async threads.

use std::io::Read as _;

use axum::http::HeaderMap;
use axum::http::header::{CONTENT_ENCODING, CONTENT_TYPE};
use bytes::Bytes;
use emberline_core::batch::{self, BatchError};
use emberline_core::{AgentId, ENVELOPE_VERSION, EnvelopeError};
use flate2::read::MultiGzDecoder;

use crate::error::ApiError;
use crate::limit::Reservation;

/// Decompressed bytes are reserved in steps of this size.
const RESERVE_STEP: usize = 1024 * 1024;
const READ_CHUNK: usize = 64 * 1024;

/// How the body was compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Identity,
    Gzip,
}

/// One record for Kafka: a batch line's exact bytes and its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub key: String,
    pub payload: Bytes,
}

/// Checks `Content-Type` (when given, it must be `expected`) and `Content-Encoding`.
pub fn encoding(headers: &HeaderMap, expected: &str) -> Result<Encoding, ApiError> {
    if let Some(value) = headers.get(CONTENT_TYPE) {
        let given = value.to_str().unwrap_or_default();
        let essence = given.split(';').next().unwrap_or_default().trim();
        if !essence.eq_ignore_ascii_case(expected) {
            return Err(ApiError::UnsupportedMedia(format!(
                "Content-Type {given:?} is not accepted here: send {expected}"
            )));
        }
    }
    let encoding = headers
        .get(CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or_default().trim().to_ascii_lowercase());
    match encoding.as_deref() {
        None | Some("" | "identity") => Ok(Encoding::Identity),
        Some("gzip" | "x-gzip") => Ok(Encoding::Gzip),
        Some(other) => Err(ApiError::UnsupportedMedia(format!(
            "Content-Encoding {other:?} is not supported: send gzip or identity"
        ))),
    }
}

/// The body as sent, decompressed to at most `max` bytes; every decompressed byte is added to
/// `reservation` before it is held.
pub fn decompress(
    body: Bytes,
    encoding: Encoding,
    max: u64,
    reservation: &mut Reservation,
    retry_after: u32,
) -> Result<Bytes, ApiError> {
    if encoding == Encoding::Identity {
        return Ok(body);
    }
    let overloaded = |e: crate::limit::Overloaded| ApiError::Overloaded {
        limit: e.limit,
        retry_after,
    };
    let mut decoder = MultiGzDecoder::new(&body[..]).take(max.saturating_add(1));
    let hint = size_hint(&body).min(usize::try_from(max).unwrap_or(usize::MAX));
    reservation.grow(hint).map_err(overloaded)?;
    let mut out: Vec<u8> = Vec::with_capacity(hint);
    let mut chunk = vec![0; READ_CHUNK];
    loop {
        let n = decoder.read(&mut chunk).map_err(|error| {
            ApiError::malformed(format!("the gzip body cannot be decompressed: {error}"))
        })?;
        if n == 0 {
            return Ok(Bytes::from(out));
        }
        if (out.len() + n) as u64 > max {
            return Err(ApiError::TooLarge { limit: max });
        }
        if out.len() + n > out.capacity() {
            reservation.grow(RESERVE_STEP).map_err(overloaded)?;
            out.reserve_exact(RESERVE_STEP.max(n));
        }
        out.extend_from_slice(&chunk[..n]);
    }
}

/// The uncompressed size a gzip trailer claims (of its last member, modulo 4 GiB): a hint to
/// size the buffer once, never trusted beyond the caller's cap.
fn size_hint(gzip: &[u8]) -> usize {
    match gzip.last_chunk::<4>() {
        Some(isize) if gzip.len() >= 18 => u32::from_le_bytes(*isize) as usize,
        _ => 0,
    }
}

/// Seconds an agent sending a newer envelope version is asked to wait: an upgrade of the bridge
/// takes minutes, and the agent buffers meanwhile.
const NEWER_ENVELOPE_RETRY_AFTER_SECS: u32 = 30;

/// Checks every line of a batch; with `agent` known (tokens configured), every envelope must come
/// from it. Any bad line refuses the whole batch (400), but a newer envelope version than this
/// bridge reads is answered 503: the agent keeps the batch until the bridge is upgraded. A record larger than `max_record` (payload and
/// key) refuses it with 413: Kafka would refuse that record every time, and an agent answered
/// 413 splits its batch until the one reading is alone, then sets it aside.
pub fn records(
    body: &Bytes,
    agent: Option<&AgentId>,
    max_record: usize,
) -> Result<Vec<Record>, ApiError> {
    let lines = batch::decode(body).map_err(|error| match error {
        BatchError::Empty => ApiError::malformed("the batch has no records"),
        BatchError::Line {
            line,
            error: EnvelopeError::UnsupportedVersion { found },
        } if found > u64::from(ENVELOPE_VERSION) => ApiError::NewerEnvelope {
            line,
            found,
            retry_after: NEWER_ENVELOPE_RETRY_AFTER_SECS,
        },
        BatchError::Line { line, .. } => ApiError::Malformed {
            message: error.to_string(),
            line: Some(line),
        },
    })?;
    let mut records = Vec::with_capacity(lines.len());
    for (index, line) in lines.into_iter().enumerate() {
        if let Some(agent) = agent.filter(|agent| **agent != line.envelope.agent_id) {
            return Err(ApiError::AgentMismatch(format!(
                "record {} comes from agent {} but the token belongs to agent {agent}",
                index + 1,
                line.envelope.agent_id
            )));
        }
        let key = line.envelope.key();
        let size = line.bytes.len() + key.len() + emberline_service::kafka::RECORD_OVERHEAD;
        if size > max_record {
            return Err(ApiError::RecordTooLarge {
                record: index + 1,
                size,
                limit: max_record,
            });
        }
        records.push(Record {
            key: key.to_owned(),
            payload: body.slice_ref(line.bytes),
        });
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use axum::http::HeaderValue;
    use flate2::Compression;
    use flate2::write::GzEncoder;

    use super::*;
    use crate::limit::InFlight;

    fn gzip(data: &[u8]) -> Bytes {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(data).unwrap();
        Bytes::from(encoder.finish().unwrap())
    }

    #[test]
    fn gzip_is_bounded_and_reserved() {
        let in_flight = InFlight::new(64 * 1024 * 1024);
        let mut reservation = in_flight.reserve(0).unwrap();
        let data = vec![b'x'; 3 * 1024 * 1024];
        let out = decompress(gzip(&data), Encoding::Gzip, 4 << 20, &mut reservation, 1).unwrap();
        assert_eq!(out, data);
        assert!(reservation.bytes() >= data.len());

        let bomb = gzip(&vec![0; 16 * 1024 * 1024]);
        let error = decompress(bomb, Encoding::Gzip, 4 << 20, &mut reservation, 1).unwrap_err();
        assert_eq!(error.code(), "too_large");

        let mut small = InFlight::new(2 * 1024 * 1024).reserve(0).unwrap();
        let error = decompress(gzip(&data), Encoding::Gzip, 4 << 20, &mut small, 1).unwrap_err();
        assert_eq!(error.code(), "overloaded");

        let error = decompress(
            Bytes::from_static(b"not gzip"),
            Encoding::Gzip,
            99,
            &mut small,
            1,
        );
        assert_eq!(error.unwrap_err().code(), "malformed");
    }

    #[test]
    fn content_type_and_encoding_are_checked() {
        let mut headers = HeaderMap::new();
        assert_eq!(
            encoding(&headers, "application/x-ndjson").unwrap(),
            Encoding::Identity
        );
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-ndjson; charset=utf-8"),
        );
        headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        assert_eq!(
            encoding(&headers, "application/x-ndjson").unwrap(),
            Encoding::Gzip
        );
        headers.insert(CONTENT_ENCODING, HeaderValue::from_static("br"));
        assert_eq!(
            encoding(&headers, "application/x-ndjson")
                .unwrap_err()
                .code(),
            "unsupported_media_type"
        );
        headers.insert(CONTENT_ENCODING, HeaderValue::from_static("identity"));
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        assert!(encoding(&headers, "application/x-ndjson").is_err());
    }
}
