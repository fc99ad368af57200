//! A local fake of LaunchDarkly's REST API v2 and server-side SDK polling endpoint, on
//! 127.0.0.1 at a free port, inside the test process (it stops with the process, and with its
//! handle's `Drop`).
//!
//! Written from LaunchDarkly's published API documentation (the REST API v2 overview and
//! OpenAPI document that ship with `launchdarkly/api-client-*`), not from the provider's code:
//! - Authentication (overview, "Authentication using request header"): the `Authorization`
//!   header holds the access token itself, no scheme; anything else is 401
//!   `{"code":"unauthorized","message":"Invalid access token"}`. SDK keys are refused by the
//!   REST API; access tokens are refused by the SDK endpoints.
//! - Errors (overview, "Errors"): always JSON `{"code","message","id"}`; 400 invalid request,
//!   401, 403 forbidden (a reader-role token writing), 404 unknown resource, 405 method not
//!   allowed, 409 conflict with a concurrent request, 429 rate limited.
//! - Semantic patch (overview, "Updates using semantic patch", and "Update feature flag"): the
//!   `Content-Type` must carry `domain-model=launchdarkly.semanticpatch`, else the body is read
//!   as a JSON patch and an object is a 400; `instructions` is required, each with a known
//!   `kind`; `turnFlagOn`/`turnFlagOff` require `environmentKey`; all-or-nothing; an
//!   instruction that finds the flag already in that state does nothing. `comment` goes to
//!   the audit log.
//! - Approvals ("Create approval request for a flag"): an environment that requires approvals
//!   refuses the direct PATCH: 405 `{"code":"method_not_allowed","message":"Flag configuration
//!   updates require approval: action 'updateOn' not allowed"}` (BACKENDS.md, and the body
//!   quoted in launchdarkly/ldcli issue #581); `POST
//!   /api/v2/projects/{p}/flags/{f}/environments/{e}/approval-requests` with `description`
//!   (required), `instructions` (required), `comment` answers 201 with `_id`,
//!   `status: "pending"`, `reviewStatus: "pending"`.
//! - Rate limiting (overview, "Rate limiting"): 429 with `X-Ratelimit-Global-Remaining`,
//!   `X-Ratelimit-Reset` (epoch milliseconds) or, for IP limits, `Retry-After` (seconds). SDK
//!   endpoints are never rate limited.
//! - Flags ("List feature flags", "Get feature flag", `FeatureFlag`/`FeatureFlagConfig`
//!   schemas): list is paginated (`limit` default 20, max 100; `offset`), `{"items",
//!   "totalCount","_links"}`; `environments` only with `env=` under API version 20240415;
//!   without `summary=0` the environments omit `rules`, `targets`, `contextTargets`,
//!   `prerequisites`. Each environment has `on`, `offVariation`, `fallthrough`, `version`...
//!   A change bumps the environment's `version` and the flag's `_version`.
//! - Audit log ("List audit log entries"): `GET /api/v2/auditlog?spec=proj/p:env/e:flag/f`,
//!   `{"items":[{"_id","date","kind","name","titleVerb","title","comment","member",
//!   "accesses":[{"action","resource"}]}]}`, newest first.
//! - SDK ("server-side SDK polling": `/sdk/latest-all`, `/sdk/latest-flags/{key}` as the
//!   open-source server SDKs request them): flags with `key`, `version`, `on`, `variations`
//!   as plain values, `offVariation`, `fallthrough`, `rules`, `targets`, `deleted`.
//!
//! What the fake does not do: JSON patch and merge patch (killswitch sends only semantic
//! patches; such bodies get a 400 saying so), instructions other than turnFlagOn/turnFlagOff
//! and updateFallthroughVariationOrRollout (see [`update_fallthrough`])
//! (valid kinds are accepted by validation but answered 400 "not implemented by the fake"),
//! approval review and apply, segments.
#![allow(dead_code)]

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Response, StatusCode, Uri};
use serde_json::{Value, json};

pub const PROJECT: &str = "checkout-svc";
pub const READER_TOKEN: &str = "api-0f1e2d3c-reader-7a6b5c4d3e2f1a0b";
pub const WRITER_TOKEN: &str = "api-9a8b7c6d-writer-1f2e3d4c5b6a7988";
pub const SDK_KEY_PROD: &str = "sdk-4c3b2a19-prod-8e7d6c5b4a392817";
pub const SDK_KEY_REGULATED: &str = "sdk-77aa55bb-regulated-33cc11dd99ee";

/// Semantic patch instruction kinds documented for flags ("Update feature flag").
const KNOWN_KINDS: &[&str] = &[
    "turnFlagOn",
    "turnFlagOff",
    "addUserTargets",
    "removeUserTargets",
    "replaceUserTargets",
    "clearUserTargets",
    "addTargets",
    "removeTargets",
    "replaceTargets",
    "clearTargets",
    "addRule",
    "removeRule",
    "reorderRules",
    "addClauses",
    "removeClauses",
    "updateClause",
    "updateRuleVariationOrRollout",
    "updateFallthroughVariationOrRollout",
    "updateOffVariation",
    "addPrerequisite",
    "removePrerequisite",
    "updatePrerequisite",
    "replacePrerequisites",
    "archiveFlag",
    "restoreFlag",
    "deprecateFlag",
    "addTags",
    "removeTags",
    "updateName",
    "updateDescription",
    "updateMaintainerMember",
    "markTemporary",
    "markPermanent",
];

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Role {
    Reader,
    Writer,
}

