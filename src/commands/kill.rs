//! `killswitch kill` / `killswitch restore`: the dashboard's flip for runbook steps and scripts.
//!
//! The same transaction as the dashboard ([`crate::flip::execute`]): re-read before the write,
//! audit intent fsynced before the vendor call, verification of what services see, audit
//! outcome. On a terminal it asks for the same confirmation as the dialog (the environment's
//! name in protected environments); without a terminal it refuses unless `--yes` is given.

use std::io::Write;

use anyhow::Result;
use serde::Serialize;

use super::{exit, print_error};
use crate::cli::{FlipArgs, FlipOutput};
use crate::flip::{self, FlipError, FlipOutcome, FlipRequest, Verification};
use crate::provider::{Access, ErrorKind};
use crate::session::{ConnectError, Session};

/// Asks the operator to confirm. The binary uses the terminal; tests script it.
pub trait Confirm {
    /// Whether there is someone to ask.
    fn interactive(&self) -> bool;
    /// Shows `question` and returns the line typed.
    fn ask(&mut self, question: &str) -> std::io::Result<String>;
}

/// Asks on stderr and reads the answer from stdin, when stdin is a terminal.
pub struct TerminalConfirm;

impl Confirm for TerminalConfirm {
    fn interactive(&self) -> bool {
        std::io::IsTerminal::is_terminal(&std::io::stdin())
    }

    fn ask(&mut self, question: &str) -> std::io::Result<String> {
        let mut stderr = std::io::stderr().lock();
        // The question names the flag: each of its lines is made inert.
        let shown: Vec<String> = question.split('\n').map(crate::text::line).collect();
        write!(stderr, "{}", shown.join("\n"))?;
        stderr.flush()?;
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        Ok(line.trim().to_string())
    }
}

/// The one-line result a script can parse (`--output json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FlipReport {
    /// applied, not_verified, pending_approval, nothing_to_do, refused, not_found,
    /// credentials, provider_error, changed, outcome_unknown, failed.
    pub result: &'static str,
    pub exit_code: i32,
    pub env: String,
    pub flag: String,
    pub action: String,
    pub from: Option<String>,
    pub to: Option<String>,
    pub audit_id: Option<String>,
    pub confirmed_ms: Option<u64>,
    pub reference: Option<String>,
    pub message: String,
    /// How each `[[notify]]` receiver took the outcome (empty when none is configured).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notified: Vec<NotifiedReport>,
}

/// One receiver's delivery, in the JSON result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NotifiedReport {
    pub receiver: String,
    pub ok: bool,
    pub detail: String,
}

/// Runs `kill` (`enabled == false`) or `restore` (`enabled == true`).
pub async fn run(
    session: &Session,
    args: &FlipArgs,
    enabled: bool,
    confirm: &mut dyn Confirm,
    out: &mut dyn Write,
) -> Result<i32> {
    let mut wanted: Vec<String> = Vec::new();
    for env in &args.env {
        if !wanted.contains(env) {
            wanted.push(env.clone());
        }
    }
    if wanted.len() > 1 {
        return super::batch::run(session, args, &wanted, enabled, confirm, out).await;
    }
    let mut report = FlipReport {
        result: "failed",
        exit_code: exit::FAILURE,
        env: wanted.first().cloned().unwrap_or_default(),
        flag: args.flag.clone(),
        action: if enabled { "restore" } else { "kill" }.to_string(),
        from: None,
        to: None,
        audit_id: None,
        confirmed_ms: None,
        reference: None,
        message: String::new(),
        notified: Vec::new(),
    };
    let code = decide(session, args, enabled, confirm, &mut report).await;
    report.exit_code = code;
    match args.output {
        FlipOutput::Json => {
            serde_json::to_writer(&mut *out, &report)?;
            writeln!(out)?;
        }
        FlipOutput::Text if code == exit::OK || code == exit::NOTHING_TO_DO => {
            writeln!(out, "{}", crate::text::line(&report.message))?;
        }
        FlipOutput::Text => print_error(&report.message),
    }
    if args.output == FlipOutput::Text
        && let Some(line) = notified_line(&report.notified)
    {
        print_error(line);
    }
    Ok(code)
}

