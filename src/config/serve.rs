//! `[[trigger]]` and `[serve]` in the config file: the alert triggers `killswitch serve` acts on
//! and the optional auth of its status page. Validated with the rest of the config (file:line
//! errors); every token is a [`Secret`] and is registered with the redactor as soon as it is read.
//! Part of the config file's model (a child of [`crate::config`]), so the config does not depend
//! on the server; `crate::serve::config` names the same module for the server's code.

use serde::Deserialize;

use super::{ConfigError, EnvironmentConfig, location_of};
use crate::secret::Secret;

/// Shorter tokens are refused: a trigger URL must not be guessable.
pub const MIN_TOKEN_CHARS: usize = 16;
/// Calls per minute a trigger accepts unless it says otherwise.
pub const DEFAULT_RATE_PER_MINUTE: u32 = 12;

/// What `killswitch serve` reads from the config.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ServeConfig {
    pub triggers: Vec<TriggerConfig>,
    /// When set, `GET /` and `GET /api/status` need `Authorization: Bearer <token>` or basic
    /// auth with this token as the password.
    pub page_token: Option<TokenSource>,
}

impl ServeConfig {
    pub fn trigger(&self, name: &str) -> Option<&TriggerConfig> {
        self.triggers.iter().find(|trigger| trigger.name == name)
    }
}

/// Where a token comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum TokenSource {
    /// `token = "…"` in the config file.
    Inline(Secret),
    /// `token_vault_path = "kv/killswitch/triggers/checkout"` (field `token`), or
    /// `"kv/path#field"`: read from Vault KV v2 when the server starts.
    Vault {
        mount: String,
        path: String,
        field: String,
    },
}

impl TokenSource {
    /// Where the token is, for messages (never the token).
    pub fn describe(&self) -> String {
        match self {
            TokenSource::Inline(_) => "token in the config file".to_string(),
            TokenSource::Vault { mount, path, field } => {
                format!("Vault {mount}/{path} field `{field}`")
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TriggerAction {
    Kill,
    Restore,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnResolved {
    /// The resolved alert is logged; nothing changes (the default).
    Record,
    /// A kill trigger restores the flag when its alert resolves.
    Restore,
}

/// One `[[trigger]]`, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct TriggerConfig {
    pub name: String,
    pub env: String,
    pub flag: String,
    pub action: TriggerAction,
    pub token: TokenSource,
    /// The deliberate opt-in that replaces the typed confirmation in a protected environment.
    pub allow_protected: bool,
    pub on_resolved: OnResolved,
    pub rate_per_minute: u32,
    /// "ks.toml:12:1", for messages.
    pub location: String,
}

// `Debug` by hand (below): the raw table holds the inline token as plain text until it is a `Secret`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileTrigger {
    name: String,
    env: String,
    flag: String,
    action: Option<TriggerAction>,
    token: Option<String>,
    token_vault_path: Option<String>,
    #[serde(default)]
    allow_protected: bool,
    on_resolved: Option<OnResolved>,
    rate_limit_per_minute: Option<u32>,
}

// `Debug` by hand (below): the raw table holds the inline page token as plain text.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileServe {
    page_token: Option<String>,
    page_token_vault_path: Option<String>,
}

/// The raw tables' `Debug` never shows an inline token (the config file struct that holds them
/// derives `Debug`).
impl std::fmt::Debug for FileTrigger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileTrigger")
            .field("name", &self.name)
            .field("env", &self.env)
            .field("flag", &self.flag)
            .field(
                "token",
                &self.token.as_ref().map(|_| crate::secret::REDACTED),
            )
            .field("token_vault_path", &self.token_vault_path)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for FileServe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileServe")
            .field(
                "page_token",
                &self.page_token.as_ref().map(|_| crate::secret::REDACTED),
            )
            .field("page_token_vault_path", &self.page_token_vault_path)
            .finish()
    }
}

#[cfg(test)]
mod debug_tests {
    use super::*;

