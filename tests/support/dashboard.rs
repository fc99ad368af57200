//! Builds dashboard states from the sample flag files, with a fixed clock, for the view
//! snapshots and the headless app tests.

use chrono::{DateTime, TimeZone, Utc};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use killswitch::model::EnvSnapshot;
use killswitch::provider::flagd;
use killswitch::tui::action::Action;
use killswitch::tui::app::{Effect, Setup, State, update};
use killswitch::tui::keymap::Keymap;

pub const ENVS: [&str; 3] = ["dev", "staging", "prod"];

pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 24, 3, 12, 0)
        .single()
        .expect("valid time")
}

pub fn seed(env: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(format!("assets/seed/{env}.flagd.json"));
    std::fs::read_to_string(path).expect("seed file")
}

pub fn snapshot(env: &str) -> EnvSnapshot {
    let document = flagd::parse_document(&seed(env)).expect("seed parses");
    let flags = document["flags"]
        .as_object()
        .expect("flags")
        .iter()
        .map(|(key, definition)| flagd::summarise(key, definition))
        .collect();
    EnvSnapshot {
        env: env.to_string(),
        flags,
        fetched_at: now(),
    }
}

pub fn state(read_only: bool, size: (u16, u16), focus: Option<(&str, &str)>) -> State {
    State::new(Setup {
        envs: ENVS
            .iter()
            .map(|env| (env.to_string(), *env == "prod"))
            .collect(),
        keymap: Keymap::builtin("default").expect("default keymap"),
        read_only,
        local_workspace: true,
        operator: "alice@bastion".to_string(),
        refresh_interval: std::time::Duration::from_secs(30),
        focus: focus.map(|(env, flag)| (env.to_string(), flag.to_string())),
        now: now(),
        size,
    })
}

/// A state with every environment loaded from the sample files.
pub fn loaded(read_only: bool, size: (u16, u16), focus: Option<(&str, &str)>) -> State {
    let mut state = state(read_only, size, focus);
    for env in ENVS {
        update(
            &mut state,
            Action::EnvLoaded {
                env: env.to_string(),
                result: Ok(snapshot(env)),
                read_only_reason: None,
            },
        );
    }
    state
}

pub fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

/// Presses one key the way the runner does (keymap in the dashboard, input in dialogs).
pub fn press(state: &mut State, code: KeyCode) -> Vec<Effect> {
    match killswitch::tui::app::key_action(state, key(code)) {
        Some(action) => update(state, action),
        None => Vec::new(),
    }
}

pub fn type_text(state: &mut State, text: &str) -> Vec<Effect> {
    let mut effects = Vec::new();
    for c in text.chars() {
        effects.extend(press(state, KeyCode::Char(c)));
    }
    effects
}

/// Renders the state into a TestBackend and returns the screen as text.
pub fn render(state: &State) -> String {
    let (width, height) = state.size;
    let backend = ratatui::backend::TestBackend::new(width, height);
    let mut terminal = ratatui::Terminal::new(backend).expect("test terminal");
    terminal
        .draw(|frame| killswitch::tui::view::render(frame, state))
        .expect("draw");
    let buffer = terminal.backend().buffer();
    let mut text = String::new();
    for y in 0..buffer.area.height {
        let mut line = String::new();
        for x in 0..buffer.area.width {
            line.push_str(buffer[(x, y)].symbol());
        }
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}
