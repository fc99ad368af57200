//! The one flip-outcome presenter: how a finished flip (a [`FlipOutcome`] or a [`FlipError`]) is
//! said, whoever asked for it. The dashboard's dialog ([`Presented::lines`]), the `kill` /
//! `restore` CLI (the result line, `--output json`'s fields and the exit code) and `serve`'s
//! trigger answers (outcome word and HTTP status) all take their words and codes from here, so
//! a switch and a rollout, an applied and a lost answer, read the same everywhere.

use std::time::Duration;

use crate::exit;
use crate::flip::{Change, FlipError, FlipOutcome, FlipRequest, Verification};
use crate::provider::ErrorKind;
use crate::session::ConnectError;

/// How a flip ended, in the classes every surface reports. Each has one CLI result word and
/// exit code, and one `serve` outcome word and HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Applied, and what services see agrees.
    Applied,
    /// Applied, but what services see did not agree within the verify timeout.
    NotVerified,
    /// The vendor requires approval: a request exists, nothing is live yet.
    PendingApproval,
    /// Already in the requested state: nothing was written.
    NothingToDo,
    /// Refused before anything was written (read-only, note, not confirmed, overrides serve).
    Refused,
    /// No such flag or environment.
    NotFound,
    /// The credentials (Vault) could not be read.
    Credentials,
    /// The flag changed since it was read: nothing was changed.
    Changed,
    /// The vendor failed (unreachable, 5xx, rate limited, auth at the vendor).
    Provider,
    /// The answer to the write was lost and the flag could not be read again.
    OutcomeUnknown,
    /// Anything else (the audit log refused the intent).
    Failed,
}

impl Class {
    /// A vendor error's class.
    pub fn of_provider(kind: ErrorKind) -> Class {
        match kind {
            ErrorKind::NotFound => Class::NotFound,
            ErrorKind::Conflict => Class::Changed,
            ErrorKind::Refused => Class::Refused,
            _ => Class::Provider,
        }
    }

    /// A connection's failure: credentials or the vendor's setup.
    pub fn of_connect(error: &ConnectError) -> Class {
        match error {
            ConnectError::Credentials(_) => Class::Credentials,
            ConnectError::Provider(error) => Class::of_provider(error.kind),
        }
    }

    /// A flip error's class.
    pub fn of_error(error: &FlipError) -> Class {
        match error {
            FlipError::Note(_) | FlipError::ReadOnly { .. } | FlipError::OverridesServe { .. } => {
                Class::Refused
            }
            FlipError::Changed { .. } => Class::Changed,
            FlipError::Audit(_) => Class::Failed,
            FlipError::Provider { error, .. } => Class::of_provider(error.kind),
            FlipError::Connect(error) => Class::of_connect(error),
            FlipError::OutcomeUnknown { .. } => Class::OutcomeUnknown,
        }
    }

    /// The CLI's exit code.
    pub fn exit_code(self) -> i32 {
        match self {
            Class::Applied => exit::OK,
            Class::NotVerified => exit::NOT_VERIFIED,
            Class::PendingApproval => exit::PENDING_APPROVAL,
            Class::NothingToDo => exit::NOTHING_TO_DO,
            Class::Refused => exit::REFUSED,
            Class::NotFound => exit::NOT_FOUND,
            Class::Credentials => exit::CREDENTIALS,
            Class::Changed => exit::CHANGED,
            Class::Provider => exit::PROVIDER,
            Class::OutcomeUnknown => exit::OUTCOME_UNKNOWN,
            Class::Failed => exit::FAILURE,
        }
    }

