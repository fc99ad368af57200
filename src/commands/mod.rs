//! The non-TUI subcommands, and what they share: building a session from the command line,
//! loading every environment concurrently, and the exit codes a runbook branches on.

pub mod audit;
pub mod batch;
pub mod discover;
pub mod kill;
pub mod notify;
pub mod runbook;
pub mod stale;
pub mod status;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};

use crate::audit::AuditLog;
use crate::cli::GlobalArgs;
use crate::clock::{Clock, SystemClock};
use crate::model::EnvSnapshot;
use crate::provider::Access;
use crate::session::{CredentialSource, NoCredentials, Session};
use crate::vault::{VaultCredentials, VaultEnv};
use crate::workspace::{self, Dirs};

/// Exit codes, documented in the README. A runbook can branch on each.
pub mod exit {
    /// Done (or, for `status`, every environment read).
    pub const OK: i32 = 0;
    /// Unexpected failure (config file, audit log, terminal).
    pub const FAILURE: i32 = 1;
    /// Bad command line (clap's own code).
    pub const USAGE: i32 = 2;
    /// The flag already is in the requested state: nothing was changed.
    pub const NOTHING_TO_DO: i32 = 3;
    /// Refused: read-only, not confirmed, no terminal and no `--yes`, empty note.
    pub const REFUSED: i32 = 4;
    /// No such flag or environment.
    pub const NOT_FOUND: i32 = 5;
    /// Vault / credentials error.
    pub const CREDENTIALS: i32 = 6;
    /// The vendor failed or refused (unreachable, 5xx, rate limited, auth at the vendor).
    pub const PROVIDER: i32 = 7;
    /// Applied, but what services see did not agree within the verify timeout.
    pub const NOT_VERIFIED: i32 = 8;
    /// The flag changed since it was read: nothing was changed.
    pub const CHANGED: i32 = 9;
    /// The vendor requires approval: a request was created, nothing is live yet.
    pub const PENDING_APPROVAL: i32 = 10;
    /// The vendor's answer to the write was lost and the flag could not be read again: the
    /// change may or may not be live. Check the flag before anything else.
    pub const OUTCOME_UNKNOWN: i32 = 11;
}

/// Prints `killswitch: MESSAGE` on stderr, the message redacted ([`crate::redact`]) and made
/// one inert line ([`crate::text::line`]): every error and warning the CLI prints goes here.
pub fn print_error(message: impl std::fmt::Display) {
    eprintln!("killswitch: {}", crate::redact::line(&message.to_string()));
}

/// Builds the session every command and the TUI run on.
pub async fn build_session(global: &GlobalArgs, access: Access) -> Result<Session> {
    let dirs = Dirs::discover()?;
    build_session_in(global, access, &dirs, Arc::new(SystemClock)).await
}

pub async fn build_session_in(
    global: &GlobalArgs,
    access: Access,
    dirs: &Dirs,
    clock: Arc<dyn Clock>,
) -> Result<Session> {
    let config = match workspace::config_file(global.config.as_deref(), dirs) {
        Some(path) => crate::config::load(&path)?,
        None if !global.local && VaultEnv::from_process().configured() => {
            self::discover::from_vault_or_local(&VaultEnv::from_process(), dirs).await?
        }
        None => workspace::local_config(&dirs.local_workspace())?,
    };
    if let Some(note) = &config.source_note {
        print_error(note);
    }
    let audit_path: PathBuf = global
        .audit_log
        .clone()
        .or_else(|| config.audit_log.clone())
        .unwrap_or_else(|| dirs.audit_log());
    // Read-only means no write of any kind: the log is not created and its mode is never
    // changed; only a session that may write creates it or tightens it.
    let writes = access == Access::ReadWrite && !global.read_only;
    let audit = if writes {
        AuditLog::open(&audit_path)
    } else {
        AuditLog::open_read_only(&audit_path)
    }
    .context("killswitch refuses to run without its audit log")?;
    let vault_env = VaultEnv::from_process();
    let credentials: Arc<dyn CredentialSource> = if vault_env.configured() {
        Arc::new(VaultCredentials::new(&vault_env, &config.network))
    } else {
        Arc::new(NoCredentials)
    };
    for warning in credentials.warnings() {
        print_error(warning);
    }
    let audit = if config.notify.is_empty() {
        audit
    } else {
        audit.with_notifier(Arc::new(crate::notify::Notifier::new(
            &config.notify,
            credentials.clone(),
        )))
    };
    let access = if global.read_only {
        Access::ReadOnly
    } else {
        access
    };
    Ok(Session::new(
        config,
        access,
        credentials,
        Arc::new(audit),
        clock,
    ))
}

/// Every environment (or those named in `only`), read concurrently; one failing environment
/// does not hold back the others.
pub async fn load_all(
    session: &Session,
    only: &[String],
) -> Vec<(String, Result<EnvSnapshot, String>)> {
    let names: Vec<String> = session
        .config
        .environment_names()
        .into_iter()
        .filter(|name| only.is_empty() || only.contains(name))
        .collect();
    let loads = names.iter().map(|name| session.load(name));
    let mut results = futures::future::join_all(loads).await;
    // Every environment now contributed its metadata: give each snapshot the merged copy.
    for snapshot in results.iter_mut().flatten() {
        session.merge_metadata(snapshot);
    }
    names.into_iter().zip(results).collect()
}

/// Shell completions for `shell`, generated from the clap definition.
pub fn completions(shell: clap_complete::Shell, out: &mut dyn std::io::Write) {
    let mut command = <crate::cli::Cli as clap::CommandFactory>::command();
    clap_complete::generate(shell, &mut command, "killswitch", out);
}

/// The man page (roff), generated from the clap definition.
pub fn man_page(out: &mut dyn std::io::Write) -> std::io::Result<()> {
    let command = <crate::cli::Cli as clap::CommandFactory>::command();
    clap_mangen::Man::new(command).render(out)
}
