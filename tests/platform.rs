//! The platform's setup end to end, through the real binary: environment keys in a real
//! OpenBao (KV v2 at `kv/feature-flags/flagsmith/<env>`, admin credential in `…/admin`),
//! Flagsmith behind them (the fake built from recorded responses), killswitch reading both.

#[path = "support/flagsmith_fake.rs"]
mod flagsmith_fake;
mod support;

use std::process::Output;

use flagsmith_fake::{ADMIN_API_KEY, FakeFlagsmith};
use killswitch::commands::status::StatusReport;
use serde_json::json;
use support::Home;
use support::openbao::{self, OpenBao};

const ENVS: [&str; 3] = ["dev", "staging", "prod"];

/// Seeds the Flagsmith secrets for the fake into the shared OpenBao.
fn seed(bao: &OpenBao, fake: &FakeFlagsmith, prefix: &str) {
    for env in ENVS {
        let server_key = fake.env(env).server_key;
        bao.put(
            &format!("/v1/kv/data/feature-flags/{prefix}/{env}"),
            json!({"api_url": format!("{}/api/v1/", fake.url), "environment_key": server_key}),
        );
        bao.put(
            &format!("/v1/kv/data/feature-flags/{prefix}/{env}/admin"),
            json!({"admin_api_key": ADMIN_API_KEY}),
        );
    }
}

/// A config with the three environments on Flagsmith, secrets under `feature-flags/<prefix>/`.
fn write_config(home: &Home, prefix: &str) -> String {
    let mut text = format!(
        "protected = [\"prod\"]\n[vault]\npath_template = \"feature-flags/{prefix}/{{env}}\"\n"
    );
    for env in ENVS {
        text.push_str(&format!(
            "\n[[environment]]\nname = \"{env}\"\nprovider = \"flagsmith\"\n"
        ));
    }
    let path = home.path().join("platform.toml");
    std::fs::write(&path, text).expect("write config");
    path.display().to_string()
}

async fn run(home: &Home, addr: &str, token: &str, args: Vec<String>) -> Output {
    let mut command = home.command();
    command
        .env("VAULT_ADDR", addr)
        .env("VAULT_TOKEN", token)
        .args(args)
        .stdin(std::process::Stdio::null());
    tokio::task::spawn_blocking(move || command.output().expect("run killswitch"))
        .await
        .expect("join")
}