    /// The CLI's `result` field (`kill --output json`).
    pub fn cli_word(self) -> &'static str {
        match self {
            Class::Applied => "applied",
            Class::NotVerified => "not_verified",
            Class::PendingApproval => "pending_approval",
            Class::NothingToDo => "nothing_to_do",
            Class::Refused => "refused",
            Class::NotFound => "not_found",
            Class::Credentials => "credentials",
            Class::Changed => "changed",
            Class::Provider => "provider_error",
            Class::OutcomeUnknown => "outcome_unknown",
            Class::Failed => "failed",
        }
    }

    /// `serve`'s `outcome` field and HTTP status for a trigger's flip.
    pub fn serve_answer(self) -> (&'static str, u16) {
        match self {
            Class::Applied => ("applied", 200),
            Class::NotVerified => ("applied_not_confirmed", 202),
            Class::PendingApproval => ("pending_approval", 202),
            Class::NothingToDo => ("nothing_to_do", 200),
            Class::Refused => ("refused", 403),
            Class::Changed => ("changed", 409),
            Class::OutcomeUnknown => ("outcome_unknown", 504),
            Class::Failed => ("failed", 500),
            Class::NotFound | Class::Credentials | Class::Provider => ("failed", 502),
        }
    }

    /// Whether the dashboard shows it as done (green): applied and confirmed, or nothing to do.
    pub fn ok(self) -> bool {
        matches!(self, Class::Applied | Class::NothingToDo)
    }
}

/// A finished flip, said: what every surface reports.
#[derive(Debug, Clone, PartialEq)]
pub struct Presented {
    pub class: Class,
    /// The cell before and after (`kill --output json`'s `from`/`to`), when the outcome says.
    pub from: Option<String>,
    pub to: Option<String>,
    pub audit_id: Option<String>,
    pub confirmed_ms: Option<u64>,
    /// The vendor's approval request.
    pub reference: Option<String>,
    /// The outcome record could not be written (the change itself went through).
    pub audit_warning: Option<String>,
    /// One line: the CLI's result line and JSON `message`, `serve`'s `message`.
    pub message: String,
    /// The dashboard dialog's lines, first the summary (without the time since start).
    pub lines: Vec<String>,
    /// One line for a cell of a marked set.
    pub cell_line: String,
}

/// The flip's first words when applied: "KILL applied: kill_switch_checkout in prod", or for a
/// rollout "ROLLOUT applied: checkout_v2 in prod rolled out to 50%".
fn applied_headline(request: &FlipRequest) -> String {
    let target = format!("{} in {}", request.flag, request.env);
    match &request.change {
        Change::Switch { .. } => format!("{} applied: {target}", request.change.word(request.kind)),
        Change::Rollout { target: rollout } => {
            format!(
                "ROLLOUT applied: {target} rolled out to {}",
                rollout.summary()
            )
        }
    }
}

/// Says how `result` went for `request`.
pub fn present(request: &FlipRequest, result: &Result<FlipOutcome, FlipError>) -> Presented {
    present_noting(request, result, None)
}

