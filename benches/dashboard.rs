//! Scale: 5,000 flags x 6 environments. One frame, one filter keystroke, one environment load.
//! Targets (issue 9): frame and keystroke under 4 ms. Results in BENCHMARKS.md.

mod common;

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

fn loaded_state() -> State {
    let mut state = State::new(Setup {
        envs: common::ENVS
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
        size: SIZE,
    });
    for (index, env) in common::ENVS.iter().enumerate() {
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

fn benches(c: &mut Criterion) {
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
