//! The embedded default provider: local flagd flag-definition files, one per environment.
//!
//! flagd semantics that matter here:
//! - `state: DISABLED` makes the flag *missing* to the SDK, which then serves its code default;
//!   for a kill switch that default is "feature enabled". So a kill never sets `DISABLED`: it
//!   makes the flag serve its `false` variant to everyone (default variant = off, targeting
//!   removed and kept aside in the flag's metadata so a restore puts it back exactly).
//! - `fractional` weights are relative; `$ref` names an entry of `$evaluators` (a segment).
//! - flagd reloads a watched file on change, so writes replace the file atomically (temp file in
//!   the same directory, fsync, rename, fsync the directory) and keep every field they do not
//!   understand.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::NaiveDate;
use serde_json::{Map, Value};

use super::{
    Access, ChangeNote, Connection, ErrorKind, FlagSource, FlagWriter, ProviderError, ProviderInfo,
    WriteResult,
};
use crate::config::EnvironmentConfig;
use crate::model::{Flag, FlagKind, FlagMeta, FlagState, Override, Rollout, ServedState};
use crate::rollout::{RolloutChoices, RolloutTarget};

/// Metadata keys killswitch adds to a killed boolean flag so a restore is exact.
const SAVED_DEFAULT: &str = "killswitch_saved_default_variant";
const SAVED_TARGETING: &str = "killswitch_saved_targeting";
const SAVED_STATE: &str = "killswitch_saved_state";
const KILLED_BY: &str = "killswitch_killed_by";

pub fn connect(env: &EnvironmentConfig, access: Access) -> Result<Connection, ProviderError> {
    let path = env.file.clone().ok_or_else(|| {
        ProviderError::new(
            ErrorKind::Io,
            format!("{}: flagd needs a `file` in the config", env.name),
        )
    })?;
    let store = Arc::new(FlagdFile::new(&env.name, path));
    Ok(match access {
        Access::ReadWrite => Connection {
            env: env.name.clone(),
            source: store.clone(),
            writer: Some(Arc::new(FlagdWriter { file: store })),
            read_only_reason: None,
        },
        Access::ReadOnly => Connection::read_only(store, &env.name, "read-only mode"),
    })
}

/// One environment's flag file.
pub struct FlagdFile {
    env: String,
    path: PathBuf,
    info: ProviderInfo,
}

impl FlagdFile {
    pub fn new(env: &str, path: PathBuf) -> FlagdFile {
        let info = ProviderInfo {
            vendor: "flagd",
            location: path.display().to_string(),
            served_via: "the flag file as flagd reads it",
        };
        FlagdFile {
            env: env.to_string(),
            path,
            info,
        }
    }

    fn read_text(&self) -> Result<String, ProviderError> {
        std::fs::read_to_string(&self.path).map_err(|err| {
            ProviderError::new(
                ErrorKind::Io,
                format!("{}: cannot read {}: {err}", self.env, self.path.display()),
            )
        })
    }

    fn invalid(&self, message: String) -> ProviderError {
        ProviderError::new(
            ErrorKind::Io,
            format!(
                "{}: {} is not a valid flagd file: {message}",
                self.env,
                self.path.display()
            ),
        )
    }

    fn read_document(&self) -> Result<Value, ProviderError> {
        let text = self.read_text()?;
        parse_document(&text).map_err(|message| self.invalid(message))
    }

    /// Every flag of the file. Each definition is parsed on its own and dropped once
    /// summarised, so a large file never exists as one JSON tree in memory (at 5,000 flags x
    /// 6 environments that tree was most of the peak memory).
    fn list(&self) -> Result<Vec<Flag>, ProviderError> {
        #[derive(serde::Deserialize)]
        struct FlagsOnly<'a> {
            #[serde(borrow)]
            flags: BTreeMap<String, &'a serde_json::value::RawValue>,
        }
        let text = self.read_text()?;
        let Ok(document) = serde_json::from_str::<FlagsOnly>(&text) else {
            // Not the expected shape: the full parser words the error.
            return Err(self.invalid(match parse_document(&text) {
                Err(message) => message,
                Ok(_) => "`flags` must map keys to flag definitions".to_string(),
            }));
        };
        document
            .flags
            .iter()
            .map(|(key, raw)| {
                serde_json::from_str::<Value>(raw.get())
                    .map(|definition| summarise(key, &definition))
                    .map_err(|err| self.invalid(format!("flag `{key}`: {err}")))
            })
            .collect()
    }

    fn not_found(&self, key: &str) -> ProviderError {
        ProviderError::new(
            ErrorKind::NotFound,
            format!(
                "{}: flag `{key}` is not in {}",
                self.env,
                self.path.display()
            ),
        )
    }
}

/// Parses a flagd file: a JSON object whose `flags` is an object.
pub fn parse_document(text: &str) -> Result<Value, String> {
    let document: Value = serde_json::from_str(text).map_err(|err| {
        format!(
            "JSON error at line {} column {}: {err}",
            err.line(),
            err.column()
        )
    })?;
    match document.get("flags") {
        Some(Value::Object(_)) => Ok(document),
        Some(_) => Err("`flags` must be an object".to_string()),
        None => Err("no `flags` object".to_string()),
    }
}

#[async_trait]
impl FlagSource for FlagdFile {
    fn info(&self) -> &ProviderInfo {
        &self.info
    }

    async fn list_flags(&self) -> Result<Vec<Flag>, ProviderError> {
        self.list()
    }

    async fn read_flag(&self, key: &str) -> Result<Flag, ProviderError> {
        let document = self.read_document()?;
        let definition = document
            .get("flags")
            .and_then(|flags| flags.get(key))
            .ok_or_else(|| self.not_found(key))?;
        Ok(summarise(key, definition))
    }

    /// flagd reloads the file it watches, so what services get is what the file says now.
    async fn served(&self, key: &str) -> Result<ServedState, ProviderError> {
        let flag = self.read_flag(key).await?;
        Ok(ServedState {
            enabled: flag.state.enabled,
            value: flag.state.value,
        })
    }

    /// The rule services get is the file's, as the evaluator reads it: read again now.
    async fn served_rule(&self, key: &str) -> Result<FlagState, ProviderError> {
        Ok(self.read_flag(key).await?.state)
    }
}

struct FlagdWriter {
    file: Arc<FlagdFile>,
}

#[async_trait]
impl FlagWriter for FlagdWriter {
    async fn set_enabled(
        &self,
        key: &str,
        enabled: bool,
        note: &ChangeNote,
        seen: &FlagState,
    ) -> Result<WriteResult, ProviderError> {
        let file = self.file.clone();
        let key = key.to_string();
        let note = note.clone();
        let seen_version = seen.version.clone();
        tokio::task::spawn_blocking(move || {
            write_flag(&file, &key, enabled, &note, seen_version.as_deref())
        })
        .await
        .map_err(|err| {
            ProviderError::new(ErrorKind::Io, format!("flagd write task failed: {err}"))
        })?
    }

    async fn set_rollout(
        &self,
        key: &str,
        target: &RolloutTarget,
        note: &ChangeNote,
        seen: &FlagState,
    ) -> Result<WriteResult, ProviderError> {
        let file = self.file.clone();
        let key = key.to_string();
        let target = target.clone();
        // flagd keeps no change notes: the audit log holds this one.
        let _ = note;
        let seen_version = seen.version.clone();
        tokio::task::spawn_blocking(move || {
            modify_flag(&file, &key, seen_version.as_deref(), |flag| {
                set_rollout_definition(flag, &key, &target)
            })
        })
        .await
        .map_err(|err| {
            ProviderError::new(ErrorKind::Io, format!("flagd write task failed: {err}"))
        })?
    }

