//! The Unleash provider against a real Unleash 8.2.0 + PostgreSQL started by the test setup
//! (`tests/support/unleash.rs`), once for this binary. Each test changes only its own flags.

mod support;

use support::vendor;

use support::Home;
use support::openbao::OpenBao;
#[path = "support/unleash.rs"]
mod unleash_server;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use killswitch::audit::{AuditLog, Phase};
use killswitch::clock::SystemClock;
use killswitch::config::{Config, EnvironmentConfig, NetworkConfig, ProviderKind};
use killswitch::flip::{self, FlipError, FlipOutcome, Verification};
use killswitch::model::{FlagKind, cell_text};
use killswitch::provider::{self, Access, Connection, ErrorKind, ProviderError};
use killswitch::secret::{Secret, SecretFields};
use killswitch::session::{ConnectError, CredentialSource, Credentials, Session};
use serde_json::json;
use unleash_server::{
    ADMIN_TOKEN, BACKEND_TOKEN, DEV_BACKEND_TOKEN, FRONTEND_TOKEN, Unleash, admin, client_enabled,
};

fn env_config(name: &str, options: &[(&str, &str)]) -> EnvironmentConfig {
    vendor::env_config(ProviderKind::Unleash, name, options)
}

fn fields(url: &str, entries: &[(&str, &str)]) -> SecretFields {
    let mut fields = SecretFields::new("vault kv/feature-flags/unleash/prod");
    fields.insert("api_url", Secret::new(url));
    for (field, value) in entries {
        fields.insert(*field, Secret::new(*value));
    }
    fields
}

/// Timeouts against the real server: 1 s connect, `request_ms`, 5 s verification.
fn network(request_ms: u64) -> NetworkConfig {
    vendor::network(1000, request_ms, 5000)
}

fn prod(server: &Unleash, access: Access) -> Connection {
    let secrets = fields(
        &server.url,
        &[
            ("admin_token", ADMIN_TOKEN),
            ("backend_token", BACKEND_TOKEN),
        ],
    );
    vendor::connect(&env_config("prod", &[]), &secrets, access, &network(5000))
}

/// Vault stand-in: the fields a Vault secret would hold, per environment.
struct TestVault {
    url: String,
}

#[async_trait]
impl CredentialSource for TestVault {
    async fn credentials(&self, env: &EnvironmentConfig) -> Result<Credentials, ConnectError> {
        let backend = if env.name == "dev" {
            DEV_BACKEND_TOKEN
        } else {
            BACKEND_TOKEN
        };
        let mut fields = SecretFields::new(format!("vault {}", env.vault_location()));
        fields.insert("api_url", Secret::new(&self.url));
        fields.insert("read_token", Secret::new(ADMIN_TOKEN));
        fields.insert("backend_token", Secret::new(backend));
        Ok(Credentials {
            fields,
            write_denied: Some(format!(
                "no admin credential in {}/admin: read-only",
                env.vault_location()
            )),
        })
    }

    async fn operator(&self) -> Option<String> {
        Some("token-viewer".into())
    }
}

#[tokio::test]
async fn dashboard_shows_seeded_states_and_percentages_per_environment() {
    let Some(server) = unleash_server::server() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let config = Config {
        origin: "test".into(),
        environments: vec![env_config("dev", &[]), env_config("prod", &[])],
        keymap: None,
        audit_log: None,
        refresh_interval: Duration::from_secs(30),
        network: network(5000),
        local_workspace: false,
        serve: Default::default(),
        notify: Vec::new(),
        source_note: None,
        groups: Default::default(),
        rollout: Default::default(),
    };
    let session = Session::new(
        config,
        Access::ReadWrite,
        Arc::new(TestVault {
            url: server.url.clone(),
        }),
        Arc::new(AuditLog::open(&dir.path().join("audit.jsonl")).expect("audit")),
        Arc::new(SystemClock),
    );
    let prod = session.load("prod").await.expect("load prod");
    let cells: BTreeMap<String, String> = prod
        .flags
        .iter()
        .map(|f| (f.meta.key.clone(), cell_text(f.meta.kind, &f.state)))
        .collect();
    assert_eq!(cells["kill_switch_quiet"], "SERVING");
    assert_eq!(
        cells["payments_off"], "SERVING",
        "type kill-switch marks it"
    );
    assert_eq!(cells["search_v2"], "ON 10%");
    assert_eq!(cells["checkout_ab"], "ON 33/33/34");
    assert_eq!(cells["beta_banner"], "ON 2 seg only");
    assert_eq!(cells["legacy_off"], "OFF");
    let flag = |key: &str| prod.flag(key).expect(key);
    assert_eq!(flag("payments_off").meta.kind, FlagKind::KillSwitch);
    assert_eq!(flag("search_v2").meta.kind, FlagKind::Release);
    assert_eq!(flag("checkout_ab").meta.kind, FlagKind::Experiment);
    let overrides: Vec<String> = flag("beta_banner")
        .state
        .overrides
        .iter()
        .map(|o| o.summary())
        .collect();
    assert_eq!(
        overrides,
        vec!["ON (segment beta_users)", "25% (tenant IN acme,globex)"]
    );
    assert!(flag("search_v2").state.version.is_some());

    // dev maps to Unleash's development: the same flags, other states.
    let started = Instant::now();
    let dev = session.load("dev").await.expect("load dev");
    eprintln!(
        "dev: {} flags listed in {} ms (connection and scope check included)",
        dev.flags.len(),
        started.elapsed().as_millis()
    );
    let search = dev.flag("search_v2").expect("search_v2 in dev");
    assert_eq!(cell_text(search.meta.kind, &search.state), "OFF");
    let checkout = dev.flag("kill_switch_checkout").expect("checkout in dev");
    assert!(checkout.state.enabled);

    // On the dashboard, next to the other environments (staging is not loaded here).
    let mut state = support::dashboard::state(false, (160, 40), None);
    for (env, snapshot) in [("dev", dev.clone()), ("prod", prod.clone())] {
        killswitch::tui::app::update(
            &mut state,
            killswitch::tui::action::Action::EnvLoaded {
                env: env.into(),
                result: Ok(snapshot),
                read_only_reason: None,
            },
        );
    }
    let screen = support::dashboard::render(&state);
    for text in [
        "search_v2",
        "ON 10%",
        "ON 33/33/34",
        "ON 2 seg only",
        "payments_off",
    ] {
        assert!(screen.contains(text), "{text} missing:\n{screen}");
    }

    // The viewer's Vault policy denied the admin secret: read-only, and it says why.
    let connection = session.connection("prod").await.expect("connection");
    assert!(connection.writer.is_none());
    assert_eq!(
        connection.read_only_reason.as_deref(),
        Some("no admin credential in kv/feature-flags/unleash/prod/admin: read-only")
    );
    // What services see, through the client API with the backend token.
    let served = connection.source.served("search_v2").await.expect("served");
    assert!(served.enabled);
}

