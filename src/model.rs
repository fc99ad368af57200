//! The vendor-neutral domain model: what every provider summarises its flags into.
//!
//! Nothing here knows which vendor a flag came from. Providers translate their own JSON into
//! these types; the dashboard, the flip transaction and the reports only ever see these.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

/// Prefix that marks a flag as a kill switch by platform convention.
pub const KILL_SWITCH_PREFIX: &str = "kill_switch_";

/// What a flag is for. Decides how the dashboard words its state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum FlagKind {
    /// ON while the feature serves; killing = turning it OFF.
    KillSwitch,
    /// Release toggle or dark launch.
    Release,
    /// A/B test or multivariate experiment.
    Experiment,
    /// Remote configuration value.
    Config,
    #[default]
    Other,
}

impl FlagKind {
    /// Parses a vendor's free-text kind ("kill_switch", "kill-switch", "release", ...).
    pub fn from_label(label: &str) -> FlagKind {
        match label.trim().to_ascii_lowercase().replace('-', "_").as_str() {
            "kill_switch" | "killswitch" | "kill" => FlagKind::KillSwitch,
            "release" | "dark_launch" => FlagKind::Release,
            "experiment" | "ab_test" => FlagKind::Experiment,
            "config" | "remote_config" | "operational" | "permission" => FlagKind::Config,
            _ => FlagKind::Other,
        }
    }

    /// A flag is a kill switch when its key says so or the vendor marks it so.
    pub fn classify(key: &str, vendor_kind: Option<FlagKind>) -> FlagKind {
        if key.starts_with(KILL_SWITCH_PREFIX) {
            return FlagKind::KillSwitch;
        }
        vendor_kind.unwrap_or_default()
    }

    pub fn label(self) -> &'static str {
        match self {
            FlagKind::KillSwitch => "kill switch",
            FlagKind::Release => "release",
            FlagKind::Experiment => "experiment",
            FlagKind::Config => "config",
            FlagKind::Other => "flag",
        }
    }
}

/// Facts about a flag that do not depend on the environment.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct FlagMeta {
    pub key: String,
    pub kind: FlagKind,
    pub owner: Option<String>,
    pub expected_removal: Option<NaiveDate>,
    pub description: Option<String>,
    pub tags: Vec<String>,
    pub runbook: Option<String>,
}

impl FlagMeta {
    /// Fills the fields this copy lacks from `other`: owner, removal date, description, tags,
    /// runbook, and a kind other than [`FlagKind::Other`].
    pub fn fill_from(&mut self, other: &FlagMeta) {
        if self.kind == FlagKind::Other {
            self.kind = other.kind;
        }
        let blank = |text: &Option<String>| text.as_deref().is_none_or(|t| t.trim().is_empty());
        if blank(&self.owner) && !blank(&other.owner) {
            self.owner = other.owner.clone();
        }
        if self.expected_removal.is_none() {
            self.expected_removal = other.expected_removal;
        }
        if blank(&self.description) && !blank(&other.description) {
            self.description = other.description.clone();
        }
        if self.tags.is_empty() {
            self.tags = other.tags.clone();
        }
        if blank(&self.runbook) && !blank(&other.runbook) {
            self.runbook = other.runbook.clone();
        }
    }

    /// One flag's metadata from several environments, in config order: each field from the
    /// first environment that has it (a read-only environment without the admin credential
    /// has no owner; another environment's owner is still the flag's owner).
    pub fn merged<'a>(metas: impl IntoIterator<Item = &'a FlagMeta>) -> FlagMeta {
        let mut metas = metas.into_iter();
        let mut merged = metas.next().cloned().unwrap_or_default();
        for other in metas {
            merged.fill_from(other);
        }
        merged
    }

    pub fn is_kill_switch(&self) -> bool {
        self.kind == FlagKind::KillSwitch
    }

    /// Days past the expected removal date on `today` (positive = overdue).
    pub fn days_overdue(&self, today: NaiveDate) -> Option<i64> {
        self.expected_removal
            .map(|due| (today - due).num_days())
            .filter(|days| *days > 0)
    }
}

/// Platform policy: a flag more than this many days past its expected removal date is stale.
pub const STALE_AFTER_DAYS: i64 = 30;

