//! The config file: model, loading, and validation with `file:line` errors.
//!
//! With no config file killswitch runs on the embedded local workspace (see
//! [`crate::workspace`]), so the model here is also what that default builds in memory.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// The vendors killswitch can talk to. Adding one: a variant here, a module under `provider/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// Local flagd JSON files (the embedded default).
    Flagd,
    /// Self-hosted Flagsmith (the platform's default flag service).
    Flagsmith,
    /// LaunchDarkly (SaaS) through its REST API v2.
    LaunchDarkly,
    /// Unleash (open-source server 8.x) over its Admin API.
    Unleash,
}

impl ProviderKind {
    pub fn name(self) -> &'static str {
        match self {
            ProviderKind::Flagd => "flagd",
            ProviderKind::Flagsmith => "flagsmith",
            ProviderKind::LaunchDarkly => "launchdarkly",
            ProviderKind::Unleash => "unleash",
        }
    }

    /// Whether the provider's credentials come from Vault.
    pub fn uses_vault(self) -> bool {
        !matches!(self, ProviderKind::Flagd)
    }
}

/// One environment column of the dashboard.
#[derive(Debug, Clone, PartialEq)]
pub struct EnvironmentConfig {
    pub name: String,
    pub provider: ProviderKind,
    /// Flips here need the environment name typed to confirm.
    pub protected: bool,
    /// flagd: the flag-definition file.
    pub file: Option<PathBuf>,
    /// Vault KV v2 mount for this environment's credentials.
    pub vault_mount: String,
    /// Vault path inside the mount, after `{provider}` / `{env}` substitution.
    pub vault_path: String,
    /// Provider-specific settings (project, vendor environment name, base URL...).
    pub options: BTreeMap<String, String>,
}

impl EnvironmentConfig {
    pub fn option(&self, key: &str) -> Option<&str> {
        self.options.get(key).map(String::as_str)
    }

    /// "kv/feature-flags/flagsmith/prod", as the operator would type it for `vault kv get`.
    pub fn vault_location(&self) -> String {
        format!("{}/{}", self.vault_mount, self.vault_path)
    }
}

/// Timeouts for every network call. Defaults fit an incident: a few seconds, not minutes.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkConfig {
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    /// How long to poll what services see after a flip before saying "not confirmed".
    pub verify_timeout: Duration,
}

impl Default for NetworkConfig {
    fn default() -> NetworkConfig {
        NetworkConfig {
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(5),
            verify_timeout: Duration::from_secs(10),
        }
    }
}

/// The whole configuration, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Where it came from: a file path, or "built-in local workspace".
    pub origin: String,
    pub environments: Vec<EnvironmentConfig>,
    /// "default", "vim" or a path.
    pub keymap: Option<String>,
    pub audit_log: Option<PathBuf>,
    pub refresh_interval: Duration,
    pub network: NetworkConfig,
    /// True when running on the embedded local flag files (the status bar says so).
    pub local_workspace: bool,
    /// `killswitch serve`: the alert triggers (`[[trigger]]`) and the status page's auth.
    pub serve: crate::serve::config::ServeConfig,
}

impl Config {
    pub fn environment(&self, name: &str) -> Option<&EnvironmentConfig> {
        self.environments.iter().find(|env| env.name == name)
    }

    /// "no environment `qa` in config.toml (known: dev, staging, prod)".
    pub fn unknown_environment(&self, env: &str) -> String {
        format!(
            "no environment `{env}` in {} (known: {})",
            self.origin,
            self.environment_names().join(", ")
        )
    }

    pub fn environment_names(&self) -> Vec<String> {
        self.environments
            .iter()
            .map(|env| env.name.clone())
            .collect()
    }
}

/// A config problem, with the file and line when there is one.
#[derive(Debug, thiserror::Error)]
#[error("{location}: {message}")]
pub struct ConfigError {
    pub location: String,
    pub message: String,
}

