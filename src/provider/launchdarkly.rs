//! LaunchDarkly (SaaS), through its REST API v2 and the server-side SDK polling endpoint.
//!
//! What this file relies on, from LaunchDarkly's API documentation (REST API v2 overview and
//! OpenAPI document, as published with the generated `api-client-*` libraries):
//! - Auth: `Authorization: <access token>`, no scheme. SDK keys are refused by the REST API and
//!   only read the SDK endpoints, with the same header.
//! - States (calls per load): `GET {sdk}/sdk/latest-all` with the SDK key, one call for every
//!   flag with its targeting, what server-side SDKs poll; on a session's first load, beside it,
//!   `GET /api/v2/flags/{project}?env={env}&limit=1` checks project, token and environment key.
//! - Metadata (tags, maintainers, descriptions), beside the states, once per session:
//!   `GET /api/v2/flags/{project}?limit&offset` (paginated, `{"items","totalCount","_links"}`,
//!   summary representation; `limit` at most 100 under version 20240415): the first page, then
//!   the rest concurrently within the route's remaining budget (`X-Ratelimit-Route-Remaining`
//!   less 2, at most 50; 8 when the header is absent). LaunchDarkly publishes no numbers for
//!   its limits and asks clients to follow the headers. 5,000 flags = 50 pages: two round
//!   trips when the budget allows 49 at once.
//! - Re-read (calls per kill: this twice, the PATCH, then the verification):
//!   `GET /api/v2/flags/{project}/{flag}?env={env}` (the detailed representation), reduced to
//!   what the SDK data carries so it compares with the dashboard's state.
//!   `LD-API-Version: 20240415` pins the representation so a token's default version cannot
//!   change it under us.
//! - Per environment: `on`, `offVariation`, `fallthrough` (`variation` index or `rollout`
//!   with `variations[{variation, weight}]`, weights in thousandths of a percent, 100000 =
//!   100%), `rules[]`, `targets[]`, `contextTargets[]`, `version`. Variations by index.
//! - Writes: semantic patch `PATCH /api/v2/flags/{project}/{flag}` with
//!   `Content-Type: application/json; domain-model=launchdarkly.semanticpatch` and
//!   `{"environmentKey","comment","instructions":[{"kind":"turnFlagOff"|"turnFlagOn"}]}`. The
//!   comment lands in LaunchDarkly's audit log. Environments that require approvals refuse a
//!   direct change with 405; then `POST /api/v2/projects/{p}/flags/{f}/environments/{e}/approval-requests`
//!   with `description`, `comment`, `instructions` creates a request (201, `_id`).
//! - The semantic patch has no documented precondition (JSON patch has a `test` op), so the
//!   write is not conditional on the seen version: the flip's re-read guard just before the
//!   write is the protection, and `turnFlagOff` is idempotent. A 409 (concurrent request) is
//!   reported as a conflict.
//! - Errors: JSON `{"code","message","id"}`; 429 carries `X-Ratelimit-Reset` (epoch ms),
//!   `X-Ratelimit-Auth-Token-Reset` (epoch ms) or `Retry-After` (seconds).
//! - What services see: `GET {sdk}/sdk/latest-all` with the SDK key, the endpoint the
//!   server-side SDKs poll: `{"flags":{key:{...}},"segments":{...}}`, flags with `on`,
//!   `version`, `variations` (plain values), `offVariation`, `fallthrough`, `deleted`.
//! - History: `GET /api/v2/auditlog?spec=proj/{p}:env/{e}:flag/{f}` (entries with `date` in
//!   epoch ms, `member`, `titleVerb`, `comment`).

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use futures::StreamExt;
use reqwest::header::{AUTHORIZATION, HeaderName, HeaderValue};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::http::{self, Method, Policy, Request, display_url, path_segment};
use super::{
    Access, ChangeNote, Connection, ErrorKind, FlagSource, FlagWriter, HistoryEntry, ProviderError,
    ProviderInfo, WriteResult,
};
use crate::config::{EnvironmentConfig, NetworkConfig};
use crate::model::{
    Flag, FlagKind, FlagMeta, FlagState, Override, OverrideKind, Rollout, ServedState, value_text,
};
use crate::rollout::{RolloutChoices, RolloutTarget};
use crate::secret::{Secret, SecretFields};

pub const DEFAULT_API_URL: &str = "https://app.launchdarkly.com";
pub const DEFAULT_SDK_URL: &str = "https://sdk.launchdarkly.com";
/// The REST API version whose representations this file parses.
pub const API_VERSION: &str = "20240415";
pub const SEMANTIC_PATCH: &str = "application/json; domain-model=launchdarkly.semanticpatch";

/// Vault fields needed to read.
pub const REQUIRED_FIELDS: &[&str] = &["api_token", "project_key", "environment_key", "sdk_key"];
/// Vault field needed only to change flags: a writer-role access token.
pub const WRITE_FIELDS: &[&str] = &["writer_token"];

/// Page size for the flag list (the API's maximum is 100 under version 20240415).
const PAGE_SIZE: usize = 100;
/// Never more pages than this (50,000 flags): protects against a server that loops.
const MAX_PAGES: usize = 500;
/// Metadata pages read at once after the first when the answer gives no rate-limit budget.
const METADATA_CONCURRENCY: usize = 8;
/// Metadata pages read at once after the first when the answer gives the route's remaining
/// budget (`X-Ratelimit-Route-Remaining`): that budget less [`METADATA_RESERVE`], at most this.
/// LaunchDarkly does not publish its limits and asks clients to follow the headers.
const METADATA_MAX_CONCURRENCY: usize = 50;
/// Requests of the route's budget left for others (a refresh, another session on the token).
const METADATA_RESERVE: usize = 2;

pub fn connect(
    env: &EnvironmentConfig,
    secrets: Option<&SecretFields>,
    access: Access,
    network: &NetworkConfig,
) -> Result<Connection, ProviderError> {
    let secrets = secrets.ok_or_else(|| {
        ProviderError::new(
            ErrorKind::Auth,
            format!(
                "{}: provider launchdarkly needs credentials from Vault at {}",
                env.name,
                env.vault_location()
            ),
        )
    })?;
    let field = |name: &str| -> Result<Secret, ProviderError> {
        secrets
            .require(name)
            .cloned()
            .map_err(|err| ProviderError::new(ErrorKind::Auth, format!("{}: {err}", env.name)))
    };
    let api_token = field("api_token")?;
    let sdk_key = field("sdk_key")?;
    // Keys name things; they are not credentials, so they may appear in messages.
    let project = field("project_key")?.expose().trim().to_string();
    let ld_env = field("environment_key")?.expose().trim().to_string();

    let api_url = base_url(env, secrets, "api_url")?.unwrap_or_else(|| DEFAULT_API_URL.into());
    let sdk_url = match base_url(env, secrets, "sdk_url")? {
        Some(url) => url,
        None => sdk_url_for(&api_url),
    };
    let api = Arc::new(LdApi {
        http: http::Client::new(network)?,
        info: ProviderInfo {
            vendor: "launchdarkly",
            location: format!("{api_url} project {project} environment {ld_env}"),
            served_via: "LaunchDarkly's server-side SDK endpoint",
        },
        env: env.name.clone(),
        api_url,
        sdk_url,
        project,
        ld_env,
        api_token,
        sdk_key,
        scope: tokio::sync::OnceCell::new(),
    });
    let writer_token = secrets.get(WRITE_FIELDS[0]).cloned();
    Ok(match (access, writer_token) {
        (Access::ReadWrite, Some(token)) => Connection {
            env: env.name.clone(),
            source: api.clone(),
            writer: Some(Arc::new(LdWriter { api, token })),
            read_only_reason: None,
        },
        (Access::ReadWrite, None) => Connection::read_only(
            api,
            &env.name,
            format!(
                "no admin credential (`{}`) in {}: read-only",
                WRITE_FIELDS[0], secrets.source
            ),
        ),
        (Access::ReadOnly, _) => Connection::read_only(api, &env.name, "read-only mode"),
    })
}

