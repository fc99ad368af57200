//! The details pane: what the selected flag is, who owns it, when it should go, and how each
//! environment serves it.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};

use crate::model::{Removal, cell_text};
use crate::tui::app::{LoadState, State};
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
    let width = usize::from(area.width.saturating_sub(2)).max(1);
    let height = usize::from(area.height.saturating_sub(2));
    let key = text::line(&meta.key);
    let owner = meta
        .owner
        .as_deref()
        .map(text::line)
        .unwrap_or_else(|| "NONE (policy violation)".into());
    let about = vec![
        Span::raw(format!("  ({})", meta.kind.label())),
        Span::raw("  owner "),
        Span::styled(owner, bold),
        Span::raw("  remove by "),
        removal,
    ];
    let about_width: usize = about.iter().map(Span::width).sum();
    // The full key always shows (wrapped if it must); what follows it moves to its own line
    // when both do not fit.
    let mut lines = Vec::new();
    let mut used;
    if key.chars().count() + about_width <= width {
        let mut spans = vec![Span::styled(key, bold)];
        spans.extend(about);
        lines.push(Line::from(spans));
        used = 1;
    } else {
        used = key.chars().count().div_ceil(width).max(1) + 1;
        lines.push(Line::styled(key, bold));
        let about = Line::from(about).to_string();
        lines.push(Line::from(text::cut_end(about.trim_start(), width)));
    }
    let tags = (!meta.tags.is_empty()).then(|| {
        text::cut_end(
            &text::line(&format!("tags: {}", meta.tags.join(", "))),
            width,
        )
    });
    let runbook = text::cut_end(
        &format!(
            "runbook: {}",
            meta.runbook
                .as_deref()
                .map(text::line)
                .unwrap_or_else(|| "(none)".into())
        ),
        width,
    );
    used += 1 + usize::from(tags.is_some());
    // Rows left for the description (at least one) and the environments.
    let left = height.saturating_sub(used + 1);
    let fits = state.envs.len() <= left;
    // Full lines only for what is shown in full: every environment when they fit, else the
    // selected one.
    let env_lines: Vec<String> = if fits {
        (0..state.envs.len())
            .map(|col| env_line(state, row, col))
            .collect()
    } else {
        Vec::new()
    };
    let description_rows = if fits {
        (left - env_lines.len() + 1).clamp(1, 3)
    } else {
        1
    };
    let description = meta
        .description
        .as_deref()
        .map(text::line)
        .unwrap_or_else(|| "(no description)".into());
    lines.extend(
        wrap_words(&description, width, description_rows)
            .into_iter()
            .map(Line::from),
    );
    if let Some(tags) = tags {
        lines.push(Line::from(tags));
    }
    if fits {
        lines.extend(
            env_lines
                .iter()
                .map(|line| Line::from(text::cut_end(line, width))),
        );
    } else if left > 0 {
        // Too many environments for a line each: the selected one in full, the others packed.
        let selected = env_line(state, row, state.col);
        lines.push(Line::styled(text::cut_end(&selected, width), bold));
        let others: Vec<String> = state
            .envs
            .iter()
            .enumerate()
            .filter(|(col, _)| *col != state.col)
            .map(|(col, env)| {
                let cell = state.cell_text(row, col).unwrap_or_else(|| match env.load {
                    LoadState::Failed(_) => "ERROR".into(),
                    LoadState::Loading => "…".into(),
                    LoadState::Loaded => "—".into(),
                });
                format!("{} {cell}", text::line(&env.name))
            })
            .collect();
        lines.extend(pack(&others, width, left - 1).into_iter().map(Line::from));
    }
    lines.push(Line::from(runbook));
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

