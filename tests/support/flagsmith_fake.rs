//! A fake Flagsmith API server on 127.0.0.1, built from the responses recorded against a real
//! open-source Flagsmith (v2.265.0) in `tests/fixtures/flagsmith/`, and from Flagsmith's source
//! and documentation where nothing was recorded (change requests, audit log, tags).
//!
//! It is honest where the real API is strict: the environment document needs the server-side
//! key (the client key gets the recorded 403), admin endpoints need `Api-Key`/`Token` (the
//! server key gets 401, a bad token the recorded 401), unknown features get the recorded 404,
//! bad bodies get DRF-shaped 400s, a classic PATCH in a v2-versioned environment is refused,
//! and change requests exist only in the enterprise mode (404 in the open-source mode, as on the
//! real open-source build). Writes mutate the environment document, so the document, the Admin
//! API and `/api/v1/flags/` all reflect them.
//!
//! The server runs as a task of the test's tokio runtime: it ends with the test, no process is
//! left behind.
#![allow(dead_code)]
// Handlers answer early with a ready `Response`; its size does not matter in a test fake.
#![allow(clippy::result_large_err)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/flagsmith");

/// Django's 404 page for a URL no view matches (DEBUG off): what the open-source build answers
/// for the enterprise-only change-request endpoints.
const DJANGO_404: &str = "<!doctype html>\n<html lang=\"en\">\n<head>\n  <title>Not Found</title>\n</head>\n<body>\n  <h1>Not Found</h1><p>The requested resource was not found on this server.</p>\n</body>\n</html>\n";
/// Django's 500 page (DEBUG off).
const DJANGO_500: &str = "\n<!doctype html>\n<html lang=\"en\">\n<head>\n  <title>Server Error (500)</title>\n</head>\n<body>\n  <h1>Server Error (500)</h1><p></p>\n</body>\n</html>\n";

pub const ADMIN_API_KEY: &str = "ZmFrZS1vcmctYXBpLWtleS1kbzEtbm90LXVzZQ.s3cr3tOrgKey";
pub const ADMIN_TOKEN: &str = "9f8e7d6c5b4a39281706f5e4d3c2b1a0s3cr3tTok";

fn fixture(name: &str) -> Value {
    let path = format!("{FIXTURES}/{name}");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{path}: {err}"));
    serde_json::from_str(&text).unwrap_or_else(|err| panic!("{path}: {err}"))
}

fn fixture_text(name: &str) -> String {
    let path = format!("{FIXTURES}/{name}");
    std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{path}: {err}"))
}

/// One environment of the fake.
#[derive(Debug, Clone)]
pub struct Env {
    pub id: u64,
    pub name: String,
    /// The client-side key (public, in the document as `api_key`).
    pub client_key: String,
    /// The server-side key `ser.…`.
    pub server_key: String,
    pub versioned: bool,
    pub approvals: Option<u64>,
    pub document: Value,
    /// feature id -> versions, newest first (v2 environments).
    pub versions: Vec<(u64, Value)>,
}

/// What the fake did and holds, for assertions.
#[derive(Debug, Default)]
pub struct Fake {
    pub enterprise: bool,
    pub envs: Vec<Env>,
    pub features: Vec<Value>,
    /// The project's segments as the Admin API shows them (`project-segments.json`).
    pub segments: Vec<Value>,
    pub change_requests: Vec<Value>,
    pub audit: Vec<Value>,
    /// (method, path with query, auth used: "environment", "api-key", "token", "none").
    pub requests: Vec<(String, String, String)>,
    /// The next `n` requests whose path contains `.0` answer `.1` with body `.2`.
    pub faults: Vec<(String, u16, String, usize)>,
    /// The next `n` requests whose path contains `.0` are throttled: 429 with
    /// `Retry-After: .1` seconds and the body Django REST framework's throttle sends.
    pub rate_limits: Vec<(String, u64, usize)>,
    /// Every answer waits this long first.
    pub delay: Option<Duration>,
    /// Every request authenticated with `Api-Key` waits this long first (on top of `delay`):
    /// what the real server spends checking an organisation key with PBKDF2 (~0.6 s).
    pub api_key_delay: Option<Duration>,
    /// Requests that reached the Admin API (`Api-Key` or `Token`), counted as they arrive.
    pub admin_calls: usize,
    next_id: u64,
}