/// A base URL from the environment's options (wins) or the Vault secret, validated.
fn base_url(
    env: &EnvironmentConfig,
    secrets: &SecretFields,
    name: &str,
) -> Result<Option<String>, ProviderError> {
    let (raw, origin) = match env.option(name) {
        Some(value) => (value.to_string(), "options".to_string()),
        None => match secrets.get(name) {
            Some(value) => (value.expose().to_string(), secrets.source.clone()),
            None => return Ok(None),
        },
    };
    let raw = raw.trim().trim_end_matches('/').to_string();
    match url::Url::parse(&raw) {
        Ok(parsed)
            if matches!(parsed.scheme(), "http" | "https")
                && parsed.host_str().is_some()
                && parsed.username().is_empty()
                && parsed.password().is_none()
                && parsed.query().is_none() =>
        {
            Ok(Some(raw))
        }
        _ => Err(ProviderError::new(
            ErrorKind::Api,
            format!(
                "{}: `{name}` from {origin} is not an http(s) base URL without credentials or query: {}",
                env.name,
                display_url(&raw)
            ),
        )),
    }
}

/// The SDK host that goes with an API host: app.launchdarkly.com -> sdk.launchdarkly.com, the
/// EU (app.eu.launchdarkly.com) and federal (app.launchdarkly.us) instances alike. Any other
/// host (a Relay Proxy, a local fake) serves both from the same base URL.
fn sdk_url_for(api_url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(api_url) else {
        return DEFAULT_SDK_URL.to_string();
    };
    let host = parsed.host_str().unwrap_or_default().to_string();
    if let Some(rest) = host.strip_prefix("app.")
        && (rest.ends_with("launchdarkly.com") || rest.ends_with("launchdarkly.us"))
        && parsed.set_host(Some(&format!("sdk.{rest}"))).is_ok()
    {
        return parsed.as_str().trim_end_matches('/').to_string();
    }
    api_url.to_string()
}

/// One LaunchDarkly project environment, read with the reader token and the SDK key.
pub struct LdApi {
    http: http::Client,
    info: ProviderInfo,
    /// killswitch's environment name (the dashboard column).
    env: String,
    api_url: String,
    sdk_url: String,
    project: String,
    ld_env: String,
    api_token: Secret,
    sdk_key: Secret,
    /// Set once the project, the reader token and the environment key were found right.
    scope: tokio::sync::OnceCell<()>,
}

impl LdApi {
    fn flag_url(&self, key: &str) -> String {
        format!(
            "{}/api/v2/flags/{}/{}",
            self.api_url,
            path_segment(&self.project),
            path_segment(key)
        )
    }

    /// A request with `token` in the `Authorization` header as is (LaunchDarkly's form) and
    /// the pinned API version.
    fn request(
        &self,
        what: &str,
        method: Method,
        url: &str,
        token: &Secret,
    ) -> Result<Request, ProviderError> {
        Ok(Request::new(what, method, url)
            .credential(AUTHORIZATION, token, "")?
            .header(
                HeaderName::from_static("ld-api-version"),
                HeaderValue::from_static(API_VERSION),
            ))
    }

    async fn get_json<T: DeserializeOwned>(
        &self,
        what: &str,
        url: &str,
        token: &Secret,
    ) -> Result<T, ProviderError> {
        Ok(self.get_json_budget(what, url, token).await?.0)
    }

    /// `get_json`, with the rate-limit budget the answer's headers give
    /// (`X-Ratelimit-Route-Remaining`: requests this token may still make on the route).
    async fn get_json_budget<T: DeserializeOwned>(
        &self,
        what: &str,
        url: &str,
        token: &Secret,
    ) -> Result<(T, Option<u64>), ProviderError> {
        let request = self.request(what, Method::GET, url, token)?;
        let answer = self.http.send(&request, Policy::READ).await?;
        let remaining = answer
            .header("x-ratelimit-route-remaining")
            .and_then(|value| value.parse::<u64>().ok());
        let value = answer.success(&request)?.decode(&request)?;
        Ok((value, remaining))
    }

    /// One page of the REST flag list (`summary`: tags, maintainers, descriptions; no
    /// targeting), with the rate-limit budget left.
    async fn metadata_page(
        &self,
        what: &str,
        offset: usize,
    ) -> Result<(LdPage, Option<u64>), ProviderError> {
        let url = format!(
            "{}/api/v2/flags/{}?limit={PAGE_SIZE}&offset={offset}",
            self.api_url,
            path_segment(&self.project)
        );
        self.get_json_budget(what, &url, &self.api_token).await
    }

    /// Once per connection: one flag of the REST list with the environment's configuration.
    async fn check_scope(&self) -> Result<(), ProviderError> {
        self.scope
            .get_or_try_init(|| async {
                let what = format!(
                    "{}: list flags of LaunchDarkly project `{}` environment `{}`",
                    self.env, self.project, self.ld_env
                );
                // `env` per the list endpoint's text, `filterEnv` per its schema: both, so
                // either reading returns the environment's configuration.
                let url = format!(
                    "{}/api/v2/flags/{}?env={}&filter={}&limit=1",
                    self.api_url,
                    path_segment(&self.project),
                    path_segment(&self.ld_env),
                    path_segment(&format!("filterEnv:{}", self.ld_env))
                );
                let page: LdPage = self.get_json(&what, &url, &self.api_token).await?;
                if let Some(item) = page.items.into_iter().next() {
                    self.parse_flag(&what, item)?;
                }
                Ok(())
            })
            .await
            .map(|_| ())
    }

    fn parse_flag(&self, what: &str, item: Value) -> Result<Flag, ProviderError> {
        let flag: LdFlag = serde_json::from_value(item).map_err(|err| {
            ProviderError::new(
                ErrorKind::Api,
                format!("{what}: unexpected flag representation: {err}"),
            )
        })?;
        summarise(&sdk_view(flag), &self.ld_env)
            .map_err(|message| ProviderError::new(ErrorKind::Api, format!("{what}: {message}")))
    }
}

/// A REST flag reduced to what the server-side SDK endpoint carries: variation values without
/// names, rules without descriptions, no tags or maintainers. The states the dashboard shows
/// from `/sdk/latest-all` and the one-flag re-read from the REST API then compare equal when
/// nothing changed; tags, owners and descriptions arrive as metadata.
fn sdk_view(mut flag: LdFlag) -> LdFlag {
    for variation in &mut flag.variations {
        variation.name = None;
    }
    for config in flag.environments.values_mut() {
        for rule in &mut config.rules {
            rule.description = None;
        }
    }
    flag.description = None;
    flag.tags.clear();
    flag.maintainer = None;
    flag.maintainer_team = None;
    flag.maintainer_team_key = None;
    flag
}

/// A flag from `/sdk/latest-all` in the REST shape `summarise` reads: its configuration is the
/// environment the SDK key belongs to.
fn from_sdk(key: &str, flag: Value, ld_env: &str) -> Result<Option<LdFlag>, String> {
    let sdk: SdkFlagFull =
        serde_json::from_value(flag).map_err(|err| format!("flag `{key}`: {err}"))?;
    if sdk.deleted {
        return Ok(None);
    }
    let mut environments = BTreeMap::new();
    environments.insert(ld_env.to_string(), sdk.config);
    Ok(Some(LdFlag {
        key: key.to_string(),
        description: None,
        kind: None,
        variations: sdk
            .variations
            .into_iter()
            .map(|value| LdVariation { value, name: None })
            .collect(),
        tags: Vec::new(),
        maintainer: None,
        maintainer_team: None,
        maintainer_team_key: None,
        environments,
    }))
}