    async fn rollout_choices(&self, key: &str) -> Result<Option<RolloutChoices>, ProviderError> {
        let document = self.file.read_document()?;
        let definition = document
            .get("flags")
            .and_then(|flags| flags.get(key))
            .ok_or_else(|| self.file.not_found(key))?;
        Ok(Some(rollout_choices_of(definition)))
    }
}

fn write_flag(
    file: &FlagdFile,
    key: &str,
    enabled: bool,
    note: &ChangeNote,
    seen_version: Option<&str>,
) -> Result<WriteResult, ProviderError> {
    modify_flag(file, key, seen_version, |object| {
        if enabled {
            turn_on(object, key)
        } else {
            turn_off(object, key, note)
        }
    })
}

/// Changes one flag definition of the file with `edit`: under the file's lock, conditional on
/// the definition's content version (`seen_version`), written atomically through symlinks.
fn modify_flag(
    file: &FlagdFile,
    key: &str,
    seen_version: Option<&str>,
    edit: impl FnOnce(&mut Map<String, Value>) -> Result<(), Refusal>,
) -> Result<WriteResult, ProviderError> {
    let io_error = |what: &str, err: std::io::Error| {
        ProviderError::new(
            ErrorKind::Io,
            format!("{}: cannot {what} {}: {err}", file.env, file.path.display()),
        )
    };
    // Two killswitch processes on one file must not interleave read-modify-write; the lock
    // sits next to the file the path resolves to, so two links to one file share it.
    let target = resolve(&file.path).map_err(|err| io_error("resolve", err))?;
    let _lock = FileLock::acquire(&lock_path(&target)).map_err(|err| io_error("lock", err))?;
    remove_orphan_temps(&target).map_err(|err| io_error("clean temp files next to", err))?;
    let mut document = file.read_document()?;
    let definition = document
        .get_mut("flags")
        .and_then(|flags| flags.get_mut(key))
        .ok_or_else(|| file.not_found(key))?;
    if let Some(expected) = seen_version {
        let current = version_of(definition);
        if current != expected {
            return Err(ProviderError::new(
                ErrorKind::Conflict,
                format!(
                    "{}: flag `{key}` changed in {} since it was read",
                    file.env,
                    file.path.display()
                ),
            ));
        }
    }
    let object = definition.as_object_mut().ok_or_else(|| {
        ProviderError::new(
            ErrorKind::Io,
            format!("{}: flag `{key}` is not a JSON object", file.env),
        )
    })?;
    edit(object).map_err(|(kind, m)| ProviderError::new(kind, format!("{}: {m}", file.env)))?;
    let mut text = serde_json::to_string_pretty(&document).map_err(|err| {
        ProviderError::new(ErrorKind::Io, format!("{}: cannot encode: {err}", file.env))
    })?;
    text.push('\n');
    write_atomically(&file.path, text.as_bytes()).map_err(|err| {
        match err.get_ref().and_then(|e| e.downcast_ref::<OwnerNotKept>()) {
            Some(owner) => ProviderError::new(
                ErrorKind::Refused,
                format!("{}: refused to write flag `{key}`: {owner}", file.env),
            ),
            None => io_error("write", err),
        }
    })?;
    Ok(WriteResult::Applied)
}

/// Why a flag definition could not be changed: the kind decides the exit code.
type Refusal = (ErrorKind, String);

fn io(message: String) -> Refusal {
    (ErrorKind::Io, message)
}

fn kind_of(key: &str, flag: &Map<String, Value>) -> FlagKind {
    summarise(key, &Value::Object(flag.clone())).meta.kind
}

/// Kill: serve the `false` variant to everyone. A kill switch without a boolean `false`
/// variant is refused: the only other "off" flagd has is `DISABLED`, which serves each
/// service's code default, and for a kill switch that is "feature enabled". Other non-boolean
/// flags (config values) turn off as `DISABLED`, under the words TURN OFF.
fn turn_off(flag: &mut Map<String, Value>, key: &str, note: &ChangeNote) -> Result<(), Refusal> {
    let variants = flag
        .get("variants")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let kind = kind_of(key, flag);
    if !switch_like(&variants, kind) {
        if kind == FlagKind::KillSwitch {
            let listed: Vec<String> = variants
                .iter()
                .map(|(name, value)| format!("{name} = {value}"))
                .collect();
            return Err((
                ErrorKind::Refused,
                format!(
                    "kill switch `{key}` has no variant whose value is the boolean false (variants: {}): \
                     disabling it would make services serve their code default, which for a kill switch is \
                     \"feature enabled\". Add a variant with the value false (e.g. \"off\": false); nothing was changed",
                    if listed.is_empty() {
                        "none".to_string()
                    } else {
                        listed.join(", ")
                    }
                ),
            ));
        }
        let previous_state = flag
            .get("state")
            .and_then(Value::as_str)
            .map(str::to_string);
        if previous_state.as_deref() != Some("DISABLED") {
            flag.insert("state".into(), Value::String("DISABLED".into()));
        }
        return Ok(());
    }
    let off = variant_with(&variants, false)
        .ok_or_else(|| io(format!("flag `{key}` has no variant that serves false")))?;
    let previous_default = flag_default(flag);
    let previous_state = flag
        .get("state")
        .and_then(Value::as_str)
        .map(str::to_string);
    let previous_targeting = flag.get("targeting").cloned();
    let metadata = flag
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()
        .ok_or_else(|| io(format!("flag `{key}`: `metadata` is not an object")))?;
    // Killing twice must not overwrite what the first kill set aside.
    let already_saved = metadata.contains_key(SAVED_DEFAULT)
        || metadata.contains_key(SAVED_TARGETING)
        || metadata.contains_key(SAVED_STATE);
    if !already_saved {
        if let Some(default) = previous_default {
            metadata.insert(SAVED_DEFAULT.into(), Value::String(default));
        }
        if let Some(targeting) = previous_targeting.filter(|t| !is_empty_targeting(t)) {
            metadata.insert(SAVED_TARGETING.into(), Value::String(targeting.to_string()));
        }
        if let Some(state) = previous_state.filter(|state| state != "ENABLED") {
            metadata.insert(SAVED_STATE.into(), Value::String(state));
        }
    }
    metadata.insert(
        KILLED_BY.into(),
        Value::String(format!("{} ({})", note.operator, note.audit_id)),
    );
    flag.insert("state".into(), Value::String("ENABLED".into()));
    flag.insert("defaultVariant".into(), Value::String(off));
    flag.shift_remove("targeting");
    Ok(())
}