pub struct FakeFlagsmith {
    pub url: String,
    pub state: Arc<Mutex<Fake>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeFlagsmith {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeFlagsmith {
    /// Open-source mode: change requests 404, the audit log is empty (500 with `Api-Key`).
    pub async fn open_source() -> FakeFlagsmith {
        FakeFlagsmith::start(false).await
    }

    /// Enterprise mode: change requests and the audit log exist.
    pub async fn enterprise() -> FakeFlagsmith {
        FakeFlagsmith::start(true).await
    }

    async fn start(enterprise: bool) -> FakeFlagsmith {
        let fake = Fake {
            enterprise,
            envs: vec![dev(), staging(), prod()],
            features: results(&fixture("prod.project-features.json")),
            segments: results(&fixture("project-segments.json")),
            next_id: 5000,
            ..Fake::default()
        };
        let state = Arc::new(Mutex::new(fake));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr: SocketAddr = listener.local_addr().expect("local addr");
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(state.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeFlagsmith {
            url: format!("http://{addr}"),
            state,
            task,
        }
    }

    pub fn env(&self, name: &str) -> Env {
        let state = self.state.lock().expect("fake state");
        state
            .envs
            .iter()
            .find(|env| env.name == name)
            .cloned()
            .unwrap_or_else(|| panic!("no env {name} in the fake"))
    }

    /// Requires change-request approvals in this environment.
    pub fn require_approvals(&self, name: &str, approvals: u64) {
        let mut state = self.state.lock().expect("fake state");
        for env in state.envs.iter_mut().filter(|env| env.name == name) {
            env.approvals = Some(approvals);
        }
    }

    pub fn fail(&self, path_contains: &str, status: u16, body: &str, times: usize) {
        self.state.lock().expect("fake state").faults.push((
            path_contains.to_string(),
            status,
            body.to_string(),
            times,
        ));
    }

    /// Throttles the next `times` requests whose path contains `path_contains`, as Flagsmith
    /// (Django REST framework) does: 429, `Retry-After` in seconds.
    pub fn rate_limit(&self, path_contains: &str, retry_after_seconds: u64, times: usize) {
        self.state.lock().expect("fake state").rate_limits.push((
            path_contains.to_string(),
            retry_after_seconds,
            times,
        ));
    }

    pub fn set_delay(&self, delay: Option<Duration>) {
        self.state.lock().expect("fake state").delay = delay;
    }

    /// Makes every `Api-Key` request wait `delay` (default: none).
    pub fn set_api_key_delay(&self, delay: Option<Duration>) {
        self.state.lock().expect("fake state").api_key_delay = delay;
    }

    /// Admin API requests so far.
    pub fn admin_calls(&self) -> usize {
        self.state.lock().expect("fake state").admin_calls
    }

    /// The Admin API requests so far: (method, path with query).
    pub fn admin_requests(&self) -> Vec<(String, String)> {
        self.requests()
            .into_iter()
            .filter(|(_, _, auth)| auth == "api-key" || auth == "token")
            .map(|(method, path, _)| (method, path))
            .collect()
    }

    /// Sets a feature's environment default directly (benchmark setup, no request).
    pub fn set_enabled(&self, name: &str, feature: &str, enabled: bool) {
        let mut state = self.state.lock().expect("fake state");
        for env in state.envs.iter_mut().filter(|env| env.name == name) {
            feature_state_mut(&mut env.document, feature)["enabled"] = json!(enabled);
        }
    }

    /// Adds `count` plain boolean features (`filler_00000`…) to the project and every
    /// environment, half of them on: for loads at scale.
    pub fn add_features(&self, count: usize) {
        let mut state = self.state.lock().expect("fake state");
        for index in 0..count {
            let id = 100_000 + index as u64;
            let name = format!("filler_{index:05}");
            state.features.push(json!({
                "id": id, "name": name, "type": "STANDARD", "default_enabled": false,
                "initial_value": null, "created_date": "2026-11-24T23:39:03.504112Z",
                "description": "filler", "tags": [], "multivariate_options": [],
                "is_archived": false, "owners": [], "group_owners": [], "project": 1
            }));
            for env in state.envs.iter_mut() {
                let django_id = env.id * 1_000_000 + id;
                if let Some(states) = env.document["feature_states"].as_array_mut() {
                    states.push(json!({
                        "feature": {"id": id, "name": name, "type": "STANDARD"},
                        "enabled": index % 2 == 0,
                        "django_id": django_id,
                        "feature_segment": null,
                        "featurestate_uuid": format!("9e159c16-0284-44b0-92a5-{django_id:012}"),
                        "feature_state_value": null,
                        "multivariate_feature_state_values": []
                    }));
                }
            }
        }
    }

    /// Turns v2 feature versioning on in an environment (it cannot be turned off again).
    pub fn enable_versioning(&self, name: &str) {
        let mut state = self.state.lock().expect("fake state");
        for env in state.envs.iter_mut().filter(|env| env.name == name) {
            env.versioned = true;
        }
    }

    /// The environment default of a feature as the fake holds it.
    pub fn enabled(&self, env: &str, feature: &str) -> bool {
        let env = self.env(env);
        env.document["feature_states"]
            .as_array()
            .and_then(|states| {
                states
                    .iter()
                    .find(|fs| fs["feature"]["name"] == feature)
                    .and_then(|fs| fs["enabled"].as_bool())
            })
            .unwrap_or_else(|| panic!("no {feature} in {}", env.name))
    }

    pub fn requests(&self) -> Vec<(String, String, String)> {
        self.state.lock().expect("fake state").requests.clone()
    }
}

fn results(value: &Value) -> Vec<Value> {
    value["results"].as_array().cloned().unwrap_or_default()
}

// ---- the three environments ------------------------------------------------------------------

/// prod (id 3): the recorded document as is.
fn prod() -> Env {
    let document = fixture("prod.environment-document.json");
    Env {
        id: 3,
        name: "prod".into(),
        client_key: document["api_key"].as_str().unwrap_or_default().to_string(),
        server_key: "ser.prodFakeServerKey9s3cr3t".into(),
        versioned: false,
        approvals: None,
        document,
        versions: Vec::new(),
    }
}

/// Renumbers an environment derived from prod: ids, keys, feature-state ids.
fn derive(id: u64, name: &str, client_key: &str) -> Value {
    let mut document = fixture("prod.environment-document.json");
    document["id"] = json!(id);
    document["name"] = json!(name);
    document["api_key"] = json!(client_key);
    let offset = id * 1000;
    let renumber = |fs: &mut Value| {
        if let Some(django_id) = fs["django_id"].as_u64() {
            fs["django_id"] = json!(django_id + offset);
        }
    };
    if let Some(states) = document["feature_states"].as_array_mut() {
        states.iter_mut().for_each(renumber);
    }
    if let Some(segments) = document["project"]["segments"].as_array_mut() {
        for segment in segments {
            if let Some(states) = segment["feature_states"].as_array_mut() {
                states.iter_mut().for_each(renumber);
            }
        }
    }
    document["identity_overrides"] = json!([]);
    document
}

fn feature_state_mut<'a>(document: &'a mut Value, name: &str) -> &'a mut Value {
    document["feature_states"]
        .as_array_mut()
        .and_then(|states| states.iter_mut().find(|fs| fs["feature"]["name"] == name))
        .unwrap_or_else(|| panic!("no {name}"))
}

/// dev (id 1): everything on for everyone; no segment or identity overrides.
fn dev() -> Env {
    let mut document = derive(1, "dev", "DevClientKey4fake00000");
    feature_state_mut(&mut document, "checkout_stripe_payment_intents_v2024_11")["enabled"] =
        json!(true);
    if let Some(segments) = document["project"]["segments"].as_array_mut() {
        for segment in segments {
            segment["feature_states"] = json!([]);
        }
    }
    Env {
        id: 1,
        name: "dev".into(),
        client_key: "DevClientKey4fake00000".into(),
        server_key: "ser.devFakeServerKey1s3cr3t".into(),
        versioned: false,
        approvals: None,
        document,
        versions: Vec::new(),
    }
}

/// staging (id 2, v2 feature versioning): recommendations killed, the A/B test 25/25/25 with
/// 25% left on control, pagination without the tenant override.
fn staging() -> Env {
    let mut document = derive(2, "staging", "StagingClientKey4fake0");
    feature_state_mut(&mut document, "kill_switch_recommendations")["enabled"] = json!(false);
    if let Some(values) = feature_state_mut(&mut document, "recommendations_ab_test_model_v3")
        ["multivariate_feature_state_values"]
        .as_array_mut()
    {
        for value in values {
            value["percentage_allocation"] = json!(25.0);
        }
    }
    if let Some(segments) = document["project"]["segments"].as_array_mut() {
        for segment in segments
            .iter_mut()
            .filter(|s| s["name"] == "tenant_bigcorp")
        {
            segment["feature_states"] = json!([]);
        }
    }
    let recorded = results(&fixture("staging.v2-versions-list.json"));
    let versions = (1..=6u64)
        .flat_map(|feature| recorded.iter().map(move |v| (feature, v.clone())))
        .collect();
    Env {
        id: 2,
        name: "staging".into(),
        client_key: "StagingClientKey4fake0".into(),
        server_key: "ser.stagingFakeServerKey2s3cr3t".into(),
        versioned: true,
        approvals: None,
        document,
        versions,
    }
}

// ---- request handling ------------------------------------------------------------------------

fn json_response(status: u16, body: Value) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn raw_response(status: u16, content_type: &str, body: String) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, [("content-type", content_type.to_string())], body).into_response()
}

