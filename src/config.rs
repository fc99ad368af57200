//! The config file: model, loading, and validation with `file:line` errors.
//!
//! With no config file killswitch runs on the embedded local workspace (see
//! [`crate::workspace`]), so the model here is also what that default builds in memory.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// `[[trigger]]` and `[serve]`: the tables `killswitch serve` reads.
pub mod serve;

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

impl NetworkConfig {
    /// The limit for an environment's first read in a process (every `status`, and the
    /// dashboard until the environment has loaded once): a cold self-hosted server (Flagsmith
    /// after idling) takes 5-10 s to answer its first request, over the 5 s that suits every
    /// later call. Three request timeouts (15 s by default); tuned with `request_timeout_ms`.
    pub fn first_read_timeout(&self) -> Duration {
        self.request_timeout.saturating_mul(FIRST_READ_FACTOR)
    }
}

/// How many request timeouts an environment's first read may take.
pub const FIRST_READ_FACTOR: u32 = 3;

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
    pub serve: serve::ServeConfig,
    /// `[[notify]]`: who is told of every outcome ([`crate::notify`]).
    pub notify: Vec<NotifyConfig>,
    /// Where the environments came from when it is worth a line on the status bar
    /// ("environments from Vault kv/feature-flags/").
    pub source_note: Option<String>,
    /// Dashboard column groups: environment name -> group (`group = "prod"`).
    pub groups: BTreeMap<String, String>,
    /// `[rollout]`: the percentages a rollout steps through.
    pub rollout: RolloutConfig,
}

/// `[rollout]`: how rollouts are stepped.
#[derive(Debug, Clone, PartialEq)]
pub struct RolloutConfig {
    /// `steps = [0, 10, 50, 100]`: the percentages one key away in the dashboard's rollout
    /// dialog (next / previous step), and the steps `runbook` names. Each 0..=100, sorted,
    /// unique, at most three decimals.
    pub steps: Vec<f64>,
}

impl Default for RolloutConfig {
    fn default() -> RolloutConfig {
        RolloutConfig {
            steps: crate::rollout::DEFAULT_STEPS.to_vec(),
        }
    }
}

impl RolloutConfig {
    /// The first step above `percent`, if any.
    pub fn next_step(&self, percent: f64) -> Option<f64> {
        crate::rollout::next_step(&self.steps, percent)
    }

    /// The last step below `percent`, if any.
    pub fn previous_step(&self, percent: f64) -> Option<f64> {
        crate::rollout::previous_step(&self.steps, percent)
    }
}

/// What a notification receiver takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NotifyKind {
    /// A Slack incoming webhook: `{"text": "…"}`, one line.
    Slack,
    /// Any HTTP endpoint: the audit record as JSON, optionally HMAC-signed.
    Webhook,
}

/// Where a receiver's URL comes from. Both are secrets (a Slack webhook URL is a credential).
#[derive(Debug, Clone, PartialEq)]
pub enum NotifyUrl {
    /// Written in the config file.
    Inline(crate::secret::Secret),
    /// The `url` field of a Vault KV v2 secret, read like the environments' credentials.
    Vault { mount: String, path: String },
}

/// One `[[notify]]` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct NotifyConfig {
    pub name: String,
    pub kind: NotifyKind,
    pub url: NotifyUrl,
    /// Only outcomes in these environments (None: every environment).
    pub envs: Option<Vec<String>>,
    /// Webhooks: the field of the Vault secret holding the HMAC-SHA256 key.
    pub hmac_secret_field: Option<String>,
    /// Bound on one delivery, both attempts together (default 2 s).
    pub timeout: Duration,
}

impl NotifyConfig {
    /// Whether an outcome in `env` goes to this receiver.
    pub fn wants(&self, env: &str) -> bool {
        self.envs
            .as_ref()
            .is_none_or(|envs| envs.iter().any(|wanted| wanted == env))
    }
}

pub const DEFAULT_NOTIFY_TIMEOUT: Duration = Duration::from_secs(2);

impl Config {
    pub fn environment(&self, name: &str) -> Option<&EnvironmentConfig> {
        self.environments.iter().find(|env| env.name == name)
    }

