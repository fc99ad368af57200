//! Crash safety of the flip: killswitch killed with SIGKILL mid-flip loses no audit record, and
//! the next start reconciles the interrupted flip by re-reading the flag.

mod support;

use std::fs::File;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use killswitch::provider::flagd;
use support::Home;
use support::pty::PtySession;

const LIMIT: Duration = Duration::from_secs(15);

fn seed(home: &Home) {
    let status = home.command().arg("status").output().expect("run status");
    assert_eq!(
        status.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
}

fn records(home: &Home) -> Vec<serde_json::Value> {
    std::fs::read_to_string(home.audit_log())
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).expect("every audit line is JSON"))
        .collect()
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < LIMIT,
            "{what} did not happen within {LIMIT:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether the switch serves, as killswitch reads the file and as the flagd evaluator serves
/// it to 1,000 keys (the two must agree).
fn switch_enabled(home: &Home) -> bool {
    let text = std::fs::read_to_string(home.local_flags("prod")).expect("prod file");
    let document = flagd::parse_document(&text).expect("valid flagd file");
    let enabled = flagd::summarise(
        "kill_switch_checkout",
        &document["flags"]["kill_switch_checkout"],
    )
    .state
    .enabled;
    if let Some(served) =
        support::sdk::flagd_serves_all(&home.local_flags("prod"), "kill_switch_checkout")
    {
        assert_eq!(served, enabled, "what the evaluator serves");
    }
    enabled
}

fn start_kill(home: &Home) -> PtySession {
    let mut tui = PtySession::spawn(
        home,
        &["--env", "prod", "--flag", "kill_switch_checkout"],
        (120, 32),
    );
    tui.wait_for("prod ok", LIMIT);
    tui.send("f");
    tui.send("INC-9 crash test");
    tui.send("\r");
    // The dialog ignores keys in the burst of the Enter that asked its question (a pasted
    // newline must not confirm): on a loaded machine, wait for the question before answering.
    tui.wait_for("Type `prod` to confirm", LIMIT);
    tui.send("prod");
    tui.send("\r");
    tui
}

#[test]
fn sigkill_after_the_intent_and_before_the_change_is_reconciled_as_not_applied() {
    let home = Home::new();
    seed(&home);
    // Hold the flag file's write lock, so the flip stops right after its intent record.
    let lock_path = home
        .local_flags("prod")
        .with_file_name(".prod.flagd.json.killswitch.lock");
    let lock = File::create(&lock_path).expect("lock file");
    // SAFETY: flock on a descriptor this test owns.
    assert_eq!(unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) }, 0);

    let mut tui = start_kill(&home);
    wait_until("the intent record", || {
        records(&home).iter().any(|r| r["phase"] == "intent")
    });
    tui.kill_hard();
    drop(lock);

    assert!(switch_enabled(&home), "the change never happened");
    assert_eq!(records(&home).len(), 1, "only the intent, nothing lost");

    let mut tui = PtySession::spawn(&home, &[], (140, 32));
    let screen = tui.wait_for("interrupted kill of kill_switch_checkout in prod", LIMIT);
    assert!(screen.contains("was NOT applied"), "{screen}");
    tui.send("q");
    tui.wait_exit(LIMIT);
    let records = records(&home);
    assert_eq!(records.len(), 2);
    assert_eq!(records[1]["phase"], "reconciled");
    assert_eq!(records[1]["result"], "not_applied");
    assert_eq!(records[1]["id"], records[0]["id"]);
    assert_eq!(
        records[1]["note"], "INC-9 crash test",
        "the note survives the crash"
    );
}

