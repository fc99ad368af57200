//! LaunchDarkly rollouts through `flip::execute` against the fake LaunchDarkly API, checked
//! with what services run: the LaunchDarkly Python server SDK in polling mode, its base URI the
//! fake, evaluating 1,000 contexts. The semantic patches and approval requests killswitch sends
//! are validated against LaunchDarkly's published OpenAPI document (tests/support/ld_spec_check.py).

#[path = "support/launchdarkly_fake.rs"]
mod launchdarkly_fake;
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use killswitch::audit::{AuditLog, Phase};
use killswitch::config::{EnvironmentConfig, NetworkConfig, ProviderKind};
use killswitch::flip::{FlipError, FlipOutcome};
use killswitch::provider::{self, Access, Connection, ErrorKind};
use killswitch::rollout::RolloutTarget;
use killswitch::secret::{Secret, SecretFields};
use launchdarkly_fake::{
    FakeLd, PROJECT, READER_TOKEN, SDK_KEY_PROD, SDK_KEY_REGULATED, WRITER_TOKEN,
};
use serde_json::{Value, json};
use support::sdk;
use support::vendor::{self, assert_applied, percent, variant};

/// Boolean, fallthrough 10% true bucketed by `key`, three targets, one rule.
const CANARY: &str = "checkout_redesign";
/// Multivariate: control / bm25 / vector at 33/33/34.
const EXPERIMENT: &str = "search_ranking";

fn network() -> NetworkConfig {
    NetworkConfig {
        connect_timeout: Duration::from_millis(500),
        request_timeout: Duration::from_secs(2),
        verify_timeout: Duration::from_secs(3),
    }
}

