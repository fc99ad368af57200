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

/// The migration canary stepped 10% -> 50% from the dashboard: `p` on the cell offers the next
/// configured step, the note, the typed name; the flag file then splits 50/50 and the audit log
/// holds the rollout asked for and the one before it.
#[test]
fn dashboard_steps_the_flagd_canary_from_10_to_50_percent() {
    const CANARY: &str = "checkout_stripe_payment_intents_v2024_11";
    let home = Home::new();
    let mut tui = PtySession::spawn(&home, &["--env", "prod", "--flag", CANARY], (120, 32));
    tui.wait_for("prod ok", LIMIT);
    tui.send("p");
    tui.wait_for(
        &format!("ROLLOUT {CANARY} in prod: ON 10% -> ON 50%"),
        LIMIT,
    );
    tui.send("\r");
    tui.wait_for("Audit note (required)", LIMIT);
    tui.send("INC-4711 canary healthy for 30 min");
    tui.send("\r");
    tui.wait_for("Type `prod` to confirm", LIMIT);
    tui.send("prod");
    tui.send("\r");
    let screen = tui.wait_for("Confirmed by what services see", LIMIT);
    assert!(
        screen.contains(&format!("ROLLOUT applied: {CANARY} in prod")),
        "{screen}"
    );
    assert!(screen.contains("ON 10% -> ON 50%"), "{screen}");
    tui.send("\r");
    tui.send("q");
    assert_eq!(tui.wait_exit(LIMIT), 0);

    let text = std::fs::read_to_string(home.local_flags("prod")).expect("prod flag file");
    let document = flagd::parse_document(&text).expect("valid flagd file after the rollout");
    let canary = flagd::summarise(CANARY, &document["flags"][CANARY]);
    assert_eq!(
        canary.state.rollout,
        killswitch::model::Rollout::Percentage { percent: 50.0 },
        "{text}"
    );

    let audit = std::fs::read_to_string(home.audit_log()).expect("audit log");
    let records: Vec<serde_json::Value> = audit
        .lines()
        .map(|line| serde_json::from_str(line).expect("json line"))
        .collect();
    assert_eq!(records.len(), 2, "{audit}");
    assert_eq!(records[0]["phase"], "intent");
    assert_eq!(records[1]["phase"], "outcome");
    assert_eq!(records[1]["result"], "ok", "{audit}");
    for record in &records {
        assert_eq!(record["action"], "rollout");
        assert_eq!(record["flag"], CANARY);
        assert_eq!(record["env"], "prod");
        assert_eq!(record["from"], "ON 10%");
        assert_eq!(record["to"], "ON 50%");
        assert_eq!(record["note"], "INC-4711 canary healthy for 30 min");
        assert_eq!(
            record["rollout"],
            serde_json::json!({"type": "percent", "percent": 50.0})
        );
        assert_eq!(
            record["previous"],
            serde_json::json!({"type": "percent", "percent": 10.0})
        );
    }
}

/// An experiment ended from the dashboard: everyone in dev to `treatment_a`, chosen by its name;
/// the vendor's check keeps it as the value states show (`model_v3a`), which is what is
/// verified and audited.
#[test]
fn dashboard_sends_everyone_to_one_variant() {
    const AB: &str = "recommendations_ab_test_model_v3";
    let home = Home::new();
    let mut tui = PtySession::spawn(&home, &["--env", "dev", "--flag", AB], (120, 32));
    tui.wait_for("dev ok", LIMIT);
    tui.send("p");
    tui.wait_for("Everyone to variant:", LIMIT);
    tui.send("\u{1b}[B");
    tui.wait_for("▶ treatment_a", LIMIT);
    tui.send("\r");
    tui.wait_for(
        &format!("ROLLOUT {AB} in dev: ON 33/33/34 -> model_v3a"),
        LIMIT,
    );
    tui.send("INC-4712 v3a wins the test");
    tui.send("\r");
    tui.wait_for("Apply now?", LIMIT);
    std::thread::sleep(Duration::from_millis(50));
    tui.send("y");
    let screen = tui.wait_for("Confirmed by what services see", LIMIT);
    assert!(
        screen.contains(&format!("ROLLOUT applied: {AB} in dev")),
        "{screen}"
    );
    tui.send("\r");
    tui.send("q");
    assert_eq!(tui.wait_exit(LIMIT), 0);
    let audit = std::fs::read_to_string(home.audit_log()).expect("audit log");
    let outcome: serde_json::Value =
        serde_json::from_str(audit.lines().last().expect("records")).expect("json");
    assert_eq!(outcome["result"], "ok", "{audit}");
    assert_eq!(
        outcome["rollout"],
        serde_json::json!({"type": "variant", "variant": "model_v3a"})
    );
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

/// The bytes of everything written after the dashboard last entered the alternate screen.
fn after_last_enter(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw).to_string();
    match text.rfind("\u{1b}[?1049h") {
        Some(at) => text[at..].to_string(),
        None => panic!("never entered the alternate screen"),
    }
}