/// Owners, tags, descriptions and the kind a tag gives, from a REST flag.
fn flag_meta(flag: &LdFlag) -> FlagMeta {
    let vendor_kind = flag
        .tags
        .iter()
        .map(|tag| FlagKind::from_label(tag))
        .find(|kind| *kind == FlagKind::KillSwitch);
    let owner = flag
        .maintainer
        .as_ref()
        .and_then(LdMember::display)
        .or_else(|| {
            flag.maintainer_team
                .as_ref()
                .and_then(|team| team.name.clone().or_else(|| team.key.clone()))
        })
        .or_else(|| flag.maintainer_team_key.clone());
    FlagMeta {
        key: flag.key.clone(),
        kind: FlagKind::classify(&flag.key, vendor_kind),
        owner,
        expected_removal: None,
        description: flag.description.clone().filter(|d| !d.trim().is_empty()),
        tags: flag.tags.clone(),
        runbook: None,
    }
}

/// How many metadata pages to read at once after the first, from the route budget the first
/// answer gave: that budget less a reserve, between 1 and [`METADATA_MAX_CONCURRENCY`]; without
/// a budget, [`METADATA_CONCURRENCY`].
fn metadata_concurrency(remaining: Option<u64>) -> usize {
    match remaining {
        Some(left) => usize::try_from(left)
            .unwrap_or(usize::MAX)
            .saturating_sub(METADATA_RESERVE)
            .clamp(1, METADATA_MAX_CONCURRENCY),
        None => METADATA_CONCURRENCY,
    }
}

#[async_trait]
impl FlagSource for LdApi {
    fn info(&self) -> &ProviderInfo {
        &self.info
    }

    /// One call for the states: `/sdk/latest-all` with the SDK key, what server-side SDKs poll.
    async fn list_flags(&self) -> Result<Vec<Flag>, ProviderError> {
        let what = format!(
            "{}: read the flags of LaunchDarkly environment `{}` as the server-side SDK sees them",
            self.env, self.ld_env
        );
        let url = format!("{}/sdk/latest-all", self.sdk_url);
        // The first load also checks, in the same round trip, that the project, the token and
        // the environment key are right: the SDK key alone would show its own environment's
        // flags even when `environment_key` (where writes go) is mistyped. A scope error wins.
        let (scope, all) = tokio::join!(
            self.check_scope(),
            self.get_json(&what, &url, &self.sdk_key)
        );
        scope?;
        let all: SdkAll = all?;
        let mut flags = Vec::with_capacity(all.flags.len());
        for (key, flag) in all.flags {
            let parsed = from_sdk(&key, flag, &self.ld_env).map_err(|message| {
                ProviderError::new(ErrorKind::Api, format!("{what}: {message}"))
            })?;
            if let Some(flag) = parsed {
                flags.push(summarise(&flag, &self.ld_env).map_err(|message| {
                    ProviderError::new(ErrorKind::Api, format!("{what}: {message}"))
                })?);
            }
        }
        Ok(flags)
    }

    /// Tags, maintainers and descriptions from the REST list (summary representation): the
    /// first page, then the rest at the same time, as many at once as the rate-limit budget
    /// of the first answer allows ([`metadata_concurrency`]).
    async fn metadata(&self) -> Result<Vec<FlagMeta>, ProviderError> {
        let what = format!(
            "{}: list flags of LaunchDarkly project `{}` (metadata)",
            self.env, self.project
        );
        let (first, remaining) = self.metadata_page(&what, 0).await?;
        let Some(total) = first.total_count else {
            // No total to plan with: follow `next` links one page after another.
            let mut items = Vec::new();
            let mut page = first;
            for _ in 0..MAX_PAGES {
                let more = page.links.contains_key("next") && !page.items.is_empty();
                items.append(&mut page.items);
                if !more {
                    break;
                }
                page = self.metadata_page(&what, items.len()).await?.0;
            }
            return Ok(items
                .into_iter()
                .filter_map(|item| serde_json::from_value::<LdFlag>(item).ok())
                .map(|flag| flag_meta(&flag))
                .collect());
        };
        let mut items = first.items;
        let fetched = items.len();
        if fetched > 0 && total > fetched {
            let pages = (total - fetched).div_ceil(PAGE_SIZE).min(MAX_PAGES);
            let at_once = metadata_concurrency(remaining);
            let reads: Vec<_> = (0..pages)
                .map(|page| self.metadata_page(&what, fetched + page * PAGE_SIZE))
                .collect();
            let results: Vec<Result<(LdPage, Option<u64>), ProviderError>> =
                futures::stream::iter(reads)
                    .buffered(at_once)
                    .collect()
                    .await;
            for result in results {
                items.extend(result?.0.items);
            }
        }
        Ok(items
            .into_iter()
            .filter_map(|item| serde_json::from_value::<LdFlag>(item).ok())
            .map(|flag| flag_meta(&flag))
            .collect())
    }

    async fn read_flag(&self, key: &str) -> Result<Flag, ProviderError> {
        let what = format!(
            "{}: read flag `{key}` of LaunchDarkly project `{}`",
            self.env, self.project
        );
        // A single flag is always the detailed representation (rules and targets included).
        let url = format!("{}?env={}", self.flag_url(key), path_segment(&self.ld_env));
        let flag: LdFlag = self.get_json(&what, &url, &self.api_token).await?;
        summarise(&sdk_view(flag), &self.ld_env)
            .map_err(|message| ProviderError::new(ErrorKind::Api, format!("{what}: {message}")))
    }

    /// `/sdk/latest-all` with the SDK key: the rule server-side SDKs download and evaluate.
    async fn served_rule(&self, key: &str) -> Result<FlagState, ProviderError> {
        self.rule_from_sdk(key).await
    }

    /// The server-side SDK polling endpoint, read with the SDK key: what services get.
    async fn served(&self, key: &str) -> Result<ServedState, ProviderError> {
        let what = format!(
            "{}: read flag `{key}` as the server-side SDK sees it",
            self.env
        );
        // `/sdk/latest-all` is what every current server-side SDK polls, so it is exactly what
        // services get (the per-flag `/sdk/latest-flags/{key}` is only served for old SDKs).
        let url = format!("{}/sdk/latest-all", self.sdk_url);
        let all: SdkAll = self.get_json(&what, &url, &self.sdk_key).await?;
        let flag = all.flags.get(key).ok_or_else(|| {
            ProviderError::new(
                ErrorKind::NotFound,
                format!(
                    "{what}: {} serves no flag `{key}` to this SDK key's environment",
                    display_url(&url)
                ),
            )
        })?;
        let flag: SdkFlag = serde_json::from_value(flag.clone()).map_err(|err| {
            ProviderError::new(
                ErrorKind::Api,
                format!("{what}: unexpected SDK flag representation: {err}"),
            )
        })?;
        if flag.deleted {
            return Err(ProviderError::new(
                ErrorKind::NotFound,
                format!("{what}: the SDK endpoint reports the flag deleted"),
            ));
        }
        let value = if flag.on {
            flag.fallthrough
                .as_ref()
                .and_then(|f| f.variation)
                .and_then(|index| flag.variations.get(index).cloned())
        } else {
            flag.off_variation
                .and_then(|index| flag.variations.get(index).cloned())
        };
        Ok(ServedState {
            enabled: flag.on,
            value,
        })
    }

