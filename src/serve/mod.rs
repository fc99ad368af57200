//! `killswitch serve`: a small HTTP server for two audiences.
//!
//! - **Alert triggers** (`POST /hooks/<name>`): an alert (Alertmanager, Grafana, or any JSON
//!   or empty body) kills the flag a `[[trigger]]` maps it to, through the same session, flip
//!   transaction ([`crate::flip::execute`]), audit log and redaction as the CLI; the operator is
//!   `trigger:<name>`, the note is built from the alert.
//! - **A read-only status page** (`GET /`, `GET /api/status`) for people without a terminal or
//!   Vault access, plus `GET /healthz` and `GET /metrics`.
//!
//! The environments are read by one background task (every `refresh_seconds`, and at once
//! after a trigger's flip), so any number of page viewers costs the vendors nothing.

pub mod alert;
/// `[[trigger]]` and `[serve]` in the config file (a part of the config's model).
pub use crate::config::serve as config;
pub mod metrics;
pub mod page;

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;

use self::alert::{AlertStatus, Payload};
use self::config::{OnResolved, TokenSource, TriggerAction, TriggerConfig};
use self::metrics::Metrics;
use self::page::{EnvView, LoadView, TriggerView};
use crate::cli::{Output, ServeArgs, StatusArgs};
use crate::commands::status::StatusReport;
use crate::flip::{self, FlipError, FlipRequest};
use crate::model::EnvSnapshot;
use crate::provider::{Access, ErrorKind};
use crate::secret::Secret;
use crate::session::{ConnectError, Session};

/// The largest request body a hook accepts (Alertmanager groups stay far below).
const MAX_BODY_BYTES: usize = 256 * 1024;
/// Fingerprints remembered per trigger; the oldest are forgotten first.
const MAX_FINGERPRINTS: usize = 4096;
/// The shortest page reload interval.
const MIN_PAGE_REFRESH: u64 = 5;

/// A trigger with its token read and its run-time state.
struct Trigger {
    config: TriggerConfig,
    token: Secret,
    /// Fingerprints of firing alerts this instance acted on (applied or found nothing to do).
    acted: std::sync::Mutex<Fingerprints>,
    /// When the calls of the last minute came (the rate limit).
    calls: std::sync::Mutex<VecDeque<Instant>>,
}

#[derive(Default)]
struct Fingerprints {
    order: VecDeque<String>,
    set: HashSet<String>,
}

impl Fingerprints {
    fn all_known(&self, prints: &[String]) -> bool {
        !prints.is_empty() && prints.iter().all(|print| self.set.contains(print))
    }

