//! Vault KV v2 credentials against a real OpenBao dev server (started once for this binary,
//! seeded by `support::openbao`), plus a silent server for timeouts and the real binary end to
//! end. Every test that needs OpenBao skips outside CI when `bao` is not installed and fails
//! under `CI=true`.

mod support;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use killswitch::config::{EnvironmentConfig, NetworkConfig, ProviderKind};
use killswitch::session::{CredentialSource, Credentials};
use killswitch::tui::action::Action;
use killswitch::tui::app::update;
use killswitch::vault::{VaultCredentials, VaultEnv};
use support::openbao::{self, OpenBao, ROOT_TOKEN, SECRETS, VENDOR};
use support::{Home, free_port};

const REQUIRED: &[&str] = &["api_url", "environment_key"];
const WRITE: &[&str] = &["admin_token"];

/// Every string a test produced that a user could see; checked for secret values at the end of
/// each test that collects them.
#[derive(Default)]
struct Seen(Mutex<Vec<String>>);

impl Seen {
    fn add(&self, text: impl Into<String>) -> String {
        let text = text.into();
        if let Ok(mut seen) = self.0.lock() {
            seen.push(text.clone());
        }
        text
    }

    fn assert_no_secret(&self, tokens: &[&str]) {
        let seen = self.0.lock().expect("seen").join("\n");
        assert!(!seen.is_empty(), "nothing collected");
        for secret in SECRETS.iter().chain(tokens) {
            assert!(
                !seen.contains(secret),
                "secret value {secret} leaked in:\n{seen}"
            );
        }
    }
}

fn server() -> Option<&'static OpenBao> {
    if !openbao::available() {
        return None;
    }
    openbao::shared()
}

fn network() -> NetworkConfig {
    NetworkConfig {
        connect_timeout: Duration::from_millis(500),
        request_timeout: Duration::from_millis(1500),
        verify_timeout: Duration::from_secs(2),
    }
}

fn vault_env(addr: &str, token: Option<&str>) -> VaultEnv {
    VaultEnv {
        addr: Some(addr.to_string()),
        token: token.map(killswitch::secret::Secret::new),
        // A HOME without ~/.vault-token, so the developer's own token is never picked up.
        home: Some(PathBuf::from("/nonexistent-home-for-tests")),
        ..VaultEnv::default()
    }
}

fn vault(addr: &str, token: &str) -> VaultCredentials {
    VaultCredentials::new(&vault_env(addr, Some(token)), &network())
}

fn path(env: &str) -> String {
    format!("feature-flags/{VENDOR}/{env}")
}

async fn read(vault: &VaultCredentials, env: &str) -> Result<Credentials, String> {
    vault
        .read_fields(env, "kv", &path(env), REQUIRED, WRITE)
        .await
}

fn value(credentials: &Credentials, field: &str) -> String {
    credentials
        .fields
        .get(field)
        .map(|secret| secret.expose().to_string())
        .unwrap_or_default()
}

#[tokio::test]
async fn every_environment_is_read_concurrently_with_its_admin_credential() {
    let Some(bao) = server() else { return };
    let token = bao.token("bob", &["kill-admin"], "10m");
    let vault = vault(&bao.addr, &token);
    let started = Instant::now();
    let (dev, staging, prod) = tokio::join!(
        read(&vault, "dev"),
        read(&vault, "staging"),
        read(&vault, "prod")
    );
    let elapsed = started.elapsed();
    let (dev, staging, prod) = (
        dev.expect("dev"),
        staging.expect("staging"),
        prod.expect("prod"),
    );
    assert_eq!(value(&dev, "environment_key"), SECRETS[0]);
    assert_eq!(
        value(&dev, "admin_token"),
        SECRETS[3],
        "from the env's own secret"
    );
    assert_eq!(value(&staging, "environment_key"), SECRETS[1]);
    assert_eq!(
        value(&staging, "admin_token"),
        SECRETS[4],
        "from staging/admin"
    );
    assert_eq!(value(&prod, "environment_key"), SECRETS[2]);
    assert_eq!(value(&prod, "admin_token"), SECRETS[5], "from prod/admin");
    assert_eq!(value(&prod, "api_url"), "http://127.0.0.1:9/api/v1/");
    for credentials in [&dev, &staging, &prod] {
        assert_eq!(credentials.write_denied, None);
    }
    assert_eq!(prod.fields.source, "vault kv/feature-flags/testvendor/prod");
    assert!(
        elapsed < Duration::from_secs(2),
        "three reads took {elapsed:?}"
    );
    eprintln!("three environments read concurrently in {elapsed:?}");
    let debug = format!("{dev:?} {prod:?} {vault:?}");
    for secret in SECRETS.iter().chain([&token.as_str()]) {
        assert!(!debug.contains(secret), "{secret} in Debug: {debug}");
    }
}

