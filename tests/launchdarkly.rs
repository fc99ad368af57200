//! The LaunchDarkly provider against a local fake of LaunchDarkly's REST API v2 and SDK
//! endpoint (tests/support/launchdarkly_fake.rs), through the same paths the TUI and the
//! subcommands take: `provider::connect`, the `FlagSource`/`FlagWriter` methods,
//! `flip::execute`, and `Session`.

#[path = "support/launchdarkly_fake.rs"]
mod launchdarkly_fake;
mod support;

use support::vendor;

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use killswitch::audit::AuditLog;
use killswitch::clock::SystemClock;
use killswitch::config::{self, EnvironmentConfig, NetworkConfig, ProviderKind};
use killswitch::flip::{self, FlipOutcome, FlipRequest, Verification};
use killswitch::model::{FlagKind, cell_text};
use killswitch::provider::{self, Access, Connection, ErrorKind, ProviderError};
use killswitch::secret::{Secret, SecretFields};
use killswitch::session::{ConnectError, CredentialSource, Credentials, Session};
use launchdarkly_fake::{
    FakeLd, PROJECT, READER_TOKEN, RateLimit, SDK_KEY_PROD, SDK_KEY_REGULATED, WRITER_TOKEN,
};

const NOTE: &str = "INC-4711 payment provider timeouts, killing payments";

/// Timeouts against the local fake: 500 ms connect, 2 s request, 3 s verification.
fn network() -> NetworkConfig {
    vendor::network(500, 2000, 3000)
}

fn env_config(name: &str, api_url: &str) -> EnvironmentConfig {
    let mut env = vendor::env_config(ProviderKind::LaunchDarkly, name, &[("api_url", api_url)]);
    env.protected = true;
    env
}

fn fields(ld_env: &str, sdk_key: &str, writer: Option<&str>) -> SecretFields {
    let mut fields = SecretFields::new("vault kv/feature-flags/launchdarkly/prod");
    fields.insert("api_token", Secret::new(READER_TOKEN));
    fields.insert("project_key", Secret::new(PROJECT));
    fields.insert("environment_key", Secret::new(ld_env));
    fields.insert("sdk_key", Secret::new(sdk_key));
    if let Some(writer) = writer {
        fields.insert("writer_token", Secret::new(writer));
    }
    fields
}

fn connect(fake: &FakeLd, writer: bool) -> Connection {
    vendor::connect(
        &env_config("prod", &fake.url),
        &fields("production", SDK_KEY_PROD, writer.then_some(WRITER_TOKEN)),
        Access::ReadWrite,
        &network(),
    )
}

fn connect_err(env: &EnvironmentConfig, fields: Option<&SecretFields>) -> ProviderError {
    vendor::connect_err(env, fields, &network())
}

fn audit_log(dir: &tempfile::TempDir) -> AuditLog {
    AuditLog::open(&dir.path().join("audit.jsonl")).expect("audit log")
}

async fn kill_request(connection: &Connection, flag: &str, enabled: bool) -> FlipRequest {
    let seen = connection.source.read_flag(flag).await.expect("read flag");
    vendor::flip_request("prod", &seen, enabled, NOTE)
}

#[tokio::test]
async fn summaries_match_what_launchdarkly_serves() {
    let fake = FakeLd::start().await;
    let connection = connect(&fake, true);
    let mut flags = connection.source.list_flags().await.expect("list flags");
    // States from the SDK endpoint alone; owners, tags and the kill-switch tag beside them.
    assert_eq!(
        flags
            .iter()
            .find(|f| f.meta.key == "recommendations_circuit")
            .map(|f| f.meta.kind),
        Some(FlagKind::Other)
    );
    let metadata = connection.source.metadata().await.expect("metadata");
    provider::merge_metadata(&mut flags, &metadata);
    let cell = |key: &str| {
        let flag = flags
            .iter()
            .find(|f| f.meta.key == key)
            .unwrap_or_else(|| panic!("{key} listed"));
        cell_text(flag.meta.kind, &flag.state)
    };
    assert_eq!(flags.len(), 6);
    assert_eq!(cell("kill_switch_payments"), "SERVING");
    // 10000/90000 thousandths of a percent on a boolean flag, plus 1 target + 1 rule.
    assert_eq!(cell("checkout_redesign"), "ON 10% +1 seg +1 id");
    assert_eq!(cell("search_ranking"), "ON 33/33/34");
    // LaunchDarkly's kill-switch template tag marks a kill switch without the key prefix.
    assert_eq!(cell("recommendations_circuit"), "SERVING");
    assert_eq!(cell("dark_mode"), "OFF");
    assert_eq!(cell("max_items"), "20 +1 seg");

    let redesign = flags
        .iter()
        .find(|f| f.meta.key == "checkout_redesign")
        .expect("redesign");
    let overrides: Vec<String> = redesign
        .state
        .overrides
        .iter()
        .map(|o| o.summary())
        .collect();
    assert_eq!(
        overrides,
        vec![
            "ON (user alice,bob +1)".to_string(),
            "OFF (rule 1: country in DE,FR)".to_string()
        ]
    );
    assert_eq!(redesign.meta.owner.as_deref(), Some("ada@example.com"));
    assert_eq!(redesign.meta.tags, vec!["release".to_string()]);
    assert_eq!(redesign.state.version.as_deref(), Some("40"));
    let max_items = flags
        .iter()
        .find(|f| f.meta.key == "max_items")
        .expect("max");
    // The SDK data carries no rule descriptions: the rule is shown by its first clause.
    assert_eq!(
        max_items.state.overrides[0].summary(),
        "50 (rule 1: region in eu)"
    );
    let circuit = flags
        .iter()
        .find(|f| f.meta.key == "recommendations_circuit")
        .expect("circuit");
    assert_eq!(circuit.meta.kind, FlagKind::KillSwitch);

    // The states: one SDK request with the SDK key. The metadata: the REST list's summary
    // representation with the reader token, pinned API version, no targeting asked for.
    let requests = fake.requests();
    let sdk: Vec<_> = requests
        .iter()
        .filter(|r| r.path == "/sdk/latest-all")
        .collect();
    assert_eq!(sdk.len(), 1);
    assert_eq!(sdk[0].authorization.as_deref(), Some(SDK_KEY_PROD));
    let lists: Vec<_> = requests
        .iter()
        .filter(|r| r.path == format!("/api/v2/flags/{PROJECT}"))
        .collect();
    assert_eq!(
        lists.len(),
        2,
        "the first load's scope check, then the metadata"
    );
    for list in &lists {
        assert_eq!(list.authorization.as_deref(), Some(READER_TOKEN));
        assert_eq!(list.api_version.as_deref(), Some("20240415"));
        assert!(!list.query.contains("summary=0"), "{}", list.query);
    }
    // The scope check asks for the environment both ways LaunchDarkly documents.
    assert!(
        lists[0].query.contains("env=production"),
        "{}",
        lists[0].query
    );
    assert!(
        lists[0].query.contains("filter=filterEnv%3Aproduction"),
        "{}",
        lists[0].query
    );
}