    fn remember(&mut self, prints: &[String]) {
        for print in prints {
            if self.set.insert(print.clone()) {
                self.order.push_back(print.clone());
            }
        }
        while self.order.len() > MAX_FINGERPRINTS {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
    }

    fn forget(&mut self, prints: &[String]) {
        for print in prints {
            if self.set.remove(print) {
                self.order.retain(|known| known != print);
            }
        }
    }
}

/// What the page shows: the last status document and each environment's load state.
struct PageState {
    report: StatusReport,
    envs: Vec<EnvView>,
    /// The last good snapshot of each environment, kept when a later read fails.
    last_good: HashMap<String, EnvSnapshot>,
}

/// The lock a flip of one flag holds while it runs.
type Flight = Arc<tokio::sync::Mutex<()>>;

struct Server {
    session: Arc<Session>,
    triggers: HashMap<String, Trigger>,
    page_token: Option<Secret>,
    /// One lock per (env, flag): at most one flip in flight per flag in this instance.
    flights: std::sync::Mutex<HashMap<(String, String), Flight>>,
    page: tokio::sync::RwLock<PageState>,
    refresh_now: tokio::sync::Notify,
    metrics: Metrics,
    /// Triggers already warned about (their flag is missing from their environment).
    warned: std::sync::Mutex<HashSet<String>>,
}

/// Runs the server until SIGINT/SIGTERM. Prints `listening on http://ADDR` on stdout once the
/// socket is bound (with `--listen 127.0.0.1:0`, the port the system chose).
pub async fn run(session: Arc<Session>, args: &ServeArgs) -> Result<i32> {
    let triggers = resolve_triggers(&session).await?;
    let page_token = match &session.config.serve.page_token {
        Some(source) => Some(
            read_token(&session, "[serve] page_token", source)
                .await
                .context("the status page's token")?,
        ),
        None => None,
    };
    for line in flip::reconcile_pending(&session, None).await {
        log(&line);
    }
    let envs = session
        .config
        .environments
        .iter()
        .map(|env| EnvView {
            name: env.name.clone(),
            protected: env.protected,
            load: LoadView::Loading,
        })
        .collect();
    let server = Arc::new(Server {
        triggers,
        page_token,
        flights: std::sync::Mutex::new(HashMap::new()),
        page: tokio::sync::RwLock::new(PageState {
            report: StatusReport {
                generated_at: session.clock.now(),
                flags: Vec::new(),
                errors: Vec::new(),
            },
            envs,
            last_good: HashMap::new(),
        }),
        refresh_now: tokio::sync::Notify::new(),
        metrics: Metrics::default(),
        warned: std::sync::Mutex::new(HashSet::new()),
        session,
    });
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let bound = listener
        .local_addr()
        .with_context(|| format!("cannot read the address bound for {}", args.listen))?;
    if !bound.ip().is_loopback() {
        log(&format!(
            "WARNING: listening on {bound}, not loopback: put TLS and a firewall in front (docs/serve.md)"
        ));
    }
    if server.session.access == Access::ReadOnly {
        log("--read-only: triggers answer `refused`; the page works");
    }
    {
        use std::io::Write;
        let mut stdout = std::io::stdout().lock();
        let names: Vec<&str> = server.triggers.keys().map(String::as_str).collect();
        writeln!(
            stdout,
            "killswitch serve: listening on http://{bound} ({} trigger{}{})",
            names.len(),
            if names.len() == 1 { "" } else { "s" },
            if names.is_empty() {
                String::new()
            } else {
                format!(": {}", crate::text::line(&names.join(", ")))
            }
        )?;
        stdout.flush()?;
    }
    let refresher = tokio::spawn(refresh_loop(server.clone()));
    let app = router(server);
    let served = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown())
    .await;
    refresher.abort();
    served.context("the HTTP server stopped")?;
    log("stopped");
    Ok(crate::commands::exit::OK)
}

fn router(server: Arc<Server>) -> Router {
    Router::new()
        .route("/", get(status_page))
        .route("/api/status", get(status_json))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/hooks/{name}", post(hook))
        .route("/hooks/{name}/{token}", post(hook_with_token))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(server)
}

async fn shutdown() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}

/// One line in the server log (stderr), redacted and inert.
fn log(message: &str) {
    eprintln!("killswitch serve: {}", crate::redact::line(message));
}

/// Reads every trigger's token (from the config or Vault) once, at start.
async fn resolve_triggers(session: &Session) -> Result<HashMap<String, Trigger>> {
    let mut triggers = HashMap::new();
    for config in &session.config.serve.triggers {
        let what = format!("trigger `{}` ({})", config.name, config.location);
        let token = read_token(session, &what, &config.token).await?;
        triggers.insert(
            config.name.clone(),
            Trigger {
                config: config.clone(),
                token,
                acted: std::sync::Mutex::new(Fingerprints::default()),
                calls: std::sync::Mutex::new(VecDeque::new()),
            },
        );
    }
    Ok(triggers)
}

async fn read_token(session: &Session, what: &str, source: &TokenSource) -> Result<Secret> {
    match source {
        TokenSource::Inline(secret) => Ok(secret.clone()),
        TokenSource::Vault { mount, path, field } => {
            let vault_env = crate::vault::VaultEnv::from_process();
            if !vault_env.configured() {
                anyhow::bail!(
                    "{what}: the token is at {} but VAULT_ADDR is not set",
                    source.describe()
                );
            }
            let vault = crate::vault::VaultCredentials::new(&vault_env, &session.config.network);
            let read = vault
                .read_fields(what, mount, path, &[field.as_str()], &[])
                .await
                .map_err(|message| anyhow::anyhow!(crate::redact::text(&message)))?;
            let token = read
                .fields
                .get(field)
                .ok_or_else(|| anyhow::anyhow!("{what}: {} is empty", source.describe()))?;
            crate::redact::register(token.expose());
            if token.expose().chars().count() < config::MIN_TOKEN_CHARS {
                anyhow::bail!(
                    "{what}: the token at {} is shorter than {} characters",
                    source.describe(),
                    config::MIN_TOKEN_CHARS
                );
            }
            Ok(token.clone())
        }
    }
}

