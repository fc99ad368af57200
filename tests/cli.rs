//! The scriptable subcommands, end to end: the real binary on the local flagd workspace, each
//! exit code a runbook branches on, JSON outputs read back into their typed shapes.

mod support;

use std::process::Output;
use std::time::Duration;

use killswitch::commands::audit::AuditReport;
use killswitch::commands::stale::StaleReport;
use killswitch::commands::status::StatusReport;
use killswitch::provider::flagd;
use support::Home;
use support::pty::PtySession;

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

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Seeds the local workspace (first run creates it) and returns the prod file's text.
fn seeded(home: &Home) -> String {
    let output = run(home, &["status"]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    std::fs::read_to_string(home.local_flags("prod")).expect("prod flag file")
}

fn enabled_in(home: &Home, env: &str, flag: &str) -> bool {
    let text = std::fs::read_to_string(home.local_flags(env)).expect("flag file");
    let document = flagd::parse_document(&text).expect("valid flagd file");
    flagd::summarise(flag, &document["flags"][flag])
        .state
        .enabled
}

fn audit_lines(home: &Home) -> Vec<serde_json::Value> {
    std::fs::read_to_string(home.audit_log())
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).expect("audit line is JSON"))
        .collect()
}

#[test]
fn kill_then_restore_from_a_script_with_trustworthy_exit_codes() {
    let home = Home::new();
    let original = seeded(&home);
    let evaluate = || {
        support::sdk::available().then(|| {
            support::sdk::flagd_evaluate(&home.local_flags("prod"), &["kill_switch_checkout"])
        })
    };
    let served_before = evaluate();
    let kill = [
        "kill",
        "kill_switch_checkout",
        "--env",
        "prod",
        "--note",
        "INC-42 checkout p99 5s",
        "--yes",
    ];

    let killed = run(&home, &kill);
    assert_eq!(code(&killed), 0, "{}", stderr(&killed));
    assert!(
        stdout(&killed).contains("KILL applied"),
        "{}",
        stdout(&killed)
    );
    assert!(stdout(&killed).contains("Confirmed by what services see"));
    assert!(!enabled_in(&home, "prod", "kill_switch_checkout"));
    assert!(enabled_in(&home, "staging", "kill_switch_checkout"));
    if let Some(served) = evaluate() {
        support::sdk::assert_flagd_serves_off(&served, "kill_switch_checkout");
    }
    let records = audit_lines(&home);
    assert_eq!(records.len(), 2);
    assert_eq!(records[0]["phase"], "intent");
    assert_eq!(records[0]["note"], "INC-42 checkout p99 5s");
    assert_eq!(records[1]["result"], "ok");
    assert_eq!(records[0]["id"], records[1]["id"]);

    let again = run(&home, &kill);
    assert_eq!(code(&again), 3, "already killed: nothing to do");
    assert_eq!(audit_lines(&home).len(), 2, "nothing to do writes nothing");

    let restored = run(
        &home,
        &[
            "restore",
            "kill_switch_checkout",
            "--env",
            "prod",
            "--note",
            "INC-42 resolved",
            "--yes",
            "--output",
            "json",
        ],
    );
    assert_eq!(code(&restored), 0, "{}", stderr(&restored));
    let report: serde_json::Value = serde_json::from_str(&stdout(&restored)).expect("json");
    assert_eq!(report["result"], "applied");
    assert_eq!(report["action"], "restore");
    assert_eq!(report["from"], "KILLED");
    assert_eq!(report["to"], "SERVING");
    assert_eq!(report["exit_code"], 0);
    assert!(report["confirmed_ms"].is_u64());
    let after = std::fs::read_to_string(home.local_flags("prod")).expect("prod file");
    let before: serde_json::Value = serde_json::from_str(&original).expect("json");
    let after: serde_json::Value = serde_json::from_str(&after).expect("json");
    assert_eq!(
        before["flags"]["kill_switch_checkout"], after["flags"]["kill_switch_checkout"],
        "a restore puts the flag back exactly"
    );
    if let (Some(before), Some(after)) = (served_before, evaluate()) {
        support::sdk::assert_flagd_same_values(&before, &after, "kill_switch_checkout");
    }
}