fn not_found_html() -> Response {
    raw_response(404, "text/html; charset=utf-8", DJANGO_404.to_string())
}

fn detail(status: u16, text: &str) -> Response {
    json_response(status, json!({ "detail": text }))
}

enum Admin {
    ApiKey,
    Token,
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

/// Flagsmith's Admin API authentication: `Api-Key <org key>` or `Token <user token>`.
fn admin_auth(headers: &HeaderMap) -> Result<Admin, Response> {
    let Some(value) = header(headers, "authorization") else {
        return Err(detail(401, "Authentication credentials were not provided."));
    };
    match value.split_once(' ') {
        Some(("Api-Key", key)) if key == ADMIN_API_KEY => Ok(Admin::ApiKey),
        Some(("Token", token)) if token == ADMIN_TOKEN => Ok(Admin::Token),
        Some(("Api-Key", _)) => Err(detail(401, "Valid Master API Key not found.")),
        _ => Err(json_response(401, fixture("error.401.bad-token.json"))),
    }
}

async fn handle(
    State(state): State<Arc<Mutex<Fake>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    let query = uri.query().unwrap_or("").to_string();
    let delay = {
        let mut fake = state.lock().expect("fake state");
        let auth = if headers.contains_key("x-environment-key") {
            "environment"
        } else {
            match header(&headers, "authorization").and_then(|v| v.split_once(' ')) {
                Some(("Api-Key", _)) => "api-key",
                Some(("Token", _)) => "token",
                Some(_) => "other",
                None => "none",
            }
        };
        let shown = if query.is_empty() {
            path.clone()
        } else {
            format!("{path}?{query}")
        };
        fake.requests
            .push((method.to_string(), shown, auth.to_string()));
        if matches!(auth, "api-key" | "token") {
            fake.admin_calls += 1;
        }
        let key_delay = if auth == "api-key" {
            fake.api_key_delay
        } else {
            None
        };
        (fake.delay, key_delay)
    };
    for pause in [delay.0, delay.1].into_iter().flatten() {
        tokio::time::sleep(pause).await;
    }
    let mut fake = state.lock().expect("fake state");
    if let Some(limit) = fake
        .rate_limits
        .iter_mut()
        .find(|(part, _, times)| *times > 0 && path.contains(part.as_str()))
    {
        limit.2 -= 1;
        let seconds = limit.1;
        let body = json!({
            "detail": format!("Request was throttled. Expected available in {seconds} seconds.")
        });
        let mut response = json_response(429, body);
        response.headers_mut().insert(
            "Retry-After",
            seconds.to_string().parse().expect("header value"),
        );
        return response;
    }
    if let Some(fault) = fake
        .faults
        .iter_mut()
        .find(|(part, _, _, times)| *times > 0 && path.contains(part.as_str()))
    {
        fault.3 -= 1;
        let (status, body) = (fault.1, fault.2.clone());
        let content_type = if serde_json::from_str::<Value>(&body).is_ok() {
            "application/json"
        } else {
            "text/html; charset=utf-8"
        };
        return raw_response(status, content_type, body);
    }
    route(&mut fake, &method, &path, &query, &headers, &body)
}

fn route(
    fake: &mut Fake,
    method: &Method,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    body: &Bytes,
) -> Response {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (method.as_str(), parts.as_slice()) {
        ("GET", ["api", "v1", "environment-document"]) => environment_document(fake, headers),
        ("GET", ["api", "v1", "flags"]) => sdk_flags(fake, headers),
        (_, ["api", "v1", "environment-document" | "flags"]) => {
            detail(405, &format!("Method \"{method}\" not allowed."))
        }
        _ if parts.starts_with(&["api", "v1"]) && path.ends_with('/') => {
            let admin = match admin_auth(headers) {
                Ok(admin) => admin,
                Err(response) => return response,
            };
            admin_route(fake, admin, method, &parts[2..], query, body)
        }
        _ => not_found_html(),
    }
}

fn env_by_server_key<'a>(fake: &'a Fake, headers: &HeaderMap) -> Option<&'a Env> {
    let key = header(headers, "x-environment-key")?;
    fake.envs.iter().find(|env| env.server_key == key)
}