fn connect(fake: &FakeLd, ld_env: &str, sdk_key: &str) -> Connection {
    let mut options = BTreeMap::new();
    options.insert("api_url".to_string(), fake.url.clone());
    let config = EnvironmentConfig {
        name: "prod".to_string(),
        provider: ProviderKind::LaunchDarkly,
        protected: true,
        file: None,
        vault_mount: "kv".into(),
        vault_path: "feature-flags/launchdarkly/prod".into(),
        options,
    };
    let mut fields = SecretFields::new("vault kv/feature-flags/launchdarkly/prod");
    fields.insert("api_token", Secret::new(READER_TOKEN));
    fields.insert("project_key", Secret::new(PROJECT));
    fields.insert("environment_key", Secret::new(ld_env));
    fields.insert("sdk_key", Secret::new(sdk_key));
    fields.insert("writer_token", Secret::new(WRITER_TOKEN));
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

/// The LaunchDarkly Python SDK's values for `flag` over 1,000 contexts, off the runtime the
/// fake runs on.
async fn evaluate(fake: &FakeLd, flag: &str, default: Value) -> Vec<Value> {
    let url = fake.url.clone();
    let flag = flag.to_string();
    tokio::task::spawn_blocking(move || {
        sdk::launchdarkly_values(&url, SDK_KEY_PROD, &flag, &default)
    })
    .await
    .expect("the SDK run")
}

async fn on_keys(fake: &FakeLd) -> BTreeSet<usize> {
    let values = evaluate(fake, CANARY, json!("sdk default")).await;
    assert_eq!(values.len(), sdk::KEYS);
    let odd: Vec<&Value> = values.iter().filter(|v| !v.is_boolean()).collect();
    assert!(
        odd.is_empty(),
        "the SDK fell back to its default: {:?}",
        odd.first()
    );
    values
        .iter()
        .enumerate()
        .filter(|(_, value)| **value == Value::Bool(true))
        .map(|(index, _)| index)
        .collect()
}

/// (rollout, previous, from, to, note) of an outcome record.
type Step = (
    Option<RolloutTarget>,
    Option<RolloutTarget>,
    String,
    String,
    String,
);

#[tokio::test]
async fn a_canary_steps_up_keeps_its_users_steps_back_to_the_same_ones_and_aborts() {
    if !sdk::available() {
        return;
    }
    let fake = FakeLd::start().await;
    let prod = connect(&fake, "production", SDK_KEY_PROD);
    let dir = tempfile::tempdir().expect("tempdir");
    let log = AuditLog::open(&dir.path().join("audit.jsonl")).expect("audit log");

    let at_10 = on_keys(&fake).await;
    assert!((50..=150).contains(&at_10.len()), "10%: {}", at_10.len());

    let outcome = rollout(&prod, &log, CANARY, percent(50.0), "INC-17 step up").await;
    assert_applied(&outcome);
    let config = fake.env_config(CANARY, "production");
    assert_eq!(
        config["fallthrough"]["rollout"]["variations"],
        json!([{"variation": 0, "weight": 50000}, {"variation": 1, "weight": 50000}])
    );
    assert_eq!(
        config["fallthrough"]["rollout"]["bucketBy"],
        json!("key"),
        "bucketBy kept"
    );
    let at_50 = on_keys(&fake).await;
    assert!((400..=600).contains(&at_50.len()), "50%: {}", at_50.len());
    eprintln!(
        "the LaunchDarkly Python SDK: {} of 1000 get the canary at 10%, {} at 50%",
        at_10.len(),
        at_50.len()
    );
    let lost: Vec<&usize> = at_10.difference(&at_50).collect();
    assert!(
        lost.is_empty(),
        "contexts lost the feature on 10 -> 50: {lost:?}"
    );

    let outcome = rollout(&prod, &log, CANARY, percent(10.0), "INC-17 step back").await;
    assert_applied(&outcome);
    assert_eq!(on_keys(&fake).await, at_10);

    let outcome = rollout(&prod, &log, CANARY, percent(0.0), "INC-17 abort").await;
    assert_applied(&outcome);
    assert!(on_keys(&fake).await.is_empty());

    let outcome = rollout(&prod, &log, CANARY, percent(100.0), "INC-17 open to all").await;
    assert_applied(&outcome);
    assert_eq!(on_keys(&fake).await.len(), sdk::KEYS);

    // The note went to LaunchDarkly's audit log with each change.
    let comments: Vec<String> = fake.with(|s| {
        s.audit
            .iter()
            .map(|e| e["comment"].as_str().unwrap_or_default().to_string())
            .collect()
    });
    assert_eq!(comments.len(), 4, "{comments:?}");
    assert!(
        comments[0].starts_with("INC-17 step up (by alice@bastion via killswitch"),
        "{comments:?}"
    );
    assert!(comments[2].starts_with("INC-17 abort"), "{comments:?}");

    let records = log.records().expect("records");
    let steps: Vec<Step> = records
        .iter()
        .filter(|r| r.phase == Phase::Outcome && r.action == "rollout")
        .map(|r| {
            (
                r.rollout.clone(),
                r.previous.clone(),
                r.from.clone(),
                r.to.clone(),
                r.note.clone(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        vec![
            (
                Some(percent(50.0)),
                Some(percent(10.0)),
                "ON 10% +1 seg +1 id".into(),
                "ON 50% +1 seg +1 id".into(),
                "INC-17 step up".into()
            ),
            (
                Some(percent(10.0)),
                Some(percent(50.0)),
                "ON 50% +1 seg +1 id".into(),
                "ON 10% +1 seg +1 id".into(),
                "INC-17 step back".into()
            ),
            (
                Some(percent(0.0)),
                Some(percent(10.0)),
                "ON 10% +1 seg +1 id".into(),
                steps[2].3.clone(),
                "INC-17 abort".into()
            ),
            (
                Some(percent(100.0)),
                Some(percent(0.0)),
                steps[3].2.clone(),
                steps[3].3.clone(),
                "INC-17 open to all".into()
            ),
        ]
    );
}

#[tokio::test]
async fn an_experiment_ends_with_everyone_on_one_variation() {
    if !sdk::available() {
        return;
    }
    let fake = FakeLd::start().await;
    let prod = connect(&fake, "production", SDK_KEY_PROD);
    let dir = tempfile::tempdir().expect("tempdir");
    let log = AuditLog::open(&dir.path().join("audit.jsonl")).expect("audit log");
    let before: BTreeSet<String> = evaluate(&fake, EXPERIMENT, json!("sdk default"))
        .await
        .iter()
        .map(Value::to_string)
        .collect();
    assert_eq!(before.len(), 3, "{before:?}");

    let outcome = rollout(
        &prod,
        &log,
        EXPERIMENT,
        variant("vector"),
        "INC-17 vector wins",
    )
    .await;
    assert_applied(&outcome);
    let after: BTreeSet<String> = evaluate(&fake, EXPERIMENT, json!("sdk default"))
        .await
        .iter()
        .map(Value::to_string)
        .collect();
    assert_eq!(after, BTreeSet::from([json!("vector").to_string()]));
    assert_eq!(
        fake.env_config(EXPERIMENT, "production")["fallthrough"],
        json!({"variation": 2})
    );
    let records = log.records().expect("records");
    let outcome = records
        .iter()
        .rev()
        .find(|r| r.phase == Phase::Outcome)
        .expect("outcome");
    assert_eq!(outcome.rollout, Some(variant("vector")));
    // A three-way split has no single target to go back to.
    assert_eq!(outcome.previous, None);
}

#[tokio::test]
async fn an_environment_that_requires_approval_gets_a_request_with_the_rollout() {
    let fake = FakeLd::start().await;
    let regulated = connect(&fake, "regulated", SDK_KEY_REGULATED);
    let dir = tempfile::tempdir().expect("tempdir");
    let log = AuditLog::open(&dir.path().join("audit.jsonl")).expect("audit log");
    let before = fake.env_config(CANARY, "regulated");
    let outcome = rollout(
        &regulated,
        &log,
        CANARY,
        percent(25.5),
        "INC-17 canary 25.5",
    )
    .await;
    let Ok(FlipOutcome::PendingApproval { reference, .. }) = outcome else {
        panic!("not pending: {outcome:?}");
    };
    assert!(
        reference.starts_with("LaunchDarkly approval request "),
        "{reference}"
    );
    assert_eq!(fake.env_config(CANARY, "regulated"), before, "nothing live");
    let approvals = fake.with(|s| s.approvals.clone());
    assert_eq!(approvals.len(), 1);
    let instruction = &approvals[0]["instructions"][0];
    assert_eq!(instruction["kind"], "updateFallthroughVariationOrRollout");
    assert_eq!(
        instruction["rolloutWeights"],
        json!({"e432f62b-55f6-49dd-a02f-eb24acf39d05": 25500, "a00bf58d-d252-476c-b915-15a74becacb4": 74500})
    );
    assert!(
        approvals[0]["comment"]
            .as_str()
            .is_some_and(|c| c.starts_with("INC-17 canary 25.5")),
        "{approvals:?}"
    );
}

#[tokio::test]
async fn what_launchdarkly_cannot_be_asked_is_refused_and_changes_nothing() {
    let fake = FakeLd::start().await;
    let prod = connect(&fake, "production", SDK_KEY_PROD);
    let dir = tempfile::tempdir().expect("tempdir");
    let log = AuditLog::open(&dir.path().join("audit.jsonl")).expect("audit log");
    for (flag, target, words) in [
        (EXPERIMENT, percent(50.0), "not a boolean flag"),
        (EXPERIMENT, variant("bm26"), "no variation `bm26`"),
    ] {
        match rollout(&prod, &log, flag, target, "INC-17 refused").await {
            Err(FlipError::Provider { error, .. }) => {
                assert_eq!(error.kind, ErrorKind::Refused, "{error:?}");
                assert!(error.message.contains(words), "{}", error.message);
            }
            other => panic!("not refused: {other:?}"),
        }
    }
    assert!(
        !fake.requests().iter().any(|r| r.method == "PATCH"),
        "nothing was written"
    );
}

// ---- the requests validate against LaunchDarkly's OpenAPI document --------------------------

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

fn check_against_spec(lines: &[Value]) -> (bool, Vec<Value>) {
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
    let results = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|r| r.get("request").is_some())
        .collect();
    (output.status.success(), results)
}

#[tokio::test]
async fn rollout_patches_and_approval_requests_validate_against_the_openapi_spec() {
    if spec_checker().is_none() {
        return;
    }
    let fake = FakeLd::start().await;
    let prod = connect(&fake, "production", SDK_KEY_PROD);
    let regulated = connect(&fake, "regulated", SDK_KEY_REGULATED);
    let dir = tempfile::tempdir().expect("tempdir");
    let log = AuditLog::open(&dir.path().join("audit.jsonl")).expect("audit log");
    assert_applied(&rollout(&prod, &log, CANARY, percent(50.0), "INC-17 up").await);
    assert_applied(&rollout(&prod, &log, EXPERIMENT, variant("bm25"), "INC-17 bm25").await);
    // A flag switched off is turned on in the same patch.
    assert_applied(&rollout(&prod, &log, "dark_mode", percent(5.0), "INC-17 dark").await);
    assert_eq!(
        fake.env_config("dark_mode", "production")["on"],
        json!(true)
    );
    let pending = rollout(&regulated, &log, CANARY, percent(50.0), "INC-17 up").await;
    assert!(
        matches!(pending, Ok(FlipOutcome::PendingApproval { .. })),
        "{pending:?}"
    );

    let requests = fake.requests();
    let writes: Vec<Value> = requests
        .iter()
        .filter(|seen| seen.method != "GET")
        .map(|seen| {
            json!({
                "method": seen.method,
                "path": seen.path,
                "query": seen.query,
                "content_type": seen.content_type,
                "body": seen.body,
            })
        })
        .collect();
    assert_eq!(
        writes.len(),
        5,
        "three patches, the refused patch, the approval request"
    );
    let mut lines = writes.clone();
    // A control: an instruction with a kind the documentation does not have.
    lines.push(json!({"method": "PATCH", "path": format!("/api/v2/flags/{PROJECT}/{CANARY}"),
        "query": "", "content_type": killswitch::provider::launchdarkly::SEMANTIC_PATCH,
        "body": r#"{"environmentKey":"production","instructions":[{"kind":"updateFallthroughRollout"}]}"#}));
    let (ok, results) = check_against_spec(&lines);
    assert_eq!(results.len(), lines.len(), "{results:#?}");
    assert!(!ok, "the control fails");
    let problems: Vec<&Value> = results[..writes.len()]
        .iter()
        .filter(|r| r["problems"].as_array().is_some_and(|p| !p.is_empty()))
        .collect();
    assert!(problems.is_empty(), "{problems:#?}");
    assert!(
        results[writes.len()]["problems"]
            .as_array()
            .is_some_and(|p| !p.is_empty()),
        "{results:#?}"
    );
}

#[tokio::test]
async fn the_choices_a_flag_offers_come_from_its_variations() {
    let fake = FakeLd::start().await;
    let prod = connect(&fake, "production", SDK_KEY_PROD);
    let writer = prod.writer.as_ref().expect("writable");
    let experiment = writer
        .rollout_choices(EXPERIMENT)
        .await
        .expect("choices")
        .expect("said");
    assert!(!experiment.percent);
    assert_eq!(experiment.variants, vec!["control", "a", "b"]);
    assert_eq!(experiment.values, vec!["control", "bm25", "vector"]);
    assert!(experiment.check(&variant("b")).is_ok());
    assert_eq!(experiment.canonical(&variant("b")), variant("vector"));
    assert!(experiment.check(&percent(50.0)).is_err());
    let canary = writer
        .rollout_choices(CANARY)
        .await
        .expect("choices")
        .expect("said");
    assert!(canary.percent);
    assert!(canary.check(&percent(12.345)).is_ok());
}