pub struct EnvSettings {
    pub name: String,
    pub sdk_key: String,
    pub requires_approval: bool,
}

/// One 429 the fake answers before serving normally again.
#[derive(Clone, Debug)]
pub enum RateLimit {
    /// `X-Ratelimit-Reset` at now + this.
    ResetIn(Duration),
    /// `Retry-After: seconds`.
    RetryAfter(u64),
}

/// Every request the fake saw, for assertions.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub query: String,
    pub authorization: Option<String>,
    pub content_type: Option<String>,
    pub api_version: Option<String>,
    pub body: String,
    pub status: u16,
}

pub struct FakeState {
    pub project: String,
    pub envs: BTreeMap<String, EnvSettings>,
    /// Full flag representations with every environment.
    pub flags: Vec<Value>,
    pub tokens: BTreeMap<String, Role>,
    pub audit: Vec<Value>,
    pub approvals: Vec<Value>,
    pub requests: Vec<Seen>,
    /// 429s for the next REST requests of any kind.
    pub rate_limits: VecDeque<RateLimit>,
    /// 429s for the next PATCH requests only (taken before `rate_limits`).
    pub patch_rate_limits: VecDeque<RateLimit>,
    /// The next PATCH answers 409, as when a concurrent request changed the flag.
    pub conflict_next_patch: bool,
    /// The next PATCH answers 400 because it would make a pending scheduled change or approval
    /// request fail (the API reference's "Conflicts"), unless `ignoreConflicts=true`.
    pub pending_conflict_next_patch: bool,
    /// Which reading of the spec the list endpoint follows for `environments`: `false` (the
    /// endpoint's text) returns them with `env=`; `true` (the `FeatureFlag` schema and the
    /// 20240415 changelog) only with the `filterEnv:` filter in `filter=`.
    pub environments_need_filter_env: bool,
    /// After a change, this many SDK reads still see the old data (CDN propagation).
    pub sdk_lag_reads: u32,
    /// The flag list route's rate limit, as LaunchDarkly states it per route: this many
    /// list requests per 10 s window, each answer carrying `X-Ratelimit-Route-Remaining`, and
    /// 429 past it. `None` (the default): no header, no limit.
    pub list_route_budget: Option<u64>,
    list_window: Option<(std::time::Instant, u64)>,
    /// Every flag list request is held this long before it is answered (not under the lock),
    /// so tests can see how many the client sends at once.
    pub list_hold: Option<Duration>,
    list_in_flight: usize,
    /// The most flag list requests the fake was answering at the same time.
    pub max_list_in_flight: usize,
    stale_sdk: Option<Vec<Value>>,
    stale_left: u32,
    next_id: u64,
}

pub struct FakeLd {
    pub url: String,
    pub state: Arc<Mutex<FakeState>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for FakeLd {
    fn drop(&mut self) {
        if let Some(stop) = self.shutdown.take() {
            let _ = stop.send(());
        }
    }
}

impl FakeLd {
    /// Starts the fake with the standard project (see [`standard_flags`]).
    pub async fn start() -> FakeLd {
        let mut envs = BTreeMap::new();
        envs.insert(
            "production".to_string(),
            EnvSettings {
                name: "Production".into(),
                sdk_key: SDK_KEY_PROD.into(),
                requires_approval: false,
            },
        );
        envs.insert(
            "regulated".to_string(),
            EnvSettings {
                name: "Regulated".into(),
                sdk_key: SDK_KEY_REGULATED.into(),
                requires_approval: true,
            },
        );
        let mut tokens = BTreeMap::new();
        tokens.insert(READER_TOKEN.to_string(), Role::Reader);
        tokens.insert(WRITER_TOKEN.to_string(), Role::Writer);
        let state = FakeState {
            project: PROJECT.into(),
            envs,
            flags: standard_flags(),
            tokens,
            audit: Vec::new(),
            approvals: Vec::new(),
            requests: Vec::new(),
            rate_limits: VecDeque::new(),
            patch_rate_limits: VecDeque::new(),
            conflict_next_patch: false,
            pending_conflict_next_patch: false,
            environments_need_filter_env: false,
            sdk_lag_reads: 0,
            list_route_budget: None,
            list_window: None,
            list_hold: None,
            list_in_flight: 0,
            max_list_in_flight: 0,
            stale_sdk: None,
            stale_left: 0,
            next_id: 1,
        };
        let state = Arc::new(Mutex::new(state));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let app = Router::new().fallback(handle).with_state(state.clone());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
        });
        FakeLd {
            url: format!("http://{addr}"),
            state,
            shutdown: Some(stop),
        }
    }

    pub fn with<R>(&self, f: impl FnOnce(&mut FakeState) -> R) -> R {
        let mut state = self.state.lock().expect("fake state");
        f(&mut state)
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.with(|s| s.requests.clone())
    }

    pub fn env_config(&self, flag: &str, env: &str) -> Value {
        self.with(|s| {
            s.flags
                .iter()
                .find(|f| f["key"] == flag)
                .map(|f| f["environments"][env].clone())
                .expect("flag in fake")
        })
    }
}