/// Left the alternate screen, mouse capture and bracketed paste, and showed the cursor.
fn assert_restored(raw: &[u8], what: &str) {
    let tail = after_last_enter(raw);
    for (sequence, name) in [
        ("\u{1b}[?1049l", "the alternate screen"),
        ("\u{1b}[?1000l", "mouse capture"),
        ("\u{1b}[?2004l", "bracketed paste"),
        ("\u{1b}[?25h", "the hidden cursor"),
    ] {
        assert!(tail.contains(sequence), "{what}: {name} not restored");
    }
}

#[test]
fn every_signal_that_ends_the_dashboard_restores_the_terminal() {
    for (signal, name) in [
        (libc::SIGINT, "SIGINT"),
        (libc::SIGQUIT, "SIGQUIT"),
        (libc::SIGTERM, "SIGTERM"),
        (libc::SIGHUP, "SIGHUP"),
        (libc::SIGUSR1, "SIGUSR1"),
        (libc::SIGALRM, "SIGALRM"),
    ] {
        let home = Home::new();
        let mut tui = PtySession::spawn(&home, &[], (100, 30));
        tui.wait_for("prod ok", LIMIT);
        tui.signal(signal);
        let code = tui.wait_exit(LIMIT);
        assert_eq!(code, 128 + signal as u32, "{name}: exit 128 + signal");
        assert_restored(&tui.raw_output(), name);
    }
}

#[test]
fn a_crash_signal_restores_the_terminal_and_still_ends_the_process() {
    let home = Home::new();
    let mut tui = PtySession::spawn(&home, &[], (100, 30));
    tui.wait_for("prod ok", LIMIT);
    tui.signal(libc::SIGSEGV);
    let status = tui.wait_status(LIMIT);
    assert!(!status.success(), "the crash still ends it: {status:?}");
    assert!(status.signal().is_some(), "ended by the signal: {status:?}");
    assert_restored(&tui.raw_output(), "SIGSEGV");
}

#[test]
fn a_panic_restores_the_terminal_before_its_message() {
    let home = Home::new();
    let mut tui =
        PtySession::spawn_with_env(&home, &[], (100, 30), &[("KILLSWITCH_DEBUG_PANIC", "1")]);
    let code = tui.wait_exit(LIMIT);
    assert_eq!(code, 1);
    let tail = after_last_enter(&tui.raw_output());
    let left = tail
        .find("\u{1b}[?1049l")
        .expect("left the alternate screen");
    let message = tail
        .find("KILLSWITCH_DEBUG_PANIC is set")
        .expect("the panic message is printed");
    assert!(left < message, "restored before the message:\n{tail:?}");
    assert!(tail.contains("\u{1b}[?1000l") && tail.contains("\u{1b}[?25h"));
}

/// "INC-42\n\n" pasted into the note of an unprotected environment once confirmed the kill.
#[test]
fn a_pasted_note_with_newlines_never_confirms() {
    let home = Home::new();
    let before = std::fs::read(home.local_flags("dev")).ok();
    for (paste, how) in [
        (&b"\x1b[200~INC-42\n\n\x1b[201~"[..], "bracketed paste"),
        (&b"INC-42\r\r"[..], "a terminal without bracketed paste"),
        (&b"INC-42\ry"[..], "typed-ahead y"),
    ] {
        let mut tui = PtySession::spawn(
            &home,
            &["--env", "dev", "--flag", "kill_switch_checkout"],
            (120, 32),
        );
        tui.wait_for("dev ok", LIMIT);
        tui.send("f");
        tui.wait_for("KILL checkout in dev", LIMIT);
        tui.send_raw(paste);
        std::thread::sleep(Duration::from_millis(300));
        let screen = tui.screen();
        assert!(
            !screen.contains("applying") && !screen.contains("applied"),
            "{how}: nothing applied:\n{screen}"
        );
        tui.send("\u{1b}");
        tui.send("q");
        assert_eq!(tui.wait_exit(LIMIT), 0, "{how}");
        assert_eq!(
            std::fs::read(home.local_flags("dev")).ok(),
            before
                .clone()
                .or_else(|| std::fs::read(home.local_flags("dev")).ok()),
            "{how}: the flag file is untouched"
        );
        let audit = std::fs::read_to_string(home.audit_log()).unwrap_or_default();
        assert!(audit.is_empty(), "{how}: nothing audited: {audit}");
    }
    // The operator's own key press after the note still confirms.
    let mut tui = PtySession::spawn(
        &home,
        &["--env", "dev", "--flag", "kill_switch_checkout"],
        (120, 32),
    );
    tui.wait_for("dev ok", LIMIT);
    tui.send("f");
    tui.send_raw(b"\x1b[200~INC-42\n\x1b[201~");
    tui.send("\r");
    tui.wait_for("Apply now?", LIMIT);
    tui.send("y");
    tui.wait_for("KILL applied: kill_switch_checkout in dev", LIMIT);
}

