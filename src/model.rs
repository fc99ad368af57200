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

/// What a cell's state means, for colour: chosen with the wording, from the state, never from
/// the words. A kill switch's tones and another flag's differ (a kill switch's "on" is the
/// healthy state, another flag's "off" is just off).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tone {
    /// A kill switch serving everyone, a percentage, or its code default.
    Serving,
    /// A kill switch killed for everyone.
    Killed,
    /// A kill switch killed by default while segments or identities still get the feature
    /// (`SERVING 1 seg only`): not what "killed" means, not what "serving" means either.
    PartlyKilled,
    /// Another flag on for everyone (with any value, and any overrides).
    On,
    /// Another flag on for a percentage or split of the default audience (`ON 10%`).
    Rollout,
    /// Another flag off by default, on for segments or identities only (`ON 1 seg only`).
    Targeted,
    /// Another flag off.
    Off,
    /// Another flag left to the services' code default.
    CodeDefault,
    /// A rule decides what killswitch cannot read.
    Unknown,
}

/// One cell of the dashboard, built once from the domain state: the words, and what they mean
/// ([`Tone`]) for the colour. Views pick colours from `tone`, never by matching `text`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CellView {
    /// The display wording (docs/dashboard.md's list); views may compact it to fit a column.
    pub text: String,
    pub tone: Tone,
}

impl CellView {
    /// How one cell of the dashboard words a flag's state: what services are served, one
    /// wording per situation whatever the vendor (docs/dashboard.md's list):
    /// - kill switches: `SERVING`, `SERVING 10%`, `SERVING 2 seg only` (off by default, on for
    ///   segments), `SERVING (code default)`, `KILLED`;
    /// - other flags: `ON`, `ON 10%`, `ON 33/33/34`, `ON 2 seg only`, `ON 10% (1 seg)` (switched
    ///   off, on for a percentage segment), `20 +2 seg`, `OFF`, `code default`;
    /// - either: `UNKNOWN (rule)` when a rule decides what killswitch cannot read.
    pub fn of(kind: FlagKind, state: &FlagState) -> CellView {
        let (text, tone) = classify(kind, state);
        CellView { text, tone }
    }
}

/// The display wording of a cell ([`CellView::of`]'s `text`).
pub fn cell_text(kind: FlagKind, state: &FlagState) -> String {
    CellView::of(kind, state).text
}

/// The stable wording of a state for the audit log's `from`/`to` (and the JSON results that
/// quote them): docs/dashboard.md's cell table as of audit record version 1. Scripts and people read
/// old logs next to new ones, so this wording does not follow the dashboard's display: it is
/// pinned by `model::tests::the_audit_wording_is_pinned`. When the display words change, change
/// [`CellView`]'s text, not this.
pub fn audit_cell(kind: FlagKind, state: &FlagState) -> String {
    classify(kind, state).0
}

