//! The dashboard driven headless: keys in, effects and state out. No terminal, no I/O.

mod support;

use std::time::Duration;

use crossterm::event::KeyCode;
use killswitch::flip::{FlipOutcome, Verification};
use killswitch::tui::action::Action;
use killswitch::tui::app::{DialogStage, Effect, Level, Mode, update};
use support::dashboard::{loaded, now, press, shared_answer, snapshot, state, type_text};

fn selected(state: &killswitch::tui::app::State) -> (String, String) {
    let flag = state
        .selected_row()
        .map(|row| row.meta.key.clone())
        .unwrap_or_default();
    let env = state.envs[state.col].name.clone();
    (env, flag)
}

#[test]
fn deep_link_lands_on_the_cell() {
    let state = loaded(
        false,
        (110, 30),
        Some(("staging", "checkout_stripe_payment_intents_v2024_11")),
    );
    assert_eq!(
        selected(&state),
        (
            "staging".into(),
            "checkout_stripe_payment_intents_v2024_11".into()
        )
    );
    assert!(state.focus.is_none());
}

#[test]
fn without_a_deep_link_the_cursor_starts_on_the_first_kill_switch_in_prod() {
    let state = loaded(false, (110, 30), None);
    assert_eq!(
        selected(&state),
        ("prod".into(), "kill_switch_checkout".into())
    );
}

#[test]
fn deep_link_to_a_missing_flag_says_so_once_everything_loaded() {
    let state = loaded(false, (110, 30), Some(("prod", "kill_switch_nope")));
    let message = state
        .message
        .clone()
        .map(|(_, text)| text)
        .unwrap_or_default();
    assert!(message.contains("kill_switch_nope"), "{message}");
}

#[test]
fn killing_in_prod_takes_three_keys_plus_note_and_environment_name() {
    let mut state = loaded(false, (110, 30), None);
    let mut keys = 0;
    let mut effects = Vec::new();
    effects.extend(press(&mut state, KeyCode::Char('f')));
    keys += 1;
    effects.extend(type_text(&mut state, "INC-4711 p99"));
    effects.extend(press(&mut state, KeyCode::Enter));
    keys += 1;
    assert!(
        effects.is_empty(),
        "nothing happens before the confirmation"
    );
    effects.extend(type_text(&mut state, "prod"));
    effects.extend(press(&mut state, KeyCode::Enter));
    keys += 1;
    assert_eq!(keys, 3);
    let [Effect::Flip(request)] = effects.as_slice() else {
        panic!("one flip effect, got {effects:?}")
    };
    assert_eq!(request.env, "prod");
    assert_eq!(request.flag, "kill_switch_checkout");
    assert!(
        request.change == killswitch::flip::Change::Switch { enabled: false },
        "a kill turns the switch off"
    );
    assert_eq!(request.note, "INC-4711 p99");
    let Mode::Flip(dialog) = &state.mode else {
        panic!("dialog stays open while applying")
    };
    assert_eq!(dialog.stage, DialogStage::Applying);
}

#[test]
fn wrong_environment_name_does_not_confirm() {
    let mut state = loaded(false, (110, 30), None);
    press(&mut state, KeyCode::Char('f'));
    type_text(&mut state, "note");
    press(&mut state, KeyCode::Enter);
    type_text(&mut state, "staging");
    let effects = press(&mut state, KeyCode::Enter);
    assert!(effects.is_empty());
    let Mode::Flip(dialog) = &state.mode else {
        panic!("dialog open")
    };
    assert!(
        dialog
            .error
            .as_deref()
            .unwrap_or_default()
            .contains("type `prod` exactly")
    );
    press(&mut state, KeyCode::Esc);
    assert!(matches!(state.mode, Mode::Normal), "Esc cancels");
}

#[test]
fn unprotected_environment_confirms_with_one_key() {
    let mut state = loaded(false, (110, 30), Some(("dev", "kill_switch_checkout")));
    press(&mut state, KeyCode::Char('f'));
    type_text(&mut state, "testing the switch");
    press(&mut state, KeyCode::Enter);
    let effects = press(&mut state, KeyCode::Char('y'));
    assert!(matches!(effects.as_slice(), [Effect::Flip(request)] if request.env == "dev"));
}

#[test]
fn empty_note_is_refused_and_nothing_is_sent() {
    let mut state = loaded(false, (110, 30), None);
    press(&mut state, KeyCode::Char('f'));
    type_text(&mut state, "   ");
    let effects = press(&mut state, KeyCode::Enter);
    assert!(effects.is_empty());
    let Mode::Flip(dialog) = &state.mode else {
        panic!("dialog open")
    };
    assert_eq!(dialog.stage, DialogStage::Note);
    assert!(dialog.error.is_some());
}

#[test]
fn read_only_never_opens_the_dialog() {
    let mut state = loaded(true, (110, 30), None);
    let effects = press(&mut state, KeyCode::Char('f'));
    assert!(effects.is_empty());
    assert!(matches!(state.mode, Mode::Normal));
    assert!(matches!(&state.message, Some((Level::Error, text)) if text.contains("READ-ONLY")));
}

#[test]
fn an_environment_without_write_access_says_why() {
    let mut state = state(false, (110, 30), None);
    for env in ["dev", "staging", "prod"] {
        let reason = (env == "prod")
            .then(|| "Vault policy denies kv/feature-flags/flagsmith/prod/admin".to_string());
        update(
            &mut state,
            Action::EnvLoaded {
                env: env.into(),
                result: Ok(snapshot(env)),
                read_only_reason: reason,
            },
        );
    }
    press(&mut state, KeyCode::Char('f'));
    assert!(matches!(state.mode, Mode::Normal));
    let message = state
        .message
        .clone()
        .map(|(_, text)| text)
        .unwrap_or_default();
    assert!(
        message.contains("prod is read-only: Vault policy denies"),
        "{message}"
    );
}

#[test]
fn finished_flip_shows_the_result_and_reloads_the_environment() {
    let mut state = loaded(false, (110, 30), None);
    press(&mut state, KeyCode::Char('f'));
    type_text(&mut state, "note");
    press(&mut state, KeyCode::Enter);
    type_text(&mut state, "prod");
    let effects = press(&mut state, KeyCode::Enter);
    let [Effect::Flip(request)] = effects.as_slice() else {
        panic!("flip effect")
    };
    let outcome = FlipOutcome::Applied {
        audit_id: "a1".into(),
        took: Duration::from_millis(12),
        verification: Verification::Confirmed {
            after: Duration::from_millis(30),
        },
        audit_warning: None,
        served_via: "the flag file as flagd reads it",
        from: "SERVING".into(),
        to: "KILLED, 1 seg ON".into(),
        lost_answer: None,
    };
    let effects = update(
        &mut state,
        Action::FlipFinished {
            request: request.clone(),
            result: Ok(outcome),
            since_launch: Duration::from_millis(8400),
        },
    );
    assert_eq!(
        effects,
        vec![Effect::Load("prod".into()), Effect::LoadLastChanges]
    );
    let Mode::Flip(dialog) = &state.mode else {
        panic!("dialog shows the result")
    };
    let DialogStage::Done { ok, lines } = &dialog.stage else {
        panic!("done")
    };
    assert!(*ok);
    assert!(
        lines[0].ends_with("SERVING -> KILLED, 1 seg ON"),
        "{lines:?}"
    );
    assert!(lines[1].contains("30 ms"), "{lines:?}");
    assert!(
        lines[2].starts_with("8.4 s since killswitch started"),
        "{lines:?}"
    );
    press(&mut state, KeyCode::Enter);
    assert!(matches!(state.mode, Mode::Normal));
}

#[test]
fn ctrl_c_cannot_abandon_a_flip_in_flight() {
    let mut state = loaded(false, (110, 30), None);
    press(&mut state, KeyCode::Char('f'));
    type_text(&mut state, "note");
    press(&mut state, KeyCode::Enter);
    type_text(&mut state, "prod");
    press(&mut state, KeyCode::Enter);
    let ctrl_c = crossterm::event::KeyEvent::new(
        KeyCode::Char('c'),
        crossterm::event::KeyModifiers::CONTROL,
    );
    assert!(killswitch::tui::app::key_action(&state, ctrl_c).is_none());
}

#[test]
fn failed_refresh_keeps_the_last_data_marked_as_old() {
    let mut state = loaded(false, (110, 30), None);
    update(
        &mut state,
        Action::EnvLoaded {
            env: "prod".into(),
            result: Err(support::dashboard::vendor_failure("prod: timed out")),
            read_only_reason: None,
        },
    );
    let prod = &state.envs[2];
    assert!(prod.snapshot.is_some(), "last known data kept");
    assert!(
        prod.is_stale(now(), Duration::from_secs(30)),
        "and marked as not current"
    );
    let screen = support::dashboard::render(&state);
    assert!(screen.contains("prod FAILED, showing 03:12:00"), "{screen}");
}

