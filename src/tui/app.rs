//! The dashboard's state and `update(state, action) -> effects`. No I/O and no drawing here:
//! effects are run as tasks by `tui::run`, whose results come back as actions.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use nucleo_matcher::pattern::{CaseMatching, Normalization, Pattern};
use nucleo_matcher::{Config as MatcherConfig, Matcher, Utf32Str};
use tui_input::{Input, InputRequest};

use super::action::Action;
use super::keymap::{
    self, AuditCommand, ColumnFilterCommand, Command, DialogCommand, FilterCommand, Keymap,
    ListCommand,
};
use super::layout;
use crate::audit::AuditRecord;
use crate::flip::{self, FlipError, FlipOutcome, FlipRequest};
use crate::model::{EnvSnapshot, Flag, FlagMeta, cell_text};
use crate::outcome::{self, Class};
use crate::provider::HistoryEntry;

/// What `update` asks the runner to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// (Re)load one environment.
    Load(String),
    /// Run the flip transaction.
    Flip(Box<FlipRequest>),
    /// Run one flip transaction per marked cell, concurrently, sharing a batch id.
    FlipSet(Vec<FlipRequest>),
    /// Read the audit log (and, for one flag, the vendor's history of it in every
    /// environment).
    LoadAudit {
        envs: Vec<String>,
        flag: Option<String>,
    },
    /// Read the audit log for the last change of every flag in every environment (the details
    /// pane's "who killed it and why").
    LoadLastChanges,
    /// Read the vendor's history of one flag in every environment (where the vendor keeps
    /// one), for the details pane.
    LoadVendorHistory {
        flag: String,
        envs: Vec<String>,
    },
    /// Ask the vendor which other environments a rollout write changes too (a Flagsmith
    /// segment is project-wide).
    RolloutShared {
        env: String,
        flag: String,
        target: crate::rollout::RolloutTarget,
        seen: crate::model::FlagState,
    },
    /// Read the audit log for the last change killswitch applied to a flag in an environment
    /// (the undo key).
    FindLastChange {
        env: String,
        flag: String,
    },
    Quit,
}

#[derive(Debug, Clone, PartialEq)]
pub enum LoadState {
    Loading,
    Loaded,
    Failed(String),
}

/// One environment column.
#[derive(Debug, Clone)]
pub struct EnvColumn {
    pub name: String,
    pub protected: bool,
    pub load: LoadState,
    /// The last good data; kept (and marked) when a refresh fails.
    pub snapshot: Option<EnvSnapshot>,
    /// Why this environment cannot be written to, if it cannot.
    pub read_only_reason: Option<String>,
}

/// A failed environment's way back: it is loaded again on its own, with a growing pause.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Retry {
    /// Failed loads in a row; the pause grows with each.
    pub failures: u32,
    /// Why the last load failed, kept while the retry runs.
    pub last_error: String,
    /// When the next attempt starts; `None` while it runs.
    pub at: Option<DateTime<Utc>>,
}

/// How long to wait before loading a failed environment again, after `failures` failures in a
/// row: 2 s, 4 s, 8 s, … at most a minute.
pub fn retry_delay(failures: u32) -> Duration {
    let exponent = failures.clamp(1, 6) - 1;
    Duration::from_secs((2u64 << exponent).min(60))
}

/// An environment's error without the environment's own name in front (the screen adds it).
fn strip_env_prefix(env: &str, error: &str) -> String {
    let mut rest = error;
    while let Some(stripped) = rest.strip_prefix(&format!("{env}: ")) {
        rest = stripped;
    }
    rest.to_string()
}

impl EnvColumn {
    /// The data is older than the refresh interval (or a refresh failed): not current.
    pub fn is_stale(&self, now: DateTime<Utc>, interval: Duration) -> bool {
        match &self.snapshot {
            Some(snapshot) => {
                matches!(self.load, LoadState::Failed(_))
                    || (now - snapshot.fetched_at).to_std().unwrap_or_default()
                        > interval.saturating_mul(2)
            }
            None => false,
        }
    }
}