/// Restore: put back exactly what the kill set aside (default variant, targeting and state, so
/// every key gets what it got before: same buckets); with nothing set aside, serve `true`.
fn turn_on(flag: &mut Map<String, Value>, key: &str) -> Result<(), Refusal> {
    let variants = flag
        .get("variants")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let kind = kind_of(key, flag);
    if !switch_like(&variants, kind) {
        flag.insert("state".into(), Value::String("ENABLED".into()));
        return Ok(());
    }
    let mut saved_default = None;
    let mut saved_targeting = None;
    let mut saved_state = None;
    let mut had_saved = false;
    if let Some(metadata) = flag.get_mut("metadata").and_then(Value::as_object_mut) {
        saved_default = metadata
            .shift_remove(SAVED_DEFAULT)
            .and_then(|v| v.as_str().map(str::to_string));
        saved_targeting = metadata
            .shift_remove(SAVED_TARGETING)
            .and_then(|v| v.as_str().map(str::to_string));
        saved_state = metadata
            .shift_remove(SAVED_STATE)
            .and_then(|v| v.as_str().map(str::to_string));
        had_saved = saved_default.is_some() || saved_targeting.is_some() || saved_state.is_some();
        metadata.shift_remove(KILLED_BY);
    }
    // The kill added `metadata` to a flag that had none: take it away again.
    if flag
        .get("metadata")
        .and_then(Value::as_object)
        .is_some_and(Map::is_empty)
    {
        flag.shift_remove("metadata");
    }
    match saved_default {
        Some(default) if variants.contains_key(&default) => {
            flag.insert("defaultVariant".into(), Value::String(default));
        }
        // Killed from a flag without a default variant: services got their code default.
        None if had_saved => {
            flag.shift_remove("defaultVariant");
        }
        _ => {
            let on = variant_with(&variants, true)
                .ok_or_else(|| io(format!("flag `{key}` has no variant that serves true")))?;
            flag.insert("defaultVariant".into(), Value::String(on));
        }
    }
    flag.insert(
        "state".into(),
        Value::String(saved_state.unwrap_or_else(|| "ENABLED".to_string())),
    );
    if let Some(targeting) = saved_targeting {
        let targeting: Value = serde_json::from_str(&targeting)
            .map_err(|err| io(format!("flag `{key}`: saved targeting is not JSON: {err}")))?;
        flag.insert("targeting".into(), targeting);
    }
    // A restore that still serves nobody `true` would be a silent no-op: refuse it.
    let after = summarise(key, &Value::Object(flag.clone()));
    if !after.state.enabled {
        // A rollout taken to 0% serves false through its split, not through a kill: the way
        // back is a rollout step, and the message says so.
        let rolled_back = flag
            .get("targeting")
            .is_some_and(|t| t.to_string().contains("\"fractional\""));
        if rolled_back {
            return Err((
                ErrorKind::Refused,
                format!(
                    "flag `{key}` serves false because its rollout is at 0%, not because it was killed: \
                     step the rollout instead (`killswitch rollout {key} --env ENV --to PERCENT`); nothing was changed"
                ),
            ));
        }
        return Err(io(format!(
            "flag `{key}` would still serve false to everyone after a restore"
        )));
    }
    Ok(())
}

fn flag_default(flag: &Map<String, Value>) -> Option<String> {
    flag.get("defaultVariant")
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// Flags killed and restored by switching variants: boolean flags, and kill switches that have
/// a boolean `false` variant (a kill serves it whatever else the variants hold).
fn switch_like(variants: &Map<String, Value>, kind: FlagKind) -> bool {
    is_boolean(variants)
        || (kind == FlagKind::KillSwitch && variant_with(variants, false).is_some())
}

fn is_boolean(variants: &Map<String, Value>) -> bool {
    !variants.is_empty() && variants.values().all(Value::is_boolean)
}

fn variant_with(variants: &Map<String, Value>, wanted: bool) -> Option<String> {
    variants
        .iter()
        .find(|(_, value)| value.as_bool() == Some(wanted))
        .map(|(name, _)| name.clone())
}

fn is_empty_targeting(targeting: &Value) -> bool {
    match targeting {
        Value::Null => true,
        Value::Object(map) => map.is_empty(),
        _ => false,
    }
}

/// A stable content hash of one flag definition: the version the re-read guard compares.
pub fn version_of(definition: &Value) -> String {
    super::http::content_hash(&definition.to_string())
}

/// Turns one flagd flag definition into the domain model. Never fails: what it cannot read it
/// leaves out, so one odd flag does not hide the others.
pub fn summarise(key: &str, definition: &Value) -> Flag {
    let metadata = definition.get("metadata").and_then(Value::as_object);
    let text = |field: &str| {
        metadata
            .and_then(|m| m.get(field))
            .and_then(Value::as_str)
            .map(str::to_string)
            .filter(|s| !s.trim().is_empty())
    };
    let vendor_kind = text("kind").map(|label| FlagKind::from_label(&label));
    let meta = FlagMeta {
        key: key.to_string(),
        kind: FlagKind::classify(key, vendor_kind),
        owner: text("owner"),
        expected_removal: text("expected_removal_date")
            .and_then(|date| NaiveDate::parse_from_str(&date, "%Y-%m-%d").ok()),
        description: text("description"),
        tags: text("tags")
            .map(|tags| {
                tags.split(',')
                    .map(|t| t.trim().to_string())
                    .filter(|t| !t.is_empty())
                    .collect()
            })
            .unwrap_or_default(),
        runbook: text("runbook"),
    };
    let state = summarise_state(definition, meta.kind);
    Flag {
        meta: std::sync::Arc::new(meta),
        state,
    }
}

/// What the flagd evaluator serves, summarised. A kill switch is asked for as a boolean with
/// the code default "feature enabled", so whatever makes the evaluator fall back to the code
/// default (`DISABLED`, no default variant, a variant that is not a boolean) reads as serving.
fn summarise_state(definition: &Value, kind: FlagKind) -> FlagState {
    let version = Some(version_of(definition));
    let variants = definition
        .get("variants")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let kill_switch = kind == FlagKind::KillSwitch;
    // Missing to the SDK: services serve their code default (for a kill switch: serving).
    let code_default = |version: Option<String>| FlagState {
        enabled: kill_switch,
        value: None,
        rollout: Rollout::CodeDefault,
        version,
        ..Default::default()
    };
    if definition.get("state").and_then(Value::as_str) == Some("DISABLED") {
        return code_default(version);
    }
    let default_variant = definition
        .get("defaultVariant")
        .and_then(Value::as_str)
        .unwrap_or("");
    let default_value = variants.get(default_variant).cloned();
    let targeting = definition
        .get("targeting")
        .filter(|t| !is_empty_targeting(t));
    let boolean = switch_like(&variants, kind);
    let (rollout, overrides, fallback) = match targeting {
        Some(targeting) => read_targeting(targeting, &variants, boolean),
        None => (Rollout::Everyone, Vec::new(), None),
    };
    if rollout == Rollout::Unknown {
        // A rule killswitch cannot read: say so rather than guess (and let a kill through).
        return FlagState {
            enabled: true,
            value: default_value,
            rollout,
            overrides,
            version,
        };
    }
    // The value everyone outside the overrides gets (None: the evaluator errs or has no
    // default variant, and services serve their code default).
    let value = match fallback {
        Some(variant) => variants.get(&variant).cloned(),
        None => default_value,
    };
    let everyone_gets_code_default = rollout == Rollout::Everyone
        && overrides.is_empty()
        && match &value {
            None => true,
            // Asked for as a boolean, a non-boolean value is a type mismatch: code default.
            Some(value) => kill_switch && !value.is_boolean(),
        };
    if everyone_gets_code_default {
        return code_default(version);
    }
    let enabled = if boolean {
        // ON while someone can get `true`.
        value.as_ref().is_none_or(|v| v.as_bool() != Some(false))
            || overrides.iter().any(|o| o.enabled)
            || matches!(&rollout, Rollout::Percentage { percent } if *percent > 0.0)
    } else {
        true
    };
    FlagState {
        enabled,
        value,
        rollout,
        overrides,
        version,
    }
}

/// Reads the targeting forms killswitch summarises: a top-level `fractional`, and an `if` chain
/// over `$ref` segments whose branches are variants or `fractional`s.
fn read_targeting(
    targeting: &Value,
    variants: &Map<String, Value>,
    boolean: bool,
) -> (Rollout, Vec<Override>, Option<String>) {
    if let Some(split) = targeting.get("fractional") {
        if let Some(variant) = sole_variant(split) {
            return (Rollout::Everyone, Vec::new(), Some(variant));
        }
        return (fractional(split, variants, boolean), Vec::new(), None);
    }
    let Some(branches) = targeting.get("if").and_then(Value::as_array) else {
        // Any other JSON Logic (`var`, `cat`, a bare value...) may return any variant.
        return (Rollout::Unknown, Vec::new(), None);
    };
    let mut overrides = Vec::new();
    let mut index = 0;
    while index + 1 < branches.len() {
        if branches[index] == Value::Bool(true) {
            // `if true`: everyone reaching this branch gets its outcome.
            return match &branches[index + 1] {
                Value::String(variant) => (Rollout::Everyone, overrides, Some(variant.clone())),
                other => match other.get("fractional") {
                    Some(split) => match sole_variant(split) {
                        Some(variant) => (Rollout::Everyone, overrides, Some(variant)),
                        None => (fractional(split, variants, boolean), overrides, None),
                    },
                    None => (Rollout::Unknown, overrides, None),
                },
            };
        }
        let target = condition_name(&branches[index]);
        let outcome = &branches[index + 1];
        let (value, rollout) = branch_outcome(outcome, variants, boolean);
        let enabled = match (&value, &rollout) {
            (_, Rollout::Percentage { percent }) => *percent > 0.0,
            (Some(Value::Bool(on)), _) => *on,
            _ => true,
        };
        let value = if boolean { None } else { value };
        overrides.push(Override {
            target,
            kind: crate::model::OverrideKind::Segment,
            enabled,
            value,
            rollout,
        });
        index += 2;
    }
    let (rollout, fallback) = match branches.get(index).filter(|_| branches.len() % 2 == 1) {
        Some(Value::String(variant)) => (Rollout::Everyone, Some(variant.clone())),
        Some(other) if other.get("fractional").is_some() => {
            match sole_variant(&other["fractional"]) {
                Some(variant) => (Rollout::Everyone, Some(variant)),
                None => (fractional(&other["fractional"], variants, boolean), None),
            }
        }
        // No else branch: the evaluator falls back to the default variant.
        None => (Rollout::Everyone, None),
        // A nested rule or an expression as the else branch: cannot tell.
        Some(_) => (Rollout::Unknown, None),
    };
    (rollout, overrides, fallback)
}

fn branch_outcome(
    outcome: &Value,
    variants: &Map<String, Value>,
    boolean: bool,
) -> (Option<Value>, Rollout) {
    match outcome {
        Value::String(variant) => (variants.get(variant).cloned(), Rollout::Everyone),
        other => match other.get("fractional") {
            Some(split) => (None, fractional(split, variants, boolean)),
            None => (None, Rollout::Everyone),
        },
    }
}

fn fractional(split: &Value, variants: &Map<String, Value>, boolean: bool) -> Rollout {
    let weights: Vec<(String, f64)> = split
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .filter_map(|entry| {
                    let pair = entry.as_array()?;
                    let variant = pair.first()?.as_str()?.to_string();
                    let weight = pair.get(1).and_then(Value::as_f64).unwrap_or(1.0);
                    Some((variant, weight))
                })
                .collect()
        })
        .unwrap_or_default();
    let rollout = Rollout::from_weights(&weights);
    if !boolean {
        return rollout;
    }
    match rollout {
        Rollout::Split { variants: split } => {
            let percent = split
                .iter()
                .filter(|weight| {
                    variants.get(&weight.variant).and_then(Value::as_bool) == Some(true)
                })
                .map(|weight| weight.percent)
                .sum();
            Rollout::Percentage { percent }
        }
        other => other,
    }
}

