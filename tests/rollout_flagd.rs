//! `killswitch rollout` and `undo` on the local flagd workspace, checked with what services run:
//! the OpenFeature flagd evaluator (Python, FILE mode, `tests/sdk/flagd_variants.py`) over
//! 1,000 targeting keys. Stepping a canary up keeps every key that had it, stepping back gives
//! exactly the keys it had, 0 gives none, 100 gives all, a variant goes to everyone, and
//! segments keep their branch.

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Output;

use serde_json::Value;
use support::Home;
use support::sdk::{self, KEYS};

const CANARY: &str = "checkout_stripe_payment_intents_v2024_11";
const DARK: &str = "catalog_v2_search_engine";
const AB: &str = "recommendations_ab_test_model_v3";

fn run(home: &Home, args: &[&str]) -> Output {
    home.command()
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run killswitch")
}

fn code(output: &Output) -> i32 {
    output.status.code().unwrap_or(-1)
}

fn text(output: &Output) -> String {
    format!(
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn seeded(home: &Home) {
    let output = run(home, &["status"]);
    assert_eq!(code(&output), 0, "{}", text(&output));
}

/// `rollout FLAG --env prod --to PERCENT --yes --output json`, which must apply (exit 0).
fn step(home: &Home, flag: &str, percent: &str, note: &str) -> Value {
    let output = run(
        home,
        &[
            "rollout", flag, "--env", "prod", "--to", percent, "--note", note, "--yes", "--output",
            "json",
        ],
    );
    assert_eq!(code(&output), 0, "--to {percent}: {}", text(&output));
    serde_json::from_slice(&output.stdout).expect("one JSON report")
}

/// The keys (indexes) the evaluator serves `true` for `flag` in prod.
fn keys_on(home: &Home, flag: &str) -> BTreeSet<usize> {
    evaluate_values(&home.local_flags("prod"), flag)
        .into_iter()
        .enumerate()
        .filter(|(_, on)| *on)
        .map(|(index, _)| index)
        .collect()
}

fn evaluate_values(file: &Path, flag: &str) -> Vec<bool> {
    let results = sdk::flagd_evaluate(file, &[flag]);
    results[flag]
        .iter()
        .map(|e| {
            e.value()
                .as_bool()
                .unwrap_or_else(|| panic!("{flag}: {e:?}"))
        })
        .collect()
}

fn audit_records(home: &Home) -> Vec<Value> {
    std::fs::read_to_string(home.audit_log())
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).expect("audit line is JSON"))
        .collect()
}

fn near(count: usize, percent: usize) -> bool {
    let expected = KEYS * percent / 100;
    count.abs_diff(expected) <= KEYS / 15
}

#[test]
fn canary_steps_keep_every_user_who_had_it_and_go_back_to_exactly_the_same_users() {
    if !sdk::available() {
        return;
    }
    let home = Home::new();
    seeded(&home);
    let at_10 = keys_on(&home, CANARY);
    assert!(near(at_10.len(), 10), "10%: {} keys", at_10.len());

    let report = step(&home, CANARY, "50", "CHG-1 canary to 50%");
    assert_eq!(report["action"], "rollout");
    assert_eq!(report["from"], "ON 10%");
    assert_eq!(report["to"], "ON 50%");
    assert_eq!(
        report["rollout"],
        serde_json::json!({"type": "percent", "percent": 50.0})
    );
    assert_eq!(
        report["previous"],
        serde_json::json!({"type": "percent", "percent": 10.0})
    );
    let at_50 = keys_on(&home, CANARY);
    assert!(near(at_50.len(), 50), "50%: {} keys", at_50.len());
    let flapped: Vec<&usize> = at_10.difference(&at_50).collect();
    assert!(
        flapped.is_empty(),
        "{} keys had the canary at 10% and lost it at 50%, e.g. user-{}",
        flapped.len(),
        flapped[0]
    );

    step(&home, CANARY, "10", "INC-9 back to 10%");
    assert_eq!(keys_on(&home, CANARY), at_10, "10% again is the same users");

    step(&home, CANARY, "0", "INC-9 abort");
    assert!(keys_on(&home, CANARY).is_empty(), "0% serves nobody");
    step(&home, CANARY, "100", "CHG-2 open to everyone");
    assert_eq!(keys_on(&home, CANARY).len(), KEYS, "100% serves everyone");
    step(&home, CANARY, "10", "CHG-3 back to the first step");
    assert_eq!(
        keys_on(&home, CANARY),
        at_10,
        "after 0 and 100, 10% is the same users"
    );

    // Each step is audited: intent and outcome, from/to cells, target and previous, the note.
    let records = audit_records(&home);
    let outcomes: Vec<&Value> = records
        .iter()
        .filter(|r| r["phase"] == "outcome" && r["flag"] == CANARY)
        .collect();
    assert_eq!(outcomes.len(), 5, "{records:#?}");
    let abort = outcomes[2];
    assert_eq!(abort["action"], "rollout");
    assert_eq!(abort["from"], "ON 10%");
    assert_eq!(abort["to"], "OFF");
    assert_eq!(abort["rollout"]["percent"], 0.0);
    assert_eq!(abort["previous"]["percent"], 10.0);
    assert_eq!(abort["note"], "INC-9 abort");
    assert_eq!(abort["result"], "ok");
    assert!(abort["confirmed_ms"].is_u64(), "{abort}");
    let intents = records
        .iter()
        .filter(|r| r["phase"] == "intent" && r["flag"] == CANARY)
        .count();
    assert_eq!(intents, 5);

    // A step to where it already is writes nothing: exit 3.
    let again = run(
        &home,
        &[
            "rollout", CANARY, "--env", "prod", "--to", "10", "--note", "x", "--yes",
        ],
    );
    assert_eq!(code(&again), 3, "{}", text(&again));
    assert_eq!(audit_records(&home).len(), records.len());
}