/// Compares two tokens in time that depends only on their lengths, not on where they differ.
fn same_token(given: &[u8], expected: &[u8]) -> bool {
    let mut diff = u8::from(given.len() != expected.len());
    for (index, byte) in expected.iter().enumerate() {
        let other = given.get(index).copied().unwrap_or(0);
        diff |= byte ^ other;
    }
    diff == 0
}

/// The token of `Authorization: Bearer <token>` or the password of `Basic`.
fn header_token(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, rest) = value.split_once(' ')?;
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(rest.trim().to_string());
    }
    if scheme.eq_ignore_ascii_case("basic") {
        use base64::Engine;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest.trim())
            .ok()?;
        let decoded = String::from_utf8(decoded).ok()?;
        return decoded
            .split_once(':')
            .map(|(_, password)| password.to_string());
    }
    None
}

// ---- the page ------------------------------------------------------------------------------

/// `None` when the page may be shown; else the 401 answer.
fn page_denied(server: &Server, headers: &HeaderMap) -> Option<Response> {
    let expected = server.page_token.as_ref()?;
    let allowed = header_token(headers)
        .is_some_and(|given| same_token(given.as_bytes(), expected.expose().as_bytes()));
    if allowed {
        return None;
    }
    let mut response = (
        StatusCode::UNAUTHORIZED,
        "the status page needs its token\n",
    )
        .into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"killswitch\", charset=\"UTF-8\""),
    );
    Some(response)
}

