//! The Flagsmith provider against a fake Flagsmith API on 127.0.0.1 built from recorded real
//! responses (`tests/fixtures/flagsmith/`). Everything goes through `provider::connect`, the
//! `FlagSource`/`FlagWriter` traits, `flip::execute` and `Session`: the paths the TUI and the
//! subcommands take.

#[path = "support/flagsmith_fake.rs"]
mod flagsmith_fake;
mod support;

use support::vendor;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use flagsmith_fake::{ADMIN_API_KEY, ADMIN_TOKEN, FakeFlagsmith};
use killswitch::audit::{self, AuditLog, Phase};
use killswitch::clock::SystemClock;
use killswitch::config::{Config, EnvironmentConfig, NetworkConfig, ProviderKind};
use killswitch::flip::{self, FlipError, FlipOutcome};
use killswitch::model::{Flag, FlagKind, cell_text};
use killswitch::provider::{
    self, Access, ChangeNote, Connection, ErrorKind, ProviderError, WriteResult,
};
use killswitch::secret::{Secret, SecretFields};
use killswitch::session::{ConnectError, CredentialSource, Credentials, Session};
use serde_json::{Value, json};

#[derive(Clone, Copy, PartialEq)]
enum Admin {
    None,
    ApiKey,
    Token,
}

/// Timeouts against the local fake: 500 ms connect, 1.5 s request, 3 s verification.
fn network() -> NetworkConfig {
    vendor::network(500, 1500, 3000)
}

fn env_config(name: &str) -> EnvironmentConfig {
    vendor::env_config(ProviderKind::Flagsmith, name, &[])
}

fn fields(url: &str, server_key: &str, admin: Admin) -> SecretFields {
    let mut fields = SecretFields::new("vault kv/feature-flags/flagsmith/test");
    fields.insert("api_url", Secret::new(format!("{url}/api/v1/")));
    fields.insert("environment_key", Secret::new(server_key));
    match admin {
        Admin::None => {}
        Admin::ApiKey => fields.insert("admin_api_key", Secret::new(ADMIN_API_KEY)),
        Admin::Token => fields.insert("admin_token", Secret::new(ADMIN_TOKEN)),
    }
    fields
}

fn connect(fake: &FakeFlagsmith, env: &str, admin: Admin) -> Connection {
    let server_key = fake.env(env).server_key;
    vendor::connect(
        &env_config(env),
        &fields(&fake.url, &server_key, admin),
        Access::ReadWrite,
        &network(),
    )
}

async fn cells(connection: &Connection) -> BTreeMap<String, String> {
    connection
        .source
        .list_flags()
        .await
        .expect("list flags")
        .iter()
        .map(|flag| {
            (
                flag.meta.key.clone(),
                cell_text(flag.meta.kind, &flag.state),
            )
        })
        .collect()
}

async fn read(connection: &Connection, key: &str) -> Flag {
    connection.source.read_flag(key).await.expect("read flag")
}

fn note(text: &str) -> ChangeNote {
    ChangeNote {
        audit_id: "20261201T000000.000Z-1-0".into(),
        operator: "alice@bastion".into(),
        note: text.into(),
    }
}

/// Every secret the fake knows, for the leak checks.
fn secrets(fake: &FakeFlagsmith) -> Vec<String> {
    let mut all = vec![ADMIN_API_KEY.to_string(), ADMIN_TOKEN.to_string()];
    for env in ["dev", "staging", "prod"] {
        all.push(fake.env(env).server_key);
    }
    all
}

fn assert_no_secret(fake: &FakeFlagsmith, what: &str, text: &str) {
    for secret in secrets(fake) {
        assert!(!text.contains(&secret), "{what} leaks a secret: {text}");
        // Not even the distinctive tail of one.
        assert!(!text.contains("s3cr3t"), "{what} leaks a secret: {text}");
    }
}

// ---- the fake is faithful to the recordings ---------------------------------------------------

#[tokio::test]
async fn fake_answers_as_recorded() {
    let fake = FakeFlagsmith::open_source().await;
    let prod = fake.env("prod");
    let http = reqwest::Client::new();
    let get = |path: &str, header: (&str, String)| {
        http.get(format!("{}{path}", fake.url))
            .header(header.0, header.1)
            .send()
    };

    let document = get(
        "/api/v1/environment-document/",
        ("X-Environment-Key", prod.server_key.clone()),
    )
    .await
    .expect("document");
    assert_eq!(document.status(), 200);
    let document: Value = document.json().await.expect("json");
    assert_eq!(
        document,
        flagsmith_fake::recorded("prod.environment-document.json")
    );

    let flags: Value = get(
        "/api/v1/flags/",
        ("X-Environment-Key", prod.server_key.clone()),
    )
    .await
    .expect("flags")
    .json()
    .await
    .expect("json");
    assert_eq!(flags, flagsmith_fake::recorded("prod.sdk-flags.json"));

    // The client key reads /flags/ but not the environment document (recorded 403).
    let client = get(
        "/api/v1/environment-document/",
        ("X-Environment-Key", prod.client_key.clone()),
    )
    .await
    .expect("document");
    assert_eq!(client.status(), 403);
    assert_eq!(
        client.json::<Value>().await.expect("json"),
        flagsmith_fake::recorded("error.403.client-key-on-environment-document.json")
    );
    let client_flags = get(
        "/api/v1/flags/",
        ("X-Environment-Key", prod.client_key.clone()),
    )
    .await
    .expect("flags");
    assert_eq!(client_flags.status(), 200);

    // The server key on an admin endpoint: 401, no credentials.
    let admin_path = "/api/v1/projects/1/features/?environment=3";
    let server_on_admin = get(admin_path, ("X-Environment-Key", prod.server_key.clone()))
        .await
        .expect("admin");
    assert_eq!(server_on_admin.status(), 401);
    // A wrong scheme (Bearer) and a bad token: the recorded 401.
    for value in [
        format!("Bearer {ADMIN_TOKEN}"),
        "Token nope".to_string(),
        format!("Token {ADMIN_API_KEY}"),
    ] {
        let bad = get(admin_path, ("Authorization", value))
            .await
            .expect("admin");
        assert_eq!(bad.status(), 401);
        assert_eq!(
            bad.json::<Value>().await.expect("json"),
            flagsmith_fake::recorded("error.401.bad-token.json")
        );
    }
    let features: Value = get(
        admin_path,
        ("Authorization", format!("Token {ADMIN_TOKEN}")),
    )
    .await
    .expect("admin")
    .json()
    .await
    .expect("json");
    assert_eq!(
        features,
        flagsmith_fake::recorded("prod.project-features.json")
    );

    // An unknown feature: the recorded 404.
    let unknown = get(
        "/api/v1/environments/2/features/999/versions/",
        ("Authorization", format!("Api-Key {ADMIN_API_KEY}")),
    )
    .await
    .expect("versions");
    assert_eq!(unknown.status(), 404);
    assert_eq!(
        unknown.json::<Value>().await.expect("json"),
        flagsmith_fake::recorded("error.404.unknown-feature.json")
    );

    // The classic PATCH answers the recorded shape and refuses a non-boolean.
    let patch = |body: Value| {
        http.patch(format!(
            "{}/api/v1/environments/{}/featurestates/3/",
            fake.url, prod.client_key
        ))
        .header("Authorization", format!("Token {ADMIN_TOKEN}"))
        .json(&body)
        .send()
    };
    let bad = patch(json!({"enabled": "maybe"})).await.expect("patch");
    assert_eq!(bad.status(), 400);
    assert!(fake.enabled("prod", "kill_switch_checkout"));
    let ok: Value = patch(json!({"enabled": false}))
        .await
        .expect("patch")
        .json()
        .await
        .expect("json");
    assert_eq!(
        ok,
        flagsmith_fake::recorded("prod.toggle-patch.response.json")
    );
    assert!(!fake.enabled("prod", "kill_switch_checkout"));

    // The open-source build has no change-request endpoint.
    let cr = http
        .post(format!(
            "{}/api/v1/environments/{}/create-change-request/",
            fake.url, prod.client_key
        ))
        .header("Authorization", format!("Token {ADMIN_TOKEN}"))
        .json(&json!({"title": "t"}))
        .send()
        .await
        .expect("cr");
    assert_eq!(cr.status(), 404);
}

