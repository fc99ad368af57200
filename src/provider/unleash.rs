//! Unleash (open-source server 8.x): states from the client API, writes through the Admin API.
//!
//! Calls per load (one environment): `GET /api/client/features?project={project}` with the
//! backend token, what SDKs poll, one call for every flag's state, type and description
//! (`Unleash-Client-Spec: 5.1.0`, so segments come by id with their definitions). The first
//! load of a session also checks, in the same round trip, that the project and the environment
//! exist (`GET /api/admin/projects`, `GET /api/admin/environments`, read token). Unleash keeps
//! no owners; `metadata` has nothing to add. A segment the bulk read did not name is looked up
//! in `GET /api/admin/segments`.
//!
//! Calls per kill (`kill --yes`): the re-read `GET /api/client/features/{flag}` (backend token,
//! uncached; once by the command, once by the flip's guard, once by the writer right before the
//! write), the tag-type check `GET /api/admin/tag-types/killswitch` (once per session, beside
//! the writer's re-read), the note `PUT /api/admin/features/{flag}/tags`, the toggle
//! `POST /api/admin/projects/{project}/features/{flag}/environments/{env}/on|off`, then the
//! verification of what services see. No per-flag Admin API detail read.
//!
//! - Write: Unleash has no comment field on a toggle, so the note goes first into two flag tags
//!   of type `killswitch`: the note (cut to Unleash's 50 characters) and `audit <id>`. The
//!   toggle event that follows carries the flag's tags, so the note shows on the change in
//!   Unleash's event log.
//! - Conflicts: Unleash offers no conditional toggle (an `If-Match` is ignored), so the writer
//!   re-reads the flag right before the toggle and refuses when its version (a hash of what
//!   the client API serves: `enabled`, strategies and variants) differs from the one the
//!   operator saw. The list and the re-read are the same representation, so they compare.
//! - The bulk list is cached by Unleash for up to about a second after a change: a load within
//!   a few seconds of this session's own write reads the flags it wrote one by one (uncached).
//! - What services see: the list SDKs poll, `GET /api/client/features` with the backend token,
//!   sending the last ETag in `If-None-Match` as SDKs do. Unleash caches that list for up to
//!   about a second after a change, so a change is confirmed only once the list shows it: the
//!   per-flag endpoint is fresh at once and would confirm before any SDK can see the change.
//! - History: `GET /api/admin/search/events?feature=IS:{flag}`.

use std::sync::Arc;

use async_trait::async_trait;
use reqwest::header::{AUTHORIZATION, HeaderName, HeaderValue, IF_NONE_MATCH};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::OnceCell;

use super::http::{self, Method, Policy, Request, StatusCode, display_url, path_segment};
use super::{
    Access, ChangeNote, Connection, ErrorKind, FlagSource, FlagWriter, HistoryEntry, ProviderError,
    ProviderInfo, WriteResult,
};
use crate::config::{EnvironmentConfig, NetworkConfig};
use crate::model::{Flag, FlagKind, FlagMeta, FlagState, Override, Rollout, ServedState};
use crate::rollout::{RolloutChoices, RolloutTarget};
use crate::secret::{Secret, SecretFields};

/// The client specification killswitch reads the client API as (segments sent apart).
const CLIENT_SPEC: &str = "5.1.0";
/// How long after a write the flag is read uncached when listing (Unleash caches the bulk
/// client list for up to about a second).
const WRITE_SETTLE: std::time::Duration = std::time::Duration::from_secs(3);
/// The tag type killswitch creates (once) to hold audit notes.
pub const NOTE_TAG_TYPE: &str = "killswitch";
/// Unleash refuses tag values shorter or longer than this (checked on 8.2.0).
const TAG_MIN: usize = 2;
const TAG_MAX: usize = 50;
/// Environments every open-source Unleash has (adding one is enterprise-only).
const OSS_ENVIRONMENTS: &[&str] = &["development", "production"];

pub fn connect(
    env: &EnvironmentConfig,
    secrets: Option<&SecretFields>,
    access: Access,
    network: &NetworkConfig,
) -> Result<Connection, ProviderError> {
    let config_error = |message: String| {
        ProviderError::new(ErrorKind::Api, format!("{}: unleash: {message}", env.name))
    };
    let empty = SecretFields::new(env.vault_location());
    let secrets = secrets.unwrap_or(&empty);
    let location = if secrets.source.is_empty() {
        env.vault_location()
    } else {
        secrets.source.clone()
    };

    let raw_url = match (env.option("api_url"), secrets.get("api_url")) {
        (Some(url), _) => url.to_string(),
        (None, Some(url)) => url.expose().to_string(),
        (None, None) => {
            return Err(config_error(format!(
                "no API URL: set options.api_url in the config or field `api_url` in {location}"
            )));
        }
    };
    let base = normalise_base_url(&raw_url).map_err(config_error)?;
    let project = env.option("project").unwrap_or("default").to_string();
    if project.is_empty() || project.contains('/') {
        return Err(config_error(format!(
            "options.project `{project}` is not a project id"
        )));
    }
    let unleash_env = match env.option("environment") {
        Some(name) => name.to_string(),
        None => default_environment(&env.name).ok_or_else(|| {
            config_error(format!(
                "killswitch environment `{}` has no Unleash environment: set options.environment (this Unleash has {})",
                env.name,
                OSS_ENVIRONMENTS.join(", ")
            ))
        })?,
    };

    let backend_token = secrets
        .require("backend_token")
        .map_err(|err| ProviderError::new(ErrorKind::Auth, format!("{}: {err}", env.name)))?
        .clone();
    check_header_value(&backend_token, "backend_token", &location, &env.name)?;
    if let Some(token_env) = token_environment(backend_token.expose())
        && token_env != "*"
        && token_env != unleash_env
    {
        return Err(ProviderError::new(
            ErrorKind::Auth,
            format!(
                "{}: field `backend_token` in {location} is a token for Unleash environment `{token_env}`, not `{unleash_env}`: the client API would answer for the wrong environment",
                env.name
            ),
        ));
    }
    let admin_token = secrets.get("admin_token").cloned();
    if let Some(admin) = &admin_token {
        check_header_value(admin, "admin_token", &location, &env.name)?;
    }
    let read_token = match (secrets.get("read_token"), &admin_token) {
        (Some(token), _) => {
            check_header_value(token, "read_token", &location, &env.name)?;
            token.clone()
        }
        (None, Some(admin)) => admin.clone(),
        (None, None) => {
            return Err(ProviderError::new(
                ErrorKind::Auth,
                format!(
                    "{}: {location}: neither `read_token` nor `admin_token` is present: reading the Unleash Admin API needs one of them",
                    env.name
                ),
            ));
        }
    };

    let api = Arc::new(UnleashApi {
        env: env.name.clone(),
        info: ProviderInfo {
            vendor: "unleash",
            location: format!("{base} project {project}, environment {unleash_env}"),
            served_via: "the Unleash client API",
        },
        base,
        project,
        unleash_env,
        http: http::Client::new(network)?,
        read_token,
        backend_token,
        scope: OnceCell::new(),
        polled: std::sync::Mutex::new(None),
        polled_rules: std::sync::Mutex::new(None),
        segment_names: std::sync::Mutex::new(Vec::new()),
        written: std::sync::Mutex::new(Vec::new()),
    });
    Ok(match (access, admin_token) {
        (Access::ReadWrite, Some(admin_token)) => Connection {
            env: env.name.clone(),
            source: api.clone(),
            writer: Some(Arc::new(UnleashWriter {
                api,
                admin_token,
                tag_type: OnceCell::new(),
            })),
            read_only_reason: None,
        },
        (Access::ReadWrite, None) => Connection::read_only(
            api,
            &env.name,
            format!("no admin credential in {location}: read-only"),
        ),
        (Access::ReadOnly, _) => Connection::read_only(api, &env.name, "read-only mode"),
    })
}

/// killswitch's usual environment names to the two Unleash OSS has.
pub fn default_environment(name: &str) -> Option<String> {
    match name.to_ascii_lowercase().as_str() {
        "dev" | "development" => Some("development".into()),
        "prod" | "production" => Some("production".into()),
        _ => None,
    }
}