#[tokio::test]
async fn kill_in_production_is_confirmed_by_the_client_api_and_the_note_lands_in_unleash() {
    let Some(server) = unleash_server::server() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let audit = AuditLog::open(&dir.path().join("audit.jsonl")).expect("audit");
    let connection = prod(server, Access::ReadWrite);
    let seen = connection
        .source
        .read_flag("kill_switch_checkout")
        .await
        .expect("read");
    assert_eq!(cell_text(seen.meta.kind, &seen.state), "SERVING");
    assert!(client_enabled(server, "kill_switch_checkout").await);

    let note = "INC-4711 checkout p99 5s; killing checkout until the DB failover is done";
    let started = Instant::now();
    let outcome = flip::execute(
        &vendor::flip_request("prod", &seen, false, note),
        &connection,
        &audit,
        &SystemClock,
        Duration::from_secs(5),
    )
    .await
    .expect("kill");
    let (audit_id, confirmed) = match outcome {
        FlipOutcome::Applied {
            audit_id,
            verification: Verification::Confirmed { after },
            audit_warning: None,
            ..
        } => (audit_id, after),
        other => panic!("not confirmed: {other:?}"),
    };
    eprintln!(
        "kill took {} ms, confirmed by the client API {} ms after the write",
        started.elapsed().as_millis(),
        confirmed.as_millis()
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(!client_enabled(server, "kill_switch_checkout").await);
    let after = connection
        .source
        .read_flag("kill_switch_checkout")
        .await
        .expect("read");
    assert_eq!(cell_text(after.meta.kind, &after.state), "KILLED");
    // Only production: development still serves.
    let dev_detail = admin(
        server,
        "GET",
        "/api/admin/projects/default/features/kill_switch_checkout/environments/development",
        None,
    )
    .await;
    assert_eq!(dev_detail["enabled"], true);

    // killswitch's audit log: intent then outcome, with the note and the confirmation.
    let records = audit.records().expect("records");
    let ours: Vec<_> = records.iter().filter(|r| r.id == audit_id).collect();
    assert_eq!(ours.len(), 2);
    assert_eq!(ours[0].phase, Phase::Intent);
    assert_eq!(ours[0].note, note);
    assert_eq!(ours[0].provider, "unleash");
    assert_eq!(
        (ours[0].from.as_str(), ours[0].to.as_str()),
        ("SERVING", "KILLED")
    );
    assert_eq!(ours[1].phase, Phase::Outcome);
    assert!(ours[1].confirmed_ms.is_some());

    // Unleash: the note and the audit id as `killswitch` tags, and on the disable event.
    let tags = admin(
        server,
        "GET",
        "/api/admin/features/kill_switch_checkout/tags",
        None,
    )
    .await;
    let values: Vec<&str> = tags["tags"]
        .as_array()
        .expect("tags")
        .iter()
        .filter(|t| t["type"] == "killswitch")
        .filter_map(|t| t["value"].as_str())
        .collect();
    assert!(
        values.contains(&"INC-4711 checkout p99 5s; killing checkout until…"),
        "{values:?}"
    );
    let audit_tag = format!("audit {audit_id}");
    assert!(values.contains(&audit_tag.as_str()), "{values:?}");
    let events = admin(
        server,
        "GET",
        "/api/admin/search/events?feature=IS:kill_switch_checkout",
        None,
    )
    .await;
    let disabled = events["events"]
        .as_array()
        .expect("events")
        .iter()
        .find(|e| e["type"] == "feature-environment-disabled")
        .expect("a disable event");
    assert_eq!(disabled["environment"], "production");
    assert!(
        disabled["tags"].to_string().contains(&audit_tag),
        "the disable event carries the note tags: {disabled}"
    );

    // The history view reads the same events; the note is the comment.
    let history = connection
        .source
        .history("kill_switch_checkout")
        .await
        .expect("history");
    assert!(
        history
            .iter()
            .any(|h| h.what == "Flag disabled in production"),
        "{history:?}"
    );
    assert!(
        history
            .iter()
            .any(|h| h.comment.as_deref() == Some(audit_tag.as_str())),
        "{history:?}"
    );
    assert!(
        history.iter().all(|h| !h.what.contains("in development")),
        "other environments' events are left out"
    );

    // Restore puts it back and is confirmed too.
    let killed = connection
        .source
        .read_flag("kill_switch_checkout")
        .await
        .expect("read");
    let mut restore = vendor::flip_request("prod", &killed, false, "INC-4711 resolved");
    restore.change = flip::Change::Switch { enabled: true };
    let outcome = flip::execute(
        &restore,
        &connection,
        &audit,
        &SystemClock,
        Duration::from_secs(5),
    )
    .await
    .expect("restore");
    vendor::assert_confirmed(&outcome, "the flip");
    assert!(client_enabled(server, "kill_switch_checkout").await);
}

/// "Confirmed" must mean what an SDK gets: right after each confirmation, the Unleash Python
/// SDK's next poll (its own request, with its cached ETag) serves the new state. Unleash caches
/// the list SDKs poll for up to about a second, so a confirmation read elsewhere (the per-flag
/// endpoint) comes before SDKs can see the change and this fails.
#[tokio::test(flavor = "multi_thread")]
async fn confirmed_means_the_sdks_next_poll_serves_the_new_state() {
    let Some(server) = unleash_server::server() else {
        return;
    };
    if !support::sdk::available() {
        return;
    }
    let flag = "kill_switch_sdk";
    let dir = tempfile::tempdir().expect("tempdir");
    let audit = AuditLog::open(&dir.path().join("audit.jsonl")).expect("audit");
    let connection = prod(server, Access::ReadWrite);
    let mut sdk = support::sdk::UnleashSdk::start(&server.url, BACKEND_TOKEN);
    assert!(sdk.poll(flag), "the SDK starts seeing it ON");
    for round in 0..3 {
        for enabled in [false, true] {
            let seen = connection.source.read_flag(flag).await.expect("read");
            let mut request = vendor::flip_request("prod", &seen, false, "INC-12 SDK poll check");
            request.change = flip::Change::Switch { enabled };
            let outcome = flip::execute(
                &request,
                &connection,
                &audit,
                &SystemClock,
                Duration::from_secs(5),
            )
            .await
            .expect("flip");
            let (_, confirmed) = vendor::assert_confirmed(&outcome, &format!("round {round}"));
            let polled = tokio::task::block_in_place(|| sdk.poll(flag));
            eprintln!(
                "round {round}: {} confirmed after {} ms; the SDK's next poll serves {}",
                if enabled { "restore" } else { "kill" },
                confirmed.as_millis(),
                if polled { "ON" } else { "OFF" }
            );
            assert_eq!(
                polled, enabled,
                "round {round}: confirmed, but the SDK's next poll still serves the old state"
            );
        }
    }
}

#[tokio::test]
async fn a_flag_changed_by_someone_else_between_read_and_flip_is_not_written() {
    let Some(server) = unleash_server::server() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let audit = AuditLog::open(&dir.path().join("audit.jsonl")).expect("audit");
    let connection = prod(server, Access::ReadWrite);
    let seen = connection
        .source
        .read_flag("kill_switch_race")
        .await
        .expect("read");
    assert!(seen.state.enabled);

    // Someone else narrows the rollout to 50% in the Unleash UI meanwhile.
    let strategies = admin(
        server,
        "GET",
        "/api/admin/projects/default/features/kill_switch_race/environments/production/strategies",
        None,
    )
    .await;
    let id = strategies[0]["id"]
        .as_str()
        .expect("strategy id")
        .to_string();
    admin(
        server,
        "PUT",
        &format!(
            "/api/admin/projects/default/features/kill_switch_race/environments/production/strategies/{id}"
        ),
        Some(json!({"name": "flexibleRollout", "parameters": {"rollout": "50", "stickiness": "default", "groupId": "kill_switch_race"}})),
    )
    .await;

    // The flip's re-read sees it and stops before the audit intent.
    let err = flip::execute(
        &vendor::flip_request("prod", &seen, false, "INC-1 stale view"),
        &connection,
        &audit,
        &SystemClock,
        Duration::from_secs(5),
    )
    .await
    .expect_err("changed");
    match &err {
        FlipError::Changed { now, .. } => assert_eq!(now, "SERVING 50%"),
        other => panic!("expected Changed, got {other}"),
    }
    assert!(audit.records().expect("records").is_empty());

    // The provider's own guard, for a change that lands after the re-read.
    let writer = connection.writer.clone().expect("writer");
    let note = killswitch::provider::ChangeNote {
        audit_id: "test-race".into(),
        operator: "alice".into(),
        note: "INC-1 stale view".into(),
    };
    let refused = writer
        .set_enabled("kill_switch_race", false, &note, &seen.state)
        .await
        .expect_err("conflict");
    assert_eq!(refused.kind, ErrorKind::Conflict, "{}", refused.message);
    assert!(
        refused.message.contains("kill_switch_race"),
        "{}",
        refused.message
    );

    // Nothing was written: still on, and no note tag.
    assert!(client_enabled(server, "kill_switch_race").await);
    let tags = admin(
        server,
        "GET",
        "/api/admin/features/kill_switch_race/tags",
        None,
    )
    .await;
    assert_eq!(tags["tags"], json!([]));
}

fn assert_no_secret(text: &str) {
    for secret in [
        ADMIN_TOKEN,
        BACKEND_TOKEN,
        DEV_BACKEND_TOKEN,
        FRONTEND_TOKEN,
    ] {
        let hash = secret.rsplit('.').next().unwrap_or(secret);
        assert!(!text.contains(hash), "a token leaked into: {text}");
    }
}

async fn read_error(connection: &Connection, flag: &str) -> ProviderError {
    connection
        .source
        .read_flag(flag)
        .await
        .expect_err("an error")
}

#[tokio::test]
async fn errors_are_clear_named_and_never_carry_a_token() {
    let Some(server) = unleash_server::server() else {
        return;
    };
    let mut shown = Vec::new();
    let connection = prod(server, Access::ReadWrite);
    shown.push(format!("{connection:?}"));

    // Unknown flag: 404 from the Admin API and from the client API.
    let missing = read_error(&connection, "no_such_flag").await;
    assert_eq!(missing.kind, ErrorKind::NotFound);
    assert!(
        missing
            .message
            .starts_with("prod: read flag `no_such_flag`: "),
        "{}",
        missing.message
    );
    assert!(
        missing.message.contains("404 not found"),
        "{}",
        missing.message
    );
    let served = connection
        .source
        .served("no_such_flag")
        .await
        .expect_err("404");
    assert_eq!(served.kind, ErrorKind::NotFound);
    shown.push(missing.message);
    shown.push(served.message);

    // Bad token: 401.
    let bad = fields(
        &server.url,
        &[
            ("admin_token", "*:*.not-a-real-token-1234"),
            ("backend_token", BACKEND_TOKEN),
        ],
    );
    let connection_bad = provider::connect(
        &env_config("prod", &[]),
        Some(&bad),
        Access::ReadWrite,
        &network(5000),
    )
    .expect("connect");
    let unauthorized = connection_bad.source.list_flags().await.expect_err("401");
    assert_eq!(unauthorized.kind, ErrorKind::Auth);
    assert!(
        unauthorized.message.contains("401"),
        "{}",
        unauthorized.message
    );
    assert!(
        !unauthorized.message.contains("not-a-real-token-1234"),
        "{}",
        unauthorized.message
    );
    shown.push(unauthorized.message);

    // Wrong token type: a backend token on the Admin API gets 403.
    let wrong_type = fields(
        &server.url,
        &[
            ("read_token", BACKEND_TOKEN),
            ("backend_token", BACKEND_TOKEN),
        ],
    );
    let connection_wrong = provider::connect(
        &env_config("prod", &[]),
        Some(&wrong_type),
        Access::ReadWrite,
        &network(5000),
    )
    .expect("connect");
    assert!(
        connection_wrong.writer.is_none(),
        "no admin token, no writer"
    );
    assert_eq!(
        connection_wrong.read_only_reason.as_deref(),
        Some("no admin credential in vault kv/feature-flags/unleash/prod: read-only")
    );
    // States come from the client API (backend token): the read token is refused where it is
    // used, the first load's check of the project and environment.
    let forbidden = connection_wrong.source.list_flags().await.expect_err("403");
    assert_eq!(forbidden.kind, ErrorKind::Auth);
    assert!(
        forbidden.message.contains("403 forbidden"),
        "{}",
        forbidden.message
    );
    assert!(
        forbidden
            .message
            .contains("expected a different token type"),
        "Unleash's own reason is kept: {}",
        forbidden.message
    );
    shown.push(forbidden.message);
    // And a frontend token on the client API.
    let frontend = fields(
        &server.url,
        &[
            ("admin_token", ADMIN_TOKEN),
            ("backend_token", FRONTEND_TOKEN),
        ],
    );
    let connection_frontend = provider::connect(
        &env_config("prod", &[]),
        Some(&frontend),
        Access::ReadOnly,
        &network(5000),
    )
    .expect("connect");
    let frontend_err = connection_frontend
        .source
        .served("kill_switch_quiet")
        .await
        .expect_err("403");
    assert_eq!(frontend_err.kind, ErrorKind::Auth);
    shown.push(frontend_err.message);

    // A backend token for the other environment would verify against the wrong one.
    let other_env = fields(
        &server.url,
        &[
            ("admin_token", ADMIN_TOKEN),
            ("backend_token", DEV_BACKEND_TOKEN),
        ],
    );
    let mismatch = provider::connect(
        &env_config("prod", &[]),
        Some(&other_env),
        Access::ReadWrite,
        &network(5000),
    )
    .expect_err("wrong environment");
    assert!(
        mismatch.message.contains("`development`, not `production`"),
        "{}",
        mismatch.message
    );
    shown.push(mismatch.message);

    // Unmapped environment name: a config error naming what exists.
    let staging = provider::connect(
        &env_config("staging", &[]),
        Some(&fields(
            &server.url,
            &[("admin_token", ADMIN_TOKEN), ("backend_token", "*:*.x1")],
        )),
        Access::ReadWrite,
        &network(5000),
    )
    .expect_err("unmapped");
    assert!(staging.message.contains("`staging`"), "{}", staging.message);
    assert!(
        staging.message.contains("development, production"),
        "{}",
        staging.message
    );
    shown.push(staging.message);
    // Mapped to an environment this (open-source) Unleash does not have.
    let mapped = provider::connect(
        &env_config("staging", &[("environment", "staging")]),
        Some(&fields(
            &server.url,
            &[("admin_token", ADMIN_TOKEN), ("backend_token", "*:*.x1")],
        )),
        Access::ReadWrite,
        &network(5000),
    )
    .expect("connect");
    let no_env = mapped.source.list_flags().await.expect_err("no staging");
    assert_eq!(no_env.kind, ErrorKind::NotFound);
    assert!(
        no_env
            .message
            .contains("available: development, production"),
        "{}",
        no_env.message
    );
    shown.push(no_env.message);
    // Unknown project: refused, not an empty dashboard.
    let project = provider::connect(
        &env_config("prod", &[("project", "payments")]),
        Some(&fields(
            &server.url,
            &[
                ("admin_token", ADMIN_TOKEN),
                ("backend_token", BACKEND_TOKEN),
            ],
        )),
        Access::ReadWrite,
        &network(5000),
    )
    .expect("connect");
    let no_project = project.source.list_flags().await.expect_err("no project");
    assert!(
        no_project
            .message
            .contains("no project `payments` (known: default)"),
        "{}",
        no_project.message
    );
    shown.push(no_project.message);

    // A kill that fails is audited with the error and never echoes a token.
    let dir = tempfile::tempdir().expect("tempdir");
    let audit = AuditLog::open(&dir.path().join("audit.jsonl")).expect("audit");
    let seen = connection
        .source
        .read_flag("kill_switch_quiet")
        .await
        .expect("read");
    let mut request = vendor::flip_request("prod", &seen, false, "INC-2 try");
    request.flag = "no_such_flag".into();
    let flip_err = flip::execute(
        &request,
        &connection,
        &audit,
        &SystemClock,
        Duration::from_secs(2),
    )
    .await
    .expect_err("404");
    assert_eq!(flip_err.provider_kind(), Some(ErrorKind::NotFound));
    shown.push(flip_err.to_string());
    shown.push(format!("{:?}", audit.records().expect("records")));
    shown.push(format!("{bad:?}"));
    shown.push(format!(
        "{:?}",
        connection.source.history("kill_switch_quiet").await
    ));
    shown.push(format!("{:?}", connection.source.list_flags().await));

    for text in &shown {
        assert_no_secret(text);
    }
}

#[tokio::test]
async fn server_down_and_server_slow_fail_within_the_timeout() {
    let Some(server) = unleash_server::server() else {
        return;
    };
    // Down: nothing listens on this port.
    let down_url = format!("http://127.0.0.1:{}", support::free_port());
    let secrets = fields(
        &down_url,
        &[
            ("admin_token", ADMIN_TOKEN),
            ("backend_token", BACKEND_TOKEN),
        ],
    );
    let down = provider::connect(
        &env_config("prod", &[]),
        Some(&secrets),
        Access::ReadWrite,
        &network(800),
    )
    .expect("connect");
    let started = Instant::now();
    let err = down.source.list_flags().await.expect_err("down");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(err.kind, ErrorKind::Unreachable);
    assert!(err.message.contains("cannot connect"), "{}", err.message);
    assert!(err.message.contains(&down_url), "{}", err.message);
    assert_no_secret(&err.message);

    // Slow: a proxy in front of the real server that holds every connection 3 s first.
    let proxy = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let proxy_url = format!("http://{}", proxy.local_addr().expect("addr"));
    let upstream = server.url.trim_start_matches("http://").to_string();
    let accept = tokio::spawn(async move {
        while let Ok((mut inbound, _)) = proxy.accept().await {
            let upstream = upstream.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(3)).await;
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(upstream).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    let secrets = fields(
        &proxy_url,
        &[
            ("admin_token", ADMIN_TOKEN),
            ("backend_token", BACKEND_TOKEN),
        ],
    );
    let slow = provider::connect(
        &env_config("prod", &[]),
        Some(&secrets),
        Access::ReadWrite,
        &network(800),
    )
    .expect("connect");
    let started = Instant::now();
    let err = slow
        .source
        .read_flag("kill_switch_quiet")
        .await
        .expect_err("slow");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(700) && took < Duration::from_millis(2000),
        "{took:?}"
    );
    assert_eq!(err.kind, ErrorKind::Unreachable);
    assert!(err.message.contains("timed out"), "{}", err.message);
    assert!(
        err.message
            .starts_with("prod: read flag `kill_switch_quiet`: "),
        "{}",
        err.message
    );
    // A kill through the slow server: refused at the re-read, nothing audited as applied.
    let dir = tempfile::tempdir().expect("tempdir");
    let audit = AuditLog::open(&dir.path().join("audit.jsonl")).expect("audit");
    let seen = prod(server, Access::ReadOnly)
        .source
        .read_flag("kill_switch_quiet")
        .await
        .expect("read");
    let started = Instant::now();
    let flip_err = flip::execute(
        &vendor::flip_request("prod", &seen, false, "INC-3 slow"),
        &slow,
        &audit,
        &SystemClock,
        Duration::from_secs(2),
    )
    .await
    .expect_err("timeout");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(flip_err.provider_kind(), Some(ErrorKind::Unreachable));
    assert!(audit.records().expect("records").is_empty());
    accept.abort();
    assert!(client_enabled(server, "kill_switch_quiet").await);
}

/// The whole story with the real binary: credentials from a real Vault (OpenBao), the flags from
/// the real Unleash, `killswitch status` and `killswitch kill` as a script would run them.
#[test]
fn the_binary_kills_an_unleash_flag_with_credentials_from_vault() {
    if !support::openbao::available() {
        return;
    }
    let Some(server) = unleash_server::server() else {
        return;
    };
    let bao = OpenBao::start();
    let root = Some(support::openbao::ROOT_TOKEN);
    let (status, body) = bao.api(
        "POST",
        "/v1/sys/mounts/kv",
        root,
        Some(json!({"type": "kv", "options": {"version": "2"}})),
    );
    assert!((200..300).contains(&status), "{body}");
    let put = |path: &str, data: serde_json::Value| {
        let (status, body) = bao.api(
            "POST",
            &format!("/v1/kv/data/feature-flags/unleash/{path}"),
            root,
            Some(json!({ "data": data })),
        );
        assert_eq!(status, 200, "{body}");
    };
    put(
        "prod",
        json!({"api_url": format!("{}/api", server.url), "backend_token": BACKEND_TOKEN, "read_token": ADMIN_TOKEN}),
    );
    put("prod/admin", json!({"admin_token": ADMIN_TOKEN}));

    let home = Home::new();
    let config_dir = home.path().join("config/killswitch");
    std::fs::create_dir_all(&config_dir).expect("config dir");
    std::fs::write(
        config_dir.join("config.toml"),
        "[[environment]]\nname = \"prod\"\nprovider = \"unleash\"\n",
    )
    .expect("config");
    let run = |args: &[&str]| {
        let output = home
            .command()
            .args(args)
            .env("VAULT_ADDR", &bao.addr)
            .env("VAULT_TOKEN", support::openbao::ROOT_TOKEN)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run killswitch");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert_no_secret(&text);
        (output.status.code(), text)
    };

    let (code, text) = run(&["status", "--env", "prod", "--output", "json"]);
    assert_eq!(code, Some(0), "{text}");
    let report: serde_json::Value = serde_json::from_str(&text).expect("status json");
    let state = |flag: &str| {
        report["flags"]
            .as_array()
            .expect("flags")
            .iter()
            .find(|f| f["flag"] == flag)
            .map(|f| f["state"].as_str().unwrap_or_default().to_string())
            .unwrap_or_default()
    };
    assert_eq!(state("search_v2"), "ON 10%");
    assert_eq!(state("kill_switch_payments"), "SERVING");

    let note = "INC-5150 payments double-charging";
    let kill = [
        "kill",
        "kill_switch_payments",
        "--env",
        "prod",
        "--note",
        note,
        "--yes",
    ];
    let (code, text) = run(&kill);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("KILL applied"), "{text}");
    assert!(text.contains("Confirmed by what services see"), "{text}");
    assert!(text.contains("(the Unleash client API)"), "{text}");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    assert!(!runtime.block_on(client_enabled(server, "kill_switch_payments")));
    let audit = std::fs::read_to_string(home.audit_log()).expect("audit log");
    assert!(audit.contains(note), "{audit}");
    assert!(audit.contains("\"provider\":\"unleash\""), "{audit}");
    assert_no_secret(&audit);
    let tags = runtime.block_on(admin(
        server,
        "GET",
        "/api/admin/features/kill_switch_payments/tags",
        None,
    ));
    assert!(tags.to_string().contains(note), "{tags}");

    // Again: nothing to do (exit 3).
    let (code, text) = run(&kill);
    assert_eq!(code, Some(3), "{text}");
}

/// Unleash got the toggle and made it, but its answer was held back past the request timeout:
/// killswitch reads the flag again and reports the kill applied and confirmed, not a provider
/// error.
#[tokio::test]
async fn a_toggle_that_landed_but_lost_its_answer_is_reported_applied() {
    use support::faults::{Fault, FaultProxy};
    let Some(server) = unleash_server::server() else {
        return;
    };
    let flag = "kill_switch_lost_answer";
    let project = "/api/admin/projects/default/features";
    admin(
        server,
        "POST",
        project,
        Some(json!({"name": flag, "type": "kill-switch"})),
    )
    .await;
    admin(
        server,
        "POST",
        &format!("{project}/{flag}/environments/production/strategies"),
        Some(json!({"name": "default"})),
    )
    .await;
    admin(
        server,
        "POST",
        &format!("{project}/{flag}/environments/production/on"),
        None,
    )
    .await;
    let upstream = server
        .url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .expect("127.0.0.1 address");
    let proxy = FaultProxy::start(upstream);
    // Set before the first request: the fault is chosen when a connection is accepted, and the
    // toggle may reuse a connection the reads opened.
    proxy.set(Fault::lose_answer(&format!(
        "POST {project}/{flag}/environments/production/off"
    )));
    let secrets = fields(
        &proxy.url(),
        &[
            ("admin_token", ADMIN_TOKEN),
            ("backend_token", BACKEND_TOKEN),
        ],
    );
    let connection = provider::connect(
        &env_config("prod", &[]),
        Some(&secrets),
        Access::ReadWrite,
        &network(1000),
    )
    .expect("connect through the proxy");
    let seen = connection.source.read_flag(flag).await.expect("read");
    let dir = tempfile::tempdir().expect("tempdir");
    let log = AuditLog::open(&dir.path().join("audit.jsonl")).expect("audit");
    let outcome = flip::execute(
        &vendor::flip_request("prod", &seen, false, "INC-12 lost answer"),
        &connection,
        &log,
        &SystemClock,
        Duration::from_secs(5),
    )
    .await
    .expect("applied, not a provider error");
    let FlipOutcome::Applied {
        verification,
        lost_answer,
        to,
        ..
    } = outcome
    else {
        panic!("not applied: {outcome:?}");
    };
    assert!(
        lost_answer
            .as_deref()
            .is_some_and(|lost| lost.contains("timed out")),
        "{lost_answer:?}"
    );
    assert!(
        matches!(verification, Verification::Confirmed { .. }),
        "{verification:?}"
    );
    assert_eq!(to, "KILLED");
    assert!(!client_enabled(server, flag).await);
    let records = log.records().expect("records");
    assert_eq!(
        records.last().and_then(|r| r.result),
        Some(killswitch::audit::Result::Ok)
    );
}

/// Issue 22: the dashboard's states are the client API's bulk list (what SDKs poll), flag for
/// flag, including a strategy the summary cannot word as a percentage (shown as what it is).
#[tokio::test]
async fn dashboard_states_are_what_the_client_api_serves_for_every_flag() {
    let Some(server) = unleash_server::server() else {
        return;
    };
    // A flag served only to some IPs: no percentage, no "everyone".
    let name = "ip_allowlist_only";
    admin(
        server,
        "POST",
        "/api/admin/projects/default/features",
        Some(json!({"name": name, "type": "operational"})),
    )
    .await;
    admin(
        server,
        "POST",
        &format!("/api/admin/projects/default/features/{name}/environments/production/strategies"),
        Some(json!({"name": "remoteAddress", "parameters": {"IPs": "10.0.0.1"}})),
    )
    .await;
    admin(
        server,
        "POST",
        &format!("/api/admin/projects/default/features/{name}/environments/production/on"),
        None,
    )
    .await;

    let connection = prod(server, Access::ReadOnly);
    // The bulk list may lag a change by about a second (as SDKs see it): wait until it shows
    // the new flag switched on.
    let started = Instant::now();
    let flags = loop {
        let flags = connection.source.list_flags().await.expect("list");
        if flags.iter().any(|f| f.meta.key == name && f.state.enabled)
            || started.elapsed() > Duration::from_secs(5)
        {
            break flags;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let sdk: serde_json::Value = reqwest::Client::new()
        .get(format!(
            "{}/api/client/features?project=default",
            server.url
        ))
        .header("Authorization", BACKEND_TOKEN)
        .header("Unleash-Client-Spec", "5.1.0")
        .send()
        .await
        .expect("client API")
        .json()
        .await
        .expect("json");
    let served = sdk["features"].as_array().expect("features");
    let mut shown: Vec<&str> = flags.iter().map(|f| f.meta.key.as_str()).collect();
    let mut listed: Vec<&str> = served.iter().filter_map(|f| f["name"].as_str()).collect();
    shown.sort_unstable();
    listed.sort_unstable();
    assert_eq!(shown, listed);
    // Other tests in this binary flip the kill switches meanwhile: compare the flags nobody
    // writes (every shape of strategy the seed has) and this test's own.
    let stable = [
        "search_v2",
        "checkout_ab",
        "beta_banner",
        "legacy_off",
        name,
    ];
    for feature in served
        .iter()
        .filter(|f| stable.contains(&f["name"].as_str().unwrap_or_default()))
    {
        let key = feature["name"].as_str().expect("name");
        let flag = flags.iter().find(|f| f.meta.key == key).expect("shown");
        assert_eq!(
            Some(flag.state.enabled),
            feature["enabled"].as_bool(),
            "{key}"
        );
        // Every strategy that targets (constraints, segments, a non-rollout strategy) is an
        // override on the dashboard; a flag that is off shows none.
        let targeted = feature["strategies"]
            .as_array()
            .expect("strategies")
            .iter()
            .filter(|s| {
                s["constraints"].as_array().is_some_and(|c| !c.is_empty())
                    || s["segments"].as_array().is_some_and(|c| !c.is_empty())
                    || !matches!(s["name"].as_str(), Some("default" | "flexibleRollout"))
            })
            .count();
        let expected = if flag.state.enabled { targeted } else { 0 };
        assert_eq!(flag.state.overrides.len(), expected, "{key}: {flag:?}");
        // The same representation as the one-flag re-read: the versions agree.
        let again = connection.source.read_flag(key).await.expect("read");
        assert_eq!(again.state, flag.state, "{key}");
    }
    let ip = flags.iter().find(|f| f.meta.key == name).expect("new flag");
    assert!(ip.state.enabled);
    assert_eq!(
        ip.state.value,
        Some(json!(false)),
        "not guessed as everyone"
    );
    assert_eq!(ip.state.overrides.len(), 1);
    assert!(
        ip.state.overrides[0].target.contains("remoteAddress"),
        "{:?}",
        ip.state.overrides
    );
    // Segments come by id and are named from the bulk read.
    let beta = flags
        .iter()
        .find(|f| f.meta.key == "beta_banner")
        .expect("beta");
    assert!(
        beta.state
            .overrides
            .iter()
            .any(|o| o.target.contains("segment beta_users")),
        "{:?}",
        beta.state.overrides
    );
}

// ---- rate limits ------------------------------------------------------------------------------

/// A kill switch of its own, on in production, and a connection to Unleash through a fault
/// proxy. No request is made yet: a fault set now applies to every connection the test opens.
async fn rate_limit_rig(server: &Unleash, flag: &str) -> (support::faults::FaultProxy, Connection) {
    let project = "/api/admin/projects/default/features";
    let _ = ensure_kill_switch(server, project, flag).await;
    admin(
        server,
        "POST",
        &format!("{project}/{flag}/environments/production/on"),
        None,
    )
    .await;
    let upstream = server
        .url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .expect("127.0.0.1 address");
    let proxy = support::faults::FaultProxy::start(upstream);
    let secrets = fields(
        &proxy.url(),
        &[
            ("admin_token", ADMIN_TOKEN),
            ("backend_token", BACKEND_TOKEN),
        ],
    );
    let connection = vendor::connect(
        &env_config("prod", &[]),
        &secrets,
        Access::ReadWrite,
        &network(2000),
    );
    (proxy, connection)
}

/// Creates `flag` (a kill switch with the default strategy in production) unless it exists.
async fn ensure_kill_switch(server: &Unleash, project: &str, flag: &str) -> Option<()> {
    let exists = reqwest::Client::new()
        .get(format!("{}{project}/{flag}", server.url))
        .header("Authorization", ADMIN_TOKEN)
        .send()
        .await
        .ok()?
        .status()
        .is_success();
    if !exists {
        admin(
            server,
            "POST",
            project,
            Some(json!({"name": flag, "type": "kill-switch"})),
        )
        .await;
        admin(
            server,
            "POST",
            &format!("{project}/{flag}/environments/production/strategies"),
            Some(json!({"name": "default"})),
        )
        .await;
    }
    Some(())
}

#[tokio::test]
async fn a_rate_limited_read_is_waited_out_and_sent_again() {
    use support::faults::Fault;
    let Some(server) = unleash_server::server() else {
        return;
    };
    let flag = "kill_switch_rate_limited_read";
    let (proxy, connection) = rate_limit_rig(server, flag).await;
    // Unleash's limiter answers 429 with `Retry-After` in seconds.
    proxy.set(Fault::rate_limit_once(
        &format!("GET /api/client/features/{flag}"),
        1,
    ));
    let seen = connection
        .source
        .read_flag(flag)
        .await
        .expect("read after the wait");
    assert!(proxy.struck(), "the read was throttled once");
    assert_eq!(cell_text(seen.meta.kind, &seen.state), "SERVING");
}

#[tokio::test]
async fn a_long_rate_limit_on_a_read_is_not_waited_for_and_says_when_to_retry() {
    use support::faults::Fault;
    let Some(server) = unleash_server::server() else {
        return;
    };
    let flag = "kill_switch_rate_limited_long";
    let (proxy, connection) = rate_limit_rig(server, flag).await;
    proxy.set(Fault::rate_limit_once(
        &format!("GET /api/client/features/{flag}"),
        3600,
    ));
    let err = connection
        .source
        .read_flag(flag)
        .await
        .expect_err("rate limited");
    assert!(proxy.struck());
    assert_eq!(err.kind, ErrorKind::RateLimited);
    for part in [
        "answered 429 rate limited: Too many requests",
        "retry after 3600.0s (at ",
        "not waited for: a read waits at most 2.0s",
    ] {
        assert!(err.message.contains(part), "{part}: {}", err.message);
    }
}

#[tokio::test]
async fn a_rate_limited_write_is_not_retried_and_is_audited_as_failed() {
    use support::faults::Fault;
    let Some(server) = unleash_server::server() else {
        return;
    };
    let flag = "kill_switch_rate_limited_write";
    let (proxy, connection) = rate_limit_rig(server, flag).await;
    // The toggle gets a 429 asking for one second: a write does not wait, whatever the wait.
    // Set before the first request: the fault is chosen when a connection is accepted, and the
    // toggle may reuse a connection the reads opened.
    proxy.set(Fault::rate_limit_once(
        &format!("POST /api/admin/projects/default/features/{flag}/environments/production/off"),
        1,
    ));
    let seen = connection.source.read_flag(flag).await.expect("read");
    let dir = tempfile::tempdir().expect("tempdir");
    let log = AuditLog::open(&dir.path().join("audit.jsonl")).expect("audit");
    let err = flip::execute(
        &vendor::flip_request("prod", &seen, false, "INC-5 throttled"),
        &connection,
        &log,
        &SystemClock,
        Duration::from_secs(5),
    )
    .await
    .expect_err("rate limited");
    assert!(proxy.struck(), "the toggle was throttled");
    assert_eq!(err.provider_kind(), Some(ErrorKind::RateLimited), "{err}");
    let text = err.to_string();
    assert!(text.contains("retry after 1.0s"), "{text}");
    assert!(
        text.contains("killswitch never sends a write twice"),
        "{text}"
    );
    // Not sent again: the flag is still on for SDKs a second later.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(client_enabled(server, flag).await);
    let records = log.records().expect("records");
    assert!(
        records
            .last()
            .and_then(|r| r.error.clone())
            .is_some_and(|e| e.contains("429")),
        "{records:?}"
    );
}