// ---- data --------------------------------------------------------------------------------

fn env_config(env: &str, name: &str, on: bool, version: i64, extra: Value) -> Value {
    let mut config = json!({
        "on": on,
        "archived": false,
        "salt": format!("salt-{env}"),
        "sel": "0123456789abcdef",
        "lastModified": 1_764_000_000_000i64,
        "version": version,
        "targets": [],
        "contextTargets": [],
        "rules": [],
        "fallthrough": {"variation": 0},
        "offVariation": 1,
        "prerequisites": [],
        "_site": {"href": format!("/{PROJECT}/{env}/features"), "type": "text/html"},
        "_environmentName": name,
        "trackEvents": false,
        "trackEventsFallthrough": false,
        "_summary": {"variations": {}, "prerequisites": 0}
    });
    if let (Some(target), Some(extra)) = (config.as_object_mut(), extra.as_object()) {
        for (key, value) in extra {
            target.insert(key.clone(), value.clone());
        }
    }
    config
}

fn flag(
    key: &str,
    kind: &str,
    variations: Value,
    temporary: bool,
    tags: Value,
    prod: Value,
) -> Value {
    let regulated = env_config("regulated", "Regulated", true, 1, json!({}));
    json!({
        "name": key.replace('_', " "),
        "kind": kind,
        "description": format!("{key} (fake)"),
        "key": key,
        "_version": 1,
        "creationDate": 1_700_000_000_000i64,
        "includeInSnippet": false,
        "clientSideAvailability": {"usingMobileKey": false, "usingEnvironmentId": false},
        "variations": variations,
        "temporary": temporary,
        "tags": tags,
        "_links": {
            "parent": {"href": format!("/api/v2/flags/{PROJECT}"), "type": "application/json"},
            "self": {"href": format!("/api/v2/flags/{PROJECT}/{key}"), "type": "application/json"}
        },
        "maintainerId": "569f183514f4432160000007",
        "_maintainer": {
            "_links": {"self": {"href": "/api/v2/members/569f183514f4432160000007", "type": "application/json"}},
            "_id": "569f183514f4432160000007",
            "firstName": "Ada",
            "lastName": "Lovelace",
            "role": "writer",
            "email": "ada@example.com"
        },
        "goalIds": [],
        "experiments": {"baselineIdx": 0, "items": []},
        "customProperties": {},
        "archived": false,
        "deprecated": false,
        "environments": {
            "production": prod,
            "regulated": regulated
        }
    })
}

fn booleans() -> Value {
    json!([
        {"_id": "e432f62b-55f6-49dd-a02f-eb24acf39d05", "value": true, "name": "Enabled"},
        {"_id": "a00bf58d-d252-476c-b915-15a74becacb4", "value": false, "name": "Disabled"}
    ])
}

/// The standard project: one flag per summary the provider must get right.
pub fn standard_flags() -> Vec<Value> {
    vec![
        flag(
            "kill_switch_payments",
            "boolean",
            booleans(),
            false,
            json!(["payments"]),
            env_config("production", "Production", true, 12, json!({})),
        ),
        flag(
            "checkout_redesign",
            "boolean",
            booleans(),
            true,
            json!(["release"]),
            env_config(
                "production",
                "Production",
                true,
                40,
                json!({
                    "fallthrough": {"rollout": {"variations": [
                        {"variation": 0, "weight": 10000},
                        {"variation": 1, "weight": 90000}
                    ], "bucketBy": "key"}},
                    "targets": [{"values": ["alice", "bob", "carol"], "variation": 0, "contextKind": "user"}],
                    "contextTargets": [{"values": [], "variation": 0, "contextKind": "user"}],
                    "rules": [{
                        "_id": "rule-1",
                        "variation": 1,
                        "clauses": [{"_id": "c1", "attribute": "country", "op": "in", "values": ["DE", "FR"], "contextKind": "user", "negate": false}],
                        "trackEvents": false,
                        "rollout": null
                    }]
                }),
            ),
        ),
        flag(
            "search_ranking",
            "multivariate",
            json!([
                {"_id": "v0", "value": "control", "name": "control"},
                {"_id": "v1", "value": "bm25", "name": "a"},
                {"_id": "v2", "value": "vector", "name": "b"}
            ]),
            true,
            json!(["experiment"]),
            env_config(
                "production",
                "Production",
                true,
                5,
                json!({
                    "offVariation": 0,
                    "fallthrough": {"rollout": {"variations": [
                        {"variation": 0, "weight": 33333},
                        {"variation": 1, "weight": 33333},
                        {"variation": 2, "weight": 33334}
                    ]}}
                }),
            ),
        ),
        flag(
            "recommendations_circuit",
            "boolean",
            booleans(),
            false,
            json!(["kill-switch", "recs"]),
            env_config("production", "Production", true, 3, json!({})),
        ),
        flag(
            "dark_mode",
            "boolean",
            booleans(),
            true,
            json!([]),
            env_config("production", "Production", false, 9, json!({})),
        ),
        flag(
            "max_items",
            "multivariate",
            json!([{"_id": "n0", "value": 20}, {"_id": "n1", "value": 50}]),
            false,
            json!(["config"]),
            env_config(
                "production",
                "Production",
                true,
                2,
                json!({
                    "rules": [{
                        "_id": "rule-eu",
                        "description": "EU tenants",
                        "variation": 1,
                        "clauses": [{"attribute": "region", "op": "in", "values": ["eu"], "negate": false}]
                    }]
                }),
            ),
        ),
    ]
}

