//! The non-TUI subcommands, and what they share: building a session from the command line,
//! loading every environment concurrently, and the exit codes a runbook branches on.

pub mod audit;
pub mod batch;
pub mod complete;
pub mod discover;
pub mod doctor;
pub mod kill;
pub mod notify;
pub mod rollout;
pub mod runbook;
pub mod single;
pub mod stale;
pub mod status;
pub mod undo;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};

use crate::audit::AuditLog;
use crate::cli::GlobalArgs;
use crate::clock::{Clock, SystemClock};
use crate::model::EnvSnapshot;
use crate::provider::Access;
use crate::session::{ConnectError, CredentialSource, NoCredentials, Session};
use crate::vault::{VaultCredentials, VaultEnv};
use crate::workspace::{self, Dirs};

/// Exit codes, documented in docs/cli.md (defined in [`crate::exit`], below everything that
/// reports an outcome).
pub use crate::exit;

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
) -> Vec<(String, Result<EnvSnapshot, ConnectError>)> {
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

/// The shell's registration for dynamic completion: the shell then asks `killswitch` itself
/// (with `COMPLETE=<shell>` set) for each completion, so `--env` offers the configured
/// environments and flag arguments the flag keys.
pub fn completions(
    shell: clap_complete::Shell,
    out: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    use clap_complete::env::{Bash, Elvish, EnvCompleter, Fish, Powershell, Zsh};
    let completer: &dyn EnvCompleter = match shell {
        clap_complete::Shell::Bash => &Bash,
        clap_complete::Shell::Elvish => &Elvish,
        clap_complete::Shell::Fish => &Fish,
        clap_complete::Shell::PowerShell => &Powershell,
        clap_complete::Shell::Zsh => &Zsh,
        // A shell clap adds later: its static completions, generated from the clap definition.
        other => {
            let mut command = <crate::cli::Cli as clap::CommandFactory>::command();
            clap_complete::generate(other, &mut command, "killswitch", out);
            return Ok(());
        }
    };
    completer.write_registration("COMPLETE", "killswitch", "killswitch", "killswitch", out)
}

/// The man page (roff), generated from the clap definition: one page, so the subcommands are
/// described here rather than referred to pages that do not exist, and EXIT STATUS lists the
/// exit codes.
pub fn man_page(out: &mut dyn std::io::Write) -> std::io::Result<()> {
    let command = <crate::cli::Cli as clap::CommandFactory>::command();
    let man = clap_mangen::Man::new(command.clone());
    man.render_title(out)?;
    man.render_name_section(out)?;
    man.render_synopsis_section(out)?;
    man.render_description_section(out)?;
    man.render_options_section(out)?;
    writeln!(out, ".SH SUBCOMMANDS")?;
    for sub in command.get_subcommands().filter(|sub| !sub.is_hide_set()) {
        let mut sub = sub
            .clone()
            .bin_name(format!("killswitch {}", sub.get_name()));
        let usage = sub.render_usage().to_string();
        writeln!(out, ".TP")?;
        writeln!(out, "\\fBkillswitch {}\\fR", roff(sub.get_name()))?;
        if let Some(about) = sub.get_about() {
            writeln!(out, "{}", roff(&about.to_string()))?;
        }
        writeln!(out, ".br")?;
        writeln!(out, "{}", roff(usage.trim_start_matches("Usage: ")))?;
        let options: Vec<String> = sub
            .get_arguments()
            .filter(|arg| !arg.is_hide_set() && !arg.is_global_set())
            .filter_map(|arg| {
                let name = match (arg.get_long(), arg.is_positional()) {
                    (Some(long), _) => format!("--{long}"),
                    (None, true) => arg.get_id().to_string().to_uppercase(),
                    _ => return None,
                };
                if arg.get_id() == "help" {
                    return None;
                }
                let mut help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
                let values: Vec<String> = arg
                    .get_possible_values()
                    .iter()
                    .map(|v| v.get_name().to_string())
                    .collect();
                if !values.is_empty() {
                    help = format!("{help} (one of: {})", values.join(", "))
                        .trim_start()
                        .to_string();
                }
                Some(format!("{name}: {help}"))
            })
            .collect();
        for option in options {
            writeln!(out, ".br")?;
            writeln!(out, "  {}", roff(&option))?;
        }
    }
    writeln!(out, ".SH \"EXIT STATUS\"")?;
    for line in crate::cli::EXIT_STATUS.lines().skip(1) {
        let line = line.trim();
        match line.split_once(char::is_whitespace) {
            Some((code, meaning)) if code.chars().all(|c| c.is_ascii_digit()) => {
                writeln!(out, ".TP")?;
                writeln!(out, "\\fB{code}\\fR")?;
                writeln!(out, "{}", roff(meaning.trim()))?;
            }
            _ => {
                writeln!(out, ".PP")?;
                writeln!(out, "{}", roff(line))?;
            }
        }
    }
    writeln!(out, ".SH \"SEE ALSO\"")?;
    writeln!(
        out,
        "killswitch \\-\\-help, and each subcommand's \\-\\-help."
    )?;
    man.render_version_section(out)
}

/// Text made safe for a roff line: backslashes and dashes escaped, no leading control dot.
fn roff(text: &str) -> String {
    let escaped = text.replace('\\', "\\e").replace('-', "\\-");
    if escaped.starts_with('.') || escaped.starts_with('\'') {
        format!("\\&{escaped}")
    } else {
        escaped
    }
}

/// Whether an error is a closed output pipe (`killswitch status | head -2`): the reader has
/// what it wanted, so the command ends quietly with success, like rg and fd.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            || cause
                .downcast_ref::<serde_json::Error>()
                .and_then(|json| json.io_error_kind())
                .is_some_and(|kind| kind == std::io::ErrorKind::BrokenPipe)
    })
}
