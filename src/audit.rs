//! The write-ahead audit log: JSON Lines, one record per line, fsynced, mode 0600.
//!
//! Every flip writes an `intent` record *before* the vendor call and an `outcome` record after
//! it, both carrying the same `id`. An intent with no outcome means killswitch died mid-flip;
//! [`AuditLog::pending`] finds those so the next start can reconcile them.

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Written and fsynced before the vendor call.
    Intent,
    /// What the vendor call did.
    Outcome,
    /// Written at a later start for an intent that never got an outcome.
    Reconciled,
    /// How one notification receiver took the outcome ([`Listener`]): `result` ok or
    /// error, `receiver` its name. Written after the outcome, never instead of it.
    Notified,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Result {
    /// Applied at the vendor.
    Ok,
    /// The vendor holds it as a pending approval / change request.
    PendingApproval,
    /// Nothing was changed (already in that state, or refused before the call).
    NotApplied,
    /// The vendor call failed.
    Error,
    /// The vendor's answer was lost and the flag could not be read again: whether the change
    /// is live is unknown. The next start reconciles it like an intent without an outcome.
    Unknown,
}

/// The audit record schema this build writes (`"v": 1`). Records without `v` (written before
/// it existed) read as version 0, which has the same fields; unknown fields are ignored, so a
/// log written by a newer killswitch still reads.
pub const RECORD_VERSION: u32 = 1;

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Schema version ([`RECORD_VERSION`] when written by this build; 0 when absent).
    #[serde(default)]
    pub v: u32,
    pub id: String,
    pub phase: Phase,
    pub at: DateTime<Utc>,
    pub operator: String,
    pub env: String,
    pub provider: String,
    pub flag: String,
    /// "kill", "restore", "turn_off", "turn_on", "rollout".
    pub action: String,
    /// The cell as the operator saw it, and what it should become ("SERVING" -> "KILLED").
    pub from: String,
    pub to: String,
    /// The requested enabled state (false = kill / turn off).
    pub enabled: bool,
    /// `rollout` records: the rollout asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<crate::rollout::RolloutTarget>,
    /// `rollout` records: the rollout that gives the default audience back what it had before
    /// (what `undo` asks for), when the state before can be said as one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<crate::rollout::RolloutTarget>,
    pub note: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Result>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Milliseconds from the intent record to the vendor's answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// Milliseconds until what services see agreed, when verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmed_ms: Option<u64>,
    /// Vendor reference for pending approvals (change request id, approval URL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// Shared by every environment's records of one multi-environment kill.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<String>,
    /// `notified` records: the notification receiver's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receiver: Option<String>,
}

impl AuditRecord {
    /// The record as it may leave the process (audit log, webhook): the note (operator text),
    /// the error and the reference (vendor text) through the redactor.
    pub fn redacted(&self) -> AuditRecord {
        let mut record = self.clone();
        record.note = crate::redact::text(&record.note);
        record.error = record.error.map(|error| crate::redact::text(&error));
        record.reference = record
            .reference
            .map(|reference| crate::redact::text(&reference));
        record
    }
}

/// How one notification receiver took one record.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub receiver: String,
    pub ok: bool,
    /// "delivered (HTTP 200)", or the error in words (redacted, no URL path).
    pub detail: String,
}

/// The team's receivers (chat, webhook), told of every outcome the log records. The log
/// carries them so every flip finds them; what they are and how they are told is
/// `notify`'s business (its `Notifier` is the one implementation), so the log does not
/// depend on it.
#[async_trait::async_trait]
pub trait Listener: Send + Sync + std::fmt::Debug {
    /// The receivers' names.
    fn names(&self) -> Vec<String>;

    /// Sends `record` to every receiver that wants its environment (all of them when
    /// `every_env`; only the one named `only` when given), concurrently, each within its
    /// bound: one delivery per receiver.
    async fn send(
        &self,
        record: &AuditRecord,
        every_env: bool,
        only: Option<&str>,
    ) -> Vec<Delivery>;
}

#[derive(Debug, thiserror::Error)]
#[error("audit log {path}: {message}")]
pub struct AuditError {
    pub path: String,
    pub message: String,
}

