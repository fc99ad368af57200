//! The flip transaction, shared by the TUI and the `kill`/`restore` subcommands:
//! re-read, audit intent (fsynced), apply, verify what services see, audit the outcome.
//!
//! "No audit, no change": if the intent record cannot be written, the vendor is never called.

use std::time::{Duration, Instant};

use crate::audit::{self, AuditError, AuditLog, AuditRecord, Phase};
use crate::clock::Clock;
use crate::model::{Flag, FlagKind, FlagState, KILL_SWITCH_PREFIX, audit_cell};
use crate::provider::{ChangeNote, Connection, ErrorKind, ProviderError, WriteResult};
use crate::rollout::RolloutTarget;
use crate::session::Session;

/// What a flip changes.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// Turns the flag on or off: `false` kills a kill switch or turns another flag off.
    Switch { enabled: bool },
    /// Sets how the default audience is split: a percentage, or everyone to one variant.
    Rollout { target: RolloutTarget },
}

impl Change {
    /// "KILL", "RESTORE", "TURN OFF", "TURN ON", "ROLLOUT".
    pub fn word(&self, kind: FlagKind) -> &'static str {
        match self {
            Change::Switch { enabled } => action_word(kind, *enabled),
            Change::Rollout { .. } => "ROLLOUT",
        }
    }

    /// The audit log's action field: "kill", "restore", "turn_off", "turn_on", "rollout".
    pub fn action_name(&self, kind: FlagKind) -> String {
        self.word(kind).to_ascii_lowercase().replace(' ', "_")
    }

    /// The enabled state the change leaves the flag in (a rollout leaves it on): the audit
    /// record's `enabled`.
    pub fn enabled(&self) -> bool {
        match self {
            Change::Switch { enabled } => *enabled,
            Change::Rollout { .. } => true,
        }
    }

    /// The rollout asked for, if this is one.
    pub fn rollout(&self) -> Option<&RolloutTarget> {
        match self {
            Change::Switch { .. } => None,
            Change::Rollout { target } => Some(target),
        }
    }

    /// The cell the change asks for, before anything is written: "KILLED", "ON 50%".
    pub fn requested_cell(&self, kind: FlagKind, now: &FlagState) -> String {
        match self {
            Change::Switch { enabled } => requested_cell(kind, *enabled),
            Change::Rollout { target } => cell(kind, &target.predicted(now)),
        }
    }

    /// Whether `state` (read from the vendor after the write) holds the change.
    pub fn live_in(&self, state: &FlagState) -> bool {
        match self {
            Change::Switch { enabled } => state.enabled == *enabled,
            Change::Rollout { target } => target.reached_by(state),
        }
    }
}

/// What the operator asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct FlipRequest {
    pub env: String,
    pub flag: String,
    pub kind: FlagKind,
    /// What is asked for: a switch (kill / restore / turn on / turn off) or a rollout.
    pub change: Change,
    /// The state the operator saw when deciding. The flip stops if the flag has moved since.
    pub seen: FlagState,
    pub note: String,
    pub operator: String,
}

/// How a finished flip went.
#[derive(Debug, Clone, PartialEq)]
pub enum FlipOutcome {
    /// Applied at the vendor; `took` is from the intent record to the vendor's answer.
    Applied {
        audit_id: String,
        took: Duration,
        verification: Verification,
        audit_warning: Option<String>,
        /// What was read to confirm ("the Unleash client API").
        served_via: &'static str,
        /// The cell before the change (from the re-read guard) and after it (from the re-read
        /// after the write): what the result line, `--output json` and the audit outcome say.
        from: String,
        to: String,
        /// Set when the vendor's answer to the write was lost and a re-read showed the change
        /// live: what was lost, in words.
        lost_answer: Option<String>,
    },
    /// The vendor requires approval: a request exists, nothing is live yet.
    PendingApproval {
        audit_id: String,
        reference: String,
        audit_warning: Option<String>,
    },
    /// The flag already was in the requested state; nothing was written anywhere.
    AlreadyInState { current: Flag },
}