/// `https://unleash.example/` or `https://unleash.example/api` (as SDKs are configured) both
/// become `https://unleash.example`; a sub-path install keeps its path.
pub fn normalise_base_url(raw: &str) -> Result<String, String> {
    let parsed = url::Url::parse(raw.trim())
        .map_err(|err| format!("API URL {} is not a URL: {err}", display_url(raw)))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!(
            "API URL {} must be http or https",
            display_url(raw)
        ));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(format!(
            "API URL {} must not carry credentials: put tokens in Vault",
            display_url(raw)
        ));
    }
    let mut text = parsed.to_string();
    text.truncate(text.find(['?', '#']).unwrap_or(text.len()));
    let mut text = text.trim_end_matches('/').to_string();
    if text.ends_with("/api") {
        text.truncate(text.len() - "/api".len());
    }
    Ok(text)
}

/// The environment an Unleash API token is scoped to (`project:environment.hash`), when the
/// token has that shape. The prefix is not the secret part.
pub fn token_environment(token: &str) -> Option<&str> {
    let (_, rest) = token.split_once(':')?;
    let (environment, hash) = rest.split_once('.')?;
    (!environment.is_empty() && !hash.is_empty()).then_some(environment)
}

fn check_header_value(
    token: &Secret,
    field: &str,
    location: &str,
    env: &str,
) -> Result<(), ProviderError> {
    HeaderValue::from_str(token.expose())
        .map(|_| ())
        .map_err(|_| {
            ProviderError::new(
                ErrorKind::Auth,
                format!(
                    "{env}: field `{field}` in {location} is not a valid token (not usable in an HTTP header)"
                ),
            )
        })
}

/// One Unleash project and environment, read with the read token.
pub struct UnleashApi {
    env: String,
    info: ProviderInfo,
    base: String,
    project: String,
    unleash_env: String,
    http: http::Client,
    read_token: Secret,
    backend_token: Secret,
    /// Set once the project and environment were found to exist.
    scope: OnceCell<()>,
    /// The last client list polled (ETag, flag -> enabled), for `If-None-Match`.
    polled: std::sync::Mutex<Option<Polled<std::collections::HashMap<String, bool>>>>,
    /// The client list as last polled for rules (rollout verification): its ETag and each
    /// flag's state in this environment.
    polled_rules: std::sync::Mutex<Option<Polled<std::collections::HashMap<String, FlagState>>>>,
    /// Segment names by id, from the last bulk read (the per-flag client read carries ids).
    segment_names: std::sync::Mutex<Vec<Segment>>,
    /// Flags this session wrote, and when: the bulk client list is cached by Unleash for up to
    /// about a second, so a load right after a write reads those flags one by one (uncached).
    written: std::sync::Mutex<Vec<(String, std::time::Instant)>>,
}

/// The client feature list as last polled: its ETag and what was made of it (each flag's
/// `enabled`, or each flag's state).
struct Polled<T> {
    etag: String,
    made: Arc<T>,
}

impl UnleashApi {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn feature_path(&self, key: &str) -> String {
        format!(
            "/api/admin/projects/{}/features/{}",
            path_segment(&self.project),
            path_segment(key)
        )
    }

    /// A request to `path` with `token` (sent as is, Unleash's `Authorization` form); the
    /// client API is asked as a current SDK asks it: segments by id plus their definitions.
    fn request(
        &self,
        what: &str,
        method: Method,
        path: &str,
        token: &Secret,
    ) -> Result<Request, ProviderError> {
        let request =
            Request::new(what, method, self.url(path)).credential(AUTHORIZATION, token, "")?;
        Ok(if path.starts_with("/api/client/") {
            request.header(
                HeaderName::from_static("unleash-client-spec"),
                HeaderValue::from_static(CLIENT_SPEC),
            )
        } else {
            request
        })
    }

    /// A write that must succeed (2xx). Never sent twice: a 429 is reported, not waited out.
    async fn write(
        &self,
        what: &str,
        method: Method,
        path: &str,
        token: &Secret,
        body: Option<&Value>,
    ) -> Result<http::Answer, ProviderError> {
        let mut request = self.request(what, method, path, token)?;
        if let Some(body) = body {
            request = request.json(body);
        }
        self.http.call(&request, Policy::WRITE).await
    }

    /// A read that must succeed, decoded.
    async fn get_json<T: for<'de> Deserialize<'de>>(
        &self,
        what: &str,
        path: &str,
        token: &Secret,
    ) -> Result<T, ProviderError> {
        let request = self.request(what, Method::GET, path, token)?;
        self.http.json(&request, Policy::READ).await
    }

    /// The project and the environment exist (checked once per connection): an unknown project
    /// would otherwise read as an empty list.
    async fn check_scope(&self) -> Result<(), ProviderError> {
        self.scope
            .get_or_try_init(|| async {
                let what = format!("{}: check Unleash project and environment", self.env);
                let (projects, environments) = tokio::join!(
                    self.get_json::<ProjectList>(&what, "/api/admin/projects", &self.read_token),
                    self.get_json::<EnvironmentList>(
                        &what,
                        "/api/admin/environments",
                        &self.read_token
                    )
                );
                let projects = projects?;
                if !projects.projects.iter().any(|p| p.id == self.project) {
                    let known: Vec<&str> =
                        projects.projects.iter().map(|p| p.id.as_str()).collect();
                    return Err(ProviderError::new(
                        ErrorKind::NotFound,
                        format!(
                            "{}: Unleash at {} has no project `{}` (known: {})",
                            self.env,
                            self.base,
                            self.project,
                            known.join(", ")
                        ),
                    ));
                }
                let environments = environments?;
                if !environments
                    .environments
                    .iter()
                    .any(|e| e.name == self.unleash_env && e.enabled)
                {
                    let known: Vec<&str> = environments
                        .environments
                        .iter()
                        .filter(|e| e.enabled)
                        .map(|e| e.name.as_str())
                        .collect();
                    return Err(ProviderError::new(
                        ErrorKind::NotFound,
                        format!(
                            "{}: Unleash at {} has no environment `{}` (available: {}); set options.environment",
                            self.env,
                            self.base,
                            self.unleash_env,
                            known.join(", ")
                        ),
                    ));
                }
                Ok(())
            })
            .await
            .map(|_| ())
    }

    /// One flag as SDKs get it, uncached: `GET /api/client/features/{flag}` (backend token).
    async fn client_feature(&self, key: &str) -> Result<FeatureDetail, ProviderError> {
        let what = format!("{}: read flag `{key}`", self.env);
        let path = format!("/api/client/features/{}", path_segment(key));
        let feature: ClientFeatureFull = self.get_json(&what, &path, &self.backend_token).await?;
        Ok(feature.into_detail(&self.unleash_env))
    }

    /// Every flag of the project as SDKs get it, in one call: `GET /api/client/features?project=`
    /// (backend token), with the segments' definitions.
    async fn client_features(&self) -> Result<(Vec<FeatureDetail>, Vec<Segment>), ProviderError> {
        let what = format!(
            "{}: list flags of Unleash project `{}` from the client API",
            self.env, self.project
        );
        let path = format!(
            "/api/client/features?project={}",
            path_segment(&self.project)
        );
        let list: ClientFeatures = self.get_json(&what, &path, &self.backend_token).await?;
        let details = list
            .features
            .into_iter()
            .filter(|feature| feature.project.as_deref().is_none_or(|p| p == self.project))
            .map(|feature| feature.into_detail(&self.unleash_env))
            .collect();
        Ok((details, list.segments))
    }

    async fn segments(&self) -> Result<Vec<Segment>, ProviderError> {
        let what = format!("{}: read Unleash segments", self.env);
        let list: SegmentList = self
            .get_json(&what, "/api/admin/segments", &self.read_token)
            .await?;
        Ok(list.segments)
    }