/// The audit log file. Appends are serialised within the process and each is one `write` of a
/// whole line on an `O_APPEND` descriptor, so concurrent processes do not interleave lines.
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    lock: Mutex<()>,
    /// The team's sinks (chat, webhook) told of every outcome; see [`Listener`].
    notifier: Option<std::sync::Arc<dyn Listener>>,
}

/// Held by the process running a flip, from before its intent record until after its outcome
/// record: an `flock` on `<log>.flips/<id>.lock`. While it is held the flip is in flight,
/// whatever its process is called and however long the log takes to read; the lock dies with
/// the process, so a crash leaves a lock anyone can take.
#[derive(Debug)]
pub struct FlipLock {
    path: PathBuf,
    _file: File,
}

impl Drop for FlipLock {
    fn drop(&mut self) {
        // Unlinked while still held (the outcome is already written), then released on close.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Whether a flip's writer still holds its lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Writer {
    Running,
    Gone,
    /// No lock file: the flip finished (its lock is removed after the outcome), or it was
    /// written by a version without flip locks.
    NoLock,
}

/// Only what finding pending intents needs from a line: parsing the whole record of every
/// line of a long log is what made it slow.
#[derive(Deserialize)]
struct IdPhase<'a> {
    #[serde(borrow)]
    id: std::borrow::Cow<'a, str>,
    phase: Phase,
    #[serde(default)]
    result: Option<Result>,
}

impl IdPhase<'_> {
    /// An outcome or reconcile record that settles the flip; an outcome "unknown" does not:
    /// the next start reads the flag again.
    fn finishes(&self) -> bool {
        // Nor does a `notified` record: it only says who was told of the outcome.
        !matches!(self.phase, Phase::Intent | Phase::Notified)
            && self.result != Some(Result::Unknown)
    }
}

impl AuditLog {
    /// Opens (creating with mode 0600, and the directory with 0700) the log at `path`, for a
    /// session that may write: a log with looser permissions is tightened to 0600 when it is a
    /// regular file of this user.
    pub fn open(path: &Path) -> std::result::Result<AuditLog, AuditError> {
        AuditLog::open_as(path, true)
    }

    /// Opens the log for a read-only session (`--read-only`, and the commands that only read):
    /// no write of any kind. Nothing is created (a missing log reads as empty), an existing
    /// file's mode is never changed, and a symbolic link is refused as for [`AuditLog::open`].
    pub fn open_read_only(path: &Path) -> std::result::Result<AuditLog, AuditError> {
        let log = AuditLog {
            path: path.to_path_buf(),
            lock: Mutex::new(()),
            notifier: None,
        };
        log.refuse_symlink()?;
        match std::fs::metadata(path) {
            Ok(metadata) if !metadata.is_file() => {
                Err(log.error("is not a regular file".to_string()))
            }
            Ok(_) => Ok(log),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(log),
            Err(err) => Err(log.error(format!("cannot inspect: {err}"))),
        }
    }

