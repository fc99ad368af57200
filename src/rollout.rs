//! Rollout changes as flips: what share of a flag's default audience gets its on variant, or
//! which single variant everyone in it gets.
//!
//! The default audience is everyone no segment or identity override covers. Overrides are never
//! changed by a rollout; each vendor file says where its default audience's split lives.
//!
//! This module is the vendor-neutral part: the target an operator asks for, how it is parsed
//! and worded, and whether a flag's state (as the vendor or as services read it) has reached it.

use serde::{Deserialize, Serialize};

use crate::model::{FlagState, Rollout, value_text};

/// Rollout weights are kept to LaunchDarkly's resolution: thousandths of a percent.
pub const PERCENT_RESOLUTION: f64 = 0.001;

/// The rollout steps used until the config names its own (`[rollout] steps`): abort, canary,
/// half, everyone.
pub const DEFAULT_STEPS: [f64; 4] = [0.0, 10.0, 50.0, 100.0];

/// A percentage as `--to` takes it: "10", "12.5", "0.125".
pub fn percent_arg(percent: f64) -> String {
    let text = format!("{percent:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// The largest step below `percent`: where "one step back" goes.
pub fn previous_step(steps: &[f64], percent: f64) -> Option<f64> {
    steps
        .iter()
        .copied()
        .filter(|step| *step < percent - PERCENT_RESOLUTION / 2.0)
        .fold(None, |best: Option<f64>, step| {
            Some(best.map_or(step, |b| b.max(step)))
        })
}

/// The smallest step above `percent`: where "one step up" goes.
pub fn next_step(steps: &[f64], percent: f64) -> Option<f64> {
    steps
        .iter()
        .copied()
        .filter(|step| *step > percent + PERCENT_RESOLUTION / 2.0)
        .fold(None, |best: Option<f64>, step| {
            Some(best.map_or(step, |b| b.min(step)))
        })
}

/// What a rollout asks for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RolloutTarget {
    /// This share of the default audience (0..=100) gets the flag's on variant; the rest get
    /// its off variant. `0` aborts a rollout, `100` opens it to everyone.
    Percent { percent: f64 },
    /// Everyone in the default audience gets this variant (ends an experiment).
    Variant { variant: String },
}

/// A percentage the operator typed that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PercentError(String);

impl RolloutTarget {
    /// Parses "50", "50%", "12.5": a number from 0 to 100 with at most three decimals.
    pub fn parse_percent(text: &str) -> Result<f64, PercentError> {
        let trimmed = text.trim();
        let number = trimmed.strip_suffix('%').unwrap_or(trimmed).trim();
        let shown = crate::text::line_max(text, 40);
        let percent: f64 = number.parse().map_err(|_| {
            PercentError(format!(
                "rollout percentage `{shown}` is not a number: give 0 to 100 (like 10 or 12.5)"
            ))
        })?;
        if !percent.is_finite() || !(0.0..=100.0).contains(&percent) {
            return Err(PercentError(format!(
                "rollout percentage `{shown}` is out of range: give 0 to 100"
            )));
        }
        let thousandths = percent / PERCENT_RESOLUTION;
        if (thousandths - thousandths.round()).abs() > 1e-6 {
            return Err(PercentError(format!(
                "rollout percentage `{shown}` is finer than vendors keep: at most three decimals"
            )));
        }
        Ok((thousandths.round()) * PERCENT_RESOLUTION)
    }

    /// "50%", "0%", "variant treatment_b".
    pub fn summary(&self) -> String {
        match self {
            RolloutTarget::Percent { percent } => {
                Rollout::Percentage { percent: *percent }.summary()
            }
            RolloutTarget::Variant { variant } => {
                format!("variant {}", crate::text::line(variant))
            }
        }
    }

    /// Whether `state` already gives its default audience what this target asks for.
    pub fn reached_by(&self, state: &FlagState) -> bool {
        match self {
            RolloutTarget::Percent { percent } => share_on(state)
                .is_some_and(|share| (share - percent).abs() < PERCENT_RESOLUTION / 2.0),
            RolloutTarget::Variant { variant } => {
                served_to_everyone(state).is_some_and(|served| served == *variant)
            }
        }
    }

    /// The state the flag is expected to have once this target is live: what the intent
    /// record names as the target before anything is written. Overrides stay as they are.
    pub fn predicted(&self, state: &FlagState) -> FlagState {
        // A flag switched off whose one serving override is a percentage of everyone (a
        // Flagsmith `PERCENTAGE_SPLIT` segment): that percentage is what changes.
        if let (RolloutTarget::Percent { percent }, Some(index)) =
            (self, percentage_override(state))
        {
            let mut predicted = state.clone();
            predicted.overrides[index].rollout = Rollout::Percentage { percent: *percent };
            predicted.version = None;
            return predicted;
        }
        match self {
            RolloutTarget::Percent { percent } if *percent >= 100.0 => FlagState {
                enabled: true,
                value: Some(true.into()),
                rollout: Rollout::Everyone,
                overrides: state.overrides.clone(),
                version: None,
            },
            RolloutTarget::Percent { percent } => FlagState {
                enabled: true,
                value: Some(false.into()),
                rollout: Rollout::Percentage { percent: *percent },
                overrides: state.overrides.clone(),
                version: None,
            },
            RolloutTarget::Variant { variant } => FlagState {
                enabled: true,
                value: Some(serde_json::Value::String(variant.clone())),
                rollout: Rollout::Everyone,
                overrides: state.overrides.clone(),
                version: None,
            },
        }
    }

    /// The target that gives the default audience back what `state` gives it, when that can be
    /// said as one target (what `undo` of a rollout asks for). `None` for splits across several
    /// variants, code defaults and rules killswitch cannot read.
    pub fn of_state(state: &FlagState) -> Option<RolloutTarget> {
        if let Some(percent) = share_on(state) {
            return Some(RolloutTarget::Percent { percent });
        }
        served_to_everyone(state).map(|variant| RolloutTarget::Variant { variant })
    }
}

/// The variant everyone in the default audience gets, when they all get one: a flag on with
/// one value for everyone, or a split whose whole weight is on one variant (a Flagsmith
/// multivariate flag allocating 100% to one option, a LaunchDarkly rollout of 100000 to one
/// variation).
fn served_to_everyone(state: &FlagState) -> Option<String> {
    if !state.enabled {
        return None;
    }
    match (&state.rollout, &state.value) {
        (Rollout::Everyone, Some(value)) => Some(value_text(value)),
        (Rollout::Split { variants }, _) => {
            let mut served = variants
                .iter()
                .filter(|variant| variant.percent >= PERCENT_RESOLUTION / 2.0);
            match (served.next(), served.next()) {
                (Some(only), None) if (only.percent - 100.0).abs() < PERCENT_RESOLUTION => {
                    Some(only.variant.clone())
                }
                _ => None,
            }
        }
        _ => None,
    }
}

/// The override that holds a boolean flag's rollout when the flag itself is switched off: the
/// one override that serves anything, a group whose rule is a plain percentage of everyone
/// (how Flagsmith rolls a boolean flag out: a `PERCENTAGE_SPLIT` segment override, the
/// environment default off). Vendors that summarise a switched-off flag with no overrides
/// (LaunchDarkly, Unleash) never match.
pub fn percentage_override(state: &FlagState) -> Option<usize> {
    if state.enabled || state.rollout != Rollout::Everyone {
        return None;
    }
    let mut serving = state
        .overrides
        .iter()
        .enumerate()
        .filter(|(_, o)| o.enabled);
    match (serving.next(), serving.next()) {
        (Some((index, o)), None)
            if o.kind == crate::model::OverrideKind::Segment
                && matches!(o.rollout, Rollout::Percentage { .. }) =>
        {
            Some(index)
        }
        _ => None,
    }
}

/// What a flag's rollout can be set to, as its vendor defines the flag.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RolloutChoices {
    /// Whether a percentage applies: the flag has one on and one off variant.
    pub percent: bool,
    /// The vendor's SDKs read only whole percentages (Unleash's `rollout` parameter: "12.5"
    /// makes its SDK serve nobody).
    pub whole_percent_only: bool,
    /// The variants `--variant` can name, in the vendor's order.
    pub variants: Vec<String>,
    /// Each variant's value as a flag's state shows it (`value_text`), beside `variants`: where
    /// a vendor names variants apart from their values (flagd's `treatment_a` serving
    /// `"model_v3a"`), the target is kept as the value, which is what a state can be compared
    /// with. Empty when names and values are the same.
    pub values: Vec<String>,
}