/// Whether what services see agrees with the change.
#[derive(Debug, Clone, PartialEq)]
pub enum Verification {
    Confirmed { after: Duration },
    NotConfirmed { waited: Duration, reason: String },
}

#[derive(Debug, thiserror::Error)]
pub enum FlipError {
    #[error("{0}")]
    Note(#[from] crate::text::NoteError),
    #[error("{env} is read-only: {reason}")]
    ReadOnly { env: String, reason: String },
    #[error(
        "{flag} in {env} changed since it was shown: it is now {now}. Nothing was changed; look again and retry."
    )]
    Changed {
        env: String,
        flag: String,
        now: String,
        current: Box<Flag>,
    },
    #[error("no audit, no change: {0}")]
    Audit(#[from] AuditError),
    /// The environment could not be connected (credentials or the vendor's setup): nothing was
    /// read or written.
    #[error("{0}")]
    Connect(#[from] crate::session::ConnectError),
    #[error("{stage}: {error}")]
    Provider {
        stage: &'static str,
        error: ProviderError,
    },
    /// The vendor's toggle already is off, but overrides it keeps per segment or identity still
    /// serve the flag: a kill cannot help, and "nothing to do" would be false.
    #[error(
        "{flag} in {env} is switched off but still serves through {targets} (the vendor keeps these overrides on their own switch): killswitch turns off the environment default only. Turn the overrides off in the vendor's console. Nothing was changed."
    )]
    OverridesServe {
        env: String,
        flag: String,
        targets: String,
    },
    /// The vendor's answer to the write was lost and the flag could not be read again.
    #[error(
        "OUTCOME UNKNOWN: {flag} in {env} may or may not have changed: the answer to the write was lost ({lost}) and reading the flag again failed too ({reread}). Check it (`killswitch status --env {env} --flag {flag}`) before doing anything else. Audit {audit_id}"
    )]
    OutcomeUnknown {
        env: String,
        flag: String,
        lost: String,
        reread: String,
        audit_id: String,
    },
}

impl FlipError {
    pub fn provider_kind(&self) -> Option<ErrorKind> {
        match self {
            FlipError::Provider { error, .. } => Some(error.kind),
            _ => None,
        }
    }
}

/// "KILL", "RESTORE", "TURN OFF", "TURN ON".
pub fn action_word(kind: FlagKind, enabled: bool) -> &'static str {
    match (kind, enabled) {
        (FlagKind::KillSwitch, false) => "KILL",
        (FlagKind::KillSwitch, true) => "RESTORE",
        (_, false) => "TURN OFF",
        (_, true) => "TURN ON",
    }
}

/// The audit log's action field: "kill", "restore", "turn_off", "turn_on".
pub fn action_name(kind: FlagKind, enabled: bool) -> String {
    action_word(kind, enabled)
        .to_ascii_lowercase()
        .replace(' ', "_")
}

/// The sentence the confirmation dialog (and the `kill` prompt) shows, with the flag's cell
/// now and the state asked for: "KILL checkout in prod: kill_switch_checkout SERVING -> KILLED".
pub fn describe(kind: FlagKind, flag: &str, env: &str, now: &FlagState, enabled: bool) -> String {
    describe_change(kind, flag, env, now, &Change::Switch { enabled })
}

/// [`describe`] for any change: "ROLLOUT checkout_v2 in prod: ON 10% -> ON 50%".
pub fn describe_change(
    kind: FlagKind,
    flag: &str,
    env: &str,
    now: &FlagState,
    change: &Change,
) -> String {
    let from = cell(kind, now);
    let to = change.requested_cell(kind, now);
    let word = change.word(kind);
    match flag
        .strip_prefix(KILL_SWITCH_PREFIX)
        .filter(|_| kind == FlagKind::KillSwitch)
    {
        Some(feature) => format!("{word} {feature} in {env}: {flag} {from} -> {to}"),
        None => format!("{word} {flag} in {env}: {from} -> {to}"),
    }
}