    async fn history(&self, key: &str) -> Result<Vec<HistoryEntry>, ProviderError> {
        let what = format!(
            "{}: read the LaunchDarkly audit log of flag `{key}`",
            self.env
        );
        let spec = format!("proj/{}:env/{}:flag/{}", self.project, self.ld_env, key);
        let url = format!(
            "{}/api/v2/auditlog?spec={}&limit=20",
            self.api_url,
            path_segment(&spec)
        );
        let page: AuditPage = self.get_json(&what, &url, &self.api_token).await?;
        Ok(page.items.into_iter().map(history_entry).collect())
    }
}

fn history_entry(entry: AuditEntry) -> HistoryEntry {
    let at = chrono::DateTime::from_timestamp_millis(entry.date).unwrap_or_default();
    let who = entry
        .member
        .as_ref()
        .and_then(|member| member.display())
        .or_else(|| entry.token.as_ref().and_then(|token| token.name.clone()))
        .or_else(|| entry.app.as_ref().and_then(|app| app.name.clone()));
    let what = [
        entry.title_verb.as_deref(),
        entry.short_description.as_deref(),
        entry.title.as_deref(),
        entry.description.as_deref(),
    ]
    .into_iter()
    .flatten()
    .find(|text| !text.trim().is_empty())
    .map(|text| strip_markdown(text.trim()))
    .unwrap_or_else(|| entry.kind.clone().unwrap_or_else(|| "changed".into()));
    HistoryEntry {
        at,
        who,
        what,
        comment: entry.comment.filter(|c| !c.trim().is_empty()),
    }
}

/// LaunchDarkly's audit titles use markdown (`**turned off** the flag`); the console shows text.
fn strip_markdown(text: &str) -> String {
    text.replace("**", "").replace('`', "")
}

struct LdWriter {
    api: Arc<LdApi>,
    token: Secret,
}

#[async_trait]
impl FlagWriter for LdWriter {
    async fn set_enabled(
        &self,
        key: &str,
        enabled: bool,
        note: &ChangeNote,
        seen: &FlagState,
    ) -> Result<WriteResult, ProviderError> {
        // The semantic patch has no version precondition; see the module documentation.
        let _ = seen;
        let api = &self.api;
        let kind = if enabled { "turnFlagOn" } else { "turnFlagOff" };
        let what = format!(
            "{}: {kind} `{key}` in LaunchDarkly project `{}` environment `{}`",
            api.env, api.project, api.ld_env
        );
        let url = api.flag_url(key);
        let patch = json!({
            "environmentKey": api.ld_env,
            "comment": note.vendor_text(),
            "instructions": [{ "kind": kind }],
        });
        let request = api
            .request(&what, Method::PATCH, &url, &self.token)?
            .body(HeaderValue::from_static(SEMANTIC_PATCH), patch.to_string());
        let answer = api.http.send(&request, Policy::WRITE).await?;
        match answer.status.as_u16() {
            200..=299 => Ok(WriteResult::Applied),
            // The environment requires approvals: the API refuses direct changes.
            405 => self.request_approval(key, kind, note).await,
            400 if is_pending_conflict(&answer.body) => Err(ProviderError::new(
                ErrorKind::Api,
                format!(
                    "{what}: LaunchDarkly refused it because it conflicts with a pending scheduled change or approval request on this flag in `{}` ({} answered 400: {}). Nothing was changed. killswitch does not override them (LaunchDarkly's `ignoreConflicts=true` would make them fail): review the flag's scheduled changes and approval requests in LaunchDarkly, then retry",
                    api.ld_env,
                    display_url(&url),
                    http::body_message(&answer.body)
                ),
            )),
            _ => Err(http::status_error(&what, &url, answer.status, &answer.body)),
        }
    }

    /// A boolean flag: a percentage; every flag: its variations by name (or value, when
    /// unnamed), with their values, which states show. From the REST flag (names live there).
    async fn rollout_choices(&self, key: &str) -> Result<Option<RolloutChoices>, ProviderError> {
        let api = &self.api;
        let what = format!(
            "{}: read the variations of `{key}` in LaunchDarkly project `{}`",
            api.env, api.project
        );
        let url = format!("{}?env={}", api.flag_url(key), path_segment(&api.ld_env));
        let flag = api.get_json(&what, &url, &self.token).await?;
        let base = RolloutBase::parse(&flag, &api.ld_env)
            .map_err(|message| ProviderError::new(ErrorKind::Api, format!("{what}: {message}")))?;
        let values: Vec<String> = base
            .variations
            .iter()
            .map(|(_, value, _)| value_text(value))
            .collect();
        let percent = base.variations.len() == 2
            && base
                .variations
                .iter()
                .any(|(_, v, _)| *v == Value::Bool(true))
            && base
                .variations
                .iter()
                .any(|(_, v, _)| *v == Value::Bool(false));
        Ok(Some(RolloutChoices {
            percent,
            whole_percent_only: false,
            variants: base
                .variations
                .iter()
                .zip(&values)
                .map(|((_, _, name), value)| {
                    name.clone()
                        .filter(|name| !name.is_empty())
                        .unwrap_or_else(|| value.clone())
                })
                .collect(),
            values,
        }))
    }

    /// See the rollouts section: `updateFallthroughVariationOrRollout`, the note as `comment`.
    /// Not conditional on `seen` (the semantic patch has no precondition): the flip's re-read
    /// guard just before is the protection, as for kills.
    async fn set_rollout(
        &self,
        key: &str,
        target: &RolloutTarget,
        note: &ChangeNote,
        seen: &FlagState,
    ) -> Result<WriteResult, ProviderError> {
        let _ = seen;
        self.rollout(key, target, note).await
    }
}

/// Whether a 400 to a flag PATCH is LaunchDarkly's "would make a pending scheduled change or
/// approval request fail" refusal (the API reference's "Conflicts", `ignoreConflicts`).
fn is_pending_conflict(body: &str) -> bool {
    let text = body.to_ascii_lowercase();
    text.contains("conflict")
        || text.contains("ignoreconflicts")
        || (text.contains("pending") && (text.contains("scheduled") || text.contains("approval")))
}

impl LdWriter {
    async fn request_approval(
        &self,
        key: &str,
        kind: &str,
        note: &ChangeNote,
    ) -> Result<WriteResult, ProviderError> {
        let api = &self.api;
        let what = format!(
            "{}: create an approval request to {kind} `{key}` (LaunchDarkly environment `{}` requires approval)",
            api.env, api.ld_env
        );
        let url = format!(
            "{}/api/v2/projects/{}/flags/{}/environments/{}/approval-requests",
            api.api_url,
            path_segment(&api.project),
            path_segment(key),
            path_segment(&api.ld_env)
        );
        let body = json!({
            "description": format!("killswitch: {kind} {key} in {}: {}", api.ld_env, note.note),
            "comment": note.vendor_text(),
            "instructions": [{ "kind": kind }],
        });
        let request = api
            .request(&what, Method::POST, &url, &self.token)?
            .json(&body);
        let created: Created = api.http.json(&request, Policy::WRITE).await?;
        let id = created.id.filter(|id| !id.is_empty()).ok_or_else(|| {
            ProviderError::new(
                ErrorKind::Api,
                format!("{what}: the created approval request has no `_id`"),
            )
        })?;
        Ok(WriteResult::PendingApproval {
            reference: format!("LaunchDarkly approval request {id}"),
        })
    }
}

// ---- rollouts ---------------------------------------------------------------------------------
//
// A rollout changes the environment's fallthrough (the default rule: who no target or rule
// matches) with the semantic patch instruction `updateFallthroughVariationOrRollout`:
// `rolloutWeights` maps variation ids to thousandths of a percent (100000 = 100%), and the
// existing rollout's `bucketBy` and `contextKind` are sent back as `rolloutBucketBy` and
// `rolloutContextKind` (the instruction resets what it is not given), so every context keeps
// its bucket: stepping up keeps everyone who had the feature, stepping back gives the same set.
// The instruction has no parameter for a rollout's custom `seed`; LaunchDarkly's documentation
// does not say whether an existing seed survives it (the flag's salt, the default, does).
// `variationId` sends everyone to one variation. A flag switched off is turned on in the same
// patch (all or nothing). The note is the patch's `comment`; an environment that requires
// approvals gets an approval request with the same instructions, as kills do.

