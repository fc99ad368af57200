//! Builds dashboard states from the sample flag files, with a fixed clock, for the view
//! snapshots and the headless app tests.

use chrono::{DateTime, TimeZone, Utc};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use killswitch::model::EnvSnapshot;
use killswitch::provider::{ErrorKind, ProviderError, flagd};
use killswitch::session::{ConnectError, CredentialError, CredentialKind};
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

/// The vendor's answer to the open rollout dialog's question (which other environments the
/// write reaches), as the runner sends it.
pub fn shared_answer(state: &State, result: Result<Vec<String>, String>) -> Action {
    let killswitch::tui::app::Mode::Flip(dialog) = &state.mode else {
        panic!("no dialog open");
    };
    Action::RolloutShared {
        env: dialog.request.env.clone(),
        flag: dialog.request.flag.clone(),
        target: dialog
            .request
            .change
            .rollout()
            .cloned()
            .expect("a rollout dialog"),
        answer: match result {
            Ok(with) => killswitch::tui::rollout::Answer::Shared {
                target: dialog
                    .request
                    .change
                    .rollout()
                    .cloned()
                    .expect("a rollout dialog"),
                with,
            },
            Err(error) => killswitch::tui::rollout::Answer::Failed(error),
        },
    }
}

/// Presses one key the way the runner does (keymap in the dashboard, input in dialogs).
pub fn press(state: &mut State, code: KeyCode) -> Vec<Effect> {
    match killswitch::tui::app::key_action(state, key(code)) {
        Some(action) => update(state, action),
        None => Vec::new(),
    }
}

/// Presses a key with modifiers (`ctrl-x`).
pub fn press_key(state: &mut State, key: KeyEvent) -> Vec<Effect> {
    match killswitch::tui::app::key_action(state, key) {
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

/// A load that failed at the vendor (timed out, refused), as the session reports it.
pub fn vendor_failure(message: &str) -> ConnectError {
    ConnectError::Provider(ProviderError::new(ErrorKind::Unreachable, message))
}

/// A load that failed on its credentials (Vault), as the session reports it.
pub fn vault_failure(message: &str) -> ConnectError {
    ConnectError::Credentials(CredentialError::new(CredentialKind::Denied, message))
}

/// Renders the state into a TestBackend and returns its buffer: every cell with its style.
pub fn render_buffer(state: &State) -> ratatui::buffer::Buffer {
    let (width, height) = state.size;
    let backend = ratatui::backend::TestBackend::new(width, height);
    let mut terminal = ratatui::Terminal::new(backend).expect("test terminal");
    terminal
        .draw(|frame| killswitch::tui::view::render(frame, state))
        .expect("draw");
    terminal.backend().buffer().clone()
}

/// Renders the state into a TestBackend and returns the screen as text.
pub fn render(state: &State) -> String {
    let buffer = &render_buffer(state);
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

/// Environment names as a platform has them: per region, per vendor, some long.
pub const MANY_ENVS: [&str; 30] = [
    "dev",
    "staging",
    "prod",
    "dev-eu",
    "staging-eu",
    "prod-eu",
    "dev-us",
    "staging-us",
    "prod-us",
    "prod-ap",
    "ld-staging",
    "ld-production",
    "unleash-dev",
    "unleash-prod",
    "dev-eu-central-1",
    "prod-eu-central-1",
    "dev-eu-west-1",
    "prod-eu-west-1",
    "dev-us-east-1",
    "prod-us-east-1",
    "dev-us-west-2",
    "prod-us-west-2",
    "staging-ap-south-1",
    "prod-ap-south-1",
    "sandbox",
    "perf",
    "qa",
    "canary",
    "dr-eu",
    "dr-us",
];

/// A flag key longer than any terminal's flag column, differing from its sibling only at the end.
pub const LONG_KEY: &str = "checkout_stripe_payment_intents_webhook_retry_policy_v2024_11_eu";
pub const LONG_SIBLING: &str = "checkout_stripe_payment_intents_webhook_retry_policy_v2024_11_us";

/// The sample flags of `seed` (dev, staging or prod) served as `env`, plus two long keys.
pub fn many_snapshot(env: &str, seed: &str) -> EnvSnapshot {
    let mut snapshot = snapshot(seed);
    snapshot.env = env.to_string();
    for key in [LONG_KEY, LONG_SIBLING] {
        if let Some(mut flag) = snapshot
            .flags
            .iter()
            .find(|f| f.meta.key.starts_with("checkout_stripe"))
            .cloned()
        {
            let mut meta = (*flag.meta).clone();
            meta.key = key.to_string();
            flag.meta = std::sync::Arc::new(meta);
            snapshot.flags.push(flag);
        }
    }
    snapshot
}

/// `count` environments (the first of [`MANY_ENVS`]), every one loaded except `failed`, which
/// fails with a Vault error.
pub fn many(
    count: usize,
    size: (u16, u16),
    failed: Option<&str>,
    focus: Option<(&str, &str)>,
) -> State {
    let names: Vec<&str> = MANY_ENVS.iter().take(count).copied().collect();
    let mut state = State::new(Setup {
        envs: names
            .iter()
            .map(|env| (env.to_string(), env.contains("prod")))
            .collect(),
        keymap: Keymap::builtin("default").expect("default keymap"),
        read_only: false,
        local_workspace: false,
        operator: "alice@bastion".to_string(),
        refresh_interval: std::time::Duration::from_secs(30),
        focus: focus.map(|(env, flag)| (env.to_string(), flag.to_string())),
        now: now(),
        size,
    });
    for (index, env) in names.iter().enumerate() {
        let result = if Some(*env) == failed {
            Err(vault_failure(&format!(
                "{env}: vault kv/feature-flags/flagsmith/{env} answered 403 permission denied"
            )))
        } else {
            Ok(many_snapshot(env, ENVS[index % 3]))
        };
        update(
            &mut state,
            Action::EnvLoaded {
                env: env.to_string(),
                result,
                read_only_reason: None,
            },
        );
    }
    state
}