/// One environment's kill or restore, start to end; returns the exit code.
pub(super) async fn decide(
    session: &Session,
    args: &FlipArgs,
    enabled: bool,
    confirm: &mut dyn Confirm,
    report: &mut FlipReport,
) -> i32 {
    let env = report.env.clone();
    let env = env.as_str();
    if session.access == Access::ReadOnly {
        return finish(
            report,
            "refused",
            exit::REFUSED,
            "--read-only: no write path is built; nothing was changed".into(),
        );
    }
    let Some(env_config) = session.config.environment(env) else {
        return finish(
            report,
            "not_found",
            exit::NOT_FOUND,
            session.config.unknown_environment(env),
        );
    };
    if let Err(problem) = crate::text::validate_note(&args.note) {
        return finish(
            report,
            "refused",
            exit::REFUSED,
            format!("--note: {problem}; nothing was changed"),
        );
    }
    for line in flip::reconcile_pending(session, Some(env)).await {
        print_error(line);
    }
    let connection = match session.connection(env).await {
        Ok(connection) => connection,
        Err(ConnectError::Credentials(message)) => {
            return finish(report, "credentials", exit::CREDENTIALS, message);
        }
        Err(ConnectError::Provider(error)) => {
            let (result, code) = provider_code(error.kind);
            return finish(report, result, code, error.message);
        }
    };
    if connection.writer.is_none() {
        let reason = connection
            .read_only_reason
            .clone()
            .unwrap_or_else(|| "no write access".into());
        return finish(
            report,
            "refused",
            exit::REFUSED,
            format!("{env} is read-only: {reason}; nothing was changed"),
        );
    }
    let current = match connection.source.read_flag(&args.flag).await {
        Ok(flag) => flag,
        Err(error) => {
            let (result, code) = provider_code(error.kind);
            let mut message = error.message;
            if error.kind == ErrorKind::NotFound {
                // A typo at 3 a.m.: name the closest flag that does exist.
                if let Ok(flags) = connection.source.list_flags().await {
                    message.push_str(&crate::text::did_you_mean(
                        &args.flag,
                        flags.iter().map(|flag| flag.meta.key.as_str()),
                    ));
                }
            }
            return finish(report, result, code, message);
        }
    };
    if let Some(seen) = args.seen.as_ref().filter(|seen| **seen != current.state) {
        return finish(
            report,
            "changed",
            exit::CHANGED,
            format!(
                "{} in {env} changed since it was confirmed ({} -> {}): nothing was changed; look again and retry",
                args.flag,
                flip::cell(current.meta.kind, seen),
                flip::cell(current.meta.kind, &current.state)
            ),
        );
    }
    let kind = current.meta.kind;
    let from = flip::cell(kind, &current.state);
    report.action = flip::action_name(kind, enabled);
    report.from = Some(from.clone());
    let already = match flip::already_there(env, &args.flag, &current.state, enabled) {
        Ok(already) => already,
        Err(refusal) => return finish(report, "refused", exit::REFUSED, refusal.to_string()),
    };
    if already {
        report.to = Some(from.clone());
        return finish(
            report,
            "nothing_to_do",
            exit::NOTHING_TO_DO,
            format!("{} in {env} already is {from}: nothing to do", args.flag),
        );
    }
    let sentence = flip::describe(kind, &args.flag, env, &current.state, enabled);
    if !args.yes {
        if !confirm.interactive() {
            return finish(
                report,
                "refused",
                exit::REFUSED,
                format!(
                    "{sentence}: no terminal to confirm on; add --yes to confirm from a script. Nothing was changed"
                ),
            );
        }
        let (question, expected) = if env_config.protected {
            (
                format!("{sentence}\n{env} is protected. Type `{env}` to confirm: "),
                env.to_string(),
            )
        } else {
            (format!("{sentence}\nProceed? [y/N] "), "y".to_string())
        };
        let answer = match confirm.ask(&question) {
            Ok(answer) => answer,
            Err(err) => {
                return finish(
                    report,
                    "refused",
                    exit::REFUSED,
                    format!("could not read the confirmation: {err}; nothing was changed"),
                );
            }
        };
        let accepted = if expected == "y" {
            answer.eq_ignore_ascii_case("y") || answer.eq_ignore_ascii_case("yes")
        } else {
            answer == expected
        };
        if !accepted {
            return finish(
                report,
                "refused",
                exit::REFUSED,
                "not confirmed; nothing was changed".into(),
            );
        }
    }

    let request = FlipRequest {
        env: env.to_string(),
        flag: args.flag.clone(),
        kind,
        change: flip::Change::Switch { enabled },
        seen: current.state.clone(),
        note: args.note.clone(),
        operator: session.operator().await,
    };
    let announced = flip::execute_announced(
        &request,
        &connection,
        &session.audit,
        session.clock.as_ref(),
        session.config.network.verify_timeout,
        args.batch.as_deref(),
    )
    .await;
    report.notified = announced
        .notified
        .iter()
        .map(|delivery| NotifiedReport {
            receiver: delivery.receiver.clone(),
            ok: delivery.ok,
            detail: delivery.detail.clone(),
        })
        .collect();
    let outcome = announced.result;
    let word = flip::action_word(kind, enabled);
    match outcome {
        Ok(FlipOutcome::Applied {
            audit_id,
            took,
            verification,
            audit_warning,
            served_via,
            from,
            to,
            lost_answer,
        }) => {
            if let Some(warning) = audit_warning {
                print_error(format!("WARNING: {warning}"));
            }
            let change = format!("{from} -> {to}");
            report.from = Some(from);
            report.to = Some(to);
            report.audit_id = Some(audit_id.clone());
            let lost = lost_answer
                .map(|lost| {
                    format!(
                        " The answer to the write was lost ({lost}); read again, the change is live."
                    )
                })
                .unwrap_or_default();
            match verification {
                Verification::Confirmed { after } => {
                    let ms = u64::try_from(after.as_millis()).unwrap_or(u64::MAX);
                    report.confirmed_ms = Some(ms);
                    finish(
                        report,
                        "applied",
                        exit::OK,
                        format!(
                            "{word} applied: {} in {env} ({} ms): {change}.{lost} Confirmed by what services see ({served_via}) in {ms} ms. Audit {audit_id}",
                            args.flag,
                            took.as_millis()
                        ),
                    )
                }
                Verification::NotConfirmed { waited, reason } => finish(
                    report,
                    "not_verified",
                    exit::NOT_VERIFIED,
                    format!(
                        "{word} applied: {} in {env}: {change}.{lost} But what services see did not agree within {} ms: {reason}. Audit {audit_id}",
                        args.flag,
                        waited.as_millis()
                    ),
                ),
            }
        }
        Ok(FlipOutcome::PendingApproval {
            audit_id,
            reference,
            audit_warning,
        }) => {
            if let Some(warning) = audit_warning {
                print_error(format!("WARNING: {warning}"));
            }
            report.audit_id = Some(audit_id.clone());
            report.reference = Some(reference.clone());
            finish(
                report,
                "pending_approval",
                exit::PENDING_APPROVAL,
                format!(
                    "{word} of {} in {env} needs approval: request {reference} was created; NOTHING IS LIVE YET. Audit {audit_id}",
                    args.flag
                ),
            )
        }
        Ok(FlipOutcome::AlreadyInState { current }) => finish(
            report,
            "nothing_to_do",
            exit::NOTHING_TO_DO,
            format!(
                "{} in {env} already is {}: nothing to do",
                args.flag,
                flip::cell(current.meta.kind, &current.state)
            ),
        ),
        Err(error) => {
            let (result, code) = match &error {
                FlipError::Note(_)
                | FlipError::ReadOnly { .. }
                | FlipError::OverridesServe { .. } => ("refused", exit::REFUSED),
                FlipError::Changed { .. } => ("changed", exit::CHANGED),
                FlipError::Audit(_) => ("failed", exit::FAILURE),
                FlipError::Provider { error, .. } => provider_code(error.kind),
                FlipError::OutcomeUnknown { audit_id, .. } => {
                    report.audit_id = Some(audit_id.clone());
                    report.to = None;
                    ("outcome_unknown", exit::OUTCOME_UNKNOWN)
                }
            };
            finish(report, result, code, error.to_string())
        }
    }
}

/// "notified: team-slack ok, hook FAILED: …" (stderr, after the result line).
pub(super) fn notified_line(notified: &[NotifiedReport]) -> Option<String> {
    let deliveries: Vec<crate::notify::Delivery> = notified
        .iter()
        .map(|n| crate::notify::Delivery {
            receiver: n.receiver.clone(),
            ok: n.ok,
            detail: n.detail.clone(),
        })
        .collect();
    crate::notify::summary(&deliveries)
}

/// Records how it ended and returns the exit code.
fn finish(report: &mut FlipReport, result: &'static str, code: i32, message: String) -> i32 {
    report.result = result;
    // Vendor and Vault text is in most messages: redacted for the text line and the JSON alike.
    report.message = crate::redact::text(&message);
    code
}

/// A vendor error's exit code.
fn provider_code(kind: ErrorKind) -> (&'static str, i32) {
    match kind {
        ErrorKind::NotFound => ("not_found", exit::NOT_FOUND),
        ErrorKind::Conflict => ("changed", exit::CHANGED),
        ErrorKind::Refused => ("refused", exit::REFUSED),
        _ => ("provider_error", exit::PROVIDER),
    }
}