/// Issue 22: the states are `/sdk/latest-all` itself, flag for flag; a prerequisite, a rule
/// rollout and targets the summary words as overrides, and the version each flag has there.
#[tokio::test]
async fn dashboard_states_are_what_the_sdk_endpoint_serves_for_every_flag() {
    let fake = FakeLd::start().await;
    // A flag served only when another flag serves its first variation: no percentage or
    // "everyone" can say that.
    fake.with(|s| {
        let mut gated = s.flags[0].clone();
        gated["key"] = serde_json::json!("gated_checkout");
        gated["environments"]["production"]["prerequisites"] =
            serde_json::json!([{"key": "dark_mode", "variation": 0}]);
        s.flags.push(gated);
    });
    let connection = connect(&fake, false);
    let flags = connection.source.list_flags().await.expect("list flags");
    let gated = flags
        .iter()
        .find(|f| f.meta.key == "gated_checkout")
        .expect("gated");
    let shown: Vec<String> = gated.state.overrides.iter().map(|o| o.summary()).collect();
    assert_eq!(shown, vec!["OFF (prerequisite dark_mode not variation 0)"]);
    let sdk: serde_json::Value = reqwest::Client::new()
        .get(format!("{}/sdk/latest-all", fake.url))
        .header("Authorization", SDK_KEY_PROD)
        .send()
        .await
        .expect("sdk")
        .json()
        .await
        .expect("json");
    let served = sdk["flags"].as_object().expect("flags map");
    assert!(sdk["segments"].is_object(), "{sdk}");
    assert_eq!(flags.len(), served.len());
    for (key, flag) in served {
        let shown = flags.iter().find(|f| &f.meta.key == key).expect("shown");
        assert_eq!(Some(shown.state.enabled), flag["on"].as_bool(), "{key}");
        assert_eq!(
            shown.state.version.as_deref(),
            flag["version"].as_i64().map(|v| v.to_string()).as_deref(),
            "{key}"
        );
        let targeting = flag["targets"].as_array().map_or(0, |t| {
            t.iter()
                .filter(|t| t["values"].as_array().is_some_and(|v| !v.is_empty()))
                .count()
        }) + flag["contextTargets"].as_array().map_or(0, |t| {
            t.iter()
                .filter(|t| t["values"].as_array().is_some_and(|v| !v.is_empty()))
                .count()
        }) + flag["rules"].as_array().map_or(0, Vec::len)
            + flag["prerequisites"].as_array().map_or(0, Vec::len);
        let expected = if shown.state.enabled { targeting } else { 0 };
        assert_eq!(shown.state.overrides.len(), expected, "{key}: {shown:?}");
        // The one-flag re-read (REST) compares equal to the SDK's view when nothing changed.
        let again = connection.source.read_flag(key).await.expect("read");
        assert_eq!(again.state, shown.state, "{key}");
    }
}

/// The metadata pages after the first go out as many at once as the route's rate-limit budget
/// allows (`X-Ratelimit-Route-Remaining` less a reserve), not a fixed handful: 5,000 flags are
/// two round trips, not seven.
#[tokio::test]
async fn metadata_pages_go_out_at_once_within_the_route_budget() {
    let fake = FakeLd::start().await;
    fake.with(|s| {
        s.flags.extend(launchdarkly_fake::filler_flags(4994));
        s.list_route_budget = Some(100);
        s.list_hold = Some(Duration::from_millis(300));
    });
    // What is asserted is how many pages go out at once, not how fast: 49 pages of 100 flags
    // built and parsed at once on a loaded two-core machine can take longer than the usual
    // 2 s request timeout, so this connection gets a generous one.
    let connection = vendor::connect(
        &env_config("prod", &fake.url),
        &fields("production", SDK_KEY_PROD, None),
        Access::ReadWrite,
        &vendor::network(500, 30_000, 3000),
    );
    let metadata = connection.source.metadata().await.expect("metadata");
    assert_eq!(metadata.len(), 5000);
    let (pages, max_at_once) = fake.with(|s| {
        let pages = s
            .requests
            .iter()
            .filter(|r| r.path == format!("/api/v2/flags/{PROJECT}"))
            .count();
        (pages, s.max_list_in_flight)
    });
    assert_eq!(pages, 50, "one read per page of 100, none refused");
    // 49 pages after the first, budget 99 left: all of them at once (the old fixed 8 fails).
    assert!(max_at_once > 8, "{max_at_once} list requests at once");
}

/// A small route budget is respected, with a reserve left for other requests on the token:
/// no 429, never more at once than the budget less the reserve.
#[tokio::test]
async fn metadata_pages_stay_within_a_small_route_budget() {
    let fake = FakeLd::start().await;
    fake.with(|s| {
        // Five pages; six list requests per window.
        s.flags.extend(launchdarkly_fake::filler_flags(494));
        s.list_route_budget = Some(6);
        s.list_hold = Some(Duration::from_millis(200));
    });
    let connection = connect(&fake, false);
    let metadata = connection.source.metadata().await.expect("metadata");
    assert_eq!(metadata.len(), 500);
    let (refused, max_at_once) = fake.with(|s| {
        (
            s.requests.iter().filter(|r| r.status == 429).count(),
            s.max_list_in_flight,
        )
    });
    assert_eq!(refused, 0);
    // 5 left after the first page, 2 kept in reserve: 3 at once (taking the whole budget
    // would send the four remaining pages together).
    assert!(max_at_once <= 3, "{max_at_once} list requests at once");
}

#[tokio::test]
async fn the_list_follows_pages_beyond_one_hundred_flags() {
    let fake = FakeLd::start().await;
    fake.with(|s| s.flags.extend(launchdarkly_fake::filler_flags(450)));
    let connection = connect(&fake, false);
    // The states: one call, however many flags.
    let flags = connection.source.list_flags().await.expect("list");
    assert_eq!(flags.len(), 456);
    assert_eq!(
        fake.requests()
            .iter()
            .filter(|r| r.path == "/sdk/latest-all")
            .count(),
        1
    );
    // The metadata: the first page, then the other four at once.
    let before = fake.requests().len();
    let metadata = connection.source.metadata().await.expect("metadata");
    let offsets: Vec<String> = fake.requests()[before..]
        .iter()
        .filter(|r| r.path == format!("/api/v2/flags/{PROJECT}"))
        .map(|r| r.query.clone())
        .collect();
    assert_eq!(offsets.len(), 5, "{offsets:?}");
    for offset in [0, 100, 200, 300, 400] {
        assert!(
            offsets
                .iter()
                .any(|q| q.contains(&format!("offset={offset}&"))
                    || q.ends_with(&format!("offset={offset}"))),
            "{offsets:?}"
        );
    }
    let mut keys: Vec<&str> = metadata.iter().map(|m| m.key.as_str()).collect();
    keys.sort_unstable();
    keys.dedup();
    assert_eq!(keys.len(), 456, "no flag twice, none missing");
}

