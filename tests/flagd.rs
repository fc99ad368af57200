//! The local flagd workspace checked with what services run: the real OpenFeature flagd
//! evaluator (PyPI `openfeature-provider-flagd`, FILE mode, `tests/sdk/flagd_eval.py`) reads
//! the flag file after every kill and restore, for 1,000 targeting keys with varied contexts.
//! A kill must serve `false` to every key; a restore must give every key what it got before.

mod support;

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use killswitch::commands::status::StatusReport;
use serde_json::{Value, json};
use support::Home;
use support::sdk::{
    self, Evaluation, KEYS, assert_flagd_same_values, assert_flagd_serves_off, count_true,
};

/// The uid and gid flagd's service account has in these tests.
const FLAGD_UID: u32 = 65534;

fn run(home: &Home, args: &[&str]) -> Output {
    home.command()
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run killswitch")
}

fn code(output: &Output) -> i32 {
    output.status.code().unwrap_or(-1)
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Seeds the workspace and returns the prod file's path.
fn seeded(home: &Home) -> PathBuf {
    let output = run(home, &["status"]);
    assert_eq!(code(&output), 0, "{}", text(&output));
    home.local_flags("prod")
}

/// Replaces (or adds) one flag definition in a flag file.
fn set_flag(path: &Path, key: &str, definition: Value) {
    let mut document: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("read")).expect("json");
    document["flags"][key] = definition;
    std::fs::write(
        path,
        serde_json::to_string_pretty(&document).expect("encode"),
    )
    .expect("write");
}

fn flag_definition(path: &Path, key: &str) -> Value {
    let document: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("read")).expect("json");
    document["flags"][key].clone()
}

/// The cell `status` shows for a flag in prod.
fn cell(home: &Home, flag: &str) -> String {
    let output = run(home, &["status", "--env", "prod", "--output", "json"]);
    assert_eq!(code(&output), 0, "{}", text(&output));
    let report: StatusReport = serde_json::from_slice(&output.stdout).expect("status report JSON");
    report
        .flags
        .iter()
        .find(|f| f.flag == flag)
        .map(|f| f.state.clone())
        .unwrap_or_else(|| panic!("{flag} not in status"))
}

fn flip(home: &Home, verb: &str, flag: &str) -> Output {
    run(
        home,
        &[
            verb,
            flag,
            "--env",
            "prod",
            "--note",
            "INC-7 evaluator check",
            "--yes",
        ],
    )
}

fn evaluate(path: &Path, flag: &str) -> BTreeMap<String, Vec<Evaluation>> {
    sdk::flagd_evaluate(path, &[flag])
}

/// Kill, check the evaluator serves off to all; restore, check every key gets what it got.
fn kill_and_restore_checked(home: &Home, path: &Path, flag: &str) {
    let before = evaluate(path, flag);
    let killed = flip(home, "kill", flag);
    assert_eq!(code(&killed), 0, "{flag}: {}", text(&killed));
    assert!(
        text(&killed).contains("Confirmed by what services see"),
        "{}",
        text(&killed)
    );
    assert_flagd_serves_off(&evaluate(path, flag), flag);
    let restored = flip(home, "restore", flag);
    assert_eq!(code(&restored), 0, "{flag}: {}", text(&restored));
    assert_flagd_same_values(&before, &evaluate(path, flag), flag);
}

#[test]
fn every_boolean_sample_flag_killed_serves_off_to_all_and_restored_serves_what_it_did() {
    if !sdk::available() {
        return;
    }
    let home = Home::new();
    let path = seeded(&home);
    for flag in [
        "kill_switch_checkout",
        "kill_switch_recommendations",
        // On for two segments only, off for everyone else.
        "catalog_v2_search_engine",
        // A 10% fractional rollout: a restore must give each key its old bucket.
        "checkout_stripe_payment_intents_v2024_11",
    ] {
        kill_and_restore_checked(&home, &path, flag);
    }
    // The percentages are real: about 10% of keys get the canary, segments get the dark launch.
    let canary = count_true(
        &evaluate(&path, "checkout_stripe_payment_intents_v2024_11"),
        "checkout_stripe_payment_intents_v2024_11",
    );
    assert!((50..150).contains(&canary), "{canary} of {KEYS}");
}

