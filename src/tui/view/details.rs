//! The details pane: what the selected flag is, who owns it, when it should go, and how each
//! environment serves it.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};

use crate::model::{Removal, cell_text};
use crate::tui::app::State;
use crate::{redact, text};

pub fn render(frame: &mut Frame, area: Rect, state: &State) {
    let block = Block::new().borders(Borders::ALL).title(" details ");
    let Some(row) = state.selected_row() else {
        let text = match &state.focus {
            Some((env, flag)) if !flag.is_empty() => format!(
                "waiting for {env} to load: the link selects `{}` there once it has",
                crate::text::line(flag)
            ),
            _ => "no flag selected".to_string(),
        };
        frame.render_widget(Paragraph::new(text).block(block), area);
        return;
    };
    let meta = &row.meta;
    let bold = Style::new().add_modifier(Modifier::BOLD);
    let removal = match (meta.expected_removal, meta.removal(state.now.date_naive())) {
        (None, _) => Span::styled("no removal date (policy violation)", bold),
        (Some(date), Removal::Stale(days)) => Span::styled(
            format!("{date} STALE: {days} days overdue"),
            bold.add_modifier(Modifier::REVERSED),
        ),
        (Some(date), Removal::Overdue(days)) => {
            Span::styled(format!("{date} OVERDUE: {days} days"), bold)
        }
        (Some(date), _) => Span::raw(date.to_string()),
    };
    let mut lines = vec![Line::from(vec![
        Span::styled(text::line(&meta.key), bold),
        Span::raw(format!("  ({})", meta.kind.label())),
        Span::raw("  owner "),
        Span::styled(
            meta.owner
                .as_deref()
                .map(text::line)
                .unwrap_or_else(|| "NONE (policy violation)".into()),
            bold,
        ),
        Span::raw("  remove by "),
        removal,
    ])];
    // Vendor text is one inert line, the description cut to about two rows of the pane: it
    // cannot start a line of its own, nor push the environments' states out of the pane.
    let width = usize::from(area.width.saturating_sub(2)).max(1);
    lines.push(Line::from(match &meta.description {
        Some(description) => text::line_max(description, 2 * width),
        None => "(no description)".to_string(),
    }));
    if !meta.tags.is_empty() {
        lines.push(Line::from(text::line_max(
            &format!("tags: {}", meta.tags.join(", ")),
            width,
        )));
    }
    for (col, env) in state.envs.iter().enumerate() {
        let text = match state.flag_at(row, col) {
            Some(flag) => {
                let mut text = format!("{}: {}", env.name, cell_text(meta.kind, &flag.state));
                let overrides: Vec<String> =
                    flag.state.overrides.iter().map(|o| o.summary()).collect();
                if !overrides.is_empty() {
                    text.push_str(&format!("  overrides: {}", overrides.join(", ")));
                }
                text
            }
            None => match &env.load {
                crate::tui::app::LoadState::Failed(error) => format!("{}: ERROR {error}", env.name),
                crate::tui::app::LoadState::Loading => format!("{}: loading…", env.name),
                crate::tui::app::LoadState::Loaded => {
                    format!("{}: — (no such flag here)", env.name)
                }
            },
        };
        let mut text = match &env.read_only_reason {
            Some(reason) if !state.read_only => format!("{text}  [read-only: {reason}]"),
            _ => text,
        };
        // The newer of killswitch's last record and the vendor's last history entry.
        let vendor = state
            .vendor_last
            .get(&meta.key)
            .and_then(|envs| envs.get(&env.name))
            .and_then(Option::as_ref);
        let record = state.last_change(&env.name, &meta.key);
        match (record, vendor) {
            (Some(record), vendor) if vendor.is_none_or(|v| v.at <= record.at) => {
                text.push_str(&format!(
                    "  · last: {} by {} {} ago: {} (audit {})",
                    crate::text::line(&record.to),
                    crate::text::line(&record.operator),
                    age(state.now - record.at),
                    crate::text::line_max(&record.note, 60),
                    crate::text::line(&record.id),
                ));
            }
            (_, Some(entry)) => {
                text.push_str(&format!(
                    "  · last (vendor history): {} by {} {} ago{}",
                    crate::text::line_max(&entry.what, 40),
                    entry
                        .who
                        .as_deref()
                        .map(crate::text::line)
                        .unwrap_or_else(|| "someone the vendor did not record".into()),
                    age(state.now - entry.at),
                    entry
                        .comment
                        .as_deref()
                        .map(|c| format!(": {}", crate::text::line_max(c, 60)))
                        .unwrap_or_default(),
                ));
            }
            _ => {}
        }
        lines.push(Line::from(redact::line(&text)));
    }
    lines.push(Line::from(format!(
        "runbook: {}",
        meta.runbook
            .as_deref()
            .map(text::line)
            .unwrap_or_else(|| "(none)".into())
    )));
    frame.render_widget(
        Paragraph::new(lines).block(block).wrap(Wrap { trim: true }),
        area,
    );
}

/// "45 s", "12 min", "3 h", "2 d": how long ago, in the largest whole unit.
fn age(elapsed: chrono::Duration) -> String {
    let secs = elapsed.num_seconds().max(0);
    match secs {
        0..60 => format!("{secs} s"),
        60..3600 => format!("{} min", secs / 60),
        3600..86400 => format!("{} h", secs / 3600),
        _ => format!("{} d", secs / 86400),
    }
}