// ---- reading with the server-side key alone ---------------------------------------------------

#[tokio::test]
async fn six_sample_flags_per_environment_with_the_server_side_key_alone() {
    let fake = FakeFlagsmith::open_source().await;
    let expected = [
        (
            "dev",
            [
                ("kill_switch_checkout", "SERVING"),
                ("kill_switch_recommendations", "SERVING"),
                ("catalog_v2_search_engine", "opensearch"),
                ("recommendations_ab_test_model_v3", "ON 33/33/34"),
                ("checkout_stripe_payment_intents_v2024_11", "ON"),
                ("catalog_per_tenant_pagination_size", "30"),
            ],
        ),
        (
            "staging",
            [
                ("kill_switch_checkout", "SERVING"),
                ("kill_switch_recommendations", "KILLED"),
                ("catalog_v2_search_engine", "opensearch"),
                ("recommendations_ab_test_model_v3", "ON 25/25/25/25"),
                ("checkout_stripe_payment_intents_v2024_11", "ON 10% (1 seg)"),
                ("catalog_per_tenant_pagination_size", "30"),
            ],
        ),
        (
            "prod",
            [
                ("kill_switch_checkout", "SERVING"),
                ("kill_switch_recommendations", "SERVING"),
                ("catalog_v2_search_engine", "opensearch"),
                ("recommendations_ab_test_model_v3", "ON 33/33/34"),
                ("checkout_stripe_payment_intents_v2024_11", "ON 10% (1 seg)"),
                ("catalog_per_tenant_pagination_size", "30 +1 seg +1 id"),
            ],
        ),
    ];
    for (env, flags) in expected {
        let connection = connect(&fake, env, Admin::None);
        assert!(
            connection.writer.is_none(),
            "{env}: no admin credential, no writer"
        );
        let cells = cells(&connection).await;
        let expected: BTreeMap<String, String> = flags
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(cells, expected, "{env}");
    }

    let prod = connect(&fake, "prod", Admin::None);
    let stripe = read(&prod, "checkout_stripe_payment_intents_v2024_11").await;
    let overrides: Vec<String> = stripe.state.overrides.iter().map(|o| o.summary()).collect();
    assert_eq!(overrides, vec!["10% (segment stripe_pi_rollout_10pct)"]);
    let page = read(&prod, "catalog_per_tenant_pagination_size").await;
    let overrides: Vec<String> = page.state.overrides.iter().map(|o| o.summary()).collect();
    assert_eq!(
        overrides,
        vec!["200 (segment tenant_bigcorp)", "50 (identity tenant-acme)"]
    );
    let ab = read(&prod, "recommendations_ab_test_model_v3").await;
    assert_eq!(ab.meta.kind, FlagKind::Experiment);
    assert_eq!(ab.state.value, Some(json!("control")));
    let staging = connect(&fake, "staging", Admin::None);
    let ab = read(&staging, "recommendations_ab_test_model_v3").await;
    assert_eq!(
        ab.state.rollout.summary(),
        "25/25/25/25",
        "25% left unallocated is served the control value"
    );

    // Without an admin credential nothing but the SDK endpoints was called.
    let requests = fake.requests();
    assert!(!requests.is_empty());
    assert!(
        requests.iter().all(|(_, path, auth)| auth == "environment"
            && (path == "/api/v1/environment-document/" || path == "/api/v1/flags/")),
        "{requests:?}"
    );
}

#[tokio::test]
async fn admin_credential_adds_owner_tags_and_description() {
    let fake = FakeFlagsmith::open_source().await;
    for admin in [Admin::Token, Admin::ApiKey] {
        let connection = connect(&fake, "prod", admin);
        // The states come from the environment document alone; the metadata beside them.
        let before = fake.admin_calls();
        let mut flags = connection.source.list_flags().await.expect("list");
        assert_eq!(fake.admin_calls(), before, "states need no Admin API call");
        assert_eq!(flags[0].meta.owner, None);
        let metadata = connection.source.metadata().await.expect("metadata");
        provider::merge_metadata(&mut flags, &metadata);
        let read = |key: &str| {
            flags
                .iter()
                .find(|flag| flag.meta.key == key)
                .cloned()
                .expect("flag")
        };
        let checkout = read("kill_switch_checkout");
        assert_eq!(checkout.meta.owner.as_deref(), Some("admin@example.com"));
        assert_eq!(checkout.meta.tags, vec!["kill_switch"]);
        assert_eq!(
            checkout.meta.description.as_deref(),
            Some("Kill switch for checkout")
        );
        // The recorded data holds no expected removal date.
        assert_eq!(checkout.meta.expected_removal, None);
        let search = read("catalog_v2_search_engine");
        assert_eq!(search.meta.tags, vec!["team-catalog"]);
        // The multivariate feature keeps the kind its state gave it (no tag says otherwise).
        assert_eq!(
            read("recommendations_ab_test_model_v3").meta.kind,
            FlagKind::Experiment
        );
    }
    let auths: Vec<String> = fake
        .requests()
        .into_iter()
        .map(|(_, _, auth)| auth)
        .collect();
    assert!(auths.contains(&"token".to_string()) && auths.contains(&"api-key".to_string()));
}

#[tokio::test]
async fn metadata_failure_does_not_break_reading() {
    let fake = FakeFlagsmith::open_source().await;
    fake.fail(
        "/api/v1/projects/1/features/",
        502,
        "<html>bad gateway</html>",
        1,
    );
    let connection = connect(&fake, "prod", Admin::Token);
    let checkout = read(&connection, "kill_switch_checkout").await;
    assert!(checkout.state.enabled);
    assert_eq!(checkout.meta.owner, None);
    let err = connection.source.metadata().await.expect_err("502");
    assert!(err.message.contains("502"), "{}", err.message);
    // The next read of the metadata tries again.
    assert_eq!(
        connection.source.metadata().await.expect("metadata").len(),
        6
    );
}

// ---- admin calls on the kill path (issue 15) --------------------------------------------------

/// Kills and restores `flag` in `env` the way the dashboard does (the session learned the
/// environment's settings beside the metadata) and returns the Admin API requests each made.
async fn admin_requests_per_flip(
    fake: &FakeFlagsmith,
    env: &str,
    flag: &str,
    learn_first: bool,
) -> Vec<Vec<(String, String)>> {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = AuditLog::open(&dir.path().join("audit.jsonl")).expect("audit log");
    let connection = connect(fake, env, Admin::ApiKey);
    if learn_first {
        connection.source.metadata().await.expect("metadata");
    }
    let mut made = Vec::new();
    for enabled in [false, true] {
        let current = read(&connection, flag).await;
        let before = fake.admin_requests().len();
        let outcome = flip::execute(
            &vendor::flip_request(env, &current, enabled, "INC-15 admin calls"),
            &connection,
            &log,
            &SystemClock,
            network().verify_timeout,
        )
        .await
        .expect("flip");
        assert!(
            matches!(outcome, FlipOutcome::Applied { .. }),
            "{outcome:?}"
        );
        assert_eq!(fake.enabled(env, flag), enabled);
        made.push(fake.admin_requests()[before..].to_vec());
    }
    made
}