#[test]
fn ticks_refresh_environments_when_due() {
    let mut state = loaded(false, (110, 30), None);
    let effects = update(
        &mut state,
        Action::Tick(now() + chrono::Duration::seconds(10)),
    );
    assert!(
        !effects.iter().any(|e| matches!(e, Effect::Load(_))),
        "{effects:?}"
    );
    let effects = update(
        &mut state,
        Action::Tick(now() + chrono::Duration::seconds(31)),
    );
    // (Besides the loads, the selected flag's vendor history may be asked for once.)
    let loads = |effects: &[Effect]| {
        effects
            .iter()
            .filter(|e| matches!(e, Effect::Load(_)))
            .count()
    };
    assert_eq!(loads(&effects), 3);
    let effects = update(
        &mut state,
        Action::Tick(now() + chrono::Duration::seconds(32)),
    );
    assert_eq!(loads(&effects), 0, "no double loads");
}

#[test]
fn navigation_stays_inside_the_matrix() {
    let mut state = loaded(false, (110, 30), None);
    for _ in 0..10 {
        press(&mut state, KeyCode::Down);
        press(&mut state, KeyCode::Right);
    }
    assert_eq!(state.row, 5);
    assert_eq!(state.col, 2);
    press(&mut state, KeyCode::Home);
    assert_eq!(state.row, 0);
}

/// One environment still loading (a hung vendor) and one failed: the loaded one is fully
/// usable, the others say what they are doing, and the dashboard never waits for them.
#[test]
fn a_hung_and_a_failed_environment_do_not_hold_back_the_loaded_one() {
    let mut state = state(false, (110, 30), None);
    update(
        &mut state,
        Action::EnvLoaded {
            env: "prod".into(),
            result: Ok(snapshot("prod")),
            read_only_reason: None,
        },
    );
    update(
        &mut state,
        Action::EnvLoaded {
            env: "dev".into(),
            result: Err(support::dashboard::vendor_failure(
                "dev: https://flagsmith.internal/api/v1/environment-document/ timed out",
            )),
            read_only_reason: None,
        },
    );
    // staging never answers.
    let screen = support::dashboard::render(&state);
    assert!(screen.contains("staging"), "{screen}");
    assert!(screen.contains("dev FAILED"), "{screen}");
    assert!(
        screen.contains("timed out"),
        "the error is on screen: {screen}"
    );
    assert!(screen.contains("SERVING"), "prod's data shows: {screen}");
    // Navigate onto prod's kill switch and open the dialog: prod works while staging hangs.
    assert_eq!(
        selected(&state),
        ("prod".into(), "kill_switch_checkout".into())
    );
    press(&mut state, KeyCode::Char('f'));
    assert!(
        matches!(state.mode, Mode::Flip(_)),
        "the flip dialog opens on a loaded environment"
    );
    press(&mut state, KeyCode::Esc);
    // On the hung column, the flip says why it cannot be done yet.
    press(&mut state, KeyCode::Left);
    press(&mut state, KeyCode::Char('f'));
    let message = state
        .message
        .clone()
        .map(|(_, text)| text)
        .unwrap_or_default();
    assert!(message.contains("staging is still loading"), "{message}");
}

/// A first environment read without metadata (a Flagsmith environment without the admin
/// credential) must not hide the owner, date and kind the other environments hold.
#[test]
fn a_row_takes_each_metadata_field_from_the_first_environment_that_has_it() {
    let mut state = state(false, (110, 30), None);
    for env in ["dev", "staging", "prod"] {
        let mut snapshot = snapshot(env);
        if env == "dev" {
            for flag in &mut snapshot.flags {
                flag.meta = std::sync::Arc::new(killswitch::model::FlagMeta {
                    key: flag.meta.key.clone(),
                    ..Default::default()
                });
            }
        }
        update(
            &mut state,
            Action::EnvLoaded {
                env: env.into(),
                result: Ok(snapshot),
                read_only_reason: None,
            },
        );
    }
    let prod = snapshot("prod");
    for row in &state.rows {
        let Some(in_prod) = prod.flag(&row.meta.key) else {
            continue;
        };
        assert_eq!(row.meta.owner, in_prod.meta.owner, "{}", row.meta.key);
        assert!(row.meta.owner.is_some(), "{}", row.meta.key);
        assert_eq!(row.meta.kind, in_prod.meta.kind, "{}", row.meta.key);
        assert_eq!(
            row.meta.expected_removal, in_prod.meta.expected_removal,
            "{}",
            row.meta.key
        );
        // dev's cell is worded with the merged kind too.
        let dev = state.cell_text(row, 0);
        let prod_cell = state.cell_text(row, 2);
        if row.meta.is_kill_switch() {
            assert!(
                dev.iter()
                    .chain(&prod_cell)
                    .all(|c| c.starts_with("SERVING") || c.starts_with("KILLED")),
                "{}: {dev:?} {prod_cell:?}",
                row.meta.key
            );
        }
    }
}

/// An unknown outcome is not worded as a failure: the change may be live.
#[test]
fn an_unknown_outcome_is_said_as_such_not_as_failed() {
    let mut state = loaded(false, (110, 30), None);
    press(&mut state, KeyCode::Char('f'));
    type_text(&mut state, "note");
    press(&mut state, KeyCode::Enter);
    type_text(&mut state, "prod");
    let effects = press(&mut state, KeyCode::Enter);
    let [Effect::Flip(request)] = effects.as_slice() else {
        panic!("flip effect")
    };
    let error = killswitch::flip::FlipError::OutcomeUnknown {
        env: "prod".into(),
        flag: "kill_switch_checkout".into(),
        lost: "timed out".into(),
        reread: "connection reset".into(),
        audit_id: "a1".into(),
    };
    update(
        &mut state,
        Action::flip_finished((**request).clone(), Err(error), Duration::from_millis(900)),
    );
    let Mode::Flip(dialog) = &state.mode else {
        panic!("dialog shows the result")
    };
    let DialogStage::Done { ok, lines } = &dialog.stage else {
        panic!("done")
    };
    assert!(!*ok);
    assert!(lines[0].starts_with("KILL: OUTCOME UNKNOWN"), "{lines:?}");
    assert!(!lines[0].contains("FAILED"), "{lines:?}");
    assert!(lines[0].contains("status --env prod --flag kill_switch_checkout"));
}

/// Issue 15: states paint first; owners, tags and descriptions fill in when the Admin API
/// answers, whichever of the two arrives first, and later refreshes keep them.
#[test]
fn metadata_fills_in_beside_the_states_in_either_order() {
    use killswitch::model::FlagMeta;
    use std::sync::Arc;
    let owner_of = |state: &killswitch::tui::app::State, key: &str| {
        state
            .rows
            .iter()
            .find(|row| row.meta.key == key)
            .and_then(|row| row.meta.owner.clone())
    };
    let metadata = |env: &str| -> Arc<Vec<FlagMeta>> {
        let mut metas: Vec<FlagMeta> = snapshot(env)
            .flags
            .iter()
            .map(|flag| (*flag.meta).clone())
            .collect();
        for meta in &mut metas {
            meta.owner = Some("team-incident".into());
        }
        Arc::new(metas)
    };
    let bare = |env: &str| {
        let mut snap = snapshot(env);
        for flag in &mut snap.flags {
            let mut meta = (*flag.meta).clone();
            meta.owner = None;
            flag.meta = Arc::new(meta);
        }
        snap
    };
    // States first: cells are there at once, owners after.
    let mut first = state(false, (110, 30), None);
    for env in ["dev", "staging", "prod"] {
        update(
            &mut first,
            Action::EnvLoaded {
                env: env.into(),
                result: Ok(bare(env)),
                read_only_reason: None,
            },
        );
    }
    assert!(!first.rows.is_empty());
    assert_eq!(owner_of(&first, "kill_switch_checkout"), None);
    for env in ["dev", "staging", "prod"] {
        update(
            &mut first,
            Action::MetadataLoaded {
                env: env.into(),
                metadata: metadata(env),
            },
        );
    }
    assert_eq!(
        owner_of(&first, "kill_switch_checkout").as_deref(),
        Some("team-incident")
    );
    // A refresh brings bare states again: the metadata already known stays on them.
    update(
        &mut first,
        Action::EnvLoaded {
            env: "prod".into(),
            result: Ok(bare("prod")),
            read_only_reason: None,
        },
    );
    assert_eq!(
        owner_of(&first, "kill_switch_checkout").as_deref(),
        Some("team-incident")
    );

    // Metadata first: kept until the states arrive.
    let mut second = state(false, (110, 30), None);
    for env in ["dev", "staging", "prod"] {
        update(
            &mut second,
            Action::MetadataLoaded {
                env: env.into(),
                metadata: metadata(env),
            },
        );
        update(
            &mut second,
            Action::EnvLoaded {
                env: env.into(),
                result: Ok(bare(env)),
                read_only_reason: None,
            },
        );
    }
    assert_eq!(
        owner_of(&second, "kill_switch_checkout").as_deref(),
        Some("team-incident")
    );
}