#[test]
fn a_dark_launch_opens_to_a_share_of_everyone_while_its_segments_keep_it() {
    if !sdk::available() {
        return;
    }
    let home = Home::new();
    seeded(&home);
    let segments = keys_on(&home, DARK);
    assert!(
        !segments.is_empty() && segments.len() < KEYS,
        "{}",
        segments.len()
    );

    step(&home, DARK, "10", "CHG-4 dark launch to 10% of everyone");
    let at_10 = keys_on(&home, DARK);
    assert!(segments.is_subset(&at_10), "segment members keep it");
    let others = at_10.difference(&segments).count();
    let outside = KEYS - segments.len();
    assert!(
        others.abs_diff(outside / 10) <= outside / 15 + 10,
        "{others} of {outside} keys outside the segments get it at 10%"
    );
    step(&home, DARK, "50", "CHG-5 50%");
    let at_50 = keys_on(&home, DARK);
    assert!(at_10.is_subset(&at_50), "nobody loses it from 10% to 50%");
    step(&home, DARK, "0", "INC-10 abort: segments only");
    assert_eq!(keys_on(&home, DARK), segments, "0% is the segments again");
}

#[test]
fn everyone_to_one_variant_ends_an_experiment_and_wrong_targets_are_usage_errors() {
    if !sdk::available() {
        return;
    }
    let home = Home::new();
    seeded(&home);
    let file = home.local_flags("prod");
    let before = std::fs::read_to_string(&file).expect("file");
    let split = sdk::flagd_variants(&file, AB, "string");
    let kinds: BTreeSet<Option<String>> = split.iter().cloned().collect();
    assert_eq!(kinds.len(), 3, "the A/B test splits three ways: {kinds:?}");

    // Usage errors name the flag, the environment and what is allowed; nothing is written.
    for (args, expected) in [
        (
            vec!["--variant", "treatment_c"],
            "control, treatment_a, treatment_b",
        ),
        (vec!["--to", "10"], "--variant NAME"),
        (vec!["--to", "150"], "out of range"),
        (vec!["--to", "-5"], "out of range"),
        (vec!["--to", "0.0001"], "three decimals"),
    ] {
        let mut command = vec!["rollout", AB, "--env", "prod", "--note", "CHG-6", "--yes"];
        command.extend(args.iter());
        let output = run(&home, &command);
        assert_eq!(code(&output), 2, "{args:?}: {}", text(&output));
        let said = String::from_utf8_lossy(&output.stderr);
        assert!(said.contains(expected), "{args:?}: {said}");
        assert!(
            said.contains(AB) && said.contains("prod"),
            "{args:?}: {said}"
        );
    }
    assert_eq!(std::fs::read_to_string(&file).expect("file"), before);
    assert!(
        audit_records(&home).is_empty(),
        "usage errors are not audited"
    );

    let output = run(
        &home,
        &[
            "rollout",
            AB,
            "--env",
            "prod",
            "--variant",
            "treatment_b",
            "--note",
            "EXP-12 model_v3b wins",
            "--yes",
        ],
    );
    assert_eq!(code(&output), 0, "{}", text(&output));
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(said.contains("ROLLOUT applied"), "{said}");
    assert!(said.contains("33/33/34 -> model_v3b"), "{said}");
    let everyone = sdk::flagd_variants(&file, AB, "string");
    assert!(
        everyone.iter().all(|v| v.as_deref() == Some("treatment_b")),
        "every key gets treatment_b"
    );
    // The experiment's split cannot be said as one target: undo says so and writes nothing.
    let after = std::fs::read_to_string(&file).expect("file");
    let undo = run(
        &home,
        &[
            "undo", "--env", "prod", "--flag", AB, "--note", "oops", "--yes",
        ],
    );
    assert_eq!(code(&undo), 4, "{}", text(&undo));
    assert!(String::from_utf8_lossy(&undo.stderr).contains("33/33/34"));
    assert_eq!(std::fs::read_to_string(&file).expect("file"), after);
}