#[tokio::test]
async fn kill_and_restore_carry_the_note_and_are_verified_through_the_sdk() {
    let fake = FakeLd::start().await;
    // The SDK endpoint lags two reads behind a change, so verification has to poll.
    fake.with(|s| s.sdk_lag_reads = 2);
    let connection = connect(&fake, true);
    let dir = tempfile::tempdir().expect("tempdir");
    let log = audit_log(&dir);

    let request = kill_request(&connection, "kill_switch_payments", false).await;
    let outcome = flip::execute(
        &request,
        &connection,
        &log,
        &SystemClock,
        Duration::from_secs(3),
    )
    .await
    .expect("kill");
    vendor::assert_confirmed(&outcome, "the kill");
    assert_eq!(
        fake.env_config("kill_switch_payments", "production")["on"],
        false
    );
    assert_eq!(
        fake.env_config("kill_switch_payments", "production")["version"],
        13
    );
    let sdk_reads = fake
        .requests()
        .iter()
        .filter(|r| r.path == "/sdk/latest-all")
        .count();
    assert!(
        sdk_reads >= 3,
        "verification polled the SDK endpoint ({sdk_reads} reads)"
    );
    assert!(
        fake.requests()
            .iter()
            .filter(|r| r.path.starts_with("/sdk/"))
            .all(|r| r.authorization.as_deref() == Some(SDK_KEY_PROD))
    );

    // The semantic patch as LaunchDarkly documents it, with the writer token.
    let patch = fake
        .requests()
        .into_iter()
        .find(|r| r.method == "PATCH")
        .expect("patch sent");
    assert_eq!(patch.authorization.as_deref(), Some(WRITER_TOKEN));
    assert_eq!(
        patch.content_type.as_deref(),
        Some("application/json; domain-model=launchdarkly.semanticpatch")
    );
    let body: serde_json::Value = serde_json::from_str(&patch.body).expect("json");
    assert_eq!(body["environmentKey"], "production");
    assert_eq!(body["instructions"][0]["kind"], "turnFlagOff");

    // The note is in LaunchDarkly's audit log, and the history view reads it back.
    let comment = fake.with(|s| {
        s.audit[0]["comment"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    });
    assert!(comment.contains(NOTE), "{comment}");
    assert!(comment.contains(vendor::OPERATOR), "{comment}");
    let records = log.records().expect("records");
    assert!(
        comment.contains(&records[0].id),
        "vendor comment names the audit id"
    );
    let history = connection
        .source
        .history("kill_switch_payments")
        .await
        .expect("history");
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].comment.as_deref(), Some(comment.as_str()));
    assert_eq!(history[0].what, "turned off");
    assert_eq!(history[0].who.as_deref(), Some("incident-bot@example.com"));

    // Restore.
    let request = kill_request(&connection, "kill_switch_payments", true).await;
    let outcome = flip::execute(
        &request,
        &connection,
        &log,
        &SystemClock,
        Duration::from_secs(3),
    )
    .await
    .expect("restore");
    vendor::assert_confirmed(&outcome, "the flip");
    assert_eq!(
        fake.env_config("kill_switch_payments", "production")["on"],
        true
    );
    let history = connection
        .source
        .history("kill_switch_payments")
        .await
        .expect("history");
    assert_eq!(history.len(), 2);
    assert_eq!(history[0].what, "turned on", "newest first");
    let served = connection
        .source
        .served("kill_switch_payments")
        .await
        .expect("served");
    assert!(served.enabled);
    assert_eq!(served.value, Some(serde_json::Value::Bool(true)));
}

#[tokio::test]
async fn an_approval_environment_gets_a_pending_request_and_no_change() {
    let fake = FakeLd::start().await;
    let connection = provider::connect(
        &env_config("prod", &fake.url),
        Some(&fields("regulated", SDK_KEY_REGULATED, Some(WRITER_TOKEN))),
        Access::ReadWrite,
        &network(),
    )
    .expect("connect");
    let dir = tempfile::tempdir().expect("tempdir");
    let log = audit_log(&dir);
    let request = kill_request(&connection, "kill_switch_payments", false).await;
    let outcome = flip::execute(
        &request,
        &connection,
        &log,
        &SystemClock,
        Duration::from_secs(2),
    )
    .await
    .expect("flip");
    let FlipOutcome::PendingApproval { reference, .. } = outcome else {
        panic!("expected pending approval, got {outcome:?}");
    };
    let approval = fake.with(|s| s.approvals[0].clone());
    let id = approval["_id"].as_str().expect("id");
    assert_eq!(reference, format!("LaunchDarkly approval request {id}"));
    assert_eq!(approval["status"], "pending");
    assert_eq!(approval["instructions"][0]["kind"], "turnFlagOff");
    assert!(
        approval["description"]
            .as_str()
            .is_some_and(|d| d.contains(NOTE)),
        "{approval}"
    );
    assert!(
        approval["comment"]
            .as_str()
            .is_some_and(|c| c.contains(NOTE)),
        "{approval}"
    );
    // Nothing is live: the flag still serves, and LaunchDarkly logged no change.
    assert_eq!(
        fake.env_config("kill_switch_payments", "regulated")["on"],
        true
    );
    assert!(fake.with(|s| s.audit.is_empty()));
    let statuses: Vec<u16> = fake
        .requests()
        .iter()
        .filter(|r| r.method != "GET")
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, vec![405, 201]);
    let records = log.records().expect("records");
    assert_eq!(
        records.last().and_then(|r| r.reference.clone()),
        Some(reference)
    );
}

#[tokio::test]
async fn a_short_rate_limit_on_a_read_is_waited_out() {
    let fake = FakeLd::start().await;
    fake.with(|s| {
        s.rate_limits
            .push_back(RateLimit::ResetIn(Duration::from_millis(400)))
    });
    let connection = connect(&fake, false);
    let started = Instant::now();
    let flags = connection.source.metadata().await.expect("list after wait");
    let took = started.elapsed();
    assert_eq!(flags.len(), 6);
    assert!(
        took >= Duration::from_millis(300),
        "waited for the reset: {took:?}"
    );
    assert!(took < Duration::from_secs(2), "bounded: {took:?}");
    let statuses: Vec<u16> = fake.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![429, 200]);
}

#[tokio::test]
async fn a_long_rate_limit_fails_fast_and_says_when_to_retry() {
    let fake = FakeLd::start().await;
    fake.with(|s| {
        s.rate_limits
            .push_back(RateLimit::ResetIn(Duration::from_secs(30)))
    });
    let connection = connect(&fake, false);
    let started = Instant::now();
    let err = connection
        .source
        .metadata()
        .await
        .expect_err("rate limited");
    assert!(started.elapsed() < Duration::from_millis(500), "no hang");
    assert_eq!(err.kind, ErrorKind::RateLimited);
    assert!(err.message.contains("429 rate limited"), "{}", err.message);
    assert!(err.message.contains("retry after 30"), "{}", err.message);
    assert!(
        err.message.contains("You've exceeded the API rate limit"),
        "{}",
        err.message
    );

    // Retry-After (IP limits) in seconds, longer than the request timeout.
    fake.with(|s| s.rate_limits.push_back(RateLimit::RetryAfter(5)));
    let err = connection
        .source
        .read_flag("dark_mode")
        .await
        .expect_err("rate limited");
    assert_eq!(err.kind, ErrorKind::RateLimited);
    assert!(err.message.contains("retry after 5.0s"), "{}", err.message);
}

