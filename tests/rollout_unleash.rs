//! Rollouts on a real Unleash 8.2.0 (`tests/support/unleash.rs`), checked with what services
//! run: the Unleash Python SDK (`tests/sdk/unleash_rollout.py`) over 1,000 userIds. Stepping up
//! keeps every user who had the flag, stepping back gives exactly the same users, 0 none, 100
//! all, everyone-to-variant sends every user to it; stickiness and groupId are kept; undo
//! reverts and is refused after a change made behind its back.

mod support;
#[path = "support/unleash.rs"]
mod unleash_server;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use killswitch::audit::{AuditLog, Phase};
use killswitch::clock::SystemClock;
use killswitch::commands::undo;
use killswitch::config::{EnvironmentConfig, NetworkConfig, ProviderKind};
use killswitch::flip::{self, Change, FlipError, FlipOutcome, FlipRequest, Verification};
use killswitch::model::cell_text;
use killswitch::provider::{self, Access, Connection, ErrorKind};
use killswitch::rollout::RolloutTarget;
use killswitch::secret::{Secret, SecretFields};
use serde_json::{Value, json};
use support::sdk::{self, KEYS};
use unleash_server::{ADMIN_TOKEN, BACKEND_TOKEN, Unleash, admin};

fn prod(server: &Unleash) -> Connection {
    let mut secrets = SecretFields::new("vault kv/feature-flags/unleash/prod");
    secrets.insert("api_url", Secret::new(&server.url));
    secrets.insert("admin_token", Secret::new(ADMIN_TOKEN));
    secrets.insert("backend_token", Secret::new(BACKEND_TOKEN));
    let env = EnvironmentConfig {
        name: "prod".into(),
        provider: ProviderKind::Unleash,
        protected: true,
        file: None,
        vault_mount: "kv".into(),
        vault_path: "feature-flags/unleash/prod".into(),
        options: BTreeMap::new(),
    };
    let network = NetworkConfig {
        connect_timeout: Duration::from_millis(1000),
        request_timeout: Duration::from_millis(5000),
        verify_timeout: Duration::from_secs(10),
    };
    provider::connect(&env, Some(&secrets), Access::ReadWrite, &network).expect("connect prod")
}