#[test]
fn without_a_terminal_and_without_yes_nothing_changes() {
    let home = Home::new();
    let original = seeded(&home);
    let output = run(
        &home,
        &[
            "kill",
            "kill_switch_checkout",
            "--env",
            "prod",
            "--note",
            "INC-1",
        ],
    );
    assert_eq!(code(&output), 4);
    assert!(stderr(&output).contains("--yes"), "{}", stderr(&output));
    assert_eq!(
        std::fs::read_to_string(home.local_flags("prod")).expect("prod"),
        original
    );
    assert!(audit_lines(&home).is_empty());
}

#[test]
fn refusals_and_unknowns_have_their_own_exit_codes() {
    let home = Home::new();
    let original = seeded(&home);
    let cases: [(&[&str], i32, &str); 5] = [
        (
            &[
                "kill",
                "kill_switch_checkout",
                "--env",
                "prod",
                "--note",
                "  ",
                "--yes",
            ],
            4,
            "note is required",
        ),
        (
            &[
                "kill",
                "kill_switch_nope",
                "--env",
                "prod",
                "--note",
                "x",
                "--yes",
            ],
            5,
            "kill_switch_nope",
        ),
        (
            &[
                "kill",
                "kill_switch_checkout",
                "--env",
                "qa",
                "--note",
                "x",
                "--yes",
            ],
            5,
            "no environment `qa`",
        ),
        (
            &[
                "--read-only",
                "kill",
                "kill_switch_checkout",
                "--env",
                "prod",
                "--note",
                "x",
                "--yes",
            ],
            4,
            "read-only",
        ),
        (
            &["kill", "kill_switch_checkout", "--env", "prod"],
            2,
            "--note",
        ),
    ];
    for (args, expected, message) in cases {
        let output = run(&home, args);
        assert_eq!(code(&output), expected, "{args:?}: {}", stderr(&output));
        assert!(
            stderr(&output).contains(message),
            "{args:?}: stderr should say {message:?}: {}",
            stderr(&output)
        );
    }
    assert_eq!(
        std::fs::read_to_string(home.local_flags("prod")).expect("prod"),
        original
    );
    assert!(audit_lines(&home).is_empty());
}

#[test]
fn on_a_terminal_a_protected_environment_needs_its_name_typed() {
    let home = Home::new();
    seeded(&home);
    let args = [
        "kill",
        "kill_switch_checkout",
        "--env",
        "prod",
        "--note",
        "INC-7",
    ];
    let mut wrong = PtySession::spawn(&home, &args, (100, 20));
    wrong.wait_for("Type `prod` to confirm", Duration::from_secs(10));
    wrong.send("y\r");
    assert_eq!(wrong.wait_exit(Duration::from_secs(10)), 4);
    assert!(enabled_in(&home, "prod", "kill_switch_checkout"));

    let mut right = PtySession::spawn(&home, &args, (100, 20));
    right.wait_for("KILL checkout in prod", Duration::from_secs(10));
    right.send("prod\r");
    assert_eq!(right.wait_exit(Duration::from_secs(10)), 0);
    assert!(!enabled_in(&home, "prod", "kill_switch_checkout"));

    let mut dev = PtySession::spawn(
        &home,
        &[
            "kill",
            "kill_switch_checkout",
            "--env",
            "dev",
            "--note",
            "INC-7",
        ],
        (100, 20),
    );
    dev.wait_for("Proceed? [y/N]", Duration::from_secs(10));
    dev.send("y\r");
    assert_eq!(dev.wait_exit(Duration::from_secs(10)), 0);
    assert!(!enabled_in(&home, "dev", "kill_switch_checkout"));
}