#[tokio::test]
async fn a_rate_limited_write_is_not_retried_and_is_audited_as_failed() {
    let fake = FakeLd::start().await;
    let connection = connect(&fake, true);
    let dir = tempfile::tempdir().expect("tempdir");
    let log = audit_log(&dir);
    let request = kill_request(&connection, "kill_switch_payments", false).await;
    // Even a short reset is not waited out for a write: the operator decides to retry.
    fake.with(|s| {
        s.rate_limits
            .push_back(RateLimit::ResetIn(Duration::from_millis(200)));
        s.patch_rate_limits
            .push_back(RateLimit::ResetIn(Duration::from_millis(200)));
    });
    let err = flip::execute(
        &request,
        &connection,
        &log,
        &SystemClock,
        Duration::from_secs(2),
    )
    .await
    .expect_err("rate limited");
    // The re-read waited out its 429; the write got one too and stopped there.
    assert_eq!(err.provider_kind(), Some(ErrorKind::RateLimited), "{err}");
    assert!(err.to_string().contains("retry after"), "{err}");
    let patches = fake
        .requests()
        .iter()
        .filter(|r| r.method == "PATCH")
        .count();
    assert_eq!(patches, 1);
    assert_eq!(
        fake.env_config("kill_switch_payments", "production")["on"],
        true
    );
    let records = log.records().expect("records");
    assert_eq!(
        records
            .last()
            .and_then(|r| r.error.clone())
            .map(|e| e.contains("429")),
        Some(true)
    );
}

#[tokio::test]
async fn error_paths_name_what_failed() {
    let fake = FakeLd::start().await;
    let url = fake.url.clone();

    // 401: a token LaunchDarkly does not know.
    let mut bad = fields("production", SDK_KEY_PROD, None);
    bad.insert("api_token", Secret::new("api-not-a-real-token"));
    let connection = provider::connect(
        &env_config("prod", &url),
        Some(&bad),
        Access::ReadOnly,
        &network(),
    )
    .expect("connect");
    let err = connection.source.list_flags().await.expect_err("401");
    assert_eq!(err.kind, ErrorKind::Auth);
    assert!(
        err.message
            .starts_with("prod: list flags of LaunchDarkly project `checkout-svc`"),
        "{}",
        err.message
    );
    assert!(
        err.message
            .contains(&format!("{url}/api/v2/flags/checkout-svc answered 401")),
        "{}",
        err.message
    );
    assert!(
        err.message.contains("Invalid access token"),
        "{}",
        err.message
    );

    // 403: a reader-role token in the writer slot may not change flags.
    let connection = provider::connect(
        &env_config("prod", &url),
        Some(&fields("production", SDK_KEY_PROD, Some(READER_TOKEN))),
        Access::ReadWrite,
        &network(),
    )
    .expect("connect");
    let dir = tempfile::tempdir().expect("tempdir");
    let log = audit_log(&dir);
    let request = kill_request(&connection, "kill_switch_payments", false).await;
    let err = flip::execute(
        &request,
        &connection,
        &log,
        &SystemClock,
        Duration::from_secs(1),
    )
    .await
    .expect_err("403");
    assert_eq!(err.provider_kind(), Some(ErrorKind::Auth));
    assert!(err.to_string().contains("answered 403 forbidden"), "{err}");
    assert!(
        err.to_string()
            .contains("turnFlagOff `kill_switch_payments`"),
        "{err}"
    );

    // 404: unknown flag, unknown project.
    let connection = connect(&fake, true);
    let err = connection
        .source
        .read_flag("no_such_flag")
        .await
        .expect_err("404");
    assert_eq!(err.kind, ErrorKind::NotFound);
    assert!(
        err.message.contains("`no_such_flag`") && err.message.contains("404"),
        "{}",
        err.message
    );
    let mut other = fields("production", SDK_KEY_PROD, None);
    other.insert("project_key", Secret::new("no-such-project"));
    let connection = provider::connect(
        &env_config("prod", &url),
        Some(&other),
        Access::ReadOnly,
        &network(),
    )
    .expect("connect");
    let err = connection.source.list_flags().await.expect_err("404");
    assert_eq!(err.kind, ErrorKind::NotFound);
    assert!(
        err.message.contains("Unknown project key"),
        "{}",
        err.message
    );

    // Unknown LaunchDarkly environment: the flags have no configuration for it.
    let connection = provider::connect(
        &env_config("prod", &url),
        Some(&fields("producton", SDK_KEY_PROD, None)),
        Access::ReadOnly,
        &network(),
    )
    .expect("connect");
    let err = connection.source.list_flags().await.expect_err("typo");
    assert_eq!(err.kind, ErrorKind::Api);
    assert!(
        err.message
            .contains("environment `producton` (wrong environment_key?)"),
        "{}",
        err.message
    );

    // 409: a concurrent request changed the flag.
    let connection = connect(&fake, true);
    let request = kill_request(&connection, "kill_switch_payments", false).await;
    fake.with(|s| s.conflict_next_patch = true);
    let err = flip::execute(
        &request,
        &connection,
        &log,
        &SystemClock,
        Duration::from_secs(1),
    )
    .await
    .expect_err("409");
    assert_eq!(err.provider_kind(), Some(ErrorKind::Conflict), "{err}");
    assert!(err.to_string().contains("409 conflict"), "{err}");

    // The SDK key is wrong: verification reads fail with 401 and say so.
    let mut wrong_sdk = fields("production", "sdk-wrong", None);
    wrong_sdk.insert("api_token", Secret::new(READER_TOKEN));
    let connection = provider::connect(
        &env_config("prod", &url),
        Some(&wrong_sdk),
        Access::ReadOnly,
        &network(),
    )
    .expect("connect");
    let err = connection
        .source
        .served("dark_mode")
        .await
        .expect_err("401");
    assert_eq!(err.kind, ErrorKind::Auth);
    assert!(
        err.message.contains("as the server-side SDK sees it"),
        "{}",
        err.message
    );
    assert!(
        err.message.contains("/sdk/latest-all answered 401"),
        "{}",
        err.message
    );

    // Unreachable: nothing listens there.
    let closed = format!("http://127.0.0.1:{}", support::free_port());
    let connection = provider::connect(
        &env_config("prod", &closed),
        Some(&fields("production", SDK_KEY_PROD, None)),
        Access::ReadOnly,
        &network(),
    )
    .expect("connect");
    let err = connection.source.list_flags().await.expect_err("refused");
    assert_eq!(err.kind, ErrorKind::Unreachable);
    assert!(err.message.contains("cannot connect"), "{}", err.message);
    assert!(err.message.contains(&closed), "{}", err.message);
}