/// A flag of its own for each test, in production, with these strategies, switched on.
async fn flag(server: &Unleash, name: &str, kind: &str, strategies: &[Value]) {
    admin(
        server,
        "POST",
        "/api/admin/projects/default/features",
        Some(json!({"name": name, "type": kind})),
    )
    .await;
    for strategy in strategies {
        admin(
            server,
            "POST",
            &format!(
                "/api/admin/projects/default/features/{name}/environments/production/strategies"
            ),
            Some(strategy.clone()),
        )
        .await;
    }
    admin(
        server,
        "POST",
        &format!("/api/admin/projects/default/features/{name}/environments/production/on"),
        None,
    )
    .await;
    // Unleash caches the list SDKs poll for up to about a second: wait until it has the flag
    // as set up, so the first SDK read is of this setup.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let list: Value = reqwest::Client::new()
            .get(format!("{}/api/client/features", server.url))
            .header("Authorization", BACKEND_TOKEN)
            .send()
            .await
            .expect("client API")
            .json()
            .await
            .expect("client API json");
        let ready = list["features"].as_array().is_some_and(|features| {
            features.iter().any(|f| {
                f["name"] == name
                    && f["enabled"] == true
                    && f["strategies"].as_array().map(Vec::len) == Some(strategies.len().max(1))
            })
        });
        if ready {
            // The SDK asks with its own client-spec header, which Unleash caches apart: give
            // that copy its second too.
            tokio::time::sleep(Duration::from_millis(1200)).await;
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{name} never showed in the client list"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn gradual(name: &str, percent: u32) -> Value {
    json!({"name": "flexibleRollout", "parameters": {"rollout": percent.to_string(), "stickiness": "default", "groupId": name}})
}

async fn strategies(server: &Unleash, name: &str) -> Value {
    admin(
        server,
        "GET",
        &format!("/api/admin/projects/default/features/{name}/environments/production/strategies"),
        None,
    )
    .await
}

/// Runs the one transaction for a rollout, as the CLI and the dashboard do.
async fn step(
    connection: &Connection,
    audit: &AuditLog,
    name: &str,
    target: RolloutTarget,
    note: &str,
) -> Result<FlipOutcome, FlipError> {
    change(connection, audit, name, Change::Rollout { target }, note).await
}

async fn change(
    connection: &Connection,
    audit: &AuditLog,
    name: &str,
    change: Change,
    note: &str,
) -> Result<FlipOutcome, FlipError> {
    let seen = connection.source.read_flag(name).await.expect("read");
    let request = FlipRequest {
        env: "prod".into(),
        flag: name.into(),
        kind: seen.meta.kind,
        change,
        seen: seen.state.clone(),
        note: note.into(),
        operator: "alice@bastion".into(),
    };
    flip::execute(
        &request,
        connection,
        audit,
        &SystemClock,
        Duration::from_secs(10),
    )
    .await
}

/// Panics unless the outcome is applied and confirmed by what services see; returns `to`.
fn confirmed(outcome: Result<FlipOutcome, FlipError>) -> String {
    match outcome {
        Ok(FlipOutcome::Applied {
            verification: Verification::Confirmed { .. },
            to,
            ..
        }) => to,
        other => panic!("expected applied and confirmed, got {other:?}"),
    }
}

/// The users (indexes) the Unleash SDK serves `name` to, after a fresh poll.
fn users(server: &Unleash, name: &str) -> BTreeSet<usize> {
    sdk::unleash_users(&server.url, BACKEND_TOKEN, name)
        .0
        .into_iter()
        .enumerate()
        .filter(|(_, on)| *on)
        .map(|(index, _)| index)
        .collect()
}

fn near(count: usize, percent: usize) -> bool {
    count.abs_diff(KEYS * percent / 100) <= KEYS / 15
}

fn percent(percent: f64) -> RolloutTarget {
    RolloutTarget::Percent { percent }
}

#[tokio::test(flavor = "multi_thread")]
async fn canary_steps_are_sticky_for_the_unleash_sdk_and_undo_is_guarded() {
    let Some(server) = unleash_server::server() else {
        return;
    };
    if !sdk::available() {
        return;
    }
    let name = "ro_canary";
    flag(server, name, "release", &[gradual(name, 10)]).await;
    let before = strategies(server, name).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let audit = AuditLog::open(&dir.path().join("audit.jsonl")).expect("audit");
    let connection = prod(server);

    let at_10 = users(server, name);
    assert!(near(at_10.len(), 10), "10%: {} users", at_10.len());

    assert_eq!(
        confirmed(
            step(
                &connection,
                &audit,
                name,
                percent(50.0),
                "CHG-1 canary to 50%"
            )
            .await
        ),
        "ON 50%"
    );
    let at_50 = users(server, name);
    assert!(near(at_50.len(), 50), "50%: {} users", at_50.len());
    let flapped: Vec<&usize> = at_10.difference(&at_50).collect();
    assert!(
        flapped.is_empty(),
        "{} users had the canary at 10% and lost it at 50%, e.g. user-{}",
        flapped.len(),
        flapped[0]
    );
    // Only the rollout moved: stickiness and groupId are what they were.
    let after = strategies(server, name).await;
    assert_eq!(after[0]["parameters"]["rollout"], "50");
    for kept in ["stickiness", "groupId"] {
        assert_eq!(
            after[0]["parameters"][kept], before[0]["parameters"][kept],
            "{kept}"
        );
    }
    assert_eq!(
        after[0]["id"], before[0]["id"],
        "the same strategy, changed in place"
    );

    confirmed(
        step(
            &connection,
            &audit,
            name,
            percent(10.0),
            "INC-5 back to 10%",
        )
        .await,
    );
    assert_eq!(users(server, name), at_10, "10% again is the same users");
    confirmed(step(&connection, &audit, name, percent(0.0), "INC-5 abort").await);
    assert!(users(server, name).is_empty(), "0% serves nobody");
    confirmed(step(&connection, &audit, name, percent(100.0), "CHG-2 everyone").await);
    assert_eq!(users(server, name).len(), KEYS, "100% serves everyone");
    confirmed(step(&connection, &audit, name, percent(10.0), "CHG-3 first step").await);
    assert_eq!(
        users(server, name),
        at_10,
        "after 0 and 100, 10% is the same users"
    );
    // Unleash's SDK reads the rollout as a whole number ("12.5" serves nobody): a finer share
    // is a usage error before anything is written, and the write refuses it too.
    let writer = connection.writer.clone().expect("writer");
    let choices = writer
        .rollout_choices(name)
        .await
        .expect("choices")
        .expect("said");
    assert!(choices.check(&percent(12.5)).is_err());
    let err = step(&connection, &audit, name, percent(12.5), "CHG-3b")
        .await
        .expect_err("refused");
    assert_eq!(err.provider_kind(), Some(ErrorKind::Refused), "{err}");
    assert_eq!(
        strategies(server, name).await[0]["parameters"]["rollout"],
        "10"
    );

    // Audit records carry the cells, the target, the one before and the note.
    let records = audit.records().expect("records");
    let abort = records
        .iter()
        .find(|r| r.phase == Phase::Outcome && r.note == "INC-5 abort")
        .expect("the abort's outcome");
    assert_eq!(abort.action, "rollout");
    assert_eq!(
        (abort.from.as_str(), abort.to.as_str()),
        ("ON 10%", "ON 0%")
    );
    assert_eq!(abort.rollout, Some(percent(0.0)));
    assert_eq!(abort.previous, Some(percent(10.0)));
    // The note reached Unleash as a tag.
    let tags = admin(
        server,
        "GET",
        &format!("/api/admin/features/{name}/tags"),
        None,
    )
    .await;
    assert!(tags.to_string().contains("INC-5 abort"), "{tags}");

    // Undo: the last change (10%) reverts to the one before (100%)...
    confirmed(step(&connection, &audit, name, percent(50.0), "CHG-4 50%").await);
    let last = audit
        .last_change("prod", name)
        .expect("log")
        .expect("a change");
    let now = connection.source.read_flag(name).await.expect("read");
    assert!(undo::still_as_left(&last, &now));
    let back = undo::reverse(&last).expect("reversible");
    confirmed(
        change(
            &connection,
            &audit,
            name,
            back,
            &undo::undo_note("INC-6", &last),
        )
        .await,
    );
    assert_eq!(
        users(server, name),
        at_10,
        "undo of 10% -> 50% gives the same users"
    );
    // ...and after someone moves it in Unleash, undo is refused.
    let last = audit
        .last_change("prod", name)
        .expect("log")
        .expect("a change");
    let id = after[0]["id"].as_str().expect("id");
    admin(
        server,
        "PATCH",
        &format!(
            "/api/admin/projects/default/features/{name}/environments/production/strategies/{id}"
        ),
        Some(json!([{"op": "replace", "path": "/parameters/rollout", "value": "30"}])),
    )
    .await;
    let moved = connection.source.read_flag(name).await.expect("read");
    assert_eq!(cell_text(moved.meta.kind, &moved.state), "ON 30%");
    assert!(
        !undo::still_as_left(&last, &moved),
        "a move behind its back is seen"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn everyone_to_a_variant_and_a_segment_only_flag_gets_a_default_share() {
    let Some(server) = unleash_server::server() else {
        return;
    };
    if !sdk::available() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let audit = AuditLog::open(&dir.path().join("audit.jsonl")).expect("audit");
    let connection = prod(server);

    let ab = "ro_ab";
    let mut split = gradual(ab, 100);
    split["variants"] = json!([
        {"name": "control", "weight": 333, "weightType": "variable", "stickiness": "default"},
        {"name": "model_v3a", "weight": 333, "weightType": "variable", "stickiness": "default",
         "payload": {"type": "string", "value": "v3a"}},
        {"name": "model_v3b", "weight": 334, "weightType": "variable", "stickiness": "default"},
    ]);
    flag(server, ab, "experiment", &[split]).await;
    let (_, before) = sdk::unleash_users(&server.url, BACKEND_TOKEN, ab);
    assert_eq!(
        before.iter().collect::<BTreeSet<_>>().len(),
        3,
        "three-way split"
    );
    let choices = connection
        .writer
        .as_ref()
        .expect("writer")
        .rollout_choices(ab)
        .await
        .expect("choices")
        .expect("Unleash says");
    assert!(!choices.percent, "a split is not one percentage");
    assert_eq!(choices.variants.len(), 3);
    let to = confirmed(
        step(
            &connection,
            &audit,
            ab,
            RolloutTarget::Variant {
                variant: "model_v3a".into(),
            },
            "EXP-9 v3a wins",
        )
        .await,
    );
    assert_eq!(to, "model_v3a");
    let (enabled, variants) = sdk::unleash_users(&server.url, BACKEND_TOKEN, ab);
    assert!(enabled.iter().all(|on| *on));
    assert!(
        variants.iter().all(|v| v == "model_v3a"),
        "every user gets model_v3a"
    );
    let kept = strategies(server, ab).await;
    let payload = kept[0]["variants"]
        .as_array()
        .and_then(|all| all.iter().find(|v| v["name"] == "model_v3a"))
        .map(|v| v["payload"].clone());
    assert_eq!(
        payload,
        Some(json!({"type": "string", "value": "v3a"})),
        "payload kept"
    );

    // On for a constraint only: the default audience gets a new gradual rollout, the
    // constrained strategy stays.
    let dark = "ro_dark";
    let mut insiders = gradual(dark, 100);
    insiders["constraints"] =
        json!([{"contextName": "userId", "operator": "IN", "values": ["user-1", "user-2"]}]);
    flag(server, dark, "release", &[insiders]).await;
    assert_eq!(users(server, dark), BTreeSet::from([1, 2]));
    confirmed(
        step(
            &connection,
            &audit,
            dark,
            percent(10.0),
            "CHG-8 dark launch 10%",
        )
        .await,
    );
    let at_10 = users(server, dark);
    assert!(at_10.contains(&1) && at_10.contains(&2), "insiders keep it");
    assert!(near(at_10.len(), 10), "{} users", at_10.len());
    let now = strategies(server, dark).await;
    assert_eq!(now.as_array().map(Vec::len), Some(2), "{now}");
    assert_eq!(now[1]["parameters"]["groupId"], dark);
    confirmed(step(&connection, &audit, dark, percent(50.0), "CHG-9 50%").await);
    assert!(
        at_10.is_subset(&users(server, dark)),
        "nobody loses it from 10% to 50%"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_default_strategy_or_a_switched_off_environment_is_refused_naming_what_is_there() {
    let Some(server) = unleash_server::server() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let audit = AuditLog::open(&dir.path().join("audit.jsonl")).expect("audit");
    let connection = prod(server);
    let standard = "ro_standard";
    flag(server, standard, "release", &[json!({"name": "default"})]).await;
    let before = strategies(server, standard).await;
    let err = step(&connection, &audit, standard, percent(10.0), "CHG-10")
        .await
        .expect_err("refused");
    assert_eq!(err.provider_kind(), Some(ErrorKind::Refused), "{err}");
    let message = err.to_string();
    assert!(message.contains("`default` strategy"), "{message}");
    assert!(message.contains("nothing was changed"), "{message}");
    assert_eq!(strategies(server, standard).await, before, "unchanged");

    let off = "ro_off";
    flag(server, off, "release", &[gradual(off, 10)]).await;
    admin(
        server,
        "POST",
        &format!("/api/admin/projects/default/features/{off}/environments/production/off"),
        None,
    )
    .await;
    let err = step(&connection, &audit, off, percent(50.0), "CHG-11")
        .await
        .expect_err("refused");
    assert!(err.to_string().contains("switched off"), "{err}");
    assert_eq!(
        strategies(server, off).await[0]["parameters"]["rollout"],
        "10"
    );
}