#[test]
fn status_json_round_trips_and_filters() {
    let home = Home::new();
    seeded(&home);
    let output = run(&home, &["status", "--output", "json"]);
    assert_eq!(code(&output), 0);
    let report: StatusReport = serde_json::from_str(&stdout(&output)).expect("typed status");
    assert_eq!(report.flags.len(), 18, "6 flags x 3 environments");
    assert!(report.errors.is_empty());
    let canary = report
        .flags
        .iter()
        .find(|f| f.env == "prod" && f.flag == "checkout_stripe_payment_intents_v2024_11")
        .expect("canary in prod");
    assert_eq!(canary.rollout_summary, "10%");
    assert_eq!(canary.state, "ON 10%");
    assert_eq!(
        canary.expected_removal_date,
        chrono::NaiveDate::from_ymd_opt(2026, 10, 1)
    );
    assert_eq!(canary.owner.as_deref(), Some("team-checkout"));

    let output = run(
        &home,
        &[
            "status",
            "--kill-switches",
            "--env",
            "prod",
            "--output",
            "json",
        ],
    );
    let report: StatusReport = serde_json::from_str(&stdout(&output)).expect("typed status");
    assert_eq!(report.flags.len(), 2);
    assert!(report.flags.iter().all(|f| f.state == "SERVING"));

    let output = run(&home, &["status", "--flag", "no_such_flag"]);
    assert_eq!(code(&output), 5);
    let output = run(&home, &["status", "--env", "qa"]);
    assert_eq!(code(&output), 5);
}

#[test]
fn stale_report_for_the_sample_flags() {
    let home = Home::new();
    seeded(&home);
    let output = run(
        &home,
        &["stale", "--as-of", "2026-11-24", "--output", "json"],
    );
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let report: StaleReport = serde_json::from_str(&stdout(&output)).expect("typed report");
    let listed: Vec<(String, String, i64, bool)> = report
        .owners
        .iter()
        .flat_map(|owner| {
            owner
                .flags
                .iter()
                .map(|f| (owner.owner.clone(), f.flag.clone(), f.days_overdue, f.stale))
        })
        .collect();
    assert_eq!(
        listed,
        vec![
            (
                "team-checkout".to_string(),
                "checkout_stripe_payment_intents_v2024_11".to_string(),
                54,
                true
            ),
            (
                "team-recommendations".to_string(),
                "recommendations_ab_test_model_v3".to_string(),
                23,
                false
            ),
        ]
    );
    assert!(report.violations.is_empty());

    let markdown = run(&home, &["stale", "--as-of", "2026-11-24"]);
    let text = stdout(&markdown);
    assert!(text.contains("## team-checkout"), "{text}");
    assert!(text.contains("due for a tech-debt ticket"), "{text}");
    assert!(!text.contains("kill_switch_checkout"), "{text}");
}

/// The "after" of every flip is what the flag then serves: the JSON `to`, the audit outcome's
/// `to` and `status` agree, for a kill and for a restore of a flag with a rollout (a restore
/// once recorded `ON` where the flag served `ON 10%` or `ON 33/33/34`).
#[test]
fn kill_and_restore_report_the_cell_status_then_shows() {
    let home = Home::new();
    seeded(&home);
    let state = |flag: &str| -> String {
        let output = run(
            &home,
            &[
                "status", "--env", "prod", "--flag", flag, "--output", "json",
            ],
        );
        let report: StatusReport = serde_json::from_str(&stdout(&output)).expect("status json");
        report.flags[0].state.clone()
    };
    let output = run(&home, &["status", "--env", "prod", "--output", "json"]);
    let report: StatusReport = serde_json::from_str(&stdout(&output)).expect("status json");
    let mut with_rollout = 0;
    for flag in &report.flags {
        if !flag.enabled {
            continue;
        }
        with_rollout += usize::from(!flag.rollout_summary.is_empty());
        for (command, note) in [("kill", "INC-12 off"), ("restore", "INC-12 back")] {
            let output = run(
                &home,
                &[
                    command, &flag.flag, "--env", "prod", "--note", note, "--yes", "--output",
                    "json",
                ],
            );
            assert_eq!(
                code(&output),
                0,
                "{command} {}: {}",
                flag.flag,
                stderr(&output)
            );
            let result: serde_json::Value = serde_json::from_str(&stdout(&output)).expect("json");
            let now = state(&flag.flag);
            assert_eq!(result["to"], now.as_str(), "{command} {}", flag.flag);
            let records = audit_lines(&home);
            let outcome = &records[records.len() - 1];
            assert_eq!(outcome["to"], now.as_str(), "{command} {}", flag.flag);
            assert_eq!(outcome["from"], result["from"], "{command} {}", flag.flag);
            assert!(
                stdout(&run(
                    &home,
                    &[
                        command, &flag.flag, "--env", "prod", "--note", note, "--yes"
                    ]
                ))
                .contains(&format!("already is {now}")),
                "{command} {}",
                flag.flag
            );
        }
        assert_eq!(
            state(&flag.flag),
            flag.state,
            "{} back as it was",
            flag.flag
        );
    }
    assert!(with_rollout >= 2, "the seed has flags with rollouts");
}

