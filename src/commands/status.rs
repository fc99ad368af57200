//! `killswitch status`: every environment's flags as a table or JSON, without a terminal UI.
//! Read-only by construction: the session is built with `Access::ReadOnly`.

use std::io::Write;

use anyhow::Result;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::{exit, load_all, print_error};
use crate::cli::{Check, Output, StatusArgs};
use crate::model::{
    CellView, EnvSnapshot, Flag, FlagKind, FlagState, Override, Removal, Rollout, Tone, cell_text,
};
use crate::session::{ConnectError, Session};
use crate::{redact, text};

/// One flag in one environment: the stable JSON shape documented in docs/cli.md.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlagStatus {
    pub env: String,
    pub flag: String,
    pub kind: FlagKind,
    /// The cell text: "SERVING", "KILLED", "ON 10%", "OFF", "20 +2 seg".
    pub state: String,
    pub enabled: bool,
    pub value: Option<serde_json::Value>,
    pub rollout: Rollout,
    /// "10%", "33/33/34", or "" when everyone gets the same value.
    pub rollout_summary: String,
    pub overrides: Vec<Override>,
    pub owner: Option<String>,
    pub expected_removal_date: Option<NaiveDate>,
    pub removal: Removal,
    /// More than 30 days past the expected removal date.
    pub stale: bool,
    pub provider: String,
    /// When this environment was read (the data's freshness).
    pub fetched_at: DateTime<Utc>,
}

/// An environment that could not be read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnvError {
    pub env: String,
    pub error: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusReport {
    pub generated_at: DateTime<Utc>,
    pub flags: Vec<FlagStatus>,
    pub errors: Vec<EnvError>,
}

pub async fn run(session: &Session, args: &StatusArgs, out: &mut dyn Write) -> Result<i32> {
    if let Some(env) = args
        .env
        .iter()
        .find(|env| session.config.environment(env).is_none())
    {
        print_error(session.config.unknown_environment(env));
        return Ok(exit::NOT_FOUND);
    }
    let loaded = load_all(session, &args.env).await;
    let mut report = collect(session, args, &loaded).await;
    let not_found = args.flag.is_some() && report.flags.is_empty() && report.errors.is_empty();
    if let Some(flag) = args.flag.as_ref().filter(|_| not_found) {
        // Named in `errors` too, so a script reading the JSON sees why it is empty.
        let known: Vec<&str> = loaded
            .iter()
            .filter_map(|(_, result)| result.as_ref().ok())
            .flat_map(|snapshot| snapshot.flags.iter().map(|f| f.meta.key.as_str()))
            .collect();
        let where_ = if args.env.is_empty() {
            "in any environment read".to_string()
        } else {
            format!("in {}", args.env.join(", "))
        };
        report.errors.push(EnvError {
            env: if args.env.len() == 1 {
                args.env[0].clone()
            } else {
                "*".to_string()
            },
            error: format!(
                "no flag `{}` {where_}{}",
                crate::text::line(flag),
                crate::text::did_you_mean(flag, known)
            ),
        });
    }
    // `--check` answers for every `--env` given; an environment that could not be read leaves
    // it unanswered (the exit code is then the read error's).
    let check = match (args.check, &args.flag) {
        (Some(check), Some(flag)) => {
            let statuses: Vec<FlagStatus> = args
                .env
                .iter()
                .filter_map(|env| {
                    report
                        .flags
                        .iter()
                        .find(|status| &status.flag == flag && &status.env == env)
                        .cloned()
                })
                .collect();
            (!statuses.is_empty() && statuses.len() == args.env.len()).then_some((check, statuses))
        }
        _ => None,
    };
    // Buffered: a locked stdout flushes at every newline and serde_json writes token by
    // token (~1.5 million `write` calls for 5,000 flags in pretty JSON).
    let mut buffered = std::io::BufWriter::with_capacity(1 << 16, &mut *out);
    match args.output {
        Output::Json => {
            serde_json::to_writer_pretty(&mut buffered, &report)?;
            writeln!(buffered)?;
        }
        Output::Table if args.check.is_some() => {
            if let Some((check, statuses)) = &check {
                let expected = match check {
                    Check::Killed => "killed",
                    Check::Serving => "serving",
                };
                for status in statuses {
                    let word = if matches_check(*check, status) {
                        "yes"
                    } else {
                        "NO"
                    };
                    writeln!(
                        buffered,
                        "{word}: {} in {} is {} (expected {expected})",
                        crate::text::line(&status.flag),
                        crate::text::line(&status.env),
                        crate::text::line(&status.state)
                    )?;
                }
            }
            for error in &report.errors {
                writeln!(buffered, "error: {}", error.error)?;
            }
        }
        Output::Table => write_table(&mut buffered, &report, &loaded)?,
    }
    buffered.flush()?;
    drop(buffered);
    if not_found {
        if let Some(error) = report.errors.last() {
            print_error(&error.error);
        }
        return Ok(exit::NOT_FOUND);
    }
    if let Some((check, statuses)) = &check {
        return Ok(
            if statuses.iter().all(|status| matches_check(*check, status)) {
                exit::OK
            } else {
                exit::FAILURE
            },
        );
    }
    Ok(if report.errors.is_empty() {
        exit::OK
    } else if loaded
        .iter()
        .any(|(_, result)| result.as_ref().is_err_and(|error| error.is_credentials()))
    {
        exit::CREDENTIALS
    } else {
        exit::PROVIDER
    })
}

