//! The audit view: killswitch's own audit records and the vendor's history, one section per
//! environment. Lines are never wrapped, so the scroll position maps to lines one to one and
//! scrolling stops at the end.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};

use super::centered;
use crate::tui::app::AuditView;
use crate::{redact, text};

/// Every line of the view, in order, wrapped at `width` characters (continuations indented), so
/// the scroll position maps to rows one to one and a long note is read in full.
pub fn lines(view: &AuditView, width: usize) -> Vec<Line<'static>> {
    let width = width.max(16);
    let mut rows = Vec::new();
    for line in logical_lines(view) {
        let style = line.style;
        let span_style = line.spans.first().map(|s| s.style).unwrap_or_default();
        let text: String = line.spans.iter().map(|s| s.content.as_ref()).collect();
        let chars: Vec<char> = text.chars().collect();
        if chars.len() <= width {
            rows.push(line);
            continue;
        }
        let mut start = 0;
        let mut first = true;
        while start < chars.len() {
            let room = if first { width } else { width - 4 };
            let end = (start + room).min(chars.len());
            let piece: String = chars[start..end].iter().collect();
            let piece = if first { piece } else { format!("    {piece}") };
            rows.push(Line::from(Span::styled(piece, span_style)).style(style));
            start = end;
            first = false;
        }
    }
    rows
}

/// The view's lines before wrapping.
fn logical_lines(view: &AuditView) -> Vec<Line<'static>> {
    let bold = Style::new().add_modifier(Modifier::BOLD);
    let mut lines = Vec::new();
    let records = match &view.records {
        None => {
            lines.push(Line::from("loading…"));
            return lines;
        }
        Some(Err(error)) => {
            lines.push(Line::from(format!(
                "cannot read the audit log: {}",
                redact::line(error)
            )));
            &[][..]
        }
        Some(Ok(records)) => records.as_slice(),
    };
    for env in &view.envs {
        if !lines.is_empty() {
            lines.push(Line::from(""));
        }
        lines.push(Line::styled(format!("── {env} ──"), bold));
        let mine: Vec<_> = records.iter().rev().filter(|r| &r.env == env).collect();
        lines.push(Line::from("killswitch audit log (newest first):"));
        if mine.is_empty() {
            lines.push(Line::from("  no records"));
        }
        for record in mine {
            let result = record
                .result
                .map(|r| format!("{r:?}").to_lowercase())
                .unwrap_or_else(|| "intent".into());
            lines.push(Line::from(format!(
                "  {} {} {} {} {}->{} [{}] {} (audit {}) — {}",
                record.at.format("%Y-%m-%d %H:%M:%S"),
                redact::line(&record.operator),
                redact::line(&record.action),
                redact::line(&record.flag),
                redact::line(&record.from),
                redact::line(&record.to),
                result,
                redact::line(&record.env),
                redact::line(&record.id),
                redact::line(&record.note)
            )));
        }
        if let Some((_, history)) = view.history.iter().find(|(e, _)| e == env) {
            lines.push(Line::from("vendor history (newest first):"));
            match history {
                Err(error) => lines.push(Line::from(format!(
                    "  unavailable: {}",
                    redact::line(error)
                ))),
                Ok(entries) if entries.is_empty() => lines.push(Line::from("  no entries")),
                Ok(entries) => {
                    for entry in entries {
                        let who = entry
                            .who
                            .as_deref()
                            .map(redact::line)
                            .unwrap_or_else(|| "(the vendor did not record who)".into());
                        lines.push(Line::from(format!(
                            "  {} by {who}: {}{}",
                            entry.at.format("%Y-%m-%d %H:%M:%S"),
                            redact::line(&entry.what),
                            entry
                                .comment
                                .as_deref()
                                .map(|c| format!(" — {}", redact::line(c)))
                                .unwrap_or_default()
                        )));
                    }
                }
            }
        }
    }
    lines
}

/// The popup inside a screen of `area`.
fn popup(area: Rect) -> Rect {
    centered(
        area,
        area.width.saturating_sub(4),
        area.height.saturating_sub(2),
    )
}

/// The popup's text width on a screen of `width` x `height`.
pub fn text_width(width: u16, height: u16) -> usize {
    usize::from(
        popup(Rect::new(0, 0, width, height))
            .width
            .saturating_sub(2),
    )
}

/// How many lines fit inside the popup on a screen of `width` x `height`.
pub fn page(width: u16, height: u16) -> usize {
    usize::from(
        popup(Rect::new(0, 0, width, height))
            .height
            .saturating_sub(2),
    )
    .max(1)
}

/// `hint`: the view's keys from the keymap, on its bottom border.
pub fn render(frame: &mut Frame, area: Rect, view: &AuditView, hint: &str) {
    let popup = popup(area);
    frame.render_widget(Clear, popup);
    let scroll = u16::try_from(view.scroll).unwrap_or(u16::MAX);
    frame.render_widget(
        Paragraph::new(lines(view, usize::from(popup.width.saturating_sub(2))))
            .block(
                Block::new()
                    .borders(Borders::ALL)
                    .title(format!(" {} ", text::line(&view.title)))
                    .title_bottom(format!(" {hint} ")),
            )
            .scroll((scroll, 0)),
        popup,
    );
}