#[tokio::test]
async fn a_classic_kill_makes_one_admin_call_the_patch() {
    let fake = FakeFlagsmith::open_source().await;
    for made in admin_requests_per_flip(&fake, "prod", "kill_switch_checkout", true).await {
        assert_eq!(made.len(), 1, "{made:?}");
        assert_eq!(made[0].0, "PATCH");
        assert!(made[0].1.ends_with("/featurestates/3/"), "{made:?}");
    }
    // A session that has not learned the settings yet (`kill --yes`) reads them beside the
    // re-read, once: the kill is the settings read and the PATCH, the restore the PATCH.
    let fresh = FakeFlagsmith::open_source().await;
    let made = admin_requests_per_flip(&fresh, "prod", "kill_switch_checkout", false).await;
    let methods: Vec<Vec<&str>> = made
        .iter()
        .map(|calls| calls.iter().map(|(m, _)| m.as_str()).collect())
        .collect();
    assert_eq!(
        methods,
        vec![vec!["GET", "PATCH"], vec!["PATCH"]],
        "{made:?}"
    );
    assert!(
        made[0][0].1.starts_with("/api/v1/environments/"),
        "{made:?}"
    );
}

#[tokio::test]
async fn a_versioned_kill_makes_one_admin_call_the_version() {
    let fake = FakeFlagsmith::open_source().await;
    for made in admin_requests_per_flip(&fake, "staging", "kill_switch_checkout", true).await {
        assert_eq!(made.len(), 1, "{made:?}");
        assert_eq!(made[0].0, "POST");
        assert!(made[0].1.ends_with("/features/1/versions/"), "{made:?}");
    }
}

#[tokio::test]
async fn a_patch_refused_because_the_environment_became_versioned_is_retried_as_a_version() {
    let fake = FakeFlagsmith::open_source().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let log = AuditLog::open(&dir.path().join("audit.jsonl")).expect("audit log");
    let connection = connect(&fake, "prod", Admin::Token);
    // The session learns prod is classic, then an admin turns versioning on.
    connection.source.metadata().await.expect("metadata");
    fake.enable_versioning("prod");
    let flag = read(&connection, "kill_switch_checkout").await;
    let outcome = flip::execute(
        &vendor::flip_request("prod", &flag, false, "INC-15 versioned meanwhile"),
        &connection,
        &log,
        &SystemClock,
        network().verify_timeout,
    )
    .await
    .expect("flip");
    let FlipOutcome::Applied { audit_id, .. } = outcome else {
        panic!("not applied: {outcome:?}");
    };
    assert!(!fake.enabled("prod", "kill_switch_checkout"));
    let calls: Vec<String> = fake
        .admin_requests()
        .into_iter()
        .map(|(method, path)| format!("{method} {path}"))
        .collect();
    let tail: Vec<&str> = calls
        .iter()
        .rev()
        .take(3)
        .rev()
        .map(String::as_str)
        .collect();
    assert!(tail[0].starts_with("PATCH "), "{calls:?}");
    assert!(
        tail[1].starts_with("GET /api/v1/environments/"),
        "{calls:?}"
    );
    assert!(
        tail[2].starts_with("POST /api/v1/environments/3/features/1/versions/"),
        "{calls:?}"
    );
    // One flip, one audit id: the version carries it, the log has intent and outcome only.
    let version = fake.env("prod").versions[0].1.clone();
    assert!(
        version["description"]
            .as_str()
            .is_some_and(|text| text.contains(&audit_id)),
        "{version}"
    );
    let records = log.records().expect("records");
    assert_eq!(records.len(), 2);
    assert!(records.iter().all(|r| r.id == audit_id));
    assert_eq!(records[1].result, Some(audit::Result::Ok));
}

#[tokio::test]
async fn the_user_token_is_preferred_when_both_credentials_are_stored() {
    let fake = FakeFlagsmith::open_source().await;
    let prod = fake.env("prod");
    let mut both = fields(&fake.url, &prod.server_key, Admin::ApiKey);
    both.insert("admin_token", Secret::new(ADMIN_TOKEN));
    let connection = provider::connect(
        &env_config("prod"),
        Some(&both),
        Access::ReadWrite,
        &network(),
    )
    .expect("connect");
    connection.source.metadata().await.expect("metadata");
    let auths: Vec<String> = fake
        .requests()
        .into_iter()
        .filter(|(_, _, auth)| auth != "environment")
        .map(|(_, _, auth)| auth)
        .collect();
    assert!(!auths.is_empty());
    assert!(auths.iter().all(|auth| auth == "token"), "{auths:?}");
}

// ---- flips ------------------------------------------------------------------------------------

#[tokio::test]
async fn kill_in_classic_prod_applies_is_verified_and_audited() {
    let fake = FakeFlagsmith::open_source().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let log = AuditLog::open(&dir.path().join("audit.jsonl")).expect("audit log");
    let connection = connect(&fake, "prod", Admin::Token);
    assert!(connection.writer.is_some());
    let flag = read(&connection, "kill_switch_checkout").await;
    assert_eq!(cell_text(flag.meta.kind, &flag.state), "SERVING");

    let outcome = flip::execute(
        &vendor::flip_request("prod", &flag, false, "INC-1234 checkout p99 5s"),
        &connection,
        &log,
        &SystemClock,
        network().verify_timeout,
    )
    .await
    .expect("flip");
    let (audit_id, _) = vendor::assert_confirmed(&outcome, "the kill in prod");
    assert!(!fake.enabled("prod", "kill_switch_checkout"));
    assert!(
        !connection
            .source
            .served("kill_switch_checkout")
            .await
            .expect("served")
            .enabled
    );

    // The write was the classic PATCH with the admin token; verification read /api/v1/flags/.
    let requests = fake.requests();
    let patch = requests
        .iter()
        .position(|(method, path, auth)| {
            method == "PATCH"
                && path.ends_with("/featurestates/3/")
                && path.contains("YnbMDRYRw98qHRXvcpfLXQ")
                && auth == "token"
        })
        .expect("a PATCH of the feature state");
    assert!(
        requests[patch..]
            .iter()
            .any(|(method, path, _)| method == "GET" && path == "/api/v1/flags/"),
        "{requests:?}"
    );

    let records = log.records().expect("records");
    eprintln!(
        "classic kill against the fake: write {} ms, confirmed {} ms after",
        records
            .get(1)
            .and_then(|r| r.duration_ms)
            .unwrap_or_default(),
        records
            .get(1)
            .and_then(|r| r.confirmed_ms)
            .unwrap_or_default()
    );
    assert_eq!(records.len(), 2);
    assert_eq!(records[0].phase, Phase::Intent);
    assert_eq!(records[0].note, "INC-1234 checkout p99 5s");
    assert_eq!(records[0].provider, "flagsmith");
    assert_eq!(records[1].id, audit_id);
    assert_eq!(records[1].result, Some(audit::Result::Ok));
    assert!(records[1].confirmed_ms.is_some());

    // Restore puts it back.
    let killed = read(&connection, "kill_switch_checkout").await;
    assert_eq!(cell_text(killed.meta.kind, &killed.state), "KILLED");
    let restored = flip::execute(
        &vendor::flip_request("prod", &killed, true, "INC-1234 resolved"),
        &connection,
        &log,
        &SystemClock,
        network().verify_timeout,
    )
    .await
    .expect("restore");
    assert!(matches!(restored, FlipOutcome::Applied { .. }));
    assert!(fake.enabled("prod", "kill_switch_checkout"));

    // Open source: no audit log to read, said plainly.
    let history = connection.source.history("kill_switch_checkout").await;
    let err = history.expect_err("no history on open source classic");
    assert!(
        err.message.contains("enterprise feature"),
        "{}",
        err.message
    );
}