impl RolloutChoices {
    /// `Err(why)` when `target` asks for what the flag does not have: the usage error's words
    /// (the caller adds the flag and environment).
    pub fn check(&self, target: &RolloutTarget) -> Result<(), String> {
        let listed = || {
            if self.variants.is_empty() {
                "none".to_string()
            } else {
                self.variants
                    .iter()
                    .map(|v| crate::text::line_max(v, 80))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        };
        match target {
            RolloutTarget::Percent { .. } if !self.percent => Err(format!(
                "a percentage needs an on and an off variant, and this flag has variants {}: send everyone to one with --variant NAME",
                listed()
            )),
            RolloutTarget::Percent { percent }
                if self.whole_percent_only && (percent - percent.round()).abs() > 1e-9 =>
            {
                Err(format!(
                    "{} is not a whole percentage, and this vendor's SDKs read only whole ones: give {} or {}",
                    percent_arg(*percent),
                    percent.floor(),
                    percent.ceil()
                ))
            }
            RolloutTarget::Variant { variant }
                if !self.variants.contains(variant) && !self.values.contains(variant) =>
            {
                Err(format!(
                    "it has no variant `{}`: its variants are {}",
                    crate::text::line_max(variant, 80),
                    listed()
                ))
            }
            _ => Ok(()),
        }
    }

    /// The target as states show it: a variant named by its name becomes its value's text.
    pub fn canonical(&self, target: &RolloutTarget) -> RolloutTarget {
        match target {
            RolloutTarget::Variant { variant } => {
                let value = self
                    .variants
                    .iter()
                    .position(|name| name == variant)
                    .and_then(|index| self.values.get(index));
                RolloutTarget::Variant {
                    variant: value.cloned().unwrap_or_else(|| variant.clone()),
                }
            }
            other => other.clone(),
        }
    }
}

/// The share of the default audience a boolean flag serves on: `None` when the flag is not a
/// plain boolean split (variants, code defaults, unread rules).
pub fn share_on(state: &FlagState) -> Option<f64> {
    if let Some(index) = percentage_override(state)
        && let Rollout::Percentage { percent } = state.overrides[index].rollout
    {
        return Some(percent);
    }
    match &state.rollout {
        Rollout::Percentage { percent } if state.enabled => Some(*percent),
        Rollout::Percentage { .. } => Some(0.0),
        Rollout::Everyone => match &state.value {
            _ if !state.enabled => Some(0.0),
            None | Some(serde_json::Value::Bool(true)) => Some(100.0),
            Some(serde_json::Value::Bool(false)) => Some(0.0),
            Some(_) => None,
        },
        Rollout::Split { .. } | Rollout::CodeDefault | Rollout::Unknown => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_parse_in_range_with_at_most_three_decimals() {
        assert_eq!(RolloutTarget::parse_percent("50"), Ok(50.0));
        assert_eq!(RolloutTarget::parse_percent(" 12.5% "), Ok(12.5));
        assert_eq!(RolloutTarget::parse_percent("0"), Ok(0.0));
        assert_eq!(RolloutTarget::parse_percent("100"), Ok(100.0));
        assert_eq!(RolloutTarget::parse_percent("0.125"), Ok(0.125));
        for bad in ["101", "-1", "NaN", "inf", "ten", "", "0.0001", "50%%"] {
            let error = RolloutTarget::parse_percent(bad);
            assert!(error.is_err(), "{bad:?} was accepted: {error:?}");
        }
        let message = RolloutTarget::parse_percent("\u{1b}[31m150")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(!message.contains('\u{1b}'), "{message}");
    }

    #[test]
    fn steps_back_and_up_go_to_the_neighbouring_step() {
        assert_eq!(previous_step(&DEFAULT_STEPS, 50.0), Some(10.0));
        assert_eq!(previous_step(&DEFAULT_STEPS, 25.0), Some(10.0));
        assert_eq!(previous_step(&DEFAULT_STEPS, 10.0), Some(0.0));
        assert_eq!(previous_step(&DEFAULT_STEPS, 0.0), None);
        assert_eq!(next_step(&DEFAULT_STEPS, 10.0), Some(50.0));
        assert_eq!(next_step(&DEFAULT_STEPS, 100.0), None);
        assert_eq!(percent_arg(10.0), "10");
        assert_eq!(percent_arg(0.125), "0.125");
        assert_eq!(percent_arg(12.5), "12.5");
    }

    #[test]
    fn choices_name_what_a_flag_has() {
        let whole = RolloutChoices {
            percent: true,
            whole_percent_only: true,
            ..RolloutChoices::default()
        };
        assert!(
            whole
                .check(&RolloutTarget::Percent { percent: 12.0 })
                .is_ok()
        );
        let half = whole
            .check(&RolloutTarget::Percent { percent: 12.5 })
            .err()
            .unwrap_or_default();
        assert!(half.contains("give 12 or 13"), "{half}");
        let ab = RolloutChoices {
            percent: false,
            whole_percent_only: false,
            variants: vec!["control".into(), "treatment_a".into()],
            values: vec!["model_v2".into(), "model_v3a".into()],
        };
        let by_name = RolloutTarget::Variant {
            variant: "treatment_a".into(),
        };
        assert_eq!(ab.check(&by_name), Ok(()));
        assert_eq!(
            ab.canonical(&by_name),
            RolloutTarget::Variant {
                variant: "model_v3a".into()
            }
        );
        let by_value = RolloutTarget::Variant {
            variant: "model_v2".into(),
        };
        assert_eq!(ab.check(&by_value), Ok(()));
        assert_eq!(ab.canonical(&by_value), by_value);
        let missing = ab
            .check(&RolloutTarget::Variant {
                variant: "nope".into(),
            })
            .err()
            .unwrap_or_default();
        assert!(missing.contains("control, treatment_a"), "{missing}");
        assert!(ab.check(&RolloutTarget::Percent { percent: 10.0 }).is_err());
    }

    #[test]
    fn a_target_is_reached_by_the_share_the_default_audience_gets() {
        let canary = FlagState {
            enabled: true,
            value: Some(false.into()),
            rollout: Rollout::Percentage { percent: 10.0 },
            ..FlagState::default()
        };
        assert!(RolloutTarget::Percent { percent: 10.0 }.reached_by(&canary));
        assert!(!RolloutTarget::Percent { percent: 50.0 }.reached_by(&canary));
        let everyone = FlagState {
            enabled: true,
            value: Some(true.into()),
            ..FlagState::default()
        };
        assert!(RolloutTarget::Percent { percent: 100.0 }.reached_by(&everyone));
        let off = FlagState::default();
        assert!(RolloutTarget::Percent { percent: 0.0 }.reached_by(&off));
        let split = FlagState {
            enabled: true,
            rollout: Rollout::from_weights(&[("a".into(), 50.0), ("b".into(), 50.0)]),
            ..FlagState::default()
        };
        assert!(!RolloutTarget::Percent { percent: 50.0 }.reached_by(&split));
        assert_eq!(RolloutTarget::of_state(&split), None);
        let variant = FlagState {
            enabled: true,
            value: Some("model_v3".into()),
            ..FlagState::default()
        };
        let target = RolloutTarget::Variant {
            variant: "model_v3".into(),
        };
        assert!(target.reached_by(&variant));
        assert!(target.reached_by(&target.predicted(&split)));
        assert_eq!(RolloutTarget::of_state(&variant), Some(target));
        assert_eq!(
            RolloutTarget::of_state(&canary),
            Some(RolloutTarget::Percent { percent: 10.0 })
        );
    }
    #[test]
    fn a_percentage_segment_of_a_switched_off_flag_is_its_rollout() {
        use crate::model::{Override, OverrideKind};
        let segment = |percent: f64, enabled: bool| Override {
            target: "segment stripe_pi_rollout_10pct".into(),
            kind: OverrideKind::Segment,
            enabled,
            value: Some("pi_v2024_11b".into()),
            rollout: Rollout::Percentage { percent },
        };
        let canary = FlagState {
            enabled: false,
            overrides: vec![segment(10.0, true)],
            ..FlagState::default()
        };
        assert_eq!(share_on(&canary), Some(10.0));
        assert!(RolloutTarget::Percent { percent: 10.0 }.reached_by(&canary));
        assert!(!RolloutTarget::Percent { percent: 0.0 }.reached_by(&canary));
        let fifty = RolloutTarget::Percent { percent: 50.0 };
        let predicted = fifty.predicted(&canary);
        assert_eq!(predicted.overrides, vec![segment(50.0, true)]);
        assert!(!predicted.enabled);
        assert!(fifty.reached_by(&predicted));
        assert_eq!(
            RolloutTarget::of_state(&canary),
            Some(RolloutTarget::Percent { percent: 10.0 })
        );
        // A segment that serves off, or a second group that serves too: not a rollout share.
        let off = FlagState {
            overrides: vec![segment(10.0, false)],
            ..canary.clone()
        };
        assert_eq!(share_on(&off), Some(0.0));
        let tenant = Override {
            target: "segment tenant_bigcorp".into(),
            rollout: Rollout::Everyone,
            ..segment(0.0, true)
        };
        let two = FlagState {
            overrides: vec![segment(10.0, true), tenant],
            ..canary.clone()
        };
        assert_eq!(share_on(&two), Some(0.0));
        // The flag on for everyone: the segment no longer decides.
        let on = FlagState {
            enabled: true,
            ..canary
        };
        assert_eq!(share_on(&on), Some(100.0));
    }

    #[test]
    fn a_split_with_all_its_weight_on_one_variant_serves_it_to_everyone() {
        let all_b = FlagState {
            enabled: true,
            value: Some("control".into()),
            rollout: Rollout::from_weights(&[
                ("model_a".into(), 0.0),
                ("model_b".into(), 100.0),
                ("model_c".into(), 0.0),
            ]),
            ..FlagState::default()
        };
        let model_b = RolloutTarget::Variant {
            variant: "model_b".into(),
        };
        assert!(model_b.reached_by(&all_b));
        assert!(
            !RolloutTarget::Variant {
                variant: "control".into()
            }
            .reached_by(&all_b)
        );
        assert_eq!(RolloutTarget::of_state(&all_b), Some(model_b.clone()));
        let mostly_b = FlagState {
            rollout: Rollout::from_weights(&[("model_a".into(), 1.0), ("model_b".into(), 99.0)]),
            ..all_b.clone()
        };
        assert!(!model_b.reached_by(&mostly_b));
        assert_eq!(RolloutTarget::of_state(&mostly_b), None);
        let off = FlagState {
            enabled: false,
            ..all_b
        };
        assert!(!model_b.reached_by(&off));
    }
}