#[tokio::test]
async fn malformed_answers_are_api_errors_not_panics() {
    // A server that answers 200 with HTML (a captive portal, a misconfigured proxy).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = axum::Router::new().fallback(|| async { "<html>hello</html>" });
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let connection = provider::connect(
        &env_config("prod", &format!("http://{addr}")),
        Some(&fields("production", SDK_KEY_PROD, None)),
        Access::ReadOnly,
        &network(),
    )
    .expect("connect");
    let err = connection.source.list_flags().await.expect_err("html");
    assert_eq!(err.kind, ErrorKind::Api);
    assert!(err.message.contains("malformed JSON"), "{}", err.message);
    let err = connection.source.served("x").await.expect_err("html");
    assert_eq!(err.kind, ErrorKind::Api);
}

#[tokio::test]
async fn setup_errors_name_the_field_and_where_it_should_be() {
    let env = env_config("prod", "http://127.0.0.1:9");
    let err = connect_err(&env, None);
    assert_eq!(err.kind, ErrorKind::Auth);
    assert!(
        err.message.contains("kv/feature-flags/launchdarkly/prod"),
        "{}",
        err.message
    );

    let mut partial = SecretFields::new("vault kv/feature-flags/launchdarkly/prod");
    partial.insert("api_token", Secret::new(READER_TOKEN));
    let err = connect_err(&env, Some(&partial));
    assert_eq!(
        err.message,
        "prod: vault kv/feature-flags/launchdarkly/prod: field `sdk_key` is missing or empty"
    );

    let mut env = env_config("prod", "ftp://flags.example");
    let err = connect_err(&env, Some(&fields("production", SDK_KEY_PROD, None)));
    assert!(
        err.message
            .contains("`api_url` from options is not an http(s) base URL"),
        "{}",
        err.message
    );
    env.options.insert(
        "api_url".into(),
        "https://user:pw@app.launchdarkly.com".into(),
    );
    let err = connect_err(&env, Some(&fields("production", SDK_KEY_PROD, None)));
    assert!(!err.message.contains("pw"), "{}", err.message);

    // Read-only by credentials: no writer token in the secret.
    let fake = FakeLd::start().await;
    let connection = connect(&fake, false);
    assert!(connection.writer.is_none());
    assert_eq!(
        connection.read_only_reason.as_deref(),
        Some(
            "no admin credential (`writer_token`) in vault kv/feature-flags/launchdarkly/prod: read-only"
        )
    );
    // Read-only by choice, even with a writer token.
    let connection = provider::connect(
        &env_config("prod", &fake.url),
        Some(&fields("production", SDK_KEY_PROD, Some(WRITER_TOKEN))),
        Access::ReadOnly,
        &network(),
    )
    .expect("connect");
    assert!(connection.writer.is_none());

    let required = provider::credential_fields(ProviderKind::LaunchDarkly);
    assert_eq!(
        required.required,
        &["api_token", "project_key", "environment_key", "sdk_key"]
    );
    assert_eq!(required.write, &["writer_token"]);
}

#[test]
fn config_accepts_launchdarkly_environments_with_options() {
    let text = r#"
[[environment]]
name = "prod"
provider = "launchdarkly"
options = { api_url = "https://app.eu.launchdarkly.com" }
"#;
    let config = config::parse(text, std::path::Path::new("/tmp/config.toml")).expect("parse");
    let env = &config.environments[0];
    assert_eq!(env.provider, ProviderKind::LaunchDarkly);
    assert_eq!(env.provider.name(), "launchdarkly");
    assert!(env.provider.uses_vault());
    assert_eq!(env.vault_location(), "kv/feature-flags/launchdarkly/prod");
    assert_eq!(
        env.option("api_url"),
        Some("https://app.eu.launchdarkly.com")
    );
}

/// A credential source standing in for Vault.
struct FakeVault {
    fields: SecretFields,
    write_denied: Option<String>,
}

#[async_trait]
impl CredentialSource for FakeVault {
    async fn credentials(&self, _env: &EnvironmentConfig) -> Result<Credentials, ConnectError> {
        Ok(Credentials {
            fields: self.fields.clone(),
            write_denied: self.write_denied.clone(),
        })
    }
}

fn session_config(url: &str) -> killswitch::config::Config {
    let text = format!(
        "[[environment]]\nname = \"prod\"\nprovider = \"launchdarkly\"\noptions = {{ api_url = \"{url}\" }}\n"
    );
    config::parse(&text, std::path::Path::new("/tmp/config.toml")).expect("parse")
}

#[tokio::test]
async fn a_session_loads_and_kills_through_the_same_path_as_the_tui() {
    let fake = FakeLd::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let session = Session::new(
        session_config(&fake.url),
        Access::ReadWrite,
        Arc::new(FakeVault {
            fields: fields("production", SDK_KEY_PROD, Some(WRITER_TOKEN)),
            write_denied: None,
        }),
        Arc::new(audit_log(&dir)),
        Arc::new(SystemClock),
    );
    let snapshot = session.load("prod").await.expect("load");
    let flag = snapshot.flag("kill_switch_payments").expect("flag");
    assert_eq!(cell_text(flag.meta.kind, &flag.state), "SERVING");
    let connection = session.connection("prod").await.expect("connection");
    let request = FlipRequest {
        env: "prod".into(),
        flag: "kill_switch_payments".into(),
        kind: flag.meta.kind,
        change: killswitch::flip::Change::Switch { enabled: false },
        seen: flag.state.clone(),
        note: NOTE.into(),
        operator: session.operator().await,
    };
    let outcome = flip::execute(
        &request,
        &connection,
        &session.audit,
        session.clock.as_ref(),
        Duration::from_secs(2),
    )
    .await
    .expect("kill");
    assert!(
        matches!(outcome, FlipOutcome::Applied { .. }),
        "{outcome:?}"
    );
    let snapshot = session.load("prod").await.expect("reload");
    let flag = snapshot.flag("kill_switch_payments").expect("flag");
    assert_eq!(cell_text(flag.meta.kind, &flag.state), "KILLED");

    // A viewer whose Vault policy denies the admin secret gets a read-only connection.
    let viewer = Session::new(
        session_config(&fake.url),
        Access::ReadWrite,
        Arc::new(FakeVault {
            fields: fields("production", SDK_KEY_PROD, None),
            write_denied: Some(
                "permission denied on kv/feature-flags/launchdarkly/prod/admin".into(),
            ),
        }),
        Arc::new(audit_log(&dir)),
        Arc::new(SystemClock),
    );
    let connection = viewer.connection("prod").await.expect("connection");
    assert!(connection.writer.is_none());
    assert!(
        connection
            .read_only_reason
            .as_deref()
            .is_some_and(|r| r.contains("permission denied")),
        "{connection:?}"
    );
}