    /// Summaries with segment names: from the bulk read, else (a segment this session has not
    /// seen) from the Admin API.
    async fn summarise_with_segments(
        &self,
        details: Vec<FeatureDetail>,
    ) -> Result<Vec<Flag>, ProviderError> {
        let known: Vec<Segment> = self
            .segment_names
            .lock()
            .map(|names| names.clone())
            .unwrap_or_default();
        let unknown = details.iter().any(|detail| {
            detail.environment(&self.unleash_env).is_some_and(|env| {
                env.strategies
                    .iter()
                    .flat_map(|s| &s.segments)
                    .any(|id| !known.iter().any(|segment| segment.id == *id))
            })
        });
        let segments = if unknown {
            let fresh = self.segments().await?;
            if let Ok(mut names) = self.segment_names.lock() {
                names.clone_from(&fresh);
            }
            fresh
        } else {
            known
        };
        details
            .iter()
            .map(|detail| {
                summarise(detail, &self.unleash_env, &segments).ok_or_else(|| {
                    ProviderError::new(
                        ErrorKind::NotFound,
                        format!(
                            "{}: flag `{}` has no Unleash environment `{}` in project `{}`",
                            self.env, detail.name, self.unleash_env, self.project
                        ),
                    )
                })
            })
            .collect()
    }

    /// Flags written less than [`WRITE_SETTLE`] ago.
    fn recently_written(&self) -> Vec<String> {
        let Ok(mut written) = self.written.lock() else {
            return Vec::new();
        };
        written.retain(|(_, at)| at.elapsed() < WRITE_SETTLE);
        written.iter().map(|(key, _)| key.clone()).collect()
    }
}

#[async_trait]
impl FlagSource for UnleashApi {
    fn info(&self) -> &ProviderInfo {
        &self.info
    }

    /// One call for the states: the client API's bulk list, what SDKs poll.
    async fn list_flags(&self) -> Result<Vec<Flag>, ProviderError> {
        // The scope check (first load only) and the list in the same round trip; a scope error
        // wins, it says more than an empty list.
        let (scope, list) = tokio::join!(self.check_scope(), self.client_features());
        scope?;
        let (mut details, segments) = list?;
        if let Ok(mut names) = self.segment_names.lock() {
            *names = segments;
        }
        // Flags this session just wrote: the list may be up to a second behind, read them fresh.
        let recent = self.recently_written();
        if !recent.is_empty() {
            let fresh =
                futures::future::join_all(recent.iter().map(|key| self.client_feature(key))).await;
            for detail in fresh.into_iter().flatten() {
                match details.iter_mut().find(|d| d.name == detail.name) {
                    Some(slot) => *slot = detail,
                    None => details.push(detail),
                }
            }
        }
        self.summarise_with_segments(details).await
    }

    /// The one flag from the client API (uncached, the same representation as the list).
    async fn read_flag(&self, key: &str) -> Result<Flag, ProviderError> {
        let detail = self.client_feature(key).await?;
        let mut flags = self.summarise_with_segments(vec![detail]).await?;
        flags.pop().ok_or_else(|| {
            ProviderError::new(
                ErrorKind::Api,
                format!("{}: flag `{key}` vanished", self.env),
            )
        })
    }

    /// What SDKs get on their next poll: the client list `GET /api/client/features` with the
    /// backend token, as an SDK polls it (with `If-None-Match`: a 304 keeps the last list).
    async fn served(&self, key: &str) -> Result<ServedState, ProviderError> {
        let what = format!(
            "{}: read flag `{key}` from the Unleash client API",
            self.env
        );
        let enabled = self
            .poll_client_list(&what, &self.polled, |list: ClientFeatureList| {
                list.features
                    .into_iter()
                    .map(|feature| (feature.name, feature.enabled))
                    .collect()
            })
            .await?;
        let enabled = enabled.get(key).copied().ok_or_else(|| {
            ProviderError::new(
                ErrorKind::NotFound,
                format!(
                    "{what}: the client list for Unleash environment `{}` has no flag `{key}`",
                    self.unleash_env
                ),
            )
        })?;
        Ok(ServedState {
            enabled,
            value: Some(Value::Bool(enabled)),
        })
    }

    /// The flag's rule as SDKs get it on their next poll: the client list, polled as an SDK
    /// does (with `If-None-Match`: a 304 keeps the last list).
    async fn served_rule(&self, key: &str) -> Result<FlagState, ProviderError> {
        self.poll_rule(key).await
    }

    async fn history(&self, key: &str) -> Result<Vec<HistoryEntry>, ProviderError> {
        let what = format!("{}: read Unleash events of flag `{key}`", self.env);
        let path = format!(
            "/api/admin/search/events?feature=IS:{}&limit=100",
            path_segment(key)
        );
        let events: EventList = self.get_json(&what, &path, &self.read_token).await?;
        Ok(events
            .events
            .iter()
            .filter(|event| {
                event
                    .environment
                    .as_deref()
                    .is_none_or(|env| env == self.unleash_env)
            })
            .filter_map(history_entry)
            .collect())
    }
}

fn history_entry(event: &Event) -> Option<HistoryEntry> {
    let at = chrono::DateTime::parse_from_rfc3339(&event.created_at)
        .ok()?
        .with_timezone(&chrono::Utc);
    let mut what = event.label.clone().unwrap_or_else(|| event.kind.clone());
    if let Some(env) = &event.environment {
        what.push_str(&format!(" in {env}"));
    }
    let tag = event
        .data
        .as_ref()
        .filter(|_| event.kind == "feature-tagged" || event.kind == "feature-untagged");
    let tag_type = tag.and_then(|d| d.get("type")).and_then(Value::as_str);
    let tag_value = tag.and_then(|d| d.get("value")).and_then(Value::as_str);
    let comment = match (tag_type, tag_value) {
        (Some(NOTE_TAG_TYPE), Some(value)) if event.kind == "feature-tagged" => {
            Some(value.to_string())
        }
        (Some(kind), Some(value)) => {
            what.push_str(&format!(" {kind}:{value}"));
            None
        }
        _ => None,
    };
    Some(HistoryEntry {
        at,
        who: event.created_by.clone(),
        what,
        comment,
    })
}

struct UnleashWriter {
    api: Arc<UnleashApi>,
    admin_token: Secret,
    tag_type: OnceCell<()>,
}

impl UnleashWriter {
    /// Creates the `killswitch` tag type when this Unleash does not have it yet.
    async fn ensure_tag_type(&self) -> Result<(), ProviderError> {
        self.tag_type
            .get_or_try_init(|| async {
                let api = &self.api;
                let what = format!("{}: check Unleash tag type `{NOTE_TAG_TYPE}`", api.env);
                let path = format!("/api/admin/tag-types/{NOTE_TAG_TYPE}");
                let check = api.request(&what, Method::GET, &path, &self.admin_token)?;
                let answer = api.http.send(&check, Policy::READ).await?;
                if answer.status.is_success() {
                    return Ok(());
                }
                if answer.status != StatusCode::NOT_FOUND {
                    return Err(http::status_error(
                        &what,
                        check.url(),
                        answer.status,
                        &answer.body,
                    ));
                }
                let what = format!("{}: create Unleash tag type `{NOTE_TAG_TYPE}`", api.env);
                let body = json!({
                    "name": NOTE_TAG_TYPE,
                    "description": "Audit notes of changes made with killswitch",
                });
                let create = api
                    .request(
                        &what,
                        Method::POST,
                        "/api/admin/tag-types",
                        &self.admin_token,
                    )?
                    .json(&body);
                let answer = api.http.send(&create, Policy::WRITE).await?;
                // 409: created meanwhile by another killswitch.
                if answer.status.is_success() || answer.status == StatusCode::CONFLICT {
                    return Ok(());
                }
                // Two creations racing get a 500 (a duplicate key in Unleash's database), not a
                // 409: the tag type exists if it can be read now.
                let recheck = api.http.send(&check, Policy::READ).await;
                if recheck.is_ok_and(|again| again.status.is_success()) {
                    return Ok(());
                }
                Err(http::status_error(
                    &what,
                    create.url(),
                    answer.status,
                    &answer.body,
                ))
            })
            .await
            .map(|_| ())
    }
}