#[tokio::test]
async fn a_policy_that_cannot_read_admin_gives_read_only_with_the_reason() {
    let Some(bao) = server() else { return };
    let token = bao.token("alice", &["kill-reader"], "10m");
    let vault = vault(&bao.addr, &token);
    let prod = read(&vault, "prod").await.expect("prod readable");
    assert_eq!(value(&prod, "environment_key"), SECRETS[2]);
    assert!(prod.fields.get("admin_token").is_none());
    assert_eq!(
        prod.write_denied.as_deref(),
        Some(
            "your Vault policy cannot read kv/feature-flags/testvendor/prod/admin (403): read-only"
        )
    );
    // dev keeps its admin credential in the readable secret: writable even for alice.
    let dev = read(&vault, "dev").await.expect("dev readable");
    assert_eq!(dev.write_denied, None);
    assert_eq!(value(&dev, "admin_token"), SECRETS[3]);
}

/// Providers with alternative admin credentials (Flagsmith: `admin_api_key` or `admin_token`)
/// are writable with any one of them; with none, read-only names both.
#[tokio::test]
async fn any_one_of_alternative_admin_fields_is_enough_to_write() {
    let Some(bao) = server() else { return };
    let vault = vault(&bao.addr, ROOT_TOKEN);
    let alternatives = &["admin_api_key", "admin_token"];
    for env in ["dev", "prod"] {
        let credentials = vault
            .read_fields(env, "kv", &path(env), REQUIRED, alternatives)
            .await
            .expect("readable");
        assert_eq!(credentials.write_denied, None, "{env}");
        assert!(credentials.fields.get("admin_token").is_some(), "{env}");
        assert!(credentials.fields.get("admin_api_key").is_none(), "{env}");
    }
    let qa = vault
        .read_fields("qa", "kv", &path("qa"), REQUIRED, alternatives)
        .await
        .expect("readable");
    assert_eq!(
        qa.write_denied.as_deref(),
        Some("no admin credential stored at kv/feature-flags/testvendor/qa/admin (404): read-only")
    );
}

#[tokio::test]
async fn no_admin_credential_stored_gives_read_only_with_the_reason() {
    let Some(bao) = server() else { return };
    let vault = vault(&bao.addr, ROOT_TOKEN);
    let qa = read(&vault, "qa").await.expect("qa readable");
    assert_eq!(value(&qa, "environment_key"), SECRETS[6]);
    assert_eq!(
        qa.write_denied.as_deref(),
        Some("no admin credential stored at kv/feature-flags/testvendor/qa/admin (404): read-only")
    );
}

