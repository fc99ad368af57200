//! Scale: 5,000 flags x 6 environments, and x 30 environments (issue 19: columns scroll).
//! One frame, one filter keystroke, one column filter keystroke, one environment load; and the
//! real binary's peak memory with 30 environments x 5,000 flags.
//! Targets: frame and keystroke under 4 ms, RSS under 100 MB. Results in BENCHMARKS.md.

mod common;
#[path = "../tests/support/mod.rs"]
#[allow(unused_imports)]
mod support;

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use killswitch::tui::action::Action;
use killswitch::tui::app::{Setup, State, update};
use killswitch::tui::keymap::{Command, Keymap};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

const FLAGS: usize = 5_000;
const SIZE: (u16, u16) = (200, 50);

/// 30 environment names: dev/staging/prod in ten regions.
fn thirty() -> Vec<String> {
    (0..30)
        .map(|index| {
            format!(
                "{}-r{:02}",
                ["dev", "staging", "prod"][index % 3],
                index / 3
            )
        })
        .collect()
}

fn loaded_state() -> State {
    let envs: Vec<String> = common::ENVS.iter().map(|env| env.to_string()).collect();
    loaded_with(&envs, SIZE)
}

fn loaded_with(envs: &[String], size: (u16, u16)) -> State {
    let mut state = State::new(Setup {
        envs: envs
            .iter()
            .map(|env| (env.to_string(), env.starts_with("prod")))
            .collect(),
        keymap: Keymap::builtin("default").unwrap_or_default(),
        read_only: false,
        local_workspace: false,
        operator: "bench".into(),
        refresh_interval: Duration::from_secs(30),
        focus: None,
        now: chrono::Utc::now(),
        size,
    });
    for (index, env) in envs.iter().enumerate() {
        update(
            &mut state,
            Action::EnvLoaded {
                env: env.to_string(),
                result: Ok(common::snapshot(env, index, FLAGS)),
                read_only_reason: None,
            },
        );
    }
    state
}

fn key(c: char) -> Action {
    Action::Input(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE))
}

fn erase() -> Action {
    Action::Input(KeyEvent::new(KeyCode::Backspace, KeyModifiers::NONE))
}

/// The real binary on 30 local flag files of 5,000 flags each, in a pseudo-terminal, until the
/// status bar says every environment loaded and a filter was typed: its peak resident set.
fn peak_rss_thirty_environments() {
    let home = support::Home::new();
    let file = common::flagd_file(FLAGS);
    let mut config = String::from("refresh_seconds = 3600\n");
    for name in thirty() {
        let path = home.path().join(format!("{name}.flagd.json"));
        if let Err(err) = std::fs::write(&path, &file) {
            panic!("write {}: {err}", path.display());
        }
        config.push_str(&format!(
            "\n[[environment]]\nname = \"{name}\"\nprovider = \"flagd\"\nfile = \"{}\"\ngroup = \"{}\"\n",
            path.display(),
            &name[name.len() - 3..]
        ));
    }
    let config_path = home.path().join("config.toml");
    if let Err(err) = std::fs::write(&config_path, config) {
        panic!("write config: {err}");
    }
    let config_path = config_path.display().to_string();
    let started = std::time::Instant::now();
    let mut tui = support::pty::PtySession::spawn(&home, &["--config", &config_path], (200, 50));
    tui.wait_for("30 envs: 30 ok", Duration::from_secs(120));
    let loaded = started.elapsed();
    tui.send(":prod*\r/kill");
    tui.wait_for("(10 of 30 envs)", Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(200));
    let rss = tui.peak_rss_kb().unwrap_or_default();
    tui.send("\u{1b}");
    tui.send("q");
    let _ = tui.wait_exit(Duration::from_secs(30));
    println!(
        "real binary, 30 envs x {FLAGS} flags, local flagd: loaded in {:.0} ms, peak RSS (VmHWM) {:.1} MB",
        loaded.as_secs_f64() * 1000.0,
        rss as f64 / 1024.0
    );
}

