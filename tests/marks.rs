//! The dashboard's marked set, driven headless: `space` marks cells, the flip key acts on all
//! of them with one note and one confirmation typing every protected name, Esc clears.

mod support;

use std::time::Duration;

use crossterm::event::KeyCode;
use killswitch::flip::{FlipOutcome, Verification};
use killswitch::tui::action::Action;
use killswitch::tui::app::{DialogStage, Effect, Mode, update};
use support::dashboard::{loaded, press, render, type_text};

#[test]
fn space_marks_cells_and_the_flip_key_acts_on_the_marked_set() {
    // The cursor starts on kill_switch_checkout in prod (protected).
    let mut state = loaded(false, (110, 30), None);
    press(&mut state, KeyCode::Char(' '));
    press(&mut state, KeyCode::Left);
    press(&mut state, KeyCode::Char(' '));
    assert_eq!(
        state.marks,
        vec![
            ("kill_switch_checkout".to_string(), "prod".to_string()),
            ("kill_switch_checkout".to_string(), "staging".to_string()),
        ]
    );
    let screen = render(&state);
    assert!(screen.contains(" 2 MARKED "), "{screen}");
    assert!(
        screen.contains("+SERVING"),
        "a marked cell says so in words:\n{screen}"
    );

    press(&mut state, KeyCode::Char('f'));
    let Mode::Flip(dialog) = &state.mode else {
        panic!("the set's dialog")
    };
    assert_eq!(dialog.set.len(), 2);
    assert_eq!(
        dialog.sentence,
        "KILL checkout in prod: kill_switch_checkout SERVING -> KILLED\n\
         KILL checkout in staging: kill_switch_checkout SERVING -> KILLED"
    );
    type_text(&mut state, "INC-88 both");
    assert!(press(&mut state, KeyCode::Enter).is_empty());
    // `y` is not a confirmation when the set touches a protected environment.
    type_text(&mut state, "y");
    assert!(press(&mut state, KeyCode::Enter).is_empty());
    let screen = render(&state);
    assert!(
        screen.contains("Protected: prod. Type every protected name"),
        "{screen}"
    );
    press(&mut state, KeyCode::Backspace);
    type_text(&mut state, "prod");
    let effects = press(&mut state, KeyCode::Enter);
    let [Effect::FlipSet(requests)] = effects.as_slice() else {
        panic!("one set effect, got {effects:?}")
    };
    let envs: Vec<&str> = requests.iter().map(|r| r.env.as_str()).collect();
    assert_eq!(envs, vec!["prod", "staging"]);
    assert!(
        requests
            .iter()
            .all(|r| r.note == "INC-88 both" && !r.change.enabled())
    );

    let applied = FlipOutcome::Applied {
        audit_id: "a1".into(),
        took: Duration::from_millis(3),
        verification: Verification::Confirmed {
            after: Duration::from_millis(20),
        },
        audit_warning: None,
        served_via: "the flag file as flagd reads it",
        from: "SERVING".into(),
        to: "KILLED".into(),
        lost_answer: None,
    };
    let effects = update(
        &mut state,
        Action::FlipSetFinished(vec![
            (requests[0].clone(), Ok(applied)),
            (
                requests[1].clone(),
                Err(killswitch::flip::FlipError::Provider {
                    stage: "apply the change",
                    error: killswitch::provider::ProviderError::new(
                        killswitch::provider::ErrorKind::Api,
                        "HTTP 503",
                    ),
                }),
            ),
        ]),
    );
    assert_eq!(
        effects,
        vec![Effect::Load("prod".into()), Effect::Load("staging".into())]
    );
    let Mode::Flip(dialog) = &state.mode else {
        panic!("the result")
    };
    let DialogStage::Done { ok, lines } = &dialog.stage else {
        panic!("done")
    };
    assert!(!ok, "one failed: not all done");
    assert_eq!(lines[0], "1 of 2 cells NOT done");
    assert!(
        lines[1].contains("prod: applied (SERVING -> KILLED), confirmed in 20 ms"),
        "{lines:?}"
    );
    assert!(
        lines[2].contains("staging FAILED: apply the change: HTTP 503"),
        "{lines:?}"
    );
    assert!(state.marks.is_empty(), "marks are cleared once the set ran");
}

#[test]
fn esc_clears_the_marks_and_space_again_unmarks() {
    let mut state = loaded(false, (110, 30), None);
    press(&mut state, KeyCode::Char(' '));
    press(&mut state, KeyCode::Char(' '));
    assert!(state.marks.is_empty(), "space again unmarks");
    press(&mut state, KeyCode::Char(' '));
    press(&mut state, KeyCode::Down);
    press(&mut state, KeyCode::Char(' '));
    assert_eq!(state.marks.len(), 2);
    press(&mut state, KeyCode::Esc);
    assert!(state.marks.is_empty());
    assert!(!render(&state).contains("MARKED"));
    // Without marks the flip key is the one-cell dialog again.
    press(&mut state, KeyCode::Char('f'));
    let Mode::Flip(dialog) = &state.mode else {
        panic!("dialog")
    };
    assert!(dialog.set.is_empty());
}

#[test]
fn read_only_mode_marks_nothing() {
    let mut state = loaded(true, (110, 30), None);
    press(&mut state, KeyCode::Char(' '));
    assert!(state.marks.is_empty());
    let message = state.message.clone().map(|(_, m)| m).unwrap_or_default();
    assert!(message.starts_with("READ-ONLY"), "{message}");
}

#[test]
fn the_help_lists_space_from_the_keymap() {
    let mut state = loaded(false, (110, 40), None);
    press(&mut state, KeyCode::Char('?'));
    let screen = render(&state);
    assert!(screen.contains("Mark / unmark the cell"), "{screen}");
}