/// What flagsmith-python gets, remote (`/api/v1/flags/`) and local (the environment document).
async fn sdk_sees(fake: &FakeFlagsmith, env: &str, mode: &'static str, flags: &[&str]) -> Value {
    let url = format!("{}/api/v1/", fake.url);
    let key = fake.env(env).server_key;
    let flags: Vec<String> = flags.iter().map(|f| f.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        support::sdk::flagsmith_evaluate(&url, &key, mode, &flags)
    })
    .await
    .expect("SDK task")
}

/// Every place the SDK says whether `flag` is on: the environment, and (local) each identity.
fn sdk_enabled(seen: &Value, flag: &str) -> Vec<bool> {
    let mut all = vec![
        seen["environment"][flag]["enabled"]
            .as_bool()
            .expect("enabled"),
    ];
    if let Some(identities) = seen["identities"].as_object() {
        for flags in identities.values() {
            all.push(flags[flag]["enabled"].as_bool().expect("enabled"));
        }
    }
    all
}

/// "Confirmed" against the fake means what flagsmith-python gets, remote and local evaluation,
/// in a classic and a versioned (v2) environment: kill serves off, restore serves on.
#[tokio::test(flavor = "multi_thread")]
async fn flagsmith_python_sees_each_confirmed_kill_and_restore() {
    if !support::sdk::available() {
        return;
    }
    let fake = FakeFlagsmith::open_source().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let log = AuditLog::open(&dir.path().join("audit.jsonl")).expect("audit log");
    let flag = "kill_switch_checkout";
    for (env, admin) in [("prod", Admin::Token), ("staging", Admin::ApiKey)] {
        let connection = connect(&fake, env, admin);
        for mode in ["remote", "local"] {
            let seen = sdk_sees(&fake, env, mode, &[flag]).await;
            assert!(
                sdk_enabled(&seen, flag).iter().all(|on| *on),
                "{env} {mode} before: {seen}"
            );
        }
        for enabled in [false, true] {
            let current = read(&connection, flag).await;
            let outcome = flip::execute(
                &vendor::flip_request(env, &current, enabled, "INC-12 SDK check"),
                &connection,
                &log,
                &SystemClock,
                network().verify_timeout,
            )
            .await
            .expect("flip");
            vendor::assert_confirmed(&outcome, env);
            for mode in ["remote", "local"] {
                let seen = sdk_sees(&fake, env, mode, &[flag]).await;
                assert!(
                    sdk_enabled(&seen, flag).iter().all(|on| *on == enabled),
                    "{env} {mode} after a confirmed {}: {seen}",
                    if enabled { "restore" } else { "kill" }
                );
            }
        }
    }
    // A flag off by default and on for a 10% segment reads `ON 10% (1 seg)`: the SDK serves it
    // off to the environment and on to some identities, not to all.
    let connection = connect(&fake, "prod", Admin::None);
    let canary = "checkout_stripe_payment_intents_v2024_11";
    let flag = read(&connection, canary).await;
    assert_eq!(cell_text(flag.meta.kind, &flag.state), "ON 10% (1 seg)");
    let seen = sdk_sees(&fake, "prod", "local", &[canary]).await;
    assert_eq!(seen["environment"][canary]["enabled"], false, "{seen}");
    let identities = sdk_enabled(&seen, canary).len() - 1;
    let on = sdk_enabled(&seen, canary).iter().filter(|on| **on).count();
    eprintln!("flagsmith-python, local evaluation: {on} of {identities} identities get {canary}");
    assert!(
        on > 0 && on < identities / 2,
        "{on} of {identities} identities get {canary}"
    );
    // The SDK read what it reads from a real Flagsmith, with the server-side key.
    let requests = fake.requests();
    for path in ["/api/v1/flags/", "/api/v1/environment-document/"] {
        assert!(
            requests
                .iter()
                .any(|(method, p, auth)| method == "GET" && p == path && auth == "environment"),
            "the SDK never read {path}: {requests:?}"
        );
    }
}

/// A flag whose environment toggle is off while a segment override still serves it (the canary:
/// off by default, on for a 10% segment) is not "already off": turning it off is refused with
/// the override named, nothing is written, and what the SDK serves is unchanged.
#[tokio::test]
async fn turning_off_a_flag_that_still_serves_through_an_override_is_refused_not_nothing_to_do() {
    let fake = FakeFlagsmith::open_source().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let log = AuditLog::open(&dir.path().join("audit.jsonl")).expect("audit log");
    let connection = connect(&fake, "prod", Admin::Token);
    let canary = "checkout_stripe_payment_intents_v2024_11";
    let flag = read(&connection, canary).await;
    assert_eq!(cell_text(flag.meta.kind, &flag.state), "ON 10% (1 seg)");
    let before = fake.requests().len();
    let result = flip::execute(
        &vendor::flip_request("prod", &flag, false, "INC-12 stop the canary"),
        &connection,
        &log,
        &SystemClock,
        network().verify_timeout,
    )
    .await;
    let error = match result {
        Err(error) => error,
        Ok(outcome) => panic!("turning off a flag that still serves must be refused: {outcome:?}"),
    };
    assert!(matches!(error, FlipError::OverridesServe { .. }), "{error}");
    let message = error.to_string();
    assert!(
        message.contains("still serves through 1 override (")
            && message.contains("Nothing was changed"),
        "{message}"
    );
    let writes: Vec<_> = fake.requests()[before..]
        .iter()
        .filter(|(method, ..)| method != "GET")
        .cloned()
        .collect();
    assert!(writes.is_empty(), "nothing may be written: {writes:?}");
    let records = std::fs::read_to_string(dir.path().join("audit.jsonl")).unwrap_or_default();
    assert!(records.is_empty(), "no flip was started: {records}");
    let again = read(&connection, canary).await;
    assert_eq!(again.state, flag.state);
}

#[tokio::test]
async fn kill_in_versioned_staging_publishes_a_version_with_the_note() {
    let fake = FakeFlagsmith::open_source().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let log = AuditLog::open(&dir.path().join("audit.jsonl")).expect("audit log");
    let connection = connect(&fake, "staging", Admin::ApiKey);
    let flag = read(&connection, "kill_switch_checkout").await;
    let outcome = flip::execute(
        &vendor::flip_request("staging", &flag, false, "INC-77 staging checkout broken"),
        &connection,
        &log,
        &SystemClock,
        network().verify_timeout,
    )
    .await
    .expect("flip");
    vendor::assert_confirmed(&outcome, "the flip");
    assert!(!fake.enabled("staging", "kill_switch_checkout"));
    let requests = fake.requests();
    assert!(
        requests.iter().all(|(method, _, _)| method != "PATCH"),
        "a versioned environment refuses the classic PATCH: {requests:?}"
    );
    assert!(requests.iter().any(|(method, path, _)| method == "POST"
        && path == "/api/v1/environments/2/features/1/versions/"));

    // Flagsmith's record: a published version whose description is the note.
    let staging = fake.env("staging");
    let (_, version) = staging
        .versions
        .iter()
        .find(|(feature, _)| *feature == 1)
        .expect("a version");
    assert_eq!(version["published"], true);
    let description = version["description"].as_str().unwrap_or_default();
    assert!(
        description.contains("INC-77 staging checkout broken"),
        "{description}"
    );
    assert!(description.contains("alice@bastion"), "{description}");

    // The version is a new feature state: the version string moved.
    let after = read(&connection, "kill_switch_checkout").await;
    assert_ne!(after.state.version, flag.state.version);

    // History shows the versions with the note.
    let history = connection
        .source
        .history("kill_switch_checkout")
        .await
        .expect("history from versions");
    assert!(
        history[0]
            .comment
            .as_deref()
            .is_some_and(|c| c.contains("INC-77")),
        "{history:?}"
    );
    assert_eq!(
        log.records().expect("records")[1].result,
        Some(audit::Result::Ok)
    );
}

