//! `POST /ingest` (one reading, the reference payload) and `POST /v1/readings` (a batch: a JSON
//! array or NDJSON). A `202` is sent only after the buffer has committed the readings.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use bytes::Bytes;
use emberline_core::{Protocol, Reading, ReadingError, ReadingId, Unchecked};
use serde::Serialize;
use serde_json::value::RawValue;
use time::OffsetDateTime;

use super::{ApiError, AppState};
use crate::alerts::{prepare_all, publish_all};
use crate::buffer::{Accepted, BufferError, Incoming};

const JSON: &str = "application/json";
const NDJSON: &str = "application/x-ndjson";

pub async fn single(
    State(state): State<AppState>,
    Media(media): Media,
    body: Bytes,
) -> Result<(StatusCode, Json<SingleAnswer>), ApiError> {
    if media != Some(JSON) {
        return Err(ApiError::UnsupportedMediaType(JSON));
    }
    let now = OffsetDateTime::now_utc();
    let reading = Reading::parse(&body, &state.limits, now)
        .inspect_err(|_| state.metrics.reading("http", "invalid", 1))?;
    let incoming = Incoming {
        reading,
        protocol: Protocol::Http,
        received_at: now,
    };
    let accepted = append(&state, vec![incoming]).await?;
    let answer = SingleAnswer {
        status: "accepted",
        reading_id: accepted.into_iter().next().map(|a| a.reading_id),
    };
    Ok((StatusCode::ACCEPTED, Json(answer)))
}

#[derive(Serialize)]
pub struct SingleAnswer {
    status: &'static str,
    reading_id: Option<ReadingId>,
}

/// One item of a batch answer; the order of the batch is kept.
#[derive(Serialize)]
#[serde(tag = "status", rename_all = "lowercase")]
enum ItemResult {
    Accepted { index: usize, reading_id: ReadingId },
    Rejected { index: usize, error: ReadingError },
}

#[derive(Serialize)]
pub struct BatchAnswer {
    accepted: usize,
    rejected: usize,
    results: Vec<ItemResult>,
}

pub async fn batch(
    State(state): State<AppState>,
    Media(media): Media,
    body: Bytes,
) -> Result<(StatusCode, Json<BatchAnswer>), ApiError> {
    let limits = (state.max_reading_bytes, state.max_batch_items);
    let items = batch_items(media, &body, limits)?;
    let now = OffsetDateTime::now_utc();
    let mut rejected = Vec::new();
    let mut valid = Vec::with_capacity(items.len());
    for (index, item) in items.into_iter().enumerate() {
        match item.and_then(|unchecked| Reading::check(unchecked, &state.limits, now)) {
            Ok(reading) => valid.push((
                index,
                Incoming {
                    reading,
                    protocol: Protocol::Http,
                    received_at: now,
                },
            )),
            Err(error) => rejected.push(ItemResult::Rejected { index, error }),
        }
    }
    state
        .metrics
        .reading("http", "invalid", rejected.len() as u64);
    let (indices, incoming): (Vec<usize>, Vec<Incoming>) = valid.into_iter().unzip();
    let accepted = if incoming.is_empty() {
        Vec::new()
    } else {
        append(&state, incoming).await?
    };
    let status = if accepted.is_empty() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::ACCEPTED
    };
    let answer = BatchAnswer {
        accepted: accepted.len(),
        rejected: rejected.len(),
        results: merge_results(indices, accepted, rejected),
    };
    Ok((status, Json(answer)))
}

/// A batch item as decoded, or why it is not JSON at all (NDJSON lines are decoded one by one).
type Item = Result<Unchecked, ReadingError>;

