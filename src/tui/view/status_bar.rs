//! The three bottom lines: the last message, the status bar (mode, operator, each
//! environment's load state and freshness), and the help bar from the keymap.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::SPINNER;
use crate::tui::app::{Level, LoadState, Mode, State};

use crate::tui::keymap::{Command, Commands, Hint};
use crate::{redact, text};

pub fn render_message(frame: &mut Frame, area: Rect, state: &State) {
    let Some((level, text)) = &state.message else {
        return;
    };
    let (prefix, style) = match level {
        Level::Info => ("", Style::new()),
        Level::Success => (
            "OK ",
            Style::new().fg(Color::Green).add_modifier(Modifier::BOLD),
        ),
        Level::Error => (
            "ERROR ",
            Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
        ),
    };
    frame.render_widget(
        Paragraph::new(Line::styled(
            text::cut_end(
                &format!("{prefix}{}", redact::line(text)),
                usize::from(area.width),
            ),
            style,
        )),
        area,
    );
}

pub fn render_status(frame: &mut Frame, area: Rect, state: &State) {
    let mode = if state.read_only { "READ-ONLY" } else { "LIVE" };
    let mut spans = vec![
        Span::styled(
            format!(" {mode} "),
            Style::new().add_modifier(Modifier::REVERSED),
        ),
        Span::raw(format!(" {} ", text::line(&state.operator))),
    ];
    if !state.marks.is_empty() {
        spans.push(Span::styled(
            format!(" {} MARKED ", state.marks.len()),
            Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD),
        ));
    }
    if !state.warnings.is_empty() {
        spans.push(Span::styled(
            " VAULT TLS NOT VERIFIED ",
            Style::new()
                .fg(Color::Red)
                .add_modifier(Modifier::REVERSED | Modifier::BOLD),
        ));
    }
    if state.pending_flips > 0 {
        spans.push(Span::styled(
            format!(
                " {} INTERRUPTED FLIP{} PENDING ",
                state.pending_flips,
                if state.pending_flips == 1 { "" } else { "S" }
            ),
            Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD),
        ));
    }
    let mut list: Vec<Span> = Vec::new();
    for env in &state.envs {
        let name = text::line(&env.name);
        let text = match &env.load {
            LoadState::Loading => {
                format!("{name} {} ", SPINNER[state.spinner % SPINNER.len()])
            }
            LoadState::Failed(_) => match &env.snapshot {
                Some(snapshot) => format!(
                    "{name} FAILED, showing {} ",
                    snapshot.fetched_at.format("%H:%M:%S")
                ),
                None => format!("{name} FAILED "),
            },
            LoadState::Loaded => match &env.snapshot {
                Some(snapshot) if env.is_stale(state.now, state.refresh_interval) => {
                    format!("{name} OLD {} ", snapshot.fetched_at.format("%H:%M:%S"))
                }
                Some(snapshot) => {
                    format!("{name} ok {} ", snapshot.fetched_at.format("%H:%M:%S"))
                }
                None => format!("{name} ok "),
            },
        };
        let mut style = match env.load {
            LoadState::Failed(_) => Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
            _ => Style::new(),
        };
        if env.read_only_reason.is_some() && !state.read_only {
            style = style.add_modifier(Modifier::ITALIC);
        }
        list.push(Span::raw("│ "));
        list.push(Span::styled(text, style));
        if env.read_only_reason.is_some() && !state.read_only {
            list.push(Span::raw("(read-only) "));
        }
    }
    let used: usize = spans.iter().map(Span::width).sum();
    let room = usize::from(area.width).saturating_sub(used);
    if list.iter().map(Span::width).sum::<usize>() <= room {
        spans.extend(list);
    } else {
        let (summary, failed) = summary(state, room);
        let style = if failed {
            Style::new().fg(Color::Red).add_modifier(Modifier::BOLD)
        } else {
            Style::new()
        };
        spans.push(Span::styled(summary, style));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// The environments in one line when they cannot all be listed: problems first, named
/// (`12 envs: 1 FAILED prod-eu · 1 OLD dev · 10 ok · e: list`), cut with `…` to `room`.
/// Also says whether any environment failed.
pub fn summary(state: &State, room: usize) -> (String, bool) {
    let mut failed = Vec::new();
    let mut old = Vec::new();
    let mut read_only = Vec::new();
    let (mut loading, mut ok) = (0, 0);
    for env in &state.envs {
        let name = text::line(&env.name);
        match &env.load {
            LoadState::Failed(_) => failed.push(name.clone()),
            LoadState::Loading => loading += 1,
            LoadState::Loaded if env.is_stale(state.now, state.refresh_interval) => {
                old.push(name.clone())
            }
            LoadState::Loaded => ok += 1,
        }
        if env.read_only_reason.is_some() && !state.read_only {
            read_only.push(name);
        }
    }
    let mut parts = Vec::new();
    if !failed.is_empty() {
        parts.push(format!("{} FAILED {}", failed.len(), failed.join(", ")));
    }
    if !old.is_empty() {
        parts.push(format!("{} OLD {}", old.len(), old.join(", ")));
    }
    if !read_only.is_empty() {
        parts.push(format!(
            "{} read-only {}",
            read_only.len(),
            read_only.join(", ")
        ));
    }
    if loading > 0 {
        parts.push(format!(
            "{loading} loading {}",
            SPINNER[state.spinner % SPINNER.len()]
        ));
    }
    parts.push(format!("{ok} ok"));
    let list_key = state
        .keymap
        .keys_for(Command::Environments)
        .first()
        .map(|key| format!(" · {key}: list"))
        .unwrap_or_default();
    let text = format!("│ {} envs: {}", state.envs.len(), parts.join(" · "));
    let text = if text.chars().count() + list_key.chars().count() <= room {
        format!("{text}{list_key}")
    } else {
        text::cut_end(&text, room)
    };
    (text, !failed.is_empty())
}

/// The hint line of the current mode, generated from the active keymap: the first key of
/// each command the mode shows there, with its label.
pub fn hint_line(state: &State, width: usize) -> String {
    let keymap = &state.keymap;
    let items = |hints: Vec<(String, Hint)>| {
        hints
            .into_iter()
            .map(|(keys, hint)| format!("{keys}: {}", hint.label))
            .collect::<Vec<_>>()
    };
    let text = match &state.mode {
        Mode::Filter => {
            let mut parts = vec!["type to filter".to_string()];
            parts.extend(items(keymap.filter.hints(|_| true)));
            parts.join(" · ")
        }
        Mode::ColumnFilter => {
            let mut parts = vec!["type a column filter: prod*, eu, a group".to_string()];
            parts.extend(items(keymap.column_filter.hints(|_| true)));
            parts.join(" · ")
        }
        Mode::Environments(_) => {
            let mut parts = items(keymap.environments.hints(|_| true));
            parts.push("any other key closes".to_string());
            parts.join(" · ")
        }
        Mode::Flip(dialog) => crate::tui::app::dialog_hint(dialog, keymap),
        Mode::Help => "any key closes".to_string(),
        Mode::Audit(_) => audit_hint(state),
        Mode::Normal => {
            let mut hints = keymap
                .dashboard
                .hints(|command| !(state.read_only && command.is_dangerous()));
            let line = |hints: &[(String, Hint)]| {
                hints
                    .iter()
                    .map(|(keys, hint)| format!("{keys} {}", hint.label))
                    .collect::<Vec<_>>()
                    .join(" · ")
            };
            // When narrow, the hints kept least go first; the most kept (`? help`) stays.
            let mut text = line(&hints);
            while text.chars().count() > width && hints.len() > 1 {
                let Some(least) = hints
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, (_, hint))| hint.keep)
                    .map(|(index, _)| index)
                else {
                    break;
                };
                hints.remove(least);
                text = line(&hints);
            }
            text
        }
    };
    text::cut_end(&text, width)
}

/// The audit view's keys, on its border and in the footer.
pub fn audit_hint(state: &State) -> String {
    state
        .keymap
        .audit
        .hints(|_| true)
        .into_iter()
        .map(|(keys, hint)| format!("{keys}: {}", hint.label))
        .collect::<Vec<_>>()
        .join(" · ")
}

pub fn render_help_bar(frame: &mut Frame, area: Rect, state: &State) {
    let text = hint_line(state, usize::from(area.width));
    frame.render_widget(
        Paragraph::new(Line::styled(text, Style::new().add_modifier(Modifier::DIM))),
        area,
    );
}