#[async_trait]
impl FlagWriter for UnleashWriter {
    async fn set_enabled(
        &self,
        key: &str,
        enabled: bool,
        note: &ChangeNote,
        seen: &FlagState,
    ) -> Result<WriteResult, ProviderError> {
        let api = &self.api;
        // No conditional toggle in Unleash: compare versions right before writing. The tag type
        // the note needs is checked in the same round trip (creating it is harmless if the
        // version check then refuses the write). So is the client list SDKs poll, as an SDK
        // polled it just before the change: the verification then asks with its ETag in
        // `If-None-Match`, and Unleash answers 304 until SDKs can get the change. (A list
        // computed fresh can carry the old revision's ETag: without this baseline it would
        // confirm while every SDK still gets 304.) Its failure only weakens the baseline.
        let (detail, tag_type, _baseline) = tokio::join!(
            api.client_feature(key),
            self.ensure_tag_type(),
            api.served(key)
        );
        let detail = detail?;
        let current = detail.environment(&api.unleash_env).ok_or_else(|| {
            ProviderError::new(
                ErrorKind::NotFound,
                format!(
                    "{}: flag `{key}` has no Unleash environment `{}`",
                    api.env, api.unleash_env
                ),
            )
        })?;
        let version = environment_version(current);
        if let Some(expected) = &seen.version
            && *expected != version
        {
            return Err(ProviderError::new(
                ErrorKind::Conflict,
                format!(
                    "{}: flag `{key}` changed in Unleash ({}) since it was read; nothing was changed",
                    api.env, api.unleash_env
                ),
            ));
        }

        // The note first, like the audit log: the toggle event then carries it in its tags.
        tag_type?;
        let what = format!("{}: attach the note to flag `{key}` as tags", api.env);
        let path = format!("/api/admin/features/{}/tags", path_segment(key));
        let body = json!({
            "addedTags": note_tags(note)
                .into_iter()
                .map(|value| json!({"type": NOTE_TAG_TYPE, "value": value}))
                .collect::<Vec<_>>(),
            "removedTags": [],
        });
        let tags = api
            .request(&what, Method::PUT, &path, &self.admin_token)?
            .json(&body);
        api.http.call(&tags, Policy::WRITE).await.map_err(|err| {
            ProviderError::new(err.kind, format!("{}; nothing was changed", err.message))
        })?;

        let action = if enabled { "on" } else { "off" };
        let what = format!(
            "{}: turn flag `{key}` {} in Unleash environment {}",
            api.env,
            action.to_ascii_uppercase(),
            api.unleash_env
        );
        let path = format!(
            "{}/environments/{}/{action}",
            api.feature_path(key),
            path_segment(&api.unleash_env)
        );
        if let Ok(mut written) = api.written.lock() {
            written.push((key.to_string(), std::time::Instant::now()));
        }
        api.write(&what, Method::POST, &path, &self.admin_token, None)
            .await?;
        Ok(WriteResult::Applied)
    }

    async fn set_rollout(
        &self,
        key: &str,
        target: &RolloutTarget,
        note: &ChangeNote,
        seen: &FlagState,
    ) -> Result<WriteResult, ProviderError> {
        self.write_rollout(key, target, note, seen).await
    }

    async fn rollout_choices(&self, key: &str) -> Result<Option<RolloutChoices>, ProviderError> {
        let detail = self.api.client_feature(key).await?;
        let env = detail.environment(&self.api.unleash_env).ok_or_else(|| {
            ProviderError::new(
                ErrorKind::NotFound,
                format!(
                    "{}: flag `{key}` has no Unleash environment `{}`",
                    self.api.env, self.api.unleash_env
                ),
            )
        })?;
        Ok(Some(rollout_choices_of(env)))
    }
}

/// The tag values that carry a note: the note itself (cut to Unleash's 50 characters, one
/// line) and `audit <id>` to find the full record in killswitch's log.
pub fn note_tags(note: &ChangeNote) -> Vec<String> {
    vec![
        tag_value(&note.note),
        tag_value(&format!("audit {}", note.audit_id)),
    ]
}

fn tag_value(text: &str) -> String {
    let one_line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let mut value: String = if one_line.chars().count() > TAG_MAX {
        let mut cut: String = one_line.chars().take(TAG_MAX - 1).collect();
        cut = cut.trim_end().to_string();
        cut.push('…');
        cut
    } else {
        one_line
    };
    while value.chars().count() < TAG_MIN {
        value.push('.');
    }
    value
}

// ---- Unleash JSON (private) ----------------------------------------------------------------

#[derive(Deserialize)]
struct ProjectList {
    #[serde(default)]
    projects: Vec<ProjectSummary>,
}

#[derive(Deserialize)]
struct ProjectSummary {
    id: String,
}

#[derive(Deserialize)]
struct EnvironmentList {
    #[serde(default)]
    environments: Vec<EnvironmentSummary>,
}

#[derive(Deserialize)]
struct EnvironmentSummary {
    name: String,
    #[serde(default = "yes")]
    enabled: bool,
}

fn yes() -> bool {
    true
}

/// `GET /api/client/features`: the flags of the token's environment, as SDKs get them.
#[derive(Deserialize)]
struct ClientFeatures {
    #[serde(default)]
    features: Vec<ClientFeatureFull>,
    #[serde(default)]
    segments: Vec<Segment>,
}

/// One flag in the client API: the environment is the token's.
#[derive(Deserialize)]
struct ClientFeatureFull {
    name: String,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    project: Option<String>,
    #[serde(default)]
    enabled: bool,
    #[serde(default)]
    strategies: Vec<Strategy>,
    #[serde(default)]
    variants: Vec<Variant>,
}

impl ClientFeatureFull {
    /// The flag with its one environment, named as killswitch maps it.
    fn into_detail(self, unleash_env: &str) -> FeatureDetail {
        FeatureDetail {
            name: self.name,
            kind: self.kind,
            description: self.description,
            environments: vec![FeatureEnvironment {
                name: unleash_env.to_string(),
                enabled: self.enabled,
                strategies: self.strategies,
                variants: self.variants,
            }],
        }
    }
}

#[derive(Deserialize)]
struct FeatureDetail {
    name: String,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    environments: Vec<FeatureEnvironment>,
}

impl FeatureDetail {
    fn environment(&self, name: &str) -> Option<&FeatureEnvironment> {
        self.environments.iter().find(|env| env.name == name)
    }
}

#[derive(Deserialize)]
struct FeatureEnvironment {
    name: String,
    #[serde(default)]
    enabled: bool,
    #[serde(default)]
    strategies: Vec<Strategy>,
    /// Legacy environment-level variants (before strategy variants).
    #[serde(default)]
    variants: Vec<Variant>,
}

#[derive(Deserialize)]
struct Strategy {
    #[serde(default)]
    id: Option<String>,
    name: String,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    disabled: Option<bool>,
    #[serde(default)]
    parameters: serde_json::Map<String, Value>,
    #[serde(default)]
    constraints: Vec<Constraint>,
    #[serde(default)]
    segments: Vec<i64>,
    #[serde(default)]
    variants: Vec<Variant>,
}

#[derive(Deserialize)]
struct Constraint {
    #[serde(rename = "contextName")]
    context_name: String,
    operator: String,
    #[serde(default)]
    values: Vec<String>,
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    inverted: bool,
}

#[derive(Deserialize)]
struct Variant {
    name: String,
    #[serde(default)]
    weight: f64,
}

#[derive(Deserialize)]
struct SegmentList {
    #[serde(default)]
    segments: Vec<Segment>,
}

#[derive(Deserialize, Clone)]
struct Segment {
    id: i64,
    name: String,
}

#[derive(Deserialize)]
struct ClientFeatureList {
    #[serde(default)]
    features: Vec<ClientFeature>,
}

#[derive(Deserialize)]
struct ClientFeature {
    name: String,
    enabled: bool,
}

#[derive(Deserialize)]
struct EventList {
    #[serde(default)]
    events: Vec<Event>,
}

#[derive(Deserialize)]
struct Event {
    #[serde(rename = "type")]
    kind: String,
    #[serde(rename = "createdAt")]
    created_at: String,
    #[serde(default, rename = "createdBy")]
    created_by: Option<String>,
    #[serde(default)]
    environment: Option<String>,
    #[serde(default)]
    label: Option<String>,
    #[serde(default)]
    data: Option<Value>,
}

// ---- summarising ---------------------------------------------------------------------------