async fn status_page(State(server): State<Arc<Server>>, headers: HeaderMap) -> Response {
    if let Some(denied) = page_denied(&server, &headers) {
        return denied;
    }
    let state = server.page.read().await;
    let triggers: Vec<TriggerView> = {
        let mut list: Vec<&Trigger> = server.triggers.values().collect();
        list.sort_by(|a, b| a.config.name.cmp(&b.config.name));
        list.iter()
            .map(|t| TriggerView {
                name: t.config.name.clone(),
                env: t.config.env.clone(),
                flag: t.config.flag.clone(),
                action: match t.config.action {
                    TriggerAction::Kill => "kill",
                    TriggerAction::Restore => "restore",
                },
            })
            .collect()
    };
    let html = page::render(&page::Page {
        report: &state.report,
        envs: &state.envs,
        triggers: &triggers,
        refresh_seconds: server
            .session
            .config
            .refresh_interval
            .as_secs()
            .max(MIN_PAGE_REFRESH),
        origin: &server.session.config.origin,
    });
    let mut response = (StatusCode::OK, html).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    // No script runs, nothing is framed, nothing is posted anywhere.
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'none'; frame-ancestors 'none'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn status_json(State(server): State<Arc<Server>>, headers: HeaderMap) -> Response {
    if let Some(denied) = page_denied(&server, &headers) {
        return denied;
    }
    let state = server.page.read().await;
    axum::Json(&state.report).into_response()
}

async fn healthz(State(server): State<Arc<Server>>) -> Response {
    let state = server.page.read().await;
    let failed: Vec<&str> = state
        .envs
        .iter()
        .filter(|env| matches!(env.load, LoadView::Failed { .. }))
        .map(|env| env.name.as_str())
        .collect();
    // The server itself is healthy whatever the vendors do; which environments fail is said.
    let body = if failed.is_empty() {
        "ok\n".to_string()
    } else {
        format!(
            "ok (environments failing: {})\n",
            crate::text::line(&failed.join(", "))
        )
    };
    (StatusCode::OK, body).into_response()
}

async fn metrics(State(server): State<Arc<Server>>) -> Response {
    let mut response = (StatusCode::OK, server.metrics.render()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

/// Reads every environment every `refresh_interval`, or at once when a flip asks.
async fn refresh_loop(server: Arc<Server>) {
    loop {
        refresh(&server).await;
        let pause = server
            .session
            .config
            .refresh_interval
            .max(Duration::from_secs(1));
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = server.refresh_now.notified() => {}
        }
    }
}

async fn refresh(server: &Server) {
    let session = &server.session;
    let names = session.config.environment_names();
    let loads = names.iter().map(|name| async move {
        let started = Instant::now();
        let result = session.load(name).await;
        server.metrics.vendor_call(name, "list", started.elapsed());
        server.metrics.env_up(name, result.is_ok());
        (name.clone(), result)
    });
    let fresh = futures::future::join_all(loads).await;
    let now = session.clock.now();
    let mut state = server.page.write().await;
    let mut shown = Vec::new();
    for (name, result) in fresh {
        let previous_ok = state
            .last_good
            .get(&name)
            .map(|snapshot| snapshot.fetched_at);
        let view = match &result {
            Ok(snapshot) => {
                state.last_good.insert(name.clone(), snapshot.clone());
                LoadView::Loaded {
                    at: snapshot.fetched_at,
                }
            }
            Err(error) => LoadView::Failed {
                at: now,
                error: crate::redact::text(&error.to_string()),
                last_ok: previous_ok,
            },
        };
        if let Ok(snapshot) = &result {
            warn_missing_flags(server, snapshot);
        }
        if let Some(env) = state.envs.iter_mut().find(|env| env.name == name) {
            env.load = view;
        }
        // The document lists the error; the flags of a failing environment are its last good
        // read (each flag carries `fetched_at`, so their age is visible).
        match (&result, state.last_good.get(&name)) {
            (Err(error), Some(last)) => {
                shown.push((name.clone(), Ok(last.clone())));
                shown.push((name.clone(), Err(error.clone())));
            }
            (Err(error), None) => shown.push((name.clone(), Err(error.clone()))),
            (Ok(snapshot), _) => shown.push((name.clone(), Ok(snapshot.clone()))),
        }
    }
    let args = StatusArgs {
        env: Vec::new(),
        flag: None,
        kill_switches: false,
        check: None,
        output: Output::Json,
    };
    state.report = crate::commands::status::collect(session, &args, &shown).await;
}

/// Logs once per trigger when its flag is not in its environment (a typo in the config would
/// otherwise only show when the alert fires).
fn warn_missing_flags(server: &Server, snapshot: &EnvSnapshot) {
    let mut warned = server.warned.lock().unwrap_or_else(|p| p.into_inner());
    for trigger in server.triggers.values() {
        let config = &trigger.config;
        if config.env != snapshot.env
            || snapshot.flag(&config.flag).is_some()
            || !warned.insert(config.name.clone())
        {
            continue;
        }
        let keys = snapshot.flags.iter().map(|flag| flag.meta.key.as_str());
        log(&format!(
            "WARNING: trigger `{}` ({}): a call will fail until flag `{}` exists in {}{}",
            config.name,
            config.location,
            config.flag,
            config.env,
            crate::text::did_you_mean(&config.flag, keys)
        ));
    }
}

// ---- the triggers --------------------------------------------------------------------------

/// The JSON answer of a hook call.
#[derive(Debug, Serialize)]
struct HookAnswer {
    trigger: String,
    /// applied, applied_not_confirmed, pending_approval, nothing_to_do, recorded, refused,
    /// changed, failed, outcome_unknown, rate_limited, unauthorized, not_found, bad_request.
    outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    env: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    flag: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    action: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    from: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    to: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    audit_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    confirmed_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    alert_status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
    message: String,
    #[serde(skip)]
    status: StatusCode,
}

impl HookAnswer {
    fn new(trigger: &str, outcome: &'static str, status: StatusCode, message: String) -> Self {
        HookAnswer {
            trigger: trigger.to_string(),
            outcome,
            env: None,
            flag: None,
            action: None,
            from: None,
            to: None,
            audit_id: None,
            confirmed_ms: None,
            alert_status: None,
            note: None,
            message: crate::redact::text(&message),
            status,
        }
    }

    fn finish(mut self, outcome: &'static str, status: StatusCode, message: String) -> Self {
        self.outcome = outcome;
        self.status = status;
        self.message = crate::redact::text(&message);
        self
    }
}

impl IntoResponse for HookAnswer {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(&self)).into_response();
        if self.outcome == "rate_limited" {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
        }
        response
    }
}

async fn hook(
    State(server): State<Arc<Server>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let token = header_token(&headers);
    handle_hook(&server, peer, &name, token, &body).await
}