/// The status document (`status --output json`, `killswitch serve`'s `/api/status`) from
/// environments already read.
pub async fn collect(
    session: &Session,
    args: &StatusArgs,
    loaded: &[(String, Result<EnvSnapshot, ConnectError>)],
) -> StatusReport {
    let today = session.clock.today();
    let mut report = StatusReport {
        generated_at: session.clock.now(),
        flags: Vec::new(),
        errors: Vec::new(),
    };
    let mut provider_names = std::collections::HashMap::new();
    // Only environments that loaded: asking again for a failed one would repeat its
    // (possibly slow) credential read.
    for (env, _) in loaded.iter().filter(|(_, result)| result.is_ok()) {
        if let Ok(connection) = session.connection(env).await {
            provider_names.insert(env.clone(), connection.source.info().vendor.to_string());
        }
    }
    for (env, result) in loaded {
        match result {
            Ok(snapshot) => {
                let provider = provider_names.get(env).cloned().unwrap_or_default();
                report.flags.extend(
                    snapshot
                        .flags
                        .iter()
                        .filter(|flag| {
                            args.flag
                                .as_deref()
                                .is_none_or(|wanted| wanted == flag.meta.key)
                        })
                        .filter(|flag| !args.kill_switches || flag.meta.is_kill_switch())
                        .map(|flag| flag_status(snapshot, flag, &provider, today)),
                );
            }
            Err(error) => report.errors.push(EnvError {
                env: env.clone(),
                error: crate::redact::text(&error.to_string()),
            }),
        }
    }
    sort_flags(&mut report.flags);
    report
}

/// Whether a flag is in the state `--check` expects: killed = nobody served (a flag switched off
/// while segment or identity overrides still serve it is not killed), serving = on.
fn matches_check(check: Check, status: &FlagStatus) -> bool {
    match check {
        Check::Killed => matches!(status.tone(), Tone::Killed | Tone::Off),
        Check::Serving => status.enabled,
    }
}

impl FlagStatus {
    /// What the state means ([`Tone`]), from the state itself (never from the words).
    pub fn tone(&self) -> Tone {
        let state = FlagState {
            enabled: self.enabled,
            value: self.value.clone(),
            rollout: self.rollout.clone(),
            overrides: self.overrides.clone(),
            version: None,
        };
        CellView::of(self.kind, &state).tone
    }
}

fn flag_status(
    snapshot: &EnvSnapshot,
    flag: &Flag,
    provider: &str,
    today: NaiveDate,
) -> FlagStatus {
    let removal = flag.meta.removal(today);
    FlagStatus {
        env: snapshot.env.clone(),
        flag: flag.meta.key.clone(),
        kind: flag.meta.kind,
        state: cell_text(flag.meta.kind, &flag.state),
        enabled: flag.state.enabled,
        value: flag.state.value.clone(),
        rollout: flag.state.rollout.clone(),
        rollout_summary: flag.state.rollout.summary(),
        overrides: flag.state.overrides.clone(),
        owner: flag.meta.owner.clone(),
        expected_removal_date: flag.meta.expected_removal,
        removal,
        stale: matches!(removal, Removal::Stale(_)),
        provider: provider.to_string(),
        fetched_at: snapshot.fetched_at,
    }
}