/// A hash of what decides serving in one environment: changes whenever the flag does there.
fn environment_version(env: &FeatureEnvironment) -> String {
    let strategies: Vec<Value> = env
        .strategies
        .iter()
        .map(|s| {
            json!({
                "id": s.id,
                "name": s.name,
                "disabled": s.disabled,
                "parameters": s.parameters,
                "constraints": s.constraints.iter().map(|c| json!([c.context_name, c.operator, c.values, c.value, c.inverted])).collect::<Vec<_>>(),
                "segments": s.segments,
                "variants": s.variants.iter().map(|v| json!([v.name, v.weight])).collect::<Vec<_>>(),
            })
        })
        .collect();
    let variants: Vec<Value> = env
        .variants
        .iter()
        .map(|v| json!([v.name, v.weight]))
        .collect();
    let canonical = json!({"enabled": env.enabled, "strategies": strategies, "variants": variants});
    http::content_hash(&canonical.to_string())
}

fn rollout_percent(strategy: &Strategy) -> Option<f64> {
    if strategy.name != "flexibleRollout" && strategy.name != "gradualRolloutRandom" {
        return None;
    }
    let raw = strategy
        .parameters
        .get("rollout")
        .or_else(|| strategy.parameters.get("percentage"))?;
    let percent = match raw {
        Value::String(text) => text.trim().parse::<f64>().ok()?,
        Value::Number(number) => number.as_f64()?,
        _ => return None,
    };
    // Unleash does not range-check the string.
    Some(percent.clamp(0.0, 100.0))
}

/// How a strategy spreads its variants (weights out of 1000).
fn split_of(variants: &[Variant]) -> Option<Rollout> {
    if variants.len() < 2 {
        return None;
    }
    // Unleash returns variants in its own order (by name): show them lightest first, so an
    // even three-way split reads "33/33/34" whatever the names.
    let mut weights: Vec<(String, f64)> = variants
        .iter()
        .map(|v| (v.name.clone(), v.weight))
        .collect();
    weights.sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
    match Rollout::from_weights(&weights) {
        Rollout::Everyone => None,
        split => Some(split),
    }
}

fn constraint_text(constraint: &Constraint) -> String {
    let values = if constraint.values.is_empty() {
        constraint.value.clone().unwrap_or_default()
    } else {
        constraint.values.join(",")
    };
    let not = if constraint.inverted { "NOT " } else { "" };
    format!(
        "{} {not}{} {values}",
        constraint.context_name, constraint.operator
    )
}

/// One flag in one Unleash environment as the domain model; `None` when the flag does not
/// have that environment.
fn summarise(detail: &FeatureDetail, unleash_env: &str, segments: &[Segment]) -> Option<Flag> {
    let env = detail.environment(unleash_env)?;
    let vendor_kind = detail.kind.as_deref().map(FlagKind::from_label);
    let meta = FlagMeta {
        key: detail.name.clone(),
        kind: FlagKind::classify(&detail.name, vendor_kind),
        description: detail
            .description
            .clone()
            .filter(|text| !text.trim().is_empty()),
        ..FlagMeta::default()
    };
    Some(Flag {
        meta: std::sync::Arc::new(meta),
        state: summarise_environment(env, segments),
    })
}

fn summarise_environment(env: &FeatureEnvironment, segments: &[Segment]) -> FlagState {
    let version = Some(environment_version(env));
    let active: Vec<&Strategy> = env
        .strategies
        .iter()
        .filter(|s| s.disabled != Some(true))
        .collect();
    let env_split = split_of(&env.variants);
    if !env.enabled {
        return FlagState {
            enabled: false,
            value: Some(Value::Bool(false)),
            rollout: Rollout::Everyone,
            overrides: Vec::new(),
            version,
        };
    }
    // No strategy at all: Unleash serves the flag to everyone.
    if active.is_empty() {
        return FlagState {
            enabled: true,
            value: Some(Value::Bool(true)),
            rollout: env_split.unwrap_or_default(),
            overrides: Vec::new(),
            version,
        };
    }
    let mut everyone: Option<Rollout> = None;
    let mut best_percent: Option<f64> = None;
    let mut overrides = Vec::new();
    for strategy in active {
        let targeted = !strategy.constraints.is_empty() || !strategy.segments.is_empty();
        let percent = rollout_percent(strategy);
        let split = split_of(&strategy.variants).or_else(|| env_split.clone());
        let known_everyone = strategy.name == "default" || percent.is_some();
        if !targeted && known_everyone {
            match percent {
                Some(p) if p < 100.0 => {
                    best_percent = Some(best_percent.map_or(p, |b: f64| b.max(p)));
                }
                _ => {
                    // One variant with weight: everyone gets it (what everyone-to-variant leaves
                    // on a flag with a single variant).
                    let listed = if strategy.variants.is_empty() {
                        &env.variants
                    } else {
                        &strategy.variants
                    };
                    let single = match listed.as_slice() {
                        [only] if only.weight > 0.0 => Some(Rollout::Split {
                            variants: vec![crate::model::VariantWeight {
                                variant: only.name.clone(),
                                percent: 100.0,
                            }],
                        }),
                        _ => None,
                    };
                    everyone = Some(split.or(single).unwrap_or_default());
                }
            }
            continue;
        }
        let mut target: Vec<String> = strategy
            .segments
            .iter()
            .map(|id| {
                segments
                    .iter()
                    .find(|s| s.id == *id)
                    .map(|s| format!("segment {}", s.name))
                    .unwrap_or_else(|| format!("segment #{id}"))
            })
            .collect();
        target.extend(strategy.constraints.iter().map(constraint_text));
        if !known_everyone {
            // userWithId, remoteAddress, custom strategies: targeted by their own parameters.
            target.insert(0, strategy.title.clone().unwrap_or(strategy.name.clone()));
        }
        let rollout = match (percent, split) {
            (Some(p), _) if p < 100.0 => Rollout::Percentage { percent: p },
            (_, Some(split)) => split,
            _ => Rollout::Everyone,
        };
        overrides.push(Override {
            target: target.join(" & "),
            kind: crate::model::OverrideKind::Segment,
            enabled: true,
            value: None,
            rollout,
        });
    }
    let (value, rollout) = match (everyone, best_percent) {
        // Every weight on one variant (everyone sent to it): everyone gets that variant.
        (Some(Rollout::Split { variants }), _)
            if variants.iter().filter(|v| v.percent > 0.0).count() == 1 =>
        {
            let sole = variants
                .iter()
                .find(|v| v.percent > 0.0)
                .map(|v| v.variant.clone())
                .unwrap_or_default();
            (Value::String(sole), Rollout::Everyone)
        }
        (Some(rollout), _) => (Value::Bool(true), rollout),
        (None, Some(percent)) => (Value::Bool(false), Rollout::Percentage { percent }),
        // On, but only for targeted strategies: everyone else gets false.
        (None, None) => (Value::Bool(false), Rollout::Everyone),
    };
    FlagState {
        enabled: true,
        value: Some(value),
        rollout,
        overrides,
        version,
    }
}

// ---- rollouts -------------------------------------------------------------------------------
//
// The default audience is whoever no targeted strategy covers: the environment's one active
// strategy without constraints or segments. A rollout changes its `rollout` parameter with a
// JSON Patch of that one field (`PATCH .../strategies/{id}`), so stickiness, groupId (the hash
// seed: changing it reshuffles users), constraints, segments and variants stay as they are.
// - No such strategy (the flag is on for segments only, or has no strategy at all): one is
//   added, `flexibleRollout` with stickiness `default` and groupId the flag's name, as the
//   Unleash UI adds it.
// - A `default` strategy (or another untargeted kind) serving everyone: refused, naming it.
//   Turning it into a flexibleRollout is a restructure an on-call engineer should see done in
//   Unleash, not have done silently.
// - Several untargeted strategies: refused, naming them (which one is "the" rollout?).
// - The environment switched off: refused (a rollout sets who gets the flag while it is on).
// Everyone to one variant: the strategy's variants (or, without any, the environment's
// variants) get that variant as the one `variable` variant and every other as `fix` with
// weight 0, and the strategy's rollout goes to 100.

/// The strategy that decides the default audience: active, no constraints, no segments.
fn default_strategies(strategies: &[Strategy]) -> Vec<&Strategy> {
    strategies
        .iter()
        .filter(|s| s.disabled != Some(true) && s.constraints.is_empty() && s.segments.is_empty())
        .collect()
}