/// More boolean flags, to make the list span pages.
pub fn filler_flags(count: usize) -> Vec<Value> {
    (0..count)
        .map(|i| {
            flag(
                &format!("filler_{i:04}"),
                "boolean",
                booleans(),
                true,
                json!([]),
                env_config("production", "Production", i % 2 == 0, 1, json!({})),
            )
        })
        .collect()
}

// ---- HTTP --------------------------------------------------------------------------------

fn error(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    json_response(
        status,
        json!({"code": code, "message": message, "id": "30ce6058-87da-11e4-b116-123b93f75cba"}),
    )
}

fn json_response(status: StatusCode, body: Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("Content-Type", "application/json")
        .body(Body::from(body.to_string()))
        .expect("response")
}

fn unauthorized() -> Response<Body> {
    error(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "Invalid access token",
    )
}

fn query_map(uri: &Uri) -> BTreeMap<String, String> {
    uri.query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default()
}

fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The flag list route's rate-limit window.
const LIST_WINDOW: Duration = Duration::from_secs(10);

async fn handle(
    State(state): State<Arc<Mutex<FakeState>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: String,
) -> Response<Body> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let list_route = method == Method::GET
        && uri.path().starts_with("/api/v2/flags/")
        && uri
            .path()
            .trim_start_matches("/api/v2/flags/")
            .split('/')
            .count()
            == 1;
    let hold = if list_route {
        let mut state = state.lock().expect("fake state");
        state.list_in_flight += 1;
        state.max_list_in_flight = state.max_list_in_flight.max(state.list_in_flight);
        state.list_hold
    } else {
        None
    };
    if let Some(hold) = hold {
        tokio::time::sleep(hold).await;
    }
    let mut state = state.lock().expect("fake state");
    if list_route {
        state.list_in_flight -= 1;
    }
    let response = match (list_route, state.list_route_budget) {
        (true, Some(budget)) => {
            let now = std::time::Instant::now();
            let (start, used) = match state.list_window {
                Some((start, used)) if now.duration_since(start) < LIST_WINDOW => (start, used + 1),
                _ => (now, 1),
            };
            state.list_window = Some((start, used));
            if used > budget {
                let reset = now_millis()
                    + i64::try_from((LIST_WINDOW - now.duration_since(start)).as_millis())
                        .unwrap_or(0);
                let mut response = error(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    "You've exceeded the API rate limit. Try again later.",
                );
                let headers = response.headers_mut();
                headers.insert("X-Ratelimit-Route-Remaining", "0".parse().expect("header"));
                headers.insert(
                    "X-Ratelimit-Reset",
                    reset.to_string().parse().expect("header"),
                );
                response
            } else {
                let mut response = route(&mut state, &method, &uri, &headers, &body);
                response.headers_mut().insert(
                    "X-Ratelimit-Route-Remaining",
                    (budget - used).to_string().parse().expect("header"),
                );
                response
            }
        }
        _ => route(&mut state, &method, &uri, &headers, &body),
    };
    let seen = Seen {
        method: method.to_string(),
        path: uri.path().to_string(),
        query: uri.query().unwrap_or_default().to_string(),
        authorization: header("authorization"),
        content_type: header("content-type"),
        api_version: header("ld-api-version"),
        body,
        status: response.status().as_u16(),
    };
    state.requests.push(seen);
    response
}

fn route(
    state: &mut FakeState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &str,
) -> Response<Body> {
    let segments: Vec<String> = uri
        .path()
        .trim_start_matches('/')
        .split('/')
        .map(percent_decode)
        .collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let query = query_map(uri);

    if let ["sdk", rest @ ..] = segments.as_slice() {
        return sdk(state, method, rest, &auth);
    }
    if !matches!(segments.as_slice(), ["api", "v2", ..]) {
        return error(
            StatusCode::NOT_FOUND,
            "not_found",
            "Invalid resource identifier",
        );
    }
    // REST API: the header holds the token itself (no "Bearer", no "api_key").
    let Some(role) = state.tokens.get(&auth).copied() else {
        return unauthorized();
    };
    let limit = if method == Method::PATCH && !state.patch_rate_limits.is_empty() {
        state.patch_rate_limits.pop_front()
    } else {
        state.rate_limits.pop_front()
    };
    if let Some(limit) = limit {
        return too_many_requests(limit);
    }
    match (method.as_str(), &segments[2..]) {
        ("GET", ["flags", project]) => list_flags(state, project, &query),
        ("GET", ["flags", project, key]) => get_flag(state, project, key, &query),
        ("PATCH", ["flags", project, key]) => patch_flag(state, role, project, key, headers, body),
        (
            "POST",
            [
                "projects",
                project,
                "flags",
                key,
                "environments",
                env,
                "approval-requests",
            ],
        ) => create_approval(state, role, project, key, env, body),
        ("GET", ["auditlog"]) => audit_log(state, &query),
        (_, ["flags", ..]) | (_, ["projects", ..]) | (_, ["auditlog"]) => error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "Method not allowed",
        ),
        _ => error(
            StatusCode::NOT_FOUND,
            "not_found",
            "Invalid resource identifier",
        ),
    }
}

