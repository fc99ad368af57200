//! The help screen, generated from the active keymap: it cannot drift from what keys do.
//!
//! The mode help was opened from (the dashboard, or the flip dialog) is listed in full with each
//! binding's description; every other mode follows in one or two lines of keys and action names.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};

use super::centered;
use crate::text;
use crate::tui::app::State;

/// Sections of modes that only serve a change: not shown in read-only mode.
const WRITE_ONLY: &[&str] = &["dialog"];

/// The line-editing keys of the filters and the dialog's fields beyond the obvious ones
/// (fixed, like a shell's).
pub const TYPING: &[&str] = &[
    "ctrl-u clear",
    "ctrl-w delete a word",
    "ctrl-a/ctrl-e start/end",
];

/// `items` joined with ` · ` in lines of at most `width` characters.
fn wrap(items: &[String], width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for item in items {
        match lines.last_mut() {
            Some(line) if line.chars().count() + 3 + item.chars().count() <= width => {
                line.push_str(" · ");
                line.push_str(item);
            }
            _ => lines.push(item.clone()),
        }
    }
    lines
}

/// The full list of one mode: keys right-aligned to `key_width`, then the description.
fn full<'a>(rows: &[(String, String)], key_width: usize, bold: Style) -> Vec<Line<'a>> {
    rows.iter()
        .map(|(keys, desc)| {
            Line::from(vec![
                Span::styled(format!("{keys:>key_width$}  "), bold),
                Span::raw(text::line(desc)),
            ])
        })
        .collect()
}

pub fn render(frame: &mut Frame, area: Rect, state: &State) {
    let bold = Style::new().add_modifier(Modifier::BOLD);
    let keymap = &state.keymap;
    let read_only = state.read_only;
    let from_dialog = state.help_return.is_some();
    let main = if from_dialog {
        keymap.dialog.help_lines(read_only)
    } else {
        keymap.dashboard.help_lines(read_only)
    };
    let key_width = main
        .iter()
        .map(|(keys, _)| keys.chars().count())
        .max()
        .unwrap_or(4)
        .max(10);
    // Room for the short lines beside their titles: the screen less borders and margins.
    let room = usize::from(area.width)
        .saturating_sub(key_width + 6)
        .clamp(30, 96);
    let mut lines: Vec<Line> = Vec::new();
    if from_dialog {
        lines.push(Line::styled("In the flip dialog", bold));
    }
    lines.extend(full(&main, key_width, bold));
    lines.push(Line::from(""));
    // Every other mode in short; read-only offers no mode that only writes.
    let shown = if from_dialog { "dialog" } else { "dashboard" };
    let mut others: Vec<(&str, Vec<String>)> = keymap
        .summaries(read_only)
        .into_iter()
        .filter(|(section, _, _)| *section != shown && !(read_only && WRITE_ONLY.contains(section)))
        .map(|(_, title, items)| (title, items))
        .collect();
    others.push(("typing", TYPING.iter().map(|s| s.to_string()).collect()));
    for (title, items) in others {
        for (index, line) in wrap(&items, room).into_iter().enumerate() {
            let title = if index == 0 { title } else { "" };
            lines.push(Line::from(vec![
                Span::styled(format!("{title:>key_width$}  "), bold),
                Span::raw(line),
            ]));
        }
    }
    if read_only {
        lines.push(Line::from(""));
        lines.push(Line::styled(
            "READ-ONLY: flips are disabled (started with --read-only).",
            bold,
        ));
    }
    lines.push(Line::from(""));
    lines.push(Line::from(format!(
        "keymap: {}  ·  any key closes",
        text::line(&keymap.origin)
    )));
    // A terminal too short for every line: say how much is missing instead of cutting silently.
    let room = usize::from(area.height.saturating_sub(2));
    if lines.len() > room && room > 0 {
        let missing = lines.len() - room + 1;
        lines.truncate(room - 1);
        lines.push(Line::styled(
            format!("… {missing} more lines: enlarge the terminal"),
            bold,
        ));
    }
    let height = u16::try_from(lines.len() + 2).unwrap_or(u16::MAX);
    let width = lines.iter().map(|line| line.width()).max().unwrap_or(40) + 4;
    let popup = centered(area, u16::try_from(width).unwrap_or(u16::MAX), height);
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines).block(Block::new().borders(Borders::ALL).title(" help ")),
        popup,
    );
}