#[tokio::test]
async fn a_kill_is_confirmed_when_flagsmith_hides_disabled_flags() {
    let fake = FakeFlagsmith::open_source().await;
    {
        let mut state = fake.state.lock().expect("state");
        let dev = state
            .envs
            .iter_mut()
            .find(|e| e.name == "dev")
            .expect("dev");
        dev.document["project"]["hide_disabled_flags"] = json!(true);
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let log = AuditLog::open(&dir.path().join("audit.jsonl")).expect("audit log");
    let connection = connect(&fake, "dev", Admin::Token);
    let flag = read(&connection, "kill_switch_checkout").await;
    let outcome = flip::execute(
        &vendor::flip_request("dev", &flag, false, "INC-2 dev"),
        &connection,
        &log,
        &SystemClock,
        network().verify_timeout,
    )
    .await
    .expect("flip");
    vendor::assert_confirmed(&outcome, "the flip");
    // The flag is gone from /api/v1/flags/, which services read as off.
    let served = connection
        .source
        .served("kill_switch_checkout")
        .await
        .expect("served");
    assert!(!served.enabled);
    let err = connection
        .source
        .served("no_such_flag")
        .await
        .expect_err("unknown");
    assert_eq!(err.kind, ErrorKind::NotFound);
}

#[tokio::test]
async fn approval_required_environment_yields_a_pending_change_request() {
    let fake = FakeFlagsmith::enterprise().await;
    fake.require_approvals("prod", 1);
    let dir = tempfile::tempdir().expect("tempdir");
    let log = AuditLog::open(&dir.path().join("audit.jsonl")).expect("audit log");
    let connection = connect(&fake, "prod", Admin::Token);
    let flag = read(&connection, "kill_switch_checkout").await;
    let outcome = flip::execute(
        &vendor::flip_request("prod", &flag, false, "INC-99 needs four eyes"),
        &connection,
        &log,
        &SystemClock,
        network().verify_timeout,
    )
    .await
    .expect("flip");
    let FlipOutcome::PendingApproval { reference, .. } = outcome else {
        panic!("expected pending approval, got {outcome:?}");
    };
    assert!(reference.contains("change request #1"), "{reference}");
    assert!(reference.contains("awaits 1 approval"), "{reference}");
    // Nothing is live.
    assert!(fake.enabled("prod", "kill_switch_checkout"));
    let change_requests = fake.state.lock().expect("state").change_requests.clone();
    assert_eq!(change_requests.len(), 1);
    assert!(
        change_requests[0]["description"]
            .as_str()
            .is_some_and(|d| d.contains("INC-99 needs four eyes"))
    );
    assert_eq!(change_requests[0]["feature_states"][0]["enabled"], false);
    assert_eq!(change_requests[0]["feature_states"][0]["id"], 3);
    let records = log.records().expect("records");
    assert_eq!(records[1].result, Some(audit::Result::PendingApproval));
    assert_eq!(records[1].reference.as_deref(), Some(reference.as_str()));

    // A versioned environment with approvals: the change request carries a change set.
    fake.require_approvals("staging", 2);
    let staging = connect(&fake, "staging", Admin::ApiKey);
    let flag = read(&staging, "kill_switch_checkout").await;
    let outcome = flip::execute(
        &vendor::flip_request("staging", &flag, false, "INC-100 staging"),
        &staging,
        &log,
        &SystemClock,
        network().verify_timeout,
    )
    .await
    .expect("flip");
    let FlipOutcome::PendingApproval { reference, .. } = outcome else {
        panic!("expected pending approval, got {outcome:?}");
    };
    assert!(reference.contains("awaits 2 approvals"), "{reference}");
    assert!(fake.enabled("staging", "kill_switch_checkout"));
    let change_requests = fake.state.lock().expect("state").change_requests.clone();
    let change_set = &change_requests[1]["change_sets"][0];
    assert_eq!(change_set["feature"], 1);
    assert_eq!(change_set["feature_states_to_update"][0]["enabled"], false);
    assert_eq!(change_requests[1]["feature_states"], json!([]));
    assert!(
        fake.env("staging")
            .versions
            .iter()
            .all(|(_, v)| v["description"].is_null()),
        "no version was published"
    );
}

#[tokio::test]
async fn approval_required_on_the_open_source_build_is_refused_plainly() {
    let fake = FakeFlagsmith::open_source().await;
    fake.require_approvals("prod", 2);
    let dir = tempfile::tempdir().expect("tempdir");
    let log = AuditLog::open(&dir.path().join("audit.jsonl")).expect("audit log");
    let connection = connect(&fake, "prod", Admin::Token);
    let flag = read(&connection, "kill_switch_checkout").await;
    let err = flip::execute(
        &vendor::flip_request("prod", &flag, false, "INC-5"),
        &connection,
        &log,
        &SystemClock,
        network().verify_timeout,
    )
    .await
    .expect_err("no change requests on open source");
    let message = err.to_string();
    assert!(
        message.contains("requires change-request approvals"),
        "{message}"
    );
    assert!(message.contains("404"), "{message}");
    assert!(message.contains("open-source"), "{message}");
    assert!(message.contains("Nothing was changed"), "{message}");
    assert!(fake.enabled("prod", "kill_switch_checkout"));
    assert_eq!(
        log.records().expect("records")[1].result,
        Some(audit::Result::Error)
    );
}

#[tokio::test]
async fn enterprise_audit_log_is_the_history() {
    let fake = FakeFlagsmith::enterprise().await;
    let connection = connect(&fake, "prod", Admin::Token);
    let flag = read(&connection, "kill_switch_recommendations").await;
    let writer = connection.writer.as_ref().expect("writer");
    let result = writer
        .set_enabled(
            "kill_switch_recommendations",
            false,
            &note("INC-3"),
            &flag.state,
        )
        .await
        .expect("write");
    assert_eq!(result, WriteResult::Applied);
    let history = connection
        .source
        .history("kill_switch_recommendations")
        .await
        .expect("history");
    assert_eq!(history.len(), 1);
    assert_eq!(
        history[0].what,
        "Flag state updated for feature: kill_switch_recommendations"
    );
    assert_eq!(history[0].who.as_deref(), Some("admin@example.com"));
}

#[tokio::test]
async fn open_source_audit_log_with_an_api_key_is_explained() {
    let fake = FakeFlagsmith::open_source().await;
    let connection = connect(&fake, "prod", Admin::ApiKey);
    let err = connection
        .source
        .history("kill_switch_checkout")
        .await
        .expect_err("500 on open source with Api-Key");
    assert!(err.message.contains("500"), "{}", err.message);
    assert!(
        err.message.contains("organisation API key"),
        "{}",
        err.message
    );
    let reader = connect(&fake, "prod", Admin::None);
    let err = reader
        .source
        .history("kill_switch_checkout")
        .await
        .expect_err("history needs admin");
    assert_eq!(err.kind, ErrorKind::Auth);
}

#[tokio::test]
async fn a_change_since_the_read_is_refused_not_lost() {
    let fake = FakeFlagsmith::open_source().await;
    let connection = connect(&fake, "prod", Admin::Token);
    let seen = read(&connection, "catalog_v2_search_engine").await;
    // Someone else turns it off and on again between our read and our write.
    {
        let mut state = fake.state.lock().expect("state");
        let prod = state
            .envs
            .iter_mut()
            .find(|e| e.name == "prod")
            .expect("prod");
        prod.document["feature_states"][2]["feature_state_value"] = json!("elasticsearch");
    }
    let writer = connection.writer.as_ref().expect("writer");
    let err = writer
        .set_enabled("catalog_v2_search_engine", false, &note("x"), &seen.state)
        .await
        .expect_err("conflict");
    assert_eq!(err.kind, ErrorKind::Conflict);
    assert!(
        err.message.contains("changed in Flagsmith"),
        "{}",
        err.message
    );
    assert!(fake.enabled("prod", "catalog_v2_search_engine"));

    // Through the flip transaction the re-read catches it first.
    let dir = tempfile::tempdir().expect("tempdir");
    let log = AuditLog::open(&dir.path().join("audit.jsonl")).expect("audit log");
    let err = flip::execute(
        &vendor::flip_request("prod", &seen, false, "x"),
        &connection,
        &log,
        &SystemClock,
        network().verify_timeout,
    )
    .await
    .expect_err("changed");
    assert!(matches!(err, FlipError::Changed { .. }), "{err}");
}

// ---- credentials and read-only ----------------------------------------------------------------

#[tokio::test]
async fn credentials_decide_the_write_path() {
    let fake = FakeFlagsmith::open_source().await;
    let prod = fake.env("prod");
    let reader = connect(&fake, "prod", Admin::None);
    assert!(reader.writer.is_none());
    assert_eq!(
        reader.read_only_reason.as_deref(),
        Some(
            "no admin credential (admin_api_key or admin_token) in kv/feature-flags/flagsmith/prod: read-only"
        )
    );
    let read_only = provider::connect(
        &env_config("prod"),
        Some(&fields(&fake.url, &prod.server_key, Admin::Token)),
        Access::ReadOnly,
        &network(),
    )
    .expect("connect");
    assert!(read_only.writer.is_none());

    // The client key is refused before any request, with the reason.
    let err = provider::connect(
        &env_config("prod"),
        Some(&fields(&fake.url, &prod.client_key, Admin::Token)),
        Access::ReadWrite,
        &network(),
    )
    .expect_err("client key");
    assert_eq!(err.kind, ErrorKind::Auth);
    assert!(
        err.message.contains("not a server-side key"),
        "{}",
        err.message
    );

    let mut missing = SecretFields::new("vault kv/feature-flags/flagsmith/prod");
    missing.insert("api_url", Secret::new(fake.url.clone()));
    let err = provider::connect(
        &env_config("prod"),
        Some(&missing),
        Access::ReadWrite,
        &network(),
    )
    .expect_err("no key");
    assert_eq!(
        err.message,
        "prod: vault kv/feature-flags/flagsmith/prod: field `environment_key` is missing or empty"
    );

    // options.api_url wins over Vault's.
    let mut config = env_config("prod");
    config.options.insert("api_url".into(), fake.url.clone());
    let mut wrong_url = fields("http://127.0.0.1:9", &prod.server_key, Admin::None);
    wrong_url.insert("api_url", Secret::new("http://127.0.0.1:9"));
    let connection = provider::connect(&config, Some(&wrong_url), Access::ReadOnly, &network())
        .expect("connect");
    assert_eq!(cells(&connection).await.len(), 6);

    let fields = provider::credential_fields(ProviderKind::Flagsmith);
    assert_eq!(fields.required, &["api_url", "environment_key"]);
    assert_eq!(fields.write, &["admin_api_key", "admin_token"]);
}

#[test]
fn config_names_the_provider_flagsmith_with_options() {
    let text = "[[environment]]\nname = \"prod\"\nprovider = \"flagsmith\"\noptions = { api_url = \"https://flagsmith.internal/api/v1/\", project = \"1\" }\n";
    let config = killswitch::config::parse(text, std::path::Path::new("ks.toml")).expect("config");
    let prod = &config.environments[0];
    assert_eq!(prod.provider, ProviderKind::Flagsmith);
    assert_eq!(prod.provider.name(), "flagsmith");
    assert!(prod.provider.uses_vault());
    assert_eq!(prod.vault_location(), "kv/feature-flags/flagsmith/prod");
    assert_eq!(prod.option("project"), Some("1"));

    // A project option that is not a number is refused with the reason.
    let mut bad = prod.clone();
    bad.options.insert("project".into(), "checkout".into());
    let fields = fields("http://127.0.0.1:9", "ser.x", Admin::None);
    let err = provider::connect(&bad, Some(&fields), Access::ReadOnly, &network())
        .expect_err("bad project");
    assert!(
        err.message.contains("option `project` must be the numeric"),
        "{}",
        err.message
    );
}

struct FakeVault {
    url: String,
    server_key: String,
    deny_admin: bool,
}

#[async_trait]
impl CredentialSource for FakeVault {
    async fn credentials(&self, env: &EnvironmentConfig) -> Result<Credentials, ConnectError> {
        let admin = if self.deny_admin {
            Admin::None
        } else {
            Admin::Token
        };
        let mut fields = fields(&self.url, &self.server_key, admin);
        fields.source = format!("vault {}", env.vault_location());
        Ok(Credentials {
            fields,
            write_denied: self
                .deny_admin
                .then(|| format!("policy denies {}/admin", env.vault_location())),
        })
    }

    async fn operator(&self) -> Option<String> {
        Some("token-alice".into())
    }
}

#[tokio::test]
async fn session_loads_and_flips_through_the_same_path() {
    let fake = FakeFlagsmith::open_source().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Arc::new(AuditLog::open(&dir.path().join("audit.jsonl")).expect("audit log"));
    let config = Config {
        origin: "test".into(),
        environments: vec![env_config("prod")],
        keymap: None,
        audit_log: None,
        refresh_interval: Duration::from_secs(30),
        network: network(),
        local_workspace: false,
        serve: Default::default(),
        notify: Vec::new(),
        source_note: None,
        groups: Default::default(),
        rollout: Default::default(),
    };
    let session = Session::new(
        config.clone(),
        Access::ReadWrite,
        Arc::new(FakeVault {
            url: fake.url.clone(),
            server_key: fake.env("prod").server_key,
            deny_admin: false,
        }),
        log.clone(),
        Arc::new(SystemClock),
    );
    let snapshot = session.load("prod").await.expect("load");
    assert_eq!(snapshot.flags.len(), 6);
    let connection = session.connection("prod").await.expect("connection");
    let flag = snapshot
        .flag("kill_switch_recommendations")
        .expect("flag")
        .clone();
    let mut flip = vendor::flip_request("prod", &flag, false, "INC-8 recs melting");
    flip.operator = session.operator().await;
    let outcome = flip::execute(
        &flip,
        &connection,
        &log,
        &SystemClock,
        Duration::from_secs(3),
    )
    .await
    .expect("flip");
    assert!(matches!(outcome, FlipOutcome::Applied { .. }));
    assert!(!fake.enabled("prod", "kill_switch_recommendations"));
    assert_eq!(log.records().expect("records")[0].operator, "token-alice");

    let denied = Session::new(
        config,
        Access::ReadWrite,
        Arc::new(FakeVault {
            url: fake.url.clone(),
            server_key: fake.env("prod").server_key,
            deny_admin: true,
        }),
        log,
        Arc::new(SystemClock),
    );
    let connection = denied.connection("prod").await.expect("connection");
    assert!(connection.writer.is_none());
    assert!(
        connection
            .read_only_reason
            .as_deref()
            .is_some_and(|r| r.contains("policy denies")),
        "{connection:?}"
    );
}

// ---- every error path -------------------------------------------------------------------------

async fn read_error(connection: &Connection) -> ProviderError {
    connection
        .source
        .list_flags()
        .await
        .expect_err("the read should fail")
}

#[tokio::test]
async fn every_error_path_names_what_failed() {
    let fake = FakeFlagsmith::open_source().await;
    let mut messages = Vec::new();
    let reader = connect(&fake, "prod", Admin::None);

    // 403: a server-looking key Flagsmith does not know.
    let unknown_key = provider::connect(
        &env_config("prod"),
        Some(&fields(&fake.url, "ser.NotAKeyFlagsmithKnows", Admin::None)),
        Access::ReadOnly,
        &network(),
    )
    .expect("connect");
    let err = read_error(&unknown_key).await;
    assert_eq!(err.kind, ErrorKind::Auth);
    assert_eq!(
        err.message,
        format!(
            "prod: read the Flagsmith environment document: {}/api/v1/environment-document/ answered 403 forbidden (the credential may not do this): Invalid or missing Environment key",
            fake.url
        )
    );
    messages.push(err.message);

    // 401: a bad admin token on a write.
    let mut bad_admin = fields(&fake.url, &fake.env("prod").server_key, Admin::None);
    bad_admin.insert("admin_token", Secret::new("wrong-token-value"));
    let bad = provider::connect(
        &env_config("prod"),
        Some(&bad_admin),
        Access::ReadWrite,
        &network(),
    )
    .expect("connect");
    let flag = read(&bad, "kill_switch_checkout").await;
    let err = bad
        .writer
        .as_ref()
        .expect("writer")
        .set_enabled("kill_switch_checkout", false, &note("x"), &flag.state)
        .await
        .expect_err("401");
    assert_eq!(err.kind, ErrorKind::Auth);
    assert!(err.message.contains("answered 401"), "{}", err.message);
    assert!(err.message.contains("Invalid token."), "{}", err.message);
    assert!(
        !err.message.contains("wrong-token-value"),
        "{}",
        err.message
    );
    assert!(fake.enabled("prod", "kill_switch_checkout"));
    messages.push(err.message);

    // 404: an unknown flag.
    let err = reader
        .source
        .read_flag("no_such_flag")
        .await
        .expect_err("404");
    assert_eq!(err.kind, ErrorKind::NotFound);
    assert!(
        err.message
            .starts_with("prod: flag `no_such_flag` is not in"),
        "{}",
        err.message
    );
    messages.push(err.message);
    let err = reader.source.served("no_such_flag").await.expect_err("404");
    assert_eq!(err.kind, ErrorKind::NotFound);
    messages.push(err.message);

    // 400: Flagsmith refuses the PATCH with a validation error.
    let writer_connection = connect(&fake, "prod", Admin::Token);
    let flag = read(&writer_connection, "kill_switch_checkout").await;
    fake.fail(
        "/featurestates/",
        400,
        r#"{"enabled":["Must be a valid boolean."]}"#,
        1,
    );
    let err = writer_connection
        .writer
        .as_ref()
        .expect("writer")
        .set_enabled("kill_switch_checkout", false, &note("x"), &flag.state)
        .await
        .expect_err("400");
    assert_eq!(err.kind, ErrorKind::Api);
    assert!(
        err.message.contains("turn off `kill_switch_checkout`"),
        "{}",
        err.message
    );
    assert!(
        err.message.contains("answered 400 rejected"),
        "{}",
        err.message
    );
    assert!(
        err.message.contains("Must be a valid boolean."),
        "{}",
        err.message
    );
    messages.push(err.message);

    // 5xx with an HTML page.
    fake.fail(
        "/environment-document/",
        502,
        "<html><h1>502 Bad Gateway</h1></html>",
        1,
    );
    let err = read_error(&reader).await;
    assert_eq!(err.kind, ErrorKind::Api);
    assert!(
        err.message
            .contains("answered 502 server error: non-JSON body"),
        "{}",
        err.message
    );
    messages.push(err.message);

    // Malformed JSON with a 200.
    fake.fail(
        "/environment-document/",
        200,
        "{\"id\": 3, \"feature_states\": [",
        1,
    );
    let err = read_error(&reader).await;
    assert_eq!(err.kind, ErrorKind::Api);
    assert!(
        err.message.contains("answered malformed JSON"),
        "{}",
        err.message
    );
    messages.push(err.message);

    // JSON, but not an environment document.
    fake.fail("/environment-document/", 200, "{\"detail\": \"ok\"}", 1);
    let err = read_error(&reader).await;
    assert!(
        err.message
            .contains("is not what Flagsmith sends: missing field `id`"),
        "{}",
        err.message
    );
    messages.push(err.message);

    // 5xx on verification: served() says so.
    fake.fail("/api/v1/flags/", 503, "", 1);
    let err = reader
        .source
        .served("kill_switch_checkout")
        .await
        .expect_err("503");
    assert!(
        err.message.contains("read what services see"),
        "{}",
        err.message
    );
    assert!(err.message.contains("503"), "{}", err.message);
    messages.push(err.message);

    // 400: the versioned environment refuses a classic PATCH, with Flagsmith's words.
    let http = reqwest::Client::new();
    let staging = fake.env("staging");
    let refused = http
        .patch(format!(
            "{}/api/v1/environments/{}/featurestates/2003/",
            fake.url, staging.client_key
        ))
        .header("Authorization", format!("Token {ADMIN_TOKEN}"))
        .json(&json!({"enabled": false}))
        .send()
        .await
        .expect("patch");
    assert_eq!(refused.status(), 400);

    // A version without the fields Flagsmith requires.
    let refused = http
        .post(format!("{}/api/v1/environments/2/features/1/versions/", fake.url))
        .header("Authorization", format!("Token {ADMIN_TOKEN}"))
        .json(&json!({"publish_immediately": true, "feature_states_to_update": [{"feature_segment": null}]}))
        .send()
        .await
        .expect("post");
    assert_eq!(refused.status(), 400);
    let body: Value = refused.json().await.expect("json");
    assert_eq!(
        body["feature_states_to_update"][0]["enabled"][0],
        "This field is required."
    );
    assert!(fake.enabled("staging", "kill_switch_checkout"));

    // Unreachable: nothing listens there.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let nowhere = provider::connect(
        &env_config("prod"),
        Some(&fields(
            &format!("http://127.0.0.1:{port}"),
            &fake.env("prod").server_key,
            Admin::None,
        )),
        Access::ReadOnly,
        &network(),
    )
    .expect("connect");
    let err = read_error(&nowhere).await;
    assert_eq!(err.kind, ErrorKind::Unreachable);
    assert!(err.message.contains("cannot connect"), "{}", err.message);
    assert!(
        err.message.contains(&format!("127.0.0.1:{port}")),
        "{}",
        err.message
    );
    messages.push(err.message);

    // Timeout: the fake answers after the request timeout.
    fake.set_delay(Some(Duration::from_millis(2500)));
    let started = std::time::Instant::now();
    let err = read_error(&reader).await;
    fake.set_delay(None);
    assert_eq!(err.kind, ErrorKind::Unreachable);
    assert!(err.message.contains("timed out"), "{}", err.message);
    assert!(
        started.elapsed() < Duration::from_millis(2400),
        "{:?}",
        started.elapsed()
    );
    messages.push(err.message);

    for message in &messages {
        assert_no_secret(&fake, "an error message", message);
    }
}