#[test]
fn a_change_whose_outcome_was_never_written_is_reconciled_as_applied() {
    // The state on disk after a crash between the vendor call and the outcome record: the flag
    // changed, the log holds only the intent. Produce it with a real flip, then drop the outcome
    // line as the crash would have.
    let home = Home::new();
    let mut tui = start_kill(&home);
    tui.wait_for("Confirmed by what services see", LIMIT);
    tui.send("\r");
    tui.send("q");
    tui.wait_exit(LIMIT);
    let intent_only: Vec<String> = std::fs::read_to_string(home.audit_log())
        .expect("audit")
        .lines()
        .filter(|line| line.contains("\"phase\":\"intent\""))
        .map(str::to_string)
        .collect();
    std::fs::write(home.audit_log(), intent_only.join("\n") + "\n").expect("rewrite log");
    assert!(!switch_enabled(&home));

    let mut tui = PtySession::spawn(&home, &[], (140, 32));
    let screen = tui.wait_for("interrupted kill of kill_switch_checkout in prod", LIMIT);
    assert!(screen.contains("was applied"), "{screen}");
    tui.send("q");
    tui.wait_exit(LIMIT);
    let records = records(&home);
    assert_eq!(
        records.last().map(|r| r["result"].clone()),
        Some(serde_json::json!("ok"))
    );
    assert_eq!(
        records.last().map(|r| r["phase"].clone()),
        Some(serde_json::json!("reconciled"))
    );
}