/// "internal_staff or beta_customers" for `{"or":[{"$ref":...},...]}`; "rule" otherwise.
fn condition_name(condition: &Value) -> String {
    if let Some(name) = condition.get("$ref").and_then(Value::as_str) {
        return name.to_string();
    }
    for (operator, joiner) in [("or", " or "), ("and", " and ")] {
        if let Some(parts) = condition.get(operator).and_then(Value::as_array) {
            return parts
                .iter()
                .map(condition_name)
                .collect::<Vec<_>>()
                .join(joiner);
        }
    }
    "rule".to_string()
}

/// The ownership of the file could not be kept: the write was refused before the file changed.
#[derive(Debug)]
pub struct OwnerNotKept {
    pub path: PathBuf,
    pub uid: u32,
    pub gid: u32,
    pub cause: std::io::Error,
}

impl std::fmt::Display for OwnerNotKept {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} belongs to uid {} gid {} and this process cannot give a new file that owner ({}); run killswitch as that user (or root). Nothing was changed",
            self.path.display(),
            self.uid,
            self.gid,
            self.cause
        )
    }
}

impl std::error::Error for OwnerNotKept {}

/// The file `path` names, symlinks followed (flagd reads through the link, so a write must
/// replace the target, not the link). A path that does not exist yet is itself.
pub fn resolve(path: &Path) -> std::io::Result<PathBuf> {
    match std::fs::canonicalize(path) {
        Ok(target) => Ok(target),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound && !is_symlink(path) => {
            Ok(path.to_path_buf())
        }
        Err(err) => Err(err),
    }
}

fn is_symlink(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
}

/// Temp files killswitch writes next to `target`: `.NAME.killswitch-XXXXXX.tmp`.
fn temp_prefix(target: &Path) -> String {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    format!(".{name}.killswitch-")
}

/// Removes temp files a crashed write of `target` left behind. Call with the file's lock held:
/// every writer of the file takes it first, so any temp file of the file is an orphan.
pub fn remove_orphan_temps(target: &Path) -> std::io::Result<usize> {
    let dir = parent_dir(target);
    let prefix = temp_prefix(target);
    let mut removed = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().to_string();
        if name.starts_with(&prefix)
            && name.ends_with(".tmp")
            && entry.file_type().is_ok_and(|t| t.is_file())
        {
            std::fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}

fn parent_dir(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Replaces the file `path` resolves to with `bytes` so a reader sees the old file or the new
/// one, never a mix: a temp file in the target's directory with the target's owner, group and
/// mode, fsync, rename over the target, fsync the directory. A symlink stays a symlink. When
/// the owner or group cannot be kept (another user's file, not root), it refuses with an
/// [`OwnerNotKept`] inside a `PermissionDenied` error before the file changes.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::MetadataExt;
    let target = resolve(path)?;
    let dir = parent_dir(&target);
    let existing = std::fs::metadata(&target).ok();
    let mode = existing
        .as_ref()
        .map(|m| m.permissions().mode() & 0o7777)
        .unwrap_or(0o644);
    let mut temp = tempfile::Builder::new()
        .prefix(&temp_prefix(&target))
        .suffix(".tmp")
        .tempfile_in(dir)?;
    if let Some(existing) = &existing {
        let written = temp.as_file().metadata()?;
        if (written.uid(), written.gid()) != (existing.uid(), existing.gid()) {
            // SAFETY: fchown on a descriptor we own.
            let result =
                unsafe { libc::fchown(temp.as_file().as_raw_fd(), existing.uid(), existing.gid()) };
            if result != 0 {
                let cause = std::io::Error::last_os_error();
                // Dropping `temp` removes it: the flag file was never touched.
                return Err(std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    OwnerNotKept {
                        path: target.clone(),
                        uid: existing.uid(),
                        gid: existing.gid(),
                        cause,
                    },
                ));
            }
        }
    }
    temp.write_all(bytes)?;
    // After the chown, which may clear set-id bits.
    temp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(mode))?;
    temp.as_file().sync_all()?;
    temp.persist(&target).map_err(|err| err.error)?;
    File::open(dir)?.sync_all()?;
    // What flagd opens is the configured path: it must now be the new file, as it was owned.
    let now = std::fs::metadata(path)?;
    if let Some(existing) = &existing
        && ((now.uid(), now.gid()) != (existing.uid(), existing.gid())
            || now.permissions().mode() & 0o7777 != mode)
    {
        return Err(std::io::Error::other(format!(
            "{} now has owner {}:{} mode {:o}, not {}:{} mode {:o}",
            path.display(),
            now.uid(),
            now.gid(),
            now.permissions().mode() & 0o7777,
            existing.uid(),
            existing.gid(),
            mode
        )));
    }
    Ok(())
}

