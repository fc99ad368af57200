//! `killswitch undo --env ENV --flag FLAG --note NOTE`: reverts the last change killswitch
//! recorded for a flag in one environment.
//!
//! Rules:
//! - The change undone is [`crate::audit::AuditLog::last_change`]: the newest outcome (or
//!   reconcile) record of that flag there whose result is `ok`. Refused, failed, pending and
//!   unknown outcomes are not changes killswitch made. None: exit 3, nothing to undo.
//! - Guarded: the flag must still be what that change left it (its `to` cell, and the rollout
//!   or on/off state it asked for). Anything else means someone moved it since: exit 9, with
//!   what it is now, and nothing is written.
//! - The reverse: a kill / turn off is restored / turned on, a restore / turn on is killed /
//!   turned off, a rollout goes back to its `previous` target (the rollout before it). A rollout
//!   whose state before cannot be said as one target (a split across several variants) is
//!   refused (exit 4): killswitch will not guess it.
//! - The undo is itself a change through the same transaction ([`crate::flip`]): audited with
//!   the reverse action ("restore", "kill", "rollout"), its note followed by
//!   `(undo of <action> <audit id>)`. So the newest change after an undo is the undo, and
//!   undoing again re-does the first change.

use std::io::Write;

use anyhow::Result;

use super::exit;
use super::kill::Confirm;
use super::rollout::{ChangeReport, apply, open};
use crate::audit::AuditRecord;
use crate::cli::UndoArgs;
use crate::flip::{self, Change};
use crate::model::Flag;
use crate::session::Session;

/// Runs `undo`.
pub async fn run(
    session: &Session,
    args: &UndoArgs,
    confirm: &mut dyn Confirm,
    out: &mut dyn Write,
) -> Result<i32> {
    let mut report = ChangeReport::new(&args.env, &args.flag, "undo");
    let code = decide(session, args, confirm, &mut report).await;
    report.base.exit_code = code;
    report.print(args.output, out)?;
    Ok(code)
}

/// The note an undo is audited with: the operator's, then which change it reverts.
pub fn undo_note(note: &str, undone: &AuditRecord) -> String {
    format!("{} (undo of {} {})", note.trim(), undone.action, undone.id)
}

/// The change that reverts `undone`, when there is one: `Err(why)` otherwise.
pub fn reverse(undone: &AuditRecord) -> Result<Change, String> {
    match &undone.rollout {
        None => Ok(Change::Switch {
            enabled: !undone.enabled,
        }),
        Some(_) => match &undone.previous {
            Some(previous) => Ok(Change::Rollout {
                target: previous.clone(),
            }),
            None => Err(format!(
                "the rollout before it ({}) is not one percentage or variant (a split across several variants, or a rule killswitch cannot read): killswitch will not guess it. Set it back in the vendor's console",
                crate::text::line(&undone.from)
            )),
        },
    }
}

/// Whether `flag` still is what `undone` left it: the cell it recorded, and the state it asked
/// for.
pub fn still_as_left(undone: &AuditRecord, flag: &Flag) -> bool {
    let reached = match &undone.rollout {
        Some(target) => target.reached_by(&flag.state),
        None => flag.state.enabled == undone.enabled,
    };
    reached && flip::cell(flag.meta.kind, &flag.state) == undone.to
}

