//! Starting from Vault alone, against a real OpenBao: `config init --from-vault` writes what
//! `kv/metadata/feature-flags/` lists, and with no config file `status` runs on the
//! environments found there (read through the Flagsmith fake); a policy without `list` falls
//! back to the local workspace in one line; `--local` skips Vault.

#[path = "support/flagsmith_fake.rs"]
mod flagsmith_fake;
mod support;

use std::process::Output;

use flagsmith_fake::{ADMIN_API_KEY, FakeFlagsmith};
use killswitch::commands::status::StatusReport;
use serde_json::json;
use support::Home;
use support::openbao::{self, OpenBao, ROOT_TOKEN};

fn code(output: &Output) -> i32 {
    output.status.code().unwrap_or(-1)
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The binary with Vault's variables, run off the async runtime (the fake serves on it).
async fn run(home: &Home, bao: &OpenBao, token: &str, args: &[&str]) -> Output {
    let mut command = home.command();
    command
        .env("VAULT_ADDR", &bao.addr)
        .env("VAULT_TOKEN", token)
        .args(args)
        .stdin(std::process::Stdio::null());
    tokio::task::spawn_blocking(move || command.output().expect("run killswitch"))
        .await
        .expect("join")
}

/// The platform layout: flagsmith/staging and flagsmith/prod (+ prod/admin) on the fake, a
/// `notify/` folder that is no environment; the shared seed's `testvendor/` is no vendor.
fn seed(bao: &OpenBao, fake: &FakeFlagsmith) {
    let base = "/v1/kv/data/feature-flags";
    let put = |path: &str, data: serde_json::Value| {
        let (status, body) = bao.api(
            "POST",
            &format!("{base}/{path}"),
            Some(ROOT_TOKEN),
            Some(json!({ "data": data })),
        );
        assert_eq!(status, 200, "{path}: {body}");
    };
    for env in ["staging", "prod"] {
        put(
            &format!("flagsmith/{env}"),
            json!({"api_url": format!("{}/api/v1/", fake.url), "environment_key": fake.env(env).server_key}),
        );
    }
    put(
        "flagsmith/prod/admin",
        json!({"admin_api_key": ADMIN_API_KEY}),
    );
    put("notify/chat", json!({"url": "http://127.0.0.1:9/hook"}));
    let (status, body) = bao.api(
        "PUT",
        "/v1/sys/policies/acl/no-list",
        Some(ROOT_TOKEN),
        Some(json!({"policy": "path \"kv/data/feature-flags/*\" { capabilities = [\"read\"] }\n"})),
    );
    assert!((200..300).contains(&status), "policy: {body}");
}

/// The tests share one Vault layout, each seeding it with its own fake's URL: one at a time.
static LAYOUT: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn server() -> Option<&'static OpenBao> {
    if !openbao::available() {
        return None;
    }
    openbao::shared()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_init_from_vault_writes_the_listed_environments_and_never_overwrites() {
    let Some(bao) = server() else { return };
    let _layout = LAYOUT.lock().await;
    let fake = FakeFlagsmith::open_source().await;
    seed(bao, &fake);
    let home = Home::new();
    let init = run(&home, bao, ROOT_TOKEN, &["config", "init", "--from-vault"]).await;
    assert_eq!(code(&init), 0, "{}", stderr(&init));
    let out = stdout(&init);
    assert!(out.contains("Found in Vault kv/feature-flags/:"), "{out}");
    assert!(
        out.contains("prod             flagsmith     kv/feature-flags/flagsmith/prod  (protected)"),
        "{out}"
    );
    assert!(out.contains("kv/feature-flags/flagsmith/staging"), "{out}");
    assert!(
        !out.contains("notify") && !out.contains("testvendor"),
        "{out}"
    );
    let path = home.path().join("config/killswitch/config.toml");
    let written = std::fs::read_to_string(&path).expect("config written");
    let config = killswitch::config::parse(&written, &path).expect("it parses");
    assert_eq!(config.environment_names(), vec!["prod", "staging"]);
    assert!(config.environment("prod").is_some_and(|env| env.protected));
    assert!(
        !config
            .environment("staging")
            .is_some_and(|env| env.protected)
    );
    assert!(
        !written.contains(&fake.env("prod").server_key),
        "no secret in the file"
    );

    // Again: refused, the file untouched; with --force: rewritten.
    std::fs::write(&path, "# mine\n").expect("edit");
    let again = run(&home, bao, ROOT_TOKEN, &["config", "init", "--from-vault"]).await;
    assert_eq!(code(&again), 4, "{}", stderr(&again));
    assert!(stderr(&again).contains("add --force"), "{}", stderr(&again));
    assert_eq!(std::fs::read_to_string(&path).expect("read"), "# mine\n");
    let forced = run(
        &home,
        bao,
        ROOT_TOKEN,
        &["config", "init", "--from-vault", "--force"],
    )
    .await;
    assert_eq!(code(&forced), 0, "{}", stderr(&forced));
    assert_eq!(std::fs::read_to_string(&path).expect("read"), written);

    // The written config runs: status reads both environments from the fake.
    let status = run(&home, bao, ROOT_TOKEN, &["status", "--output", "json"]).await;
    assert_eq!(code(&status), 0, "{}", stderr(&status));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_config_status_uses_the_environments_vault_lists() {
    let Some(bao) = server() else { return };
    let _layout = LAYOUT.lock().await;
    let fake = FakeFlagsmith::open_source().await;
    seed(bao, &fake);
    let home = Home::new();
    let status = run(&home, bao, ROOT_TOKEN, &["status", "--output", "json"]).await;
    assert_eq!(code(&status), 0, "{}", stderr(&status));
    assert!(
        stderr(&status).contains("environments from Vault kv/feature-flags/"),
        "{}",
        stderr(&status)
    );
    let report: StatusReport = serde_json::from_slice(&status.stdout).expect("status JSON");
    let mut envs: Vec<&str> = report.flags.iter().map(|f| f.env.as_str()).collect();
    envs.sort();
    envs.dedup();
    assert_eq!(envs, vec!["prod", "staging"], "{:?}", report.errors);
    assert!(report.flags.iter().all(|f| f.provider == "flagsmith"));
    assert!(
        !home.local_flags("prod").exists(),
        "no local workspace was made"
    );

    // --local forces the local workspace, Vault or not.
    let local = run(
        &home,
        bao,
        ROOT_TOKEN,
        &["status", "--local", "--output", "json"],
    )
    .await;
    assert_eq!(code(&local), 0, "{}", stderr(&local));
    assert!(!stderr(&local).contains("Vault"), "{}", stderr(&local));
    let report: StatusReport = serde_json::from_slice(&local.stdout).expect("status JSON");
    assert!(report.flags.iter().all(|f| f.provider == "flagd"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_without_list_falls_back_to_the_local_workspace_in_one_line() {
    let Some(bao) = server() else { return };
    let _layout = LAYOUT.lock().await;
    let fake = FakeFlagsmith::open_source().await;
    seed(bao, &fake);
    let token = bao.token("reader", &["no-list"], "1h");
    let home = Home::new();
    let status = run(&home, bao, &token, &["status", "--output", "json"]).await;
    assert_eq!(code(&status), 0, "{}", stderr(&status));
    let err = stderr(&status);
    let line: Vec<&str> = err.lines().filter(|l| l.contains("kv/metadata")).collect();
    assert_eq!(line.len(), 1, "{err}");
    assert!(line[0].contains("403"), "{err}");
    assert!(line[0].contains("`list`"), "{err}");
    assert!(line[0].contains("using the local workspace"), "{err}");
    assert!(!err.contains(&token), "the token is never shown");
    let report: StatusReport = serde_json::from_slice(&status.stdout).expect("status JSON");
    assert!(!report.flags.is_empty());
    assert!(report.flags.iter().all(|f| f.provider == "flagd"));

    // And init says so, writing nothing.
    let init = run(&home, bao, &token, &["config", "init", "--from-vault"]).await;
    assert_eq!(code(&init), 6, "{}", stderr(&init));
    assert!(stderr(&init).contains("403"), "{}", stderr(&init));
    assert!(!home.path().join("config/killswitch/config.toml").exists());
}