fn lock_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.killswitch.lock"))
}

/// An exclusive advisory lock (flock) held until dropped.
struct FileLock {
    _file: File,
}

impl FileLock {
    /// Opens (creating, mode 0600) the lock file with `O_NOFOLLOW`: a symbolic link put at its
    /// path is refused, so no file elsewhere is created or opened for writing through it. The
    /// lock file's mode is never changed. (The temporary file of [`write_atomically`] is made
    /// by `tempfile` with `O_CREAT | O_EXCL` under a random name, which never follows a link,
    /// and only that file of ours is chmod-ed.)
    fn acquire(path: &Path) -> std::io::Result<FileLock> {
        use std::os::fd::AsRawFd;
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path)
            .map_err(|err| {
                if err.raw_os_error() == Some(libc::ELOOP) {
                    std::io::Error::other(format!(
                        "{} is a symbolic link: killswitch does not follow it (remove it)",
                        path.display()
                    ))
                } else {
                    err
                }
            })?;
        // SAFETY: flock on a file descriptor we own; released when the file closes.
        let result = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
        if result != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(FileLock { _file: file })
    }
}

// ---- rollouts -------------------------------------------------------------------------------
//
// A rollout changes the default audience's branch of the targeting only: the top-level
// `fractional`, or the else branch of an `if` chain (segments' branches stay as they are).
// The evaluator buckets a key by a hash of the bucketing expression (default: the flag key and
// the targeting key) scaled by the total weight, then walks the entries in order: the first
// entry covers the lowest buckets. So the bucketing expression and the entries' order are
// kept and only the weights change: stepping the on share up keeps every key that had it, and
// going back to a share gives exactly the keys that had it then. Where there is no split yet
// one is made, on variant first, with the default bucketing. Everyone-to-variant gives the
// variant all the weight and the others 0 (the split stays, so a later step is as sticky),
// and makes it the default variant.

/// If exactly one entry of a `fractional` has weight, its variant: everyone gets it.
fn sole_variant(split: &Value) -> Option<String> {
    let entries: Vec<(String, f64)> = split
        .as_array()?
        .iter()
        .filter_map(|entry| {
            let pair = entry.as_array()?;
            let variant = pair.first()?.as_str()?.to_string();
            let weight = pair.get(1).and_then(Value::as_f64).unwrap_or(1.0);
            Some((variant, weight))
        })
        .collect();
    let mut weighted = entries.iter().filter(|(_, weight)| *weight > 0.0);
    match (weighted.next(), weighted.next()) {
        (Some((variant, _)), None) => Some(variant.clone()),
        _ => None,
    }
}

/// What `--to` / `--variant` can ask of a flagd flag: a percentage when it has a `true` and a
/// `false` variant, and its variants by name (with their values, which states show).
fn rollout_choices_of(definition: &Value) -> RolloutChoices {
    let variants = definition
        .get("variants")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    RolloutChoices {
        percent: variant_with(&variants, true).is_some()
            && variant_with(&variants, false).is_some(),
        whole_percent_only: false,
        variants: variants.keys().cloned().collect(),
        values: variants.values().map(crate::model::value_text).collect(),
    }
}

/// The integer weights (the evaluator takes only integers) of an on share of `percent`:
/// out of 100 for whole percentages, out of 100,000 (thousandths of a percent) otherwise.
fn split_weights(percent: f64) -> (i64, i64) {
    if (percent - percent.round()).abs() < 1e-9 {
        let on = percent.round() as i64;
        (on, 100 - on)
    } else {
        let on = (percent * 1000.0).round() as i64;
        (on, 100_000 - on)
    }
}

/// The variant a target names: by name, else by the value states show (unique).
fn variant_named(variants: &Map<String, Value>, wanted: &str) -> Option<String> {
    if variants.contains_key(wanted) {
        return Some(wanted.to_string());
    }
    let mut by_value = variants
        .iter()
        .filter(|(_, value)| crate::model::value_text(value) == wanted);
    match (by_value.next(), by_value.next()) {
        (Some((name, _)), None) => Some(name.clone()),
        _ => None,
    }
}

/// Where the default audience's outcome lives in a flag's targeting.
enum DefaultBranch<'a> {
    /// No targeting: everyone gets the default variant.
    Missing,
    /// A `fractional` object: the top-level targeting or an `if` branch.
    Split(&'a mut Map<String, Value>),
    /// A variant name (an `if` chain's else or `if true` branch), replaceable in place.
    Variant(&'a mut Value),
    /// An `if` chain without an else branch: the default variant is the fallback.
    NoElse(&'a mut Vec<Value>),
}

fn default_branch<'a>(
    flag: &'a mut Map<String, Value>,
    key: &str,
) -> Result<DefaultBranch<'a>, Refusal> {
    let unreadable = || {
        (
            ErrorKind::Refused,
            format!(
                "flag `{key}`: its targeting is a rule killswitch cannot read (only a top-level `fractional` or an `if` chain over segments whose else branch is a variant or a `fractional`); nothing was changed"
            ),
        )
    };
    let Some(targeting) = flag.get_mut("targeting").filter(|t| !is_empty_targeting(t)) else {
        return Ok(DefaultBranch::Missing);
    };
    let Some(object) = targeting.as_object_mut() else {
        return Err(unreadable());
    };
    if object.contains_key("fractional") {
        return Ok(DefaultBranch::Split(object));
    }
    let Some(Value::Array(branches)) = object.get_mut("if") else {
        return Err(unreadable());
    };
    let mut index = 0;
    let mut default = None;
    while index + 1 < branches.len() {
        if branches[index] == Value::Bool(true) {
            default = Some(index + 1);
            break;
        }
        index += 2;
    }
    let position = match default {
        Some(position) => position,
        None if branches.len() % 2 == 1 => branches.len() - 1,
        None => return Ok(DefaultBranch::NoElse(branches)),
    };
    let branch = &mut branches[position];
    if branch.is_string() {
        return Ok(DefaultBranch::Variant(branch));
    }
    match branch.as_object_mut() {
        Some(object) if object.contains_key("fractional") => Ok(DefaultBranch::Split(object)),
        _ => Err(unreadable()),
    }
}

/// Sets the weights of an existing `fractional` for an on share: its on and off entries keep
/// their places (and the bucketing expression, if any, stays first).
fn set_split_share(
    split: &mut Map<String, Value>,
    key: &str,
    variants: &Map<String, Value>,
    percent: f64,
) -> Result<(), Refusal> {
    let (on_weight, off_weight) = split_weights(percent);
    let Some(Value::Array(entries)) = split.get_mut("fractional") else {
        return Err((
            ErrorKind::Refused,
            format!("flag `{key}`: its `fractional` is not a list; nothing was changed"),
        ));
    };
    let (mut on, mut off, mut other) = (0, 0, Vec::new());
    for entry in entries.iter() {
        let Some(pair) = entry.as_array() else {
            // The bucketing expression: kept as it is.
            continue;
        };
        let name = pair.first().and_then(Value::as_str).unwrap_or_default();
        match variants.get(name).and_then(Value::as_bool) {
            Some(true) => on += 1,
            Some(false) => off += 1,
            None => other.push(name.to_string()),
        }
    }
    if on != 1 || off != 1 || !other.is_empty() {
        return Err((
            ErrorKind::Refused,
            format!(
                "flag `{key}`: its default split is not one on and one off entry ({on} on, {off} off{}): killswitch cannot change its share without moving users; nothing was changed",
                if other.is_empty() {
                    String::new()
                } else {
                    format!(", others: {}", other.join(", "))
                }
            ),
        ));
    }
    for entry in entries.iter_mut() {
        let Some(pair) = entry.as_array_mut() else {
            continue;
        };
        let name = pair.first().and_then(Value::as_str).unwrap_or_default();
        let weight = match variants.get(name).and_then(Value::as_bool) {
            Some(true) => on_weight,
            _ => off_weight,
        };
        pair.truncate(1);
        pair.push(Value::from(weight));
    }
    Ok(())
}

