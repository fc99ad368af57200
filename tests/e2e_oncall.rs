//! The on-call path in a pseudo-terminal (issue 21): keys are never acted on blind while the
//! screen cannot be drawn, a deep link selects exactly what it names or nothing, a failed
//! environment comes back on its own, and the dialog keeps a cancelled note as a draft.

#[path = "support/flagsmith_fake.rs"]
mod flagsmith_fake;
mod support;

use std::time::Duration;

use flagsmith_fake::{ADMIN_API_KEY, FakeFlagsmith};
use serde_json::json;
use support::faults::{Fault, FaultProxy};
use support::openbao;

use support::Home;
use support::pty::PtySession;

const LIMIT: Duration = Duration::from_secs(15);

fn prod_file_unchanged(home: &Home, before: &str) {
    let after = std::fs::read_to_string(home.local_flags("prod")).expect("prod flag file");
    assert_eq!(before, after, "the prod flag file was not touched");
    let audit = std::fs::read_to_string(home.audit_log()).unwrap_or_default();
    assert!(audit.is_empty(), "no audit record: {audit}");
}

/// The issue's sequence: the dialog open, the pane shrunk to 50x10, then a note, Enter,
/// `prod`, Enter typed while "Terminal too small" is shown. Nothing is applied; q quits.
#[test]
fn keys_typed_while_the_terminal_is_too_small_change_nothing() {
    let home = Home::new();
    let mut tui = PtySession::spawn(
        &home,
        &["--env", "prod", "--flag", "kill_switch_checkout"],
        (100, 30),
    );
    tui.wait_for("prod ok", LIMIT);
    let before = std::fs::read_to_string(home.local_flags("prod")).expect("prod flag file");
    tui.send("f");
    tui.wait_for("Audit note (required)", LIMIT);
    tui.resize(50, 10);
    tui.wait_for("Terminal too small", LIMIT);
    tui.send("INC-1 typed blind");
    tui.send("\r");
    tui.send("prod");
    tui.send("\r");
    std::thread::sleep(Duration::from_millis(300));
    tui.resize(100, 30);
    let screen = tui.wait_for("Audit note (required): █", LIMIT);
    assert!(
        !screen.contains("INC-1"),
        "nothing typed blind reached the note:\n{screen}"
    );
    prod_file_unchanged(&home, &before);
    tui.resize(50, 10);
    tui.wait_for("Terminal too small", LIMIT);
    tui.send("q");
    assert_eq!(tui.wait_exit(LIMIT), 0);
    prod_file_unchanged(&home, &before);
}

#[test]
fn a_deep_link_with_a_typo_selects_nothing_and_says_what_was_meant() {
    let home = Home::new();
    let mut tui = PtySession::spawn(
        &home,
        &["--env", "prod", "--flag", "kill_switch_chekout"],
        (110, 30),
    );
    let screen = tui.wait_for(
        "no flag `kill_switch_chekout`; did you mean `kill_switch_checkout`?",
        LIMIT,
    );
    assert!(!screen.contains('▶'), "no row is selected:\n{screen}");
    tui.send("f");
    let screen = tui.wait_for("no flag selected", LIMIT);
    assert!(!screen.contains("confirm change"), "{screen}");
    tui.send("q");
    assert_eq!(tui.wait_exit(LIMIT), 0);
}

/// An environment whose flag file does not exist yet: "not loaded … retrying", never "not
/// found"; the link's flag is selected once the file appears, without pressing r.
#[test]
fn a_flag_file_that_appears_after_start_loads_on_its_own_and_the_link_lands() {
    let home = Home::new();
    let seed = home.command().arg("status").output().expect("seed local");
    assert_eq!(seed.status.code(), Some(0));
    let late = home.path().join("late.flagd.json");
    let config = format!(
        "protected = [\"late\"]\n\
         [[environment]]\nname = \"dev\"\nprovider = \"flagd\"\nfile = \"{}\"\n\
         [[environment]]\nname = \"late\"\nprovider = \"flagd\"\nfile = \"{}\"\n",
        home.local_flags("dev").display(),
        late.display()
    );
    let config_path = home.path().join("late.toml");
    std::fs::write(&config_path, config).expect("config");
    let config_arg = config_path.display().to_string();
    let mut tui = PtySession::spawn(
        &home,
        &[
            "--config",
            &config_arg,
            "--env",
            "late",
            "--flag",
            "kill_switch_recommendations",
        ],
        (120, 32),
    );
    let screen = tui.wait_for("then `kill_switch_recommendations` is selected", LIMIT);
    assert!(screen.contains("late: not loaded ("), "{screen}");
    assert!(screen.contains("retrying in"), "{screen}");
    assert!(!screen.contains("not found"), "{screen}");
    assert!(!screen.contains("late: late:"), "one prefix: {screen}");
    tui.send("f");
    tui.wait_for("still loading", LIMIT);
    std::fs::copy(home.local_flags("dev"), &late).expect("the file appears");
    let screen = tui.wait_for("late ok", LIMIT);
    assert!(
        !screen.contains("not loaded"),
        "the error line is gone:\n{screen}"
    );
    tui.send("f");
    tui.wait_for(
        "KILL recommendations in late: kill_switch_recommendations SERVING",
        LIMIT,
    );
    tui.send("\u{1b}");
    tui.send("q");
    assert_eq!(tui.wait_exit(LIMIT), 0);
}

