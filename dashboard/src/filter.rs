//! The API's query parameters, parsed once into typed filters (pure; the SQL is in
//! [`crate::query`]). A client mistake is a [`FilterError`] naming the parameter.

use std::time::Duration;

use emberline_core::Intensity;
use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::feature::parse_intensity;

/// Most rows `/data` and `/api/alerts` answer with.
pub const MAX_LIMIT: i64 = 10_000;

/// A query parameter that makes no sense.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{parameter}: {message}")]
pub struct FilterError {
    pub parameter: &'static str,
    pub message: String,
}

fn invalid(parameter: &'static str, message: impl Into<String>) -> FilterError {
    FilterError {
        parameter,
        message: message.into(),
    }
}

/// `GET /api/sensors` parameters as sent.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SensorQuery {
    /// Comma-separated intensities, e.g. `high,medium`.
    pub intensity: Option<String>,
    /// RFC 3339 time, or a duration back from now (`15m`, `24h`).
    pub since: Option<String>,
    /// `min_lon,min_lat,max_lon,max_lat`; `min_lon > max_lon` crosses the antimeridian.
    pub bbox: Option<String>,
    /// Part of the sensor's name, any case.
    pub source: Option<String>,
}

/// `GET /api/sensors` parameters, checked.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SensorFilter {
    pub intensities: Option<Vec<Intensity>>,
    pub since: Option<OffsetDateTime>,
    pub bbox: Option<[f64; 4]>,
    pub source: Option<String>,
}

impl SensorQuery {
    pub fn parse(&self, now: OffsetDateTime) -> Result<SensorFilter, FilterError> {
        Ok(SensorFilter {
            intensities: self.intensity.as_deref().map(intensities).transpose()?,
            since: self.since.as_deref().map(|s| since(s, now)).transpose()?,
            bbox: self.bbox.as_deref().map(bbox).transpose()?,
            source: self.source.clone().filter(|s| !s.is_empty()),
        })
    }
}

/// `GET /data` and `GET /api/alerts` parameters as sent.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ListQuery {
    pub limit: Option<i64>,
    pub since: Option<String>,
}

impl ListQuery {
    /// `(limit, since)`, the limit defaulting to `default`.
    pub fn parse(
        &self,
        default: i64,
        now: OffsetDateTime,
    ) -> Result<(i64, Option<OffsetDateTime>), FilterError> {
        let limit = self.limit.unwrap_or(default);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(invalid("limit", format!("must be in 1..={MAX_LIMIT}")));
        }
        let since = self.since.as_deref().map(|s| since(s, now)).transpose()?;
        Ok((limit, since))
    }
}

fn intensities(text: &str) -> Result<Vec<Intensity>, FilterError> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            parse_intensity(s)
                .ok_or_else(|| invalid("intensity", format!("{s:?} is not low, medium or high")))
        })
        .collect()
}

fn since(text: &str, now: OffsetDateTime) -> Result<OffsetDateTime, FilterError> {
    if let Ok(at) = OffsetDateTime::parse(text, &Rfc3339) {
        return Ok(at);
    }
    let back: Duration = emberline_hub::config::parse_duration(text).map_err(|_| {
        invalid(
            "since",
            format!("{text:?} is neither an RFC 3339 time nor a duration such as 15m or 24h"),
        )
    })?;
    let back = time::Duration::try_from(back).map_err(|_| invalid("since", "too far back"))?;
    now.checked_sub(back)
        .ok_or_else(|| invalid("since", "too far back"))
}

fn bbox(text: &str) -> Result<[f64; 4], FilterError> {
    let numbers: Vec<f64> = text
        .split(',')
        .map(|n| n.trim().parse::<f64>())
        .collect::<Result<_, _>>()
        .map_err(|_| {
            invalid(
                "bbox",
                "must be four numbers: min_lon,min_lat,max_lon,max_lat",
            )
        })?;
    let [min_lon, min_lat, max_lon, max_lat] = numbers[..] else {
        return Err(invalid(
            "bbox",
            "must be four numbers: min_lon,min_lat,max_lon,max_lat",
        ));
    };
    let lon = -180.0..=180.0;
    let lat = -90.0..=90.0;
    if !(lon.contains(&min_lon) && lon.contains(&max_lon)) {
        return Err(invalid("bbox", "longitudes must be in -180..=180"));
    }
    if !(lat.contains(&min_lat) && lat.contains(&max_lat) && min_lat <= max_lat) {
        return Err(invalid(
            "bbox",
            "latitudes must be in -90..=90, min_lat <= max_lat",
        ));
    }
    Ok([min_lon, min_lat, max_lon, max_lat])
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2025-05-24 18:00 UTC);

    fn sensors(intensity: &str, since: &str, bbox: &str) -> Result<SensorFilter, FilterError> {
        let some = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        SensorQuery {
            intensity: some(intensity),
            since: some(since),
            bbox: some(bbox),
            source: None,
        }
        .parse(NOW)
    }

    #[test]
    fn good_parameters_parse() {
        let filter = sensors("high, medium", "1h", "-125,30,-110,45").unwrap();
        assert_eq!(
            filter.intensities,
            Some(vec![Intensity::High, Intensity::Medium])
        );
        assert_eq!(filter.since, Some(datetime!(2025-05-24 17:00 UTC)));
        assert_eq!(filter.bbox, Some([-125.0, 30.0, -110.0, 45.0]));
        let at = sensors("", "2025-05-24T18:03:11.5+02:00", "")
            .unwrap()
            .since;
        assert_eq!(at, Some(datetime!(2025-05-24 16:03:11.5 UTC)));
        assert_eq!(sensors("", "", "").unwrap(), SensorFilter::default());
    }

    #[test]
    fn mistakes_name_their_parameter() {
        let parameter = |r: Result<SensorFilter, FilterError>| r.unwrap_err().parameter;
        assert_eq!(parameter(sensors("extreme", "", "")), "intensity");
        assert_eq!(parameter(sensors("", "yesterday", "")), "since");
        assert_eq!(parameter(sensors("", "", "1,2,3")), "bbox");
        assert_eq!(parameter(sensors("", "", "0,50,10,40")), "bbox");
        assert_eq!(parameter(sensors("", "", "0,0,190,10")), "bbox");
        let limit = ListQuery {
            limit: Some(0),
            since: None,
        };
        assert_eq!(limit.parse(100, NOW).unwrap_err().parameter, "limit");
    }
}
