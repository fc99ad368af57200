//! The help screen, generated from the active keymap: it cannot drift from what keys do.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};

use super::centered;
use crate::tui::app::State;

pub fn render(frame: &mut Frame, area: Rect, state: &State) {
    let bold = Style::new().add_modifier(Modifier::BOLD);
    let bindings = state.keymap.help_lines(state.read_only);
    let key_width = bindings
        .iter()
        .map(|(keys, _)| keys.chars().count())
        .max()
        .unwrap_or(4);
    let mut lines: Vec<Line> = bindings
        .iter()
        .map(|(keys, desc)| {
            Line::from(vec![
                Span::styled(format!("{keys:>key_width$}  "), bold),
                Span::raw(desc.clone()),
            ])
        })
        .collect();
    lines.push(Line::from(""));
    lines.push(Line::styled(
        "In the filters (flags /, columns :) and the flip dialog",
        bold,
    ));
    lines.push(Line::from(format!(
        "{:>key_width$}  Accept / next step",
        "enter"
    )));
    lines.push(Line::from(format!(
        "{:>key_width$}  Cancel: nothing changes",
        "esc"
    )));
    lines.push(Line::from(format!(
        "{:>key_width$}  Clear the line",
        "ctrl-u"
    )));
    lines.push(Line::from(format!(
        "{:>key_width$}  Dialog: back from the confirmation to the note",
        "shift-tab"
    )));
    lines.push(Line::from(format!(
        "{:>key_width$}  Dialog: this help (Esc keeps the note as a draft)",
        "f1"
    )));
    lines.push(Line::from(format!(
        "{:>key_width$}  Column filter: prod*, *-eu, eu, a group; several with spaces",
        ":"
    )));
    lines.push(Line::from(format!(
        "{:>key_width$}  In the environment list: move; enter goes to that column",
        "j/k"
    )));
    if state.read_only {
        lines.push(Line::from(""));
        lines.push(Line::styled(
            "READ-ONLY: flips are disabled (started with --read-only).",
            bold,
        ));
    }
    lines.push(Line::from(""));
    lines.push(Line::from(format!(
        "keymap: {}  ·  any key closes",
        state.keymap.origin
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