#[tokio::test]
async fn errors_name_address_path_status_and_cause() {
    let Some(bao) = server() else { return };
    let seen = Seen::default();
    let token = bao.token("alice", &["kill-reader"], "10m");
    let alice = vault(&bao.addr, &token);
    let root = vault(&bao.addr, ROOT_TOKEN);

    // 403: outside the policy, with a valid token.
    let denied = alice
        .read_fields("prod", "kv", "forbidden/thing", REQUIRED, &[])
        .await
        .err()
        .map(|e| seen.add(e))
        .expect("403");
    assert_eq!(
        denied,
        format!(
            "prod: Vault {} kv/forbidden/thing: 403 permission denied: the token's policies do not allow reading it (permission denied)",
            bao.addr
        )
    );

    // 404: no such path.
    let missing = read(&root, "nosuchenv")
        .await
        .err()
        .map(|e| seen.add(e))
        .expect("404");
    assert!(
        missing.starts_with(&format!(
            "nosuchenv: Vault {} kv/feature-flags/testvendor/nosuchenv: 404 no secret at this path",
            bao.addr
        )),
        "{missing}"
    );

    // A soft-deleted secret: 404 with metadata instead of `errors` (vaultrs' other error type).
    let deleted = read(&root, "deleted")
        .await
        .err()
        .map(|e| seen.add(e))
        .expect("404 deleted");
    assert!(
        deleted.starts_with(&format!(
            "deleted: Vault {} kv/feature-flags/testvendor/deleted: 404 no secret at this path",
            bao.addr
        )),
        "{deleted}"
    );
    assert!(
        deleted.contains("the latest version was deleted at"),
        "{deleted}"
    );
    eprintln!("soft-deleted: {deleted}");

    // A missing field names path and field (and which fields there are, never values).
    let field = root
        .read_fields(
            "prod",
            "kv",
            &path("prod"),
            &["environment_key", "project_id"],
            &[],
        )
        .await
        .err()
        .map(|e| seen.add(e))
        .expect("missing field");
    assert_eq!(
        field,
        format!(
            "prod: Vault {} kv/feature-flags/testvendor/prod: field `project_id` is missing (the secret has: api_url, environment_key)",
            bao.addr
        )
    );

    // Wrong types: a number, an object, an empty string.
    let number = root
        .read_fields("broken", "kv", &path("broken"), &["environment_key"], &[])
        .await
        .err()
        .map(|e| seen.add(e))
        .expect("number");
    assert!(
        number.ends_with("kv/feature-flags/testvendor/broken: field `environment_key` must be a string, found a number"),
        "{number}"
    );
    assert!(!number.contains("12345"), "{number}");
    let object = root
        .read_fields("broken", "kv", &path("broken"), &["api_url"], &[])
        .await
        .err()
        .map(|e| seen.add(e))
        .expect("object");
    assert!(
        object.ends_with("field `api_url` must be a string, found an object"),
        "{object}"
    );
    let empty = root
        .read_fields("broken", "kv", &path("broken"), &[], &["admin_token"])
        .await
        .err()
        .map(|e| seen.add(e))
        .expect("empty");
    assert!(empty.ends_with("field `admin_token` is empty"), "{empty}");
    seen.assert_no_secret(&[&token]);
}

#[tokio::test]
async fn a_bad_token_says_to_run_vault_login() {
    let Some(bao) = server() else { return };
    let vault = vault(&bao.addr, "s.not-a-real-token-0000");
    let err = read(&vault, "prod").await.expect_err("refused");
    assert_eq!(
        err,
        format!(
            "prod: Vault {addr} kv/feature-flags/testvendor/prod: 403 the token was refused (expired, revoked or invalid; auth/token/lookup-self fails too): run `vault login` (VAULT_ADDR={addr}) and start killswitch again",
            addr = bao.addr
        )
    );
    assert!(!err.contains("s.not-a-real-token"), "{err}");
    let identity = vault.identity().await.expect_err("no identity");
    assert!(identity.contains("run `vault login`"), "{identity}");
    assert_eq!(vault.operator().await, None, "falls back to the local user");
}

#[tokio::test]
async fn an_expired_token_and_a_revoked_token_say_to_log_in_again() {
    let Some(bao) = server() else { return };
    let short = bao.token("carol", &["kill-admin"], "1s");
    let revoked = bao.token("dave", &["kill-admin"], "10m");
    let dave = vault(&bao.addr, &revoked);
    // Works first (and caches dave's identity), then the token is revoked under it.
    assert_eq!(dave.operator().await.as_deref(), Some("token-dave"));
    read(&dave, "prod")
        .await
        .expect("dave reads before the revocation");
    bao.revoke(&revoked);
    let err = read(&dave, "prod").await.expect_err("revoked");
    assert!(
        err.contains("token was refused") && err.contains("run `vault login`"),
        "{err}"
    );
    assert!(err.contains(&format!("VAULT_ADDR={}", bao.addr)), "{err}");
    // The identity was looked up once per session: still the cached one.
    assert_eq!(dave.operator().await.as_deref(), Some("token-dave"));

    std::thread::sleep(Duration::from_millis(2100));
    let carol = vault(&bao.addr, &short);
    let err = read(&carol, "prod").await.expect_err("expired");
    assert!(
        err.contains("token was refused (expired, revoked or invalid"),
        "{err}"
    );
    eprintln!("expired token: {err}");
    assert!(!err.contains(&short), "{err}");
}