    /// A symbolic link at `path` is refused, never followed (another file could be appended to
    /// or have its mode changed); the file is opened with `O_NOFOLLOW`, so a link put there
    /// after the check is refused too.
    fn open_as(path: &Path, tighten: bool) -> std::result::Result<AuditLog, AuditError> {
        let log = AuditLog {
            path: path.to_path_buf(),
            lock: Mutex::new(()),
            notifier: None,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|err| log.error(format!("cannot create its directory: {err}")))?;
        }
        log.refuse_symlink()?;
        let file = log.open_append()?;
        let metadata = file
            .metadata()
            .map_err(|err| log.error(format!("cannot inspect: {err}")))?;
        if !metadata.is_file() {
            return Err(log.error("is not a regular file".to_string()));
        }
        // Tighten a file someone created with looser permissions, only when it is this user's
        // own regular file, and only for a session that may write.
        let mode = metadata.permissions().mode() & 0o777;
        // SAFETY: geteuid has no preconditions and cannot fail.
        let me = unsafe { libc::geteuid() };
        if tighten && mode & 0o077 != 0 && metadata.uid() == me {
            file.set_permissions(std::fs::Permissions::from_mode(0o600))
                .map_err(|err| log.error(format!("cannot set mode 0600: {err}")))?;
        }
        Ok(log)
    }

    /// A clear refusal when the log's path is a symbolic link (dangling or not).
    fn refuse_symlink(&self) -> std::result::Result<(), AuditError> {
        match std::fs::symlink_metadata(&self.path) {
            Ok(metadata) if metadata.file_type().is_symlink() => {
                let target = std::fs::read_link(&self.path)
                    .map(|target| format!(" (to {})", target.display()))
                    .unwrap_or_default();
                Err(self.error(format!(
                    "is a symbolic link{target}: killswitch does not follow it; set `audit_log` \
                     in the config (or --audit-log) to the real file"
                )))
            }
            _ => Ok(()),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The directory of the flip locks, next to the log.
    fn locks_dir(&self) -> PathBuf {
        let mut name = self
            .path
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_default();
        name.push(".flips");
        self.path.with_file_name(name)
    }

    fn lock_path(&self, id: &str) -> Option<PathBuf> {
        // Ids are ours ("<time>-<pid>-<n>"); anything else read from the log never names a path.
        let safe = !id.is_empty()
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
            && !id.starts_with('.');
        safe.then(|| self.locks_dir().join(format!("{id}.lock")))
    }

    /// Takes the lock of the flip `id`, before its intent record is written. Held until the
    /// returned guard is dropped, after the outcome record.
    pub fn lock_flip(&self, id: &str) -> std::result::Result<FlipLock, AuditError> {
        let path = self
            .lock_path(id)
            .ok_or_else(|| self.error(format!("`{id}` is not a flip id")))?;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(self.locks_dir())
            .map_err(|err| self.error(format!("cannot create the flip lock directory: {err}")))?;
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(|err| self.error(format!("cannot create the flip lock: {err}")))?;
        // SAFETY: flock on a descriptor this function owns.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            return Err(self.error(format!(
                "cannot lock {}: {}",
                path.display(),
                std::io::Error::last_os_error()
            )));
        }
        Ok(FlipLock { path, _file: file })
    }

    /// Removes the lock file a crashed flip left behind, once its reconcile record is written.
    pub fn forget_flip(&self, id: &str) {
        if let Some(path) = self.lock_path(id) {
            let _ = std::fs::remove_file(path);
        }
    }

    /// Whether the writer of flip `id` still holds its lock. Never creates or writes anything,
    /// so a read-only session can ask.
    fn writer(&self, id: &str) -> Writer {
        let Some(path) = self.lock_path(id) else {
            return Writer::NoLock;
        };
        let Ok(file) = File::open(&path) else {
            return Writer::NoLock;
        };
        // SAFETY: flock on a descriptor this function owns; released when `file` closes.
        let taken = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) } == 0;
        if taken { Writer::Gone } else { Writer::Running }
    }

    /// Tells `notifier`'s receivers of every outcome this log records from now on.
    pub fn with_notifier(mut self, notifier: std::sync::Arc<dyn Listener>) -> AuditLog {
        self.notifier = Some(notifier);
        self
    }

    pub fn notifier(&self) -> Option<&std::sync::Arc<dyn Listener>> {
        self.notifier.as_ref()
    }

    fn error(&self, message: String) -> AuditError {
        AuditError {
            path: self.path.display().to_string(),
            message,
        }
    }

    fn open_append(&self) -> std::result::Result<File, AuditError> {
        OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&self.path)
            .map_err(|err| self.open_error("cannot open for appending", err))
    }

    /// An open failure in words; `O_NOFOLLOW` on a symbolic link fails with ELOOP.
    fn open_error(&self, what: &str, err: std::io::Error) -> AuditError {
        if err.raw_os_error() == Some(libc::ELOOP) {
            return self
                .refuse_symlink()
                .err()
                .unwrap_or_else(|| self.error(format!("{what}: {err}")));
        }
        self.error(format!("{what}: {err}"))
    }

    /// Appends one record and fsyncs it. Returns only once the record is on disk.
    pub fn append(&self, record: &AuditRecord) -> std::result::Result<(), AuditError> {
        // The outcome's error and reference come from vendor text, the note from the operator:
        // none of them may put a credential in the log.
        let mut record = record.redacted();
        record.v = RECORD_VERSION;
        let mut line = serde_json::to_vec(&record)
            .map_err(|err| self.error(format!("cannot encode record: {err}")))?;
        line.push(b'\n');
        let _guard = self
            .lock
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut file = self.open_append()?;
        let before = file
            .metadata()
            .map_err(|err| self.error(format!("cannot inspect: {err}")))?
            .len();
        if before > 0 && !ends_with_newline(&file, before) {
            // A torn last line (power loss mid-write): start ours on a line of its own.
            line.insert(0, b'\n');
        }
        if let Err(err) = file.write_all(&line) {
            // Take back a partial line so the log stays one whole record per line.
            let _ = file.set_len(before);
            return Err(self.error(format!("cannot write (disk full or read-only?): {err}")));
        }
        file.sync_data()
            .map_err(|err| self.error(format!("cannot fsync (disk full or read-only?): {err}")))?;
        Ok(())
    }

    /// Every record in the log, oldest first. A torn record (a crash mid-write) is skipped;
    /// any other unreadable line is an error naming its line number.
    pub fn records(&self) -> std::result::Result<Vec<AuditRecord>, AuditError> {
        let file = match OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&self.path)
        {
            Ok(file) => file,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(err) => return Err(self.open_error("cannot read", err)),
        };
        let lines: Vec<String> = BufReader::new(file)
            .lines()
            .collect::<std::io::Result<_>>()
            .map_err(|err| self.error(format!("cannot read: {err}")))?;
        let last = lines.len();
        let mut records = Vec::with_capacity(lines.len());
        for (index, line) in lines.iter().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<AuditRecord>(line) {
                Ok(record) => records.push(record),
                Err(_) if index + 1 == last => {}
                // A record cut short by a crash mid-write, followed by later appends (which
                // start on a new line): skipped, like a torn last line.
                Err(err) if err.classify() == serde_json::error::Category::Eof => {}
                Err(err) => {
                    return Err(
                        self.error(format!("line {}: not an audit record: {err}", index + 1))
                    );
                }
            }
        }
        Ok(records)
    }

    /// Intents that never got an outcome: flips interrupted by a crash. A flip still in flight
    /// (its writer holds its lock, whatever the log's size) is not pending.
    pub fn pending(&self) -> std::result::Result<Vec<AuditRecord>, AuditError> {
        self.pending_after(&mut || {})
    }

    /// [`AuditLog::pending`], with `after_scan` run between reading the log and asking the
    /// writers: the window in which a flip can finish (the tests widen it on purpose).
    fn pending_after(
        &self,
        after_scan: &mut dyn FnMut(),
    ) -> std::result::Result<Vec<AuditRecord>, AuditError> {
        let (candidates, scanned) = self.scan_unfinished(0)?;
        if candidates.is_empty() {
            return Ok(Vec::new());
        }
        after_scan();
        let mut pending: Vec<AuditRecord> = candidates
            .into_values()
            .filter(|record| match self.writer(&record.id) {
                Writer::Running => false,
                Writer::Gone => true,
                Writer::NoLock => !writer_is_running(&record.id),
            })
            .collect();
        if pending.is_empty() {
            return Ok(pending);
        }
        // A flip that finished after the scan wrote its outcome before giving up its lock:
        // the part of the log written since the scan says so.
        let finished = self.ids_finished_since(scanned)?;
        pending.retain(|record| !finished.contains(&record.id));
        pending.sort_by(|a, b| a.at.cmp(&b.at).then_with(|| a.id.cmp(&b.id)));
        Ok(pending)
    }

    /// Reads the log from byte `from`: the intents without a later outcome (parsed in full),
    /// and the byte length read. Other lines are only parsed for their id and phase.
    fn scan_unfinished(
        &self,
        from: u64,
    ) -> std::result::Result<(HashMap<String, AuditRecord>, u64), AuditError> {
        let mut open: HashMap<String, AuditRecord> = HashMap::new();
        let scanned = self.for_each_line(from, &mut |line| {
            let Ok(head) = serde_json::from_str::<IdPhase>(line) else {
                // Torn or foreign lines are `records()`'s business.
                return;
            };
            if head.phase == Phase::Intent {
                if let Ok(record) = serde_json::from_str::<AuditRecord>(line) {
                    open.insert(record.id.clone(), record);
                }
            } else if head.finishes() {
                open.remove(head.id.as_ref());
            }
        })?;
        Ok((open, scanned))
    }

    /// Whether flip `id` has an outcome or reconcile record: asked again by a reconciler once
    /// it holds the flip's lock, since another process may have reconciled it meanwhile.
    pub fn has_finished(&self, id: &str) -> std::result::Result<bool, AuditError> {
        let mut found = false;
        self.for_each_line(0, &mut |line| {
            if !found
                && line.contains(id)
                && let Ok(head) = serde_json::from_str::<IdPhase>(line)
            {
                found = head.finishes() && head.id == id;
            }
        })?;
        Ok(found)
    }

    /// The ids with an outcome or reconcile record from byte `from` on.
    fn ids_finished_since(&self, from: u64) -> std::result::Result<HashSet<String>, AuditError> {
        let mut finished = HashSet::new();
        self.for_each_line(from, &mut |line| {
            if let Ok(head) = serde_json::from_str::<IdPhase>(line)
                && head.finishes()
            {
                finished.insert(head.id.into_owned());
            }
        })?;
        Ok(finished)
    }

    /// Calls `each` with every whole line from byte `from`; returns the offset after the last
    /// whole line (a line still being written is left for the next read).
    fn for_each_line(
        &self,
        from: u64,
        each: &mut dyn FnMut(&str),
    ) -> std::result::Result<u64, AuditError> {
        let mut file = match OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&self.path)
        {
            Ok(file) => file,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(from),
            Err(err) => return Err(self.open_error("cannot read", err)),
        };
        file.seek(SeekFrom::Start(from))
            .map_err(|err| self.error(format!("cannot read: {err}")))?;
        let mut reader = BufReader::with_capacity(256 * 1024, file);
        let mut offset = from;
        let mut line = Vec::new();
        loop {
            line.clear();
            let read = reader
                .read_until(b'\n', &mut line)
                .map_err(|err| self.error(format!("cannot read: {err}")))?;
            if read == 0 || line.last() != Some(&b'\n') {
                return Ok(offset);
            }
            offset += read as u64;
            if let Ok(text) = std::str::from_utf8(&line) {
                each(text.trim_end());
            }
        }
    }
}

