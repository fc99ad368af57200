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
pub use super::single::{Confirm, FlipReport, NotifiedReport, TerminalConfirm};
use crate::cli::FlipArgs;
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
    let env = wanted.first().cloned().unwrap_or_default();
    let action = if enabled { "restore" } else { "kill" };
    let mut report = FlipReport::new(&env, &args.flag, action);
    let code = decide(session, args, enabled, confirm, &mut report).await;
    report.exit_code = code;
    report.print(args.output, &report, out)?;
    Ok(code)
}