/// What a rollout reads from the REST flag: variation ids, and the fallthrough's bucketing.
struct RolloutBase {
    /// (`_id`, value, name) in the flag's order.
    variations: Vec<(String, Value, Option<String>)>,
    on: bool,
    bucket_by: Option<Value>,
    context_kind: Option<Value>,
}

impl RolloutBase {
    fn parse(flag: &Value, ld_env: &str) -> Result<RolloutBase, String> {
        let variations = flag
            .get("variations")
            .and_then(Value::as_array)
            .ok_or("the flag has no `variations`")?
            .iter()
            .map(|variation| {
                let id = variation
                    .get("_id")
                    .and_then(Value::as_str)
                    .ok_or("a variation has no `_id`")?;
                Ok((
                    id.to_string(),
                    variation.get("value").cloned().unwrap_or(Value::Null),
                    variation
                        .get("name")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                ))
            })
            .collect::<Result<Vec<_>, String>>()?;
        let config = flag
            .get("environments")
            .and_then(|envs| envs.get(ld_env))
            .ok_or_else(|| format!("the flag has no configuration for environment `{ld_env}`"))?;
        let rollout = config
            .get("fallthrough")
            .and_then(|fallthrough| fallthrough.get("rollout"))
            .filter(|rollout| rollout.is_object());
        let field = |name: &str| {
            rollout
                .and_then(|rollout| rollout.get(name))
                .filter(|value| !value.is_null())
                .cloned()
        };
        Ok(RolloutBase {
            variations,
            on: config.get("on").and_then(Value::as_bool).unwrap_or(false),
            bucket_by: field("bucketBy"),
            context_kind: field("contextKind"),
        })
    }

    /// The instructions that give the default audience `target`.
    fn instructions(&self, key: &str, target: &RolloutTarget) -> Result<Vec<Value>, String> {
        let mut fallthrough = json!({"kind": "updateFallthroughVariationOrRollout"});
        match target {
            RolloutTarget::Variant { variant } => {
                let found = self.variations.iter().find(|(_, value, name)| {
                    value_text(value) == *variant || name.as_deref() == Some(variant.as_str())
                });
                let Some((id, _, _)) = found else {
                    let names: Vec<String> = self
                        .variations
                        .iter()
                        .map(|(_, value, _)| value_text(value))
                        .collect();
                    return Err(format!(
                        "`{key}` has no variation `{}` (its variations: {})",
                        crate::text::line_max(variant, 80),
                        names.join(", ")
                    ));
                };
                fallthrough["variationId"] = json!(id);
            }
            RolloutTarget::Percent { percent } => {
                let on = self
                    .variations
                    .iter()
                    .find(|(_, value, _)| *value == Value::Bool(true));
                let off = self
                    .variations
                    .iter()
                    .find(|(_, value, _)| *value == Value::Bool(false));
                let (Some((on, _, _)), Some((off, _, _)), 2) = (on, off, self.variations.len())
                else {
                    return Err(format!(
                        "`{key}` is not a boolean flag: a rollout of it sends everyone to one variation (give a variant)"
                    ));
                };
                let weight = (percent / crate::rollout::PERCENT_RESOLUTION).round() as i64;
                let weight = weight.clamp(0, 100_000);
                fallthrough["rolloutWeights"] =
                    json!({ on.clone(): weight, off.clone(): 100_000 - weight });
                if let Some(bucket_by) = &self.bucket_by {
                    fallthrough["rolloutBucketBy"] = bucket_by.clone();
                }
                if let Some(context_kind) = &self.context_kind {
                    fallthrough["rolloutContextKind"] = context_kind.clone();
                }
            }
        }
        let mut instructions = Vec::new();
        if !self.on {
            instructions.push(json!({"kind": "turnFlagOn"}));
        }
        instructions.push(fallthrough);
        Ok(instructions)
    }
}

impl LdApi {
    /// The flag's rule from `/sdk/latest-all` (SDK key): what server-side SDKs evaluate.
    async fn rule_from_sdk(&self, key: &str) -> Result<FlagState, ProviderError> {
        let what = format!(
            "{}: read the rule of `{key}` as the server-side SDK downloads it",
            self.env
        );
        let url = format!("{}/sdk/latest-all", self.sdk_url);
        let mut all: SdkAll = serde_json::from_value(
            self.get_json(&what, &url, &self.sdk_key).await?,
        )
        .map_err(|err| {
            ProviderError::new(
                ErrorKind::Api,
                format!("{what}: unexpected SDK data representation: {err}"),
            )
        })?;
        let not_found = || {
            ProviderError::new(
                ErrorKind::NotFound,
                format!(
                    "{what}: {} serves no flag `{key}` to this SDK key's environment",
                    display_url(&url)
                ),
            )
        };
        let flag = all.flags.remove(key).ok_or_else(not_found)?;
        let flag = from_sdk(key, flag, &self.ld_env)
            .map_err(|message| ProviderError::new(ErrorKind::Api, format!("{what}: {message}")))?
            .ok_or_else(not_found)?;
        summarise(&flag, &self.ld_env)
            .map(|flag| flag.state)
            .map_err(|message| ProviderError::new(ErrorKind::Api, format!("{what}: {message}")))
    }
}

impl LdWriter {
    /// `set_rollout`: the REST flag read for its variation ids and bucketing, then one
    /// semantic patch (or an approval request where the environment requires one).
    async fn rollout(
        &self,
        key: &str,
        target: &RolloutTarget,
        note: &ChangeNote,
    ) -> Result<WriteResult, ProviderError> {
        let api = &self.api;
        let what = format!(
            "{}: roll `{key}` out to {} in LaunchDarkly project `{}` environment `{}`",
            api.env,
            target.summary(),
            api.project,
            api.ld_env
        );
        let read_url = format!("{}?env={}", api.flag_url(key), path_segment(&api.ld_env));
        let flag = api.get_json(&what, &read_url, &self.token).await?;
        let base = RolloutBase::parse(&flag, &api.ld_env).map_err(|message| {
            ProviderError::new(
                ErrorKind::Api,
                format!("{what}: {message}; nothing was changed"),
            )
        })?;
        let instructions = base.instructions(key, target).map_err(|message| {
            ProviderError::new(
                ErrorKind::Refused,
                format!("{}: {message}; nothing was changed", api.env),
            )
        })?;
        let url = api.flag_url(key);
        let patch = json!({
            "environmentKey": api.ld_env,
            "comment": note.vendor_text(),
            "instructions": instructions,
        });
        let request = api
            .request(&what, Method::PATCH, &url, &self.token)?
            .body(HeaderValue::from_static(SEMANTIC_PATCH), patch.to_string());
        let answer = api.http.send(&request, Policy::WRITE).await?;
        match answer.status.as_u16() {
            200..=299 => Ok(WriteResult::Applied),
            405 => {
                self.request_rollout_approval(key, target, &instructions, note)
                    .await
            }
            400 if is_pending_conflict(&answer.body) => Err(ProviderError::new(
                ErrorKind::Api,
                format!(
                    "{what}: LaunchDarkly refused it because it conflicts with a pending scheduled change or approval request on this flag ({} answered 400: {}). Nothing was changed; review them in LaunchDarkly, then retry",
                    display_url(&url),
                    http::body_message(&answer.body)
                ),
            )),
            _ => Err(http::status_error(&what, &url, answer.status, &answer.body)),
        }
    }

