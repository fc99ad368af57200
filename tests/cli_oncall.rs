//! Scripting on the on-call path (issue 21): `status --check` for a runbook's verify step, a
//! closed pipe, dynamic completion, structured audit JSON, the missing flag named in `errors`,
//! exit codes in `--help` and the man page, and `doctor` against the local workspace and a real
//! OpenBao with the Flagsmith fake.

#[path = "support/flagsmith_fake.rs"]
mod flagsmith_fake;
mod support;

use std::io::Read;
use std::process::{Output, Stdio};

use flagsmith_fake::{ADMIN_API_KEY, FakeFlagsmith};
use killswitch::commands::audit::AuditReport;
use killswitch::commands::status::StatusReport;
use serde_json::json;
use support::Home;
use support::openbao;

fn run(home: &Home, args: &[&str]) -> Output {
    home.command()
        .args(args)
        .stdin(Stdio::null())
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

fn seeded() -> Home {
    let home = Home::new();
    let output = run(&home, &["status"]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    home
}

#[test]
fn status_check_answers_a_runbook_verify_step_with_its_exit_code() {
    let home = seeded();
    let check = |state: &str| {
        run(
            &home,
            &[
                "status",
                "--flag",
                "kill_switch_checkout",
                "--env",
                "prod",
                "--check",
                state,
            ],
        )
    };
    let serving = check("serving");
    assert_eq!(code(&serving), 0, "{}", stdout(&serving));
    assert_eq!(
        stdout(&serving),
        "yes: kill_switch_checkout in prod is SERVING (expected serving)\n"
    );
    let killed = check("killed");
    assert_eq!(code(&killed), 1, "{}", stdout(&killed));
    assert!(stdout(&killed).starts_with("NO: "), "{}", stdout(&killed));
    let kill = run(
        &home,
        &[
            "kill",
            "kill_switch_checkout",
            "--env",
            "prod",
            "--note",
            "INC-9 verify",
            "--yes",
        ],
    );
    assert_eq!(code(&kill), 0, "{}", stderr(&kill));
    assert_eq!(code(&check("killed")), 0);
    assert_eq!(code(&check("serving")), 1);
    // A flag that is not there is not a "no": it is exit 5.
    let missing = run(
        &home,
        &[
            "status",
            "--flag",
            "kill_switch_chekout",
            "--env",
            "prod",
            "--check",
            "killed",
        ],
    );
    assert_eq!(code(&missing), 5, "{}", stdout(&missing));
    // --check needs both --flag and --env.
    assert_eq!(code(&run(&home, &["status", "--check", "killed"])), 2);
}

#[test]
fn a_missing_flag_is_named_in_the_json_errors() {
    let home = seeded();
    let output = run(
        &home,
        &[
            "status",
            "--flag",
            "kill_switch_chekout",
            "--output",
            "json",
        ],
    );
    assert_eq!(code(&output), 5);
    let report: StatusReport = serde_json::from_slice(&output.stdout).expect("status JSON");
    assert!(report.flags.is_empty());
    assert_eq!(report.errors.len(), 1, "{report:?}");
    assert_eq!(
        report.errors[0].error,
        "no flag `kill_switch_chekout` in any environment read; did you mean `kill_switch_checkout`?"
    );
}

/// The reader goes away before killswitch writes (`status | head -2` once head has its lines):
/// no "Broken pipe" error, exit 0.
#[test]
fn a_closed_pipe_ends_quietly_with_success() {
    let home = seeded();
    for args in [&["status"][..], &["status", "--output", "json"], &["audit"]] {
        let mut child = home
            .command()
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        drop(child.stdout.take());
        let mut err = String::new();
        if let Some(mut stderr) = child.stderr.take() {
            let _ = stderr.read_to_string(&mut err);
        }
        let status = child.wait().expect("wait");
        assert_eq!(status.code(), Some(0), "{args:?}: {err}");
        assert!(!err.to_lowercase().contains("pipe"), "{args:?}: {err}");
    }
}

#[test]
fn shell_completion_offers_environment_names_and_flag_keys() {
    let home = seeded();
    let complete = |words: &[&str]| {
        let output = home
            .command()
            .env("COMPLETE", "fish")
            .arg("--")
            .args(words)
            .stdin(Stdio::null())
            .output()
            .expect("complete");
        assert_eq!(code(&output), 0, "{}", stderr(&output));
        stdout(&output)
            .lines()
            .map(|line| line.split('\t').next().unwrap_or_default().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        complete(&["killswitch", "--env", ""]),
        ["dev", "staging", "prod"]
    );
    assert_eq!(
        complete(&["killswitch", "status", "--env", "st"]),
        ["staging"]
    );
    assert_eq!(
        complete(&["killswitch", "kill", "--env", "prod", "kill_"]),
        ["kill_switch_checkout", "kill_switch_recommendations"]
    );
    assert_eq!(
        complete(&["killswitch", "--flag", "catalog_"]),
        [
            "catalog_per_tenant_pagination_size",
            "catalog_v2_search_engine"
        ]
    );
    // `completions bash` registers the dynamic completer (not a static file-name script).
    let script = run(&home, &["completions", "bash"]);
    assert_eq!(code(&script), 0);
    assert!(
        stdout(&script).contains("COMPLETE=\"bash\""),
        "{}",
        stdout(&script)
    );
}

#[test]
fn audit_json_carries_action_result_confirmation_and_the_change() {
    let home = seeded();
    let kill = run(
        &home,
        &[
            "kill",
            "kill_switch_checkout",
            "--env",
            "prod",
            "--note",
            "INC-7 audit json",
            "--yes",
        ],
    );
    assert_eq!(code(&kill), 0, "{}", stderr(&kill));
    let output = run(&home, &["audit", "--output", "json"]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let raw: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    let outcome = raw["entries"]
        .as_array()
        .and_then(|entries| entries.iter().find(|e| e["result"] == "ok"))
        .unwrap_or_else(|| panic!("an ok outcome: {raw}"));
    assert_eq!(outcome["action"], "kill");
    assert_eq!(outcome["from"], "SERVING");
    assert_eq!(outcome["to"], "KILLED");
    assert!(outcome["confirmed_ms"].is_u64(), "{outcome}");
    let intent = raw["entries"]
        .as_array()
        .and_then(|entries| entries.iter().find(|e| e["result"] == "intent"))
        .unwrap_or_else(|| panic!("an intent: {raw}"));
    assert_eq!(intent["action"], "kill");
    let report: AuditReport = serde_json::from_slice(&output.stdout).expect("typed");
    assert_eq!(report.entries.len(), 2);
}

#[test]
fn help_and_the_man_page_list_the_exit_codes_and_refer_to_no_missing_page() {
    let home = Home::new();
    let help = run(&home, &["--help"]);
    assert_eq!(code(&help), 0);
    let text = stdout(&help);
    assert!(text.contains("Exit status:"), "{text}");
    assert!(text.contains("5   no such flag or environment"), "{text}");
    // Every code in `commands::exit` is listed.
    for code in 0..=killswitch::commands::exit::OUTCOME_UNKNOWN {
        assert!(
            text.lines()
                .any(|l| l.trim_start().starts_with(&format!("{code} "))),
            "exit {code} in --help: {text}"
        );
    }
    let man = run(&home, &["man"]);
    assert_eq!(code(&man), 0);
    let roff = stdout(&man);
    assert!(roff.contains(".SH \"EXIT STATUS\""), "{roff}");
    assert!(roff.contains("no such flag or environment"), "{roff}");
    assert!(!roff.contains("(1)"), "no references to sub-pages: {roff}");
    assert!(roff.contains("killswitch status"), "{roff}");
}

#[test]
fn doctor_passes_on_the_local_workspace() {
    let home = seeded();
    let output = run(&home, &["doctor"]);
    assert_eq!(code(&output), 0, "{}", stdout(&output));
    let text = stdout(&output);
    for env in ["dev", "staging", "prod"] {
        assert!(
            text.contains(&format!("ok    {env} (flagd) read: 6 flags read")),
            "{text}"
        );
    }
    assert!(text.ends_with("all checks passed\n"), "{text}");
}

/// A real OpenBao and the Flagsmith fake: one environment set up right, one whose secret is
/// missing, one whose key the vendor refuses. One line per check, the fix named, exit 1; and
/// without VAULT_ADDR the Vault line says what to export.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_checks_vault_each_secret_and_the_vendor() {
    if !openbao::available() {
        return;
    }
    let Some(bao) = openbao::shared() else { return };
    let flagsmith = FakeFlagsmith::open_source().await;
    let base = "/v1/kv/data/feature-flags/doctor/flagsmith";
    bao.put(
        &format!("{base}/good"),
        json!({
            "api_url": format!("{}/api/v1/", flagsmith.url),
            "environment_key": flagsmith.env("prod").server_key,
            "admin_api_key": ADMIN_API_KEY,
        }),
    );
    bao.put(
        &format!("{base}/badkey"),
        json!({
            "api_url": format!("{}/api/v1/", flagsmith.url),
            "environment_key": "ser.not-a-real-key",
            "admin_api_key": ADMIN_API_KEY,
        }),
    );
    let token = bao.token("oncall-doc", &["kill-admin"], "30m");
    let home = seeded();
    let config = "protected = []\n\
        [vault]\npath_template = \"feature-flags/doctor/{provider}/{env}\"\n\
        [[environment]]\nname = \"good\"\nprovider = \"flagsmith\"\n\
        [[environment]]\nname = \"missing\"\nprovider = \"flagsmith\"\n\
        [[environment]]\nname = \"badkey\"\nprovider = \"flagsmith\"\n\
        [[environment]]\nname = \"forbidden\"\nprovider = \"flagsmith\"\nvault_path = \"forbidden/thing\"\n";
    let path = home.path().join("doctor.toml");
    std::fs::write(&path, config).expect("config");
    let path = path.display().to_string();
    let addr = bao.addr.clone();
    let (with_vault, without_vault) = tokio::task::spawn_blocking(move || {
        let with_vault = home
            .command()
            .env("VAULT_ADDR", &addr)
            .env("VAULT_TOKEN", &token)
            .args(["--config", &path, "doctor"])
            .stdin(Stdio::null())
            .output()
            .expect("doctor");
        let without_vault = home
            .command()
            .args(["--config", &path, "doctor"])
            .stdin(Stdio::null())
            .output()
            .expect("doctor");
        (with_vault, without_vault)
    })
    .await
    .expect("join");
    let text = stdout(&with_vault);
    assert_eq!(code(&with_vault), 1, "{text}");
    assert!(text.contains("ok    vault: "), "{text}");
    assert!(text.contains("token of token-oncall-doc"), "{text}");
    assert!(
        text.contains("ok    good (flagsmith) secret: kv/feature-flags/doctor/flagsmith/good"),
        "{text}"
    );
    assert!(text.contains("ok    good (flagsmith) read: "), "{text}");
    let missing = text
        .lines()
        .find(|l| l.starts_with("FAIL  missing (flagsmith) secret"))
        .unwrap_or_else(|| panic!("a line for the missing secret: {text}"));
    assert!(
        missing.contains("kv/feature-flags/doctor/flagsmith/missing")
            && missing.contains("fix: vault kv put kv/feature-flags/doctor/flagsmith/missing"),
        "{missing}"
    );
    assert!(text.contains("FAIL  badkey (flagsmith) read: "), "{text}");
    // A secret the token's policy may not read: the fix is a policy, not `vault kv put`.
    let forbidden = text
        .lines()
        .find(|l| l.starts_with("FAIL  forbidden (flagsmith) secret"))
        .unwrap_or_else(|| panic!("a line for the forbidden secret: {text}"));
    assert!(
        forbidden.contains("403")
            && forbidden.contains("fix: ask for a Vault policy with read on kv/forbidden/thing")
            && !forbidden.contains("vault kv put"),
        "{forbidden}"
    );
    assert!(text.ends_with("3 checks failed\n"), "{text}");
    assert!(!text.contains(ADMIN_API_KEY), "no secret printed");
    let text = stdout(&without_vault);
    assert_eq!(code(&without_vault), 1, "{text}");
    assert!(
        text.contains("FAIL  vault: VAULT_ADDR is not set")
            && text.contains("fix: export VAULT_ADDR="),
        "{text}"
    );
}

/// The `# policy: NAME` HCL blocks of docs/vault.md.
fn documented_policies() -> Vec<(String, String)> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/vault.md"))
        .expect("docs/vault.md");
    let mut policies = Vec::new();
    for block in doc.split("```hcl\n").skip(1) {
        let body = block.split("```").next().unwrap_or_default();
        if let Some(name) = body
            .lines()
            .next()
            .and_then(|line| line.strip_prefix("# policy: "))
        {
            policies.push((name.trim().to_string(), body.to_string()));
        }
    }
    policies
}

/// The least-privilege policies as docs/vault.md prints them, loaded into a real OpenBao: the
/// operator's token gets a write path, the viewer's reads and gets none (doctor still passes:
/// read-only is a valid setup, and it says why).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_policies_give_operators_writes_and_viewers_reads() {
    if !openbao::available() {
        return;
    }
    let Some(bao) = openbao::shared() else { return };
    let policies = documented_policies();
    let names: Vec<&str> = policies.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, ["killswitch-operator", "killswitch-viewer"]);
    for (name, text) in &policies {
        let (status, body) = bao.api(
            "PUT",
            &format!("/v1/sys/policies/acl/{name}"),
            Some(openbao::ROOT_TOKEN),
            Some(json!({ "policy": text })),
        );
        assert!((200..300).contains(&status), "{name}: {status} {body}");
    }
    let flagsmith = FakeFlagsmith::open_source().await;
    // The default layout the policies are written for: kv/feature-flags/<provider>/<env>.
    let base = "/v1/kv/data/feature-flags/flagsmith";
    bao.put(
        &format!("{base}/policyprod"),
        json!({
            "api_url": format!("{}/api/v1/", flagsmith.url),
            "environment_key": flagsmith.env("prod").server_key,
        }),
    );
    bao.put(
        &format!("{base}/policyprod/admin"),
        json!({ "admin_api_key": ADMIN_API_KEY }),
    );
    let operator = bao.token("oncall-op", &["killswitch-operator"], "30m");
    let viewer = bao.token("oncall-viewer", &["killswitch-viewer"], "30m");
    let home = seeded();
    let config = "protected = []\n\
        [[environment]]\nname = \"policyprod\"\nprovider = \"flagsmith\"\n";
    let path = home.path().join("policies.toml");
    std::fs::write(&path, config).expect("config");
    let path = path.display().to_string();
    let addr = bao.addr.clone();
    let (op, view) = tokio::task::spawn_blocking(move || {
        let doctor = |token: &str| {
            home.command()
                .env("VAULT_ADDR", &addr)
                .env("VAULT_TOKEN", token)
                .args(["--config", &path, "doctor"])
                .stdin(Stdio::null())
                .output()
                .expect("doctor")
        };
        (doctor(&operator), doctor(&viewer))
    })
    .await
    .expect("join");
    let text = stdout(&op);
    assert_eq!(code(&op), 0, "{text}");
    assert!(
        text.contains("ok    policyprod (flagsmith) write: write path ready"),
        "{text}"
    );
    let text = stdout(&view);
    assert_eq!(code(&view), 0, "{text}");
    assert!(
        text.contains("ok    policyprod (flagsmith) read: "),
        "{text}"
    );
    assert!(
        text.contains("note  policyprod (flagsmith) write: your Vault policy cannot read kv/feature-flags/flagsmith/policyprod/admin (403): read-only"),
        "{text}"
    );
}