/// The batch's items, from a JSON array or NDJSON; an empty batch is refused, and so is one of
/// more than `max_items` items (413, counted as it is read: nothing past the limit is held). An
/// item larger than `max_item` (the most a reading sent alone may be) is that item's error: Kafka
/// takes a record of at most about 1 MB, and a reading past it would be set aside later, after
/// its `202`.
fn batch_items(
    media: Option<&'static str>,
    body: &[u8],
    (max_item, max_items): (usize, usize),
) -> Result<Vec<Item>, ApiError> {
    let items: Vec<Item> = match media {
        Some(JSON) => {
            let mut json = serde_json::Deserializer::from_slice(body);
            let over = std::cell::Cell::new(false);
            let capped = Capped {
                max: max_items,
                over: &over,
            };
            let raw = serde::de::DeserializeSeed::deserialize(capped, &mut json)
                .and_then(|raw| json.end().map(|()| raw))
                .map_err(|error| match over.get() {
                    true => ApiError::TooManyItems(max_items),
                    false => ApiError::Batch(format!("body is not a JSON array: {error}")),
                })?;
            raw.into_iter()
                .map(|raw| item(raw.get().as_bytes(), max_item))
                .collect()
        }
        Some(NDJSON) => {
            let lines = body
                .split(|b| *b == b'\n')
                .filter(|line| !line.iter().all(u8::is_ascii_whitespace));
            let mut items = Vec::new();
            for line in lines {
                if items.len() == max_items {
                    return Err(ApiError::TooManyItems(max_items));
                }
                items.push(item(line, max_item));
            }
            items
        }
        _ => {
            return Err(ApiError::UnsupportedMediaType(
                "application/json (an array) or application/x-ndjson",
            ));
        }
    };
    if items.is_empty() {
        return Err(ApiError::Batch("the batch holds no readings".into()));
    }
    Ok(items)
}

/// Reads a JSON array's items as raw JSON, refusing it past `max` items as it reads; `over`
/// says afterwards whether that was why it stopped.
struct Capped<'a> {
    max: usize,
    over: &'a std::cell::Cell<bool>,
}

impl<'de> serde::de::DeserializeSeed<'de> for Capped<'_> {
    type Value = Vec<&'de RawValue>;

    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Capped<'_> {
    type Value = Vec<&'de RawValue>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON array of readings")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            if items.len() == self.max {
                self.over.set(true);
                return Err(serde::de::Error::custom("too many items"));
            }
            items.push(item);
        }
        Ok(items)
    }
}

/// One item's JSON decoded, unless it is larger than `max`; JSON that does not decode is that
/// item's error.
fn item(json: &[u8], max: usize) -> Item {
    if json.len() > max {
        return Err(ReadingError::TooLarge(max));
    }
    serde_json::from_slice(json).map_err(|error| ReadingError::Malformed(error.to_string()))
}

/// Accepted and rejected items back in batch order.
fn merge_results(
    indices: Vec<usize>,
    accepted: Vec<Accepted>,
    rejected: Vec<ItemResult>,
) -> Vec<ItemResult> {
    let mut slots: Vec<Option<ItemResult>> = Vec::new();
    slots.resize_with(indices.len() + rejected.len(), || None);
    let accepted = indices
        .into_iter()
        .zip(accepted)
        .map(|(index, a)| ItemResult::Accepted {
            index,
            reading_id: a.reading_id,
        });
    for result in accepted.chain(rejected) {
        let index = match &result {
            ItemResult::Accepted { index, .. } | ItemResult::Rejected { index, .. } => *index,
        };
        if let Some(slot) = slots.get_mut(index) {
            *slot = Some(result);
        }
    }
    slots.into_iter().flatten().collect()
}

async fn append(state: &AppState, incoming: Vec<Incoming>) -> Result<Vec<Accepted>, ApiError> {
    let n = incoming.len() as u64;
    let alerts = prepare_all(state.alerts.as_ref(), incoming.iter().map(|i| &i.reading));
    match state.buffer.append(incoming).await {
        Ok(accepted) => {
            state.metrics.reading("http", "accepted", n);
            publish_all(state.alerts.as_ref(), alerts, &accepted);
            Ok(accepted)
        }
        Err(BufferError::Full) => {
            state.metrics.reading("http", "full", n);
            Err(ApiError::Full)
        }
        Err(error) => {
            state.metrics.reading("http", "error", n);
            Err(ApiError::Internal(error.to_string()))
        }
    }
}

pub(super) fn authorize(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(tokens) = &state.tokens else {
        return Ok(());
    };
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(emberline_core::tokens::bearer);
    match token.and_then(|token| tokens.device_for_token(token)) {
        Some(_) => Ok(()),
        None => {
            state.metrics.reading("http", "unauthorized", 1);
            Err(ApiError::Unauthorized)
        }
    }
}

/// The request's media type, one of those ingest takes or `None`: read from the headers where
/// they are (the `HeaderMap` extractor would copy them all for every reading).
pub struct Media(Option<&'static str>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Media {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self(media_type(&parts.headers)))
    }
}

/// The media type without parameters (`application/json; charset=utf-8` → `application/json`).
fn media_type(headers: &HeaderMap) -> Option<&'static str> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let media = value.split(';').next()?.trim();
    [JSON, NDJSON]
        .into_iter()
        .find(|known| media.eq_ignore_ascii_case(known))
}