/// The first environment holds no owner, date, kind or description (as a Flagsmith
/// environment read without the admin credential): `status` and `stale` take each from the
/// first environment that has it, instead of showing `-` and reporting every flag.
#[test]
fn status_and_stale_merge_metadata_across_environments() {
    let home = Home::new();
    seeded(&home);
    let as_seeded = run(
        &home,
        &["stale", "--as-of", "2026-11-24", "--output", "json"],
    );
    let as_seeded: StaleReport = serde_json::from_str(&stdout(&as_seeded)).expect("report");
    let path = home.local_flags("dev");
    let mut dev: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("dev")).expect("json");
    for flag in dev["flags"].as_object_mut().expect("flags").values_mut() {
        flag.as_object_mut().expect("flag").remove("metadata");
    }
    std::fs::write(&path, dev.to_string()).expect("write dev");

    let output = run(
        &home,
        &["stale", "--as-of", "2026-11-24", "--output", "json"],
    );
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let report: StaleReport = serde_json::from_str(&stdout(&output)).expect("report");
    assert_eq!(report.owners, as_seeded.owners);
    assert_eq!(report.violations, as_seeded.violations);

    let output = run(&home, &["status", "--output", "json"]);
    let status: StatusReport = serde_json::from_str(&stdout(&output)).expect("status");
    for flag in status.flags.iter().filter(|f| f.env == "dev") {
        let prod = status
            .flags
            .iter()
            .find(|f| f.env == "prod" && f.flag == flag.flag)
            .expect("in prod");
        assert_eq!(flag.owner, prod.owner, "{}", flag.flag);
        assert_eq!(flag.kind, prod.kind, "{}", flag.flag);
        assert_eq!(flag.expected_removal_date, prod.expected_removal_date);
    }
    let table = stdout(&run(&home, &["status"]));
    let catalog = table
        .lines()
        .find(|l| l.starts_with("catalog_v2_search_engine"))
        .expect("row");
    assert!(catalog.ends_with("team-catalog"), "{catalog}");
}

