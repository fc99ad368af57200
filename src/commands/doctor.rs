//! `killswitch doctor`: checks the setup the way the dashboard will use it, one line per check
//! with the fix: the config, the audit log, Vault (reachable, token valid), each environment's
//! secret and fields, and the vendor credentials (a read; the write credential's presence).
//! Exit 0 only when every check passes.

use std::io::Write;
use std::sync::Arc;

use anyhow::Result;

use super::exit;
use crate::audit::AuditLog;
use crate::cli::GlobalArgs;
use crate::config::Config;
use crate::provider::{self, Access};
use crate::session::{ConnectError, CredentialKind, CredentialSource};
use crate::text;
use crate::vault::{VaultCredentials, VaultEnv};
use crate::workspace::{self, Dirs};

/// One check's result.
struct Report<'a> {
    out: &'a mut dyn Write,
    failed: usize,
}

impl Report<'_> {
    fn ok(&mut self, what: &str, detail: &str) -> std::io::Result<()> {
        writeln!(self.out, "ok    {what}: {}", text::line(detail))
    }

    fn info(&mut self, what: &str, detail: &str) -> std::io::Result<()> {
        writeln!(self.out, "note  {what}: {}", text::line(detail))
    }

    fn fail(&mut self, what: &str, problem: &str, fix: &str) -> std::io::Result<()> {
        self.failed += 1;
        writeln!(
            self.out,
            "FAIL  {what}: {} — fix: {}",
            text::line(problem),
            text::line(fix)
        )
    }
}

pub async fn run(global: &GlobalArgs, out: &mut dyn Write) -> Result<i32> {
    let dirs = Dirs::discover()?;
    run_in(global, &dirs, &VaultEnv::from_process(), out).await
}

