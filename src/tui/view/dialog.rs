//! The flip dialog: the sentence saying what will happen, the required note, the confirmation.
//! The keys of the current step sit on the dialog's bottom border, so they are never cut.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

use super::{SPINNER, centered};
use crate::tui::app::{DialogStage, FlipDialog, State, dialog_hint};
use crate::{redact, text};

/// The dialog's width (borders included), at most the screen's.
const WIDTH: u16 = 76;

/// The end of `s` in at most `max` characters, with `…` where the start was cut: a field being
/// typed shows where the cursor is.
fn tail(s: &str, max: usize) -> String {
    let count = s.chars().count();
    if count <= max {
        return s.to_string();
    }
    let keep = max.saturating_sub(1);
    let mut cut: String = "…".into();
    cut.extend(s.chars().skip(count - keep));
    cut
}

fn lines<'a>(dialog: &'a FlipDialog, state: &State, text_width: usize) -> Vec<Line<'a>> {
    let danger = Style::new().fg(Color::Red).add_modifier(Modifier::BOLD);
    let bold = Style::new().add_modifier(Modifier::BOLD);
    // A marked set: one sentence per cell, each made one inert line of its own.
    let mut lines: Vec<Line> = if dialog.set.is_empty() {
        vec![Line::styled(text::line(&dialog.sentence), danger)]
    } else {
        dialog
            .set
            .iter()
            .map(|r| {
                let sentence =
                    crate::flip::describe_change(r.kind, &r.flag, &r.env, &r.seen, &r.change);
                Line::styled(text::line(&sentence), danger)
            })
            .collect()
    };
    lines.push(Line::from(""));
    if let Some(undone) = &dialog.undoes {
        lines.push(Line::from(text::line(&format!(
            "UNDO of {} by {} at {} (audit {}): {} -> {} · note: {}",
            undone.action,
            undone.operator,
            undone.at.format("%Y-%m-%d %H:%M:%S UTC"),
            undone.id,
            undone.from,
            undone.to,
            undone.note
        ))));
    }
    if let Some(part) = &dialog.rollout {
        lines.extend(super::rollout::lines(dialog, part, text_width));
    }
    if let Some(warning) = &dialog.warning {
        lines.push(Line::styled(format!("! {}", redact::line(warning)), bold));
    }
    if dialog.from_draft && dialog.stage == DialogStage::Note {
        lines.push(Line::from("(the note you typed before, kept as a draft)"));
    }
    // Each field stays on one line, so a long note never pushes the keys off the screen.
    let field = |label: &str, value: &str, active: bool| {
        let cursor = if active { "█" } else { "" };
        let room = text_width.saturating_sub(label.chars().count() + 2).max(8);
        let shown = text::line(value);
        let shown = if active {
            tail(&shown, room)
        } else {
            text::cut_middle(&shown, room)
        };
        Line::from(vec![
            Span::styled(format!("{label} "), bold),
            Span::raw(format!("{shown}{cursor}")),
        ])
    };
    match &dialog.stage {
        DialogStage::Target => {}
        DialogStage::Note => {
            lines.push(field("Audit note (required):", dialog.note.value(), true));
        }
        DialogStage::Confirm => {
            lines.push(field("Audit note:", dialog.note.value(), false));
            // A marked set, or a rollout whose write reaches other protected environments.
            if dialog.protected && (!dialog.set.is_empty() || dialog.expected != dialog.request.env)
            {
                lines.push(field(
                    &format!(
                        "Protected: {}. Type every protected name, space-separated:",
                        text::line(&dialog.expected)
                    ),
                    dialog.confirm.value(),
                    true,
                ));
            } else if dialog.protected {
                lines.push(field(
                    &format!(
                        "{} is protected. Type `{}` to confirm:",
                        text::line(&dialog.request.env),
                        text::line(&dialog.request.env)
                    ),
                    &crate::text::line(dialog.confirm.value()),
                    true,
                ));
            } else {
                lines.push(Line::styled("Apply now? y: apply · n/Esc: cancel", bold));
            }
        }
        DialogStage::Applying => {
            lines.push(field("Audit note:", dialog.note.value(), false));
            lines.push(Line::from(format!(
                "{} applying: audit written, calling the provider, then checking what services see…",
                SPINNER[state.spinner % SPINNER.len()]
            )));
        }
        DialogStage::Done { ok, lines: result } => {
            let style = if *ok {
                Style::new().fg(Color::Green).add_modifier(Modifier::BOLD)
            } else {
                danger
            };
            for (index, text) in result.iter().enumerate() {
                lines.push(if index == 0 {
                    Line::styled(redact::line(text), style)
                } else {
                    Line::from(redact::line(text))
                });
            }
        }
    }
    if let Some(error) = &dialog.error {
        lines.push(Line::styled(format!("! {}", redact::line(error)), danger));
    }
    lines
}

fn paragraph<'a>(lines: Vec<Line<'a>>) -> Paragraph<'a> {
    Paragraph::new(lines).wrap(Wrap { trim: false })
}

/// Rows the dialog needs inside `area` (borders included), as the text wraps at its width.
pub fn height(area: Rect, dialog: &FlipDialog, state: &State) -> u16 {
    let width = WIDTH.min(area.width).saturating_sub(2);
    let rows = paragraph(lines(dialog, state, usize::from(width))).line_count(width);
    u16::try_from(rows + 2).unwrap_or(u16::MAX)
}

/// Whether the whole dialog fits: when it does not, nothing typed is acted on.
pub fn fits(area: Rect, dialog: &FlipDialog, state: &State) -> bool {
    height(area, dialog, state) <= area.height
}

pub fn render(frame: &mut Frame, area: Rect, dialog: &FlipDialog, state: &State) {
    let danger = Style::new().fg(Color::Red).add_modifier(Modifier::BOLD);
    let hint = Line::styled(
        format!(" {} ", dialog_hint(dialog, &state.keymap)),
        Style::new().add_modifier(Modifier::BOLD),
    );
    let block = Block::new()
        .borders(Borders::ALL)
        .title(Span::styled(
            if dialog.rollout.is_some() {
                " confirm rollout "
            } else {
                " confirm change "
            },
            danger,
        ))
        .title_bottom(hint);
    let popup = centered(area, WIDTH, height(area, dialog, state));
    frame.render_widget(Clear, popup);
    let text_width = usize::from(popup.width.saturating_sub(2));
    frame.render_widget(
        paragraph(lines(dialog, state, text_width)).block(block),
        popup,
    );
}
