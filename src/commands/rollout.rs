//! `killswitch rollout FLAG --env ENV (--to PERCENT | --variant NAME) --note NOTE`: a rollout
//! step as a flip, and the part of a change `undo` shares with it.
//!
//! The same shape as `kill`: the flag is read, the target is checked against what the flag has
//! (a percentage out of range or a variant it lacks is a usage error, exit 2, before anything
//! is audited), the sentence is shown and confirmed (the environment's name typed where it is
//! protected), then [`crate::flip::execute_announced`] runs the one transaction: re-read guard,
//! audit intent, the vendor write, verification of what services see, audit outcome. When the
//! vendor's write also changes other environments (a Flagsmith segment is project-wide) they
//! are printed, and each protected one among them must be typed too.

use std::io::Write;

use anyhow::Result;
use serde::Serialize;

use super::kill::{Confirm, FlipReport, NotifiedReport};
use super::{exit, print_error};
use crate::cli::{FlipOutput, RolloutArgs};
use crate::flip::{self, Change, FlipRequest};
use crate::model::Flag;
use crate::provider::{Access, Connection, ErrorKind};
use crate::rollout::RolloutTarget;
use crate::session::{ConnectError, Session};

/// The one-line result a script can parse (`--output json`), for `rollout` and `undo`: `kill`'s
/// fields ([`FlipReport`]), and what a rollout or an undo adds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChangeReport {
    /// result, exit_code, env, flag, action ("rollout", "kill", "restore", "turn_off",
    /// "turn_on"), from, to, audit_id, confirmed_ms, reference, message, notified.
    #[serde(flatten)]
    pub base: FlipReport,
    /// The rollout asked for, and the one before it (what an undo of this asks for).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollout: Option<RolloutTarget>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous: Option<RolloutTarget>,
    /// Other environments the same vendor write changed (or would have).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub shared_with: Vec<String>,
    /// `undo`: the audit id of the change it reverts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub undoes: Option<String>,
}

impl ChangeReport {
    pub fn new(env: &str, flag: &str, action: &str) -> ChangeReport {
        ChangeReport {
            base: FlipReport::new(env, flag, action),
            rollout: None,
            previous: None,
            shared_with: Vec::new(),
            undoes: None,
        }
    }

    /// Records how it ended and returns the exit code.
    pub fn finish(&mut self, result: &'static str, code: i32, message: String) -> i32 {
        super::single::finish(&mut self.base, result, code, message)
    }

    /// Prints the report: JSON, or the result line (stdout when done, stderr otherwise).
    pub fn print(&self, output: FlipOutput, out: &mut dyn Write) -> Result<()> {
        self.base.print(output, self, out)
    }
}

/// Runs `rollout`.
pub async fn run(
    session: &Session,
    args: &RolloutArgs,
    confirm: &mut dyn Confirm,
    out: &mut dyn Write,
) -> Result<i32> {
    let mut report = ChangeReport::new(&args.env, &args.flag, "rollout");
    let code = decide(session, args, confirm, &mut report).await;
    report.base.exit_code = code;
    report.print(args.output, out)?;
    Ok(code)
}

/// The environment, connected and writable, with the flag read: what `rollout` and `undo` both
/// start from. `Err(code)` once `report` says why not.
pub(super) async fn open(
    session: &Session,
    env: &str,
    flag: &str,
    note: &str,
    report: &mut ChangeReport,
) -> Result<(Connection, Flag), i32> {
    if session.access == Access::ReadOnly {
        return Err(report.finish(
            "refused",
            exit::REFUSED,
            "--read-only: no write path is built; nothing was changed".into(),
        ));
    }
    if session.config.environment(env).is_none() {
        return Err(report.finish(
            "not_found",
            exit::NOT_FOUND,
            session.config.unknown_environment(env),
        ));
    }
    if let Err(problem) = crate::text::validate_note(note) {
        return Err(report.finish(
            "refused",
            exit::REFUSED,
            format!("--note: {problem}; nothing was changed"),
        ));
    }
    for line in flip::reconcile_pending(session, Some(env)).await {
        print_error(line);
    }
    let connection = match session.connection(env).await {
        Ok(connection) => connection,
        Err(ConnectError::Credentials(message)) => {
            return Err(report.finish("credentials", exit::CREDENTIALS, message.to_string()));
        }
        Err(ConnectError::Provider(error)) => {
            let (result, code) = provider_code(error.kind);
            return Err(report.finish(result, code, error.message));
        }
    };
    if connection.writer.is_none() {
        let reason = connection
            .read_only_reason
            .clone()
            .unwrap_or_else(|| "no write access".into());
        return Err(report.finish(
            "refused",
            exit::REFUSED,
            format!("{env} is read-only: {reason}; nothing was changed"),
        ));
    }
    match connection.source.read_flag(flag).await {
        Ok(current) => Ok((connection, current)),
        Err(error) => {
            let (result, code) = provider_code(error.kind);
            let mut message = error.message;
            if error.kind == ErrorKind::NotFound
                && let Ok(flags) = connection.source.list_flags().await
            {
                // A typo at 3 a.m.: name the closest flag that does exist.
                message.push_str(&crate::text::did_you_mean(
                    flag,
                    flags.iter().map(|flag| flag.meta.key.as_str()),
                ));
            }
            Err(report.finish(result, code, message))
        }
    }
}

