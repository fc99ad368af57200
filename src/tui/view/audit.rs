//! The audit view: killswitch's own audit records for the selected flag, and the vendor's
//! history where the provider keeps one.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

use super::centered;
use crate::tui::app::AuditView;
use crate::{redact, text};

pub fn render(frame: &mut Frame, area: Rect, view: &AuditView) {
    let bold = Style::new().add_modifier(Modifier::BOLD);
    let mut lines = vec![Line::styled("killswitch audit log (newest first)", bold)];
    match &view.records {
        None => lines.push(Line::from("loading…")),
        Some(Err(error)) => lines.push(Line::from(redact::line(&format!(
            "cannot read the audit log: {error}"
        )))),
        Some(Ok(records)) if records.is_empty() => lines.push(Line::from("no records")),
        Some(Ok(records)) => {
            for record in records.iter().rev() {
                let result = record
                    .result
                    .map(|r| format!("{r:?}").to_lowercase())
                    .unwrap_or_else(|| "intent".into());
                // One record, one line: a note cannot start a forged record.
                lines.push(Line::from(redact::line(&format!(
                    "{} {} {} {} {}->{} [{}] {} — {}",
                    record.at.format("%Y-%m-%d %H:%M:%S"),
                    record.operator,
                    record.action,
                    record.env,
                    record.from,
                    record.to,
                    result,
                    record.flag,
                    record.note
                ))));
            }
        }
    }
    if let Some(history) = &view.history {
        lines.push(Line::from(""));
        lines.push(Line::styled("vendor history", bold));
        match history {
            Err(error) => lines.push(Line::from(redact::line(&format!("unavailable: {error}")))),
            Ok(entries) if entries.is_empty() => lines.push(Line::from("no entries")),
            Ok(entries) => {
                for entry in entries {
                    lines.push(Line::from(redact::line(&format!(
                        "{} {} {}{}",
                        entry.at.format("%Y-%m-%d %H:%M:%S"),
                        entry.who.clone().unwrap_or_else(|| "?".into()),
                        entry.what,
                        entry
                            .comment
                            .as_ref()
                            .map(|c| format!(" — {c}"))
                            .unwrap_or_default()
                    ))));
                }
            }
        }
    }
    let popup = centered(
        area,
        area.width.saturating_sub(4),
        area.height.saturating_sub(2),
    );
    frame.render_widget(Clear, popup);
    let scroll = u16::try_from(view.scroll).unwrap_or(u16::MAX);
    frame.render_widget(
        Paragraph::new(lines)
            .block(Block::new().borders(Borders::ALL).title(format!(
                " {} · j/k scroll · any other key closes ",
                text::line(&view.title)
            )))
            .wrap(Wrap { trim: false })
            .scroll((scroll, 0)),
        popup,
    );
}