/// One flag row across environments.
#[derive(Debug, Clone)]
pub struct Row {
    pub meta: std::sync::Arc<FlagMeta>,
    /// Index into each environment's `snapshot.flags`, `None` where the flag does not exist.
    pub cells: Vec<Option<usize>>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum DialogStage {
    /// A rollout's target: the percentage (or variant) is chosen (see `tui::rollout`).
    Target,
    /// Typing the audit note.
    Note,
    /// Typing the environment name (protected) or pressing y.
    Confirm,
    Applying,
    /// Finished: the lines say how it went.
    Done {
        ok: bool,
        lines: Vec<String>,
    },
}

#[derive(Debug, Clone)]
pub struct FlipDialog {
    pub request: FlipRequest,
    /// "KILL checkout in prod: kill_switch_checkout SERVING -> KILLED".
    pub sentence: String,
    pub protected: bool,
    pub stage: DialogStage,
    pub note: Input,
    pub confirm: Input,
    /// A problem with what was typed ("a note is required").
    pub error: Option<String>,
    /// Shown when the data behind the dialog is not current.
    pub warning: Option<String>,
    /// A flip of the marked cells: every request (`request` is the first); empty for one cell.
    pub set: Vec<FlipRequest>,
    /// What a protected flip needs typed: the environment, or every protected environment of
    /// the set, space-separated (any order).
    pub expected: String,
    /// The note was offered back from a dialog cancelled earlier on the same cell.
    pub from_draft: bool,
    /// A rollout: the target being chosen and the environments the write reaches.
    pub rollout: Option<Box<super::rollout::RolloutPart>>,
    /// An undo: the recorded change this reverts (the dialog names it; the note names its id).
    pub undoes: Option<Box<AuditRecord>>,
}

/// The keys of the dialog's current step, from the keymap, shown on its border and in the
/// footer: the first key of each command that acts in this step.
pub fn dialog_hint(dialog: &FlipDialog, keymap: &Keymap) -> String {
    use DialogCommand::{Accept, Back, Cancel, Help, No, Yes};
    let items: &[(&[DialogCommand], &str)] = match (&dialog.stage, dialog.protected) {
        (DialogStage::Target, _) => {
            let keys = |commands: &[DialogCommand]| dialog_keys(dialog, keymap, commands);
            return format!(
                "{} · {}: next · {}: help · {}: cancel",
                super::rollout::hint(dialog, keymap),
                keys(&[Accept]),
                keys(&[Help]),
                keys(&[Cancel])
            );
        }
        (DialogStage::Note, _) => &[
            (&[Accept], "next"),
            (&[Help], "help"),
            (&[Cancel], "cancel (note kept)"),
        ],
        (DialogStage::Confirm, true) => &[
            (&[Accept], "apply"),
            (&[Back], "back"),
            (&[Help], "help"),
            (&[Cancel], "cancel"),
        ],
        (DialogStage::Confirm, false) => &[
            (&[Yes], "apply"),
            (&[Back], "back"),
            (&[Help], "help"),
            (&[No, Cancel], "cancel"),
        ],
        (DialogStage::Applying, _) => return "applying… keys wait until it is done".to_string(),
        (DialogStage::Done { .. }, _) => &[(&[Accept], "close")],
    };
    items
        .iter()
        .filter_map(|(commands, label)| {
            let keys = dialog_keys(dialog, keymap, commands);
            (!keys.is_empty()).then(|| format!("{keys}: {label}"))
        })
        .collect::<Vec<_>>()
        .join(" · ")
}

/// The first key of each of `commands` that acts in the dialog's current step, joined with
/// `/` (`n/Esc`); empty when none is bound.
pub fn dialog_keys(dialog: &FlipDialog, keymap: &Keymap, commands: &[DialogCommand]) -> String {
    commands
        .iter()
        .filter_map(|command| {
            keymap
                .dialog
                .keys(*command)
                .find(|key| dialog_key_acts(dialog, key, *command))
                .map(keymap::key_display)
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Whether a key bound to `command` in `[dialog]` acts in the dialog's current step. While a
/// field is typed (the note; a protected environment's name) its keys are text: characters
/// (only the help's open the help from the confirmation: no name holds a `?`), and the
/// editing keys while the field holds text (Backspace on the empty confirmation steps back).
pub fn dialog_key_acts(dialog: &FlipDialog, key: &KeyEvent, command: DialogCommand) -> bool {
    use DialogCommand::{Accept, Back, Cancel, Close, Help, NextStep, No, PreviousStep, Yes};
    let field = match dialog.stage {
        DialogStage::Note => Some(dialog.note.value()),
        DialogStage::Confirm if dialog.protected => Some(dialog.confirm.value()),
        DialogStage::Confirm => Some(""),
        _ => None,
    };
    if let Some(field) = field {
        let typing = dialog.stage == DialogStage::Note || dialog.protected;
        if keymap::is_text_key(key) && typing {
            return dialog.stage == DialogStage::Confirm && command == Help;
        }
        let editing = matches!(
            key.code,
            KeyCode::Backspace
                | KeyCode::Delete
                | KeyCode::Left
                | KeyCode::Right
                | KeyCode::Home
                | KeyCode::End
        );
        if editing && (dialog.stage == DialogStage::Note || !field.is_empty()) {
            return false;
        }
    }
    match dialog.stage {
        DialogStage::Note => matches!(command, Accept | Cancel | Help),
        DialogStage::Confirm => match command {
            Accept | Cancel | Back | Help => true,
            Yes | No => !dialog.protected,
            Close | NextStep | PreviousStep => false,
        },
        DialogStage::Target => matches!(command, Accept | Cancel | Help | NextStep | PreviousStep),
        DialogStage::Applying => false,
        DialogStage::Done { .. } => matches!(command, Accept | Cancel | Close),
    }
}

#[derive(Debug, Clone)]
pub struct AuditView {
    pub title: String,
    /// One section per environment, in config order.
    pub envs: Vec<String>,
    pub records: Option<Result<Vec<AuditRecord>, String>>,
    /// The vendor's history of the flag, per environment.
    pub history: Vec<(String, Result<Vec<HistoryEntry>, String>)>,
    pub scroll: usize,
}

#[derive(Debug, Clone)]
pub enum Mode {
    Normal,
    Filter,
    /// Typing the column filter (`prod*`).
    ColumnFilter,
    /// The full per-environment list; the number is the highlighted environment.
    Environments(usize),
    Help,
    Flip(Box<FlipDialog>),
    Audit(Box<AuditView>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Success,
    Error,
}

/// Everything the screen shows.
#[derive(Debug)]
pub struct State {
    pub envs: Vec<EnvColumn>,
    pub rows: Vec<Row>,
    /// Indices into `rows` that pass the filter, in display order.
    pub visible: Vec<usize>,
    /// Cursor: index into `visible`, and environment column.
    pub row: usize,
    /// The selected environment: an index into `envs` (always one of `columns` when any).
    pub col: usize,
    /// Environment columns passing the column filter (indices into `envs`), in display order.
    pub columns: Vec<usize>,
    /// First shown position in `columns`: the horizontal scroll.
    pub col_offset: usize,
    pub column_filter: Input,
    /// Each environment's column group (`group = "prod"`), parallel to `envs`.
    pub groups: Vec<Option<String>>,
    /// First visible row of the table.
    pub offset: usize,
    pub filter: Input,
    pub mode: Mode,
    pub message: Option<(Level, String)>,
    pub keymap: Keymap,
    /// Started with `--read-only`: no write path exists at all.
    pub read_only: bool,
    pub local_workspace: bool,
    pub operator: String,
    /// Setup warnings from the credential source (VAULT_SKIP_VERIFY), kept on the status bar.
    pub warnings: Vec<String>,
    pub show_details: bool,
    pub now: DateTime<Utc>,
    pub spinner: usize,
    pub size: (u16, u16),
    pub refresh_interval: Duration,
    /// `--env E --flag F`: where the cursor goes once that flag has loaded. While it is
    /// pending nothing is selected, so no key acts on a cell the link did not name.
    pub focus: Option<(String, String)>,
    /// Nothing is selected (a deep link named a flag that does not exist) until the operator
    /// moves the cursor.
    pub no_selection: bool,
    /// Notes typed into dialogs that were cancelled, by (environment, flag): the next dialog
    /// for the same cell offers the note back.
    pub drafts: HashMap<(String, String), String>,
    /// The environment whose failed load the message line is about; the line follows its
    /// retries and goes away once it loads.
    pub load_alert: Option<String>,
    /// Failed environments (by name) and when each is tried again.
    pub retries: HashMap<String, Retry>,
    /// The newest entry of the vendor's history, by flag then environment (`None`: the vendor
    /// keeps no history there, or it could not be read).
    pub vendor_last: HashMap<String, HashMap<String, Option<HistoryEntry>>>,
    /// The flag whose vendor history is wanted, and from when (the cursor rests on it for a
    /// moment first, so scrolling through rows asks the vendors nothing).
    history_wanted: Option<(String, DateTime<Utc>)>,
    /// The last applied change of each (environment, flag) from the audit log.
    pub last_changes: HashMap<(String, String), AuditRecord>,
    /// The dialog that help was opened from, shown again when help closes.
    pub help_return: Option<Box<FlipDialog>>,
    /// Interrupted flips a read-only session found and left for the next writable start,
    /// kept on the status bar.
    pub pending_flips: usize,
    pub quitting: bool,
    /// Metadata read beside the states, per environment: merged into each snapshot that
    /// arrives, whichever comes first.
    pub metadata: HashMap<String, std::sync::Arc<Vec<FlagMeta>>>,
    /// Marked cells (flag, environment), in marking order: the flip key acts on all of them.
    pub marks: Vec<(String, String)>,
    /// `[rollout] steps`: one key away in the rollout dialog.
    pub rollout_steps: crate::config::RolloutConfig,
    matcher: Matcher,
    /// Flag key -> index into `rows`.
    row_index: HashMap<String, usize>,
}

/// What the state is built from.
pub struct Setup {
    pub envs: Vec<(String, bool)>,
    pub keymap: Keymap,
    pub read_only: bool,
    pub local_workspace: bool,
    pub operator: String,
    pub refresh_interval: Duration,
    pub focus: Option<(String, String)>,
    pub now: DateTime<Utc>,
    pub size: (u16, u16),
}

impl State {
    pub fn new(setup: Setup) -> State {
        let envs: Vec<EnvColumn> = setup
            .envs
            .iter()
            .map(|(name, protected)| EnvColumn {
                name: name.clone(),
                protected: *protected,
                load: LoadState::Loading,
                snapshot: None,
                read_only_reason: None,
            })
            .collect();
        // Start where an incident usually is: the deep-linked env, else the first protected one.
        let focus_col = setup
            .focus
            .as_ref()
            .and_then(|(env, _)| envs.iter().position(|e| &e.name == env));
        let col = focus_col
            .or_else(|| envs.iter().position(|e| e.protected))
            .unwrap_or(0);
        let env_count = envs.len();
        let mut state = State {
            envs,
            rows: Vec::new(),
            visible: Vec::new(),
            row: 0,
            col,
            columns: (0..env_count).collect(),
            col_offset: 0,
            column_filter: Input::default(),
            groups: vec![None; env_count],
            offset: 0,
            filter: Input::default(),
            mode: Mode::Normal,
            message: None,
            keymap: setup.keymap,
            read_only: setup.read_only,
            local_workspace: setup.local_workspace,
            operator: setup.operator,
            warnings: Vec::new(),
            show_details: true,
            now: setup.now,
            spinner: 0,
            size: setup.size,
            refresh_interval: setup.refresh_interval,
            focus: setup.focus,
            no_selection: false,
            drafts: HashMap::new(),
            help_return: None,
            last_changes: HashMap::new(),
            vendor_last: HashMap::new(),
            history_wanted: None,
            retries: HashMap::new(),
            load_alert: None,
            pending_flips: 0,
            quitting: false,
            metadata: HashMap::new(),
            marks: Vec::new(),
            rollout_steps: crate::config::RolloutConfig::default(),
            matcher: Matcher::new(MatcherConfig::DEFAULT),
            row_index: HashMap::new(),
        };
        state.clamp_columns();
        state
    }

    /// Effects to run at start: load every environment at once.
    pub fn initial_effects(&self) -> Vec<Effect> {
        self.envs
            .iter()
            .map(|env| Effect::Load(env.name.clone()))
            .chain(std::iter::once(Effect::LoadLastChanges))
            .collect()
    }

    /// The last change of `flag` in `env` that the audit log records as applied (or pending
    /// approval), for the details pane.
    pub fn last_change(&self, env: &str, flag: &str) -> Option<&AuditRecord> {
        self.last_changes.get(&(env.to_string(), flag.to_string()))
    }

    pub fn selected_row(&self) -> Option<&Row> {
        let position = self.selected_position()?;
        self.visible
            .get(position)
            .and_then(|index| self.rows.get(*index))
    }

    /// The cursor's position in `visible`, or `None` while nothing is selected (a deep link
    /// still pending, or one that named no existing flag).
    pub fn selected_position(&self) -> Option<usize> {
        let pending = self
            .focus
            .as_ref()
            .is_some_and(|(_, flag)| !flag.is_empty());
        (!pending && !self.no_selection && self.row < self.visible.len()).then_some(self.row)
    }

    /// The operator moved the cursor: a pending or failed deep link no longer holds it.
    fn take_cursor(&mut self) {
        self.focus = None;
        self.no_selection = false;
    }

    /// Whether the current screen can be drawn at the current size. When it cannot, keys are
    /// not acted on blind: only quit (and resize) are accepted.
    pub fn drawable(&self) -> bool {
        super::view::drawable(self)
    }

    /// The selected flag in the selected environment, if it exists there.
    pub fn selected_flag(&self) -> Option<&Flag> {
        let row = self.selected_row()?;
        self.flag_at(row, self.col)
    }

    pub fn flag_at(&self, row: &Row, col: usize) -> Option<&Flag> {
        let index = (*row.cells.get(col)?)?;
        self.envs.get(col)?.snapshot.as_ref()?.flags.get(index)
    }

    pub fn cell_text(&self, row: &Row, col: usize) -> Option<String> {
        self.flag_at(row, col)
            .map(|flag| cell_text(row.meta.kind, &flag.state))
    }

    /// A flip is being applied: leaving now would leave its outcome unrecorded.
    pub fn applying(&self) -> bool {
        matches!(&self.mode, Mode::Flip(d) if d.stage == DialogStage::Applying)
    }

    pub fn any_loading(&self) -> bool {
        self.envs.iter().any(|env| env.load == LoadState::Loading)
            || matches!(&self.mode, Mode::Flip(d) if d.stage == DialogStage::Applying)
    }

    fn page(&self) -> usize {
        let rows = layout::table_rows(self.size.0, self.size.1, self.show_details);
        // The group line above the environment names takes a row.
        rows.saturating_sub(usize::from(self.has_groups())).max(1)
    }

    pub(super) fn set_message(&mut self, level: Level, text: impl Into<String>) {
        self.message = Some((level, text.into()));
        self.load_alert = None;
    }

    /// Rewrites the message line for the failed environment it is about: what failed and when
    /// the next attempt is ("prod: not loaded (… timed out after 15 s), retrying in 4 s").
    fn refresh_load_alert(&mut self) {
        let Some(name) = self.load_alert.clone() else {
            return;
        };
        let Some(env) = self.envs.iter().find(|e| e.name == name) else {
            return;
        };
        let retry = self.retries.get(&name).cloned().unwrap_or_default();
        let error = retry.last_error;
        let next = match (&env.load, retry.at) {
            (LoadState::Loading, _) => "retrying now…".to_string(),
            (_, Some(at)) => {
                let wait = (at - self.now).to_std().unwrap_or_default();
                format!(
                    "retrying in {} s",
                    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
                )
            }
            _ => "r retries".to_string(),
        };
        let mut after = String::new();
        if let Some((focus_env, flag)) = &self.focus
            && focus_env == &name
            && !flag.is_empty()
        {
            after = format!("; then `{}` is selected", crate::text::line(flag));
        }
        // The error gives way (cut in the middle) so the line keeps when the retry is; the
        // details pane has it in full.
        let fixed = format!("{name}: not loaded (), {next}{after}")
            .chars()
            .count()
            + "ERROR ".len();
        let room = usize::from(self.size.0).saturating_sub(fixed).max(12);
        let error = crate::text::cut_middle(&crate::text::line(&error), room);
        self.message = Some((
            Level::Error,
            format!("{name}: not loaded ({error}), {next}{after}"),
        ));
    }

    /// Brings the rows up to date after environment `col` (re)loaded: only that column's cells
    /// are redone; rows are re-sorted only when the set of flags or a flag's kind changed. With
    /// 30 environments a full rebuild cost ~65 ms per arrival, on the UI task.
    fn merge_rows(&mut self, col: usize) {
        let selected_key = self.selected_row().map(|row| row.meta.key.clone());
        let mut reorder = false;
        // Rows that had the flag in this column before it (re)loaded.
        let mut had: Vec<bool> = Vec::with_capacity(self.rows.len());
        for row in &mut self.rows {
            had.push(row.cells.get(col).is_some_and(Option::is_some));
            if let Some(cell) = row.cells.get_mut(col) {
                *cell = None;
            }
        }
        if let Some(snapshot) = self.envs.get(col).and_then(|env| env.snapshot.as_ref()) {
            let env_count = self.envs.len();
            for (index, flag) in snapshot.flags.iter().enumerate() {
                match self.row_index.get(&flag.meta.key) {
                    Some(&row) => {
                        if let Some(cell) = self.rows[row].cells.get_mut(col) {
                            *cell = Some(index);
                        }
                    }
                    None => {
                        let mut cells = vec![None; env_count];
                        cells[col] = Some(index);
                        self.row_index
                            .insert(flag.meta.key.clone(), self.rows.len());
                        self.rows.push(Row {
                            meta: flag.meta.clone(),
                            cells,
                        });
                        reorder = true;
                    }
                }
            }
        }
        // One row's metadata, merged across environments in config order (first that has each
        // field): an environment read without the admin credential has no owner, and must not
        // hide the one another environment holds. Only this column changed, so a row's merge
        // is redone only when this column's metadata differs from the row's, or the flag left
        // this column (a field only it held goes).
        let envs = &self.envs;
        let meta_at = |col: usize, index: Option<usize>| {
            Some(&envs.get(col)?.snapshot.as_ref()?.flags.get(index?)?.meta)
        };
        let mut gone = false;
        for (position, row) in self.rows.iter_mut().enumerate() {
            let here = row.cells.get(col).copied().flatten();
            let redo = match meta_at(col, here) {
                Some(meta) => !std::sync::Arc::ptr_eq(meta, &row.meta) && **meta != *row.meta,
                None => had.get(position).copied().unwrap_or(false),
            };
            if !redo {
                continue;
            }
            let metas: Vec<&std::sync::Arc<FlagMeta>> = row
                .cells
                .iter()
                .enumerate()
                .filter_map(|(col, index)| meta_at(col, *index))
                .collect();
            if metas.is_empty() {
                gone = true;
                continue;
            }
            let merged = FlagMeta::merged(metas.iter().map(|meta| meta.as_ref()));
            if merged != *row.meta {
                reorder |= merged.kind != row.meta.kind;
                row.meta = std::sync::Arc::new(merged);
            }
        }
        if gone {
            self.rows
                .retain(|row| row.cells.iter().any(Option::is_some));
            reorder = true;
        }
        if reorder {
            sort_rows(&mut self.rows);
            self.row_index = self
                .rows
                .iter()
                .enumerate()
                .map(|(index, row)| (row.meta.key.clone(), index))
                .collect();
        }
        self.apply_filter();
        if let Some(key) = selected_key {
            self.select_key(&key);
        }
        self.apply_focus();
        self.clamp_cursor();
    }

    /// Moves the cursor to the deep-linked cell once its flag has loaded. The link selects
    /// exactly the named flag or nothing: it stays pending while its environment (or any
    /// environment that might hold the flag) has not loaded, and says "no flag" only when every
    /// environment loaded.
    fn apply_focus(&mut self) {
        let Some((env, flag)) = self.focus.clone() else {
            return;
        };
        let col = self.envs.iter().position(|e| e.name == env);
        if let Some(col) = col {
            self.col = col;
        }
        if flag.is_empty() {
            self.focus = None;
            return;
        }
        let env_loaded = col
            .and_then(|col| self.envs.get(col))
            .is_some_and(|e| e.snapshot.is_some());
        if env_loaded && self.select_key(&flag) {
            self.focus = None;
            self.no_selection = false;
            // "still loading" was about this link: it has landed.
            if matches!(&self.message, Some((_, text)) if text.starts_with("still loading")) {
                self.message = None;
            }
            return;
        }
        let all_loaded = self.envs.iter().all(|e| e.load == LoadState::Loaded);
        if all_loaded {
            self.focus = None;
            self.no_selection = true;
            let suggestion =
                crate::text::did_you_mean(&flag, self.rows.iter().map(|row| row.meta.key.as_str()));
            self.set_message(
                Level::Error,
                format!("no flag `{}`{suggestion}", crate::text::line(&flag)),
            );
        }
    }

    fn select_key(&mut self, key: &str) -> bool {
        match self
            .visible
            .iter()
            .position(|index| self.rows[*index].meta.key == key)
        {
            Some(position) => {
                self.row = position;
                true
            }
            None => false,
        }
    }

    /// Recomputes `visible` from the filter text (fuzzy, smart case).
    fn apply_filter(&mut self) {
        let text = self.filter.value().trim().to_string();
        self.visible.clear();
        if text.is_empty() {
            self.visible.extend(0..self.rows.len());
            return;
        }
        let pattern = Pattern::parse(&text, CaseMatching::Smart, Normalization::Smart);
        let mut buffer = Vec::new();
        // Each field on its own: the key, the owner (`/team-checkout`), a tag (`/canary`) and
        // the kind (`/experiment`); a row shows when any of them matches.
        for (index, row) in self.rows.iter().enumerate() {
            let meta = &row.meta;
            let fields = std::iter::once(meta.key.as_str())
                .chain(meta.owner.as_deref())
                .chain(meta.tags.iter().map(String::as_str))
                .chain(std::iter::once(meta.kind.label()));
            let mut matched = false;
            for field in fields {
                let haystack = Utf32Str::new(field, &mut buffer);
                if pattern.score(haystack, &mut self.matcher).is_some() {
                    matched = true;
                    break;
                }
            }
            if matched {
                self.visible.push(index);
            }
        }
    }

    fn clamp_cursor(&mut self) {
        self.row = self.row.min(self.visible.len().saturating_sub(1));
        self.col = self.col.min(self.envs.len().saturating_sub(1));
        let page = self.page();
        if self.row < self.offset {
            self.offset = self.row;
        } else if self.row >= self.offset + page {
            self.offset = self.row + 1 - page;
        }
        self.offset = self.offset.min(self.visible.len().saturating_sub(page));
        self.clamp_columns();
    }

    fn move_rows(&mut self, delta: i64) {
        if self.selected_position().is_none() && !self.visible.is_empty() {
            // The first move shows the cursor where it is, rather than acting blind.
            self.take_cursor();
            self.clamp_cursor();
            return;
        }
        let last = self.visible.len().saturating_sub(1) as i64;
        self.row = (self.row as i64 + delta).clamp(0, last.max(0)) as usize;
        self.clamp_cursor();
    }
}

fn sort_rows(rows: &mut [Row]) {
    rows.sort_by(|a, b| {
        b.meta
            .is_kill_switch()
            .cmp(&a.meta.is_kill_switch())
            .then_with(|| a.meta.key.cmp(&b.meta.key))
    });
}

/// The one place state changes.
pub fn update(state: &mut State, action: Action) -> Vec<Effect> {
    let from_operator = matches!(
        action,
        Action::Command(_) | Action::Input(_) | Action::Scroll(_)
    );
    if from_operator && !state.drawable() {
        // Nothing is acted on blind: the operator cannot see what a key would do.
        return match action {
            Action::Command(Command::Quit) if !state.applying() => {
                state.quitting = true;
                vec![Effect::Quit]
            }
            _ => Vec::new(),
        };
    }
    match action {
        Action::Command(command) => command_effects(state, command),
        Action::Input(key) => input(state, key),
        Action::Paste(text) => {
            paste(state, &text);
            Vec::new()
        }
        Action::TypedAhead => {
            if let Mode::Flip(dialog) = &mut state.mode {
                dialog.error = Some(if dialog.protected {
                    format!(
                        "keys that arrived with the note were ignored: type `{}` yourself, then {}",
                        dialog.expected,
                        dialog_keys(dialog, &state.keymap, &[DialogCommand::Accept])
                    )
                } else {
                    format!(
                        "keys that arrived with the note were ignored: press {} to apply",
                        dialog_keys(dialog, &state.keymap, &[DialogCommand::Yes])
                    )
                });
            }
            Vec::new()
        }
        Action::Scroll(delta) => {
            if matches!(state.mode, Mode::Audit(_)) {
                scroll_audit(state, i64::from(delta));
            } else if matches!(state.mode, Mode::Normal | Mode::Filter | Mode::ColumnFilter) {
                state.move_rows(i64::from(delta));
            }
            Vec::new()
        }
        Action::Tick(now) => {
            state.now = now;
            state.spinner = state.spinner.wrapping_add(1);
            let mut effects = due_refreshes(state);
            effects.extend(vendor_history_due(state));
            state.refresh_load_alert();
            effects
        }
        Action::Resize(width, height) => {
            state.size = (width, height);
            state.clamp_cursor();
            Vec::new()
        }
        Action::EnvLoaded {
            env,
            result,
            read_only_reason,
        } => {
            let now = state.now;
            let mut alert = None;
            if let Some(column) = state.envs.iter_mut().find(|c| c.name == env) {
                column.read_only_reason = read_only_reason;
                match result {
                    Ok(mut snapshot) => {
                        if let Some(metadata) = state.metadata.get(&env) {
                            crate::provider::merge_metadata(&mut snapshot.flags, metadata);
                        }
                        column.snapshot = Some(snapshot);
                        column.load = LoadState::Loaded;
                        state.retries.remove(&env);
                    }
                    Err(error) => {
                        let error = strip_env_prefix(&env, &error.to_string());
                        let retry = state.retries.entry(env.clone()).or_default();
                        retry.failures = retry.failures.saturating_add(1);
                        let delay = chrono::Duration::from_std(retry_delay(retry.failures))
                            .unwrap_or_default();
                        retry.at = Some(now + delay);
                        retry.last_error = error.clone();
                        column.load = LoadState::Failed(error);
                        alert = Some(env.clone());
                    }
                }
            }
            match alert {
                Some(failed) => {
                    state.load_alert = Some(failed);
                    state.refresh_load_alert();
                }
                None if state.load_alert.as_deref() == Some(env.as_str()) => {
                    // Loaded now: the error line about it is no longer true.
                    state.load_alert = None;
                    state.message = None;
                }
                None => {}
            }
            if let Some(col) = state.envs.iter().position(|c| c.name == env) {
                state.merge_rows(col);
            }
            Vec::new()
        }
        Action::MetadataLoaded { env, metadata } => {
            if let Some(snapshot) = state
                .envs
                .iter_mut()
                .find(|c| c.name == env)
                .and_then(|column| column.snapshot.as_mut())
            {
                crate::provider::merge_metadata(&mut snapshot.flags, &metadata);
            }
            let col = state.envs.iter().position(|c| c.name == env);
            state.metadata.insert(env, metadata);
            if let Some(col) = col {
                state.merge_rows(col);
            }
            Vec::new()
        }
        Action::FlipFinished {
            request,
            result,
            since_launch,
        } => finish_flip(state, *request, result, since_launch),
        Action::FlipSetFinished(results) => finish_flip_set(state, results),
        Action::AuditLoaded { records, history } => {
            if let Mode::Audit(view) = &mut state.mode {
                view.records = Some(records);
                view.history = history;
            }
            scroll_audit(state, 0);
            Vec::new()
        }
        Action::VendorHistory { flag, history } => {
            let newest = history
                .into_iter()
                .map(|(env, result)| {
                    let entry = result
                        .ok()
                        .and_then(|entries| entries.into_iter().max_by_key(|e| e.at));
                    (env, entry)
                })
                .collect();
            state.vendor_last.insert(flag, newest);
            Vec::new()
        }
        Action::LastChanges(records) => {
            state.last_changes.clear();
            for record in records {
                let applied = matches!(
                    record.result,
                    Some(crate::audit::Result::Ok) | Some(crate::audit::Result::PendingApproval)
                );
                if applied {
                    // The log is in time order: a later record replaces an earlier one.
                    state
                        .last_changes
                        .insert((record.env.clone(), record.flag.clone()), record);
                }
            }
            Vec::new()
        }
        Action::Pending(lines) => {
            if !lines.is_empty() {
                state.pending_flips = lines.iter().filter(|l| l.starts_with("PENDING")).count();
                state.set_message(Level::Error, lines.join("; "));
            }
            Vec::new()
        }
        Action::Operator(name) => {
            state.operator = name;
            Vec::new()
        }
        Action::RolloutShared {
            env,
            flag,
            target,
            answer,
        } => {
            super::rollout::shared_known(state, &env, &flag, &target, answer);
            Vec::new()
        }
        Action::LastChangeFound { env, flag, result } => {
            super::undo::found(state, &env, &flag, result)
        }
        Action::Reconciled(lines) => {
            if !lines.is_empty() {
                state.set_message(Level::Info, lines.join("; "));
            }
            Vec::new()
        }
        Action::Notified { line, ok } => {
            // After the flip's own result: the dialog gains a line, the status bar shows it.
            if let Mode::Flip(dialog) = &mut state.mode
                && let DialogStage::Done { lines, .. } = &mut dialog.stage
            {
                lines.push(line.clone());
            }
            state.set_message(if ok { Level::Info } else { Level::Error }, line);
            Vec::new()
        }
    }
}

/// How long the cursor rests on a flag before its vendor history is read.
const HISTORY_DWELL: chrono::Duration = chrono::Duration::milliseconds(800);

/// The vendor history read for the selected flag, once the cursor has rested on it and only
/// once per flag (a flip reads it again).
fn vendor_history_due(state: &mut State) -> Vec<Effect> {
    let Some(flag) = state.selected_row().map(|row| row.meta.key.clone()) else {
        state.history_wanted = None;
        return Vec::new();
    };
    if state.vendor_last.contains_key(&flag) {
        return Vec::new();
    }
    match &state.history_wanted {
        Some((wanted, since)) if *wanted == flag => {
            if state.now - *since < HISTORY_DWELL {
                return Vec::new();
            }
        }
        _ => {
            state.history_wanted = Some((flag, state.now));
            return Vec::new();
        }
    }
    // Asked once: an empty entry until the answer comes, so it is not asked again.
    state.vendor_last.insert(flag.clone(), HashMap::new());
    state.history_wanted = None;
    let envs = state.envs.iter().map(|e| e.name.clone()).collect();
    vec![Effect::LoadVendorHistory { flag, envs }]
}

/// Environments to load now: loaded ones whose data is older than the refresh interval, and
/// failed ones whose retry is due (first load included), with a growing pause between tries.
fn due_refreshes(state: &mut State) -> Vec<Effect> {
    if matches!(state.mode, Mode::Flip(_)) {
        return Vec::new();
    }
    let mut effects = Vec::new();
    let mut refreshing = false;
    for env in &mut state.envs {
        let retry = state.retries.get_mut(&env.name);
        let due = match (&env.load, &env.snapshot) {
            (LoadState::Loading, _) => false,
            (LoadState::Failed(_), _) => retry
                .as_ref()
                .and_then(|retry| retry.at)
                .is_none_or(|at| state.now >= at),
            (LoadState::Loaded, Some(snapshot)) => {
                !state.refresh_interval.is_zero()
                    && (state.now - snapshot.fetched_at)
                        .to_std()
                        .unwrap_or_default()
                        >= state.refresh_interval
            }
            (LoadState::Loaded, None) => true,
        };
        if due {
            refreshing = true;
            env.load = LoadState::Loading;
            if let Some(retry) = retry {
                retry.at = None;
            }
            effects.push(Effect::Load(env.name.clone()));
        }
    }
    if refreshing {
        // The vendors' history is as old as the data: read again when the cursor rests.
        state.vendor_last.clear();
    }
    effects
}

fn command_effects(state: &mut State, command: Command) -> Vec<Effect> {
    match command {
        Command::Quit => {
            state.quitting = true;
            return vec![Effect::Quit];
        }
        Command::MoveUp => state.move_rows(-1),
        Command::MoveDown => state.move_rows(1),
        Command::PageUp => state.move_rows(-(state.page() as i64)),
        Command::PageDown => state.move_rows(state.page() as i64),
        Command::FirstRow => state.move_rows(-(state.visible.len() as i64)),
        Command::LastRow => state.move_rows(state.visible.len() as i64),
        Command::MoveLeft => state.move_columns(-1),
        Command::MoveRight => state.move_columns(1),
        Command::PageLeft => state.page_columns(-1),
        Command::PageRight => state.page_columns(1),
        Command::Filter => state.mode = Mode::Filter,
        Command::ColumnFilter => state.mode = Mode::ColumnFilter,
        Command::ClearFilter => {
            state.marks.clear();
            state.filter.reset();
            state.apply_filter();
            state.column_filter.reset();
            state.apply_column_filter();
            state.clamp_cursor();
            state.message = None;
            state.load_alert = None;
        }
        Command::Environments => state.mode = Mode::Environments(state.col),
        Command::Help => state.mode = Mode::Help,
        Command::ToggleDetails => {
            state.show_details = !state.show_details;
            state.clamp_cursor();
        }
        Command::Refresh => {
            let mut effects = Vec::new();
            for env in &mut state.envs {
                if env.load != LoadState::Loading {
                    env.load = LoadState::Loading;
                    if let Some(retry) = state.retries.get_mut(&env.name) {
                        retry.at = None;
                    }
                    effects.push(Effect::Load(env.name.clone()));
                }
            }
            state.refresh_load_alert();
            return effects;
        }
        Command::AuditLog => return open_audit(state),
        Command::Flip if !state.marks.is_empty() => open_flip_set(state),
        Command::Flip => open_flip(state),
        Command::Rollout => return super::rollout::open(state),
        Command::Undo => return super::undo::open(state),
        Command::Mark => toggle_mark(state),
    }
    Vec::new()
}

/// `space`: marks or unmarks the selected cell (a flag that exists in that environment).
fn toggle_mark(state: &mut State) {
    if state.read_only {
        state.set_message(
            Level::Error,
            "READ-ONLY: started with --read-only, flips (and marking for them) are disabled",
        );
        return;
    }
    let Some(env) = state.envs.get(state.col).cloned() else {
        return;
    };
    let Some(row) = state.selected_row().cloned() else {
        return;
    };
    if state.flag_at(&row, state.col).is_none() {
        state.set_message(
            Level::Error,
            format!(
                "{} does not exist in {}: nothing to mark",
                row.meta.key, env.name
            ),
        );
        return;
    }
    let cell = (row.meta.key.to_string(), env.name.clone());
    match state.marks.iter().position(|marked| *marked == cell) {
        Some(index) => {
            state.marks.remove(index);
        }
        None => state.marks.push(cell),
    }
    let count = state.marks.len();
    state.set_message(
        Level::Info,
        if count == 0 {
            "no cells marked".to_string()
        } else {
            format!("{count} marked: the flip key acts on all of them · Esc clears the marks")
        },
    );
}

/// The flip key with cells marked: one dialog, one note, one confirmation for the set; each
/// cell its own transaction (the opposite of what it shows now).
fn open_flip_set(state: &mut State) {
    if state.read_only {
        state.set_message(
            Level::Error,
            "READ-ONLY: started with --read-only, flips are disabled",
        );
        return;
    }
    let mut set = Vec::new();
    let mut sentences = Vec::new();
    let mut protected = Vec::new();
    let mut warning = None;
    for (key, env_name) in state.marks.clone() {
        let Some(col) = state.envs.iter().position(|env| env.name == env_name) else {
            continue;
        };
        let env = state.envs[col].clone();
        if let Some(reason) = &env.read_only_reason {
            state.set_message(Level::Error, format!("{} is read-only: {reason}", env.name));
            return;
        }
        let flag = state
            .rows
            .iter()
            .find(|row| *row.meta.key == key)
            .cloned()
            .and_then(|row| state.flag_at(&row, col).cloned());
        let Some(flag) = flag else {
            state.set_message(
                Level::Error,
                format!(
                    "{key} is not loaded in {}: unmark it (space) or wait",
                    env.name
                ),
            );
            return;
        };
        let enabled = !flag.state.enabled;
        sentences.push(flip::describe(
            flag.meta.kind,
            &flag.meta.key,
            &env.name,
            &flag.state,
            enabled,
        ));
        if env.protected && !protected.contains(&env.name) {
            protected.push(env.name.clone());
        }
        if warning.is_none() && env.is_stale(state.now, state.refresh_interval) {
            warning = Some(format!(
                "{} data is not current; each flag is re-read before anything changes",
                env.name
            ));
        }
        set.push(FlipRequest {
            env: env.name.clone(),
            flag: flag.meta.key.clone(),
            kind: flag.meta.kind,
            change: flip::Change::Switch { enabled },
            seen: flag.state.clone(),
            note: String::new(),
            operator: state.operator.clone(),
        });
    }
    let Some(first) = set.first().cloned() else {
        state.marks.clear();
        return;
    };
    state.mode = Mode::Flip(Box::new(FlipDialog {
        sentence: sentences.join("\n"),
        protected: !protected.is_empty(),
        stage: DialogStage::Note,
        note: Input::default(),
        confirm: Input::default(),
        error: None,
        warning,
        request: first,
        set,
        expected: protected.join(" "),
        from_draft: false,
        rollout: None,
        undoes: None,
    }));
}

fn open_audit(state: &mut State) -> Vec<Effect> {
    let flag = state.selected_row().map(|row| row.meta.key.clone());
    let envs: Vec<String> = state.envs.iter().map(|e| e.name.clone()).collect();
    let title = match &flag {
        Some(flag) => format!("Audit: {} · every environment", crate::text::line(flag)),
        None => "Audit log · every flag, every environment".to_string(),
    };
    state.mode = Mode::Audit(Box::new(AuditView {
        title,
        envs: envs.clone(),
        records: None,
        history: Vec::new(),
        scroll: 0,
    }));
    vec![Effect::LoadAudit { envs, flag }]
}

/// Scrolls the audit view by `delta` lines, never past its last page.
fn scroll_audit(state: &mut State, delta: i64) {
    let page = super::view::audit::page(state.size.0, state.size.1);
    if let Mode::Audit(view) = &mut state.mode {
        let width = super::view::audit::text_width(state.size.0, state.size.1);
        let total = super::view::audit::lines(view, width).len();
        let last = total.saturating_sub(page) as i64;
        view.scroll = (view.scroll as i64 + delta).clamp(0, last.max(0)) as usize;
    }
}

/// The selected cell to act on (its environment, row and flag), or `None` with the message
/// line saying why there is none: no column shown, nothing selected, still loading, a
/// read-only environment, a flag that does not exist there.
pub(super) fn selected_cell(state: &mut State) -> Option<(EnvColumn, Row, Flag)> {
    if !state.columns.contains(&state.col) {
        state.set_message(
            Level::Error,
            format!(
                "no environment column is shown: the column filter `{}` matches none (Esc clears it)",
                crate::text::line(state.column_filter.value())
            ),
        );
        return None;
    }
    let env = state.envs.get(state.col).cloned()?;
    let Some(row) = state.selected_row().cloned() else {
        let loading: Vec<&str> = state
            .envs
            .iter()
            .filter(|e| e.snapshot.is_none())
            .map(|e| e.name.as_str())
            .collect();
        let text = match &state.focus {
            Some((focus_env, flag)) if !flag.is_empty() => format!(
                "still loading: `{}` in {focus_env} is selected once it has loaded",
                crate::text::line(flag)
            ),
            _ if state.rows.is_empty() && !loading.is_empty() => {
                format!("still loading ({})", loading.join(", "))
            }
            _ => "no flag selected (move the cursor to choose one)".to_string(),
        };
        state.set_message(Level::Error, text);
        return None;
    };
    if let Some(reason) = &env.read_only_reason {
        state.set_message(Level::Error, format!("{} is read-only: {reason}", env.name));
        return None;
    }
    let Some(flag) = state.flag_at(&row, state.col).cloned() else {
        let why = match &env.load {
            LoadState::Loading => format!("{} is still loading", env.name),
            LoadState::Failed(error) if env.snapshot.is_none() => {
                format!("{} failed to load: {error}", env.name)
            }
            _ => format!("{} does not exist in {}", row.meta.key, env.name),
        };
        state.set_message(Level::Error, why);
        return None;
    };
    Some((env, row, flag))
}

fn open_flip(state: &mut State) {
    if state.read_only {
        state.set_message(
            Level::Error,
            "READ-ONLY: started with --read-only, flips are disabled",
        );
        return;
    }
    let Some((env, row, flag)) = selected_cell(state) else {
        return;
    };
    let enabled = !flag.state.enabled;
    let request = FlipRequest {
        env: env.name.clone(),
        flag: flag.meta.key.clone(),
        // The row's metadata is merged across environments (see `merge_rows`).
        kind: row.meta.kind,
        change: flip::Change::Switch { enabled },
        seen: flag.state.clone(),
        note: String::new(),
        operator: state.operator.clone(),
    };
    let warning = env.is_stale(state.now, state.refresh_interval).then(|| {
        format!(
            "{} data is not current; the flag is re-read before anything changes",
            env.name
        )
    });
    let draft = state
        .drafts
        .remove(&(env.name.clone(), flag.meta.key.clone()));
    state.mode = Mode::Flip(Box::new(FlipDialog {
        sentence: flip::describe(
            row.meta.kind,
            &flag.meta.key,
            &env.name,
            &flag.state,
            enabled,
        ),
        protected: env.protected,
        stage: DialogStage::Note,
        from_draft: draft.is_some(),
        note: draft.map(Input::new).unwrap_or_default(),
        confirm: Input::default(),
        error: None,
        warning,
        expected: env.name.clone(),
        request,
        set: Vec::new(),
        rollout: None,
        undoes: None,
    }));
}

/// A key outside the dashboard: looked up in the current mode's section of the keymap; keys
/// bound to nothing there are typed (filters, dialog fields), close (the environment list) or
/// do nothing (the audit view).
fn input(state: &mut State, key: KeyEvent) -> Vec<Effect> {
    match &mut state.mode {
        Mode::Normal => Vec::new(),
        Mode::Help => {
            state.mode = match state.help_return.take() {
                Some(dialog) => Mode::Flip(dialog),
                None => Mode::Normal,
            };
            Vec::new()
        }
        Mode::Audit(_) => {
            let page = super::view::audit::page(state.size.0, state.size.1) as i64;
            match state.keymap.audit.command_for(&key) {
                Some(AuditCommand::ScrollDown) => scroll_audit(state, 1),
                Some(AuditCommand::ScrollUp) => scroll_audit(state, -1),
                Some(AuditCommand::PageDown) => scroll_audit(state, page),
                Some(AuditCommand::PageUp) => scroll_audit(state, -page),
                Some(AuditCommand::Top) => scroll_audit(state, i64::MIN / 2),
                Some(AuditCommand::Bottom) => scroll_audit(state, i64::MAX / 2),
                Some(AuditCommand::Close) => state.mode = Mode::Normal,
                None => {}
            }
            Vec::new()
        }
        Mode::Environments(selected) => {
            let last = state.envs.len().saturating_sub(1);
            match state.keymap.environments.command_for(&key) {
                Some(ListCommand::MoveDown) => *selected = (*selected + 1).min(last),
                Some(ListCommand::MoveUp) => *selected = selected.saturating_sub(1),
                Some(ListCommand::First) => *selected = 0,
                Some(ListCommand::Last) => *selected = last,
                Some(ListCommand::Jump) => {
                    let col = *selected;
                    state.mode = Mode::Normal;
                    state.jump_to_column(col);
                }
                Some(ListCommand::Close) | None => state.mode = Mode::Normal,
            }
            Vec::new()
        }
        Mode::ColumnFilter => {
            match state.keymap.column_filter.command_for(&key) {
                Some(ColumnFilterCommand::Accept) => state.mode = Mode::Normal,
                Some(ColumnFilterCommand::Cancel) => {
                    state.column_filter.reset();
                    state.mode = Mode::Normal;
                }
                Some(ColumnFilterCommand::MoveLeft) => state.move_columns(-1),
                Some(ColumnFilterCommand::MoveRight) => state.move_columns(1),
                None => {
                    edit(&mut state.column_filter, key);
                }
            }
            state.apply_column_filter();
            state.clamp_columns();
            Vec::new()
        }
        Mode::Filter => {
            match state.keymap.filter.command_for(&key) {
                Some(FilterCommand::Accept) => {
                    state.mode = Mode::Normal;
                    state.take_cursor();
                }
                Some(FilterCommand::Cancel) => {
                    state.filter.reset();
                    state.mode = Mode::Normal;
                }
                Some(FilterCommand::MoveUp) => state.move_rows(-1),
                Some(FilterCommand::MoveDown) => state.move_rows(1),
                None => {
                    if edit_capped(&mut state.filter, key, FILTER_MAX_CHARS) {
                        // Full: nothing changed, so the (costly) filter is not recomputed.
                        return Vec::new();
                    }
                }
            }
            state.apply_filter();
            state.clamp_cursor();
            Vec::new()
        }
        Mode::Flip(dialog) => {
            let command = state
                .keymap
                .dialog
                .command_for(&key)
                .filter(|command| dialog_key_acts(dialog, &key, *command));
            if command == Some(DialogCommand::Help) {
                if let Mode::Flip(dialog) = std::mem::replace(&mut state.mode, Mode::Help) {
                    state.help_return = Some(dialog);
                }
                return Vec::new();
            }
            let (effects, close) = match super::rollout::input(dialog, key, command) {
                Some((effects, cancelled)) => (effects, cancelled.then_some(Close::Cancelled)),
                None => dialog_input(dialog, key, command, &state.keymap),
            };
            if let Some(close) = close {
                if let (Close::Cancelled, Mode::Flip(dialog)) = (&close, &state.mode) {
                    let note = dialog.note.value().trim().to_string();
                    let cell = (dialog.request.env.clone(), dialog.request.flag.clone());
                    let text = if note.is_empty() {
                        "cancelled: nothing changed".to_string()
                    } else {
                        state.drafts.insert(cell, note);
                        let flip = state
                            .keymap
                            .keys_for(Command::Flip)
                            .into_iter()
                            .next()
                            .unwrap_or_else(|| "the flip key".to_string());
                        format!(
                            "cancelled: nothing changed (the note is kept: {flip} offers it again)"
                        )
                    };
                    state.set_message(Level::Info, text);
                }
                state.mode = Mode::Normal;
            }
            effects
        }
    }
}

/// The longest filter accepted (a flag key is far shorter); keeps a pasted or typed flood cheap.
pub const FILTER_MAX_CHARS: usize = 200;

/// Whether the flip dialog is asking for its confirmation.
pub fn confirming(state: &State) -> bool {
    matches!(&state.mode, Mode::Flip(dialog) if dialog.stage == DialogStage::Confirm)
}

pub fn is_ctrl_c(key: &KeyEvent) -> bool {
    key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL)
}

/// A pasted text as one line: each run of line breaks becomes one space, a tab a space. Any
/// other control character is kept, so the note rule names it.
fn paste_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(64 * 1024));
    let mut in_break = false;
    for c in text.chars() {
        if matches!(
            c,
            '\n' | '\r' | '\u{0B}' | '\u{0C}' | '\u{85}' | '\u{2028}' | '\u{2029}'
        ) {
            if !in_break {
                out.push(' ');
            }
            in_break = true;
            continue;
        }
        in_break = false;
        out.push(if c == '\t' { ' ' } else { c });
    }
    out
}

/// Inserts `text` at the cursor in one step, keeping at most `max_chars` characters in the
/// field. Returns how many characters of `text` did not fit.
fn insert_capped(input: &mut Input, text: &str, max_chars: usize) -> usize {
    let value = input.value();
    let have = value.chars().count();
    let room = max_chars.saturating_sub(have);
    let offered = text.chars().count();
    let taken: String = text.chars().take(room).collect();
    let taken_chars = offered.min(room);
    let cursor = input.cursor().min(have);
    let byte = value
        .char_indices()
        .nth(cursor)
        .map_or(value.len(), |(index, _)| index);
    let mut joined = String::with_capacity(value.len() + taken.len());
    joined.push_str(&value[..byte]);
    joined.push_str(&taken);
    joined.push_str(&value[byte..]);
    *input = Input::new(joined).with_cursor(cursor + taken_chars);
    offered - taken_chars
}

/// A paste (bracketed): into the note (cut at the note limit, and the dialog says so) or the
/// filter, as one edit. Never into the protected confirmation: the name must be typed.
fn paste(state: &mut State, text: &str) {
    match &mut state.mode {
        Mode::Flip(dialog) => match dialog.stage {
            DialogStage::Note => {
                let line = paste_line(text);
                let left_out = insert_capped(&mut dialog.note, &line, crate::text::NOTE_MAX_CHARS);
                dialog.error = (left_out > 0).then(|| {
                    format!(
                        "the paste was cut: a note holds at most {} characters ({left_out} left out)",
                        crate::text::NOTE_MAX_CHARS
                    )
                });
            }
            DialogStage::Confirm if dialog.protected => {
                dialog.error = Some(format!(
                    "pasting is not accepted here: type `{}` to confirm",
                    dialog.expected
                ));
            }
            DialogStage::Confirm => {
                dialog.error = Some(format!(
                    "a paste does not confirm: press {} to apply",
                    dialog_keys(dialog, &state.keymap, &[DialogCommand::Yes])
                ));
            }
            _ => {}
        },
        Mode::Filter => {
            insert_capped(&mut state.filter, &paste_line(text), FILTER_MAX_CHARS);
            state.apply_filter();
            state.clamp_cursor();
        }
        _ => {}
    }
}

/// How the dialog closed.
enum Close {
    /// Esc / n before anything was applied: nothing changed.
    Cancelled,
    /// The result was read.
    Done,
}

/// Keys inside the flip dialog: `command` is what the key means in this step (see
/// [`dialog_key_acts`]), `None` for text. Returns the flip effect once confirmed, and whether
/// (and how) the dialog closes.
fn dialog_input(
    dialog: &mut FlipDialog,
    key: KeyEvent,
    command: Option<DialogCommand>,
    keymap: &Keymap,
) -> (Vec<Effect>, Option<Close>) {
    use DialogCommand::{Accept, Back, Cancel, Close as Closing, No, Yes};
    match (dialog.stage.clone(), command) {
        (DialogStage::Note, Some(Cancel)) => return (Vec::new(), Some(Close::Cancelled)),
        (DialogStage::Note, Some(Accept)) => {
            if let Err(problem) = crate::text::validate_note(dialog.note.value()) {
                dialog.error = Some(problem.to_string());
            } else {
                dialog.error = None;
                dialog.from_draft = false;
                dialog.stage = DialogStage::Confirm;
            }
        }
        (DialogStage::Note, _) => {
            dialog.error =
                edit_capped(&mut dialog.note, key, crate::text::NOTE_MAX_CHARS).then(|| {
                    format!(
                        "a note holds at most {} characters",
                        crate::text::NOTE_MAX_CHARS
                    )
                });
        }
        (DialogStage::Confirm, Some(Back)) => {
            // One step back: the note can be changed before anything is applied.
            dialog.confirm.reset();
            dialog.error = None;
            dialog.stage = DialogStage::Note;
        }
        (DialogStage::Confirm, Some(Cancel | No)) => {
            return (Vec::new(), Some(Close::Cancelled));
        }
        (DialogStage::Confirm, Some(Accept)) if dialog.protected => {
            if same_names(dialog.confirm.value(), &dialog.expected) {
                return (start_flip(dialog), None);
            }
            dialog.error = Some(format!(
                "type `{}` exactly to confirm, or {} to cancel",
                dialog.expected,
                dialog_keys(dialog, keymap, &[Cancel])
            ));
        }
        (DialogStage::Confirm, Some(Accept | Yes)) => return (start_flip(dialog), None),
        (DialogStage::Confirm, _) if dialog.protected => {
            edit_capped(&mut dialog.confirm, key, FILTER_MAX_CHARS);
            dialog.error = None;
        }
        (DialogStage::Confirm, _) => {
            dialog.error = Some(format!(
                "press {} to apply, {} to cancel",
                dialog_keys(dialog, keymap, &[Yes]),
                dialog_keys(dialog, keymap, &[No, Cancel]).replace('/', " or ")
            ));
        }
        (DialogStage::Applying, _) => {}
        (DialogStage::Done { .. }, Some(Accept | Cancel | Closing)) => {
            return (Vec::new(), Some(Close::Done));
        }
        // The rollout target's keys are `rollout::input`'s.
        (DialogStage::Target, _) => {}
        (DialogStage::Done { .. }, _) => {}
    }
    (Vec::new(), None)
}

/// The typed names equal the expected ones, as sets (one name: exactly it).
fn same_names(typed: &str, expected: &str) -> bool {
    let mut typed: Vec<&str> = typed.split_whitespace().collect();
    let mut expected: Vec<&str> = expected.split_whitespace().collect();
    typed.sort_unstable();
    typed.dedup();
    expected.sort_unstable();
    !expected.is_empty() && typed == expected
}

fn start_flip(dialog: &mut FlipDialog) -> Vec<Effect> {
    dialog.error = None;
    dialog.stage = DialogStage::Applying;
    let note = dialog.note.value().trim().to_string();
    dialog.request.note = match &dialog.undoes {
        // As `killswitch undo` audits it: the operator's note, then which change it reverts.
        Some(undone) => crate::commands::undo::undo_note(&note, undone),
        None => note.clone(),
    };
    if !dialog.set.is_empty() {
        for request in &mut dialog.set {
            request.note = note.clone();
        }
        return vec![Effect::FlipSet(dialog.set.clone())];
    }
    vec![Effect::Flip(Box::new(dialog.request.clone()))]
}

/// The marked set finished: one line per cell, the marks cleared, the environments reloaded.
fn finish_flip_set(
    state: &mut State,
    results: Vec<(FlipRequest, Result<FlipOutcome, FlipError>)>,
) -> Vec<Effect> {
    let mut lines = Vec::new();
    let mut failed = 0;
    for (request, result) in &results {
        let said = outcome::present(request, result);
        if !said.class.ok() {
            failed += 1;
        }
        lines.push(said.cell_line);
    }
    let all_ok = failed == 0;
    let summary = if all_ok {
        format!("{} cells done", results.len())
    } else {
        format!("{failed} of {} cells NOT done", results.len())
    };
    lines.insert(0, summary.clone());
    state.set_message(if all_ok { Level::Success } else { Level::Error }, summary);
    if let Mode::Flip(dialog) = &mut state.mode {
        dialog.stage = DialogStage::Done { ok: all_ok, lines };
    }
    state.marks.clear();
    let mut effects = Vec::new();
    for (request, _) in &results {
        if let Some(env) = state
            .envs
            .iter_mut()
            .find(|env| env.name == request.env && env.load != LoadState::Loading)
        {
            env.load = LoadState::Loading;
            effects.push(Effect::Load(request.env.clone()));
        }
    }
    effects
}

fn finish_flip(
    state: &mut State,
    request: FlipRequest,
    result: Result<FlipOutcome, FlipError>,
    since_launch: Duration,
) -> Vec<Effect> {
    let said = outcome::present(&request, &result);
    let mut lines = said.lines;
    if let Some(audit_id) = said
        .audit_id
        .as_ref()
        .filter(|_| matches!(said.class, Class::Applied | Class::NotVerified))
    {
        lines.push(format!(
            "{:.1} s since killswitch started · audit {audit_id}",
            since_launch.as_secs_f64()
        ));
    }
    if let Some(warning) = &said.audit_warning {
        lines.push(format!("WARNING: {warning}"));
    }
    // The flag moved since it was shown: nothing was written. The dashboard shows it as it now
    // is (read by the guard) without waiting for the reload, and the note is kept as the cell's
    // draft, so `f` on the new state offers it again.
    if let Err(FlipError::Changed { current, .. }) = &result {
        if let Some(snapshot) = state
            .envs
            .iter_mut()
            .find(|env| env.name == request.env)
            .and_then(|env| env.snapshot.as_mut())
            && let Some(flag) = snapshot
                .flags
                .iter_mut()
                .find(|flag| flag.meta.key == request.flag)
        {
            flag.state = current.state.clone();
        }
        if let Some(col) = state.envs.iter().position(|env| env.name == request.env) {
            state.merge_rows(col);
        }
        if !request.note.trim().is_empty() {
            state.drafts.insert(
                (request.env.clone(), request.flag.clone()),
                request.note.clone(),
            );
            lines.push("The note is kept: f offers it again on the flag as it is now".to_string());
        }
    }
    let ok = said.class.ok();
    let summary = lines.first().cloned().unwrap_or_default();
    state.set_message(if ok { Level::Success } else { Level::Error }, summary);
    if let Mode::Flip(dialog) = &mut state.mode {
        dialog.stage = DialogStage::Done { ok, lines };
    }
    // Whatever happened, show the environment as it is now, and who changed it last.
    state.vendor_last.remove(&request.flag);
    match state.envs.iter_mut().find(|env| env.name == request.env) {
        Some(env) if env.load != LoadState::Loading => {
            env.load = LoadState::Loading;
            vec![Effect::Load(request.env), Effect::LoadLastChanges]
        }
        _ => vec![Effect::LoadLastChanges],
    }
}

/// [`edit`], refusing a typed character that would make the field longer than `max_chars`.
/// Returns whether a character was refused.
pub(super) fn edit_capped(input: &mut Input, key: KeyEvent, max_chars: usize) -> bool {
    let inserts =
        matches!(key.code, KeyCode::Char(_)) && !key.modifiers.contains(KeyModifiers::CONTROL);
    // Bytes bound characters from above: only a long field needs counting.
    if inserts && input.value().len() >= max_chars && input.value().chars().count() >= max_chars {
        return true;
    }
    edit(input, key);
    false
}

/// Line editing shared by the filter and the dialog fields.
fn edit(input: &mut Input, key: KeyEvent) {
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    let request = match key.code {
        KeyCode::Char('u') if ctrl => Some(InputRequest::DeleteLine),
        KeyCode::Char('w') if ctrl => Some(InputRequest::DeletePrevWord),
        KeyCode::Char('a') if ctrl => Some(InputRequest::GoToStart),
        KeyCode::Char('e') if ctrl => Some(InputRequest::GoToEnd),
        KeyCode::Char(_) if ctrl => None,
        KeyCode::Char(c) => Some(InputRequest::InsertChar(c)),
        KeyCode::Backspace => Some(InputRequest::DeletePrevChar),
        KeyCode::Delete => Some(InputRequest::DeleteNextChar),
        KeyCode::Left => Some(InputRequest::GoToPrevChar),
        KeyCode::Right => Some(InputRequest::GoToNextChar),
        KeyCode::Home => Some(InputRequest::GoToStart),
        KeyCode::End => Some(InputRequest::GoToEnd),
        _ => None,
    };
    if let Some(request) = request {
        input.handle(request);
    }
}

/// Which action a key means in the current mode: keymap commands in the dashboard, typed
/// input in the filter and dialogs.
pub fn key_action(state: &State, key: KeyEvent) -> Option<Action> {
    if is_ctrl_c(&key) {
        // Ctrl-C always quits, except while a flip is being applied: leaving then would leave
        // its outcome unrecorded until the next start.
        return match &state.mode {
            Mode::Flip(dialog) if dialog.stage == DialogStage::Applying => None,
            _ => Some(Action::Command(Command::Quit)),
        };
    }
    if !state.drawable() {
        // The screen says "q quits" and nothing else: no note character, no confirmation.
        let quit =
            key.code == KeyCode::Char('q') || state.keymap.command_for(&key) == Some(Command::Quit);
        return (quit && !state.applying()).then_some(Action::Command(Command::Quit));
    }
    match state.mode {
        Mode::Normal => state.keymap.command_for(&key).map(Action::Command),
        _ => Some(Action::Input(key)),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::model::{FlagKind, FlagState};

    fn snapshot(env: &str, seed: u64) -> EnvSnapshot {
        // A different subset of 40 keys per seed; some keys change kind between environments.
        let flags = (0..40u64)
            .filter(|key| !(key * 7 + seed * 13).is_multiple_of(5))
            .map(|key| Flag {
                meta: Arc::new(FlagMeta {
                    key: format!("flag_{key:02}"),
                    kind: if (key + seed).is_multiple_of(4) {
                        FlagKind::KillSwitch
                    } else {
                        FlagKind::Release
                    },
                    // Some environments know the owner, others (no admin credential) do not.
                    owner: (key + seed)
                        .is_multiple_of(3)
                        .then(|| format!("team-{seed}")),
                    ..FlagMeta::default()
                }),
                state: FlagState::default(),
            })
            .collect();
        EnvSnapshot {
            env: env.to_string(),
            flags,
            fetched_at: Utc::now(),
        }
    }

    /// Every environment's flags as rows, built from scratch: one per key, its metadata merged
    /// across environments in column order; kill switches first, then by key.
    fn build_rows(envs: &[EnvColumn]) -> Vec<Row> {
        let mut by_key: HashMap<&str, usize> = HashMap::new();
        let mut rows: Vec<Row> = Vec::new();
        for (col, env) in envs.iter().enumerate() {
            let Some(snapshot) = &env.snapshot else {
                continue;
            };
            for (index, flag) in snapshot.flags.iter().enumerate() {
                let row = *by_key.entry(flag.meta.key.as_str()).or_insert_with(|| {
                    rows.push(Row {
                        meta: flag.meta.clone(),
                        cells: vec![None; envs.len()],
                    });
                    rows.len() - 1
                });
                if let Some(cell) = rows[row].cells.get_mut(col) {
                    *cell = Some(index);
                }
            }
        }
        // Metadata merged across environments in column order, as the dashboard shows it.
        for row in &mut rows {
            let metas: Vec<&FlagMeta> = row
                .cells
                .iter()
                .enumerate()
                .filter_map(|(col, index)| {
                    Some(
                        envs.get(col)?
                            .snapshot
                            .as_ref()?
                            .flags
                            .get((*index)?)?
                            .meta
                            .as_ref(),
                    )
                })
                .collect();
            row.meta = Arc::new(FlagMeta::merged(metas));
        }
        sort_rows(&mut rows);
        rows
    }

    #[test]
    fn merging_one_environment_gives_the_same_rows_as_a_full_rebuild() {
        let names: Vec<String> = (0..6).map(|i| format!("env{i}")).collect();
        let mut state = State::new(Setup {
            envs: names.iter().map(|n| (n.clone(), false)).collect(),
            keymap: Keymap::default(),
            read_only: false,
            local_workspace: false,
            operator: "t".into(),
            refresh_interval: Duration::from_secs(30),
            focus: None,
            now: Utc::now(),
            size: (120, 30),
        });
        let mut random = 7u64;
        for step in 0..200u64 {
            random = random
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let env = &names[(random >> 33) as usize % names.len()];
            let result = if (random >> 20).is_multiple_of(9) {
                Err(crate::session::ConnectError::Provider(
                    crate::provider::ProviderError::new(
                        crate::provider::ErrorKind::Unreachable,
                        format!("{env}: timed out"),
                    ),
                ))
            } else {
                Ok(snapshot(env, (random >> 40) % 11))
            };
            update(
                &mut state,
                Action::EnvLoaded {
                    env: env.clone(),
                    result,
                    read_only_reason: None,
                },
            );
            let expected = build_rows(&state.envs);
            assert_eq!(state.rows.len(), expected.len(), "step {step}");
            for (got, want) in state.rows.iter().zip(&expected) {
                assert_eq!(got.meta.key, want.meta.key, "step {step}");
                assert_eq!(got.meta, want.meta, "step {step}: merged facts");
                assert_eq!(got.cells, want.cells, "step {step} {}", got.meta.key);
            }
            for (index, row) in state.rows.iter().enumerate() {
                assert_eq!(state.row_index.get(&row.meta.key), Some(&index));
            }
        }
    }
}
