//! The undo key: reverts the last change killswitch recorded for the selected cell (a kill ->
//! restore, a rollout -> the rollout before it), as `killswitch undo` does. The audit log is
//! read in a task ([`Effect::FindLastChange`]); its answer opens the flip dialog with the
//! reverse change, or says on the message line why there is nothing to undo.
//!
//! The guard: the flag must still be what that change left it ("moved since" refuses), and the
//! state the dialog was opened on is the request's `seen`, so the transaction's re-read refuses
//! a move made while the dialog is open.

use tui_input::Input;

use super::app::{DialogStage, Effect, FlipDialog, Level, Mode, State, selected_cell};
use super::rollout::{RolloutPart, Shared, ask_shared, percent_text};
use crate::audit::AuditRecord;
use crate::commands::undo::{reverse, still_as_left};
use crate::flip::{self, Change};
use crate::rollout::RolloutTarget;
use crate::text;

/// The undo key: asks the audit log for the cell's last change.
pub fn open(state: &mut State) -> Vec<Effect> {
    if state.read_only {
        state.set_message(
            Level::Error,
            "READ-ONLY: started with --read-only, undo is disabled",
        );
        return Vec::new();
    }
    let Some((env, _, flag)) = selected_cell(state) else {
        return Vec::new();
    };
    state.set_message(
        Level::Info,
        format!(
            "undo: reading the audit log for the last change of {} in {}…",
            text::line(&flag.meta.key),
            env.name
        ),
    );
    vec![Effect::FindLastChange {
        env: env.name,
        flag: flag.meta.key.clone(),
    }]
}

/// The audit log answered: opens the dialog with the reverse change, or says why not.
pub fn found(
    state: &mut State,
    env: &str,
    flag: &str,
    result: Result<Option<Box<AuditRecord>>, String>,
) -> Vec<Effect> {
    if !matches!(state.mode, Mode::Normal) {
        // Another screen opened meanwhile: the answer is not acted on behind it.
        return Vec::new();
    }
    let shown = text::line(flag);
    let record = match result {
        Err(error) => {
            state.set_message(
                Level::Error,
                format!("undo: cannot read the audit log: {error}"),
            );
            return Vec::new();
        }
        Ok(None) => {
            state.set_message(
                Level::Error,
                format!(
                    "undo: killswitch has recorded no change of {shown} in {env}: nothing to undo"
                ),
            );
            return Vec::new();
        }
        Ok(Some(record)) => record,
    };
    let Some(col) = state.envs.iter().position(|column| column.name == env) else {
        return Vec::new();
    };
    let column = state.envs[col].clone();
    let current = state
        .rows
        .iter()
        .find(|row| row.meta.key == flag)
        .and_then(|row| Some((row.meta.kind, state.flag_at(row, col)?.clone())));
    let Some((kind, current)) = current else {
        state.set_message(
            Level::Error,
            format!("undo: {shown} is not loaded in {env}: wait for it, then press again"),
        );
        return Vec::new();
    };
    let now = flip::cell(kind, &current.state);
    let what = format!(
        "{} by {} at {} (audit {})",
        text::line(&record.action),
        text::line(&record.operator),
        record.at.format("%Y-%m-%d %H:%M:%S UTC"),
        text::line(&record.id)
    );
    if !still_as_left(&record, &current) {
        state.set_message(
            Level::Error,
            format!(
                "undo refused: {shown} in {env} moved since killswitch's last change ({what} left it {}; it is {now} now). Nothing was changed; see the audit log (a)",
                text::line(&record.to)
            ),
        );
        return Vec::new();
    }
    let change = match reverse(&record) {
        Ok(change) => change,
        Err(why) => {
            state.set_message(Level::Error, format!("undo: cannot undo {what}: {why}"));
            return Vec::new();
        }
    };
    if flip::already_done(env, flag, &current.state, &change).unwrap_or(false) {
        state.set_message(
            Level::Error,
            format!("undo: {shown} in {env} already is {now}: nothing to undo"),
        );
        return Vec::new();
    }
    let request = flip::FlipRequest {
        env: env.to_string(),
        flag: flag.to_string(),
        kind,
        change: change.clone(),
        seen: current.state.clone(),
        note: String::new(),
        operator: state.operator.clone(),
    };
    let rollout = match &change {
        Change::Rollout { target } => Some(Box::new(RolloutPart {
            steps: state.rollout_steps.steps.clone(),
            now: super::rollout::now_text(&current.state),
            percent: match target {
                RolloutTarget::Percent { percent } => Input::new(percent_text(*percent)),
                RolloutTarget::Variant { .. } => Input::default(),
            },
            variants: match target {
                RolloutTarget::Variant { variant } => vec![variant.clone()],
                RolloutTarget::Percent { .. } => Vec::new(),
            },
            variant: 0,
            fixed: true,
            shared: Shared::NotAsked,
        })),
        Change::Switch { .. } => None,
    };
    let draft = state.drafts.remove(&(env.to_string(), flag.to_string()));
    let mut dialog = FlipDialog {
        sentence: flip::describe_change(kind, flag, env, &current.state, &change),
        request,
        protected: column.protected,
        stage: DialogStage::Note,
        from_draft: draft.is_some(),
        note: draft.map(Input::new).unwrap_or_default(),
        confirm: Input::default(),
        error: None,
        warning: column.is_stale(state.now, state.refresh_interval).then(|| {
            format!("{env} data is not current; the flag is re-read before anything changes")
        }),
        set: Vec::new(),
        expected: env.to_string(),
        rollout,
        undoes: Some(record),
    };
    let effects = ask_shared(&mut dialog);
    state.message = None;
    state.mode = Mode::Flip(Box::new(dialog));
    effects
}