fn rollout_choices_of(env: &FeatureEnvironment) -> RolloutChoices {
    let defaults = default_strategies(&env.strategies);
    let variants: Vec<String> = match defaults.first() {
        Some(strategy) if !strategy.variants.is_empty() => {
            strategy.variants.iter().map(|v| v.name.clone()).collect()
        }
        _ => env.variants.iter().map(|v| v.name.clone()).collect(),
    };
    RolloutChoices {
        // A share of a strategy that splits across variants is not one on/off percentage.
        percent: defaults.first().is_none_or(|s| s.variants.len() < 2),
        // Its SDKs (the Yggdrasil engine) read `rollout` as a whole number: "12.5" serves nobody.
        whole_percent_only: true,
        variants,
        values: Vec::new(),
    }
}

/// "50", "12.5": the rollout parameter as Unleash keeps it (a string).
fn rollout_parameter(percent: f64) -> String {
    crate::rollout::percent_arg(percent)
}

/// The variants with `chosen` getting everyone: the one `variable` variant, every other `fix`
/// at 0. Other fields (payload, stickiness) are sent back as they were.
fn everyone_to(variants: &[Value], chosen: &str) -> Vec<Value> {
    variants
        .iter()
        .map(|variant| {
            let mut variant = variant.clone();
            if let Some(object) = variant.as_object_mut() {
                let this = object.get("name").and_then(Value::as_str) == Some(chosen);
                object.insert(
                    "weightType".into(),
                    Value::String(if this { "variable" } else { "fix" }.into()),
                );
                object.insert("weight".into(), Value::from(if this { 1000 } else { 0 }));
            }
            variant
        })
        .collect()
}

impl UnleashApi {
    /// The client list `GET /api/client/features` with the backend token, as an SDK polls it:
    /// with `If-None-Match` and the last ETag, a 304 keeps what was made of the last list;
    /// otherwise the new list is decoded, `make` turns it into what the caller keeps, and that
    /// is remembered with its ETag in `cache`.
    async fn poll_client_list<D: serde::de::DeserializeOwned, T>(
        &self,
        what: &str,
        cache: &std::sync::Mutex<Option<Polled<T>>>,
        make: impl FnOnce(D) -> T,
    ) -> Result<Arc<T>, ProviderError> {
        let last = {
            let slot = cache
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            slot.as_ref()
                .map(|polled| (polled.etag.clone(), polled.made.clone()))
        };
        let mut request = Request::get(what, self.url("/api/client/features")).credential(
            AUTHORIZATION,
            &self.backend_token,
            "",
        )?;
        if let Some((etag, _)) = &last
            && let Ok(etag) = HeaderValue::from_str(etag)
        {
            request = request.header(IF_NONE_MATCH, etag);
        }
        let answer = self.http.send(&request, Policy::READ).await?;
        if let (StatusCode::NOT_MODIFIED, Some((_, made))) = (answer.status, last) {
            return Ok(made);
        }
        let etag = answer.header("etag").map(str::to_string);
        let list: D = answer.success(&request)?.decode(&request)?;
        let made = Arc::new(make(list));
        if let Some(etag) = etag {
            let polled = Polled {
                etag,
                made: made.clone(),
            };
            *cache
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(polled);
        }
        Ok(made)
    }

    /// [`FlagSource::served_rule`]: the client list SDKs poll, with the last ETag.
    async fn poll_rule(&self, key: &str) -> Result<FlagState, ProviderError> {
        let what = format!(
            "{}: read the rule of flag `{key}` from the Unleash client API",
            self.env
        );
        // The same request as `served`: the list as an SDK polls it.
        let states = self
            .poll_client_list(&what, &self.polled_rules, |list: ClientFeatures| {
                let segments = list.segments;
                list.features
                    .into_iter()
                    .filter(|feature| feature.project.as_deref().is_none_or(|p| p == self.project))
                    .filter_map(|feature| {
                        let detail = feature.into_detail(&self.unleash_env);
                        let flag = summarise(&detail, &self.unleash_env, &segments)?;
                        Some((detail.name, flag.state))
                    })
                    .collect()
            })
            .await?;
        states.get(key).cloned().ok_or_else(|| {
            ProviderError::new(
                ErrorKind::NotFound,
                format!(
                    "{what}: the client list for Unleash environment `{}` has no flag `{key}`",
                    self.unleash_env
                ),
            )
        })
    }
}