/// Whether `current` already is what a flip to `enabled` asks for (`Ok(true)`: nothing to
/// write). The one rule the dialog's transaction, `kill`/`restore` and `serve` share. A flag
/// whose vendor toggle is off while overrides still serve it (Flagsmith keeps an `enabled` per
/// segment and identity override) is not "already off": turning it off is refused with the
/// overrides named, since the switch killswitch flips cannot stop them.
pub fn already_there(
    env: &str,
    flag: &str,
    current: &FlagState,
    enabled: bool,
) -> Result<bool, FlipError> {
    if current.enabled != enabled {
        return Ok(false);
    }
    if !enabled {
        let serving: Vec<String> = current
            .overrides
            .iter()
            .filter(|o| o.enabled)
            .map(|o| o.target.clone())
            .collect();
        if !serving.is_empty() {
            let noun = if serving.len() == 1 {
                "override"
            } else {
                "overrides"
            };
            return Err(FlipError::OverridesServe {
                env: env.to_string(),
                flag: flag.to_string(),
                targets: format!("{} {noun} ({})", serving.len(), serving.join(", ")),
            });
        }
    }
    Ok(true)
}

/// [`already_there`] for any change: a rollout is already there when the default audience
/// already gets what it asks for.
pub fn already_done(
    env: &str,
    flag: &str,
    current: &FlagState,
    change: &Change,
) -> Result<bool, FlipError> {
    match change {
        Change::Switch { enabled } => already_there(env, flag, current, *enabled),
        Change::Rollout { target } => Ok(target.reached_by(current)),
    }
}

/// The before/after cell of a flip: the one wording the dialog, the result line, `kill
/// --output json` (`from`/`to`) and the audit records use, the log's stable wording
/// ([`crate::model::audit_cell`]), not the dashboard's display. Always computed from a state
/// read from the vendor: "before" from the re-read guard, "after" from the re-read after the
/// write.
pub fn cell(kind: FlagKind, state: &FlagState) -> String {
    audit_cell(kind, state)
}

/// What the intent record names as the target before anything is written: the state asked for
/// ("KILLED", "SERVING", "OFF", "ON"). The outcome record then holds what the flag serves.
pub fn requested_cell(kind: FlagKind, enabled: bool) -> String {
    let asked = FlagState {
        enabled,
        ..FlagState::default()
    };
    cell(kind, &asked)
}

/// Runs the whole transaction. Every record it writes carries the same audit id.
pub async fn execute(
    request: &FlipRequest,
    connection: &Connection,
    audit_log: &AuditLog,
    clock: &dyn Clock,
    verify_timeout: Duration,
) -> Result<FlipOutcome, FlipError> {
    execute_announced(request, connection, audit_log, clock, verify_timeout, None)
        .await
        .result
}

/// A finished flip and how its notifications went.
#[derive(Debug)]
pub struct Announced {
    pub result: Result<FlipOutcome, FlipError>,
    /// One per `[[notify]]` receiver of this environment, after the outcome record.
    pub notified: Vec<crate::notify::Delivery>,
}

/// [`execute`], also returning the notification deliveries (for the result line), with the
/// records tagged with `batch` when the flip is one environment of a multi-environment kill.
pub async fn execute_announced(
    request: &FlipRequest,
    connection: &Connection,
    audit_log: &AuditLog,
    clock: &dyn Clock,
    verify_timeout: Duration,
    batch: Option<&str>,
) -> Announced {
    let mut outcome_record = None;
    let result = transaction(
        request,
        connection,
        audit_log,
        clock,
        verify_timeout,
        batch,
        &mut outcome_record,
    )
    .await;
    // After the outcome is on disk; bounded, and never changes the result.
    let notified = match outcome_record {
        Some(record) => crate::notify::announce(audit_log, &record, clock).await,
        None => Vec::new(),
    };
    Announced { result, notified }
}

