//! Environment columns at scale: the column filter, groups, and horizontal scrolling that keeps
//! the selected column in view. `State::col` stays an index into `State::envs`; `columns` is
//! the filtered display order and `col_offset` the first shown position in it.

use std::collections::BTreeMap;

use super::app::State;
use super::layout;

impl State {
    /// Sets each environment's column group from the config (environment name -> group).
    pub fn set_groups(&mut self, groups: &BTreeMap<String, String>) {
        self.groups = self
            .envs
            .iter()
            .map(|env| groups.get(&env.name).cloned())
            .collect();
        self.apply_column_filter();
        self.clamp_columns();
    }

    pub fn group_of(&self, col: usize) -> Option<&str> {
        self.groups.get(col).and_then(|group| group.as_deref())
    }

    /// Whether the header needs its group line.
    pub fn has_groups(&self) -> bool {
        self.groups.iter().any(Option::is_some)
    }

    /// The longest flag key as shown (escapes counted), in characters: the flag column's
    /// natural width.
    pub fn longest_key(&self) -> usize {
        self.rows
            .iter()
            .map(|row| {
                let key = &row.meta.key;
                if key.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
                    key.len()
                } else {
                    crate::text::line(key).chars().count()
                }
            })
            .max()
            .unwrap_or(4)
    }

    /// How the table's width is shared at the current terminal size.
    pub fn column_geometry(&self) -> layout::Columns {
        layout::columns(self.size.0, self.columns.len(), self.longest_key())
    }

    /// The environment columns drawn now (indices into `envs`), left to right.
    pub fn shown_columns(&self) -> &[usize] {
        let visible = self.column_geometry().visible;
        let start = self.col_offset.min(self.columns.len());
        let end = (start + visible).min(self.columns.len());
        &self.columns[start..end]
    }

    /// Columns scrolled out of view to the left and to the right.
    pub fn hidden_columns(&self) -> (usize, usize) {
        let shown = self.shown_columns().len();
        let left = self.col_offset.min(self.columns.len());
        (left, self.columns.len().saturating_sub(left + shown))
    }

    /// Recomputes `columns` from the column filter.
    pub(crate) fn apply_column_filter(&mut self) {
        let pattern = self.column_filter.value().to_string();
        self.columns = (0..self.envs.len())
            .filter(|col| column_matches(&pattern, &self.envs[*col].name, self.group_of(*col)))
            .collect();
    }

    /// Keeps the selected column among the filtered ones and scrolled into view.
    pub(crate) fn clamp_columns(&mut self) {
        if self.columns.is_empty() {
            self.col_offset = 0;
            return;
        }
        let position = match self.columns.iter().position(|col| *col == self.col) {
            Some(position) => position,
            None => {
                // The selection was filtered out: the nearest shown column to its right.
                let position = self
                    .columns
                    .iter()
                    .position(|col| *col > self.col)
                    .unwrap_or(self.columns.len() - 1);
                self.col = self.columns[position];
                position
            }
        };
        let visible = self.column_geometry().visible.max(1);
        if position < self.col_offset {
            self.col_offset = position;
        } else if position >= self.col_offset + visible {
            self.col_offset = position + 1 - visible;
        }
        self.col_offset = self
            .col_offset
            .min(self.columns.len().saturating_sub(visible));
    }

    fn column_position(&self) -> usize {
        self.columns
            .iter()
            .position(|col| *col == self.col)
            .unwrap_or(0)
    }

    /// Moves the selection `delta` columns along the shown order.
    pub(crate) fn move_columns(&mut self, delta: i64) {
        if self.columns.is_empty() {
            return;
        }
        let last = self.columns.len() as i64 - 1;
        let position = (self.column_position() as i64 + delta).clamp(0, last) as usize;
        self.col = self.columns[position];
        self.clamp_columns();
    }

    /// Pages the columns: the view and the selection move by as many columns as are shown.
    pub(crate) fn page_columns(&mut self, direction: i64) {
        let visible = self.column_geometry().visible.max(1) as i64;
        let offset = (self.col_offset as i64 + direction * visible).max(0) as usize;
        self.col_offset = offset.min(self.columns.len().saturating_sub(visible as usize));
        self.move_columns(direction * visible);
    }

    /// The environment list's jump: select `col`, clearing a column filter that hides it.
    pub(crate) fn jump_to_column(&mut self, col: usize) {
        if col >= self.envs.len() {
            return;
        }
        if !self.columns.contains(&col) {
            self.column_filter.reset();
            self.apply_column_filter();
        }
        self.col = col;
        self.clamp_columns();
    }
}

/// Whether an environment passes the column filter: space- or comma-separated terms, any of
/// which may match. A term with `*` or `?` is a glob over the whole environment or group name
/// (`prod*`, `*-eu`); a plain term matches part of either (`eu`). Case is ignored.
pub fn column_matches(pattern: &str, name: &str, group: Option<&str>) -> bool {
    let terms: Vec<String> = pattern
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|term| !term.is_empty())
        .map(str::to_lowercase)
        .collect();
    if terms.is_empty() {
        return true;
    }
    let name = name.to_lowercase();
    let group = group.map(str::to_lowercase);
    let candidates = std::iter::once(name.as_str()).chain(group.as_deref());
    let candidates: Vec<&str> = candidates.collect();
    terms.iter().any(|term| {
        candidates.iter().any(|candidate| {
            if term.contains(['*', '?']) {
                glob(term, candidate)
            } else {
                candidate.contains(term.as_str())
            }
        })
    })
}

/// `*` any run of characters, `?` one character, everything else itself.
fn glob(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == '?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == '*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((star_p, star_t)) = star {
            p = star_p + 1;
            t = star_t + 1;
            star = Some((star_p, star_t + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_and_plain_terms() {
        assert!(column_matches("prod*", "prod-eu", None));
        assert!(column_matches("PROD*", "prod-eu", None));
        assert!(!column_matches("prod*", "staging-prod", None));
        assert!(column_matches("*-eu", "staging-eu", None));
        assert!(column_matches("eu", "prod-eu-2", None));
        assert!(column_matches("prod", "ld-main", Some("prod")));
        assert!(column_matches("dev, *-us", "prod-us", None));
        assert!(!column_matches("dev *-us", "prod-eu", None));
        assert!(column_matches("", "anything", None));
        assert!(column_matches("p?od", "prod", None));
        assert!(!column_matches("p?od", "pod", None));
    }
}