    async fn request_rollout_approval(
        &self,
        key: &str,
        target: &RolloutTarget,
        instructions: &[Value],
        note: &ChangeNote,
    ) -> Result<WriteResult, ProviderError> {
        let api = &self.api;
        let what = format!(
            "{}: create an approval request to roll `{key}` out to {} (LaunchDarkly environment `{}` requires approval)",
            api.env,
            target.summary(),
            api.ld_env
        );
        let url = format!(
            "{}/api/v2/projects/{}/flags/{}/environments/{}/approval-requests",
            api.api_url,
            path_segment(&api.project),
            path_segment(key),
            path_segment(&api.ld_env)
        );
        let body = json!({
            "description": format!(
                "killswitch: roll {key} out to {} in {}: {}",
                target.summary(),
                api.ld_env,
                note.note
            ),
            "comment": note.vendor_text(),
            "instructions": instructions,
        });
        let request = api
            .request(&what, Method::POST, &url, &self.token)?
            .json(&body);
        let answer = api.http.call(&request, Policy::WRITE).await?;
        // A 2xx whose body cannot be read: the request may well exist.
        let created: Value = answer
            .decode(&request)
            .map_err(ProviderError::with_outcome_unknown)?;
        let id = created
            .get("_id")
            .and_then(Value::as_str)
            .filter(|id| !id.is_empty())
            .ok_or_else(|| {
                ProviderError::new(
                    ErrorKind::Api,
                    format!("{what}: the created approval request has no `_id`"),
                )
            })?;
        Ok(WriteResult::PendingApproval {
            reference: format!("LaunchDarkly approval request {id}"),
        })
    }
}

// ---- LaunchDarkly's JSON, as far as killswitch reads it -------------------------------

/// A created approval request.
#[derive(Deserialize)]
struct Created {
    #[serde(default, rename = "_id")]
    id: Option<String>,
}

#[derive(Deserialize)]
struct LdPage {
    #[serde(default)]
    items: Vec<Value>,
    #[serde(default, rename = "totalCount")]
    total_count: Option<usize>,
    #[serde(default, rename = "_links")]
    links: BTreeMap<String, Value>,
}

#[derive(Deserialize)]
struct LdFlag {
    key: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    variations: Vec<LdVariation>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default, rename = "_maintainer")]
    maintainer: Option<LdMember>,
    #[serde(default, rename = "_maintainerTeam")]
    maintainer_team: Option<LdTeam>,
    #[serde(default, rename = "maintainerTeamKey")]
    maintainer_team_key: Option<String>,
    #[serde(default)]
    environments: BTreeMap<String, LdEnvironment>,
}

#[derive(Deserialize)]
struct LdVariation {
    #[serde(default)]
    value: Value,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Deserialize)]
struct LdMember {
    #[serde(default)]
    email: Option<String>,
    #[serde(default, rename = "firstName")]
    first_name: Option<String>,
    #[serde(default, rename = "lastName")]
    last_name: Option<String>,
}

impl LdMember {
    fn display(&self) -> Option<String> {
        if let Some(email) = self.email.as_ref().filter(|e| !e.is_empty()) {
            return Some(email.clone());
        }
        let name = [self.first_name.as_deref(), self.last_name.as_deref()]
            .into_iter()
            .flatten()
            .filter(|part| !part.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        (!name.is_empty()).then_some(name)
    }
}

#[derive(Deserialize)]
struct LdTeam {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    key: Option<String>,
}

#[derive(Deserialize)]
struct LdEnvironment {
    #[serde(default)]
    on: bool,
    #[serde(default)]
    version: Option<i64>,
    #[serde(default, rename = "offVariation")]
    off_variation: Option<usize>,
    #[serde(default)]
    fallthrough: Option<LdServe>,
    #[serde(default)]
    rules: Vec<LdRule>,
    #[serde(default)]
    targets: Vec<LdTarget>,
    #[serde(default, rename = "contextTargets")]
    context_targets: Vec<LdTarget>,
    /// Flags that must serve a given variation first; otherwise the off variation is served.
    #[serde(default)]
    prerequisites: Vec<LdPrerequisite>,
}

#[derive(Deserialize)]
struct LdPrerequisite {
    key: String,
    #[serde(default)]
    variation: usize,
}

/// `VariationOrRolloutRep`: one variation index, or a percentage rollout.
#[derive(Deserialize)]
struct LdServe {
    #[serde(default)]
    variation: Option<usize>,
    #[serde(default)]
    rollout: Option<LdRollout>,
}

#[derive(Deserialize)]
struct LdRollout {
    #[serde(default)]
    variations: Vec<LdWeighted>,
}

#[derive(Deserialize)]
struct LdWeighted {
    variation: usize,
    /// Thousandths of a percent: 100000 = 100%.
    #[serde(default)]
    weight: i64,
}

#[derive(Deserialize)]
struct LdRule {
    /// A disabled rule is kept in the flag but not evaluated (`Rule.disabled` in the spec).
    #[serde(default)]
    disabled: bool,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    variation: Option<usize>,
    #[serde(default)]
    rollout: Option<LdRollout>,
    #[serde(default)]
    clauses: Vec<LdClause>,
}

#[derive(Deserialize)]
struct LdClause {
    #[serde(default)]
    attribute: String,
    #[serde(default)]
    op: String,
    #[serde(default)]
    values: Vec<Value>,
    #[serde(default)]
    negate: bool,
}

#[derive(Deserialize)]
struct LdTarget {
    #[serde(default)]
    values: Vec<String>,
    variation: usize,
    #[serde(default, rename = "contextKind")]
    context_kind: Option<String>,
}

/// The server-side SDK polling payload: `{"flags": {key: flag}, "segments": {...}}`.
#[derive(Deserialize)]
struct SdkAll {
    #[serde(default)]
    flags: BTreeMap<String, Value>,
}

/// A flag of `/sdk/latest-all` with its targeting: the environment configuration is the flag
/// itself (`on`, `offVariation`, `fallthrough`, `rules`, `targets`, `contextTargets`,
/// `version`), variations are plain values, and a deleted flag stays as a tombstone.
#[derive(Deserialize)]
struct SdkFlagFull {
    #[serde(default)]
    variations: Vec<Value>,
    #[serde(default)]
    deleted: bool,
    #[serde(flatten)]
    config: LdEnvironment,
}

/// A flag as the server-side SDK endpoint returns it: variations are plain values.
#[derive(Deserialize)]
struct SdkFlag {
    #[serde(default)]
    on: bool,
    #[serde(default)]
    variations: Vec<Value>,
    #[serde(default, rename = "offVariation")]
    off_variation: Option<usize>,
    #[serde(default)]
    fallthrough: Option<LdServe>,
    #[serde(default)]
    deleted: bool,
}

#[derive(Deserialize)]
struct AuditPage {
    #[serde(default)]
    items: Vec<AuditEntry>,
}

#[derive(Deserialize)]
struct AuditEntry {
    /// Epoch milliseconds.
    #[serde(default)]
    date: i64,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default, rename = "titleVerb")]
    title_verb: Option<String>,
    #[serde(default, rename = "shortDescription")]
    short_description: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    comment: Option<String>,
    #[serde(default)]
    member: Option<LdMember>,
    #[serde(default)]
    token: Option<Named>,
    #[serde(default)]
    app: Option<Named>,
}

#[derive(Deserialize)]
struct Named {
    #[serde(default)]
    name: Option<String>,
}

// ---- summarising into the domain model ------------------------------------------------

fn summarise(flag: &LdFlag, ld_env: &str) -> Result<Flag, String> {
    let config = flag.environments.get(ld_env).ok_or_else(|| {
        format!(
            "flag `{}` has no configuration for environment `{ld_env}` (wrong environment_key?)",
            flag.key
        )
    })?;
    let meta = flag_meta(flag);
    let state = summarise_state(flag, config)?;
    Ok(Flag {
        meta: std::sync::Arc::new(meta),
        state,
    })
}