async fn decide(
    session: &Session,
    args: &RolloutArgs,
    confirm: &mut dyn Confirm,
    report: &mut ChangeReport,
) -> i32 {
    let env = args.env.as_str();
    let target = match (&args.to, &args.variant) {
        (Some(percent), _) => match RolloutTarget::parse_percent(percent) {
            Ok(percent) => RolloutTarget::Percent { percent },
            Err(problem) => {
                return report.finish(
                    "usage",
                    exit::USAGE,
                    format!(
                        "rollout of {} in {env}: --to: {problem}; nothing was changed",
                        args.flag
                    ),
                );
            }
        },
        (None, Some(variant)) => RolloutTarget::Variant {
            variant: variant.clone(),
        },
        // clap requires one of them.
        (None, None) => {
            return report.finish(
                "usage",
                exit::USAGE,
                "rollout needs --to PERCENT or --variant NAME".into(),
            );
        }
    };
    report.rollout = Some(target.clone());
    let (connection, current) = match open(session, env, &args.flag, &args.note, report).await {
        Ok(opened) => opened,
        Err(code) => return code,
    };
    let Some(writer) = connection.writer.clone() else {
        return report.finish("refused", exit::REFUSED, format!("{env} is read-only"));
    };
    let target = match writer.rollout_choices(&args.flag).await {
        Ok(Some(choices)) => {
            if let Err(problem) = choices.check(&target) {
                return report.finish(
                    "usage",
                    exit::USAGE,
                    format!(
                        "rollout of {} in {env}: {problem}; nothing was changed",
                        args.flag
                    ),
                );
            }
            choices.canonical(&target)
        }
        Ok(None) => target,
        Err(error) => {
            let (result, code) = provider_code(error.kind);
            return report.finish(result, code, error.message);
        }
    };
    let change = Change::Rollout { target };
    apply(
        session,
        &connection,
        &current,
        change,
        &args.note,
        args.yes,
        confirm,
        report,
    )
    .await
}