fn environment_document(fake: &Fake, headers: &HeaderMap) -> Response {
    match env_by_server_key(fake, headers) {
        Some(env) => json_response(200, env.document.clone()),
        // The client key (and any other key) gets the recorded 403.
        None => json_response(
            403,
            fixture("error.403.client-key-on-environment-document.json"),
        ),
    }
}

fn feature_meta(fake: &Fake, id: u64) -> Option<&Value> {
    fake.features.iter().find(|f| f["id"] == id)
}

/// `/api/v1/flags/`: environment defaults only, client or server key, shaped as recorded.
fn sdk_flags(fake: &Fake, headers: &HeaderMap) -> Response {
    let key = header(headers, "x-environment-key").unwrap_or_default();
    let Some(env) = fake
        .envs
        .iter()
        .find(|env| env.server_key == key || env.client_key == key)
    else {
        return json_response(
            403,
            fixture("error.403.client-key-on-environment-document.json"),
        );
    };
    // "Hide disabled flags" (project setting): disabled flags are left out of what SDKs get.
    let hide_disabled = env.document["project"]["hide_disabled_flags"] == true;
    let metas: std::collections::HashMap<u64, &Value> = fake
        .features
        .iter()
        .filter_map(|f| Some((f["id"].as_u64()?, f)))
        .collect();
    let flags: Vec<Value> = env.document["feature_states"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter(|fs| !(hide_disabled && fs["enabled"] == false))
        .map(|fs| {
            let id = fs["feature"]["id"].as_u64().unwrap_or_default();
            let meta = metas.get(&id).map(|m| (*m).clone()).unwrap_or(Value::Null);
            json!({
                "id": fs["django_id"],
                "feature": {
                    "id": id,
                    "name": fs["feature"]["name"],
                    "created_date": meta["created_date"],
                    "description": meta["description"],
                    "initial_value": meta["initial_value"],
                    "default_enabled": meta["default_enabled"],
                    "type": fs["feature"]["type"],
                },
                "feature_state_value": fs["feature_state_value"],
                "environment": env.id,
                "identity": null,
                "feature_segment": null,
                "enabled": fs["enabled"],
            })
        })
        .collect();
    json_response(200, Value::Array(flags))
}

fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key == name).then(|| value.replace("%20", " ").replace('+', " "))
    })
}

fn admin_route(
    fake: &mut Fake,
    admin: Admin,
    method: &Method,
    parts: &[&str],
    query: &str,
    body: &Bytes,
) -> Response {
    match (method.as_str(), parts) {
        ("GET", ["environments", key]) => match fake.envs.iter().find(|e| e.client_key == *key) {
            Some(env) => json_response(200, environment_settings(env)),
            None => detail(404, "No Environment matches the given query."),
        },
        ("PATCH" | "PUT", ["environments", key, "featurestates", id]) => {
            patch_feature_state(fake, key, id, body)
        }
        ("GET", ["environments", env_id, "features", feature_id, "versions"]) => {
            list_versions(fake, env_id, feature_id)
        }
        ("POST", ["environments", env_id, "features", feature_id, "versions"]) => {
            create_version(fake, &admin, env_id, feature_id, body)
        }
        ("POST", ["environments", key, "create-change-request"]) if fake.enterprise => {
            create_change_request(fake, key, body)
        }
        ("PUT", ["features", "featurestates", id]) => put_feature_state(fake, id, body),
        ("GET", ["environments"]) if query_param(query, "project").as_deref() == Some("1") => {
            json_response(
                200,
                Value::Array(fake.envs.iter().map(environment_settings).collect()),
            )
        }
        ("GET", ["projects", "1", "segments", id]) => match segment_index(fake, id) {
            Some(index) => json_response(200, fake.segments[index].clone()),
            None => detail(404, "Not found."),
        },
        ("PUT", ["projects", "1", "segments", id]) => put_segment(fake, id, body),
        ("GET", ["projects", "1", "segments", id, "associated-features"]) => {
            associated_features(fake, id)
        }
        ("GET", ["projects", "1", "features"]) => project_features(fake, query),
        ("GET", ["projects", "1", "tags"]) => json_response(
            200,
            json!([
                {"id": 1, "label": "kill_switch", "color": "#e11d48", "description": "", "project": 1},
                {"id": 2, "label": "team-catalog", "color": "#2563eb", "description": "", "project": 1}
            ]),
        ),
        ("GET", ["projects", "1", "audit"]) => audit_log(fake, &admin, query),
        ("GET", ["projects", _, ..]) => detail(404, "Not found."),
        _ => not_found_html(),
    }
}

fn environment_settings(env: &Env) -> Value {
    json!({
        "id": env.id,
        "uuid": format!("00000000-0000-4000-8000-00000000000{}", env.id),
        "name": env.name,
        "api_key": env.client_key,
        "description": null,
        "project": 1,
        "minimum_change_request_approvals": env.approvals,
        "allow_client_traits": true,
        "banner_text": null,
        "banner_colour": null,
        "hide_disabled_flags": null,
        "use_mv_v2_evaluation": true,
        "use_identity_composite_key_for_hashing": true,
        "hide_sensitive_data": false,
        "use_v2_feature_versioning": env.versioned,
        "use_identity_overrides_in_local_eval": true,
        "is_creating": false,
        "metadata": [],
        "total_segment_overrides": 1
    })
}