/// Where a flag stands against its expected removal date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", content = "days_overdue", rename_all = "snake_case")]
pub enum Removal {
    /// No removal date recorded: a policy violation.
    NoDate,
    NotDue,
    /// Past the date, within the 30-day grace.
    Overdue(i64),
    /// More than 30 days past the date: goes into the weekly report as tech debt.
    Stale(i64),
}

impl FlagMeta {
    pub fn removal(&self, today: NaiveDate) -> Removal {
        match (self.expected_removal, self.days_overdue(today)) {
            (None, _) => Removal::NoDate,
            (Some(_), None) => Removal::NotDue,
            (Some(_), Some(days)) if days > STALE_AFTER_DAYS => Removal::Stale(days),
            (Some(_), Some(days)) => Removal::Overdue(days),
        }
    }
}

/// How the flag's value is spread over the population, as the vendor expresses it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Rollout {
    /// Everyone gets the same value.
    #[default]
    Everyone,
    /// A boolean flag served to this percentage of users (0..=100).
    Percentage { percent: f64 },
    /// A split across variants; weights are percentages summing to about 100.
    Split { variants: Vec<VariantWeight> },
    /// Services get the flag as missing and serve their own code default (flagd `DISABLED`,
    /// or no default variant). For a kill switch the code default is "feature enabled".
    CodeDefault,
    /// A rule killswitch cannot summarise decides who gets what: it cannot tell from here.
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VariantWeight {
    pub variant: String,
    pub percent: f64,
}

impl Rollout {
    /// Builds a rollout from relative weights (flagd's `fractional`, Unleash's out-of-1000,
    /// LaunchDarkly's thousandths of a percent all normalise through here).
    pub fn from_weights(weights: &[(String, f64)]) -> Rollout {
        let total: f64 = weights.iter().map(|(_, w)| w.max(0.0)).sum();
        if total <= 0.0 || weights.is_empty() {
            return Rollout::Everyone;
        }
        let variants = weights
            .iter()
            .map(|(variant, weight)| VariantWeight {
                variant: variant.clone(),
                percent: weight.max(0.0) * 100.0 / total,
            })
            .collect();
        Rollout::Split { variants }
    }

    /// "10%", "33/33/34", "code default", "unknown rule" or "" for everyone.
    pub fn summary(&self) -> String {
        match self {
            Rollout::Everyone => String::new(),
            Rollout::CodeDefault => "code default".to_string(),
            Rollout::Unknown => "unknown rule".to_string(),
            Rollout::Percentage { percent } => format!("{}%", format_percent(*percent)),
            Rollout::Split { variants } => {
                let percents: Vec<f64> = variants.iter().map(|v| v.percent).collect();
                round_to_hundred(&percents)
                    .iter()
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>()
                    .join("/")
            }
        }
    }
}

fn format_percent(percent: f64) -> String {
    if (percent - percent.round()).abs() < 0.05 {
        format!("{}", percent.round() as i64)
    } else {
        format!("{percent:.1}")
    }
}

/// Rounds percentages to whole numbers that still sum to 100 (largest remainder; ties go to
/// the later variant, so an even three-way split reads "33/33/34").
pub fn round_to_hundred(percents: &[f64]) -> Vec<i64> {
    let total: f64 = percents.iter().sum();
    if percents.is_empty() || total <= 0.0 {
        return vec![0; percents.len()];
    }
    let scaled: Vec<f64> = percents.iter().map(|p| p * 100.0 / total).collect();
    let mut rounded: Vec<i64> = scaled.iter().map(|p| p.floor() as i64).collect();
    let missing = 100 - rounded.iter().sum::<i64>();
    let mut order: Vec<usize> = (0..scaled.len()).collect();
    order.sort_by(|&a, &b| {
        let ra = scaled[a] - scaled[a].floor();
        let rb = scaled[b] - scaled[b].floor();
        rb.partial_cmp(&ra)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(b.cmp(&a))
    });
    for &index in order.iter().take(missing.max(0) as usize) {
        rounded[index] += 1;
    }
    rounded
}

/// Who an override is for: a group (segment, rule, strategy) or named individuals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OverrideKind {
    /// A segment, rule, tenant or strategy: counted as `seg` in a cell.
    #[default]
    Segment,
    /// One or a few named identities (a Flagsmith identity override, LaunchDarkly individual
    /// targets): counted as `id` in a cell.
    Identity,
}

