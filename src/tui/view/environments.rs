//! The full per-environment list (one key from the dashboard): every environment's state,
//! group, protection and read-only reason, problems readable in full even when the status bar
//! can only summarise. Enter jumps to the highlighted environment's column.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Clear, Paragraph};

use super::{SPINNER, centered};
use crate::tui::app::{LoadState, State};
use crate::{redact, text};

/// One environment's line, at most `width` characters (cut with `…`).
fn line_for(state: &State, col: usize, width: usize) -> (String, bool) {
    let Some(env) = state.envs.get(col) else {
        return (String::new(), false);
    };
    let mut text = text::line(&env.name);
    if env.protected {
        text.push('*');
    }
    if let Some(group) = state.group_of(col) {
        text.push_str(&format!(" [{}]", text::line(group)));
    }
    let flags = env
        .snapshot
        .as_ref()
        .map(|snapshot| format!(", {} flags", snapshot.flags.len()))
        .unwrap_or_default();
    let at = |env: &crate::tui::app::EnvColumn| {
        env.snapshot
            .as_ref()
            .map(|s| s.fetched_at.format("%H:%M:%S").to_string())
            .unwrap_or_default()
    };
    let failed = matches!(env.load, LoadState::Failed(_));
    text.push_str(&match &env.load {
        LoadState::Loading => format!("  loading {}", SPINNER[state.spinner % SPINNER.len()]),
        LoadState::Failed(error) => match &env.snapshot {
            Some(_) => format!(
                "  FAILED, showing {}{flags}: {}",
                at(env),
                text::line(error)
            ),
            None => format!("  FAILED: {}", text::line(error)),
        },
        LoadState::Loaded if env.is_stale(state.now, state.refresh_interval) => {
            format!("  OLD {}{flags}", at(env))
        }
        LoadState::Loaded => format!("  ok {}{flags}", at(env)),
    });
    if let Some(reason) = &env.read_only_reason
        && !state.read_only
    {
        text.push_str(&format!("  read-only: {}", redact::line(reason)));
    }
    if !state.columns.contains(&col) {
        text.push_str("  (hidden by the column filter)");
    }
    (text::cut_end(&text, width), failed)
}

pub fn render(frame: &mut Frame, area: Rect, state: &State, selected: usize) {
    let width = area.width.saturating_sub(4);
    let height = area.height.saturating_sub(2);
    let inner_width = usize::from(width.saturating_sub(2));
    let rows = usize::from(height.saturating_sub(2)).max(1);
    let top = selected.saturating_sub(rows - 1);
    let lines: Vec<Line> = (top..state.envs.len().min(top + rows))
        .map(|col| {
            let marker = if col == selected { "▶" } else { " " };
            let (text, failed) = line_for(state, col, inner_width.saturating_sub(1));
            let mut style = Style::new();
            if failed {
                style = style.fg(Color::Red).add_modifier(Modifier::BOLD);
            }
            if col == selected {
                style = style.add_modifier(Modifier::REVERSED);
            }
            Line::styled(format!("{marker}{text}"), style)
        })
        .collect();
    let more_below = state.envs.len().saturating_sub(top + rows);
    let title = format!(
        " {} environments{}{} · j/k move · enter: go to column · other keys close ",
        state.envs.len(),
        if top > 0 {
            format!(" · {top} above")
        } else {
            String::new()
        },
        if more_below > 0 {
            format!(" · {more_below} below")
        } else {
            String::new()
        }
    );
    let height = u16::try_from(lines.len() + 2).unwrap_or(u16::MAX);
    let popup = centered(area, width, height);
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines).block(
            Block::new()
                .borders(Borders::ALL)
                .title(text::cut_end(&title, inner_width)),
        ),
        popup,
    );
}
