//! Flagsmith rollouts through `flip::execute` against the fake Flagsmith API, checked with what
//! services run: flagsmith-python in local evaluation mode (it downloads the environment
//! document and evaluates segments and allocations itself) over 1,000 identities.

#[path = "support/flagsmith_fake.rs"]
mod flagsmith_fake;
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use flagsmith_fake::{ADMIN_TOKEN, FakeFlagsmith};
use killswitch::audit::{AuditLog, Phase};
use killswitch::clock::SystemClock;
use killswitch::config::{EnvironmentConfig, NetworkConfig, ProviderKind};
use killswitch::flip::{self, Change, FlipError, FlipOutcome, FlipRequest};
use killswitch::provider::{self, Access, Connection, ErrorKind};
use killswitch::rollout::RolloutTarget;
use killswitch::secret::{Secret, SecretFields};
use serde_json::{Value, json};
use support::sdk;
use support::vendor::{self, assert_applied, percent, variant};

const CANARY: &str = "checkout_stripe_payment_intents_v2024_11";
const AB_TEST: &str = "recommendations_ab_test_model_v3";

fn network() -> NetworkConfig {
    NetworkConfig {
        connect_timeout: Duration::from_millis(500),
        request_timeout: Duration::from_millis(1500),
        verify_timeout: Duration::from_secs(3),
    }
}

fn connect(fake: &FakeFlagsmith, env: &str) -> Connection {
    connect_at(fake, &fake.url, env)
}

/// Connects to `url` (the fake, or a fault proxy in front of it).
fn connect_at(fake: &FakeFlagsmith, url: &str, env: &str) -> Connection {
    let config = EnvironmentConfig {
        name: env.to_string(),
        provider: ProviderKind::Flagsmith,
        protected: env == "prod",
        file: None,
        vault_mount: "kv".into(),
        vault_path: format!("feature-flags/flagsmith/{env}"),
        options: BTreeMap::new(),
    };
    let mut fields = SecretFields::new("vault kv/feature-flags/flagsmith/test");
    fields.insert("api_url", Secret::new(format!("{url}/api/v1/")));
    fields.insert("environment_key", Secret::new(fake.env(env).server_key));
    fields.insert("admin_token", Secret::new(ADMIN_TOKEN));
    provider::connect(&config, Some(&fields), Access::ReadWrite, &network()).expect("connect")
}

async fn rollout(
    connection: &Connection,
    log: &AuditLog,
    flag: &str,
    target: RolloutTarget,
    note: &str,
) -> Result<FlipOutcome, FlipError> {
    vendor::rollout(
        connection,
        log,
        flag,
        target,
        note,
        network().verify_timeout,
    )
    .await
}

/// flagsmith-python (local evaluation) over 1,000 identities, off the runtime the fake runs on.
async fn evaluate(fake: &FakeFlagsmith, env: &str, flag: &str) -> Vec<(bool, Value)> {
    let url = format!("{}/api/v1/", fake.url);
    let key = fake.env(env).server_key;
    let flag = flag.to_string();
    tokio::task::spawn_blocking(move || sdk::flagsmith_identities(&url, &key, &flag))
        .await
        .expect("the SDK run")
}

/// The identities flagsmith-python (local evaluation) serves `flag` enabled to.
async fn enabled_identities(fake: &FakeFlagsmith, env: &str, flag: &str) -> BTreeSet<usize> {
    evaluate(fake, env, flag)
        .await
        .iter()
        .enumerate()
        .filter(|(_, (enabled, _))| *enabled)
        .map(|(index, _)| index)
        .collect()
}

/// The distinct values (as JSON text) flagsmith-python serves `flag` to the identities.
async fn values(fake: &FakeFlagsmith, env: &str, flag: &str) -> BTreeSet<String> {
    evaluate(fake, env, flag)
        .await
        .into_iter()
        .map(|(_, value)| value.to_string())
        .collect()
}

/// Rule and condition ids of a segment as the Admin API holds it.
fn segment_ids(fake: &FakeFlagsmith, id: u64) -> Vec<u64> {
    fn walk(rules: &Value, into: &mut Vec<u64>) {
        for rule in rules.as_array().into_iter().flatten() {
            into.extend(rule["id"].as_u64());
            for condition in rule["conditions"].as_array().into_iter().flatten() {
                into.extend(condition["id"].as_u64());
            }
            walk(&rule["rules"], into);
        }
    }
    let state = fake.state.lock().expect("fake state");
    let segment = state
        .segments
        .iter()
        .find(|s| s["id"] == id)
        .expect("segment");
    let mut ids = vec![id];
    walk(&segment["rules"], &mut ids);
    ids
}