/// The transaction itself; `outcome_record` gets the outcome record once one is written (even if
/// the audit log refused it), for the notifications.
async fn transaction(
    request: &FlipRequest,
    connection: &Connection,
    audit_log: &AuditLog,
    clock: &dyn Clock,
    verify_timeout: Duration,
    batch: Option<&str>,
    outcome_record: &mut Option<AuditRecord>,
) -> Result<FlipOutcome, FlipError> {
    let note = crate::text::validate_note(&request.note)?;
    let note = note.as_str();
    let Some(writer) = connection.writer.as_ref() else {
        return Err(FlipError::ReadOnly {
            env: request.env.clone(),
            reason: connection
                .read_only_reason
                .clone()
                .unwrap_or_else(|| "no write access".into()),
        });
    };
    let source = &connection.source;
    let current = source
        .read_flag(&request.flag)
        .await
        .map_err(|error| FlipError::Provider {
            stage: "re-read before the change",
            error,
        })?;
    if already_done(&request.env, &request.flag, &current.state, &request.change)? {
        return Ok(FlipOutcome::AlreadyInState { current });
    }
    if current.state != request.seen {
        return Err(FlipError::Changed {
            env: request.env.clone(),
            flag: request.flag.clone(),
            now: audit_cell(current.meta.kind, &current.state),
            current: Box::new(current),
        });
    }

    let audit_id = audit::new_id(clock.now());
    let from = cell(request.kind, &current.state);
    // Held until this function returns, after the outcome record: while it is held, no other
    // process takes this flip for an interrupted one, however long it reads the log.
    let _in_flight = audit_log.lock_flip(&audit_id)?;
    let mut record = AuditRecord {
        v: crate::audit::RECORD_VERSION,
        id: audit_id.clone(),
        phase: Phase::Intent,
        at: clock.now(),
        operator: request.operator.clone(),
        env: request.env.clone(),
        provider: source.info().vendor.to_string(),
        flag: request.flag.clone(),
        action: request.change.action_name(request.kind),
        from: from.clone(),
        to: request.change.requested_cell(request.kind, &current.state),
        enabled: request.change.enabled(),
        rollout: request.change.rollout().cloned(),
        previous: match &request.change {
            Change::Rollout { .. } => RolloutTarget::of_state(&current.state),
            Change::Switch { .. } => None,
        },
        note: note.to_string(),
        result: None,
        error: None,
        duration_ms: None,
        confirmed_ms: None,
        reference: None,
        batch: batch.map(str::to_string),
        receiver: None,
    };
    audit_log.append(&record)?;

    let started = Instant::now();
    let change_note = ChangeNote {
        audit_id: audit_id.clone(),
        operator: request.operator.clone(),
        note: note.to_string(),
    };
    let written = match &request.change {
        Change::Switch { enabled } => {
            writer
                .set_enabled(&request.flag, *enabled, &change_note, &current.state)
                .await
        }
        Change::Rollout { target } => {
            writer
                .set_rollout(&request.flag, target, &change_note, &current.state)
                .await
        }
    };
    let took = started.elapsed();
    record.phase = Phase::Outcome;
    record.duration_ms = Some(millis(took));
    // The write's answer was lost (timeout, reset, 5xx after sending): what is true is what
    // the vendor holds now, so read the flag again before saying anything.
    let mut lost_answer = None;
    let written = match written {
        Err(error) if error.outcome_unknown => match reread(connection, &request.flag).await {
            Ok(now) if request.change.live_in(&now) => {
                lost_answer = Some(error.message);
                Ok(WriteResult::Applied)
            }
            Ok(now) => {
                record.at = clock.now();
                record.result = Some(audit::Result::NotApplied);
                record.to = cell(request.kind, &now);
                let message = format!(
                    "{}; read again, the flag is unchanged ({}): nothing was changed",
                    error.message, record.to
                );
                record.error = Some(message.clone());
                *outcome_record = Some(record.clone());
                let message = match audit_log.append(&record) {
                    Ok(()) => message,
                    Err(audit_error) => {
                        format!("{message} (and the outcome could not be audited: {audit_error})")
                    }
                };
                return Err(FlipError::Provider {
                    stage: "apply the change",
                    error: ProviderError::new(error.kind, message),
                });
            }
            Err(reread_error) => {
                record.at = clock.now();
                record.result = Some(audit::Result::Unknown);
                record.error = Some(format!(
                    "outcome unknown: the answer to the write was lost ({}) and reading the flag again failed ({})",
                    error.message, reread_error.message
                ));
                *outcome_record = Some(record.clone());
                let audit_note = audit_log
                    .append(&record)
                    .err()
                    .map(|e| format!(" (and the outcome could not be audited: {e})"))
                    .unwrap_or_default();
                return Err(FlipError::OutcomeUnknown {
                    env: request.env.clone(),
                    flag: request.flag.clone(),
                    lost: error.message,
                    reread: format!("{}{audit_note}", reread_error.message),
                    audit_id,
                });
            }
        },
        other => other,
    };
    match written {
        Err(error) => {
            record.at = clock.now();
            record.result = Some(audit::Result::Error);
            record.error = Some(error.message.clone());
            *outcome_record = Some(record.clone());
            let error = match audit_log.append(&record) {
                Ok(()) => error,
                Err(audit_error) => ProviderError::new(
                    error.kind,
                    format!(
                        "{} (and the outcome could not be audited: {audit_error})",
                        error.message
                    ),
                ),
            };
            Err(FlipError::Provider {
                stage: "apply the change",
                error,
            })
        }
        Ok(WriteResult::PendingApproval { reference }) => {
            record.at = clock.now();
            record.result = Some(audit::Result::PendingApproval);
            record.reference = Some(reference.clone());
            // Nothing is live: the flag still is what it was.
            record.to = from.clone();
            *outcome_record = Some(record.clone());
            let audit_warning = audit_log.append(&record).err().map(|e| e.to_string());
            Ok(FlipOutcome::PendingApproval {
                audit_id,
                reference,
                audit_warning,
            })
        }
        Ok(WriteResult::Applied) => {
            // What services see, and what the flag now is at the vendor, read side by side:
            // the "after" cell comes from the vendor, not from a guess.
            let (verification, after) = tokio::join!(
                verify_change(connection, &request.flag, &request.change, verify_timeout),
                reread(connection, &request.flag)
            );
            let to = match &after {
                Ok(state) => cell(request.kind, state),
                Err(_) => record.to.clone(),
            };
            record.at = clock.now();
            record.result = Some(audit::Result::Ok);
            record.to = to.clone();
            let mut notes = Vec::new();
            if let Some(lost) = &lost_answer {
                notes.push(format!(
                    "the answer to the write was lost ({lost}); read again, the change is live"
                ));
            }
            match &verification {
                Verification::Confirmed { after } => record.confirmed_ms = Some(millis(*after)),
                Verification::NotConfirmed { reason, .. } => {
                    notes.push(format!("applied, not confirmed: {reason}"));
                }
            }
            if let Err(error) = &after {
                notes.push(format!(
                    "the flag could not be read after the change: {}",
                    error.message
                ));
            }
            if !notes.is_empty() {
                record.error = Some(notes.join("; "));
            }
            *outcome_record = Some(record.clone());
            let audit_warning = audit_log.append(&record).err().map(|e| e.to_string());
            Ok(FlipOutcome::Applied {
                audit_id,
                took,
                verification,
                audit_warning,
                served_via: source.info().served_via,
                from,
                to,
                lost_answer,
            })
        }
    }
}