impl UnleashWriter {
    /// [`FlagWriter::set_rollout`] for Unleash (see the section's comment).
    async fn write_rollout(
        &self,
        key: &str,
        target: &RolloutTarget,
        note: &ChangeNote,
        seen: &FlagState,
    ) -> Result<WriteResult, ProviderError> {
        let api = &self.api;
        // As for a toggle: the version compared right before writing, the tag type checked and
        // the rule list polled (the verification's ETag baseline) in the same round trip.
        let (detail, tag_type, _baseline) = tokio::join!(
            api.client_feature(key),
            self.ensure_tag_type(),
            api.poll_rule(key)
        );
        let detail = detail?;
        let current = detail.environment(&api.unleash_env).ok_or_else(|| {
            ProviderError::new(
                ErrorKind::NotFound,
                format!(
                    "{}: flag `{key}` has no Unleash environment `{}`",
                    api.env, api.unleash_env
                ),
            )
        })?;
        if let Some(expected) = &seen.version
            && *expected != environment_version(current)
        {
            return Err(ProviderError::new(
                ErrorKind::Conflict,
                format!(
                    "{}: flag `{key}` changed in Unleash ({}) since it was read; nothing was changed",
                    api.env, api.unleash_env
                ),
            ));
        }
        let refused = |message: String| {
            ProviderError::new(
                ErrorKind::Refused,
                format!(
                    "{}: flag `{key}` in Unleash environment {}: {message}; nothing was changed",
                    api.env, api.unleash_env
                ),
            )
        };
        if !current.enabled {
            return Err(refused(
                "the environment is switched off, and a rollout sets who gets the flag while it is on: turn it on first (`killswitch restore`), then step the rollout".into(),
            ));
        }
        // The client API carries no strategy ids: the Admin API's list of this environment's
        // strategies does (the same strategies, read right after the version check).
        let strategies_path = format!(
            "{}/environments/{}/strategies",
            api.feature_path(key),
            path_segment(&api.unleash_env)
        );
        let listed: Vec<Strategy> = api
            .get_json(
                &format!("{}: read the strategies of flag `{key}`", api.env),
                &strategies_path,
                &self.admin_token,
            )
            .await?;
        let defaults = default_strategies(&listed);
        let strategy = match defaults.as_slice() {
            [] => None,
            [one] if one.name == "flexibleRollout" => Some(*one),
            [one] => {
                return Err(refused(format!(
                    "everyone gets it through a `{}` strategy{}, which has no rollout percentage; killswitch changes the rollout of a flexibleRollout strategy and will not restructure this one: change it to a gradual rollout in Unleash",
                    one.name,
                    one.title
                        .as_deref()
                        .map(|t| format!(" (\"{t}\")"))
                        .unwrap_or_default()
                )));
            }
            many => {
                let names: Vec<String> = many
                    .iter()
                    .map(|s| s.title.clone().unwrap_or_else(|| s.name.clone()))
                    .collect();
                return Err(refused(format!(
                    "{} strategies without constraints or segments ({}) all decide the default audience: killswitch cannot tell which rollout to change",
                    many.len(),
                    names.join(", ")
                )));
            }
        };
        let strategy_id = match strategy {
            Some(strategy) => Some(strategy.id.clone().ok_or_else(|| {
                ProviderError::new(
                    ErrorKind::Api,
                    format!(
                        "{}: the Unleash Admin API gave flag `{key}`'s strategy no id",
                        api.env
                    ),
                )
            })?),
            None => None,
        };
        // What is written: a patch of the strategy, a new strategy, and/or the env's variants.
        let mut patch: Vec<Value> = Vec::new();
        let mut environment_variants: Option<Vec<Value>> = None;
        let percent = match target {
            RolloutTarget::Percent { percent } if (percent - percent.round()).abs() > 1e-9 => {
                return Err(refused(format!(
                    "{}% is not a whole percentage, and Unleash's SDKs read only whole ones (\"12.5\" serves nobody)",
                    crate::rollout::percent_arg(*percent)
                )));
            }
            RolloutTarget::Percent { percent } => *percent,
            RolloutTarget::Variant { variant } => {
                let on_strategy = strategy.is_some_and(|s| !s.variants.is_empty());
                let listed: Vec<&Variant> = if on_strategy {
                    strategy
                        .map(|s| s.variants.iter().collect())
                        .unwrap_or_default()
                } else {
                    current.variants.iter().collect()
                };
                if !listed.iter().any(|v| v.name == *variant) {
                    return Err(refused(format!(
                        "it has no variant `{variant}` (variants: {})",
                        listed
                            .iter()
                            .map(|v| v.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )));
                }
                // The variants as Unleash holds them (payloads and stickiness included).
                let raw = self.raw_variants(key, strategy_id.as_deref()).await?;
                let weighted = everyone_to(&raw, variant);
                if on_strategy {
                    patch.push(json!({"op": "replace", "path": "/variants", "value": weighted}));
                } else {
                    environment_variants = Some(weighted);
                }
                100.0
            }
        };

        // The note first, like the audit log: the change's event then carries it in its tags.
        tag_type?;
        let what = format!("{}: attach the note to flag `{key}` as tags", api.env);
        let path = format!("/api/admin/features/{}/tags", path_segment(key));
        let body = json!({
            "addedTags": note_tags(note)
                .into_iter()
                .map(|value| json!({"type": NOTE_TAG_TYPE, "value": value}))
                .collect::<Vec<_>>(),
            "removedTags": [],
        });
        api.write(&what, Method::PUT, &path, &self.admin_token, Some(&body))
            .await
            .map_err(|err| {
                ProviderError::new(err.kind, format!("{}; nothing was changed", err.message))
            })?;
        if let Ok(mut written) = api.written.lock() {
            written.push((key.to_string(), std::time::Instant::now()));
        }

        let rollout = rollout_parameter(percent);
        match &strategy_id {
            Some(id) => {
                patch.insert(
                    0,
                    json!({"op": "replace", "path": "/parameters/rollout", "value": rollout}),
                );
                let what = format!(
                    "{}: set the rollout of flag `{key}` in Unleash environment {} to {rollout}%",
                    api.env, api.unleash_env
                );
                api.write(
                    &what,
                    Method::PATCH,
                    &format!("{strategies_path}/{}", path_segment(id)),
                    &self.admin_token,
                    Some(&Value::Array(patch)),
                )
                .await?;
            }
            None => {
                let what = format!(
                    "{}: add a {rollout}% gradual rollout to flag `{key}` in Unleash environment {}",
                    api.env, api.unleash_env
                );
                let body = json!({
                    "name": "flexibleRollout",
                    "title": "killswitch rollout",
                    "parameters": {"rollout": rollout, "stickiness": "default", "groupId": key},
                    "constraints": [],
                    "segments": [],
                });
                api.write(
                    &what,
                    Method::POST,
                    &strategies_path,
                    &self.admin_token,
                    Some(&body),
                )
                .await?;
            }
        }
        if let Some(variants) = environment_variants {
            let what = format!(
                "{}: send everyone in Unleash environment {} to one variant of flag `{key}`",
                api.env, api.unleash_env
            );
            let path = format!(
                "{}/environments/{}/variants",
                api.feature_path(key),
                path_segment(&api.unleash_env)
            );
            api.write(
                &what,
                Method::PUT,
                &path,
                &self.admin_token,
                Some(&Value::Array(variants)),
            )
            .await?;
        }
        Ok(WriteResult::Applied)
    }

    /// The variants of the strategy `id` (or, without one, of the environment) as the Admin API
    /// holds them: every field, so a write sends back what it does not change.
    async fn raw_variants(&self, key: &str, id: Option<&str>) -> Result<Vec<Value>, ProviderError> {
        let api = &self.api;
        let base = format!(
            "{}/environments/{}",
            api.feature_path(key),
            path_segment(&api.unleash_env)
        );
        let what = format!("{}: read the variants of flag `{key}`", api.env);
        match id {
            Some(id) => {
                let strategy: Value = api
                    .get_json(
                        &what,
                        &format!("{base}/strategies/{}", path_segment(id)),
                        &self.admin_token,
                    )
                    .await?;
                Ok(strategy["variants"].as_array().cloned().unwrap_or_default())
            }
            None => {
                let environment: Value = api.get_json(&what, &base, &self.admin_token).await?;
                Ok(environment["variants"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::cell_text;

    fn detail(json: &str) -> FeatureDetail {
        serde_json::from_str(json).expect("detail json")
    }

    #[test]
    fn rollout_split_and_segments_summarise_like_the_dashboard_words_them() {
        let flag = detail(
            r#"{"name":"search_v2","type":"release","environments":[
            {"name":"development","enabled":false,"strategies":[]},
            {"name":"production","enabled":true,"strategies":[{"id":"1","name":"flexibleRollout",
             "parameters":{"rollout":"10","stickiness":"default","groupId":"search_v2"},
             "constraints":[],"segments":[],"variants":[],"disabled":false}]}]}"#,
        );
        let prod = summarise(&flag, "production", &[]).expect("production");
        assert_eq!(cell_text(prod.meta.kind, &prod.state), "ON 10%");
        let dev = summarise(&flag, "development", &[]).expect("development");
        assert_eq!(cell_text(dev.meta.kind, &dev.state), "OFF");
        assert!(summarise(&flag, "staging", &[]).is_none());
        assert_ne!(prod.state.version, dev.state.version);

        let ab = detail(
            r#"{"name":"checkout_ab","type":"experiment","environments":[
            {"name":"production","enabled":true,"strategies":[{"name":"flexibleRollout",
             "parameters":{"rollout":"100"},"variants":[{"name":"a","weight":333},
             {"name":"b","weight":333},{"name":"control","weight":334}]}]}]}"#,
        );
        let ab = summarise(&ab, "production", &[]).expect("production");
        assert_eq!(cell_text(ab.meta.kind, &ab.state), "ON 33/33/34");

        let targeted = detail(
            r#"{"name":"beta","type":"kill-switch","environments":[
            {"name":"production","enabled":true,"strategies":[
             {"name":"flexibleRollout","parameters":{"rollout":"100"},"segments":[7]},
             {"name":"flexibleRollout","parameters":{"rollout":"25"},
              "constraints":[{"contextName":"tenant","operator":"IN","values":["acme","globex"]}]},
             {"name":"userWithId","parameters":{"userIds":"1,2"}}]}]}"#,
        );
        let segments = [Segment {
            id: 7,
            name: "beta_users".into(),
        }];
        let beta = summarise(&targeted, "production", &segments).expect("production");
        assert_eq!(beta.meta.kind, FlagKind::KillSwitch);
        let texts: Vec<String> = beta.state.overrides.iter().map(Override::summary).collect();
        assert_eq!(
            texts,
            vec![
                "ON (segment beta_users)",
                "25% (tenant IN acme,globex)",
                "ON (userWithId)"
            ]
        );
        assert_eq!(beta.state.value, Some(Value::Bool(false)));
    }