fn dialog(state: &killswitch::tui::app::State) -> &killswitch::tui::app::FlipDialog {
    match &state.mode {
        Mode::Flip(dialog) => dialog,
        other => panic!("the flip dialog is open, got {other:?}"),
    }
}

#[test]
fn a_note_of_invisible_characters_only_is_refused_in_the_dialog() {
    for invisible in ["\u{200b}\u{200b}", "\u{feff} \u{2060}", "\u{00ad}"] {
        let mut state = loaded(false, (110, 30), Some(("dev", "kill_switch_checkout")));
        press(&mut state, KeyCode::Char('f'));
        type_text(&mut state, invisible);
        let effects = press(&mut state, KeyCode::Enter);
        assert!(effects.is_empty(), "{invisible:?}");
        let open = dialog(&state);
        assert_eq!(open.stage, DialogStage::Note, "{invisible:?}");
        assert!(
            open.error
                .as_deref()
                .unwrap_or_default()
                .contains("an audit note is required"),
            "{:?}",
            open.error
        );
        // Pasted, the same: refused at Enter.
        let mut state = loaded(false, (110, 30), Some(("dev", "kill_switch_checkout")));
        press(&mut state, KeyCode::Char('f'));
        update(&mut state, Action::Paste(format!("\u{1b}{invisible}\n")));
        press(&mut state, KeyCode::Enter);
        assert_eq!(dialog(&state).stage, DialogStage::Note, "{invisible:?}");
    }
}

#[test]
fn a_paste_fills_the_note_in_one_step_and_never_confirms() {
    let mut state = loaded(false, (110, 30), Some(("dev", "kill_switch_checkout")));
    press(&mut state, KeyCode::Char('f'));
    // "INC-42\n\n" once confirmed a kill: the newlines are text inside a paste, not keys.
    let effects = update(&mut state, Action::Paste("INC-42\n\n".into()));
    assert!(effects.is_empty());
    let dialog_now = dialog(&state);
    assert_eq!(
        dialog_now.stage,
        DialogStage::Note,
        "a paste never moves on"
    );
    assert_eq!(dialog_now.note.value(), "INC-42 ");
    // The operator's own Enter asks the question; a paste there still does not answer it.
    press(&mut state, KeyCode::Enter);
    assert_eq!(dialog(&state).stage, DialogStage::Confirm);
    let effects = update(&mut state, Action::Paste("y\n".into()));
    assert!(effects.is_empty(), "a paste does not confirm");
    assert_eq!(dialog(&state).stage, DialogStage::Confirm);
    let effects = press(&mut state, KeyCode::Char('y'));
    let [Effect::Flip(request)] = effects.as_slice() else {
        panic!("the key press confirms: {effects:?}")
    };
    assert_eq!(request.note, "INC-42");
}

#[test]
fn the_protected_confirmation_must_be_typed_not_pasted() {
    let mut state = loaded(false, (110, 30), None);
    press(&mut state, KeyCode::Char('f'));
    type_text(&mut state, "INC-43");
    press(&mut state, KeyCode::Enter);
    let effects = update(&mut state, Action::Paste("prod\n".into()));
    assert!(effects.is_empty());
    assert_eq!(dialog(&state).confirm.value(), "", "nothing pasted in");
    assert!(
        dialog(&state)
            .error
            .as_deref()
            .unwrap_or_default()
            .contains("type `prod`"),
        "{:?}",
        dialog(&state).error
    );
}

#[test]
fn a_huge_paste_is_cut_at_the_note_limit_and_the_dialog_says_so() {
    let max = killswitch::text::NOTE_MAX_CHARS;
    let mut state = loaded(false, (110, 30), Some(("dev", "kill_switch_checkout")));
    press(&mut state, KeyCode::Char('f'));
    type_text(&mut state, "INC-44 ");
    let paste = "é".repeat(1024 * 1024);
    update(&mut state, Action::Paste(paste));
    let note = dialog(&state).note.value().to_string();
    assert_eq!(note.chars().count(), max);
    assert!(note.starts_with("INC-44 é"));
    let error = dialog(&state).error.clone().unwrap_or_default();
    assert!(
        error.contains("the paste was cut") && error.contains(&max.to_string()),
        "{error}"
    );
    // Typing at the limit adds nothing and says why; the cut note is accepted.
    type_text(&mut state, "x");
    assert_eq!(dialog(&state).note.value().chars().count(), max);
    press(&mut state, KeyCode::Enter);
    assert_eq!(dialog(&state).stage, DialogStage::Confirm);
}

#[test]
fn keys_that_came_with_the_note_do_not_answer_the_question() {
    let mut state = loaded(false, (110, 30), Some(("dev", "kill_switch_checkout")));
    press(&mut state, KeyCode::Char('f'));
    type_text(&mut state, "INC-45");
    press(&mut state, KeyCode::Enter);
    assert!(killswitch::tui::app::confirming(&state));
    let effects = update(&mut state, Action::TypedAhead);
    assert!(effects.is_empty());
    assert!(
        dialog(&state)
            .error
            .as_deref()
            .unwrap_or_default()
            .contains("press y"),
        "{:?}",
        dialog(&state).error
    );
    assert_eq!(dialog(&state).stage, DialogStage::Confirm);
}

#[test]
fn a_paste_into_the_filter_is_one_line() {
    let mut state = loaded(false, (110, 30), None);
    press(&mut state, KeyCode::Char('/'));
    update(&mut state, Action::Paste("checkout\n".into()));
    assert_eq!(state.filter.value(), "checkout ");
    assert!(!state.visible.is_empty());
    update(&mut state, Action::Paste("x".repeat(10_000)));
    assert_eq!(
        state.filter.value().chars().count(),
        killswitch::tui::app::FILTER_MAX_CHARS
    );
}

#[test]
fn a_read_only_start_reports_pending_flips_on_the_status_bar() {
    let mut state = loaded(true, (140, 30), None);
    update(
        &mut state,
        Action::Pending(vec![
            "PENDING: interrupted kill of kill_switch_checkout in prod (2026-11-24 03:00:00) has no outcome".into(),
        ]),
    );
    assert_eq!(state.pending_flips, 1);
    let screen = support::dashboard::render(&state);
    assert!(screen.contains("1 INTERRUPTED FLIP PENDING"), "{screen}");
}

fn message(state: &killswitch::tui::app::State) -> String {
    state
        .message
        .clone()
        .map(|(_, text)| text)
        .unwrap_or_default()
}

/// The sequence: dialog open, pane shrunk to 50x10, then `q`, a note, Enter, `prod`,
/// Enter. Nothing typed reaches the dialog; only quit is accepted.
#[test]
fn keys_are_not_acted_on_while_the_screen_cannot_be_drawn() {
    let mut state = loaded(false, (110, 30), None);
    press(&mut state, KeyCode::Char('f'));
    update(&mut state, Action::Resize(50, 10));
    assert!(!state.drawable());
    let mut effects = Vec::new();
    effects.extend(type_text(&mut state, "note"));
    effects.extend(press(&mut state, KeyCode::Enter));
    effects.extend(type_text(&mut state, "prod"));
    effects.extend(press(&mut state, KeyCode::Enter));
    effects.extend(update(&mut state, Action::Scroll(1)));
    assert!(effects.is_empty(), "{effects:?}");
    assert_eq!(dialog(&state).stage, DialogStage::Note);
    assert_eq!(
        dialog(&state).note.value(),
        "",
        "no note character typed blind"
    );
    // Back to a size that fits: the dialog is as it was.
    update(&mut state, Action::Resize(80, 24));
    assert!(state.drawable());
    assert_eq!(dialog(&state).stage, DialogStage::Note);
    // Small again: q quits (the screen says so), without applying anything.
    update(&mut state, Action::Resize(50, 10));
    let effects = press(&mut state, KeyCode::Char('q'));
    assert_eq!(effects, vec![Effect::Quit]);
}