#[test]
fn runbook_step_has_the_exact_commands_and_the_flags_runbook() {
    let home = Home::new();
    seeded(&home);
    let output = run(&home, &["runbook", "kill_switch_checkout"]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let text = stdout(&output);
    for expected in [
        "killswitch status --env prod --flag kill_switch_checkout",
        "killswitch kill kill_switch_checkout --env prod --note",
        "killswitch restore kill_switch_checkout --env prod --note",
        "killswitch --env prod --flag kill_switch_checkout",
        "runbook: ../runbooks/runbook-api-latency-p99.md",
        "owner: team-checkout",
        "11: OUTCOME UNKNOWN",
        "Several environments at once",
        "repeat `--env` (`--env prod --env <other>`)",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
    let output = run(&home, &["runbook", "nope"]);
    assert_eq!(code(&output), 5);
}

#[test]
fn audit_lists_local_records_and_says_when_a_vendor_keeps_no_history() {
    let home = Home::new();
    seeded(&home);
    let killed = run(
        &home,
        &[
            "kill",
            "kill_switch_recommendations",
            "--env",
            "staging",
            "--note",
            "INC-9 recs slow",
            "--yes",
        ],
    );
    assert_eq!(code(&killed), 0, "{}", stderr(&killed));
    let output = run(
        &home,
        &[
            "audit",
            "--since",
            "1h",
            "--flag",
            "kill_switch_recommendations",
            "--output",
            "json",
        ],
    );
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let report: AuditReport = serde_json::from_str(&stdout(&output)).expect("typed audit");
    assert_eq!(report.entries.len(), 2);
    assert!(
        report
            .entries
            .iter()
            .all(|e| e.note.as_deref() == Some("INC-9 recs slow"))
    );
    assert!(
        report.entries[1].what.starts_with("kill ok, confirmed in "),
        "{}",
        report.entries[1].what
    );
    assert_eq!(report.history_errors.len(), 3, "flagd keeps no history");

    let other = run(
        &home,
        &[
            "audit",
            "--flag",
            "kill_switch_checkout",
            "--output",
            "json",
        ],
    );
    let report: AuditReport = serde_json::from_str(&stdout(&other)).expect("typed audit");
    assert!(report.entries.is_empty());

    let bad = run(&home, &["audit", "--since", "yesterday"]);
    assert_eq!(code(&bad), 2);
}

#[test]
fn completions_and_man_page_come_from_the_same_definition() {
    let home = Home::new();
    let bash = run(&home, &["completions", "bash"]);
    assert_eq!(code(&bash), 0);
    // The script registers the dynamic completer; the words come from the clap definition.
    let complete = |words: &[&str]| {
        let output = home
            .command()
            .env("COMPLETE", "bash")
            .env("_CLAP_COMPLETE_INDEX", (words.len() - 1).to_string())
            .arg("--")
            .args(words)
            .output()
            .expect("complete");
        stdout(&output)
    };
    let subcommands = complete(&["killswitch", ""]);
    for word in ["kill", "restore", "runbook", "stale"] {
        assert!(
            subcommands.contains(word),
            "completion lacks {word}: {subcommands}"
        );
    }
    let options = complete(&["killswitch", "status", "--"]);
    assert!(options.contains("--kill-switches"), "{options}");
    let man = run(&home, &["man"]);
    assert_eq!(code(&man), 0);
    assert!(stdout(&man).starts_with(".ie") || stdout(&man).contains(".TH killswitch"));
}

/// `kill --env prod` reconciles an interrupted flip in prod first, and leaves one in another
/// environment alone (its vendor may be the thing that is down).
#[test]
fn kill_reconciles_only_its_own_environment() {
    let home = Home::new();
    seeded(&home);
    let intent = |env: &str, id: &str| {
        serde_json::json!({
            "id": id, "phase": "intent", "at": "2026-11-25T06:16:38.413Z",
            "operator": "alice@bastion", "env": env, "provider": "flagd",
            "flag": "kill_switch_recommendations", "action": "kill",
            "from": "SERVING", "to": "KILLED", "enabled": false, "note": "INC-0 crashed"
        })
        .to_string()
    };
    std::fs::create_dir_all(home.audit_log().parent().expect("dir")).expect("state dir");
    std::fs::write(
        home.audit_log(),
        format!(
            "{}\n{}\n",
            intent("prod", "20261125T061638.413Z-999999-0"),
            intent("staging", "20261125T061638.413Z-999999-1")
        ),
    )
    .expect("audit log");
    let output = run(
        &home,
        &[
            "kill",
            "kill_switch_checkout",
            "--env",
            "prod",
            "--note",
            "INC-3",
            "--yes",
        ],
    );
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert!(
        stderr(&output).contains("interrupted kill of kill_switch_recommendations in prod"),
        "{}",
        stderr(&output)
    );
    let records = audit_lines(&home);
    let reconciled: Vec<&serde_json::Value> = records
        .iter()
        .filter(|r| r["phase"] == "reconciled")
        .collect();
    assert_eq!(reconciled.len(), 1, "{records:?}");
    assert_eq!(reconciled[0]["env"], "prod");
    assert_eq!(reconciled[0]["result"], "not_applied");
}

/// `audit --since 20000000w` panicked (exit 101): a number out of range is a usage error.
#[test]
fn out_of_range_durations_are_usage_errors_not_panics() {
    let home = Home::new();
    seeded(&home);
    for since in [
        "20000000w",
        "99999999999999999999s",
        "36501d",
        "9223372036854775807m",
    ] {
        let output = run(&home, &["audit", "--since", since]);
        assert_eq!(code(&output), 2, "--since {since}: {}", stderr(&output));
        assert!(
            stderr(&output).contains("out of range"),
            "--since {since}: {}",
            stderr(&output)
        );
        assert!(!stderr(&output).contains("panicked"), "{}", stderr(&output));
    }
    let output = run(&home, &["audit", "--since", "5200w"]);
    assert_eq!(code(&output), 0, "100 years is fine: {}", stderr(&output));
}

#[test]
fn out_of_range_numbers_in_the_config_are_usage_errors_naming_the_line() {
    let home = Home::new();
    let dir = home.path().join("cfg");
    std::fs::create_dir_all(&dir).expect("dir");
    for (line, key) in [
        (
            "request_timeout_ms = 18446744073709551615",
            "request_timeout_ms",
        ),
        ("connect_timeout_ms = 0", "connect_timeout_ms"),
        ("verify_timeout_ms = 600001", "verify_timeout_ms"),
    ] {
        let config = dir.join("config.toml");
        std::fs::write(
            &config,
            format!(
                "[network]\n{line}\n\n[[environment]]\nname = \"dev\"\nprovider = \"flagd\"\nfile = \"dev.flagd.json\"\n"
            ),
        )
        .expect("config");
        let output = run(
            &home,
            &["--config", &config.display().to_string(), "status"],
        );
        assert_eq!(code(&output), 2, "{line}: {}", stderr(&output));
        let message = stderr(&output);
        assert!(
            message.contains("config.toml:2:") && message.contains(key),
            "{line}: names the file, line and key: {message}"
        );
    }
}

/// `killswitch --env prdo --flag kill_switch_checkout status` silently printed everything.
#[test]
fn dashboard_options_before_a_subcommand_are_usage_errors() {
    let home = Home::new();
    seeded(&home);
    let cases: [(&[&str], &str); 4] = [
        (
            &["--env", "prdo", "--flag", "kill_switch_checkout", "status"],
            "use `killswitch status --env prdo`",
        ),
        (
            &["--flag", "kill_switch_checkout", "audit"],
            "use `killswitch audit --flag kill_switch_checkout`",
        ),
        (
            &[
                "--flag",
                "kill_switch_checkout",
                "kill",
                "kill_switch_checkout",
                "--env",
                "prod",
                "--note",
                "x",
                "--yes",
            ],
            "`kill` takes the flag as its argument",
        ),
        (
            &["--keymap", "vim", "status"],
            "--keymap only applies to the dashboard",
        ),
    ];
    for (args, message) in cases {
        let output = run(&home, args);
        assert_eq!(code(&output), 2, "{args:?}: {}", stderr(&output));
        assert!(
            stderr(&output).contains(message),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(stdout(&output).is_empty(), "{args:?}: printed nothing");
    }
    assert!(audit_lines(&home).is_empty());
}

#[test]
fn unknown_environments_and_flags_name_the_closest() {
    let home = Home::new();
    let original = seeded(&home);
    let cases: [(&[&str], i32, &str); 5] = [
        (&["status", "--env", "prdo"], 5, "no environment `prdo`"),
        (
            &["status", "--flag", "kill_switch_checkoutt"],
            5,
            "no flag `kill_switch_checkoutt` in any environment read; did you mean `kill_switch_checkout`?",
        ),
        (
            &[
                "kill",
                "kill_switch_checkoutt",
                "--env",
                "prod",
                "--note",
                "INC-1",
                "--yes",
            ],
            5,
            "did you mean `kill_switch_checkout`?",
        ),
        (
            &[
                "kill",
                "kill_switch_checkout",
                "--env",
                "stagign",
                "--note",
                "INC-1",
                "--yes",
            ],
            5,
            "did you mean `staging`?",
        ),
        (
            &["runbook", "kill_swich_checkout", "--env", "prod"],
            5,
            "did you mean `kill_switch_checkout`?",
        ),
    ];
    for (args, expected, message) in cases {
        let output = run(&home, args);
        assert_eq!(code(&output), expected, "{args:?}: {}", stderr(&output));
        assert!(
            stderr(&output).contains(message),
            "{args:?}: {}",
            stderr(&output)
        );
    }
    let output = run(&home, &["status", "--env", "prdo"]);
    assert!(
        stderr(&output).contains("did you mean `prod`?"),
        "{}",
        stderr(&output)
    );
    assert_eq!(
        std::fs::read_to_string(home.local_flags("prod")).expect("prod"),
        original
    );
}

#[test]
fn a_note_of_invisible_characters_only_is_refused_by_kill() {
    let home = Home::new();
    let original = seeded(&home);
    for note in ["\u{200b}", "\u{200b}\u{feff} \u{2060}", "\u{00ad}\u{00ad}"] {
        let output = run(
            &home,
            &[
                "kill",
                "kill_switch_checkout",
                "--env",
                "prod",
                "--note",
                note,
                "--yes",
            ],
        );
        assert_eq!(code(&output), 4, "{note:?}: {}", stderr(&output));
        assert!(
            stderr(&output).contains("an audit note is required"),
            "{note:?}: {}",
            stderr(&output)
        );
    }
    assert_eq!(
        std::fs::read_to_string(home.local_flags("prod")).expect("prod"),
        original
    );
    assert!(audit_lines(&home).is_empty());
}

/// Services, `env -i` and some containers have no `$USER`: the audit log names the OS account,
/// not `unknown`.
#[test]
fn without_user_the_operator_is_the_os_account() {
    let home = Home::new();
    seeded(&home);
    let account = std::process::Command::new("id")
        .arg("-un")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .expect("id -un");
    let output = home
        .command()
        .env_remove("USER")
        .env_remove("LOGNAME")
        .args([
            "kill",
            "kill_switch_checkout",
            "--env",
            "prod",
            "--note",
            "INC-8",
            "--yes",
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run");
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let records = audit_lines(&home);
    let operator = records[0]["operator"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        operator.starts_with(&format!("{account}@")),
        "operator {operator} is the OS account {account}"
    );
    assert!(!operator.starts_with("unknown"), "{operator}");
}

/// Read-only commands create nothing: no audit log, no directory for it.
#[test]
fn read_only_commands_do_not_create_the_audit_log() {
    let home = Home::new();
    seeded(&home);
    let _ = std::fs::remove_file(home.audit_log());
    for args in [
        &["status"][..],
        &["audit"][..],
        &["--read-only", "stale"][..],
    ] {
        let output = run(&home, args);
        assert_eq!(code(&output), 0, "{args:?}: {}", stderr(&output));
        assert!(!home.audit_log().exists(), "{args:?} created the audit log");
    }
}

/// Audit records from before `v` existed (read as version 0) and from a newer writer (`"v": 2`
/// with a field this build does not know) are read everywhere a log is read: `audit`, the
/// search for interrupted flips, their reconciliation, and the dashboard's audit view.
#[test]
fn older_and_newer_audit_records_are_read_everywhere() {
    use killswitch::audit::AuditLog;
    use killswitch::tui::action::Action;
    use killswitch::tui::app::update;
    let home = Home::new();
    seeded(&home);
    let record = |v: Option<u32>, id: &str, env: &str, phase: &str, note: &str| {
        let mut record = serde_json::json!({
            "id": id, "phase": phase, "at": "2026-11-25T06:16:38.413Z",
            "operator": "alice@bastion", "env": env, "provider": "flagd",
            "flag": "kill_switch_checkout", "action": "kill",
            "from": "SERVING", "to": "KILLED", "enabled": false, "note": note
        });
        if phase == "outcome" {
            record["result"] = "ok".into();
        }
        if let Some(v) = v {
            record["v"] = v.into();
            // What a newer writer might add: this build must not stumble on it.
            record["approved_by"] =
                serde_json::json!({"name": "bob", "at": "2026-11-25T06:16:00Z"});
        }
        record.to_string()
    };
    // Finished flips: a version 0 pair and a version 2 pair; interrupted ones of each version
    // (their writer, pid 999999, is gone).
    let lines = [
        record(
            None,
            "20261125T061638.413Z-999999-0",
            "prod",
            "intent",
            "INC-old v0",
        ),
        record(
            None,
            "20261125T061638.413Z-999999-0",
            "prod",
            "outcome",
            "INC-old v0",
        ),
        record(
            Some(2),
            "20261125T061638.413Z-999999-1",
            "prod",
            "intent",
            "INC-new v2",
        ),
        record(
            Some(2),
            "20261125T061638.413Z-999999-1",
            "prod",
            "outcome",
            "INC-new v2",
        ),
        record(
            None,
            "20261125T061638.413Z-999999-2",
            "dev",
            "intent",
            "INC-cut v0",
        ),
        record(
            Some(2),
            "20261125T061638.413Z-999999-3",
            "staging",
            "intent",
            "INC-cut v2",
        ),
    ];
    std::fs::create_dir_all(home.audit_log().parent().expect("dir")).expect("state dir");
    std::fs::write(home.audit_log(), format!("{}\n", lines.join("\n"))).expect("audit log");

    // The log as the library reads it: every record, versions kept.
    let log = AuditLog::open_read_only(&home.audit_log()).expect("log");
    let records = log.records().expect("every version reads");
    assert_eq!(
        records.iter().map(|r| r.v).collect::<Vec<_>>(),
        [0, 0, 2, 2, 0, 2]
    );
    // Interrupted flips of both versions are found.
    let pending: Vec<String> = log
        .pending()
        .expect("pending")
        .into_iter()
        .map(|r| r.env)
        .collect();
    assert_eq!(pending, ["dev", "staging"]);

    // `audit` lists every record.
    let output = run(
        &home,
        &[
            "audit",
            "--flag",
            "kill_switch_checkout",
            "--output",
            "json",
        ],
    );
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let report: AuditReport = serde_json::from_str(&stdout(&output)).expect("typed audit");
    for note in ["INC-old v0", "INC-new v2", "INC-cut v0", "INC-cut v2"] {
        assert!(
            report
                .entries
                .iter()
                .any(|e| e.note.as_deref() == Some(note)),
            "{note}: {:?}",
            report.entries
        );
    }

    // The dashboard's audit view draws them.
    let mut state = support::dashboard::loaded(false, (240, 40), None);
    support::dashboard::press(&mut state, crossterm::event::KeyCode::Char('a'));
    update(
        &mut state,
        Action::AuditLoaded {
            records: Ok(records),
            history: Vec::new(),
        },
    );
    let screen = support::dashboard::render(&state);
    for note in ["INC-old v0", "INC-new v2", "INC-cut v0", "INC-cut v2"] {
        assert!(screen.contains(note), "{note}: {screen}");
    }

    // A writable start in each environment reconciles that environment's interrupted flip.
    for env in ["dev", "staging"] {
        let output = run(
            &home,
            &[
                "kill",
                "kill_switch_recommendations",
                "--env",
                env,
                "--note",
                "INC-5",
                "--yes",
            ],
        );
        assert_eq!(code(&output), 0, "{}", stderr(&output));
        assert!(
            stderr(&output).contains(&format!(
                "interrupted kill of kill_switch_checkout in {env}"
            )),
            "{}",
            stderr(&output)
        );
    }
    let reconciled: Vec<(String, String)> = audit_lines(&home)
        .iter()
        .filter(|r| r["phase"] == "reconciled")
        .map(|r| {
            (
                r["id"].as_str().unwrap_or_default().to_string(),
                r["v"].to_string(),
            )
        })
        .collect();
    assert_eq!(
        reconciled,
        [
            ("20261125T061638.413Z-999999-2".to_string(), "1".to_string()),
            ("20261125T061638.413Z-999999-3".to_string(), "1".to_string()),
        ]
    );
    assert!(
        AuditLog::open_read_only(&home.audit_log())
            .expect("log")
            .pending()
            .expect("pending")
            .is_empty()
    );
}
