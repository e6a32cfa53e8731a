//! Why a reading was refused, in a form both people and programs can read.

use std::fmt;

use serde::Serialize;

/// The machine-readable reason a field was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldErrorCode {
    Missing,
    WrongType,
    OutOfRange,
    Empty,
    TooLong,
    ControlCharacter,
    InvalidTimestamp,
    InFuture,
    /// An extra field nested deeper than [`MAX_EXTRA_DEPTH`](super::MAX_EXTRA_DEPTH).
    TooDeep,
}

/// One bad field: its name, a code, and a sentence naming the problem and the value received.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub code: FieldErrorCode,
    pub message: String,
}

impl FieldError {
    pub(crate) fn new(field: &str, code: FieldErrorCode, message: impl Into<String>) -> Self {
        Self {
            field: field.to_owned(),
            code,
            message: message.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Why [`Reading::parse`](super::Reading::parse) refused a payload.
///
/// `Malformed` is a broken body (HTTP 400); `NotAnObject` and `Invalid` are well-formed JSON that
/// is not an acceptable reading (HTTP 422). `Invalid` lists every bad field, not just the first.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ReadingError {
    #[error("body is not valid JSON: {0}")]
    Malformed(String),
    #[error("a reading must be a JSON object, got {0}")]
    NotAnObject(&'static str),
    #[error("{}", summary(.0))]
    Invalid(Vec<FieldError>),
    /// A batch item larger than a reading sent alone may be (the limit, in bytes).
    #[error("the reading is larger than {0} bytes, the most one reading may take")]
    TooLarge(usize),
}

fn summary(errors: &[FieldError]) -> String {
    let fields: Vec<String> = errors.iter().map(ToString::to_string).collect();
    format!("invalid reading: {}", fields.join("; "))
}

impl ReadingError {
    /// A stable identifier for the kind of error, for API bodies and metrics labels.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "malformed_json",
            Self::NotAnObject(_) => "not_an_object",
            Self::Invalid(_) => "invalid_reading",
            Self::TooLarge(_) => "too_large",
        }
    }

    /// The bad fields, empty when the body itself was unusable.
    pub fn fields(&self) -> &[FieldError] {
        match self {
            Self::Invalid(errors) => errors,
            Self::Malformed(_) | Self::NotAnObject(_) | Self::TooLarge(_) => &[],
        }
    }
}

/// The JSON body an API answers with: `{"error": code, "message": …, "fields": [...]}`.
impl Serialize for ReadingError {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct as _;
        let mut body = serializer.serialize_struct("ReadingError", 3)?;
        body.serialize_field("error", self.code())?;
        body.serialize_field("message", &self.to_string())?;
        body.serialize_field("fields", self.fields())?;
        body.end()
    }
}