/// Reads one flag's state again, once more after a short pause if the first read fails: used
/// after a write, when a blip must not turn a known outcome into an unknown one.
async fn reread(connection: &Connection, flag: &str) -> Result<FlagState, ProviderError> {
    match connection.source.read_state(flag).await {
        Ok(state) => Ok(state),
        Err(error) if error.kind == ErrorKind::NotFound => Err(error),
        Err(_) => {
            tokio::time::sleep(Duration::from_millis(150)).await;
            connection.source.read_state(flag).await
        }
    }
}

/// Polls what services see until it agrees with `enabled` or `timeout` passes.
pub async fn verify(
    connection: &Connection,
    flag: &str,
    enabled: bool,
    timeout: Duration,
) -> Verification {
    verify_change(connection, flag, &Change::Switch { enabled }, timeout).await
}

/// What services see, read once for `change`: `Ok(None)` when they see it, `Ok(Some(words))`
/// saying what they still see when not.
async fn served_for(
    connection: &Connection,
    flag: &str,
    change: &Change,
) -> Result<Option<String>, ProviderError> {
    match change {
        Change::Switch { enabled } => {
            let served = connection.source.served(flag).await?;
            Ok((served.enabled != *enabled).then(|| {
                format!(
                    "services still see it {}",
                    if served.enabled { "ON" } else { "OFF" }
                )
            }))
        }
        Change::Rollout { target } => {
            let rule = connection.source.served_rule(flag).await?;
            Ok((!target.reached_by(&rule)).then(|| {
                format!(
                    "services still get {}",
                    crate::text::line(&audit_cell(FlagKind::Release, &rule))
                )
            }))
        }
    }
}

