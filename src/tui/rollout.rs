//! The rollout dialog's own part: choosing the target (a percentage, with the configured
//! `[rollout] steps` one key away, or for a multivariate flag the variant everyone gets) and
//! learning which environments the write reaches. Everything after that (the note, the typed
//! confirmation, applying, the outcome) is the flip dialog's, in `app`: a rollout is a
//! [`FlipDialog`] whose request carries [`Change::Rollout`] and which starts one step earlier,
//! at [`DialogStage::Target`].

use crossterm::event::{KeyCode, KeyEvent};
use tui_input::Input;

use super::app::{DialogStage, Effect, FlipDialog, Level, Mode, State, edit_capped, selected_cell};
use super::keymap::{Command, DialogCommand};
use crate::flip::{self, Change};
use crate::model::{FlagKind, FlagState, Rollout};
use crate::rollout::{PERCENT_RESOLUTION, RolloutTarget, share_on};

/// The longest percentage typed ("12.375%" and some room).
const PERCENT_MAX_CHARS: usize = 12;

/// What is known of the other environments the write reaches.
#[derive(Debug, Clone, PartialEq)]
pub enum Shared {
    /// The target is still being chosen: nothing asked yet.
    NotAsked,
    /// The vendor is being asked ([`Effect::RolloutShared`]).
    Checking,
    /// The vendor's answer: other environments the same write changes (empty: only this one).
    Known(Vec<String>),
    /// The vendor could not say: nothing can be confirmed.
    Failed(String),
}

/// The rollout dialog's state beside the flip dialog's.
#[derive(Debug, Clone)]
pub struct RolloutPart {
    /// `[rollout] steps`, ascending.
    pub steps: Vec<f64>,
    /// What the default audience gets now ("10%", "variant control", a split), for the dialog.
    pub now: String,
    /// The typed percentage (boolean flags).
    pub percent: Input,
    /// A multivariate flag's variants (empty for a boolean flag): the target is one of them.
    pub variants: Vec<String>,
    /// The chosen variant: an index into `variants`.
    pub variant: usize,
    /// The target is given (an undo): the dialog starts at the note and cannot go back to it.
    pub fixed: bool,
    pub shared: Shared,
}

impl RolloutPart {
    /// The target as chosen so far, or why it is not one.
    pub fn target(&self) -> Result<RolloutTarget, String> {
        match self.variants.get(self.variant) {
            Some(variant) => Ok(RolloutTarget::Variant {
                variant: variant.clone(),
            }),
            None if !self.variants.is_empty() => Err("choose a variant".to_string()),
            None => RolloutTarget::parse_percent(self.percent.value())
                .map(|percent| RolloutTarget::Percent { percent })
                .map_err(|error| error.to_string()),
        }
    }
}

pub use crate::rollout::percent_arg as percent_text;