#[test]
fn a_disabled_kill_switch_reads_serving_and_a_kill_makes_it_serve_off() {
    if !sdk::available() {
        return;
    }
    let home = Home::new();
    let path = seeded(&home);
    let mut definition = flag_definition(&path, "kill_switch_checkout");
    definition["state"] = json!("DISABLED");
    set_flag(&path, "kill_switch_checkout", definition.clone());

    let served = evaluate(&path, "kill_switch_checkout");
    assert_eq!(count_true(&served, "kill_switch_checkout"), KEYS);
    assert!(
        served["kill_switch_checkout"]
            .iter()
            .all(|e| e.reason() == Some("DISABLED")),
        "the evaluator serves the code default"
    );
    assert_eq!(
        cell(&home, "kill_switch_checkout"),
        "SERVING (code default)"
    );

    kill_and_restore_checked(&home, &path, "kill_switch_checkout");
    assert_eq!(
        flag_definition(&path, "kill_switch_checkout"),
        definition,
        "restored exactly: DISABLED again"
    );

    // The script's view of the same kill: from serving on the code default to killed.
    let killed = run(
        &home,
        &[
            "kill",
            "kill_switch_checkout",
            "--env",
            "prod",
            "--note",
            "INC-7 json",
            "--yes",
            "--output",
            "json",
        ],
    );
    assert_eq!(code(&killed), 0, "{}", text(&killed));
    let report: Value = serde_json::from_slice(&killed.stdout).expect("json report");
    assert_eq!(report["from"], "SERVING (code default)");
    assert_eq!(report["to"], "KILLED");
    assert_flagd_serves_off(
        &evaluate(&path, "kill_switch_checkout"),
        "kill_switch_checkout",
    );
}

#[test]
fn default_off_with_targeting_that_serves_on_reads_serving_never_killed() {
    if !sdk::available() {
        return;
    }
    let home = Home::new();
    let path = seeded(&home);
    let base = json!({
        "state": "ENABLED",
        "variants": {"on": true, "off": false},
        "defaultVariant": "off",
        "metadata": {"kind": "kill_switch"},
    });
    let cases = [
        // On for one segment only.
        (
            json!({"if": [{"$ref": "internal_staff"}, "on", "off"]}),
            "SERVING 1 seg only",
        ),
        // On for everyone through targeting.
        (json!({"if": [true, "on", "off"]}), "SERVING"),
        // A rule killswitch does not read: it must say so, not guess KILLED.
        (
            json!({"if": [{"in": [{"var": "tenant_region"}, ["eu-west-1"]]}, "off", {"if": [true, "on"]}]}),
            "UNKNOWN (rule)",
        ),
    ];
    for (index, (targeting, expected)) in cases.into_iter().enumerate() {
        let flag = format!("kill_switch_targeted_{index}");
        let mut definition = base.clone();
        definition["targeting"] = targeting;
        set_flag(&path, &flag, definition);
        let served = count_true(&evaluate(&path, &flag), &flag);
        assert!(
            served > 0,
            "{flag}: the evaluator serves it to {served} keys"
        );
        assert_eq!(cell(&home, &flag), expected, "{flag}");
        kill_and_restore_checked(&home, &path, &flag);
    }
}

#[test]
fn a_kill_switch_whose_variants_are_not_booleans_is_refused_and_nothing_changes() {
    if !sdk::available() {
        return;
    }
    let home = Home::new();
    let path = seeded(&home);
    set_flag(
        &path,
        "kill_switch_payments",
        json!({
            "state": "ENABLED",
            "variants": {"on": "true", "off": "false"},
            "defaultVariant": "on",
        }),
    );
    let file_before = std::fs::read_to_string(&path).expect("read");
    // Asked for as a boolean, the evaluator serves the code default: the feature is on.
    assert_eq!(
        count_true(
            &evaluate(&path, "kill_switch_payments"),
            "kill_switch_payments"
        ),
        KEYS
    );
    assert!(cell(&home, "kill_switch_payments").starts_with("SERVING"));

    let killed = flip(&home, "kill", "kill_switch_payments");
    assert_eq!(code(&killed), 4, "refused: {}", text(&killed));
    let message = text(&killed);
    assert!(message.contains("kill_switch_payments"), "{message}");
    assert!(
        message.contains("no variant whose value is the boolean false"),
        "{message}"
    );
    assert!(!message.contains("Confirmed"), "{message}");
    assert_eq!(std::fs::read_to_string(&path).expect("read"), file_before);
    assert_eq!(
        count_true(
            &evaluate(&path, "kill_switch_payments"),
            "kill_switch_payments"
        ),
        KEYS
    );
}

#[test]
fn a_symlinked_flag_file_is_written_through_and_stays_a_link() {
    if !sdk::available() {
        return;
    }
    let home = Home::new();
    let link = seeded(&home);
    let real_dir = home.path().join("flagd-data");
    std::fs::create_dir_all(&real_dir).expect("mkdir");
    let real = real_dir.join("prod.json");
    std::fs::rename(&link, &real).expect("move");
    std::os::unix::fs::symlink(&real, &link).expect("symlink");

    let before = std::fs::read_to_string(&real).expect("read");
    let killed = flip(&home, "kill", "kill_switch_checkout");
    assert_eq!(code(&killed), 0, "{}", text(&killed));
    assert!(
        std::fs::symlink_metadata(&link)
            .expect("link")
            .file_type()
            .is_symlink(),
        "the configured path is still a link"
    );
    assert_ne!(std::fs::read_to_string(&real).expect("read"), before);
    // What flagd (configured with the link) serves: off to everyone.
    assert_flagd_serves_off(
        &evaluate(&link, "kill_switch_checkout"),
        "kill_switch_checkout",
    );
    let restored = flip(&home, "restore", "kill_switch_checkout");
    assert_eq!(code(&restored), 0, "{}", text(&restored));
    assert_eq!(
        count_true(
            &evaluate(&link, "kill_switch_checkout"),
            "kill_switch_checkout"
        ),
        KEYS
    );
}