#[tokio::test]
async fn secrets_never_reach_messages_logs_or_debug_output() {
    let fake = FakeFlagsmith::enterprise().await;
    fake.require_approvals("prod", 1);
    let dir = tempfile::tempdir().expect("tempdir");
    let log_path = dir.path().join("audit.jsonl");
    let log = AuditLog::open(&log_path).expect("audit log");
    let mut seen_text = Vec::new();
    for (env, admin) in [
        ("prod", Admin::ApiKey),
        ("staging", Admin::Token),
        ("dev", Admin::Token),
    ] {
        let connection = connect(&fake, env, admin);
        seen_text.push(format!("{connection:?}"));
        seen_text.push(format!("{:?}", connection.source.info()));
        let flags = connection.source.list_flags().await.expect("flags");
        seen_text.push(format!("{flags:?}"));
        seen_text.push(serde_json::to_string(&flags).expect("json"));
        let flag = read(&connection, "kill_switch_checkout").await;
        match flip::execute(
            &vendor::flip_request(env, &flag, false, "INC-1 leak check"),
            &connection,
            &log,
            &SystemClock,
            network().verify_timeout,
        )
        .await
        {
            Ok(outcome) => seen_text.push(format!("{outcome:?}")),
            Err(err) => seen_text.push(err.to_string()),
        }
        match connection.source.history("kill_switch_checkout").await {
            Ok(history) => seen_text.push(format!("{history:?}")),
            Err(err) => seen_text.push(err.message),
        }
    }
    let mut secrets_fields = fields(&fake.url, &fake.env("prod").server_key, Admin::ApiKey);
    secrets_fields.insert("admin_token", Secret::new(ADMIN_TOKEN));
    seen_text.push(format!("{secrets_fields:?}"));
    seen_text.push(std::fs::read_to_string(&log_path).expect("audit log"));
    // The notes Flagsmith keeps (version descriptions, change requests) carry no secret either.
    {
        let state = fake.state.lock().expect("state");
        seen_text.push(serde_json::to_string(&state.change_requests).expect("json"));
        for env in &state.envs {
            for (_, version) in &env.versions {
                seen_text.push(version.to_string());
            }
        }
    }
    let all = seen_text.join("\n");
    assert!(
        all.contains("INC-1 leak check"),
        "the checks looked at real output"
    );
    assert_no_secret(&fake, "output", &all);
}

