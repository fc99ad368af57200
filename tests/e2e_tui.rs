//! The real binary in a pseudo-terminal, opened the way a runbook link opens it: kill
//! `kill_switch_checkout` in prod with a note, confirm, quit; then check the flag file and the
//! audit log on disk.

mod support;

use std::time::Duration;

use killswitch::provider::flagd;
use support::Home;
use support::pty::PtySession;

const LIMIT: Duration = Duration::from_secs(15);

#[test]
fn runbook_link_kill_lands_in_the_flag_file_and_the_audit_log() {
    let home = Home::new();
    let mut tui = PtySession::spawn(
        &home,
        &["--env", "prod", "--flag", "kill_switch_checkout"],
        (120, 32),
    );
    let screen = tui.wait_for("prod ok", LIMIT);
    assert!(screen.contains("on local flag files"), "{screen}");
    for flag in [
        "kill_switch_checkout",
        "kill_switch_recommendations",
        "catalog_per_tenant_pagination_size",
        "catalog_v2_search_engine",
        "checkout_stripe_payment_intents_v2024_11",
        "recommendations_ab_test_model_v3",
    ] {
        assert!(screen.contains(flag), "{flag} on the dashboard:\n{screen}");
    }

    tui.send("f");
    tui.wait_for(
        "KILL checkout in prod: kill_switch_checkout SERVING -> KILLED",
        LIMIT,
    );
    tui.send("INC-4711 checkout p99 > 5s");
    tui.send("\r");
    tui.wait_for("Type `prod` to confirm", LIMIT);
    tui.send("prod");
    tui.send("\r");
    let screen = tui.wait_for("Confirmed by what services see", LIMIT);
    assert!(
        screen.contains("KILL applied: kill_switch_checkout in prod"),
        "{screen}"
    );
    tui.send("\r");
    tui.wait_for("KILLED", LIMIT);
    tui.send("q");
    assert_eq!(tui.wait_exit(LIMIT), 0);
    let raw = String::from_utf8_lossy(&tui.raw_output()).to_string();
    assert!(raw.contains("\u{1b}[?1049l"), "left the alternate screen");

    let text = std::fs::read_to_string(home.local_flags("prod")).expect("prod flag file");
    let document = flagd::parse_document(&text).expect("valid flagd file after the kill");
    let switch = flagd::summarise(
        "kill_switch_checkout",
        &document["flags"]["kill_switch_checkout"],
    );
    assert!(!switch.state.enabled, "killed");
    assert_eq!(
        switch.state.value,
        Some(serde_json::Value::Bool(false)),
        "serves false"
    );
    assert_eq!(
        document["flags"]["kill_switch_checkout"]["state"], "ENABLED",
        "not DISABLED"
    );
    // What services get: the flagd evaluator serves false to every key.
    if let Some(served) =
        support::sdk::flagd_serves_all(&home.local_flags("prod"), "kill_switch_checkout")
    {
        assert!(!served, "the evaluator serves the killed switch as off");
    }

    let audit = std::fs::read_to_string(home.audit_log()).expect("audit log");
    let records: Vec<serde_json::Value> = audit
        .lines()
        .map(|line| serde_json::from_str(line).expect("json line"))
        .collect();
    assert_eq!(records.len(), 2, "{audit}");
    assert_eq!(records[0]["phase"], "intent");
    assert_eq!(records[1]["phase"], "outcome");
    assert_eq!(records[1]["result"], "ok");
    for record in &records {
        assert_eq!(record["note"], "INC-4711 checkout p99 > 5s");
        assert_eq!(record["flag"], "kill_switch_checkout");
        assert_eq!(record["env"], "prod");
        assert_eq!(record["operator"], "tester@".to_string() + &hostname());
    }
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(home.audit_log())
            .expect("meta")
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn ctrl_c_restores_the_terminal() {
    let home = Home::new();
    let mut tui = PtySession::spawn(&home, &[], (100, 30));
    tui.wait_for("prod ok", LIMIT);
    tui.send("\u{3}");
    assert_eq!(tui.wait_exit(LIMIT), 0);
    let raw = String::from_utf8_lossy(&tui.raw_output()).to_string();
    assert!(raw.contains("\u{1b}[?1049l"), "left the alternate screen");
}

#[test]
fn unknown_environment_is_refused_before_the_terminal_is_touched() {
    let home = Home::new();
    let output = home
        .command()
        .args(["--env", "qa", "--flag", "kill_switch_checkout"])
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(5));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("no environment `qa`") && stderr.contains("dev, staging, prod"),
        "{stderr}"
    );
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}