/// The lookup `undo` (the CLI's and the dashboard's) stands on.
impl AuditLog {
    /// The last change killswitch recorded as applied to `flag` in `env`: the newest outcome or
    /// reconcile record whose result is `ok`. Intents without an outcome, refusals, errors,
    /// pending approvals and unknown outcomes are skipped: they changed nothing killswitch can
    /// say it changed (an unknown one is caught by undo's guard, which compares the flag with
    /// what this change left). An undo is itself a change (a kill, restore or rollout), so the
    /// newest change after an undo is that undo: undoing it again re-does the first change.
    pub fn last_change(
        &self,
        env: &str,
        flag: &str,
    ) -> std::result::Result<Option<AuditRecord>, AuditError> {
        let mut last = None;
        // Most lines are other flags': only lines naming this one (as JSON writes it) are
        // parsed in full.
        let needle = serde_json::to_string(flag).unwrap_or_default();
        self.for_each_line(0, &mut |line| {
            if !line.contains(&needle) {
                return;
            }
            let Ok(record) = serde_json::from_str::<AuditRecord>(line) else {
                return;
            };
            if record.env == env
                && record.flag == flag
                && matches!(record.phase, Phase::Outcome | Phase::Reconciled)
                && record.result == Some(Result::Ok)
            {
                last = Some(record);
            }
        })?;
        Ok(last)
    }
}

