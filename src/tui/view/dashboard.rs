//! The title line and the flag x environment matrix. Only the visible rows are built.

use ratatui::Frame;
use ratatui::layout::{Constraint, Flex, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table};

use crate::model::{CellView, Tone};
use crate::tui::app::{LoadState, Mode, State};
use crate::tui::layout;
use crate::{redact, text};

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
        spans.push(Span::raw(format!("  filter: /{}", text::line(filter))));
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
    let columns = state.column_filter.value();
    if matches!(state.mode, Mode::ColumnFilter) || !columns.is_empty() {
        spans.push(Span::raw(format!("  columns: :{}", text::line(columns))));
        if matches!(state.mode, Mode::ColumnFilter) {
            spans.push(Span::styled(
                "█",
                Style::new().add_modifier(Modifier::SLOW_BLINK),
            ));
        }
        spans.push(Span::raw(format!(
            "  ({} of {} envs)",
            state.columns.len(),
            state.envs.len()
        )));
    }
    let spans = super::fit_spans(spans, usize::from(area.width));
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// Style for a cell, from what its state means ([`Tone`]), never from its words: words carry
/// the meaning, colour only helps.
pub fn cell_style(tone: Tone) -> Style {
    match tone {
        Tone::Killed => Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
        // Killed by default, still serving segments: neither the killed nor the serving colour.
        Tone::PartlyKilled => Style::new().fg(Color::Magenta).add_modifier(Modifier::BOLD),
        // killswitch cannot tell what a rule serves: neither the serving nor the killed colour.
        Tone::Unknown => Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
        Tone::Serving => Style::new().fg(Color::Green),
        Tone::Off => Style::new().fg(Color::DarkGray),
        Tone::On | Tone::Rollout | Tone::Targeted | Tone::CodeDefault => Style::new(),
    }
}

/// A cell's wording in at most `width` characters: the full text when it fits, else compact
/// forms (`ON 1 seg only` -> `1 seg only`, `SERVING 50%` -> `SERV 50%`, `UNKNOWN (rule)` ->
/// `UNKNOWN?`), else cut with a visible `…`. The details pane has the full text.
pub fn fit_cell(text: &str, width: usize) -> String {
    let fits = |t: &str| t.chars().count() <= width;
    if fits(text) {
        return text.to_string();
    }
    let mut compact = text
        .replace("(code default)", "dflt")
        .replace("code default", "code dflt")
        .replace(" (rule)", "?");
    let steps: [fn(&str) -> String; 5] = [
        |t| {
            for prefix in ["ON ", "SERVING "] {
                if let Some(rest) = t.strip_prefix(prefix) {
                    let digits = prefix == "ON " && rest.starts_with(|c: char| c.is_ascii_digit());
                    if rest.ends_with(" seg only") || digits {
                        return rest.to_string();
                    }
                }
            }
            t.to_string()
        },
        |t| t.replacen("SERVING", "SERV", 1),
        |t| t.replace(" seg", "seg"),
        |t| t.replace(" +", "+"),
        |t| t.replace(' ', ""),
    ];
    for step in steps {
        if fits(&compact) {
            return compact;
        }
        compact = step(&compact);
    }
    text::cut_end(&compact, width)
}

/// `text` in exactly `width` characters: cut with `…` when longer, padded when shorter.
fn pad(text: &str, width: usize) -> String {
    let text = text::cut_end(text, width);
    let len = text.chars().count();
    format!("{text}{}", " ".repeat(width.saturating_sub(len)))
}

/// The header's group line for the shown columns: each run of one group labelled once, with a
/// rule to its end (`prod ───────`).
fn group_cells(state: &State, shown: &[usize], width: usize) -> Vec<String> {
    shown
        .iter()
        .enumerate()
        .map(|(index, col)| {
            let group = state.group_of(*col);
            let starts_run = index == 0 || state.group_of(shown[index - 1]) != group;
            match group {
                None => " ".repeat(width),
                Some(group) if starts_run => {
                    let label = text::cut_end(&text::line(group), width.saturating_sub(3));
                    let used = label.chars().count() + 2;
                    format!(" {label} {}", "─".repeat(width.saturating_sub(used)))
                }
                Some(_) => "─".repeat(width),
            }
        })
        .collect()
}

