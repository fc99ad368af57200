//! One environment's kill or restore, start to end, for `kill` / `restore` and for each
//! environment of a multi-environment kill ([`super::batch`]): the checks before the question,
//! the question, the transaction, and the report in the one presenter's words
//! ([`crate::outcome`]). Below both `kill` and `batch`, so neither imports the other's insides.

use std::io::Write;

use serde::Serialize;

use super::{exit, print_error};
use crate::cli::FlipArgs;
use crate::flip::{self, FlipError, FlipOutcome, FlipRequest};
use crate::outcome::{self, Class};
use crate::provider::{Access, Connection, ErrorKind};
use crate::session::Session;
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

/// One environment's kill or restore, start to end; returns the exit code: [`preflight`]
/// (everything that can stop it before the question), [`confirm_flip`] (the question), the
/// transaction, then [`report_outcome`] (the one presenter's words and code).
pub async fn decide(
    session: &Session,
    args: &FlipArgs,
    enabled: bool,
    confirm: &mut dyn Confirm,
    report: &mut FlipReport,
) -> i32 {
    let ready = match preflight(session, args, enabled, report).await {
        Ok(ready) => ready,
        Err(code) => return code,
    };
    if let Err(code) = confirm_flip(args, &ready, confirm, report) {
        return code;
    }
    let mut request = ready.request;
    request.operator = session.operator().await;
    let announced = flip::execute_announced(
        &request,
        &ready.connection,
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
    report_outcome(&request, &announced.result, report)
}

/// A flip that passed every check and may be asked for.
struct Ready {
    connection: Connection,
    /// The request (its operator is filled in after the confirmation).
    request: FlipRequest,
    protected: bool,
}

/// Everything before the question: access, the environment, the note, interrupted flips, the
/// connection, the flag as it is now (against `--seen`), and whether there is anything to do.
/// `Err` carries the exit code of a flip that stopped here (the report says why).
async fn preflight(
    session: &Session,
    args: &FlipArgs,
    enabled: bool,
    report: &mut FlipReport,
) -> Result<Ready, i32> {
    let env = report.env.clone();
    let env = env.as_str();
    if session.access == Access::ReadOnly {
        return Err(stop(
            report,
            Class::Refused,
            "--read-only: no write path is built; nothing was changed".into(),
        ));
    }
    let Some(env_config) = session.config.environment(env) else {
        return Err(stop(
            report,
            Class::NotFound,
            session.config.unknown_environment(env),
        ));
    };
    if let Err(problem) = crate::text::validate_note(&args.note) {
        return Err(stop(
            report,
            Class::Refused,
            format!("--note: {problem}; nothing was changed"),
        ));
    }
    for line in flip::reconcile_pending(session, Some(env)).await {
        print_error(line);
    }
    let connection = match session.connection(env).await {
        Ok(connection) => connection,
        Err(error) => return Err(stop(report, Class::of_connect(&error), error.to_string())),
    };
    if connection.writer.is_none() {
        let reason = connection
            .read_only_reason
            .clone()
            .unwrap_or_else(|| "no write access".into());
        return Err(stop(
            report,
            Class::Refused,
            format!("{env} is read-only: {reason}; nothing was changed"),
        ));
    }
    let current = match connection.source.read_flag(&args.flag).await {
        Ok(flag) => flag,
        Err(error) => {
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
            return Err(stop(report, Class::of_provider(error.kind), message));
        }
    };
    if let Some(seen) = args.seen.as_ref().filter(|seen| **seen != current.state) {
        return Err(stop(
            report,
            Class::Changed,
            format!(
                "{} in {env} changed since it was confirmed ({} -> {}): nothing was changed; look again and retry",
                args.flag,
                flip::cell(current.meta.kind, seen),
                flip::cell(current.meta.kind, &current.state)
            ),
        ));
    }
    let kind = current.meta.kind;
    let change = flip::Change::Switch { enabled };
    let from = flip::cell(kind, &current.state);
    report.action = change.action_name(kind);
    report.from = Some(from.clone());
    let already = match flip::already_done(env, &args.flag, &current.state, &change) {
        Ok(already) => already,
        Err(refusal) => return Err(stop(report, Class::of_error(&refusal), refusal.to_string())),
    };
    if already {
        report.to = Some(from.clone());
        return Err(stop(
            report,
            Class::NothingToDo,
            format!("{} in {env} already is {from}: nothing to do", args.flag),
        ));
    }
    Ok(Ready {
        connection,
        request: FlipRequest {
            env: env.to_string(),
            flag: args.flag.clone(),
            kind,
            change,
            seen: current.state,
            note: args.note.clone(),
            operator: String::new(),
        },
        protected: env_config.protected,
    })
}

/// The question (unless `--yes`): `y` in an ordinary environment, the environment's name in a
/// protected one; no terminal and no `--yes` is a refusal. `Err` carries the exit code.
fn confirm_flip(
    args: &FlipArgs,
    ready: &Ready,
    confirm: &mut dyn Confirm,
    report: &mut FlipReport,
) -> Result<(), i32> {
    if args.yes {
        return Ok(());
    }
    let request = &ready.request;
    let env = request.env.as_str();
    let sentence = flip::describe_change(
        request.kind,
        &request.flag,
        env,
        &request.seen,
        &request.change,
    );
    if !confirm.interactive() {
        return Err(stop(
            report,
            Class::Refused,
            format!(
                "{sentence}: no terminal to confirm on; add --yes to confirm from a script. Nothing was changed"
            ),
        ));
    }
    let (question, expected) = if ready.protected {
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
            return Err(stop(
                report,
                Class::Refused,
                format!("could not read the confirmation: {err}; nothing was changed"),
            ));
        }
    };
    let accepted = if expected == "y" {
        answer.eq_ignore_ascii_case("y") || answer.eq_ignore_ascii_case("yes")
    } else {
        answer == expected
    };
    if accepted {
        Ok(())
    } else {
        Err(stop(
            report,
            Class::Refused,
            "not confirmed; nothing was changed".into(),
        ))
    }
}