#[tokio::test]
async fn connection_refused_is_quick_and_clear() {
    let port = free_port();
    let addr = format!("http://127.0.0.1:{port}");
    let vault = vault(&addr, "s.whatever");
    let started = Instant::now();
    let err = read(&vault, "prod").await.expect_err("refused");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(
        err.starts_with(&format!(
            "prod: Vault {addr} kv/feature-flags/testvendor/prod: unreachable:"
        )),
        "{err}"
    );
    assert!(err.to_lowercase().contains("refused"), "{err}");
    eprintln!("connection refused: {err}");
    assert!(!err.contains("s.whatever"), "{err}");
}

#[tokio::test]
async fn a_server_that_never_answers_times_out_within_the_limit() {
    // Accepts connections and reads the request, never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = format!("http://{}", listener.local_addr().expect("addr"));
    let held = Arc::new(tokio::sync::Mutex::new(Vec::new()));
    let keep = held.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            keep.lock().await.push(socket);
        }
    });
    let net = NetworkConfig {
        connect_timeout: Duration::from_millis(300),
        request_timeout: Duration::from_millis(700),
        verify_timeout: Duration::from_secs(1),
    };
    let vault = VaultCredentials::new(&vault_env(&addr, Some("s.x")), &net);
    let started = Instant::now();
    let err = read(&vault, "prod").await.expect_err("timeout");
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(600), "{elapsed:?}");
    assert!(
        elapsed < Duration::from_millis(1500),
        "limit 700 ms + slack, took {elapsed:?}"
    );
    assert!(err.contains(&addr) && err.contains("timed out"), "{err}");
    let identity = vault.identity().await.expect_err("timeout");
    assert!(identity.contains("timed out"), "{identity}");
    eprintln!("silent server: error after {elapsed:?} (request timeout 700 ms): {err}");
}

#[tokio::test]
async fn a_sealed_vault_says_so() {
    if !openbao::available() {
        return;
    }
    // Its own server: sealing the shared one would break the other tests.
    let bao = OpenBao::start();
    bao.seed();
    let vault = vault(&bao.addr, ROOT_TOKEN);
    read(&vault, "prod").await.expect("unsealed reads");
    bao.seal();
    let err = read(&vault, "prod").await.expect_err("sealed");
    eprintln!("sealed: {err}");
    assert!(
        err.starts_with(&format!(
            "prod: Vault {} kv/feature-flags/testvendor/prod: 503 Vault is sealed",
            bao.addr
        )),
        "{err}"
    );
}

#[tokio::test]
async fn vault_namespace_is_sent_with_every_request() {
    let Some(bao) = server() else { return };
    let mut env = vault_env(&bao.addr, Some(ROOT_TOKEN));
    env.namespace = Some("team-a".into());
    let namespaced = VaultCredentials::new(&env, &network());
    let dev = read(&namespaced, "dev").await.expect("namespaced dev");
    assert_eq!(value(&dev, "environment_key"), SECRETS[7]);
    assert_eq!(value(&dev, "api_url"), "http://127.0.0.1:9/ns/");
    let root = read(&vault(&bao.addr, ROOT_TOKEN), "dev")
        .await
        .expect("root dev");
    assert_eq!(value(&root, "environment_key"), SECRETS[0]);
    // prod exists only outside the namespace.
    let err = read(&namespaced, "prod").await.expect_err("404 in team-a");
    assert!(err.contains("404"), "{err}");
}

