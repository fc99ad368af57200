//! Where killswitch keeps things (XDG directories), and the embedded local workspace it runs on
//! when there is no config file: three flagd files seeded with the platform's sample flags.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::config::{self, Config, EnvironmentConfig, NetworkConfig, ProviderKind};

const SEED: &[(&str, &str)] = &[
    ("dev", include_str!("../assets/seed/dev.flagd.json")),
    ("staging", include_str!("../assets/seed/staging.flagd.json")),
    ("prod", include_str!("../assets/seed/prod.flagd.json")),
];

/// The XDG directories killswitch uses.
#[derive(Debug, Clone, PartialEq)]
pub struct Dirs {
    /// `$XDG_CONFIG_HOME/killswitch`: config.toml, keymap.toml.
    pub config: PathBuf,
    /// `$XDG_DATA_HOME/killswitch`: the local workspace.
    pub data: PathBuf,
    /// `$XDG_STATE_HOME/killswitch`: audit.jsonl, killswitch.log.
    pub state: PathBuf,
}

impl Dirs {
    pub fn discover() -> Result<Dirs> {
        let project = directories::ProjectDirs::from("", "", "killswitch")
            .context("cannot find a home directory for killswitch's files (is $HOME set?)")?;
        let state = project
            .state_dir()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| project.data_local_dir().join("state"));
        Ok(Dirs {
            config: project.config_dir().to_path_buf(),
            data: project.data_dir().to_path_buf(),
            state,
        })
    }

    pub fn config_file(&self) -> PathBuf {
        self.config.join("config.toml")
    }

    pub fn user_keymap(&self) -> PathBuf {
        self.config.join("keymap.toml")
    }

    pub fn audit_log(&self) -> PathBuf {
        self.state.join("audit.jsonl")
    }

    pub fn log_file(&self) -> PathBuf {
        self.state.join("killswitch.log")
    }

    pub fn local_workspace(&self) -> PathBuf {
        self.data.join("local")
    }
}

/// The config to run with: `--config PATH`, else `$XDG_CONFIG_HOME/killswitch/config.toml`,
/// else the local workspace.
pub fn resolve_config(explicit: Option<&Path>, dirs: &Dirs) -> Result<Config> {
    match config_file(explicit, dirs) {
        Some(path) => Ok(config::load(&path)?),
        None => local_config(&dirs.local_workspace()),
    }
}

/// The config file to read, when there is one: `--config PATH`, else the user's.
pub fn config_file(explicit: Option<&Path>, dirs: &Dirs) -> Option<PathBuf> {
    if let Some(path) = explicit {
        return Some(path.to_path_buf());
    }
    let user = dirs.config_file();
    user.exists().then_some(user)
}

/// Seeds `dir` with the sample flag files (never overwriting one that exists) and returns the
/// config that runs on them: dev, staging, prod, prod protected.
pub fn local_config(dir: &Path) -> Result<Config> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the local workspace {}", dir.display()))?;
    let mut environments = Vec::new();
    for (env, seed) in SEED {
        let file = dir.join(format!("{env}.flagd.json"));
        if !file.exists() {
            crate::provider::flagd::write_atomically(&file, seed.as_bytes())
                .with_context(|| format!("cannot seed {}", file.display()))?;
        }
        environments.push(EnvironmentConfig {
            name: env.to_string(),
            provider: ProviderKind::Flagd,
            protected: config::DEFAULT_PROTECTED.contains(env),
            file: Some(file),
            vault_mount: config::DEFAULT_VAULT_MOUNT.to_string(),
            vault_path: String::new(),
            options: Default::default(),
        });
    }
    Ok(Config {
        origin: format!("local workspace {}", dir.display()),
        environments,
        keymap: None,
        audit_log: None,
        refresh_interval: config::DEFAULT_REFRESH,
        network: NetworkConfig::default(),
        local_workspace: true,
        serve: Default::default(),
        notify: Vec::new(),
        source_note: None,
        groups: Default::default(),
        rollout: Default::default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_once_and_keeps_local_edits() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = local_config(dir.path()).expect("seed");
        assert!(config.local_workspace);
        assert_eq!(config.environment_names(), vec!["dev", "staging", "prod"]);
        assert!(
            config
                .environment("prod")
                .map(|e| e.protected)
                .unwrap_or(false)
        );
        let prod = dir.path().join("prod.flagd.json");
        std::fs::write(&prod, "{\"flags\":{}}").expect("edit");
        local_config(dir.path()).expect("again");
        assert_eq!(
            std::fs::read_to_string(&prod).expect("read"),
            "{\"flags\":{}}"
        );
    }
}