/// Polls what services see until it agrees with `change` or `timeout` passes.
pub async fn verify_change(
    connection: &Connection,
    flag: &str,
    change: &Change,
    timeout: Duration,
) -> Verification {
    let started = Instant::now();
    let mut pause = Duration::from_millis(20);
    // The last thing services were seen to serve: a read cut short by the deadline says less.
    let mut seen: Option<String> = None;
    loop {
        let remaining = timeout.saturating_sub(started.elapsed());
        let last = match tokio::time::timeout(
            remaining.max(Duration::from_millis(1)),
            served_for(connection, flag, change),
        )
        .await
        {
            Ok(Ok(None)) => {
                return Verification::Confirmed {
                    after: started.elapsed(),
                };
            }
            Ok(Ok(Some(text))) => {
                seen = Some(text.clone());
                text
            }
            Ok(Err(err)) => err.message,
            Err(_) => seen
                .clone()
                .unwrap_or_else(|| "the read timed out".to_string()),
        };
        if started.elapsed() + pause >= timeout {
            return Verification::NotConfirmed {
                waited: started.elapsed(),
                reason: last,
            };
        }
        tokio::time::sleep(pause).await;
        // Polls close together for the first two seconds, the window in which a vendor's SDK
        // cache turns (Unleash caches the list SDKs poll for about a second), so "Confirmed"
        // comes within ~50 ms of services seeing it; then back off to spare the vendor.
        let cap = if started.elapsed() < Duration::from_secs(2) {
            Duration::from_millis(50)
        } else {
            Duration::from_millis(250)
        };
        pause = (pause * 2).min(cap);
    }
}

/// For an intent that never got an outcome (killswitch died mid-flip): re-read the flag and
/// record whether the change is live. Returns the record it appended.
pub async fn reconcile(
    pending: &AuditRecord,
    connection: &Connection,
    audit_log: &AuditLog,
    clock: &dyn Clock,
) -> Result<AuditRecord, FlipError> {
    let current = connection
        .source
        .read_flag(&pending.flag)
        .await
        .map_err(|error| FlipError::Provider {
            stage: "re-read an interrupted flip",
            error,
        })?;
    let applied = match &pending.rollout {
        Some(target) => target.reached_by(&current.state),
        None => current.state.enabled == pending.enabled,
    };
    let mut record = pending.clone();
    record.phase = Phase::Reconciled;
    record.at = clock.now();
    record.result = Some(if applied {
        audit::Result::Ok
    } else {
        audit::Result::NotApplied
    });
    record.error = Some(format!(
        "interrupted flip reconciled at next start: {} (flag is now {})",
        if applied { "applied" } else { "not applied" },
        audit_cell(current.meta.kind, &current.state)
    ));
    audit_log.append(&record)?;
    audit_log.forget_flip(&pending.id);
    crate::notify::announce(audit_log, &record, clock).await;
    Ok(record)
}