/// Confirms `change` of `current` with the operator (unless `yes`) and runs the transaction.
/// The environments the vendor's write also changes are printed, and every protected one among
/// them (and one killswitch has no config for: it cannot tell) must be typed.
#[allow(clippy::too_many_arguments)]
pub(super) async fn apply(
    session: &Session,
    connection: &Connection,
    current: &Flag,
    change: Change,
    note: &str,
    yes: bool,
    confirm: &mut dyn Confirm,
    report: &mut ChangeReport,
) -> i32 {
    let env = connection.env.as_str();
    let flag = current.meta.key.as_str();
    let kind = current.meta.kind;
    let from = flip::cell(kind, &current.state);
    report.base.action = change.action_name(kind);
    report.base.from = Some(from.clone());
    report.rollout = change.rollout().cloned();
    if let Change::Rollout { .. } = &change {
        report.previous = RolloutTarget::of_state(&current.state);
    }
    match flip::already_done(env, flag, &current.state, &change) {
        Ok(true) => {
            report.base.to = Some(from.clone());
            return report.finish(
                "nothing_to_do",
                exit::NOTHING_TO_DO,
                format!("{flag} in {env} already is {from}: nothing to do"),
            );
        }
        Ok(false) => {}
        Err(refusal) => return report.finish("refused", exit::REFUSED, refusal.to_string()),
    }
    let shared = match (&change, connection.writer.as_ref()) {
        (Change::Rollout { target }, Some(writer)) => {
            match writer
                .rollout_shared_with(flag, target, &current.state)
                .await
            {
                Ok(shared) => shared,
                Err(error) => {
                    let (result, code) = provider_code(error.kind);
                    return report.finish(result, code, error.message);
                }
            }
        }
        _ => Vec::new(),
    };
    let shared: Vec<String> = shared.into_iter().filter(|other| other != env).collect();
    report.shared_with = shared.clone();
    let sentence = flip::describe_change(kind, flag, env, &current.state, &change);
    let shared_line = (!shared.is_empty()).then(|| {
        format!(
            "The same write also changes {} (the vendor keeps this rule for all of them).",
            shared.join(", ")
        )
    });
    if let Some(line) = &shared_line {
        // Said even with --yes: a script's log must show what else moved.
        print_error(line);
    }
    let protected = to_type(env, &shared, |name| {
        session
            .config
            .environment(name)
            .map(|config| config.protected)
    });
    if !yes {
        if !confirm.interactive() {
            return report.finish(
                "refused",
                exit::REFUSED,
                format!(
                    "{sentence}: no terminal to confirm on; add --yes to confirm from a script. Nothing was changed"
                ),
            );
        }
        let question = match protected.as_slice() {
            [] => format!("{sentence}\nProceed? [y/N] "),
            [only] if only == env => {
                format!("{sentence}\n{env} is protected. Type `{env}` to confirm: ")
            }
            many => format!(
                "{sentence}\nProtected: {}. Type every protected name, space-separated, to confirm: ",
                many.join(" ")
            ),
        };
        let answer = match confirm.ask(&question) {
            Ok(answer) => answer,
            Err(err) => {
                return report.finish(
                    "refused",
                    exit::REFUSED,
                    format!("could not read the confirmation: {err}; nothing was changed"),
                );
            }
        };
        let accepted = if protected.is_empty() {
            answer.eq_ignore_ascii_case("y") || answer.eq_ignore_ascii_case("yes")
        } else {
            typed_all(&answer, &protected)
        };
        if !accepted {
            return report.finish(
                "refused",
                exit::REFUSED,
                "not confirmed; nothing was changed".into(),
            );
        }
    }

    let request = FlipRequest {
        env: env.to_string(),
        flag: flag.to_string(),
        kind,
        change: change.clone(),
        seen: current.state.clone(),
        note: note.to_string(),
        operator: session.operator().await,
    };
    let announced = flip::execute_announced(
        &request,
        connection,
        &session.audit,
        session.clock.as_ref(),
        session.config.network.verify_timeout,
        None,
    )
    .await;
    report.base.notified = announced
        .notified
        .iter()
        .map(|delivery| NotifiedReport {
            receiver: delivery.receiver.clone(),
            ok: delivery.ok,
            detail: delivery.detail.clone(),
        })
        .collect();
    // The one presenter's words and code, with the other environments the write changes.
    report.base.take(crate::outcome::present_noting(
        &request,
        &announced.result,
        shared_line.as_deref(),
    ))
}

/// The environment names the operator must type: `env` and each of `shared` that is protected,
/// or that the config does not know (`protected(name)` is `None`: killswitch cannot tell).
pub fn to_type(
    env: &str,
    shared: &[String],
    protected: impl Fn(&str) -> Option<bool>,
) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for name in std::iter::once(env).chain(shared.iter().map(String::as_str)) {
        let needs_typing = match protected(name) {
            Some(protected) => protected,
            None => name != env,
        };
        if needs_typing && !names.iter().any(|known| known == name) {
            names.push(name.to_string());
        }
    }
    names
}

/// Whether `answer` types every name of `names` (space-separated, any order; a vendor's name
/// with spaces in it is typed as it is shown).
pub fn typed_all(answer: &str, names: &[String]) -> bool {
    let mut typed: Vec<&str> = answer.split_whitespace().collect();
    typed.sort_unstable();
    typed.dedup();
    let mut wanted: Vec<&str> = names.iter().flat_map(|n| n.split_whitespace()).collect();
    wanted.sort_unstable();
    wanted.dedup();
    !wanted.is_empty() && typed == wanted
}

/// A vendor error's result word and exit code (the presenter's classes, as `kill` maps them).
pub(super) fn provider_code(kind: ErrorKind) -> (&'static str, i32) {
    let class = crate::outcome::Class::of_provider(kind);
    (class.cli_word(), class.exit_code())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_protected_or_unknown_environment_the_write_shares_must_be_typed() {
        let config = |name: &str| match name {
            "prod" | "prod-eu" => Some(true),
            "staging" | "dev" => Some(false),
            _ => None,
        };
        assert_eq!(to_type("dev", &[], config), Vec::<String>::new());
        assert_eq!(to_type("prod", &[], config), vec!["prod"]);
        let shared = vec![
            "staging".to_string(),
            "prod-eu".to_string(),
            "Production (EU)".to_string(),
            "prod-eu".to_string(),
        ];
        assert_eq!(
            to_type("dev", &shared, config),
            vec!["prod-eu", "Production (EU)"]
        );
        let names = to_type("prod", &shared, config);
        assert_eq!(names, vec!["prod", "prod-eu", "Production (EU)"]);
        assert!(typed_all("prod-eu Production (EU) prod", &names));
        assert!(!typed_all("prod prod-eu", &names));
        assert!(!typed_all("y", &["prod".to_string()]));
        assert!(typed_all(" prod ", &["prod".to_string()]));
    }
}
