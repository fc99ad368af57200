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

/// The flag column never gets narrower than this (marker included) while a key needs it.
pub const KEY_MIN: usize = 20;
/// An environment column's narrowest and widest width, its one leading space included.
pub const COL_MIN: usize = 11;
pub const COL_MAX: usize = 24;
/// Room at the right edge for "12 ▶" when columns are hidden to the right.
pub const GUTTER: usize = 5;

/// From this many columns on, the matrix also shows each flag's owner.
pub const OWNER_COLUMN_FROM: u16 = 160;

/// The owner column's width, its leading space included.
pub const OWNER_WIDTH: usize = 24;

/// How the matrix shares its width: the flag column first, then as many environment columns
/// as fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Columns {
    /// The flag column, selection marker included.
    pub key_width: usize,
    /// Each environment column, its leading space included.
    pub col_width: usize,
    /// How many environment columns are drawn at once.
    pub visible: usize,
    /// Not every column fits: the header counts the hidden ones.
    pub scrolling: bool,
    /// The owner column's width: [`OWNER_WIDTH`] from [`OWNER_COLUMN_FROM`] columns on, else 0.
    pub owner_width: usize,
}

/// The matrix geometry for a table `width` cells wide (borders included), `env_count` columns
/// to show and flag keys up to `longest_key` characters. The flag column keeps its longest key
/// up to a cap (two fifths of the width, at most 60), never less than [`KEY_MIN`]; the rest
/// goes to environment columns, which scroll when they do not all fit at [`COL_MIN`].
pub fn columns(width: u16, env_count: usize, longest_key: usize) -> Columns {
    let owner_width = if width >= OWNER_COLUMN_FROM {
        OWNER_WIDTH
    } else {
        0
    };
    let inner = usize::from(width.saturating_sub(2)).saturating_sub(owner_width);
    let cap = (inner * 2 / 5).clamp(KEY_MIN, 60);
    let key_width = (longest_key + 1)
        .clamp(6, cap)
        .min(inner.saturating_sub(COL_MIN + GUTTER).max(6));
    let avail = inner.saturating_sub(key_width);
    if env_count == 0 {
        return Columns {
            key_width,
            col_width: COL_MIN,
            visible: 0,
            scrolling: false,
            owner_width,
        };
    }
    if env_count * COL_MIN <= avail {
        return Columns {
            key_width,
            col_width: (avail / env_count).min(COL_MAX),
            visible: env_count,
            scrolling: false,
            owner_width,
        };
    }
    let room = avail.saturating_sub(GUTTER);
    let visible = (room / COL_MIN).clamp(1, env_count);
    Columns {
        key_width,
        col_width: (room / visible).clamp(1, COL_MAX),
        visible,
        scrolling: visible < env_count,
        owner_width,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flag_column_is_never_sacrificed() {
        for width in [60u16, 80, 120, 200] {
            for envs in [3usize, 8, 12, 30] {
                let geometry = columns(width, envs, 40);
                assert!(geometry.key_width >= KEY_MIN, "{width} {envs} {geometry:?}");
                assert!(geometry.visible >= 1);
                let used = geometry.key_width
                    + geometry.visible * geometry.col_width
                    + if geometry.scrolling { GUTTER } else { 0 };
                assert!(
                    used <= usize::from(width) - 2,
                    "{width} {envs} {geometry:?}"
                );
                assert_eq!(geometry.scrolling, geometry.visible < envs);
            }
        }
        // A long key keeps its full length while there is room for it.
        assert_eq!(columns(120, 3, 40).key_width, 41);
        assert!(columns(80, 30, 40).key_width < 41);
        // Short keys do not waste room.
        assert_eq!(columns(120, 3, 10).key_width, 11);
    }
}
