//! `killswitch rollout` and `killswitch undo` end to end: the real binary on the local flagd
//! workspace. Confirmation rules, exit codes, the JSON report, and undo's rules: it reverts the
//! last applied change, is itself audited, re-does when undone, and refuses when the flag moved
//! behind its back.

mod support;

use std::process::Output;
use std::time::Duration;

use killswitch::provider::flagd;
use serde_json::Value;
use support::Home;
use support::pty::PtySession;

const CANARY: &str = "checkout_stripe_payment_intents_v2024_11";

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

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("no JSON report ({e}): {}", stderr(output)))
}

fn seeded(home: &Home) {
    let output = run(home, &["status"]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
}

/// The flag's cell in prod, read from the file as the dashboard reads it.
fn cell(home: &Home, flag: &str) -> String {
    let text = std::fs::read_to_string(home.local_flags("prod")).expect("flag file");
    let document = flagd::parse_document(&text).expect("valid flagd file");
    let summary = flagd::summarise(flag, &document["flags"][flag]);
    killswitch::model::cell_text(summary.meta.kind, &summary.state)
}

fn audit_records(home: &Home) -> Vec<Value> {
    std::fs::read_to_string(home.audit_log())
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).expect("audit line is JSON"))
        .collect()
}

fn rollout(home: &Home, flag: &str, percent: &str) -> Output {
    run(
        home,
        &[
            "rollout",
            flag,
            "--env",
            "prod",
            "--to",
            percent,
            "--note",
            "CHG-1 step",
            "--yes",
            "--output",
            "json",
        ],
    )
}

fn undo(home: &Home, flag: &str) -> Output {
    run(
        home,
        &[
            "undo",
            "--env",
            "prod",
            "--flag",
            flag,
            "--note",
            "INC-3 take it back",
            "--yes",
            "--output",
            "json",
        ],
    )
}

#[test]
fn undo_reverts_the_last_change_is_audited_and_undoing_it_again_redoes_it() {
    let home = Home::new();
    seeded(&home);
    let stepped = rollout(&home, CANARY, "50");
    assert_eq!(code(&stepped), 0, "{}", stderr(&stepped));
    let step_id = json(&stepped)["audit_id"].as_str().expect("id").to_string();
    assert_eq!(cell(&home, CANARY), "ON 50%");

    let undone = undo(&home, CANARY);
    assert_eq!(code(&undone), 0, "{}", stderr(&undone));
    let report = json(&undone);
    assert_eq!(report["result"], "applied");
    assert_eq!(report["action"], "rollout");
    assert_eq!(report["undoes"], step_id.as_str());
    assert_eq!(report["from"], "ON 50%");
    assert_eq!(report["to"], "ON 10%");
    assert_eq!(cell(&home, CANARY), "ON 10%");
    let undo_id = report["audit_id"].as_str().expect("id").to_string();
    let outcome = audit_records(&home)
        .into_iter()
        .find(|r| r["id"] == undo_id.as_str() && r["phase"] == "outcome")
        .expect("the undo is audited");
    assert_eq!(outcome["action"], "rollout");
    assert_eq!(outcome["rollout"]["percent"], 10.0);
    assert_eq!(outcome["previous"]["percent"], 50.0);
    assert_eq!(
        outcome["note"],
        format!("INC-3 take it back (undo of rollout {step_id})").as_str()
    );

    // The newest change is now the undo: undoing it re-does the step.
    let redone = undo(&home, CANARY);
    assert_eq!(code(&redone), 0, "{}", stderr(&redone));
    assert_eq!(json(&redone)["undoes"], undo_id.as_str());
    assert_eq!(cell(&home, CANARY), "ON 50%");

    // A kill is undone by a restore.
    let killed = run(
        &home,
        &[
            "kill",
            "kill_switch_checkout",
            "--env",
            "prod",
            "--note",
            "INC-4",
            "--yes",
        ],
    );
    assert_eq!(code(&killed), 0, "{}", stderr(&killed));
    assert_eq!(cell(&home, "kill_switch_checkout"), "KILLED");
    let restored = undo(&home, "kill_switch_checkout");
    assert_eq!(code(&restored), 0, "{}", stderr(&restored));
    assert_eq!(json(&restored)["action"], "restore");
    assert_eq!(cell(&home, "kill_switch_checkout"), "SERVING");
}

