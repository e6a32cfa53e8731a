//! Field-by-field checks for [`Reading::check`](super::Reading::check): each check judges one
//! field's value as sent and records what is wrong, so that every bad field is reported.

use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{Bounds, FieldError, FieldErrorCode};

/// Most levels of arrays and objects inside one extra field. The envelope puts a reading two
/// levels down and every JSON reader on the way (the bridge, the hub) stops at 128 levels, so a
/// reading taken here must stay well inside that, or one device's reading would get the whole
/// batch it travels in refused downstream.
pub const MAX_EXTRA_DEPTH: usize = 32;

/// Most fractional-second digits accepted (nanoseconds).
const MAX_FRACTION_DIGITS: usize = 9;

/// Judges each field's value as sent and collects every error.
#[derive(Default)]
pub(super) struct FieldReader {
    errors: Vec<FieldError>,
}

impl FieldReader {
    pub(super) fn into_errors(self) -> Vec<FieldError> {
        self.errors
    }

    /// Records an error for `field`; returns `None` so callers can `return self.fail(…)`.
    fn fail<T>(
        &mut self,
        field: &str,
        code: FieldErrorCode,
        message: impl Into<String>,
    ) -> Option<T> {
        self.errors.push(FieldError::new(field, code, message));
        None
    }

    fn required(&mut self, field: &str, value: Option<Value>) -> Option<Value> {
        match value {
            None | Some(Value::Null) => self.fail(field, FieldErrorCode::Missing, "is required"),
            Some(value) => Some(value),
        }
    }

    /// Extra fields are kept as sent, but none may be nested deeper than [`MAX_EXTRA_DEPTH`].
    pub(super) fn extras(&mut self, extra: &serde_json::Map<String, Value>) {
        for (name, value) in extra {
            if depth(value) > MAX_EXTRA_DEPTH {
                let message = format!("is nested deeper than {MAX_EXTRA_DEPTH} levels");
                self.fail::<()>(name, FieldErrorCode::TooDeep, message);
            }
        }
    }

    /// A finite number inside `bounds`; integers are accepted as numbers.
    pub(super) fn number(
        &mut self,
        field: &str,
        value: Option<Value>,
        bounds: &Bounds,
    ) -> Option<f64> {
        let value = self.required(field, value)?;
        let Some(number) = value.as_f64() else {
            let message = format!("must be a number, got {}", kind(&value));
            return self.fail(field, FieldErrorCode::WrongType, message);
        };
        if !number.is_finite() || !bounds.contains(number) {
            let message = format!("must be in {bounds}, got {number}");
            return self.fail(field, FieldErrorCode::OutOfRange, message);
        }
        Some(number)
    }

    /// An RFC 3339 timestamp, not later than `latest` (the agent's clock plus the allowed skew).
    pub(super) fn timestamp(
        &mut self,
        value: Option<Value>,
        latest: Option<OffsetDateTime>,
    ) -> Option<OffsetDateTime> {
        const FIELD: &str = "timestamp";
        let value = self.required(FIELD, value)?;
        let Value::String(text) = value else {
            let message = format!("must be an RFC 3339 string, got {}", kind(&value));
            return self.fail(FIELD, FieldErrorCode::WrongType, message);
        };
        let timestamp = match parse_timestamp(&text) {
            Ok(timestamp) => timestamp,
            Err(reason) => return self.fail(FIELD, FieldErrorCode::InvalidTimestamp, reason),
        };
        if latest.is_some_and(|latest| timestamp > latest) {
            let message =
                format!("{text} is more than the allowed skew ahead of this agent's clock");
            return self.fail(FIELD, FieldErrorCode::InFuture, message);
        }
        Some(timestamp)
    }

    pub(super) fn source_name(&mut self, value: Option<Value>, max_chars: usize) -> Option<String> {
        const FIELD: &str = "source_name";
        let value = self.required(FIELD, value)?;
        let Value::String(name) = value else {
            let message = format!("must be a string, got {}", kind(&value));
            return self.fail(FIELD, FieldErrorCode::WrongType, message);
        };
        if let Err(error) = check_source_name(&name, max_chars) {
            self.errors.push(error);
            return None;
        }
        Some(name)
    }

    /// The optional device counter: absent and `null` both mean "none"; `Some(None)` is a valid
    /// absence, `None` a recorded error.
    pub(super) fn seq(&mut self, value: Option<Value>) -> Option<Option<u64>> {
        const FIELD: &str = "seq";
        match value {
            None | Some(Value::Null) => Some(None),
            Some(value) => match value.as_u64() {
                Some(seq) => Some(Some(seq)),
                None => {
                    let got = match &value {
                        Value::Number(number) => number.to_string(),
                        other => kind(other).to_owned(),
                    };
                    let message =
                        format!("must be an integer in 0..=18446744073709551615, got {got}");
                    self.fail(FIELD, FieldErrorCode::WrongType, message)
                }
            },
        }
    }
}

/// 1..=`max_chars` characters, none of them a control character.
pub(super) fn check_source_name(name: &str, max_chars: usize) -> Result<(), FieldError> {
    const FIELD: &str = "source_name";
    if name.is_empty() {
        return Err(FieldError::new(
            FIELD,
            FieldErrorCode::Empty,
            "must not be empty",
        ));
    }
    let chars = name.chars().count();
    if chars > max_chars {
        return Err(FieldError::new(
            FIELD,
            FieldErrorCode::TooLong,
            format!("must be at most {max_chars} characters, got {chars}"),
        ));
    }
    if let Some(control) = name.chars().find(|c| c.is_control()) {
        return Err(FieldError::new(
            FIELD,
            FieldErrorCode::ControlCharacter,
            format!(
                "must not contain control characters, found U+{:04X}",
                u32::from(control)
            ),
        ));
    }
    Ok(())
}

/// RFC 3339 with `Z` or an offset and at most nine fractional digits.
pub(crate) fn parse_timestamp(text: &str) -> Result<OffsetDateTime, String> {
    let shown: String = text.chars().take(40).collect();
    let fraction_digits = text
        .split_once('.')
        .map(|(_, rest)| rest.bytes().take_while(u8::is_ascii_digit).count())
        .unwrap_or(0);
    if fraction_digits > MAX_FRACTION_DIGITS {
        return Err(format!(
            "{shown:?} has {fraction_digits} fractional-second digits; at most {MAX_FRACTION_DIGITS} are accepted"
        ));
    }
    OffsetDateTime::parse(text, &Rfc3339).map_err(|error| {
        format!(
            "{shown:?} is not an RFC 3339 timestamp such as 2025-05-24T18:03:11.123456Z ({error})"
        )
    })
}

fn kind(value: &Value) -> &'static str {
    super::json_kind(value)
}

/// Levels of arrays and objects in `value`: 0 for a scalar. Stops counting past the limit, so a
/// deep value costs no more than a legal one.
fn depth(value: &Value) -> usize {
    fn below(value: &Value, level: usize) -> usize {
        if level > MAX_EXTRA_DEPTH {
            return level;
        }
        let children: Box<dyn Iterator<Item = &Value>> = match value {
            Value::Array(items) => Box::new(items.iter()),
            Value::Object(map) => Box::new(map.values()),
            _ => return level,
        };
        children
            .map(|child| below(child, level + 1))
            .max()
            .unwrap_or(level + 1)
    }
    below(value, 0)
}