    /// "no environment `prdo` in config.toml (known: dev, staging, prod); did you mean `prod`?".
    pub fn unknown_environment(&self, env: &str) -> String {
        format!(
            "no environment `{}` in {} (known: {}){}",
            crate::text::line_max(env, 80),
            self.origin,
            self.environment_names().join(", "),
            crate::text::did_you_mean(env, self.environments.iter().map(|e| e.name.as_str()))
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

impl ConfigError {
    /// A number outside its documented range: the command exits 2 (usage), as for the same
    /// mistake on the command line.
    pub fn is_out_of_range(&self) -> bool {
        self.message.contains(OUT_OF_RANGE)
    }
}

// ---- the file format ------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    keymap: Option<String>,
    /// Dashboard column order: environment or group names; unlisted environments follow.
    columns: Option<toml::Spanned<Vec<String>>>,
    audit_log: Option<PathBuf>,
    /// Environments that need the typed confirmation unless they say otherwise.
    protected: Option<Vec<String>>,
    refresh_seconds: Option<toml::Spanned<u64>>,
    #[serde(default)]
    network: FileNetwork,
    #[serde(default)]
    vault: FileVault,
    #[serde(default, rename = "environment")]
    environments: Vec<toml::Spanned<FileEnvironment>>,
    #[serde(default, rename = "trigger")]
    triggers: Vec<toml::Spanned<serve::FileTrigger>>,
    serve: Option<toml::Spanned<serve::FileServe>>,
    #[serde(default)]
    notify: Vec<toml::Spanned<FileNotify>>,
    rollout: Option<FileRollout>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRollout {
    steps: Option<toml::Spanned<Vec<toml::Spanned<toml::Value>>>>,
}

// `Debug` by hand: an inline Slack webhook URL carries its token in the path.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileNotify {
    name: String,
    kind: NotifyKind,
    url: Option<String>,
    vault_path: Option<String>,
    envs: Option<Vec<String>>,
    hmac_secret_field: Option<String>,
    timeout_ms: Option<u64>,
}

impl std::fmt::Debug for FileNotify {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileNotify")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("url", &self.url.as_ref().map(|_| crate::secret::REDACTED))
            .field("vault_path", &self.vault_path)
            .field("envs", &self.envs)
            .field("hmac_secret_field", &self.hmac_secret_field)
            .field("timeout_ms", &self.timeout_ms)
            .finish()
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileNetwork {
    connect_timeout_ms: Option<toml::Spanned<u64>>,
    request_timeout_ms: Option<toml::Spanned<u64>>,
    verify_timeout_ms: Option<toml::Spanned<u64>>,
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
    /// The dashboard column group ("prod", "eu"): grouped columns sit together under a label.
    group: Option<String>,
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
/// `*_timeout_ms`: 1 ms to 10 minutes.
pub const TIMEOUT_MS_RANGE: std::ops::RangeInclusive<u64> = 1..=600_000;
/// `refresh_seconds`: 0 (never) to a day.
pub const REFRESH_SECONDS_RANGE: std::ops::RangeInclusive<u64> = 0..=86_400;
/// Marks a number outside its range: a usage error (exit 2), like a bad command-line value.
const OUT_OF_RANGE: &str = " is out of range";

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
    let mut groups = BTreeMap::new();
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
        if let Some(group) = &env.group {
            if group.trim().is_empty() || group.contains(char::is_whitespace) {
                return Err(error(format!(
                    "environment `{}`: group `{group}` must be one word",
                    env.name
                )));
            }
            groups.insert(env.name.clone(), group.clone());
        }
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
    let environments =
        column_order(environments, &groups, file.columns.as_ref()).map_err(|message| {
            ConfigError {
                location: location_of(
                    &shown,
                    text,
                    file.columns.as_ref().map(|columns| columns.span().start),
                ),
                message,
            }
        })?;
    let serve = serve::validate(
        &shown,
        text,
        &file.triggers,
        file.serve.as_ref(),
        &environments,
    )?;
    let notify = parse_notify(&file.notify, &shown, text, &mount, &environments)?;
    let rollout = parse_rollout(file.rollout.as_ref(), &shown, text)?;
    let defaults = NetworkConfig::default();
    // Every number is checked against a range that makes sense: a typo must not become a
    // timeout of 500 million years (or an overflow when two timeouts are added).
    let ranged = |value: &Option<toml::Spanned<u64>>,
                  name: &str,
                  range: std::ops::RangeInclusive<u64>,
                  unit: &str|
     -> Result<Option<u64>, ConfigError> {
        match value {
            None => Ok(None),
            Some(spanned) if range.contains(spanned.get_ref()) => Ok(Some(*spanned.get_ref())),
            Some(spanned) => Err(ConfigError {
                location: location_of(&shown, text, Some(spanned.span().start)),
                message: format!(
                    "`{name} = {}`{OUT_OF_RANGE}: use {} to {} {unit}",
                    spanned.get_ref(),
                    range.start(),
                    range.end()
                ),
            }),
        }
    };
    let timeout = |value: &Option<toml::Spanned<u64>>, name: &str, default: Duration| {
        ranged(value, name, TIMEOUT_MS_RANGE, "milliseconds")
            .map(|ms| ms.map(Duration::from_millis).unwrap_or(default))
    };
    let network = NetworkConfig {
        connect_timeout: timeout(
            &file.network.connect_timeout_ms,
            "connect_timeout_ms",
            defaults.connect_timeout,
        )?,
        request_timeout: timeout(
            &file.network.request_timeout_ms,
            "request_timeout_ms",
            defaults.request_timeout,
        )?,
        verify_timeout: timeout(
            &file.network.verify_timeout_ms,
            "verify_timeout_ms",
            defaults.verify_timeout,
        )?,
    };
    let refresh_interval = ranged(
        &file.refresh_seconds,
        "refresh_seconds",
        REFRESH_SECONDS_RANGE,
        "seconds (0: never)",
    )?
    .map(Duration::from_secs)
    .unwrap_or(DEFAULT_REFRESH);
    Ok(Config {
        origin: shown,
        environments,
        // A keymap path is relative to the config file, like every other path in it.
        keymap: file.keymap.map(|keymap| match keymap.as_str() {
            "default" | "vim" => keymap,
            path => resolve(&base_dir, Path::new(path)).display().to_string(),
        }),
        audit_log: file.audit_log.map(|log| resolve(&base_dir, &log)),
        refresh_interval,
        network,
        local_workspace: false,
        serve,
        notify,
        source_note: None,
        groups,
        rollout,
    })
}

/// `[rollout] steps`: each a percentage (0 to 100, at most three decimals), sorted ascending,
/// no step twice. Errors name the file, line, key and the value.
fn parse_rollout(
    file: Option<&FileRollout>,
    shown: &str,
    text: &str,
) -> Result<RolloutConfig, ConfigError> {
    let Some(steps) = file.and_then(|rollout| rollout.steps.as_ref()) else {
        return Ok(RolloutConfig::default());
    };
    let error = |at: usize, message: String| ConfigError {
        location: location_of(shown, text, Some(at)),
        message: format!("[rollout] steps: {message}"),
    };
    if steps.get_ref().is_empty() {
        return Err(error(
            steps.span().start,
            "no steps given: list percentages like [0, 10, 50, 100], or leave `steps` out for \
             that default"
                .to_string(),
        ));
    }
    let mut out: Vec<f64> = Vec::new();
    for step in steps.get_ref() {
        let at = step.span().start;
        let shown_value = crate::text::line_max(&step.get_ref().to_string(), 40);
        let number = match step.get_ref() {
            toml::Value::Integer(number) => *number as f64,
            toml::Value::Float(number) => *number,
            _ => {
                return Err(error(
                    at,
                    format!("`{shown_value}` is not a number: give percentages from 0 to 100"),
                ));
            }
        };
        if !number.is_finite() || !(0.0..=100.0).contains(&number) {
            return Err(error(
                at,
                format!("`{shown_value}`{OUT_OF_RANGE}: each step is a percentage from 0 to 100"),
            ));
        }
        let percent = crate::rollout::RolloutTarget::parse_percent(&number.to_string())
            .map_err(|problem| error(at, problem.to_string()))?;
        if let Some(last) = out.last() {
            if (percent - last).abs() < crate::rollout::PERCENT_RESOLUTION / 2.0 {
                return Err(error(
                    at,
                    format!("`{shown_value}` is listed twice: each step once"),
                ));
            }
            if percent < *last {
                return Err(error(
                    at,
                    format!(
                        "`{shown_value}` comes after `{last}`: list the steps from lowest to highest"
                    ),
                ));
            }
        }
        out.push(percent);
    }
    Ok(RolloutConfig { steps: out })
}

fn parse_notify(
    entries: &[toml::Spanned<FileNotify>],
    shown: &str,
    text: &str,
    mount: &str,
    environments: &[EnvironmentConfig],
) -> Result<Vec<NotifyConfig>, ConfigError> {
    let mut names = HashSet::new();
    let mut out = Vec::new();
    for spanned in entries {
        let at = location_of(shown, text, Some(spanned.span().start));
        let entry = spanned.get_ref();
        let error = |message: String| ConfigError {
            location: at.clone(),
            message: format!("[[notify]] `{}`: {message}", entry.name),
        };
        if entry.name.trim().is_empty() || !names.insert(entry.name.clone()) {
            return Err(error("needs a unique, non-empty `name`".into()));
        }
        let url = match (&entry.url, &entry.vault_path) {
            (Some(_), Some(_)) => {
                return Err(error("give `url` or `vault_path`, not both".into()));
            }
            (None, None) => {
                return Err(error(
                    "needs `vault_path` (a Vault secret with a `url` field) or `url`".into(),
                ));
            }
            (Some(url), None) => {
                let parsed = url::Url::parse(url)
                    .map_err(|_| error("`url` is not an http:// or https:// URL".into()))?;
                if !matches!(parsed.scheme(), "http" | "https") {
                    return Err(error("`url` is not an http:// or https:// URL".into()));
                }
                crate::redact::register(url);
                NotifyUrl::Inline(crate::secret::Secret::new(url.clone()))
            }
            (None, Some(path)) => NotifyUrl::Vault {
                mount: mount.to_string(),
                path: path.trim_matches('/').to_string(),
            },
        };
        if entry.hmac_secret_field.is_some() {
            if entry.kind != NotifyKind::Webhook {
                return Err(error(
                    "`hmac_secret_field` is for kind = \"webhook\"".into(),
                ));
            }
            if matches!(url, NotifyUrl::Inline(_)) {
                return Err(error(
                    "`hmac_secret_field` names a field of the Vault secret: set `vault_path`"
                        .into(),
                ));
            }
        }
        if let Some(envs) = &entry.envs {
            for env in envs {
                if !environments.iter().any(|known| &known.name == env) {
                    let known: Vec<&str> = environments.iter().map(|e| e.name.as_str()).collect();
                    return Err(error(format!(
                        "`envs` names `{env}`, which is not an environment (known: {})",
                        known.join(", ")
                    )));
                }
            }
        }
        out.push(NotifyConfig {
            name: entry.name.clone(),
            kind: entry.kind,
            url,
            envs: entry.envs.clone(),
            hmac_secret_field: entry.hmac_secret_field.clone(),
            timeout: entry
                .timeout_ms
                .map(Duration::from_millis)
                .unwrap_or(DEFAULT_NOTIFY_TIMEOUT),
        });
    }
    Ok(out)
}

/// The environments in dashboard column order. `columns` lists environment or group names
/// (a group stands for its environments in file order); environments it does not name follow
/// in file order. Without `columns`, each group's environments move up to where the group
/// first appears, so a group is one run of columns.
fn column_order(
    environments: Vec<EnvironmentConfig>,
    groups: &BTreeMap<String, String>,
    columns: Option<&toml::Spanned<Vec<String>>>,
) -> Result<Vec<EnvironmentConfig>, String> {
    let group_of = |env: &EnvironmentConfig| groups.get(&env.name).cloned();
    let mut order: Vec<String> = Vec::new();
    match columns {
        Some(columns) => {
            for name in columns.get_ref() {
                let is_env = environments.iter().any(|env| &env.name == name);
                let is_group = groups.values().any(|group| group == name);
                if !is_env && !is_group {
                    let known = environments
                        .iter()
                        .map(|env| env.name.as_str())
                        .chain(groups.values().map(String::as_str));
                    return Err(format!(
                        "columns: `{}` is neither an environment nor a group{}",
                        crate::text::line(name),
                        crate::text::did_you_mean(name, known)
                    ));
                }
                for env in &environments {
                    let named = &env.name == name || group_of(env).as_deref() == Some(name);
                    if named && !order.contains(&env.name) {
                        order.push(env.name.clone());
                    }
                }
            }
        }
        None => {
            for env in &environments {
                if order.contains(&env.name) {
                    continue;
                }
                match group_of(env) {
                    Some(group) => {
                        for member in &environments {
                            if group_of(member).as_deref() == Some(group.as_str()) {
                                order.push(member.name.clone());
                            }
                        }
                    }
                    None => order.push(env.name.clone()),
                }
            }
        }
    }
    for env in &environments {
        if !order.contains(&env.name) {
            order.push(env.name.clone());
        }
    }
    let mut environments = environments;
    environments.sort_by_key(|env| order.iter().position(|name| name == &env.name));
    Ok(environments)
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
    #[test]
    fn a_raw_notify_table_never_shows_its_url_in_debug() {
        let raw: super::FileNotify = toml::from_str(
            "name = \"chat\"\nkind = \"slack\"\nurl = \"https://hooks.slack.com/services/T0/B0/s3cretpath\"",
        )
        .expect("notify table");
        let shown = format!("{raw:?}");
        assert!(!shown.contains("s3cretpath"), "{shown}");
        assert!(shown.contains(crate::secret::REDACTED), "{shown}");
    }

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

    #[test]
    fn a_keymap_path_is_relative_to_the_config_file() {
        let env = "[[environment]]\nname = \"dev\"\nprovider = \"flagd\"\nfile = \"a\"\n";
        let at = |keymap: &str| {
            parse(
                &format!("keymap = \"{keymap}\"\n{env}"),
                Path::new("/etc/killswitch/config.toml"),
            )
            .map(|config| config.keymap)
            .unwrap_or_default()
        };
        assert_eq!(
            at("keys/oncall.toml").as_deref(),
            Some("/etc/killswitch/keys/oncall.toml")
        );
        assert_eq!(at("/abs/keys.toml").as_deref(), Some("/abs/keys.toml"));
        assert_eq!(
            at("vim").as_deref(),
            Some("vim"),
            "a built-in name stays a name"
        );
    }

    #[test]
    fn numbers_out_of_range_name_the_key_and_line() {
        let env = "[[environment]]\nname = \"dev\"\nprovider = \"flagd\"\nfile = \"a\"\n";
        for (line, key) in [
            ("refresh_seconds = 86401", "refresh_seconds"),
            (
                "[network]\nrequest_timeout_ms = 18446744073709551615",
                "request_timeout_ms",
            ),
            ("[network]\nconnect_timeout_ms = 0", "connect_timeout_ms"),
        ] {
            let err = parse(&format!("{line}\n{env}"), Path::new("ks.toml")).expect_err("refused");
            assert!(err.is_out_of_range(), "{err}");
            let text = err.to_string();
            assert!(text.contains(key) && text.starts_with("ks.toml:"), "{text}");
        }
        let fine = parse(
            &format!("refresh_seconds = 0\n[network]\nverify_timeout_ms = 600000\n{env}"),
            Path::new("ks.toml"),
        )
        .expect("in range");
        assert!(fine.refresh_interval.is_zero());
        assert!(
            !parse("keymapp = 1\n", Path::new("ks.toml"))
                .expect_err("typo")
                .is_out_of_range()
        );
    }

    fn envs(extra: &str, list: &[(&str, Option<&str>)]) -> String {
        let mut text = extra.to_string();
        for (name, group) in list {
            text.push_str(&format!(
                "\n[[environment]]\nname = \"{name}\"\nprovider = \"flagd\"\nfile = \"{name}.json\"\n"
            ));
            if let Some(group) = group {
                text.push_str(&format!("group = \"{group}\"\n"));
            }
        }
        text
    }

    fn names(text: &str) -> Result<Vec<String>, String> {
        parse(text, Path::new("ks.toml"))
            .map(|config| config.environment_names())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn groups_gather_their_columns_and_columns_orders_them() {
        let list = [
            ("dev-eu", Some("eu")),
            ("dev-us", Some("us")),
            ("prod-eu", Some("eu")),
            ("sandbox", None),
            ("prod-us", Some("us")),
        ];
        assert_eq!(
            names(&envs("", &list)),
            Ok(vec!["dev-eu", "prod-eu", "dev-us", "prod-us", "sandbox"]
                .into_iter()
                .map(String::from)
                .collect())
        );
        let config = parse(&envs("", &list), Path::new("ks.toml")).map_err(|e| e.to_string());
        assert_eq!(
            config.map(|c| c.groups.get("prod-us").cloned()),
            Ok(Some("us".to_string()))
        );
        // An explicit order: names and groups; the rest follow in file order.
        assert_eq!(
            names(&envs("columns = [\"sandbox\", \"us\"]\n", &list)),
            Ok(vec!["sandbox", "dev-us", "prod-us", "dev-eu", "prod-eu"]
                .into_iter()
                .map(String::from)
                .collect())
        );
        let err = names(&envs("columns = [\"sandbx\"]\n", &list))
            .err()
            .unwrap_or_default();
        assert!(err.starts_with("ks.toml:1:"), "{err}");
        assert!(
            err.contains("`sandbx` is neither an environment nor a group"),
            "{err}"
        );
        assert!(err.contains("did you mean `sandbox`"), "{err}");
        let err = names(&envs("", &[("dev", Some("two words"))]))
            .err()
            .unwrap_or_default();
        assert!(err.contains("group `two words` must be one word"), "{err}");
    }
    #[test]
    fn rollout_steps_default_parse_and_bad_values_name_file_line_key_and_value() {
        let base = "[[environment]]\nname = \"dev\"\nprovider = \"flagd\"\nfile = \"dev.json\"\n";
        let parsed = |rollout: &str| {
            parse(&format!("{base}{rollout}"), Path::new("ks.toml"))
                .map(|c| c.rollout.steps)
                .map_err(|e| e.to_string())
        };
        assert_eq!(parsed(""), Ok(vec![0.0, 10.0, 50.0, 100.0]));
        assert_eq!(
            parsed("[rollout]\nsteps = [0, 1, 12.5, 25, 100]\n"),
            Ok(vec![0.0, 1.0, 12.5, 25.0, 100.0])
        );
        for (bad, want) in [
            ("[150]", "`150` is out of range"),
            ("[-1, 10]", "`-1` is out of range"),
            ("[0, 50, 10]", "`10` comes after `50`"),
            ("[0, 10, 10]", "`10` is listed twice"),
            ("[\"ten\"]", "is not a number"),
            ("[0.0001]", "at most three decimals"),
            ("[]", "no steps given"),
        ] {
            let err = parsed(&format!("[rollout]\nsteps = {bad}\n"))
                .err()
                .unwrap_or_default();
            assert!(err.starts_with("ks.toml:6:"), "{bad}: {err}");
            assert!(err.contains("[rollout] steps: "), "{bad}: {err}");
            assert!(err.contains(want), "{bad}: {err}");
        }
        let err = parsed("[rollout]\nstep = [0]\n").err().unwrap_or_default();
        assert!(err.contains("unknown field `step`"), "{err}");
        let steps = RolloutConfig::default();
        assert_eq!(steps.next_step(10.0), Some(50.0));
        assert_eq!(steps.next_step(12.5), Some(50.0));
        assert_eq!(steps.next_step(100.0), None);
        assert_eq!(steps.previous_step(10.0), Some(0.0));
        assert_eq!(steps.previous_step(0.0), None);
        assert_eq!(steps.previous_step(60.0), Some(50.0));
    }
}