#[test]
fn a_dialog_that_does_not_fit_takes_no_keys_either() {
    let mut state = loaded(false, (110, 30), Some(("prod", "kill_switch_checkout")));
    press(&mut state, KeyCode::Char('f'));
    if let Mode::Flip(dialog) = &mut state.mode {
        dialog.warning = Some("prod data is not current; ".repeat(20));
    }
    // 60x12 is enough for the dashboard, not for this dialog: it is not drawn cut, and takes
    // no keys.
    update(&mut state, Action::Resize(60, 12));
    assert!(!state.drawable());
    let screen = support::dashboard::render(&state);
    assert!(screen.contains("Terminal too small"), "{screen}");
    assert!(type_text(&mut state, "xy").is_empty());
    assert_eq!(dialog(&state).note.value(), "");
    update(&mut state, Action::Resize(110, 30));
    type_text(&mut state, "xy");
    assert_eq!(dialog(&state).note.value(), "xy");
}

#[test]
fn a_deep_link_with_a_typo_selects_nothing_and_suggests_the_flag() {
    let mut state = loaded(false, (110, 30), Some(("prod", "kill_switch_chekout")));
    assert_eq!(
        message(&state),
        "no flag `kill_switch_chekout`; did you mean `kill_switch_checkout`?"
    );
    assert!(state.selected_row().is_none(), "nothing is selected");
    let effects = press(&mut state, KeyCode::Char('f'));
    assert!(effects.is_empty());
    assert!(matches!(state.mode, Mode::Normal), "no dialog opens");
    assert!(
        message(&state).contains("no flag selected"),
        "{}",
        message(&state)
    );
    // Moving the cursor selects again, where it is shown.
    press(&mut state, KeyCode::Down);
    assert!(state.selected_row().is_some());
}

#[test]
fn a_deep_link_waits_for_its_failed_environment_then_selects_the_flag() {
    let mut state = state(
        false,
        (200, 30),
        Some(("prod", "checkout_stripe_payment_intents_v2024_11")),
    );
    for env in ["dev", "staging"] {
        update(
            &mut state,
            Action::EnvLoaded {
                env: env.into(),
                result: Ok(snapshot(env)),
                read_only_reason: None,
            },
        );
    }
    assert!(state.selected_row().is_none(), "pending: nothing selected");
    press(&mut state, KeyCode::Char('f'));
    assert!(matches!(state.mode, Mode::Normal));
    assert!(
        message(&state).starts_with("still loading"),
        "{}",
        message(&state)
    );
    update(
        &mut state,
        Action::EnvLoaded {
            env: "prod".into(),
            result: Err(support::dashboard::vendor_failure(
                "prod: read the Flagsmith flags: https://fs/api/v1/flags/ timed out after 15 s",
            )),
            read_only_reason: None,
        },
    );
    let text = message(&state);
    assert!(
        !text.contains("not found") && !text.contains("no flag"),
        "{text}"
    );
    assert_eq!(
        text,
        "prod: not loaded (read the Flagsmith flags: https://fs/api/v1/flags/ timed out after 15 s), retrying in 2 s; then `checkout_stripe_payment_intents_v2024_11` is selected"
    );
    assert!(state.focus.is_some(), "the link is still pending");
    let screen = support::dashboard::render(&state);
    assert!(
        screen.contains(
            "waiting for prod to load: the link selects `checkout_stripe_payment_intents_v2024_11`"
        ),
        "{screen}"
    );
    // The retry is due after 2 s, not before.
    assert!(
        update(
            &mut state,
            Action::Tick(now() + chrono::Duration::seconds(1))
        )
        .is_empty()
    );
    assert!(
        message(&state).contains("retrying in 1 s"),
        "{}",
        message(&state)
    );
    let effects = update(
        &mut state,
        Action::Tick(now() + chrono::Duration::seconds(2)),
    );
    assert_eq!(effects, vec![Effect::Load("prod".into())]);
    assert!(
        message(&state).contains("retrying now"),
        "{}",
        message(&state)
    );
    update(
        &mut state,
        Action::EnvLoaded {
            env: "prod".into(),
            result: Ok(snapshot("prod")),
            read_only_reason: None,
        },
    );
    assert_eq!(
        selected(&state),
        (
            "prod".into(),
            "checkout_stripe_payment_intents_v2024_11".into()
        )
    );
    assert!(
        state.message.is_none(),
        "the stale error line is gone: {:?}",
        state.message
    );
}

#[test]
fn failed_environments_retry_with_a_growing_pause() {
    use killswitch::tui::app::retry_delay;
    assert_eq!(retry_delay(1), Duration::from_secs(2));
    assert_eq!(retry_delay(2), Duration::from_secs(4));
    assert_eq!(retry_delay(3), Duration::from_secs(8));
    assert_eq!(retry_delay(60), Duration::from_secs(60));
    let mut state = state(false, (110, 30), None);
    let fail = |state: &mut killswitch::tui::app::State| {
        update(
            state,
            Action::EnvLoaded {
                env: "dev".into(),
                result: Err(support::dashboard::vendor_failure(
                    "dev: dev: cannot read /x/dev.flagd.json: No such file",
                )),
                read_only_reason: None,
            },
        )
    };
    fail(&mut state);
    assert!(
        message(&state).starts_with("dev: not loaded (cannot read"),
        "no double prefix: {}",
        message(&state)
    );
    let effects = update(
        &mut state,
        Action::Tick(now() + chrono::Duration::seconds(2)),
    );
    assert_eq!(effects, vec![Effect::Load("dev".into())]);
    // Second failure: the next try is 4 s later.
    state.now = now() + chrono::Duration::seconds(2);
    fail(&mut state);
    assert!(
        update(
            &mut state,
            Action::Tick(now() + chrono::Duration::seconds(5))
        )
        .is_empty()
    );
    assert_eq!(
        update(
            &mut state,
            Action::Tick(now() + chrono::Duration::seconds(6))
        ),
        vec![Effect::Load("dev".into())]
    );
}

#[test]
fn a_missing_flag_is_not_found_only_once_every_environment_loaded() {
    let mut state = state(false, (110, 30), Some(("prod", "kill_switch_nope")));
    update(
        &mut state,
        Action::EnvLoaded {
            env: "prod".into(),
            result: Ok(snapshot("prod")),
            read_only_reason: None,
        },
    );
    update(
        &mut state,
        Action::EnvLoaded {
            env: "dev".into(),
            result: Err(support::dashboard::vendor_failure("timed out")),
            read_only_reason: None,
        },
    );
    assert!(!message(&state).contains("no flag"), "{}", message(&state));
    for env in ["dev", "staging"] {
        update(
            &mut state,
            Action::EnvLoaded {
                env: env.into(),
                result: Ok(snapshot(env)),
                read_only_reason: None,
            },
        );
    }
    assert!(
        message(&state).starts_with("no flag `kill_switch_nope`"),
        "{}",
        message(&state)
    );
}

#[test]
fn esc_keeps_the_note_as_a_draft_for_the_same_cell() {
    let mut state = loaded(false, (110, 30), None);
    press(&mut state, KeyCode::Char('f'));
    type_text(&mut state, "INC-4711 p99");
    press(&mut state, KeyCode::Esc);
    assert!(matches!(state.mode, Mode::Normal));
    assert!(
        message(&state).starts_with("cancelled: nothing changed"),
        "{}",
        message(&state)
    );
    // Another cell gets an empty note.
    press(&mut state, KeyCode::Left);
    press(&mut state, KeyCode::Char('f'));
    assert_eq!(dialog(&state).note.value(), "");
    press(&mut state, KeyCode::Esc);
    assert_eq!(message(&state), "cancelled: nothing changed");
    // The same cell offers the draft back.
    press(&mut state, KeyCode::Right);
    press(&mut state, KeyCode::Char('f'));
    assert_eq!(dialog(&state).note.value(), "INC-4711 p99");
    assert!(dialog(&state).from_draft);
    let screen = support::dashboard::render(&state);
    assert!(screen.contains("kept as a draft"), "{screen}");
}

#[test]
fn the_confirmation_steps_back_to_the_note_and_help_returns_to_the_dialog() {
    let mut state = loaded(false, (110, 30), None);
    press(&mut state, KeyCode::Char('f'));
    type_text(&mut state, "INC-1 wrong ticket");
    press(&mut state, KeyCode::Enter);
    assert_eq!(dialog(&state).stage, DialogStage::Confirm);
    let screen = support::dashboard::render(&state);
    let footer = screen
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_default();
    assert!(
        footer.starts_with("Enter: apply"),
        "the footer matches the step: {footer}"
    );
    // ? opens help (the confirmation field never holds a ?), any key comes back.
    press(&mut state, KeyCode::Char('?'));
    assert!(matches!(state.mode, Mode::Help));
    press(&mut state, KeyCode::Char('x'));
    assert_eq!(dialog(&state).stage, DialogStage::Confirm);
    // Shift-Tab steps back; the note is kept and can be fixed.
    press(&mut state, KeyCode::BackTab);
    assert_eq!(dialog(&state).stage, DialogStage::Note);
    assert_eq!(dialog(&state).note.value(), "INC-1 wrong ticket");
    let screen = support::dashboard::render(&state);
    let footer = screen
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_default();
    assert!(footer.starts_with("Enter: next"), "{footer}");
    // In the note a ? is text; F1 is help.
    type_text(&mut state, "?");
    assert!(dialog(&state).note.value().ends_with('?'));
    press(&mut state, KeyCode::F(1));
    assert!(matches!(state.mode, Mode::Help));
    press(&mut state, KeyCode::Esc);
    assert_eq!(dialog(&state).stage, DialogStage::Note);
}

