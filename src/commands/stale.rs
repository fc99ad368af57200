//! `killswitch stale`: the weekly stale-flag report of the platform's 30-day policy.
//!
//! Every flag has an owner and an expected removal date. A flag past its date is overdue; more
//! than 30 days past it, it is stale and due for a tech-debt ticket. A flag without an owner or a
//! date breaks the policy and is listed as a violation. Kill switches are included: they have
//! owners and dates too. A flag is one row however many environments hold it.

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::Result;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::{exit, load_all};
use crate::cli::{ReportOutput, StaleArgs};
use crate::model::{EnvSnapshot, FlagKind, FlagMeta, STALE_AFTER_DAYS};
use crate::session::Session;
use crate::text;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StaleReport {
    pub as_of: NaiveDate,
    pub policy_days: i64,
    /// Owners with at least one overdue flag, alphabetical; flags most overdue first.
    pub owners: Vec<OwnerFlags>,
    /// Flags missing an owner or an expected removal date.
    pub violations: Vec<Violation>,
    /// Environments that could not be read: the report is incomplete without them.
    pub errors: Vec<super::status::EnvError>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OwnerFlags {
    pub owner: String,
    pub flags: Vec<OverdueFlag>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OverdueFlag {
    pub flag: String,
    pub kind: FlagKind,
    pub expected_removal_date: NaiveDate,
    pub days_overdue: i64,
    /// More than 30 days overdue: stale, due for a tech-debt ticket.
    pub stale: bool,
    pub description: Option<String>,
    /// The environments that still hold the flag.
    pub environments: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Violation {
    pub flag: String,
    pub kind: FlagKind,
    /// "owner", "expected_removal_date".
    pub missing: Vec<String>,
    pub environments: Vec<String>,
}

pub async fn run(session: &Session, args: &StaleArgs, out: &mut dyn Write) -> Result<i32> {
    let loaded = load_all(session, &[]).await;
    let as_of = args.as_of.unwrap_or_else(|| session.clock.today());
    let report = build(&loaded, as_of);
    match args.output {
        ReportOutput::Json => {
            serde_json::to_writer_pretty(&mut *out, &report)?;
            writeln!(out)?;
        }
        ReportOutput::Markdown => write_markdown(out, &report)?,
    }
    Ok(if report.errors.is_empty() {
        exit::OK
    } else {
        exit::PROVIDER
    })
}

/// The report over every environment read. A flag's owner and dates are taken from the first
/// environment (in config order) that holds it.
pub fn build(
    loaded: &[(String, Result<EnvSnapshot, crate::session::ConnectError>)],
    as_of: NaiveDate,
) -> StaleReport {
    let mut flags: BTreeMap<&str, (&FlagMeta, Vec<String>)> = BTreeMap::new();
    let mut errors = Vec::new();
    for (env, result) in loaded {
        match result {
            Ok(snapshot) => {
                for flag in &snapshot.flags {
                    flags
                        .entry(flag.meta.key.as_str())
                        .or_insert_with(|| (&flag.meta, Vec::new()))
                        .1
                        .push(env.clone());
                }
            }
            Err(error) => errors.push(super::status::EnvError {
                env: env.clone(),
                error: error.to_string(),
            }),
        }
    }
    let mut owners: BTreeMap<String, Vec<OverdueFlag>> = BTreeMap::new();
    let mut violations = Vec::new();
    for (key, (meta, environments)) in &flags {
        let owner = meta
            .owner
            .as_deref()
            .map(str::trim)
            .filter(|o| !o.is_empty());
        let mut missing = Vec::new();
        if owner.is_none() {
            missing.push("owner".to_string());
        }
        if meta.expected_removal.is_none() {
            missing.push("expected_removal_date".to_string());
        }
        if !missing.is_empty() {
            violations.push(Violation {
                flag: key.to_string(),
                kind: meta.kind,
                missing,
                environments: environments.clone(),
            });
        }
        let (Some(due), Some(days)) = (meta.expected_removal, meta.days_overdue(as_of)) else {
            continue;
        };
        owners
            .entry(owner.unwrap_or("(no owner)").to_string())
            .or_default()
            .push(OverdueFlag {
                flag: key.to_string(),
                kind: meta.kind,
                expected_removal_date: due,
                days_overdue: days,
                stale: days > STALE_AFTER_DAYS,
                description: meta.description.clone(),
                environments: environments.clone(),
            });
    }
    let owners = owners
        .into_iter()
        .map(|(owner, mut flags)| {
            flags.sort_by(|a, b| {
                b.days_overdue
                    .cmp(&a.days_overdue)
                    .then_with(|| a.flag.cmp(&b.flag))
            });
            OwnerFlags { owner, flags }
        })
        .collect();
    StaleReport {
        as_of,
        policy_days: STALE_AFTER_DAYS,
        owners,
        violations,
        errors,
    }
}

/// Names joined for a table cell, each rendered so it cannot end the cell or the row.
fn markdown_list(names: &[String]) -> String {
    names
        .iter()
        .map(|name| text::markdown_text(name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every vendor string (flag keys, owners, environment names, errors) is rendered with the
/// sanitiser's Markdown forms: nothing can open a heading, a list item, a code block or a new
/// table row.
fn write_markdown(out: &mut dyn Write, report: &StaleReport) -> std::io::Result<()> {
    writeln!(out, "# Stale feature flags — {}", report.as_of)?;
    writeln!(out)?;
    writeln!(
        out,
        "Policy: every flag has an owner and an expected removal date. A flag more than {} days \
         past its date is stale and due for a tech-debt ticket.",
        report.policy_days
    )?;
    let overdue: usize = report.owners.iter().map(|o| o.flags.len()).sum();
    let stale: usize = report
        .owners
        .iter()
        .flat_map(|o| &o.flags)
        .filter(|f| f.stale)
        .count();
    writeln!(out)?;
    writeln!(
        out,
        "{overdue} overdue, {stale} stale, {} policy violation(s).",
        report.violations.len()
    )?;
    for owner in &report.owners {
        writeln!(out)?;
        writeln!(out, "## {}", text::markdown_text(&owner.owner))?;
        writeln!(out)?;
        writeln!(
            out,
            "| flag | kind | expected removal | days overdue | action | environments |"
        )?;
        writeln!(out, "|---|---|---|---|---|---|")?;
        for flag in &owner.flags {
            let action = if flag.stale {
                "**STALE: due for a tech-debt ticket**".to_string()
            } else {
                format!(
                    "overdue: remove within {} days",
                    report.policy_days - flag.days_overdue
                )
            };
            writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} |",
                text::markdown_code(&flag.flag),
                flag.kind.label(),
                flag.expected_removal_date,
                flag.days_overdue,
                action,
                markdown_list(&flag.environments)
            )?;
        }
    }
    writeln!(out)?;
    writeln!(out, "## Policy violations")?;
    writeln!(out)?;
    if report.violations.is_empty() {
        writeln!(
            out,
            "None: every flag has an owner and an expected removal date."
        )?;
    } else {
        writeln!(out, "| flag | kind | missing | environments |")?;
        writeln!(out, "|---|---|---|---|")?;
        for violation in &report.violations {
            writeln!(
                out,
                "| {} | {} | {} | {} |",
                text::markdown_code(&violation.flag),
                violation.kind.label(),
                violation.missing.join(", "),
                markdown_list(&violation.environments)
            )?;
        }
    }
    if !report.errors.is_empty() {
        writeln!(out)?;
        writeln!(out, "## Incomplete: environments not read")?;
        writeln!(out)?;
        for error in &report.errors {
            writeln!(
                out,
                "- {}: {}",
                text::markdown_text(&error.env),
                text::markdown_inline(&crate::redact::text(&error.error))
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Flag, FlagState};
    use chrono::{TimeZone, Utc};

    fn flag(key: &str, owner: Option<&str>, due: Option<(i32, u32, u32)>) -> Flag {
        Flag {
            meta: std::sync::Arc::new(FlagMeta {
                key: key.into(),
                kind: FlagKind::classify(key, Some(FlagKind::Release)),
                owner: owner.map(str::to_string),
                expected_removal: due.and_then(|(y, m, d)| NaiveDate::from_ymd_opt(y, m, d)),
                ..FlagMeta::default()
            }),
            state: FlagState::default(),
        }
    }

    fn snapshot(
        env: &str,
        flags: Vec<Flag>,
    ) -> (String, Result<EnvSnapshot, crate::session::ConnectError>) {
        (
            env.to_string(),
            Ok(EnvSnapshot {
                env: env.into(),
                flags,
                fetched_at: Utc.with_ymd_and_hms(2026, 11, 24, 0, 0, 0).unwrap(),
            }),
        )
    }

    #[test]
    fn groups_by_owner_marks_stale_and_lists_violations() {
        let loaded = vec![
            snapshot(
                "dev",
                vec![
                    flag("a_old", Some("team-a"), Some((2026, 10, 1))),
                    flag("b_recent", Some("team-b"), Some((2026, 11, 1))),
                    flag("c_future", Some("team-a"), Some((2027, 1, 1))),
                    flag("d_no_owner", None, Some((2027, 1, 1))),
                    flag("kill_switch_e", Some("team-a"), None),
                ],
            ),
            snapshot(
                "prod",
                vec![flag("a_old", Some("team-a"), Some((2026, 10, 1)))],
            ),
            (
                "staging".to_string(),
                Err(crate::session::ConnectError::Provider(
                    crate::provider::ProviderError::new(
                        crate::provider::ErrorKind::Unreachable,
                        "unreachable",
                    ),
                )),
            ),
        ];
        let as_of = NaiveDate::from_ymd_opt(2026, 11, 24).unwrap();
        let report = build(&loaded, as_of);
        assert_eq!(report.owners.len(), 2);
        assert_eq!(report.owners[0].owner, "team-a");
        assert_eq!(report.owners[0].flags.len(), 1);
        let old = &report.owners[0].flags[0];
        assert_eq!(
            (old.flag.as_str(), old.days_overdue, old.stale),
            ("a_old", 54, true)
        );
        assert_eq!(old.environments, vec!["dev", "prod"]);
        let recent = &report.owners[1].flags[0];
        assert_eq!((recent.days_overdue, recent.stale), (23, false));
        assert_eq!(report.violations.len(), 2);
        assert_eq!(report.violations[0].missing, vec!["owner"]);
        assert_eq!(report.violations[1].flag, "kill_switch_e");
        assert_eq!(report.violations[1].missing, vec!["expected_removal_date"]);
        assert_eq!(report.errors.len(), 1);
    }

    #[test]
    fn exactly_thirty_days_is_overdue_not_stale() {
        let loaded = vec![snapshot(
            "dev",
            vec![flag("f", Some("t"), Some((2026, 10, 25)))],
        )];
        let report = build(&loaded, NaiveDate::from_ymd_opt(2026, 11, 24).unwrap());
        let f = &report.owners[0].flags[0];
        assert_eq!((f.days_overdue, f.stale), (30, false));
        let report = build(&loaded, NaiveDate::from_ymd_opt(2026, 11, 25).unwrap());
        assert!(report.owners[0].flags[0].stale);
    }
}