    #[test]
    fn everyone_sent_to_one_variant_reads_as_that_variant() {
        let flag = detail(
            r#"{"name":"ab","type":"experiment","environments":[
            {"name":"production","enabled":true,"strategies":[{"name":"flexibleRollout",
             "parameters":{"rollout":"100"},"variants":[{"name":"a","weight":0},
             {"name":"b","weight":1000},{"name":"control","weight":0}]}]}]}"#,
        );
        let state = summarise(&flag, "production", &[])
            .expect("production")
            .state;
        assert_eq!(state.value, Some(Value::String("b".into())));
        assert_eq!(state.rollout, Rollout::Everyone);
        let target = RolloutTarget::Variant {
            variant: "b".into(),
        };
        assert!(target.reached_by(&state));
        let single = detail(
            r#"{"name":"one","environments":[{"name":"production","enabled":true,
             "strategies":[{"name":"flexibleRollout","parameters":{"rollout":"100"},
             "variants":[{"name":"only","weight":1000}]}]}]}"#,
        );
        let state = summarise(&single, "production", &[])
            .expect("production")
            .state;
        assert!(
            RolloutTarget::Variant {
                variant: "only".into()
            }
            .reached_by(&state)
        );
        // A canary's share is still a percentage.
        let canary = detail(
            r#"{"name":"c","environments":[{"name":"production","enabled":true,
             "strategies":[{"name":"flexibleRollout","parameters":{"rollout":"10"}}]}]}"#,
        );
        let state = summarise(&canary, "production", &[])
            .expect("production")
            .state;
        assert!(RolloutTarget::Percent { percent: 10.0 }.reached_by(&state));
        assert_eq!(rollout_parameter(12.0), "12");
    }

    #[test]
    fn disabled_strategies_and_odd_rollouts_are_read_safely() {
        let flag = detail(
            r#"{"name":"x","environments":[{"name":"production","enabled":true,"strategies":[
             {"name":"flexibleRollout","parameters":{"rollout":"250"}},
             {"name":"flexibleRollout","parameters":{"rollout":"5"},"disabled":true}]}]}"#,
        );
        let state = summarise(&flag, "production", &[])
            .expect("production")
            .state;
        assert_eq!(state.rollout, Rollout::Everyone, "250 clamps to 100");
        assert_eq!(state.value, Some(Value::Bool(true)));
        let odd = detail(
            r#"{"name":"y","environments":[{"name":"production","enabled":true,"strategies":[
             {"name":"flexibleRollout","parameters":{"rollout":"abc"}}]}]}"#,
        );
        let odd = summarise(&odd, "production", &[])
            .expect("production")
            .state;
        assert_eq!(
            odd.overrides.len(),
            1,
            "an unreadable rollout is shown, not guessed"
        );
    }

    #[test]
    fn tag_values_fit_unleash_limits() {
        let note = ChangeNote {
            audit_id: "20261125T061638.413Z-22803-0".into(),
            operator: "alice".into(),
            note: "INC-1234 checkout p99 5s\nrolling back the payment provider switch now".into(),
        };
        let tags = note_tags(&note);
        assert_eq!(tags[1], "audit 20261125T061638.413Z-22803-0");
        assert_eq!(tags[0].chars().count(), TAG_MAX);
        assert!(tags[0].starts_with("INC-1234 checkout p99 5s rolling back"));
        assert!(tags[0].ends_with('…'));
        assert_eq!(tag_value("x"), "x.");
        assert_eq!(tag_value("é".repeat(60).as_str()).chars().count(), TAG_MAX);
    }

    #[test]
    fn urls_tokens_and_environment_names() {
        assert_eq!(
            normalise_base_url("http://127.0.0.1:4242/api/").as_deref(),
            Ok("http://127.0.0.1:4242")
        );
        assert_eq!(
            normalise_base_url("https://flags.example/unleash").as_deref(),
            Ok("https://flags.example/unleash")
        );
        let err = normalise_base_url("https://user:pw@flags.example/")
            .err()
            .unwrap_or_default();
        assert!(!err.contains("pw"), "{err}");
        assert!(normalise_base_url("ftp://x").is_err());
        assert_eq!(token_environment("*:production.abc123"), Some("production"));
        assert_eq!(
            token_environment("default:development.x"),
            Some("development")
        );
        assert_eq!(token_environment("user:abc"), None);
        assert_eq!(default_environment("prod").as_deref(), Some("production"));
        assert_eq!(default_environment("dev").as_deref(), Some("development"));
        assert_eq!(default_environment("staging"), None);
    }

    fn env(name: &str, options: &[(&str, &str)]) -> EnvironmentConfig {
        EnvironmentConfig {
            name: name.into(),
            provider: crate::config::ProviderKind::Unleash,
            protected: false,
            file: None,
            vault_mount: "kv".into(),
            vault_path: format!("feature-flags/unleash/{name}"),
            options: options
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn connect_error(env: &EnvironmentConfig, fields: &[(&str, &str)]) -> Option<ProviderError> {
        let mut secrets = SecretFields::new("vault kv/feature-flags/unleash/prod");
        for (field, value) in fields {
            secrets.insert(*field, Secret::new(*value));
        }
        connect(
            env,
            Some(&secrets),
            Access::ReadWrite,
            &NetworkConfig::default(),
        )
        .err()
    }

    #[test]
    fn connect_names_the_missing_piece_and_never_the_token() {
        let prod = env("prod", &[]);
        let token = "*:production.sup3r-s3cret";
        let no_url = connect_error(&prod, &[("backend_token", token)]).expect("no url");
        assert!(
            no_url.message.contains("options.api_url"),
            "{}",
            no_url.message
        );
        let url = ("api_url", "http://127.0.0.1:1/api");
        let no_backend = connect_error(&prod, &[url, ("admin_token", token)]).expect("err");
        assert!(
            no_backend
                .message
                .contains("field `backend_token` is missing"),
            "{}",
            no_backend.message
        );
        let no_reader = connect_error(&prod, &[url, ("backend_token", token)]).expect("err");
        assert!(no_reader.message.contains("`read_token` nor `admin_token`"));
        let bad_header = connect_error(
            &prod,
            &[
                url,
                ("backend_token", token),
                ("admin_token", "bad\nsup3r-s3cret"),
            ],
        )
        .expect("err");
        assert!(
            bad_header.message.contains("`admin_token`"),
            "{}",
            bad_header.message
        );
        for err in [no_url, no_backend, no_reader, bad_header] {
            assert!(!err.message.contains("sup3r-s3cret"), "{}", err.message);
        }
        // Options win over Vault for the URL; the location shows no credential.
        let mut secrets = SecretFields::new("vault kv/feature-flags/unleash/prod");
        secrets.insert("api_url", Secret::new("http://vault-url.example"));
        secrets.insert("backend_token", Secret::new(token));
        secrets.insert("admin_token", Secret::new(token));
        let connection = connect(
            &env(
                "prod",
                &[("api_url", "http://127.0.0.1:4242/"), ("project", "shop")],
            ),
            Some(&secrets),
            Access::ReadOnly,
            &NetworkConfig::default(),
        )
        .expect("connect");
        assert_eq!(
            connection.source.info().location,
            "http://127.0.0.1:4242 project shop, environment production"
        );
        assert!(connection.writer.is_none());
        assert!(!format!("{connection:?}").contains("sup3r"));
    }

    #[test]
    fn history_keeps_notes_as_comments() {
        let event: Event = serde_json::from_str(
            r#"{"type":"feature-tagged","createdBy":"killswitch-admin","createdAt":"2026-12-01T22:59:39.859Z",
               "data":{"type":"killswitch","value":"INC-1 checkout"},"environment":null,"label":"Flag tagged"}"#,
        )
        .expect("event");
        let entry = history_entry(&event).expect("entry");
        assert_eq!(entry.comment.as_deref(), Some("INC-1 checkout"));
        assert_eq!(entry.who.as_deref(), Some("killswitch-admin"));
        let toggle: Event = serde_json::from_str(
            r#"{"type":"feature-environment-disabled","createdAt":"2026-12-01T22:59:56.989Z",
               "environment":"production","label":"Flag disabled"}"#,
        )
        .expect("event");
        assert_eq!(
            history_entry(&toggle).map(|e| e.what),
            Some("Flag disabled in production".to_string())
        );
    }
}

/// Structure-aware fuzzing of Unleash feature JSON (issue 8): a realistic feature detail,
/// mutated at random places, never panics the parser or the summary.
#[cfg(test)]
mod fuzz {
    use super::*;
    use crate::fuzz_support::mutated;
    use proptest::prelude::*;
    use serde_json::json;

    fn realistic() -> Value {
        json!({"name": "checkout_ab", "type": "kill-switch", "description": "d",
            "environments": [{"name": "production", "enabled": true, "strategies": [
                {"id": "1", "name": "flexibleRollout", "title": "canary",
                 "parameters": {"rollout": "10", "stickiness": "default", "groupId": "g"},
                 "constraints": [{"contextName": "tenant", "operator": "IN",
                                  "values": ["acme", "globex"], "inverted": false}],
                 "segments": [1, 2], "disabled": false,
                 "variants": [{"name": "a", "weight": 333}, {"name": "b", "weight": 333},
                              {"name": "control", "weight": 334}]}],
                "variants": [{"name": "x", "weight": 1000}]}]})
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1500))]
        #[test]
        fn mutated_features_never_panic(feature in mutated(realistic())) {
            let segments = [Segment { id: 1, name: "beta".into() }];
            if let Ok(detail) = serde_json::from_value::<FeatureDetail>(feature)
                && let Some(flag) = summarise(&detail, "production", &segments)
            {
                let _ = crate::model::cell_text(flag.meta.kind, &flag.state);
            }
        }
    }
}