/// The transaction's result into the report, in the presenter's words; returns the exit code.
fn report_outcome(
    request: &FlipRequest,
    result: &std::result::Result<FlipOutcome, FlipError>,
    report: &mut FlipReport,
) -> i32 {
    report.take(outcome::present(request, result))
}

/// "notified: team-slack ok, hook FAILED: …" (stderr, after the result line).
pub fn notified_line(notified: &[NotifiedReport]) -> Option<String> {
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
pub(super) fn finish(
    report: &mut FlipReport,
    result: &'static str,
    code: i32,
    message: String,
) -> i32 {
    report.result = result;
    // Vendor and Vault text is in most messages: redacted for the text line and the JSON alike.
    report.message = crate::redact::text(&message);
    report.exit_code = code;
    code
}

impl FlipReport {
    /// A report that says "failed" until the command says how it ended.
    pub fn new(env: &str, flag: &str, action: &str) -> FlipReport {
        FlipReport {
            result: "failed",
            exit_code: exit::FAILURE,
            env: env.to_string(),
            flag: flag.to_string(),
            action: action.to_string(),
            from: None,
            to: None,
            audit_id: None,
            confirmed_ms: None,
            reference: None,
            message: String::new(),
            notified: Vec::new(),
        }
    }

    /// The one presenter's words, code and fields into the report (its audit warning to
    /// stderr); returns the exit code. What every flip-like command reports from.
    pub fn take(&mut self, said: outcome::Presented) -> i32 {
        if let Some(warning) = &said.audit_warning {
            print_error(format!("WARNING: {warning}"));
        }
        if said.from.is_some() {
            self.from = said.from;
        }
        if said.to.is_some() {
            self.to = said.to;
        }
        self.audit_id = said.audit_id.or(self.audit_id.take());
        self.confirmed_ms = said.confirmed_ms;
        self.reference = said.reference;
        finish(
            self,
            said.class.cli_word(),
            said.class.exit_code(),
            said.message,
        )
    }

    /// Prints the report: `json` (this report, or a larger one that carries it) as one JSON
    /// line, or the result line (stdout when done or nothing to do, stderr otherwise) and the
    /// notifications line.
    pub fn print(
        &self,
        output: crate::cli::FlipOutput,
        json: &impl Serialize,
        out: &mut dyn std::io::Write,
    ) -> anyhow::Result<()> {
        use crate::cli::FlipOutput;
        match output {
            FlipOutput::Json => {
                serde_json::to_writer(&mut *out, json)?;
                writeln!(out)?;
            }
            FlipOutput::Text
                if self.exit_code == exit::OK || self.exit_code == exit::NOTHING_TO_DO =>
            {
                writeln!(out, "{}", crate::text::line(&self.message))?;
            }
            FlipOutput::Text => print_error(&self.message),
        }
        if output == FlipOutput::Text
            && let Some(line) = notified_line(&self.notified)
        {
            print_error(line);
        }
        Ok(())
    }
}

/// [`finish`] with a class's result word and exit code.
fn stop(report: &mut FlipReport, class: Class, message: String) -> i32 {
    finish(report, class.cli_word(), class.exit_code(), message)
}