/// Interrupted flips, described without touching anything (for a read-only session, which
/// must not write a reconcile record): one line each, or why the log could not be read.
pub async fn describe_pending(session: &Session) -> Vec<String> {
    let audit = session.audit.clone();
    match tokio::task::spawn_blocking(move || audit.pending()).await {
        Ok(Ok(pending)) => pending
            .iter()
            .map(|record| {
                format!(
                    "PENDING: interrupted {} of {} in {} ({}) has no outcome; the next start \
                     without --read-only checks whether it was applied",
                    record.action,
                    record.flag,
                    record.env,
                    record.at.format("%Y-%m-%d %H:%M:%S"),
                )
            })
            .collect(),
        Ok(Err(err)) => vec![format!("cannot check for interrupted flips: {err}")],
        Err(err) => vec![format!("cannot check for interrupted flips: {err}")],
    }
}

/// Finds intents without an outcome (a crash mid-flip) and records what actually happened.
///
/// `only` limits it to one environment: a runbook's `kill --env prod` must not wait on another
/// environment's unreachable vendor to reconcile a flip there.
pub async fn reconcile_pending(session: &Session, only: Option<&str>) -> Vec<String> {
    let audit = session.audit.clone();
    let pending = match tokio::task::spawn_blocking(move || audit.pending()).await {
        Ok(Ok(pending)) => pending,
        Ok(Err(err)) => return vec![format!("cannot check for interrupted flips: {err}")],
        Err(err) => return vec![format!("cannot check for interrupted flips: {err}")],
    };
    let mut lines = Vec::new();
    for record in pending
        .into_iter()
        .filter(|record| only.is_none_or(|env| env == record.env))
    {
        // Hold the flip's lock while reconciling, so two starts at once write one record: the
        // second waits for nothing, finds the lock taken or the record written, and moves on.
        let _held = match session.audit.lock_flip(&record.id) {
            Ok(held) => held,
            Err(_) => {
                lines.push(format!(
                    "interrupted {} of {} in {} is being checked by another killswitch process",
                    record.action, record.flag, record.env
                ));
                continue;
            }
        };
        if session.audit.has_finished(&record.id).unwrap_or(false) {
            continue;
        }
        let line = match session.connection(&record.env).await {
            Ok(connection) => {
                match reconcile(&record, &connection, &session.audit, session.clock.as_ref()).await
                {
                    Ok(done) => format!(
                        "interrupted {} of {} in {} ({}) was {}",
                        record.action,
                        record.flag,
                        record.env,
                        record.at.format("%Y-%m-%d %H:%M:%S"),
                        if done.result == Some(audit::Result::Ok) {
                            "applied"
                        } else {
                            "NOT applied"
                        }
                    ),
                    Err(err) => format!(
                        "interrupted {} of {} in {} could not be checked: {err}",
                        record.action, record.flag, record.env
                    ),
                }
            }
            Err(err) => format!(
                "interrupted {} of {} in {} could not be checked: {err}",
                record.action, record.flag, record.env
            ),
        };
        lines.push(line);
    }
    lines
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dialog_sentence_names_feature_env_and_change() {
        let serving = FlagState {
            enabled: true,
            rollout: crate::model::Rollout::Percentage { percent: 10.0 },
            ..FlagState::default()
        };
        let killed = FlagState {
            enabled: false,
            ..FlagState::default()
        };
        assert_eq!(
            describe(
                FlagKind::KillSwitch,
                "kill_switch_checkout",
                "prod",
                &serving,
                false
            ),
            "KILL checkout in prod: kill_switch_checkout SERVING 10% -> KILLED"
        );
        assert_eq!(
            describe(
                FlagKind::KillSwitch,
                "kill_switch_checkout",
                "prod",
                &killed,
                true
            ),
            "RESTORE checkout in prod: kill_switch_checkout KILLED -> SERVING"
        );
        assert_eq!(
            describe(
                FlagKind::Release,
                "catalog_v2_search_engine",
                "dev",
                &serving,
                false
            ),
            "TURN OFF catalog_v2_search_engine in dev: ON 10% -> OFF"
        );
        assert_eq!(action_name(FlagKind::Release, true), "turn_on");
    }
}