fn segment_percentage_in(fake: &FakeFlagsmith, env: &str) -> Value {
    let document = fake.env(env).document;
    let segment = document["project"]["segments"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == "stripe_pi_rollout_10pct"))
        .cloned()
        .expect("segment in the document");
    segment["rules"][0]["rules"][0]["conditions"][0]["value"].clone()
}

fn allocation_rows(fake: &FakeFlagsmith, env: &str) -> Vec<(u64, f64)> {
    let document = fake.env(env).document;
    document["feature_states"]
        .as_array()
        .and_then(|states| states.iter().find(|fs| fs["feature"]["name"] == AB_TEST))
        .and_then(|fs| fs["multivariate_feature_state_values"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .map(|mv| {
            (
                mv["id"].as_u64().unwrap_or_default(),
                mv["percentage_allocation"].as_f64().unwrap_or(-1.0),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_segment_canary_steps_up_keeps_its_users_steps_back_to_the_same_ones_and_aborts() {
    if !sdk::available() {
        return;
    }
    let fake = FakeFlagsmith::open_source().await;
    let prod = connect(&fake, "prod");
    let dir = tempfile::tempdir().expect("tempdir");
    let log = AuditLog::open(&dir.path().join("audit.jsonl")).expect("audit log");
    let ids_before = segment_ids(&fake, 2);

    let at_10 = enabled_identities(&fake, "prod", CANARY).await;
    assert!(
        (50..=150).contains(&at_10.len()),
        "10% of 1000 identities, got {}",
        at_10.len()
    );

    // The segment is project-wide: staging overrides with it too, dev does not.
    let writer = prod.writer.as_ref().expect("writable");
    let seen = prod.source.read_state(CANARY).await.expect("read");
    let shared = writer
        .rollout_shared_with(CANARY, &percent(50.0), &seen)
        .await
        .expect("shared with");
    assert_eq!(shared, vec!["staging".to_string()]);
    // A multivariate rollout stays in its environment.
    let seen_ab = prod.source.read_state(AB_TEST).await.expect("read");
    let shared = writer
        .rollout_shared_with(AB_TEST, &variant("model_b"), &seen_ab)
        .await
        .expect("shared with");
    assert!(shared.is_empty(), "{shared:?}");

    // What the dialog and the CLI say before asking.
    let shown = prod.source.read_flag(CANARY).await.expect("read");
    assert_eq!(
        flip::describe_change(
            shown.meta.kind,
            CANARY,
            "prod",
            &shown.state,
            &Change::Rollout {
                target: percent(50.0)
            }
        ),
        format!("ROLLOUT {CANARY} in prod: ON 10% (1 seg) -> ON 50% (1 seg)")
    );
    let outcome = rollout(&prod, &log, CANARY, percent(50.0), "INC-17 step up").await;
    assert_applied(&outcome);
    let at_50 = enabled_identities(&fake, "prod", CANARY).await;
    assert!(
        (400..=600).contains(&at_50.len()),
        "50% of 1000 identities, got {}",
        at_50.len()
    );
    eprintln!(
        "flagsmith-python (local evaluation): {} of 1000 get the canary at 10%, {} at 50%",
        at_10.len(),
        at_50.len()
    );
    let lost: Vec<&usize> = at_10.difference(&at_50).collect();
    assert!(
        lost.is_empty(),
        "identities lost the feature on 10 -> 50: {lost:?}"
    );
    assert_eq!(segment_percentage_in(&fake, "prod"), json!("50"));
    assert_eq!(
        segment_percentage_in(&fake, "staging"),
        json!("50"),
        "segments are project-wide"
    );
    assert_eq!(segment_ids(&fake, 2), ids_before, "ids kept in place");

    let outcome = rollout(&prod, &log, CANARY, percent(10.0), "INC-17 step back").await;
    assert_applied(&outcome);
    assert_eq!(enabled_identities(&fake, "prod", CANARY).await, at_10);

    let outcome = rollout(&prod, &log, CANARY, percent(0.0), "INC-17 abort").await;
    assert_applied(&outcome);
    assert!(enabled_identities(&fake, "prod", CANARY).await.is_empty());

    // Asked again: nothing to do.
    let outcome = rollout(&prod, &log, CANARY, percent(0.0), "INC-17 abort again").await;
    assert!(
        matches!(outcome, Ok(FlipOutcome::AlreadyInState { .. })),
        "{outcome:?}"
    );

    let records = log.records().expect("records");
    let outcomes: Vec<_> = records
        .iter()
        .filter(|r| r.phase == Phase::Outcome && r.action == "rollout")
        .collect();
    // "Already there" writes nothing to the log.
    assert_eq!(outcomes.len(), 3, "{outcomes:#?}");
    let steps: Vec<(Option<RolloutTarget>, Option<RolloutTarget>, &str)> = outcomes
        .iter()
        .map(|r| (r.rollout.clone(), r.previous.clone(), r.note.as_str()))
        .collect();
    assert_eq!(
        steps,
        vec![
            (Some(percent(50.0)), Some(percent(10.0)), "INC-17 step up"),
            (Some(percent(10.0)), Some(percent(50.0)), "INC-17 step back"),
            (Some(percent(0.0)), Some(percent(10.0)), "INC-17 abort"),
        ]
    );
    let intents: Vec<_> = records
        .iter()
        .filter(|r| r.phase == Phase::Intent && r.action == "rollout")
        .collect();
    assert_eq!(intents.len(), 3);
    let cells: Vec<(&str, &str)> = intents
        .iter()
        .map(|r| (r.from.as_str(), r.to.as_str()))
        .collect();
    assert_eq!(
        cells,
        vec![
            ("ON 10% (1 seg)", "ON 50% (1 seg)"),
            ("ON 50% (1 seg)", "ON 10% (1 seg)"),
            ("ON 10% (1 seg)", "ON 0% (1 seg)"),
        ]
    );
    assert_eq!(intents[0].rollout, Some(percent(50.0)));
    assert_eq!(intents[0].previous, Some(percent(10.0)));
}

#[tokio::test]
async fn an_ab_test_ends_with_everyone_on_one_variant_keeping_the_allocation_rows() {
    if !sdk::available() {
        return;
    }
    let fake = FakeFlagsmith::open_source().await;
    let prod = connect(&fake, "prod");
    let dir = tempfile::tempdir().expect("tempdir");
    let log = AuditLog::open(&dir.path().join("audit.jsonl")).expect("audit log");
    assert_eq!(
        values(&fake, "prod", AB_TEST).await.len(),
        3,
        "before: a 33/33/34 split"
    );
    let rows_before: Vec<u64> = allocation_rows(&fake, "prod").iter().map(|r| r.0).collect();

    let outcome = rollout(
        &prod,
        &log,
        AB_TEST,
        variant("model_b"),
        "INC-17 model_b wins",
    )
    .await;
    assert_applied(&outcome);
    assert_eq!(
        values(&fake, "prod", AB_TEST).await,
        BTreeSet::from([json!("model_b").to_string()])
    );
    assert_eq!(
        allocation_rows(&fake, "prod"),
        vec![
            (rows_before[0], 0.0),
            (rows_before[1], 100.0),
            (rows_before[2], 0.0)
        ]
    );
    let outcome = rollout(
        &prod,
        &log,
        AB_TEST,
        variant("control"),
        "INC-17 back to control",
    )
    .await;
    assert_applied(&outcome);
    assert_eq!(
        values(&fake, "prod", AB_TEST).await,
        BTreeSet::from([json!("control").to_string()])
    );
    let records = log.records().expect("records");
    let last = records
        .iter()
        .rev()
        .find(|r| r.phase == Phase::Outcome)
        .expect("outcome");
    assert_eq!(last.rollout, Some(variant("control")));
    assert_eq!(last.previous, Some(variant("model_b")));
    assert_eq!(last.note, "INC-17 back to control");
}

#[tokio::test]
async fn in_a_versioned_environment_the_variant_is_a_new_version_carrying_the_note() {
    if !sdk::available() {
        return;
    }
    let fake = FakeFlagsmith::open_source().await;
    let staging = connect(&fake, "staging");
    let dir = tempfile::tempdir().expect("tempdir");
    let log = AuditLog::open(&dir.path().join("audit.jsonl")).expect("audit log");
    let outcome = rollout(
        &staging,
        &log,
        AB_TEST,
        variant("model_c"),
        "INC-17 ship model_c",
    )
    .await;
    assert_applied(&outcome);
    assert_eq!(
        values(&fake, "staging", AB_TEST).await,
        BTreeSet::from([json!("model_c").to_string()])
    );
    let versions = fake.env("staging").versions;
    let (feature, newest) = versions.first().expect("a version");
    assert_eq!(*feature, 4);
    let description = newest["description"].as_str().unwrap_or_default();
    assert!(
        description.starts_with("INC-17 ship model_c (by alice@bastion via killswitch, audit "),
        "{description}"
    );
    assert!(
        !fake
            .requests()
            .iter()
            .any(|(method, path, _)| method == "PUT" && path.contains("featurestates")),
        "no classic write in a versioned environment"
    );
}

#[tokio::test]
async fn what_flagsmith_cannot_express_is_refused_and_changes_nothing() {
    let fake = FakeFlagsmith::open_source().await;
    let prod = connect(&fake, "prod");
    let dir = tempfile::tempdir().expect("tempdir");
    let log = AuditLog::open(&dir.path().join("audit.jsonl")).expect("audit log");
    let document = fake.env("prod").document;
    let cases = [
        (AB_TEST, percent(50.0), "multivariate"),
        (AB_TEST, variant("model_z"), "no variant `model_z`"),
        (CANARY, variant("model_b"), "not a multivariate"),
        // On for everyone: no segment decides who gets it.
        ("kill_switch_checkout", percent(50.0), "on for everyone"),
    ];
    for (flag, target, words) in cases {
        let outcome = rollout(&prod, &log, flag, target, "INC-17 refused").await;
        match outcome {
            Err(FlipError::Provider { error, .. }) => {
                assert_eq!(error.kind, ErrorKind::Refused, "{error:?}");
                assert!(error.message.contains(words), "{}", error.message);
                assert!(
                    error.message.contains("nothing was changed"),
                    "{}",
                    error.message
                );
            }
            other => panic!("{flag}: not refused: {other:?}"),
        }
    }
    assert_eq!(fake.env("prod").document, document);
    // dev has no segment override for the canary and serves it to everyone.
    let dev = connect(&fake, "dev");
    let outcome = rollout(&dev, &log, CANARY, percent(50.0), "INC-17 refused").await;
    assert!(
        matches!(outcome, Err(FlipError::Provider { .. })),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn a_lost_answer_to_the_segment_write_is_read_again_and_found_live() {
    use support::faults::{Fault, FaultProxy};
    let fake = FakeFlagsmith::open_source().await;
    let upstream = fake
        .url
        .trim_start_matches("http://")
        .parse()
        .expect("the fake's address");
    let proxy = FaultProxy::start(upstream);
    let prod = connect_at(&fake, &proxy.url(), "prod");
    let dir = tempfile::tempdir().expect("tempdir");
    let log = AuditLog::open(&dir.path().join("audit.jsonl")).expect("audit log");
    proxy.set(Fault::lose_answer("PUT /api/v1/projects/1/segments/2/"));
    let outcome = rollout(&prod, &log, CANARY, percent(50.0), "INC-17 lost answer").await;
    match outcome {
        Ok(FlipOutcome::Applied {
            lost_answer: Some(lost),
            ..
        }) => assert!(lost.contains("segment"), "{lost}"),
        other => panic!("not applied after a lost answer: {other:?}"),
    }
    assert_eq!(segment_percentage_in(&fake, "prod"), json!("50"));
    let outcome = log
        .records()
        .expect("records")
        .into_iter()
        .rev()
        .find(|r| r.phase == Phase::Outcome)
        .expect("outcome");
    assert_eq!(outcome.result, Some(killswitch::audit::Result::Ok));
    assert_eq!(outcome.rollout, Some(percent(50.0)));
}

#[tokio::test]
async fn a_segment_changed_by_someone_else_since_it_was_shown_is_not_overwritten() {
    let fake = FakeFlagsmith::open_source().await;
    let prod = connect(&fake, "prod");
    let dir = tempfile::tempdir().expect("tempdir");
    let log = AuditLog::open(&dir.path().join("audit.jsonl")).expect("audit log");
    let shown = prod.source.read_flag(CANARY).await.expect("read");
    // Someone moves the canary to 30% in Flagsmith's UI meanwhile (staging's operator, say).
    let staging = connect(&fake, "staging");
    let outcome = rollout(&staging, &log, CANARY, percent(30.0), "INC-17 other hand").await;
    assert_applied(&outcome);
    let request = FlipRequest {
        env: "prod".into(),
        flag: CANARY.into(),
        kind: shown.meta.kind,
        change: Change::Rollout {
            target: percent(50.0),
        },
        seen: shown.state,
        note: "INC-17 step up".into(),
        operator: "alice@bastion".into(),
    };
    let outcome = flip::execute(
        &request,
        &prod,
        &log,
        &SystemClock,
        network().verify_timeout,
    )
    .await;
    assert!(
        matches!(outcome, Err(FlipError::Changed { .. })),
        "{outcome:?}"
    );
    assert_eq!(segment_percentage_in(&fake, "prod"), json!("30"));
}

#[tokio::test]
async fn where_approvals_are_required_an_ab_test_ending_is_a_change_request() {
    let fake = FakeFlagsmith::enterprise().await;
    fake.require_approvals("prod", 2);
    let prod = connect(&fake, "prod");
    let dir = tempfile::tempdir().expect("tempdir");
    let log = AuditLog::open(&dir.path().join("audit.jsonl")).expect("audit log");
    let document = fake.env("prod").document;
    let outcome = rollout(
        &prod,
        &log,
        AB_TEST,
        variant("model_a"),
        "INC-17 model_a wins",
    )
    .await;
    let Ok(FlipOutcome::PendingApproval { reference, .. }) = outcome else {
        panic!("not pending: {outcome:?}");
    };
    assert!(reference.contains("awaits 2 approvals"), "{reference}");
    assert_eq!(fake.env("prod").document, document, "nothing live");
    let requests = fake
        .state
        .lock()
        .expect("fake state")
        .change_requests
        .clone();
    assert_eq!(requests.len(), 1);
    let description = requests[0]["description"].as_str().unwrap_or_default();
    assert!(
        description.starts_with("INC-17 model_a wins"),
        "{description}"
    );
    let allocations: Vec<(Value, Value)> =
        requests[0]["feature_states"][0]["multivariate_feature_state_values"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|v| (v["id"].clone(), v["percentage_allocation"].clone()))
            .collect();
    assert_eq!(
        allocations,
        vec![
            (json!(3), json!(100.0)),
            (json!(6), json!(0.0)),
            (json!(9), json!(0.0))
        ]
    );
    // A segment cannot go into a change request: refused, nothing changed.
    let outcome = rollout(&prod, &log, CANARY, percent(50.0), "INC-17 step up").await;
    match outcome {
        Err(FlipError::Provider { error, .. }) => {
            assert_eq!(error.kind, ErrorKind::Refused, "{error:?}");
            assert!(error.message.contains("bypass"), "{}", error.message);
        }
        other => panic!("not refused: {other:?}"),
    }
    assert_eq!(segment_percentage_in(&fake, "prod"), json!("10"));
}

// ---- through `killswitch rollout` (the command's code, a scripted terminal) ------------------

/// Flagsmith fields for each environment of the fake, by name, as Vault would hold them.
struct FakeVault {
    url: String,
    keys: BTreeMap<String, String>,
}

#[async_trait::async_trait]
impl killswitch::session::CredentialSource for FakeVault {
    async fn credentials(
        &self,
        env: &EnvironmentConfig,
    ) -> Result<killswitch::session::Credentials, killswitch::session::ConnectError> {
        let mut fields = SecretFields::new(format!("vault {}", env.vault_location()));
        fields.insert("api_url", Secret::new(format!("{}/api/v1/", self.url)));
        fields.insert(
            "environment_key",
            Secret::new(self.keys.get(&env.name).cloned().unwrap_or_default()),
        );
        fields.insert("admin_token", Secret::new(ADMIN_TOKEN));
        Ok(killswitch::session::Credentials {
            fields,
            write_denied: None,
        })
    }

    async fn operator(&self) -> Option<String> {
        Some("token-alice".into())
    }
}

/// Answers the one question with a scripted line and keeps what was asked.
struct Scripted {
    answer: String,
    asked: Vec<String>,
}

impl killswitch::commands::kill::Confirm for Scripted {
    fn interactive(&self) -> bool {
        true
    }

    fn ask(&mut self, question: &str) -> std::io::Result<String> {
        self.asked.push(question.to_string());
        Ok(self.answer.clone())
    }
}

/// dev, staging and prod on the fake; staging and prod protected.
fn session(fake: &FakeFlagsmith, dir: &std::path::Path) -> killswitch::session::Session {
    let mut text = String::from("protected = [\"staging\", \"prod\"]\n\n");
    for env in ["dev", "staging", "prod"] {
        text.push_str(&format!(
            "[[environment]]\nname = \"{env}\"\nprovider = \"flagsmith\"\nvault_path = \"feature-flags/flagsmith/{env}\"\n\n"
        ));
    }
    let config = killswitch::config::parse(&text, &dir.join("config.toml")).expect("config");
    let keys = ["dev", "staging", "prod"]
        .iter()
        .map(|env| (env.to_string(), fake.env(env).server_key))
        .collect();
    killswitch::session::Session::new(
        config,
        Access::ReadWrite,
        std::sync::Arc::new(FakeVault {
            url: fake.url.clone(),
            keys,
        }),
        std::sync::Arc::new(AuditLog::open(&dir.join("audit.jsonl")).expect("audit")),
        std::sync::Arc::new(SystemClock),
    )
}

fn rollout_args(
    flag: &str,
    to: Option<&str>,
    variant: Option<&str>,
) -> killswitch::cli::RolloutArgs {
    killswitch::cli::RolloutArgs {
        flag: flag.to_string(),
        env: "prod".to_string(),
        to: to.map(str::to_string),
        variant: variant.map(str::to_string),
        note: "INC-17 canary step".to_string(),
        yes: false,
        output: killswitch::cli::FlipOutput::Json,
    }
}

#[tokio::test]
async fn the_rollout_command_names_the_environments_a_segment_shares_and_needs_each_protected_one_typed()
 {
    let fake = FakeFlagsmith::open_source().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let session = session(&fake, dir.path());
    let args = rollout_args(CANARY, Some("50"), None);

    // Only prod typed: staging, which the segment also changes, is protected too.
    let mut confirm = Scripted {
        answer: "prod".into(),
        asked: Vec::new(),
    };
    let mut out = Vec::new();
    let code = killswitch::commands::rollout::run(&session, &args, &mut confirm, &mut out)
        .await
        .expect("run");
    assert_eq!(code, 4, "{}", String::from_utf8_lossy(&out));
    assert_eq!(confirm.asked.len(), 1);
    assert!(confirm.asked[0].contains("staging"), "{}", confirm.asked[0]);
    assert!(
        confirm.asked[0].contains("ON 10% (1 seg) -> ON 50% (1 seg)"),
        "{}",
        confirm.asked[0]
    );
    assert_eq!(
        segment_percentage_in(&fake, "prod"),
        json!("10"),
        "nothing changed"
    );

    let mut confirm = Scripted {
        answer: "staging prod".into(),
        asked: Vec::new(),
    };
    let mut out = Vec::new();
    let code = killswitch::commands::rollout::run(&session, &args, &mut confirm, &mut out)
        .await
        .expect("run");
    let report: Value = serde_json::from_slice(&out).expect("JSON report");
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["shared_with"], json!(["staging"]));
    assert_eq!(report["from"], json!("ON 10% (1 seg)"));
    assert_eq!(report["to"], json!("ON 50% (1 seg)"));
    assert_eq!(segment_percentage_in(&fake, "staging"), json!("50"));

    // Undo goes back to the previous percentage, on the same segment, typed the same way.
    let undo = killswitch::cli::UndoArgs {
        env: "prod".into(),
        flag: CANARY.into(),
        note: "INC-17 back".into(),
        yes: false,
        output: killswitch::cli::FlipOutput::Json,
    };
    let mut confirm = Scripted {
        answer: "staging prod".into(),
        asked: Vec::new(),
    };
    let mut out = Vec::new();
    let code = killswitch::commands::undo::run(&session, &undo, &mut confirm, &mut out)
        .await
        .expect("undo");
    let report: Value = serde_json::from_slice(&out).expect("JSON report");
    assert_eq!(code, 0, "{report}");
    assert_eq!(
        report["rollout"],
        json!({"type": "percent", "percent": 10.0})
    );
    assert_eq!(segment_percentage_in(&fake, "prod"), json!("10"));

    // What the flag does not have is a usage error before anything is written.
    for (to, variant) in [(Some("50"), None), (None, Some("model_z"))] {
        let mut confirm = Scripted {
            answer: "prod".into(),
            asked: Vec::new(),
        };
        let mut out = Vec::new();
        let code = killswitch::commands::rollout::run(
            &session,
            &rollout_args(AB_TEST, to, variant),
            &mut confirm,
            &mut out,
        )
        .await
        .expect("run");
        let report: Value = serde_json::from_slice(&out).expect("JSON report");
        assert_eq!(code, 2, "{report}");
        assert!(
            report["message"]
                .as_str()
                .is_some_and(|m| m.contains("control, model_a, model_b, model_c")),
            "{report}"
        );
        assert!(confirm.asked.is_empty());
    }
}