/// Kill switches first, then by key; environments in config order within a flag.
fn sort_flags(flags: &mut [FlagStatus]) {
    flags.sort_by(|a, b| {
        (b.kind == FlagKind::KillSwitch)
            .cmp(&(a.kind == FlagKind::KillSwitch))
            .then_with(|| a.flag.cmp(&b.flag))
    });
}

fn write_table(
    out: &mut dyn Write,
    report: &StatusReport,
    loaded: &[(String, Result<EnvSnapshot, ConnectError>)],
) -> Result<()> {
    // Every cell is vendor text: one inert line each (no escape can move the cursor or rewrite
    // another row), padded by its shown width. The cells are indexed once by (flag,
    // environment), so the table is linear in flags × environments (a search per cell made
    // 5,000 flags × 6 environments take seconds, and one 75,000-flag file minutes).
    let envs: Vec<&str> = loaded.iter().map(|(env, _)| env.as_str()).collect();
    let env_index: std::collections::HashMap<&str, usize> =
        envs.iter().enumerate().map(|(i, env)| (*env, i)).collect();
    let failed: Vec<bool> = envs
        .iter()
        .map(|env| report.errors.iter().any(|e| e.env == *env))
        .collect();
    let mut keys: Vec<&str> = Vec::new();
    let mut rows: std::collections::HashMap<&str, (Vec<Option<String>>, Option<String>)> =
        std::collections::HashMap::new();
    for status in &report.flags {
        let row = rows.entry(status.flag.as_str()).or_insert_with(|| {
            keys.push(&status.flag);
            (
                vec![None; envs.len()],
                status.owner.as_deref().map(text::line),
            )
        });
        if let Some(&col) = env_index.get(status.env.as_str()) {
            row.0[col].get_or_insert_with(|| text::line(&status.state));
        }
    }
    let cell = |key: &str, col: usize| -> &str {
        match rows.get(key).and_then(|(cells, _)| cells[col].as_deref()) {
            Some(state) => state,
            None if failed[col] => "ERROR",
            None => "-",
        }
    };
    let width = |s: &str| s.chars().count();
    let pad = |s: &str, to: usize| format!("{s}{}", " ".repeat(to.saturating_sub(width(s))));
    let shown_keys: Vec<String> = keys.iter().map(|k| text::line(k)).collect();
    let flag_width = shown_keys
        .iter()
        .map(|k| width(k))
        .max()
        .unwrap_or(4)
        .max(4);
    let shown_envs: Vec<String> = envs.iter().map(|e| text::line(&e.to_uppercase())).collect();
    let widths: Vec<usize> = shown_envs
        .iter()
        .enumerate()
        .map(|(col, shown)| {
            keys.iter()
                .map(|k| width(cell(k, col)))
                .max()
                .unwrap_or(0)
                .max(width(shown))
        })
        .collect();
    let mut out = std::io::BufWriter::new(out);
    write!(out, "{}", pad("FLAG", flag_width))?;
    for (env, width) in shown_envs.iter().zip(&widths) {
        write!(out, "  {}", pad(env, *width))?;
    }
    writeln!(out, "  OWNER")?;
    for (key, shown_key) in keys.iter().zip(&shown_keys) {
        write!(out, "{}", pad(shown_key, flag_width))?;
        for (col, width) in widths.iter().enumerate() {
            write!(out, "  {}", pad(cell(key, col), *width))?;
        }
        let owner = rows.get(key).and_then(|(_, owner)| owner.as_deref());
        writeln!(out, "  {}", owner.unwrap_or("-"))?;
    }
    for error in &report.errors {
        let message = if error.error.starts_with(&format!("{}: ", error.env)) {
            error.error.clone()
        } else {
            format!("{}: {}", error.env, error.error)
        };
        writeln!(out, "error: {}", redact::line(&message))?;
    }
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::audit::AuditLog;
    use crate::cli::Output;
    use crate::clock::SystemClock;
    use crate::provider::Access;
    use crate::session::NoCredentials;

    /// Counts the `write` calls that reach the writer (each is a syscall on stdout).
    #[derive(Default)]
    struct Counting {
        bytes: Vec<u8>,
        writes: usize,
    }

    impl Write for Counting {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.writes += 1;
            self.bytes.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn check_killed_is_false_while_overrides_still_serve() {
        use crate::model::{OverrideKind, Removal};
        let status = |overrides: Vec<Override>| FlagStatus {
            env: "prod".into(),
            flag: "kill_switch_checkout".into(),
            kind: FlagKind::KillSwitch,
            state: String::new(),
            enabled: false,
            value: Some(false.into()),
            rollout: Rollout::Everyone,
            rollout_summary: String::new(),
            overrides,
            owner: None,
            expected_removal_date: None,
            removal: Removal::NoDate,
            stale: false,
            provider: "flagsmith".into(),
            fetched_at: chrono::Utc::now(),
        };
        assert!(matches_check(Check::Killed, &status(Vec::new())));
        let beta = Override {
            target: "segment beta".into(),
            kind: OverrideKind::Segment,
            enabled: true,
            value: None,
            rollout: Rollout::Everyone,
        };
        // `SERVING 1 seg only`: a runbook's "is it killed?" must not say yes.
        let partly = status(vec![beta]);
        assert!(!matches_check(Check::Killed, &partly));
        assert!(!matches_check(Check::Serving, &partly));
    }

    fn session(dir: &std::path::Path) -> Session {
        let config = crate::workspace::local_config(&dir.join("local")).expect("config");
        let audit = AuditLog::open(&dir.join("audit.jsonl")).expect("audit");
        Session::new(
            config,
            Access::ReadOnly,
            Arc::new(NoCredentials),
            Arc::new(audit),
            Arc::new(SystemClock),
        )
    }

    fn args(output: Output) -> StatusArgs {
        StatusArgs {
            env: Vec::new(),
            flag: None,
            check: None,
            kill_switches: false,
            output,
        }
    }

    #[tokio::test]
    async fn the_output_reaches_the_writer_in_a_few_large_writes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let session = session(dir.path());
        for output in [Output::Json, Output::Table] {
            let mut out = Counting::default();
            let code = run(&session, &args(output), &mut out).await.expect("run");
            assert_eq!(code, exit::OK);
            let lines = out.bytes.iter().filter(|b| **b == b'\n').count();
            assert!(lines > 5, "{lines} lines");
            // Unbuffered, serde_json and the table write every token or cell on its own.
            assert!(
                out.writes <= 1 + out.bytes.len() / (1 << 16),
                "{} writes for {} bytes",
                out.writes,
                out.bytes.len()
            );
        }
    }

    #[tokio::test]
    async fn the_table_has_every_flag_once_with_its_cell_per_environment() {
        let dir = tempfile::tempdir().expect("tempdir");
        let session = session(dir.path());
        let mut json = Counting::default();
        run(&session, &args(Output::Json), &mut json)
            .await
            .expect("json");
        let report: StatusReport = serde_json::from_slice(&json.bytes).expect("report");
        let mut table = Counting::default();
        run(&session, &args(Output::Table), &mut table)
            .await
            .expect("table");
        let table = String::from_utf8(table.bytes).expect("utf-8");
        let rows: Vec<Vec<&str>> = table
            .lines()
            .skip(1)
            .map(|line| {
                line.split("  ")
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .collect()
            })
            .collect();
        let header: Vec<&str> = table
            .lines()
            .next()
            .expect("header")
            .split_whitespace()
            .collect();
        let mut keys: Vec<&str> = report.flags.iter().map(|f| f.flag.as_str()).collect();
        keys.dedup();
        assert_eq!(rows.len(), keys.len());
        for (row, key) in rows.iter().zip(&keys) {
            assert_eq!(row[0], *key);
            for (column, env) in header[1..header.len() - 1].iter().enumerate() {
                let status = report
                    .flags
                    .iter()
                    .find(|f| f.flag == *key && f.env.to_uppercase() == *env)
                    .expect("cell");
                assert_eq!(row[column + 1], status.state, "{key} in {env}");
            }
        }
    }
}
