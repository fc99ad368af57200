//! Drawing: pure functions of `&State`. Nothing here does I/O or changes state, so every
//! screen is a snapshot test (ratatui's TestBackend).

pub mod audit;
pub mod dashboard;
mod details;
mod dialog;
mod environments;
mod help;
mod rollout;
mod status_bar;

use ratatui::Frame;
use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use super::app::{Mode, State};
use super::layout;

/// Spinner frames for loading environments and a flip in flight.
pub const SPINNER: &[&str] = &["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

/// Whether the current screen fits the terminal. When it does not, "Terminal too small" is
/// shown and `update` acts on no key but quit.
pub fn drawable(state: &State) -> bool {
    let area = Rect::new(0, 0, state.size.0, state.size.1);
    if layout::too_small(area) {
        return false;
    }
    match &state.mode {
        Mode::Flip(dialog) => dialog::fits(area, dialog, state),
        _ => true,
    }
}

pub fn render(frame: &mut Frame, state: &State) {
    let area = frame.area();
    if layout::too_small(area) || !drawable(state) {
        render_too_small(frame, area, state);
        return;
    }
    let areas = layout::areas(area, state.show_details);
    dashboard::render_title(frame, areas.title, state);
    dashboard::render_table(frame, areas.table, state);
    if let Some(details_area) = areas.details {
        details::render(frame, details_area, state);
    }
    status_bar::render_message(frame, areas.message, state);
    status_bar::render_status(frame, areas.status, state);
    status_bar::render_help_bar(frame, areas.help, state);
    match &state.mode {
        Mode::Help => help::render(frame, area, state),
        Mode::Flip(dialog) => dialog::render(frame, area, dialog, state),
        Mode::Audit(view) => audit::render(frame, area, view, &status_bar::audit_hint(state)),
        Mode::Environments(selected) => environments::render(frame, area, state, *selected),
        Mode::Normal | Mode::Filter | Mode::ColumnFilter => {}
    }
}

fn render_too_small(frame: &mut Frame, area: Rect, state: &State) {
    let mut text = vec![
        Line::styled(
            "Terminal too small",
            Style::new().add_modifier(Modifier::BOLD),
        ),
        Line::from(format!(
            "{}x{} — killswitch needs at least {}x{}",
            area.width,
            area.height,
            layout::MIN_WIDTH,
            layout::MIN_HEIGHT
        )),
        Line::from("Enlarge the window, or use `killswitch status`."),
        Line::from("Keys wait until it fits; q quits."),
    ];
    if matches!(state.mode, Mode::Flip(_)) {
        text.insert(
            1,
            Line::from("The open kill/restore dialog is kept; nothing is applied."),
        );
    }
    frame.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }), area);
}

/// `spans` cut to `width` cells: the span that overflows is cut with a visible `…` and the
/// rest dropped.
pub fn fit_spans(spans: Vec<Span<'static>>, width: usize) -> Vec<Span<'static>> {
    let mut room = width;
    let mut out = Vec::with_capacity(spans.len());
    for span in spans {
        let len = span.content.chars().count();
        if len <= room {
            room -= len;
            out.push(span);
            continue;
        }
        let cut = crate::text::cut_end(&span.content, room);
        out.push(Span::styled(cut, span.style));
        break;
    }
    out
}

/// A centred rectangle of at most `width` x `height` inside `area`.
pub fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let [row] = Layout::vertical([Constraint::Length(height.min(area.height))])
        .flex(Flex::Center)
        .areas(area);
    let [cell] = Layout::horizontal([Constraint::Length(width.min(area.width))])
        .flex(Flex::Center)
        .areas(row);
    cell
}