async fn hook_with_token(
    State(server): State<Arc<Server>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path((name, token)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    handle_hook(&server, peer, &name, Some(token), &body).await
}

async fn handle_hook(
    server: &Server,
    peer: SocketAddr,
    name: &str,
    token: Option<String>,
    body: &[u8],
) -> Response {
    // The name comes from the URL: shown inert and short, never as a metric label.
    let shown_name = crate::text::line_max(name, 64);
    let Some(trigger) = server.triggers.get(name) else {
        server.metrics.trigger_call("(unknown)", "not_found");
        log(&format!(
            "POST /hooks/{shown_name} from {peer}: 404, no such trigger; nothing changed"
        ));
        return HookAnswer::new(
            &shown_name,
            "not_found",
            StatusCode::NOT_FOUND,
            "no such trigger; nothing was changed".into(),
        )
        .into_response();
    };
    let authorized = token
        .as_deref()
        .is_some_and(|given| same_token(given.as_bytes(), trigger.token.expose().as_bytes()));
    if !authorized {
        server.metrics.trigger_call(name, "unauthorized");
        log(&format!(
            "POST /hooks/{shown_name} from {peer}: 401, {} token; nothing changed",
            if token.is_some() { "wrong" } else { "no" }
        ));
        return HookAnswer::new(
            name,
            "unauthorized",
            StatusCode::UNAUTHORIZED,
            "missing or wrong token; nothing was changed".into(),
        )
        .into_response();
    }
    if !within_rate(trigger) {
        server.metrics.trigger_call(name, "rate_limited");
        log(&format!(
            "POST /hooks/{name} from {peer}: 429, more than {} calls in a minute; nothing changed",
            trigger.config.rate_per_minute
        ));
        return HookAnswer::new(
            name,
            "rate_limited",
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "more than {} calls in the last minute; nothing was changed",
                trigger.config.rate_per_minute
            ),
        )
        .into_response();
    }
    let payload = match alert::parse(body) {
        Ok(payload) => payload,
        Err(problem) => {
            server.metrics.trigger_call(name, "bad_request");
            log(&format!(
                "POST /hooks/{name} from {peer}: 400, {problem}; nothing changed"
            ));
            return HookAnswer::new(
                name,
                "bad_request",
                StatusCode::BAD_REQUEST,
                format!("{problem}; nothing was changed"),
            )
            .into_response();
        }
    };
    let answer = act(server, trigger, &payload).await;
    server.metrics.trigger_call(name, answer.outcome);
    log(&format!(
        "POST /hooks/{name} from {peer}: {} {}, {} alert: {}",
        answer.status.as_u16(),
        answer.outcome,
        payload.status.word(),
        answer.message
    ));
    answer.into_response()
}

/// Counts the call; false when the trigger already had its calls for the last minute.
fn within_rate(trigger: &Trigger) -> bool {
    let mut calls = trigger.calls.lock().unwrap_or_else(|p| p.into_inner());
    let now = Instant::now();
    while calls
        .front()
        .is_some_and(|at| now.duration_since(*at) >= Duration::from_secs(60))
    {
        calls.pop_front();
    }
    if calls.len() >= trigger.config.rate_per_minute as usize {
        return false;
    }
    calls.push_back(now);
    true
}

/// What an authorised call does: firing acts, resolved is recorded (or restores when the
/// trigger says `on_resolved = "restore"`), anything else is recorded.
async fn act(server: &Server, trigger: &Trigger, payload: &Payload) -> HookAnswer {
    let config = &trigger.config;
    let note = alert::note(&config.name, payload);
    let mut answer = HookAnswer::new(&config.name, "recorded", StatusCode::OK, String::new());
    answer.env = Some(config.env.clone());
    answer.flag = Some(config.flag.clone());
    answer.alert_status = Some(payload.status.word().to_string());
    answer.note = Some(note.clone());
    let enabled = match (&payload.status, config.action, config.on_resolved) {
        (AlertStatus::Firing, TriggerAction::Kill, _) => false,
        (AlertStatus::Firing, TriggerAction::Restore, _) => true,
        (AlertStatus::Resolved, TriggerAction::Kill, OnResolved::Restore) => {
            let mut acted = trigger.acted.lock().unwrap_or_else(|p| p.into_inner());
            acted.forget(&payload.fingerprints(false));
            drop(acted);
            true
        }
        (AlertStatus::Resolved, _, _) => {
            let mut acted = trigger.acted.lock().unwrap_or_else(|p| p.into_inner());
            acted.forget(&payload.fingerprints(false));
            return answer.finish(
                "recorded",
                StatusCode::OK,
                format!(
                    "resolved alert recorded; {} in {} was not changed (a resolved alert never restores unless the trigger says on_resolved = \"restore\")",
                    config.flag, config.env
                ),
            );
        }
        (AlertStatus::Other(word), _, _) => {
            return answer.finish(
                "recorded",
                StatusCode::OK,
                format!(
                    "alert status `{word}` recorded; only `firing` acts; {} in {} was not changed",
                    config.flag, config.env
                ),
            );
        }
    };
    let firing_prints = if payload.status == AlertStatus::Firing {
        payload.fingerprints(true)
    } else {
        Vec::new()
    };
    flip_for(server, trigger, enabled, &note, &firing_prints, answer).await
}

