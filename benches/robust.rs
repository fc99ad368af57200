//! Issue 14's timings, with the release build of the binary (`cargo bench` builds it with the
//! release profile), against generated local workspaces:
//!
//! 1. `status` as a table against `--output json`, 5,000 flags × 6 environments (the table
//!    was quadratic: 9.25 s against 0.75 s), and one environment of ~50 MB of flags;
//! 2. a 1 MB bracketed paste into the note field: until the note is filled (the dialog says the
//!    paste was cut), and until Esc right after it has closed the dialog.
//!
//! Run with `bash benches/robust.sh` (or `cargo bench --bench robust`). Only runs under
//! `cargo bench`; under `cargo test` it says so and returns.

#[path = "../tests/support/mod.rs"]
#[allow(unused_imports)]
mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::Home;
use support::pty::PtySession;

fn main() {
    if !std::env::args().any(|arg| arg == "--bench") {
        println!("robust: runs under `cargo bench --bench robust`; skipped in tests");
        return;
    }
    let runs: usize = std::env::var("ROBUST_RUNS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(5);
    let mut report =
        String::from("| measurement | median | min | max | runs |\n|---|---|---|---|---|\n");

    let wide = Workspace::new(6, 5_000);
    let table = measure(runs, || wide.status(&[]));
    let json = measure(runs, || wide.status(&["--output", "json"]));
    add(&mut report, "`status` table, 5,000 flags × 6 envs", &table);
    add(
        &mut report,
        "`status --output json`, 5,000 flags × 6 envs",
        &json,
    );
    report.push_str(&format!(
        "| table / JSON | {:.2}× | | | |\n",
        median(&table).as_secs_f64() / median(&json).as_secs_f64()
    ));

    let big = Workspace::new(1, 75_000);
    report.push_str(&format!(
        "| (one flag file of {:.1} MB, 75,000 flags) | | | | |\n",
        big.bytes as f64 / 1_048_576.0
    ));
    add(
        &mut report,
        "`status` table, one 75,000-flag file",
        &measure(runs.min(3), || big.status(&[])),
    );
    add(
        &mut report,
        "`status --output json`, one 75,000-flag file",
        &measure(runs.min(3), || big.status(&["--output", "json"])),
    );

    let small = Workspace::new(3, 6);
    let pastes: Vec<(Duration, Duration)> = (0..runs).map(|_| small.paste_megabyte()).collect();
    add(
        &mut report,
        "1 MB bracketed paste → note filled (cut at 1,000 chars, dialog says so)",
        &pastes.iter().map(|p| p.0).collect::<Vec<_>>(),
    );
    add(
        &mut report,
        "… then Esc → dialog closed",
        &pastes.iter().map(|p| p.1).collect::<Vec<_>>(),
    );
    println!("{report}");
}

struct Workspace {
    home: Home,
    config: String,
    bytes: u64,
}

impl Workspace {
    /// `envs` flagd environments of `flags` flags each, copied from the sample set's shapes.
    fn new(envs: usize, flags: usize) -> Workspace {
        let home = Home::new();
        let seed: Value = serde_json::from_str(include_str!("../assets/seed/prod.flagd.json"))
            .expect("seed file");
        let originals = seed["flags"].as_object().cloned().unwrap_or_default();
        let mut config = String::from("protected = [\"prod\"]\nrefresh_seconds = 3600\n");
        let mut bytes = 0;
        for env in 0..envs {
            let name = if env == 0 {
                "prod".to_string()
            } else {
                format!("env{env}")
            };
            let mut all = originals.clone();
            let mut index = 0;
            while all.len() < flags {
                for (key, value) in &originals {
                    if all.len() >= flags {
                        break;
                    }
                    all.insert(format!("{key}_{index:05}"), value.clone());
                    index += 1;
                }
            }
            let mut document = seed.clone();
            document["flags"] = Value::Object(all);
            let path = home.path().join(format!("{name}.flagd.json"));
            let text = serde_json::to_vec_pretty(&document).expect("json");
            bytes += text.len() as u64;
            std::fs::write(&path, text).expect("write flag file");
            config.push_str(&format!(
                "\n[[environment]]\nname = \"{name}\"\nprovider = \"flagd\"\nfile = \"{}\"\n",
                path.display()
            ));
        }
        let path = home.path().join("config.toml");
        std::fs::write(&path, config).expect("write config");
        Workspace {
            config: path.display().to_string(),
            home,
            bytes,
        }
    }

    /// One whole `status` process, its output read to the end.
    fn status(&self, extra: &[&str]) -> Duration {
        let started = Instant::now();
        let output = self
            .home
            .command()
            .args(["--config", &self.config, "status"])
            .args(extra)
            .output()
            .expect("status");
        let elapsed = started.elapsed();
        assert_eq!(
            output.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(output.stdout.len() > 1000);
        elapsed
    }

    /// Opens the flip dialog, pastes 1 MB in one write, and returns (paste → note filled,
    /// Esc → dialog closed).
    fn paste_megabyte(&self) -> (Duration, Duration) {
        let mut tui = PtySession::spawn(
            &self.home,
            &[
                "--config",
                &self.config,
                "--env",
                "prod",
                "--flag",
                "kill_switch_checkout",
            ],
            (120, 40),
        );
        poll(&tui, "prod ok");
        tui.send("f");
        poll(&tui, "KILL checkout in prod");
        let mut paste = b"\x1b[200~".to_vec();
        paste.extend(std::iter::repeat_n(b'a', 1024 * 1024));
        paste.extend_from_slice(b"\x1b[201~");
        let started = Instant::now();
        tui.send_raw(&paste);
        poll(&tui, "the paste was cut");
        let filled = started.elapsed();
        let started = Instant::now();
        tui.send_raw(b"\x1b");
        let deadline = Instant::now() + Duration::from_secs(30);
        while tui.screen().contains("KILL checkout in prod") {
            assert!(
                Instant::now() < deadline,
                "Esc was not handled:\n{}",
                tui.screen()
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        let closed = started.elapsed();
        tui.send_raw(b"q");
        tui.wait_exit(Duration::from_secs(30));
        (filled, closed)
    }
}

/// Polls the screen every millisecond (the tests' helper waits 25 ms between looks).
fn poll(tui: &PtySession, text: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !tui.screen().contains(text) {
        assert!(
            Instant::now() < deadline,
            "`{text}` did not appear:\n{}",
            tui.screen()
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn measure(runs: usize, mut one: impl FnMut() -> Duration) -> Vec<Duration> {
    let _warm_up = one();
    (0..runs).map(|_| one()).collect()
}

fn median(samples: &[Duration]) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}

fn add(report: &mut String, name: &str, samples: &[Duration]) {
    let mut sorted = samples.to_vec();
    sorted.sort();
    report.push_str(&format!(
        "| {name} | {} | {} | {} | {} |\n",
        ms(median(samples)),
        ms(sorted[0]),
        ms(sorted[sorted.len() - 1]),
        sorted.len()
    ));
}

fn ms(duration: Duration) -> String {
    format!("{:.1} ms", duration.as_secs_f64() * 1000.0)
}