/// The variants a rollout can send everyone to: a split's variants, in the vendor's order.
/// Empty for a boolean flag.
fn variants_of(state: &FlagState) -> Vec<String> {
    match &state.rollout {
        Rollout::Split { variants } => variants.iter().map(|v| v.variant.clone()).collect(),
        _ if share_on(state).is_none() => match &state.value {
            Some(serde_json::Value::String(value)) if state.rollout == Rollout::Everyone => {
                vec![value.clone()]
            }
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}

/// What the default audience gets now, in words: "10%", "variant control", or a split's
/// variants with their shares ("control/treatment_a/treatment_b 33/33/34").
pub fn now_text(state: &FlagState) -> String {
    if let Some(target) = RolloutTarget::of_state(state) {
        return target.summary();
    }
    match &state.rollout {
        // The shares as the cell rounds them, beside the variants' names.
        Rollout::Split { variants } => format!(
            "{} {}",
            variants
                .iter()
                .map(|v| v.variant.as_str())
                .collect::<Vec<_>>()
                .join("/"),
            state.rollout.summary()
        ),
        other => other.summary(),
    }
}

/// The rollout key: opens the dialog on the selected cell, or says on the message line why
/// not (read-only, a kill switch, a rule killswitch cannot read).
pub fn open(state: &mut State) -> Vec<Effect> {
    if state.read_only {
        state.set_message(
            Level::Error,
            "READ-ONLY: started with --read-only, rollouts are disabled",
        );
        return Vec::new();
    }
    if !state.marks.is_empty() {
        state.set_message(
            Level::Error,
            "a rollout changes one cell: Esc clears the marks, then p on the cell",
        );
        return Vec::new();
    }
    let Some((env, row, flag)) = selected_cell(state) else {
        return Vec::new();
    };
    let key = crate::text::line(&flag.meta.key);
    let cell = flip::cell(row.meta.kind, &flag.state);
    if row.meta.kind == FlagKind::KillSwitch {
        // A kill switch serves or is killed, whole. A percentage of one would leave part of the
        // traffic without the protection while its cell still said SERVING: in an incident the
        // on-call engineer kills or restores it, they do not dial it.
        let flip_key = state
            .keymap
            .keys_for(Command::Flip)
            .first()
            .cloned()
            .unwrap_or_else(|| "f".into());
        state.set_message(
            Level::Error,
            format!(
                "{key} is a kill switch: {flip_key} kills or restores it whole; rollouts are for release flags and experiments"
            ),
        );
        return Vec::new();
    }
    let variants = variants_of(&flag.state);
    let share = share_on(&flag.state);
    if variants.is_empty() && share.is_none() {
        state.set_message(
            Level::Error,
            format!(
                "{key} in {} is {cell}: killswitch cannot read its rollout, so it cannot step it (change it in the vendor's console)",
                env.name
            ),
        );
        return Vec::new();
    }
    let steps = state.rollout_steps.steps.clone();
    let start = share.map(|now| {
        state
            .rollout_steps
            .next_step(now)
            .or_else(|| state.rollout_steps.previous_step(now))
            .unwrap_or(now)
    });
    let now = now_text(&flag.state);
    let part = RolloutPart {
        steps,
        now,
        percent: Input::new(start.map(percent_text).unwrap_or_default()),
        variants,
        variant: 0,
        fixed: false,
        shared: Shared::NotAsked,
    };
    let warning = env.is_stale(state.now, state.refresh_interval).then(|| {
        format!(
            "{} data is not current; the flag is re-read before anything changes",
            env.name
        )
    });
    let draft = state
        .drafts
        .remove(&(env.name.clone(), flag.meta.key.clone()));
    let mut dialog = FlipDialog {
        request: flip::FlipRequest {
            env: env.name.clone(),
            flag: flag.meta.key.clone(),
            kind: row.meta.kind,
            change: Change::Rollout {
                target: RolloutTarget::Percent { percent: 0.0 },
            },
            seen: flag.state.clone(),
            note: String::new(),
            operator: state.operator.clone(),
        },
        sentence: String::new(),
        protected: env.protected,
        stage: DialogStage::Target,
        from_draft: draft.is_some(),
        note: draft.map(Input::new).unwrap_or_default(),
        confirm: Input::default(),
        error: None,
        warning,
        set: Vec::new(),
        expected: env.name.clone(),
        rollout: Some(Box::new(part)),
        undoes: None,
    };
    refresh(&mut dialog);
    state.mode = Mode::Flip(Box::new(dialog));
    Vec::new()
}

/// Brings the request and the sentence up to date with the target as typed; a target that is
/// not one (or that the flag already has) is said at once.
pub fn refresh(dialog: &mut FlipDialog) {
    let Some(part) = &dialog.rollout else {
        return;
    };
    let request = &dialog.request;
    match part.target() {
        Ok(target) => {
            dialog.error = target.reached_by(&request.seen).then(|| {
                format!(
                    "{} already gets {}: choose another target",
                    request.env,
                    target.summary()
                )
            });
            dialog.request.change = Change::Rollout { target };
            let request = &dialog.request;
            dialog.sentence = flip::describe_change(
                request.kind,
                &request.flag,
                &request.env,
                &request.seen,
                &request.change,
            );
        }
        Err(problem) => {
            dialog.sentence = format!(
                "ROLLOUT {} in {}: {} -> ?",
                request.flag,
                request.env,
                flip::cell(request.kind, &request.seen)
            );
            dialog.error = Some(problem);
        }
    }
}

/// The effect asking which environments the write reaches.
pub fn ask_shared(dialog: &mut FlipDialog) -> Vec<Effect> {
    let Some(part) = dialog.rollout.as_mut() else {
        return Vec::new();
    };
    let Change::Rollout { target } = &dialog.request.change else {
        return Vec::new();
    };
    part.shared = Shared::Checking;
    vec![Effect::RolloutShared {
        env: dialog.request.env.clone(),
        flag: dialog.request.flag.clone(),
        target: target.clone(),
        seen: dialog.request.seen.clone(),
    }]
}

/// Keys the rollout part handles: everything at the target step, and at the note the way back
/// to the target and the wait for the vendor's answer. `None`: the flip dialog's keys apply.
/// `Some((effects, cancelled))` otherwise.
pub fn input(
    dialog: &mut FlipDialog,
    key: KeyEvent,
    command: Option<DialogCommand>,
) -> Option<(Vec<Effect>, bool)> {
    let part = dialog.rollout.as_mut()?;
    match dialog.stage {
        DialogStage::Target => {}
        DialogStage::Note if key.code == KeyCode::BackTab && !part.fixed => {
            part.shared = Shared::NotAsked;
            dialog.stage = DialogStage::Target;
            refresh(dialog);
            return Some((Vec::new(), false));
        }
        DialogStage::Note if command == Some(DialogCommand::Accept) => {
            let waiting = match &part.shared {
                Shared::Checking => Some(
                    "still asking the vendor which environments this change reaches: Enter again in a moment"
                        .to_string(),
                ),
                Shared::Failed(error) => Some(format!(
                    "cannot tell which environments this rollout changes ({error}): nothing can be confirmed; Esc cancels"
                )),
                Shared::NotAsked | Shared::Known(_) => None,
            };
            if let Some(waiting) = waiting {
                // The note is checked now all the same, so its problem is not a surprise later.
                dialog.error = Some(match crate::text::validate_note(dialog.note.value()) {
                    Err(problem) => problem.to_string(),
                    Ok(_) => waiting,
                });
                return Some((Vec::new(), false));
            }
            return None;
        }
        _ => return None,
    }
    let step = |part: &mut RolloutPart, up: bool| {
        if !part.variants.is_empty() {
            // A list: down (or +) is the next variant, as drawn.
            let last = part.variants.len() - 1;
            part.variant = if up {
                part.variant.saturating_sub(1)
            } else {
                (part.variant + 1).min(last)
            };
            return;
        }
        let typed = RolloutTarget::parse_percent(part.percent.value()).ok();
        let next = match (typed, up) {
            (Some(now), true) => crate::rollout::next_step(&part.steps, now),
            (Some(now), false) => crate::rollout::previous_step(&part.steps, now),
            (None, true) => part.steps.first().copied(),
            (None, false) => part.steps.last().copied(),
        };
        if let Some(next) = next {
            part.percent = Input::new(percent_text(next));
        }
    };
    match (command, key.code) {
        (Some(DialogCommand::Cancel), _) => return Some((Vec::new(), true)),
        (Some(DialogCommand::Accept), _) => {
            refresh(dialog);
            if dialog.error.is_none() {
                dialog.stage = DialogStage::Note;
                return Some((ask_shared(dialog), false));
            }
            return Some((Vec::new(), false));
        }
        (Some(DialogCommand::NextStep), _) => step(part, true),
        (Some(DialogCommand::PreviousStep), _) => step(part, false),
        _ if part.variants.is_empty() => {
            edit_capped(&mut part.percent, key, PERCENT_MAX_CHARS);
        }
        _ => {}
    }
    refresh(dialog);
    Some((Vec::new(), false))
}

/// The keys of the target step, for the dialog's border and the footer.
pub fn hint(dialog: &FlipDialog, keymap: &crate::tui::keymap::Keymap) -> String {
    let keys = |command| {
        let keys: Vec<String> = keymap
            .dialog
            .keys(command)
            .map(crate::tui::keymap::key_display)
            .take(
                if dialog
                    .rollout
                    .as_ref()
                    .is_some_and(|p| !p.variants.is_empty())
                {
                    1
                } else {
                    2
                },
            )
            .collect();
        keys.join("/")
    };
    let (up, down) = (
        keys(DialogCommand::NextStep),
        keys(DialogCommand::PreviousStep),
    );
    match &dialog.rollout {
        Some(part) if !part.variants.is_empty() => format!("{up}/{down}: variant"),
        _ => format!("{up}: next step · {down}: previous step"),
    }
}

/// The vendor's answer to the target step, from a task.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// The flag can take the target (as the vendor's states show it: a variant named by its
    /// name becomes its value), and the write also changes these environments.
    Shared {
        target: RolloutTarget,
        with: Vec<String>,
    },
    /// The flag cannot take the target (a variant it lacks, a fractional percentage where the
    /// vendor's SDKs read only whole ones): the vendor's reason, in words.
    Refused(String),
    /// The vendor could not say.
    Failed(String),
}

/// What the runner asks the vendor once a target is chosen: whether the flag can take it
/// (`FlagWriter::rollout_choices`, the check `killswitch rollout` makes), then which other
/// environments the write changes (`FlagWriter::rollout_shared_with`).
pub async fn ask(
    writer: &dyn crate::provider::FlagWriter,
    flag: &str,
    target: &RolloutTarget,
    seen: &FlagState,
) -> Answer {
    let target = match writer.rollout_choices(flag).await {
        Ok(Some(choices)) => match choices.check(target) {
            Ok(()) => choices.canonical(target),
            Err(problem) => return Answer::Refused(problem),
        },
        Ok(None) => target.clone(),
        Err(error) => return Answer::Failed(error.message),
    };
    match writer.rollout_shared_with(flag, &target, seen).await {
        Ok(with) => Answer::Shared { target, with },
        Err(error) => Answer::Failed(error.message),
    }
}

/// The vendor answered: a refused target goes back to the target step with the reason; else
/// each protected environment the write reaches (and any this config does not know, which
/// cannot be shown to be unprotected) joins the names to type.
pub fn shared_known(
    state: &mut State,
    env: &str,
    flag: &str,
    target: &RolloutTarget,
    answer: Answer,
) {
    let protected_envs: Vec<(String, bool)> = state
        .envs
        .iter()
        .map(|column| (column.name.clone(), column.protected))
        .collect();
    let Mode::Flip(dialog) = &mut state.mode else {
        return;
    };
    if dialog.request.env != env
        || dialog.request.flag != flag
        || dialog.request.change.rollout() != Some(target)
    {
        return;
    }
    let Some(part) = dialog.rollout.as_mut() else {
        return;
    };
    if part.shared != Shared::Checking {
        // The operator went back to the target since: a new question is on its way.
        return;
    }
    match answer {
        Answer::Failed(error) => part.shared = Shared::Failed(error),
        Answer::Refused(problem) if !part.fixed => {
            part.shared = Shared::NotAsked;
            dialog.stage = DialogStage::Target;
            refresh(dialog);
            dialog.error = Some(format!("{env}: {problem}"));
            return;
        }
        Answer::Refused(problem) => part.shared = Shared::Failed(problem),
        Answer::Shared {
            target,
            with: mut names,
        } => {
            if dialog.request.change.rollout() != Some(&target) {
                // The vendor's own name for the target (a variant's value): what the states,
                // the audit record and the verification compare with.
                dialog.request.change = flip::Change::Rollout { target };
                let request = &dialog.request;
                dialog.sentence = flip::describe_change(
                    request.kind,
                    &request.flag,
                    &request.env,
                    &request.seen,
                    &request.change,
                );
            }
            names.retain(|name| name != env);
            names.dedup();
            // The same rule as `killswitch rollout`: this environment if protected, and each
            // environment the write shares that is protected or that the config does not know.
            let to_type = crate::commands::rollout::to_type(env, &names, |name| {
                protected_envs
                    .iter()
                    .find(|(known, _)| known == name)
                    .map(|(_, protected)| *protected)
            });
            dialog.protected = !to_type.is_empty();
            dialog.expected = if to_type.is_empty() {
                env.to_string()
            } else {
                to_type
                    .iter()
                    .map(|name| crate::text::line(name))
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            part.shared = Shared::Known(names);
        }
    }
    if dialog.stage == DialogStage::Note
        && dialog
            .error
            .as_deref()
            .is_some_and(|error| error.starts_with("still asking"))
    {
        dialog.error = None;
    }
}

/// Whether a percentage is one of the steps.
pub fn is_step(steps: &[f64], percent: f64) -> bool {
    steps
        .iter()
        .any(|step| (step - percent).abs() < PERCENT_RESOLUTION / 2.0)
}