#[tokio::test]
async fn the_token_comes_from_home_vault_token_when_vault_token_is_unset() {
    let Some(bao) = server() else { return };
    let token = bao.token("erin", &["kill-reader"], "10m");
    let home = tempfile::tempdir().expect("home");
    let mut env = vault_env(&bao.addr, None);
    env.home = Some(home.path().to_path_buf());

    let missing = VaultCredentials::new(&env, &network());
    let err = read(&missing, "prod").await.expect_err("no token");
    assert!(
        err.contains("no Vault token: VAULT_TOKEN is not set and there is no")
            && err.contains(".vault-token: run `vault login`"),
        "{err}"
    );

    std::fs::write(home.path().join(".vault-token"), format!("{token}\n")).expect("write");
    let from_file = VaultCredentials::new(&env, &network());
    assert_eq!(from_file.operator().await.as_deref(), Some("token-erin"));
    let prod = read(&from_file, "prod")
        .await
        .expect("read with the file's token");
    assert_eq!(value(&prod, "environment_key"), SECRETS[2]);

    // VAULT_TOKEN wins over the file.
    env.token = Some(killswitch::secret::Secret::new(bao.token(
        "frank",
        &["kill-reader"],
        "10m",
    )));
    let from_var = VaultCredentials::new(&env, &network());
    assert_eq!(from_var.operator().await.as_deref(), Some("token-frank"));
}

#[tokio::test]
async fn skip_verify_is_allowed_with_a_loud_warning() {
    let Some(bao) = server() else { return };
    let mut env = vault_env(&bao.addr, Some(ROOT_TOKEN));
    env.skip_verify = Some("true".into());
    let vault = VaultCredentials::new(&env, &network());
    let warnings = vault.warnings();
    assert_eq!(warnings.len(), 1);
    assert!(warnings[0].contains("VAULT_SKIP_VERIFY") && warnings[0].contains("NOT verified"));
    read(&vault, "prod").await.expect("still reads");
    env.skip_verify = Some("maybe".into());
    let bad = VaultCredentials::new(&env, &network());
    let err = read(&bad, "prod").await.expect_err("not a boolean");
    assert!(
        err.contains("VAULT_SKIP_VERIFY=\"maybe\" is not a boolean"),
        "{err}"
    );
    env.skip_verify = Some("false".into());
    assert!(
        VaultCredentials::new(&env, &network())
            .warnings()
            .is_empty()
    );
}

#[tokio::test]
async fn tls_is_verified_against_vault_cacert_or_capath() {
    if !openbao::available() {
        return;
    }
    let bao = OpenBao::start_with(true);
    assert!(bao.addr.starts_with("https://"));
    // No CA: the self-signed dev certificate is refused, and the message says TLS.
    let plain = VaultCredentials::new(&vault_env(&bao.addr, Some(ROOT_TOKEN)), &network());
    let err = plain.identity().await.expect_err("unknown CA");
    eprintln!("without the CA: {err}");
    assert!(
        err.contains(&bao.addr) && err.contains("TLS failure"),
        "{err}"
    );
    // VAULT_CACERT.
    let mut env = vault_env(&bao.addr, Some(ROOT_TOKEN));
    env.cacert = Some(bao.ca_file());
    let with_file = VaultCredentials::new(&env, &network());
    assert_eq!(
        with_file.operator().await.as_deref(),
        Some("token"),
        "the dev root token"
    );
    // VAULT_CAPATH: a directory of PEM files.
    let dir = tempfile::tempdir().expect("ca dir");
    std::fs::copy(bao.ca_file(), dir.path().join("ca.pem")).expect("copy CA");
    let mut env = vault_env(&bao.addr, Some(ROOT_TOKEN));
    env.capath = Some(dir.path().to_path_buf());
    let with_dir = VaultCredentials::new(&env, &network());
    assert_eq!(
        with_dir.operator().await.as_deref(),
        Some("token"),
        "the dev root token"
    );
    // VAULT_SKIP_VERIFY: works, with the warning.
    let mut env = vault_env(&bao.addr, Some(ROOT_TOKEN));
    env.skip_verify = Some("true".into());
    let skipping = VaultCredentials::new(&env, &network());
    assert_eq!(
        skipping.operator().await.as_deref(),
        Some("token"),
        "the dev root token"
    );
    assert_eq!(skipping.warnings().len(), 1);
}