async fn decide(
    session: &Session,
    args: &UndoArgs,
    confirm: &mut dyn Confirm,
    report: &mut ChangeReport,
) -> i32 {
    let env = args.env.as_str();
    let (connection, current) = match open(session, env, &args.flag, &args.note, report).await {
        Ok(opened) => opened,
        Err(code) => return code,
    };
    let audit = session.audit.clone();
    let (env_name, flag_name) = (env.to_string(), args.flag.clone());
    let last = tokio::task::spawn_blocking(move || audit.last_change(&env_name, &flag_name)).await;
    let undone = match last {
        Ok(Ok(Some(record))) => record,
        Ok(Ok(None)) => {
            let now = flip::cell(current.meta.kind, &current.state);
            report.base.from = Some(now.clone());
            report.base.to = Some(now);
            return report.finish(
                "nothing_to_do",
                exit::NOTHING_TO_DO,
                format!(
                    "killswitch has recorded no applied change of {} in {env} in {}: nothing to undo",
                    args.flag,
                    session.audit.path().display()
                ),
            );
        }
        Ok(Err(error)) => return report.finish("failed", exit::FAILURE, error.to_string()),
        Err(error) => {
            return report.finish(
                "failed",
                exit::FAILURE,
                format!("cannot read the audit log: {error}"),
            );
        }
    };
    report.undoes = Some(undone.id.clone());
    let what = format!(
        "the {} of {} at {} (audit {})",
        undone.action,
        undone.flag,
        undone.at.format("%Y-%m-%d %H:%M:%S UTC"),
        undone.id
    );
    if !still_as_left(&undone, &current) {
        let now = flip::cell(current.meta.kind, &current.state);
        report.base.from = Some(now.clone());
        return report.finish(
            "changed",
            exit::CHANGED,
            format!(
                "{} in {env} is now {now}, not {} as {what} left it: it moved since. Nothing was changed; look again (`killswitch status --env {env} --flag {}`)",
                args.flag, undone.to, args.flag
            ),
        );
    }
    let change = match reverse(&undone) {
        Ok(change) => change,
        Err(why) => {
            return report.finish(
                "refused",
                exit::REFUSED,
                format!("cannot undo {what}: {why}; nothing was changed"),
            );
        }
    };
    if args.output == crate::cli::FlipOutput::Text {
        super::print_error(format!("undoing {what}: {} -> {}", undone.from, undone.to));
    }
    let note = undo_note(&args.note, &undone);
    if let Err(problem) = crate::text::validate_note(&note) {
        return report.finish(
            "refused",
            exit::REFUSED,
            format!(
                "--note with the undo reference appended: {problem}; shorten the note. Nothing was changed"
            ),
        );
    }
    apply(
        session,
        &connection,
        &current,
        change,
        &note,
        args.yes,
        confirm,
        report,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{Phase, RECORD_VERSION};
    use crate::model::{FlagKind, FlagMeta, FlagState, Rollout};
    use crate::rollout::RolloutTarget;

    fn record(rollout: Option<RolloutTarget>, previous: Option<RolloutTarget>) -> AuditRecord {
        AuditRecord {
            v: RECORD_VERSION,
            id: "a1".into(),
            phase: Phase::Outcome,
            at: chrono::Utc::now(),
            operator: "alice".into(),
            env: "prod".into(),
            provider: "flagd".into(),
            flag: "canary".into(),
            action: "rollout".into(),
            from: "ON 10%".into(),
            to: "ON 50%".into(),
            enabled: true,
            rollout,
            previous,
            note: "INC-1".into(),
            result: Some(crate::audit::Result::Ok),
            error: None,
            duration_ms: None,
            confirmed_ms: None,
            reference: None,
            batch: None,
            receiver: None,
        }
    }

    fn flag(percent: f64) -> Flag {
        Flag {
            meta: std::sync::Arc::new(FlagMeta {
                key: "canary".into(),
                kind: FlagKind::Release,
                ..FlagMeta::default()
            }),
            state: FlagState {
                enabled: true,
                value: Some(false.into()),
                rollout: Rollout::Percentage { percent },
                ..FlagState::default()
            },
        }
    }

    #[test]
    fn a_rollout_is_undone_to_its_previous_target_only_while_it_is_as_left() {
        let step = record(
            Some(RolloutTarget::Percent { percent: 50.0 }),
            Some(RolloutTarget::Percent { percent: 10.0 }),
        );
        assert!(still_as_left(&step, &flag(50.0)));
        assert!(!still_as_left(&step, &flag(40.0)));
        assert_eq!(
            reverse(&step),
            Ok(Change::Rollout {
                target: RolloutTarget::Percent { percent: 10.0 }
            })
        );
        let from_split = record(Some(RolloutTarget::Percent { percent: 50.0 }), None);
        assert!(reverse(&from_split).is_err());
        let mut kill = record(None, None);
        kill.action = "kill".into();
        kill.enabled = false;
        assert_eq!(reverse(&kill), Ok(Change::Switch { enabled: true }));
        assert_eq!(undo_note(" INC-2 ", &kill), "INC-2 (undo of kill a1)");
    }
}