/// A segment, tenant or rule that gets something other than the default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Override {
    /// Segment, rule or tenant name as the vendor names it.
    pub target: String,
    /// A group or named identities.
    #[serde(default)]
    pub kind: OverrideKind,
    /// Whether the flag is on for this target (vendors that can switch per segment).
    pub enabled: bool,
    /// The value served to this target, when it is not plain on/off.
    pub value: Option<serde_json::Value>,
    /// A rollout inside the target ("10% (segment stripe_canary)").
    pub rollout: Rollout,
}

impl Override {
    pub fn summary(&self) -> String {
        let mut text = String::new();
        let rollout = self.rollout.summary();
        if !self.enabled {
            text.push_str("OFF");
        } else if !rollout.is_empty() {
            text.push_str(&rollout);
        } else if let Some(value) = &self.value {
            text.push_str(&value_text(value));
        } else {
            text.push_str("ON");
        }
        format!("{text} ({})", self.target)
    }
}

/// One flag's state in one environment.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct FlagState {
    /// ON/OFF as the vendor holds it. For kill switches: true = SERVING.
    pub enabled: bool,
    /// The value served to everyone not covered by an override (None = the SDK's code default).
    pub value: Option<serde_json::Value>,
    pub rollout: Rollout,
    pub overrides: Vec<Override>,
    /// Vendor version, ETag or content hash: changes whenever the flag changes.
    pub version: Option<String>,
}

/// A flag as one environment holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Flag {
    /// Shared between environments when equal (see `Session::load`): at 5,000 flags x 6
    /// environments one copy instead of six is most of the memory a dashboard holds.
    pub meta: std::sync::Arc<FlagMeta>,
    pub state: FlagState,
}

/// Everything read from one environment at one moment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnvSnapshot {
    pub env: String,
    pub flags: Vec<Flag>,
    pub fetched_at: DateTime<Utc>,
}

impl EnvSnapshot {
    pub fn flag(&self, key: &str) -> Option<&Flag> {
        self.flags.iter().find(|flag| flag.meta.key == key)
    }
}

/// What services get for a flag right now, read the way an SDK reads it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServedState {
    pub enabled: bool,
    pub value: Option<serde_json::Value>,
}

/// Short text for a JSON value as a cell shows it.
pub fn value_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(text) => text.clone(),
        serde_json::Value::Null => "null".to_string(),
        other => other.to_string(),
    }
}

/// How one cell of the dashboard words a flag's state: what services are served, one wording
/// per situation whatever the vendor (the README's list):
/// - kill switches: `SERVING`, `SERVING 10%`, `SERVING 2 seg only` (off by default, on for
///   segments), `SERVING (code default)`, `KILLED`;
/// - other flags: `ON`, `ON 10%`, `ON 33/33/34`, `ON 2 seg only`, `ON 10% (1 seg)` (switched
///   off, on for a percentage segment), `20 +2 seg`, `OFF`,
///   `code default`;
/// - either: `UNKNOWN (rule)` when a rule decides what killswitch cannot read.
pub fn cell_text(kind: FlagKind, state: &FlagState) -> String {
    let kill_switch = kind == FlagKind::KillSwitch;
    let on = if kill_switch { "SERVING" } else { "ON" };
    // (A kill switch on its code default serves; `enabled: false` next to it is a state being
    // predicted for after a kill, which serves off.)
    match state.rollout {
        Rollout::CodeDefault if kill_switch && state.enabled => {
            return "SERVING (code default)".to_string();
        }
        Rollout::CodeDefault if !kill_switch => return "code default".to_string(),
        Rollout::Unknown if state.enabled => return "UNKNOWN (rule)".to_string(),
        _ => {}
    }
    let rollout = state.rollout.summary();
    let overrides = match counted(state.overrides.iter()) {
        text if text.is_empty() => String::new(),
        text => format!(" +{}", text.replace(", ", " +")),
    };
    // Segments that get the feature while everyone else does not: the same situation whether
    // the vendor's toggle is off with a segment override on (Flagsmith) or the default is off
    // with targeting on (flagd, Unleash): an on-call engineer must see it still serves.
    // Named identities count as `id`, groups as `seg`.
    let serving = counted(state.overrides.iter().filter(|o| o.enabled));
    let default_off = !state.enabled
        || (rollout.is_empty() && state.value == Some(serde_json::Value::Bool(false)));
    // The one group serving a flag switched off is a percentage of everyone (Flagsmith's
    // `PERCENTAGE_SPLIT` segment): that percentage is the flag's rollout, and a rollout's
    // "10% -> 50%" must show in the cell.
    if let Some(index) = crate::rollout::percentage_override(state) {
        return format!(
            "{on} {} ({serving})",
            state.overrides[index].rollout.summary()
        );
    }
    if default_off && !serving.is_empty() {
        return format!("{on} {serving} only");
    }
    if kill_switch {
        return if state.enabled {
            format!("SERVING{}", prefixed(&rollout))
        } else {
            "KILLED".to_string()
        };
    }
    if !state.enabled {
        return "OFF".to_string();
    }
    match (&state.value, rollout.is_empty()) {
        (_, false) => format!("ON {rollout}{overrides}"),
        (Some(serde_json::Value::Bool(true)) | None, true) => format!("ON{overrides}"),
        (Some(serde_json::Value::Bool(false)), true) => "ON false".to_string(),
        (Some(value), true) => format!("{}{overrides}", value_text(value)),
    }
}