#[tokio::test]
async fn a_missing_ca_file_is_named() {
    let mut env = vault_env("https://127.0.0.1:1", Some("s.x"));
    env.cacert = Some(PathBuf::from("/nonexistent/ca.pem"));
    let vault = VaultCredentials::new(&env, &network());
    let err = read(&vault, "prod").await.expect_err("no CA file");
    assert!(err.contains("/nonexistent/ca.pem"), "{err}");
}

#[tokio::test]
async fn providers_without_fields_never_call_vault() {
    // flagd needs no credentials: even a dead Vault does not hold it back.
    let vault = vault(&format!("http://127.0.0.1:{}", free_port()), "s.x");
    let env = EnvironmentConfig {
        name: "dev".into(),
        provider: ProviderKind::Flagd,
        protected: false,
        file: None,
        vault_mount: "kv".into(),
        vault_path: path("dev"),
        options: Default::default(),
    };
    let started = Instant::now();
    let credentials = vault.credentials(&env).await.expect("no Vault call");
    assert!(credentials.fields.field_names().next().is_none());
    assert!(started.elapsed() < Duration::from_millis(100));
}

#[tokio::test]
async fn one_failing_environment_does_not_hold_back_the_others() {
    let Some(bao) = server() else { return };
    let vault = vault(&bao.addr, ROOT_TOKEN);
    let broken_path = path("broken");
    let (dev, broken, prod) = tokio::join!(
        read(&vault, "dev"),
        vault.read_fields("broken", "kv", &broken_path, REQUIRED, &[]),
        read(&vault, "prod")
    );
    assert!(dev.is_ok() && prod.is_ok());
    assert!(broken.err().is_some_and(|e| e.starts_with("broken: ")));
}

#[tokio::test]
async fn vault_messages_on_the_dashboard_never_show_a_secret() {
    let Some(bao) = server() else { return };
    let seen = Seen::default();
    let token = bao.token("alice", &["kill-reader"], "10m");
    let alice = vault(&bao.addr, &token);
    let prod = read(&alice, "prod").await.expect("prod");
    let failed = alice
        .read_fields("staging", "kv", "forbidden/thing", REQUIRED, &[])
        .await
        .expect_err("403");
    seen.add(format!("{prod:?}"));
    seen.add(format!("{alice:?}"));
    let mut state = support::dashboard::state(false, (160, 30), None);
    update(
        &mut state,
        Action::EnvLoaded {
            env: "dev".into(),
            result: Ok(support::dashboard::snapshot("dev")),
            read_only_reason: None,
        },
    );
    update(
        &mut state,
        Action::EnvLoaded {
            env: "prod".into(),
            result: Ok(support::dashboard::snapshot("prod")),
            read_only_reason: prod.write_denied.clone(),
        },
    );
    update(
        &mut state,
        Action::EnvLoaded {
            env: "staging".into(),
            result: Err(support::dashboard::vault_failure(&failed)),
            read_only_reason: None,
        },
    );
    update(
        &mut state,
        Action::Operator(alice.operator().await.expect("alice")),
    );
    let screen = seen.add(support::dashboard::render(&state));
    assert!(screen.contains("token-alice"), "{screen}");
    assert!(screen.contains("staging FAILED"), "{screen}");
    assert!(screen.contains("(read-only)"), "{screen}");
    // Trying to flip in prod shows the Vault reason.
    support::dashboard::press(&mut state, crossterm::event::KeyCode::Char('f'));
    let screen = seen.add(support::dashboard::render(&state));
    assert!(
        screen.contains("cannot read kv/feature-flags/testvendor/prod/admin"),
        "{screen}"
    );
    seen.assert_no_secret(&[&token]);
}

// ---- the real binary --------------------------------------------------------------------

fn vault_vars<'a>(addr: &'a str, token: &'a str) -> [(&'a str, &'a str); 2] {
    [("VAULT_ADDR", addr), ("VAULT_TOKEN", token)]
}

