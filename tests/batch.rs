//! One kill across several environments: one note, one confirmation naming every protected
//! environment, each environment its own transaction sharing a batch id, a table and JSON,
//! the worst outcome's exit code, one failing environment never stopping the others. On the
//! local flagd workspace and against the Flagsmith fake (credentials from a real OpenBao).

#[path = "support/flagsmith_fake.rs"]
mod flagsmith_fake;
mod support;

use std::path::Path;
use std::process::Output;
use std::sync::Arc;

use flagsmith_fake::{ADMIN_API_KEY, FakeFlagsmith};
use killswitch::audit::AuditLog;
use killswitch::cli::{FlipArgs, FlipOutput};
use killswitch::clock::SystemClock;
use killswitch::commands::kill::{self, Confirm};
use killswitch::provider::{Access, flagd};
use killswitch::session::{NoCredentials, Session};
use serde_json::{Value, json};
use support::Home;

/// Answers the one question with a scripted line and keeps what was asked.
struct Scripted {
    answer: String,
    asked: Vec<String>,
}

impl Confirm for Scripted {
    fn interactive(&self) -> bool {
        true
    }

    fn ask(&mut self, question: &str) -> std::io::Result<String> {
        self.asked.push(question.to_string());
        Ok(self.answer.clone())
    }
}

fn enabled_in(file: &Path, flag: &str) -> bool {
    let text = std::fs::read_to_string(file).expect("flag file");
    let document = flagd::parse_document(&text).expect("valid flagd file");
    flagd::summarise(flag, &document["flags"][flag])
        .state
        .enabled
}

/// dev, staging, prod and prod-eu (a copy of prod) on flagd files in `dir`.
fn local_session(dir: &Path) -> Session {
    let seeded = killswitch::workspace::local_config(dir).expect("seed");
    let prod = seeded
        .environment("prod")
        .and_then(|e| e.file.clone())
        .expect("prod");
    std::fs::copy(&prod, dir.join("prod-eu.flagd.json")).expect("copy");
    let mut text = String::from("protected = [\"prod\", \"prod-eu\"]\n\n");
    for env in ["dev", "staging", "prod", "prod-eu"] {
        text.push_str(&format!(
            "[[environment]]\nname = \"{env}\"\nprovider = \"flagd\"\nfile = \"{env}.flagd.json\"\n\n"
        ));
    }
    let config = killswitch::config::parse(&text, &dir.join("config.toml")).expect("config");
    let audit = AuditLog::open(&dir.join("audit.jsonl")).expect("audit");
    Session::new(
        config,
        Access::ReadWrite,
        Arc::new(NoCredentials),
        Arc::new(audit),
        Arc::new(SystemClock),
    )
}

fn args(envs: &[&str], output: FlipOutput) -> FlipArgs {
    FlipArgs {
        flag: "kill_switch_checkout".into(),
        env: envs.iter().map(|e| e.to_string()).collect(),
        note: "INC-77 checkout errors in every region".into(),
        yes: false,
        output,
        batch: None,
        seen: None,
    }
}

