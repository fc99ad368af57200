//! `kill FLAG --env prod --env prod-eu …`: one kill (or restore) across several environments.
//!
//! One note and one confirmation for the whole set: the prompt lists every environment and
//! the change in each, and where any is protected the operator types every protected name
//! (space-separated, any order) — a single key never confirms a set touching a protected
//! environment. Then each environment is its own transaction ([`super::single::decide`], the
//! single-environment path: guard, audit intent, write, verify, outcome, notifications), run
//! concurrently, its audit records carrying the batch id. One failure never stops the others.
//!
//! The exit code is the worst environment's, in this order (worst first):
//! 1 failure, 11 outcome unknown, 7 vendor error, 6 credentials, 5 not found, 9 changed, 4 refused,
//! 8 not verified, 10 pending approval, 0 applied, 3 nothing to do. So a set where some were
//! already killed and the rest were killed exits 0; one where every one already was exits 3.

use std::io::Write;

use anyhow::Result;
use serde::Serialize;

use super::single::{Confirm, FlipReport, decide, notified_line};
use super::{exit, print_error};
use crate::cli::{FlipArgs, FlipOutput};
use crate::flip;
use crate::model::{FlagKind, FlagState};
use crate::outcome::Class;
use crate::provider::Access;
use crate::session::Session;

/// Exit codes from worst to best.
pub const SEVERITY: &[i32] = &[
    exit::FAILURE,
    exit::OUTCOME_UNKNOWN,
    exit::PROVIDER,
    exit::CREDENTIALS,
    exit::NOT_FOUND,
    exit::CHANGED,
    exit::REFUSED,
    exit::NOT_VERIFIED,
    exit::PENDING_APPROVAL,
    exit::OK,
    exit::NOTHING_TO_DO,
];

/// The worse of the codes (an unknown code counts as the worst).
pub fn worst(codes: impl IntoIterator<Item = i32>) -> i32 {
    codes
        .into_iter()
        .min_by_key(|code| SEVERITY.iter().position(|c| c == code).unwrap_or(0))
        .unwrap_or(exit::NOTHING_TO_DO)
}

/// The JSON result of a multi-environment kill (`--output json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BatchReport {
    /// Shared by every environment's audit records.
    pub batch: Option<String>,
    /// The worst environment's result word.
    pub result: &'static str,
    pub exit_code: i32,
    pub flag: String,
    /// One per environment, in the order given.
    pub environments: Vec<FlipReport>,
    /// Set when the whole set was refused before any change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// What was read before asking: the change each environment would get.
enum Plan {
    Change { kind: FlagKind, seen: FlagState },
    Nothing { now: String },
    Unreadable { message: String },
}

/// Nobody to ask: the set was confirmed already.
struct Confirmed;

impl Confirm for Confirmed {
    fn interactive(&self) -> bool {
        false
    }

    fn ask(&mut self, _question: &str) -> std::io::Result<String> {
        Ok(String::new())
    }
}

pub async fn run(
    session: &Session,
    args: &FlipArgs,
    envs: &[String],
    enabled: bool,
    confirm: &mut dyn Confirm,
    out: &mut dyn Write,
) -> Result<i32> {
    let mut report = BatchReport {
        batch: None,
        result: "refused",
        exit_code: exit::REFUSED,
        flag: args.flag.clone(),
        environments: Vec::new(),
        message: None,
    };
    if let Some((class, message)) = refuse_set(session, args, envs) {
        report.result = class.cli_word();
        report.exit_code = class.exit_code();
        report.message = Some(crate::redact::text(&message));
        return write(out, args.output, &report);
    }
    let plans =
        futures::future::join_all(envs.iter().map(|env| plan(session, env, args, enabled))).await;
    let mut lines = Vec::new();
    let mut protected = Vec::new();
    for (env, plan) in envs.iter().zip(&plans) {
        lines.push(match plan {
            Plan::Change { kind, seen } => {
                if session.config.environment(env).is_some_and(|e| e.protected) {
                    protected.push(env.clone());
                }
                format!(
                    "  {}",
                    flip::describe(*kind, &args.flag, env, seen, enabled)
                )
            }
            Plan::Nothing { now } => format!("  {env}: already {now}, nothing to do"),
            Plan::Unreadable { message } => format!("  {env}: not changed ({message})"),
        });
    }
    let changes = plans
        .iter()
        .filter(|p| matches!(p, Plan::Change { .. }))
        .count();
    if !args.yes && changes > 0 {
        let plan_text = lines.join("\n");
        if !confirm.interactive() {
            report.message = Some(crate::redact::text(&format!(
                "{changes} of {} environments would change:\n{plan_text}\nno terminal to confirm on; add --yes to confirm from a script. Nothing was changed",
                envs.len()
            )));
            return write(out, args.output, &report);
        }
        let question = if protected.is_empty() {
            format!("{plan_text}\nProceed in these {changes} environments? [y/N] ")
        } else {
            format!(
                "{plan_text}\nProtected: {}. Type every protected name, space-separated, to confirm: ",
                protected.join(" ")
            )
        };
        let answer = match confirm.ask(&question) {
            Ok(answer) => answer,
            Err(err) => {
                report.message = Some(format!(
                    "could not read the confirmation: {err}; nothing was changed"
                ));
                return write(out, args.output, &report);
            }
        };
        let accepted = if protected.is_empty() {
            answer.eq_ignore_ascii_case("y") || answer.eq_ignore_ascii_case("yes")
        } else {
            let mut typed: Vec<&str> = answer.split_whitespace().collect();
            typed.sort_unstable();
            typed.dedup();
            let mut wanted: Vec<&str> = protected.iter().map(String::as_str).collect();
            wanted.sort_unstable();
            typed == wanted
        };
        if !accepted {
            report.message = Some("not confirmed; nothing was changed".into());
            return write(out, args.output, &report);
        }
    }

    let batch = format!("batch-{}", crate::audit::new_id(session.clock.now()));
    report.batch = Some(batch.clone());
    let runs = envs.iter().zip(&plans).map(|(env, plan)| {
        let mut single = args.clone();
        single.env = vec![env.clone()];
        single.yes = true;
        single.batch = Some(batch.clone());
        single.seen = match plan {
            Plan::Change { seen, .. } => Some(seen.clone()),
            _ => None,
        };
        let env = env.clone();
        async move {
            let mut one = FlipReport {
                result: "failed",
                exit_code: exit::FAILURE,
                env,
                flag: single.flag.clone(),
                action: if enabled { "restore" } else { "kill" }.to_string(),
                from: None,
                to: None,
                audit_id: None,
                confirmed_ms: None,
                reference: None,
                message: String::new(),
                notified: Vec::new(),
            };
            let code = decide(session, &single, enabled, &mut Confirmed, &mut one).await;
            one.exit_code = code;
            one
        }
    });
    report.environments = futures::future::join_all(runs).await;
    report.exit_code = worst(report.environments.iter().map(|r| r.exit_code));
    report.result = report
        .environments
        .iter()
        .find(|r| r.exit_code == report.exit_code)
        .map(|r| r.result)
        .unwrap_or("nothing_to_do");
    write(out, args.output, &report)
}