fn benches(c: &mut Criterion) {
    if std::env::args().any(|arg| arg == "--bench") {
        peak_rss_thirty_environments();
    }
    let envs = thirty();
    for size in [SIZE, (80, 24)] {
        let mut state = loaded_with(&envs, size);
        // The selection in the middle of the columns: both sides hidden.
        for _ in 0..15 {
            update(&mut state, Action::Command(Command::MoveRight));
        }
        let mut terminal = match Terminal::new(TestBackend::new(size.0, size.1)) {
            Ok(terminal) => terminal,
            Err(err) => panic!("test terminal: {err}"),
        };
        c.bench_function(
            &format!(
                "render one frame, 5000 flags x 30 envs, {}x{}",
                size.0, size.1
            ),
            |b| {
                b.iter(|| {
                    let _ = terminal.draw(|frame| killswitch::tui::view::render(frame, &state));
                })
            },
        );
        if size != SIZE {
            continue;
        }
        c.bench_function("move one column right and back + 2 frames, 30 envs", |b| {
            b.iter(|| {
                update(&mut state, Action::Command(Command::MoveRight));
                let _ = terminal.draw(|frame| killswitch::tui::view::render(frame, &state));
                update(&mut state, Action::Command(Command::MoveLeft));
                let _ = terminal.draw(|frame| killswitch::tui::view::render(frame, &state));
            })
        });
        update(&mut state, Action::Command(Command::Filter));
        c.bench_function("filter keystroke + frame, 5000 flags x 30 envs", |b| {
            b.iter(|| {
                update(&mut state, key('s'));
                let _ = terminal.draw(|frame| killswitch::tui::view::render(frame, &state));
                update(&mut state, erase());
            })
        });
        update(
            &mut state,
            Action::Input(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE)),
        );
        update(&mut state, Action::Command(Command::ColumnFilter));
        c.bench_function(
            "column filter keystroke + frame, 30 envs (type + erase)",
            |b| {
                b.iter(|| {
                    update(&mut state, key('p'));
                    let _ = terminal.draw(|frame| killswitch::tui::view::render(frame, &state));
                    update(&mut state, erase());
                })
            },
        );
        update(
            &mut state,
            Action::Input(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE)),
        );
        let snapshot = common::snapshot("prod-r05", 5, FLAGS);
        c.bench_function(
            "one environment of 5000 flags arrives, 30 envs (rows rebuilt)",
            |b| {
                b.iter(|| {
                    update(
                        &mut state,
                        Action::EnvLoaded {
                            env: "prod-r05".into(),
                            result: Ok(snapshot.clone()),
                            read_only_reason: None,
                        },
                    );
                })
            },
        );
    }

    let mut state = loaded_state();
    let mut terminal = match Terminal::new(TestBackend::new(SIZE.0, SIZE.1)) {
        Ok(terminal) => terminal,
        Err(err) => panic!("test terminal: {err}"),
    };

    c.bench_function("render one frame, 5000 flags x 6 envs, 200x50", |b| {
        b.iter(|| {
            let _ = terminal.draw(|frame| killswitch::tui::view::render(frame, &state));
        })
    });

    update(&mut state, Action::Command(Command::Filter));
    c.bench_function("filter keystroke over 5000 flags (type + erase)", |b| {
        b.iter(|| {
            update(&mut state, key('k'));
            update(
                &mut state,
                Action::Input(KeyEvent::new(KeyCode::Backspace, KeyModifiers::NONE)),
            );
        })
    });
    c.bench_function("filter keystroke + frame", |b| {
        b.iter(|| {
            update(&mut state, key('s'));
            let _ = terminal.draw(|frame| killswitch::tui::view::render(frame, &state));
            update(
                &mut state,
                Action::Input(KeyEvent::new(KeyCode::Backspace, KeyModifiers::NONE)),
            );
        })
    });

    let snapshot = common::snapshot("prod-us", 5, FLAGS);
    c.bench_function(
        "one environment of 5000 flags arrives (rows rebuilt)",
        |b| {
            b.iter(|| {
                update(
                    &mut state,
                    Action::EnvLoaded {
                        env: "prod-us".into(),
                        result: Ok(snapshot.clone()),
                        read_only_reason: None,
                    },
                );
            })
        },
    );
}

criterion_group! {
    name = scale;
    config = Criterion::default().sample_size(30).measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = benches
}
criterion_main!(scale);