fn too_many_requests(limit: RateLimit) -> Response<Body> {
    let mut response = error(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        "You've exceeded the API rate limit. Try again later.",
    );
    let headers = response.headers_mut();
    headers.insert("X-Ratelimit-Global-Remaining", "0".parse().expect("header"));
    match limit {
        RateLimit::ResetIn(after) => {
            let reset = now_millis() + i64::try_from(after.as_millis()).unwrap_or(0);
            headers.insert(
                "X-Ratelimit-Reset",
                reset.to_string().parse().expect("header"),
            );
        }
        RateLimit::RetryAfter(seconds) => {
            headers.insert("Retry-After", seconds.to_string().parse().expect("header"));
        }
    }
    response
}

fn percent_decode(text: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", text.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// The representation the REST API returns: only the asked environment (or all, for a
/// single flag without `env`), summarised unless `summary=0`.
fn represent(flag: &Value, env: Option<&str>, summary: bool, list: bool) -> Value {
    let mut out = flag.clone();
    let Some(object) = out.as_object_mut() else {
        return out;
    };
    let environments = object.remove("environments").unwrap_or_else(|| json!({}));
    let mut kept = serde_json::Map::new();
    if let Some(all) = environments.as_object() {
        for (key, config) in all {
            if env.is_some_and(|wanted| wanted != key) {
                continue;
            }
            let mut config = config.clone();
            if summary && let Some(config) = config.as_object_mut() {
                for field in ["rules", "targets", "contextTargets", "prerequisites"] {
                    config.remove(field);
                }
            }
            kept.insert(key.clone(), config);
        }
    }
    // API version 20240415: a list carries `environments` only when filtered by environment.
    if !list || env.is_some() {
        object.insert("environments".into(), Value::Object(kept));
    }
    out
}

fn list_flags(
    state: &FakeState,
    project: &str,
    query: &BTreeMap<String, String>,
) -> Response<Body> {
    if project != state.project {
        return error(StatusCode::NOT_FOUND, "not_found", "Unknown project key");
    }
    let limit = match query.get("limit").map(|l| l.parse::<usize>()) {
        None => 20,
        Some(Ok(limit)) if (1..=100).contains(&limit) => limit,
        Some(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "limit must be between 1 and 100",
            );
        }
    };
    let offset = match query.get("offset").map(|o| o.parse::<usize>()) {
        None => 0,
        Some(Ok(offset)) => offset,
        Some(Err(_)) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "offset must be a number",
            );
        }
    };
    let filter_env = query.get("filter").and_then(|filter| {
        filter
            .split(',')
            .find_map(|part| part.trim().strip_prefix("filterEnv:"))
    });
    let env = if state.environments_need_filter_env {
        filter_env
    } else {
        query.get("env").map(String::as_str)
    };
    // A boolean in the schema; the endpoint's text says `summary=0`.
    let summary = !matches!(
        query.get("summary").map(String::as_str),
        Some("0" | "false")
    );
    let total = state.flags.len();
    let items: Vec<Value> = state
        .flags
        .iter()
        .skip(offset)
        .take(limit)
        .map(|f| represent(f, env, summary, true))
        .collect();
    let base = format!("/api/v2/flags/{}", state.project);
    let mut links = json!({
        "self": {"href": format!("{base}?limit={limit}&offset={offset}"), "type": "application/json"},
        "first": {"href": format!("{base}?limit={limit}&offset=0"), "type": "application/json"}
    });
    if offset + limit < total {
        links["next"] = json!({"href": format!("{base}?limit={limit}&offset={}", offset + limit), "type": "application/json"});
    }
    json_response(
        StatusCode::OK,
        json!({"items": items, "totalCount": total, "_links": links}),
    )
}

fn get_flag(
    state: &FakeState,
    project: &str,
    key: &str,
    query: &BTreeMap<String, String>,
) -> Response<Body> {
    if project != state.project {
        return error(StatusCode::NOT_FOUND, "not_found", "Unknown project key");
    }
    match state.flags.iter().find(|f| f["key"] == key) {
        Some(flag) => json_response(
            StatusCode::OK,
            represent(flag, query.get("env").map(String::as_str), false, false),
        ),
        None => error(
            StatusCode::NOT_FOUND,
            "not_found",
            "Unknown feature flag key",
        ),
    }
}