#[test]
fn undo_is_refused_when_the_flag_moved_behind_its_back_and_says_when_there_is_nothing() {
    let home = Home::new();
    seeded(&home);
    assert_eq!(code(&rollout(&home, CANARY, "50")), 0);
    // Someone edits the file: the canary is at 30% now.
    let path = home.local_flags("prod");
    let text = std::fs::read_to_string(&path).expect("file");
    let mut document: Value = serde_json::from_str(&text).expect("json");
    document["flags"][CANARY]["targeting"] =
        serde_json::json!({"fractional": [["on", 30], ["off", 70]]});
    let moved = serde_json::to_string_pretty(&document).expect("encode");
    std::fs::write(&path, &moved).expect("write");
    let before = audit_records(&home).len();

    let refused = undo(&home, CANARY);
    assert_eq!(code(&refused), 9, "{}", stderr(&refused));
    let report = json(&refused);
    assert_eq!(report["result"], "changed");
    let message = report["message"].as_str().unwrap_or_default();
    assert!(message.contains("is now ON 30%, not ON 50%"), "{message}");
    assert_eq!(std::fs::read_to_string(&path).expect("file"), moved);
    assert_eq!(audit_records(&home).len(), before, "nothing audited");

    // Never changed by killswitch: nothing to undo (3). Unknown flag or environment: 5.
    let nothing = undo(&home, "kill_switch_recommendations");
    assert_eq!(code(&nothing), 3, "{}", stderr(&nothing));
    assert!(
        json(&nothing)["message"]
            .as_str()
            .unwrap_or_default()
            .contains("nothing to undo")
    );
    let unknown = undo(&home, "kill_switch_checkuot");
    assert_eq!(code(&unknown), 5, "{}", stderr(&unknown));
    assert!(
        json(&unknown)["message"]
            .as_str()
            .unwrap_or_default()
            .contains("kill_switch_checkout")
    );
    let no_env = run(
        &home,
        &[
            "undo", "--env", "prdo", "--flag", CANARY, "--note", "x", "--yes",
        ],
    );
    assert_eq!(code(&no_env), 5, "{}", stderr(&no_env));
}

#[test]
fn a_protected_rollout_needs_the_environment_typed_and_a_script_needs_yes() {
    let home = Home::new();
    seeded(&home);
    let args = [
        "rollout", CANARY, "--env", "prod", "--to", "50", "--note", "CHG-7",
    ];
    let scripted = run(&home, &args);
    assert_eq!(code(&scripted), 4, "{}", stderr(&scripted));
    assert!(
        stderr(&scripted).contains("add --yes"),
        "{}",
        stderr(&scripted)
    );
    assert_eq!(cell(&home, CANARY), "ON 10%");

    let mut wrong = PtySession::spawn(&home, &args, (120, 20));
    wrong.wait_for("Type `prod` to confirm", Duration::from_secs(10));
    wrong.send("y\r");
    assert_eq!(wrong.wait_exit(Duration::from_secs(10)), 4);
    assert_eq!(cell(&home, CANARY), "ON 10%");

    let mut right = PtySession::spawn(&home, &args, (120, 20));
    right.wait_for(
        &format!("ROLLOUT {CANARY} in prod: ON 10% -> ON 50%"),
        Duration::from_secs(10),
    );
    right.send("prod\r");
    assert_eq!(right.wait_exit(Duration::from_secs(10)), 0);
    assert_eq!(cell(&home, CANARY), "ON 50%");

    // --read-only builds no write path.
    let read_only = run(
        &home,
        &[
            "--read-only",
            "rollout",
            CANARY,
            "--env",
            "prod",
            "--to",
            "0",
            "--note",
            "x",
            "--yes",
        ],
    );
    assert_eq!(code(&read_only), 4, "{}", stderr(&read_only));
    // An empty note is refused before anything else.
    let no_note = run(
        &home,
        &[
            "rollout", CANARY, "--env", "prod", "--to", "0", "--note", " ", "--yes",
        ],
    );
    assert_eq!(code(&no_note), 4, "{}", stderr(&no_note));
    assert_eq!(cell(&home, CANARY), "ON 50%");
    // Neither --to nor --variant: clap's usage error.
    let neither = run(&home, &["rollout", CANARY, "--env", "prod", "--note", "x"]);
    assert_eq!(code(&neither), 2, "{}", stderr(&neither));
}

