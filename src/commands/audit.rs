//! `killswitch audit`: the local audit log, joined (with `--flag`) with the vendor's own history
//! of that flag in each environment, oldest first.

use std::io::Write;

use anyhow::Result;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{exit, print_error};
use crate::audit::{self, AuditRecord, Phase};
use crate::cli::{AuditArgs, Output};
use crate::redact;
use crate::session::Session;

/// One line of the joined history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub at: DateTime<Utc>,
    pub env: String,
    pub flag: String,
    /// "killswitch" for the local log, else the vendor ("flagsmith", "unleash", ...).
    pub source: String,
    pub who: Option<String>,
    /// "kill intent", "kill ok", "restore error", or the vendor's description.
    pub what: String,
    /// The audit note (local) or the vendor's comment.
    pub note: Option<String>,
    /// The local record's id, shared by its intent and outcome.
    pub audit_id: Option<String>,
    pub error: Option<String>,
    /// Local records: "kill", "restore", "turn_off", "turn_on".
    #[serde(default)]
    pub action: Option<String>,
    /// Local records: "intent", or the outcome ("ok", "pending_approval", "not_applied",
    /// "error", "unknown").
    #[serde(default)]
    pub result: Option<String>,
    /// Local records: milliseconds until what services see agreed, when verified.
    #[serde(default)]
    pub confirmed_ms: Option<u64>,
    /// Local records: the cell as the operator saw it, and what it was to become.
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub to: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryError {
    pub env: String,
    pub error: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditReport {
    pub audit_log: String,
    pub entries: Vec<AuditEntry>,
    /// Environments whose vendor history could not be read (or that keep none).
    pub history_errors: Vec<HistoryError>,
}

pub async fn run(session: &Session, args: &AuditArgs, out: &mut dyn Write) -> Result<i32> {
    if let Some(env) = args
        .env
        .as_ref()
        .filter(|env| session.config.environment(env).is_none())
    {
        print_error(session.config.unknown_environment(env));
        return Ok(exit::NOT_FOUND);
    }
    // `parse_duration` bounds `--since`; a checked subtraction keeps any other caller safe.
    let since = match args.since {
        Some(age) => match session.clock.now().checked_sub_signed(age) {
            Some(since) => Some(since),
            None => {
                print_error("--since reaches before the calendar's start");
                return Ok(exit::USAGE);
            }
        },
        None => None,
    };
    let keep = |at: DateTime<Utc>, env: &str, flag: &str| {
        since.is_none_or(|since| at >= since)
            && args.env.as_deref().is_none_or(|wanted| wanted == env)
            && args.flag.as_deref().is_none_or(|wanted| wanted == flag)
    };
    let log = session.audit.clone();
    let records = tokio::task::spawn_blocking(move || log.records()).await??;
    let mut entries: Vec<AuditEntry> = records
        .iter()
        .filter(|r| keep(r.at, &r.env, &r.flag))
        .map(local_entry)
        .collect();

    let mut history_errors = Vec::new();
    if let Some(flag) = &args.flag {
        let envs: Vec<String> = session
            .config
            .environment_names()
            .into_iter()
            .filter(|env| args.env.as_deref().is_none_or(|wanted| wanted == env))
            .collect();
        let reads = envs.iter().map(|env| async move {
            match session.connection(env).await {
                Ok(connection) => {
                    let vendor = connection.source.info().vendor.to_string();
                    connection
                        .source
                        .history(flag)
                        .await
                        .map(|history| (vendor, history))
                        .map_err(|err| err.message)
                }
                Err(err) => Err(err.to_string()),
            }
        });
        for (env, result) in envs.iter().zip(futures::future::join_all(reads).await) {
            match result {
                Ok((vendor, history)) => entries.extend(
                    history
                        .into_iter()
                        .filter(|h| keep(h.at, env, flag))
                        .map(|h| AuditEntry {
                            at: h.at,
                            env: env.clone(),
                            flag: flag.clone(),
                            source: vendor.clone(),
                            who: h.who,
                            what: h.what,
                            note: h.comment,
                            audit_id: None,
                            error: None,
                            action: None,
                            result: None,
                            confirmed_ms: None,
                            from: None,
                            to: None,
                        }),
                ),
                Err(error) => history_errors.push(HistoryError {
                    env: env.clone(),
                    error,
                }),
            }
        }
    }
    entries.sort_by_key(|entry| entry.at);
    let report = AuditReport {
        audit_log: session.audit.path().display().to_string(),
        entries,
        history_errors,
    };
    match args.output {
        Output::Json => {
            serde_json::to_writer_pretty(&mut *out, &report)?;
            writeln!(out)?;
        }
        Output::Table => write_table(out, &report)?,
    }
    Ok(exit::OK)
}

fn local_entry(record: &AuditRecord) -> AuditEntry {
    let what = match (record.phase, record.result) {
        (Phase::Intent, _) => format!("{} intent {} -> {}", record.action, record.from, record.to),
        (Phase::Notified, result) => format!(
            "{} notified {}: {}",
            record.action,
            record.receiver.as_deref().unwrap_or("?"),
            match result {
                Some(audit::Result::Ok) => "ok".to_string(),
                _ => format!("error: {}", record.error.as_deref().unwrap_or("?")),
            }
        ),
        (phase, result) => {
            let result = match result {
                Some(audit::Result::Ok) => "ok",
                Some(audit::Result::PendingApproval) => "pending approval",
                Some(audit::Result::NotApplied) => "not applied",
                Some(audit::Result::Error) => "error",
                Some(audit::Result::Unknown) => "OUTCOME UNKNOWN",
                None => "?",
            };
            let mut text = format!("{} {result}", record.action);
            if phase == Phase::Reconciled {
                text.push_str(" (reconciled)");
            }
            if let Some(ms) = record.confirmed_ms {
                text.push_str(&format!(", confirmed in {ms} ms"));
            }
            if let Some(reference) = &record.reference {
                text.push_str(&format!(", request {reference}"));
            }
            text
        }
    };
    AuditEntry {
        at: record.at,
        env: record.env.clone(),
        flag: record.flag.clone(),
        source: "killswitch".into(),
        who: Some(record.operator.clone()),
        what,
        note: Some(record.note.clone()),
        audit_id: Some(record.id.clone()),
        error: record.error.clone(),
        action: Some(record.action.clone()),
        result: Some(match (record.phase, record.result) {
            (Phase::Intent, _) | (_, None) => "intent".to_string(),
            (_, Some(audit::Result::Ok)) => "ok".to_string(),
            (_, Some(audit::Result::PendingApproval)) => "pending_approval".to_string(),
            (_, Some(audit::Result::NotApplied)) => "not_applied".to_string(),
            (_, Some(audit::Result::Error)) => "error".to_string(),
            (_, Some(audit::Result::Unknown)) => "unknown".to_string(),
        }),
        confirmed_ms: record.confirmed_ms,
        from: Some(record.from.clone()),
        to: Some(record.to.clone()),
    }
}

fn write_table(out: &mut dyn Write, report: &AuditReport) -> std::io::Result<()> {
    // One entry, one line: every field (vendor text, operator names, notes, errors) is made an
    // inert line, so a note or a vendor comment with a line break cannot forge a row.
    let shown = |s: &str| redact::line(s);
    writeln!(out, "audit log: {}", shown(&report.audit_log))?;
    if report.entries.is_empty() {
        writeln!(out, "no entries")?;
    }
    for entry in &report.entries {
        let mut line = format!(
            "{}  {}  {}  {}  {}  {}",
            entry.at.format("%Y-%m-%d %H:%M:%S"),
            shown(&entry.env),
            shown(&entry.flag),
            shown(&entry.source),
            shown(entry.who.as_deref().unwrap_or("-")),
            shown(&entry.what)
        );
        if let Some(note) = entry.note.as_deref().filter(|n| !n.is_empty()) {
            line.push_str(&format!("  \"{}\"", shown(note)));
        }
        if let Some(error) = &entry.error {
            line.push_str(&format!("  ({})", shown(error)));
        }
        writeln!(out, "{line}")?;
    }
    for error in &report.history_errors {
        writeln!(
            out,
            "no vendor history for {}: {}",
            shown(&error.env),
            shown(&error.error)
        )?;
    }
    Ok(())
}