/// A 1 MB paste once hung the dashboard for minutes: now the note is filled (cut at the limit,
/// and the dialog says so) and Esc right after it is handled.
#[test]
fn a_megabyte_paste_fills_the_note_and_esc_still_answers() {
    let home = Home::new();
    let mut tui = PtySession::spawn(
        &home,
        &["--env", "prod", "--flag", "kill_switch_checkout"],
        (120, 40),
    );
    tui.wait_for("prod ok", LIMIT);
    tui.send("f");
    tui.wait_for("KILL checkout in prod", LIMIT);
    let mut paste = b"\x1b[200~".to_vec();
    paste.extend(std::iter::repeat_n(b'a', 1024 * 1024));
    paste.extend_from_slice(b"\x1b[201~");
    tui.send_raw(&paste);
    let screen = tui.wait_for("the paste was cut", LIMIT);
    assert!(screen.contains("at most 1000 characters"), "{screen}");
    tui.send("\u{1b}");
    tui.wait_for("prod ok", LIMIT);
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        !tui.screen().contains("KILL checkout in prod"),
        "Esc closed the dialog"
    );
    tui.send("q");
    assert_eq!(tui.wait_exit(LIMIT), 0);
}

/// `--read-only` with an interrupted flip in the log: reported, never reconciled, nothing
/// written; the next writable start reconciles it.
#[test]
fn a_read_only_dashboard_writes_nothing_and_reports_the_pending_flip() {
    let home = Home::new();
    let seeded = home.command().arg("status").output().expect("status");
    assert_eq!(seeded.status.code(), Some(0));
    let intent = serde_json::json!({
        "id": "20261125T061638.413Z-999999-0", "phase": "intent",
        "at": "2026-11-25T06:16:38.413Z", "operator": "alice@bastion", "env": "prod",
        "provider": "flagd", "flag": "kill_switch_recommendations", "action": "kill",
        "from": "SERVING", "to": "KILLED", "enabled": false, "note": "INC-0 crashed"
    })
    .to_string()
        + "\n";
    std::fs::create_dir_all(home.audit_log().parent().expect("dir")).expect("state dir");
    std::fs::write(home.audit_log(), &intent).expect("audit log");
    let state_dir = home.audit_log().parent().expect("dir").to_path_buf();
    let listing = |dir: &std::path::Path| -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().to_string())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    };
    let before = listing(&state_dir);

    let mut tui = PtySession::spawn(&home, &["--read-only"], (160, 32));
    let screen = tui.wait_for("1 INTERRUPTED FLIP PENDING", LIMIT);
    assert!(screen.contains("READ-ONLY"), "{screen}");
    std::thread::sleep(Duration::from_millis(300));
    tui.send("q");
    assert_eq!(tui.wait_exit(LIMIT), 0);
    assert_eq!(
        std::fs::read_to_string(home.audit_log()).expect("audit"),
        intent,
        "not one byte written"
    );
    assert_eq!(listing(&state_dir), before, "no file created");

    let mut tui = PtySession::spawn(&home, &[], (160, 32));
    tui.wait_for(
        "interrupted kill of kill_switch_recommendations in prod",
        LIMIT,
    );
    tui.send("q");
    tui.wait_exit(LIMIT);
    let audit = std::fs::read_to_string(home.audit_log()).expect("audit");
    assert!(audit.contains("\"phase\":\"reconciled\""), "{audit}");
}

/// A config of 30 flagd environments (`env01`…`env30`, the sample files), `env30`'s file
/// missing so it fails to load.
fn thirty_environments(home: &Home) -> std::path::PathBuf {
    let dir = home.path().join("platform");
    std::fs::create_dir_all(&dir).expect("platform dir");
    let mut config = String::from("keymap = \"default\"\n");
    for index in 1..=30 {
        let name = format!("env{index:02}");
        let seed = ["dev", "staging", "prod"][index % 3];
        if index < 30 {
            std::fs::write(
                dir.join(format!("{name}.flagd.json")),
                support::dashboard::seed(seed),
            )
            .expect("flag file");
        }
        config.push_str(&format!(
            "\n[[environment]]\nname = \"{name}\"\nprovider = \"flagd\"\nfile = \"{name}.flagd.json\"\ngroup = \"{}\"\n",
            if index <= 15 { "eu" } else { "us" }
        ));
    }
    let path = dir.join("config.toml");
    std::fs::write(&path, config).expect("config");
    path
}