fn ends_with_newline(file: &File, len: u64) -> bool {
    let mut last = [0u8; 1];
    std::os::unix::fs::FileExt::read_at(file, &mut last, len - 1)
        .map(|read| read == 1 && last[0] == b'\n')
        .unwrap_or(true)
}

/// Whether the killswitch process that wrote the record with this id is still running.
fn writer_is_running(id: &str) -> bool {
    let Some(pid) = id
        .rsplit('-')
        .nth(1)
        .and_then(|pid| pid.parse::<u32>().ok())
    else {
        return false;
    };
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|name| name.trim().starts_with("killswitch"))
        .unwrap_or(false)
}

/// A unique record id: time, process and a counter.
pub fn new_id(now: DateTime<Utc>) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!(
        "{}-{}-{count}",
        now.format("%Y%m%dT%H%M%S%.3fZ"),
        std::process::id()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, phase: Phase) -> AuditRecord {
        AuditRecord {
            v: crate::audit::RECORD_VERSION,
            id: id.into(),
            phase,
            at: Utc::now(),
            operator: "alice".into(),
            env: "prod".into(),
            provider: "flagd".into(),
            flag: "kill_switch_checkout".into(),
            action: "kill".into(),
            from: "SERVING".into(),
            to: "KILLED".into(),
            enabled: false,
            rollout: None,
            previous: None,
            note: "INC-42 p99 latency".into(),
            result: (phase != Phase::Intent).then_some(Result::Ok),
            error: None,
            duration_ms: None,
            confirmed_ms: None,
            reference: None,
            batch: None,
            receiver: None,
        }
    }

    #[test]
    fn appends_lines_with_mode_0600_and_finds_pending() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state/audit.jsonl");
        let log = AuditLog::open(&path).expect("open");
        log.append(&record("1", Phase::Intent)).expect("append");
        log.append(&record("1", Phase::Outcome)).expect("append");
        log.append(&record("2", Phase::Intent)).expect("append");
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let text = std::fs::read_to_string(&path).expect("read");
        assert_eq!(text.lines().count(), 3);
        assert!(text.contains("INC-42 p99 latency"));
        let pending = log.pending().expect("pending");
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].id, "2");
    }

    #[test]
    fn a_notified_record_never_finishes_a_flip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = AuditLog::open(&dir.path().join("audit.jsonl")).expect("open");
        log.append(&record("7", Phase::Intent)).expect("append");
        let mut unknown = record("7", Phase::Outcome);
        unknown.result = Some(Result::Unknown);
        log.append(&unknown).expect("append");
        let mut notified = record("7", Phase::Notified);
        notified.receiver = Some("chat".into());
        log.append(&notified).expect("append");
        let pending: Vec<String> = log
            .pending()
            .expect("pending")
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(
            pending,
            vec!["7".to_string()],
            "still reconciled at the next start"
        );
    }

    #[test]
    fn torn_records_are_skipped_but_corruption_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("audit.jsonl");
        let log = AuditLog::open(&path).expect("open");
        log.append(&record("1", Phase::Intent)).expect("append");
        let mut file = OpenOptions::new().append(true).open(&path).expect("open");
        file.write_all(b"{\"id\":\"2\",\"pha").expect("write");
        assert_eq!(log.records().expect("records").len(), 1);
        // The next append starts on its own line; the torn record stays skipped.
        log.append(&record("3", Phase::Intent)).expect("append");
        let ids: Vec<String> = log
            .records()
            .expect("records")
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(ids, vec!["1", "3"]);
        file.write_all(b"not json at all\n").expect("write");
        log.append(&record("4", Phase::Intent)).expect("append");
        let err = log
            .records()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("line 4: not an audit record"), "{err}");
    }

    #[test]
    fn loose_permissions_are_tightened() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("audit.jsonl");
        std::fs::write(&path, "").expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        AuditLog::open(&path).expect("open");
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn a_flip_still_in_flight_in_a_live_process_is_not_pending() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = AuditLog::open(&dir.path().join("audit.jsonl")).expect("open");
        // This test binary is named killswitch-<hash>, like the writer of a live flip.
        let live = format!("20261125T000000.000Z-{}-0", std::process::id());
        log.append(&record(&live, Phase::Intent)).expect("append");
        log.append(&record("20261125T000000.000Z-999999999-0", Phase::Intent))
            .expect("append");
        let pending: Vec<String> = log
            .pending()
            .expect("pending")
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(
            pending,
            vec!["20261125T000000.000Z-999999999-0".to_string()]
        );
    }

    #[test]
    fn a_symlinked_log_is_refused_and_its_target_untouched() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("elsewhere.txt");
        std::fs::write(&target, "precious\n").expect("write");
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let link = dir.path().join("audit.jsonl");
        std::os::unix::fs::symlink(&target, &link).expect("symlink");
        for open in [AuditLog::open, AuditLog::open_read_only] {
            let err = open(&link).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(
                err.starts_with(&format!(
                    "audit log {}: is a symbolic link (to {})",
                    link.display(),
                    target.display()
                )),
                "{err}"
            );
        }
        let mode = std::fs::metadata(&target)
            .expect("meta")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o644, "the target's mode is untouched");
        assert_eq!(
            std::fs::read_to_string(&target).expect("read"),
            "precious\n"
        );
        // A dangling link creates nothing where it points.
        let dangling = dir.path().join("dangling.jsonl");
        let nowhere = dir.path().join("nowhere.jsonl");
        std::os::unix::fs::symlink(&nowhere, &dangling).expect("symlink");
        assert!(AuditLog::open(&dangling).is_err());
        assert!(!nowhere.exists(), "no file created through a dangling link");
    }

    #[test]
    fn a_link_swapped_in_after_opening_is_not_followed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("audit.jsonl");
        let log = AuditLog::open(&path).expect("open");
        let target = dir.path().join("elsewhere.txt");
        std::fs::write(&target, "").expect("write");
        std::fs::remove_file(&path).expect("remove");
        std::os::unix::fs::symlink(&target, &path).expect("symlink");
        let err = log
            .append(&record("1", Phase::Intent))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("is a symbolic link"), "{err}");
        assert!(log.records().is_err());
        assert_eq!(std::fs::read_to_string(&target).expect("read"), "");
    }

    #[test]
    fn read_only_opening_never_changes_the_mode() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("audit.jsonl");
        std::fs::write(&path, "").expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        AuditLog::open_read_only(&path).expect("open");
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
    }

    #[test]
    fn device_files_are_refused_untouched() {
        let err = AuditLog::open(Path::new("/dev/null"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert_eq!(err, "audit log /dev/null: is not a regular file");
        let mode = std::fs::metadata("/dev/null")
            .expect("meta")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o666, "mode of /dev/null untouched");
    }

    #[test]
    fn unwritable_location_is_a_clear_error() {
        let err = AuditLog::open(Path::new("/proc/killswitch/audit.jsonl"))
            .err()
            .map(|e| e.to_string());
        let err = err.unwrap_or_default();
        assert!(
            err.starts_with("audit log /proc/killswitch/audit.jsonl: cannot"),
            "{err}"
        );
    }

    /// The reconcile race: a flip in flight when another process reads a long log, and
    /// finishing (outcome written, process gone) before that read is over.
    #[test]
    fn a_flip_that_finishes_while_the_log_is_read_is_not_pending() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = AuditLog::open(&dir.path().join("audit.jsonl")).expect("open");
        // A writer whose process is gone by the time the reader asks (no such pid).
        let id = "20261125T000000.000Z-999999998-0";
        let lock = log.lock_flip(id).expect("lock");
        log.append(&record(id, Phase::Intent)).expect("intent");
        let pending = log
            .pending_after(&mut || {
                log.append(&record(id, Phase::Outcome)).expect("outcome");
            })
            .expect("pending");
        drop(lock);
        assert!(pending.is_empty(), "{pending:?}");
        assert!(log.pending().expect("pending").is_empty());
    }

    #[test]
    fn a_held_flip_lock_means_in_flight_whatever_the_process_is_called() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = AuditLog::open(&dir.path().join("audit.jsonl")).expect("open");
        let id = "20261125T000000.000Z-999999997-0";
        let lock = log.lock_flip(id).expect("lock");
        log.append(&record(id, Phase::Intent)).expect("intent");
        // Its pid names no live killswitch process: the lock, not the pid, says it is running.
        assert!(log.pending().expect("pending").is_empty(), "in flight");
        drop(lock);
        assert_eq!(
            log.pending().expect("pending").len(),
            1,
            "no outcome, no writer"
        );
    }

    #[test]
    fn a_crashed_flip_leaves_a_lock_anyone_can_take() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = AuditLog::open(&dir.path().join("audit.jsonl")).expect("open");
        let id = "20261125T000000.000Z-999999996-0";
        log.append(&record(id, Phase::Intent)).expect("intent");
        // What a SIGKILL leaves: the lock file, with nobody holding it.
        std::fs::create_dir_all(log.locks_dir()).expect("dir");
        std::fs::write(log.locks_dir().join(format!("{id}.lock")), "").expect("lock file");
        let pending = log.pending().expect("pending");
        assert_eq!(pending.len(), 1);
        log.forget_flip(id);
        assert!(!log.locks_dir().join(format!("{id}.lock")).exists());
    }

    #[test]
    fn read_only_opening_creates_and_changes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state/audit.jsonl");
        let log = AuditLog::open_read_only(&path).expect("a missing log reads as empty");
        assert!(log.records().expect("records").is_empty());
        assert!(log.pending().expect("pending").is_empty());
        assert!(!dir.path().join("state").exists(), "no directory created");
        std::fs::create_dir_all(dir.path().join("state")).expect("dir");
        std::fs::write(&path, "").expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).expect("chmod");
        AuditLog::open_read_only(&path).expect("open");
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o640, "not chmodded");
        assert!(AuditLog::open_read_only(Path::new("/dev/null")).is_err());
    }

    #[test]
    fn ids_from_the_log_never_name_a_path_outside_the_lock_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = AuditLog::open(&dir.path().join("audit.jsonl")).expect("open");
        for id in ["../../etc/passwd", "", ".hidden", "a/b", "x\0"] {
            assert!(log.lock_path(id).is_none(), "{id}");
        }
        assert!(log.lock_flip("../x").is_err());
    }
    #[test]
    fn the_last_change_is_the_newest_applied_outcome_of_that_flag_there() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = AuditLog::open(&dir.path().join("audit.jsonl")).expect("open");
        assert_eq!(
            log.last_change("prod", "kill_switch_checkout")
                .expect("read"),
            None
        );
        let kill = record("1", Phase::Outcome);
        log.append(&record("1", Phase::Intent)).expect("append");
        log.append(&kill).expect("append");
        // Later, but not applied / another env / another flag / only an intent: all skipped.
        for (id, phase, result, env, flag) in [
            (
                "2",
                Phase::Outcome,
                Some(Result::Error),
                "prod",
                "kill_switch_checkout",
            ),
            (
                "3",
                Phase::Outcome,
                Some(Result::NotApplied),
                "prod",
                "kill_switch_checkout",
            ),
            (
                "4",
                Phase::Outcome,
                Some(Result::PendingApproval),
                "prod",
                "kill_switch_checkout",
            ),
            (
                "5",
                Phase::Outcome,
                Some(Result::Unknown),
                "prod",
                "kill_switch_checkout",
            ),
            (
                "6",
                Phase::Outcome,
                Some(Result::Ok),
                "dev",
                "kill_switch_checkout",
            ),
            (
                "7",
                Phase::Outcome,
                Some(Result::Ok),
                "prod",
                "kill_switch_checkout_v2",
            ),
            ("8", Phase::Intent, None, "prod", "kill_switch_checkout"),
            (
                "9",
                Phase::Notified,
                Some(Result::Ok),
                "prod",
                "kill_switch_checkout",
            ),
        ] {
            let mut other = record(id, phase);
            other.result = result;
            other.env = env.into();
            other.flag = flag.into();
            log.append(&other).expect("append");
        }
        let last = log
            .last_change("prod", "kill_switch_checkout")
            .expect("read");
        assert_eq!(last.map(|r| r.id), Some("1".to_string()));
        // A reconciled flip that was applied counts.
        let mut reconciled = record("10", Phase::Reconciled);
        reconciled.action = "restore".into();
        log.append(&reconciled).expect("append");
        let last = log
            .last_change("prod", "kill_switch_checkout")
            .expect("read");
        assert_eq!(last.map(|r| r.action), Some("restore".to_string()));
    }
}