/// Refusals of the whole set, before anything is read.
fn refuse_set(session: &Session, args: &FlipArgs, envs: &[String]) -> Option<(Class, String)> {
    if session.access == Access::ReadOnly {
        return Some((
            Class::Refused,
            "--read-only: no write path is built; nothing was changed".into(),
        ));
    }
    if let Some(env) = envs
        .iter()
        .find(|env| session.config.environment(env).is_none())
    {
        return Some((
            Class::NotFound,
            format!(
                "{}; nothing was changed in any environment",
                session.config.unknown_environment(env)
            ),
        ));
    }
    if let Err(problem) = crate::text::validate_note(&args.note) {
        return Some((
            Class::Refused,
            format!("--note: {problem}; nothing was changed"),
        ));
    }
    None
}

async fn plan(session: &Session, env: &str, args: &FlipArgs, enabled: bool) -> Plan {
    let connection = match session.connection(env).await {
        Ok(connection) => connection,
        Err(error) => {
            return Plan::Unreadable {
                message: error.to_string(),
            };
        }
    };
    match connection.source.read_flag(&args.flag).await {
        // The one "already there" rule (overrides still serving are not "already off").
        Ok(flag) => match flip::already_there(env, &args.flag, &flag.state, enabled) {
            Ok(true) => Plan::Nothing {
                now: flip::cell(flag.meta.kind, &flag.state),
            },
            Ok(false) => Plan::Change {
                kind: flag.meta.kind,
                seen: flag.state,
            },
            Err(refusal) => Plan::Unreadable {
                message: refusal.to_string(),
            },
        },
        Err(error) => Plan::Unreadable {
            message: error.message,
        },
    }
}

fn write(out: &mut dyn Write, output: FlipOutput, report: &BatchReport) -> Result<i32> {
    match output {
        FlipOutput::Json => {
            serde_json::to_writer(&mut *out, report)?;
            writeln!(out)?;
        }
        FlipOutput::Text => {
            if let Some(message) = &report.message {
                for line in message.split('\n') {
                    print_error(line);
                }
            }
            if !report.environments.is_empty() {
                let width = report
                    .environments
                    .iter()
                    .map(|r| crate::text::line(&r.env).chars().count())
                    .max()
                    .unwrap_or(3)
                    .max(3);
                writeln!(out, "{:<width$}  {:<16}  DETAIL", "ENV", "RESULT")?;
                for one in &report.environments {
                    writeln!(
                        out,
                        "{:<width$}  {:<16}  {}",
                        crate::text::line(&one.env),
                        one.result,
                        crate::redact::line(&one.message)
                    )?;
                }
                let failed: Vec<String> = report
                    .environments
                    .iter()
                    .filter(|r| !matches!(r.exit_code, exit::OK | exit::NOTHING_TO_DO))
                    .map(|r| format!("{} ({})", r.env, r.result))
                    .collect();
                writeln!(
                    out,
                    "batch {}: {} environments, worst: {} (exit {}){}",
                    report.batch.as_deref().unwrap_or("-"),
                    report.environments.len(),
                    report.result,
                    report.exit_code,
                    if failed.is_empty() {
                        String::new()
                    } else {
                        format!("; not done: {}", crate::text::line(&failed.join(", ")))
                    }
                )?;
                for one in &report.environments {
                    if let Some(line) = notified_line(&one.notified) {
                        print_error(format!("{}: {line}", one.env));
                    }
                }
            }
        }
    }
    Ok(report.exit_code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worst_outcome_wins_and_already_done_counts_as_done() {
        assert_eq!(worst([exit::OK, exit::NOTHING_TO_DO]), exit::OK);
        assert_eq!(
            worst([exit::NOTHING_TO_DO, exit::NOTHING_TO_DO]),
            exit::NOTHING_TO_DO
        );
        assert_eq!(
            worst([exit::OK, exit::PROVIDER, exit::NOT_VERIFIED]),
            exit::PROVIDER
        );
        assert_eq!(
            worst([exit::PENDING_APPROVAL, exit::NOT_VERIFIED]),
            exit::NOT_VERIFIED
        );
        assert_eq!(worst([exit::OK, 42]), 42);
    }
}
