//! `killswitch kill` / `killswitch restore`: the dashboard's flip for runbook steps and scripts.
//!
//! The same transaction as the dashboard ([`crate::flip::execute`]): re-read before the write,
//! audit intent fsynced before the vendor call, verification of what services see, audit
//! outcome. On a terminal it asks for the same confirmation as the dialog (the environment's
//! name in protected environments); without a terminal it refuses unless `--yes` is given.
//! One environment's path is [`super::single`]; several go through [`super::batch`].

use std::io::Write;

use anyhow::Result;

use super::single::decide;
pub(super) use super::single::notified_line;
pub use super::single::{Confirm, FlipReport, NotifiedReport, TerminalConfirm};
use super::{exit, print_error};
use crate::cli::{FlipArgs, FlipOutput};
use crate::session::Session;

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