#[test]
fn status_runs_with_vault_configured_and_with_vault_dead() {
    if !openbao::available() {
        return;
    }
    let bao = openbao::shared().expect("OpenBao");
    let token = bao.token("alice", &["kill-reader"], "10m");
    let home = Home::new();
    let output = home
        .command()
        .args(["status", "--output", "json"])
        .envs(vault_vars(&bao.addr, &token))
        .output()
        .expect("run killswitch status");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    assert_eq!(report["errors"], serde_json::json!([]));
    assert!(
        report["flags"].as_array().is_some_and(|f| f.len() >= 18),
        "{stdout}"
    );

    // A dead Vault: flagd environments, which need no credentials, still work.
    let dead = format!("http://127.0.0.1:{}", free_port());
    let started = Instant::now();
    let output = home
        .command()
        .args(["status", "--output", "json"])
        .envs(vault_vars(&dead, &token))
        .output()
        .expect("run killswitch status");
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!all.contains(&token));

    // VAULT_SKIP_VERIFY is announced on stderr.
    let output = home
        .command()
        .args(["status"])
        .envs(vault_vars(&bao.addr, &token))
        .env("VAULT_SKIP_VERIFY", "1")
        .output()
        .expect("run killswitch status");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("VAULT_SKIP_VERIFY is set") && stderr.contains("NOT verified"),
        "{stderr}"
    );
}

#[test]
fn a_kill_in_the_dashboard_records_the_vault_identity() {
    if !openbao::available() {
        return;
    }
    let bao = openbao::shared().expect("OpenBao");
    let token = bao.token("alice", &["kill-reader"], "10m");
    let home = Home::new();
    let limit = Duration::from_secs(15);
    let mut tui = support::pty::PtySession::spawn_with_env(
        &home,
        &["--env", "prod", "--flag", "kill_switch_checkout"],
        (120, 32),
        &vault_vars(&bao.addr, &token),
    );
    let screen = tui.wait_for("prod ok", limit);
    let screen = if screen.contains("token-alice") {
        screen
    } else {
        tui.wait_for("token-alice", limit)
    };
    assert!(screen.contains("LIVE"), "{screen}");
    tui.send("f");
    tui.wait_for("KILL checkout in prod", limit);
    tui.send("INC-9 vault operator");
    tui.send("\r");
    tui.wait_for("Type `prod` to confirm", limit);
    tui.send("prod");
    tui.send("\r");
    tui.wait_for("Confirmed by what services see", limit);
    tui.send("\r");
    tui.send("q");
    assert_eq!(tui.wait_exit(limit), 0);
    let raw = String::from_utf8_lossy(&tui.raw_output()).to_string();
    assert!(!raw.contains(&token), "the token reached the terminal");

    let audit = std::fs::read_to_string(home.audit_log()).expect("audit log");
    let records: Vec<serde_json::Value> = audit
        .lines()
        .map(|line| serde_json::from_str(line).expect("json line"))
        .collect();
    assert_eq!(records.len(), 2, "{audit}");
    for record in &records {
        assert_eq!(record["operator"], "token-alice", "{audit}");
        assert_eq!(record["note"], "INC-9 vault operator");
    }
    assert!(!audit.contains(&token), "token in the audit log");
    for secret in SECRETS {
        assert!(!audit.contains(secret));
    }
}

#[test]
fn skip_verify_shows_on_the_status_bar() {
    let env = VaultEnv {
        addr: Some("https://vault.example:8200".into()),
        token: Some(killswitch::secret::Secret::new("s.never-shown")),
        skip_verify: Some("true".into()),
        ..VaultEnv::default()
    };
    let vault = VaultCredentials::new(&env, &network());
    let mut state = support::dashboard::loaded(false, (140, 30), None);
    state.warnings = vault.warnings();
    let screen = support::dashboard::render(&state);
    assert!(screen.contains("VAULT TLS NOT VERIFIED"), "{screen}");
    assert!(!screen.contains("s.never-shown"));
    let plain = support::dashboard::render(&support::dashboard::loaded(false, (140, 30), None));
    assert!(!plain.contains("VAULT TLS NOT VERIFIED"));
}