fn is_boolean(flag: &LdFlag) -> bool {
    flag.kind.as_deref() == Some("boolean")
        || (flag.variations.len() == 2 && flag.variations.iter().all(|v| v.value.is_boolean()))
}

fn variation_value(flag: &LdFlag, index: usize) -> Result<Value, String> {
    flag.variations
        .get(index)
        .map(|variation| variation.value.clone())
        .ok_or_else(|| {
            format!(
                "flag `{}` refers to variation {index}, but has {} variations",
                flag.key,
                flag.variations.len()
            )
        })
}

fn variation_name(flag: &LdFlag, index: usize) -> String {
    match flag.variations.get(index) {
        Some(LdVariation {
            name: Some(name), ..
        }) if !name.is_empty() => name.clone(),
        Some(variation) => value_text(&variation.value),
        None => format!("variation {index}"),
    }
}

/// A rollout in the domain model: a boolean flag's share of `true` as "10%", else a split.
fn rollout_of(flag: &LdFlag, rollout: &LdRollout) -> Result<Rollout, String> {
    for weighted in &rollout.variations {
        variation_value(flag, weighted.variation)?;
    }
    if is_boolean(flag) {
        let total: i64 = rollout.variations.iter().map(|w| w.weight.max(0)).sum();
        let on: i64 = rollout
            .variations
            .iter()
            .filter(|w| {
                flag.variations
                    .get(w.variation)
                    .is_some_and(|v| v.value == Value::Bool(true))
            })
            .map(|w| w.weight.max(0))
            .sum();
        if total <= 0 {
            return Ok(Rollout::Everyone);
        }
        return Ok(Rollout::Percentage {
            percent: on as f64 * 100.0 / total as f64,
        });
    }
    let weights: Vec<(String, f64)> = rollout
        .variations
        .iter()
        .map(|w| (variation_name(flag, w.variation), w.weight.max(0) as f64))
        .collect();
    Ok(Rollout::from_weights(&weights))
}

/// What a rule or target serves, as an override.
fn override_for(
    flag: &LdFlag,
    target: String,
    variation: Option<usize>,
    rollout: Option<&LdRollout>,
) -> Result<Override, String> {
    if let Some(rollout) = rollout {
        return Ok(Override {
            target,
            kind: OverrideKind::Segment,
            enabled: true,
            value: None,
            rollout: rollout_of(flag, rollout)?,
        });
    }
    let index = variation.ok_or_else(|| {
        format!(
            "flag `{}`: `{target}` has neither a variation nor a rollout",
            flag.key
        )
    })?;
    let value = variation_value(flag, index)?;
    Ok(if is_boolean(flag) {
        Override {
            target,
            kind: OverrideKind::Segment,
            enabled: value == Value::Bool(true),
            value: None,
            rollout: Rollout::Everyone,
        }
    } else {
        Override {
            target,
            kind: OverrideKind::Segment,
            enabled: true,
            value: Some(value),
            rollout: Rollout::Everyone,
        }
    })
}

fn clause_text(clause: &LdClause) -> String {
    let values: Vec<String> = clause.values.iter().map(value_text).collect();
    let mut shown = values.iter().take(3).cloned().collect::<Vec<_>>().join(",");
    if values.len() > 3 {
        shown.push_str(&format!(",+{}", values.len() - 3));
    }
    let op = if clause.negate {
        format!("not {}", clause.op)
    } else {
        clause.op.clone()
    };
    format!("{} {op} {shown}", clause.attribute)
}

