//! Environments from Vault: the no-config start (`status`, the dashboard) and
//! `killswitch config init --from-vault`.

use std::io::Write;

use anyhow::Result;

use super::{exit, print_error};
use crate::cli::GlobalArgs;
use crate::config::{Config, NetworkConfig};
use crate::discover;
use crate::vault::{VaultCredentials, VaultEnv};
use crate::workspace::{self, Dirs};

/// The mount and folder the platform's layout uses (the default `[vault]` template).
pub const DEFAULT_PREFIX: &str = "feature-flags";

/// With no config file and `VAULT_ADDR` set: the environments found in Vault, or — when
/// listing is refused or finds nothing — the local workspace, with one line saying why.
pub async fn from_vault_or_local(vault_env: &VaultEnv, dirs: &Dirs) -> Result<Config> {
    let mount = crate::config::DEFAULT_VAULT_MOUNT;
    let vault = VaultCredentials::new(vault_env, &NetworkConfig::default());
    let place = discover::location(mount, DEFAULT_PREFIX);
    let fallback = match discover::list(&vault, mount, DEFAULT_PREFIX).await {
        Ok((found, notes)) if !found.is_empty() => {
            for note in notes {
                print_error(note);
            }
            return Ok(discover::config(&found, mount, DEFAULT_PREFIX));
        }
        Ok(_) => {
            format!("no <provider>/<env> secrets under Vault {place}: using the local workspace")
        }
        Err(err) => format!("{err}; using the local workspace (--local to skip Vault)"),
    };
    let mut config = workspace::local_config(&dirs.local_workspace())?;
    config.source_note = Some(fallback);
    Ok(config)
}

/// `killswitch config init [--from-vault] [--force]`.
pub async fn init(
    global: &GlobalArgs,
    from_vault: bool,
    force: bool,
    mount: &str,
    prefix: &str,
    out: &mut dyn Write,
) -> Result<i32> {
    let dirs = Dirs::discover()?;
    let path = global.config.clone().unwrap_or_else(|| dirs.config_file());
    if !from_vault {
        print_error(
            "config init needs --from-vault (the only source it writes from); the local workspace needs no config",
        );
        return Ok(exit::USAGE);
    }
    if path.exists() && !force {
        print_error(format!(
            "{} exists: not overwritten (add --force to replace it)",
            path.display()
        ));
        return Ok(exit::REFUSED);
    }
    let vault_env = VaultEnv::from_process();
    if !vault_env.configured() {
        print_error(
            "config init --from-vault needs VAULT_ADDR (and a token: VAULT_TOKEN or `vault login`)",
        );
        return Ok(exit::CREDENTIALS);
    }
    let vault = VaultCredentials::new(&vault_env, &NetworkConfig::default());
    let place = discover::location(mount, prefix);
    let (found, notes) = match discover::list(&vault, mount, prefix).await {
        Ok(listed) => listed,
        Err(err) => {
            print_error(err);
            return Ok(exit::CREDENTIALS);
        }
    };
    for note in notes {
        print_error(note);
    }
    if found.is_empty() {
        print_error(format!(
            "no <provider>/<env> secrets under Vault {place} (providers: flagsmith, launchdarkly, unleash): nothing written"
        ));
        return Ok(exit::NOT_FOUND);
    }
    writeln!(out, "Found in Vault {place}:")?;
    for env in &found {
        let protected = if crate::config::DEFAULT_PROTECTED.contains(&env.name.as_str()) {
            "  (protected)"
        } else {
            ""
        };
        writeln!(
            out,
            "  {:<16} {:<13} {mount}/{}{protected}",
            crate::text::line(&env.name),
            env.provider.name(),
            crate::text::line(&env.path)
        )?;
    }
    let text = discover::file_text(&found, mount, prefix, vault.address());
    if let Err(err) = discover::write_config(&path, &text, force) {
        print_error(err);
        return Ok(exit::FAILURE);
    }
    writeln!(out, "Wrote {}", path.display())?;
    Ok(exit::OK)
}