/// One environment's full line: its state in full wording, overrides, errors, read-only.
fn env_line(state: &State, row: &crate::tui::app::Row, col: usize) -> String {
    let Some(env) = state.envs.get(col) else {
        return String::new();
    };
    let name = text::line(&env.name);
    let text = match state.flag_at(row, col) {
        Some(flag) => {
            let mut text = format!("{name}: {}", cell_text(row.meta.kind, &flag.state));
            let overrides: Vec<String> = flag.state.overrides.iter().map(|o| o.summary()).collect();
            if !overrides.is_empty() {
                text.push_str(&format!(
                    "  overrides: {}",
                    text::line(&overrides.join(", "))
                ));
            }
            text
        }
        None => match &env.load {
            LoadState::Failed(error) => format!("{name}: ERROR {}", text::line(error)),
            LoadState::Loading => format!("{name}: loading…"),
            LoadState::Loaded => format!("{name}: — (no such flag here)"),
        },
    };
    let mut text = match &env.read_only_reason {
        Some(reason) if !state.read_only => format!("{text}  [read-only: {reason}]"),
        _ => text,
    };
    text.push_str(&last_change(state, &env.name, &row.meta.key));
    // Errors and reasons come from vendors and Vault.
    redact::line(&text)
}

/// "  · last: KILLED by alice 3 h ago: INC-42 (audit …)": the newer of killswitch's last
/// record for the flag in `env` and the vendor's last history entry; empty when neither.
fn last_change(state: &State, env: &str, flag: &str) -> String {
    let vendor = state
        .vendor_last
        .get(flag)
        .and_then(|envs| envs.get(env))
        .and_then(Option::as_ref);
    let record = state.last_change(env, flag);
    match (record, vendor) {
        (Some(record), vendor) if vendor.is_none_or(|v| v.at <= record.at) => format!(
            "  · last: {} by {} {} ago: {} (audit {})",
            text::line(&record.to),
            text::line(&record.operator),
            age(state.now - record.at),
            text::line_max(&record.note, 60),
            text::line(&record.id),
        ),
        (_, Some(entry)) => format!(
            "  · last (vendor history): {} by {} {} ago{}",
            text::line_max(&entry.what, 40),
            entry
                .who
                .as_deref()
                .map(text::line)
                .unwrap_or_else(|| "someone the vendor did not record".into()),
            age(state.now - entry.at),
            entry
                .comment
                .as_deref()
                .map(|c| format!(": {}", text::line_max(c, 60)))
                .unwrap_or_default(),
        ),
        _ => String::new(),
    }
}

/// `text` word-wrapped into at most `rows` lines of `width`; the last cut with `…` if more.
fn wrap_words(text: &str, width: usize, rows: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut current = String::new();
    for word in text.split(' ') {
        let needed =
            current.chars().count() + usize::from(!current.is_empty()) + word.chars().count();
        if needed > width && !current.is_empty() {
            lines.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(word);
    }
    lines.push(current);
    let lines: Vec<String> = lines
        .into_iter()
        .flat_map(|line| {
            // A word longer than the width: split it.
            let chars: Vec<char> = line.chars().collect();
            chars
                .chunks(width.max(1))
                .map(|chunk| chunk.iter().collect::<String>())
                .collect::<Vec<_>>()
        })
        .collect();
    if lines.len() <= rows {
        return lines;
    }
    let mut kept: Vec<String> = lines[..rows.saturating_sub(1)].to_vec();
    let rest = lines[rows.saturating_sub(1)..].join(" ");
    kept.push(text::cut_end(&rest, width));
    kept
}

/// `items` joined with ` · ` into at most `rows` lines of `width`; what does not fit is
/// counted at the end (`… +12 more`).
fn pack(items: &[String], width: usize, rows: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut current = String::new();
    for (index, item) in items.iter().enumerate() {
        let item = text::cut_end(item, width);
        let needed =
            current.chars().count() + if current.is_empty() { 0 } else { 3 } + item.chars().count();
        if needed > width && !current.is_empty() {
            if lines.len() + 1 == rows {
                let more = format!(" · +{} more", items.len() - index);
                let room = width.saturating_sub(more.chars().count());
                return push_last(lines, text::cut_end(&current, room) + &more);
            }
            lines.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push_str(" · ");
        }
        current.push_str(&item);
    }
    if !current.is_empty() && lines.len() < rows {
        lines.push(current);
    }
    lines
}

fn push_last(mut lines: Vec<String>, last: String) -> Vec<String> {
    lines.push(last);
    lines
}