fn audit_records(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("audit.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).expect("JSON"))
        .collect()
}

#[tokio::test]
async fn a_set_touching_protected_environments_needs_every_protected_name_typed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let session = local_session(dir.path());
    let file = |env: &str| dir.path().join(format!("{env}.flagd.json"));
    let envs = ["dev", "prod", "prod-eu"];
    for answer in ["y", "prod", "prod prod-eu dev"] {
        let mut confirm = Scripted {
            answer: answer.into(),
            asked: Vec::new(),
        };
        let mut out = Vec::new();
        let code = kill::run(
            &session,
            &args(&envs, FlipOutput::Json),
            false,
            &mut confirm,
            &mut out,
        )
        .await
        .expect("run");
        assert_eq!(code, 4, "answer {answer:?} must not confirm");
        assert_eq!(confirm.asked.len(), 1, "one question for the set");
        let question = &confirm.asked[0];
        for env in envs {
            assert!(
                question.contains(&format!(
                    "KILL checkout in {env}: kill_switch_checkout SERVING -> KILLED"
                )),
                "{question}"
            );
        }
        assert!(
            question.contains("Protected: prod prod-eu. Type every protected name"),
            "{question}"
        );
        for env in envs {
            assert!(
                enabled_in(&file(env), "kill_switch_checkout"),
                "{env} untouched"
            );
        }
    }
    assert!(
        audit_records(dir.path()).is_empty(),
        "nothing was attempted"
    );

    let mut confirm = Scripted {
        answer: "prod-eu  prod".into(),
        asked: Vec::new(),
    };
    let mut out = Vec::new();
    let code = kill::run(
        &session,
        &args(&envs, FlipOutput::Json),
        false,
        &mut confirm,
        &mut out,
    )
    .await
    .expect("run");
    let report: Value = serde_json::from_slice(&out).expect("JSON");
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["exit_code"], 0);
    let batch = report["batch"].as_str().expect("batch id").to_string();
    assert!(batch.starts_with("batch-"));
    let results: Vec<&str> = report["environments"]
        .as_array()
        .expect("environments")
        .iter()
        .map(|r| r["result"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(results, vec!["applied", "applied", "applied"]);
    for env in envs {
        assert!(
            !enabled_in(&file(env), "kill_switch_checkout"),
            "{env} killed"
        );
    }
    assert!(
        enabled_in(&file("staging"), "kill_switch_checkout"),
        "staging not in the set"
    );
    let records = audit_records(dir.path());
    assert_eq!(records.len(), 6, "intent and outcome per environment");
    assert!(records.iter().all(|r| r["batch"] == batch.as_str()));
    let mut ids: Vec<&str> = records
        .iter()
        .map(|r| r["id"].as_str().unwrap_or(""))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 3, "each environment its own transaction");

    // Again: every one already is killed: exit 3, no question, nothing written.
    let mut confirm = Scripted {
        answer: String::new(),
        asked: Vec::new(),
    };
    let mut out = Vec::new();
    let code = kill::run(
        &session,
        &args(&envs, FlipOutput::Text),
        false,
        &mut confirm,
        &mut out,
    )
    .await
    .expect("run");
    assert_eq!(code, 3);
    assert!(confirm.asked.is_empty());
    let table = String::from_utf8_lossy(&out).into_owned();
    assert!(
        table.starts_with("ENV      RESULT            DETAIL\n"),
        "{table}"
    );
    assert!(
        table.contains(
            "prod-eu  nothing_to_do     kill_switch_checkout in prod-eu already is KILLED"
        ),
        "{table}"
    );
    assert_eq!(audit_records(dir.path()).len(), 6);
}

fn run_binary(home: &Home, vault: Option<&str>, args: &[&str]) -> Output {
    let mut command = home.command();
    if let Some(addr) = vault {
        command
            .env("VAULT_ADDR", addr)
            .env("VAULT_TOKEN", support::openbao::ROOT_TOKEN);
    }
    command
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run killswitch")
}

