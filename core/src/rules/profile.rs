//! Rules profiles: TOML in, a validated [`Profile`] out.
//!
//! ```toml
//! name = "default"
//! version = "default-1"
//!
//! [confidence]
//! mode = "computed"                     # or "fixed" with high/medium/low numbers
//! high = { min = 0.60, max = 0.99 }
//! medium = { min = 0.50, max = 0.90 }
//! low = { min = 0.50, max = 0.95 }
//!
//! [[rule]]
//! name = "hot-and-dry"
//! intensity = "high"                    # "high" or "medium"; low is what no rule says
//! when = [
//!   { var = "temperature", op = ">", value = 40, span = 10 },
//!   { var = "humidity", op = "<", value = 20, span = 10 },
//! ]
//! ```
//!
//! A rule fires when all of its conditions hold. `span` is how far past its threshold a condition
//! must be to count as fully convincing for the computed confidence (default: a quarter of the
//! threshold's magnitude, or 1 for a threshold of 0).

use std::collections::HashSet;

use serde::Deserialize;

use super::Variable;
use crate::envelope::Intensity;

const DEFAULT_TOML: &str = include_str!("../../rules/default.toml");
const SEED_COMPAT_TOML: &str = include_str!("../../rules/seed-compat.toml");

/// The names of the profiles shipped inside the binary.
pub const BUILTIN_PROFILES: [&str; 2] = ["default", "seed-compat"];

/// Why a profile was refused. A running service keeps its previous profile when a new one fails.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RulesError {
    #[error("rules file is not valid TOML for a profile: {0}")]
    Toml(String),
    #[error("rules profile is invalid: {0}")]
    Invalid(String),
    #[error("there is no built-in rules profile {0:?} (built in: default, seed-compat)")]
    UnknownBuiltin(String),
}

/// A comparison between a variable and a threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Op {
    #[serde(rename = ">")]
    Gt,
    #[serde(rename = ">=")]
    Ge,
    #[serde(rename = "<")]
    Lt,
    #[serde(rename = "<=")]
    Le,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub var: Variable,
    pub op: Op,
    pub value: f64,
    pub span: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub name: String,
    pub intensity: Intensity,
    pub description: String,
    pub conditions: Vec<Condition>,
}

/// A band `min..=max` the computed confidence of one intensity moves in.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Band {
    pub min: f64,
    pub max: f64,
}

/// How confidence is given.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(tag = "mode", rename_all = "lowercase", deny_unknown_fields)]
pub enum Confidence {
    /// One constant per intensity (the reference system's 0.95 / 0.75 / 0.45).
    Fixed { high: f64, medium: f64, low: f64 },
    /// Computed from margins and agreement inside a band per intensity.
    Computed { high: Band, medium: Band, low: Band },
}

/// A validated set of rules.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub name: String,
    /// Recorded with every classification, so a stored label says which rules made it.
    pub version: String,
    pub description: String,
    pub confidence: Confidence,
    pub rules: Vec<Rule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    name: String,
    version: String,
    #[serde(default)]
    description: String,
    confidence: Confidence,
    #[serde(default, rename = "rule")]
    rules: Vec<RawRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: String,
    intensity: Intensity,
    #[serde(default)]
    description: String,
    when: Vec<RawCondition>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCondition {
    var: Variable,
    op: Op,
    value: f64,
    span: Option<f64>,
}

impl Profile {
    /// Parses and validates a profile; the error names the line or the rule at fault.
    pub fn from_toml(text: &str) -> Result<Self, RulesError> {
        let raw: RawProfile =
            toml::from_str(text).map_err(|error| RulesError::Toml(error.to_string()))?;
        check_text("name", &raw.name)?;
        check_text("version", &raw.version)?;
        check_confidence(&raw.confidence)?;
        // A file cut short (being written, say) can still be valid TOML without its rules; a
        // profile with none would call every reading low.
        if raw.rules.is_empty() {
            return Err(invalid("a profile needs at least one [[rule]]".to_owned()));
        }
        let mut seen = HashSet::new();
        let rules = raw
            .rules
            .into_iter()
            .map(|rule| {
                if !seen.insert(rule.name.clone()) {
                    return Err(invalid(format!("two rules are named {:?}", rule.name)));
                }
                build_rule(rule)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            name: raw.name,
            version: raw.version,
            description: raw.description,
            confidence: raw.confidence,
            rules,
        })
    }

    /// One of [`BUILTIN_PROFILES`].
    pub fn builtin(name: &str) -> Result<Self, RulesError> {
        match name {
            "default" => Self::from_toml(DEFAULT_TOML),
            "seed-compat" => Self::from_toml(SEED_COMPAT_TOML),
            other => Err(RulesError::UnknownBuiltin(other.to_owned())),
        }
    }

    /// The TOML text of a built-in profile, to start a custom one from.
    pub fn builtin_toml(name: &str) -> Option<&'static str> {
        match name {
            "default" => Some(DEFAULT_TOML),
            "seed-compat" => Some(SEED_COMPAT_TOML),
            _ => None,
        }
    }
}

fn invalid(reason: String) -> RulesError {
    RulesError::Invalid(reason)
}

fn check_text(field: &str, text: &str) -> Result<(), RulesError> {
    if text.trim().is_empty() || text.chars().any(char::is_control) {
        return Err(invalid(format!(
            "{field} must be non-empty text without control characters"
        )));
    }
    Ok(())
}

fn check_confidence(confidence: &Confidence) -> Result<(), RulesError> {
    let unit = |x: f64| (0.0..=1.0).contains(&x);
    match *confidence {
        Confidence::Fixed { high, medium, low } => {
            if ![high, medium, low].into_iter().all(unit) {
                return Err(invalid("fixed confidences must be in 0..=1".into()));
            }
        }
        Confidence::Computed { high, medium, low } => {
            for (name, band) in [("high", high), ("medium", medium), ("low", low)] {
                if !(unit(band.min) && unit(band.max) && band.min <= band.max) {
                    return Err(invalid(format!(
                        "confidence band {name} must satisfy 0 <= min <= max <= 1, got {}..{}",
                        band.min, band.max
                    )));
                }
            }
        }
    }
    Ok(())
}

fn build_rule(raw: RawRule) -> Result<Rule, RulesError> {
    let at = |reason: &str| invalid(format!("rule {:?}: {reason}", raw.name));
    check_text("rule name", &raw.name)?;
    if raw.intensity == Intensity::Low {
        return Err(at(
            "intensity must be \"medium\" or \"high\"; low is what applies when no rule fires",
        ));
    }
    if raw.when.is_empty() {
        return Err(at("needs at least one condition in `when`"));
    }
    let mut conditions = Vec::with_capacity(raw.when.len());
    for condition in &raw.when {
        if !condition.value.is_finite() {
            return Err(at("a threshold is not a finite number"));
        }
        let span = condition
            .span
            .unwrap_or_else(|| default_span(condition.value));
        if !(span.is_finite() && span > 0.0) {
            return Err(at("span must be a positive number"));
        }
        conditions.push(Condition {
            var: condition.var,
            op: condition.op,
            value: condition.value,
            span,
        });
    }
    Ok(Rule {
        name: raw.name,
        intensity: raw.intensity,
        description: raw.description,
        conditions,
    })
}

/// A quarter of the threshold's magnitude; 1 for a threshold of 0.
fn default_span(threshold: f64) -> f64 {
    let span = threshold.abs() / 4.0;
    if span > 0.0 { span } else { 1.0 }
}
