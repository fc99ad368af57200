//! Every screen as a snapshot: ratatui's TestBackend renders the pure view of a state built
//! from the sample flags with a fixed clock.

mod support;

use crossterm::event::KeyCode;
use killswitch::tui::action::Action;
use killswitch::tui::app::update;
use support::dashboard::{loaded, press, render, shared_answer, state, type_text};

#[test]
fn dashboard_shows_every_flag_and_environment() {
    let state = loaded(false, (110, 30), None);
    let screen = render(&state);
    insta::assert_snapshot!("dashboard", screen);
}

/// The README's picture, `docs/dashboard.svg`, is this test's screen: it fails when the
/// committed picture differs from what the code draws now. `UPDATE_DOCS=1` writes it.
#[test]
fn the_readme_picture_is_what_the_dashboard_draws() {
    let state = loaded(false, (110, 30), None);
    let svg = support::svg::render(
        &support::dashboard::render_buffer(&state),
        "killswitch: the dashboard on its local flag files",
    );
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/dashboard.svg");
    if std::env::var("UPDATE_DOCS").as_deref() == Ok("1") {
        std::fs::write(path, &svg).expect("write docs/dashboard.svg");
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == svg,
        "docs/dashboard.svg is not what the dashboard draws now: review the change, then \
         `UPDATE_DOCS=1 cargo test --test ui the_readme_picture` writes it"
    );
    // What the picture holds is the screen.
    for key in ["kill_switch_checkout", "catalog_v2_search_engine"] {
        assert!(svg.contains(key), "{key} in the picture");
    }
}

