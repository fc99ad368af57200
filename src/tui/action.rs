//! Everything that can change the dashboard's state: a key's command, typed input, a tick, a
//! resize, or a finished task reporting back. `app::update` is the only consumer.

use std::time::Duration;

use chrono::{DateTime, Utc};
use crossterm::event::KeyEvent;

use super::keymap::Command;
use crate::audit::AuditRecord;
use crate::flip::{FlipError, FlipOutcome, FlipRequest};
use crate::model::EnvSnapshot;
use crate::provider::HistoryEntry;
use crate::session::ConnectError;

#[derive(Debug)]
pub enum Action {
    /// A key bound in the keymap.
    Command(Command),
    /// A key typed into the filter or a dialog.
    Input(KeyEvent),
    /// Text pasted as one piece (bracketed paste): never a key press, so it can fill a field
    /// but never confirm anything.
    Paste(String),
    /// A key that arrived together with the key that asked for the confirmation (a paste
    /// without bracketed paste, typed-ahead text): ignored, and the dialog says so.
    TypedAhead,
    /// Mouse wheel: +1 down, -1 up.
    Scroll(i32),
    /// Spinner frame and clock; `now` drives freshness marks.
    Tick(DateTime<Utc>),
    /// Terminal size changed (columns, rows).
    Resize(u16, u16),
    /// An environment finished loading (or failed: credentials or the vendor, the kind kept).
    /// `read_only_reason` comes from its connection.
    EnvLoaded {
        env: String,
        result: Result<EnvSnapshot, ConnectError>,
        read_only_reason: Option<String>,
    },
    /// An environment's metadata (owners, tags, descriptions) arrived, after or before its
    /// states: the states never wait for it.
    MetadataLoaded {
        env: String,
        metadata: std::sync::Arc<Vec<crate::model::FlagMeta>>,
    },
    /// A flip finished. `since_launch` is measured from the moment killswitch started. The
    /// error stays typed: its kind decides how the dialog reacts (a flag that changed since it
    /// was shown keeps the note and shows the flag as it now is).
    FlipFinished {
        request: Box<FlipRequest>,
        result: Result<FlipOutcome, FlipError>,
        since_launch: Duration,
    },
    /// A flip of the marked cells finished: each request with its result.
    FlipSetFinished(Vec<(FlipRequest, Result<FlipOutcome, FlipError>)>),
    /// The audit view's data arrived.
    AuditLoaded {
        records: Result<Vec<AuditRecord>, String>,
        history: Vec<(String, Result<Vec<HistoryEntry>, String>)>,
    },
    /// The audit log's records, for the last change of each flag per environment (a log that
    /// cannot be read gives none: the audit view says why).
    LastChanges(Vec<AuditRecord>),
    /// The vendor's history of one flag, per environment.
    VendorHistory {
        flag: String,
        history: Vec<(String, Result<Vec<HistoryEntry>, String>)>,
    },
    /// Interrupted flips found and reconciled at start.
    Reconciled(Vec<String>),
    /// Interrupted flips found at a read-only start, left for the next writable one.
    Pending(Vec<String>),
    /// How the `[[notify]]` receivers took a flip's outcome ("notified: chat ok"), sent
    /// right after `FlipFinished`.
    Notified { line: String, ok: bool },
    /// The operator's identity (from Vault when configured).
    Operator(String),
    /// Which other environments a rollout write changes too, as the vendor names them (or why
    /// that could not be learned).
    RolloutShared {
        env: String,
        flag: String,
        /// The target asked about: an answer about another one (the operator went back and
        /// chose again) is not this dialog's.
        target: crate::rollout::RolloutTarget,
        answer: super::rollout::Answer,
    },
    /// The last change killswitch applied to `flag` in `env` (the undo key), from the audit
    /// log: `None` when there is none.
    LastChangeFound {
        env: String,
        flag: String,
        result: Result<Option<Box<AuditRecord>>, String>,
    },
}

impl Action {
    /// Builds a `FlipFinished` from the flip transaction's result.
    pub fn flip_finished(
        request: FlipRequest,
        result: Result<FlipOutcome, FlipError>,
        since_launch: Duration,
    ) -> Action {
        Action::FlipFinished {
            request: Box::new(request),
            result,
            since_launch,
        }
    }
}