const CANARY: &str = "checkout_stripe_payment_intents_v2024_11";

fn rollout_target(
    state: &killswitch::tui::app::State,
) -> Option<killswitch::rollout::RolloutTarget> {
    dialog(state).request.change.rollout().cloned()
}

#[test]
fn rollout_steps_the_prod_canary_with_the_configured_steps_note_and_typed_name() {
    use killswitch::flip::Change;
    use killswitch::rollout::RolloutTarget;
    let mut state = loaded(false, (110, 30), Some(("prod", CANARY)));
    state.rollout_steps.steps = vec![0.0, 5.0, 25.0, 100.0];
    assert!(press(&mut state, KeyCode::Char('p')).is_empty());
    assert_eq!(dialog(&state).stage, DialogStage::Target);
    // 10% now: the next configured step is offered first, the others one key away.
    assert_eq!(
        rollout_target(&state),
        Some(RolloutTarget::Percent { percent: 25.0 })
    );
    press(&mut state, KeyCode::Char('+'));
    assert_eq!(
        rollout_target(&state),
        Some(RolloutTarget::Percent { percent: 100.0 })
    );
    press(&mut state, KeyCode::Char('+'));
    assert_eq!(
        rollout_target(&state),
        Some(RolloutTarget::Percent { percent: 100.0 })
    );
    press(&mut state, KeyCode::Down);
    press(&mut state, KeyCode::Down);
    assert_eq!(
        rollout_target(&state),
        Some(RolloutTarget::Percent { percent: 5.0 })
    );
    // Typed by hand: 12.5 is no step but a percentage.
    for _ in 0..3 {
        press(&mut state, KeyCode::Backspace);
    }
    type_text(&mut state, "12.5");
    assert_eq!(
        rollout_target(&state),
        Some(RolloutTarget::Percent { percent: 12.5 })
    );
    assert!(
        dialog(&state).sentence.ends_with("ON 10% -> ON 12.5%"),
        "{}",
        dialog(&state).sentence
    );
    // What the flag already has is nothing to do: Enter stays.
    for _ in 0..4 {
        press(&mut state, KeyCode::Backspace);
    }
    type_text(&mut state, "10");
    assert!(press(&mut state, KeyCode::Enter).is_empty());
    assert_eq!(dialog(&state).stage, DialogStage::Target);
    assert!(
        dialog(&state)
            .error
            .as_deref()
            .unwrap_or_default()
            .contains("already gets 10%")
    );
    press(&mut state, KeyCode::Up);
    assert_eq!(
        rollout_target(&state),
        Some(RolloutTarget::Percent { percent: 25.0 })
    );
    // Enter asks the vendor which environments the write reaches; the note waits for it.
    let effects = press(&mut state, KeyCode::Enter);
    assert!(
        matches!(&effects[..], [Effect::RolloutShared { env, flag, target: RolloutTarget::Percent { percent }, .. }]
            if env == "prod" && flag == CANARY && *percent == 25.0),
        "{effects:?}"
    );
    type_text(&mut state, "INC-4711 canary healthy, next step");
    assert!(press(&mut state, KeyCode::Enter).is_empty());
    assert_eq!(
        dialog(&state).stage,
        DialogStage::Note,
        "not before the vendor answered"
    );
    assert!(
        dialog(&state)
            .error
            .as_deref()
            .unwrap_or_default()
            .starts_with("still asking")
    );
    let answer = shared_answer(&state, Ok(Vec::new()));
    update(&mut state, answer);
    assert_eq!(dialog(&state).error, None);
    press(&mut state, KeyCode::Enter);
    assert_eq!(dialog(&state).stage, DialogStage::Confirm);
    assert!(type_text(&mut state, "prod").is_empty());
    let effects = press(&mut state, KeyCode::Enter);
    let [Effect::Flip(request)] = &effects[..] else {
        panic!("one flip: {effects:?}");
    };
    assert_eq!(
        request.change,
        Change::Rollout {
            target: RolloutTarget::Percent { percent: 25.0 }
        }
    );
    assert_eq!(request.note, "INC-4711 canary healthy, next step");
    assert_eq!(request.env, "prod");
    assert_eq!(dialog(&state).stage, DialogStage::Applying);
}

#[test]
fn a_shared_segment_needs_every_protected_environment_it_reaches_typed() {
    let mut state = loaded(false, (110, 30), Some(("staging", CANARY)));
    press(&mut state, KeyCode::Char('p'));
    press(&mut state, KeyCode::Enter);
    // dev is known and unprotected; prod is protected; `eu-prod` is not in this config,
    // so it cannot be shown to be unprotected.
    let answer = shared_answer(
        &state,
        Ok(vec!["dev".into(), "prod".into(), "eu-prod".into()]),
    );
    update(&mut state, answer);
    type_text(&mut state, "INC-4711 open the canary");
    press(&mut state, KeyCode::Enter);
    assert!(dialog(&state).protected, "staging alone would be y");
    assert_eq!(dialog(&state).expected, "prod eu-prod");
    type_text(&mut state, "prod");
    assert!(
        press(&mut state, KeyCode::Enter).is_empty(),
        "one name is not enough"
    );
    type_text(&mut state, " eu-prod");
    let effects = press(&mut state, KeyCode::Enter);
    assert!(matches!(&effects[..], [Effect::Flip(_)]), "{effects:?}");

    // A vendor that cannot say: nothing can be confirmed.
    let mut state = loaded(false, (110, 30), Some(("staging", CANARY)));
    press(&mut state, KeyCode::Char('p'));
    press(&mut state, KeyCode::Enter);
    let answer = shared_answer(&state, Err("flagsmith answered 502".into()));
    update(&mut state, answer);
    type_text(&mut state, "INC-4711 open the canary");
    assert!(press(&mut state, KeyCode::Enter).is_empty());
    assert_eq!(dialog(&state).stage, DialogStage::Note);
    assert!(
        dialog(&state)
            .error
            .as_deref()
            .unwrap_or_default()
            .contains("flagsmith answered 502")
    );
    // Back to the target (Shift-Tab) asks again on Enter.
    press(&mut state, KeyCode::BackTab);
    assert_eq!(dialog(&state).stage, DialogStage::Target);
    let stale = shared_answer(&state, Ok(Vec::new()));
    // 100% asked before; 10% now (50% is what staging has).
    press(&mut state, KeyCode::Down);
    press(&mut state, KeyCode::Down);
    let effects = press(&mut state, KeyCode::Enter);
    // The answer about the target before arrives late: not this question's.
    update(&mut state, stale);
    assert!(
        matches!(
            &dialog(&state).rollout.as_ref().map(|p| p.shared.clone()),
            Some(killswitch::tui::rollout::Shared::Checking)
        ),
        "a late answer about another target is not taken"
    );
    assert!(
        matches!(&effects[..], [Effect::RolloutShared { .. }]),
        "{effects:?}"
    );
}

