//! Starting from Vault alone: the platform's Vault layout already names every environment
//! (`<mount>/feature-flags/<provider>/<env>`), so with no config file killswitch can list it
//! and run on what it finds, and `killswitch config init --from-vault` writes it down.

use std::path::Path;

use crate::config::{self, Config, EnvironmentConfig, NetworkConfig, ProviderKind};
use crate::vault::VaultCredentials;

/// One environment found in Vault.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    pub name: String,
    pub provider: ProviderKind,
    /// The secret's path inside the mount: `feature-flags/flagsmith/prod`.
    pub path: String,
}

/// "kv/feature-flags/", as the status bar names the source.
pub fn location(mount: &str, prefix: &str) -> String {
    format!("{mount}/{}/", prefix.trim_matches('/'))
}

/// Lists `<mount>/metadata/<prefix>/`, then each `<provider>/` folder in it; every secret
/// there is an environment. Folders that name no vendor (`notify/`) are left alone; an
/// environment found under two vendors is kept once, under the first, and reported.
pub async fn list(
    vault: &VaultCredentials,
    mount: &str,
    prefix: &str,
) -> Result<(Vec<Found>, Vec<String>), String> {
    let prefix = prefix.trim_matches('/');
    let mut found: Vec<Found> = Vec::new();
    let mut notes = Vec::new();
    let mut folders = vault.list(mount, prefix).await?;
    folders.sort();
    for folder in folders {
        let Some(name) = folder.strip_suffix('/') else {
            continue;
        };
        let Some(provider) = provider_named(name) else {
            continue;
        };
        let mut names = vault.list(mount, &format!("{prefix}/{name}")).await?;
        names.sort();
        names.dedup();
        for env in names {
            // `prod/` (the folder holding `prod/admin`) is not an environment by itself.
            if env.ends_with('/') || env.is_empty() || env.contains(char::is_whitespace) {
                continue;
            }
            if let Some(first) = found.iter().find(|f| f.name == env) {
                notes.push(format!(
                    "{env} is under both {} and {}: using {}",
                    first.provider.name(),
                    provider.name(),
                    first.provider.name()
                ));
                continue;
            }
            found.push(Found {
                path: format!("{prefix}/{name}/{env}"),
                name: env,
                provider,
            });
        }
    }
    Ok((found, notes))
}

/// A vendor's folder name (flagd has no Vault secret).
fn provider_named(name: &str) -> Option<ProviderKind> {
    [
        ProviderKind::Flagsmith,
        ProviderKind::LaunchDarkly,
        ProviderKind::Unleash,
    ]
    .into_iter()
    .find(|kind| kind.name() == name)
}

/// The config that runs on `found` (prod/production protected).
pub fn config(found: &[Found], mount: &str, prefix: &str) -> Config {
    Config {
        origin: format!("Vault {}", location(mount, prefix)),
        environments: found
            .iter()
            .map(|env| EnvironmentConfig {
                name: env.name.clone(),
                provider: env.provider,
                protected: config::DEFAULT_PROTECTED.contains(&env.name.as_str()),
                file: None,
                vault_mount: mount.to_string(),
                vault_path: env.path.clone(),
                options: Default::default(),
            })
            .collect(),
        keymap: None,
        audit_log: None,
        refresh_interval: config::DEFAULT_REFRESH,
        network: NetworkConfig::default(),
        local_workspace: false,
        serve: Default::default(),
        notify: Vec::new(),
        source_note: Some(format!(
            "environments from Vault {}",
            location(mount, prefix)
        )),
        groups: Default::default(),
        rollout: Default::default(),
    }
}

/// The config file text for `found`: one `[[environment]]` each, a comment saying where they
/// came from. Vault paths follow the default template, so none is written out unless the
/// mount or prefix differ.
pub fn file_text(found: &[Found], mount: &str, prefix: &str, vault_addr: &str) -> String {
    let prefix = prefix.trim_matches('/');
    let mut text = format!(
        "# Written by `killswitch config init --from-vault` from {} at {}.\n\
         # Credentials stay in Vault; this file only names the environments.\n\n",
        location(mount, prefix),
        crate::provider::http::display_url(vault_addr),
    );
    let protected: Vec<String> = found
        .iter()
        .filter(|env| config::DEFAULT_PROTECTED.contains(&env.name.as_str()))
        .map(|env| format!("{:?}", env.name))
        .collect();
    text.push_str(&format!("protected = [{}]\n\n", protected.join(", ")));
    let default_template = mount == config::DEFAULT_VAULT_MOUNT && prefix == "feature-flags";
    if !default_template {
        text.push_str(&format!(
            "[vault]\nmount = {mount:?}\npath_template = {:?}\n\n",
            format!("{prefix}/{{provider}}/{{env}}")
        ));
    }
    for env in found {
        text.push_str(&format!(
            "[[environment]]\nname = {:?}\nprovider = {:?}\n\n",
            env.name,
            env.provider.name()
        ));
    }
    text
}

/// Writes `text` to `path`, refusing to replace an existing file unless `force`.
pub fn write_config(path: &Path, text: &str, force: bool) -> Result<(), String> {
    if path.exists() && !force {
        return Err(format!(
            "{} exists: not overwritten (add --force to replace it)",
            path.display()
        ));
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|err| format!("cannot create {}: {err}", dir.display()))?;
    }
    // The written file must parse: what init writes is what the next start reads.
    config::parse(text, path).map_err(|err| format!("the config to write is invalid: {err}"))?;
    crate::provider::flagd::write_atomically(path, text.as_bytes())
        .map_err(|err| format!("cannot write {}: {err}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_file_parses_back_to_the_found_environments() {
        let found = vec![
            Found {
                name: "staging".into(),
                provider: ProviderKind::Flagsmith,
                path: "feature-flags/flagsmith/staging".into(),
            },
            Found {
                name: "prod".into(),
                provider: ProviderKind::Unleash,
                path: "feature-flags/unleash/prod".into(),
            },
        ];
        let text = file_text(&found, "kv", "feature-flags", "http://127.0.0.1:8200");
        let parsed = config::parse(&text, Path::new("config.toml")).expect("parses");
        assert_eq!(parsed.environment_names(), vec!["staging", "prod"]);
        assert!(parsed.environments[1].protected);
        assert!(!parsed.environments[0].protected);
        assert_eq!(
            parsed.environments[1].vault_location(),
            "kv/feature-flags/unleash/prod"
        );
        let other = file_text(&found, "secret", "flags", "http://127.0.0.1:8200");
        let parsed = config::parse(&other, Path::new("config.toml")).expect("parses");
        assert_eq!(
            parsed.environments[0].vault_location(),
            "secret/flags/flagsmith/staging"
        );
        let from_vault = config(&found, "kv", "feature-flags");
        assert_eq!(
            from_vault.environments[1].vault_location(),
            "kv/feature-flags/unleash/prod"
        );
    }
}