// ---- the file format ------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    keymap: Option<String>,
    audit_log: Option<PathBuf>,
    /// Environments that need the typed confirmation unless they say otherwise.
    protected: Option<Vec<String>>,
    refresh_seconds: Option<u64>,
    #[serde(default)]
    network: FileNetwork,
    #[serde(default)]
    vault: FileVault,
    #[serde(default, rename = "environment")]
    environments: Vec<toml::Spanned<FileEnvironment>>,
    #[serde(default, rename = "trigger")]
    triggers: Vec<toml::Spanned<crate::serve::config::FileTrigger>>,
    serve: Option<toml::Spanned<crate::serve::config::FileServe>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileNetwork {
    connect_timeout_ms: Option<u64>,
    request_timeout_ms: Option<u64>,
    verify_timeout_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileVault {
    mount: Option<String>,
    path_template: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileEnvironment {
    name: String,
    provider: ProviderKind,
    protected: Option<bool>,
    file: Option<PathBuf>,
    vault_mount: Option<String>,
    vault_path: Option<String>,
    #[serde(default)]
    options: BTreeMap<String, String>,
}

pub const DEFAULT_VAULT_MOUNT: &str = "kv";
pub const DEFAULT_VAULT_TEMPLATE: &str = "feature-flags/{provider}/{env}";
pub const DEFAULT_PROTECTED: &[&str] = &["prod", "production"];
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(30);

/// Parses and validates a config file's text. `path` is only used in messages and to resolve
/// relative flagd file paths.
pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
    let shown = path.display().to_string();
    let file: FileConfig = toml::from_str(text).map_err(|err| ConfigError {
        location: location_of(&shown, text, err.span().map(|span| span.start)),
        message: err.message().to_string(),
    })?;
    let base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let protected_names: Vec<String> = file.protected.clone().unwrap_or_else(|| {
        DEFAULT_PROTECTED
            .iter()
            .map(|name| name.to_string())
            .collect()
    });
    let mount = file
        .vault
        .mount
        .clone()
        .unwrap_or_else(|| DEFAULT_VAULT_MOUNT.to_string());
    let template = file
        .vault
        .path_template
        .clone()
        .unwrap_or_else(|| DEFAULT_VAULT_TEMPLATE.to_string());

    let mut seen = HashSet::new();
    let mut environments = Vec::new();
    for spanned in &file.environments {
        let at = location_of(&shown, text, Some(spanned.span().start));
        let env = spanned.get_ref();
        let error = |message: String| ConfigError {
            location: at.clone(),
            message,
        };
        if env.name.trim().is_empty() || env.name.contains(char::is_whitespace) {
            return Err(error(format!(
                "environment name `{}` must be one word",
                env.name
            )));
        }
        if !seen.insert(env.name.clone()) {
            return Err(error(format!(
                "environment `{}` is defined twice",
                env.name
            )));
        }
        let file_path = match (env.provider, &env.file) {
            (ProviderKind::Flagd, None) => {
                return Err(error(format!(
                    "environment `{}` uses provider flagd and needs `file = \"path/to/{}.flagd.json\"`",
                    env.name, env.name
                )));
            }
            (ProviderKind::Flagd, Some(file)) => Some(resolve(&base_dir, file)),
            (_, other) => other.clone(),
        };
        environments.push(EnvironmentConfig {
            name: env.name.clone(),
            provider: env.provider,
            protected: env
                .protected
                .unwrap_or_else(|| protected_names.contains(&env.name)),
            file: file_path,
            vault_mount: env.vault_mount.clone().unwrap_or_else(|| mount.clone()),
            vault_path: env.vault_path.clone().unwrap_or_else(|| {
                template
                    .replace("{provider}", env.provider.name())
                    .replace("{env}", &env.name)
            }),
            options: env.options.clone(),
        });
    }
    if environments.is_empty() {
        return Err(ConfigError {
            location: shown,
            message: "no environments: add at least one [[environment]] table".to_string(),
        });
    }
    let serve = crate::serve::config::validate(
        &shown,
        text,
        &file.triggers,
        file.serve.as_ref(),
        &environments,
    )?;
    let defaults = NetworkConfig::default();
    let millis =
        |value: Option<u64>, default: Duration| value.map(Duration::from_millis).unwrap_or(default);
    Ok(Config {
        origin: shown,
        environments,
        keymap: file.keymap,
        audit_log: file.audit_log.map(|log| resolve(&base_dir, &log)),
        refresh_interval: file
            .refresh_seconds
            .map(Duration::from_secs)
            .unwrap_or(DEFAULT_REFRESH),
        network: NetworkConfig {
            connect_timeout: millis(file.network.connect_timeout_ms, defaults.connect_timeout),
            request_timeout: millis(file.network.request_timeout_ms, defaults.request_timeout),
            verify_timeout: millis(file.network.verify_timeout_ms, defaults.verify_timeout),
        },
        local_workspace: false,
        serve,
    })
}

/// Reads and parses a config file.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|err| ConfigError {
        location: path.display().to_string(),
        message: format!("cannot read the config file: {err}"),
    })?;
    parse(&text, path)
}