#[test]
fn the_vendor_checks_the_target_before_the_note_is_asked_for() {
    use killswitch::rollout::RolloutTarget;
    use killswitch::tui::rollout::Answer;
    // A target the flag cannot take (Unleash reads whole percentages only): back to the target
    // step with the vendor's words.
    let mut state = loaded(false, (110, 30), Some(("prod", CANARY)));
    press(&mut state, KeyCode::Char('p'));
    for _ in 0..2 {
        press(&mut state, KeyCode::Backspace);
    }
    type_text(&mut state, "12.5");
    press(&mut state, KeyCode::Enter);
    assert_eq!(dialog(&state).stage, DialogStage::Note);
    update(
        &mut state,
        Action::RolloutShared {
            env: "prod".into(),
            flag: CANARY.into(),
            target: RolloutTarget::Percent { percent: 12.5 },
            answer: Answer::Refused(
                "12.5 is not a whole percentage, and this vendor's SDKs read only whole ones: give 12 or 13"
                    .into(),
            ),
        },
    );
    assert_eq!(dialog(&state).stage, DialogStage::Target);
    assert!(
        dialog(&state)
            .error
            .as_deref()
            .unwrap_or_default()
            .contains("give 12 or 13"),
        "{:?}",
        dialog(&state).error
    );
    // A variant chosen by its name is kept as the vendor's value for it: what states show.
    let mut state = loaded(
        false,
        (110, 30),
        Some(("prod", "recommendations_ab_test_model_v3")),
    );
    press(&mut state, KeyCode::Char('p'));
    press(&mut state, KeyCode::Down);
    press(&mut state, KeyCode::Enter);
    let asked = rollout_target(&state).expect("a target");
    update(
        &mut state,
        Action::RolloutShared {
            env: "prod".into(),
            flag: "recommendations_ab_test_model_v3".into(),
            target: asked,
            answer: Answer::Shared {
                target: RolloutTarget::Variant {
                    variant: "model_v3a".into(),
                },
                with: Vec::new(),
            },
        },
    );
    assert_eq!(
        rollout_target(&state),
        Some(RolloutTarget::Variant {
            variant: "model_v3a".into()
        })
    );
    assert!(
        dialog(&state).sentence.ends_with("-> model_v3a"),
        "{}",
        dialog(&state).sentence
    );
}

#[test]
fn rollout_refuses_read_only_kill_switches_and_rules_it_cannot_read() {
    let mut state = loaded(true, (110, 30), Some(("prod", CANARY)));
    press(&mut state, KeyCode::Char('p'));
    assert!(matches!(state.mode, Mode::Normal));
    assert!(message(&state).contains("READ-ONLY"), "{}", message(&state));

    let mut state = loaded(false, (110, 30), Some(("prod", "kill_switch_checkout")));
    press(&mut state, KeyCode::Char('p'));
    assert!(matches!(state.mode, Mode::Normal));
    assert!(
        message(&state)
            .contains("kill_switch_checkout is a kill switch: f kills or restores it whole"),
        "{}",
        message(&state)
    );

    let mut state = loaded(
        false,
        (110, 30),
        Some(("prod", "catalog_per_tenant_pagination_size")),
    );
    press(&mut state, KeyCode::Char('p'));
    assert!(matches!(state.mode, Mode::Normal));
    assert!(
        message(&state).contains("cannot read its rollout"),
        "{}",
        message(&state)
    );

    let mut state = loaded(false, (110, 30), Some(("prod", CANARY)));
    update(
        &mut state,
        Action::EnvLoaded {
            env: "prod".into(),
            result: Ok(snapshot("prod")),
            read_only_reason: Some("the Vault token has no write policy".into()),
        },
    );
    press(&mut state, KeyCode::Char('p'));
    assert!(matches!(state.mode, Mode::Normal));
    assert!(
        message(&state).contains("prod is read-only"),
        "{}",
        message(&state)
    );
}

#[test]
fn rollout_finishes_like_a_flip_and_reloads_the_environment() {
    let mut state = loaded(false, (110, 30), Some(("dev", CANARY)));
    // dev serves everyone: the canary goes back down a step.
    press(&mut state, KeyCode::Char('p'));
    assert_eq!(
        rollout_target(&state),
        Some(killswitch::rollout::RolloutTarget::Percent { percent: 50.0 })
    );
    press(&mut state, KeyCode::Enter);
    let answer = shared_answer(&state, Ok(Vec::new()));
    update(&mut state, answer);
    type_text(&mut state, "INC-4711 step back");
    press(&mut state, KeyCode::Enter);
    let effects = press(&mut state, KeyCode::Char('y'));
    let [Effect::Flip(request)] = &effects[..] else {
        panic!("{effects:?}");
    };
    let effects = update(
        &mut state,
        Action::FlipFinished {
            request: request.clone(),
            result: Ok(FlipOutcome::Applied {
                audit_id: "a1".into(),
                took: Duration::from_millis(3),
                verification: Verification::Confirmed {
                    after: Duration::from_millis(40),
                },
                audit_warning: None,
                served_via: "the flag file flagd serves",
                from: "ON".into(),
                to: "ON 50%".into(),
                lost_answer: None,
            }),
            since_launch: Duration::from_secs(4),
        },
    );
    assert!(effects.contains(&Effect::Load("dev".into())), "{effects:?}");
    let DialogStage::Done { ok, lines } = &dialog(&state).stage else {
        panic!("done");
    };
    assert!(ok);
    assert!(
        lines[0].starts_with("ROLLOUT applied: checkout_stripe_payment_intents_v2024_11 in dev"),
        "{lines:?}"
    );
    assert!(
        lines[1].starts_with("Confirmed by what services see"),
        "{lines:?}"
    );
}

#[test]
fn every_outcome_of_a_rollout_is_said_as_a_flips_is() {
    // One rollout request, four ways it can end: the dialog's first line for each.
    let outcomes: Vec<(Result<FlipOutcome, killswitch::flip::FlipError>, &str, bool)> = vec![
        (
            Ok(FlipOutcome::Applied {
                audit_id: "a1".into(),
                took: Duration::from_millis(3),
                verification: Verification::NotConfirmed {
                    waited: Duration::from_secs(10),
                    reason: "services still get 10%".into(),
                },
                audit_warning: None,
                served_via: "the flag file flagd serves",
                from: "ON 10%".into(),
                to: "ON 50%".into(),
                lost_answer: None,
            }),
            "ROLLOUT applied: checkout_stripe_payment_intents_v2024_11 in prod",
            false,
        ),
        (
            Ok(FlipOutcome::PendingApproval {
                audit_id: "a2".into(),
                reference: "https://app.launchdarkly.com/approvals/1".into(),
                audit_warning: None,
            }),
            "ROLLOUT NOT applied yet: checkout_stripe_payment_intents_v2024_11 in prod awaits approval",
            false,
        ),
        (
            Err(killswitch::flip::FlipError::OutcomeUnknown {
                env: "prod".into(),
                flag: CANARY.into(),
                lost: "timed out".into(),
                reread: "connection reset".into(),
                audit_id: "a3".into(),
            }),
            "ROLLOUT: OUTCOME UNKNOWN",
            false,
        ),
    ];
    for (result, first, want_ok) in outcomes {
        let mut state = loaded(false, (110, 30), Some(("prod", CANARY)));
        press(&mut state, KeyCode::Char('p'));
        press(&mut state, KeyCode::Enter);
        let answer = shared_answer(&state, Ok(Vec::new()));
        update(&mut state, answer);
        type_text(&mut state, "INC-4711 next step");
        press(&mut state, KeyCode::Enter);
        type_text(&mut state, "prod");
        let effects = press(&mut state, KeyCode::Enter);
        let [Effect::Flip(request)] = effects.as_slice() else {
            panic!("flip effect: {effects:?}")
        };
        update(
            &mut state,
            Action::flip_finished((**request).clone(), result, Duration::from_millis(900)),
        );
        let DialogStage::Done { ok, lines } = &dialog(&state).stage else {
            panic!("done")
        };
        assert_eq!(*ok, want_ok, "{lines:?}");
        assert!(lines[0].starts_with(first), "{lines:?}");
        assert!(!lines[0].contains("FAILED"), "{lines:?}");
    }
}

fn rollout_record(
    env: &str,
    from: &str,
    to: &str,
    previous: Option<f64>,
) -> Box<killswitch::audit::AuditRecord> {
    let mut record = serde_json::from_value::<killswitch::audit::AuditRecord>(serde_json::json!({
        "v": 1, "id": "20261124T031000.000Z-1-1", "phase": "outcome",
        "at": (now() - chrono::Duration::minutes(5)).to_rfc3339(),
        "operator": "bob@bastion", "env": env, "provider": "flagd", "flag": CANARY,
        "action": "rollout", "from": from, "to": to, "enabled": true,
        "rollout": {"type": "percent", "percent": 10.0},
        "note": "INC-4711 canary to 10%", "result": "ok"
    }))
    .expect("an audit record");
    record.previous =
        previous.map(|percent| killswitch::rollout::RolloutTarget::Percent { percent });
    Box::new(record)
}

