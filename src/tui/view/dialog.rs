//! The flip dialog: the sentence saying what will happen, the required note, the confirmation.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

use super::{SPINNER, centered};
use crate::tui::app::{DialogStage, FlipDialog, State};
use crate::{redact, text};

pub fn render(frame: &mut Frame, area: Rect, dialog: &FlipDialog, state: &State) {
    let danger = Style::new().fg(Color::Red).add_modifier(Modifier::BOLD);
    let bold = Style::new().add_modifier(Modifier::BOLD);
    let block = Block::new()
        .borders(Borders::ALL)
        .title(Span::styled(" confirm change ", danger));
    // A marked set: one sentence per cell, each made one inert line of its own.
    let mut lines: Vec<Line> = if dialog.set.is_empty() {
        vec![Line::styled(text::line(&dialog.sentence), danger)]
    } else {
        dialog
            .set
            .iter()
            .map(|r| {
                let sentence = crate::flip::describe(r.kind, &r.flag, &r.env, &r.seen, r.enabled);
                Line::styled(text::line(&sentence), danger)
            })
            .collect()
    };
    lines.push(Line::from(""));
    if let Some(warning) = &dialog.warning {
        lines.push(Line::styled(format!("! {}", redact::line(warning)), bold));
    }
    let field = |label: &str, value: &str, active: bool| {
        let cursor = if active { "█" } else { "" };
        Line::from(vec![
            Span::styled(format!("{label} "), bold),
            Span::raw(format!("{}{cursor}", text::line(value))),
        ])
    };
    match &dialog.stage {
        DialogStage::Note => {
            lines.push(field(
                "Audit note (required):",
                &crate::text::line(dialog.note.value()),
                true,
            ));
            lines.push(Line::from(""));
            lines.push(Line::from("Enter: next · Esc: cancel"));
        }
        DialogStage::Confirm => {
            lines.push(field(
                "Audit note:",
                &crate::text::line(dialog.note.value()),
                false,
            ));
            lines.push(Line::from(""));
            if dialog.protected && !dialog.set.is_empty() {
                lines.push(field(
                    &format!(
                        "Protected: {}. Type every protected name, space-separated:",
                        text::line(&dialog.expected)
                    ),
                    dialog.confirm.value(),
                    true,
                ));
                lines.push(Line::from("Enter: apply · Esc: cancel"));
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
                lines.push(Line::from("Enter: apply · Esc: cancel"));
            } else {
                lines.push(Line::styled("Apply now? y: apply · n/Esc: cancel", bold));
            }
        }
        DialogStage::Applying => {
            lines.push(field(
                "Audit note:",
                &crate::text::line(dialog.note.value()),
                false,
            ));
            lines.push(Line::from(""));
            lines.push(Line::from(format!("{} applying: audit written, calling the provider, then checking what services see…", SPINNER[state.spinner % SPINNER.len()])));
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
            lines.push(Line::from(""));
            lines.push(Line::from("Enter: close"));
        }
    }
    if let Some(error) = &dialog.error {
        lines.push(Line::styled(format!("! {}", redact::line(error)), danger));
    }
    let width = 76u16;
    let text_width = usize::from(width - 2);
    let rows: usize = lines
        .iter()
        .map(|line| line.width().max(1).div_ceil(text_width))
        .sum();
    let popup = centered(area, width, u16::try_from(rows + 2).unwrap_or(u16::MAX));
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines)
            .block(block)
            .wrap(Wrap { trim: false }),
        popup,
    );
}