fn patch_flag(
    state: &mut FakeState,
    role: Role,
    project: &str,
    key: &str,
    headers: &HeaderMap,
    body: &str,
) -> Response<Body> {
    if role != Role::Writer {
        return error(
            StatusCode::FORBIDDEN,
            "forbidden",
            "Access to the requested resource was denied",
        );
    }
    if project != state.project {
        return error(StatusCode::NOT_FOUND, "not_found", "Unknown project key");
    }
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let Ok(patch) = serde_json::from_str::<Value>(body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Invalid JSON body",
        );
    };
    let semantic = content_type
        .split(';')
        .map(str::trim)
        .any(|part| part == "domain-model=launchdarkly.semanticpatch");
    if !semantic {
        // Read as a JSON patch: an array, or {"patch": [...]} with a comment.
        return if patch.is_array() || patch.get("patch").is_some() || patch.get("merge").is_some() {
            error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "JSON patch and merge patch are not implemented by the fake",
            )
        } else {
            error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Invalid JSON patch: expected an array of operations",
            )
        };
    }
    let Some(instructions) = patch.get("instructions").and_then(Value::as_array) else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "instructions are required",
        );
    };
    if instructions.is_empty() {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "instructions are required",
        );
    }
    let mut kinds = Vec::new();
    for instruction in instructions {
        let kind = instruction
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !KNOWN_KINDS.contains(&kind) {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                &format!("unknown instruction kind \"{kind}\""),
            );
        }
        if !matches!(
            kind,
            "turnFlagOn" | "turnFlagOff" | "updateFallthroughVariationOrRollout"
        ) {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                &format!("instruction kind \"{kind}\" is not implemented by the fake"),
            );
        }
        kinds.push(kind.to_string());
    }
    let Some(env) = patch
        .get("environmentKey")
        .and_then(Value::as_str)
        .map(str::to_string)
    else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "environmentKey is required for this instruction",
        );
    };
    let Some(settings) = state.envs.get(&env) else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            &format!("unknown environment key \"{env}\""),
        );
    };
    let requires_approval = settings.requires_approval;
    let env_name = settings.name.clone();
    let Some(index) = state.flags.iter().position(|f| f["key"] == key) else {
        return error(
            StatusCode::NOT_FOUND,
            "not_found",
            "Unknown feature flag key",
        );
    };
    if requires_approval {
        return error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            // The body LaunchDarkly answers, as reported in launchdarkly/ldcli#581.
            "Flag configuration updates require approval: action 'updateOn' not allowed",
        );
    }
    if state.pending_conflict_next_patch {
        state.pending_conflict_next_patch = false;
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "This change would cause a pending scheduled change or approval request to fail; set ignoreConflicts to apply it anyway",
        );
    }
    if state.conflict_next_patch {
        state.conflict_next_patch = false;
        return error(
            StatusCode::CONFLICT,
            "conflict",
            "The flag was changed by a concurrent request; retry",
        );
    }
    let snapshot = sdk_flags(state, &env);
    let comment = patch
        .get("comment")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    // All or nothing: the instructions apply to a copy, kept only when every one succeeded.
    let mut working = state.flags[index].clone();
    let mut done: Vec<(&str, String)> = Vec::new();
    for instruction in instructions {
        let kind = instruction["kind"].as_str().unwrap_or_default();
        match kind {
            "turnFlagOn" | "turnFlagOff" => {
                let on = kind == "turnFlagOn";
                if working["environments"][&env]["on"] == on {
                    continue; // "instructions silently do nothing if the flag is already in that state"
                }
                working["environments"][&env]["on"] = json!(on);
                let verb = if on { "turned on" } else { "turned off" };
                done.push(("updateOn", verb.to_string()));
            }
            _ => match update_fallthrough(&mut working, &env, instruction) {
                Ok(true) => done.push((
                    "updateFallthrough",
                    "changed the default rule of".to_string(),
                )),
                Ok(false) => {}
                Err(message) => {
                    return error(StatusCode::BAD_REQUEST, "invalid_request", &message);
                }
            },
        }
    }
    if !done.is_empty() {
        state.flags[index] = working;
        let flag = &mut state.flags[index];
        let version = flag["environments"][&env]["version"].as_i64().unwrap_or(0) + 1;
        flag["environments"][&env]["version"] = json!(version);
        flag["environments"][&env]["lastModified"] = json!(now_millis());
        let flag_version = flag["_version"].as_i64().unwrap_or(0) + 1;
        flag["_version"] = json!(flag_version);
        let name = flag["name"].clone();
        let verb = done
            .iter()
            .map(|(_, verb)| verb.as_str())
            .collect::<Vec<_>>()
            .join(" and ");
        let id = next_hex(state);
        let resource = format!("proj/{}:env/{env}:flag/{key}", state.project);
        let accesses: Vec<Value> = done
            .iter()
            .map(|(action, _)| json!({"action": action, "resource": resource}))
            .collect();
        state.audit.push(json!({
            "_links": {"self": {"href": format!("/api/v2/auditlog/{id}"), "type": "application/json"}},
            "_id": id,
            "_accountId": "5f8a0000000000000000abcd",
            "date": now_millis(),
            "accesses": accesses,
            "kind": "flag",
            "name": name,
            "description": format!("- {verb} the flag"),
            "shortDescription": verb,
            "comment": comment,
            "member": {
                "_links": {"self": {"href": "/api/v2/members/5f8a00000000000000000001", "type": "application/json"}},
                "_id": "5f8a00000000000000000001",
                "email": "incident-bot@example.com",
                "firstName": "Incident",
                "lastName": "Bot"
            },
            "titleVerb": verb,
            "title": format!("Incident Bot {verb} the flag [{}]({}) in `{env_name}`", name.as_str().unwrap_or(key), key),
            "target": {"name": name, "resources": [resource]}
        }));
        if state.sdk_lag_reads > 0 {
            if state.stale_sdk.is_none() {
                state.stale_sdk = Some(snapshot);
            }
            state.stale_left = state.sdk_lag_reads;
        }
    }
    json_response(
        StatusCode::OK,
        represent(&state.flags[index], None, false, false),
    )
}

