//! Evaluating a [`Profile`] against one reading.
//!
//! # Confidence
//! With `mode = "fixed"` each intensity has its constant. With `mode = "computed"`:
//! - A condition's **strength** is how far past its threshold the value is, in units of the
//!   condition's `span`, capped at 1. A rule's strength is that of its weakest condition.
//! - **medium / high**: 75 % of the band comes from the strength of the strongest rule of the
//!   winning intensity, 25 % from agreement: `1 − 1/n` for the `n` rules that fired at any
//!   intensity (supporting evidence from lower-intensity rules counts).
//! - **low**: the closer any rule came to firing, the less sure "low" is. A condition's
//!   proximity is 1 when it holds and falls to 0 one `span` short of its threshold; a rule's
//!   closeness is the mean proximity of its conditions; confidence falls from the band's max
//!   towards its min as the closest rule's closeness rises.
//!
//! Scores are rounded to three decimals, so they read well and compare exactly.

use time::OffsetDateTime;

use super::{Condition, Confidence, Op, Profile, Variables};
use crate::envelope::{Classification, Intensity};
use crate::rules::{Band, Measurements};

/// What the rules say about one reading.
#[derive(Debug, Clone, PartialEq)]
pub struct Assessment {
    pub intensity: Intensity,
    pub confidence: f64,
    /// Every rule that fired, in profile order.
    pub rules_fired: Vec<String>,
}

impl Profile {
    /// Classifies one reading. Pure: no clock, no IO, same answer for the same input.
    pub fn classify(&self, measurements: &Measurements) -> Assessment {
        let vars = Variables::new(measurements);
        let fired: Vec<(usize, f64)> = self
            .rules
            .iter()
            .enumerate()
            .filter(|(_, rule)| rule.conditions.iter().all(|c| holds(c, &vars)))
            .map(|(index, rule)| (index, rule_strength(&rule.conditions, &vars)))
            .collect();
        let intensity = fired
            .iter()
            .map(|&(index, _)| self.rules[index].intensity)
            .max()
            .unwrap_or(Intensity::Low);
        let confidence = match self.confidence {
            Confidence::Fixed { high, medium, low } => match intensity {
                Intensity::High => high,
                Intensity::Medium => medium,
                Intensity::Low => low,
            },
            Confidence::Computed { high, medium, low } => match intensity {
                Intensity::High => {
                    fired_confidence(high, self.strengths_at(&fired, intensity), fired.len())
                }
                Intensity::Medium => {
                    fired_confidence(medium, self.strengths_at(&fired, intensity), fired.len())
                }
                Intensity::Low => low.max - (low.max - low.min) * self.closeness(&vars),
            },
        };
        Assessment {
            intensity,
            confidence: round3(confidence.clamp(0.0, 1.0)),
            rules_fired: fired
                .iter()
                .map(|&(index, _)| self.rules[index].name.clone())
                .collect(),
        }
    }

    /// [`Profile::classify`] as the record the detector publishes.
    pub fn classification(
        &self,
        measurements: &Measurements,
        detected_at: OffsetDateTime,
    ) -> Classification {
        let assessment = self.classify(measurements);
        Classification {
            intensity: assessment.intensity,
            confidence_score: assessment.confidence,
            rules_fired: assessment.rules_fired,
            rules_version: self.version.clone(),
            detected_at,
        }
    }

    fn strengths_at(&self, fired: &[(usize, f64)], intensity: Intensity) -> Vec<f64> {
        fired
            .iter()
            .filter(|&&(index, _)| self.rules[index].intensity == intensity)
            .map(|&(_, strength)| strength)
            .collect()
    }

    /// How close the nearest rule came to firing, 0..=1.
    fn closeness(&self, vars: &Variables) -> f64 {
        self.rules
            .iter()
            .map(|rule| {
                let total: f64 = rule.conditions.iter().map(|c| proximity(c, vars)).sum();
                total / rule.conditions.len() as f64
            })
            .fold(0.0, f64::max)
    }
}

fn fired_confidence(band: Band, strengths: Vec<f64>, fired: usize) -> f64 {
    let strongest = strengths.iter().copied().fold(0.0, f64::max);
    let agreement = 1.0 - 1.0 / fired.max(1) as f64;
    band.min + (band.max - band.min) * (0.75 * strongest + 0.25 * agreement)
}

fn holds(condition: &Condition, vars: &Variables) -> bool {
    let x = vars.get(condition.var);
    match condition.op {
        Op::Gt => x > condition.value,
        Op::Ge => x >= condition.value,
        Op::Lt => x < condition.value,
        Op::Le => x <= condition.value,
    }
}

/// Signed distance past the threshold, positive on the firing side.
fn margin(condition: &Condition, vars: &Variables) -> f64 {
    let x = vars.get(condition.var);
    match condition.op {
        Op::Gt | Op::Ge => x - condition.value,
        Op::Lt | Op::Le => condition.value - x,
    }
}

fn rule_strength(conditions: &[Condition], vars: &Variables) -> f64 {
    conditions
        .iter()
        .map(|c| (margin(c, vars) / c.span).clamp(0.0, 1.0))
        .fold(1.0, f64::min)
}

fn proximity(condition: &Condition, vars: &Variables) -> f64 {
    if holds(condition, vars) {
        1.0
    } else {
        (1.0 + margin(condition, vars) / condition.span).clamp(0.0, 1.0)
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