#[tokio::test]
async fn secrets_never_reach_messages_logs_or_debug_output() {
    let fake = FakeLd::start().await;
    let secrets = [READER_TOKEN, WRITER_TOKEN, SDK_KEY_PROD, SDK_KEY_REGULATED];
    let mut seen_text = Vec::<String>::new();

    let connection = connect(&fake, true);
    seen_text.push(format!("{connection:?}"));
    seen_text.push(format!(
        "{:?}",
        fields("production", SDK_KEY_PROD, Some(WRITER_TOKEN))
    ));
    let flags = connection.source.list_flags().await.expect("list");
    seen_text.push(format!("{flags:?}"));
    seen_text.push(format!("{:?}", connection.source.info()));

    // Errors from every kind of call, with the secrets in play.
    let dir = tempfile::tempdir().expect("tempdir");
    let log = audit_log(&dir);
    let request = kill_request(&connection, "kill_switch_payments", false).await;
    fake.with(|s| s.conflict_next_patch = true);
    let err = flip::execute(
        &request,
        &connection,
        &log,
        &SystemClock,
        Duration::from_secs(1),
    )
    .await
    .expect_err("409");
    seen_text.push(err.to_string());
    seen_text.push(format!("{err:?}"));
    let outcome = flip::execute(
        &request,
        &connection,
        &log,
        &SystemClock,
        Duration::from_secs(2),
    )
    .await
    .expect("kill");
    seen_text.push(format!("{outcome:?}"));
    seen_text.push(format!(
        "{:?}",
        connection.source.history("kill_switch_payments").await
    ));
    fake.with(|s| s.rate_limits.push_back(RateLimit::RetryAfter(60)));
    seen_text.push(format!(
        "{:?}",
        connection.source.read_flag("dark_mode").await
    ));
    seen_text.push(format!(
        "{:?}",
        connection.source.read_flag("missing").await
    ));
    fake.with(|s| s.tokens.clear());
    seen_text.push(format!("{:?}", connection.source.metadata().await));
    seen_text.push(format!("{:?}", connection.source.served("missing").await));
    let closed = format!("http://127.0.0.1:{}", support::free_port());
    let unreachable = provider::connect(
        &env_config("prod", &closed),
        Some(&fields("production", SDK_KEY_PROD, Some(WRITER_TOKEN))),
        Access::ReadWrite,
        &network(),
    )
    .expect("connect");
    seen_text.push(format!("{:?}", unreachable.source.list_flags().await));
    seen_text.push(format!("{unreachable:?}"));
    seen_text.push(std::fs::read_to_string(log.path()).expect("audit log text"));
    // What LaunchDarkly itself stored (the comment) must not carry a credential either.
    seen_text.push(fake.with(|s| serde_json::to_string(&s.audit).unwrap_or_default()));

    // The secrets were really used (so the grep below means something)...
    let requests = fake.requests();
    assert!(
        requests
            .iter()
            .any(|r| r.authorization.as_deref() == Some(READER_TOKEN))
    );
    assert!(
        requests
            .iter()
            .any(|r| r.authorization.as_deref() == Some(WRITER_TOKEN))
    );
    assert!(
        requests
            .iter()
            .any(|r| r.authorization.as_deref() == Some(SDK_KEY_PROD))
    );
    // ...and never travelled in a URL.
    for request in &requests {
        for secret in secrets {
            assert!(!request.query.contains(secret) && !request.path.contains(secret));
        }
    }
    let all = seen_text.join("\n");
    for secret in secrets {
        assert!(!all.contains(secret), "secret leaked:\n{all}");
    }
    assert!(
        all.contains("answered 401"),
        "the grep covered an auth error"
    );
}

/// The fake refuses what LaunchDarkly refuses: these pin its faithfulness, so the provider
/// tests above cannot pass against a lenient fake.
#[tokio::test]
async fn the_fake_refuses_what_launchdarkly_refuses() {
    let fake = FakeLd::start().await;
    let http = reqwest::Client::new();
    let flag_url = format!("{}/api/v2/flags/{PROJECT}/kill_switch_payments", fake.url);
    let body = serde_json::json!({
        "environmentKey": "production",
        "instructions": [{"kind": "turnFlagOff"}]
    });
    let send = |auth: &str, content_type: &str, body: serde_json::Value| {
        http.patch(&flag_url)
            .header("Authorization", auth)
            .header("Content-Type", content_type)
            .body(body.to_string())
            .send()
    };
    let status_and_code = |response: reqwest::Response| async move {
        let status = response.status().as_u16();
        let json: serde_json::Value = response.json().await.unwrap_or_default();
        (
            status,
            json["code"].as_str().unwrap_or_default().to_string(),
        )
    };
    let semantic = "application/json; domain-model=launchdarkly.semanticpatch";

    let bearer = format!("Bearer {WRITER_TOKEN}");
    let r = send(&bearer, semantic, body.clone()).await.expect("send");
    assert_eq!(status_and_code(r).await, (401, "unauthorized".into()));
    let r = send(SDK_KEY_PROD, semantic, body.clone())
        .await
        .expect("send");
    assert_eq!(
        status_and_code(r).await.0,
        401,
        "SDK keys cannot use the REST API"
    );
    let r = send(WRITER_TOKEN, "application/json", body.clone())
        .await
        .expect("send");
    assert_eq!(status_and_code(r).await, (400, "invalid_request".into()));
    let r = send(
        WRITER_TOKEN,
        semantic,
        serde_json::json!({"instructions": [{"kind": "turnFlagOff"}]}),
    )
    .await
    .expect("send");
    assert_eq!(status_and_code(r).await, (400, "invalid_request".into()));
    let r = send(
        WRITER_TOKEN,
        semantic,
        serde_json::json!({"environmentKey": "production", "instructions": [{"kind": "killIt"}]}),
    )
    .await
    .expect("send");
    assert_eq!(status_and_code(r).await, (400, "invalid_request".into()));
    let r = send(READER_TOKEN, semantic, body.clone())
        .await
        .expect("send");
    assert_eq!(status_and_code(r).await, (403, "forbidden".into()));
    assert_eq!(
        fake.env_config("kill_switch_payments", "production")["on"],
        true
    );
    assert!(
        fake.with(|s| s.audit.is_empty()),
        "nothing refused was applied"
    );

    // The SDK endpoint takes the SDK key, not an access token.
    let r = http
        .get(format!("{}/sdk/latest-all", fake.url))
        .header("Authorization", READER_TOKEN)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 401);
    let r = http
        .get(format!("{}/sdk/latest-all", fake.url))
        .header("Authorization", SDK_KEY_PROD)
        .send()
        .await
        .expect("send");
    let all: serde_json::Value = r.json().await.expect("json");
    assert_eq!(all["flags"]["kill_switch_payments"]["on"], true);
    assert_eq!(all["flags"]["kill_switch_payments"]["variations"][0], true);

    // A list without env= has no environments (API version 20240415); summaries omit rules.
    let r = http
        .get(format!(
            "{}/api/v2/flags/{PROJECT}?env=production",
            fake.url
        ))
        .header("Authorization", READER_TOKEN)
        .send()
        .await
        .expect("send");
    let page: serde_json::Value = r.json().await.expect("json");
    assert_eq!(page["totalCount"], 6);
    assert!(
        page["items"][1]["environments"]["production"]
            .get("rules")
            .is_none()
    );
    let r = http
        .get(format!("{}/api/v2/flags/{PROJECT}", fake.url))
        .header("Authorization", READER_TOKEN)
        .send()
        .await
        .expect("send");
    let page: serde_json::Value = r.json().await.expect("json");
    assert!(page["items"][0].get("environments").is_none());
}