/// `updateFallthroughVariationOrRollout` as "Update feature flag" documents it: `variationId`
/// serves one variation; `rolloutWeights` (variation id -> thousandths of a percent, summing to
/// 100000) with optional `rolloutBucketBy` and `rolloutContextKind` (default `user`) serves a
/// percentage rollout. Assumed where the documentation is silent: a rollout keeps the `seed` of
/// the rollout it replaces (the instruction has no parameter for it), and weights must sum to
/// 100000 as they must in the REST representation. Returns whether anything changed.
fn update_fallthrough(flag: &mut Value, env: &str, instruction: &Value) -> Result<bool, String> {
    let ids: Vec<String> = flag["variations"]
        .as_array()
        .map(|v| {
            v.iter()
                .map(|v| v["_id"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default();
    let old = flag["environments"][env]["fallthrough"].clone();
    let new = if let Some(id) = instruction.get("variationId") {
        let index = id
            .as_str()
            .and_then(|id| ids.iter().position(|known| known == id))
            .ok_or_else(|| format!("unknown variation id {id}"))?;
        json!({"variation": index})
    } else if let Some(weights) = instruction.get("rolloutWeights") {
        let weights = weights
            .as_object()
            .ok_or("rolloutWeights must be an object of variation ids to weights")?;
        let mut variations = Vec::new();
        let mut total = 0i64;
        for (index, id) in ids.iter().enumerate() {
            let Some(weight) = weights.get(id) else {
                continue;
            };
            let weight = weight
                .as_i64()
                .filter(|w| (0..=100_000).contains(w))
                .ok_or_else(|| {
                    format!("weight for variation {id} must be an integer from 0 to 100000")
                })?;
            total += weight;
            variations.push(json!({"variation": index, "weight": weight}));
        }
        if let Some(unknown) = weights.keys().find(|id| !ids.contains(id)) {
            return Err(format!("unknown variation id \"{unknown}\""));
        }
        if total != 100_000 {
            return Err(format!("rollout weights must sum to 100000, not {total}"));
        }
        let mut rollout = json!({
            "variations": variations,
            "contextKind": instruction.get("rolloutContextKind").cloned().unwrap_or(json!("user")),
        });
        if let Some(bucket_by) = instruction.get("rolloutBucketBy") {
            rollout["bucketBy"] = bucket_by.clone();
        }
        if let Some(seed) = old.get("rollout").and_then(|r| r.get("seed")) {
            rollout["seed"] = seed.clone();
        }
        json!({"rollout": rollout})
    } else {
        return Err(
            "updateFallthroughVariationOrRollout needs variationId or rolloutWeights".into(),
        );
    };
    let changed = new != old;
    flag["environments"][env]["fallthrough"] = new;
    Ok(changed)
}

fn next_hex(state: &mut FakeState) -> String {
    state.next_id += 1;
    format!("{:024x}", 0x5f8a_0000_0000_0000u64 + state.next_id)
}

fn create_approval(
    state: &mut FakeState,
    role: Role,
    project: &str,
    key: &str,
    env: &str,
    body: &str,
) -> Response<Body> {
    if role != Role::Writer {
        return error(
            StatusCode::FORBIDDEN,
            "forbidden",
            "Access to the requested resource was denied",
        );
    }
    if project != state.project || !state.envs.contains_key(env) {
        return error(
            StatusCode::NOT_FOUND,
            "not_found",
            "Invalid resource identifier",
        );
    }
    if !state.flags.iter().any(|f| f["key"] == key) {
        return error(
            StatusCode::NOT_FOUND,
            "not_found",
            "Unknown feature flag key",
        );
    }
    let Ok(request) = serde_json::from_str::<Value>(body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Invalid JSON body",
        );
    };
    let Some(description) = request.get("description").and_then(Value::as_str) else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "description is required",
        );
    };
    let instructions = request
        .get("instructions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if instructions.is_empty()
        || instructions.iter().any(|i| {
            !KNOWN_KINDS.contains(&i.get("kind").and_then(Value::as_str).unwrap_or_default())
        })
    {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "instructions must be a non-empty list of valid instructions",
        );
    }
    let id = next_hex(state);
    let approval = json!({
        "_id": id,
        "_version": 1,
        "creationDate": now_millis(),
        "serviceKind": "launchdarkly",
        "requestorId": "5f8a00000000000000000001",
        "description": description,
        "reviewStatus": "pending",
        "allReviews": [],
        "notifyMemberIds": [],
        "status": "pending",
        "instructions": instructions,
        "conflicts": [],
        "comment": request.get("comment").cloned().unwrap_or(Value::Null),
        "_links": {"self": {"href": format!("/api/v2/projects/{project}/flags/{key}/environments/{env}/approval-requests/{id}"), "type": "application/json"}}
    });
    state.approvals.push(approval.clone());
    json_response(StatusCode::CREATED, approval)
}

fn audit_log(state: &FakeState, query: &BTreeMap<String, String>) -> Response<Body> {
    let spec = query.get("spec").cloned().unwrap_or_default();
    let limit = query
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(10);
    let items: Vec<Value> = state
        .audit
        .iter()
        .rev()
        .filter(|entry| {
            spec.is_empty()
                || entry["accesses"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|access| access["resource"] == spec.as_str()))
        })
        .take(limit)
        .cloned()
        .collect();
    json_response(
        StatusCode::OK,
        json!({"items": items, "_links": {"self": {"href": "/api/v2/auditlog", "type": "application/json"}}}),
    )
}