#[test]
fn one_failing_environment_never_stops_the_others_on_the_local_workspace() {
    let home = Home::new();
    let seeded = run_binary(&home, None, &["status"]);
    assert_eq!(seeded.status.code(), Some(0));
    let mut config = String::new();
    for env in ["dev", "staging", "prod"] {
        config.push_str(&format!(
            "[[environment]]\nname = \"{env}\"\nprovider = \"flagd\"\nfile = \"{}\"\n\n",
            home.local_flags(env).display()
        ));
    }
    // A flag file that is not there: reading it fails.
    config.push_str("[[environment]]\nname = \"gone\"\nprovider = \"flagd\"\nfile = \"/nonexistent/gone.flagd.json\"\n");
    let dir = home.path().join("config/killswitch");
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(dir.join("config.toml"), config).expect("config");
    let out = run_binary(
        &home,
        None,
        &[
            "kill",
            "kill_switch_checkout",
            "--env",
            "dev",
            "--env",
            "gone",
            "--env",
            "staging",
            "--note",
            "INC-78",
            "--yes",
        ],
    );
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_ne!(out.status.code(), Some(0), "{table}");
    let code = out.status.code().unwrap_or(-1);
    assert!(
        [5, 7].contains(&code),
        "the failing environment's code: {code}\n{table}"
    );
    assert!(table.contains("dev      applied"), "{table}");
    assert!(table.contains("staging  applied"), "{table}");
    assert!(table.contains("gone     "), "{table}");
    assert!(table.contains("not done: gone ("), "{table}");
    for env in ["dev", "staging"] {
        let text = std::fs::read_to_string(home.local_flags(env)).expect("read");
        let document = flagd::parse_document(&text).expect("flagd");
        assert!(
            !flagd::summarise(
                "kill_switch_checkout",
                &document["flags"]["kill_switch_checkout"]
            )
            .state
            .enabled,
            "{env} killed despite gone"
        );
    }
    // status takes --env repeated too: only those, so the broken one does not fail it.
    let status = run_binary(
        &home,
        None,
        &[
            "status", "--env", "dev", "--env", "staging", "--output", "json",
        ],
    );
    assert_eq!(status.status.code(), Some(0));
    let report: Value = serde_json::from_slice(&status.stdout).expect("status JSON");
    let mut envs: Vec<&str> = report["flags"]
        .as_array()
        .expect("flags")
        .iter()
        .filter_map(|f| f["env"].as_str())
        .collect();
    envs.sort_unstable();
    envs.dedup();
    assert_eq!(envs, vec!["dev", "staging"]);
    // An unknown environment refuses the whole set before anything is read.
    let unknown = run_binary(
        &home,
        None,
        &[
            "restore",
            "kill_switch_checkout",
            "--env",
            "dev",
            "--env",
            "prdo",
            "--note",
            "x",
            "--yes",
        ],
    );
    assert_eq!(unknown.status.code(), Some(5));
    let err = String::from_utf8_lossy(&unknown.stderr).into_owned();
    assert!(err.contains("no environment `prdo`"), "{err}");
    assert!(
        err.contains("nothing was changed in any environment"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vendor_and_a_local_environment_in_one_batch_with_a_dead_vendor() {
    if !support::openbao::available() {
        return;
    }
    let Some(bao) = support::openbao::shared() else {
        return;
    };
    let fake = FakeFlagsmith::open_source().await;
    let put = |path: &str, data: Value| {
        let (status, body) = bao.api(
            "POST",
            &format!("/v1/kv/data/batch/{path}"),
            Some(support::openbao::ROOT_TOKEN),
            Some(json!({ "data": data })),
        );
        assert_eq!(status, 200, "{body}");
    };
    put(
        "fs-prod",
        json!({"api_url": format!("{}/api/v1/", fake.url), "environment_key": fake.env("prod").server_key, "admin_api_key": ADMIN_API_KEY}),
    );
    let dead = format!("http://127.0.0.1:{}/api/v1/", support::free_port());
    put(
        "fs-down",
        json!({"api_url": dead, "environment_key": "ser.downFakeKey-SECRET", "admin_api_key": ADMIN_API_KEY}),
    );
    let home = Home::new();
    let seeded = run_binary(&home, None, &["status", "--local"]);
    assert_eq!(seeded.status.code(), Some(0));
    let config = format!(
        "[[environment]]\nname = \"dev\"\nprovider = \"flagd\"\nfile = \"{}\"\n\n\
         [[environment]]\nname = \"fs-prod\"\nprovider = \"flagsmith\"\nvault_path = \"batch/fs-prod\"\n\n\
         [[environment]]\nname = \"fs-down\"\nprovider = \"flagsmith\"\nvault_path = \"batch/fs-down\"\n",
        home.local_flags("dev").display()
    );
    let dir = home.path().join("config/killswitch");
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(dir.join("config.toml"), config).expect("config");
    let addr = bao.addr.clone();
    let out = tokio::task::spawn_blocking({
        let home_envs = home.envs();
        move || {
            let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_killswitch"));
            command.env_clear();
            command.env("PATH", std::env::var("PATH").unwrap_or_default());
            command.env("USER", "tester");
            for (key, value) in home_envs {
                command.env(key, value);
            }
            command
                .env("VAULT_ADDR", addr)
                .env("VAULT_TOKEN", support::openbao::ROOT_TOKEN)
                .args([
                    "kill",
                    "kill_switch_checkout",
                    "--env",
                    "fs-prod",
                    "--env",
                    "dev",
                    "--env",
                    "fs-down",
                    "--note",
                    "INC-79 migration: both sides",
                    "--yes",
                    "--output",
                    "json",
                ])
                .stdin(std::process::Stdio::null())
                .output()
                .expect("run")
        }
    })
    .await
    .expect("join");
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("JSON: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(out.status.code(), Some(7), "{report}");
    assert_eq!(report["exit_code"], 7);
    assert_eq!(report["result"], "provider_error");
    let by_env = |env: &str| {
        report["environments"]
            .as_array()
            .and_then(|all| all.iter().find(|r| r["env"] == env))
            .cloned()
            .unwrap_or(Value::Null)
    };
    assert_eq!(by_env("fs-prod")["result"], "applied", "{report}");
    assert_eq!(by_env("dev")["result"], "applied", "{report}");
    assert_eq!(by_env("fs-down")["result"], "provider_error", "{report}");
    assert!(
        by_env("fs-down")["message"]
            .as_str()
            .is_some_and(|m| m.contains("127.0.0.1")),
        "the failure says where: {report}"
    );
    assert!(
        !fake.enabled("prod", "kill_switch_checkout"),
        "the vendor side is killed"
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("SECRET"), "{text}");
    let batch = report["batch"].as_str().expect("batch");
    let log = std::fs::read_to_string(home.audit_log()).expect("audit");
    let tagged = log.lines().filter(|l| l.contains(batch)).count();
    assert_eq!(
        tagged, 4,
        "intent + outcome in fs-prod and dev share the batch id:\n{log}"
    );
}