/// "2 seg", "1 id", "1 seg, 1 id", or "" for none.
fn counted<'a>(overrides: impl Iterator<Item = &'a Override>) -> String {
    let (mut segments, mut identities) = (0, 0);
    for o in overrides {
        match o.kind {
            OverrideKind::Segment => segments += 1,
            OverrideKind::Identity => identities += 1,
        }
    }
    let mut parts = Vec::new();
    if segments > 0 {
        parts.push(format!("{segments} seg"));
    }
    if identities > 0 {
        parts.push(format!("{identities} id"));
    }
    parts.join(", ")
}

fn prefixed(text: &str) -> String {
    if text.is_empty() {
        String::new()
    } else {
        format!(" {text}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_override_still_serving_while_off_is_shown() {
        let state = FlagState {
            enabled: false,
            overrides: vec![Override {
                target: "segment beta".into(),
                kind: OverrideKind::Segment,
                enabled: true,
                value: None,
                rollout: Rollout::Percentage { percent: 10.0 },
            }],
            ..FlagState::default()
        };
        // Switched off, on for a percentage segment (Flagsmith's canary): the percentage shows.
        assert_eq!(
            cell_text(FlagKind::KillSwitch, &state),
            "SERVING 10% (1 seg)"
        );
        assert_eq!(cell_text(FlagKind::Release, &state), "ON 10% (1 seg)");
        let mut tenant = state.clone();
        tenant.overrides[0].rollout = Rollout::Everyone;
        assert_eq!(cell_text(FlagKind::Release, &tenant), "ON 1 seg only");
        // Off by default with targeting on for a segment reads "only" too.
        let targeted = FlagState {
            enabled: true,
            value: Some(false.into()),
            ..state.clone()
        };
        assert_eq!(
            cell_text(FlagKind::KillSwitch, &targeted),
            "SERVING 1 seg only"
        );
        assert_eq!(cell_text(FlagKind::Release, &targeted), "ON 1 seg only");
        let mut all_off = state.clone();
        all_off.overrides[0].enabled = false;
        assert_eq!(cell_text(FlagKind::KillSwitch, &all_off), "KILLED");
    }

    #[test]
    fn code_defaults_and_unread_rules_are_said_not_guessed() {
        let disabled = FlagState {
            enabled: true,
            rollout: Rollout::CodeDefault,
            ..FlagState::default()
        };
        assert_eq!(
            cell_text(FlagKind::KillSwitch, &disabled),
            "SERVING (code default)"
        );
        assert_eq!(cell_text(FlagKind::Config, &disabled), "code default");
        let unread = FlagState {
            enabled: true,
            value: Some(false.into()),
            rollout: Rollout::Unknown,
            ..FlagState::default()
        };
        assert_eq!(cell_text(FlagKind::KillSwitch, &unread), "UNKNOWN (rule)");
        // Either, predicted after a kill: killed.
        for state in [disabled, unread] {
            let killed = FlagState {
                enabled: false,
                ..state
            };
            assert_eq!(cell_text(FlagKind::KillSwitch, &killed), "KILLED");
        }
    }

    #[test]
    fn identity_overrides_count_as_id_not_seg() {
        let identity = Override {
            target: "identity alice".into(),
            kind: OverrideKind::Identity,
            enabled: true,
            value: None,
            rollout: Rollout::Everyone,
        };
        let segment = Override {
            target: "segment beta".into(),
            kind: OverrideKind::Segment,
            ..identity.clone()
        };
        let on = |overrides: Vec<Override>| FlagState {
            enabled: true,
            value: Some(true.into()),
            overrides,
            ..FlagState::default()
        };
        assert_eq!(
            cell_text(FlagKind::Release, &on(vec![identity.clone()])),
            "ON +1 id"
        );
        assert_eq!(
            cell_text(
                FlagKind::Release,
                &on(vec![segment.clone(), identity.clone()])
            ),
            "ON +1 seg +1 id"
        );
        let mut off = on(vec![identity.clone()]);
        off.enabled = false;
        assert_eq!(cell_text(FlagKind::KillSwitch, &off), "SERVING 1 id only");
        let mut dark = on(vec![segment, identity]);
        dark.value = Some(false.into());
        assert_eq!(cell_text(FlagKind::Release, &dark), "ON 1 seg, 1 id only");
    }

    #[test]
    fn kill_switch_by_prefix_or_vendor_mark() {
        assert_eq!(
            FlagKind::classify("kill_switch_checkout", None),
            FlagKind::KillSwitch
        );
        assert_eq!(
            FlagKind::classify("payments_off", Some(FlagKind::KillSwitch)),
            FlagKind::KillSwitch
        );
        assert_eq!(
            FlagKind::classify("checkout_v2", Some(FlagKind::Release)),
            FlagKind::Release
        );
        assert_eq!(FlagKind::from_label("kill-switch"), FlagKind::KillSwitch);
        assert_eq!(FlagKind::from_label("A/B"), FlagKind::Other);
    }

    #[test]
    fn even_three_way_split_reads_33_33_34() {
        let rollout = Rollout::from_weights(&[
            ("control".into(), 33.0),
            ("a".into(), 33.0),
            ("b".into(), 33.0),
        ]);
        assert_eq!(rollout.summary(), "33/33/34");
        let unleash = Rollout::from_weights(&[
            ("a".into(), 333.0),
            ("b".into(), 333.0),
            ("c".into(), 334.0),
        ]);
        assert_eq!(unleash.summary(), "33/33/34");
        let uneven = Rollout::from_weights(&[("a".into(), 1.0), ("b".into(), 3.0)]);
        assert_eq!(uneven.summary(), "25/75");
    }

    #[test]
    fn percentages_print_whole_or_one_decimal() {
        assert_eq!(Rollout::Percentage { percent: 10.0 }.summary(), "10%");
        assert_eq!(Rollout::Percentage { percent: 12.5 }.summary(), "12.5%");
        assert_eq!(Rollout::Everyone.summary(), "");
    }

    #[test]
    fn cells_use_words_not_booleans() {
        let serving = FlagState {
            enabled: true,
            value: Some(true.into()),
            ..Default::default()
        };
        let killed = FlagState {
            enabled: false,
            value: Some(false.into()),
            ..Default::default()
        };
        assert_eq!(cell_text(FlagKind::KillSwitch, &serving), "SERVING");
        assert_eq!(cell_text(FlagKind::KillSwitch, &killed), "KILLED");
        assert_eq!(cell_text(FlagKind::Release, &killed), "OFF");
        let canary = FlagState {
            enabled: true,
            value: Some(false.into()),
            rollout: Rollout::Percentage { percent: 10.0 },
            ..Default::default()
        };
        assert_eq!(cell_text(FlagKind::Release, &canary), "ON 10%");
        let config = FlagState {
            enabled: true,
            value: Some(20.into()),
            overrides: vec![Override {
                target: "eu_tenants".into(),
                kind: OverrideKind::Segment,
                enabled: true,
                value: Some(50.into()),
                rollout: Rollout::Everyone,
            }],
            ..Default::default()
        };
        assert_eq!(cell_text(FlagKind::Config, &config), "20 +1 seg");
        assert_eq!(config.overrides[0].summary(), "50 (eu_tenants)");
    }

    #[test]
    fn overdue_counts_whole_days_after_the_date() {
        let meta = FlagMeta {
            expected_removal: NaiveDate::from_ymd_opt(2026, 10, 1),
            ..Default::default()
        };
        let today = NaiveDate::from_ymd_opt(2026, 11, 24).unwrap_or_default();
        assert_eq!(meta.days_overdue(today), Some(54));
        let due_today = NaiveDate::from_ymd_opt(2026, 10, 1).unwrap_or_default();
        assert_eq!(meta.days_overdue(due_today), None);
    }
}