/// A full disk under the audit log (simulated with a file-size limit on the process, which
/// makes its writes fail the way ENOSPC does): the flip is refused, the flag is untouched, and
/// no partial line is left in the log.
#[test]
fn full_disk_for_the_audit_log_refuses_the_flip_and_changes_nothing() {
    use std::os::unix::process::CommandExt;

    let home = Home::new();
    seed(&home);
    let before = std::fs::read(home.local_flags("prod")).expect("prod file");
    let mut command = home.command();
    command.args([
        "kill",
        "kill_switch_checkout",
        "--env",
        "prod",
        "--note",
        "INC-77 disk full",
        "--yes",
    ]);
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        command.pre_exec(|| {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let limit = libc::rlimit {
                rlim_cur: 64,
                rlim_max: 64,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let output = command.output().expect("run kill");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no audit, no change"), "{stderr}");
    assert!(stderr.contains("audit.jsonl"), "names the file: {stderr}");
    assert_eq!(
        std::fs::read(home.local_flags("prod")).expect("prod file"),
        before,
        "the flag was not touched"
    );
    assert!(
        std::fs::read(home.audit_log())
            .unwrap_or_default()
            .is_empty(),
        "no partial record left behind"
    );

    // With room again, the same kill goes through and the log reads cleanly.
    let output = home
        .command()
        .args([
            "kill",
            "kill_switch_checkout",
            "--env",
            "prod",
            "--note",
            "INC-77 disk full",
            "--yes",
        ])
        .output()
        .expect("run kill");
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(records(&home).len(), 2);
}

/// Two operators kill the same switch at the same moment: exactly one change is made, the
/// other is told it is already done (or that it changed under them); no record is lost and
/// the log says who did it.
#[test]
fn two_operators_flipping_the_same_switch_lose_no_update() {
    let home = Home::new();
    seed(&home);
    let start = |operator: &str| {
        let mut command = home.command();
        command.env("USER", operator).args([
            "kill",
            "kill_switch_checkout",
            "--env",
            "prod",
            "--note",
            &format!("INC-2 by {operator}"),
            "--yes",
        ]);
        command.spawn().expect("spawn kill")
    };
    let (first, second) = (start("alice"), start("bob"));
    let codes: Vec<i32> = [first, second]
        .into_iter()
        .map(|child| {
            child
                .wait_with_output()
                .expect("wait")
                .status
                .code()
                .unwrap_or(-1)
        })
        .collect();
    let mut sorted = codes.clone();
    sorted.sort();
    assert!(
        sorted == [0, 3] || sorted == [0, 9],
        "one kill applies, the other is told: {codes:?}"
    );
    assert!(!switch_enabled(&home));
    let records = records(&home);
    let applied: Vec<&serde_json::Value> = records
        .iter()
        .filter(|r| r["phase"] == "outcome" && r["result"] == "ok")
        .collect();
    assert_eq!(applied.len(), 1, "{records:?}");
    let intents = records.iter().filter(|r| r["phase"] == "intent").count();
    let outcomes = records.iter().filter(|r| r["phase"] == "outcome").count();
    assert_eq!(
        intents, outcomes,
        "every intent has its outcome: {records:?}"
    );
}

/// The reconcile race: with a long log (years of flips) and a slow flip in flight, a second
/// flip in the same environment once took the first for an interrupted one ("… was applied")
/// and appended a spurious `reconciled` record, although the first finished normally.
#[test]
fn a_second_flip_during_a_slow_one_does_not_reconcile_it() {
    use std::io::Write;

    let home = Home::new();
    seed(&home);
    // ~30 MB of finished flips in other environments' history.
    {
        std::fs::create_dir_all(home.audit_log().parent().expect("dir")).expect("state dir");
        let file = File::create(home.audit_log()).expect("audit log");
        let mut out = std::io::BufWriter::new(file);
        for n in 0..45_000u32 {
            for phase in ["intent", "outcome"] {
                let mut record = serde_json::json!({
                    "id": format!("20240101T000000.000Z-{}-{n}", 100 + n % 50), "phase": phase,
                    "at": "2024-01-01T00:00:00.000Z", "operator": "old@host", "env": "prod",
                    "provider": "flagd", "flag": "catalog_v2_search_engine", "action": "kill",
                    "from": "SERVING", "to": "KILLED", "enabled": false,
                    "note": format!("INC-{n} {}", "history ".repeat(30)),
                });
                if phase == "outcome" {
                    record["result"] = serde_json::json!("ok");
                }
                writeln!(out, "{record}").expect("write");
            }
        }
        out.flush().expect("flush");
    }
    let history_len = std::fs::metadata(home.audit_log()).expect("meta").len();
    // The first flip stops right after its intent: the flag file's write lock is held.
    let lock_path = home
        .local_flags("prod")
        .with_file_name(".prod.flagd.json.killswitch.lock");
    let lock = File::create(&lock_path).expect("lock file");
    // SAFETY: flock on a descriptor this test owns.
    assert_eq!(unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) }, 0);
    let kill = |flag: &str, note: &str| {
        home.command()
            .args(["kill", flag, "--env", "prod", "--note", note, "--yes"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn kill")
    };
    let first = kill("kill_switch_checkout", "INC-race slow one");
    let tail = || {
        let text = std::fs::read(home.audit_log()).unwrap_or_default();
        let from = usize::try_from(history_len).unwrap_or(0).min(text.len());
        String::from_utf8_lossy(&text[from..]).to_string()
    };
    wait_until("the first flip's intent", || {
        tail().contains("INC-race slow one")
    });
    // The second flip starts reading the long log while the first is in flight; the first
    // then finishes (its process ends) while that read is still going on.
    let second = kill("kill_switch_recommendations", "INC-race second");
    std::thread::sleep(Duration::from_millis(150));
    drop(lock);
    let first = first.wait_with_output().expect("first");
    let second = second.wait_with_output().expect("second");
    let first_err = String::from_utf8_lossy(&first.stderr).to_string();
    let second_err = String::from_utf8_lossy(&second.stderr).to_string();
    assert_eq!(first.status.code(), Some(0), "{first_err}");
    assert_eq!(second.status.code(), Some(0), "{second_err}");
    assert!(
        !second_err.contains("interrupted"),
        "the first flip was in flight, not interrupted: {second_err}"
    );
    let written = tail();
    assert!(!written.contains("\"reconciled\""), "{written}");
    let lines: Vec<serde_json::Value> = written
        .lines()
        .map(|line| serde_json::from_str(line).expect("json"))
        .collect();
    let intents = lines.iter().filter(|r| r["phase"] == "intent").count();
    let outcomes = lines.iter().filter(|r| r["phase"] == "outcome").count();
    assert_eq!(intents, outcomes, "every intent has its outcome: {written}");
    let locks = home.audit_log().with_file_name("audit.jsonl.flips");
    let left: Vec<_> = std::fs::read_dir(&locks)
        .map(|entries| entries.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "finished flips leave no lock: {left:?}");
}

/// SIGTERM (or SIGINT, SIGHUP…) while a flip is being applied: the flip finishes and its
/// outcome is recorded before the dashboard ends and restores the terminal.
#[test]
fn a_signal_during_a_flip_lets_it_finish_and_record_its_outcome() {
    let home = Home::new();
    seed(&home);
    let lock_path = home
        .local_flags("prod")
        .with_file_name(".prod.flagd.json.killswitch.lock");
    let lock = File::create(&lock_path).expect("lock file");
    // SAFETY: flock on a descriptor this test owns.
    assert_eq!(unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) }, 0);
    let mut tui = start_kill(&home);
    wait_until("the intent record", || {
        records(&home).iter().any(|r| r["phase"] == "intent")
    });
    tui.signal(libc::SIGTERM);
    tui.wait_for("finishing the flip in flight", LIMIT);
    drop(lock);
    assert_eq!(tui.wait_exit(LIMIT), 128 + libc::SIGTERM as u32);
    let records = records(&home);
    assert_eq!(records.len(), 2, "{records:?}");
    assert_eq!(records[1]["phase"], "outcome");
    assert_eq!(records[1]["result"], "ok");
    assert!(!switch_enabled(&home));
    let raw = String::from_utf8_lossy(&tui.raw_output()).to_string();
    assert!(raw.ends_with("\u{1b}[?25h") || raw.contains("\u{1b}[?1049l"));
}

/// Two starts at once find the same interrupted flip: one reconcile record, not two.
#[test]
fn two_starts_at_once_reconcile_an_interrupted_flip_once() {
    let home = Home::new();
    seed(&home);
    let intent = serde_json::json!({
        "id": "20261125T061638.413Z-999999-0", "phase": "intent",
        "at": "2026-11-25T06:16:38.413Z", "operator": "alice@bastion", "env": "prod",
        "provider": "flagd", "flag": "catalog_v2_search_engine", "action": "turn_off",
        "from": "ON", "to": "OFF", "enabled": false, "note": "INC-0 crashed"
    })
    .to_string();
    // Behind ~3 MB of history, so both starts are reading the log at the same time.
    let mut text = String::new();
    for n in 0..5_000u32 {
        for phase in ["intent", "outcome"] {
            text.push_str(&format!(
                "{{\"id\":\"20240101T000000.000Z-100-{n}\",\"phase\":\"{phase}\",\"at\":\"2024-01-01T00:00:00.000Z\",\"operator\":\"old@host\",\"env\":\"dev\",\"provider\":\"flagd\",\"flag\":\"kill_switch_checkout\",\"action\":\"kill\",\"from\":\"SERVING\",\"to\":\"KILLED\",\"enabled\":false,\"note\":\"INC-{n} {}\",\"result\":\"ok\"}}\n",
                "history ".repeat(30)
            ));
        }
    }
    text.push_str(&intent);
    text.push('\n');
    std::fs::create_dir_all(home.audit_log().parent().expect("dir")).expect("state dir");
    std::fs::write(home.audit_log(), text).expect("audit log");
    let kill = |flag: &str| {
        home.command()
            .args(["kill", flag, "--env", "prod", "--note", "INC-5", "--yes"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn kill")
    };
    let (a, b) = (
        kill("kill_switch_checkout"),
        kill("kill_switch_recommendations"),
    );
    let a = a.wait_with_output().expect("a");
    let b = b.wait_with_output().expect("b");
    let errors = format!(
        "{}{}",
        String::from_utf8_lossy(&a.stderr),
        String::from_utf8_lossy(&b.stderr)
    );
    let records = records(&home);
    let reconciled = records
        .iter()
        .filter(|r| r["phase"] == "reconciled")
        .count();
    assert_eq!(reconciled, 1, "{errors}\n{records:?}");
}