/// An environment's header: its name cut in the middle if it must be, then `*` (protected)
/// and the load mark (spinner, `ERR`, `OLD`), which are never cut.
fn header_text(state: &State, col: usize, width: usize) -> String {
    let Some(env) = state.envs.get(col) else {
        return String::new();
    };
    let mut suffix = String::new();
    if env.protected {
        suffix.push('*');
    }
    match &env.load {
        LoadState::Loading => {
            suffix.push(' ');
            suffix.push_str(SPINNER[state.spinner % SPINNER.len()]);
        }
        LoadState::Failed(_) => suffix.push_str(" ERR"),
        LoadState::Loaded if env.is_stale(state.now, state.refresh_interval) => {
            suffix.push_str(" OLD")
        }
        LoadState::Loaded => {}
    }
    let room = width.saturating_sub(suffix.chars().count()).max(2);
    let name = text::cut_middle(&text::line(&env.name).to_uppercase(), room);
    format!("{name}{suffix}")
}

pub fn render_table(frame: &mut Frame, area: Rect, state: &State) {
    let block = Block::new().borders(Borders::ALL).title(" flags ");
    let selected = state.selected_position();
    let groups = state.has_groups();
    let header_height = if groups { 2 } else { 1 };
    let page = usize::from(area.height.saturating_sub(2 + header_height));
    let end = (state.offset + page).min(state.visible.len());
    // The state's geometry (its size is the terminal's), so what is drawn is what the cursor
    // logic scrolled into view.
    let geometry = layout::columns(area.width, state.columns.len(), state.longest_key());
    let owner_width = geometry.owner_width;
    let show_owner = owner_width > 0;
    let start = state.col_offset.min(state.columns.len());
    let shown = &state.columns[start..(start + geometry.visible).min(state.columns.len())];
    let (hidden_left, hidden_right) = (start, state.columns.len() - start - shown.len());
    let key_width = geometry.key_width;
    let cell_width = geometry.col_width.saturating_sub(1);
    let mut rows = Vec::with_capacity(end.saturating_sub(state.offset));
    for position in state.offset..end {
        let Some(row) = state.visible.get(position).and_then(|i| state.rows.get(*i)) else {
            continue;
        };
        let selected_row = Some(position) == selected;
        let marker = if selected_row { "▶" } else { " " };
        let key = text::cut_middle(&text::line(&row.meta.key), key_width - 1);
        let mut cells = vec![Cell::from(format!("{marker}{key}")).style(if selected_row {
            Style::new().add_modifier(Modifier::BOLD)
        } else {
            Style::new()
        })];
        if show_owner {
            let owner = row.meta.owner.as_deref().unwrap_or("NONE");
            // A space before it, as before every environment cell: the key may fill its column.
            cells.push(Cell::from(pad(
                &format!(" {}", text::cut_end(&text::line(owner), owner_width - 2)),
                owner_width,
            )));
        }
        for &col in shown {
            let flag = state.flag_at(row, col);
            // The row's kind: its metadata is merged across environments.
            let view = flag.map(|flag| CellView::of(row.meta.kind, &flag.state));
            let text = match &view {
                Some(view) => fit_cell(&text::line(&view.text), cell_width),
                None => match state
                    .envs
                    .get(col)
                    .map(|env| (&env.load, env.snapshot.is_some()))
                {
                    Some((LoadState::Loading, false)) => "…".to_string(),
                    Some((LoadState::Failed(_), false)) => "ERROR".to_string(),
                    _ => "—".to_string(),
                },
            };
            let mut style = view.map(|view| cell_style(view.tone)).unwrap_or_default();
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
            let text = if marked {
                style = style.add_modifier(Modifier::UNDERLINED);
                format!("+{}", text::cut_end(&text, cell_width.saturating_sub(1)))
            } else {
                text
            };
            cells.push(Cell::from(Line::from(vec![
                Span::raw(" "),
                Span::styled(text, style),
            ])));
        }
        rows.push(Row::new(cells));
    }
    // The flag header: " FLAG", and "◀ 3" when columns are scrolled out to the left.
    let left_mark = if hidden_left > 0 {
        format!("◀ {hidden_left} ")
    } else {
        String::new()
    };
    let flag_title = format!(
        "{}{left_mark}",
        pad(" FLAG", key_width.saturating_sub(left_mark.chars().count()))
    );
    let group_line = groups.then(|| group_cells(state, shown, geometry.col_width));
    let header_cell = |lines: Vec<Line<'static>>| Cell::from(Text::from(lines));
    let mut header_cells = vec![header_cell(if groups {
        vec![Line::from(""), Line::from(flag_title)]
    } else {
        vec![Line::from(flag_title)]
    })];
    if show_owner {
        let title = Line::styled(" OWNER", Style::new().add_modifier(Modifier::BOLD));
        header_cells.push(header_cell(if groups {
            vec![Line::from(""), title]
        } else {
            vec![title]
        }));
    }
    for (index, &col) in shown.iter().enumerate() {
        let failed = matches!(
            state.envs.get(col).map(|e| &e.load),
            Some(LoadState::Failed(_))
        );
        let mut style = Style::new().add_modifier(Modifier::BOLD);
        if col == state.col {
            style = style.add_modifier(Modifier::UNDERLINED);
        }
        if failed {
            style = style.fg(Color::Red).add_modifier(Modifier::REVERSED);
        }
        let title = Line::from(vec![
            Span::raw(" "),
            Span::styled(header_text(state, col, cell_width), style),
        ]);
        let mut lines = Vec::new();
        if let Some(group_line) = &group_line {
            lines.push(Line::styled(
                group_line[index].clone(),
                Style::new().add_modifier(Modifier::DIM),
            ));
        }
        lines.push(title);
        header_cells.push(header_cell(lines));
    }
    let mut widths = vec![Constraint::Length(key_width as u16)];
    if show_owner {
        widths.push(Constraint::Length(owner_width as u16));
    }
    widths.extend(
        shown
            .iter()
            .map(|_| Constraint::Length(geometry.col_width as u16)),
    );
    if geometry.scrolling {
        let right_mark = if hidden_right > 0 {
            format!("{hidden_right:>3} ▶")
        } else {
            String::new()
        };
        let mut lines = Vec::new();
        if groups {
            lines.push(Line::from(""));
        }
        lines.push(Line::styled(
            right_mark,
            Style::new().add_modifier(Modifier::BOLD),
        ));
        header_cells.push(header_cell(lines));
        widths.push(Constraint::Length(layout::GUTTER as u16));
    }
    let table = Table::new(rows, widths)
        .header(Row::new(header_cells).height(header_height))
        .block(block)
        .column_spacing(0)
        .flex(Flex::Start);
    frame.render_widget(table, area);
    if state.rows.is_empty() || state.visible.is_empty() || shown.is_empty() {
        let text = if shown.is_empty() && !state.envs.is_empty() {
            format!(
                "no environment matches the column filter `{}` (Esc clears it)",
                text::line(state.column_filter.value())
            )
        } else if state.rows.is_empty() {
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
            y: area.y + 1 + header_height,
            width: area.width.saturating_sub(4),
            height: area.height.saturating_sub(3),
        };
        frame.render_widget(
            Paragraph::new(text).wrap(ratatui::widgets::Wrap { trim: true }),
            inner,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::fit_cell;

    #[test]
    fn narrow_cells_use_compact_forms_then_a_marked_cut() {
        assert_eq!(fit_cell("ON 1 seg only", 13), "ON 1 seg only");
        assert_eq!(fit_cell("ON 1 seg only", 10), "1 seg only");
        assert_eq!(fit_cell("ON 33/33/34", 10), "33/33/34");
        assert_eq!(fit_cell("SERVING 2 seg only", 10), "2 seg only");
        assert_eq!(fit_cell("SERVING 50%", 10), "SERV 50%");
        assert_eq!(fit_cell("SERVING (code default)", 10), "SERV dflt");
        assert_eq!(fit_cell("code default", 10), "code dflt");
        assert_eq!(fit_cell("UNKNOWN (rule)", 10), "UNKNOWN?");
        assert_eq!(fit_cell("\"a-very-long-variant-value\"", 10), "\"a-very-l…");
        for text in [
            "KILLED, 12 seg ON",
            "OFF, 3 seg ON",
            "ON 33.3/33.3/33.4 +2 seg",
        ] {
            for width in 1..12 {
                assert!(
                    fit_cell(text, width).chars().count() <= width,
                    "{text} {width}"
                );
            }
        }
    }
}