#[test]
fn thirty_columns_scroll_page_and_filter_in_a_real_terminal() {
    let home = Home::new();
    let config = thirty_environments(&home);
    let config = config.display().to_string();
    let mut tui = PtySession::spawn(&home, &["--config", &config], (100, 30));
    // The failure is named on the status bar although its column is far off screen.
    let screen = tui.wait_for("30 envs: 1 FAILED env30", LIMIT);
    assert!(screen.contains("ENV01"), "{screen}");
    assert!(!screen.contains("ENV30"), "{screen}");
    assert!(
        screen.contains(" ▶"),
        "hidden columns counted on the right:\n{screen}"
    );
    // Moving right across every column keeps the selected one on screen.
    for index in 2..=30 {
        tui.send("l");
        let selected = format!("│env{index:02}: ");
        let screen = tui.wait_for(&selected, LIMIT);
        assert!(
            screen.contains(&format!("ENV{index:02}")),
            "column {index} scrolled out of view:\n{screen}"
        );
    }
    let screen = tui.wait_for("ENV30 ERR", LIMIT);
    assert!(
        screen.contains("◀ "),
        "hidden columns counted on the left:\n{screen}"
    );
    // Paging left by a screenful, then back.
    tui.send("<");
    let screen = tui.wait_for("│env26: ", LIMIT);
    assert!(
        screen.contains("ENV26") && !screen.contains("ENV30"),
        "paged a screenful (4 columns) left:\n{screen}"
    );
    tui.send(">");
    tui.wait_for("│env30: ", LIMIT);
    // The column filter: only env2x.
    tui.send(":");
    tui.send("env2*");
    tui.send("\r");
    let screen = tui.wait_for("(10 of 30 envs)", LIMIT);
    assert!(
        screen.contains("ENV29") && !screen.contains("ENV1") && !screen.contains("ENV30"),
        "only env20…env29, the selection on the nearest one:\n{screen}"
    );
    assert!(screen.contains("◀ 6"), "{screen}");
    // The environment list names the failure in full.
    tui.send("e");
    tui.wait_for("▶env29 [us]  ok", LIMIT);
    tui.send("j");
    tui.wait_for("env30 [us]  FAILED: cannot read", LIMIT);
    tui.send("\u{1b}");
    // Help lists the new keys (waiting for the lowest of them: the screen arrives top down).
    tui.send("?");
    let screen = tui.wait_for("Every environment's state", LIMIT);
    assert!(
        screen.contains("Page environment columns right"),
        "{screen}"
    );
    assert!(screen.contains("Filter environment columns"), "{screen}");
    tui.send("q");
    tui.send("q");
    assert_eq!(tui.wait_exit(LIMIT), 0);
}

/// A user keymap is read before the terminal is touched: a key bound twice in one mode is
/// refused naming the file, the line and the key; an old flat `[[keys]]` file still works in a
/// real terminal, its key shown on the hint line and acting.
#[test]
fn user_keymaps_old_and_new_are_read_and_a_bad_one_is_named() {
    let home = Home::new();
    let dir = home.path().join("config/killswitch");
    std::fs::create_dir_all(&dir).expect("config dir");
    let user = dir.join("keymap.toml");
    std::fs::write(
        &user,
        "[dialog]\nkeymap = [\n  { on = \"ctrl-y\", run = \"yes\" },\n  { on = \"ctrl-y\", run = \"no\" },\n]\n",
    )
    .expect("keymap");
    let output = home.command().output().expect("run");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_ne!(output.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(&format!("{}:4:", user.display()))
            && stderr.contains("key `ctrl-y` is bound twice in [dialog]"),
        "{stderr}"
    );
    assert!(
        !String::from_utf8_lossy(&output.stdout).contains("\u{1b}[?1049h"),
        "the terminal was not touched"
    );
    // The old format: dashboard keys.
    std::fs::write(
        &user,
        "[[keys]]\non = \"x\"\nrun = \"flip\"\ndesc = \"Kill (old file)\"\n",
    )
    .expect("keymap");
    let mut tui = PtySession::spawn(&home, &[], (110, 30));
    tui.wait_for("f kill/restore", LIMIT);
    tui.send("?");
    tui.wait_for("f, enter, x  Kill (old file)", LIMIT);
    tui.send("q");
    tui.send("x");
    tui.wait_for("Enter: next · F1: help · Esc: cancel", LIMIT);
    tui.send("\u{1b}");
    tui.wait_for("cancelled: nothing changed", LIMIT);
    tui.send("q");
    assert_eq!(tui.wait_exit(LIMIT), 0);
}