/// Issue 22: the states are the environment document (what local-evaluation SDKs download),
/// flag for flag: every segment override (a percentage split or rules no summary can word)
/// and every identity override is shown, none guessed away.
#[tokio::test]
async fn dashboard_states_are_what_the_environment_document_serves_for_every_flag() {
    let fake = FakeFlagsmith::open_source().await;
    let connection = connect(&fake, "prod", Admin::None);
    let flags = connection.source.list_flags().await.expect("list");
    let document = fake.env("prod").document;
    let states = document["feature_states"].as_array().expect("states");
    assert_eq!(flags.len(), states.len());
    for state in states {
        let name = state["feature"]["name"].as_str().expect("name");
        let id = &state["feature"]["id"];
        let flag = flags.iter().find(|f| f.meta.key == name).expect("shown");
        assert_eq!(
            Some(flag.state.enabled),
            state["enabled"].as_bool(),
            "{name}"
        );
        let segments: Vec<String> = document["project"]["segments"]
            .as_array()
            .expect("segments")
            .iter()
            .filter(|segment| {
                segment["feature_states"]
                    .as_array()
                    .is_some_and(|fs| fs.iter().any(|fs| fs["feature"]["id"] == *id))
            })
            .map(|segment| format!("segment {}", segment["name"].as_str().unwrap_or("?")))
            .collect();
        let identities = document["identity_overrides"]
            .as_array()
            .expect("identities")
            .iter()
            .filter(|identity| {
                identity["identity_features"]
                    .as_array()
                    .is_some_and(|fs| fs.iter().any(|fs| fs["feature"]["id"] == *id))
            })
            .count();
        let targets: Vec<&str> = flag
            .state
            .overrides
            .iter()
            .map(|o| o.target.as_str())
            .collect();
        assert_eq!(
            targets.len(),
            segments.len() + identities,
            "{name}: {targets:?}"
        );
        for segment in &segments {
            assert!(targets.contains(&segment.as_str()), "{name}: {targets:?}");
        }
        // The re-read of one flag is the same document: equal when nothing changed.
        let again = read(&connection, name).await;
        assert_eq!(again.state, flag.state, "{name}");
    }
    // No Admin API call for any of it.
    assert_eq!(fake.admin_calls(), 0);
}