#[tokio::test]
async fn a_change_the_sdk_never_shows_is_applied_but_not_confirmed() {
    let fake = FakeLd::start().await;
    fake.with(|s| s.sdk_lag_reads = 10_000);
    let connection = connect(&fake, true);
    let dir = tempfile::tempdir().expect("tempdir");
    let log = audit_log(&dir);
    let request = kill_request(&connection, "kill_switch_payments", false).await;
    let started = Instant::now();
    let outcome = flip::execute(
        &request,
        &connection,
        &log,
        &SystemClock,
        Duration::from_millis(600),
    )
    .await
    .expect("applied");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "verification is bounded"
    );
    let FlipOutcome::Applied { verification, .. } = outcome else {
        panic!("expected applied, got {outcome:?}");
    };
    let Verification::NotConfirmed { reason, .. } = verification else {
        panic!("expected not confirmed, got {verification:?}");
    };
    assert_eq!(reason, "services still see it ON");
    let records = log.records().expect("records");
    assert_eq!(
        records.last().and_then(|r| r.error.clone()).as_deref(),
        Some("applied, not confirmed: services still see it ON")
    );
}

#[tokio::test]
async fn a_silent_server_times_out_within_the_request_timeout() {
    // Accepts connections, never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let network = NetworkConfig {
        connect_timeout: Duration::from_millis(300),
        request_timeout: Duration::from_millis(400),
        verify_timeout: Duration::from_secs(1),
    };
    let connection = provider::connect(
        &env_config("prod", &format!("http://{addr}")),
        Some(&fields("production", SDK_KEY_PROD, Some(WRITER_TOKEN))),
        Access::ReadWrite,
        &network,
    )
    .expect("connect");
    let started = Instant::now();
    let err = connection.source.list_flags().await.expect_err("timeout");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(err.kind, ErrorKind::Unreachable);
    assert!(err.message.contains("timed out"), "{}", err.message);
    let err = connection.source.served("x").await.expect_err("timeout");
    assert!(err.message.contains("timed out"), "{}", err.message);
}

#[tokio::test]
async fn a_flag_deleted_before_the_write_is_not_found() {
    let fake = FakeLd::start().await;
    let connection = connect(&fake, true);
    let flag = connection
        .source
        .read_flag("kill_switch_payments")
        .await
        .expect("read");
    fake.with(|s| s.flags.retain(|f| f["key"] != "kill_switch_payments"));
    let note = killswitch::provider::ChangeNote {
        audit_id: "20261201-0001".into(),
        operator: "alice@example.com".into(),
        note: NOTE.into(),
    };
    let writer = connection.writer.as_ref().expect("writer");
    let err = writer
        .set_enabled("kill_switch_payments", false, &note, &flag.state)
        .await
        .expect_err("404");
    assert_eq!(err.kind, ErrorKind::NotFound);
    assert!(
        err.message.starts_with(
            "prod: turnFlagOff `kill_switch_payments` in LaunchDarkly project `checkout-svc` environment `production`"
        ),
        "{}",
        err.message
    );
    assert!(
        err.message.contains("Unknown feature flag key"),
        "{}",
        err.message
    );
    let err = connection
        .source
        .served("kill_switch_payments")
        .await
        .expect_err("404");
    assert_eq!(err.kind, ErrorKind::NotFound);
}

#[tokio::test]
async fn a_server_that_keeps_rate_limiting_cannot_make_a_read_hang() {
    let fake = FakeLd::start().await;
    // Resets already in the past, again and again.
    fake.with(|s| {
        for _ in 0..1000 {
            s.rate_limits.push_back(RateLimit::ResetIn(Duration::ZERO));
        }
    });
    let network = NetworkConfig {
        connect_timeout: Duration::from_millis(300),
        request_timeout: Duration::from_millis(500),
        verify_timeout: Duration::from_secs(1),
    };
    let connection = provider::connect(
        &env_config("prod", &fake.url),
        Some(&fields("production", SDK_KEY_PROD, None)),
        Access::ReadOnly,
        &network,
    )
    .expect("connect");
    let started = Instant::now();
    let err = connection.source.list_flags().await.expect_err("429");
    let took = started.elapsed();
    assert_eq!(err.kind, ErrorKind::RateLimited);
    assert!(
        took < Duration::from_millis(900),
        "bounded by the request timeout: {took:?}"
    );
    let attempts = fake.requests().len();
    assert!(
        (2..=11).contains(&attempts),
        "backed off between attempts: {attempts}"
    );
}

#[tokio::test]
async fn launchdarkly_flags_appear_beside_other_environments_on_the_dashboard() {
    use killswitch::model::EnvSnapshot;
    use killswitch::tui::action::Action;
    use killswitch::tui::app::{Setup, State, update};
    use killswitch::tui::keymap::Keymap;
    use support::dashboard::{now, render, snapshot};

    let fake = FakeLd::start().await;
    let connection = connect(&fake, true);
    let flags = connection.source.list_flags().await.expect("list");
    let mut state = State::new(Setup {
        envs: vec![("staging".to_string(), false), ("prod".to_string(), true)],
        keymap: Keymap::builtin("default").expect("keymap"),
        read_only: false,
        local_workspace: false,
        operator: "alice@bastion".into(),
        refresh_interval: Duration::from_secs(30),
        focus: None,
        now: now(),
        size: (150, 30),
    });
    update(
        &mut state,
        Action::EnvLoaded {
            env: "staging".into(),
            result: Ok(snapshot("staging")),
            read_only_reason: None,
        },
    );
    update(
        &mut state,
        Action::EnvLoaded {
            env: "prod".into(),
            result: Ok(EnvSnapshot {
                env: "prod".into(),
                flags,
                fetched_at: now(),
            }),
            read_only_reason: None,
        },
    );
    let screen = render(&state);
    let line = |key: &str| {
        screen
            .lines()
            .find(|line| line.contains(key))
            .unwrap_or_else(|| panic!("{key} on screen:\n{screen}"))
            .to_string()
    };
    assert!(line("checkout_redesign").contains("ON 10%"), "{screen}");
    assert!(line("search_ranking").contains("ON 33/33/34"), "{screen}");
    assert!(line("kill_switch_payments").contains("SERVING"), "{screen}");
    assert!(line("dark_mode").contains("OFF"), "{screen}");
}

