//! The three bottom lines: the last message, the status bar (mode, operator, each
//! environment's load state and freshness), and the help bar from the keymap.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::SPINNER;
use crate::tui::app::{Level, LoadState, Mode, State};
use crate::tui::keymap::Command;
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
            format!("{prefix}{}", redact::line(text)),
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
    for env in &state.envs {
        let text = match &env.load {
            LoadState::Loading => {
                format!("{} {} ", env.name, SPINNER[state.spinner % SPINNER.len()])
            }
            LoadState::Failed(_) => match &env.snapshot {
                Some(snapshot) => format!(
                    "{} FAILED, showing {} ",
                    env.name,
                    snapshot.fetched_at.format("%H:%M:%S")
                ),
                None => format!("{} FAILED ", env.name),
            },
            LoadState::Loaded => match &env.snapshot {
                Some(snapshot) if env.is_stale(state.now, state.refresh_interval) => {
                    format!(
                        "{} OLD {} ",
                        env.name,
                        snapshot.fetched_at.format("%H:%M:%S")
                    )
                }
                Some(snapshot) => format!(
                    "{} ok {} ",
                    env.name,
                    snapshot.fetched_at.format("%H:%M:%S")
                ),
                None => format!("{} ok ", env.name),
            },
        };
        let mut style = match env.load {
            LoadState::Failed(_) => Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
            _ => Style::new(),
        };
        if env.read_only_reason.is_some() && !state.read_only {
            style = style.add_modifier(Modifier::ITALIC);
        }
        spans.push(Span::raw("│ "));
        spans.push(Span::styled(text::line(&text), style));
        if env.read_only_reason.is_some() && !state.read_only {
            spans.push(Span::raw("(read-only) "));
        }
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

pub fn render_help_bar(frame: &mut Frame, area: Rect, state: &State) {
    let text = match &state.mode {
        Mode::Filter => "type to filter · enter: keep · esc: clear".to_string(),
        Mode::Flip(dialog) => crate::tui::app::dialog_hint(dialog).to_string(),
        Mode::Help => "any key closes".to_string(),
        Mode::Audit(_) => super::audit::HINT.to_string(),
        Mode::Normal => {
            let commands = [
                Command::Flip,
                Command::Filter,
                Command::AuditLog,
                Command::Refresh,
                Command::ToggleDetails,
                Command::Help,
                Command::Quit,
            ];
            commands
                .iter()
                .filter(|command| !(state.read_only && command.is_dangerous()))
                .filter_map(|command| {
                    let keys = state.keymap.keys_for(*command);
                    keys.first().map(|key| format!("{key} {}", command.short()))
                })
                .collect::<Vec<_>>()
                .join(" · ")
        }
    };
    frame.render_widget(
        Paragraph::new(Line::styled(text, Style::new().add_modifier(Modifier::DIM))),
        area,
    );
}
