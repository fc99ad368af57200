//! The title line and the flag x environment matrix. Only the visible rows are built.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};

use crate::{redact, text};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table};

use crate::model::FlagKind;
use crate::tui::app::{LoadState, Mode, State};

use super::SPINNER;

pub fn render_title(frame: &mut Frame, area: Rect, state: &State) {
    let mode = if state.read_only {
        Span::styled(
            " READ-ONLY ",
            Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD),
        )
    } else {
        Span::styled(
            " LIVE ",
            Style::new()
                .fg(Color::Red)
                .add_modifier(Modifier::REVERSED | Modifier::BOLD),
        )
    };
    let mut spans = vec![
        Span::styled("killswitch ", Style::new().add_modifier(Modifier::BOLD)),
        mode,
    ];
    if state.local_workspace {
        spans.push(Span::raw(" on local flag files"));
    }
    let filter = state.filter.value();
    if matches!(state.mode, Mode::Filter) || !filter.is_empty() {
        spans.push(Span::raw(format!("  filter: /{filter}")));
        if matches!(state.mode, Mode::Filter) {
            spans.push(Span::styled(
                "█",
                Style::new().add_modifier(Modifier::SLOW_BLINK),
            ));
        }
        spans.push(Span::raw(format!(
            "  ({} of {})",
            state.visible.len(),
            state.rows.len()
        )));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// Style for a cell's text: words carry the meaning, colour only helps.
fn cell_style(kind: FlagKind, text: &str) -> Style {
    match (kind, text) {
        (FlagKind::KillSwitch, "KILLED") => {
            Style::new().fg(Color::Red).add_modifier(Modifier::BOLD)
        }
        // killswitch cannot tell what a rule serves: neither the serving nor the killed colour.
        (_, text) if text.starts_with("UNKNOWN") => {
            Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD)
        }
        (FlagKind::KillSwitch, _) => Style::new().fg(Color::Green),
        (_, "OFF") => Style::new().fg(Color::DarkGray),
        _ => Style::new(),
    }
}

/// From this many columns on, the matrix also shows each flag's owner.
pub const OWNER_COLUMN_WIDTH: u16 = 160;

pub fn render_table(frame: &mut Frame, area: Rect, state: &State) {
    let block = Block::new().borders(Borders::ALL).title(" flags ");
    let show_owner = area.width >= OWNER_COLUMN_WIDTH;
    let selected = state.selected_position();
    let page = usize::from(area.height.saturating_sub(3));
    let end = (state.offset + page).min(state.visible.len());
    let mut rows = Vec::with_capacity(end.saturating_sub(state.offset));
    for position in state.offset..end {
        let Some(row) = state.visible.get(position).and_then(|i| state.rows.get(*i)) else {
            continue;
        };
        let selected_row = Some(position) == selected;
        let marker = if selected_row { "▶" } else { " " };
        let name = format!("{marker}{}", text::line(&row.meta.key));
        let mut cells = vec![Cell::from(name).style(if selected_row {
            Style::new().add_modifier(Modifier::BOLD)
        } else {
            Style::new()
        })];
        if show_owner {
            cells.push(Cell::from(crate::text::line_max(
                row.meta.owner.as_deref().unwrap_or("NONE"),
                24,
            )));
        }
        for col in 0..state.envs.len() {
            let text = state.cell_text(row, col).unwrap_or_else(|| {
                match state
                    .envs
                    .get(col)
                    .map(|env| (&env.load, env.snapshot.is_some()))
                {
                    Some((LoadState::Loading, false)) => "…".to_string(),
                    Some((LoadState::Failed(_), false)) => "ERROR".to_string(),
                    _ => "—".to_string(),
                }
            });
            let mut style = cell_style(row.meta.kind, &text);
            if selected_row && col == state.col {
                style = style.add_modifier(Modifier::REVERSED);
            }
            // A marked cell (space) says so in words, not only in style: "+KILLED".
            let marked = state.envs.get(col).is_some_and(|env| {
                state
                    .marks
                    .iter()
                    .any(|(flag, name)| **flag == *row.meta.key && *name == env.name)
            });
            let shown = if marked {
                style = style.add_modifier(Modifier::UNDERLINED);
                format!("+{}", text::line(&text))
            } else {
                text::line(&text)
            };
            cells.push(Cell::from(shown).style(style));
        }
        rows.push(Row::new(cells));
    }
    let owner_header =
        show_owner.then(|| Cell::from("OWNER").style(Style::new().add_modifier(Modifier::BOLD)));
    let header_cells = std::iter::once(Cell::from(" FLAG"))
        .chain(owner_header)
        .chain(state.envs.iter().enumerate().map(|(col, env)| {
            let mut title = text::line(&env.name.to_uppercase());
            if env.protected {
                title.push('*');
            }
            let marker = match &env.load {
                LoadState::Loading => format!(" {}", SPINNER[state.spinner % SPINNER.len()]),
                LoadState::Failed(_) => " ERR".to_string(),
                LoadState::Loaded if env.is_stale(state.now, state.refresh_interval) => {
                    " OLD".to_string()
                }
                LoadState::Loaded => String::new(),
            };
            let style = if col == state.col {
                Style::new().add_modifier(Modifier::BOLD | Modifier::UNDERLINED)
            } else {
                Style::new().add_modifier(Modifier::BOLD)
            };
            Cell::from(format!("{title}{marker}")).style(style)
        }));
    let key_width = state
        .visible
        .iter()
        .skip(state.offset)
        .take(page)
        .filter_map(|i| state.rows.get(*i))
        .map(|row| text::line(&row.meta.key).chars().count() + 1)
        .max()
        .unwrap_or(10)
        .clamp(10, 48) as u16;
    let mut widths = vec![Constraint::Length(key_width)];
    if show_owner {
        widths.push(Constraint::Length(24));
    }
    widths.extend(state.envs.iter().map(|_| Constraint::Min(12)));
    let table = Table::new(rows, widths)
        .header(Row::new(header_cells))
        .block(block)
        .column_spacing(2);
    frame.render_widget(table, area);
    if state.rows.is_empty() || state.visible.is_empty() {
        let text = if state.rows.is_empty() {
            let failed: Vec<String> = state
                .envs
                .iter()
                .filter_map(|env| match &env.load {
                    LoadState::Failed(error) => {
                        Some(redact::line(&format!("{}: {error}", env.name)))
                    }
                    _ => None,
                })
                .collect();
            if state.envs.iter().any(|e| e.load == LoadState::Loading) {
                "loading…".to_string()
            } else if !failed.is_empty() {
                failed.join("\n")
            } else {
                "no flags".to_string()
            }
        } else {
            "no flag matches the filter (Esc clears it)".to_string()
        };
        let inner = Rect {
            x: area.x + 2,
            y: area.y + 2,
            width: area.width.saturating_sub(4),
            height: area.height.saturating_sub(3),
        };
        frame.render_widget(
            Paragraph::new(text).wrap(ratatui::widgets::Wrap { trim: true }),
            inner,
        );
    }
}