#[test]
fn undo_reverts_the_last_recorded_change_with_the_guard() {
    use killswitch::flip::Change;
    use killswitch::rollout::RolloutTarget;
    // The prod canary is at 10%: killswitch's last change took it there from 50%.
    let mut state = loaded(false, (110, 30), Some(("prod", CANARY)));
    let effects = press(&mut state, KeyCode::Char('u'));
    assert_eq!(
        effects,
        vec![Effect::FindLastChange {
            env: "prod".into(),
            flag: CANARY.into()
        }]
    );
    let effects = update(
        &mut state,
        Action::LastChangeFound {
            env: "prod".into(),
            flag: CANARY.into(),
            result: Ok(Some(rollout_record("prod", "ON 50%", "ON 10%", Some(50.0)))),
        },
    );
    assert!(
        matches!(&effects[..], [Effect::RolloutShared { .. }]),
        "{effects:?}"
    );
    let open = dialog(&state);
    assert_eq!(open.stage, DialogStage::Note);
    assert_eq!(
        open.request.change,
        Change::Rollout {
            target: RolloutTarget::Percent { percent: 50.0 }
        }
    );
    assert_eq!(
        open.sentence,
        format!("ROLLOUT {CANARY} in prod: ON 10% -> ON 50%")
    );
    assert_eq!(
        open.undoes.as_ref().map(|undone| undone.id.as_str()),
        Some("20261124T031000.000Z-1-1")
    );
    let screen = support::dashboard::render(&state);
    assert!(
        screen.contains("UNDO of rollout by bob@bastion"),
        "{screen}"
    );
    // The target is the recorded one: no way back to choose another.
    press(&mut state, KeyCode::BackTab);
    assert_eq!(dialog(&state).stage, DialogStage::Note);

    // Moved since: refused, nothing opens.
    let mut state = loaded(false, (110, 30), Some(("prod", CANARY)));
    press(&mut state, KeyCode::Char('u'));
    update(
        &mut state,
        Action::LastChangeFound {
            env: "prod".into(),
            flag: CANARY.into(),
            result: Ok(Some(rollout_record("prod", "ON 10%", "ON 50%", Some(10.0)))),
        },
    );
    assert!(matches!(state.mode, Mode::Normal));
    assert!(
        message(&state).contains("undo refused"),
        "{}",
        message(&state)
    );
    assert!(
        message(&state).contains("it is ON 10% now"),
        "{}",
        message(&state)
    );

    // Nothing recorded: nothing to undo.
    let mut state = loaded(false, (110, 30), Some(("prod", CANARY)));
    press(&mut state, KeyCode::Char('u'));
    update(
        &mut state,
        Action::LastChangeFound {
            env: "prod".into(),
            flag: CANARY.into(),
            result: Ok(None),
        },
    );
    assert!(matches!(state.mode, Mode::Normal));
    assert!(
        message(&state).contains("nothing to undo"),
        "{}",
        message(&state)
    );

    // A rollout whose state before was no single target cannot be undone from here.
    let mut state = loaded(false, (110, 30), Some(("prod", CANARY)));
    press(&mut state, KeyCode::Char('u'));
    update(
        &mut state,
        Action::LastChangeFound {
            env: "prod".into(),
            flag: CANARY.into(),
            result: Ok(Some(rollout_record("prod", "ON 20/80", "ON 10%", None))),
        },
    );
    assert!(matches!(state.mode, Mode::Normal));
    assert!(
        message(&state).contains("is not one percentage or variant"),
        "{}",
        message(&state)
    );
}

#[test]
fn undo_of_a_kill_opens_the_restore_in_the_flip_dialog() {
    let mut state = loaded(false, (110, 30), Some(("dev", "kill_switch_checkout")));
    // Kill it first, as the log says killswitch did.
    let mut killed = snapshot("dev");
    for flag in &mut killed.flags {
        if flag.meta.key == "kill_switch_checkout" {
            flag.state.enabled = false;
            flag.state.value = Some(false.into());
        }
    }
    update(
        &mut state,
        Action::EnvLoaded {
            env: "dev".into(),
            result: Ok(killed),
            read_only_reason: None,
        },
    );
    press(&mut state, KeyCode::Char('u'));
    let effects = update(
        &mut state,
        Action::LastChangeFound {
            env: "dev".into(),
            flag: "kill_switch_checkout".into(),
            result: Ok(Some(Box::new(record(
                "dev",
                "kill_switch_checkout",
                3,
                "INC-9 kill",
                "k1",
            )))),
        },
    );
    assert!(effects.is_empty(), "{effects:?}");
    let open = dialog(&state);
    assert_eq!(
        open.request.change,
        killswitch::flip::Change::Switch { enabled: true }
    );
    assert_eq!(
        open.sentence,
        "RESTORE checkout in dev: kill_switch_checkout KILLED -> SERVING"
    );
    assert!(open.rollout.is_none());
    type_text(&mut state, "INC-9 resolved");
    press(&mut state, KeyCode::Enter);
    let effects = press(&mut state, KeyCode::Char('y'));
    let [Effect::Flip(request)] = &effects[..] else {
        panic!("{effects:?}");
    };
    assert_eq!(
        request.change,
        killswitch::flip::Change::Switch { enabled: true }
    );
    // Audited as `killswitch undo` audits it: which change it reverts follows the note.
    assert_eq!(request.note, "INC-9 resolved (undo of kill k1)");
    // Read-only: no undo.
    let mut state = loaded(true, (110, 30), Some(("dev", "kill_switch_checkout")));
    assert!(press(&mut state, KeyCode::Char('u')).is_empty());
    assert!(message(&state).contains("READ-ONLY"));
}

#[test]
fn at_80x24_the_dialog_keys_are_never_cut() {
    let mut state = loaded(false, (80, 24), None);
    press(&mut state, KeyCode::Char('f'));
    type_text(&mut state, &"long note ".repeat(60));
    let screen = support::dashboard::render(&state);
    assert!(
        screen.contains("Enter: next · F1: help · Esc: cancel"),
        "{screen}"
    );
    press(&mut state, KeyCode::Enter);
    type_text(&mut state, "pro");
    let screen = support::dashboard::render(&state);
    assert!(
        screen.contains("Enter: apply · Shift-Tab: back · ?: help · Esc: cancel"),
        "{screen}"
    );
    assert!(screen.contains("Type `prod` to confirm: pro"), "{screen}");
}

#[test]
fn the_filter_matches_owner_tags_and_kind() {
    let mut state = loaded(false, (110, 30), None);
    press(&mut state, KeyCode::Char('/'));
    type_text(&mut state, "team-recommendations");
    let keys: Vec<String> = state
        .visible
        .iter()
        .map(|i| state.rows[*i].meta.key.clone())
        .collect();
    assert_eq!(
        keys,
        vec![
            "kill_switch_recommendations",
            "recommendations_ab_test_model_v3"
        ]
    );
    press(&mut state, KeyCode::Esc);
    press(&mut state, KeyCode::Char('/'));
    type_text(&mut state, "experiment");
    let keys: Vec<String> = state
        .visible
        .iter()
        .map(|i| state.rows[*i].meta.key.clone())
        .collect();
    assert!(
        keys.contains(&"recommendations_ab_test_model_v3".to_string()),
        "{keys:?}"
    );
    assert!(
        !keys.contains(&"kill_switch_checkout".to_string()),
        "{keys:?}"
    );
}

#[test]
fn wide_screens_show_an_owner_column() {
    let state = loaded(false, (160, 30), None);
    let screen = support::dashboard::render(&state);
    let header = screen
        .lines()
        .find(|l| l.contains("FLAG"))
        .unwrap_or_default();
    assert!(header.contains("OWNER"), "{header}");
    assert!(screen.contains("team-checkout"), "{screen}");
    let narrow = support::dashboard::render(&loaded(false, (159, 30), None));
    let header = narrow
        .lines()
        .find(|l| l.contains("FLAG"))
        .unwrap_or_default();
    assert!(!header.contains("OWNER"), "{header}");
}

fn record(
    env: &str,
    flag: &str,
    minutes_ago: i64,
    note: &str,
    id: &str,
) -> killswitch::audit::AuditRecord {
    serde_json::from_value(serde_json::json!({
        "id": id, "phase": "outcome",
        "at": (now() - chrono::Duration::minutes(minutes_ago)).to_rfc3339(),
        "operator": "alice@bastion", "env": env, "provider": "flagd", "flag": flag,
        "action": "kill", "from": "SERVING", "to": "KILLED", "enabled": false,
        "note": note, "result": "ok"
    }))
    .expect("an audit record")
}

#[test]
fn details_say_who_changed_the_flag_last_in_each_environment() {
    let mut state = loaded(false, (120, 34), None);
    update(
        &mut state,
        Action::LastChanges(vec![
            record("prod", "kill_switch_checkout", 180, "INC-1 old", "a-old"),
            record(
                "prod",
                "kill_switch_checkout",
                120,
                "INC-4711 checkout p99",
                "a-123",
            ),
        ]),
    );
    let screen = support::dashboard::render(&state);
    let prod = screen
        .lines()
        .find(|l| l.contains("│prod: "))
        .unwrap_or_default();
    assert!(
        prod.contains("last: KILLED by alice@bastion 2 h ago: INC-4711 checkout p99 (audit a-123)"),
        "{screen}"
    );
    let dev = screen
        .lines()
        .find(|l| l.contains("│dev: "))
        .unwrap_or_default();
    assert!(!dev.contains("last:"), "{dev}");
}