/// Runs the flip transaction for a trigger: protected-environment opt-in, one flip in flight
/// per flag, the fingerprint rule, already-in-state, then [`flip::execute`].
async fn flip_for(
    server: &Server,
    trigger: &Trigger,
    enabled: bool,
    note: &str,
    fingerprints: &[String],
    mut answer: HookAnswer,
) -> HookAnswer {
    let config = &trigger.config;
    let session = &server.session;
    let (env, flag) = (config.env.as_str(), config.flag.as_str());
    answer.action = Some(if enabled { "restore" } else { "kill" }.to_string());
    let refused = |answer: HookAnswer, message: String| {
        server.metrics.flip("refused");
        answer.finish("refused", StatusCode::FORBIDDEN, message)
    };
    if session.access == Access::ReadOnly {
        return refused(
            answer,
            "the server runs --read-only: no write path is built; nothing was changed".into(),
        );
    }
    let Some(env_config) = session.config.environment(env) else {
        return refused(answer, session.config.unknown_environment(env));
    };
    if env_config.protected && !config.allow_protected {
        return refused(
            answer,
            format!(
                "{env} is protected: trigger `{}` needs `allow_protected = true` ({}) to change it; nothing was changed",
                config.name, config.location
            ),
        );
    }
    let flight = {
        let mut flights = server.flights.lock().unwrap_or_else(|p| p.into_inner());
        flights
            .entry((env.to_string(), flag.to_string()))
            .or_default()
            .clone()
    };
    let _in_flight = flight.lock().await;
    {
        let acted = trigger.acted.lock().unwrap_or_else(|p| p.into_inner());
        if acted.all_known(fingerprints) {
            server.metrics.flip("nothing_to_do");
            return answer.finish(
                "nothing_to_do",
                StatusCode::OK,
                "this alert (same fingerprint) was already acted on: nothing to do".into(),
            );
        }
    }
    let connection = match session.connection(env).await {
        Ok(connection) => connection,
        Err(ConnectError::Credentials(message)) => {
            server.metrics.flip("failed");
            return answer.finish("failed", StatusCode::BAD_GATEWAY, message.to_string());
        }
        Err(ConnectError::Provider(error)) => {
            server.metrics.flip("failed");
            return answer.finish("failed", StatusCode::BAD_GATEWAY, error.message);
        }
    };
    if connection.writer.is_none() {
        let reason = connection
            .read_only_reason
            .clone()
            .unwrap_or_else(|| "no write access".into());
        return refused(
            answer,
            format!("{env} is read-only: {reason}; nothing was changed"),
        );
    }
    let started = Instant::now();
    let read = connection.source.read_flag(flag).await;
    server.metrics.vendor_call(env, "read", started.elapsed());
    let current = match read {
        Ok(current) => current,
        Err(error) => {
            server.metrics.flip("failed");
            return answer.finish(
                "failed",
                StatusCode::BAD_GATEWAY,
                format!("{flag} in {env}: {}; nothing was changed", error.message),
            );
        }
    };
    let kind = current.meta.kind;
    let from = flip::cell(kind, &current.state);
    answer.action = Some(flip::action_name(kind, enabled));
    answer.from = Some(from.clone());
    let remember = || {
        let mut acted = trigger.acted.lock().unwrap_or_else(|p| p.into_inner());
        acted.remember(fingerprints);
    };
    let already = match flip::already_there(env, flag, &current.state, enabled) {
        Ok(already) => already,
        Err(refusal) => {
            server.metrics.flip("refused");
            return answer.finish("refused", StatusCode::FORBIDDEN, refusal.to_string());
        }
    };
    if already {
        remember();
        server.metrics.flip("nothing_to_do");
        answer.to = Some(from.clone());
        return answer.finish(
            "nothing_to_do",
            StatusCode::OK,
            format!("{flag} in {env} already is {from}: nothing to do"),
        );
    }
    let request = FlipRequest {
        env: env.to_string(),
        flag: flag.to_string(),
        kind,
        change: flip::Change::Switch { enabled },
        seen: current.state.clone(),
        note: note.to_string(),
        operator: format!("trigger:{}", config.name),
    };
    let started = Instant::now();
    let outcome = flip::execute(
        &request,
        &connection,
        &session.audit,
        session.clock.as_ref(),
        session.config.network.verify_timeout,
    )
    .await;
    server.metrics.vendor_call(env, "flip", started.elapsed());
    server.refresh_now.notify_one();
    // Another instance (or person) may have made the same change a moment ago: the conflict
    // guard refused ours; if the flag now is what was asked, that is success.
    if let Err(error) = &outcome {
        let raced = matches!(error, FlipError::Changed { .. })
            || error.provider_kind() == Some(ErrorKind::Conflict);
        let now = if raced {
            connection.source.read_flag(flag).await.ok()
        } else {
            None
        };
        if let Some(now) = now.filter(|now| now.state.enabled == enabled) {
            remember();
            server.metrics.flip("nothing_to_do");
            let shown = flip::cell(now.meta.kind, &now.state);
            answer.to = Some(shown.clone());
            return answer.finish(
                "nothing_to_do",
                StatusCode::OK,
                format!(
                    "{flag} in {env} was changed to {shown} by someone else at the same moment: nothing to do"
                ),
            );
        }
    }
    // The one presenter's words and class; `serve` adds only its outcome word and HTTP status.
    let said = crate::outcome::present(&request, &outcome);
    if outcome.is_ok() {
        remember();
    }
    if let Some(warning) = &said.audit_warning {
        log(&format!("WARNING: {warning}"));
    }
    if said.from.is_some() {
        answer.from = said.from;
    }
    if said.to.is_some() {
        answer.to = said.to;
    }
    answer.audit_id = said.audit_id;
    answer.confirmed_ms = said.confirmed_ms;
    let (word, status) = said.class.serve_answer();
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let answer = answer.finish(word, status, said.message);
    server.metrics.flip(answer.outcome);
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_whole() {
        assert!(same_token(b"0123456789abcdef", b"0123456789abcdef"));
        assert!(!same_token(b"0123456789abcdeX", b"0123456789abcdef"));
        assert!(!same_token(b"0123456789abcdef0", b"0123456789abcdef"));
        assert!(!same_token(b"0123456789abcde", b"0123456789abcdef"));
        assert!(!same_token(b"", b"0123456789abcdef"));
    }

    #[test]
    fn bearer_and_basic_headers_give_the_token() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer abc def"),
        );
        assert_eq!(header_token(&headers).as_deref(), Some("abc def"));
        // "viewer:s3cret-page-token"
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic dmlld2VyOnMzY3JldC1wYWdlLXRva2Vu"),
        );
        assert_eq!(header_token(&headers).as_deref(), Some("s3cret-page-token"));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Token x"));
        assert_eq!(header_token(&headers), None);
    }

    #[test]
    fn fingerprints_are_bounded_and_forgettable() {
        let mut prints = Fingerprints::default();
        assert!(!prints.all_known(&[]));
        prints.remember(&["a".into(), "b".into()]);
        assert!(prints.all_known(&["a".into()]));
        assert!(!prints.all_known(&["a".into(), "c".into()]));
        prints.forget(&["a".into()]);
        assert!(!prints.all_known(&["a".into()]));
        let many: Vec<String> = (0..MAX_FINGERPRINTS + 10).map(|i| i.to_string()).collect();
        prints.remember(&many);
        assert_eq!(prints.order.len(), MAX_FINGERPRINTS);
        assert!(!prints.all_known(&["0".into()]));
    }
}