/// The picture's text is sanitised and escaped: a flag key with markup and a control
/// character cannot break out of its `<text>`.
#[test]
fn the_picture_escapes_every_text() {
    let mut buffer = ratatui::buffer::Buffer::empty(ratatui::layout::Rect::new(0, 0, 40, 2));
    buffer.set_string(0, 0, "<script>&\"x\u{1b}[31m", ratatui::style::Style::new());
    let svg = support::svg::render(&buffer, "a </title> title");
    assert!(!svg.contains("<script>"), "{svg}");
    assert!(svg.contains("&lt;script&gt;&amp;&quot;x"), "{svg}");
    assert!(
        !svg.contains('\u{1b}'),
        "the escape is shown escaped: {svg}"
    );
    assert!(
        svg.contains("<title>a &lt;/title&gt; title</title>"),
        "{svg}"
    );
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
            result: Err(support::dashboard::vault_failure(
                "prod: vault kv/feature-flags/flagsmith/prod answered 403 permission denied",
            )),
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

const CANARY: &str = "checkout_stripe_payment_intents_v2024_11";

/// The prod canary (10%) with the rollout dialog open at the target step.
fn rollout_dialog(env: &str, size: (u16, u16)) -> killswitch::tui::app::State {
    let mut state = loaded(false, size, Some((env, CANARY)));
    press(&mut state, KeyCode::Char('p'));
    state
}

#[test]
fn rollout_dialog_with_steps_at_80x24_and_120x40() {
    for size in [(80u16, 24u16), (120, 40)] {
        let state = rollout_dialog("prod", size);
        let screen = render(&state);
        // The words, the steps with the next one chosen, the step keys on the border.
        assert!(
            screen.contains("ROLLOUT checkout_stripe_payment_intents_v2024_11 in prod"),
            "{screen}"
        );
        assert!(screen.contains("ON 10% -> ON 50%"), "{screen}");
        assert!(screen.contains("[50%]"), "{screen}");
        assert!(screen.contains("↑/+: next step"), "{screen}");
        insta::assert_snapshot!(format!("rollout_dialog_{}x{}", size.0, size.1), screen);
    }
    // The next step is one key away.
    let mut state = rollout_dialog("prod", (120, 40));
    press(&mut state, KeyCode::Up);
    let screen = render(&state);
    // 100% is everyone: the cell says ON, as the dashboard does.
    assert!(screen.contains("in prod: ON 10% -> ON "), "{screen}");
    assert!(screen.contains("[100%]"), "{screen}");
    assert!(screen.contains("New percentage (0-100): 100"), "{screen}");
    insta::assert_snapshot!("rollout_dialog_next_step", screen);
}

#[test]
fn rollout_dialog_says_an_invalid_percentage_at_once() {
    let mut state = rollout_dialog("prod", (80, 24));
    press(&mut state, KeyCode::Backspace);
    press(&mut state, KeyCode::Backspace);
    type_text(&mut state, "150");
    let screen = render(&state);
    assert!(screen.contains("`150` is out of range"), "{screen}");
    assert!(screen.contains("ON 10% -> ?"), "{screen}");
    insta::assert_snapshot!("rollout_dialog_invalid", screen);
}

#[test]
fn rollout_dialog_in_a_protected_env_asks_for_the_typed_name() {
    let mut state = rollout_dialog("prod", (80, 24));
    press(&mut state, KeyCode::Enter);
    let answer = shared_answer(&state, Ok(Vec::new()));
    update(&mut state, answer);
    type_text(&mut state, "INC-4711 canary healthy for 30 min, next step");
    press(&mut state, KeyCode::Enter);
    type_text(&mut state, "pro");
    let screen = render(&state);
    assert!(screen.contains("Type `prod` to confirm: pro"), "{screen}");
    insta::assert_snapshot!("rollout_dialog_protected_confirm", screen);
}

#[test]
fn rollout_dialog_names_the_environments_a_shared_segment_reaches() {
    // staging is not protected, but the segment is shared with prod, which is.
    let mut state = rollout_dialog("staging", (120, 40));
    press(&mut state, KeyCode::Enter);
    insta::assert_snapshot!("rollout_dialog_asking_shared", render(&state));
    let answer = shared_answer(&state, Ok(vec!["staging".into(), "prod".into()]));
    update(&mut state, answer);
    type_text(&mut state, "INC-4711 open the canary");
    press(&mut state, KeyCode::Enter);
    let screen = render(&state);
    assert!(
        screen.contains("this segment is shared with: prod"),
        "{screen}"
    );
    assert!(screen.contains("Protected: prod."), "{screen}");
    insta::assert_snapshot!("rollout_dialog_shared", screen);
}

#[test]
fn vendor_text_in_the_rollout_dialog_is_inert() {
    let mut state = rollout_dialog("staging", (120, 40));
    press(&mut state, KeyCode::Enter);
    let answer = shared_answer(&state, Ok(vec!["eu\u{1b}[2J\u{202e}prod".into()]));
    update(&mut state, answer);
    type_text(&mut state, "INC-4711 open the canary");
    press(&mut state, KeyCode::Enter);
    let screen = render(&state);
    assert!(
        screen.contains("this segment is shared with: eu"),
        "{screen}"
    );
    assert!(
        !screen.contains('\u{1b}') && !screen.contains('\u{202e}'),
        "{screen}"
    );
    // A vendor that cannot say, with a token in its error: redacted, one line.
    let mut state = rollout_dialog("staging", (120, 40));
    press(&mut state, KeyCode::Enter);
    let answer = shared_answer(
        &state,
        Err("503\nAuthorization: Api-Key ser.abcdefghijklmnop0123".into()),
    );
    update(&mut state, answer);
    let screen = render(&state);
    assert!(
        screen.contains("cannot tell which environments"),
        "{screen}"
    );
    assert!(!screen.contains("ser.abcdefghijklmnop0123"), "{screen}");
    assert!(screen.contains("[redacted]"), "{screen}");
}

#[test]
fn rollout_dialog_offers_a_multivariate_flag_its_variants() {
    let mut state = loaded(
        false,
        (120, 40),
        Some(("prod", "recommendations_ab_test_model_v3")),
    );
    press(&mut state, KeyCode::Char('p'));
    press(&mut state, KeyCode::Down);
    let screen = render(&state);
    assert!(screen.contains("Everyone to variant:"), "{screen}");
    assert!(screen.contains("▶ treatment_a"), "{screen}");
    insta::assert_snapshot!("rollout_dialog_variants", screen);
}

#[test]
fn help_is_generated_from_the_keymap() {
    let mut state = loaded(false, (110, 40), None);
    press(&mut state, KeyCode::Char('?'));
    insta::assert_snapshot!("help", render(&state));
}

/// Help opened from the dialog lists the dialog's keys in full, every other mode in short.
#[test]
fn help_from_the_dialog_lists_the_dialog_first() {
    let mut state = loaded(false, (110, 30), None);
    press(&mut state, KeyCode::Char('f'));
    type_text(&mut state, "INC-1");
    press(&mut state, KeyCode::Enter);
    press(&mut state, KeyCode::Char('?'));
    insta::assert_snapshot!("help_from_dialog", render(&state));
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

/// The platform's sizes: 80×24, 120×30, 200×50 with 3, 8, 12 and 30 environments, keys longer
/// than any flag column, one failed environment, the cursor on the last column.
#[test]
fn the_matrix_at_every_size_keeps_the_selection_and_the_failure_in_view() {
    use support::dashboard::{LONG_KEY, MANY_ENVS, many};
    for size in [(80u16, 24u16), (120, 30), (200, 50)] {
        for (count, failed) in [
            // Not the linked (last) environment: a link to a failed environment selects
            // nothing until it loads.
            (3, "staging"),
            (8, "prod-eu"),
            (12, "prod-eu"),
            (30, "prod-eu-west-1"),
        ] {
            let last = MANY_ENVS[count - 1];
            let state = many(count, size, Some(failed), Some((last, LONG_KEY)));
            let screen = render(&state);
            let name = format!("matrix_{}x{}_{count}_envs", size.0, size.1);
            let lines: Vec<&str> = screen.lines().collect();
            // The selected row: its marker and the start and end of its key, cut in the middle.
            let selected = lines
                .iter()
                .find(|line| line.contains('▶') && line.contains("checkout_stripe"))
                .unwrap_or_else(|| panic!("{name}: no selected row\n{screen}"));
            assert!(
                selected.contains("_eu"),
                "{name}: the key's distinguishing end\n{screen}"
            );
            assert!(
                selected.contains('…'),
                "{name}: the cut is marked\n{screen}"
            );
            // The full key in the details pane.
            assert!(
                screen.contains(LONG_KEY),
                "{name}: full key in details\n{screen}"
            );
            // The selected column is drawn, and its header is on screen.
            assert_eq!(state.col, count - 1, "{name}");
            assert!(state.shown_columns().contains(&state.col), "{name}");
            let header = lines[2];
            assert!(
                header.contains(&last.to_uppercase()[..2]),
                "{name}: header {header}"
            );
            // Hidden columns are counted on both sides.
            let (left, right) = state.hidden_columns();
            assert_eq!(left + state.shown_columns().len() + right, count, "{name}");
            if left > 0 {
                assert!(header.contains(&format!("◀ {left}")), "{name}: {header}");
            } else {
                assert!(!header.contains('◀'), "{name}: {header}");
            }
            if right > 0 {
                assert!(header.contains(&format!("{right} ▶")), "{name}: {header}");
            }
            // The failed environment is named on the status bar, wherever its column is.
            let status = lines[usize::from(size.1) - 2];
            assert!(status.contains("FAILED"), "{name}: {status}");
            assert!(status.contains(failed), "{name}: {status}");
            insta::assert_snapshot!(name, screen);
        }
    }
}

#[test]
fn moving_right_across_thirty_columns_keeps_the_selection_visible() {
    use support::dashboard::many;
    let mut state = many(30, (80, 24), None, None);
    update(
        &mut state,
        Action::Command(killswitch::tui::keymap::Command::FirstRow),
    );
    // Start at the first column.
    for _ in 0..30 {
        press(&mut state, KeyCode::Left);
    }
    assert_eq!(state.col, 0);
    for expected in 1..30 {
        press(&mut state, KeyCode::Right);
        assert_eq!(state.col, expected);
        assert!(
            state.shown_columns().contains(&expected),
            "column {expected}"
        );
        let screen = render(&state);
        let (left, _) = state.hidden_columns();
        if left > 0 {
            assert!(screen.contains(&format!("◀ {left}")), "{screen}");
        }
    }
    press(&mut state, KeyCode::Right);
    assert_eq!(state.col, 29, "stops at the last column");
    assert_eq!(state.hidden_columns().1, 0);
}

#[test]
fn paging_columns_moves_by_a_screenful() {
    use support::dashboard::many;
    let mut state = many(30, (120, 30), None, None);
    for _ in 0..30 {
        press(&mut state, KeyCode::Left);
    }
    let shown = state.shown_columns().len();
    assert!(shown > 1 && shown < 30, "{shown}");
    press(&mut state, KeyCode::Char('>'));
    assert_eq!(state.col, shown);
    assert_eq!(state.hidden_columns().0, shown, "the view moved a page too");
    press(&mut state, KeyCode::Char('<'));
    assert_eq!(state.col, 0);
    assert_eq!(state.hidden_columns().0, 0);
    for _ in 0..10 {
        press(&mut state, KeyCode::Char('>'));
    }
    assert_eq!(state.col, 29);
}

#[test]
fn the_column_filter_narrows_the_matrix() {
    use support::dashboard::many;
    let mut state = many(30, (120, 30), Some("prod-eu"), None);
    press(&mut state, KeyCode::Char(':'));
    type_text(&mut state, "prod*");
    let names: Vec<&str> = state
        .columns
        .iter()
        .map(|col| state.envs[*col].name.as_str())
        .collect();
    assert_eq!(names.len(), 9, "{names:?}");
    assert!(
        names.iter().all(|name| name.starts_with("prod")),
        "{names:?}"
    );
    assert!(
        state.columns.contains(&state.col),
        "the selection stays among the shown"
    );
    press(&mut state, KeyCode::Enter);
    let screen = render(&state);
    assert!(screen.contains("columns: :prod*"), "{screen}");
    assert!(screen.contains("(9 of 30 envs)"), "{screen}");
    assert!(!screen.contains(" DEV "), "{screen}");
    insta::assert_snapshot!("column_filter", screen);
    // A filter that matches nothing leaves nothing to flip.
    press(&mut state, KeyCode::Char(':'));
    type_text(&mut state, "zzz");
    press(&mut state, KeyCode::Enter);
    assert!(state.columns.is_empty());
    assert!(render(&state).contains("no environment matches the column filter"));
    let effects = press(&mut state, KeyCode::Char('f'));
    assert!(effects.is_empty());
    assert!(matches!(state.mode, killswitch::tui::app::Mode::Normal));
    // Esc clears both filters.
    press(&mut state, KeyCode::Esc);
    assert_eq!(state.columns.len(), 30);
}

#[test]
fn groups_label_their_columns_in_the_header() {
    use support::dashboard::many;
    let mut state = many(8, (120, 30), None, None);
    let groups: std::collections::BTreeMap<String, String> = [
        ("dev", "core"),
        ("staging", "core"),
        ("prod", "core"),
        ("dev-eu", "eu"),
        ("staging-eu", "eu"),
        ("prod-eu", "eu"),
        ("dev-us", "us"),
        ("staging-us", "us"),
    ]
    .iter()
    .map(|(env, group)| (env.to_string(), group.to_string()))
    .collect();
    state.set_groups(&groups);
    let screen = render(&state);
    assert!(screen.contains(" core ──"), "{screen}");
    assert!(screen.contains(" eu ──"), "{screen}");
    insta::assert_snapshot!("groups", screen);
    // A group name is a column filter term.
    press(&mut state, KeyCode::Char(':'));
    type_text(&mut state, "eu");
    assert_eq!(state.columns.len(), 3);
}

#[test]
fn the_environment_list_names_every_state_and_jumps_to_a_column() {
    use support::dashboard::many;
    let mut state = many(12, (80, 24), Some("prod-eu"), None);
    let screen = render(&state);
    let status = screen.lines().nth(22).unwrap_or_default().to_string();
    assert!(status.contains("12 envs: 1 FAILED prod-eu"), "{status}");
    assert!(status.contains("11 ok"), "{status}");
    press(&mut state, KeyCode::Char('e'));
    let screen = render(&state);
    assert!(screen.contains("prod-eu*  FAILED: vault"), "{screen}");
    insta::assert_snapshot!("environment_list", screen);
    for _ in 0..20 {
        press(&mut state, KeyCode::Up);
    }
    for _ in 0..11 {
        press(&mut state, KeyCode::Down);
    }
    press(&mut state, KeyCode::Enter);
    assert_eq!(state.col, 11);
    assert!(state.shown_columns().contains(&11));
}

#[test]
fn a_long_title_line_is_cut_with_a_mark() {
    use support::dashboard::many;
    let mut state = many(30, (80, 24), None, None);
    press(&mut state, KeyCode::Char(':'));
    type_text(
        &mut state,
        "prod-eu-central-1 prod-eu-west-1 prod-us-east-1",
    );
    press(&mut state, KeyCode::Enter);
    press(&mut state, KeyCode::Char('/'));
    type_text(&mut state, "checkout_stripe_payment_intents");
    let screen = render(&state);
    let title = screen.lines().next().unwrap_or_default();
    assert!(title.ends_with('…'), "{title}");
    assert!(
        title.contains("filter: /checkout_stripe_payment_intents"),
        "{title}"
    );
}

/// The foreground colours of the screen's cells that spell `word` on the line that has it.
fn colours_of(state: &killswitch::tui::app::State, word: &str) -> Vec<ratatui::style::Color> {
    let (width, height) = state.size;
    let backend = ratatui::backend::TestBackend::new(width, height);
    let mut terminal = ratatui::Terminal::new(backend).expect("test terminal");
    terminal
        .draw(|frame| killswitch::tui::view::render(frame, state))
        .expect("draw");
    let buffer = terminal.backend().buffer();
    for y in 0..buffer.area.height {
        let symbols: Vec<&str> = (0..buffer.area.width)
            .map(|x| buffer[(x, y)].symbol())
            .collect();
        let line = symbols.concat();
        if let Some(at) = line.find(word) {
            // Cells are one character each here (ASCII words after ASCII keys).
            let start = line[..at].chars().count() as u16;
            return (start..start + word.chars().count() as u16)
                .map(|x| buffer[(x, y)].fg)
                .collect();
        }
    }
    panic!("{word} is not on the screen")
}

#[test]
fn a_partial_kill_is_not_drawn_in_the_serving_colour() {
    use killswitch::model::{Override, OverrideKind, Rollout};
    use ratatui::style::Color;
    let mut state = loaded(false, (110, 30), None);
    // prod's kill switch killed by default while a segment still gets the feature.
    let mut prod = support::dashboard::snapshot("prod");
    let flag = prod
        .flags
        .iter_mut()
        .find(|flag| flag.meta.key == "kill_switch_checkout")
        .expect("sample kill switch");
    flag.state.enabled = false;
    flag.state.value = Some(false.into());
    flag.state.rollout = Rollout::Everyone;
    flag.state.overrides = vec![Override {
        target: "segment beta".into(),
        kind: OverrideKind::Segment,
        enabled: true,
        value: None,
        rollout: Rollout::Everyone,
    }];
    update(
        &mut state,
        Action::EnvLoaded {
            env: "prod".into(),
            result: Ok(prod),
            read_only_reason: None,
        },
    );
    let partial = colours_of(&state, "SERVING 1 seg only");
    assert!(
        partial.iter().all(|colour| *colour != Color::Green),
        "a partial kill drawn as serving: {partial:?}"
    );
    // Nor is it drawn as a full kill: the words and the colour both say "partly".
    assert!(
        partial.iter().all(|colour| *colour != Color::Red),
        "{partial:?}"
    );
    // A kill switch serving everyone keeps the serving colour.
    let serving = colours_of(&state, "SERVING");
    assert!(serving.iter().all(|c| *c == Color::Green), "{serving:?}");
}

/// A user keymap that moves keys in every mode: the help and every hint line say the new keys,
/// read from the keymap, and the keys act.
#[test]
fn a_rebound_key_shows_in_help_and_hints_in_every_mode() {
    use killswitch::tui::app::{DialogStage, Mode};
    use killswitch::tui::keymap::Keymap;

    let user = Keymap::parse(
        r#"
[dashboard]
keymap = [
  { on = "x", run = "flip", desc = "Kill it (rebound)" },
  { on = "ctrl-a", run = "audit_log" },
]
[environments]
keymap = [ { on = "J", run = "move_down" } ]
[dialog]
keymap = [ { on = "f2", run = "accept" }, { on = "ctrl-y", run = "yes" } ]
[audit]
keymap = [ { on = "ctrl-x", run = "close" } ]
"#,
        "user.toml",
    )
    .expect("the user keymap parses");
    // 40 rows: the whole help, with the rollout and undo keys.
    let mut state = loaded(false, (110, 40), None);
    state.keymap = Keymap::builtin("default").expect("default").overlaid(user);
    let footer = |state: &killswitch::tui::app::State| {
        render(state)
            .lines()
            .rev()
            .find(|line| !line.trim().is_empty())
            .unwrap_or_default()
            .to_string()
    };
    // Dashboard: `x` is the flip's first key now ("f" is still bound, after it).
    assert!(
        footer(&state).starts_with("f kill/restore"),
        "{}",
        footer(&state)
    );
    press(&mut state, KeyCode::Char('?'));
    let help = render(&state);
    assert!(help.contains("f, enter, x  Kill it (rebound)"), "{help}");
    assert!(help.contains("a, ctrl-a  Audit log"), "{help}");
    assert!(
        help.contains("enter/f2 accept"),
        "the dialog's line: {help}"
    );
    assert!(help.contains("y/Y/ctrl-y yes"), "{help}");
    assert!(help.contains("esc/q/a/ctrl-x close"), "{help}");
    assert!(
        help.contains("keymap: keymaps/default.toml + user.toml"),
        "{help}"
    );
    press(&mut state, KeyCode::Esc);
    // The environment list: J moves (it is listed in the help's line, and it acts).
    press(&mut state, KeyCode::Char('e'));
    press(&mut state, KeyCode::Home);
    assert!(matches!(state.mode, Mode::Environments(0)));
    press(&mut state, KeyCode::Char('J'));
    assert!(
        matches!(state.mode, Mode::Environments(1)),
        "{:?}",
        state.mode
    );
    press(&mut state, KeyCode::Esc);
    // Audit: ctrl-x closes; the hint line lists it after the default keys.
    press(&mut state, KeyCode::Char('a'));
    assert!(footer(&state).ends_with("Esc: close"), "{}", footer(&state));
    support::dashboard::press_key(
        &mut state,
        crossterm::event::KeyEvent::new(
            KeyCode::Char('x'),
            crossterm::event::KeyModifiers::CONTROL,
        ),
    );
    assert!(matches!(state.mode, Mode::Normal));
    // A rebound key first in its list leads the hint: the user's file alone as the base.
    state.keymap = Keymap::parse(
        r#"
[dashboard]
keymap = [ { on = "x", run = "flip" }, { on = "?", run = "help" } ]
[dialog]
keymap = [
  { on = "f2", run = "accept" },
  { on = "esc", run = "cancel" },
  { on = "f1", run = "help" },
  { on = "ctrl-y", run = "yes" },
  { on = "ctrl-n", run = "no" },
  { on = "ctrl-b", run = "back" },
]
"#,
        "only.toml",
    )
    .expect("parses");
    assert_eq!(footer(&state), "x kill/restore · ? help");
    // The flip dialog: the rebound keys act and the hints and help say them.
    press(&mut state, KeyCode::Char('x'));
    assert!(
        footer(&state).starts_with("F2: next · F1: help · Esc: cancel"),
        "{}",
        footer(&state)
    );
    type_text(&mut state, "INC-1 rebound");
    press(&mut state, KeyCode::Enter);
    assert!(
        matches!(&state.mode, Mode::Flip(d) if d.stage == DialogStage::Note),
        "enter is no longer bound"
    );
    press(&mut state, KeyCode::F(2));
    let Mode::Flip(dialog) = &state.mode else {
        panic!("the dialog is open")
    };
    assert_eq!(dialog.stage, DialogStage::Confirm);
    assert!(dialog.protected, "the cursor starts in prod");
    assert_eq!(
        footer(&state),
        "F2: apply · Ctrl-b: back · F1: help · Esc: cancel"
    );
    press(&mut state, KeyCode::F(1));
    let help = render(&state);
    assert!(help.contains("In the flip dialog"), "{help}");
    assert!(
        help.contains("ctrl-b  From the confirmation back"),
        "{help}"
    );
    assert!(help.contains("x flip"), "the dashboard in short: {help}");
}