/// The one classification of a state: its words (the audit log's stable wording, which the
/// display uses as it is today) and its tone.
fn classify(kind: FlagKind, state: &FlagState) -> (String, Tone) {
    let kill_switch = kind == FlagKind::KillSwitch;
    let on = if kill_switch { "SERVING" } else { "ON" };
    // (A kill switch on its code default serves; `enabled: false` next to it is a state being
    // predicted for after a kill, which serves off.)
    match state.rollout {
        Rollout::CodeDefault if kill_switch && state.enabled => {
            return ("SERVING (code default)".to_string(), Tone::Serving);
        }
        Rollout::CodeDefault if !kill_switch => {
            return ("code default".to_string(), Tone::CodeDefault);
        }
        Rollout::Unknown if state.enabled => return ("UNKNOWN (rule)".to_string(), Tone::Unknown),
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
    // A kill switch so read serves a percentage of everyone, like `SERVING 10%`.
    if let Some(index) = crate::rollout::percentage_override(state) {
        let tone = if kill_switch {
            Tone::Serving
        } else {
            Tone::Rollout
        };
        return (
            format!(
                "{on} {} ({serving})",
                state.overrides[index].rollout.summary()
            ),
            tone,
        );
    }
    if default_off && !serving.is_empty() {
        let tone = if kill_switch {
            Tone::PartlyKilled
        } else {
            Tone::Targeted
        };
        return (format!("{on} {serving} only"), tone);
    }
    if kill_switch {
        return if state.enabled {
            (format!("SERVING{}", prefixed(&rollout)), Tone::Serving)
        } else {
            ("KILLED".to_string(), Tone::Killed)
        };
    }
    if !state.enabled {
        return ("OFF".to_string(), Tone::Off);
    }
    match (&state.value, rollout.is_empty()) {
        (_, false) => (format!("ON {rollout}{overrides}"), Tone::Rollout),
        (Some(serde_json::Value::Bool(true)) | None, true) => (format!("ON{overrides}"), Tone::On),
        (Some(serde_json::Value::Bool(false)), true) => ("ON false".to_string(), Tone::On),
        (Some(value), true) => (format!("{}{overrides}", value_text(value)), Tone::On),
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

    /// Every situation's state, for the tables below.
    fn situations() -> Vec<(FlagKind, FlagState)> {
        let segment = |enabled| Override {
            target: "segment beta".into(),
            kind: OverrideKind::Segment,
            enabled,
            value: None,
            rollout: Rollout::Everyone,
        };
        let identity = Override {
            target: "identity alice".into(),
            kind: OverrideKind::Identity,
            ..segment(true)
        };
        let on = FlagState {
            enabled: true,
            value: Some(true.into()),
            ..FlagState::default()
        };
        let off = FlagState {
            enabled: false,
            value: Some(false.into()),
            ..FlagState::default()
        };
        let percent = FlagState {
            rollout: Rollout::Percentage { percent: 10.0 },
            ..on.clone()
        };
        let split = FlagState {
            rollout: Rollout::from_weights(&[
                ("a".into(), 1.0),
                ("b".into(), 1.0),
                ("c".into(), 1.0),
            ]),
            ..on.clone()
        };
        let code_default = FlagState {
            rollout: Rollout::CodeDefault,
            ..on.clone()
        };
        let unknown = FlagState {
            rollout: Rollout::Unknown,
            ..on.clone()
        };
        let partly = FlagState {
            overrides: vec![segment(true), identity],
            ..off.clone()
        };
        let with_overrides = FlagState {
            overrides: vec![segment(true), segment(false)],
            ..on.clone()
        };
        let value = FlagState {
            value: Some(20.into()),
            overrides: vec![segment(true)],
            ..on.clone()
        };
        let on_false = FlagState {
            value: Some(false.into()),
            ..on.clone()
        };
        let canary_segment = FlagState {
            overrides: vec![Override {
                rollout: Rollout::Percentage { percent: 10.0 },
                ..segment(true)
            }],
            ..off.clone()
        };
        use FlagKind::{KillSwitch, Release};
        vec![
            (KillSwitch, on.clone()),
            (KillSwitch, off.clone()),
            (KillSwitch, percent.clone()),
            (KillSwitch, code_default.clone()),
            (KillSwitch, unknown.clone()),
            (KillSwitch, partly.clone()),
            (Release, on),
            (Release, off),
            (Release, percent),
            (Release, split),
            (Release, code_default),
            (Release, unknown),
            (Release, partly),
            (Release, with_overrides),
            (FlagKind::Config, value),
            (Release, on_false),
            (KillSwitch, canary_segment.clone()),
            (Release, canary_segment),
        ]
    }

    #[test]
    fn the_audit_wording_is_pinned() {
        // The audit log's `from`/`to` (record version 1). Old logs are read next to new ones:
        // this table changes only with a new record version, never with the dashboard's words.
        let expected = [
            "SERVING",
            "KILLED",
            "SERVING 10%",
            "SERVING (code default)",
            "UNKNOWN (rule)",
            "SERVING 1 seg, 1 id only",
            "ON",
            "OFF",
            "ON 10%",
            "ON 33/33/34",
            "code default",
            "UNKNOWN (rule)",
            "ON 1 seg, 1 id only",
            "ON +2 seg",
            "20 +1 seg",
            "ON false",
            "SERVING 10% (1 seg)",
            "ON 10% (1 seg)",
        ];
        let words: Vec<String> = situations()
            .iter()
            .map(|(kind, state)| audit_cell(*kind, state))
            .collect();
        assert_eq!(words, expected);
    }

    #[test]
    fn each_cell_carries_its_tone_with_its_words() {
        let expected = [
            Tone::Serving,
            Tone::Killed,
            Tone::Serving,
            Tone::Serving,
            Tone::Unknown,
            Tone::PartlyKilled,
            Tone::On,
            Tone::Off,
            Tone::Rollout,
            Tone::Rollout,
            Tone::CodeDefault,
            Tone::Unknown,
            Tone::Targeted,
            Tone::On,
            Tone::On,
            Tone::On,
            Tone::Serving,
            Tone::Rollout,
        ];
        let tones: Vec<Tone> = situations()
            .iter()
            .map(|(kind, state)| CellView::of(*kind, state).tone)
            .collect();
        assert_eq!(tones, expected);
        for (kind, state) in situations() {
            assert_eq!(CellView::of(kind, &state).text, cell_text(kind, &state));
        }
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