    #[test]
    fn raw_tables_never_show_an_inline_token_in_debug() {
        let trigger: FileTrigger = toml::from_str(
            "name = \"t\"\nenv = \"prod\"\nflag = \"kill_switch_x\"\ntoken = \"s3cret-trigger-token-value\"",
        )
        .expect("trigger table");
        let serve: FileServe =
            toml::from_str("page_token = \"s3cret-page-token-value\"").expect("serve table");
        let shown = format!("{trigger:?} {serve:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains(crate::secret::REDACTED), "{shown}");
    }
}

/// Checks the `[[trigger]]` tables and `[serve]` against the environments.
pub(crate) fn validate(
    shown: &str,
    text: &str,
    triggers: &[toml::Spanned<FileTrigger>],
    serve: Option<&toml::Spanned<FileServe>>,
    environments: &[EnvironmentConfig],
) -> Result<ServeConfig, ConfigError> {
    let mut out = ServeConfig::default();
    for spanned in triggers {
        let location = location_of(shown, text, Some(spanned.span().start));
        let trigger = spanned.get_ref();
        let error = |message: String| ConfigError {
            location: location.clone(),
            message,
        };
        let name_ok = !trigger.name.is_empty()
            && trigger
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !name_ok {
            return Err(error(format!(
                "trigger name `{}` must be letters, digits, `-`, `_` or `.` (it is part of the URL /hooks/<name>)",
                crate::text::line(&trigger.name)
            )));
        }
        if out.trigger(&trigger.name).is_some() {
            return Err(error(format!(
                "trigger `{}` is defined twice",
                trigger.name
            )));
        }
        if !environments.iter().any(|env| env.name == trigger.env) {
            let names: Vec<&str> = environments.iter().map(|env| env.name.as_str()).collect();
            return Err(error(format!(
                "trigger `{}`: no environment `{}`{}",
                trigger.name,
                crate::text::line(&trigger.env),
                crate::text::did_you_mean(&trigger.env, names.iter().copied())
            )));
        }
        if trigger.flag.trim().is_empty() {
            return Err(error(format!(
                "trigger `{}`: `flag` is empty",
                trigger.name
            )));
        }
        let what = format!("trigger `{}`", trigger.name);
        let token = token_source(
            &what,
            "token",
            trigger.token.as_deref(),
            trigger.token_vault_path.as_deref(),
        )
        .map_err(&error)?
        .ok_or_else(|| {
            error(format!(
                "{what} needs `token = \"…\"` or `token_vault_path = \"mount/path\"` (at least {MIN_TOKEN_CHARS} characters, unguessable)"
            ))
        })?;
        let action = trigger.action.unwrap_or(TriggerAction::Kill);
        let on_resolved = trigger.on_resolved.unwrap_or(OnResolved::Record);
        if on_resolved == OnResolved::Restore && action == TriggerAction::Restore {
            return Err(error(format!(
                "{what}: `on_resolved = \"restore\"` only fits `action = \"kill\"`"
            )));
        }
        let rate = trigger
            .rate_limit_per_minute
            .unwrap_or(DEFAULT_RATE_PER_MINUTE);
        if rate == 0 {
            return Err(error(format!(
                "{what}: `rate_limit_per_minute` must be at least 1"
            )));
        }
        out.triggers.push(TriggerConfig {
            name: trigger.name.clone(),
            env: trigger.env.clone(),
            flag: trigger.flag.clone(),
            action,
            token,
            allow_protected: trigger.allow_protected,
            on_resolved,
            rate_per_minute: rate,
            location: location.clone(),
        });
    }
    if let Some(spanned) = serve {
        let location = location_of(shown, text, Some(spanned.span().start));
        let serve = spanned.get_ref();
        out.page_token = token_source(
            "[serve]",
            "page_token",
            serve.page_token.as_deref(),
            serve.page_token_vault_path.as_deref(),
        )
        .map_err(|message| ConfigError { location, message })?;
    }
    Ok(out)
}

/// `token` or `token_vault_path` (not both); an inline token is registered with the redactor.
fn token_source(
    what: &str,
    field: &str,
    inline: Option<&str>,
    vault: Option<&str>,
) -> Result<Option<TokenSource>, String> {
    match (inline, vault) {
        (Some(_), Some(_)) => Err(format!(
            "{what}: give `{field}` or `{field}_vault_path`, not both"
        )),
        (Some(token), None) => {
            // Registered before any check can put it in a message.
            crate::redact::register(token);
            if token.trim().chars().count() < MIN_TOKEN_CHARS {
                return Err(format!(
                    "{what}: `{field}` is shorter than {MIN_TOKEN_CHARS} characters: use a long random value (e.g. `openssl rand -hex 24`)"
                ));
            }
            Ok(Some(TokenSource::Inline(Secret::new(token.trim()))))
        }
        (None, Some(path)) => {
            let (location, field_name) = match path.split_once('#') {
                Some((location, field_name)) => (location, field_name),
                None => (path, "token"),
            };
            let location = location.trim_matches('/');
            match location.split_once('/') {
                Some((mount, path)) if !mount.is_empty() && !path.is_empty() => {
                    Ok(Some(TokenSource::Vault {
                        mount: mount.to_string(),
                        path: path.to_string(),
                        field: field_name.to_string(),
                    }))
                }
                _ => Err(format!(
                    "{what}: `{field}_vault_path = \"{}\"` must be `mount/path` (optionally `#field`, default `token`)",
                    crate::text::line(path)
                )),
            }
        }
        (None, None) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    const ENVS: &str =
        "[[environment]]\nname = \"prod\"\nprovider = \"flagd\"\nfile = \"p.json\"\n";

    fn parse(extra: &str) -> Result<super::super::Config, String> {
        super::super::parse(&format!("{ENVS}{extra}"), Path::new("ks.toml"))
            .map_err(|err| err.to_string())
    }

    #[test]
    fn triggers_parse_with_safe_defaults() {
        let config = parse(
            "[[trigger]]\nname = \"checkout-latency\"\nenv = \"prod\"\nflag = \"kill_switch_checkout\"\ntoken = \"trigger-unit-token-0123456789\"\n",
        );
        let config = config.unwrap_or_else(|err| panic!("{err}"));
        let trigger = &config.serve.triggers[0];
        assert_eq!(trigger.action, TriggerAction::Kill);
        assert_eq!(trigger.on_resolved, OnResolved::Record);
        assert!(!trigger.allow_protected);
        assert_eq!(trigger.rate_per_minute, DEFAULT_RATE_PER_MINUTE);
        assert_eq!(trigger.location, "ks.toml:5:1");
        // The token never prints.
        let debug = format!("{config:?}");
        assert!(!debug.contains("trigger-unit-token"), "{debug}");
        let vault = parse(
            "[[trigger]]\nname = \"t\"\nenv = \"prod\"\nflag = \"f\"\ntoken_vault_path = \"kv/killswitch/triggers/t#secret\"\n",
        )
        .unwrap_or_else(|err| panic!("{err}"));
        assert_eq!(
            vault.serve.triggers[0].token,
            TokenSource::Vault {
                mount: "kv".into(),
                path: "killswitch/triggers/t".into(),
                field: "secret".into()
            }
        );
    }

    #[test]
    fn bad_triggers_name_file_line_and_never_the_token() {
        let cases = [
            (
                "name = \"a b\"\nenv = \"prod\"\nflag = \"f\"\ntoken = \"0123456789abcdef0\"\n",
                "must be letters",
            ),
            (
                "name = \"t\"\nenv = \"prd\"\nflag = \"f\"\ntoken = \"0123456789abcdef0\"\n",
                "did you mean `prod`",
            ),
            (
                "name = \"t\"\nenv = \"prod\"\nflag = \"f\"\n",
                "needs `token",
            ),
            (
                "name = \"t\"\nenv = \"prod\"\nflag = \"f\"\ntoken = \"short-tok\"\n",
                "shorter than 16",
            ),
            (
                "name = \"t\"\nenv = \"prod\"\nflag = \"f\"\ntoken = \"0123456789abcdef0\"\ntoken_vault_path = \"kv/x\"\n",
                "not both",
            ),
            (
                "name = \"t\"\nenv = \"prod\"\nflag = \"f\"\ntoken_vault_path = \"kv\"\n",
                "must be `mount/path`",
            ),
            (
                "name = \"t\"\nenv = \"prod\"\nflag = \"f\"\naction = \"restore\"\non_resolved = \"restore\"\ntoken = \"0123456789abcdef0\"\n",
                "only fits",
            ),
            (
                "name = \"t\"\nenv = \"prod\"\nflag = \"f\"\naction = \"toggle\"\ntoken = \"0123456789abcdef0\"\n",
                "toggle",
            ),
        ];
        for (body, expected) in cases {
            let err = parse(&format!("[[trigger]]\n{body}"))
                .err()
                .unwrap_or_default();
            assert!(err.starts_with("ks.toml:"), "{err}");
            assert!(err.contains(expected), "{expected}: {err}");
            assert!(!err.contains("short-tok"), "{err}");
        }
        let twice = "[[trigger]]\nname = \"t\"\nenv = \"prod\"\nflag = \"f\"\ntoken = \"0123456789abcdef0\"\n";
        let err = parse(&format!("{twice}{twice}")).err().unwrap_or_default();
        assert!(err.starts_with("ks.toml:10:"), "{err}");
        assert!(err.contains("defined twice"), "{err}");
    }
}