/// [`present`], with `also` said after an applied change (a rollout's "the same write changes
/// staging too").
pub fn present_noting(
    request: &FlipRequest,
    result: &Result<FlipOutcome, FlipError>,
    also: Option<&str>,
) -> Presented {
    let also = also.map(|also| format!(" {also}")).unwrap_or_default();
    let word = request.change.word(request.kind);
    let (flag, env) = (&request.flag, &request.env);
    let target = format!("{flag} in {env}");
    let mut presented = Presented {
        class: Class::Failed,
        from: None,
        to: None,
        audit_id: None,
        confirmed_ms: None,
        reference: None,
        audit_warning: None,
        message: String::new(),
        lines: Vec::new(),
        cell_line: String::new(),
    };
    match result {
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
            let headline = applied_headline(request);
            let change = format!("{from} -> {to}");
            presented.from = Some(from.clone());
            presented.to = Some(to.clone());
            presented.audit_id = Some(audit_id.clone());
            presented.audit_warning = audit_warning.clone();
            presented
                .lines
                .push(format!("{headline} ({} ms): {change}", took.as_millis()));
            let lost = lost_answer.as_ref().map(|lost| {
                format!("The answer to the write was lost ({lost}); read again, the change is live")
            });
            if let Some(lost) = &lost {
                presented.lines.push(lost.clone());
            }
            let lost = lost.map(|lost| format!(" {lost}.")).unwrap_or_default() + &also;
            match verification {
                Verification::Confirmed { after } => {
                    let ms = millis(*after);
                    presented.class = Class::Applied;
                    presented.confirmed_ms = Some(ms);
                    presented.message = format!(
                        "{headline} ({} ms): {change}.{lost} Confirmed by what services see ({served_via}) in {ms} ms. Audit {audit_id}",
                        took.as_millis()
                    );
                    presented.lines.push(format!(
                        "Confirmed by what services see ({served_via}) in {ms} ms"
                    ));
                    presented.cell_line = format!(
                        "{word} {target}: applied ({change}), confirmed in {ms} ms · audit {audit_id}"
                    );
                }
                Verification::NotConfirmed { waited, reason } => {
                    presented.class = Class::NotVerified;
                    presented.message = format!(
                        "{headline}: {change}.{lost} But what services see did not agree within {} ms: {reason}. Audit {audit_id}",
                        waited.as_millis()
                    );
                    presented.lines.push(format!(
                        "NOT confirmed after {} ms: {reason}",
                        waited.as_millis()
                    ));
                    presented.cell_line = format!(
                        "{word} {target}: applied ({change}), NOT confirmed: {reason} · audit {audit_id}"
                    );
                }
            }
        }
        Ok(FlipOutcome::PendingApproval {
            audit_id,
            reference,
            audit_warning,
        }) => {
            presented.class = Class::PendingApproval;
            presented.audit_id = Some(audit_id.clone());
            presented.reference = Some(reference.clone());
            presented.audit_warning = audit_warning.clone();
            presented.message = format!(
                "{word} of {target} needs approval: request {reference} was created; NOTHING IS LIVE YET. Audit {audit_id}"
            );
            presented.lines = vec![
                format!("{word} NOT applied yet: {target} awaits approval"),
                format!("Approval request: {reference}"),
                format!("audit {audit_id}"),
            ];
            presented.cell_line =
                format!("{word} {target}: NOT applied yet, awaits approval ({reference})");
        }
        Ok(FlipOutcome::AlreadyInState { current }) => {
            let now = crate::flip::cell(current.meta.kind, &current.state);
            presented.class = Class::NothingToDo;
            presented.to = Some(now.clone());
            presented.message = format!("{target} already is {now}: nothing to do");
            presented.lines = vec![format!("Nothing to do: {target} already is {now}")];
            presented.cell_line = format!("{target}: nothing to do, already {now}");
        }
        Err(error) => {
            presented.class = Class::of_error(error);
            presented.message = error.to_string();
            if let FlipError::OutcomeUnknown { audit_id, .. } = error {
                // Not a failure: nobody knows whether it is live.
                presented.audit_id = Some(audit_id.clone());
                presented.lines = vec![format!("{word}: {error}")];
                presented.cell_line = format!("{word} {target}: {error}");
            } else {
                presented.lines = vec![format!("{word} FAILED: {error}")];
                presented.cell_line = format!("{word} {target} FAILED: {error}");
            }
        }
    }
    presented
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{FlagKind, FlagState};
    use crate::rollout::RolloutTarget;

    fn request(change: Change) -> FlipRequest {
        FlipRequest {
            env: "prod".into(),
            flag: "checkout_v2".into(),
            kind: FlagKind::Release,
            change,
            seen: FlagState::default(),
            note: "INC-1".into(),
            operator: "alice".into(),
        }
    }

    fn applied(confirmed: bool) -> FlipOutcome {
        FlipOutcome::Applied {
            audit_id: "a1".into(),
            took: Duration::from_millis(12),
            verification: if confirmed {
                Verification::Confirmed {
                    after: Duration::from_millis(30),
                }
            } else {
                Verification::NotConfirmed {
                    waited: Duration::from_millis(5000),
                    reason: "services still get ON 10%".into(),
                }
            },
            audit_warning: None,
            served_via: "the flag file as flagd reads it",
            from: "ON 10%".into(),
            to: "ON 50%".into(),
            lost_answer: None,
        }
    }

    #[test]
    fn a_rollout_is_worded_as_rolled_out_everywhere() {
        let rollout = request(Change::Rollout {
            target: RolloutTarget::Percent { percent: 50.0 },
        });
        let said = present(&rollout, &Ok(applied(true)));
        assert_eq!(said.class, Class::Applied);
        assert_eq!(
            said.message,
            "ROLLOUT applied: checkout_v2 in prod rolled out to 50% (12 ms): ON 10% -> ON 50%. \
             Confirmed by what services see (the flag file as flagd reads it) in 30 ms. Audit a1"
        );
        assert_eq!(
            said.lines[0],
            "ROLLOUT applied: checkout_v2 in prod rolled out to 50% (12 ms): ON 10% -> ON 50%"
        );
        assert_eq!(
            said.cell_line,
            "ROLLOUT checkout_v2 in prod: applied (ON 10% -> ON 50%), confirmed in 30 ms · audit a1"
        );
        assert_eq!(
            (said.from.as_deref(), said.to.as_deref()),
            (Some("ON 10%"), Some("ON 50%"))
        );
        let unconfirmed = present(&rollout, &Ok(applied(false)));
        assert_eq!(unconfirmed.class, Class::NotVerified);
        assert_eq!(unconfirmed.class.exit_code(), exit::NOT_VERIFIED);
        assert!(
            unconfirmed.message.starts_with(
                "ROLLOUT applied: checkout_v2 in prod rolled out to 50%: ON 10% -> ON 50%. But"
            ),
            "{}",
            unconfirmed.message
        );
    }

    #[test]
    fn a_switch_keeps_its_word() {
        let off = request(Change::Switch { enabled: false });
        let said = present(&off, &Ok(applied(true)));
        assert!(
            said.message
                .starts_with("TURN OFF applied: checkout_v2 in prod (12 ms): "),
            "{}",
            said.message
        );
        assert_eq!(said.class.cli_word(), "applied");
        assert_eq!(said.class.serve_answer(), ("applied", 200));
    }

    #[test]
    fn every_error_has_one_class_code_and_answer() {
        let off = request(Change::Switch { enabled: false });
        let cases = [
            (
                FlipError::Provider {
                    stage: "apply the change",
                    error: crate::provider::ProviderError::new(ErrorKind::RateLimited, "429"),
                },
                ("provider_error", exit::PROVIDER, ("failed", 502)),
            ),
            (
                FlipError::Connect(ConnectError::Credentials(
                    crate::session::CredentialError::new(
                        crate::session::CredentialKind::Denied,
                        "prod: Vault 403",
                    ),
                )),
                ("credentials", exit::CREDENTIALS, ("failed", 502)),
            ),
            (
                FlipError::ReadOnly {
                    env: "prod".into(),
                    reason: "--read-only".into(),
                },
                ("refused", exit::REFUSED, ("refused", 403)),
            ),
            (
                FlipError::OutcomeUnknown {
                    env: "prod".into(),
                    flag: "checkout_v2".into(),
                    lost: "timed out".into(),
                    reread: "reset".into(),
                    audit_id: "a9".into(),
                },
                (
                    "outcome_unknown",
                    exit::OUTCOME_UNKNOWN,
                    ("outcome_unknown", 504),
                ),
            ),
        ];
        for (error, (word, code, answer)) in cases {
            let said = present(&off, &Err(error));
            assert_eq!(
                (
                    said.class.cli_word(),
                    said.class.exit_code(),
                    said.class.serve_answer()
                ),
                (word, code, answer)
            );
            assert!(!said.class.ok());
        }
        let unknown = present(
            &off,
            &Err(FlipError::OutcomeUnknown {
                env: "prod".into(),
                flag: "checkout_v2".into(),
                lost: "timed out".into(),
                reread: "reset".into(),
                audit_id: "a9".into(),
            }),
        );
        assert_eq!(unknown.audit_id.as_deref(), Some("a9"));
        assert!(unknown.lines[0].starts_with("TURN OFF: OUTCOME UNKNOWN"));
    }
}
