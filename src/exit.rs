//! Exit codes, documented in docs/cli.md. A runbook can branch on each.
//!
//! A floor below everything that reports an outcome ([`crate::outcome`], the session's
//! errors, the subcommands), so each can name the code without importing the commands.

/// Done (or, for `status`, every environment read).
pub const OK: i32 = 0;
/// Unexpected failure (config file, audit log, terminal).
pub const FAILURE: i32 = 1;
/// Bad command line (clap's own code).
pub const USAGE: i32 = 2;
/// The flag already is in the requested state: nothing was changed.
pub const NOTHING_TO_DO: i32 = 3;
/// Refused: read-only, not confirmed, no terminal and no `--yes`, empty note.
pub const REFUSED: i32 = 4;
/// No such flag or environment.
pub const NOT_FOUND: i32 = 5;
/// Vault / credentials error.
pub const CREDENTIALS: i32 = 6;
/// The vendor failed or refused (unreachable, 5xx, rate limited, auth at the vendor).
pub const PROVIDER: i32 = 7;
/// Applied, but what services see did not agree within the verify timeout.
pub const NOT_VERIFIED: i32 = 8;
/// The flag changed since it was read: nothing was changed.
pub const CHANGED: i32 = 9;
/// The vendor requires approval: a request was created, nothing is live yet.
pub const PENDING_APPROVAL: i32 = 10;
/// The vendor's answer to the write was lost and the flag could not be read again: the
/// change may or may not be live. Check the flag before anything else.
pub const OUTCOME_UNKNOWN: i32 = 11;