fn chown(path: &Path, uid: u32) {
    std::os::unix::fs::chown(path, Some(uid), Some(uid)).expect("chown");
}

fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn a_file_owned_by_the_flagd_account_keeps_owner_group_and_mode() {
    if !sdk::available() {
        return;
    }
    if !running_as_root() {
        eprintln!("SKIPPED: giving a file to another user needs root");
        return;
    }
    let home = Home::new();
    let path = seeded(&home);
    chown(&path, FLAGD_UID);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).expect("chmod");
    // flagd's account must reach the file through the directories.
    for dir in path.ancestors().skip(1).take(4) {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }

    let killed = flip(&home, "kill", "kill_switch_checkout");
    assert_eq!(code(&killed), 0, "{}", text(&killed));
    let meta = std::fs::metadata(&path).expect("stat");
    assert_eq!(
        (meta.uid(), meta.gid()),
        (FLAGD_UID, FLAGD_UID),
        "owner kept"
    );
    assert_eq!(meta.permissions().mode() & 0o777, 0o640, "mode kept");
    // flagd's account can read what the evaluator reads (the Python the evaluator runs on
    // lives where that account cannot go, so the read itself is checked with `cat`).
    let read = std::process::Command::new("cat")
        .arg(&path)
        .uid(FLAGD_UID)
        .gid(FLAGD_UID)
        .output()
        .expect("cat as flagd's account");
    assert!(
        read.status.success(),
        "{}",
        String::from_utf8_lossy(&read.stderr)
    );
    assert_eq!(read.stdout, std::fs::read(&path).expect("read"));
    assert_flagd_serves_off(
        &evaluate(&path, "kill_switch_checkout"),
        "kill_switch_checkout",
    );
}

#[test]
fn a_file_whose_owner_cannot_be_kept_is_refused_before_writing() {
    if !sdk::available() {
        return;
    }
    if !running_as_root() {
        eprintln!("SKIPPED: running killswitch as another user needs root");
        return;
    }
    let home = Home::new();
    let path = seeded(&home);
    // killswitch runs as the unprivileged account; the flag file belongs to root, writable by
    // all, in a directory the account can write: a rename would hand the file to the account.
    for entry in walk(home.path()) {
        chown(&entry, FLAGD_UID);
    }
    chown(&path, 0);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    let before = std::fs::read_to_string(&path).expect("read");

    let output = home
        .command()
        .uid(FLAGD_UID)
        .gid(FLAGD_UID)
        .args([
            "kill",
            "kill_switch_checkout",
            "--env",
            "prod",
            "--note",
            "INC-7 owner check",
            "--yes",
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run killswitch");
    assert_eq!(code(&output), 4, "refused: {}", text(&output));
    assert!(text(&output).contains("uid 0 gid 0"), "{}", text(&output));
    assert!(
        text(&output).contains("Nothing was changed"),
        "{}",
        text(&output)
    );
    let meta = std::fs::metadata(&path).expect("stat");
    assert_eq!((meta.uid(), meta.gid()), (0, 0), "still root's file");
    assert_eq!(std::fs::read_to_string(&path).expect("read"), before);
    assert!(temp_files(&path).is_empty(), "no temp file left");
    assert_eq!(
        count_true(
            &evaluate(&path, "kill_switch_checkout"),
            "kill_switch_checkout"
        ),
        KEYS
    );
}

fn walk(root: &Path) -> Vec<PathBuf> {
    let mut out = vec![root.to_path_buf()];
    if let Ok(entries) = std::fs::read_dir(root) {
        for entry in entries.flatten() {
            let path = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                out.extend(walk(&path));
            } else {
                out.push(path);
            }
        }
    }
    out
}

fn temp_files(path: &Path) -> Vec<String> {
    let dir = path.parent().expect("dir");
    std::fs::read_dir(dir)
        .expect("dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|name| name.ends_with(".tmp"))
        .collect()
}

#[test]
fn temp_files_a_crash_left_are_cleaned_at_the_next_write() {
    let home = Home::new();
    let path = seeded(&home);
    let dir = path.parent().expect("dir");
    // What a write killed between creating its temp file and the rename leaves behind.
    let orphan = dir.join(".prod.flagd.json.killswitch-Ab12Cd.tmp");
    std::fs::write(&orphan, "{\"flags\":{").expect("orphan");
    // Another file's temp file is that file's business.
    let other = dir.join(".staging.flagd.json.killswitch-Zz99Yy.tmp");
    std::fs::write(&other, "{").expect("other");

    let killed = flip(&home, "kill", "kill_switch_checkout");
    assert_eq!(code(&killed), 0, "{}", text(&killed));
    assert!(!orphan.exists(), "the orphan is gone");
    assert!(other.exists(), "staging's temp file is left alone");
}