/// [`run`] with the directories and Vault settings given (tests).
pub async fn run_in(
    global: &GlobalArgs,
    dirs: &Dirs,
    vault_env: &VaultEnv,
    out: &mut dyn Write,
) -> Result<i32> {
    let mut report = Report { out, failed: 0 };
    let config = match workspace::resolve_config(global.config.as_deref(), dirs) {
        Ok(config) => {
            report.ok(
                "config",
                &format!(
                    "{} ({} environments: {})",
                    config.origin,
                    config.environments.len(),
                    config.environment_names().join(", ")
                ),
            )?;
            config
        }
        Err(err) => {
            report.fail(
                "config",
                &format!("{err:#}"),
                "correct the file at the line named (docs/configuration.md)",
            )?;
            writeln!(report.out, "1 check failed; the others need a config")?;
            return Ok(exit::FAILURE);
        }
    };
    audit_check(&mut report, global, &config, dirs)?;
    let needs_vault = config.environments.iter().any(|e| e.provider.uses_vault());
    let vault = if !needs_vault {
        report.info(
            "vault",
            "not needed: every environment is a local flag file",
        )?;
        None
    } else if !vault_env.configured() {
        let paths: Vec<String> = config
            .environments
            .iter()
            .filter(|e| e.provider.uses_vault())
            .map(|e| e.vault_location())
            .collect();
        report.fail(
            "vault",
            &format!(
                "VAULT_ADDR is not set, and {} read credentials from Vault",
                paths.join(", ")
            ),
            "export VAULT_ADDR=https://vault.example:8200 and log in (vault login), or set VAULT_TOKEN",
        )?;
        None
    } else {
        let vault = VaultCredentials::new(vault_env, &config.network);
        for warning in vault.warnings() {
            report.fail(
                "vault TLS",
                &warning,
                "set VAULT_CACERT to the CA file instead of VAULT_SKIP_VERIFY",
            )?;
        }
        match vault.identity().await {
            Ok(identity) => {
                report.ok(
                    "vault",
                    &format!(
                        "{} answers; token of {}",
                        vault.address(),
                        identity.operator()
                    ),
                )?;
                Some(vault)
            }
            Err(error) => {
                report.fail(
                    "vault",
                    &error,
                    "check VAULT_ADDR, then `vault login` (or a fresh VAULT_TOKEN)",
                )?;
                None
            }
        }
    };
    for env in &config.environments {
        let what = format!("{} ({})", env.name, env.provider.name());
        let credentials = if env.provider.uses_vault() {
            let Some(vault) = &vault else {
                report.fail(
                    &what,
                    &format!(
                        "not checked: Vault is not usable ({})",
                        env.vault_location()
                    ),
                    "fix the vault line above first",
                )?;
                continue;
            };
            match vault.credentials(env).await {
                Ok(credentials) => {
                    report.ok(
                        &format!("{what} secret"),
                        &format!(
                            "{} has the fields {}",
                            env.vault_location(),
                            provider::credential_fields(env.provider)
                                .required
                                .join(", ")
                        ),
                    )?;
                    Some(credentials)
                }
                Err(error) => {
                    // The fix depends on what failed: a missing secret, a policy, the token.
                    let advice = match &error {
                        ConnectError::Credentials(failure) => {
                            failure.kind.advice(&env.vault_location())
                        }
                        ConnectError::Provider(_) => {
                            CredentialKind::Missing.advice(&env.vault_location())
                        }
                    };
                    report.fail(&format!("{what} secret"), &error.to_string(), &advice)?;
                    continue;
                }
            }
        } else {
            None
        };
        let access = if global.read_only {
            Access::ReadOnly
        } else {
            Access::ReadWrite
        };
        let access = match credentials.as_ref().and_then(|c| c.write_denied.as_ref()) {
            Some(_) => Access::ReadOnly,
            None => access,
        };
        let connection = match provider::connect(
            env,
            credentials.as_ref().map(|c| &c.fields),
            access,
            &config.network,
        ) {
            Ok(connection) => connection,
            Err(error) => {
                report.fail(
                    &format!("{what} setup"),
                    &error.message,
                    "correct the environment's options in the config or the secret's fields",
                )?;
                continue;
            }
        };
        match connection.source.list_flags().await {
            Ok(flags) => report.ok(
                &format!("{what} read"),
                &format!("{} flags read", flags.len()),
            )?,
            Err(error) => report.fail(
                &format!("{what} read"),
                &error.message,
                "check the URL and the read key in the secret (docs/vault.md: where each key is)",
            )?,
        }
        match (
            credentials.as_ref().and_then(|c| c.write_denied.clone()),
            &connection.writer,
        ) {
            (Some(reason), _) => report.info(&format!("{what} write"), &reason)?,
            (None, Some(_)) => report.ok(
                &format!("{what} write"),
                "write path ready (not exercised: a check never changes a flag)",
            )?,
            (None, None) => report.info(
                &format!("{what} write"),
                connection
                    .read_only_reason
                    .as_deref()
                    .unwrap_or("read-only"),
            )?,
        }
    }
    let failed = report.failed;
    if failed == 0 {
        writeln!(report.out, "all checks passed")?;
        Ok(exit::OK)
    } else {
        writeln!(
            report.out,
            "{failed} check{} failed",
            if failed == 1 { "" } else { "s" }
        )?;
        Ok(exit::FAILURE)
    }
}

fn audit_check(
    report: &mut Report<'_>,
    global: &GlobalArgs,
    config: &Config,
    dirs: &Dirs,
) -> std::io::Result<()> {
    let path = global
        .audit_log
        .clone()
        .or_else(|| config.audit_log.clone())
        .unwrap_or_else(|| dirs.audit_log());
    match AuditLog::open(&path) {
        Ok(log) => {
            let log = Arc::new(log);
            report.ok("audit log", &log.path().display().to_string())
        }
        Err(error) => report.fail(
            "audit log",
            &error.to_string(),
            "make its directory writable, or set audit_log in the config / --audit-log",
        ),
    }
}