#[test]
fn the_audit_view_pages_stops_at_the_end_and_closes_only_on_esc() {
    let mut state = loaded(false, (100, 20), None);
    let effects = press(&mut state, KeyCode::Char('a'));
    assert!(matches!(
        effects.as_slice(),
        [Effect::LoadAudit { envs, flag: Some(flag) }] if envs.len() == 3 && flag == "kill_switch_checkout"
    ));
    let records: Vec<_> = (0..40)
        .map(|i| {
            record(
                ["dev", "staging", "prod"][i % 3],
                "kill_switch_checkout",
                i as i64,
                &format!("note {i}"),
                &format!("a{i}"),
            )
        })
        .collect();
    update(
        &mut state,
        Action::AuditLoaded {
            records: Ok(records),
            history: vec![(
                "prod".into(),
                Ok(vec![killswitch::provider::HistoryEntry {
                    at: now(),
                    who: None,
                    what: "version published".into(),
                    comment: None,
                }]),
            )],
        },
    );
    let scroll = |state: &killswitch::tui::app::State| match &state.mode {
        Mode::Audit(view) => view.scroll,
        other => panic!("audit view open, not {other:?}"),
    };
    let screen = support::dashboard::render(&state);
    assert!(
        screen.contains("Audit: kill_switch_checkout · every environment"),
        "{screen}"
    );
    assert!(screen.contains("── dev ──"), "{screen}");
    press(&mut state, KeyCode::PageDown);
    assert!(scroll(&state) > 1, "PgDn pages, and does not close");
    press(&mut state, KeyCode::Char('G'));
    let end = scroll(&state);
    press(&mut state, KeyCode::PageDown);
    press(&mut state, KeyCode::Down);
    assert_eq!(scroll(&state), end, "scrolling stops at the end");
    let screen = support::dashboard::render(&state);
    assert!(
        screen.contains("by (the vendor did not record who): version published"),
        "{screen}"
    );
    press(&mut state, KeyCode::Char('g'));
    assert_eq!(scroll(&state), 0);
    press(&mut state, KeyCode::End);
    assert_eq!(scroll(&state), end);
    press(&mut state, KeyCode::Home);
    assert_eq!(scroll(&state), 0);
    press(&mut state, KeyCode::Char('x'));
    assert!(
        matches!(state.mode, Mode::Audit(_)),
        "any other key does not close"
    );
    press(&mut state, KeyCode::Esc);
    assert!(matches!(state.mode, Mode::Normal));
}

#[test]
fn the_vendor_history_is_read_once_the_cursor_rests_and_shown_in_details() {
    let mut state = loaded(false, (140, 34), None);
    let tick = |state: &mut killswitch::tui::app::State, ms: i64| {
        update(
            state,
            Action::Tick(now() + chrono::Duration::milliseconds(ms)),
        )
    };
    let history = |effects: &[Effect]| {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::LoadVendorHistory { flag, envs } => Some((flag.clone(), envs.len())),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    // Moving through rows asks nothing; resting on one asks once.
    assert!(history(&tick(&mut state, 200)).is_empty());
    press(&mut state, KeyCode::Down);
    assert!(history(&tick(&mut state, 400)).is_empty());
    assert!(history(&tick(&mut state, 800)).is_empty());
    assert_eq!(
        history(&tick(&mut state, 1300)),
        [("kill_switch_recommendations".to_string(), 3)]
    );
    assert!(history(&tick(&mut state, 2400)).is_empty(), "asked once");
    update(
        &mut state,
        Action::VendorHistory {
            flag: "kill_switch_recommendations".into(),
            history: vec![
                (
                    "prod".into(),
                    Ok(vec![
                        killswitch::provider::HistoryEntry {
                            at: now() - chrono::Duration::hours(5),
                            who: Some("bob@example.com".into()),
                            what: "enabled".into(),
                            comment: None,
                        },
                        killswitch::provider::HistoryEntry {
                            at: now() - chrono::Duration::minutes(3),
                            who: Some("carol@example.com".into()),
                            what: "disabled".into(),
                            comment: Some("INC-88 recs timeouts".into()),
                        },
                    ]),
                ),
                ("dev".into(), Err("flagd keeps no change history".into())),
            ],
        },
    );
    let screen = support::dashboard::render(&state);
    let prod = screen
        .lines()
        .find(|l| l.contains("│prod: "))
        .unwrap_or_default();
    assert!(
        prod.contains(
            "last (vendor history): disabled by carol@example.com 3 min ago: INC-88 recs timeouts"
        ),
        "{screen}"
    );
    let dev = screen
        .lines()
        .find(|l| l.contains("│dev: "))
        .unwrap_or_default();
    assert!(!dev.contains("last"), "{dev}");
    // A newer killswitch record wins over an older vendor entry.
    update(
        &mut state,
        Action::LastChanges(vec![record(
            "prod",
            "kill_switch_recommendations",
            1,
            "INC-89",
            "a-9",
        )]),
    );
    let screen = support::dashboard::render(&state);
    let prod = screen
        .lines()
        .find(|l| l.contains("│prod: "))
        .unwrap_or_default();
    assert!(
        prod.contains("last: KILLED by alice@bastion 1 min ago: INC-89 (audit a-9)"),
        "{screen}"
    );
}

/// A flag that moved since it was shown: nothing was written; the dashboard shows it as the
/// guard read it (before the reload arrives), the note is kept for the next `f`, which now
/// offers the opposite of the new state.
#[test]
fn a_flag_that_changed_since_shown_is_shown_as_it_is_now_and_keeps_the_note() {
    let mut state = loaded(false, (110, 30), Some(("prod", "kill_switch_checkout")));
    press(&mut state, KeyCode::Char('f'));
    type_text(&mut state, "INC-77 checkout");
    press(&mut state, KeyCode::Enter);
    type_text(&mut state, "prod");
    let effects = press(&mut state, KeyCode::Enter);
    let [Effect::Flip(request)] = effects.as_slice() else {
        panic!("flip effect")
    };
    let row = state.selected_row().cloned().expect("row");
    let col = state.col;
    assert_eq!(state.cell_text(&row, col).as_deref(), Some("SERVING"));
    // Someone else killed it meanwhile: the guard read it killed.
    let mut current = snapshot("prod")
        .flag("kill_switch_checkout")
        .cloned()
        .expect("sample flag");
    current.state.enabled = false;
    current.state.value = Some(false.into());
    let error = killswitch::flip::FlipError::Changed {
        env: "prod".into(),
        flag: "kill_switch_checkout".into(),
        now: "KILLED".into(),
        current: Box::new(current),
    };
    let effects = update(
        &mut state,
        Action::flip_finished((**request).clone(), Err(error), Duration::from_millis(900)),
    );
    assert_eq!(
        effects,
        vec![Effect::Load("prod".into()), Effect::LoadLastChanges]
    );
    let DialogStage::Done { ok, lines } = &dialog(&state).stage else {
        panic!("done")
    };
    assert!(!*ok);
    assert!(
        lines[0].starts_with(
            "KILL FAILED: kill_switch_checkout in prod changed since it was shown: it is now KILLED"
        ),
        "{lines:?}"
    );
    assert!(
        lines.iter().any(|l| l.contains("note is kept")),
        "{lines:?}"
    );
    // The cell says what the flag is now, before the reload.
    let row = state.selected_row().cloned().expect("row");
    assert_eq!(state.cell_text(&row, col).as_deref(), Some("KILLED"));
    press(&mut state, KeyCode::Enter);
    assert!(matches!(state.mode, Mode::Normal));
    // The reload arrives with the same state; `f` now offers a restore, with the note.
    update(
        &mut state,
        Action::EnvLoaded {
            env: "prod".into(),
            result: Ok({
                let mut prod = snapshot("prod");
                if let Some(flag) = prod
                    .flags
                    .iter_mut()
                    .find(|flag| flag.meta.key == "kill_switch_checkout")
                {
                    flag.state.enabled = false;
                    flag.state.value = Some(false.into());
                }
                prod
            }),
            read_only_reason: None,
        },
    );
    press(&mut state, KeyCode::Char('f'));
    assert_eq!(dialog(&state).note.value(), "INC-77 checkout");
    assert!(dialog(&state).from_draft);
    assert!(
        dialog(&state)
            .sentence
            .starts_with("RESTORE checkout in prod"),
        "{}",
        dialog(&state).sentence
    );
}