#[test]
fn esc_keeps_the_note_and_the_footer_follows_the_dialog() {
    let home = Home::new();
    let mut tui = PtySession::spawn(
        &home,
        &["--env", "prod", "--flag", "kill_switch_checkout"],
        (80, 24),
    );
    tui.wait_for("prod ok", LIMIT);
    tui.send("f");
    tui.wait_for("Audit note (required)", LIMIT);
    tui.send("INC-4711 checkout p99");
    tui.send("\r");
    tui.wait_for("Type `prod` to confirm", LIMIT);
    // The footer (the screen's last line) says the same keys as the dialog's border.
    let started = std::time::Instant::now();
    loop {
        let screen = tui.screen();
        let footer = screen
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or_default()
            .to_string();
        if footer.starts_with("Enter: apply · Shift-Tab: back") {
            break;
        }
        assert!(started.elapsed() < LIMIT, "footer: {footer}\n{screen}");
        std::thread::sleep(Duration::from_millis(25));
    }
    tui.send("\u{1b}[Z"); // Shift-Tab: back to the note
    tui.wait_for("Audit note (required): INC-4711 checkout p99█", LIMIT);
    tui.send("\u{1b}");
    tui.wait_for("cancelled: nothing changed", LIMIT);
    tui.send("f");
    tui.wait_for("kept as a draft", LIMIT);
    tui.wait_for("Audit note (required): INC-4711 checkout p99█", LIMIT);
    tui.send("\u{1b}");
    tui.send("a");
    tui.wait_for("Audit: kill_switch_checkout", LIMIT);
    tui.wait_for("Esc: close", LIMIT);
    tui.send("\u{1b}[6~"); // PgDn does not close the view
    tui.send("G");
    let screen = tui.wait_for("── prod ──", LIMIT);
    assert!(screen.contains("Audit: kill_switch_checkout"), "{screen}");
    tui.send("\u{1b}");
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        !tui.screen().contains("Audit: kill_switch_checkout"),
        "Esc closed it"
    );
    tui.send("q");
    assert_eq!(tui.wait_exit(LIMIT), 0);
}

/// A self-hosted Flagsmith (the fake, behind a proxy) that hangs on the first connection and
/// answers after: the dashboard says "not loaded (… timed out after 3 s), retrying in …" and
/// loads the environment on its own, with the credentials from a real OpenBao.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_environment_that_times_out_then_answers_loads_on_its_own() {
    if !openbao::available() {
        return;
    }
    let Some(bao) = openbao::shared() else { return };
    let flagsmith = FakeFlagsmith::open_source().await;
    let addr = flagsmith
        .url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .expect("a 127.0.0.1 address");
    let proxy = FaultProxy::start(addr);
    bao.put(
        "/v1/kv/data/feature-flags/oncall-retry/flagsmith/fs",
        json!({
            "api_url": format!("{}/api/v1/", proxy.url()),
            "environment_key": flagsmith.env("prod").server_key,
            "admin_api_key": ADMIN_API_KEY,
        }),
    );
    let token = bao.token("oncall-erin", &["kill-admin"], "30m");
    let home = Home::new();
    let config = "protected = []\n\
         [network]\nconnect_timeout_ms = 500\nrequest_timeout_ms = 1000\n\
         [vault]\npath_template = \"feature-flags/oncall-retry/{provider}/{env}\"\n\
         [[environment]]\nname = \"fs\"\nprovider = \"flagsmith\"\n";
    let config_path = home.path().join("retry.toml");
    std::fs::write(&config_path, config).expect("config");
    // The first two connections hang: the states' first read and the metadata read beside it.
    proxy.set_next(Fault::Hang, 2);
    let vault_addr = bao.addr.clone();
    let screen = tokio::task::spawn_blocking(move || {
        let config_arg = config_path.display().to_string();
        let mut tui = PtySession::spawn_with_env(
            &home,
            &["--config", &config_arg],
            (140, 30),
            &[
                ("VAULT_ADDR", vault_addr.as_str()),
                ("VAULT_TOKEN", token.as_str()),
            ],
        );
        let failed = tui.wait_for("retrying in", LIMIT);
        let loaded = tui.wait_for("fs ok", LIMIT);
        tui.send("q");
        assert_eq!(tui.wait_exit(LIMIT), 0);
        (failed, loaded)
    })
    .await
    .expect("the pty session");
    let (failed, loaded) = screen;
    assert!(failed.contains("fs: not loaded ("), "{failed}");
    assert!(
        failed.contains("timed out after 3 s"),
        "the first-read budget: {failed}"
    );
    assert!(
        !loaded.contains("not loaded"),
        "the error line is gone:\n{loaded}"
    );
    assert!(
        loaded.contains("SERVING") || loaded.contains("KILLED"),
        "{loaded}"
    );
}