fn summarise_state(flag: &LdFlag, config: &LdEnvironment) -> Result<FlagState, String> {
    let version = config.version.map(|v| v.to_string());
    if !config.on {
        // Off: everyone gets the off variation; without one, the SDK's code default.
        let value = match config.off_variation {
            Some(index) => Some(variation_value(flag, index)?),
            None => None,
        };
        return Ok(FlagState {
            enabled: false,
            value,
            rollout: Rollout::Everyone,
            overrides: Vec::new(),
            version,
        });
    }
    let (value, rollout) = match &config.fallthrough {
        Some(LdServe {
            rollout: Some(rollout),
            ..
        }) => {
            let rollout = rollout_of(flag, rollout)?;
            match rollout {
                Rollout::Percentage { percent } if percent >= 100.0 => {
                    (Some(Value::Bool(true)), Rollout::Everyone)
                }
                Rollout::Percentage { percent } if percent <= 0.0 => {
                    (Some(Value::Bool(false)), Rollout::Everyone)
                }
                // The rest of the population gets `false`.
                Rollout::Percentage { .. } => (Some(Value::Bool(false)), rollout),
                other => (None, other),
            }
        }
        Some(LdServe {
            variation: Some(index),
            ..
        }) => (Some(variation_value(flag, *index)?), Rollout::Everyone),
        _ => (None, Rollout::Everyone),
    };
    let mut overrides = Vec::new();
    // Evaluated first: an unmet prerequisite serves the off variation (no summary can say
    // when it is met, so it is shown as what it is).
    for prerequisite in &config.prerequisites {
        let target = format!(
            "prerequisite {} not variation {}",
            prerequisite.key, prerequisite.variation
        );
        let off = match config.off_variation {
            Some(index) => Some(variation_value(flag, index)?),
            None => None,
        };
        overrides.push(match off {
            Some(Value::Bool(on)) => Override {
                target,
                kind: OverrideKind::Segment,
                enabled: on,
                value: None,
                rollout: Rollout::Everyone,
            },
            value => Override {
                target,
                kind: OverrideKind::Segment,
                enabled: true,
                value,
                rollout: Rollout::Everyone,
            },
        });
    }
    for target in config.targets.iter().chain(&config.context_targets) {
        // contextTargets for the user kind repeat `targets` with empty values.
        if target.values.is_empty() {
            continue;
        }
        let kind = target.context_kind.as_deref().unwrap_or("user");
        let shown: Vec<&str> = target.values.iter().take(2).map(String::as_str).collect();
        let more = target.values.len().saturating_sub(shown.len());
        let label = if more > 0 {
            format!("{kind} {} +{more}", shown.join(","))
        } else {
            format!("{kind} {}", shown.join(","))
        };
        // Individual targets are named contexts, not a group.
        let mut individual = override_for(flag, label, Some(target.variation), None)?;
        individual.kind = OverrideKind::Identity;
        overrides.push(individual);
    }
    for (index, rule) in config.rules.iter().enumerate() {
        if rule.disabled {
            continue;
        }
        let label = match rule.description.as_deref().map(str::trim) {
            Some(description) if !description.is_empty() => description.to_string(),
            _ => match rule.clauses.first() {
                Some(clause) => format!("rule {}: {}", index + 1, clause_text(clause)),
                None => format!("rule {}", index + 1),
            },
        };
        overrides.push(override_for(
            flag,
            label,
            rule.variation,
            rule.rollout.as_ref(),
        )?);
    }
    Ok(FlagState {
        enabled: true,
        value,
        rollout,
        overrides,
        version,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::cell_text;

    fn rollout_base(fallthrough: Value, on: bool) -> RolloutBase {
        let flag = json!({
            "variations": [
                {"_id": "v-true", "value": true, "name": "Enabled"},
                {"_id": "v-false", "value": false}
            ],
            "environments": {"production": {"on": on, "fallthrough": fallthrough}}
        });
        match RolloutBase::parse(&flag, "production") {
            Ok(base) => base,
            Err(message) => panic!("{message}"),
        }
    }

    #[test]
    fn a_rollout_sends_thousandths_and_the_existing_bucketing_back() {
        let base = rollout_base(
            json!({"rollout": {"variations": [], "bucketBy": "email", "contextKind": "org", "seed": 7}}),
            true,
        );
        let instructions = base
            .instructions("f", &RolloutTarget::Percent { percent: 12.345 })
            .unwrap_or_default();
        assert_eq!(
            instructions,
            vec![json!({
                "kind": "updateFallthroughVariationOrRollout",
                "rolloutWeights": {"v-true": 12345, "v-false": 87655},
                "rolloutBucketBy": "email",
                "rolloutContextKind": "org",
            })]
        );
        // No rollout yet: LaunchDarkly's defaults; a flag switched off is turned on first.
        let base = rollout_base(json!({"variation": 1}), false);
        let instructions = base
            .instructions("f", &RolloutTarget::Percent { percent: 100.0 })
            .unwrap_or_default();
        assert_eq!(
            instructions,
            vec![
                json!({"kind": "turnFlagOn"}),
                json!({
                    "kind": "updateFallthroughVariationOrRollout",
                    "rolloutWeights": {"v-true": 100000, "v-false": 0},
                }),
            ]
        );
        // A variant by value or by name.
        for name in ["false", "Enabled"] {
            let instructions = base
                .instructions(
                    "f",
                    &RolloutTarget::Variant {
                        variant: name.into(),
                    },
                )
                .unwrap_or_default();
            assert_eq!(instructions.len(), 2, "{name}");
        }
        let unknown = base.instructions(
            "f",
            &RolloutTarget::Variant {
                variant: "maybe".into(),
            },
        );
        assert!(
            unknown
                .as_ref()
                .is_err_and(|e| e.contains("no variation `maybe`") && e.contains("true, false")),
            "{unknown:?}"
        );
    }

    fn flag(json: Value) -> Flag {
        let parsed: LdFlag = serde_json::from_value(json).unwrap();
        summarise(&parsed, "production").unwrap()
    }

    fn boolean(env: Value) -> Value {
        json!({
            "key": "new_checkout", "kind": "boolean", "tags": [],
            "variations": [{"value": true}, {"value": false}],
            "environments": {"production": env}
        })
    }

    #[test]
    fn boolean_rollout_reads_on_ten_percent() {
        let canary = flag(boolean(json!({
            "on": true, "version": 7, "offVariation": 1,
            "fallthrough": {"rollout": {"variations": [
                {"variation": 0, "weight": 10000}, {"variation": 1, "weight": 90000}
            ]}}
        })));
        assert_eq!(cell_text(canary.meta.kind, &canary.state), "ON 10%");
        assert_eq!(canary.state.version.as_deref(), Some("7"));
    }

    #[test]
    fn off_serves_the_off_variation_and_drops_targeting() {
        let off = flag(boolean(json!({
            "on": false, "version": 3, "offVariation": 1,
            "fallthrough": {"variation": 0},
            "rules": [{"variation": 0, "clauses": []}]
        })));
        assert!(!off.state.enabled);
        assert_eq!(off.state.value, Some(Value::Bool(false)));
        assert!(off.state.overrides.is_empty());
    }

    #[test]
    fn bad_variation_index_is_an_error_naming_the_flag() {
        let parsed: LdFlag = serde_json::from_value(boolean(json!({
            "on": true, "fallthrough": {"variation": 5}
        })))
        .unwrap();
        let err = summarise(&parsed, "production").unwrap_err();
        assert!(
            err.contains("new_checkout") && err.contains("variation 5"),
            "{err}"
        );
        let missing = summarise(&parsed, "staging").unwrap_err();
        assert!(missing.contains("staging"), "{missing}");
    }

    #[test]
    fn a_disabled_rule_is_not_a_live_override() {
        let flagged = flag(boolean(json!({
            "on": true, "version": 4, "offVariation": 1,
            "fallthrough": {"variation": 1},
            "rules": [
                {"_id": "r1", "disabled": true, "variation": 0, "trackEvents": false,
                 "description": "beta testers", "clauses": []},
                {"_id": "r2", "variation": 0, "trackEvents": false,
                 "description": "staff", "clauses": []}
            ]
        })));
        let targets: Vec<&str> = flagged
            .state
            .overrides
            .iter()
            .map(|o| o.target.as_str())
            .collect();
        assert_eq!(targets, vec!["staff"]);
        assert_eq!(
            cell_text(flagged.meta.kind, &flagged.state),
            "ON 1 seg only"
        );
    }

    #[test]
    fn individual_targets_count_as_identities() {
        let flagged = flag(boolean(json!({
            "on": true, "offVariation": 1, "fallthrough": {"variation": 0},
            "targets": [{"values": ["alice"], "variation": 1}],
            "rules": [{"variation": 1, "trackEvents": false, "clauses": []}]
        })));
        assert_eq!(
            cell_text(flagged.meta.kind, &flagged.state),
            "ON +1 seg +1 id"
        );
    }

    #[test]
    fn a_pending_conflict_is_recognised() {
        assert!(is_pending_conflict(
            r#"{"code":"invalid_request","message":"this change conflicts with a pending scheduled change"}"#
        ));
        assert!(!is_pending_conflict(
            r#"{"code":"invalid_request","message":"unknown instruction kind"}"#
        ));
    }

    #[test]
    fn metadata_concurrency_follows_the_route_budget() {
        assert_eq!(metadata_concurrency(None), 8);
        assert_eq!(metadata_concurrency(Some(0)), 1);
        assert_eq!(metadata_concurrency(Some(3)), 1);
        assert_eq!(metadata_concurrency(Some(30)), 28);
        assert_eq!(metadata_concurrency(Some(10_000)), 50);
    }

    #[test]
    fn sdk_hosts_follow_the_instance() {
        assert_eq!(sdk_url_for("https://app.launchdarkly.com"), DEFAULT_SDK_URL);
        assert_eq!(
            sdk_url_for("https://app.eu.launchdarkly.com"),
            "https://sdk.eu.launchdarkly.com"
        );
        assert_eq!(
            sdk_url_for("https://app.launchdarkly.us"),
            "https://sdk.launchdarkly.us"
        );
        assert_eq!(sdk_url_for("http://127.0.0.1:9"), "http://127.0.0.1:9");
    }
}

/// Structure-aware fuzzing of LaunchDarkly flag JSON (issue 8): a realistic flag, mutated at
/// random places, never panics the parser or the summary.
#[cfg(test)]
mod fuzz {
    use super::*;
    use crate::fuzz_support::mutated;
    use proptest::prelude::*;
    use serde_json::json;

    fn realistic() -> Value {
        json!({
            "key": "kill_switch_checkout", "kind": "multivariate", "tags": ["kill-switch"],
            "temporary": false, "_maintainer": {"email": "team-checkout@example.com"},
            "variations": [{"value": "a"}, {"value": "b"}, {"value": "c"}],
            "environments": {"production": {
                "on": true, "offVariation": 1, "_version": 7,
                "fallthrough": {"rollout": {"variations": [
                    {"variation": 0, "weight": 33000}, {"variation": 1, "weight": 33000},
                    {"variation": 2, "weight": 34000}]}},
                "targets": [{"variation": 0, "values": ["alice", "bob"]}],
                "rules": [{"variation": 1, "description": "EU", "clauses": [
                    {"attribute": "country", "op": "in", "values": ["DE", "FR"], "negate": false}]}]
            }}
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1500))]
        #[test]
        fn mutated_flags_never_panic(flag in mutated(realistic())) {
            if let Ok(parsed) = serde_json::from_value::<LdFlag>(flag)
                && let Ok(summary) = summarise(&parsed, "production")
            {
                let _ = crate::model::cell_text(summary.meta.kind, &summary.state);
            }
        }
    }
}