fn resolve(base: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    }
}

/// "file:line:column" for a byte offset into `text`.
pub fn location_of(file: &str, text: &str, offset: Option<usize>) -> String {
    match offset {
        Some(offset) => {
            let before = &text[..offset.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before
                .rsplit('\n')
                .next()
                .map(|l| l.chars().count())
                .unwrap_or(0)
                + 1;
            format!("{file}:{line}:{column}")
        }
        None => file.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
keymap = "vim"
protected = ["prod"]

[network]
request_timeout_ms = 3000

[[environment]]
name = "dev"
provider = "flagd"
file = "flags/dev.flagd.json"

[[environment]]
name = "prod"
provider = "flagd"
file = "/abs/prod.flagd.json"
"#;

    #[test]
    fn parses_environments_and_defaults() {
        let config =
            parse(GOOD, Path::new("/etc/killswitch/config.toml")).map_err(|e| e.to_string());
        let config = match config {
            Ok(config) => config,
            Err(err) => panic!("{err}"),
        };
        assert_eq!(config.environment_names(), vec!["dev", "prod"]);
        let dev = &config.environments[0];
        assert_eq!(
            dev.file.as_deref(),
            Some(Path::new("/etc/killswitch/flags/dev.flagd.json"))
        );
        assert!(!dev.protected);
        assert!(config.environments[1].protected);
        assert_eq!(
            config.environments[1].vault_location(),
            "kv/feature-flags/flagd/prod"
        );
        assert_eq!(config.network.request_timeout, Duration::from_millis(3000));
        assert_eq!(config.network.connect_timeout, Duration::from_secs(2));
    }

    #[test]
    fn unknown_provider_names_file_and_line() {
        let text = "[[environment]]\nname = \"dev\"\nprovider = \"consul\"\n";
        let err = parse(text, Path::new("ks.toml"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.starts_with("ks.toml:3:"), "{err}");
        assert!(err.contains("consul"), "{err}");
    }

    #[test]
    fn duplicate_and_incomplete_environments_are_refused() {
        let dup = "[[environment]]\nname = \"dev\"\nprovider = \"flagd\"\nfile = \"a\"\n\n[[environment]]\nname = \"dev\"\nprovider = \"flagd\"\nfile = \"b\"\n";
        let err = parse(dup, Path::new("ks.toml"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.starts_with("ks.toml:6:"), "{err}");
        assert!(err.contains("defined twice"), "{err}");
        let no_file = "[[environment]]\nname = \"dev\"\nprovider = \"flagd\"\n";
        let err = parse(no_file, Path::new("ks.toml"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("needs `file"), "{err}");
        let typo = "keymapp = \"vim\"\n";
        let err = parse(typo, Path::new("ks.toml"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.starts_with("ks.toml:1:"), "{err}");
    }
}