fn parse_body(body: &Bytes) -> Result<Value, Response> {
    match serde_json::from_slice::<Value>(body) {
        Ok(value @ Value::Object(_)) => Ok(value),
        Ok(_) => Err(json_response(
            400,
            json!({"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]}),
        )),
        Err(err) => Err(detail(400, &format!("JSON parse error - {err}"))),
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

fn record_audit(fake: &mut Fake, env_id: u64, log: String, admin: Option<&Admin>) {
    if !fake.enterprise {
        return;
    }
    let id = fake.audit.len() as u64 + 1;
    let author = match admin {
        Some(Admin::Token) | None => {
            json!({"id": 1, "email": "admin@example.com", "first_name": "Admin", "last_name": "User"})
        }
        Some(Admin::ApiKey) => Value::Null,
    };
    fake.audit.push(json!({
        "id": id,
        "created_date": now(),
        "log": log,
        "author": author,
        "environment": {"id": env_id},
        "project": {"id": 1, "name": "Checkout Platform"},
        "related_object_id": null,
        "related_object_uuid": null,
        "related_object_type": "FEATURE_STATE",
        "is_system_event": false
    }));
}

/// Classic `PATCH /api/v1/environments/{key}/featurestates/{id}/` (environment defaults).
fn patch_feature_state(fake: &mut Fake, key: &str, id: &str, body: &Bytes) -> Response {
    let Some(index) = fake.envs.iter().position(|e| e.client_key == key) else {
        return detail(404, "Environment not found.");
    };
    let wanted = id.parse::<u64>().ok();
    let found = fake.envs[index].document["feature_states"]
        .as_array()
        .and_then(|states| {
            states
                .iter()
                .position(|fs| wanted.is_some() && fs["django_id"].as_u64() == wanted)
        });
    let Some(position) = found else {
        return detail(404, "No FeatureState matches the given query.");
    };
    if fake.envs[index].versioned {
        return detail(
            400,
            "This environment uses v2 feature versioning. Use the environment feature version endpoint instead.",
        );
    }
    if fake.enterprise && fake.envs[index].approvals.is_some() {
        // Assumed from the enterprise behaviour: with change requests on, flags change only
        // through a change request.
        return detail(403, "You do not have permission to perform this action.");
    }
    let data = match parse_body(body) {
        Ok(data) => data,
        Err(response) => return response,
    };
    if let Some(enabled) = data.get("enabled") {
        let Some(enabled) = enabled.as_bool() else {
            return json_response(400, json!({"enabled": ["Must be a valid boolean."]}));
        };
        let env_id = fake.envs[index].id;
        let fs = &mut fake.envs[index].document["feature_states"][position];
        fs["enabled"] = json!(enabled);
        let name = fs["feature"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        record_audit(
            fake,
            env_id,
            format!("Flag state updated for feature: {name}"),
            None,
        );
    }
    let fs = &fake.envs[index].document["feature_states"][position];
    json_response(
        200,
        json!({"feature": fs["feature"]["id"], "enabled": fs["enabled"]}),
    )
}

fn env_and_feature(fake: &Fake, env_id: &str, feature_id: &str) -> Result<(usize, u64), Response> {
    let Some(index) = fake.envs.iter().position(|e| e.id.to_string() == env_id) else {
        return Err(detail(404, "No Environment matches the given query."));
    };
    match feature_id
        .parse::<u64>()
        .ok()
        .filter(|id| feature_meta(fake, *id).is_some())
    {
        Some(id) => Ok((index, id)),
        None => Err(json_response(
            404,
            fixture("error.404.unknown-feature.json"),
        )),
    }
}

fn list_versions(fake: &Fake, env_id: &str, feature_id: &str) -> Response {
    let (index, feature) = match env_and_feature(fake, env_id, feature_id) {
        Ok(found) => found,
        Err(response) => return response,
    };
    let versions: Vec<Value> = fake.envs[index]
        .versions
        .iter()
        .filter(|(f, _)| *f == feature)
        .map(|(_, v)| v.clone())
        .collect();
    json_response(
        200,
        json!({"count": versions.len(), "next": null, "previous": null, "results": versions}),
    )
}

/// `POST /api/v1/environments/{id}/features/{id}/versions/` (v2 feature versioning).
fn create_version(
    fake: &mut Fake,
    admin: &Admin,
    env_id: &str,
    feature_id: &str,
    body: &Bytes,
) -> Response {
    let (index, feature) = match env_and_feature(fake, env_id, feature_id) {
        Ok(found) => found,
        Err(response) => return response,
    };
    let data = match parse_body(body) {
        Ok(data) => data,
        Err(response) => return response,
    };
    if !fake.envs[index].versioned {
        return json_response(
            400,
            json!({"environment": ["Environment must use v2 feature versioning."]}),
        );
    }
    let publish = match data.get("publish_immediately") {
        None => false,
        Some(Value::Bool(publish)) => *publish,
        Some(_) => {
            return json_response(
                400,
                json!({"publish_immediately": ["Must be a valid boolean."]}),
            );
        }
    };
    let updates = match data.get("feature_states_to_update") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items.clone(),
        Some(_) => {
            return json_response(
                400,
                json!({"feature_states_to_update": {"non_field_errors": ["Expected a list of items but got type \"dict\"."]}}),
            );
        }
    };
    let mut errors = Vec::new();
    for item in &updates {
        let mut error = serde_json::Map::new();
        match item.get("enabled") {
            Some(Value::Bool(_)) => {}
            Some(_) => {
                error.insert("enabled".into(), json!(["Must be a valid boolean."]));
            }
            None => {
                error.insert("enabled".into(), json!(["This field is required."]));
            }
        }
        match item.get("feature_state_value") {
            Some(Value::Object(value)) if value.contains_key("type") => {}
            Some(_) => {
                error.insert(
                    "feature_state_value".into(),
                    json!({"type": ["This field is required."]}),
                );
            }
            None => {
                error.insert(
                    "feature_state_value".into(),
                    json!(["This field is required."]),
                );
            }
        }
        errors.push(Value::Object(error));
    }
    if errors
        .iter()
        .any(|e| e.as_object().is_some_and(|e| !e.is_empty()))
    {
        return json_response(400, json!({ "feature_states_to_update": errors }));
    }
    fake.next_id += 1;
    let new_id = fake.next_id;
    let at = now();
    let version = json!({
        "created_at": at,
        "updated_at": at,
        "published": publish,
        "live_from": if publish { json!(at) } else { Value::Null },
        "uuid": format!("de2751e1-1c9e-41b0-97f5-{new_id:012}"),
        "is_live": publish,
        "published_by": match (publish, admin) { (true, Admin::Token) => json!(1), _ => Value::Null },
        "created_by": match admin { Admin::Token => json!(1), Admin::ApiKey => Value::Null },
        "description": data.get("description").cloned().unwrap_or(Value::Null),
    });
    let env = &mut fake.envs[index];
    env.versions.insert(0, (feature, version.clone()));
    let mut name = String::new();
    if publish
        && let Some(states) = env.document["feature_states"].as_array_mut()
        && let Some(fs) = states.iter_mut().find(|fs| fs["feature"]["id"] == feature)
    {
        for update in updates.iter().filter(|u| u["feature_segment"].is_null()) {
            fs["enabled"] = update["enabled"].clone();
            let value = &update["feature_state_value"];
            fs["feature_state_value"] = match value["type"].as_str() {
                Some("int") => value["integer_value"].clone(),
                Some("bool") => value["boolean_value"].clone(),
                _ => value["string_value"].clone(),
            };
            // The version's allocations, by option; its rows are new rows (new ids).
            if let (Some(rows), Some(sent)) = (
                fs["multivariate_feature_state_values"].as_array_mut(),
                update["multivariate_feature_state_values"].as_array(),
            ) {
                for row in rows.iter_mut() {
                    let option = row["multivariate_feature_option"]["id"].clone();
                    if let Some(new) = sent
                        .iter()
                        .find(|s| s["multivariate_feature_option"] == option)
                    {
                        row["percentage_allocation"] = new["percentage_allocation"].clone();
                    }
                    row["id"] = json!(new_id * 10 + row["id"].as_u64().unwrap_or(0) % 10);
                }
            }
        }
        // A new version is a new feature-state row.
        fs["django_id"] = json!(new_id);
        fs["featurestate_uuid"] = json!(format!("9e159c16-0284-44b0-92a5-{new_id:012}"));
        name = fs["feature"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
    }
    let env_id = env.id;
    if publish {
        record_audit(
            fake,
            env_id,
            format!("New version published for feature: {name}"),
            Some(admin),
        );
    }
    json_response(201, version)
}

/// Enterprise only: `POST /api/v1/environments/{key}/create-change-request/`.
fn create_change_request(fake: &mut Fake, key: &str, body: &Bytes) -> Response {
    let Some(index) = fake.envs.iter().position(|e| e.client_key == key) else {
        return detail(404, "No Environment matches the given query.");
    };
    let data = match parse_body(body) {
        Ok(data) => data,
        Err(response) => return response,
    };
    match data.get("title") {
        Some(Value::String(title)) if !title.trim().is_empty() => {}
        Some(Value::String(_)) => {
            return json_response(400, json!({"title": ["This field may not be blank."]}));
        }
        _ => return json_response(400, json!({"title": ["This field is required."]})),
    }
    fake.next_id += 1;
    let at = now();
    let change_request = json!({
        "id": fake.change_requests.len() + 1,
        "created_at": at,
        "updated_at": at,
        "environment": fake.envs[index].id,
        "title": data["title"],
        "description": data.get("description").cloned().unwrap_or(json!("")),
        "feature_states": data.get("feature_states").cloned().unwrap_or(json!([])),
        "change_sets": data.get("change_sets").cloned().unwrap_or(json!([])),
        "user": 1,
        "committed_at": null,
        "committed_by": null,
        "deleted_at": null,
        "approvals": data.get("approvals").cloned().unwrap_or(json!([])),
        "group_assignments": data.get("group_assignments").cloned().unwrap_or(json!([])),
        "is_approved": false,
        "is_committed": false,
        "ignore_conflicts": false,
        "environment_feature_versions": [],
        "conflicts": []
    });
    fake.change_requests.push(change_request.clone());
    json_response(201, change_request)
}

fn project_features(fake: &Fake, query: &str) -> Response {
    let env = query_param(query, "environment")
        .and_then(|id| fake.envs.iter().find(|e| e.id.to_string() == id));
    // Indexed once: thousands of features must not cost thousands squared under the lock.
    let states: std::collections::HashMap<u64, &Value> = env
        .and_then(|env| env.document["feature_states"].as_array())
        .map(|states| {
            states
                .iter()
                .filter_map(|fs| Some((fs["feature"]["id"].as_u64()?, fs)))
                .collect()
        })
        .unwrap_or_default();
    // Flagsmith's `CustomPagination`: `page_size` (default and maximum 999) and `page`
    // (from 1); `next` links the following page.
    let page_size = query_param(query, "page_size")
        .and_then(|size| size.parse::<usize>().ok())
        .filter(|size| *size > 0)
        .unwrap_or(FEATURES_PAGE_MAX)
        .min(FEATURES_PAGE_MAX);
    let page = query_param(query, "page")
        .and_then(|page| page.parse::<usize>().ok())
        .unwrap_or(1);
    let total = fake.features.len();
    let first = (page.max(1) - 1) * page_size;
    if page == 0 || (first >= total && page > 1) {
        return json_response(404, json!({"detail": "Invalid page."}));
    }
    let features: Vec<Value> = fake
        .features
        .iter()
        .skip(first)
        .take(page_size)
        .map(|feature| {
            let mut feature = feature.clone();
            if let Some(env) = env {
                let fs = feature["id"]
                    .as_u64()
                    .and_then(|id| states.get(&id))
                    .map(|fs| (*fs).clone())
                    .unwrap_or(Value::Null);
                feature["environment_feature_state"] = json!({
                    "id": fs["django_id"],
                    "feature_state_value": fs["feature_state_value"],
                    "environment": env.id,
                    "identity": null,
                    "feature_segment": null,
                    "enabled": fs["enabled"],
                });
            }
            feature
        })
        .collect();
    let next = (first + page_size < total).then(|| {
        let rest: Vec<&str> = query
            .split('&')
            .filter(|part| !part.starts_with("page=") && !part.is_empty())
            .collect();
        format!(
            "/api/v1/projects/1/features/?{}&page={}",
            rest.join("&"),
            page + 1
        )
    });
    json_response(
        200,
        json!({"count": total, "next": next, "previous": null, "results": features}),
    )
}

/// The most features one page of the features list holds (Flagsmith's `max_page_size`).
pub const FEATURES_PAGE_MAX: usize = 999;

/// The audit log: enterprise keeps entries; the open-source build answers an empty list with a
/// user token and 500 with an organisation API key (as observed).
fn audit_log(fake: &Fake, admin: &Admin, query: &str) -> Response {
    if !fake.enterprise {
        return match admin {
            Admin::Token => json_response(
                200,
                json!({"count": 0, "next": null, "previous": null, "results": []}),
            ),
            Admin::ApiKey => raw_response(500, "text/html; charset=utf-8", DJANGO_500.to_string()),
        };
    }
    let environment = query_param(query, "environments");
    let search = query_param(query, "search")
        .unwrap_or_default()
        .to_lowercase();
    let entries: Vec<Value> = fake
        .audit
        .iter()
        .rev()
        .filter(|entry| {
            environment
                .as_ref()
                .is_none_or(|id| entry["environment"]["id"].as_u64() == id.parse::<u64>().ok())
        })
        .filter(|entry| {
            entry["log"]
                .as_str()
                .unwrap_or_default()
                .to_lowercase()
                .contains(&search)
        })
        .cloned()
        .collect();
    json_response(
        200,
        json!({"count": entries.len(), "next": null, "previous": null, "results": entries}),
    )
}

// ---- rollouts: multivariate allocations and segments -----------------------------------------
//
// Not recorded; written from Flagsmith's open-source API as its web UI uses it:
// - `PUT /api/v1/features/featurestates/{id}/` (the recorded `prod.toggle-put` shape) takes
//   `multivariate_feature_state_values`; it is a writable nested serializer: a row sent with
//   its `id` is updated in place, a row without one is created, a row left out is deleted;
//   allocations must total at most 100.
// - `GET`/`PUT /api/v1/projects/{p}/segments/{id}/` (the recorded `project-segments` shape):
//   rules and conditions sent with their ids are updated in place. Segments are project-wide:
//   every environment's document carries the segment's new rule.
// - `GET /api/v1/projects/{p}/segments/{id}/associated-features/`: the segment's overrides
//   (feature segments) in every environment.
// - `GET /api/v1/environments/?project={p}`: the project's environments.

/// `PUT /api/v1/features/featurestates/{id}/` (environment defaults).
fn put_feature_state(fake: &mut Fake, id: &str, body: &Bytes) -> Response {
    let wanted = id.parse::<u64>().ok();
    let found = fake.envs.iter().enumerate().find_map(|(index, env)| {
        let position = env.document["feature_states"]
            .as_array()?
            .iter()
            .position(|fs| wanted.is_some() && fs["django_id"].as_u64() == wanted)?;
        Some((index, position))
    });
    let Some((index, position)) = found else {
        return detail(404, "No FeatureState matches the given query.");
    };
    if fake.envs[index].versioned {
        return detail(
            400,
            "This environment uses v2 feature versioning. Use the environment feature version endpoint instead.",
        );
    }
    if fake.enterprise && fake.envs[index].approvals.is_some() {
        return detail(403, "You do not have permission to perform this action.");
    }
    let data = match parse_body(body) {
        Ok(data) => data,
        Err(response) => return response,
    };
    let rows = match data.get("multivariate_feature_state_values") {
        None => None,
        Some(Value::Array(rows)) => Some(rows.clone()),
        Some(_) => {
            return json_response(
                400,
                json!({"multivariate_feature_state_values": {"non_field_errors": ["Expected a list of items but got type \"dict\"."]}}),
            );
        }
    };
    if let Some(rows) = &rows {
        let mut total = 0.0;
        for row in rows {
            let Some(percent) = row["percentage_allocation"].as_f64() else {
                return json_response(
                    400,
                    json!({"multivariate_feature_state_values": [{"percentage_allocation": ["A valid number is required."]}]}),
                );
            };
            if !(0.0..=100.0).contains(&percent)
                || row["multivariate_feature_option"].as_u64().is_none()
            {
                return json_response(
                    400,
                    json!({"multivariate_feature_state_values": [{"non_field_errors": ["Invalid percentage allocation or option."]}]}),
                );
            }
            total += percent;
        }
        if total > 100.0 + 1e-9 {
            return json_response(
                400,
                json!({"multivariate_feature_state_values": ["Total percentage allocation for feature must be less or equal to 100 percent"]}),
            );
        }
    }
    let env_id = fake.envs[index].id;
    let mut next_id = fake.next_id;
    let fs = &mut fake.envs[index].document["feature_states"][position];
    if let Some(enabled) = data.get("enabled").and_then(Value::as_bool) {
        fs["enabled"] = json!(enabled);
    }
    if let Some(rows) = rows {
        let existing = fs["multivariate_feature_state_values"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut updated = Vec::new();
        for row in rows {
            let option = row["multivariate_feature_option"].as_u64();
            let kept = row["id"]
                .as_u64()
                .and_then(|id| existing.iter().find(|mv| mv["id"].as_u64() == Some(id)));
            let mut value = match kept {
                Some(mv) => mv.clone(),
                None => {
                    next_id += 1;
                    let option_value = existing
                        .iter()
                        .find(|mv| mv["multivariate_feature_option"]["id"].as_u64() == option)
                        .map(|mv| mv["multivariate_feature_option"].clone())
                        .unwrap_or(json!({"id": option, "value": null, "key": null}));
                    json!({
                        "multivariate_feature_option": option_value,
                        "id": next_id,
                        "mv_fs_value_uuid": format!("0527e604-0e35-4900-8b65-{next_id:012}"),
                    })
                }
            };
            value["percentage_allocation"] = row["percentage_allocation"].clone();
            updated.push(value);
        }
        fs["multivariate_feature_state_values"] = Value::Array(updated);
    }
    let answer = json!({
        "id": fs["django_id"],
        "feature_state_value": data.get("feature_state_value").cloned().unwrap_or(Value::Null),
        "multivariate_feature_state_values": fs["multivariate_feature_state_values"]
            .as_array()
            .map(|rows| rows.iter().map(|mv| json!({
                "id": mv["id"],
                "multivariate_feature_option": mv["multivariate_feature_option"]["id"],
                "percentage_allocation": mv["percentage_allocation"],
            })).collect::<Vec<_>>())
            .unwrap_or_default(),
        "deleted_at": null,
        "uuid": fs["featurestate_uuid"],
        "enabled": fs["enabled"],
        "created_at": "2026-11-24T23:39:03.356641Z",
        "updated_at": now(),
        "live_from": "2026-11-24T23:39:03.355590Z",
        "version": 1,
        "feature": fs["feature"]["id"],
        "environment": env_id,
        "identity": null,
        "feature_segment": null,
        "change_request": null,
        "environment_feature_version": null
    });
    let name = fs["feature"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    fake.next_id = next_id;
    record_audit(
        fake,
        env_id,
        format!("Flag state updated for feature: {name}"),
        None,
    );
    json_response(200, answer)
}

fn segment_index(fake: &Fake, id: &str) -> Option<usize> {
    let id = id.parse::<u64>().ok()?;
    fake.segments
        .iter()
        .position(|s| s["id"].as_u64() == Some(id))
}

/// `PUT /api/v1/projects/1/segments/{id}/`: rules and conditions by id, in place.
fn put_segment(fake: &mut Fake, id: &str, body: &Bytes) -> Response {
    let Some(index) = segment_index(fake, id) else {
        return detail(404, "Not found.");
    };
    let data = match parse_body(body) {
        Ok(data) => data,
        Err(response) => return response,
    };
    match data.get("name") {
        Some(Value::String(name)) if !name.trim().is_empty() => {}
        _ => return json_response(400, json!({"name": ["This field is required."]})),
    }
    if data.get("project").and_then(Value::as_u64) != Some(1) {
        return json_response(400, json!({"project": ["This field is required."]}));
    }
    let Some(rules) = data.get("rules").and_then(Value::as_array) else {
        return json_response(400, json!({"rules": ["This field is required."]}));
    };
    let mut next_id = fake.next_id;
    let rules: Vec<Value> = rules.iter().map(|r| keep_ids(r, &mut next_id)).collect();
    fake.next_id = next_id;
    let segment = &mut fake.segments[index];
    segment["name"] = data["name"].clone();
    segment["rules"] = Value::Array(rules.clone());
    segment["updated_at"] = json!(now());
    let segment = segment.clone();
    // Segments are project-wide: every environment's document gets the new rules.
    let engine_rules: Vec<Value> = rules.iter().map(engine_rule).collect();
    for env in &mut fake.envs {
        if let Some(segments) = env.document["project"]["segments"].as_array_mut() {
            for doc_segment in segments.iter_mut().filter(|s| s["id"] == segment["id"]) {
                doc_segment["name"] = segment["name"].clone();
                doc_segment["rules"] = Value::Array(engine_rules.clone());
            }
        }
    }
    json_response(200, segment)
}

/// A rule as sent, with new ids for rules and conditions sent without one.
fn keep_ids(rule: &Value, next_id: &mut u64) -> Value {
    let mut rule = rule.clone();
    if rule["id"].as_u64().is_none() {
        *next_id += 1;
        rule["id"] = json!(*next_id);
    }
    if let Some(conditions) = rule["conditions"].as_array_mut() {
        for condition in conditions {
            if condition["id"].as_u64().is_none() {
                *next_id += 1;
                condition["id"] = json!(*next_id);
            }
        }
    }
    let nested: Vec<Value> = rule["rules"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|r| keep_ids(r, next_id))
        .collect();
    rule["rules"] = Value::Array(nested);
    rule
}

/// An Admin API rule as the environment document (the SDK's engine model) carries it.
fn engine_rule(rule: &Value) -> Value {
    json!({
        "type": rule["type"],
        "rules": rule["rules"].as_array().map(|r| r.iter().map(engine_rule).collect::<Vec<_>>()).unwrap_or_default(),
        "conditions": rule["conditions"].as_array().map(|c| c.iter().map(|condition| json!({
            "operator": condition["operator"],
            "value": condition["value"],
            "property_": condition["property"],
        })).collect::<Vec<_>>()).unwrap_or_default(),
    })
}

/// `GET /api/v1/projects/1/segments/{id}/associated-features/`: the segment's overrides in
/// every environment.
fn associated_features(fake: &Fake, id: &str) -> Response {
    let Some(index) = segment_index(fake, id) else {
        return detail(404, "Not found.");
    };
    let segment_id = fake.segments[index]["id"].clone();
    let mut used = Vec::new();
    for env in &fake.envs {
        for doc_segment in env.document["project"]["segments"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|s| s["id"] == segment_id)
        {
            for fs in doc_segment["feature_states"]
                .as_array()
                .into_iter()
                .flatten()
            {
                used.push(json!({
                    "id": used.len() + 1,
                    "feature": fs["feature"]["id"],
                    "environment": env.id,
                    "segment": segment_id,
                    "priority": fs["feature_segment"]["priority"],
                    "is_feature_specific": false,
                }));
            }
        }
    }
    json_response(
        200,
        json!({"count": used.len(), "next": null, "previous": null, "results": used}),
    )
}

/// The recorded answers the fake must reproduce byte for byte in shape.
pub fn recorded(name: &str) -> Value {
    fixture(name)
}

pub fn recorded_text(name: &str) -> String {
    fixture_text(name)
}