/// The spec says two things about when a flag list carries `environments`: the endpoint's text
/// says `env=`, the `FeatureFlag` schema and the 20240415 changelog say the `filterEnv` filter.
/// killswitch sends both, so the dashboard reads either way.
#[tokio::test]
async fn environments_come_back_under_either_reading_of_the_spec() {
    let fake = FakeLd::start().await;
    let connection = connect(&fake, false);
    for need_filter_env in [false, true] {
        fake.with(|s| s.environments_need_filter_env = need_filter_env);
        let flags = connection
            .source
            .list_flags()
            .await
            .unwrap_or_else(|err| panic!("filterEnv reading {need_filter_env}: {err}"));
        let payments = flags
            .iter()
            .find(|f| f.meta.key == "kill_switch_payments")
            .expect("listed");
        assert_eq!(cell_text(payments.meta.kind, &payments.state), "SERVING");
    }
}

/// A change that would make a pending scheduled change or approval request fail is refused
/// with a 400 (the API reference's "Conflicts"): the message says so in words, nothing changes.
#[tokio::test]
async fn a_patch_refused_for_a_pending_scheduled_change_says_so() {
    let fake = FakeLd::start().await;
    let connection = connect(&fake, true);
    let dir = tempfile::tempdir().expect("tempdir");
    let log = audit_log(&dir);
    let request = kill_request(&connection, "kill_switch_payments", false).await;
    fake.with(|s| s.pending_conflict_next_patch = true);
    let err = flip::execute(
        &request,
        &connection,
        &log,
        &SystemClock,
        Duration::from_secs(1),
    )
    .await
    .expect_err("400");
    let text = err.to_string();
    assert!(
        text.contains("conflicts with a pending scheduled change or approval request")
            && text.contains("ignoreConflicts")
            && text.contains("Nothing was changed"),
        "{text}"
    );
    assert_eq!(
        fake.env_config("kill_switch_payments", "production")["on"],
        serde_json::json!(true)
    );
}

/// LaunchDarkly's generated Python client (PyPI `launchdarkly-api`, installed by
/// tests/servers/install-launchdarkly-api.sh) carries its OpenAPI document's operations and
/// schemas; tests/support/ld_spec_check.py checks requests against it.
fn spec_checker() -> Option<(std::path::PathBuf, std::path::PathBuf)> {
    let python = support::servers_dir().join("launchdarkly-api/venv/bin/python");
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/ld_spec_check.py");
    support::server_available(
        "LaunchDarkly's generated API client (the OpenAPI spec's schemas)",
        python.is_file(),
        "bash tests/servers/install-launchdarkly-api.sh",
    )
    .then_some((python, script))
}

/// Runs the checker over request lines; returns its exit success and its per-request results.
fn check_against_spec(lines: &[serde_json::Value]) -> (bool, Vec<serde_json::Value>) {
    let Some((python, script)) = spec_checker() else {
        return (true, Vec::new());
    };
    let input: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let mut child = std::process::Command::new(python)
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run the spec checker");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(input.as_bytes()).expect("write requests");
    }
    let output = child.wait_with_output().expect("spec checker output");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        !stdout.trim().is_empty(),
        "the spec checker said nothing: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let results = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("checker line"))
        .filter(|r: &serde_json::Value| r.get("request").is_some())
        .collect();
    (output.status.success(), results)
}

fn request_line(seen: &launchdarkly_fake::Seen) -> serde_json::Value {
    serde_json::json!({
        "method": seen.method,
        "path": seen.path,
        "query": seen.query,
        "content_type": seen.content_type,
        "body": seen.body,
    })
}

/// Every request body and query killswitch sends to LaunchDarkly, across reads, verification,
/// history, kill, restore, a refused write and an approval request, validates against the
/// schemas of LaunchDarkly's published OpenAPI spec.
#[tokio::test]
async fn every_request_killswitch_sends_validates_against_the_openapi_spec() {
    if spec_checker().is_none() {
        return;
    }
    let fake = FakeLd::start().await;
    let connection = connect(&fake, true);
    let dir = tempfile::tempdir().expect("tempdir");
    let log = audit_log(&dir);
    connection.source.list_flags().await.expect("list");
    connection.source.served("dark_mode").await.expect("served");
    let _ = connection.source.history("kill_switch_payments").await;
    for enabled in [false, true] {
        let request = kill_request(&connection, "kill_switch_payments", enabled).await;
        let outcome = flip::execute(
            &request,
            &connection,
            &log,
            &SystemClock,
            Duration::from_secs(2),
        )
        .await
        .expect("flip");
        assert!(
            matches!(outcome, FlipOutcome::Applied { .. }),
            "{outcome:?}"
        );
    }
    let request = kill_request(&connection, "kill_switch_payments", false).await;
    fake.with(|s| s.pending_conflict_next_patch = true);
    let _ = flip::execute(
        &request,
        &connection,
        &log,
        &SystemClock,
        Duration::from_secs(1),
    )
    .await;
    let regulated = provider::connect(
        &env_config("prod", &fake.url),
        Some(&fields("regulated", SDK_KEY_REGULATED, Some(WRITER_TOKEN))),
        Access::ReadWrite,
        &network(),
    )
    .expect("connect");
    let request = kill_request(&regulated, "kill_switch_payments", false).await;
    let outcome = flip::execute(
        &request,
        &regulated,
        &log,
        &SystemClock,
        Duration::from_secs(2),
    )
    .await
    .expect("approval");
    assert!(
        matches!(outcome, FlipOutcome::PendingApproval { .. }),
        "{outcome:?}"
    );

    let mut lines: Vec<serde_json::Value> = fake.requests().iter().map(request_line).collect();
    let sent = lines.len();
    // Controls that show the checker can fail (one run: importing the client takes seconds):
    // what killswitch used to send, and a semantic patch with a stray field.
    lines.push(
        serde_json::json!({"method": "GET", "path": format!("/api/v2/flags/{PROJECT}"),
        "query": "env=production&summary=0&limit=100&offset=0", "content_type": null, "body": ""}),
    );
    lines.push(serde_json::json!({"method": "PATCH",
        "path": format!("/api/v2/flags/{PROJECT}/kill_switch_payments"), "query": "",
        "content_type": killswitch::provider::launchdarkly::SEMANTIC_PATCH,
        "body": r#"{"environmentKey":"production","note":"x","instructions":[{"kind":"turnFlagOff"}]}"#}));
    let (ok, results) = check_against_spec(&lines);
    assert_eq!(results.len(), lines.len());
    assert!(!ok, "the controls fail");
    let has_problems =
        |r: &serde_json::Value| r["problems"].as_array().is_some_and(|p| !p.is_empty());
    let problems: Vec<&serde_json::Value> =
        results[..sent].iter().filter(|r| has_problems(r)).collect();
    assert!(problems.is_empty(), "{problems:#?}");
    assert!(
        results[sent..].iter().all(has_problems),
        "{:#?}",
        &results[sent..]
    );
    let operations: std::collections::BTreeSet<&str> = results[..sent]
        .iter()
        .filter_map(|r| r["operation"].as_str())
        .collect();
    for expected in [
        "get_feature_flags",
        "get_feature_flag",
        "patch_feature_flag",
        "post_approval_request_for_flag",
        "get_audit_log_entries",
        "server-side SDK endpoint (not in the REST API spec)",
    ] {
        assert!(
            operations.contains(expected),
            "{expected} in {operations:?}"
        );
    }
}