/// Flagsmith pages the features list at 999: past the 999th feature the metadata comes from
/// the following pages, read at once, so no flag loses its owner, tags or description.
#[tokio::test]
async fn metadata_reads_every_page_of_the_features_list() {
    let fake = FakeFlagsmith::open_source().await;
    fake.add_features(2_500);
    let connection = connect(&fake, "prod", Admin::Token);
    let before = fake.admin_requests().len();
    let metadata = connection.source.metadata().await.expect("metadata");
    let pages = fake.admin_requests()[before..]
        .iter()
        .filter(|(_, path)| path.starts_with("/api/v1/projects/1/features/"))
        .count();
    assert_eq!(pages, 3, "2,506 features: three pages of 999");
    assert_eq!(metadata.len(), 2_506);
    let last = metadata
        .iter()
        .find(|meta| meta.key == "filler_02499")
        .expect("the last feature has its metadata");
    assert_eq!(last.description.as_deref(), Some("filler"));
    assert!(
        metadata
            .iter()
            .any(|meta| meta.key == "kill_switch_checkout" && meta.owner.is_some()),
        "the first page's owners too"
    );
}

// ---- rate limits ------------------------------------------------------------------------------

/// Requests so far whose path contains `part`, with `method`.
fn count_requests(fake: &FakeFlagsmith, method: &str, part: &str) -> usize {
    fake.requests()
        .iter()
        .filter(|(m, path, _)| m == method && path.contains(part))
        .count()
}

#[tokio::test]
async fn a_rate_limited_read_is_waited_out_and_sent_again() {
    let fake = FakeFlagsmith::open_source().await;
    let connection = connect(&fake, "prod", Admin::None);
    // Flagsmith's throttle: 429 with `Retry-After: 1` (within the 1.5 s request timeout).
    fake.rate_limit("/environment-document/", 1, 1);
    let flag = connection
        .source
        .read_flag("kill_switch_checkout")
        .await
        .expect("read after the wait");
    assert_eq!(cell_text(flag.meta.kind, &flag.state), "SERVING");
    assert_eq!(
        count_requests(&fake, "GET", "/environment-document/"),
        2,
        "throttled once, then sent again"
    );
}

#[tokio::test]
async fn a_long_rate_limit_on_a_read_is_not_waited_for_and_says_when_to_retry() {
    let fake = FakeFlagsmith::open_source().await;
    let connection = connect(&fake, "prod", Admin::None);
    fake.rate_limit("/environment-document/", 3600, 1);
    let started = std::time::Instant::now();
    let err = read_error(&connection).await;
    // Not waited for: the answer comes well within one request timeout, not in an hour.
    assert!(
        started.elapsed() < network().request_timeout,
        "{:?}",
        started.elapsed()
    );
    assert_eq!(err.kind, ErrorKind::RateLimited);
    for part in [
        "answered 429 rate limited",
        "Request was throttled",
        "retry after 3600.0s (at ",
        "not waited for: a read waits at most 1.5s",
    ] {
        assert!(err.message.contains(part), "{part}: {}", err.message);
    }
    assert_eq!(count_requests(&fake, "GET", "/environment-document/"), 1);
}

#[tokio::test]
async fn a_rate_limited_write_is_not_retried_and_is_audited_as_failed() {
    let fake = FakeFlagsmith::open_source().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let log = AuditLog::open(&dir.path().join("audit.jsonl")).expect("audit log");
    let connection = connect(&fake, "prod", Admin::Token);
    let flag = read(&connection, "kill_switch_checkout").await;
    // Even a one-second wait is not taken for a write: the operator decides to retry.
    fake.rate_limit("/featurestates/", 1, 1);
    let err = flip::execute(
        &vendor::flip_request("prod", &flag, false, "INC-1234 checkout p99 5s"),
        &connection,
        &log,
        &SystemClock,
        network().verify_timeout,
    )
    .await
    .expect_err("rate limited");
    assert_eq!(err.provider_kind(), Some(ErrorKind::RateLimited), "{err}");
    let text = err.to_string();
    assert!(text.contains("retry after 1.0s"), "{text}");
    assert!(
        text.contains("killswitch never sends a write twice"),
        "{text}"
    );
    assert_eq!(count_requests(&fake, "PATCH", "/featurestates/"), 1);
    assert!(fake.enabled("prod", "kill_switch_checkout"));
    let records = log.records().expect("records");
    assert!(
        records
            .last()
            .and_then(|r| r.error.clone())
            .is_some_and(|e| e.contains("429")),
        "{records:?}"
    );
}