/// Gives `variant` all of an existing `fractional`'s weight (appended if it has no entry).
fn set_split_variant(
    split: &mut Map<String, Value>,
    key: &str,
    variant: &str,
) -> Result<(), Refusal> {
    let Some(Value::Array(entries)) = split.get_mut("fractional") else {
        return Err((
            ErrorKind::Refused,
            format!("flag `{key}`: its `fractional` is not a list; nothing was changed"),
        ));
    };
    let mut found = false;
    for entry in entries.iter_mut() {
        let Some(pair) = entry.as_array_mut() else {
            continue;
        };
        let this = pair.first().and_then(Value::as_str) == Some(variant);
        found |= this;
        pair.truncate(1);
        pair.push(Value::from(if this { 100 } else { 0 }));
    }
    if !found {
        entries.push(serde_json::json!([variant, 100]));
    }
    Ok(())
}

/// The rollout write on one flag definition.
fn set_rollout_definition(
    flag: &mut Map<String, Value>,
    key: &str,
    target: &RolloutTarget,
) -> Result<(), Refusal> {
    let refused = |message: String| {
        (
            ErrorKind::Refused,
            format!("flag `{key}`: {message}; nothing was changed"),
        )
    };
    if let Some(metadata) = flag.get("metadata").and_then(Value::as_object)
        && (metadata.contains_key(SAVED_DEFAULT)
            || metadata.contains_key(SAVED_TARGETING)
            || metadata.contains_key(SAVED_STATE))
    {
        return Err(refused(
            "it is killed by killswitch (its rule is set aside until a restore): restore it first, then step the rollout".to_string(),
        ));
    }
    if flag.get("state").and_then(Value::as_str) == Some("DISABLED") {
        return Err(refused(
            "it is DISABLED (services serve their code default): enable it in the file first"
                .to_string(),
        ));
    }
    let variants = flag
        .get("variants")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    match target {
        RolloutTarget::Percent { percent } => {
            let (Some(on), Some(off)) = (
                variant_with(&variants, true),
                variant_with(&variants, false),
            ) else {
                return Err(refused(format!(
                    "a percentage needs a variant serving true and one serving false (variants: {})",
                    variants.keys().cloned().collect::<Vec<_>>().join(", ")
                )));
            };
            let (on_weight, off_weight) = split_weights(*percent);
            let fresh = serde_json::json!({"fractional": [[on, on_weight], [off, off_weight]]});
            match default_branch(flag, key)? {
                DefaultBranch::Split(split) => set_split_share(split, key, &variants, *percent)?,
                DefaultBranch::Variant(branch) => *branch = fresh,
                DefaultBranch::NoElse(branches) => branches.push(fresh),
                DefaultBranch::Missing => {
                    flag.insert("targeting".into(), fresh);
                }
            }
        }
        RolloutTarget::Variant { variant } => {
            let Some(name) = variant_named(&variants, variant) else {
                return Err(refused(format!(
                    "it has no variant `{variant}` (variants: {})",
                    variants.keys().cloned().collect::<Vec<_>>().join(", ")
                )));
            };
            match default_branch(flag, key)? {
                DefaultBranch::Split(split) => set_split_variant(split, key, &name)?,
                DefaultBranch::Variant(branch) => *branch = Value::String(name.clone()),
                DefaultBranch::NoElse(_) | DefaultBranch::Missing => {}
            }
            flag.insert("defaultVariant".into(), Value::String(name));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROD: &str = include_str!("../../assets/seed/prod.flagd.json");

    fn prod_flags() -> Vec<Flag> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("prod.flagd.json");
        std::fs::write(&path, PROD).expect("write");
        let file = FlagdFile::new("prod", path);
        let flags = file.list().expect("seed lists");
        // The per-flag listing says the same as the whole-document parser.
        let document = parse_document(PROD).expect("seed parses");
        for flag in &flags {
            assert_eq!(
                flag,
                &summarise(&flag.meta.key, &document["flags"][&flag.meta.key])
            );
        }
        flags
    }

    #[test]
    fn listing_a_malformed_file_names_the_problem() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("bad.flagd.json");
        for (text, expected) in [
            ("{\"flags\": [1]}", "`flags` must be an object"),
            ("{\"flag\": {}}", "no `flags` object"),
            ("{\"flags\": {\"a\": ", "JSON error at line 1"),
        ] {
            std::fs::write(&path, text).expect("write");
            let err = FlagdFile::new("dev", path.clone())
                .list()
                .err()
                .map(|e| e.message)
                .unwrap_or_default();
            assert!(err.contains(expected), "{text}: {err}");
            assert!(
                err.contains("bad.flagd.json is not a valid flagd file"),
                "{err}"
            );
        }
    }

    fn flag<'a>(flags: &'a [Flag], key: &str) -> &'a Flag {
        flags
            .iter()
            .find(|f| f.meta.key == key)
            .expect("flag present")
    }

    #[test]
    fn summarises_every_sample_form() {
        let flags = prod_flags();
        assert_eq!(flags.len(), 6);
        let checkout = flag(&flags, "kill_switch_checkout");
        assert!(checkout.meta.is_kill_switch());
        assert!(checkout.state.enabled);
        assert_eq!(checkout.meta.owner.as_deref(), Some("team-checkout"));
        assert_eq!(
            checkout.meta.runbook.as_deref(),
            Some("../runbooks/runbook-api-latency-p99.md")
        );

        let canary = flag(&flags, "checkout_stripe_payment_intents_v2024_11");
        assert_eq!(canary.state.rollout, Rollout::Percentage { percent: 10.0 });
        assert_eq!(
            crate::model::cell_text(canary.meta.kind, &canary.state),
            "ON 10%"
        );

        let ab = flag(&flags, "recommendations_ab_test_model_v3");
        assert_eq!(ab.meta.kind, FlagKind::Experiment);
        assert_eq!(ab.state.rollout.summary(), "33/33/34");

        let dark = flag(&flags, "catalog_v2_search_engine");
        assert!(dark.state.enabled, "segments still get it");
        assert_eq!(dark.state.value, Some(Value::Bool(false)));
        assert_eq!(dark.state.overrides.len(), 1);
        assert_eq!(
            dark.state.overrides[0].target,
            "internal_staff or beta_customers"
        );

        let pages = flag(&flags, "catalog_per_tenant_pagination_size");
        assert_eq!(pages.state.value, Some(Value::from(20)));
        let summaries: Vec<String> = pages
            .state
            .overrides
            .iter()
            .map(Override::summary)
            .collect();
        assert_eq!(
            summaries,
            vec!["100 (enterprise_tenants)", "50 (eu_tenants)"]
        );
    }

    fn note() -> ChangeNote {
        ChangeNote {
            audit_id: "a1".into(),
            operator: "alice".into(),
            note: "p99 latency".into(),
        }
    }

    #[test]
    fn kill_serves_false_and_restore_is_exact() {
        let document = parse_document(PROD).expect("seed parses");
        for key in [
            "kill_switch_checkout",
            "catalog_v2_search_engine",
            "checkout_stripe_payment_intents_v2024_11",
        ] {
            let original = document["flags"][key].clone();
            let mut flag = original.as_object().cloned().expect("object");
            turn_off(&mut flag, key, &note()).expect("kill");
            let killed = summarise(key, &Value::Object(flag.clone()));
            assert!(!killed.state.enabled, "{key} killed");
            assert_eq!(
                killed.state.value,
                Some(Value::Bool(false)),
                "{key} serves false"
            );
            assert_eq!(flag["state"], "ENABLED", "{key} never DISABLED");
            assert!(flag.get("targeting").is_none());
            turn_on(&mut flag, key).expect("restore");
            assert_eq!(Value::Object(flag), original, "{key} restored exactly");
        }
    }

    #[test]
    fn a_disabled_switch_serves_the_code_default_and_a_kill_makes_it_serve_false() {
        let original: Map<String, Value> = serde_json::from_str(
            r#"{"state":"DISABLED","variants":{"on":true,"off":false},"defaultVariant":"on"}"#,
        )
        .expect("json");
        let mut flag = original.clone();
        let before = summarise("kill_switch_x", &Value::Object(flag.clone()));
        assert!(
            before.state.enabled,
            "the code default of a kill switch serves"
        );
        assert_eq!(
            crate::model::cell_text(before.meta.kind, &before.state),
            "SERVING (code default)"
        );
        turn_off(&mut flag, "kill_switch_x", &note()).expect("kill");
        assert_eq!(flag["state"], "ENABLED");
        assert_eq!(flag["defaultVariant"], "off");
        turn_on(&mut flag, "kill_switch_x").expect("restore");
        assert_eq!(
            Value::Object(flag),
            Value::Object(original),
            "DISABLED again"
        );
    }

    #[test]
    fn a_kill_switch_without_a_boolean_off_variant_is_refused() {
        let original: Map<String, Value> = serde_json::from_str(
            r#"{"state":"ENABLED","variants":{"on":"true","off":"false"},"defaultVariant":"on"}"#,
        )
        .expect("json");
        let mut flag = original.clone();
        let refused = turn_off(&mut flag, "kill_switch_x", &note());
        let (kind, message) = refused.expect_err("refused");
        assert_eq!(kind, ErrorKind::Refused);
        assert!(message.contains("kill switch `kill_switch_x`"), "{message}");
        assert!(
            message.contains("no variant whose value is the boolean false"),
            "{message}"
        );
        assert_eq!(flag, original, "nothing changed");
        // With a boolean off variant among strings, the kill serves it.
        let mut mixed: Map<String, Value> = serde_json::from_str(
            r#"{"state":"ENABLED","variants":{"on":"true","off":false},"defaultVariant":"on"}"#,
        )
        .expect("json");
        turn_off(&mut mixed, "kill_switch_x", &note()).expect("kill");
        assert_eq!(mixed["defaultVariant"], "off");
    }

    #[test]
    fn targeting_that_serves_on_reads_serving_and_unread_rules_say_so() {
        let cell = |definition: &str| {
            let value: Value = serde_json::from_str(definition).expect("json");
            let flag = summarise("kill_switch_x", &value);
            (
                crate::model::cell_text(flag.meta.kind, &flag.state),
                flag.state.enabled,
            )
        };
        let off_on = r#""variants":{"on":true,"off":false},"defaultVariant":"off""#;
        assert_eq!(
            cell(&format!(
                r#"{{{off_on},"targeting":{{"if":[{{"$ref":"beta"}},"on","off"]}}}}"#
            )),
            ("SERVING 1 seg only".to_string(), true)
        );
        assert_eq!(
            cell(&format!(
                r#"{{{off_on},"targeting":{{"if":[true,"on","off"]}}}}"#
            )),
            ("SERVING".to_string(), true)
        );
        assert_eq!(
            cell(&format!(r#"{{{off_on},"targeting":{{"var":"variant"}}}}"#)),
            ("UNKNOWN (rule)".to_string(), true)
        );
        assert_eq!(
            cell(&format!(
                r#"{{{off_on},"targeting":{{"if":[{{"$ref":"a"}},"off",{{"var":"v"}}]}}}}"#
            )),
            ("UNKNOWN (rule)".to_string(), true)
        );
        assert_eq!(
            cell(r#"{"variants":{"on":true,"off":false},"defaultVariant":null}"#),
            ("SERVING (code default)".to_string(), true)
        );
        assert_eq!(
            cell(&format!(r#"{{{off_on}}}"#)),
            ("KILLED".to_string(), false)
        );
    }

    #[test]
    fn a_rollout_changes_only_the_default_branch_weights() {
        let document = parse_document(PROD).expect("seed parses");
        let flag_of = |key: &str| document["flags"][key].as_object().cloned().expect("object");
        let state = |key: &str, flag: &Map<String, Value>| {
            summarise(key, &Value::Object(flag.clone())).state
        };
        let percent = |p: f64| RolloutTarget::Percent { percent: p };

        // The canary: weights change in place, the entries keep their order.
        let key = "checkout_stripe_payment_intents_v2024_11";
        let mut canary = flag_of(key);
        set_rollout_definition(&mut canary, key, &percent(50.0)).expect("50%");
        assert_eq!(
            canary["targeting"],
            serde_json::json!({"fractional": [["on", 50], ["off", 50]]})
        );
        assert!(percent(50.0).reached_by(&state(key, &canary)));
        set_rollout_definition(&mut canary, key, &percent(12.5)).expect("12.5%");
        assert_eq!(
            canary["targeting"],
            serde_json::json!({"fractional": [["on", 12500], ["off", 87500]]})
        );
        set_rollout_definition(&mut canary, key, &percent(100.0)).expect("100%");
        let everyone = state(key, &canary);
        assert_eq!(crate::model::cell_text(FlagKind::Release, &everyone), "ON");
        assert!(percent(100.0).reached_by(&everyone));

        // A custom bucketing expression stays first; the off entry first stays first.
        let mut custom = canary.clone();
        custom.insert(
            "targeting".into(),
            serde_json::json!({"fractional": [{"var": "email"}, ["off", 90], ["on", 10]]}),
        );
        set_rollout_definition(&mut custom, key, &percent(50.0)).expect("50%");
        assert_eq!(
            custom["targeting"],
            serde_json::json!({"fractional": [{"var": "email"}, ["off", 50], ["on", 50]]})
        );

        // The dark launch: the segments' branch stays, the else branch becomes the split.
        let key = "catalog_v2_search_engine";
        let mut dark = flag_of(key);
        let segments = dark["targeting"]["if"][0].clone();
        set_rollout_definition(&mut dark, key, &percent(10.0)).expect("10%");
        assert_eq!(dark["targeting"]["if"][0], segments);
        assert_eq!(dark["targeting"]["if"][1], "on");
        assert_eq!(
            dark["targeting"]["if"][2],
            serde_json::json!({"fractional": [["on", 10], ["off", 90]]})
        );
        let read = state(key, &dark);
        assert_eq!(read.overrides.len(), 1);
        assert!(percent(10.0).reached_by(&read));

        // A default-on switch gets a split made, on first.
        let key = "kill_switch_checkout";
        let mut switch = flag_of(key);
        set_rollout_definition(&mut switch, key, &percent(10.0)).expect("10%");
        assert_eq!(
            switch["targeting"],
            serde_json::json!({"fractional": [["on", 10], ["off", 90]]})
        );

        // Everyone to one variant: the split stays with all the weight on it.
        let key = "recommendations_ab_test_model_v3";
        let mut ab = flag_of(key);
        assert!(set_rollout_definition(&mut ab, key, &percent(10.0)).is_err());
        let choices = rollout_choices_of(&Value::Object(ab.clone()));
        assert!(!choices.percent);
        let target = choices.canonical(&RolloutTarget::Variant {
            variant: "treatment_a".into(),
        });
        assert_eq!(
            target,
            RolloutTarget::Variant {
                variant: "model_v3a".into()
            }
        );
        set_rollout_definition(&mut ab, key, &target).expect("variant");
        assert_eq!(
            ab["targeting"],
            serde_json::json!({"fractional": [["control", 0], ["treatment_a", 100], ["treatment_b", 0]]})
        );
        assert_eq!(ab["defaultVariant"], "treatment_a");
        assert!(target.reached_by(&state(key, &ab)));

        // A killed flag and an unread rule are refused, unchanged.
        let key = "kill_switch_checkout";
        let mut killed = flag_of(key);
        turn_off(&mut killed, key, &note()).expect("kill");
        let before = killed.clone();
        let (kind, message) =
            set_rollout_definition(&mut killed, key, &percent(10.0)).expect_err("refused");
        assert_eq!(kind, ErrorKind::Refused);
        assert!(message.contains("restore it first"), "{message}");
        assert_eq!(killed, before);
        // A switch rolled out to 0% is not "killed": a restore says to step the rollout.
        let mut zero = flag_of(key);
        set_rollout_definition(&mut zero, key, &percent(0.0)).expect("0%");
        assert!(!state(key, &zero).enabled);
        let (kind, message) = turn_on(&mut zero, key).expect_err("refused");
        assert_eq!(kind, ErrorKind::Refused);
        assert!(message.contains("step the rollout"), "{message}");
        let mut odd = flag_of(key);
        odd.insert("targeting".into(), serde_json::json!({"var": "variant"}));
        assert!(set_rollout_definition(&mut odd, key, &percent(10.0)).is_err());
    }

    #[test]
    fn non_boolean_flags_turn_off_as_disabled() {
        let document = parse_document(PROD).expect("seed parses");
        let mut flag = document["flags"]["catalog_per_tenant_pagination_size"]
            .as_object()
            .cloned()
            .expect("object");
        turn_off(&mut flag, "catalog_per_tenant_pagination_size", &note()).expect("off");
        assert_eq!(flag["state"], "DISABLED");
        turn_on(&mut flag, "catalog_per_tenant_pagination_size").expect("on");
        assert_eq!(flag["state"], "ENABLED");
    }

    #[tokio::test]
    async fn a_symlinked_lock_file_is_refused_and_nothing_is_written() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("prod.flagd.json");
        std::fs::write(&path, PROD).expect("write");
        let elsewhere = dir.path().join("elsewhere");
        std::os::unix::fs::symlink(&elsewhere, lock_path(&path)).expect("symlink");
        let env = EnvironmentConfig {
            name: "prod".into(),
            provider: crate::config::ProviderKind::Flagd,
            protected: true,
            file: Some(path.clone()),
            vault_mount: "kv".into(),
            vault_path: "x".into(),
            options: Default::default(),
        };
        let connection = connect(&env, Access::ReadWrite).expect("connect");
        let seen = connection
            .source
            .read_flag("kill_switch_checkout")
            .await
            .expect("read");
        let writer = connection.writer.clone().expect("writable");
        let err = writer
            .set_enabled("kill_switch_checkout", false, &note(), &seen.state)
            .await
            .err()
            .map(|e| e.message)
            .unwrap_or_default();
        assert!(err.contains("is a symbolic link"), "{err}");
        assert!(!elsewhere.exists(), "nothing created through the link");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), PROD);
    }

    #[tokio::test]
    async fn write_keeps_unknown_fields_and_is_atomic() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("prod.flagd.json");
        let mut document = parse_document(PROD).expect("seed parses");
        document["x-team-notes"] = Value::String("keep me".into());
        document["flags"]["kill_switch_checkout"]["x-extra"] = Value::from(42);
        std::fs::write(
            &path,
            serde_json::to_string_pretty(&document).expect("encode"),
        )
        .expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).expect("chmod");

        let env = EnvironmentConfig {
            name: "prod".into(),
            provider: crate::config::ProviderKind::Flagd,
            protected: true,
            file: Some(path.clone()),
            vault_mount: "kv".into(),
            vault_path: "x".into(),
            options: Default::default(),
        };
        let connection = connect(&env, Access::ReadWrite).expect("connect");
        let seen = connection
            .source
            .read_flag("kill_switch_checkout")
            .await
            .expect("read");
        let writer = connection.writer.clone().expect("writable");
        writer
            .set_enabled("kill_switch_checkout", false, &note(), &seen.state)
            .await
            .expect("kill");

        let after: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("json");
        assert_eq!(after["x-team-notes"], "keep me");
        assert_eq!(after["flags"]["kill_switch_checkout"]["x-extra"], 42);
        assert_eq!(
            after["flags"]["kill_switch_checkout"]["defaultVariant"],
            "off"
        );
        assert_eq!(after["$evaluators"], document["$evaluators"]);
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o640, "file mode kept");
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .expect("dir")
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "no temp files left");

        // The state we read before the kill is now stale: a second write with it is refused.
        let stale = writer
            .set_enabled("kill_switch_checkout", true, &note(), &seen.state)
            .await;
        assert_eq!(stale.map_err(|e| e.kind).err(), Some(ErrorKind::Conflict));
        let missing = connection
            .source
            .read_flag("nope")
            .await
            .map_err(|e| e.kind)
            .err();
        assert_eq!(missing, Some(ErrorKind::NotFound));
    }

    #[test]
    fn read_only_connection_has_no_writer() {
        let env = EnvironmentConfig {
            name: "prod".into(),
            provider: crate::config::ProviderKind::Flagd,
            protected: true,
            file: Some(PathBuf::from("x.json")),
            vault_mount: "kv".into(),
            vault_path: "x".into(),
            options: Default::default(),
        };
        let connection = connect(&env, Access::ReadOnly).expect("connect");
        assert!(connection.writer.is_none());
        assert_eq!(
            connection.read_only_reason.as_deref(),
            Some("read-only mode")
        );
    }

    #[test]
    fn malformed_files_say_where() {
        let err = parse_document("{\"flags\": [1,2]}")
            .err()
            .unwrap_or_default();
        assert_eq!(err, "`flags` must be an object");
        let err = parse_document("{\n\"flags\": {,}}")
            .err()
            .unwrap_or_default();
        assert!(err.starts_with("JSON error at line 2"), "{err}");
    }
}

/// Structure-aware fuzzing of the per-flag listing: the seed file mutated at random places
/// either lists or says why not, never panics.
#[cfg(test)]
mod fuzz {
    use super::*;
    use crate::fuzz_support::mutated;
    use proptest::prelude::*;

    fn seed() -> Value {
        serde_json::from_str(include_str!("../../assets/seed/prod.flagd.json")).unwrap_or_default()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        #[test]
        fn mutated_flag_files_list_or_fail_cleanly(document in mutated(seed())) {
            let dir = tempfile::tempdir().expect("tempdir");
            let path = dir.path().join("prod.flagd.json");
            std::fs::write(&path, document.to_string()).expect("write");
            let file = FlagdFile::new("prod", path);
            if let Ok(flags) = file.list() {
                for flag in flags {
                    let _ = crate::model::cell_text(flag.meta.kind, &flag.state);
                }
            }
        }
    }
}
