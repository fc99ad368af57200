//! The screen's layout, shared by drawing and by `update` (which needs the page size).

use ratatui::layout::{Constraint, Layout, Rect};

/// Below this the dashboard cannot be drawn legibly; a message says so instead.
pub const MIN_WIDTH: u16 = 60;
pub const MIN_HEIGHT: u16 = 12;
/// Height of the details pane, borders included.
pub const DETAILS_HEIGHT: u16 = 9;

pub struct Areas {
    pub title: Rect,
    pub table: Rect,
    pub details: Option<Rect>,
    pub message: Rect,
    pub status: Rect,
    pub help: Rect,
}

pub fn too_small(area: Rect) -> bool {
    area.width < MIN_WIDTH || area.height < MIN_HEIGHT
}

pub fn areas(area: Rect, details: bool) -> Areas {
    // The details pane gives way first when the terminal is short.
    let show_details = details && area.height >= MIN_HEIGHT + DETAILS_HEIGHT - 2;
    let details_height = if show_details { DETAILS_HEIGHT } else { 0 };
    let [title, table, details_area, message, status, help] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(4),
        Constraint::Length(details_height),
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(area);
    Areas {
        title,
        table,
        details: show_details.then_some(details_area),
        message,
        status,
        help,
    }
}

/// How many flag rows the table shows (inside its border, below its header).
pub fn table_rows(width: u16, height: u16, details: bool) -> usize {
    let areas = areas(Rect::new(0, 0, width, height), details);
    usize::from(areas.table.height.saturating_sub(3)).max(1)
}