// ---- SDK ---------------------------------------------------------------------------------

/// Every flag of an environment as the server-side SDK endpoint serves it.
fn sdk_flags(state: &FakeState, env: &str) -> Vec<Value> {
    state
        .flags
        .iter()
        .filter_map(|flag| {
            let config = flag["environments"].get(env)?;
            let variations: Vec<Value> = flag["variations"]
                .as_array()
                .map(|v| v.iter().map(|v| v["value"].clone()).collect())
                .unwrap_or_default();
            Some(json!({
                "key": flag["key"],
                "version": config["version"],
                "on": config["on"],
                "prerequisites": config["prerequisites"],
                "salt": config["salt"],
                "targets": config["targets"],
                "contextTargets": config["contextTargets"],
                "rules": sdk_rules(&config["rules"]),
                "fallthrough": config["fallthrough"],
                "offVariation": config["offVariation"],
                "variations": variations,
                "clientSide": false,
                "trackEvents": false,
                "trackEventsFallthrough": false,
                "debugEventsUntilDate": null,
                "deleted": false
            }))
        })
        .collect()
}

/// Rules as the server SDKs' data model has them (`FlagRule`: `id`, `variation` or
/// `rollout`, `clauses`, `trackEvents`; `Clause`: `contextKind`, `attribute`, `op`, `values`,
/// `negate`): no rule `description`, no `_id`s, which stay in the REST API.
fn sdk_rules(rules: &Value) -> Value {
    let rules = rules.as_array().cloned().unwrap_or_default();
    Value::Array(
        rules
            .iter()
            .map(|rule| {
                let mut out = json!({
                    "id": rule["_id"],
                    "trackEvents": rule["trackEvents"].as_bool().unwrap_or(false),
                    "clauses": rule["clauses"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default()
                        .iter()
                        .map(|clause| {
                            let mut clause = clause.clone();
                            if let Some(object) = clause.as_object_mut() {
                                object.remove("_id");
                            }
                            clause
                        })
                        .collect::<Vec<_>>(),
                });
                for field in ["variation", "rollout"] {
                    if !rule[field].is_null() {
                        out[field] = rule[field].clone();
                    }
                }
                out
            })
            .collect(),
    )
}

fn sdk(state: &mut FakeState, method: &Method, rest: &[&str], auth: &str) -> Response<Body> {
    let Some(env) = state
        .envs
        .iter()
        .find(|(_, settings)| settings.sdk_key == auth)
        .map(|(key, _)| key.clone())
    else {
        // The SDK endpoints answer 401 with no JSON body.
        return Response::builder()
            .status(StatusCode::UNAUTHORIZED)
            .body(Body::empty())
            .expect("response");
    };
    if method != Method::GET {
        return Response::builder()
            .status(StatusCode::METHOD_NOT_ALLOWED)
            .body(Body::empty())
            .expect("response");
    }
    let flags = if state.stale_left > 0 {
        state.stale_left -= 1;
        state.stale_sdk.clone().unwrap_or_default()
    } else {
        state.stale_sdk = None;
        sdk_flags(state, &env)
    };
    match rest {
        ["latest-all"] => {
            let map: serde_json::Map<String, Value> = flags
                .into_iter()
                .map(|f| (f["key"].as_str().unwrap_or_default().to_string(), f))
                .collect();
            json_response(StatusCode::OK, json!({"flags": map, "segments": {}}))
        }
        ["latest-flags", key] => match flags.into_iter().find(|f| f["key"] == *key) {
            Some(flag) => json_response(StatusCode::OK, flag),
            None => Response::builder()
                .status(StatusCode::NOT_FOUND)
                .body(Body::empty())
                .expect("response"),
        },
        _ => Response::builder()
            .status(StatusCode::NOT_FOUND)
            .body(Body::empty())
            .expect("response"),
    }
}
