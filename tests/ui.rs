//! Every screen as a snapshot: ratatui's TestBackend renders the pure view of a state built
//! from the sample flags with a fixed clock.

mod support;

use crossterm::event::KeyCode;
use killswitch::tui::action::Action;
use killswitch::tui::app::update;
use support::dashboard::{loaded, press, render, state, type_text};

#[test]
fn dashboard_shows_every_flag_and_environment() {
    let state = loaded(false, (110, 30), None);
    let screen = render(&state);
    insta::assert_snapshot!("dashboard", screen);
}

#[test]
fn dashboard_while_loading_and_after_a_failure() {
    let mut state = state(false, (110, 24), None);
    update(
        &mut state,
        Action::EnvLoaded {
            env: "dev".into(),
            result: Ok(support::dashboard::snapshot("dev")),
            read_only_reason: None,
        },
    );
    update(
        &mut state,
        Action::EnvLoaded {
            env: "prod".into(),
            result: Err(
                "prod: vault kv/feature-flags/flagsmith/prod answered 403 permission denied".into(),
            ),
            read_only_reason: None,
        },
    );
    insta::assert_snapshot!("dashboard_partial", render(&state));
}

#[test]
fn flip_dialog_note_then_typed_confirmation() {
    let mut state = loaded(false, (110, 30), Some(("prod", "kill_switch_checkout")));
    press(&mut state, KeyCode::Char('f'));
    type_text(&mut state, "INC-4711 checkout p99 over 5 s");
    insta::assert_snapshot!("flip_dialog_note", render(&state));
    press(&mut state, KeyCode::Enter);
    type_text(&mut state, "pro");
    insta::assert_snapshot!("flip_dialog_confirm", render(&state));
}

#[test]
fn flip_dialog_refuses_an_empty_note() {
    let mut state = loaded(false, (110, 30), Some(("prod", "kill_switch_checkout")));
    press(&mut state, KeyCode::Char('f'));
    press(&mut state, KeyCode::Enter);
    insta::assert_snapshot!("flip_dialog_empty_note", render(&state));
}

#[test]
fn help_is_generated_from_the_keymap() {
    let mut state = loaded(false, (110, 34), None);
    press(&mut state, KeyCode::Char('?'));
    insta::assert_snapshot!("help", render(&state));
}

#[test]
fn read_only_mode_says_so_and_offers_no_flip() {
    let mut state = loaded(true, (110, 34), None);
    let dashboard = render(&state);
    assert!(dashboard.contains("READ-ONLY"));
    assert!(
        !dashboard.contains("kill/restore"),
        "help bar offers no flip"
    );
    insta::assert_snapshot!("read_only_dashboard", dashboard);
    press(&mut state, KeyCode::Char('?'));
    insta::assert_snapshot!("read_only_help", render(&state));
}

#[test]
fn too_small_terminal_gets_a_message() {
    let state = loaded(false, (50, 10), None);
    insta::assert_snapshot!("too_small", render(&state));
}

#[test]
fn filter_narrows_the_rows() {
    let mut state = loaded(false, (110, 30), None);
    press(&mut state, KeyCode::Char('/'));
    type_text(&mut state, "ckout");
    insta::assert_snapshot!("filtered", render(&state));
}