#[test]
fn rollout_and_undo_are_in_help_and_the_man_page() {
    let home = Home::new();
    let help = run(&home, &["rollout", "--help"]);
    assert_eq!(code(&help), 0);
    let text = String::from_utf8_lossy(&help.stdout);
    for option in [
        "--to <PERCENT>",
        "--variant <NAME>",
        "--note",
        "--yes",
        "--output",
    ] {
        assert!(text.contains(option), "{option}: {text}");
    }
    let man = run(&home, &["man"]);
    let page = String::from_utf8_lossy(&man.stdout);
    assert!(
        page.contains("killswitch rollout"),
        "man page lacks rollout"
    );
    assert!(page.contains("killswitch undo"), "man page lacks undo");
    assert!(
        page.contains("no change to undo"),
        "EXIT STATUS says undo's 3"
    );
}

/// `[rollout] steps` from the config: the runbook's step back is the config's previous step.
#[test]
fn the_runbook_steps_back_to_the_configured_step() {
    let home = Home::new();
    seeded(&home);
    assert_eq!(code(&rollout(&home, CANARY, "50")), 0);
    let config = home.path().join("steps.toml");
    std::fs::write(
        &config,
        format!(
            "[rollout]\nsteps = [0, 25, 100]\n\n[[environment]]\nname = \"prod\"\nprovider = \"flagd\"\nfile = \"{}\"\n",
            home.local_flags("prod").display()
        ),
    )
    .expect("config");
    let config = config.display().to_string();
    let output = run(
        &home,
        &["--config", &config, "runbook", CANARY, "--env", "prod"],
    );
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains(&format!("rollout {CANARY} --env prod --to 25 --note")),
        "the configured step below 50% is 25%: {text}"
    );
    assert!(!text.contains("--to 10 "), "{text}");
    // A bad step is refused with the file, the key and the value.
    let good = std::fs::read_to_string(&config).expect("config");
    std::fs::write(
        home.path().join("bad.toml"),
        good.replace("[0, 25, 100]", "[0, 150]"),
    )
    .expect("config");
    let bad = home.path().join("bad.toml").display().to_string();
    let output = run(
        &home,
        &["--config", &bad, "runbook", CANARY, "--env", "prod"],
    );
    assert_ne!(code(&output), 0);
    let error = stderr(&output);
    assert!(
        error.contains("bad.toml:2:") && error.contains("[rollout] steps: `150` is out of range"),
        "{error}"
    );
}

#[test]
fn the_runbook_of_a_rollout_flag_has_its_abort_and_its_step_back() {
    let home = Home::new();
    seeded(&home);
    assert_eq!(code(&rollout(&home, CANARY, "50")), 0);
    let output = run(&home, &["runbook", CANARY, "--env", "prod"]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("It is a rollout at 50%"), "{text}");
    assert!(
        text.contains(&format!(
            "killswitch rollout {CANARY} --env prod --to 0 --note \"INC-XXXX: <symptom>\""
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "killswitch rollout {CANARY} --env prod --to 10 --note"
        )),
        "the step back from 50% is 10%: {text}"
    );
    assert!(
        text.contains(&format!("killswitch undo --env prod --flag {CANARY}")),
        "{text}"
    );
    // A kill switch's runbook has no rollout steps.
    let switch = run(&home, &["runbook", "kill_switch_checkout", "--env", "prod"]);
    assert!(!String::from_utf8_lossy(&switch.stdout).contains("rollout"));
}