fn args(config: &str, rest: &[&str]) -> Vec<String> {
    let mut all = vec!["--config".to_string(), config.to_string()];
    all.extend(rest.iter().map(|s| s.to_string()));
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_from_openbao_flags_from_flagsmith_kill_from_a_runbook() {
    if !openbao::available() {
        return;
    }
    let Some(bao) = openbao::shared() else { return };
    let fake = FakeFlagsmith::open_source().await;
    seed(bao, &fake, "flagsmith");
    let home = Home::new();
    let config = write_config(&home, "flagsmith");
    let admin = bao.token("oncall-bob", &["kill-admin"], "10m");
    let reader = bao.token("viewer-alice", &["kill-reader"], "10m");

    // Everyone sees every environment, read with the server-side keys from Vault.
    let status = run(
        &home,
        &bao.addr,
        &reader,
        args(&config, &["status", "--output", "json"]),
    )
    .await;
    let stderr = String::from_utf8_lossy(&status.stderr).to_string();
    assert_eq!(status.status.code(), Some(0), "{stderr}");
    let report: StatusReport = serde_json::from_slice(&status.stdout).expect("typed status report");
    assert_eq!(
        report.flags.len(),
        18,
        "6 flags x 3 environments: {report:?}"
    );
    assert!(report.flags.iter().all(|f| f.provider == "flagsmith"));
    let prod_switch = report
        .flags
        .iter()
        .find(|f| f.env == "prod" && f.flag == "kill_switch_checkout")
        .expect("the switch in prod");
    assert_eq!(prod_switch.state, "SERVING");

    // A viewer whose policy cannot read …/admin cannot kill, and is told why.
    let refused = run(
        &home,
        &bao.addr,
        &reader,
        args(
            &config,
            &[
                "kill",
                "kill_switch_checkout",
                "--env",
                "prod",
                "--note",
                "INC-5",
                "--yes",
            ],
        ),
    )
    .await;
    let stderr = String::from_utf8_lossy(&refused.stderr).to_string();
    assert_eq!(refused.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains("kv/feature-flags/flagsmith/prod/admin (403)"),
        "{stderr}"
    );
    assert!(fake.enabled("prod", "kill_switch_checkout"));

    // On-call kills it from the runbook step; services see it; the audit names bob.
    let killed = run(
        &home,
        &bao.addr,
        &admin,
        args(
            &config,
            &[
                "kill",
                "kill_switch_checkout",
                "--env",
                "prod",
                "--note",
                "INC-5 checkout p99 5s",
                "--yes",
            ],
        ),
    )
    .await;
    let stdout = String::from_utf8_lossy(&killed.stdout).to_string();
    let stderr = String::from_utf8_lossy(&killed.stderr).to_string();
    assert_eq!(killed.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains("Confirmed by what services see (Flagsmith's /api/v1/flags/"),
        "{stdout}"
    );
    assert!(!fake.enabled("prod", "kill_switch_checkout"));
    assert!(fake.enabled("staging", "kill_switch_checkout"));
    let audit = std::fs::read_to_string(home.audit_log()).expect("audit log");
    let records: Vec<serde_json::Value> = audit
        .lines()
        .map(|line| serde_json::from_str(line).expect("audit line"))
        .collect();
    assert_eq!(records.len(), 2);
    for record in &records {
        assert_eq!(record["provider"], "flagsmith");
        assert_eq!(record["note"], "INC-5 checkout p99 5s");
        assert!(
            record["operator"]
                .as_str()
                .is_some_and(|who| who.contains("oncall-bob")),
            "{record}"
        );
    }
    assert_eq!(records[1]["result"], "ok");

    // Every other command, with the same secrets in play.
    let mut outputs = vec![status, refused, killed];
    for rest in [
        &["runbook", "kill_switch_checkout"][..],
        &[
            "audit",
            "--flag",
            "kill_switch_checkout",
            "--output",
            "json",
        ][..],
        &["stale", "--as-of", "2026-11-24"][..],
        &["status", "--kill-switches"][..],
        &[
            "--read-only",
            "kill",
            "kill_switch_checkout",
            "--env",
            "dev",
            "--note",
            "x",
            "--yes",
        ][..],
    ] {
        let output = run(&home, &bao.addr, &admin, args(&config, rest)).await;
        assert!(
            output.status.code().is_some_and(|code| code != 101),
            "{rest:?} panicked: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        outputs.push(output);
    }

    // Nothing secret anywhere the operator or a log reader looks.
    let fake_keys: Vec<String> = ENVS.iter().map(|env| fake.env(env).server_key).collect();
    for secret in
        fake_keys
            .iter()
            .map(String::as_str)
            .chain([ADMIN_API_KEY, admin.as_str(), reader.as_str()])
    {
        assert!(!audit.contains(secret), "a secret in the audit log");
        for output in &outputs {
            assert!(!String::from_utf8_lossy(&output.stdout).contains(secret));
            assert!(!String::from_utf8_lossy(&output.stderr).contains(secret));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vault_failures_are_exit_6_and_name_the_path() {
    if !openbao::available() {
        return;
    }
    let Some(bao) = openbao::shared() else { return };
    let fake = FakeFlagsmith::open_source().await;
    let home = Home::new();
    // Nothing seeded under this prefix: every environment's secret is missing.
    let config = write_config(&home, "flagsmith-unseeded");
    let token = bao.token("oncall-carol", &["kill-admin"], "10m");
    let status = run(&home, &bao.addr, &token, args(&config, &["status"])).await;
    let stderr = String::from_utf8_lossy(&status.stderr).to_string();
    let stdout = String::from_utf8_lossy(&status.stdout).to_string();
    assert_eq!(status.status.code(), Some(6), "{stdout}{stderr}");
    assert!(
        stdout.contains("kv/feature-flags/flagsmith-unseeded/prod"),
        "names the path: {stdout}"
    );
    // A runbook step read from the same environment fails the same way (it said 7, "the
    // vendor failed", when the error was a string).
    let step = run(
        &home,
        &bao.addr,
        &token,
        args(
            &config,
            &["runbook", "kill_switch_checkout", "--env", "prod"],
        ),
    )
    .await;
    let said = String::from_utf8_lossy(&step.stderr).to_string();
    assert_eq!(step.status.code(), Some(6), "{said}");
    assert!(
        said.contains("kv/feature-flags/flagsmith-unseeded/prod"),
        "{said}"
    );

    // A revoked token: the message says to log in again.
    bao.revoke(&token);
    seed(bao, &fake, "flagsmith-revoked");
    let config = write_config(&home, "flagsmith-revoked");
    let status = run(&home, &bao.addr, &token, args(&config, &["status"])).await;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&status.stdout),
        String::from_utf8_lossy(&status.stderr)
    );
    assert_eq!(status.status.code(), Some(6), "{text}");
    assert!(text.contains("vault login"), "{text}");
    assert!(!text.contains(&token), "the token itself is never shown");
}
